/*
 * executor.h — the executor's engine: consumes reward decisions, runs
 * each through the Redis guardrails and idempotency claim
 * (exec_store.h), carries it out over HTTP with libcurl multi (many
 * requests in flight, bounded per platform, paced by the shared rate
 * schedule, 429s honoured, transient errors retried with jittered
 * backoff, ambiguous outcomes checked before any resend), records the
 * outcome, emits an ActionResult to the actions topic and, for a
 * decision that cannot be carried out, a dead letter.
 *
 * Offsets: a decision's offset is stored only when its outcome is
 * recorded in Redis and its outputs are acknowledged by Kafka, and every
 * earlier offset of the partition is finished (offsets.h). A crash
 * anywhere redelivers the decision; the idempotency record then says
 * what happened (done: nothing is called again; in flight: the lease
 * runs out and the next owner checks the platform before calling).
 */
#ifndef LP_EXECUTOR_H
#define LP_EXECUTOR_H

#include <signal.h>
#include <stdint.h>

#include "adapters.h"
#include "config.h"

struct lp_executor_config {
  char *group_id;
  char *bootstrap_file;
  char *topic_input;
  char *topic_actions;
  char *topic_dlq;
  char *redis_host;
  long redis_port;
  char *redis_namespace;
  char *profile_namespace;
  long redis_timeout_ms;
  long lease_ms;
  long record_ttl_s;
  long max_in_flight;
  long platform_in_flight;
  long http_timeout_ms;
  long retry_max;
  long retry_base_ms;
  long retry_cap_ms;
  char *loyalty;
  char *marketing;
  char *url[LP_PLATFORM_COUNT];
  char *key[LP_PLATFORM_COUNT];
  char *key_file[LP_PLATFORM_COUNT];
  double rate[LP_PLATFORM_COUNT];
  long burst[LP_PLATFORM_COUNT];
  char *klaviyo_revision;
  char *member_cap;
  long member_period_s;
  long frequency_cap;
  long frequency_period_s;
  char *campaign_budget;
  long campaign_period_s;
  char *approval_above;
  long approval_ttl_s;
  char *copy_url; /* empty: no generated copy */
  char *copy_model;
  char *copy_key;
  char *copy_key_file;
  long copy_timeout_ms;
  long copy_max_chars;
  long copy_in_flight;
  char *sync_min_p_alive; /* decimal, 0..1 */
  char *sync_min_clv;     /* decimal share, 0..10 */
  int check_member;       /* LP_CONF_BOOL writes an int */
  long dlq_max_original;
  char *http_bind;
  long http_port;
  char *log_level;
  long shutdown_timeout_ms;
};

/* Runs until *stop is set; returns the exit code (0 clean, 1 fatal, 2
 * bad configuration). kafka: the kafka.* pass-through properties. */
int lp_executor_run(const struct lp_executor_config *conf,
                    struct lp_kafka_props *kafka, volatile sig_atomic_t *stop);

#endif
