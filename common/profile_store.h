/*
 * profile_store.h — member profiles in Redis, updated from events
 * atomically and idempotently, answering "what was this member's state
 * just before this event?" the same way every time the event is seen.
 *
 * Keys (namespace ns, hash tag {shop:customer} so one member's keys stay in
 * one Redis Cluster slot), formats in profile_apply.h and activity_apply.h:
 *   <ns>:p:{shop:customer}  string  order part (spend, orders, first/last
 *                                   order, category and brand spend)
 *   <ns>:c:{shop:customer}  string  customer part (consent, tags, birthday,
 *                                   hashed email, created)
 *   <ns>:a:{shop:customer}  string  activity part (browse affinities, the
 *                                   open cart, last activity)
 *   <ns>:r:{shop:customer}:<order id>    string  the order's entry: what
 *                                   the order added, then the snapshot of
 *                                   the profile before each of its events
 *                                   (the memos of order events)
 *   <ns>:m:{shop:customer}:c:<event id>  string  snapshot before that
 *                                   customer event (its memo)
 *   <ns>:m:{shop:customer}:a:<event id>  string  memo of that activity
 *                                   event: "a<TAB><n>\n", the n bytes of
 *                                   the activity part before it, then the
 *                                   snapshot of the order and customer
 *                                   parts it was applied against
 * An order entry expires memo_ttl seconds after the order's latest event,
 * a customer or activity memo memo_ttl seconds after its event: the
 * dedupe / replay horizon, and a bound on Redis memory however active a
 * member is (an order keeps at most LP_ORDER_MAX_EVENTS memos). Each
 * processor kind writes only its own part, so they never contend. The one
 * cross-part rule: before an activity event is folded, an order at or
 * after the stored cart_at (the order part's last order) clears the cart
 * (lp_activity_clear_cart) — the activity path reads the order part, the
 * order path never writes the activity part.
 *
 * A batch takes two pipelined round trips. Read: per event its gate (the
 * order's entry, or the customer / activity event's memo) and all three
 * parts, in one MGET. Then, in C, each event is applied in order (chained
 * through the batch for members with several events) and a compare-and-set
 * script (one per cas_batch events) writes each event's new part and its
 * memo (orders: the entry with the memo appended) only if the part and
 * the entry are still what was read (customers and activity: the memo is
 * not there yet). So an event applied twice changes the profile once, and
 * a redelivered event — even after later events — gets the same "before"
 * state, hence the same decisions. An order event creates no key of its
 * own, which is what keeps Redis at about 11 µs per event.
 * The compare-and-sets go out in chunks while later events are still
 * being applied, and each event's before-state is handed to the caller
 * (lp_store_known_fn) before Redis answers, so Redis and the processor
 * work at the same time instead of taking turns.
 * A lost race (another instance wrote the member between read and write,
 * as can happen around a rebalance) re-runs those events.
 *
 * A lost connection or a transient Redis error (LOADING, BUSY, OOM,
 * READONLY, MASTERDOWN) retries the batch after a backoff — safe because
 * of the memo — until it succeeds or the caller's stop flag is set.
 * Not thread-safe.
 */
#ifndef LP_PROFILE_STORE_H
#define LP_PROFILE_STORE_H

#include <signal.h>
#include <stddef.h>

#include "activity_apply.h"
#include "events.h"
#include "profile.h"
#include "profile_apply.h"

struct lp_profile_store;

struct lp_profile_store_config {
  const char *host; /* copied */
  int port;
  const char *ns;     /* key namespace, copied */
  long memo_ttl_s;    /* dedupe / replay horizon */
  int timeout_ms;     /* connect and command timeout */
  int max_affinities; /* categories (and brands) tracked per member */
  int cas_batch;      /* events per compare-and-set script (0 = 32); 1
                         keeps every script on one member's keys, as
                         Redis Cluster requires */
  /* The activity fold's parameters (copied); NULL = the defaults of
   * activity_apply.h. */
  const struct lp_activity_params *activity;
};

/* Connects lazily: a Redis that is down at start is retried like any
 * other outage. Returns NULL only for invalid configuration. */
struct lp_profile_store *
lp_profile_store_new(const struct lp_profile_store_config *conf, char *errstr,
                     size_t errstr_size);
void lp_profile_store_destroy(struct lp_profile_store **s);

/* One event of a batch: the caller sets exactly one of order/customer/
 * activity (borrowed); apply fills before (owned by the op;
 * lp_profile_clear) and before_activity, or error (a permanent, per-event
 * failure for the dead-letter topic). */
struct lp_store_op {
  const struct lp_order_event *order;
  const struct lp_customer_event *customer;
  const struct lp_activity_event *activity;
  struct lp_profile before; /* order and customer parts before the event */
  /* The activity part (activity_apply.h text) before the event, NULL when
   * the member had none; owned by the op (free it where before is
   * cleared). For activity events it comes from the memo, so a
   * redelivery sees the same; for order and customer events it is the
   * part as read with the batch (not memoised). */
  char *before_activity;
  int failed;
  char error[256];
};

/* Called between retries while Redis is unavailable (e.g. to serve Kafka
 * delivery reports); may be NULL. */
typedef void (*lp_store_wait_fn)(void *opaque);

/*
 * Called as soon as op i's before-state is known (op->before filled),
 * which is usually before Redis has confirmed the write: the caller can
 * decide and encode while Redis works. It is called again for the same op
 * when that state turned out to be void (a racing instance applied the
 * event first, a lost compare-and-set, a retry after an outage); only the
 * last call counts, and only for ops that end without op->failed. May be
 * NULL.
 */
typedef void (*lp_store_known_fn)(void *opaque, size_t i,
                                  const struct lp_store_op *op);

struct lp_store_callbacks {
  lp_store_wait_fn wait;
  lp_store_known_fn known;
  void *opaque;
};

/*
 * Applies ops in order in one pipeline. Returns 0 when every op has either
 * its before-profile or a permanent error; -1 when *stop became non-zero
 * while Redis was unavailable (nothing can be assumed applied).
 */
int lp_profile_store_apply(struct lp_profile_store *s, struct lp_store_op *ops,
                           size_t n, volatile sig_atomic_t *stop,
                           const struct lp_store_callbacks *cb);

/*
 * The same in three steps, so a caller can keep two batches in flight on
 * the one connection and let Redis work while it does something else:
 *
 *   start(slot, ops)  sends the batch's reads (behind whatever the other
 *                     slot has sent); never waits for Redis.
 *   advance(slot)     receives them, applies the events, calls known()
 *                     and sends the compare-and-sets; does not wait for
 *                     their answers.
 *   finish(slot)      receives the answers, re-runs lost races, retries
 *                     transient failures; afterwards the batch is done
 *                     exactly as with lp_profile_store_apply.
 *
 * Slots are 0 and 1 (LP_STORE_SLOTS). Batches must be finished in the
 * order they were started, and a batch is advanced only once every batch
 * started before it is finished. ops and cb stay borrowed until finish.
 * advance and finish return 0, or -1 when *stop was set during a Redis
 * outage (nothing can be assumed applied; the batch is then over).
 * lp_profile_store_apply is start + finish on slot 0.
 */
#define LP_STORE_SLOTS 2
void lp_profile_store_start(struct lp_profile_store *s, int slot,
                            struct lp_store_op *ops, size_t n,
                            const struct lp_store_callbacks *cb);
int lp_profile_store_advance(struct lp_profile_store *s, int slot,
                             volatile sig_atomic_t *stop);
int lp_profile_store_finish(struct lp_profile_store *s, int slot,
                            volatile sig_atomic_t *stop);

/* 1 when the last command succeeded (for /healthz). */
int lp_profile_store_healthy(const struct lp_profile_store *s);

/* Reads a member's current profile (tests, loyaltyctl). 0 or -1. */
int lp_profile_store_get(struct lp_profile_store *s, const char *shop,
                         const char *customer_id, struct lp_profile *out,
                         char *errstr, size_t errstr_size);

#endif
