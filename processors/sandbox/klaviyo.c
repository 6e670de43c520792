/*
 * klaviyo.c — Klaviyo's revisioned JSON:API as the executor uses it
 * (apis.md section 3): Create Event and Create or Update Profile.
 *
 * World state: profiles (found by id, email, phone_number or
 * external_id) and the (profile, metric, unique_id) keys of recorded
 * events. A repeated key is answered 202 like any event but not recorded
 * (counted as deduped), as upstream; without unique_id the key is the
 * event time to the second, upstream's default. Rate limits are fixed
 * burst (1 s) and steady (60 s) windows per endpoint group; non-429
 * answers carry RateLimit-* for the steady window, a 429 Retry-After only.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sandbox.h"
#include "util.h"

enum { KL_EVENTS, KL_PROFILE_IMPORT };
enum { KL_GROUP_EVENTS, KL_GROUP_PROFILES };

#define KL_TYPE "application/vnd.api+json"

struct kl_profile {
  char id[27];
  json_t *attributes; /* owned reference: what was written, merged */
  int64_t created_ms, updated_ms;
};

struct sb_klaviyo_state {
  struct kl_profile **profiles; /* owned */
  size_t n_profiles, cap_profiles;
  struct sb_map *by_identifier; /* "<kind>:<value>" -> kl_profile */
  struct sb_map *event_keys;    /* profile \x1f metric \x1f unique -> marker */
  int64_t next_profile;
};

struct sb_klaviyo_state *sb_klaviyo_state_new(void) {
  struct sb_klaviyo_state *s = lp_xcalloc(1, sizeof(*s));
  s->by_identifier = sb_map_new(NULL);
  s->event_keys = sb_map_new(NULL);
  s->next_profile = 1;
  return s;
}

void sb_klaviyo_state_destroy(struct sb_klaviyo_state **sp) {
  if (!sp || !*sp)
    return;
  struct sb_klaviyo_state *s = *sp;
  for (size_t i = 0; i < s->n_profiles; i++) {
    json_decref(s->profiles[i]->attributes);
    free(s->profiles[i]);
  }
  free(s->profiles);
  sb_map_destroy(&s->by_identifier);
  sb_map_destroy(&s->event_keys);
  free(s);
  *sp = NULL;
}

static int kl_owns(const char *path) {
  return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0;
}

/* Both /api/events and /api/events/ (the slash form is in much client
 * code; upstream's handling of each is UNCONFIRMED). */
static int kl_route(const char *method, const char *path) {
  struct sb_segment seg[2];
  int n = sb_path_split(path, seg, 2, 1);
  if (n != 2)
    return -404;
  int post = strcmp(method, "POST") == 0;
  if (sb_segment_is(&seg[1], "events"))
    return post ? KL_EVENTS : -405;
  if (sb_segment_is(&seg[1], "profile-import"))
    return post ? KL_PROFILE_IMPORT : -405;
  return -404;
}

static int kl_auth(const struct sandbox *sb, const struct sb_request *req,
                   const char **credential, size_t *len) {
  return sb_auth_scheme(req, "Klaviyo-API-Key", sb->settings->key[SB_KLAVIYO],
                        credential, len);
}

/* One JSON:API error; pointer or parameter (or neither) names the source. */
static void kl_error_full(struct sandbox *sb, struct sb_response *resp,
                          int status, const char *code, const char *title,
                          const char *detail, const char *pointer,
                          const char *parameter) {
  char id[37];
  sb_uuid(sb, id);
  json_t *source = json_object();
  if (pointer)
    json_object_set_new(source, "pointer", json_string(pointer));
  if (parameter)
    json_object_set_new(source, "parameter", json_string(parameter));
  json_t *e = json_pack("{ss si ss ss ss so s{}}", "id", id, "status", status,
                        "code", code, "title", title, "detail", detail,
                        "source", source, "meta");
  sb_respond_json(resp, status, json_pack("{s[o]}", "errors", e), KL_TYPE);
}

static const struct {
  int status;
  const char *code, *title;
} kl_statuses[] = {
    {400, "invalid", "Invalid input."},
    {401, "not_authenticated", "Authentication credentials were not provided."},
    {404, "not_found", "Not found."},
    {405, "method_not_allowed", "Method not allowed."},
    {413, "request_too_large", "Request entity too large."},
    {415, "unsupported_media_type", "Unsupported media type."},
    {503, "service_unavailable", "Service unavailable."},
    {507, "sandbox_ledger_full", "Sandbox ledger full."},
};

static void kl_error(struct sandbox *sb, struct sb_response *resp, int status,
                     const char *code, const char *message) {
  const char *title = "A server error occurred.", *default_code = "error";
  for (size_t i = 0; i < LP_ARRAY_LEN(kl_statuses); i++)
    if (kl_statuses[i].status == status) {
      title = kl_statuses[i].title;
      default_code = kl_statuses[i].code;
    }
  if (status == 401 && !message)
    message = "Missing or invalid private key.";
  kl_error_full(sb, resp, status, code ? code : default_code, title,
                message ? message : title, "/data/", NULL);
}

static void kl_invalid(struct sandbox *sb, struct sb_response *resp,
                       const char *detail, const char *pointer) {
  kl_error_full(sb, resp, 400, "invalid", "Invalid input.", detail, pointer,
                NULL);
}

/* YYYY-MM-DD with an optional ".suffix" (e.g. 2024-10-15.pre). */
static int valid_revision(const char *r) {
  if (!r || strlen(r) < 10 || (r[10] != '\0' && r[10] != '.'))
    return 0;
  char date[11];
  memcpy(date, r, 10);
  date[10] = '\0';
  if (!sb_valid_date(date))
    return 0;
  if (r[10] == '.') {
    if (!r[11])
      return 0;
    for (const char *p = r + 11; *p; p++)
      if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
        return 0;
  }
  return 1;
}

static int kl_precheck(struct sandbox *sb, int endpoint,
                       const struct sb_request *req, struct sb_response *resp) {
  (void)endpoint;
  const char *revision = req->header(req, "revision");
  if (!valid_revision(revision)) {
    kl_error_full(sb, resp, 400, "invalid", "Invalid input.",
                  revision ? "The `revision` header is not a valid revision "
                             "(YYYY-MM-DD)."
                           : "Missing `revision` header.",
                  NULL, "revision");
    return -1;
  }
  const char *type = req->header(req, "Content-Type");
  if (type && strncasecmp(type, KL_TYPE, strlen(KL_TYPE)) != 0 &&
      strncasecmp(type, "application/json", 16) != 0) {
    kl_error(sb, resp, 415, NULL,
             "Content-Type must be application/vnd.api+json or "
             "application/json.");
    return -1;
  }
  return 0;
}

static int kl_limits(const struct sandbox *sb, int endpoint, int *group,
                     struct sb_window w[2]) {
  const struct sb_settings *s = sb->settings;
  int profiles = endpoint == KL_PROFILE_IMPORT;
  *group = profiles ? KL_GROUP_PROFILES : KL_GROUP_EVENTS;
  w[0].limit = profiles ? s->klaviyo_profiles_burst : s->klaviyo_events_burst;
  w[0].length_ms = 1000;
  w[1].limit = profiles ? s->klaviyo_profiles_steady : s->klaviyo_events_steady;
  w[1].length_ms = 60000;
  return 2;
}

static int64_t kl_throttle(struct sandbox *sb, struct sb_response *resp,
                           enum sb_throttle_reason reason,
                           const struct sb_rate *rate, int64_t now_ms,
                           int64_t hint_ms) {
  int64_t wait_ms = hint_ms > 0                  ? hint_ms
                    : reason == SB_THROTTLE_RATE ? rate->retry_ms
                                                 : 1000;
  int64_t seconds = (wait_ms + 999) / 1000;
  if (seconds < 1)
    seconds = 1;
  char detail[128];
  snprintf(detail, sizeof(detail),
           "Request was throttled. Expected available in %" PRId64 " second%s.",
           seconds, seconds == 1 ? "" : "s");
  kl_error_full(sb, resp, 429, "throttled", "Request was throttled.", detail,
                "/data/", NULL);
  sb_response_header(resp, "Retry-After", "%" PRId64, seconds);
  return now_ms + seconds * 1000;
}

static void kl_decorate(struct sandbox *sb, struct sb_response *resp,
                        const struct sb_rate *rate, int64_t now_ms) {
  (void)sb;
  if (resp->status == 429 || rate->n < 2)
    return;
  sb_response_header(resp, "RateLimit-Limit", "%ld", rate->limit[1]);
  sb_response_header(resp, "RateLimit-Remaining", "%ld", rate->remaining[1]);
  sb_response_header(resp, "RateLimit-Reset", "%" PRId64,
                     (rate->reset_ms[1] - now_ms + 999) / 1000);
}

/* Code points of a UTF-8 string. */
static size_t utf8_length(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

static int plausible_email(const char *s) {
  const char *at = strchr(s, '@');
  return at && at != s && at[1] && !strchr(at + 1, '@') && !strchr(s, ' ');
}

static int plausible_phone(const char *s) {
  size_t digits = 0;
  if (*s != '+')
    return 0;
  for (const char *p = s + 1; *p; p++) {
    if (!isdigit((unsigned char)*p))
      return 0;
    digits++;
  }
  return digits >= 7 && digits <= 15;
}

static const char *const identifier_keys[] = {"external_id", "email",
                                              "phone_number"};
static const char identifier_tags[] = {'x', 'e', 'p'};

/* Checks identifier types in attrs (may be NULL); 0, or -1 with a 400. */
static int check_identifiers(struct sandbox *sb, struct sb_response *resp,
                             json_t *attrs, const char *base, int *count) {
  *count = 0;
  for (size_t i = 0; i < LP_ARRAY_LEN(identifier_keys); i++) {
    json_t *v = json_object_get(attrs, identifier_keys[i]);
    if (!v || json_is_null(v))
      continue;
    char pointer[160];
    snprintf(pointer, sizeof(pointer), "%s/%s", base, identifier_keys[i]);
    const char *s = json_string_value(v);
    if (!s || !*s || (i == 1 && !plausible_email(s)) ||
        (i == 2 && !plausible_phone(s))) {
      char detail[96];
      snprintf(detail, sizeof(detail), "Invalid %s.", identifier_keys[i]);
      kl_invalid(sb, resp, detail, pointer);
      return -1;
    }
    (*count)++;
  }
  return 0;
}

/* The profile one of the identifiers (or the id) points to, or NULL. */
static struct kl_profile *find_profile(struct sb_klaviyo_state *st,
                                       const char *id, json_t *attrs) {
  char key[1100];
  if (id) {
    int n = snprintf(key, sizeof(key), "i:%s", id);
    if (n > 0 && (size_t)n < sizeof(key)) {
      struct kl_profile *p = sb_map_get(st->by_identifier, key, (size_t)n);
      if (p)
        return p;
    }
  }
  for (size_t i = 0; i < LP_ARRAY_LEN(identifier_keys); i++) {
    const char *v = sb_json_string(attrs, identifier_keys[i]);
    if (!v)
      continue;
    int n = snprintf(key, sizeof(key), "%c:%s", identifier_tags[i], v);
    if (n <= 0 || (size_t)n >= sizeof(key))
      continue;
    struct kl_profile *p = sb_map_get(st->by_identifier, key, (size_t)n);
    if (p)
      return p;
  }
  return NULL;
}

static void index_profile(struct sb_klaviyo_state *st, struct kl_profile *p) {
  char key[1100];
  int n = snprintf(key, sizeof(key), "i:%s", p->id);
  sb_map_put(st->by_identifier, key, (size_t)n, p);
  for (size_t i = 0; i < LP_ARRAY_LEN(identifier_keys); i++) {
    const char *v = sb_json_string(p->attributes, identifier_keys[i]);
    if (!v)
      continue;
    n = snprintf(key, sizeof(key), "%c:%s", identifier_tags[i], v);
    if (n > 0 && (size_t)n < sizeof(key))
      sb_map_put(st->by_identifier, key, (size_t)n, p);
  }
}

static struct kl_profile *new_profile(struct sb_klaviyo_state *st,
                                      int64_t now_ms) {
  struct kl_profile *p = lp_xcalloc(1, sizeof(*p));
  snprintf(p->id, sizeof(p->id), "01SBX%021" PRId64, st->next_profile++);
  p->attributes = json_object();
  p->created_ms = p->updated_ms = now_ms;
  if (st->n_profiles == st->cap_profiles) {
    st->cap_profiles = st->cap_profiles ? st->cap_profiles * 2 : 64;
    st->profiles =
        lp_xrealloc(st->profiles, st->cap_profiles * sizeof(*st->profiles));
  }
  st->profiles[st->n_profiles++] = p;
  return p;
}

/* Upstream's upsert: a field set to null is cleared (kept as null), an
 * omitted one is left alone; properties merge key by key. */
static void merge_profile(struct sb_klaviyo_state *st, struct kl_profile *p,
                          json_t *attrs, int64_t now_ms) {
  const char *key;
  json_t *v;
  json_object_foreach(attrs, key, v) {
    json_t *old = json_object_get(p->attributes, key);
    if (strcmp(key, "properties") == 0 && json_is_object(v)) {
      if (!json_is_object(old)) {
        json_object_set_new(p->attributes, key, json_object());
        old = json_object_get(p->attributes, key);
      }
      json_object_update(old, v);
    } else {
      json_object_set(p->attributes, key, v);
    }
  }
  p->updated_ms = now_ms;
  index_profile(st, p);
}

static json_t *profile_json(const struct kl_profile *p) {
  json_t *attrs = json_deep_copy(p->attributes);
  json_object_set_new(attrs, "created", sb_json_time(p->created_ms));
  json_object_set_new(attrs, "updated", sb_json_time(p->updated_ms));
  char self[96];
  snprintf(self, sizeof(self), "https://a.klaviyo.com/api/profiles/%s/", p->id);
  return json_pack("{ss ss so s{ss}}", "type", "profile", "id", p->id,
                   "attributes", attrs, "links", "self", self);
}

/* The ledger's member: external_id, else email, else phone, else id. */
static const char *member_of(json_t *attrs, const char *id) {
  for (size_t i = 0; i < LP_ARRAY_LEN(identifier_keys); i++) {
    const char *v = sb_json_string(attrs, identifier_keys[i]);
    if (v)
      return v;
  }
  return id;
}

static void serve_event(struct sandbox *sb, const struct sb_request *req,
                        struct sb_response *resp) {
  json_t *data = json_object_get(req->json, "data");
  if (!json_is_object(data)) {
    kl_invalid(sb, resp, "`data` is required and must be an object.", "/data");
    return;
  }
  const char *type = sb_json_string(data, "type");
  if (!type || strcmp(type, "event") != 0) {
    kl_invalid(sb, resp, "`type` must be 'event'.", "/data/type");
    return;
  }
  json_t *attrs = json_object_get(data, "attributes");
  if (!json_is_object(attrs)) {
    kl_invalid(sb, resp, "`attributes` is required.", "/data/attributes");
    return;
  }
  json_t *props = json_object_get(attrs, "properties");
  if (!json_is_object(props)) {
    kl_invalid(sb, resp, "`properties` is required and must be an object.",
               "/data/attributes/properties");
    return;
  }
  json_t *metric_attrs = json_object_get(
      json_object_get(json_object_get(attrs, "metric"), "data"), "attributes");
  const char *metric = sb_json_string(metric_attrs, "name");
  if (!metric || !*metric || utf8_length(metric) >= 128) {
    kl_invalid(sb, resp,
               "The metric name is required and must be shorter than 128 "
               "characters.",
               "/data/attributes/metric/data/attributes/name");
    return;
  }
  json_t *pdata = json_object_get(json_object_get(attrs, "profile"), "data");
  if (!json_is_object(pdata)) {
    kl_invalid(sb, resp, "`profile` is required.",
               "/data/attributes/profile/data");
    return;
  }
  json_t *pattrs = json_object_get(pdata, "attributes");
  if (pattrs && !json_is_null(pattrs) && !json_is_object(pattrs)) {
    kl_invalid(sb, resp, "`attributes` must be an object.",
               "/data/attributes/profile/data/attributes");
    return;
  }
  int identifiers;
  if (check_identifiers(sb, resp, pattrs,
                        "/data/attributes/profile/data/attributes",
                        &identifiers) != 0)
    return;
  const char *pid = sb_json_string(pdata, "id");
  if (!identifiers && !(pid && *pid)) {
    kl_invalid(sb, resp,
               "A profile identifier (id, email, phone_number or "
               "external_id) is required.",
               "/data/attributes/profile/data/attributes");
    return;
  }
  json_t *time = json_object_get(attrs, "time");
  int64_t event_ms = req->now_ms;
  if (time && !json_is_null(time)) {
    if (!json_is_string(time) ||
        lp_time_parse_iso8601(json_string_value(time), &event_ms) != 0 ||
        event_ms < 946684800000LL ||
        event_ms > req->now_ms + 366LL * 86400 * 1000) {
      kl_invalid(sb, resp,
                 "`time` must be an ISO 8601 date-time after 2000 and at "
                 "most a year ahead.",
                 "/data/attributes/time");
      return;
    }
  }
  json_t *value = json_object_get(attrs, "value");
  if (value && !json_is_null(value) && !json_is_number(value)) {
    kl_invalid(sb, resp, "`value` must be a number.", "/data/attributes/value");
    return;
  }
  json_t *unique = json_object_get(attrs, "unique_id");
  if (unique && !json_is_null(unique) && !json_is_string(unique)) {
    kl_invalid(sb, resp, "`unique_id` must be a string.",
               "/data/attributes/unique_id");
    return;
  }
  const char *unique_id = json_string_value(unique);

  struct sb_klaviyo_state *st = sb->klaviyo;
  struct kl_profile *p = find_profile(st, pid, pattrs);
  char when[32];
  snprintf(when, sizeof(when), "@%" PRId64, event_ms / 1000);
  const char *dedupe = unique_id ? unique_id : when;
  if (p) {
    char *key = lp_xasprintf("%s\x1f%s\x1f%s", p->id, metric, dedupe);
    int seen = sb_map_get(st->event_keys, key, strlen(key)) != NULL;
    free(key);
    if (seen) {
      /* Accepted like any event, recorded once: upstream's dedupe. */
      sb->stats[SB_KLAVIYO].deduped++;
      sb_respond_empty(resp, 202);
      return;
    }
  }
  if (sb_ledger_reserve(sb, 1) != 0) {
    kl_error(sb, resp, 507, NULL,
             "Sandbox ledger is full; POST /_sandbox/reset.");
    return;
  }
  if (!p)
    p = new_profile(st, req->now_ms);
  if (json_is_object(pattrs))
    merge_profile(st, p, pattrs, req->now_ms);
  else
    index_profile(st, p);
  char *key = lp_xasprintf("%s\x1f%s\x1f%s", p->id, metric, dedupe);
  sb_map_put(st->event_keys, key, strlen(key), st);
  free(key);
  json_t *points = json_object_get(props, "points");
  sb_ledger_add(sb, SB_KLAVIYO, SB_KIND_EVENT, member_of(pattrs, p->id),
                json_is_integer(points) ? json_integer_value(points) : 0,
                unique_id, req->json, NULL, req->now_ms);
  sb_respond_empty(resp, 202);
}

static void serve_profile_import(struct sandbox *sb,
                                 const struct sb_request *req,
                                 struct sb_response *resp) {
  json_t *data = json_object_get(req->json, "data");
  if (!json_is_object(data)) {
    kl_invalid(sb, resp, "`data` is required and must be an object.", "/data");
    return;
  }
  const char *type = sb_json_string(data, "type");
  if (!type || strcmp(type, "profile") != 0) {
    kl_invalid(sb, resp, "`type` must be 'profile'.", "/data/type");
    return;
  }
  json_t *attrs = json_object_get(data, "attributes");
  if (!json_is_object(attrs)) {
    kl_invalid(sb, resp, "`attributes` is required.", "/data/attributes");
    return;
  }
  json_t *props = json_object_get(attrs, "properties");
  if (props && !json_is_null(props) && !json_is_object(props)) {
    kl_invalid(sb, resp, "`properties` must be an object.",
               "/data/attributes/properties");
    return;
  }
  int identifiers;
  if (check_identifiers(sb, resp, attrs, "/data/attributes", &identifiers))
    return;
  const char *pid = sb_json_string(data, "id");
  if (!identifiers && !(pid && *pid)) {
    kl_invalid(sb, resp,
               "One of email, phone_number or external_id (or the profile "
               "id) is required.",
               "/data/attributes");
    return;
  }
  struct sb_klaviyo_state *st = sb->klaviyo;
  struct kl_profile *p = find_profile(st, pid, attrs);
  if (pid && *pid && (!p || strcmp(p->id, pid) != 0)) {
    kl_error_full(sb, resp, 404, "not_found", "Not found.",
                  "No profile with this id.", "/data/id", NULL);
    return;
  }
  if (sb_ledger_reserve(sb, 1) != 0) {
    kl_error(sb, resp, 507, NULL,
             "Sandbox ledger is full; POST /_sandbox/reset.");
    return;
  }
  int created = p == NULL;
  if (!p)
    p = new_profile(st, req->now_ms);
  merge_profile(st, p, attrs, req->now_ms);
  const char *member = member_of(attrs, p->id);
  sb_ledger_add(sb, SB_KLAVIYO, SB_KIND_PROFILE, member, 0, member, req->json,
                NULL, req->now_ms);
  sb_respond_json(resp, created ? 201 : 200,
                  json_pack("{so}", "data", profile_json(p)), KL_TYPE);
}

static void kl_handle(struct sandbox *sb, int endpoint,
                      const struct sb_request *req, struct sb_response *resp) {
  if (!json_is_object(req->json)) {
    kl_invalid(sb, resp,
               req->body_len ? "The request body is not valid JSON."
                             : "A JSON:API request body is required.",
               "/data");
    return;
  }
  if (endpoint == KL_EVENTS)
    serve_event(sb, req, resp);
  else
    serve_profile_import(sb, req, resp);
}

const struct sb_platform_ops sb_klaviyo_ops = {
    .platform = SB_KLAVIYO,
    .owns = kl_owns,
    .route = kl_route,
    .auth = kl_auth,
    .error = kl_error,
    .precheck = kl_precheck,
    .limits = kl_limits,
    .throttle = kl_throttle,
    .decorate = kl_decorate,
    .handle = kl_handle,
};
