/*
 * test_offsets.c — the contiguous-ack tracker: in-order and out-of-order
 * acknowledgements, gaps in offsets, window, forgotten partitions, and a
 * randomised property check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "offsets.h"

static int64_t take(struct lp_offsets *t, int32_t part) {
  int64_t pos = -1;
  if (!lp_offsets_take_committable(t, "orders", part, &pos))
    return -1;
  return pos;
}

static void test_in_order(void **state) {
  (void)state;
  struct lp_offsets *t = lp_offsets_new(100);
  void *h[3];
  for (int i = 0; i < 3; i++)
    h[i] = lp_offsets_add(t, "orders", 0, 10 + i);
  assert_int_equal(take(t, 0), -1); /* nothing finished yet */
  lp_offsets_done(t, h[0]);
  assert_int_equal(take(t, 0), 11);
  assert_int_equal(take(t, 0), -1); /* no advance, nothing new */
  lp_offsets_done(t, h[1]);
  lp_offsets_done(t, h[2]);
  assert_int_equal(take(t, 0), 13);
  assert_int_equal(lp_offsets_in_flight(t, "orders", 0), 0);
  lp_offsets_destroy(&t);
  assert_null(t);
}

static void test_out_of_order_and_gaps(void **state) {
  (void)state;
  struct lp_offsets *t = lp_offsets_new(100);
  /* Offsets with gaps, as after compaction or transaction markers. */
  void *a = lp_offsets_add(t, "orders", 1, 5);
  void *b = lp_offsets_add(t, "orders", 1, 7);
  void *c = lp_offsets_add(t, "orders", 1, 10);
  lp_offsets_done(t, c);
  lp_offsets_done(t, b);
  assert_int_equal(take(t, 1), -1); /* 5 still in flight */
  assert_int_equal(lp_offsets_in_flight(t, "orders", 1), 3);
  lp_offsets_done(t, a);
  assert_int_equal(take(t, 1), 11); /* jumps over the gaps */
  lp_offsets_destroy(&t);
}

static void test_partitions_independent(void **state) {
  (void)state;
  struct lp_offsets *t = lp_offsets_new(100);
  void *p0 = lp_offsets_add(t, "orders", 0, 0);
  void *p1 = lp_offsets_add(t, "orders", 1, 0);
  void *other = lp_offsets_add(t, "customers", 0, 0);
  lp_offsets_done(t, p1);
  assert_int_equal(take(t, 0), -1);
  assert_int_equal(take(t, 1), 1);
  assert_int_equal(lp_offsets_total_in_flight(t), 2);
  lp_offsets_done(t, p0);
  lp_offsets_done(t, other);
  int64_t pos = -1;
  assert_true(lp_offsets_take_committable(t, "customers", 0, &pos));
  assert_int_equal(pos, 1);
  lp_offsets_destroy(&t);
}

static void test_window(void **state) {
  (void)state;
  struct lp_offsets *t = lp_offsets_new(2);
  void *a = lp_offsets_add(t, "orders", 0, 0);
  assert_false(lp_offsets_full(t, "orders", 0));
  void *b = lp_offsets_add(t, "orders", 0, 1);
  assert_true(lp_offsets_full(t, "orders", 0));
  lp_offsets_done(t, b); /* out of order: still two in flight */
  assert_true(lp_offsets_full(t, "orders", 0));
  lp_offsets_done(t, a);
  assert_false(lp_offsets_full(t, "orders", 0));
  lp_offsets_destroy(&t);
}

static void test_forget(void **state) {
  (void)state;
  struct lp_offsets *t = lp_offsets_new(100);
  void *a = lp_offsets_add(t, "orders", 3, 100);
  void *b = lp_offsets_add(t, "orders", 3, 101);
  lp_offsets_forget(t, "orders", 3); /* revoked */
  assert_int_equal(lp_offsets_in_flight(t, "orders", 3), 0);
  /* Reassigned later from an earlier committed offset. */
  void *c = lp_offsets_add(t, "orders", 3, 50);
  lp_offsets_done(t, a); /* stale handles are inert */
  lp_offsets_done(t, b);
  assert_int_equal(take(t, 3), -1);
  lp_offsets_done(t, c);
  assert_int_equal(take(t, 3), 51);
  lp_offsets_destroy(&t);
}

static void test_random_permutation(void **state) {
  (void)state;
  enum { N = 10000 };
  struct lp_offsets *t = lp_offsets_new(N);
  void **h = malloc(N * sizeof(*h));
  int *order = malloc(N * sizeof(*order));
  unsigned char *done = calloc(N, 1);
  for (int i = 0; i < N; i++) {
    h[i] = lp_offsets_add(t, "orders", 0, 2 * i); /* even offsets: gaps */
    order[i] = i;
  }
  srand(12345);
  for (int i = N - 1; i > 0; i--) {
    int j = rand() % (i + 1), tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
  int first_not_done = 0;
  int64_t last = -1;
  for (int k = 0; k < N; k++) {
    lp_offsets_done(t, h[order[k]]);
    done[order[k]] = 1;
    while (first_not_done < N && done[first_not_done])
      first_not_done++;
    int64_t pos = take(t, 0);
    if (pos >= 0)
      last = pos;
    /* Never past the first unfinished offset, and exactly up to it. */
    int64_t expect = first_not_done == 0 ? -1 : 2 * (first_not_done - 1) + 1;
    assert_int_equal(last, expect);
  }
  assert_int_equal(last, 2 * (N - 1) + 1);
  free(h);
  free(order);
  free(done);
  lp_offsets_destroy(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_order),
      cmocka_unit_test(test_out_of_order_and_gaps),
      cmocka_unit_test(test_partitions_independent),
      cmocka_unit_test(test_window),
      cmocka_unit_test(test_forget),
      cmocka_unit_test(test_random_permutation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
