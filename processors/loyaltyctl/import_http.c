/*
 * import_http.c — the importers' HTTP client: one keep-alive libcurl handle
 * (common/http_get.h does the transfer) wrapped in the platforms' rate
 * limits, so a backfill never hammers a shop:
 *
 * - Shopify's leaky bucket: every answer says "used/size" in
 *   X-Shopify-Shop-Api-Call-Limit. Near the top (the last tenth, at least
 *   two calls) the next request waits for enough calls to leak, at a rate
 *   measured from the header over windows of a second or more (2/s, the
 *   standard plan, until measured).
 * - BigCommerce's quota window: X-Rate-Limit-Requests-Left and
 *   X-Rate-Limit-Time-Reset-Ms. The last tenth of the quota is spread over
 *   the rest of the window; an exhausted quota waits for the reset.
 * - 429: wait Retry-After (Shopify, seconds, may be fractional) or the
 *   reset time (BigCommerce), then send the same request again.
 * - 5xx and transport errors: exponential backoff from 200 ms to 10 s, at
 *   most max_retries times per request; then the request fails and the run
 *   stops before the page (it is never skipped).
 *
 * Guarantees: one request in flight at a time; every wait is cut short by
 * SIGINT/SIGTERM (imp_stop_signal); the token only ever goes to base_url.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "import_internal.h"
#include "util.h"

#define IMP_MAX_BODY (256u * 1024 * 1024)

struct imp_http {
  CURL *curl;
  char *base; /* owned: scheme://authority, no trailing '/' */
  char *auth; /* owned: the auth header line */
  const char *headers[3];
  struct imp_http_config cfg; /* strings above, not the caller's */
  struct imp_stats *st;       /* borrowed */
  int64_t not_before_us;      /* the next request waits until then */
  /* Shopify leak-rate measurement: the bucket level at the start of the
   * window and the calls we added since. */
  double leak_per_s;
  long window_used;
  long window_calls;
  int64_t window_t0;
};

struct imp_http *imp_http_new(const struct imp_http_config *cfg,
                              struct imp_stats *st, char *errstr,
                              size_t errstr_size) {
  const char *u = cfg->base_url;
  if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)) {
    lp_err(errstr, errstr_size, "--url: expected http://HOST[:PORT], got %s",
           u ? u : "nothing");
    return NULL;
  }
  const char *authority = strstr(u, "://") + 3;
  size_t alen = strcspn(authority, "/?#");
  if (alen == 0) {
    lp_err(errstr, errstr_size, "--url %s: no host", u);
    return NULL;
  }
  CURL *c = curl_easy_init();
  if (!c) {
    lp_err(errstr, errstr_size, "curl: cannot create a handle");
    return NULL;
  }
  struct imp_http *h = lp_xcalloc(1, sizeof(*h));
  h->curl = c;
  h->base = lp_xstrndup(u, (size_t)(authority - u) + alen);
  h->auth = lp_xstrdup(cfg->auth_header);
  h->headers[0] = h->auth;
  h->headers[1] = "Accept: application/json";
  h->headers[2] = NULL;
  h->cfg = *cfg;
  h->cfg.base_url = h->base;
  h->cfg.auth_header = h->auth;
  if (h->cfg.timeout_ms <= 0)
    h->cfg.timeout_ms = 30000;
  if (h->cfg.max_retries < 0)
    h->cfg.max_retries = 0;
  if (h->cfg.max_429 <= 0)
    h->cfg.max_429 = 200;
  h->leak_per_s = cfg->leak_per_s > 0 ? cfg->leak_per_s : 2.0;
  h->window_used = -1;
  h->st = st;
  return h;
}

void imp_http_destroy(struct imp_http **hp) {
  struct imp_http *h = *hp;
  if (!h)
    return;
  curl_easy_cleanup(h->curl);
  free(h->base);
  free(h->auth);
  free(h);
  *hp = NULL;
}

int imp_http_set_max_retries(struct imp_http *h, int max_retries) {
  int old = h->cfg.max_retries;
  h->cfg.max_retries = max_retries;
  return old;
}

const char *imp_url_path(const char *url) {
  if (!url)
    return NULL;
  if (url[0] == '/')
    return url;
  const char *p = strstr(url, "://");
  if (!p)
    return NULL;
  return strchr(p + 3, '/');
}

void imp_http_describe(const struct lp_http_response *r, char *out,
                       size_t out_size) {
  char body[201];
  size_t n = r->body.len < 200 ? r->body.len : 200;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = r->body.data[i];
    body[i] = isprint(ch) ? (char)ch : '.';
  }
  body[n] = '\0';
  snprintf(out, out_size, "status %ld: %s%s", r->status, body,
           r->body.len > 200 ? "..." : "");
}

/* Waits until the rate limit allows the next request. */
static int wait_turn(struct imp_http *h) {
  int64_t now = lp_mono_us();
  if (h->not_before_us <= now)
    return 0;
  int64_t us = h->not_before_us - now;
  h->st->waited_s += (double)us / 1e6;
  return imp_sleep_us(us);
}

static long header_long(const struct lp_http_response *r, const char *name,
                        int *ok) {
  char v[64];
  *ok = 0;
  if (!lp_http_response_header(r, name, v, sizeof(v)))
    return 0;
  char *end;
  double d = strtod(v, &end);
  if (end == v || d < 0 || d > 1e12)
    return 0;
  *ok = 1;
  return (long)d;
}

/* Shopify: "used/size" -> the next request's earliest time, and the leak
 * rate measured over windows of at least a second. */
static void shopify_after(struct imp_http *h, const struct lp_http_response *r,
                          int64_t now) {
  char v[64];
  long used, size;
  if (!lp_http_response_header(r, "X-Shopify-Shop-Api-Call-Limit", v,
                               sizeof(v)) ||
      sscanf(v, "%ld/%ld", &used, &size) != 2 || size <= 0 || used < 0)
    return;
  if (r->status != 429)
    h->window_calls++;
  if (h->window_used < 0) {
    h->window_used = used;
    h->window_calls = 0;
    h->window_t0 = now;
  } else if (now - h->window_t0 >= 1000000) {
    /* A level above zero at both ends: the bucket leaked all along. */
    long leaked = h->window_used + h->window_calls - used;
    if (h->window_used > 0 && used > 0 && leaked > 0) {
      double rate = (double)leaked / ((double)(now - h->window_t0) / 1e6);
      h->leak_per_s = 0.5 * h->leak_per_s + 0.5 * rate;
    }
    h->window_used = used;
    h->window_calls = 0;
    h->window_t0 = now;
  }
  long headroom = size / 10 > 2 ? size / 10 : 2;
  long over = used - (size - headroom) + 1;
  if (over > 0) {
    int64_t us = (int64_t)((double)over / h->leak_per_s * 1e6);
    if (now + us > h->not_before_us)
      h->not_before_us = now + us;
  }
}

/* BigCommerce: spread the last tenth of the quota over the window's rest,
 * wait for the reset when it is gone. */
static void bigcommerce_after(struct imp_http *h,
                              const struct lp_http_response *r, int64_t now) {
  int ok_left, ok_reset, ok_quota;
  long left = header_long(r, "X-Rate-Limit-Requests-Left", &ok_left);
  long reset_ms = header_long(r, "X-Rate-Limit-Time-Reset-Ms", &ok_reset);
  long quota = header_long(r, "X-Rate-Limit-Requests-Quota", &ok_quota);
  if (!ok_left || !ok_reset)
    return;
  int64_t us = 0;
  if (left <= 0)
    us = (int64_t)reset_ms * 1000;
  else if (ok_quota && left < quota / 10)
    us = (int64_t)reset_ms * 1000 / (left + 1);
  if (us > 0 && now + us > h->not_before_us)
    h->not_before_us = now + us;
}

/* How long a 429 asks us to wait. */
static int64_t retry_after_us(struct imp_http *h,
                              const struct lp_http_response *r) {
  char v[64];
  int ok;
  if (h->cfg.rate == IMP_RATE_BIGCOMMERCE) {
    long ms = header_long(r, "X-Rate-Limit-Time-Reset-Ms", &ok);
    if (ok && ms > 0)
      return (int64_t)ms * 1000;
  }
  if (lp_http_response_header(r, "Retry-After", v, sizeof(v))) {
    char *end;
    double s = strtod(v, &end);
    if (end != v && s >= 0 && s < 3600)
      return (int64_t)(s * 1e6) > 1000 ? (int64_t)(s * 1e6) : 1000;
  }
  return 1000000;
}

int imp_http_get(struct imp_http *h, const char *path,
                 struct lp_http_response *r, char *errstr, size_t errstr_size) {
  LP_ASSERT(path && path[0] == '/');
  char *url = lp_xasprintf("%s%s", h->base, path);
  int failures = 0, throttled = 0, rc = -1;
  for (;;) {
    if (wait_turn(h) != 0) {
      rc = -2;
      break;
    }
    h->st->requests++;
    int got = lp_http_get(h->curl, url, h->headers, h->cfg.timeout_ms,
                          IMP_MAX_BODY, r);
    int64_t now = lp_mono_us();
    if (got == 0) {
      if (h->cfg.rate == IMP_RATE_SHOPIFY)
        shopify_after(h, r, now);
      else
        bigcommerce_after(h, r, now);
    }
    if (got == 0 && r->status == 429) {
      h->st->throttled++;
      if (++throttled > h->cfg.max_429) {
        lp_err(errstr, errstr_size,
               "GET %s: still 429 (rate limited) after %d waits", path,
               throttled - 1);
        break;
      }
      int64_t us = retry_after_us(h, r);
      if (now + us > h->not_before_us)
        h->not_before_us = now + us;
      imp_progress_tick(imp_current_progress);
      continue;
    }
    if (got == 0 && r->status < 500 && r->status >= 100) {
      rc = 0;
      break;
    }
    /* 5xx or no answer: back off and send it again. */
    char why[300];
    if (got == 0)
      imp_http_describe(r, why, sizeof(why));
    else
      snprintf(why, sizeof(why), "%s", r->error);
    if (failures >= h->cfg.max_retries) {
      lp_err(errstr, errstr_size, "GET %s: gave up after %d attempts: %s", path,
             failures + 1, why);
      break;
    }
    int64_t us = 200000LL << (failures < 6 ? failures : 6);
    if (us > 10000000)
      us = 10000000;
    if (got == 0 && r->status == 503) {
      int64_t ra = retry_after_us(h, r);
      if (ra > us && ra < 60000000)
        us = ra;
    }
    failures++;
    h->st->retries++;
    if (now + us > h->not_before_us)
      h->not_before_us = now + us;
    imp_progress_tick(imp_current_progress);
  }
  free(url);
  return rc;
}

char *imp_url_escape(const char *s) {
  struct lp_buf b;
  lp_buf_init(&b);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
      lp_buf_append_byte(&b, *p);
    else
      lp_buf_appendf(&b, "%%%02X", *p);
  }
  char *out = lp_xstrdup(lp_buf_cstr(&b));
  lp_buf_free(&b);
  return out;
}
