/*
 * customer-processor — consumes customer events, updates member profiles
 * (consent, tags, birthday, hashed email) in Redis, applies the rules for
 * customer events (e.g. sign-up bonus), produces reward decisions.
 * Wiring only: the runtime is common/stream_app.c.
 */
#include "stream_app.h"

static const char usage[] =
    "NAME\n"
    "  customer-processor - customer events in, reward decisions out\n"
    "\n"
    "SYNOPSIS\n"
    "  customer-processor [-c FILE] [-X key=value ...] [--help] [--version]\n"
    "\n"
    "DESCRIPTION\n"
    "  Consumes the customers topic in its own consumer group (cooperative-\n"
    "  sticky; run as many copies as there are partitions). Each record -\n"
    "  Avro single-object, Confluent-framed Avro, canonical JSON or a\n"
    "  Shopify customers/create|update body - is applied to the\n"
    "  member's profile in Redis exactly once (a memo of applied events),\n"
    "  the rules decide against the profile as it was just before the\n"
    "  event, and each decision goes to the decisions topic with a\n"
    "  deterministic id. Records that cannot be decoded or validated go to\n"
    "  the dead-letter topic with the reason. An input offset is committed\n"
    "  only after all its outputs are acknowledged by Kafka.\n"
    "\n"
    "  Member timers (docs/timers.md): the birthday timers of the\n"
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
  static const struct lp_stream_app_spec spec = {"customer-processor",
                                                 LP_STREAM_CUSTOMERS,
                                                 "customers",
                                                 "customer-processor",
                                                 "9312",
                                                 usage};
  return lp_stream_app_main(&spec, argc, argv);
}
