/*
 * test_model.c — the published member-value model (model.c): parsing and
 * validating the trainer's JSON, scoring members from their profile at an
 * event's time (edge sweep, direction, agreement with the pure numerics of
 * clv.h, segments, next-best reward), and the score fields rules read
 * (rules_parse.c, rules_eval.c).
 *
 * The model is the CDNOW fit of docs/models.md (Fader, Hardie & Lee 2005;
 * Fader & Hardie 2013), written here as the trainer writes it.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clv.h"
#include "events.h"
#include "model.h"
#include "profile.h"
#include "rules.h"
#include "util.h"

#define AT 1768003200000LL /* 2026-01-10T00:00:00.000Z: the event time */
#define DAY 86400000LL
#define SRC "cdnow.json"

/* Published CDNOW parameters (weeks). */
#define R 0.242595
#define ALPHA 4.413601
#define A 0.792921
#define B 2.425903
#define GG_P 6.2496
#define GG_Q 3.7442
#define GG_GAMMA 15.4435

/* The trainer's output for the CDNOW fixture, as docs/models.md shows it
 * (parameters rounded as published). */
static const char CDNOW_MODEL[] =
    "{\"version\": \"clv-19970930-9d302c51\", \"time_unit\": \"weeks\",\n"
    " \"window\": {\"calibration_end\": 19970930}, \"members\": 2357,\n"
    " \"bgnbd\": {\"r\": 0.242595, \"alpha\": 4.413601, \"a\": 0.792921,\n"
    "           \"b\": 2.425903,\n"
    "           \"fit\": {\"log_likelihood\": -9582.4292, \"evaluations\": "
    "885,\n"
    "                   \"converged\": true,\n"
    "                   \"message\": \"objective tolerance reached\"}},\n"
    " \"gamma_gamma\": {\"p\": 6.2496, \"q\": 3.7442, \"gamma\": 15.4435,\n"
    "           \"fit\": {\"log_likelihood\": -4055.9177, \"evaluations\": "
    "616,\n"
    "                   \"converged\": true,\n"
    "                   \"message\": \"objective tolerance reached\"}}}";

/* ---- fixtures ----------------------------------------------------------- */

static int64_t money(const char *s) {
  int64_t v = 0;
  assert_int_equal(lp_money_parse(s, &v), 0);
  return v;
}

static void assert_rel(double got, double want, double tol, const char *what) {
  if (!(fabs(got - want) <= tol * fabs(want)))
    fail_msg("%s: %.17g, want %.17g within %.3g relative", what, got, want,
             tol);
}

static struct lp_model parse_ok(const char *json) {
  struct lp_model m;
  char err[512] = "";
  if (lp_model_parse(json, strlen(json), SRC, &m, err, sizeof(err)) != 0)
    fail_msg("parse failed: %s", err);
  return m;
}

static struct lp_model cdnow(void) {
  return parse_ok(CDNOW_MODEL);
}

/* The CDNOW model with a "scoring" object (caller frees). */
static char *with_scoring(const char *scoring) {
  size_t n = strlen(CDNOW_MODEL);
  return lp_xasprintf("%.*s,\n \"scoring\": %s}", (int)(n - 1), CDNOW_MODEL,
                      scoring);
}

static struct lp_model cdnow_scoring(const char *scoring) {
  char *json = with_scoring(scoring);
  struct lp_model m = parse_ok(json);
  free(json);
  return m;
}

/* base with the first `from` after `anchor` (or the start) replaced by
 * `to` (caller frees). */
static char *replaced(const char *base, const char *anchor, const char *from,
                      const char *to) {
  const char *start = base;
  if (anchor) {
    start = strstr(base, anchor);
    if (!start)
      fail_msg("no %s in the model", anchor);
  }
  const char *at = strstr(start, from);
  if (!at)
    fail_msg("no %s in the model", from);
  return lp_xasprintf("%.*s%s%s", (int)(at - base), base, to,
                      at + strlen(from));
}

/* json is rejected with "<source>: " first, then the path and the reason
 * in the message, and the output left as it was. */
static void expect_rejected(const char *json, const char *path,
                            const char *reason) {
  struct lp_model m, sentinel;
  memset(&m, 0xA5, sizeof(m));
  memcpy(&sentinel, &m, sizeof(m));
  char err[512] = "";
  int rc = lp_model_parse(json, strlen(json), SRC, &m, err, sizeof(err));
  if (rc != -1)
    fail_msg("accepted, expected %s: %s", path, reason);
  if (strncmp(err, SRC ": ", strlen(SRC ": ")) != 0)
    fail_msg("message does not start with the source: %s", err);
  if (!strstr(err, path))
    fail_msg("message does not name %s: %s", path, err);
  if (reason && !strstr(err, reason))
    fail_msg("message does not say \"%s\": %s", reason, err);
  assert_memory_equal(&m, &sentinel, sizeof(m));
}

/* A member with `orders` counted orders on `days` distinct days, the
 * first and last `first_ago` / `last_ago` days before AT. */
static void member(struct lp_profile *p, int64_t orders, int64_t days,
                   int64_t first_ago, int64_t last_ago, const char *spend) {
  memset(p, 0, sizeof(*p));
  p->exists = 1;
  p->order_count = orders;
  p->orders_placed = orders;
  p->purchase_days = days;
  p->first_order_ms = AT - first_ago * DAY;
  p->last_order_ms = AT - last_ago * DAY;
  p->lifetime_spend_micros = money(spend);
  p->marketing_consent = LP_CONSENT_SUBSCRIBED;
}

static void add_category(struct lp_profile *p, const char *name,
                         const char *spend) {
  p->categories = lp_xrealloc(p->categories,
                              (p->n_categories + 1) * sizeof(*p->categories));
  p->categories[p->n_categories].name = lp_xstrdup(name);
  p->categories[p->n_categories].spend_micros = money(spend);
  p->n_categories++;
}

static struct lp_scores score(const struct lp_model *m,
                              const struct lp_profile *p, int64_t at_ms) {
  struct lp_scores s;
  lp_model_score(m, p, at_ms, &s);
  return s;
}

/* What model.h promises of every score, whatever the member. */
static void assert_sane(const struct lp_model *m, const struct lp_scores *s,
                        const char *what) {
  const double v[] = {s->p_alive,       s->expected_30d,   s->expected_90d,
                      s->expected_365d, s->expected_spend, s->clv_12m};
  for (size_t i = 0; i < LP_ARRAY_LEN(v); i++)
    if (!isfinite(v[i]))
      fail_msg("%s: score %zu is %g", what, i, v[i]);
  if (!(s->p_alive >= 0 && s->p_alive <= 1))
    fail_msg("%s: p_alive %g", what, s->p_alive);
  if (!(s->expected_30d >= 0 && s->expected_30d <= s->expected_90d &&
        s->expected_90d <= s->expected_365d))
    fail_msg("%s: expected purchases %g, %g, %g not rising", what,
             s->expected_30d, s->expected_90d, s->expected_365d);
  if (!(s->clv_12m >= 0) || !(s->expected_spend >= 0))
    fail_msg("%s: clv %g, spend %g", what, s->clv_12m, s->expected_spend);
  if ((unsigned)s->segment >= LP_SEG_COUNT)
    fail_msg("%s: segment %d", what, (int)s->segment);
  if (s->next_best < -1 || s->next_best >= (int)m->n_rewards)
    fail_msg("%s: next_best %d", what, s->next_best);
  if (!s->scored) {
    if (s->p_alive != 0 || s->clv_12m != 0 || s->expected_365d != 0 ||
        s->segment != LP_SEG_NEW || s->next_best != -1 || s->has_next)
      fail_msg("%s: unscored but has scores", what);
    return;
  }
  /* The churn band follows P(alive) and the thresholds. */
  enum lp_churn_band want = s->p_alive < m->churn_high_below ? LP_CHURN_HIGH
                            : s->p_alive < m->churn_medium_below
                                ? LP_CHURN_MEDIUM
                                : LP_CHURN_LOW;
  if (s->churn != want)
    fail_msg("%s: churn %d at p_alive %g", what, (int)s->churn, s->p_alive);
}

/* ---- parsing ------------------------------------------------------------ */

static void test_parse_cdnow(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  assert_string_equal(m.version, "clv-19970930-9d302c51");
  assert_string_equal(m.time_unit, "weeks");
  assert_true(m.days_per_unit == 7);
  assert_true(m.bgnbd.r == R && m.bgnbd.alpha == ALPHA && m.bgnbd.a == A &&
              m.bgnbd.b == B);
  assert_true(m.gg.p == GG_P && m.gg.q == GG_Q && m.gg.gamma == GG_GAMMA);
  assert_rel(m.population_spend, GG_P * GG_GAMMA / (GG_Q - 1), 1e-12,
             "population spend p*gamma/(q-1)");
  /* Hardie's sheet: the CDNOW population mean spend is $35.17. */
  assert_rel(m.population_spend, 35.17, 2e-3, "population spend (published)");
  assert_rel(m.monthly_discount, pow(1.1, 1.0 / 12) - 1, 1e-12,
             "monthly discount from 10 % a year");
  assert_rel(pow(1 + m.monthly_discount, 12), 1.1, 1e-12, "compounded");
  /* The documented defaults. */
  assert_true(m.annual_discount == 0.10);
  assert_true(m.churn_high_below == 0.30);
  assert_true(m.churn_medium_below == 0.70);
  assert_rel(m.high_value_spend, 10 * m.population_spend, 1e-12,
             "high value spend");
  assert_true(m.premium_ratio == 1.5);
  assert_true(m.value_ratio == 0.75);
  assert_int_equal(m.new_days, 90);
  assert_int_equal(m.n_gift_categories, 1);
  assert_string_equal(m.gift_categories[0], "gifts");
  assert_true(m.reward_share == 0.05);
  assert_int_equal(m.n_rewards, 0);

  /* The same parameters in days. */
  char *json = replaced(CDNOW_MODEL, NULL, "\"weeks\"", "\"days\"");
  struct lp_model d = parse_ok(json);
  free(json);
  assert_string_equal(d.time_unit, "days");
  assert_true(d.days_per_unit == 1);

  /* len bounds the text: what follows it is not read. */
  json = lp_xasprintf("%s trailing garbage {", CDNOW_MODEL);
  struct lp_model t;
  char err[512] = "";
  assert_int_equal(
      lp_model_parse(json, strlen(CDNOW_MODEL), SRC, &t, err, sizeof(err)), 0);
  assert_string_equal(t.version, m.version);
  assert_int_equal(
      lp_model_parse(json, strlen(json), SRC, &t, err, sizeof(err)), -1);
  free(json);
}

static void test_parse_scoring_settings(void **state) {
  (void)state;
  struct lp_model m = cdnow_scoring(
      "{\"annual_discount_rate\": 0.2, \"churn_high_below\": 0.2,"
      " \"churn_medium_below\": 0.6, \"high_value_spend\": 500,"
      " \"premium_ratio\": 2, \"value_ratio\": 0.5, \"new_days\": 30,"
      " \"gift_categories\": [\"flowers\", \"toys\"], \"reward_share\": 0.1,"
      " \"rewards\": [{\"id\": \"ship\", \"cost\": 0},"
      "  {\"id\": \"mug\", \"cost\": 7.5,"
      "   \"segments\": [\"regular\", \"premium_enthusiast\"]},"
      "  {\"id\": \"all\", \"cost\": 3, \"segments\": []}]}");
  assert_rel(m.monthly_discount, pow(1.2, 1.0 / 12) - 1, 1e-12,
             "monthly discount from 20 % a year");
  assert_true(m.churn_high_below == 0.2 && m.churn_medium_below == 0.6);
  assert_true(m.high_value_spend == 500);
  assert_true(m.premium_ratio == 2 && m.value_ratio == 0.5);
  assert_int_equal(m.new_days, 30);
  assert_int_equal(m.n_gift_categories, 2);
  assert_string_equal(m.gift_categories[0], "flowers");
  assert_string_equal(m.gift_categories[1], "toys");
  assert_true(m.reward_share == 0.1);
  assert_int_equal(m.n_rewards, 3);
  assert_string_equal(m.rewards[0].id, "ship");
  assert_true(m.rewards[0].cost == 0);
  assert_int_equal(m.rewards[0].segment_mask, 0); /* any segment */
  assert_string_equal(m.rewards[1].id, "mug");
  assert_true(m.rewards[1].cost == 7.5);
  assert_int_equal(m.rewards[1].segment_mask,
                   (1u << LP_SEG_REGULAR) | (1u << LP_SEG_PREMIUM_ENTHUSIAST));
  assert_int_equal(m.rewards[2].segment_mask, 0);
  /* An empty scoring object keeps every default. */
  struct lp_model e = cdnow_scoring("{}");
  struct lp_model c = cdnow();
  /* (field by field: padding bytes need not compare equal) */
  assert_true(e.annual_discount == c.annual_discount &&
              e.monthly_discount == c.monthly_discount &&
              e.churn_high_below == c.churn_high_below &&
              e.churn_medium_below == c.churn_medium_below &&
              e.high_value_spend == c.high_value_spend &&
              e.premium_ratio == c.premium_ratio &&
              e.value_ratio == c.value_ratio && e.new_days == c.new_days &&
              e.reward_share == c.reward_share);
  assert_int_equal(e.n_gift_categories, c.n_gift_categories);
  assert_string_equal(e.gift_categories[0], c.gift_categories[0]);
  assert_int_equal(e.n_rewards, 0);
}

static void test_parse_rejects(void **state) {
  (void)state;
  char *j;
  /* Not JSON: the syntax error's position. */
  /* A typo in a setting is an error, not a silent default. */
  char *typo = with_scoring("{\"churn_hi_below\": 0.9}");
  expect_rejected(typo, "$.scoring.churn_hi_below", "unknown key");
  free(typo);
  typo = with_scoring("{\"rewards\": [{\"id\": \"r\", \"cost\": 1, "
                      "\"segment\": [\"new\"]}]}");
  expect_rejected(typo, "$.scoring.rewards[0].segment", "unknown key");
  free(typo);
  typo = with_scoring("{\"new_days\": 90.5}");
  expect_rejected(typo, "$.scoring.new_days", "whole number");
  free(typo);
  expect_rejected("{\"version\": ", "line", NULL);
  expect_rejected("", "line", NULL);
  j = replaced(CDNOW_MODEL, NULL, "\"members\": 2357",
               "\"members\": 1, \"members\": 2");
  expect_rejected(j, "line", "duplicate");
  free(j);
  expect_rejected("[1, 2]", "$", "object");

  j = replaced(CDNOW_MODEL, NULL, "\"r\": 0.242595, ", "");
  expect_rejected(j, "$.bgnbd.r", "missing");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"r\": 0.242595", "\"r\": \"0.24\"");
  expect_rejected(j, "$.bgnbd.r", "number");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "4.413601", "-4.413601");
  expect_rejected(j, "$.bgnbd.alpha", "positive");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"b\": 2.425903", "\"b\": 0");
  expect_rejected(j, "$.bgnbd.b", "positive");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"gamma\": 15.4435", "\"gamma\": -1");
  expect_rejected(j, "$.gamma_gamma.gamma", "positive");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"q\": 3.7442", "\"q\": 1");
  expect_rejected(j, "$.gamma_gamma.q", "above 1");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"q\": 3.7442", "\"q\": 0.5");
  expect_rejected(j, "$.gamma_gamma.q", "above 1");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"weeks\"", "\"months\"");
  expect_rejected(j, "$.time_unit", "weeks");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"time_unit\": \"weeks\",", "");
  expect_rejected(j, "$.time_unit", NULL);
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"converged\": true",
               "\"converged\": false");
  expect_rejected(j, "$.bgnbd.fit.converged", "false");
  free(j);
  j = replaced(CDNOW_MODEL, "gamma_gamma", "\"converged\": true",
               "\"converged\": false");
  expect_rejected(j, "$.gamma_gamma.fit.converged", "false");
  free(j);
  j = replaced(CDNOW_MODEL, "gamma_gamma", "\"converged\": true,", "");
  expect_rejected(j, "$.gamma_gamma.fit.converged", "missing");
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"clv-19970930-9d302c51\"",
               "\"clv 19970930\"");
  expect_rejected(j, "$.version", NULL);
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"clv-19970930-9d302c51\"", "\"\"");
  expect_rejected(j, "$.version", NULL);
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"clv-19970930-9d302c51\"", "19970930");
  expect_rejected(j, "$.version", NULL);
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"gamma_gamma\"", "\"gamma-gamma\"");
  expect_rejected(j, "$.gamma_gamma", "missing");
  free(j);

  /* Scoring settings out of range. */
  static const struct {
    const char *scoring, *path;
  } bad[] = {
      {"{\"annual_discount_rate\": 1.5}", "$.scoring.annual_discount_rate"},
      {"{\"annual_discount_rate\": -0.1}", "$.scoring.annual_discount_rate"},
      {"{\"churn_high_below\": \"0.3\"}", "$.scoring.churn_high_below"},
      {"{\"churn_medium_below\": 2}", "$.scoring.churn_medium_below"},
      {"{\"high_value_spend\": -1}", "$.scoring.high_value_spend"},
      {"{\"premium_ratio\": -2}", "$.scoring.premium_ratio"},
      {"{\"value_ratio\": null}", "$.scoring.value_ratio"},
      {"{\"new_days\": 36501}", "$.scoring.new_days"},
      {"{\"reward_share\": 1.01}", "$.scoring.reward_share"},
      {"{\"churn_high_below\": 0.8}", "$.scoring"},
      {"{\"churn_high_below\": 0.5, \"churn_medium_below\": 0.4}",
       "churn_high_below"},
      {"[]", "$.scoring"},
      {"{\"gift_categories\": \"gifts\"}", "$.scoring.gift_categories"},
      {"{\"gift_categories\": [\"gifts\", \"\"]}",
       "$.scoring.gift_categories[1]"},
      {"{\"rewards\": {}}", "$.scoring.rewards"},
      {"{\"rewards\": [{\"id\": \"a\", \"cost\": 1},"
       " {\"id\": \"a\", \"cost\": 2}]}",
       "$.scoring.rewards[1].id: duplicate"},
      {"{\"rewards\": [{\"id\": \"a\", \"cost\": 1,"
       " \"segments\": [\"new\", \"gold\"]}]}",
       "$.scoring.rewards[0].segments[1]"},
      {"{\"rewards\": [{\"id\": \"a\", \"cost\": -1}]}",
       "$.scoring.rewards[0].cost"},
      {"{\"rewards\": [{\"cost\": 1}]}", "$.scoring.rewards[0].id"},
      {"{\"rewards\": [{\"id\": \"a\", \"cost\": 1, \"segments\": \"new\"}]}",
       "$.scoring.rewards[0].segments"},
  };
  for (size_t i = 0; i < LP_ARRAY_LEN(bad); i++) {
    j = with_scoring(bad[i].scoring);
    expect_rejected(j, bad[i].path, NULL);
    free(j);
  }
  /* Size limits: a 64-character version, 48-byte names, 16 rewards and
   * 8 gift categories fit; one more does not. */
  char v64[LP_MODEL_VERSION_MAX + 2], name48[LP_MODEL_NAME_MAX + 2];
  memset(v64, 'v', sizeof(v64));
  v64[LP_MODEL_VERSION_MAX] = '\0';
  memset(name48, 'n', sizeof(name48));
  name48[LP_MODEL_NAME_MAX] = '\0';
  char *quoted = lp_xasprintf("\"%s\"", v64);
  j = replaced(CDNOW_MODEL, NULL, "\"clv-19970930-9d302c51\"", quoted);
  free(quoted);
  struct lp_model big = parse_ok(j);
  free(j);
  assert_string_equal(big.version, v64);
  v64[LP_MODEL_VERSION_MAX] = 'v';
  v64[LP_MODEL_VERSION_MAX + 1] = '\0';
  quoted = lp_xasprintf("\"%s\"", v64);
  j = replaced(CDNOW_MODEL, NULL, "\"clv-19970930-9d302c51\"", quoted);
  free(quoted);
  expect_rejected(j, "$.version", NULL);
  free(j);
  j = replaced(CDNOW_MODEL, NULL, "\"clv-19970930-9d302c51\"",
               "\"clv\\u0000x\"");
  expect_rejected(j, "line", NULL); /* a NUL never reaches the version */
  free(j);
  char *sc = lp_xasprintf("{\"gift_categories\": [\"%s\"],"
                          " \"rewards\": [{\"id\": \"%s\", \"cost\": 1}]}",
                          name48, name48);
  big = cdnow_scoring(sc);
  free(sc);
  assert_string_equal(big.gift_categories[0], name48);
  assert_string_equal(big.rewards[0].id, name48);
  name48[LP_MODEL_NAME_MAX] = 'n';
  name48[LP_MODEL_NAME_MAX + 1] = '\0';
  sc = lp_xasprintf("{\"gift_categories\": [\"%s\"]}", name48);
  j = with_scoring(sc);
  free(sc);
  expect_rejected(j, "$.scoring.gift_categories[0]", NULL);
  free(j);
  sc = lp_xasprintf("{\"rewards\": [{\"id\": \"%s\", \"cost\": 1}]}", name48);
  j = with_scoring(sc);
  free(sc);
  expect_rejected(j, "$.scoring.rewards[0].id", NULL);
  free(j);
  for (int over = 0; over <= 2; over++) { /* 1: gift categories, 2: rewards */
    struct lp_buf b;
    lp_buf_init(&b);
    lp_buf_append_str(&b, "{\"gift_categories\": [");
    for (int i = 0; i < LP_MODEL_MAX_GIFT_CATEGORIES + (over == 1); i++)
      lp_buf_appendf(&b, "%s\"g%d\"", i ? ", " : "", i);
    lp_buf_append_str(&b, "], \"rewards\": [");
    for (int i = 0; i < LP_MODEL_MAX_REWARDS + (over == 2); i++)
      lp_buf_appendf(&b, "%s{\"id\": \"r%d\", \"cost\": %d}", i ? ", " : "", i,
                     i);
    lp_buf_append_str(&b, "]}");
    j = with_scoring(lp_buf_cstr(&b));
    lp_buf_free(&b);
    if (over) {
      expect_rejected(
          j, over == 1 ? "$.scoring.gift_categories" : "$.scoring.rewards",
          "at most");
    } else {
      big = parse_ok(j);
      assert_int_equal(big.n_gift_categories, LP_MODEL_MAX_GIFT_CATEGORIES);
      assert_int_equal(big.n_rewards, LP_MODEL_MAX_REWARDS);
      assert_string_equal(big.rewards[LP_MODEL_MAX_REWARDS - 1].id, "r15");
    }
    free(j);
  }
  /* The bounds themselves are in range. */
  struct lp_model m =
      cdnow_scoring("{\"annual_discount_rate\": 0, \"churn_high_below\": 0.7,"
                    " \"new_days\": 36500, \"reward_share\": 1}");
  assert_true(m.monthly_discount == 0);
  assert_true(m.churn_high_below == m.churn_medium_below);
}

/* ---- scoring ------------------------------------------------------------ */

static void test_model_member(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  struct lp_profile p;
  struct lp_clv_member c;
  /* 4 orders on 4 days, 70 and 14 days ago: x = 3 repeat days, t_x = 8
   * weeks, T = 10 weeks. */
  member(&p, 4, 4, 70, 14, "200.00");
  lp_model_member(&m, &p, AT, &c);
  assert_rel(c.x, 3, 1e-15, "x");
  assert_rel(c.t_x, 8, 1e-12, "t_x");
  assert_rel(c.T, 10, 1e-12, "T");
  assert_rel(c.m, 50, 1e-12, "m");
  /* Two orders on one day count as one purchase day, of their sum. */
  p.order_count = 5;
  p.purchase_days = 4;
  lp_model_member(&m, &p, AT, &c);
  assert_rel(c.x, 3, 1e-15, "x, two orders on a day");
  assert_rel(c.m, 50, 1e-12, "m per purchase day, as the trainer counts");
  /* An event older than the last order: T is never below t_x. */
  member(&p, 4, 4, 70, 14, "200.00");
  lp_model_member(&m, &p, AT - 20 * DAY, &c);
  assert_true(c.T >= c.t_x);
  /* Days as the unit. */
  char *json = replaced(CDNOW_MODEL, NULL, "\"weeks\"", "\"days\"");
  struct lp_model d = parse_ok(json);
  free(json);
  lp_model_member(&d, &p, AT, &c);
  assert_rel(c.t_x, 56, 1e-12, "t_x in days");
  assert_rel(c.T, 70, 1e-12, "T in days");
}

static void test_no_order_unscored(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  struct lp_scores s = score(&m, &p, AT);
  assert_false(s.scored);
  assert_int_equal(s.segment, LP_SEG_NEW);
  assert_int_equal(s.next_best, -1);
  assert_sane(&m, &s, "no orders");
  /* Without a model nobody is scored. */
  member(&p, 6, 6, 300, 5, "300.00");
  s = score(NULL, &p, AT);
  assert_false(s.scored);
  assert_int_equal(s.segment, LP_SEG_NEW);
  assert_true(s.p_alive == 0 && s.clv_12m == 0);
}

static void test_edge_sweep(void **state) {
  (void)state;
  /* CDNOW in weeks and days, a = 1 (the series' β = 0), a + b < 1, a
   * huge α and q just above 1. */
  static const char *const variants[][2] = {
      {NULL, NULL},
      {"\"weeks\"", "\"days\""},
      {"\"a\": 0.792921", "\"a\": 1"},
      {"\"b\": 2.425903", "\"b\": 0.1"},
      {"\"alpha\": 4.413601", "\"alpha\": 1e9"},
      {"\"q\": 3.7442", "\"q\": 1.000001"},
      {"\"r\": 0.242595", "\"r\": 1e-6"},
  };
  for (size_t v = 0; v < LP_ARRAY_LEN(variants); v++) {
    char *json = variants[v][0] ? replaced(CDNOW_MODEL, NULL, variants[v][0],
                                           variants[v][1])
                                : lp_xstrdup(CDNOW_MODEL);
    struct lp_model m = parse_ok(json);
    free(json);
    struct lp_profile p;
    struct lp_scores s;
    char what[128];
#define SWEEP(name, at)                                                        \
  do {                                                                         \
    snprintf(what, sizeof(what), "model %zu, %s", v, name);                    \
    s = score(&m, &p, (at));                                                   \
    assert_sane(&m, &s, what);                                                 \
  } while (0)

    memset(&p, 0, sizeof(p));
    SWEEP("no orders", AT);
    assert_false(s.scored);
    assert_int_equal(s.segment, LP_SEG_NEW);

    member(&p, 1, 1, 0, 0, "50.00");
    SWEEP("one order today", AT);
    assert_true(s.scored);
    assert_true(s.p_alive == 1.0); /* no repeat purchase: alive */
    assert_int_equal(s.segment, LP_SEG_NEW);
    assert_false(s.has_next);
    if (v == 0)
      assert_true(s.expected_365d > 0);

    member(&p, 520, 520, 3652, 2, "20800.00");
    SWEEP("520 orders over ten years", AT);
    assert_true(s.scored && s.has_next);
    SWEEP("520 orders, ten years later", AT + 3652 * DAY);
    SWEEP("520 orders, a hundred years later", AT + 36525 * DAY);

    member(&p, 6, 6, 200, 0, "300.00");
    SWEEP("last purchase at the event time", AT);
    member(&p, 6, 6, 200, 0, "0");
    SWEEP("zero spend", AT);
    member(&p, 6, 6, 200, 0, "-40.00");
    SWEEP("negative spend (refunds)", AT);

    member(&p, 6, 6, 200, 10, "300.00");
    SWEEP("event before the last order", AT - 30 * DAY);
    SWEEP("event before the first order", AT - 300 * DAY);
    SWEEP("event a millisecond after the first order", AT - 200 * DAY + 1);

    member(&p, 0, 2, 100, 50, "0");
    p.orders_placed = 2;
    SWEEP("order_count 0 after cancellations", AT);
    assert_true(s.scored);

    member(&p, 3, 3, 40, 40, "90.00");
    SWEEP("three orders within one millisecond", AT);
    member(&p, 1, 1, 0, 0, "50.00");
    p.last_order_ms = p.first_order_ms + 1;
    SWEEP("one order, last a ms after first", AT);
    member(&p, 1000000, 1000000, 7300, 0, "1000000000.00");
    SWEEP("a million purchase days", AT);
    member(&p, 2, 2, 1, 0, "999999999999.00");
    SWEEP("a huge spend", AT);
#undef SWEEP
  }
}

static void test_spend_direction(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  struct lp_profile p;
  /* The same purchase rhythm at a rising spend per order: the expected
   * spend per purchase and the CLV rise with it, and the expected spend
   * is shrunk towards the population mean from either side. */
  static const char *const spends[] = {"6.00", "60.00", "210.00", "600.00",
                                       "6000.00"};
  /* Spending nothing scores lowest: the Gamma-Gamma limit at m = 0,
   * p γ / (p x + q − 1), not the population mean. */
  member(&p, 6, 6, 300, 5, "0.00");
  struct lp_scores zero = score(&m, &p, AT);
  assert_sane(&m, &zero, "zero spend");
  assert_rel(zero.expected_spend,
             m.gg.p * m.gg.gamma / (m.gg.p * 5 + m.gg.q - 1), 1e-12,
             "zero-spend expected spend");
  double prev_spend = zero.expected_spend, prev_clv = zero.clv_12m,
         prev_count = -1;
  for (size_t i = 0; i < LP_ARRAY_LEN(spends); i++) {
    member(&p, 6, 6, 300, 5, spends[i]);
    struct lp_scores s = score(&m, &p, AT);
    assert_sane(&m, &s, spends[i]);
    double mean = (double)money(spends[i]) / 1e6 / 6;
    assert_true(s.expected_spend > prev_spend && s.clv_12m > prev_clv);
    if (mean < m.population_spend)
      assert_true(s.expected_spend > mean &&
                  s.expected_spend < m.population_spend);
    else
      assert_true(s.expected_spend < mean &&
                  s.expected_spend > m.population_spend);
    /* Spend changes the value, not the purchase count. */
    if (prev_count >= 0)
      assert_true(s.expected_365d == prev_count);
    prev_spend = s.expected_spend;
    prev_clv = s.clv_12m;
    prev_count = s.expected_365d;
  }
}

static void test_recency_direction(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  struct lp_profile recent, lapsed;
  /* x = 5 repeat days over 300 days; last purchase 5 days ago against
   * 240 days ago. */
  member(&recent, 6, 6, 300, 5, "240.00");
  member(&lapsed, 6, 6, 300, 240, "240.00");
  struct lp_scores r = score(&m, &recent, AT), l = score(&m, &lapsed, AT);
  assert_sane(&m, &r, "recent");
  assert_sane(&m, &l, "lapsed");
  assert_true(l.p_alive < r.p_alive);
  assert_true(l.clv_12m < r.clv_12m);
  assert_true(l.expected_365d < r.expected_365d);
  assert_true(l.p_alive < 0.3);
  assert_int_equal(l.churn, LP_CHURN_HIGH);
  assert_true(r.p_alive >= 0.7);
  assert_int_equal(r.churn, LP_CHURN_LOW);
  /* The later the last purchase, the likelier alive and the more valuable,
   * step by step. */
  struct lp_scores prev = score(&m, &lapsed, AT);
  for (int64_t ago = 230; ago >= 0; ago -= 10) {
    member(&lapsed, 6, 6, 300, ago, "240.00");
    struct lp_scores s = score(&m, &lapsed, AT);
    assert_sane(&m, &s, "recency step");
    if (!(s.p_alive > prev.p_alive && s.clv_12m > prev.clv_12m))
      fail_msg("last purchase %lld days ago: p_alive %g clv %g, before %g %g",
               (long long)ago, s.p_alive, s.clv_12m, prev.p_alive,
               prev.clv_12m);
    prev = s;
  }
  /* Time passing without a purchase lowers P(alive). */
  member(&lapsed, 6, 6, 300, 30, "240.00");
  double before = score(&m, &lapsed, AT).p_alive;
  for (int64_t later = 30; later <= 720; later += 30) {
    double now = score(&m, &lapsed, AT + later * DAY).p_alive;
    assert_true(now < before);
    before = now;
  }
  /* Every band with custom thresholds. */
  struct lp_model t =
      cdnow_scoring("{\"churn_high_below\": 0.5, \"churn_medium_below\": 0.9}");
  for (int64_t ago = 0; ago <= 290; ago += 10) {
    member(&lapsed, 6, 6, 300, ago, "240.00");
    struct lp_scores s = score(&t, &lapsed, AT);
    assert_sane(&t, &s, "custom churn bands");
  }
  /* "Below" is strict: with both thresholds at 1, a one-time buyer
   * (P(alive) exactly 1) is low risk and any repeat buyer high; at 0
   * nobody is at risk. */
  struct lp_model one =
      cdnow_scoring("{\"churn_high_below\": 1, \"churn_medium_below\": 1}");
  struct lp_model zero =
      cdnow_scoring("{\"churn_high_below\": 0, \"churn_medium_below\": 0}");
  member(&lapsed, 1, 1, 30, 30, "40.00");
  assert_true(score(&one, &lapsed, AT).p_alive == 1.0);
  assert_int_equal(score(&one, &lapsed, AT).churn, LP_CHURN_LOW);
  member(&lapsed, 6, 6, 300, 5, "240.00");
  assert_int_equal(score(&one, &lapsed, AT).churn, LP_CHURN_HIGH);
  member(&lapsed, 6, 6, 300, 290, "240.00");
  assert_int_equal(score(&zero, &lapsed, AT).churn, LP_CHURN_LOW);
}

static void test_matches_pure_numerics(void **state) {
  (void)state;
  struct lp_model weeks = cdnow();
  char *json = replaced(CDNOW_MODEL, NULL, "\"weeks\"", "\"days\"");
  struct lp_model days = parse_ok(json);
  free(json);
  json = with_scoring("{\"annual_discount_rate\": 0.25}");
  struct lp_model dear = parse_ok(json);
  free(json);
  const struct lp_model *models[] = {&weeks, &days, &dear};
  static const struct {
    int64_t orders, purchase_days, first_ago, last_ago;
    const char *spend;
  } members[] = {
      {1, 1, 10, 10, "40.00"},         {2, 2, 100, 20, "60.00"},
      {6, 6, 300, 5, "240.00"},        {6, 6, 300, 240, "240.00"},
      {21, 21, 300, 70, "2100.00"},    {7, 5, 120, 1, "350.00"},
      {520, 520, 3652, 2, "20800.00"},
  };
  for (size_t k = 0; k < LP_ARRAY_LEN(models); k++) {
    const struct lp_model *m = models[k];
    double unit_days = m->days_per_unit;
    for (size_t i = 0; i < LP_ARRAY_LEN(members); i++) {
      struct lp_profile p;
      member(&p, members[i].orders, members[i].purchase_days,
             members[i].first_ago, members[i].last_ago, members[i].spend);
      struct lp_clv_member c;
      lp_model_member(m, &p, AT, &c);
      struct lp_scores s = score(m, &p, AT);
      assert_sane(m, &s, "cross-check member");
      double want365 =
          lp_bgnbd_expected(&m->bgnbd, c.x, c.t_x, c.T, 365 / unit_days);
      double want90 =
          lp_bgnbd_expected(&m->bgnbd, c.x, c.t_x, c.T, 90 / unit_days);
      double want30 =
          lp_bgnbd_expected(&m->bgnbd, c.x, c.t_x, c.T, 30 / unit_days);
      double clv = lp_clv_value(&m->bgnbd, &m->gg, c.x, c.t_x, c.T, c.m, 12,
                                365.25 / 12 / unit_days, m->monthly_discount);
      assert_rel(s.expected_365d, want365, 1e-9, "expected_365d");
      assert_rel(s.expected_90d, want90, 1e-9, "expected_90d");
      assert_rel(s.expected_30d, want30, 1e-9, "expected_30d");
      assert_rel(s.clv_12m, clv, 1e-9, "clv_12m");
      assert_rel(s.p_alive, lp_bgnbd_p_alive(&m->bgnbd, c.x, c.t_x, c.T), 1e-12,
                 "p_alive");
      assert_rel(s.expected_spend,
                 lp_gamma_gamma_expected_spend(&m->gg, c.x, c.m), 1e-12,
                 "expected_spend");
    }
  }
  /* A dearer discount lowers the CLV of the same member. */
  struct lp_profile p;
  member(&p, 6, 6, 300, 5, "240.00");
  assert_true(score(&dear, &p, AT).clv_12m < score(&weeks, &p, AT).clv_12m);
}

static void test_next_purchase(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  struct lp_profile p;
  /* 4 purchase days over 90 days: a mean gap of 30 days after the last. */
  member(&p, 4, 4, 100, 10, "200.00");
  struct lp_scores s = score(&m, &p, AT);
  assert_true(s.has_next);
  assert_int_equal(s.next_purchase_ms, p.last_order_ms + 30 * DAY);
  member(&p, 1, 1, 10, 10, "50.00");
  s = score(&m, &p, AT);
  assert_false(s.has_next);
}

/* ---- segments ----------------------------------------------------------- */

static void test_segments(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  struct lp_profile p;
  struct lp_scores s;
  double pop = m.population_spend;

  /* new: one purchase 10 days ago. */
  member(&p, 1, 1, 10, 10, "30.00");
  s = score(&m, &p, AT);
  assert_string_equal(lp_value_segment_name(s.segment), "new");

  /* One purchase 200 days ago is no longer new; the population's spend is
   * neither premium nor value: regular. */
  member(&p, 1, 1, 200, 200, "30.00");
  s = score(&m, &p, AT);
  assert_true(s.expected_spend > 0.75 * pop && s.expected_spend < 1.5 * pop);
  assert_string_equal(lp_value_segment_name(s.segment), "regular");

  /* at_risk_high_value: lapsed (high churn) after spending over 10x the
   * population's mean purchase. */
  member(&p, 6, 6, 300, 240, "1000.00");
  assert_true(1000.0 >= 10 * pop);
  s = score(&m, &p, AT);
  assert_int_equal(s.churn, LP_CHURN_HIGH);
  assert_string_equal(lp_value_segment_name(s.segment), "at_risk_high_value");
  /* The same spend on a member who is still active is not at risk. */
  member(&p, 6, 6, 300, 5, "1000.00");
  s = score(&m, &p, AT);
  assert_int_not_equal(s.churn, LP_CHURN_HIGH);
  assert_int_not_equal(s.segment, LP_SEG_AT_RISK_HIGH_VALUE);
  /* Lapsed but below the high-value spend is not at risk either. */
  member(&p, 6, 6, 300, 240, "210.00");
  s = score(&m, &p, AT);
  assert_int_equal(s.churn, LP_CHURN_HIGH);
  assert_int_not_equal(s.segment, LP_SEG_AT_RISK_HIGH_VALUE);

  /* gift_buyer: the favourite category is "gifts". */
  member(&p, 6, 6, 300, 5, "210.00");
  add_category(&p, "books", "60.00");
  add_category(&p, "gifts", "150.00");
  s = score(&m, &p, AT);
  assert_string_equal(lp_value_segment_name(s.segment), "gift_buyer");
  /* Not the favourite: the member is something else. */
  lp_profile_clear(&p);
  member(&p, 6, 6, 300, 5, "210.00");
  add_category(&p, "books", "150.00");
  add_category(&p, "gifts", "60.00");
  s = score(&m, &p, AT);
  assert_int_not_equal(s.segment, LP_SEG_GIFT_BUYER);
  /* Other gift categories replace the default one. */
  struct lp_model flowers =
      cdnow_scoring("{\"gift_categories\": [\"flowers\", \"books\"]}");
  s = score(&flowers, &p, AT);
  assert_string_equal(lp_value_segment_name(s.segment), "gift_buyer");
  lp_profile_clear(&p);

  /* premium_enthusiast: $100 a purchase, recent. */
  member(&p, 6, 6, 300, 5, "600.00");
  s = score(&m, &p, AT);
  assert_true(s.expected_spend >= 1.5 * pop);
  assert_string_equal(lp_value_segment_name(s.segment), "premium_enthusiast");

  /* value_seeker: $10 a purchase. */
  member(&p, 6, 6, 300, 5, "60.00");
  s = score(&m, &p, AT);
  assert_true(s.expected_spend <= 0.75 * pop);
  assert_string_equal(lp_value_segment_name(s.segment), "value_seeker");

  /* regular: about the population's mean. */
  member(&p, 6, 6, 300, 5, "210.00");
  s = score(&m, &p, AT);
  assert_true(s.expected_spend > 0.75 * pop && s.expected_spend < 1.5 * pop);
  assert_string_equal(lp_value_segment_name(s.segment), "regular");

  /* Near the edges: just inside and just outside each ratio. */
  static const struct {
    const char *spend;
    enum lp_value_segment want;
  } edges[] = {
      {"144.00", LP_SEG_VALUE_SEEKER},
      {"162.00", LP_SEG_REGULAR},
      {"318.00", LP_SEG_REGULAR},
      {"336.00", LP_SEG_PREMIUM_ENTHUSIAST},
  };
  for (size_t i = 0; i < LP_ARRAY_LEN(edges); i++) {
    member(&p, 6, 6, 300, 5, edges[i].spend);
    s = score(&m, &p, AT);
    double ratio = s.expected_spend / pop;
    /* The fixture is where it is meant to be: within 10 % of an edge. */
    assert_true(fabs(ratio - 0.75) < 0.075 || fabs(ratio - 1.5) < 0.15);
    if (s.segment != edges[i].want)
      fail_msg("spend %s (E(M) %.4f = %.4f x population): %s, want %s",
               edges[i].spend, s.expected_spend, ratio,
               lp_value_segment_name(s.segment),
               lp_value_segment_name(edges[i].want));
  }

  /* new_days moves the edge of "new". */
  struct lp_model month = cdnow_scoring("{\"new_days\": 5}");
  member(&p, 1, 1, 10, 10, "30.00");
  assert_int_equal(score(&month, &p, AT).segment, LP_SEG_REGULAR);
  assert_int_equal(score(&m, &p, AT).segment, LP_SEG_NEW);

  /* The names and their table. */
  static const char *const names[] = {"new",          "at_risk_high_value",
                                      "gift_buyer",   "premium_enthusiast",
                                      "value_seeker", "regular"};
  for (int i = 0; i < LP_SEG_COUNT; i++) {
    assert_string_equal(lp_value_segment_name((enum lp_value_segment)i),
                        names[i]);
    assert_string_equal(lp_value_segment_names[i], names[i]);
  }
  assert_null(lp_value_segment_names[LP_SEG_COUNT]);
  assert_null(lp_value_segment_name((enum lp_value_segment)LP_SEG_COUNT));
  assert_string_equal(lp_churn_band_name(LP_CHURN_LOW), "low");
  assert_string_equal(lp_churn_band_name(LP_CHURN_MEDIUM), "medium");
  assert_string_equal(lp_churn_band_name(LP_CHURN_HIGH), "high");
  assert_null(lp_churn_band_name((enum lp_churn_band)3));
  assert_null(lp_churn_band_names[3]);
}

/* ---- next-best reward --------------------------------------------------- */

static void test_next_best_reward(void **state) {
  (void)state;
  struct lp_model plain = cdnow();
  struct lp_profile premium, value;
  member(&premium, 6, 6, 300, 5, "600.00");
  member(&value, 6, 6, 300, 5, "60.00");
  struct lp_scores ps = score(&plain, &premium, AT);
  struct lp_scores vs = score(&plain, &value, AT);
  assert_int_equal(ps.segment, LP_SEG_PREMIUM_ENTHUSIAST);
  assert_int_equal(vs.segment, LP_SEG_VALUE_SEEKER);
  assert_int_equal(ps.next_best, -1); /* no catalogue */
  double budget = 0.05 * ps.clv_12m;

  /* Costs set around the premium member's budget: "mug" is the dearest
   * that fits and is for premium members; "watch" is dearer than the
   * budget; "voucher" is dearer than "mug" but for value seekers only;
   * "ship" is cheap enough for the value seeker too. */
  double vbudget = 0.05 * vs.clv_12m;
  assert_true(0.05 * budget <= vbudget && vbudget < 0.8 * budget);
  char *scoring = lp_xasprintf("{\"rewards\": ["
                               "{\"id\": \"ship\", \"cost\": %.17g},"
                               "{\"id\": \"mug\", \"cost\": %.17g, "
                               "\"segments\": [\"premium_enthusiast\","
                               " \"regular\"]},"
                               "{\"id\": \"voucher\", \"cost\": %.17g, "
                               "\"segments\": [\"value_seeker\"]},"
                               "{\"id\": \"watch\", \"cost\": %.17g},"
                               "{\"id\": \"mug2\", \"cost\": %.17g, "
                               "\"segments\": [\"premium_enthusiast\"]}"
                               "]}",
                               0.05 * budget, 0.8 * budget, 0.9 * budget,
                               1.01 * budget, 0.8 * budget);
  struct lp_model m = cdnow_scoring(scoring);
  free(scoring);
  struct lp_scores s = score(&m, &premium, AT);
  assert_rel(s.clv_12m, ps.clv_12m, 1e-15, "the catalogue changes no score");
  assert_true(s.next_best >= 0);
  /* Ties go to the first listed: mug, not mug2. */
  assert_string_equal(m.rewards[s.next_best].id, "mug");
  /* The value seeker's budget is smaller: of the rewards for its segment
   * (any-segment ones and "voucher") only "ship" fits. */
  s = score(&m, &value, AT);
  assert_true(s.next_best >= 0);
  assert_string_equal(m.rewards[s.next_best].id, "ship");
  /* Exactly the budget fits (cost <= share x CLV). */
  scoring = lp_xasprintf("{\"reward_share\": 0.5, \"rewards\": ["
                         "{\"id\": \"exact\", \"cost\": %.17g}]}",
                         0.5 * ps.clv_12m);
  m = cdnow_scoring(scoring);
  free(scoring);
  s = score(&m, &premium, AT);
  assert_int_equal(s.next_best, 0);

  /* Nothing fits: every reward is dearer than the budget, or for another
   * segment. */
  scoring = lp_xasprintf(
      "{\"rewards\": ["
      "{\"id\": \"watch\", \"cost\": %.17g},"
      "{\"id\": \"voucher\", \"cost\": 0, \"segments\": [\"value_seeker\"]}]}",
      1.01 * budget);
  m = cdnow_scoring(scoring);
  free(scoring);
  assert_int_equal(score(&m, &premium, AT).next_best, -1);
  assert_int_equal(score(&m, &value, AT).next_best, 1);
  /* No order: no reward, even a free one. */
  struct lp_profile none;
  memset(&none, 0, sizeof(none));
  assert_int_equal(score(&m, &none, AT).next_best, -1);
  /* reward_share 0: only free rewards. */
  m = cdnow_scoring("{\"reward_share\": 0, \"rewards\": ["
                    "{\"id\": \"cent\", \"cost\": 0.01},"
                    "{\"id\": \"free\", \"cost\": 0}]}");
  s = score(&m, &premium, AT);
  assert_int_equal(s.next_best, 1);
}

/* ---- rules -------------------------------------------------------------- */

static void order_init(struct lp_order_event *o) {
  memset(o, 0, sizeof(*o));
  o->event_id = lp_xstrdup("evt-1");
  o->shop = lp_xstrdup("demo.myshopify.com");
  o->order_id = lp_xstrdup("o-1");
  o->customer_id = lp_xstrdup("1073339531");
  o->event_time_ms = AT;
  o->status = LP_ORDER_CREATED;
  o->currency = lp_xstrdup("USD");
  o->total_micros = money("80.00");
  o->subtotal_micros = o->total_micros;
}

static struct lp_ruleset *load(const char *json) {
  char err[1024] = "";
  struct lp_ruleset *rs =
      lp_ruleset_load_string(json, "t.json", err, sizeof(err));
  if (!rs)
    fail_msg("load failed: %s", err);
  return rs;
}

struct decisions {
  struct lp_reward_decision *d;
  size_t n;
};

static struct decisions decide(const struct lp_ruleset *rs,
                               const struct lp_order_event *o,
                               const struct lp_profile *p) {
  struct decisions ds = {NULL, 0};
  lp_rules_decide_order(rs, o, p, NULL, &ds.d, &ds.n);
  return ds;
}

static void decisions_free(struct decisions *ds) {
  for (size_t i = 0; i < ds->n; i++)
    lp_reward_decision_clear(&ds->d[i]);
  free(ds->d);
  memset(ds, 0, sizeof(*ds));
}

static const struct lp_reward_decision *
find_decision(const struct decisions *ds, const char *rule) {
  for (size_t i = 0; i < ds->n; i++)
    if (strcmp(ds->d[i].rule_id, rule) == 0)
      return &ds->d[i];
  return NULL;
}

/* The feature's value, or NULL when absent; fails when not listed. */
static const char *feature(const struct lp_reward_decision *d,
                           const char *name) {
  for (size_t i = 0; i < d->explanation.n_features; i++)
    if (strcmp(d->explanation.features[i].name, name) == 0)
      return d->explanation.features[i].value;
  fail_msg("no feature %s", name);
  return NULL;
}

static const char WINBACK_RULES[] =
    "{\"rules\": ["
    " {\"id\": \"winback\", \"version\": 1, \"on\": \"order\","
    "  \"when\": {\"all\": ["
    "   {\"field\": \"profile.p_alive\", \"op\": \"<\", \"value\": 0.3},"
    "   {\"field\": \"profile.clv_12m\", \"op\": \">\", \"value\": \"5.00\"}]},"
    "  \"action\": {\"kind\": \"points\", \"points\": 100}},"
    " {\"id\": \"every-order\", \"version\": 1, \"on\": \"order\","
    "  \"when\": {\"field\": \"event.total\", \"op\": \">\", \"value\": "
    "\"0\"},"
    "  \"action\": {\"kind\": \"points\", \"points\": 1}}]}";

static void test_rules_read_scores(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  struct lp_ruleset *rs = load(WINBACK_RULES);
  struct lp_order_event o;
  order_init(&o);

  /* A heavy buyer who has gone quiet: 21 purchase days over 230 days,
   * nothing for the last 70. */
  struct lp_profile lapsed, active, cheap;
  member(&lapsed, 21, 21, 300, 70, "2100.00");
  member(&active, 21, 21, 300, 3, "2100.00");
  /* Gone quiet after a few cheap purchases: at risk but worth little. */
  member(&cheap, 6, 6, 300, 240, "6.00");
  struct lp_scores ls = score(&m, &lapsed, AT);
  struct lp_scores as = score(&m, &active, AT);
  struct lp_scores cs = score(&m, &cheap, AT);
  assert_true(ls.p_alive < 0.3 && ls.clv_12m > 5);
  assert_true(as.p_alive >= 0.3);
  assert_true(cs.p_alive < 0.3 && cs.clv_12m <= 5);

  /* Without the model the scores are absent: the rule does not fire and
   * the other rule's decision names no model. */
  struct decisions ds = decide(rs, &o, &lapsed);
  assert_int_equal(ds.n, 1);
  assert_null(find_decision(&ds, "winback"));
  assert_null(ds.d[0].explanation.model_version);
  decisions_free(&ds);

  lapsed.model = &m;
  active.model = &m;
  cheap.model = &m;
  ds = decide(rs, &o, &lapsed);
  assert_int_equal(ds.n, 2);
  const struct lp_reward_decision *d = find_decision(&ds, "winback");
  assert_non_null(d);
  assert_string_equal(d->explanation.model_version, m.version);
  const char *pa = feature(d, "profile.p_alive");
  assert_non_null(pa);
  assert_int_equal(money(pa), llround(ls.p_alive * 1e6));
  const char *clv = feature(d, "profile.clv_12m");
  assert_non_null(clv);
  assert_int_equal(money(clv), llround(ls.clv_12m * 100) * 10000);
  /* Every decision names the model in force, scores read or not. */
  d = find_decision(&ds, "every-order");
  assert_non_null(d);
  assert_string_equal(d->explanation.model_version, m.version);
  decisions_free(&ds);

  /* Likely alive: no win-back. */
  ds = decide(rs, &o, &active);
  assert_int_equal(ds.n, 1);
  assert_null(find_decision(&ds, "winback"));
  assert_string_equal(ds.d[0].explanation.model_version, m.version);
  decisions_free(&ds);
  /* At risk but below the value floor: no win-back. */
  ds = decide(rs, &o, &cheap);
  assert_int_equal(ds.n, 1);
  assert_null(find_decision(&ds, "winback"));
  decisions_free(&ds);

  /* A member without an order has no scores, even with a model. */
  struct lp_profile none;
  memset(&none, 0, sizeof(none));
  none.model = &m;
  ds = decide(rs, &o, &none);
  assert_int_equal(ds.n, 1);
  assert_null(find_decision(&ds, "winback"));
  decisions_free(&ds);

  /* The arena path gives the same model version. */
  struct lp_arena arena;
  lp_arena_init(&arena);
  struct lp_reward_decision *ad = NULL;
  size_t an = 0;
  lp_rules_decide_order(rs, &o, &lapsed, &arena, &ad, &an);
  assert_int_equal(an, 2);
  for (size_t i = 0; i < an; i++)
    assert_string_equal(ad[i].explanation.model_version, m.version);
  lp_arena_free(&arena);

  lp_ruleset_destroy(&rs);
  lp_order_event_clear(&o);
}

/* Whether a one-rule file with condition cond fires for p. */
static int fires(const char *cond, const struct lp_profile *p) {
  char *json = lp_xasprintf(
      "{\"rules\":[{\"id\":\"t\",\"version\":1,\"on\":\"order\",\"when\":%s,"
      "\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      cond);
  struct lp_ruleset *rs = load(json);
  free(json);
  struct lp_order_event o;
  order_init(&o);
  struct decisions ds = decide(rs, &o, p);
  size_t n = ds.n;
  if (n) {
    /* The decision names the model exactly when there is one. */
    if (p->model)
      assert_string_equal(ds.d[0].explanation.model_version, p->model->version);
    else
      assert_null(ds.d[0].explanation.model_version);
  }
  decisions_free(&ds);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
  assert_true(n <= 1);
  return (int)n;
}

static void test_rules_score_fields(void **state) {
  (void)state;
  struct lp_model m =
      cdnow_scoring("{\"rewards\": [{\"id\": \"ship\", \"cost\": 0}]}");
  struct lp_profile p;
  /* 4 purchase days over 90 days, last 10 days ago: next in 20 days. */
  member(&p, 4, 4, 100, 10, "400.00");
  static const char *const conds[] = {
      "{\"field\":\"profile.p_alive\",\"op\":\"exists\"}",
      "{\"field\":\"profile.churn_risk\",\"op\":\"in\","
      "\"value\":[\"low\",\"medium\",\"high\"]}",
      "{\"field\":\"profile.expected_orders_30d\",\"op\":\">\",\"value\":0}",
      "{\"field\":\"profile.expected_orders_90d\",\"op\":\"exists\"}",
      "{\"field\":\"profile.expected_orders_365d\",\"op\":\">=\","
      "\"value\":\"0\"}",
      "{\"field\":\"profile.expected_aov\",\"op\":\">\",\"value\":\"0\"}",
      "{\"field\":\"profile.clv_12m\",\"op\":\">\",\"value\":\"0\"}",
      "{\"field\":\"profile.days_to_next_purchase\",\"op\":\"==\","
      "\"value\":20}",
      "{\"field\":\"profile.value_segment\",\"op\":\"exists\"}",
      "{\"field\":\"profile.next_best_reward\",\"op\":\"==\","
      "\"value\":\"ship\"}",
  };
  for (size_t i = 0; i < LP_ARRAY_LEN(conds); i++) {
    p.model = NULL;
    if (fires(conds[i], &p))
      fail_msg("fires without a model: %s", conds[i]);
    p.model = &m;
    if (!fires(conds[i], &p))
      fail_msg("does not fire with the model: %s", conds[i]);
  }
  /* Absent without a model: "exists false" holds, != does not. */
  p.model = NULL;
  assert_true(fires("{\"field\":\"profile.p_alive\",\"op\":\"exists\","
                    "\"value\":false}",
                    &p));
  assert_false(fires("{\"field\":\"profile.churn_risk\",\"op\":\"!=\","
                     "\"value\":\"high\"}",
                     &p));
  /* The scores compare as computed. */
  p.model = &m;
  struct lp_scores s = score(&m, &p, AT);
  char *cond = lp_xasprintf(
      "{\"field\":\"profile.churn_risk\",\"op\":\"==\",\"value\":\"%s\"}",
      lp_churn_band_name(s.churn));
  assert_true(fires(cond, &p));
  free(cond);
  cond = lp_xasprintf(
      "{\"field\":\"profile.value_segment\",\"op\":\"==\",\"value\":\"%s\"}",
      lp_value_segment_name(s.segment));
  assert_true(fires(cond, &p));
  free(cond);
  assert_true(fires("{\"field\":\"profile.p_alive\",\"op\":\"<=\","
                    "\"value\":1}",
                    &p));
  /* A member without an order is "new" and has no other score. */
  struct lp_profile none;
  memset(&none, 0, sizeof(none));
  none.model = &m;
  assert_true(fires("{\"field\":\"profile.value_segment\",\"op\":\"==\","
                    "\"value\":\"new\"}",
                    &none));
  assert_false(
      fires("{\"field\":\"profile.p_alive\",\"op\":\"exists\"}", &none));
  assert_false(fires("{\"field\":\"profile.next_best_reward\",\"op\":"
                     "\"exists\"}",
                     &none));
}

/* A score_sync action: fires only with a model and an order (before or
 * this one); its attributes are the scores just after the order, in a
 * fixed order, and equal lp_model_score_after_order's. */
static void test_rules_score_sync(void **state) {
  (void)state;
  struct lp_model m = cdnow();
  struct lp_ruleset *rs =
      load("{\"rules\": [{\"id\": \"sync\", \"version\": 1, \"on\": \"order\","
           " \"when\": {\"field\": \"event.is_new_order\", \"op\": \"==\","
           " \"value\": true}, \"action\": {\"kind\": \"score_sync\"}}]}");
  struct lp_order_event o;
  order_init(&o);
  struct lp_profile p;
  member(&p, 6, 6, 300, 120, "300.00");
  struct decisions ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 0); /* no model in force */
  decisions_free(&ds);
  p.model = &m;
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 1);
  const struct lp_action *a = &ds.d[0].action;
  assert_int_equal(a->kind, LP_ACTION_SCORE_SYNC);
  assert_int_equal(ds.d[0].estimated_cost_micros, 0);
  static const char *const names[] = {
      "loyalty_model_version", "loyalty_p_alive",
      "loyalty_churn_risk",    "loyalty_clv_12m",
      "loyalty_expected_aov",  "loyalty_expected_orders_90d",
      "loyalty_segment",       "loyalty_next_best_reward",
      "loyalty_next_purchase", "loyalty_scored_at"};
  assert_int_equal(a->n_attributes, LP_ARRAY_LEN(names));
  for (size_t i = 0; i < LP_ARRAY_LEN(names); i++)
    assert_string_equal(a->attributes[i].name, names[i]);
  struct lp_scores before = score(&m, &p, AT), after;
  lp_model_score_after_order(&m, &p, &o, &after);
  /* The order makes the quiet member look alive again. */
  assert_true(after.p_alive > before.p_alive);
  char want[32];
  lp_money_format((int64_t)llround(after.p_alive * 1e6), want, sizeof(want));
  assert_string_equal(a->attributes[1].value, want);
  assert_string_equal(a->attributes[0].value, m.version);
  assert_string_equal(a->attributes[6].value,
                      lp_value_segment_name(after.segment));
  assert_null(a->attributes[7].value); /* no reward catalogue */
  assert_string_equal(a->attributes[9].value, "2026-01-10T00:00:00.000Z");
  decisions_free(&ds);
  /* A member's very first order: scored on that order. */
  struct lp_profile none;
  memset(&none, 0, sizeof(none));
  none.model = &m;
  ds = decide(rs, &o, &none);
  assert_int_equal(ds.n, 1);
  assert_string_equal(ds.d[0].action.attributes[6].value, "new");
  decisions_free(&ds);
  lp_profile_clear(&p);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
}

static void test_rules_reject_unknown_segment(void **state) {
  (void)state;
  static const char *const bad[] = {
      "{\"field\":\"profile.value_segment\",\"op\":\"==\",\"value\":\"gold\"}",
      "{\"field\":\"profile.value_segment\",\"op\":\"in\","
      "\"value\":[\"new\",\"gold\"]}",
      "{\"field\":\"profile.churn_risk\",\"op\":\"==\",\"value\":"
      "\"extreme\"}",
      "{\"field\":\"profile.p_alive\",\"op\":\"contains\",\"value\":\"x\"}",
  };
  for (size_t i = 0; i < LP_ARRAY_LEN(bad); i++) {
    char *json = lp_xasprintf(
        "{\"rules\":[{\"id\":\"t\",\"version\":1,\"on\":\"order\","
        "\"when\":%s,\"action\":{\"kind\":\"points\",\"points\":1}}]}",
        bad[i]);
    char err[1024] = "";
    struct lp_ruleset *rs =
        lp_ruleset_load_string(json, "t.json", err, sizeof(err));
    free(json);
    if (rs) {
      lp_ruleset_destroy(&rs);
      fail_msg("loaded: %s", bad[i]);
    }
    if (strncmp(err, "t.json: $.rules[0].when", 23) != 0)
      fail_msg("message does not name the condition: %s", err);
  }
  /* Every segment name is accepted. */
  for (int i = 0; i < LP_SEG_COUNT; i++) {
    char *json = lp_xasprintf(
        "{\"rules\":[{\"id\":\"t\",\"version\":1,\"on\":\"order\","
        "\"when\":{\"field\":\"profile.value_segment\",\"op\":\"==\","
        "\"value\":\"%s\"},\"action\":{\"kind\":\"points\",\"points\":1}}]}",
        lp_value_segment_names[i]);
    struct lp_ruleset *rs = load(json);
    free(json);
    lp_ruleset_destroy(&rs);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_cdnow),
      cmocka_unit_test(test_parse_scoring_settings),
      cmocka_unit_test(test_parse_rejects),
      cmocka_unit_test(test_model_member),
      cmocka_unit_test(test_no_order_unscored),
      cmocka_unit_test(test_edge_sweep),
      cmocka_unit_test(test_spend_direction),
      cmocka_unit_test(test_recency_direction),
      cmocka_unit_test(test_matches_pure_numerics),
      cmocka_unit_test(test_next_purchase),
      cmocka_unit_test(test_segments),
      cmocka_unit_test(test_next_best_reward),
      cmocka_unit_test(test_rules_read_scores),
      cmocka_unit_test(test_rules_score_fields),
      cmocka_unit_test(test_rules_score_sync),
      cmocka_unit_test(test_rules_reject_unknown_segment),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
