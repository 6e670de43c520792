/*
 * bridge_adobe.c — Adobe Commerce events through Adobe I/O Events
 * (POST /webhooks/adobe; shared reference apis.md section 7; envelope,
 * signatures and mapping: common/adobe.h).
 *
 * Registration: I/O Events first sends GET ?challenge=X; the bridge
 * answers {"challenge": "X"}. Deliveries: x-adobe-digital-signature-1 or
 * -2 must verify (RSA-SHA256 over the raw body) under one of the PEM keys
 * of adobe.public.keys — the keys Adobe serves on its key domain, fetched
 * ahead by the operator, so no delivery depends on a download; when
 * adobe.client.id is set the body's recipient_client_id must equal it
 * (401 either way). The event id (the envelope's id, or the
 * x-adobe-event-id header) is deduped within dedupe.window.s. The event
 * type says order (…sales_order…) or customer (…customer…); a bare REST
 * body is told apart by its fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adobe.h"
#include "bridge_internal.h"

enum MHD_Result br_adobe_challenge(struct bridge *b,
                                   struct MHD_Connection *con) {
  (void)b;
  const char *challenge =
      MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "challenge");
  if (!challenge || !*challenge)
    return br_fail(con, "adobe", NULL, MHD_HTTP_BAD_REQUEST,
                   "challenge: missing (GET /webhooks/adobe?challenge=X is "
                   "I/O Events' registration check)");
  json_t *j = json_pack("{ss}", "challenge", challenge);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  enum MHD_Result rc = text ? br_answer(con, MHD_HTTP_OK, text)
                            : br_fail(con, "adobe", NULL, MHD_HTTP_BAD_REQUEST,
                                      "challenge: not valid UTF-8");
  free(text);
  json_decref(j);
  return rc;
}

/* What the body is about: 1 order, 0 customer, -1 unknown (errstr). Also
 * the event id (envelope id / event_id; whole, caller frees: a cut id
 * would dedupe distinct events into one) and recipient_client_id. */
static int event_kind(const json_t *doc, char **event_id, char *client_id,
                      size_t client_size, char *errstr, size_t errstr_size) {
  const char *id = json_string_value(json_object_get(doc, "id"));
  if (!id)
    id = json_string_value(json_object_get(doc, "event_id"));
  *event_id = lp_xstrdup(id ? id : "");
  const char *client =
      json_string_value(json_object_get(doc, "recipient_client_id"));
  lp_strlcpy(client_id, client ? client : "", client_size);
  const char *type = json_string_value(json_object_get(doc, "type"));
  if (type) {
    if (strstr(type, "sales_order"))
      return 1;
    if (strstr(type, "customer"))
      return 0;
    return lp_err(errstr, errstr_size,
                  "type: \"%s\" is not an order or customer event this "
                  "bridge takes (…sales_order…, …customer…)",
                  type);
  }
  if (json_object_get(doc, "grand_total") || json_object_get(doc, "items"))
    return 1;
  if (json_object_get(doc, "email"))
    return 0;
  return lp_err(errstr, errstr_size,
                "type: missing, and the body is neither an order nor a "
                "customer");
}

enum MHD_Result br_adobe(struct bridge *b, struct MHD_Connection *con,
                         const struct lp_buf *body) {
  const struct lp_bridge_config *c = b->c;
  const char *sig1 = br_header(con, "x-adobe-digital-signature-1");
  const char *sig2 = br_header(con, "x-adobe-digital-signature-2");
  if (!lp_adobe_keys_verify(b->adobe_keys, body->data, body->len, sig1, sig2))
    return br_fail(con, "adobe", NULL, MHD_HTTP_UNAUTHORIZED,
                   sig1 || sig2 ? "x-adobe-digital-signature-1/2: neither "
                                  "verifies under adobe.public.keys"
                                : "x-adobe-digital-signature-1: missing");
  if (!lp_utf8_valid((const char *)body->data, body->len))
    return br_fail(con, "adobe", NULL, MHD_HTTP_BAD_REQUEST,
                   "body: not valid UTF-8");
  json_error_t jerr;
  json_t *doc = json_loadb((const char *)body->data, body->len, 0, &jerr);
  char err[512], client[128], *event_id = NULL;
  if (!doc || !json_is_object(doc)) {
    if (doc)
      snprintf(err, sizeof(err), "body: expected a JSON object");
    else
      snprintf(err, sizeof(err), "json: line %d column %d: %s", jerr.line,
               jerr.column, jerr.text);
    json_decref(doc);
    return br_fail(con, "adobe", NULL, MHD_HTTP_BAD_REQUEST, err);
  }
  int kind =
      event_kind(doc, &event_id, client, sizeof(client), err, sizeof(err));
  /* Counted and logged as order / customer: the type names are many. */
  const char *topic = kind == 1 ? "order" : kind == 0 ? "customer" : NULL;
  json_decref(doc);
  if (kind < 0 ||
      (*c->adobe_client_id && strcmp(client, c->adobe_client_id) != 0)) {
    free(event_id);
    return kind < 0 ? br_fail(con, "adobe", topic, MHD_HTTP_BAD_REQUEST, err)
                    : br_fail(con, "adobe", topic, MHD_HTTP_UNAUTHORIZED,
                              "recipient_client_id: not adobe.client.id");
  }
  const char *id = event_id;
  if (!*id) {
    const char *h = br_header(con, "x-adobe-event-id");
    id = h ? h : "";
  }
  struct br_claim claim;
  enum br_claim_state st = br_claim(
      b, *id ? lp_xasprintf("%s:wh:adobe:%s", c->redis_namespace, id) : NULL,
      &claim);
  free(event_id);
  if (st != BR_CLAIMED)
    return br_claim_answer(con, "adobe", topic, st);
  const char *shop = *c->default_shop ? c->default_shop : NULL;
  struct lp_order_event order;
  struct lp_customer_event customer;
  memset(&order, 0, sizeof(order));
  memset(&customer, 0, sizeof(customer));
  int rc = kind == 1 ? lp_adobe_decode_order(body->data, body->len, shop,
                                             &order, err, sizeof(err))
                     : lp_adobe_decode_customer(body->data, body->len, shop,
                                                &customer, err, sizeof(err));
  enum MHD_Result result =
      rc ? br_fail(con, "adobe", topic, MHD_HTTP_BAD_REQUEST, err)
         : br_deliver(b, con, "adobe", topic, &claim, kind == 1 ? &order : NULL,
                      kind == 1 ? NULL : &customer);
  lp_order_event_clear(&order);
  lp_customer_event_clear(&customer);
  br_claim_end(b, &claim);
  return result;
}
