/*
 * loyaltyctl — the operator's and tester's command line: produce events
 * (canonical JSON, Shopify JSON, raw bytes, the synthetic shop, CDNOW),
 * dump topics as canonical JSON, wait for a consumer group to drain, read
 * a member's profile, and run the bare consume->produce passthrough that
 * the benchmark uses as its ceiling.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "avro_codec.h"
#include "config.h"
#include "json_codec.h"
#include "kafka.h"
#include "log.h"
#include "profile_store.h"
#include "rules.h"
#include "shop_generator.h"
#include "util.h"

#include "import.h"
#include "operator.h"
#include "segments.h"

static const char usage[] =
    "NAME\n"
    "  loyaltyctl - produce, inspect and measure loyalty pipeline topics\n"
    "\n"
    "SYNOPSIS\n"
    "  loyaltyctl COMMAND [OPTIONS]\n"
    "\n"
    "COMMANDS\n"
    "  produce   --type order|customer|activity|decision\n"
    "            [--format avro|json|hex]\n"
    "            [--topic T] [--header NAME=VALUE ...] [--key K]\n"
    "      Reads stdin line by line. avro: canonical JSON records, encoded\n"
    "      as Avro single-object records; json: each line produced\n"
    "      unchanged (canonical JSON or a Shopify body); hex: each line is\n"
    "      the hex of the raw value (for bad-input tests). The key is the\n"
    "      member (shop:customer) when the line decodes, else --key.\n"
    "  generate  [--customers N] [--orders N] [--seed S] [--shop S]\n"
    "            [--rate EVENTS_PER_S] [--only orders|customers] [--stdout]\n"
    "      The deterministic synthetic shop: produces to the orders and\n"
    "      customers topics (Avro), or prints canonical JSON with --stdout.\n"
    "  rules-check --file PATH\n"
    "      Loads a rule file or directory as the processors do; prints the\n"
    "      rule count and digest, or the file, position and reason.\n"
    "  encode    --type order|customer|activity\n"
    "      Canonical JSON lines on stdin -> hex of their Avro encoding.\n"
    "  cdnow     --file PATH [--shop S] [--stdout]\n"
    "      Produces the CDNOW purchase history as order events.\n"
    "  consume   --topic T\n"
    "            --type order|customer|activity|decision|dead_letter|\n"
    "                   action_result\n"
    "            [--idle-ms MS] [--expect N] [--format json|hex]\n"
    "      Prints every record of the topic from the beginning as canonical\n"
    "      JSON, one per line, and exits at the end of all partitions (after\n"
    "      at least N records with --expect, or after --idle-ms of silence;\n"
    "      before the first record or partition end, at least 10 s).\n"
    "  wait      --group G --topic T [--timeout-ms MS]\n"
    "      Waits until group G has committed the end of every partition of\n"
    "      T (the pipeline drained); exit 1 on timeout.\n"
    "  profile   --shop S --customer C [--redis HOST:PORT] [--namespace NS]\n"
    "      Prints a member's profile as JSON.\n"
    "  passthrough --from T --to T2 [--group G] [--count N]\n"
    "      Bare consume->produce with the processors' offset discipline:\n"
    "      the benchmark's ceiling. Exits after N records.\n";

/* After the operator commands (operator.c). */
static const char usage_tail[] =
    "\n"
    "COMMON OPTIONS\n"
    "  -b, --bootstrap SERVERS   Kafka bootstrap servers\n"
    "  -f, --bootstrap-file F    read them from devbroker's file\n"
    "  -X prop=value             librdkafka property (repeatable)\n"
    "  -h, --help                this text\n"
    "\n"
    "EXIT STATUS\n"
    "  0 success, 1 run-time failure (e.g. timeout, bad input line), 2 usage\n";

struct opts {
  const char *bootstrap, *bootstrap_file;
  struct lp_kafka_props kafka;
  const char *type, *format, *topic, *key, *file, *shop, *group, *to;
  const char *redis, *ns, *customer, *only;
  const char *header_names[16], *header_values[16];
  int n_headers;
  long customers, orders, count, idle_ms, expect, timeout_ms, rate;
  unsigned long long seed;
  int to_stdout;
};

static void print_usage(FILE *out) {
  fputs(usage, out);
  fputs("\nOPERATOR COMMANDS (the executor's state in Redis)\n", out);
  fputs(lp_operator_usage, out);
  fputs("\nMEMBER-VALUE SCORES (the model in force, docs/models.md)\n", out);
  fputs(lp_segments_usage, out);
  /* import: resumable backfills (import.c) */
  fputs("\nIMPORTERS (resumable backfills, docs/importers.md)\n", out);
  fputs(lp_import_usage, out);
  fputs(usage_tail, out);
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

static int fail_usage(const char *msg) {
  fprintf(stderr, "loyaltyctl: %s (see loyaltyctl --help)\n", msg);
  return 2;
}

/* Builds a client of the given type from the common options; dr, when
 * set, is the producer's delivery report callback (opaque passed to it). */
static rd_kafka_t *
make_client(struct opts *o, rd_kafka_type_t type, const char *const *defaults,
            void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *),
            void *opaque) {
  char err[512];
  if (o->bootstrap)
    lp_kafka_props_set(&o->kafka, "bootstrap.servers", o->bootstrap);
  if (lp_kafka_resolve_bootstrap(&o->kafka, o->bootstrap_file, err,
                                 sizeof(err))) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    return NULL;
  }
  rd_kafka_conf_t *conf =
      lp_kafka_conf_build(defaults, &o->kafka, err, sizeof(err));
  if (!conf) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    return NULL;
  }
  if (dr) {
    rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_conf_set_opaque(conf, opaque);
  }
  rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    fprintf(stderr, "loyaltyctl: %s\n", err);
  }
  return rk;
}

static const char *const producer_defaults[] = {
    "enable.idempotence",           "true",   "linger.ms", "10",
    "queue.buffering.max.messages", "500000", NULL};

static int delivery_failures;
static void count_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *op) {
  (void)rk;
  (void)op;
  if (m->err) {
    delivery_failures++;
    fprintf(stderr, "loyaltyctl: delivery failed: %s\n",
            rd_kafka_err2str(m->err));
  }
}

static rd_kafka_t *make_producer(struct opts *o) {
  return make_client(o, RD_KAFKA_PRODUCER, producer_defaults, count_dr, NULL);
}

/* Produces one record (copied), waiting while the local queue is full. */
static int send_record(rd_kafka_t *rk, const char *topic, const char *key,
                       const void *value, size_t len, struct opts *o) {
  for (;;) {
    rd_kafka_headers_t *hdrs = NULL;
    if (o && o->n_headers) {
      hdrs = rd_kafka_headers_new((size_t)o->n_headers);
      for (int i = 0; i < o->n_headers; i++)
        rd_kafka_header_add(hdrs, o->header_names[i], -1, o->header_values[i],
                            -1);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_END);
    if (!err)
      return 0;
    if (hdrs)
      rd_kafka_headers_destroy(hdrs);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      fprintf(stderr, "loyaltyctl: produce to %s: %s\n", topic,
              rd_kafka_err2str(err));
      return -1;
    }
    rd_kafka_poll(rk, 10);
  }
}

static int finish_producer(rd_kafka_t *rk) {
  while (rd_kafka_outq_len(rk) > 0 && !interrupted)
    rd_kafka_flush(rk, 500);
  rd_kafka_destroy(rk);
  return delivery_failures ? 1 : 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int cmd_produce(struct opts *o) {
  int is_order, is_decision, is_activity;
  if (!o->type || (strcmp(o->type, "order") && strcmp(o->type, "customer") &&
                   strcmp(o->type, "activity") && strcmp(o->type, "decision")))
    return fail_usage(
        "produce: --type order|customer|activity|decision is required");
  is_order = strcmp(o->type, "order") == 0;
  is_decision = strcmp(o->type, "decision") == 0;
  is_activity = strcmp(o->type, "activity") == 0;
  const char *format = o->format ? o->format : "avro";
  const char *topic = o->topic      ? o->topic
                      : is_order    ? "orders"
                      : is_decision ? "decisions"
                      : is_activity ? "activity"
                                    : "customers";
  char err[512];
  struct lp_avro_codec *avro = lp_avro_codec_new(NULL, err, sizeof(err));
  if (!avro) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    return 1;
  }
  rd_kafka_t *rk = make_producer(o);
  if (!rk) {
    lp_avro_codec_destroy(&avro);
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0, sent = 0;
  int rc = 0;
  struct lp_buf buf;
  lp_buf_init(&buf);
  struct lp_json_hints hints = {0};
  for (int i = 0; i < o->n_headers; i++) {
    if (strcasecmp(o->header_names[i], "X-Shopify-Topic") == 0)
      hints.shopify_topic = o->header_values[i];
    else if (strcasecmp(o->header_names[i], "X-Shopify-Shop-Domain") == 0)
      hints.shop_domain = o->header_values[i];
    else if (strcasecmp(o->header_names[i], "X-Shopify-Event-Id") == 0)
      hints.shopify_event_id = o->header_values[i];
  }
  hints.default_shop = o->shop;
  while ((n = getline(&line, &cap, stdin)) > 0 && !interrupted) {
    lineno++;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (n == 0)
      continue;
    lp_buf_reset(&buf);
    char *key = o->key ? lp_xstrdup(o->key) : NULL;
    if (strcmp(format, "hex") == 0) {
      for (ssize_t i = 0; i + 1 < n; i += 2) {
        int hi = hexval(line[i]), lo = hexval(line[i + 1]);
        if (hi < 0 || lo < 0) {
          fprintf(stderr, "loyaltyctl: stdin:%ld: not hex\n", lineno);
          rc = 1;
          break;
        }
        lp_buf_append_byte(&buf, (uint8_t)(hi << 4 | lo));
      }
    } else if (is_decision) {
      /* Canonical JSON decisions (tests of the executor). */
      struct lp_reward_decision d = {0};
      int drc = lp_json_decode_decision(line, (size_t)n, &d, err, sizeof(err));
      if (drc == 0 && !key)
        key = lp_member_key(d.shop, d.customer_id);
      if (strcmp(format, "avro") != 0)
        lp_buf_append(&buf, line, (size_t)n);
      else if (drc != 0 ||
               lp_avro_encode_decision(avro, &d, &buf, err, sizeof(err))) {
        fprintf(stderr, "loyaltyctl: stdin:%ld: %s\n", lineno, err);
        rc = 1;
      }
      lp_reward_decision_clear(&d);
    } else if (is_activity) {
      /* Canonical JSON activity events (no platform form yet). */
      struct lp_activity_event ae = {0};
      int drc = lp_json_decode_activity(line, (size_t)n, &ae, err, sizeof(err));
      if (drc == 0 && !key)
        key = lp_member_key(ae.shop, ae.customer_id);
      if (strcmp(format, "avro") != 0)
        lp_buf_append(&buf, line, (size_t)n);
      else if (drc != 0 ||
               lp_avro_encode_activity(avro, &ae, &buf, err, sizeof(err))) {
        fprintf(stderr, "loyaltyctl: stdin:%ld: %s\n", lineno, err);
        rc = 1;
      }
      lp_activity_event_clear(&ae);
    } else {
      struct lp_order_event oe = {0};
      struct lp_customer_event ce = {0};
      int drc = is_order ? lp_json_decode_order(line, (size_t)n, &hints, &oe,
                                                err, sizeof(err))
                         : lp_json_decode_customer(line, (size_t)n, &hints, &ce,
                                                   err, sizeof(err));
      if (drc == 0 && !key)
        key = is_order ? lp_member_key(oe.shop, oe.customer_id)
                       : lp_member_key(ce.shop, ce.customer_id);
      if (strcmp(format, "avro") == 0) {
        if (drc != 0) {
          fprintf(stderr, "loyaltyctl: stdin:%ld: %s\n", lineno, err);
          rc = 1;
        } else if ((is_order ? lp_avro_encode_order(avro, &oe, &buf, err,
                                                    sizeof(err))
                             : lp_avro_encode_customer(avro, &ce, &buf, err,
                                                       sizeof(err))) != 0) {
          fprintf(stderr, "loyaltyctl: stdin:%ld: %s\n", lineno, err);
          rc = 1;
        }
      } else {
        lp_buf_append(&buf, line, (size_t)n);
      }
      lp_order_event_clear(&oe);
      lp_customer_event_clear(&ce);
    }
    if (rc == 0 && send_record(rk, topic, key, buf.data, buf.len, o) != 0)
      rc = 1;
    free(key);
    if (rc)
      break;
    sent++;
    rd_kafka_poll(rk, 0);
  }
  free(line);
  lp_buf_free(&buf);
  lp_avro_codec_destroy(&avro);
  if (finish_producer(rk))
    rc = 1;
  fprintf(stderr, "loyaltyctl: produced %ld records to %s\n", sent, topic);
  return rc;
}

/* Validates a rules file or directory as the processors would load it, so
 * a bad file is caught before SIGHUP. */
static int cmd_rules_check(struct opts *o) {
  if (!o->file)
    return fail_usage("rules-check: --file PATH is required");
  char err[1024];
  struct lp_ruleset *rs = lp_ruleset_load(o->file, err, sizeof(err));
  if (!rs) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    return 1;
  }
  printf("ok: %zu rules, digest %s\n", lp_ruleset_count(rs),
         lp_ruleset_digest(rs));
  lp_ruleset_destroy(&rs);
  return 0;
}

/* Reads canonical JSON lines and prints each as the hex of its Avro
 * single-object encoding (fixtures for bad-input tests). */
static int cmd_encode(struct opts *o) {
  if (!o->type || (strcmp(o->type, "order") && strcmp(o->type, "customer") &&
                   strcmp(o->type, "activity")))
    return fail_usage("encode: --type order|customer|activity is required");
  int is_order = strcmp(o->type, "order") == 0;
  int is_activity = strcmp(o->type, "activity") == 0;
  char err[512];
  struct lp_avro_codec *avro = lp_avro_codec_new(NULL, err, sizeof(err));
  if (!avro) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0;
  int rc = 0;
  struct lp_buf buf;
  lp_buf_init(&buf);
  while (rc == 0 && (n = getline(&line, &cap, stdin)) > 0) {
    lineno++;
    struct lp_order_event oe = {0};
    struct lp_customer_event ce = {0};
    struct lp_activity_event ae = {0};
    lp_buf_reset(&buf);
    int drc =
        is_activity
            ? (lp_json_decode_activity(line, (size_t)n, &ae, err,
                                       sizeof(err)) ||
               lp_avro_encode_activity(avro, &ae, &buf, err, sizeof(err)))
        : is_order
            ? (lp_json_decode_order(line, (size_t)n, NULL, &oe, err,
                                    sizeof(err)) ||
               lp_avro_encode_order(avro, &oe, &buf, err, sizeof(err)))
            : (lp_json_decode_customer(line, (size_t)n, NULL, &ce, err,
                                       sizeof(err)) ||
               lp_avro_encode_customer(avro, &ce, &buf, err, sizeof(err)));
    if (drc) {
      fprintf(stderr, "loyaltyctl: stdin:%ld: %s\n", lineno, err);
      rc = 1;
    } else {
      for (size_t i = 0; i < buf.len; i++)
        printf("%02x", buf.data[i]);
      printf("\n");
    }
    lp_order_event_clear(&oe);
    lp_customer_event_clear(&ce);
    lp_activity_event_clear(&ae);
  }
  free(line);
  lp_buf_free(&buf);
  lp_avro_codec_destroy(&avro);
  return rc;
}

/* Produces (or prints) one generated/imported event. */
static int emit_event(rd_kafka_t *rk, struct lp_avro_codec *avro,
                      struct lp_buf *buf, const struct lp_order_event *oe,
                      const struct lp_customer_event *ce) {
  char err[256];
  lp_buf_reset(buf);
  if (!rk) {
    if (oe)
      lp_json_encode_order(oe, buf);
    else
      lp_json_encode_customer(ce, buf);
    lp_buf_append_byte(buf, '\n');
    return fwrite(buf->data, 1, buf->len, stdout) == buf->len ? 0 : -1;
  }
  int rc = oe ? lp_avro_encode_order(avro, oe, buf, err, sizeof(err))
              : lp_avro_encode_customer(avro, ce, buf, err, sizeof(err));
  if (rc) {
    fprintf(stderr, "loyaltyctl: encode: %s\n", err);
    return -1;
  }
  char *key = oe ? lp_member_key(oe->shop, oe->customer_id)
                 : lp_member_key(ce->shop, ce->customer_id);
  rc = send_record(rk, oe ? "orders" : "customers", key, buf->data, buf->len,
                   NULL);
  free(key);
  rd_kafka_poll(rk, 0);
  return rc;
}

static int cmd_generate(struct opts *o) {
  struct lp_shop_gen_params p = {
      o->seed,
      (size_t)(o->customers > 0 ? o->customers : 1000),
      (size_t)(o->orders > 0 ? o->orders : 10000),
      o->shop ? o->shop : "demo-shop.myshopify.com",
      1704067200000LL /* 2024-01-01 */,
      20};
  char err[256];
  struct lp_avro_codec *avro = lp_avro_codec_new(NULL, err, sizeof(err));
  if (!avro) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    return 1;
  }
  rd_kafka_t *rk = o->to_stdout ? NULL : make_producer(o);
  if (!o->to_stdout && !rk) {
    lp_avro_codec_destroy(&avro);
    return 1;
  }
  struct lp_shop_gen *g = lp_shop_gen_new(&p);
  struct lp_buf buf;
  lp_buf_init(&buf);
  long orders = 0, customers = 0;
  int rc = 0;
  int64_t t0 = lp_mono_us();
  for (;;) {
    if (o->rate > 0) {
      /* Pace to --rate events per second (a stream, not a burst). */
      int64_t due = t0 + (orders + customers) * 1000000LL / o->rate;
      int64_t now = lp_mono_us();
      if (due > now) {
        if (rk)
          rd_kafka_poll(rk, 0);
        usleep((useconds_t)(due - now));
      }
    }
    struct lp_order_event oe = {0};
    struct lp_customer_event ce = {0};
    enum lp_gen_kind k = lp_shop_gen_next(g, &oe, &ce);
    if (k == LP_GEN_END || interrupted)
      break;
    /* --only: the same deterministic shop, one topic's share of it. */
    if (o->only &&
        strcmp(o->only, k == LP_GEN_ORDER ? "orders" : "customers") != 0) {
      lp_order_event_clear(&oe);
      lp_customer_event_clear(&ce);
      continue;
    }
    rc = emit_event(rk, avro, &buf, k == LP_GEN_ORDER ? &oe : NULL,
                    k == LP_GEN_CUSTOMER ? &ce : NULL);
    if (k == LP_GEN_ORDER)
      orders++;
    else
      customers++;
    lp_order_event_clear(&oe);
    lp_customer_event_clear(&ce);
    if (rc)
      break;
  }
  lp_shop_gen_destroy(&g);
  lp_buf_free(&buf);
  lp_avro_codec_destroy(&avro);
  if (rk && finish_producer(rk))
    rc = 1;
  fprintf(stderr, "loyaltyctl: generated %ld order and %ld customer events\n",
          orders, customers);
  return rc ? 1 : 0;
}

static int cmd_cdnow(struct opts *o) {
  if (!o->file)
    return fail_usage("cdnow: --file is required");
  char err[256];
  struct lp_cdnow_reader *r = lp_cdnow_reader_open(
      o->file, o->shop ? o->shop : "cdnow", err, sizeof(err));
  if (!r) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    return 1;
  }
  struct lp_avro_codec *avro = lp_avro_codec_new(NULL, err, sizeof(err));
  rd_kafka_t *rk = o->to_stdout ? NULL : make_producer(o);
  struct lp_buf buf;
  lp_buf_init(&buf);
  long n = 0, bad = 0;
  int rc = (!avro || (!o->to_stdout && !rk)) ? 1 : 0;
  while (rc == 0 && !interrupted) {
    struct lp_order_event oe = {0};
    int got = lp_cdnow_reader_next(r, &oe, err, sizeof(err));
    if (got == 0)
      break;
    if (got < 0) {
      fprintf(stderr, "loyaltyctl: %s\n", err);
      bad++;
      continue;
    }
    rc = emit_event(rk, avro, &buf, &oe, NULL) ? 1 : 0;
    lp_order_event_clear(&oe);
    n++;
  }
  lp_cdnow_reader_close(&r);
  lp_buf_free(&buf);
  lp_avro_codec_destroy(&avro);
  if (rk && finish_producer(rk))
    rc = 1;
  fprintf(stderr, "loyaltyctl: produced %ld CDNOW orders (%ld bad lines)\n", n,
          bad);
  return rc || bad ? 1 : 0;
}

/* Assigns every partition of topic from the beginning; returns the count
 * of partitions or -1. */
static int assign_all(rd_kafka_t *rk, const char *topic) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  if (err || md->topic_cnt != 1 || md->topics[0].err) {
    fprintf(stderr, "loyaltyctl: metadata for %s: %s\n", topic,
            rd_kafka_err2str(err ? err : md->topics[0].err));
    if (md)
      rd_kafka_metadata_destroy(md);
    return -1;
  }
  int n = md->topics[0].partition_cnt;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_metadata_destroy(md);
  err = rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  return err ? -1 : n;
}

static int print_record(struct lp_avro_codec *avro, const char *type,
                        const char *format, const rd_kafka_message_t *m,
                        struct lp_buf *out) {
  char err[512];
  int rc = -1;
  lp_buf_reset(out);
  if (format && strcmp(format, "hex") == 0) {
    /* The exact bytes, for byte-for-byte comparisons. */
    for (size_t i = 0; i < m->len; i++)
      lp_buf_appendf(out, "%02x", ((const uint8_t *)m->payload)[i]);
    lp_buf_append_byte(out, '\n');
    fwrite(out->data, 1, out->len, stdout);
    return 0;
  }
  if (strcmp(type, "decision") == 0) {
    struct lp_reward_decision d = {0};
    if ((rc = lp_avro_decode_decision(avro, m->payload, m->len, &d, err,
                                      sizeof(err))) == 0)
      lp_json_encode_decision(&d, out);
    lp_reward_decision_clear(&d);
  } else if (strcmp(type, "dead_letter") == 0) {
    struct lp_dead_letter d = {0};
    if ((rc = lp_avro_decode_dead_letter(avro, m->payload, m->len, &d, err,
                                         sizeof(err))) == 0)
      lp_json_encode_dead_letter(&d, out);
    lp_dead_letter_clear(&d);
  } else if (strcmp(type, "action_result") == 0) {
    struct lp_action_result r = {0};
    if ((rc = lp_avro_decode_action_result(avro, m->payload, m->len, &r, err,
                                           sizeof(err))) == 0)
      lp_json_encode_action_result(&r, out);
    lp_action_result_clear(&r);
  } else if (strcmp(type, "activity") == 0) {
    struct lp_activity_event e = {0};
    if ((rc = lp_avro_decode_activity(avro, m->payload, m->len, &e, err,
                                      sizeof(err))) == 0)
      lp_json_encode_activity(&e, out);
    lp_activity_event_clear(&e);
  } else if (strcmp(type, "order") == 0) {
    struct lp_order_event e = {0};
    if ((rc = lp_avro_decode_order(avro, m->payload, m->len, &e, err,
                                   sizeof(err))) == 0)
      lp_json_encode_order(&e, out);
    lp_order_event_clear(&e);
  } else {
    struct lp_customer_event e = {0};
    if ((rc = lp_avro_decode_customer(avro, m->payload, m->len, &e, err,
                                      sizeof(err))) == 0)
      lp_json_encode_customer(&e, out);
    lp_customer_event_clear(&e);
  }
  if (rc) {
    fprintf(stderr, "loyaltyctl: %s/%d@%lld: %s\n", rd_kafka_topic_name(m->rkt),
            (int)m->partition, (long long)m->offset, err);
    return -1;
  }
  lp_buf_append_byte(out, '\n');
  fwrite(out->data, 1, out->len, stdout);
  return 0;
}

static int cmd_consume(struct opts *o) {
  if (!o->topic || !o->type)
    return fail_usage("consume: --topic and --type are required");
  static const char *const types[] = {"order",       "customer",
                                      "activity",    "decision",
                                      "dead_letter", "action_result"};
  int known = 0;
  for (size_t i = 0; i < LP_ARRAY_LEN(types); i++)
    known |= strcmp(o->type, types[i]) == 0;
  if (!known)
    return fail_usage("consume: unknown --type");
  const char *defaults[] = {
      "group.id", "loyaltyctl-consume",   "enable.auto.commit",
      "false",    "enable.partition.eof", "true",
      NULL};
  rd_kafka_t *rk = make_client(o, RD_KAFKA_CONSUMER, defaults, NULL, NULL);
  if (!rk)
    return 1;
  char err[256];
  struct lp_avro_codec *avro = lp_avro_codec_new(NULL, err, sizeof(err));
  int parts = assign_all(rk, o->topic);
  if (parts < 0 || !avro) {
    lp_avro_codec_destroy(&avro);
    rd_kafka_destroy(rk);
    return 1;
  }
  long idle_ms = o->idle_ms > 0 ? o->idle_ms : 2000;
  int eof = 0, rc = 0;
  long count = 0;
  int64_t last = lp_mono_us();
  struct lp_buf out;
  lp_buf_init(&out);
  while (!interrupted) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) {
      /* Silence before anything arrived may be a slow first fetch (a
       * busy machine), not an empty topic: it gets at least 10 s. */
      long limit = count == 0 && eof == 0 && idle_ms < 10000 ? 10000 : idle_ms;
      if ((eof >= parts && count >= o->expect) ||
          lp_mono_us() - last > limit * 1000)
        break;
      continue;
    }
    last = lp_mono_us();
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      eof++;
    } else if (m->err) {
      fprintf(stderr, "loyaltyctl: consume: %s\n", rd_kafka_message_errstr(m));
    } else {
      if (print_record(avro, o->type, o->format, m, &out) != 0)
        rc = 1;
      count++;
    }
    rd_kafka_message_destroy(m);
  }
  lp_buf_free(&out);
  lp_avro_codec_destroy(&avro);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (o->expect && count < o->expect) {
    fprintf(stderr, "loyaltyctl: consumed %ld of %ld expected records\n", count,
            o->expect);
    rc = 1;
  }
  return rc;
}

/* Sum over partitions of (high watermark - committed offset) for group. */
static int64_t group_lag(rd_kafka_t *rk, const char *topic, int *ok) {
  *ok = 0;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
  rd_kafka_topic_destroy(rkt);
  if (err || md->topics[0].err) {
    if (md)
      rd_kafka_metadata_destroy(md);
    return -1;
  }
  int n = md->topics[0].partition_cnt;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id);
  rd_kafka_metadata_destroy(md);
  int64_t lag = 0;
  if (rd_kafka_committed(rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    *ok = 1;
    for (int i = 0; i < l->cnt; i++) {
      int64_t lo, hi;
      if (rd_kafka_query_watermark_offsets(rk, topic, l->elems[i].partition,
                                           &lo, &hi, 5000)) {
        *ok = 0;
        break;
      }
      int64_t committed = l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
      lag += hi - committed;
    }
  }
  rd_kafka_topic_partition_list_destroy(l);
  return lag;
}

static int cmd_wait(struct opts *o) {
  if (!o->group || !o->topic)
    return fail_usage("wait: --group and --topic are required");
  const char *defaults[] = {"group.id", o->group, "enable.auto.commit", "false",
                            NULL};
  rd_kafka_t *rk = make_client(o, RD_KAFKA_CONSUMER, defaults, NULL, NULL);
  if (!rk)
    return 1;
  long timeout = o->timeout_ms > 0 ? o->timeout_ms : 60000;
  int64_t deadline = lp_mono_us() + timeout * 1000;
  int rc = 1;
  int64_t lag = -1;
  while (!interrupted && lp_mono_us() < deadline) {
    int ok;
    lag = group_lag(rk, o->topic, &ok);
    if (ok && lag == 0) {
      rc = 0;
      break;
    }
    usleep(200 * 1000);
  }
  rd_kafka_destroy(rk);
  if (rc)
    fprintf(stderr, "loyaltyctl: group %s still %lld behind on %s\n", o->group,
            (long long)lag, o->topic);
  return rc;
}

static int cmd_profile(struct opts *o) {
  if (!o->shop || !o->customer)
    return fail_usage("profile: --shop and --customer are required");
  char host[256] = "127.0.0.1";
  int port = 6379;
  if (o->redis) {
    const char *colon = strrchr(o->redis, ':');
    if (!colon)
      return fail_usage("profile: --redis HOST:PORT");
    snprintf(host, sizeof(host), "%.*s", (int)(colon - o->redis), o->redis);
    port = atoi(colon + 1);
  }
  struct lp_profile_store_config sc = {
      host, port, o->ns ? o->ns : "loyalty", 0, 2000, 0, 0, NULL};
  char err[512];
  struct lp_profile_store *s = lp_profile_store_new(&sc, err, sizeof(err));
  struct lp_profile p;
  if (!s || lp_profile_store_get(s, o->shop, o->customer, &p, err,
                                 sizeof(err)) != 0) {
    fprintf(stderr, "loyaltyctl: %s\n", err);
    lp_profile_store_destroy(&s);
    return 1;
  }
  char spend[32];
  lp_money_format(p.lifetime_spend_micros, spend, sizeof(spend));
  printf("{\"exists\":%s,\"lifetime_spend\":\"%s\",\"order_count\":%lld,"
         "\"orders_placed\":%lld,\"first_order_ms\":%lld,\"last_order_ms\":%"
         "lld,\"consent\":\"%s\","
         "\"favourite_category\":%s,\"favourite_brand\":%s,\"n_tags\":%zu}\n",
         p.exists ? "true" : "false", spend, (long long)p.order_count,
         (long long)p.orders_placed, (long long)p.first_order_ms,
         (long long)p.last_order_ms, lp_consent_name(p.marketing_consent),
         lp_log_str(lp_profile_favourite_category(&p)),
         lp_log_str(lp_profile_favourite_brand(&p)), p.n_tags);
  lp_profile_clear(&p);
  lp_profile_store_destroy(&s);
  return 0;
}

/* Bench ceiling: consume, produce the bytes unchanged, store each offset
 * once its copy is acknowledged — the processors' discipline without
 * decoding, Redis or rules. */
struct pt_state {
  rd_kafka_t *consumer;
  long acked;
};

static void pt_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct pt_state *st = opaque;
  rd_kafka_topic_partition_t *tp = m->_private;
  if (m->err == 0) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, tp->topic, tp->partition)->offset =
        tp->offset + 1;
    rd_kafka_offsets_store(st->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    st->acked++;
  }
  free(tp->topic);
  free(tp);
}

static int cmd_passthrough(struct opts *o) {
  if (!o->topic || !o->to)
    return fail_usage("passthrough: --from and --to are required");
  const char *cdefaults[] = {
      "group.id", o->group ? o->group : "passthrough",
      "enable.auto.offset.store", "false", "auto.offset.reset", "earliest",
      "partition.assignment.strategy", "cooperative-sticky",
      /* A ceiling must not stall: librdkafka 2.0
       * stops fetching a partition for a whole
       * second once its queue holds
       * queued.min.messages (default 100000);
       * measured: most runs then took ~1 s for 200k
       * records instead of ~0.25 s. */
      "queued.min.messages", "10000000", "queued.max.messages.kbytes", "262144",
      NULL};
  rd_kafka_t *c = make_client(o, RD_KAFKA_CONSUMER, cdefaults, NULL, NULL);
  if (!c)
    return 1;
  struct pt_state st = {c, 0};
  rd_kafka_t *p =
      make_client(o, RD_KAFKA_PRODUCER, producer_defaults, pt_dr, &st);
  if (!p) {
    rd_kafka_destroy(c);
    return 1;
  }
  rd_kafka_poll_set_consumer(c);
  rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subs, o->topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(c, subs);
  rd_kafka_topic_partition_list_destroy(subs);
  rd_kafka_topic_t *out = rd_kafka_topic_new(p, o->to, NULL);
  long count = o->count > 0 ? o->count : 1, consumed = 0;
  int64_t t0 = 0;
  while (!interrupted && st.acked < count) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c, consumed ? 0 : 100);
    rd_kafka_poll(p, 0);
    if (!m)
      continue;
    if (!m->err) {
      if (!t0)
        t0 = lp_mono_us();
      rd_kafka_topic_partition_t *tp = lp_xcalloc(1, sizeof(*tp));
      tp->topic = lp_xstrdup(rd_kafka_topic_name(m->rkt));
      tp->partition = m->partition;
      tp->offset = m->offset;
      while (rd_kafka_produce(out, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                              m->payload, m->len, m->key, m->key_len, tp) != 0)
        rd_kafka_poll(p, 10);
      consumed++;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_flush(p, 10000);
  int64_t t1 = lp_mono_us();
  rd_kafka_commit(c, NULL, 0);
  rd_kafka_consumer_close(c);
  rd_kafka_topic_destroy(out);
  rd_kafka_destroy(p);
  rd_kafka_destroy(c);
  double secs = t0 ? (double)(t1 - t0) / 1e6 : 0;
  printf("passthrough: records=%ld seconds=%.3f eps=%.0f\n", st.acked, secs,
         secs > 0 ? (double)st.acked / secs : 0.0);
  return st.acked >= count ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "--help") == 0) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  lp_log_init("loyaltyctl", LP_LOG_WARN);
  const char *cmd = argv[1];
  if (lp_operator_is_command(cmd))
    return lp_operator_main(argc, argv);
  if (strcmp(cmd, "segments") == 0)
    return lp_segments_main(argc, argv);
  /* import: own options and signal handling (import.c) */
  if (strcmp(cmd, "import") == 0)
    return lp_import_main(argc, argv);
  struct opts o;
  memset(&o, 0, sizeof(o));
  o.seed = 42;
  static const struct option longopts[] = {
      {"bootstrap", required_argument, NULL, 'b'},
      {"bootstrap-file", required_argument, NULL, 'f'},
      {"type", required_argument, NULL, 't'},
      {"format", required_argument, NULL, 'F'},
      {"topic", required_argument, NULL, 'T'},
      {"from", required_argument, NULL, 'T'},
      {"to", required_argument, NULL, 'o'},
      {"key", required_argument, NULL, 'k'},
      {"header", required_argument, NULL, 'H'},
      {"file", required_argument, NULL, 'i'},
      {"shop", required_argument, NULL, 's'},
      {"customer", required_argument, NULL, 'u'},
      {"group", required_argument, NULL, 'g'},
      {"redis", required_argument, NULL, 'r'},
      {"namespace", required_argument, NULL, 'n'},
      {"customers", required_argument, NULL, 'C'},
      {"orders", required_argument, NULL, 'O'},
      {"seed", required_argument, NULL, 'S'},
      {"count", required_argument, NULL, 'N'},
      {"idle-ms", required_argument, NULL, 'I'},
      {"expect", required_argument, NULL, 'E'},
      {"timeout-ms", required_argument, NULL, 'W'},
      {"rate", required_argument, NULL, 'R'},
      {"only", required_argument, NULL, 'Y'},
      {"stdout", no_argument, NULL, 'P'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c, rc = 2;
  optind = 2;
  while ((c = getopt_long(argc, argv, "b:f:X:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'b':
      o.bootstrap = optarg;
      break;
    case 'f':
      o.bootstrap_file = optarg;
      break;
    case 'X': {
      char *eq = strchr(optarg, '=');
      if (!eq) {
        rc = fail_usage("-X expects prop=value");
        goto done;
      }
      *eq = '\0';
      lp_kafka_props_set(&o.kafka, optarg, eq + 1);
      break;
    }
    case 't':
      o.type = optarg;
      break;
    case 'F':
      o.format = optarg;
      break;
    case 'T':
      o.topic = optarg;
      break;
    case 'o':
      o.to = optarg;
      break;
    case 'k':
      o.key = optarg;
      break;
    case 'H': {
      char *eq = strchr(optarg, '=');
      if (!eq || o.n_headers >= 16) {
        rc = fail_usage("--header expects NAME=VALUE (at most 16)");
        goto done;
      }
      *eq = '\0';
      o.header_names[o.n_headers] = optarg;
      o.header_values[o.n_headers++] = eq + 1;
      break;
    }
    case 'i':
      o.file = optarg;
      break;
    case 's':
      o.shop = optarg;
      break;
    case 'u':
      o.customer = optarg;
      break;
    case 'g':
      o.group = optarg;
      break;
    case 'r':
      o.redis = optarg;
      break;
    case 'n':
      o.ns = optarg;
      break;
    case 'C':
      o.customers = atol(optarg);
      break;
    case 'O':
      o.orders = atol(optarg);
      break;
    case 'S':
      o.seed = strtoull(optarg, NULL, 10);
      break;
    case 'N':
      o.count = atol(optarg);
      break;
    case 'I':
      o.idle_ms = atol(optarg);
      break;
    case 'E':
      o.expect = atol(optarg);
      break;
    case 'W':
      o.timeout_ms = atol(optarg);
      break;
    case 'R':
      o.rate = atol(optarg);
      break;
    case 'Y':
      o.only = optarg;
      break;
    case 'P':
      o.to_stdout = 1;
      break;
    case 'h':
      print_usage(stdout);
      rc = 0;
      goto done;
    default:
      rc = fail_usage("unknown option");
      goto done;
    }
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (strcmp(cmd, "produce") == 0)
    rc = cmd_produce(&o);
  else if (strcmp(cmd, "rules-check") == 0)
    rc = cmd_rules_check(&o);
  else if (strcmp(cmd, "encode") == 0)
    rc = cmd_encode(&o);
  else if (strcmp(cmd, "generate") == 0)
    rc = cmd_generate(&o);
  else if (strcmp(cmd, "cdnow") == 0)
    rc = cmd_cdnow(&o);
  else if (strcmp(cmd, "consume") == 0)
    rc = cmd_consume(&o);
  else if (strcmp(cmd, "wait") == 0)
    rc = cmd_wait(&o);
  else if (strcmp(cmd, "profile") == 0)
    rc = cmd_profile(&o);
  else if (strcmp(cmd, "passthrough") == 0)
    rc = cmd_passthrough(&o);
  else
    rc = fail_usage("unknown command");
done:
  lp_config_free(NULL, 0, NULL, &o.kafka);
  return rc;
}
