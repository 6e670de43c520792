/*
 * timers.h — the member timer store in Redis: win-back, replenishment,
 * birthday, points expiry, cart abandonment. It owns the timers of every
 * input partition, their schedule, their firing claims and the leases on
 * those claims; it does not decide when to fire (the caller passes the
 * partition's event-time watermark) nor what a fired timer produces.
 *
 * Keys (namespace ns, input partition p):
 *   <ns>:tm:<p>:due   zset  timer id -> due time (event time, ms)
 *   <ns>:tm:<p>:data  hash  timer id -> "<generation>|<due ms>|<payload>"
 *   <ns>:tm:<p>:fly   zset  claimed timer id -> lease expiry (wall, ms)
 *   <ns>:tm:<p>:own   hash  claimed timer id -> owner token
 *   <ns>:tm:<p>:gen   int   the partition's generation counter
 *   <ns>:tm:<p>:bad   hash  timer id -> a record claim could not read
 *                           (quarantined, never fired; for a person)
 *   <ns>:tm:<p>:done  hash  timer id -> the due it last fired at (ack)
 * A timer id is "<kind>:<member key>[:<sub key>]", the member key being
 * "<shop>:<customer_id>": one timer per id. Scheduling an existing id
 * moves it (new due, new generation), cancelling removes it.
 *
 * Firing: claim_due atomically moves up to max timers due at or before
 * the watermark from due to fly under the caller's owner token and a
 * lease, in due order (ties by id, byte order: deterministic). It first
 * puts back the partition's claims whose lease ran out (their owner
 * died), so anyone can fire them again. ack removes fired timers once the
 * caller's output is acknowledged by Kafka, only when still claimed by
 * that owner at that generation: a timer re-scheduled (or cancelled)
 * while in flight drops the old claim, and the late ack of the old claim
 * leaves the new schedule alone.
 *
 * Exactly once: a claim is held by one owner at a time, so two live
 * instances never fire one timer together; a claimant killed between its
 * output and its ack leaves a claim that is fired again after its lease.
 * The output of a fired timer carries lp_timer_output_id ("<id>@<due>"),
 * the same on every re-fire, so downstream dedupes that re-fire: never
 * two outcomes, never a lost timer.
 *
 * Every call is one round trip (one script). The scripts of one call
 * touch one partition's keys only, but those keys have no common hash
 * tag: one Redis, not a Redis Cluster. Not thread-safe.
 */
#ifndef LP_TIMERS_H
#define LP_TIMERS_H

#include <stddef.h>
#include <stdint.h>

struct lp_timers;

struct lp_timers_config {
  const char *host; /* copied */
  int port;
  const char *ns; /* copied; non-empty, no spaces or braces */
  int timeout_ms; /* 0: 2000 */
};

/* Limits checked before anything is sent (a bad input is an error that
 * names the record and the field, never a crash). */
#define LP_TIMERS_ID_MAX 512       /* bytes of a timer id */
#define LP_TIMERS_PAYLOAD_MAX 4096 /* bytes of a payload */
#define LP_TIMERS_CLAIM_MAX 4000   /* timers per claim */
#define LP_TIMERS_OWNER_MAX 128    /* bytes of an owner token */

struct lp_timers *lp_timers_new(const struct lp_timers_config *conf,
                                char *errstr, size_t errstr_size);
void lp_timers_destroy(struct lp_timers **t);

/*
 * Schedules (or moves) n timers of partition p in one round trip: ids[i]
 * due at due_ms[i] (event time) with payloads[i] (NULL = empty; all
 * borrowed). A later entry of the same id in the batch wins. A timer in
 * flight is taken out of flight: its claim is superseded. 0, or -1 with
 * errstr (nothing scheduled when the input is bad; after a Redis error
 * the batch may or may not be applied: scheduling is safe to repeat).
 */
int lp_timers_schedule_batch(struct lp_timers *t, int partition, size_t n,
                             const char *const ids[], const int64_t due_ms[],
                             const char *const payloads[], char *errstr,
                             size_t errstr_size);

/* Cancels n timers (pending or in flight; unknown ids are no-ops) in one
 * round trip; *cancelled (may be NULL) counts those that existed. */
int lp_timers_cancel_batch(struct lp_timers *t, int partition, size_t n,
                           const char *const ids[], size_t *cancelled,
                           char *errstr, size_t errstr_size);

/* One claimed timer. */
struct lp_timer {
  char *id;      /* owned */
  char *payload; /* owned, NUL-terminated */
  size_t payload_len;
  int64_t due_ms;
  int64_t generation; /* which schedule of the id this claim fires */
};

struct lp_timers_claimed {
  struct lp_timer *timers; /* owned, in due order */
  size_t n;
  /* Ids whose stored record was unreadable (not written by this module):
   * moved to <ns>:tm:<p>:bad, not fired; the caller logs them. Owned. */
  char **quarantined;
  size_t n_quarantined;
  /* The earliest due still pending after the claim (as next_due gives it,
   * without its round trip); has_next_due 0: none. */
  int has_next_due;
  int64_t next_due_ms;
};
void lp_timers_claimed_clear(struct lp_timers_claimed *c);

/*
 * Claims up to max (<= LP_TIMERS_CLAIM_MAX) timers of partition p due at
 * or before watermark_ms for owner (a token unique to this instance,
 * borrowed) for lease_ms of wall clock (Redis' clock). *out is filled
 * (caller clears it with lp_timers_claimed_clear; empty on error). 0, or
 * -1 with errstr (a claim that may have been made then comes back after
 * its lease).
 */
int lp_timers_claim_due(struct lp_timers *t, int partition,
                        int64_t watermark_ms, size_t max, const char *owner,
                        long lease_ms, struct lp_timers_claimed *out,
                        char *errstr, size_t errstr_size);

/* Removes n fired timers (as claimed: id and generation) still claimed by
 * owner; *acked (may be NULL) counts those removed, the others having
 * been re-claimed after their lease, moved or cancelled. Each removed
 * timer's due_ms (the due it fired at, which the caller may have
 * corrected) is remembered in <ns>:tm:<p>:done: scheduling that id at
 * that due again is then a no-op, so a redelivered record cannot bring a
 * fired timer back. 0 or -1. */
int lp_timers_ack(struct lp_timers *t, int partition,
                  const struct lp_timer *timers, size_t n, const char *owner,
                  size_t *acked, char *errstr, size_t errstr_size);

/* As lp_timers_ack, and a timer with moves[i] > 0 (moves NULL: none) is
 * not removed but pending again at that due (a new generation, the same
 * payload; done untouched): a claim that found its timer early. Like the
 * ack, only while owner holds the claim at that generation, so a timer
 * scheduled again or cancelled since the claim keeps that newer state.
 * One round trip for both. */
int lp_timers_ack_move(struct lp_timers *t, int partition,
                       const struct lp_timer *timers, const int64_t moves[],
                       size_t n, const char *owner, size_t *acked, char *errstr,
                       size_t errstr_size);

/* The earliest due time of partition p's pending (unclaimed) timers: 0
 * and *due_ms, 1 when there is none, -1 with errstr. */
int lp_timers_next_due(struct lp_timers *t, int partition, int64_t *due_ms,
                       char *errstr, size_t errstr_size);

/* Partition p's timers, pending and in flight. 0 or -1. */
int lp_timers_pending(struct lp_timers *t, int partition, size_t *n,
                      char *errstr, size_t errstr_size);

/* The deterministic id of a fired timer's output, "<id>@<due ms>": the
 * same on every re-fire of that schedule. Returns the length it needs
 * (as snprintf); buf holds it when that is < size. */
size_t lp_timer_output_id(const struct lp_timer *timer, char *buf, size_t size);

/* Whether schedule_batch consults <ns>:tm:<p>:done (on by default): a
 * caller that knows a batch holds no record seen before (no redelivery)
 * may turn it off for that batch and save its cost. */
void lp_timers_set_check_fired(struct lp_timers *t, int on);

/* Runs one Redis command of the caller's on the store's connection (argv
 * borrowed); between pipeline_begin and end it is only sent, its reply
 * checked at end, so it shares their round trip. 0, or -1 with errstr
 * (an error reply). */
int lp_timers_command(struct lp_timers *t, int argc, const char *argv[],
                      const size_t lens[], char *errstr, size_t errstr_size);

/* Pipelining: between begin and end, schedule_batch, cancel_batch,
 * ack_move and command only validate and send (returning 0, or -1 for bad
 * input); end reads every reply in one round trip and returns 0, or -1 with
 * errstr for the first failure (a cancel's or an ack's count is filled at end).
 * Safe to repeat after an error, like the calls themselves. */
void lp_timers_pipeline_begin(struct lp_timers *t);
int lp_timers_pipeline_end(struct lp_timers *t, char *errstr,
                           size_t errstr_size);
/* pipeline_end in two halves, so the caller can work while Redis runs
 * the pipeline: send writes it out (0, or -1 with errstr: nothing to
 * receive then); recv reads the replies as end does. No other call may
 * be made in between. */
int lp_timers_pipeline_send(struct lp_timers *t, char *errstr,
                            size_t errstr_size);
int lp_timers_pipeline_recv(struct lp_timers *t, char *errstr,
                            size_t errstr_size);

/* Round trips made so far (for the benchmark). */
uint64_t lp_timers_round_trips(const struct lp_timers *t);

#endif
