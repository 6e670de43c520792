/*
 * decision.c — deterministic decision ids (see decision.h).
 *
 * Byte layout hashed (documented in docs/rules.md, "Decision ids"): for
 * each of rule id, rule version as decimal ASCII, shop, customer id and
 * trigger event id, in that order, a 4-byte big-endian length followed by
 * the field's bytes. The id is the first 32 hex digits (16 bytes) of the
 * SHA-256 of that sequence. No clock, no randomness: the same inputs give
 * the same id in every process and every replay.
 */
#include "decision.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static void append_field(struct lp_buf *b, const char *s) {
  size_t n = s ? strlen(s) : 0;
  LP_ASSERT(n <= UINT32_MAX);
  uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                    (uint8_t)n};
  lp_buf_append(b, len, sizeof(len));
  if (n)
    lp_buf_append(b, s, n);
}

void lp_decision_id(const char *rule_id, int32_t rule_version, const char *shop,
                    const char *customer_id, const char *trigger_event_id,
                    char out[LP_DECISION_ID_LEN + 1]) {
  char version[16];
  snprintf(version, sizeof(version), "%d", (int)rule_version);
  struct lp_buf b;
  lp_buf_init(&b);
  append_field(&b, rule_id);
  append_field(&b, version);
  append_field(&b, shop);
  append_field(&b, customer_id);
  append_field(&b, trigger_event_id);
  char hex[65];
  lp_sha256_hex(b.data, b.len, hex);
  lp_buf_free(&b);
  memcpy(out, hex, LP_DECISION_ID_LEN);
  out[LP_DECISION_ID_LEN] = '\0';
}
