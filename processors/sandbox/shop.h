/*
 * shop.h — the sandbox's shop side: a deterministic generated shop served
 * as Shopify REST (/admin/api/<version>/...) and BigCommerce REST
 * (/stores/<store_hash>/v2|v3/...) for importers, a signed webhook sender
 * (POST /_sandbox/webhooks/send) and a recording webhook sink
 * (/_sandbox/webhooks/sink) to test it against.
 *
 * Module split:
 *   shop.c             state (its own lock), /_sandbox/shop, rate limits
 *                      (Shopify leaky bucket, BigCommerce quota window),
 *                      injected 429s, statistics, the entry point
 *   shop_data.c        the generated shop: order k and customer c are pure
 *                      functions of (configuration, k or c); nothing is
 *                      stored, so a million orders cost no memory
 *   shop_shopify.c     Shopify REST: orders, customers, Link pagination
 *   shop_bigcommerce.c BigCommerce REST: v2 orders/products, v3
 *                      customers and refunds
 *   webhook_sender.c   deliveries over libcurl, one easy handle per worker
 *   webhook_sink.c     records deliveries, verifies HMAC / custom header,
 *                      fails the first F attempts per event on request
 *
 * Locking: the shop has its own mutex (struct sb_shop.lock), never the
 * sandbox's. sb_dispatch hands shop paths over before taking the sandbox
 * lock, so the sender (which may post to this very sandbox's sink) holds
 * no lock while it sends. Lock order, where both are held (reset from
 * control.c): sandbox lock, then shop lock.
 */
#ifndef SB_SHOP_H
#define SB_SHOP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sandbox.h"
#include "strmap.h"

#define SB_SHOP_MAX_ORDERS 1000000LL
#define SB_SHOP_MAX_CUSTOMERS 1000000LL
#define SB_SHOP_MAX_ITEMS 4

/* POST /_sandbox/shop: every field has a default; strings are stored in
 * place so a handler can copy the whole configuration under the lock and
 * generate without it. */
struct sb_shop_config {
  long long orders, customers, seed;
  char shop[128];        /* Shopify shop domain */
  char store_hash[64];   /* BigCommerce store hash */
  char start[40];        /* as given, RFC 3339 */
  int64_t start_s;       /* parsed start, whole seconds */
  long long order_gap_s; /* sandbox extra: mean seconds between orders */
  char shopify_token[128];
  char bigcommerce_token[128];
  long long bucket_size;
  double leak_per_s;
  long long bc_quota, bc_window_ms;
  long long burst_429_permille, cancel_permille, refund_permille;
};

/* Generated order k, everything but the JSON (cheap: filters scan it). */
enum sb_shop_financial {
  SB_FIN_PAID = 0,
  SB_FIN_PARTIALLY_REFUNDED,
  SB_FIN_REFUNDED,
  SB_FIN_VOIDED,
  SB_N_FIN
};

struct sb_shop_line {
  int product; /* catalogue index */
  int quantity;
  int64_t price_cents, line_cents, discount_cents, net_cents, tax_cents;
};

struct sb_shop_order {
  int64_t k;
  int64_t customer; /* index c in 0..customers-1 */
  int64_t created_s, cancelled_s, refund_s, updated_s; /* 0 = none */
  int n_lines;
  struct sb_shop_line line[SB_SHOP_MAX_ITEMS];
  int has_discount;
  int64_t line_cents, discount_cents, subtotal_cents, tax_cents, total_cents;
  int64_t refund_cents;
  int refund_lines; /* lines refunded (from the first); 0 = no refund */
  enum sb_shop_financial financial;
  int bc_status_id;
};

/* Generated customer c. */
struct sb_shop_customer {
  int64_t c;
  int64_t created_s, updated_s;
  int first_name, last_name; /* indexes into the name lists */
  int subscribed;            /* email marketing consent */
  int vip;
  int favourite_category;
};

/* ---- shop_data.c ---- */

/* Fills cfg with the defaults (settings may override orders, customers
 * and seed: the -X shop.* keys). */
void sb_shop_config_defaults(struct sb_shop_config *cfg,
                             const struct sb_settings *settings);
/* Applies a POST /_sandbox/shop body onto *cfg (a copy: on error nothing
 * is changed); unknown keys and bad values are errors naming the key. */
int sb_shop_config_update(struct sb_shop_config *cfg, const json_t *body,
                          char *errstr, size_t errstr_size);
/* The configuration as JSON, tokens included (a dev/test tool; caller
 * owns the result). */
json_t *sb_shop_config_json(const struct sb_shop_config *cfg);

void sb_shop_order_get(const struct sb_shop_config *cfg, int64_t k,
                       struct sb_shop_order *o);
void sb_shop_customer_get(const struct sb_shop_config *cfg, int64_t c,
                          struct sb_shop_customer *cu);
/* Smallest k with created_s(k) >= t (orders when none). */
int64_t sb_shop_first_created_at_or_after(const struct sb_shop_config *cfg,
                                          int64_t t_s);
/* The latest an order's updated_at can be after its created_at. */
int64_t sb_shop_max_update_delay_s(void);

/* Ids. */
int64_t sb_shop_shopify_order_id(int64_t k);
int64_t sb_shop_shopify_customer_id(int64_t c);
int64_t sb_shop_bc_order_id(int64_t k);
int64_t sb_shop_bc_customer_id(int64_t c);
int64_t sb_shop_bc_refund_id(int64_t k);

/* Shopify resources (caller owns): the Order resource with its slim
 * customer, the Customer resource, the order's Refund (NULL when none). */
json_t *sb_shop_shopify_order_json(const struct sb_shop_config *cfg,
                                   const struct sb_shop_order *o);
json_t *sb_shop_shopify_customer_json(const struct sb_shop_config *cfg,
                                      const struct sb_shop_customer *cu);
json_t *sb_shop_shopify_refund_json(const struct sb_shop_config *cfg,
                                    const struct sb_shop_order *o);
/* BigCommerce resources (caller owns); base_url is "http://host" for the
 * sub-resource links. */
json_t *sb_shop_bc_order_json(const struct sb_shop_config *cfg,
                              const struct sb_shop_order *o,
                              const char *base_url);
json_t *sb_shop_bc_products_json(const struct sb_shop_config *cfg,
                                 const struct sb_shop_order *o);
json_t *sb_shop_bc_customer_json(const struct sb_shop_config *cfg,
                                 const struct sb_shop_customer *cu);
/* The order's refund as a v3 payment_actions/refunds element, or NULL. */
json_t *sb_shop_bc_refund_json(const struct sb_shop_config *cfg,
                               const struct sb_shop_order *o);
/* BigCommerce status name of a status id. */
const char *sb_shop_bc_status_name(int status_id);

/* Formats. out holds 40 bytes. */
void sb_shop_time_rfc3339(int64_t s, char out[40]);  /* ...T..+00:00 */
void sb_shop_time_rfc3339z(int64_t s, char out[40]); /* ...T..Z */
void sb_shop_time_rfc2822(int64_t s, char out[40]);
/* RFC 3339 / ISO 8601, or RFC 2822 ("Tue, 20 Nov 2012 00:00:00 +0000"),
 * to epoch ms; 0 or -1. */
int sb_shop_time_parse(const char *s, int64_t *ms);

/* Deterministic hashing for ids and choices. */
uint64_t sb_shop_hash(uint64_t seed, uint64_t domain, uint64_t k);
/* A version-4-shaped UUID from two hashes; out holds 37 bytes. */
void sb_shop_uuid(uint64_t a, uint64_t b, char out[37]);

/* ---- shop.c: state and entry points ---- */

enum sb_shop_side { SB_SHOP_SHOPIFY = 0, SB_SHOP_BIGCOMMERCE, SB_N_SHOP_SIDES };

struct sb_shop_stats {
  long requests;
  long by_status[600];
  long throttled; /* 429 from the bucket / quota */
  long injected;  /* 429 from burst_429_permille */
  long early;     /* sent while an earlier 429's wait was still running */
};

struct sb_sink;

struct sb_shop {
  pthread_mutex_t lock;
  struct sb_shop_config cfg;
  uint64_t prng; /* burst_429_permille rolls */
  /* Shopify leaky bucket (one token, one bucket). */
  double bucket_level;
  int64_t bucket_ms;
  /* BigCommerce quota window. */
  int64_t bc_window_start_ms;
  long long bc_used;
  int64_t not_before_ms[SB_N_SHOP_SIDES]; /* promised by the last 429 */
  struct sb_shop_stats stats[SB_N_SHOP_SIDES];
  uint64_t sends; /* webhook sends started: makes webhook ids unique */
  volatile int stopping;
  struct sb_sink *sink;
  const struct sb_settings *settings; /* borrowed */
};

/* settings is borrowed and must outlive the shop. Calls
 * curl_global_init, so call it before any thread starts. */
struct sb_shop *sb_shop_new(const struct sb_settings *settings);
/* NULLs the caller's pointer; accepts NULL. */
void sb_shop_destroy(struct sb_shop **shop);
/* Ends webhook sends early (remaining deliveries are not attempted). */
void sb_shop_shutdown(struct sb_shop *shop);
/* POST /_sandbox/reset: clears buckets, quota, statistics and the sink's
 * records; the configuration stays. Takes the shop lock. */
void sb_shop_reset(struct sb_shop *shop);
/* 1 when the shop serves path (REST prefixes, /_sandbox/shop,
 * /_sandbox/webhooks/...). */
int sb_shop_owns(const char *path);
/* Serves one request; takes the shop lock itself, never the sandbox's. */
void sb_shop_serve(struct sb_shop *shop, const struct sb_request *req,
                   struct sb_response *resp);

/* A copy of the configuration (takes the lock): handlers generate from
 * the copy without the lock. */
void sb_shop_snapshot(struct sb_shop *shop, struct sb_shop_config *cfg);
/* Rate limiting for an authenticated request (takes the lock). Returns 0
 * when it may proceed (the rate headers are set on resp), else 1 with the
 * 429 filled in (bucket or quota full, or an injected 429). */
int sb_shop_admit(struct sb_shop *shop, enum sb_shop_side side, int64_t now_ms,
                  struct sb_response *resp);
/* The rate headers without counting a request (a 401 or an unknown
 * store still shows them, as every response does). Takes the lock. */
void sb_shop_rate_headers(struct sb_shop *shop, enum sb_shop_side side,
                          int64_t now_ms, struct sb_response *resp);
/* Counts the final status of an admitted (or refused) request. */
void sb_shop_count(struct sb_shop *shop, enum sb_shop_side side, int status);

/* "http://<Host header>" for links (sanitised; 127.0.0.1 when absent). */
void sb_shop_base_url(const struct sb_request *req, char *out, size_t size);

/* Every query argument of the request, for "which filters were given"
 * (req->conn is the libmicrohttpd connection, see server.c). Calls fn
 * for each; stops when fn returns non-zero. */
void sb_shop_query_each(const struct sb_request *req,
                        int (*fn)(void *cls, const char *key,
                                  const char *value),
                        void *cls);

/* ---- shop_shopify.c / shop_bigcommerce.c (lock not held) ---- */
void sb_shop_shopify_serve(struct sb_shop *shop, const struct sb_request *req,
                           struct sb_response *resp);
void sb_shop_bc_serve(struct sb_shop *shop, const struct sb_request *req,
                      struct sb_response *resp);

/* ---- webhook_sender.c (no lock held while sending) ---- */
void sb_shop_webhooks_send(struct sb_shop *shop, const struct sb_request *req,
                           struct sb_response *resp);

/* ---- webhook_sink.c ---- */
struct sb_sink *sb_sink_new(void);
void sb_sink_destroy(struct sb_sink **sink);
/* Forgets every record and attempt count; keeps the configuration.
 * Shop lock held. */
void sb_sink_clear(struct sb_sink *sink);
/* /_sandbox/webhooks/sink[/config]; takes the shop lock. */
void sb_sink_serve(struct sb_shop *shop, const struct sb_request *req,
                   struct sb_response *resp);

/* Base64 (standard alphabet, padded) of HMAC-SHA256(key, data); out
 * holds 45 bytes. */
void sb_shop_hmac_sha256_base64(const char *key, size_t key_len,
                                const void *data, size_t len, char out[45]);

#endif
