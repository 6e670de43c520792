/*
 * config.c — table-driven configuration (see config.h): defaults, file,
 * environment, command line, in that order; kafka.* pass-through; the
 * man-style key table of --help.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

extern char **environ;

#define KAFKA_PREFIX "kafka."

void lp_kafka_props_set(struct lp_kafka_props *kafka, const char *name,
                        const char *value) {
  for (size_t i = 0; i < kafka->n; i++)
    if (strcmp(kafka->names[i], name) == 0) {
      free(kafka->values[i]);
      kafka->values[i] = lp_xstrdup(value);
      return;
    }
  kafka->names = lp_xrealloc(kafka->names, (kafka->n + 1) * sizeof(char *));
  kafka->values = lp_xrealloc(kafka->values, (kafka->n + 1) * sizeof(char *));
  kafka->names[kafka->n] = lp_xstrdup(name);
  kafka->values[kafka->n] = lp_xstrdup(value);
  kafka->n++;
}

const char *lp_kafka_props_get(const struct lp_kafka_props *kafka,
                               const char *name) {
  for (size_t i = 0; i < kafka->n; i++)
    if (strcmp(kafka->names[i], name) == 0)
      return kafka->values[i];
  return NULL;
}

static const char *type_name(enum lp_config_type t) {
  switch (t) {
  case LP_CONF_STRING:
    return "string";
  case LP_CONF_INT:
    return "int";
  case LP_CONF_DOUBLE:
    return "number";
  case LP_CONF_BOOL:
    return "bool";
  }
  return "?";
}

static const struct lp_config_entry *lookup(const struct lp_config_entry *table,
                                            size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(table[i].key, key) == 0)
      return &table[i];
  return NULL;
}

/* Parses text into the entry's field; where says where it came from. */
static int set_value(const struct lp_config_entry *e, void *conf,
                     const char *value, const char *where, char *errstr,
                     size_t errstr_size) {
  char *field = (char *)conf + e->offset;
  char *end;
  switch (e->type) {
  case LP_CONF_STRING: {
    char **s = (char **)field;
    free(*s);
    *s = lp_xstrdup(value);
    return 0;
  }
  case LP_CONF_INT: {
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end)
      return lp_err(errstr, errstr_size, "%s: %s: \"%s\" is not an integer",
                    where, e->key, value);
    if ((e->min || e->max) && (v < e->min || v > e->max))
      return lp_err(errstr, errstr_size, "%s: %s: %ld is not in %ld..%ld",
                    where, e->key, v, e->min, e->max);
    *(long *)field = v;
    return 0;
  }
  case LP_CONF_DOUBLE: {
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end)
      return lp_err(errstr, errstr_size, "%s: %s: \"%s\" is not a number",
                    where, e->key, value);
    *(double *)field = v;
    return 0;
  }
  case LP_CONF_BOOL: {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < LP_ARRAY_LEN(yes); i++) {
      if (strcasecmp(value, yes[i]) == 0) {
        *(int *)field = 1;
        return 0;
      }
      if (strcasecmp(value, no[i]) == 0) {
        *(int *)field = 0;
        return 0;
      }
    }
    return lp_err(errstr, errstr_size,
                  "%s: %s: \"%s\" is not a boolean (true/false)", where, e->key,
                  value);
  }
  }
  return -1;
}

/* One key = value from any source. */
static int apply(const struct lp_config_entry *table, size_t n, void *conf,
                 struct lp_kafka_props *kafka, const char *key,
                 const char *value, const char *where, char *errstr,
                 size_t errstr_size) {
  if (strncmp(key, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0 &&
      key[strlen(KAFKA_PREFIX)]) {
    lp_kafka_props_set(kafka, key + strlen(KAFKA_PREFIX), value);
    return 0;
  }
  const struct lp_config_entry *e = lookup(table, n, key);
  if (!e)
    return lp_err(errstr, errstr_size, "%s: unknown key \"%s\"", where, key);
  return set_value(e, conf, value, where, errstr, errstr_size);
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  char *end = s + strlen(s);
  while (end > s && isspace((unsigned char)end[-1]))
    *--end = '\0';
  return s;
}

static int load_file(const struct lp_config_entry *table, size_t n, void *conf,
                     struct lp_kafka_props *kafka, const char *path,
                     char *errstr, size_t errstr_size) {
  FILE *f = fopen(path, "r");
  if (!f)
    return lp_err(errstr, errstr_size, "%s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  int lineno = 0, rc = 0;
  while (rc == 0 && getline(&line, &cap, f) >= 0) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#')
      continue;
    char where[512];
    snprintf(where, sizeof(where), "%s:%d", path, lineno);
    char *eq = strchr(s, '=');
    if (!eq) {
      rc = lp_err(errstr, errstr_size, "%s: expected key = value", where);
      break;
    }
    *eq = '\0';
    rc = apply(table, n, conf, kafka, trim(s), trim(eq + 1), where, errstr,
               errstr_size);
  }
  free(line);
  fclose(f);
  return rc;
}

/* LOYALTY_REDIS_HOST -> matches key "redis.host"; kafka props by rule. */
static int load_env(const struct lp_config_entry *table, size_t n, void *conf,
                    struct lp_kafka_props *kafka, char *errstr,
                    size_t errstr_size) {
  static const char prefix[] = "LOYALTY_";
  static const char kprefix[] = "LOYALTY_KAFKA_";
  for (char **env = environ; env && *env; env++) {
    if (strncmp(*env, prefix, strlen(prefix)) != 0)
      continue;
    const char *eq = strchr(*env, '=');
    if (!eq)
      continue;
    char name[256];
    size_t len = (size_t)(eq - *env);
    if (len >= sizeof(name))
      continue;
    memcpy(name, *env, len);
    name[len] = '\0';
    const char *value = eq + 1;
    char where[300];
    snprintf(where, sizeof(where), "environment %s", name);
    if (strncmp(name, kprefix, strlen(kprefix)) == 0) {
      char prop[256];
      size_t i = 0;
      for (const char *p = name + strlen(kprefix); *p && i < sizeof(prop) - 1;
           p++)
        prop[i++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
      prop[i] = '\0';
      lp_kafka_props_set(kafka, prop, value);
      continue;
    }
    const struct lp_config_entry *match = NULL;
    for (size_t k = 0; k < n && !match; k++) {
      char want[256];
      size_t i = 0;
      for (const char *p = table[k].key; *p && i < sizeof(want) - 1; p++)
        want[i++] =
            (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
      want[i] = '\0';
      if (strcmp(name + strlen(prefix), want) == 0)
        match = &table[k];
    }
    if (!match)
      return lp_err(errstr, errstr_size, "%s: no such configuration key",
                    where);
    if (set_value(match, conf, value, where, errstr, errstr_size))
      return -1;
  }
  return 0;
}

void lp_config_print_help(FILE *out, const struct lp_config_entry *table,
                          size_t n_entries) {
  fprintf(out, "CONFIGURATION KEYS\n");
  for (size_t i = 0; i < n_entries; i++) {
    const struct lp_config_entry *e = &table[i];
    fprintf(out, "  %-26s %-7s default: %s\n", e->key, type_name(e->type),
            e->default_value
                ? (*e->default_value ? e->default_value : "(empty)")
                : "(unset)");
    fprintf(out, "      %s", e->help);
    if (e->type == LP_CONF_INT && (e->min || e->max))
      fprintf(out, " [%ld..%ld]", e->min, e->max);
    fprintf(out, "\n");
  }
  fprintf(out,
          "  kafka.<property>           string  default: (librdkafka's)\n"
          "      Passed unchanged to librdkafka (consumer and producer),\n"
          "      e.g. kafka.bootstrap.servers, kafka.security.protocol,\n"
          "      kafka.sasl.username. See librdkafka's CONFIGURATION.md.\n"
          "\n"
          "SOURCES (later wins)\n"
          "  1. the defaults above\n"
          "  2. -c FILE: lines of 'key = value', '#' comments\n"
          "  3. environment: LOYALTY_<KEY> (upper case, '.' and '-' as '_'),\n"
          "     e.g. LOYALTY_REDIS_HOST; LOYALTY_KAFKA_<PROP> sets\n"
          "     kafka.<prop> with '_' as '.'\n"
          "  4. -X key=value (repeatable)\n"
          "  Unknown keys are errors.\n");
}

int lp_config_load(const struct lp_config_entry *table, size_t n_entries,
                   void *conf, struct lp_kafka_props *kafka, int argc,
                   char **argv, const char *usage_text, char *errstr,
                   size_t errstr_size) {
  for (size_t i = 0; i < n_entries; i++)
    if (table[i].default_value &&
        set_value(&table[i], conf, table[i].default_value, "default", errstr,
                  errstr_size))
      return -1;
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"set", required_argument, NULL, 'X'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *file = NULL;
  /* First pass: find -c, --help, --version; -X is applied last. */
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "c:X:hV", longopts, NULL)) != -1) {
    switch (c) {
    case 'c':
      file = optarg;
      break;
    case 'X':
      break;
    case 'h':
      fputs(usage_text, stdout);
      fputs("\nOPTIONS\n"
            "  -c, --config FILE     read configuration from FILE\n"
            "  -X, --set KEY=VALUE   set one key (repeatable)\n"
            "  -h, --help            this text\n"
            "  -V, --version         print the version\n\n",
            stdout);
      lp_config_print_help(stdout, table, n_entries);
      return 1;
    case 'V':
      printf("%s %s\n", argv[0], LP_VERSION);
      return 1;
    default:
      return lp_err(errstr, errstr_size, "unknown or incomplete option \"%s\"",
                    argv[optind - 1]);
    }
  }
  if (optind < argc)
    return lp_err(errstr, errstr_size, "unexpected argument \"%s\"",
                  argv[optind]);
  if (file &&
      load_file(table, n_entries, conf, kafka, file, errstr, errstr_size))
    return -1;
  if (load_env(table, n_entries, conf, kafka, errstr, errstr_size))
    return -1;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:X:hV", longopts, NULL)) != -1) {
    if (c != 'X')
      continue;
    char *eq = strchr(optarg, '=');
    if (!eq)
      return lp_err(errstr, errstr_size, "-X %s: expected key=value", optarg);
    char *key = lp_xstrndup(optarg, (size_t)(eq - optarg));
    char where[300];
    snprintf(where, sizeof(where), "-X %s", key);
    int rc = apply(table, n_entries, conf, kafka, key, eq + 1, where, errstr,
                   errstr_size);
    free(key);
    if (rc)
      return -1;
  }
  for (size_t i = 0; i < n_entries; i++)
    if (table[i].type == LP_CONF_STRING &&
        !*(char **)((char *)conf + table[i].offset))
      return lp_err(errstr, errstr_size, "%s: must be set", table[i].key);
  return 0;
}

void lp_config_free(const struct lp_config_entry *table, size_t n_entries,
                    void *conf, struct lp_kafka_props *kafka) {
  for (size_t i = 0; conf && i < n_entries; i++)
    if (table[i].type == LP_CONF_STRING) {
      char **s = (char **)((char *)conf + table[i].offset);
      free(*s);
      *s = NULL;
    }
  if (kafka) {
    for (size_t i = 0; i < kafka->n; i++) {
      free(kafka->names[i]);
      free(kafka->values[i]);
    }
    free(kafka->names);
    free(kafka->values);
    memset(kafka, 0, sizeof(*kafka));
  }
}
