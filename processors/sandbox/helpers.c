/*
 * helpers.c — small pieces every platform emulation shares: building
 * responses, reading credentials, splitting paths, reading JSON members
 * and formatting times. Pure functions, no state.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sandbox.h"
#include "util.h"

void sb_response_clear(struct sb_response *resp) {
  free(resp->body);
  memset(resp, 0, sizeof(*resp));
}

void sb_respond_json(struct sb_response *resp, int status, json_t *body,
                     const char *content_type) {
  free(resp->body);
  resp->body = NULL;
  resp->body_len = 0;
  resp->status = status;
  resp->content_type = NULL;
  if (!body)
    return;
  resp->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(body);
  LP_ASSERT(resp->body);
  resp->body_len = strlen(resp->body);
  resp->content_type = content_type ? content_type : "application/json";
}

void sb_respond_empty(struct sb_response *resp, int status) {
  sb_respond_json(resp, status, NULL, NULL);
}

void sb_response_header(struct sb_response *resp, const char *name,
                        const char *fmt, ...) {
  int i = 0;
  while (i < resp->n_headers && strcmp(resp->headers[i].name, name) != 0)
    i++;
  LP_ASSERT(i < SB_MAX_HEADERS);
  if (i == resp->n_headers)
    resp->n_headers++;
  resp->headers[i].name = name;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(resp->headers[i].value, sizeof(resp->headers[i].value), fmt, ap);
  va_end(ap);
}

int sb_auth_scheme(const struct sb_request *req, const char *scheme,
                   const char *accepted, const char **credential, size_t *len) {
  const char *h = req->header(req, "Authorization");
  size_t n = strlen(scheme);
  if (!h || strncasecmp(h, scheme, n) != 0 || h[n] != ' ')
    return -1;
  const char *tok = h + n;
  while (*tok == ' ')
    tok++;
  size_t tlen = strlen(tok);
  while (tlen && tok[tlen - 1] == ' ')
    tlen--;
  if (!tlen)
    return -1;
  for (const char *k = accepted; *k;) {
    const char *end = strchr(k, ',');
    size_t klen = end ? (size_t)(end - k) : strlen(k);
    if (klen == tlen && memcmp(k, tok, tlen) == 0) {
      *credential = tok;
      *len = tlen;
      return 0;
    }
    if (!end)
      break;
    k = end + 1;
  }
  return -1;
}

int sb_path_split(const char *path, struct sb_segment *seg, int max,
                  int allow_trailing) {
  if (*path != '/')
    return -1;
  int n = 0;
  const char *p = path + 1;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0)
      return -1;
    if (n == max)
      return -1;
    seg[n].s = p;
    seg[n].len = len;
    n++;
    if (!end)
      break;
    p = end + 1;
    if (!*p && !allow_trailing)
      return -1;
  }
  return n;
}

int sb_segment_is(const struct sb_segment *seg, const char *text) {
  return strlen(text) == seg->len && memcmp(seg->s, text, seg->len) == 0;
}

char *sb_segment_dup(const struct sb_segment *seg) {
  return lp_xstrndup(seg->s, seg->len);
}

void sb_format_time(int64_t ms, char out[32]) {
  lp_time_format_iso8601(ms, out, 32);
}

json_t *sb_json_time(int64_t ms) {
  char buf[32];
  sb_format_time(ms, buf);
  return json_string(buf);
}

int sb_parse_long(const char *s, long long min, long long max, long long *out) {
  if (!s || !*s || isspace((unsigned char)*s))
    return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

const char *sb_json_string(const json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

char *sb_json_id(const json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (json_is_integer(v))
    return lp_xasprintf("%lld", (long long)json_integer_value(v));
  if (json_is_string(v) && *json_string_value(v))
    return lp_xstrdup(json_string_value(v));
  return NULL;
}

int sb_valid_date(const char *s) {
  static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
    return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
      return 0;
  int year = atoi(s), month = atoi(s + 5), day = atoi(s + 8);
  if (month < 1 || month > 12 || day < 1 || day > days[month - 1])
    return 0;
  int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return !(month == 2 && day == 29 && !leap);
}
