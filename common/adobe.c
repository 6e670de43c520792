/*
 * adobe.c — Adobe Commerce orders and customers (I/O Events envelopes or
 * REST bodies) mapped to the canonical events, and the RSA-SHA256 check of
 * I/O Events deliveries (see adobe.h for what is confirmed and assumed).
 * Fields are read through json_util.h, so errors name the field path and
 * no input crashes a decoder; the signature check never fails open.
 */
#include "adobe.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "json_util.h"
#include "util.h"

/* ---- signatures ---------------------------------------------------------
 */

/* Longest signature accepted: an 8192-bit RSA key. */
#define MAX_SIGNATURE_BYTES 1024

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Strict standard base64 (padded, no whitespace) into out; the decoded
 * length, or -1. */
static long b64_decode(const char *s, unsigned char *out, size_t cap) {
  size_t n = strlen(s), o = 0;
  if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
    return -1;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int j = 0; j < 4; j++) {
      unsigned char c = (unsigned char)s[i + j];
      if (c == '=' && i + 4 == n && j >= 2) {
        v[j] = 0;
        pad++;
      } else if (pad > 0 || (v[j] = b64_value(c)) < 0) {
        return -1; /* a character after '=', or not base64 */
      }
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    out[o++] = (unsigned char)(w >> 16);
    if (pad < 2)
      out[o++] = (unsigned char)(w >> 8);
    if (pad < 1)
      out[o++] = (unsigned char)w;
  }
  return (long)o;
}

/* An RSA public key from PEM (caller frees with EVP_PKEY_free), or NULL. */
static EVP_PKEY *rsa_public_key(const char *pem) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if (!bio)
    return NULL;
  EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (key && EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
    EVP_PKEY_free(key);
    key = NULL;
  }
  return key;
}

static int rsa_sha256_ok(EVP_PKEY *key, const unsigned char *sig,
                         size_t sig_len, const void *body, size_t len) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx &&
           EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
           EVP_DigestVerify(ctx, sig, sig_len, body, len) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

struct lp_adobe_keys {
  EVP_PKEY **keys; /* owned, RSA public keys only */
  size_t n;
};

struct lp_adobe_keys *lp_adobe_keys_new(const char *const *public_key_pems,
                                        size_t n_keys) {
  struct lp_adobe_keys *k = lp_xcalloc(1, sizeof(*k));
  if (public_key_pems && n_keys > 0) {
    k->keys = lp_xcalloc(n_keys, sizeof(*k->keys));
    for (size_t i = 0; i < n_keys; i++)
      if (public_key_pems[i] &&
          (k->keys[k->n] = rsa_public_key(public_key_pems[i])) != NULL)
        k->n++;
  }
  ERR_clear_error(); /* what the unusable PEMs left */
  return k;
}

void lp_adobe_keys_destroy(struct lp_adobe_keys **keys) {
  if (!keys || !*keys)
    return;
  for (size_t i = 0; i < (*keys)->n; i++)
    EVP_PKEY_free((*keys)->keys[i]);
  free((*keys)->keys);
  free(*keys);
  *keys = NULL;
}

size_t lp_adobe_keys_count(const struct lp_adobe_keys *keys) {
  return keys ? keys->n : 0;
}

int lp_adobe_keys_verify(const struct lp_adobe_keys *keys, const void *body,
                         size_t len, const char *sig1, const char *sig2) {
  const char *sigs[2] = {sig1, sig2};
  unsigned char raw[2][MAX_SIGNATURE_BYTES];
  long raw_len[2];
  int ok = 0;
  if (!keys || (!body && len > 0))
    return 0;
  if (!body)
    body = "";
  for (int i = 0; i < 2; i++)
    raw_len[i] = sigs[i] && strlen(sigs[i]) <= 4 * MAX_SIGNATURE_BYTES / 3 + 4
                     ? b64_decode(sigs[i], raw[i], sizeof(raw[i]))
                     : -1;
  for (size_t k = 0; k < keys->n && !ok; k++)
    for (int i = 0; i < 2 && !ok; i++)
      if (raw_len[i] > 0)
        ok =
            rsa_sha256_ok(keys->keys[k], raw[i], (size_t)raw_len[i], body, len);
  /* Failed checks leave errors queued; they must not surface in an
   * unrelated later OpenSSL (libcurl) call of this thread. */
  ERR_clear_error();
  return ok;
}

int lp_adobe_signature_ok(const char *const *public_key_pems, size_t n_keys,
                          const void *body, size_t len, const char *sig1,
                          const char *sig2) {
  if (!public_key_pems || (!sig1 && !sig2))
    return 0;
  struct lp_adobe_keys *keys = lp_adobe_keys_new(public_key_pems, n_keys);
  int ok = lp_adobe_keys_verify(keys, body, len, sig1, sig2);
  lp_adobe_keys_destroy(&keys);
  return ok;
}

/* ---- shared readers ------------------------------------------------------
 */

/* The body to map: data.value of an I/O Events envelope (its event id in
 * *envelope_id, its time in *envelope_time, its _metadata in *meta) or the
 * bare REST resource. wrapper ("order", "customer") is unwrapped from a
 * value that holds it instead of the fields. *prefix is the path of the
 * resource for errors. */
static int adobe_resource(const json_t *root, const char *wrapper,
                          const char *entity_key, const json_t **res,
                          const char **prefix, const char **envelope_id,
                          const char **envelope_time, const json_t **meta,
                          char *errstr, size_t errstr_size) {
  json_t *data, *value, *m, *inner;
  *res = root;
  *prefix = "";
  *envelope_id = NULL;
  *envelope_time = NULL;
  *meta = NULL;
  data = json_object_get(root, "data");
  if (!json_is_object(data) && !json_object_get(root, "specversion"))
    return 0; /* a REST body */
  if (lp_json_get_raw_str(root, "", "id", LP_JSON_EMPTY_NULL, envelope_id,
                          errstr, errstr_size) < 0 ||
      (!*envelope_id &&
       lp_json_get_raw_str(root, "", "event_id",
                           LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL, envelope_id,
                           errstr, errstr_size) < 0) ||
      lp_json_get_raw_str(root, "", "time", LP_JSON_EMPTY_NULL, envelope_time,
                          errstr, errstr_size) < 0 ||
      lp_json_get_object(root, "", "data", LP_JSON_REQUIRED, &data, errstr,
                         errstr_size) < 0 ||
      lp_json_get_object(data, "data", "value", LP_JSON_REQUIRED, &value,
                         errstr, errstr_size) < 0 ||
      lp_json_get_object(data, "data", "_metadata", 0, &m, errstr,
                         errstr_size) < 0)
    return -1;
  *meta = m;
  *res = value;
  *prefix = "data.value";
  inner = json_object_get(value, wrapper);
  if (json_is_object(inner) && !json_object_get(value, entity_key)) {
    *res = inner;
    *prefix =
        !strcmp(wrapper, "order") ? "data.value.order" : "data.value.customer";
  }
  return 0;
}

/* Shop: the payload's website (else store) code, else default_shop. */
static int adobe_shop(const json_t *meta, const char *default_shop, char **out,
                      char *errstr, size_t errstr_size) {
  const char *code = NULL;
  if (meta && (lp_json_get_raw_str(meta, "data._metadata", "websiteCode",
                                   LP_JSON_EMPTY_NULL, &code, errstr,
                                   errstr_size) < 0 ||
               (!code && lp_json_get_raw_str(meta, "data._metadata",
                                             "storeCode", LP_JSON_EMPTY_NULL,
                                             &code, errstr, errstr_size) < 0)))
    return -1;
  if (!code && default_shop && *default_shop)
    code = default_shop;
  if (!code)
    return lp_err(errstr, errstr_size,
                  "shop: unknown (no website or store code in the payload "
                  "and no default shop configured)");
  *out = lp_xstrdup(code);
  return 0;
}

/* A Magento time "YYYY-MM-DD HH:MM:SS" (UTC; RFC 3339 also read). */
static int adobe_time(const json_t *obj, const char *prefix, const char *key,
                      int64_t *ms, const char **raw, char *errstr,
                      size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], q[64];
  const char *s;
  *raw = NULL;
  int rc = lp_json_get_raw_str(obj, prefix, key, LP_JSON_EMPTY_NULL, &s, errstr,
                               errstr_size);
  if (rc <= 0)
    return rc;
  if (lp_time_parse_iso8601(s, ms) != 0) {
    lp_json_path_join(path, sizeof(path), prefix, key);
    return lp_err(errstr, errstr_size,
                  "%s: not a \"YYYY-MM-DD HH:MM:SS\" time: %s", path,
                  lp_json_quoted(s, q, sizeof(q)));
  }
  *raw = s;
  return 1;
}

/* A flag Magento writes as true/false, 0/1 or "0"/"1". */
static int adobe_flag(const json_t *obj, const char *prefix, const char *key,
                      int *out, char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], q[64];
  const json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v))
    return 0;
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
    return 1;
  }
  if (json_is_integer(v) &&
      (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
    *out = json_integer_value(v) == 1;
    return 1;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    if (!strcmp(s, "0") || !strcmp(s, "1") || !strcmp(s, "true") ||
        !strcmp(s, "false")) {
      *out = !strcmp(s, "1") || !strcmp(s, "true");
      return 1;
    }
  }
  lp_json_path_join(path, sizeof(path), prefix, key);
  if (json_is_string(v))
    return lp_err(errstr, errstr_size, "%s: %s is not a flag (0/1)", path,
                  lp_json_quoted(json_string_value(v), q, sizeof(q)));
  return lp_err(errstr, errstr_size, "%s: expected a flag (0/1), got %s", path,
                lp_json_type_name(v));
}

/* A whole quantity Magento writes as 2, 2.0 or "2.0000"; 0 when absent. */
static int adobe_quantity(const json_t *obj, const char *prefix,
                          const char *key, unsigned flags, long long *out,
                          char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  int64_t micros;
  *out = 0;
  int rc =
      lp_json_get_amount(obj, prefix, key, flags, &micros, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  lp_json_path_join(path, sizeof(path), prefix, key);
  if (micros % 1000000 != 0)
    return lp_err(errstr, errstr_size, "%s: not a whole quantity", path);
  if (micros < 0 || micros / 1000000 > LP_MAX_QUANTITY)
    return lp_err(errstr, errstr_size, "%s: %lld is not in 0..%d", path,
                  (long long)(micros / 1000000), LP_MAX_QUANTITY);
  *out = micros / 1000000;
  return 1;
}

/* True when an id field holds nothing: absent, null, 0, "" or "0". */
static int id_is_empty(const json_t *v) {
  return !v || json_is_null(v) ||
         (json_is_integer(v) && json_integer_value(v) == 0) ||
         (json_is_string(v) && (!strcmp(json_string_value(v), "") ||
                                !strcmp(json_string_value(v), "0")));
}

/* An envelope's type, checked against what the decoder maps. */
static int check_type(const json_t *root, const char *wrong, const char *what,
                      char *errstr, size_t errstr_size) {
  const json_t *t = json_object_get(root, "type");
  char q[64];
  if (json_is_string(t) && strstr(json_string_value(t), wrong))
    return lp_err(errstr, errstr_size, "type: %s is not %s event",
                  lp_json_quoted(json_string_value(t), q, sizeof(q)), what);
  return 0;
}

/* ---- orders --------------------------------------------------------------
 */

static int adobe_items(const json_t *o, const char *prefix,
                       struct lp_order_event *ev, char *errstr,
                       size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], items_path[LP_JSON_PATH_MAX];
  json_t *arr;
  lp_json_path_join(items_path, sizeof(items_path), prefix, "items");
  if (lp_json_get_array(o, prefix, "items", 0, LP_MAX_LINE_ITEMS, "items", &arr,
                        errstr, errstr_size) < 0)
    return -1;
  if (!arr || json_array_size(arr) == 0)
    return 0;
  ev->line_items = lp_xcalloc(json_array_size(arr), sizeof(*ev->line_items));
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *item;
    long long quantity, refunded;
    int64_t price;
    int have_refunded;
    if (lp_json_array_object(arr, items_path, i, path, sizeof(path), &item,
                             errstr, errstr_size) < 0)
      return -1;
    /* A configurable (or bundle) product is a parent and a child item:
     * the parent carries the price, so the child is skipped. */
    if (!id_is_empty(json_object_get(item, "parent_item_id")))
      continue;
    if (adobe_quantity(item, path, "qty_ordered", LP_JSON_REQUIRED, &quantity,
                       errstr, errstr_size) < 0 ||
        (have_refunded = adobe_quantity(item, path, "qty_refunded", 0,
                                        &refunded, errstr, errstr_size)) < 0 ||
        lp_json_get_amount(item, path, "price", LP_JSON_REQUIRED, &price,
                           errstr, errstr_size) < 0)
      return -1;
    if (ev->status == LP_ORDER_REFUNDED && have_refunded)
      quantity = refunded < quantity ? refunded : quantity;
    if (quantity == 0)
      continue;
    struct lp_line_item *li = &ev->line_items[ev->n_line_items++];
    li->quantity = (int32_t)quantity;
    li->unit_price_micros = price;
    if (lp_json_get_id(item, path, "product_id", LP_JSON_EMPTY_NULL,
                       &li->product_id, errstr, errstr_size) < 0 ||
        lp_json_get_str(item, path, "sku", LP_JSON_EMPTY_NULL, &li->sku, errstr,
                        errstr_size) < 0)
      return -1;
  }
  return 0;
}

/* Canonical status from Magento's state (else status). */
static enum lp_order_status adobe_status(const char *state) {
  if (!state)
    return LP_ORDER_CREATED;
  if (!strcasecmp(state, "canceled") || !strcasecmp(state, "cancelled"))
    return LP_ORDER_CANCELLED;
  if (!strcasecmp(state, "closed"))
    return LP_ORDER_REFUNDED;
  if (!strcasecmp(state, "processing") || !strcasecmp(state, "complete"))
    return LP_ORDER_PAID;
  return LP_ORDER_CREATED;
}

static int adobe_order(const json_t *root, const char *default_shop,
                       struct lp_order_event *ev, char *errstr,
                       size_t errstr_size) {
  const json_t *o, *meta;
  const char *prefix, *envelope_id, *envelope_time, *state, *raw_created,
      *raw_updated;
  char path[LP_JSON_PATH_MAX];
  int64_t created = 0, updated = 0, discount = 0;
  int guest = 0, rc;

  if (check_type(root, ".customer_", "an order", errstr, errstr_size) < 0 ||
      adobe_resource(root, "order", "entity_id", &o, &prefix, &envelope_id,
                     &envelope_time, &meta, errstr, errstr_size) < 0)
    return -1;
  if (!json_object_get(o, "entity_id") && !json_object_get(o, "grand_total"))
    return lp_err(errstr, errstr_size,
                  "record: not an Adobe Commerce order (no \"entity_id\" or "
                  "\"grand_total\")");
  if (lp_json_get_id(o, prefix, "entity_id",
                     LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL, &ev->order_id,
                     errstr, errstr_size) < 0 ||
      (rc = adobe_flag(o, prefix, "customer_is_guest", &guest, errstr,
                       errstr_size)) < 0)
    return -1;
  if (rc > 0 && guest) {
    lp_json_path_join(path, sizeof(path), prefix, "customer_is_guest");
    return lp_err(errstr, errstr_size,
                  "%s: a guest checkout; nothing to attribute", path);
  }
  if (id_is_empty(json_object_get(o, "customer_id"))) {
    lp_json_path_join(path, sizeof(path), prefix, "customer_id");
    return lp_err(errstr, errstr_size,
                  "%s: missing (a guest checkout; nothing to attribute)", path);
  }
  if (lp_json_get_id(o, prefix, "customer_id", LP_JSON_REQUIRED,
                     &ev->customer_id, errstr, errstr_size) < 0 ||
      lp_json_get_raw_str(o, prefix, "state", LP_JSON_EMPTY_NULL, &state,
                          errstr, errstr_size) < 0 ||
      (!state && lp_json_get_raw_str(o, prefix, "status", LP_JSON_EMPTY_NULL,
                                     &state, errstr, errstr_size) < 0))
    return -1;
  ev->status = adobe_status(state);

  if (adobe_time(o, prefix, "created_at", &created, &raw_created, errstr,
                 errstr_size) < 0 ||
      adobe_time(o, prefix, "updated_at", &updated, &raw_updated, errstr,
                 errstr_size) < 0)
    return -1;
  if (ev->status != LP_ORDER_CREATED && raw_updated)
    ev->event_time_ms = updated;
  else if (raw_created)
    ev->event_time_ms = created;
  else if (raw_updated)
    ev->event_time_ms = updated;
  else if (!envelope_time ||
           lp_time_parse_iso8601(envelope_time, &ev->event_time_ms) != 0) {
    lp_json_path_join(path, sizeof(path), prefix, "created_at");
    return lp_err(errstr, errstr_size,
                  "%s: required field missing (and no envelope time)", path);
  }

  if (lp_json_get_str(o, prefix, "order_currency_code",
                      LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL, &ev->currency,
                      errstr, errstr_size) < 0 ||
      lp_json_get_amount(o, prefix, "subtotal", 0, &ev->subtotal_micros, errstr,
                         errstr_size) < 0 ||
      lp_json_get_amount(o, prefix, "discount_amount", 0, &discount, errstr,
                         errstr_size) < 0 ||
      lp_json_get_amount(o, prefix, "tax_amount", 0, &ev->tax_micros, errstr,
                         errstr_size) < 0 ||
      lp_json_get_amount(
          o, prefix,
          ev->status == LP_ORDER_REFUNDED ? "total_refunded" : "grand_total",
          LP_JSON_REQUIRED, &ev->total_micros, errstr, errstr_size) < 0)
    return -1;
  ev->discount_micros = discount < 0 ? -discount : discount;

  if (adobe_items(o, prefix, ev, errstr, errstr_size) < 0 ||
      adobe_shop(meta, default_shop, &ev->shop, errstr, errstr_size) < 0)
    return -1;
  ev->event_id = envelope_id
                     ? lp_xasprintf("adobe:%s", envelope_id)
                     : lp_xasprintf("adobe:order:%s:%s:%s", ev->order_id,
                                    lp_order_status_name(ev->status),
                                    raw_updated   ? raw_updated
                                    : raw_created ? raw_created
                                                  : "-");
  ev->source = lp_xstrdup("adobe_commerce");
  return 0;
}

int lp_adobe_decode_order(const void *json, size_t len,
                          const char *default_shop, struct lp_order_event *out,
                          char *errstr, size_t errstr_size) {
  LP_ASSERT(out != NULL);
  json_t *root = lp_json_parse_object(json, len, errstr, errstr_size);
  if (!root || adobe_order(root, default_shop, out, errstr, errstr_size) != 0 ||
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

/* ---- customers -----------------------------------------------------------
 */

/* dob "YYYY-MM-DD" (a time part after it is dropped) -> birthday. */
static int adobe_birthday(const json_t *c, const char *prefix, char **out,
                          char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], q[64];
  const char *s;
  int rc = lp_json_get_raw_str(c, prefix, "dob", LP_JSON_EMPTY_NULL, &s, errstr,
                               errstr_size);
  if (rc <= 0)
    return rc;
  int ok = strlen(s) >= 10 && (s[10] == '\0' || s[10] == ' ' || s[10] == 'T');
  for (int i = 0; ok && i < 10; i++)
    ok = i == 4 || i == 7 ? s[i] == '-' : isdigit((unsigned char)s[i]) != 0;
  if (!ok) {
    lp_json_path_join(path, sizeof(path), prefix, "dob");
    return lp_err(errstr, errstr_size, "%s: %s is not a YYYY-MM-DD date", path,
                  lp_json_quoted(s, q, sizeof(q)));
  }
  *out = lp_xstrndup(s, 10);
  return 1;
}

static int adobe_customer(const json_t *root, const char *default_shop,
                          struct lp_customer_event *ev, char *errstr,
                          size_t errstr_size) {
  const json_t *c, *meta;
  const char *prefix, *envelope_id, *envelope_time, *raw_created, *raw_updated,
      *email;
  char ext_path[LP_JSON_PATH_MAX];
  json_t *ext;
  int64_t updated = 0;
  int subscribed = 0, rc;

  if (check_type(root, "sales_order", "a customer", errstr, errstr_size) < 0 ||
      adobe_resource(root, "customer", "email", &c, &prefix, &envelope_id,
                     &envelope_time, &meta, errstr, errstr_size) < 0)
    return -1;
  if (json_object_get(c, "grand_total") || json_object_get(c, "items"))
    return lp_err(errstr, errstr_size,
                  "record: an Adobe Commerce order, not a customer");
  if (json_object_get(c, "id"))
    rc = lp_json_get_id(c, prefix, "id", LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL,
                        &ev->customer_id, errstr, errstr_size);
  else
    rc = lp_json_get_id(c, prefix, "entity_id",
                        LP_JSON_REQUIRED | LP_JSON_EMPTY_NULL, &ev->customer_id,
                        errstr, errstr_size);
  if (rc < 0 ||
      adobe_time(c, prefix, "created_at", &ev->customer_created_ms,
                 &raw_created, errstr, errstr_size) < 0 ||
      adobe_time(c, prefix, "updated_at", &updated, &raw_updated, errstr,
                 errstr_size) < 0)
    return -1;
  if (raw_updated)
    ev->event_time_ms = updated;
  else if (raw_created)
    ev->event_time_ms = ev->customer_created_ms;
  else if (!envelope_time ||
           lp_time_parse_iso8601(envelope_time, &ev->event_time_ms) != 0) {
    char path[LP_JSON_PATH_MAX];
    lp_json_path_join(path, sizeof(path), prefix, "updated_at");
    return lp_err(errstr, errstr_size,
                  "%s: required field missing (and no created_at or "
                  "envelope time)",
                  path);
  }
  ev->kind =
      raw_created && raw_updated && ev->customer_created_ms == ev->event_time_ms
          ? LP_CUSTOMER_CREATED
          : LP_CUSTOMER_UPDATED;

  if (lp_json_get_raw_str(c, prefix, "email", 0, &email, errstr, errstr_size) <
          0 ||
      lp_json_get_object(c, prefix, "extension_attributes", 0, &ext, errstr,
                         errstr_size) < 0)
    return -1;
  if (email)
    ev->email_sha256 = lp_json_email_hash(email);
  lp_json_path_join(ext_path, sizeof(ext_path), prefix, "extension_attributes");
  rc = ext ? adobe_flag(ext, ext_path, "is_subscribed", &subscribed, errstr,
                        errstr_size)
           : 0;
  if (rc < 0)
    return -1;
  ev->marketing_consent = rc == 0      ? LP_CONSENT_UNKNOWN
                          : subscribed ? LP_CONSENT_SUBSCRIBED
                                       : LP_CONSENT_UNSUBSCRIBED;
  if (adobe_birthday(c, prefix, &ev->birthday, errstr, errstr_size) < 0 ||
      adobe_shop(meta, default_shop, &ev->shop, errstr, errstr_size) < 0)
    return -1;
  ev->event_id = envelope_id
                     ? lp_xasprintf("adobe:%s", envelope_id)
                     : lp_xasprintf("adobe:customer:%s:%s", ev->customer_id,
                                    raw_updated   ? raw_updated
                                    : raw_created ? raw_created
                                                  : "-");
  ev->source = lp_xstrdup("adobe_commerce");
  return 0;
}

int lp_adobe_decode_customer(const void *json, size_t len,
                             const char *default_shop,
                             struct lp_customer_event *out, char *errstr,
                             size_t errstr_size) {
  LP_ASSERT(out != NULL);
  json_t *root = lp_json_parse_object(json, len, errstr, errstr_size);
  if (!root ||
      adobe_customer(root, default_shop, out, errstr, errstr_size) != 0 ||
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
