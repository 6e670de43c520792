/*
 * smile.c — Smile.io REST v1 as the executor uses it (apis.md section 2):
 * points transactions (create, list), activities, customer look-up.
 *
 * World state: a balance per customer id (every positive integer id is a
 * member with balance 0 until a transaction says otherwise), every points
 * transaction in id order, and the token + distinct_id pairs of activities
 * seen. Points transactions never dedupe (as upstream); activities dedupe
 * only with dedupe.activities=1 (UNCONFIRMED upstream).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sandbox.h"
#include "util.h"

enum { SM_PT_CREATE, SM_PT_LIST, SM_ACTIVITY, SM_CUSTOMER };

/* Smile ids stay exact in JavaScript clients. */
#define SM_MAX_ID 9007199254740991LL

struct smile_tx {
  int64_t id, customer_id, change, created_ms;
  char *description;   /* owned, may be NULL */
  char *internal_note; /* owned, may be NULL */
};

struct sb_smile_state {
  struct sb_map *balances;      /* decimal customer id -> int64_t (owned) */
  struct sb_map *activity_keys; /* token \x1f distinct_id -> marker */
  struct smile_tx *tx;          /* owned, ascending ids */
  size_t n_tx, cap_tx;
  int64_t next_tx_id, next_activity_id;
};

struct sb_smile_state *sb_smile_state_new(void) {
  struct sb_smile_state *s = lp_xcalloc(1, sizeof(*s));
  s->balances = sb_map_new(free);
  s->activity_keys = sb_map_new(NULL);
  s->next_tx_id = 825673001;
  s->next_activity_id = 41000001;
  return s;
}

void sb_smile_state_destroy(struct sb_smile_state **sp) {
  if (!sp || !*sp)
    return;
  struct sb_smile_state *s = *sp;
  for (size_t i = 0; i < s->n_tx; i++) {
    free(s->tx[i].description);
    free(s->tx[i].internal_note);
  }
  free(s->tx);
  sb_map_destroy(&s->balances);
  sb_map_destroy(&s->activity_keys);
  free(s);
  *sp = NULL;
}

static int sm_owns(const char *path) {
  return strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0;
}

static int sm_route(const char *method, const char *path) {
  struct sb_segment seg[3];
  int n = sb_path_split(path, seg, 3, 0);
  int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
  if (n == 2 && sb_segment_is(&seg[1], "points_transactions"))
    return post ? SM_PT_CREATE : get ? SM_PT_LIST : -405;
  if (n == 2 && sb_segment_is(&seg[1], "activities"))
    return post ? SM_ACTIVITY : -405;
  if (n == 3 && sb_segment_is(&seg[1], "customers"))
    return get ? SM_CUSTOMER : -405;
  return -404;
}

static int sm_auth(const struct sandbox *sb, const struct sb_request *req,
                   const char **credential, size_t *len) {
  return sb_auth_scheme(req, "Bearer", sb->settings->key[SB_SMILE], credential,
                        len);
}

static void sm_error(struct sandbox *sb, struct sb_response *resp, int status,
                     const char *code, const char *message) {
  (void)code;
  if (!message) {
    switch (status) {
    case 401:
      message = "Your request could not be authenticated.";
      break;
    case 429:
      message = "Too many requests.";
      break;
    case 503:
      message = "Service unavailable.";
      break;
    default:
      message = "Your request could not be completed.";
    }
  }
  char request_id[37];
  sb_uuid(sb, request_id);
  sb_respond_json(resp, status,
                  json_pack("{s{ss ss}}", "error", "message", message,
                            "request_id", request_id),
                  NULL);
}

/* Smile documents a 400 for a missing Content-Type. */
static int sm_precheck(struct sandbox *sb, int endpoint,
                       const struct sb_request *req, struct sb_response *resp) {
  if (endpoint != SM_PT_CREATE && endpoint != SM_ACTIVITY)
    return 0;
  const char *type = req->header(req, "Content-Type");
  if (type && strncasecmp(type, "application/json", 16) == 0)
    return 0;
  sm_error(sb, resp, 400, NULL, "Content-Type must be application/json.");
  return -1;
}

static int sm_limits(const struct sandbox *sb, int endpoint, int *group,
                     struct sb_window w[2]) {
  (void)endpoint;
  *group = 0;
  w[0].limit = sb->settings->smile_rate;
  w[0].length_ms = 1000;
  return 1;
}

/* Smile documents no rate-limit headers: the client is told nothing. */
static int64_t sm_throttle(struct sandbox *sb, struct sb_response *resp,
                           enum sb_throttle_reason reason,
                           const struct sb_rate *rate, int64_t now_ms,
                           int64_t hint_ms) {
  (void)reason;
  (void)rate;
  (void)now_ms;
  (void)hint_ms;
  sm_error(sb, resp, 429, NULL, NULL);
  return 0;
}

static json_t *nullable(json_t *v) {
  return v && json_is_string(v) ? json_incref(v) : json_null();
}

static int64_t *balance_of(struct sb_smile_state *st, int64_t customer_id,
                           int create) {
  char key[24];
  int n = snprintf(key, sizeof(key), "%" PRId64, customer_id);
  int64_t *b = sb_map_get(st->balances, key, (size_t)n);
  if (!b && create) {
    b = lp_xcalloc(1, sizeof(*b));
    sb_map_put(st->balances, key, (size_t)n, b);
  }
  return b;
}

static json_t *tx_json(const struct smile_tx *t) {
  return json_pack(
      "{sI sI sI so so so so}", "id", (json_int_t)t->id, "customer_id",
      (json_int_t)t->customer_id, "points_change", (json_int_t)t->change,
      "description", t->description ? json_string(t->description) : json_null(),
      "internal_note",
      t->internal_note ? json_string(t->internal_note) : json_null(),
      "created_at", sb_json_time(t->created_ms), "updated_at",
      sb_json_time(t->created_ms));
}

static int optional_string(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return !v || json_is_null(v) || json_is_string(v);
}

static void serve_create(struct sandbox *sb, const struct sb_request *req,
                         struct sb_response *resp) {
  json_t *pt = json_object_get(req->json, "points_transaction");
  if (!json_is_object(pt)) {
    sm_error(sb, resp, 400, NULL, "points_transaction is required.");
    return;
  }
  json_t *cid = json_object_get(pt, "customer_id");
  json_t *chg = json_object_get(pt, "points_change");
  if (!json_is_integer(cid) || json_integer_value(cid) < 1 ||
      json_integer_value(cid) > SM_MAX_ID) {
    sm_error(sb, resp, 400, NULL, "customer_id must be a positive integer.");
    return;
  }
  if (!json_is_integer(chg) || json_integer_value(chg) == 0 ||
      json_integer_value(chg) > 1000000000 ||
      json_integer_value(chg) < -1000000000) {
    sm_error(sb, resp, 400, NULL,
             "points_change must be a non-zero integer (at most 1e9 in size).");
    return;
  }
  if (!optional_string(pt, "description") ||
      !optional_string(pt, "internal_note")) {
    sm_error(sb, resp, 400, NULL,
             "description and internal_note must be strings.");
    return;
  }
  struct sb_smile_state *st = sb->smile;
  int64_t customer_id = (int64_t)json_integer_value(cid);
  int64_t change = (int64_t)json_integer_value(chg);
  int64_t *balance = balance_of(st, customer_id, 0);
  int64_t current = balance ? *balance : 0;
  if (current + change < 0) {
    char msg[160];
    snprintf(msg, sizeof(msg),
             "Customer does not have enough points (balance %" PRId64 ").",
             current);
    sm_error(sb, resp, 422, NULL, msg);
    return;
  }
  if (sb_ledger_reserve(sb, 1) != 0) {
    sm_error(sb, resp, 507, NULL,
             "Sandbox ledger is full; POST /_sandbox/reset.");
    return;
  }
  balance = balance_of(st, customer_id, 1);
  *balance += change;
  if (st->n_tx == st->cap_tx) {
    st->cap_tx = st->cap_tx ? st->cap_tx * 2 : 64;
    st->tx = lp_xrealloc(st->tx, st->cap_tx * sizeof(*st->tx));
  }
  struct smile_tx *t = &st->tx[st->n_tx++];
  t->id = st->next_tx_id++;
  t->customer_id = customer_id;
  t->change = change;
  t->created_ms = req->now_ms;
  t->description = lp_xstrdup(sb_json_string(pt, "description"));
  t->internal_note = lp_xstrdup(sb_json_string(pt, "internal_note"));
  char member[24];
  snprintf(member, sizeof(member), "%" PRId64, customer_id);
  sb_ledger_add(sb, SB_SMILE, SB_KIND_POINTS_TRANSACTION, member, change,
                t->internal_note, req->json, NULL, req->now_ms);
  sb_respond_json(resp, 201,
                  json_pack("{so}", "points_transaction", tx_json(t)), NULL);
}

/* Cursor "<before_id>:<customer_id or 0>": it carries the filter, so a
 * follow-up may send the cursor alone. */
static void serve_list(struct sandbox *sb, const struct sb_request *req,
                       struct sb_response *resp) {
  long long limit = 50, customer_id = 0, before = INT64_MAX;
  const char *q = req->query(req, "limit");
  if (q && sb_parse_long(q, 1, 250, &limit) != 0) {
    sm_error(sb, resp, 400, NULL, "limit must be between 1 and 250.");
    return;
  }
  q = req->query(req, "cursor");
  if (q && *q) {
    const char *colon = strchr(q, ':');
    char head[24];
    size_t hl = colon ? (size_t)(colon - q) : 0;
    if (!colon || hl == 0 || hl >= sizeof(head)) {
      sm_error(sb, resp, 400, NULL, "cursor is invalid.");
      return;
    }
    memcpy(head, q, hl);
    head[hl] = '\0';
    if (sb_parse_long(head, 1, INT64_MAX, &before) != 0 ||
        sb_parse_long(colon + 1, 0, SM_MAX_ID, &customer_id) != 0) {
      sm_error(sb, resp, 400, NULL, "cursor is invalid.");
      return;
    }
  }
  q = req->query(req, "customer_id");
  if (q && sb_parse_long(q, 1, SM_MAX_ID, &customer_id) != 0) {
    sm_error(sb, resp, 400, NULL, "customer_id must be a positive integer.");
    return;
  }
  const struct sb_smile_state *st = sb->smile;
  json_t *list = json_array();
  size_t i = st->n_tx;
  while (i > 0 && st->tx[i - 1].id >= before)
    i--;
  long long taken = 0;
  int64_t last = 0;
  for (; i > 0 && taken < limit; i--) {
    const struct smile_tx *t = &st->tx[i - 1];
    if (customer_id && t->customer_id != customer_id)
      continue;
    json_array_append_new(list, tx_json(t));
    last = t->id;
    taken++;
  }
  int more = 0;
  for (size_t j = i; j > 0 && !more; j--)
    more = !customer_id || st->tx[j - 1].customer_id == customer_id;
  char next[64] = "";
  if (more)
    snprintf(next, sizeof(next), "%" PRId64 ":%lld", last, customer_id);
  sb_respond_json(resp, 200,
                  json_pack("{so s{ss ss}}", "points_transactions", list,
                            "metadata", "next_cursor", next, "previous_cursor",
                            ""),
                  NULL);
}

static void serve_activity(struct sandbox *sb, const struct sb_request *req,
                           struct sb_response *resp) {
  json_t *a = json_object_get(req->json, "activity");
  if (!json_is_object(a)) {
    sm_error(sb, resp, 400, NULL, "activity is required.");
    return;
  }
  const char *token = sb_json_string(a, "token");
  json_t *cid = json_object_get(a, "customer_id");
  const char *email = sb_json_string(a, "customer_email");
  json_t *props = json_object_get(a, "properties");
  json_t *origin = json_object_get(a, "created_on_origin_at");
  int64_t ignored;
  if (!token || !*token) {
    sm_error(sb, resp, 400, NULL, "token is required.");
    return;
  }
  if (cid && !json_is_null(cid) &&
      (!json_is_integer(cid) || json_integer_value(cid) < 1)) {
    sm_error(sb, resp, 400, NULL, "customer_id must be a positive integer.");
    return;
  }
  if ((!cid || json_is_null(cid)) && (!email || !*email)) {
    sm_error(sb, resp, 400, NULL, "customer_id or customer_email is required.");
    return;
  }
  if (props && !json_is_null(props) && !json_is_object(props)) {
    sm_error(sb, resp, 400, NULL, "properties must be an object.");
    return;
  }
  if (origin && !json_is_null(origin) &&
      (!json_is_string(origin) ||
       lp_time_parse_iso8601(json_string_value(origin), &ignored) != 0)) {
    sm_error(sb, resp, 400, NULL,
             "created_on_origin_at must be an ISO 8601 date-time.");
    return;
  }
  json_t *did = json_object_get(a, "distinct_id");
  char *distinct_id = sb_json_id(a, "distinct_id");
  if (did && !json_is_null(did) && !distinct_id) {
    sm_error(sb, resp, 400, NULL, "distinct_id must be a string.");
    return;
  }
  struct sb_smile_state *st = sb->smile;
  char *key = distinct_id ? lp_xasprintf("%s\x1f%s", token, distinct_id) : NULL;
  char *member = json_is_integer(cid)
                     ? lp_xasprintf("%lld", (long long)json_integer_value(cid))
                     : lp_xstrdup(email);
  if (key && sb->settings->dedupe_activities &&
      sb_map_get(st->activity_keys, key, strlen(key))) {
    sm_error(sb, resp, 422, NULL,
             "An activity with this token and distinct_id already exists.");
    goto done;
  }
  if (sb_ledger_reserve(sb, 1) != 0) {
    sm_error(sb, resp, 507, NULL,
             "Sandbox ledger is full; POST /_sandbox/reset.");
    goto done;
  }
  if (key)
    sb_map_put(st->activity_keys, key, strlen(key), st);
  sb_ledger_add(sb, SB_SMILE, SB_KIND_ACTIVITY, member, 0, distinct_id,
                req->json, NULL, req->now_ms);
  json_t *out = json_pack(
      "{sI so so ss so so so so so}", "id", (json_int_t)st->next_activity_id++,
      "customer_id", json_is_integer(cid) ? json_incref(cid) : json_null(),
      "customer_email", email ? json_string(email) : json_null(), "token",
      token, "distinct_id",
      distinct_id ? json_string(distinct_id) : json_null(),
      "created_on_origin_at", nullable(origin), "properties",
      json_is_object(props) ? json_incref(props) : json_object(), "created_at",
      sb_json_time(req->now_ms), "updated_at", sb_json_time(req->now_ms));
  sb_respond_json(resp, 201, json_pack("{so}", "activity", out), NULL);
done:
  free(key);
  free(member);
  free(distinct_id);
}

static void serve_customer(struct sandbox *sb, const struct sb_request *req,
                           struct sb_response *resp) {
  struct sb_segment seg[3];
  int n = sb_path_split(req->path, seg, 3, 0);
  LP_ASSERT(n == 3);
  char *text = sb_segment_dup(&seg[2]);
  long long id;
  int ok = sb_parse_long(text, 1, SM_MAX_ID, &id) == 0;
  free(text);
  if (!ok) {
    sm_error(sb, resp, 404, NULL, "Customer not found.");
    return;
  }
  int64_t *balance = balance_of(sb->smile, (int64_t)id, 0);
  json_t *c = json_pack(
      "{sI sn sn sn ss sn sI sn sn sn so so}", "id", (json_int_t)id,
      "first_name", "last_name", "email", "state", "member", "date_of_birth",
      "points_balance", (json_int_t)(balance ? *balance : 0), "referral_url",
      "vip_tier_id", "vip_status", "created_at", sb_json_time(sb->started_ms),
      "updated_at", sb_json_time(req->now_ms));
  sb_respond_json(resp, 200, json_pack("{so}", "customer", c), NULL);
}

static void sm_handle(struct sandbox *sb, int endpoint,
                      const struct sb_request *req, struct sb_response *resp) {
  if ((endpoint == SM_PT_CREATE || endpoint == SM_ACTIVITY) &&
      !json_is_object(req->json)) {
    sm_error(sb, resp, 400, NULL,
             req->body_len ? "The request body is not valid JSON."
                           : "A JSON request body is required.");
    return;
  }
  switch (endpoint) {
  case SM_PT_CREATE:
    serve_create(sb, req, resp);
    break;
  case SM_PT_LIST:
    serve_list(sb, req, resp);
    break;
  case SM_ACTIVITY:
    serve_activity(sb, req, resp);
    break;
  case SM_CUSTOMER:
    serve_customer(sb, req, resp);
    break;
  default:
    LP_ASSERT(!"unknown Smile endpoint");
  }
}

const struct sb_platform_ops sb_smile_ops = {
    .platform = SB_SMILE,
    .owns = sm_owns,
    .route = sm_route,
    .auth = sm_auth,
    .error = sm_error,
    .precheck = sm_precheck,
    .limits = sm_limits,
    .throttle = sm_throttle,
    .decorate = NULL,
    .handle = sm_handle,
};
