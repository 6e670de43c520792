/*
 * test_json_codec.c — unit tests of json_codec: the Shopify adapter against
 * the payloads of shared reference apis.md section 5, the canonical JSON
 * form (exact bytes and encode -> decode -> encode identity; the dead letter
 * and action result, which are encode only, by their exact bytes), and every
 * class of bad input with the exact error text a dead-letter record gets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "events.h"
#include "json_codec.h"
#include "util.h"

/* apis.md section 5, compact orders/create payload, verbatim. */
static const char order_create_json[] =
    "{\n"
    "  \"id\": 820982911946154508,\n"
    "  \"admin_graphql_api_id\": \"gid://shopify/Order/820982911946154508\",\n"
    "  \"name\": \"#9999\", \"order_number\": 1234,\n"
    "  \"email\": \"jon@example.com\", \"contact_email\": "
    "\"jon@example.com\",\n"
    "  \"created_at\": \"2021-12-31T19:00:00-05:00\", \"updated_at\": "
    "\"2021-12-31T19:00:00-05:00\",\n"
    "  \"processed_at\": \"2021-12-31T19:00:00-05:00\", \"cancelled_at\": "
    "null, \"cancel_reason\": null,\n"
    "  \"currency\": \"USD\", \"presentment_currency\": \"USD\",\n"
    "  \"total_price\": \"404.95\", \"subtotal_price\": \"404.95\", "
    "\"total_discounts\": \"20.00\",\n"
    "  \"total_tax\": \"0.00\", \"total_line_items_price\": \"414.95\",\n"
    "  \"current_total_price\": \"414.95\",\n"
    "  \"total_price_set\": {\"shop_money\": {\"amount\": \"404.95\", "
    "\"currency_code\": \"USD\"},\n"
    "                      \"presentment_money\": {\"amount\": \"404.95\", "
    "\"currency_code\": \"USD\"}},\n"
    "  \"financial_status\": \"paid\", \"fulfillment_status\": null,\n"
    "  \"discount_codes\": [{\"code\": \"TENOFF\", \"amount\": \"10.00\", "
    "\"type\": \"fixed_amount\"}],\n"
    "  \"source_name\": \"web\", \"tags\": \"tag1, tag2\", \"test\": false,\n"
    "  \"buyer_accepts_marketing\": true, \"customer_locale\": \"en\",\n"
    "  \"customer\": {\n"
    "    \"id\": 115310627314723954, \"admin_graphql_api_id\": "
    "\"gid://shopify/Customer/115310627314723954\",\n"
    "    \"email\": \"john@example.com\", \"first_name\": \"John\", "
    "\"last_name\": \"Smith\",\n"
    "    \"phone\": null, \"state\": \"enabled\", \"verified_email\": true, "
    "\"tags\": \"\",\n"
    "    \"currency\": \"USD\", \"created_at\": "
    "\"2021-12-01T10:00:00-05:00\",\n"
    "    \"updated_at\": \"2021-12-31T19:00:00-05:00\"\n"
    "  },\n"
    "  \"line_items\": [\n"
    "    {\"id\": 487817672276298554, \"admin_graphql_api_id\": "
    "\"gid://shopify/LineItem/487817672276298554\",\n"
    "     \"product_id\": 788032119674292922, \"variant_id\": 49148385, "
    "\"sku\": \"SKU2006-001\",\n"
    "     \"title\": \"Aviator sunglasses\", \"name\": \"Aviator sunglasses - "
    "Black\", \"variant_title\": \"Black\",\n"
    "     \"vendor\": \"Acme\", \"quantity\": 1, \"current_quantity\": 1, "
    "\"price\": \"89.99\",\n"
    "     \"total_discount\": \"0.00\", \"gift_card\": false, "
    "\"product_exists\": true,\n"
    "     \"discount_allocations\": [{\"amount\": \"9.00\", "
    "\"discount_application_index\": 0}]}\n"
    "  ],\n"
    "  \"refunds\": []\n"
    "}\n";

/* apis.md section 5, customers/create|update payload, verbatim. */
static const char customer_update_json[] =
    "{\n"
    "  \"id\": 1073339531, \"admin_graphql_api_id\": "
    "\"gid://shopify/Customer/1073339531\",\n"
    "  \"email\": \"steve@example.com\", \"phone\": \"+15142546011\",\n"
    "  \"first_name\": \"Steve\", \"last_name\": \"Lastnameson\", \"state\": "
    "\"enabled\",\n"
    "  \"verified_email\": true, \"tags\": \"vip, newsletter\", \"note\": "
    "null,\n"
    "  \"orders_count\": 3, \"total_spent\": \"199.00\", \"last_order_id\": "
    "450789469,\n"
    "  \"last_order_name\": \"#1001\", \"currency\": \"USD\",\n"
    "  \"created_at\": \"2026-01-09T20:48:28-05:00\", \"updated_at\": "
    "\"2026-01-09T20:48:29-05:00\",\n"
    "  \"email_marketing_consent\": {\"state\": \"subscribed\", "
    "\"opt_in_level\": \"single_opt_in\",\n"
    "                              \"consent_updated_at\": "
    "\"2026-01-09T20:48:28-05:00\"},\n"
    "  \"sms_marketing_consent\": {\"state\": \"not_subscribed\", "
    "\"opt_in_level\": \"single_opt_in\",\n"
    "                            \"consent_updated_at\": null, "
    "\"consent_collected_from\": \"OTHER\"},\n"
    "  \"tax_exempt\": false, \"tax_exemptions\": [],\n"
    "  \"default_address\": {\"country_code\": \"CA\", \"province_code\": "
    "\"ON\", \"zip\": \"123 ABC\"},\n"
    "  \"addresses\": []\n"
    "}\n";

#define SHOP "demo.myshopify.com"
#define STEVE_SHA256                                                           \
  "f7c8e2e4377ca61dbe0a7b4e5d1dba6d99a59a7653d7f0f1cb078cb873e67913"
#define MS_2021_12_31T19_00_00_0500 1640995200000LL
#define MS_2021_12_01T10_00_00_0500 1638370800000LL
#define MS_2026_01_09T20_48_29_0500 1768009709000LL
#define MS_2026_01_09T20_48_28_0500 1768009708000LL

/* Copy of s with the first occurrence of from replaced by to (caller
 * frees); fails the test when from is not there. */
static char *replace(const char *s, const char *from, const char *to) {
  const char *at = strstr(s, from);
  assert_non_null(at);
  size_t head = (size_t)(at - s), flen = strlen(from), tlen = strlen(to);
  size_t tail = strlen(at + flen);
  char *out = lp_xmalloc(head + tlen + tail + 1);
  memcpy(out, s, head);
  memcpy(out + head, to, tlen);
  memcpy(out + head + tlen, at + flen, tail + 1);
  return out;
}

static int is_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

static int decode_order(const char *json, const struct lp_json_hints *h,
                        struct lp_order_event *ev, char *err, size_t errsize) {
  memset(ev, 0, sizeof(*ev));
  err[0] = '\0';
  return lp_json_decode_order(json, strlen(json), h, ev, err, errsize);
}

static int decode_customer(const char *json, const struct lp_json_hints *h,
                           struct lp_customer_event *ev, char *err,
                           size_t errsize) {
  memset(ev, 0, sizeof(*ev));
  err[0] = '\0';
  return lp_json_decode_customer(json, strlen(json), h, ev, err, errsize);
}

/* Decoding must fail with exactly want, leaving the record cleared. */
static void expect_order_error_n(const char *json, size_t len,
                                 const struct lp_json_hints *h,
                                 const char *want) {
  struct lp_order_event ev;
  char err[512] = "";
  memset(&ev, 0, sizeof(ev));
  assert_int_equal(lp_json_decode_order(json, len, h, &ev, err, sizeof(err)),
                   -1);
  assert_string_equal(err, want);
  assert_true(is_zero(&ev, sizeof(ev)));
}

static void expect_order_error(const char *json, const struct lp_json_hints *h,
                               const char *want) {
  expect_order_error_n(json, strlen(json), h, want);
}

static void expect_customer_error(const char *json,
                                  const struct lp_json_hints *h,
                                  const char *want) {
  struct lp_customer_event ev;
  char err[512];
  assert_int_equal(decode_customer(json, h, &ev, err, sizeof(err)), -1);
  assert_string_equal(err, want);
  assert_true(is_zero(&ev, sizeof(ev)));
}

static const struct lp_json_hints create_hints = {
    .shopify_topic = "orders/create", .shop_domain = SHOP};

/* ---------------------------------------------------------------------- */
/* Shopify orders                                                          */
/* ---------------------------------------------------------------------- */

static void test_shopify_order_create_example(void **state) {
  (void)state;
  struct lp_order_event ev;
  char err[256];
  assert_int_equal(
      decode_order(order_create_json, &create_hints, &ev, err, sizeof(err)), 0);
  assert_string_equal(
      ev.event_id,
      "shopify:orders/create:820982911946154508:2021-12-31T19:00:00-05:00");
  assert_string_equal(ev.shop, SHOP);
  assert_string_equal(ev.order_id, "820982911946154508");
  assert_string_equal(ev.customer_id, "115310627314723954");
  assert_int_equal(ev.event_time_ms, MS_2021_12_31T19_00_00_0500);
  assert_int_equal(ev.status, LP_ORDER_CREATED);
  assert_string_equal(ev.currency, "USD");
  assert_int_equal(ev.total_micros, 404950000);
  assert_int_equal(ev.subtotal_micros, 404950000);
  assert_int_equal(ev.discount_micros, 20000000);
  assert_int_equal(ev.tax_micros, 0);
  assert_int_equal(ev.n_discount_codes, 1);
  assert_string_equal(ev.discount_codes[0], "TENOFF");
  assert_int_equal(ev.n_line_items, 1);
  assert_string_equal(ev.line_items[0].product_id, "788032119674292922");
  assert_string_equal(ev.line_items[0].sku, "SKU2006-001");
  assert_string_equal(ev.line_items[0].brand, "Acme");
  assert_null(ev.line_items[0].category);
  assert_int_equal(ev.line_items[0].quantity, 1);
  assert_int_equal(ev.line_items[0].unit_price_micros, 89990000);
  assert_string_equal(ev.source, "shopify");

  /* The canonical form of it, byte for byte. */
  struct lp_buf b;
  lp_buf_init(&b);
  lp_json_encode_order(&ev, &b);
  assert_string_equal(
      lp_buf_cstr(&b),
      "{\"event_id\":\"shopify:orders/create:820982911946154508:2021-12-31T19:"
      "00:00-05:00\",\"shop\":\"demo.myshopify.com\",\"order_id\":"
      "\"820982911946154508\",\"customer_id\":\"115310627314723954\","
      "\"event_time\":\"2022-01-01T00:00:00.000Z\",\"status\":\"created\","
      "\"currency\":\"USD\",\"total\":\"404.95\",\"subtotal\":\"404.95\","
      "\"discount\":\"20.00\",\"tax\":\"0.00\",\"discount_codes\":[\"TENOFF\"],"
      "\"line_items\":[{\"product_id\":\"788032119674292922\",\"sku\":"
      "\"SKU2006-001\",\"category\":null,\"brand\":\"Acme\",\"quantity\":1,"
      "\"unit_price\":\"89.99\"}],\"source\":\"shopify\"}");
  lp_buf_free(&b);
  lp_order_event_clear(&ev);
  assert_true(is_zero(&ev, sizeof(ev)));
}

static void test_shopify_order_event_id_hint(void **state) {
  (void)state;
  struct lp_order_event ev;
  char err[256];
  struct lp_json_hints h = create_hints;
  h.shopify_event_id = "8f1c0a5e-0000-4c1e-9d7a-3b2a1c0d9e8f";
  assert_int_equal(decode_order(order_create_json, &h, &ev, err, sizeof(err)),
                   0);
  assert_string_equal(
      ev.event_id,
      "shopify:orders/create:8f1c0a5e-0000-4c1e-9d7a-3b2a1c0d9e8f");
  lp_order_event_clear(&ev);

  /* An empty header counts as absent: the id is derived. */
  h.shopify_event_id = "";
  assert_int_equal(decode_order(order_create_json, &h, &ev, err, sizeof(err)),
                   0);
  assert_string_equal(
      ev.event_id,
      "shopify:orders/create:820982911946154508:2021-12-31T19:00:00-05:00");
  lp_order_event_clear(&ev);
}

static void test_shopify_order_without_topic_infers(void **state) {
  (void)state;
  struct lp_order_event ev;
  char err[256];
  /* No topic header: financial_status "paid" -> paid, time processed_at,
   * shop from the configured default. */
  struct lp_json_hints h = {.default_shop = "fallback.myshopify.com"};
  assert_int_equal(decode_order(order_create_json, &h, &ev, err, sizeof(err)),
                   0);
  assert_int_equal(ev.status, LP_ORDER_PAID);
  assert_string_equal(ev.shop, "fallback.myshopify.com");
  assert_string_equal(
      ev.event_id,
      "shopify:orders/paid:820982911946154508:2021-12-31T19:00:00-05:00");
  lp_order_event_clear(&ev);

  /* The header's shop domain wins over the default. */
  h.shop_domain = SHOP;
  assert_int_equal(decode_order(order_create_json, &h, &ev, err, sizeof(err)),
                   0);
  assert_string_equal(ev.shop, SHOP);
  lp_order_event_clear(&ev);

  /* financial_status pending -> created. */
  char *pending = replace(order_create_json, "\"financial_status\": \"paid\"",
                          "\"financial_status\": \"pending\"");
  assert_int_equal(decode_order(pending, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.status, LP_ORDER_CREATED);
  assert_string_equal(
      ev.event_id,
      "shopify:orders/create:820982911946154508:2021-12-31T19:00:00-05:00");
  lp_order_event_clear(&ev);
  free(pending);
}

static void test_shopify_order_paid(void **state) {
  (void)state;
  struct lp_order_event ev;
  char err[256];
  char *body = replace(order_create_json,
                       "\"processed_at\": \"2021-12-31T19:00:00-05:00\"",
                       "\"processed_at\": \"2022-01-02T08:30:00Z\"");
  struct lp_json_hints h = {.shopify_topic = "orders/paid",
                            .shop_domain = SHOP};
  assert_int_equal(decode_order(body, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.status, LP_ORDER_PAID);
  assert_int_equal(ev.event_time_ms, 1641112200000LL);
  assert_string_equal(
      ev.event_id,
      "shopify:orders/paid:820982911946154508:2022-01-02T08:30:00Z");
  lp_order_event_clear(&ev);
  free(body);

  /* Without processed_at: updated_at. */
  body = replace(order_create_json,
                 "\"processed_at\": \"2021-12-31T19:00:00-05:00\",", "");
  char *body2 = replace(body, "\"updated_at\": \"2021-12-31T19:00:00-05:00\"",
                        "\"updated_at\": \"2022-01-03T00:00:00Z\"");
  assert_int_equal(decode_order(body2, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.event_time_ms, 1641168000000LL);
  lp_order_event_clear(&ev);
  free(body);
  free(body2);
}

static void test_shopify_order_cancelled(void **state) {
  (void)state;
  struct lp_order_event ev;
  char err[256];
  char *body = replace(order_create_json, "\"cancelled_at\": null",
                       "\"cancelled_at\": \"2022-01-05T12:00:00+01:00\"");
  struct lp_json_hints h = {.shopify_topic = "orders/cancelled",
                            .shop_domain = SHOP};
  assert_int_equal(decode_order(body, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.status, LP_ORDER_CANCELLED);
  assert_int_equal(ev.event_time_ms, 1641380400000LL);
  assert_string_equal(ev.event_id, "shopify:orders/cancelled:"
                                   "820982911946154508:2022-01-05T12:00:00+"
                                   "01:00");
  lp_order_event_clear(&ev);

  /* orders/updated (or no topic) with cancelled_at set: inferred, and the
   * same id as the orders/cancelled delivery, so the two dedupe. */
  h.shopify_topic = "orders/updated";
  assert_int_equal(decode_order(body, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.status, LP_ORDER_CANCELLED);
  assert_string_equal(ev.event_id, "shopify:orders/cancelled:"
                                   "820982911946154508:2022-01-05T12:00:00+"
                                   "01:00");
  lp_order_event_clear(&ev);
  free(body);
}

static void test_shopify_order_category(void **state) {
  (void)state;
  struct lp_order_event ev;
  char err[256];
  char *body = replace(order_create_json, "\"vendor\": \"Acme\"",
                       "\"vendor\": \"Acme\", \"product_type\": "
                       "\"Sunglasses\"");
  assert_int_equal(decode_order(body, &create_hints, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.line_items[0].category, "Sunglasses");
  lp_order_event_clear(&ev);
  free(body);

  body = replace(order_create_json, "\"vendor\": \"Acme\"",
                 "\"vendor\": \"Acme\", \"collections\": [{\"title\": "
                 "\"Summer\"}, {\"title\": \"Sale\"}]");
  assert_int_equal(decode_order(body, &create_hints, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.line_items[0].category, "Summer");
  lp_order_event_clear(&ev);
  free(body);

  /* Custom items: null product_id, empty sku/vendor read as absent. */
  body = replace(order_create_json,
                 "\"product_id\": 788032119674292922, \"variant_id\": "
                 "49148385, \"sku\": \"SKU2006-001\"",
                 "\"product_id\": null, \"variant_id\": null, \"sku\": \"\"");
  char *body2 = replace(body, "\"vendor\": \"Acme\"", "\"vendor\": \"\"");
  assert_int_equal(decode_order(body2, &create_hints, &ev, err, sizeof(err)),
                   0);
  assert_null(ev.line_items[0].product_id);
  assert_null(ev.line_items[0].sku);
  assert_null(ev.line_items[0].brand);
  lp_order_event_clear(&ev);
  free(body);
  free(body2);
}

static void test_shopify_order_guest_checkout(void **state) {
  (void)state;
  const char *guest =
      "{\"id\": 1, \"created_at\": \"2022-01-01T00:00:00Z\", \"currency\": "
      "\"USD\", \"total_price\": \"1.00\", \"line_items\": []}";
  expect_order_error(
      guest, &create_hints,
      "customer: missing (guest checkout orders cannot be attributed)");
  char *nulled = replace(guest, "\"line_items\"",
                         "\"customer\": null, "
                         "\"line_items\"");
  expect_order_error(
      nulled, &create_hints,
      "customer: missing (guest checkout orders cannot be attributed)");
  free(nulled);
}

static void test_shopify_order_topic_and_shop_errors(void **state) {
  (void)state;
  struct lp_json_hints h = {.shopify_topic = "orders/create"};
  expect_order_error(order_create_json, &h,
                     "shop: unknown (no X-Shopify-Shop-Domain header and no "
                     "default shop configured)");
  expect_order_error(order_create_json, NULL,
                     "shop: unknown (no X-Shopify-Shop-Domain header and no "
                     "default shop configured)");
  h.shop_domain = SHOP;
  h.shopify_topic = "customers/update";
  expect_order_error(order_create_json, &h,
                     "x-shopify-topic: \"customers/update\" is not an order "
                     "topic");
  h.shopify_topic = "refunds/create";
  expect_order_error(
      "{\"id\": 5, \"order_id\": 820982911946154508}", &h,
      "x-shopify-topic: refunds/create is not supported here (a Refund body "
      "names no customer; send it through the bridge, which finds the "
      "order's customer)");
  /* A Customer body routed to the order decoder. */
  expect_order_error(customer_update_json, &create_hints,
                     "record: not a Shopify Order (no \"total_price\" or "
                     "\"line_items\")");
  expect_order_error("{\"name\": \"x\"}", &create_hints,
                     "event_id: required field missing (and no \"id\": not "
                     "a Shopify Order either)");
}

/* ---------------------------------------------------------------------- */
/* Shopify customers                                                       */
/* ---------------------------------------------------------------------- */

static void test_shopify_customer_update_example(void **state) {
  (void)state;
  struct lp_customer_event ev;
  char err[256];
  struct lp_json_hints h = {.shopify_topic = "customers/update",
                            .shop_domain = SHOP};
  assert_int_equal(
      decode_customer(customer_update_json, &h, &ev, err, sizeof(err)), 0);
  assert_string_equal(
      ev.event_id,
      "shopify:customers/update:1073339531:2026-01-09T20:48:29-05:00");
  assert_string_equal(ev.shop, SHOP);
  assert_string_equal(ev.customer_id, "1073339531");
  assert_int_equal(ev.event_time_ms, MS_2026_01_09T20_48_29_0500);
  assert_int_equal(ev.kind, LP_CUSTOMER_UPDATED);
  assert_string_equal(ev.email_sha256, STEVE_SHA256);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_SUBSCRIBED);
  assert_int_equal(ev.n_tags, 2);
  assert_string_equal(ev.tags[0], "vip");
  assert_string_equal(ev.tags[1], "newsletter");
  assert_null(ev.birthday);
  assert_int_equal(ev.customer_created_ms, MS_2026_01_09T20_48_28_0500);
  assert_string_equal(ev.source, "shopify");

  struct lp_buf b;
  lp_buf_init(&b);
  lp_json_encode_customer(&ev, &b);
  assert_string_equal(
      lp_buf_cstr(&b),
      "{\"event_id\":\"shopify:customers/update:1073339531:2026-01-09T20:48:"
      "29-05:00\",\"shop\":\"demo.myshopify.com\",\"customer_id\":"
      "\"1073339531\",\"event_time\":\"2026-01-10T01:48:29.000Z\",\"kind\":"
      "\"updated\",\"email_sha256\":\"" STEVE_SHA256 "\","
      "\"marketing_consent\":\"subscribed\",\"tags\":[\"vip\",\"newsletter\"],"
      "\"birthday\":null,\"customer_created\":\"2026-01-10T01:48:28.000Z\","
      "\"source\":\"shopify\"}");
  /* The raw address never reaches the record. */
  assert_null(strstr(lp_buf_cstr(&b), "steve"));
  lp_buf_free(&b);
  lp_customer_event_clear(&ev);

  /* With the event id header. */
  h.shopify_event_id = "evt-42";
  assert_int_equal(
      decode_customer(customer_update_json, &h, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.event_id, "shopify:customers/update:evt-42");
  lp_customer_event_clear(&ev);
}

static void test_shopify_customer_email_normalised(void **state) {
  (void)state;
  struct lp_customer_event ev;
  char err[256];
  struct lp_json_hints h = {.shop_domain = SHOP};
  char *body = replace(customer_update_json, "\"steve@example.com\"",
                       "\"  Steve@Example.COM \\t\"");
  assert_int_equal(decode_customer(body, &h, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.email_sha256, STEVE_SHA256);
  /* No topic: created_at != updated_at -> updated. */
  assert_int_equal(ev.kind, LP_CUSTOMER_UPDATED);
  lp_customer_event_clear(&ev);
  free(body);

  body = replace(customer_update_json, "\"steve@example.com\"", "null");
  assert_int_equal(decode_customer(body, &h, &ev, err, sizeof(err)), 0);
  assert_null(ev.email_sha256);
  lp_customer_event_clear(&ev);
  free(body);
}

static void test_shopify_customer_deprecated_accepts_marketing(void **state) {
  (void)state;
  struct lp_customer_event ev;
  char err[256];
  struct lp_json_hints h = {.default_shop = SHOP};
  /* An old bridge: accepts_marketing only, created == updated, no topic. */
  const char *old_true =
      "{\"id\": 77, \"email\": \"a@b.c\", \"accepts_marketing\": true, "
      "\"tags\": \"\", \"created_at\": \"2022-03-01T10:00:00Z\", "
      "\"updated_at\": \"2022-03-01T10:00:00Z\"}";
  assert_int_equal(decode_customer(old_true, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_SUBSCRIBED);
  assert_int_equal(ev.kind, LP_CUSTOMER_CREATED);
  assert_int_equal(ev.n_tags, 0);
  assert_string_equal(ev.event_id,
                      "shopify:customers/create:77:2022-03-01T10:00:00Z");
  lp_customer_event_clear(&ev);

  char *old_false = replace(old_true, "true", "false");
  assert_int_equal(decode_customer(old_false, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_UNSUBSCRIBED);
  lp_customer_event_clear(&ev);
  free(old_false);

  /* email_marketing_consent wins over the deprecated flag. */
  char *both = replace(old_true, "\"accepts_marketing\": true",
                       "\"accepts_marketing\": true, "
                       "\"email_marketing_consent\": {\"state\": "
                       "\"unsubscribed\"}");
  assert_int_equal(decode_customer(both, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_UNSUBSCRIBED);
  lp_customer_event_clear(&ev);
  free(both);

  char *neither = replace(old_true, "\"accepts_marketing\": true, ", "");
  assert_int_equal(decode_customer(neither, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_UNKNOWN);
  lp_customer_event_clear(&ev);
  free(neither);

  char *not_sub = replace(customer_update_json, "{\"state\": \"subscribed\"",
                          "{\"state\": \"not_subscribed\"");
  assert_int_equal(decode_customer(not_sub, &h, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_UNSUBSCRIBED);
  lp_customer_event_clear(&ev);
  free(not_sub);

  expect_customer_error(
      "{\"id\": 77, \"accepts_marketing\": \"yes\", \"updated_at\": "
      "\"2022-03-01T10:00:00Z\"}",
      &h, "accepts_marketing: expected boolean, got string");
}

static void test_shopify_customer_birthday(void **state) {
  (void)state;
  struct lp_customer_event ev;
  char err[256];
  struct lp_json_hints h = {.shopify_topic = "customers/create",
                            .shop_domain = SHOP};
  char *body =
      replace(customer_update_json, "\"note\": null",
              "\"note\": null, \"metafields\": [{\"namespace\": \"custom\", "
              "\"key\": \"birth_date\", \"value\": \"2001-01-01\"}, "
              "{\"namespace\": \"facts\", \"key\": \"birth_date\", "
              "\"value\": \"1990-05-17\", \"type\": \"date\"}]");
  assert_int_equal(decode_customer(body, &h, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.birthday, "1990-05-17");
  assert_int_equal(ev.kind, LP_CUSTOMER_CREATED);
  lp_customer_event_clear(&ev);
  free(body);

  body = replace(customer_update_json, "\"note\": null",
                 "\"note\": null, \"birthday\": \"--05-17\"");
  assert_int_equal(decode_customer(body, &h, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.birthday, "--05-17");
  lp_customer_event_clear(&ev);
  free(body);

  body = replace(customer_update_json, "\"note\": null",
                 "\"note\": null, \"birthday\": \"17/05/1990\"");
  expect_customer_error(body, &h,
                        "birthday: \"17/05/1990\" is not YYYY-MM-DD or "
                        "--MM-DD");
  free(body);
}

static void test_shopify_customer_errors(void **state) {
  (void)state;
  struct lp_json_hints h = {.shopify_topic = "orders/create",
                            .shop_domain = SHOP};
  expect_customer_error(customer_update_json, &h,
                        "x-shopify-topic: \"orders/create\" is not a "
                        "customer topic");
  h.shopify_topic = "customers/delete";
  expect_customer_error("{\"id\": 1}", &h,
                        "x-shopify-topic: customers/delete carries no "
                        "customer data to decode");
  h.shopify_topic = NULL;
  expect_customer_error(order_create_json, &h,
                        "record: a Shopify Order body, not a Customer");
  expect_customer_error("{\"id\": 1, \"email\": \"x@y.z\"}", &h,
                        "updated_at: required field missing");
  expect_customer_error(
      "{\"id\": 1.5, \"updated_at\": \"2022-03-01T10:00:00Z\"}", &h,
      "id: expected string or integer, got real");
  expect_customer_error(
      "{\"id\": 1, \"tags\": 3, \"updated_at\": \"2022-03-01T10:00:00Z\"}", &h,
      "tags: expected string, got integer");
  expect_customer_error(
      "{\"id\": 1, \"updated_at\": \"2022-03-01T10:00:00Z\", "
      "\"email_marketing_consent\": {\"state\": 1}}",
      &h, "email_marketing_consent.state: expected string, got integer");
  expect_customer_error(
      "{\"id\": 1, \"updated_at\": \"2022-03-01T10:00:00Z\", \"metafields\": "
      "[{\"namespace\": \"facts\", \"key\": \"birth_date\", \"value\": 5}]}",
      &h, "metafields[0].value: expected string, got integer");
  expect_customer_error("{\"id\": 1, \"updated_at\": \"last tuesday\"}", &h,
                        "updated_at: not an RFC 3339 timestamp: \"last "
                        "tuesday\"");
}

/* ---------------------------------------------------------------------- */
/* Canonical JSON                                                          */
/* ---------------------------------------------------------------------- */

static void fill_order(struct lp_order_event *ev) {
  memset(ev, 0, sizeof(*ev));
  ev->event_id = lp_xstrdup("evt-1");
  ev->shop = lp_xstrdup("shop-a");
  ev->order_id = lp_xstrdup("1001");
  ev->customer_id = lp_xstrdup("c-7");
  ev->event_time_ms = 1700000000123LL;
  ev->status = LP_ORDER_REFUNDED;
  ev->currency = lp_xstrdup("EUR");
  ev->total_micros = 12345678;
  ev->subtotal_micros = 10000000;
  ev->discount_micros = 500000;
  ev->tax_micros = 1;
  ev->n_discount_codes = 2;
  ev->discount_codes = lp_xcalloc(2, sizeof(char *));
  ev->discount_codes[0] = lp_xstrdup("A\"B\\C");
  ev->discount_codes[1] = lp_xstrdup("\xc3\xa9t\xc3\xa9\n");
  ev->n_line_items = 2;
  ev->line_items = lp_xcalloc(2, sizeof(*ev->line_items));
  ev->line_items[0].product_id = lp_xstrdup("p1");
  ev->line_items[0].sku = lp_xstrdup("s1");
  ev->line_items[0].category = lp_xstrdup("Shoes");
  ev->line_items[0].brand = lp_xstrdup("Acme");
  ev->line_items[0].quantity = 3;
  ev->line_items[0].unit_price_micros = 1990000;
  ev->line_items[1].quantity = 1;
  ev->line_items[1].unit_price_micros = 0;
  ev->source = lp_xstrdup("import");
}

static void test_canonical_order_round_trip(void **state) {
  (void)state;
  struct lp_order_event ev, back;
  struct lp_buf b1, b2;
  char err[256];
  fill_order(&ev);
  lp_buf_init(&b1);
  lp_buf_init(&b2);
  lp_json_encode_order(&ev, &b1);
  assert_string_equal(
      lp_buf_cstr(&b1),
      "{\"event_id\":\"evt-1\",\"shop\":\"shop-a\",\"order_id\":\"1001\","
      "\"customer_id\":\"c-7\",\"event_time\":\"2023-11-14T22:13:20.123Z\","
      "\"status\":\"refunded\",\"currency\":\"EUR\",\"total\":\"12.345678\","
      "\"subtotal\":\"10.00\",\"discount\":\"0.50\",\"tax\":\"0.000001\","
      "\"discount_codes\":[\"A\\\"B\\\\C\",\"\xc3\xa9t\xc3\xa9\\n\"],"
      "\"line_items\":[{\"product_id\":\"p1\",\"sku\":\"s1\",\"category\":"
      "\"Shoes\",\"brand\":\"Acme\",\"quantity\":3,\"unit_price\":\"1.99\"},"
      "{\"product_id\":null,\"sku\":null,\"category\":null,\"brand\":null,"
      "\"quantity\":1,\"unit_price\":\"0.00\"}],\"source\":\"import\"}");
  memset(&back, 0, sizeof(back));
  assert_int_equal(
      lp_json_decode_order(b1.data, b1.len, NULL, &back, err, sizeof(err)), 0);
  assert_string_equal(back.discount_codes[0], "A\"B\\C");
  assert_int_equal(back.tax_micros, 1);
  lp_json_encode_order(&back, &b2);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  lp_order_event_clear(&back);

  /* Hints never change a canonical record. */
  assert_int_equal(lp_json_decode_order(b1.data, b1.len, &create_hints, &back,
                                        err, sizeof(err)),
                   0);
  assert_string_equal(back.shop, "shop-a");
  assert_string_equal(back.event_id, "evt-1");
  lp_order_event_clear(&back);
  lp_order_event_clear(&ev);
  lp_buf_free(&b1);
  lp_buf_free(&b2);
}

static void test_canonical_order_integer_forms(void **state) {
  (void)state;
  struct lp_order_event ev;
  char err[256];
  const char *json =
      "{\"event_id\":\"e\",\"shop\":\"s\",\"order_id\":42,\"customer_id\":"
      "9007199254740993,\"event_time_ms\":1700000000123,\"status\":\"paid\","
      "\"currency\":\"USD\",\"total_micros\":404950000,\"line_items\":[{"
      "\"quantity\":2,\"unit_price_micros\":5}]}";
  assert_int_equal(decode_order(json, NULL, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.order_id, "42");
  /* 2^53 + 1: exact, never through a double. */
  assert_string_equal(ev.customer_id, "9007199254740993");
  assert_int_equal(ev.event_time_ms, 1700000000123LL);
  assert_int_equal(ev.total_micros, 404950000);
  assert_int_equal(ev.subtotal_micros, 0);
  assert_int_equal(ev.line_items[0].unit_price_micros, 5);
  assert_null(ev.source);
  lp_order_event_clear(&ev);
}

static void test_canonical_customer_round_trip(void **state) {
  (void)state;
  struct lp_customer_event ev, back;
  struct lp_buf b1, b2;
  char err[256];
  memset(&ev, 0, sizeof(ev));
  ev.event_id = lp_xstrdup("evt-c");
  ev.shop = lp_xstrdup("shop-a");
  ev.customer_id = lp_xstrdup("c-7");
  ev.event_time_ms = 1700000000000LL;
  ev.kind = LP_CUSTOMER_CREATED;
  ev.email_sha256 = lp_xstrdup(STEVE_SHA256);
  ev.marketing_consent = LP_CONSENT_UNSUBSCRIBED;
  ev.n_tags = 1;
  ev.tags = lp_xcalloc(1, sizeof(char *));
  ev.tags[0] = lp_xstrdup("vip");
  ev.birthday = lp_xstrdup("--02-29");
  lp_buf_init(&b1);
  lp_buf_init(&b2);
  lp_json_encode_customer(&ev, &b1);
  assert_string_equal(
      lp_buf_cstr(&b1),
      "{\"event_id\":\"evt-c\",\"shop\":\"shop-a\",\"customer_id\":\"c-7\","
      "\"event_time\":\"2023-11-14T22:13:20.000Z\",\"kind\":\"created\","
      "\"email_sha256\":\"" STEVE_SHA256 "\",\"marketing_consent\":"
      "\"unsubscribed\",\"tags\":[\"vip\"],\"birthday\":\"--02-29\","
      "\"customer_created\":null,\"source\":null}");
  memset(&back, 0, sizeof(back));
  assert_int_equal(
      lp_json_decode_customer(b1.data, b1.len, NULL, &back, err, sizeof(err)),
      0);
  lp_json_encode_customer(&back, &b2);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  lp_customer_event_clear(&back);

  /* With every optional field set as well. */
  ev.customer_created_ms = 1600000000000LL;
  ev.source = lp_xstrdup("shopify");
  lp_buf_reset(&b1);
  lp_buf_reset(&b2);
  lp_json_encode_customer(&ev, &b1);
  assert_int_equal(
      lp_json_decode_customer(b1.data, b1.len, NULL, &back, err, sizeof(err)),
      0);
  assert_int_equal(back.customer_created_ms, 1600000000000LL);
  lp_json_encode_customer(&back, &b2);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  lp_customer_event_clear(&back);
  lp_customer_event_clear(&ev);
  lp_buf_free(&b1);
  lp_buf_free(&b2);
}

static void fill_decision(struct lp_reward_decision *d) {
  memset(d, 0, sizeof(*d));
  d->decision_id = lp_xstrdup("0123456789abcdef0123456789abcdef");
  d->shop = lp_xstrdup("shop-a");
  d->customer_id = lp_xstrdup("c-7");
  d->trigger_event_id = lp_xstrdup("evt-1");
  d->trigger_kind = lp_xstrdup("order");
  d->rule_id = lp_xstrdup("big-spender");
  d->rule_version = 3;
  d->action.kind = LP_ACTION_DISCOUNT_CODE;
  d->action.discount_percent = 15;
  d->action.discount_amount_micros = 0;
  d->action.template_id = lp_xstrdup("tpl-thanks");
  d->action.channel = lp_xstrdup("email");
  d->action.brand = lp_xstrdup("Acme");
  d->estimated_cost_micros = 7500000;
  d->currency = lp_xstrdup("USD");
  d->event_time_ms = 1700000000123LL;
  d->approval = LP_APPROVAL_RECOMMENDED;
  d->explanation.rule_id = lp_xstrdup("big-spender");
  d->explanation.rule_version = 3;
  d->explanation.summary = lp_xstrdup("lifetime spend over 500");
  d->explanation.n_features = 3;
  d->explanation.features = lp_xcalloc(3, sizeof(struct lp_feature));
  /* Deliberately not alphabetical: the rule's order must survive. */
  d->explanation.features[0].name = lp_xstrdup("lifetime_spend");
  d->explanation.features[0].value = lp_xstrdup("612.40");
  d->explanation.features[1].name = lp_xstrdup("order_count");
  d->explanation.features[1].value = lp_xstrdup("7");
  d->explanation.features[2].name = lp_xstrdup("days_since_last_order");
  d->explanation.features[2].value = lp_xstrdup("12");
}

static void test_canonical_decision_round_trip(void **state) {
  (void)state;
  struct lp_reward_decision d, back;
  struct lp_buf b1, b2;
  char err[256];
  fill_decision(&d);
  lp_buf_init(&b1);
  lp_buf_init(&b2);
  lp_json_encode_decision(&d, &b1);
  assert_string_equal(
      lp_buf_cstr(&b1),
      "{\"decision_id\":\"0123456789abcdef0123456789abcdef\",\"shop\":"
      "\"shop-a\",\"customer_id\":\"c-7\",\"trigger_event_id\":\"evt-1\","
      "\"trigger_kind\":\"order\",\"rule_id\":\"big-spender\","
      "\"rule_version\":3,\"action\":{\"kind\":\"discount_code\",\"points\":0,"
      "\"reward_id\":null,\"discount_percent\":15,\"discount_amount\":"
      "\"0.00\",\"tier\":null,\"template_id\":\"tpl-thanks\",\"channel\":"
      "\"email\",\"brand\":\"Acme\",\"category\":null,\"attributes\":[]},"
      "\"estimated_cost\":"
      "\"7.50\",\"currency\":\"USD\",\"event_time\":\"2023-11-14T22:13:20."
      "123Z\",\"approval\":\"recommended\",\"explanation\":{\"rule_id\":"
      "\"big-spender\",\"rule_version\":3,\"model_version\":null,\"summary\":"
      "\"lifetime spend over 500\",\"features\":[{\"name\":\"lifetime_spend\","
      "\"value\":\"612.40\"},{\"name\":\"order_count\",\"value\":\"7\"},{"
      "\"name\":\"days_since_last_order\",\"value\":\"12\"}]}}");
  memset(&back, 0, sizeof(back));
  assert_int_equal(
      lp_json_decode_decision(b1.data, b1.len, &back, err, sizeof(err)), 0);
  assert_int_equal(back.explanation.n_features, 3);
  assert_string_equal(back.explanation.features[2].name,
                      "days_since_last_order");
  lp_json_encode_decision(&back, &b2);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  lp_reward_decision_clear(&back);

  /* Errors name the nested field. */
  char *bad = replace(lp_buf_cstr(&b1), "\"kind\":\"discount_code\"",
                      "\"kind\":\"cash\"");
  assert_int_equal(
      lp_json_decode_decision(bad, strlen(bad), &back, err, sizeof(err)), -1);
  assert_string_equal(err, "action.kind: unknown value \"cash\" (expected "
                           "points, reward, discount_code, tier_change, "
                           "message, score_sync)");
  assert_true(is_zero(&back, sizeof(back)));
  free(bad);
  bad = replace(lp_buf_cstr(&b1), "\"value\":\"7\"", "\"value\":7");
  assert_int_equal(
      lp_json_decode_decision(bad, strlen(bad), &back, err, sizeof(err)), -1);
  assert_string_equal(err, "explanation.features[1].value: expected string, "
                           "got integer");
  free(bad);
  bad = replace(lp_buf_cstr(&b1), "\"rule_id\":\"big-spender\",", "");
  assert_int_equal(
      lp_json_decode_decision(bad, strlen(bad), &back, err, sizeof(err)), -1);
  assert_string_equal(err, "rule_id: required field missing");
  free(bad);

  lp_reward_decision_clear(&d);
  lp_buf_free(&b1);
  lp_buf_free(&b2);
}

/* A score_sync decision: three profile attributes, one without a value. */
static void fill_score_sync(struct lp_reward_decision *d) {
  memset(d, 0, sizeof(*d));
  d->decision_id = lp_xstrdup("00000000000000000000000000000000");
  d->shop = lp_xstrdup("s");
  d->customer_id = lp_xstrdup("c");
  d->trigger_event_id = lp_xstrdup("e");
  d->rule_id = lp_xstrdup("sync");
  d->action.kind = LP_ACTION_SCORE_SYNC;
  d->action.n_attributes = 3;
  d->action.attributes = lp_xcalloc(3, sizeof(struct lp_feature));
  d->action.attributes[0].name = lp_xstrdup("loyalty_clv_12m");
  d->action.attributes[0].value = lp_xstrdup("612.40");
  d->action.attributes[1].name = lp_xstrdup("loyalty_next_purchase");
  d->action.attributes[2].name = lp_xstrdup("loyalty_segment");
  d->action.attributes[2].value = lp_xstrdup("at_risk_high_value");
  d->event_time_ms = 1700000000123LL;
}

static const char score_sync_json[] =
    "{\"decision_id\":\"00000000000000000000000000000000\",\"shop\":\"s\","
    "\"customer_id\":\"c\",\"trigger_event_id\":\"e\",\"trigger_kind\":null,"
    "\"rule_id\":\"sync\",\"rule_version\":0,\"action\":{\"kind\":"
    "\"score_sync\",\"points\":0,\"reward_id\":null,\"discount_percent\":0,"
    "\"discount_amount\":\"0.00\",\"tier\":null,\"template_id\":null,"
    "\"channel\":null,\"brand\":null,\"category\":null,\"attributes\":[{"
    "\"name\":\"loyalty_clv_12m\",\"value\":\"612.40\"},{\"name\":"
    "\"loyalty_next_purchase\",\"value\":null},{\"name\":\"loyalty_segment\","
    "\"value\":\"at_risk_high_value\"}]},\"estimated_cost\":\"0.00\","
    "\"currency\":null,\"event_time\":\"2023-11-14T22:13:20.123Z\","
    "\"approval\":\"none\",\"explanation\":{\"rule_id\":null,\"rule_version\":"
    "0,\"model_version\":null,\"summary\":null,\"features\":[]}}";

/* Decoding score_sync_json with `from` replaced by `to` fails with want. */
static void expect_sync_error(const char *from, const char *to,
                              const char *want) {
  struct lp_reward_decision d;
  char err[256] = "";
  char *bad = replace(score_sync_json, from, to);
  memset(&d, 0, sizeof(d));
  assert_int_equal(
      lp_json_decode_decision(bad, strlen(bad), &d, err, sizeof(err)), -1);
  assert_string_equal(err, want);
  assert_true(is_zero(&d, sizeof(d)));
  free(bad);
}

/* score_sync: exact bytes, encode -> decode -> encode identity, the
 * attributes' order and null value kept; attributes optional on decode;
 * bad attributes named by path. */
static void test_canonical_score_sync(void **state) {
  (void)state;
  struct lp_reward_decision d, back;
  struct lp_buf b1, b2;
  char err[256];
  fill_score_sync(&d);
  lp_buf_init(&b1);
  lp_buf_init(&b2);
  lp_json_encode_decision(&d, &b1);
  assert_string_equal(lp_buf_cstr(&b1), score_sync_json);
  memset(&back, 0, sizeof(back));
  assert_int_equal(
      lp_json_decode_decision(b1.data, b1.len, &back, err, sizeof(err)), 0);
  assert_int_equal(back.action.kind, LP_ACTION_SCORE_SYNC);
  assert_int_equal(back.action.n_attributes, 3);
  assert_string_equal(back.action.attributes[0].name, "loyalty_clv_12m");
  assert_string_equal(back.action.attributes[0].value, "612.40");
  assert_string_equal(back.action.attributes[1].name, "loyalty_next_purchase");
  assert_null(back.action.attributes[1].value);
  assert_string_equal(back.action.attributes[2].value, "at_risk_high_value");
  lp_json_encode_decision(&back, &b2);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  lp_reward_decision_clear(&back);
  lp_reward_decision_clear(&d);

  /* Absent, null or [] all read as no attributes (a producer from before
   * the field); each is written back as []. */
  static const char *const empties[] = {"", ",\"attributes\":null",
                                        ",\"attributes\":[]"};
  const char *from = strstr(score_sync_json, ",\"attributes\":[");
  const char *to = strstr(from, "]}");
  assert_non_null(to);
  for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
    char *cut = lp_xasprintf("%.*s%s%s", (int)(from - score_sync_json),
                             score_sync_json, empties[i], to + 1);
    memset(&back, 0, sizeof(back));
    assert_int_equal(
        lp_json_decode_decision(cut, strlen(cut), &back, err, sizeof(err)), 0);
    assert_int_equal(back.action.n_attributes, 0);
    assert_null(back.action.attributes);
    lp_buf_reset(&b2);
    lp_json_encode_decision(&back, &b2);
    assert_non_null(
        strstr(lp_buf_cstr(&b2), "\"category\":null,\"attributes\":[]},"));
    lp_reward_decision_clear(&back);
    free(cut);
  }

  expect_sync_error("\"attributes\":[{", "\"attributes\":{\"x\":1},\"y\":[{",
                    "action.attributes: expected array, got object");
  expect_sync_error("{\"name\":\"loyalty_next_purchase\",\"value\":null}",
                    "\"loyalty_next_purchase\"",
                    "action.attributes[1]: expected object, got string");
  expect_sync_error("\"name\":\"loyalty_next_purchase\",", "",
                    "action.attributes[1].name: required field missing");
  expect_sync_error("\"name\":\"loyalty_next_purchase\"", "\"name\":null",
                    "action.attributes[1].name: required field is null");
  expect_sync_error("\"name\":\"loyalty_segment\"", "\"name\":7",
                    "action.attributes[2].name: expected string, got integer");
  expect_sync_error("\"value\":\"612.40\"", "\"value\":612.40",
                    "action.attributes[0].value: expected string, got real");
  expect_sync_error("\"kind\":\"score_sync\"", "\"kind\":\"scores\"",
                    "action.kind: unknown value \"scores\" (expected points, "
                    "reward, discount_code, tier_change, message, "
                    "score_sync)");

  /* At most 1000 attributes (the Avro codec's limit for any array). */
  for (int n = 1000; n <= 1001; n++) {
    struct lp_buf many;
    lp_buf_init(&many);
    lp_buf_append(&many, score_sync_json, (size_t)(from - score_sync_json));
    lp_buf_append_str(&many, ",\"attributes\":[");
    for (int i = 0; i < n; i++)
      lp_buf_appendf(&many, "%s{\"name\":\"a%d\"}", i ? "," : "", i);
    lp_buf_append_str(&many, to);
    memset(&back, 0, sizeof(back));
    int rc =
        lp_json_decode_decision(many.data, many.len, &back, err, sizeof(err));
    if (n == 1000) {
      assert_int_equal(rc, 0);
      assert_int_equal(back.action.n_attributes, 1000);
      assert_string_equal(back.action.attributes[999].name, "a999");
      assert_null(back.action.attributes[999].value);
      lp_reward_decision_clear(&back);
    } else {
      assert_int_equal(rc, -1);
      assert_string_equal(err, "action.attributes: 1001 attributes exceed the "
                               "limit of 1000");
      assert_true(is_zero(&back, sizeof(back)));
    }
    lp_buf_free(&many);
  }
  lp_buf_free(&b1);
  lp_buf_free(&b2);
}

static void test_dead_letter_encode(void **state) {
  (void)state;
  struct lp_dead_letter dl;
  struct lp_buf b;
  memset(&dl, 0, sizeof(dl));
  dl.source_topic = lp_xstrdup("shopify.orders");
  dl.source_partition = 2;
  dl.source_offset = 12345;
  dl.original = lp_xmalloc(8);
  memcpy(dl.original, "{\"id\":\xff}", 8);
  dl.original_len = 8;
  dl.processor = lp_xstrdup("order-processor");
  dl.reason = lp_xstrdup("json: line 1 column 7: invalid UTF-8");
  dl.time_ms = 1700000000000LL;
  lp_buf_init(&b);
  lp_json_encode_dead_letter(&dl, &b);
  assert_string_equal(
      lp_buf_cstr(&b),
      "{\"source_topic\":\"shopify.orders\",\"source_partition\":2,"
      "\"source_offset\":12345,\"source_key_base64\":null,"
      "\"original_base64\":\"eyJpZCI6/30=\",\"processor\":\"order-processor\","
      "\"reason\":\"json: line 1 column 7: invalid UTF-8\",\"field\":null,"
      "\"time\":\"2023-11-14T22:13:20.000Z\"}");
  lp_buf_reset(&b);
  dl.source_key = lp_xmalloc(7);
  memcpy(dl.source_key, "shop:42", 7);
  dl.source_key_len = 7;
  dl.field = lp_xstrdup("bad \xff byte");
  lp_json_encode_dead_letter(&dl, &b);
  assert_non_null(
      strstr(lp_buf_cstr(&b), "\"source_key_base64\":\"c2hvcDo0Mg==\""));
  /* Invalid UTF-8 in a record still gives valid JSON (U+FFFD). */
  assert_non_null(
      strstr(lp_buf_cstr(&b), "\"field\":\"bad \xef\xbf\xbd byte\""));
  lp_buf_free(&b);
  lp_dead_letter_clear(&dl);
}

static void test_action_result_encode(void **state) {
  (void)state;
  struct lp_action_result r;
  struct lp_buf b;
  memset(&r, 0, sizeof(r));
  r.decision_id = lp_xstrdup("0123456789abcdef0123456789abcdef");
  r.shop = lp_xstrdup("shop-a");
  r.customer_id = lp_xstrdup("c-7");
  r.trigger_event_id = lp_xstrdup("evt-1");
  r.rule_id = lp_xstrdup("big-spender");
  r.rule_version = 3;
  r.model_version = lp_xstrdup("bgnbd-2023-11");
  r.action_kind = LP_ACTION_POINTS;
  r.platform = lp_xstrdup("smile");
  r.outcome = LP_OUTCOME_ISSUED;
  r.guardrail = lp_xstrdup("ok");
  r.request_summary = lp_xstrdup("POST /v1/points_transactions points=100");
  r.http_status = 201;
  r.platform_reference = lp_xstrdup("pt_8812");
  r.attempts = 2;
  r.latency_ms = 1234;
  r.reason = lp_xstrdup("retried after \"HTTP 503\"");
  r.actor = lp_xstrdup("ops:alice");
  r.event_time_ms = 1700000000123LL;
  r.time_ms = 1700000005000LL;
  lp_buf_init(&b);
  lp_json_encode_action_result(&r, &b);
  assert_string_equal(
      lp_buf_cstr(&b),
      "{\"decision_id\":\"0123456789abcdef0123456789abcdef\",\"shop\":"
      "\"shop-a\",\"customer_id\":\"c-7\",\"trigger_event_id\":\"evt-1\","
      "\"rule_id\":\"big-spender\",\"rule_version\":3,\"model_version\":"
      "\"bgnbd-2023-11\",\"action_kind\":\"points\",\"platform\":\"smile\","
      "\"outcome\":\"issued\",\"guardrail\":\"ok\",\"request_summary\":"
      "\"POST /v1/points_transactions points=100\",\"http_status\":201,"
      "\"platform_reference\":\"pt_8812\",\"attempts\":2,\"latency_ms\":1234,"
      "\"reason\":\"retried after \\\"HTTP 503\\\"\",\"actor\":\"ops:alice\","
      "\"event_time\":\"2023-11-14T22:13:20.123Z\",\"time\":"
      "\"2023-11-14T22:13:25.000Z\",\"copy_source\":null,\"copy_model\":null,"
      "\"copy_prompt\":null,\"copy_output\":null,\"copy_note\":null}");
  lp_action_result_clear(&r);

  /* Every optional field absent: null, numbers 0; each outcome by name. */
  r.decision_id = lp_xstrdup("00000000000000000000000000000000");
  r.shop = lp_xstrdup("s");
  r.customer_id = lp_xstrdup("c");
  r.trigger_event_id = lp_xstrdup("e");
  r.rule_id = lp_xstrdup("r");
  r.action_kind = LP_ACTION_TIER_CHANGE;
  r.outcome = LP_OUTCOME_PENDING_APPROVAL;
  r.event_time_ms = 1700000000000LL;
  r.time_ms = 1700000000000LL;
  lp_buf_reset(&b);
  lp_json_encode_action_result(&r, &b);
  assert_string_equal(
      lp_buf_cstr(&b),
      "{\"decision_id\":\"00000000000000000000000000000000\",\"shop\":\"s\","
      "\"customer_id\":\"c\",\"trigger_event_id\":\"e\",\"rule_id\":\"r\","
      "\"rule_version\":0,\"model_version\":null,\"action_kind\":"
      "\"tier_change\",\"platform\":null,\"outcome\":\"pending_approval\","
      "\"guardrail\":null,\"request_summary\":null,\"http_status\":0,"
      "\"platform_reference\":null,\"attempts\":0,\"latency_ms\":0,"
      "\"reason\":null,\"actor\":null,\"event_time\":"
      "\"2023-11-14T22:13:20.000Z\",\"time\":\"2023-11-14T22:13:20.000Z\","
      "\"copy_source\":null,\"copy_model\":null,\"copy_prompt\":null,"
      "\"copy_output\":null,\"copy_note\":null}");
  static const char *const names[LP_OUTCOME_COUNT] = {
      "issued",  "already_done", "pending_approval", "rejected", "expired",
      "blocked", "failed"};
  for (int o = 0; o < LP_OUTCOME_COUNT; o++) {
    enum lp_action_outcome parsed;
    assert_string_equal(lp_action_outcome_name((enum lp_action_outcome)o),
                        names[o]);
    assert_int_equal(lp_action_outcome_parse(names[o], &parsed), 0);
    assert_int_equal(parsed, o);
    r.outcome = (enum lp_action_outcome)o;
    char want[64];
    snprintf(want, sizeof(want), "\"outcome\":\"%s\"", names[o]);
    lp_buf_reset(&b);
    lp_json_encode_action_result(&r, &b);
    assert_non_null(strstr(lp_buf_cstr(&b), want));
  }
  enum lp_action_outcome parsed = LP_OUTCOME_ISSUED;
  assert_int_equal(lp_action_outcome_parse("partially_issued", &parsed), -1);
  assert_int_equal(lp_action_outcome_parse(NULL, &parsed), -1);
  assert_int_equal(parsed, LP_OUTCOME_ISSUED);
  assert_null(lp_action_outcome_name((enum lp_action_outcome)LP_OUTCOME_COUNT));
  /* Invalid UTF-8 in a record still gives valid JSON (U+FFFD). */
  r.reason = lp_xstrdup("bad \xff byte");
  lp_buf_reset(&b);
  lp_json_encode_action_result(&r, &b);
  assert_non_null(
      strstr(lp_buf_cstr(&b), "\"reason\":\"bad \xef\xbf\xbd byte\""));
  lp_buf_free(&b);
  lp_action_result_clear(&r);
  assert_true(is_zero(&r, sizeof(r)));
}

/* The generated message copy: the five keys after "time", in schema
 * order, null when absent; a long multi-line prompt with quotes, a tab and
 * text beyond ASCII is written escaped and reads back (Jansson) as exactly
 * the record's text, so a record rebuilt from the JSON writes the same
 * bytes. */
static void test_action_result_copy_encode(void **state) {
  (void)state;
  static const char prompt[] =
      "Write one short message for a loyalty member.\n"
      "shop: shop-a\n"
      "action: reward \"Café crème offert\" (rw-1)\n"
      "tier: Gold → Platinum\n"
      "lifetime_spend: 612.40 EUR\n"
      "order_count: 7\n"
      "tone:\twarm, no emoji ☕, at most 160 characters\n"
      "language: de — „Grüße“ is fine\n";
  static const char output[] =
      "Danke für Ihre Treue! Ihr Café crème geht auf uns ☕\n"
      "Jetzt 20 % sparen: https://shop-a.example/r/rw-1";
  static const char *const keys[5] = {
      "copy_source", "copy_model", "copy_prompt", "copy_output", "copy_note"};
  struct lp_action_result r;
  struct lp_buf b, again;
  memset(&r, 0, sizeof(r));
  r.decision_id = lp_xstrdup("00000000000000000000000000000000");
  r.shop = lp_xstrdup("s");
  r.customer_id = lp_xstrdup("c");
  r.trigger_event_id = lp_xstrdup("e");
  r.rule_id = lp_xstrdup("r");
  r.action_kind = LP_ACTION_MESSAGE;
  r.platform = lp_xstrdup("klaviyo");
  r.outcome = LP_OUTCOME_ISSUED;
  r.event_time_ms = 1700000000000LL;
  r.time_ms = 1700000000000LL;
  r.copy_source = lp_xstrdup("template");
  r.copy_model = lp_xstrdup("copy-model-7b");
  r.copy_prompt = lp_xstrdup(prompt);
  r.copy_output = lp_xstrdup(output);
  r.copy_note = lp_xstrdup("guardrail: link not in allow-list");
  lp_buf_init(&b);
  lp_buf_init(&again);
  lp_json_encode_action_result(&r, &b);
  static const char want_tail[] =
      "\"time\":\"2023-11-14T22:13:20.000Z\",\"copy_source\":\"template\","
      "\"copy_model\":\"copy-model-7b\",\"copy_prompt\":\"Write one short "
      "message for a loyalty member.\\nshop: shop-a\\naction: reward "
      "\\\"Café crème offert\\\" (rw-1)\\ntier: Gold → Platinum\\n"
      "lifetime_spend: 612.40 EUR\\norder_count: 7\\ntone:\\twarm, no emoji "
      "☕, at most 160 characters\\nlanguage: de — „Grüße“ is fine\\n\","
      "\"copy_output\":\"Danke für Ihre Treue! Ihr Café crème geht auf uns "
      "☕\\nJetzt 20 % sparen: https://shop-a.example/r/rw-1\","
      "\"copy_note\":\"guardrail: link not in allow-list\"}";
  const char *got = lp_buf_cstr(&b);
  assert_true(b.len > strlen(want_tail));
  assert_string_equal(got + b.len - strlen(want_tail), want_tail);
  assert_null(strchr(got, '\n')); /* one line */
  /* Everything before "time" is as without the copy fields. */
  struct lp_action_result bare = r;
  bare.copy_source = bare.copy_model = bare.copy_prompt = NULL;
  bare.copy_output = bare.copy_note = NULL;
  lp_json_encode_action_result(&bare, &again);
  size_t head = b.len - strlen(want_tail);
  assert_memory_equal(lp_buf_cstr(&again), got, head);
  lp_buf_reset(&again);

  /* Read back: the same text, and the keys in order after "time". */
  for (int generated = 0; generated < 2; generated++) {
    if (generated) { /* the model's text was sent: no note */
      free(r.copy_source);
      r.copy_source = lp_xstrdup("generated");
      free(r.copy_note);
      r.copy_note = NULL;
      lp_buf_reset(&b);
      lp_json_encode_action_result(&r, &b);
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)b.data, b.len, 0, &jerr);
    if (!root)
      fail_msg("json: %s", jerr.text);
    const char *want[5] = {r.copy_source, r.copy_model, r.copy_prompt,
                           r.copy_output, r.copy_note};
    char *back[5];
    for (int k = 0; k < 5; k++) {
      json_t *v = json_object_get(root, keys[k]);
      assert_non_null(v); /* written even when null */
      if (!want[k]) {
        assert_true(json_is_null(v));
        back[k] = NULL;
        continue;
      }
      assert_true(json_is_string(v));
      assert_int_equal(json_string_length(v), strlen(want[k]));
      assert_string_equal(json_string_value(v), want[k]);
      back[k] = lp_xstrdup(json_string_value(v));
    }
    /* Key order: time, then the five. */
    got = lp_buf_cstr(&b);
    const char *t = strstr(got, "\"time\":");
    assert_non_null(t);
    for (int k = 0; k < 5; k++) {
      char key[32];
      snprintf(key, sizeof(key), "\"%s\":", keys[k]);
      const char *at = strstr(got, key);
      assert_non_null(at);
      assert_true(at > t);
      t = at;
    }
    json_decref(root);
    struct lp_action_result rebuilt = bare;
    rebuilt.copy_source = back[0];
    rebuilt.copy_model = back[1];
    rebuilt.copy_prompt = back[2];
    rebuilt.copy_output = back[3];
    rebuilt.copy_note = back[4];
    lp_buf_reset(&again);
    lp_json_encode_action_result(&rebuilt, &again);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    for (int k = 0; k < 5; k++)
      free(back[k]);
  }
  /* Invalid UTF-8 in a model's answer still gives valid JSON (U+FFFD). */
  free(r.copy_output);
  r.copy_output = lp_xstrdup("bad \xff byte");
  lp_buf_reset(&b);
  lp_json_encode_action_result(&r, &b);
  assert_non_null(
      strstr(lp_buf_cstr(&b), "\"copy_output\":\"bad \xef\xbf\xbd byte\""));
  lp_buf_free(&b);
  lp_buf_free(&again);
  lp_action_result_clear(&r);
}

/* ---------------------------------------------------------------------- */
/* Bad input                                                               */
/* ---------------------------------------------------------------------- */

static void test_error_json_syntax(void **state) {
  (void)state;
  expect_order_error("{\"event_id\": }", NULL,
                     "json: line 1 column 14: unexpected token near '}'");
  expect_order_error("{\"a\": 1,\n \"b\": [1, 2,\n}", NULL,
                     "json: line 3 column 1: unexpected token near '}'");
  expect_order_error("{\"id\": 1} trailing", NULL,
                     "json: line 1 column 18: end of file expected near "
                     "'trailing'");
  expect_order_error("[1, 2]", NULL, "json: expected an object, got array");
  expect_order_error("", NULL, "json: empty input");
  expect_order_error("{\"id\": 1, \"id\": 2}", NULL,
                     "json: line 1 column 14: duplicate object key near "
                     "'\"id\"'");
  expect_order_error("{\"id\": 99999999999999999999}", NULL,
                     "json: line 1 column 27: too big integer near "
                     "'99999999999999999999'");
  expect_order_error_n("{\"id\": 1}\0junk", 15, NULL,
                       "json: line 1 column 10: end of file expected near "
                       "end of file");
  /* \u0000 inside a string is refused by Jansson (no NUL in C strings). */
  expect_order_error("{\"event_id\": \"a\\u0000b\"}", NULL,
                     "json: line 1 column 23: \\u0000 is not allowed without "
                     "JSON_ALLOW_NUL near '\"a\\u0000b\"'");
}

static void test_error_wrong_type(void **state) {
  (void)state;
  char *items = replace(order_create_json, "\"line_items\": [\n",
                        "\"line_items\": [\n"
                        "{\"quantity\": 1, \"price\": \"1.00\"},"
                        "{\"quantity\": 1, \"price\": \"1.00\"},"
                        "{\"quantity\": 1, \"price\": \"1.00\"},"
                        "{\"quantity\": \"1\", \"price\": \"1.00\"},");
  expect_order_error(items, &create_hints,
                     "line_items[3].quantity: expected integer, got string");
  free(items);

  char *q0 = replace(order_create_json, "\"quantity\": 1", "\"quantity\": 0");
  expect_order_error(q0, &create_hints,
                     "line_items[0].quantity: 0 is not in 1..1000000");
  free(q0);
  char *qbig =
      replace(order_create_json, "\"quantity\": 1", "\"quantity\": 5000000000");
  expect_order_error(qbig, &create_hints,
                     "line_items[0].quantity: 5000000000 is not in "
                     "1..1000000");
  free(qbig);

  char *li = replace(order_create_json, "\"line_items\": [\n",
                     "\"line_items\": [\n\"oops\",");
  expect_order_error(li, &create_hints,
                     "line_items[0]: expected object, got string");
  free(li);
  char *cust = replace(order_create_json, "\"customer\": {",
                       "\"customer\": 5, \"x\": {");
  expect_order_error(cust, &create_hints,
                     "customer: expected object, got integer");
  free(cust);
  char *cid =
      replace(order_create_json, "\"id\": 115310627314723954", "\"id\": true");
  expect_order_error(cid, &create_hints,
                     "customer.id: expected string or integer, got boolean");
  free(cid);
  char *dc = replace(order_create_json, "{\"code\": \"TENOFF\"",
                     "{\"code\": [\"TENOFF\"]");
  expect_order_error(dc, &create_hints,
                     "discount_codes[0].code: expected string, got array");
  free(dc);
  expect_order_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"order_id\":\"o\",\"customer_id\":"
      "\"c\",\"event_time\":\"2023-01-01T00:00:00Z\",\"status\":\"lost\","
      "\"currency\":\"USD\",\"total\":\"1.00\"}",
      NULL,
      "status: unknown value \"lost\" (expected created, paid, cancelled, "
      "refunded)");
}

static void test_error_missing(void **state) {
  (void)state;
  expect_order_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2023-01-01T00:00:00Z\",\"status\":\"paid\","
      "\"currency\":\"USD\",\"total\":\"1.00\"}",
      NULL, "order_id: required field missing");
  expect_order_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"order_id\":null,\"customer_id\":"
      "\"c\",\"event_time\":\"2023-01-01T00:00:00Z\",\"status\":\"paid\","
      "\"currency\":\"USD\",\"total\":\"1.00\"}",
      NULL, "order_id: required field is null");
  char *no_price = replace(order_create_json, "\"price\": \"89.99\",", "");
  expect_order_error(no_price, &create_hints,
                     "line_items[0].price: required field missing");
  free(no_price);
  char *no_created = replace(order_create_json,
                             "\"created_at\": \"2021-12-31T19:00:00-05:00\", "
                             "\"updated_at\"",
                             "\"updated_at\"");
  expect_order_error(no_created, &create_hints,
                     "created_at: required field missing");
  free(no_created);
  char *no_cid = replace(order_create_json, "\"id\": 115310627314723954,", "");
  expect_order_error(no_cid, &create_hints,
                     "customer.id: required field missing");
  free(no_cid);
}

static void test_error_money(void **state) {
  (void)state;
  char *s = replace(order_create_json, "\"total_price\": \"404.95\"",
                    "\"total_price\": \"abc\"");
  expect_order_error(s, &create_hints,
                     "total_price: not a decimal amount: \"abc\"");
  free(s);
  s = replace(order_create_json, "\"total_price\": \"404.95\"",
              "\"total_price\": \"1e300\"");
  expect_order_error(s, &create_hints,
                     "total_price: not a decimal amount: \"1e300\"");
  free(s);
  s = replace(order_create_json, "\"total_price\": \"404.95\"",
              "\"total_price\": \"99999999999999999999.00\"");
  expect_order_error(s, &create_hints, "total_price: out of range");
  free(s);
  s = replace(order_create_json, "\"total_price\": \"404.95\"",
              "\"total_price\": \"9000000000.01\"");
  expect_order_error(s, &create_hints, "total_price: out of range");
  free(s);
  s = replace(order_create_json, "\"total_price\": \"404.95\"",
              "\"total_price\": \"1.0000001\"");
  expect_order_error(s, &create_hints,
                     "total_price: more than 6 decimal places: "
                     "\"1.0000001\"");
  free(s);
  s = replace(order_create_json, "\"total_price\": \"404.95\"",
              "\"total_price\": 404.95");
  expect_order_error(s, &create_hints,
                     "total_price: expected a decimal string such as "
                     "\"404.95\", got real");
  free(s);
  s = replace(order_create_json, "\"total_price\": \"404.95\"",
              "\"total_price\": \"-1.00\"");
  expect_order_error(s, &create_hints, "total: must not be negative");
  free(s);
  s = replace(order_create_json, "\"price\": \"89.99\"",
              "\"price\": \"\\\"q\\\" \\u0001\"");
  expect_order_error(s, &create_hints,
                     "line_items[0].price: not a decimal amount: "
                     "\"\\\"q\\\" \\u0001\"");
  free(s);

  const char *canon =
      "{\"event_id\":\"e\",\"shop\":\"s\",\"order_id\":\"o\",\"customer_id\":"
      "\"c\",\"event_time\":\"2023-01-01T00:00:00Z\",\"status\":\"paid\","
      "\"currency\":\"USD\",\"total\":1e300}";
  expect_order_error(canon, NULL, "total: out of range");
  s = replace(canon, "1e300", "-1e300");
  expect_order_error(s, NULL, "total: out of range");
  free(s);
  s = replace(canon, "\"total\":1e300", "\"total_micros\":1e300");
  expect_order_error(s, NULL, "total_micros: expected integer, got real");
  free(s);
  s = replace(canon, "\"total\":1e300", "\"total_micros\":9000000000000001");
  expect_order_error(s, NULL,
                     "total_micros: 9000000000000001 is not in "
                     "-9000000000000000..9000000000000000");
  free(s);
  /* Long garbage is cut in the message. */
  s = replace(canon, "1e300",
              "\"0123456789012345678901234567890123456789xyz\"");
  expect_order_error(s, NULL,
                     "total: not a decimal amount: "
                     "\"0123456789012345678901234567890123456789...\"");
  free(s);
}

static void test_error_invalid_utf8(void **state) {
  (void)state;
  expect_order_error("{\"event_id\": \"ab\xff\"}", NULL,
                     "json: line 1 column 17: invalid UTF-8 (byte 0xff at "
                     "offset 16)");
  /* Line and column count characters, as Jansson's do. */
  expect_order_error(
      "{\n \"a\": \"\xc3\xa9\xc3\xa9\",\n \"b\": \"\xed\xa0\x80\"}", NULL,
      "json: line 3 column 8: invalid UTF-8 (byte 0xed at "
      "offset 23)");
  /* Overlong encoding and a truncated sequence at the end. */
  expect_order_error("{\"a\": \"\xc0\xaf\"}", NULL,
                     "json: line 1 column 8: invalid UTF-8 (byte 0xc0 at "
                     "offset 7)");
  expect_order_error_n("{\"a\": \"\xe2\x82", 9, NULL,
                       "json: line 1 column 8: invalid UTF-8 (byte 0xe2 at "
                       "offset 7)");
  struct lp_customer_event ev;
  char err[256];
  const char *c = "{\"id\": 1, \"email\": \"\xfe@x\"}";
  assert_int_equal(decode_customer(c, NULL, &ev, err, sizeof(err)), -1);
  assert_string_equal(err, "json: line 1 column 21: invalid UTF-8 (byte 0xfe "
                           "at offset 20)");
}

/* A JSON document with a string of n bytes in place of @@. */
static char *with_big_string(const char *tmpl, size_t n) {
  const char *at = strstr(tmpl, "@@");
  assert_non_null(at);
  size_t head = (size_t)(at - tmpl), tail = strlen(at + 2);
  char *out = lp_xmalloc(head + n + tail + 1);
  memcpy(out, tmpl, head);
  memset(out + head, 'x', n);
  memcpy(out + head + n, at + 2, tail + 1);
  return out;
}

static void test_error_string_limits(void **state) {
  (void)state;
  const size_t mb = 1024 * 1024;
  char *s = with_big_string("{\"id\": 1, \"email\": \"@@\", \"updated_at\": "
                            "\"2022-01-01T00:00:00Z\"}",
                            mb);
  struct lp_json_hints h = {.shop_domain = SHOP};
  expect_customer_error(
      s, &h, "email: string of 1048576 bytes exceeds the limit of 4096");
  free(s);
  s = with_big_string("{\"id\": 1, \"tags\": \"a, @@\", \"updated_at\": "
                      "\"2022-01-01T00:00:00Z\"}",
                      mb);
  expect_customer_error(
      s, &h, "tags[1]: string of 1048576 bytes exceeds the limit of 4096");
  free(s);

  char *tmpl = replace(order_create_json, "\"SKU2006-001\"", "\"@@\"");
  s = with_big_string(tmpl, mb);
  expect_order_error(
      s, &create_hints,
      "line_items[0].sku: string of 1048576 bytes exceeds the limit of 4096");
  free(s);
  /* The limit itself is fine. */
  s = with_big_string(tmpl, LP_MAX_STRING_BYTES);
  struct lp_order_event ev;
  char err[256];
  assert_int_equal(decode_order(s, &create_hints, &ev, err, sizeof(err)), 0);
  assert_int_equal(strlen(ev.line_items[0].sku), LP_MAX_STRING_BYTES);
  lp_order_event_clear(&ev);
  free(s);
  free(tmpl);

  s = with_big_string("{\"event_id\":\"@@\",\"shop\":\"s\"}", mb);
  expect_order_error(
      s, NULL, "event_id: string of 1048576 bytes exceeds the limit of 4096");
  free(s);
  /* Header values too (validation); the id is "shopify:orders/create:"
   * (22 bytes) + the header. */
  struct lp_json_hints big = create_hints;
  char *hv = with_big_string("@@", 5000);
  big.shopify_event_id = hv;
  expect_order_error(order_create_json, &big,
                     "event_id: string of 5022 bytes exceeds the limit of "
                     "4096");
  free(hv);
}

static void test_error_counts_and_validation(void **state) {
  (void)state;
  struct lp_buf b;
  lp_buf_init(&b);
  lp_buf_append_str(&b, "{\"event_id\":\"e\",\"shop\":\"s\",\"order_id\":"
                        "\"o\",\"customer_id\":\"c\",\"event_time\":"
                        "\"2023-01-01T00:00:00Z\",\"status\":\"paid\","
                        "\"currency\":\"USD\",\"total\":\"1.00\","
                        "\"line_items\":[");
  for (int i = 0; i <= LP_MAX_LINE_ITEMS; i++)
    lp_buf_appendf(&b, "%s{\"quantity\":1,\"unit_price\":\"1.00\"}",
                   i ? "," : "");
  lp_buf_append_str(&b, "]}");
  expect_order_error(lp_buf_cstr(&b), NULL,
                     "line_items: 1001 items exceed the limit of 1000");
  lp_buf_free(&b);

  const char *canon =
      "{\"event_id\":\"e\",\"shop\":\"s\",\"order_id\":\"o\",\"customer_id\":"
      "\"c\",\"event_time\":\"2023-01-01T00:00:00Z\",\"status\":\"paid\","
      "\"currency\":\"usd\",\"total\":\"1.00\"}";
  expect_order_error(canon, NULL,
                     "currency: \"usd\" is not a 3-letter ISO 4217 code");
  char *s = replace(canon, "2023-01-01T00:00:00Z", "1970-01-01T00:00:00Z");
  char *s2 = replace(s, "usd", "USD");
  expect_order_error(s2, NULL,
                     "event_time: 0 is outside 1990-01-01..2200-01-01 (epoch "
                     "ms)");
  free(s);
  free(s2);
  s = replace(canon, "\"2023-01-01T00:00:00Z\"", "\"soon\"");
  expect_order_error(s, NULL,
                     "event_time: not an RFC 3339 timestamp: \"soon\"");
  free(s);
  s = replace(canon, "\"shop\":\"s\"", "\"shop\":\"\"");
  expect_order_error(s, NULL, "shop: must not be empty");
  free(s);

  expect_customer_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"customer_id\":\"c\","
      "\"event_time\":\"2023-01-01T00:00:00Z\",\"kind\":\"updated\","
      "\"email_sha256\":\"jon@example.com\"}",
      NULL,
      "email_sha256: expected 64 hex characters (a SHA-256 digest, never a "
      "raw email)");
  expect_customer_error(
      "{\"event_id\":\"e\",\"shop\":\"s\",\"order_id\":\"o\"}", NULL,
      "record: a canonical order event (has \"order_id\"), not a customer "
      "event");
}

/* Error text goes into dead-letter records: always valid UTF-8, even when
 * Jansson's fixed-size text or a small errstr cuts a character. */
static void test_error_text_is_utf8(void **state) {
  (void)state;
  struct lp_buf b;
  struct lp_order_event ev;
  char err[512];
  lp_buf_init(&b);
  lp_buf_append_str(&b, "{\"a\": x");
  for (int i = 0; i < 200; i++)
    lp_buf_append_str(&b, "\xc3\xa9");
  lp_buf_append_str(&b, "}");
  memset(&ev, 0, sizeof(ev));
  assert_int_equal(
      lp_json_decode_order(b.data, b.len, NULL, &ev, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "json: line 1 column 7: invalid token near"));
  assert_true(lp_utf8_valid(err, strlen(err)));
  lp_buf_free(&b);

  const char *canon =
      "{\"event_id\":\"e\",\"shop\":\"s\",\"order_id\":\"o\",\"customer_id\":"
      "\"c\",\"event_time\":\"2023-01-01T00:00:00Z\",\"status\":\"paid\","
      "\"currency\":\"USD\",\"total\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}";
  char small[34]; /* "total: not a decimal amount: \"" + 1.5 chars */
  memset(&ev, 0, sizeof(ev));
  assert_int_equal(lp_json_decode_order(canon, strlen(canon), NULL, &ev, small,
                                        sizeof(small)),
                   -1);
  assert_string_equal(small, "total: not a decimal amount: \"\xc3\xa9");
}

/* Truncations and byte flips of real payloads: any result is fine, a crash
 * or a leak (under ASan) is not, and a failure always says why. */
static void test_never_crashes(void **state) {
  (void)state;
  const char *bodies[] = {order_create_json, customer_update_json};
  struct lp_json_hints h = {.shop_domain = SHOP};
  char err[512];
  for (size_t k = 0; k < LP_ARRAY_LEN(bodies); k++) {
    size_t len = strlen(bodies[k]);
    char *copy = lp_xmalloc(len);
    for (size_t cut = 0; cut <= len; cut++) {
      struct lp_order_event ev;
      struct lp_customer_event cev;
      memset(&ev, 0, sizeof(ev));
      memset(&cev, 0, sizeof(cev));
      err[0] = '\0';
      if (lp_json_decode_order(bodies[k], cut, &h, &ev, err, sizeof(err)) == 0)
        lp_order_event_clear(&ev);
      else
        assert_true(err[0] != '\0');
      err[0] = '\0';
      if (lp_json_decode_customer(bodies[k], cut, &h, &cev, err, sizeof(err)) ==
          0)
        lp_customer_event_clear(&cev);
      else
        assert_true(err[0] != '\0');
    }
    static const unsigned char flips[] = {0x00, 0xff, '"', '{', ']',
                                          '1',  '\\', '-', ',', 0x80};
    for (size_t i = 0; i < len; i++) {
      memcpy(copy, bodies[k], len);
      copy[i] = (char)flips[i % LP_ARRAY_LEN(flips)];
      struct lp_order_event ev;
      struct lp_customer_event cev;
      memset(&ev, 0, sizeof(ev));
      memset(&cev, 0, sizeof(cev));
      if (lp_json_decode_order(copy, len, &h, &ev, err, sizeof(err)) == 0)
        lp_order_event_clear(&ev);
      if (lp_json_decode_customer(copy, len, &h, &cev, err, sizeof(err)) == 0)
        lp_customer_event_clear(&cev);
    }
    free(copy);
  }
  /* Deep nesting is bounded by Jansson, not by our stack. */
  struct lp_buf deep;
  lp_buf_init(&deep);
  lp_buf_append_str(&deep, "{\"id\":");
  for (int i = 0; i < 100000; i++)
    lp_buf_append_byte(&deep, '[');
  struct lp_order_event ev;
  memset(&ev, 0, sizeof(ev));
  assert_int_equal(
      lp_json_decode_order(deep.data, deep.len, &h, &ev, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "maximum parsing depth"));
  lp_buf_free(&deep);
  /* A tiny error buffer truncates, never overflows. */
  char tiny[8];
  memset(&ev, 0, sizeof(ev));
  assert_int_equal(
      lp_json_decode_order("{\"id\": 1}", 9, &h, &ev, tiny, sizeof(tiny)), -1);
  assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
  memset(&ev, 0, sizeof(ev));
  assert_int_equal(lp_json_decode_order("x", 1, &h, &ev, NULL, 0), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shopify_order_create_example),
      cmocka_unit_test(test_shopify_order_event_id_hint),
      cmocka_unit_test(test_shopify_order_without_topic_infers),
      cmocka_unit_test(test_shopify_order_paid),
      cmocka_unit_test(test_shopify_order_cancelled),
      cmocka_unit_test(test_shopify_order_category),
      cmocka_unit_test(test_shopify_order_guest_checkout),
      cmocka_unit_test(test_shopify_order_topic_and_shop_errors),
      cmocka_unit_test(test_shopify_customer_update_example),
      cmocka_unit_test(test_shopify_customer_email_normalised),
      cmocka_unit_test(test_shopify_customer_deprecated_accepts_marketing),
      cmocka_unit_test(test_shopify_customer_birthday),
      cmocka_unit_test(test_shopify_customer_errors),
      cmocka_unit_test(test_canonical_order_round_trip),
      cmocka_unit_test(test_canonical_order_integer_forms),
      cmocka_unit_test(test_canonical_customer_round_trip),
      cmocka_unit_test(test_canonical_decision_round_trip),
      cmocka_unit_test(test_canonical_score_sync),
      cmocka_unit_test(test_dead_letter_encode),
      cmocka_unit_test(test_action_result_encode),
      cmocka_unit_test(test_action_result_copy_encode),
      cmocka_unit_test(test_error_json_syntax),
      cmocka_unit_test(test_error_wrong_type),
      cmocka_unit_test(test_error_missing),
      cmocka_unit_test(test_error_money),
      cmocka_unit_test(test_error_invalid_utf8),
      cmocka_unit_test(test_error_string_limits),
      cmocka_unit_test(test_error_counts_and_validation),
      cmocka_unit_test(test_error_text_is_utf8),
      cmocka_unit_test(test_never_crashes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
