/*
 * bridge_shopify.c — Shopify webhooks (POST /webhooks/shopify):
 * orders/create, orders/paid, orders/cancelled, refunds/create,
 * customers/create, customers/update (shapes: shared reference apis.md
 * section 5; mapping: common/json_codec.c).
 *
 * X-Shopify-Hmac-Sha256 is checked against every secret of
 * shopify.secrets (401); X-Shopify-Event-Id is deduped per shop within
 * dedupe.window.s; X-Shopify-Triggered-At and the body give the event
 * time.
 *
 * A Refund names its order but not the customer, so the bridge keeps an
 * order index in Redis: every order webhook it maps records
 * "<ns>:wh:order:<shop>:<order id>" -> customer and currency for
 * order.index.ttl.s. A refund of an order the index does not know is
 * looked up with the Admin REST API when shopify.api.url is set (GET
 * orders/<id>.json); if it still cannot be attributed (no API, or the
 * order does not exist) the body goes to the dead-letter topic with the
 * reason and the answer is 200, since no retry could ever map it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge_internal.h"
#include "json_codec.h"
#include "log.h"
#include "webhook.h"

static const char *const order_topics[] = {"orders/create", "orders/paid",
                                           "orders/cancelled"};
static const char *const customer_topics[] = {"customers/create",
                                              "customers/update"};

static int topic_in(const char *t, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(t, list[i]) == 0)
      return 1;
  return 0;
}

/* A shop domain as Shopify writes it ("name.myshopify.com"): letters,
 * digits, '.' and '-', at most 255. The header is not covered by the
 * signature, and it goes into Redis keys and the look-up URL. */
static int shop_domain_ok(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
          (s[n] >= '0' && s[n] <= '9') || s[n] == '.' || s[n] == '-'))
      return 0;
  return n > 0 && n <= 255;
}

/* shopify.api.url with {shop} replaced by the shop domain. */
static char *api_base(const char *tmpl, const char *shop) {
  const char *at = strstr(tmpl, "{shop}");
  if (!at)
    return lp_xstrdup(tmpl);
  return lp_xasprintf("%.*s%s%s", (int)(at - tmpl), tmpl, shop, at + 6);
}

/* The customer and currency of an order, from the index or the REST API.
 * 0 found; 1 cannot be attributed (reason in errstr); -1 the API did not
 * answer (errstr: the caller answers 503). */
static int order_owner(struct bridge *b, const char *shop, const char *order_id,
                       char *customer, size_t customer_size, char *currency,
                       size_t currency_size, char *errstr, size_t errstr_size) {
  const struct lp_bridge_config *c = b->c;
  redisReply *r =
      br_redis(b, "GET %s:wh:order:%s:%s", c->redis_namespace, shop, order_id);
  if (r && r->type == REDIS_REPLY_STRING) {
    const char *tab = strchr(r->str, '\t');
    if (tab) {
      snprintf(customer, customer_size, "%.*s", (int)(tab - r->str), r->str);
      lp_strlcpy(currency, tab + 1, currency_size);
      freeReplyObject(r);
      return 0;
    }
  }
  if (r)
    freeReplyObject(r);
  if (!*c->shopify_api_url)
    return lp_err(errstr, errstr_size,
                  "refunds/create: order %s is not in this bridge's order "
                  "index (its order webhook did not come through here) and "
                  "shopify.api.url is not set to look it up",
                  order_id),
           1;
  char *base = api_base(c->shopify_api_url, shop);
  char *url = lp_xasprintf("%s/orders/%s.json?fields=id,customer,currency",
                           base, order_id);
  char *token =
      lp_xasprintf("X-Shopify-Access-Token: %s", c->shopify_api_token);
  const char *headers[] = {token, "Accept: application/json", NULL};
  struct lp_http_response resp;
  lp_http_response_init(&resp);
  int rc = br_fetch(b, shop, url, headers, &resp, errstr, errstr_size);
  if (rc == 0 && resp.status == 404) {
    rc = 1;
    lp_err(errstr, errstr_size,
           "refunds/create: order %s is neither in the order index nor "
           "known to the shop (GET %s answered 404)",
           order_id, url);
  } else if (rc == 0 && resp.status != 200) {
    rc = -1;
    lp_err(errstr, errstr_size, "refunds/create: GET %s answered %ld", url,
           resp.status);
  }
  if (rc == 0) {
    json_error_t jerr;
    json_t *doc =
        json_loadb((const char *)resp.body.data, resp.body.len, 0, &jerr);
    json_t *order = json_object_get(doc, "order");
    json_t *cust = json_object_get(order, "customer");
    json_t *id = json_object_get(cust, "id");
    const char *cur = json_string_value(json_object_get(order, "currency"));
    if (json_is_integer(id) && json_integer_value(id) > 0)
      snprintf(customer, customer_size, "%lld",
               (long long)json_integer_value(id));
    else if (json_is_string(id) && *json_string_value(id))
      lp_strlcpy(customer, json_string_value(id), customer_size);
    else
      rc = 1;
    lp_strlcpy(currency, cur ? cur : "", currency_size);
    if (rc)
      lp_err(errstr, errstr_size,
             "refunds/create: order %s has no customer (a guest checkout)",
             order_id);
    json_decref(doc);
  }
  lp_http_response_clear(&resp);
  free(token);
  free(url);
  free(base);
  return rc;
}

static enum MHD_Result refund(struct bridge *b, struct MHD_Connection *con,
                              const struct lp_buf *body,
                              const struct lp_json_hints *hints,
                              const char *shop, struct br_claim *claim) {
  const char *topic = "refunds/create";
  char order_id[64], customer[128], currency[16], err[512];
  if (lp_json_shopify_refund_order_id(body->data, body->len, order_id,
                                      sizeof(order_id), err, sizeof(err)))
    return br_fail(con, "shopify", topic, MHD_HTTP_BAD_REQUEST, err);
  int owner = order_owner(b, shop, order_id, customer, sizeof(customer),
                          currency, sizeof(currency), err, sizeof(err));
  if (owner < 0)
    return br_fail(con, "shopify", topic, MHD_HTTP_SERVICE_UNAVAILABLE, err);
  if (owner > 0)
    return br_dead_letter(b, con, "shopify", topic, claim, body, err,
                          "order_id");
  /* The event id from the refund's own id, not the delivery's event id:
   * the same refund imported later (loyaltyctl import) gets the same id
   * and is not taken back twice. */
  struct lp_json_hints by_refund = *hints;
  by_refund.shopify_event_id = NULL;
  struct lp_order_event ev;
  memset(&ev, 0, sizeof(ev));
  if (lp_json_decode_shopify_refund(body->data, body->len, &by_refund, customer,
                                    currency, &ev, err, sizeof(err)))
    return br_fail(con, "shopify", topic, MHD_HTTP_BAD_REQUEST, err);
  enum MHD_Result rc = br_deliver(b, con, "shopify", topic, claim, &ev, NULL);
  lp_order_event_clear(&ev);
  return rc;
}

enum MHD_Result br_shopify(struct bridge *b, struct MHD_Connection *con,
                           const struct lp_buf *body) {
  const struct lp_bridge_config *c = b->c;
  const char *topic = br_header(con, "X-Shopify-Topic");
  const char *hmac = br_header(con, "X-Shopify-Hmac-Sha256");
  const char *event_id = br_header(con, "X-Shopify-Event-Id");
  const char *shop = br_header(con, "X-Shopify-Shop-Domain");
  const char *triggered = br_header(con, "X-Shopify-Triggered-At");
  if (!lp_shopify_hmac_ok(c->shopify_secrets, body->data, body->len, hmac))
    return br_fail(con, "shopify", topic, MHD_HTTP_UNAUTHORIZED,
                   hmac ? "X-Shopify-Hmac-Sha256: does not match the body"
                        : "X-Shopify-Hmac-Sha256: missing");
  int is_order = topic && topic_in(topic, order_topics, 3);
  int is_refund = topic && strcmp(topic, "refunds/create") == 0;
  if (!topic ||
      (!is_order && !is_refund && !topic_in(topic, customer_topics, 2)))
    return br_fail(con, "shopify", topic, MHD_HTTP_BAD_REQUEST,
                   topic ? "X-Shopify-Topic: not a topic this bridge takes "
                           "(orders/create, orders/paid, orders/cancelled, "
                           "refunds/create, customers/create, "
                           "customers/update)"
                         : "X-Shopify-Topic: missing");
  if (!lp_utf8_valid((const char *)body->data, body->len))
    return br_fail(con, "shopify", topic, MHD_HTTP_BAD_REQUEST,
                   "body: not valid UTF-8");
  if (shop && !shop_domain_ok(shop))
    return br_fail(con, "shopify", topic, MHD_HTTP_BAD_REQUEST,
                   "X-Shopify-Shop-Domain: not a shop domain (letters, "
                   "digits, '.' and '-')");
  const char *shop_name = shop && *shop ? shop : c->default_shop;
  struct br_claim cl;
  struct br_claim *claim = &cl;
  enum br_claim_state st =
      br_claim(b,
               event_id && *event_id
                   ? lp_xasprintf("%s:wh:shopify:%s:%s:%s", c->redis_namespace,
                                  *shop_name ? shop_name : "-", topic, event_id)
                   : NULL,
               claim);
  if (st != BR_CLAIMED)
    return br_claim_answer(con, "shopify", topic, st);
  struct lp_json_hints hints = {topic, event_id, shop, triggered,
                                *c->default_shop ? c->default_shop : NULL};
  enum MHD_Result result;
  char err[512];
  if (is_refund) {
    if (!*shop_name)
      result = br_fail(con, "shopify", topic, MHD_HTTP_BAD_REQUEST,
                       "X-Shopify-Shop-Domain: missing (and no shop.default)");
    else
      result = refund(b, con, body, &hints, shop_name, claim);
  } else if (is_order) {
    struct lp_order_event order;
    memset(&order, 0, sizeof(order));
    if (lp_json_decode_order(body->data, body->len, &hints, &order, err,
                             sizeof(err))) {
      result = br_fail(con, "shopify", topic, MHD_HTTP_BAD_REQUEST, err);
    } else {
      /* The order index, for the refunds that will name only the order. */
      char *key = lp_xasprintf("%s:wh:order:%s:%s", c->redis_namespace,
                               order.shop, order.order_id);
      char *owner = lp_xasprintf("%s\t%s", order.customer_id, order.currency);
      br_remember(b, key, owner, c->order_index_ttl_s);
      free(owner);
      free(key);
      result = br_deliver(b, con, "shopify", topic, claim, &order, NULL);
    }
    lp_order_event_clear(&order);
  } else {
    struct lp_customer_event customer;
    memset(&customer, 0, sizeof(customer));
    if (lp_json_decode_customer(body->data, body->len, &hints, &customer, err,
                                sizeof(err)))
      result = br_fail(con, "shopify", topic, MHD_HTTP_BAD_REQUEST, err);
    else
      result = br_deliver(b, con, "shopify", topic, claim, NULL, &customer);
    lp_customer_event_clear(&customer);
  }
  br_claim_end(b, claim);
  return result;
}
