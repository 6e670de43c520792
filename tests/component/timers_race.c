/*
 * timers_race.c — the timer store (common/timers.c) against a real
 * redis-server. Modes, all given the Redis port first:
 *   semantics                 cmocka cases: schedule, move, cancel, claim
 *                             order, ack ownership and generation, lease
 *                             expiry, bad input
 *   load NS N PARTS           schedules N timers over PARTS partitions
 *   fire NS PARTS OWNER LEASE_MS OUT [DIE_AFTER]
 *                             claims every partition until none is left,
 *                             writing each fired output id to OUT.fired
 *                             (before the ack, as a produce would) and
 *                             each acked one to OUT.acked; with DIE_AFTER
 *                             it SIGKILLs itself once that many fired,
 *                             after writing them and before their ack
 *   bench NS N PARTS          schedules then fires N timers; prints
 *                             "timers_per_s=<(created + fired) / s>"
 * Run by test_timers.sh and tests/bench.sh.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "timers.h"
#include "util.h"

static int redis_port;
static int ns_counter;

static struct lp_timers *open_store(const char *ns) {
  char err[256];
  struct lp_timers_config c = {"127.0.0.1", redis_port, ns, 5000};
  struct lp_timers *t = lp_timers_new(&c, err, sizeof(err));
  if (!t) {
    fprintf(stderr, "timers: %s\n", err);
    exit(1);
  }
  return t;
}

/* ---- semantics ---- */

struct fixture {
  char ns[32];
  struct lp_timers *t;
};

static int setup(void **state) {
  struct fixture *f = lp_xcalloc(1, sizeof(*f));
  snprintf(f->ns, sizeof(f->ns), "tmsem%d-%d", (int)getpid(), ++ns_counter);
  f->t = open_store(f->ns);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  lp_timers_destroy(&f->t);
  free(f);
  return 0;
}

static void schedule1(struct lp_timers *t, int p, const char *id, int64_t due,
                      const char *payload) {
  char err[256];
  const char *ids[] = {id}, *pl[] = {payload};
  int64_t d[] = {due};
  if (lp_timers_schedule_batch(t, p, 1, ids, d, pl, err, sizeof(err)))
    fail_msg("schedule %s: %s", id, err);
}

static void claim(struct lp_timers *t, int p, int64_t wm, size_t max,
                  const char *owner, long lease,
                  struct lp_timers_claimed *out) {
  char err[256];
  if (lp_timers_claim_due(t, p, wm, max, owner, lease, out, err, sizeof(err)))
    fail_msg("claim: %s", err);
}

static size_t pending(struct lp_timers *t, int p) {
  char err[256];
  size_t n;
  if (lp_timers_pending(t, p, &n, err, sizeof(err)))
    fail_msg("pending: %s", err);
  return n;
}

static void test_schedule_move_cancel(void **state) {
  struct fixture *f = *state;
  char err[256];
  const char *ids[] = {"winback:s1:c1", "birthday:s1:c2", "expiry:s1:c3:pts"};
  int64_t due[] = {100, 200, 300};
  const char *pl[] = {"a", "b|with|bars", NULL};
  assert_int_equal(
      lp_timers_schedule_batch(f->t, 3, 3, ids, due, pl, err, sizeof(err)), 0);
  assert_int_equal(pending(f->t, 3), 3);
  assert_int_equal(pending(f->t, 4), 0);
  /* Moving: one timer per id, the new due wins. */
  schedule1(f->t, 3, "birthday:s1:c2", 50, "b2");
  assert_int_equal(pending(f->t, 3), 3);
  size_t cancelled;
  const char *c[] = {"expiry:s1:c3:pts", "unknown:s1:c9"};
  assert_int_equal(
      lp_timers_cancel_batch(f->t, 3, 2, c, &cancelled, err, sizeof(err)), 0);
  assert_int_equal(cancelled, 1);
  assert_int_equal(pending(f->t, 3), 2);
  int64_t next;
  assert_int_equal(lp_timers_next_due(f->t, 3, &next, err, sizeof(err)), 0);
  assert_int_equal(next, 50);
  assert_int_equal(lp_timers_next_due(f->t, 4, &next, err, sizeof(err)), 1);

  struct lp_timers_claimed got;
  claim(f->t, 3, 1000, 10, "A", 30000, &got);
  assert_int_equal(got.n, 2);
  assert_string_equal(got.timers[0].id, "birthday:s1:c2");
  assert_int_equal(got.timers[0].due_ms, 50);
  assert_string_equal(got.timers[0].payload, "b2");
  assert_string_equal(got.timers[1].id, "winback:s1:c1");
  assert_int_equal(got.timers[1].due_ms, 100);
  assert_string_equal(got.timers[1].payload, "a");
  char oid[128];
  lp_timer_output_id(&got.timers[0], oid, sizeof(oid));
  assert_string_equal(oid, "birthday:s1:c2@50");
  /* In flight: still pending for the metrics, not due any more. */
  assert_int_equal(pending(f->t, 3), 2);
  assert_int_equal(lp_timers_next_due(f->t, 3, &next, err, sizeof(err)), 1);
  size_t acked;
  assert_int_equal(
      lp_timers_ack(f->t, 3, got.timers, got.n, "A", &acked, err, sizeof(err)),
      0);
  assert_int_equal(acked, 2);
  assert_int_equal(pending(f->t, 3), 0);
  lp_timers_claimed_clear(&got);
  /* A payload with bars and an empty one survive. */
  const char *ids2[] = {"cart:s1:c5", "cart:s1:c6"};
  int64_t due2[] = {7, 8};
  const char *pl2[] = {"x|y|", ""};
  assert_int_equal(
      lp_timers_schedule_batch(f->t, 3, 2, ids2, due2, pl2, err, sizeof(err)),
      0);
  claim(f->t, 3, 8, 10, "A", 30000, &got);
  assert_int_equal(got.n, 2);
  assert_string_equal(got.timers[0].payload, "x|y|");
  assert_int_equal(got.timers[1].payload_len, 0);
  lp_timers_claimed_clear(&got);
}

static void test_claim_order(void **state) {
  struct fixture *f = *state;
  schedule1(f->t, 0, "winback:s:z", 10, "");
  schedule1(f->t, 0, "winback:s:a", 10, "");
  schedule1(f->t, 0, "replenish:s:m", 10, "");
  schedule1(f->t, 0, "cart:s:x", 5, "");
  schedule1(f->t, 0, "cart:s:late", 11, "");
  struct lp_timers_claimed got;
  claim(f->t, 0, 4, 10, "A", 30000, &got);
  assert_int_equal(got.n, 0);
  /* Due order, ties by id bytes; the watermark itself is included. */
  claim(f->t, 0, 10, 3, "A", 30000, &got);
  assert_int_equal(got.n, 3);
  assert_string_equal(got.timers[0].id, "cart:s:x");
  assert_string_equal(got.timers[1].id, "replenish:s:m");
  assert_string_equal(got.timers[2].id, "winback:s:a");
  lp_timers_claimed_clear(&got);
  claim(f->t, 0, 10, 3, "B", 30000, &got);
  assert_int_equal(got.n, 1);
  assert_string_equal(got.timers[0].id, "winback:s:z");
  lp_timers_claimed_clear(&got);
}

static void test_ack_owner_and_generation(void **state) {
  struct fixture *f = *state;
  char err[256];
  size_t acked;
  schedule1(f->t, 1, "winback:s:c1", 100, "v1");
  struct lp_timers_claimed got;
  claim(f->t, 1, 100, 10, "A", 30000, &got);
  assert_int_equal(got.n, 1);
  /* Someone else's ack changes nothing. */
  assert_int_equal(
      lp_timers_ack(f->t, 1, got.timers, 1, "B", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 0);
  /* Re-scheduled while in flight: the old claim's ack leaves the new
   * schedule alone, and the new one fires with a new output id. */
  schedule1(f->t, 1, "winback:s:c1", 500, "v2");
  assert_int_equal(
      lp_timers_ack(f->t, 1, got.timers, 1, "A", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 0);
  assert_int_equal(pending(f->t, 1), 1);
  struct lp_timers_claimed again;
  claim(f->t, 1, 1000, 10, "A", 30000, &again);
  assert_int_equal(again.n, 1);
  assert_int_equal(again.timers[0].due_ms, 500);
  assert_string_equal(again.timers[0].payload, "v2");
  assert_true(again.timers[0].generation > got.timers[0].generation);
  /* The stale claim's late ack, by the same owner, still changes nothing. */
  assert_int_equal(
      lp_timers_ack(f->t, 1, got.timers, 1, "A", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 0);
  assert_int_equal(
      lp_timers_ack(f->t, 1, again.timers, 1, "A", &acked, err, sizeof(err)),
      0);
  assert_int_equal(acked, 1);
  assert_int_equal(pending(f->t, 1), 0);
  lp_timers_claimed_clear(&got);
  lp_timers_claimed_clear(&again);
  /* Cancelled while in flight: gone, and the ack is a no-op. */
  schedule1(f->t, 1, "expiry:s:c2", 5, "");
  claim(f->t, 1, 5, 10, "A", 30000, &got);
  const char *c[] = {"expiry:s:c2"};
  size_t cancelled;
  assert_int_equal(
      lp_timers_cancel_batch(f->t, 1, 1, c, &cancelled, err, sizeof(err)), 0);
  assert_int_equal(cancelled, 1);
  assert_int_equal(
      lp_timers_ack(f->t, 1, got.timers, 1, "A", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 0);
  assert_int_equal(pending(f->t, 1), 0);
  lp_timers_claimed_clear(&got);
}

/* ack_move: a claim found early goes back pending at a new due with its
 * payload, only while it is the timer's latest schedule; the claim
 * reports the next due; acks and moves of several partitions share one
 * pipelined round trip. */
static void test_ack_move_and_next_due(void **state) {
  struct fixture *f = *state;
  char err[256];
  size_t acked = 99;
  schedule1(f->t, 1, "winback:s:c1", 100, "v1");
  schedule1(f->t, 1, "winback:s:c2", 150, "w1");
  schedule1(f->t, 1, "winback:s:c9", 900, "z1");
  struct lp_timers_claimed got;
  claim(f->t, 1, 160, 10, "A", 30000, &got);
  assert_int_equal(got.n, 2);
  assert_true(got.has_next_due);
  assert_int_equal(got.next_due_ms, 900);
  /* c1 moves to 400; c2 was scheduled again since the claim (to 700): its
   * move is refused and the newer schedule stays. */
  schedule1(f->t, 1, "winback:s:c2", 700, "w2");
  int64_t moves[] = {400, 300};
  assert_int_equal(lp_timers_ack_move(f->t, 1, got.timers, moves, 2, "A",
                                      &acked, err, sizeof(err)),
                   0);
  assert_int_equal(acked, 1);
  assert_int_equal(pending(f->t, 1), 3);
  struct lp_timers_claimed again;
  claim(f->t, 1, 1000, 10, "A", 30000, &again);
  assert_int_equal(again.n, 3);
  assert_false(again.has_next_due);
  assert_string_equal(again.timers[0].id, "winback:s:c1");
  assert_int_equal(again.timers[0].due_ms, 400);
  assert_string_equal(again.timers[0].payload, "v1"); /* payload kept */
  assert_true(again.timers[0].generation != got.timers[0].generation);
  assert_string_equal(again.timers[1].id, "winback:s:c2");
  assert_int_equal(again.timers[1].due_ms, 700);
  assert_string_equal(again.timers[1].payload, "w2");
  /* The old claim's late move changes nothing. */
  assert_int_equal(lp_timers_ack_move(f->t, 1, got.timers, moves, 1, "A",
                                      &acked, err, sizeof(err)),
                   0);
  assert_int_equal(acked, 0);
  /* Pipelined: the acks of two partitions and a caller's command in one
   * round trip. */
  schedule1(f->t, 2, "winback:s:c3", 50, "");
  struct lp_timers_claimed other;
  claim(f->t, 2, 60, 10, "A", 30000, &other);
  assert_int_equal(other.n, 1);
  assert_false(other.has_next_due);
  size_t a1 = 0, a2 = 0;
  uint64_t trips = lp_timers_round_trips(f->t);
  lp_timers_pipeline_begin(f->t);
  assert_int_equal(lp_timers_ack_move(f->t, 1, again.timers, NULL, 3, "A", &a1,
                                      err, sizeof(err)),
                   0);
  assert_int_equal(lp_timers_ack_move(f->t, 2, other.timers, NULL, 1, "A", &a2,
                                      err, sizeof(err)),
                   0);
  const char *argv[] = {"SET", "tm-test-key", "1"};
  const size_t lens[] = {3, 11, 1};
  assert_int_equal(lp_timers_command(f->t, 3, argv, lens, err, sizeof(err)), 0);
  /* Sent, not read: Redis runs it meanwhile; a call in between is refused
   * (its reply would be read as the pipeline's). */
  assert_int_equal(lp_timers_pipeline_send(f->t, err, sizeof(err)), 0);
  size_t n_now;
  assert_int_equal(lp_timers_pending(f->t, 1, &n_now, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "unread"));
  assert_int_equal(lp_timers_pipeline_recv(f->t, err, sizeof(err)), 0);
  assert_int_equal(lp_timers_round_trips(f->t) - trips, 1);
  assert_int_equal(a1, 3);
  assert_int_equal(a2, 1);
  assert_int_equal(pending(f->t, 1), 0);
  assert_int_equal(pending(f->t, 2), 0);
  /* A bad new due is refused before anything is sent. */
  int64_t bad[] = {-5};
  assert_int_equal(lp_timers_ack_move(f->t, 1, got.timers, bad, 1, "A", &acked,
                                      err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "new due"));
  /* A caller's command that Redis refuses is an error at pipeline end. */
  lp_timers_pipeline_begin(f->t);
  const char *wrong[] = {"INCR", "tm-test-key", "extra"};
  const size_t wl[] = {4, 11, 5};
  assert_int_equal(lp_timers_command(f->t, 3, wrong, wl, err, sizeof(err)), 0);
  assert_int_equal(lp_timers_pipeline_end(f->t, err, sizeof(err)), -1);
  lp_timers_claimed_clear(&got);
  lp_timers_claimed_clear(&again);
  lp_timers_claimed_clear(&other);
}

static void test_lease_expiry(void **state) {
  struct fixture *f = *state;
  char err[256];
  size_t acked;
  schedule1(f->t, 2, "birthday:s:c1", 10, "p");
  struct lp_timers_claimed a, b;
  claim(f->t, 2, 10, 10, "A", 200, &a);
  assert_int_equal(a.n, 1);
  claim(f->t, 2, 10, 10, "B", 200, &b);
  assert_int_equal(b.n, 0);
  usleep(350 * 1000);
  /* A died: B takes the claim, with the same output id. */
  claim(f->t, 2, 10, 10, "B", 30000, &b);
  assert_int_equal(b.n, 1);
  assert_string_equal(b.timers[0].id, "birthday:s:c1");
  assert_int_equal(b.timers[0].due_ms, a.timers[0].due_ms);
  assert_int_equal(b.timers[0].generation, a.timers[0].generation);
  assert_int_equal(
      lp_timers_ack(f->t, 2, a.timers, 1, "A", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 0);
  assert_int_equal(
      lp_timers_ack(f->t, 2, b.timers, 1, "B", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 1);
  lp_timers_claimed_clear(&a);
  lp_timers_claimed_clear(&b);
  /* An expired claim whose watermark is not there yet waits. */
  schedule1(f->t, 2, "birthday:s:c2", 1000, "");
  claim(f->t, 2, 1000, 10, "A", 100, &a);
  usleep(200 * 1000);
  claim(f->t, 2, 999, 10, "B", 100, &b);
  assert_int_equal(b.n, 0);
  assert_int_equal(pending(f->t, 2), 1);
  lp_timers_claimed_clear(&a);
}

static void test_bad_input(void **state) {
  struct fixture *f = *state;
  char err[256];
  const char *ids[] = {"winback:s:c1", ""};
  int64_t due[] = {1, 2};
  assert_int_equal(
      lp_timers_schedule_batch(f->t, 0, 2, ids, due, NULL, err, sizeof(err)),
      -1);
  assert_non_null(strstr(err, "timer 1"));
  assert_int_equal(pending(f->t, 0), 0); /* nothing of a bad batch */
  const char *nocolon[] = {"winback"};
  assert_int_equal(lp_timers_schedule_batch(f->t, 0, 1, nocolon, due, NULL, err,
                                            sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "<kind>:<member key>"));
  char *big = lp_xmalloc(LP_TIMERS_PAYLOAD_MAX + 2);
  memset(big, 'x', LP_TIMERS_PAYLOAD_MAX + 1);
  big[LP_TIMERS_PAYLOAD_MAX + 1] = 0;
  const char *pl[] = {big};
  assert_int_equal(
      lp_timers_schedule_batch(f->t, 0, 1, ids, due, pl, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "payload"));
  free(big);
  int64_t far[] = {INT64_MAX};
  assert_int_equal(
      lp_timers_schedule_batch(f->t, 0, 1, ids, far, NULL, err, sizeof(err)),
      -1);
  assert_non_null(strstr(err, "out of range"));
  assert_int_equal(
      lp_timers_schedule_batch(f->t, -1, 1, ids, due, NULL, err, sizeof(err)),
      -1);
  struct lp_timers_claimed got;
  assert_int_equal(
      lp_timers_claim_due(f->t, 0, 5, 0, "A", 100, &got, err, sizeof(err)), -1);
  assert_int_equal(lp_timers_claim_due(f->t, 0, 5, LP_TIMERS_CLAIM_MAX + 1, "A",
                                       100, &got, err, sizeof(err)),
                   -1);
  assert_int_equal(
      lp_timers_claim_due(f->t, 0, 5, 10, "", 100, &got, err, sizeof(err)), -1);
  assert_int_equal(
      lp_timers_claim_due(f->t, 0, 5, 10, "A", 0, &got, err, sizeof(err)), -1);
  assert_int_equal(got.n, 0);
  /* A record that is not ours in the data hash (in due and in flight)
   * is quarantined, named, and does not hold up the partition. */
  schedule1(f->t, 0, "winback:s:bad", 4, "");
  schedule1(f->t, 0, "winback:s:bad2", 1, "");
  schedule1(f->t, 0, "winback:s:good", 3, "ok");
  claim(f->t, 0, 1, 10, "A", 100, &got);
  assert_int_equal(got.n, 1);
  lp_timers_claimed_clear(&got);
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "redis-cli -p %d HSET %s:tm:0:data winback:s:bad garbage "
           "winback:s:bad2 '1|x|' >/dev/null",
           redis_port, f->ns);
  assert_int_equal(system(cmd), 0);
  usleep(150 * 1000); /* bad2's claim expires: it is read again */
  claim(f->t, 0, 5, 10, "A", 100, &got);
  assert_int_equal(got.n_quarantined, 2);
  assert_string_equal(got.quarantined[0], "winback:s:bad2");
  assert_string_equal(got.quarantined[1], "winback:s:bad");
  assert_int_equal(got.n, 1);
  assert_string_equal(got.timers[0].id, "winback:s:good");
  lp_timers_claimed_clear(&got);
  snprintf(cmd, sizeof(cmd),
           "test \"$(redis-cli -p %d HGET %s:tm:0:bad winback:s:bad)\" = "
           "garbage",
           redis_port, f->ns);
  assert_int_equal(system(cmd), 0);
  /* Redis unreachable: an error naming it. */
  struct lp_timers_config c = {"127.0.0.1", 1, "x", 500};
  struct lp_timers *down = lp_timers_new(&c, err, sizeof(err));
  assert_non_null(down);
  assert_int_equal(
      lp_timers_schedule_batch(down, 0, 1, ids, due, NULL, err, sizeof(err)),
      -1);
  assert_non_null(strstr(err, "127.0.0.1:1"));
  lp_timers_destroy(&down);
  struct lp_timers_config nons = {"127.0.0.1", 1, "a b", 500};
  assert_null(lp_timers_new(&nons, err, sizeof(err)));
}

/* The due a timer fired at is remembered at its ack: scheduling it again
 * there (a redelivered record) is a no-op while the fired check is on,
 * another due is scheduled; the plain (check off) path schedules, moves
 * a claim and acks like the script; pipelined calls across partitions
 * take one round trip. */
static void test_fired_memory_plain_pipeline(void **state) {
  struct fixture *f = *state;
  char err[256];
  schedule1(f->t, 5, "winback:s1:r1", 100, "p");
  struct lp_timers_claimed got;
  claim(f->t, 5, 1000, 10, "A", 30000, &got);
  assert_int_equal(got.n, 1);
  size_t acked = 0;
  got.timers[0].due_ms = 90; /* the caller fired it at a corrected due */
  assert_int_equal(
      lp_timers_ack(f->t, 5, got.timers, 1, "A", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 1);
  lp_timers_claimed_clear(&got);
  schedule1(f->t, 5, "winback:s1:r1", 90, "p"); /* fired there: no-op */
  assert_int_equal(pending(f->t, 5), 0);
  schedule1(f->t, 5, "winback:s1:r1", 100, "p"); /* another due */
  assert_int_equal(pending(f->t, 5), 1);

  /* Plain schedule: moves the claimed timer out of flight; the old
   * claim's ack is a no-op, the new schedule is claimed and acked. */
  lp_timers_set_check_fired(f->t, 0);
  schedule1(f->t, 6, "winback:s1:r2", 10, "x");
  claim(f->t, 6, 1000, 10, "A", 30000, &got);
  assert_int_equal(got.n, 1);
  schedule1(f->t, 6, "winback:s1:r2", 20, "y");
  assert_int_equal(
      lp_timers_ack(f->t, 6, got.timers, 1, "A", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 0);
  lp_timers_claimed_clear(&got);
  claim(f->t, 6, 1000, 10, "B", 30000, &got);
  assert_int_equal(got.n, 1);
  assert_int_equal(got.timers[0].due_ms, 20);
  assert_string_equal(got.timers[0].payload, "y");
  assert_int_equal(
      lp_timers_ack(f->t, 6, got.timers, 1, "B", &acked, err, sizeof(err)), 0);
  assert_int_equal(acked, 1);
  lp_timers_claimed_clear(&got);
  schedule1(f->t, 6, "winback:s1:r2", 20, "y"); /* check off: scheduled */
  assert_int_equal(pending(f->t, 6), 1);
  lp_timers_set_check_fired(f->t, 1);

  /* Pipelined: schedules and a cancel on two partitions, one round trip. */
  uint64_t before = lp_timers_round_trips(f->t);
  lp_timers_pipeline_begin(f->t);
  schedule1(f->t, 7, "cart:s1:a", 5, NULL);
  lp_timers_set_check_fired(f->t, 0);
  schedule1(f->t, 8, "cart:s1:b", 6, NULL);
  lp_timers_set_check_fired(f->t, 1);
  const char *c[] = {"cart:s1:a"};
  size_t cancelled = 99;
  assert_int_equal(
      lp_timers_cancel_batch(f->t, 7, 1, c, &cancelled, err, sizeof(err)), 0);
  assert_int_equal(lp_timers_pipeline_end(f->t, err, sizeof(err)), 0);
  assert_int_equal(lp_timers_round_trips(f->t) - before, 1);
  assert_int_equal(cancelled, 1);
  assert_int_equal(pending(f->t, 7), 0);
  assert_int_equal(pending(f->t, 8), 1);
}

static int run_semantics(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_schedule_move_cancel, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_claim_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ack_owner_and_generation, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ack_move_and_next_due, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fired_memory_plain_pipeline, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* ---- load, fire, bench ---- */

#define BATCH 1000
#define BASE_DUE INT64_C(1700000000000)

static double now_s(void) {
  return (double)lp_mono_us() / 1e6;
}

/* Timer i of n: partition i % parts, a due spread over a year. */
static int load(struct lp_timers *t, size_t n, int parts) {
  char err[256];
  char(*idbuf)[48] = lp_xmalloc(BATCH * sizeof(*idbuf));
  const char **ids = lp_xmalloc(BATCH * sizeof(*ids));
  const char **pl = lp_xmalloc(BATCH * sizeof(*pl));
  int64_t *due = lp_xmalloc(BATCH * sizeof(*due));
  int rc = 0;
  for (int p = 0; p < parts && rc == 0; p++) {
    size_t k = 0;
    for (size_t i = (size_t)p; i < n && rc == 0; i += (size_t)parts) {
      snprintf(idbuf[k], sizeof(idbuf[k]), "winback:shop%zu:c%zu", i % 7, i);
      ids[k] = idbuf[k];
      due[k] = BASE_DUE + (int64_t)((i * 7919) % 31536000) * 1000;
      pl[k] = "d=60";
      if (++k == BATCH || i + (size_t)parts >= n) {
        if (lp_timers_schedule_batch(t, p, k, ids, due, pl, err, sizeof(err))) {
          fprintf(stderr, "load: %s\n", err);
          rc = -1;
        }
        k = 0;
      }
    }
  }
  free(idbuf);
  free(ids);
  free(pl);
  free(due);
  return rc;
}

/* Writes each timer's output id, one a line, and flushes. */
static void record(FILE *f, const struct lp_timers_claimed *c) {
  char oid[LP_TIMERS_ID_MAX + 32];
  for (size_t i = 0; i < c->n; i++) {
    lp_timer_output_id(&c->timers[i], oid, sizeof(oid));
    fprintf(f, "%s\n", oid);
  }
  fflush(f);
}

static int fire(struct lp_timers *t, int parts, const char *owner, long lease,
                const char *out, long die_after) {
  char err[256], path[512];
  snprintf(path, sizeof(path), "%s.fired", out);
  FILE *fired = fopen(path, "w");
  snprintf(path, sizeof(path), "%s.acked", out);
  FILE *acked = fopen(path, "w");
  if (!fired || !acked) {
    fprintf(stderr, "fire: cannot write %s\n", path);
    return 1;
  }
  long n_fired = 0;
  int rc = 0;
  double deadline = now_s() + 50;
  for (;;) {
    size_t left = 0, got_any = 0;
    for (int p = 0; p < parts; p++) {
      struct lp_timers_claimed c;
      if (lp_timers_claim_due(t, p, INT64_MAX / 2, 200, owner, lease, &c, err,
                              sizeof(err))) {
        fprintf(stderr, "fire %s: %s\n", owner, err);
        rc = 1;
        goto out;
      }
      record(fired, &c);
      n_fired += (long)c.n;
      got_any += c.n;
      if (die_after > 0 && n_fired >= die_after)
        kill(getpid(), SIGKILL); /* claimed, produced, not acked */
      size_t k;
      if (lp_timers_ack(t, p, c.timers, c.n, owner, &k, err, sizeof(err))) {
        fprintf(stderr, "fire %s: %s\n", owner, err);
        lp_timers_claimed_clear(&c);
        rc = 1;
        goto out;
      }
      /* Only what this claimant still held counts as its ack. */
      if (k == c.n)
        record(acked, &c);
      else
        fprintf(stderr, "fire %s: %zu of %zu acks were not ours\n", owner,
                c.n - k, c.n);
      lp_timers_claimed_clear(&c);
      size_t m;
      if (lp_timers_pending(t, p, &m, err, sizeof(err))) {
        fprintf(stderr, "fire %s: %s\n", owner, err);
        rc = 1;
        goto out;
      }
      left += m;
    }
    if (left == 0)
      break;
    if (now_s() > deadline) {
      fprintf(stderr, "fire %s: %zu timers left at the deadline\n", owner,
              left);
      rc = 1;
      break;
    }
    if (got_any == 0)
      usleep(50 * 1000); /* others' claims: wait for ack or lease */
  }
out:
  fclose(fired);
  fclose(acked);
  fprintf(stderr, "fire %s: fired %ld\n", owner, n_fired);
  return rc;
}

static int bench(struct lp_timers *t, size_t n, int parts) {
  char err[256];
  double t0 = now_s();
  if (load(t, n, parts))
    return 1;
  double t1 = now_s();
  size_t fired = 0;
  for (int p = 0; p < parts; p++) {
    for (;;) {
      struct lp_timers_claimed c;
      if (lp_timers_claim_due(t, p, INT64_MAX / 2, LP_TIMERS_CLAIM_MAX / 4,
                              "bench", 30000, &c, err, sizeof(err)) ||
          lp_timers_ack(t, p, c.timers, c.n, "bench", NULL, err, sizeof(err))) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
      }
      fired += c.n;
      size_t got = c.n;
      lp_timers_claimed_clear(&c);
      if (got == 0)
        break;
    }
  }
  double t2 = now_s();
  if (fired != n) {
    fprintf(stderr, "bench: fired %zu of %zu\n", fired, n);
    return 1;
  }
  fprintf(stderr,
          "bench: timers %zu over %d partitions: schedule %.0f/s, claim+ack "
          "%.0f/s, %llu round trips\n",
          n, parts, (double)n / (t1 - t0), (double)n / (t2 - t1),
          (unsigned long long)lp_timers_round_trips(t));
  printf("timers_per_s=%.0f\n", 2.0 * (double)n / (t2 - t0));
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3 || (redis_port = atoi(argv[1])) <= 0) {
    fprintf(stderr, "usage: timers_race REDIS_PORT semantics|load|fire|bench "
                    "...\n");
    return 2;
  }
  const char *mode = argv[2];
  if (strcmp(mode, "semantics") == 0)
    return run_semantics();
  if (argc < 4) {
    fprintf(stderr, "timers_race %s: namespace missing\n", mode);
    return 2;
  }
  struct lp_timers *t = open_store(argv[3]);
  int rc = 2;
  if (strcmp(mode, "load") == 0 && argc == 6)
    rc = load(t, strtoul(argv[4], NULL, 10), atoi(argv[5])) ? 1 : 0;
  else if (strcmp(mode, "fire") == 0 && (argc == 8 || argc == 9))
    rc = fire(t, atoi(argv[4]), argv[5], atol(argv[6]), argv[7],
              argc == 9 ? atol(argv[8]) : 0);
  else if (strcmp(mode, "bench") == 0 && argc == 6)
    rc = bench(t, strtoul(argv[4], NULL, 10), atoi(argv[5]));
  else
    fprintf(stderr, "timers_race %s: wrong arguments\n", mode);
  lp_timers_destroy(&t);
  return rc;
}
