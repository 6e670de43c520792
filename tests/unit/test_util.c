/*
 * test_util.c — money and time parsing, UTF-8 checks, buffers, record
 * validation (events.c), and the pure profile updates and snapshot format
 * (profile_apply.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"
#include "profile.h"
#include "profile_apply.h"
#include "util.h"
#include "webhook.h"

static void test_money_parse(void **state) {
  (void)state;
  int64_t v;
  assert_int_equal(lp_money_parse("404.95", &v), 0);
  assert_int_equal(v, 404950000);
  assert_int_equal(lp_money_parse("0", &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(lp_money_parse("-3.5", &v), 0);
  assert_int_equal(v, -3500000);
  assert_int_equal(lp_money_parse("0.000001", &v), 0);
  assert_int_equal(v, 1);
  /* Rejected: empty, junk, exponent, 7 decimals, overflow, bare dot. */
  assert_int_equal(lp_money_parse("", &v), -1);
  assert_int_equal(lp_money_parse("abc", &v), -1);
  assert_int_equal(lp_money_parse("1e300", &v), -1);
  assert_int_equal(lp_money_parse("1.0000001", &v), -1);
  assert_int_equal(lp_money_parse("99999999999999999999", &v), -1);
  assert_int_equal(lp_money_parse("1.", &v), -1);
  assert_int_equal(lp_money_parse(".5", &v), -1);
  assert_int_equal(lp_money_parse("12 ", &v), -1);
}

static void test_money_format(void **state) {
  (void)state;
  char out[32];
  lp_money_format(404950000, out, sizeof(out));
  assert_string_equal(out, "404.95");
  lp_money_format(0, out, sizeof(out));
  assert_string_equal(out, "0.00");
  lp_money_format(-1, out, sizeof(out));
  assert_string_equal(out, "-0.000001");
  lp_money_format(1234500, out, sizeof(out));
  assert_string_equal(out, "1.2345");
  lp_money_format(-9000000000000000LL, out, sizeof(out));
  assert_string_equal(out, "-9000000000.00");
  lp_money_format(INT64_MIN, out, sizeof(out));
  assert_string_equal(out, "-9223372036854.775808");
  lp_money_format(1234500, out, 4); /* cut, still terminated */
  assert_string_equal(out, "1.2");
}

static void test_time_parse(void **state) {
  (void)state;
  int64_t ms;
  assert_int_equal(lp_time_parse_iso8601("1970-01-01T00:00:00Z", &ms), 0);
  assert_int_equal(ms, 0);
  /* The Shopify sample: 19:00 at UTC-5 is midnight UTC on New Year. */
  assert_int_equal(lp_time_parse_iso8601("2021-12-31T19:00:00-05:00", &ms), 0);
  assert_int_equal(ms, 1640995200000LL);
  assert_int_equal(lp_time_parse_iso8601("2022-01-01T00:00:00.123Z", &ms), 0);
  assert_int_equal(ms, 1640995200123LL);
  assert_int_equal(lp_time_parse_iso8601("2024-02-29", &ms), 0);
  assert_int_equal(ms, 1709164800000LL);
  assert_int_equal(lp_time_parse_iso8601("2024-02-29T12:00:00+0130", &ms), 0);
  assert_int_equal(ms, 1709164800000LL + 12 * 3600000LL - 90 * 60000LL);
  assert_int_equal(lp_time_parse_iso8601("yesterday", &ms), -1);
  assert_int_equal(lp_time_parse_iso8601("2024-13-01", &ms), -1);
  assert_int_equal(lp_time_parse_iso8601("2024-01-01T25:00:00Z", &ms), -1);
  assert_int_equal(lp_time_parse_iso8601("2024-01-01T10:00:00Zjunk", &ms), -1);
  char out[40];
  lp_time_format_iso8601(1640995200123LL, out, sizeof(out));
  assert_string_equal(out, "2022-01-01T00:00:00.123Z");
  lp_time_format_iso8601(-1, out, sizeof(out));
  assert_string_equal(out, "1969-12-31T23:59:59.999Z");
  lp_time_format_iso8601(0, out, sizeof(out));
  assert_string_equal(out, "1970-01-01T00:00:00.000Z");
  lp_time_format_iso8601(253402300799999LL, out, sizeof(out));
  assert_string_equal(out, "9999-12-31T23:59:59.999Z");
  lp_time_format_iso8601(253402300800000LL, out, sizeof(out));
  assert_string_equal(out, "10000-01-01T00:00:00.000Z");
}

static void test_utf8(void **state) {
  (void)state;
  assert_true(lp_utf8_valid("plain", 5));
  assert_true(lp_utf8_valid("caf\xc3\xa9", 5));
  assert_true(lp_utf8_valid("\xf0\x9f\x8e\x81", 4)); /* gift emoji */
  assert_false(lp_utf8_valid("\xc3", 1));            /* truncated */
  assert_false(lp_utf8_valid("\xc0\xaf", 2));        /* overlong */
  assert_false(lp_utf8_valid("\xed\xa0\x80", 3));    /* surrogate */
  assert_false(lp_utf8_valid("\xff", 1));
  /* Long ASCII runs (checked eight bytes at a time) with one bad or one
   * multi-byte character at every position, and a truncated sequence at
   * the very end. */
  char buf[40];
  for (size_t at = 0; at < 24; at++) {
    memset(buf, 'a', sizeof(buf));
    buf[at] = (char)0xff;
    assert_false(lp_utf8_valid(buf, 24));
    memcpy(buf + at, "\xc3\xa9", 2);
    assert_true(lp_utf8_valid(buf, 26));
    buf[at + 1] = 'a';
    assert_false(lp_utf8_valid(buf, 26));
  }
  memset(buf, 'a', sizeof(buf));
  assert_true(lp_utf8_valid(buf, sizeof(buf)));
  buf[sizeof(buf) - 1] = (char)0xc3;
  assert_false(lp_utf8_valid(buf, sizeof(buf)));
}

/* Decimal digits written backwards: the edges of both ranges. */
static void test_digits_back(void **state) {
  (void)state;
  static const struct {
    int64_t v;
    const char *text;
  } cases[] = {{0, "0"},
               {7, "7"},
               {-7, "-7"},
               {1234567890, "1234567890"},
               {INT64_MAX, "9223372036854775807"},
               {INT64_MIN, "-9223372036854775808"}};
  char buf[24];
  for (size_t i = 0; i < LP_ARRAY_LEN(cases); i++) {
    char *end = buf + sizeof(buf);
    char *p = lp_i64_digits_back(end, cases[i].v);
    assert_int_equal((size_t)(end - p), strlen(cases[i].text));
    assert_memory_equal(p, cases[i].text, strlen(cases[i].text));
  }
  char *end = buf + sizeof(buf);
  char *p = lp_u64_digits_back(end, UINT64_MAX);
  assert_int_equal(end - p, 20);
  assert_memory_equal(p, "18446744073709551615", 20);
}

/* Arena: aligned, distinct, copies intact across block boundaries, and a
 * reset reuses the blocks it has (a steady batch size allocates nothing
 * new: the same addresses come back). */
static void test_arena(void **state) {
  (void)state;
  struct lp_arena a;
  lp_arena_init(&a);
  assert_null(lp_arena_strdup(&a, NULL));
  char *first[2] = {NULL, NULL};
  for (int round = 0; round < 2; round++) {
    lp_arena_reset(&a);
    char *prev = NULL;
    for (int i = 0; i < 3000; i++) {
      char text[32];
      snprintf(text, sizeof(text), "string-%d", i);
      char *s = lp_arena_strdup(&a, text);
      assert_string_equal(s, text);
      assert_int_equal((uintptr_t)s % 8, 0);
      assert_ptr_not_equal(s, prev);
      prev = s;
      if (i == 0)
        first[round] = s;
    }
    /* Larger than a block: its own block, still usable. */
    char *big = lp_arena_alloc(&a, 100000);
    memset(big, 'x', 100000);
    assert_int_equal(big[99999], 'x');
    char *n = lp_arena_strndup(&a, "abcdef", 3);
    assert_string_equal(n, "abc");
  }
  assert_ptr_equal(first[0], first[1]);
  assert_null(lp_dup_in(NULL, NULL));
  char *heap = lp_dup_in(NULL, "heap");
  assert_string_equal(heap, "heap");
  free(heap);
  lp_arena_free(&a);
  lp_arena_free(&a); /* idempotent */
}

static void test_buf(void **state) {
  (void)state;
  struct lp_buf b;
  lp_buf_init(&b);
  for (int i = 0; i < 1000; i++)
    lp_buf_appendf(&b, "%d,", i);
  assert_true(b.len > 1000);
  assert_memory_equal(b.data, "0,1,2,", 6);
  assert_int_equal(strlen(lp_buf_cstr(&b)), b.len);
  lp_buf_reset(&b);
  assert_int_equal(b.len, 0);
  lp_buf_free(&b);
}

static void fill_order(struct lp_order_event *ev) {
  memset(ev, 0, sizeof(*ev));
  ev->event_id = lp_xstrdup("e1");
  ev->shop = lp_xstrdup("shop");
  ev->order_id = lp_xstrdup("o1");
  ev->customer_id = lp_xstrdup("c1");
  ev->currency = lp_xstrdup("EUR");
  ev->event_time_ms = 1700000000000LL;
  ev->total_micros = 10000000;
  ev->n_line_items = 1;
  ev->line_items = lp_xcalloc(1, sizeof(*ev->line_items));
  ev->line_items[0].quantity = 2;
  ev->line_items[0].unit_price_micros = 5000000;
}

static void test_order_validate(void **state) {
  (void)state;
  struct lp_order_event ev;
  char err[256];
  fill_order(&ev);
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), 0);

  ev.line_items[0].quantity = -1;
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), -1);
  assert_string_equal(err, "line_items[0].quantity: -1 is not in 1..1000000");
  ev.line_items[0].quantity = 1;

  ev.total_micros = LP_MAX_MONEY_MICROS + 1;
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), -1);
  assert_string_equal(err, "total: amount out of range");
  ev.total_micros = 1;

  free(ev.currency);
  ev.currency = lp_xstrdup("euro");
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), -1);
  assert_string_equal(err,
                      "currency: \"euro\" is not a 3-letter ISO 4217 code");
  free(ev.currency);
  ev.currency = lp_xstrdup("EUR");

  free(ev.customer_id);
  ev.customer_id = NULL;
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), -1);
  assert_string_equal(err, "customer_id: required field missing");
  ev.customer_id = lp_xmalloc(LP_MAX_STRING_BYTES + 2);
  memset(ev.customer_id, 'x', LP_MAX_STRING_BYTES + 1);
  ev.customer_id[LP_MAX_STRING_BYTES + 1] = '\0';
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), -1);
  assert_string_equal(err,
                      "customer_id: string of 4097 bytes exceeds the limit "
                      "of 4096");
  free(ev.customer_id);
  ev.customer_id = lp_xstrdup("c\xff");
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), -1);
  assert_string_equal(err, "customer_id: not valid UTF-8");

  free(ev.customer_id);
  ev.customer_id = lp_xstrdup("c1");
  ev.event_time_ms = 0;
  assert_int_equal(lp_order_event_validate(&ev, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "event_time: 0 is outside"));
  lp_order_event_clear(&ev);
  assert_null(ev.event_id);
}

static void test_customer_validate(void **state) {
  (void)state;
  struct lp_customer_event ev = {0};
  char err[256];
  ev.event_id = lp_xstrdup("e");
  ev.shop = lp_xstrdup("s");
  ev.customer_id = lp_xstrdup("c");
  ev.event_time_ms = 1700000000000LL;
  ev.birthday = lp_xstrdup("1990-02-28");
  assert_int_equal(lp_customer_event_validate(&ev, err, sizeof(err)), 0);
  free(ev.birthday);
  ev.birthday = lp_xstrdup("--12-24");
  assert_int_equal(lp_customer_event_validate(&ev, err, sizeof(err)), 0);
  free(ev.birthday);
  ev.birthday = lp_xstrdup("24/12/1990");
  assert_int_equal(lp_customer_event_validate(&ev, err, sizeof(err)), -1);
  assert_string_equal(err,
                      "birthday: \"24/12/1990\" is not YYYY-MM-DD or --MM-DD");
  free(ev.birthday);
  ev.birthday = NULL;
  ev.email_sha256 = lp_xstrdup("jon@example.com");
  assert_int_equal(lp_customer_event_validate(&ev, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "never a raw email"));
  lp_customer_event_clear(&ev);
}

static void test_snapshot_parse(void **state) {
  (void)state;
  const char *snap = "spend\t150000000\norders\t3\nfirst\t1700000000000\n"
                     "last\t1700500000000\nb:acme\t0\nc:coffee\t100000000\n"
                     "c:tea\t50000000\ncu\t1\nconsent\tsubscribed\n"
                     "tags\tvip\tnews\\tletter\n_prev\t1\n";
  struct lp_profile p;
  char err[256];
  assert_int_equal(
      lp_profile_from_snapshot(snap, strlen(snap), &p, err, sizeof(err)), 0);
  assert_true(p.exists);
  assert_int_equal(p.lifetime_spend_micros, 150000000);
  assert_int_equal(p.order_count, 3);
  assert_int_equal(p.orders_placed, 3); /* absent: written before it existed */
  assert_int_equal(p.last_order_ms, 1700500000000LL);
  assert_int_equal(p.n_categories, 2);
  assert_string_equal(p.categories[0].name, "coffee"); /* sorted */
  assert_int_equal(p.n_brands, 0); /* zero spend is no affinity */
  assert_int_equal(p.n_tags, 2);
  assert_string_equal(p.tags[0], "vip");
  assert_string_equal(p.tags[1], "news\tletter"); /* escaped TAB */
  assert_int_equal(p.marketing_consent, LP_CONSENT_SUBSCRIBED);
  assert_true(p.order_previously_applied);
  lp_profile_clear(&p);

  assert_int_equal(
      lp_profile_from_snapshot("_prev\t0\n", 8, &p, err, sizeof(err)), 0);
  assert_false(p.exists);
  assert_false(p.order_previously_applied);
  lp_profile_clear(&p);

  assert_int_equal(
      lp_profile_from_snapshot("orders\tx\n", 9, &p, err, sizeof(err)), -1);
  assert_string_equal(err, "snapshot: field orders: bad integer \"x\"");
  assert_int_equal(lp_profile_from_snapshot("nope", 4, &p, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "snapshot: line without a TAB");

  /* Integers: the whole int64 range, nothing outside it, nothing else. */
  static const struct {
    const char *text;
    int ok;
    int64_t value;
  } ints[] = {
      {"spend\t9223372036854775807\n", 1, INT64_MAX},
      {"spend\t-9223372036854775808\n", 1, INT64_MIN},
      {"spend\t-42\n", 1, -42},
      {"spend\t0\n", 1, 0},
      {"spend\t9223372036854775808\n", 0, 0},
      {"spend\t-9223372036854775809\n", 0, 0},
      {"spend\t99999999999999999999\n", 0, 0},
      {"spend\t12a\n", 0, 0},
      {"spend\t-\n", 0, 0},
      {"spend\t\n", 0, 0},
      {"spend\t+5\n", 0, 0},
      {"spend\t 5\n", 0, 0},
  };
  for (size_t i = 0; i < LP_ARRAY_LEN(ints); i++) {
    int rc = lp_profile_from_snapshot(ints[i].text, strlen(ints[i].text), &p,
                                      err, sizeof(err));
    assert_int_equal(rc, ints[i].ok ? 0 : -1);
    if (ints[i].ok)
      assert_true(p.lifetime_spend_micros == ints[i].value);
    lp_profile_clear(&p);
  }
}

/* Builds an order event with one line item (caller clears). */
static void make_order(struct lp_order_event *ev, const char *order_id,
                       enum lp_order_status status, int64_t total,
                       const char *category, const char *brand) {
  fill_order(ev);
  free(ev->order_id);
  ev->order_id = lp_xstrdup(order_id);
  ev->status = status;
  ev->total_micros = total;
  ev->line_items[0].quantity = 1;
  ev->line_items[0].unit_price_micros = total;
  ev->line_items[0].category = lp_xstrdup(category);
  ev->line_items[0].brand = lp_xstrdup(brand);
}

/* Purchase days, as the CLV models count purchases: a second order on the
 * day of the first or the last adds none, a cancellation takes none back,
 * and a part written before "days" existed counts a day per order. */
/* Shopify's webhook signature: base64 HMAC-SHA256 of the raw body, any
 * secret of a rotation list, nothing for a malformed header. */
/* The shared secret a BigCommerce hook echoes: any of a rotation's
 * secrets, exactly (no prefix, no suffix), never an empty one. */
static void test_shared_secret(void **state) {
  (void)state;
  assert_true(lp_shared_secret_ok("s3cret", "s3cret"));
  assert_true(lp_shared_secret_ok("old,s3cret", "s3cret"));
  assert_true(lp_shared_secret_ok("s3cret,new", "new"));
  assert_false(lp_shared_secret_ok("s3cret", "s3cre"));
  assert_false(lp_shared_secret_ok("s3cret", "s3crett"));
  assert_false(lp_shared_secret_ok("s3cret", "S3CRET"));
  assert_false(lp_shared_secret_ok("s3cret", ""));
  assert_false(lp_shared_secret_ok("s3cret", NULL));
  assert_false(lp_shared_secret_ok("", "anything"));
  assert_false(lp_shared_secret_ok(",", ""));
  assert_false(lp_shared_secret_ok(NULL, "s3cret"));
}

static void test_shopify_hmac(void **state) {
  (void)state;
  const char *msg = "The quick brown fox jumps over the lazy dog";
  char sig[45];
  lp_shopify_hmac("key", 3, msg, strlen(msg), sig);
  /* RFC-style vector: f7bc83f4...2d1a3cd8 in base64. */
  assert_string_equal(sig, "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
  assert_true(lp_shopify_hmac_ok("key", msg, strlen(msg), sig));
  assert_true(lp_shopify_hmac_ok("old,key", msg, strlen(msg), sig));
  assert_true(lp_shopify_hmac_ok("key,new", msg, strlen(msg), sig));
  assert_false(lp_shopify_hmac_ok("other", msg, strlen(msg), sig));
  assert_false(lp_shopify_hmac_ok("key", msg, strlen(msg) - 1, sig));
  assert_false(lp_shopify_hmac_ok("key", msg, strlen(msg), NULL));
  assert_false(lp_shopify_hmac_ok("key", msg, strlen(msg), "short"));
  assert_false(lp_shopify_hmac_ok("", msg, strlen(msg), sig));
  assert_false(lp_shopify_hmac_ok(",,", msg, strlen(msg), sig));
  assert_false(lp_shopify_hmac_ok(NULL, msg, strlen(msg), sig));
}

static void test_host_port(void **state) {
  (void)state;
  char host[16];
  int port = 0;
  assert_int_equal(
      lp_host_port_parse("127.0.0.1:6379", host, sizeof(host), &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 6379);
  assert_int_equal(lp_host_port_parse("::1:7000", host, sizeof(host), &port),
                   0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 7000);
  static const char *const bad[] = {"nope",
                                    ":6379",
                                    "h:",
                                    "h:0",
                                    "h:65536",
                                    "h:12x",
                                    "a-very-long-host-name:1"};
  for (size_t i = 0; i < LP_ARRAY_LEN(bad); i++)
    assert_int_equal(lp_host_port_parse(bad[i], host, sizeof(host), &port), -1);
}

/* lp_profile_after_order gives the numbers lp_profile_apply_order
 * stores, for new orders in and out of time order; anything else (a
 * cancellation, a repeat of an applied order) leaves them. */
static void test_profile_after_order(void **state) {
  (void)state;
  char *own = lp_xstrdup(""), *recs[5] = {0};
  const int64_t day = 86400000LL, t0 = 1699920000000LL;
  const int64_t at[] = {10 * day, 3 * day, 10 * day + 3600000LL, 40 * day,
                        20 * day}; /* late, same day, new, late */
  char err[128];
  for (int i = 0; i < 5; i++) {
    struct lp_order_event ev;
    char id[16];
    snprintf(id, sizeof(id), "o%d", i);
    make_order(&ev, id, LP_ORDER_CREATED, 1000000 * (i + 1), "tea", "b");
    ev.event_time_ms = t0 + at[i];
    struct lp_profile before, want, got;
    assert_int_equal(
        lp_profile_from_snapshot(own, strlen(own), &before, err, sizeof(err)),
        0);
    char *next = NULL;
    int prev;
    lp_profile_apply_order(own, NULL, &ev, 64, &next, &recs[i], &prev);
    assert_int_equal(
        lp_profile_from_snapshot(next, strlen(next), &want, err, sizeof(err)),
        0);
    lp_profile_after_order(&before, &ev, &got);
    assert_int_equal(got.order_count, want.order_count);
    assert_int_equal(got.orders_placed, want.orders_placed);
    assert_int_equal(got.purchase_days, want.purchase_days);
    assert_int_equal(got.first_order_ms, want.first_order_ms);
    assert_int_equal(got.last_order_ms, want.last_order_ms);
    assert_int_equal(got.lifetime_spend_micros, want.lifetime_spend_micros);
    /* Cancelling it (or seeing it again) is not counted here. */
    struct lp_profile after_cancel;
    ev.status = LP_ORDER_CANCELLED;
    lp_profile_after_order(&want, &ev, &after_cancel);
    assert_int_equal(after_cancel.order_count, want.order_count);
    ev.status = LP_ORDER_CREATED;
    want.order_previously_applied = 1;
    lp_profile_after_order(&want, &ev, &after_cancel);
    assert_int_equal(after_cancel.order_count, want.order_count);
    assert_int_equal(after_cancel.last_order_ms, want.last_order_ms);
    lp_profile_clear(&before);
    lp_profile_clear(&want);
    free(own);
    own = next;
    lp_order_event_clear(&ev);
  }
  free(own);
  for (int i = 0; i < 5; i++)
    free(recs[i]);
}

static void test_purchase_days(void **state) {
  (void)state;
  struct lp_order_event ev;
  char *own = lp_xstrdup(""), *next = NULL, *rec = NULL;
  int prev;
  const char *ids[] = {"d1", "d2", "d3", "d4"};
  /* 09:00 day 0, 18:00 day 0, day 3, day 3 again */
  const int64_t at[] = {0, 9 * 3600000LL, 3 * 86400000LL,
                        3 * 86400000LL + 3600000LL};
  const int64_t days[] = {1, 1, 2, 2};
  for (int i = 0; i < 4; i++) {
    make_order(&ev, ids[i], LP_ORDER_CREATED, 1000000, "tea", "b");
    ev.event_time_ms = 1699920000000LL + at[i]; /* 2023-11-14 00:00Z */
    lp_profile_apply_order(own, NULL, &ev, 64, &next, &rec, &prev);
    struct lp_profile p;
    char err[128];
    assert_int_equal(
        lp_profile_from_snapshot(next, strlen(next), &p, err, sizeof(err)), 0);
    assert_int_equal(p.purchase_days, days[i]);
    assert_int_equal(p.orders_placed, i + 1);
    lp_profile_clear(&p);
    free(own);
    free(rec);
    own = next;
    lp_order_event_clear(&ev);
  }
  free(own);
  /* Written before "days": 3 orders placed -> 3 days, and the next order
   * on a new day makes 4. */
  const char *old = "spend\t3000000\norders\t3\nfirst\t1600000000000\n"
                    "last\t1600000000000\nplaced\t3\n";
  struct lp_profile p;
  char err[128];
  assert_int_equal(
      lp_profile_from_snapshot(old, strlen(old), &p, err, sizeof(err)), 0);
  assert_int_equal(p.purchase_days, 3);
  lp_profile_clear(&p);
  make_order(&ev, "d9", LP_ORDER_CREATED, 1000000, "tea", "b");
  lp_profile_apply_order(old, NULL, &ev, 64, &next, &rec, &prev);
  assert_non_null(strstr(next, "days\t4\n"));
  free(next);
  free(rec);
  lp_order_event_clear(&ev);
}

static void test_apply_order_and_reverse(void **state) {
  (void)state;
  struct lp_order_event ev;
  char *own = NULL, *rec = NULL, *own2 = NULL, *rec2 = NULL;
  int prev = -1;
  make_order(&ev, "o1", LP_ORDER_CREATED, 40000000, "tea", "Leaf\tCo");
  lp_profile_apply_order("", NULL, &ev, 64, &own, &rec, &prev);
  assert_false(prev);
  assert_string_equal(own, "spend\t40000000\norders\t1\nfirst\t1700000000000"
                           "\nlast\t1700000000000\nplaced\t1\ndays\t1\n"
                           "b:Leaf\\tCo\t40000000\nc:tea\t40000000\n");
  assert_string_equal(rec, "s\t40000000\nb:Leaf\\tCo\t40000000\n"
                           "c:tea\t40000000\n");
  lp_order_event_clear(&ev);

  /* orders/paid of the same order: applied before, nothing changes. */
  make_order(&ev, "o1", LP_ORDER_PAID, 40000000, "tea", "Leaf\tCo");
  lp_profile_apply_order(own, rec, &ev, 64, &own2, &rec2, &prev);
  assert_true(prev);
  assert_string_equal(own2, own);
  assert_null(rec2);
  free(own2);
  lp_order_event_clear(&ev);

  /* A partial refund takes back 10.00 of spend and of the category. */
  make_order(&ev, "o1", LP_ORDER_REFUNDED, 10000000, "tea", "other");
  lp_profile_apply_order(own, rec, &ev, 64, &own2, &rec2, &prev);
  struct lp_profile p;
  char err[128];
  assert_int_equal(
      lp_profile_from_snapshot(own2, strlen(own2), &p, err, sizeof(err)), 0);
  assert_int_equal(p.lifetime_spend_micros, 30000000);
  assert_int_equal(p.order_count, 1);
  assert_int_equal(p.categories[0].spend_micros, 30000000);
  assert_int_equal(p.brands[0].spend_micros, 40000000); /* other brand */
  lp_profile_clear(&p);
  lp_order_event_clear(&ev);

  /* Then a cancellation reverses what is left, and the count. */
  char *own3 = NULL, *rec3 = NULL;
  make_order(&ev, "o1", LP_ORDER_CANCELLED, 40000000, "tea", "Leaf\tCo");
  lp_profile_apply_order(own2, rec2, &ev, 64, &own3, &rec3, &prev);
  assert_int_equal(
      lp_profile_from_snapshot(own3, strlen(own3), &p, err, sizeof(err)), 0);
  assert_int_equal(p.lifetime_spend_micros, 0);
  assert_int_equal(p.order_count, 0);
  assert_int_equal(p.n_categories, 0);
  assert_int_equal(p.n_brands, 0);
  lp_profile_clear(&p);
  assert_non_null(strstr(rec3, "x\t1\n"));
  lp_order_event_clear(&ev);
  free(own2);
  free(rec2);
  free(own3);
  free(rec3);
  free(own);
  free(rec);
}

/* Orders ever placed survive a cancellation; orders counted do not. */
static void test_orders_placed(void **state) {
  (void)state;
  struct lp_order_event ev;
  char *own = NULL, *rec = NULL, *own2 = NULL, *rec2 = NULL, *own3 = NULL,
       *rec3 = NULL;
  int prev = -1;
  make_order(&ev, "o1", LP_ORDER_CREATED, 20000000, "tea", "Acme");
  lp_profile_apply_order("", NULL, &ev, 64, &own, &rec, &prev);
  lp_order_event_clear(&ev);
  make_order(&ev, "o1", LP_ORDER_CANCELLED, 20000000, "tea", "Acme");
  lp_profile_apply_order(own, rec, &ev, 64, &own2, &rec2, &prev);
  lp_order_event_clear(&ev);
  make_order(&ev, "o2", LP_ORDER_CREATED, 30000000, "tea", "Acme");
  lp_profile_apply_order(own2, NULL, &ev, 64, &own3, &rec3, &prev);
  lp_order_event_clear(&ev);
  struct lp_profile p;
  char err[128];
  assert_int_equal(
      lp_profile_from_snapshot(own2, strlen(own2), &p, err, sizeof(err)), 0);
  assert_int_equal(p.order_count, 0);
  assert_int_equal(p.orders_placed, 1);
  lp_profile_clear(&p);
  assert_int_equal(
      lp_profile_from_snapshot(own3, strlen(own3), &p, err, sizeof(err)), 0);
  assert_int_equal(p.order_count, 1);
  assert_int_equal(p.orders_placed, 2);
  assert_int_equal(p.lifetime_spend_micros, 30000000);
  lp_profile_clear(&p);
  /* A part written before "placed" existed counts its orders as placed. */
  make_order(&ev, "o3", LP_ORDER_CREATED, 10000000, "tea", "Acme");
  free(own3);
  free(rec3);
  lp_profile_apply_order("spend\t50000000\norders\t4\n", NULL, &ev, 64, &own3,
                         &rec3, &prev);
  lp_order_event_clear(&ev);
  assert_int_equal(
      lp_profile_from_snapshot(own3, strlen(own3), &p, err, sizeof(err)), 0);
  assert_int_equal(p.order_count, 5);
  assert_int_equal(p.orders_placed, 5);
  lp_profile_clear(&p);
  free(own);
  free(rec);
  free(own2);
  free(rec2);
  free(own3);
  free(rec3);
}

static void test_apply_cancel_first_and_cap(void **state) {
  (void)state;
  struct lp_order_event ev;
  char *own = NULL, *rec = NULL, *own2 = NULL, *rec2 = NULL;
  int prev;
  /* A cancellation before its order leaves a tombstone... */
  make_order(&ev, "o9", LP_ORDER_CANCELLED, 5000000, "tea", "A");
  lp_profile_apply_order(NULL, NULL, &ev, 64, &own, &rec, &prev);
  assert_string_equal(own, "");
  assert_string_equal(rec, "x\t1\n");
  lp_order_event_clear(&ev);
  /* ...so the late order does not count. */
  make_order(&ev, "o9", LP_ORDER_CREATED, 5000000, "tea", "A");
  lp_profile_apply_order(own, rec, &ev, 64, &own2, &rec2, &prev);
  assert_true(prev);
  assert_string_equal(own2, "");
  lp_order_event_clear(&ev);
  free(own);
  free(rec);
  free(own2);
  /* Affinity cap: a third category is not tracked with a cap of 2. */
  own = lp_xstrdup("c:a\t1\nc:b\t1\n");
  make_order(&ev, "o10", LP_ORDER_CREATED, 5000000, "c", "B");
  lp_profile_apply_order(own, NULL, &ev, 2, &own2, &rec2, &prev);
  assert_null(strstr(own2, "c:c\t"));
  assert_non_null(strstr(own2, "b:B\t5000000"));
  lp_order_event_clear(&ev);
  free(own);
  free(own2);
  free(rec2);
}

static void test_apply_customer(void **state) {
  (void)state;
  struct lp_customer_event ev = {0};
  ev.event_time_ms = 2000;
  ev.marketing_consent = LP_CONSENT_SUBSCRIBED;
  ev.tags = lp_xcalloc(1, sizeof(char *));
  ev.tags[ev.n_tags++] = lp_xstrdup("vip");
  char *c1 = NULL, *c2 = NULL;
  lp_profile_apply_customer(NULL, &ev, &c1);
  assert_string_equal(c1, "cu\t2000\nconsent\tsubscribed\ntags\tvip\n");
  /* An older update arriving late does not overwrite the newer one. */
  ev.event_time_ms = 1000;
  ev.marketing_consent = LP_CONSENT_UNSUBSCRIBED;
  lp_profile_apply_customer(c1, &ev, &c2);
  assert_string_equal(c2, c1);
  free(c2);
  /* A newer one with consent "unknown" keeps the consent it had. */
  ev.event_time_ms = 3000;
  ev.marketing_consent = LP_CONSENT_UNKNOWN;
  lp_profile_apply_customer(c1, &ev, &c2);
  assert_string_equal(c2, "cu\t3000\nconsent\tsubscribed\ntags\tvip\n");
  free(c1);
  free(c2);
  lp_customer_event_clear(&ev);
}

/* Order entries: record then memos; compose and parse agree, the memo of
 * each event is found exactly, and malformed memo sections are refused
 * with their position. */
static void test_order_entry(void **state) {
  (void)state;
  struct lp_order_entry e;
  char err[160];
  /* No entry yet: no record, no memos. */
  assert_int_equal(lp_order_entry_parse("", 0, &e, err, sizeof(err)), 0);
  assert_int_equal(e.record_len, 0);
  assert_int_equal(e.n_memos, 0);
  /* A refund of an order never seen: a memo, still no record. */
  const char *snap1 = "spend\t5\n_prev\t0\n";
  char *t1 = lp_order_entry_compose(NULL, NULL, "ev\t1", snap1);
  assert_string_equal(t1, "@ev\\t1\t16\nspend\t5\n_prev\t0\n");
  assert_int_equal(lp_order_entry_parse(t1, strlen(t1), &e, err, sizeof(err)),
                   0);
  assert_int_equal(e.record_len, 0);
  assert_int_equal(e.n_memos, 1);
  const char *m;
  size_t ml;
  assert_int_equal(lp_order_entry_memo(&e, "ev\t1", &m, &ml), 1);
  assert_int_equal(ml, strlen(snap1));
  assert_memory_equal(m, snap1, ml);
  assert_int_equal(lp_order_entry_memo(&e, "ev", &m, &ml), 0);
  /* Then the order itself: the record, both memos in order. A snapshot
   * may hold lines starting with '@' (an escaped tag): lengths decide. */
  const char *snap2 = "c:@x\t1\n_prev\t0\n";
  char *t2 = lp_order_entry_compose("s\t100\n", &e, "ev2", snap2);
  assert_int_equal(lp_order_entry_parse(t2, strlen(t2), &e, err, sizeof(err)),
                   0);
  assert_int_equal(e.record_len, strlen("s\t100\n"));
  assert_memory_equal(e.record, "s\t100\n", e.record_len);
  assert_int_equal(e.n_memos, 2);
  assert_int_equal(lp_order_entry_memo(&e, "ev2", &m, &ml), 1);
  assert_memory_equal(m, snap2, ml);
  assert_int_equal(lp_order_entry_memo(&e, "ev\t1", &m, &ml), 1);
  assert_memory_equal(m, snap1, ml);
  /* A record without memos (never written, but readable). */
  assert_int_equal(
      lp_order_entry_parse("s\t1\nx\t1\n", 8, &e, err, sizeof(err)), 0);
  assert_int_equal(e.record_len, 8);
  assert_int_equal(e.n_memos, 0);
  /* Malformed: no length, length past the end, junk after a memo. */
  static const char *const bad[] = {"s\t1\n@e1\n", "@e1\t99\nabc",
                                    "@e1\t3\nabcjunk", "@\t1\nx", "@e1\t1x\na"};
  for (size_t i = 0; i < LP_ARRAY_LEN(bad); i++) {
    err[0] = '\0';
    assert_int_equal(
        lp_order_entry_parse(bad[i], strlen(bad[i]), &e, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "malformed"));
  }
  assert_int_equal(lp_order_entry_parse("s\t1\n@e1\n", 8, &e, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "order entry: memo 1 at byte 4 is malformed");
  free(t1);
  free(t2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_money_parse),
      cmocka_unit_test(test_money_format),
      cmocka_unit_test(test_time_parse),
      cmocka_unit_test(test_utf8),
      cmocka_unit_test(test_buf),
      cmocka_unit_test(test_digits_back),
      cmocka_unit_test(test_arena),
      cmocka_unit_test(test_order_validate),
      cmocka_unit_test(test_customer_validate),
      cmocka_unit_test(test_snapshot_parse),
      cmocka_unit_test(test_apply_order_and_reverse),
      cmocka_unit_test(test_purchase_days),
      cmocka_unit_test(test_profile_after_order),
      cmocka_unit_test(test_host_port),
      cmocka_unit_test(test_shopify_hmac),
      cmocka_unit_test(test_shared_secret),
      cmocka_unit_test(test_orders_placed),
      cmocka_unit_test(test_apply_cancel_first_and_cap),
      cmocka_unit_test(test_apply_customer),
      cmocka_unit_test(test_order_entry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
