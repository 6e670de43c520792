/*
 * orders_topic.h — the trainer's reader of the orders topic (see
 * orders_topic.c for what counts as a purchase).
 */
#ifndef LP_TRAINER_ORDERS_TOPIC_H
#define LP_TRAINER_ORDERS_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include "clv_summary.h"

/* Reads topic from start_offset (0 = the beginning) in every partition to
 * its end at the time of the call, adding one purchase per order to b.
 * bootstrap, or else the first line of bootstrap_file, names the brokers.
 * Returns 0 with the orders counted and the records that did not decode
 * (skipped), or -1 with errstr. */
int trainer_read_orders(const char *bootstrap, const char *bootstrap_file,
                        const char *topic, int64_t start_offset,
                        struct lp_clv_builder *b, long *orders, long *skipped,
                        char *errstr, size_t errstr_size);

#endif
