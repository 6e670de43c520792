/*
 * clv.h — the member-value models, as pure numerics (libm and NLopt, no
 * I/O): BG/NBD (Fader, Hardie & Lee 2005) for repeat purchases and
 * dropout, Gamma-Gamma (Fader & Hardie 2013) for spend per purchase, and
 * the discounted CLV built on both. Formulas and the data conventions are
 * in ../shared/reference/clv-notes.md; the numerically stable series for
 * the conditional expectation is its section 4.7.
 *
 * Data per member, in one time unit (CDNOW: weeks): x = repeat purchase
 * days (the first purchase does not count, several purchases on one day
 * count once), t_x = time from the first purchase to the last repeat one
 * (0 when x = 0), T = time from the first purchase to the end of the
 * data window, m = mean value of the x repeat purchases.
 *
 * Scoring functions (lp_clv_value aside, which allocates its months)
 * allocate nothing and never return NaN or infinity
 * for valid parameters (all > 0) and 0 <= t_x <= T: P(alive) is in [0, 1].
 */
#ifndef LP_CLV_H
#define LP_CLV_H

#include <stddef.h>

struct lp_clv_member {
  double x, t_x, T, m;
};

struct lp_bgnbd {
  double r, alpha, a, b;
};

struct lp_gamma_gamma {
  double p, q, gamma;
};

/* What a fit did, for the model file and the operator. */
struct lp_fit_info {
  double log_likelihood; /* at the optimum, summed over members */
  int iterations;        /* objective evaluations */
  int converged;         /* the minimiser reached its tolerance */
  char message[128];     /* why it stopped */
};

/* ln L of one member (paper Eq. 6, in the stable log form). */
double lp_bgnbd_member_ll(const struct lp_bgnbd *m,
                          const struct lp_clv_member *c);
/* Σ ln L over n members. */
double lp_bgnbd_ll(const struct lp_bgnbd *m, const struct lp_clv_member *c,
                   size_t n);

/*
 * Maximum likelihood over log-parameters (NLopt), with time rescaled by
 * 1 / max(T) for conditioning and α reported in the data's unit.
 * Returns 0 with *out and *info, or -1 with errstr (no members, bad
 * data, the minimiser failed or did not converge: *out then untouched).
 */
int lp_bgnbd_fit(const struct lp_clv_member *c, size_t n, struct lp_bgnbd *out,
                 struct lp_fit_info *info, char *errstr, size_t errstr_size);

/* P(alive | x, t_x, T); exactly 1 when x = 0. */
double lp_bgnbd_p_alive(const struct lp_bgnbd *m, double x, double t_x,
                        double T);

/* E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T + t]. */
double lp_bgnbd_expected(const struct lp_bgnbd *m, double x, double t_x,
                         double T, double t);

/* The same for a member known to be alive: E[Y(t) | x, t_x, T] is this
 * times P(alive), so several horizons share one P(alive). */
double lp_bgnbd_expected_if_alive(const struct lp_bgnbd *m, double x, double T,
                                  double t);

/* The same at n <= LP_CLV_MAX_HORIZONS horizons t[] at once, into out[]:
 * one pass of the series serves them all (a processor's scores need 15). */
#define LP_CLV_MAX_HORIZONS 16
void lp_bgnbd_expected_if_alive_n(const struct lp_bgnbd *m, double x, double T,
                                  const double *t, size_t n, double *out);

/* E[X(t)]: expected repeat purchases in (0, t] of a new member. */
double lp_bgnbd_expected_new(const struct lp_bgnbd *m, double t);

/* ln L of one repeat member (x > 0, m > 0), and the sum over those of
 * n members (others skipped; *used counts them, may be NULL). */
double lp_gamma_gamma_member_ll(const struct lp_gamma_gamma *g, double x,
                                double m);
double lp_gamma_gamma_ll(const struct lp_gamma_gamma *g,
                         const struct lp_clv_member *c, size_t n, size_t *used);

/* Maximum likelihood as lp_bgnbd_fit, on the members with x > 0, m > 0. */
int lp_gamma_gamma_fit(const struct lp_clv_member *c, size_t n,
                       struct lp_gamma_gamma *out, struct lp_fit_info *info,
                       char *errstr, size_t errstr_size);

/* E(M | x, m): the member's expected spend per purchase (the population
 * mean pγ/(q−1) when x = 0, needs q > 1; m = 0 with x > 0 gives
 * pγ/(px+q−1), so spending nothing never scores above the mean). */
double lp_gamma_gamma_expected_spend(const struct lp_gamma_gamma *g, double x,
                                     double m);

/*
 * Discounted CLV over `months` months (clv-notes 4.10): Σ_k M ·
 * (E[Y(k f)] − E[Y((k−1) f)]) / (1+d)^k, with f = data time units per
 * month (weeks: 4.345) and d the monthly discount rate.
 */
double lp_clv_value(const struct lp_bgnbd *m, const struct lp_gamma_gamma *g,
                    double x, double t_x, double T, double mean_spend,
                    int months, double units_per_month,
                    double monthly_discount);

/* The same sum from E(M) = spend and cum[k] = E[Y((k+1) f)], k < months,
 * already computed (the processors' scoring shares them). */
double lp_clv_from_expected(double spend, const double *cum, int months,
                            double monthly_discount);

#endif
