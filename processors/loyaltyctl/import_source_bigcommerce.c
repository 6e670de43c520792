/*
 * import_source_bigcommerce.c — BigCommerce backfill (apis.md §6) as an
 * import source: GET /stores/<hash>/v2/orders?page=P&limit=250&sort=id:asc
 * for P = 1, 2, ... until an answer is 204 No Content or an empty array,
 * and GET /stores/<hash>/v2/orders/<id>/products for every order on the
 * page. The cursor is the page number. The quota headers are honoured by
 * import_http.c.
 *
 * Mapping (common/bigcommerce.h, lp_bigcommerce_decode_order): every order
 * gives a "created" event (as the store/order/created scope would), and an
 * order whose status is cancelled/declined or (partially) refunded a
 * second event with that status — the same events, with the same ids, as
 * the live webhooks give. A guest order (customer_id 0) or a field that
 * does not map is reported with the order id and counted as bad.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bigcommerce.h"
#include "import_internal.h"
#include "util.h"

struct bc_source {
  struct imp_source base; /* first: the driver holds this */
  struct imp_http *http;
  char *store_hash;
  char *shop;   /* NULL: the decoder's default "bc-<store_hash>" */
  char *filter; /* owned: "&min_date_modified=..." or "" */
  long limit;
};

static void bc_destroy(struct imp_source *s) {
  struct bc_source *bs = (struct bc_source *)s;
  imp_http_destroy(&bs->http);
  free(bs->store_hash);
  free(bs->shop);
  free(bs->filter);
}

/* The created event and, for a cancelled or refunded order, the event of
 * its current status. */
static void map_order(struct bc_source *bs, const char *order, size_t olen,
                      const char *products, size_t plen, long long id,
                      struct imp_page *page) {
  char err[512];
  struct lp_bc_hints h = {0};
  h.store_hash = bs->store_hash;
  h.default_shop = bs->shop;
  h.scope = "store/order/created";
  struct imp_record *r = imp_page_add(page);
  if (lp_bigcommerce_decode_order(order, olen, products, plen, &h, &r->order,
                                  err, sizeof(err)) != 0) {
    imp_page_drop_last(page);
    page->bad++;
    imp_report_bad("bigcommerce order %lld: %s", id, err);
    return;
  }
  h.scope = NULL;
  r = imp_page_add(page);
  if (lp_bigcommerce_decode_order(order, olen, products, plen, &h, &r->order,
                                  err, sizeof(err)) != 0) {
    imp_page_drop_last(page);
    page->bad++;
    imp_report_bad("bigcommerce order %lld (status): %s", id, err);
    return;
  }
  if (r->order.status != LP_ORDER_CANCELLED &&
      r->order.status != LP_ORDER_REFUNDED)
    imp_page_drop_last(page);
}

static int bc_fetch(struct imp_source *s, const char *cursor,
                    struct imp_page *page, char *errstr, size_t errstr_size) {
  struct bc_source *bs = (struct bc_source *)s;
  char *end;
  long pageno = strtol(cursor, &end, 10);
  if (*end || pageno < 1)
    return lp_err(errstr, errstr_size, "bigcommerce cursor: bad page \"%s\"",
                  cursor);
  struct lp_http_response r, pr;
  lp_http_response_init(&r);
  lp_http_response_init(&pr);
  json_t *root = NULL;
  char why[512];
  char *path =
      lp_xasprintf("/stores/%s/v2/orders?page=%ld&limit=%ld&sort=id:asc%s",
                   bs->store_hash, pageno, bs->limit, bs->filter);
  int rc = imp_http_get(bs->http, path, &r, errstr, errstr_size);
  if (rc != 0)
    goto out;
  rc = -1;
  if (r.status == 204) {
    rc = 0; /* past the last page */
    goto out;
  }
  if (r.status != 200) {
    imp_http_describe(&r, why, sizeof(why));
    lp_err(errstr, errstr_size, "GET %s: %s", path, why);
    goto out;
  }
  json_error_t je;
  root = json_loadb((const char *)r.body.data, r.body.len, 0, &je);
  if (!root) {
    lp_err(errstr, errstr_size, "GET %s: not JSON (%d:%d: %s)", path, je.line,
           je.column, je.text);
    goto out;
  }
  if (!json_is_array(root)) {
    lp_err(errstr, errstr_size, "GET %s: expected an array of orders", path);
    goto out;
  }
  size_t i;
  json_t *item;
  json_array_foreach(root, i, item) {
    page->items++;
    json_t *idv = json_is_object(item) ? json_object_get(item, "id") : NULL;
    if (!json_is_integer(idv) || json_integer_value(idv) <= 0) {
      page->bad++;
      imp_report_bad("bigcommerce page %ld, order #%zu: id: expected a "
                     "positive integer",
                     pageno, i);
      continue;
    }
    long long id = json_integer_value(idv);
    char *ppath =
        lp_xasprintf("/stores/%s/v2/orders/%lld/products", bs->store_hash, id);
    rc = imp_http_get(bs->http, ppath, &pr, errstr, errstr_size);
    /* 404: the order went away between the list and this call; it is
     * still imported, without line items (as an order with none). */
    if (rc == 0 && pr.status != 200 && pr.status != 204 && pr.status != 404) {
      imp_http_describe(&pr, why, sizeof(why));
      lp_err(errstr, errstr_size, "GET %s: %s", ppath, why);
      rc = -1;
    }
    free(ppath);
    if (rc != 0)
      goto out;
    char *text = json_dumps(item, JSON_COMPACT);
    map_order(bs, text, strlen(text),
              pr.status == 200 ? (const char *)pr.body.data : NULL,
              pr.status == 200 ? pr.body.len : 0, id, page);
    free(text);
    imp_progress_tick(imp_current_progress);
  }
  if (json_array_size(root) > 0)
    page->next = lp_xasprintf("%ld", pageno + 1);
  rc = 0;
out:
  json_decref(root);
  free(path);
  lp_http_response_clear(&r);
  lp_http_response_clear(&pr);
  return rc;
}

/* GET v2/orders/count, for the ETA (ignored when it fails). */
static void bc_estimate(struct imp_source *s, const char *cursor) {
  struct bc_source *bs = (struct bc_source *)s;
  (void)cursor;
  struct lp_http_response r;
  lp_http_response_init(&r);
  char err[256];
  char *path = lp_xasprintf("/stores/%s/v2/orders/count%s%s", bs->store_hash,
                            bs->filter[0] ? "?" : "",
                            bs->filter[0] ? bs->filter + 1 : "");
  int retries = imp_http_set_max_retries(bs->http, 0);
  int got = imp_http_get(bs->http, path, &r, err, sizeof(err));
  imp_http_set_max_retries(bs->http, retries);
  if (got == 0 && r.status == 200) {
    json_t *root = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
    json_t *count = json_object_get(root, "count");
    if (json_is_integer(count) && json_integer_value(count) > 0)
      s->stats->total = json_integer_value(count);
    json_decref(root);
  }
  free(path);
  lp_http_response_clear(&r);
}

struct imp_source *imp_bigcommerce_new(const struct imp_options *o,
                                       struct imp_stats *st, char *errstr,
                                       size_t errstr_size) {
  if (!o->url || !o->token || !o->store_hash) {
    lp_err(errstr, errstr_size,
           "import bigcommerce: --url, --store-hash and --token are required");
    return NULL;
  }
  for (const char *p = o->store_hash; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
          (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_')) {
      lp_err(errstr, errstr_size, "--store-hash: unexpected %s", o->store_hash);
      return NULL;
    }
  if (o->limit > 250) {
    lp_err(errstr, errstr_size, "--limit: at most 250 for BigCommerce");
    return NULL;
  }
  char *auth = lp_xasprintf("X-Auth-Token: %s", o->token);
  struct imp_http_config hc = {
      o->url, auth, IMP_RATE_BIGCOMMERCE, o->timeout_ms, (int)o->max_retries,
      0,      0};
  struct imp_http *http = imp_http_new(&hc, st, errstr, errstr_size);
  free(auth);
  if (!http)
    return NULL;
  struct bc_source *bs = lp_xcalloc(1, sizeof(*bs));
  bs->http = http;
  bs->store_hash = lp_xstrdup(o->store_hash);
  bs->shop = o->shop ? lp_xstrdup(o->shop) : NULL;
  bs->limit = o->limit > 0 ? o->limit : 250;
  if (o->updated_at_min) {
    char *v = imp_url_escape(o->updated_at_min);
    bs->filter = lp_xasprintf("&min_date_modified=%s", v);
    free(v);
  } else {
    bs->filter = lp_xstrdup("");
  }
  bs->base.kind = "bigcommerce";
  bs->base.first_cursor = lp_xstrdup("1");
  bs->base.identity =
      lp_xasprintf("bigcommerce orders store_hash=%s shop=%s limit=%ld "
                   "min_date_modified=%s",
                   o->store_hash, o->shop ? o->shop : "", bs->limit,
                   o->updated_at_min ? o->updated_at_min : "");
  bs->base.fetch = bc_fetch;
  bs->base.estimate = bc_estimate;
  bs->base.destroy = bc_destroy;
  bs->base.stats = st;
  return &bs->base;
}
