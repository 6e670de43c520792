/*
 * bigcommerce.h — BigCommerce bodies (shared reference apis.md section 6)
 * mapped to the canonical events, as pure functions (Jansson, no I/O):
 * the ids-only webhook callback, a v2 order with its v2 products, a v3
 * customer, and the v3 refunds list that prices a refund/created webhook.
 * The caller (bridge, importer) does the fetching.
 *
 * Order status (the webhook scope first, then the order's status_id):
 *
 *   scope store/order/created            -> created
 *   scope store/order/refund/created     -> refunded
 *   status_id 5 Cancelled, 6 Declined    -> cancelled
 *   status_id 4 Refunded,
 *            14 Partially Refunded       -> refunded
 *   status_id 2 Shipped, 3 Partially Shipped, 8 Awaiting Pickup,
 *             9 Awaiting Shipment, 10 Completed,
 *            11 Awaiting Fulfillment     -> paid
 *   anything else (0 Incomplete, 1 Pending, 7 Awaiting Payment,
 *             12 Manual Verification Required, 13 Disputed, ...)
 *                                        -> created
 *
 * A refunded event's total is the order's refunded_amount (cumulative, as
 * BigCommerce keeps it). For a refund/created webhook the caller replaces
 * total_micros with lp_bigcommerce_refund_total's amount of that one
 * refund, so the event refunds exactly it. Its line items are the lines
 * with a quantity_refunded > 0 (that quantity) when the products carry the
 * field, else every line of a fully refunded order (status 4), else none.
 *
 * Field mapping: customer_id (0 = guest: an error, nothing to attribute);
 * money strings with 4 decimals ("35.6300") -> micro-units: total_inc_tax
 * -> total, subtotal_ex_tax -> subtotal, discount_amount + coupon_discount
 * -> discount, total_tax -> tax; currency_code; times are RFC 2822 in v2
 * ("Tue, 20 Nov 2012 00:00:00 +0000") and RFC 3339 in v3, both accepted:
 * event time = date_created for created, else date_modified (else
 * date_created, else the webhook's created_at). Products: quantity,
 * price_inc_tax (unit price), product_id (0 = a custom line: none), sku,
 * and "brand" / "category" when present (the real API has neither: they
 * need the catalog API; the sandbox adds them). The billing email is not
 * read (orders carry no personal data).
 *
 * Ids: shop = "bc-<store_hash>" unless default_shop is set; event id =
 * "bigcommerce:<store_hash>:<hash>" for a webhook (its body hash is the
 * documented duplicate key), else (imports)
 * "bigcommerce:<store_hash>:order:<id>:<status>" with <status> "created"
 * (or "refunded") when the scope decided the status, else the status_id's
 * name in lower case ("awaiting_fulfillment", so a renamed status label
 * changes nothing; a partial and a full refund are two events), and
 * "bigcommerce:<store_hash>:customer:<id>:<date_modified>" for customers.
 * source "bigcommerce".
 *
 * Consent: v3 customers have no accepts_marketing field; the documented
 * accepts_product_review_abandoned_cart_emails (product review and
 * abandoned cart emails) is read as the email consent, an explicit
 * "accepts_marketing" boolean wins when present; else unknown. Newsletter
 * subscriptions live in a separate API (/v3/customers/subscribers), not
 * read here.
 *
 * Errors: -1 with "<field path>: <reason>" in errstr ("products[2].sku:
 * expected string, got integer"); no input crashes a decoder.
 */
#ifndef LP_BIGCOMMERCE_H
#define LP_BIGCOMMERCE_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

/* Context of a body (all strings borrowed; NULL when absent). */
struct lp_bc_hints {
  const char *store_hash;    /* required; shop = "bc-<store_hash>" unless */
  const char *default_shop;  /* ... this is set */
  const char *scope;         /* webhook scope, or NULL for imports */
  const char *hash;          /* webhook body hash, or NULL */
  int64_t webhook_created_s; /* webhook created_at; 0 = unknown */
};

/* The ids-only webhook callback, validated. */
struct lp_bc_webhook {
  char scope[96];       /* "store/order/created" ... */
  char store_hash[64];  /* from producer "stores/<hash>" */
  char type[32];        /* data.type: "order", "customer" ... */
  long long id;         /* data.id (> 0) */
  char hash[96];        /* the duplicate key */
  long long created_at; /* Unix seconds */
  char refund_id[64];   /* data.refund.refund_id as decimal text, or "" */
};

/*
 * One /v2/orders/{id} body and its /v2/orders/{id}/products array
 * (products_json NULL / products_len 0 = no line items) -> an order event.
 * out must be zeroed; it is validated; on error it is left cleared.
 */
int lp_bigcommerce_decode_order(const void *order_json, size_t order_len,
                                const void *products_json, size_t products_len,
                                const struct lp_bc_hints *h,
                                struct lp_order_event *out, char *errstr,
                                size_t errstr_size);

/*
 * The amount of refund refund_id in a /v3/orders/{id}/payment_actions/
 * refunds answer ({"data": [{id, order_id, total_amount, created}, ...]};
 * total_amount a number or a decimal string) into *micros. -1 when the
 * body is malformed or lists no such refund.
 */
int lp_bigcommerce_refund_total(const void *refunds_json, size_t len,
                                const char *refund_id, int64_t *micros,
                                char *errstr, size_t errstr_size);

/*
 * One element of /v3/customers data[] (or a whole answer listing exactly
 * one) -> a customer event: created for scope store/customer/created, else
 * updated; email hashed, never kept; customer_created = date_created.
 */
int lp_bigcommerce_decode_customer(const void *json, size_t len,
                                   const struct lp_bc_hints *h,
                                   struct lp_customer_event *out, char *errstr,
                                   size_t errstr_size);

/*
 * Validates a webhook callback body into *out (zeroed first): scope
 * ("store/..."), producer "stores/<hash>", data {type, id}, hash,
 * created_at, and data.refund.refund_id (required for
 * store/order/refund/created). Strings that do not fit their field are
 * errors, not truncated.
 */
int lp_bigcommerce_webhook_parse(const void *body, size_t len,
                                 struct lp_bc_webhook *out, char *errstr,
                                 size_t errstr_size);

/* The status_id's name in lower case ("awaiting_fulfillment"), NULL for
 * an id BigCommerce does not define. */
const char *lp_bigcommerce_status_name(long long status_id);

#endif
