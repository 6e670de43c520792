/*
 * timer_plan.c — due times and ids of the member timers (see
 * timer_plan.h). Pure: integer time arithmetic, the model's closed form,
 * no allocation, no clock.
 */
#include "timer_plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "timers.h"

static const char *const kind_names[LP_TIMER_KIND_COUNT] = {
    [LP_TIMER_WINBACK] = "winback",
    [LP_TIMER_REPLENISHMENT] = "replenishment",
    [LP_TIMER_BIRTHDAY] = "birthday",
    [LP_TIMER_EXPIRY] = "expiry",
    [LP_TIMER_CART] = "cart",
};

const char *lp_timer_kind_name(enum lp_timer_kind kind) {
  return (unsigned)kind < LP_TIMER_KIND_COUNT ? kind_names[kind] : NULL;
}

int lp_plan_timer_id(enum lp_timer_kind kind, const char *member_key,
                     const char *sub, char *out, size_t n) {
  if (out && n > 0)
    out[0] = '\0';
  const char *name = lp_timer_kind_name(kind);
  if (!name || !member_key || !*member_key || !out || n == 0)
    return -1;
  int len = sub && *sub ? snprintf(out, n, "%s:%s:%s", name, member_key, sub)
                        : snprintf(out, n, "%s:%s", name, member_key);
  if (len < 0 || (size_t)len >= n || len > LP_TIMERS_ID_MAX) {
    out[0] = '\0';
    return -1;
  }
  return len;
}

static int in_range(int64_t t) {
  return t >= -LP_PLAN_TIME_MAX && t <= LP_PLAN_TIME_MAX;
}

/* base + count * unit_ms, or 0 when an input is bad or the result leaves
 * the range. count * unit_ms cannot overflow: |count| <= INT_MAX and
 * unit_ms <= a day. */
static int64_t offset_or_zero(int64_t base, int count, int64_t unit_ms,
                              int sign) {
  if (base <= 0 || count < 0 || !in_range(base))
    return 0;
  int64_t delta = (int64_t)count * unit_ms;
  if (delta > 2 * LP_PLAN_TIME_MAX)
    return 0;
  int64_t t = sign > 0 ? base + delta : base - delta;
  return in_range(t) ? t : 0;
}

int64_t lp_plan_winback_fixed(int64_t last_order_ms, int days) {
  return offset_or_zero(last_order_ms, days, LP_PLAN_DAY_MS, 1);
}

int64_t lp_plan_cart_abandon(int64_t cart_at_ms, int minutes) {
  return offset_or_zero(cart_at_ms, minutes, 60000, 1);
}

int64_t lp_plan_points_expiry_nudge(int64_t expires_ms, int days_before) {
  return offset_or_zero(expires_ms, days_before, LP_PLAN_DAY_MS, -1);
}

/* P(alive) of p at t, as the processors score it. */
static double p_alive_at(const struct lp_model *m, const struct lp_profile *p,
                         int64_t t) {
  struct lp_scores s;
  lp_model_score_basic(m, p, t, &s);
  return s.p_alive;
}

int lp_plan_winback_p_alive(const struct lp_model *m,
                            const struct lp_profile *p, double threshold,
                            int64_t from_ms, int64_t horizon_ms,
                            int64_t *due_ms) {
  if (!m || !p || !due_ms || p->first_order_ms == 0 ||
      !(threshold > 0 && threshold <= 1) || horizon_ms < 0 ||
      !in_range(from_ms) || horizon_ms > 2 * LP_PLAN_TIME_MAX ||
      !in_range(from_ms + horizon_ms))
    return -1;
  int64_t hours = horizon_ms / LP_PLAN_HOUR_MS;
  if (p_alive_at(m, p, from_ms) < threshold) {
    *due_ms = from_ms;
    return 0;
  }
  if (p_alive_at(m, p, from_ms + hours * LP_PLAN_HOUR_MS) >= threshold)
    return 1;
  /* Invariant: P(lo) >= threshold > P(hi), lo < hi, in hours from from_ms. */
  int64_t lo = 0, hi = hours;
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (p_alive_at(m, p, from_ms + mid * LP_PLAN_HOUR_MS) < threshold)
      hi = mid;
    else
      lo = mid;
  }
  *due_ms = from_ms + hi * LP_PLAN_HOUR_MS;
  return 0;
}

/* The member's own rhythm exactly as model.c computes next_purchase_ms:
 * last + (last - first) / x, x = counted purchase days - 1. 0 with *next,
 * or 1 when fewer than two purchase days (or all within one ms). */
static int own_rhythm(const struct lp_profile *p, int64_t *next) {
  int64_t counted =
      p->order_count < p->purchase_days ? p->order_count : p->purchase_days;
  if (p->first_order_ms == 0 || counted < 2 ||
      p->last_order_ms <= p->first_order_ms)
    return 1;
  double x = (double)(counted - 1);
  *next = p->last_order_ms +
          (int64_t)((double)(p->last_order_ms - p->first_order_ms) / x);
  return 0;
}

int lp_plan_replenishment(const struct lp_model *m, const struct lp_profile *p,
                          int64_t event_ms, int lead_days, int64_t *due_ms) {
  if (!p || !due_ms || lead_days < 0 || !in_range(event_ms) ||
      !in_range(p->first_order_ms) || !in_range(p->last_order_ms))
    return -1;
  /* The model's next_purchase_ms (lp_model_score_basic) is this same
   * rhythm; computing it directly skips the BG/NBD scoring that planning
   * does not need (twice per order). tests/unit/test_timer_plan.c checks
   * that the two agree. */
  (void)m;
  int64_t next = 0;
  if (own_rhythm(p, &next) != 0)
    return 1;
  if (!in_range(next))
    return -1;
  int64_t due = next - (int64_t)lead_days * LP_PLAN_DAY_MS;
  *due_ms = due > event_ms ? due : event_ms;
  return 0;
}

/* ---- calendar ----------------------------------------------------------- */

static int is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int mon) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return mon == 2 && is_leap(y) ? 29 : dim[mon - 1];
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-mon-d (the
 * era-based civil calendar algorithm: 400-year eras of 146097 days). */
static int64_t days_from_civil(int64_t y, int mon, int d) {
  y -= mon <= 2;
  int64_t era = floor_div(y, 400);
  int64_t yoe = y - era * 400;
  int64_t mp = (mon + 9) % 12;
  int64_t doy = (153 * mp + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* The year of days since 1970-01-01. */
static int64_t year_of_days(int64_t z) {
  z += 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int mon = (int)(mp < 10 ? mp + 3 : mp - 9);
  return yoe + era * 400 + (mon <= 2);
}

/* n ASCII digits at s into *out; 0, or -1 when one is not a digit. */
static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

/* "YYYY-MM-DD" or "--MM-DD" into month and day; 0 or -1. */
static int parse_birthday(const char *s, int *mon, int *day) {
  size_t len = strlen(s);
  int year = -1;
  const char *md;
  if (len == 10 && s[4] == '-' && s[7] == '-') {
    if (digits(s, 4, &year))
      return -1;
    md = s + 5;
  } else if (len == 7 && s[0] == '-' && s[1] == '-' && s[4] == '-') {
    md = s + 2;
  } else {
    return -1;
  }
  if (digits(md, 2, mon) || digits(md + 3, 2, day) || *mon < 1 || *mon > 12)
    return -1;
  /* Without a year, 29 February is a real birthday. */
  int max = year < 0 ? days_in_month(2000, *mon) : days_in_month(year, *mon);
  return *day >= 1 && *day <= max ? 0 : -1;
}

/* 00:00 UTC of mon/day in year y, 29 February moved to 28 in a non-leap
 * year. */
static int64_t birthday_in(int64_t y, int mon, int day) {
  if (mon == 2 && day == 29 && !is_leap(y))
    day = 28;
  return days_from_civil(y, mon, day) * LP_PLAN_DAY_MS;
}

int lp_plan_birthday(const char *birthday, int64_t now_ms, int64_t *due_ms) {
  int mon, day;
  if (!birthday || !due_ms || !in_range(now_ms) ||
      parse_birthday(birthday, &mon, &day) != 0)
    return -1;
  int64_t y = year_of_days(floor_div(now_ms, LP_PLAN_DAY_MS));
  int64_t t = birthday_in(y, mon, day);
  if (t <= now_ms)
    t = birthday_in(y + 1, mon, day);
  *due_ms = t;
  return 0;
}

/* ---- cart --------------------------------------------------------------- */

int lp_plan_cart_timer_wanted(const struct lp_activity_view *v) {
  if (!v || v->cart_at <= 0)
    return 0;
  /* An open cart or one the platform called abandoned still holds items
   * nobody bought: nudge. A checkout means the member is buying; no cart
   * means an order cleared it. */
  return v->cart_state == LP_CART_OPEN || v->cart_state == LP_CART_ABANDONED;
}
