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

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Appends one length-prefixed field at *pos when it fits in out (size);
 * advances *pos by the bytes it needs either way. */
static void put_field(uint8_t *out, size_t size, size_t *pos, const char *s,
                      size_t n) {
  LP_ASSERT(n <= UINT32_MAX);
  if (*pos + 4 + n <= size) {
    uint8_t *p = out + *pos;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    if (n)
      memcpy(p + 4, s, n);
  }
  *pos += 4 + n;
}

/* Lays the fields out in out (size bytes); returns the bytes needed, which
 * are all written only when that is <= size. */
static size_t layout(uint8_t *out, size_t size, const char *const *fields,
                     const size_t *lens, size_t n) {
  size_t pos = 0;
  for (size_t i = 0; i < n; i++)
    put_field(out, size, &pos, fields[i], lens[i]);
  return pos;
}

void lp_decision_id(const char *rule_id, int32_t rule_version, const char *shop,
                    const char *customer_id, const char *trigger_event_id,
                    char out[LP_DECISION_ID_LEN + 1]) {
  char version[16];
  char *v = lp_i64_digits_back(version + sizeof(version), rule_version);
  const char *fields[5] = {rule_id, v, shop, customer_id, trigger_event_id};
  /* The version digits are not NUL-terminated: their length is known. */
  size_t lens[5] = {0, (size_t)(version + sizeof(version) - v), 0, 0, 0};
  for (size_t i = 0; i < 5; i++)
    if (i != 1 && fields[i])
      lens[i] = strlen(fields[i]);
  /* Ids are short: the stack holds them; a longer input takes the heap. */
  uint8_t stack[512], *buf = stack;
  size_t len = layout(stack, sizeof(stack), fields, lens, 5);
  if (len > sizeof(stack)) {
    buf = lp_xmalloc(len);
    layout(buf, len, fields, lens, 5);
  }
  char hex[65];
  lp_sha256_hex(buf, len, hex);
  if (buf != stack)
    free(buf);
  memcpy(out, hex, LP_DECISION_ID_LEN);
  out[LP_DECISION_ID_LEN] = '\0';
}
