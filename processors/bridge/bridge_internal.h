/*
 * bridge_internal.h — what the bridge's platform handlers share with its
 * server core (bridge.c): the running state, answering and counting a
 * request, the Redis pool (dedupe window, order index), producing a
 * canonical record and waiting for Kafka's acknowledgement, dead letters,
 * and the REST fetches with per-store rate limits (bridge_fetch.c).
 *
 * One handler per platform: bridge_shopify.c, bridge_bigcommerce.c,
 * bridge_adobe.c. A handler runs on the connection's thread and may block
 * (Redis, Kafka's ack, a REST fetch): other connections have their own
 * threads.
 */
#ifndef LP_BRIDGE_INTERNAL_H
#define LP_BRIDGE_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include <hiredis.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#include "adobe.h"
#include "avro_codec.h"
#include "bridge.h"
#include "events.h"
#include "http_get.h"
#include "util.h"

#define BR_POOL_MAX 64 /* idle Redis connections / curl handles kept */
#define BR_STORES_MAX 256

/* Free-list of idle handles (Redis contexts, curl handles). */
struct br_pool {
  pthread_mutex_t lock;
  void *idle[BR_POOL_MAX];
  int n;
};

/* A REST API's rate-limit state for one store (BigCommerce: per store
 * hash; Shopify: per shop): no request leaves before wait_until_us. */
struct br_store_rate {
  char store[96];
  int64_t wait_until_us; /* lp_mono_us clock */
};

struct bridge {
  const struct lp_bridge_config *c;
  rd_kafka_t *producer;
  rd_kafka_topic_t *orders, *customers, *dlq;
  struct lp_avro_codec *avro;
  pthread_mutex_t avro_lock;
  struct br_pool redis; /* redisContext * */
  struct br_pool curl;  /* CURL * */
  pthread_mutex_t rate_lock;
  struct br_store_rate rates[BR_STORES_MAX];
  int n_rates;
  struct lp_adobe_keys *adobe_keys; /* parsed adobe.public.keys */
  volatile sig_atomic_t *stop;
  volatile int poll_stop;
  pthread_t poller;
};

/* ---- answers (bridge.c) ---- */

enum MHD_Result br_answer(struct MHD_Connection *con, unsigned status,
                          const char *json);
/* {"error": reason} with status; counted by platform, topic and status,
 * logged as a warning. */
enum MHD_Result br_fail(struct MHD_Connection *con, const char *platform,
                        const char *topic, unsigned status, const char *reason);
/* Counts one answered webhook ("platform topic status"). */
void br_count(const char *platform, const char *topic, unsigned status);
/* A request header (case-insensitive) or NULL. */
const char *br_header(struct MHD_Connection *con, const char *name);

/* ---- Redis (bridge.c): NULL / -1 while Redis is away ---- */

/* A command on a pooled connection; the caller frees the reply. */
redisReply *br_redis(struct bridge *b, const char *fmt, ...);
/* SET key value EX ttl_s; 0 or -1. */
int br_remember(struct bridge *b, const char *key, const char *value,
                long ttl_s);

/*
 * The dedupe window's claim on one webhook's key. Claimed before the
 * record is produced ("pending", for as long as a delivery can take), so
 * two concurrent deliveries of one event cannot both be produced; settled
 * to "done" for dedupe.window.s once Kafka acknowledged it (or the dead
 * letter was kept); released on any failure, so the platform's retry goes
 * through. key NULL = nothing to dedupe on.
 */
struct br_claim {
  char *key; /* owned; NULL when there is no key or Redis was away */
  int settled;
};
enum br_claim_state {
  BR_CLAIMED = 0,   /* go on; settle or release */
  BR_DONE = 1,      /* delivered before: answer duplicate */
  BR_IN_FLIGHT = 2, /* another delivery of it is being produced: 409 */
};
/* Takes ownership of key (may be NULL). Redis away: BR_CLAIMED without a
 * key (the processors still dedupe on the event id). */
enum br_claim_state br_claim(struct bridge *b, char *key, struct br_claim *cl);
/* Releases a claim nobody settled (the request failed); frees it. */
void br_claim_end(struct bridge *b, struct br_claim *cl);
/* The answer to BR_DONE / BR_IN_FLIGHT. */
enum MHD_Result br_claim_answer(struct MHD_Connection *con,
                                const char *platform, const char *topic,
                                enum br_claim_state st);

/* ---- Kafka (bridge.c) ---- */

struct br_produced {
  int32_t partition;
  int64_t offset;
};

/* Encodes the order (or, when order is NULL, the customer), produces it
 * keyed by member and waits for the acknowledgement. 0 when acknowledged;
 * 400 when it cannot be encoded; 503 when Kafka refused it or did not
 * acknowledge within ack.timeout.ms. errstr says why. */
int br_produce(struct bridge *b, const struct lp_order_event *order,
               const struct lp_customer_event *customer,
               struct br_produced *out, char *errstr, size_t errstr_size);

/* The usual ending of a handled webhook: produce, then settle the claim,
 * count and answer 200 with the event id, topic, partition and offset
 * (or the 400/503, leaving the claim to br_claim_end). */
enum MHD_Result br_deliver(struct bridge *b, struct MHD_Connection *con,
                           const char *platform, const char *topic,
                           struct br_claim *claim,
                           const struct lp_order_event *order,
                           const struct lp_customer_event *customer);

/* Sends the webhook's body to the dead-letter topic with the reason and
 * waits for the acknowledgement; answers 200 {"dead_letter": reason} once
 * it is kept (the platform must not retry what can never be mapped), 503
 * when Kafka did not take it. */
enum MHD_Result br_dead_letter(struct bridge *b, struct MHD_Connection *con,
                               const char *platform, const char *topic,
                               struct br_claim *claim,
                               const struct lp_buf *body, const char *reason,
                               const char *field);

/* ---- REST fetches (bridge_fetch.c) ---- */

/*
 * GETs url with headers, for store (rate-limit bucket), retrying 429s
 * (waiting Retry-After or X-Rate-Limit-Time-Reset-Ms), 5xx and transport
 * errors with backoff until fetch.timeout.ms has passed, and keeping to
 * the store's X-Rate-Limit-Requests-Left. 0 with the final response (2xx
 * or 4xx other than 429: r->status says which); -1 when no usable answer
 * came in time (errstr says why: the caller answers 503).
 */
int br_fetch(struct bridge *b, const char *store, const char *url,
             const char *const *headers, struct lp_http_response *r,
             char *errstr, size_t errstr_size);

/* ---- platforms ---- */

enum MHD_Result br_shopify(struct bridge *b, struct MHD_Connection *con,
                           const struct lp_buf *body);
enum MHD_Result br_bigcommerce(struct bridge *b, struct MHD_Connection *con,
                               const struct lp_buf *body);
enum MHD_Result br_adobe(struct bridge *b, struct MHD_Connection *con,
                         const struct lp_buf *body);
/* GET /webhooks/adobe?challenge=...: I/O Events' registration check. */
enum MHD_Result br_adobe_challenge(struct bridge *b,
                                   struct MHD_Connection *con);

/* Pools: take an idle handle (NULL when none) / give one back (closed
 * with destroy when the pool is full). */
void *br_pool_take(struct br_pool *p);
void br_pool_give(struct br_pool *p, void *h, void (*destroy)(void *));

#endif
