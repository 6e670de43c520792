/*
 * profile.c — the derived views of a member profile that rules read
 * (see profile.h): average order value, favourite category and brand,
 * recency in event time, tag membership. Every answer is a function of the
 * profile and the event time passed in, with deterministic tie-breaks, so
 * a replay reads the same values as the live run.
 */
#include "profile.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MS_PER_DAY 86400000LL

void lp_profile_clear(struct lp_profile *p) {
  if (!p)
    return;
  for (size_t i = 0; i < p->n_tags; i++)
    free(p->tags[i]);
  free(p->tags);
  free(p->birthday);
  free(p->email_sha256);
  free(p->tier);
  for (size_t i = 0; i < p->n_categories; i++)
    free(p->categories[i].name);
  free(p->categories);
  for (size_t i = 0; i < p->n_brands; i++)
    free(p->brands[i].name);
  free(p->brands);
  memset(p, 0, sizeof(*p));
}

int64_t lp_profile_aov_micros(const struct lp_profile *p) {
  if (p->order_count <= 0)
    return 0;
  return p->lifetime_spend_micros / p->order_count;
}

/* Highest positive spend; ties to the name that sorts first (strcmp), so
 * the answer does not depend on the array's order. */
static const char *favourite(const struct lp_affinity *a, size_t n) {
  const struct lp_affinity *best = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!a[i].name || a[i].spend_micros <= 0)
      continue;
    if (!best || a[i].spend_micros > best->spend_micros ||
        (a[i].spend_micros == best->spend_micros &&
         strcmp(a[i].name, best->name) < 0))
      best = &a[i];
  }
  return best ? best->name : NULL;
}

const char *lp_profile_favourite_category(const struct lp_profile *p) {
  return favourite(p->categories, p->n_categories);
}

const char *lp_profile_favourite_brand(const struct lp_profile *p) {
  return favourite(p->brands, p->n_brands);
}

int64_t lp_profile_days_since_last_order(const struct lp_profile *p,
                                         int64_t at_ms) {
  if (p->last_order_ms == 0)
    return -1;
  /* Floor division: an event 1 ms before the last order is day -1, not 0
   * (events of one member can arrive out of order). */
  int64_t d = at_ms - p->last_order_ms;
  int64_t q = d / MS_PER_DAY;
  if (d % MS_PER_DAY != 0 && d < 0)
    q--;
  return q;
}

int lp_profile_has_tag(const struct lp_profile *p, const char *tag) {
  if (!tag)
    return 0;
  for (size_t i = 0; i < p->n_tags; i++)
    if (p->tags[i] && strcmp(p->tags[i], tag) == 0)
      return 1;
  return 0;
}
