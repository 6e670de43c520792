/*
 * test_input_codec.c — the framing dispatch of input records
 * (input_codec.h), here for activity events: Avro single-object and
 * Confluent-framed records and canonical JSON (with leading whitespace)
 * decode to the same event; an empty value, unknown framing, a Confluent
 * id without a registry, truncated Avro and the decoders' own reasons
 * (unknown kind, negative cart value) come back as dead-letter reasons.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>

#include "input_codec.h"
#include "schemas_embed.h"
#include "util.h"

static struct lp_avro_codec *codec;

static int setup(void **state) {
  (void)state;
  char err[256];
  codec = lp_avro_codec_new(NULL, err, sizeof(err));
  if (!codec)
    fprintf(stderr, "codec: %s\n", err);
  return codec ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  lp_avro_codec_destroy(&codec);
  return 0;
}

static const char cart_json[] =
    "{\"event_id\":\"t:cart:1\",\"shop\":\"s.myshopify.com\","
    "\"customer_id\":\"42\",\"event_time\":\"2022-01-01T00:00:02.000Z\","
    "\"kind\":\"cart_updated\",\"cart_id\":\"c1\",\"currency\":\"EUR\","
    "\"cart_value\":\"129.95\",\"line_items\":[{\"product_id\":\"7001\","
    "\"sku\":\"RS-42\",\"category\":\"shoes\",\"brand\":\"Acme\","
    "\"quantity\":2,\"unit_price\":\"49.99\"}],\"source\":\"tracker\"}";

static void assert_cart(const struct lp_activity_event *ev) {
  assert_string_equal(ev->event_id, "t:cart:1");
  assert_string_equal(ev->shop, "s.myshopify.com");
  assert_string_equal(ev->customer_id, "42");
  assert_int_equal(ev->event_time_ms, 1640995202000LL);
  assert_int_equal(ev->kind, LP_ACTIVITY_CART_UPDATED);
  assert_true(ev->has_cart_value);
  assert_int_equal(ev->cart_value_micros, 129950000);
  assert_string_equal(ev->currency, "EUR");
  assert_int_equal(ev->n_line_items, 1);
  assert_string_equal(ev->line_items[0].brand, "Acme");
}

static const char *embedded_json(const char *name) {
  for (const struct lp_embedded_schema *e = lp_embedded_schemas; e->name; e++)
    if (strcmp(e->name, name) == 0)
      return e->json;
  fail_msg("schema %s not compiled in", name);
  return NULL;
}

/* The cart event as single-object Avro (caller frees out). */
static void cart_avro(struct lp_buf *out) {
  struct lp_activity_event ev = {0};
  char err[256];
  if (lp_json_decode_activity(cart_json, strlen(cart_json), &ev, err,
                              sizeof(err)))
    fail_msg("json: %s", err);
  lp_buf_init(out);
  if (lp_avro_encode_activity(codec, &ev, out, err, sizeof(err)))
    fail_msg("encode: %s", err);
  lp_activity_event_clear(&ev);
}

static void test_every_framing(void **state) {
  (void)state;
  char err[256] = "";
  struct lp_activity_event ev = {0};
  /* Canonical JSON, also after whitespace. */
  assert_int_equal(lp_input_decode_activity(codec, cart_json, strlen(cart_json),
                                            &ev, err, sizeof(err)),
                   0);
  assert_cart(&ev);
  lp_activity_event_clear(&ev);
  char *spaced = lp_xasprintf(" \r\n\t%s", cart_json);
  assert_int_equal(lp_input_decode_activity(codec, spaced, strlen(spaced), &ev,
                                            err, sizeof(err)),
                   0);
  assert_cart(&ev);
  lp_activity_event_clear(&ev);
  free(spaced);
  /* Avro single-object. */
  struct lp_buf avro;
  cart_avro(&avro);
  assert_int_equal(avro.data[0], 0xC3);
  assert_int_equal(lp_input_decode_activity(codec, avro.data, avro.len, &ev,
                                            err, sizeof(err)),
                   0);
  assert_cart(&ev);
  lp_activity_event_clear(&ev);
  /* Confluent: the same datum behind registry id 7. */
  assert_int_equal(
      lp_avro_codec_add_registry_schema(
          codec, 7, embedded_json("ActivityEvent"), err, sizeof(err)),
      0);
  struct lp_buf conf;
  lp_buf_init(&conf);
  const uint8_t head[5] = {0, 0, 0, 0, 7};
  lp_buf_append(&conf, head, sizeof(head));
  lp_buf_append(&conf, avro.data + 10, avro.len - 10);
  if (lp_input_decode_activity(codec, conf.data, conf.len, &ev, err,
                               sizeof(err)))
    fail_msg("confluent: %s", err);
  assert_cart(&ev);
  lp_activity_event_clear(&ev);
  /* Truncated Avro is refused with the decoder's reason. */
  assert_int_equal(lp_input_decode_activity(codec, avro.data, avro.len / 2, &ev,
                                            err, sizeof(err)),
                   -1);
  assert_true(strncmp(err, "avro: ", 6) == 0);
  lp_activity_event_clear(&ev);
  lp_buf_free(&conf);
  lp_buf_free(&avro);
}

static void test_refusals(void **state) {
  (void)state;
  char err[256] = "";
  struct lp_activity_event ev = {0};
  assert_int_equal(
      lp_input_decode_activity(codec, "", 0, &ev, err, sizeof(err)), -1);
  assert_string_equal(err, "record: empty value");
  assert_int_equal(
      lp_input_decode_activity(codec, "xyz", 3, &ev, err, sizeof(err)), -1);
  assert_string_equal(err, "record: unrecognised framing, first byte 0x78 "
                           "(expected 0xC3 Avro single-object, 0x00 "
                           "Confluent wire format, or a JSON object)");
  /* A Confluent id nobody registered. */
  const uint8_t unknown[8] = {0, 0, 0, 0, 99, 2, 'a', 0};
  assert_int_equal(lp_input_decode_activity(codec, unknown, sizeof(unknown),
                                            &ev, err, sizeof(err)),
                   -1);
  assert_true(strncmp(err, "avro: ", 6) == 0);
  lp_activity_event_clear(&ev);
  /* The JSON decoder's reasons pass through unchanged. */
  char *bad = lp_xstrdup(cart_json);
  char *k = strstr(bad, "cart_updated");
  memcpy(k, "cart_updatex", 12);
  assert_int_equal(
      lp_input_decode_activity(codec, bad, strlen(bad), &ev, err, sizeof(err)),
      -1);
  assert_true(
      strncmp(err, "kind: unknown activity kind \"cart_updatex\"", 42) == 0);
  lp_activity_event_clear(&ev);
  free(bad);
  bad = lp_xstrdup(cart_json);
  k = strstr(bad, "\"129.95\"");
  memcpy(k, "\"-29.95\"", 8);
  assert_int_equal(
      lp_input_decode_activity(codec, bad, strlen(bad), &ev, err, sizeof(err)),
      -1);
  assert_string_equal(err, "cart_value: negative (-29.95)");
  lp_activity_event_clear(&ev);
  free(bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_framing),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
