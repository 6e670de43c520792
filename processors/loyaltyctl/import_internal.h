/*
 * import_internal.h — the pieces of `loyaltyctl import` and how they meet:
 *
 *   import.c             command line, the page loop (fetch, produce, wait
 *                        for acknowledgement, checkpoint), signals, summary
 *   import_source_*.c    one per source: Shopify REST, BigCommerce REST, a
 *                        CSV/CDNOW file. A source turns "the page at cursor
 *                        C" into decoded canonical events and the cursor of
 *                        the page after it; it never touches Kafka.
 *   import_http.c        GET with the platforms' rate limits (Shopify leaky
 *                        bucket, BigCommerce quota window), 429 Retry-After,
 *                        backoff on 5xx/transport errors
 *   import_sink.c        the idempotent producer, per-partition end offsets
 *                        from delivery reports, and the resume scan (event
 *                        ids a killed run wrote after its checkpoint)
 *   import_checkpoint.c  the checkpoint file (JSON, tmp + fsync + rename)
 *   import_progress.c    the progress bar / periodic lines and the summary
 *
 * Exactly once: a page's records are all acknowledged before its cursor is
 * checkpointed, together with the topic's end offsets at that moment; on
 * resume the records past those offsets (written by the killed run for the
 * page at the cursor) are read back and their event ids skipped.
 */
#ifndef LP_LOYALTYCTL_IMPORT_INTERNAL_H
#define LP_LOYALTYCTL_IMPORT_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "events.h"
#include "http_get.h"

/* ---- records and pages ------------------------------------------------ */

/* One decoded event: an order or a customer (the source says which). */
struct imp_record {
  int is_customer;
  struct lp_order_event order;       /* owned; cleared with the page */
  struct lp_customer_event customer; /* owned; cleared with the page */
};

/* One page of a source, in source order. */
struct imp_page {
  struct imp_record *recs; /* owned */
  size_t n, cap;
  long items; /* source items read (orders, customers, data rows) */
  long bad;   /* items that could not be mapped (each reported) */
  char *next; /* owned: cursor of the following page; NULL = last page */
  /* Progress (struct imp_stats done) once the page is acknowledged: the
   * position reached when position_is_absolute (a file's byte offset),
   * else the done count grows by items. */
  long long position;
  int position_is_absolute;
};

void imp_page_init(struct imp_page *p);
/* Frees every record and the cursor; p is reusable (zeroed). */
void imp_page_clear(struct imp_page *p);
/* A new zeroed record at the end of the page (borrowed pointer, valid until
 * the next add). */
struct imp_record *imp_page_add(struct imp_page *p);
/* Drops the last record (a decode that failed after imp_page_add). */
void imp_page_drop_last(struct imp_page *p);

/* ---- shared run state --------------------------------------------------- */

/* Set by the signal handler (SIGINT/SIGTERM number), read everywhere a wait
 * may be cut short. */
extern volatile sig_atomic_t imp_stop_signal;

/* Bad items are reported on stderr up to this many per run, then counted
 * only (a file of a million bad rows must not flood the terminal). */
#define IMP_MAX_REPORTED_BAD 100
/* Reports one bad item ("loyaltyctl import: <where>: <reason>"). */
void imp_report_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Counters the summary and the progress line show. */
struct imp_stats {
  long long records;   /* produced and acknowledged this run */
  long long skipped;   /* duplicates skipped on resume */
  long long bad;       /* items that could not be mapped */
  long long pages;     /* pages completed this run */
  long long items;     /* source items completed this run */
  long long requests;  /* HTTP requests sent */
  long long throttled; /* 429 answers waited out */
  long long retries;   /* 5xx / transport errors retried */
  double waited_s;     /* time spent waiting on rate limits and backoff */
  int64_t t0_us;       /* start (monotonic) */
  /* Progress towards a known total, in the source's own unit (bytes of a
   * file, orders of a shop); total 0 = unknown. */
  long long done, total;
  long long base_records; /* records of earlier runs (from the checkpoint) */
};

/* ---- progress (import_progress.c) --------------------------------------- */

struct imp_progress;
/* label: "shopify orders", "csv", ... (copied). mode: "auto" (a bar on a
 * terminal, lines otherwise), "bar", "lines" or "none". */
struct imp_progress *imp_progress_new(const char *label, const char *mode,
                                      const struct imp_stats *st);
/* Redraws / prints when due (bar: at most 4 times a second; lines: every
 * 5 s or 10 % of the total). Cheap when not due. */
void imp_progress_tick(struct imp_progress *p);
/* Clears the bar (before another message is printed on stderr). */
void imp_progress_clear_line(struct imp_progress *p);
/* The closing summary line, always printed: outcome is "complete",
 * "interrupted", "failed" or "already complete". */
void imp_progress_summary(struct imp_progress *p, const char *outcome);
void imp_progress_destroy(struct imp_progress **p);

/* The progress of the current run, so a message printed from a source can
 * clear the bar first (NULL when none). */
extern struct imp_progress *imp_current_progress;

/* ---- HTTP with rate limits (import_http.c) ------------------------------ */

enum imp_rate_kind {
  IMP_RATE_SHOPIFY,    /* X-Shopify-Shop-Api-Call-Limit: used/size */
  IMP_RATE_BIGCOMMERCE /* X-Rate-Limit-Requests-Left / -Time-Reset-Ms */
};

struct imp_http_config {
  const char *base_url;    /* scheme://host[:port]; paths are appended */
  const char *auth_header; /* "X-Shopify-Access-Token: ..." (copied) */
  enum imp_rate_kind rate;
  long timeout_ms;   /* per request */
  int max_retries;   /* 5xx / transport errors per request */
  int max_429;       /* consecutive 429 answers per request */
  double leak_per_s; /* Shopify: assumed leak rate until measured */
};

struct imp_http;
/* Returns NULL with errstr when the URL is not http(s)://host[:port]. */
struct imp_http *imp_http_new(const struct imp_http_config *cfg,
                              struct imp_stats *st, char *errstr,
                              size_t errstr_size);
void imp_http_destroy(struct imp_http **h);

/*
 * GETs base_url + path (path starts with '/'), waiting as the rate limit
 * asks before sending and retrying 429 (after Retry-After / the reset
 * time), 5xx and transport errors (exponential backoff). Returns 0 with the
 * final response in r (2xx, 204, or a 4xx other than 429 — the caller
 * decides), -1 with errstr when retries ran out, or -2 when a signal asked
 * to stop during a wait. r is reset first.
 */
int imp_http_get(struct imp_http *h, const char *path,
                 struct lp_http_response *r, char *errstr, size_t errstr_size);

/* Percent-encodes s for a query value (caller frees). */
char *imp_url_escape(const char *s);

/* Sets the 5xx / transport retries per request; returns the old value
 * (an optional call, such as a count for the ETA, is tried once). */
int imp_http_set_max_retries(struct imp_http *h, int max_retries);

/* Path and query of an absolute or relative URL ("/admin/..."), so a Link
 * is always followed on our own base URL (the token never leaves it). NULL
 * when url has no path. Borrowed pointer into url. */
const char *imp_url_path(const char *url);

/* "status 401: <first 200 bytes of the body, printable>" into out. */
void imp_http_describe(const struct lp_http_response *r, char *out,
                       size_t out_size);

/* ---- sources ------------------------------------------------------------ */

struct imp_source {
  const char *kind;   /* "shopify", "bigcommerce", "csv" */
  char *identity;     /* owned: what is imported (checkpoint match) */
  char *first_cursor; /* owned: cursor of the first page */
  int customers;      /* 1: customer events (else order events) */
  /* Fills page (initialised, empty) with the page at cursor. 0, -1 with
   * errstr (the page cannot be read: the run stops, the checkpoint stays
   * before it), -2 interrupted by a signal. */
  int (*fetch)(struct imp_source *s, const char *cursor, struct imp_page *page,
               char *errstr, size_t errstr_size);
  /* Optional: sets st->total (count call, file size); errors are ignored. */
  void (*estimate)(struct imp_source *s, const char *cursor);
  void (*destroy)(struct imp_source *s);
  struct imp_stats *stats; /* borrowed */
};

struct imp_options {
  const char *source; /* shopify | bigcommerce | csv */
  const char *url, *token, *shop, *api_version, *resource, *updated_at_min;
  const char *created_at_max;
  const char *store_hash;
  const char *file, *format, *currency;
  long limit, timeout_ms, max_retries, rows_per_page;
  double leak_per_s;
};

struct imp_source *imp_shopify_new(const struct imp_options *o,
                                   struct imp_stats *st, char *errstr,
                                   size_t errstr_size);
struct imp_source *imp_bigcommerce_new(const struct imp_options *o,
                                       struct imp_stats *st, char *errstr,
                                       size_t errstr_size);
struct imp_source *imp_csv_new(const struct imp_options *o,
                               struct imp_stats *st, char *errstr,
                               size_t errstr_size);
void imp_source_destroy(struct imp_source **s);

/* ---- checkpoint (import_checkpoint.c) ----------------------------------- */

struct imp_checkpoint {
  char *kind;     /* owned */
  char *identity; /* owned */
  char *topic;    /* owned */
  char *cursor;   /* owned: the next page to fetch; NULL when complete */
  int complete;
  long long records, items, pages, bad, skipped; /* over all runs */
  int32_t n_partitions;
  int64_t *end_offsets; /* owned: per partition, at the checkpoint */
};

void imp_checkpoint_clear(struct imp_checkpoint *cp);
/* 1 loaded, 0 no such file, -1 unreadable or malformed (errstr says why). */
int imp_checkpoint_load(const char *path, struct imp_checkpoint *cp,
                        char *errstr, size_t errstr_size);
/* Writes path atomically: path.tmp, fsync, rename, fsync of the folder. */
int imp_checkpoint_save(const char *path, const struct imp_checkpoint *cp,
                        char *errstr, size_t errstr_size);

/* ---- Kafka (import_sink.c) ---------------------------------------------- */

/* A set of strings (event ids). */
struct imp_idset;
struct imp_idset *imp_idset_new(void);
void imp_idset_destroy(struct imp_idset **s);
/* 1 added, 0 already present (s is copied). */
int imp_idset_add(struct imp_idset *s, const char *id);
int imp_idset_has(const struct imp_idset *s, const char *id);
size_t imp_idset_count(const struct imp_idset *s);

struct imp_kafka {
  const char *bootstrap, *bootstrap_file; /* borrowed */
  struct lp_kafka_props *props;           /* borrowed (-X) */
};

struct imp_sink;
/* An idempotent producer for topic, which must exist. Reads the topic's
 * partition count and end offsets (the starting end offsets). */
struct imp_sink *imp_sink_new(const struct imp_kafka *k, const char *topic,
                              int customers, char *errstr, size_t errstr_size);
void imp_sink_destroy(struct imp_sink **s);
/* Encodes and produces one record (keyed by member); -1 with errstr when it
 * cannot be encoded or queued. */
int imp_sink_produce(struct imp_sink *s, const struct imp_record *r,
                     char *errstr, size_t errstr_size);
/* Waits until every produced record is acknowledged: 0, or -1 with errstr
 * when a delivery failed (the page must not be checkpointed). */
int imp_sink_wait(struct imp_sink *s, char *errstr, size_t errstr_size);
/* Records acknowledged so far. */
long long imp_sink_acked(const struct imp_sink *s);
/* Per-partition end offsets: each at least the offset after our last
 * acknowledged record there, and at least the end when the sink started.
 * Borrowed; n set to the partition count. */
const int64_t *imp_sink_end_offsets(const struct imp_sink *s, int32_t *n);

/*
 * Reads topic from the given per-partition offsets (partitions beyond n
 * from their start) to its current end and adds the event id of every
 * record to ids. *found = records read, *foreign = records that did not
 * decode as the expected type (ignored). 0, or -1 with errstr.
 */
int imp_resume_scan(const struct imp_kafka *k, const char *topic, int customers,
                    const int64_t *offsets, int32_t n, struct imp_idset *ids,
                    long long *found, long long *foreign, char *errstr,
                    size_t errstr_size);

/* Interruptible sleep in slices, ticking the progress; returns -1 when a
 * signal asked to stop. */
int imp_sleep_us(int64_t us);

#endif
