/*
 * test_adapters.c — the platform adapters without I/O: routing, the
 * exact requests (paths, auth headers, bodies, dedupe fields), decisions
 * refused before any call, reading the transaction lists that tell
 * whether an earlier attempt applied, and classifying responses
 * (success, 429 with each platform's headers, transient, permanent with
 * the platform's own message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "adapters.h"
#include "util.h"

static struct lp_adapters_conf conf(enum lp_platform loyalty,
                                    enum lp_platform marketing) {
  struct lp_adapters_conf c;
  memset(&c, 0, sizeof(c));
  c.loyalty = loyalty;
  c.marketing = marketing;
  c.platforms[LP_PLATFORM_LOYALTYLION] =
      (struct lp_platform_conf){"http://127.0.0.1:9/", "ll-key"};
  c.platforms[LP_PLATFORM_SMILE] =
      (struct lp_platform_conf){"http://127.0.0.1:9", "sm-key"};
  c.platforms[LP_PLATFORM_KLAVIYO] =
      (struct lp_platform_conf){"http://127.0.0.1:9", "pk_x"};
  c.platforms[LP_PLATFORM_BRAZE] =
      (struct lp_platform_conf){"http://127.0.0.1:9", "bz-key"};
  c.klaviyo_revision = "2026-07-15";
  return c;
}

static struct lp_reward_decision decision(enum lp_action_kind kind,
                                          int64_t points) {
  struct lp_reward_decision d;
  memset(&d, 0, sizeof(d));
  d.decision_id = "0123456789abcdef0123456789abcdef";
  d.shop = "shop-1";
  d.customer_id = "4242";
  d.trigger_event_id = "evt-1";
  d.rule_id = "points-per-order";
  d.rule_version = 3;
  d.action.kind = kind;
  d.action.points = points;
  d.event_time_ms = 1709294400000LL; /* 2024-03-01T12:00:00Z */
  d.explanation.summary = "points per order";
  return d;
}

static int has_header(const struct lp_http_request *r, const char *h) {
  for (int i = 0; i < r->n_headers; i++)
    if (strcmp(r->headers[i], h) == 0)
      return 1;
  return 0;
}

static void test_route(void **state) {
  (void)state;
  char err[256];
  struct lp_adapters_conf c = conf(LP_PLATFORM_SMILE, LP_PLATFORM_BRAZE);
  struct lp_reward_decision d = decision(LP_ACTION_POINTS, 10);
  assert_int_equal(lp_adapters_route(&c, &d, err, sizeof(err)),
                   LP_PLATFORM_SMILE);
  d.action.kind = LP_ACTION_MESSAGE;
  assert_int_equal(lp_adapters_route(&c, &d, err, sizeof(err)),
                   LP_PLATFORM_BRAZE);
  d.action.kind = LP_ACTION_REWARD;
  assert_int_equal(lp_adapters_route(&c, &d, err, sizeof(err)),
                   LP_PLATFORM_NONE);
  assert_non_null(strstr(err, "reward"));
  c.marketing = LP_PLATFORM_NONE;
  d.action.kind = LP_ACTION_DISCOUNT_CODE;
  assert_int_equal(lp_adapters_route(&c, &d, err, sizeof(err)),
                   LP_PLATFORM_NONE);
  assert_string_equal(err,
                      "action.kind: discount_code needs platform.marketing, "
                      "which is none");
  enum lp_platform p;
  assert_int_equal(lp_platform_parse("klaviyo", &p), 0);
  assert_int_equal(p, LP_PLATFORM_KLAVIYO);
  assert_int_equal(lp_platform_parse("mailchimp", &p), -1);
}

static void test_loyaltylion_points(void **state) {
  (void)state;
  char err[256];
  struct lp_adapters_conf c = conf(LP_PLATFORM_LOYALTYLION, LP_PLATFORM_NONE);
  struct lp_reward_decision d = decision(LP_ACTION_POINTS, 500);
  d.customer_id = "cust/7 x";
  struct lp_http_request r;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_LOYALTYLION, &d, &r, err, sizeof(err)),
      0);
  assert_string_equal(r.method, "POST");
  assert_string_equal(r.url,
                      "http://127.0.0.1:9/v2/customers/cust%2F7%20x/points");
  assert_true(has_header(&r, "Authorization: Bearer ll-key"));
  assert_string_equal(r.body, "{\"points\":500,\"reason\":\"points per order "
                              "[0123456789abcdef0123456789abcdef]\"}");
  assert_null(strstr(r.summary, "ll-key"));
  lp_http_request_clear(&r);
  /* Refused before any call, with the field and why. */
  d.action.points = 0;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_LOYALTYLION, &d, &r, err, sizeof(err)),
      -1);
  assert_string_equal(err,
                      "action.points: 0 is not a positive number of points");
  d.action.points = -5;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_LOYALTYLION, &d, &r, err, sizeof(err)),
      -1);
  d.action.points = 1000001;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_LOYALTYLION, &d, &r, err, sizeof(err)),
      -1);
  assert_non_null(strstr(err, "above LoyaltyLion's maximum of 1000000"));
  d.action.points = 1000000; /* the maximum itself is fine */
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_LOYALTYLION, &d, &r, err, sizeof(err)),
      0);
  lp_http_request_clear(&r);
  /* Points cannot go to a marketing platform. */
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_KLAVIYO, &d, &r, err, sizeof(err)), -1);
}

static void test_smile_points(void **state) {
  (void)state;
  char err[256];
  struct lp_adapters_conf c = conf(LP_PLATFORM_SMILE, LP_PLATFORM_NONE);
  struct lp_reward_decision d = decision(LP_ACTION_POINTS, 100);
  struct lp_http_request r;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_SMILE, &d, &r, err, sizeof(err)), 0);
  assert_string_equal(r.url, "http://127.0.0.1:9/v1/points_transactions");
  json_t *b = json_loads(r.body, 0, NULL);
  json_t *t = json_object_get(b, "points_transaction");
  assert_int_equal(json_integer_value(json_object_get(t, "customer_id")), 4242);
  assert_int_equal(json_integer_value(json_object_get(t, "points_change")),
                   100);
  assert_string_equal(json_string_value(json_object_get(t, "internal_note")),
                      d.decision_id);
  json_decref(b);
  lp_http_request_clear(&r);
  d.customer_id = "abc";
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_SMILE, &d, &r, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "not a Smile.io customer id"));
}

static void test_klaviyo_event(void **state) {
  (void)state;
  char err[256];
  struct lp_adapters_conf c = conf(LP_PLATFORM_NONE, LP_PLATFORM_KLAVIYO);
  struct lp_reward_decision d = decision(LP_ACTION_DISCOUNT_CODE, 0);
  d.action.discount_percent = 15;
  d.action.brand = "Acme";
  d.action.template_id = "we-miss-you";
  struct lp_http_request r;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_KLAVIYO, &d, &r, err, sizeof(err)), 0);
  assert_string_equal(r.url, "http://127.0.0.1:9/api/events");
  assert_true(has_header(&r, "Authorization: Klaviyo-API-Key pk_x"));
  assert_true(has_header(&r, "revision: 2026-07-15"));
  json_t *b = json_loads(r.body, 0, NULL);
  json_t *a = json_object_get(json_object_get(b, "data"), "attributes");
  assert_string_equal(json_string_value(json_object_get(a, "unique_id")),
                      d.decision_id);
  assert_string_equal(json_string_value(json_object_get(a, "time")),
                      "2024-03-01T12:00:00Z");
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(json_object_get(a, "metric"), "data"),
                          "attributes"),
          "name")),
      "Loyalty Discount Offered");
  json_t *prof = json_object_get(
      json_object_get(json_object_get(a, "profile"), "data"), "attributes");
  assert_string_equal(json_string_value(json_object_get(prof, "external_id")),
                      "shop-1:4242");
  json_t *props = json_object_get(a, "properties");
  assert_int_equal(
      json_integer_value(json_object_get(props, "discount_percent")), 15);
  assert_string_equal(json_string_value(json_object_get(props, "brand")),
                      "Acme");
  json_decref(b);
  lp_http_request_clear(&r);
  /* A decision older than Klaviyo accepts (before 2000): no "time", the
   * decision's time as a property instead. */
  d.event_time_ms = 852120000000LL; /* 1997-01-01 */
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_KLAVIYO, &d, &r, err, sizeof(err)), 0);
  b = json_loads(r.body, 0, NULL);
  a = json_object_get(json_object_get(b, "data"), "attributes");
  assert_null(json_object_get(a, "time"));
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(a, "properties"), "decision_time")),
                      "1997-01-01T12:00:00Z");
  json_decref(b);
  lp_http_request_clear(&r);
  d.event_time_ms = 1709294400000LL;
  assert_int_equal(lp_adapters_resend_safe(LP_PLATFORM_KLAVIYO, &d), 1);
  assert_int_equal(lp_adapters_resend_safe(LP_PLATFORM_LOYALTYLION, &d), 0);
  assert_int_equal(lp_adapters_resend_safe(LP_PLATFORM_BRAZE, &d), -1);
  /* A tier change updates the profile. */
  d.action.kind = LP_ACTION_TIER_CHANGE;
  d.action.tier = "Gold";
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_KLAVIYO, &d, &r, err, sizeof(err)), 0);
  assert_string_equal(r.url, "http://127.0.0.1:9/api/profile-import");
  assert_non_null(strstr(r.body, "\"loyalty_tier\":\"Gold\""));
  lp_http_request_clear(&r);
  d.action.tier = NULL;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_KLAVIYO, &d, &r, err, sizeof(err)), -1);
  assert_string_equal(err, "action.tier: missing");
}

static void test_braze_event(void **state) {
  (void)state;
  char err[256];
  struct lp_adapters_conf c = conf(LP_PLATFORM_NONE, LP_PLATFORM_BRAZE);
  struct lp_reward_decision d = decision(LP_ACTION_MESSAGE, 0);
  d.action.template_id = "welcome";
  struct lp_http_request r;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_BRAZE, &d, &r, err, sizeof(err)), 0);
  assert_string_equal(r.url, "http://127.0.0.1:9/users/track");
  assert_true(has_header(&r, "Authorization: Bearer bz-key"));
  json_t *b = json_loads(r.body, 0, NULL);
  json_t *ev = json_array_get(json_object_get(b, "events"), 0);
  assert_string_equal(json_string_value(json_object_get(ev, "name")),
                      "loyalty_message");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(ev, "properties"), "decision_id")),
                      d.decision_id);
  json_decref(b);
  lp_http_request_clear(&r);
}

/* score_sync: the attributes become profile properties (numbers where
 * the text is a decimal, null to clear), on Klaviyo's profile-import and
 * Braze's attributes; a resend is harmless on both; a sync without
 * attributes, or with a '$' name, is refused before any call; the
 * loyalty platforms are not written. */
static void test_score_sync(void **state) {
  (void)state;
  char err[256];
  struct lp_feature attrs[] = {{"loyalty_p_alive", "0.287100"},
                               {"loyalty_clv_12m", "848.48"},
                               {"loyalty_segment", "at_risk_high_value"},
                               {"loyalty_next_best_reward", NULL},
                               {"loyalty_scored_at", "2024-03-01T12:00:00Z"}};
  struct lp_reward_decision d = decision(LP_ACTION_SCORE_SYNC, 0);
  d.action.attributes = attrs;
  d.action.n_attributes = LP_ARRAY_LEN(attrs);
  struct lp_adapters_conf c =
      conf(LP_PLATFORM_LOYALTYLION, LP_PLATFORM_KLAVIYO);
  assert_int_equal(lp_adapters_route(&c, &d, err, sizeof(err)),
                   LP_PLATFORM_KLAVIYO);
  struct lp_http_request r;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_KLAVIYO, &d, &r, err, sizeof(err)), 0);
  assert_string_equal(r.url, "http://127.0.0.1:9/api/profile-import");
  json_t *b = json_loads(r.body, 0, NULL);
  json_t *a = json_object_get(json_object_get(b, "data"), "attributes");
  assert_string_equal(json_string_value(json_object_get(a, "external_id")),
                      "shop-1:4242");
  json_t *props = json_object_get(a, "properties");
  assert_true(json_is_real(json_object_get(props, "loyalty_p_alive")));
  assert_true(json_real_value(json_object_get(props, "loyalty_p_alive")) ==
              0.2871);
  assert_true(json_real_value(json_object_get(props, "loyalty_clv_12m")) ==
              848.48);
  assert_string_equal(
      json_string_value(json_object_get(props, "loyalty_segment")),
      "at_risk_high_value");
  assert_true(json_is_string(json_object_get(props, "loyalty_scored_at")));
  assert_true(json_is_null(json_object_get(props, "loyalty_next_best_reward")));
  assert_int_equal(json_object_size(props), LP_ARRAY_LEN(attrs));
  json_decref(b);
  lp_http_request_clear(&r);
  assert_int_equal(lp_adapters_resend_safe(LP_PLATFORM_KLAVIYO, &d), 1);

  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_BRAZE, &d, &r, err, sizeof(err)), 0);
  assert_string_equal(r.url, "http://127.0.0.1:9/users/track");
  b = json_loads(r.body, 0, NULL);
  json_t *u = json_array_get(json_object_get(b, "attributes"), 0);
  assert_string_equal(json_string_value(json_object_get(u, "external_id")),
                      "shop-1:4242");
  assert_true(json_real_value(json_object_get(u, "loyalty_clv_12m")) == 848.48);
  assert_null(json_object_get(b, "events"));
  json_decref(b);
  lp_http_request_clear(&r);
  /* Braze neither dedupes nor reads back, but an attribute write twice is
   * the same write: a sync may be resent (an event may not). */
  assert_int_equal(lp_adapters_resend_safe(LP_PLATFORM_BRAZE, &d), 1);
  struct lp_reward_decision m = decision(LP_ACTION_MESSAGE, 0);
  assert_int_equal(lp_adapters_resend_safe(LP_PLATFORM_BRAZE, &m), -1);

  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_LOYALTYLION, &d, &r, err, sizeof(err)),
      -1);
  assert_non_null(strstr(err, "score_sync cannot be sent on loyaltylion"));
  attrs[1].name = "$clv";
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_KLAVIYO, &d, &r, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "action.attributes[1].name"));
  d.action.n_attributes = 0;
  assert_int_equal(
      lp_adapters_build(&c, LP_PLATFORM_KLAVIYO, &d, &r, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "without attributes"));
}

static void test_check(void **state) {
  (void)state;
  char err[256], ref[64];
  struct lp_adapters_conf c = conf(LP_PLATFORM_LOYALTYLION, LP_PLATFORM_NONE);
  struct lp_reward_decision d = decision(LP_ACTION_POINTS, 5);
  struct lp_http_request r;
  assert_int_equal(lp_adapters_check_request(&c, LP_PLATFORM_LOYALTYLION, &d,
                                             &r, err, sizeof(err)),
                   0);
  assert_string_equal(r.method, "GET");
  assert_string_equal(
      r.url, "http://127.0.0.1:9/v2/customers/4242/transactions?limit=500");
  lp_http_request_clear(&r);
  const char *ll =
      "{\"transactions\":[{\"id\":7,\"resource\":\"adjustment\","
      "\"adjustment\":{\"points\":5,\"reason\":\"x "
      "[0123456789abcdef0123456789abcdef]\"}},{\"id\":6,\"resource\":"
      "\"activity\",\"adjustment\":null}],\"cursor\":{\"prev\":null,"
      "\"next\":null}}";
  assert_int_equal(lp_adapters_check_result(LP_PLATFORM_LOYALTYLION, &d, 200,
                                            ll, strlen(ll), ref, sizeof(ref),
                                            err, sizeof(err)),
                   1);
  assert_string_equal(ref, "7");
  d.decision_id = "ffffffffffffffffffffffffffffffff";
  assert_int_equal(lp_adapters_check_result(LP_PLATFORM_LOYALTYLION, &d, 200,
                                            ll, strlen(ll), ref, sizeof(ref),
                                            err, sizeof(err)),
                   0);
  const char *sm = "{\"points_transactions\":[{\"id\":9,\"internal_note\":"
                   "\"ffffffffffffffffffffffffffffffff\"}],\"metadata\":{}}";
  assert_int_equal(lp_adapters_check_result(LP_PLATFORM_SMILE, &d, 200, sm,
                                            strlen(sm), ref, sizeof(ref), err,
                                            sizeof(err)),
                   1);
  assert_string_equal(ref, "9");
  assert_int_equal(lp_adapters_check_result(LP_PLATFORM_SMILE, &d, 500, "", 0,
                                            ref, sizeof(ref), err, sizeof(err)),
                   -1);
  assert_int_equal(lp_adapters_check_result(LP_PLATFORM_SMILE, &d, 200, "{", 1,
                                            ref, sizeof(ref), err, sizeof(err)),
                   -1);
  assert_int_equal(lp_adapters_check_request(&c, LP_PLATFORM_KLAVIYO, &d, &r,
                                             err, sizeof(err)),
                   -1);
}

static enum lp_response_class classify(enum lp_platform p, int status,
                                       const char *const *headers,
                                       const char *body, int64_t *wait,
                                       char *reason) {
  struct lp_rate_headers h;
  lp_rate_headers_init(&h);
  for (; headers && *headers; headers++)
    lp_rate_headers_parse_line(&h, *headers, strlen(*headers));
  char ref[64];
  return lp_adapters_classify(p, status, &h, 1700000000000LL, body,
                              strlen(body), wait, ref, sizeof(ref), reason,
                              200);
}

static void test_classify(void **state) {
  (void)state;
  int64_t wait;
  char reason[200];
  assert_int_equal(
      classify(LP_PLATFORM_LOYALTYLION, 201, NULL, "", &wait, reason),
      LP_RESP_OK);
  /* 429: Retry-After (Klaviyo), reset epoch (Braze), nothing (Smile). */
  const char *kl[] = {"Retry-After: 3\r\n", NULL};
  assert_int_equal(classify(LP_PLATFORM_KLAVIYO, 429, kl, "", &wait, reason),
                   LP_RESP_RATE_LIMITED);
  assert_int_equal(wait, 3000);
  const char *bz[] = {"x-ratelimit-reset: 1700000002\r\n",
                      "X-RateLimit-Remaining: 0\r\n", NULL};
  assert_int_equal(classify(LP_PLATFORM_BRAZE, 429, bz, "", &wait, reason),
                   LP_RESP_RATE_LIMITED);
  assert_int_equal(wait, 2000);
  assert_int_equal(classify(LP_PLATFORM_SMILE, 429, NULL, "", &wait, reason),
                   LP_RESP_RATE_LIMITED);
  assert_int_equal(wait, 1000);
  const char *junk[] = {"Retry-After: soon\r\n", NULL};
  assert_int_equal(classify(LP_PLATFORM_SMILE, 429, junk, "", &wait, reason),
                   LP_RESP_RATE_LIMITED);
  assert_int_equal(wait, 1000);
  assert_int_equal(classify(LP_PLATFORM_SMILE, 503, NULL, "", &wait, reason),
                   LP_RESP_TRANSIENT);
  /* Permanent, with the platform's own words. */
  assert_int_equal(classify(LP_PLATFORM_LOYALTYLION, 400, NULL,
                            "{\"error\":{\"message\":\"Invalid request\"}}",
                            &wait, reason),
                   LP_RESP_PERMANENT);
  assert_string_equal(reason, "loyaltylion answered HTTP 400: Invalid request");
  assert_int_equal(
      classify(LP_PLATFORM_KLAVIYO, 400, NULL,
               "{\"errors\":[{\"id\":\"1\",\"code\":\"invalid\",\"title\":"
               "\"Invalid input.\",\"detail\":\"metric name missing\"}]}",
               &wait, reason),
      LP_RESP_PERMANENT);
  assert_string_equal(reason, "klaviyo answered HTTP 400: metric name missing");
  /* Braze reports a fatal batch error in a 2xx body. */
  assert_int_equal(classify(LP_PLATFORM_BRAZE, 201, NULL,
                            "{\"message\":\"success\",\"events_processed\":1}",
                            &wait, reason),
                   LP_RESP_OK);
  assert_int_equal(classify(LP_PLATFORM_BRAZE, 201, NULL,
                            "{\"message\":\"success\",\"errors\":[{\"type\":"
                            "\"bad\"}]}",
                            &wait, reason),
                   LP_RESP_PERMANENT);
  assert_int_equal(classify(LP_PLATFORM_BRAZE, 401, NULL,
                            "{\"message\":\"Invalid API key\"}", &wait, reason),
                   LP_RESP_PERMANENT);
  assert_string_equal(reason, "braze answered HTTP 401: Invalid API key");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_route),
      cmocka_unit_test(test_loyaltylion_points),
      cmocka_unit_test(test_smile_points),
      cmocka_unit_test(test_klaviyo_event),
      cmocka_unit_test(test_braze_event),
      cmocka_unit_test(test_score_sync),
      cmocka_unit_test(test_check),
      cmocka_unit_test(test_classify),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
