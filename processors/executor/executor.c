/*
 * executor.c — the executor's engine (see executor.h). One thread: the
 * loop consumes decisions, pipelines their begin scripts to Redis, drives
 * libcurl multi, pipelines finish scripts, and produces the outputs;
 * librdkafka's delivery reports finish the offsets.
 *
 * A decision is a job that moves through these states:
 *   BEGIN   waiting for (or retrying) its claim in Redis
 *   WAIT    claimed; sends at due_us (rate schedule, 429, backoff)
 *   SEND    its request is in flight
 *   CHECK   reading the platform's transactions after an ambiguous
 *           outcome, before any resend
 *   FINISH  outcome known; recording it in Redis
 *   EMIT    outputs produced; waiting for Kafka's acknowledgements
 */
#include "executor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "avro_codec.h"
#include "copywriter.h"
#include "events.h"
#include "exec_store.h"
#include "http_server.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "util.h"

enum job_state { J_BEGIN, J_WAIT, J_COPY, J_SEND, J_CHECK, J_FINISH, J_EMIT };

struct job {
  struct exec *ex;
  rd_kafka_message_t *msg; /* owned until the job ends; NULL for a
                              decision from the approval queue */
  void *offset_handle;
  /* The decision's bytes (the message's, or the queue's copy) and key. */
  const void *raw;
  size_t raw_len;
  char *queued;     /* from the approval queue: owned copy of the bytes */
  char *member_key; /* "<shop>:<customer>" for queue jobs, owned */
  char actor[128];  /* who approved or rejected it */
  int64_t start_us;
  struct lp_reward_decision d;
  int decoded;
  enum lp_platform platform;
  enum job_state state;
  int64_t due_us;
  int attempts;       /* HTTP attempts of the action (not checks) */
  int begin_failures; /* in a row, for backoff */
  char token[24];     /* this job's claim token (exec_store.h) */
  int64_t renewed_us; /* the claim was made or last renewed then */
  int lost;           /* the claim was taken over: begin again */
  int checks;         /* failed checks of an unknown outcome */
  int abandon;        /* shutdown: give the unsent claim back */
  char queue_id[40];  /* from the approval queue: its decision id */
  int takeover;       /* claimed after a lost claim: check first */
  int needs_approval;
  struct lp_http_request req;   /* the action */
  struct lp_http_request check; /* the read after an ambiguous outcome */
  /* Generated copy (copywriter.h): asked once per claim, before the
   * first send; the outcome goes into the audit record. */
  int copy_done;
  struct lp_http_request copy_req;
  char *copy_prompt, *copy_output; /* owned */
  char copy_source[16];
  char copy_note[520];
  CURL *easy; /* while SEND or CHECK */
  struct curl_slist *headers;
  struct lp_buf body; /* response body */
  struct lp_rate_headers rh;
  /* The outcome. */
  enum lp_action_outcome outcome;
  int done; /* finish: 1 spend the budget, 0 release it */
  int http_status;
  char reference[160];
  char reason[1024];
  char guardrail[160];
  int dead_letter; /* also a dead letter, with reason */
  int pending;     /* outputs not yet acknowledged */
  struct job *next;
};

/* A produce whose delivery failed, to be produced again. */
struct retry {
  rd_kafka_topic_t *rkt;
  void *key, *value;
  size_t key_len, value_len;
  struct job *job;
  struct retry *next;
};

struct exec {
  const struct lp_executor_config *conf;
  struct lp_adapters_conf adapters;
  char *keys[LP_PLATFORM_COUNT]; /* credentials read from files */
  struct lp_exec_store *store;
  struct lp_avro_codec *avro;
  rd_kafka_t *consumer, *producer;
  rd_kafka_topic_t *actions_topic, *dlq_topic;
  struct lp_offsets *offsets;
  struct lp_http_server *http;
  CURLM *multi;
  struct job *jobs; /* every live job */
  size_t n_jobs;
  int in_flight[LP_PLATFORM_COUNT];
  int64_t hold_until_us[LP_PLATFORM_COUNT]; /* after a 429 */
  int64_t last_429_us[LP_PLATFORM_COUNT];
  struct retry *retries;
  int paused;
  int64_t member_cap, default_budget, approval_above;
  int64_t sync_min_p, sync_min_clv; /* micros */
  struct lp_copy_conf copy;         /* copy.url empty: no generated copy */
  char *copy_key;                   /* owned, from copy.key.file */
  int copy_in_flight;
  int64_t redis_backoff_until_us;
  int64_t next_approval_us;
  int64_t full_since_us; /* the in-flight window has been full since */
  int tearing_down;
  int redis_failures;
  uint64_t rng;
  struct lp_buf buf;
  char fatal[512];
  volatile sig_atomic_t *stop;
};

/* ---- small helpers ---- */

static int64_t jitter(struct exec *ex, int64_t ms) {
  ex->rng ^= ex->rng << 13;
  ex->rng ^= ex->rng >> 7;
  ex->rng ^= ex->rng << 17;
  return ms / 2 + (int64_t)(ex->rng % (uint64_t)(ms / 2 + 1));
}

/* Exponential backoff with jitter for attempt n (1-based). */
static int64_t backoff_ms(struct exec *ex, int n) {
  int64_t ms = ex->conf->retry_base_ms;
  for (int i = 1; i < n && ms < ex->conf->retry_cap_ms; i++)
    ms *= 2;
  if (ms > ex->conf->retry_cap_ms)
    ms = ex->conf->retry_cap_ms;
  return jitter(ex, ms);
}

static void count_outcome(enum lp_action_outcome o) {
  lp_metrics_labelled_add("loyalty_actions_total",
                          "Decisions by what became of them", "outcome",
                          lp_action_outcome_name(o), 1);
}

/* ---- outputs ---- */

static void job_free(struct exec *ex, struct job *j) {
  struct job **pp = &ex->jobs;
  while (*pp && *pp != j)
    pp = &(*pp)->next;
  if (*pp)
    *pp = j->next;
  ex->n_jobs--;
  if (j->easy) {
    curl_multi_remove_handle(ex->multi, j->easy);
    curl_easy_cleanup(j->easy);
  }
  curl_slist_free_all(j->headers);
  lp_http_request_clear(&j->req);
  lp_http_request_clear(&j->check);
  lp_http_request_clear(&j->copy_req);
  free(j->copy_prompt);
  free(j->copy_output);
  lp_buf_free(&j->body);
  lp_reward_decision_clear(&j->d);
  if (j->msg)
    rd_kafka_message_destroy(j->msg);
  free(j->queued);
  free(j->member_key);
  free(j);
}

/* One output of j acknowledged; the last one finishes its offset (a
 * queue job leaves the approval queue instead). */
static void output_done(struct exec *ex, struct job *j) {
  LP_ASSERT(j->pending > 0);
  if (--j->pending > 0)
    return;
  if (j->msg) {
    lp_offsets_done(ex->offsets, j->offset_handle);
  } else {
    char err[256];
    /* Not removed (Redis down): it comes back after the hide time and
     * is reported again, which the audit trail tolerates. */
    if (lp_exec_store_ready_done(ex->store, j->queue_id, err, sizeof(err)))
      LP_WARN("approval queue: could not mark done",
              "\"decision_id\":%s,\"error\":%s", lp_log_str(j->queue_id),
              lp_log_str(err));
  }
  lp_metrics_observe_latency_us(lp_mono_us() - j->start_us);
  job_free(ex, j);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct exec *ex = opaque;
  struct job *j = m->_private;
  if (ex->tearing_down)
    return; /* purged at exit: the job is about to go, unfinished */
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    lp_metrics_add(LP_M_PRODUCED, 1);
    output_done(ex, j);
    return;
  }
  LP_WARN("delivery failed, producing again", "\"topic\":%s,\"error\":%s",
          lp_log_str(rd_kafka_topic_name(m->rkt)),
          lp_log_str(rd_kafka_err2str(m->err)));
  struct retry *r = lp_xcalloc(1, sizeof(*r));
  r->rkt = m->rkt;
  r->key = lp_xmalloc(m->key_len + 1);
  memcpy(r->key, m->key, m->key_len);
  r->key_len = m->key_len;
  r->value = lp_xmalloc(m->len + 1);
  memcpy(r->value, m->payload, m->len);
  r->value_len = m->len;
  r->job = j;
  r->next = ex->retries;
  ex->retries = r;
  lp_metrics_add(LP_M_PRODUCE_RETRIES, 1);
}

/* Produces one output (copied) of j; waits while the queue is full. */
static void produce(struct exec *ex, rd_kafka_topic_t *rkt, const void *key,
                    size_t key_len, const void *value, size_t len,
                    struct job *j) {
  for (;;) {
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                         (void *)value, len, key, key_len, j) == 0)
      return;
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      snprintf(ex->fatal, sizeof(ex->fatal), "produce to %s: %s",
               rd_kafka_topic_name(rkt), rd_kafka_err2str(err));
      *ex->stop = 1;
      return; /* the job stays unfinished: its offset is never stored */
    }
    rd_kafka_poll(ex->producer, 10);
  }
}

static void produce_retries(struct exec *ex) {
  while (ex->retries) {
    struct retry *r = ex->retries;
    ex->retries = r->next;
    produce(ex, r->rkt, r->key, r->key_len, r->value, r->value_len, r->job);
    free(r->key);
    free(r->value);
    free(r);
  }
}

/* The decision's dead letter (reason: which field and why). */
static void emit_dead_letter(struct exec *ex, struct job *j,
                             const char *reason) {
  const rd_kafka_message_t *m = j->msg;
  struct lp_dead_letter dl = {0};
  const void *key = m ? m->key : j->member_key;
  size_t key_len = m ? m->key_len : strlen(j->member_key);
  dl.source_topic =
      lp_xstrdup(m ? rd_kafka_topic_name(m->rkt) : "approval-queue");
  dl.source_partition = m ? m->partition : -1;
  dl.source_offset = m ? m->offset : -1;
  if (key_len) {
    dl.source_key = lp_xmalloc(key_len);
    memcpy(dl.source_key, key, key_len);
    dl.source_key_len = key_len;
  }
  size_t keep = j->raw_len < (size_t)ex->conf->dlq_max_original
                    ? j->raw_len
                    : (size_t)ex->conf->dlq_max_original;
  dl.original = lp_xmalloc(keep ? keep : 1);
  if (keep)
    memcpy(dl.original, j->raw, keep);
  dl.original_len = keep;
  dl.processor = lp_xstrdup("executor");
  dl.reason = lp_xstrdup(reason);
  const char *colon = strstr(reason, ": ");
  if (colon && colon > reason && !memchr(reason, ' ', (size_t)(colon - reason)))
    dl.field = lp_xstrndup(reason, (size_t)(colon - reason));
  dl.time_ms = lp_now_ms();
  LP_WARN("decision dead-lettered",
          "\"topic\":%s,\"partition\":%d,\"offset\":%lld,\"decision_id\":%s,"
          "\"reason\":%s",
          lp_log_str(dl.source_topic), (int)dl.source_partition,
          (long long)dl.source_offset,
          lp_log_str(j->decoded ? j->d.decision_id : NULL), lp_log_str(reason));
  char err[256];
  lp_buf_reset(&ex->buf);
  if (lp_avro_encode_dead_letter(ex->avro, &dl, &ex->buf, err, sizeof(err))) {
    snprintf(ex->fatal, sizeof(ex->fatal), "encode dead letter: %s", err);
    *ex->stop = 1;
  } else {
    j->pending++;
    lp_metrics_add(LP_M_DEAD_LETTERED, 1);
    produce(ex, ex->dlq_topic, key, key_len, ex->buf.data, ex->buf.len, j);
  }
  lp_dead_letter_clear(&dl);
}

/* The audit record of j's outcome. */
static void emit_result(struct exec *ex, struct job *j) {
  const struct lp_reward_decision *d = &j->d;
  struct lp_action_result r = {0};
  r.decision_id = d->decision_id;
  r.shop = d->shop;
  r.customer_id = d->customer_id;
  r.trigger_event_id = d->trigger_event_id;
  r.rule_id = d->rule_id;
  r.rule_version = d->rule_version;
  r.model_version = d->explanation.model_version;
  r.action_kind = d->action.kind;
  r.platform = j->platform != LP_PLATFORM_NONE
                   ? (char *)lp_platform_name(j->platform)
                   : NULL;
  r.outcome = j->outcome;
  r.guardrail = j->guardrail[0] ? j->guardrail : "ok";
  r.request_summary = j->req.summary;
  r.http_status = j->http_status;
  r.platform_reference = j->reference[0] ? j->reference : NULL;
  r.attempts = j->attempts;
  r.latency_ms = (lp_mono_us() - j->start_us) / 1000;
  r.reason = j->reason[0] ? j->reason : NULL;
  r.actor = j->actor[0] ? j->actor : NULL;
  r.event_time_ms = d->event_time_ms;
  r.time_ms = lp_now_ms();
  if (j->copy_source[0]) {
    r.copy_source = j->copy_source;
    r.copy_model = (char *)ex->conf->copy_model;
    r.copy_prompt = j->copy_prompt;
    r.copy_output = j->copy_output;
    r.copy_note = j->copy_note[0] ? j->copy_note : NULL;
  }
  char err[256];
  lp_buf_reset(&ex->buf);
  if (lp_avro_encode_action_result(ex->avro, &r, &ex->buf, err, sizeof(err))) {
    snprintf(ex->fatal, sizeof(ex->fatal), "encode action result: %s", err);
    *ex->stop = 1;
    j->pending++; /* never finished: its offset is never stored */
    return;
  }
  count_outcome(j->outcome);
  LP_INFO("decision outcome",
          "\"decision_id\":%s,\"rule\":%s,\"outcome\":%s,\"platform\":%s,"
          "\"status\":%d,\"attempts\":%d,\"guardrail\":%s",
          lp_log_str(d->decision_id), lp_log_str(d->rule_id),
          lp_log_str(lp_action_outcome_name(j->outcome)),
          lp_log_str(r.platform), j->http_status, j->attempts,
          lp_log_str(r.guardrail));
  j->pending++;
  if (j->msg)
    produce(ex, ex->actions_topic, j->msg->key, j->msg->key_len, ex->buf.data,
            ex->buf.len, j);
  else
    produce(ex, ex->actions_topic, j->member_key, strlen(j->member_key),
            ex->buf.data, ex->buf.len, j);
}

/* Ends j: its outputs go out; the last acknowledgement frees it. */
static void emit(struct exec *ex, struct job *j) {
  j->state = J_EMIT;
  j->pending = 1; /* held until both are produced */
  if (j->decoded)
    emit_result(ex, j);
  if (j->dead_letter)
    emit_dead_letter(ex, j, j->reason);
  output_done(ex, j);
}

/* Ends j before any claim: a dead letter (and, if it decoded, a failed
 * result) with the reason. */
static void reject(struct exec *ex, struct job *j, const char *reason) {
  j->outcome = LP_OUTCOME_FAILED;
  snprintf(j->reason, sizeof(j->reason), "%s", reason);
  j->dead_letter = 1;
  emit(ex, j);
}

/* ---- consuming ---- */

static void prepare(struct exec *ex, struct job *j);

/* A consumed decision becomes a job in BEGIN, or is rejected at once. */
static void take(struct exec *ex, rd_kafka_message_t *m) {
  struct job *j = lp_xcalloc(1, sizeof(*j));
  j->msg = m;
  j->raw = m->payload;
  j->raw_len = m->len;
  j->offset_handle = lp_offsets_add(ex->offsets, rd_kafka_topic_name(m->rkt),
                                    m->partition, m->offset);
  lp_metrics_add(LP_M_CONSUMED, 1);
  prepare(ex, j);
}

/* Decodes and checks j's decision; leaves it in BEGIN or rejects it. */
static void prepare(struct exec *ex, struct job *j) {
  j->ex = ex;
  j->start_us = lp_mono_us();
  ex->rng = ex->rng * 6364136223846793005ULL + 1442695040888963407ULL;
  snprintf(j->token, sizeof(j->token), "%016llx", (unsigned long long)ex->rng);
  j->platform = LP_PLATFORM_NONE;
  lp_buf_init(&j->body);
  j->next = ex->jobs;
  ex->jobs = j;
  ex->n_jobs++;
  char err[512];
  if (!j->raw || j->raw_len == 0) {
    reject(ex, j, "record: empty value");
    return;
  }
  if (lp_avro_decode_decision(ex->avro, j->raw, j->raw_len, &j->d, err,
                              sizeof(err))) {
    reject(ex, j, err);
    return;
  }
  j->decoded = 1;
  j->platform = lp_adapters_route(&ex->adapters, &j->d, err, sizeof(err));
  if (j->platform == LP_PLATFORM_NONE ||
      lp_adapters_build(&ex->adapters, j->platform, &j->d, &j->req, err,
                        sizeof(err))) {
    reject(ex, j, err);
    return;
  }
  j->needs_approval =
      j->msg && (j->d.approval == LP_APPROVAL_REQUIRED ||
                 (ex->approval_above > 0 &&
                  j->d.estimated_cost_micros > ex->approval_above));
  j->state = J_BEGIN;
  j->due_us = 0;
}

/* ---- the approval queue ---- */

static void on_redis_error(struct exec *ex, const char *err);

/* Expires overdue parked decisions and takes settled ones, at most every
 * 500 ms: an approved decision becomes a job like a consumed one (its
 * claim follows its approval), a rejected or expired one is reported. */
static void poll_approvals(struct exec *ex) {
  int64_t *next_us = &ex->next_approval_us;
  int64_t now = lp_mono_us();
  if (now < *next_us || now < ex->redis_backoff_until_us)
    return;
  *next_us = now + 500 * 1000;
  char err[512];
  size_t expired = 0;
  if (lp_exec_store_expire_due(ex->store, 100, &expired, err, sizeof(err))) {
    on_redis_error(ex, err);
    return;
  }
  if (expired)
    LP_INFO("approval queue: decisions expired", "\"count\":%zu", expired);
  size_t room = ex->n_jobs < (size_t)ex->conf->max_in_flight
                    ? (size_t)ex->conf->max_in_flight - ex->n_jobs
                    : 0;
  if (room == 0)
    return;
  struct lp_exec_approval *ready;
  size_t n;
  if (lp_exec_store_take_ready(ex->store, room < 64 ? room : 64,
                               ex->conf->lease_ms, &ready, &n, err,
                               sizeof(err))) {
    on_redis_error(ex, err);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    struct lp_exec_approval *a = &ready[i];
    struct job *j = lp_xcalloc(1, sizeof(*j));
    j->queued = a->decision; /* taken over */
    a->decision = NULL;
    j->raw = j->queued;
    j->raw_len = a->decision_len;
    snprintf(j->actor, sizeof(j->actor), "%s", a->actor);
    snprintf(j->queue_id, sizeof(j->queue_id), "%s", a->decision_id);
    j->member_key = lp_xstrdup("");
    prepare(ex, j);
    if (!j->decoded || j->state != J_BEGIN)
      goto next; /* rejected: the dead letter says why */
    free(j->member_key);
    j->member_key = lp_member_key(j->d.shop, j->d.customer_id);
    if (strcmp(a->fate, "approved") != 0) {
      j->outcome = strcmp(a->fate, "rejected") == 0 ? LP_OUTCOME_REJECTED
                                                    : LP_OUTCOME_EXPIRED;
      snprintf(j->reason, sizeof(j->reason), "%s by %s", a->fate, a->actor);
      emit(ex, j);
    } else {
      LP_INFO("approved decision taken from the queue",
              "\"decision_id\":%s,\"actor\":%s", lp_log_str(j->d.decision_id),
              lp_log_str(j->actor));
    }
  next:
    lp_exec_approval_clear(a);
  }
  free(ready);
}

/* ---- Redis: begin and finish, pipelined over the jobs at hand ---- */

static void on_redis_error(struct exec *ex, const char *err) {
  lp_metrics_add(LP_M_REDIS_ERRORS, 1);
  int64_t ms = 50LL << (ex->redis_failures < 6 ? ex->redis_failures : 6);
  if (ms > 2000)
    ms = 2000;
  if (ex->redis_failures == 0 || ex->redis_failures % 20 == 0)
    LP_WARN("redis unavailable, retrying", "\"error\":%s,\"attempt\":%d",
            lp_log_str(err), ex->redis_failures + 1);
  ex->redis_failures++;
  ex->redis_backoff_until_us = lp_mono_us() + ms * 1000;
}

#define PIPELINE_MAX 256

static void apply_verdict(struct exec *ex, struct job *j,
                          const struct lp_exec_begin *b) {
  int64_t now = lp_mono_us();
  if (b->failed) {
    LP_WARN("begin failed, retrying", "\"decision_id\":%s,\"error\":%s",
            lp_log_str(j->d.decision_id), lp_log_str(b->error));
    j->due_us = now + backoff_ms(ex, ++j->begin_failures) * 1000;
    return;
  }
  j->begin_failures = 0;
  switch (b->verdict) {
  case LP_EXEC_CLAIMED:
    j->attempts = b->attempts;
    j->takeover = b->takeover;
    j->renewed_us = now;
    j->state = J_WAIT;
    j->due_us = now + b->wait_ms * 1000;
    if (b->takeover) {
      int safe = lp_adapters_resend_safe(j->platform, &j->d);
      LP_WARN("taking over a claim whose executor stopped mid-call",
              "\"decision_id\":%s,\"platform\":%s,\"check_first\":%s",
              lp_log_str(j->d.decision_id),
              lp_log_str(lp_platform_name(j->platform)),
              safe == 0 ? "true" : "false");
      if (safe < 0) {
        j->outcome = LP_OUTCOME_FAILED;
        j->done = 0;
        j->dead_letter = 1;
        snprintf(j->reason, sizeof(j->reason),
                 "outcome unknown: an earlier attempt may have reached %s, "
                 "which neither dedupes nor can be read back; not resent",
                 lp_platform_name(j->platform));
        j->state = J_FINISH;
      }
    }
    return;
  case LP_EXEC_FINAL:
    j->outcome = LP_OUTCOME_ALREADY_DONE;
    snprintf(j->reference, sizeof(j->reference), "%s", b->reference);
    j->http_status = b->http_status;
    snprintf(j->guardrail, sizeof(j->guardrail), "%s", b->guardrail);
    snprintf(j->reason, sizeof(j->reason), "recorded earlier as %s", b->state);
    emit(ex, j);
    return;
  case LP_EXEC_BUSY:
    /* Another executor holds the claim (a rebalance): look again when
     * its lease runs out or it finishes. */
    j->due_us = now + (b->busy_ms < 1000 ? b->busy_ms + 10 : 1000) * 1000;
    return;
  case LP_EXEC_BLOCKED:
    j->outcome = LP_OUTCOME_BLOCKED;
    snprintf(j->guardrail, sizeof(j->guardrail), "%s", b->guardrail);
    emit(ex, j);
    return;
  case LP_EXEC_PENDING:
    j->outcome = LP_OUTCOME_PENDING_APPROVAL;
    snprintf(j->reason, sizeof(j->reason), "waiting for approval");
    emit(ex, j);
    return;
  case LP_EXEC_UNKNOWN_MEMBER:
    reject(ex, j, "customer_id: unknown member (no profile in Redis)");
    return;
  }
}

static void run_begins(struct exec *ex) {
  int64_t now = lp_mono_us();
  if (now < ex->redis_backoff_until_us)
    return;
  struct job *batch[PIPELINE_MAX];
  struct lp_exec_begin ops[PIPELINE_MAX];
  size_t n = 0;
  for (struct job *j = ex->jobs; j && n < PIPELINE_MAX; j = j->next) {
    if (j->state != J_BEGIN || j->due_us > now)
      continue;
    struct lp_exec_begin *b = &ops[n];
    memset(b, 0, sizeof(*b));
    b->d = &j->d;
    b->campaign = j->d.rule_id;
    b->platform = lp_platform_name(j->platform);
    b->needs_approval = j->needs_approval;
    b->decision_bytes = j->raw;
    b->decision_len = j->raw_len;
    double rate = ex->conf->rate[j->platform];
    b->rate_interval_us = rate > 0 ? (int64_t)(1e6 / rate) : 0;
    b->rate_burst = (int)ex->conf->burst[j->platform];
    b->check_member = ex->conf->check_member;
    b->token = j->token;
    batch[n++] = j;
  }
  if (n == 0)
    return;
  char err[512];
  if (lp_exec_store_begin(ex->store, ops, n, err, sizeof(err))) {
    on_redis_error(ex, err);
    return;
  }
  ex->redis_failures = 0;
  /* apply_verdict may free a job (emit), never one not yet seen. */
  for (size_t i = 0; i < n; i++)
    apply_verdict(ex, batch[i], &ops[i]);
}

static void run_finishes(struct exec *ex) {
  if (lp_mono_us() < ex->redis_backoff_until_us)
    return;
  struct job *batch[PIPELINE_MAX];
  struct lp_exec_finish ops[PIPELINE_MAX];
  size_t n = 0;
  for (struct job *j = ex->jobs; j && n < PIPELINE_MAX; j = j->next) {
    if (j->state != J_FINISH)
      continue;
    struct lp_exec_finish *f = &ops[n];
    memset(f, 0, sizeof(*f));
    f->d = &j->d;
    f->campaign = j->d.rule_id;
    f->done = j->done;
    f->platform = lp_platform_name(j->platform);
    f->reference = j->reference;
    f->http_status = j->http_status;
    f->attempts = j->attempts;
    f->reason = j->reason;
    f->token = j->token;
    if (j->abandon)
      f->outcome = j->msg ? LP_EXEC_ABANDON : LP_EXEC_UNCLAIM;
    batch[n++] = j;
  }
  if (n == 0)
    return;
  char err[512];
  if (lp_exec_store_finish(ex->store, ops, n, err, sizeof(err))) {
    on_redis_error(ex, err);
    return;
  }
  ex->redis_failures = 0;
  for (size_t i = 0; i < n; i++) {
    struct job *j = batch[i];
    if (ops[i].not_inflight)
      LP_WARN("finish found the claim no longer this executor's (taken "
              "over after its lease ran out); the outcome stands in the "
              "audit trail only",
              "\"decision_id\":%s", lp_log_str(j->d.decision_id));
    if (j->abandon) {
      /* Given back unsent at shutdown: no output, the offset stays
       * unstored, and the decision is redelivered to the next owner. */
      job_free(ex, j);
      continue;
    }
    emit(ex, j);
  }
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t size, size_t n, void *opaque) {
  struct job *j = opaque;
  if (j->body.len + size * n > (8u << 20))
    return 0; /* a runaway response: abort the transfer */
  lp_buf_append(&j->body, p, size * n);
  return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *opaque) {
  struct job *j = opaque;
  lp_rate_headers_parse_line(&j->rh, p, size * n);
  return size * n;
}

/* Starts j's request (the action, or the check) on the multi handle. */
/* A transfer of r for j (its response into j->body and j->rh), not yet
 * added to the multi handle. */
static CURL *new_transfer(struct job *j, const struct lp_http_request *r,
                          long timeout_ms) {
  CURL *e = curl_easy_init();
  LP_ASSERT(e);
  lp_buf_reset(&j->body);
  lp_rate_headers_init(&j->rh);
  curl_slist_free_all(j->headers);
  j->headers = NULL;
  for (int i = 0; i < r->n_headers; i++)
    j->headers = curl_slist_append(j->headers, r->headers[i]);
  if (r->body) {
    int has_type = 0;
    for (int i = 0; i < r->n_headers; i++)
      has_type |= strncasecmp(r->headers[i], "Content-Type:", 13) == 0;
    if (!has_type)
      j->headers =
          curl_slist_append(j->headers, "Content-Type: application/json");
    j->headers = curl_slist_append(j->headers, "Expect:");
  }
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  if (r->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
  } else if (strcmp(r->method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   timeout_ms < 5000 ? timeout_ms : 5000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, j);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "loyalty-executor/" LP_VERSION);
  return e;
}

static void start_http(struct exec *ex, struct job *j,
                       const struct lp_http_request *r, enum job_state st) {
  CURL *e = new_transfer(j, r, ex->conf->http_timeout_ms);
  if (st == J_SEND && lp_adapters_resend_safe(j->platform, &j->d) != 1) {
    /* A call the platform does not dedupe goes on a fresh connection,
     * closed after it. On a reused connection that dies before the
     * answer, libcurl 7.88 silently sends the request again on a new one
     * (measured: apply-then-drop faults made double awards); it cannot be
     * told not to. The price is a connection set-up per such call. */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  } else if (ex->last_429_us[j->platform] &&
             lp_mono_us() - ex->last_429_us[j->platform] < 10 * 1000000LL) {
    /* While a platform is throttling, a connection must not outlive its
     * request: libcurl would hand a connection that just carried a 429
     * to a transfer added in the same step, which then goes out before
     * this loop has read the 429 (seen as "early" by the sandbox). */
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  }
  j->easy = e;
  j->state = st;
  ex->in_flight[j->platform]++;
  LP_DEBUG("http request", "\"decision_id\":%s,\"request\":%s",
           lp_log_str(j->d.decision_id), lp_log_str(r->summary));
  curl_multi_add_handle(ex->multi, e);
}

/* A lost claim's copy is not this executor's to report: back to the
 * request as built, asked again if the claim comes back. */
static void forget_copy(struct exec *ex, struct job *j) {
  if (!j->copy_done)
    return;
  j->copy_done = 0;
  j->copy_source[0] = '\0';
  j->copy_note[0] = '\0';
  free(j->copy_output);
  j->copy_output = NULL;
  char err[256];
  lp_http_request_clear(&j->req);
  if (lp_adapters_build(&ex->adapters, j->platform, &j->d, &j->req, err,
                        sizeof(err)))
    LP_ASSERT(!"a request built once builds again");
}

/* Renews every claim this executor holds, a third of a lease after its
 * last renewal, whatever the job is doing (waiting out a backoff or a 429
 * hold, in a call, checking). A claim found lost (its lease ran out and
 * another executor took it over) is not acted on again: the job begins
 * anew and finds the other's claim or outcome. */
static void renew_claims(struct exec *ex) {
  int64_t now = lp_mono_us(), every = ex->conf->lease_ms * 1000 / 3;
  if (now < ex->redis_backoff_until_us)
    return;
  struct job *batch[PIPELINE_MAX];
  struct lp_exec_renew ops[PIPELINE_MAX];
  size_t n = 0;
  for (struct job *j = ex->jobs; j && n < PIPELINE_MAX; j = j->next) {
    if ((j->state != J_WAIT && j->state != J_COPY && j->state != J_SEND &&
         j->state != J_CHECK) ||
        now - j->renewed_us < every)
      continue;
    ops[n] = (struct lp_exec_renew){&j->d, j->token, 0};
    batch[n++] = j;
  }
  if (n == 0)
    return;
  char err[256];
  if (lp_exec_store_renew(ex->store, ops, n, err, sizeof(err))) {
    on_redis_error(ex, err);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    struct job *j = batch[i];
    if (!ops[i].lost) {
      j->renewed_us = now;
      continue;
    }
    LP_WARN("claim lost: another executor took the decision over",
            "\"decision_id\":%s", lp_log_str(j->d.decision_id));
    if (j->state == J_WAIT) {
      j->state = J_BEGIN;
      j->due_us = 0;
      j->takeover = 0;
      forget_copy(ex, j);
    } else {
      j->lost = 1; /* in a call: decided when it returns */
    }
  }
}

/* After a 429: no request to p before wait_ms from now. */
static void hold_platform(struct exec *ex, enum lp_platform p,
                          int64_t wait_ms) {
  int64_t now = lp_mono_us(), until = now + wait_ms * 1000;
  ex->last_429_us[p] = now;
  if (until <= ex->hold_until_us[p])
    return;
  ex->hold_until_us[p] = until;
  LP_INFO("platform rate limited: holding its calls",
          "\"platform\":%s,\"wait_ms\":%lld", lp_log_str(lp_platform_name(p)),
          (long long)wait_ms);
  char err[256];
  double rate = ex->conf->rate[p];
  if (rate > 0 &&
      lp_exec_store_rate_hold(ex->store, lp_platform_name(p),
                              lp_now_ms() + wait_ms, (int64_t)(1e6 / rate),
                              (int)ex->conf->burst[p], err, sizeof(err)))
    on_redis_error(ex, err);
}

static void give_up(struct job *j, const char *reason);

/* Copy is asked for a message or discount decision's first send after
 * its claim (a takeover or a retry sends what it has). */
static int wants_copy(const struct exec *ex, const struct job *j) {
  return ex->copy.url && !j->copy_done && j->attempts == 0 && !j->takeover &&
         lp_copy_applies(&j->d) &&
         (j->platform == LP_PLATFORM_KLAVIYO ||
          j->platform == LP_PLATFORM_BRAZE);
}

/* Records where j's copy came from ("generated" or "template", with
 * why) and counts it. */
static void copy_outcome(struct job *j, const char *source, const char *note) {
  j->copy_done = 1;
  snprintf(j->copy_source, sizeof(j->copy_source), "%s", source);
  snprintf(j->copy_note, sizeof(j->copy_note), "%s", note ? note : "");
  lp_metrics_labelled_add("loyalty_copy_total",
                          "Message copy by source (generated or the template "
                          "as fallback)",
                          "source", source, 1);
}

/* Asks the model for j's copy; J_COPY until it answers or times out. */
static void start_copy(struct exec *ex, struct job *j) {
  char err[256];
  free(j->copy_prompt);
  j->copy_prompt = lp_copy_facts(&j->d);
  lp_http_request_clear(&j->copy_req);
  if (lp_copy_request(&ex->copy, &j->d, j->copy_prompt, &j->copy_req, err,
                      sizeof(err))) {
    copy_outcome(j, "template", err);
    return;
  }
  /* Strict: the copy is a nicety, the decision must not wait for it. */
  CURL *e = new_transfer(j, &j->copy_req, ex->conf->copy_timeout_ms);
  j->easy = e;
  j->state = J_COPY;
  ex->copy_in_flight++;
  curl_multi_add_handle(ex->multi, e);
}

/* The model answered (or not): the copy goes with the event when it
 * passes the guardrail, else the template goes alone; then j is sent. */
static void on_copy_done(struct exec *ex, struct job *j, CURLcode rc,
                         long status) {
  char err[512] = "";
  j->copy_done = 1;
  j->state = J_WAIT;
  j->due_us = 0;
  if (j->lost) { /* taken over meanwhile: begin anew */
    j->lost = 0;
    j->copy_done = 0;
    j->state = J_BEGIN;
    return;
  }
  char *text = NULL;
  if (rc != CURLE_OK)
    snprintf(err, sizeof(err), "copy: %s", curl_easy_strerror(rc));
  else if (status != 200)
    snprintf(err, sizeof(err), "copy: HTTP %ld", status);
  else
    text = lp_copy_parse((const char *)j->body.data, j->body.len, err,
                         sizeof(err));
  free(j->copy_output);
  j->copy_output = text ? lp_xstrdup(text) : NULL;
  if (text && lp_copy_check(&j->d, text, (int)ex->conf->copy_max_chars, err,
                            sizeof(err)) == 0) {
    if (lp_copy_attach(&j->req, j->platform, text) == 0) {
      copy_outcome(j, "generated", NULL);
      free(text);
      return;
    }
    snprintf(err, sizeof(err), "copy: the event body has no properties");
  }
  free(text);
  copy_outcome(j, "template", err);
  LP_INFO("generated copy not used; the template goes alone",
          "\"decision_id\":%s,\"why\":%s", lp_log_str(j->d.decision_id),
          lp_log_str(err));
}

static void start_due(struct exec *ex) {
  int64_t now = lp_mono_us();
  for (struct job *j = ex->jobs; j; j = j->next) {
    if (j->state != J_WAIT || j->due_us > now)
      continue;
    if (ex->hold_until_us[j->platform] > now)
      continue;
    if (ex->in_flight[j->platform] >= ex->conf->platform_in_flight)
      continue;
    /* Only on a claim renewed within half a lease (Redis may be down). */
    if (now - j->renewed_us > ex->conf->lease_ms * 500)
      continue;
    if (j->takeover && lp_adapters_resend_safe(j->platform, &j->d) == 0) {
      char err[256];
      lp_http_request_clear(&j->check);
      if (lp_adapters_check_request(&ex->adapters, j->platform, &j->d,
                                    &j->check, err, sizeof(err)) == 0) {
        start_http(ex, j, &j->check, J_CHECK);
        continue;
      }
    }
    if (j->attempts >= ex->conf->retry_max) {
      char r[300];
      snprintf(r, sizeof(r),
               "gave up after %d attempts (the last one's outcome unknown, "
               "not applied according to the platform)",
               j->attempts);
      give_up(j, r);
      continue;
    }
    if (wants_copy(ex, j)) {
      if (ex->copy_in_flight < ex->conf->copy_in_flight) {
        start_copy(ex, j);
        continue;
      }
      /* Every copy slot is busy: the decision does not wait for one. */
      char note[96];
      snprintf(note, sizeof(note), "copy: all %ld copy requests were in flight",
               ex->conf->copy_in_flight);
      copy_outcome(j, "template", note);
    }
    j->attempts++;
    start_http(ex, j, &j->req, J_SEND);
  }
}

/* A failure the job cannot get past: record it failed (budget released),
 * dead-letter it with the reason. */
static void give_up(struct job *j, const char *reason) {
  j->outcome = LP_OUTCOME_FAILED;
  j->done = 0;
  j->dead_letter = 1;
  snprintf(j->reason, sizeof(j->reason), "%s", reason);
  j->state = J_FINISH;
}

/* Schedules another try of j after ms, or gives up after retry.max. */
static void retry_later(struct exec *ex, struct job *j, int64_t ms,
                        const char *why) {
  if (j->attempts >= ex->conf->retry_max) {
    char r[512];
    snprintf(r, sizeof(r), "gave up after %d attempts: %s", j->attempts, why);
    give_up(j, r);
    return;
  }
  j->state = J_WAIT;
  j->due_us = lp_mono_us() + ms * 1000;
}

/* A transfer error after the request may have reached the platform. */
static int curl_ambiguous(CURLcode rc) {
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
    return 0; /* never reached it */
  default:
    return 1;
  }
}

static void on_action_done(struct exec *ex, struct job *j, CURLcode rc,
                           long status) {
  char why[600];
  if (rc != CURLE_OK) {
    snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
    if (!curl_ambiguous(rc)) {
      retry_later(ex, j, backoff_ms(ex, j->attempts), why);
      return;
    }
    int safe = lp_adapters_resend_safe(j->platform, &j->d);
    LP_WARN("ambiguous outcome",
            "\"decision_id\":%s,\"platform\":%s,"
            "\"error\":%s",
            lp_log_str(j->d.decision_id),
            lp_log_str(lp_platform_name(j->platform)), lp_log_str(why));
    if (safe < 0) {
      char r[700];
      snprintf(r, sizeof(r),
               "outcome unknown after %s; %s neither dedupes nor can be read "
               "back, so it is not resent",
               why, lp_platform_name(j->platform));
      give_up(j, r);
      return;
    }
    if (safe == 0) {
      /* Check the platform before anything is sent again, after a pause
       * that lets a request it is still processing show up. */
      j->takeover = 1;
      j->state = J_WAIT;
      j->due_us = lp_mono_us() + 1000 * 1000;
      return;
    }
    retry_later(ex, j, backoff_ms(ex, j->attempts), why);
    return;
  }
  j->http_status = (int)status;
  int64_t wait = 0;
  char reason[400];
  enum lp_response_class c = lp_adapters_classify(
      j->platform, (int)status, &j->rh, lp_now_ms(), (const char *)j->body.data,
      j->body.len, &wait, j->reference, sizeof(j->reference), reason,
      sizeof(reason));
  lp_metrics_labelled_add("loyalty_platform_responses_total",
                          "HTTP responses by platform", "platform",
                          lp_platform_name(j->platform), 1);
  switch (c) {
  case LP_RESP_OK:
    j->outcome = LP_OUTCOME_ISSUED;
    j->done = 1;
    j->state = J_FINISH;
    return;
  case LP_RESP_RATE_LIMITED:
    /* Not an attempt that counts against retry.max: the platform said
     * when to come back, and nothing is sent to it before then — by this
     * executor (the hold), nor by the others (the shared schedule). */
    j->attempts--;
    j->state = J_WAIT;
    j->due_us = lp_mono_us() + wait * 1000;
    hold_platform(ex, j->platform, wait);
    lp_metrics_labelled_add("loyalty_rate_limited_total",
                            "429 answers by platform", "platform",
                            lp_platform_name(j->platform), 1);
    return;
  case LP_RESP_TRANSIENT:
    retry_later(ex, j, backoff_ms(ex, j->attempts), reason);
    return;
  case LP_RESP_PERMANENT:
    give_up(j, reason);
    return;
  }
}

static void on_check_done(struct exec *ex, struct job *j, CURLcode rc,
                          long status) {
  char err[300];
  if (rc == CURLE_OK && status == 429) {
    j->state = J_WAIT; /* check again when allowed */
    j->due_us = lp_mono_us() + 1000 * 1000;
    return;
  }
  int found =
      rc != CURLE_OK
          ? (snprintf(err, sizeof(err), "check: %s", curl_easy_strerror(rc)),
             -1)
          : lp_adapters_check_result(j->platform, &j->d, (int)status,
                                     (const char *)j->body.data, j->body.len,
                                     j->reference, sizeof(j->reference), err,
                                     sizeof(err));
  if (j->lost) { /* taken over meanwhile: begin anew */
    j->lost = 0;
    j->takeover = 0;
    j->state = J_BEGIN;
    j->due_us = 0;
    return;
  }
  if (found == 1) {
    LP_INFO("earlier attempt found applied; not resent",
            "\"decision_id\":%s,\"reference\":%s", lp_log_str(j->d.decision_id),
            lp_log_str(j->reference));
    j->outcome = LP_OUTCOME_ISSUED;
    j->done = 1;
    j->state = J_FINISH;
    return;
  }
  if (found == 0) {
    j->takeover = 0; /* not applied: sending is safe */
    j->state = J_WAIT;
    j->due_us = 0;
    return;
  }
  LP_WARN("check failed, retrying", "\"decision_id\":%s,\"error\":%s",
          lp_log_str(j->d.decision_id), lp_log_str(err));
  if (++j->checks >= 10) {
    char r[600];
    snprintf(r, sizeof(r),
             "outcome unknown: %d checks of the platform's transactions "
             "failed (last: %s); not resent",
             j->checks, err);
    give_up(j, r);
    return;
  }
  j->state = J_WAIT; /* takeover stays set: check again */
  j->due_us = lp_mono_us() + backoff_ms(ex, 2) * 1000;
}

static void drive_http(struct exec *ex, int timeout_ms) {
  int running = 0;
  curl_multi_poll(ex->multi, NULL, 0, timeout_ms, NULL);
  curl_multi_perform(ex->multi, &running);
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(ex->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    struct job *j = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
    long status = 0;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    CURLcode rc = msg->data.result;
    curl_multi_remove_handle(ex->multi, j->easy);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
    if (j->state == J_COPY) {
      ex->copy_in_flight--;
      on_copy_done(ex, j, rc, status);
      continue;
    }
    ex->in_flight[j->platform]--;
    if (j->state == J_CHECK)
      on_check_done(ex, j, rc, status);
    else
      on_action_done(ex, j, rc, status);
  }
}

/* ---- Kafka plumbing ---- */

static void commit_now(struct exec *ex) {
  rd_kafka_poll(ex->producer, 0);
  lp_offsets_drain_committable(ex->offsets, lp_kafka_store_offset,
                               ex->consumer);
  rd_kafka_resp_err_t err = rd_kafka_commit(ex->consumer, NULL, 0);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    LP_WARN("commit failed", "\"error\":%s", lp_log_str(rd_kafka_err2str(err)));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  struct exec *ex = opaque;
  int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  lp_metrics_add(LP_M_REBALANCES, 1);
  rd_kafka_error_t *error = NULL;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    LP_INFO("partitions assigned", "\"count\":%d", parts->cnt);
    if (cooperative)
      error = rd_kafka_incremental_assign(rk, parts);
    else
      rd_kafka_assign(rk, parts);
    if (ex->paused)
      rd_kafka_pause_partitions(rk, parts);
  } else {
    int lost = rd_kafka_assignment_lost(rk);
    LP_INFO(lost ? "partitions lost" : "partitions revoked", "\"count\":%d",
            parts->cnt);
    /* Jobs of these partitions run on (their claims keep them safe), but
     * their offsets are no longer ours to store: the next owner
     * redelivers them and finds them done. */
    if (!lost)
      commit_now(ex);
    for (int i = 0; i < parts->cnt; i++)
      lp_offsets_forget(ex->offsets, parts->elems[i].topic,
                        parts->elems[i].partition);
    if (cooperative)
      error = rd_kafka_incremental_unassign(rk, parts);
    else
      rd_kafka_assign(rk, NULL);
  }
  if (error) {
    LP_ERROR("rebalance failed", "\"error\":%s",
             lp_log_str(rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
  }
  rd_kafka_topic_partition_list_t *now = NULL;
  if (rd_kafka_assignment(rk, &now) == RD_KAFKA_RESP_ERR_NO_ERROR && now) {
    lp_metrics_set(LP_M_ASSIGNED_PARTITIONS, now->cnt);
    rd_kafka_topic_partition_list_destroy(now);
  }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
  struct exec *ex = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[256];
    rd_kafka_fatal_error(rk, buf, sizeof(buf));
    snprintf(ex->fatal, sizeof(ex->fatal), "librdkafka fatal: %s", buf);
    *ex->stop = 1;
    return;
  }
  LP_WARN("kafka error", "\"error\":%s,\"reason\":%s",
          lp_log_str(rd_kafka_err2name((rd_kafka_resp_err_t)err)),
          lp_log_str(reason));
}

/* Pauses or resumes every assigned partition as the window fills/drains,
 * so the loop keeps polling (and stays in the group) while it waits. */
static void set_paused(struct exec *ex, int paused) {
  if (ex->paused == paused)
    return;
  rd_kafka_topic_partition_list_t *parts = NULL;
  if (rd_kafka_assignment(ex->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return;
  if (paused)
    rd_kafka_pause_partitions(ex->consumer, parts);
  else
    rd_kafka_resume_partitions(ex->consumer, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  ex->paused = paused;
}

static int health(void *opaque, char *reason, size_t size) {
  struct exec *ex = opaque;
  if (ex->fatal[0]) {
    snprintf(reason, size, "fatal: %s", ex->fatal);
    return 0;
  }
  if (ex->redis_failures > 0) {
    snprintf(reason, size, "redis unavailable");
    return 0;
  }
  return 1;
}

/* ---- set-up ---- */

/* Reads a credential file's first line into *out (caller frees). */
static int read_key_file(const char *path, char **out, char *err,
                         size_t errsize) {
  FILE *f = fopen(path, "r");
  if (!f)
    return lp_err(err, errsize, "%s: cannot read credential file", path);
  char line[4096];
  int ok = fgets(line, sizeof(line), f) != NULL;
  fclose(f);
  if (!ok)
    return lp_err(err, errsize, "%s: empty credential file", path);
  line[strcspn(line, "\r\n")] = '\0';
  *out = lp_xstrdup(line);
  return 0;
}

static int parse_money_key(const char *key, const char *text, int64_t *out,
                           char *err, size_t errsize) {
  if (lp_money_parse(text, out) || *out < 0)
    return lp_err(err, errsize,
                  "%s: \"%s\" is not an amount (decimal, e.g. 50.00)", key,
                  text);
  return 0;
}

static int setup(struct exec *ex, struct lp_kafka_props *kafka, char *err,
                 size_t errsize) {
  const struct lp_executor_config *c = ex->conf;
  ex->rng = (uint64_t)lp_mono_us() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b9u;
  if (parse_money_key("guard.member.cap", c->member_cap, &ex->member_cap, err,
                      errsize) ||
      parse_money_key("guard.campaign.budget", c->campaign_budget,
                      &ex->default_budget, err, errsize) ||
      parse_money_key("approval.above", c->approval_above, &ex->approval_above,
                      err, errsize) ||
      parse_money_key("score_sync.min.p_alive", c->sync_min_p_alive,
                      &ex->sync_min_p, err, errsize) ||
      parse_money_key("score_sync.min.clv", c->sync_min_clv, &ex->sync_min_clv,
                      err, errsize))
    return -1;
  if (ex->sync_min_clv > 10000000)
    return lp_err(err, errsize,
                  "score_sync.min.clv: \"%s\" is above 10 (a share of the "
                  "last synced CLV)",
                  c->sync_min_clv);
  if (ex->sync_min_p > 1000000)
    return lp_err(err, errsize,
                  "score_sync.min.p_alive: \"%s\" is above 1 (a probability)",
                  c->sync_min_p_alive);
  if (lp_platform_parse(c->loyalty, &ex->adapters.loyalty) ||
      (ex->adapters.loyalty != LP_PLATFORM_NONE &&
       ex->adapters.loyalty != LP_PLATFORM_LOYALTYLION &&
       ex->adapters.loyalty != LP_PLATFORM_SMILE))
    return lp_err(err, errsize,
                  "platform.loyalty: \"%s\" (expected loyaltylion, smile or "
                  "none)",
                  c->loyalty);
  if (lp_platform_parse(c->marketing, &ex->adapters.marketing) ||
      (ex->adapters.marketing != LP_PLATFORM_NONE &&
       ex->adapters.marketing != LP_PLATFORM_KLAVIYO &&
       ex->adapters.marketing != LP_PLATFORM_BRAZE))
    return lp_err(err, errsize,
                  "platform.marketing: \"%s\" (expected klaviyo, braze or "
                  "none)",
                  c->marketing);
  if (c->copy_url && *c->copy_url) {
    const char *key = c->copy_key;
    if (c->copy_key_file && *c->copy_key_file) {
      if (read_key_file(c->copy_key_file, &ex->copy_key, err, errsize))
        return -1;
      key = ex->copy_key;
    }
    if (strncmp(c->copy_url, "http://", 7) != 0 &&
        strncmp(c->copy_url, "https://", 8) != 0)
      return lp_err(err, errsize, "copy.url: \"%s\" is not an http(s) URL",
                    c->copy_url);
    if (!c->copy_model || !*c->copy_model)
      return lp_err(err, errsize, "copy.model: must be set with copy.url");
    ex->copy = (struct lp_copy_conf){c->copy_url, c->copy_model, key,
                                     (int)c->copy_max_chars};
  }
  for (int p = 0; p < LP_PLATFORM_COUNT; p++) {
    const char *key = c->key[p];
    if (c->key_file[p] && *c->key_file[p]) {
      if (read_key_file(c->key_file[p], &ex->keys[p], err, errsize))
        return -1;
      key = ex->keys[p];
    }
    ex->adapters.platforms[p].base_url = c->url[p];
    ex->adapters.platforms[p].key = key;
    int used =
        (int)ex->adapters.loyalty == p || (int)ex->adapters.marketing == p;
    if (used && (!key || !*key))
      return lp_err(err, errsize,
                    "%s.key: no credential (set LOYALTY_%s_KEY or "
                    "%s.key.file)",
                    lp_platform_name((enum lp_platform)p),
                    p == 0   ? "LOYALTYLION"
                    : p == 1 ? "SMILE"
                    : p == 2 ? "KLAVIYO"
                             : "BRAZE",
                    lp_platform_name((enum lp_platform)p));
  }
  ex->adapters.klaviyo_revision = c->klaviyo_revision;

  ex->avro = lp_avro_codec_new(NULL, err, errsize);
  if (!ex->avro)
    return -1;
  struct lp_exec_store_config sc = {.host = c->redis_host,
                                    .port = (int)c->redis_port,
                                    .ns = c->redis_namespace,
                                    .profile_ns = *c->profile_namespace
                                                      ? c->profile_namespace
                                                      : c->redis_namespace,
                                    .timeout_ms = (int)c->redis_timeout_ms,
                                    .lease_ms = c->lease_ms,
                                    .record_ttl_s = c->record_ttl_s,
                                    .member_cap = ex->member_cap,
                                    .member_period_s = c->member_period_s,
                                    .frequency_cap = c->frequency_cap,
                                    .frequency_period_s = c->frequency_period_s,
                                    .default_budget = ex->default_budget,
                                    .campaign_period_s = c->campaign_period_s,
                                    .approval_ttl_s = c->approval_ttl_s,
                                    .sync_min_p_alive_micros = ex->sync_min_p,
                                    /* a share in micros is ppm */
                                    .sync_min_clv_ppm = (long)ex->sync_min_clv};
  ex->store = lp_exec_store_new(&sc, err, errsize);
  if (!ex->store)
    return -1;
  if (lp_kafka_resolve_bootstrap(kafka, c->bootstrap_file, err, errsize))
    return -1;
  char client_id[128];
  snprintf(client_id, sizeof(client_id), "executor-%d", (int)getpid());
  const char *consumer_defaults[] = {"group.id",
                                     c->group_id,
                                     "client.id",
                                     client_id,
                                     "enable.auto.offset.store",
                                     "false",
                                     "enable.auto.commit",
                                     "true",
                                     "auto.commit.interval.ms",
                                     "1000",
                                     "auto.offset.reset",
                                     "earliest",
                                     "partition.assignment.strategy",
                                     "cooperative-sticky",
                                     "queued.max.messages.kbytes",
                                     "4096",
                                     NULL};
  rd_kafka_conf_t *cc =
      lp_kafka_conf_build(consumer_defaults, kafka, err, errsize);
  if (!cc)
    return -1;
  rd_kafka_conf_set_opaque(cc, ex);
  rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
  rd_kafka_conf_set_error_cb(cc, error_cb);
  ex->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, errsize);
  if (!ex->consumer) {
    rd_kafka_conf_destroy(cc);
    return -1;
  }
  rd_kafka_poll_set_consumer(ex->consumer);
  const char *producer_defaults[] = {
      "client.id", client_id, "enable.idempotence",         "true",
      "linger.ms", "5",       "queue.buffering.max.kbytes", "16384",
      NULL};
  rd_kafka_conf_t *pc =
      lp_kafka_conf_build(producer_defaults, kafka, err, errsize);
  if (!pc)
    return -1;
  rd_kafka_conf_set_opaque(pc, ex);
  rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
  rd_kafka_conf_set_error_cb(pc, error_cb);
  ex->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, errsize);
  if (!ex->producer) {
    rd_kafka_conf_destroy(pc);
    return -1;
  }
  ex->actions_topic = rd_kafka_topic_new(ex->producer, c->topic_actions, NULL);
  ex->dlq_topic = rd_kafka_topic_new(ex->producer, c->topic_dlq, NULL);
  rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subs, c->topic_input,
                                    RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t kerr = rd_kafka_subscribe(ex->consumer, subs);
  rd_kafka_topic_partition_list_destroy(subs);
  if (kerr)
    return lp_err(err, errsize, "subscribe %s: %s", c->topic_input,
                  rd_kafka_err2str(kerr));
  ex->offsets = lp_offsets_new((size_t)c->max_in_flight);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return lp_err(err, errsize, "libcurl initialisation failed");
  ex->multi = curl_multi_init();
  curl_multi_setopt(ex->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    (long)c->max_in_flight);
  /* One request per connection at a time (no HTTP/2 multiplexing): a
   * 429 then concerns exactly one request. Connections are still kept
   * alive and reused. */
  curl_multi_setopt(ex->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
  if (c->http_port >= 0) {
    ex->http = lp_http_server_start(c->http_bind, (int)c->http_port, health, ex,
                                    err, errsize);
    if (!ex->http)
      return -1;
  }
  return 0;
}

static void teardown(struct exec *ex) {
  /* Kafka first, while the jobs its callbacks point to still exist:
   * closing the consumer revokes (and commits), flushing serves the last
   * delivery reports. Reports still owed after that are ignored. */
  if (ex->consumer) {
    rd_kafka_consumer_close(ex->consumer);
    rd_kafka_destroy(ex->consumer);
    ex->consumer = NULL;
  }
  if (ex->producer) {
    rd_kafka_flush(ex->producer, (int)ex->conf->shutdown_timeout_ms);
    ex->tearing_down = 1;
    rd_kafka_purge(ex->producer,
                   RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(ex->producer, 0);
  }
  while (ex->jobs) {
    struct job *j = ex->jobs;
    if (j->easy)
      ex->in_flight[j->platform]--;
    job_free(ex, j);
  }
  if (ex->actions_topic)
    rd_kafka_topic_destroy(ex->actions_topic);
  if (ex->dlq_topic)
    rd_kafka_topic_destroy(ex->dlq_topic);
  if (ex->producer)
    rd_kafka_destroy(ex->producer);
  while (ex->retries) {
    struct retry *r = ex->retries;
    ex->retries = r->next;
    free(r->key);
    free(r->value);
    free(r);
  }
  if (ex->multi) {
    curl_multi_cleanup(ex->multi);
    curl_global_cleanup();
  }
  lp_http_server_stop(&ex->http);
  lp_offsets_destroy(&ex->offsets);
  lp_exec_store_destroy(&ex->store);
  lp_avro_codec_destroy(&ex->avro);
  for (int p = 0; p < LP_PLATFORM_COUNT; p++)
    free(ex->keys[p]);
  free(ex->copy_key);
  lp_buf_free(&ex->buf);
}

/* ---- the loop ---- */

/* The earliest due time among waiting jobs, as a poll timeout (ms). */
static int next_timeout_ms(struct exec *ex, int cap) {
  int64_t now = lp_mono_us(), best = now + (int64_t)cap * 1000;
  for (struct job *j = ex->jobs; j; j = j->next) {
    int64_t due = j->due_us;
    if (j->state == J_WAIT) {
      /* A full platform wakes the loop itself when a call returns. */
      if (ex->in_flight[j->platform] >= ex->conf->platform_in_flight)
        continue;
      if (ex->hold_until_us[j->platform] > due)
        due = ex->hold_until_us[j->platform];
      if (now - j->renewed_us > ex->conf->lease_ms * 500 &&
          ex->redis_backoff_until_us > due)
        due = ex->redis_backoff_until_us; /* waits for a renewal */
    } else if (j->state == J_BEGIN || j->state == J_FINISH) {
      if (ex->redis_backoff_until_us > due)
        due = ex->redis_backoff_until_us;
    } else {
      continue;
    }
    if (due < best)
      best = due;
  }
  int64_t ms = (best - now) / 1000;
  return ms < 0 ? 0 : (int)ms;
}

static void step(struct exec *ex, int consume) {
  produce_retries(ex);
  rd_kafka_poll(ex->producer, 0);
  lp_offsets_drain_committable(ex->offsets, lp_kafka_store_offset,
                               ex->consumer);
  int full = ex->n_jobs >= (size_t)ex->conf->max_in_flight;
  int64_t now = lp_mono_us();
  if (consume && full) {
    if (!ex->full_since_us)
      ex->full_since_us = now;
  } else {
    ex->full_since_us = 0;
  }
  /* A full window normally drains in well under a second: then the loop
   * just stops taking records, which wait in librdkafka's bounded
   * prefetch. Only a long stall (a 429 storm, a platform down) pauses the
   * partitions, so that the loop can go on polling and stay in the group
   * however long it lasts. Pausing at every fill-up cost a refetch of
   * about 0.5 s each time (measured: 514 instead of ~3000 decisions/s). */
  int stalled = ex->full_since_us && now - ex->full_since_us > 5000000;
  set_paused(ex, stalled);
  size_t got = 0;
  while (consume && !full && got < PIPELINE_MAX) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(ex->consumer, 0);
    if (!m)
      break;
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        LP_WARN("consume error", "\"error\":%s",
                lp_log_str(rd_kafka_message_errstr(m)));
      rd_kafka_message_destroy(m);
      continue;
    }
    take(ex, m);
    got++;
    full = ex->n_jobs >= (size_t)ex->conf->max_in_flight;
  }
  if (consume && stalled) {
    /* Paused: keep serving the group (nothing new is returned). */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(ex->consumer, 0);
    if (m) {
      if (m->err)
        rd_kafka_message_destroy(m);
      else
        take(ex, m); /* fetched before the pause took effect */
    }
  }
  if (consume)
    poll_approvals(ex);
  renew_claims(ex);
  if (consume) { /* stopping: no new claims, no new calls */
    run_begins(ex);
    start_due(ex);
  }
  run_finishes(ex);
  lp_metrics_set(LP_M_IN_FLIGHT, (int64_t)ex->n_jobs);
  int timeout = got > 0 ? 0 : next_timeout_ms(ex, 20);
  drive_http(ex, timeout);
  run_finishes(ex);
}

int lp_executor_run(const struct lp_executor_config *conf,
                    struct lp_kafka_props *kafka, volatile sig_atomic_t *stop) {
  struct exec ex;
  memset(&ex, 0, sizeof(ex));
  ex.conf = conf;
  ex.stop = stop;
  lp_buf_init(&ex.buf);
  char err[1024];
  if (setup(&ex, kafka, err, sizeof(err))) {
    LP_ERROR("start-up failed", "\"error\":%s", lp_log_str(err));
    fprintf(stderr, "executor: %s\n", err);
    teardown(&ex);
    return 2;
  }
  LP_INFO("started",
          "\"input\":%s,\"group\":%s,\"actions\":%s,\"dlq\":%s,"
          "\"loyalty\":%s,\"marketing\":%s,\"redis\":\"%s:%ld/%s\","
          "\"http_port\":%d",
          lp_log_str(conf->topic_input), lp_log_str(conf->group_id),
          lp_log_str(conf->topic_actions), lp_log_str(conf->topic_dlq),
          lp_log_str(conf->loyalty), lp_log_str(conf->marketing),
          conf->redis_host, conf->redis_port, conf->redis_namespace,
          ex.http ? lp_http_server_port(ex.http) : -1);
  while (!*stop)
    step(&ex, 1);
  /* Shutdown: take nothing new, let calls in flight finish and record
   * their outcomes (bounded), then commit what is finished. Anything
   * still unfinished keeps its claim until the lease runs out; its
   * decision is redelivered and checked by whoever takes it next. */
  LP_INFO("shutting down: finishing calls in flight", "\"jobs\":%zu",
          ex.n_jobs);
  /* Claims never acted on (claimed, nothing sent yet) are given back, so
   * the next owner starts them fresh instead of waiting out a lease and
   * treating them as unknown outcomes. */
  for (struct job *j = ex.jobs; j; j = j->next) {
    if (j->state == J_COPY) { /* nothing sent yet: stop asking */
      curl_multi_remove_handle(ex.multi, j->easy);
      curl_easy_cleanup(j->easy);
      j->easy = NULL;
      ex.copy_in_flight--;
      j->state = J_WAIT;
    }
    if (j->state == J_WAIT && j->attempts == 0 && !j->takeover) {
      j->abandon = 1;
      j->state = J_FINISH;
    }
  }
  int64_t deadline = lp_mono_us() + conf->shutdown_timeout_ms * 1000;
  while (lp_mono_us() < deadline) {
    int busy = 0;
    for (struct job *j = ex.jobs; j; j = j->next)
      busy |= j->state == J_SEND || j->state == J_CHECK ||
              j->state == J_FINISH || j->state == J_EMIT;
    if (!busy && !ex.retries)
      break;
    step(&ex, 0);
  }
  rd_kafka_flush(ex.producer, 2000);
  commit_now(&ex);
  int code = ex.fatal[0] ? 1 : 0;
  if (code)
    LP_ERROR("stopping after a fatal error", "\"error\":%s",
             lp_log_str(ex.fatal));
  LP_INFO("stopped",
          "\"consumed\":%lld,\"redis_calls\":%llu,\"redis_round_trips\":%llu",
          (long long)lp_metrics_get(LP_M_CONSUMED),
          (unsigned long long)lp_exec_store_calls(ex.store),
          (unsigned long long)lp_exec_store_round_trips(ex.store));
  teardown(&ex);
  return code;
}
