/*
 * store_race.c — the profile store against a real redis-server when
 * instances race and when two batches are in flight on one connection:
 * a redelivered event finds its memo, a lost compare-and-set is re-run
 * from fresh reads, a racing instance's memo wins, and a lost race in the
 * older of two pipelined batches drops and re-reads the newer one's
 * reads; activity events the same way, and an order consuming the cart.
 * Every case checks the final profile (each event applied once) and the
 * before-state the caller was finally given.
 *
 * Run by test_store_race.sh with the Redis port as argument; each case
 * uses its own namespace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis.h>

#include "profile_store.h"
#include "util.h"

static int redis_port;
static int ns_counter;

struct fixture {
  char ns[32];
  struct lp_profile_store *a, *b; /* two instances of one processor */
};

static struct lp_profile_store *open_store(const char *ns) {
  char err[256];
  struct lp_profile_store_config c = {"127.0.0.1", redis_port,        ns, 3600,
                                      2000,        LP_MAX_AFFINITIES, 0,  NULL};
  struct lp_profile_store *s = lp_profile_store_new(&c, err, sizeof(err));
  if (!s)
    fail_msg("store: %s", err);
  return s;
}

static int setup(void **state) {
  struct fixture *f = lp_xcalloc(1, sizeof(*f));
  snprintf(f->ns, sizeof(f->ns), "race%d", ++ns_counter);
  f->a = open_store(f->ns);
  f->b = open_store(f->ns);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  lp_profile_store_destroy(&f->a);
  lp_profile_store_destroy(&f->b);
  free(f);
  return 0;
}

/* A created order of one 10.00 line item (total = units * 10.00). */
static struct lp_order_event order(const char *event_id, const char *order_id,
                                   int units, int64_t day) {
  struct lp_order_event ev = {0};
  ev.event_id = lp_xstrdup(event_id);
  ev.shop = lp_xstrdup("race-shop");
  ev.order_id = lp_xstrdup(order_id);
  ev.customer_id = lp_xstrdup("m1");
  ev.event_time_ms = 1700000000000LL + day * 86400000LL;
  ev.status = LP_ORDER_CREATED;
  ev.currency = lp_xstrdup("EUR");
  ev.total_micros = units * 10000000LL;
  ev.subtotal_micros = ev.total_micros;
  ev.line_items = lp_xcalloc(1, sizeof(*ev.line_items));
  ev.n_line_items = 1;
  ev.line_items[0].category = lp_xstrdup("coffee");
  ev.line_items[0].brand = lp_xstrdup("Acme");
  ev.line_items[0].quantity = units;
  ev.line_items[0].unit_price_micros = 10000000LL;
  return ev;
}

/* Counts known() calls per op and keeps the last before-state seen. */
struct seen {
  int calls[8];
  int64_t orders[8], spend[8];
};

static void on_known(void *opaque, size_t i, const struct lp_store_op *op) {
  struct seen *s = opaque;
  assert_true(i < 8);
  s->calls[i]++;
  s->orders[i] = op->before.order_count;
  s->spend[i] = op->before.lifetime_spend_micros;
}

static void apply(struct lp_profile_store *s, struct lp_order_event *ev,
                  size_t n, struct seen *seen) {
  struct lp_store_op ops[8];
  memset(ops, 0, sizeof(ops));
  for (size_t i = 0; i < n; i++)
    ops[i].order = &ev[i];
  struct lp_store_callbacks cb = {NULL, on_known, seen};
  assert_int_equal(lp_profile_store_apply(s, ops, n, NULL, &cb), 0);
  for (size_t i = 0; i < n; i++) {
    assert_false(ops[i].failed);
    lp_profile_clear(&ops[i].before);
  }
}

static void expect_profile(struct lp_profile_store *s, int64_t orders,
                           int64_t spend_units) {
  struct lp_profile p;
  char err[256];
  if (lp_profile_store_get(s, "race-shop", "m1", &p, err, sizeof(err)))
    fail_msg("get: %s", err);
  assert_int_equal(p.order_count, orders);
  assert_int_equal(p.lifetime_spend_micros, spend_units * 10000000LL);
  lp_profile_clear(&p);
}

static void clear_all(struct lp_order_event *ev, size_t n) {
  for (size_t i = 0; i < n; i++)
    lp_order_event_clear(&ev[i]);
}

/* A reads op's member, then B applies interloper to it, then A applies
 * op: the race every rebalance can bring. */
static void race(struct fixture *f, struct lp_store_op *op, struct seen *sa,
                 struct lp_order_event *interloper, struct seen *sb) {
  struct lp_store_callbacks cb = {NULL, on_known, sa};
  lp_profile_store_start(f->a, 0, op, 1, &cb); /* A's reads run now */
  apply(f->b, interloper, 1, sb);
  assert_int_equal(lp_profile_store_advance(f->a, 0, NULL), 0);
  assert_int_equal(lp_profile_store_finish(f->a, 0, NULL), 0);
  assert_false(op->failed);
}

/* The same event through the other instance: memo found, same before. */
static void test_redelivery_other_instance(void **state) {
  struct fixture *f = *state;
  struct lp_order_event ev[2] = {order("e1", "o1", 1, 0),
                                 order("e2", "o2", 2, 1)};
  struct seen sa = {0}, sb = {0};
  apply(f->a, ev, 2, &sa);
  apply(f->b, &ev[1], 1, &sb);       /* e2 again, after e2 */
  assert_int_equal(sb.orders[0], 1); /* the state before e2, not after */
  assert_int_equal(sb.spend[0], sa.spend[1]);
  expect_profile(f->a, 2, 3);
  clear_all(ev, 2);
}

/* A reads, B writes the member, A's compare-and-set loses and re-runs. */
static void test_lost_compare_and_set(void **state) {
  struct fixture *f = *state;
  struct lp_order_event ea = order("ea", "oa", 1, 0);
  struct lp_order_event eb = order("eb", "ob", 4, 0);
  struct lp_store_op op = {.order = &ea};
  struct seen sa = {0}, sb = {0};
  race(f, &op, &sa, &eb, &sb); /* B changes the member under A */
  assert_int_equal(sa.calls[0],
                   2); /* speculative, then the state that stands */
  assert_int_equal(op.before.order_count, 1); /* B's order was first */
  assert_int_equal(sa.spend[0], 4 * 10000000LL);
  lp_profile_clear(&op.before);
  expect_profile(f->a, 2, 5);
  clear_all(&ea, 1);
  clear_all(&eb, 1);
}

/* Both instances apply the same event; the one that loses takes the
 * winner's memo. */
static void test_racing_duplicate(void **state) {
  struct fixture *f = *state;
  struct lp_order_event e0 = order("e0", "o0", 3, 0);
  struct lp_order_event e = order("dup", "od", 2, 1);
  struct seen s0 = {0}, sa = {0}, sb = {0};
  apply(f->a, &e0, 1, &s0);
  struct lp_store_op op = {.order = &e};
  race(f, &op, &sa, &e, &sb); /* B applies the same event under A */
  assert_int_equal(op.before.order_count, 1);
  assert_int_equal(op.before.lifetime_spend_micros, sb.spend[0]);
  lp_profile_clear(&op.before);
  expect_profile(f->a, 2, 5);
  clear_all(&e0, 1);
  clear_all(&e, 1);
}

/* Two pipelined batches of one member on one connection give what two
 * sequential applies give, including each event's before-state. */
static void test_two_batches_in_flight(void **state) {
  struct fixture *f = *state;
  struct lp_order_event ev[4] = {
      order("p1", "q1", 1, 0), order("p2", "q2", 2, 1), order("p3", "q3", 3, 2),
      order("p4", "q4", 4, 3)};
  struct lp_store_op ops[4];
  memset(ops, 0, sizeof(ops));
  for (int i = 0; i < 4; i++)
    ops[i].order = &ev[i];
  struct seen s1 = {0}, s2 = {0};
  struct lp_store_callbacks c1 = {NULL, on_known, &s1};
  struct lp_store_callbacks c2 = {NULL, on_known, &s2};
  lp_profile_store_start(f->a, 0, ops, 2, &c1);
  assert_int_equal(lp_profile_store_advance(f->a, 0, NULL), 0);
  lp_profile_store_start(f->a, 1, ops + 2, 2, &c2); /* behind batch 0 */
  assert_int_equal(lp_profile_store_finish(f->a, 0, NULL), 0);
  assert_int_equal(lp_profile_store_advance(f->a, 1, NULL), 0);
  assert_int_equal(lp_profile_store_finish(f->a, 1, NULL), 0);
  for (int i = 0; i < 4; i++) {
    assert_false(ops[i].failed);
    assert_int_equal(ops[i].before.order_count, i);
    lp_profile_clear(&ops[i].before);
  }
  assert_int_equal(s1.calls[0] + s1.calls[1] + s2.calls[0] + s2.calls[1], 4);
  expect_profile(f->a, 4, 10);
  clear_all(ev, 4);
}

/* The older batch loses a race while the newer one's reads are on the
 * wire: those are dropped and re-read, so the newer batch sees the older
 * one's events and every event is applied once, in order. */
static void test_lost_race_with_newer_batch_pending(void **state) {
  struct fixture *f = *state;
  struct lp_order_event old_ev = order("old", "r1", 1, 0);
  struct lp_order_event other = order("other", "r2", 2, 0);
  struct lp_order_event new_ev = order("new", "r3", 4, 1);
  struct lp_store_op op_old = {.order = &old_ev};
  struct lp_store_op op_new = {.order = &new_ev};
  struct seen so = {0}, sn = {0}, sx = {0};
  struct lp_store_callbacks co = {NULL, on_known, &so};
  struct lp_store_callbacks cn = {NULL, on_known, &sn};
  lp_profile_store_start(f->a, 0, &op_old, 1, &co);
  apply(f->b, &other, 1, &sx); /* makes A's reads stale */
  assert_int_equal(lp_profile_store_advance(f->a, 0, NULL), 0);
  lp_profile_store_start(f->a, 1, &op_new, 1, &cn);
  assert_int_equal(lp_profile_store_finish(f->a, 0, NULL), 0);
  assert_int_equal(lp_profile_store_advance(f->a, 1, NULL), 0);
  assert_int_equal(lp_profile_store_finish(f->a, 1, NULL), 0);
  assert_false(op_old.failed);
  assert_false(op_new.failed);
  assert_int_equal(op_old.before.order_count, 1); /* after "other" */
  assert_int_equal(op_new.before.order_count, 2); /* after both */
  assert_int_equal(op_new.before.lifetime_spend_micros, 3 * 10000000LL);
  lp_profile_clear(&op_old.before);
  lp_profile_clear(&op_new.before);
  expect_profile(f->a, 3, 7);
  clear_all(&old_ev, 1);
  clear_all(&other, 1);
  clear_all(&new_ev, 1);
}

/* One event twice in one batch, between two other events of its order:
 * applied once, both copies given the same before-state. */
static void test_same_event_twice_in_batch(void **state) {
  struct fixture *f = *state;
  struct lp_order_event ev[4] = {
      order("a1", "oa", 1, 0), order("b1", "ob", 2, 1), order("b1", "ob", 2, 1),
      order("b2", "ob", 2, 2)};
  ev[3].status = LP_ORDER_PAID; /* paid after created: counted once */
  struct seen seen = {0};
  apply(f->a, ev, 4, &seen);
  assert_int_equal(seen.orders[1], 1);
  assert_int_equal(seen.orders[2], 1);
  assert_int_equal(seen.spend[2], seen.spend[1]);
  assert_int_equal(seen.orders[3], 2);
  expect_profile(f->a, 2, 3);
  /* Delivered again, one by one: the same before-states. */
  for (int i = 1; i < 4; i++) {
    struct seen again = {0};
    apply(f->b, &ev[i], 1, &again);
    assert_int_equal(again.orders[0], seen.orders[i]);
    assert_int_equal(again.spend[0], seen.spend[i]);
  }
  expect_profile(f->a, 2, 3);
  clear_all(ev, 4);
}

/* A's batch holds an event and its duplicate; B changes the member
 * between A's reads and writes: both copies re-run and agree. */
static void test_lost_race_with_duplicate_in_batch(void **state) {
  struct fixture *f = *state;
  struct lp_order_event ev[2] = {order("d1", "od", 1, 1),
                                 order("d1", "od", 1, 1)};
  struct lp_order_event other = order("x1", "ox", 4, 0);
  struct lp_store_op ops[2];
  memset(ops, 0, sizeof(ops));
  ops[0].order = &ev[0];
  ops[1].order = &ev[1];
  struct seen sa = {0}, sb = {0};
  struct lp_store_callbacks cb = {NULL, on_known, &sa};
  lp_profile_store_start(f->a, 0, ops, 2, &cb);
  apply(f->b, &other, 1, &sb);
  assert_int_equal(lp_profile_store_advance(f->a, 0, NULL), 0);
  assert_int_equal(lp_profile_store_finish(f->a, 0, NULL), 0);
  for (int i = 0; i < 2; i++) {
    assert_false(ops[i].failed);
    assert_int_equal(ops[i].before.order_count, 1); /* after B's order */
    assert_int_equal(ops[i].before.lifetime_spend_micros, 4 * 10000000LL);
    lp_profile_clear(&ops[i].before);
  }
  assert_true(sa.calls[0] >= 2 && sa.calls[1] >= 2);
  expect_profile(f->a, 2, 5);
  clear_all(ev, 2);
  clear_all(&other, 1);
}

/* A refund of an order never seen changes nothing but is remembered: the
 * order still counts when it arrives, and the refund delivered again
 * gets its first before-state. */
static void test_refund_before_order(void **state) {
  struct fixture *f = *state;
  struct lp_order_event refund = order("r1", "or", 1, 0);
  refund.status = LP_ORDER_REFUNDED;
  struct lp_order_event created = order("c1", "or", 3, 1);
  struct seen s1 = {0}, s2 = {0}, s3 = {0};
  apply(f->a, &refund, 1, &s1);
  apply(f->a, &created, 1, &s2);
  assert_int_equal(s2.orders[0], 0);
  expect_profile(f->a, 1, 3);
  apply(f->b, &refund, 1, &s3);
  assert_int_equal(s3.orders[0], 0);
  assert_int_equal(s3.spend[0], 0);
  expect_profile(f->a, 1, 3);
  clear_all(&refund, 1);
  clear_all(&created, 1);
}

/* Past LP_ORDER_MAX_EVENTS events of one order, further ones are refused
 * with the reason; the ones already applied still redeliver cleanly. */
static void test_order_event_cap(void **state) {
  struct fixture *f = *state;
  struct seen seen = {0};
  char id[32];
  for (int i = 0; i < LP_ORDER_MAX_EVENTS; i++) {
    snprintf(id, sizeof(id), "cap%d", i);
    struct lp_order_event ev = order(id, "o-cap", 1, 0);
    ev.status = i == 0 ? LP_ORDER_CREATED : LP_ORDER_PAID;
    apply(f->a, &ev, 1, &seen);
    clear_all(&ev, 1);
  }
  struct lp_order_event ev[2] = {order("cap-over", "o-cap", 1, 0),
                                 order("cap1", "o-cap", 1, 0)};
  ev[1].status = LP_ORDER_PAID;
  struct lp_store_op ops[2];
  memset(ops, 0, sizeof(ops));
  ops[0].order = &ev[0];
  ops[1].order = &ev[1];
  assert_int_equal(lp_profile_store_apply(f->a, ops, 2, NULL, NULL), 0);
  assert_true(ops[0].failed);
  assert_non_null(strstr(ops[0].error, "o-cap already has 64 events"));
  assert_false(ops[1].failed); /* a redelivery: its memo is there */
  assert_int_equal(ops[1].before.order_count, 1);
  lp_profile_clear(&ops[0].before);
  lp_profile_clear(&ops[1].before);
  expect_profile(f->a, 1, 1);
  clear_all(ev, 2);
}

/* An entry damaged in Redis fails its events with the key and position;
 * other orders of the member go on. */
static void test_malformed_entry(void **state) {
  struct fixture *f = *state;
  redisContext *c = redisConnect("127.0.0.1", redis_port);
  assert_non_null(c);
  assert_int_equal(c->err, 0);
  char key[96];
  snprintf(key, sizeof(key), "%s:r:{race-shop:m1}:o-bad", f->ns);
  redisReply *r = redisCommand(c, "SET %s %s", key, "s\t1\n@e\n");
  assert_non_null(r);
  freeReplyObject(r);
  redisFree(c);
  struct lp_order_event ev[2] = {order("b1", "o-bad", 1, 0),
                                 order("g1", "o-good", 2, 0)};
  struct lp_store_op ops[2];
  memset(ops, 0, sizeof(ops));
  ops[0].order = &ev[0];
  ops[1].order = &ev[1];
  assert_int_equal(lp_profile_store_apply(f->a, ops, 2, NULL, NULL), 0);
  assert_true(ops[0].failed);
  assert_non_null(strstr(ops[0].error, key));
  assert_non_null(strstr(ops[0].error, "memo 1 at byte 4 is malformed"));
  assert_false(ops[1].failed);
  lp_profile_clear(&ops[0].before);
  lp_profile_clear(&ops[1].before);
  expect_profile(f->a, 1, 2);
  clear_all(ev, 2);
}

/* A product view of brand Acme (cart_updated when cart_micros > 0) by m1
 * at 1700000000000 + ms. */
static struct lp_activity_event activity(const char *event_id, int64_t ms,
                                         int64_t cart_micros) {
  struct lp_activity_event ev = {0};
  ev.event_id = lp_xstrdup(event_id);
  ev.shop = lp_xstrdup("race-shop");
  ev.customer_id = lp_xstrdup("m1");
  ev.event_time_ms = 1700000000000LL + ms;
  ev.kind =
      cart_micros > 0 ? LP_ACTIVITY_CART_UPDATED : LP_ACTIVITY_PRODUCT_VIEW;
  ev.product_id = lp_xstrdup("p1");
  ev.brand = lp_xstrdup("Acme");
  if (cart_micros > 0) {
    ev.has_cart_value = 1;
    ev.cart_value_micros = cart_micros;
    ev.currency = lp_xstrdup("EUR");
  }
  return ev;
}

/* The member's activity part in Redis (caller frees; NULL = none). */
static char *activity_part(const struct fixture *f) {
  redisContext *c = redisConnect("127.0.0.1", redis_port);
  assert_non_null(c);
  assert_int_equal(c->err, 0);
  redisReply *r = redisCommand(c, "GET %s:a:{race-shop:m1}", f->ns);
  assert_non_null(r);
  char *v = r->type == REDIS_REPLY_STRING ? lp_xstrdup(r->str) : NULL;
  freeReplyObject(r);
  redisFree(c);
  return v;
}

static void assert_same_text(const char *got, const char *want) {
  if (!got || !want)
    assert_ptr_equal(got, want);
  else
    assert_string_equal(got, want);
}

/* One activity op through s; returns its before_activity (caller frees)
 * and checks the order count it was applied against. */
static char *apply_activity(struct lp_profile_store *s,
                            struct lp_activity_event *ev, int64_t orders) {
  struct lp_store_op op = {.activity = ev};
  assert_int_equal(lp_profile_store_apply(s, &op, 1, NULL, NULL), 0);
  assert_false(op.failed);
  assert_int_equal(op.before.order_count, orders);
  lp_profile_clear(&op.before);
  return op.before_activity;
}

/* Activity events: folded once, a racing instance's memo wins and gives
 * the same before_activity, a redelivery after later events gets its
 * first before-state, an order consumes the cart so an older cart event
 * cannot reopen it, and an order op is handed the activity part. */
static void test_activity_events(void **state) {
  struct fixture *f = *state;
  struct lp_activity_event v1 = activity("v1", 0, 0);
  char *before = apply_activity(f->a, &v1, 0);
  assert_null(before);
  char *after_v1 = activity_part(f);
  assert_non_null(strstr(after_v1, "v:b:Acme\t"));
  /* A reads a cart event, B applies the same event, A's write finds B's
   * memo: A is handed B's before-state and nothing is applied twice. */
  struct lp_activity_event c1 = activity("c1", 1000, 5000000);
  struct lp_store_op op = {.activity = &c1};
  lp_profile_store_start(f->a, 0, &op, 1, NULL);
  char *b_before = apply_activity(f->b, &c1, 0);
  assert_same_text(b_before, after_v1);
  assert_int_equal(lp_profile_store_advance(f->a, 0, NULL), 0);
  assert_int_equal(lp_profile_store_finish(f->a, 0, NULL), 0);
  assert_false(op.failed);
  assert_same_text(op.before_activity, after_v1);
  lp_profile_clear(&op.before);
  free(op.before_activity);
  char *after_c1 = activity_part(f);
  assert_non_null(strstr(after_c1, "cart_state\topen\n"));
  /* v1 again, after c1: its first before-state, the part unchanged. */
  before = apply_activity(f->b, &v1, 0);
  assert_null(before);
  char *now = activity_part(f);
  assert_string_equal(now, after_c1);
  free(now);
  /* An order after the cart; an order op sees the activity part. */
  struct lp_order_event o = order("o1", "o1", 1, 1);
  struct lp_store_op oop = {.order = &o};
  assert_int_equal(lp_profile_store_apply(f->a, &oop, 1, NULL, NULL), 0);
  assert_false(oop.failed);
  assert_same_text(oop.before_activity, after_c1);
  lp_profile_clear(&oop.before);
  free(oop.before_activity);
  /* A cart event older than the order (newer than the cart) leaves the
   * cart cleared, cart_at at the order's time. */
  struct lp_activity_event c2 = activity("c2", 3600000, 7000000);
  free(apply_activity(f->a, &c2, 1));
  now = activity_part(f);
  assert_null(strstr(now, "cart_state"));
  assert_null(strstr(now, "cart\t"));
  char want[64];
  snprintf(want, sizeof(want), "cart_at\t%lld\n", (long long)o.event_time_ms);
  assert_non_null(strstr(now, want));
  free(now);
  free(b_before);
  free(after_v1);
  free(after_c1);
  lp_activity_event_clear(&v1);
  lp_activity_event_clear(&c1);
  lp_activity_event_clear(&c2);
  lp_order_event_clear(&o);
}

int main(int argc, char **argv) {
  if (argc != 2 || (redis_port = atoi(argv[1])) <= 0) {
    fprintf(stderr, "usage: store_race REDIS_PORT\n");
    return 2;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_redelivery_other_instance, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lost_compare_and_set, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_racing_duplicate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_batches_in_flight, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lost_race_with_newer_batch_pending,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_same_event_twice_in_batch, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lost_race_with_duplicate_in_batch,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_refund_before_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_order_event_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_entry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_activity_events, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
