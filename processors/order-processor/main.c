/*
 * order-processor — consumes order events, updates member profiles in
 * Redis, applies the reward rules, produces reward decisions.
 * Wiring only: the runtime is common/stream_app.c, the transform is
 * common/rules.c over common/profile_store.c's before-state.
 */
#include "stream_app.h"

static const char usage[] =
    "NAME\n"
    "  order-processor - order events in, reward decisions out\n"
    "\n"
    "SYNOPSIS\n"
    "  order-processor [-c FILE] [-X key=value ...] [--help] [--version]\n"
    "\n"
    "DESCRIPTION\n"
    "  Consumes the orders topic in its own consumer group (cooperative-\n"
    "  sticky; run as many copies as there are partitions). Each record -\n"
    "  Avro single-object, Confluent-framed Avro, canonical JSON or a\n"
    "  Shopify orders/create|paid|cancelled body - is applied to the\n"
    "  member's profile in Redis exactly once (a memo of applied events),\n"
    "  the rules decide against the profile as it was just before the\n"
    "  event, and each decision goes to the decisions topic with a\n"
    "  deterministic id. Records that cannot be decoded or validated go to\n"
    "  the dead-letter topic with the reason. An input offset is committed\n"
    "  only after all its outputs are acknowledged by Kafka.\n"
    "\n"
    "  Member timers (docs/timers.md): the win-back and replenishment timers "
    "of the\n"
    "  rules with \"on\": \"timer\" are planned from each record and fire\n"
    "  when the partition's event time passes their due (by wall clock\n"
    "  when the partition is idle; timers.* keys), each decided by its rule\n"
    "  with a deterministic decision id.\n"
    "\n"
    "SIGNALS\n"
    "  SIGTERM, SIGINT  finish in-flight work, commit, leave the group, exit "
    "0\n"
    "  SIGHUP           reload rules (an invalid file is rejected and the\n"
    "                   previous rules stay in force)\n"
    "\n"
    "EXIT STATUS\n"
    "  0 clean shutdown, 1 fatal run-time error, 2 bad configuration\n";

int main(int argc, char **argv) {
  static const struct lp_stream_app_spec spec = {
      "order-processor", LP_STREAM_ORDERS, "orders",
      "order-processor", "9311",           usage};
  return lp_stream_app_main(&spec, argc, argv);
}
