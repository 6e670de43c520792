/*
 * kafka.c — librdkafka configuration and logging glue (see kafka.h).
 */
#include "kafka.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

/* librdkafka log lines (syslog levels) as JSON log lines. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
  (void)rk;
  enum lp_log_level l = level <= 3   ? LP_LOG_ERROR
                        : level <= 4 ? LP_LOG_WARN
                        : level <= 6 ? LP_LOG_INFO
                                     : LP_LOG_DEBUG;
  lp_log(l, "librdkafka", "\"facility\":%s,\"detail\":%s", lp_log_str(fac),
         lp_log_str(buf));
}

rd_kafka_conf_t *lp_kafka_conf_build(const char *const *defaults,
                                     const struct lp_kafka_props *props,
                                     char *errstr, size_t errstr_size) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char err[512];
  rd_kafka_conf_set_log_cb(conf, log_cb);
  for (size_t i = 0; defaults && defaults[i]; i += 2) {
    if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], err,
                          sizeof(err)) != RD_KAFKA_CONF_OK) {
      lp_err(errstr, errstr_size, "kafka.%s: %s", defaults[i], err);
      goto fail;
    }
  }
  for (size_t i = 0; props && i < props->n; i++) {
    if (rd_kafka_conf_set(conf, props->names[i], props->values[i], err,
                          sizeof(err)) != RD_KAFKA_CONF_OK) {
      lp_err(errstr, errstr_size, "kafka.%s: %s", props->names[i], err);
      goto fail;
    }
  }
  return conf;
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}

int lp_kafka_resolve_bootstrap(struct lp_kafka_props *props,
                               const char *bootstrap_file, char *errstr,
                               size_t errstr_size) {
  const char *bs = lp_kafka_props_get(props, "bootstrap.servers");
  if (bs && *bs)
    return 0;
  if (!bootstrap_file || !*bootstrap_file)
    return lp_err(errstr, errstr_size,
                  "no Kafka address: set kafka.bootstrap.servers (or "
                  "bootstrap.file to the file devbroker writes)");
  FILE *f = fopen(bootstrap_file, "r");
  if (!f)
    return lp_err(errstr, errstr_size, "bootstrap.file %s: %s", bootstrap_file,
                  strerror(errno));
  char line[1024] = "";
  if (!fgets(line, sizeof(line), f)) {
    fclose(f);
    return lp_err(errstr, errstr_size, "bootstrap.file %s: empty",
                  bootstrap_file);
  }
  fclose(f);
  line[strcspn(line, "\r\n")] = '\0';
  if (!*line)
    return lp_err(errstr, errstr_size, "bootstrap.file %s: empty",
                  bootstrap_file);
  lp_kafka_props_set(props, "bootstrap.servers", line);
  return 0;
}

void lp_kafka_store_offset(void *consumer, const char *topic, int32_t partition,
                           int64_t position) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, partition)->offset = position;
  rd_kafka_resp_err_t err = rd_kafka_offsets_store(consumer, l);
  if (err)
    LP_WARN("offset store failed", "\"topic\":%s,\"partition\":%d,\"error\":%s",
            lp_log_str(topic), (int)partition,
            lp_log_str(rd_kafka_err2str(err)));
  else
    lp_metrics_add(LP_M_OFFSETS_STORED, 1);
  rd_kafka_topic_partition_list_destroy(l);
}
