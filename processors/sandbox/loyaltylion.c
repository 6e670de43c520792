/*
 * loyaltylion.c — LoyaltyLion Admin API v2 as the executor uses it
 * (apis.md section 1): add/remove points, track activity, update a
 * customer, read a customer's transactions.
 *
 * World state: customers by merchant_id, each with its transactions
 * (immutable, ids increasing), and the merchant_ids of activities seen.
 * Add/remove points never dedupe (as upstream); activities dedupe on
 * merchant_id only with dedupe.activities=1 (UNCONFIRMED upstream).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"
#include "util.h"

enum {
  LL_POINTS,
  LL_REMOVE_POINTS,
  LL_CUSTOMER,
  LL_TRANSACTIONS,
  LL_ACTIVITIES
};

struct ll_transaction {
  int64_t id;
  int64_t points;
  int64_t created_ms;
  int is_activity;
  char *reason;               /* owned; adjustment reason, may be NULL */
  char *activity_name;        /* owned; activity only */
  char *activity_merchant_id; /* owned; activity only, may be NULL */
};

struct ll_customer {
  int64_t id;
  char *merchant_id; /* owned */
  char *email;       /* owned, may be NULL */
  int64_t points_approved, points_spent;
  char *birthday; /* owned, may be NULL */
  int blocked;
  int64_t created_ms, updated_ms;
  struct ll_transaction *tx; /* owned, ascending ids */
  size_t n_tx, cap_tx;
};

struct sb_ll_state {
  struct sb_map *customers;    /* merchant_id -> ll_customer (owned) */
  struct sb_map *activity_ids; /* merchant_id -> marker (not owned) */
  int64_t next_customer_id;
  int64_t next_tx_id;
};

static void free_customer(void *p) {
  struct ll_customer *c = p;
  for (size_t i = 0; i < c->n_tx; i++) {
    free(c->tx[i].reason);
    free(c->tx[i].activity_name);
    free(c->tx[i].activity_merchant_id);
  }
  free(c->tx);
  free(c->merchant_id);
  free(c->email);
  free(c->birthday);
  free(c);
}

struct sb_ll_state *sb_ll_state_new(void) {
  struct sb_ll_state *s = lp_xcalloc(1, sizeof(*s));
  s->customers = sb_map_new(free_customer);
  s->activity_ids = sb_map_new(NULL);
  s->next_customer_id = 1001;
  s->next_tx_id = 1;
  return s;
}

void sb_ll_state_destroy(struct sb_ll_state **sp) {
  if (!sp || !*sp)
    return;
  sb_map_destroy(&(*sp)->customers);
  sb_map_destroy(&(*sp)->activity_ids);
  free(*sp);
  *sp = NULL;
}

static int ll_owns(const char *path) {
  return strncmp(path, "/v2/", 4) == 0 || strcmp(path, "/v2") == 0;
}

static int ll_route(const char *method, const char *path) {
  struct sb_segment seg[4];
  int n = sb_path_split(path, seg, 4, 0);
  if (n == 2 && sb_segment_is(&seg[1], "activities"))
    return strcmp(method, "POST") == 0 ? LL_ACTIVITIES : -405;
  if (n < 3 || !sb_segment_is(&seg[1], "customers"))
    return -404;
  if (n == 3)
    return strcmp(method, "PATCH") == 0 ? LL_CUSTOMER : -405;
  int post = strcmp(method, "POST") == 0;
  if (sb_segment_is(&seg[3], "points"))
    return post ? LL_POINTS : -405;
  if (sb_segment_is(&seg[3], "remove_points"))
    return post ? LL_REMOVE_POINTS : -405;
  if (sb_segment_is(&seg[3], "transactions"))
    return strcmp(method, "GET") == 0 ? LL_TRANSACTIONS : -405;
  return -404;
}

static int ll_auth(const struct sandbox *sb, const struct sb_request *req,
                   const char **credential, size_t *len) {
  return sb_auth_scheme(req, "Bearer", sb->settings->key[SB_LOYALTYLION],
                        credential, len);
}

static void ll_error(struct sandbox *sb, struct sb_response *resp, int status,
                     const char *code, const char *message) {
  (void)sb;
  if (!message) {
    switch (status) {
    case 401:
      message = "Authentication is required";
      break;
    case 429:
      message = "Too many requests";
      break;
    case 503:
      message = "Service unavailable";
      break;
    default:
      message = "Internal server error";
    }
  }
  json_t *err = code ? json_pack("{ss ss}", "code", code, "message", message)
                     : json_pack("{ss}", "message", message);
  sb_respond_json(resp, status, json_pack("{so}", "error", err), NULL);
}

static void invalid(struct sb_response *resp, const char *field,
                    const char *problem) {
  json_t *details = json_object();
  json_object_set_new(details, field, json_string(problem));
  sb_respond_json(resp, 400,
                  json_pack("{s{ss so}}", "error", "message", "Invalid request",
                            "details", details),
                  NULL);
}

static void ledger_full(struct sandbox *sb, struct sb_response *resp) {
  ll_error(sb, resp, 507, "sandbox_ledger_full",
           "Sandbox ledger is full; POST /_sandbox/reset");
}

static int ll_limits(const struct sandbox *sb, int endpoint, int *group,
                     struct sb_window w[2]) {
  (void)endpoint;
  *group = 0;
  w[0].limit = sb->settings->ll_rate;
  w[0].length_ms = 1000;
  return 1;
}

static int64_t ll_throttle(struct sandbox *sb, struct sb_response *resp,
                           enum sb_throttle_reason reason,
                           const struct sb_rate *rate, int64_t now_ms,
                           int64_t hint_ms) {
  (void)reason;
  (void)rate;
  ll_error(sb, resp, 429, NULL, "Too many requests");
  /* Whether LoyaltyLion sends Retry-After is UNCONFIRMED: switchable. */
  if (sb->settings->ll_retry_after <= 0)
    return 0;
  int64_t seconds =
      hint_ms > 0 ? (hint_ms + 999) / 1000 : sb->settings->ll_retry_after;
  sb_response_header(resp, "Retry-After", "%" PRId64, seconds);
  return now_ms + seconds * 1000;
}

static struct ll_customer *customer_for(struct sandbox *sb,
                                        const char *merchant_id, int create,
                                        int64_t now_ms) {
  struct sb_ll_state *st = sb->ll;
  struct ll_customer *c =
      sb_map_get(st->customers, merchant_id, strlen(merchant_id));
  if (c || !create)
    return c;
  c = lp_xcalloc(1, sizeof(*c));
  c->id = st->next_customer_id++;
  c->merchant_id = lp_xstrdup(merchant_id);
  c->created_ms = c->updated_ms = now_ms;
  sb_map_put(st->customers, merchant_id, strlen(merchant_id), c);
  return c;
}

static void not_found(struct sandbox *sb, struct sb_response *resp,
                      const char *merchant_id) {
  char msg[256];
  snprintf(msg, sizeof(msg), "Customer with merchant_id `%.180s` not found",
           merchant_id);
  ll_error(sb, resp, 404, "not_found", msg);
}

static void add_transaction(struct sandbox *sb, struct ll_customer *c,
                            int64_t points, const char *reason,
                            const char *activity_name,
                            const char *activity_merchant_id, int64_t now_ms) {
  if (c->n_tx == c->cap_tx) {
    c->cap_tx = c->cap_tx ? c->cap_tx * 2 : 4;
    c->tx = lp_xrealloc(c->tx, c->cap_tx * sizeof(*c->tx));
  }
  struct ll_transaction *t = &c->tx[c->n_tx++];
  memset(t, 0, sizeof(*t));
  t->id = sb->ll->next_tx_id++;
  t->points = points;
  t->created_ms = now_ms;
  t->is_activity = activity_name != NULL;
  t->reason = lp_xstrdup(reason);
  t->activity_name = lp_xstrdup(activity_name);
  t->activity_merchant_id = lp_xstrdup(activity_merchant_id);
  c->updated_ms = now_ms;
}

static json_t *nullable_string(const char *s) {
  return s ? json_string(s) : json_null();
}

/* The documented customer resource; what the sandbox does not model is
 * present with its neutral value. */
static json_t *customer_json(const struct ll_customer *c) {
  return json_pack(
      "{sI ss so sI sI sI sI s{} s{} so sb sb sb so sn sn sn sn sn so so s[]}",
      "id", (json_int_t)c->id, "merchant_id", c->merchant_id, "email",
      nullable_string(c->email), "points_approved",
      (json_int_t)c->points_approved, "points_pending", (json_int_t)0,
      "points_spent", (json_int_t)c->points_spent, "rewards_claimed",
      (json_int_t)0, "properties", "metadata", "birthday",
      nullable_string(c->birthday), "blocked", c->blocked, "guest", 0,
      "enrolled", 1, "enrolled_at", sb_json_time(c->created_ms), "referral_id",
      "referred_by", "referral_url", "insights_segment",
      "loyalty_tier_membership", "created_at", sb_json_time(c->created_ms),
      "updated_at", sb_json_time(c->updated_ms), "linked_merchant_ids");
}

static json_t *transaction_json(const struct ll_customer *c,
                                const struct ll_transaction *t) {
  json_t *o = json_pack(
      "{sI s{sI ss so sI sI sI} sI sI so ss}", "id", (json_int_t)t->id,
      "customer", "id", (json_int_t)c->id, "merchant_id", c->merchant_id,
      "email", nullable_string(c->email), "points_approved",
      (json_int_t)c->points_approved, "points_pending", (json_int_t)0,
      "points_spent", (json_int_t)c->points_spent, "points_approved",
      (json_int_t)t->points, "points_pending", (json_int_t)0, "created_at",
      sb_json_time(t->created_ms), "resource",
      t->is_activity ? "activity" : "adjustment");
  if (t->is_activity) {
    json_object_set_new(o, "adjustment", json_null());
    json_object_set_new(o, "activity",
                        json_pack("{ss so ss}", "name", t->activity_name,
                                  "merchant_id",
                                  nullable_string(t->activity_merchant_id),
                                  "state", "approved"));
  } else {
    json_object_set_new(o, "adjustment",
                        json_pack("{sI so}", "points", (json_int_t)t->points,
                                  "reason", nullable_string(t->reason)));
    json_object_set_new(o, "activity", json_null());
  }
  return o;
}

/* points in [1, max]; 0 or -1 (400 sent). */
static int read_points(const struct sb_request *req, struct sb_response *resp,
                       long long max, long long *points) {
  json_t *v = json_object_get(req->json, "points");
  if (!json_is_integer(v) || json_integer_value(v) < 1 ||
      json_integer_value(v) > max) {
    char msg[96];
    if (max == INT32_MAX)
      snprintf(msg, sizeof(msg), "must be an integer of at least 1");
    else
      snprintf(msg, sizeof(msg), "must be an integer between 1 and %lld", max);
    invalid(resp, "points", msg);
    return -1;
  }
  json_t *reason = json_object_get(req->json, "reason");
  if (reason && !json_is_null(reason) && !json_is_string(reason)) {
    invalid(resp, "reason", "must be a string or null");
    return -1;
  }
  *points = (long long)json_integer_value(v);
  return 0;
}

static void serve_points(struct sandbox *sb, int remove,
                         const char *merchant_id, const struct sb_request *req,
                         struct sb_response *resp) {
  long long points;
  if (read_points(req, resp, remove ? INT32_MAX : 1000000, &points) != 0)
    return;
  const char *reason = sb_json_string(req->json, "reason");
  if (sb_ledger_reserve(sb, 1) != 0) {
    ledger_full(sb, resp);
    return;
  }
  int auto_create = sb->settings->ll_auto_create;
  struct ll_customer *c =
      customer_for(sb, merchant_id, auto_create && !remove, req->now_ms);
  if (!c && !(remove && auto_create)) {
    not_found(sb, resp, merchant_id);
    return;
  }
  if (remove) {
    int64_t balance = c ? c->points_approved : 0;
    if (balance < points) {
      char msg[160];
      snprintf(msg, sizeof(msg),
               "Customer has %" PRId64 " points; cannot remove %lld", balance,
               points);
      ll_error(sb, resp, 422, "insufficient_points", msg);
      return;
    }
  }
  LP_ASSERT(c);
  int64_t change = remove ? -(int64_t)points : (int64_t)points;
  c->points_approved += change;
  add_transaction(sb, c, change, reason, NULL, NULL, req->now_ms);
  sb_ledger_add(sb, SB_LOYALTYLION,
                remove ? SB_KIND_REMOVE_POINTS : SB_KIND_POINTS, merchant_id,
                change, reason, req->json, NULL, req->now_ms);
  sb_respond_empty(resp, remove ? 204 : 201);
}

static void serve_customer_update(struct sandbox *sb, const char *merchant_id,
                                  const struct sb_request *req,
                                  struct sb_response *resp) {
  json_t *cust = json_object_get(req->json, "customer");
  if (!json_is_object(cust)) {
    invalid(resp, "customer", "must be an object");
    return;
  }
  const char *key;
  json_t *v;
  json_object_foreach(cust, key, v) {
    char field[160];
    snprintf(field, sizeof(field), "customer.%.100s", key);
    if (strcmp(key, "birthday") == 0) {
      if (!json_is_null(v) && !sb_valid_date(json_string_value(v))) {
        invalid(resp, field, "must be a date (YYYY-MM-DD) or null");
        return;
      }
    } else if (strcmp(key, "blocked") == 0) {
      if (!json_is_boolean(v)) {
        invalid(resp, field, "must be true or false");
        return;
      }
    } else {
      invalid(resp, field, "is not a permitted field (birthday, blocked)");
      return;
    }
  }
  if (sb_ledger_reserve(sb, 1) != 0) {
    ledger_full(sb, resp);
    return;
  }
  struct ll_customer *c =
      customer_for(sb, merchant_id, sb->settings->ll_auto_create, req->now_ms);
  if (!c) {
    not_found(sb, resp, merchant_id);
    return;
  }
  json_t *birthday = json_object_get(cust, "birthday");
  if (birthday) {
    free(c->birthday);
    c->birthday = lp_xstrdup(json_string_value(birthday)); /* NULL for null */
  }
  json_t *blocked = json_object_get(cust, "blocked");
  if (blocked)
    c->blocked = json_is_true(blocked);
  c->updated_ms = req->now_ms;
  sb_ledger_add(sb, SB_LOYALTYLION, SB_KIND_CUSTOMER_UPDATE, merchant_id, 0,
                NULL, req->json, NULL, req->now_ms);
  sb_respond_json(resp, 200, json_pack("{so}", "customer", customer_json(c)),
                  NULL);
}

static void serve_activity(struct sandbox *sb, const struct sb_request *req,
                           struct sb_response *resp) {
  json_t *b = req->json;
  const char *name = sb_json_string(b, "name");
  const char *email = sb_json_string(b, "customer_email");
  json_t *props = json_object_get(b, "properties");
  json_t *date = json_object_get(b, "date");
  int64_t ignored;
  if (!name || !*name) {
    invalid(resp, "name", "is required");
    return;
  }
  char *customer_id = sb_json_id(b, "customer_id");
  char *merchant_id = NULL;
  if (!customer_id) {
    invalid(resp, "customer_id", "is required");
    goto done;
  }
  if (!email || !*email) {
    invalid(resp, "customer_email", "is required");
    goto done;
  }
  if (json_object_get(b, "merchant_id") &&
      !json_is_null(json_object_get(b, "merchant_id")) &&
      !(merchant_id = sb_json_id(b, "merchant_id"))) {
    invalid(resp, "merchant_id", "must be a non-empty string");
    goto done;
  }
  if (props && !json_is_null(props) && !json_is_object(props)) {
    invalid(resp, "properties", "must be an object");
    goto done;
  }
  if (date && !json_is_null(date) &&
      (!json_is_string(date) ||
       lp_time_parse_iso8601(json_string_value(date), &ignored) != 0)) {
    invalid(resp, "date", "must be an ISO 8601 date-time");
    goto done;
  }
  struct sb_ll_state *st = sb->ll;
  if (merchant_id && sb->settings->dedupe_activities &&
      sb_map_get(st->activity_ids, merchant_id, strlen(merchant_id))) {
    char msg[256];
    snprintf(msg, sizeof(msg),
             "An activity with merchant_id `%.180s` already exists",
             merchant_id);
    ll_error(sb, resp, 422, "duplicate_activity", msg);
    goto done;
  }
  if (sb_ledger_reserve(sb, 1) != 0) {
    ledger_full(sb, resp);
    goto done;
  }
  struct ll_customer *c = customer_for(sb, customer_id, 1, req->now_ms);
  if (!c->email || strcmp(c->email, email) != 0) {
    free(c->email);
    c->email = lp_xstrdup(email);
  }
  if (merchant_id)
    sb_map_put(st->activity_ids, merchant_id, strlen(merchant_id), st);
  int64_t points = sb->settings->ll_activity_points;
  if (points > 0) {
    c->points_approved += points;
    add_transaction(sb, c, points, NULL, name, merchant_id, req->now_ms);
  }
  sb_ledger_add(sb, SB_LOYALTYLION, SB_KIND_ACTIVITY, customer_id, points,
                merchant_id, b, NULL, req->now_ms);
  sb_respond_empty(resp, 201);
done:
  free(customer_id);
  free(merchant_id);
}

/* Cursors are "d<id>" (newest first, ids below) or "a<id>" (since_id
 * mode, ids above): they carry the mode, as upstream's carry the filters. */
static void serve_transactions(struct sandbox *sb, const char *merchant_id,
                               const struct sb_request *req,
                               struct sb_response *resp) {
  long long limit = 100, since_id = -1, cursor_id = 0;
  int ascending = 0;
  const char *q = req->query(req, "limit");
  if (q && sb_parse_long(q, 1, 500, &limit) != 0) {
    invalid(resp, "limit", "must be an integer between 1 and 500");
    return;
  }
  q = req->query(req, "since_id");
  if (q && sb_parse_long(q, 0, INT64_MAX, &since_id) != 0) {
    invalid(resp, "since_id", "must be a non-negative integer");
    return;
  }
  q = req->query(req, "cursor");
  if (q) {
    if ((q[0] != 'd' && q[0] != 'a') ||
        sb_parse_long(q + 1, 0, INT64_MAX, &cursor_id) != 0) {
      invalid(resp, "cursor", "is invalid");
      return;
    }
    ascending = q[0] == 'a';
  } else if (since_id >= 0) {
    ascending = 1;
    cursor_id = since_id;
  } else {
    cursor_id = INT64_MAX;
  }
  struct ll_customer *c =
      sb_map_get(sb->ll->customers, merchant_id, strlen(merchant_id));
  if (!c && !sb->settings->ll_auto_create) {
    not_found(sb, resp, merchant_id);
    return;
  }
  json_t *list = json_array();
  json_t *next = json_null();
  if (c) {
    /* Transactions are in ascending id order; walk from the cursor. */
    size_t n = c->n_tx, taken = 0;
    int64_t last = 0;
    if (ascending) {
      size_t i = 0;
      while (i < n && c->tx[i].id <= cursor_id)
        i++;
      for (; i < n && taken < (size_t)limit; i++, taken++) {
        json_array_append_new(list, transaction_json(c, &c->tx[i]));
        last = c->tx[i].id;
      }
      if (i < n)
        next = json_sprintf("a%" PRId64, last);
    } else {
      size_t i = n;
      while (i > 0 && c->tx[i - 1].id >= cursor_id)
        i--;
      for (; i > 0 && taken < (size_t)limit; i--, taken++) {
        json_array_append_new(list, transaction_json(c, &c->tx[i - 1]));
        last = c->tx[i - 1].id;
      }
      if (i > 0)
        next = json_sprintf("d%" PRId64, last);
    }
  }
  sb_respond_json(resp, 200,
                  json_pack("{so s{sn so}}", "transactions", list, "cursor",
                            "prev", "next", next),
                  NULL);
}

static void ll_handle(struct sandbox *sb, int endpoint,
                      const struct sb_request *req, struct sb_response *resp) {
  if (endpoint != LL_TRANSACTIONS && !json_is_object(req->json)) {
    invalid(resp, "body",
            req->body_len ? "is not a valid JSON object" : "is required");
    return;
  }
  if (endpoint == LL_ACTIVITIES) {
    serve_activity(sb, req, resp);
    return;
  }
  struct sb_segment seg[4];
  int n = sb_path_split(req->path, seg, 4, 0);
  LP_ASSERT(n >= 3);
  char *merchant_id = sb_segment_dup(&seg[2]);
  switch (endpoint) {
  case LL_POINTS:
  case LL_REMOVE_POINTS:
    serve_points(sb, endpoint == LL_REMOVE_POINTS, merchant_id, req, resp);
    break;
  case LL_CUSTOMER:
    serve_customer_update(sb, merchant_id, req, resp);
    break;
  case LL_TRANSACTIONS:
    serve_transactions(sb, merchant_id, req, resp);
    break;
  default:
    LP_ASSERT(!"unknown LoyaltyLion endpoint");
  }
  free(merchant_id);
}

const struct sb_platform_ops sb_loyaltylion_ops = {
    .platform = SB_LOYALTYLION,
    .owns = ll_owns,
    .route = ll_route,
    .auth = ll_auth,
    .error = ll_error,
    .precheck = NULL,
    .limits = ll_limits,
    .throttle = ll_throttle,
    .decorate = NULL,
    .handle = ll_handle,
};
