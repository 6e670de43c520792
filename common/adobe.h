/*
 * adobe.h — Adobe Commerce (Magento) bodies mapped to the canonical events,
 * and the signature check of Adobe I/O Events webhook deliveries, as pure
 * functions (Jansson, OpenSSL, no I/O). Shared reference apis.md section 7.
 *
 * What was confirmed (Adobe's own docs and SDK, read with the search tool):
 * - Signatures: each delivery carries x-adobe-digital-signature-1 and -2,
 *   base64 RSA-SHA256 (PKCS#1 v1.5) signatures over the raw body, and
 *   x-adobe-public-key1-path / -2-path, paths of PEM (SPKI) public keys on
 *   Adobe's key domain (the docs name static.adobeioevents.com; the
 *   aio-lib-events SDK fetches https://adobeioevents.com + path). The SDK
 *   accepts the delivery when either signature verifies. The body also
 *   carries recipient_client_id, which the SDK checks against the
 *   registration's client id (the caller's job; not done here). Delivery is
 *   at least once, unordered; the event UUID is repeated in the
 *   x-adobe-event-id header.
 * - Envelope (CloudEvents 1.0, content type application/cloudevents+json):
 *   {"specversion": "1.0", "id": "<uuid>", "source": "urn:uuid:...",
 *    "type": "com.adobe.commerce.observer.sales_order_save_after",
 *    "datacontenttype": "application/json", "time": "<RFC 3339>",
 *    "event_id": "<uuid>", "recipient_client_id": "...",
 *    "data": {"key": "<uuid>", "value": {...the subscribed fields...},
 *             "source": "<instance>.<environment>",
 *             "_metadata": {"commerceEdition", "commerceVersion",
 *                           "eventsClientVersion", "storeId", "websiteId",
 *                           "storeGroupId", and in newer clients
 *                           "websiteCode", "storeCode", "storeViewCode"}}}.
 *   In Adobe's samples "id" and "event_id" differ; the event id here is
 *   "id" (the event's own id), else "event_id".
 * - The payload holds only the subscribed fields (lean), so a caller may
 *   fetch GET /rest/V1/orders/{entity_id} and decode that instead.
 *
 * Assumed (not confirmed in a primary source):
 * - data.value is the order (or customer) itself, with the REST field names
 *   (entity_id, grand_total, items[] ...); a value holding an "order" (or
 *   "customer") object instead is unwrapped. Observer payloads write
 *   numbers as strings ("36.3900", "2.0000") and REST as JSON numbers:
 *   both are read.
 * - The REST order field list is from third-party schemas and samples.
 *
 * Order mapping: order_id = entity_id (increment_id is the human number);
 * customer_id (a guest — customer_is_guest true, or no customer_id — is an
 * error naming the field); status from state (else status): canceled ->
 * cancelled, closed -> refunded (total = total_refunded), processing or
 * complete -> paid, anything else -> created; total = grand_total,
 * subtotal, discount = |discount_amount| (Magento writes it negative), tax
 * = tax_amount, currency = order_currency_code; event time = created_at
 * for created, else updated_at (else created_at, else the envelope's
 * time), "YYYY-MM-DD HH:MM:SS" in UTC. Line items from items[]: a child
 * item (parent_item_id set: the simple item of a configurable or a bundle)
 * is skipped, so the product counts once at its parent's price:
 * quantity = qty_ordered (whole numbers only), unit price = price,
 * product_id, sku; no brand or category (not in the order). A refunded
 * event lists the lines with qty_refunded > 0 when items carry it, else
 * every line.
 *
 * Customer mapping (customer_save_after or GET /rest/V1/customers/{id}):
 * customer_id = id (or entity_id); email hashed, never kept; consent =
 * extension_attributes.is_subscribed; birthday = dob (its date part);
 * customer_created = created_at; event time = updated_at (else
 * created_at); kind = created when created_at equals updated_at, else
 * updated.
 *
 * Shop: the payload's website code (data._metadata.websiteCode, else
 * storeCode) when present, else default_shop, else an error. Note that
 * "base" is every installation's default website code: a deployment that
 * serves several merchants should give each its own endpoint and rely on
 * default_shop (or the bridge should prefix it).
 *
 * Event id: "adobe:<envelope id>", else "adobe:order:<entity_id>:<status>:
 * <updated_at>" / "adobe:customer:<id>:<updated_at>". source
 * "adobe_commerce".
 */
#ifndef LP_ADOBE_H
#define LP_ADOBE_H

#include <stddef.h>

#include "events.h"

/*
 * 1 when sig1 or sig2 (base64, either may be NULL) is a valid RSA-SHA256
 * signature of body[0..len) under one of the n_keys PEM public keys (NULL
 * entries and keys that are not RSA public keys are skipped); 0 otherwise,
 * also for any malformed input. Leaves OpenSSL's error queue empty.
 */
int lp_adobe_signature_ok(const char *const *public_key_pems, size_t n_keys,
                          const void *body, size_t len, const char *sig1,
                          const char *sig2);

/*
 * The same check with the keys parsed once: parsing a PEM key costs about
 * 0.3 ms with OpenSSL 3, ten times the verification, so a bridge keeps the
 * parsed keys (per key path: Adobe rotates them) and verifies with
 * lp_adobe_keys_verify. _new never fails: unusable PEMs are skipped
 * (lp_adobe_keys_count says how many keys were usable). _destroy accepts
 * NULL and NULLs the caller's pointer. A parsed key set is read-only, so
 * threads may verify with one concurrently.
 */
struct lp_adobe_keys;
struct lp_adobe_keys *lp_adobe_keys_new(const char *const *public_key_pems,
                                        size_t n_keys);
void lp_adobe_keys_destroy(struct lp_adobe_keys **keys);
size_t lp_adobe_keys_count(const struct lp_adobe_keys *keys);
int lp_adobe_keys_verify(const struct lp_adobe_keys *keys, const void *body,
                         size_t len, const char *sig1, const char *sig2);

/* An I/O Events envelope or a bare REST order -> an order event. out must
 * be zeroed; validated; on error cleared with "<field path>: <reason>". */
int lp_adobe_decode_order(const void *json, size_t len,
                          const char *default_shop, struct lp_order_event *out,
                          char *errstr, size_t errstr_size);

/* An I/O Events envelope (customer_save_after ...) or a bare REST customer
 * -> a customer event; as lp_adobe_decode_order. */
int lp_adobe_decode_customer(const void *json, size_t len,
                             const char *default_shop,
                             struct lp_customer_event *out, char *errstr,
                             size_t errstr_size);

#endif
