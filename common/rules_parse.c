/*
 * rules_parse.c — loads rule files (format: docs/rules.md) into the compiled
 * lp_ruleset of rules_internal.h, and owns the field and operator tables.
 *
 * Guarantees: a ruleset is returned only when every file parsed and every
 * rule, segment and setting validated; otherwise NULL and one message
 * "<file>: <position>: <reason>", where position is "line L column C" for
 * JSON syntax and a JSON path ("$.rules[2].when.all[1].op") for everything
 * else. Unknown keys, fields, operators, enum values and placeholders are
 * errors, so a typo can never load as a rule that silently never fires.
 * The result does not depend on the order rules appear in: rules are sorted
 * by (priority desc, id asc) and ids are unique.
 */
#include "rules.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "model.h"
#include "rules_internal.h"
#include "util.h"

/* Limits that keep a broken or hostile file from costing the hot path. */
#define MAX_COND_DEPTH 32
#define MAX_ID_LEN 128
#define MAX_FILE_BYTES (16u * 1024 * 1024)
#define MAX_POINTS 1000000000LL         /* fixed points per decision */
#define MAX_RATE_MICROS 1000000000LL    /* per-unit rate, multiplier */
#define MAX_REAL_MONEY 1e9              /* JSON reals as money */
#define DEFAULT_POINT_COST_MICROS 10000 /* 0.01 */

static const char *const status_values[] = {"created", "paid", "cancelled",
                                            "refunded", NULL};
static const char *const kind_values[] = {"created", "updated", NULL};
static const char *const consent_values[] = {"unknown", "subscribed",
                                             "unsubscribed", NULL};
static const char *const timer_kind_values[] = {
    "winback", "replenishment", "birthday", "expiry", "cart", NULL};
static const char *const cart_state_values[] = {"none", "open", "checkout",
                                                "abandoned", NULL};

#define ORD LP_ON_ORDER
#define CUS LP_ON_CUSTOMER
#define BOTH (LP_ON_ORDER | LP_ON_CUSTOMER)
#define TIM LP_ON_TIMER
/* Member profile fields exist on every kind of rule. */
#define PROF (LP_ON_ORDER | LP_ON_CUSTOMER | LP_ON_TIMER)

const struct lp_field_def lp_rule_fields[LP_F_COUNT] = {
    [LP_F_EVENT_STATUS] = {"event.status", LP_FT_STRING, ORD, 0, status_values},
    [LP_F_EVENT_IS_NEW_ORDER] = {"event.is_new_order", LP_FT_BOOL, ORD, 0,
                                 NULL},
    [LP_F_EVENT_TIME] = {"event.time", LP_FT_TIME, BOTH, 0, NULL},
    [LP_F_EVENT_TOTAL] = {"event.total", LP_FT_MONEY, ORD, 0, NULL},
    [LP_F_EVENT_SUBTOTAL] = {"event.subtotal", LP_FT_MONEY, ORD, 0, NULL},
    [LP_F_EVENT_DISCOUNT] = {"event.discount", LP_FT_MONEY, ORD, 0, NULL},
    [LP_F_EVENT_TAX] = {"event.tax", LP_FT_MONEY, ORD, 0, NULL},
    [LP_F_EVENT_CURRENCY] = {"event.currency", LP_FT_STRING, ORD, 0, NULL},
    [LP_F_EVENT_ITEM_COUNT] = {"event.item_count", LP_FT_INT, ORD, 0, NULL},
    [LP_F_EVENT_BRANDS] = {"event.brands", LP_FT_SET, ORD, 0, NULL},
    [LP_F_EVENT_CATEGORIES] = {"event.categories", LP_FT_SET, ORD, 0, NULL},
    [LP_F_EVENT_DISCOUNT_CODES] = {"event.discount_codes", LP_FT_SET, ORD, 0,
                                   NULL},
    [LP_F_EVENT_SOURCE] = {"event.source", LP_FT_STRING, BOTH, 0, NULL},
    [LP_F_EVENT_HAS_FAVOURITE_BRAND] = {"event.has_favourite_brand", LP_FT_BOOL,
                                        ORD, 0, NULL},
    [LP_F_EVENT_HAS_FAVOURITE_CATEGORY] = {"event.has_favourite_category",
                                           LP_FT_BOOL, ORD, 0, NULL},
    [LP_F_CUSTOMER_KIND] = {"customer.kind", LP_FT_STRING, CUS, 0, kind_values},
    [LP_F_CUSTOMER_CONSENT] = {"customer.consent", LP_FT_STRING, CUS, 0,
                               consent_values},
    [LP_F_CUSTOMER_TAGS] = {"customer.tags", LP_FT_SET, CUS, 0, NULL},
    [LP_F_CUSTOMER_BIRTHDAY_SET] = {"customer.birthday_set", LP_FT_BOOL, CUS, 0,
                                    NULL},
    [LP_F_PROFILE_EXISTS] = {"profile.exists", LP_FT_BOOL, PROF, 1, NULL},
    [LP_F_PROFILE_ORDER_COUNT] = {"profile.order_count", LP_FT_INT, PROF, 1,
                                  NULL},
    [LP_F_PROFILE_NTH_ORDER] = {"profile.nth_order", LP_FT_INT, ORD, 0, NULL},
    [LP_F_PROFILE_IS_FIRST_ORDER] = {"profile.is_first_order", LP_FT_BOOL, ORD,
                                     0, NULL},
    [LP_F_PROFILE_LIFETIME_SPEND] = {"profile.lifetime_spend", LP_FT_MONEY,
                                     PROF, 1, NULL},
    [LP_F_PROFILE_AOV] = {"profile.aov", LP_FT_MONEY, PROF, 1, NULL},
    [LP_F_PROFILE_DAYS_SINCE_LAST_ORDER] = {"profile.days_since_last_order",
                                            LP_FT_INT, PROF, 1, NULL},
    [LP_F_PROFILE_DAYS_SINCE_FIRST_ORDER] = {"profile.days_since_first_order",
                                             LP_FT_INT, PROF, 1, NULL},
    [LP_F_PROFILE_FAVOURITE_CATEGORY] = {"profile.favourite_category",
                                         LP_FT_STRING, PROF, 1, NULL},
    [LP_F_PROFILE_FAVOURITE_BRAND] = {"profile.favourite_brand", LP_FT_STRING,
                                      PROF, 1, NULL},
    [LP_F_PROFILE_TAGS] = {"profile.tags", LP_FT_SET, PROF, 1, NULL},
    [LP_F_PROFILE_CONSENT] = {"profile.consent", LP_FT_STRING, PROF, 1,
                              consent_values},
    [LP_F_PROFILE_TIER] = {"profile.tier", LP_FT_STRING, PROF, 1, NULL},
    [LP_F_PROFILE_SEGMENT] = {"profile.segment", LP_FT_STRING, PROF, 0, NULL},
    [LP_F_TIMER_KIND] = {"timer.kind", LP_FT_STRING, TIM, 0, timer_kind_values},
    [LP_F_TIMER_DUE] = {"timer.due", LP_FT_TIME, TIM, 0, NULL},
    [LP_F_ACTIVITY_TOP_CATEGORY] = {"activity.top_category", LP_FT_STRING, TIM,
                                    0, NULL},
    [LP_F_ACTIVITY_TOP_CATEGORY_SCORE] = {"activity.top_category_score",
                                          LP_FT_DECIMAL, TIM, 0, NULL},
    [LP_F_ACTIVITY_TOP_BRAND] = {"activity.top_brand", LP_FT_STRING, TIM, 0,
                                 NULL},
    [LP_F_ACTIVITY_TOP_BRAND_SCORE] = {"activity.top_brand_score",
                                       LP_FT_DECIMAL, TIM, 0, NULL},
    [LP_F_ACTIVITY_VIEWS] = {"activity.views", LP_FT_INT, TIM, 0, NULL},
    [LP_F_ACTIVITY_DAYS_SINCE_LAST] = {"activity.days_since_last", LP_FT_INT,
                                       TIM, 0, NULL},
    [LP_F_ACTIVITY_CART_STATE] = {"activity.cart_state", LP_FT_STRING, TIM, 0,
                                  cart_state_values},
    [LP_F_ACTIVITY_CART_VALUE] = {"activity.cart_value", LP_FT_MONEY, TIM, 0,
                                  NULL},
    [LP_F_ACTIVITY_CART_TOP_ITEM] = {"activity.cart_top_item", LP_FT_STRING,
                                     TIM, 0, NULL},
    [LP_F_ACTIVITY_CART_LINES] = {"activity.cart_lines", LP_FT_INT, TIM, 0,
                                  NULL},
    [LP_F_PROFILE_P_ALIVE] = {"profile.p_alive", LP_FT_DECIMAL, PROF, 1, NULL},
    [LP_F_PROFILE_CHURN_RISK] = {"profile.churn_risk", LP_FT_STRING, PROF, 1,
                                 lp_churn_band_names},
    [LP_F_PROFILE_EXPECTED_ORDERS_30D] = {"profile.expected_orders_30d",
                                          LP_FT_DECIMAL, PROF, 1, NULL},
    [LP_F_PROFILE_EXPECTED_ORDERS_90D] = {"profile.expected_orders_90d",
                                          LP_FT_DECIMAL, PROF, 1, NULL},
    [LP_F_PROFILE_EXPECTED_ORDERS_365D] = {"profile.expected_orders_365d",
                                           LP_FT_DECIMAL, PROF, 1, NULL},
    [LP_F_PROFILE_EXPECTED_AOV] = {"profile.expected_aov", LP_FT_MONEY, PROF, 1,
                                   NULL},
    [LP_F_PROFILE_CLV_12M] = {"profile.clv_12m", LP_FT_MONEY, PROF, 1, NULL},
    [LP_F_PROFILE_DAYS_TO_NEXT_PURCHASE] = {"profile.days_to_next_purchase",
                                            LP_FT_INT, PROF, 1, NULL},
    [LP_F_PROFILE_VALUE_SEGMENT] = {"profile.value_segment", LP_FT_STRING, PROF,
                                    1, lp_value_segment_names},
    [LP_F_PROFILE_NEXT_BEST_REWARD] = {"profile.next_best_reward", LP_FT_STRING,
                                       PROF, 1, NULL},
};

const char *const lp_rule_op_names[LP_OP_COUNT] = {
    [LP_OP_EQ] = "==",
    [LP_OP_NE] = "!=",
    [LP_OP_LT] = "<",
    [LP_OP_LE] = "<=",
    [LP_OP_GT] = ">",
    [LP_OP_GE] = ">=",
    [LP_OP_BETWEEN] = "between",
    [LP_OP_IN] = "in",
    [LP_OP_NOT_IN] = "not_in",
    [LP_OP_CONTAINS] = "contains",
    [LP_OP_EXISTS] = "exists",
};

static const char *const type_names[] = {
    [LP_FT_INT] = "integer",     [LP_FT_MONEY] = "money",
    [LP_FT_BOOL] = "boolean",    [LP_FT_STRING] = "string",
    [LP_FT_SET] = "set",         [LP_FT_TIME] = "time",
    [LP_FT_DECIMAL] = "decimal",
};

/* Whether op applies to a field of type t. */
static int op_applies(enum lp_rule_op op, enum lp_field_type t) {
  if (op == LP_OP_EXISTS)
    return 1;
  switch (t) {
  case LP_FT_INT:
  case LP_FT_MONEY:
  case LP_FT_DECIMAL:
  case LP_FT_TIME:
    return op != LP_OP_CONTAINS;
  case LP_FT_BOOL:
    return op == LP_OP_EQ || op == LP_OP_NE;
  case LP_FT_STRING:
    return op == LP_OP_EQ || op == LP_OP_NE || op == LP_OP_IN ||
           op == LP_OP_NOT_IN;
  case LP_FT_SET:
    return op == LP_OP_CONTAINS || op == LP_OP_IN || op == LP_OP_NOT_IN;
  }
  return 0;
}

/* ---- JSON paths and errors --------------------------------------------- */

struct path {
  char s[512];
  size_t len;
};

static size_t path_key(struct path *p, const char *key) {
  size_t old = p->len;
  int n = snprintf(p->s + p->len, sizeof(p->s) - p->len, ".%s", key);
  if (n > 0)
    p->len += (size_t)n < sizeof(p->s) - p->len ? (size_t)n
                                                : sizeof(p->s) - p->len - 1;
  return old;
}

static size_t path_index(struct path *p, size_t i) {
  size_t old = p->len;
  int n = snprintf(p->s + p->len, sizeof(p->s) - p->len, "[%zu]", i);
  if (n > 0)
    p->len += (size_t)n < sizeof(p->s) - p->len ? (size_t)n
                                                : sizeof(p->s) - p->len - 1;
  return old;
}

static void path_pop(struct path *p, size_t old) {
  p->len = old;
  p->s[old] = '\0';
}

/* Where a segment value was used, checked once every file is loaded. */
struct segment_use {
  char *where; /* "<file>: <path>" */
  char *value;
};

struct loader {
  struct lp_ruleset *rs;
  size_t cap_rules, cap_segments;
  char **rule_where; /* per rule: "<file> $.rules[i]" for duplicate errors */
  char **segment_where;
  struct segment_use *uses;
  size_t n_uses;
  char *point_cost_file, *threshold_file;
  struct lp_buf digest_input;
  const char *file; /* current file name, borrowed */
  char *errstr;
  size_t errstr_size;
};

static int fail(struct loader *L, const struct path *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *L, const struct path *p, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return lp_err(L->errstr, L->errstr_size, "%s: %s: %s", L->file, p->s, msg);
}

static const char *json_kind(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
    return "an integer";
  case JSON_REAL:
    return "a number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  case JSON_NULL:
    return "null";
  }
  return "?";
}

/* Rejects keys of obj that are not in allowed (NULL-terminated). */
static int check_keys(struct loader *L, struct path *p, json_t *obj,
                      const char *const *allowed) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    size_t i = 0;
    while (allowed[i] && strcmp(allowed[i], key) != 0)
      i++;
    if (!allowed[i]) {
      struct lp_buf b;
      lp_buf_init(&b);
      for (i = 0; allowed[i]; i++)
        lp_buf_appendf(&b, "%s%s", i ? ", " : "", allowed[i]);
      size_t old = path_key(p, key);
      fail(L, p, "unknown key \"%s\" (expected one of %s)", key,
           lp_buf_cstr(&b));
      path_pop(p, old);
      lp_buf_free(&b);
      return -1;
    }
  }
  return 0;
}

/* An identifier: 1..128 of [A-Za-z0-9._:-], safe in ids, logs, metrics. */
static int valid_ident(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MAX_ID_LEN)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
          c == '-'))
      return 0;
  }
  return 1;
}

/* ---- typed member readers ---------------------------------------------- */

/* Reads obj.key as a string; absent is allowed unless required. */
static int get_string(struct loader *L, struct path *p, json_t *obj,
                      const char *key, int required, const char **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v) {
    if (required)
      return fail(L, p, "missing required key \"%s\"", key);
    return 0;
  }
  if (!json_is_string(v)) {
    size_t old = path_key(p, key);
    fail(L, p, "expected a string, got %s", json_kind(v));
    path_pop(p, old);
    return -1;
  }
  *out = json_string_value(v);
  return 0;
}

static int get_ident(struct loader *L, struct path *p, json_t *obj,
                     const char *key, int required, const char **out) {
  if (get_string(L, p, obj, key, required, out) != 0)
    return -1;
  if (*out && !valid_ident(*out)) {
    size_t old = path_key(p, key);
    fail(L, p,
         "invalid identifier \"%s\" (1 to %d characters of A-Z a-z 0-9 . _ "
         ": -)",
         *out, MAX_ID_LEN);
    path_pop(p, old);
    return -1;
  }
  return 0;
}

static int get_int(struct loader *L, struct path *p, json_t *obj,
                   const char *key, int required, int64_t min, int64_t max,
                   int64_t *out) {
  json_t *v = json_object_get(obj, key);
  if (!v) {
    if (required)
      return fail(L, p, "missing required key \"%s\"", key);
    return 0;
  }
  size_t old = path_key(p, key);
  int rc = 0;
  if (!json_is_integer(v))
    rc = fail(L, p, "expected an integer, got %s", json_kind(v));
  else if (json_integer_value(v) < min || json_integer_value(v) > max)
    rc = fail(L, p, "%" PRId64 " is out of range (%" PRId64 " to %" PRId64 ")",
              (int64_t)json_integer_value(v), min, max);
  else
    *out = json_integer_value(v);
  path_pop(p, old);
  return rc;
}

static int get_bool(struct loader *L, struct path *p, json_t *obj,
                    const char *key, int *out) {
  json_t *v = json_object_get(obj, key);
  if (!v)
    return 0;
  if (!json_is_boolean(v)) {
    size_t old = path_key(p, key);
    fail(L, p, "expected true or false, got %s", json_kind(v));
    path_pop(p, old);
    return -1;
  }
  *out = json_is_true(v);
  return 0;
}

/*
 * Money from a decimal string ("10.00"), an integer (10) or a JSON number
 * (9.99). A number has been through a double, so it is accepted only when
 * its 6-decimal rendering reads back as the same double, i.e. when the
 * author wrote at most 6 decimals; the value is then that decimal, exactly.
 */
static int money_value(struct loader *L, struct path *p, json_t *v,
                       int64_t *out) {
  char tmp[64];
  if (json_is_string(v)) {
    if (lp_money_parse(json_string_value(v), out) == 0)
      return 0;
    return fail(L, p,
                "invalid amount \"%s\" (a decimal string with at most 6 "
                "decimals, e.g. \"10.50\")",
                json_string_value(v));
  }
  if (json_is_integer(v)) {
    snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (lp_money_parse(tmp, out) == 0)
      return 0;
    return fail(L, p, "amount %s is out of range", tmp);
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d > -MAX_REAL_MONEY && d < MAX_REAL_MONEY) {
      snprintf(tmp, sizeof(tmp), "%.6f", d);
      if (strtod(tmp, NULL) == d && lp_money_parse(tmp, out) == 0)
        return 0;
    }
    return fail(L, p, "amount %.17g is not exact; write it as a decimal string",
                d);
  }
  return fail(L, p, "expected an amount (decimal string), got %s",
              json_kind(v));
}

static int get_money(struct loader *L, struct path *p, json_t *obj,
                     const char *key, int64_t min, int64_t *out) {
  json_t *v = json_object_get(obj, key);
  if (!v)
    return 0;
  size_t old = path_key(p, key);
  int rc = money_value(L, p, v, out);
  if (rc == 0 && *out < min) {
    char a[32], b[32];
    lp_money_format(*out, a, sizeof(a));
    lp_money_format(min, b, sizeof(b));
    rc = fail(L, p, "amount %s is below the minimum %s", a, b);
  }
  path_pop(p, old);
  return rc;
}

/* A rate (points per unit, multiplier): positive, integer or decimal. */
static int get_rate(struct loader *L, struct path *p, json_t *obj,
                    const char *key, int64_t *out) {
  json_t *v = json_object_get(obj, key);
  if (!v)
    return 0;
  size_t old = path_key(p, key);
  int rc = money_value(L, p, v, out);
  if (rc == 0 && (*out <= 0 || *out > MAX_RATE_MICROS))
    rc = fail(L, p, "must be above 0 and at most 1000");
  path_pop(p, old);
  return rc;
}

/* ---- conditions ----------------------------------------------------------
 */

/* Where a condition is: a rule of some kind, or a segment definition. */
struct cond_scope {
  unsigned on;    /* LP_ON_* of the rule; 0 for a segment */
  int in_segment; /* 1 for a segment definition */
};

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int cmp_strp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Canonical text of a scalar operand, appended to b (for summaries). */
static void literal_scalar(struct lp_buf *b, enum lp_field_type t, int64_t v,
                           const char *s) {
  char tmp[40];
  switch (t) {
  case LP_FT_INT:
    lp_buf_appendf(b, "%" PRId64, v);
    break;
  case LP_FT_MONEY:
  case LP_FT_DECIMAL:
    lp_money_format(v, tmp, sizeof(tmp));
    lp_buf_append_str(b, tmp);
    break;
  case LP_FT_BOOL:
    lp_buf_append_str(b, v ? "true" : "false");
    break;
  case LP_FT_TIME:
    lp_time_format_iso8601(v, tmp, sizeof(tmp));
    lp_buf_append_str(b, tmp);
    break;
  case LP_FT_STRING:
  case LP_FT_SET:
    lp_buf_appendf(b, "\"%s\"", s);
    break;
  }
}

/* Parses one scalar operand for a field of type t (sets take strings). */
static int scalar_value(struct loader *L, struct path *p, enum lp_field_id f,
                        json_t *v, int64_t *num, const char **str) {
  const struct lp_field_def *def = &lp_rule_fields[f];
  *str = NULL;
  switch (def->type) {
  case LP_FT_INT:
    if (!json_is_integer(v))
      return fail(L, p, "expected an integer for %s, got %s", def->name,
                  json_kind(v));
    *num = json_integer_value(v);
    return 0;
  case LP_FT_MONEY:
  case LP_FT_DECIMAL:
    return money_value(L, p, v, num);
  case LP_FT_BOOL:
    if (!json_is_boolean(v))
      return fail(L, p, "expected true or false for %s, got %s", def->name,
                  json_kind(v));
    *num = json_is_true(v);
    return 0;
  case LP_FT_TIME:
    if (!json_is_string(v) ||
        lp_time_parse_iso8601(json_string_value(v), num) != 0)
      return fail(L, p,
                  "expected an ISO 8601 time for %s (e.g. "
                  "\"2026-11-27T00:00:00Z\")",
                  def->name);
    return 0;
  case LP_FT_STRING:
  case LP_FT_SET:
    if (!json_is_string(v))
      return fail(L, p, "expected a string for %s, got %s", def->name,
                  json_kind(v));
    *str = json_string_value(v);
    if (def->enum_values) {
      size_t i = 0;
      while (def->enum_values[i] && strcmp(def->enum_values[i], *str) != 0)
        i++;
      if (!def->enum_values[i]) {
        struct lp_buf b;
        lp_buf_init(&b);
        for (i = 0; def->enum_values[i]; i++)
          lp_buf_appendf(&b, "%s%s", i ? ", " : "", def->enum_values[i]);
        fail(L, p, "unknown value \"%s\" for %s (expected one of %s)", *str,
             def->name, lp_buf_cstr(&b));
        lp_buf_free(&b);
        return -1;
      }
    }
    if (f == LP_F_PROFILE_SEGMENT) {
      /* Segments may live in another file: checked after all are loaded. */
      L->uses = lp_xrealloc(L->uses, (L->n_uses + 1) * sizeof(*L->uses));
      L->uses[L->n_uses].where = lp_xasprintf("%s: %s", L->file, p->s);
      L->uses[L->n_uses].value = lp_xstrdup(*str);
      L->n_uses++;
    }
    return 0;
  }
  return -1;
}

static int parse_leaf(struct loader *L, struct path *p, json_t *j,
                      const struct cond_scope *sc, struct lp_cond *c) {
  static const char *const keys[] = {"field", "op", "value", NULL};
  const char *field, *op;
  if (check_keys(L, p, j, keys) != 0 ||
      get_string(L, p, j, "field", 1, &field) != 0 ||
      get_string(L, p, j, "op", 1, &op) != 0)
    return -1;
  size_t old = path_key(p, "field");
  size_t f = 0;
  while (f < LP_F_COUNT && strcmp(lp_rule_fields[f].name, field) != 0)
    f++;
  if (f == LP_F_COUNT)
    return fail(L, p, "unknown field \"%s\" (see docs/rules.md, Fields)",
                field);
  const struct lp_field_def *def = &lp_rule_fields[f];
  if (sc->in_segment && !def->in_segments)
    return fail(L, p,
                "field \"%s\" cannot be used in a segment (only member "
                "profile fields)",
                field);
  if (!sc->in_segment && !(def->scope & sc->on))
    return fail(L, p, "field \"%s\" is not available on %s rules", field,
                sc->on == LP_ON_ORDER      ? "order"
                : sc->on == LP_ON_CUSTOMER ? "customer"
                                           : "timer");
  path_pop(p, old);
  c->kind = LP_COND_LEAF;
  c->field = (enum lp_field_id)f;

  old = path_key(p, "op");
  size_t o = 0;
  while (o < LP_OP_COUNT && strcmp(lp_rule_op_names[o], op) != 0)
    o++;
  if (o == LP_OP_COUNT)
    return fail(L, p,
                "unknown operator \"%s\" (expected one of ==, !=, <, <=, >, "
                ">=, between, in, not_in, contains, exists)",
                op);
  if (!op_applies((enum lp_rule_op)o, def->type))
    return fail(L, p, "operator \"%s\" does not apply to %s field \"%s\"", op,
                type_names[def->type], field);
  path_pop(p, old);
  c->op = (enum lp_rule_op)o;

  json_t *v = json_object_get(j, "value");
  struct lp_buf lit;
  lp_buf_init(&lit);
  int rc = -1;
  const char *s;
  if (c->op == LP_OP_EXISTS) {
    int expect = 1;
    if (get_bool(L, p, j, "value", &expect) != 0)
      goto done;
    c->num[0] = expect;
    lp_buf_append_str(&lit, c->num[0] ? "true" : "false");
    rc = 0;
    goto done;
  }
  if (!v) {
    rc = fail(L, p, "missing required key \"value\"");
    goto done;
  }
  old = path_key(p, "value");
  if (c->op == LP_OP_BETWEEN) {
    if (!json_is_array(v) || json_array_size(v) != 2) {
      rc = fail(L, p, "between needs [low, high], got %s", json_kind(v));
      goto done;
    }
    for (size_t i = 0; i < 2; i++) {
      size_t o2 = path_index(p, i);
      if (scalar_value(L, p, c->field, json_array_get(v, i), &c->num[i], &s))
        goto done;
      path_pop(p, o2);
    }
    if (c->num[0] > c->num[1]) {
      rc = fail(L, p, "between: low is above high");
      goto done;
    }
    lp_buf_append_byte(&lit, '[');
    literal_scalar(&lit, def->type, c->num[0], NULL);
    lp_buf_append_str(&lit, ", ");
    literal_scalar(&lit, def->type, c->num[1], NULL);
    lp_buf_append_byte(&lit, ']');
  } else if (c->op == LP_OP_IN || c->op == LP_OP_NOT_IN) {
    if (!json_is_array(v) || json_array_size(v) == 0) {
      rc = fail(L, p, "%s needs a non-empty array, got %s", op, json_kind(v));
      goto done;
    }
    size_t n = json_array_size(v);
    int strings = def->type == LP_FT_STRING || def->type == LP_FT_SET;
    if (strings)
      c->strs = lp_xcalloc(n, sizeof(char *));
    else
      c->nums = lp_xcalloc(n, sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
      size_t o2 = path_index(p, i);
      int64_t x = 0;
      if (scalar_value(L, p, c->field, json_array_get(v, i), &x, &s))
        goto done;
      path_pop(p, o2);
      if (strings)
        c->strs[c->n_list++] = lp_xstrdup(s);
      else
        c->nums[c->n_list++] = x;
    }
    /* Literal text in the author's order; the lookup list sorted. */
    lp_buf_append_byte(&lit, '[');
    for (size_t i = 0; i < n; i++) {
      if (i)
        lp_buf_append_str(&lit, ", ");
      literal_scalar(&lit, def->type, strings ? 0 : c->nums[i],
                     strings ? c->strs[i] : NULL);
    }
    lp_buf_append_byte(&lit, ']');
    if (strings)
      qsort(c->strs, n, sizeof(char *), cmp_strp);
    else
      qsort(c->nums, n, sizeof(int64_t), cmp_i64);
  } else {
    if (scalar_value(L, p, c->field, v, &c->num[0], &s) != 0)
      goto done;
    c->str = lp_xstrdup(s);
    literal_scalar(&lit, def->type, c->num[0], s);
  }
  path_pop(p, old);
  rc = 0;
done:
  if (rc == 0)
    c->literal = lp_xstrdup(lp_buf_cstr(&lit));
  lp_buf_free(&lit);
  return rc;
}

static int parse_cond(struct loader *L, struct path *p, json_t *j,
                      const struct cond_scope *sc, int depth,
                      struct lp_cond *c) {
  memset(c, 0, sizeof(*c));
  if (!json_is_object(j))
    return fail(L, p, "expected a condition object, got %s", json_kind(j));
  if (depth > MAX_COND_DEPTH)
    return fail(L, p, "conditions nested deeper than %d", MAX_COND_DEPTH);
  json_t *all = json_object_get(j, "all"), *any = json_object_get(j, "any");
  json_t *not = json_object_get(j, "not");
  if (!all && !any && !not ) {
    if (!json_object_get(j, "field"))
      return fail(L, p,
                  "expected a condition: {\"all\":[...]}, {\"any\":[...]}, "
                  "{\"not\":{...}} or {\"field\",\"op\",\"value\"}");
    return parse_leaf(L, p, j, sc, c);
  }
  if (json_object_size(j) != 1)
    return fail(L, p,
                "a combinator object (all, any, not) takes no other "
                "keys");
  if (not ) {
    c->kind = LP_COND_NOT;
    c->kids = lp_xcalloc(1, sizeof(*c->kids));
    c->n_kids = 1;
    size_t old = path_key(p, "not");
    if (parse_cond(L, p, not, sc, depth + 1, c->kids) != 0)
      return -1;
    path_pop(p, old);
    return 0;
  }
  const char *name = all ? "all" : "any";
  json_t *arr = all ? all : any;
  c->kind = all ? LP_COND_ALL : LP_COND_ANY;
  size_t old = path_key(p, name);
  if (!json_is_array(arr))
    return fail(L, p, "expected an array of conditions, got %s",
                json_kind(arr));
  size_t n = json_array_size(arr);
  c->kids = n ? lp_xcalloc(n, sizeof(*c->kids)) : NULL;
  for (size_t i = 0; i < n; i++) {
    size_t o2 = path_index(p, i);
    c->n_kids = i + 1; /* so a failure frees what was built */
    if (parse_cond(L, p, json_array_get(arr, i), sc, depth + 1, &c->kids[i]))
      return -1;
    path_pop(p, o2);
  }
  path_pop(p, old);
  return 0;
}

void lp_cond_free(struct lp_cond *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n_kids; i++)
    lp_cond_free(&c->kids[i]);
  free(c->kids);
  free(c->nums);
  if (c->strs)
    for (size_t i = 0; i < c->n_list; i++)
      free(c->strs[i]);
  free(c->strs);
  free(c->str);
  free(c->literal);
  memset(c, 0, sizeof(*c));
}

/* ---- actions ------------------------------------------------------------ */

static int parse_ref(struct loader *L, struct path *p, json_t *obj,
                     const char *key, char **lit, enum lp_action_ref *ref) {
  const char *s;
  if (get_string(L, p, obj, key, 0, &s) != 0)
    return -1;
  if (!s)
    return 0;
  if (s[0] != '$') {
    if (!*s) {
      size_t old = path_key(p, key);
      fail(L, p, "must not be empty");
      path_pop(p, old);
      return -1;
    }
    *lit = lp_xstrdup(s);
    return 0;
  }
  if (strcmp(s, "$favourite_brand") == 0) {
    *ref = LP_REF_FAVOURITE_BRAND;
    return 0;
  }
  if (strcmp(s, "$favourite_category") == 0) {
    *ref = LP_REF_FAVOURITE_CATEGORY;
    return 0;
  }
  size_t old = path_key(p, key);
  fail(L, p,
       "unknown placeholder \"%s\" (expected $favourite_brand or "
       "$favourite_category)",
       s);
  path_pop(p, old);
  return -1;
}

static int parse_action(struct loader *L, struct path *p, json_t *j,
                        unsigned on, struct lp_rule_action *a) {
  static const char *const k_points[] = {
      "kind",    "points", "per_currency_unit", "multiplier", "template_id",
      "channel", "brand",  "category",          NULL};
  static const char *const k_reward[] = {"kind",        "reward_id", "cost",
                                         "template_id", "channel",   "brand",
                                         "category",    NULL};
  static const char *const k_discount[] = {"kind",        "percent", "amount",
                                           "template_id", "channel", "brand",
                                           "category",    NULL};
  static const char *const k_tier[] = {
      "kind", "tier", "template_id", "channel", "brand", "category", NULL};
  static const char *const k_message[] = {"kind",  "template_id", "channel",
                                          "brand", "category",    NULL};
  static const char *const k_sync[] = {"kind", NULL};
  static const char *const *const keys[LP_ACTION_KIND_COUNT] = {
      [LP_ACTION_POINTS] = k_points,          [LP_ACTION_REWARD] = k_reward,
      [LP_ACTION_DISCOUNT_CODE] = k_discount, [LP_ACTION_TIER_CHANGE] = k_tier,
      [LP_ACTION_MESSAGE] = k_message,        [LP_ACTION_SCORE_SYNC] = k_sync,
  };
  if (!json_is_object(j))
    return fail(L, p, "expected an action object, got %s", json_kind(j));
  const char *kind, *s;
  if (get_string(L, p, j, "kind", 1, &kind) != 0)
    return -1;
  if (lp_action_kind_parse(kind, &a->kind) != 0) {
    size_t old = path_key(p, "kind");
    fail(L, p,
         "unknown action kind \"%s\" (expected one of points, reward, "
         "discount_code, tier_change, message, score_sync)",
         kind);
    path_pop(p, old);
    return -1;
  }
  if (check_keys(L, p, j, keys[a->kind]) != 0)
    return -1;
  if (get_string(L, p, j, "template_id", a->kind == LP_ACTION_MESSAGE, &s))
    return -1;
  a->template_id = lp_xstrdup(s);
  if (get_string(L, p, j, "channel", 0, &s) != 0)
    return -1;
  if (s && strcmp(s, "email") != 0 && strcmp(s, "sms") != 0 &&
      strcmp(s, "push") != 0) {
    size_t old = path_key(p, "channel");
    fail(L, p, "unknown channel \"%s\" (expected one of email, sms, push)", s);
    path_pop(p, old);
    return -1;
  }
  a->channel = lp_xstrdup(s                              ? s
                          : a->kind == LP_ACTION_MESSAGE ? "email"
                                                         : NULL);
  if (parse_ref(L, p, j, "brand", &a->brand, &a->brand_ref) != 0 ||
      parse_ref(L, p, j, "category", &a->category, &a->category_ref) != 0)
    return -1;

  switch (a->kind) {
  case LP_ACTION_POINTS: {
    int fixed = json_object_get(j, "points") != NULL;
    int rate = json_object_get(j, "per_currency_unit") != NULL;
    if (fixed == rate)
      return fail(L, p,
                  "a points action needs exactly one of \"points\" and "
                  "\"per_currency_unit\"");
    if (fixed && json_object_get(j, "multiplier"))
      return fail(L, p,
                  "\"multiplier\" applies to \"per_currency_unit\" "
                  "only");
    if (get_int(L, p, j, "points", 0, 1, MAX_POINTS, &a->points) != 0)
      return -1;
    a->multiplier_micros = 1000000;
    if (get_rate(L, p, j, "per_currency_unit", &a->per_unit_micros) != 0 ||
        get_rate(L, p, j, "multiplier", &a->multiplier_micros) != 0)
      return -1;
    if (rate && on != LP_ON_ORDER) {
      size_t old = path_key(p, "per_currency_unit");
      fail(L, p,
           "points per currency unit need an order (rule is on "
           "customer events)");
      path_pop(p, old);
      return -1;
    }
    return 0;
  }
  case LP_ACTION_REWARD:
    if (get_ident(L, p, j, "reward_id", 1, &s) != 0)
      return -1;
    a->reward_id = lp_xstrdup(s);
    return get_money(L, p, j, "cost", 0, &a->cost_micros);
  case LP_ACTION_DISCOUNT_CODE: {
    int pct = json_object_get(j, "percent") != NULL;
    int amt = json_object_get(j, "amount") != NULL;
    if (pct == amt)
      return fail(L, p,
                  "a discount_code action needs exactly one of "
                  "\"percent\" and \"amount\"");
    int64_t percent = 0;
    if (get_int(L, p, j, "percent", 0, 1, 100, &percent) != 0 ||
        get_money(L, p, j, "amount", 1, &a->amount_micros) != 0)
      return -1;
    a->percent = (int32_t)percent;
    return 0;
  }
  case LP_ACTION_TIER_CHANGE:
    if (get_ident(L, p, j, "tier", 1, &s) != 0)
      return -1;
    a->tier = lp_xstrdup(s);
    return 0;
  case LP_ACTION_MESSAGE:
  case LP_ACTION_SCORE_SYNC:
    return 0;
  }
  return -1;
}

static void action_free(struct lp_rule_action *a) {
  free(a->reward_id);
  free(a->tier);
  free(a->template_id);
  free(a->channel);
  free(a->brand);
  free(a->category);
  memset(a, 0, sizeof(*a));
}

/* ---- rules, segments, settings ------------------------------------------
 */

static void add_feature(struct lp_rule *r, enum lp_field_id f) {
  for (size_t i = 0; i < r->n_features; i++)
    if (r->features[i] == f)
      return;
  LP_ASSERT(r->n_features < LP_F_COUNT);
  r->features[r->n_features++] = (uint8_t)f;
}

static void collect_features(struct lp_rule *r, const struct lp_cond *c) {
  if (c->kind == LP_COND_LEAF) {
    add_feature(r, c->field);
    return;
  }
  for (size_t i = 0; i < c->n_kids; i++)
    collect_features(r, &c->kids[i]);
}

static int intern_group(struct lp_ruleset *rs, const char *name) {
  for (size_t i = 0; i < rs->n_groups; i++)
    if (strcmp(rs->groups[i], name) == 0)
      return (int)i;
  rs->groups = lp_xrealloc(rs->groups, (rs->n_groups + 1) * sizeof(char *));
  rs->groups[rs->n_groups] = lp_xstrdup(name);
  return (int)rs->n_groups++;
}

/* "timer": {"kind": ..., ...} of an "on": "timer" rule. */
static int parse_timer(struct loader *L, struct path *p, json_t *j,
                       struct lp_timer_rule *t) {
  static const char *const k_winback[] = {"kind", "after_days", "p_alive_below",
                                          "horizon_days", NULL};
  static const char *const k_replenish[] = {"kind", "lead_days", NULL};
  static const char *const k_birthday[] = {"kind", "days_before", NULL};
  static const char *const k_cart[] = {"kind", "after_minutes", NULL};
  if (!json_is_object(j))
    return fail(L, p, "expected a timer object, got %s", json_kind(j));
  const char *kind;
  if (get_string(L, p, j, "kind", 1, &kind) != 0)
    return -1;
  int64_t v = 0;
  if (strcmp(kind, "winback") == 0) {
    t->kind = LP_TIMER_WINBACK;
    if (check_keys(L, p, j, k_winback) != 0)
      return -1;
    int fixed = json_object_get(j, "after_days") != NULL;
    int model = json_object_get(j, "p_alive_below") != NULL;
    if (fixed == model)
      return fail(L, p,
                  "a winback timer needs exactly one of \"after_days\" and "
                  "\"p_alive_below\"");
    if (get_int(L, p, j, "after_days", 0, 1, 3650, &v) != 0)
      return -1;
    t->after_days = (int)v;
    if (model) {
      size_t old = path_key(p, "p_alive_below");
      int rc = money_value(L, p, json_object_get(j, "p_alive_below"),
                           &t->p_alive_below);
      if (rc == 0 && (t->p_alive_below <= 0 || t->p_alive_below > 1000000))
        rc = fail(L, p, "must be above 0 and at most 1");
      path_pop(p, old);
      if (rc != 0)
        return -1;
      v = 365;
      if (get_int(L, p, j, "horizon_days", 0, 1, 3650, &v) != 0)
        return -1;
      t->horizon_days = (int)v;
    } else if (json_object_get(j, "horizon_days")) {
      return fail(L, p, "\"horizon_days\" applies to \"p_alive_below\" only");
    }
    return 0;
  }
  if (strcmp(kind, "replenishment") == 0) {
    t->kind = LP_TIMER_REPLENISHMENT;
    v = 3;
    if (check_keys(L, p, j, k_replenish) != 0 ||
        get_int(L, p, j, "lead_days", 0, 0, 365, &v) != 0)
      return -1;
    t->lead_days = (int)v;
    return 0;
  }
  if (strcmp(kind, "birthday") == 0) {
    t->kind = LP_TIMER_BIRTHDAY;
    if (check_keys(L, p, j, k_birthday) != 0 ||
        get_int(L, p, j, "days_before", 0, 0, 60, &v) != 0)
      return -1;
    t->days_before = (int)v;
    return 0;
  }
  if (strcmp(kind, "cart") == 0) {
    t->kind = LP_TIMER_CART;
    v = 60;
    if (check_keys(L, p, j, k_cart) != 0 ||
        get_int(L, p, j, "after_minutes", 0, 1, 10080, &v) != 0)
      return -1;
    t->after_minutes = (int)v;
    return 0;
  }
  size_t old = path_key(p, "kind");
  fail(L, p,
       "unknown timer kind \"%s\" (expected one of winback, replenishment, "
       "birthday, cart)",
       kind);
  path_pop(p, old);
  return -1;
}

static void rule_free(struct lp_rule *r) {
  free(r->id);
  free(r->description);
  lp_cond_free(&r->when);
  action_free(&r->action);
}

static int parse_rule(struct loader *L, struct path *p, json_t *j,
                      struct lp_rule *r) {
  static const char *const keys[] = {
      "id",        "version", "description", "on",     "priority",
      "exclusive", "group",   "when",        "action", "approval",
      "enabled",   "timer",   NULL};
  if (!json_is_object(j))
    return fail(L, p, "expected a rule object, got %s", json_kind(j));
  const char *id, *s;
  if (check_keys(L, p, j, keys) != 0 || get_ident(L, p, j, "id", 1, &id))
    return -1;
  r->id = lp_xstrdup(id);
  int64_t version = 0, priority = 0;
  if (get_int(L, p, j, "version", 1, 1, INT32_MAX, &version) != 0 ||
      get_int(L, p, j, "priority", 0, -1000000, 1000000, &priority) != 0)
    return -1;
  r->version = (int32_t)version;
  r->priority = (int32_t)priority;
  if (get_string(L, p, j, "description", 0, &s) != 0)
    return -1;
  r->description = lp_xstrdup(s);
  if (get_string(L, p, j, "on", 1, &s) != 0)
    return -1;
  if (strcmp(s, "order") == 0) {
    r->on = LP_ON_ORDER;
  } else if (strcmp(s, "customer") == 0) {
    r->on = LP_ON_CUSTOMER;
  } else if (strcmp(s, "timer") == 0) {
    r->on = LP_ON_TIMER;
  } else {
    size_t old = path_key(p, "on");
    fail(L, p, "unknown event kind \"%s\" (expected order, customer or timer)",
         s);
    path_pop(p, old);
    return -1;
  }
  json_t *tj = json_object_get(j, "timer");
  if (r->on == LP_ON_TIMER && !tj)
    return fail(L, p,
                "missing required key \"timer\" (a timer rule says which timer "
                "it plans, e.g. {\"kind\": \"winback\", \"after_days\": 45})");
  if (r->on != LP_ON_TIMER && tj) {
    size_t old = path_key(p, "timer");
    fail(L, p, "\"timer\" applies to rules with \"on\": \"timer\" only");
    path_pop(p, old);
    return -1;
  }
  if (tj) {
    size_t old = path_key(p, "timer");
    if (parse_timer(L, p, tj, &r->timer) != 0)
      return -1;
    path_pop(p, old);
  }
  r->enabled = 1;
  if (get_bool(L, p, j, "exclusive", &r->exclusive) != 0 ||
      get_bool(L, p, j, "enabled", &r->enabled) != 0 ||
      get_ident(L, p, j, "group", 0, &s) != 0)
    return -1;
  r->group = s ? intern_group(L->rs, s) : -1;
  if (get_string(L, p, j, "approval", 0, &s) != 0)
    return -1;
  if (s && lp_approval_hint_parse(s, &r->approval) != 0) {
    size_t old = path_key(p, "approval");
    fail(L, p,
         "unknown approval \"%s\" (expected one of none, recommended, "
         "required)",
         s);
    path_pop(p, old);
    return -1;
  }
  json_t *when = json_object_get(j, "when"), *action;
  if (!when)
    return fail(L, p,
                "missing required key \"when\" (use {\"all\":[]} for "
                "always)");
  struct cond_scope sc = {r->on, 0};
  size_t old = path_key(p, "when");
  if (parse_cond(L, p, when, &sc, 1, &r->when) != 0)
    return -1;
  path_pop(p, old);
  action = json_object_get(j, "action");
  if (!action)
    return fail(L, p, "missing required key \"action\"");
  old = path_key(p, "action");
  if (parse_action(L, p, action, r->on, &r->action) != 0)
    return -1;
  path_pop(p, old);

  collect_features(r, &r->when);
  if (r->action.per_unit_micros)
    add_feature(r, LP_F_EVENT_TOTAL);
  if (r->action.brand_ref == LP_REF_FAVOURITE_BRAND ||
      r->action.category_ref == LP_REF_FAVOURITE_BRAND)
    add_feature(r, LP_F_PROFILE_FAVOURITE_BRAND);
  if (r->action.brand_ref == LP_REF_FAVOURITE_CATEGORY ||
      r->action.category_ref == LP_REF_FAVOURITE_CATEGORY)
    add_feature(r, LP_F_PROFILE_FAVOURITE_CATEGORY);
  return 0;
}

static int parse_segment(struct loader *L, struct path *p, json_t *j,
                         struct lp_segment *sg) {
  static const char *const keys[] = {"id", "description", "when", NULL};
  if (!json_is_object(j))
    return fail(L, p, "expected a segment object, got %s", json_kind(j));
  const char *id, *s;
  if (check_keys(L, p, j, keys) != 0 || get_ident(L, p, j, "id", 1, &id) ||
      get_string(L, p, j, "description", 0, &s) != 0)
    return -1;
  if (strcmp(id, "default") == 0) {
    size_t old = path_key(p, "id");
    fail(L, p, "\"default\" is reserved for members no segment matches");
    path_pop(p, old);
    return -1;
  }
  sg->id = lp_xstrdup(id);
  json_t *when = json_object_get(j, "when");
  if (!when)
    return fail(L, p, "missing required key \"when\"");
  struct cond_scope sc = {0, 1};
  size_t old = path_key(p, "when");
  if (parse_cond(L, p, when, &sc, 1, &sg->when) != 0)
    return -1;
  path_pop(p, old);
  return 0;
}

static int parse_settings(struct loader *L, struct path *p, json_t *j) {
  static const char *const keys[] = {"point_cost", "approval_cost_threshold",
                                     NULL};
  if (!json_is_object(j))
    return fail(L, p, "expected an object, got %s", json_kind(j));
  if (check_keys(L, p, j, keys) != 0)
    return -1;
  struct {
    const char *key;
    char **file;
    int64_t *value;
  } s[] = {{"point_cost", &L->point_cost_file, &L->rs->point_cost_micros},
           {"approval_cost_threshold", &L->threshold_file,
            &L->rs->approval_threshold_micros}};
  for (size_t i = 0; i < LP_ARRAY_LEN(s); i++) {
    if (!json_object_get(j, s[i].key))
      continue;
    if (*s[i].file) {
      size_t old = path_key(p, s[i].key);
      fail(L, p, "already set in %s (set each setting in one file)",
           *s[i].file);
      path_pop(p, old);
      return -1;
    }
    if (get_money(L, p, j, s[i].key, 0, s[i].value) != 0)
      return -1;
    *s[i].file = lp_xstrdup(L->file);
  }
  if (json_object_get(j, "approval_cost_threshold"))
    L->rs->has_approval_threshold = 1;
  return 0;
}

/* Parses one file's text into the loader's ruleset. */
static int parse_text(struct loader *L, const char *name, const char *text,
                      size_t len) {
  static const char *const keys[] = {"description", "rules", "segments",
                                     "settings", NULL};
  struct path p = {"$", 1};
  L->file = name;
  const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
  uint32_t nl = (uint32_t)strlen(base), tl = (uint32_t)len;
  uint8_t hdr[8] = {nl >> 24, nl >> 16, nl >> 8, nl,
                    tl >> 24, tl >> 16, tl >> 8, tl};
  lp_buf_append(&L->digest_input, hdr, 4);
  lp_buf_append(&L->digest_input, base, nl);
  lp_buf_append(&L->digest_input, hdr + 4, 4);
  lp_buf_append(&L->digest_input, text, len);

  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return lp_err(L->errstr, L->errstr_size, "%s: line %d column %d: %s", name,
                  jerr.line, jerr.column, jerr.text);
  int rc = -1;
  if (!json_is_object(root)) {
    fail(L, &p, "expected an object with \"rules\", got %s", json_kind(root));
    goto done;
  }
  const char *s;
  if (check_keys(L, &p, root, keys) != 0 ||
      get_string(L, &p, root, "description", 0, &s) != 0)
    goto done;
  json_t *settings = json_object_get(root, "settings");
  if (settings) {
    size_t old = path_key(&p, "settings");
    if (parse_settings(L, &p, settings) != 0)
      goto done;
    path_pop(&p, old);
  }
  json_t *segs = json_object_get(root, "segments");
  if (segs) {
    size_t old = path_key(&p, "segments");
    if (!json_is_array(segs)) {
      fail(L, &p, "expected an array, got %s", json_kind(segs));
      goto done;
    }
    for (size_t i = 0; i < json_array_size(segs); i++) {
      size_t o2 = path_index(&p, i);
      struct lp_ruleset *rs = L->rs;
      if (rs->n_segments == L->cap_segments) {
        L->cap_segments = L->cap_segments ? 2 * L->cap_segments : 8;
        rs->segments =
            lp_xrealloc(rs->segments, L->cap_segments * sizeof(*rs->segments));
        L->segment_where =
            lp_xrealloc(L->segment_where, L->cap_segments * sizeof(char *));
      }
      struct lp_segment *sg = &rs->segments[rs->n_segments];
      memset(sg, 0, sizeof(*sg));
      L->segment_where[rs->n_segments] = lp_xasprintf("%s %s", name, p.s);
      rs->n_segments++;
      if (parse_segment(L, &p, json_array_get(segs, i), sg) != 0)
        goto done;
      for (size_t k = 0; k + 1 < rs->n_segments; k++)
        if (strcmp(rs->segments[k].id, sg->id) == 0) {
          path_key(&p, "id");
          fail(L, &p, "duplicate segment id \"%s\" (first defined at %s)",
               sg->id, L->segment_where[k]);
          goto done;
        }
      path_pop(&p, o2);
    }
    path_pop(&p, old);
  }
  json_t *rules = json_object_get(root, "rules");
  if (rules) {
    size_t old = path_key(&p, "rules");
    if (!json_is_array(rules)) {
      fail(L, &p, "expected an array, got %s", json_kind(rules));
      goto done;
    }
    for (size_t i = 0; i < json_array_size(rules); i++) {
      size_t o2 = path_index(&p, i);
      struct lp_ruleset *rs = L->rs;
      if (rs->n_rules == L->cap_rules) {
        L->cap_rules = L->cap_rules ? 2 * L->cap_rules : 16;
        rs->rules = lp_xrealloc(rs->rules, L->cap_rules * sizeof(*rs->rules));
        L->rule_where =
            lp_xrealloc(L->rule_where, L->cap_rules * sizeof(char *));
      }
      struct lp_rule *r = &rs->rules[rs->n_rules];
      memset(r, 0, sizeof(*r));
      L->rule_where[rs->n_rules] = lp_xasprintf("%s %s", name, p.s);
      rs->n_rules++;
      if (parse_rule(L, &p, json_array_get(rules, i), r) != 0)
        goto done;
      for (size_t k = 0; k + 1 < rs->n_rules; k++)
        if (strcmp(rs->rules[k].id, r->id) == 0) {
          path_key(&p, "id");
          fail(L, &p, "duplicate rule id \"%s\" (first defined at %s)", r->id,
               L->rule_where[k]);
          goto done;
        }
      path_pop(&p, o2);
    }
    path_pop(&p, old);
  }
  rc = 0;
done:
  json_decref(root);
  return rc;
}

/* Sort order of evaluation: priority descending, then id ascending. */
static int cmp_rule(const void *a, const void *b) {
  const struct lp_rule *x = a, *y = b;
  if (x->priority != y->priority)
    return x->priority > y->priority ? -1 : 1;
  return strcmp(x->id, y->id);
}

static void loader_init(struct loader *L, char *errstr, size_t errstr_size) {
  memset(L, 0, sizeof(*L));
  L->rs = lp_xcalloc(1, sizeof(*L->rs));
  L->rs->point_cost_micros = DEFAULT_POINT_COST_MICROS;
  L->errstr = errstr;
  L->errstr_size = errstr_size;
  lp_buf_init(&L->digest_input);
  if (errstr && errstr_size)
    errstr[0] = '\0';
}

/* Final checks across files, then the ruleset (or NULL); frees the loader. */
static struct lp_ruleset *loader_finish(struct loader *L, int ok) {
  struct lp_ruleset *rs = L->rs;
  for (size_t i = 0; ok && i < L->n_uses; i++) {
    size_t k = 0;
    if (strcmp(L->uses[i].value, "default") == 0)
      continue;
    while (k < rs->n_segments && strcmp(rs->segments[k].id, L->uses[i].value))
      k++;
    if (k == rs->n_segments) {
      lp_err(L->errstr, L->errstr_size,
             "%s: unknown segment \"%s\" (not defined in any segments list)",
             L->uses[i].where, L->uses[i].value);
      ok = 0;
    }
  }
  for (size_t i = 0; i < L->n_uses; i++) {
    free(L->uses[i].where);
    free(L->uses[i].value);
  }
  free(L->uses);
  for (size_t i = 0; i < rs->n_rules; i++)
    free(L->rule_where[i]);
  free(L->rule_where);
  for (size_t i = 0; i < rs->n_segments; i++)
    free(L->segment_where[i]);
  free(L->segment_where);
  free(L->point_cost_file);
  free(L->threshold_file);
  if (ok) {
    char hex[65];
    lp_sha256_hex(L->digest_input.data, L->digest_input.len, hex);
    memcpy(rs->digest, hex, 16);
    rs->digest[16] = '\0';
    if (rs->n_rules)
      qsort(rs->rules, rs->n_rules, sizeof(*rs->rules), cmp_rule);
    for (size_t i = 0; i < rs->n_rules; i++) {
      struct lp_rule *r = &rs->rules[i];
      if (r->on != LP_ON_TIMER || !r->enabled)
        continue;
      rs->timer_rules = lp_xrealloc(
          rs->timer_rules, (rs->n_timer_rules + 1) * sizeof(*rs->timer_rules));
      struct lp_timer_rule *t = &rs->timer_rules[rs->n_timer_rules++];
      *t = r->timer;
      t->rule_id = r->id;
      t->rule_version = r->version;
    }
  } else {
    lp_ruleset_destroy(&rs);
  }
  lp_buf_free(&L->digest_input);
  return rs;
}

struct lp_ruleset *lp_ruleset_load_string(const char *json, const char *name,
                                          char *errstr, size_t errstr_size) {
  struct loader L;
  loader_init(&L, errstr, errstr_size);
  int ok = parse_text(&L, name, json, strlen(json)) == 0;
  return loader_finish(&L, ok);
}

/* Reads a whole file (caller frees); -1 with "<file>: <reason>". */
static int read_file(const char *name, char **out, size_t *len, char *errstr,
                     size_t errstr_size) {
  FILE *f = fopen(name, "rb");
  if (!f)
    return lp_err(errstr, errstr_size, "%s: %s", name, strerror(errno));
  struct lp_buf b;
  lp_buf_init(&b);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    lp_buf_append(&b, chunk, n);
    if (b.len > MAX_FILE_BYTES) {
      fclose(f);
      lp_buf_free(&b);
      return lp_err(errstr, errstr_size, "%s: larger than %u bytes", name,
                    MAX_FILE_BYTES);
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    lp_buf_free(&b);
    return lp_err(errstr, errstr_size, "%s: read error", name);
  }
  *len = b.len;
  *out = lp_xstrndup(b.len ? (const char *)b.data : "", b.len);
  lp_buf_free(&b);
  return 0;
}

/* Names of the *.json files of a directory, sorted (caller frees each and
 * the array). Hidden files are skipped (editors' swap files). */
static int list_json(const char *dir, char ***names, size_t *n, char *errstr,
                     size_t errstr_size) {
  DIR *d = opendir(dir);
  if (!d)
    return lp_err(errstr, errstr_size, "%s: %s", dir, strerror(errno));
  struct dirent *e;
  *names = NULL;
  *n = 0;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (e->d_name[0] == '.' || len < 6 ||
        strcmp(e->d_name + len - 5, ".json") != 0)
      continue;
    *names = lp_xrealloc(*names, (*n + 1) * sizeof(char *));
    (*names)[(*n)++] = lp_xasprintf("%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (*n)
    qsort(*names, *n, sizeof(char *), cmp_strp);
  return 0;
}

struct lp_ruleset *lp_ruleset_load(const char *path, char *errstr,
                                   size_t errstr_size) {
  struct stat st;
  if (stat(path, &st) != 0) {
    lp_err(errstr, errstr_size, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char **names = NULL;
  size_t n = 0;
  if (S_ISDIR(st.st_mode)) {
    if (list_json(path, &names, &n, errstr, errstr_size) != 0)
      return NULL;
    if (n == 0) {
      lp_err(errstr, errstr_size, "%s: no *.json rule files", path);
      return NULL;
    }
  } else {
    names = lp_xmalloc(sizeof(char *));
    names[n++] = lp_xstrdup(path);
  }
  struct loader L;
  loader_init(&L, errstr, errstr_size);
  int ok = 1;
  for (size_t i = 0; i < n && ok; i++) {
    char *text = NULL;
    size_t len = 0;
    if (read_file(names[i], &text, &len, errstr, errstr_size) != 0) {
      ok = 0;
      break;
    }
    ok = parse_text(&L, names[i], text, len) == 0;
    free(text);
  }
  struct lp_ruleset *rs = loader_finish(&L, ok);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return rs;
}

void lp_ruleset_destroy(struct lp_ruleset **rsp) {
  struct lp_ruleset *rs = rsp ? *rsp : NULL;
  if (!rs)
    return;
  for (size_t i = 0; i < rs->n_rules; i++)
    rule_free(&rs->rules[i]);
  free(rs->rules);
  for (size_t i = 0; i < rs->n_segments; i++) {
    free(rs->segments[i].id);
    lp_cond_free(&rs->segments[i].when);
  }
  free(rs->segments);
  for (size_t i = 0; i < rs->n_groups; i++)
    free(rs->groups[i]);
  free(rs->groups);
  free(rs->timer_rules);
  free(rs);
  *rsp = NULL;
}

size_t lp_ruleset_timer_rules(const struct lp_ruleset *rs,
                              const struct lp_timer_rule **out) {
  *out = rs ? rs->timer_rules : NULL;
  return rs ? rs->n_timer_rules : 0;
}

size_t lp_ruleset_count(const struct lp_ruleset *rs) {
  return rs ? rs->n_rules : 0;
}

const char *lp_ruleset_digest(const struct lp_ruleset *rs) {
  return rs ? rs->digest : "";
}
