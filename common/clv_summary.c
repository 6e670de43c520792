/*
 * clv_summary.c — transaction log -> per-member summaries (see
 * clv_summary.h). Purchases are kept per member, then sorted by day and
 * folded into days; memory is one small record per purchase.
 */
#include "clv_summary.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct purchase {
  int64_t day;
  double value;
};

struct member {
  char *id;
  struct purchase *p;
  size_t n, cap;
};

struct lp_clv_builder {
  struct member *m;
  size_t n, cap;
  size_t *slots; /* open addressing: index + 1 into m, 0 = empty */
  size_t mask;
  struct lp_clv_summary *out;
};

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

struct lp_clv_builder *lp_clv_builder_new(void) {
  struct lp_clv_builder *b = lp_xcalloc(1, sizeof(*b));
  b->mask = 1023;
  b->slots = lp_xcalloc(b->mask + 1, sizeof(*b->slots));
  return b;
}

void lp_clv_builder_destroy(struct lp_clv_builder **bp) {
  struct lp_clv_builder *b = *bp;
  if (!b)
    return;
  for (size_t i = 0; i < b->n; i++) {
    free(b->m[i].id);
    free(b->m[i].p);
  }
  free(b->m);
  free(b->slots);
  free(b->out);
  free(b);
  *bp = NULL;
}

static void grow_slots(struct lp_clv_builder *b) {
  size_t cap = (b->mask + 1) * 2;
  free(b->slots);
  b->slots = lp_xcalloc(cap, sizeof(*b->slots));
  b->mask = cap - 1;
  for (size_t i = 0; i < b->n; i++) {
    size_t k = (size_t)hash(b->m[i].id) & b->mask;
    while (b->slots[k])
      k = (k + 1) & b->mask;
    b->slots[k] = i + 1;
  }
}

static struct member *find(struct lp_clv_builder *b, const char *id) {
  size_t k = (size_t)hash(id) & b->mask;
  while (b->slots[k]) {
    struct member *m = &b->m[b->slots[k] - 1];
    if (strcmp(m->id, id) == 0)
      return m;
    k = (k + 1) & b->mask;
  }
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 1024;
    b->m = lp_xrealloc(b->m, b->cap * sizeof(*b->m));
  }
  struct member *m = &b->m[b->n];
  memset(m, 0, sizeof(*m));
  m->id = lp_xstrdup(id);
  b->slots[k] = ++b->n;
  if (b->n * 2 > b->mask)
    grow_slots(b);
  return m;
}

void lp_clv_builder_add(struct lp_clv_builder *b, const char *member,
                        int64_t day, double value) {
  struct member *m = find(b, member);
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 4;
    m->p = lp_xrealloc(m->p, m->cap * sizeof(*m->p));
  }
  m->p[m->n++] = (struct purchase){day, value};
}

int64_t lp_clv_builder_last_day(const struct lp_clv_builder *b) {
  int64_t last = INT64_MIN;
  for (size_t i = 0; i < b->n; i++)
    for (size_t k = 0; k < b->m[i].n; k++)
      if (b->m[i].p[k].day > last)
        last = b->m[i].p[k].day;
  return last;
}

static int by_day(const void *a, const void *b) {
  int64_t x = ((const struct purchase *)a)->day,
          y = ((const struct purchase *)b)->day;
  return (x > y) - (x < y);
}

static int by_member(const void *a, const void *b) {
  return strcmp(((const struct lp_clv_summary *)a)->member,
                ((const struct lp_clv_summary *)b)->member);
}

size_t lp_clv_builder_summarise(struct lp_clv_builder *b,
                                int64_t calibration_end, int64_t holdout_end,
                                double days_per_unit,
                                const struct lp_clv_summary **out) {
  free(b->out);
  b->out = lp_xcalloc(b->n ? b->n : 1, sizeof(*b->out));
  size_t k = 0;
  for (size_t i = 0; i < b->n; i++) {
    struct member *m = &b->m[i];
    qsort(m->p, m->n, sizeof(*m->p), by_day);
    int64_t first = m->p[0].day;
    if (first > calibration_end)
      continue; /* joined after the window: nothing to calibrate on */
    struct lp_clv_summary *s = &b->out[k++];
    s->member = m->id;
    double x = 0, hold = 0, spend = 0, day_value = 0;
    int64_t last = first, day = first;
    for (size_t j = 0; j <= m->n; j++) {
      /* Fold purchases into days; a day ends at the next day or the end. */
      if (j < m->n && m->p[j].day == day) {
        day_value += m->p[j].value;
        continue;
      }
      if (day != first) {
        if (day <= calibration_end) {
          x++;
          spend += day_value;
          last = day;
        } else if (day <= holdout_end) {
          hold++;
        }
      }
      if (j < m->n) {
        day = m->p[j].day;
        day_value = m->p[j].value;
      }
    }
    s->s.x = x;
    s->s.t_x = x > 0 ? (double)(last - first) / days_per_unit : 0;
    s->s.T = (double)(calibration_end - first) / days_per_unit;
    s->s.m = x > 0 ? spend / x : 0;
    s->holdout_x = hold;
  }
  qsort(b->out, k, sizeof(*b->out), by_member);
  *out = b->out;
  return k;
}

int64_t lp_clv_day_of_ymd(long ymd) {
  long y = ymd / 10000, mo = ymd / 100 % 100, d = ymd % 100;
  if (y < 1900 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31)
    return INT64_MIN;
  /* Days from civil (Howard Hinnant's algorithm). */
  y -= mo <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  long yoe = y - era * 400;
  long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (int64_t)era * 146097 + doe - 719468;
}
