/*
 * activity-processor — consumes activity events (page and product views,
 * cart updates, checkouts, ...) and folds each into the member's activity
 * part in Redis exactly once (activity_apply.h), plans the cart timers of
 * the rules with "on": "timer" and fires them on the activity stream's
 * event time (stream_timers.h): the only decisions it produces.
 * Wiring only: the runtime is common/stream_app.c.
 */
#include "stream_app.h"

static const char usage[] =
    "NAME\n"
    "  activity-processor - activity events in, the members' activity part\n"
    "  in Redis out\n"
    "\n"
    "SYNOPSIS\n"
    "  activity-processor [-c FILE] [-X key=value ...] [--help] [--version]\n"
    "\n"
    "DESCRIPTION\n"
    "  Consumes the activity topic in its own consumer group (cooperative-\n"
    "  sticky; run as many copies as there are partitions). Each record -\n"
    "  Avro single-object, Confluent-framed Avro or canonical JSON - is\n"
    "  folded into the member's activity part <ns>:a:{shop:customer}\n"
    "  exactly once (a memo of applied events, kept redis.memo.ttl.s):\n"
    "\n"
    "  browse scores  per brand and per category, a product view 1.0, a\n"
    "                 page view with a brand or category 0.5, a cart line\n"
    "                 2.0; scores halve every activity.half.life.ms of\n"
    "                 event time, scores below activity.floor.micros are\n"
    "                 dropped and each of brands and categories keeps the\n"
    "                 activity.max.names highest. Decay is integer\n"
    "                 arithmetic, identical on every machine, and a late\n"
    "                 event never rewinds it.\n"
    "  the cart       value, currency, lines, most valuable line and state\n"
    "                 (open, checkout, abandoned); an older cart change\n"
    "                 never overwrites a newer one, and an order at or after\n"
    "                 the cart's last change (the member's order part, kept\n"
    "                 by order-processor) clears it, so a late cart event\n"
    "                 cannot reopen a cart an order consumed.\n"
    "  last activity  the newest event time folded, and views counted.\n"
    "\n"
    "  Cart timers (rules with \"on\": \"timer\", kind cart; docs/timers.md):\n"
    "  a cart left open is due after_minutes after its newest change; a\n"
    "  checkout, an order or an emptied cart cancels it. A timer fires when\n"
    "  the partition's event time passes its due (timers.* keys; by wall\n"
    "  clock when idle) and its decision goes to the decisions topic; no\n"
    "  rule fires on an activity event itself. Records that cannot be\n"
    "  decoded or validated (an unknown\n"
    "  kind, a negative cart value, an event time more than\n"
    "  event.max.future.ms ahead, ...) go to the dead-letter topic with the\n"
    "  reason. An input offset is committed only after the record is\n"
    "  folded (or its dead letter acknowledged by Kafka).\n"
    "\n"
    "SIGNALS\n"
    "  SIGTERM, SIGINT  finish in-flight work, commit, leave the group, exit "
    "0\n"
    "  SIGHUP           reload rules (read and checked like the other\n"
    "                   processors; none apply to activity events yet)\n"
    "\n"
    "EXIT STATUS\n"
    "  0 clean shutdown, 1 fatal run-time error, 2 bad configuration\n";

int main(int argc, char **argv) {
  static const struct lp_stream_app_spec spec = {"activity-processor",
                                                 LP_STREAM_ACTIVITY,
                                                 "activity",
                                                 "activity-processor",
                                                 "9313",
                                                 usage};
  return lp_stream_app_main(&spec, argc, argv);
}
