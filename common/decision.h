/*
 * decision.h — deterministic decision ids.
 *
 * id = first 16 bytes, lower-case hex, of SHA-256 over the length-prefixed
 * fields (rule id, rule version as decimal, shop, customer id, trigger event
 * id). Length prefixes make the encoding unambiguous ("a"+"bc" != "ab"+"c").
 * The same rule version, member and trigger always give the same id: the
 * executor's idempotency key across redelivery, rebalance and replay.
 */
#ifndef LP_DECISION_H
#define LP_DECISION_H

#include <stdint.h>

#define LP_DECISION_ID_LEN 32

void lp_decision_id(const char *rule_id, int32_t rule_version, const char *shop,
                    const char *customer_id, const char *trigger_event_id,
                    char out[LP_DECISION_ID_LEN + 1]);

#endif
