/*
 * timer_plan.h — when each member timer is due: the pure planning of the
 * win-back, replenishment, birthday, points expiry and cart abandonment
 * timers that timers.h stores, and the ids they are stored under. It owns
 * the due-time arithmetic and the id format only; it does no I/O, reads
 * no clock (every time is an event time the caller passes) and never
 * schedules anything, so a replay plans exactly what the live run did.
 *
 * Times are milliseconds since the Unix epoch (UTC). Every due time a
 * function returns lies within +-LP_PLAN_TIME_MAX, the range timers.h
 * accepts; an input that would leave it is bad input, never an overflow.
 */
#ifndef LP_TIMER_PLAN_H
#define LP_TIMER_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "activity_apply.h"
#include "model.h"
#include "profile.h"

#define LP_PLAN_TIME_MAX ((int64_t)1 << 53) /* as timers.h checks */
#define LP_PLAN_HOUR_MS ((int64_t)3600000)
#define LP_PLAN_DAY_MS ((int64_t)86400000)

enum lp_timer_kind {
  LP_TIMER_WINBACK = 0,
  LP_TIMER_REPLENISHMENT,
  LP_TIMER_BIRTHDAY,
  LP_TIMER_EXPIRY,
  LP_TIMER_CART,
};
#define LP_TIMER_KIND_COUNT 5

/* "winback", "replenishment", "birthday", "expiry", "cart"; NULL for an
 * out-of-range kind. */
const char *lp_timer_kind_name(enum lp_timer_kind kind);

/*
 * The timer id "<kind>:<member key>[:<sub>]" as timers.h expects it, into
 * out (n bytes). member_key is "<shop>:<customer_id>" (borrowed,
 * non-empty); sub (borrowed) NULL or "" means none, e.g. the expiry
 * period "2026-12". Returns the id's length, or -1 (out is "" when n > 0)
 * for an unknown kind, NULL or empty member key, NULL out, or an id that
 * does not fit in n bytes or exceeds LP_TIMERS_ID_MAX.
 */
int lp_plan_timer_id(enum lp_timer_kind kind, const char *member_key,
                     const char *sub, char *out, size_t n);

/* Fixed win-back: the last order plus days (a rule's N). 0 (no timer)
 * when there is no order (last_order_ms <= 0), days < 0 or the result is
 * out of range. A newer order moves it: plan again after every order. */
int64_t lp_plan_winback_fixed(int64_t last_order_ms, int days);

/*
 * Model win-back: the first t in [from_ms, from_ms + horizon_ms], on the
 * grid from_ms + k hours, at which the member's P(alive) — assuming no
 * further orders, as lp_model_score gives it at t — is below threshold.
 * Under BG/NBD P(alive) only falls as time since the last purchase grows
 * (T rises, x and t_x stay), so the crossing is found by bisection on the
 * integer hour k: P(due - 1 h) >= threshold > P(due), or due = from_ms
 * when P is already below at from_ms. Deterministic (integer hours,
 * closed form, no clock).
 *
 * Returns 0 with *due_ms, 1 when P(alive) stays at or above threshold
 * through the last grid point of the horizon (e.g. a member with one
 * purchase day, whose P(alive) is 1), -1 for bad input: NULL m, p or
 * due_ms, a member without orders, threshold not in (0, 1], a negative
 * horizon or times out of range.
 */
int lp_plan_winback_p_alive(const struct lp_model *m,
                            const struct lp_profile *p, double threshold,
                            int64_t from_ms, int64_t horizon_ms,
                            int64_t *due_ms);

/*
 * Replenishment: lead_days before the member's expected next purchase,
 * never before the event (event_ms). The expected next purchase is the
 * member's rhythm: the last order + the mean gap between purchase days,
 * which is also the model's next_purchase_ms (lp_model_score_basic), so
 * it is computed without scoring, model (m, may be NULL) or not. Returns
 * 0 with *due_ms,
 * 1 when no rhythm is known (fewer than two purchase days), -1 for bad
 * input (NULL p or due_ms, lead_days < 0, times out of range).
 */
int lp_plan_replenishment(const struct lp_model *m, const struct lp_profile *p,
                          int64_t event_ms, int lead_days, int64_t *due_ms);

/*
 * Birthday: the next 00:00 UTC of the birthday strictly after now_ms (on
 * the birthday itself, or exactly at its midnight, that is next year's).
 * birthday is "YYYY-MM-DD" (a real date of that year; the year is
 * otherwise ignored) or "--MM-DD" (no year; "--02-29" accepted). A
 * 29 February birthday falls on 28 February in non-leap years. Returns 0
 * with *due_ms, -1 for NULL arguments, text that is not one of the two
 * forms or not a date, or now_ms out of range.
 */
int lp_plan_birthday(const char *birthday, int64_t now_ms, int64_t *due_ms);

/* Cart abandonment: minutes after the newest cart change (cart_at_ms, as
 * the activity view has it). 0 (no timer) when cart_at_ms <= 0, minutes
 * < 0 or the result is out of range. */
int64_t lp_plan_cart_abandon(int64_t cart_at_ms, int minutes);

/*
 * Whether the member's cart timer must exist: 1 for a cart that is open
 * or reported abandoned by the platform (items left, no checkout, no
 * order) with a known cart time; 0 — cancel the timer — when there is no
 * cart (an order cleared it, see lp_activity_clear_cart), a checkout was
 * started, the cart time is unknown, the state is out of range, or v is
 * NULL. Plan it again after every cart change: its due time moves with
 * cart_at.
 */
int lp_plan_cart_timer_wanted(const struct lp_activity_view *v);

/* Points expiry nudge: days_before days before the points expire. 0 (no
 * timer) when expires_ms <= 0, days_before < 0 or the result is out of
 * range. A nudge already in the past fires at the next watermark; the
 * caller decides whether that is still worth sending. */
int64_t lp_plan_points_expiry_nudge(int64_t expires_ms, int days_before);

#endif
