/*
 * json_codec.h — JSON forms of the records (Jansson):
 *
 * 1. Canonical JSON (orders, customers, activity events, decisions ...):
 *    the same fields and names as schemas/<name>.avsc, money as decimal
 *    strings ("404.95"), times as RFC 3339 strings, enums as their symbol
 *    names. Encoders are deterministic (fixed key order), so equal
 *    records give equal bytes.
 * 2. Shopify webhook bodies as a bridge forwards them unchanged:
 *    orders/create, orders/paid, orders/cancelled (Order resource) and
 *    customers/create, customers/update (Customer resource), shapes per
 *    shared reference apis.md §5. vendor -> brand; product_type (when the
 *    bridge enriched the line item) or the first collection -> category.
 *    The raw email is hashed (SHA-256 of the trimmed, lower-cased address)
 *    and never kept.
 *
 * A decoder tells the two apart by content (canonical records carry
 * "event_id"; Shopify bodies carry a numeric "id"). Kafka headers forwarded
 * by a bridge refine a Shopify body (hints below); without them the status
 * is inferred from the body (cancelled_at set -> cancelled; financial_status
 * paid -> paid; else created) and the event id is derived deterministically
 * from the resource id, the status and the status's stable timestamp
 * (created_at / processed_at / cancelled_at; updated_at for customers), so a
 * redelivered body dedupes. With an X-Shopify-Event-Id header the id is
 * "shopify:<topic>:<header>". The order decoder rejects refunds/create
 * bodies: a Refund names no customer, so it is decoded by
 * lp_json_decode_shopify_refund with the customer and currency its order
 * gives (lp_json_shopify_refund_order_id reads which order that is).
 */
#ifndef LP_JSON_CODEC_H
#define LP_JSON_CODEC_H

#include <stddef.h>

#include "events.h"
#include "util.h"

/* Optional context from the Kafka record's headers (all borrowed, NULL when
 * absent): x-shopify-topic, x-shopify-event-id, x-shopify-shop-domain,
 * x-shopify-triggered-at. default_shop is used when no shop is known. */
struct lp_json_hints {
  const char *shopify_topic;
  const char *shopify_event_id;
  const char *shop_domain;
  const char *triggered_at;
  const char *default_shop;
};

/* Decoders: out must be zeroed/cleared; on error left cleared; errstr says
 * "json: ..." for syntax (with line:column) or "<field path>: <reason>". The
 * result is validated with lp_*_event_validate. hints may be NULL. */
int lp_json_decode_order(const void *data, size_t len,
                         const struct lp_json_hints *hints,
                         struct lp_order_event *out, char *errstr,
                         size_t errstr_size);
int lp_json_decode_customer(const void *data, size_t len,
                            const struct lp_json_hints *hints,
                            struct lp_customer_event *out, char *errstr,
                            size_t errstr_size);
/*
 * Shopify refunds/create (the Refund resource, or a REST {"refund": {...}}
 * answer): which order it refunds, as decimal text into order_id (0, or -1
 * with errstr, also when it does not fit order_id_size).
 */
int lp_json_shopify_refund_order_id(const void *data, size_t len,
                                    char *order_id, size_t order_id_size,
                                    char *errstr, size_t errstr_size);
/*
 * A Refund -> a refunded order event of exactly this refund:
 * - customer_id (required) and currency (used when no refund transaction
 *   names one) come from the caller, who looked up the order; order_id is
 *   the body's order_id, so it matches the order's own events.
 * - total = the sum of the transactions with kind "refund" and status
 *   "success" (or no status); without such transactions, the refund lines'
 *   subtotal + total_tax plus what the order_adjustments refund (Shopify
 *   writes those negative: a "-5.00" shipping refund refunds 5.00).
 *   subtotal / tax = the lines' subtotals / taxes; discount 0.
 * - line items = the refund lines with a quantity > 0: quantity, unit price
 *   = subtotal / quantity (rounded to the micro-unit), brand =
 *   line_item.vendor, category = line_item.product_type (or its first
 *   collection), product_id, sku. Amounts are read from "<x>_set.shop_money"
 *   when present, else from "<x>" as a string or a number.
 * - event time: processed_at, else created_at, else the triggered-at hint.
 * - event id: "shopify:refunds/create:<X-Shopify-Event-Id>" with the hint,
 *   else "shopify:refunds/create:<refund id>"; source "shopify"; shop as
 *   for orders. A topic hint other than refunds/create is an error.
 * out must be zeroed; validated; on error cleared with errstr set.
 */
int lp_json_decode_shopify_refund(const void *data, size_t len,
                                  const struct lp_json_hints *hints,
                                  const char *customer_id, const char *currency,
                                  struct lp_order_event *out, char *errstr,
                                  size_t errstr_size);
/* A canonical ActivityEvent (there is no platform form yet): the shape of
 * lp_json_encode_activity; "kind" must be one of the ActivityKind symbols
 * ("kind: unknown activity kind \"foo\" (page_view, ...)"); "cart_value" a
 * decimal string (or "cart_value_micros"), "rating" an integer, both null
 * or absent when not set. Validated with lp_activity_event_validate. */
int lp_json_decode_activity(const void *data, size_t len,
                            struct lp_activity_event *out, char *errstr,
                            size_t errstr_size);
int lp_json_decode_decision(const void *data, size_t len,
                            struct lp_reward_decision *out, char *errstr,
                            size_t errstr_size);

/* Canonical JSON encoders (one line, no trailing newline, appended). */
void lp_json_encode_order(const struct lp_order_event *ev, struct lp_buf *out);
void lp_json_encode_customer(const struct lp_customer_event *ev,
                             struct lp_buf *out);
/* cart_value and rating are null when absent. */
void lp_json_encode_activity(const struct lp_activity_event *ev,
                             struct lp_buf *out);
void lp_json_encode_decision(const struct lp_reward_decision *d,
                             struct lp_buf *out);
/* original bytes as base64 in "original_base64". */
void lp_json_encode_dead_letter(const struct lp_dead_letter *dl,
                                struct lp_buf *out);
/* latency_ms stays an integer of milliseconds (a duration, not a time). */
void lp_json_encode_action_result(const struct lp_action_result *r,
                                  struct lp_buf *out);

#endif
