/*
 * offsets.c — the contiguous-acknowledgement tracker (see offsets.h).
 *
 * Per partition, a growable ring of (offset, done) entries in arrival
 * order; entry i has sequence number base_seq + i. A handle names
 * (partition, generation, sequence), so done() is O(1) and a handle that
 * outlives lp_offsets_forget (generation bumped) is recognised as inert.
 * Partition records live until the tracker is destroyed, so handles never
 * dangle.
 */
#include "offsets.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct entry {
  int64_t offset;
  int done;
};

struct part {
  char *topic;
  int32_t partition;
  uint32_t generation;
  struct entry *ring;
  size_t cap, head, count; /* ring[head .. head+count) in arrival order */
  uint64_t base_seq;       /* sequence number of ring[head] */
  int64_t committable;     /* next offset to commit, -1 if none yet */
  int64_t taken;           /* last position handed out, -1 if none */
  struct part *next;
};

struct handle {
  struct part *part;
  uint32_t generation;
  uint64_t seq;
};

struct lp_offsets {
  size_t window;
  struct part *parts;
};

struct lp_offsets *lp_offsets_new(size_t window) {
  struct lp_offsets *t = lp_xcalloc(1, sizeof(*t));
  t->window = window ? window : 1;
  return t;
}

void lp_offsets_destroy(struct lp_offsets **tp) {
  struct lp_offsets *t = *tp;
  if (!t)
    return;
  for (struct part *p = t->parts, *next; p; p = next) {
    next = p->next;
    free(p->topic);
    free(p->ring);
    free(p);
  }
  free(t);
  *tp = NULL;
}

static struct part *find(const struct lp_offsets *t, const char *topic,
                         int32_t partition) {
  for (struct part *p = t->parts; p; p = p->next)
    if (p->partition == partition && strcmp(p->topic, topic) == 0)
      return p;
  return NULL;
}

static struct part *find_or_add(struct lp_offsets *t, const char *topic,
                                int32_t partition) {
  struct part *p = find(t, topic, partition);
  if (p)
    return p;
  p = lp_xcalloc(1, sizeof(*p));
  p->topic = lp_xstrdup(topic);
  p->partition = partition;
  p->committable = -1;
  p->taken = -1;
  p->next = t->parts;
  t->parts = p;
  return p;
}

static struct entry *at(struct part *p, size_t i) {
  return &p->ring[(p->head + i) % p->cap];
}

/* Doubles the ring, keeping arrival order from index 0. */
static void grow(struct part *p) {
  size_t cap = p->cap ? p->cap * 2 : 64;
  struct entry *ring = lp_xmalloc(cap * sizeof(*ring));
  for (size_t i = 0; i < p->count; i++)
    ring[i] = *at(p, i);
  free(p->ring);
  p->ring = ring;
  p->cap = cap;
  p->head = 0;
}

void *lp_offsets_add(struct lp_offsets *t, const char *topic, int32_t partition,
                     int64_t offset) {
  struct part *p = find_or_add(t, topic, partition);
  if (p->count > 0)
    LP_ASSERT(offset > at(p, p->count - 1)->offset);
  if (p->count == p->cap)
    grow(p);
  struct entry *e = at(p, p->count);
  e->offset = offset;
  e->done = 0;
  struct handle *h = lp_xmalloc(sizeof(*h));
  h->part = p;
  h->generation = p->generation;
  h->seq = p->base_seq + p->count;
  p->count++;
  return h;
}

/* Pops finished entries at the head; the committable position follows. */
static void advance(struct part *p) {
  while (p->count > 0 && p->ring[p->head].done) {
    p->committable = p->ring[p->head].offset + 1;
    p->head = (p->head + 1) % p->cap;
    p->count--;
    p->base_seq++;
  }
}

void lp_offsets_done(struct lp_offsets *t, void *handle) {
  (void)t;
  struct handle *h = handle;
  struct part *p = h->part;
  if (h->generation == p->generation) {
    LP_ASSERT(h->seq >= p->base_seq && h->seq < p->base_seq + p->count);
    struct entry *e = at(p, (size_t)(h->seq - p->base_seq));
    LP_ASSERT(!e->done);
    e->done = 1;
    advance(p);
  }
  free(h);
}

int lp_offsets_take_committable(struct lp_offsets *t, const char *topic,
                                int32_t partition, int64_t *position) {
  struct part *p = find(t, topic, partition);
  if (!p || p->committable < 0 || p->committable == p->taken)
    return 0;
  p->taken = p->committable;
  *position = p->committable;
  return 1;
}

void lp_offsets_drain_committable(struct lp_offsets *t, lp_offsets_visit_fn fn,
                                  void *opaque) {
  for (struct part *p = t->parts; p; p = p->next) {
    if (p->committable >= 0 && p->committable != p->taken) {
      p->taken = p->committable;
      fn(opaque, p->topic, p->partition, p->committable);
    }
  }
}

size_t lp_offsets_in_flight(const struct lp_offsets *t, const char *topic,
                            int32_t partition) {
  const struct part *p = find(t, topic, partition);
  return p ? p->count : 0;
}

size_t lp_offsets_total_in_flight(const struct lp_offsets *t) {
  size_t n = 0;
  for (const struct part *p = t->parts; p; p = p->next)
    n += p->count;
  return n;
}

int lp_offsets_full(const struct lp_offsets *t, const char *topic,
                    int32_t partition) {
  return lp_offsets_in_flight(t, topic, partition) >= t->window;
}

void lp_offsets_forget(struct lp_offsets *t, const char *topic,
                       int32_t partition) {
  struct part *p = find(t, topic, partition);
  if (!p)
    return;
  p->generation++;
  p->base_seq += p->count;
  p->head = 0;
  p->count = 0;
  p->committable = -1;
  p->taken = -1;
}
