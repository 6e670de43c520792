/*
 * input_codec.c — framing dispatch for input records (see input_codec.h).
 */
#include "input_codec.h"

#include <stdint.h>

#include "util.h"

enum framing { FRAMING_AVRO, FRAMING_JSON, FRAMING_UNKNOWN };

static enum framing detect(const void *data, size_t len, char *errstr,
                           size_t errstr_size) {
  const uint8_t *p = data;
  if (len == 0) {
    lp_err(errstr, errstr_size, "record: empty value");
    return FRAMING_UNKNOWN;
  }
  if (p[0] == 0xC3 || p[0] == 0x00)
    return FRAMING_AVRO;
  size_t i = 0;
  while (i < len &&
         (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
    i++;
  if (i < len && p[i] == '{')
    return FRAMING_JSON;
  lp_err(errstr, errstr_size,
         "record: unrecognised framing, first byte 0x%02x (expected 0xC3 "
         "Avro single-object, 0x00 Confluent wire format, or a JSON object)",
         p[0]);
  return FRAMING_UNKNOWN;
}

int lp_input_decode_order(struct lp_avro_codec *avro, const void *data,
                          size_t len, const struct lp_json_hints *hints,
                          struct lp_order_event *out, char *errstr,
                          size_t errstr_size) {
  switch (detect(data, len, errstr, errstr_size)) {
  case FRAMING_AVRO:
    return lp_avro_decode_order(avro, data, len, out, errstr, errstr_size);
  case FRAMING_JSON:
    return lp_json_decode_order(data, len, hints, out, errstr, errstr_size);
  default:
    return -1;
  }
}

int lp_input_decode_customer(struct lp_avro_codec *avro, const void *data,
                             size_t len, const struct lp_json_hints *hints,
                             struct lp_customer_event *out, char *errstr,
                             size_t errstr_size) {
  switch (detect(data, len, errstr, errstr_size)) {
  case FRAMING_AVRO:
    return lp_avro_decode_customer(avro, data, len, out, errstr, errstr_size);
  case FRAMING_JSON:
    return lp_json_decode_customer(data, len, hints, out, errstr, errstr_size);
  default:
    return -1;
  }
}

int lp_input_decode_activity(struct lp_avro_codec *avro, const void *data,
                             size_t len, struct lp_activity_event *out,
                             char *errstr, size_t errstr_size) {
  switch (detect(data, len, errstr, errstr_size)) {
  case FRAMING_AVRO:
    return lp_avro_decode_activity(avro, data, len, out, errstr, errstr_size);
  case FRAMING_JSON:
    return lp_json_decode_activity(data, len, out, errstr, errstr_size);
  default:
    return -1;
  }
}
