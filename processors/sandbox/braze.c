/*
 * braze.c — Braze REST as the executor uses it (apis.md section 4):
 * /users/track and the triggered sends of campaigns and Canvases.
 *
 * No world state beyond the ledger: Braze never dedupes (every event
 * object is its own event), so every valid object of a /users/track
 * request and every recipient of a send is one ledger effect. Every
 * answer carries X-RateLimit-Limit/-Remaining/-Reset (epoch seconds of
 * the window's end) for the endpoint's window: /users/track (limit per
 * braze.track.window.s) or the messaging endpoints (limit per hour).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"
#include "util.h"

enum { BR_TRACK, BR_CAMPAIGN, BR_CANVAS };
enum { BR_GROUP_TRACK, BR_GROUP_MESSAGING };

#define BR_MAX_OBJECTS 75
#define BR_MAX_RECIPIENTS 50

static int br_owns(const char *path) {
  static const char *const prefixes[] = {"/users/", "/campaigns/", "/canvas/",
                                         "/messages/"};
  for (size_t i = 0; i < LP_ARRAY_LEN(prefixes); i++)
    if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0)
      return 1;
  return 0;
}

static int br_route(const char *method, const char *path) {
  int post = strcmp(method, "POST") == 0;
  if (strcmp(path, "/users/track") == 0)
    return post ? BR_TRACK : -405;
  if (strcmp(path, "/campaigns/trigger/send") == 0)
    return post ? BR_CAMPAIGN : -405;
  if (strcmp(path, "/canvas/trigger/send") == 0)
    return post ? BR_CANVAS : -405;
  return -404;
}

static int br_auth(const struct sandbox *sb, const struct sb_request *req,
                   const char **credential, size_t *len) {
  return sb_auth_scheme(req, "Bearer", sb->settings->key[SB_BRAZE], credential,
                        len);
}

/* {"message": ..., "errors": [...]} (errors stolen, may be NULL). */
static void br_fail(struct sb_response *resp, int status, const char *message,
                    json_t *errors) {
  json_t *body = json_pack("{ss}", "message", message);
  if (errors)
    json_object_set_new(body, "errors", errors);
  sb_respond_json(resp, status, body, NULL);
}

static void br_error(struct sandbox *sb, struct sb_response *resp, int status,
                     const char *code, const char *message) {
  (void)sb;
  (void)code;
  if (!message) {
    switch (status) {
    case 401:
      message = "Invalid API key";
      break;
    case 503:
      message = "Service Unavailable";
      break;
    default:
      message = "Internal Server Error";
    }
  }
  br_fail(resp, status, message, NULL);
}

static int br_limits(const struct sandbox *sb, int endpoint, int *group,
                     struct sb_window w[2]) {
  const struct sb_settings *s = sb->settings;
  if (endpoint == BR_TRACK) {
    *group = BR_GROUP_TRACK;
    w[0].limit = s->braze_track_limit;
    w[0].length_ms = s->braze_track_window_s * 1000;
  } else {
    /* The messaging endpoints, and anything not listed, share one hourly
     * limit upstream. */
    *group = BR_GROUP_MESSAGING;
    w[0].limit = s->braze_messaging_limit;
    w[0].length_ms = 3600 * 1000;
  }
  return 1;
}

static void rate_headers(struct sb_response *resp, long limit, long remaining,
                         int64_t reset_s) {
  sb_response_header(resp, "X-RateLimit-Limit", "%ld", limit);
  sb_response_header(resp, "X-RateLimit-Remaining", "%ld", remaining);
  sb_response_header(resp, "X-RateLimit-Reset", "%" PRId64, reset_s);
}

static int64_t br_throttle(struct sandbox *sb, struct sb_response *resp,
                           enum sb_throttle_reason reason,
                           const struct sb_rate *rate, int64_t now_ms,
                           int64_t hint_ms) {
  (void)sb;
  int64_t reset_s;
  if (hint_ms > 0)
    reset_s = (now_ms + hint_ms + 999) / 1000;
  else if (reason == SB_THROTTLE_RATE)
    reset_s = (rate->reset_ms[0] + 999) / 1000;
  else
    reset_s = (now_ms + 1000 + 999) / 1000;
  /* The exact 429 body is UNCONFIRMED upstream. */
  br_fail(resp, 429, "Rate limit exceeded", NULL);
  rate_headers(resp, rate->limit[0], 0, reset_s);
  return reset_s * 1000;
}

static void br_decorate(struct sandbox *sb, struct sb_response *resp,
                        const struct sb_rate *rate, int64_t now_ms) {
  (void)sb;
  (void)now_ms;
  if (resp->status == 429 || rate->n < 1)
    return;
  rate_headers(resp, rate->limit[0], rate->remaining[0],
               (rate->reset_ms[0] + 999) / 1000);
}

/* "user_alias:<label>/<name>" for an alias object, or NULL. */
static char *alias_member(json_t *alias) {
  const char *name = sb_json_string(alias, "alias_name");
  const char *label = sb_json_string(alias, "alias_label");
  if (!name || !*name || !label || !*label)
    return NULL;
  return lp_xasprintf("user_alias:%s/%s", label, name);
}

/* The user an object updates (caller frees), in upstream's order of
 * precedence (email before phone), or NULL. */
static char *object_member(json_t *o) {
  const char *external_id = sb_json_string(o, "external_id");
  if (external_id && *external_id)
    return lp_xstrdup(external_id);
  json_t *alias = json_object_get(o, "user_alias");
  if (alias)
    return alias_member(alias);
  static const char *const keys[] = {"braze_id", "email", "phone"};
  for (size_t i = 0; i < LP_ARRAY_LEN(keys); i++) {
    const char *v = sb_json_string(o, keys[i]);
    if (v && *v)
      return lp_xstrdup(v);
  }
  return NULL;
}

static void object_error(json_t *errors, const char *type, const char *array,
                         size_t index) {
  json_array_append_new(errors,
                        json_pack("{ss ss sI}", "type", type, "input_array",
                                  array, "index", (json_int_t)index));
}

static int valid_time(json_t *o, const char *key) {
  int64_t ms;
  const char *s = sb_json_string(o, key);
  return s && lp_time_parse_iso8601(s, &ms) == 0;
}

/* Why object i of array is invalid, or NULL. */
static const char *track_object_problem(json_t *o, int array) {
  if (!json_is_object(o))
    return "Object must be a JSON object";
  char *member = object_member(o);
  int identified = member != NULL;
  free(member);
  if (!identified)
    return "One of external_id, user_alias, braze_id, email or phone is "
           "required";
  json_t *props = json_object_get(o, "properties");
  if (array > 0 && props && !json_is_null(props) && !json_is_object(props))
    return "properties must be an object";
  if (array == 1) {
    const char *name = sb_json_string(o, "name");
    if (!name || !*name)
      return "Event name is required";
    if (!valid_time(o, "time"))
      return "Event time is required and must be an ISO 8601 date-time";
  } else if (array == 2) {
    const char *product = sb_json_string(o, "product_id");
    const char *currency = sb_json_string(o, "currency");
    json_t *quantity = json_object_get(o, "quantity");
    if (!product || !*product)
      return "Purchase product_id is required";
    if (!currency || strlen(currency) != 3)
      return "Purchase currency must be a three-letter ISO 4217 code";
    if (!json_is_number(json_object_get(o, "price")))
      return "Purchase price is required and must be a number";
    if (quantity &&
        (!json_is_integer(quantity) || json_integer_value(quantity) < 1 ||
         json_integer_value(quantity) > 100))
      return "Purchase quantity must be an integer from 1 to 100";
    if (!valid_time(o, "time"))
      return "Purchase time is required and must be an ISO 8601 date-time";
  }
  return NULL;
}

static void serve_track(struct sandbox *sb, const struct sb_request *req,
                        struct sb_response *resp) {
  static const char *const names[3] = {"attributes", "events", "purchases"};
  static const enum sb_kind kinds[3] = {
      SB_KIND_TRACK_ATTRIBUTES, SB_KIND_TRACK_EVENT, SB_KIND_TRACK_PURCHASE};
  json_t *arrays[3];
  size_t total = 0;
  for (int a = 0; a < 3; a++) {
    arrays[a] = json_object_get(req->json, names[a]);
    if (json_is_null(arrays[a]))
      arrays[a] = NULL;
    if (arrays[a] && !json_is_array(arrays[a])) {
      char msg[64];
      snprintf(msg, sizeof(msg), "'%s' must be an array", names[a]);
      br_fail(resp, 400, "Bad Request", json_pack("[s]", msg));
      return;
    }
    size_t n = arrays[a] ? json_array_size(arrays[a]) : 0;
    /* "75 combined" or "75 of each": which applies to a new workspace is
     * UNCONFIRMED upstream; braze.track.combined chooses. */
    if (!sb->settings->braze_track_combined && n > BR_MAX_OBJECTS) {
      br_fail(resp, 400, "Max Input Length Exceeded",
              json_pack("[{ss ss sI}]", "type",
                        "Max Input Length Exceeded: more than 75 objects",
                        "input_array", names[a], "count", (json_int_t)n));
      return;
    }
    total += n;
  }
  if (sb->settings->braze_track_combined && total > BR_MAX_OBJECTS) {
    br_fail(resp, 400, "Max Input Length Exceeded",
            json_pack("[{ss sI}]", "type",
                      "Max Input Length Exceeded: more than 75 attribute, "
                      "event and purchase objects combined",
                      "count", (json_int_t)total));
    return;
  }
  if (total == 0) {
    br_fail(resp, 400, "Bad Request",
            json_pack("[s]", "No attributes, events or purchases to process"));
    return;
  }
  json_t *errors = json_array();
  size_t valid = 0, processed[3] = {0, 0, 0};
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; arrays[a] && i < json_array_size(arrays[a]); i++) {
      const char *problem =
          track_object_problem(json_array_get(arrays[a], i), a);
      if (problem)
        object_error(errors, problem, names[a], i);
      else
        valid++;
    }
  if (valid == 0) {
    br_fail(resp, 400, "Bad Request", errors);
    return;
  }
  if (sb_ledger_reserve(sb, valid) != 0) {
    json_decref(errors);
    br_fail(resp, 507, "Sandbox ledger is full; POST /_sandbox/reset", NULL);
    return;
  }
  /* Upstream's processing order: attributes, events, purchases. */
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; arrays[a] && i < json_array_size(arrays[a]); i++) {
      json_t *o = json_array_get(arrays[a], i);
      if (track_object_problem(o, a))
        continue;
      char *member = object_member(o);
      json_t *props = json_object_get(o, "properties");
      json_t *points = json_object_get(props, "points");
      char *reference = sb_json_id(props, "decision_id");
      sb_ledger_add(
          sb, SB_BRAZE, kinds[a], member,
          a == 1 && json_is_integer(points) ? json_integer_value(points) : 0,
          reference, req->json, o, req->now_ms);
      free(member);
      free(reference);
      processed[a]++;
    }
  json_t *body = json_pack("{ss}", "message", "success");
  for (int a = 0; a < 3; a++)
    if (arrays[a]) {
      char key[32];
      snprintf(key, sizeof(key), "%s_processed", names[a]);
      json_object_set_new(body, key, json_integer((json_int_t)processed[a]));
    }
  if (json_array_size(errors))
    json_object_set_new(body, "errors", errors);
  else
    json_decref(errors);
  sb_respond_json(resp, 201, body, NULL);
}

/* "Bad Request" with one error string. */
static void bad_request(struct sb_response *resp, const char *error) {
  br_fail(resp, 400, "Bad Request", json_pack("[s]", error));
}

static void serve_send(struct sandbox *sb, int canvas,
                       const struct sb_request *req, struct sb_response *resp) {
  json_t *b = req->json;
  const char *id_key = canvas ? "canvas_id" : "campaign_id";
  const char *props_key =
      canvas ? "canvas_entry_properties" : "trigger_properties";
  const char *id = sb_json_string(b, id_key);
  if (!id || !*id) {
    br_fail(resp, 400, canvas ? "Invalid Canvas ID" : "Invalid Campaign ID",
            json_pack("[s+]", id_key, " is required"));
    return;
  }
  json_t *send_id = json_object_get(b, "send_id");
  json_t *props = json_object_get(b, props_key);
  json_t *broadcast = json_object_get(b, "broadcast");
  json_t *recipients = json_object_get(b, "recipients");
  json_t *audience = json_object_get(b, "audience");
  if (json_is_null(recipients))
    recipients = NULL;
  if (send_id && !json_is_string(send_id)) {
    bad_request(resp, "send_id must be a string");
    return;
  }
  if (props && !json_is_null(props) && !json_is_object(props)) {
    char msg[64];
    snprintf(msg, sizeof(msg), "%s must be an object", props_key);
    bad_request(resp, msg);
    return;
  }
  if (broadcast && !json_is_boolean(broadcast)) {
    bad_request(resp, "broadcast must be true or false");
    return;
  }
  if (recipients && !json_is_array(recipients)) {
    bad_request(resp, "recipients must be an array");
    return;
  }
  if (json_is_true(broadcast) && recipients) {
    bad_request(resp, "broadcast cannot be combined with recipients");
    return;
  }
  size_t n = recipients ? json_array_size(recipients) : 0;
  if (!json_is_true(broadcast) && n == 0 && !json_is_object(audience)) {
    br_fail(resp, 400, "No Recipients", NULL);
    return;
  }
  if (n > BR_MAX_RECIPIENTS) {
    br_fail(resp, 400,
            "The max number of external_ids and aliases per request was "
            "exceeded",
            NULL);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_array_get(recipients, i);
    json_t *external = json_object_get(r, "external_user_id");
    json_t *alias = json_object_get(r, "user_alias");
    char *alias_text = alias ? alias_member(alias) : NULL;
    int has_external = json_is_string(external) && *json_string_value(external);
    int ok = json_is_object(r) && (!external || has_external) &&
             (!alias || alias_text) && has_external != (alias_text != NULL);
    free(alias_text);
    if (!ok) {
      char msg[128];
      snprintf(msg, sizeof(msg),
               "recipients[%zu]: exactly one of external_user_id or a "
               "complete user_alias is required",
               i);
      bad_request(resp, msg);
      return;
    }
    json_t *rprops = json_object_get(r, props_key);
    json_t *existing = json_object_get(r, "send_to_existing_only");
    json_t *attrs = json_object_get(r, "attributes");
    if (rprops && !json_is_null(rprops) && !json_is_object(rprops)) {
      char msg[96];
      snprintf(msg, sizeof(msg), "recipients[%zu].%s must be an object", i,
               props_key);
      bad_request(resp, msg);
      return;
    }
    if (existing && !json_is_boolean(existing)) {
      bad_request(resp, "send_to_existing_only must be true or false");
      return;
    }
    if (json_is_false(existing) && !json_is_object(attrs)) {
      bad_request(resp, "attributes are required when send_to_existing_only is "
                        "false");
      return;
    }
  }
  if (sb_ledger_reserve(sb, n ? n : 1) != 0) {
    br_fail(resp, 507, "Sandbox ledger is full; POST /_sandbox/reset", NULL);
    return;
  }
  enum sb_kind kind = canvas ? SB_KIND_CANVAS_SEND : SB_KIND_CAMPAIGN_SEND;
  char *top_reference = sb_json_id(props, "decision_id");
  if (!top_reference && json_is_string(send_id))
    top_reference = lp_xstrdup(json_string_value(send_id));
  json_t *top_points = json_object_get(props, "points");
  for (size_t i = 0; i < (n ? n : 1); i++) {
    json_t *r = n ? json_array_get(recipients, i) : NULL;
    json_t *rprops = json_object_get(r, props_key);
    char *member = NULL;
    if (r) {
      const char *external = sb_json_string(r, "external_user_id");
      member = external && *external
                   ? lp_xstrdup(external)
                   : alias_member(json_object_get(r, "user_alias"));
    }
    char *reference = sb_json_id(rprops, "decision_id");
    json_t *points = json_object_get(rprops, "points");
    if (!points)
      points = top_points;
    sb_ledger_add(sb, SB_BRAZE, kind, member ? member : "*",
                  json_is_integer(points) ? json_integer_value(points) : 0,
                  reference ? reference : top_reference, b, r, req->now_ms);
    free(member);
    free(reference);
  }
  free(top_reference);
  char dispatch_id[33];
  snprintf(dispatch_id, sizeof(dispatch_id), "%016" PRIx64 "%016" PRIx64,
           sb_random_u64(sb), sb_random_u64(sb));
  sb_respond_json(
      resp, 201,
      json_pack("{ss ss}", "dispatch_id", dispatch_id, "message", "success"),
      NULL);
}

static void br_handle(struct sandbox *sb, int endpoint,
                      const struct sb_request *req, struct sb_response *resp) {
  if (!json_is_object(req->json)) {
    bad_request(resp, req->body_len ? "The request body is not valid JSON"
                                    : "A JSON request body is required");
    return;
  }
  if (endpoint == BR_TRACK)
    serve_track(sb, req, resp);
  else
    serve_send(sb, endpoint == BR_CANVAS, req, resp);
}

const struct sb_platform_ops sb_braze_ops = {
    .platform = SB_BRAZE,
    .owns = br_owns,
    .route = br_route,
    .auth = br_auth,
    .error = br_error,
    .precheck = NULL,
    .limits = br_limits,
    .throttle = br_throttle,
    .decorate = br_decorate,
    .handle = br_handle,
};
