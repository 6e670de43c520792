/*
 * shop_bigcommerce.c — the BigCommerce REST API for importers (shared
 * reference apis.md §6), over the generated shop:
 *
 *   GET /stores/<hash>/v2/orders[?page&limit&min_id&max_id&sort
 *        &min_date_created&max_date_created&min_date_modified
 *        &max_date_modified&status_id&customer_id]
 *                                            [v2 orders], 204 past the end
 *   GET /stores/<hash>/v2/orders/count       {"count":N,"statuses":[...]}
 *   GET /stores/<hash>/v2/orders/<id>        v2 order or 404
 *   GET /stores/<hash>/v2/orders/<id>/products
 *   GET /stores/<hash>/v3/customers[?id:in=1,2&page&limit]
 *   GET /stores/<hash>/v3/orders/<id>/payment_actions/refunds
 *
 * Layers, in order: store hash (404), X-Auth-Token (401), Accept (406
 * when it rules JSON out), the quota window (429), path and method,
 * parameters (400), the answer. Every response carries the X-Rate-Limit-*
 * headers (those refused before the quota show it untouched). v2 errors are
 * arrays of {status, message}, v3 errors {status, title, type[, errors]}, as
 * BigCommerce answers.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shop.h"
#include "util.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT 250
#define MAX_PAGE 10000000LL
#define MAX_IDS 250

static const char error_type[] =
    "https://developer.bigcommerce.com/api-docs/getting-started/"
    "api-status-codes";

static void v2_error(struct sb_response *resp, int status,
                     const char *message) {
  sb_respond_json(resp, status,
                  json_pack("[{si ss}]", "status", status, "message", message),
                  NULL);
}

static void v3_error(struct sb_response *resp, int status, const char *title,
                     const char *field, const char *detail) {
  json_t *body = json_pack("{si ss ss}", "status", status, "title", title,
                           "type", error_type);
  if (field)
    json_object_set_new(body, "errors", json_pack("{ss}", field, detail));
  sb_respond_json(resp, status, body, NULL);
}

static void bad_field(struct sb_response *resp, const char *field,
                      const char *rule) {
  char msg[200];
  snprintf(msg, sizeof(msg), "The field '%s' is invalid: %s.", field, rule);
  v2_error(resp, 400, msg);
}

/* An integer query value in [min, max] into *out (unchanged when
 * absent); 0, or -1 with the 400 filled in. */
static int int_param(const struct sb_request *req, const char *name,
                     long long min, long long max, long long *out,
                     struct sb_response *resp) {
  const char *v = req->query(req, name);
  if (!v)
    return 0;
  if (sb_parse_long(v, min, max, out) != 0) {
    char rule[96];
    snprintf(rule, sizeof(rule), "an integer from %lld to %lld", min, max);
    bad_field(resp, name, rule);
    return -1;
  }
  return 0;
}

static int time_param(const struct sb_request *req, const char *name,
                      int64_t *ms, struct sb_response *resp) {
  const char *v = req->query(req, name);
  if (!v)
    return 0;
  if (sb_shop_time_parse(v, ms) != 0) {
    bad_field(resp, name, "an RFC 2822 or ISO 8601 date");
    return -1;
  }
  return 0;
}

/* ---- v2 orders ------------------------------------------------------ */

struct order_query {
  int64_t lo, hi;                   /* k range */
  long long status_id, customer_id; /* -1 = any */
  int64_t mmin, mmax;               /* date_modified, ms */
  int desc;
};

static int per_item(const struct order_query *q) {
  return q->status_id >= 0 || q->customer_id >= 0 || q->mmin != INT64_MIN ||
         q->mmax != INT64_MAX;
}

static int order_matches(const struct sb_shop_config *cfg,
                         const struct order_query *q, int64_t k) {
  if (!per_item(q))
    return 1;
  struct sb_shop_order o;
  sb_shop_order_get(cfg, k, &o);
  return (q->status_id < 0 || o.bc_status_id == q->status_id) &&
         (q->customer_id < 0 ||
          sb_shop_bc_customer_id(o.customer) == q->customer_id) &&
         o.updated_s * 1000 >= q->mmin && o.updated_s * 1000 <= q->mmax;
}

static int64_t ceil_s(int64_t ms) {
  return ms >= 0 ? (ms + 999) / 1000 : -((-ms) / 1000);
}

static int64_t floor_s(int64_t ms) {
  return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

/* 0, or -1 with the 400 filled in. */
static int parse_order_query(const struct sb_request *req,
                             const struct sb_shop_config *cfg,
                             struct order_query *q, struct sb_response *resp) {
  memset(q, 0, sizeof(*q));
  q->lo = 0;
  q->hi = cfg->orders;
  q->status_id = q->customer_id = -1;
  q->mmin = INT64_MIN;
  q->mmax = INT64_MAX;
  long long min_id = -1, max_id = -1;
  int64_t cmin = INT64_MIN, cmax = INT64_MAX;
  if (int_param(req, "min_id", 0, INT64_MAX, &min_id, resp) ||
      int_param(req, "max_id", 0, INT64_MAX, &max_id, resp) ||
      int_param(req, "status_id", 0, 14, &q->status_id, resp) ||
      int_param(req, "customer_id", 0, INT64_MAX, &q->customer_id, resp) ||
      time_param(req, "min_date_created", &cmin, resp) ||
      time_param(req, "max_date_created", &cmax, resp) ||
      time_param(req, "min_date_modified", &q->mmin, resp) ||
      time_param(req, "max_date_modified", &q->mmax, resp))
    return -1;
  const char *sort = req->query(req, "sort");
  if (sort && strcmp(sort, "id:asc") != 0 && strcmp(sort, "id:desc") != 0) {
    bad_field(resp, "sort", "id:asc or id:desc in the sandbox");
    return -1;
  }
  q->desc = sort && strcmp(sort, "id:desc") == 0;
  int64_t base = sb_shop_bc_order_id(0);
  if (min_id >= 0 && min_id - base > q->lo)
    q->lo = min_id - base;
  if (max_id >= 0 && max_id - base + 1 < q->hi)
    q->hi = max_id - base + 1;
  /* created ascends with k; modified lies within the update delay. */
  if (cmin != INT64_MIN) {
    int64_t k = sb_shop_first_created_at_or_after(cfg, ceil_s(cmin));
    if (k > q->lo)
      q->lo = k;
  }
  if (q->mmin != INT64_MIN) {
    int64_t k = sb_shop_first_created_at_or_after(
        cfg, ceil_s(q->mmin) - sb_shop_max_update_delay_s());
    if (k > q->lo)
      q->lo = k;
  }
  int64_t max = cmax < q->mmax ? cmax : q->mmax;
  if (max != INT64_MAX) {
    int64_t k = sb_shop_first_created_at_or_after(cfg, floor_s(max) + 1);
    if (k < q->hi)
      q->hi = k;
  }
  if (q->lo < 0)
    q->lo = 0;
  if (q->hi < q->lo)
    q->hi = q->lo;
  return 0;
}

static void serve_orders(const struct sb_shop_config *cfg,
                         const struct sb_request *req,
                         struct sb_response *resp) {
  struct order_query q;
  long long page = 1, limit = DEFAULT_LIMIT;
  if (parse_order_query(req, cfg, &q, resp) != 0 ||
      int_param(req, "page", 1, MAX_PAGE, &page, resp) != 0 ||
      int_param(req, "limit", 1, MAX_LIMIT, &limit, resp) != 0)
    return;
  int64_t skip = (page - 1) * limit;
  int64_t picked[MAX_LIMIT];
  int n = 0;
  if (!per_item(&q)) {
    /* Every index matches: the page is arithmetic. */
    int64_t span = q.hi - q.lo;
    for (int64_t i = skip; i < span && n < limit; i++)
      picked[n++] = q.desc ? q.hi - 1 - i : q.lo + i;
  } else {
    int64_t seen = 0;
    for (int64_t j = 0; j < q.hi - q.lo && n < limit; j++) {
      int64_t k = q.desc ? q.hi - 1 - j : q.lo + j;
      if (!order_matches(cfg, &q, k))
        continue;
      if (seen++ >= skip)
        picked[n++] = k;
    }
  }
  if (n == 0) {
    sb_respond_empty(resp, 204); /* BigCommerce: no (more) orders */
    return;
  }
  char base[160];
  sb_shop_base_url(req, base, sizeof(base));
  json_t *arr = json_array();
  for (int i = 0; i < n; i++) {
    struct sb_shop_order o;
    sb_shop_order_get(cfg, picked[i], &o);
    json_array_append_new(arr, sb_shop_bc_order_json(cfg, &o, base));
  }
  sb_respond_json(resp, 200, arr, NULL);
}

static void serve_orders_count(const struct sb_shop_config *cfg,
                               const struct sb_request *req,
                               struct sb_response *resp) {
  struct order_query q;
  if (parse_order_query(req, cfg, &q, resp) != 0)
    return;
  static const int ids[] = {5, 10, 11, 14};
  long long by[LP_ARRAY_LEN(ids)] = {0};
  long long total = 0;
  for (int64_t k = q.lo; k < q.hi; k++) {
    if (!order_matches(cfg, &q, k))
      continue;
    struct sb_shop_order o;
    sb_shop_order_get(cfg, k, &o);
    total++;
    for (size_t i = 0; i < LP_ARRAY_LEN(ids); i++)
      by[i] += o.bc_status_id == ids[i];
  }
  json_t *statuses = json_array();
  for (size_t i = 0; i < LP_ARRAY_LEN(ids); i++)
    json_array_append_new(statuses,
                          json_pack("{si ss sI}", "id", ids[i], "name",
                                    sb_shop_bc_status_name(ids[i]), "count",
                                    (json_int_t)by[i]));
  sb_respond_json(
      resp, 200,
      json_pack("{so sI}", "statuses", statuses, "count", (json_int_t)total),
      NULL);
}

/* The order k of an id segment, or -1. */
static int64_t order_index(const struct sb_shop_config *cfg,
                           const struct sb_segment *seg) {
  char text[24];
  long long id;
  if (seg->len >= sizeof(text))
    return -1;
  memcpy(text, seg->s, seg->len);
  text[seg->len] = '\0';
  if (sb_parse_long(text, 0, INT64_MAX, &id) != 0)
    return -1;
  int64_t k = id - sb_shop_bc_order_id(0);
  return k >= 0 && k < cfg->orders ? k : -1;
}

/* ---- v3 ------------------------------------------------------------- */

static int compare_ids(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static void serve_customers(const struct sb_shop_config *cfg,
                            const struct sb_request *req,
                            struct sb_response *resp) {
  long long page = 1, limit = DEFAULT_LIMIT;
  const char *v;
  if ((v = req->query(req, "page")) &&
      sb_parse_long(v, 1, MAX_PAGE, &page) != 0) {
    v3_error(resp, 422, "Invalid page", "page", "an integer from 1");
    return;
  }
  if ((v = req->query(req, "limit")) &&
      sb_parse_long(v, 1, MAX_LIMIT, &limit) != 0) {
    v3_error(resp, 422, "Invalid limit", "limit", "an integer from 1 to 250");
    return;
  }
  long long ids[MAX_IDS];
  int n_ids = -1; /* -1 = every customer */
  if ((v = req->query(req, "id:in"))) {
    n_ids = 0;
    for (const char *p = v;;) {
      const char *end = strchr(p, ',');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      char text[24];
      long long id;
      if (n_ids == MAX_IDS || len == 0 || len >= sizeof(text)) {
        v3_error(resp, 422, "Invalid id:in", "id:in",
                 "a comma-separated list of at most 250 customer ids");
        return;
      }
      memcpy(text, p, len);
      text[len] = '\0';
      if (sb_parse_long(text, 1, INT64_MAX, &id) != 0) {
        v3_error(resp, 422, "Invalid id:in", "id:in",
                 "customer ids are positive integers");
        return;
      }
      int64_t c = id - sb_shop_bc_customer_id(0);
      if (c >= 0 && c < cfg->customers)
        ids[n_ids++] = id;
      if (!end)
        break;
      p = end + 1;
    }
    qsort(ids, (size_t)n_ids, sizeof(ids[0]), compare_ids);
    int u = 0;
    for (int i = 0; i < n_ids; i++)
      if (u == 0 || ids[u - 1] != ids[i])
        ids[u++] = ids[i];
    n_ids = u;
  }
  long long total = n_ids < 0 ? cfg->customers : n_ids;
  json_t *data = json_array();
  int64_t skip = (page - 1) * limit;
  for (int64_t i = skip; i < total && i < skip + limit; i++) {
    int64_t c = n_ids < 0 ? i : ids[i] - sb_shop_bc_customer_id(0);
    struct sb_shop_customer cu;
    sb_shop_customer_get(cfg, c, &cu);
    json_array_append_new(data, sb_shop_bc_customer_json(cfg, &cu));
  }
  long long pages = (total + limit - 1) / limit;
  char current[64], prev[64], next[64];
  snprintf(current, sizeof(current), "?page=%lld&limit=%lld", page, limit);
  snprintf(prev, sizeof(prev), "?page=%lld&limit=%lld", page - 1, limit);
  snprintf(next, sizeof(next), "?page=%lld&limit=%lld", page + 1, limit);
  json_t *links = json_pack("{ss}", "current", current);
  if (page > 1)
    json_object_set_new(links, "previous", json_string(prev));
  if (page < pages)
    json_object_set_new(links, "next", json_string(next));
  json_t *meta =
      json_pack("{s{sI sI sI sI sI so}}", "pagination", "total",
                (json_int_t)total, "count", (json_int_t)json_array_size(data),
                "per_page", (json_int_t)limit, "current_page", (json_int_t)page,
                "total_pages", (json_int_t)pages, "links", links);
  sb_respond_json(resp, 200, json_pack("{so so}", "data", data, "meta", meta),
                  NULL);
}

static void serve_refunds(const struct sb_shop_config *cfg, int64_t k,
                          struct sb_response *resp) {
  struct sb_shop_order o;
  sb_shop_order_get(cfg, k, &o);
  json_t *data = json_array();
  json_t *refund = sb_shop_bc_refund_json(cfg, &o);
  if (refund)
    json_array_append_new(data, refund);
  sb_respond_json(resp, 200, json_pack("{so s{}}", "data", data, "meta"), NULL);
}

/* ---- routing -------------------------------------------------------- */

static int accepts_json(const struct sb_request *req) {
  const char *accept = req->header(req, "Accept");
  return !accept || !*accept || strstr(accept, "json") || strstr(accept, "*/*");
}

static void route(const struct sb_shop_config *cfg,
                  const struct sb_request *req, struct sb_segment *seg, int n,
                  struct sb_response *resp) {
  int v2 = sb_segment_is(&seg[2], "v2");
  int get = strcmp(req->method, "GET") == 0;
  int64_t k = -1;
  enum {
    NONE,
    ORDERS,
    ORDERS_COUNT,
    ORDER,
    PRODUCTS,
    CUSTOMERS,
    REFUNDS
  } what = NONE;
  if (v2 && n >= 4 && sb_segment_is(&seg[3], "orders")) {
    if (n == 4) {
      what = ORDERS;
    } else if (n == 5 && sb_segment_is(&seg[4], "count")) {
      what = ORDERS_COUNT;
    } else if (n == 5 || (n == 6 && sb_segment_is(&seg[5], "products"))) {
      k = order_index(cfg, &seg[4]);
      what = n == 5 ? ORDER : PRODUCTS;
    }
  } else if (!v2 && n == 4 && sb_segment_is(&seg[3], "customers")) {
    what = CUSTOMERS;
  } else if (!v2 && n == 7 && sb_segment_is(&seg[3], "orders") &&
             sb_segment_is(&seg[5], "payment_actions") &&
             sb_segment_is(&seg[6], "refunds")) {
    k = order_index(cfg, &seg[4]);
    what = REFUNDS;
  }
  if (what == NONE) {
    if (v2)
      v2_error(resp, 404, "The requested resource was not found.");
    else
      v3_error(resp, 404, "The requested resource was not found.", NULL, NULL);
    return;
  }
  if (!get) {
    if (v2)
      v2_error(resp, 405, "The sandbox serves GET only.");
    else
      v3_error(resp, 405, "The sandbox serves GET only.", NULL, NULL);
    return;
  }
  if ((what == ORDER || what == PRODUCTS || what == REFUNDS) && k < 0) {
    if (v2)
      v2_error(resp, 404, "The requested resource was not found.");
    else
      v3_error(resp, 404, "Order not found", NULL, NULL);
    return;
  }
  struct sb_shop_order o;
  char base[160];
  switch (what) {
  case ORDERS:
    serve_orders(cfg, req, resp);
    break;
  case ORDERS_COUNT:
    serve_orders_count(cfg, req, resp);
    break;
  case ORDER:
    sb_shop_order_get(cfg, k, &o);
    sb_shop_base_url(req, base, sizeof(base));
    sb_respond_json(resp, 200, sb_shop_bc_order_json(cfg, &o, base), NULL);
    break;
  case PRODUCTS:
    sb_shop_order_get(cfg, k, &o);
    sb_respond_json(resp, 200, sb_shop_bc_products_json(cfg, &o), NULL);
    break;
  case CUSTOMERS:
    serve_customers(cfg, req, resp);
    break;
  case REFUNDS:
    serve_refunds(cfg, k, resp);
    break;
  case NONE:
    break;
  }
}

void sb_shop_bc_serve(struct sb_shop *shop, const struct sb_request *req,
                      struct sb_response *resp) {
  struct sb_shop_config cfg;
  sb_shop_snapshot(shop, &cfg);
  struct sb_segment seg[8];
  int n = sb_path_split(req->path, seg, 8, 0);
  if (n < 3 || !sb_segment_is(&seg[0], "stores") ||
      !sb_segment_is(&seg[1], cfg.store_hash) ||
      !(sb_segment_is(&seg[2], "v2") || sb_segment_is(&seg[2], "v3"))) {
    v3_error(resp, 404, "Store or API version not found", NULL, NULL);
  } else if (!req->header(req, "X-Auth-Token") ||
             strcmp(req->header(req, "X-Auth-Token"), cfg.bigcommerce_token) !=
                 0) {
    v3_error(resp, 401, "No valid credentials were found in this request", NULL,
             NULL);
  } else if (!accepts_json(req)) {
    v2_error(resp, 406, "The sandbox answers application/json only.");
  } else if (sb_shop_admit(shop, SB_SHOP_BIGCOMMERCE, req->now_ms, resp) == 0) {
    route(&cfg, req, seg, n, resp);
  }
  if (!resp->n_headers) /* refused before the quota: show it anyway */
    sb_shop_rate_headers(shop, SB_SHOP_BIGCOMMERCE, req->now_ms, resp);
  sb_shop_count(shop, SB_SHOP_BIGCOMMERCE, resp->status);
}
