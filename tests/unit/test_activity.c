/*
 * test_activity.c — the ActivityEvent record (schemas/ActivityEvent.avsc,
 * struct lp_activity_event): Avro round trips of every kind (encode ->
 * decode -> equal, with and without an arena), the single-object header,
 * the canonical JSON form byte for byte and its aliases, JSON <-> Avro
 * identity, a newer writer's unknown kind, and bad input with its exact
 * error text: unknown kind, negative or unbounded cart value, a value
 * without a currency, ratings out of 1..5, too many line items, invalid
 * UTF-8, every truncation, and far-future times (lp_event_time_plausible).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>

#include "avro_codec.h"
#include "events.h"
#include "json_codec.h"
#include "util.h"

/* 2022-01-01T00:00:00.000Z */
#define T0 1640995200000LL

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

static void assert_str_or_null(const char *got, const char *want) {
  if (!want || !got)
    assert_ptr_equal(got, want);
  else
    assert_string_equal(got, want);
}

static void add_item(struct lp_activity_event *ev, const char *product,
                     const char *sku, int32_t quantity, int64_t price) {
  ev->line_items = lp_xrealloc(ev->line_items, (ev->n_line_items + 1) *
                                                   sizeof(*ev->line_items));
  struct lp_line_item *li = &ev->line_items[ev->n_line_items++];
  memset(li, 0, sizeof(*li));
  li->product_id = lp_xstrdup(product);
  li->sku = lp_xstrdup(sku);
  li->category = lp_xstrdup("shoes");
  li->brand = lp_xstrdup("Acme");
  li->quantity = quantity;
  li->unit_price_micros = price;
}

/* A valid event of kind k with the fields that kind carries. */
static void make_event(struct lp_activity_event *ev, enum lp_activity_kind k) {
  memset(ev, 0, sizeof(*ev));
  ev->event_id = lp_xasprintf("tracker:%s:42:%lld", lp_activity_kind_name(k),
                              (long long)T0);
  ev->shop = lp_xstrdup("demo.myshopify.com");
  ev->customer_id = lp_xstrdup("42");
  ev->event_time_ms = T0 + (int64_t)k * 1000;
  ev->kind = k;
  ev->source = lp_xstrdup("tracker");
  switch (k) {
  case LP_ACTIVITY_PAGE_VIEW:
    ev->url_path = lp_xstrdup("/collections/sale");
    ev->category = lp_xstrdup("sale");
    break;
  case LP_ACTIVITY_PRODUCT_VIEW:
    ev->url_path = lp_xstrdup("/products/red-shoes");
    ev->product_id = lp_xstrdup("7001");
    ev->sku = lp_xstrdup("RS-42");
    ev->category = lp_xstrdup("shoes");
    ev->brand = lp_xstrdup("Acme");
    break;
  case LP_ACTIVITY_CART_UPDATED:
  case LP_ACTIVITY_CHECKOUT_STARTED:
  case LP_ACTIVITY_CART_ABANDONED:
    ev->cart_id = lp_xstrdup("c1a2b3");
    ev->currency = lp_xstrdup("EUR");
    ev->has_cart_value = 1;
    ev->cart_value_micros = 129950000; /* 2 x 49.99 + 29.97 */
    add_item(ev, "7001", "RS-42", 2, 49990000);
    add_item(ev, "7002", NULL, 3, 9990000);
    break;
  case LP_ACTIVITY_REVIEW_WRITTEN:
    ev->product_id = lp_xstrdup("7001");
    ev->has_rating = 1;
    ev->rating = 5;
    break;
  case LP_ACTIVITY_REFERRAL:
    ev->referral_code = lp_xstrdup("FRIEND-42");
    ev->referred_customer_id = lp_xstrdup("43");
    break;
  case LP_ACTIVITY_SOCIAL_FOLLOW:
    ev->network = lp_xstrdup("instagram");
    break;
  }
}

static void assert_events_equal(const struct lp_activity_event *a,
                                const struct lp_activity_event *b) {
  assert_str_or_null(a->event_id, b->event_id);
  assert_str_or_null(a->shop, b->shop);
  assert_str_or_null(a->customer_id, b->customer_id);
  assert_int_equal(a->event_time_ms, b->event_time_ms);
  assert_int_equal(a->kind, b->kind);
  assert_str_or_null(a->url_path, b->url_path);
  assert_str_or_null(a->product_id, b->product_id);
  assert_str_or_null(a->sku, b->sku);
  assert_str_or_null(a->category, b->category);
  assert_str_or_null(a->brand, b->brand);
  assert_str_or_null(a->cart_id, b->cart_id);
  assert_str_or_null(a->currency, b->currency);
  assert_int_equal(a->has_cart_value, b->has_cart_value);
  assert_int_equal(a->cart_value_micros, b->cart_value_micros);
  assert_int_equal(a->n_line_items, b->n_line_items);
  for (size_t i = 0; i < a->n_line_items; i++) {
    const struct lp_line_item *x = &a->line_items[i], *y = &b->line_items[i];
    assert_str_or_null(x->product_id, y->product_id);
    assert_str_or_null(x->sku, y->sku);
    assert_str_or_null(x->category, y->category);
    assert_str_or_null(x->brand, y->brand);
    assert_int_equal(x->quantity, y->quantity);
    assert_int_equal(x->unit_price_micros, y->unit_price_micros);
  }
  assert_int_equal(a->has_rating, b->has_rating);
  assert_int_equal(a->rating, b->rating);
  assert_str_or_null(a->referral_code, b->referral_code);
  assert_str_or_null(a->referred_customer_id, b->referred_customer_id);
  assert_str_or_null(a->network, b->network);
  assert_str_or_null(a->source, b->source);
}

/* Validation of ev fails with exactly want. */
static void assert_invalid(const struct lp_activity_event *ev,
                           const char *want) {
  char err[512] = "";
  assert_int_equal(lp_activity_event_validate(ev, err, sizeof(err)), -1);
  assert_string_equal(err, want);
}

/* The canonical JSON decoder refuses json with exactly want. */
static void assert_json_error(const char *json, const char *want) {
  struct lp_activity_event ev = {0};
  char err[512] = "";
  assert_int_equal(
      lp_json_decode_activity(json, strlen(json), &ev, err, sizeof(err)), -1);
  assert_string_equal(err, want);
  assert_null(ev.event_id); /* left cleared */
}

/* The Avro decoder refuses ev's encoding with exactly want. */
static void assert_avro_decode_error(const struct lp_activity_event *ev,
                                     const char *want) {
  struct lp_buf buf;
  char err[512] = "";
  lp_buf_init(&buf);
  assert_int_equal(lp_avro_encode_activity(codec, ev, &buf, err, sizeof(err)),
                   0);
  struct lp_activity_event out = {0};
  assert_int_equal(
      lp_avro_decode_activity(codec, buf.data, buf.len, &out, err, sizeof(err)),
      -1);
  assert_string_equal(err, want);
  assert_null(out.event_id);
  lp_buf_free(&buf);
}

/* ------------------------------------------------------------------------
 * Round trips
 */

static void test_kind_names(void **state) {
  (void)state;
  for (int k = 0; k < LP_ACTIVITY_KIND_COUNT; k++) {
    enum lp_activity_kind back;
    const char *name = lp_activity_kind_name((enum lp_activity_kind)k);
    assert_non_null(name);
    assert_int_equal(lp_activity_kind_parse(name, &back), 0);
    assert_int_equal(back, k);
    assert_non_null(strstr(lp_activity_kind_list(), name));
  }
  enum lp_activity_kind k;
  assert_null(lp_activity_kind_name((enum lp_activity_kind)8));
  assert_int_equal(lp_activity_kind_parse("wishlist_added", &k), -1);
  assert_int_equal(lp_activity_kind_parse(NULL, &k), -1);
}

static void test_header(void **state) {
  (void)state;
  struct lp_activity_event ev;
  struct lp_buf buf;
  char err[256];
  make_event(&ev, LP_ACTIVITY_PAGE_VIEW);
  lp_buf_init(&buf);
  assert_int_equal(lp_avro_encode_activity(codec, &ev, &buf, err, sizeof(err)),
                   0);
  const char *pcf = lp_avro_canonical_form(codec, LP_REC_ACTIVITY);
  assert_non_null(strstr(pcf, "\"com.loyalty.events.ActivityEvent\""));
  uint64_t fp = lp_avro_fingerprint(codec, LP_REC_ACTIVITY);
  assert_true(fp == lp_avro_crc64(pcf, strlen(pcf)));
  assert_true(fp != lp_avro_fingerprint(codec, LP_REC_ORDER));
  assert_true(buf.len > 10);
  assert_int_equal(buf.data[0], 0xC3);
  assert_int_equal(buf.data[1], 0x01);
  for (int i = 0; i < 8; i++)
    assert_int_equal(buf.data[2 + i], (uint8_t)(fp >> (8 * i)));
  /* An activity record is not an order (and vice versa). */
  struct lp_order_event oe = {0};
  assert_int_equal(
      lp_avro_decode_order(codec, buf.data, buf.len, &oe, err, sizeof(err)),
      -1);
  lp_buf_free(&buf);
  lp_activity_event_clear(&ev);
}

static void test_round_trip_every_kind(void **state) {
  (void)state;
  struct lp_buf avro, json, json2, avro2;
  char err[512];
  lp_buf_init(&avro);
  lp_buf_init(&json);
  lp_buf_init(&json2);
  lp_buf_init(&avro2);
  struct lp_arena arena;
  lp_arena_init(&arena);
  for (int k = 0; k < LP_ACTIVITY_KIND_COUNT; k++) {
    struct lp_activity_event ev, back = {0}, from_json = {0}, in_arena = {0};
    make_event(&ev, (enum lp_activity_kind)k);
    assert_int_equal(lp_activity_event_validate(&ev, err, sizeof(err)), 0);
    lp_buf_reset(&avro);
    assert_int_equal(
        lp_avro_encode_activity(codec, &ev, &avro, err, sizeof(err)), 0);
    /* Avro: encode -> decode -> equal. */
    if (lp_avro_decode_activity(codec, avro.data, avro.len, &back, err,
                                sizeof(err)) != 0)
      fail_msg("kind %d: %s", k, err);
    assert_events_equal(&ev, &back);
    assert_null(back.arena);
    /* JSON: encode -> decode -> Avro encode is the same bytes. */
    lp_buf_reset(&json);
    lp_json_encode_activity(&ev, &json);
    if (lp_json_decode_activity(json.data, json.len, &from_json, err,
                                sizeof(err)) != 0)
      fail_msg("kind %d: %s in %s", k, err, lp_buf_cstr(&json));
    assert_events_equal(&ev, &from_json);
    lp_buf_reset(&avro2);
    assert_int_equal(
        lp_avro_encode_activity(codec, &from_json, &avro2, err, sizeof(err)),
        0);
    assert_int_equal(avro2.len, avro.len);
    assert_memory_equal(avro2.data, avro.data, avro.len);
    /* And JSON of the Avro-decoded record is the same text. */
    lp_buf_reset(&json2);
    lp_json_encode_activity(&back, &json2);
    assert_string_equal(lp_buf_cstr(&json2), lp_buf_cstr(&json));
    /* The fast reader into an arena: same record, clear only forgets. */
    lp_avro_codec_set_arena(codec, &arena);
    assert_int_equal(lp_avro_decode_activity(codec, avro.data, avro.len,
                                             &in_arena, err, sizeof(err)),
                     0);
    lp_avro_codec_set_arena(codec, NULL);
    assert_ptr_equal(in_arena.arena, &arena);
    assert_events_equal(&ev, &in_arena);
    lp_activity_event_clear(&in_arena);
    assert_null(in_arena.event_id);
    lp_arena_reset(&arena);
    lp_activity_event_clear(&ev);
    lp_activity_event_clear(&back);
    lp_activity_event_clear(&from_json);
  }
  lp_arena_free(&arena);
  lp_buf_free(&avro);
  lp_buf_free(&json);
  lp_buf_free(&json2);
  lp_buf_free(&avro2);
}

/* ------------------------------------------------------------------------
 * The JSON forms
 */

static void test_json_form(void **state) {
  (void)state;
  struct lp_activity_event ev;
  struct lp_buf buf;
  lp_buf_init(&buf);
  make_event(&ev, LP_ACTIVITY_CART_UPDATED);
  lp_json_encode_activity(&ev, &buf);
  assert_string_equal(
      lp_buf_cstr(&buf),
      "{\"event_id\":\"tracker:cart_updated:42:1640995200000\","
      "\"shop\":\"demo.myshopify.com\",\"customer_id\":\"42\","
      "\"event_time\":\"2022-01-01T00:00:02.000Z\",\"kind\":\"cart_updated\","
      "\"url_path\":null,\"product_id\":null,\"sku\":null,\"category\":null,"
      "\"brand\":null,\"cart_id\":\"c1a2b3\",\"currency\":\"EUR\","
      "\"cart_value\":\"129.95\",\"line_items\":["
      "{\"product_id\":\"7001\",\"sku\":\"RS-42\",\"category\":\"shoes\","
      "\"brand\":\"Acme\",\"quantity\":2,\"unit_price\":\"49.99\"},"
      "{\"product_id\":\"7002\",\"sku\":null,\"category\":\"shoes\","
      "\"brand\":\"Acme\",\"quantity\":3,\"unit_price\":\"9.99\"}],"
      "\"rating\":null,\"referral_code\":null,\"referred_customer_id\":null,"
      "\"network\":null,\"source\":\"tracker\"}");
  lp_activity_event_clear(&ev);

  lp_buf_reset(&buf);
  make_event(&ev, LP_ACTIVITY_REVIEW_WRITTEN);
  lp_json_encode_activity(&ev, &buf);
  assert_non_null(strstr(lp_buf_cstr(&buf), ",\"cart_value\":null,"
                                            "\"line_items\":[],\"rating\":5,"));
  lp_activity_event_clear(&ev);

  /* The short form: integer aliases, integer ids, absent optionals, and
   * unknown keys ignored. */
  const char *in =
      "{\"event_id\":\"e1\",\"shop\":\"s\",\"customer_id\":42,"
      "\"event_time_ms\":1640995200000,\"kind\":\"cart_abandoned\","
      "\"currency\":\"USD\",\"cart_value_micros\":5000000,"
      "\"line_items\":[{\"product_id\":7001,\"quantity\":1,"
      "\"unit_price_micros\":5000000}],\"session\":{\"x\":[1,2]}}";
  char err[512];
  struct lp_activity_event got = {0};
  if (lp_json_decode_activity(in, strlen(in), &got, err, sizeof(err)) != 0)
    fail_msg("%s", err);
  assert_string_equal(got.customer_id, "42");
  assert_int_equal(got.event_time_ms, T0);
  assert_int_equal(got.kind, LP_ACTIVITY_CART_ABANDONED);
  assert_int_equal(got.has_cart_value, 1);
  assert_int_equal(got.cart_value_micros, 5000000);
  assert_int_equal(got.n_line_items, 1);
  assert_string_equal(got.line_items[0].product_id, "7001");
  assert_null(got.line_items[0].sku);
  assert_int_equal(got.has_rating, 0);
  assert_null(got.url_path);
  assert_null(got.source);
  lp_buf_reset(&buf);
  lp_json_encode_activity(&got, &buf);
  assert_string_equal(
      lp_buf_cstr(&buf),
      "{\"event_id\":\"e1\",\"shop\":\"s\",\"customer_id\":\"42\","
      "\"event_time\":\"2022-01-01T00:00:00.000Z\",\"kind\":\"cart_abandoned\","
      "\"url_path\":null,\"product_id\":null,\"sku\":null,\"category\":null,"
      "\"brand\":null,\"cart_id\":null,\"currency\":\"USD\","
      "\"cart_value\":\"5.00\",\"line_items\":[{\"product_id\":\"7001\","
      "\"sku\":null,\"category\":null,\"brand\":null,\"quantity\":1,"
      "\"unit_price\":\"5.00\"}],\"rating\":null,\"referral_code\":null,"
      "\"referred_customer_id\":null,\"network\":null,\"source\":null}");
  lp_activity_event_clear(&got);

  /* A page view needs nothing beyond the required fields; nulls read as
   * absent. */
  const char *minimal =
      "{\"event_id\":\"e2\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T01:00:00+01:00\",\"kind\":\"page_view\","
      "\"cart_value\":null,\"rating\":null,\"url_path\":null}";
  assert_int_equal(
      lp_json_decode_activity(minimal, strlen(minimal), &got, err, sizeof(err)),
      0);
  assert_int_equal(got.event_time_ms, T0);
  assert_int_equal(got.has_cart_value, 0);
  assert_int_equal(got.has_rating, 0);
  lp_activity_event_clear(&got);
  lp_buf_free(&buf);
}

static void test_json_errors(void **state) {
  (void)state;
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"foo\"}",
      "kind: unknown activity kind \"foo\" (page_view, product_view, "
      "cart_updated, checkout_started, cart_abandoned, review_written, "
      "referral, social_follow)");
  assert_json_error("{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
                    "\"event_time\":\"2022-01-01T00:00:00Z\"}",
                    "kind: required field missing");
  assert_json_error("{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
                    "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":7}",
                    "kind: expected string, got integer");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"cart_updated\","
      "\"currency\":\"USD\",\"cart_value\":\"-5.00\"}",
      "cart_value: negative (-5.00)");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"cart_updated\","
      "\"currency\":\"USD\",\"cart_value\":5.5}",
      "cart_value: expected a decimal string such as \"404.95\", got real");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"cart_updated\","
      "\"cart_value\":\"5.00\"}",
      "currency: required when cart_value is set");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"review_written\","
      "\"rating\":0}",
      "rating: 0 is not in 1..5");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"review_written\","
      "\"rating\":6}",
      "rating: 6 is not in 1..5");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"review_written\","
      "\"rating\":\"5\"}",
      "rating: expected integer, got string");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"cart_updated\","
      "\"currency\":\"USD\",\"cart_value\":\"1.00\",\"line_items\":[{"
      "\"quantity\":0,\"unit_price\":\"1.00\"}]}",
      "line_items[0].quantity: 0 is not in 1..1000000");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"cart_updated\","
      "\"currency\":\"USD\",\"cart_value\":\"1.00\",\"line_items\":[{"
      "\"quantity\":1,\"unit_price\":\"-2.50\"}]}",
      "line_items[0].unit_price: negative (-2.50)");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"page_view\","
      "\"kind\":\"referral\"}",
      "json: line 1 column 106: duplicate object key near '\"kind\"'");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":"
      "\"page_view\",\"url_path\":\"/\xC3\x28\"}",
      "json: line 1 column 114: invalid UTF-8 (byte 0xc3 at offset 113)");
  assert_json_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2022-01-01T00:00:00Z\",\"kind\":\"product_view\"}",
      "product_id: required for product_view (or sku)");
  assert_json_error("[1]", "json: expected an object, got array");
}

/* ------------------------------------------------------------------------
 * Validation and the Avro decoder's refusals
 */

static void test_validation(void **state) {
  (void)state;
  struct lp_activity_event ev;

  make_event(&ev, LP_ACTIVITY_CART_UPDATED);
  ev.cart_value_micros = -5000000;
  assert_invalid(&ev, "cart_value: negative (-5.00)");
  assert_avro_decode_error(&ev, "cart_value: negative (-5.00)");
  ev.cart_value_micros = LP_MAX_MONEY_MICROS + 1;
  assert_invalid(&ev, "cart_value: 9000000000.000001 is out of range (at most "
                      "9000000000.00)");
  ev.cart_value_micros = 0;
  ev.line_items[1].unit_price_micros = -1;
  assert_invalid(&ev, "line_items[1].unit_price: negative (-0.000001)");
  ev.line_items[1].unit_price_micros = 1;
  free(ev.currency);
  ev.currency = NULL;
  assert_invalid(&ev, "currency: required when cart_value is set");
  assert_avro_decode_error(&ev, "currency: required when cart_value is set");
  ev.currency = lp_xstrdup("eur");
  assert_invalid(&ev, "currency: \"eur\" is not a 3-letter ISO 4217 code");
  memcpy(ev.currency, "EUR", 3);
  ev.has_cart_value = 0;
  assert_invalid(&ev, "cart_value: required for cart_updated");
  ev.has_cart_value = 1;
  assert_int_equal(lp_activity_event_validate(&ev, NULL, 0), 0);
  lp_activity_event_clear(&ev);

  make_event(&ev, LP_ACTIVITY_REVIEW_WRITTEN);
  ev.rating = 0;
  assert_invalid(&ev, "rating: 0 is not in 1..5");
  assert_avro_decode_error(&ev, "rating: 0 is not in 1..5");
  ev.rating = 6;
  assert_invalid(&ev, "rating: 6 is not in 1..5");
  assert_avro_decode_error(&ev, "rating: 6 is not in 1..5");
  ev.has_rating = 0;
  assert_invalid(&ev, "rating: required for review_written");
  lp_activity_event_clear(&ev);

  make_event(&ev, LP_ACTIVITY_PAGE_VIEW);
  ev.has_rating = 1;
  ev.rating = 4;
  assert_invalid(&ev, "rating: only a review_written event has a rating "
                      "(kind is page_view)");
  ev.has_rating = 0;
  ev.kind = (enum lp_activity_kind)8;
  assert_invalid(&ev, "kind: unknown value 8");
  ev.kind = LP_ACTIVITY_PRODUCT_VIEW;
  assert_invalid(&ev, "product_id: required for product_view (or sku)");
  ev.sku = lp_xstrdup("RS-42"); /* a sku alone is enough */
  assert_int_equal(lp_activity_event_validate(&ev, NULL, 0), 0);
  ev.kind = LP_ACTIVITY_PAGE_VIEW;
  free(ev.url_path);
  ev.url_path = lp_xstrdup("/bad\xC3\x28");
  assert_invalid(&ev, "url_path: not valid UTF-8");
  free(ev.url_path);
  ev.url_path = lp_xcalloc(1, LP_MAX_STRING_BYTES + 2);
  memset(ev.url_path, '/', LP_MAX_STRING_BYTES + 1);
  assert_invalid(&ev, "url_path: string of 4097 bytes exceeds the limit of "
                      "4096");
  free(ev.url_path);
  ev.url_path = NULL;
  free(ev.shop);
  ev.shop = NULL;
  assert_invalid(&ev, "shop: required field missing");
  ev.shop = lp_xstrdup("");
  assert_invalid(&ev, "shop: must not be empty");
  free(ev.shop);
  ev.shop = lp_xstrdup("s");
  ev.event_time_ms = 0;
  assert_invalid(&ev, "event_time: 0 is outside 1990-01-01..2200-01-01 "
                      "(epoch ms)");
  assert_avro_decode_error(&ev, "event_time: 0 is outside "
                                "1990-01-01..2200-01-01 (epoch ms)");
  lp_activity_event_clear(&ev);
}

static void test_invalid_utf8_encode(void **state) {
  (void)state;
  struct lp_activity_event ev;
  struct lp_buf buf;
  char err[256];
  lp_buf_init(&buf);
  make_event(&ev, LP_ACTIVITY_SOCIAL_FOLLOW);
  free(ev.network);
  ev.network = lp_xstrdup("insta\xFFgram");
  assert_invalid(&ev, "network: not valid UTF-8");
  assert_int_equal(lp_avro_encode_activity(codec, &ev, &buf, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "network: not valid UTF-8");
  assert_int_equal(buf.len, 0); /* out unchanged */
  /* The JSON encoder cannot fail: U+FFFD, and the result is refused by
   * nothing but still names what it was. */
  lp_json_encode_activity(&ev, &buf);
  assert_non_null(
      strstr(lp_buf_cstr(&buf), "\"network\":\"insta\xEF\xBF\xBDgram\""));
  lp_activity_event_clear(&ev);
  lp_buf_free(&buf);
}

static void test_too_many_line_items(void **state) {
  (void)state;
  struct lp_activity_event ev;
  struct lp_buf buf, json;
  char err[256];
  lp_buf_init(&buf);
  lp_buf_init(&json);
  make_event(&ev, LP_ACTIVITY_CHECKOUT_STARTED);
  while (ev.n_line_items < LP_MAX_LINE_ITEMS)
    add_item(&ev, "1", "S", 1, 1000000);
  assert_int_equal(lp_activity_event_validate(&ev, err, sizeof(err)), 0);
  assert_int_equal(lp_avro_encode_activity(codec, &ev, &buf, err, sizeof(err)),
                   0);
  struct lp_activity_event back = {0};
  assert_int_equal(lp_avro_decode_activity(codec, buf.data, buf.len, &back, err,
                                           sizeof(err)),
                   0);
  assert_int_equal(back.n_line_items, LP_MAX_LINE_ITEMS);
  lp_activity_event_clear(&back);

  add_item(&ev, "1", "S", 1, 1000000);
  assert_invalid(&ev, "line_items: 1001 items exceed the limit of 1000");
  lp_buf_reset(&buf);
  assert_int_equal(lp_avro_encode_activity(codec, &ev, &buf, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "line_items: 1001 items exceed the limit of 1000");
  lp_json_encode_activity(&ev, &json);
  assert_int_equal(
      lp_json_decode_activity(json.data, json.len, &back, err, sizeof(err)),
      -1);
  assert_string_equal(err, "line_items: 1001 items exceed the limit of 1000");
  lp_activity_event_clear(&ev);
  lp_buf_free(&buf);
  lp_buf_free(&json);
}

/* Every prefix of a valid record and every single-byte change decodes or
 * fails with a message, never crashes (run under ASan too). */
static void test_hostile_bytes(void **state) {
  (void)state;
  struct lp_activity_event ev;
  struct lp_buf buf;
  char err[256];
  lp_buf_init(&buf);
  make_event(&ev, LP_ACTIVITY_CART_ABANDONED);
  assert_int_equal(lp_avro_encode_activity(codec, &ev, &buf, err, sizeof(err)),
                   0);
  for (size_t n = 0; n < buf.len; n++) {
    struct lp_activity_event out = {0};
    err[0] = '\0';
    assert_int_equal(
        lp_avro_decode_activity(codec, buf.data, n, &out, err, sizeof(err)),
        -1);
    assert_true(err[0] != '\0');
    assert_null(out.event_id);
  }
  uint8_t *copy = lp_xmalloc(buf.len);
  for (size_t i = 10; i < buf.len; i++)
    for (int v = 0; v < 256; v += 17) {
      memcpy(copy, buf.data, buf.len);
      copy[i] = (uint8_t)v;
      struct lp_activity_event out = {0};
      if (lp_avro_decode_activity(codec, copy, buf.len, &out, err,
                                  sizeof(err)) == 0)
        assert_int_equal(lp_activity_event_validate(&out, NULL, 0), 0);
      lp_activity_event_clear(&out);
    }
  free(copy);
  lp_activity_event_clear(&ev);
  lp_buf_free(&buf);
}

/* ------------------------------------------------------------------------
 * A newer writer: an unknown kind reads as page_view, and the fields the
 * writer lacks take their defaults.
 */

static void put_zigzag(struct lp_buf *b, int64_t v) {
  uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  while (z >= 0x80) {
    lp_buf_append_byte(b, (uint8_t)(z | 0x80));
    z >>= 7;
  }
  lp_buf_append_byte(b, (uint8_t)z);
}

static void put_str(struct lp_buf *b, const char *s) {
  put_zigzag(b, (int64_t)strlen(s));
  lp_buf_append_str(b, s);
}

static void test_newer_writer(void **state) {
  (void)state;
  static const char writer[] =
      "{\"type\":\"record\",\"name\":\"ActivityEvent\",\"namespace\":"
      "\"com.loyalty.events\",\"fields\":["
      "{\"name\":\"event_id\",\"type\":\"string\"},"
      "{\"name\":\"shop\",\"type\":\"string\"},"
      "{\"name\":\"customer_id\",\"type\":\"string\"},"
      "{\"name\":\"event_time_ms\",\"type\":\"long\"},"
      "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":"
      "\"ActivityKind\",\"symbols\":[\"page_view\",\"product_view\","
      "\"cart_updated\",\"checkout_started\",\"cart_abandoned\","
      "\"review_written\",\"referral\",\"social_follow\","
      "\"wishlist_added\"],\"default\":\"page_view\"}},"
      "{\"name\":\"rating\",\"type\":[\"null\",\"int\"],\"default\":null},"
      "{\"name\":\"wishlist_id\",\"type\":\"string\"}]}";
  char err[512];
  struct lp_avro_codec *c = lp_avro_codec_new(NULL, err, sizeof(err));
  assert_non_null(c);
  assert_int_equal(lp_avro_codec_add_schema(c, writer, err, sizeof(err)), 0);
  char *pcf =
      lp_avro_schema_canonical_form(writer, strlen(writer), err, sizeof(err));
  assert_non_null(pcf);
  uint64_t fp = lp_avro_crc64(pcf, strlen(pcf));
  free(pcf);
  struct lp_buf b;
  lp_buf_init(&b);
  lp_buf_append_byte(&b, 0xC3);
  lp_buf_append_byte(&b, 0x01);
  for (int i = 0; i < 8; i++)
    lp_buf_append_byte(&b, (uint8_t)(fp >> (8 * i)));
  put_str(&b, "e1");
  put_str(&b, "s");
  put_str(&b, "c");
  put_zigzag(&b, T0);
  put_zigzag(&b, 8); /* wishlist_added */
  put_zigzag(&b, 0); /* rating: null */
  put_str(&b, "w1");
  struct lp_activity_event ev = {0};
  if (lp_avro_decode_activity(c, b.data, b.len, &ev, err, sizeof(err)) != 0)
    fail_msg("%s", err);
  assert_int_equal(ev.kind, LP_ACTIVITY_PAGE_VIEW);
  assert_string_equal(ev.event_id, "e1");
  assert_int_equal(ev.event_time_ms, T0);
  assert_int_equal(ev.has_rating, 0);
  assert_int_equal(ev.has_cart_value, 0);
  assert_null(ev.url_path);
  assert_int_equal(ev.n_line_items, 0);
  lp_activity_event_clear(&ev);
  lp_buf_free(&b);
  lp_avro_codec_destroy(&c);
}

/* ------------------------------------------------------------------------
 * Far-future event times
 */

static void test_event_time_plausible(void **state) {
  (void)state;
  char err[256] = "";
  int64_t now = 1767225600000LL;    /* 2026-01-01T00:00:00.000Z */
  int64_t future = 1924992000000LL; /* 2031-01-01T00:00:00.000Z */
  int64_t hour = 3600000LL;
  assert_int_equal(lp_event_time_plausible(future, now, hour, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "event_time: 2031-01-01T00:00:00.000Z is 5 years "
                           "after now; the limit is max.future.skew (1 hour)");
  assert_int_equal(lp_event_time_plausible(now + 3 * 86400000LL + 5, now,
                                           5 * 60000LL, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "event_time: 2026-01-04T00:00:00.005Z is 3 days "
                           "after now; the limit is max.future.skew (5 "
                           "minutes)");
  assert_int_equal(
      lp_event_time_plausible(now + 1500, now, 0, err, sizeof(err)), -1);
  assert_string_equal(err, "event_time: 2026-01-01T00:00:01.500Z is 1 second "
                           "after now; the limit is max.future.skew (0 ms)");
  /* Within the skew, at it, and any past time: plausible. */
  assert_int_equal(lp_event_time_plausible(now + hour, now, hour, NULL, 0), 0);
  assert_int_equal(lp_event_time_plausible(now + 10, now, hour, NULL, 0), 0);
  assert_int_equal(lp_event_time_plausible(T0, now, 0, NULL, 0), 0);
  assert_int_equal(lp_event_time_plausible(INT64_MIN, now, 0, NULL, 0), 0);
  /* Corrupt times do not overflow. */
  assert_int_equal(
      lp_event_time_plausible(INT64_MAX, now, hour, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "event_time: 9223372036854775807 (epoch ms) is "
                              "292"));
  assert_int_equal(
      lp_event_time_plausible(INT64_MAX, INT64_MIN, 0, err, sizeof(err)), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kind_names),
      cmocka_unit_test(test_header),
      cmocka_unit_test(test_round_trip_every_kind),
      cmocka_unit_test(test_json_form),
      cmocka_unit_test(test_json_errors),
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_invalid_utf8_encode),
      cmocka_unit_test(test_too_many_line_items),
      cmocka_unit_test(test_hostile_bytes),
      cmocka_unit_test(test_newer_writer),
      cmocka_unit_test(test_event_time_plausible),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
