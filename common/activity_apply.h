/*
 * activity_apply.h — the pure fold of ActivityEvents into a member's
 * "activity part": recent browse affinities decayed by event time, the open
 * cart, and the last activity time. No I/O, no wall clock: the same events
 * in the same order give the same bytes, so a replay rebuilds identical
 * state. A store reads the part, calls lp_activity_apply, writes it back.
 *
 * Text format: the conventions of profile_apply.h — one "key<TAB>value"
 * line per field, fixed fields in a fixed order, then the affinities sorted
 * by (escaped) key; '\\', TAB and newline in names and values escaped as
 * \\\\, \\t, \\n. Absent fields have no line.
 *
 *   at          newest activity event time applied (ms); also the time the
 *               stored scores are decayed to
 *   views       page_view + product_view events counted
 *   cart        open cart value (micros)       cur       its currency
 *   cart_at     event time of the newest cart change (update, checkout,
 *               abandon, or the order that cleared it)
 *   cart_id     cart / checkout token          cart_top  sku (else product
 *               id) of the most valuable line, for a nudge
 *   cart_lines  lines in the cart              cart_state open | checkout |
 *               abandoned (absent: no cart)
 *   v:b:<brand>, v:c:<category>  browse scores, micro-units, as of `at`
 *
 * Scores: score = score * 2^(-(t - at)/H) + weight, with weights
 * product_view 1.0 (its category and brand), page_view 0.5 (only when a
 * category or brand is present), cart_updated 2.0 per line's category and
 * brand. Decay is integer arithmetic (whole half-lives are shifts, the
 * fraction a product of fixed-point constants, half-up rounding), so it is
 * bit-identical on every machine. After each event, scores below the floor
 * are dropped and each of categories and brands keeps at most max_names,
 * the highest scores, ties to the smaller name.
 *
 * Out-of-order events: decay only moves forward. An event older than `at`
 * never rewinds the scores; its weight is decayed from its own time to
 * `at` and added. `at` keeps the newest time. Cart changes older than
 * cart_at are ignored (the newer cart state wins), so a late cart_updated
 * never reopens a cart an order already cleared.
 *
 * "Smaller name" is the byte order of the stored (escaped) key. Unknown
 * or malformed lines in a stored part are ignored (and dropped by the next
 * apply), a repeated score key keeps its largest value; damaged text never
 * crashes either function.
 */
#ifndef LP_ACTIVITY_APPLY_H
#define LP_ACTIVITY_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

#define LP_ACTIVITY_DAY_MS ((int64_t)86400000)
#define LP_ACTIVITY_DEFAULT_HALF_LIFE_MS (14 * LP_ACTIVITY_DAY_MS)
#define LP_ACTIVITY_DEFAULT_MAX_NAMES 50
#define LP_ACTIVITY_DEFAULT_FLOOR_MICROS 1000 /* 0.001 */
#define LP_ACTIVITY_SCORE_ONE 1000000         /* weight 1.0 in micros */

struct lp_activity_params {
  int64_t half_life_ms; /* H, > 0 */
  int max_names;        /* per kind (categories, brands); >= 0 */
  int64_t floor_micros; /* scores below it are dropped */
};

/* Fills *p with the defaults above. */
void lp_activity_params_default(struct lp_activity_params *p);

/* score * 2^(-elapsed_ms / half_life_ms), integer and deterministic;
 * elapsed_ms <= 0 or score <= 0 returns score unchanged. */
int64_t lp_activity_decay(int64_t score, int64_t elapsed_ms,
                          int64_t half_life_ms);

/* Applies one activity event to the activity part own (NULL or "" = empty)
 * and sets *new_own (caller frees). p NULL = defaults. */
void lp_activity_apply(const char *own, const struct lp_activity_event *ev,
                       const struct lp_activity_params *p, char **new_own);

/* The order path: an order at event_time_ms clears the open cart (value,
 * currency, id, top line, lines, state) unless a cart change newer than
 * the order is stored; cart_at becomes the order's time so a late, older
 * cart event cannot reopen it. Scores and `at` are untouched. *new_own
 * (caller frees). */
void lp_activity_clear_cart(const char *own, int64_t event_time_ms,
                            char **new_own);

enum lp_cart_state {
  LP_CART_NONE = 0,
  LP_CART_OPEN = 1,
  LP_CART_CHECKOUT = 2,
  LP_CART_ABANDONED = 3,
};
/* "none", "open", "checkout", "abandoned"; NULL for out-of-range. */
const char *lp_cart_state_name(enum lp_cart_state s);

/* What a rule engine reads from an activity part. Strings are owned by the
 * view (unescaped; NULL when absent) and freed by lp_activity_view_clear. */
struct lp_activity_view {
  int64_t at; /* last activity event time, 0 = none */
  int64_t views;
  char *top_category;         /* highest v:c: score, ties to the smaller name */
  int64_t top_category_score; /* micros, as of score_time_ms */
  char *top_brand;
  int64_t top_brand_score;
  int64_t score_time_ms; /* = at after parse; now_ms after view_at */
  size_t n_categories;   /* tracked names */
  size_t n_brands;
  enum lp_cart_state cart_state;
  int64_t cart_micros;
  char *currency;
  int64_t cart_at; /* 0 = never */
  char *cart_id;
  char *cart_top;
  int64_t cart_lines;
  int64_t cart_age_ms; /* now_ms - cart_at after view_at; 0 otherwise */
};

/* Parses own (NULL = empty) into *out (zeroed first). Unknown lines are
 * ignored. 0, or -1 when some known line had a malformed value (that line
 * is skipped, the rest still filled). */
int lp_activity_part_parse(const char *own, struct lp_activity_view *out);

/* Moves a parsed view to now_ms: decays the top scores from score_time_ms
 * (never backwards) and sets cart_age_ms. p NULL = defaults. */
void lp_activity_view_at(struct lp_activity_view *v, int64_t now_ms,
                         const struct lp_activity_params *p);

void lp_activity_view_clear(struct lp_activity_view *v);

#endif
