/*
 * exec_store.c — the executor's Redis state against a real redis-server:
 * claims and their leases (a second claim waits, an expired one is taken
 * over), finished records answering redeliveries, a campaign budget
 * shared by two instances (exactly the budget is reserved, a failure
 * returns its share), member and frequency caps, kill switches, approval
 * parking, unknown members, and the shared rate schedule.
 *
 * Run by test_exec_store.sh with the Redis port as argument; each case
 * uses its own namespace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <hiredis.h>

#include "exec_store.h"
#include "util.h"

static int redis_port;
static int ns_counter;
static struct lp_exec_store *store_a; /* claims with token "A", the other "B" */

static const char *token_of(const struct lp_exec_store *s) {
  return s == store_a ? "A" : "B";
}

struct fixture {
  char ns[32];
  struct lp_exec_store *a, *b; /* two executor instances */
  struct lp_exec_store_config conf;
  redisContext *redis;
};

static struct lp_exec_store *open_store(struct fixture *f) {
  char err[256];
  struct lp_exec_store *s = lp_exec_store_new(&f->conf, err, sizeof(err));
  if (!s)
    fail_msg("store: %s", err);
  return s;
}

/* Every member has a profile unless the case says otherwise. */
static void give_profile(struct fixture *f, const char *customer) {
  redisReply *r =
      redisCommand(f->redis, "SET %s:p:{shop:%s} x", f->ns, customer);
  assert_non_null(r);
  freeReplyObject(r);
}

static int setup_with(void **state, int64_t budget, int64_t member_cap,
                      long freq_cap, long lease_ms) {
  struct fixture *f = lp_xcalloc(1, sizeof(*f));
  snprintf(f->ns, sizeof(f->ns), "ex%d-%ld", ++ns_counter, (long)time(NULL));
  f->conf = (struct lp_exec_store_config){.host = "127.0.0.1",
                                          .port = redis_port,
                                          .ns = f->ns,
                                          .profile_ns = f->ns,
                                          .timeout_ms = 2000,
                                          .lease_ms = lease_ms,
                                          .record_ttl_s = 3600,
                                          .member_cap = member_cap,
                                          .member_period_s = 86400,
                                          .frequency_cap = freq_cap,
                                          .frequency_period_s = 86400,
                                          .default_budget = budget,
                                          .campaign_period_s = 86400,
                                          .approval_ttl_s = 3600};
  f->redis = redisConnect("127.0.0.1", redis_port);
  assert_true(f->redis && !f->redis->err);
  f->a = open_store(f);
  f->b = open_store(f);
  store_a = f->a;
  for (int i = 0; i < 40; i++) {
    char c[16];
    snprintf(c, sizeof(c), "m%d", i);
    give_profile(f, c);
  }
  *state = f;
  return 0;
}

static int setup(void **state) {
  return setup_with(state, 0, 0, 0, 60000);
}
static int setup_budget(void **state) {
  return setup_with(state, 10000000, 0, 0, 60000); /* 10.00 */
}
static int setup_caps(void **state) {
  return setup_with(state, 0, 3000000, 2, 60000); /* 3.00, 2 per rule */
}
static int setup_expiring(void **state) {
  int rc = setup_with(state, 10000000, 0, 0, 60000);
  struct fixture *f = *state;
  f->conf.approval_ttl_s = 1;
  lp_exec_store_destroy(&f->a);
  lp_exec_store_destroy(&f->b);
  f->a = open_store(f);
  f->b = open_store(f);
  store_a = f->a;
  return rc;
}
static int setup_short_lease(void **state) {
  return setup_with(state, 0, 0, 0, 200);
}

static int teardown(void **state) {
  struct fixture *f = *state;
  lp_exec_store_destroy(&f->a);
  lp_exec_store_destroy(&f->b);
  redisFree(f->redis);
  free(f);
  return 0;
}

/* A decision of rule for member, costing cost micros (strings static). */
struct dec {
  struct lp_reward_decision d;
  char id[40], customer[16];
};

static void make(struct dec *x, int n, const char *customer, const char *rule,
                 int64_t cost) {
  memset(x, 0, sizeof(*x));
  snprintf(x->id, sizeof(x->id), "%032x", n);
  snprintf(x->customer, sizeof(x->customer), "%s", customer);
  x->d.decision_id = x->id;
  x->d.shop = "shop";
  x->d.customer_id = x->customer;
  x->d.rule_id = (char *)rule;
  x->d.estimated_cost_micros = cost;
  x->d.event_time_ms = 1709294400000LL;
}

static enum lp_exec_verdict begin1(struct lp_exec_store *s, struct dec *x,
                                   struct lp_exec_begin *out) {
  struct lp_exec_begin b;
  memset(&b, 0, sizeof(b));
  b.d = &x->d;
  b.campaign = x->d.rule_id;
  b.platform = "loyaltylion";
  b.check_member = 1;
  b.token = token_of(s);
  char err[256];
  if (lp_exec_store_begin(s, &b, 1, err, sizeof(err)))
    fail_msg("begin: %s", err);
  assert_false(b.failed);
  if (out)
    *out = b;
  return b.verdict;
}

static void finish1(struct lp_exec_store *s, struct dec *x, int done,
                    const char *ref) {
  struct lp_exec_finish f = {.d = &x->d,
                             .campaign = x->d.rule_id,
                             .done = done,
                             .platform = "loyaltylion",
                             .reference = ref,
                             .http_status = done ? 201 : 400,
                             .attempts = 1,
                             .token = token_of(s)};
  char err[256];
  if (lp_exec_store_finish(s, &f, 1, err, sizeof(err)))
    fail_msg("finish: %s", err);
  assert_false(f.not_inflight);
}

static void test_claim_then_final(void **state) {
  struct fixture *f = *state;
  struct dec x;
  make(&x, 1, "m1", "r", 0);
  struct lp_exec_begin b;
  assert_int_equal(begin1(f->a, &x, &b), LP_EXEC_CLAIMED);
  assert_int_equal(b.takeover, 0);
  /* The other instance (a rebalance) must wait for the lease. */
  assert_int_equal(begin1(f->b, &x, &b), LP_EXEC_BUSY);
  assert_true(b.busy_ms > 0 && b.busy_ms <= 60000);
  finish1(f->a, &x, 1, "tx-77");
  assert_int_equal(begin1(f->b, &x, &b), LP_EXEC_FINAL);
  assert_string_equal(b.state, "done");
  assert_string_equal(b.reference, "tx-77");
  assert_string_equal(b.done_platform, "loyaltylion");
  assert_int_equal(b.http_status, 201);
}

static void test_takeover_after_lease(void **state) {
  struct fixture *f = *state;
  struct dec x;
  make(&x, 2, "m1", "r", 0);
  assert_int_equal(begin1(f->a, &x, NULL), LP_EXEC_CLAIMED);
  struct timespec ts = {0, 300 * 1000000};
  nanosleep(&ts, NULL); /* the 200 ms lease runs out: A "died" */
  struct lp_exec_begin b;
  assert_int_equal(begin1(f->b, &x, &b), LP_EXEC_CLAIMED);
  assert_int_equal(b.takeover, 1);
  /* A, back from its stall, finds its claim lost and must not act. */
  char err0[256];
  struct lp_exec_renew rn[2] = {{&x.d, "A", 0}, {&x.d, "B", 0}};
  assert_int_equal(lp_exec_store_renew(f->a, rn, 2, err0, sizeof(err0)), 0);
  assert_true(rn[0].lost);
  assert_false(rn[1].lost);
  finish1(f->b, &x, 1, "tx-1");
  /* A's late finish changes nothing: B's outcome stands. */
  struct lp_exec_finish late = {.d = &x.d,
                                .campaign = "r",
                                .done = 0,
                                .platform = "loyaltylion",
                                .attempts = 1,
                                .token = "A"};
  char err[256];
  assert_int_equal(lp_exec_store_finish(f->a, &late, 1, err, sizeof(err)), 0);
  assert_true(late.not_inflight);
  assert_int_equal(begin1(f->a, &x, &b), LP_EXEC_FINAL);
  assert_string_equal(b.state, "done");
  assert_string_equal(b.reference, "tx-1");
}

/* Two instances alternate over 15 decisions of 1.00 under a 10.00
 * budget: exactly 10 are reserved; two failures return theirs. */
static void test_shared_budget(void **state) {
  struct fixture *f = *state;
  struct dec x[17];
  int claimed = 0, blocked = 0;
  for (int i = 0; i < 15; i++) {
    char c[16];
    snprintf(c, sizeof(c), "m%d", i);
    make(&x[i], 100 + i, c, "campaign-a", 1000000);
    struct lp_exec_begin b;
    enum lp_exec_verdict v = begin1(i % 2 ? f->b : f->a, &x[i], &b);
    if (v == LP_EXEC_CLAIMED)
      claimed++;
    else if (v == LP_EXEC_BLOCKED) {
      assert_string_equal(b.guardrail, "campaign_budget");
      blocked++;
    }
  }
  assert_int_equal(claimed, 10);
  assert_int_equal(blocked, 5);
  finish1(f->a, &x[0], 0, NULL); /* failed: its 1.00 returns */
  finish1(f->b, &x[1], 0, NULL);
  finish1(f->a, &x[2], 1, "ok");
  make(&x[15], 200, "m30", "campaign-a", 1000000);
  make(&x[16], 201, "m31", "campaign-a", 1000000);
  assert_int_equal(begin1(f->a, &x[15], NULL), LP_EXEC_CLAIMED);
  assert_int_equal(begin1(f->b, &x[16], NULL), LP_EXEC_CLAIMED);
  struct dec more;
  make(&more, 202, "m32", "campaign-a", 1000000);
  assert_int_equal(begin1(f->a, &more, NULL), LP_EXEC_BLOCKED);
  /* A per-campaign budget overrides the default. */
  char err[256];
  assert_int_equal(
      lp_exec_store_budget_set(f->a, "campaign-b", 1500000, err, sizeof(err)),
      0);
  struct dec y[2];
  make(&y[0], 300, "m1", "campaign-b", 1000000);
  make(&y[1], 301, "m2", "campaign-b", 1000000);
  assert_int_equal(begin1(f->a, &y[0], NULL), LP_EXEC_CLAIMED);
  assert_int_equal(begin1(f->b, &y[1], NULL), LP_EXEC_BLOCKED);
}

static void test_member_and_frequency_caps(void **state) {
  struct fixture *f = *state;
  struct dec x[4];
  struct lp_exec_begin b;
  make(&x[0], 400, "m1", "points", 2000000); /* 2.00 */
  make(&x[1], 401, "m1", "coupon", 2000000); /* over 3.00 together */
  assert_int_equal(begin1(f->a, &x[0], NULL), LP_EXEC_CLAIMED);
  assert_int_equal(begin1(f->b, &x[1], &b), LP_EXEC_BLOCKED);
  assert_string_equal(b.guardrail, "member_cap");
  /* Frequency: two per rule per member per period, cost or not. */
  make(&x[2], 402, "m2", "msg", 0);
  make(&x[3], 403, "m2", "msg", 0);
  assert_int_equal(begin1(f->a, &x[2], NULL), LP_EXEC_CLAIMED);
  assert_int_equal(begin1(f->a, &x[3], NULL), LP_EXEC_CLAIMED);
  struct dec third;
  make(&third, 404, "m2", "msg", 0);
  assert_int_equal(begin1(f->b, &third, &b), LP_EXEC_BLOCKED);
  assert_string_equal(b.guardrail, "frequency_cap");
  /* A blocked decision stays blocked when delivered again. */
  assert_int_equal(begin1(f->a, &third, &b), LP_EXEC_FINAL);
  assert_string_equal(b.state, "blocked");
  assert_string_equal(b.guardrail, "frequency_cap");
}

static void test_kill_switches(void **state) {
  struct fixture *f = *state;
  char err[256];
  assert_int_equal(lp_exec_store_kill_set(f->a, "rule:", "x", err, sizeof(err)),
                   -1);
  assert_int_equal(
      lp_exec_store_kill_set(f->a, "everything", "x", err, sizeof(err)), -1);
  assert_int_equal(
      lp_exec_store_kill_set(f->a, "rule:r1", "ops: bug 12", err, sizeof(err)),
      0);
  struct dec x[3];
  struct lp_exec_begin b;
  make(&x[0], 500, "m1", "r1", 0);
  make(&x[1], 501, "m1", "r2", 0);
  assert_int_equal(begin1(f->a, &x[0], &b), LP_EXEC_BLOCKED);
  assert_string_equal(b.guardrail, "kill_switch:rule:r1");
  assert_int_equal(begin1(f->a, &x[1], NULL), LP_EXEC_CLAIMED);
  assert_int_equal(lp_exec_store_kill_set(f->b, "platform:loyaltylion", NULL,
                                          err, sizeof(err)),
                   0);
  make(&x[2], 502, "m1", "r3", 0);
  assert_int_equal(begin1(f->a, &x[2], &b), LP_EXEC_BLOCKED);
  assert_string_equal(b.guardrail, "kill_switch:platform:loyaltylion");
  assert_int_equal(
      lp_exec_store_kill_clear(f->a, "platform:loyaltylion", err, sizeof(err)),
      0);
  struct dec y;
  make(&y, 503, "m1", "r3", 0);
  assert_int_equal(begin1(f->a, &y, NULL), LP_EXEC_CLAIMED);
}

static void test_approval_and_unknown_member(void **state) {
  struct fixture *f = *state;
  struct dec x;
  make(&x, 600, "m1", "big", 5000000);
  struct lp_exec_begin b;
  memset(&b, 0, sizeof(b));
  b.d = &x.d;
  b.campaign = "big";
  b.platform = "loyaltylion";
  b.needs_approval = 1;
  b.check_member = 1;
  b.decision_bytes = "\xc3\x01raw";
  b.decision_len = 6;
  char err[256];
  assert_int_equal(lp_exec_store_begin(f->a, &b, 1, err, sizeof(err)), 0);
  assert_int_equal(b.verdict, LP_EXEC_PENDING);
  redisReply *r =
      redisCommand(f->redis, "ZSCORE %s:approval:pending %s", f->ns, x.id);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  freeReplyObject(r);
  r = redisCommand(f->redis, "HGET %s:approval:d:%s d", f->ns, x.id);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_int_equal(r->len, 6);
  assert_memory_equal(r->str, "\xc3\x01raw", 6);
  freeReplyObject(r);
  assert_int_equal(begin1(f->b, &x, &b), LP_EXEC_FINAL);
  assert_string_equal(b.state, "pending");
  /* No profile: refused, and nothing recorded (it may arrive later). */
  struct dec u;
  make(&u, 601, "stranger", "r", 0);
  assert_int_equal(begin1(f->a, &u, NULL), LP_EXEC_UNKNOWN_MEMBER);
  give_profile(f, "stranger");
  assert_int_equal(begin1(f->a, &u, NULL), LP_EXEC_CLAIMED);
}

/* 5 requests/s, burst 1, shared by both instances: the n-th claim may
 * send about n * 200 ms from now. */
static void test_rate_schedule(void **state) {
  struct fixture *f = *state;
  int64_t waits[6];
  for (int i = 0; i < 6; i++) {
    struct dec x;
    char c[16];
    snprintf(c, sizeof(c), "m%d", i);
    make(&x, 700 + i, c, "r", 0);
    struct lp_exec_begin b;
    memset(&b, 0, sizeof(b));
    b.d = &x.d;
    b.campaign = "r";
    b.platform = "smile";
    b.rate_interval_us = 200000;
    b.rate_burst = 1;
    b.check_member = 1;
    char err[256];
    assert_int_equal(
        lp_exec_store_begin(i % 2 ? f->b : f->a, &b, 1, err, sizeof(err)), 0);
    assert_int_equal(b.verdict, LP_EXEC_CLAIMED);
    waits[i] = b.wait_ms;
  }
  assert_true(waits[0] <= 5);
  for (int i = 1; i < 6; i++) {
    int64_t want = i * 200;
    assert_true(waits[i] >= want - 50 && waits[i] <= want + 5);
  }
  assert_true(lp_exec_store_calls(f->a) + lp_exec_store_calls(f->b) >= 6);
}

static enum lp_exec_verdict park(struct fixture *f, struct dec *x) {
  struct lp_exec_begin b;
  memset(&b, 0, sizeof(b));
  b.d = &x->d;
  b.campaign = x->d.rule_id;
  b.platform = "loyaltylion";
  b.needs_approval = 1;
  b.check_member = 1;
  b.token = "A";
  b.decision_bytes = x->id; /* any bytes: the test reads them back */
  b.decision_len = strlen(x->id);
  char err[256];
  assert_int_equal(lp_exec_store_begin(f->a, &b, 1, err, sizeof(err)), 0);
  return b.verdict;
}

/* Approve and reject under a 10.00 budget: the approved one keeps its
 * reservation and is claimed without being counted again; the rejected
 * one's returns at once. Neither can be settled twice. */
static void test_approval_queue(void **state) {
  struct fixture *f = *state;
  char err[256];
  struct dec x[3];
  make(&x[0], 800, "m1", "big", 6000000);
  make(&x[1], 801, "m2", "big", 4000000);
  assert_int_equal(park(f, &x[0]), LP_EXEC_PENDING);
  assert_int_equal(park(f, &x[1]), LP_EXEC_PENDING);
  make(&x[2], 802, "m3", "big", 1000000); /* 6 + 4 + 1 > 10 */
  assert_int_equal(begin1(f->a, &x[2], NULL), LP_EXEC_BLOCKED);
  struct lp_exec_approval *list;
  size_t n;
  assert_int_equal(lp_exec_store_approvals(f->b, &list, &n, err, sizeof(err)),
                   0);
  assert_int_equal(n, 2);
  assert_string_equal(list[0].rule, "big");
  assert_true(list[0].until_ms > list[0].parked_ms);
  assert_string_equal(list[0].fate, "");
  for (size_t i = 0; i < n; i++)
    lp_exec_approval_clear(&list[i]);
  free(list);
  assert_int_equal(lp_exec_store_settle(f->b, x[0].id, "approved", "alice", err,
                                        sizeof(err)),
                   0);
  assert_int_equal(
      lp_exec_store_settle(f->b, x[1].id, "rejected", "bob", err, sizeof(err)),
      0);
  assert_int_equal(
      lp_exec_store_settle(f->b, x[1].id, "approved", "eve", err, sizeof(err)),
      -1);
  assert_non_null(strstr(err, "not pending"));
  assert_int_equal(
      lp_exec_store_settle(f->b, "nope", "approved", "eve", err, sizeof(err)),
      -1);
  /* Bob's 4.00 came back: a 1.00 decision fits again (6 + 1 <= 10). */
  struct dec y;
  make(&y, 803, "m4", "big", 1000000);
  assert_int_equal(begin1(f->a, &y, NULL), LP_EXEC_CLAIMED);
  /* An executor takes both; a second sees nothing while they are hidden. */
  if (lp_exec_store_take_ready(f->a, 10, 60000, &list, &n, err, sizeof(err)))
    fail_msg("take_ready: %s", err);
  assert_int_equal(n, 2);
  struct lp_exec_approval *none;
  size_t n2;
  assert_int_equal(
      lp_exec_store_take_ready(f->b, 10, 60000, &none, &n2, err, sizeof(err)),
      0);
  assert_int_equal(n2, 0);
  free(none);
  for (size_t i = 0; i < n; i++) {
    const struct lp_exec_approval *a = &list[i];
    int is0 = strcmp(a->decision_id, x[0].id) == 0;
    assert_string_equal(a->fate, is0 ? "approved" : "rejected");
    assert_string_equal(a->actor, is0 ? "alice" : "bob");
    assert_int_equal(a->decision_len, strlen(is0 ? x[0].id : x[1].id));
  }
  for (size_t i = 0; i < n; i++)
    lp_exec_approval_clear(&list[i]);
  free(list);
  struct lp_exec_begin b;
  assert_int_equal(begin1(f->a, &x[0], &b), LP_EXEC_CLAIMED);
  finish1(f->a, &x[0], 1, "tx-9");
  assert_int_equal(begin1(f->b, &x[1], &b), LP_EXEC_FINAL);
  assert_string_equal(b.state, "rejected");
  assert_int_equal(lp_exec_store_ready_done(f->a, x[0].id, err, sizeof(err)),
                   0);
  assert_int_equal(lp_exec_store_ready_done(f->a, x[1].id, err, sizeof(err)),
                   0);
}

/* A parked decision nobody settles expires and returns its budget. */
static void test_approval_expiry(void **state) {
  struct fixture *f = *state;
  char err[256];
  struct dec x;
  make(&x, 900, "m1", "big", 9000000);
  assert_int_equal(park(f, &x), LP_EXEC_PENDING);
  size_t expired;
  assert_int_equal(
      lp_exec_store_expire_due(f->a, 10, &expired, err, sizeof(err)), 0);
  assert_int_equal(expired, 0); /* not yet */
  struct timespec ts = {1, 200 * 1000000};
  nanosleep(&ts, NULL);
  assert_int_equal(
      lp_exec_store_expire_due(f->b, 10, &expired, err, sizeof(err)), 0);
  assert_int_equal(expired, 1);
  assert_int_equal(
      lp_exec_store_settle(f->a, x.id, "approved", "late", err, sizeof(err)),
      -1);
  struct dec y;
  make(&y, 901, "m2", "big", 9000000); /* fits: the 9.00 came back */
  assert_int_equal(begin1(f->a, &y, NULL), LP_EXEC_CLAIMED);
  struct lp_exec_approval *list;
  size_t n;
  assert_int_equal(
      lp_exec_store_take_ready(f->a, 10, 1000, &list, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 1);
  assert_string_equal(list[0].fate, "expired");
  lp_exec_approval_clear(&list[0]);
  free(list);
}

/* A claim given back unsent (shutdown) returns its reservation and
 * leaves no record: the next delivery starts afresh. */
static void test_abandon(void **state) {
  struct fixture *f = *state;
  char err[256];
  struct dec x, y;
  make(&x, 1000, "m1", "c1", 6000000); /* 6.00 of a 10.00 budget */
  assert_int_equal(begin1(f->a, &x, NULL), LP_EXEC_CLAIMED);
  struct lp_exec_finish ab = {.d = &x.d,
                              .campaign = "c1",
                              .outcome = LP_EXEC_ABANDON,
                              .platform = "loyaltylion",
                              .token = "A"};
  assert_int_equal(lp_exec_store_finish(f->a, &ab, 1, err, sizeof(err)), 0);
  assert_false(ab.not_inflight);
  make(&y, 1001, "m2", "c1", 6000000); /* fits only if the 6.00 came back */
  assert_int_equal(begin1(f->b, &y, NULL), LP_EXEC_CLAIMED);
  struct lp_exec_begin b;
  assert_int_equal(begin1(f->b, &x, &b), LP_EXEC_BLOCKED); /* fresh: 12 > 10 */
  assert_string_equal(b.guardrail, "campaign_budget");
}

/* A kill switch set while a decision waited for approval blocks it when
 * it is taken, and returns its reservation. */
static void test_approved_then_killed(void **state) {
  struct fixture *f = *state;
  char err[256];
  struct dec x, y;
  make(&x, 1100, "m1", "big", 8000000);
  assert_int_equal(park(f, &x), LP_EXEC_PENDING);
  assert_int_equal(
      lp_exec_store_settle(f->a, x.id, "approved", "alice", err, sizeof(err)),
      0);
  assert_int_equal(
      lp_exec_store_kill_set(f->a, "rule:big", "ops", err, sizeof(err)), 0);
  struct lp_exec_begin b;
  assert_int_equal(begin1(f->b, &x, &b), LP_EXEC_BLOCKED);
  assert_string_equal(b.guardrail, "kill_switch:rule:big");
  assert_int_equal(lp_exec_store_kill_clear(f->a, "rule:big", err, sizeof(err)),
                   0);
  make(&y, 1101, "m2", "big", 8000000); /* fits: the 8.00 came back */
  assert_int_equal(begin1(f->a, &y, NULL), LP_EXEC_CLAIMED);
}

/* A score sync of member m with these scores at event time t. */
struct sync_dec {
  struct dec x;
  struct lp_feature attrs[4];
  char p[16], c[24];
};

static void make_sync(struct sync_dec *s, int n, const char *p, const char *c,
                      const char *segment, const char *churn, int64_t t) {
  make(&s->x, n, "m7", "score-sync", 0);
  s->x.d.action.kind = LP_ACTION_SCORE_SYNC;
  snprintf(s->p, sizeof(s->p), "%s", p);
  snprintf(s->c, sizeof(s->c), "%s", c);
  s->attrs[0] = (struct lp_feature){"loyalty_p_alive", s->p};
  s->attrs[1] = (struct lp_feature){"loyalty_clv_12m", s->c};
  s->attrs[2] = (struct lp_feature){"loyalty_segment", (char *)segment};
  s->attrs[3] = (struct lp_feature){"loyalty_churn_risk", (char *)churn};
  s->x.d.action.attributes = s->attrs;
  s->x.d.action.n_attributes = 4;
  s->x.d.event_time_ms = t;
}

/* Score syncs: the first goes; one whose scores moved less than the
 * thresholds (P(alive) 0.05, CLV 10%) with segment and band unchanged is
 * blocked as unchanged; a move past either threshold, or a new segment,
 * goes; one older than the last sync done is blocked; and a sync that
 * failed does not count as the last sync. */
static void test_score_sync_gate(void **state) {
  struct fixture *f = *state;
  f->conf.sync_min_p_alive_micros = 50000;
  f->conf.sync_min_clv_ppm = 100000;
  lp_exec_store_destroy(&f->a);
  f->a = open_store(f);
  store_a = f->a;
  const int64_t t0 = 1709294400000LL;
  struct lp_exec_begin b;
  struct sync_dec s;
  make_sync(&s, 901, "0.800000", "1000.00", "regular", "low", t0);
  assert_int_equal(begin1(f->a, &s.x, &b), LP_EXEC_CLAIMED);
  finish1(f->a, &s.x, 1, "ok");
  make_sync(&s, 902, "0.830000", "1080.00", "regular", "low", t0 + 1000);
  assert_int_equal(begin1(f->a, &s.x, &b), LP_EXEC_BLOCKED);
  assert_string_equal(b.guardrail, "score_sync:unchanged");
  make_sync(&s, 903, "0.860000", "1000.00", "regular", "low", t0 + 2000);
  assert_int_equal(begin1(f->a, &s.x, &b), LP_EXEC_CLAIMED);
  /* Failed: the last sync stays the first one. */
  finish1(f->a, &s.x, 0, "");
  make_sync(&s, 904, "0.800000", "1150.00", "regular", "low", t0 + 3000);
  assert_int_equal(begin1(f->a, &s.x, &b), LP_EXEC_CLAIMED);
  finish1(f->a, &s.x, 1, "ok");
  make_sync(&s, 905, "0.800000", "1150.00", "premium_enthusiast", "low",
            t0 + 4000);
  assert_int_equal(begin1(f->a, &s.x, &b), LP_EXEC_CLAIMED);
  finish1(f->a, &s.x, 1, "ok");
  make_sync(&s, 906, "0.100000", "10.00", "at_risk_high_value", "high",
            t0 + 500);
  assert_int_equal(begin1(f->a, &s.x, &b), LP_EXEC_BLOCKED);
  assert_string_equal(b.guardrail, "score_sync:older_than_last_sync");
  /* A redelivery of a blocked one answers from its record. */
  make_sync(&s, 902, "0.830000", "1080.00", "regular", "low", t0 + 1000);
  assert_int_equal(begin1(f->a, &s.x, &b), LP_EXEC_FINAL);
  assert_string_equal(b.state, "blocked");
  redisReply *r = redisCommand(f->redis, "HGET %s:sync:{shop:m7} s", f->ns);
  assert_non_null(r);
  assert_string_equal(r->str, "premium_enthusiast");
  freeReplyObject(r);
}

/* One score sync of a member at a time: while one is claimed another is
 * busy (so their writes cannot overtake each other at the platform);
 * once the first finishes — done or failed — the next may go, and an
 * older one than the one done is refused. */
static void test_score_sync_one_at_a_time(void **state) {
  struct fixture *f = *state;
  const int64_t t0 = 1709294400000LL;
  struct lp_exec_begin b;
  struct sync_dec a, n;
  make_sync(&a, 911, "0.500000", "100.00", "regular", "medium", t0 + 100);
  make_sync(&n, 912, "0.900000", "900.00", "premium_enthusiast", "low",
            t0 + 200);
  assert_int_equal(begin1(f->a, &a.x, &b), LP_EXEC_CLAIMED);
  assert_int_equal(begin1(f->b, &n.x, &b), LP_EXEC_BUSY);
  assert_true(b.busy_ms > 0);
  finish1(f->a, &a.x, 0, ""); /* failed: the mark goes all the same */
  assert_int_equal(begin1(f->b, &n.x, &b), LP_EXEC_CLAIMED);
  finish1(f->b, &n.x, 1, "ok");
  make_sync(&a, 913, "0.500000", "100.00", "regular", "medium", t0 + 150);
  assert_int_equal(begin1(f->a, &a.x, &b), LP_EXEC_BLOCKED);
  assert_string_equal(b.guardrail, "score_sync:older_than_last_sync");
}

int main(int argc, char **argv) {
  if (argc != 2 || (redis_port = atoi(argv[1])) <= 0) {
    fprintf(stderr, "usage: exec_store REDIS_PORT\n");
    return 2;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_claim_then_final, setup, teardown),
      cmocka_unit_test_setup_teardown(test_takeover_after_lease,
                                      setup_short_lease, teardown),
      cmocka_unit_test_setup_teardown(test_shared_budget, setup_budget,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_member_and_frequency_caps,
                                      setup_caps, teardown),
      cmocka_unit_test_setup_teardown(test_kill_switches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_approval_and_unknown_member, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_rate_schedule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_approval_queue, setup_budget,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_approval_expiry, setup_expiring,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_abandon, setup_budget, teardown),
      cmocka_unit_test_setup_teardown(test_approved_then_killed, setup_budget,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_score_sync_gate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_score_sync_one_at_a_time, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
