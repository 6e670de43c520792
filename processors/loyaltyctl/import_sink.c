/*
 * import_sink.c — the importer's side of Kafka.
 *
 * The sink is an idempotent producer (enable.idempotence=true: a retried
 * produce request never duplicates a record) writing Avro single-object
 * records keyed by member. Delivery reports advance a per-partition end
 * offset: the offset after our last acknowledged record there, starting
 * from the topic's end when the sink was created. Once a page is fully
 * acknowledged these offsets are a valid checkpoint: every record of that
 * page and before lies below them, every record produced later lies at or
 * above them (a partition's order is the produce order). Records of other
 * writers may sit above them too; the resume scan just reads a little more.
 *
 * The resume scan reads the topic from a checkpoint's offsets to the
 * current end and collects the event ids found, so a re-run skips what a
 * killed run had already written after its last checkpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "avro_codec.h"
#include "import_internal.h"
#include "kafka.h"
#include "util.h"

/* ---- a set of strings ---------------------------------------------------- */

struct imp_idset {
  char **slots; /* owned strings; NULL = empty */
  size_t cap;   /* power of two */
  size_t n;
};

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

struct imp_idset *imp_idset_new(void) {
  struct imp_idset *s = lp_xcalloc(1, sizeof(*s));
  s->cap = 1024;
  s->slots = lp_xcalloc(s->cap, sizeof(char *));
  return s;
}

void imp_idset_destroy(struct imp_idset **sp) {
  struct imp_idset *s = *sp;
  if (!s)
    return;
  for (size_t i = 0; i < s->cap; i++)
    free(s->slots[i]);
  free(s->slots);
  free(s);
  *sp = NULL;
}

static size_t find_slot(char **slots, size_t cap, const char *id) {
  size_t i = (size_t)hash_str(id) & (cap - 1);
  while (slots[i] && strcmp(slots[i], id) != 0)
    i = (i + 1) & (cap - 1);
  return i;
}

int imp_idset_add(struct imp_idset *s, const char *id) {
  if ((s->n + 1) * 10 > s->cap * 7) {
    size_t cap = s->cap * 2;
    char **slots = lp_xcalloc(cap, sizeof(char *));
    for (size_t i = 0; i < s->cap; i++)
      if (s->slots[i])
        slots[find_slot(slots, cap, s->slots[i])] = s->slots[i];
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
  }
  size_t i = find_slot(s->slots, s->cap, id);
  if (s->slots[i])
    return 0;
  s->slots[i] = lp_xstrdup(id);
  s->n++;
  return 1;
}

int imp_idset_has(const struct imp_idset *s, const char *id) {
  return s->slots[find_slot(s->slots, s->cap, id)] != NULL;
}

size_t imp_idset_count(const struct imp_idset *s) {
  return s->n;
}

/* ---- clients ---------------------------------------------------------- */

static rd_kafka_t *make_client(const struct imp_kafka *k, rd_kafka_type_t type,
                               const char *const *defaults, void *opaque,
                               void (*dr)(rd_kafka_t *,
                                          const rd_kafka_message_t *, void *),
                               char *errstr, size_t errstr_size) {
  char err[512];
  if (k->bootstrap)
    lp_kafka_props_set(k->props, "bootstrap.servers", k->bootstrap);
  if (lp_kafka_resolve_bootstrap(k->props, k->bootstrap_file, err,
                                 sizeof(err))) {
    lp_err(errstr, errstr_size, "%s", err);
    return NULL;
  }
  rd_kafka_conf_t *conf =
      lp_kafka_conf_build(defaults, k->props, err, sizeof(err));
  if (!conf) {
    lp_err(errstr, errstr_size, "%s", err);
    return NULL;
  }
  if (dr) {
    rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_conf_set_opaque(conf, opaque);
  }
  rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    lp_err(errstr, errstr_size, "kafka: %s", err);
  }
  return rk;
}

/* Partition count of topic, or -1 with errstr. */
static int32_t partition_count(rd_kafka_t *rk, const char *topic, char *errstr,
                               size_t errstr_size) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  if (err || md->topic_cnt != 1 || md->topics[0].err ||
      md->topics[0].partition_cnt <= 0) {
    lp_err(errstr, errstr_size, "topic %s: %s", topic,
           err                  ? rd_kafka_err2str(err)
           : md->topic_cnt != 1 ? "no metadata"
           : md->topics[0].err  ? rd_kafka_err2str(md->topics[0].err)
                                : "no partitions");
    if (md)
      rd_kafka_metadata_destroy(md);
    return -1;
  }
  int32_t n = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  return n;
}

/* ---- the producer ------------------------------------------------------- */

struct imp_sink {
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  int customers;
  struct lp_avro_codec *avro;
  struct lp_buf buf;
  int32_t n_partitions;
  int64_t *end; /* owned, n_partitions */
  long long produced, acked, failed;
  char first_error[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
  (void)rk;
  struct imp_sink *s = opaque;
  if (m->err) {
    if (s->failed++ == 0)
      snprintf(s->first_error, sizeof(s->first_error), "%s [%d]: %s",
               rd_kafka_topic_name(m->rkt), (int)m->partition,
               rd_kafka_err2str(m->err));
    return;
  }
  s->acked++;
  if (m->partition >= s->n_partitions) {
    /* The topic grew while we produced. */
    int32_t n = m->partition + 1;
    s->end = lp_xrealloc(s->end, (size_t)n * sizeof(int64_t));
    for (int32_t i = s->n_partitions; i < n; i++)
      s->end[i] = 0;
    s->n_partitions = n;
  }
  if (m->offset + 1 > s->end[m->partition])
    s->end[m->partition] = m->offset + 1;
}

static const char *const producer_defaults[] = {
    "enable.idempotence",           "true",   "linger.ms", "5",
    "queue.buffering.max.messages", "500000", NULL};

struct imp_sink *imp_sink_new(const struct imp_kafka *k, const char *topic,
                              int customers, char *errstr, size_t errstr_size) {
  struct imp_sink *s = lp_xcalloc(1, sizeof(*s));
  s->customers = customers;
  lp_buf_init(&s->buf);
  s->avro = lp_avro_codec_new(NULL, errstr, errstr_size);
  if (!s->avro)
    goto fail;
  s->rk = make_client(k, RD_KAFKA_PRODUCER, producer_defaults, s, on_delivery,
                      errstr, errstr_size);
  if (!s->rk)
    goto fail;
  s->n_partitions = partition_count(s->rk, topic, errstr, errstr_size);
  if (s->n_partitions < 0)
    goto fail;
  s->end = lp_xcalloc((size_t)s->n_partitions, sizeof(int64_t));
  for (int32_t p = 0; p < s->n_partitions; p++) {
    int64_t lo, hi;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(s->rk, topic, p, &lo, &hi, 10000);
    if (err) {
      lp_err(errstr, errstr_size, "topic %s [%d]: end offset: %s", topic,
             (int)p, rd_kafka_err2str(err));
      goto fail;
    }
    s->end[p] = hi;
  }
  s->rkt = rd_kafka_topic_new(s->rk, topic, NULL);
  return s;
fail:
  imp_sink_destroy(&s);
  return NULL;
}

void imp_sink_destroy(struct imp_sink **sp) {
  struct imp_sink *s = *sp;
  if (!s)
    return;
  if (s->rkt)
    rd_kafka_topic_destroy(s->rkt);
  if (s->rk) {
    /* Whatever is still queued (a failed run) gets a short chance. */
    rd_kafka_flush(s->rk, 5000);
    rd_kafka_destroy(s->rk);
  }
  lp_avro_codec_destroy(&s->avro);
  lp_buf_free(&s->buf);
  free(s->end);
  free(s);
  *sp = NULL;
}

int imp_sink_produce(struct imp_sink *s, const struct imp_record *r,
                     char *errstr, size_t errstr_size) {
  char err[512];
  lp_buf_reset(&s->buf);
  LP_ASSERT(r->is_customer == s->customers);
  int rc = r->is_customer ? lp_avro_encode_customer(s->avro, &r->customer,
                                                    &s->buf, err, sizeof(err))
                          : lp_avro_encode_order(s->avro, &r->order, &s->buf,
                                                 err, sizeof(err));
  if (rc)
    return lp_err(errstr, errstr_size, "encode: %s", err);
  char *key = r->is_customer
                  ? lp_member_key(r->customer.shop, r->customer.customer_id)
                  : lp_member_key(r->order.shop, r->order.customer_id);
  for (;;) {
    if (rd_kafka_produce(s->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                         s->buf.data, s->buf.len, key, strlen(key), NULL) == 0)
      break;
    rd_kafka_resp_err_t e = rd_kafka_last_error();
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      free(key);
      return lp_err(errstr, errstr_size, "produce to %s: %s",
                    rd_kafka_topic_name(s->rkt), rd_kafka_err2str(e));
    }
    rd_kafka_poll(s->rk, 10);
  }
  free(key);
  s->produced++;
  rd_kafka_poll(s->rk, 0);
  return 0;
}

int imp_sink_wait(struct imp_sink *s, char *errstr, size_t errstr_size) {
  char fatal[256];
  while (s->acked + s->failed < s->produced) {
    rd_kafka_flush(s->rk, 100);
    if (rd_kafka_fatal_error(s->rk, fatal, sizeof(fatal)))
      return lp_err(errstr, errstr_size, "kafka: fatal: %s", fatal);
    imp_progress_tick(imp_current_progress);
  }
  if (s->failed)
    return lp_err(errstr, errstr_size,
                  "%lld record(s) not acknowledged, first: %s", s->failed,
                  s->first_error);
  return 0;
}

long long imp_sink_acked(const struct imp_sink *s) {
  return s->acked;
}

const int64_t *imp_sink_end_offsets(const struct imp_sink *s, int32_t *n) {
  *n = s->n_partitions;
  return s->end;
}

/* ---- the resume scan ---------------------------------------------------- */

int imp_resume_scan(const struct imp_kafka *k, const char *topic, int customers,
                    const int64_t *offsets, int32_t n, struct imp_idset *ids,
                    long long *found, long long *foreign, char *errstr,
                    size_t errstr_size) {
  static const char *const defaults[] = {"group.id",
                                         "loyaltyctl-import-resume",
                                         "enable.auto.commit",
                                         "false",
                                         "auto.offset.reset",
                                         "earliest",
                                         "enable.partition.eof",
                                         "false",
                                         NULL};
  *found = *foreign = 0;
  int rc = -1;
  int64_t *hi = NULL;
  /* A partition is done once a record at or past its end offset at the
   * start (hi - 1), or its end, has been read — whichever comes first: a
   * transaction marker or a compacted record may occupy hi - 1. */
  char *done = NULL;
  rd_kafka_topic_partition_list_t *l = NULL;
  struct lp_avro_codec *avro = NULL;
  rd_kafka_t *rk = make_client(k, RD_KAFKA_CONSUMER, defaults, NULL, NULL,
                               errstr, errstr_size);
  if (!rk)
    return -1;
  avro = lp_avro_codec_new(NULL, errstr, errstr_size);
  int32_t parts = partition_count(rk, topic, errstr, errstr_size);
  if (!avro || parts < 0)
    goto out;
  if (parts < n) {
    lp_err(errstr, errstr_size,
           "topic %s has %d partitions, the checkpoint %d: was it recreated?",
           topic, (int)parts, (int)n);
    goto out;
  }
  hi = lp_xcalloc((size_t)parts, sizeof(int64_t));
  done = lp_xcalloc((size_t)parts, 1);
  l = rd_kafka_topic_partition_list_new(parts);
  int pending = 0;
  for (int32_t p = 0; p < parts; p++) {
    int64_t lo, start = p < n ? offsets[p] : 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi[p], 10000);
    if (err) {
      lp_err(errstr, errstr_size, "topic %s [%d]: end offset: %s", topic,
             (int)p, rd_kafka_err2str(err));
      goto out;
    }
    if (start > hi[p]) {
      lp_err(errstr, errstr_size,
             "topic %s [%d]: the checkpoint's end offset %lld is past the "
             "topic's end %lld: was the topic recreated?",
             topic, (int)p, (long long)start, (long long)hi[p]);
      goto out;
    }
    if (start < lo) {
      imp_progress_clear_line(imp_current_progress);
      fprintf(stderr,
              "loyaltyctl import: warning: %s [%d]: records %lld..%lld are "
              "gone (retention); duplicates among them cannot be seen\n",
              topic, (int)p, (long long)start, (long long)lo - 1);
      start = lo;
    }
    if (start < hi[p]) {
      rd_kafka_topic_partition_list_add(l, topic, p)->offset = start;
      pending++;
    }
  }
  if (pending == 0) {
    rc = 0;
    goto out;
  }
  rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, l);
  if (aerr) {
    lp_err(errstr, errstr_size, "assign %s: %s", topic, rd_kafka_err2str(aerr));
    goto out;
  }
  int64_t last = lp_mono_us();
  char err[512];
  while (pending > 0) {
    if (imp_stop_signal) {
      lp_err(errstr, errstr_size, "interrupted during the resume scan");
      goto out;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) {
      if (lp_mono_us() - last > 60 * 1000000LL) {
        lp_err(errstr, errstr_size,
               "resume scan of %s: no records for 60 s with %d partition(s) "
               "still short of their end",
               topic, pending);
        goto out;
      }
      continue;
    }
    last = lp_mono_us();
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        lp_err(errstr, errstr_size, "resume scan of %s: %s", topic,
               rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        goto out;
      }
      if (m->partition >= 0 && m->partition < parts && !done[m->partition]) {
        done[m->partition] = 1;
        pending--;
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    int32_t p = m->partition;
    if (p >= 0 && p < parts && m->offset >= hi[p] - 1 && !done[p]) {
      done[p] = 1; /* after the record below is counted */
      pending--;
    }
    if (p >= 0 && p < parts && m->offset < hi[p]) {
      struct lp_order_event oe = {0};
      struct lp_customer_event ce = {0};
      int drc = customers ? lp_avro_decode_customer(avro, m->payload, m->len,
                                                    &ce, err, sizeof(err))
                          : lp_avro_decode_order(avro, m->payload, m->len, &oe,
                                                 err, sizeof(err));
      if (drc == 0) {
        imp_idset_add(ids, customers ? ce.event_id : oe.event_id);
        (*found)++;
      } else {
        (*foreign)++;
      }
      lp_order_event_clear(&oe);
      lp_customer_event_clear(&ce);
    }
    rd_kafka_message_destroy(m);
  }
  rc = 0;
out:
  if (l)
    rd_kafka_topic_partition_list_destroy(l);
  free(hi);
  free(done);
  lp_avro_codec_destroy(&avro);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return rc;
}
