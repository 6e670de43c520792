/*
 * json_codec.c — JSON forms of the records (see json_codec.h): the
 * canonical JSON codec and the Shopify webhook adapter (Jansson for
 * parsing, a hand-written writer for encoding).
 *
 * Canonical JSON format (full reference with examples: docs/json-formats.md)
 * -------------------------------------------------------------------------
 * - Keys are the events.h member names, in member order, with two renames:
 *   a money member "<x>_micros" is written as "<x>" holding a decimal
 *   string ("total": "404.95", 2..6 decimals, lp_money_format), and a time
 *   member "<x>_ms" is written as "<x>" holding an RFC 3339 UTC string with
 *   milliseconds ("event_time": "2022-01-01T00:00:00.000Z"). So the JSON
 *   name is what the validation errors of events.c already say ("total:
 *   ...", "event_time: ...").
 * - Decoders also accept the integer forms "<x>_micros" / "<x>_ms" when the
 *   string form is absent (the string form wins when both are present).
 *   Ids are strings; a JSON integer id (>0) is accepted and turned into its
 *   decimal text, never through a double.
 * - Every key is always written: an absent optional string is null, an
 *   unknown time (customer_created == 0) is null, enums are their symbol
 *   names. Money given as a JSON number is rejected (binary floating point
 *   cannot carry cents exactly), except that a number beyond the money
 *   range is reported as "<field>: out of range".
 * - Encoders are deterministic: fixed key order, compact (no whitespace),
 *   non-ASCII written as UTF-8, so equal records give equal bytes and
 *   encode -> decode -> encode is the identity. An encoder cannot fail:
 *   invalid UTF-8 in a record (validation makes that impossible for decoded
 *   records) is written as U+FFFD so the output is always valid JSON.
 * - Decision: "action" and "explanation" are nested objects; features are
 *   an array of {"name","value"} objects in the decision's (rule) order,
 *   and so are a score_sync action's "attributes" (always written, [] when
 *   there are none; optional on decode, at most 1000).
 *   Dead letter (encode only): bytes as standard padded base64 in
 *   "source_key_base64" (null when there is no key) and "original_base64".
 *   Action result (encode only): flat, enums as symbols ("action_kind",
 *   "outcome"), "event_time" and "time" as RFC 3339; latency_ms is a
 *   duration, not a time, so it stays "latency_ms", an integer. The
 *   generated message copy ("copy_source", "copy_model", "copy_prompt",
 *   "copy_output", "copy_note") comes last, null when absent.
 * - Activity event: the order's line-item objects; the optional numbers
 *   "cart_value" (money) and "rating" (integer) are null when absent (their
 *   has_ flags clear). A "kind" outside ActivityKind is refused naming every
 *   symbol. There is no platform form yet: canonical only.
 * - Unknown keys are ignored (forward compatibility); duplicate keys are an
 *   error (which one would win is ambiguous).
 *
 * Shopify adapter (bodies per shared reference apis.md section 5)
 * ---------------------------------------------------------------
 * - shop: hints->shop_domain, else hints->default_shop, else an error.
 * - status: from the X-Shopify-Topic hint (orders/create, orders/paid,
 *   orders/cancelled); without a hint, or for other orders/ topics
 *   (orders/updated ...), inferred: cancelled_at set -> cancelled,
 *   financial_status "paid" -> paid, else created. refunds/create is
 *   rejected by the order decoder (a Refund body names no customer); it
 *   has its own decoder, lp_json_decode_shopify_refund, given the customer
 *   and currency of the refunded order (see json_codec.h).
 * - event time: created -> created_at; paid -> processed_at, else
 *   updated_at; cancelled -> cancelled_at, else updated_at. Customers:
 *   updated_at, else created_at.
 * - event id: "shopify:<topic>:<X-Shopify-Event-Id>" when the hint is
 *   present (scoped by topic, see the decoder), else
 *   "shopify:<topic>:<id>:<ts>" where <topic> is the topic of the status or
 *   kind (orders/create|orders/paid|orders/cancelled, customers/create|
 *   customers/update, whatever topic delivered it) and <ts> is the raw
 *   timestamp string the event time came from. The timestamp is the one
 *   that is stable for that status (created_at, processed_at, cancelled_at),
 *   so a redelivered body, and an orders/updated body inferred as the same
 *   status, derive the same id and dedupe.
 * - ids (64-bit integers) become their decimal text; money strings are
 *   parsed with lp_money_parse into micro-units; vendor -> brand;
 *   product_type (when a bridge added it) or the first collection ->
 *   category; customer.id is required ("customer: missing ..." for guest
 *   checkouts); email -> SHA-256 of the trimmed, lower-cased address, the
 *   raw address is never kept; tags "a, b" -> ["a","b"];
 *   email_marketing_consent.state (subscribed -> subscribed; not_subscribed,
 *   unsubscribed, pending, redacted, invalid -> unsubscribed), else the
 *   deprecated accepts_marketing bool, else unknown; birthday from a
 *   "birthday" string or a metafield {namespace "facts", key "birth_date"}.
 *
 * Errors name the field path and the reason ("line_items[3].quantity:
 * expected integer, got string"); JSON syntax errors carry Jansson's line and
 * column ("json: line 1 column 9: ..."). No input crashes the decoder: the
 * raw bytes are checked for UTF-8 first, Jansson bounds nesting depth, and
 * every string read is bounded by LP_MAX_STRING_BYTES before it is used.
 * Those field readers live in json_util.c, shared with the BigCommerce and
 * Adobe Commerce mappings (bigcommerce.c, adobe.c).
 */
#include "json_codec.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "events.h"
#include "json_util.h"
#include "util.h"

/* Profile attributes of one (score_sync) action: the Avro codec's limit
 * for any array, so a decoded decision always encodes. */
#define MAX_ACTION_ATTRIBUTES 1000

/* An enum symbol: parse returns 0 for a known name. */
#define GET_ENUM(obj, key, flags, parse, out, expected)                        \
  do {                                                                         \
    const char *name_;                                                         \
    char q_[64];                                                               \
    int rc_ =                                                                  \
        lp_json_get_raw_str(obj, "", key, flags, &name_, errstr, errstr_size); \
    if (rc_ < 0)                                                               \
      goto fail;                                                               \
    if (rc_ > 0 && parse(name_, out) != 0) {                                   \
      lp_err(errstr, errstr_size, "%s: unknown value %s (expected %s)", key,   \
             lp_json_quoted(name_, q_, sizeof(q_)), expected);                 \
      goto fail;                                                               \
    }                                                                          \
  } while (0)

/* ---------------------------------------------------------------------- */
/* Canonical decoders                                                      */
/* ---------------------------------------------------------------------- */

/* The optional "line_items" array of an order or a cart into *items (owned
 * by the record from the first allocation, so its _clear frees partial
 * work). 0 or -1. */
static int canonical_line_items(const json_t *root, struct lp_line_item **items,
                                size_t *n_items, char *errstr,
                                size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *arr;
  long long n;
  if (lp_json_get_array(root, "", "line_items", 0, LP_MAX_LINE_ITEMS, "items",
                        &arr, errstr, errstr_size) < 0)
    return -1;
  if (!arr || json_array_size(arr) == 0)
    return 0;
  *n_items = json_array_size(arr);
  *items = lp_xcalloc(*n_items, sizeof(**items));
  for (size_t i = 0; i < *n_items; i++) {
    struct lp_line_item *li = &(*items)[i];
    json_t *item;
    if (lp_json_array_object(arr, "line_items", i, path, sizeof(path), &item,
                             errstr, errstr_size) < 0 ||
        lp_json_get_id(item, path, "product_id", 0, &li->product_id, errstr,
                       errstr_size) < 0 ||
        lp_json_get_str(item, path, "sku", 0, &li->sku, errstr, errstr_size) <
            0 ||
        lp_json_get_str(item, path, "category", 0, &li->category, errstr,
                        errstr_size) < 0 ||
        lp_json_get_str(item, path, "brand", 0, &li->brand, errstr,
                        errstr_size) < 0 ||
        lp_json_get_int(item, path, "quantity", LP_JSON_REQUIRED, 1,
                        LP_MAX_QUANTITY, &n, errstr, errstr_size) < 0 ||
        lp_json_get_money(item, path, "unit_price", "unit_price_micros",
                          LP_JSON_REQUIRED, &li->unit_price_micros, errstr,
                          errstr_size) < 0)
      return -1;
    li->quantity = (int32_t)n;
  }
  return 0;
}

static int canonical_order(const json_t *root, struct lp_order_event *ev,
                           char *errstr, size_t errstr_size) {
  json_t *arr;
  if (lp_json_get_str(root, "", "event_id", LP_JSON_REQUIRED, &ev->event_id,
                      errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "shop", LP_JSON_REQUIRED, &ev->shop, errstr,
                      errstr_size) < 0 ||
      lp_json_get_id(root, "", "order_id", LP_JSON_REQUIRED, &ev->order_id,
                     errstr, errstr_size) < 0 ||
      lp_json_get_id(root, "", "customer_id", LP_JSON_REQUIRED,
                     &ev->customer_id, errstr, errstr_size) < 0 ||
      lp_json_get_time(root, "", "event_time", "event_time_ms",
                       LP_JSON_REQUIRED, &ev->event_time_ms, NULL, errstr,
                       errstr_size) < 0)
    goto fail;
  GET_ENUM(root, "status", LP_JSON_REQUIRED, lp_order_status_parse, &ev->status,
           "created, paid, cancelled, refunded");
  if (lp_json_get_str(root, "", "currency", LP_JSON_REQUIRED, &ev->currency,
                      errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "total", "total_micros", LP_JSON_REQUIRED,
                        &ev->total_micros, errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "subtotal", "subtotal_micros", 0,
                        &ev->subtotal_micros, errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "discount", "discount_micros", 0,
                        &ev->discount_micros, errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "tax", "tax_micros", 0, &ev->tax_micros,
                        errstr, errstr_size) < 0)
    goto fail;
  if (lp_json_get_array(root, "", "discount_codes", 0, LP_MAX_DISCOUNT_CODES,
                        "codes", &arr, errstr, errstr_size) < 0)
    goto fail;
  if (arr && json_array_size(arr) > 0) {
    ev->n_discount_codes = json_array_size(arr);
    ev->discount_codes = lp_xcalloc(ev->n_discount_codes, sizeof(char *));
    for (size_t i = 0; i < ev->n_discount_codes; i++)
      if (lp_json_array_string(arr, "discount_codes", i, &ev->discount_codes[i],
                               errstr, errstr_size) < 0)
        goto fail;
  }
  if (canonical_line_items(root, &ev->line_items, &ev->n_line_items, errstr,
                           errstr_size) < 0 ||
      lp_json_get_str(root, "", "source", 0, &ev->source, errstr, errstr_size) <
          0)
    goto fail;
  return 0;
fail:
  return -1;
}

static int canonical_customer(const json_t *root, struct lp_customer_event *ev,
                              char *errstr, size_t errstr_size) {
  json_t *arr;
  if (json_object_get(root, "order_id"))
    return lp_err(errstr, errstr_size,
                  "record: a canonical order event (has \"order_id\"), not a "
                  "customer event");
  if (lp_json_get_str(root, "", "event_id", LP_JSON_REQUIRED, &ev->event_id,
                      errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "shop", LP_JSON_REQUIRED, &ev->shop, errstr,
                      errstr_size) < 0 ||
      lp_json_get_id(root, "", "customer_id", LP_JSON_REQUIRED,
                     &ev->customer_id, errstr, errstr_size) < 0 ||
      lp_json_get_time(root, "", "event_time", "event_time_ms",
                       LP_JSON_REQUIRED, &ev->event_time_ms, NULL, errstr,
                       errstr_size) < 0)
    goto fail;
  GET_ENUM(root, "kind", LP_JSON_REQUIRED, lp_customer_kind_parse, &ev->kind,
           "created, updated");
  if (lp_json_get_str(root, "", "email_sha256", 0, &ev->email_sha256, errstr,
                      errstr_size) < 0)
    goto fail;
  GET_ENUM(root, "marketing_consent", 0, lp_consent_parse,
           &ev->marketing_consent, "unknown, subscribed, unsubscribed");
  if (lp_json_get_array(root, "", "tags", 0, LP_MAX_TAGS, "tags", &arr, errstr,
                        errstr_size) < 0)
    goto fail;
  if (arr && json_array_size(arr) > 0) {
    ev->n_tags = json_array_size(arr);
    ev->tags = lp_xcalloc(ev->n_tags, sizeof(char *));
    for (size_t i = 0; i < ev->n_tags; i++)
      if (lp_json_array_string(arr, "tags", i, &ev->tags[i], errstr,
                               errstr_size) < 0)
        goto fail;
  }
  if (lp_json_get_str(root, "", "birthday", 0, &ev->birthday, errstr,
                      errstr_size) < 0 ||
      lp_json_get_time(root, "", "customer_created", "customer_created_ms", 0,
                       &ev->customer_created_ms, NULL, errstr,
                       errstr_size) < 0 ||
      lp_json_get_str(root, "", "source", 0, &ev->source, errstr, errstr_size) <
          0)
    goto fail;
  return 0;
fail:
  return -1;
}

static int canonical_activity(const json_t *root, struct lp_activity_event *ev,
                              char *errstr, size_t errstr_size) {
  const char *kind;
  char q[64];
  long long rating = 0;
  int rc;
  if (lp_json_get_str(root, "", "event_id", LP_JSON_REQUIRED, &ev->event_id,
                      errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "shop", LP_JSON_REQUIRED, &ev->shop, errstr,
                      errstr_size) < 0 ||
      lp_json_get_id(root, "", "customer_id", LP_JSON_REQUIRED,
                     &ev->customer_id, errstr, errstr_size) < 0 ||
      lp_json_get_time(root, "", "event_time", "event_time_ms",
                       LP_JSON_REQUIRED, &ev->event_time_ms, NULL, errstr,
                       errstr_size) < 0 ||
      lp_json_get_raw_str(root, "", "kind", LP_JSON_REQUIRED, &kind, errstr,
                          errstr_size) < 0)
    return -1;
  if (lp_activity_kind_parse(kind, &ev->kind) != 0)
    return lp_err(errstr, errstr_size, "kind: unknown activity kind %s (%s)",
                  lp_json_quoted(kind, q, sizeof(q)), lp_activity_kind_list());
  if (lp_json_get_str(root, "", "url_path", 0, &ev->url_path, errstr,
                      errstr_size) < 0 ||
      lp_json_get_id(root, "", "product_id", 0, &ev->product_id, errstr,
                     errstr_size) < 0 ||
      lp_json_get_str(root, "", "sku", 0, &ev->sku, errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "category", 0, &ev->category, errstr,
                      errstr_size) < 0 ||
      lp_json_get_str(root, "", "brand", 0, &ev->brand, errstr, errstr_size) <
          0 ||
      lp_json_get_id(root, "", "cart_id", 0, &ev->cart_id, errstr,
                     errstr_size) < 0 ||
      lp_json_get_str(root, "", "currency", 0, &ev->currency, errstr,
                      errstr_size) < 0)
    return -1;
  rc = lp_json_get_money(root, "", "cart_value", "cart_value_micros", 0,
                         &ev->cart_value_micros, errstr, errstr_size);
  if (rc < 0)
    return -1;
  ev->has_cart_value = rc > 0;
  if (canonical_line_items(root, &ev->line_items, &ev->n_line_items, errstr,
                           errstr_size) < 0)
    return -1;
  /* Any int: the validator says what a rating may be, for every codec. */
  rc = lp_json_get_int(root, "", "rating", 0, INT32_MIN, INT32_MAX, &rating,
                       errstr, errstr_size);
  if (rc < 0)
    return -1;
  ev->has_rating = rc > 0;
  ev->rating = (int32_t)rating;
  if (lp_json_get_str(root, "", "referral_code", 0, &ev->referral_code, errstr,
                      errstr_size) < 0 ||
      lp_json_get_id(root, "", "referred_customer_id", 0,
                     &ev->referred_customer_id, errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "network", 0, &ev->network, errstr,
                      errstr_size) < 0 ||
      lp_json_get_str(root, "", "source", 0, &ev->source, errstr, errstr_size) <
          0)
    return -1;
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Shopify adapter                                                         */
/* ---------------------------------------------------------------------- */

static int shopify_shop(const struct lp_json_hints *hints, char **out,
                        char *errstr, size_t errstr_size) {
  const char *shop = lp_json_hint_value(hints->shop_domain);
  if (!shop)
    shop = lp_json_hint_value(hints->default_shop);
  if (!shop)
    return lp_err(errstr, errstr_size,
                  "shop: unknown (no X-Shopify-Shop-Domain header and no "
                  "default shop configured)");
  *out = lp_xstrdup(shop);
  return 0;
}

/* Event time from the first present candidate field; *raw is its string. */
static int first_time(const json_t *root, const char *const *candidates,
                      const char *fallback_hint, int64_t *out, const char **raw,
                      char *errstr, size_t errstr_size) {
  for (size_t i = 0; candidates[i]; i++) {
    int rc = lp_json_get_time(root, "", candidates[i], NULL, 0, out, raw,
                              errstr, errstr_size);
    if (rc != 0)
      return rc < 0 ? -1 : 0;
  }
  /* Last resort: X-Shopify-Triggered-At, when the body has no time. */
  if (fallback_hint && lp_time_parse_iso8601(fallback_hint, out) == 0) {
    *raw = fallback_hint;
    return 0;
  }
  return lp_err(errstr, errstr_size, "%s: required field missing",
                candidates[0]);
}

/* product_type (added by a bridge), else the first of "collections" (a
 * string, or an object with a "title"). */
static int shopify_category(const json_t *item, const char *path, char **out,
                            char *errstr, size_t errstr_size) {
  char sub[LP_JSON_PATH_MAX + 16];
  json_t *arr;
  int rc = lp_json_get_str(item, path, "product_type", LP_JSON_EMPTY_NULL, out,
                           errstr, errstr_size);
  if (rc != 0)
    return rc < 0 ? -1 : 0;
  if (lp_json_get_array(item, path, "collections", 0, SIZE_MAX, "collections",
                        &arr, errstr, errstr_size) < 0)
    return -1;
  if (!arr || json_array_size(arr) == 0)
    return 0;
  json_t *first = json_array_get(arr, 0);
  snprintf(sub, sizeof(sub), "%s.collections", path);
  if (json_is_object(first)) {
    char sub0[LP_JSON_PATH_MAX + 24];
    snprintf(sub0, sizeof(sub0), "%s[0]", sub);
    return lp_json_get_str(first, sub0, "title", LP_JSON_EMPTY_NULL, out,
                           errstr, errstr_size) < 0
               ? -1
               : 0;
  }
  return lp_json_array_string(arr, sub, 0, out, errstr, errstr_size) < 0 ? -1
                                                                         : 0;
}

static int shopify_order(const json_t *root, const struct lp_json_hints *hints,
                         struct lp_order_event *ev, char *errstr,
                         size_t errstr_size) {
  static const char *const created_times[] = {"created_at", NULL};
  static const char *const paid_times[] = {"processed_at", "updated_at", NULL};
  static const char *const cancelled_times[] = {"cancelled_at", "updated_at",
                                                NULL};
  static const char *const status_topics[] = {
      "orders/create", "orders/paid", "orders/cancelled", "refunds/create"};
  char path[LP_JSON_PATH_MAX], q[64];
  const char *topic = lp_json_hint_value(hints->shopify_topic);
  const char *raw_time = NULL, *s;
  json_t *customer, *arr;
  int have_status = 0;
  long long n;

  if (topic) {
    if (strcmp(topic, "refunds/create") == 0)
      return lp_err(errstr, errstr_size,
                    "x-shopify-topic: refunds/create is not supported here "
                    "(a Refund body names no customer; send it through the "
                    "bridge, which finds the order's customer)");
    if (strncmp(topic, "orders/", 7) != 0)
      return lp_err(errstr, errstr_size,
                    "x-shopify-topic: %s is not an order topic",
                    lp_json_quoted(topic, q, sizeof(q)));
    for (int i = 0; i <= LP_ORDER_CANCELLED; i++)
      if (strcmp(topic, status_topics[i]) == 0) {
        ev->status = (enum lp_order_status)i;
        have_status = 1;
      }
  }
  if (!json_object_get(root, "line_items") &&
      !json_object_get(root, "total_price"))
    return lp_err(errstr, errstr_size,
                  "record: not a Shopify Order (no \"total_price\" or "
                  "\"line_items\")");
  if (lp_json_get_id(root, "", "id", LP_JSON_REQUIRED, &ev->order_id, errstr,
                     errstr_size) < 0)
    goto fail;
  customer = json_object_get(root, "customer");
  if (!customer || json_is_null(customer)) {
    lp_err(errstr, errstr_size,
           "customer: missing (guest checkout orders cannot be attributed)");
    goto fail;
  }
  if (!json_is_object(customer)) {
    lp_err(errstr, errstr_size, "customer: expected object, got %s",
           lp_json_type_name(customer));
    goto fail;
  }
  if (lp_json_get_id(customer, "customer", "id", LP_JSON_REQUIRED,
                     &ev->customer_id, errstr, errstr_size) < 0 ||
      shopify_shop(hints, &ev->shop, errstr, errstr_size) < 0)
    goto fail;

  if (!have_status) {
    if (lp_json_get_raw_str(root, "", "cancelled_at", 0, &s, errstr,
                            errstr_size) < 0)
      goto fail;
    if (s) {
      ev->status = LP_ORDER_CANCELLED;
    } else {
      if (lp_json_get_raw_str(root, "", "financial_status", 0, &s, errstr,
                              errstr_size) < 0)
        goto fail;
      ev->status =
          s && strcmp(s, "paid") == 0 ? LP_ORDER_PAID : LP_ORDER_CREATED;
    }
  }
  const char *const *times = ev->status == LP_ORDER_PAID ? paid_times
                             : ev->status == LP_ORDER_CANCELLED
                                 ? cancelled_times
                                 : created_times;
  if (first_time(root, times, lp_json_hint_value(hints->triggered_at),
                 &ev->event_time_ms, &raw_time, errstr, errstr_size) < 0)
    goto fail;

  if (lp_json_get_str(root, "", "currency", LP_JSON_REQUIRED, &ev->currency,
                      errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "total_price", NULL, LP_JSON_REQUIRED,
                        &ev->total_micros, errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "subtotal_price", NULL, 0,
                        &ev->subtotal_micros, errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "total_discounts", NULL, 0,
                        &ev->discount_micros, errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "total_tax", NULL, 0, &ev->tax_micros, errstr,
                        errstr_size) < 0)
    goto fail;

  if (lp_json_get_array(root, "", "discount_codes", 0, LP_MAX_DISCOUNT_CODES,
                        "codes", &arr, errstr, errstr_size) < 0)
    goto fail;
  if (arr && json_array_size(arr) > 0) {
    ev->n_discount_codes = json_array_size(arr);
    ev->discount_codes = lp_xcalloc(ev->n_discount_codes, sizeof(char *));
    for (size_t i = 0; i < ev->n_discount_codes; i++) {
      json_t *dc;
      if (lp_json_array_object(arr, "discount_codes", i, path, sizeof(path),
                               &dc, errstr, errstr_size) < 0 ||
          lp_json_get_str(dc, path, "code", LP_JSON_REQUIRED,
                          &ev->discount_codes[i], errstr, errstr_size) < 0)
        goto fail;
    }
  }

  if (lp_json_get_array(root, "", "line_items", 0, LP_MAX_LINE_ITEMS, "items",
                        &arr, errstr, errstr_size) < 0)
    goto fail;
  if (arr && json_array_size(arr) > 0) {
    ev->n_line_items = json_array_size(arr);
    ev->line_items = lp_xcalloc(ev->n_line_items, sizeof(*ev->line_items));
    for (size_t i = 0; i < ev->n_line_items; i++) {
      struct lp_line_item *li = &ev->line_items[i];
      json_t *item;
      if (lp_json_array_object(arr, "line_items", i, path, sizeof(path), &item,
                               errstr, errstr_size) < 0 ||
          lp_json_get_id(item, path, "product_id", 0, &li->product_id, errstr,
                         errstr_size) < 0 ||
          lp_json_get_str(item, path, "sku", LP_JSON_EMPTY_NULL, &li->sku,
                          errstr, errstr_size) < 0 ||
          shopify_category(item, path, &li->category, errstr, errstr_size) <
              0 ||
          lp_json_get_str(item, path, "vendor", LP_JSON_EMPTY_NULL, &li->brand,
                          errstr, errstr_size) < 0 ||
          lp_json_get_int(item, path, "quantity", LP_JSON_REQUIRED, 1,
                          LP_MAX_QUANTITY, &n, errstr, errstr_size) < 0 ||
          lp_json_get_money(item, path, "price", NULL, LP_JSON_REQUIRED,
                            &li->unit_price_micros, errstr, errstr_size) < 0)
        goto fail;
      li->quantity = (int32_t)n;
    }
  }

  const char *event_id = lp_json_hint_value(hints->shopify_event_id);
  /* The header id is scoped by topic: whether one merchant action fires
   * several topics under one X-Shopify-Event-Id is unconfirmed, and an
   * orders/paid must not dedupe against its orders/create. */
  ev->event_id =
      event_id
          ? lp_xasprintf("shopify:%s:%s", status_topics[ev->status], event_id)
          : lp_xasprintf("shopify:%s:%s:%s", status_topics[ev->status],
                         ev->order_id, raw_time);
  ev->source = lp_xstrdup("shopify");
  return 0;
fail:
  return -1;
}

/* "vip, newsletter" -> ["vip", "newsletter"]: split on commas, trimmed,
 * empty pieces dropped. Count and length limits are left to validation
 * (memory is bounded by the input), which names the offending tag. */
static void split_tags(const char *s, struct lp_customer_event *ev) {
  size_t count = 1;
  for (const char *p = s; *p; p++)
    count += *p == ',';
  ev->tags = lp_xcalloc(count, sizeof(char *));
  const char *p = s;
  while (*p) {
    const char *end = strchr(p, ',');
    if (!end)
      end = p + strlen(p);
    const char *a = p, *b = end;
    while (a < b && isspace((unsigned char)*a))
      a++;
    while (b > a && isspace((unsigned char)b[-1]))
      b--;
    if (b > a)
      ev->tags[ev->n_tags++] = lp_xstrndup(a, (size_t)(b - a));
    p = *end ? end + 1 : end;
  }
}

/* Birthday: a "birthday" string a bridge added, else the metafield
 * {namespace "facts", key "birth_date"} in a "metafields" array. */
static int shopify_birthday(const json_t *root, char **out, char *errstr,
                            size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *arr;
  int rc = lp_json_get_str(root, "", "birthday", LP_JSON_EMPTY_NULL, out,
                           errstr, errstr_size);
  if (rc != 0)
    return rc < 0 ? -1 : 0;
  if (lp_json_get_array(root, "", "metafields", 0, SIZE_MAX, "metafields", &arr,
                        errstr, errstr_size) < 0)
    return -1;
  for (size_t i = 0; arr && i < json_array_size(arr); i++) {
    json_t *mf;
    const char *ns, *key;
    if (lp_json_array_object(arr, "metafields", i, path, sizeof(path), &mf,
                             errstr, errstr_size) < 0 ||
        lp_json_get_raw_str(mf, path, "namespace", 0, &ns, errstr,
                            errstr_size) < 0 ||
        lp_json_get_raw_str(mf, path, "key", 0, &key, errstr, errstr_size) < 0)
      return -1;
    if (ns && key && strcmp(ns, "facts") == 0 && strcmp(key, "birth_date") == 0)
      return lp_json_get_str(mf, path, "value", LP_JSON_EMPTY_NULL, out, errstr,
                             errstr_size) < 0
                 ? -1
                 : 0;
  }
  return 0;
}

/* email_marketing_consent.state, else deprecated accepts_marketing. */
static int shopify_consent(const json_t *root, enum lp_consent *out,
                           char *errstr, size_t errstr_size) {
  static const char *const refused[] = {"not_subscribed", "unsubscribed",
                                        "pending", "redacted", "invalid"};
  json_t *consent;
  const char *state = NULL;
  int accepts;
  *out = LP_CONSENT_UNKNOWN;
  if (lp_json_get_object(root, "", "email_marketing_consent", 0, &consent,
                         errstr, errstr_size) < 0 ||
      (consent &&
       lp_json_get_raw_str(consent, "email_marketing_consent", "state", 0,
                           &state, errstr, errstr_size) < 0))
    return -1;
  if (state) {
    if (strcmp(state, "subscribed") == 0)
      *out = LP_CONSENT_SUBSCRIBED;
    for (size_t i = 0; i < LP_ARRAY_LEN(refused); i++)
      if (strcmp(state, refused[i]) == 0)
        *out = LP_CONSENT_UNSUBSCRIBED;
    return 0;
  }
  int rc = lp_json_get_bool(root, "", "accepts_marketing", &accepts, errstr,
                            errstr_size);
  if (rc < 0)
    return -1;
  if (rc > 0)
    *out = accepts ? LP_CONSENT_SUBSCRIBED : LP_CONSENT_UNSUBSCRIBED;
  return 0;
}

static int shopify_customer(const json_t *root,
                            const struct lp_json_hints *hints,
                            struct lp_customer_event *ev, char *errstr,
                            size_t errstr_size) {
  static const char *const kind_topics[] = {"customers/create",
                                            "customers/update"};
  static const char *const times[] = {"updated_at", "created_at", NULL};
  const char *topic = lp_json_hint_value(hints->shopify_topic);
  const char *raw_time = NULL, *created_raw, *s;
  char q[64];
  json_t *tags;
  int have_kind = 0;

  if (topic) {
    if (strcmp(topic, "customers/delete") == 0)
      return lp_err(errstr, errstr_size,
                    "x-shopify-topic: customers/delete carries no customer "
                    "data to decode");
    if (strncmp(topic, "customers/", 10) != 0)
      return lp_err(errstr, errstr_size,
                    "x-shopify-topic: %s is not a customer topic",
                    lp_json_quoted(topic, q, sizeof(q)));
    for (int i = 0; i <= LP_CUSTOMER_UPDATED; i++)
      if (strcmp(topic, kind_topics[i]) == 0) {
        ev->kind = (enum lp_customer_kind)i;
        have_kind = 1;
      }
  }
  if (json_object_get(root, "line_items") ||
      json_object_get(root, "total_price"))
    return lp_err(errstr, errstr_size,
                  "record: a Shopify Order body, not a Customer");
  if (lp_json_get_id(root, "", "id", LP_JSON_REQUIRED, &ev->customer_id, errstr,
                     errstr_size) < 0 ||
      shopify_shop(hints, &ev->shop, errstr, errstr_size) < 0 ||
      lp_json_get_time(root, "", "created_at", NULL, 0,
                       &ev->customer_created_ms, &created_raw, errstr,
                       errstr_size) < 0 ||
      first_time(root, times, lp_json_hint_value(hints->triggered_at),
                 &ev->event_time_ms, &raw_time, errstr, errstr_size) < 0)
    goto fail;
  if (!have_kind)
    ev->kind = created_raw && ev->customer_created_ms == ev->event_time_ms
                   ? LP_CUSTOMER_CREATED
                   : LP_CUSTOMER_UPDATED;

  if (lp_json_get_raw_str(root, "", "email", 0, &s, errstr, errstr_size) < 0)
    goto fail;
  if (s)
    ev->email_sha256 = lp_json_email_hash(s);
  if (shopify_consent(root, &ev->marketing_consent, errstr, errstr_size) < 0)
    goto fail;

  tags = json_object_get(root, "tags");
  if (json_is_array(tags)) {
    if (lp_json_get_array(root, "", "tags", 0, LP_MAX_TAGS, "tags", &tags,
                          errstr, errstr_size) < 0)
      goto fail;
    ev->tags = lp_xcalloc(json_array_size(tags) + 1, sizeof(char *));
    for (size_t i = 0; i < json_array_size(tags); i++) {
      if (lp_json_array_string(tags, "tags", i, &ev->tags[i], errstr,
                               errstr_size) < 0)
        goto fail;
      ev->n_tags = i + 1;
    }
  } else if (tags && !json_is_null(tags)) {
    if (!json_is_string(tags)) {
      lp_err(errstr, errstr_size, "tags: expected string, got %s",
             lp_json_type_name(tags));
      goto fail;
    }
    split_tags(json_string_value(tags), ev);
  }
  if (shopify_birthday(root, &ev->birthday, errstr, errstr_size) < 0)
    goto fail;

  const char *event_id = lp_json_hint_value(hints->shopify_event_id);
  ev->event_id =
      event_id ? lp_xasprintf("shopify:%s:%s", kind_topics[ev->kind], event_id)
               : lp_xasprintf("shopify:%s:%s:%s", kind_topics[ev->kind],
                              ev->customer_id, raw_time);
  ev->source = lp_xstrdup("shopify");
  return 0;
fail:
  return -1;
}

/* ---------------------------------------------------------------------- */
/* Public decoders                                                         */
/* ---------------------------------------------------------------------- */

static const struct lp_json_hints no_hints;

int lp_json_decode_order(const void *data, size_t len,
                         const struct lp_json_hints *hints,
                         struct lp_order_event *out, char *errstr,
                         size_t errstr_size) {
  LP_ASSERT(out != NULL);
  json_t *root = lp_json_parse_object(data, len, errstr, errstr_size);
  if (!root)
    goto fail;
  int rc;
  if (json_object_get(root, "event_id"))
    rc = canonical_order(root, out, errstr, errstr_size);
  else if (json_object_get(root, "id"))
    rc = shopify_order(root, hints ? hints : &no_hints, out, errstr,
                       errstr_size);
  else
    rc = lp_err(errstr, errstr_size,
                "event_id: required field missing (and no \"id\": not a "
                "Shopify Order either)");
  if (rc != 0 || lp_order_event_validate(out, errstr, errstr_size) != 0)
    goto fail;
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  lp_order_event_clear(out);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

int lp_json_decode_customer(const void *data, size_t len,
                            const struct lp_json_hints *hints,
                            struct lp_customer_event *out, char *errstr,
                            size_t errstr_size) {
  LP_ASSERT(out != NULL);
  json_t *root = lp_json_parse_object(data, len, errstr, errstr_size);
  if (!root)
    goto fail;
  int rc;
  if (json_object_get(root, "event_id"))
    rc = canonical_customer(root, out, errstr, errstr_size);
  else if (json_object_get(root, "id"))
    rc = shopify_customer(root, hints ? hints : &no_hints, out, errstr,
                          errstr_size);
  else
    rc = lp_err(errstr, errstr_size,
                "event_id: required field missing (and no \"id\": not a "
                "Shopify Customer either)");
  if (rc != 0 || lp_customer_event_validate(out, errstr, errstr_size) != 0)
    goto fail;
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  lp_customer_event_clear(out);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

int lp_json_decode_activity(const void *data, size_t len,
                            struct lp_activity_event *out, char *errstr,
                            size_t errstr_size) {
  LP_ASSERT(out != NULL);
  json_t *root = lp_json_parse_object(data, len, errstr, errstr_size);
  if (!root || canonical_activity(root, out, errstr, errstr_size) != 0 ||
      lp_activity_event_validate(out, errstr, errstr_size) != 0)
    goto fail;
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  lp_activity_event_clear(out);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

/* ---------------------------------------------------------------------- */
/* Shopify refunds/create                                                  */
/* ---------------------------------------------------------------------- */

/* Refund lines and transactions a body may carry (Shopify has no stated
 * limit; a refund has at most one line per order line). */
#define MAX_REFUND_TRANSACTIONS 1000
#define MAX_REFUND_ADJUSTMENTS 1000

/* The Refund resource: the webhook body itself, or the "refund" object of
 * a REST GET .../refunds/<id>.json answer. */
static const json_t *refund_resource(const json_t *root) {
  const json_t *inner = json_object_get(root, "refund");
  if (json_is_object(inner) && !json_object_get(root, "order_id"))
    return inner;
  return root;
}

static int refund_shape(const json_t *r, char *errstr, size_t errstr_size) {
  if (!json_object_get(r, "refund_line_items") &&
      !json_object_get(r, "transactions"))
    return lp_err(errstr, errstr_size,
                  "record: not a Shopify Refund (no \"refund_line_items\" or "
                  "\"transactions\")");
  return 0;
}

int lp_json_shopify_refund_order_id(const void *data, size_t len,
                                    char *order_id, size_t order_id_size,
                                    char *errstr, size_t errstr_size) {
  LP_ASSERT(order_id != NULL && order_id_size > 0);
  char *id = NULL;
  order_id[0] = '\0';
  json_t *root = lp_json_parse_object(data, len, errstr, errstr_size);
  if (!root)
    goto fail;
  const json_t *r = refund_resource(root);
  if (refund_shape(r, errstr, errstr_size) < 0 ||
      lp_json_get_id(r, "", "order_id", LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL,
                     &id, errstr, errstr_size) < 0)
    goto fail;
  if (strlen(id) >= order_id_size) {
    lp_err(errstr, errstr_size,
           "order_id: %zu bytes do not fit the caller's %zu-byte buffer",
           strlen(id), order_id_size);
    goto fail;
  }
  memcpy(order_id, id, strlen(id) + 1);
  free(id);
  json_decref(root);
  return 0;
fail:
  free(id);
  json_decref(root);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

/* A refund amount: the exact shop-money string of "<key>_set" when
 * present, else "<key>" as a string or a number (refund lines carry
 * numbers in webhook bodies: "subtotal": 89.99). */
static int refund_money(const json_t *obj, const char *path, const char *key,
                        unsigned flags, int64_t *out, char *errstr,
                        size_t errstr_size) {
  char set_key[32], set_path[LP_JSON_PATH_MAX], shop_path[LP_JSON_PATH_MAX];
  json_t *set, *shop;
  snprintf(set_key, sizeof(set_key), "%s_set", key);
  lp_json_path_join(set_path, sizeof(set_path), path, set_key);
  lp_json_path_join(shop_path, sizeof(shop_path), set_path, "shop_money");
  if (lp_json_get_object(obj, path, set_key, 0, &set, errstr, errstr_size) <
          0 ||
      (set && lp_json_get_object(set, set_path, "shop_money", 0, &shop, errstr,
                                 errstr_size) < 0))
    return -1;
  if (set && shop)
    return lp_json_get_amount(shop, shop_path, "amount", LP_JSON_REQUIRED, out,
                              errstr, errstr_size);
  return lp_json_get_amount(obj, path, key, flags, out, errstr, errstr_size);
}

/* Sum of the successful refund transactions (kind "refund", status
 * "success" or none); *found says whether there was any. The currency of
 * the first one that names one goes to *currency (borrowed); the others
 * must agree. */
static int refund_transactions(const json_t *r, int64_t *sum, int *found,
                               const char **currency, char *errstr,
                               size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], q[64], q2[64];
  json_t *arr;
  *sum = 0;
  *found = 0;
  *currency = NULL;
  if (lp_json_get_array(r, "", "transactions", 0, MAX_REFUND_TRANSACTIONS,
                        "transactions", &arr, errstr, errstr_size) < 0)
    return -1;
  for (size_t i = 0; arr && i < json_array_size(arr); i++) {
    json_t *tx;
    const char *kind, *status, *cur;
    int64_t amount;
    if (lp_json_array_object(arr, "transactions", i, path, sizeof(path), &tx,
                             errstr, errstr_size) < 0 ||
        lp_json_get_raw_str(tx, path, "kind", 0, &kind, errstr, errstr_size) <
            0 ||
        lp_json_get_raw_str(tx, path, "status", 0, &status, errstr,
                            errstr_size) < 0)
      return -1;
    if (!kind || strcmp(kind, "refund") != 0 ||
        (status && strcmp(status, "success") != 0))
      continue; /* a failed or pending refund, or not a refund at all */
    if (lp_json_get_amount(tx, path, "amount", LP_JSON_REQUIRED, &amount,
                           errstr, errstr_size) < 0 ||
        lp_json_get_raw_str(tx, path, "currency", LP_JSON_EMPTY_NULL, &cur,
                            errstr, errstr_size) < 0)
      return -1;
    if (amount < 0)
      return lp_err(errstr, errstr_size, "%s.amount: must not be negative",
                    path);
    if (cur && *currency && strcmp(cur, *currency) != 0)
      return lp_err(errstr, errstr_size,
                    "%s.currency: %s differs from %s of an earlier refund "
                    "transaction",
                    path, lp_json_quoted(cur, q, sizeof(q)),
                    lp_json_quoted(*currency, q2, sizeof(q2)));
    if (cur && !*currency)
      *currency = cur;
    *sum += amount;
    if (*sum > LP_MAX_MONEY_MICROS)
      return lp_err(errstr, errstr_size,
                    "transactions: the refunds add up beyond the money range");
    *found = 1;
  }
  return 0;
}

/* refund_line_items -> line items (lines refunding a quantity), with the
 * sums of their subtotals and taxes. */
static int refund_lines(const json_t *r, struct lp_order_event *ev,
                        int64_t *subtotal, int64_t *tax, char *errstr,
                        size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], item_path[LP_JSON_PATH_MAX];
  json_t *arr;
  *subtotal = 0;
  *tax = 0;
  if (lp_json_get_array(r, "", "refund_line_items", 0, LP_MAX_LINE_ITEMS,
                        "items", &arr, errstr, errstr_size) < 0)
    return -1;
  if (!arr || json_array_size(arr) == 0)
    return 0;
  ev->line_items = lp_xcalloc(json_array_size(arr), sizeof(*ev->line_items));
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *line, *item;
    long long quantity;
    int64_t line_subtotal = 0, line_tax = 0, price = 0;
    int have_subtotal;
    if (lp_json_array_object(arr, "refund_line_items", i, path, sizeof(path),
                             &line, errstr, errstr_size) < 0 ||
        lp_json_get_int(line, path, "quantity", LP_JSON_REQUIRED, 0,
                        LP_MAX_QUANTITY, &quantity, errstr, errstr_size) < 0 ||
        (have_subtotal = refund_money(line, path, "subtotal", 0, &line_subtotal,
                                      errstr, errstr_size)) < 0 ||
        refund_money(line, path, "total_tax", 0, &line_tax, errstr,
                     errstr_size) < 0 ||
        lp_json_get_object(line, path, "line_item", 0, &item, errstr,
                           errstr_size) < 0)
      return -1;
    lp_json_path_join(item_path, sizeof(item_path), path, "line_item");
    if (!have_subtotal) {
      /* No subtotal: the line's list price times the quantity. */
      if (!item ||
          lp_json_get_money(item, item_path, "price", NULL, LP_JSON_REQUIRED,
                            &price, errstr, errstr_size) < 0) {
        if (!item)
          lp_err(errstr, errstr_size,
                 "%s.subtotal: required field missing (and no line_item "
                 "price)",
                 path);
        return -1;
      }
      if (quantity > 0 && price > LP_MAX_MONEY_MICROS / quantity)
        return lp_err(errstr, errstr_size, "%s.price: out of range", item_path);
      line_subtotal = price * (int64_t)quantity;
    }
    if (line_subtotal < 0 || line_tax < 0)
      return lp_err(errstr, errstr_size, "%s.%s: must not be negative", path,
                    line_subtotal < 0 ? "subtotal" : "total_tax");
    *subtotal += line_subtotal;
    *tax += line_tax;
    if (*subtotal > LP_MAX_MONEY_MICROS || *tax > LP_MAX_MONEY_MICROS)
      return lp_err(errstr, errstr_size,
                    "refund_line_items: the lines add up beyond the money "
                    "range");
    if (quantity == 0)
      continue; /* refunds money only (no goods): no line item */
    struct lp_line_item *li = &ev->line_items[ev->n_line_items++];
    li->quantity = (int32_t)quantity;
    /* Unit price of what was refunded, rounded to the micro-unit. */
    li->unit_price_micros = (line_subtotal + quantity / 2) / quantity;
    if (item && (lp_json_get_id(item, item_path, "product_id", 0,
                                &li->product_id, errstr, errstr_size) < 0 ||
                 lp_json_get_str(item, item_path, "sku", LP_JSON_EMPTY_NULL,
                                 &li->sku, errstr, errstr_size) < 0 ||
                 shopify_category(item, item_path, &li->category, errstr,
                                  errstr_size) < 0 ||
                 lp_json_get_str(item, item_path, "vendor", LP_JSON_EMPTY_NULL,
                                 &li->brand, errstr, errstr_size) < 0))
      return -1;
  }
  return 0;
}

/* What the order adjustments refund: Shopify writes them negative
 * ("amount": "-5.00" for a shipping refund), with a tax_amount of the
 * same sign, so the refunded amount is -(amount + tax_amount). */
static int refund_adjustments(const json_t *r, int64_t *sum, char *errstr,
                              size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *arr;
  *sum = 0;
  if (lp_json_get_array(r, "", "order_adjustments", 0, MAX_REFUND_ADJUSTMENTS,
                        "adjustments", &arr, errstr, errstr_size) < 0)
    return -1;
  for (size_t i = 0; arr && i < json_array_size(arr); i++) {
    json_t *adj;
    int64_t amount = 0, tax = 0;
    if (lp_json_array_object(arr, "order_adjustments", i, path, sizeof(path),
                             &adj, errstr, errstr_size) < 0 ||
        refund_money(adj, path, "amount", LP_JSON_REQUIRED, &amount, errstr,
                     errstr_size) < 0 ||
        refund_money(adj, path, "tax_amount", 0, &tax, errstr, errstr_size) < 0)
      return -1;
    *sum -= amount + tax;
    if (*sum > LP_MAX_MONEY_MICROS || *sum < -LP_MAX_MONEY_MICROS)
      return lp_err(errstr, errstr_size,
                    "order_adjustments: the adjustments add up beyond the "
                    "money range");
  }
  return 0;
}

static int shopify_refund(const json_t *r, const struct lp_json_hints *hints,
                          const char *customer_id, const char *currency,
                          struct lp_order_event *ev, char *errstr,
                          size_t errstr_size) {
  static const char *const times[] = {"processed_at", "created_at", NULL};
  const char *topic = lp_json_hint_value(hints->shopify_topic);
  const char *raw_time, *tx_currency;
  char *refund_id = NULL, q[64];
  int64_t tx_sum, lines_subtotal, lines_tax, adjustments;
  int have_tx;

  if (topic && strcmp(topic, "refunds/create") != 0)
    return lp_err(errstr, errstr_size,
                  "x-shopify-topic: %s is not refunds/create",
                  lp_json_quoted(topic, q, sizeof(q)));
  if (!customer_id || !*customer_id)
    return lp_err(errstr, errstr_size,
                  "customer_id: not given (a Refund names no customer; the "
                  "caller looks up its order)");
  if (refund_shape(r, errstr, errstr_size) < 0 ||
      lp_json_get_id(r, "", "id", LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL,
                     &refund_id, errstr, errstr_size) < 0 ||
      lp_json_get_id(r, "", "order_id", LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL,
                     &ev->order_id, errstr, errstr_size) < 0 ||
      shopify_shop(hints, &ev->shop, errstr, errstr_size) < 0 ||
      first_time(r, times, lp_json_hint_value(hints->triggered_at),
                 &ev->event_time_ms, &raw_time, errstr, errstr_size) < 0 ||
      refund_transactions(r, &tx_sum, &have_tx, &tx_currency, errstr,
                          errstr_size) < 0 ||
      refund_lines(r, ev, &lines_subtotal, &lines_tax, errstr, errstr_size) <
          0 ||
      refund_adjustments(r, &adjustments, errstr, errstr_size) < 0)
    goto fail;
  ev->customer_id = lp_xstrdup(customer_id);
  ev->status = LP_ORDER_REFUNDED;
  ev->subtotal_micros = lines_subtotal;
  ev->tax_micros = lines_tax;
  if (have_tx) {
    ev->total_micros = tx_sum;
  } else {
    ev->total_micros = lines_subtotal + lines_tax + adjustments;
    if (ev->total_micros < 0) {
      lp_err(errstr, errstr_size,
             "order_adjustments: the refund adds up to a negative amount "
             "(no refund transaction to take the amount from)");
      goto fail;
    }
  }
  if (tx_currency)
    ev->currency = lp_xstrdup(tx_currency);
  else if (currency && *currency)
    ev->currency = lp_xstrdup(currency);
  else {
    lp_err(errstr, errstr_size,
           "currency: unknown (no refund transaction names one and the "
           "caller gave none)");
    goto fail;
  }
  const char *event_id = lp_json_hint_value(hints->shopify_event_id);
  ev->event_id = lp_xasprintf("shopify:refunds/create:%s",
                              event_id ? event_id : refund_id);
  ev->source = lp_xstrdup("shopify");
  free(refund_id);
  return 0;
fail:
  free(refund_id);
  return -1;
}

int lp_json_decode_shopify_refund(const void *data, size_t len,
                                  const struct lp_json_hints *hints,
                                  const char *customer_id, const char *currency,
                                  struct lp_order_event *out, char *errstr,
                                  size_t errstr_size) {
  LP_ASSERT(out != NULL);
  json_t *root = lp_json_parse_object(data, len, errstr, errstr_size);
  if (!root ||
      shopify_refund(refund_resource(root), hints ? hints : &no_hints,
                     customer_id, currency, out, errstr, errstr_size) != 0 ||
      lp_order_event_validate(out, errstr, errstr_size) != 0)
    goto fail;
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  lp_order_event_clear(out);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

static int decode_action(const json_t *a, struct lp_action *act, char *errstr,
                         size_t errstr_size) {
  const char *name;
  char q[64], path[LP_JSON_PATH_MAX];
  json_t *arr;
  long long n;
  int rc = lp_json_get_raw_str(a, "action", "kind", LP_JSON_REQUIRED, &name,
                               errstr, errstr_size);
  if (rc < 0)
    return -1;
  if (lp_action_kind_parse(name, &act->kind) != 0)
    return lp_err(errstr, errstr_size,
                  "action.kind: unknown value %s (expected points, reward, "
                  "discount_code, tier_change, message, score_sync)",
                  lp_json_quoted(name, q, sizeof(q)));
  if ((rc = lp_json_get_int(a, "action", "points", 0, LLONG_MIN, LLONG_MAX, &n,
                            errstr, errstr_size)) < 0)
    return -1;
  if (rc > 0)
    act->points = n;
  if (lp_json_get_str(a, "action", "reward_id", 0, &act->reward_id, errstr,
                      errstr_size) < 0 ||
      (rc = lp_json_get_int(a, "action", "discount_percent", 0, 0, 100, &n,
                            errstr, errstr_size)) < 0)
    return -1;
  if (rc > 0)
    act->discount_percent = (int32_t)n;
  if (lp_json_get_money(
          a, "action", "discount_amount", "discount_amount_micros", 0,
          &act->discount_amount_micros, errstr, errstr_size) < 0 ||
      lp_json_get_str(a, "action", "tier", 0, &act->tier, errstr, errstr_size) <
          0 ||
      lp_json_get_str(a, "action", "template_id", 0, &act->template_id, errstr,
                      errstr_size) < 0 ||
      lp_json_get_str(a, "action", "channel", 0, &act->channel, errstr,
                      errstr_size) < 0 ||
      lp_json_get_str(a, "action", "brand", 0, &act->brand, errstr,
                      errstr_size) < 0 ||
      lp_json_get_str(a, "action", "category", 0, &act->category, errstr,
                      errstr_size) < 0 ||
      lp_json_get_array(a, "action", "attributes", 0, MAX_ACTION_ATTRIBUTES,
                        "attributes", &arr, errstr, errstr_size) < 0)
    return -1;
  if (arr && json_array_size(arr) > 0) {
    /* Owned by act from here, so its clear frees partial work. */
    act->n_attributes = json_array_size(arr);
    act->attributes = lp_xcalloc(act->n_attributes, sizeof(*act->attributes));
    for (size_t i = 0; i < act->n_attributes; i++) {
      json_t *at;
      if (lp_json_array_object(arr, "action.attributes", i, path, sizeof(path),
                               &at, errstr, errstr_size) < 0 ||
          lp_json_get_str(at, path, "name", LP_JSON_REQUIRED,
                          &act->attributes[i].name, errstr, errstr_size) < 0 ||
          lp_json_get_str(at, path, "value", 0, &act->attributes[i].value,
                          errstr, errstr_size) < 0)
        return -1;
    }
  }
  return 0;
}

static int decode_explanation(const json_t *e, struct lp_explanation *ex,
                              char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *arr;
  long long n;
  int rc;
  if (lp_json_get_str(e, "explanation", "rule_id", 0, &ex->rule_id, errstr,
                      errstr_size) < 0 ||
      (rc = lp_json_get_int(e, "explanation", "rule_version", 0, INT32_MIN,
                            INT32_MAX, &n, errstr, errstr_size)) < 0)
    return -1;
  if (rc > 0)
    ex->rule_version = (int32_t)n;
  if (lp_json_get_str(e, "explanation", "model_version", 0, &ex->model_version,
                      errstr, errstr_size) < 0 ||
      lp_json_get_str(e, "explanation", "summary", 0, &ex->summary, errstr,
                      errstr_size) < 0 ||
      lp_json_get_array(e, "explanation", "features", 0, SIZE_MAX, "features",
                        &arr, errstr, errstr_size) < 0)
    return -1;
  if (arr && json_array_size(arr) > 0) {
    ex->n_features = json_array_size(arr);
    ex->features = lp_xcalloc(ex->n_features, sizeof(*ex->features));
    for (size_t i = 0; i < ex->n_features; i++) {
      json_t *f;
      if (lp_json_array_object(arr, "explanation.features", i, path,
                               sizeof(path), &f, errstr, errstr_size) < 0 ||
          lp_json_get_str(f, path, "name", LP_JSON_REQUIRED,
                          &ex->features[i].name, errstr, errstr_size) < 0 ||
          lp_json_get_str(f, path, "value", 0, &ex->features[i].value, errstr,
                          errstr_size) < 0)
        return -1;
    }
  }
  return 0;
}

int lp_json_decode_decision(const void *data, size_t len,
                            struct lp_reward_decision *out, char *errstr,
                            size_t errstr_size) {
  LP_ASSERT(out != NULL);
  struct lp_reward_decision *d = out;
  json_t *a, *e;
  long long n;
  int rc;
  json_t *root = lp_json_parse_object(data, len, errstr, errstr_size);
  if (!root)
    goto fail;
  if (lp_json_get_str(root, "", "decision_id", LP_JSON_REQUIRED,
                      &d->decision_id, errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "shop", LP_JSON_REQUIRED, &d->shop, errstr,
                      errstr_size) < 0 ||
      lp_json_get_id(root, "", "customer_id", LP_JSON_REQUIRED, &d->customer_id,
                     errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "trigger_event_id", LP_JSON_REQUIRED,
                      &d->trigger_event_id, errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "trigger_kind", 0, &d->trigger_kind, errstr,
                      errstr_size) < 0 ||
      lp_json_get_str(root, "", "rule_id", LP_JSON_REQUIRED, &d->rule_id,
                      errstr, errstr_size) < 0 ||
      (rc = lp_json_get_int(root, "", "rule_version", 0, INT32_MIN, INT32_MAX,
                            &n, errstr, errstr_size)) < 0)
    goto fail;
  if (rc > 0)
    d->rule_version = (int32_t)n;
  if (lp_json_get_object(root, "", "action", LP_JSON_REQUIRED, &a, errstr,
                         errstr_size) < 0 ||
      decode_action(a, &d->action, errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "estimated_cost", "estimated_cost_micros", 0,
                        &d->estimated_cost_micros, errstr, errstr_size) < 0 ||
      lp_json_get_str(root, "", "currency", 0, &d->currency, errstr,
                      errstr_size) < 0 ||
      lp_json_get_time(root, "", "event_time", "event_time_ms",
                       LP_JSON_REQUIRED, &d->event_time_ms, NULL, errstr,
                       errstr_size) < 0)
    goto fail;
  GET_ENUM(root, "approval", 0, lp_approval_hint_parse, &d->approval,
           "none, recommended, required");
  if (lp_json_get_object(root, "", "explanation", 0, &e, errstr, errstr_size) <
          0 ||
      (e && decode_explanation(e, &d->explanation, errstr, errstr_size) < 0))
    goto fail;
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  lp_reward_decision_clear(out);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

/* ---------------------------------------------------------------------- */
/* Canonical encoders: a small hand-written writer, so key order, number   */
/* formatting and escaping are fixed by this file alone.                   */
/* ---------------------------------------------------------------------- */

/* A comma unless this is the first member/element of the current
 * object/array (the last byte written is then its opening bracket). */
static void w_sep(struct lp_buf *b) {
  if (b->len > 0 && b->data[b->len - 1] != '{' && b->data[b->len - 1] != '[')
    lp_buf_append_byte(b, ',');
}

/* A JSON string literal; invalid UTF-8 bytes become U+FFFD. */
static void w_string(struct lp_buf *b, const char *s) {
  size_t len = strlen(s), i = 0;
  lp_buf_append_byte(b, '"');
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      lp_buf_append_byte(b, '\\');
      lp_buf_append_byte(b, c);
      i++;
    } else if (c < 0x20) {
      switch (c) {
      case '\n':
        lp_buf_append_str(b, "\\n");
        break;
      case '\r':
        lp_buf_append_str(b, "\\r");
        break;
      case '\t':
        lp_buf_append_str(b, "\\t");
        break;
      case '\b':
        lp_buf_append_str(b, "\\b");
        break;
      case '\f':
        lp_buf_append_str(b, "\\f");
        break;
      default:
        lp_buf_appendf(b, "\\u%04x", c);
      }
      i++;
    } else if (c < 0x80) {
      lp_buf_append_byte(b, c);
      i++;
    } else {
      size_t n = lp_json_utf8_char_len(s + i, len - i);
      if (n == 0) {
        lp_buf_append_str(b, "\xEF\xBF\xBD");
        i++;
      } else {
        lp_buf_append(b, s + i, n);
        i += n;
      }
    }
  }
  lp_buf_append_byte(b, '"');
}

static void w_key(struct lp_buf *b, const char *key) {
  w_sep(b);
  w_string(b, key);
  lp_buf_append_byte(b, ':');
}

static void w_str(struct lp_buf *b, const char *key, const char *s) {
  w_key(b, key);
  if (s)
    w_string(b, s);
  else
    lp_buf_append_str(b, "null");
}

static void w_int(struct lp_buf *b, const char *key, long long v) {
  w_key(b, key);
  lp_buf_appendf(b, "%lld", v);
}

static void w_money(struct lp_buf *b, const char *key, int64_t micros) {
  char s[48];
  lp_money_format(micros, s, sizeof(s));
  w_key(b, key);
  w_string(b, s);
}

/* Times outside years 0000..9999 have no RFC 3339 form: null (validated
 * records are always within 2000..2200). */
static void w_time(struct lp_buf *b, const char *key, int64_t ms) {
  char s[48];
  w_key(b, key);
  if (ms < -62167219200000LL || ms > 253402300799999LL) {
    lp_buf_append_str(b, "null");
    return;
  }
  lp_time_format_iso8601(ms, s, sizeof(s));
  w_string(b, s);
}

static void w_base64(struct lp_buf *b, const char *key, const uint8_t *data,
                     size_t len) {
  static const char tbl[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  w_key(b, key);
  if (!data) {
    lp_buf_append_str(b, "null");
    return;
  }
  lp_buf_reserve(b, (len + 2) / 3 * 4 + 2);
  lp_buf_append_byte(b, '"');
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)data[i + 1] << 8;
    if (i + 2 < len)
      v |= data[i + 2];
    lp_buf_append_byte(b, (uint8_t)tbl[(v >> 18) & 63]);
    lp_buf_append_byte(b, (uint8_t)tbl[(v >> 12) & 63]);
    lp_buf_append_byte(b, i + 1 < len ? (uint8_t)tbl[(v >> 6) & 63] : '=');
    lp_buf_append_byte(b, i + 2 < len ? (uint8_t)tbl[v & 63] : '=');
  }
  lp_buf_append_byte(b, '"');
}

static void w_line_items(struct lp_buf *out, const struct lp_line_item *items,
                         size_t n) {
  w_key(out, "line_items");
  lp_buf_append_byte(out, '[');
  for (size_t i = 0; i < n; i++) {
    const struct lp_line_item *li = &items[i];
    w_sep(out);
    lp_buf_append_byte(out, '{');
    w_str(out, "product_id", li->product_id);
    w_str(out, "sku", li->sku);
    w_str(out, "category", li->category);
    w_str(out, "brand", li->brand);
    w_int(out, "quantity", li->quantity);
    w_money(out, "unit_price", li->unit_price_micros);
    lp_buf_append_byte(out, '}');
  }
  lp_buf_append_byte(out, ']');
}

void lp_json_encode_order(const struct lp_order_event *ev, struct lp_buf *out) {
  LP_ASSERT(ev != NULL && out != NULL);
  lp_buf_append_byte(out, '{');
  w_str(out, "event_id", ev->event_id);
  w_str(out, "shop", ev->shop);
  w_str(out, "order_id", ev->order_id);
  w_str(out, "customer_id", ev->customer_id);
  w_time(out, "event_time", ev->event_time_ms);
  w_str(out, "status", lp_order_status_name(ev->status));
  w_str(out, "currency", ev->currency);
  w_money(out, "total", ev->total_micros);
  w_money(out, "subtotal", ev->subtotal_micros);
  w_money(out, "discount", ev->discount_micros);
  w_money(out, "tax", ev->tax_micros);
  w_key(out, "discount_codes");
  lp_buf_append_byte(out, '[');
  for (size_t i = 0; i < ev->n_discount_codes; i++) {
    w_sep(out);
    w_string(out, ev->discount_codes[i] ? ev->discount_codes[i] : "");
  }
  lp_buf_append_byte(out, ']');
  w_line_items(out, ev->line_items, ev->n_line_items);
  w_str(out, "source", ev->source);
  lp_buf_append_byte(out, '}');
}

void lp_json_encode_customer(const struct lp_customer_event *ev,
                             struct lp_buf *out) {
  LP_ASSERT(ev != NULL && out != NULL);
  lp_buf_append_byte(out, '{');
  w_str(out, "event_id", ev->event_id);
  w_str(out, "shop", ev->shop);
  w_str(out, "customer_id", ev->customer_id);
  w_time(out, "event_time", ev->event_time_ms);
  w_str(out, "kind", lp_customer_kind_name(ev->kind));
  w_str(out, "email_sha256", ev->email_sha256);
  w_str(out, "marketing_consent", lp_consent_name(ev->marketing_consent));
  w_key(out, "tags");
  lp_buf_append_byte(out, '[');
  for (size_t i = 0; i < ev->n_tags; i++) {
    w_sep(out);
    w_string(out, ev->tags[i] ? ev->tags[i] : "");
  }
  lp_buf_append_byte(out, ']');
  w_str(out, "birthday", ev->birthday);
  if (ev->customer_created_ms)
    w_time(out, "customer_created", ev->customer_created_ms);
  else
    w_str(out, "customer_created", NULL);
  w_str(out, "source", ev->source);
  lp_buf_append_byte(out, '}');
}

void lp_json_encode_activity(const struct lp_activity_event *ev,
                             struct lp_buf *out) {
  LP_ASSERT(ev != NULL && out != NULL);
  lp_buf_append_byte(out, '{');
  w_str(out, "event_id", ev->event_id);
  w_str(out, "shop", ev->shop);
  w_str(out, "customer_id", ev->customer_id);
  w_time(out, "event_time", ev->event_time_ms);
  w_str(out, "kind", lp_activity_kind_name(ev->kind));
  w_str(out, "url_path", ev->url_path);
  w_str(out, "product_id", ev->product_id);
  w_str(out, "sku", ev->sku);
  w_str(out, "category", ev->category);
  w_str(out, "brand", ev->brand);
  w_str(out, "cart_id", ev->cart_id);
  w_str(out, "currency", ev->currency);
  if (ev->has_cart_value)
    w_money(out, "cart_value", ev->cart_value_micros);
  else
    w_str(out, "cart_value", NULL);
  w_line_items(out, ev->line_items, ev->n_line_items);
  if (ev->has_rating)
    w_int(out, "rating", ev->rating);
  else
    w_str(out, "rating", NULL);
  w_str(out, "referral_code", ev->referral_code);
  w_str(out, "referred_customer_id", ev->referred_customer_id);
  w_str(out, "network", ev->network);
  w_str(out, "source", ev->source);
  lp_buf_append_byte(out, '}');
}

void lp_json_encode_decision(const struct lp_reward_decision *d,
                             struct lp_buf *out) {
  LP_ASSERT(d != NULL && out != NULL);
  const struct lp_action *a = &d->action;
  const struct lp_explanation *e = &d->explanation;
  lp_buf_append_byte(out, '{');
  w_str(out, "decision_id", d->decision_id);
  w_str(out, "shop", d->shop);
  w_str(out, "customer_id", d->customer_id);
  w_str(out, "trigger_event_id", d->trigger_event_id);
  w_str(out, "trigger_kind", d->trigger_kind);
  w_str(out, "rule_id", d->rule_id);
  w_int(out, "rule_version", d->rule_version);
  w_key(out, "action");
  lp_buf_append_byte(out, '{');
  w_str(out, "kind", lp_action_kind_name(a->kind));
  w_int(out, "points", a->points);
  w_str(out, "reward_id", a->reward_id);
  w_int(out, "discount_percent", a->discount_percent);
  w_money(out, "discount_amount", a->discount_amount_micros);
  w_str(out, "tier", a->tier);
  w_str(out, "template_id", a->template_id);
  w_str(out, "channel", a->channel);
  w_str(out, "brand", a->brand);
  w_str(out, "category", a->category);
  w_key(out, "attributes");
  lp_buf_append_byte(out, '[');
  for (size_t i = 0; i < a->n_attributes; i++) {
    w_sep(out);
    lp_buf_append_byte(out, '{');
    w_str(out, "name", a->attributes[i].name);
    w_str(out, "value", a->attributes[i].value);
    lp_buf_append_byte(out, '}');
  }
  lp_buf_append_byte(out, ']');
  lp_buf_append_byte(out, '}');
  w_money(out, "estimated_cost", d->estimated_cost_micros);
  w_str(out, "currency", d->currency);
  w_time(out, "event_time", d->event_time_ms);
  w_str(out, "approval", lp_approval_hint_name(d->approval));
  w_key(out, "explanation");
  lp_buf_append_byte(out, '{');
  w_str(out, "rule_id", e->rule_id);
  w_int(out, "rule_version", e->rule_version);
  w_str(out, "model_version", e->model_version);
  w_str(out, "summary", e->summary);
  w_key(out, "features");
  lp_buf_append_byte(out, '[');
  for (size_t i = 0; i < e->n_features; i++) {
    w_sep(out);
    lp_buf_append_byte(out, '{');
    w_str(out, "name", e->features[i].name);
    w_str(out, "value", e->features[i].value);
    lp_buf_append_byte(out, '}');
  }
  lp_buf_append_byte(out, ']');
  lp_buf_append_byte(out, '}');
  lp_buf_append_byte(out, '}');
}

void lp_json_encode_dead_letter(const struct lp_dead_letter *dl,
                                struct lp_buf *out) {
  LP_ASSERT(dl != NULL && out != NULL);
  LP_ASSERT(dl->original != NULL || dl->original_len == 0);
  LP_ASSERT(dl->source_key != NULL || dl->source_key_len == 0);
  lp_buf_append_byte(out, '{');
  w_str(out, "source_topic", dl->source_topic);
  w_int(out, "source_partition", dl->source_partition);
  w_int(out, "source_offset", dl->source_offset);
  w_base64(out, "source_key_base64", dl->source_key, dl->source_key_len);
  w_base64(out, "original_base64",
           dl->original ? dl->original : (const uint8_t *)"", dl->original_len);
  w_str(out, "processor", dl->processor);
  w_str(out, "reason", dl->reason);
  w_str(out, "field", dl->field);
  w_time(out, "time", dl->time_ms);
  lp_buf_append_byte(out, '}');
}

void lp_json_encode_action_result(const struct lp_action_result *r,
                                  struct lp_buf *out) {
  LP_ASSERT(r != NULL && out != NULL);
  lp_buf_append_byte(out, '{');
  w_str(out, "decision_id", r->decision_id);
  w_str(out, "shop", r->shop);
  w_str(out, "customer_id", r->customer_id);
  w_str(out, "trigger_event_id", r->trigger_event_id);
  w_str(out, "rule_id", r->rule_id);
  w_int(out, "rule_version", r->rule_version);
  w_str(out, "model_version", r->model_version);
  w_str(out, "action_kind", lp_action_kind_name(r->action_kind));
  w_str(out, "platform", r->platform);
  w_str(out, "outcome", lp_action_outcome_name(r->outcome));
  w_str(out, "guardrail", r->guardrail);
  w_str(out, "request_summary", r->request_summary);
  w_int(out, "http_status", r->http_status);
  w_str(out, "platform_reference", r->platform_reference);
  w_int(out, "attempts", r->attempts);
  w_int(out, "latency_ms", r->latency_ms);
  w_str(out, "reason", r->reason);
  w_str(out, "actor", r->actor);
  w_time(out, "event_time", r->event_time_ms);
  w_time(out, "time", r->time_ms);
  /* Appended after time, as in the schema: readers keyed by name (jq)
   * are unaffected. */
  w_str(out, "copy_source", r->copy_source);
  w_str(out, "copy_model", r->copy_model);
  w_str(out, "copy_prompt", r->copy_prompt);
  w_str(out, "copy_output", r->copy_output);
  w_str(out, "copy_note", r->copy_note);
  lp_buf_append_byte(out, '}');
}
