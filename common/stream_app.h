/*
 * stream_app.h — the runtime shared by the order, customer and activity
 * processors: configuration, a consumer in its own group (cooperative-sticky,
 * incremental assign), an idempotent producer, the contiguous-ack offset
 * tracker, the Redis profile store, rules with SIGHUP reload, dead letters,
 * metrics and health over HTTP, and graceful shutdown.
 *
 * Delivery guarantee (at-least-once, nothing lost): an input offset is
 * stored for commit only when every output of that record (its decisions,
 * or its dead-letter record) has been acknowledged by Kafka and every
 * earlier offset of the partition is finished too. Outputs whose delivery
 * fails are produced again. A record is never dropped: it becomes
 * decisions, no decision, or a dead letter with the reason.
 *
 * Deterministic output: decisions are a pure function of the event, the
 * member's profile just before it (profile_store.h) and the rules, so a
 * redelivered or replayed record yields the same decision bytes.
 */
#ifndef LP_STREAM_APP_H
#define LP_STREAM_APP_H

enum lp_stream_kind {
  LP_STREAM_ORDERS = 0,
  LP_STREAM_CUSTOMERS = 1,
  LP_STREAM_ACTIVITY = 2, /* folds activity events; no rules fire yet */
};

struct lp_stream_app_spec {
  const char *name; /* processor name: logs, metrics, client.id */
  enum lp_stream_kind kind;
  const char *input_topic; /* default of topic.input */
  const char *group_id;    /* default of group.id */
  const char *http_port;   /* default of http.port, as text */
  const char *usage;       /* NAME / SYNOPSIS / DESCRIPTION for --help */
};

/* Runs the processor until SIGTERM/SIGINT. Returns the process exit code:
 * 0 after a clean shutdown, 1 on a fatal run-time error, 2 on bad
 * configuration. */
int lp_stream_app_main(const struct lp_stream_app_spec *spec, int argc,
                       char **argv);

#endif
