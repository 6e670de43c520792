/*
 * shop_generator.h — deterministic sample traffic for the demo, tests and
 * benchmarks: a synthetic shop with realistic customers, categories,
 * brands and order rhythms, and a reader for the CDNOW purchase history.
 *
 * Same seed and parameters -> the same events, byte for byte, on every
 * machine (own PRNG, integer money, no clock, no locale). Events come out
 * in non-decreasing event time.
 */
#ifndef LP_SHOP_GENERATOR_H
#define LP_SHOP_GENERATOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "events.h"

struct lp_shop_gen_params {
  uint64_t seed;
  size_t customers;    /* distinct members */
  size_t orders;       /* total order events to emit (created; plus a few
                          cancellations/refunds at cancel_permille) */
  const char *shop;    /* e.g. "demo-shop.myshopify.com" (copied) */
  int64_t start_ms;    /* event time of the first event */
  int cancel_permille; /* share of orders later cancelled or refunded */
};

enum lp_gen_kind { LP_GEN_END = 0, LP_GEN_ORDER = 1, LP_GEN_CUSTOMER = 2 };

struct lp_shop_gen;

struct lp_shop_gen *lp_shop_gen_new(const struct lp_shop_gen_params *p);
void lp_shop_gen_destroy(struct lp_shop_gen **g);
/* Fills *order or *customer (zeroed/cleared by the caller) with the next
 * event and says which; LP_GEN_END when done. */
enum lp_gen_kind lp_shop_gen_next(struct lp_shop_gen *g,
                                  struct lp_order_event *order,
                                  struct lp_customer_event *customer);

/*
 * CDNOW_master.txt / CDNOW_sample.txt reader (shared/datasets/README.md):
 * whitespace-separated, CRLF, optional header. Each transaction becomes a
 * "created" order event: customer id from the file, event time = the date
 * at 12:00 UTC plus the row index in seconds (stable order within a day),
 * order id and event id "cdnow-<row>", currency USD, one line item
 * (category "music", brand "cdnow", quantity = number of CDs, unit price =
 * value / CDs). Rows that do not parse are reported with their line number.
 */
struct lp_cdnow_reader;
struct lp_cdnow_reader *lp_cdnow_reader_open(const char *path, const char *shop,
                                             char *errstr, size_t errstr_size);
/* 1 = event filled, 0 = end of file, -1 = malformed line (errstr says
 * which line and why; reading may continue). */
int lp_cdnow_reader_next(struct lp_cdnow_reader *r, struct lp_order_event *out,
                         char *errstr, size_t errstr_size);
void lp_cdnow_reader_close(struct lp_cdnow_reader **r);

#endif
