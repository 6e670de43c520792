/*
 * test_timer_plan.c — the planning of member timers (timer_plan.c): fixed
 * and model win-back, replenishment, birthdays (29 February, year wrap),
 * cart abandonment and its cancel rule, points expiry nudges, timer ids,
 * and garbage inputs of each. The model is the CDNOW fit of
 * docs/models.md, as the trainer writes it; the edge members are those
 * of test_model.c's sweep.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "activity_apply.h"
#include "model.h"
#include "profile.h"
#include "timer_plan.h"
#include "timers.h"
#include "util.h"

#define DAY LP_PLAN_DAY_MS
#define HOUR LP_PLAN_HOUR_MS
#define D0 1767225600000LL /* 2026-01-01T00:00:00Z: "day 0" */
#define AT 1768003200000LL /* 2026-01-10T00:00:00Z: an event time */

static const char CDNOW_MODEL[] =
    "{\"version\": \"clv-19970930-9d302c51\", \"time_unit\": \"weeks\",\n"
    " \"bgnbd\": {\"r\": 0.242595, \"alpha\": 4.413601, \"a\": 0.792921,\n"
    "           \"b\": 2.425903, \"fit\": {\"converged\": true}},\n"
    " \"gamma_gamma\": {\"p\": 6.2496, \"q\": 3.7442, \"gamma\": 15.4435,\n"
    "           \"fit\": {\"converged\": true}}}";

/* CDNOW in weeks and days, a = 1, a + b < 1, a huge alpha, q just above
 * 1, a tiny r: the variants test_model.c sweeps. */
static const char *const variants[][2] = {
    {NULL, NULL},
    {"\"weeks\"", "\"days\""},
    {"\"a\": 0.792921", "\"a\": 1"},
    {"\"b\": 2.425903", "\"b\": 0.1"},
    {"\"alpha\": 4.413601", "\"alpha\": 1e9"},
    {"\"q\": 3.7442", "\"q\": 1.000001"},
    {"\"r\": 0.242595", "\"r\": 1e-6"},
};

static struct lp_model model_variant(size_t v) {
  char *json;
  if (variants[v][0]) {
    const char *at = strstr(CDNOW_MODEL, variants[v][0]);
    if (!at)
      fail_msg("no %s in the model", variants[v][0]);
    json = lp_xasprintf("%.*s%s%s", (int)(at - CDNOW_MODEL), CDNOW_MODEL,
                        variants[v][1], at + strlen(variants[v][0]));
  } else {
    json = lp_xstrdup(CDNOW_MODEL);
  }
  struct lp_model m;
  char err[512] = "";
  if (lp_model_parse(json, strlen(json), "cdnow.json", &m, err, sizeof(err)))
    fail_msg("model %zu: %s", v, err);
  free(json);
  return m;
}

/* A member with orders / purchase days, first and last order that many
 * days before AT. */
static void member(struct lp_profile *p, int64_t orders, int64_t days,
                   int64_t first_ago, int64_t last_ago) {
  memset(p, 0, sizeof(*p));
  p->exists = 1;
  p->order_count = orders;
  p->orders_placed = orders;
  p->purchase_days = days;
  p->first_order_ms = AT - first_ago * DAY;
  p->last_order_ms = AT - last_ago * DAY;
  p->lifetime_spend_micros = orders * 50000000;
}

static double p_alive(const struct lp_model *m, const struct lp_profile *p,
                      int64_t t) {
  struct lp_scores s;
  lp_model_score(m, p, t, &s);
  return s.p_alive;
}

/* 00:00 UTC of y-mon-d, by libc. */
static int64_t utc(int y, int mon, int d) {
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = y - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = d;
  return (int64_t)timegm(&tm) * 1000;
}

/* ---- win-back ----------------------------------------------------------- */

static void test_winback_fixed(void **state) {
  (void)state;
  /* The example: orders on day 0 and day 10, 45 days. */
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  p.order_count = p.purchase_days = 2;
  p.first_order_ms = D0;
  p.last_order_ms = D0 + 10 * DAY;
  assert_int_equal(lp_plan_winback_fixed(p.last_order_ms, 45), D0 + 55 * DAY);
  /* An order on day 50 moves it to day 95. */
  p.last_order_ms = D0 + 50 * DAY;
  assert_int_equal(lp_plan_winback_fixed(p.last_order_ms, 45), D0 + 95 * DAY);
  assert_int_equal(lp_plan_winback_fixed(D0, 0), D0);
  /* No order, negative days, out of range: no timer. */
  assert_int_equal(lp_plan_winback_fixed(0, 45), 0);
  assert_int_equal(lp_plan_winback_fixed(-5, 45), 0);
  assert_int_equal(lp_plan_winback_fixed(D0, -1), 0);
  assert_int_equal(lp_plan_winback_fixed(INT64_MAX, 1), 0);
  assert_int_equal(lp_plan_winback_fixed(LP_PLAN_TIME_MAX - DAY + 1, 1), 0);
  assert_int_equal(lp_plan_winback_fixed(D0, 2147483647), 0);
}

/* BG/NBD P(alive) never rises as time goes on without an order: what the
 * bisection relies on. Every edge member of every model variant, from
 * before its first order to a century on. */
static void test_p_alive_monotone(void **state) {
  (void)state;
  static const struct {
    int64_t orders, days, first_ago, last_ago;
  } members[] = {
      {1, 1, 0, 0},    {520, 520, 3652, 2},
      {6, 6, 200, 0},  {6, 6, 200, 10},
      {0, 2, 100, 50}, {3, 3, 40, 40},
      {2, 2, 1, 0},    {1000000, 1000000, 7300, 0},
  };
  for (size_t v = 0; v < LP_ARRAY_LEN(variants); v++) {
    struct lp_model m = model_variant(v);
    for (size_t i = 0; i < LP_ARRAY_LEN(members); i++) {
      struct lp_profile p;
      member(&p, members[i].orders, members[i].days, members[i].first_ago,
             members[i].last_ago);
      double prev = 2;
      int64_t t = p.first_order_ms - 10 * DAY;
      for (int step = 0; step < 2000; step++) {
        double now = p_alive(&m, &p, t);
        if (!(now >= 0 && now <= 1) || now > prev)
          fail_msg("model %zu member %zu: P(alive) %.17g at +%lld h after "
                   "%.17g",
                   v, i, now, (long long)((t - p.first_order_ms) / HOUR), prev);
        prev = now;
        /* Hours first, then days, then months. */
        t += step < 500 ? HOUR : step < 1500 ? DAY : 30 * DAY;
      }
    }
  }
}

/* due is the first hour of the grid from `from` below the threshold. */
static void assert_crossing(const struct lp_model *m,
                            const struct lp_profile *p, double threshold,
                            int64_t from, int64_t due) {
  assert_true(due >= from);
  assert_int_equal((due - from) % HOUR, 0);
  double at = p_alive(m, p, due);
  if (!(at < threshold))
    fail_msg("P(alive) at the due time %.17g >= %g", at, threshold);
  if (due > from) {
    double before = p_alive(m, p, due - HOUR);
    if (!(before >= threshold))
      fail_msg("P(alive) an hour before the due time %.17g < %g", before,
               threshold);
  }
}

static void test_winback_p_alive(void **state) {
  (void)state;
  struct lp_model m = model_variant(0);
  struct lp_profile p;
  int64_t due = 0;
  const int64_t horizon = 3 * 365 * DAY;
  static const double thresholds[] = {0.9, 0.7, 0.5, 0.3, 0.1};
  member(&p, 6, 6, 200, 0);
  for (size_t i = 0; i < LP_ARRAY_LEN(thresholds); i++) {
    assert_int_equal(
        lp_plan_winback_p_alive(&m, &p, thresholds[i], AT, horizon, &due), 0);
    assert_crossing(&m, &p, thresholds[i], AT, due);
    /* Right after a purchase P(alive) is 1 / (1 + a / (b + x - 1)),
     * about 0.89 here: 0.9 is crossed at once. */
    assert_true((due > AT) == (p_alive(&m, &p, AT) >= thresholds[i]));
    /* Deterministic. */
    int64_t again = 0;
    assert_int_equal(
        lp_plan_winback_p_alive(&m, &p, thresholds[i], AT, horizon, &again), 0);
    assert_int_equal(again, due);
  }
  /* Every model variant and a long-lapsed member. */
  for (size_t v = 0; v < LP_ARRAY_LEN(variants); v++) {
    struct lp_model mv = model_variant(v);
    member(&p, 10, 10, 700, 5);
    int rc = lp_plan_winback_p_alive(&mv, &p, 0.5, AT, 50 * 365 * DAY, &due);
    assert_true(rc == 0 || rc == 1);
    if (rc == 0)
      assert_crossing(&mv, &p, 0.5, AT, due);
    else
      assert_true(p_alive(&mv, &p, AT + 50 * 365 * DAY) >= 0.5);
  }
  /* A horizon not a whole number of hours: the grid stops at the last
   * whole hour. */
  member(&p, 6, 6, 200, 0);
  assert_int_equal(
      lp_plan_winback_p_alive(&m, &p, 0.5, AT + 17, horizon + 1234, &due), 0);
  assert_crossing(&m, &p, 0.5, AT + 17, due);
  /* Already below at from: due at from. */
  member(&p, 6, 6, 400, 380);
  assert_true(p_alive(&m, &p, AT) < 0.5);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0.5, AT, horizon, &due), 0);
  assert_int_equal(due, AT);
  /* Never within the horizon: one purchase day (P = 1), or too short. */
  member(&p, 1, 1, 10, 10);
  due = 42;
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0.5, AT, horizon, &due), 1);
  assert_int_equal(due, 42);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 1.0, AT, horizon, &due), 1);
  member(&p, 6, 6, 200, 0);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0.01, AT, DAY, &due), 1);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0.5, AT, 0, &due), 1);
  /* Bad input. */
  assert_int_equal(lp_plan_winback_p_alive(NULL, &p, 0.5, AT, horizon, &due),
                   -1);
  assert_int_equal(lp_plan_winback_p_alive(&m, NULL, 0.5, AT, horizon, &due),
                   -1);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0.5, AT, horizon, NULL), -1);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0, AT, horizon, &due), -1);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, -1, AT, horizon, &due), -1);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 1.5, AT, horizon, &due), -1);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, NAN, AT, horizon, &due), -1);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0.5, AT, -1, &due), -1);
  assert_int_equal(
      lp_plan_winback_p_alive(&m, &p, 0.5, AT, INT64_MAX - AT, &due), -1);
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0.5, INT64_MIN, 0, &due),
                   -1);
  memset(&p, 0, sizeof(p)); /* no order */
  assert_int_equal(lp_plan_winback_p_alive(&m, &p, 0.5, AT, horizon, &due), -1);
}

/* ---- replenishment ------------------------------------------------------ */

static void test_replenishment(void **state) {
  (void)state;
  struct lp_model m = model_variant(0);
  struct lp_profile p;
  int64_t due = 0, no_model = 0;
  /* Orders on day 0, 30, 60 (three purchase days): next on day 90. */
  memset(&p, 0, sizeof(p));
  p.order_count = p.orders_placed = p.purchase_days = 3;
  p.first_order_ms = D0;
  p.last_order_ms = D0 + 60 * DAY;
  struct lp_scores s;
  lp_model_score(&m, &p, D0 + 60 * DAY, &s);
  assert_true(s.has_next);
  assert_int_equal(s.next_purchase_ms, D0 + 90 * DAY);
  assert_int_equal(lp_plan_replenishment(&m, &p, D0 + 60 * DAY, 7, &due), 0);
  assert_int_equal(due, D0 + 83 * DAY);
  assert_int_equal(lp_plan_replenishment(NULL, &p, D0 + 60 * DAY, 7, &no_model),
                   0);
  assert_int_equal(no_model, due);
  assert_int_equal(lp_plan_replenishment(&m, &p, D0 + 60 * DAY, 0, &due), 0);
  assert_int_equal(due, D0 + 90 * DAY);
  /* Never before the event: a lead past the event, or overdue. */
  assert_int_equal(lp_plan_replenishment(&m, &p, D0 + 60 * DAY, 45, &due), 0);
  assert_int_equal(due, D0 + 60 * DAY);
  assert_int_equal(lp_plan_replenishment(&m, &p, D0 + 100 * DAY, 7, &due), 0);
  assert_int_equal(due, D0 + 100 * DAY);
  /* The model and the fallback agree on the edge members. */
  static const struct {
    int64_t orders, days, first_ago, last_ago;
  } members[] = {{520, 520, 3652, 2}, {6, 4, 200, 0}, {2, 2, 1, 0},
                 {0, 2, 100, 50},     {9, 3, 90, 9},  {3, 3, 40, 40}};
  for (size_t i = 0; i < LP_ARRAY_LEN(members); i++) {
    member(&p, members[i].orders, members[i].days, members[i].first_ago,
           members[i].last_ago);
    int a = lp_plan_replenishment(&m, &p, AT, 3, &due);
    int b = lp_plan_replenishment(NULL, &p, AT, 3, &no_model);
    assert_int_equal(a, b);
    if (a == 0)
      assert_int_equal(due, no_model);
  }
  /* No rhythm: one purchase day, no order, orders within one ms. */
  member(&p, 1, 1, 10, 10);
  assert_int_equal(lp_plan_replenishment(&m, &p, AT, 3, &due), 1);
  assert_int_equal(lp_plan_replenishment(NULL, &p, AT, 3, &due), 1);
  member(&p, 5, 1, 10, 10);
  assert_int_equal(lp_plan_replenishment(NULL, &p, AT, 3, &due), 1);
  memset(&p, 0, sizeof(p));
  assert_int_equal(lp_plan_replenishment(&m, &p, AT, 3, &due), 1);
  assert_int_equal(lp_plan_replenishment(NULL, &p, AT, 3, &due), 1);
  /* Bad input. */
  member(&p, 6, 6, 200, 0);
  assert_int_equal(lp_plan_replenishment(&m, NULL, AT, 3, &due), -1);
  assert_int_equal(lp_plan_replenishment(&m, &p, AT, 3, NULL), -1);
  assert_int_equal(lp_plan_replenishment(&m, &p, AT, -1, &due), -1);
  assert_int_equal(lp_plan_replenishment(&m, &p, INT64_MAX, 3, &due), -1);
  p.last_order_ms = INT64_MAX;
  assert_int_equal(lp_plan_replenishment(NULL, &p, AT, 3, &due), -1);
}

/* ---- birthday ----------------------------------------------------------- */

static void expect_birthday(const char *text, int64_t now, int64_t want) {
  int64_t due = 0;
  if (lp_plan_birthday(text, now, &due) != 0)
    fail_msg("%s at %lld: refused", text, (long long)now);
  if (due != want)
    fail_msg("%s at %lld: %lld, want %lld", text, (long long)now,
             (long long)due, (long long)want);
}

static void test_birthday(void **state) {
  (void)state;
  expect_birthday("1990-06-15", AT, utc(2026, 6, 15));
  expect_birthday("--06-15", AT, utc(2026, 6, 15));
  /* Strictly after now: at the midnight itself and during the day, next
   * year's; a millisecond before, today's. */
  expect_birthday("1990-06-15", utc(2026, 6, 15), utc(2027, 6, 15));
  expect_birthday("1990-06-15", utc(2026, 6, 15) + 10 * HOUR, utc(2027, 6, 15));
  expect_birthday("1990-06-15", utc(2026, 6, 15) - 1, utc(2026, 6, 15));
  /* Year wrap. */
  expect_birthday("--01-01", utc(2026, 12, 31) + 12 * HOUR, utc(2027, 1, 1));
  expect_birthday("--12-31", utc(2026, 12, 31) + 12 * HOUR, utc(2027, 12, 31));
  expect_birthday("--01-10", AT, utc(2027, 1, 10));
  /* 29 February: 28 February in non-leap years. */
  expect_birthday("2000-02-29", AT, utc(2026, 2, 28));
  expect_birthday("--02-29", AT, utc(2026, 2, 28));
  expect_birthday("2000-02-29", utc(2026, 2, 28), utc(2027, 2, 28));
  expect_birthday("2000-02-29", utc(2027, 3, 1), utc(2028, 2, 29));
  expect_birthday("2000-02-29", utc(2028, 2, 28) + HOUR, utc(2028, 2, 29));
  expect_birthday("2000-02-29", utc(2100, 1, 1), utc(2100, 2, 28));
  expect_birthday("2000-02-29", utc(2399, 12, 1), utc(2400, 2, 29));
  /* Before 1970 and at the epoch. */
  expect_birthday("--03-01", utc(1960, 2, 29), utc(1960, 3, 1));
  expect_birthday("--01-01", 0, utc(1971, 1, 1));
  expect_birthday("--01-01", -1, 0);
  /* Every day of a year, against libc. */
  for (int mon = 1; mon <= 12; mon++)
    for (int d = 1; d <= 31; d++) {
      int64_t t = utc(2026, mon, d);
      char text[32];
      snprintf(text, sizeof(text), "--%02d-%02d", mon, d);
      int64_t due = 0;
      int rc = lp_plan_birthday(text, AT, &due);
      /* libc normalises 31 April to 1 May: a real date is one that
       * stays in its month (29 February always is, without a year). */
      int64_t next_month = mon == 12 ? utc(2027, 1, 1) : utc(2026, mon + 1, 1);
      int real = t < next_month || (mon == 2 && d == 29);
      if (!real) {
        assert_int_equal(rc, -1);
        continue;
      }
      assert_int_equal(rc, 0);
      int64_t want = mon == 2 && d == 29 ? utc(2026, 2, 28) : t;
      if (want <= AT)
        want = mon == 2 && d == 29 ? utc(2027, 2, 28) : utc(2027, mon, d);
      assert_int_equal(due, want);
    }
  /* Garbage: never a crash, always -1 with *due untouched. */
  static const char *const bad[] = {"",
                                    "1990",
                                    "1990-02-29",
                                    "1990-13-01",
                                    "1990-00-10",
                                    "1990-01-00",
                                    "1990-1-01",
                                    "1990-01-1",
                                    "--2-29",
                                    "--02-30",
                                    "--06-31",
                                    "--13-01",
                                    "--00-01",
                                    "abcd-ef-gh",
                                    "1990-06-15x",
                                    " 1990-06-15",
                                    "1990/06/15",
                                    "-1990-06-15",
                                    "--06-15 ",
                                    "--0a-15",
                                    "19a0-06-15",
                                    "1990-06-15T00:00:00Z",
                                    "---06-15",
                                    "--06--15",
                                    "+1990-06-15",
                                    "\xff\xfe-06-15"};
  for (size_t i = 0; i < LP_ARRAY_LEN(bad); i++) {
    int64_t due = 7;
    if (lp_plan_birthday(bad[i], AT, &due) != -1)
      fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(due, 7);
  }
  int64_t due = 0;
  assert_int_equal(lp_plan_birthday(NULL, AT, &due), -1);
  assert_int_equal(lp_plan_birthday("--06-15", AT, NULL), -1);
  assert_int_equal(lp_plan_birthday("--06-15", INT64_MAX, &due), -1);
  assert_int_equal(lp_plan_birthday("--06-15", INT64_MIN, &due), -1);
}

/* ---- cart, expiry, ids -------------------------------------------------- */

static void test_cart(void **state) {
  (void)state;
  assert_int_equal(lp_plan_cart_abandon(AT, 30), AT + 30 * 60000);
  assert_int_equal(lp_plan_cart_abandon(AT, 0), AT);
  assert_int_equal(lp_plan_cart_abandon(0, 30), 0);
  assert_int_equal(lp_plan_cart_abandon(AT, -1), 0);
  assert_int_equal(lp_plan_cart_abandon(INT64_MAX, 30), 0);

  struct lp_activity_view v;
  memset(&v, 0, sizeof(v));
  assert_false(lp_plan_cart_timer_wanted(NULL));
  assert_false(lp_plan_cart_timer_wanted(&v)); /* no cart */
  v.cart_at = AT;
  v.cart_state = LP_CART_OPEN;
  assert_true(lp_plan_cart_timer_wanted(&v));
  v.cart_state = LP_CART_ABANDONED;
  assert_true(lp_plan_cart_timer_wanted(&v));
  v.cart_state = LP_CART_CHECKOUT; /* checkout started: cancel */
  assert_false(lp_plan_cart_timer_wanted(&v));
  v.cart_state = (enum lp_cart_state)17;
  assert_false(lp_plan_cart_timer_wanted(&v));
  v.cart_state = LP_CART_OPEN;
  v.cart_at = 0;
  assert_false(lp_plan_cart_timer_wanted(&v));

  /* Through the activity fold: an order clears the cart, so the timer is
   * cancelled. */
  const char *part = "at\t1768003200000\ncart\t5000000\ncart_at\t1768003200000"
                     "\ncart_lines\t1\ncart_state\topen\n";
  struct lp_activity_view pv;
  lp_activity_part_parse(part, &pv);
  assert_int_equal(pv.cart_state, LP_CART_OPEN);
  assert_true(lp_plan_cart_timer_wanted(&pv));
  assert_int_equal(lp_plan_cart_abandon(pv.cart_at, 60), AT + HOUR);
  lp_activity_view_clear(&pv);
  char *cleared = NULL;
  lp_activity_clear_cart(part, AT + 1000, &cleared);
  lp_activity_part_parse(cleared, &pv);
  assert_false(lp_plan_cart_timer_wanted(&pv));
  lp_activity_view_clear(&pv);
  free(cleared);
  /* Damaged text: no crash, no timer. */
  lp_activity_part_parse("cart_state\t\xff\ncart_at\tx\n", &pv);
  assert_false(lp_plan_cart_timer_wanted(&pv));
  lp_activity_view_clear(&pv);
}

static void test_expiry(void **state) {
  (void)state;
  assert_int_equal(lp_plan_points_expiry_nudge(AT + 30 * DAY, 7),
                   AT + 23 * DAY);
  assert_int_equal(lp_plan_points_expiry_nudge(AT, 0), AT);
  assert_int_equal(lp_plan_points_expiry_nudge(0, 7), 0);
  assert_int_equal(lp_plan_points_expiry_nudge(AT, -7), 0);
  assert_int_equal(lp_plan_points_expiry_nudge(INT64_MAX, 7), 0);
  assert_int_equal(lp_plan_points_expiry_nudge(AT, 2147483647), 0);
}

static void test_timer_id(void **state) {
  (void)state;
  char id[LP_TIMERS_ID_MAX + 1];
  static const char *const names[] = {"winback", "replenishment", "birthday",
                                      "expiry", "cart"};
  for (int k = 0; k < LP_TIMER_KIND_COUNT; k++) {
    assert_string_equal(lp_timer_kind_name((enum lp_timer_kind)k), names[k]);
    char want[64];
    snprintf(want, sizeof(want), "%s:shop1:c42", names[k]);
    assert_int_equal(lp_plan_timer_id((enum lp_timer_kind)k, "shop1:c42", NULL,
                                      id, sizeof(id)),
                     (int)strlen(want));
    assert_string_equal(id, want);
  }
  assert_null(lp_timer_kind_name((enum lp_timer_kind)LP_TIMER_KIND_COUNT));
  assert_int_equal(
      lp_plan_timer_id(LP_TIMER_EXPIRY, "shop1:c42", "2026-12", id, sizeof(id)),
      24);
  assert_string_equal(id, "expiry:shop1:c42:2026-12");
  assert_int_equal(
      lp_plan_timer_id(LP_TIMER_WINBACK, "shop1:c42", "", id, sizeof(id)), 17);
  assert_string_equal(id, "winback:shop1:c42");
  /* Exactly fits, one byte short. */
  char small[18];
  assert_int_equal(lp_plan_timer_id(LP_TIMER_WINBACK, "shop1:c42", NULL, small,
                                    sizeof(small)),
                   17);
  assert_int_equal(lp_plan_timer_id(LP_TIMER_WINBACK, "shop1:c42", NULL, small,
                                    sizeof(small) - 1),
                   -1);
  assert_string_equal(small, "");
  /* Bad input. */
  strcpy(id, "x");
  assert_int_equal(lp_plan_timer_id((enum lp_timer_kind)9, "shop1:c42", NULL,
                                    id, sizeof(id)),
                   -1);
  assert_string_equal(id, "");
  assert_int_equal(lp_plan_timer_id(LP_TIMER_CART, "", NULL, id, sizeof(id)),
                   -1);
  assert_int_equal(lp_plan_timer_id(LP_TIMER_CART, NULL, NULL, id, sizeof(id)),
                   -1);
  assert_int_equal(lp_plan_timer_id(LP_TIMER_CART, "shop1:c42", NULL, NULL, 10),
                   -1);
  assert_int_equal(lp_plan_timer_id(LP_TIMER_CART, "shop1:c42", NULL, id, 0),
                   -1);
  /* Longer than timers.h accepts, even with room in the buffer. */
  char key[LP_TIMERS_ID_MAX];
  memset(key, 'k', sizeof(key) - 1);
  key[sizeof(key) - 1] = '\0';
  char big[2 * LP_TIMERS_ID_MAX];
  assert_int_equal(lp_plan_timer_id(LP_TIMER_CART, key, NULL, big, sizeof(big)),
                   -1);
  key[LP_TIMERS_ID_MAX - 6] = '\0'; /* "cart:" + 506 = 511 */
  assert_int_equal(lp_plan_timer_id(LP_TIMER_CART, key, NULL, big, sizeof(big)),
                   LP_TIMERS_ID_MAX - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_winback_fixed),
      cmocka_unit_test(test_p_alive_monotone),
      cmocka_unit_test(test_winback_p_alive),
      cmocka_unit_test(test_replenishment),
      cmocka_unit_test(test_birthday),
      cmocka_unit_test(test_cart),
      cmocka_unit_test(test_expiry),
      cmocka_unit_test(test_timer_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
