/*
 * rules_internal.h — the compiled form of a ruleset, shared by the loader
 * (rules_parse.c) and the evaluator (rules_eval.c). Not part of the public
 * interface: everything outside these two files goes through rules.h.
 *
 * A loaded ruleset is a flat, immutable structure: conditions are trees of
 * nodes whose leaves hold a resolved field id, an operator and typed,
 * pre-parsed operands (integers in micros or ms, sorted lists for in /
 * not_in), so evaluating an event never parses, looks up names or
 * allocates until a rule fires.
 */
#ifndef LP_RULES_INTERNAL_H
#define LP_RULES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "rules.h"

/* Which events a rule (or a field) applies to: a bit set. */
#define LP_ON_ORDER 1u
#define LP_ON_CUSTOMER 2u
#define LP_ON_TIMER 4u

enum lp_field_type {
  LP_FT_INT = 0, /* int64 */
  LP_FT_MONEY,   /* int64 micros, decimal string in rules */
  LP_FT_BOOL,
  LP_FT_STRING,
  LP_FT_SET,     /* set of strings */
  LP_FT_TIME,    /* epoch ms, ISO 8601 string in rules */
  LP_FT_DECIMAL, /* int64 micros (a probability, an expected count):
                    a number or decimal string in rules */
};

/* The fields a condition can read. Order matches lp_rule_fields[]. */
enum lp_field_id {
  LP_F_EVENT_STATUS = 0,
  LP_F_EVENT_IS_NEW_ORDER,
  LP_F_EVENT_TIME,
  LP_F_EVENT_TOTAL,
  LP_F_EVENT_SUBTOTAL,
  LP_F_EVENT_DISCOUNT,
  LP_F_EVENT_TAX,
  LP_F_EVENT_CURRENCY,
  LP_F_EVENT_ITEM_COUNT,
  LP_F_EVENT_BRANDS,
  LP_F_EVENT_CATEGORIES,
  LP_F_EVENT_DISCOUNT_CODES,
  LP_F_EVENT_SOURCE,
  LP_F_EVENT_HAS_FAVOURITE_BRAND,
  LP_F_EVENT_HAS_FAVOURITE_CATEGORY,
  LP_F_CUSTOMER_KIND,
  LP_F_CUSTOMER_CONSENT,
  LP_F_CUSTOMER_TAGS,
  LP_F_CUSTOMER_BIRTHDAY_SET,
  LP_F_PROFILE_EXISTS,
  LP_F_PROFILE_ORDER_COUNT,
  LP_F_PROFILE_NTH_ORDER,
  LP_F_PROFILE_IS_FIRST_ORDER,
  LP_F_PROFILE_LIFETIME_SPEND,
  LP_F_PROFILE_AOV,
  LP_F_PROFILE_DAYS_SINCE_LAST_ORDER,
  LP_F_PROFILE_DAYS_SINCE_FIRST_ORDER,
  LP_F_PROFILE_FAVOURITE_CATEGORY,
  LP_F_PROFILE_FAVOURITE_BRAND,
  LP_F_PROFILE_TAGS,
  LP_F_PROFILE_CONSENT,
  LP_F_PROFILE_TIER,
  LP_F_PROFILE_SEGMENT,
  /* Timer rules only: the fired timer and the member's browse and cart
   * activity (activity_apply.h) as of the due time. */
  LP_F_TIMER_KIND,
  LP_F_TIMER_DUE,
  LP_F_ACTIVITY_TOP_CATEGORY,
  LP_F_ACTIVITY_TOP_CATEGORY_SCORE,
  LP_F_ACTIVITY_TOP_BRAND,
  LP_F_ACTIVITY_TOP_BRAND_SCORE,
  LP_F_ACTIVITY_VIEWS,
  LP_F_ACTIVITY_DAYS_SINCE_LAST,
  LP_F_ACTIVITY_CART_STATE,
  LP_F_ACTIVITY_CART_VALUE,
  LP_F_ACTIVITY_CART_TOP_ITEM,
  LP_F_ACTIVITY_CART_LINES,
  /* Model scores (model.h): absent without a model or an order. They
   * stay last: rules_eval.c tells a score by id >= LP_F_PROFILE_P_ALIVE. */
  LP_F_PROFILE_P_ALIVE,
  LP_F_PROFILE_CHURN_RISK,
  LP_F_PROFILE_EXPECTED_ORDERS_30D,
  LP_F_PROFILE_EXPECTED_ORDERS_90D,
  LP_F_PROFILE_EXPECTED_ORDERS_365D,
  LP_F_PROFILE_EXPECTED_AOV,
  LP_F_PROFILE_CLV_12M,
  LP_F_PROFILE_DAYS_TO_NEXT_PURCHASE,
  LP_F_PROFILE_VALUE_SEGMENT,
  LP_F_PROFILE_NEXT_BEST_REWARD,
  LP_F_COUNT
};

struct lp_field_def {
  const char *name; /* "profile.order_count" */
  enum lp_field_type type;
  unsigned scope;                 /* LP_ON_* where the field exists */
  int in_segments;                /* usable in a segment condition */
  const char *const *enum_values; /* NULL-terminated, or NULL: any string */
};

/* Indexed by enum lp_field_id. */
extern const struct lp_field_def lp_rule_fields[LP_F_COUNT];

enum lp_rule_op {
  LP_OP_EQ = 0,
  LP_OP_NE,
  LP_OP_LT,
  LP_OP_LE,
  LP_OP_GT,
  LP_OP_GE,
  LP_OP_BETWEEN,
  LP_OP_IN,
  LP_OP_NOT_IN,
  LP_OP_CONTAINS,
  LP_OP_EXISTS,
  LP_OP_COUNT
};

extern const char *const lp_rule_op_names[LP_OP_COUNT];

enum lp_cond_kind { LP_COND_ALL = 0, LP_COND_ANY, LP_COND_NOT, LP_COND_LEAF };

struct lp_cond {
  enum lp_cond_kind kind;
  struct lp_cond *kids; /* ALL / ANY: n_kids children; NOT: one (owned) */
  size_t n_kids;
  /* LEAF */
  enum lp_field_id field;
  enum lp_rule_op op;
  int64_t num[2]; /* scalar operand; BETWEEN: lo, hi; EXISTS: expected */
  int64_t *nums;  /* IN / NOT_IN over a numeric field: sorted (owned) */
  char *str;      /* string operand of == != contains (owned) */
  char **strs;    /* IN / NOT_IN over strings: sorted (owned) */
  size_t n_list;  /* length of nums or strs */
  char *literal;  /* operand as canonical text, for summaries (owned) */
};

/* Placeholders allowed in an action's brand / category. */
enum lp_action_ref {
  LP_REF_NONE = 0,
  LP_REF_FAVOURITE_BRAND,
  LP_REF_FAVOURITE_CATEGORY,
};

struct lp_rule_action {
  enum lp_action_kind kind;
  int64_t points;            /* fixed points, or 0 */
  int64_t per_unit_micros;   /* points per currency unit (micros), or 0 */
  int64_t multiplier_micros; /* multiplier (micros), default 1.000000 */
  char *reward_id;
  int64_t cost_micros; /* reward: configured cost */
  int32_t percent;
  int64_t amount_micros;
  char *tier;
  char *template_id;
  char *channel;
  char *brand; /* literal, when brand_ref is LP_REF_NONE */
  enum lp_action_ref brand_ref;
  char *category;
  enum lp_action_ref category_ref;
};

struct lp_rule {
  char *id;
  int32_t version;
  char *description;          /* optional */
  unsigned on;                /* LP_ON_ORDER, LP_ON_CUSTOMER or LP_ON_TIMER */
  struct lp_timer_rule timer; /* LP_ON_TIMER: what it plans */
  int32_t priority;
  int exclusive;
  int group; /* index in lp_ruleset.groups, -1 when none */
  int enabled;
  enum lp_approval_hint approval;
  struct lp_cond when;
  struct lp_rule_action action;
  /* Fields the decision reads, in condition order then action order,
   * without repeats: the explanation's features. */
  uint8_t features[LP_F_COUNT];
  size_t n_features;
};

struct lp_segment {
  char *id;
  struct lp_cond when;
};

struct lp_ruleset {
  struct lp_rule *rules; /* sorted: priority desc, then id asc */
  size_t n_rules;
  struct lp_segment *segments; /* in file order (files sorted by name) */
  size_t n_segments;
  struct lp_timer_rule *timer_rules; /* enabled timer rules, rule order */
  size_t n_timer_rules;
  char **groups; /* interned group names */
  size_t n_groups;
  int64_t point_cost_micros;
  int has_approval_threshold;
  int64_t approval_threshold_micros;
  char digest[17];
};

void lp_cond_free(struct lp_cond *c);

#endif
