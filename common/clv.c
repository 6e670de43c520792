/*
 * clv.c — BG/NBD, Gamma-Gamma and discounted CLV (see clv.h). Every
 * quantity is computed in logs or through the series of clv-notes 4.7, so
 * members with hundreds of purchases and ten-year horizons stay finite.
 */
#include "clv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nlopt.h>

#include "util.h"

double lp_bgnbd_member_ll(const struct lp_bgnbd *m,
                          const struct lp_clv_member *c) {
  double r = m->r, al = m->alpha, a = m->a, b = m->b, x = c->x;
  double a1 = lgamma(r + x) - lgamma(r) + r * log(al);
  double a2 = lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x);
  double a3 = -(r + x) * log(al + c->T);
  if (x <= 0)
    return a1 + a2 + a3;
  double a4 = log(a) - log(b + x - 1) - (r + x) * log(al + c->t_x);
  double hi = a3 > a4 ? a3 : a4;
  return a1 + a2 + hi + log(exp(a3 - hi) + exp(a4 - hi));
}

double lp_bgnbd_ll(const struct lp_bgnbd *m, const struct lp_clv_member *c,
                   size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += lp_bgnbd_member_ll(m, &c[i]);
  return s;
}

double lp_bgnbd_p_alive(const struct lp_bgnbd *m, double x, double t_x,
                        double T) {
  if (x <= 0)
    return 1.0;
  double d = log(m->a) - log(m->b + x - 1) +
             (m->r + x) * log((m->alpha + T) / (m->alpha + t_x));
  /* logistic(−d), without overflow either way */
  if (d > 0) {
    double e = exp(-d);
    return e / (1 + e);
  }
  return 1 / (1 + exp(d));
}

/* (a+b+x−1)/(a−1) · [1 − (1−z)^(a−1) 2F1(a+b−1−r, a−1; a+b+x−1; z)] with
 * z = t/(α+T+t), summed as in clv-notes 4.7 (no pole, finite at a = 1). */
static double bracket(const struct lp_bgnbd *m, double x, double T, double t) {
  if (t <= 0)
    return 0;
  double beta = m->a - 1, ap = m->a + m->b - 1 - m->r;
  double cc = m->a + m->b + x - 1;
  double L = -log1p(t / (m->alpha + T));
  double z = t / (m->alpha + T + t);
  double lead = fabs(beta) < 1e-12 ? -L : -expm1(beta * L) / beta;
  double u = ap * z, s = u;
  for (long k = 1; k < 2000000; k++) {
    u *= (ap + k) * (beta + k) * z / ((cc + k) * (k + 1));
    s += u;
    if (fabs(u) <= 1e-17 * fabs(s) || u == 0)
      break;
  }
  return cc * lead - exp(beta * L) * s;
}

double lp_bgnbd_expected(const struct lp_bgnbd *m, double x, double t_x,
                         double T, double t) {
  double e = bracket(m, x, T, t) * lp_bgnbd_p_alive(m, x, t_x, T);
  return e > 0 && isfinite(e) ? e : 0;
}

double lp_bgnbd_expected_if_alive(const struct lp_bgnbd *m, double x, double T,
                                  double t) {
  double e = bracket(m, x, T, t);
  return e > 0 && isfinite(e) ? e : 0;
}

void lp_bgnbd_expected_if_alive_n(const struct lp_bgnbd *m, double x, double T,
                                  const double *t, size_t n, double *out) {
  LP_ASSERT(n <= LP_CLV_MAX_HORIZONS);
  /* bracket() for n horizons at once: the series' coefficient ratio does
   * not depend on t, so one division per term serves every horizon and
   * the n products run side by side. (1−z)^β is exp(β L) with
   * L = −log1p(t/(α+T)). */
  double beta = m->a - 1, ap = m->a + m->b - 1 - m->r;
  double cc = m->a + m->b + x - 1;
  double z[LP_CLV_MAX_HORIZONS], u[LP_CLV_MAX_HORIZONS],
      sum[LP_CLV_MAX_HORIZONS];
  size_t far = 0; /* the horizon with the largest z converges last */
  for (size_t j = 0; j < LP_CLV_MAX_HORIZONS; j++) {
    /* Unused lanes stay 0: the loop below has a fixed trip count, which
     * lets the compiler vectorise it. */
    z[j] = j < n && t[j] > 0 ? t[j] / (m->alpha + T + t[j]) : 0;
    u[j] = sum[j] = ap * z[j];
    if (z[j] > z[far])
      far = j;
  }
  /* Each term is the last times ratio·z: the smaller z, the faster it
   * shrinks, so the series has converged for every horizon once it has
   * for the farthest. */
  for (long k = 1; n && z[far] > 0 && k < 2000000; k++) {
    double ratio = (ap + k) * (beta + k) / ((cc + k) * (k + 1));
    for (size_t j = 0; j < LP_CLV_MAX_HORIZONS; j++) {
      u[j] *= ratio * z[j];
      sum[j] += u[j];
    }
    if (fabs(u[far]) <= 1e-17 * fabs(sum[far]) || u[far] == 0)
      break;
  }
  for (size_t j = 0; j < n; j++) {
    if (t[j] <= 0) {
      out[j] = 0;
      continue;
    }
    double L = -log1p(t[j] / (m->alpha + T));
    double bl = beta * L, ebl = exp(bl);
    /* (1 − e^{βL})/β; expm1 only where the subtraction would cancel. */
    double lead = fabs(beta) < 1e-12 ? -L
                  : fabs(bl) < 1e-3  ? -expm1(bl) / beta
                                     : (1 - ebl) / beta;
    double e = cc * lead - ebl * sum[j];
    out[j] = e > 0 && isfinite(e) ? e : 0;
  }
}

double lp_bgnbd_expected_new(const struct lp_bgnbd *m, double t) {
  double e = bracket(m, 0, 0, t);
  return e > 0 && isfinite(e) ? e : 0;
}

double lp_gamma_gamma_member_ll(const struct lp_gamma_gamma *g, double x,
                                double m) {
  double px = g->p * x;
  return lgamma(px + g->q) - lgamma(px) - lgamma(g->q) + g->q * log(g->gamma) +
         (px - 1) * log(m) + px * log(x) - (px + g->q) * log(g->gamma + x * m);
}

double lp_gamma_gamma_ll(const struct lp_gamma_gamma *g,
                         const struct lp_clv_member *c, size_t n,
                         size_t *used) {
  double s = 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (c[i].x <= 0 || c[i].m <= 0)
      continue;
    s += lp_gamma_gamma_member_ll(g, c[i].x, c[i].m);
    k++;
  }
  if (used)
    *used = k;
  return s;
}

double lp_gamma_gamma_expected_spend(const struct lp_gamma_gamma *g, double x,
                                     double m) {
  /* No repeat purchase: the population mean. Repeat purchases worth
   * nothing (m = 0) are a valid limit: p γ / (p x + q − 1). */
  if (x <= 0)
    x = 0, m = 0;
  if (!(m > 0))
    m = 0;
  double den = g->p * x + g->q - 1;
  if (den <= 0)
    return m; /* q <= 1 and no history: no finite population mean */
  return g->p * (g->gamma + x * m) / den;
}

double lp_clv_from_expected(double spend, const double *cum, int months,
                            double monthly_discount) {
  double prev = 0, clv = 0, disc = 1;
  for (int k = 0; k < months; k++) {
    disc /= 1 + monthly_discount;
    clv += spend * (cum[k] - prev) * disc;
    prev = cum[k];
  }
  return isfinite(clv) && clv > 0 ? clv : 0;
}

double lp_clv_value(const struct lp_bgnbd *m, const struct lp_gamma_gamma *g,
                    double x, double t_x, double T, double mean_spend,
                    int months, double units_per_month,
                    double monthly_discount) {
  if (months <= 0)
    return 0;
  double spend = lp_gamma_gamma_expected_spend(g, x, mean_spend);
  double alive = lp_bgnbd_p_alive(m, x, t_x, T); /* once, not per month */
  double *cum = lp_xmalloc((size_t)months * sizeof(*cum));
  double t[LP_CLV_MAX_HORIZONS];
  /* The months' cumulative expectations, LP_CLV_MAX_HORIZONS at a time. */
  for (int k0 = 0; k0 < months; k0 += LP_CLV_MAX_HORIZONS) {
    size_t n = 0;
    for (int k = k0; k < months && n < LP_CLV_MAX_HORIZONS; k++)
      t[n++] = (k + 1) * units_per_month;
    lp_bgnbd_expected_if_alive_n(m, x, T, t, n, cum + k0);
    for (size_t j = 0; j < n; j++)
      cum[k0 + (int)j] *= alive;
  }
  double clv = lp_clv_from_expected(spend, cum, months, monthly_discount);
  free(cum);
  return clv;
}

/* ---- fitting ---- */

struct fit_data {
  const struct lp_clv_member *c;
  size_t n;
  double scale; /* time divisor (BG/NBD) */
  int evals;
};

static double bgnbd_objective(unsigned n, const double *th, double *grad,
                              void *opaque) {
  (void)n;
  (void)grad; /* derivative-free */
  struct fit_data *f = opaque;
  f->evals++;
  struct lp_bgnbd m = {exp(th[0]), exp(th[1]), exp(th[2]), exp(th[3])};
  double s = 0;
  for (size_t i = 0; i < f->n; i++) {
    struct lp_clv_member c = f->c[i];
    c.t_x /= f->scale;
    c.T /= f->scale;
    s += lp_bgnbd_member_ll(&m, &c);
  }
  double v = -s / (double)f->n;
  return isfinite(v) ? v : HUGE_VAL;
}

static double gg_objective(unsigned n, const double *th, double *grad,
                           void *opaque) {
  (void)n;
  (void)grad;
  struct fit_data *f = opaque;
  f->evals++;
  struct lp_gamma_gamma g = {exp(th[0]), exp(th[1]), exp(th[2])};
  size_t used = 0;
  double v = -lp_gamma_gamma_ll(&g, f->c, f->n, &used) / (double)used;
  return isfinite(v) ? v : HUGE_VAL;
}

/* One local minimisation from th (in place); the NLopt result. */
static nlopt_result minimise_from(unsigned dim, nlopt_func objective,
                                  struct fit_data *f, double *th,
                                  double *best) {
  nlopt_opt opt = nlopt_create(NLOPT_LN_BOBYQA, dim);
  if (!opt)
    return NLOPT_FAILURE;
  double lo[4], hi[4];
  for (unsigned i = 0; i < dim; i++) {
    lo[i] = -30; /* e^±30: far outside any sensible parameter */
    hi[i] = 30;
  }
  nlopt_set_lower_bounds(opt, lo);
  nlopt_set_upper_bounds(opt, hi);
  nlopt_set_min_objective(opt, objective, f);
  nlopt_set_xtol_rel(opt, 1e-10);
  nlopt_set_ftol_abs(opt, 1e-13);
  nlopt_set_maxeval(opt, 20000);
  nlopt_result rc = nlopt_optimize(opt, th, best);
  nlopt_destroy(opt);
  return rc;
}

/*
 * Minimises objective over dim log-parameters. The likelihood surface has
 * ridges (BG/NBD drifts towards a, b -> infinity, the NBD limit, from
 * some starts), so several starts are run, lifetimes' θ = 0.1 first, and
 * the best converged optimum kept. 0 when one converged.
 */
static int minimise(unsigned dim, nlopt_func objective, struct fit_data *f,
                    double *th_out, struct lp_fit_info *info, char *errstr,
                    size_t errstr_size) {
  static const double starts[][4] = {
      {0.1, 0.1, 0.1, 0.1}, {-1, 0, -0.5, 0.5}, {1, 1, 1, 1}, {-2, -1, 0, 2}};
  static const char *const why[] = {
      [NLOPT_SUCCESS] = "success",
      [NLOPT_STOPVAL_REACHED] = "stop value reached",
      [NLOPT_FTOL_REACHED] = "objective tolerance reached",
      [NLOPT_XTOL_REACHED] = "parameter tolerance reached",
      [NLOPT_MAXEVAL_REACHED] = "evaluation limit reached",
      [NLOPT_MAXTIME_REACHED] = "time limit reached"};
  double best = HUGE_VAL;
  nlopt_result best_rc = NLOPT_FAILURE, last_rc = NLOPT_FAILURE;
  for (size_t s = 0; s < LP_ARRAY_LEN(starts); s++) {
    double th[4], v = HUGE_VAL;
    memcpy(th, starts[s], sizeof(th));
    nlopt_result rc = minimise_from(dim, objective, f, th, &v);
    last_rc = rc;
    int ok = rc > 0 && rc != NLOPT_MAXEVAL_REACHED &&
             rc != NLOPT_MAXTIME_REACHED && isfinite(v);
    if (ok && v < best) {
      best = v;
      best_rc = rc;
      memcpy(th_out, th, dim * sizeof(*th));
    }
  }
  info->iterations = f->evals;
  info->converged = isfinite(best);
  nlopt_result rc = info->converged ? best_rc : last_rc;
  snprintf(info->message, sizeof(info->message), "%s",
           rc > 0 && rc <= NLOPT_MAXTIME_REACHED ? why[rc]
                                                 : "minimiser failed");
  if (!info->converged)
    return lp_err(errstr, errstr_size, "fit did not converge: %s (%d)",
                  info->message, (int)rc);
  return 0;
}

int lp_bgnbd_fit(const struct lp_clv_member *c, size_t n, struct lp_bgnbd *out,
                 struct lp_fit_info *info, char *errstr, size_t errstr_size) {
  memset(info, 0, sizeof(*info));
  if (n == 0)
    return lp_err(errstr, errstr_size, "bgnbd fit: no members");
  double scale = 0;
  for (size_t i = 0; i < n; i++) {
    if (!(c[i].x >= 0) || !(c[i].t_x >= 0) || !(c[i].T >= c[i].t_x) ||
        (c[i].x > 0 && c[i].t_x <= 0) || !isfinite(c[i].T))
      return lp_err(errstr, errstr_size,
                    "bgnbd fit: member %zu has x=%g t_x=%g T=%g (need x >= "
                    "0, 0 <= t_x <= T, t_x > 0 when x > 0)",
                    i, c[i].x, c[i].t_x, c[i].T);
    if (c[i].T > scale)
      scale = c[i].T;
  }
  if (scale <= 0)
    return lp_err(errstr, errstr_size, "bgnbd fit: every T is 0");
  struct fit_data f = {c, n, scale, 0};
  double th[4];
  if (minimise(4, bgnbd_objective, &f, th, info, errstr, errstr_size))
    return -1;
  struct lp_bgnbd m = {exp(th[0]), exp(th[1]) * scale, exp(th[2]), exp(th[3])};
  info->log_likelihood = lp_bgnbd_ll(&m, c, n);
  *out = m;
  return 0;
}

int lp_gamma_gamma_fit(const struct lp_clv_member *c, size_t n,
                       struct lp_gamma_gamma *out, struct lp_fit_info *info,
                       char *errstr, size_t errstr_size) {
  memset(info, 0, sizeof(*info));
  size_t used = 0;
  for (size_t i = 0; i < n; i++)
    used += c[i].x > 0 && c[i].m > 0;
  if (used == 0)
    return lp_err(errstr, errstr_size,
                  "gamma-gamma fit: no member with repeat purchases");
  struct fit_data f = {c, n, 1, 0};
  double th[3];
  if (minimise(3, gg_objective, &f, th, info, errstr, errstr_size))
    return -1;
  struct lp_gamma_gamma g = {exp(th[0]), exp(th[1]), exp(th[2])};
  info->log_likelihood = lp_gamma_gamma_ll(&g, c, n, NULL);
  *out = g;
  return 0;
}
