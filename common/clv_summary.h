/*
 * clv_summary.h — from a transaction log to the per-member summaries the
 * CLV models fit on (clv.h), with the conventions of clv-notes.md 2:
 * purchases are counted by day (several on one day are one, their values
 * summed), the first purchase is not a repeat, time is measured in a
 * chosen unit from each member's first purchase, and spend is the mean
 * of the repeat days' values. Also counts each member's repeat days in a
 * holdout window, to compare predictions with what happened.
 */
#ifndef LP_CLV_SUMMARY_H
#define LP_CLV_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "clv.h"

/* One purchase: member (copied), day number (e.g. days since 1970-01-01)
 * and value. */
struct lp_clv_builder;

struct lp_clv_builder *lp_clv_builder_new(void);
void lp_clv_builder_destroy(struct lp_clv_builder **b);
void lp_clv_builder_add(struct lp_clv_builder *b, const char *member,
                        int64_t day, double value);

/* A member's summary, and repeat days in the holdout. */
struct lp_clv_summary {
  char *member; /* owned by the builder */
  struct lp_clv_member s;
  double holdout_x;
};

/*
 * Summaries of the members whose first purchase is on or before
 * calibration_end (day number, inclusive), in days_per_unit days (7 for
 * weeks), with the repeat days in (calibration_end, holdout_end]. *out
 * points into the builder (valid until destroy), sorted by member.
 * Returns how many.
 */
size_t lp_clv_builder_summarise(struct lp_clv_builder *b,
                                int64_t calibration_end, int64_t holdout_end,
                                double days_per_unit,
                                const struct lp_clv_summary **out);

/* The latest purchase day added, or INT64_MIN when none was. */
int64_t lp_clv_builder_last_day(const struct lp_clv_builder *b);

/* Days since 1970-01-01 of YYYYMMDD (e.g. 19970930), or INT64_MIN. */
int64_t lp_clv_day_of_ymd(long ymd);

#endif
