/*
 * events.c — enum names, release and validation of the canonical records
 * (see events.h). Validation is the one place the pipeline's input limits
 * live, so every decoder (Avro, canonical JSON, Shopify JSON) rejects the
 * same records with the same reasons.
 */
#include "events.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const order_status_names[] = {"created", "paid", "cancelled",
                                                 "refunded"};
static const char *const customer_kind_names[] = {"created", "updated"};
static const char *const consent_names[] = {"unknown", "subscribed",
                                            "unsubscribed"};
static const char *const action_kind_names[] = {"points",        "reward",
                                                "discount_code", "tier_change",
                                                "message",       "score_sync"};
static const char *const approval_names[] = {"none", "recommended", "required"};
static const char *const action_outcome_names[] = {
    "issued",  "already_done", "pending_approval", "rejected", "expired",
    "blocked", "failed"};
_Static_assert(LP_ARRAY_LEN(action_outcome_names) == LP_OUTCOME_COUNT,
               "one name per outcome");

static int name_lookup(const char *const *names, size_t n, const char *name) {
  if (!name)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0)
      return (int)i;
  return -1;
}

#define LP_ENUM_FUNCS(fn_name, fn_parse, type, names)                          \
  const char *fn_name(type v) {                                                \
    return (unsigned)v < LP_ARRAY_LEN(names) ? names[v] : NULL;                \
  }                                                                            \
  int fn_parse(const char *name, type *out) {                                  \
    int i = name_lookup(names, LP_ARRAY_LEN(names), name);                     \
    if (i < 0)                                                                 \
      return -1;                                                               \
    *out = (type)i;                                                            \
    return 0;                                                                  \
  }

LP_ENUM_FUNCS(lp_order_status_name, lp_order_status_parse, enum lp_order_status,
              order_status_names)
LP_ENUM_FUNCS(lp_customer_kind_name, lp_customer_kind_parse,
              enum lp_customer_kind, customer_kind_names)
LP_ENUM_FUNCS(lp_consent_name, lp_consent_parse, enum lp_consent, consent_names)
LP_ENUM_FUNCS(lp_action_kind_name, lp_action_kind_parse, enum lp_action_kind,
              action_kind_names)
LP_ENUM_FUNCS(lp_approval_hint_name, lp_approval_hint_parse,
              enum lp_approval_hint, approval_names)
LP_ENUM_FUNCS(lp_action_outcome_name, lp_action_outcome_parse,
              enum lp_action_outcome, action_outcome_names)

static void free_strings(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void lp_order_event_clear(struct lp_order_event *ev) {
  if (ev->arena) {
    memset(ev, 0, sizeof(*ev));
    return;
  }
  free(ev->event_id);
  free(ev->shop);
  free(ev->order_id);
  free(ev->customer_id);
  free(ev->currency);
  free(ev->source);
  free_strings(ev->discount_codes, ev->n_discount_codes);
  for (size_t i = 0; i < ev->n_line_items; i++) {
    struct lp_line_item *li = &ev->line_items[i];
    free(li->product_id);
    free(li->sku);
    free(li->category);
    free(li->brand);
  }
  free(ev->line_items);
  memset(ev, 0, sizeof(*ev));
}

void lp_customer_event_clear(struct lp_customer_event *ev) {
  if (ev->arena) {
    memset(ev, 0, sizeof(*ev));
    return;
  }
  free(ev->event_id);
  free(ev->shop);
  free(ev->customer_id);
  free(ev->email_sha256);
  free(ev->birthday);
  free(ev->source);
  free_strings(ev->tags, ev->n_tags);
  memset(ev, 0, sizeof(*ev));
}

void lp_action_clear(struct lp_action *a) {
  free(a->reward_id);
  free(a->tier);
  free(a->template_id);
  free(a->channel);
  free(a->brand);
  free(a->category);
  for (size_t i = 0; i < a->n_attributes; i++) {
    free(a->attributes[i].name);
    free(a->attributes[i].value);
  }
  free(a->attributes);
  memset(a, 0, sizeof(*a));
}

void lp_explanation_clear(struct lp_explanation *e) {
  free(e->rule_id);
  free(e->model_version);
  free(e->summary);
  for (size_t i = 0; i < e->n_features; i++) {
    free(e->features[i].name);
    free(e->features[i].value);
  }
  free(e->features);
  memset(e, 0, sizeof(*e));
}

void lp_reward_decision_clear(struct lp_reward_decision *d) {
  free(d->decision_id);
  free(d->shop);
  free(d->customer_id);
  free(d->trigger_event_id);
  free(d->trigger_kind);
  free(d->rule_id);
  free(d->currency);
  lp_action_clear(&d->action);
  lp_explanation_clear(&d->explanation);
  memset(d, 0, sizeof(*d));
}

void lp_dead_letter_clear(struct lp_dead_letter *dl) {
  free(dl->source_topic);
  free(dl->source_key);
  free(dl->original);
  free(dl->processor);
  free(dl->reason);
  free(dl->field);
  memset(dl, 0, sizeof(*dl));
}

void lp_action_result_clear(struct lp_action_result *r) {
  free(r->decision_id);
  free(r->shop);
  free(r->customer_id);
  free(r->trigger_event_id);
  free(r->rule_id);
  free(r->model_version);
  free(r->platform);
  free(r->guardrail);
  free(r->request_summary);
  free(r->platform_reference);
  free(r->reason);
  free(r->actor);
  free(r->copy_source);
  free(r->copy_model);
  free(r->copy_prompt);
  free(r->copy_output);
  free(r->copy_note);
  memset(r, 0, sizeof(*r));
}

/* A string field: required or optional, bounded, valid UTF-8. */
static int check_string(const char *value, int required, const char *field,
                        char *errstr, size_t errstr_size) {
  if (!value) {
    if (required)
      return lp_err(errstr, errstr_size, "%s: required field missing", field);
    return 0;
  }
  size_t len = strlen(value);
  if (required && len == 0)
    return lp_err(errstr, errstr_size, "%s: must not be empty", field);
  if (len > LP_MAX_STRING_BYTES)
    return lp_err(errstr, errstr_size,
                  "%s: string of %zu bytes exceeds the limit of %d", field, len,
                  LP_MAX_STRING_BYTES);
  if (!lp_utf8_valid(value, len))
    return lp_err(errstr, errstr_size, "%s: not valid UTF-8", field);
  return 0;
}

static int check_money(int64_t v, int allow_negative, const char *field,
                       char *errstr, size_t errstr_size) {
  if (v > LP_MAX_MONEY_MICROS || v < -LP_MAX_MONEY_MICROS)
    return lp_err(errstr, errstr_size, "%s: amount out of range", field);
  if (!allow_negative && v < 0)
    return lp_err(errstr, errstr_size, "%s: must not be negative", field);
  return 0;
}

/* Event times before 1990 (before online shops; the CDNOW history the
 * models are checked on is from 1997) or after 2200 are corrupted, not
 * real events. */
static int check_time(int64_t ms, const char *field, char *errstr,
                      size_t errstr_size) {
  if (ms < 631152000000LL || ms > 7258118400000LL)
    return lp_err(errstr, errstr_size,
                  "%s: %lld is outside 1990-01-01..2200-01-01 (epoch ms)",
                  field, (long long)ms);
  return 0;
}

static int check_currency(const char *c, char *errstr, size_t errstr_size) {
  if (check_string(c, 1, "currency", errstr, errstr_size))
    return -1;
  if (strlen(c) != 3 || !isupper((unsigned char)c[0]) ||
      !isupper((unsigned char)c[1]) || !isupper((unsigned char)c[2]))
    return lp_err(errstr, errstr_size,
                  "currency: \"%.16s\" is not a 3-letter ISO 4217 code", c);
  return 0;
}

/* An optional line-item string; the "line_items[i]." prefix is only
 * formatted on error (validation runs for every record on the hot path). */
static int check_item_string(const char *value, size_t i, const char *name,
                             char *errstr, size_t errstr_size) {
  char reason[200];
  if (check_string(value, 0, name, reason, sizeof(reason)) == 0)
    return 0;
  return lp_err(errstr, errstr_size, "line_items[%zu].%s", i, reason);
}

int lp_order_event_validate(const struct lp_order_event *ev, char *errstr,
                            size_t errstr_size) {
  char field[200];
  if (check_string(ev->event_id, 1, "event_id", errstr, errstr_size) ||
      check_string(ev->shop, 1, "shop", errstr, errstr_size) ||
      check_string(ev->order_id, 1, "order_id", errstr, errstr_size) ||
      check_string(ev->customer_id, 1, "customer_id", errstr, errstr_size) ||
      check_string(ev->source, 0, "source", errstr, errstr_size) ||
      check_currency(ev->currency, errstr, errstr_size) ||
      check_time(ev->event_time_ms, "event_time", errstr, errstr_size))
    return -1;
  if ((unsigned)ev->status >= LP_ORDER_STATUS_COUNT)
    return lp_err(errstr, errstr_size, "status: unknown value %d",
                  (int)ev->status);
  if (check_money(ev->total_micros, 0, "total", errstr, errstr_size) ||
      check_money(ev->subtotal_micros, 0, "subtotal", errstr, errstr_size) ||
      check_money(ev->discount_micros, 0, "discount", errstr, errstr_size) ||
      check_money(ev->tax_micros, 0, "tax", errstr, errstr_size))
    return -1;
  if (ev->n_discount_codes > LP_MAX_DISCOUNT_CODES)
    return lp_err(errstr, errstr_size,
                  "discount_codes: %zu codes exceed the limit of %d",
                  ev->n_discount_codes, LP_MAX_DISCOUNT_CODES);
  for (size_t i = 0; i < ev->n_discount_codes; i++) {
    snprintf(field, sizeof(field), "discount_codes[%zu]", i);
    if (check_string(ev->discount_codes[i], 1, field, errstr, errstr_size))
      return -1;
  }
  if (ev->n_line_items > LP_MAX_LINE_ITEMS)
    return lp_err(errstr, errstr_size,
                  "line_items: %zu items exceed the limit of %d",
                  ev->n_line_items, LP_MAX_LINE_ITEMS);
  for (size_t i = 0; i < ev->n_line_items; i++) {
    const struct lp_line_item *li = &ev->line_items[i];
    if (check_item_string(li->product_id, i, "product_id", errstr,
                          errstr_size) ||
        check_item_string(li->sku, i, "sku", errstr, errstr_size) ||
        check_item_string(li->category, i, "category", errstr, errstr_size) ||
        check_item_string(li->brand, i, "brand", errstr, errstr_size))
      return -1;
    if (li->quantity <= 0 || li->quantity > LP_MAX_QUANTITY)
      return lp_err(errstr, errstr_size,
                    "line_items[%zu].quantity: %d is not in 1..%d", i,
                    (int)li->quantity, LP_MAX_QUANTITY);
    if (check_money(li->unit_price_micros, 0, "unit_price", field,
                    sizeof(field)))
      return lp_err(errstr, errstr_size, "line_items[%zu].%s", i, field);
  }
  return 0;
}

int lp_customer_event_validate(const struct lp_customer_event *ev, char *errstr,
                               size_t errstr_size) {
  if (check_string(ev->event_id, 1, "event_id", errstr, errstr_size) ||
      check_string(ev->shop, 1, "shop", errstr, errstr_size) ||
      check_string(ev->customer_id, 1, "customer_id", errstr, errstr_size) ||
      check_string(ev->email_sha256, 0, "email_sha256", errstr, errstr_size) ||
      check_string(ev->birthday, 0, "birthday", errstr, errstr_size) ||
      check_string(ev->source, 0, "source", errstr, errstr_size) ||
      check_time(ev->event_time_ms, "event_time", errstr, errstr_size))
    return -1;
  if ((unsigned)ev->kind > LP_CUSTOMER_UPDATED)
    return lp_err(errstr, errstr_size, "kind: unknown value %d", (int)ev->kind);
  if ((unsigned)ev->marketing_consent > LP_CONSENT_UNSUBSCRIBED)
    return lp_err(errstr, errstr_size, "marketing_consent: unknown value %d",
                  (int)ev->marketing_consent);
  if (ev->email_sha256) {
    size_t n = strlen(ev->email_sha256);
    for (size_t i = 0; i < n; i++)
      if (!isxdigit((unsigned char)ev->email_sha256[i]))
        n = 0;
    if (n != 64)
      return lp_err(errstr, errstr_size,
                    "email_sha256: expected 64 hex characters (a SHA-256 "
                    "digest, never a raw email)");
  }
  if (ev->birthday) {
    /* "YYYY-MM-DD" or "--MM-DD" (year unknown). */
    const char *b = ev->birthday;
    size_t n = strlen(b);
    const char *md = n == 10                                ? b + 5
                     : n == 7 && b[0] == '-' && b[1] == '-' ? b + 2
                                                            : NULL;
    int ok = md != NULL && md[-1] == '-' && md[2] == '-' &&
             isdigit((unsigned char)md[0]) && isdigit((unsigned char)md[1]) &&
             isdigit((unsigned char)md[3]) && isdigit((unsigned char)md[4]);
    if (ok && n == 10)
      for (int i = 0; i < 4; i++)
        ok = ok && isdigit((unsigned char)b[i]);
    if (ok) {
      int month = (md[0] - '0') * 10 + (md[1] - '0');
      int day = (md[3] - '0') * 10 + (md[4] - '0');
      ok = month >= 1 && month <= 12 && day >= 1 && day <= 31;
    }
    if (!ok)
      return lp_err(errstr, errstr_size,
                    "birthday: \"%.32s\" is not YYYY-MM-DD or --MM-DD", b);
  }
  if (ev->n_tags > LP_MAX_TAGS)
    return lp_err(errstr, errstr_size, "tags: %zu tags exceed the limit of %d",
                  ev->n_tags, LP_MAX_TAGS);
  for (size_t i = 0; i < ev->n_tags; i++) {
    char field[32];
    snprintf(field, sizeof(field), "tags[%zu]", i);
    if (check_string(ev->tags[i], 1, field, errstr, errstr_size))
      return -1;
  }
  return 0;
}

char *lp_member_key(const char *shop, const char *customer_id) {
  return lp_xasprintf("%s:%s", shop, customer_id);
}
