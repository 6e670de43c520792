/*
 * test_clv.c — the member-value models against the published CDNOW
 * results (Fader, Hardie & Lee 2005; Fader & Hardie 2013) and the
 * reference values in ../shared/reference/clv-notes.md: formulas at fixed
 * parameters, the maximum-likelihood fits, and an edge sweep in which no
 * score may be NaN or infinite and P(alive) stays in [0, 1].
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
#include "clv_summary.h"
#include "util.h"

static const struct lp_bgnbd published = {0.243, 4.414, 0.793, 2.426};
static const struct lp_bgnbd mle = {0.242593, 4.413532, 0.792886, 2.425754};
static const struct lp_gamma_gamma gg_published = {6.25, 3.74, 15.44};

/* The CDNOW summary: 2,357 members (weeks, USD). */
static struct lp_clv_member *load_cdnow(size_t *n) {
  FILE *f = fopen("tests/unit/fixtures/cdnow_summary.csv", "r");
  if (!f)
    fail_msg("cannot open tests/unit/fixtures/cdnow_summary.csv (run from "
             "the repository root)");
  struct lp_clv_member *c = calloc(3000, sizeof(*c));
  char line[256];
  *n = 0;
  if (!fgets(line, sizeof(line), f)) /* header */
    fail_msg("empty fixture");
  while (fgets(line, sizeof(line), f) && *n < 3000) {
    int id;
    struct lp_clv_member *m = &c[*n];
    if (sscanf(line, "%d,%lf,%lf,%lf,%lf", &id, &m->x, &m->t_x, &m->T, &m->m) ==
        5)
      (*n)++;
  }
  fclose(f);
  return c;
}

static void assert_rel(double got, double want, double tol, const char *what) {
  if (!(fabs(got - want) <= tol * fabs(want)))
    fail_msg("%s: %.9g, want %.9g within %.3g%%", what, got, want, tol * 100);
}

static void test_formulas_at_fixed_parameters(void **state) {
  (void)state;
  /* Customer 1: x = 2, t_x = 30.43, T = 38.86. */
  struct lp_clv_member c1 = {2, 30.43, 38.86, 22.35};
  assert_rel(lp_bgnbd_member_ll(&published, &c1), -9.4586, 1e-4,
             "ln L of customer 1");
  assert_rel(lp_bgnbd_expected(&published, 2, 30.43, 38.86, 39), 1.226, 1e-3,
             "E[Y(39)] of customer 1 (published)");
  assert_rel(lp_bgnbd_expected(&mle, 2, 30.43, 38.86, 39), 1.2259104, 1e-6,
             "E[Y(39)] of customer 1 (MLE)");
  /* Hardie's E[X(t)] at the unrounded MLE. */
  const double t[] = {0.1429, 1, 3, 31.8571, 32, 78};
  const double want[] = {0.00782, 0.05318, 0.15063,
                         1.04049, 1.04374, 1.8579720};
  for (size_t i = 0; i < 6; i++)
    assert_rel(lp_bgnbd_expected_new(&mle, t[i]), want[i], 1e-3, "E[X(t)]");
  assert_rel(lp_bgnbd_expected_new(&mle, 78), 1.8579720, 1e-6, "E[X(78)]");
  /* P(alive) is exactly 1 without repeat purchases. */
  assert_true(lp_bgnbd_p_alive(&mle, 0, 0, 38.86) == 1.0);
  /* Gamma-Gamma E(M) for customers 1-3 (Hardie's sheet). */
  assert_rel(lp_gamma_gamma_expected_spend(&gg_published, 2, 22.35), 24.65,
             2e-3, "E(M) customer 1");
  assert_rel(lp_gamma_gamma_expected_spend(&gg_published, 1, 11.77), 18.91,
             2e-3, "E(M) customer 2");
  assert_rel(lp_gamma_gamma_expected_spend(&gg_published, 0, 0), 35.17, 2e-3,
             "E(M) population mean");
}

static void test_cdnow_fits(void **state) {
  (void)state;
  size_t n;
  struct lp_clv_member *c = load_cdnow(&n);
  assert_int_equal(n, 2357);
  struct lp_bgnbd m;
  struct lp_fit_info info;
  char err[256];
  if (lp_bgnbd_fit(c, n, &m, &info, err, sizeof(err)))
    fail_msg("%s", err);
  assert_true(info.converged);
  assert_rel(m.r, 0.243, 0.01, "r");
  assert_rel(m.alpha, 4.414, 0.01, "alpha");
  assert_rel(m.a, 0.793, 0.01, "a");
  assert_rel(m.b, 2.426, 0.01, "b");
  assert_rel(info.log_likelihood, -9582.4, 0.01, "log-likelihood");
  /* Tighter than the issue asks: the reproduced MLE (clv-notes 3). */
  assert_rel(m.r, 0.242593, 1e-3, "r (MLE)");
  assert_rel(info.log_likelihood, -9582.4256, 1e-6, "log-likelihood (MLE)");
  struct lp_gamma_gamma g;
  if (lp_gamma_gamma_fit(c, n, &g, &info, err, sizeof(err)))
    fail_msg("%s", err);
  assert_rel(g.p, 6.25, 0.02, "p");
  assert_rel(g.q, 3.74, 0.02, "q");
  assert_rel(g.gamma, 15.44, 0.02, "gamma");
  size_t used;
  lp_gamma_gamma_ll(&g, c, n, &used);
  assert_int_equal(used, 946);
  assert_rel(info.log_likelihood, -4055.9232, 1e-5, "Gamma-Gamma LL");
  /* Holdout check: Σ E[Y(39)] over members = 1,653.4 (clv-notes 5). */
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += lp_bgnbd_expected(&m, c[i].x, c[i].t_x, c[i].T, 39);
  assert_rel(sum, 1653.4, 2e-3, "predicted holdout repeat purchases");
  free(c);
}

static void test_bad_data_refused(void **state) {
  (void)state;
  struct lp_clv_member bad[2] = {{1, 5, 3, 10}, {0, 0, 10, 0}}; /* t_x > T */
  struct lp_bgnbd m = {1, 1, 1, 1};
  struct lp_fit_info info;
  char err[256];
  assert_int_equal(lp_bgnbd_fit(bad, 2, &m, &info, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "member 0"));
  assert_true(m.r == 1); /* untouched */
  assert_int_equal(lp_bgnbd_fit(bad, 0, &m, &info, err, sizeof(err)), -1);
  struct lp_clv_member none[1] = {{0, 0, 10, 0}};
  struct lp_gamma_gamma g;
  assert_int_equal(lp_gamma_gamma_fit(none, 1, &g, &info, err, sizeof(err)),
                   -1);
}

/* No score is NaN or infinite, P(alive) in [0, 1], across the edges: no
 * purchases, hundreds of purchases, ten-year histories, the last purchase
 * at the end of the window, zero spend, a near 1, a + b < 1. */
static void test_edge_sweep(void **state) {
  (void)state;
  const struct lp_bgnbd params[] = {
      {0.243, 4.414, 0.793, 2.426}, {6, 316, 6.3, 32},
      {0.03, 0.1, 0.05, 0.05},      {1, 10, 1 + 1e-9, 3},
      {2, 50, 1 - 1e-4, 0.2},       {0.5, 2, 0.3, 0.4}};
  const struct lp_gamma_gamma gg[] = {{6.25, 3.74, 15.44}, {0.5, 1.01, 1}};
  const double xs[] = {0, 1, 2, 30, 300, 520};
  const double Ts[] = {0.5, 39, 520, 5200};
  const double ts[] = {0, 0.01, 4.345, 52.14, 1040, 5200};
  long checked = 0;
  for (size_t p = 0; p < LP_ARRAY_LEN(params); p++)
    for (size_t i = 0; i < LP_ARRAY_LEN(xs); i++)
      for (size_t k = 0; k < LP_ARRAY_LEN(Ts); k++)
        for (int where = 0; where < 3; where++) {
          double x = xs[i], T = Ts[k];
          double tx = x == 0 ? 0 : where == 0 ? T : where == 1 ? T / 2 : 1e-3;
          double pa = lp_bgnbd_p_alive(&params[p], x, tx, T);
          assert_true(pa >= 0 && pa <= 1);
          struct lp_clv_member c = {x, tx, T, 0};
          assert_true(isfinite(lp_bgnbd_member_ll(&params[p], &c)));
          for (size_t j = 0; j < LP_ARRAY_LEN(ts); j++) {
            double e = lp_bgnbd_expected(&params[p], x, tx, T, ts[j]);
            assert_true(isfinite(e) && e >= 0);
            assert_true(isfinite(lp_bgnbd_expected_new(&params[p], ts[j])));
          }
          for (size_t g = 0; g < LP_ARRAY_LEN(gg); g++)
            for (int spend = 0; spend < 2; spend++) {
              double m = spend ? 25.0 : 0.0; /* zero spend */
              double s = lp_gamma_gamma_expected_spend(&gg[g], x, m);
              assert_true(isfinite(s) && s >= 0);
              double clv = lp_clv_value(&params[p], &gg[g], x, tx, T, m, 12,
                                        4.345, 0.01);
              assert_true(isfinite(clv) && clv >= 0);
            }
          checked++;
        }
  assert_true(checked > 400);
}

/* The summary builder rebuilds the published CDNOW summary from the raw
 * transactions (39-week calibration, weeks, day-level repeats). */
static void test_summary_from_transactions(void **state) {
  (void)state;
  FILE *f = fopen("tests/unit/fixtures/cdnow_sample.txt", "r");
  assert_non_null(f);
  struct lp_clv_builder *b = lp_clv_builder_new();
  char line[256], id[16];
  long master, ymd, cds;
  double usd;
  size_t rows = 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "%ld %15s %ld %ld %lf", &master, id, &ymd, &cds, &usd) ==
        5) {
      lp_clv_builder_add(b, id, lp_clv_day_of_ymd(ymd), usd);
      rows++;
    }
  fclose(f);
  assert_int_equal(rows, 6919);
  const struct lp_clv_summary *s;
  size_t n = lp_clv_builder_summarise(b, lp_clv_day_of_ymd(19970930),
                                      lp_clv_day_of_ymd(19980630), 7.0, &s);
  assert_int_equal(n, 2357);
  size_t m;
  struct lp_clv_member *want = load_cdnow(&m);
  assert_int_equal(m, n);
  double sum_x = 0, sum_hold = 0;
  for (size_t i = 0; i < n; i++) {
    /* sample ids 0001..2357 sort in file order */
    assert_true(s[i].s.x == want[i].x);
    assert_true(fabs(s[i].s.t_x - want[i].t_x) < 0.006);
    assert_true(fabs(s[i].s.T - want[i].T) < 0.006);
    assert_true(fabs(s[i].s.m - want[i].m) < 0.006);
    sum_x += s[i].s.x;
    sum_hold += s[i].holdout_x;
  }
  assert_true(sum_x == 2457);    /* repeat purchases in calibration */
  assert_true(sum_hold == 1882); /* and in the holdout */
  free(want);
  lp_clv_builder_destroy(&b);
  assert_int_equal(lp_clv_day_of_ymd(19700101), 0);
  assert_int_equal(lp_clv_day_of_ymd(19970930) - lp_clv_day_of_ymd(19970101),
                   272);
  assert_true(lp_clv_day_of_ymd(19971332) == INT64_MIN);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_formulas_at_fixed_parameters),
      cmocka_unit_test(test_cdnow_fits),
      cmocka_unit_test(test_bad_data_refused),
      cmocka_unit_test(test_edge_sweep),
      cmocka_unit_test(test_summary_from_transactions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
