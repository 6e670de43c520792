/*
 * avro_codec.c — Avro binary encoding of the pipeline's records (see
 * avro_codec.h): schemas, Parsing Canonical Form and CRC-64-AVRO
 * fingerprints, single-object and Confluent framings, the schema-registry
 * client, and the mapping between avro-c values and the C records.
 *
 * How a record is read
 * --------------------
 * 1. Framing: 0xC3 0x01 + fingerprint selects a known writer schema (ours,
 *    a previous version of ours still in the topics, see previous_schemas,
 *    or one added with lp_avro_codec_add_schema); 0x00 + id selects a
 *    registry schema (preloaded, cached, or fetched once with libcurl,
 *    which is loaded only when a registry is configured).
 * 2. The datum is checked against the writer schema by walk_value() before
 *    avro-c sees it: every length against the bytes left, varints at most
 *    64 bits, string sizes against LP_MAX_STRING_BYTES, UTF-8 without NUL,
 *    union and enum indexes in range, array items against
 *    LP_AVRO_MAX_ARRAY_ITEMS, nesting depth, no trailing bytes. avro-c
 *    1.11.1 allocates whatever length a record claims (a 2 GB string is a
 *    2 GB malloc) and trusts indexes, so it only ever reads checked bytes.
 * 3. avro_value_read() fills a generic value of the *writer* schema
 *    (objects reused per writer schema).
 * 4. A plan, compiled once per (writer schema, record type), copies that
 *    value into the C record by field name and enum symbol name, applying
 *    Avro's resolution rules: writer fields we do not know are skipped,
 *    our fields the writer lacks take their schema default (always the C
 *    zero value, checked at start-up), int is promoted to long, bytes and
 *    string interchange, unknown enum symbols take the enum's default.
 *    avro-c's own resolved writer is not used because in 1.11.1 it refuses
 *    any reader field missing from the writer ("TODO: Handle default
 *    values") and copies enum ordinals without mapping symbols.
 * 5. Orders, customers and activity events are validated (events.c).
 * A datum written with exactly our schema takes a fast reader instead of
 * steps 2-4 (see "Fast reader" below); it falls back to them at the first
 * doubt, so every error still comes from the checked path.
 *
 * How a record is written: straight from the C record into Avro binary
 * by the same field tables (put_record), after the single-object header —
 * no avro-c value in between, as this runs for every decision. Unit tests
 * check the bytes against avro-c's reading of them.
 * Encoders reject what decoders would reject structurally (missing
 * required strings, strings over the limit or not UTF-8, too many array
 * items) but not semantic faults (a negative quantity encodes, and is
 * refused on decode) — except dead letters and action results, whose
 * strings are repaired (invalid UTF-8 becomes U+FFFD, over-long text is
 * cut) because a dead letter must never fail to be written, nor the audit
 * record of an action already taken (its reason and request summary may
 * quote whatever a platform answered).
 *
 * The field tables below (record_desc) tie each schema field to its C
 * member; lp_avro_codec_new checks them against the embedded schemas
 * (names, order, types, symbols, defaults), so the .avsc files, events.h
 * and this file cannot drift apart silently.
 */
#include "avro_codec.h"

#include <avro.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas_embed.h"

/* Items in any one array of a record (the largest per-field limit; the
 * validators apply the smaller ones: tags, discount codes). */
#define LP_AVRO_MAX_ARRAY_ITEMS LP_MAX_LINE_ITEMS
/* Nesting of records/arrays/maps/unions in a writer schema's datum. */
#define LP_AVRO_MAX_DEPTH 32
/* Writer schemas kept (registry ids and extra fingerprints together). */
#define LP_AVRO_MAX_WRITERS 256
/* Largest registry answer read. */
#define LP_AVRO_MAX_REGISTRY_BODY (1024 * 1024)
#define LP_AVRO_REC_COUNT 6

/* ------------------------------------------------------------------------
 * Field tables: each schema field and the C member it maps to
 */

enum field_kind {
  FK_STRING,       /* "string"; char *, NULL is an encode error */
  FK_OPT_STRING,   /* ["null","string"]; char *, NULL when absent */
  FK_INT,          /* "int"; int32_t */
  FK_LONG,         /* "long" (timestamp-millis too); int64_t */
  FK_ENUM,         /* enum; a C enum (int-sized) */
  FK_STRING_ARRAY, /* array of string; char ** + size_t count */
  FK_RECORD_ARRAY, /* array of record; T * + size_t count */
  FK_RECORD,       /* record; nested struct member */
  FK_BYTES,        /* "bytes"; uint8_t * + size_t length */
  FK_OPT_BYTES,    /* ["null","bytes"]; uint8_t * (NULL) + size_t length */
  FK_OPT_INT,      /* ["null","int"]; int32_t + int presence flag */
  FK_OPT_LONG,     /* ["null","long"]; int64_t + int presence flag */
};

struct enum_desc {
  const char *name; /* unqualified Avro name */
  const char *const *symbols;
  int n_symbols;
  int default_symbol; /* the enum's "default": read for unknown symbols */
  const char *(*c_name)(int v); /* events.c's name of value v */
};

struct record_desc;

struct field_desc {
  const char *name; /* Avro field name == C member name */
  enum field_kind kind;
  int has_default; /* the schema gives a default; it is the C zero value */
  size_t offset;
  size_t count_offset; /* arrays: the size_t count; bytes: the length;
                          optional numbers: the int "has" flag */
  const struct record_desc *record; /* FK_RECORD, FK_RECORD_ARRAY */
  const struct enum_desc *enumd;    /* FK_ENUM */
};

struct record_desc {
  const char *name; /* unqualified Avro name */
  size_t c_size;
  const struct field_desc *fields;
  size_t n_fields;
};

_Static_assert(sizeof(enum lp_order_status) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lp_customer_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lp_consent) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lp_action_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lp_approval_hint) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lp_action_outcome) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lp_activity_kind) == sizeof(int), "enum size");

static const char *order_status_c_name(int v) {
  return lp_order_status_name((enum lp_order_status)v);
}
static const char *customer_kind_c_name(int v) {
  return lp_customer_kind_name((enum lp_customer_kind)v);
}
static const char *consent_c_name(int v) {
  return lp_consent_name((enum lp_consent)v);
}
static const char *action_kind_c_name(int v) {
  return lp_action_kind_name((enum lp_action_kind)v);
}
static const char *approval_c_name(int v) {
  return lp_approval_hint_name((enum lp_approval_hint)v);
}
static const char *action_outcome_c_name(int v) {
  return lp_action_outcome_name((enum lp_action_outcome)v);
}
static const char *activity_kind_c_name(int v) {
  return lp_activity_kind_name((enum lp_activity_kind)v);
}

static const char *const order_status_symbols[] = {"created", "paid",
                                                   "cancelled", "refunded"};
static const char *const customer_kind_symbols[] = {"created", "updated"};
static const char *const consent_symbols[] = {"unknown", "subscribed",
                                              "unsubscribed"};
static const char *const action_kind_symbols[] = {
    "points",      "reward",  "discount_code",
    "tier_change", "message", "score_sync"};
static const char *const approval_symbols[] = {"none", "recommended",
                                               "required"};
static const char *const action_outcome_symbols[] = {
    "issued",  "already_done", "pending_approval", "rejected", "expired",
    "blocked", "failed"};
static const char *const activity_kind_symbols[] = {
    "page_view",      "product_view",   "cart_updated", "checkout_started",
    "cart_abandoned", "review_written", "referral",     "social_follow"};

#define ENUM_DESC(var, avro_name, syms, def, cname)                            \
  static const struct enum_desc var = {avro_name, syms,                        \
                                       (int)LP_ARRAY_LEN(syms), def, cname}
ENUM_DESC(order_status_enum, "OrderStatus", order_status_symbols,
          LP_ORDER_CREATED, order_status_c_name);
ENUM_DESC(customer_kind_enum, "CustomerKind", customer_kind_symbols,
          LP_CUSTOMER_UPDATED, customer_kind_c_name);
ENUM_DESC(consent_enum, "Consent", consent_symbols, LP_CONSENT_UNKNOWN,
          consent_c_name);
ENUM_DESC(action_kind_enum, "ActionKind", action_kind_symbols,
          LP_ACTION_MESSAGE, action_kind_c_name);
ENUM_DESC(approval_enum, "ApprovalHint", approval_symbols, LP_APPROVAL_REQUIRED,
          approval_c_name);
/* failed, never issued, for an outcome this reader does not know. */
ENUM_DESC(action_outcome_enum, "ActionOutcome", action_outcome_symbols,
          LP_OUTCOME_FAILED, action_outcome_c_name);
/* page_view, the weakest signal, for a kind this reader does not know. */
ENUM_DESC(activity_kind_enum, "ActivityKind", activity_kind_symbols,
          LP_ACTIVITY_PAGE_VIEW, activity_kind_c_name);

/* Field table entries: T is the C struct, m the member (== Avro name). */
#define F_SCALAR(T, m, kind, def)                                              \
  { #m, kind, def, offsetof(T, m), 0, NULL, NULL }
#define F_STR(T, m) F_SCALAR(T, m, FK_STRING, 0)
#define F_OPT(T, m) F_SCALAR(T, m, FK_OPT_STRING, 1)
#define F_INT(T, m, def) F_SCALAR(T, m, FK_INT, def)
#define F_LONG(T, m, def) F_SCALAR(T, m, FK_LONG, def)
#define F_ENUM(T, m, def, e)                                                   \
  { #m, FK_ENUM, def, offsetof(T, m), 0, NULL, &e }
#define F_STRS(T, m, n)                                                        \
  { #m, FK_STRING_ARRAY, 1, offsetof(T, m), offsetof(T, n), NULL, NULL }
#define F_RECS(T, m, n, r)                                                     \
  { #m, FK_RECORD_ARRAY, 1, offsetof(T, m), offsetof(T, n), &r, NULL }
#define F_REC(T, m, r)                                                         \
  { #m, FK_RECORD, 0, offsetof(T, m), 0, &r, NULL }
#define F_BYTES(T, m, n, kind, def)                                            \
  { #m, kind, def, offsetof(T, m), offsetof(T, n), NULL, NULL }
/* An optional number: member m, present when int member has is set. */
#define F_OPT_NUM(T, m, has, kind)                                             \
  { #m, kind, 1, offsetof(T, m), offsetof(T, has), NULL, NULL }
#define RECORD_DESC(var, avro_name, T, fields)                                 \
  static const struct record_desc var = {avro_name, sizeof(T), fields,         \
                                         LP_ARRAY_LEN(fields)}

static const struct field_desc line_item_fields[] = {
    F_OPT(struct lp_line_item, product_id),
    F_OPT(struct lp_line_item, sku),
    F_OPT(struct lp_line_item, category),
    F_OPT(struct lp_line_item, brand),
    F_INT(struct lp_line_item, quantity, 0),
    F_LONG(struct lp_line_item, unit_price_micros, 0),
};
RECORD_DESC(line_item_desc, "LineItem", struct lp_line_item, line_item_fields);

static const struct field_desc order_fields[] = {
    F_STR(struct lp_order_event, event_id),
    F_STR(struct lp_order_event, shop),
    F_STR(struct lp_order_event, order_id),
    F_STR(struct lp_order_event, customer_id),
    F_LONG(struct lp_order_event, event_time_ms, 0),
    F_ENUM(struct lp_order_event, status, 0, order_status_enum),
    F_STR(struct lp_order_event, currency),
    F_LONG(struct lp_order_event, total_micros, 0),
    F_LONG(struct lp_order_event, subtotal_micros, 0),
    F_LONG(struct lp_order_event, discount_micros, 1),
    F_LONG(struct lp_order_event, tax_micros, 1),
    F_STRS(struct lp_order_event, discount_codes, n_discount_codes),
    F_RECS(struct lp_order_event, line_items, n_line_items, line_item_desc),
    F_OPT(struct lp_order_event, source),
};
RECORD_DESC(order_desc, "OrderEvent", struct lp_order_event, order_fields);

static const struct field_desc customer_fields[] = {
    F_STR(struct lp_customer_event, event_id),
    F_STR(struct lp_customer_event, shop),
    F_STR(struct lp_customer_event, customer_id),
    F_LONG(struct lp_customer_event, event_time_ms, 0),
    F_ENUM(struct lp_customer_event, kind, 0, customer_kind_enum),
    F_OPT(struct lp_customer_event, email_sha256),
    F_ENUM(struct lp_customer_event, marketing_consent, 1, consent_enum),
    F_STRS(struct lp_customer_event, tags, n_tags),
    F_OPT(struct lp_customer_event, birthday),
    F_LONG(struct lp_customer_event, customer_created_ms, 1),
    F_OPT(struct lp_customer_event, source),
};
RECORD_DESC(customer_desc, "CustomerEvent", struct lp_customer_event,
            customer_fields);

/* A score_sync action's profile attribute: the same C struct as a
 * feature, its own Avro record (Action.attributes' items). */
static const struct field_desc activity_fields[] = {
    F_STR(struct lp_activity_event, event_id),
    F_STR(struct lp_activity_event, shop),
    F_STR(struct lp_activity_event, customer_id),
    F_LONG(struct lp_activity_event, event_time_ms, 0),
    F_ENUM(struct lp_activity_event, kind, 0, activity_kind_enum),
    F_OPT(struct lp_activity_event, url_path),
    F_OPT(struct lp_activity_event, product_id),
    F_OPT(struct lp_activity_event, sku),
    F_OPT(struct lp_activity_event, category),
    F_OPT(struct lp_activity_event, brand),
    F_OPT(struct lp_activity_event, cart_id),
    F_OPT(struct lp_activity_event, currency),
    F_OPT_NUM(struct lp_activity_event, cart_value_micros, has_cart_value,
              FK_OPT_LONG),
    F_RECS(struct lp_activity_event, line_items, n_line_items, line_item_desc),
    F_OPT_NUM(struct lp_activity_event, rating, has_rating, FK_OPT_INT),
    F_OPT(struct lp_activity_event, referral_code),
    F_OPT(struct lp_activity_event, referred_customer_id),
    F_OPT(struct lp_activity_event, network),
    F_OPT(struct lp_activity_event, source),
};
RECORD_DESC(activity_desc, "ActivityEvent", struct lp_activity_event,
            activity_fields);

static const struct field_desc attribute_fields[] = {
    F_STR(struct lp_feature, name),
    F_OPT(struct lp_feature, value),
};
RECORD_DESC(attribute_desc, "Attribute", struct lp_feature, attribute_fields);

static const struct field_desc action_fields[] = {
    F_ENUM(struct lp_action, kind, 0, action_kind_enum),
    F_LONG(struct lp_action, points, 1),
    F_OPT(struct lp_action, reward_id),
    F_INT(struct lp_action, discount_percent, 1),
    F_LONG(struct lp_action, discount_amount_micros, 1),
    F_OPT(struct lp_action, tier),
    F_OPT(struct lp_action, template_id),
    F_OPT(struct lp_action, channel),
    F_OPT(struct lp_action, brand),
    F_OPT(struct lp_action, category),
    F_RECS(struct lp_action, attributes, n_attributes, attribute_desc),
};
RECORD_DESC(action_desc, "Action", struct lp_action, action_fields);

static const struct field_desc feature_fields[] = {
    F_STR(struct lp_feature, name),
    F_OPT(struct lp_feature, value),
};
RECORD_DESC(feature_desc, "Feature", struct lp_feature, feature_fields);

static const struct field_desc explanation_fields[] = {
    F_OPT(struct lp_explanation, rule_id),
    F_INT(struct lp_explanation, rule_version, 1),
    F_OPT(struct lp_explanation, model_version),
    F_OPT(struct lp_explanation, summary),
    F_RECS(struct lp_explanation, features, n_features, feature_desc),
};
RECORD_DESC(explanation_desc, "Explanation", struct lp_explanation,
            explanation_fields);

static const struct field_desc decision_fields[] = {
    F_STR(struct lp_reward_decision, decision_id),
    F_STR(struct lp_reward_decision, shop),
    F_STR(struct lp_reward_decision, customer_id),
    F_STR(struct lp_reward_decision, trigger_event_id),
    F_OPT(struct lp_reward_decision, trigger_kind),
    F_STR(struct lp_reward_decision, rule_id),
    F_INT(struct lp_reward_decision, rule_version, 1),
    F_REC(struct lp_reward_decision, action, action_desc),
    F_LONG(struct lp_reward_decision, estimated_cost_micros, 1),
    F_OPT(struct lp_reward_decision, currency),
    F_LONG(struct lp_reward_decision, event_time_ms, 0),
    F_ENUM(struct lp_reward_decision, approval, 1, approval_enum),
    F_REC(struct lp_reward_decision, explanation, explanation_desc),
};
RECORD_DESC(decision_desc, "RewardDecision", struct lp_reward_decision,
            decision_fields);

static const struct field_desc dead_letter_fields[] = {
    F_STR(struct lp_dead_letter, source_topic),
    F_INT(struct lp_dead_letter, source_partition, 0),
    F_LONG(struct lp_dead_letter, source_offset, 0),
    F_BYTES(struct lp_dead_letter, source_key, source_key_len, FK_OPT_BYTES, 1),
    F_BYTES(struct lp_dead_letter, original, original_len, FK_BYTES, 0),
    F_STR(struct lp_dead_letter, processor),
    F_STR(struct lp_dead_letter, reason),
    F_OPT(struct lp_dead_letter, field),
    F_LONG(struct lp_dead_letter, time_ms, 0),
};
RECORD_DESC(dead_letter_desc, "DeadLetter", struct lp_dead_letter,
            dead_letter_fields);

/* action_kind and outcome have no field default: one must be the C zero
 * (points, issued), and a writer without an outcome must not read as
 * issued. Unknown symbols still take the enums' defaults. */
static const struct field_desc action_result_fields[] = {
    F_STR(struct lp_action_result, decision_id),
    F_STR(struct lp_action_result, shop),
    F_STR(struct lp_action_result, customer_id),
    F_STR(struct lp_action_result, trigger_event_id),
    F_STR(struct lp_action_result, rule_id),
    F_INT(struct lp_action_result, rule_version, 1),
    F_OPT(struct lp_action_result, model_version),
    F_ENUM(struct lp_action_result, action_kind, 0, action_kind_enum),
    F_OPT(struct lp_action_result, platform),
    F_ENUM(struct lp_action_result, outcome, 0, action_outcome_enum),
    F_OPT(struct lp_action_result, guardrail),
    F_OPT(struct lp_action_result, request_summary),
    F_INT(struct lp_action_result, http_status, 1),
    F_OPT(struct lp_action_result, platform_reference),
    F_INT(struct lp_action_result, attempts, 1),
    F_LONG(struct lp_action_result, latency_ms, 1),
    F_OPT(struct lp_action_result, reason),
    F_OPT(struct lp_action_result, actor),
    F_LONG(struct lp_action_result, event_time_ms, 0),
    F_LONG(struct lp_action_result, time_ms, 0),
    F_OPT(struct lp_action_result, copy_source),
    F_OPT(struct lp_action_result, copy_model),
    F_OPT(struct lp_action_result, copy_prompt),
    F_OPT(struct lp_action_result, copy_output),
    F_OPT(struct lp_action_result, copy_note),
};
RECORD_DESC(action_result_desc, "ActionResult", struct lp_action_result,
            action_result_fields);

static const struct record_desc *const record_descs[LP_AVRO_REC_COUNT] = {
    [LP_REC_ORDER] = &order_desc,
    [LP_REC_CUSTOMER] = &customer_desc,
    [LP_REC_DECISION] = &decision_desc,
    [LP_REC_DEAD_LETTER] = &dead_letter_desc,
    [LP_REC_ACTION_RESULT] = &action_result_desc,
    [LP_REC_ACTIVITY] = &activity_desc,
};

/* ------------------------------------------------------------------------
 * Field paths for error texts ("line_items[2].sku"), built only on error
 */

struct path {
  const struct path *parent;
  const char *name; /* a field name, or NULL for an array index */
  size_t index;
};

static void path_append(const struct path *p, char *buf, size_t size,
                        size_t *len) {
  if (!p)
    return;
  path_append(p->parent, buf, size, len);
  int n;
  if (p->name)
    n = snprintf(buf + *len, size - *len, "%s%s", *len ? "." : "", p->name);
  else
    n = snprintf(buf + *len, size - *len, "[%zu]", p->index);
  if (n > 0)
    *len = *len + (size_t)n < size ? *len + (size_t)n : size - 1;
}

static const char *path_str(const struct path *p, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  path_append(p, buf, size, &len);
  return buf;
}

/* "<path>: <message>", or "avro: <message>" when there is no path. */
static int path_err(const struct path *p, char *errstr, size_t errstr_size,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int path_err(const struct path *p, char *errstr, size_t errstr_size,
                    const char *fmt, ...) {
  char where[192], msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  path_str(p, where, sizeof(where));
  return lp_err(errstr, errstr_size, "%s: %s", where[0] ? where : "avro", msg);
}

/* ------------------------------------------------------------------------
 * CRC-64-AVRO and Parsing Canonical Form
 */

#define LP_AVRO_CRC64_EMPTY UINT64_C(0xc15d213aa4d7a795)

static uint64_t crc64_table[256];

static void crc64_init(void) {
  for (int i = 0; i < 256; i++) {
    uint64_t fp = (uint64_t)i;
    for (int j = 0; j < 8; j++)
      fp = (fp >> 1) ^ (LP_AVRO_CRC64_EMPTY & (0 - (fp & 1)));
    crc64_table[i] = fp;
  }
}

uint64_t lp_avro_crc64(const void *data, size_t len) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, crc64_init);
  const uint8_t *p = data;
  uint64_t fp = LP_AVRO_CRC64_EMPTY;
  for (size_t i = 0; i < len; i++)
    fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
  return fp;
}

static int is_primitive_name(const char *s) {
  static const char *const prims[] = {"null",  "boolean", "int",   "long",
                                      "float", "double",  "bytes", "string"};
  for (size_t i = 0; i < LP_ARRAY_LEN(prims); i++)
    if (strcmp(s, prims[i]) == 0)
      return 1;
  return 0;
}

/* A JSON string literal, UTF-8 kept as is ([STRINGS]). */
static void pcf_string(struct lp_buf *out, const char *s) {
  lp_buf_append_byte(out, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      lp_buf_append_byte(out, '\\');
      lp_buf_append_byte(out, *p);
    } else if (*p < 0x20) {
      lp_buf_appendf(out, "\\u%04x", *p);
    } else {
      lp_buf_append_byte(out, *p);
    }
  }
  lp_buf_append_byte(out, '"');
}

/* The full name of name in namespace ns ([FULLNAMES]); caller frees. */
static char *full_name(const char *name, const char *ns) {
  if (strchr(name, '.') || !ns || !*ns)
    return lp_xstrdup(name);
  return lp_xasprintf("%s.%s", ns, name);
}

static int pcf_write(struct lp_buf *out, const json_t *s, const char *ns,
                     json_t *defined, int depth, char *errstr,
                     size_t errstr_size);

/* A record, enum or fixed definition. */
static int pcf_named(struct lp_buf *out, const json_t *s, const char *type,
                     const char *ns, json_t *defined, int depth, char *errstr,
                     size_t errstr_size) {
  const char *name = json_string_value(json_object_get(s, "name"));
  if (!name || !*name)
    return lp_err(errstr, errstr_size, "schema: %s without a name", type);
  const json_t *jns = json_object_get(s, "namespace");
  if (jns && !json_is_string(jns) && !json_is_null(jns))
    return lp_err(errstr, errstr_size, "schema: %s: namespace not a string",
                  name);
  /* An explicit namespace (even "") replaces the enclosing one. */
  char *full = full_name(
      name, jns ? (json_string_value(jns) ? json_string_value(jns) : "") : ns);
  int rc = -1;
  if (json_object_get(defined, full)) {
    lp_err(errstr, errstr_size, "schema: %s is defined twice", full);
    goto done;
  }
  json_object_set_new(defined, full, json_true());
  lp_buf_append_str(out, "{\"name\":");
  pcf_string(out, full);
  lp_buf_append_str(out, ",\"type\":");
  pcf_string(out, type);
  if (strcmp(type, "enum") == 0) {
    const json_t *syms = json_object_get(s, "symbols");
    if (!json_is_array(syms)) {
      lp_err(errstr, errstr_size, "schema: enum %s without symbols", full);
      goto done;
    }
    lp_buf_append_str(out, ",\"symbols\":[");
    for (size_t i = 0; i < json_array_size(syms); i++) {
      const char *sym = json_string_value(json_array_get(syms, i));
      if (!sym) {
        lp_err(errstr, errstr_size, "schema: enum %s: symbol not a string",
               full);
        goto done;
      }
      if (i)
        lp_buf_append_byte(out, ',');
      pcf_string(out, sym);
    }
    lp_buf_append_byte(out, ']');
  } else if (strcmp(type, "fixed") == 0) {
    const json_t *size = json_object_get(s, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0) {
      lp_err(errstr, errstr_size, "schema: fixed %s without a valid size",
             full);
      goto done;
    }
    lp_buf_appendf(out, ",\"size\":%" JSON_INTEGER_FORMAT,
                   json_integer_value(size));
  } else {
    /* record / error: nested names resolve in this type's namespace. */
    const char *dot = strrchr(full, '.');
    char *child_ns = dot ? lp_xstrndup(full, (size_t)(dot - full)) : NULL;
    const json_t *fields = json_object_get(s, "fields");
    if (!json_is_array(fields)) {
      lp_err(errstr, errstr_size, "schema: record %s without fields", full);
      free(child_ns);
      goto done;
    }
    lp_buf_append_str(out, ",\"fields\":[");
    for (size_t i = 0; i < json_array_size(fields); i++) {
      const json_t *f = json_array_get(fields, i);
      const char *fname = json_string_value(json_object_get(f, "name"));
      const json_t *ftype = json_object_get(f, "type");
      if (!fname || !ftype) {
        lp_err(errstr, errstr_size,
               "schema: record %s: field %zu needs a name and a type", full, i);
        free(child_ns);
        goto done;
      }
      lp_buf_append_str(out, i ? ",{\"name\":" : "{\"name\":");
      pcf_string(out, fname);
      lp_buf_append_str(out, ",\"type\":");
      if (pcf_write(out, ftype, child_ns ? child_ns : "", defined, depth + 1,
                    errstr, errstr_size) != 0) {
        free(child_ns);
        goto done;
      }
      lp_buf_append_byte(out, '}');
    }
    lp_buf_append_byte(out, ']');
    free(child_ns);
  }
  lp_buf_append_byte(out, '}');
  rc = 0;
done:
  free(full);
  return rc;
}

/* Appends the canonical form of schema s, whose enclosing namespace is ns,
 * to out ([PRIMITIVES] [FULLNAMES] [STRIP] [ORDER] [WHITESPACE]). */
static int pcf_write(struct lp_buf *out, const json_t *s, const char *ns,
                     json_t *defined, int depth, char *errstr,
                     size_t errstr_size) {
  if (depth > 64)
    return lp_err(errstr, errstr_size, "schema: nested too deeply");
  if (json_is_string(s)) {
    const char *name = json_string_value(s);
    if (is_primitive_name(name)) {
      pcf_string(out, name);
    } else {
      char *full = full_name(name, ns);
      pcf_string(out, full);
      free(full);
    }
    return 0;
  }
  if (json_is_array(s)) {
    lp_buf_append_byte(out, '[');
    for (size_t i = 0; i < json_array_size(s); i++) {
      if (i)
        lp_buf_append_byte(out, ',');
      if (pcf_write(out, json_array_get(s, i), ns, defined, depth + 1, errstr,
                    errstr_size) != 0)
        return -1;
    }
    lp_buf_append_byte(out, ']');
    return 0;
  }
  if (!json_is_object(s))
    return lp_err(errstr, errstr_size,
                  "schema: expected a string, array or "
                  "object");
  const json_t *jt = json_object_get(s, "type");
  if (!json_is_string(jt)) {
    if (json_is_object(jt) || json_is_array(jt))
      return pcf_write(out, jt, ns, defined, depth + 1, errstr, errstr_size);
    return lp_err(errstr, errstr_size, "schema: object without a type");
  }
  const char *type = json_string_value(jt);
  if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 ||
      strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0)
    return pcf_named(out, s, type, ns, defined, depth, errstr, errstr_size);
  if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
    int is_array = type[0] == 'a';
    const json_t *child = json_object_get(s, is_array ? "items" : "values");
    if (!child)
      return lp_err(errstr, errstr_size, "schema: %s without %s", type,
                    is_array ? "items" : "values");
    lp_buf_append_str(out, is_array ? "{\"type\":\"array\",\"items\":"
                                    : "{\"type\":\"map\",\"values\":");
    if (pcf_write(out, child, ns, defined, depth + 1, errstr, errstr_size))
      return -1;
    lp_buf_append_byte(out, '}');
    return 0;
  }
  /* A primitive in object form (logicalType etc. stripped), or a
   * reference to a named type. */
  return pcf_write(out, jt, ns, defined, depth + 1, errstr, errstr_size);
}

static char *canonical_form_of(const json_t *root, char *errstr,
                               size_t errstr_size) {
  struct lp_buf out;
  lp_buf_init(&out);
  json_t *defined = json_object();
  int rc = pcf_write(&out, root, "", defined, 0, errstr, errstr_size);
  json_decref(defined);
  if (rc != 0) {
    lp_buf_free(&out);
    return NULL;
  }
  char *s = lp_xstrndup((const char *)out.data, out.len);
  lp_buf_free(&out);
  return s;
}

char *lp_avro_schema_canonical_form(const char *json, size_t len, char *errstr,
                                    size_t errstr_size) {
  json_error_t jerr;
  json_t *root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
  if (!root) {
    lp_err(errstr, errstr_size, "schema: JSON line %d column %d: %s", jerr.line,
           jerr.column, jerr.text);
    return NULL;
  }
  char *s = canonical_form_of(root, errstr, errstr_size);
  json_decref(root);
  return s;
}

/* ------------------------------------------------------------------------
 * Start-up check: the embedded schemas match the field tables
 */

static avro_schema_t skip_links(avro_schema_t s) {
  while (is_avro_link(s))
    s = avro_schema_link_target(s);
  return s;
}

/* For ["null", X] unions: X's type, else AVRO_NULL (not such a union). */
static avro_type_t optional_branch_type(avro_schema_t s) {
  if (!is_avro_union(s) || avro_schema_union_size(s) != 2)
    return AVRO_NULL;
  if (!is_avro_null(avro_schema_union_branch(s, 0)))
    return AVRO_NULL;
  return avro_typeof(skip_links(avro_schema_union_branch(s, 1)));
}

/* Is the JSON default jd the C zero value of field f? */
static int default_is_zero(const struct field_desc *f, const json_t *jd) {
  switch (f->kind) {
  case FK_OPT_STRING:
  case FK_OPT_BYTES:
  case FK_OPT_INT:
  case FK_OPT_LONG:
    return json_is_null(jd);
  case FK_INT:
  case FK_LONG:
    return json_is_integer(jd) && json_integer_value(jd) == 0;
  case FK_ENUM:
    return json_is_string(jd) &&
           strcmp(json_string_value(jd), f->enumd->symbols[0]) == 0;
  case FK_STRING_ARRAY:
  case FK_RECORD_ARRAY:
    return json_is_array(jd) && json_array_size(jd) == 0;
  default:
    return 0;
  }
}

/* The JSON object defining the record of field type jt (inline only). */
static const json_t *inline_record(const json_t *jt, int in_array) {
  if (in_array)
    jt = json_object_get(jt, "items");
  return json_is_object(jt) ? jt : NULL;
}

static int check_enum(const struct enum_desc *e, avro_schema_t s,
                      const json_t *jt, const char *where, char *errstr,
                      size_t errstr_size) {
  if (!is_avro_enum(s) || strcmp(avro_schema_name(s), e->name) != 0)
    return lp_err(errstr, errstr_size, "%s: expected enum %s", where, e->name);
  if (avro_schema_enum_number_of_symbols(s) != e->n_symbols)
    return lp_err(errstr, errstr_size,
                  "%s: enum %s has %d symbols, the "
                  "code knows %d",
                  where, e->name, avro_schema_enum_number_of_symbols(s),
                  e->n_symbols);
  for (int i = 0; i < e->n_symbols; i++) {
    const char *c = e->c_name(i);
    if (strcmp(avro_schema_enum_get(s, i), e->symbols[i]) != 0 || !c ||
        strcmp(c, e->symbols[i]) != 0)
      return lp_err(errstr, errstr_size,
                    "%s: enum %s symbol %d is \"%s\", expected \"%s\" "
                    "(events.c: \"%s\")",
                    where, e->name, i, avro_schema_enum_get(s, i),
                    e->symbols[i], c ? c : "?");
  }
  const char *def = json_string_value(json_object_get(jt, "default"));
  if (!def || strcmp(def, e->symbols[e->default_symbol]) != 0)
    return lp_err(errstr, errstr_size,
                  "%s: enum %s must have \"default\": \"%s\"", where, e->name,
                  e->symbols[e->default_symbol]);
  return 0;
}

static int check_record(const struct record_desc *d, avro_schema_t s,
                        const json_t *js, char *errstr, size_t errstr_size) {
  if (!is_avro_record(s) || strcmp(avro_schema_name(s), d->name) != 0)
    return lp_err(errstr, errstr_size, "schema: expected record %s", d->name);
  const json_t *jfields = json_object_get(js, "fields");
  if (avro_schema_record_size(s) != d->n_fields ||
      json_array_size(jfields) != d->n_fields)
    return lp_err(errstr, errstr_size,
                  "schema: %s has %zu fields, the code knows %zu", d->name,
                  avro_schema_record_size(s), d->n_fields);
  for (size_t i = 0; i < d->n_fields; i++) {
    const struct field_desc *f = &d->fields[i];
    const json_t *jf = json_array_get(jfields, i);
    const json_t *jt = json_object_get(jf, "type");
    char where[128];
    snprintf(where, sizeof(where), "schema: %s.%s", d->name, f->name);
    const char *name = avro_schema_record_field_name(s, (int)i);
    if (strcmp(name, f->name) != 0)
      return lp_err(errstr, errstr_size,
                    "schema: %s field %zu is \"%s\", the code expects \"%s\"",
                    d->name, i, name, f->name);
    if (!json_is_string(json_object_get(jf, "doc")))
      return lp_err(errstr, errstr_size, "%s: no doc", where);
    const json_t *jd = json_object_get(jf, "default");
    if (!!jd != !!f->has_default || (jd && !default_is_zero(f, jd)))
      return lp_err(errstr, errstr_size,
                    f->has_default
                        ? "%s: needs a default, the C zero value"
                        : "%s: must have no default (required field)",
                    where);
    avro_schema_t fs =
        skip_links(avro_schema_record_field_get_by_index(s, (int)i));
    int ok = 1;
    switch (f->kind) {
    case FK_STRING:
      ok = is_avro_string(fs);
      break;
    case FK_OPT_STRING:
      ok = optional_branch_type(fs) == AVRO_STRING;
      break;
    case FK_INT:
      ok = is_avro_int32(fs);
      break;
    case FK_LONG:
      ok = is_avro_int64(fs);
      break;
    case FK_BYTES:
      ok = is_avro_bytes(fs);
      break;
    case FK_OPT_BYTES:
      ok = optional_branch_type(fs) == AVRO_BYTES;
      break;
    case FK_OPT_INT:
      ok = optional_branch_type(fs) == AVRO_INT32;
      break;
    case FK_OPT_LONG:
      ok = optional_branch_type(fs) == AVRO_INT64;
      break;
    case FK_ENUM:
      if (check_enum(f->enumd, fs, jt, where, errstr, errstr_size) != 0)
        return -1;
      break;
    case FK_STRING_ARRAY:
      ok = is_avro_array(fs) &&
           is_avro_string(skip_links(avro_schema_array_items(fs)));
      break;
    case FK_RECORD_ARRAY:
    case FK_RECORD: {
      int in_array = f->kind == FK_RECORD_ARRAY;
      if (in_array && !is_avro_array(fs))
        return lp_err(errstr, errstr_size, "%s: expected an array", where);
      avro_schema_t rs =
          in_array ? skip_links(avro_schema_array_items(fs)) : fs;
      const json_t *jr = inline_record(jt, in_array);
      if (!jr)
        return lp_err(errstr, errstr_size,
                      "%s: record %s must be defined inline", where,
                      f->record->name);
      if (check_record(f->record, rs, jr, errstr, errstr_size) != 0)
        return -1;
      break;
    }
    }
    if (!ok)
      return lp_err(errstr, errstr_size,
                    "%s: type %s does not fit the C "
                    "member",
                    where, avro_schema_type_name(fs));
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Datum checking against a writer schema (before avro-c reads it)
 */

struct walk {
  const uint8_t *p, *end;
  char *errstr;
  size_t errstr_size;
};

static int walk_truncated(struct walk *w, const struct path *p) {
  char where[192];
  path_str(p, where, sizeof(where));
  return lp_err(w->errstr, w->errstr_size, "avro: truncated datum%s%s",
                where[0] ? " at " : "", where);
}

/* Zig-zag varint of at most 64 bits. */
static int walk_varint(struct walk *w, const struct path *p, int64_t *out) {
  uint64_t v = 0;
  for (int i = 0;; i++) {
    if (w->p >= w->end)
      return walk_truncated(w, p);
    uint8_t b = *w->p++;
    if (i == 9 && (b & 0xfe))
      return path_err(p, w->errstr, w->errstr_size,
                      "malformed varint (more than 64 bits)");
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80))
      break;
  }
  *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
  return 0;
}

/* A length prefix: non-negative and within the bytes left. */
static int walk_length(struct walk *w, const struct path *p, int is_string,
                       size_t *out) {
  int64_t n;
  if (walk_varint(w, p, &n) != 0)
    return -1;
  if (n < 0)
    return path_err(p, w->errstr, w->errstr_size, "negative length %" PRId64,
                    n);
  if (is_string && n > LP_MAX_STRING_BYTES)
    return path_err(p, w->errstr, w->errstr_size,
                    "string of %" PRId64 " bytes exceeds the limit of %d", n,
                    LP_MAX_STRING_BYTES);
  if ((uint64_t)n > (uint64_t)(w->end - w->p))
    return walk_truncated(w, p);
  *out = (size_t)n;
  return 0;
}

static int walk_string(struct walk *w, const struct path *p) {
  size_t n;
  if (walk_length(w, p, 1, &n) != 0)
    return -1;
  const char *s = (const char *)w->p;
  if (memchr(s, '\0', n))
    return path_err(p, w->errstr, w->errstr_size,
                    "string contains a NUL "
                    "byte");
  if (!lp_utf8_valid(s, n))
    return path_err(p, w->errstr, w->errstr_size, "not valid UTF-8");
  w->p += n;
  return 0;
}

static int walk_value(struct walk *w, avro_schema_t s, const struct path *p,
                      int depth);

/* Array and map blocks: count, (byte size when count < 0), items. */
static int walk_blocks(struct walk *w, avro_schema_t s, const struct path *p,
                       int depth, int is_map) {
  avro_schema_t child =
      is_map ? avro_schema_map_values(s) : avro_schema_array_items(s);
  size_t total = 0;
  for (;;) {
    int64_t count;
    if (walk_varint(w, p, &count) != 0)
      return -1;
    if (count == 0)
      return 0;
    /* A negative count is followed by the block's size in bytes. */
    int sized = count < 0;
    uint64_t items = sized ? 0 - (uint64_t)count : (uint64_t)count;
    if (items > (uint64_t)(LP_AVRO_MAX_ARRAY_ITEMS - total))
      return path_err(p, w->errstr, w->errstr_size, "more than %d %s",
                      LP_AVRO_MAX_ARRAY_ITEMS,
                      is_map ? "map entries" : "array items");
    size_t block_bytes = 0;
    if (sized && walk_length(w, p, 0, &block_bytes) != 0)
      return -1;
    const uint8_t *start = w->p;
    for (uint64_t i = 0; i < items; i++, total++) {
      struct path item = {p, NULL, total};
      if (is_map && walk_string(w, &item) != 0)
        return -1;
      if (walk_value(w, child, &item, depth + 1) != 0)
        return -1;
    }
    if (sized && (size_t)(w->p - start) != block_bytes)
      return path_err(p, w->errstr, w->errstr_size,
                      "block says %zu bytes but its items take %zu",
                      block_bytes, (size_t)(w->p - start));
  }
}

/* Checks one datum of schema s at w->p and moves past it. */
static int walk_value(struct walk *w, avro_schema_t s, const struct path *p,
                      int depth) {
  int64_t v;
  size_t n;
  if (depth > LP_AVRO_MAX_DEPTH)
    return path_err(p, w->errstr, w->errstr_size, "nested more than %d deep",
                    LP_AVRO_MAX_DEPTH);
  s = skip_links(s);
  switch (avro_typeof(s)) {
  case AVRO_NULL:
    return 0;
  case AVRO_BOOLEAN:
    if (w->p >= w->end)
      return walk_truncated(w, p);
    if (*w->p > 1)
      return path_err(p, w->errstr, w->errstr_size,
                      "boolean byte 0x%02x is neither 0 nor 1", *w->p);
    w->p++;
    return 0;
  case AVRO_INT32:
    if (walk_varint(w, p, &v) != 0)
      return -1;
    if (v < INT32_MIN || v > INT32_MAX)
      return path_err(p, w->errstr, w->errstr_size,
                      "%" PRId64 " does not fit an int", v);
    return 0;
  case AVRO_INT64:
    return walk_varint(w, p, &v);
  case AVRO_FLOAT:
  case AVRO_DOUBLE:
  case AVRO_FIXED:
    n = avro_typeof(s) == AVRO_FLOAT    ? 4
        : avro_typeof(s) == AVRO_DOUBLE ? 8
                                        : (size_t)avro_schema_fixed_size(s);
    if (n > (size_t)(w->end - w->p))
      return walk_truncated(w, p);
    w->p += n;
    return 0;
  case AVRO_BYTES:
    if (walk_length(w, p, 0, &n) != 0)
      return -1;
    w->p += n;
    return 0;
  case AVRO_STRING:
    return walk_string(w, p);
  case AVRO_ENUM:
    if (walk_varint(w, p, &v) != 0)
      return -1;
    if (v < 0 || v >= avro_schema_enum_number_of_symbols(s))
      return path_err(p, w->errstr, w->errstr_size,
                      "enum index %" PRId64 " out of range (%d symbols)", v,
                      avro_schema_enum_number_of_symbols(s));
    return 0;
  case AVRO_UNION:
    if (walk_varint(w, p, &v) != 0)
      return -1;
    if (v < 0 || (uint64_t)v >= avro_schema_union_size(s))
      return path_err(p, w->errstr, w->errstr_size,
                      "union branch %" PRId64 " out of range (%zu branches)", v,
                      avro_schema_union_size(s));
    return walk_value(w, avro_schema_union_branch(s, (int)v), p, depth + 1);
  case AVRO_ARRAY:
    return walk_blocks(w, s, p, depth, 0);
  case AVRO_MAP:
    return walk_blocks(w, s, p, depth, 1);
  case AVRO_RECORD:
    for (size_t i = 0; i < avro_schema_record_size(s); i++) {
      struct path field = {p, avro_schema_record_field_name(s, (int)i), 0};
      if (walk_value(w, avro_schema_record_field_get_by_index(s, (int)i),
                     &field, depth + 1) != 0)
        return -1;
    }
    return 0;
  default:
    return path_err(p, w->errstr, w->errstr_size, "unsupported schema type");
  }
}

/* ------------------------------------------------------------------------
 * Plans: how a writer schema's value maps onto one of our C records
 */

struct plan;

struct plan_field {
  int widx;         /* writer field index, -1: absent (C zero default) */
  struct plan *sub; /* FK_RECORD / FK_RECORD_ARRAY */
  int *enum_map;    /* FK_ENUM: writer symbol -> our value, or -1 */
  int enum_map_len;
};

struct plan {
  const struct record_desc *desc;
  struct plan_field f[]; /* desc->n_fields */
};

static void plan_free(struct plan *pl) {
  if (!pl)
    return;
  for (size_t i = 0; i < pl->desc->n_fields; i++) {
    plan_free(pl->f[i].sub);
    free(pl->f[i].enum_map);
  }
  free(pl);
}

/* Can a writer value of schema ws be read as a string (or bytes, for the
 * bytes kinds): string, bytes, or a union of those and null? */
static int stringish(avro_schema_t ws) {
  ws = skip_links(ws);
  if (is_avro_string(ws) || is_avro_bytes(ws))
    return 1;
  if (!is_avro_union(ws))
    return 0;
  int text = 0;
  for (size_t i = 0; i < avro_schema_union_size(ws); i++) {
    avro_schema_t b = skip_links(avro_schema_union_branch(ws, (int)i));
    if (is_avro_string(b) || is_avro_bytes(b))
      text = 1;
    else if (!is_avro_null(b))
      return 0;
  }
  return text;
}

/* Can a writer value of schema ws be read as an optional number: int (or
 * long, when longs fit), or a union of those and null? */
static int numberish(avro_schema_t ws, int long_ok) {
  ws = skip_links(ws);
  if (is_avro_int32(ws) || (long_ok && is_avro_int64(ws)))
    return 1;
  if (!is_avro_union(ws))
    return 0;
  int number = 0;
  for (size_t i = 0; i < avro_schema_union_size(ws); i++) {
    avro_schema_t b = skip_links(avro_schema_union_branch(ws, (int)i));
    if (is_avro_int32(b) || (long_ok && is_avro_int64(b)))
      number = 1;
    else if (!is_avro_null(b))
      return 0;
  }
  return number;
}

static struct plan *plan_compile(const struct record_desc *d, avro_schema_t ws,
                                 const struct path *p, char *errstr,
                                 size_t errstr_size);

/* "<path>: <message>", or the message alone at the top level. */
static int plan_err(const struct path *p, char *errstr, size_t errstr_size,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int plan_err(const struct path *p, char *errstr, size_t errstr_size,
                    const char *fmt, ...) {
  char where[192], msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  path_str(p, where, sizeof(where));
  return lp_err(errstr, errstr_size, "%s%s%s", where, where[0] ? ": " : "",
                msg);
}

static int plan_field_compile(struct plan_field *pf, const struct field_desc *f,
                              avro_schema_t ws, const struct path *p,
                              char *errstr, size_t errstr_size) {
  ws = skip_links(ws);
  avro_type_t t = avro_typeof(ws);
  switch (f->kind) {
  case FK_STRING:
  case FK_OPT_STRING:
  case FK_BYTES:
  case FK_OPT_BYTES:
    if (stringish(ws))
      return 0;
    break;
  case FK_INT:
    if (t == AVRO_INT32)
      return 0;
    break;
  case FK_LONG:
    if (t == AVRO_INT32 || t == AVRO_INT64)
      return 0;
    break;
  case FK_OPT_INT:
  case FK_OPT_LONG:
    if (numberish(ws, f->kind == FK_OPT_LONG))
      return 0;
    break;
  case FK_ENUM: {
    const struct enum_desc *e = f->enumd;
    if (t != AVRO_ENUM || strcmp(avro_schema_name(ws), e->name) != 0)
      break;
    pf->enum_map_len = avro_schema_enum_number_of_symbols(ws);
    pf->enum_map = lp_xcalloc((size_t)pf->enum_map_len + 1, sizeof(int));
    for (int j = 0; j < pf->enum_map_len; j++) {
      const char *sym = avro_schema_enum_get(ws, j);
      pf->enum_map[j] = e->default_symbol;
      for (int k = 0; k < e->n_symbols; k++)
        if (strcmp(sym, e->symbols[k]) == 0)
          pf->enum_map[j] = k;
    }
    return 0;
  }
  case FK_STRING_ARRAY:
    if (t == AVRO_ARRAY && stringish(avro_schema_array_items(ws)))
      return 0;
    break;
  case FK_RECORD_ARRAY:
    if (t != AVRO_ARRAY)
      break;
    pf->sub = plan_compile(f->record, avro_schema_array_items(ws), p, errstr,
                           errstr_size);
    return pf->sub ? 0 : -1;
  case FK_RECORD:
    pf->sub = plan_compile(f->record, ws, p, errstr, errstr_size);
    return pf->sub ? 0 : -1;
  }
  return plan_err(p, errstr, errstr_size,
                  "writer type %s cannot be read as our type",
                  avro_schema_type_name(ws));
}

/* The plan reading writer record schema ws as d; NULL with errstr when the
 * writer schema is incompatible (Avro schema resolution rules). */
static struct plan *plan_compile(const struct record_desc *d, avro_schema_t ws,
                                 const struct path *p, char *errstr,
                                 size_t errstr_size) {
  ws = skip_links(ws);
  if (!is_avro_record(ws)) {
    plan_err(p, errstr, errstr_size,
             "writer schema is not a record (it is %s), expected record %s",
             avro_schema_type_name(ws), d->name);
    return NULL;
  }
  if (strcmp(avro_schema_name(ws), d->name) != 0) {
    plan_err(p, errstr, errstr_size,
             "writer record %s is not %s (record names must match)",
             avro_schema_name(ws), d->name);
    return NULL;
  }
  struct plan *pl = lp_xcalloc(1, sizeof(*pl) + d->n_fields * sizeof(pl->f[0]));
  pl->desc = d;
  for (size_t i = 0; i < d->n_fields; i++) {
    const struct field_desc *f = &d->fields[i];
    struct path fp = {p, f->name, 0};
    pl->f[i].widx = avro_schema_record_field_get_index(ws, f->name);
    if (pl->f[i].widx < 0) {
      if (f->has_default)
        continue;
      plan_err(&fp, errstr, errstr_size,
               "missing from the writer schema and has no default");
      goto fail;
    }
    if (plan_field_compile(
            &pl->f[i], f,
            avro_schema_record_field_get_by_index(ws, pl->f[i].widx), &fp,
            errstr, errstr_size) != 0)
      goto fail;
  }
  return pl;
fail:
  plan_free(pl);
  return NULL;
}

/* ------------------------------------------------------------------------
 * Writer value -> C record
 */

/* The value itself, or the current branch of a union. */
static int unwrap(avro_value_t *v, avro_value_t *branch) {
  if (avro_value_get_type(v) != AVRO_UNION) {
    *branch = *v;
    return 0;
  }
  return avro_value_get_current_branch(v, branch);
}

/* Reads a string-like writer value: *out is a copy (caller frees), NULL
 * for null; bytes values are checked like strings. */
static int read_text(avro_value_t *v, int required, const struct path *p,
                     char **out, char *errstr, size_t errstr_size) {
  avro_value_t b;
  const void *data = NULL;
  size_t size = 0;
  *out = NULL;
  if (unwrap(v, &b) != 0)
    return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
  switch (avro_value_get_type(&b)) {
  case AVRO_NULL:
    if (required)
      return path_err(p, errstr, errstr_size, "required field is null");
    return 0;
  case AVRO_STRING: {
    const char *s = NULL;
    if (avro_value_get_string(&b, &s, &size) != 0)
      return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
    *out = lp_xstrndup(s, size ? size - 1 : 0); /* size counts the NUL */
    return 0;
  }
  case AVRO_BYTES:
    if (avro_value_get_bytes(&b, &data, &size) != 0)
      return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
    if (size > LP_MAX_STRING_BYTES)
      return path_err(p, errstr, errstr_size,
                      "string of %zu bytes exceeds the limit of %d", size,
                      LP_MAX_STRING_BYTES);
    if (memchr(data, '\0', size))
      return path_err(p, errstr, errstr_size, "string contains a NUL byte");
    if (!lp_utf8_valid(data, size))
      return path_err(p, errstr, errstr_size, "not valid UTF-8");
    *out = lp_xstrndup(data, size);
    return 0;
  default:
    return path_err(p, errstr, errstr_size, "expected a string");
  }
}

/* Reads a bytes-like writer value into a new buffer (at least 1 byte
 * allocated, so present-but-empty is not NULL); NULL for null. */
static int read_blob(avro_value_t *v, int required, const struct path *p,
                     uint8_t **out, size_t *len, char *errstr,
                     size_t errstr_size) {
  avro_value_t b;
  const void *data = NULL;
  size_t size = 0;
  *out = NULL;
  *len = 0;
  if (unwrap(v, &b) != 0)
    return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
  avro_type_t t = avro_value_get_type(&b);
  if (t == AVRO_NULL) {
    if (required)
      return path_err(p, errstr, errstr_size, "required field is null");
    return 0;
  }
  int rc;
  if (t == AVRO_BYTES) {
    rc = avro_value_get_bytes(&b, &data, &size);
  } else if (t == AVRO_STRING) {
    const char *s = NULL;
    rc = avro_value_get_string(&b, &s, &size);
    data = s;
    size = size ? size - 1 : 0;
  } else {
    return path_err(p, errstr, errstr_size, "expected bytes");
  }
  if (rc != 0)
    return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
  *out = lp_xmalloc(size ? size : 1);
  if (size)
    memcpy(*out, data, size);
  *len = size;
  return 0;
}

static int read_record(const struct plan *pl, avro_value_t *rec, void *base,
                       const struct path *p, char *errstr, size_t errstr_size);

static int read_field(const struct plan_field *pf, const struct field_desc *f,
                      avro_value_t *v, char *base, const struct path *p,
                      char *errstr, size_t errstr_size) {
  void *m = base + f->offset;
  switch (f->kind) {
  case FK_STRING:
  case FK_OPT_STRING:
    return read_text(v, f->kind == FK_STRING, p, (char **)m, errstr,
                     errstr_size);
  case FK_BYTES:
  case FK_OPT_BYTES:
    return read_blob(v, f->kind == FK_BYTES, p, (uint8_t **)m,
                     (size_t *)(base + f->count_offset), errstr, errstr_size);
  case FK_INT: {
    int32_t i = 0;
    if (avro_value_get_int(v, &i) != 0)
      return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
    memcpy(m, &i, sizeof(i));
    return 0;
  }
  case FK_LONG: {
    int64_t l = 0;
    int rc;
    if (avro_value_get_type(v) == AVRO_INT32) {
      int32_t i = 0;
      rc = avro_value_get_int(v, &i);
      l = i;
    } else {
      rc = avro_value_get_long(v, &l);
    }
    if (rc != 0)
      return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
    memcpy(m, &l, sizeof(l));
    return 0;
  }
  case FK_OPT_INT:
  case FK_OPT_LONG: {
    avro_value_t b;
    int64_t l = 0;
    int rc = 0, has = 1;
    if (unwrap(v, &b) != 0)
      return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
    avro_type_t bt = avro_value_get_type(&b);
    if (bt == AVRO_NULL) {
      has = 0;
    } else if (bt == AVRO_INT32) {
      int32_t i = 0;
      rc = avro_value_get_int(&b, &i);
      l = i;
    } else if (bt == AVRO_INT64 && f->kind == FK_OPT_LONG) {
      rc = avro_value_get_long(&b, &l);
    } else {
      return path_err(p, errstr, errstr_size, "expected a number");
    }
    if (rc != 0)
      return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
    if (f->kind == FK_OPT_INT) {
      int32_t i = (int32_t)l;
      memcpy(m, &i, sizeof(i));
    } else {
      memcpy(m, &l, sizeof(l));
    }
    memcpy(base + f->count_offset, &has, sizeof(has));
    return 0;
  }
  case FK_ENUM: {
    int w = -1;
    if (avro_value_get_enum(v, &w) != 0)
      return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
    if (w < 0 || w >= pf->enum_map_len || pf->enum_map[w] < 0)
      return path_err(p, errstr, errstr_size, "unknown symbol %d", w);
    memcpy(m, &pf->enum_map[w], sizeof(int));
    return 0;
  }
  case FK_STRING_ARRAY:
  case FK_RECORD_ARRAY: {
    size_t n = 0;
    if (avro_value_get_size(v, &n) != 0)
      return path_err(p, errstr, errstr_size, "avro: %s", avro_strerror());
    if (n == 0)
      return 0;
    int strings = f->kind == FK_STRING_ARRAY;
    size_t elem = strings ? sizeof(char *) : f->record->c_size;
    char *items = lp_xcalloc(n, elem);
    /* Owned by the record from here, so its _clear frees partial work. */
    *(void **)m = items;
    *(size_t *)(base + f->count_offset) = n;
    for (size_t i = 0; i < n; i++) {
      struct path ip = {p, NULL, i};
      avro_value_t item;
      if (avro_value_get_by_index(v, i, &item, NULL) != 0)
        return path_err(&ip, errstr, errstr_size, "avro: %s", avro_strerror());
      if (strings ? read_text(&item, 1, &ip, (char **)(items + i * elem),
                              errstr, errstr_size)
                  : read_record(pf->sub, &item, items + i * elem, &ip, errstr,
                                errstr_size))
        return -1;
    }
    return 0;
  }
  case FK_RECORD:
    return read_record(pf->sub, v, m, p, errstr, errstr_size);
  }
  return path_err(p, errstr, errstr_size, "unknown field kind");
}

/* Fills the C record at base from writer record value rec per plan pl. */
static int read_record(const struct plan *pl, avro_value_t *rec, void *base,
                       const struct path *p, char *errstr, size_t errstr_size) {
  const struct record_desc *d = pl->desc;
  for (size_t i = 0; i < d->n_fields; i++) {
    const struct plan_field *pf = &pl->f[i];
    if (pf->widx < 0)
      continue; /* absent from the writer: the C zero is the default */
    struct path fp = {p, d->fields[i].name, 0};
    avro_value_t v;
    if (avro_value_get_by_index(rec, (size_t)pf->widx, &v, NULL) != 0)
      return path_err(&fp, errstr, errstr_size, "avro: %s", avro_strerror());
    if (read_field(pf, &d->fields[i], &v, base, &fp, errstr, errstr_size))
      return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * C record -> our value
 */

struct enc {
  int repair; /* dead letters, action results: repair strings, not fail */
  struct lp_buf *tmp; /* repaired text */
  char *errstr;
  size_t errstr_size;
};

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  if (s[0] < 0x80)
    return 1;
  size_t len = (s[0] & 0xE0) == 0xC0   ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
  if (len == 0 || len > n || !lp_utf8_valid((const char *)s, len))
    return 0;
  return len;
}

/* Copies s into e->tmp with invalid UTF-8 replaced by U+FFFD, cut at a
 * character boundary to at most LP_MAX_STRING_BYTES. */
static const char *repair_text(struct enc *e, const char *s, size_t *len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + *len;
  lp_buf_reset(e->tmp);
  while (p < end) {
    size_t n = utf8_seq(p, (size_t)(end - p));
    size_t add = n ? n : 3;
    if (e->tmp->len + add > LP_MAX_STRING_BYTES)
      break;
    if (n)
      lp_buf_append(e->tmp, p, n);
    else
      lp_buf_append(e->tmp, "\xEF\xBF\xBD", 3);
    p += n ? n : 1;
  }
  *len = e->tmp->len;
  return lp_buf_cstr(e->tmp);
}

static int put_record(struct enc *e, const struct record_desc *d,
                      const void *base, struct lp_buf *out,
                      const struct path *p);

/* Avro long/int: zig-zag, then 7 bits a byte, low first. */
static void put_long(struct lp_buf *out, int64_t v) {
  uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  lp_buf_reserve(out, 10);
  uint8_t *q = out->data + out->len;
  while (z >= 0x80) {
    *q++ = (uint8_t)(z | 0x80);
    z >>= 7;
  }
  *q++ = (uint8_t)z;
  out->len = (size_t)(q - out->data);
}

static void put_bytes(struct lp_buf *out, const void *data, size_t len) {
  put_long(out, (int64_t)len);
  if (len)
    lp_buf_append(out, data, len);
}

/* A string: refused (or, for dead letters and action results, repaired)
 * when over the limit or not UTF-8, as no decoder would accept it. */
static int put_text(struct enc *e, struct lp_buf *out, const char *s,
                    const struct path *p) {
  size_t len = strlen(s);
  if (len > LP_MAX_STRING_BYTES || !lp_utf8_valid(s, len)) {
    if (!e->repair)
      return len > LP_MAX_STRING_BYTES
                 ? path_err(p, e->errstr, e->errstr_size,
                            "string of %zu bytes exceeds the limit of %d", len,
                            LP_MAX_STRING_BYTES)
                 : path_err(p, e->errstr, e->errstr_size, "not valid UTF-8");
    s = repair_text(e, s, &len);
  }
  put_bytes(out, s, len);
  return 0;
}

/* One field of the C record at base, in our schema's binary encoding.
 * Optional fields are ["null", X] unions (checked at start-up): branch 0
 * is null, branch 1 the value. */
static int put_field(struct enc *e, const struct field_desc *f,
                     const char *base, struct lp_buf *out,
                     const struct path *p) {
  const void *m = base + f->offset;
  switch (f->kind) {
  case FK_STRING:
  case FK_OPT_STRING: {
    const char *s = *(char *const *)m;
    if (f->kind == FK_OPT_STRING) {
      put_long(out, s != NULL);
      if (!s)
        return 0;
    } else if (!s) {
      return path_err(p, e->errstr, e->errstr_size, "required field missing");
    }
    return put_text(e, out, s, p);
  }
  case FK_BYTES:
  case FK_OPT_BYTES: {
    const uint8_t *data = *(uint8_t *const *)m;
    size_t len = *(const size_t *)(base + f->count_offset);
    if (!data && len)
      return path_err(p, e->errstr, e->errstr_size, "%zu bytes but no buffer",
                      len);
    if (f->kind == FK_OPT_BYTES) {
      put_long(out, data != NULL);
      if (!data)
        return 0;
    }
    put_bytes(out, data, len);
    return 0;
  }
  case FK_INT: {
    int32_t i;
    memcpy(&i, m, sizeof(i));
    put_long(out, i);
    return 0;
  }
  case FK_LONG: {
    int64_t l;
    memcpy(&l, m, sizeof(l));
    put_long(out, l);
    return 0;
  }
  case FK_OPT_INT:
  case FK_OPT_LONG: {
    int has;
    memcpy(&has, base + f->count_offset, sizeof(has));
    put_long(out, has != 0);
    if (!has)
      return 0;
    if (f->kind == FK_OPT_INT) {
      int32_t i;
      memcpy(&i, m, sizeof(i));
      put_long(out, i);
    } else {
      int64_t l;
      memcpy(&l, m, sizeof(l));
      put_long(out, l);
    }
    return 0;
  }
  case FK_ENUM: {
    int x;
    memcpy(&x, m, sizeof(x));
    if (x < 0 || x >= f->enumd->n_symbols)
      return path_err(p, e->errstr, e->errstr_size, "unknown value %d", x);
    put_long(out, x);
    return 0;
  }
  case FK_STRING_ARRAY:
  case FK_RECORD_ARRAY: {
    const char *items = *(const char *const *)m;
    size_t n = *(const size_t *)(base + f->count_offset);
    if (n > LP_AVRO_MAX_ARRAY_ITEMS)
      return path_err(p, e->errstr, e->errstr_size,
                      "%zu items exceed the limit of %d", n,
                      LP_AVRO_MAX_ARRAY_ITEMS);
    if (n && !items)
      return path_err(p, e->errstr, e->errstr_size, "%zu items but no array",
                      n);
    /* One block of n items, then the empty block that ends the array. */
    if (n)
      put_long(out, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
      struct path ip = {p, NULL, i};
      if (f->kind == FK_STRING_ARRAY) {
        const char *s = ((char *const *)(const void *)items)[i];
        if (!s)
          return path_err(&ip, e->errstr, e->errstr_size,
                          "required field missing");
        if (put_text(e, out, s, &ip) != 0)
          return -1;
      } else if (put_record(e, f->record, items + i * f->record->c_size, out,
                            &ip) != 0) {
        return -1;
      }
    }
    put_long(out, 0);
    return 0;
  }
  case FK_RECORD:
    return put_record(e, f->record, m, out, p);
  }
  return path_err(p, e->errstr, e->errstr_size, "unknown field kind");
}

/* The record's fields in schema order (the tables follow the schemas,
 * checked at start-up), so the bytes are exactly Avro's binary encoding. */
static int put_record(struct enc *e, const struct record_desc *d,
                      const void *base, struct lp_buf *out,
                      const struct path *p) {
  for (size_t i = 0; i < d->n_fields; i++) {
    struct path fp = {p, d->fields[i].name, 0};
    if (put_field(e, &d->fields[i], base, out, &fp) != 0)
      return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Previous versions of our schemas
 *
 * A single-object record names its writer schema by fingerprint, so a
 * reader must know every version still in a topic and, during a rolling
 * upgrade (readers first), the version that processors not yet upgraded
 * still write. These versions are known from the start as writer schemas
 * (read like any older writer: the fields they lack take their defaults;
 * their plans are compiled at start-up, so a version ours can no longer
 * read fails there). Parsing Canonical Form is all a writer schema needs;
 * the fingerprint is checked at start-up too. An entry can go once no
 * topic's retention still holds records it wrote.
 */

struct previous_schema {
  enum lp_record_type type;
  uint64_t fingerprint;
  const char *canonical;
};

static const struct previous_schema previous_schemas[] = {
    /* RewardDecision before Action.attributes and ActionKind score_sync. */
    {LP_REC_DECISION, UINT64_C(0x7ae4fc5c4fdac569),
     "{\"name\":\"com.loyalty.events.RewardDecision\",\"type\":\"record\","
     "\"fields\":[{\"name\":\"decision_id\",\"type\":\"string\"},"
     "{\"name\":\"shop\",\"type\":\"string\"},{\"name\":\"customer_id\","
     "\"type\":\"string\"},{\"name\":\"trigger_event_id\","
     "\"type\":\"string\"},{\"name\":\"trigger_kind\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"rule_id\",\"type\":\"string\"},"
     "{\"name\":\"rule_version\",\"type\":\"int\"},{\"name\":\"action\","
     "\"type\":{\"name\":\"com.loyalty.events.Action\","
     "\"type\":\"record\",\"fields\":[{\"name\":\"kind\","
     "\"type\":{\"name\":\"com.loyalty.events.ActionKind\","
     "\"type\":\"enum\",\"symbols\":[\"points\",\"reward\","
     "\"discount_code\",\"tier_change\",\"message\"]}},"
     "{\"name\":\"points\",\"type\":\"long\"},{\"name\":\"reward_id\","
     "\"type\":[\"null\",\"string\"]},{\"name\":\"discount_percent\","
     "\"type\":\"int\"},{\"name\":\"discount_amount_micros\","
     "\"type\":\"long\"},{\"name\":\"tier\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"template_id\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"channel\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"brand\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"category\",\"type\":[\"null\",\"string\"]}]}},"
     "{\"name\":\"estimated_cost_micros\",\"type\":\"long\"},"
     "{\"name\":\"currency\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"event_time_ms\",\"type\":\"long\"},"
     "{\"name\":\"approval\","
     "\"type\":{\"name\":\"com.loyalty.events.ApprovalHint\","
     "\"type\":\"enum\",\"symbols\":[\"none\",\"recommended\","
     "\"required\"]}},{\"name\":\"explanation\","
     "\"type\":{\"name\":\"com.loyalty.events.Explanation\","
     "\"type\":\"record\",\"fields\":[{\"name\":\"rule_id\","
     "\"type\":[\"null\",\"string\"]},{\"name\":\"rule_version\","
     "\"type\":\"int\"},{\"name\":\"model_version\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"summary\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"features\",\"type\":{\"type\":\"array\","
     "\"items\":{\"name\":\"com.loyalty.events.Feature\","
     "\"type\":\"record\",\"fields\":[{\"name\":\"name\","
     "\"type\":\"string\"},{\"name\":\"value\",\"type\":[\"null\","
     "\"string\"]}]}}}]}}]}"},
    /* ActionResult before ActionKind score_sync. */
    {LP_REC_ACTION_RESULT, UINT64_C(0xf89b5032ab1bd2c1),
     "{\"name\":\"com.loyalty.events.ActionResult\",\"type\":\"record\","
     "\"fields\":[{\"name\":\"decision_id\",\"type\":\"string\"},"
     "{\"name\":\"shop\",\"type\":\"string\"},{\"name\":\"customer_id\","
     "\"type\":\"string\"},{\"name\":\"trigger_event_id\","
     "\"type\":\"string\"},{\"name\":\"rule_id\",\"type\":\"string\"},"
     "{\"name\":\"rule_version\",\"type\":\"int\"},"
     "{\"name\":\"model_version\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"action_kind\","
     "\"type\":{\"name\":\"com.loyalty.events.ActionKind\","
     "\"type\":\"enum\",\"symbols\":[\"points\",\"reward\","
     "\"discount_code\",\"tier_change\",\"message\"]}},"
     "{\"name\":\"platform\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"outcome\","
     "\"type\":{\"name\":\"com.loyalty.events.ActionOutcome\","
     "\"type\":\"enum\",\"symbols\":[\"issued\",\"already_done\","
     "\"pending_approval\",\"rejected\",\"expired\",\"blocked\","
     "\"failed\"]}},{\"name\":\"guardrail\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"request_summary\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"http_status\",\"type\":\"int\"},"
     "{\"name\":\"platform_reference\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"attempts\",\"type\":\"int\"},{\"name\":\"latency_ms\","
     "\"type\":\"long\"},{\"name\":\"reason\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"actor\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"event_time_ms\",\"type\":\"long\"},"
     "{\"name\":\"time_ms\",\"type\":\"long\"}]}"},
    /* ActionResult before the generated message copy (copy_source ...
     * copy_note). */
    {LP_REC_ACTION_RESULT, UINT64_C(0x3b8acc8eff0909f7),
     "{\"name\":\"com.loyalty.events.ActionResult\",\"type\":\"record\","
     "\"fields\":[{\"name\":\"decision_id\",\"type\":\"string\"},"
     "{\"name\":\"shop\",\"type\":\"string\"},{\"name\":\"customer_id\","
     "\"type\":\"string\"},{\"name\":\"trigger_event_id\","
     "\"type\":\"string\"},{\"name\":\"rule_id\",\"type\":\"string\"},"
     "{\"name\":\"rule_version\",\"type\":\"int\"},"
     "{\"name\":\"model_version\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"action_kind\","
     "\"type\":{\"name\":\"com.loyalty.events.ActionKind\","
     "\"type\":\"enum\",\"symbols\":[\"points\",\"reward\","
     "\"discount_code\",\"tier_change\",\"message\",\"score_sync\"]}},"
     "{\"name\":\"platform\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"outcome\","
     "\"type\":{\"name\":\"com.loyalty.events.ActionOutcome\","
     "\"type\":\"enum\",\"symbols\":[\"issued\",\"already_done\","
     "\"pending_approval\",\"rejected\",\"expired\",\"blocked\","
     "\"failed\"]}},{\"name\":\"guardrail\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"request_summary\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"http_status\",\"type\":\"int\"},"
     "{\"name\":\"platform_reference\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"attempts\",\"type\":\"int\"},{\"name\":\"latency_ms\","
     "\"type\":\"long\"},{\"name\":\"reason\",\"type\":[\"null\","
     "\"string\"]},{\"name\":\"actor\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"event_time_ms\",\"type\":\"long\"},"
     "{\"name\":\"time_ms\",\"type\":\"long\"}]}"},
};

/* ------------------------------------------------------------------------
 * The codec
 */

/* A schema records may have been written with, and the avro-c objects
 * reused to read them. */
struct writer_schema {
  int64_t registry_id;  /* Confluent id, or -1 (found by fingerprint) */
  uint64_t fingerprint; /* single-object entries */
  avro_schema_t schema; /* NULL for a cached registry failure */
  char *error;          /* permanent registry failure (negative cache) */
  char *full_name;      /* for messages */
  avro_value_iface_t *iface;
  avro_value_t value; /* created on first read */
  int has_value;
  struct plan *plans[LP_AVRO_REC_COUNT]; /* built on first use */
  char *plan_errors[LP_AVRO_REC_COUNT];  /* incompatible: why */
};

struct our_schema {
  avro_schema_t schema;
  avro_value_iface_t *iface;
  char *canonical;
  uint64_t fingerprint;
};

/* libcurl is loaded (dlopen) only when a registry URL is configured: a
 * processor without one does not map it and the ~20 libraries it pulls in
 * (TLS, LDAP, SSH, Kerberos...): about 1 MB less resident memory. */
static struct {
  void *handle;
  CURLcode (*global_init)(long);
  void (*global_cleanup)(void);
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_perform)(CURL *);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  const char *(*easy_strerror)(CURLcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  char error[256];
} curl_lib;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static int curl_sym(void *h, const char *name, void *fn, size_t size) {
  void *p = dlsym(h, name);
  if (!p) {
    snprintf(curl_lib.error, sizeof(curl_lib.error), "libcurl.so.4 has no %s",
             name);
    return -1;
  }
  LP_ASSERT(size == sizeof(p));
  memcpy(fn, &p, sizeof(p)); /* POSIX: object and function pointers agree */
  return 0;
}

static void curl_load(void) {
  void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(curl_lib.error, sizeof(curl_lib.error), "%s", dlerror());
    return;
  }
#define SYM(field, name)                                                       \
  curl_sym(h, name, &curl_lib.field, sizeof(curl_lib.field))
  if (SYM(global_init, "curl_global_init") ||
      SYM(global_cleanup, "curl_global_cleanup") ||
      SYM(easy_init, "curl_easy_init") ||
      SYM(easy_cleanup, "curl_easy_cleanup") ||
      SYM(easy_reset, "curl_easy_reset") ||
      SYM(easy_setopt, "curl_easy_setopt") ||
      SYM(easy_perform, "curl_easy_perform") ||
      SYM(easy_getinfo, "curl_easy_getinfo") ||
      SYM(easy_strerror, "curl_easy_strerror") ||
      SYM(slist_append, "curl_slist_append") ||
      SYM(slist_free_all, "curl_slist_free_all")) {
    dlclose(h);
    return;
  }
#undef SYM
  curl_lib.handle = h; /* kept for the life of the process */
}

/* Everything is owned by the codec and released by lp_avro_codec_destroy,
 * except last_registry_hit, which borrows one of writers[]. */
struct lp_avro_codec {
  struct our_schema ours[LP_AVRO_REC_COUNT];
  struct writer_schema **writers; /* ours first, then added ones */
  size_t n_writers;
  struct writer_schema *last_registry_hit; /* borrowed; NULL after evicting */
  avro_reader_t reader;
  struct lp_buf tmp;
  char *registry_url;   /* without a trailing '/'; NULL: none */
  char *registry_shown; /* the URL without user:password, for messages */
  CURL *curl;
  struct lp_buf http_body;
  int last_retryable;
  struct lp_arena *arena; /* for fast-path events; NULL: the heap */
};

static const char *const record_names[LP_AVRO_REC_COUNT] = {
    "OrderEvent", "CustomerEvent", "RewardDecision",
    "DeadLetter", "ActionResult",  "ActivityEvent"};

static void writer_schema_free(struct writer_schema *ws) {
  if (!ws)
    return;
  for (int t = 0; t < LP_AVRO_REC_COUNT; t++) {
    plan_free(ws->plans[t]);
    free(ws->plan_errors[t]);
  }
  if (ws->has_value)
    avro_value_decref(&ws->value);
  if (ws->iface)
    avro_value_iface_decref(ws->iface);
  if (ws->schema)
    avro_schema_decref(ws->schema);
  free(ws->error);
  free(ws->full_name);
  free(ws);
}

/* Parses json into a new writer schema entry (fingerprint computed);
 * NULL with errstr. */
static struct writer_schema *writer_schema_new(const char *json, size_t len,
                                               char *errstr,
                                               size_t errstr_size) {
  struct writer_schema *ws = lp_xcalloc(1, sizeof(*ws));
  ws->registry_id = -1;
  char *pcf = lp_avro_schema_canonical_form(json, len, errstr, errstr_size);
  if (!pcf)
    goto fail;
  ws->fingerprint = lp_avro_crc64(pcf, strlen(pcf));
  free(pcf);
  if (avro_schema_from_json_length(json, len, &ws->schema) != 0) {
    ws->schema = NULL;
    lp_err(errstr, errstr_size, "schema: %s", avro_strerror());
    goto fail;
  }
  avro_schema_t s = skip_links(ws->schema);
  if (is_avro_named_type(s))
    ws->full_name = avro_schema_namespace(s) && *avro_schema_namespace(s)
                        ? lp_xasprintf("%s.%s", avro_schema_namespace(s),
                                       avro_schema_name(s))
                        : lp_xstrdup(avro_schema_name(s));
  else
    ws->full_name = lp_xstrdup(avro_schema_type_name(s));
  ws->iface = avro_generic_class_from_schema(ws->schema);
  if (!ws->iface) {
    lp_err(errstr, errstr_size, "schema: %s", avro_strerror());
    goto fail;
  }
  return ws;
fail:
  writer_schema_free(ws);
  return NULL;
}

/* Takes ws into the cache (or frees it and fails when the cache is full).
 * A full cache first drops its oldest cached registry failure, so garbage
 * records naming random ids cannot crowd out real schemas. */
static int add_writer(struct lp_avro_codec *c, struct writer_schema *ws,
                      char *errstr, size_t errstr_size) {
  if (c->n_writers >= LP_AVRO_MAX_WRITERS) {
    size_t i = 0;
    while (i < c->n_writers && !c->writers[i]->error)
      i++;
    if (i == c->n_writers) {
      writer_schema_free(ws);
      return lp_err(errstr, errstr_size,
                    "avro: more than %d writer schemas; refusing more",
                    LP_AVRO_MAX_WRITERS);
    }
    writer_schema_free(c->writers[i]);
    memmove(&c->writers[i], &c->writers[i + 1],
            (c->n_writers - i - 1) * sizeof(*c->writers));
    c->n_writers--;
    c->last_registry_hit = NULL;
  }
  c->writers =
      lp_xrealloc(c->writers, (c->n_writers + 1) * sizeof(*c->writers));
  c->writers[c->n_writers++] = ws;
  return 0;
}

static struct writer_schema *find_fingerprint(struct lp_avro_codec *c,
                                              uint64_t fp) {
  for (size_t i = 0; i < c->n_writers; i++)
    if (c->writers[i]->registry_id < 0 && c->writers[i]->fingerprint == fp)
      return c->writers[i];
  return NULL;
}

static struct writer_schema *find_registry_id(struct lp_avro_codec *c,
                                              uint32_t id) {
  if (c->last_registry_hit && c->last_registry_hit->registry_id == id)
    return c->last_registry_hit;
  for (size_t i = 0; i < c->n_writers; i++)
    if (c->writers[i]->registry_id == (int64_t)id)
      return c->last_registry_hit = c->writers[i];
  return NULL;
}

/* The URL for messages: "scheme://user:pass@host" loses "user:pass@". */
static char *redact_url(const char *url) {
  const char *scheme = strstr(url, "://");
  const char *host = scheme ? scheme + 3 : url;
  const char *at = strchr(host, '@');
  const char *slash = strchr(host, '/');
  if (!at || (slash && slash < at))
    return lp_xstrdup(url);
  return lp_xasprintf("%.*s%s", (int)(host - url), url, at + 1);
}

void lp_avro_codec_destroy(struct lp_avro_codec **cp) {
  struct lp_avro_codec *c = cp ? *cp : NULL;
  if (!c)
    return;
  for (int t = 0; t < LP_AVRO_REC_COUNT; t++) {
    struct our_schema *o = &c->ours[t];
    if (o->iface)
      avro_value_iface_decref(o->iface);
    if (o->schema)
      avro_schema_decref(o->schema);
    free(o->canonical);
  }
  for (size_t i = 0; i < c->n_writers; i++)
    writer_schema_free(c->writers[i]);
  free(c->writers);
  if (c->reader)
    avro_reader_free(c->reader);
  lp_buf_free(&c->tmp);
  lp_buf_free(&c->http_body);
  if (c->curl)
    curl_lib.easy_cleanup(c->curl);
  if (c->registry_url)
    curl_lib.global_cleanup();
  free(c->registry_url);
  free(c->registry_shown);
  free(c);
  *cp = NULL;
}

static const char *embedded_schema(const char *name) {
  for (const struct lp_embedded_schema *e = lp_embedded_schemas; e->name; e++)
    if (strcmp(e->name, name) == 0)
      return e->json;
  return NULL;
}

/* Loads our schema for type t and checks it against the field tables. */
static int load_ours(struct lp_avro_codec *c, int t, char *errstr,
                     size_t errstr_size) {
  struct our_schema *o = &c->ours[t];
  const char *json = embedded_schema(record_names[t]);
  if (!json)
    return lp_err(errstr, errstr_size,
                  "schema: schemas/%s.avsc is not compiled in",
                  record_names[t]);
  json_error_t jerr;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return lp_err(errstr, errstr_size, "schema: %s.avsc line %d: %s",
                  record_names[t], jerr.line, jerr.text);
  int rc = -1;
  if (avro_schema_from_json_length(json, strlen(json), &o->schema) != 0) {
    o->schema = NULL;
    lp_err(errstr, errstr_size, "schema: %s.avsc: %s", record_names[t],
           avro_strerror());
    goto done;
  }
  if (check_record(record_descs[t], o->schema, root, errstr, errstr_size))
    goto done;
  o->canonical = canonical_form_of(root, errstr, errstr_size);
  if (!o->canonical)
    goto done;
  o->fingerprint = lp_avro_crc64(o->canonical, strlen(o->canonical));
  o->iface = avro_generic_class_from_schema(o->schema);
  if (!o->iface) {
    lp_err(errstr, errstr_size, "schema: %s: %s", record_names[t],
           avro_strerror());
    goto done;
  }
  /* Our own schema is also the commonest writer schema. */
  struct writer_schema *ws =
      writer_schema_new(json, strlen(json), errstr, errstr_size);
  if (!ws)
    goto done;
  LP_ASSERT(ws->fingerprint == o->fingerprint);
  ws->plans[t] =
      plan_compile(record_descs[t], ws->schema, NULL, errstr, errstr_size);
  if (!ws->plans[t]) {
    writer_schema_free(ws);
    goto done;
  }
  if (add_writer(c, ws, errstr, errstr_size) != 0)
    goto done; /* add_writer freed ws */
  rc = 0;
done:
  json_decref(root);
  return rc;
}

/* Adds a previous version of one of our schemas as a known writer. */
static int load_previous(struct lp_avro_codec *c,
                         const struct previous_schema *prev, char *errstr,
                         size_t errstr_size) {
  int t = (int)prev->type;
  char why[256];
  struct writer_schema *ws = writer_schema_new(
      prev->canonical, strlen(prev->canonical), why, sizeof(why));
  if (!ws)
    return lp_err(errstr, errstr_size, "schema: previous %s: %s",
                  record_names[t], why);
  if (ws->fingerprint != prev->fingerprint) {
    uint64_t fp = ws->fingerprint;
    writer_schema_free(ws);
    return lp_err(errstr, errstr_size,
                  "schema: previous %s has fingerprint 0x%016" PRIx64
                  ", expected 0x%016" PRIx64,
                  record_names[t], fp, prev->fingerprint);
  }
  ws->plans[t] =
      plan_compile(record_descs[t], ws->schema, NULL, why, sizeof(why));
  if (!ws->plans[t]) {
    writer_schema_free(ws);
    return lp_err(errstr, errstr_size,
                  "schema: previous %s 0x%016" PRIx64
                  " can no longer be read: %s",
                  record_names[t], prev->fingerprint, why);
  }
  return add_writer(c, ws, errstr, errstr_size);
}

struct lp_avro_codec *lp_avro_codec_new(const char *registry_url, char *errstr,
                                        size_t errstr_size) {
  struct lp_avro_codec *c = lp_xcalloc(1, sizeof(*c));
  lp_buf_init(&c->tmp);
  lp_buf_init(&c->http_body);
  for (int t = 0; t < LP_AVRO_REC_COUNT; t++)
    if (load_ours(c, t, errstr, errstr_size) != 0)
      goto fail;
  for (size_t i = 0; i < LP_ARRAY_LEN(previous_schemas); i++)
    if (load_previous(c, &previous_schemas[i], errstr, errstr_size) != 0)
      goto fail;
  static const char dummy[1];
  c->reader = avro_reader_memory(dummy, 0);
  if (!c->reader) {
    lp_err(errstr, errstr_size, "avro: %s", avro_strerror());
    goto fail;
  }
  if (registry_url && *registry_url) {
    pthread_once(&curl_once, curl_load);
    if (!curl_lib.handle) {
      lp_err(errstr, errstr_size,
             "avro: a schema registry is configured but libcurl cannot be "
             "loaded: %s (install libcurl4)",
             curl_lib.error);
      goto fail;
    }
    if (curl_lib.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      lp_err(errstr, errstr_size, "avro: curl_global_init failed");
      goto fail;
    }
    size_t n = strlen(registry_url);
    while (n > 0 && registry_url[n - 1] == '/')
      n--;
    c->registry_url = lp_xstrndup(registry_url, n);
    c->registry_shown = redact_url(c->registry_url);
  }
  return c;
fail:
  lp_avro_codec_destroy(&c);
  return NULL;
}

uint64_t lp_avro_fingerprint(const struct lp_avro_codec *c,
                             enum lp_record_type type) {
  LP_ASSERT((unsigned)type < LP_AVRO_REC_COUNT);
  return c->ours[type].fingerprint;
}

const char *lp_avro_canonical_form(const struct lp_avro_codec *c,
                                   enum lp_record_type type) {
  LP_ASSERT((unsigned)type < LP_AVRO_REC_COUNT);
  return c->ours[type].canonical;
}

void lp_avro_codec_set_arena(struct lp_avro_codec *c, struct lp_arena *a) {
  c->arena = a;
}

int lp_avro_codec_last_error_retryable(const struct lp_avro_codec *c) {
  return c->last_retryable;
}

int lp_avro_codec_add_schema(struct lp_avro_codec *c, const char *json,
                             char *errstr, size_t errstr_size) {
  struct writer_schema *ws =
      writer_schema_new(json, strlen(json), errstr, errstr_size);
  if (!ws)
    return -1;
  if (find_fingerprint(c, ws->fingerprint)) {
    uint64_t fp = ws->fingerprint;
    writer_schema_free(ws);
    return lp_err(errstr, errstr_size,
                  "avro: a schema with fingerprint 0x%016" PRIx64
                  " is already known",
                  fp);
  }
  return add_writer(c, ws, errstr, errstr_size);
}

int lp_avro_codec_add_registry_schema(struct lp_avro_codec *c, uint32_t id,
                                      const char *json, char *errstr,
                                      size_t errstr_size) {
  if (find_registry_id(c, id))
    return lp_err(errstr, errstr_size,
                  "avro: schema id %" PRIu32 " is already known", id);
  struct writer_schema *ws =
      writer_schema_new(json, strlen(json), errstr, errstr_size);
  if (!ws)
    return -1;
  ws->registry_id = id;
  return add_writer(c, ws, errstr, errstr_size);
}

/* ------------------------------------------------------------------------
 * Schema registry client
 */

static size_t http_write(char *data, size_t size, size_t nmemb, void *ud) {
  struct lp_buf *b = ud;
  size_t n = size * nmemb;
  if (b->len + n > LP_AVRO_MAX_REGISTRY_BODY)
    return 0; /* makes curl fail with CURLE_WRITE_ERROR */
  lp_buf_append(b, data, n);
  return n;
}

/* Caches a permanent failure for id so the registry is asked once. */
static void registry_negative(struct lp_avro_codec *c, uint32_t id,
                              const char *error) {
  struct writer_schema *ws = lp_xcalloc(1, sizeof(*ws));
  ws->registry_id = id;
  ws->error = lp_xstrdup(error);
  add_writer(c, ws, NULL, 0); /* beyond the cap: simply not cached */
}

/* Fetches schema id from the registry into the cache. 0, or -1 with
 * errstr and c->last_retryable set for transient failures. */
static int registry_fetch(struct lp_avro_codec *c, uint32_t id, char *errstr,
                          size_t errstr_size) {
  char url[1024], cerr[CURL_ERROR_SIZE] = "";
  long status = 0;
  json_t *root = NULL;
  int rc = -1;
  snprintf(url, sizeof(url), "%s/schemas/ids/%" PRIu32, c->registry_url, id);
  if (!c->curl && !(c->curl = curl_lib.easy_init()))
    return lp_err(errstr, errstr_size, "avro: curl_easy_init failed");
  CURL *h = c->curl;
  curl_lib.easy_reset(h);
  lp_buf_reset(&c->http_body);
  struct curl_slist *hdrs = curl_lib.slist_append(
      NULL, "Accept: application/vnd.schemaregistry.v1+json, "
            "application/json");
  curl_lib.easy_setopt(h, CURLOPT_URL, url);
  curl_lib.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_lib.easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write);
  curl_lib.easy_setopt(h, CURLOPT_WRITEDATA, &c->http_body);
  curl_lib.easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_lib.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_lib.easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_lib.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_lib.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  CURLcode cc = curl_lib.easy_perform(h);
  curl_lib.slist_free_all(hdrs);
  curl_lib.easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  curl_lib.easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  if (cc != CURLE_OK) {
    c->last_retryable = 1;
    return lp_err(errstr, errstr_size,
                  "avro: schema registry %s unreachable for id %" PRIu32 ": %s",
                  c->registry_shown, id,
                  cerr[0] ? cerr : curl_lib.easy_strerror(cc));
  }
  curl_lib.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status == 404 || status == 422) {
    lp_err(errstr, errstr_size,
           "avro: schema registry has no schema id %" PRIu32 " (HTTP %ld)", id,
           status);
    registry_negative(c, id, errstr);
    return -1;
  }
  if (status != 200) {
    c->last_retryable = 1;
    return lp_err(errstr, errstr_size,
                  "avro: schema registry %s answered HTTP %ld for id %" PRIu32,
                  c->registry_shown, status, id);
  }
  json_error_t jerr;
  root =
      json_loadb((const char *)c->http_body.data, c->http_body.len, 0, &jerr);
  const char *schema = json_string_value(json_object_get(root, "schema"));
  const char *stype = json_string_value(json_object_get(root, "schemaType"));
  if (!schema) {
    lp_err(errstr, errstr_size,
           "avro: schema registry answer for id %" PRIu32
           " has no \"schema\" string",
           id);
  } else if (stype && strcmp(stype, "AVRO") != 0) {
    lp_err(errstr, errstr_size,
           "avro: schema id %" PRIu32 " is a %s schema, not Avro", id, stype);
  } else if (json_array_size(json_object_get(root, "references")) > 0) {
    lp_err(errstr, errstr_size,
           "avro: schema id %" PRIu32 " uses schema references, which this "
           "codec does not resolve",
           id);
  } else {
    char perr[256];
    struct writer_schema *ws =
        writer_schema_new(schema, strlen(schema), perr, sizeof(perr));
    if (ws) {
      ws->registry_id = id;
      rc = add_writer(c, ws, errstr, errstr_size);
      goto done;
    }
    lp_err(errstr, errstr_size, "avro: schema id %" PRIu32 ": %s", id, perr);
  }
  registry_negative(c, id, errstr);
done:
  json_decref(root);
  return rc;
}

/* ------------------------------------------------------------------------
 * Decoding and encoding
 */

/* Finds the writer schema and datum of a framed record. */
static struct writer_schema *frame(struct lp_avro_codec *c, const uint8_t *p,
                                   size_t len, size_t *header, char *errstr,
                                   size_t errstr_size) {
  if (len == 0) {
    lp_err(errstr, errstr_size, "avro: empty record");
    return NULL;
  }
  if (p[0] == 0xC3) {
    if (len < 10) {
      lp_err(errstr, errstr_size,
             "avro: truncated single-object header (%zu of 10 bytes)", len);
      return NULL;
    }
    if (p[1] != 0x01) {
      lp_err(errstr, errstr_size,
             "avro: bad single-object marker 0xC3 0x%02X (expected 0xC3 "
             "0x01)",
             p[1]);
      return NULL;
    }
    uint64_t fp = 0;
    for (int i = 7; i >= 0; i--)
      fp = fp << 8 | p[2 + i];
    struct writer_schema *ws = find_fingerprint(c, fp);
    if (!ws)
      lp_err(errstr, errstr_size,
             "avro: unknown schema fingerprint 0x%016" PRIx64, fp);
    *header = 10;
    return ws;
  }
  if (p[0] == 0x00) {
    if (len < 5) {
      lp_err(errstr, errstr_size,
             "avro: truncated Confluent header (%zu of 5 bytes)", len);
      return NULL;
    }
    uint32_t id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                  (uint32_t)p[3] << 8 | p[4];
    *header = 5;
    struct writer_schema *ws = find_registry_id(c, id);
    if (!ws) {
      if (!c->registry_url) {
        lp_err(errstr, errstr_size,
               "avro: Confluent-framed record but no "
               "schema registry configured");
        return NULL;
      }
      if (registry_fetch(c, id, errstr, errstr_size) != 0)
        return NULL;
      ws = find_registry_id(c, id);
      LP_ASSERT(ws != NULL);
    }
    if (ws->error) {
      lp_err(errstr, errstr_size, "%s", ws->error);
      return NULL;
    }
    return ws;
  }
  lp_err(errstr, errstr_size,
         "avro: unknown framing: first byte 0x%02X (expected 0xC3 for Avro "
         "single-object or 0x00 for the Confluent wire format)",
         p[0]);
  return NULL;
}

/* The plan reading ws as record type t, compiled on first use. */
static const struct plan *writer_plan(struct writer_schema *ws, int t,
                                      char *errstr, size_t errstr_size) {
  if (!ws->plans[t] && !ws->plan_errors[t]) {
    char why[256];
    ws->plans[t] =
        plan_compile(record_descs[t], ws->schema, NULL, why, sizeof(why));
    if (!ws->plans[t])
      ws->plan_errors[t] =
          lp_xasprintf("avro: writer schema %s cannot be read as %s: %s",
                       ws->full_name, record_names[t], why);
  }
  if (!ws->plans[t])
    lp_err(errstr, errstr_size, "%s", ws->plan_errors[t]);
  return ws->plans[t];
}

/* Frames, checks, reads and converts a record of type t into out. */
/* ------------------------------------------------------------------------
 * Fast reader: a datum written with exactly our schema (same fingerprint,
 * so the same Parsing Canonical Form and the same binary layout) is read
 * straight into the C record by the field tables, without avro-c. It
 * accepts only what the checked path accepts and gives up at the first
 * doubt (any bound, index or byte out of line): the caller then clears
 * the record and takes the checked path, which names the field and the
 * reason. So errors read exactly as before; only valid records are faster.
 */

struct fast {
  const uint8_t *p, *end;
  struct lp_arena *arena; /* where strings and arrays go; NULL: the heap */
};

static int fast_varint(struct fast *f, int64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (f->p >= f->end)
      return -1;
    uint8_t b = *f->p++;
    if (shift == 63 && b > 1)
      return -1; /* more than 64 bits */
    v |= (uint64_t)(b & 0x7F) << shift;
    if (!(b & 0x80)) {
      *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
      return 0;
    }
  }
  return -1;
}

/* A string of our limits, copied NUL-terminated (caller's record owns). */
static int fast_text(struct fast *f, char **out) {
  int64_t n;
  if (fast_varint(f, &n) != 0 || n < 0 || n > LP_MAX_STRING_BYTES ||
      n > f->end - f->p)
    return -1;
  const char *s = (const char *)f->p;
  if (memchr(s, '\0', (size_t)n) || !lp_utf8_valid(s, (size_t)n))
    return -1;
  *out = f->arena ? lp_arena_strndup(f->arena, s, (size_t)n)
                  : lp_xstrndup(s, (size_t)n);
  f->p += n;
  return 0;
}

static int fast_record(struct fast *f, const struct record_desc *d, char *base);

static int fast_field(struct fast *f, const struct field_desc *fd, char *base) {
  void *m = base + fd->offset;
  int64_t v;
  switch (fd->kind) {
  case FK_OPT_STRING:
    if (fast_varint(f, &v) != 0 || (v != 0 && v != 1))
      return -1;
    return v == 0 ? 0 : fast_text(f, (char **)m);
  case FK_STRING:
    return fast_text(f, (char **)m);
  case FK_INT:
    if (fast_varint(f, &v) != 0 || v < INT32_MIN || v > INT32_MAX)
      return -1;
    *(int32_t *)m = (int32_t)v;
    return 0;
  case FK_LONG:
    if (fast_varint(f, &v) != 0)
      return -1;
    memcpy(m, &v, sizeof(v));
    return 0;
  case FK_OPT_INT:
  case FK_OPT_LONG: {
    int64_t branch;
    if (fast_varint(f, &branch) != 0 || (branch != 0 && branch != 1))
      return -1;
    *(int *)(base + fd->count_offset) = (int)branch;
    if (branch == 0)
      return 0;
    if (fast_varint(f, &v) != 0)
      return -1;
    if (fd->kind == FK_OPT_LONG) {
      memcpy(m, &v, sizeof(v));
      return 0;
    }
    if (v < INT32_MIN || v > INT32_MAX)
      return -1;
    *(int32_t *)m = (int32_t)v;
    return 0;
  }
  case FK_ENUM:
    if (fast_varint(f, &v) != 0 || v < 0 || v >= fd->enumd->n_symbols)
      return -1;
    *(int *)m = (int)v; /* our symbols are the C values (checked) */
    return 0;
  case FK_STRING_ARRAY:
  case FK_RECORD_ARRAY: {
    int strings = fd->kind == FK_STRING_ARRAY;
    size_t elem = strings ? sizeof(char *) : fd->record->c_size;
    size_t *count = (size_t *)(base + fd->count_offset);
    for (;;) {
      int64_t c;
      if (fast_varint(f, &c) != 0)
        return -1;
      if (c == 0)
        return 0;
      int64_t bytes = -1;
      if (c < 0) { /* a sized block: its byte size must match its items */
        if (c == INT64_MIN || fast_varint(f, &bytes) != 0 || bytes < 0)
          return -1;
        c = -c;
      }
      const uint8_t *start = f->p;
      if ((uint64_t)c > (uint64_t)(LP_AVRO_MAX_ARRAY_ITEMS - *count) ||
          (uint64_t)c > (uint64_t)(f->end - f->p)) /* >= a byte each */
        return -1;
      size_t size = (*count + (size_t)c) * elem;
      char *items;
      if (f->arena) { /* a further block: the earlier items move along */
        items = lp_arena_alloc(f->arena, size);
        if (*count)
          memcpy(items, *(void **)m, *count * elem);
      } else {
        items = lp_xrealloc(*(void **)m, size);
      }
      memset(items + *count * elem, 0, (size_t)c * elem);
      *(void **)m = items; /* the record's (or its arena's) */
      for (int64_t i = 0; i < c; i++) {
        char *item = items + (*count)++ * elem;
        if (strings ? fast_text(f, (char **)item)
                    : fast_record(f, fd->record, item))
          return -1;
      }
      if (bytes >= 0 && f->p - start != bytes)
        return -1;
    }
  }
  case FK_RECORD:
    return fast_record(f, fd->record, m);
  case FK_BYTES:
  case FK_OPT_BYTES:
    break; /* dead letters: the checked path */
  }
  return -1;
}

static int fast_record(struct fast *f, const struct record_desc *d,
                       char *base) {
  for (size_t i = 0; i < d->n_fields; i++)
    if (fast_field(f, &d->fields[i], base) != 0)
      return -1;
  return 0;
}

static void clear_record(int t, void *out) {
  switch (t) {
  case LP_REC_ORDER:
    lp_order_event_clear(out);
    break;
  case LP_REC_CUSTOMER:
    lp_customer_event_clear(out);
    break;
  case LP_REC_DECISION:
    lp_reward_decision_clear(out);
    break;
  case LP_REC_DEAD_LETTER:
    lp_dead_letter_clear(out);
    break;
  case LP_REC_ACTION_RESULT:
    lp_action_result_clear(out);
    break;
  case LP_REC_ACTIVITY:
    lp_activity_event_clear(out);
    break;
  }
}

static int decode(struct lp_avro_codec *c, int t, const void *data, size_t len,
                  void *out, char *errstr, size_t errstr_size) {
  LP_ASSERT(c != NULL && out != NULL && (data != NULL || len == 0));
  const uint8_t *p = data;
  size_t header = 0;
  c->last_retryable = 0;
  struct writer_schema *ws = frame(c, p, len, &header, errstr, errstr_size);
  if (!ws)
    return -1;
  if (t != LP_REC_DEAD_LETTER && ws->fingerprint == c->ours[t].fingerprint) {
    struct fast f = {p + header, p + len, NULL};
    /* Only events take the arena: their owner releases them by batch. */
    if (c->arena && t == LP_REC_ORDER)
      ((struct lp_order_event *)out)->arena = f.arena = c->arena;
    else if (c->arena && t == LP_REC_CUSTOMER)
      ((struct lp_customer_event *)out)->arena = f.arena = c->arena;
    else if (c->arena && t == LP_REC_ACTIVITY)
      ((struct lp_activity_event *)out)->arena = f.arena = c->arena;
    if (fast_record(&f, record_descs[t], out) == 0 && f.p == f.end)
      return 0;
    clear_record(t, out); /* something is off: let the checked path say */
  }
  const struct plan *pl = writer_plan(ws, t, errstr, errstr_size);
  if (!pl)
    return -1;
  struct walk w = {p + header, p + len, errstr, errstr_size};
  if (walk_value(&w, ws->schema, NULL, 0) != 0)
    return -1;
  if (w.p != w.end)
    return lp_err(errstr, errstr_size,
                  "avro: %zu trailing byte%s after the "
                  "datum",
                  (size_t)(w.end - w.p), w.end - w.p > 1 ? "s" : "");
  if (!ws->has_value) {
    if (avro_generic_value_new(ws->iface, &ws->value) != 0)
      return lp_err(errstr, errstr_size, "avro: %s", avro_strerror());
    ws->has_value = 1;
  }
  avro_reader_memory_set_source(c->reader, (const char *)p + header,
                                (int64_t)(len - header));
  if (avro_value_read(c->reader, &ws->value) != 0)
    return lp_err(errstr, errstr_size, "avro: %s", avro_strerror());
  return read_record(pl, &ws->value, out, NULL, errstr, errstr_size);
}

/* Appends record rec of type t, single-object framed, to out. */
static int encode(struct lp_avro_codec *c, int t, const void *rec,
                  struct lp_buf *out, char *errstr, size_t errstr_size) {
  LP_ASSERT(c != NULL && rec != NULL && out != NULL);
  struct our_schema *o = &c->ours[t];
  struct enc e = {t == LP_REC_DEAD_LETTER || t == LP_REC_ACTION_RESULT, &c->tmp,
                  errstr, errstr_size};
  size_t start = out->len;
  lp_buf_reserve(out, 10);
  uint8_t *h = out->data + out->len;
  h[0] = 0xC3;
  h[1] = 0x01;
  for (int i = 0; i < 8; i++)
    h[2 + i] = (uint8_t)(o->fingerprint >> (8 * i));
  out->len += 10;
  if (put_record(&e, record_descs[t], rec, out, NULL) != 0) {
    out->len = start; /* out unchanged on error */
    return -1;
  }
  return 0;
}

int lp_avro_encode_order(struct lp_avro_codec *c,
                         const struct lp_order_event *ev, struct lp_buf *out,
                         char *errstr, size_t errstr_size) {
  return encode(c, LP_REC_ORDER, ev, out, errstr, errstr_size);
}

int lp_avro_encode_customer(struct lp_avro_codec *c,
                            const struct lp_customer_event *ev,
                            struct lp_buf *out, char *errstr,
                            size_t errstr_size) {
  return encode(c, LP_REC_CUSTOMER, ev, out, errstr, errstr_size);
}

int lp_avro_encode_activity(struct lp_avro_codec *c,
                            const struct lp_activity_event *ev,
                            struct lp_buf *out, char *errstr,
                            size_t errstr_size) {
  return encode(c, LP_REC_ACTIVITY, ev, out, errstr, errstr_size);
}

int lp_avro_encode_decision(struct lp_avro_codec *c,
                            const struct lp_reward_decision *d,
                            struct lp_buf *out, char *errstr,
                            size_t errstr_size) {
  return encode(c, LP_REC_DECISION, d, out, errstr, errstr_size);
}

int lp_avro_encode_dead_letter(struct lp_avro_codec *c,
                               const struct lp_dead_letter *dl,
                               struct lp_buf *out, char *errstr,
                               size_t errstr_size) {
  return encode(c, LP_REC_DEAD_LETTER, dl, out, errstr, errstr_size);
}

int lp_avro_encode_action_result(struct lp_avro_codec *c,
                                 const struct lp_action_result *r,
                                 struct lp_buf *out, char *errstr,
                                 size_t errstr_size) {
  return encode(c, LP_REC_ACTION_RESULT, r, out, errstr, errstr_size);
}

int lp_avro_decode_order(struct lp_avro_codec *c, const void *data, size_t len,
                         struct lp_order_event *out, char *errstr,
                         size_t errstr_size) {
  if (decode(c, LP_REC_ORDER, data, len, out, errstr, errstr_size) != 0 ||
      lp_order_event_validate(out, errstr, errstr_size) != 0) {
    lp_order_event_clear(out);
    return -1;
  }
  return 0;
}

int lp_avro_decode_customer(struct lp_avro_codec *c, const void *data,
                            size_t len, struct lp_customer_event *out,
                            char *errstr, size_t errstr_size) {
  if (decode(c, LP_REC_CUSTOMER, data, len, out, errstr, errstr_size) != 0 ||
      lp_customer_event_validate(out, errstr, errstr_size) != 0) {
    lp_customer_event_clear(out);
    return -1;
  }
  return 0;
}

int lp_avro_decode_activity(struct lp_avro_codec *c, const void *data,
                            size_t len, struct lp_activity_event *out,
                            char *errstr, size_t errstr_size) {
  if (decode(c, LP_REC_ACTIVITY, data, len, out, errstr, errstr_size) != 0 ||
      lp_activity_event_validate(out, errstr, errstr_size) != 0) {
    lp_activity_event_clear(out);
    return -1;
  }
  return 0;
}

int lp_avro_decode_decision(struct lp_avro_codec *c, const void *data,
                            size_t len, struct lp_reward_decision *out,
                            char *errstr, size_t errstr_size) {
  if (decode(c, LP_REC_DECISION, data, len, out, errstr, errstr_size) != 0) {
    lp_reward_decision_clear(out);
    return -1;
  }
  return 0;
}

int lp_avro_decode_dead_letter(struct lp_avro_codec *c, const void *data,
                               size_t len, struct lp_dead_letter *out,
                               char *errstr, size_t errstr_size) {
  if (decode(c, LP_REC_DEAD_LETTER, data, len, out, errstr, errstr_size) != 0) {
    lp_dead_letter_clear(out);
    return -1;
  }
  return 0;
}

int lp_avro_decode_action_result(struct lp_avro_codec *c, const void *data,
                                 size_t len, struct lp_action_result *out,
                                 char *errstr, size_t errstr_size) {
  if (decode(c, LP_REC_ACTION_RESULT, data, len, out, errstr, errstr_size) !=
      0) {
    lp_action_result_clear(out);
    return -1;
  }
  return 0;
}
