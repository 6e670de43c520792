/*
 * adapters.c — request building and response reading per platform (see
 * adapters.h). Bodies are built with Jansson, never by pasting strings.
 */
#include "adapters.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "util.h"

/* LoyaltyLion's documented bounds for one add-points call. */
#define LL_MAX_POINTS 1000000

static const char *const platform_names[LP_PLATFORM_COUNT] = {
    "loyaltylion", "smile", "klaviyo", "braze"};

const char *lp_platform_name(enum lp_platform p) {
  return p >= 0 && p < LP_PLATFORM_COUNT ? platform_names[p] : "none";
}

int lp_platform_parse(const char *name, enum lp_platform *out) {
  if (strcmp(name, "none") == 0) {
    *out = LP_PLATFORM_NONE;
    return 0;
  }
  for (int i = 0; i < LP_PLATFORM_COUNT; i++)
    if (strcmp(name, platform_names[i]) == 0) {
      *out = (enum lp_platform)i;
      return 0;
    }
  return -1;
}

void lp_http_request_clear(struct lp_http_request *r) {
  free(r->url);
  free(r->body);
  for (int i = 0; i < r->n_headers; i++)
    free(r->headers[i]);
  free(r->summary);
  memset(r, 0, sizeof(*r));
}

enum lp_platform lp_adapters_route(const struct lp_adapters_conf *c,
                                   const struct lp_reward_decision *d,
                                   char *errstr, size_t errstr_size) {
  enum lp_platform p = LP_PLATFORM_NONE;
  const char *which = "";
  switch (d->action.kind) {
  case LP_ACTION_POINTS:
    p = c->loyalty;
    which = "platform.loyalty";
    break;
  case LP_ACTION_MESSAGE:
  case LP_ACTION_DISCOUNT_CODE:
  case LP_ACTION_TIER_CHANGE:
  case LP_ACTION_SCORE_SYNC:
    p = c->marketing;
    which = "platform.marketing";
    break;
  case LP_ACTION_REWARD:
    lp_err(errstr, errstr_size,
           "action.kind: reward is not carried out by any adapter yet");
    return LP_PLATFORM_NONE;
  }
  if (p == LP_PLATFORM_NONE)
    lp_err(errstr, errstr_size, "action.kind: %s needs %s, which is none",
           lp_action_kind_name(d->action.kind), which);
  return p;
}

/* "<base><path>" with no doubled slash (caller frees). */
static char *join_url(const char *base, const char *path) {
  size_t n = strlen(base);
  while (n > 0 && base[n - 1] == '/')
    n--;
  return lp_xasprintf("%.*s%s", (int)n, base, path);
}

/* Percent-encodes a path segment (caller frees). */
static char *url_segment(const char *s) {
  struct lp_buf b;
  lp_buf_init(&b);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (isalnum(*p) || strchr("-._~", *p))
      lp_buf_append_byte(&b, *p);
    else
      lp_buf_appendf(&b, "%%%02X", *p);
  }
  char *out = lp_xstrdup(lp_buf_cstr(&b));
  lp_buf_free(&b);
  return out;
}

static void add_header(struct lp_http_request *r, char *h) {
  LP_ASSERT(r->n_headers < LP_HTTP_MAX_HEADERS);
  r->headers[r->n_headers++] = h;
}

/* Takes ownership of body (a Jansson value) as compact JSON. */
static void set_body(struct lp_http_request *r, json_t *body) {
  r->body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(body);
  LP_ASSERT(r->body);
}

/* "<shop>:<customer>": the member's id at marketing platforms. */
static char *external_id(const struct lp_reward_decision *d) {
  return lp_xasprintf("%s:%s", d->shop, d->customer_id);
}

/* ISO 8601 UTC of the decision's event time, to the second. */
static void iso_time(int64_t ms, char *out, size_t size) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The decision's own properties, for marketing events. */
static json_t *decision_properties(const struct lp_reward_decision *d) {
  const struct lp_action *a = &d->action;
  json_t *o = json_object();
  json_object_set_new(o, "decision_id", json_string(d->decision_id));
  json_object_set_new(o, "rule_id", json_string(d->rule_id));
  json_object_set_new(o, "rule_version", json_integer(d->rule_version));
  json_object_set_new(o, "action", json_string(lp_action_kind_name(a->kind)));
  if (a->points)
    json_object_set_new(o, "points", json_integer(a->points));
  if (a->template_id)
    json_object_set_new(o, "template_id", json_string(a->template_id));
  if (a->channel)
    json_object_set_new(o, "channel", json_string(a->channel));
  if (a->discount_percent)
    json_object_set_new(o, "discount_percent",
                        json_integer(a->discount_percent));
  if (a->discount_amount_micros) {
    char m[32];
    lp_money_format(a->discount_amount_micros, m, sizeof(m));
    json_object_set_new(o, "discount_amount", json_string(m));
  }
  if (a->tier)
    json_object_set_new(o, "tier", json_string(a->tier));
  if (a->brand)
    json_object_set_new(o, "brand", json_string(a->brand));
  if (a->category)
    json_object_set_new(o, "category", json_string(a->category));
  return o;
}

static const char *klaviyo_metric(enum lp_action_kind k) {
  return k == LP_ACTION_DISCOUNT_CODE ? "Loyalty Discount Offered"
                                      : "Loyalty Message";
}

static const char *braze_event(enum lp_action_kind k) {
  return k == LP_ACTION_DISCOUNT_CODE ? "loyalty_discount_offered"
                                      : "loyalty_message";
}

static int build_points(const struct lp_adapters_conf *c, enum lp_platform p,
                        const struct lp_reward_decision *d,
                        struct lp_http_request *r, char *errstr,
                        size_t errstr_size) {
  int64_t pts = d->action.points;
  if (pts <= 0)
    return lp_err(errstr, errstr_size,
                  "action.points: %lld is not a positive number of points",
                  (long long)pts);
  const struct lp_platform_conf *pc = &c->platforms[p];
  if (p == LP_PLATFORM_LOYALTYLION) {
    if (pts > LL_MAX_POINTS)
      return lp_err(errstr, errstr_size,
                    "action.points: %lld is above LoyaltyLion's maximum of "
                    "%d per call",
                    (long long)pts, LL_MAX_POINTS);
    char *seg = url_segment(d->customer_id);
    char *path = lp_xasprintf("/v2/customers/%s/points", seg);
    r->method = "POST";
    r->url = join_url(pc->base_url, path);
    /* The reason is shown to the shopper; the bracketed id is how a later
     * check recognises this award among the member's transactions. */
    char *reason =
        lp_xasprintf("%s [%s]",
                     d->explanation.summary && *d->explanation.summary
                         ? d->explanation.summary
                         : "Loyalty reward",
                     d->decision_id);
    set_body(
        r, json_pack("{s:I,s:s}", "points", (json_int_t)pts, "reason", reason));
    r->summary = lp_xasprintf("POST %s points=%lld", path, (long long)pts);
    add_header(r, lp_xasprintf("Authorization: Bearer %s", pc->key));
    free(reason);
    free(path);
    free(seg);
    return 0;
  }
  /* Smile.io identifies members by its own numeric id; this adapter
   * expects the shop's customer id to be it (documented). */
  char *end = NULL;
  long long id = strtoll(d->customer_id, &end, 10);
  if (!*d->customer_id || *end || id <= 0)
    return lp_err(errstr, errstr_size,
                  "customer_id: \"%.64s\" is not a Smile.io customer id (a "
                  "positive integer)",
                  d->customer_id);
  if (pts > INT32_MAX)
    return lp_err(errstr, errstr_size, "action.points: %lld is too large",
                  (long long)pts);
  r->method = "POST";
  r->url = join_url(pc->base_url, "/v1/points_transactions");
  const char *desc = d->explanation.summary && *d->explanation.summary
                         ? d->explanation.summary
                         : "Loyalty reward";
  set_body(r, json_pack("{s:{s:I,s:I,s:s,s:s}}", "points_transaction",
                        "customer_id", (json_int_t)id, "points_change",
                        (json_int_t)pts, "description", desc, "internal_note",
                        d->decision_id));
  r->summary = lp_xasprintf("POST /v1/points_transactions customer_id=%lld "
                            "points_change=%lld",
                            id, (long long)pts);
  add_header(r, lp_xasprintf("Authorization: Bearer %s", pc->key));
  return 0;
}

/* A score sync's attributes as profile properties: numbers where the
 * text is a plain decimal (so the platform can segment on them), null
 * to clear one that no longer applies, else strings. */
static json_t *sync_properties(const struct lp_reward_decision *d) {
  json_t *o = json_object();
  for (size_t i = 0; i < d->action.n_attributes; i++) {
    const struct lp_feature *f = &d->action.attributes[i];
    if (!f->name || !*f->name)
      continue;
    json_t *v = json_null();
    if (f->value) {
      char *end = NULL;
      double x = strtod(f->value, &end);
      int numeric = *f->value && *end == '\0' &&
                    strspn(f->value, "-0123456789.") == strlen(f->value);
      v = numeric ? json_real(x) : json_string(f->value);
    }
    json_object_set_new(o, f->name, v);
  }
  return o;
}

static int build_marketing(const struct lp_adapters_conf *c, enum lp_platform p,
                           const struct lp_reward_decision *d,
                           struct lp_http_request *r) {
  const struct lp_platform_conf *pc = &c->platforms[p];
  enum lp_action_kind k = d->action.kind;
  char *ext = external_id(d);
  char when[32];
  iso_time(d->event_time_ms, when, sizeof(when));
  r->method = "POST";
  if (p == LP_PLATFORM_KLAVIYO) {
    add_header(r, lp_xasprintf("Authorization: Klaviyo-API-Key %s", pc->key));
    add_header(r, lp_xasprintf("revision: %s", c->klaviyo_revision));
    add_header(r, lp_xstrdup("Content-Type: application/vnd.api+json"));
    add_header(r, lp_xstrdup("Accept: application/vnd.api+json"));
    if (k == LP_ACTION_SCORE_SYNC) {
      /* An upsert: sending it twice writes the same values twice. */
      r->url = join_url(pc->base_url, "/api/profile-import");
      set_body(r, json_pack("{s:{s:s,s:{s:s,s:o}}}", "data", "type", "profile",
                            "attributes", "external_id", ext, "properties",
                            sync_properties(d)));
      r->summary = lp_xasprintf("POST /api/profile-import scores (%zu "
                                "properties)",
                                d->action.n_attributes);
    } else if (k == LP_ACTION_TIER_CHANGE) {
      r->url = join_url(pc->base_url, "/api/profile-import");
      set_body(r, json_pack("{s:{s:s,s:{s:s,s:{s:s,s:s}}}}", "data", "type",
                            "profile", "attributes", "external_id", ext,
                            "properties", "loyalty_tier", d->action.tier,
                            "loyalty_decision_id", d->decision_id));
      r->summary = lp_xasprintf("POST /api/profile-import loyalty_tier=%s",
                                d->action.tier);
    } else {
      r->url = join_url(pc->base_url, "/api/events");
      json_t *ev = json_pack(
          "{s:{s:s,s:{s:{s:{s:s,s:{s:s}}},s:{s:{s:s,s:{s:s}}},s:o,s:s,s:s}}}",
          "data", "type", "event", "attributes", "metric", "data", "type",
          "metric", "attributes", "name", klaviyo_metric(k), "profile", "data",
          "type", "profile", "attributes", "external_id", ext, "properties",
          decision_properties(d), "time", when, "unique_id", d->decision_id);
      /* Klaviyo refuses event times before 2000 (or more than a year
       * ahead): for such a decision (a replay of old history) the event
       * goes without "time", Klaviyo stamps it on receipt, and the
       * decision's own time travels as a property. */
      if (d->event_time_ms < 946684800000LL) {
        json_t *attrs =
            json_object_get(json_object_get(ev, "data"), "attributes");
        json_object_del(attrs, "time");
        json_object_set_new(json_object_get(attrs, "properties"),
                            "decision_time", json_string(when));
      }
      set_body(r, ev);
      r->summary = lp_xasprintf(
          "POST /api/events metric=\"%s\" template=%s", klaviyo_metric(k),
          d->action.template_id ? d->action.template_id : "-");
    }
  } else {
    add_header(r, lp_xasprintf("Authorization: Bearer %s", pc->key));
    add_header(r, lp_xstrdup("Content-Type: application/json"));
    r->url = join_url(pc->base_url, "/users/track");
    if (k == LP_ACTION_SCORE_SYNC) {
      json_t *attrs = sync_properties(d);
      json_object_set_new(attrs, "external_id", json_string(ext));
      set_body(r, json_pack("{s:[o]}", "attributes", attrs));
      r->summary = lp_xasprintf("POST /users/track scores (%zu attributes)",
                                d->action.n_attributes);
    } else if (k == LP_ACTION_TIER_CHANGE) {
      set_body(r, json_pack("{s:[{s:s,s:s}]}", "attributes", "external_id", ext,
                            "loyalty_tier", d->action.tier));
      r->summary = lp_xasprintf("POST /users/track attribute loyalty_tier=%s",
                                d->action.tier);
    } else {
      set_body(r, json_pack("{s:[{s:s,s:s,s:s,s:o}]}", "events", "external_id",
                            ext, "name", braze_event(k), "time", when,
                            "properties", decision_properties(d)));
      r->summary =
          lp_xasprintf("POST /users/track event=%s template=%s", braze_event(k),
                       d->action.template_id ? d->action.template_id : "-");
    }
  }
  free(ext);
  return 0;
}

/* A score sync's attributes fit a profile update: some, at most 64,
 * names of 1 to 255 characters not starting with '$' (both platforms'
 * limits). */
static int check_sync(const struct lp_reward_decision *d, char *errstr,
                      size_t errstr_size) {
  if (d->action.n_attributes == 0)
    return lp_err(errstr, errstr_size,
                  "action.attributes: a score_sync without attributes");
  if (d->action.n_attributes > 64)
    return lp_err(errstr, errstr_size,
                  "action.attributes: %zu is above the 64 a profile update "
                  "carries",
                  d->action.n_attributes);
  for (size_t i = 0; i < d->action.n_attributes; i++) {
    const char *n = d->action.attributes[i].name;
    if (!n || !*n || strlen(n) > 255 || n[0] == '$')
      return lp_err(errstr, errstr_size,
                    "action.attributes[%zu].name: must be 1 to 255 "
                    "characters, not starting with '$'",
                    i);
  }
  return 0;
}

int lp_adapters_build(const struct lp_adapters_conf *c, enum lp_platform p,
                      const struct lp_reward_decision *d,
                      struct lp_http_request *out, char *errstr,
                      size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  if (p < 0 || p >= LP_PLATFORM_COUNT)
    return lp_err(errstr, errstr_size, "no platform for this decision");
  int rc;
  switch (d->action.kind) {
  case LP_ACTION_POINTS:
    if (p != LP_PLATFORM_LOYALTYLION && p != LP_PLATFORM_SMILE)
      return lp_err(errstr, errstr_size,
                    "action.kind: points cannot be awarded on %s",
                    lp_platform_name(p));
    rc = build_points(c, p, d, out, errstr, errstr_size);
    break;
  case LP_ACTION_TIER_CHANGE:
    if (!d->action.tier || !*d->action.tier)
      return lp_err(errstr, errstr_size, "action.tier: missing");
    /* fall through */
  case LP_ACTION_SCORE_SYNC:
  case LP_ACTION_MESSAGE:
  case LP_ACTION_DISCOUNT_CODE:
    if (d->action.kind == LP_ACTION_SCORE_SYNC &&
        check_sync(d, errstr, errstr_size))
      return -1;
    if (p != LP_PLATFORM_KLAVIYO && p != LP_PLATFORM_BRAZE)
      return lp_err(errstr, errstr_size, "action.kind: %s cannot be sent on %s",
                    lp_action_kind_name(d->action.kind), lp_platform_name(p));
    rc = build_marketing(c, p, d, out);
    break;
  default:
    return lp_err(errstr, errstr_size, "action.kind: %s is not supported",
                  lp_action_kind_name(d->action.kind));
  }
  if (rc)
    lp_http_request_clear(out);
  return rc;
}

int lp_adapters_resend_safe(enum lp_platform p,
                            const struct lp_reward_decision *d) {
  /* Writing the same attributes again leaves the profile as it was. */
  if (d && d->action.kind == LP_ACTION_SCORE_SYNC &&
      (p == LP_PLATFORM_KLAVIYO || p == LP_PLATFORM_BRAZE))
    return 1;
  switch (p) {
  case LP_PLATFORM_KLAVIYO:
    return 1; /* unique_id: a repeat is dropped by Klaviyo */
  case LP_PLATFORM_LOYALTYLION:
  case LP_PLATFORM_SMILE:
    return 0; /* read the transactions first */
  default:
    return -1;
  }
}

int lp_adapters_check_request(const struct lp_adapters_conf *c,
                              enum lp_platform p,
                              const struct lp_reward_decision *d,
                              struct lp_http_request *out, char *errstr,
                              size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  const struct lp_platform_conf *pc = &c->platforms[p];
  out->method = "GET";
  if (p == LP_PLATFORM_LOYALTYLION) {
    char *seg = url_segment(d->customer_id);
    char *path = lp_xasprintf("/v2/customers/%s/transactions?limit=500", seg);
    out->url = join_url(pc->base_url, path);
    out->summary = lp_xasprintf("GET %s", path);
    free(path);
    free(seg);
  } else if (p == LP_PLATFORM_SMILE) {
    char *seg = url_segment(d->customer_id);
    char *path =
        lp_xasprintf("/v1/points_transactions?customer_id=%s&limit=250", seg);
    out->url = join_url(pc->base_url, path);
    out->summary = lp_xasprintf("GET %s", path);
    free(path);
    free(seg);
  } else {
    return lp_err(errstr, errstr_size, "%s has no transactions to check",
                  lp_platform_name(p));
  }
  add_header(out, lp_xasprintf("Authorization: Bearer %s", pc->key));
  return 0;
}

int lp_adapters_check_result(enum lp_platform p,
                             const struct lp_reward_decision *d, int status,
                             const char *body, size_t len, char *reference,
                             size_t reference_size, char *errstr,
                             size_t errstr_size) {
  if (status != 200)
    return lp_err(errstr, errstr_size, "check: HTTP %d", status);
  json_error_t je;
  json_t *root = json_loadb(body, len, 0, &je);
  if (!root)
    return lp_err(errstr, errstr_size, "check: not JSON: %s", je.text);
  int found = 0;
  char want[64];
  snprintf(want, sizeof(want), "[%s]", d->decision_id);
  json_t *list = json_object_get(root, p == LP_PLATFORM_LOYALTYLION
                                           ? "transactions"
                                           : "points_transactions");
  if (!json_is_array(list)) {
    json_decref(root);
    return lp_err(errstr, errstr_size, "check: no transaction list");
  }
  size_t i;
  json_t *t;
  json_array_foreach(list, i, t) {
    const char *text = NULL;
    if (p == LP_PLATFORM_LOYALTYLION) {
      text = json_string_value(
          json_object_get(json_object_get(t, "adjustment"), "reason"));
      found = text && strstr(text, want) != NULL;
    } else {
      text = json_string_value(json_object_get(t, "internal_note"));
      found = text && strcmp(text, d->decision_id) == 0;
    }
    if (found) {
      json_t *id = json_object_get(t, "id");
      if (json_is_integer(id))
        snprintf(reference, reference_size, "%lld",
                 (long long)json_integer_value(id));
      else if (json_is_string(id))
        snprintf(reference, reference_size, "%s", json_string_value(id));
      break;
    }
  }
  json_decref(root);
  return found;
}

void lp_rate_headers_init(struct lp_rate_headers *h) {
  h->retry_after_s = -1;
  h->reset_s = -1;
  h->x_reset_epoch_s = -1;
  h->x_remaining = -1;
}

/* The header's value as a whole non-negative integer, or -1. */
static int64_t header_int(const char *line, size_t len, size_t name_len) {
  const char *p = line + name_len, *end = line + len;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  int64_t v = 0;
  int digits = 0;
  while (p < end && *p >= '0' && *p <= '9' && digits < 12) {
    v = v * 10 + (*p++ - '0');
    digits++;
  }
  while (p < end && (*p == ' ' || *p == '\r' || *p == '\n'))
    p++;
  return digits && p == end ? v : -1;
}

void lp_rate_headers_parse_line(struct lp_rate_headers *h, const char *line,
                                size_t len) {
  static const struct {
    const char *name;
    size_t off;
  } names[] = {
      {"retry-after:", offsetof(struct lp_rate_headers, retry_after_s)},
      {"ratelimit-reset:", offsetof(struct lp_rate_headers, reset_s)},
      {"x-ratelimit-reset:", offsetof(struct lp_rate_headers, x_reset_epoch_s)},
      {"x-ratelimit-remaining:", offsetof(struct lp_rate_headers, x_remaining)},
  };
  for (size_t i = 0; i < LP_ARRAY_LEN(names); i++) {
    size_t n = strlen(names[i].name);
    if (len > n && strncasecmp(line, names[i].name, n) == 0) {
      *(int64_t *)((char *)h + names[i].off) = header_int(line, len, n);
      return;
    }
  }
}

/* The platform's own error text from a body, into reason. */
static void error_text(enum lp_platform p, const char *body, size_t len,
                       char *reason, size_t size) {
  json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
  const char *msg = NULL;
  if (root) {
    if (p == LP_PLATFORM_KLAVIYO) {
      json_t *e = json_array_get(json_object_get(root, "errors"), 0);
      msg = json_string_value(json_object_get(e, "detail"));
    } else if (p == LP_PLATFORM_BRAZE) {
      msg = json_string_value(json_object_get(root, "message"));
    } else {
      msg = json_string_value(
          json_object_get(json_object_get(root, "error"), "message"));
    }
  }
  snprintf(reason, size, "%s", msg ? msg : "no error message");
  json_decref(root);
}

enum lp_response_class lp_adapters_classify(
    enum lp_platform p, int status, const struct lp_rate_headers *h,
    int64_t now_epoch_ms, const char *body, size_t len, int64_t *wait_ms,
    char *reference, size_t reference_size, char *reason, size_t reason_size) {
  *wait_ms = 0;
  reference[0] = '\0';
  reason[0] = '\0';
  if (status >= 200 && status < 300) {
    /* Braze answers 2xx also for a fatal batch error; check the body. */
    json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
    if (p == LP_PLATFORM_SMILE) {
      json_t *id =
          json_object_get(json_object_get(root, "points_transaction"), "id");
      if (json_is_integer(id))
        snprintf(reference, reference_size, "%lld",
                 (long long)json_integer_value(id));
    } else if (p == LP_PLATFORM_BRAZE) {
      const char *m = json_string_value(json_object_get(root, "message"));
      json_t *errs = json_object_get(root, "errors");
      if (m && strcmp(m, "success") != 0 && strcmp(m, "queued") != 0) {
        snprintf(reason, reason_size, "braze: %s", m);
        json_decref(root);
        return LP_RESP_PERMANENT;
      }
      if (json_array_size(errs) > 0) {
        char *e = json_dumps(json_array_get(errs, 0), JSON_COMPACT);
        snprintf(reason, reason_size, "braze: %s", e ? e : "error");
        free(e);
        json_decref(root);
        return LP_RESP_PERMANENT;
      }
    }
    json_decref(root);
    return LP_RESP_OK;
  }
  if (status == 429) {
    int64_t w = -1;
    if (h->retry_after_s >= 0)
      w = h->retry_after_s * 1000;
    else if (h->reset_s >= 0)
      w = h->reset_s * 1000;
    else if (h->x_reset_epoch_s >= 0)
      w = h->x_reset_epoch_s * 1000 - now_epoch_ms;
    /* Smile.io and LoyaltyLion say nothing: their windows are 1 s. A
     * wait beyond 5 minutes is taken as a misread header (e.g. a reset
     * in milliseconds) and capped, not honoured for days. */
    *wait_ms = w > 0 ? (w < 300000 ? w : 300000) : 1000;
    snprintf(reason, reason_size, "rate limited (HTTP 429)");
    return LP_RESP_RATE_LIMITED;
  }
  if (status >= 500 || status == 408 || status == 0) {
    snprintf(reason, reason_size, "HTTP %d", status);
    return LP_RESP_TRANSIENT;
  }
  char text[200];
  error_text(p, body, len, text, sizeof(text));
  snprintf(reason, reason_size, "%s answered HTTP %d: %s", lp_platform_name(p),
           status, text);
  return LP_RESP_PERMANENT;
}
