/*
 * bigcommerce.c — BigCommerce webhook callbacks, v2 orders with their
 * products, v3 customers and v3 refunds mapped to the canonical events (see
 * bigcommerce.h for the mapping and the status table). Pure functions over
 * the bytes the caller fetched; every field is read through json_util.h,
 * so errors name the field path and no input crashes a decoder.
 */
#include "bigcommerce.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_util.h"
#include "util.h"

/* Refunds one refunds answer may list (BigCommerce pages them). */
#define MAX_REFUNDS 10000

/* Canonical status and lower-case name of each BigCommerce status_id. */
static const struct {
  const char *name;
  enum lp_order_status status;
} bc_statuses[] = {
    {"incomplete", LP_ORDER_CREATED},
    {"pending", LP_ORDER_CREATED},
    {"shipped", LP_ORDER_PAID},
    {"partially_shipped", LP_ORDER_PAID},
    {"refunded", LP_ORDER_REFUNDED},
    {"cancelled", LP_ORDER_CANCELLED},
    {"declined", LP_ORDER_CANCELLED},
    {"awaiting_payment", LP_ORDER_CREATED},
    {"awaiting_pickup", LP_ORDER_PAID},
    {"awaiting_shipment", LP_ORDER_PAID},
    {"completed", LP_ORDER_PAID},
    {"awaiting_fulfillment", LP_ORDER_PAID},
    {"manual_verification_required", LP_ORDER_CREATED},
    {"disputed", LP_ORDER_CREATED},
    {"partially_refunded", LP_ORDER_REFUNDED},
};

#define BC_STATUS_REFUNDED 4

const char *lp_bigcommerce_status_name(long long status_id) {
  if (status_id < 0 || status_id >= (long long)LP_ARRAY_LEN(bc_statuses))
    return NULL;
  return bc_statuses[status_id].name;
}

/* A store hash goes into shop names and event ids: letters, digits, '-'
 * and '_' only, so it can never smuggle a ':' separator in. */
static int store_hash_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
      return 0;
  return 1;
}

static int hints_store(const struct lp_bc_hints *h, char *errstr,
                       size_t errstr_size) {
  char q[64];
  if (!h || !h->store_hash || !*h->store_hash)
    return lp_err(errstr, errstr_size,
                  "store_hash: not given (the webhook's producer or the "
                  "import's store names it)");
  if (!store_hash_ok(h->store_hash))
    return lp_err(errstr, errstr_size,
                  "store_hash: %s is not a store hash (letters, digits, - "
                  "and _, at most 63)",
                  lp_json_quoted(h->store_hash, q, sizeof(q)));
  return 0;
}

static char *bc_shop(const struct lp_bc_hints *h) {
  if (h->default_shop && *h->default_shop)
    return lp_xstrdup(h->default_shop);
  return lp_xasprintf("bc-%s", h->store_hash);
}

/* ---- times -------------------------------------------------------------- */

/* RFC 2822 ("Tue, 20 Nov 2012 00:00:00 +0000", the weekday optional, a
 * zone of +hhmm/-hhmm, GMT, UT, UTC or Z) -> epoch ms; 0 or -1. The
 * weekday is not checked against the date. */
static int rfc2822_parse(const char *s, int64_t *ms) {
  static const char months[12][4] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
  const char *p = s;
  int day = 0, month = -1, year = 0, hh = 0, mm = 0, ss = 0, n;
  int zone_sign = 1, zone_h = 0, zone_m = 0;
  if (isalpha((unsigned char)p[0])) {
    /* Weekday: three letters and a comma. */
    if (!isalpha((unsigned char)p[1]) || !isalpha((unsigned char)p[2]) ||
        p[3] != ',')
      return -1;
    p += 4;
  }
  while (*p == ' ')
    p++;
  for (n = 0; n < 2 && isdigit((unsigned char)*p); n++)
    day = day * 10 + (*p++ - '0');
  if (n == 0 || *p != ' ')
    return -1;
  while (*p == ' ')
    p++;
  for (int i = 0; i < 12; i++)
    if (strncasecmp(p, months[i], 3) == 0)
      month = i + 1;
  if (month < 0 || p[3] != ' ')
    return -1;
  p += 3;
  while (*p == ' ')
    p++;
  for (n = 0; n < 4 && isdigit((unsigned char)*p); n++)
    year = year * 10 + (*p++ - '0');
  if (n != 4 || *p != ' ')
    return -1;
  while (*p == ' ')
    p++;
  if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) ||
      p[2] != ':' || !isdigit((unsigned char)p[3]) ||
      !isdigit((unsigned char)p[4]))
    return -1;
  hh = (p[0] - '0') * 10 + (p[1] - '0');
  mm = (p[3] - '0') * 10 + (p[4] - '0');
  p += 5;
  if (*p == ':') {
    if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
      return -1;
    ss = (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
  }
  if (*p != ' ')
    return -1;
  while (*p == ' ')
    p++;
  if (*p == '+' || *p == '-') {
    zone_sign = *p == '-' ? -1 : 1;
    for (int i = 1; i <= 4; i++)
      if (!isdigit((unsigned char)p[i]))
        return -1;
    zone_h = (p[1] - '0') * 10 + (p[2] - '0');
    zone_m = (p[3] - '0') * 10 + (p[4] - '0');
    p += 5;
  } else if (strcmp(p, "GMT") == 0 || strcmp(p, "UTC") == 0) {
    p += 3;
  } else if (strcmp(p, "UT") == 0) {
    p += 2;
  } else if (strcmp(p, "Z") == 0) {
    p += 1;
  } else {
    return -1;
  }
  if (*p != '\0')
    return -1;
  /* The ISO 8601 parser checks the ranges and does the calendar. */
  char iso[64];
  snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", year,
           month, day, hh, mm, ss, zone_sign < 0 ? '-' : '+', zone_h, zone_m);
  return lp_time_parse_iso8601(iso, ms);
}

/* A time field as RFC 2822 (v2) or RFC 3339 (v3); "" reads as absent. */
static int bc_time(const json_t *obj, const char *prefix, const char *key,
                   unsigned flags, int64_t *ms, const char **raw, char *errstr,
                   size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], q[64];
  const char *s;
  int rc = lp_json_get_raw_str(obj, prefix, key, flags | LP_JSON_EMPTY_NULL, &s,
                               errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (lp_time_parse_iso8601(s, ms) != 0 && rfc2822_parse(s, ms) != 0) {
    lp_json_path_join(path, sizeof(path), prefix, key);
    return lp_err(errstr, errstr_size,
                  "%s: not an RFC 2822 or RFC 3339 timestamp: %s", path,
                  lp_json_quoted(s, q, sizeof(q)));
  }
  if (raw)
    *raw = s;
  return 1;
}

/* An id that BigCommerce writes as 0 when there is none (product_id of a
 * custom line): NULL then. */
static int bc_optional_id(const json_t *obj, const char *prefix,
                          const char *key, char **out, char *errstr,
                          size_t errstr_size) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_integer(v) && json_integer_value(v) == 0)
    return 0;
  return lp_json_get_id(obj, prefix, key, LP_JSON_EMPTY_NULL, out, errstr,
                        errstr_size);
}

/* ---- orders --------------------------------------------------------------
 */

/* The order's line items from the products array (a JSON array). */
static int bc_products(const json_t *arr, const char *order_id,
                       long long status_id, struct lp_order_event *ev,
                       char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  if (json_array_size(arr) > LP_MAX_LINE_ITEMS)
    return lp_err(errstr, errstr_size,
                  "products: %zu items exceed the limit of %d",
                  json_array_size(arr), LP_MAX_LINE_ITEMS);
  if (json_array_size(arr) == 0)
    return 0;
  ev->line_items = lp_xcalloc(json_array_size(arr), sizeof(*ev->line_items));
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *p;
    char *line_order = NULL;
    long long quantity, refunded = 0;
    int64_t unit;
    int have_refunded;
    if (lp_json_array_object(arr, "products", i, path, sizeof(path), &p, errstr,
                             errstr_size) < 0 ||
        lp_json_get_id(p, path, "order_id", 0, &line_order, errstr,
                       errstr_size) < 0)
      return -1;
    if (line_order && strcmp(line_order, order_id) != 0) {
      lp_err(errstr, errstr_size,
             "%s.order_id: %.32s is not this order's id %.32s", path,
             line_order, order_id);
      free(line_order);
      return -1;
    }
    free(line_order);
    if (lp_json_get_int(p, path, "quantity", LP_JSON_REQUIRED, 0,
                        LP_MAX_QUANTITY, &quantity, errstr, errstr_size) < 0 ||
        (have_refunded = lp_json_get_int(p, path, "quantity_refunded", 0, 0,
                                         LP_MAX_QUANTITY, &refunded, errstr,
                                         errstr_size)) < 0 ||
        lp_json_get_money(p, path, "price_inc_tax", NULL, LP_JSON_REQUIRED,
                          &unit, errstr, errstr_size) < 0)
      return -1;
    if (unit < 0)
      return lp_err(errstr, errstr_size,
                    "%s.price_inc_tax: must not be "
                    "negative",
                    path);
    if (ev->status == LP_ORDER_REFUNDED) {
      /* Only the refunded lines, when known. */
      if (have_refunded)
        quantity = refunded < quantity ? refunded : quantity;
      else if (status_id != BC_STATUS_REFUNDED)
        quantity = 0;
    }
    if (quantity == 0)
      continue;
    struct lp_line_item *li = &ev->line_items[ev->n_line_items++];
    li->quantity = (int32_t)quantity;
    li->unit_price_micros = unit;
    if (bc_optional_id(p, path, "product_id", &li->product_id, errstr,
                       errstr_size) < 0 ||
        lp_json_get_str(p, path, "sku", LP_JSON_EMPTY_NULL, &li->sku, errstr,
                        errstr_size) < 0 ||
        lp_json_get_str(p, path, "brand", LP_JSON_EMPTY_NULL, &li->brand,
                        errstr, errstr_size) < 0 ||
        lp_json_get_str(p, path, "category", LP_JSON_EMPTY_NULL, &li->category,
                        errstr, errstr_size) < 0)
      return -1;
  }
  return 0;
}

static int bc_order(const json_t *root, const json_t *products,
                    const struct lp_bc_hints *h, struct lp_order_event *ev,
                    char *errstr, size_t errstr_size) {
  char q[64];
  long long customer, status_id;
  int64_t discount = 0, coupon = 0;
  const char *raw_time = NULL;
  int rc;

  if (h->scope && strncmp(h->scope, "store/order/", 12) != 0)
    return lp_err(errstr, errstr_size, "scope: %s is not an order scope",
                  lp_json_quoted(h->scope, q, sizeof(q)));
  if (json_object_get(root, "data") && !json_object_get(root, "status_id"))
    return lp_err(errstr, errstr_size,
                  "record: a webhook callback or a v3 list, not a v2 order "
                  "(no \"status_id\")");
  if (lp_json_get_id(root, "", "id", LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL,
                     &ev->order_id, errstr, errstr_size) < 0 ||
      lp_json_get_int(root, "", "customer_id", LP_JSON_REQUIRED, 0, INT64_MAX,
                      &customer, errstr, errstr_size) < 0)
    return -1;
  if (customer == 0)
    return lp_err(errstr, errstr_size,
                  "customer_id: 0 is a guest checkout; nothing to attribute");
  ev->customer_id = lp_xasprintf("%lld", customer);
  if (lp_json_get_int(root, "", "status_id", LP_JSON_REQUIRED, 0, INT32_MAX,
                      &status_id, errstr, errstr_size) < 0)
    return -1;

  int created_scope = h->scope && !strcmp(h->scope, "store/order/created");
  int refund_scope =
      h->scope && !strcmp(h->scope, "store/order/refund/created");
  int by_scope = created_scope || refund_scope;
  if (by_scope)
    ev->status = created_scope ? LP_ORDER_CREATED : LP_ORDER_REFUNDED;
  else if (lp_bigcommerce_status_name(status_id))
    ev->status = bc_statuses[status_id].status;
  else
    ev->status = LP_ORDER_CREATED;

  if (ev->status != LP_ORDER_CREATED &&
      (rc = bc_time(root, "", "date_modified", 0, &ev->event_time_ms, &raw_time,
                    errstr, errstr_size)) != 0) {
    if (rc < 0)
      return -1;
  } else if ((rc = bc_time(root, "", "date_created", 0, &ev->event_time_ms,
                           &raw_time, errstr, errstr_size)) < 0) {
    return -1;
  } else if (rc == 0) {
    if (h->webhook_created_s <= 0)
      return lp_err(errstr, errstr_size,
                    "date_created: required field missing (and no webhook "
                    "created_at)");
    ev->event_time_ms = h->webhook_created_s * 1000;
  }

  if (lp_json_get_str(root, "", "currency_code",
                      LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL, &ev->currency,
                      errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "subtotal_ex_tax", NULL, 0,
                        &ev->subtotal_micros, errstr, errstr_size) < 0 ||
      lp_json_get_money(root, "", "discount_amount", NULL, 0, &discount, errstr,
                        errstr_size) < 0 ||
      lp_json_get_money(root, "", "coupon_discount", NULL, 0, &coupon, errstr,
                        errstr_size) < 0 ||
      lp_json_get_money(root, "", "total_tax", NULL, 0, &ev->tax_micros, errstr,
                        errstr_size) < 0)
    return -1;
  ev->discount_micros = discount + coupon; /* each within the money range */
  if (ev->status == LP_ORDER_REFUNDED) {
    if (lp_json_get_money(root, "", "refunded_amount", NULL, LP_JSON_REQUIRED,
                          &ev->total_micros, errstr, errstr_size) < 0)
      return -1;
  } else if (lp_json_get_money(root, "", "total_inc_tax", NULL,
                               LP_JSON_REQUIRED, &ev->total_micros, errstr,
                               errstr_size) < 0) {
    return -1;
  }

  if (products && bc_products(products, ev->order_id, status_id, ev, errstr,
                              errstr_size) < 0)
    return -1;

  ev->shop = bc_shop(h);
  if (h->hash && *h->hash) {
    ev->event_id = lp_xasprintf("bigcommerce:%s:%s", h->store_hash, h->hash);
  } else {
    /* When the scope decided the status, its name: the created event of
     * an import must not share the id of the cancelled event that follows
     * it for the same, since-cancelled order. */
    const char *name = by_scope ? lp_order_status_name(ev->status)
                                : lp_bigcommerce_status_name(status_id);
    ev->event_id = name ? lp_xasprintf("bigcommerce:%s:order:%s:%s",
                                       h->store_hash, ev->order_id, name)
                        : lp_xasprintf("bigcommerce:%s:order:%s:status_%lld",
                                       h->store_hash, ev->order_id, status_id);
  }
  ev->source = lp_xstrdup("bigcommerce");
  return 0;
}

int lp_bigcommerce_decode_order(const void *order_json, size_t order_len,
                                const void *products_json, size_t products_len,
                                const struct lp_bc_hints *h,
                                struct lp_order_event *out, char *errstr,
                                size_t errstr_size) {
  LP_ASSERT(out != NULL);
  json_t *root = NULL, *products = NULL;
  char sub[256];
  if (hints_store(h, errstr, errstr_size) < 0)
    goto fail;
  root = lp_json_parse_object(order_json, order_len, errstr, errstr_size);
  if (!root)
    goto fail;
  if (products_json && products_len > 0) {
    products = lp_json_parse(products_json, products_len, sub, sizeof(sub));
    if (!products) {
      lp_err(errstr, errstr_size, "products: %s", sub);
      goto fail;
    }
    if (!json_is_array(products)) {
      lp_err(errstr, errstr_size, "products: expected array, got %s",
             lp_json_type_name(products));
      goto fail;
    }
  }
  if (bc_order(root, products, h, out, errstr, errstr_size) != 0 ||
      lp_order_event_validate(out, errstr, errstr_size) != 0)
    goto fail;
  json_decref(products);
  json_decref(root);
  return 0;
fail:
  json_decref(products);
  json_decref(root);
  lp_order_event_clear(out);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

/* ---- refunds ------------------------------------------------------------- */

int lp_bigcommerce_refund_total(const void *refunds_json, size_t len,
                                const char *refund_id, int64_t *micros,
                                char *errstr, size_t errstr_size) {
  LP_ASSERT(micros != NULL);
  char path[LP_JSON_PATH_MAX], q[64];
  json_t *data;
  int found = 0;
  json_t *root = NULL;
  if (!refund_id || !*refund_id) {
    lp_err(errstr, errstr_size, "refund_id: not given");
    goto fail;
  }
  root = lp_json_parse_object(refunds_json, len, errstr, errstr_size);
  if (!root ||
      lp_json_get_array(root, "", "data", LP_JSON_REQUIRED, MAX_REFUNDS,
                        "refunds", &data, errstr, errstr_size) < 0)
    goto fail;
  for (size_t i = 0; i < json_array_size(data) && !found; i++) {
    json_t *r;
    char *id = NULL;
    if (lp_json_array_object(data, "data", i, path, sizeof(path), &r, errstr,
                             errstr_size) < 0 ||
        lp_json_get_id(r, path, "id", LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL,
                       &id, errstr, errstr_size) < 0)
      goto fail;
    found = strcmp(id, refund_id) == 0;
    free(id);
    if (found && lp_json_get_amount(r, path, "total_amount", LP_JSON_REQUIRED,
                                    micros, errstr, errstr_size) < 0)
      goto fail;
    if (found && *micros < 0) {
      lp_err(errstr, errstr_size, "%s.total_amount: must not be negative",
             path);
      goto fail;
    }
  }
  if (!found) {
    lp_err(errstr, errstr_size, "data: no refund with id %s (%zu listed)",
           lp_json_quoted(refund_id, q, sizeof(q)), json_array_size(data));
    goto fail;
  }
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

/* ---- customers ----------------------------------------------------------- */

static int bc_customer(const json_t *c, const char *prefix,
                       const struct lp_bc_hints *h,
                       struct lp_customer_event *ev, char *errstr,
                       size_t errstr_size) {
  char q[64];
  const char *raw_modified = NULL, *raw_created = NULL, *email;
  int64_t modified = 0;
  int rc, flag;

  if (h->scope) {
    if (strcmp(h->scope, "store/customer/deleted") == 0)
      return lp_err(errstr, errstr_size,
                    "scope: store/customer/deleted carries no customer data "
                    "to decode");
    if (strncmp(h->scope, "store/customer/", 15) != 0)
      return lp_err(errstr, errstr_size, "scope: %s is not a customer scope",
                    lp_json_quoted(h->scope, q, sizeof(q)));
  }
  if (json_object_get(c, "status_id") || json_object_get(c, "total_inc_tax"))
    return lp_err(errstr, errstr_size,
                  "record: a BigCommerce order, not a customer");
  if (lp_json_get_id(c, prefix, "id", LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL,
                     &ev->customer_id, errstr, errstr_size) < 0 ||
      bc_time(c, prefix, "date_created", 0, &ev->customer_created_ms,
              &raw_created, errstr, errstr_size) < 0 ||
      (rc = bc_time(c, prefix, "date_modified", 0, &modified, &raw_modified,
                    errstr, errstr_size)) < 0)
    return -1;
  ev->kind = h->scope && strcmp(h->scope, "store/customer/created") == 0
                 ? LP_CUSTOMER_CREATED
                 : LP_CUSTOMER_UPDATED;
  if (ev->kind == LP_CUSTOMER_UPDATED && raw_modified)
    ev->event_time_ms = modified;
  else if (raw_created)
    ev->event_time_ms = ev->customer_created_ms;
  else if (raw_modified)
    ev->event_time_ms = modified;
  else if (h->webhook_created_s > 0)
    ev->event_time_ms = h->webhook_created_s * 1000;
  else
    return lp_err(errstr, errstr_size,
                  "date_modified: required field missing (and no "
                  "date_created or webhook created_at)");

  if (lp_json_get_raw_str(c, prefix, "email", 0, &email, errstr, errstr_size) <
      0)
    return -1;
  if (email)
    ev->email_sha256 = lp_json_email_hash(email);
  if ((rc = lp_json_get_bool(c, prefix, "accepts_marketing", &flag, errstr,
                             errstr_size)) == 0)
    rc = lp_json_get_bool(c, prefix,
                          "accepts_product_review_abandoned_cart_emails", &flag,
                          errstr, errstr_size);
  if (rc < 0)
    return -1;
  ev->marketing_consent = rc == 0 ? LP_CONSENT_UNKNOWN
                          : flag  ? LP_CONSENT_SUBSCRIBED
                                  : LP_CONSENT_UNSUBSCRIBED;

  ev->shop = bc_shop(h);
  if (h->hash && *h->hash)
    ev->event_id = lp_xasprintf("bigcommerce:%s:%s", h->store_hash, h->hash);
  else
    ev->event_id = lp_xasprintf("bigcommerce:%s:customer:%s:%s", h->store_hash,
                                ev->customer_id,
                                raw_modified  ? raw_modified
                                : raw_created ? raw_created
                                              : "-");
  ev->source = lp_xstrdup("bigcommerce");
  return 0;
}

int lp_bigcommerce_decode_customer(const void *json, size_t len,
                                   const struct lp_bc_hints *h,
                                   struct lp_customer_event *out, char *errstr,
                                   size_t errstr_size) {
  LP_ASSERT(out != NULL);
  json_t *root = NULL, *data;
  const json_t *c;
  const char *prefix = "";
  if (hints_store(h, errstr, errstr_size) < 0)
    goto fail;
  root = lp_json_parse_object(json, len, errstr, errstr_size);
  if (!root)
    goto fail;
  c = root;
  data = json_object_get(root, "data");
  if (json_is_array(data)) {
    /* A whole /v3/customers?id:in=N answer: exactly one customer. */
    if (json_array_size(data) != 1) {
      lp_err(errstr, errstr_size,
             "data: %zu customers listed (one element expected)",
             json_array_size(data));
      goto fail;
    }
    c = json_array_get(data, 0);
    prefix = "data[0]";
    if (!json_is_object(c)) {
      lp_err(errstr, errstr_size, "data[0]: expected object, got %s",
             lp_json_type_name(c));
      goto fail;
    }
  }
  if (bc_customer(c, prefix, h, out, errstr, errstr_size) != 0 ||
      lp_customer_event_validate(out, errstr, errstr_size) != 0)
    goto fail;
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  lp_customer_event_clear(out);
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}

/* ---- webhook callbacks --------------------------------------------------- */

/* A required string field copied into a fixed buffer; too long is an
 * error. */
static int copy_field(const json_t *obj, const char *prefix, const char *key,
                      char *out, size_t out_size, char *errstr,
                      size_t errstr_size) {
  const char *s;
  if (lp_json_get_raw_str(obj, prefix, key,
                          LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL, &s, errstr,
                          errstr_size) < 0)
    return -1;
  if (strlen(s) >= out_size) {
    char path[LP_JSON_PATH_MAX];
    lp_json_path_join(path, sizeof(path), prefix, key);
    return lp_err(errstr, errstr_size, "%s: %zu bytes exceed the limit of %zu",
                  path, strlen(s), out_size - 1);
  }
  memcpy(out, s, strlen(s) + 1);
  return 0;
}

/* A positive id given as an integer or as a string of digits. */
static int id_number(const json_t *obj, const char *prefix, const char *key,
                     long long *out, char *errstr, size_t errstr_size) {
  char *text = NULL, *end;
  if (lp_json_get_id(obj, prefix, key, LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL,
                     &text, errstr, errstr_size) < 0)
    return -1;
  errno = 0;
  long long n = strtoll(text, &end, 10);
  int ok =
      isdigit((unsigned char)text[0]) && *end == '\0' && errno == 0 && n > 0;
  free(text);
  if (!ok) {
    char path[LP_JSON_PATH_MAX];
    lp_json_path_join(path, sizeof(path), prefix, key);
    return lp_err(errstr, errstr_size, "%s: not a positive integer id", path);
  }
  *out = n;
  return 0;
}

int lp_bigcommerce_webhook_parse(const void *body, size_t len,
                                 struct lp_bc_webhook *out, char *errstr,
                                 size_t errstr_size) {
  LP_ASSERT(out != NULL);
  char producer[128], q[64];
  json_t *data, *refund;
  long long created;
  memset(out, 0, sizeof(*out));
  json_t *root = lp_json_parse_object(body, len, errstr, errstr_size);
  if (!root ||
      copy_field(root, "", "scope", out->scope, sizeof(out->scope), errstr,
                 errstr_size) < 0 ||
      copy_field(root, "", "producer", producer, sizeof(producer), errstr,
                 errstr_size) < 0)
    goto fail;
  if (strncmp(out->scope, "store/", 6) != 0) {
    lp_err(errstr, errstr_size, "scope: %s is not a store/... scope",
           lp_json_quoted(out->scope, q, sizeof(q)));
    goto fail;
  }
  if (strncmp(producer, "stores/", 7) != 0 || !store_hash_ok(producer + 7)) {
    lp_err(errstr, errstr_size, "producer: %s is not \"stores/<store hash>\"",
           lp_json_quoted(producer, q, sizeof(q)));
    goto fail;
  }
  memcpy(out->store_hash, producer + 7, strlen(producer + 7) + 1);
  if (copy_field(root, "", "hash", out->hash, sizeof(out->hash), errstr,
                 errstr_size) < 0)
    goto fail;
  for (const char *p = out->hash; *p; p++)
    if (!isalnum((unsigned char)*p)) {
      lp_err(errstr, errstr_size, "hash: %s is not a hex digest",
             lp_json_quoted(out->hash, q, sizeof(q)));
      goto fail;
    }
  if (lp_json_get_int(root, "", "created_at", LP_JSON_REQUIRED, 0,
                      INT64_MAX / 1000, &created, errstr, errstr_size) < 0 ||
      lp_json_get_object(root, "", "data", LP_JSON_REQUIRED, &data, errstr,
                         errstr_size) < 0 ||
      copy_field(data, "data", "type", out->type, sizeof(out->type), errstr,
                 errstr_size) < 0 ||
      id_number(data, "data", "id", &out->id, errstr, errstr_size) < 0 ||
      lp_json_get_object(data, "data", "refund", 0, &refund, errstr,
                         errstr_size) < 0)
    goto fail;
  out->created_at = created;
  if (refund) {
    long long refund_id;
    if (id_number(refund, "data.refund", "refund_id", &refund_id, errstr,
                  errstr_size) < 0)
      goto fail;
    snprintf(out->refund_id, sizeof(out->refund_id), "%lld", refund_id);
  } else if (strcmp(out->scope, "store/order/refund/created") == 0) {
    lp_err(errstr, errstr_size,
           "data.refund: required field missing (scope "
           "store/order/refund/created)");
    goto fail;
  }
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  memset(out, 0, sizeof(*out));
  lp_json_errstr_fix_utf8(errstr, errstr_size);
  return -1;
}
