/*
 * config.h — table-driven configuration shared by every processor.
 *
 * Each processor declares one table of lp_config_entry (key, type, default,
 * offsetof into its own config struct, help). Values are layered, later
 * wins: table defaults < config file (`key = value` lines, '#' comments)
 * < environment (LOYALTY_<KEY>, key upper-cased, '.' and '-' -> '_')
 * < command line (-X key=value / --set key=value).
 * Unknown keys are errors (with file:line). Keys starting with "kafka." are
 * not in the table: they are collected, prefix stripped, and handed to
 * librdkafka unchanged (environment: LOYALTY_KAFKA_<PROP> with '_' -> '.').
 */
#ifndef LP_CONFIG_H
#define LP_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define LP_VERSION "0.1.0"

enum lp_config_type {
  LP_CONF_STRING, /* char * (owned by the config struct, freed by
                     lp_config_free) */
  LP_CONF_INT,    /* long */
  LP_CONF_DOUBLE, /* double */
  LP_CONF_BOOL,   /* int: true/false/1/0/yes/no/on/off */
};

struct lp_config_entry {
  const char *key; /* e.g. "redis.host" */
  enum lp_config_type type;
  const char
      *default_value; /* text, parsed like any other source; NULL = unset */
  size_t offset;      /* offsetof(struct my_config, field) */
  const char *help;   /* one line for --help */
  long min, max;      /* LP_CONF_INT bounds (both 0 = unbounded) */
};

/* librdkafka pass-through properties, in the order they were set. */
struct lp_kafka_props {
  char **names;  /* owned */
  char **values; /* owned */
  size_t n;
};

/*
 * Parses argv for: -c/--config FILE, -X/--set key=value, -h/--help,
 * -V/--version, and applies all layers onto conf (which must be zeroed).
 * Returns 0 to run, 1 when --help/--version was printed (exit 0), -1 on
 * error (message in errstr; exit 2). Unknown options are errors.
 * usage_text is printed by --help before the key table (NAME/SYNOPSIS/
 * DESCRIPTION...), then every key with default and help, then the kafka.*
 * and environment rules.
 */
int lp_config_load(const struct lp_config_entry *table, size_t n_entries,
                   void *conf, struct lp_kafka_props *kafka, int argc,
                   char **argv, const char *usage_text, char *errstr,
                   size_t errstr_size);

/* Writes the man-style key table (used by --help). */
void lp_config_print_help(FILE *out, const struct lp_config_entry *table,
                          size_t n_entries);

/* Frees LP_CONF_STRING fields of conf and the kafka props. */
void lp_config_free(const struct lp_config_entry *table, size_t n_entries,
                    void *conf, struct lp_kafka_props *kafka);

/* Adds/overrides one kafka property (copied). */
void lp_kafka_props_set(struct lp_kafka_props *kafka, const char *name,
                        const char *value);
/* Value of a kafka property or NULL (borrowed). */
const char *lp_kafka_props_get(const struct lp_kafka_props *kafka,
                               const char *name);

#endif
