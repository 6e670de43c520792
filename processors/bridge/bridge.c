/*
 * bridge.c — Shopify webhooks to canonical events on Kafka.
 *
 * One thread per connection (libmicrohttpd), at most connection.limit,
 * each closed after connection.timeout.s of silence, so a slow or idle
 * client holds one thread for a bounded time and never the others. A
 * request is read whole (body.max.bytes, else 413), its signature checked
 * (401), its X-Shopify-Event-Id looked up in the dedupe window (a repeat
 * answers 200 and produces nothing), decoded and validated into a
 * canonical OrderEvent / CustomerEvent (400 with the field and the
 * reason), produced keyed by member, and answered 200 only when Kafka
 * acknowledged it; a delivery that fails or takes longer than
 * ack.timeout.ms answers 503 (the platform retries; the event id makes
 * the retry dedupe downstream). A poll thread serves librdkafka's delivery
 * reports.
 */
#include "bridge.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <hiredis.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#include "avro_codec.h"
#include "events.h"
#include "json_codec.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "webhook.h"

struct bridge {
  const struct lp_bridge_config *c;
  rd_kafka_t *producer;
  rd_kafka_topic_t *orders, *customers;
  struct lp_avro_codec *avro;
  pthread_mutex_t avro_lock;
  redisContext *redis; /* under redis_lock; NULL while disconnected */
  pthread_mutex_t redis_lock;
  volatile sig_atomic_t *stop;
  volatile int poll_stop; /* set once the HTTP side has stopped */
  pthread_t poller;
};

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

/* ---- Redis dedupe window ---- */

/* 1 seen, 0 not, -1 Redis unavailable (then the event goes through: the
 * processors dedupe on the event id too). Under redis_lock. */
static int redis_cmd(struct bridge *b, const char *fmt, const char *key,
                     long long ttl, int *seen) {
  const struct lp_bridge_config *c = b->c;
  pthread_mutex_lock(&b->redis_lock);
  if (!b->redis) {
    struct timeval tv = {c->redis_timeout_ms / 1000,
                         (c->redis_timeout_ms % 1000) * 1000};
    b->redis = redisConnectWithTimeout(c->redis_host, (int)c->redis_port, tv);
    if (!b->redis || b->redis->err) {
      if (b->redis)
        redisFree(b->redis);
      b->redis = NULL;
      pthread_mutex_unlock(&b->redis_lock);
      return -1;
    }
    redisSetTimeout(b->redis, tv);
  }
  redisReply *r = ttl ? redisCommand(b->redis, fmt, key, ttl)
                      : redisCommand(b->redis, fmt, key);
  int rc = 0;
  if (!r || r->type == REDIS_REPLY_ERROR) {
    rc = -1;
    if (!r) {
      redisFree(b->redis);
      b->redis = NULL;
    }
  } else if (seen) {
    *seen = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
  }
  if (r)
    freeReplyObject(r);
  pthread_mutex_unlock(&b->redis_lock);
  return rc;
}

/* ---- one request ---- */

struct request {
  struct lp_buf body;
  int too_large;
};

static enum MHD_Result answer(struct MHD_Connection *con, unsigned status,
                              const char *json) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result rc = MHD_queue_response(con, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* {"error": reason} with the status; counted by platform, topic, status. */
static enum MHD_Result fail(struct MHD_Connection *con, unsigned status,
                            const char *topic, const char *reason) {
  char label[96];
  snprintf(label, sizeof(label), "shopify %s %u", topic ? topic : "-", status);
  lp_metrics_labelled_add("loyalty_webhooks_total",
                          "Webhooks received, by platform, topic and answer",
                          "webhook", label, 1);
  LP_WARN("webhook refused", "\"status\":%u,\"topic\":%s,\"reason\":%s", status,
          lp_log_str(topic), lp_log_str(reason));
  struct lp_buf b;
  lp_buf_init(&b);
  lp_buf_appendf(&b, "{\"error\":%s}", lp_log_str(reason));
  enum MHD_Result rc = answer(con, status, lp_buf_cstr(&b));
  lp_buf_free(&b);
  return rc;
}

static int topic_is_order(const char *t) {
  return strcmp(t, "orders/create") == 0 || strcmp(t, "orders/paid") == 0 ||
         strcmp(t, "orders/cancelled") == 0;
}

static int topic_is_customer(const char *t) {
  return strcmp(t, "customers/create") == 0 ||
         strcmp(t, "customers/update") == 0;
}

static enum MHD_Result shopify(struct bridge *b, struct MHD_Connection *con,
                               struct request *rq) {
  const struct lp_bridge_config *c = b->c;
  const char *topic =
      MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Shopify-Topic");
  const char *hmac = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                 "X-Shopify-Hmac-Sha256");
  const char *event_id =
      MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Shopify-Event-Id");
  const char *shop = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                 "X-Shopify-Shop-Domain");
  const char *triggered = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                      "X-Shopify-Triggered-At");
  if (!lp_shopify_hmac_ok(c->shopify_secrets, rq->body.data, rq->body.len,
                          hmac))
    return fail(con, MHD_HTTP_UNAUTHORIZED, topic,
                hmac ? "X-Shopify-Hmac-Sha256: does not match the body"
                     : "X-Shopify-Hmac-Sha256: missing");
  if (!topic || (!topic_is_order(topic) && !topic_is_customer(topic)))
    return fail(con, MHD_HTTP_BAD_REQUEST, topic,
                topic ? "X-Shopify-Topic: not a topic this bridge takes "
                        "(orders/create, orders/paid, orders/cancelled, "
                        "customers/create, customers/update)"
                      : "X-Shopify-Topic: missing");
  if (!lp_utf8_valid((const char *)rq->body.data, rq->body.len))
    return fail(con, MHD_HTTP_BAD_REQUEST, topic, "body: not valid UTF-8");
  char *dedupe_key = NULL;
  if (event_id && *event_id) {
    dedupe_key = lp_xasprintf("%s:wh:shopify:%s:%s", c->redis_namespace,
                              shop ? shop : "-", event_id);
    int seen = 0;
    if (redis_cmd(b, "EXISTS %s", dedupe_key, 0, &seen) == 0 && seen) {
      free(dedupe_key);
      lp_metrics_labelled_add("loyalty_webhooks_total",
                              "Webhooks received, by platform, topic and "
                              "answer",
                              "webhook", "shopify duplicate 200", 1);
      return answer(con, MHD_HTTP_OK, "{\"duplicate\":true}");
    }
  }
  struct lp_json_hints hints = {topic, event_id, shop, triggered,
                                *c->default_shop ? c->default_shop : NULL};
  struct lp_order_event order;
  struct lp_customer_event customer;
  memset(&order, 0, sizeof(order));
  memset(&customer, 0, sizeof(customer));
  char err[512];
  int is_order = topic_is_order(topic);
  int rc = is_order
               ? lp_json_decode_order(rq->body.data, rq->body.len, &hints,
                                      &order, err, sizeof(err))
               : lp_json_decode_customer(rq->body.data, rq->body.len, &hints,
                                         &customer, err, sizeof(err));
  if (rc) {
    free(dedupe_key);
    return fail(con, MHD_HTTP_BAD_REQUEST, topic, err);
  }
  struct lp_buf out;
  lp_buf_init(&out);
  pthread_mutex_lock(&b->avro_lock);
  rc = is_order ? lp_avro_encode_order(b->avro, &order, &out, err, sizeof(err))
                : lp_avro_encode_customer(b->avro, &customer, &out, err,
                                          sizeof(err));
  pthread_mutex_unlock(&b->avro_lock);
  char *key = is_order ? lp_member_key(order.shop, order.customer_id)
                       : lp_member_key(customer.shop, customer.customer_id);
  char *canonical_id =
      lp_xstrdup(is_order ? order.event_id : customer.event_id);
  lp_order_event_clear(&order);
  lp_customer_event_clear(&customer);
  enum MHD_Result result;
  if (rc) {
    result = fail(con, MHD_HTTP_BAD_REQUEST, topic, err);
    goto done;
  }
  struct ack *a = lp_xcalloc(1, sizeof(*a));
  pthread_mutex_init(&a->lock, NULL);
  pthread_cond_init(&a->cond, NULL);
  a->refs = 2;
  if (rd_kafka_produce(is_order ? b->orders : b->customers,
                       RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, out.data,
                       out.len, key, strlen(key), a) != 0) {
    a->refs = 1;
    ack_release(a);
    result = fail(con, MHD_HTTP_SERVICE_UNAVAILABLE, topic,
                  rd_kafka_err2str(rd_kafka_last_error()));
    goto done;
  }
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += c->ack_timeout_ms / 1000;
  until.tv_nsec += (c->ack_timeout_ms % 1000) * 1000000L;
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
  int32_t part = a->partition;
  int64_t off = a->offset;
  pthread_mutex_unlock(&a->lock);
  ack_release(a);
  if (!done || kerr) {
    result = fail(con, MHD_HTTP_SERVICE_UNAVAILABLE, topic,
                  done ? rd_kafka_err2str(kerr)
                       : "kafka: not acknowledged within ack.timeout.ms");
    goto done;
  }
  if (dedupe_key)
    redis_cmd(b, "SET %s 1 EX %lld", dedupe_key, (long long)c->dedupe_window_s,
              NULL);
  char label[96];
  snprintf(label, sizeof(label), "shopify %s 200", topic);
  lp_metrics_labelled_add("loyalty_webhooks_total",
                          "Webhooks received, by platform, topic and answer",
                          "webhook", label, 1);
  struct lp_buf ok;
  lp_buf_init(&ok);
  lp_buf_appendf(&ok,
                 "{\"event_id\":%s,\"topic\":%s,\"partition\":%d,"
                 "\"offset\":%lld}",
                 lp_log_str(canonical_id),
                 lp_log_str(is_order ? c->topic_orders : c->topic_customers),
                 (int)part, (long long)off);
  result = answer(con, MHD_HTTP_OK, lp_buf_cstr(&ok));
  lp_buf_free(&ok);
done:
  lp_buf_free(&out);
  free(key);
  free(canonical_id);
  free(dedupe_key);
  return result;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *data_size, void **con_cls) {
  (void)version;
  struct bridge *b = cls;
  if (strcmp(method, "GET") == 0) {
    if (strcmp(url, "/healthz") == 0)
      return answer(con, MHD_HTTP_OK, "{\"ok\":true}");
    if (strcmp(url, "/metrics") == 0) {
      struct lp_buf m;
      lp_buf_init(&m);
      lp_metrics_render(&m);
      enum MHD_Result rc = answer(con, MHD_HTTP_OK, lp_buf_cstr(&m));
      lp_buf_free(&m);
      return rc;
    }
    return fail(con, MHD_HTTP_NOT_FOUND, NULL, "no such path");
  }
  if (strcmp(method, "POST") != 0)
    return fail(con, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, "POST only");
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
  if (rq->too_large) {
    char why[96];
    snprintf(why, sizeof(why), "body: larger than body.max.bytes (%ld)",
             b->c->body_max_bytes);
    return fail(con, 413, NULL, why);
  }
  if (strcmp(url, "/webhooks/shopify") == 0)
    return shopify(b, con, rq);
  return fail(con, MHD_HTTP_NOT_FOUND, NULL,
              "no such path (POST /webhooks/shopify)");
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

int lp_bridge_run(const struct lp_bridge_config *c,
                  struct lp_kafka_props *kafka, volatile sig_atomic_t *stop) {
  struct bridge b;
  memset(&b, 0, sizeof(b));
  b.c = c;
  b.stop = stop;
  pthread_mutex_init(&b.avro_lock, NULL);
  pthread_mutex_init(&b.redis_lock, NULL);
  char err[512];
  int status = 2;
  struct MHD_Daemon *d = NULL;
  if (!*c->shopify_secrets) {
    fprintf(stderr, "bridge: shopify.secrets: at least one secret is needed "
                    "to verify webhooks\n");
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
  const char *defaults[] = {"enable.idempotence", "true",  "linger.ms", "1",
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
  if (b.producer)
    rd_kafka_destroy(b.producer);
  lp_avro_codec_destroy(&b.avro);
  if (b.redis)
    redisFree(b.redis);
  pthread_mutex_destroy(&b.avro_lock);
  pthread_mutex_destroy(&b.redis_lock);
  return status;
}
