/*
 * bridge_fetch.c — the bridge's REST reads (BigCommerce orders, Shopify
 * order look-ups): pooled curl handles, a per-store rate-limit gate, and
 * retries within fetch.timeout.ms.
 *
 * The gate: a store whose last answer said X-Rate-Limit-Requests-Left: 0,
 * or that answered 429, gets no request before its reset time
 * (X-Rate-Limit-Time-Reset-Ms, or Retry-After seconds, else 1 s). Every
 * connection thread of that store waits for the same time, so a burst of
 * webhooks does not spend the store's quota in a storm of 429s. A 5xx or a
 * transport error is retried after 100 ms, doubling; a fetch that has not
 * succeeded when fetch.timeout.ms is spent fails (the webhook answers 503
 * and the platform delivers it again later) — it is never dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bridge_internal.h"
#include "log.h"
#include "metrics.h"

#define FETCH_MAX_BODY (8u << 20)

/* The gate's slot of store (created on first use; the last slot is shared
 * once the table is full). Under rate_lock. */
static struct br_store_rate *rate_slot(struct bridge *b, const char *store) {
  for (int i = 0; i < b->n_rates; i++)
    if (strcmp(b->rates[i].store, store) == 0)
      return &b->rates[i];
  if (b->n_rates == BR_STORES_MAX)
    return &b->rates[BR_STORES_MAX - 1];
  struct br_store_rate *r = &b->rates[b->n_rates++];
  lp_strlcpy(r->store, store, sizeof(r->store));
  r->wait_until_us = 0;
  return r;
}

static int64_t gate_wait_us(struct bridge *b, const char *store) {
  pthread_mutex_lock(&b->rate_lock);
  int64_t until = rate_slot(b, store)->wait_until_us;
  pthread_mutex_unlock(&b->rate_lock);
  int64_t now = lp_mono_us();
  return until > now ? until - now : 0;
}

static void gate_close(struct bridge *b, const char *store, int64_t wait_ms) {
  int64_t until = lp_mono_us() + wait_ms * 1000;
  pthread_mutex_lock(&b->rate_lock);
  struct br_store_rate *r = rate_slot(b, store);
  if (until > r->wait_until_us)
    r->wait_until_us = until;
  pthread_mutex_unlock(&b->rate_lock);
}

/* How long the answer says to wait before the next request, in ms; 0 when
 * it does not. */
#define MAX_WAIT_MS 600000 /* a platform asking for more is capped */

static int64_t told_to_wait_ms(const struct lp_http_response *r) {
  char v[64];
  if (lp_http_response_header(r, "X-Rate-Limit-Time-Reset-Ms", v, sizeof(v))) {
    long long ms = strtoll(v, NULL, 10);
    if (ms > 0)
      return ms < MAX_WAIT_MS ? ms : MAX_WAIT_MS;
  }
  if (lp_http_response_header(r, "Retry-After", v, sizeof(v))) {
    double s = strtod(v, NULL);
    if (s > 0)
      return s < MAX_WAIT_MS / 1000.0 ? (int64_t)(s * 1000.0 + 0.5)
                                      : MAX_WAIT_MS;
  }
  return 0;
}

static void curl_destroy(void *h) {
  curl_easy_cleanup(h);
}

int br_fetch(struct bridge *b, const char *store, const char *url,
             const char *const *headers, struct lp_http_response *r,
             char *errstr, size_t errstr_size) {
  const struct lp_bridge_config *c = b->c;
  int64_t deadline = lp_mono_us() + c->fetch_timeout_ms * 1000;
  int64_t backoff_ms = 100;
  CURL *curl = br_pool_take(&b->curl);
  if (!curl)
    curl = curl_easy_init();
  int attempts = 0, rc = -1;
  char last[256] = "no attempt";
  for (;;) {
    int64_t wait = gate_wait_us(b, store);
    int64_t left = deadline - lp_mono_us();
    if (wait >= left) {
      lp_err(errstr, errstr_size,
             "fetch %s: %s; gave up after %d attempt(s) within "
             "fetch.timeout.ms",
             url, wait ? "rate limited" : last, attempts);
      break;
    }
    if (wait) {
      lp_metrics_labelled_add("loyalty_bridge_fetch_waits_total",
                              "REST fetches held back by a store's rate "
                              "limit, by store",
                              "store", store, 1);
      usleep((useconds_t)wait);
    }
    left = (deadline - lp_mono_us()) / 1000;
    if (left < 1)
      left = 1;
    attempts++;
    int got = lp_http_get(curl, url, headers, left, FETCH_MAX_BODY, r);
    char v[32];
    if (got == 0 &&
        lp_http_response_header(r, "X-Rate-Limit-Requests-Left", v,
                                sizeof(v)) &&
        strtoll(v, NULL, 10) <= 0)
      gate_close(b, store, told_to_wait_ms(r) ? told_to_wait_ms(r) : 1000);
    if (got == 0 && r->status == 429) {
      int64_t ms = told_to_wait_ms(r);
      gate_close(b, store, ms ? ms : 1000);
      lp_metrics_labelled_add("loyalty_bridge_fetch_retries_total",
                              "REST fetches retried, by reason", "reason",
                              "429", 1);
      snprintf(last, sizeof(last), "429 Too Many Requests");
      continue;
    }
    if (got == 0 && r->status < 500) {
      rc = 0;
      break;
    }
    if (got == 0)
      snprintf(last, sizeof(last), "HTTP %ld", r->status);
    else
      snprintf(last, sizeof(last), "%s", r->error);
    lp_metrics_labelled_add("loyalty_bridge_fetch_retries_total",
                            "REST fetches retried, by reason", "reason",
                            got == 0 ? "5xx" : "transport", 1);
    if (lp_mono_us() + backoff_ms * 1000 >= deadline) {
      lp_err(errstr, errstr_size,
             "fetch %s: %s; gave up after %d attempt(s) within "
             "fetch.timeout.ms",
             url, last, attempts);
      break;
    }
    usleep((useconds_t)(backoff_ms * 1000));
    backoff_ms *= 2;
  }
  br_pool_give(&b->curl, curl, curl_destroy);
  if (rc)
    LP_WARN("fetch failed", "\"store\":%s,\"error\":%s", lp_log_str(store),
            lp_log_str(errstr));
  return rc;
}
