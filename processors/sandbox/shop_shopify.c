/*
 * shop_shopify.c — the Shopify REST Admin API for backfill importers
 * (shared reference apis.md §5 "REST backfill"), over the generated shop:
 *
 *   GET /admin/api/<version>/orders.json        {"orders":[...]}
 *   GET /admin/api/<version>/orders/count.json  {"count":N}
 *   GET /admin/api/<version>/orders/<id>.json   {"order":{...}}
 *   GET /admin/api/<version>/customers.json     {"customers":[...]}
 *   GET /admin/api/<version>/customers/count.json
 *   GET /admin/api/<version>/customers/<id>.json
 *
 * Layers, in order: X-Shopify-Access-Token (401), the leaky bucket (429),
 * path and method (404/405), parameters (400), the answer; every response,
 * the 401 too, carries X-Shopify-Shop-Api-Call-Limit. Lists ascend by
 * id and paginate with Link headers whose page_info is opaque: base64url
 * of the position, the direction and the filters of the first request,
 * so a page_info request may carry only limit and fields (anything else:
 * 400, as Shopify does). As the contract between the sandbox and the
 * importers says, a page has a Link header only when more follow (next,
 * plus previous after the first page); real Shopify also sends
 * rel="previous" alone on the last page. status defaults to open (no
 * cancelled_at); status=closed matches nothing (the sandbox never closes
 * orders).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shop.h"
#include "util.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT 250
#define MAX_FIELDS_LEN 200

enum status_filter { ST_OPEN = 0, ST_CLOSED, ST_CANCELLED, ST_ANY };
/* Financial filter: a sb_shop_financial, or one of these. */
#define FIN_ANY (-1)
#define FIN_NONE (-2) /* a value no generated order has (pending, ...) */

/* What a list request selects: indexes [lo, hi) of orders ('o') or
 * customers ('c') that match the per-item filters. Times are ms. */
struct selection {
  char kind;
  int64_t lo, hi;
  int status, fin;
  int64_t cmin, cmax, umin, umax;
};

static void shopify_error(struct sb_response *resp, int status,
                          const char *message) {
  sb_respond_json(resp, status, json_pack("{ss}", "errors", message), NULL);
}

/* {"errors":{"<field>":"<message>"}}: the parameter and what is wrong. */
static void field_error(struct sb_response *resp, const char *field,
                        const char *message) {
  sb_respond_json(resp, 400, json_pack("{s{ss}}", "errors", field, message),
                  NULL);
}

static int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static int64_t ceil_div(int64_t a, int64_t b) {
  return -floor_div(-a, b);
}

static int matches(const struct sb_shop_config *cfg, const struct selection *s,
                   int64_t i) {
  int64_t created, updated;
  if (s->kind == 'o') {
    struct sb_shop_order o;
    sb_shop_order_get(cfg, i, &o);
    if ((s->status == ST_OPEN && o.cancelled_s) || s->status == ST_CLOSED ||
        (s->status == ST_CANCELLED && !o.cancelled_s))
      return 0;
    if (s->fin == FIN_NONE || (s->fin >= 0 && (int)o.financial != s->fin))
      return 0;
    created = o.created_s;
    updated = o.updated_s;
  } else {
    struct sb_shop_customer cu;
    sb_shop_customer_get(cfg, i, &cu);
    created = cu.created_s;
    updated = cu.updated_s;
  }
  return created * 1000 >= s->cmin && created * 1000 <= s->cmax &&
         updated * 1000 >= s->umin && updated * 1000 <= s->umax;
}

/* First match in [from, hi), or -1. */
static int64_t next_match(const struct sb_shop_config *cfg,
                          const struct selection *s, int64_t from) {
  for (int64_t i = from < s->lo ? s->lo : from; i < s->hi; i++)
    if (matches(cfg, s, i))
      return i;
  return -1;
}

/* Last match in [lo, before), or -1. */
static int64_t prev_match(const struct sb_shop_config *cfg,
                          const struct selection *s, int64_t before) {
  for (int64_t i = (before > s->hi ? s->hi : before) - 1; i >= s->lo; i--)
    if (matches(cfg, s, i))
      return i;
  return -1;
}

/* ---- page_info ------------------------------------------------------ */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_encode(const char *in, size_t len, char *out, size_t size) {
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)(unsigned char)in[i + 1] << 8;
    if (i + 2 < len)
      v |= (unsigned char)in[i + 2];
    size_t n = len - i >= 3 ? 4 : len - i + 1;
    for (size_t j = 0; j < n; j++) {
      LP_ASSERT(o + 1 < size);
      out[o++] = b64url[(v >> (18 - 6 * j)) & 63];
    }
  }
  out[o] = '\0';
}

/* -1 on a character outside the alphabet or a bad length. */
static int b64url_decode(const char *in, char *out, size_t size) {
  size_t len = strlen(in), o = 0;
  if (len % 4 == 1)
    return -1;
  uint32_t v = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    const char *p = strchr(b64url, in[i]);
    if (!p || !in[i])
      return -1;
    v = (v << 6) | (uint32_t)(p - b64url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o + 1 >= size)
        return -1;
      out[o++] = (char)((v >> bits) & 0xff);
    }
  }
  out[o] = '\0';
  return 0;
}

/* A time bound as text: empty for "no bound". */
static void bound_text(char *out, size_t size, int64_t v) {
  if (v == INT64_MIN || v == INT64_MAX)
    out[0] = '\0';
  else
    snprintf(out, size, "%" PRId64, v);
}

/* The token is base64url of "1|kind|dir|pos|lo|hi|status|fin|cmin|cmax|
 * umin|umax", an empty bound meaning none. */
static void page_info_encode(const struct selection *s, char dir, int64_t pos,
                             char *out, size_t size) {
  char b[4][24], text[256];
  bound_text(b[0], sizeof(b[0]), s->cmin);
  bound_text(b[1], sizeof(b[1]), s->cmax);
  bound_text(b[2], sizeof(b[2]), s->umin);
  bound_text(b[3], sizeof(b[3]), s->umax);
  int n = snprintf(
      text, sizeof(text),
      "1|%c|%c|%" PRId64 "|%" PRId64 "|%" PRId64 "|%d|%d|%s|%s|%s|%s", s->kind,
      dir, pos, s->lo, s->hi, s->status, s->fin, b[0], b[1], b[2], b[3]);
  LP_ASSERT(n > 0 && (size_t)n < sizeof(text));
  b64url_encode(text, (size_t)n, out, size);
}

/* Splits text on '|' into at most max fields (pointers into text);
 * returns the count. */
static int split_fields(char *text, char **field, int max) {
  int n = 0;
  for (char *p = text;; p++) {
    if (n == max)
      return max + 1;
    field[n++] = p;
    p = strchr(p, '|');
    if (!p)
      return n;
    *p = '\0';
  }
}

/* 0, or -1 when the token is not one this endpoint issued. */
static int page_info_decode(const char *token, char kind,
                            const struct sb_shop_config *cfg,
                            struct selection *s, char *dir, int64_t *pos) {
  char text[256], *f[12];
  if (strlen(token) > 330 || b64url_decode(token, text, sizeof(text)) != 0 ||
      split_fields(text, f, 12) != 12 || strcmp(f[0], "1") != 0 ||
      strlen(f[1]) != 1 || f[1][0] != kind || strlen(f[2]) != 1 ||
      (f[2][0] != 'n' && f[2][0] != 'p'))
    return -1;
  long long v[9];
  for (int i = 0; i < 9; i++) {
    const char *t = f[3 + i];
    if (i >= 5 && !*t) /* an empty bound: none */
      v[i] = i % 2 ? INT64_MIN : INT64_MAX;
    else if (sb_parse_long(t, INT64_MIN + 1, INT64_MAX - 1, &v[i]) != 0)
      return -1;
  }
  long long total = kind == 'o' ? cfg->orders : cfg->customers;
  if (v[1] < 0 || v[2] < v[1] || v[0] < v[1] || v[0] > v[2] || v[3] < ST_OPEN ||
      v[3] > ST_ANY || v[4] < FIN_NONE || v[4] >= SB_N_FIN)
    return -1;
  memset(s, 0, sizeof(*s));
  s->kind = kind;
  s->lo = v[1] > total ? total : v[1];
  s->hi = v[2] > total ? total : v[2]; /* the shop may have shrunk */
  s->status = (int)v[3];
  s->fin = (int)v[4];
  s->cmin = v[5];
  s->cmax = v[6];
  s->umin = v[7];
  s->umax = v[8];
  *dir = f[2][0];
  *pos = v[0];
  return 0;
}

/* ---- parameters ----------------------------------------------------- */

/* sb_shop_query_each state: the first parameter that may not accompany
 * page_info. */
struct params {
  const char *bad;
};

static int find_extra(void *cls, const char *key, const char *value) {
  (void)value;
  struct params *p = cls;
  if (strcmp(key, "page_info") == 0 || strcmp(key, "limit") == 0 ||
      strcmp(key, "fields") == 0)
    return 0;
  p->bad = key;
  return 1;
}

static int parse_time_param(const struct sb_request *req, const char *name,
                            int64_t *ms, struct sb_response *resp) {
  const char *v = req->query(req, name);
  if (!v)
    return 0;
  if (sb_shop_time_parse(v, ms) != 0) {
    char msg[160];
    snprintf(msg, sizeof(msg), "must be an ISO 8601 time, got \"%.60s\"", v);
    field_error(resp, name, msg);
    return -1;
  }
  return 1;
}

/* Filters of a first (non-page_info) request into *s; 0, or -1 with the
 * 400 filled in. */
static int parse_filters(const struct sb_request *req,
                         const struct sb_shop_config *cfg, char kind,
                         struct selection *s, struct sb_response *resp) {
  memset(s, 0, sizeof(*s));
  s->kind = kind;
  s->lo = 0;
  s->hi = kind == 'o' ? cfg->orders : cfg->customers;
  s->status = kind == 'o' ? ST_OPEN : ST_ANY;
  s->fin = FIN_ANY;
  s->cmin = s->umin = INT64_MIN;
  s->cmax = s->umax = INT64_MAX;
  static const char *const unsupported[] = {"ids", "fulfillment_status",
                                            "attribution_app_id"};
  for (size_t i = 0; i < LP_ARRAY_LEN(unsupported); i++)
    if (req->query(req, unsupported[i])) {
      field_error(resp, unsupported[i], "not supported by the sandbox");
      return -1;
    }
  const char *v;
  if (kind == 'o' && (v = req->query(req, "status"))) {
    static const char *const names[] = {"open", "closed", "cancelled", "any"};
    s->status = -1;
    for (int i = 0; i < 4; i++)
      if (strcmp(v, names[i]) == 0)
        s->status = i;
    if (s->status < 0) {
      field_error(resp, "status", "must be open, closed, cancelled or any");
      return -1;
    }
  }
  if (kind == 'o' && (v = req->query(req, "financial_status"))) {
    static const char *const names[SB_N_FIN] = {"paid", "partially_refunded",
                                                "refunded", "voided"};
    static const char *const others[] = {"authorized", "pending",
                                         "partially_paid", "unpaid"};
    s->fin = strcmp(v, "any") == 0 ? FIN_ANY : -3;
    for (int i = 0; i < SB_N_FIN; i++)
      if (strcmp(v, names[i]) == 0)
        s->fin = i;
    for (size_t i = 0; i < LP_ARRAY_LEN(others); i++)
      if (strcmp(v, others[i]) == 0)
        s->fin = FIN_NONE;
    if (s->fin == -3) {
      field_error(resp, "financial_status",
                  "must be any, authorized, pending, paid, partially_paid, "
                  "partially_refunded, refunded, voided or unpaid");
      return -1;
    }
  }
  if ((v = req->query(req, "since_id"))) {
    long long since;
    if (sb_parse_long(v, 0, INT64_MAX, &since) != 0) {
      field_error(resp, "since_id", "must be a non-negative integer");
      return -1;
    }
    int64_t base = kind == 'o' ? sb_shop_shopify_order_id(0)
                               : sb_shop_shopify_customer_id(0);
    int64_t first = since < base ? 0 : since - base + 1;
    if (first > s->lo)
      s->lo = first > s->hi ? s->hi : first;
  }
  /* processed_at is created_at in the generated shop. */
  static const char *const time_names[] = {
      "created_at_min", "created_at_max",   "updated_at_min",
      "updated_at_max", "processed_at_min", "processed_at_max"};
  int64_t *targets[] = {&s->cmin, &s->cmax, &s->umin,
                        &s->umax, &s->cmin, &s->cmax};
  for (size_t i = 0; i < LP_ARRAY_LEN(time_names); i++) {
    int64_t ms;
    int rc = parse_time_param(req, time_names[i], &ms, resp);
    if (rc < 0)
      return -1;
    if (rc == 0)
      continue;
    int is_min = strstr(time_names[i], "_min") != NULL;
    if (is_min ? ms > *targets[i] || *targets[i] == INT64_MIN
               : ms < *targets[i])
      *targets[i] = ms;
  }
  if (kind == 'o') {
    /* created_at ascends with k: narrow [lo, hi) by binary search;
     * updated_at lies within max_update_delay after created_at. */
    int64_t delay = sb_shop_max_update_delay_s();
    if (s->cmin != INT64_MIN) {
      int64_t k =
          sb_shop_first_created_at_or_after(cfg, ceil_div(s->cmin, 1000));
      if (k > s->lo)
        s->lo = k;
    }
    if (s->umin != INT64_MIN) {
      int64_t k = sb_shop_first_created_at_or_after(
          cfg, ceil_div(s->umin, 1000) - delay);
      if (k > s->lo)
        s->lo = k;
    }
    int64_t max = s->cmax < s->umax ? s->cmax : s->umax;
    if (max != INT64_MAX) {
      int64_t k =
          sb_shop_first_created_at_or_after(cfg, floor_div(max, 1000) + 1);
      if (k < s->hi)
        s->hi = k;
    }
    if (s->hi < s->lo)
      s->hi = s->lo;
  }
  return 0;
}

static int parse_limit(const struct sb_request *req, long long *limit,
                       struct sb_response *resp) {
  const char *v = req->query(req, "limit");
  *limit = DEFAULT_LIMIT;
  if (v && sb_parse_long(v, 1, MAX_LIMIT, limit) != 0) {
    field_error(resp, "limit", "must be an integer from 1 to 250");
    return -1;
  }
  return 0;
}

/* fields=a,b: letters, digits, '_' and ','; NULL when absent. */
static int parse_fields(const struct sb_request *req, const char **fields,
                        struct sb_response *resp) {
  const char *v = req->query(req, "fields");
  *fields = NULL;
  if (!v || !*v)
    return 0;
  int ok = strlen(v) <= MAX_FIELDS_LEN;
  for (const char *p = v; ok && *p; p++)
    ok = isalnum((unsigned char)*p) || *p == '_' || *p == ',';
  if (!ok) {
    field_error(resp, "fields",
                "must be a comma-separated list of field names (at most 200 "
                "characters)");
    return -1;
  }
  *fields = v;
  return 0;
}

/* Only the listed top-level members, in the resource's order. */
static json_t *select_fields(json_t *obj, const char *fields) {
  if (!fields)
    return obj;
  json_t *out = json_object();
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    size_t n = strlen(key);
    for (const char *p = fields; *p;) {
      const char *end = strchr(p, ',');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      if (len == n && memcmp(p, key, n) == 0) {
        json_object_set(out, key, v);
        break;
      }
      if (!end)
        break;
      p = end + 1;
    }
  }
  json_decref(obj);
  return out;
}

static json_t *item_json(const struct sb_shop_config *cfg, char kind, int64_t i,
                         const char *fields) {
  json_t *obj;
  if (kind == 'o') {
    struct sb_shop_order o;
    sb_shop_order_get(cfg, i, &o);
    obj = sb_shop_shopify_order_json(cfg, &o);
  } else {
    struct sb_shop_customer cu;
    sb_shop_customer_get(cfg, i, &cu);
    obj = sb_shop_shopify_customer_json(cfg, &cu);
  }
  return select_fields(obj, fields);
}

/* ---- endpoints ------------------------------------------------------ */

static void link_url(char *out, size_t size, const char *base,
                     const char *version, const char *resource, long long limit,
                     const char *fields, const char *page_info) {
  snprintf(out, size, "%s/admin/api/%s/%s.json?limit=%lld%s%s&page_info=%s",
           base, version, resource, limit, fields ? "&fields=" : "",
           fields ? fields : "", page_info);
}

static void serve_list(const struct sb_shop_config *cfg,
                       const struct sb_request *req, struct sb_response *resp,
                       char kind, const char *version, int count_only) {
  const char *resource = kind == 'o' ? "orders" : "customers";
  const char *token = req->query(req, "page_info");
  struct selection s;
  char dir = 'n';
  int64_t pos;
  if (token && count_only) {
    field_error(resp, "page_info", "is not accepted by count.json");
    return;
  }
  if (token) {
    struct params p = {NULL};
    sb_shop_query_each(req, find_extra, &p);
    if (p.bad) {
      char msg[200];
      snprintf(msg, sizeof(msg),
               "cannot be combined with %.60s: a page_info request may "
               "carry only limit and fields",
               p.bad);
      field_error(resp, "page_info", msg);
      return;
    }
    if (page_info_decode(token, kind, cfg, &s, &dir, &pos) != 0) {
      field_error(resp, "page_info", "Invalid value.");
      return;
    }
  } else {
    if (parse_filters(req, cfg, kind, &s, resp) != 0)
      return;
    pos = s.lo;
  }
  if (count_only) {
    int64_t n = 0;
    for (int64_t i = s.lo; i < s.hi; i++)
      n += matches(cfg, &s, i);
    sb_respond_json(resp, 200, json_pack("{sI}", "count", (json_int_t)n), NULL);
    return;
  }
  long long limit;
  const char *fields;
  if (parse_limit(req, &limit, resp) != 0 ||
      parse_fields(req, &fields, resp) != 0)
    return;

  int64_t picked[MAX_LIMIT];
  int n = 0;
  if (dir == 'n') {
    for (int64_t i = next_match(cfg, &s, pos); i >= 0 && n < limit;
         i = next_match(cfg, &s, i + 1))
      picked[n++] = i;
  } else {
    for (int64_t i = prev_match(cfg, &s, pos); i >= 0 && n < limit;
         i = prev_match(cfg, &s, i))
      picked[n++] = i;
    for (int a = 0, b = n - 1; a < b; a++, b--) {
      int64_t t = picked[a];
      picked[a] = picked[b];
      picked[b] = t;
    }
  }
  json_t *arr = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(arr, item_json(cfg, kind, picked[i], fields));

  if (n > 0) {
    char base[160], token_next[360], token_prev[360];
    char url_next[700], url_prev[700];
    sb_shop_base_url(req, base, sizeof(base));
    int has_next = next_match(cfg, &s, picked[n - 1] + 1) >= 0;
    int has_prev = has_next && prev_match(cfg, &s, picked[0]) >= 0;
    url_next[0] = url_prev[0] = '\0';
    if (has_next) {
      page_info_encode(&s, 'n', picked[n - 1] + 1, token_next,
                       sizeof(token_next));
      link_url(url_next, sizeof(url_next), base, version, resource, limit,
               fields, token_next);
    }
    if (has_prev) {
      page_info_encode(&s, 'p', picked[0], token_prev, sizeof(token_prev));
      link_url(url_prev, sizeof(url_prev), base, version, resource, limit,
               fields, token_prev);
    }
    if (has_next && has_prev)
      sb_response_header(resp, "Link",
                         "<%s>; rel=\"previous\", <%s>; rel=\"next\"", url_prev,
                         url_next);
    else if (has_next)
      sb_response_header(resp, "Link", "<%s>; rel=\"next\"", url_next);
    /* The contract: no Link at all on the last page (real Shopify would
     * still send rel="previous" there). */
  }
  sb_respond_json(resp, 200, json_pack("{so}", resource, arr), NULL);
}

static void serve_one(const struct sb_shop_config *cfg,
                      const struct sb_request *req, struct sb_response *resp,
                      char kind, const struct sb_segment *id_seg) {
  /* "<id>.json" */
  char text[32];
  long long id;
  if (id_seg->len <= 5 || id_seg->len - 5 >= sizeof(text) ||
      memcmp(id_seg->s + id_seg->len - 5, ".json", 5) != 0) {
    shopify_error(resp, 404, "Not Found");
    return;
  }
  memcpy(text, id_seg->s, id_seg->len - 5);
  text[id_seg->len - 5] = '\0';
  if (sb_parse_long(text, 0, INT64_MAX, &id) != 0) {
    shopify_error(resp, 404, "Not Found");
    return;
  }
  const char *fields;
  if (parse_fields(req, &fields, resp) != 0)
    return;
  int64_t base = kind == 'o' ? sb_shop_shopify_order_id(0)
                             : sb_shop_shopify_customer_id(0);
  int64_t total = kind == 'o' ? cfg->orders : cfg->customers;
  if (id < base || id - base >= total) {
    shopify_error(resp, 404, "Not Found");
    return;
  }
  sb_respond_json(resp, 200,
                  json_pack("{so}", kind == 'o' ? "order" : "customer",
                            item_json(cfg, kind, id - base, fields)),
                  NULL);
}

/* Routes the part after /admin/api/<version>/ (already authorised). */
static void route(const struct sb_shop_config *cfg,
                  const struct sb_request *req, struct sb_response *resp) {
  struct sb_segment seg[6];
  int n = sb_path_split(req->path, seg, 6, 0);
  if (n < 4 || !sb_segment_is(&seg[0], "admin") ||
      !sb_segment_is(&seg[1], "api")) {
    shopify_error(resp, 404, "Not Found");
    return;
  }
  char version[40];
  if (seg[2].len >= sizeof(version)) {
    shopify_error(resp, 404, "Not Found");
    return;
  }
  memcpy(version, seg[2].s, seg[2].len);
  version[seg[2].len] = '\0';
  for (const char *p = version; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-') {
      shopify_error(resp, 404, "Not Found");
      return;
    }
  char kind = 0;
  int count_only = 0, one = 0;
  if (n == 4 && sb_segment_is(&seg[3], "orders.json")) {
    kind = 'o';
  } else if (n == 4 && sb_segment_is(&seg[3], "customers.json")) {
    kind = 'c';
  } else if (n == 5 && (sb_segment_is(&seg[3], "orders") ||
                        sb_segment_is(&seg[3], "customers"))) {
    kind = sb_segment_is(&seg[3], "orders") ? 'o' : 'c';
    if (sb_segment_is(&seg[4], "count.json"))
      count_only = 1;
    else
      one = 1;
  }
  if (!kind) {
    shopify_error(resp, 404, "Not Found");
    return;
  }
  if (strcmp(req->method, "GET") != 0) {
    shopify_error(resp, 405,
                  "Method Not Allowed (the sandbox serves GET only)");
    return;
  }
  if (one)
    serve_one(cfg, req, resp, kind, &seg[4]);
  else
    serve_list(cfg, req, resp, kind, version, count_only);
}

void sb_shop_shopify_serve(struct sb_shop *shop, const struct sb_request *req,
                           struct sb_response *resp) {
  struct sb_shop_config cfg;
  sb_shop_snapshot(shop, &cfg);
  const char *token = req->header(req, "X-Shopify-Access-Token");
  if (!token || strcmp(token, cfg.shopify_token) != 0) {
    shopify_error(resp, 401,
                  "[API] Invalid API key or access token (unrecognized login "
                  "or wrong password)");
    sb_shop_rate_headers(shop, SB_SHOP_SHOPIFY, req->now_ms, resp);
  } else if (sb_shop_admit(shop, SB_SHOP_SHOPIFY, req->now_ms, resp) == 0) {
    route(&cfg, req, resp);
  }
  sb_shop_count(shop, SB_SHOP_SHOPIFY, resp->status);
}
