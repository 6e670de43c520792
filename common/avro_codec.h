/*
 * avro_codec.h — Avro binary encoding of the pipeline's records
 * (schemas/<name>.avsc, compiled in via schemas_embed.h) with avro-c.
 *
 * Write framing: Avro single-object encoding (0xC3 0x01, then the 8-byte
 * little-endian CRC-64-AVRO fingerprint of the schema's Parsing Canonical
 * Form, then the binary datum) — no registry needed.
 * Read framings: single-object (fingerprint must be one of the known
 * schemas: unknown fingerprint is an error), and the Confluent wire format
 * (0x00 + 4-byte big-endian schema id + datum) when a registry URL is
 * configured: the writer schema is fetched once per id from
 * <registry>/schemas/ids/<id> with libcurl and cached (failures that will
 * not change, such as 404, too). Any writer schema is resolved against our
 * reader schema by Avro's rules — fields matched by name, missing fields
 * take their defaults, enum symbols matched by name (unknown ones take the
 * enum's default), int promoted to long — so older/newer writers that are
 * compatible decode. (avro-c 1.11.1's resolved writer cannot do defaults or
 * enum symbols, so the codec does this mapping itself; see avro_codec.c.)
 *
 * Every datum is checked against its writer schema before avro-c reads it:
 * lengths against the bytes present, varints, string limit
 * (LP_MAX_STRING_BYTES), UTF-8, item counts, indexes, trailing bytes — a
 * record claiming a 2 GB string is an error, not an allocation.
 * Decoded orders, customers and activity events are validated with
 * lp_*_event_validate.
 * Every error text names the field and the reason, fit for a dead-letter
 * record. A codec is used from one thread at a time; avro-c, Jansson and
 * libcurl objects are reused across records.
 */
#ifndef LP_AVRO_CODEC_H
#define LP_AVRO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "util.h"

enum lp_record_type {
  LP_REC_ORDER = 0,
  LP_REC_CUSTOMER = 1,
  LP_REC_DECISION = 2,
  LP_REC_DEAD_LETTER = 3,
  LP_REC_ACTION_RESULT = 4,
  LP_REC_ACTIVITY = 5,
};

struct lp_avro_codec;

/* registry_url may be NULL (Confluent-framed input is then an error). */
struct lp_avro_codec *lp_avro_codec_new(const char *registry_url, char *errstr,
                                        size_t errstr_size);
void lp_avro_codec_destroy(struct lp_avro_codec **c);

/*
 * Writer schemas beyond our own six (json is parsed, not kept; it must
 * be readable as one of our records, checked when first used):
 * - add_schema: a single-object writer schema, found by its fingerprint —
 *   an older or newer version of one of our schemas still present in a
 *   topic after an upgrade.
 * - add_registry_schema: the schema of Confluent id `id`, as if fetched from
 *   the registry (tests; deployments whose registry is not reachable from
 *   the processors). Works without a registry URL.
 * Return 0, or -1 with errstr (unparsable schema, duplicate).
 */
int lp_avro_codec_add_schema(struct lp_avro_codec *c, const char *json,
                             char *errstr, size_t errstr_size);
int lp_avro_codec_add_registry_schema(struct lp_avro_codec *c, uint32_t id,
                                      const char *json, char *errstr,
                                      size_t errstr_size);

/*
 * 1 when the last decode failed for a transient reason (the schema registry
 * was unreachable, answered 5xx, 401/403 or 429): retry the record later
 * rather than dead-letter it. 0 after a success or a permanent failure.
 */
int lp_avro_codec_last_error_retryable(const struct lp_avro_codec *c);

/*
 * While an arena is set, order, customer and activity events that take the
 * fast
 * reader (written with our own schema) keep their strings and arrays in
 * it, and say so in their arena field: lp_*_event_clear then only forgets
 * them, and they live until the arena is reset. Events read any other way
 * still own their memory. NULL (the default) restores that for all.
 */
struct lp_arena;
void lp_avro_codec_set_arena(struct lp_avro_codec *c, struct lp_arena *a);

/*
 * Parsing Canonical Form (Avro specification) of any schema JSON; returns
 * a string the caller frees, or NULL with errstr. And CRC-64-AVRO (the
 * specification's Rabin fingerprint) of any bytes: the fingerprint of a
 * schema is lp_avro_crc64 of its canonical form.
 */
char *lp_avro_schema_canonical_form(const char *json, size_t len, char *errstr,
                                    size_t errstr_size);
uint64_t lp_avro_crc64(const void *data, size_t len);

/* 64-bit CRC-64-AVRO fingerprint of our schema for a record type. */
uint64_t lp_avro_fingerprint(const struct lp_avro_codec *c,
                             enum lp_record_type type);
/* Parsing Canonical Form of our schema (borrowed). */
const char *lp_avro_canonical_form(const struct lp_avro_codec *c,
                                   enum lp_record_type type);

/* Encoders append a single-object-encoded record to out (out unchanged on
 * error). They refuse what no decoder would accept — a required string
 * NULL, a string over LP_MAX_STRING_BYTES or not UTF-8, more than
 * LP_MAX_LINE_ITEMS items, an enum out of range — but do not validate
 * semantics (a negative quantity encodes; the decoder refuses it). Dead
 * letters and action results never fail on their text (they record what
 * happened, whatever text it came with): invalid UTF-8 becomes U+FFFD and
 * over-long strings are cut; a NULL required string is still an error.
 * Return 0, or -1 with errstr
 * ("event_id: required field missing"). */
int lp_avro_encode_order(struct lp_avro_codec *c,
                         const struct lp_order_event *ev, struct lp_buf *out,
                         char *errstr, size_t errstr_size);
int lp_avro_encode_customer(struct lp_avro_codec *c,
                            const struct lp_customer_event *ev,
                            struct lp_buf *out, char *errstr,
                            size_t errstr_size);
int lp_avro_encode_activity(struct lp_avro_codec *c,
                            const struct lp_activity_event *ev,
                            struct lp_buf *out, char *errstr,
                            size_t errstr_size);
int lp_avro_encode_decision(struct lp_avro_codec *c,
                            const struct lp_reward_decision *d,
                            struct lp_buf *out, char *errstr,
                            size_t errstr_size);
int lp_avro_encode_dead_letter(struct lp_avro_codec *c,
                               const struct lp_dead_letter *dl,
                               struct lp_buf *out, char *errstr,
                               size_t errstr_size);
int lp_avro_encode_action_result(struct lp_avro_codec *c,
                                 const struct lp_action_result *r,
                                 struct lp_buf *out, char *errstr,
                                 size_t errstr_size);

/*
 * Decoders accept either framing (first byte 0xC3 or 0x00). out must be
 * zeroed or cleared; on error it is left cleared. Return 0 or -1 with a
 * reason such as "avro: unknown schema fingerprint 0x1234...",
 * "avro: truncated datum", "line_items[2].quantity: must be > 0".
 */
int lp_avro_decode_order(struct lp_avro_codec *c, const void *data, size_t len,
                         struct lp_order_event *out, char *errstr,
                         size_t errstr_size);
int lp_avro_decode_customer(struct lp_avro_codec *c, const void *data,
                            size_t len, struct lp_customer_event *out,
                            char *errstr, size_t errstr_size);
int lp_avro_decode_activity(struct lp_avro_codec *c, const void *data,
                            size_t len, struct lp_activity_event *out,
                            char *errstr, size_t errstr_size);
int lp_avro_decode_decision(struct lp_avro_codec *c, const void *data,
                            size_t len, struct lp_reward_decision *out,
                            char *errstr, size_t errstr_size);
int lp_avro_decode_dead_letter(struct lp_avro_codec *c, const void *data,
                               size_t len, struct lp_dead_letter *out,
                               char *errstr, size_t errstr_size);
int lp_avro_decode_action_result(struct lp_avro_codec *c, const void *data,
                                 size_t len, struct lp_action_result *out,
                                 char *errstr, size_t errstr_size);

#endif
