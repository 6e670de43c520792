/*
 * metrics.h — process counters and gauges declared once in an X-macro table
 * (LP_METRICS below), exported in Prometheus text format by the HTTP server
 * (http_server.h) on /metrics, with /healthz beside it.
 *
 * Counters are lock-free atomics, safe from any thread. Labelled series
 * (decisions by rule, lag by partition) use lp_metrics_labelled_*; their
 * label values are copied.
 */
#ifndef LP_METRICS_H
#define LP_METRICS_H

#include <stdint.h>

#include "util.h"

/* X(enum_name, prometheus_name, type "counter"|"gauge", help) */
#define LP_METRICS(X)                                                          \
  X(CONSUMED, "loyalty_records_consumed_total", "counter",                     \
    "Input records consumed from Kafka")                                       \
  X(PRODUCED, "loyalty_records_produced_total", "counter",                     \
    "Output records acknowledged by Kafka (decisions and dead letters)")       \
  X(DECISIONS, "loyalty_decisions_total", "counter",                           \
    "Reward decisions acknowledged by Kafka")                                  \
  X(DEAD_LETTERED, "loyalty_dead_letters_total", "counter",                    \
    "Records sent to the dead-letter topic")                                   \
  X(PRODUCE_RETRIES, "loyalty_produce_retries_total", "counter",               \
    "Outputs produced again after a failed delivery")                          \
  X(REDIS_ERRORS, "loyalty_redis_errors_total", "counter",                     \
    "Redis commands that failed and were retried")                             \
  X(REBALANCES, "loyalty_rebalances_total", "counter",                         \
    "Consumer group rebalances (assign and revoke)")                           \
  X(RULE_RELOADS, "loyalty_rule_reloads_total", "counter",                     \
    "Successful rule reloads")                                                 \
  X(RULE_RELOAD_FAILURES, "loyalty_rule_reload_failures_total", "counter",     \
    "Rejected rule reloads (old rules stay in force)")                         \
  X(MODEL_LOADS, "loyalty_model_loads_total", "counter",                       \
    "Member-value models put in force (at start or picked up while running)")  \
  X(MODEL_REJECTS, "loyalty_model_rejects_total", "counter",                   \
    "Published models rejected as invalid (the previous one stays)")           \
  X(MODEL_IN_FORCE, "loyalty_model_in_force", "gauge",                         \
    "1 when a member-value model is in force (scores available to rules)")     \
  X(OFFSETS_STORED, "loyalty_offsets_stored_total", "counter",                 \
    "Input offsets stored for commit")                                         \
  X(IN_FLIGHT, "loyalty_in_flight_records", "gauge",                           \
    "Input records consumed but not yet finished")                             \
  X(ASSIGNED_PARTITIONS, "loyalty_assigned_partitions", "gauge",               \
    "Partitions currently assigned to this instance")                          \
  X(TIMERS_SCHEDULED, "loyalty_timers_scheduled_total", "counter",             \
    "Member timers scheduled or moved (docs/timers.md)")                       \
  X(TIMERS_CANCELLED, "loyalty_timers_cancelled_total", "counter",             \
    "Member timers cancelled (e.g. a checkout cancels the cart timer)")        \
  X(TIMERS_FIRED, "loyalty_timers_fired_total", "counter",                     \
    "Member timers fired (by watermark, wall clock or inline with a record)")  \
  X(TIMERS_PENDING, "loyalty_timers_pending", "gauge",                         \
    "Timers of the assigned partitions, pending or in flight (sampled 5 s)")

enum lp_metric {
#define LP_METRIC_ENUM(e, name, type, help) LP_M_##e,
  LP_METRICS(LP_METRIC_ENUM)
#undef LP_METRIC_ENUM
      LP_M__COUNT
};

void lp_metrics_init(const char *processor); /* processor label, copied */
void lp_metrics_add(enum lp_metric m, int64_t delta);
void lp_metrics_set(enum lp_metric m, int64_t value);
int64_t lp_metrics_get(enum lp_metric m);

/* Labelled counter, e.g. ("loyalty_decisions_by_rule_total", "rule",
 * "welcome-bonus"). help is used the first time the family is seen. */
void lp_metrics_labelled_add(const char *family, const char *help,
                             const char *label, const char *value,
                             int64_t delta);
/* Labelled gauge set, e.g. consumer lag per "topic/partition". */
void lp_metrics_labelled_set(const char *family, const char *help,
                             const char *label, const char *value, int64_t v);

/* Processing latency histogram (seconds buckets), observed in microseconds. */
void lp_metrics_observe_latency_us(int64_t us);

/* Renders everything in Prometheus text exposition format into out. */
void lp_metrics_render(struct lp_buf *out);

/* Frees labelled series (at exit, so leak checkers stay quiet). */
void lp_metrics_shutdown(void);

#endif
