/*
 * import.c — `loyaltyctl import shopify|bigcommerce|csv`: the command line
 * and the page loop every source shares.
 *
 * The loop, for each page of the source:
 *   1. fetch page N+1 (HTTP / file) while page N's records are in flight;
 *   2. wait until every record of page N is acknowledged (idempotent
 *      producer), then checkpoint: the cursor of page N+1, the counts, and
 *      the topic's per-partition end offsets (import_sink.c);
 *   3. produce page N+1, skipping event ids already in the topic.
 * Nothing of page N+1 is produced before page N is checkpointed, so the
 * records above a checkpoint's offsets can only belong to the page at its
 * cursor. A restart with that checkpoint reads them back (the resume scan),
 * skips their event ids while it re-imports that page, and goes on: a run
 * killed at any point (SIGKILL included) and re-run leaves every record in
 * the topic exactly once. A checkpoint is written before the first record
 * is produced, so even a kill during the first page is covered.
 *
 * SIGINT/SIGTERM stop after the page in hand (it is acknowledged and
 * checkpointed) and exit 130/143 with a resume hint. Any failure — a page
 * that cannot be read after the retries, a record not acknowledged — stops
 * the run before that page is checkpointed; nothing is ever skipped.
 */
#include "import.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "import_internal.h"
#include "util.h"

const char lp_import_usage[] =
    "  import shopify --url URL --token T --shop SHOP [--api-version V]\n"
    "            [--resource orders|customers] [--updated-at-min RFC3339]\n"
    "  import bigcommerce --url URL --store-hash H --token T [--shop S]\n"
    "  import csv --file PATH --shop SHOP [--format csv|cdnow]\n"
    "            [--checkpoint FILE] [--topic T] [--progress MODE] ...\n"
    "      Resumable backfill of a shop's history into the orders (or\n"
    "      customers) topic, exactly once per event id when re-run with\n"
    "      the same --checkpoint after any stop, a kill -9 included.\n"
    "      Details: loyaltyctl import --help, docs/importers.md.\n";

static const char import_help[] =
    "NAME\n"
    "  loyaltyctl import - resumable backfills into the orders topic\n"
    "\n"
    "SYNOPSIS\n"
    "  loyaltyctl import shopify --url http://HOST:PORT --token T --shop SHOP\n"
    "      [--api-version 2025-01] [--resource orders|customers]\n"
    "      [--updated-at-min RFC3339] [--created-at-max RFC3339]\n"
    "      [--limit 1..250] [--leak-per-s R]\n"
    "  loyaltyctl import bigcommerce --url http://HOST:PORT --store-hash H\n"
    "      --token T [--shop S] [--updated-at-min DATE] [--limit 1..250]\n"
    "  loyaltyctl import csv --file PATH --shop SHOP [--format csv|cdnow]\n"
    "      [--currency USD] [--rows-per-page N]\n"
    "  common: [--checkpoint FILE] [--topic T] [--progress MODE]\n"
    "      [--timeout-ms MS] [--max-retries N] [-b SERVERS | -f FILE]\n"
    "      [-X prop=value ...]\n"
    "\n"
    "OPTIONS (default)\n"
    "  --url URL            the shop's base URL, http(s)://HOST[:PORT]\n"
    "  --token T            access token (or LOYALTY_IMPORT_TOKEN in the\n"
    "                       environment: stays out of ps); never printed\n"
    "  --shop S             shop of the events (bigcommerce: bc-<hash>)\n"
    "  --api-version V      Shopify REST version (2025-01)\n"
    "  --resource R         Shopify: orders|customers (orders)\n"
    "  --updated-at-min T   only orders updated since T (none)\n"
    "  --created-at-max T   Shopify: only orders created up to T, e.g. when\n"
    "                       the bridge went live (none)\n"
    "  --store-hash H       BigCommerce store hash (required)\n"
    "  --file PATH          csv: the file (required)\n"
    "  --format F           csv: csv|cdnow (csv)\n"
    "  --currency C         csv: currency when no column says (USD)\n"
    "  --limit N            records per request, 1..250 (250)\n"
    "  --rows-per-page N    csv: rows per page / checkpoint (1000)\n"
    "  --leak-per-s R       Shopify: leak rate assumed until measured (2)\n"
    "  --timeout-ms MS      per HTTP request (30000)\n"
    "  --max-retries N      5xx/transport retries per request (8)\n"
    "  --checkpoint FILE    resumable run (none: a run cannot resume)\n"
    "  --topic T            orders (customers for --resource customers)\n"
    "  --progress MODE      auto|bar|lines|none (auto: bar on a tty)\n"
    "  -b, -f, -X           Kafka servers, devbroker file, librdkafka props\n"
    "\n"
    "SOURCES\n"
    "  shopify      GET /admin/api/V/orders.json?status=any&limit=250, then\n"
    "               each Link rel=\"next\" page_info URL (followed on --url).\n"
    "               Every order -> a created event; cancelled_at -> a\n"
    "               cancelled event; each refunds[] entry -> a refunded\n"
    "               event. --resource customers: customers.json -> customer\n"
    "               events (topic customers). Honours the leaky bucket\n"
    "               (X-Shopify-Shop-Api-Call-Limit) and 429 Retry-After.\n"
    "  bigcommerce  GET /stores/H/v2/orders?page=P&limit=250&sort=id:asc\n"
    "               until 204 or [], and v2/orders/{id}/products per order.\n"
    "               Every order -> created; cancelled/refunded status -> a\n"
    "               second event. Honours X-Rate-Limit-Requests-Left /\n"
    "               X-Rate-Limit-Time-Reset-Ms and 429.\n"
    "  csv          --format csv: header customer,date,amount[,order_id]\n"
    "               [,currency]; date YYYY-MM-DD or RFC 3339. Order id =\n"
    "               order_id, else csv-<line>; event id csv:<shop>:<order>.\n"
    "               --format cdnow: the CDNOW layout (customer [id] YYYYMMDD\n"
    "               cds amount), ids cdnow-<row> as `loyaltyctl cdnow`.\n"
    "               Malformed rows are reported with their line number,\n"
    "               counted and skipped (exit status 1 at the end).\n"
    "\n"
    "RESUMING (--checkpoint FILE)\n"
    "  The file (written atomically: tmp, fsync, rename) holds the cursor of\n"
    "  the next page after the last fully acknowledged one, the counts, and\n"
    "  the topic's per-partition end offsets at that moment. Records are\n"
    "  produced idempotently and a page is checkpointed only once all its\n"
    "  records are acknowledged. Re-run the same command after any stop —\n"
    "  Ctrl-C, SIGTERM, a crash, kill -9, a failed run: the records written\n"
    "  after the checkpoint are read back from the topic and their event ids\n"
    "  skipped while the import continues from the cursor, so the topic\n"
    "  holds every record exactly once. A complete checkpoint makes a re-run\n"
    "  a no-op; delete the file to import again. Without --checkpoint a run\n"
    "  cannot resume (a re-run starts over; the processors dedupe on event\n"
    "  id, the topic would hold duplicates).\n"
    "\n"
    "PROGRESS\n"
    "  On a terminal a one-line bar (records, rate, pages, 429s, ETA when\n"
    "  the total is known); otherwise a line every 5 s or 10 %. A summary\n"
    "  line always: records, pages, duplicates_skipped, bad, 429s, retries,\n"
    "  waited, elapsed.\n"
    "\n"
    "EXIT STATUS\n"
    "  0 complete, 1 failed or bad records skipped, 2 usage, 130/143\n"
    "  stopped by SIGINT/SIGTERM (resume by running the same command).\n";

volatile sig_atomic_t imp_stop_signal;

static void on_stop(int sig) {
  imp_stop_signal = sig;
}

/* ---- pages -------------------------------------------------------------- */

void imp_page_init(struct imp_page *p) {
  memset(p, 0, sizeof(*p));
}

void imp_page_clear(struct imp_page *p) {
  for (size_t i = 0; i < p->n; i++) {
    lp_order_event_clear(&p->recs[i].order);
    lp_customer_event_clear(&p->recs[i].customer);
  }
  free(p->recs);
  free(p->next);
  imp_page_init(p);
}

struct imp_record *imp_page_add(struct imp_page *p) {
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 256;
    p->recs = lp_xrealloc(p->recs, p->cap * sizeof(*p->recs));
  }
  struct imp_record *r = &p->recs[p->n++];
  memset(r, 0, sizeof(*r));
  return r;
}

void imp_page_drop_last(struct imp_page *p) {
  LP_ASSERT(p->n > 0);
  struct imp_record *r = &p->recs[--p->n];
  lp_order_event_clear(&r->order);
  lp_customer_event_clear(&r->customer);
}

void imp_source_destroy(struct imp_source **sp) {
  struct imp_source *s = *sp;
  if (!s)
    return;
  if (s->destroy)
    s->destroy(s);
  free(s->identity);
  free(s->first_cursor);
  free(s);
  *sp = NULL;
}

/* ---- the run ------------------------------------------------------------ */

struct run {
  const char *checkpoint_path;
  const char *topic;
  struct imp_source *src;
  struct imp_sink *sink;
  struct imp_idset *seen; /* ids found by the resume scan, or NULL */
  struct imp_checkpoint cp;
  struct imp_stats st;
  struct imp_progress *progress;
};

static void say(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct run *r, const char *fmt, ...) {
  va_list ap;
  imp_progress_clear_line(r->progress);
  fputs("loyaltyctl import: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* Checkpoints "everything before next is acknowledged". */
static int save_checkpoint(struct run *r, const char *next, char *errstr,
                           size_t errstr_size) {
  if (!r->checkpoint_path)
    return 0;
  struct imp_checkpoint *cp = &r->cp;
  free(cp->cursor);
  cp->cursor = next ? lp_xstrdup(next) : NULL;
  cp->complete = next == NULL;
  int32_t n;
  const int64_t *end = imp_sink_end_offsets(r->sink, &n);
  free(cp->end_offsets);
  cp->n_partitions = n;
  cp->end_offsets = lp_xcalloc(n ? (size_t)n : 1, sizeof(int64_t));
  memcpy(cp->end_offsets, end, (size_t)n * sizeof(int64_t));
  return imp_checkpoint_save(r->checkpoint_path, cp, errstr, errstr_size);
}

/* Produces a page's records, skipping those the resume scan found. */
static int produce_page(struct run *r, struct imp_page *page, char *errstr,
                        size_t errstr_size) {
  char err[512];
  for (size_t i = 0; i < page->n; i++) {
    const struct imp_record *rec = &page->recs[i];
    const char *id =
        rec->is_customer ? rec->customer.event_id : rec->order.event_id;
    if (r->seen && imp_idset_has(r->seen, id)) {
      r->st.skipped++;
      r->cp.skipped++;
      continue;
    }
    if (imp_sink_produce(r->sink, rec, err, sizeof(err)) != 0) {
      if (strncmp(err, "encode:", 7) == 0) {
        /* The decoder accepted what the encoder refuses: a bad record. */
        page->bad++;
        imp_report_bad("%s: %s", id, err);
        continue;
      }
      return lp_err(errstr, errstr_size, "%s", err);
    }
  }
  return 0;
}

/* The page loop (see the file comment). Returns "complete", "interrupted"
 * or "failed". */
static const char *run_pages(struct run *r, char *cursor) {
  char err[1024];
  struct imp_page page, pending;
  imp_page_init(&page);
  imp_page_init(&pending);
  int have_pending = 0, failed = 0;
  long long acked_before = imp_sink_acked(r->sink);
  for (;;) {
    int have = 0;
    if (cursor && !imp_stop_signal) {
      int rc = r->src->fetch(r->src, cursor, &page, err, sizeof(err));
      if (rc == 0)
        have = 1;
      else if (rc == -1) {
        say(r, "error: %s", err);
        failed = 1;
      }
    }
    if (have_pending) {
      if (imp_sink_wait(r->sink, err, sizeof(err)) != 0) {
        say(r, "error: %s (the page is not checkpointed)", err);
        failed = 1;
        break;
      }
      r->st.records = imp_sink_acked(r->sink) - acked_before;
      r->st.pages++;
      r->st.items += pending.items;
      if (pending.position_is_absolute)
        r->st.done = pending.position;
      else
        r->st.done += pending.items;
      r->st.bad += pending.bad;
      r->cp.records = r->st.base_records + r->st.records;
      r->cp.pages++;
      r->cp.items += pending.items;
      r->cp.bad += pending.bad;
      if (save_checkpoint(r, cursor, err, sizeof(err)) != 0) {
        say(r, "error: %s", err);
        failed = 1;
        break;
      }
      imp_page_clear(&pending);
      have_pending = 0;
      imp_progress_tick(r->progress);
    }
    if (!have || failed || imp_stop_signal)
      break;
    if (produce_page(r, &page, err, sizeof(err)) != 0) {
      say(r, "error: %s", err);
      failed = 1;
      /* What was queued is still waited for, so it is not lost from the
       * counts; the page itself is not checkpointed. */
      imp_sink_wait(r->sink, err, sizeof(err));
      break;
    }
    pending = page;
    imp_page_init(&page);
    have_pending = 1;
    free(cursor);
    cursor = pending.next ? lp_xstrdup(pending.next) : NULL;
    imp_progress_tick(r->progress);
  }
  int complete = !failed && !cursor && !have_pending;
  imp_page_clear(&page);
  imp_page_clear(&pending);
  free(cursor);
  r->st.records = imp_sink_acked(r->sink) - acked_before;
  return failed ? "failed" : complete ? "complete" : "interrupted";
}

/* Reads the checkpoint or starts one; returns the cursor to start from
 * (caller frees), NULL when the run must not go on (*rc says how). */
static char *start_or_resume(struct run *r, const struct imp_kafka *k,
                             int *rc) {
  char err[1024];
  struct imp_checkpoint *cp = &r->cp;
  int got = r->checkpoint_path
                ? imp_checkpoint_load(r->checkpoint_path, cp, err, sizeof(err))
                : 0;
  if (got < 0) {
    say(r, "error: %s", err);
    *rc = 1;
    return NULL;
  }
  if (got == 1) {
    if (strcmp(cp->kind, r->src->kind) ||
        strcmp(cp->identity, r->src->identity) || strcmp(cp->topic, r->topic)) {
      say(r,
          "error: checkpoint %s is for \"%s\" into %s, not \"%s\" into %s: "
          "use another --checkpoint file",
          r->checkpoint_path, cp->identity, cp->topic, r->src->identity,
          r->topic);
      *rc = 2;
      return NULL;
    }
    r->st.base_records = cp->records;
    if (cp->complete) {
      say(r,
          "checkpoint %s says this import is complete (%lld records); "
          "delete it to import again",
          r->checkpoint_path, cp->records);
      *rc = 0;
      return NULL;
    }
    r->seen = imp_idset_new();
    long long found, foreign;
    if (imp_resume_scan(k, r->topic, r->src->customers, cp->end_offsets,
                        cp->n_partitions, r->seen, &found, &foreign, err,
                        sizeof(err)) != 0) {
      say(r, "error: resume scan: %s", err);
      *rc = imp_stop_signal ? 128 + imp_stop_signal : 1;
      return NULL;
    }
    say(r,
        "resuming from %s (%lld records, %lld pages so far): %lld record(s) "
        "written after it found in %s%s, their event ids will be skipped",
        r->checkpoint_path, cp->records, cp->pages, found, r->topic,
        foreign ? " (plus records of another type, ignored)" : "");
    r->st.done = cp->items;
    return lp_xstrdup(cp->cursor);
  }
  if (r->checkpoint_path) {
    cp->kind = lp_xstrdup(r->src->kind);
    cp->identity = lp_xstrdup(r->src->identity);
    cp->topic = lp_xstrdup(r->topic);
    /* Before the first record: a kill during page 1 resumes too. */
    if (save_checkpoint(r, r->src->first_cursor, err, sizeof(err)) != 0) {
      say(r, "error: %s", err);
      *rc = 1;
      return NULL;
    }
  }
  return lp_xstrdup(r->src->first_cursor);
}

static int usage_error(const char *msg) {
  fprintf(stderr, "loyaltyctl import: %s (see loyaltyctl import --help)\n",
          msg);
  return 2;
}

int lp_import_main(int argc, char **argv) {
  struct imp_options o;
  memset(&o, 0, sizeof(o));
  o.max_retries = 8;
  struct lp_kafka_props props = {0};
  struct imp_kafka k = {NULL, NULL, &props};
  const char *checkpoint = NULL, *topic = NULL, *progress_mode = "auto";
  int rc = 2;
  if (argc < 3 || strcmp(argv[2], "-h") == 0 ||
      strcmp(argv[2], "--help") == 0) {
    fputs(import_help, argc < 3 ? stderr : stdout);
    return argc < 3 ? 2 : 0;
  }
  o.source = argv[2];
  curl_global_init(CURL_GLOBAL_DEFAULT);
  static const struct option longopts[] = {
      {"url", required_argument, NULL, 'u'},
      {"token", required_argument, NULL, 't'},
      {"shop", required_argument, NULL, 's'},
      {"api-version", required_argument, NULL, 'V'},
      {"resource", required_argument, NULL, 'r'},
      {"updated-at-min", required_argument, NULL, 'm'},
      {"created-at-max", required_argument, NULL, 'M'},
      {"store-hash", required_argument, NULL, 'H'},
      {"file", required_argument, NULL, 'i'},
      {"format", required_argument, NULL, 'F'},
      {"currency", required_argument, NULL, 'c'},
      {"checkpoint", required_argument, NULL, 'C'},
      {"topic", required_argument, NULL, 'T'},
      {"progress", required_argument, NULL, 'p'},
      {"limit", required_argument, NULL, 'l'},
      {"rows-per-page", required_argument, NULL, 'R'},
      {"timeout-ms", required_argument, NULL, 'w'},
      {"max-retries", required_argument, NULL, 'x'},
      {"leak-per-s", required_argument, NULL, 'L'},
      {"bootstrap", required_argument, NULL, 'b'},
      {"bootstrap-file", required_argument, NULL, 'f'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  optind = 3;
  int c;
  char *end;
  while ((c = getopt_long(argc, argv, "b:f:X:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'u':
      o.url = optarg;
      break;
    case 't':
      o.token = optarg;
      break;
    case 's':
      o.shop = optarg;
      break;
    case 'V':
      o.api_version = optarg;
      break;
    case 'r':
      o.resource = optarg;
      break;
    case 'm':
      o.updated_at_min = optarg;
      break;
    case 'M':
      o.created_at_max = optarg;
      break;
    case 'H':
      o.store_hash = optarg;
      break;
    case 'i':
      o.file = optarg;
      break;
    case 'F':
      o.format = optarg;
      break;
    case 'c':
      o.currency = optarg;
      break;
    case 'C':
      checkpoint = optarg;
      break;
    case 'T':
      topic = optarg;
      break;
    case 'p':
      progress_mode = optarg;
      if (strcmp(optarg, "auto") && strcmp(optarg, "bar") &&
          strcmp(optarg, "lines") && strcmp(optarg, "none")) {
        rc = usage_error("--progress auto|bar|lines|none");
        goto done;
      }
      break;
    case 'l':
      o.limit = strtol(optarg, &end, 10);
      if (*end || o.limit < 1 || o.limit > 250) {
        rc = usage_error("--limit expects 1..250");
        goto done;
      }
      break;
    case 'R':
      o.rows_per_page = strtol(optarg, &end, 10);
      if (*end || o.rows_per_page < 1 || o.rows_per_page > 1000000) {
        rc = usage_error("--rows-per-page expects 1..1000000");
        goto done;
      }
      break;
    case 'w':
      o.timeout_ms = strtol(optarg, &end, 10);
      if (*end || o.timeout_ms < 1) {
        rc = usage_error("--timeout-ms expects a positive integer");
        goto done;
      }
      break;
    case 'x':
      o.max_retries = strtol(optarg, &end, 10);
      if (*end || o.max_retries < 0 || o.max_retries > 1000) {
        rc = usage_error("--max-retries expects 0..1000");
        goto done;
      }
      break;
    case 'L':
      o.leak_per_s = strtod(optarg, &end);
      if (*end || !(o.leak_per_s > 0)) {
        rc = usage_error("--leak-per-s expects a positive number");
        goto done;
      }
      break;
    case 'b':
      k.bootstrap = optarg;
      break;
    case 'f':
      k.bootstrap_file = optarg;
      break;
    case 'X': {
      char *eq = strchr(optarg, '=');
      if (!eq) {
        rc = usage_error("-X expects prop=value");
        goto done;
      }
      *eq = '\0';
      lp_kafka_props_set(&props, optarg, eq + 1);
      break;
    }
    case 'h':
      fputs(import_help, stdout);
      rc = 0;
      goto done;
    default:
      rc = usage_error("unknown option");
      goto done;
    }
  }
  if (optind < argc) {
    rc = usage_error("unexpected argument");
    goto done;
  }
  /* A token in the environment stays out of ps and shell history. */
  if (!o.token)
    o.token = getenv("LOYALTY_IMPORT_TOKEN");

  struct run r;
  memset(&r, 0, sizeof(r));
  r.checkpoint_path = checkpoint;
  r.st.t0_us = lp_mono_us();
  char err[1024];
  if (strcmp(o.source, "shopify") == 0)
    r.src = imp_shopify_new(&o, &r.st, err, sizeof(err));
  else if (strcmp(o.source, "bigcommerce") == 0)
    r.src = imp_bigcommerce_new(&o, &r.st, err, sizeof(err));
  else if (strcmp(o.source, "csv") == 0)
    r.src = imp_csv_new(&o, &r.st, err, sizeof(err));
  else {
    rc = usage_error("import: source shopify|bigcommerce|csv");
    goto done;
  }
  if (!r.src) {
    fprintf(stderr, "loyaltyctl import: %s\n", err);
    rc = strstr(err, "required") || strstr(err, "--") ? 2 : 1;
    goto done;
  }
  r.topic = topic ? topic : r.src->customers ? "customers" : "orders";

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  char label[64];
  snprintf(label, sizeof(label), "%s%s", o.source,
           r.src->customers ? " customers" : "");
  r.progress = imp_progress_new(label, progress_mode, &r.st);
  imp_current_progress = r.progress;
  r.sink = imp_sink_new(&k, r.topic, r.src->customers, err, sizeof(err));
  const char *outcome = "failed";
  int hint = 1; /* a re-run can help (not after a bad checkpoint file) */
  if (!r.sink) {
    say(&r, "error: %s", err);
    rc = 1;
  } else {
    char *cursor = start_or_resume(&r, &k, &rc);
    hint = cursor != NULL || rc > 128;
    if (cursor) {
      if (r.src->estimate)
        r.src->estimate(r.src, cursor);
      outcome = run_pages(&r, cursor); /* takes cursor */
      if (strcmp(outcome, "complete") == 0)
        rc = r.st.bad > 0 ? 1 : 0;
      else if (strcmp(outcome, "interrupted") == 0)
        rc = 128 + (imp_stop_signal ? imp_stop_signal : SIGINT);
      else
        rc = 1;
    } else if (rc == 0) {
      outcome = "already complete";
    } else if (rc > 128) {
      outcome = "interrupted";
    }
  }
  /* The summary, whatever happened. */
  imp_progress_summary(r.progress, outcome);
  if (rc == 1 && strcmp(outcome, "complete") == 0)
    say(&r, "%lld bad record(s) were skipped (reported above)", r.st.bad);
  else if (rc != 0 && hint)
    say(&r, "%s",
        checkpoint ? "resume: run the same command again (same "
                     "--checkpoint); records already written are skipped"
                   : "no --checkpoint was given: this run cannot be "
                     "resumed");
  imp_sink_destroy(&r.sink);
  imp_idset_destroy(&r.seen);
  imp_checkpoint_clear(&r.cp);
  imp_progress_destroy(&r.progress);
  imp_source_destroy(&r.src);
done:
  curl_global_cleanup();
  lp_config_free(NULL, 0, NULL, &props);
  return rc;
}
