/*
 * shop.c — the shop side's state and front door (see shop.h): the
 * configuration (POST/GET /_sandbox/shop), the Shopify leaky bucket and
 * the BigCommerce quota window, injected 429s (burst_429_permille, rolled
 * on a PRNG seeded from the shop's seed, so one configuration and one
 * request sequence give one sequence of 429s), per-side statistics, and
 * the routing of shop paths to the platform files, the sender and the
 * sink.
 *
 * Everything here takes the shop's own lock briefly; generation and
 * sending run without it.
 */
#include "shop.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "util.h"

static uint64_t next_random(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Buckets, quota and the 429 PRNG start afresh (lock held). */
static void reset_limits(struct sb_shop *shop) {
  shop->prng = sb_shop_hash((uint64_t)shop->cfg.seed, 0x429, 0);
  shop->bucket_level = 0;
  shop->bucket_ms = 0;
  shop->bc_window_start_ms = 0;
  shop->bc_used = 0;
  memset(shop->not_before_ms, 0, sizeof(shop->not_before_ms));
}

struct sb_shop *sb_shop_new(const struct sb_settings *settings) {
  LP_ASSERT(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
  struct sb_shop *shop = lp_xcalloc(1, sizeof(*shop));
  LP_ASSERT(pthread_mutex_init(&shop->lock, NULL) == 0);
  shop->settings = settings;
  sb_shop_config_defaults(&shop->cfg, settings);
  reset_limits(shop);
  shop->sink = sb_sink_new();
  return shop;
}

void sb_shop_destroy(struct sb_shop **shopp) {
  if (!shopp || !*shopp)
    return;
  struct sb_shop *shop = *shopp;
  sb_sink_destroy(&shop->sink);
  pthread_mutex_destroy(&shop->lock);
  free(shop);
  *shopp = NULL;
  curl_global_cleanup();
}

void sb_shop_shutdown(struct sb_shop *shop) {
  if (shop)
    shop->stopping = 1;
}

void sb_shop_reset(struct sb_shop *shop) {
  pthread_mutex_lock(&shop->lock);
  reset_limits(shop);
  memset(shop->stats, 0, sizeof(shop->stats));
  sb_sink_clear(shop->sink);
  pthread_mutex_unlock(&shop->lock);
}

void sb_shop_snapshot(struct sb_shop *shop, struct sb_shop_config *cfg) {
  pthread_mutex_lock(&shop->lock);
  *cfg = shop->cfg;
  pthread_mutex_unlock(&shop->lock);
}

/* ---- rate limits ---------------------------------------------------- */

static void shopify_call_limit(struct sb_shop *shop, struct sb_response *resp) {
  long long used = (long long)ceil(shop->bucket_level - 1e-9);
  if (used < 0)
    used = 0;
  sb_response_header(resp, "X-Shopify-Shop-Api-Call-Limit", "%lld/%lld", used,
                     shop->cfg.bucket_size);
}

static void shopify_429(struct sb_shop *shop, struct sb_response *resp,
                        double retry_s) {
  char msg[160];
  snprintf(msg, sizeof(msg),
           "Exceeded %g calls per second for api client. Reduce request "
           "rates to resume uninterrupted service.",
           shop->cfg.leak_per_s);
  sb_respond_json(resp, 429, json_pack("{ss}", "errors", msg), NULL);
  /* Tenths, rounded up: waiting that long is always enough. */
  double tenths = ceil(retry_s * 10 - 1e-9);
  if (tenths < 1)
    tenths = 1;
  sb_response_header(resp, "Retry-After", "%.1f", tenths / 10);
}

/* Leaks the bucket up to now; 0 and one call added, or 1 (full). */
static int shopify_take(struct sb_shop *shop, int64_t now_ms, double *retry_s) {
  if (shop->bucket_ms && now_ms > shop->bucket_ms)
    shop->bucket_level -=
        (double)(now_ms - shop->bucket_ms) / 1000.0 * shop->cfg.leak_per_s;
  if (shop->bucket_level < 0)
    shop->bucket_level = 0;
  if (now_ms > shop->bucket_ms)
    shop->bucket_ms = now_ms;
  double size = (double)shop->cfg.bucket_size;
  if (shop->bucket_level + 1 > size + 1e-9) {
    *retry_s = (shop->bucket_level + 1 - size) / shop->cfg.leak_per_s;
    return 1;
  }
  shop->bucket_level += 1;
  return 0;
}

static void bc_headers(struct sb_shop *shop, struct sb_response *resp,
                       int64_t now_ms) {
  long long left = shop->cfg.bc_quota - shop->bc_used;
  int64_t reset = shop->bc_window_start_ms + shop->cfg.bc_window_ms - now_ms;
  if (left < 0)
    left = 0;
  if (reset < 0)
    reset = 0;
  sb_response_header(resp, "X-Rate-Limit-Requests-Left", "%lld", left);
  sb_response_header(resp, "X-Rate-Limit-Requests-Quota", "%lld",
                     shop->cfg.bc_quota);
  sb_response_header(resp, "X-Rate-Limit-Time-Window-Ms", "%lld",
                     shop->cfg.bc_window_ms);
  sb_response_header(resp, "X-Rate-Limit-Time-Reset-Ms", "%lld",
                     (long long)reset);
}

static void bc_429(struct sb_shop *shop, struct sb_response *resp,
                   int64_t now_ms, const char *why) {
  sb_respond_json(
      resp, 429,
      json_pack("{si ss ss s{}}", "status", 429, "title", why, "type",
                "https://developer.bigcommerce.com/api-docs/getting-started/"
                "api-status-codes",
                "errors"),
      NULL);
  bc_headers(shop, resp, now_ms);
}

int sb_shop_admit(struct sb_shop *shop, enum sb_shop_side side, int64_t now_ms,
                  struct sb_response *resp) {
  pthread_mutex_lock(&shop->lock);
  struct sb_shop_stats *st = &shop->stats[side];
  if (now_ms < shop->not_before_ms[side])
    st->early++;
  int limited = 0;
  if (side == SB_SHOP_BIGCOMMERCE &&
      (shop->bc_window_start_ms == 0 ||
       now_ms >= shop->bc_window_start_ms + shop->cfg.bc_window_ms)) {
    shop->bc_window_start_ms = now_ms;
    shop->bc_used = 0;
  }
  if (shop->cfg.burst_429_permille > 0 &&
      (long long)(next_random(&shop->prng) % 1000) <
          shop->cfg.burst_429_permille) {
    st->injected++;
    limited = 1;
    if (side == SB_SHOP_SHOPIFY) {
      shopify_429(shop, resp, 1.0);
      shopify_call_limit(shop, resp);
      shop->not_before_ms[side] = now_ms + 1000;
    } else {
      bc_429(shop, resp, now_ms, "Too many requests (injected by the sandbox)");
      shop->not_before_ms[side] = now_ms + 1000;
    }
  } else if (side == SB_SHOP_SHOPIFY) {
    double retry_s = 0;
    if (shopify_take(shop, now_ms, &retry_s)) {
      st->throttled++;
      limited = 1;
      shopify_429(shop, resp, retry_s);
      sb_response_header(resp, "X-Shopify-Shop-Api-Call-Limit", "%lld/%lld",
                         shop->cfg.bucket_size, shop->cfg.bucket_size);
      shop->not_before_ms[side] = now_ms + (int64_t)ceil(retry_s * 1000);
    } else {
      shopify_call_limit(shop, resp);
    }
  } else {
    if (shop->bc_used >= shop->cfg.bc_quota) {
      st->throttled++;
      limited = 1;
      bc_429(shop, resp, now_ms,
             "You have exceeded your rate limit: wait "
             "X-Rate-Limit-Time-Reset-Ms before the next request");
      shop->not_before_ms[side] =
          shop->bc_window_start_ms + shop->cfg.bc_window_ms;
    } else {
      shop->bc_used++;
      bc_headers(shop, resp, now_ms);
    }
  }
  pthread_mutex_unlock(&shop->lock);
  return limited;
}

void sb_shop_count(struct sb_shop *shop, enum sb_shop_side side, int status) {
  LP_ASSERT(status >= 100 && status < 600);
  pthread_mutex_lock(&shop->lock);
  shop->stats[side].requests++;
  shop->stats[side].by_status[status]++;
  pthread_mutex_unlock(&shop->lock);
}

/* ---- request helpers ------------------------------------------------ */

void sb_shop_base_url(const struct sb_request *req, char *out, size_t size) {
  const char *host = req->header(req, "Host");
  int ok = host && *host && strlen(host) < 128;
  for (const char *p = host; ok && *p; p++)
    ok = isalnum((unsigned char)*p) || strchr(".-:[]", *p);
  snprintf(out, size, "http://%s", ok ? host : "127.0.0.1");
}

struct query_each_ctx {
  int (*fn)(void *cls, const char *key, const char *value);
  void *cls;
};

static enum MHD_Result query_each_cb(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value) {
  (void)kind;
  struct query_each_ctx *ctx = cls;
  return ctx->fn(ctx->cls, key, value ? value : "") ? MHD_NO : MHD_YES;
}

void sb_shop_query_each(const struct sb_request *req,
                        int (*fn)(void *cls, const char *key,
                                  const char *value),
                        void *cls) {
  if (!req->conn)
    return;
  struct query_each_ctx ctx = {fn, cls};
  MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_each_cb,
                            &ctx);
}

void sb_shop_hmac_sha256_base64(const char *key, size_t key_len,
                                const void *data, size_t len, char out[45]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  LP_ASSERT(HMAC(EVP_sha256(), key, (int)key_len, data, len, md, &md_len));
  LP_ASSERT(md_len == 32);
  LP_ASSERT(EVP_EncodeBlock((unsigned char *)out, md, (int)md_len) == 44);
}

/* ---- /_sandbox/shop ------------------------------------------------- */

static json_t *stats_json(const struct sb_shop_stats *st) {
  json_t *by_status = json_object();
  for (int s = 100; s < 600; s++)
    if (st->by_status[s]) {
      char key[16];
      snprintf(key, sizeof(key), "%d", s);
      json_object_set_new(by_status, key, json_integer(st->by_status[s]));
    }
  return json_pack("{sI so sI sI sI}", "requests", (json_int_t)st->requests,
                   "by_status", by_status, "throttled",
                   (json_int_t)st->throttled, "injected_429",
                   (json_int_t)st->injected, "early", (json_int_t)st->early);
}

/* The configuration plus "stats" (lock held). */
static json_t *shop_state_json(struct sb_shop *shop, int64_t now_ms) {
  json_t *out = sb_shop_config_json(&shop->cfg);
  json_t *shopify = stats_json(&shop->stats[SB_SHOP_SHOPIFY]);
  json_t *bc = stats_json(&shop->stats[SB_SHOP_BIGCOMMERCE]);
  double level = shop->bucket_level;
  if (shop->bucket_ms && now_ms > shop->bucket_ms)
    level -= (double)(now_ms - shop->bucket_ms) / 1000.0 * shop->cfg.leak_per_s;
  json_object_set_new(shopify, "bucket_used",
                      json_integer(level > 0 ? (json_int_t)ceil(level) : 0));
  int window_live = shop->bc_window_start_ms &&
                    now_ms < shop->bc_window_start_ms + shop->cfg.bc_window_ms;
  json_object_set_new(bc, "requests_left",
                      json_integer(window_live
                                       ? shop->cfg.bc_quota - shop->bc_used
                                       : shop->cfg.bc_quota));
  json_object_set_new(
      out, "stats",
      json_pack("{so so}", "shopify", shopify, "bigcommerce", bc));
  return out;
}

static void control_error(struct sb_response *resp, int status,
                          const char *message) {
  sb_respond_json(resp, status, json_pack("{ss}", "error", message), NULL);
}

static void serve_shop_config(struct sb_shop *shop,
                              const struct sb_request *req,
                              struct sb_response *resp) {
  int post = strcmp(req->method, "POST") == 0;
  if (!post && strcmp(req->method, "GET") != 0) {
    control_error(resp, 405, "GET or POST only");
    return;
  }
  if (post) {
    char msg[512];
    if (req->too_large) {
      control_error(resp, 413, "body too large");
      return;
    }
    if (!req->json) {
      snprintf(msg, sizeof(msg), "body: %s",
               req->json_error ? req->json_error : "a JSON object is required");
      control_error(resp, 400, msg);
      return;
    }
    pthread_mutex_lock(&shop->lock);
    int rc = sb_shop_config_update(&shop->cfg, req->json, msg, sizeof(msg));
    if (rc == 0)
      reset_limits(shop);
    struct sb_shop_config now = shop->cfg;
    pthread_mutex_unlock(&shop->lock);
    if (rc != 0) {
      control_error(resp, 400, msg);
      return;
    }
    LP_INFO("shop configured",
            "\"orders\":%lld,\"customers\":%lld,\"seed\":%lld", now.orders,
            now.customers, now.seed);
  }
  pthread_mutex_lock(&shop->lock);
  json_t *state = shop_state_json(shop, req->now_ms);
  pthread_mutex_unlock(&shop->lock);
  sb_respond_json(resp, 200, state, NULL);
}

int sb_shop_owns(const char *path) {
  return strncmp(path, "/admin/", 7) == 0 ||
         strncmp(path, "/stores/", 8) == 0 ||
         strcmp(path, "/_sandbox/shop") == 0 ||
         strncmp(path, "/_sandbox/webhooks/", 19) == 0;
}

void sb_shop_serve(struct sb_shop *shop, const struct sb_request *req,
                   struct sb_response *resp) {
  const char *path = req->path;
  if (strcmp(path, "/_sandbox/shop") == 0) {
    serve_shop_config(shop, req, resp);
  } else if (strcmp(path, "/_sandbox/webhooks/send") == 0) {
    if (strcmp(req->method, "POST") == 0)
      sb_shop_webhooks_send(shop, req, resp);
    else
      control_error(resp, 405, "POST only");
  } else if (strcmp(path, "/_sandbox/webhooks/sink") == 0 ||
             strcmp(path, "/_sandbox/webhooks/sink/config") == 0) {
    sb_sink_serve(shop, req, resp);
  } else if (strncmp(path, "/_sandbox/", 10) == 0) {
    control_error(resp, 404,
                  "unknown sandbox webhooks endpoint (send, sink, "
                  "sink/config)");
  } else if (strncmp(path, "/admin/", 7) == 0) {
    sb_shop_shopify_serve(shop, req, resp);
  } else {
    sb_shop_bc_serve(shop, req, resp);
  }
  LP_ASSERT(resp->status >= 100 && resp->status < 600);
}

void sb_shop_rate_headers(struct sb_shop *shop, enum sb_shop_side side,
                          int64_t now_ms, struct sb_response *resp) {
  pthread_mutex_lock(&shop->lock);
  if (side == SB_SHOP_SHOPIFY) {
    double level = shop->bucket_level;
    if (shop->bucket_ms && now_ms > shop->bucket_ms)
      level -=
          (double)(now_ms - shop->bucket_ms) / 1000.0 * shop->cfg.leak_per_s;
    long long used = level > 0 ? (long long)ceil(level - 1e-9) : 0;
    sb_response_header(resp, "X-Shopify-Shop-Api-Call-Limit", "%lld/%lld", used,
                       shop->cfg.bucket_size);
  } else if (shop->bc_window_start_ms &&
             now_ms < shop->bc_window_start_ms + shop->cfg.bc_window_ms) {
    bc_headers(shop, resp, now_ms);
  } else {
    /* No live window: the whole quota, a full window ahead. */
    sb_response_header(resp, "X-Rate-Limit-Requests-Left", "%lld",
                       shop->cfg.bc_quota);
    sb_response_header(resp, "X-Rate-Limit-Requests-Quota", "%lld",
                       shop->cfg.bc_quota);
    sb_response_header(resp, "X-Rate-Limit-Time-Window-Ms", "%lld",
                       shop->cfg.bc_window_ms);
    sb_response_header(resp, "X-Rate-Limit-Time-Reset-Ms", "%lld",
                       shop->cfg.bc_window_ms);
  }
  pthread_mutex_unlock(&shop->lock);
}
