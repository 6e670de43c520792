/*
 * stream_app.c — the processor runtime (see stream_app.h for guarantees).
 *
 * One thread polls: consume a batch, decode it, send its Redis reads
 * (behind the previous batch's compare-and-sets), complete the previous
 * batch (Redis confirmed it: produce its decisions and dead letters), then
 * apply this batch and decide and encode each record as soon as its
 * before-state is known, sending the compare-and-sets as it goes. So two
 * batches are in flight and Redis works while this thread does. Delivery
 * reports finish input records in the offset tracker, which yields the
 * offsets to store. librdkafka's background threads do the network work;
 * libmicrohttpd's thread serves /metrics.
 */
#include "stream_app.h"

#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "avro_codec.h"
#include "config.h"
#include "http_server.h"
#include "input_codec.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "model_watch.h"
#include "offsets.h"
#include "profile_store.h"
#include "rules.h"
#include "stream_timers.h"
#include "util.h"

struct app_config {
  char *group_id;
  char *bootstrap_file;
  char *topic_input;
  char *topic_decisions;
  char *topic_dlq;
  char *redis_host;
  long redis_port;
  char *redis_namespace;
  long redis_timeout_ms;
  long memo_ttl_s;
  char *rules_path;
  char *model_key;
  char *model_file;
  long model_poll_ms;
  char *default_shop;
  char *registry_url;
  long batch_size;
  long cas_batch;
  long max_in_flight;
  long dlq_max_original;
  char *http_bind;
  long http_port;
  char *log_level;
  long shutdown_timeout_ms;
  long event_max_future_ms;
  long activity_half_life_ms;
  long activity_max_names;
  long activity_floor_micros;
  int timers_enabled;
  long timers_lateness_ms;
  int timers_wall_clock;
  long timers_idle_ms;
  long timers_wall_lag_ms;
  long timers_lease_ms;
  long timers_fire_interval_ms;
};

#define C(field) offsetof(struct app_config, field)
static struct lp_config_entry config_table[] = {
    {"group.id", LP_CONF_STRING, NULL, C(group_id),
     "Kafka consumer group of this processor", 0, 0},
    {"bootstrap.file", LP_CONF_STRING, "", C(bootstrap_file),
     "File holding the bootstrap address (written by devbroker); used when "
     "kafka.bootstrap.servers is unset",
     0, 0},
    {"topic.input", LP_CONF_STRING, NULL, C(topic_input),
     "Input topic (orders, customers or activity)", 0, 0},
    {"topic.decisions", LP_CONF_STRING, "decisions", C(topic_decisions),
     "Output topic for reward decisions", 0, 0},
    {"topic.dlq", LP_CONF_STRING, "dlq", C(topic_dlq),
     "Dead-letter topic for records that cannot be processed", 0, 0},
    {"redis.host", LP_CONF_STRING, "127.0.0.1", C(redis_host),
     "Redis host holding member profiles", 0, 0},
    {"redis.port", LP_CONF_INT, "6379", C(redis_port), "Redis port", 1, 65535},
    {"redis.namespace", LP_CONF_STRING, "loyalty", C(redis_namespace),
     "Key prefix; a backfill or replay runs in its own namespace", 0, 0},
    {"redis.timeout.ms", LP_CONF_INT, "2000", C(redis_timeout_ms),
     "Redis connect and command timeout", 10, 600000},
    {"redis.memo.ttl.s", LP_CONF_INT, "7776000", C(memo_ttl_s),
     "How long applied-event memory is kept (dedupe and replay horizon; "
     "default 90 days)",
     60, 315360000},
    {"rules.path", LP_CONF_STRING, "deploy/rules", C(rules_path),
     "Rule file, or directory of *.json rule files (SIGHUP reloads)", 0, 0},
    {"model.key", LP_CONF_STRING, "model:clv", C(model_key),
     "Redis key (after redis.namespace and ':') the trainer publishes the "
     "member-value model to, polled every model.poll.ms; a new valid model "
     "is used without a restart. Pin a replay to one version with "
     "model:clv:<version>; empty = no model, no scores",
     0, 0},
    {"model.file", LP_CONF_STRING, "", C(model_file),
     "Read the model from this file instead (at start and on SIGHUP)", 0, 0},
    {"model.poll.ms", LP_CONF_INT, "2000", C(model_poll_ms),
     "How often model.key is read for a new model", 50, 3600000},
    {"shop.default", LP_CONF_STRING, "", C(default_shop),
     "Shop for Shopify JSON records without an X-Shopify-Shop-Domain "
     "header",
     0, 0},
    {"schema.registry.url", LP_CONF_STRING, "", C(registry_url),
     "Confluent schema registry, to read Confluent-framed Avro", 0, 0},
    {"batch.size", LP_CONF_INT, "1000", C(batch_size),
     "Records per Redis pipeline round trip (two batches are in flight)", 1,
     100000},
    {"redis.cas.batch", LP_CONF_INT, "32", C(cas_batch),
     "Events per compare-and-set script; 1 keeps each script on one "
     "member's keys, as Redis Cluster requires",
     1, 1000},
    {"dlq.max.original.bytes", LP_CONF_INT, "524288", C(dlq_max_original),
     "Original bytes kept in a dead-letter record (longer values are cut, "
     "and the reason says so), below the brokers' message.max.bytes",
     1024, 100000000},
    {"max.in.flight", LP_CONF_INT, "6000", C(max_in_flight),
     "Input records consumed but not yet acknowledged before consumption "
     "pauses",
     1, 10000000},
    {"http.bind", LP_CONF_STRING, "127.0.0.1", C(http_bind),
     "Address of the /metrics and /healthz endpoint", 0, 0},
    {"http.port", LP_CONF_INT, NULL, C(http_port),
     "Port of /metrics and /healthz (0 = pick a free port, -1 = off)", -1,
     65535},
    {"log.level", LP_CONF_STRING, "info", C(log_level),
     "debug, info, warn or error", 0, 0},
    {"shutdown.timeout.ms", LP_CONF_INT, "10000", C(shutdown_timeout_ms),
     "Longest wait for outstanding deliveries at shutdown or revoke", 100,
     600000},
    {"event.max.future.ms", LP_CONF_INT, "86400000", C(event_max_future_ms),
     "Records whose event time is more than this after the wall clock are "
     "dead-lettered (field event_time; the reason says how far ahead and "
     "the bound): a broken producer clock must not move a member's "
     "event-time clock ahead. Default 1 day; 0 = off",
     0, 315360000000L},
    {"activity.half.life.ms", LP_CONF_INT, "1209600000",
     C(activity_half_life_ms),
     "Activity processor: half-life of the browse scores, in event time "
     "(default 14 days)",
     1, 315360000000L},
    {"activity.max.names", LP_CONF_INT, "50", C(activity_max_names),
     "Activity processor: categories (and, apart, brands) kept per member, "
     "the highest scores",
     0, 10000},
    {"activity.floor.micros", LP_CONF_INT, "1000", C(activity_floor_micros),
     "Activity processor: browse scores below this (micro-units; 1000000 = "
     "one product view) are dropped",
     0, 1000000000000L},
    {"timers.enabled", LP_CONF_BOOL, "true", C(timers_enabled),
     "Member timers (docs/timers.md): plan the timers of the rules with "
     "\"on\": \"timer\" and fire them on event time; with no timer rules "
     "this costs nothing",
     0, 0},
    {"timers.lateness.ms", LP_CONF_INT, "60000", C(timers_lateness_ms),
     "Allowed out-of-orderness: a partition's event-time watermark is the "
     "newest event time seen minus this, so a timer fires once the stream "
     "is this far past its due time",
     0, 315360000000L},
    {"timers.wall.clock", LP_CONF_BOOL, "true", C(timers_wall_clock),
     "Live operation: a partition without records for timers.idle.ms "
     "advances by wall clock to now - timers.wall.lag.ms, so its due "
     "timers fire at most idle + lag (+1 s) late. Off: event time only (a "
     "backfill that must not fire by the clock)",
     0, 0},
    {"timers.idle.ms", LP_CONF_INT, "30000", C(timers_idle_ms),
     "How long a partition must be without records before the wall clock "
     "drives its timers",
     0, 86400000},
    {"timers.wall.lag.ms", LP_CONF_INT, "60000", C(timers_wall_lag_ms),
     "How far behind the wall clock an idle partition's watermark stays "
     "(room for events still in transit)",
     0, 86400000},
    {"timers.fire.interval.ms", LP_CONF_INT, "1000", C(timers_fire_interval_ms),
     "Least wall time between two claims of a partition's due timers "
     "while records flow (a later claim fires the same timers with the "
     "same decisions; a member's own next record fires its timer "
     "meanwhile; fewer claims cost Redis less). When idle, due timers are "
     "claimed at once",
     0, 60000},
    {"timers.lease.ms", LP_CONF_INT, "360000", C(timers_lease_ms),
     "How long a fired timer stays claimed by this instance before another "
     "may fire it again (same decision ids); must outlast the producer's "
     "message.timeout.ms (default 300000)",
     1000, 86400000},
};
#undef C

/* One consumed input record while it is being processed. */
struct record {
  rd_kafka_message_t *msg;
  struct inflight *inflight;
  struct lp_order_event order;
  struct lp_customer_event customer;
  struct lp_activity_event activity;
  /* Its decisions, decided and encoded as soon as the before-state is
   * known (see lp_store_known_fn), produced once Redis confirmed it. */
  struct lp_reward_decision *ds;
  size_t nd;
  struct lp_buf enc; /* the encoded decisions, back to back */
  size_t *enc_end;   /* enc_end[i]: end of decision i in enc */
  size_t enc_end_cap;
  size_t encoded;         /* decisions encoded; < nd when one could not be */
  int64_t wm_before;      /* its partition's watermark just before it */
  int64_t wm_after;       /* and just after it */
  struct lp_st_plan plan; /* what it does to timers (batch arena) */
  struct lp_activity_view act; /* for its inline timer fires */
};

/* Outstanding outputs of one input record; the opaque of each produce. */
struct inflight {
  void *offset_handle;
  int pending;
  int64_t start_us;
  struct lp_st_fired *fired; /* a fired timer's outputs: no offset */
};

/* One consumed batch on its way through the store (profile_store.h).
 * The arrays are kept between batches. */
struct batch {
  struct app *app;
  int slot;
  struct record *recs; /* cap records */
  size_t n;            /* records consumed into it */
  struct lp_store_op *ops;
  size_t *op_rec; /* op k belongs to recs[op_rec[k]] */
  size_t n_ops, ops_cap;
  struct lp_store_callbacks cb;
  struct lp_arena arena; /* the records' events and decisions, until
                            release */
};

/* A produce whose delivery failed, to be produced again. */
struct retry {
  char *topic;
  void *key, *value;
  size_t key_len, value_len;
  struct inflight *inflight;
  struct retry *next;
};

struct app {
  const struct lp_stream_app_spec *spec;
  struct app_config conf;
  struct lp_kafka_props kafka;
  rd_kafka_t *consumer;
  rd_kafka_t *producer;
  rd_kafka_topic_t *decisions_topic;
  rd_kafka_topic_t *dlq_topic;
  struct lp_offsets *offsets;
  struct lp_profile_store *store;
  struct lp_ruleset *rules;
  struct lp_model_watch *model_watch; /* NULL: no model configured */
  struct lp_stream_timers *timers;    /* NULL: timers.enabled=false */
  /* Records whose timer write is in flight: each holds one pending
   * output until lp_stream_timers_confirmed() reaches its seq. */
  struct held {
    struct inflight *in;
    uint64_t seq;
  } * held;
  size_t n_held, cap_held;
  struct lp_activity_params timer_activity;
  struct lp_model model; /* in force when have_model */
  int have_model;
  int64_t next_model_poll_us;
  struct lp_avro_codec *avro;
  struct lp_http_server *http;
  struct retry *retries;
  struct lp_buf buf;
  /* Two batches alternate: while one waits for Redis to confirm its
   * compare-and-sets, the next is consumed, decoded and read. */
  struct batch batches[LP_STORE_SLOTS];
  int pending; /* slot of the batch awaiting completion, or -1 */
  char fatal[512];
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void on_hup(int sig) {
  (void)sig;
  reload_requested = 1;
}

/* Marks one output of a record finished; the last one finishes the input
 * record in the offset tracker. */
static void output_done(struct app *app, struct inflight *in) {
  LP_ASSERT(in->pending > 0);
  if (--in->pending > 0)
    return;
  if (in->fired) { /* a fired timer: acknowledged in Redis next flush */
    lp_stream_timers_done(app->timers, in->fired);
    free(in);
    return;
  }
  lp_offsets_done(app->offsets, in->offset_handle);
  lp_metrics_observe_latency_us(lp_mono_us() - in->start_us);
  free(in);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct app *app = opaque;
  struct inflight *in = m->_private;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    lp_metrics_add(LP_M_PRODUCED, 1);
    output_done(app, in);
    return;
  }
  /* Not acknowledged: keep a copy and produce it again from the loop. The
   * input offset stays unstored meanwhile, so a crash redelivers it. */
  LP_WARN("delivery failed, producing again", "\"topic\":%s,\"error\":%s",
          lp_log_str(rd_kafka_topic_name(m->rkt)),
          lp_log_str(rd_kafka_err2str(m->err)));
  struct retry *r = lp_xcalloc(1, sizeof(*r));
  r->topic = lp_xstrdup(rd_kafka_topic_name(m->rkt));
  r->key = lp_xmalloc(m->key_len);
  memcpy(r->key, m->key, m->key_len);
  r->key_len = m->key_len;
  r->value = lp_xmalloc(m->len);
  memcpy(r->value, m->payload, m->len);
  r->value_len = m->len;
  r->inflight = in;
  r->next = app->retries;
  app->retries = r;
  lp_metrics_add(LP_M_PRODUCE_RETRIES, 1);
}

/* Produces one output (copied) for an input record; waits while the
 * producer queue is full. */
static void produce(struct app *app, rd_kafka_topic_t *rkt, const void *key,
                    size_t key_len, const void *value, size_t value_len,
                    struct inflight *in) {
  for (;;) {
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                         (void *)value, value_len, key, key_len, in) == 0)
      return;
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      /* Only a bug (unknown topic object, oversized message) gets here:
       * say so loudly and stop before anything is committed past it. */
      snprintf(app->fatal, sizeof(app->fatal), "produce to %s: %s",
               rd_kafka_topic_name(rkt), rd_kafka_err2str(err));
      stop_requested = 1;
      /* Keep the record unfinished: its offset is never stored. */
      return;
    }
    rd_kafka_poll(app->producer, 10);
  }
}

static void produce_retries(struct app *app) {
  while (app->retries) {
    struct retry *r = app->retries;
    app->retries = r->next;
    rd_kafka_topic_t *rkt = strcmp(r->topic, app->conf.topic_dlq) == 0
                                ? app->dlq_topic
                                : app->decisions_topic;
    produce(app, rkt, r->key, r->key_len, r->value, r->value_len, r->inflight);
    free(r->topic);
    free(r->key);
    free(r->value);
    free(r);
  }
}

/* Field path at the start of a reason ("line_items[2].quantity: ..."),
 * or NULL (caller frees). */
static char *reason_field(const char *reason) {
  const char *colon = strstr(reason, ": ");
  if (!colon || colon == reason)
    return NULL;
  for (const char *p = reason; p < colon; p++)
    if (*p == ' ')
      return NULL;
  static const char *const not_fields[] = {"json", "avro", "record", "redis",
                                           "snapshot"};
  for (size_t i = 0; i < LP_ARRAY_LEN(not_fields); i++)
    if ((size_t)(colon - reason) == strlen(not_fields[i]) &&
        strncmp(reason, not_fields[i], strlen(not_fields[i])) == 0)
      return NULL;
  return lp_xstrndup(reason, (size_t)(colon - reason));
}

/* Sends the record to the dead-letter topic with the reason. */
static void dead_letter(struct app *app, struct record *rec,
                        const char *reason) {
  const rd_kafka_message_t *m = rec->msg;
  struct lp_dead_letter dl = {0};
  dl.source_topic = lp_xstrdup(rd_kafka_topic_name(m->rkt));
  dl.source_partition = m->partition;
  dl.source_offset = m->offset;
  if (m->key_len) {
    dl.source_key = lp_xmalloc(m->key_len);
    memcpy(dl.source_key, m->key, m->key_len);
    dl.source_key_len = m->key_len;
  }
  /* A record near the broker's size limit cannot travel again whole
   * inside a dead letter: keep its head and say so. */
  size_t keep = m->len;
  if (keep > (size_t)app->conf.dlq_max_original)
    keep = (size_t)app->conf.dlq_max_original;
  dl.original = lp_xmalloc(keep ? keep : 1);
  if (keep)
    memcpy(dl.original, m->payload, keep);
  dl.original_len = keep;
  dl.processor = lp_xstrdup(app->spec->name);
  if (keep < m->len)
    dl.reason = lp_xasprintf("%s (original value cut to its first %zu of %zu "
                             "bytes)",
                             reason, keep, m->len);
  else
    dl.reason = lp_xstrdup(reason);
  dl.field = reason_field(reason);
  dl.time_ms = lp_now_ms();
  LP_WARN("record dead-lettered",
          "\"topic\":%s,\"partition\":%d,\"offset\":%lld,\"reason\":%s",
          lp_log_str(dl.source_topic), (int)m->partition, (long long)m->offset,
          lp_log_str(reason));
  char err[256];
  lp_buf_reset(&app->buf);
  if (lp_avro_encode_dead_letter(app->avro, &dl, &app->buf, err, sizeof(err)) !=
      0) {
    /* Cannot happen for a well-formed struct; never lose the record. */
    snprintf(app->fatal, sizeof(app->fatal), "encode dead letter: %s", err);
    stop_requested = 1;
    lp_dead_letter_clear(&dl);
    return;
  }
  rec->inflight->pending = 1;
  lp_metrics_add(LP_M_DEAD_LETTERED, 1);
  produce(app, app->dlq_topic, m->key, m->key_len, app->buf.data, app->buf.len,
          rec->inflight);
  lp_dead_letter_clear(&dl);
}

/* Forgets a record's decisions (their memory is the batch's arena). */
static void clear_decisions(struct record *rec) {
  rec->ds = NULL;
  rec->nd = 0;
  lp_buf_reset(&rec->enc);
}

/* Encodes the record's decisions not encoded yet. Failures are reported
 * by emit_decisions: this may be a speculative state that Redis later
 * voids. */
static void encode_decisions(struct app *app, struct record *rec) {
  if (rec->nd > rec->enc_end_cap) {
    rec->enc_end_cap = rec->nd;
    rec->enc_end =
        lp_xrealloc(rec->enc_end, rec->enc_end_cap * sizeof(*rec->enc_end));
  }
  char err[256];
  for (; rec->encoded < rec->nd; rec->encoded++) {
    if (lp_avro_encode_decision(app->avro, &rec->ds[rec->encoded], &rec->enc,
                                err, sizeof(err)) != 0)
      return;
    rec->enc_end[rec->encoded] = rec->enc.len;
  }
}

/* Plans what a record does to its member's timers (stream_timers.h),
 * from the before-state; a repeat call replaces the earlier plan. */
static void plan_timers(struct app *app, struct batch *bt, struct record *rec,
                        const struct lp_profile *view,
                        const char *before_activity) {
  lp_activity_view_clear(&rec->act);
  memset(&rec->plan, 0, sizeof(rec->plan));
  if (!app->timers)
    return;
  int p = rec->msg->partition;
  if (app->spec->kind == LP_STREAM_ORDERS)
    lp_stream_timers_plan_order(app->timers, p, rec->wm_before, app->rules,
                                view->model, &rec->order, view, &bt->arena,
                                &rec->plan);
  else if (app->spec->kind == LP_STREAM_CUSTOMERS)
    lp_stream_timers_plan_customer(app->timers, p, rec->wm_before, app->rules,
                                   &rec->customer, view, &bt->arena,
                                   &rec->plan);
  else
    lp_stream_timers_plan_activity(app->timers, p, rec->wm_before, app->rules,
                                   &rec->activity, before_activity,
                                   view->last_order_ms, &bt->arena, &rec->plan);
  rec->plan.partition = p;
  rec->plan.wm_after = rec->wm_after;
}

/* Decides and encodes a record's decisions against its before-state (a
 * repeat call replaces the earlier result; the arena keeps the void one
 * until the batch is released). */
static void decide(struct app *app, struct batch *bt, struct record *rec,
                   const struct lp_profile *before,
                   const char *before_activity) {
  clear_decisions(rec);
  rec->encoded = 0;
  /* The rules see the model in force with the profile (a shallow view:
   * the profile's memory stays the store's). */
  struct lp_profile view = *before;
  view.model = app->have_model ? &app->model : NULL;
  plan_timers(app, bt, rec, &view, before_activity);
  if (app->spec->kind == LP_STREAM_ACTIVITY)
    return; /* no rules fire on activity events: folded, no decision */
  if (app->spec->kind == LP_STREAM_ORDERS)
    lp_rules_decide_order(app->rules, &rec->order, &view, &bt->arena, &rec->ds,
                          &rec->nd);
  else
    lp_rules_decide_customer(app->rules, &rec->customer, &view, &bt->arena,
                             &rec->ds, &rec->nd);
  /* A timer of this member whose due passed before this record fires with
   * it, decided on the same before-state (stream_timers.h). */
  for (size_t i = 0; i < rec->plan.n_inline; i++) {
    const struct lp_timer_trigger *t = &rec->plan.inline_fires[i];
    struct lp_activity_view act;
    int have_act = before_activity != NULL;
    if (have_act) {
      lp_activity_part_parse(before_activity, &act);
      lp_activity_view_at(&act, t->due_ms, &app->timer_activity);
    }
    lp_rules_decide_timer(app->rules, t, &view, have_act ? &act : NULL,
                          &bt->arena, &rec->ds, &rec->nd);
    if (have_act)
      lp_activity_view_clear(&act);
  }
  encode_decisions(app, rec);
}

/* Produces a record's decisions (or finishes it when there are none). */
static void emit_decisions(struct app *app, struct record *rec) {
  if (rec->encoded < rec->nd) {
    /* Encode again for the reason; the record stays unfinished, so it is
     * never committed past. */
    const struct lp_reward_decision *d = &rec->ds[rec->encoded];
    char err[256];
    lp_buf_reset(&app->buf);
    if (lp_avro_encode_decision(app->avro, d, &app->buf, err, sizeof(err)))
      snprintf(app->fatal, sizeof(app->fatal), "encode decision %s: %s",
               d->decision_id, err);
    stop_requested = 1;
    return;
  }
  if (rec->nd == 0) {
    rec->inflight->pending += 1; /* on top of a hold (complete_batch) */
    output_done(app, rec->inflight);
    return;
  }
  rec->inflight->pending += (int)rec->nd;
  size_t start = 0;
  for (size_t i = 0; i < rec->nd; i++) {
    const struct lp_reward_decision *d = &rec->ds[i];
    char *key = lp_member_key(d->shop, d->customer_id);
    LP_DEBUG("decision", "\"decision_id\":%s,\"rule\":%s,\"offset\":%lld",
             lp_log_str(d->decision_id), lp_log_str(d->rule_id),
             (long long)rec->msg->offset);
    lp_metrics_labelled_add("loyalty_decisions_by_rule_total",
                            "Reward decisions produced, by rule", "rule",
                            d->rule_id, 1);
    lp_metrics_add(LP_M_DECISIONS, 1);
    produce(app, app->decisions_topic, key, strlen(key), rec->enc.data + start,
            rec->enc_end[i] - start, rec->inflight);
    start = rec->enc_end[i];
    free(key);
  }
}

/* Header value as a NUL-terminated copy in buf, or NULL. */
static const char *header(const rd_kafka_message_t *m, const char *name,
                          char *buf, size_t size) {
  rd_kafka_headers_t *hdrs = NULL;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return NULL;
  const void *val;
  size_t len;
  /* Header names are case-insensitive in HTTP; bridges send them as the
   * platform did, so try the canonical and the lower-case spelling. */
  if (rd_kafka_header_get_last(hdrs, name, &val, &len) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    char lower[64];
    size_t i = 0;
    for (; name[i] && i < sizeof(lower) - 1; i++)
      lower[i] =
          (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    lower[i] = '\0';
    if (rd_kafka_header_get_last(hdrs, lower, &val, &len) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
      return NULL;
  }
  if (!val || len >= size)
    return NULL;
  memcpy(buf, val, len);
  buf[len] = '\0';
  return buf;
}

static void store_wait(void *opaque) {
  struct app *app = opaque;
  rd_kafka_poll(app->producer, 20);
}

/* The store's callbacks; opaque is the batch. */
static void store_batch_wait(void *opaque) {
  store_wait(((struct batch *)opaque)->app);
}

static void store_known(void *opaque, size_t i, const struct lp_store_op *op) {
  struct batch *b = opaque;
  decide(b->app, b, &b->recs[b->op_rec[i]], &op->before, op->before_activity);
}

/* 1 with the reason in err when a decoded record's event time is more
 * than event.max.future.ms after the wall clock (0 = no bound), else 0.
 * The reason starts "event_time: ", so the dead letter's field says so. */
static int implausible_event_time(const struct app *app,
                                  const struct record *rec, char *err,
                                  size_t errsize) {
  if (app->conf.event_max_future_ms <= 0)
    return 0;
  int64_t t = rec->activity.event_time_ms;
  if (app->spec->kind == LP_STREAM_ORDERS)
    t = rec->order.event_time_ms;
  else if (app->spec->kind == LP_STREAM_CUSTOMERS)
    t = rec->customer.event_time_ms;
  if (lp_event_time_plausible(t, lp_now_ms(), app->conf.event_max_future_ms,
                              err, errsize) == 0)
    return 0;
  /* Name the bound by this processor's setting. */
  static const char generic[] = "max.future.skew";
  char *at = strstr(err, generic);
  if (at) {
    char tail[256];
    snprintf(tail, sizeof(tail), "%s", at + strlen(generic));
    snprintf(at, errsize - (size_t)(at - err), "event.max.future.ms%s", tail);
  }
  return 1;
}

/* Decodes a consumed batch (undecodable records are dead-lettered at
 * once) and starts it in the store: its reads go out behind the pending
 * batch's compare-and-sets. */
static void prepare_batch(struct app *app, struct batch *bt) {
  struct record *recs = bt->recs;
  size_t n = bt->n;
  if (n > bt->ops_cap) {
    bt->ops_cap = n;
    bt->ops = lp_xrealloc(bt->ops, n * sizeof(*bt->ops));
    bt->op_rec = lp_xrealloc(bt->op_rec, n * sizeof(*bt->op_rec));
  }
  struct lp_store_op *ops = bt->ops;
  size_t *op_rec = bt->op_rec;
  memset(ops, 0, n * sizeof(*ops));
  size_t n_ops = 0;
  char err[512];
  /* Events read by the fast Avro path live in the batch's arena too. */
  lp_avro_codec_set_arena(app->avro, &bt->arena);
  for (size_t i = 0; i < n; i++) {
    struct record *rec = &recs[i];
    const rd_kafka_message_t *m = rec->msg;
    char h_topic[64], h_event[128], h_shop[256], h_at[64];
    struct lp_json_hints hints = {
        NULL, NULL, NULL, NULL,
        *app->conf.default_shop ? app->conf.default_shop : NULL};
    /* Headers matter only to JSON bodies as a bridge forwards them; Avro
     * (first byte 0xC3 or 0x00) carries everything in the record. */
    const uint8_t *first = m->payload;
    if (m->len == 0 || (first[0] != 0xC3 && first[0] != 0x00)) {
      hints.shopify_topic =
          header(m, "X-Shopify-Topic", h_topic, sizeof(h_topic));
      hints.shopify_event_id =
          header(m, "X-Shopify-Event-Id", h_event, sizeof(h_event));
      hints.shop_domain =
          header(m, "X-Shopify-Shop-Domain", h_shop, sizeof(h_shop));
      hints.triggered_at =
          header(m, "X-Shopify-Triggered-At", h_at, sizeof(h_at));
    }
    int rc;
    for (int attempt = 0;; attempt++) {
      if (app->spec->kind == LP_STREAM_ORDERS)
        rc = lp_input_decode_order(app->avro, m->payload, m->len, &hints,
                                   &rec->order, err, sizeof(err));
      else if (app->spec->kind == LP_STREAM_CUSTOMERS)
        rc = lp_input_decode_customer(app->avro, m->payload, m->len, &hints,
                                      &rec->customer, err, sizeof(err));
      else
        rc = lp_input_decode_activity(app->avro, m->payload, m->len,
                                      &rec->activity, err, sizeof(err));
      /* A schema registry that is down says nothing about the record:
       * wait for it rather than dead-letter good data. */
      if (rc == 0 || !lp_avro_codec_last_error_retryable(app->avro) ||
          stop_requested)
        break;
      if (attempt % 10 == 0)
        LP_WARN("schema registry unavailable, retrying",
                "\"error\":%s,\"attempt\":%d", lp_log_str(err), attempt + 1);
      store_wait(app);
      usleep(attempt < 10 ? 100000 : 1000000);
    }
    if (rc != 0 && stop_requested &&
        lp_avro_codec_last_error_retryable(app->avro))
      continue; /* unfinished: redelivered after restart */
    if (rc != 0 || implausible_event_time(app, rec, err, sizeof(err))) {
      dead_letter(app, rec, err);
      continue;
    }
    if (app->spec->kind == LP_STREAM_ORDERS)
      ops[n_ops].order = &rec->order;
    else if (app->spec->kind == LP_STREAM_CUSTOMERS)
      ops[n_ops].customer = &rec->customer;
    else
      ops[n_ops].activity = &rec->activity;
    op_rec[n_ops++] = i;
  }
  lp_avro_codec_set_arena(app->avro, NULL);
  /* Event-time watermarks advance in consumption order (stream_timers.h). */
  for (size_t k = 0; app->timers && k < n_ops; k++) {
    struct record *rec = &recs[op_rec[k]];
    int p = rec->msg->partition;
    int64_t t = app->spec->kind == LP_STREAM_ORDERS ? rec->order.event_time_ms
                : app->spec->kind == LP_STREAM_CUSTOMERS
                    ? rec->customer.event_time_ms
                    : rec->activity.event_time_ms;
    rec->wm_before = lp_stream_timers_observe(app->timers, p, t);
    rec->wm_after = lp_stream_timers_watermark(app->timers, p);
  }
  bt->n_ops = n_ops;
  bt->app = app;
  bt->cb = (struct lp_store_callbacks){store_batch_wait, store_known, bt};
  lp_profile_store_start(app->store, bt->slot, ops, n_ops, &bt->cb);
}

/* Releases a batch's records (their offsets are tracked elsewhere). */
static void release_batch(struct batch *bt) {
  for (size_t k = 0; k < bt->n_ops; k++) {
    lp_profile_clear(&bt->ops[k].before);
    free(bt->ops[k].before_activity);
    bt->ops[k].before_activity = NULL;
  }
  for (size_t i = 0; i < bt->n; i++) {
    lp_order_event_clear(&bt->recs[i].order);
    lp_customer_event_clear(&bt->recs[i].customer);
    lp_activity_event_clear(&bt->recs[i].activity);
    lp_activity_view_clear(&bt->recs[i].act);
    clear_decisions(&bt->recs[i]);
    rd_kafka_message_destroy(bt->recs[i].msg);
  }
  lp_arena_reset(&bt->arena);
  bt->n = bt->n_ops = 0;
}

/* Counts a fired timer in the metrics. */
static void count_fired(const struct lp_st_fired *f) {
  const char *kind = lp_timer_kind_name(f->trig.kind);
  lp_metrics_add(LP_M_TIMERS_FIRED, 1);
  lp_metrics_labelled_add("loyalty_timers_fired_by_kind_total",
                          "Member timers fired, by kind", "kind", kind, 1);
  lp_metrics_labelled_set("loyalty_timer_lateness_event_ms",
                          "Event-time lateness of the last fired timer "
                          "(watermark minus due), by kind",
                          "kind", kind, f->lateness_event_ms);
  lp_metrics_labelled_set("loyalty_timer_lateness_wall_ms",
                          "Wall-clock lateness of the last fired timer (now "
                          "minus due), by kind",
                          "kind", kind, f->lateness_wall_ms);
}

/* Releases the records whose timer write Redis has confirmed. */
static void release_held(struct app *app) {
  if (!app->timers || !app->n_held || app->fatal[0])
    return;
  uint64_t ok = lp_stream_timers_confirmed(app->timers);
  size_t k = 0;
  for (size_t i = 0; i < app->n_held; i++) {
    if (app->held[i].seq <= ok)
      output_done(app, app->held[i].in);
    else
      app->held[k++] = app->held[i];
  }
  app->n_held = k;
}

/* Waits until the timer write in flight is confirmed, retrying a Redis
 * error until it succeeds or a stop is requested, and releases its
 * records. 0, or -1 (stopping: those records stay unfinished and are
 * redelivered). */
static int timers_collect(struct app *app) {
  if (!app->timers)
    return 0;
  char err[512];
  for (int attempt = 0;; attempt++) {
    if (lp_stream_timers_collect(app->timers, err, sizeof(err)) == 0) {
      release_held(app);
      return 0;
    }
    lp_metrics_add(LP_M_REDIS_ERRORS, 1);
    if (attempt % 10 == 0)
      LP_WARN("timers not written, retrying", "\"error\":%s,\"attempt\":%d",
              lp_log_str(err), attempt + 1);
    if (stop_requested)
      return -1;
    store_wait(app);
    usleep(attempt < 10 ? 50000 : 500000);
  }
}

/* Sends the timer plans of a batch Redis has confirmed (the profile
 * writes they follow from are final) without waiting: a record with
 * timer writes is held, never committed, until they are confirmed
 * (release_held), so a record is never committed with its timers unsaved.
 * -1 when stopping during a Redis outage (the records stay unfinished). */
static int apply_timer_plans(struct app *app, struct batch *bt, uint64_t *seq) {
  *seq = 0;
  if (!app->timers)
    return 0;
  const struct lp_st_plan **plans =
      lp_arena_alloc(&bt->arena, (bt->n_ops ? bt->n_ops : 1) * sizeof(*plans));
  size_t n = 0;
  for (size_t k = 0; k < bt->n_ops; k++)
    if (!bt->ops[k].failed && bt->recs[bt->op_rec[k]].plan.valid)
      plans[n++] = &bt->recs[bt->op_rec[k]].plan;
  /* apply_send fails only when the write before it cannot be confirmed:
   * timers_collect retries that. */
  char err[512];
  while (lp_stream_timers_apply_send(app->timers, plans, n, seq, err,
                                     sizeof(err)) != 0)
    if (timers_collect(app) != 0)
      return -1;
  release_held(app); /* the previous write was confirmed first */
  return 0;
}

/* Holds a record until its timer write (seq) is confirmed. */
static void hold_record(struct app *app, struct record *rec, uint64_t seq) {
  if (app->n_held == app->cap_held) {
    app->cap_held = app->cap_held ? 2 * app->cap_held : 1024;
    app->held = lp_xrealloc(app->held, app->cap_held * sizeof(*app->held));
  }
  rec->inflight->pending++;
  app->held[app->n_held++] = (struct held){rec->inflight, seq};
}

/* Waits for Redis to confirm the batch, then produces its decisions and
 * dead letters (outputs are then in flight) and releases it. */
static void complete_batch(struct app *app, struct batch *bt) {
  struct lp_store_op *ops = bt->ops;
  size_t n_ops = bt->n_ops;
  if (lp_profile_store_finish(app->store, bt->slot, &stop_requested) != 0) {
    /* Stopping while Redis is down: these records stay unfinished, so
     * their offsets are not stored and they are consumed again later. */
    LP_WARN("shutdown during Redis outage; records will be redelivered",
            "\"records\":%zu", n_ops);
    goto done;
  }
  uint64_t seq;
  if (apply_timer_plans(app, bt, &seq) != 0) {
    LP_WARN("shutdown during Redis outage; records will be redelivered",
            "\"records\":%zu", n_ops);
    goto done;
  }
  for (size_t k = 0; k < n_ops; k++) {
    struct record *rec = &bt->recs[bt->op_rec[k]];
    if (ops[k].failed) {
      dead_letter(app, rec, ops[k].error);
      continue;
    }
    if (seq && rec->plan.valid && rec->plan.n_ops)
      hold_record(app, rec, seq);
    emit_decisions(app, rec);
  }
done:
  release_batch(bt);
}

/* Decides and produces one fired timer; it is finished (acked) when its
 * decisions are acknowledged, at once when it has none. */
static void fire_one(struct app *app, struct lp_st_fired *f) {
  const struct lp_timer_rule *tr = NULL;
  size_t ntr = lp_ruleset_timer_rules(app->rules, &tr);
  /* A fixed win-back found early (an order in time left it lazy) needs
   * only the last order time: scheduled again without a parse. */
  for (size_t i = 0; i < ntr && f->rule_id[0]; i++)
    if (f->trig.kind == LP_TIMER_WINBACK && tr[i].kind == LP_TIMER_WINBACK &&
        tr[i].after_days > 0 && strcmp(tr[i].rule_id, f->rule_id) == 0) {
      int64_t due = lp_plan_winback_fixed(f->last_order_ms, tr[i].after_days);
      if (due > f->watermark) {
        lp_stream_timers_reschedule(app->timers, f, due);
        return;
      }
      break;
    }
  lp_stream_timers_fired_parse(app->timers, f);
  struct lp_profile view = f->profile;
  view.model = app->have_model ? &app->model : NULL;
  /* An order-driven timer is checked against the member's profile now: a
   * win-back left lazy by an order in time is early (scheduled again at
   * the member's due), or fires at that due when it has passed too. */
  for (size_t i = 0; i < ntr && f->rule_id[0]; i++) {
    if (strcmp(tr[i].rule_id, f->rule_id) != 0 || tr[i].kind != f->trig.kind ||
        (f->trig.kind != LP_TIMER_WINBACK &&
         f->trig.kind != LP_TIMER_REPLENISHMENT))
      continue;
    int64_t due = lp_stream_timers_order_due(&tr[i], view.model, &view);
    if (due == 0) {
      /* No due any more (a cancellation took the rhythm's orders back):
       * over, as for the member's next record; acked, no decision. */
      LP_DEBUG("timer dropped", "\"timer\":%s,\"due\":%lld",
               lp_log_str(f->timer.id), (long long)f->timer.due_ms);
      lp_stream_timers_done(app->timers, f);
      return;
    }
    if (due > f->watermark) {
      lp_stream_timers_reschedule(app->timers, f, due);
      return;
    }
    if (due > 0 && due != f->timer.due_ms) {
      struct lp_timer t = f->timer;
      t.due_ms = due;
      char tid[LP_TIMERS_ID_MAX + 32];
      lp_timer_output_id(&t, tid, sizeof(tid));
      free(f->trigger_id);
      f->trigger_id = lp_xstrdup(tid);
      f->timer.due_ms = due; /* acked (and remembered) at this due */
      f->trig.trigger_id = f->trigger_id;
      f->trig.due_ms = due;
      f->lateness_event_ms = f->watermark - due;
      f->lateness_wall_ms = lp_now_ms() - due;
    }
    break;
  }
  count_fired(f);
  struct lp_reward_decision *ds = NULL;
  size_t nd = 0;
  if (f->rule_id[0])
    lp_rules_decide_timer(app->rules, &f->trig, &view,
                          f->have_activity ? &f->activity : NULL, NULL, &ds,
                          &nd);
  LP_DEBUG("timer fired", "\"timer\":%s,\"due\":%lld,\"decisions\":%zu",
           lp_log_str(f->timer.id), (long long)f->timer.due_ms, nd);
  struct inflight *in = lp_xcalloc(1, sizeof(*in));
  in->fired = f;
  in->start_us = lp_mono_us();
  in->pending = nd ? (int)nd : 1;
  char err[256];
  size_t produced = 0;
  for (size_t i = 0; i < nd; i++) {
    lp_buf_reset(&app->buf);
    if (lp_avro_encode_decision(app->avro, &ds[i], &app->buf, err,
                                sizeof(err)) != 0) {
      /* Cannot happen for a decision the rules built; the timer stays
       * claimed (never acked), so it fires again after its lease. */
      snprintf(app->fatal, sizeof(app->fatal), "encode decision %s: %s",
               ds[i].decision_id, err);
      stop_requested = 1;
      break;
    }
    char *key = lp_member_key(ds[i].shop, ds[i].customer_id);
    lp_metrics_labelled_add("loyalty_decisions_by_rule_total",
                            "Reward decisions produced, by rule", "rule",
                            ds[i].rule_id, 1);
    lp_metrics_add(LP_M_DECISIONS, 1);
    produce(app, app->decisions_topic, key, strlen(key), app->buf.data,
            app->buf.len, in);
    produced++;
    free(key);
  }
  for (size_t i = 0; i < nd; i++)
    lp_reward_decision_clear(&ds[i]);
  free(ds);
  if (nd == 0)
    output_done(app, in);
  else if (produced < nd)
    in->pending -= (int)(nd - produced); /* never reaches 0: stays claimed */
}

/* Fires the timers whose partition watermark passed their due time
 * (stream_timers.h): each is decided by the rule that planned it, its
 * decisions produced with the timer's output id, and the timer acked in
 * Redis once Kafka acknowledged them. Called between batches, when the
 * batch that advanced a watermark is in Redis and no later batch has
 * been decided; at most a few claims per call, so input keeps flowing.
 * While records flow (idle 0) only when a claim is wanted: a claim waits
 * for the timer write in flight, which is otherwise read later. */
static void fire_timers(struct app *app, int idle) {
  if (!app->timers ||
      (!idle && !lp_stream_timers_wants_claim(app->timers, lp_now_ms())))
    return; /* busy: acks wait for the next claim, which collects first */
  char err[512];
  if (lp_stream_timers_flush(app->timers, 0, err, sizeof(err)) != 0) {
    lp_metrics_add(LP_M_REDIS_ERRORS, 1);
    LP_WARN("timer acks not written, kept for the next try", "\"error\":%s",
            lp_log_str(err));
    return;
  }
  /* Idle, nothing waits on the claims: what is due is claimed at once
   * (the interval spaces claims only while records flow). */
  lp_stream_timers_force(app->timers, idle);
  for (int round = 0; round < 4 && !stop_requested; round++) {
    struct lp_st_fired *list = NULL;
    int64_t now = lp_now_ms();
    int rc = lp_stream_timers_claim(app->timers, now, &list, err, sizeof(err));
    release_held(app); /* the claim confirmed the write before it */
    if (rc != 0) {
      lp_metrics_add(LP_M_REDIS_ERRORS, 1);
      LP_WARN("timers not claimed, retried later", "\"error\":%s",
              lp_log_str(err));
      break;
    }
    if (!list)
      break;
    while (list) {
      struct lp_st_fired *f = list;
      list = f->next;
      f->next = NULL;
      fire_one(app, f);
    }
  }
  lp_stream_timers_force(app->timers, 0);
}

/* At shutdown, after the last batch: fires every timer its partitions'
 * watermarks have passed (bounded by shutdown.timeout.ms), so a stopped
 * processor has decided the same as one that kept running. */
static void fire_timers_at_exit(struct app *app) {
  if (!app->timers || app->fatal[0])
    return;
  lp_stream_timers_force(app->timers, 1);
  int64_t deadline = lp_mono_us() + app->conf.shutdown_timeout_ms * 1000;
  char err[512];
  int empty = 0;
  while (lp_mono_us() < deadline) {
    rd_kafka_poll(app->producer, 0);
    if (lp_stream_timers_flush(app->timers, 1, err, sizeof(err)) != 0)
      break;
    struct lp_st_fired *list = NULL;
    if (lp_stream_timers_claim(app->timers, lp_now_ms(), &list, err,
                               sizeof(err)) != 0)
      break;
    if (!list) {
      /* Claims wait while many fired timers are unacknowledged: let their
       * deliveries and acks through, then look once more. */
      if (rd_kafka_outq_len(app->producer) > 0) {
        rd_kafka_poll(app->producer, 50);
        continue;
      }
      if (empty++)
        break;
      continue;
    }
    empty = 0;
    while (list) {
      struct lp_st_fired *f = list;
      list = f->next;
      f->next = NULL;
      fire_one(app, f);
    }
  }
  lp_stream_timers_force(app->timers, 0);
  release_held(app);
}

/* Completes the batch awaiting Redis, if any (before waiting on anything
 * else: its acknowledgements cannot come before it is produced). */
static void complete_pending(struct app *app) {
  if (app->pending < 0)
    return;
  struct batch *bt = &app->batches[app->pending];
  app->pending = -1;
  complete_batch(app, bt);
}

/* Waits for outstanding outputs (bounded), then stores and commits every
 * finished offset synchronously. Used on revoke and at shutdown. */
static void finish_and_commit(struct app *app) {
  int64_t deadline = lp_mono_us() + app->conf.shutdown_timeout_ms * 1000;
  while (lp_mono_us() < deadline) {
    produce_retries(app);
    rd_kafka_flush(app->producer, 100);
    if (rd_kafka_outq_len(app->producer) == 0 && !app->retries)
      break;
  }
  rd_kafka_poll(app->producer, 0);
  if (timers_collect(app) != 0)
    LP_WARN("timer writes not confirmed; their records are redelivered",
            "\"held\":%zu", app->n_held);
  if (app->timers) { /* fired timers whose decisions are now acknowledged */
    char terr[512];
    if (lp_stream_timers_flush(app->timers, 1, terr, sizeof(terr)) != 0)
      LP_WARN("timer acks not written; those timers fire again after their "
              "lease, with the same decision ids",
              "\"error\":%s", lp_log_str(terr));
  }
  lp_offsets_drain_committable(app->offsets, lp_kafka_store_offset,
                               app->consumer);
  rd_kafka_resp_err_t err = rd_kafka_commit(app->consumer, NULL, 0);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    LP_WARN("commit failed", "\"error\":%s", lp_log_str(rd_kafka_err2str(err)));
}

static void log_partitions(const char *what,
                           const rd_kafka_topic_partition_list_t *parts) {
  struct lp_buf b;
  lp_buf_init(&b);
  for (int i = 0; i < parts->cnt; i++)
    lp_buf_appendf(&b, "%s%s/%d", i ? "," : "", parts->elems[i].topic,
                   (int)parts->elems[i].partition);
  LP_INFO(what, "\"partitions\":%s", lp_log_str(lp_buf_cstr(&b)));
  lp_buf_free(&b);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  struct app *app = opaque;
  int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  lp_metrics_add(LP_M_REBALANCES, 1);
  rd_kafka_error_t *error = NULL;
  rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    log_partitions("partitions assigned", parts);
    for (int i = 0; app->timers && i < parts->cnt; i++)
      lp_stream_timers_assign(app->timers, parts->elems[i].partition);
    if (cooperative)
      error = rd_kafka_incremental_assign(rk, parts);
    else
      ret = rd_kafka_assign(rk, parts);
  } else {
    int lost = rd_kafka_assignment_lost(rk);
    log_partitions(lost ? "partitions lost" : "partitions revoked", parts);
    /* Revoked (not lost): finish what is in flight and commit, so the next
     * owner starts where we stopped. Lost: the next owner may already
     * consume; commit nothing, it will redeliver. */
    complete_pending(app);
    if (!lost)
      finish_and_commit(app);
    for (int i = 0; i < parts->cnt; i++)
      lp_offsets_forget(app->offsets, parts->elems[i].topic,
                        parts->elems[i].partition);
    for (int i = 0; app->timers && i < parts->cnt; i++)
      lp_stream_timers_revoke(app->timers, parts->elems[i].partition);
    if (cooperative)
      error = rd_kafka_incremental_unassign(rk, parts);
    else
      ret = rd_kafka_assign(rk, NULL);
  }
  if (error) {
    LP_ERROR("rebalance failed", "\"error\":%s",
             lp_log_str(rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
  } else if (ret) {
    LP_ERROR("rebalance failed", "\"error\":%s",
             lp_log_str(rd_kafka_err2str(ret)));
  }
  rd_kafka_topic_partition_list_t *now = NULL;
  if (rd_kafka_assignment(rk, &now) == RD_KAFKA_RESP_ERR_NO_ERROR && now) {
    lp_metrics_set(LP_M_ASSIGNED_PARTITIONS, now->cnt);
    rd_kafka_topic_partition_list_destroy(now);
  }
}

/* Consumer statistics: per-partition lag into a labelled gauge. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
  (void)rk;
  (void)opaque;
  json_t *root = json_loadb(json, len, 0, NULL);
  json_t *topics = json_object_get(root, "topics");
  const char *tname;
  json_t *t;
  json_object_foreach(topics, tname, t) {
    const char *pname;
    json_t *p;
    json_object_foreach(json_object_get(t, "partitions"), pname, p) {
      json_t *lag = json_object_get(p, "consumer_lag");
      if (strcmp(pname, "-1") == 0 || !json_is_integer(lag) ||
          json_integer_value(lag) < 0)
        continue;
      char label[300];
      snprintf(label, sizeof(label), "%s/%s", tname, pname);
      lp_metrics_labelled_set("loyalty_consumer_lag",
                              "Messages behind the partition's high "
                              "watermark",
                              "partition", label, json_integer_value(lag));
    }
  }
  json_decref(root);
  return 0; /* librdkafka frees json */
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
  struct app *app = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[256];
    rd_kafka_fatal_error(rk, buf, sizeof(buf));
    snprintf(app->fatal, sizeof(app->fatal), "librdkafka fatal: %s", buf);
    stop_requested = 1;
    return;
  }
  LP_WARN("kafka error", "\"error\":%s,\"reason\":%s",
          lp_log_str(rd_kafka_err2name((rd_kafka_resp_err_t)err)),
          lp_log_str(reason));
}

static int health(void *opaque, char *reason, size_t size) {
  struct app *app = opaque;
  if (app->fatal[0]) {
    snprintf(reason, size, "fatal: %s", app->fatal);
    return 0;
  }
  if (!lp_profile_store_healthy(app->store) &&
      lp_metrics_get(LP_M_REDIS_ERRORS) > 0) {
    snprintf(reason, size, "redis unavailable");
    return 0;
  }
  return 1;
}

static void reload_rules(struct app *app) {
  char err[1024];
  struct lp_ruleset *rs =
      lp_ruleset_load(app->conf.rules_path, err, sizeof(err));
  if (!rs) {
    lp_metrics_add(LP_M_RULE_RELOAD_FAILURES, 1);
    LP_ERROR("rule reload rejected; previous rules stay in force",
             "\"error\":%s", lp_log_str(err));
    return;
  }
  lp_ruleset_destroy(&app->rules);
  app->rules = rs;
  lp_metrics_add(LP_M_RULE_RELOADS, 1);
  LP_INFO("rules reloaded", "\"rules\":%zu,\"digest\":%s", lp_ruleset_count(rs),
          lp_log_str(lp_ruleset_digest(rs)));
}

/* Reads the model source; a new valid model replaces the one in force
 * once the batch in flight is finished (it was decided under the old). */
static void poll_model(struct app *app) {
  char err[1024];
  struct lp_model m;
  switch (lp_model_watch_poll(app->model_watch, &m, err, sizeof(err))) {
  case LP_MODEL_UNCHANGED:
    return;
  case LP_MODEL_NEW:
    complete_pending(app);
    app->model = m;
    app->have_model = 1;
    lp_metrics_add(LP_M_MODEL_LOADS, 1);
    lp_metrics_set(LP_M_MODEL_IN_FORCE, 1);
    LP_INFO("model in force", "\"version\":%s,\"time_unit\":%s,\"source\":%s",
            lp_log_str(m.version), lp_log_str(m.time_unit),
            lp_log_str(lp_model_watch_source(app->model_watch)));
    return;
  case LP_MODEL_REJECTED:
    lp_metrics_add(LP_M_MODEL_REJECTS, 1);
    LP_ERROR(app->have_model ? "model rejected; the previous model stays in "
                               "force"
                             : "model rejected; no model in force, rules see "
                               "no scores",
             "\"error\":%s,\"in_force\":%s", lp_log_str(err),
             lp_log_str(app->have_model ? app->model.version : NULL));
    return;
  case LP_MODEL_UNAVAILABLE:
    LP_WARN(app->have_model ? "model source unavailable; the model in force "
                              "stays"
                            : "no model available yet; rules see no scores",
            "\"reason\":%s", lp_log_str(err));
    return;
  }
}

static int setup(struct app *app, char *err, size_t errsize) {
  struct app_config *c = &app->conf;
  app->rules = lp_ruleset_load(c->rules_path, err, errsize);
  if (!app->rules)
    return -1;
  LP_INFO("rules loaded", "\"rules\":%zu,\"digest\":%s,\"path\":%s",
          lp_ruleset_count(app->rules),
          lp_log_str(lp_ruleset_digest(app->rules)), lp_log_str(c->rules_path));
  if (*c->model_file || *c->model_key) {
    char *key = lp_xasprintf("%s:%s", c->redis_namespace, c->model_key);
    struct lp_model_watch_config mc = {
        /* A short timeout: a poll must never stall the event loop for
         * long while Redis is slow or away (the model in force stays). */
        c->redis_host, (int)c->redis_port,
        (int)(c->redis_timeout_ms < 250 ? c->redis_timeout_ms : 250),
        *c->model_file ? NULL : key, *c->model_file ? c->model_file : NULL};
    app->model_watch = lp_model_watch_new(&mc);
    free(key);
    app->pending = -1;
    poll_model(app);
    app->next_model_poll_us = lp_mono_us() + c->model_poll_ms * 1000;
  }
  app->avro = lp_avro_codec_new(*c->registry_url ? c->registry_url : NULL, err,
                                errsize);
  if (!app->avro)
    return -1;
  struct lp_activity_params ap = {c->activity_half_life_ms,
                                  (int)c->activity_max_names,
                                  c->activity_floor_micros};
  struct lp_profile_store_config sc = {c->redis_host,
                                       (int)c->redis_port,
                                       c->redis_namespace,
                                       c->memo_ttl_s,
                                       (int)c->redis_timeout_ms,
                                       LP_MAX_AFFINITIES,
                                       (int)c->cas_batch,
                                       &ap};
  app->store = lp_profile_store_new(&sc, err, errsize);
  if (!app->store)
    return -1;
  app->timer_activity = ap;
  if (c->timers_enabled) {
    struct lp_stream_timers_config tc = {c->redis_host,
                                         (int)c->redis_port,
                                         (int)c->redis_timeout_ms,
                                         c->redis_namespace,
                                         c->topic_input,
                                         c->timers_lateness_ms,
                                         c->timers_wall_clock,
                                         c->timers_idle_ms,
                                         c->timers_wall_lag_ms,
                                         c->timers_lease_ms,
                                         c->timers_fire_interval_ms,
                                         ap};
    app->timers = lp_stream_timers_new(&tc, err, errsize);
    if (!app->timers)
      return -1;
    const struct lp_timer_rule *tr;
    LP_INFO("timers on",
            "\"timer_rules\":%zu,\"lateness_ms\":%ld,"
            "\"wall_clock\":%s,\"idle_ms\":%ld,\"wall_lag_ms\":%ld",
            lp_ruleset_timer_rules(app->rules, &tr), c->timers_lateness_ms,
            c->timers_wall_clock ? "true" : "false", c->timers_idle_ms,
            c->timers_wall_lag_ms);
  }
  if (lp_kafka_resolve_bootstrap(&app->kafka, c->bootstrap_file, err, errsize))
    return -1;

  char client_id[128];
  snprintf(client_id, sizeof(client_id), "%s-%d", app->spec->name,
           (int)getpid());
  const char *consumer_defaults[] = {
      "group.id", c->group_id, "client.id", client_id,
      "enable.auto.offset.store", "false", "enable.auto.commit", "true",
      "auto.commit.interval.ms", "1000", "auto.offset.reset", "earliest",
      "partition.assignment.strategy", "cooperative-sticky",
      "statistics.interval.ms", "5000",
      /* Prefetch bound (librdkafka's default
       * is 64 MiB). Not lower: 2.0's fetcher
       * backs a full queue off for a whole
       * second, so the queue must hold about
       * that long at full speed; at 8 MiB the
       * processor starved for ~0.4 s at a
       * time (~47k/s instead of ~51k/s). */
      "queued.max.messages.kbytes", "10240",
      /* One fetch response stays in memory
       * until its last record is released, on
       * top of the prefetch: cap it at 2 MiB
       * (256 KiB a partition) instead of
       * 50 MiB (1 MiB). */
      "fetch.max.bytes", "2097152", "max.partition.fetch.bytes", "262144",
      NULL};
  rd_kafka_conf_t *cc =
      lp_kafka_conf_build(consumer_defaults, &app->kafka, err, errsize);
  if (!cc)
    return -1;
  rd_kafka_conf_set_opaque(cc, app);
  rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
  rd_kafka_conf_set_stats_cb(cc, stats_cb);
  rd_kafka_conf_set_error_cb(cc, error_cb);
  app->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, errsize);
  if (!app->consumer) {
    rd_kafka_conf_destroy(cc);
    return -1;
  }
  rd_kafka_poll_set_consumer(app->consumer);

  const char *producer_defaults[] = {
      "client.id", client_id, "enable.idempotence", "true", "linger.ms", "5",
      /* Bounded output queue (librdkafka's default is 1 GiB): a full queue
       * makes produce() wait, which is the backpressure we want. */
      "queue.buffering.max.kbytes", "16384", "statistics.interval.ms", "0",
      NULL};
  rd_kafka_conf_t *pc =
      lp_kafka_conf_build(producer_defaults, &app->kafka, err, errsize);
  if (!pc)
    return -1;
  rd_kafka_conf_set_opaque(pc, app);
  rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
  rd_kafka_conf_set_error_cb(pc, error_cb);
  app->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, errsize);
  if (!app->producer) {
    rd_kafka_conf_destroy(pc);
    return -1;
  }
  app->decisions_topic =
      rd_kafka_topic_new(app->producer, c->topic_decisions, NULL);
  app->dlq_topic = rd_kafka_topic_new(app->producer, c->topic_dlq, NULL);

  rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subs, c->topic_input,
                                    RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t kerr = rd_kafka_subscribe(app->consumer, subs);
  rd_kafka_topic_partition_list_destroy(subs);
  if (kerr)
    return lp_err(err, errsize, "subscribe %s: %s", c->topic_input,
                  rd_kafka_err2str(kerr));

  app->offsets = lp_offsets_new((size_t)c->max_in_flight);
  if (c->http_port >= 0) {
    app->http = lp_http_server_start(c->http_bind, (int)c->http_port, health,
                                     app, err, errsize);
    if (!app->http)
      return -1;
  }
  return 0;
}

/* The poll loop; returns when stop is requested. */
static void run(struct app *app) {
  size_t cap = (size_t)app->conf.batch_size;
  for (int i = 0; i < LP_STORE_SLOTS; i++) {
    app->batches[i].slot = i;
    app->batches[i].recs = lp_xcalloc(cap, sizeof(struct record));
  }
  app->pending = -1;
  while (!stop_requested) {
    if (reload_requested) {
      complete_pending(app); /* decided under the rules it started with */
      reload_requested = 0;
      reload_rules(app);
      if (app->model_watch && *app->conf.model_file)
        poll_model(app);
    }
    if (app->model_watch && !*app->conf.model_file &&
        lp_mono_us() >= app->next_model_poll_us) {
      poll_model(app);
      app->next_model_poll_us = lp_mono_us() + app->conf.model_poll_ms * 1000;
    }
    produce_retries(app);
    rd_kafka_poll(app->producer, 0);
    release_held(app);
    lp_offsets_drain_committable(app->offsets, lp_kafka_store_offset,
                                 app->consumer);
    size_t in_flight = lp_offsets_total_in_flight(app->offsets);
    lp_metrics_set(LP_M_IN_FLIGHT, (int64_t)in_flight);
    if (in_flight >= (size_t)app->conf.max_in_flight) {
      /* Backpressure: wait for acknowledgements before consuming more. */
      if (app->pending >= 0)
        complete_pending(app);
      else if (app->n_held)
        (void)timers_collect(app);
      else
        rd_kafka_poll(app->producer, 50);
      continue;
    }
    struct batch *bt = &app->batches[app->pending == 0 ? 1 : 0];
    struct record *recs = bt->recs;
    size_t n = 0;
    while (n < cap) {
      /* Wait for input only when no batch is waiting for Redis. */
      rd_kafka_message_t *m = rd_kafka_consumer_poll(
          app->consumer, n == 0 && app->pending < 0 ? 100 : 0);
      if (!m)
        break;
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          LP_WARN("consume error", "\"error\":%s",
                  lp_log_str(rd_kafka_message_errstr(m)));
        rd_kafka_message_destroy(m);
        continue;
      }
      struct record *rec = &recs[n++];
      /* The encode buffers are kept across batches (no per-record malloc). */
      struct lp_buf enc = rec->enc;
      size_t *enc_end = rec->enc_end, enc_end_cap = rec->enc_end_cap;
      memset(rec, 0, sizeof(*rec));
      rec->enc = enc;
      rec->enc_end = enc_end;
      rec->enc_end_cap = enc_end_cap;
      rec->msg = m;
      rec->inflight = lp_xcalloc(1, sizeof(*rec->inflight));
      rec->inflight->start_us = lp_mono_us();
      rec->inflight->offset_handle = lp_offsets_add(
          app->offsets, rd_kafka_topic_name(m->rkt), m->partition, m->offset);
      lp_metrics_add(LP_M_CONSUMED, 1);
    }
    bt->n = n;
    if (n == 0) {
      complete_pending(app); /* idle: finish what is waiting */
      (void)timers_collect(app);
      fire_timers(app, 1);
      continue;
    }
    /* Redis runs the pending batch's compare-and-sets, then this batch's
     * reads, while we decode, then produce the pending batch. */
    prepare_batch(app, bt);
    complete_pending(app);
    fire_timers(app, 0); /* between batch k-1 (in Redis) and k (not decided) */
    if (lp_profile_store_advance(app->store, bt->slot, &stop_requested) != 0) {
      complete_batch(app, bt); /* stopping during an outage: unfinished */
      continue;
    }
    app->pending = bt->slot;
  }
  complete_pending(app);
  (void)timers_collect(app);
}

/* Frees the batches' arrays (after run; records already released). */
static void free_batches(struct app *app) {
  size_t cap = (size_t)app->conf.batch_size;
  for (int i = 0; i < LP_STORE_SLOTS; i++) {
    struct batch *bt = &app->batches[i];
    for (size_t k = 0; bt->recs && k < cap; k++) {
      lp_buf_free(&bt->recs[k].enc);
      free(bt->recs[k].enc_end);
    }
    free(bt->recs);
    lp_arena_free(&bt->arena);
    free(bt->ops);
    free(bt->op_rec);
    memset(bt, 0, sizeof(*bt));
  }
}

static void teardown(struct app *app) {
  if (app->consumer) {
    rd_kafka_consumer_close(app->consumer);
    rd_kafka_destroy(app->consumer);
  }
  if (app->decisions_topic)
    rd_kafka_topic_destroy(app->decisions_topic);
  if (app->dlq_topic)
    rd_kafka_topic_destroy(app->dlq_topic);
  if (app->producer) {
    rd_kafka_flush(app->producer, (int)app->conf.shutdown_timeout_ms);
    rd_kafka_destroy(app->producer);
  }
  lp_http_server_stop(&app->http);
  lp_offsets_destroy(&app->offsets);
  lp_profile_store_destroy(&app->store);
  lp_stream_timers_destroy(&app->timers);
  for (size_t i = 0; i < app->n_held; i++) /* unconfirmed at exit */
    if (app->held[i].in->pending == 1)
      free(app->held[i].in);
  free(app->held);
  app->held = NULL;
  lp_ruleset_destroy(&app->rules);
  lp_model_watch_destroy(&app->model_watch);
  lp_avro_codec_destroy(&app->avro);
  while (app->retries) {
    struct retry *r = app->retries;
    app->retries = r->next;
    free(r->topic);
    free(r->key);
    free(r->value);
    free(r);
  }
  lp_buf_free(&app->buf);
  free_batches(app);
  lp_config_free(config_table, LP_ARRAY_LEN(config_table), &app->conf,
                 &app->kafka);
  lp_metrics_shutdown();
}

int lp_stream_app_main(const struct lp_stream_app_spec *spec, int argc,
                       char **argv) {
  /* One malloc arena for all threads (unless the operator chose with
   * MALLOC_ARENA_MAX): records are allocated by librdkafka's fetcher and
   * freed by this thread, and with an arena per thread the fetcher's kept
   * several MB of freed memory to itself (peak RSS ~4 MB lower, same
   * throughput, measured on the bench). Before any thread starts. */
  if (!getenv("MALLOC_ARENA_MAX"))
    mallopt(M_ARENA_MAX, 1);
  struct app app;
  memset(&app, 0, sizeof(app));
  app.spec = spec;
  lp_buf_init(&app.buf);
  /* Per-processor defaults live in the spec; the table is shared. */
  for (size_t i = 0; i < LP_ARRAY_LEN(config_table); i++) {
    if (strcmp(config_table[i].key, "group.id") == 0)
      config_table[i].default_value = spec->group_id;
    else if (strcmp(config_table[i].key, "topic.input") == 0)
      config_table[i].default_value = spec->input_topic;
    else if (strcmp(config_table[i].key, "http.port") == 0)
      config_table[i].default_value = spec->http_port;
  }
  lp_log_init(spec->name, LP_LOG_INFO);
  lp_metrics_init(spec->name);
  char err[1024];
  int rc =
      lp_config_load(config_table, LP_ARRAY_LEN(config_table), &app.conf,
                     &app.kafka, argc, argv, spec->usage, err, sizeof(err));
  if (rc != 0) {
    if (rc < 0)
      fprintf(stderr, "%s: %s\n", spec->name, err);
    lp_config_free(config_table, LP_ARRAY_LEN(config_table), &app.conf,
                   &app.kafka);
    lp_metrics_shutdown();
    return rc < 0 ? 2 : 0;
  }
  enum lp_log_level level;
  if (lp_log_level_parse(app.conf.log_level, &level) != 0) {
    fprintf(stderr, "%s: log.level: unknown level \"%s\"\n", spec->name,
            app.conf.log_level);
    teardown(&app);
    return 2;
  }
  lp_log_set_level(level);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_hup;
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (setup(&app, err, sizeof(err)) != 0) {
    LP_ERROR("start-up failed", "\"error\":%s", lp_log_str(err));
    fprintf(stderr, "%s: %s\n", spec->name, err);
    teardown(&app);
    return 2;
  }
  LP_INFO("started",
          "\"input\":%s,\"group\":%s,\"decisions\":%s,\"dlq\":%s,"
          "\"redis\":\"%s:%ld/%s\",\"http_port\":%d",
          lp_log_str(app.conf.topic_input), lp_log_str(app.conf.group_id),
          lp_log_str(app.conf.topic_decisions), lp_log_str(app.conf.topic_dlq),
          app.conf.redis_host, app.conf.redis_port, app.conf.redis_namespace,
          app.http ? lp_http_server_port(app.http) : -1);

  run(&app);
  fire_timers_at_exit(&app);

  int exit_code = app.fatal[0] ? 1 : 0;
  if (exit_code)
    LP_ERROR("stopping after a fatal error", "\"error\":%s",
             lp_log_str(app.fatal));
  LP_INFO("shutting down: finishing in-flight work", "\"in_flight\":%zu",
          lp_offsets_total_in_flight(app.offsets));
  finish_and_commit(&app);
  LP_INFO("stopped",
          "\"consumed\":%lld,\"decisions\":%lld,"
          "\"dead_letters\":%lld",
          (long long)lp_metrics_get(LP_M_CONSUMED),
          (long long)lp_metrics_get(LP_M_DECISIONS),
          (long long)lp_metrics_get(LP_M_DEAD_LETTERED));
  teardown(&app);
  return exit_code;
}
