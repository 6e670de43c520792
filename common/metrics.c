/*
 * metrics.c — counters, gauges, labelled series and the latency histogram
 * (see metrics.h), rendered in Prometheus text format 0.0.4.
 *
 * Plain counters are lock-free atomics. Labelled series are few (one per
 * rule, one per partition) and live in a small array under a mutex; the
 * hot path (decisions by rule) is one short lock per decision.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct metric_def {
  const char *name, *type, *help;
};

static const struct metric_def defs[] = {
#define LP_METRIC_DEF(e, name, type, help) {name, type, help},
    LP_METRICS(LP_METRIC_DEF)
#undef LP_METRIC_DEF
};

static _Atomic int64_t values[LP_M__COUNT];
static char processor[64] = "loyalty";

/* Latency histogram, bucket upper bounds in microseconds. */
static const int64_t bucket_us[] = {500,    1000,   2500,    5000,
                                    10000,  25000,  50000,   100000,
                                    250000, 500000, 1000000, 2500000};
#define N_BUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))
static _Atomic int64_t bucket_counts[N_BUCKETS + 1]; /* last: +Inf only */
static _Atomic int64_t latency_sum_us;
static _Atomic int64_t latency_count;

struct series {
  char *family, *help, *label, *value;
  int gauge;
  int64_t v;
};

static pthread_mutex_t series_lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *series;
static size_t n_series, cap_series;

void lp_metrics_init(const char *proc) {
  lp_strlcpy(processor, proc, sizeof(processor));
}

void lp_metrics_add(enum lp_metric m, int64_t delta) {
  LP_ASSERT((unsigned)m < LP_M__COUNT);
  atomic_fetch_add(&values[m], delta);
}

void lp_metrics_set(enum lp_metric m, int64_t value) {
  LP_ASSERT((unsigned)m < LP_M__COUNT);
  atomic_store(&values[m], value);
}

int64_t lp_metrics_get(enum lp_metric m) {
  LP_ASSERT((unsigned)m < LP_M__COUNT);
  return atomic_load(&values[m]);
}

/* Finds or creates a labelled series; call with series_lock held. */
static struct series *series_get(const char *family, const char *help,
                                 const char *label, const char *value,
                                 int gauge) {
  for (size_t i = 0; i < n_series; i++) {
    struct series *s = &series[i];
    if (strcmp(s->value, value) == 0 && strcmp(s->family, family) == 0 &&
        strcmp(s->label, label) == 0)
      return s;
  }
  if (n_series == cap_series) {
    cap_series = cap_series ? cap_series * 2 : 32;
    series = lp_xrealloc(series, cap_series * sizeof(*series));
  }
  struct series *s = &series[n_series++];
  s->family = lp_xstrdup(family);
  s->help = lp_xstrdup(help);
  s->label = lp_xstrdup(label);
  s->value = lp_xstrdup(value);
  s->gauge = gauge;
  s->v = 0;
  return s;
}

void lp_metrics_labelled_add(const char *family, const char *help,
                             const char *label, const char *value,
                             int64_t delta) {
  pthread_mutex_lock(&series_lock);
  series_get(family, help, label, value, 0)->v += delta;
  pthread_mutex_unlock(&series_lock);
}

void lp_metrics_labelled_set(const char *family, const char *help,
                             const char *label, const char *value, int64_t v) {
  pthread_mutex_lock(&series_lock);
  series_get(family, help, label, value, 1)->v = v;
  pthread_mutex_unlock(&series_lock);
}

void lp_metrics_observe_latency_us(int64_t us) {
  size_t i = 0;
  while (i < N_BUCKETS && us > bucket_us[i])
    i++;
  atomic_fetch_add(&bucket_counts[i], 1);
  atomic_fetch_add(&latency_sum_us, us);
  atomic_fetch_add(&latency_count, 1);
}

/* Label values are escaped per the exposition format. */
static void append_label_value(struct lp_buf *out, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"')
      lp_buf_append_byte(out, '\\');
    if (*v == '\n') {
      lp_buf_append_str(out, "\\n");
      continue;
    }
    lp_buf_append_byte(out, (uint8_t)*v);
  }
}

void lp_metrics_render(struct lp_buf *out) {
  for (size_t m = 0; m < LP_M__COUNT; m++) {
    lp_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n%s{processor=\"",
                   defs[m].name, defs[m].help, defs[m].name, defs[m].type,
                   defs[m].name);
    append_label_value(out, processor);
    lp_buf_appendf(out, "\"} %lld\n", (long long)atomic_load(&values[m]));
  }
  const char *h = "loyalty_processing_latency_seconds";
  lp_buf_appendf(out,
                 "# HELP %s Time from consuming a record to all its outputs "
                 "acknowledged\n# TYPE %s histogram\n",
                 h, h);
  int64_t cumulative = 0;
  for (size_t i = 0; i <= N_BUCKETS; i++) {
    cumulative += atomic_load(&bucket_counts[i]);
    lp_buf_appendf(out, "%s_bucket{processor=\"", h);
    append_label_value(out, processor);
    if (i < N_BUCKETS)
      lp_buf_appendf(out, "\",le=\"%g\"} %lld\n", (double)bucket_us[i] / 1e6,
                     (long long)cumulative);
    else
      lp_buf_appendf(out, "\",le=\"+Inf\"} %lld\n", (long long)cumulative);
  }
  lp_buf_appendf(out, "%s_sum{processor=\"", h);
  append_label_value(out, processor);
  lp_buf_appendf(out, "\"} %.6f\n%s_count{processor=\"",
                 (double)atomic_load(&latency_sum_us) / 1e6, h);
  append_label_value(out, processor);
  lp_buf_appendf(out, "\"} %lld\n", (long long)atomic_load(&latency_count));

  pthread_mutex_lock(&series_lock);
  for (size_t i = 0; i < n_series; i++) {
    struct series *s = &series[i];
    int first = 1;
    for (size_t j = 0; j < i; j++)
      if (strcmp(series[j].family, s->family) == 0)
        first = 0;
    if (first)
      lp_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", s->family, s->help,
                     s->family, s->gauge ? "gauge" : "counter");
    lp_buf_appendf(out, "%s{processor=\"", s->family);
    append_label_value(out, processor);
    lp_buf_appendf(out, "\",%s=\"", s->label);
    append_label_value(out, s->value);
    lp_buf_appendf(out, "\"} %lld\n", (long long)s->v);
  }
  pthread_mutex_unlock(&series_lock);
}

void lp_metrics_shutdown(void) {
  pthread_mutex_lock(&series_lock);
  for (size_t i = 0; i < n_series; i++) {
    free(series[i].family);
    free(series[i].help);
    free(series[i].label);
    free(series[i].value);
  }
  free(series);
  series = NULL;
  n_series = cap_series = 0;
  pthread_mutex_unlock(&series_lock);
}
