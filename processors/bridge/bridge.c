/*
 * bridge.c — the bridge's server core: platform webhooks over HTTP in,
 * canonical events on Kafka out (the platform handlers are
 * bridge_shopify.c, bridge_bigcommerce.c and bridge_adobe.c; see
 * bridge_internal.h).
 *
 * One thread per connection (libmicrohttpd), at most connection.limit,
 * each closed after connection.timeout.s of silence, so a slow or idle
 * client holds one thread for a bounded time and never the others. A
 * request is read whole (body.max.bytes, else 413) and handed to its
 * platform's handler, which checks the signature (401), the dedupe window
 * (a repeat answers 200 and produces nothing), decodes and validates into
 * a canonical OrderEvent / CustomerEvent (400 with the field and the
 * reason), and produces it keyed by member; the answer is 200 only when
 * Kafka acknowledged it, 503 when the delivery fails or takes longer than
 * ack.timeout.ms (the platform retries; the event id makes the retry
 * dedupe downstream). A poll thread serves librdkafka's delivery reports.
 * Redis connections and curl handles are pooled, so no request waits for
 * another's round trip.
 */
#include "bridge.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>
#include <hiredis.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#include "bridge_internal.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* One produced record waiting for its delivery report. Two references:
 * the request (which may stop waiting) and librdkafka's. */
struct ack {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int refs;
  int done;
  rd_kafka_resp_err_t err;
  int32_t partition;
  int64_t offset;
};

static void ack_release(struct ack *a) {
  pthread_mutex_lock(&a->lock);
  int left = --a->refs;
  pthread_mutex_unlock(&a->lock);
  if (left == 0) {
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
  }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  struct ack *a = m->_private;
  pthread_mutex_lock(&a->lock);
  a->done = 1;
  a->err = m->err;
  a->partition = m->partition;
  a->offset = m->offset;
  pthread_cond_signal(&a->cond);
  pthread_mutex_unlock(&a->lock);
  ack_release(a);
}

static void *poll_thread(void *opaque) {
  struct bridge *b = opaque;
  while (!b->poll_stop)
    rd_kafka_poll(b->producer, 100);
  return NULL;
}

/* ---- pools ---- */

void *br_pool_take(struct br_pool *p) {
  pthread_mutex_lock(&p->lock);
  void *h = p->n ? p->idle[--p->n] : NULL;
  pthread_mutex_unlock(&p->lock);
  return h;
}

void br_pool_give(struct br_pool *p, void *h, void (*destroy)(void *)) {
  if (!h)
    return;
  pthread_mutex_lock(&p->lock);
  if (p->n < BR_POOL_MAX) {
    p->idle[p->n++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&p->lock);
  if (h)
    destroy(h);
}

static void redis_destroy(void *h) {
  redisFree(h);
}

/* ---- answers ---- */

enum MHD_Result br_answer(struct MHD_Connection *con, unsigned status,
                          const char *json) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result rc = MHD_queue_response(con, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* Topics a metric label may name: anything else (a header an unsigned
 * sender chose) counts as "other", so labels stay a bounded set. */
static const char *const known_topics[] = {
    "orders/create",
    "orders/paid",
    "orders/cancelled",
    "refunds/create",
    "customers/create",
    "customers/update",
    "store/order/created",
    "store/order/updated",
    "store/order/statusUpdated",
    "store/order/archived",
    "store/order/refund/created",
    "store/customer/created",
    "store/customer/updated",
    "order",
    "customer",
};

void br_count(const char *platform, const char *topic, unsigned status) {
  const char *t = "-";
  if (topic) {
    t = "other";
    for (size_t i = 0; i < LP_ARRAY_LEN(known_topics); i++)
      if (strcmp(topic, known_topics[i]) == 0)
        t = topic;
  }
  char label[128];
  snprintf(label, sizeof(label), "%.40s %.40s %u", platform, t, status);
  lp_metrics_labelled_add("loyalty_webhooks_total",
                          "Webhooks received, by platform, topic and answer",
                          "webhook", label, 1);
}

enum MHD_Result br_fail(struct MHD_Connection *con, const char *platform,
                        const char *topic, unsigned status,
                        const char *reason) {
  br_count(platform, topic, status);
  LP_WARN("webhook refused",
          "\"platform\":%s,\"status\":%u,\"topic\":%s,\"reason\":%s",
          lp_log_str(platform), status, lp_log_str(topic), lp_log_str(reason));
  struct lp_buf b;
  lp_buf_init(&b);
  lp_buf_appendf(&b, "{\"error\":%s}", lp_log_str(reason));
  enum MHD_Result rc = br_answer(con, status, lp_buf_cstr(&b));
  lp_buf_free(&b);
  return rc;
}

const char *br_header(struct MHD_Connection *con, const char *name) {
  return MHD_lookup_connection_value(con, MHD_HEADER_KIND, name);
}

/* ---- Redis ---- */

redisReply *br_redis(struct bridge *b, const char *fmt, ...) {
  const struct lp_bridge_config *c = b->c;
  redisContext *rc = br_pool_take(&b->redis);
  if (!rc) {
    struct timeval tv = {c->redis_timeout_ms / 1000,
                         (c->redis_timeout_ms % 1000) * 1000};
    rc = redisConnectWithTimeout(c->redis_host, (int)c->redis_port, tv);
    if (!rc || rc->err) {
      if (rc)
        redisFree(rc);
      return NULL;
    }
    redisSetTimeout(rc, tv);
  }
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(rc, fmt, ap);
  va_end(ap);
  if (!r) { /* the connection is broken: drop it */
    redisFree(rc);
    return NULL;
  }
  br_pool_give(&b->redis, rc, redis_destroy);
  if (r->type == REDIS_REPLY_ERROR) {
    LP_WARN("redis error", "\"error\":%s", lp_log_str(r->str));
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

int br_remember(struct bridge *b, const char *key, const char *value,
                long ttl_s) {
  redisReply *r =
      br_redis(b, "SET %s %s EX %lld", key, value, (long long)ttl_s);
  if (!r)
    return -1;
  freeReplyObject(r);
  return 0;
}

/* How long a claim stays pending without its owner: the longest a
 * delivery can take (fetches, the acknowledgement, its grace), plus a
 * margin. */
static long claim_ttl_s(const struct lp_bridge_config *c) {
  /* A BigCommerce order callback makes two fetches one after the other. */
  return (c->ack_timeout_ms + 2 * c->fetch_timeout_ms) / 1000 + 5;
}

enum br_claim_state br_claim(struct bridge *b, char *key, struct br_claim *cl) {
  cl->key = NULL;
  cl->settled = 0;
  if (!key)
    return BR_CLAIMED;
  redisReply *r = br_redis(b, "SET %s pending NX EX %lld", key,
                           (long long)claim_ttl_s(b->c));
  if (!r) {
    free(key);
    return BR_CLAIMED;
  }
  int claimed = r->type == REDIS_REPLY_STATUS;
  freeReplyObject(r);
  if (claimed) {
    cl->key = key;
    return BR_CLAIMED;
  }
  r = br_redis(b, "GET %s", key);
  free(key);
  int done = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0;
  if (r)
    freeReplyObject(r);
  /* Gone between the two calls (released): in flight, retry later. */
  return done ? BR_DONE : BR_IN_FLIGHT;
}

/* Marks the claim done for the dedupe window. */
static void claim_settle(struct bridge *b, struct br_claim *cl) {
  if (cl && cl->key && !cl->settled) {
    br_remember(b, cl->key, "1", b->c->dedupe_window_s);
    cl->settled = 1;
  }
}

void br_claim_end(struct bridge *b, struct br_claim *cl) {
  if (cl->key && !cl->settled) {
    redisReply *r = br_redis(b, "DEL %s", cl->key);
    if (r)
      freeReplyObject(r);
  }
  free(cl->key);
  cl->key = NULL;
}

enum MHD_Result br_claim_answer(struct MHD_Connection *con,
                                const char *platform, const char *topic,
                                enum br_claim_state st) {
  char label[64];
  if (st == BR_IN_FLIGHT) {
    /* Not 200: if the delivery in flight fails, this one's retry is what
     * brings the event. */
    snprintf(label, sizeof(label), "%.30s in_flight", platform);
    br_count(label, topic, MHD_HTTP_CONFLICT);
    return br_answer(con, MHD_HTTP_CONFLICT,
                     "{\"error\":\"another delivery of this event is being "
                     "produced; retry later\"}");
  }
  snprintf(label, sizeof(label), "%.30s duplicate", platform);
  br_count(label, topic, MHD_HTTP_OK);
  return br_answer(con, MHD_HTTP_OK, "{\"duplicate\":true}");
}

/* ---- Kafka ---- */

#define ACK_GRACE_MS 1000

/* Produces bytes keyed by key to topic and waits for the report: 0, or
 * 503 with errstr. */
static int produce_wait(struct bridge *b, rd_kafka_topic_t *topic,
                        const struct lp_buf *value, const char *key,
                        struct br_produced *out, char *errstr,
                        size_t errstr_size) {
  const struct lp_bridge_config *c = b->c;
  struct ack *a = lp_xcalloc(1, sizeof(*a));
  pthread_mutex_init(&a->lock, NULL);
  pthread_cond_init(&a->cond, NULL);
  a->refs = 2;
  if (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                       value->data, value->len, key, key ? strlen(key) : 0,
                       a) != 0) {
    a->refs = 1;
    ack_release(a);
    lp_err(errstr, errstr_size, "kafka: %s",
           rd_kafka_err2str(rd_kafka_last_error()));
    return 503;
  }
  /* librdkafka reports every record by message.timeout.ms (= ack.timeout.ms)
   * at the latest; the grace lets a report that comes just after it be
   * the answer, rather than a 503 for a record Kafka has. */
  long wait_ms = c->ack_timeout_ms + ACK_GRACE_MS;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += wait_ms / 1000;
  until.tv_nsec += (wait_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&a->lock);
  while (!a->done)
    if (pthread_cond_timedwait(&a->cond, &a->lock, &until) == ETIMEDOUT)
      break;
  int done = a->done;
  rd_kafka_resp_err_t kerr = a->err;
  out->partition = a->partition;
  out->offset = a->offset;
  pthread_mutex_unlock(&a->lock);
  ack_release(a);
  if (!done)
    return lp_err(errstr, errstr_size,
                  "kafka: not acknowledged within ack.timeout.ms"),
           503;
  if (kerr)
    return lp_err(errstr, errstr_size, "kafka: %s", rd_kafka_err2str(kerr)),
           503;
  return 0;
}

int br_produce(struct bridge *b, const struct lp_order_event *order,
               const struct lp_customer_event *customer,
               struct br_produced *out, char *errstr, size_t errstr_size) {
  struct lp_buf value;
  lp_buf_init(&value);
  pthread_mutex_lock(&b->avro_lock);
  int rc =
      order ? lp_avro_encode_order(b->avro, order, &value, errstr, errstr_size)
            : lp_avro_encode_customer(b->avro, customer, &value, errstr,
                                      errstr_size);
  pthread_mutex_unlock(&b->avro_lock);
  if (rc) {
    lp_buf_free(&value);
    return 400;
  }
  char *key = order ? lp_member_key(order->shop, order->customer_id)
                    : lp_member_key(customer->shop, customer->customer_id);
  rc = produce_wait(b, order ? b->orders : b->customers, &value, key, out,
                    errstr, errstr_size);
  free(key);
  lp_buf_free(&value);
  return rc;
}

enum MHD_Result br_deliver(struct bridge *b, struct MHD_Connection *con,
                           const char *platform, const char *topic,
                           struct br_claim *claim,
                           const struct lp_order_event *order,
                           const struct lp_customer_event *customer) {
  const struct lp_bridge_config *c = b->c;
  struct br_produced at;
  char err[512];
  int rc = br_produce(b, order, customer, &at, err, sizeof(err));
  if (rc)
    return br_fail(con, platform, topic, (unsigned)rc, err);
  claim_settle(b, claim);
  br_count(platform, topic, MHD_HTTP_OK);
  struct lp_buf ok;
  lp_buf_init(&ok);
  lp_buf_appendf(&ok,
                 "{\"event_id\":%s,\"topic\":%s,\"partition\":%d,"
                 "\"offset\":%lld}",
                 lp_log_str(order ? order->event_id : customer->event_id),
                 lp_log_str(order ? c->topic_orders : c->topic_customers),
                 (int)at.partition, (long long)at.offset);
  enum MHD_Result result = br_answer(con, MHD_HTTP_OK, lp_buf_cstr(&ok));
  lp_buf_free(&ok);
  return result;
}

enum MHD_Result br_dead_letter(struct bridge *b, struct MHD_Connection *con,
                               const char *platform, const char *topic,
                               struct br_claim *claim,
                               const struct lp_buf *body, const char *reason,
                               const char *field) {
  char *source = lp_xasprintf("webhook:%s:%s", platform, topic ? topic : "-");
  struct lp_dead_letter dl = {
      .source_topic = source,
      .source_partition = -1,
      .source_offset = -1,
      .original = body->data,
      .original_len = body->len,
      .processor = "bridge",
      .reason = (char *)reason,
      .field = (char *)field,
      .time_ms = lp_now_ms(),
  };
  struct lp_buf value;
  lp_buf_init(&value);
  char err[512];
  pthread_mutex_lock(&b->avro_lock);
  int rc = lp_avro_encode_dead_letter(b->avro, &dl, &value, err, sizeof(err));
  pthread_mutex_unlock(&b->avro_lock);
  struct br_produced at;
  if (rc == 0)
    rc = produce_wait(b, b->dlq, &value, NULL, &at, err, sizeof(err));
  free(source);
  lp_buf_free(&value);
  if (rc)
    return br_fail(con, platform, topic, MHD_HTTP_SERVICE_UNAVAILABLE, err);
  claim_settle(b, claim);
  char label[64];
  snprintf(label, sizeof(label), "%.30s dead_letter", platform);
  br_count(label, topic, MHD_HTTP_OK);
  LP_WARN("webhook dead-lettered",
          "\"platform\":%s,\"topic\":%s,\"reason\":%s,\"partition\":%d,"
          "\"offset\":%lld",
          lp_log_str(platform), lp_log_str(topic), lp_log_str(reason),
          (int)at.partition, (long long)at.offset);
  struct lp_buf ok;
  lp_buf_init(&ok);
  lp_buf_appendf(&ok, "{\"dead_letter\":%s}", lp_log_str(reason));
  enum MHD_Result result = br_answer(con, MHD_HTTP_OK, lp_buf_cstr(&ok));
  lp_buf_free(&ok);
  return result;
}

/* ---- one request ---- */

struct request {
  struct lp_buf body;
  int too_large;
};

/* The platform endpoints: path, handler, and whether it is configured. */
static int platform_on(const struct lp_bridge_config *c, int which) {
  switch (which) {
  case 0:
    return *c->shopify_secrets != '\0';
  case 1:
    return *c->bigcommerce_secrets != '\0';
  default:
    return *c->adobe_public_keys != '\0';
  }
}

static const struct {
  const char *path, *platform, *setting;
  enum MHD_Result (*handler)(struct bridge *, struct MHD_Connection *,
                             const struct lp_buf *);
} endpoints[] = {
    {"/webhooks/shopify", "shopify", "shopify.secrets", br_shopify},
    {"/webhooks/bigcommerce", "bigcommerce", "bigcommerce.secrets",
     br_bigcommerce},
    {"/webhooks/adobe", "adobe", "adobe.public.keys", br_adobe},
};

static int endpoint_of(const char *url) {
  for (size_t i = 0; i < LP_ARRAY_LEN(endpoints); i++)
    if (strcmp(url, endpoints[i].path) == 0)
      return (int)i;
  return -1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *data_size, void **con_cls) {
  (void)version;
  struct bridge *b = cls;
  int ep = endpoint_of(url);
  if (strcmp(method, "GET") == 0) {
    if (strcmp(url, "/healthz") == 0)
      return br_answer(con, MHD_HTTP_OK, "{\"ok\":true}");
    if (strcmp(url, "/metrics") == 0) {
      struct lp_buf m;
      lp_buf_init(&m);
      lp_metrics_render(&m);
      enum MHD_Result rc = br_answer(con, MHD_HTTP_OK, lp_buf_cstr(&m));
      lp_buf_free(&m);
      return rc;
    }
    if (ep == 2 && platform_on(b->c, ep))
      return br_adobe_challenge(b, con);
    return br_fail(con, "-", NULL, MHD_HTTP_NOT_FOUND, "no such path");
  }
  if (strcmp(method, "POST") != 0)
    return br_fail(con, "-", NULL, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only");
  struct request *rq = *con_cls;
  if (!rq) {
    rq = lp_xcalloc(1, sizeof(*rq));
    lp_buf_init(&rq->body);
    *con_cls = rq;
    const char *len =
        MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
    if (len && strtoll(len, NULL, 10) > b->c->body_max_bytes)
      rq->too_large = 1;
    return MHD_YES;
  }
  if (*data_size) {
    if (!rq->too_large &&
        rq->body.len + *data_size <= (size_t)b->c->body_max_bytes)
      lp_buf_append(&rq->body, data, *data_size);
    else
      rq->too_large = 1; /* read on, keep nothing */
    *data_size = 0;
    return MHD_YES;
  }
  const char *platform = ep >= 0 ? endpoints[ep].platform : "-";
  if (ep < 0)
    return br_fail(con, platform, NULL, MHD_HTTP_NOT_FOUND,
                   "no such path (POST /webhooks/shopify, "
                   "/webhooks/bigcommerce, /webhooks/adobe)");
  if (!platform_on(b->c, ep)) {
    char why[160];
    snprintf(why, sizeof(why), "%s: not configured on this bridge (%s)",
             platform, endpoints[ep].setting);
    return br_fail(con, platform, NULL, MHD_HTTP_NOT_FOUND, why);
  }
  if (rq->too_large) {
    char why[96];
    snprintf(why, sizeof(why), "body: larger than body.max.bytes (%ld)",
             b->c->body_max_bytes);
    return br_fail(con, platform, NULL, 413, why);
  }
  return endpoints[ep].handler(b, con, &rq->body);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)con;
  (void)toe;
  struct request *rq = *con_cls;
  if (rq) {
    lp_buf_free(&rq->body);
    free(rq);
  }
  *con_cls = NULL;
}

/* Reads and parses every PEM file of adobe.public.keys; 0 or -1 with
 * errstr (a file that cannot be read or holds no usable RSA key). */
static int load_adobe_keys(struct bridge *b, char *errstr, size_t errstr_size) {
  const char *spec = b->c->adobe_public_keys;
  if (!*spec)
    return 0;
  char *copy = lp_xstrdup(spec), *save = NULL;
  char **pems = NULL;
  size_t n = 0;
  int rc = 0;
  for (char *path = strtok_r(copy, ",", &save); path && rc == 0;
       path = strtok_r(NULL, ",", &save)) {
    while (*path == ' ')
      path++;
    FILE *f = fopen(path, "rb");
    struct lp_buf pem;
    lp_buf_init(&pem);
    char chunk[4096];
    size_t got;
    while (f && (got = fread(chunk, 1, sizeof(chunk), f)) > 0 &&
           pem.len < 65536)
      lp_buf_append(&pem, chunk, got);
    if (!f || ferror(f))
      rc = lp_err(errstr, errstr_size, "%s: %s", path,
                  !f ? strerror(errno) : "read error");
    pems = lp_xrealloc(pems, (n + 1) * sizeof(*pems));
    pems[n++] = lp_xstrdup(lp_buf_cstr(&pem));
    if (f)
      fclose(f);
    lp_buf_free(&pem);
    if (rc == 0) {
      struct lp_adobe_keys *one =
          lp_adobe_keys_new((const char *const *)&pems[n - 1], 1);
      if (lp_adobe_keys_count(one) == 0)
        rc = lp_err(errstr, errstr_size, "%s: no RSA public key (PEM) in it",
                    path);
      lp_adobe_keys_destroy(&one);
    }
  }
  if (rc == 0)
    b->adobe_keys = lp_adobe_keys_new((const char *const *)pems, n);
  for (size_t i = 0; i < n; i++)
    free(pems[i]);
  free(pems);
  free(copy);
  return rc;
}

int lp_bridge_run(const struct lp_bridge_config *c,
                  struct lp_kafka_props *kafka, volatile sig_atomic_t *stop) {
  struct bridge b;
  memset(&b, 0, sizeof(b));
  b.c = c;
  b.stop = stop;
  pthread_mutex_init(&b.avro_lock, NULL);
  pthread_mutex_init(&b.redis.lock, NULL);
  pthread_mutex_init(&b.curl.lock, NULL);
  pthread_mutex_init(&b.rate_lock, NULL);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  char err[512];
  int status = 2;
  struct MHD_Daemon *d = NULL;
  if (!*c->shopify_secrets && !*c->bigcommerce_secrets &&
      !*c->adobe_public_keys) {
    fprintf(stderr, "bridge: no platform configured: set shopify.secrets, "
                    "bigcommerce.secrets or adobe.public.keys\n");
    goto out;
  }
  if (*c->bigcommerce_secrets && !*c->bigcommerce_tokens) {
    fprintf(stderr, "bridge: bigcommerce.tokens: BigCommerce webhooks carry "
                    "ids only; an API token per store (STORE_HASH=TOKEN) is "
                    "needed to fetch the orders\n");
    goto out;
  }
  if (load_adobe_keys(&b, err, sizeof(err))) {
    fprintf(stderr, "bridge: adobe.public.keys: %s\n", err);
    goto out;
  }
  if (lp_kafka_resolve_bootstrap(kafka, c->bootstrap_file, err, sizeof(err))) {
    fprintf(stderr, "bridge: %s\n", err);
    goto out;
  }
  char timeout[24];
  snprintf(timeout, sizeof(timeout), "%ld", c->ack_timeout_ms);
  /* A record not delivered in time fails rather than landing after the
   * 503 (the platform's retry brings it again). */
  const char *defaults[] = {"enable.idempotence", "true",  "linger.ms", "0",
                            "message.timeout.ms", timeout, NULL};
  rd_kafka_conf_t *pc = lp_kafka_conf_build(defaults, kafka, err, sizeof(err));
  if (!pc) {
    fprintf(stderr, "bridge: %s\n", err);
    goto out;
  }
  rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
  b.producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
  if (!b.producer) {
    rd_kafka_conf_destroy(pc);
    fprintf(stderr, "bridge: %s\n", err);
    goto out;
  }
  b.orders = rd_kafka_topic_new(b.producer, c->topic_orders, NULL);
  b.customers = rd_kafka_topic_new(b.producer, c->topic_customers, NULL);
  b.dlq = rd_kafka_topic_new(b.producer, c->topic_dlq, NULL);
  b.avro = lp_avro_codec_new(NULL, err, sizeof(err));
  if (!b.avro) {
    fprintf(stderr, "bridge: %s\n", err);
    goto out;
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)c->http_port);
  if (inet_pton(AF_INET, c->http_bind, &addr.sin_addr) != 1) {
    fprintf(stderr, "bridge: http.bind: \"%s\" is not an IPv4 address\n",
            c->http_bind);
    goto out;
  }
  status = 1;
  pthread_create(&b.poller, NULL, poll_thread, &b);
  d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_ERROR_LOG,
      (uint16_t)c->http_port, NULL, NULL, on_request, &b,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->connection_limit,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->connection_timeout_s,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "bridge: cannot listen on port %ld\n", c->http_port);
    b.poll_stop = 1;
    pthread_join(b.poller, NULL);
    goto out;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  LP_INFO("bridge listening", "\"http_port\":%d,\"orders\":%s,\"customers\":%s",
          info ? (int)info->port : (int)c->http_port,
          lp_log_str(c->topic_orders), lp_log_str(c->topic_customers));
  while (!*stop)
    usleep(100000);
  LP_INFO("bridge stopping", "\"in_flight\":%d", rd_kafka_outq_len(b.producer));
  MHD_stop_daemon(d); /* waits for the requests in hand (and their acks) */
  b.poll_stop = 1;
  pthread_join(b.poller, NULL);
  rd_kafka_flush(b.producer, 5000);
  status = 0;
out:
  if (b.orders)
    rd_kafka_topic_destroy(b.orders);
  if (b.customers)
    rd_kafka_topic_destroy(b.customers);
  if (b.dlq)
    rd_kafka_topic_destroy(b.dlq);
  if (b.producer)
    rd_kafka_destroy(b.producer);
  lp_avro_codec_destroy(&b.avro);
  for (void *h; (h = br_pool_take(&b.redis));)
    redisFree(h);
  for (void *h; (h = br_pool_take(&b.curl));)
    curl_easy_cleanup(h);
  lp_adobe_keys_destroy(&b.adobe_keys);
  pthread_mutex_destroy(&b.avro_lock);
  pthread_mutex_destroy(&b.redis.lock);
  pthread_mutex_destroy(&b.curl.lock);
  pthread_mutex_destroy(&b.rate_lock);
  curl_global_cleanup();
  return status;
}
