/*
 * devbroker — the development and test Kafka broker: librdkafka's own mock
 * cluster (rdkafka_mock.h) listening on loopback, with the project's topics
 * created up front. In memory only, bounded history (about 5 MiB or 100k
 * message sets per partition, older segments are dropped): for trying the
 * system and for tests, never for production.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"
#include "log.h"
#include "util.h"

struct devbroker_config {
  long brokers;
  char *topics;
  char *bootstrap_file;
  char *log_level;
};

#define C(field) offsetof(struct devbroker_config, field)
static const struct lp_config_entry config_table[] = {
    {"brokers", LP_CONF_INT, "1", C(brokers), "Number of mock brokers", 1, 9},
    {"topics", LP_CONF_STRING,
     "orders:8,customers:8,activity:8,decisions:8,actions:8,dlq:2", C(topics),
     "Topics to create, as name:partitions,...", 0, 0},
    {"bootstrap.file", LP_CONF_STRING, "", C(bootstrap_file),
     "Write the bootstrap address to this file once listening (removed at "
     "exit)",
     0, 0},
    {"log.level", LP_CONF_STRING, "info", C(log_level),
     "debug, info, warn or error", 0, 0},
};
#undef C

static const char usage[] =
    "NAME\n"
    "  devbroker - in-memory Kafka broker for development and tests\n"
    "\n"
    "SYNOPSIS\n"
    "  devbroker [-c FILE] [-X key=value ...] [--help] [--version]\n"
    "\n"
    "DESCRIPTION\n"
    "  Starts librdkafka's mock cluster on 127.0.0.1 (ephemeral ports),\n"
    "  creates the project's topics, prints the bootstrap address on\n"
    "  stdout as 'bootstrap=<host:port,...>' and writes it to\n"
    "  bootstrap.file, then runs until SIGTERM or SIGINT.\n"
    "\n"
    "  SIGUSR1 takes every broker down (connections are closed and new ones\n"
    "  refused, the data stays) and SIGUSR2 brings them back: an outage and\n"
    "  a recovery for tests of what clients do while Kafka is unavailable.\n"
    "\n"
    "  DEV/TEST ONLY: nothing is written to disk, history per partition is\n"
    "  bounded (about 5 MiB / 100k message sets; older data is dropped),\n"
    "  and offsets-for-times look-ups are not answered. Point processors at\n"
    "  it with bootstrap.file or kafka.bootstrap.servers.\n"
    "\n"
    "EXIT STATUS\n"
    "  0 after SIGTERM/SIGINT, 2 on bad configuration or start-up failure\n";

static volatile sig_atomic_t stop;
/* 1 = take the brokers down, 2 = bring them up; applied by the main loop. */
static volatile sig_atomic_t want_state;

static void on_signal(int sig) {
  if (sig == SIGUSR1)
    want_state = 1;
  else if (sig == SIGUSR2)
    want_state = 2;
  else
    stop = 1;
}

/* Takes every broker down (down != 0) or brings it back up. */
static void set_brokers(rd_kafka_mock_cluster_t *mc, long brokers, int down) {
  for (int id = 1; id <= (int)brokers; id++) {
    rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(mc, id)
                                   : rd_kafka_mock_broker_set_up(mc, id);
    if (err)
      LP_WARN("broker state not changed",
              "\"broker\":%d,\"down\":%d,\"error\":%s", id, down,
              lp_log_str(rd_kafka_err2str(err)));
  }
  /* A warning, so tests (which run at log.level=warn) can see it land. */
  LP_WARN(down ? "brokers down (SIGUSR1)" : "brokers up (SIGUSR2)",
          "\"brokers\":%ld", brokers);
}

/* Creates every "name:partitions" topic of spec; 0 or -1 with errstr. */
static int create_topics(rd_kafka_mock_cluster_t *mc, const char *spec,
                         char *errstr, size_t errstr_size) {
  char *copy = lp_xstrdup(spec), *save = NULL;
  int rc = 0;
  for (char *tok = strtok_r(copy, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ')
      tok++;
    char *colon = strchr(tok, ':');
    char *end = NULL;
    long parts = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == tok || !end || *end || parts < 1 || parts > 1024) {
      rc = lp_err(errstr, errstr_size,
                  "topics: \"%s\" is not name:partitions (1..1024)", tok);
      break;
    }
    *colon = '\0';
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(mc, tok, (int)parts, 1);
    if (err) {
      rc = lp_err(errstr, errstr_size, "create topic %s: %s", tok,
                  rd_kafka_err2str(err));
      break;
    }
    LP_INFO("topic created", "\"topic\":%s,\"partitions\":%ld", lp_log_str(tok),
            parts);
  }
  free(copy);
  return rc;
}

int main(int argc, char **argv) {
  struct devbroker_config conf;
  struct lp_kafka_props kafka;
  memset(&conf, 0, sizeof(conf));
  memset(&kafka, 0, sizeof(kafka));
  char err[512];
  int exit_code = 2;
  rd_kafka_t *rk = NULL;
  rd_kafka_mock_cluster_t *mc = NULL;
  lp_log_init("devbroker", LP_LOG_INFO);
  int rc = lp_config_load(config_table, LP_ARRAY_LEN(config_table), &conf,
                          &kafka, argc, argv, usage, err, sizeof(err));
  if (rc != 0) {
    if (rc < 0)
      fprintf(stderr, "devbroker: %s\n", err);
    exit_code = rc < 0 ? 2 : 0;
    goto done;
  }
  enum lp_log_level level;
  if (lp_log_level_parse(conf.log_level, &level) != 0) {
    fprintf(stderr, "devbroker: log.level: unknown level \"%s\"\n",
            conf.log_level);
    goto done;
  }
  lp_log_set_level(level);

  /* The mock cluster lives inside a client instance; a producer with no
   * work is the lightest host. */
  rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
  for (size_t i = 0; i < kafka.n; i++)
    if (rd_kafka_conf_set(rkconf, kafka.names[i], kafka.values[i], err,
                          sizeof(err)) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "devbroker: kafka.%s: %s\n", kafka.names[i], err);
      rd_kafka_conf_destroy(rkconf);
      goto done;
    }
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, err, sizeof(err));
  if (!rk) {
    fprintf(stderr, "devbroker: %s\n", err);
    rd_kafka_conf_destroy(rkconf);
    goto done;
  }
  mc = rd_kafka_mock_cluster_new(rk, (int)conf.brokers);
  if (!mc) {
    fprintf(stderr, "devbroker: could not start the mock cluster\n");
    goto done;
  }
  if (create_topics(mc, conf.topics, err, sizeof(err)) != 0) {
    fprintf(stderr, "devbroker: %s\n", err);
    goto done;
  }
  const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
  if (*conf.bootstrap_file) {
    /* Write to a temporary name and rename, so a reader never sees half. */
    char *tmp = lp_xasprintf("%s.tmp", conf.bootstrap_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", bootstrap) < 0 || fclose(f) != 0 ||
        rename(tmp, conf.bootstrap_file) != 0) {
      fprintf(stderr, "devbroker: bootstrap.file %s: %s\n", conf.bootstrap_file,
              strerror(errno));
      free(tmp);
      goto done;
    }
    free(tmp);
  }
  printf("bootstrap=%s\n", bootstrap);
  fflush(stdout);
  LP_INFO("listening", "\"bootstrap\":%s,\"brokers\":%ld",
          lp_log_str(bootstrap), conf.brokers);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  while (!stop) {
    rd_kafka_poll(rk, 100);
    int want = want_state;
    if (want) {
      want_state = 0;
      set_brokers(mc, conf.brokers, want == 1);
    }
  }
  LP_INFO("stopping", NULL);
  exit_code = 0;

done:
  if (mc)
    rd_kafka_mock_cluster_destroy(mc);
  if (rk)
    rd_kafka_destroy(rk);
  if (conf.bootstrap_file && *conf.bootstrap_file && exit_code == 0)
    unlink(conf.bootstrap_file);
  lp_config_free(config_table, LP_ARRAY_LEN(config_table), &conf, &kafka);
  return exit_code;
}
