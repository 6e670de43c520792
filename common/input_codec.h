/*
 * input_codec.h — decodes an input topic's record whatever its framing:
 * the first byte tells (0xC3: Avro single-object, 0x00: Confluent wire
 * format, '{' or JSON whitespace: canonical or Shopify JSON), and the
 * matching decoder (avro_codec.h, json_codec.h) does the rest.
 */
#ifndef LP_INPUT_CODEC_H
#define LP_INPUT_CODEC_H

#include <stddef.h>

#include "avro_codec.h"
#include "events.h"
#include "json_codec.h"

/* out zeroed/cleared; 0, or -1 with a reason for the dead-letter record. */
int lp_input_decode_order(struct lp_avro_codec *avro, const void *data,
                          size_t len, const struct lp_json_hints *hints,
                          struct lp_order_event *out, char *errstr,
                          size_t errstr_size);
int lp_input_decode_customer(struct lp_avro_codec *avro, const void *data,
                             size_t len, const struct lp_json_hints *hints,
                             struct lp_customer_event *out, char *errstr,
                             size_t errstr_size);
/* Activity events: Avro (single-object or Confluent) or canonical JSON
 * (no platform form yet, so no hints). */
int lp_input_decode_activity(struct lp_avro_codec *avro, const void *data,
                             size_t len, struct lp_activity_event *out,
                             char *errstr, size_t errstr_size);

#endif
