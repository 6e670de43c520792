/*
 * import_source_shopify.c — Shopify REST backfill (apis.md §5) as an
 * import source: GET /admin/api/<version>/orders.json?status=any&limit=250
 * (or customers.json), then the Link rel="next" page_info URL of every
 * answer until an answer has none. The cursor is the path and query of the
 * next page, always sent to --url (the token never follows a Link to
 * another host).
 *
 * Mapping (common/json_codec.h), each order body re-serialised and decoded
 * as the webhook of its topic would be, so imported and live events share
 * event ids:
 *   - every order: orders/create  -> a "created" event
 *   - cancelled_at set: orders/cancelled -> a "cancelled" event
 *   - each refunds[] entry: refunds/create -> a "refunded" event
 *   - customers: customers/create or customers/update, as the body says
 * An order that does not map (a guest checkout, a bad field) is reported
 * with its id and the reason, counted as bad and skipped; a page that is
 * not the JSON we expect stops the run (skipping it would lose orders).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "import_internal.h"
#include "json_codec.h"
#include "util.h"

struct shopify_source {
  struct imp_source base; /* first: the driver holds this */
  struct imp_http *http;
  char *shop;
  char *count_path; /* owned: orders/count.json?... for the ETA */
  const char *array_key;
};

static void shopify_destroy(struct imp_source *s) {
  struct shopify_source *ss = (struct shopify_source *)s;
  imp_http_destroy(&ss->http);
  free(ss->shop);
  free(ss->count_path);
}

/* The URL of rel="next" in a Link header value, or NULL. Returns a copy the
 * caller frees. */
static char *link_next(const char *link) {
  const char *p = link;
  while (p && *p) {
    const char *lt = strchr(p, '<');
    if (!lt)
      return NULL;
    const char *gt = strchr(lt, '>');
    if (!gt)
      return NULL;
    const char *end = strchr(gt, ',');
    /* This entry's parameters run from its ">" to the next ",". */
    size_t params_len = end ? (size_t)(end - gt) : strlen(gt);
    char params[256];
    snprintf(params, sizeof(params), "%.*s", (int)params_len, gt);
    if (strstr(params, "rel=\"next\"") || strstr(params, "rel=next"))
      return lp_xstrndup(lt + 1, (size_t)(gt - lt - 1));
    p = end ? end + 1 : NULL;
  }
  return NULL;
}

/* Text of a JSON id for messages ("#<index>" when there is none). */
static void id_text(json_t *item, size_t index, char *out, size_t size) {
  json_t *id = json_is_object(item) ? json_object_get(item, "id") : NULL;
  if (json_is_integer(id))
    snprintf(out, size, "%lld", (long long)json_integer_value(id));
  else if (json_is_string(id))
    snprintf(out, size, "%.40s", json_string_value(id));
  else
    snprintf(out, size, "#%zu", index);
}

/* Decodes one order as orders/create, plus orders/cancelled and one
 * refunds/create per refund; failures are reported and counted. */
static void map_order(struct shopify_source *ss, json_t *item, const char *id,
                      struct imp_page *page) {
  char err[512];
  char *text = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
  struct lp_json_hints hints = {0};
  hints.shop_domain = ss->shop;
  hints.shopify_topic = "orders/create";
  struct imp_record *r = imp_page_add(page);
  if (!text || lp_json_decode_order(text, strlen(text), &hints, &r->order, err,
                                    sizeof(err)) != 0) {
    imp_page_drop_last(page);
    page->bad++;
    imp_report_bad("shopify order %s: %s", id, text ? err : "not encodable");
    free(text);
    return;
  }
  /* Kept for the refunds: r moves when the page grows. */
  char *customer_id = lp_xstrdup(r->order.customer_id);
  char *currency = lp_xstrdup(r->order.currency);
  json_t *cancelled = json_object_get(item, "cancelled_at");
  if (cancelled && !json_is_null(cancelled)) {
    hints.shopify_topic = "orders/cancelled";
    r = imp_page_add(page);
    if (lp_json_decode_order(text, strlen(text), &hints, &r->order, err,
                             sizeof(err)) != 0) {
      imp_page_drop_last(page);
      page->bad++;
      imp_report_bad("shopify order %s (cancellation): %s", id, err);
    }
  }
  json_t *refunds = json_object_get(item, "refunds");
  if (refunds && !json_is_null(refunds) && !json_is_array(refunds)) {
    page->bad++;
    imp_report_bad("shopify order %s: refunds: expected an array", id);
  }
  size_t i;
  json_t *refund;
  json_array_foreach(refunds, i, refund) {
    char *rtext = json_dumps(refund, JSON_COMPACT | JSON_ENCODE_ANY);
    struct lp_json_hints rh = {0};
    rh.shop_domain = ss->shop;
    rh.shopify_topic = "refunds/create";
    r = imp_page_add(page);
    if (!rtext || lp_json_decode_shopify_refund(
                      rtext, strlen(rtext), &rh, customer_id, currency,
                      &r->order, err, sizeof(err)) != 0) {
      imp_page_drop_last(page);
      page->bad++;
      imp_report_bad("shopify order %s: refunds[%zu]: %s", id, i,
                     rtext ? err : "not encodable");
    }
    free(rtext);
  }
  free(customer_id);
  free(currency);
  free(text);
}

static void map_customer(struct shopify_source *ss, json_t *item,
                         const char *id, struct imp_page *page) {
  char err[512];
  char *text = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
  struct lp_json_hints hints = {0};
  hints.shop_domain = ss->shop;
  struct imp_record *r = imp_page_add(page);
  r->is_customer = 1;
  if (!text || lp_json_decode_customer(text, strlen(text), &hints, &r->customer,
                                       err, sizeof(err)) != 0) {
    imp_page_drop_last(page);
    page->bad++;
    imp_report_bad("shopify customer %s: %s", id, text ? err : "not encodable");
  }
  free(text);
}

static int shopify_fetch(struct imp_source *s, const char *cursor,
                         struct imp_page *page, char *errstr,
                         size_t errstr_size) {
  struct shopify_source *ss = (struct shopify_source *)s;
  struct lp_http_response r;
  lp_http_response_init(&r);
  json_t *root = NULL;
  char why[512], *link = NULL;
  int rc = imp_http_get(ss->http, cursor, &r, errstr, errstr_size);
  if (rc != 0)
    goto out;
  rc = -1;
  if (r.status != 200) {
    imp_http_describe(&r, why, sizeof(why));
    lp_err(errstr, errstr_size, "GET %s: %s", cursor, why);
    goto out;
  }
  json_error_t je;
  root = json_loadb((const char *)r.body.data, r.body.len, 0, &je);
  json_t *arr = root ? json_object_get(root, ss->array_key) : NULL;
  if (!root) {
    lp_err(errstr, errstr_size, "GET %s: not JSON (%d:%d: %s)", cursor, je.line,
           je.column, je.text);
    goto out;
  }
  if (!json_is_array(arr)) {
    lp_err(errstr, errstr_size, "GET %s: %s: expected an array", cursor,
           ss->array_key);
    goto out;
  }
  size_t i;
  json_t *item;
  json_array_foreach(arr, i, item) {
    char id[64];
    id_text(item, i, id, sizeof(id));
    page->items++;
    if (s->customers)
      map_customer(ss, item, id, page);
    else
      map_order(ss, item, id, page);
  }
  /* The whole header (http_get keeps up to 64 KiB of headers): a cut
   * Link could lose rel="next" and end the import early. */
  size_t link_size = r.heads.len + 1;
  link = lp_xmalloc(link_size);
  if (lp_http_response_header(&r, "Link", link, link_size)) {
    char *next = link_next(link);
    const char *path = imp_url_path(next);
    if (next && !path) {
      lp_err(errstr, errstr_size, "GET %s: Link rel=\"next\" has no path: %s",
             cursor, next);
      free(next);
      goto out;
    }
    page->next = path ? lp_xstrdup(path) : NULL;
    free(next);
  }
  rc = 0;
out:
  free(link);
  json_decref(root);
  lp_http_response_clear(&r);
  return rc;
}

/* orders/count.json (or customers/count.json), for the ETA. */
static void shopify_estimate(struct imp_source *s, const char *cursor) {
  struct shopify_source *ss = (struct shopify_source *)s;
  (void)cursor;
  struct lp_http_response r;
  lp_http_response_init(&r);
  char err[256];
  int retries = imp_http_set_max_retries(ss->http, 0);
  int got = imp_http_get(ss->http, ss->count_path, &r, err, sizeof(err));
  imp_http_set_max_retries(ss->http, retries);
  if (got == 0 && r.status == 200) {
    json_t *root = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
    json_t *count = json_object_get(root, "count");
    if (json_is_integer(count) && json_integer_value(count) > 0)
      s->stats->total = json_integer_value(count);
    json_decref(root);
  }
  lp_http_response_clear(&r);
}

struct imp_source *imp_shopify_new(const struct imp_options *o,
                                   struct imp_stats *st, char *errstr,
                                   size_t errstr_size) {
  if (!o->url || !o->token || !o->shop) {
    lp_err(errstr, errstr_size,
           "import shopify: --url, --token and --shop are required");
    return NULL;
  }
  const char *resource = o->resource ? o->resource : "orders";
  if (strcmp(resource, "orders") && strcmp(resource, "customers")) {
    lp_err(errstr, errstr_size,
           "import shopify: --resource orders|customers, got %s", resource);
    return NULL;
  }
  const char *version = o->api_version ? o->api_version : "2025-01";
  for (const char *p = version; *p; p++)
    if (!((*p >= '0' && *p <= '9') || *p == '-' || (*p >= 'a' && *p <= 'z'))) {
      lp_err(errstr, errstr_size, "--api-version: unexpected %s", version);
      return NULL;
    }
  int64_t ms;
  if (o->updated_at_min && lp_time_parse_iso8601(o->updated_at_min, &ms)) {
    lp_err(errstr, errstr_size, "--updated-at-min: not RFC 3339: %s",
           o->updated_at_min);
    return NULL;
  }
  if (o->created_at_max && lp_time_parse_iso8601(o->created_at_max, &ms)) {
    lp_err(errstr, errstr_size, "--created-at-max: not RFC 3339: %s",
           o->created_at_max);
    return NULL;
  }
  char *auth = lp_xasprintf("X-Shopify-Access-Token: %s", o->token);
  struct imp_http_config hc = {o->url,
                               auth,
                               IMP_RATE_SHOPIFY,
                               o->timeout_ms,
                               (int)o->max_retries,
                               0,
                               o->leak_per_s};
  struct imp_http *http = imp_http_new(&hc, st, errstr, errstr_size);
  free(auth);
  if (!http)
    return NULL;
  struct shopify_source *ss = lp_xcalloc(1, sizeof(*ss));
  ss->http = http;
  ss->shop = lp_xstrdup(o->shop);
  ss->array_key = resource;
  int customers = strcmp(resource, "customers") == 0;
  /* Filters go on the first request only: page_info URLs carry them. */
  struct lp_buf f;
  lp_buf_init(&f);
  const char *names[] = {"updated_at_min", "created_at_max"};
  const char *values[] = {o->updated_at_min, o->created_at_max};
  for (size_t i = 0; i < LP_ARRAY_LEN(names); i++)
    if (values[i]) {
      char *v = imp_url_escape(values[i]);
      lp_buf_appendf(&f, "&%s=%s", names[i], v);
      free(v);
    }
  const char *filter = lp_buf_cstr(&f);
  long limit = o->limit > 0 ? o->limit : 250;
  ss->base.kind = "shopify";
  ss->base.customers = customers;
  ss->base.first_cursor =
      customers
          ? lp_xasprintf("/admin/api/%s/customers.json?limit=%ld%s", version,
                         limit, filter)
          : lp_xasprintf("/admin/api/%s/orders.json?status=any&limit=%ld%s",
                         version, limit, filter);
  ss->count_path =
      customers
          ? lp_xasprintf("/admin/api/%s/customers/count.json%s%s", version,
                         filter[0] ? "?" : "", filter[0] ? filter + 1 : "")
          : lp_xasprintf("/admin/api/%s/orders/count.json?status=any%s",
                         version, filter);
  ss->base.identity = lp_xasprintf(
      "shopify %s shop=%s api=%s updated_at_min=%s created_at_max=%s", resource,
      o->shop, version, o->updated_at_min ? o->updated_at_min : "",
      o->created_at_max ? o->created_at_max : "");
  ss->base.fetch = shopify_fetch;
  ss->base.estimate = shopify_estimate;
  ss->base.destroy = shopify_destroy;
  ss->base.stats = st;
  lp_buf_free(&f);
  return &ss->base;
}
