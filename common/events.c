/*
 * events.c — enum names, release and validation of the canonical records
 * (see events.h). Validation is the one place the pipeline's input limits
 * live, so every decoder (Avro, canonical JSON, Shopify JSON) rejects the
 * same records with the same reasons. Also the far-future check of event
 * times (lp_event_time_plausible) processors apply against the wall clock.
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
static const char *const activity_kind_names[] = {
    "page_view",      "product_view",   "cart_updated", "checkout_started",
    "cart_abandoned", "review_written", "referral",     "social_follow"};
_Static_assert(LP_ARRAY_LEN(activity_kind_names) == LP_ACTIVITY_KIND_COUNT,
               "one name per activity kind");

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
LP_ENUM_FUNCS(lp_activity_kind_name, lp_activity_kind_parse,
              enum lp_activity_kind, activity_kind_names)

const char *lp_activity_kind_list(void) {
  return "page_view, product_view, cart_updated, checkout_started, "
         "cart_abandoned, review_written, referral, social_follow";
}

static void free_strings(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void free_line_items(struct lp_line_item *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct lp_line_item *li = &items[i];
    free(li->product_id);
    free(li->sku);
    free(li->category);
    free(li->brand);
  }
  free(items);
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
  free_line_items(ev->line_items, ev->n_line_items);
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

void lp_activity_event_clear(struct lp_activity_event *ev) {
  if (ev->arena) {
    memset(ev, 0, sizeof(*ev));
    return;
  }
  free(ev->event_id);
  free(ev->shop);
  free(ev->customer_id);
  free(ev->url_path);
  free(ev->product_id);
  free(ev->sku);
  free(ev->category);
  free(ev->brand);
  free(ev->cart_id);
  free(ev->currency);
  free_line_items(ev->line_items, ev->n_line_items);
  free(ev->referral_code);
  free(ev->referred_customer_id);
  free(ev->network);
  free(ev->source);
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

/* Money of the newer records, whose errors quote the amount:
 * "cart_value: negative (-5.00)". */
static int check_amount(int64_t v, const char *field, char *errstr,
                        size_t errstr_size) {
  char amount[48], limit[48];
  if (v >= 0 && v <= LP_MAX_MONEY_MICROS)
    return 0;
  lp_money_format(v, amount, sizeof(amount));
  if (v < 0 && v >= -LP_MAX_MONEY_MICROS)
    return lp_err(errstr, errstr_size, "%s: negative (%s)", field, amount);
  lp_money_format(LP_MAX_MONEY_MICROS, limit, sizeof(limit));
  return lp_err(errstr, errstr_size, "%s: %s is out of range (at most %s)",
                field, amount, limit);
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

/* The line items of an order or a cart: at most LP_MAX_LINE_ITEMS, bounded
 * UTF-8 strings, quantity 1..LP_MAX_QUANTITY, unit price 0..max. Activity
 * events quote a bad price (quote_amount), orders keep their older text. */
static int check_line_items(const struct lp_line_item *items, size_t n,
                            int quote_amount, char *errstr,
                            size_t errstr_size) {
  char field[200];
  if (n > LP_MAX_LINE_ITEMS)
    return lp_err(errstr, errstr_size,
                  "line_items: %zu items exceed the limit of %d", n,
                  LP_MAX_LINE_ITEMS);
  for (size_t i = 0; i < n; i++) {
    const struct lp_line_item *li = &items[i];
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
    if (quote_amount ? check_amount(li->unit_price_micros, "unit_price", field,
                                    sizeof(field))
                     : check_money(li->unit_price_micros, 0, "unit_price",
                                   field, sizeof(field)))
      return lp_err(errstr, errstr_size, "line_items[%zu].%s", i, field);
  }
  return 0;
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
  return check_line_items(ev->line_items, ev->n_line_items, 0, errstr,
                          errstr_size);
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

int lp_activity_event_validate(const struct lp_activity_event *ev, char *errstr,
                               size_t errstr_size) {
  if (check_string(ev->event_id, 1, "event_id", errstr, errstr_size) ||
      check_string(ev->shop, 1, "shop", errstr, errstr_size) ||
      check_string(ev->customer_id, 1, "customer_id", errstr, errstr_size) ||
      check_time(ev->event_time_ms, "event_time", errstr, errstr_size))
    return -1;
  const char *kind = lp_activity_kind_name(ev->kind);
  if (!kind)
    return lp_err(errstr, errstr_size, "kind: unknown value %d", (int)ev->kind);
  if (check_string(ev->url_path, 0, "url_path", errstr, errstr_size) ||
      check_string(ev->product_id, 0, "product_id", errstr, errstr_size) ||
      check_string(ev->sku, 0, "sku", errstr, errstr_size) ||
      check_string(ev->category, 0, "category", errstr, errstr_size) ||
      check_string(ev->brand, 0, "brand", errstr, errstr_size) ||
      check_string(ev->cart_id, 0, "cart_id", errstr, errstr_size) ||
      check_string(ev->referral_code, 0, "referral_code", errstr,
                   errstr_size) ||
      check_string(ev->referred_customer_id, 0, "referred_customer_id", errstr,
                   errstr_size) ||
      check_string(ev->network, 0, "network", errstr, errstr_size) ||
      check_string(ev->source, 0, "source", errstr, errstr_size))
    return -1;
  if (ev->currency && check_currency(ev->currency, errstr, errstr_size))
    return -1;
  if (ev->has_cart_value) {
    if (check_amount(ev->cart_value_micros, "cart_value", errstr, errstr_size))
      return -1;
    if (!ev->currency)
      return lp_err(errstr, errstr_size,
                    "currency: required when cart_value is set");
  }
  if (check_line_items(ev->line_items, ev->n_line_items, 1, errstr,
                       errstr_size))
    return -1;
  if (ev->has_rating && ev->kind != LP_ACTIVITY_REVIEW_WRITTEN)
    return lp_err(errstr, errstr_size,
                  "rating: only a review_written event has a rating (kind is "
                  "%s)",
                  kind);
  switch (ev->kind) {
  case LP_ACTIVITY_PRODUCT_VIEW:
    if (!ev->product_id && !ev->sku)
      return lp_err(errstr, errstr_size,
                    "product_id: required for product_view (or sku)");
    break;
  case LP_ACTIVITY_CART_UPDATED:
    if (!ev->has_cart_value)
      return lp_err(errstr, errstr_size,
                    "cart_value: required for cart_updated");
    break;
  case LP_ACTIVITY_REVIEW_WRITTEN:
    if (!ev->has_rating)
      return lp_err(errstr, errstr_size, "rating: required for review_written");
    if (ev->rating < LP_MIN_RATING || ev->rating > LP_MAX_RATING)
      return lp_err(errstr, errstr_size, "rating: %d is not in %d..%d",
                    (int)ev->rating, LP_MIN_RATING, LP_MAX_RATING);
    break;
  default:
    break;
  }
  return 0;
}

/* "5 years", "1 day", "3 hours", "250 ms": the largest whole unit, for a
 * person reading a dead letter. */
static void format_duration(uint64_t ms, char *out, size_t outsize) {
  static const struct {
    uint64_t ms;
    const char *name;
  } units[] = {{365ULL * 86400000, "year"},
               {86400000ULL, "day"},
               {3600000ULL, "hour"},
               {60000ULL, "minute"},
               {1000ULL, "second"}};
  for (size_t i = 0; i < LP_ARRAY_LEN(units); i++)
    if (ms >= units[i].ms) {
      unsigned long long n = (unsigned long long)(ms / units[i].ms);
      snprintf(out, outsize, "%llu %s%s", n, units[i].name, n == 1 ? "" : "s");
      return;
    }
  snprintf(out, outsize, "%llu ms", (unsigned long long)ms);
}

int lp_event_time_plausible(int64_t event_ms, int64_t now_ms,
                            int64_t max_future_ms, char *errstr,
                            size_t errstr_size) {
  if (max_future_ms < 0)
    max_future_ms = 0;
  /* Compared as a difference that cannot overflow: both are bounded by
   * the validators, but a corrupt record may carry anything. */
  if (event_ms <= now_ms ||
      (uint64_t)event_ms - (uint64_t)now_ms <= (uint64_t)max_future_ms)
    return 0;
  char when[48], ahead[48], limit[48];
  if (event_ms > 253402300799999LL) /* beyond year 9999: no RFC 3339 */
    snprintf(when, sizeof(when), "%lld (epoch ms)", (long long)event_ms);
  else
    lp_time_format_iso8601(event_ms, when, sizeof(when));
  format_duration((uint64_t)event_ms - (uint64_t)now_ms, ahead, sizeof(ahead));
  format_duration((uint64_t)max_future_ms, limit, sizeof(limit));
  return lp_err(errstr, errstr_size,
                "event_time: %s is %s after now; the limit is "
                "max.future.skew (%s)",
                when, ahead, limit);
}

char *lp_member_key(const char *shop, const char *customer_id) {
  return lp_xasprintf("%s:%s", shop, customer_id);
}
