/*
 * stream_timers.h — member timers inside a stream processor: the event-time
 * watermark of each input partition, the timers the rules' "on": "timer"
 * specs plan from each record, when they fire, and what is handed back to
 * the processor to decide and produce. The timer store itself is timers.h;
 * the due-time arithmetic is timer_plan.h; the processor (stream_app.c)
 * produces the decisions and reports their delivery. Rules: docs/timers.md.
 *
 * Keys, beside timers.h's under the prefix "<ns>:<stream>" (stream = the
 * input topic, so each processor kind has its own timers):
 *   <ns>:<stream>:tm:<p>:mark  string  the partition's fired mark: every
 *                                      timer due at or before it has been
 *                                      claimed (event time, ms)
 *
 * Watermark of partition p: W = max(event time - lateness) over the
 * records seen, never above the wall clock, starting at the fired mark
 * when the partition is assigned. Firing (between batches, once the batch
 * that advanced W is in Redis): the timers due at or before W are claimed
 * and handed out; then the mark is W. In live operation an idle partition
 * (no record for idle_ms) also advances by wall clock to now - wall_lag.
 *
 * Planning on an order of member m (created or paid, new, newer than the
 * last order) at event time t, for each timer rule of kind winback or
 * replenishment, whose timer is "<kind>:<shop>:<customer>:<rule>" and
 * whose due for a profile is E(profile) (lp_stream_timers_order_due):
 *   - the previous timer, due E(before), fires with this record when W
 *     had passed it before the record (E <= W_before) or the order came
 *     after it (E < t), unless a claim took it already (E <= mark):
 *     decided on the profile just before the order, what a claim between
 *     the two records would have seen;
 *   - else the order came in time and moves the timer to E(after): a
 *     win-back only ever moves later, so it is left lazy (not written):
 *     the claim of the stored, early timer finds the member's due moved
 *     and schedules it again there (or fires it, when that due passed
 *     too); a replenishment is scheduled again at once;
 *   - a member's first order schedules the timer; a due already <=
 *     W_before is not planned (the record came too late for it).
 * So which timers fire, and their ids ("<timer id>@<due>"), depend only on
 * the order of the partition's records: a replay fires the same ones.
 *
 * Not thread-safe: the processor's poll thread only.
 */
#ifndef LP_STREAM_TIMERS_H
#define LP_STREAM_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include "activity_apply.h"
#include "events.h"
#include "model.h"
#include "profile.h"
#include "rules.h"
#include "timers.h"
#include "util.h"

struct lp_stream_timers;

struct lp_stream_timers_config {
  const char *redis_host; /* copied */
  int redis_port;
  int timeout_ms;
  const char *ns;           /* redis.namespace, copied */
  const char *stream;       /* input topic, copied */
  int64_t lateness_ms;      /* allowed out-of-orderness, >= 0 */
  int wall_clock;           /* 1: idle partitions advance by wall clock */
  int64_t idle_ms;          /* a partition is idle after this long without
                               records */
  int64_t wall_lag_ms;      /* wall-clock watermark = now - wall_lag_ms */
  int64_t lease_ms;         /* claim lease: must outlast produce + ack */
  int64_t fire_interval_ms; /* least wall time between two claims of a
                               partition (more due: no wait) */
  struct lp_activity_params activity; /* decay of the activity view */
};

struct lp_stream_timers *
lp_stream_timers_new(const struct lp_stream_timers_config *conf, char *errstr,
                     size_t errstr_size);
void lp_stream_timers_destroy(struct lp_stream_timers **st);

/* Rebalance: a partition assigned (its mark is read before it is first
 * fired) or taken away (its state is dropped; claims in flight are still
 * acknowledged). */
void lp_stream_timers_assign(struct lp_stream_timers *st, int partition);
void lp_stream_timers_revoke(struct lp_stream_timers *st, int partition);

/* A record of partition p at event time t, in consumption order: returns
 * the watermark just before it and advances p's watermark. */
int64_t lp_stream_timers_observe(struct lp_stream_timers *st, int partition,
                                 int64_t event_ms);
/* Partition p's watermark now (INT64_MIN before any record). */
int64_t lp_stream_timers_watermark(const struct lp_stream_timers *st,
                                   int partition);

/* What one record does to timers (memory in the caller's arena). */
struct lp_st_op {
  const char *id;
  int64_t due_ms; /* schedule at this due; unused when cancel */
  const char *payload;
  int cancel;
  enum lp_timer_kind kind;
};
struct lp_st_plan {
  int partition;
  int64_t wm_after; /* the partition's watermark after the record */
  struct lp_st_op *ops;
  size_t n_ops;
  /* Timers that fire with this record (their due passed before it, in
   * the order of the stream): decide them on the record's before-state
   * and produce them with its outputs. */
  struct lp_timer_trigger *inline_fires;
  size_t n_inline;
  int valid; /* set by the planning functions */
};

/* Plans an order's timers (see above) into *out (arena-allocated; *out
 * zeroed first). wm_before from lp_stream_timers_observe. */
void lp_stream_timers_plan_order(
    struct lp_stream_timers *st, int partition, int64_t wm_before,
    const struct lp_ruleset *rules, const struct lp_model *model,
    const struct lp_order_event *ev, const struct lp_profile *before,
    struct lp_arena *arena, struct lp_st_plan *out);

/* Plans a customer event's birthday timers: scheduled at the next
 * birthday (minus the rule's days_before) after the event, moved when the
 * birthday changes, cancelled when it is removed. */
void lp_stream_timers_plan_customer(struct lp_stream_timers *st, int partition,
                                    int64_t wm_before,
                                    const struct lp_ruleset *rules,
                                    const struct lp_customer_event *ev,
                                    const struct lp_profile *before,
                                    struct lp_arena *arena,
                                    struct lp_st_plan *out);

/* Plans an activity event's cart timers from the activity part just
 * before it (NULL: none) and the member's last order time: a cart left
 * open is due after_minutes after its newest change; a checkout, an
 * order or an emptied cart cancels it. */
void lp_stream_timers_plan_activity(
    struct lp_stream_timers *st, int partition, int64_t wm_before,
    const struct lp_ruleset *rules, const struct lp_activity_event *ev,
    const char *before_activity, int64_t last_order_ms, struct lp_arena *arena,
    struct lp_st_plan *out);

/* Writes the plans of a completed batch (schedules, cancels and the
 * watermarks they reach, one pipeline) without waiting for Redis: the
 * plans are copied and *seq numbers the write. It is confirmed (and the
 * partitions' completed watermarks advance) by lp_stream_timers_collect,
 * which every other call here that talks to Redis makes first; until
 * lp_stream_timers_confirmed() >= seq the batch's records must not be
 * committed. 0, or -1 with errstr when the previous write could not be
 * confirmed (this one is then not taken: retry the same plans). */
int lp_stream_timers_apply_send(struct lp_stream_timers *st,
                                const struct lp_st_plan *const plans[],
                                size_t n, uint64_t *seq, char *errstr,
                                size_t errstr_size);
/* Reads the replies of the write in flight (sending it again first when
 * it failed): 0 when nothing is in flight any more, -1 with errstr after
 * a Redis error (kept: the next call sends it again, which is safe). */
int lp_stream_timers_collect(struct lp_stream_timers *st, char *errstr,
                             size_t errstr_size);
/* The seq of the last write confirmed (0: none). */
uint64_t lp_stream_timers_confirmed(const struct lp_stream_timers *st);

/* The due an order-driven timer rule (winback, replenishment) gives a
 * member whose profile is p (0: no timer): what planning uses, and what a
 * claim checks a stored timer against. */
int64_t lp_stream_timers_order_due(const struct lp_timer_rule *r,
                                   const struct lp_model *m,
                                   const struct lp_profile *p);

/* One claimed timer handed to the processor (owned by it until
 * lp_stream_timers_done). */
struct lp_st_fired {
  int partition;
  struct lp_timer timer;        /* as claimed */
  struct lp_timer_trigger trig; /* strings point into owned copies */
  char *shop, *customer_id, *rule_id, *trigger_id;
  char *parts;           /* the member's order and customer parts, as read */
  char *activity_text;   /* the activity part, as read (NULL: none) */
  int64_t last_order_ms; /* from parts, without a parse */
  int parsed;            /* profile and activity below are filled */
  struct lp_profile profile; /* the member's profile at firing */
  int have_activity;
  struct lp_activity_view activity; /* as of the due time */
  int64_t watermark;                /* the claim's (event-time) watermark */
  int64_t reschedule_due;           /* > 0: not fired, scheduled again there */
  int64_t move_due;                 /* where its ack moves it (0: removed) */
  int64_t lateness_event_ms;        /* watermark - due at firing */
  int64_t lateness_wall_ms;         /* wall clock - due at firing */
  struct lp_st_fired *next;
};

/* Claims the next batch of due timers of one partition whose watermark
 * (event time, or wall clock when idle) passed its next due timer: a list
 * in *out (NULL: nothing is due anywhere). Reads each member's profile and
 * activity. 0, or -1 with errstr (Redis; nothing lost: claims come back
 * after their lease, unclaimed timers stay due). */
int lp_stream_timers_claim(struct lp_stream_timers *st, int64_t now_ms,
                           struct lp_st_fired **out, char *errstr,
                           size_t errstr_size);

/* 1 when lp_stream_timers_claim would claim now (a partition's next due
 * passed and its claim interval elapsed, a sweep, or a partition to
 * load): the caller skips claims, and the wait for the write in flight
 * they imply, otherwise. Acks need no claim: they go with every write. */
int lp_stream_timers_wants_claim(const struct lp_stream_timers *st,
                                 int64_t now_ms);

/* Fills f->profile and f->activity (as of the due) from the text read
 * with the claim, once. */
void lp_stream_timers_fired_parse(const struct lp_stream_timers *st,
                                  struct lp_st_fired *f);

/* Every output of a fired timer is acknowledged by Kafka (or it had
 * none): the timer is acknowledged in Redis with the next flush (a
 * birthday is scheduled again for next year instead). Takes f. */
void lp_stream_timers_done(struct lp_stream_timers *st, struct lp_st_fired *f);

/* A claimed timer that turned out early (the member ordered in time
 * after it was planned, and its planning was left lazy): scheduled again
 * at due with the next flush instead of acked, no decision. Takes f. */
void lp_stream_timers_reschedule(struct lp_stream_timers *st,
                                 struct lp_st_fired *f, int64_t due);

/* Claims ignore the fire interval while on: at shutdown the processor
 * fires everything its watermarks have passed, so what it decided does
 * not depend on when it was stopped. */
void lp_stream_timers_force(struct lp_stream_timers *st, int on);

/* Frees a fired timer that is not finished (shutdown). */
void lp_stream_timers_fired_free(struct lp_st_fired *f);

/* Sends finished timers' acks and advanced marks, with the write in
 * flight's successor when there is one (the next apply_send), else as a
 * write of their own; with wait (or forced) reads the replies too, as
 * lp_stream_timers_collect does. Every few seconds it refreshes the
 * pending gauge (waiting then). 0, or -1 with errstr (the acks are kept
 * and sent again: they are idempotent). */
int lp_stream_timers_flush(struct lp_stream_timers *st, int wait, char *errstr,
                           size_t errstr_size);

#endif
