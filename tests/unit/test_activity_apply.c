/*
 * test_activity_apply.c — the pure fold of ActivityEvents into the activity
 * part (common/activity_apply.h): exact halving after one half-life and
 * agreement with the real curve, ordering and tie rules, the name cap and
 * the floor, out-of-order events (decay never rewinds), the cart's replace,
 * checkout, abandon and clear (and a late cart event after a clear), byte
 * identity of replays, parse(apply(...)) round trips with escaping, and
 * garbage state text that must never crash either side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>

#include "activity_apply.h"
#include "events.h"
#include "util.h"

/* 2022-01-01T00:00:00.000Z */
#define T0 1640995200000LL
#define H LP_ACTIVITY_DEFAULT_HALF_LIFE_MS

static struct lp_activity_event event(enum lp_activity_kind kind, int64_t t,
                                      const char *category, const char *brand) {
  struct lp_activity_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.event_id = "e";
  ev.shop = "demo.myshopify.com";
  ev.customer_id = "42";
  ev.event_time_ms = t;
  ev.kind = kind;
  ev.category = (char *)category;
  ev.brand = (char *)brand;
  return ev;
}

/* Applies ev to *state in place (frees the old text). */
static void apply(char **state, const struct lp_activity_event *ev,
                  const struct lp_activity_params *p) {
  char *next = NULL;
  lp_activity_apply(*state, ev, p, &next);
  assert_non_null(next);
  free(*state);
  *state = next;
}

static void view(char **state, const char *category, const char *brand,
                 int64_t t) {
  struct lp_activity_event ev =
      event(LP_ACTIVITY_PRODUCT_VIEW, t, category, brand);
  ev.product_id = "p1";
  apply(state, &ev, NULL);
}

static void test_decay_exact(void **st) {
  (void)st;
  assert_int_equal(lp_activity_decay(1000000, H, H), 500000);
  assert_int_equal(lp_activity_decay(1000000, 2 * H, H), 250000);
  assert_int_equal(lp_activity_decay(1000000, 0, H), 1000000);
  assert_int_equal(lp_activity_decay(1000000, -5, H), 1000000);
  assert_int_equal(lp_activity_decay(1000000, H / 2, H), 707107);
  assert_int_equal(lp_activity_decay(1000000, 100 * H, H), 0);
  assert_int_equal(lp_activity_decay(0, H, H), 0);
  assert_int_equal(lp_activity_decay(INT64_MAX, H, H),
                   (int64_t)((uint64_t)INT64_MAX / 2 + 1));
  /* Within one micro-unit of the real curve, at many elapsed times. */
  for (int64_t dt = 0; dt < 5 * H; dt += H / 97 + 12345) {
    double want = 1e6 * exp2(-(double)dt / (double)H);
    int64_t got = lp_activity_decay(1000000, dt, H);
    assert_true(fabs((double)got - want) <= 1.0);
  }
  /* Monotone: more time never gives a larger score. */
  int64_t prev = INT64_MAX;
  for (int64_t dt = 0; dt < H; dt += H / 1000) {
    int64_t got = lp_activity_decay(123456789, dt, H);
    assert_true(got <= prev);
    prev = got;
  }
}

static void test_halves_after_h(void **st) {
  (void)st;
  char *s = NULL;
  view(&s, "shoes", "Acme", T0);
  assert_string_equal(s, "at\t1640995200000\nviews\t1\n"
                         "v:b:Acme\t1000000\nv:c:shoes\t1000000\n");
  /* A review one half-life later: no weight, only decay and `at`. */
  struct lp_activity_event ev =
      event(LP_ACTIVITY_REVIEW_WRITTEN, T0 + H, NULL, NULL);
  ev.rating = 5;
  ev.has_rating = 1;
  apply(&s, &ev, NULL);
  char want[256];
  snprintf(want, sizeof(want),
           "at\t%lld\nviews\t1\nv:b:Acme\t500000\nv:c:shoes\t500000\n",
           (long long)(T0 + H));
  assert_string_equal(s, want);
  /* Page view weight 0.5, only with a category or brand. */
  struct lp_activity_event pv =
      event(LP_ACTIVITY_PAGE_VIEW, T0 + H, NULL, NULL);
  apply(&s, &pv, NULL);
  assert_non_null(strstr(s, "views\t2\n"));
  assert_non_null(strstr(s, "v:c:shoes\t500000\n"));
  pv.category = "shoes";
  apply(&s, &pv, NULL);
  assert_non_null(strstr(s, "v:c:shoes\t1000000\n"));
  assert_non_null(strstr(s, "v:b:Acme\t500000\n"));
  free(s);
}

static void test_order_and_ties(void **st) {
  (void)st;
  char *s = NULL;
  view(&s, "zeta", "Zed", T0);
  view(&s, "alpha", "Alp", T0);
  view(&s, "mid", NULL, T0);
  view(&s, "mid", NULL, T0);
  assert_string_equal(s, "at\t1640995200000\nviews\t4\n"
                         "v:b:Alp\t1000000\nv:b:Zed\t1000000\n"
                         "v:c:alpha\t1000000\nv:c:mid\t2000000\n"
                         "v:c:zeta\t1000000\n");
  struct lp_activity_view v;
  assert_int_equal(lp_activity_part_parse(s, &v), 0);
  assert_string_equal(v.top_category, "mid");
  assert_int_equal(v.top_category_score, 2000000);
  assert_string_equal(v.top_brand, "Alp"); /* tie: smaller name */
  assert_int_equal(v.n_categories, 3);
  assert_int_equal(v.n_brands, 2);
  lp_activity_view_clear(&v);
  free(s);
}

static void test_cap_and_floor(void **st) {
  (void)st;
  struct lp_activity_params p;
  lp_activity_params_default(&p);
  p.max_names = 2;
  char *s = NULL;
  /* a (1.0) and b (2.0) fill the cap; c arrives two half-lives later,
   * when they have decayed to 0.25 and 0.5, and displaces a. */
  const char *names[] = {"a", "b", "b", "c", "c", "c"};
  for (size_t i = 0; i < 6; i++) {
    struct lp_activity_event ev = event(
        LP_ACTIVITY_PRODUCT_VIEW, i < 3 ? T0 : T0 + 2 * H, names[i], NULL);
    ev.sku = "s";
    apply(&s, &ev, &p);
  }
  char want[128];
  snprintf(want, sizeof(want),
           "at\t%lld\nviews\t6\nv:c:b\t500000\nv:c:c\t3000000\n",
           (long long)(T0 + 2 * H));
  assert_string_equal(s, want);
  /* A newcomer tying with a held name loses to the smaller name. */
  struct lp_activity_event tie =
      event(LP_ACTIVITY_PAGE_VIEW, T0 + 2 * H, "d", NULL);
  apply(&s, &tie, &p);
  snprintf(want, sizeof(want),
           "at\t%lld\nviews\t7\nv:c:b\t500000\nv:c:c\t3000000\n",
           (long long)(T0 + 2 * H));
  assert_string_equal(s, want);
  free(s);
  s = NULL;
  /* Equal scores at the cap: the smaller names stay. */
  const char *tied[] = {"c", "a", "b"};
  for (size_t i = 0; i < 3; i++) {
    struct lp_activity_event ev =
        event(LP_ACTIVITY_PRODUCT_VIEW, T0, tied[i], tied[i]);
    ev.sku = "s";
    apply(&s, &ev, &p);
  }
  assert_string_equal(s, "at\t1640995200000\nviews\t3\n"
                         "v:b:a\t1000000\nv:b:b\t1000000\n"
                         "v:c:a\t1000000\nv:c:b\t1000000\n");
  free(s);
  s = NULL;
  /* Below the floor: dropped (a page view's 0.5 under a 0.6 floor), and a
   * score that decays under it disappears. */
  p.max_names = 10;
  p.floor_micros = 600000;
  struct lp_activity_event pv = event(LP_ACTIVITY_PAGE_VIEW, T0, "x", NULL);
  apply(&s, &pv, &p);
  assert_string_equal(s, "at\t1640995200000\nviews\t1\n");
  struct lp_activity_event prod =
      event(LP_ACTIVITY_PRODUCT_VIEW, T0, "y", NULL);
  prod.sku = "s";
  apply(&s, &prod, &p);
  assert_non_null(strstr(s, "v:c:y\t1000000\n"));
  struct lp_activity_event later =
      event(LP_ACTIVITY_SOCIAL_FOLLOW, T0 + H, NULL, NULL);
  apply(&s, &later, &p);
  assert_null(strstr(s, "v:c:y"));
  /* max_names 0 tracks nothing; bad params fall back or clamp. */
  p.max_names = -3;
  p.half_life_ms = 0;
  p.floor_micros = 0;
  apply(&s, &prod, &p);
  assert_null(strstr(s, "v:c:"));
  free(s);
}

static void test_out_of_order(void **st) {
  (void)st;
  char *a = NULL, *b = NULL;
  /* In order: T0 then T0+H. */
  view(&a, "x", NULL, T0);
  view(&a, "x", NULL, T0 + H);
  /* Reversed: the older event is decayed to `at`, nothing rewinds. */
  view(&b, "x", NULL, T0 + H);
  view(&b, "x", NULL, T0);
  char want[128];
  snprintf(want, sizeof(want), "at\t%lld\nviews\t2\nv:c:x\t1500000\n",
           (long long)(T0 + H));
  assert_string_equal(a, want);
  assert_string_equal(b, want);
  /* A name seen only in an old event enters at its decayed weight. */
  view(&b, "old", NULL, T0 - H);
  assert_non_null(strstr(b, "v:c:old\t250000\n"));
  snprintf(want, sizeof(want), "at\t%lld\n", (long long)(T0 + H));
  assert_true(strncmp(b, want, strlen(want)) == 0);
  free(a);
  free(b);
}

static struct lp_line_item line(const char *sku, const char *category,
                                const char *brand, int32_t q, int64_t price) {
  struct lp_line_item li;
  memset(&li, 0, sizeof(li));
  li.sku = (char *)sku;
  li.product_id = "prod";
  li.category = (char *)category;
  li.brand = (char *)brand;
  li.quantity = q;
  li.unit_price_micros = price;
  return li;
}

static struct lp_activity_event cart_event(int64_t t, struct lp_line_item *l,
                                           size_t n, int64_t value) {
  struct lp_activity_event ev = event(LP_ACTIVITY_CART_UPDATED, t, NULL, NULL);
  ev.cart_id = "c1";
  ev.currency = "EUR";
  ev.cart_value_micros = value;
  ev.has_cart_value = 1;
  ev.line_items = l;
  ev.n_line_items = n;
  return ev;
}

static void test_cart(void **st) {
  (void)st;
  char *s = NULL;
  struct lp_line_item l1[] = {line("S-1", "shoes", "Acme", 1, 30000000),
                              line("S-2", "socks", NULL, 4, 10000000),
                              line(NULL, "shoes", "Acme", 1, 5000000)};
  struct lp_activity_event ev = cart_event(T0, l1, 3, 75000000);
  apply(&s, &ev, NULL);
  assert_string_equal(s, "at\t1640995200000\ncart\t75000000\ncur\tEUR\n"
                         "cart_at\t1640995200000\ncart_id\tc1\n"
                         "cart_top\tS-2\ncart_lines\t3\ncart_state\topen\n"
                         "v:b:Acme\t4000000\nv:c:shoes\t4000000\n"
                         "v:c:socks\t2000000\n");
  /* Replace: the newer cart wins entirely. */
  struct lp_line_item l2[] = {line("S-9", NULL, NULL, 1, 9000000)};
  ev = cart_event(T0 + 1000, l2, 1, 9000000);
  ev.cart_id = NULL;
  apply(&s, &ev, NULL);
  assert_non_null(strstr(s, "cart\t9000000\n"));
  assert_non_null(strstr(s, "cart_top\tS-9\ncart_lines\t1\n"));
  assert_null(strstr(s, "cart_id"));
  /* Checkout, then abandoned. */
  struct lp_activity_event co =
      event(LP_ACTIVITY_CHECKOUT_STARTED, T0 + 2000, NULL, NULL);
  co.cart_id = "chk-7";
  apply(&s, &co, NULL);
  assert_non_null(strstr(s, "cart_id\tchk-7\n"));
  assert_non_null(strstr(s, "cart_state\tcheckout\n"));
  struct lp_activity_event ab =
      event(LP_ACTIVITY_CART_ABANDONED, T0 + 3000, NULL, NULL);
  apply(&s, &ab, NULL);
  assert_non_null(strstr(s, "cart_state\tabandoned\n"));
  /* A late, older cart update does not reopen it (but still scores). */
  ev = cart_event(T0 + 500, l1, 3, 75000000);
  apply(&s, &ev, NULL);
  assert_non_null(strstr(s, "cart\t9000000\n"));
  assert_non_null(strstr(s, "cart_state\tabandoned\n"));
  /* An order older than the cart leaves it alone. */
  char *c = NULL;
  lp_activity_clear_cart(s, T0 + 2500, &c);
  assert_string_equal(c, s);
  free(c);
  /* A newer order clears it; cart_at moves to the order. */
  lp_activity_clear_cart(s, T0 + 4000, &c);
  assert_null(strstr(c, "cart\t"));
  assert_null(strstr(c, "cart_state"));
  assert_null(strstr(c, "cur\t"));
  assert_null(strstr(c, "cart_top"));
  assert_non_null(strstr(c, "cart_at\t1640995204000\n"));
  assert_non_null(strstr(c, "v:c:shoes\t"));
  /* ...and a cart event from before the order cannot reopen it. */
  ev = cart_event(T0 + 3500, l2, 1, 9000000);
  apply(&c, &ev, NULL);
  assert_null(strstr(c, "cart_state"));
  ev.event_time_ms = T0 + 5000;
  apply(&c, &ev, NULL);
  assert_non_null(strstr(c, "cart_state\topen\n"));
  free(c);
  /* Clearing an empty part. */
  lp_activity_clear_cart(NULL, T0, &c);
  assert_string_equal(c, "cart_at\t1640995200000\n");
  free(c);
  free(s);
}

/* A fixed mixed sequence, folded from empty. */
static char *fold_sequence(void) {
  char *s = NULL;
  struct lp_line_item l[] = {line("A", "tops", "Brand\tX", 2, 1500000),
                             line("B", "tops", NULL, 1, 999)};
  for (int i = 0; i < 200; i++) {
    int64_t t = T0 + (int64_t)i * 3600 * 1000 - (i % 7 == 3 ? 86400000 : 0);
    struct lp_activity_event ev;
    switch (i % 5) {
    case 0:
      ev = event(LP_ACTIVITY_PRODUCT_VIEW, t, i % 2 ? "shoes" : "hats", "Acme");
      ev.sku = "s";
      break;
    case 1:
      ev = event(LP_ACTIVITY_PAGE_VIEW, t, "sale", NULL);
      break;
    case 2:
      ev = cart_event(t, l, 2, 3000999);
      break;
    case 3:
      ev = event(LP_ACTIVITY_CHECKOUT_STARTED, t, NULL, NULL);
      break;
    default:
      ev = event(LP_ACTIVITY_REFERRAL, t, NULL, NULL);
      break;
    }
    apply(&s, &ev, NULL);
  }
  return s;
}

static void test_replay_identical(void **st) {
  (void)st;
  char *a = fold_sequence(), *b = fold_sequence();
  assert_string_equal(a, b);
  /* Reparsing and reapplying an event that changes nothing keeps bytes. */
  char *c = NULL;
  lp_activity_clear_cart(a, 0, &c);
  assert_string_equal(a, c);
  free(a);
  free(b);
  free(c);
}

static void test_round_trip(void **st) {
  (void)st;
  char *s = NULL;
  view(&s, "a\tb\nc\\d", "Br and", T0);
  view(&s, "plain", NULL, T0);
  view(&s, "a\tb\nc\\d", NULL, T0);
  assert_non_null(strstr(s, "v:c:a\\tb\\nc\\\\d\t2000000\n"));
  struct lp_line_item l[] = {line("SKU\t1", NULL, NULL, 1, 2000000)};
  struct lp_activity_event ev = cart_event(T0 + 60000, l, 1, 2000000);
  apply(&s, &ev, NULL);
  struct lp_activity_view v;
  assert_int_equal(lp_activity_part_parse(s, &v), 0);
  assert_int_equal(v.at, T0 + 60000);
  assert_int_equal(v.views, 3);
  assert_string_equal(v.top_category, "a\tb\nc\\d");
  assert_string_equal(v.top_brand, "Br and");
  assert_int_equal(v.cart_state, LP_CART_OPEN);
  assert_int_equal(v.cart_micros, 2000000);
  assert_string_equal(v.currency, "EUR");
  assert_string_equal(v.cart_id, "c1");
  assert_string_equal(v.cart_top, "SKU\t1");
  assert_int_equal(v.cart_lines, 1);
  assert_int_equal(v.cart_at, T0 + 60000);
  int64_t stored = v.top_category_score;
  /* Decayed to now: one half-life after `at` halves it exactly. */
  lp_activity_view_at(&v, T0 + 60000 + H, NULL);
  assert_int_equal(v.top_category_score, (stored + 1) / 2); /* half up */
  assert_int_equal(v.cart_age_ms, H);
  /* Never backwards. */
  lp_activity_view_at(&v, T0, NULL);
  assert_int_equal(v.top_category_score, (stored + 1) / 2); /* half up */
  assert_int_equal(v.cart_age_ms, 0);
  lp_activity_view_clear(&v);
  lp_activity_view_clear(&v); /* twice is harmless */
  assert_string_equal(lp_cart_state_name(LP_CART_ABANDONED), "abandoned");
  assert_null(lp_cart_state_name((enum lp_cart_state)9));
  /* Empty part. */
  assert_int_equal(lp_activity_part_parse(NULL, &v), 0);
  assert_null(v.top_category);
  assert_int_equal(v.cart_state, LP_CART_NONE);
  lp_activity_view_clear(&v);
  free(s);
}

static void check_garbage(const char *text) {
  struct lp_activity_view v;
  (void)lp_activity_part_parse(text, &v);
  lp_activity_view_at(&v, T0, NULL);
  lp_activity_view_clear(&v);
  char *s = NULL;
  struct lp_activity_event ev = event(LP_ACTIVITY_PRODUCT_VIEW, T0, "k", "b");
  ev.sku = "s";
  lp_activity_apply(text, &ev, NULL, &s);
  /* Whatever came in, what goes out parses cleanly. */
  assert_int_equal(lp_activity_part_parse(s, &v), 0);
  lp_activity_view_clear(&v);
  char *c = NULL;
  lp_activity_clear_cart(text, T0, &c);
  assert_int_equal(lp_activity_part_parse(c, &v), 0);
  lp_activity_view_clear(&v);
  free(c);
  free(s);
}

static void test_garbage(void **st) {
  (void)st;
  const char *cases[] = {
      "",
      "\n\n\n",
      "\t\t\t",
      "at\n",
      "at\t\n",
      "at\tabc\n",
      "at\t99999999999999999999\n",
      "at\t-9223372036854775808\nv:c:x\t5\n",
      "at\t9223372036854775807\nv:c:x\t9223372036854775807\n",
      "v:c:\t5\n",
      "v:c:x\t-3\n",
      "v:q:x\t3\n",
      "v:c:x\t1\nv:c:x\t2\n",
      "cart_state\tweird\n",
      "cart_state\topen",
      "cart_at\t-9223372036854775808\ncart\t1\n",
      "cart_lines\t-\n",
      "cur\t\ncart_id\t\\\n",
      "unknown\tline\nnotab\n\\\\\\\t\\",
      "views\t9223372036854775807\n",
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    check_garbage(cases[i]);
  struct lp_activity_view v;
  assert_int_equal(lp_activity_part_parse("at\tabc\nviews\t3\nzz\t1\n", &v),
                   -1);
  assert_int_equal(v.views, 3); /* the good lines still count */
  lp_activity_view_clear(&v);
  assert_int_equal(lp_activity_part_parse("zz\t1\nnot a line\n", &v), 0);
  lp_activity_view_clear(&v);
  /* Random text built from the format's own pieces. */
  const char *pieces[] = {
      "at",        "views",    "cart", "cur",
      "cart_at",   "v:c:",     "v:b:", "\t",
      "\n",        "\\",       "-",    "123",
      "open",      "checkout", "x",    "9223372036854775807",
      "cart_state"};
  unsigned seed = 12345;
  for (int n = 0; n < 2000; n++) {
    struct lp_buf b;
    lp_buf_init(&b);
    int len = (int)(seed % 24);
    for (int i = 0; i < len; i++) {
      seed = seed * 1103515245u + 12345u;
      lp_buf_append_str(
          &b, pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))]);
    }
    seed = seed * 1103515245u + 12345u;
    check_garbage(lp_buf_cstr(&b));
    lp_buf_free(&b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decay_exact),
      cmocka_unit_test(test_halves_after_h),
      cmocka_unit_test(test_order_and_ties),
      cmocka_unit_test(test_cap_and_floor),
      cmocka_unit_test(test_out_of_order),
      cmocka_unit_test(test_cart),
      cmocka_unit_test(test_replay_identical),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_garbage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
