/*
 * offsets.h — the contiguous-acknowledgement tracker (as in Bottled Water):
 * at-least-once for a consumer whose outputs are acknowledged out of order.
 *
 * Per partition it remembers the offsets handed to the application, in the
 * order received (offsets may have gaps: compaction, transaction markers).
 * Each tracked offset is finished when all of its outputs are acknowledged
 * (lp_offsets_done). The partition's *committable position* is one past the
 * highest offset such that it and every earlier tracked offset are
 * finished; only that position may be stored for commit. A partition whose
 * window (in-flight count) is full should be paused by the caller.
 *
 * Not thread-safe: used from the poll thread only (delivery reports are
 * served there too).
 */
#ifndef LP_OFFSETS_H
#define LP_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct lp_offsets;

/* window: max in-flight offsets per partition before lp_offsets_full. */
struct lp_offsets *lp_offsets_new(size_t window);
void lp_offsets_destroy(struct lp_offsets **t);

/* Start tracking (topic, partition, offset); offsets of one partition must
 * be added in increasing order. Returns an opaque handle for done(). topic
 * is copied once per partition. */
void *lp_offsets_add(struct lp_offsets *t, const char *topic, int32_t partition,
                     int64_t offset);

/* Marks the handle's offset finished (exactly once per handle). */
void lp_offsets_done(struct lp_offsets *t, void *handle);

/*
 * If the partition's committable position advanced since the last call,
 * returns 1 and sets *position (next offset to consume); else 0.
 */
int lp_offsets_take_committable(struct lp_offsets *t, const char *topic,
                                int32_t partition, int64_t *position);

/* Calls fn for every partition whose committable position advanced. */
typedef void (*lp_offsets_visit_fn)(void *opaque, const char *topic,
                                    int32_t partition, int64_t position);
void lp_offsets_drain_committable(struct lp_offsets *t, lp_offsets_visit_fn fn,
                                  void *opaque);

/* In-flight (added, not yet committable-past) count for a partition. */
size_t lp_offsets_in_flight(const struct lp_offsets *t, const char *topic,
                            int32_t partition);
size_t lp_offsets_total_in_flight(const struct lp_offsets *t);
int lp_offsets_full(const struct lp_offsets *t, const char *topic,
                    int32_t partition);

/* Forgets a partition (revoked/lost); outstanding handles for it become
 * inert (done() on them is a no-op). */
void lp_offsets_forget(struct lp_offsets *t, const char *topic,
                       int32_t partition);

#endif
