/*
 * model.c — the trainer's model JSON into struct lp_model, and member
 * scores from it (see model.h; formulas in docs/models.md).
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "profile_apply.h"
#include "util.h"

#define MS_PER_DAY 86400000.0
#define DAYS_PER_MONTH (365.25 / 12.0)

const char *const lp_churn_band_names[4] = {"low", "medium", "high", NULL};

const char *const lp_value_segment_names[LP_SEG_COUNT + 1] = {
    [LP_SEG_NEW] = "new",
    [LP_SEG_AT_RISK_HIGH_VALUE] = "at_risk_high_value",
    [LP_SEG_GIFT_BUYER] = "gift_buyer",
    [LP_SEG_PREMIUM_ENTHUSIAST] = "premium_enthusiast",
    [LP_SEG_VALUE_SEEKER] = "value_seeker",
    [LP_SEG_REGULAR] = "regular",
    [LP_SEG_COUNT] = NULL,
};

const char *lp_churn_band_name(enum lp_churn_band b) {
  return (unsigned)b < 3 ? lp_churn_band_names[b] : NULL;
}

const char *lp_value_segment_name(enum lp_value_segment s) {
  return (unsigned)s < LP_SEG_COUNT ? lp_value_segment_names[s] : NULL;
}

/* ---- parsing ------------------------------------------------------------ */

/* A finite number > 0 at obj.key, or -1 with the reason. */
static int positive(json_t *obj, const char *path, const char *key, double *out,
                    const char *source, char *errstr, size_t errstr_size) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_number(v))
    return lp_err(errstr, errstr_size, "%s: %s.%s: %s", source, path, key,
                  v ? "must be a number" : "missing");
  double d = json_number_value(v);
  if (!isfinite(d) || d <= 0)
    return lp_err(errstr, errstr_size,
                  "%s: %s.%s: must be a positive number, got %g", source, path,
                  key, d);
  *out = d;
  return 0;
}

/* The fit record must say it converged: a model that did not is never
 * put in force. */
static int converged(json_t *obj, const char *path, const char *source,
                     char *errstr, size_t errstr_size) {
  json_t *fit = json_object_get(obj, "fit");
  json_t *c = fit ? json_object_get(fit, "converged") : NULL;
  if (!json_is_boolean(c))
    return lp_err(errstr, errstr_size, "%s: %s.fit.converged: missing", source,
                  path);
  if (!json_is_true(c))
    return lp_err(errstr, errstr_size,
                  "%s: %s.fit.converged: false (the fit did not converge; "
                  "such a model is never used)",
                  source, path);
  return 0;
}

/* An optional number in [lo, hi] at scoring.key; keeps *out when absent. */
static int setting(json_t *scoring, const char *key, double lo, double hi,
                   double *out, const char *source, char *errstr,
                   size_t errstr_size) {
  json_t *v = scoring ? json_object_get(scoring, key) : NULL;
  if (!v)
    return 0;
  double d = json_is_number(v) ? json_number_value(v) : NAN;
  if (!(d >= lo && d <= hi))
    return lp_err(errstr, errstr_size,
                  "%s: $.scoring.%s: must be a number in [%g, %g]", source, key,
                  lo, hi);
  *out = d;
  return 0;
}

/* Every key of obj must be one of keys (NULL-terminated): a typo in a
 * setting is an error, not a silent default. */
static int known_keys(json_t *obj, const char *const *keys, const char *path,
                      const char *source, char *errstr, size_t errstr_size) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    size_t i = 0;
    while (keys[i] && strcmp(keys[i], k) != 0)
      i++;
    if (!keys[i])
      return lp_err(errstr, errstr_size, "%s: %s.%s: unknown key", source, path,
                    k);
  }
  return 0;
}

/* scoring.rewards: [{"id", "cost", "segments": [...]}, ...]. */
static int parse_rewards(json_t *scoring, struct lp_model *m,
                         const char *source, char *errstr, size_t errstr_size) {
  json_t *arr = scoring ? json_object_get(scoring, "rewards") : NULL;
  if (!arr)
    return 0;
  if (!json_is_array(arr) || json_array_size(arr) > LP_MODEL_MAX_REWARDS)
    return lp_err(errstr, errstr_size,
                  "%s: $.scoring.rewards: must be an array of at most %d "
                  "reward types",
                  source, LP_MODEL_MAX_REWARDS);
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *r = json_array_get(arr, i);
    struct lp_model_reward *w = &m->rewards[i];
    json_t *id = json_object_get(r, "id"), *cost = json_object_get(r, "cost");
    json_t *segs = json_object_get(r, "segments");
    static const char *const reward_keys[] = {"id", "cost", "segments", NULL};
    char rpath[48];
    snprintf(rpath, sizeof(rpath), "$.scoring.rewards[%zu]", i);
    if (json_is_object(r) &&
        known_keys(r, reward_keys, rpath, source, errstr, errstr_size))
      return -1;
    if (!json_is_object(r) || !json_is_string(id) ||
        json_string_length(id) == 0 ||
        json_string_length(id) > LP_MODEL_NAME_MAX)
      return lp_err(errstr, errstr_size,
                    "%s: $.scoring.rewards[%zu].id: must be a name of 1 to "
                    "%d bytes",
                    source, i, LP_MODEL_NAME_MAX);
    if (!json_is_number(cost) || !(json_number_value(cost) >= 0) ||
        !isfinite(json_number_value(cost)))
      return lp_err(errstr, errstr_size,
                    "%s: $.scoring.rewards[%zu].cost: must be a number >= 0",
                    source, i);
    snprintf(w->id, sizeof(w->id), "%s", json_string_value(id));
    for (size_t k = 0; k < i; k++)
      if (strcmp(m->rewards[k].id, w->id) == 0)
        return lp_err(errstr, errstr_size,
                      "%s: $.scoring.rewards[%zu].id: duplicate \"%s\"", source,
                      i, w->id);
    w->cost = json_number_value(cost);
    w->segment_mask = 0;
    if (segs && !json_is_array(segs))
      return lp_err(errstr, errstr_size,
                    "%s: $.scoring.rewards[%zu].segments: must be an array",
                    source, i);
    for (size_t k = 0; segs && k < json_array_size(segs); k++) {
      const char *name = json_string_value(json_array_get(segs, k));
      size_t sg = 0;
      while (name && sg < LP_SEG_COUNT &&
             strcmp(lp_value_segment_names[sg], name) != 0)
        sg++;
      if (!name || sg == LP_SEG_COUNT)
        return lp_err(errstr, errstr_size,
                      "%s: $.scoring.rewards[%zu].segments[%zu]: not a "
                      "segment (new, at_risk_high_value, gift_buyer, "
                      "premium_enthusiast, value_seeker, regular)",
                      source, i, k);
      w->segment_mask |= 1u << sg;
    }
    m->n_rewards = i + 1;
  }
  return 0;
}

int lp_model_parse(const char *json, size_t len, const char *source,
                   struct lp_model *out, char *errstr, size_t errstr_size) {
  json_error_t jerr;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return lp_err(errstr, errstr_size, "%s: line %d column %d: %s", source,
                  jerr.line, jerr.column, jerr.text);
  struct lp_model m;
  memset(&m, 0, sizeof(m));
  int rc = -1;
  json_t *v, *bg, *gg, *scoring;
  if (!json_is_object(root)) {
    lp_err(errstr, errstr_size, "%s: $: expected an object", source);
    goto done;
  }
  v = json_object_get(root, "version");
  if (!json_is_string(v) || json_string_length(v) == 0 ||
      json_string_length(v) > LP_MODEL_VERSION_MAX) {
    lp_err(errstr, errstr_size,
           "%s: $.version: must be a string of 1 to %d characters", source,
           LP_MODEL_VERSION_MAX);
    goto done;
  }
  for (const char *c = json_string_value(v); *c; c++)
    if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f) {
      lp_err(errstr, errstr_size,
             "%s: $.version: printable ASCII without spaces only", source);
      goto done;
    }
  snprintf(m.version, sizeof(m.version), "%s", json_string_value(v));
  v = json_object_get(root, "time_unit");
  if (json_is_string(v) && strcmp(json_string_value(v), "weeks") == 0)
    m.days_per_unit = 7;
  else if (json_is_string(v) && strcmp(json_string_value(v), "days") == 0)
    m.days_per_unit = 1;
  else {
    lp_err(errstr, errstr_size,
           "%s: $.time_unit: must be \"weeks\" or \"days\"", source);
    goto done;
  }
  snprintf(m.time_unit, sizeof(m.time_unit), "%s", json_string_value(v));
  bg = json_object_get(root, "bgnbd");
  gg = json_object_get(root, "gamma_gamma");
  if (!json_is_object(bg) || !json_is_object(gg)) {
    lp_err(errstr, errstr_size, "%s: $.%s: missing or not an object", source,
           json_is_object(bg) ? "gamma_gamma" : "bgnbd");
    goto done;
  }
  if (positive(bg, "$.bgnbd", "r", &m.bgnbd.r, source, errstr, errstr_size) ||
      positive(bg, "$.bgnbd", "alpha", &m.bgnbd.alpha, source, errstr,
               errstr_size) ||
      positive(bg, "$.bgnbd", "a", &m.bgnbd.a, source, errstr, errstr_size) ||
      positive(bg, "$.bgnbd", "b", &m.bgnbd.b, source, errstr, errstr_size) ||
      converged(bg, "$.bgnbd", source, errstr, errstr_size) ||
      positive(gg, "$.gamma_gamma", "p", &m.gg.p, source, errstr,
               errstr_size) ||
      positive(gg, "$.gamma_gamma", "q", &m.gg.q, source, errstr,
               errstr_size) ||
      positive(gg, "$.gamma_gamma", "gamma", &m.gg.gamma, source, errstr,
               errstr_size) ||
      converged(gg, "$.gamma_gamma", source, errstr, errstr_size))
    goto done;
  if (m.gg.q <= 1) {
    lp_err(errstr, errstr_size,
           "%s: $.gamma_gamma.q: must be above 1 (the mean spend p*gamma/(q-1) "
           "is infinite otherwise), got %g",
           source, m.gg.q);
    goto done;
  }
  m.population_spend = m.gg.p * m.gg.gamma / (m.gg.q - 1);
  m.annual_discount = 0.10;
  m.churn_high_below = 0.30;
  m.churn_medium_below = 0.70;
  m.high_value_spend = 10 * m.population_spend;
  m.premium_ratio = 1.5;
  m.value_ratio = 0.75;
  double new_days = 90;
  snprintf(m.gift_categories[0], sizeof(m.gift_categories[0]), "gifts");
  m.n_gift_categories = 1;
  scoring = json_object_get(root, "scoring");
  static const char *const scoring_keys[] = {"annual_discount_rate",
                                             "churn_high_below",
                                             "churn_medium_below",
                                             "high_value_spend",
                                             "premium_ratio",
                                             "value_ratio",
                                             "new_days",
                                             "gift_categories",
                                             "reward_share",
                                             "rewards",
                                             NULL};
  if (scoring && !json_is_object(scoring)) {
    lp_err(errstr, errstr_size, "%s: $.scoring: must be an object", source);
    goto done;
  }
  if (scoring && known_keys(scoring, scoring_keys, "$.scoring", source, errstr,
                            errstr_size))
    goto done;
  if (setting(scoring, "annual_discount_rate", 0, 1, &m.annual_discount, source,
              errstr, errstr_size) ||
      setting(scoring, "churn_high_below", 0, 1, &m.churn_high_below, source,
              errstr, errstr_size) ||
      setting(scoring, "churn_medium_below", 0, 1, &m.churn_medium_below,
              source, errstr, errstr_size) ||
      setting(scoring, "high_value_spend", 0, 1e12, &m.high_value_spend, source,
              errstr, errstr_size) ||
      setting(scoring, "premium_ratio", 0, 1e6, &m.premium_ratio, source,
              errstr, errstr_size) ||
      setting(scoring, "value_ratio", 0, 1e6, &m.value_ratio, source, errstr,
              errstr_size) ||
      setting(scoring, "new_days", 0, 36500, &new_days, source, errstr,
              errstr_size))
    goto done;
  if (m.churn_high_below > m.churn_medium_below) {
    lp_err(errstr, errstr_size,
           "%s: $.scoring: churn_high_below (%g) is above churn_medium_below "
           "(%g)",
           source, m.churn_high_below, m.churn_medium_below);
    goto done;
  }
  if (new_days != (double)(int)new_days) {
    lp_err(errstr, errstr_size,
           "%s: $.scoring.new_days: must be a whole number "
           "of days, got %g",
           source, new_days);
    goto done;
  }
  m.new_days = (int)new_days;
  v = scoring ? json_object_get(scoring, "gift_categories") : NULL;
  if (v) {
    if (!json_is_array(v) ||
        json_array_size(v) > LP_MODEL_MAX_GIFT_CATEGORIES) {
      lp_err(errstr, errstr_size,
             "%s: $.scoring.gift_categories: must be an array of at most %d "
             "names",
             source, LP_MODEL_MAX_GIFT_CATEGORIES);
      goto done;
    }
    m.n_gift_categories = json_array_size(v);
    for (size_t i = 0; i < m.n_gift_categories; i++) {
      json_t *s = json_array_get(v, i);
      if (!json_is_string(s) || json_string_length(s) == 0 ||
          json_string_length(s) > LP_MODEL_NAME_MAX) {
        lp_err(errstr, errstr_size,
               "%s: $.scoring.gift_categories[%zu]: must be a name of 1 to "
               "%d bytes",
               source, i, LP_MODEL_NAME_MAX);
        goto done;
      }
      snprintf(m.gift_categories[i], sizeof(m.gift_categories[i]), "%s",
               json_string_value(s));
    }
  }
  m.reward_share = 0.05;
  if (setting(scoring, "reward_share", 0, 1, &m.reward_share, source, errstr,
              errstr_size) ||
      parse_rewards(scoring, &m, source, errstr, errstr_size))
    goto done;
  m.monthly_discount = pow(1 + m.annual_discount, 1.0 / 12) - 1;
  *out = m;
  rc = 0;
done:
  json_decref(root);
  return rc;
}

/* ---- scoring ------------------------------------------------------------ */

static double finite_or(double v, double fallback) {
  return isfinite(v) ? v : fallback;
}

void lp_model_member(const struct lp_model *m, const struct lp_profile *p,
                     int64_t at_ms, struct lp_clv_member *out) {
  double unit_ms = m->days_per_unit * MS_PER_DAY;
  int64_t counted =
      p->order_count < p->purchase_days ? p->order_count : p->purchase_days;
  out->x = counted > 1 ? (double)(counted - 1) : 0;
  out->t_x = out->x > 0 && p->last_order_ms > p->first_order_ms
                 ? (double)(p->last_order_ms - p->first_order_ms) / unit_ms
                 : 0;
  if (out->x > 0 && out->t_x <= 0) /* several orders within one ms */
    out->x = 0;
  out->T = (double)(at_ms - p->first_order_ms) / unit_ms;
  if (out->T < out->t_x) /* an event older than the last order */
    out->T = out->t_x;
  /* Spend per purchase day, as the trainer counts (several orders on one
   * day are one purchase of their sum). */
  out->m = counted > 0
               ? (double)p->lifetime_spend_micros / 1e6 / (double)counted
               : 0;
  if (out->m < 0)
    out->m = 0;
}

static int is_gift_category(const struct lp_model *m, const char *c) {
  for (size_t i = 0; c && i < m->n_gift_categories; i++)
    if (strcmp(m->gift_categories[i], c) == 0)
      return 1;
  return 0;
}

void lp_model_score_basic(const struct lp_model *m, const struct lp_profile *p,
                          int64_t at_ms, struct lp_scores *out) {
  memset(out, 0, sizeof(*out));
  out->segment = LP_SEG_NEW;
  out->next_best = -1;
  if (!m || p->first_order_ms == 0) {
    out->full = 1; /* nothing more to compute */
    return;
  }
  struct lp_clv_member c;
  lp_model_member(m, p, at_ms, &c);
  out->scored = 1;
  out->p_alive = finite_or(lp_bgnbd_p_alive(&m->bgnbd, c.x, c.t_x, c.T), 0);
  if (out->p_alive < 0)
    out->p_alive = 0;
  if (out->p_alive > 1)
    out->p_alive = 1;
  out->expected_spend =
      finite_or(lp_gamma_gamma_expected_spend(&m->gg, c.x, c.m), 0);
  out->churn = out->p_alive < m->churn_high_below     ? LP_CHURN_HIGH
               : out->p_alive < m->churn_medium_below ? LP_CHURN_MEDIUM
                                                      : LP_CHURN_LOW;
  if (c.x > 0) {
    out->has_next = 1;
    out->next_purchase_ms =
        p->last_order_ms +
        (int64_t)((double)(p->last_order_ms - p->first_order_ms) / c.x);
  }
  double since_first_days = (double)(at_ms - p->first_order_ms) / MS_PER_DAY;
  double spend = (double)p->lifetime_spend_micros / 1e6;
  if (c.x == 0 && since_first_days <= m->new_days)
    out->segment = LP_SEG_NEW;
  else if (out->churn == LP_CHURN_HIGH && spend >= m->high_value_spend)
    out->segment = LP_SEG_AT_RISK_HIGH_VALUE;
  else if (is_gift_category(m, lp_profile_favourite_category(p)))
    out->segment = LP_SEG_GIFT_BUYER;
  else if (out->expected_spend >= m->premium_ratio * m->population_spend)
    out->segment = LP_SEG_PREMIUM_ENTHUSIAST;
  else if (out->expected_spend <= m->value_ratio * m->population_spend)
    out->segment = LP_SEG_VALUE_SEEKER;
  else
    out->segment = LP_SEG_REGULAR;
}

void lp_model_score_complete(const struct lp_model *m,
                             const struct lp_profile *p, int64_t at_ms,
                             struct lp_scores *out) {
  if (out->full)
    return;
  out->full = 1;
  struct lp_clv_member c;
  lp_model_member(m, p, at_ms, &c);
  double per_day = 1.0 / m->days_per_unit;
  /* One pass of the series for every horizon: 12 month ends for the
   * CLV, then 30, 90 and 365 days. */
  double t[15], e[15];
  for (int k = 0; k < 12; k++)
    t[k] = (k + 1) * DAYS_PER_MONTH * per_day;
  t[12] = 30 * per_day;
  t[13] = 90 * per_day;
  t[14] = 365 * per_day;
  lp_bgnbd_expected_if_alive_n(&m->bgnbd, c.x, c.T, t, 15, e);
  for (int k = 0; k < 15; k++)
    e[k] *= out->p_alive;
  out->expected_30d = e[12];
  out->expected_90d = e[13];
  out->expected_365d = e[14];
  out->clv_12m = finite_or(
      lp_clv_from_expected(out->expected_spend, e, 12, m->monthly_discount), 0);
  /* Next best: the dearest reward for the segment that costs at most the
   * share of the member's expected value; ties to the first listed. */
  out->next_best = -1;
  double budget = m->reward_share * out->clv_12m;
  for (size_t i = 0; i < m->n_rewards; i++) {
    const struct lp_model_reward *w = &m->rewards[i];
    if (w->segment_mask && !(w->segment_mask & (1u << out->segment)))
      continue;
    if (w->cost > budget)
      continue;
    if (out->next_best < 0 || w->cost > m->rewards[out->next_best].cost)
      out->next_best = (int)i;
  }
}

void lp_model_score(const struct lp_model *m, const struct lp_profile *p,
                    int64_t at_ms, struct lp_scores *out) {
  lp_model_score_basic(m, p, at_ms, out);
  lp_model_score_complete(m, p, at_ms, out);
}

void lp_model_score_after_order(const struct lp_model *m,
                                const struct lp_profile *before,
                                const struct lp_order_event *ev,
                                struct lp_scores *out) {
  struct lp_profile p;
  lp_profile_after_order(before, ev, &p); /* shallow: only numbers change */
  lp_model_score(m, &p, ev->event_time_ms, out);
}
