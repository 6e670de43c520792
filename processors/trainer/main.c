/*
 * trainer — fits the member-value models (BG/NBD and Gamma-Gamma,
 * common/clv.h) on an order history and writes a versioned model: JSON
 * to a file or stdout, and optionally to Redis for the processors. A fit
 * that does not converge is reported and nothing is written, so the
 * model in force stays.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>
#include <jansson.h>

#include "clv.h"
#include "clv_summary.h"
#include "log.h"
#include "model.h"
#include "orders_topic.h"
#include "util.h"

static const char usage[] =
    "NAME\n"
    "  trainer - fit the BG/NBD and Gamma-Gamma member-value models\n"
    "\n"
    "SYNOPSIS\n"
    "  trainer (--cdnow FILE | --topic T [--offset N] [-b SERVERS |\n"
    "          -f BOOTSTRAP_FILE]) [--calibration-end YYYYMMDD]\n"
    "          [--holdout-end YYYYMMDD] [--unit weeks|days] [--out FILE]\n"
    "          [--scoring FILE] [--redis HOST:PORT] [--namespace NS]\n"
    "          [--help]\n"
    "\n"
    "DESCRIPTION\n"
    "  Reads a transaction log, builds per-member summaries (repeat\n"
    "  purchases counted by day, the first purchase excluded, time from\n"
    "  each member's first purchase in --unit, mean repeat spend), fits\n"
    "  BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie\n"
    "  2013) by maximum likelihood, and writes the model as JSON: version,\n"
    "  parameters, data window, time unit, log-likelihoods, evaluations and\n"
    "  convergence, and the scoring settings. With --redis it stores it\n"
    "  as <ns>:model:clv:<version> and then <ns>:model:clv, where running\n"
    "  processors pick it up within their model.poll.ms (a replay can pin\n"
    "  the versioned key). Prints a summary on stderr,\n"
    "  with predicted against actual repeat purchases in the holdout\n"
    "  window when the data reach past the calibration end.\n"
    "\n"
    "  A fit that does not converge writes nothing: the model in force\n"
    "  stays, and the exit status is 1.\n"
    "\n"
    "OPTIONS\n"
    "  --cdnow FILE            CDNOW-format log: [master id,] member id,\n"
    "                          YYYYMMDD, units, value (whitespace separated)\n"
    "  --topic T               or read OrderEvents from Kafka topic T, from\n"
    "                          --offset (default 0: the beginning) to its\n"
    "                          current end; each order counts once, on the\n"
    "                          day of its first created/paid event, at its\n"
    "                          total; cancelled orders do not count\n"
    "  -b, --bootstrap S       Kafka bootstrap servers (with --topic)\n"
    "  -f, --bootstrap-file F  or read them from devbroker's file\n"
    "  --calibration-end D     last day of the fitting window (default\n"
    "                          19970930, CDNOW's 39 weeks); \"last\": the\n"
    "                          latest purchase day read, no holdout\n"
    "  --holdout-end D         last day of the holdout (default 19980630)\n"
    "  --unit U                weeks (default) or days\n"
    "  --scoring FILE          scoring settings (JSON object: discount rate,\n"
    "                          churn bands, segment thresholds, the reward\n"
    "                          catalogue; docs/models.md), stored in the\n"
    "                          model and part of its version\n"
    "  --out FILE              write the model JSON there (default stdout)\n"
    "  --redis HOST:PORT       also store it in Redis\n"
    "  --namespace NS          Redis key prefix (default loyalty)\n"
    "  --bench-score N         after fitting, time N member scorings as a\n"
    "                          processor does them (P(alive), expected\n"
    "                          purchases over 30, 90 and 365 days, expected\n"
    "                          spend, 12-month CLV, churn band, segment,\n"
    "                          next purchase, next-best reward) on one\n"
    "                          core and print score_per_s\n"
    "\n"
    "EXIT STATUS\n"
    "  0 fitted and written, 1 bad data or no convergence (nothing\n"
    "  written), 2 usage.\n";

static int read_cdnow(const char *path, struct lp_clv_builder *b, long *rows) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "trainer: %s: cannot open\n", path);
    return -1;
  }
  char line[512], id[64];
  long master, ymd, units, lineno = 0;
  double value;
  *rows = 0;
  while (fgets(line, sizeof(line), f)) {
    lineno++;
    /* CDNOW_sample.txt has a master id first (5 fields), CDNOW_master.txt
     * does not (4 fields, and a header line). */
    int fields = 0;
    for (const char *p = line; *p;) {
      while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
      if (!*p)
        break;
      fields++;
      while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
        p++;
    }
    int ok = fields == 5   ? sscanf(line, "%ld %63s %ld %ld %lf", &master, id,
                                    &ymd, &units, &value) == 5
             : fields == 4 ? sscanf(line, "%63s %ld %ld %lf", id, &ymd, &units,
                                    &value) == 4
                           : 0;
    if (!ok) {
      if (lineno == 1)
        continue; /* the master file's header */
      fprintf(stderr,
              "trainer: %s:%ld: expected 4 fields (member, YYYYMMDD, units, "
              "value) or 5 (master id first)\n",
              path, lineno);
      fclose(f);
      return -1;
    }
    int64_t day = lp_clv_day_of_ymd(ymd);
    if (day == INT64_MIN || !isfinite(value) || value < 0) {
      fprintf(stderr, "trainer: %s:%ld: bad date %ld or value %g\n", path,
              lineno, ymd, value);
      fclose(f);
      return -1;
    }
    lp_clv_builder_add(b, id, day, value);
    (*rows)++;
  }
  fclose(f);
  return 0;
}

static json_t *fit_json(const struct lp_fit_info *i) {
  return json_pack("{s:f,s:i,s:b,s:s}", "log_likelihood", i->log_likelihood,
                   "evaluations", i->iterations, "converged", i->converged,
                   "message", i->message);
}

int main(int argc, char **argv) {
  lp_log_init("trainer", LP_LOG_INFO);
  const char *cdnow = NULL, *out_path = NULL, *redis = NULL, *topic = NULL;
  const char *bootstrap = NULL, *bootstrap_file = "", *scoring_path = NULL;
  long long start_offset = 0;
  const char *ns = "loyalty", *unit = "weeks";
  long cal_end = 19970930, hold_end = 19980630, bench_n = 0;
  static const struct option opts[] = {
      {"cdnow", required_argument, NULL, 'c'},
      {"topic", required_argument, NULL, 't'},
      {"offset", required_argument, NULL, 'O'},
      {"bootstrap", required_argument, NULL, 'b'},
      {"bootstrap-file", required_argument, NULL, 'f'},
      {"calibration-end", required_argument, NULL, 'e'},
      {"holdout-end", required_argument, NULL, 'H'},
      {"unit", required_argument, NULL, 'u'},
      {"out", required_argument, NULL, 'o'},
      {"redis", required_argument, NULL, 'r'},
      {"namespace", required_argument, NULL, 'n'},
      {"bench-score", required_argument, NULL, 'B'},
      {"scoring", required_argument, NULL, 's'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "hb:f:", opts, NULL)) != -1) {
    switch (c) {
    case 't':
      topic = optarg;
      break;
    case 'O':
      start_offset = atoll(optarg);
      break;
    case 'b':
      bootstrap = optarg;
      break;
    case 'f':
      bootstrap_file = optarg;
      break;
    case 'c':
      cdnow = optarg;
      break;
    case 'e':
      cal_end = strcmp(optarg, "last") == 0 ? -1 : atol(optarg);
      break;
    case 'H':
      hold_end = atol(optarg);
      break;
    case 'u':
      unit = optarg;
      break;
    case 'o':
      out_path = optarg;
      break;
    case 'r':
      redis = optarg;
      break;
    case 'n':
      ns = optarg;
      break;
    case 'B':
      bench_n = atol(optarg);
      break;
    case 's':
      scoring_path = optarg;
      break;
    case 'h':
      fputs(usage, stdout);
      return 0;
    default:
      fputs("trainer: unknown option (see trainer --help)\n", stderr);
      return 2;
    }
  }
  double days_per_unit = strcmp(unit, "weeks") == 0  ? 7.0
                         : strcmp(unit, "days") == 0 ? 1.0
                                                     : 0;
  int64_t cal_day = cal_end == -1 ? 0 : lp_clv_day_of_ymd(cal_end),
          hold_day = lp_clv_day_of_ymd(hold_end);
  if (!cdnow == !topic || days_per_unit == 0 || cal_day == INT64_MIN ||
      hold_day == INT64_MIN || optind < argc) {
    fputs("trainer: one of --cdnow FILE or --topic T is required; --unit "
          "weeks|days; dates as YYYYMMDD (see trainer --help)\n",
          stderr);
    return 2;
  }
  json_t *scoring = NULL;
  if (scoring_path) {
    json_error_t je;
    scoring = json_load_file(scoring_path, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(scoring)) {
      fprintf(stderr, "trainer: %s: line %d column %d: %s\n", scoring_path,
              je.line, je.column,
              scoring ? "expected a JSON object of scoring settings" : je.text);
      json_decref(scoring);
      return 2;
    }
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct lp_clv_builder *b = lp_clv_builder_new();
  long rows = 0, skipped = 0;
  char rerr[512];
  if (cdnow
          ? read_cdnow(cdnow, b, &rows)
          : trainer_read_orders(bootstrap, bootstrap_file, topic, start_offset,
                                b, &rows, &skipped, rerr, sizeof(rerr))) {
    if (!cdnow)
      fprintf(stderr, "trainer: %s\n", rerr);
    lp_clv_builder_destroy(&b);
    return 1;
  }
  if (cal_end == -1) {
    /* "last": fit on everything, up to the latest purchase day; no
     * holdout. */
    cal_day = lp_clv_builder_last_day(b);
    if (cal_day == INT64_MIN) {
      fprintf(stderr, "trainer: no purchases read; nothing written\n");
      lp_clv_builder_destroy(&b);
      return 1;
    }
    char iso[40];
    lp_time_format_iso8601(cal_day * 86400000LL, iso, sizeof(iso));
    cal_end = atol(iso) * 10000 + atol(iso + 5) * 100 + atol(iso + 8);
    hold_day = cal_day;
  }
  if (skipped)
    fprintf(stderr,
            "trainer: %ld records of %s did not decode and were "
            "skipped\n",
            skipped, topic);
  const struct lp_clv_summary *s;
  size_t n = lp_clv_builder_summarise(b, cal_day, hold_day, days_per_unit, &s);
  struct lp_clv_member *members = lp_xcalloc(n ? n : 1, sizeof(*members));
  double holdout = 0;
  for (size_t i = 0; i < n; i++) {
    members[i] = s[i].s;
    holdout += s[i].holdout_x;
  }
  char err[512];
  struct lp_bgnbd m;
  struct lp_gamma_gamma g;
  struct lp_fit_info fi_b, fi_g;
  int rc = 0;
  if (lp_bgnbd_fit(members, n, &m, &fi_b, err, sizeof(err)) ||
      lp_gamma_gamma_fit(members, n, &g, &fi_g, err, sizeof(err))) {
    fprintf(stderr,
            "trainer: %s; nothing written, the model in force "
            "stays\n",
            err);
    rc = 1;
    goto done;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs =
      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  double predicted = 0;
  double horizon = (double)(hold_day - cal_day) / days_per_unit;
  for (size_t i = 0; i < n; i++)
    predicted += lp_bgnbd_expected(&m, members[i].x, members[i].t_x,
                                   members[i].T, horizon);
  /* A version that says what and when: the window's end and a digest of
   * the parameters, so the same data give the same version. */
  char version[64];
  uint64_t h = 1469598103934665603ULL;
  double ps[] = {m.r, m.alpha, m.a, m.b, g.p, g.q, g.gamma};
  for (size_t i = 0; i < LP_ARRAY_LEN(ps); i++) {
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%.9g", ps[i]);
    for (const char *p = tmp; *p; p++)
      h = (h ^ (uint8_t)*p) * 1099511628211ULL;
  }
  /* The scoring settings change the scores, so they are in the version. */
  char *stext =
      scoring ? json_dumps(scoring, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  for (const char *p = stext; p && *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ULL;
  free(stext);
  snprintf(version, sizeof(version), "clv-%ld-%08llx", cal_end,
           (unsigned long long)(h & 0xffffffffULL));
  json_t *model = json_pack(
      "{s:s,s:s,s:{s:I,s:I},s:i,s:{s:f,s:f,s:f,s:f,s:o},s:{s:f,s:f,s:f,s:o}}",
      "version", version, "time_unit", unit, "window", "first_day",
      (json_int_t)0, "calibration_end", (json_int_t)cal_end, "members", (int)n,
      "bgnbd", "r", m.r, "alpha", m.alpha, "a", m.a, "b", m.b, "fit",
      fit_json(&fi_b), "gamma_gamma", "p", g.p, "q", g.q, "gamma", g.gamma,
      "fit", fit_json(&fi_g));
  json_object_del(json_object_get(model, "window"), "first_day");
  if (scoring)
    json_object_set(model, "scoring", scoring);
  char *text = json_dumps(model, JSON_INDENT(2) | JSON_ENSURE_ASCII);
  json_decref(model);
  /* What the processors will read must pass their check: a bad scoring
   * setting is reported here, and nothing is written. */
  struct lp_model parsed;
  if (lp_model_parse(text, strlen(text), scoring_path ? scoring_path : "model",
                     &parsed, err, sizeof(err)) != 0) {
    fprintf(stderr, "trainer: %s; nothing written, the model in force stays\n",
            err);
    free(text);
    rc = 1;
    goto done;
  }
  FILE *out = out_path ? fopen(out_path, "w") : stdout;
  if (!out) {
    fprintf(stderr, "trainer: %s: cannot write\n", out_path);
    free(text);
    rc = 1;
    goto done;
  }
  fprintf(out, "%s\n", text);
  if (out_path)
    fclose(out);
  if (redis) {
    char host[256];
    int port = 0;
    redisContext *rc_ = lp_host_port_parse(redis, host, sizeof(host), &port)
                            ? NULL
                            : redisConnect(host, port);
    /* The versioned copy first: once the current key names a version,
     * that version can be pinned. */
    redisReply *r =
        rc_ && !rc_->err
            ? redisCommand(rc_, "SET %s:model:clv:%s %s", ns, version, text)
            : NULL;
    if (r && r->type != REDIS_REPLY_ERROR) {
      freeReplyObject(r);
      r = redisCommand(rc_, "SET %s:model:clv %s", ns, text);
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
      fprintf(stderr, "trainer: redis %s: could not store the model\n", redis);
      rc = 1;
    }
    if (r)
      freeReplyObject(r);
    if (rc_)
      redisFree(rc_);
  }
  free(text);
  fprintf(stderr,
          "trainer: %ld purchases, %zu members, fitted in %.2f s\n"
          "  BG/NBD r=%.6f alpha=%.6f a=%.6f b=%.6f LL=%.4f (%d evaluations, "
          "%s)\n"
          "  Gamma-Gamma p=%.6f q=%.6f gamma=%.6f LL=%.4f (%d evaluations, "
          "%s)\n"
          "  holdout (%.1f %s): predicted %.1f repeat purchases, actual %.0f "
          "(%+.1f%%)\n"
          "  model %s\n",
          rows, n, secs, m.r, m.alpha, m.a, m.b, fi_b.log_likelihood,
          fi_b.iterations, fi_b.message, g.p, g.q, g.gamma, fi_g.log_likelihood,
          fi_g.iterations, fi_g.message, horizon, unit, predicted, holdout,
          holdout > 0 ? 100.0 * (predicted - holdout) / holdout : 0.0, version);
  fprintf(stderr, "trainer: fit_s=%.3f\n", secs);
  if (bench_n > 0 && n > 0) {
    /* What a processor computes per event (lp_model_score), over
     * profiles made from the real members' summaries. */
    struct lp_profile *profs = lp_xcalloc(n, sizeof(*profs));
    const double unit_ms = days_per_unit * 86400000.0;
    const int64_t at = (int64_t)1e12;
    for (size_t i = 0; i < n; i++) {
      struct lp_profile *pr = &profs[i];
      pr->exists = 1;
      pr->order_count = pr->orders_placed = pr->purchase_days =
          (int64_t)members[i].x + 1;
      pr->first_order_ms = at - (int64_t)(members[i].T * unit_ms);
      pr->last_order_ms =
          pr->first_order_ms + (int64_t)(members[i].t_x * unit_ms);
      pr->lifetime_spend_micros =
          (int64_t)(members[i].m * 1e6) * pr->order_count;
    }
    struct timespec b0, b1;
    double sink = 0;
    clock_gettime(CLOCK_MONOTONIC, &b0);
    for (long k = 0; k < bench_n; k++) {
      struct lp_scores sc;
      lp_model_score(&parsed, &profs[(size_t)k % n], at, &sc);
      sink += sc.p_alive + sc.expected_30d + sc.expected_90d +
              sc.expected_365d + sc.expected_spend + sc.clv_12m +
              (double)sc.segment + (double)sc.next_best;
    }
    free(profs);
    clock_gettime(CLOCK_MONOTONIC, &b1);
    double bs = (double)(b1.tv_sec - b0.tv_sec) +
                (double)(b1.tv_nsec - b0.tv_nsec) / 1e9;
    fprintf(stderr, "trainer: score_per_s=%.0f (checksum %.3f)\n", bench_n / bs,
            sink);
  }
done:
  json_decref(scoring);
  free(members);
  lp_clv_builder_destroy(&b);
  return rc;
}
