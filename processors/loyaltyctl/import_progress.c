/*
 * import_progress.c — what an import shows while it runs and when it ends.
 *
 * On a terminal (stderr is a tty): one line redrawn in place at most four
 * times a second — records, rate, pages, 429s waited, and a bar with an ETA
 * when the total is known. Otherwise (CI, pipes, files): a plain line
 * `loyaltyctl import: records=... rate=.../s pages=... retries=... ...`
 * every 5 s or every 10 % of a known total. The closing summary line is
 * always printed, whatever the mode.
 *
 * Also the interruptible sleep every wait of the importer goes through, so
 * progress keeps moving while a rate limit is waited out.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "import_internal.h"
#include "util.h"

enum mode { MODE_NONE, MODE_BAR, MODE_LINES };

struct imp_progress {
  char *label;
  enum mode mode;
  const struct imp_stats *st; /* borrowed */
  int64_t last_us;            /* last redraw / line */
  int last_decile;            /* lines: last 10 % step printed */
  int bar_drawn;              /* a bar is on the screen */
  long long done0;            /* st->done at the start of this run */
};

struct imp_progress *imp_current_progress;
static long reported_bad;

void imp_report_bad(const char *fmt, ...) {
  if (++reported_bad > IMP_MAX_REPORTED_BAD) {
    if (reported_bad == IMP_MAX_REPORTED_BAD + 1) {
      imp_progress_clear_line(imp_current_progress);
      fprintf(stderr, "loyaltyctl import: more bad records: counted, not "
                      "shown (see the summary)\n");
    }
    return;
  }
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  imp_progress_clear_line(imp_current_progress);
  fprintf(stderr, "loyaltyctl import: %s\n", msg);
}

struct imp_progress *imp_progress_new(const char *label, const char *mode,
                                      const struct imp_stats *st) {
  struct imp_progress *p = lp_xcalloc(1, sizeof(*p));
  p->label = lp_xstrdup(label);
  p->st = st;
  if (!mode || strcmp(mode, "auto") == 0)
    p->mode = isatty(STDERR_FILENO) ? MODE_BAR : MODE_LINES;
  else if (strcmp(mode, "bar") == 0)
    p->mode = MODE_BAR;
  else if (strcmp(mode, "lines") == 0)
    p->mode = MODE_LINES;
  else
    p->mode = MODE_NONE;
  p->last_us = lp_mono_us();
  p->done0 = st->done;
  return p;
}

void imp_progress_destroy(struct imp_progress **pp) {
  struct imp_progress *p = *pp;
  if (!p)
    return;
  if (imp_current_progress == p)
    imp_current_progress = NULL;
  free(p->label);
  free(p);
  *pp = NULL;
}

static double elapsed_s(const struct imp_stats *st) {
  return (double)(lp_mono_us() - st->t0_us) / 1e6;
}

static void format_duration(double s, char *out, size_t size) {
  long t = s > 0 ? (long)(s + 0.5) : 0;
  if (t >= 3600)
    snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(out, size, "%ld:%02ld", t / 60, t % 60);
}

/* Percent of the total done (-1 when unknown) and the ETA text. */
static int percent_eta(const struct imp_progress *p, char *eta, size_t size) {
  const struct imp_stats *st = p->st;
  eta[0] = '\0';
  if (st->total <= 0)
    return -1;
  long long done = st->done < st->total ? st->done : st->total;
  int pct = (int)(done * 100 / st->total);
  double secs = elapsed_s(st);
  long long run_done = done - p->done0;
  if (run_done > 0 && secs > 0.5) {
    double rest = (double)(st->total - done) * secs / (double)run_done;
    format_duration(rest, eta, size);
  }
  return pct;
}

static void draw_bar(struct imp_progress *p) {
  const struct imp_stats *st = p->st;
  double secs = elapsed_s(st);
  double rate = secs > 0 ? (double)st->records / secs : 0;
  char eta[32], line[256];
  int pct = percent_eta(p, eta, sizeof(eta));
  int n = snprintf(line, sizeof(line),
                   "import %s: %lld records  %.0f/s  %lld pages  %lld 429s",
                   p->label, st->records, rate, st->pages, st->throttled);
  if (pct >= 0 && n > 0 && (size_t)n < sizeof(line)) {
    char bar[21];
    int fill = pct / 5;
    for (int i = 0; i < 20; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[20] = '\0';
    snprintf(line + n, sizeof(line) - (size_t)n, "  [%s] %d%%%s%s", bar, pct,
             eta[0] ? " ETA " : "", eta);
  }
  fprintf(stderr, "\r\033[K%s", line);
  fflush(stderr);
  p->bar_drawn = 1;
}

static void print_line(struct imp_progress *p) {
  const struct imp_stats *st = p->st;
  double secs = elapsed_s(st);
  char eta[32];
  int pct = percent_eta(p, eta, sizeof(eta));
  fprintf(stderr,
          "loyaltyctl import: records=%lld rate=%.0f/s pages=%lld "
          "retries=%lld 429s=%lld skipped=%lld bad=%lld",
          st->records, secs > 0 ? (double)st->records / secs : 0.0, st->pages,
          st->retries, st->throttled, st->skipped, st->bad);
  if (pct >= 0)
    fprintf(stderr, " done=%d%%%s%s", pct, eta[0] ? " eta=" : "", eta);
  fputc('\n', stderr);
}

void imp_progress_tick(struct imp_progress *p) {
  if (!p || p->mode == MODE_NONE)
    return;
  int64_t now = lp_mono_us();
  if (p->mode == MODE_BAR) {
    if (now - p->last_us >= 250000) {
      p->last_us = now;
      draw_bar(p);
    }
    return;
  }
  int decile = p->st->total > 0 ? (int)(p->st->done * 10 / p->st->total) : 0;
  if (now - p->last_us >= 5000000 || decile > p->last_decile) {
    p->last_us = now;
    p->last_decile = decile;
    print_line(p);
  }
}

void imp_progress_clear_line(struct imp_progress *p) {
  if (p && p->bar_drawn) {
    fputs("\r\033[K", stderr);
    p->bar_drawn = 0;
  }
}

void imp_progress_summary(struct imp_progress *p, const char *outcome) {
  const struct imp_stats *st = p->st;
  double secs = elapsed_s(st);
  imp_progress_clear_line(p);
  fprintf(stderr,
          "loyaltyctl import: %s: records=%lld pages=%lld "
          "duplicates_skipped=%lld bad=%lld 429s=%lld retries=%lld "
          "waited=%.1fs elapsed=%.1fs rate=%.0f/s",
          outcome, st->records, st->pages, st->skipped, st->bad, st->throttled,
          st->retries, st->waited_s, secs,
          secs > 0 ? (double)st->records / secs : 0.0);
  if (st->base_records > 0)
    fprintf(stderr, " total_records=%lld", st->base_records + st->records);
  fputc('\n', stderr);
}

int imp_sleep_us(int64_t us) {
  int64_t end = lp_mono_us() + us;
  for (;;) {
    if (imp_stop_signal)
      return -1;
    int64_t left = end - lp_mono_us();
    if (left <= 0)
      return 0;
    int64_t slice = left < 50000 ? left : 50000;
    struct timespec ts = {(time_t)(slice / 1000000),
                          (long)(slice % 1000000) * 1000};
    nanosleep(&ts, NULL);
    imp_progress_tick(imp_current_progress);
  }
}
