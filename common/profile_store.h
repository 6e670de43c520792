/*
 * profile_store.h — member profiles in Redis, updated from events
 * atomically and idempotently, answering "what was this member's state
 * just before this event?" the same way every time the event is seen.
 *
 * Keys (namespace ns, hash tag {shop:customer} so one member's keys stay in
 * one Redis Cluster slot), formats in profile_apply.h:
 *   <ns>:p:{shop:customer}  string  order part (spend, orders, first/last
 *                                   order, category and brand spend)
 *   <ns>:c:{shop:customer}  string  customer part (consent, tags, birthday,
 *                                   hashed email, created)
 *   <ns>:m:{shop:customer}  hash    "o:"/"c:" + event id -> snapshot of
 *                                   the profile before that event (memo)
 *   <ns>:o:{shop:customer}  hash    order id -> what the order added
 * Memo and order hashes expire memo_ttl seconds after the member's last
 * event: the dedupe / replay horizon. Each processor kind writes only its
 * own part, so the two never contend.
 *
 * A batch takes two pipelined round trips. Read: each event's memo entry,
 * both parts and (orders) the order record. Then, in C, each event is
 * applied in order (chained through the batch for members with several
 * events) and one small compare-and-set script per event writes the new
 * part, the memo entry and the order record only if the part is still
 * what was read and the event is not yet in the memo. So an event applied
 * twice changes the profile once, and a redelivered event — even after
 * later events — gets the same "before" state, hence the same decisions.
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
};

/* Connects lazily: a Redis that is down at start is retried like any
 * other outage. Returns NULL only for invalid configuration. */
struct lp_profile_store *
lp_profile_store_new(const struct lp_profile_store_config *conf, char *errstr,
                     size_t errstr_size);
void lp_profile_store_destroy(struct lp_profile_store **s);

/* One event of a batch: the caller sets exactly one of order/customer
 * (borrowed); apply fills before (owned by the op; lp_profile_clear) or
 * error (a permanent, per-event failure for the dead-letter topic). */
struct lp_store_op {
  const struct lp_order_event *order;
  const struct lp_customer_event *customer;
  struct lp_profile before;
  int failed;
  char error[256];
};

/* Called between retries while Redis is unavailable (e.g. to serve Kafka
 * delivery reports); may be NULL. */
typedef void (*lp_store_wait_fn)(void *opaque);

/*
 * Applies ops in order in one pipeline. Returns 0 when every op has either
 * its before-profile or a permanent error; -1 when *stop became non-zero
 * while Redis was unavailable (nothing can be assumed applied).
 */
int lp_profile_store_apply(struct lp_profile_store *s, struct lp_store_op *ops,
                           size_t n, volatile sig_atomic_t *stop,
                           lp_store_wait_fn wait, void *opaque);

/* 1 when the last command succeeded (for /healthz). */
int lp_profile_store_healthy(const struct lp_profile_store *s);

/* Reads a member's current profile (tests, loyaltyctl). 0 or -1. */
int lp_profile_store_get(struct lp_profile_store *s, const char *shop,
                         const char *customer_id, struct lp_profile *out,
                         char *errstr, size_t errstr_size);

#endif
