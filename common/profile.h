/*
 * profile.h — a member's profile as the rules see it: the state *just
 * before* the event being decided (see profile_store.h for how Redis keeps
 * that answer stable across redelivery and replay).
 *
 * Ownership: strings and arrays are owned by the profile and released by
 * lp_profile_clear.
 */
#ifndef LP_PROFILE_H
#define LP_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

struct lp_model;

/* Cumulative spend attributed to one category or brand. */
struct lp_affinity {
  char *name;
  int64_t spend_micros;
};

/* At most this many categories / brands are tracked per member; a new one
 * beyond the cap is not added (documented in docs/profile.md). */
#define LP_MAX_AFFINITIES 64

struct lp_profile {
  int exists; /* 0: the member had no state before */
  int64_t lifetime_spend_micros;
  int64_t order_count;    /* orders that count now (net of cancellations) */
  int64_t orders_placed;  /* orders ever counted, cancelled ones included:
                             what "first order" and milestones count, so a
                             cancelled first order cannot earn a second
                             welcome bonus */
  int64_t purchase_days;  /* distinct UTC days with a counted order, as
                             the CLV models count purchases (approximate
                             when orders arrive out of time order, see
                             profile_apply.h); never taken back */
  int64_t first_order_ms; /* 0 when no order yet */
  int64_t last_order_ms;  /* 0 when no order yet */
  enum lp_consent marketing_consent;
  char **tags;
  size_t n_tags;
  char *birthday;                 /* optional */
  char *email_sha256;             /* optional */
  char *tier;                     /* optional */
  int64_t customer_created_ms;    /* 0 when unknown */
  struct lp_affinity *categories; /* sorted by name */
  size_t n_categories;
  struct lp_affinity *brands; /* sorted by name */
  size_t n_brands;
  /* Order events only: 1 when this order had already been applied to the
   * profile before this event (e.g. orders/paid after orders/create), so
   * rules can reward an order once whichever of its events comes first
   * (rule field event.is_new_order = !order_previously_applied). */
  int order_previously_applied;
  /* The member-value model in force when the event is decided (borrowed,
   * model.h), or NULL: rules then see no scores. Set by the processor,
   * never stored. */
  const struct lp_model *model;
};

void lp_profile_clear(struct lp_profile *p);

/* Average order value in micros (0 when no orders). */
int64_t lp_profile_aov_micros(const struct lp_profile *p);

/* Name of the highest-spend category/brand; ties go to the name that sorts
 * first, so the answer is deterministic. Borrowed pointer; NULL if none. */
const char *lp_profile_favourite_category(const struct lp_profile *p);
const char *lp_profile_favourite_brand(const struct lp_profile *p);

/* Whole days between last order and at_ms (event time), floor; -1 when the
 * member has no order yet. */
int64_t lp_profile_days_since_last_order(const struct lp_profile *p,
                                         int64_t at_ms);

/* 1 when tag is one of the member's tags (exact, case-sensitive). */
int lp_profile_has_tag(const struct lp_profile *p, const char *tag);

#endif
