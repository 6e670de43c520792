/*
 * executor — carries out reward decisions on the loyalty and marketing
 * platforms exactly once, under guardrails. Wiring only: configuration
 * and signals here, the engine in executor.c, the platforms in
 * adapters.c, the Redis state in common/exec_store.c.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "executor.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

static const char usage[] =
    "NAME\n"
    "  executor - carry out reward decisions on LoyaltyLion, Smile.io,\n"
    "  Klaviyo and Braze exactly once, under guardrails\n"
    "\n"
    "SYNOPSIS\n"
    "  executor [-c FILE] [-X key=value]... [--help] [--version]\n"
    "\n"
    "DESCRIPTION\n"
    "  Consumes RewardDecision records (topic.input) in its own consumer\n"
    "  group. For each decision it checks the kill switches and the\n"
    "  guardrails (per-member reward cost per period, per-rule frequency\n"
    "  per member, per-campaign budget per period; a campaign is the\n"
    "  decision's rule) and reserves the cost atomically in Redis, claims\n"
    "  the decision id (an idempotency record with a lease), calls the\n"
    "  platform, records the outcome with the platform's reference, and\n"
    "  emits an ActionResult to topic.actions: the audit trail. Points go\n"
    "  to platform.loyalty; messages, discount offers and tier changes to\n"
    "  platform.marketing. Decisions that need approval (hint required, or\n"
    "  a cost above approval.above) are parked in Redis with their budget\n"
    "  held. A decision that cannot be carried out (malformed, unknown\n"
    "  member, points out of range, a permanent platform error) goes to\n"
    "  topic.dlq with the reason, after no call or its last call.\n"
    "\n"
    "  No reward is issued twice: a redelivered or replayed decision finds\n"
    "  its record and is not called again; a call whose outcome is unknown\n"
    "  (timeout, connection dropped, executor killed mid-call) is checked\n"
    "  against the platform's transactions before any resend (LoyaltyLion,\n"
    "  Smile.io), resent under the platform's own dedupe (Klaviyo\n"
    "  unique_id), or not resent at all (Braze: no dedupe, no read-back).\n"
    "  Requests are paced per platform by a schedule shared in Redis by\n"
    "  every executor, a 429 waits for Retry-After or the reset header,\n"
    "  transient errors retry with jittered exponential backoff.\n"
    "\n"
    "  Credentials come from the environment (LOYALTY_LOYALTYLION_KEY,\n"
    "  LOYALTY_SMILE_KEY, LOYALTY_KLAVIYO_KEY, LOYALTY_BRAZE_KEY) or from\n"
    "  <platform>.key.file, and are never logged.\n"
    "\n"
    "  SIGTERM/SIGINT: stop consuming, let calls in flight finish (up to\n"
    "  shutdown.timeout.ms), commit finished offsets, leave the group.\n"
    "  Exit status: 0 clean stop, 1 fatal run-time error, 2 bad\n"
    "  configuration.\n";

static struct lp_executor_config conf;

#define C(field) offsetof(struct lp_executor_config, field)
#define PLATFORM_KEYS(P, NAME, URL, RATE, BURST, RATE_HELP)                    \
  {NAME ".url",                                                                \
   LP_CONF_STRING,                                                             \
   URL,                                                                        \
   C(url[P]),                                                                  \
   "Base URL of the " NAME " API",                                             \
   0,                                                                          \
   0},                                                                         \
      {NAME ".key",                                                            \
       LP_CONF_STRING,                                                         \
       "",                                                                     \
       C(key[P]),                                                              \
       "Credential (better from the environment or " NAME ".key.file)",        \
       0,                                                                      \
       0},                                                                     \
      {NAME ".key.file",                                                       \
       LP_CONF_STRING,                                                         \
       "",                                                                     \
       C(key_file[P]),                                                         \
       "File whose first line is the credential",                              \
       0,                                                                      \
       0},                                                                     \
      {NAME ".rate", LP_CONF_DOUBLE, RATE, C(rate[P]), RATE_HELP, 0, 0}, {     \
    NAME ".burst", LP_CONF_INT, BURST, C(burst[P]),                            \
        "Requests that may go at once before pacing applies", 1, 100000        \
  }

static const struct lp_config_entry table[] = {
    {"group.id", LP_CONF_STRING, "executor", C(group_id),
     "Kafka consumer group", 0, 0},
    {"bootstrap.file", LP_CONF_STRING, "", C(bootstrap_file),
     "File holding the bootstrap address (written by devbroker); used when "
     "kafka.bootstrap.servers is unset",
     0, 0},
    {"topic.input", LP_CONF_STRING, "decisions", C(topic_input),
     "Topic of reward decisions", 0, 0},
    {"topic.actions", LP_CONF_STRING, "actions", C(topic_actions),
     "Topic of ActionResult records (the audit trail)", 0, 0},
    {"topic.dlq", LP_CONF_STRING, "dlq", C(topic_dlq), "Dead-letter topic", 0,
     0},
    {"redis.host", LP_CONF_STRING, "127.0.0.1", C(redis_host), "Redis host", 0,
     0},
    {"redis.port", LP_CONF_INT, "6379", C(redis_port), "Redis port", 1, 65535},
    {"redis.namespace", LP_CONF_STRING, "loyalty", C(redis_namespace),
     "Key prefix of the executor's records, counters and switches", 0, 0},
    {"profile.namespace", LP_CONF_STRING, "", C(profile_namespace),
     "Key prefix of the member profiles (default: redis.namespace)", 0, 0},
    {"redis.timeout.ms", LP_CONF_INT, "2000", C(redis_timeout_ms),
     "Redis connect and command timeout", 10, 600000},
    {"exec.lease.ms", LP_CONF_INT, "30000", C(lease_ms),
     "How long a claim holds a decision; after it a dead executor's "
     "decision is taken over (and checked)",
     100, 86400000},
    {"exec.record.ttl.s", LP_CONF_INT, "15552000", C(record_ttl_s),
     "How long idempotency records are kept (default 180 days; keep it "
     "longer than any replay)",
     60, 315360000},
    {"exec.max.in.flight", LP_CONF_INT, "256", C(max_in_flight),
     "Decisions consumed but not finished before consumption pauses", 1,
     100000},
    {"exec.platform.in.flight", LP_CONF_INT, "64", C(platform_in_flight),
     "Concurrent HTTP requests per platform", 1, 10000},
    {"exec.http.timeout.ms", LP_CONF_INT, "10000", C(http_timeout_ms),
     "Timeout of one HTTP request (its outcome is then unknown)", 100, 600000},
    {"exec.retry.max", LP_CONF_INT, "8", C(retry_max),
     "Attempts before a transient failure becomes permanent (429s do not "
     "count)",
     1, 1000},
    {"exec.retry.base.ms", LP_CONF_INT, "200", C(retry_base_ms),
     "First retry delay; doubles per attempt, with jitter", 1, 600000},
    {"exec.retry.max.ms", LP_CONF_INT, "30000", C(retry_cap_ms),
     "Longest retry delay", 1, 3600000},
    {"platform.loyalty", LP_CONF_STRING, "loyaltylion", C(loyalty),
     "Who awards points: loyaltylion, smile or none", 0, 0},
    {"platform.marketing", LP_CONF_STRING, "klaviyo", C(marketing),
     "Who sends messages and offers: klaviyo, braze or none", 0, 0},
    PLATFORM_KEYS(0, "loyaltylion", "https://api.loyaltylion.com", "20", "20",
                  "Requests per second (LoyaltyLion publishes 20)"),
    PLATFORM_KEYS(1, "smile", "https://api.smile.io", "10", "10",
                  "Requests per second (Smile.io publishes 10 per token)"),
    PLATFORM_KEYS(2, "klaviyo", "https://a.klaviyo.com", "58", "350",
                  "Requests per second (Create Event: 350/s burst, 3500/min "
                  "steady)"),
    PLATFORM_KEYS(3, "braze", "https://rest.iad-01.braze.com", "1000", "3000",
                  "Requests per second (/users/track: 3000 per 3 s)"),
    {"klaviyo.revision", LP_CONF_STRING, "2026-07-15", C(klaviyo_revision),
     "Klaviyo API revision header (pinned)", 0, 0},
    {"guard.member.cap", LP_CONF_STRING, "0", C(member_cap),
     "Most reward cost per member per period, all platforms together "
     "(0 = none)",
     0, 0},
    {"guard.member.period.s", LP_CONF_INT, "2592000", C(member_period_s),
     "Period of the member cap (default 30 days, by event time)", 60,
     315360000},
    {"guard.frequency.cap", LP_CONF_INT, "0", C(frequency_cap),
     "Most decisions of one rule per member per period (0 = none)", 0, 1000000},
    {"guard.frequency.period.s", LP_CONF_INT, "86400", C(frequency_period_s),
     "Period of the frequency cap", 60, 315360000},
    {"guard.campaign.budget", LP_CONF_STRING, "0", C(campaign_budget),
     "Budget per campaign per period unless set with loyaltyctl (0 = none)", 0,
     0},
    {"guard.campaign.period.s", LP_CONF_INT, "86400", C(campaign_period_s),
     "Period of campaign budgets", 60, 315360000},
    {"approval.above", LP_CONF_STRING, "0", C(approval_above),
     "Decisions costing more need a person's approval (0 = only those the "
     "rule marks required)",
     0, 0},
    {"approval.ttl.s", LP_CONF_INT, "604800", C(approval_ttl_s),
     "A parked decision expires after this; its budget returns", 60, 31536000},
    {"score_sync.min.p_alive", LP_CONF_STRING, "0.05", C(sync_min_p_alive),
     "A score sync is sent only when P(alive) moved at least this much since "
     "the member's last sync, or the 12-month CLV moved by "
     "score_sync.min.clv, or the segment or churn band changed",
     0, 0},
    {"score_sync.min.clv", LP_CONF_STRING, "0.10", C(sync_min_clv),
     "Least change of the 12-month CLV that syncs, as a share of the last "
     "synced value (0.10 = 10%; a last CLV under 1.00 counts as 1.00), at "
     "most 10",
     0, 0},
    {"copy.url", LP_CONF_STRING, "", C(copy_url),
     "OpenAI-compatible chat completions endpoint that drafts the text of "
     "message and discount decisions (e.g. "
     "https://api.openai.com/v1/chat/completions); empty = templates only",
     0, 0},
    {"copy.model", LP_CONF_STRING, "gpt-4o-mini", C(copy_model),
     "Chat model asked for the copy", 0, 0},
    {"copy.key", LP_CONF_STRING, "", C(copy_key),
     "Bearer token of copy.url (better from the environment or "
     "copy.key.file)",
     0, 0},
    {"copy.key.file", LP_CONF_STRING, "", C(copy_key_file),
     "File holding the copy.url token", 0, 0},
    {"copy.timeout.ms", LP_CONF_INT, "1500", C(copy_timeout_ms),
     "Longest wait for the copy; after it the template goes alone", 50, 60000},
    {"copy.max.chars", LP_CONF_INT, "480", C(copy_max_chars),
     "Longest copy accepted (characters); longer text is rejected", 20, 10000},
    {"copy.in.flight", LP_CONF_INT, "8", C(copy_in_flight),
     "Copy requests at a time", 1, 1000},
    {"exec.check.member", LP_CONF_BOOL, "true", C(check_member),
     "Refuse decisions for members without a profile in Redis", 0, 0},
    {"dlq.max.original.bytes", LP_CONF_INT, "524288", C(dlq_max_original),
     "Original bytes kept in a dead-letter record", 1024, 100000000},
    {"http.bind", LP_CONF_STRING, "127.0.0.1", C(http_bind),
     "Address of the /metrics and /healthz endpoint", 0, 0},
    {"http.port", LP_CONF_INT, "9103", C(http_port),
     "Port of /metrics and /healthz (0 = pick a free port, -1 = off)", -1,
     65535},
    {"log.level", LP_CONF_STRING, "info", C(log_level),
     "debug, info, warn or error", 0, 0},
    {"shutdown.timeout.ms", LP_CONF_INT, "10000", C(shutdown_timeout_ms),
     "Longest wait for calls in flight at shutdown", 100, 600000},
};
#undef C

static volatile sig_atomic_t stop_requested;

int main(int argc, char **argv) {
  struct lp_kafka_props kafka = {0};
  int rc = lp_daemon_start("executor", table, LP_ARRAY_LEN(table), &conf,
                           &kafka, argc, argv, usage, &stop_requested);
  if (rc >= 0)
    return rc;
  rc = lp_executor_run(&conf, &kafka, &stop_requested);
  lp_daemon_end(table, LP_ARRAY_LEN(table), &conf, &kafka);
  return rc;
}
