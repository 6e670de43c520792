/*
 * orders_topic.c — the trainer's second source: the orders topic, read
 * from the beginning (or an offset) to its current end. Each order counts
 * once, on the day of its first created or paid event, at that event's
 * total; a cancelled order does not count; refunds are not subtracted
 * (the models want purchase occasions and typical order values).
 */
#include "orders_topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "avro_codec.h"
#include "config.h"
#include "events.h"
#include "kafka.h"
#include "util.h"

struct order {
  char *key;    /* shop \x1f order id */
  char *member; /* shop:customer */
  int64_t day, seq;
  double value;
  int counts, cancelled;
};

static int by_key_then_seq(const void *a, const void *b) {
  const struct order *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

int trainer_read_orders(const char *bootstrap, const char *bootstrap_file,
                        const char *topic, int64_t start_offset,
                        struct lp_clv_builder *b, long *orders_out,
                        long *skipped_out, char *errstr, size_t errstr_size) {
  struct lp_kafka_props props = {0};
  if (bootstrap && *bootstrap)
    lp_kafka_props_set(&props, "bootstrap.servers", bootstrap);
  int rc = -1;
  rd_kafka_t *rk = NULL;
  struct lp_avro_codec *avro = NULL;
  struct order *ev = NULL;
  size_t n = 0, cap = 0;
  long skipped = 0;
  if (lp_kafka_resolve_bootstrap(&props, bootstrap_file, errstr, errstr_size))
    goto out;
  const char *defaults[] = {"group.id", "trainer", "enable.auto.commit",
                            "false", NULL};
  rd_kafka_conf_t *conf =
      lp_kafka_conf_build(defaults, &props, errstr, errstr_size);
  if (!conf)
    goto out;
  rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    goto out;
  }
  avro = lp_avro_codec_new(NULL, errstr, errstr_size);
  if (!avro)
    goto out;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  if (kerr || md->topics[0].err) {
    lp_err(errstr, errstr_size, "topic %s: %s", topic,
           rd_kafka_err2str(kerr ? kerr : md->topics[0].err));
    if (md)
      rd_kafka_metadata_destroy(md);
    goto out;
  }
  int parts = md->topics[0].partition_cnt;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
  int64_t *end = lp_xcalloc((size_t)parts, sizeof(*end));
  int remaining = 0;
  for (int i = 0; i < parts; i++) {
    int32_t p = md->topics[0].partitions[i].id;
    int64_t lo = 0, hi = 0;
    rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
    int64_t from = start_offset > lo ? start_offset : lo;
    if (p < parts)
      end[p] = hi;
    if (from < hi) {
      rd_kafka_topic_partition_list_add(l, topic, p)->offset = from;
      remaining++;
    }
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  int64_t seq = 0, idle_since = lp_mono_us();
  while (remaining > 0 && lp_mono_us() - idle_since < 30000000) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m)
      continue;
    idle_since = lp_mono_us();
    if (!m->err) {
      struct lp_order_event o = {0};
      char derr[256];
      if (lp_avro_decode_order(avro, m->payload, m->len, &o, derr,
                               sizeof(derr)) == 0) {
        if (n == cap) {
          cap = cap ? 2 * cap : 4096;
          ev = lp_xrealloc(ev, cap * sizeof(*ev));
        }
        struct order *e = &ev[n++];
        e->key = lp_xasprintf("%s\x1f%s", o.shop, o.order_id);
        e->member = lp_member_key(o.shop, o.customer_id);
        e->day = o.event_time_ms / 86400000;
        e->seq = seq++;
        e->value = (double)o.total_micros / 1e6;
        e->counts = o.status == LP_ORDER_CREATED || o.status == LP_ORDER_PAID;
        e->cancelled = o.status == LP_ORDER_CANCELLED;
      } else {
        if (skipped++ < 3) /* the processors dead-letter these too */
          fprintf(stderr, "trainer: %s [%d] offset %lld skipped: %s\n", topic,
                  (int)m->partition, (long long)m->offset, derr);
      }
      lp_order_event_clear(&o);
      if (m->partition < parts && m->offset + 1 >= end[m->partition])
        remaining--;
    }
    rd_kafka_message_destroy(m);
  }
  free(end);
  if (remaining > 0) {
    lp_err(errstr, errstr_size,
           "topic %s: %d partitions not read to their end within 30 s", topic,
           remaining);
    goto out;
  }
  /* One purchase per order: its first counting event, unless cancelled. */
  qsort(ev, n, sizeof(*ev), by_key_then_seq);
  long orders = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    const struct order *first = NULL;
    int cancelled = 0;
    for (; j < n && strcmp(ev[j].key, ev[i].key) == 0; j++) {
      if (ev[j].counts && !first)
        first = &ev[j];
      cancelled |= ev[j].cancelled;
    }
    if (first && !cancelled) {
      lp_clv_builder_add(b, first->member, first->day, first->value);
      orders++;
    }
    i = j;
  }
  *orders_out = orders;
  *skipped_out = skipped;
  rc = 0;
out:
  for (size_t i = 0; i < n; i++) {
    free(ev[i].key);
    free(ev[i].member);
  }
  free(ev);
  lp_avro_codec_destroy(&avro);
  if (rk) {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
  lp_config_free(NULL, 0, NULL, &props);
  return rc;
}
