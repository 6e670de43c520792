/*
 * daemon.c — a daemon's common start and end (see daemon.h).
 */
#include "daemon.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

static volatile sig_atomic_t *stop_flag;

static void on_stop(int sig) {
  (void)sig;
  if (stop_flag)
    *stop_flag = 1;
}

void lp_daemon_end(const struct lp_config_entry *table, size_t n_entries,
                   void *conf, struct lp_kafka_props *kafka) {
  lp_config_free(table, n_entries, conf, kafka);
  lp_metrics_shutdown();
}

int lp_daemon_start(const char *name, const struct lp_config_entry *table,
                    size_t n_entries, void *conf, struct lp_kafka_props *kafka,
                    int argc, char **argv, const char *usage,
                    volatile sig_atomic_t *stop) {
  lp_log_init(name, LP_LOG_INFO);
  lp_metrics_init(name);
  char err[1024];
  int rc = lp_config_load(table, n_entries, conf, kafka, argc, argv, usage, err,
                          sizeof(err));
  if (rc != 0) {
    if (rc < 0)
      fprintf(stderr, "%s: %s\n", name, err);
    lp_daemon_end(table, n_entries, conf, kafka);
    return rc < 0 ? 2 : 0;
  }
  for (size_t i = 0; i < n_entries; i++) {
    if (strcmp(table[i].key, "log.level") != 0)
      continue;
    const char *text = *(char **)((char *)conf + table[i].offset);
    enum lp_log_level level;
    if (lp_log_level_parse(text, &level) != 0) {
      fprintf(stderr, "%s: log.level: unknown level \"%s\"\n", name, text);
      lp_daemon_end(table, n_entries, conf, kafka);
      return 2;
    }
    lp_log_set_level(level);
  }
  stop_flag = stop;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return -1;
}
