/*
 * model.h — a published member-value model as the processors use it: the
 * trainer's JSON (docs/models.md) parsed and validated into a plain
 * struct, and the scores of one member computed from it and the member's
 * profile at an event's time.
 *
 * A model is immutable once parsed and holds no pointers, so a processor
 * swaps one in by copying the struct. Scoring is closed form: it
 * allocates nothing, reads no clock (only the event time it is given) and
 * never yields NaN or infinity, so a replay with the same model version
 * scores exactly what the live run scored.
 */
#ifndef LP_MODEL_H
#define LP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "clv.h"
#include "profile.h"

#define LP_MODEL_VERSION_MAX 64
#define LP_MODEL_MAX_GIFT_CATEGORIES 8
#define LP_MODEL_NAME_MAX 48

enum lp_churn_band {
  LP_CHURN_LOW = 0,
  LP_CHURN_MEDIUM = 1,
  LP_CHURN_HIGH = 2,
};
/* "low", "medium", "high". */
const char *lp_churn_band_name(enum lp_churn_band b);

/* The member-value segments, in the order they are tried (first match). */
enum lp_value_segment {
  LP_SEG_NEW = 0,
  LP_SEG_AT_RISK_HIGH_VALUE,
  LP_SEG_GIFT_BUYER,
  LP_SEG_PREMIUM_ENTHUSIAST,
  LP_SEG_VALUE_SEEKER,
  LP_SEG_REGULAR,
};
#define LP_SEG_COUNT 6
/* "new", "at_risk_high_value", "gift_buyer", "premium_enthusiast",
 * "value_seeker", "regular". */
const char *lp_value_segment_name(enum lp_value_segment s);
/* NULL-terminated list of the names, for rule validation. */
extern const char *const lp_value_segment_names[LP_SEG_COUNT + 1];
extern const char *const lp_churn_band_names[4];

#define LP_MODEL_MAX_REWARDS 16

/* One reward type of the catalogue the next-best reward is chosen from. */
struct lp_model_reward {
  char id[LP_MODEL_NAME_MAX + 1];
  double cost;           /* currency units */
  unsigned segment_mask; /* bit per enum lp_value_segment; 0 = any */
};

struct lp_model {
  char version[LP_MODEL_VERSION_MAX + 1];
  char time_unit[8];    /* "weeks" or "days" */
  double days_per_unit; /* 7 or 1 */
  struct lp_bgnbd bgnbd;
  struct lp_gamma_gamma gg;
  double population_spend; /* p γ / (q − 1): mean spend per purchase */
  /* Scoring settings ("scoring" object; defaults when absent). */
  double annual_discount;    /* CLV discount rate per year (0.10) */
  double monthly_discount;   /* (1 + annual)^(1/12) − 1 */
  double churn_high_below;   /* P(alive) below this: high risk (0.30) */
  double churn_medium_below; /* below this: medium (0.70) */
  double high_value_spend;   /* lifetime spend of "high value" (currency
                                units; default 10 × population_spend) */
  double premium_ratio;      /* expected spend ≥ this × population:
                                premium enthusiast (1.5) */
  double value_ratio;        /* ≤ this × population: value seeker (0.75) */
  int new_days;              /* one purchase at most this many days ago:
                                new (90) */
  char gift_categories[LP_MODEL_MAX_GIFT_CATEGORIES][LP_MODEL_NAME_MAX + 1];
  size_t n_gift_categories; /* default one: "gifts" */
  double reward_share;      /* a reward may cost up to this share of the
                               member's 12-month CLV (0.05) */
  struct lp_model_reward rewards[LP_MODEL_MAX_REWARDS];
  size_t n_rewards; /* 0: no next-best reward */
};

/*
 * Parses and validates the trainer's JSON. source names it in messages
 * (a Redis key or a file). Returns 0 with *out filled, or -1 with
 * "<source>: <JSON path>: <reason>" in errstr (*out untouched): bad JSON,
 * a missing or non-positive parameter, q <= 1, an unknown time unit, a
 * fit that did not converge, a setting out of range.
 */
int lp_model_parse(const char *json, size_t len, const char *source,
                   struct lp_model *out, char *errstr, size_t errstr_size);

/* A member's scores at one instant. */
struct lp_scores {
  int scored;          /* 0: no model, or the member has no order yet: every
                          other field is 0 and rules see the scores as absent */
  double p_alive;      /* [0, 1] */
  double expected_30d; /* expected purchases (purchase days) ahead */
  double expected_90d;
  double expected_365d;
  double expected_spend; /* per purchase, currency units (Gamma-Gamma) */
  double clv_12m;        /* discounted, currency units */
  enum lp_churn_band churn;
  int has_next;             /* ≥ 1 repeat purchase: a rhythm is known */
  int64_t next_purchase_ms; /* last purchase + the member's mean gap */
  enum lp_value_segment segment;
  int next_best; /* index in m->rewards, or -1: none fits */
  int full;      /* the expected purchases, CLV and next best are set */
};

/*
 * Scores the member p (the state just before the event) at at_ms, the
 * event time. Without an order (p->first_order_ms == 0) *out says
 * scored = 0 and segment = new. Never NaN or infinite; allocates nothing.
 */
void lp_model_score(const struct lp_model *m, const struct lp_profile *p,
                    int64_t at_ms, struct lp_scores *out);

/* lp_model_score in two steps, for callers that often need only the
 * cheap part: basic sets scored, P(alive), churn band, expected spend,
 * next purchase and segment (closed forms, no series); complete adds the
 * expected purchases, CLV and next-best reward (one pass of the series)
 * to a basic result for the same (m, p, at_ms), once. */
void lp_model_score_basic(const struct lp_model *m, const struct lp_profile *p,
                          int64_t at_ms, struct lp_scores *out);
void lp_model_score_complete(const struct lp_model *m,
                             const struct lp_profile *p, int64_t at_ms,
                             struct lp_scores *out);

/*
 * The member's scores just after order event ev (before = the profile
 * just before it): a created/paid order not applied before counts as a
 * purchase at its time and total, as profile_apply.c will apply it (the
 * favourite category is the one before the order); any other event
 * leaves the inputs as they were. What a score sync writes.
 */
void lp_model_score_after_order(const struct lp_model *m,
                                const struct lp_profile *before,
                                const struct lp_order_event *ev,
                                struct lp_scores *out);

/* The model inputs of a profile at at_ms (clv.h: x, t_x, T in the model's
 * unit, m in currency units). Exposed for tests and the trainer bench. */
void lp_model_member(const struct lp_model *m, const struct lp_profile *p,
                     int64_t at_ms, struct lp_clv_member *out);

#endif
