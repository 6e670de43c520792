/*
 * test_platforms.c — unit tests of the platform body mappings: Shopify
 * refunds (json_codec), BigCommerce (bigcommerce.c) and Adobe Commerce
 * (adobe.c). Realistic bodies shaped like shared reference apis.md live in
 * tests/unit/fixtures/platforms/; each decoder is checked field by field
 * against the canonical event it must give, then fed every class of bad
 * input (not JSON, wrong shape, guest or missing customer, bad money,
 * invalid UTF-8) with the exact field its error must name, then truncated
 * and corrupted bodies (which must never crash: run under ASan too). The
 * Adobe signature check is tested against an RSA key pair made here.
 * Run from the repository root (the fixtures are opened relative to it).
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
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "adobe.h"
#include "bigcommerce.h"
#include "events.h"
#include "json_codec.h"
#include "util.h"

#define FIXTURES "tests/unit/fixtures/platforms/"

/* ---- helpers ------------------------------------------------------------ */

/* The fixture's bytes (caller frees), NUL-terminated. */
static char *fixture(const char *name, size_t *len) {
  char path[256];
  snprintf(path, sizeof(path), FIXTURES "%s", name);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s (run from the repository root)", path);
  struct lp_buf b;
  lp_buf_init(&b);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    lp_buf_append(&b, chunk, n);
  fclose(f);
  *len = b.len;
  lp_buf_cstr(&b);
  return (char *)b.data;
}

/* The fixture with the value at path ("a.b[2].c") replaced by value_json,
 * or removed when value_json is NULL; compact JSON (caller frees). */
static char *mutate(const char *name, const char *path, const char *value_json,
                    size_t *len) {
  size_t flen;
  char *text = fixture(name, &flen);
  json_error_t jerr;
  json_t *root = json_loadb(text, flen, 0, &jerr);
  free(text);
  assert_non_null(root);
  json_t *parent = root;
  char *p = lp_xstrdup(path), *save = NULL, *last = NULL;
  for (char *seg = strtok_r(p, ".", &save); seg;
       seg = strtok_r(NULL, ".", &save)) {
    if (last) {
      char *br = strchr(last, '[');
      if (br) {
        *br = '\0';
        parent = json_array_get(json_object_get(parent, last), atoi(br + 1));
      } else {
        parent = json_object_get(parent, last);
      }
      assert_non_null(parent);
    }
    last = seg;
  }
  char *br = strchr(last, '[');
  if (br) {
    *br = '\0';
    json_t *arr = json_object_get(parent, last);
    if (value_json)
      json_array_set_new(arr, (size_t)atoi(br + 1),
                         json_loads(value_json, JSON_DECODE_ANY, &jerr));
    else
      json_array_remove(arr, (size_t)atoi(br + 1));
  } else if (value_json) {
    json_t *v = json_loads(value_json, JSON_DECODE_ANY, &jerr);
    assert_non_null(v);
    json_object_set_new(parent, last, v);
  } else {
    json_object_del(parent, last);
  }
  free(p);
  char *out = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  *len = strlen(out);
  return out;
}

static void assert_money(int64_t micros, const char *decimal) {
  int64_t want;
  assert_int_equal(lp_money_parse(decimal, &want), 0);
  assert_int_equal(micros, want);
}

static void assert_item(const struct lp_line_item *li, const char *product_id,
                        const char *sku, const char *brand,
                        const char *category, int quantity,
                        const char *unit_price) {
  if (product_id)
    assert_string_equal(li->product_id, product_id);
  else
    assert_null(li->product_id);
  if (sku)
    assert_string_equal(li->sku, sku);
  else
    assert_null(li->sku);
  if (brand)
    assert_string_equal(li->brand, brand);
  else
    assert_null(li->brand);
  if (category)
    assert_string_equal(li->category, category);
  else
    assert_null(li->category);
  assert_int_equal(li->quantity, quantity);
  assert_money(li->unit_price_micros, unit_price);
}

static void email_sha(const char *normalised, char out[65]) {
  lp_sha256_hex(normalised, strlen(normalised), out);
}

/* A decoder under test, on raw bytes: 0 or -1 with errstr. */
typedef int (*decode_fn)(const void *data, size_t len, char *errstr,
                         size_t errstr_size);

static const struct lp_json_hints refund_hints = {
    .shopify_topic = "refunds/create",
    .shopify_event_id = "98880550-7158-44d4-b7cd-2c97c8a091b5",
    .shop_domain = "shop.myshopify.com",
};

static int decode_refund(const void *d, size_t n, char *e, size_t es) {
  struct lp_order_event ev = {0};
  int rc = lp_json_decode_shopify_refund(
      d, n, &refund_hints, "115310627314723954", "USD", &ev, e, es);
  lp_order_event_clear(&ev);
  return rc;
}

static int decode_refund_order_id(const void *d, size_t n, char *e, size_t es) {
  char id[32];
  return lp_json_shopify_refund_order_id(d, n, id, sizeof(id), e, es);
}

static const struct lp_bc_hints bc_webhook_hints = {
    .store_hash = "abc123",
    .scope = "store/order/statusUpdated",
    .hash = "dd70c0976e06b67aaf671e73f49dcb79230ebf9d",
    .webhook_created_s = 1561479335,
};
static const struct lp_bc_hints bc_import_hints = {.store_hash = "abc123"};

static int decode_bc_order(const void *d, size_t n, char *e, size_t es) {
  struct lp_order_event ev = {0};
  size_t plen;
  char *products = fixture("bc-products.json", &plen);
  int rc = lp_bigcommerce_decode_order(d, n, products, plen, &bc_import_hints,
                                       &ev, e, es);
  free(products);
  lp_order_event_clear(&ev);
  return rc;
}

static int decode_bc_products(const void *d, size_t n, char *e, size_t es) {
  struct lp_order_event ev = {0};
  size_t olen;
  char *order = fixture("bc-order.json", &olen);
  int rc = lp_bigcommerce_decode_order(order, olen, d, n, &bc_import_hints, &ev,
                                       e, es);
  free(order);
  lp_order_event_clear(&ev);
  return rc;
}

static int decode_bc_customer(const void *d, size_t n, char *e, size_t es) {
  struct lp_customer_event ev = {0};
  int rc = lp_bigcommerce_decode_customer(d, n, &bc_import_hints, &ev, e, es);
  lp_customer_event_clear(&ev);
  return rc;
}

static int decode_bc_webhook(const void *d, size_t n, char *e, size_t es) {
  struct lp_bc_webhook w;
  return lp_bigcommerce_webhook_parse(d, n, &w, e, es);
}

static int decode_bc_refunds(const void *d, size_t n, char *e, size_t es) {
  int64_t micros;
  return lp_bigcommerce_refund_total(d, n, "3", &micros, e, es);
}

static int decode_adobe_order(const void *d, size_t n, char *e, size_t es) {
  struct lp_order_event ev = {0};
  int rc = lp_adobe_decode_order(d, n, NULL, &ev, e, es);
  lp_order_event_clear(&ev);
  return rc;
}

static int decode_adobe_customer(const void *d, size_t n, char *e, size_t es) {
  struct lp_customer_event ev = {0};
  int rc = lp_adobe_decode_customer(d, n, "adobe-eu", &ev, e, es);
  lp_customer_event_clear(&ev);
  return rc;
}

/* Expects decode to fail on the bytes with exactly want as errstr. */
static void expect_error(decode_fn decode, const void *data, size_t len,
                         const char *want) {
  char err[512] = "";
  assert_int_equal(decode(data, len, err, sizeof(err)), -1);
  assert_string_equal(err, want);
}

/* The same, on a fixture with one field replaced (or removed). */
static void expect_mutated_error(decode_fn decode, const char *name,
                                 const char *path, const char *value_json,
                                 const char *want) {
  size_t len;
  char *body = mutate(name, path, value_json, &len);
  expect_error(decode, body, len, want);
  free(body);
}

/* The common bad inputs every decoder rejects the same way. */
static void expect_rejects_garbage(decode_fn decode) {
  expect_error(decode, "not json", 8,
               "json: line 1 column 3: '[' or '{' expected near 'not'");
  expect_error(decode, "", 0, "json: empty input");
  expect_error(decode, "{\"id\": \"caf\xc3\"}", 14,
               "json: line 1 column 12: invalid UTF-8 (byte 0xc3 at offset "
               "11)");
  expect_error(decode, "{\"a\":1,\"a\":2}", 13,
               "json: line 1 column 10: duplicate object key near '\"a\"'");
}

/* ---- Shopify refunds ---------------------------------------------------- */

static void test_shopify_refund_from_transactions(void **state) {
  (void)state;
  size_t len;
  char *body = fixture("shopify-refund.json", &len);
  struct lp_order_event ev = {0};
  char err[256] = "";
  assert_int_equal(lp_json_decode_shopify_refund(body, len, &refund_hints,
                                                 "115310627314723954", "CAD",
                                                 &ev, err, sizeof(err)),
                   0);
  assert_string_equal(ev.event_id, "shopify:refunds/create:98880550-7158-44d4-"
                                   "b7cd-2c97c8a091b5");
  assert_string_equal(ev.shop, "shop.myshopify.com");
  assert_string_equal(ev.order_id, "820982911946154508");
  assert_string_equal(ev.customer_id, "115310627314723954");
  assert_int_equal(ev.status, LP_ORDER_REFUNDED);
  /* The transactions name the currency: the caller's is only a fallback. */
  assert_string_equal(ev.currency, "USD");
  /* The successful refund transaction, not the failed one. */
  assert_money(ev.total_micros, "134.59");
  assert_money(ev.subtotal_micros, "119.99");
  assert_money(ev.tax_micros, "9.60");
  assert_int_equal(ev.discount_micros, 0);
  assert_int_equal(ev.event_time_ms, 1641222000000LL); /* processed_at */
  assert_string_equal(ev.source, "shopify");
  assert_int_equal(ev.n_line_items, 2);
  assert_item(&ev.line_items[0], "788032119674292922", "SKU2006-001", "Acme",
              "Sunglasses", 1, "89.99");
  /* subtotal 30.00 over 2: 15.00 each; the empty sku reads as none. */
  assert_item(&ev.line_items[1], "788032119674292923", NULL, "Beta Optics",
              NULL, 2, "15.00");
  lp_order_event_clear(&ev);

  /* Without the event id header: the refund's own id. */
  struct lp_json_hints h = refund_hints;
  h.shopify_event_id = NULL;
  assert_int_equal(lp_json_decode_shopify_refund(body, len, &h, "1", "USD", &ev,
                                                 err, sizeof(err)),
                   0);
  assert_string_equal(ev.event_id, "shopify:refunds/create:509562969");
  lp_order_event_clear(&ev);
  free(body);
}

static void test_shopify_refund_without_transactions(void **state) {
  (void)state;
  size_t len;
  char *body = fixture("shopify-refund-no-transactions.json", &len);
  struct lp_json_hints h = {.default_shop = "fallback.myshopify.com"};
  struct lp_order_event ev = {0};
  char err[256] = "";
  assert_int_equal(lp_json_decode_shopify_refund(body, len, &h, "42", "EUR",
                                                 &ev, err, sizeof(err)),
                   0);
  /* Lines 89.99 + 7.20 tax, plus a shipping adjustment of -5.00 / -0.40
   * tax, which refunds 5.40. */
  assert_money(ev.total_micros, "102.59");
  assert_money(ev.subtotal_micros, "89.99");
  assert_money(ev.tax_micros, "7.20");
  assert_string_equal(ev.currency, "EUR"); /* the caller's */
  assert_string_equal(ev.shop, "fallback.myshopify.com");
  assert_string_equal(ev.order_id, "820982911946154508"); /* a string id */
  assert_int_equal(ev.event_time_ms, 1641218400000LL);    /* created_at */
  assert_string_equal(ev.event_id, "shopify:refunds/create:509562970");
  /* The quantity-0 line refunds no goods: no line item. */
  assert_int_equal(ev.n_line_items, 1);
  assert_item(&ev.line_items[0], "788032119674292922", "SKU2006-001", "Acme",
              NULL, 1, "89.99");
  lp_order_event_clear(&ev);
  free(body);

  /* A REST answer wraps the refund: {"refund": {...}}. */
  size_t flen;
  char *inner = fixture("shopify-refund-no-transactions.json", &flen);
  char *wrapped = lp_xasprintf("{\"refund\": %s}", inner);
  assert_int_equal(lp_json_decode_shopify_refund(wrapped, strlen(wrapped), &h,
                                                 "42", "EUR", &ev, err,
                                                 sizeof(err)),
                   0);
  assert_money(ev.total_micros, "102.59");
  lp_order_event_clear(&ev);
  free(wrapped);
  free(inner);
}

static void test_shopify_refund_order_id(void **state) {
  (void)state;
  size_t len;
  char id[32], small[8], err[256];
  char *body = fixture("shopify-refund.json", &len);
  assert_int_equal(lp_json_shopify_refund_order_id(body, len, id, sizeof(id),
                                                   err, sizeof(err)),
                   0);
  /* Above 2^53: read as an integer, never through a double. */
  assert_string_equal(id, "820982911946154508");
  assert_int_equal(lp_json_shopify_refund_order_id(
                       body, len, small, sizeof(small), err, sizeof(err)),
                   -1);
  assert_string_equal(
      err, "order_id: 18 bytes do not fit the caller's 8-byte buffer");
  free(body);
  body = fixture("shopify-refund-no-transactions.json", &len);
  assert_int_equal(lp_json_shopify_refund_order_id(body, len, id, sizeof(id),
                                                   err, sizeof(err)),
                   0);
  assert_string_equal(id, "820982911946154508");
  free(body);
  expect_rejects_garbage(decode_refund_order_id);
  expect_mutated_error(decode_refund_order_id, "shopify-refund.json",
                       "order_id", NULL, "order_id: required field missing");
  expect_mutated_error(decode_refund_order_id, "shopify-refund.json",
                       "order_id", "-4", "order_id: -4 is not a valid id");
  expect_error(decode_refund_order_id, "[1]", 3,
               "json: expected an object, got array");
}

static void test_shopify_refund_rejects(void **state) {
  (void)state;
  const char *f = "shopify-refund.json";
  size_t len;
  char err[256];
  struct lp_order_event ev = {0};
  expect_rejects_garbage(decode_refund);
  /* Wrong shape: an Order body is not a Refund. */
  expect_error(decode_refund, "{\"id\": 1, \"total_price\": \"1.00\"}", 32,
               "record: not a Shopify Refund (no \"refund_line_items\" or "
               "\"transactions\")");
  expect_mutated_error(decode_refund, f, "refund_line_items", "{}",
                       "refund_line_items: expected array, got object");
  /* No customer: the caller must give the order's. */
  char *body = fixture(f, &len);
  assert_int_equal(lp_json_decode_shopify_refund(body, len, &refund_hints, "",
                                                 "USD", &ev, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "customer_id: not given (a Refund names no "
                           "customer; the caller looks up its order)");
  assert_null(ev.event_id); /* left cleared */
  struct lp_json_hints wrong = refund_hints;
  wrong.shopify_topic = "orders/create";
  assert_int_equal(lp_json_decode_shopify_refund(body, len, &wrong, "1", "USD",
                                                 &ev, err, sizeof(err)),
                   -1);
  assert_string_equal(
      err, "x-shopify-topic: \"orders/create\" is not refunds/create");
  free(body);
  /* Bad money, named by its path. */
  expect_mutated_error(decode_refund, f, "transactions[1].amount", "\"12,00\"",
                       "transactions[1].amount: not a decimal amount: "
                       "\"12,00\"");
  expect_mutated_error(decode_refund, f, "transactions[1].amount", "true",
                       "transactions[1].amount: expected a decimal amount "
                       "(string or number), got boolean");
  expect_mutated_error(
      decode_refund, f, "refund_line_items[0].subtotal_set.shop_money.amount",
      "\"1.2345678\"",
      "refund_line_items[0].subtotal_set.shop_money.amount: more than 6 "
      "decimal places: \"1.2345678\"");
  expect_mutated_error(decode_refund, f, "refund_line_items[1].subtotal",
                       "1e300", "refund_line_items[1].subtotal: out of range");
  expect_mutated_error(decode_refund, f, "transactions[1].amount", "\"-3.00\"",
                       "transactions[1].amount: must not be negative");
  const char *mixed =
      "{\"id\": 1, \"order_id\": 2, \"processed_at\": "
      "\"2022-01-03T10:00:00Z\", \"transactions\": [{\"kind\": \"refund\", "
      "\"amount\": \"1.00\", \"currency\": \"USD\"}, {\"kind\": \"refund\", "
      "\"status\": \"success\", \"amount\": \"2.00\", \"currency\": "
      "\"EUR\"}]}";
  expect_error(decode_refund, mixed, strlen(mixed),
               "transactions[1].currency: \"EUR\" differs from \"USD\" of an "
               "earlier refund transaction");
  expect_mutated_error(decode_refund, f, "refund_line_items[0].quantity", "-1",
                       "refund_line_items[0].quantity: -1 is not in "
                       "0..1000000");
  expect_mutated_error(decode_refund, f, "processed_at", "\"yesterday\"",
                       "processed_at: not an RFC 3339 timestamp: "
                       "\"yesterday\"");
  expect_mutated_error(decode_refund, f, "id", NULL,
                       "id: required field missing");
  /* No currency anywhere. */
  body = mutate("shopify-refund-no-transactions.json", "id", "5", &len);
  assert_int_equal(lp_json_decode_shopify_refund(body, len, &refund_hints, "1",
                                                 NULL, &ev, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "currency: unknown (no refund transaction names "
                           "one and the caller gave none)");
  free(body);
  /* Adjustments that add up to a negative refund. */
  expect_mutated_error(
      decode_refund, "shopify-refund-no-transactions.json",
      "order_adjustments[0].amount", "\"500.00\"",
      "order_adjustments: the refund adds up to a negative amount (no refund "
      "transaction to take the amount from)");
}

/* ---- BigCommerce -------------------------------------------------------- */

static void test_bc_order_paid(void **state) {
  (void)state;
  size_t olen, plen;
  char *order = fixture("bc-order.json", &olen);
  char *products = fixture("bc-products.json", &plen);
  struct lp_order_event ev = {0};
  char err[256] = "";
  assert_int_equal(lp_bigcommerce_decode_order(order, olen, products, plen,
                                               &bc_webhook_hints, &ev, err,
                                               sizeof(err)),
                   0);
  assert_string_equal(
      ev.event_id,
      "bigcommerce:abc123:dd70c0976e06b67aaf671e73f49dcb79230ebf9d");
  assert_string_equal(ev.shop, "bc-abc123");
  assert_string_equal(ev.order_id, "250");
  assert_string_equal(ev.customer_id, "11");
  assert_int_equal(ev.status, LP_ORDER_PAID); /* 11 Awaiting Fulfillment */
  assert_string_equal(ev.currency, "USD");
  assert_money(ev.total_micros, "88.34");
  assert_money(ev.subtotal_micros, "81.80");
  assert_money(ev.discount_micros, "5.20"); /* 2.00 + 3.20 coupon */
  assert_money(ev.tax_micros, "6.54");
  assert_int_equal(ev.event_time_ms, 1353493800000LL); /* date_modified */
  assert_string_equal(ev.source, "bigcommerce");
  assert_int_equal(ev.n_line_items, 2);
  assert_item(&ev.line_items[0], "77", "FLCT-BEIGE", "Fog Linen", "Bath", 2,
              "23.76");
  /* A custom line: product_id 0 and an empty sku read as none. */
  assert_item(&ev.line_items[1], NULL, NULL, NULL, NULL, 1, "40.82");
  lp_order_event_clear(&ev);

  /* An import: no scope, no hash; the event id names the status. */
  struct lp_bc_hints h = {.store_hash = "abc123", .default_shop = "acme"};
  assert_int_equal(lp_bigcommerce_decode_order(order, olen, NULL, 0, &h, &ev,
                                               err, sizeof(err)),
                   0);
  assert_string_equal(ev.event_id,
                      "bigcommerce:abc123:order:250:awaiting_fulfillment");
  assert_string_equal(ev.shop, "acme");
  assert_int_equal(ev.status, LP_ORDER_PAID);
  assert_int_equal(ev.n_line_items, 0);
  lp_order_event_clear(&ev);

  /* store/order/created: created at date_created, whatever the status. */
  h.scope = "store/order/created";
  h.hash = "1111";
  assert_int_equal(lp_bigcommerce_decode_order(order, olen, products, plen, &h,
                                               &ev, err, sizeof(err)),
                   0);
  assert_int_equal(ev.status, LP_ORDER_CREATED);
  assert_int_equal(ev.event_time_ms, 1353369600000LL);
  assert_string_equal(ev.event_id, "bigcommerce:abc123:1111");
  lp_order_event_clear(&ev);
  /* An import's created event is named by the scope's status, so the
   * cancelled event of the same (since cancelled) order differs. */
  h.hash = NULL;
  char *cancelled = mutate("bc-order.json", "status_id", "5", &olen);
  assert_int_equal(lp_bigcommerce_decode_order(cancelled, olen, NULL, 0, &h,
                                               &ev, err, sizeof(err)),
                   0);
  assert_string_equal(ev.event_id, "bigcommerce:abc123:order:250:created");
  lp_order_event_clear(&ev);
  h.scope = NULL;
  assert_int_equal(lp_bigcommerce_decode_order(cancelled, olen, NULL, 0, &h,
                                               &ev, err, sizeof(err)),
                   0);
  assert_int_equal(ev.status, LP_ORDER_CANCELLED);
  assert_string_equal(ev.event_id, "bigcommerce:abc123:order:250:cancelled");
  lp_order_event_clear(&ev);
  free(cancelled);
  free(order);
  free(products);
}

static void test_bc_order_status_table(void **state) {
  (void)state;
  static const struct {
    int status_id;
    enum lp_order_status want;
  } cases[] = {
      {0, LP_ORDER_CREATED},  {1, LP_ORDER_CREATED},   {2, LP_ORDER_PAID},
      {3, LP_ORDER_PAID},     {5, LP_ORDER_CANCELLED}, {6, LP_ORDER_CANCELLED},
      {7, LP_ORDER_CREATED},  {8, LP_ORDER_PAID},      {9, LP_ORDER_PAID},
      {10, LP_ORDER_PAID},    {11, LP_ORDER_PAID},     {12, LP_ORDER_CREATED},
      {13, LP_ORDER_CREATED}, {4, LP_ORDER_REFUNDED},  {14, LP_ORDER_REFUNDED},
      {99, LP_ORDER_CREATED}};
  for (size_t i = 0; i < LP_ARRAY_LEN(cases); i++) {
    char value[16], err[256] = "";
    size_t len;
    snprintf(value, sizeof(value), "%d", cases[i].status_id);
    char *order = mutate("bc-order.json", "status_id", value, &len);
    struct lp_order_event ev = {0};
    assert_int_equal(lp_bigcommerce_decode_order(order, len, NULL, 0,
                                                 &bc_import_hints, &ev, err,
                                                 sizeof(err)),
                     0);
    assert_int_equal(ev.status, cases[i].want);
    if (cases[i].status_id == 99)
      assert_string_equal(ev.event_id,
                          "bigcommerce:abc123:order:250:status_99");
    lp_order_event_clear(&ev);
    free(order);
  }
  assert_string_equal(lp_bigcommerce_status_name(14), "partially_refunded");
  assert_null(lp_bigcommerce_status_name(15));
  assert_null(lp_bigcommerce_status_name(-1));
}

static void test_bc_order_refunded(void **state) {
  (void)state;
  size_t olen, plen, wlen, rlen;
  char *order = fixture("bc-order-refunded.json", &olen);
  char *products = fixture("bc-products-refunded.json", &plen);
  struct lp_order_event ev = {0};
  char err[256] = "";
  /* An import: status 14 -> refunded, total = refunded_amount, lines = the
   * refunded quantities. */
  assert_int_equal(lp_bigcommerce_decode_order(order, olen, products, plen,
                                               &bc_import_hints, &ev, err,
                                               sizeof(err)),
                   0);
  assert_int_equal(ev.status, LP_ORDER_REFUNDED);
  assert_money(ev.total_micros, "23.76");
  assert_string_equal(ev.currency, "EUR");
  assert_string_equal(ev.order_id, "251"); /* the order event's order id */
  assert_int_equal(ev.event_time_ms, 1353590100000LL); /* -0500 honoured */
  assert_string_equal(ev.event_id,
                      "bigcommerce:abc123:order:251:partially_refunded");
  assert_int_equal(ev.n_line_items, 1);
  assert_item(&ev.line_items[0], "77", "FLCT-BEIGE", "Fog Linen", "Bath", 1,
              "23.76");
  lp_order_event_clear(&ev);

  /* A refund/created webhook: parse it, price its refund, decode. */
  char *hook = fixture("bc-webhook-refund.json", &wlen);
  char *refunds = fixture("bc-refunds.json", &rlen);
  struct lp_bc_webhook w;
  assert_int_equal(
      lp_bigcommerce_webhook_parse(hook, wlen, &w, err, sizeof(err)), 0);
  int64_t amount;
  assert_int_equal(lp_bigcommerce_refund_total(refunds, rlen, w.refund_id,
                                               &amount, err, sizeof(err)),
                   0);
  assert_money(amount, "23.76");
  struct lp_bc_hints h = {.store_hash = w.store_hash,
                          .scope = w.scope,
                          .hash = w.hash,
                          .webhook_created_s = w.created_at};
  char *paid = mutate("bc-order-refunded.json", "status_id", "11", &olen);
  assert_int_equal(lp_bigcommerce_decode_order(paid, olen, products, plen, &h,
                                               &ev, err, sizeof(err)),
                   0);
  /* The scope decides, whatever status the order shows. */
  assert_int_equal(ev.status, LP_ORDER_REFUNDED);
  ev.total_micros = amount;
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), 0);
  assert_string_equal(
      ev.event_id,
      "bigcommerce:abc123:352e4afc6dd3fc85ea26bfdf3f91852604d57528");
  lp_order_event_clear(&ev);

  /* Fully refunded (4) without quantity_refunded: every line. */
  char *full = mutate("bc-order-refunded.json", "status_id", "4", &olen);
  const char *lines = "[{\"order_id\": 251, \"product_id\": 77, \"quantity\": "
                      "2, \"price_inc_tax\": \"23.7600\"}]";
  assert_int_equal(lp_bigcommerce_decode_order(full, olen, lines, strlen(lines),
                                               &bc_import_hints, &ev, err,
                                               sizeof(err)),
                   0);
  assert_int_equal(ev.n_line_items, 1);
  assert_int_equal(ev.line_items[0].quantity, 2);
  lp_order_event_clear(&ev);
  free(full);
  free(paid);
  free(hook);
  free(refunds);
  free(order);
  free(products);
}

static void test_bc_refund_total(void **state) {
  (void)state;
  size_t len;
  char err[256];
  int64_t micros;
  char *body = fixture("bc-refunds.json", &len);
  /* total_amount as a JSON number. */
  assert_int_equal(
      lp_bigcommerce_refund_total(body, len, "2", &micros, err, sizeof(err)),
      0);
  assert_money(micros, "10.50");
  assert_int_equal(
      lp_bigcommerce_refund_total(body, len, "9", &micros, err, sizeof(err)),
      -1);
  assert_string_equal(err, "data: no refund with id \"9\" (2 listed)");
  free(body);
  expect_rejects_garbage(decode_bc_refunds);
  expect_error(decode_bc_refunds, "{\"meta\": {}}", 12,
               "data: required field missing");
  expect_mutated_error(decode_bc_refunds, "bc-refunds.json",
                       "data[1].total_amount", "\"23,76\"",
                       "data[1].total_amount: not a decimal amount: "
                       "\"23,76\"");
  expect_mutated_error(decode_bc_refunds, "bc-refunds.json",
                       "data[1].total_amount", NULL,
                       "data[1].total_amount: required field missing");
  expect_mutated_error(decode_bc_refunds, "bc-refunds.json", "data[0]", "7",
                       "data[0]: expected object, got integer");
}

static void test_bc_order_rejects(void **state) {
  (void)state;
  const char *f = "bc-order.json";
  expect_rejects_garbage(decode_bc_order);
  /* Guest checkout. */
  expect_mutated_error(decode_bc_order, f, "customer_id", "0",
                       "customer_id: 0 is a guest checkout; nothing to "
                       "attribute");
  expect_mutated_error(decode_bc_order, f, "customer_id", NULL,
                       "customer_id: required field missing");
  /* Wrong shape: the webhook callback instead of the order. */
  size_t len;
  char *hook = fixture("bc-webhook-order.json", &len);
  expect_error(decode_bc_order, hook, len,
               "record: a webhook callback or a v3 list, not a v2 order (no "
               "\"status_id\")");
  free(hook);
  expect_error(decode_bc_order, "[]", 2, "json: expected an object, got array");
  /* Bad money. */
  expect_mutated_error(decode_bc_order, f, "total_inc_tax", "\"88.34.00\"",
                       "total_inc_tax: not a decimal amount: \"88.34.00\"");
  expect_mutated_error(decode_bc_order, f, "coupon_discount", "3.2",
                       "coupon_discount: expected a decimal string such as "
                       "\"404.95\", got real");
  expect_mutated_error(decode_bc_order, f, "currency_code", "\"dollars\"",
                       "currency: \"dollars\" is not a 3-letter ISO 4217 code");
  expect_mutated_error(decode_bc_order, f, "date_modified",
                       "\"Wed, 32 Nov 2012 10:30:00 +0000\"",
                       "date_modified: not an RFC 2822 or RFC 3339 timestamp: "
                       "\"Wed, 32 Nov 2012 10:30:00 +0000\"");
  /* Invalid UTF-8 inside a field: located by line, column and offset. */
  char *order = fixture(f, &len);
  char *at = strstr(order, "\"Jane\"");
  assert_non_null(at);
  at[1] = (char)0xff;
  size_t offset = (size_t)(at + 1 - order);
  int line = 1, column = 1;
  for (size_t i = 0; i < offset; i++) {
    if (order[i] == '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  char *want = lp_xasprintf("json: line %d column %d: invalid UTF-8 (byte "
                            "0xff at offset %zu)",
                            line, column, offset);
  expect_error(decode_bc_order, order, len, want);
  free(want);
  free(order);
  /* Products. */
  expect_error(decode_bc_products, "{}", 2,
               "products: expected array, got object");
  expect_error(
      decode_bc_products, "[1", 2,
      "products: json: line 1 column 2: ']' expected near end of file");
}

static void test_bc_products_rejects(void **state) {
  (void)state;
  /* The products array is mutated as text (mutate() navigates objects). */
  const char *good = "{\"order_id\": 250, \"product_id\": 1, \"quantity\": 1, "
                     "\"price_inc_tax\": \"1.0000\"}";
  char *body;
  body = lp_xasprintf("[%s, {\"order_id\": 250, \"quantity\": \"2\", "
                      "\"price_inc_tax\": \"1.0000\"}]",
                      good);
  expect_error(decode_bc_products, body, strlen(body),
               "products[1].quantity: expected integer, got string");
  free(body);
  body = lp_xasprintf("[{\"order_id\": 250, \"quantity\": 1, "
                      "\"price_inc_tax\": \"1.00.00\"}]");
  expect_error(decode_bc_products, body, strlen(body),
               "products[0].price_inc_tax: not a decimal amount: "
               "\"1.00.00\"");
  free(body);
  body = lp_xasprintf("[{\"order_id\": 999, \"quantity\": 1, "
                      "\"price_inc_tax\": \"1.0000\"}]");
  expect_error(decode_bc_products, body, strlen(body),
               "products[0].order_id: 999 is not this order's id 250");
  free(body);
  body = lp_xasprintf("[%s, \"x\"]", good);
  expect_error(decode_bc_products, body, strlen(body),
               "products[1]: expected object, got string");
  free(body);
  body = lp_xasprintf("[{\"order_id\": 250, \"quantity\": 1, \"sku\": 5, "
                      "\"price_inc_tax\": \"1.0000\"}]");
  expect_error(decode_bc_products, body, strlen(body),
               "products[0].sku: expected string, got integer");
  free(body);
}

static void test_bc_hints_required(void **state) {
  (void)state;
  size_t len;
  char err[256];
  char *order = fixture("bc-order.json", &len);
  struct lp_order_event ev = {0};
  assert_int_equal(lp_bigcommerce_decode_order(order, len, NULL, 0, NULL, &ev,
                                               err, sizeof(err)),
                   -1);
  assert_string_equal(err, "store_hash: not given (the webhook's producer or "
                           "the import's store names it)");
  struct lp_bc_hints h = {.store_hash = "abc:123"};
  assert_int_equal(lp_bigcommerce_decode_order(order, len, NULL, 0, &h, &ev,
                                               err, sizeof(err)),
                   -1);
  assert_string_equal(err, "store_hash: \"abc:123\" is not a store hash "
                           "(letters, digits, - and _, at most 63)");
  h.store_hash = "abc123";
  h.scope = "store/customer/created";
  assert_int_equal(lp_bigcommerce_decode_order(order, len, NULL, 0, &h, &ev,
                                               err, sizeof(err)),
                   -1);
  assert_string_equal(
      err, "scope: \"store/customer/created\" is not an order scope");
  free(order);
}

static void test_bc_customer(void **state) {
  (void)state;
  size_t len;
  char *body = fixture("bc-customer.json", &len);
  struct lp_customer_event ev = {0};
  char err[256] = "", sha[65];
  struct lp_bc_hints h = {.store_hash = "abc123",
                          .scope = "store/customer/created",
                          .hash = "c0ffee"};
  assert_int_equal(
      lp_bigcommerce_decode_customer(body, len, &h, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.event_id, "bigcommerce:abc123:c0ffee");
  assert_string_equal(ev.shop, "bc-abc123");
  assert_string_equal(ev.customer_id, "11");
  assert_int_equal(ev.kind, LP_CUSTOMER_CREATED);
  assert_int_equal(ev.event_time_ms, 1617271200000LL); /* date_created */
  assert_int_equal(ev.customer_created_ms, 1617271200000LL);
  email_sha("jane.doe@example.com", sha); /* trimmed, lower-cased */
  assert_string_equal(ev.email_sha256, sha);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_SUBSCRIBED);
  assert_null(ev.birthday);
  assert_int_equal(ev.n_tags, 0);
  assert_string_equal(ev.source, "bigcommerce");
  lp_customer_event_clear(&ev);
  free(body);

  /* An import of the whole v3 answer: updated at date_modified. */
  size_t flen;
  char *inner =
      mutate("bc-customer.json", "accepts_product_review_abandoned_cart_emails",
             "false", &flen);
  char *wrapped = lp_xasprintf("{\"data\": [%s], \"meta\": {}}", inner);
  assert_int_equal(lp_bigcommerce_decode_customer(wrapped, strlen(wrapped),
                                                  &bc_import_hints, &ev, err,
                                                  sizeof(err)),
                   0);
  assert_int_equal(ev.kind, LP_CUSTOMER_UPDATED);
  assert_int_equal(ev.event_time_ms, 1619955000000LL);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_UNSUBSCRIBED);
  assert_string_equal(ev.event_id,
                      "bigcommerce:abc123:customer:11:2021-05-02T11:30:00Z");
  lp_customer_event_clear(&ev);
  free(wrapped);
  free(inner);

  /* No consent field: unknown. */
  inner = mutate("bc-customer.json",
                 "accepts_product_review_abandoned_cart_emails", NULL, &flen);
  assert_int_equal(lp_bigcommerce_decode_customer(inner, flen, &bc_import_hints,
                                                  &ev, err, sizeof(err)),
                   0);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_UNKNOWN);
  lp_customer_event_clear(&ev);
  free(inner);
}

static void test_bc_customer_rejects(void **state) {
  (void)state;
  const char *f = "bc-customer.json";
  expect_rejects_garbage(decode_bc_customer);
  expect_mutated_error(decode_bc_customer, f, "id", NULL,
                       "id: required field missing");
  expect_mutated_error(decode_bc_customer, f, "id", "0",
                       "id: 0 is not a valid id");
  expect_mutated_error(decode_bc_customer, f, "date_modified", "\"soon\"",
                       "date_modified: not an RFC 2822 or RFC 3339 timestamp: "
                       "\"soon\"");
  expect_mutated_error(decode_bc_customer, f,
                       "accepts_product_review_abandoned_cart_emails",
                       "\"yes\"",
                       "accepts_product_review_abandoned_cart_emails: expected "
                       "boolean, got string");
  size_t len;
  char *order = fixture("bc-order.json", &len);
  expect_error(decode_bc_customer, order, len,
               "record: a BigCommerce order, not a customer");
  free(order);
  expect_error(decode_bc_customer, "{\"data\": []}", 12,
               "data: 0 customers listed (one element expected)");
  expect_error(decode_bc_customer, "{\"data\": [\"x\"]}", 15,
               "data[0]: expected object, got string");
  expect_error(decode_bc_customer, "{\"data\": [{\"id\": \"\"}]}", 22,
               "data[0].id: must not be empty");
}

static void test_bc_webhook_parse(void **state) {
  (void)state;
  size_t len;
  char err[256] = "";
  struct lp_bc_webhook w;
  char *body = fixture("bc-webhook-order.json", &len);
  assert_int_equal(
      lp_bigcommerce_webhook_parse(body, len, &w, err, sizeof(err)), 0);
  assert_string_equal(w.scope, "store/order/statusUpdated");
  assert_string_equal(w.store_hash, "abc123");
  assert_string_equal(w.type, "order");
  assert_int_equal(w.id, 250);
  assert_string_equal(w.hash, "dd70c0976e06b67aaf671e73f49dcb79230ebf9d");
  assert_int_equal(w.created_at, 1561479335);
  assert_string_equal(w.refund_id, "");
  free(body);
  body = fixture("bc-webhook-refund.json", &len);
  assert_int_equal(
      lp_bigcommerce_webhook_parse(body, len, &w, err, sizeof(err)), 0);
  assert_string_equal(w.refund_id, "3");
  assert_int_equal(w.id, 251);
  free(body);
  /* The apis.md customer callback, with an id given as a string. */
  const char *customer =
      "{\"scope\": \"store/customer/updated\", \"store_id\": \"1025646\", "
      "\"data\": {\"type\": \"customer\", \"id\": \"32\"}, \"hash\": \"ab12\", "
      "\"created_at\": 1561479335, \"producer\": \"stores/abc123\"}";
  assert_int_equal(lp_bigcommerce_webhook_parse(customer, strlen(customer), &w,
                                                err, sizeof(err)),
                   0);
  assert_int_equal(w.id, 32);
  assert_string_equal(w.type, "customer");

  const char *o = "bc-webhook-order.json";
  expect_rejects_garbage(decode_bc_webhook);
  expect_mutated_error(decode_bc_webhook, o, "producer", "\"store/abc123\"",
                       "producer: \"store/abc123\" is not \"stores/<store "
                       "hash>\"");
  expect_mutated_error(decode_bc_webhook, o, "producer", "\"stores/a:b\"",
                       "producer: \"stores/a:b\" is not \"stores/<store "
                       "hash>\"");
  expect_mutated_error(decode_bc_webhook, o, "hash", NULL,
                       "hash: required field missing");
  expect_mutated_error(decode_bc_webhook, o, "hash", "\"a b\"",
                       "hash: \"a b\" is not a hex digest");
  expect_mutated_error(decode_bc_webhook, o, "scope", "\"order/created\"",
                       "scope: \"order/created\" is not a store/... scope");
  expect_mutated_error(
      decode_bc_webhook, o, "scope",
      "\"store/0123456789012345678901234567890123456789012345678901234567890"
      "1234567890123456789012345678901\"",
      "scope: 98 bytes exceed the limit of 95");
  expect_mutated_error(decode_bc_webhook, o, "data.id", "0",
                       "data.id: 0 is not a valid id");
  expect_mutated_error(decode_bc_webhook, o, "data.id", "\"25x\"",
                       "data.id: not a positive integer id");
  expect_mutated_error(decode_bc_webhook, o, "data", "[]",
                       "data: expected object, got array");
  expect_mutated_error(decode_bc_webhook, o, "created_at", "\"1561479335\"",
                       "created_at: expected integer, got string");
  expect_mutated_error(decode_bc_webhook, "bc-webhook-refund.json",
                       "data.refund", NULL,
                       "data.refund: required field missing (scope "
                       "store/order/refund/created)");
  expect_mutated_error(decode_bc_webhook, "bc-webhook-refund.json",
                       "data.refund.refund_id", "null",
                       "data.refund.refund_id: required field is null");
  /* A failed parse leaves nothing half-filled. */
  assert_int_equal(lp_bigcommerce_webhook_parse("{}", 2, &w, err, sizeof(err)),
                   -1);
  assert_string_equal(w.scope, "");
}

/* ---- Adobe Commerce ----------------------------------------------------- */

static void test_adobe_order_event(void **state) {
  (void)state;
  size_t len;
  char *body = fixture("adobe-order-event.json", &len);
  struct lp_order_event ev = {0};
  char err[256] = "";
  assert_int_equal(
      lp_adobe_decode_order(body, len, "unused", &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.event_id,
                      "adobe:f7813962-c119-401c-aa8c-266421aa1053");
  assert_string_equal(ev.shop, "eu_website"); /* the payload's website code */
  assert_string_equal(ev.order_id, "42");
  assert_string_equal(ev.customer_id, "7");
  assert_int_equal(ev.status, LP_ORDER_PAID); /* processing */
  assert_string_equal(ev.currency, "EUR");
  assert_money(ev.total_micros, "123.45");
  assert_money(ev.subtotal_micros, "110.00");
  assert_money(ev.discount_micros, "10.00"); /* -10.0000 in Magento */
  assert_money(ev.tax_micros, "8.45");
  assert_int_equal(ev.event_time_ms, 1717517104000LL); /* updated_at */
  assert_string_equal(ev.source, "adobe_commerce");
  /* The configurable hoodie counts once, at its parent's price. */
  assert_int_equal(ev.n_line_items, 2);
  assert_item(&ev.line_items[0], "67", "MH01-XS-Black", NULL, NULL, 2, "52.00");
  assert_item(&ev.line_items[1], "1", "24-MB01", NULL, NULL, 1, "6.00");
  lp_order_event_clear(&ev);
  free(body);

  /* Without websiteCode: the store code; without either: default_shop. */
  body = mutate("adobe-order-event.json", "data._metadata.websiteCode", NULL,
                &len);
  assert_int_equal(lp_adobe_decode_order(body, len, "x", &ev, err, sizeof(err)),
                   0);
  assert_string_equal(ev.shop, "eu_store");
  lp_order_event_clear(&ev);
  free(body);
  body = mutate("adobe-order-event.json", "data._metadata", "{}", &len);
  assert_int_equal(
      lp_adobe_decode_order(body, len, "adobe-eu", &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.shop, "adobe-eu");
  lp_order_event_clear(&ev);
  free(body);
  /* New orders: created, at created_at; no envelope "id": event_id. */
  body = mutate("adobe-order-event.json", "data.value.state", "\"new\"", &len);
  char *no_id = NULL;
  {
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    json_object_del(root, "id");
    no_id = json_dumps(root, JSON_COMPACT);
    json_decref(root);
  }
  assert_int_equal(
      lp_adobe_decode_order(no_id, strlen(no_id), NULL, &ev, err, sizeof(err)),
      0);
  assert_int_equal(ev.status, LP_ORDER_CREATED);
  assert_int_equal(ev.event_time_ms, 1717516800000LL);
  assert_string_equal(ev.event_id,
                      "adobe:7c9ae597-f382-49bc-85b7-3a2b4da6e0bf");
  lp_order_event_clear(&ev);
  free(no_id);
  free(body);
  /* A value that wraps the order in "order". */
  size_t flen;
  char *full = fixture("adobe-order-event.json", &flen);
  json_error_t jerr;
  json_t *root = json_loadb(full, flen, 0, &jerr);
  json_t *data = json_object_get(root, "data");
  json_t *value = json_object_get(data, "value");
  json_incref(value);
  json_object_set_new(data, "value", json_pack("{so}", "order", value));
  char *wrapped = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  assert_int_equal(lp_adobe_decode_order(wrapped, strlen(wrapped), NULL, &ev,
                                         err, sizeof(err)),
                   0);
  assert_int_equal(ev.n_line_items, 2);
  lp_order_event_clear(&ev);
  free(wrapped);
  free(full);
}

static void test_adobe_order_rest(void **state) {
  (void)state;
  size_t len;
  char *body = fixture("adobe-order-rest.json", &len);
  struct lp_order_event ev = {0};
  char err[256] = "";
  /* JSON numbers (REST) are read as exactly as the strings. */
  assert_int_equal(
      lp_adobe_decode_order(body, len, "adobe-eu", &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.event_id, "adobe:order:42:paid:2024-06-10 09:00:00");
  assert_string_equal(ev.shop, "adobe-eu");
  assert_int_equal(ev.status, LP_ORDER_PAID); /* complete */
  assert_money(ev.total_micros, "123.45");
  assert_money(ev.tax_micros, "8.45");
  assert_money(ev.discount_micros, "10.00");
  assert_int_equal(ev.event_time_ms, 1718010000000LL);
  assert_int_equal(ev.n_line_items, 2);
  assert_item(&ev.line_items[0], "67", "MH01-XS-Black", NULL, NULL, 2, "52.00");
  lp_order_event_clear(&ev);
  free(body);

  /* closed -> refunded: total_refunded, the refunded quantities. */
  body = mutate("adobe-order-rest.json", "state", "\"closed\"", &len);
  assert_int_equal(
      lp_adobe_decode_order(body, len, "adobe-eu", &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.status, LP_ORDER_REFUNDED);
  assert_money(ev.total_micros, "58.00");
  assert_int_equal(ev.n_line_items, 2);
  assert_int_equal(ev.line_items[0].quantity, 1);
  assert_string_equal(ev.event_id,
                      "adobe:order:42:refunded:2024-06-10 09:00:00");
  lp_order_event_clear(&ev);
  free(body);
  body = mutate("adobe-order-rest.json", "state", "\"canceled\"", &len);
  assert_int_equal(
      lp_adobe_decode_order(body, len, "adobe-eu", &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.status, LP_ORDER_CANCELLED);
  lp_order_event_clear(&ev);
  free(body);
  /* No state: the status decides. */
  body = mutate("adobe-order-rest.json", "state", NULL, &len);
  assert_int_equal(
      lp_adobe_decode_order(body, len, "adobe-eu", &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.status, LP_ORDER_PAID);
  lp_order_event_clear(&ev);
  free(body);
}

static void test_adobe_order_rejects(void **state) {
  (void)state;
  const char *f = "adobe-order-event.json";
  expect_rejects_garbage(decode_adobe_order);
  /* Guests, named by the field. */
  expect_mutated_error(decode_adobe_order, f, "data.value.customer_is_guest",
                       "\"1\"",
                       "data.value.customer_is_guest: a guest checkout; "
                       "nothing to attribute");
  expect_mutated_error(decode_adobe_order, f, "data.value.customer_id", "null",
                       "data.value.customer_id: missing (a guest checkout; "
                       "nothing to attribute)");
  expect_mutated_error(decode_adobe_order, f, "data.value.customer_is_guest",
                       "\"maybe\"",
                       "data.value.customer_is_guest: \"maybe\" is not a flag "
                       "(0/1)");
  /* Wrong shape. */
  size_t len;
  char *customer = fixture("adobe-customer-event.json", &len);
  expect_error(decode_adobe_order, customer, len,
               "type: \"com.adobe.commerce.observer.customer_sav...\" is "
               "not an order event");
  free(customer);
  expect_mutated_error(decode_adobe_order, f, "data.value", "[]",
                       "data.value: expected object, got array");
  expect_mutated_error(decode_adobe_order, f, "data.value", "{\"sku\": \"x\"}",
                       "record: not an Adobe Commerce order (no \"entity_id\" "
                       "or \"grand_total\")");
  expect_mutated_error(decode_adobe_order, f, "data.value.items", "{}",
                       "data.value.items: expected array, got object");
  /* Bad money and quantities. */
  expect_mutated_error(decode_adobe_order, f, "data.value.grand_total",
                       "\"12,50\"",
                       "data.value.grand_total: not a decimal amount: "
                       "\"12,50\"");
  expect_mutated_error(decode_adobe_order, f, "data.value.items[2].price", "{}",
                       "data.value.items[2].price: expected a decimal amount "
                       "(string or number), got object");
  expect_mutated_error(decode_adobe_order, f, "data.value.items[0].qty_ordered",
                       "\"1.5000\"",
                       "data.value.items[0].qty_ordered: not a whole "
                       "quantity");
  expect_mutated_error(decode_adobe_order, f, "data.value.updated_at",
                       "\"06/04/2024\"",
                       "data.value.updated_at: not a \"YYYY-MM-DD HH:MM:SS\" "
                       "time: \"06/04/2024\"");
  expect_mutated_error(decode_adobe_order, f, "data.value.order_currency_code",
                       NULL,
                       "data.value.order_currency_code: required field "
                       "missing");
  expect_mutated_error(decode_adobe_order, f, "id", "5",
                       "id: expected string, got integer");
  /* No shop anywhere. */
  expect_mutated_error(decode_adobe_order, f, "data._metadata", "{}",
                       "shop: unknown (no website or store code in the payload "
                       "and no default shop configured)");
  expect_mutated_error(decode_adobe_order, "adobe-order-rest.json",
                       "customer_id", "0",
                       "customer_id: missing (a guest checkout; nothing to "
                       "attribute)");
  expect_mutated_error(decode_adobe_order, f, "data.value.state", "\"closed\"",
                       "data.value.total_refunded: required field missing");
}

static void test_adobe_customer(void **state) {
  (void)state;
  size_t len;
  char *body = fixture("adobe-customer-event.json", &len);
  struct lp_customer_event ev = {0};
  char err[256] = "", sha[65];
  assert_int_equal(
      lp_adobe_decode_customer(body, len, "adobe-eu", &ev, err, sizeof(err)),
      0);
  assert_string_equal(ev.event_id,
                      "adobe:0b6f7c2a-5d1e-4a43-9c3e-1f2d3c4b5a69");
  assert_string_equal(ev.shop, "adobe-eu"); /* older client: no codes */
  assert_string_equal(ev.customer_id, "7");
  assert_int_equal(ev.kind, LP_CUSTOMER_UPDATED);
  assert_int_equal(ev.event_time_ms, 1717517104000LL);
  assert_int_equal(ev.customer_created_ms, 1717228800000LL);
  email_sha("alex@example.com", sha);
  assert_string_equal(ev.email_sha256, sha);
  assert_int_equal(ev.marketing_consent, LP_CONSENT_SUBSCRIBED);
  assert_string_equal(ev.birthday, "1990-05-17");
  assert_string_equal(ev.source, "adobe_commerce");
  lp_customer_event_clear(&ev);
  free(body);

  body = fixture("adobe-customer-rest.json", &len);
  assert_int_equal(
      lp_adobe_decode_customer(body, len, "adobe-eu", &ev, err, sizeof(err)),
      0);
  assert_int_equal(ev.kind, LP_CUSTOMER_CREATED); /* created == updated */
  assert_int_equal(ev.marketing_consent, LP_CONSENT_UNSUBSCRIBED);
  assert_string_equal(ev.event_id, "adobe:customer:7:2024-06-01 08:00:00");
  assert_string_equal(ev.birthday, "1990-05-17");
  lp_customer_event_clear(&ev);
  free(body);
}

static void test_adobe_customer_rejects(void **state) {
  (void)state;
  const char *f = "adobe-customer-event.json";
  expect_rejects_garbage(decode_adobe_customer);
  expect_mutated_error(decode_adobe_customer, f, "data.value.id", NULL,
                       "data.value.entity_id: required field missing");
  expect_mutated_error(decode_adobe_customer, f, "data.value.dob",
                       "\"17/05/1990\"",
                       "data.value.dob: \"17/05/1990\" is not a YYYY-MM-DD "
                       "date");
  expect_mutated_error(decode_adobe_customer, f, "data.value.dob",
                       "\"1990-13-17\"",
                       "birthday: \"1990-13-17\" is not YYYY-MM-DD or --MM-DD");
  expect_mutated_error(
      decode_adobe_customer, f, "data.value.extension_attributes.is_subscribed",
      "[]",
      "data.value.extension_attributes.is_subscribed: expected a flag (0/1), "
      "got array");
  expect_mutated_error(decode_adobe_customer, f, "data.value.email", "7",
                       "data.value.email: expected string, got integer");
  size_t len;
  char *order = fixture("adobe-order-event.json", &len);
  expect_error(decode_adobe_customer, order, len,
               "type: \"com.adobe.commerce.observer.sales_order_...\" "
               "is not a customer event");
  free(order);
  order = fixture("adobe-order-rest.json", &len);
  expect_error(decode_adobe_customer, order, len,
               "record: an Adobe Commerce order, not a customer");
  free(order);
}

/* ---- Adobe signatures --------------------------------------------------- */

static EVP_PKEY *rsa_key(void) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
  EVP_PKEY *key = NULL;
  assert_non_null(ctx);
  assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
  assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
  assert_int_equal(EVP_PKEY_keygen(ctx, &key), 1);
  EVP_PKEY_CTX_free(ctx);
  return key;
}

static char *public_pem(EVP_PKEY *key) {
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  char *pem = lp_xstrndup(data, (size_t)n);
  BIO_free(bio);
  return pem;
}

/* base64 RSA-SHA256 signature of body (caller frees). */
static char *sign(EVP_PKEY *key, const char *body) {
  unsigned char sig[512];
  size_t n = sizeof(sig);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
  assert_int_equal(
      EVP_DigestSign(ctx, sig, &n, (const unsigned char *)body, strlen(body)),
      1);
  EVP_MD_CTX_free(ctx);
  char *b64 = lp_xmalloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)b64, sig, (int)n);
  return b64;
}

static void test_adobe_signature(void **state) {
  (void)state;
  EVP_PKEY *key = rsa_key(), *other = rsa_key();
  char *pem = public_pem(key), *other_pem = public_pem(other);
  size_t len;
  char *body = fixture("adobe-order-event.json", &len);
  char *sig = sign(key, body);
  const char *keys[] = {pem, other_pem};
  const char *other_only[] = {other_pem};
  const char *with_garbage[] = {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END "
                                "PUBLIC KEY-----\n",
                                NULL, "not a pem", pem};

  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len, sig, NULL), 1);
  /* Either signature may be the good one; either key may verify it. */
  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len, "AAAA", sig), 1);
  assert_int_equal(lp_adobe_signature_ok(with_garbage, 4, body, len, sig, sig),
                   1);
  /* Tampered body: one byte off, or one byte short. */
  char *tampered = lp_xstrdup(body);
  tampered[10] ^= 1;
  assert_int_equal(lp_adobe_signature_ok(keys, 2, tampered, len, sig, sig), 0);
  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len - 1, sig, sig), 0);
  /* Wrong key. */
  assert_int_equal(lp_adobe_signature_ok(other_only, 1, body, len, sig, sig),
                   0);
  /* Garbage base64 and missing signatures. */
  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len, "%%%%", "a"), 0);
  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len, "", NULL), 0);
  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len, NULL, NULL), 0);
  char *spaced = lp_xasprintf(" %s", sig);
  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len, spaced, NULL), 0);
  char *cut = lp_xstrndup(sig, strlen(sig) - 4);
  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len, cut, NULL), 0);
  char *huge = lp_xmalloc(8001);
  memset(huge, 'A', 8000);
  huge[8000] = '\0';
  assert_int_equal(lp_adobe_signature_ok(keys, 2, body, len, huge, huge), 0);
  /* No keys, or only bad ones. */
  assert_int_equal(lp_adobe_signature_ok(keys, 0, body, len, sig, sig), 0);
  assert_int_equal(lp_adobe_signature_ok(with_garbage, 3, body, len, sig, sig),
                   0);
  assert_int_equal(lp_adobe_signature_ok(NULL, 2, body, len, sig, sig), 0);
  /* An empty body signs and verifies too. */
  char *empty_sig = sign(key, "");
  assert_int_equal(lp_adobe_signature_ok(keys, 2, NULL, 0, empty_sig, NULL), 1);
  /* Keys parsed once, reused: the unusable PEMs are skipped. */
  struct lp_adobe_keys *parsed = lp_adobe_keys_new(with_garbage, 4);
  assert_int_equal(lp_adobe_keys_count(parsed), 1);
  for (int i = 0; i < 3; i++)
    assert_int_equal(lp_adobe_keys_verify(parsed, body, len, NULL, sig), 1);
  assert_int_equal(lp_adobe_keys_verify(parsed, tampered, len, sig, sig), 0);
  lp_adobe_keys_destroy(&parsed);
  assert_null(parsed);
  lp_adobe_keys_destroy(&parsed); /* NULL is fine */
  assert_int_equal(lp_adobe_keys_verify(NULL, body, len, sig, sig), 0);
  parsed = lp_adobe_keys_new(NULL, 3);
  assert_int_equal(lp_adobe_keys_count(parsed), 0);
  assert_int_equal(lp_adobe_keys_verify(parsed, body, len, sig, sig), 0);
  lp_adobe_keys_destroy(&parsed);
  /* Nothing left in OpenSSL's error queue. */
  assert_int_equal(ERR_peek_error(), 0);
  free(empty_sig);
  free(huge);
  free(cut);
  free(spaced);
  free(tampered);
  free(sig);
  free(body);
  free(pem);
  free(other_pem);
  EVP_PKEY_free(key);
  EVP_PKEY_free(other);
}

/* ---- robustness --------------------------------------------------------- */

/* Every prefix of each fixture, and the whole with each byte replaced by a
 * few troublesome ones, through every decoder: an error or a valid event,
 * never a crash or a leak (run under ASan). */
static void test_never_crashes(void **state) {
  (void)state;
  static const char *const names[] = {"shopify-refund.json",
                                      "shopify-refund-no-transactions.json",
                                      "bc-order.json",
                                      "bc-products.json",
                                      "bc-customer.json",
                                      "bc-webhook-refund.json",
                                      "bc-refunds.json",
                                      "adobe-order-event.json",
                                      "adobe-customer-event.json",
                                      "adobe-order-rest.json"};
  static const decode_fn decoders[] = {
      decode_refund,      decode_refund_order_id, decode_bc_order,
      decode_bc_products, decode_bc_customer,     decode_bc_webhook,
      decode_bc_refunds,  decode_adobe_order,     decode_adobe_customer};
  static const char bytes[] = {'"', '0', '-', '}', '\0', (char)0xc3};
  long ok = 0, rejected = 0;
  for (size_t f = 0; f < LP_ARRAY_LEN(names); f++) {
    size_t len;
    char *body = fixture(names[f], &len);
    char *copy = lp_xmalloc(len + 1);
    for (size_t d = 0; d < LP_ARRAY_LEN(decoders); d++) {
      for (size_t cut = 0; cut <= len; cut += 7) {
        char err[256];
        memcpy(copy, body, cut);
        if (decoders[d](copy, cut, err, sizeof(err)) == 0)
          ok++;
        else
          rejected++;
      }
      for (size_t i = 0; i < len; i += 13)
        for (size_t b = 0; b < sizeof(bytes); b++) {
          char err[256];
          memcpy(copy, body, len);
          copy[i] = bytes[b];
          if (decoders[d](copy, len, err, sizeof(err)) == 0)
            ok++;
          else {
            rejected++;
            assert_true(lp_utf8_valid(err, strlen(err)));
          }
        }
    }
    free(copy);
    free(body);
  }
  assert_true(ok > 0 && rejected > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shopify_refund_from_transactions),
      cmocka_unit_test(test_shopify_refund_without_transactions),
      cmocka_unit_test(test_shopify_refund_order_id),
      cmocka_unit_test(test_shopify_refund_rejects),
      cmocka_unit_test(test_bc_order_paid),
      cmocka_unit_test(test_bc_order_status_table),
      cmocka_unit_test(test_bc_order_refunded),
      cmocka_unit_test(test_bc_refund_total),
      cmocka_unit_test(test_bc_order_rejects),
      cmocka_unit_test(test_bc_products_rejects),
      cmocka_unit_test(test_bc_hints_required),
      cmocka_unit_test(test_bc_customer),
      cmocka_unit_test(test_bc_customer_rejects),
      cmocka_unit_test(test_bc_webhook_parse),
      cmocka_unit_test(test_adobe_order_event),
      cmocka_unit_test(test_adobe_order_rest),
      cmocka_unit_test(test_adobe_order_rejects),
      cmocka_unit_test(test_adobe_customer),
      cmocka_unit_test(test_adobe_customer_rejects),
      cmocka_unit_test(test_adobe_signature),
      cmocka_unit_test(test_never_crashes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
