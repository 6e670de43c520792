/*
 * bridge_bigcommerce.c — BigCommerce webhooks (POST /webhooks/bigcommerce;
 * shared reference apis.md section 6; mapping: common/bigcommerce.c).
 *
 * A callback carries ids only. The bridge checks the shared secret the
 * hook was created with (header bigcommerce.secret.header, one of
 * bigcommerce.secrets; 401), dedupes on the body's "hash" per store,
 * then fetches what the event is about with the store's API token
 * (bigcommerce.tokens): the order and its products
 * (v2/orders/{id}, v2/orders/{id}/products), for a refund also the
 * order's refunds (v3/orders/{id}/payment_actions/refunds), for a customer
 * v3/customers?id:in={id}. Fetches keep to the store's rate limit and are
 * retried (bridge_fetch.c); one that does not succeed in fetch.timeout.ms
 * answers 503, so BigCommerce delivers the callback again later — a fetch
 * failure is never a dropped order. A resource that no longer exists (404)
 * goes to the dead-letter topic with the reason.
 *
 * Scopes: store/order/created, store/order/updated,
 * store/order/statusUpdated, store/order/archived (the order's status_id
 * says created, paid, cancelled or refunded), store/order/refund/created
 * (a refunded event of exactly that refund's amount, no line detail),
 * store/customer/created, store/customer/updated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigcommerce.h"
#include "bridge_internal.h"
#include "log.h"
#include "webhook.h"

/* The API token of store from bigcommerce.tokens ("HASH=TOKEN,..."),
 * into out; 0 or -1 when the store has none. */
static int store_token(const char *tokens, const char *store, char *out,
                       size_t out_size) {
  size_t slen = strlen(store);
  for (const char *s = tokens; *s;) {
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    while (n && *s == ' ')
      s++, n--;
    const char *eq = memchr(s, '=', n);
    if (eq && (size_t)(eq - s) == slen && memcmp(s, store, slen) == 0) {
      size_t tlen = n - slen - 1;
      if (tlen >= out_size)
        tlen = out_size - 1;
      memcpy(out, eq + 1, tlen);
      out[tlen] = '\0';
      return 0;
    }
    s += n;
    if (*s == ',')
      s++;
  }
  return -1;
}

struct bc_call {
  struct bridge *b;
  const char *store;
  char token[300];
};

/* GET <api>/stores/<store>/<path>: 0 with r (2xx or 4xx), -1 (503). */
static int bc_get(struct bc_call *k, const char *path,
                  struct lp_http_response *r, char *errstr,
                  size_t errstr_size) {
  char *url = lp_xasprintf("%s/stores/%s/%s", k->b->c->bigcommerce_api_url,
                           k->store, path);
  char *auth = lp_xasprintf("X-Auth-Token: %s", k->token);
  const char *headers[] = {auth, "Accept: application/json", NULL};
  int rc = br_fetch(k->b, k->store, url, headers, r, errstr, errstr_size);
  free(auth);
  free(url);
  return rc;
}

static int is_scope(const char *s, const char *want) {
  return strcmp(s, want) == 0;
}

/* Fetch-and-map of one order callback: fills ev; 0, or the HTTP status to
 * answer (400 / 503) with errstr, or 404 (dead letter). */
static int fetch_order(struct bc_call *k, const struct lp_bc_webhook *w,
                       const struct lp_bc_hints *hints,
                       struct lp_order_event *ev, char *errstr,
                       size_t errstr_size) {
  struct lp_http_response order, products, refunds;
  lp_http_response_init(&order);
  lp_http_response_init(&products);
  lp_http_response_init(&refunds);
  char path[128];
  int refund = is_scope(w->scope, "store/order/refund/created");
  int rc = 0;
  snprintf(path, sizeof(path), "v2/orders/%lld", w->id);
  if (bc_get(k, path, &order, errstr, errstr_size))
    rc = 503;
  else if (order.status == 404)
    rc = 404,
    lp_err(errstr, errstr_size, "GET %s: the order does not exist", path);
  else if (order.status != 200)
    rc = 503,
    lp_err(errstr, errstr_size, "GET %s answered %ld", path, order.status);
  if (!rc && !refund) {
    snprintf(path, sizeof(path), "v2/orders/%lld/products", w->id);
    if (bc_get(k, path, &products, errstr, errstr_size))
      rc = 503;
    else if (products.status != 200 && products.status != 204)
      rc = 503,
      lp_err(errstr, errstr_size, "GET %s answered %ld", path, products.status);
  }
  int64_t refunded = 0;
  if (!rc && refund) {
    snprintf(path, sizeof(path), "v3/orders/%lld/payment_actions/refunds",
             w->id);
    if (bc_get(k, path, &refunds, errstr, errstr_size))
      rc = 503;
    else if (refunds.status != 200)
      rc = 503,
      lp_err(errstr, errstr_size, "GET %s answered %ld", path, refunds.status);
    else if (lp_bigcommerce_refund_total(refunds.body.data, refunds.body.len,
                                         w->refund_id, &refunded, errstr,
                                         errstr_size))
      rc = 503; /* not listed (yet): BigCommerce's retry asks again */
  }
  if (!rc && lp_bigcommerce_decode_order(
                 order.body.data, order.body.len,
                 products.body.len ? products.body.data : NULL,
                 products.body.len, hints, ev, errstr, errstr_size))
    rc = 400;
  if (!rc && refund) {
    /* This refund, not the order's state: its amount, no line detail. */
    ev->status = LP_ORDER_REFUNDED;
    ev->total_micros = refunded;
    /* One id per refund, whichever callback (hash) brought it. */
    free(ev->event_id);
    ev->event_id =
        lp_xasprintf("bigcommerce:%s:refund:%s", w->store_hash, w->refund_id);
    if (lp_order_event_validate(ev, errstr, errstr_size))
      rc = 400;
  }
  lp_http_response_clear(&order);
  lp_http_response_clear(&products);
  lp_http_response_clear(&refunds);
  return rc;
}

static int fetch_customer(struct bc_call *k, const struct lp_bc_webhook *w,
                          const struct lp_bc_hints *hints,
                          struct lp_customer_event *ev, char *errstr,
                          size_t errstr_size) {
  struct lp_http_response r;
  lp_http_response_init(&r);
  char path[128];
  snprintf(path, sizeof(path), "v3/customers?id:in=%lld", w->id);
  int rc = 0;
  if (bc_get(k, path, &r, errstr, errstr_size))
    rc = 503;
  else if (r.status != 200)
    rc = r.status == 404 ? 404 : 503,
    lp_err(errstr, errstr_size, "GET %s answered %ld", path, r.status);
  else if (lp_bigcommerce_decode_customer(r.body.data, r.body.len, hints, ev,
                                          errstr, errstr_size))
    rc = strstr(errstr, "no customer") ? 404 : 400;
  lp_http_response_clear(&r);
  return rc;
}

enum MHD_Result br_bigcommerce(struct bridge *b, struct MHD_Connection *con,
                               const struct lp_buf *body) {
  const struct lp_bridge_config *c = b->c;
  const char *secret = br_header(con, c->bigcommerce_secret_header);
  if (!lp_shared_secret_ok(c->bigcommerce_secrets, secret)) {
    char why[160];
    snprintf(why, sizeof(why), "%s: %s", c->bigcommerce_secret_header,
             secret ? "not one of bigcommerce.secrets" : "missing");
    return br_fail(con, "bigcommerce", NULL, MHD_HTTP_UNAUTHORIZED, why);
  }
  if (!lp_utf8_valid((const char *)body->data, body->len))
    return br_fail(con, "bigcommerce", NULL, MHD_HTTP_BAD_REQUEST,
                   "body: not valid UTF-8");
  struct lp_bc_webhook w;
  char err[512];
  if (lp_bigcommerce_webhook_parse(body->data, body->len, &w, err, sizeof(err)))
    return br_fail(con, "bigcommerce", NULL, MHD_HTTP_BAD_REQUEST, err);
  const char *topic = w.scope;
  int is_order = strncmp(w.scope, "store/order/", 12) == 0 &&
                 (is_scope(w.scope, "store/order/created") ||
                  is_scope(w.scope, "store/order/updated") ||
                  is_scope(w.scope, "store/order/statusUpdated") ||
                  is_scope(w.scope, "store/order/archived") ||
                  is_scope(w.scope, "store/order/refund/created"));
  int is_customer = is_scope(w.scope, "store/customer/created") ||
                    is_scope(w.scope, "store/customer/updated");
  if (!is_order && !is_customer)
    return br_fail(con, "bigcommerce", topic, MHD_HTTP_BAD_REQUEST,
                   "scope: not a scope this bridge takes (store/order/"
                   "created|updated|statusUpdated|archived|refund/created, "
                   "store/customer/created|updated)");
  struct bc_call k = {b, w.store_hash, ""};
  if (store_token(c->bigcommerce_tokens, w.store_hash, k.token,
                  sizeof(k.token))) {
    /* An operator's fix (add the token) makes BigCommerce's retry land. */
    snprintf(err, sizeof(err),
             "producer: store %s has no API token in bigcommerce.tokens",
             w.store_hash);
    return br_fail(con, "bigcommerce", topic, MHD_HTTP_SERVICE_UNAVAILABLE,
                   err);
  }
  struct br_claim claim;
  enum br_claim_state st =
      br_claim(b,
               lp_xasprintf("%s:wh:bigcommerce:%s:%s", c->redis_namespace,
                            w.store_hash, w.hash),
               &claim);
  if (st != BR_CLAIMED)
    return br_claim_answer(con, "bigcommerce", topic, st);
  /* The shop is the store ("bc-<hash>"): shop.default is for bodies
   * that name none, and a callback always names its store. */
  struct lp_bc_hints hints = {w.store_hash, NULL, w.scope, w.hash,
                              w.created_at};
  struct lp_order_event order;
  struct lp_customer_event customer;
  memset(&order, 0, sizeof(order));
  memset(&customer, 0, sizeof(customer));
  int rc = is_order
               ? fetch_order(&k, &w, &hints, &order, err, sizeof(err))
               : fetch_customer(&k, &w, &hints, &customer, err, sizeof(err));
  enum MHD_Result result;
  if (rc == 404)
    result = br_dead_letter(b, con, "bigcommerce", topic, &claim, body, err,
                            "data.id");
  else if (rc)
    result = br_fail(con, "bigcommerce", topic, (unsigned)rc, err);
  else
    result = br_deliver(b, con, "bigcommerce", topic, &claim,
                        is_order ? &order : NULL, is_order ? NULL : &customer);
  lp_order_event_clear(&order);
  lp_customer_event_clear(&customer);
  br_claim_end(b, &claim);
  return result;
}
