/*
 * daemon.h — the start and end every long-running binary's main shares:
 * logs and metrics named after it, its configuration table loaded
 * (file, environment, -X, --help), log.level applied, SIGTERM and SIGINT
 * turned into a stop flag, SIGPIPE ignored.
 */
#ifndef LP_DAEMON_H
#define LP_DAEMON_H

#include <signal.h>
#include <stddef.h>

#include "config.h"

/*
 * Returns -1 when the daemon should run, else the exit status main should
 * return (0 after --help, 2 for bad configuration, with the reason on
 * stderr), everything already freed. A "log.level" entry of table, when
 * there is one, sets the level. *stop becomes 1 on SIGTERM or SIGINT.
 */
int lp_daemon_start(const char *name, const struct lp_config_entry *table,
                    size_t n_entries, void *conf, struct lp_kafka_props *kafka,
                    int argc, char **argv, const char *usage,
                    volatile sig_atomic_t *stop);

/* Frees what lp_daemon_start set up. */
void lp_daemon_end(const struct lp_config_entry *table, size_t n_entries,
                   void *conf, struct lp_kafka_props *kafka);

#endif
