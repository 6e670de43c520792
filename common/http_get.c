/*
 * http_get.c — one HTTP GET with libcurl (see http_get.h).
 */
#include "http_get.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

void lp_http_response_init(struct lp_http_response *r) {
  memset(r, 0, sizeof(*r));
  lp_buf_init(&r->body);
  lp_buf_init(&r->heads);
}

void lp_http_response_clear(struct lp_http_response *r) {
  lp_buf_free(&r->body);
  lp_buf_free(&r->heads);
  lp_http_response_init(r);
}

const char *lp_http_response_header(const struct lp_http_response *r,
                                    const char *name, char *out,
                                    size_t out_size) {
  size_t nlen = strlen(name);
  const char *p = (const char *)r->heads.data, *end = p + r->heads.len;
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
      eol = end;
    if ((size_t)(eol - p) > nlen && p[nlen] == ':' &&
        strncasecmp(p, name, nlen) == 0) {
      const char *v = p + nlen + 1, *ve = eol;
      while (v < ve && isspace((unsigned char)*v))
        v++;
      while (ve > v && isspace((unsigned char)ve[-1]))
        ve--;
      size_t n = (size_t)(ve - v);
      if (n >= out_size)
        n = out_size - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return out;
    }
    p = eol + 1;
  }
  return NULL;
}

struct sink {
  struct lp_http_response *r;
  size_t max_body;
  int too_big;
};

static size_t on_body(char *data, size_t size, size_t n, void *opaque) {
  struct sink *s = opaque;
  size_t len = size * n;
  if (s->r->body.len + len > s->max_body) {
    s->too_big = 1;
    return 0; /* aborts the transfer */
  }
  lp_buf_append(&s->r->body, data, len);
  return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *opaque) {
  struct sink *s = opaque;
  size_t len = size * n;
  /* A new status line (a redirect or a 100 Continue): keep the last. */
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    lp_buf_reset(&s->r->heads);
    return len;
  }
  size_t keep = len;
  while (keep && (data[keep - 1] == '\r' || data[keep - 1] == '\n'))
    keep--;
  if (keep && s->r->heads.len + keep < 65536) {
    lp_buf_append(&s->r->heads, data, keep);
    lp_buf_append_byte(&s->r->heads, '\n');
  }
  return len;
}

int lp_http_get(void *curl_handle, const char *url, const char *const *headers,
                long timeout_ms, size_t max_body, struct lp_http_response *r) {
  lp_http_response_clear(r);
  CURL *c = curl_handle ? curl_handle : curl_easy_init();
  if (!c) {
    snprintf(r->error, sizeof(r->error), "curl: cannot create a handle");
    return -1;
  }
  struct curl_slist *list = NULL;
  for (size_t i = 0; headers && headers[i]; i++)
    list = curl_slist_append(list, headers[i]);
  struct sink s = {r, max_body, 0};
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
  CURLcode rc = curl_easy_perform(c);
  int result = 0;
  if (rc != CURLE_OK) {
    if (s.too_big)
      snprintf(r->error, sizeof(r->error), "body above %zu bytes", max_body);
    else
      snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
    r->status = 0;
    result = -1;
  } else {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  }
  curl_slist_free_all(list);
  if (!curl_handle)
    curl_easy_cleanup(c);
  return result;
}
