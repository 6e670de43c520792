/*
 * test_rules.c — rule files (rules_parse.c), their evaluation and the
 * decisions they produce (rules_eval.c), decision ids (decision.c) and the
 * profile views rules read (profile.c). Runs from the repository root: the
 * shipped deploy/rules/seed.json is loaded and exercised as is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "decision.h"
#include "events.h"
#include "profile.h"
#include "rules.h"
#include "util.h"

#define T0 1768003200000LL /* 2026-01-10T00:00:00.000Z */
#define DAY 86400000LL
#define SEED "deploy/rules/seed.json"

/* ---- fixtures ----------------------------------------------------------- */

static int64_t money(const char *s) {
  int64_t v = 0;
  assert_int_equal(lp_money_parse(s, &v), 0);
  return v;
}

static void order_init(struct lp_order_event *o, const char *total) {
  memset(o, 0, sizeof(*o));
  o->event_id = lp_xstrdup("evt-1");
  o->shop = lp_xstrdup("demo.myshopify.com");
  o->order_id = lp_xstrdup("o-1");
  o->customer_id = lp_xstrdup("1073339531");
  o->event_time_ms = T0;
  o->status = LP_ORDER_CREATED;
  o->currency = lp_xstrdup("USD");
  o->total_micros = money(total);
  o->subtotal_micros = o->total_micros;
}

static void order_add_item(struct lp_order_event *o, const char *category,
                           const char *brand, int32_t qty, const char *price) {
  o->line_items = lp_xrealloc(o->line_items,
                              (o->n_line_items + 1) * sizeof(*o->line_items));
  struct lp_line_item *li = &o->line_items[o->n_line_items++];
  memset(li, 0, sizeof(*li));
  li->category = lp_xstrdup(category);
  li->brand = lp_xstrdup(brand);
  li->quantity = qty;
  li->unit_price_micros = money(price);
}

static void customer_init(struct lp_customer_event *c) {
  memset(c, 0, sizeof(*c));
  c->event_id = lp_xstrdup("cevt-1");
  c->shop = lp_xstrdup("demo.myshopify.com");
  c->customer_id = lp_xstrdup("1073339531");
  c->event_time_ms = T0;
  c->kind = LP_CUSTOMER_UPDATED;
  c->marketing_consent = LP_CONSENT_SUBSCRIBED;
}

static void add_string(char ***arr, size_t *n, const char *s) {
  *arr = lp_xrealloc(*arr, (*n + 1) * sizeof(char *));
  (*arr)[(*n)++] = lp_xstrdup(s);
}

static void add_affinity(struct lp_affinity **arr, size_t *n, const char *name,
                         const char *spend) {
  *arr = lp_xrealloc(*arr, (*n + 1) * sizeof(**arr));
  (*arr)[*n].name = lp_xstrdup(name);
  (*arr)[*n].spend_micros = money(spend);
  (*n)++;
}

/* A returning member: 4 orders, 612.40 spent, last order 52 days ago. */
static void profile_returning(struct lp_profile *p) {
  memset(p, 0, sizeof(*p));
  p->exists = 1;
  p->order_count = 4;
  p->orders_placed = 4;
  p->lifetime_spend_micros = money("612.40");
  p->first_order_ms = T0 - 200 * DAY + 1;
  p->last_order_ms = T0 - 52 * DAY;
  p->marketing_consent = LP_CONSENT_SUBSCRIBED;
  add_string(&p->tags, &p->n_tags, "vip");
  add_string(&p->tags, &p->n_tags, "newsletter");
  p->tier = lp_xstrdup("gold");
  add_affinity(&p->categories, &p->n_categories, "Hats", "212.40");
  add_affinity(&p->categories, &p->n_categories, "Shoes", "400.00");
  add_affinity(&p->brands, &p->n_brands, "Acme", "300.00");
  add_affinity(&p->brands, &p->n_brands, "Zeta", "312.40");
}

static struct lp_ruleset *load(const char *json) {
  char err[1024] = "";
  struct lp_ruleset *rs =
      lp_ruleset_load_string(json, "t.json", err, sizeof(err));
  if (!rs)
    fail_msg("load failed: %s", err);
  return rs;
}

static void expect_error(const char *json, const char *expected) {
  char err[1024] = "";
  struct lp_ruleset *rs =
      lp_ruleset_load_string(json, "t.json", err, sizeof(err));
  if (rs) {
    lp_ruleset_destroy(&rs);
    fail_msg("loaded, expected: %s", expected);
  }
  assert_string_equal(err, expected);
}

struct decisions {
  struct lp_reward_decision *d;
  size_t n;
};

static void decisions_free(struct decisions *ds) {
  for (size_t i = 0; i < ds->n; i++)
    lp_reward_decision_clear(&ds->d[i]);
  free(ds->d);
  memset(ds, 0, sizeof(*ds));
}

static void assert_same_str(const char *a, const char *b) {
  if (!a || !b)
    assert_ptr_equal(a, b);
  else
    assert_string_equal(a, b);
}

/* Every field of two decision arrays is equal. */
static void assert_decisions_equal(const struct lp_reward_decision *a,
                                   const struct lp_reward_decision *b,
                                   size_t n) {
  for (size_t i = 0; i < n; i++) {
    assert_same_str(a[i].decision_id, b[i].decision_id);
    assert_same_str(a[i].shop, b[i].shop);
    assert_same_str(a[i].customer_id, b[i].customer_id);
    assert_same_str(a[i].trigger_event_id, b[i].trigger_event_id);
    assert_same_str(a[i].trigger_kind, b[i].trigger_kind);
    assert_same_str(a[i].rule_id, b[i].rule_id);
    assert_int_equal(a[i].rule_version, b[i].rule_version);
    const struct lp_action *x = &a[i].action, *y = &b[i].action;
    assert_int_equal(x->kind, y->kind);
    assert_int_equal(x->points, y->points);
    assert_same_str(x->reward_id, y->reward_id);
    assert_int_equal(x->discount_percent, y->discount_percent);
    assert_int_equal(x->discount_amount_micros, y->discount_amount_micros);
    assert_same_str(x->tier, y->tier);
    assert_same_str(x->template_id, y->template_id);
    assert_same_str(x->channel, y->channel);
    assert_same_str(x->brand, y->brand);
    assert_same_str(x->category, y->category);
    assert_int_equal(a[i].estimated_cost_micros, b[i].estimated_cost_micros);
    assert_same_str(a[i].currency, b[i].currency);
    assert_int_equal(a[i].event_time_ms, b[i].event_time_ms);
    assert_int_equal(a[i].approval, b[i].approval);
    const struct lp_explanation *e = &a[i].explanation, *f = &b[i].explanation;
    assert_same_str(e->rule_id, f->rule_id);
    assert_same_str(e->summary, f->summary);
    assert_int_equal(e->n_features, f->n_features);
    for (size_t k = 0; k < e->n_features; k++) {
      assert_same_str(e->features[k].name, f->features[k].name);
      assert_same_str(e->features[k].value, f->features[k].value);
    }
  }
}

static struct decisions decide(const struct lp_ruleset *rs,
                               const struct lp_order_event *o,
                               const struct lp_profile *p) {
  struct decisions ds = {NULL, 0};
  lp_rules_decide_order(rs, o, p, NULL, &ds.d, &ds.n);
  /* Decisions made in an arena (as the processor does) equal the heap
   * ones; decided twice so the second round reuses the arena's blocks. */
  struct lp_arena arena;
  lp_arena_init(&arena);
  for (int round = 0; round < 2; round++) {
    lp_arena_reset(&arena);
    struct lp_reward_decision *ad = NULL;
    size_t an = 0;
    lp_rules_decide_order(rs, o, p, &arena, &ad, &an);
    assert_int_equal(an, ds.n);
    assert_decisions_equal(ad, ds.d, an);
  }
  lp_arena_free(&arena);
  return ds;
}

static const char *feature(const struct lp_reward_decision *d,
                           const char *name) {
  for (size_t i = 0; i < d->explanation.n_features; i++)
    if (strcmp(d->explanation.features[i].name, name) == 0)
      return d->explanation.features[i].value ? d->explanation.features[i].value
                                              : "(null)";
  fail_msg("no feature %s", name);
  return NULL;
}

/* Whether a one-rule file with condition cond fires for the event. The
 * file defines segment "vip" (tag vip). */
static int fires(const char *on, const char *cond,
                 const struct lp_order_event *o,
                 const struct lp_customer_event *c,
                 const struct lp_profile *p) {
  char *json = lp_xasprintf(
      "{\"segments\":[{\"id\":\"vip\",\"when\":{\"field\":\"profile.tags\","
      "\"op\":\"contains\",\"value\":\"vip\"}}],"
      "\"rules\":[{\"id\":\"t\",\"version\":1,\"on\":\"%s\",\"when\":%s,"
      "\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      on, cond);
  struct lp_ruleset *rs = load(json);
  free(json);
  struct decisions ds = {NULL, 0};
  if (o)
    lp_rules_decide_order(rs, o, p, NULL, &ds.d, &ds.n);
  else
    lp_rules_decide_customer(rs, c, p, NULL, &ds.d, &ds.n);
  size_t n = ds.n;
  decisions_free(&ds);
  lp_ruleset_destroy(&rs);
  assert_true(n <= 1);
  return (int)n;
}

/* ---- decision ids ------------------------------------------------------- */

/* Vectors computed outside this code: in a shell, each field as a 4-byte
 * big-endian length then its bytes, piped to sha256sum, first 32 digits
 * (the recipe is in docs/rules.md). */
static void test_decision_id_vectors(void **state) {
  (void)state;
  char id[LP_DECISION_ID_LEN + 1];
  lp_decision_id("welcome", 1, "demo.myshopify.com", "1073339531", "evt-1", id);
  assert_string_equal(id, "e810ac40c519eaccda5d3b6473134aad");
  lp_decision_id("we-miss-you", 12, "shop-a", "c-7", "shopify:orders/create:42",
                 id);
  assert_string_equal(id, "0d6690cfae59fe2c8e9ad99277425647");
  /* Length prefixes keep "a"+"bc" apart from "ab"+"c". */
  lp_decision_id("a", 1, "bc", "d", "e", id);
  assert_string_equal(id, "961a2de601a1858d8519c8ec7afe9c83");
  lp_decision_id("ab", 1, "c", "d", "e", id);
  assert_string_equal(id, "1ce98120370d43db83c848409d4e1f37");
  /* A new rule version is a new decision. */
  lp_decision_id("welcome", 2, "demo.myshopify.com", "1073339531", "evt-1", id);
  assert_string_equal(id, "accffc42319a99dafbb4fec500e25a82");
}

/* ---- profile views ------------------------------------------------------ */

static void test_profile_views(void **state) {
  (void)state;
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  assert_int_equal(lp_profile_aov_micros(&p), 0);
  assert_null(lp_profile_favourite_brand(&p));
  assert_null(lp_profile_favourite_category(&p));
  assert_int_equal(lp_profile_days_since_last_order(&p, T0), -1);
  assert_false(lp_profile_has_tag(&p, "vip"));

  p.order_count = 3;

  p.orders_placed = 3;
  p.lifetime_spend_micros = money("100.00");
  assert_int_equal(lp_profile_aov_micros(&p), 33333333);
  /* Ties go to the name that sorts first, whatever the array order. */
  add_affinity(&p.brands, &p.n_brands, "Zeta", "50.00");
  add_affinity(&p.brands, &p.n_brands, "Acme", "50.00");
  add_affinity(&p.brands, &p.n_brands, "Mid", "10.00");
  assert_string_equal(lp_profile_favourite_brand(&p), "Acme");
  add_affinity(&p.categories, &p.n_categories, "Hats", "1.00");
  add_affinity(&p.categories, &p.n_categories, "Shoes", "2.00");
  add_affinity(&p.categories, &p.n_categories, "Refunded", "0.00");
  assert_string_equal(lp_profile_favourite_category(&p), "Shoes");
  /* Floor on event time: 45 days minus 1 ms is day 44; before the last
   * order (out-of-order events) is negative. */
  p.last_order_ms = T0;
  assert_int_equal(lp_profile_days_since_last_order(&p, T0), 0);
  assert_int_equal(lp_profile_days_since_last_order(&p, T0 + 45 * DAY - 1), 44);
  assert_int_equal(lp_profile_days_since_last_order(&p, T0 + 45 * DAY), 45);
  assert_int_equal(lp_profile_days_since_last_order(&p, T0 - 1), -1);
  assert_int_equal(lp_profile_days_since_last_order(&p, T0 - DAY), -1);
  assert_int_equal(lp_profile_days_since_last_order(&p, T0 - DAY - 1), -2);
  add_string(&p.tags, &p.n_tags, "vip");
  assert_true(lp_profile_has_tag(&p, "vip"));
  assert_false(lp_profile_has_tag(&p, "VIP"));
  assert_false(lp_profile_has_tag(&p, NULL));
  lp_profile_clear(&p);
  assert_null(p.tags);
  assert_int_equal(p.n_brands, 0);
  lp_profile_clear(&p); /* idempotent */
}

/* ---- the seed rules ----------------------------------------------------- */

static void test_seed_loads(void **state) {
  (void)state;
  char err[1024] = "";
  struct lp_ruleset *rs = lp_ruleset_load(SEED, err, sizeof(err));
  if (!rs)
    fail_msg("%s", err);
  assert_int_equal(lp_ruleset_count(rs), 7);
  assert_int_equal(strlen(lp_ruleset_digest(rs)), 16);
  /* The directory (what processors load): the seed, the 3 rules by
   * predicted value (value.json) and the 4 timer rules (timers.json). */
  struct lp_ruleset *dir = lp_ruleset_load("deploy/rules", err, sizeof(err));
  if (!dir)
    fail_msg("%s", err);
  assert_int_equal(lp_ruleset_count(dir), lp_ruleset_count(rs) + 3 + 4);
  const struct lp_timer_rule *tr;
  assert_int_equal(lp_ruleset_timer_rules(dir, &tr), 4);
  lp_ruleset_destroy(&dir);
  lp_ruleset_destroy(&rs);
  assert_null(rs);
  lp_ruleset_destroy(&rs); /* NULL is fine */
}

static struct lp_ruleset *seed(void) {
  char err[1024] = "";
  struct lp_ruleset *rs = lp_ruleset_load(SEED, err, sizeof(err));
  if (!rs)
    fail_msg("%s", err);
  return rs;
}

static void test_seed_first_order(void **state) {
  (void)state;
  struct lp_ruleset *rs = seed();
  struct lp_order_event o;
  order_init(&o, "120.50");
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  struct decisions ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 2);
  struct lp_reward_decision *w = &ds.d[0], *pts = &ds.d[1];
  assert_string_equal(w->rule_id, "welcome");
  assert_string_equal(w->decision_id, "e810ac40c519eaccda5d3b6473134aad");
  assert_string_equal(w->shop, "demo.myshopify.com");
  assert_string_equal(w->customer_id, "1073339531");
  assert_string_equal(w->trigger_event_id, "evt-1");
  assert_string_equal(w->trigger_kind, "order");
  assert_int_equal(w->rule_version, 1);
  assert_int_equal(w->action.kind, LP_ACTION_POINTS);
  assert_int_equal(w->action.points, 500);
  assert_string_equal(w->action.template_id, "welcome");
  assert_int_equal(w->estimated_cost_micros, money("5.00"));
  assert_string_equal(w->currency, "USD");
  assert_int_equal(w->event_time_ms, T0);
  assert_int_equal(w->approval, LP_APPROVAL_NONE);
  /* Explanation: every field the condition read, in condition order. */
  const struct lp_explanation *e = &w->explanation;
  assert_string_equal(e->rule_id, "welcome");
  assert_int_equal(e->rule_version, 1);
  assert_null(e->model_version);
  assert_int_equal(e->n_features, 3);
  assert_string_equal(e->features[0].name, "event.status");
  assert_string_equal(e->features[0].value, "created");
  assert_string_equal(e->features[1].name, "event.is_new_order");
  assert_string_equal(e->features[1].value, "true");
  assert_string_equal(e->features[2].name, "profile.is_first_order");
  assert_string_equal(e->features[2].value, "true");
  assert_string_equal(e->summary,
                      "Welcome bonus on a member's first order: "
                      "event.status=created in [\"created\", \"paid\"]; "
                      "event.is_new_order=true == true; "
                      "profile.is_first_order=true == true");

  assert_string_equal(pts->rule_id, "points-per-order");
  assert_int_equal(pts->action.points, 120); /* floor(120.50 x 1) */
  assert_int_equal(pts->estimated_cost_micros, money("1.20"));
  assert_int_equal(pts->explanation.n_features, 3);
  assert_string_equal(pts->explanation.features[2].name, "event.total");
  assert_string_equal(pts->explanation.features[2].value, "120.50");
  decisions_free(&ds);

  /* orders/paid after orders/create: the order was counted already. */
  p.order_previously_applied = 1;
  p.order_count = 1;
  p.orders_placed = 1;
  o.status = LP_ORDER_PAID;
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 0);
  /* A cancellation decides nothing. */
  p.order_previously_applied = 0;
  o.status = LP_ORDER_CANCELLED;
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 0);
  /* The next order after a cancelled first one is the second order
   * placed: points, but no second welcome bonus. */
  p.order_count = 0;
  p.orders_placed = 1;
  o.status = LP_ORDER_CREATED;
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 1);
  assert_string_equal(ds.d[0].rule_id, "points-per-order");
  decisions_free(&ds);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
}

static void test_seed_segments(void **state) {
  (void)state;
  struct lp_ruleset *rs = seed();
  struct lp_order_event o;
  order_init(&o, "120.50");
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  p.exists = 1; /* signed up, never ordered */
  add_string(&p.tags, &p.n_tags, "vip");
  p.marketing_consent = LP_CONSENT_SUBSCRIBED; /* vip comes first */
  struct decisions ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 2);
  assert_string_equal(ds.d[0].rule_id, "welcome-vip");
  assert_int_equal(ds.d[0].action.points, 1000);
  assert_string_equal(feature(&ds.d[0], "profile.segment"), "vip");
  assert_string_equal(ds.d[1].rule_id, "points-per-order-vip");
  assert_int_equal(ds.d[1].action.points, 241); /* 120.50 x 1 x 2 */
  decisions_free(&ds);

  lp_profile_clear(&p);
  p.exists = 1;
  p.marketing_consent = LP_CONSENT_SUBSCRIBED;
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 2);
  assert_string_equal(ds.d[0].rule_id, "welcome-subscriber");
  assert_int_equal(ds.d[0].action.points, 750);
  assert_string_equal(feature(&ds.d[0], "profile.segment"), "subscriber");
  assert_string_equal(ds.d[1].rule_id, "points-per-order");
  decisions_free(&ds);
  lp_profile_clear(&p);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
}

static void test_seed_milestone(void **state) {
  (void)state;
  struct lp_ruleset *rs = seed();
  struct lp_order_event o;
  order_init(&o, "20.00");
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  p.exists = 1;
  p.order_count = 4;
  p.orders_placed = 4;
  p.lifetime_spend_micros = money("80.00");
  p.first_order_ms = p.last_order_ms = T0 - DAY;
  struct decisions ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 2);
  assert_string_equal(ds.d[0].rule_id, "milestone-order");
  assert_int_equal(ds.d[0].action.points, 250);
  assert_string_equal(feature(&ds.d[0], "profile.nth_order"), "5");
  assert_string_equal(ds.d[1].rule_id, "points-per-order");
  decisions_free(&ds);
  p.order_count = 5; /* 6th order: no milestone */
  p.orders_placed = 5;
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 1);
  assert_string_equal(ds.d[0].rule_id, "points-per-order");
  decisions_free(&ds);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
}

/* We miss you: 45 days in *event time* fires, 44 days 23:59:59.999 not. */
static void test_seed_we_miss_you(void **state) {
  (void)state;
  struct lp_ruleset *rs = seed();
  struct lp_order_event o;
  order_init(&o, "400.00");
  order_add_item(&o, "Shoes", "Zeta", 1, "400.00");
  struct lp_profile p;
  profile_returning(&p);
  p.tags[0][0] = 'x'; /* not vip: keep to the plain rules */
  p.order_count = 6;  /* 7th order: no milestone */
  p.orders_placed = 6;
  p.last_order_ms = T0 - 45 * DAY + 1;
  struct decisions ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 1);
  assert_string_equal(ds.d[0].rule_id, "points-per-order");
  decisions_free(&ds);

  p.last_order_ms = T0 - 45 * DAY;
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 2);
  struct lp_reward_decision *d = &ds.d[0];
  assert_string_equal(d->rule_id, "we-miss-you");
  assert_int_equal(d->action.kind, LP_ACTION_DISCOUNT_CODE);
  assert_int_equal(d->action.discount_percent, 15);
  assert_string_equal(d->action.brand, "Zeta");
  assert_null(d->action.category);
  assert_string_equal(d->action.template_id, "we-miss-you");
  assert_string_equal(d->action.channel, "email");
  /* 15% of 400.00 = 60.00 > 50.00 threshold: approval recommended. */
  assert_int_equal(d->estimated_cost_micros, money("60.00"));
  assert_int_equal(d->approval, LP_APPROVAL_RECOMMENDED);
  const struct lp_explanation *e = &d->explanation;
  assert_int_equal(e->n_features, 5);
  const char *names[] = {
      "event.status", "event.is_new_order", "profile.lifetime_spend",
      "profile.days_since_last_order", "profile.favourite_brand"};
  const char *values[] = {"created", "true", "612.40", "45", "Zeta"};
  for (size_t i = 0; i < 5; i++) {
    assert_string_equal(e->features[i].name, names[i]);
    assert_string_equal(e->features[i].value, values[i]);
  }
  assert_non_null(strstr(e->summary, "profile.days_since_last_order=45 >= 45"));
  assert_non_null(
      strstr(e->summary, "profile.lifetime_spend=612.40 >= 500.00"));
  assert_string_equal(ds.d[1].rule_id, "points-per-order");
  decisions_free(&ds);

  /* Below the spend threshold: no. */
  p.lifetime_spend_micros = money("499.99");
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 1);
  decisions_free(&ds);
  /* No favourite brand to scope the code to: the rule does not fire. */
  p.lifetime_spend_micros = money("612.40");
  for (size_t i = 0; i < p.n_brands; i++)
    free(p.brands[i].name);
  free(p.brands);
  p.brands = NULL;
  p.n_brands = 0;
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 1);
  assert_string_equal(ds.d[0].rule_id, "points-per-order");
  decisions_free(&ds);
  lp_profile_clear(&p);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
}

/* ---- load errors: file, position, reason --------------------------------
 */

#define R(body) "{\"rules\":[" body "]}"
#define RULE(when, action)                                                     \
  "{\"id\":\"r\",\"version\":1,\"on\":\"order\",\"when\":" when                \
  ",\"action\":" action "}"
#define PTS "{\"kind\":\"points\",\"points\":1}"

static void test_errors_syntax(void **state) {
  (void)state;
  expect_error("{\"rules\":[\n  {\"id\":\"a\" \"version\":1}]}",
               "t.json: line 2 column 21: '}' expected near '\"version\"'");
  expect_error("{\"rules\":[],\n \"rules\":[]}",
               "t.json: line 2 column 8: duplicate object key near "
               "'\"rules\"'");
  expect_error("", "t.json: line 1 column 0: '[' or '{' expected near end "
                   "of file");
  expect_error("[]", "t.json: $: expected an object with \"rules\", got an "
                     "array");
  expect_error("{\"rule\":[]}",
               "t.json: $.rule: unknown key \"rule\" (expected one of "
               "description, rules, segments, settings)");
}

static void test_errors_rule(void **state) {
  (void)state;
  expect_error(R("{\"version\":1,\"on\":\"order\",\"when\":{\"all\":[]},"
                 "\"action\":" PTS "}"),
               "t.json: $.rules[0]: missing required key \"id\"");
  expect_error(R("{\"id\":\"a b\",\"version\":1}"),
               "t.json: $.rules[0].id: invalid identifier \"a b\" (1 to 128 "
               "characters of A-Z a-z 0-9 . _ : -)");
  expect_error(R("{\"id\":\"a\",\"version\":0}"),
               "t.json: $.rules[0].version: 0 is out of range (1 to "
               "2147483647)");
  expect_error(R("{\"id\":\"a\",\"version\":\"1\"}"),
               "t.json: $.rules[0].version: expected an integer, got a "
               "string");
  expect_error(R("{\"id\":\"a\",\"version\":1,\"on\":\"refund\"}"),
               "t.json: $.rules[0].on: unknown event kind \"refund\" "
               "(expected order, customer or timer)");
  expect_error(R("{\"id\":\"a\",\"version\":1,\"prio\":1}"),
               "t.json: $.rules[0].prio: unknown key \"prio\" (expected one "
               "of id, version, description, on, priority, exclusive, group, "
               "when, action, approval, enabled, timer)");
  expect_error(R("{\"id\":\"a\",\"version\":1,\"on\":\"order\","
                 "\"action\":" PTS "}"),
               "t.json: $.rules[0]: missing required key \"when\" (use "
               "{\"all\":[]} for always)");
  expect_error(R("{\"id\":\"a\",\"version\":1,\"on\":\"order\","
                 "\"approval\":\"maybe\"}"),
               "t.json: $.rules[0].approval: unknown approval \"maybe\" "
               "(expected one of none, recommended, required)");
  expect_error(R(RULE("{\"all\":[]}", PTS) "," RULE("{\"all\":[]}", PTS)),
               "t.json: $.rules[1].id: duplicate rule id \"r\" (first "
               "defined at t.json $.rules[0])");
}

static void test_errors_condition(void **state) {
  (void)state;
  expect_error(
      R(RULE("{\"all\":[{\"field\":\"event.total\",\"op\":\">\",\"value\":1},"
             "{\"field\":\"event.status\",\"op\":\"=~\",\"value\":\"x\"}]}",
             PTS)),
      "t.json: $.rules[0].when.all[1].op: unknown operator \"=~\" (expected "
      "one of ==, !=, <, <=, >, >=, between, in, not_in, contains, exists)");
  expect_error(R(RULE("{\"any\":[{\"not\":{\"field\":\"profile.spend\","
                      "\"op\":\">\",\"value\":1}}]}",
                      PTS)),
               "t.json: $.rules[0].when.any[0].not.field: unknown field "
               "\"profile.spend\" (see docs/rules.md, Fields)");
  expect_error(R(RULE("{\"field\":\"profile.order_count\",\"op\":\">=\","
                      "\"value\":\"3\"}",
                      PTS)),
               "t.json: $.rules[0].when.value: expected an integer for "
               "profile.order_count, got a string");
  expect_error(R(RULE("{\"field\":\"profile.lifetime_spend\",\"op\":\">=\","
                      "\"value\":\"12.3.4\"}",
                      PTS)),
               "t.json: $.rules[0].when.value: invalid amount \"12.3.4\" (a "
               "decimal string with at most 6 decimals, e.g. \"10.50\")");
  expect_error(R(RULE("{\"field\":\"profile.lifetime_spend\",\"op\":\">=\","
                      "\"value\":0.1234567}",
                      PTS)),
               "t.json: $.rules[0].when.value: amount 0.1234567 is not "
               "exact; write it as a decimal string");
  expect_error(R(RULE("{\"field\":\"event.total\",\"op\":\"between\","
                      "\"value\":[10]}",
                      PTS)),
               "t.json: $.rules[0].when.value: between needs [low, high], got "
               "an array");
  expect_error(R(RULE("{\"field\":\"event.total\",\"op\":\"between\","
                      "\"value\":[\"10\",\"x\"]}",
                      PTS)),
               "t.json: $.rules[0].when.value[1]: invalid amount \"x\" (a "
               "decimal string with at most 6 decimals, e.g. \"10.50\")");
  expect_error(R(RULE("{\"field\":\"event.total\",\"op\":\"between\","
                      "\"value\":[20,10]}",
                      PTS)),
               "t.json: $.rules[0].when.value: between: low is above high");
  expect_error(R(RULE("{\"field\":\"profile.nth_order\",\"op\":\"in\","
                      "\"value\":[]}",
                      PTS)),
               "t.json: $.rules[0].when.value: in needs a non-empty array, got "
               "an array");
  expect_error(R(RULE("{\"field\":\"event.status\",\"op\":\"==\","
                      "\"value\":\"payed\"}",
                      PTS)),
               "t.json: $.rules[0].when.value: unknown value \"payed\" for "
               "event.status (expected one of created, paid, cancelled, "
               "refunded)");
  expect_error(R(RULE("{\"field\":\"profile.tier\",\"op\":\"<\","
                      "\"value\":\"gold\"}",
                      PTS)),
               "t.json: $.rules[0].when.op: operator \"<\" does not apply to "
               "string field \"profile.tier\"");
  expect_error(R(RULE("{\"field\":\"profile.tags\",\"op\":\"==\","
                      "\"value\":\"vip\"}",
                      PTS)),
               "t.json: $.rules[0].when.op: operator \"==\" does not apply to "
               "set field \"profile.tags\"");
  expect_error(R(RULE("{\"field\":\"event.time\",\"op\":\">=\","
                      "\"value\":\"2026-13-01\"}",
                      PTS)),
               "t.json: $.rules[0].when.value: expected an ISO 8601 time for "
               "event.time (e.g. \"2026-11-27T00:00:00Z\")");
  expect_error(R(RULE("{\"field\":\"profile.segment\",\"op\":\"==\","
                      "\"value\":\"gold\"}",
                      PTS)),
               "t.json: $.rules[0].when.value: unknown segment \"gold\" (not "
               "defined in any segments list)");
  expect_error(R(RULE("{\"all\":[],\"any\":[]}", PTS)),
               "t.json: $.rules[0].when: a combinator object (all, any, not) "
               "takes no other keys");
  expect_error(R(RULE("{\"op\":\"==\"}", PTS)),
               "t.json: $.rules[0].when: expected a condition: "
               "{\"all\":[...]}, {\"any\":[...]}, {\"not\":{...}} or "
               "{\"field\",\"op\",\"value\"}");
  expect_error(R(RULE("{\"field\":\"event.total\",\"op\":\">\","
                      "\"value\":1,\"unit\":\"USD\"}",
                      PTS)),
               "t.json: $.rules[0].when.unit: unknown key \"unit\" (expected "
               "one of field, op, value)");
  /* Fields of the other event kind, and of segments. */
  expect_error(R("{\"id\":\"c\",\"version\":1,\"on\":\"customer\","
                 "\"when\":{\"field\":\"event.total\",\"op\":\">\","
                 "\"value\":1},\"action\":" PTS "}"),
               "t.json: $.rules[0].when.field: field \"event.total\" is not "
               "available on customer rules");
  expect_error("{\"segments\":[{\"id\":\"big\",\"when\":{\"field\":"
               "\"profile.nth_order\",\"op\":\">\",\"value\":1}}]}",
               "t.json: $.segments[0].when.field: field \"profile.nth_order\" "
               "cannot be used in a segment (only member profile fields)");
  expect_error("{\"segments\":[{\"id\":\"default\",\"when\":{\"all\":[]}}]}",
               "t.json: $.segments[0].id: \"default\" is reserved for members "
               "no segment matches");
  expect_error("{\"segments\":[{\"id\":\"a\",\"when\":{\"all\":[]}},"
               "{\"id\":\"a\",\"when\":{\"all\":[]}}]}",
               "t.json: $.segments[1].id: duplicate segment id \"a\" (first "
               "defined at t.json $.segments[0])");
}

static void test_errors_action(void **state) {
  (void)state;
  expect_error(R(RULE("{\"all\":[]}", "{\"kind\":\"cashback\"}")),
               "t.json: $.rules[0].action.kind: unknown action kind "
               "\"cashback\" (expected one of points, reward, discount_code, "
               "tier_change, message, score_sync)");
  expect_error(R(RULE("{\"all\":[]}", "{\"points\":5}")),
               "t.json: $.rules[0].action: missing required key \"kind\"");
  expect_error(R(RULE("{\"all\":[]}", "{\"kind\":\"points\",\"points\":5,"
                                      "\"per_currency_unit\":1}")),
               "t.json: $.rules[0].action: a points action needs exactly one "
               "of \"points\" and \"per_currency_unit\"");
  expect_error(
      R(RULE("{\"all\":[]}", "{\"kind\":\"points\",\"per_currency_unit\":0}")),
      "t.json: $.rules[0].action.per_currency_unit: must be above 0 "
      "and at most 1000");
  expect_error(
      R(RULE("{\"all\":[]}",
             "{\"kind\":\"points\",\"points\":1,\"reward_id\":\"x\"}")),
      "t.json: $.rules[0].action.reward_id: unknown key \"reward_id\" "
      "(expected one of kind, points, per_currency_unit, multiplier, "
      "template_id, channel, brand, category)");
  expect_error(
      R(RULE("{\"all\":[]}", "{\"kind\":\"discount_code\",\"percent\":101}")),
      "t.json: $.rules[0].action.percent: 101 is out of range (1 to "
      "100)");
  expect_error(
      R(RULE("{\"all\":[]}", "{\"kind\":\"discount_code\",\"percent\":10,"
                             "\"brand\":\"$favorite_brand\"}")),
      "t.json: $.rules[0].action.brand: unknown placeholder "
      "\"$favorite_brand\" (expected $favourite_brand or "
      "$favourite_category)");
  expect_error(R(RULE("{\"all\":[]}", "{\"kind\":\"message\"}")),
               "t.json: $.rules[0].action: missing required key "
               "\"template_id\"");
  expect_error(R(RULE("{\"all\":[]}", "{\"kind\":\"message\","
                                      "\"template_id\":\"t\","
                                      "\"channel\":\"fax\"}")),
               "t.json: $.rules[0].action.channel: unknown channel \"fax\" "
               "(expected one of email, sms, push)");
  expect_error(R(RULE("{\"all\":[]}", "{\"kind\":\"tier_change\"}")),
               "t.json: $.rules[0].action: missing required key \"tier\"");
  expect_error(R("{\"id\":\"c\",\"version\":1,\"on\":\"customer\","
                 "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\","
                 "\"per_currency_unit\":1}}"),
               "t.json: $.rules[0].action.per_currency_unit: points per "
               "currency unit need an order (rule is on customer events)");
  expect_error("{\"settings\":{\"point_cost\":\"-1\"}}",
               "t.json: $.settings.point_cost: amount -1.00 is below the "
               "minimum 0.00");
}

/* Files of a directory merge; ids must stay unique across them. */
static void test_errors_directory(void **state) {
  (void)state;
  char dir[] = "/tmp/test_rules.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char err[1024];
  struct lp_ruleset *rs = lp_ruleset_load(dir, err, sizeof(err));
  assert_null(rs);
  char *want = lp_xasprintf("%s: no *.json rule files", dir);
  assert_string_equal(err, want);
  free(want);

  char *a = lp_xasprintf("%s/a.json", dir), *b = lp_xasprintf("%s/b.json", dir);
  FILE *f = fopen(a, "w");
  fputs("{\"settings\":{\"point_cost\":\"0.02\"},"
        "\"segments\":[{\"id\":\"vip\",\"when\":{\"field\":\"profile.tags\","
        "\"op\":\"contains\",\"value\":\"vip\"}}],\"rules\":[" RULE(
            "{\"all\":[]}", PTS) "]}",
        f);
  fclose(f);
  f = fopen(b, "w");
  fputs("{\"rules\":[{\"id\":\"b\",\"version\":1,\"on\":\"order\",\"when\":"
        "{\"field\":\"profile.segment\",\"op\":\"==\",\"value\":\"vip\"},"
        "\"action\":" PTS "}]}",
        f);
  fclose(f);
  rs = lp_ruleset_load(dir, err, sizeof(err));
  if (!rs)
    fail_msg("%s", err);
  assert_int_equal(lp_ruleset_count(rs), 2);
  lp_ruleset_destroy(&rs);

  f = fopen(b, "w");
  fputs("{\"settings\":{\"point_cost\":\"0.02\"},\"rules\":[]}", f);
  fclose(f);
  rs = lp_ruleset_load(dir, err, sizeof(err));
  assert_null(rs);
  want = lp_xasprintf("%s: $.settings.point_cost: already set in %s (set "
                      "each setting in one file)",
                      b, a);
  assert_string_equal(err, want);
  free(want);

  f = fopen(b, "w");
  fputs(R(RULE("{\"all\":[]}", PTS)), f);
  fclose(f);
  rs = lp_ruleset_load(dir, err, sizeof(err));
  assert_null(rs);
  want = lp_xasprintf("%s: $.rules[0].id: duplicate rule id \"r\" (first "
                      "defined at %s $.rules[0])",
                      b, a);
  assert_string_equal(err, want);
  free(want);

  unlink(a);
  unlink(b);
  rmdir(dir);
  free(a);
  free(b);
  rs = lp_ruleset_load("/nonexistent/rules", err, sizeof(err));
  assert_null(rs);
  assert_string_equal(err, "/nonexistent/rules: No such file or directory");
}

/* ---- operators and fields ----------------------------------------------- */

static void test_operators(void **state) {
  (void)state;
  struct lp_order_event o;
  order_init(&o, "120.50");
  order_add_item(&o, "Shoes", "Acme", 2, "30.00");
  order_add_item(&o, "Hats", NULL, 1, "60.50");
  struct lp_profile p;
  profile_returning(&p);
  /* Integers (profile.order_count = 4). */
  static const struct {
    const char *cond;
    int want;
  } cases[] = {
      {"{\"field\":\"profile.order_count\",\"op\":\"==\",\"value\":4}", 1},
      {"{\"field\":\"profile.order_count\",\"op\":\"==\",\"value\":5}", 0},
      {"{\"field\":\"profile.order_count\",\"op\":\"!=\",\"value\":5}", 1},
      {"{\"field\":\"profile.order_count\",\"op\":\"!=\",\"value\":4}", 0},
      {"{\"field\":\"profile.order_count\",\"op\":\"<\",\"value\":5}", 1},
      {"{\"field\":\"profile.order_count\",\"op\":\"<\",\"value\":4}", 0},
      {"{\"field\":\"profile.order_count\",\"op\":\"<=\",\"value\":4}", 1},
      {"{\"field\":\"profile.order_count\",\"op\":\"<=\",\"value\":3}", 0},
      {"{\"field\":\"profile.order_count\",\"op\":\">\",\"value\":3}", 1},
      {"{\"field\":\"profile.order_count\",\"op\":\">\",\"value\":4}", 0},
      {"{\"field\":\"profile.order_count\",\"op\":\">=\",\"value\":4}", 1},
      {"{\"field\":\"profile.order_count\",\"op\":\">=\",\"value\":5}", 0},
      {"{\"field\":\"profile.order_count\",\"op\":\"between\","
       "\"value\":[4,4]}",
       1},
      {"{\"field\":\"profile.order_count\",\"op\":\"between\","
       "\"value\":[1,3]}",
       0},
      {"{\"field\":\"profile.order_count\",\"op\":\"in\",\"value\":[9,4,1]}",
       1},
      {"{\"field\":\"profile.order_count\",\"op\":\"in\",\"value\":[9,1]}", 0},
      {"{\"field\":\"profile.order_count\",\"op\":\"not_in\","
       "\"value\":[9,1]}",
       1},
      {"{\"field\":\"profile.order_count\",\"op\":\"not_in\","
       "\"value\":[4]}",
       0},
      {"{\"field\":\"profile.order_count\",\"op\":\"exists\"}", 1},
      /* Money: strings, integers and exact numbers (event.total 120.50). */
      {"{\"field\":\"event.total\",\"op\":\"==\",\"value\":\"120.5\"}", 1},
      {"{\"field\":\"event.total\",\"op\":\"==\",\"value\":120.5}", 1},
      {"{\"field\":\"event.total\",\"op\":\">\",\"value\":120}", 1},
      {"{\"field\":\"event.total\",\"op\":\">\",\"value\":\"120.500001\"}", 0},
      {"{\"field\":\"event.total\",\"op\":\"between\","
       "\"value\":[\"100\",\"120.50\"]}",
       1},
      {"{\"field\":\"event.total\",\"op\":\"in\",\"value\":[\"120.50\","
       "\"10\"]}",
       1},
      /* Time. */
      {"{\"field\":\"event.time\",\"op\":\">=\","
       "\"value\":\"2026-01-10T00:00:00Z\"}",
       1},
      {"{\"field\":\"event.time\",\"op\":\"between\","
       "\"value\":[\"2026-01-09T19:00:00-05:00\",\"2026-01-10T23:59:59Z\"]}",
       1},
      {"{\"field\":\"event.time\",\"op\":\"<\","
       "\"value\":\"2026-01-10T00:00:00.000Z\"}",
       0},
      /* Booleans. */
      {"{\"field\":\"event.is_new_order\",\"op\":\"==\",\"value\":true}", 1},
      {"{\"field\":\"event.is_new_order\",\"op\":\"!=\",\"value\":true}", 0},
      {"{\"field\":\"profile.is_first_order\",\"op\":\"==\",\"value\":false}",
       1},
      /* Strings (tier "gold"), exact and case-sensitive. */
      {"{\"field\":\"profile.tier\",\"op\":\"==\",\"value\":\"gold\"}", 1},
      {"{\"field\":\"profile.tier\",\"op\":\"==\",\"value\":\"Gold\"}", 0},
      {"{\"field\":\"profile.tier\",\"op\":\"!=\",\"value\":\"silver\"}", 1},
      {"{\"field\":\"profile.tier\",\"op\":\"in\",\"value\":[\"silver\","
       "\"gold\"]}",
       1},
      {"{\"field\":\"profile.tier\",\"op\":\"not_in\",\"value\":[\"gold\"]}",
       0},
      {"{\"field\":\"event.status\",\"op\":\"==\",\"value\":\"created\"}", 1},
      {"{\"field\":\"profile.consent\",\"op\":\"==\","
       "\"value\":\"subscribed\"}",
       1},
      {"{\"field\":\"profile.favourite_brand\",\"op\":\"==\","
       "\"value\":\"Zeta\"}",
       1},
      {"{\"field\":\"profile.favourite_category\",\"op\":\"==\","
       "\"value\":\"Shoes\"}",
       1},
      {"{\"field\":\"profile.segment\",\"op\":\"==\",\"value\":\"vip\"}", 1},
      /* Sets (tags vip, newsletter; brands Acme + one without brand). */
      {"{\"field\":\"profile.tags\",\"op\":\"contains\",\"value\":\"vip\"}", 1},
      {"{\"field\":\"profile.tags\",\"op\":\"contains\",\"value\":\"vi\"}", 0},
      {"{\"field\":\"profile.tags\",\"op\":\"in\",\"value\":[\"x\","
       "\"newsletter\"]}",
       1},
      {"{\"field\":\"profile.tags\",\"op\":\"in\",\"value\":[\"x\"]}", 0},
      {"{\"field\":\"profile.tags\",\"op\":\"not_in\",\"value\":[\"x\"]}", 1},
      {"{\"field\":\"profile.tags\",\"op\":\"not_in\",\"value\":[\"vip\"]}", 0},
      {"{\"field\":\"profile.tags\",\"op\":\"exists\"}", 1},
      {"{\"field\":\"event.brands\",\"op\":\"contains\",\"value\":\"Acme\"}",
       1},
      {"{\"field\":\"event.categories\",\"op\":\"in\",\"value\":[\"Hats\"]}",
       1},
      {"{\"field\":\"event.discount_codes\",\"op\":\"exists\"}", 0},
      {"{\"field\":\"event.discount_codes\",\"op\":\"exists\","
       "\"value\":false}",
       1},
      {"{\"field\":\"event.has_favourite_brand\",\"op\":\"==\","
       "\"value\":false}",
       1},
      {"{\"field\":\"event.has_favourite_category\",\"op\":\"==\","
       "\"value\":true}",
       1},
      /* Combinators. */
      {"{\"all\":[]}", 1},
      {"{\"any\":[]}", 0},
      {"{\"not\":{\"any\":[]}}", 1},
      {"{\"any\":[{\"field\":\"profile.order_count\",\"op\":\"==\","
       "\"value\":1},{\"field\":\"profile.order_count\",\"op\":\"==\","
       "\"value\":4}]}",
       1},
      {"{\"all\":[{\"field\":\"profile.order_count\",\"op\":\"==\","
       "\"value\":1},{\"field\":\"profile.order_count\",\"op\":\"==\","
       "\"value\":4}]}",
       0},
  };
  for (size_t i = 0; i < LP_ARRAY_LEN(cases); i++) {
    int got = fires("order", cases[i].cond, &o, NULL, &p);
    if (got != cases[i].want)
      fail_msg("case %zu %s: got %d, want %d", i, cases[i].cond, got,
               cases[i].want);
  }
  lp_profile_clear(&p);
  lp_order_event_clear(&o);
}

/* Absent values (no orders yet, no tier) satisfy no comparison; exists and
 * not tell them apart. */
static void test_absent_values(void **state) {
  (void)state;
  struct lp_order_event o;
  order_init(&o, "10.00");
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  static const struct {
    const char *cond;
    int want;
  } cases[] = {
      {"{\"field\":\"profile.days_since_last_order\",\"op\":\">=\","
       "\"value\":0}",
       0},
      {"{\"field\":\"profile.days_since_last_order\",\"op\":\"<\","
       "\"value\":0}",
       0},
      {"{\"field\":\"profile.days_since_last_order\",\"op\":\"!=\","
       "\"value\":5}",
       0},
      {"{\"field\":\"profile.days_since_last_order\",\"op\":\"not_in\","
       "\"value\":[5]}",
       0},
      {"{\"field\":\"profile.days_since_last_order\",\"op\":\"exists\"}", 0},
      {"{\"field\":\"profile.days_since_last_order\",\"op\":\"exists\","
       "\"value\":false}",
       1},
      {"{\"not\":{\"field\":\"profile.days_since_last_order\",\"op\":\">=\","
       "\"value\":45}}",
       1},
      {"{\"field\":\"profile.tier\",\"op\":\"!=\",\"value\":\"gold\"}", 0},
      {"{\"field\":\"profile.favourite_brand\",\"op\":\"exists\"}", 0},
      {"{\"field\":\"event.source\",\"op\":\"exists\"}", 0},
      {"{\"field\":\"profile.segment\",\"op\":\"==\",\"value\":\"default\"}",
       1},
      {"{\"field\":\"profile.exists\",\"op\":\"==\",\"value\":false}", 1},
      {"{\"field\":\"profile.nth_order\",\"op\":\"==\",\"value\":1}", 1},
      {"{\"field\":\"profile.aov\",\"op\":\"==\",\"value\":0}", 1},
  };
  for (size_t i = 0; i < LP_ARRAY_LEN(cases); i++) {
    int got = fires("order", cases[i].cond, &o, NULL, &p);
    if (got != cases[i].want)
      fail_msg("case %zu %s: got %d, want %d", i, cases[i].cond, got,
               cases[i].want);
  }
  lp_order_event_clear(&o);
}

/* One rule reading every order field: the explanation carries each value
 * in canonical text, in condition order. */
static void test_order_fields(void **state) {
  (void)state;
  static const char *const want[][2] = {
      {"event.status", "created"},
      {"event.is_new_order", "true"},
      {"event.time", "2026-01-10T00:00:00.000Z"},
      {"event.total", "120.50"},
      {"event.subtotal", "110.00"},
      {"event.discount", "5.00"},
      {"event.tax", "15.50"},
      {"event.currency", "USD"},
      {"event.item_count", "4"},
      {"event.brands", "[\"Acme\",\"Zeta\"]"},
      {"event.categories", "[\"Hats\",\"Shoes\"]"},
      {"event.discount_codes", "[\"SAVE5\"]"},
      {"event.source", "shopify"},
      {"event.has_favourite_brand", "true"},
      {"event.has_favourite_category", "true"},
      {"profile.exists", "true"},
      {"profile.order_count", "4"},
      {"profile.nth_order", "5"},
      {"profile.is_first_order", "false"},
      {"profile.lifetime_spend", "612.40"},
      {"profile.aov", "153.10"},
      {"profile.days_since_last_order", "52"},
      {"profile.days_since_first_order", "199"},
      {"profile.favourite_category", "Shoes"},
      {"profile.favourite_brand", "Zeta"},
      {"profile.tags", "[\"newsletter\",\"vip\"]"},
      {"profile.consent", "subscribed"},
      {"profile.tier", "gold"},
      {"profile.segment", "vip"},
  };
  struct lp_buf b;
  lp_buf_init(&b);
  lp_buf_append_str(&b, "{\"any\":[");
  for (size_t i = 0; i < LP_ARRAY_LEN(want); i++)
    lp_buf_appendf(&b, "%s{\"field\":\"%s\",\"op\":\"exists\"}", i ? "," : "",
                   want[i][0]);
  lp_buf_append_str(&b, "]}");
  char *json = lp_xasprintf(
      "{\"segments\":[{\"id\":\"vip\",\"when\":{\"field\":\"profile.tags\","
      "\"op\":\"contains\",\"value\":\"vip\"}}],\"rules\":["
      "{\"id\":\"t\",\"version\":1,\"on\":\"order\",\"when\":%s,"
      "\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      lp_buf_cstr(&b));
  struct lp_ruleset *rs = load(json);
  struct lp_order_event o;
  order_init(&o, "120.50");
  o.subtotal_micros = money("110.00");
  o.discount_micros = money("5.00");
  o.tax_micros = money("15.50");
  o.source = lp_xstrdup("shopify");
  add_string(&o.discount_codes, &o.n_discount_codes, "SAVE5");
  order_add_item(&o, "Shoes", "Zeta", 2, "30.00");
  order_add_item(&o, "Hats", "Acme", 1, "50.50");
  order_add_item(&o, "Shoes", NULL, 1, "0.00");
  struct lp_profile p;
  profile_returning(&p);
  struct decisions ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 1);
  const struct lp_explanation *e = &ds.d[0].explanation;
  assert_int_equal(e->n_features, LP_ARRAY_LEN(want));
  for (size_t i = 0; i < LP_ARRAY_LEN(want); i++) {
    assert_string_equal(e->features[i].name, want[i][0]);
    assert_string_equal(e->features[i].value, want[i][1]);
  }
  decisions_free(&ds);

  /* A new member: absent values are NULL features. */
  lp_profile_clear(&p);
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 1);
  assert_string_equal(feature(&ds.d[0], "profile.days_since_last_order"),
                      "(null)");
  assert_string_equal(feature(&ds.d[0], "profile.favourite_brand"), "(null)");
  assert_string_equal(feature(&ds.d[0], "profile.tier"), "(null)");
  assert_string_equal(feature(&ds.d[0], "profile.tags"), "[]");
  assert_string_equal(feature(&ds.d[0], "profile.segment"), "default");
  assert_string_equal(feature(&ds.d[0], "profile.aov"), "0.00");
  assert_string_equal(feature(&ds.d[0], "profile.nth_order"), "1");
  assert_string_equal(feature(&ds.d[0], "profile.is_first_order"), "true");
  decisions_free(&ds);
  lp_order_event_clear(&o);
  lp_buf_free(&b);
  free(json);
  lp_ruleset_destroy(&rs);
}

static void test_customer_fields(void **state) {
  (void)state;
  struct lp_customer_event c;
  customer_init(&c);
  add_string(&c.tags, &c.n_tags, "vip");
  c.birthday = lp_xstrdup("--04-01");
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  assert_true(fires("customer",
                    "{\"all\":[{\"field\":\"customer.kind\",\"op\":\"==\","
                    "\"value\":\"updated\"},{\"field\":\"customer.consent\","
                    "\"op\":\"==\",\"value\":\"subscribed\"},"
                    "{\"field\":\"customer.tags\",\"op\":\"contains\","
                    "\"value\":\"vip\"},{\"field\":\"customer.birthday_set\","
                    "\"op\":\"==\",\"value\":true},{\"field\":\"event.time\","
                    "\"op\":\"exists\"},{\"field\":\"profile.tags\","
                    "\"op\":\"exists\",\"value\":false}]}",
                    NULL, &c, &p));
  assert_false(fires("customer",
                     "{\"field\":\"customer.kind\",\"op\":\"==\","
                     "\"value\":\"created\"}",
                     NULL, &c, &p));
  /* A customer rule: trigger kind customer, no currency, percent discount
   * costed on the member's average order. */
  struct lp_ruleset *rs = load(
      "{\"rules\":[{\"id\":\"opt-in\",\"version\":3,\"on\":\"customer\","
      "\"when\":{\"field\":\"customer.consent\",\"op\":\"==\",\"value\":"
      "\"subscribed\"},\"action\":{\"kind\":\"discount_code\",\"percent\":10,"
      "\"category\":\"$favourite_category\"}},"
      "{\"id\":\"on-order\",\"version\":1,\"on\":\"order\",\"when\":"
      "{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}}]}");
  profile_returning(&p);
  struct decisions ds = {NULL, 0};
  lp_rules_decide_customer(rs, &c, &p, NULL, &ds.d, &ds.n);
  assert_int_equal(ds.n, 1);
  assert_string_equal(ds.d[0].trigger_kind, "customer");
  assert_string_equal(ds.d[0].trigger_event_id, "cevt-1");
  assert_null(ds.d[0].currency);
  assert_string_equal(ds.d[0].action.category, "Shoes");
  assert_null(ds.d[0].action.brand);
  assert_int_equal(ds.d[0].estimated_cost_micros, money("15.31"));
  char id[LP_DECISION_ID_LEN + 1];
  lp_decision_id("opt-in", 3, "demo.myshopify.com", "1073339531", "cevt-1", id);
  assert_string_equal(ds.d[0].decision_id, id);
  decisions_free(&ds);
  lp_ruleset_destroy(&rs);
  lp_profile_clear(&p);
  lp_customer_event_clear(&c);
}

/* ---- priority, exclusivity, groups -------------------------------------- */

static void test_priority_exclusive_group(void **state) {
  (void)state;
  const char *json =
      "{\"rules\":["
      "{\"id\":\"low\",\"version\":1,\"on\":\"order\",\"priority\":1,"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}},"
      "{\"id\":\"excl\",\"version\":1,\"on\":\"order\",\"priority\":10,"
      "\"exclusive\":true,\"when\":{\"field\":\"event.total\",\"op\":\">=\","
      "\"value\":\"100\"},\"action\":{\"kind\":\"points\",\"points\":2}},"
      "{\"id\":\"peer\",\"version\":1,\"on\":\"order\",\"priority\":10,"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":3}},"
      "{\"id\":\"g-high\",\"version\":1,\"on\":\"order\",\"priority\":5,"
      "\"group\":\"g\",\"when\":{\"field\":\"event.total\",\"op\":\">=\","
      "\"value\":\"50\"},\"action\":{\"kind\":\"points\",\"points\":4}},"
      "{\"id\":\"g-low\",\"version\":1,\"on\":\"order\",\"priority\":4,"
      "\"group\":\"g\",\"when\":{\"all\":[]},"
      "\"action\":{\"kind\":\"points\",\"points\":5}},"
      "{\"id\":\"off\",\"version\":1,\"on\":\"order\",\"priority\":99,"
      "\"enabled\":false,\"when\":{\"all\":[]},"
      "\"action\":{\"kind\":\"points\",\"points\":6}}]}";
  struct lp_ruleset *rs = load(json);
  assert_int_equal(lp_ruleset_count(rs), 6);
  struct lp_order_event o;
  order_init(&o, "150.00");
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  /* excl fires: its equal-priority peer still does, lower ones do not. */
  struct decisions ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 2);
  assert_string_equal(ds.d[0].rule_id, "excl");
  assert_string_equal(ds.d[1].rule_id, "peer");
  decisions_free(&ds);
  /* excl does not fire: group g gives its highest matching rule only. */
  o.total_micros = money("60.00");
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 3);
  assert_string_equal(ds.d[0].rule_id, "peer");
  assert_string_equal(ds.d[1].rule_id, "g-high");
  assert_string_equal(ds.d[2].rule_id, "low");
  decisions_free(&ds);
  o.total_micros = money("10.00");
  ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 3);
  assert_string_equal(ds.d[1].rule_id, "g-low");
  decisions_free(&ds);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
}

/* ---- points math, costs, approval --------------------------------------- */

static int64_t points_for(const char *per_unit, const char *multiplier,
                          const char *total) {
  char *json = lp_xasprintf(
      "{\"rules\":[{\"id\":\"p\",\"version\":1,\"on\":\"order\",\"when\":"
      "{\"all\":[]},\"action\":{\"kind\":\"points\",\"per_currency_unit\":%s"
      "%s%s}}]}",
      per_unit, multiplier ? ",\"multiplier\":" : "",
      multiplier ? multiplier : "");
  struct lp_ruleset *rs = load(json);
  free(json);
  struct lp_order_event o;
  order_init(&o, total);
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  struct decisions ds = decide(rs, &o, &p);
  int64_t pts = ds.n ? ds.d[0].action.points : 0;
  decisions_free(&ds);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
  return pts;
}

static void test_points_math(void **state) {
  (void)state;
  assert_int_equal(points_for("1", NULL, "120.99"), 120);
  assert_int_equal(points_for("1", "2", "120.50"), 241);
  assert_int_equal(points_for("1", "2", "120.49"), 240);
  assert_int_equal(points_for("\"0.5\"", "3", "33.333333"), 49);
  assert_int_equal(points_for("100", NULL, "0.01"), 1);
  assert_int_equal(points_for("\"0.1\"", "\"0.1\"", "100.00"), 1);
  assert_int_equal(points_for("10", "1.5", "0.07"), 1); /* 1.05 */
  /* Largest order x largest rates stays exact. */
  assert_int_equal(points_for("1000", "1000", "9000000000"),
                   9000000000000000LL);
  /* Zero points: the rule does not fire. */
  assert_int_equal(points_for("1", NULL, "0.99"), 0);
  assert_int_equal(points_for("1", NULL, "0.00"), 0);
}

static void test_cost_and_approval(void **state) {
  (void)state;
  struct lp_ruleset *rs =
      load("{\"settings\":{\"point_cost\":\"0.005\","
           "\"approval_cost_threshold\":\"20\"},\"rules\":["
           "{\"id\":\"a\",\"version\":1,\"on\":\"order\",\"priority\":5,"
           "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\","
           "\"points\":4000}},"
           "{\"id\":\"b\",\"version\":1,\"on\":\"order\",\"priority\":4,"
           "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\","
           "\"points\":4001}},"
           "{\"id\":\"c\",\"version\":1,\"on\":\"order\",\"priority\":3,"
           "\"approval\":\"required\",\"when\":{\"all\":[]},"
           "\"action\":{\"kind\":\"reward\",\"reward_id\":\"free-tote\","
           "\"cost\":\"3.50\"}},"
           "{\"id\":\"d\",\"version\":1,\"on\":\"order\",\"priority\":2,"
           "\"when\":{\"all\":[]},\"action\":{\"kind\":\"discount_code\","
           "\"amount\":\"10.00\",\"brand\":\"Acme\"}},"
           "{\"id\":\"e\",\"version\":1,\"on\":\"order\",\"priority\":1,"
           "\"when\":{\"all\":[]},\"action\":{\"kind\":\"tier_change\","
           "\"tier\":\"gold\",\"template_id\":\"tier-up\"}},"
           "{\"id\":\"f\",\"version\":1,\"on\":\"order\",\"priority\":0,"
           "\"when\":{\"all\":[]},\"action\":{\"kind\":\"message\","
           "\"template_id\":\"thanks\"}}]}");
  struct lp_order_event o;
  order_init(&o, "80.00");
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  struct decisions ds = decide(rs, &o, &p);
  assert_int_equal(ds.n, 6);
  assert_int_equal(ds.d[0].estimated_cost_micros, money("20.00"));
  assert_int_equal(ds.d[0].approval, LP_APPROVAL_NONE); /* not above */
  assert_int_equal(ds.d[1].estimated_cost_micros, money("20.005"));
  assert_int_equal(ds.d[1].approval, LP_APPROVAL_RECOMMENDED);
  assert_int_equal(ds.d[2].action.kind, LP_ACTION_REWARD);
  assert_string_equal(ds.d[2].action.reward_id, "free-tote");
  assert_int_equal(ds.d[2].estimated_cost_micros, money("3.50"));
  assert_int_equal(ds.d[2].approval, LP_APPROVAL_REQUIRED);
  assert_int_equal(ds.d[3].action.discount_amount_micros, money("10.00"));
  assert_int_equal(ds.d[3].action.discount_percent, 0);
  assert_string_equal(ds.d[3].action.brand, "Acme");
  assert_int_equal(ds.d[3].estimated_cost_micros, money("10.00"));
  assert_int_equal(ds.d[4].action.kind, LP_ACTION_TIER_CHANGE);
  assert_string_equal(ds.d[4].action.tier, "gold");
  assert_string_equal(ds.d[4].action.template_id, "tier-up");
  assert_null(ds.d[4].action.channel);
  assert_int_equal(ds.d[4].estimated_cost_micros, 0);
  assert_int_equal(ds.d[5].action.kind, LP_ACTION_MESSAGE);
  assert_string_equal(ds.d[5].action.channel, "email"); /* default */
  assert_int_equal(ds.d[5].explanation.n_features, 0);
  assert_string_equal(ds.d[5].explanation.summary, "f");
  decisions_free(&ds);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&rs);
}

/* ---- determinism -------------------------------------------------------- */

static void assert_same_decisions(const struct decisions *a,
                                  const struct decisions *b) {
  assert_int_equal(a->n, b->n);
  assert_decisions_equal(a->d, b->d, a->n);
}

/* Same input, same decisions — whatever the order rules were written in,
 * whichever decision was computed first, and however often. */
static void test_determinism(void **state) {
  (void)state;
  const char *fwd =
      "{\"rules\":["
      "{\"id\":\"x\",\"version\":2,\"on\":\"order\",\"priority\":1,"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}},"
      "{\"id\":\"y\",\"version\":1,\"on\":\"order\",\"priority\":1,"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":2}},"
      "{\"id\":\"z\",\"version\":1,\"on\":\"order\",\"priority\":7,"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":3}}]}";
  const char *rev =
      "{\"rules\":["
      "{\"id\":\"z\",\"version\":1,\"on\":\"order\",\"priority\":7,"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":3}},"
      "{\"id\":\"y\",\"version\":1,\"on\":\"order\",\"priority\":1,"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":2}},"
      "{\"id\":\"x\",\"version\":2,\"on\":\"order\",\"priority\":1,"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}}]}";
  struct lp_ruleset *a = load(fwd), *b = load(rev);
  struct lp_order_event o;
  order_init(&o, "10.00");
  struct lp_profile p;
  profile_returning(&p);
  struct decisions da = decide(a, &o, &p), db = decide(b, &o, &p);
  assert_int_equal(da.n, 3);
  assert_string_equal(da.d[0].rule_id, "z");
  assert_string_equal(da.d[1].rule_id, "x"); /* equal priority: by id */
  assert_string_equal(da.d[2].rule_id, "y");
  assert_same_decisions(&da, &db);
  /* A decision's id depends on its rule, member and trigger only. */
  char id[LP_DECISION_ID_LEN + 1];
  lp_decision_id("x", 2, "demo.myshopify.com", "1073339531", "evt-1", id);
  assert_string_equal(da.d[1].decision_id, id);
  /* Again, later, after other work: identical. */
  struct decisions dc = decide(b, &o, &p);
  assert_same_decisions(&da, &dc);
  /* Appends to what the caller already holds. */
  lp_rules_decide_order(a, &o, &p, NULL, &dc.d, &dc.n);
  assert_int_equal(dc.n, 6);
  assert_string_equal(dc.d[3].decision_id, da.d[0].decision_id);
  decisions_free(&da);
  decisions_free(&db);
  decisions_free(&dc);
  lp_profile_clear(&p);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&a);
  lp_ruleset_destroy(&b);
}

/* What a SIGHUP reload relies on: an invalid file yields no ruleset and
 * leaves the one in force untouched. */
/* Timer rules: what they plan, the errors that name the place, and that a
 * fired timer is decided by its own rule alone, at its due time, with the
 * activity fields and a decision id from the trigger id. */
static void test_timer_rules(void **state) {
  (void)state;
  expect_error(
      "{\"rules\":[{\"id\":\"w\",\"version\":1,\"on\":\"timer\","
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      "t.json: $.rules[0]: missing required key \"timer\" (a timer rule says "
      "which timer it plans, e.g. {\"kind\": \"winback\", \"after_days\": "
      "45})");
  expect_error(
      "{\"rules\":[{\"id\":\"w\",\"version\":1,\"on\":\"order\","
      "\"timer\":{\"kind\":\"cart\"},"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      "t.json: $.rules[0].timer: \"timer\" applies to rules with \"on\": "
      "\"timer\" only");
  expect_error(
      "{\"rules\":[{\"id\":\"w\",\"version\":1,\"on\":\"timer\","
      "\"timer\":{\"kind\":\"winback\",\"after_days\":45,\"p_alive_below\":0.3}"
      ","
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      "t.json: $.rules[0].timer: a winback timer needs exactly one of "
      "\"after_days\" and \"p_alive_below\"");
  expect_error(
      "{\"rules\":[{\"id\":\"w\",\"version\":1,\"on\":\"timer\","
      "\"timer\":{\"kind\":\"nap\"},"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      "t.json: $.rules[0].timer.kind: unknown timer kind \"nap\" (expected one "
      "of winback, replenishment, birthday, cart)");
  expect_error(
      "{\"rules\":[{\"id\":\"w\",\"version\":1,\"on\":\"timer\","
      "\"timer\":{\"kind\":\"cart\",\"after_minutes\":0},"
      "\"when\":{\"all\":[]},\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      "t.json: $.rules[0].timer.after_minutes: 0 is out of range (1 to 10080)");
  /* Event fields are not there when nothing arrived. */
  expect_error(
      "{\"rules\":[{\"id\":\"w\",\"version\":1,\"on\":\"timer\","
      "\"timer\":{\"kind\":\"cart\"},"
      "\"when\":{\"field\":\"event.total\",\"op\":\">\",\"value\":\"1\"},"
      "\"action\":{\"kind\":\"points\",\"points\":1}}]}",
      "t.json: $.rules[0].when.field: field \"event.total\" is not available "
      "on timer rules");

  struct lp_ruleset *rs = load(
      "{\"rules\":["
      "{\"id\":\"wb\",\"version\":2,\"on\":\"timer\","
      "\"timer\":{\"kind\":\"winback\",\"after_days\":45},"
      "\"when\":{\"all\":[{\"field\":\"activity.top_category\",\"op\":\"==\","
      "\"value\":\"Shoes\"},{\"field\":\"profile.days_since_last_order\","
      "\"op\":\">=\",\"value\":45}]},"
      "\"action\":{\"kind\":\"discount_code\",\"percent\":20,"
      "\"brand\":\"$favourite_brand\"}},"
      "{\"id\":\"cart\",\"version\":1,\"on\":\"timer\","
      "\"timer\":{\"kind\":\"cart\",\"after_minutes\":30},"
      "\"when\":{\"field\":\"activity.cart_state\",\"op\":\"==\",\"value\":"
      "\"open\"},"
      "\"action\":{\"kind\":\"message\",\"template_id\":\"nudge\"}},"
      "{\"id\":\"off\",\"version\":1,\"on\":\"timer\",\"enabled\":false,"
      "\"timer\":{\"kind\":\"birthday\"},\"when\":{\"all\":[]},"
      "\"action\":{\"kind\":\"points\",\"points\":5}},"
      "{\"id\":\"o\",\"version\":1,\"on\":\"order\",\"when\":{\"all\":[]},"
      "\"action\":{\"kind\":\"points\",\"points\":5}}]}");
  const struct lp_timer_rule *tr;
  /* Enabled only, in rule order (priority, then id). */
  assert_int_equal(lp_ruleset_timer_rules(rs, &tr), 2);
  assert_string_equal(tr[0].rule_id, "cart");
  assert_int_equal(tr[0].kind, LP_TIMER_CART);
  assert_int_equal(tr[0].after_minutes, 30);
  assert_string_equal(tr[1].rule_id, "wb");
  assert_int_equal(tr[1].kind, LP_TIMER_WINBACK);
  assert_int_equal(tr[1].after_days, 45);
  assert_int_equal(tr[1].rule_version, 2);

  struct lp_profile p;
  profile_returning(&p);
  p.last_order_ms = 1700000000000;
  struct lp_activity_view act = {0};
  act.top_category = lp_xstrdup("Shoes");
  act.top_category_score = 2500000;
  act.at = 1700000000000 + 40 * 86400000LL;
  int64_t due = 1700000000000 + 45 * 86400000LL;
  struct lp_timer_trigger t = {LP_TIMER_WINBACK,
                               "wb",
                               "shop1",
                               "c42",
                               "winback:shop1:c42:wb@1703888000000",
                               due};
  struct decisions ds = {0};
  lp_rules_decide_timer(rs, &t, &p, &act, NULL, &ds.d, &ds.n);
  assert_int_equal(ds.n, 1); /* only "wb": the order rule is not asked */
  assert_string_equal(ds.d[0].rule_id, "wb");
  assert_string_equal(ds.d[0].trigger_kind, "winback");
  assert_string_equal(ds.d[0].trigger_event_id, t.trigger_id);
  assert_int_equal(ds.d[0].event_time_ms, due);
  assert_string_equal(ds.d[0].action.brand, "Zeta");
  char id[LP_DECISION_ID_LEN + 1];
  lp_decision_id("wb", 2, "shop1", "c42", t.trigger_id, id);
  assert_string_equal(ds.d[0].decision_id, id);
  /* Its explanation names the activity it read. */
  int saw = 0;
  for (size_t i = 0; i < ds.d[0].explanation.n_features; i++)
    if (strcmp(ds.d[0].explanation.features[i].name, "activity.top_category") ==
        0)
      saw = strcmp(ds.d[0].explanation.features[i].value, "Shoes") == 0;
  assert_true(saw);
  decisions_free(&ds);
  /* Without browse activity the condition does not hold. */
  lp_rules_decide_timer(rs, &t, &p, NULL, NULL, &ds.d, &ds.n);
  assert_int_equal(ds.n, 0);
  /* A trigger of another kind for that rule, or a rule that is gone, gives
   * nothing. */
  t.kind = LP_TIMER_CART;
  lp_rules_decide_timer(rs, &t, &p, &act, NULL, &ds.d, &ds.n);
  assert_int_equal(ds.n, 0);
  t.kind = LP_TIMER_WINBACK;
  t.rule_id = "gone";
  lp_rules_decide_timer(rs, &t, &p, &act, NULL, &ds.d, &ds.n);
  assert_int_equal(ds.n, 0);
  /* The cart rule reads the cart. */
  act.cart_state = LP_CART_OPEN;
  act.cart_micros = 25000000;
  struct lp_timer_trigger ct = {LP_TIMER_CART,           "cart", "shop1", "c42",
                                "cart:shop1:c42:cart@1", 1};
  lp_rules_decide_timer(rs, &ct, &p, &act, NULL, &ds.d, &ds.n);
  assert_int_equal(ds.n, 1);
  assert_string_equal(ds.d[0].trigger_kind, "cart");
  decisions_free(&ds);
  lp_activity_view_clear(&act);
  lp_profile_clear(&p);
  lp_ruleset_destroy(&rs);
}

static void test_reload_keeps_old(void **state) {
  (void)state;
  struct lp_ruleset *old = load(R(RULE("{\"all\":[]}", PTS)));
  char err[512];
  struct lp_ruleset *next =
      lp_ruleset_load_string("{\"rules\":[", "new.json", err, sizeof(err));
  assert_null(next);
  assert_non_null(strstr(err, "new.json: line 1 column"));
  struct lp_order_event o;
  order_init(&o, "1.00");
  struct lp_profile p;
  memset(&p, 0, sizeof(p));
  struct decisions ds = decide(old, &o, &p);
  assert_int_equal(ds.n, 1);
  decisions_free(&ds);
  lp_order_event_clear(&o);
  lp_ruleset_destroy(&old);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decision_id_vectors),
      cmocka_unit_test(test_profile_views),
      cmocka_unit_test(test_seed_loads),
      cmocka_unit_test(test_seed_first_order),
      cmocka_unit_test(test_seed_segments),
      cmocka_unit_test(test_seed_milestone),
      cmocka_unit_test(test_seed_we_miss_you),
      cmocka_unit_test(test_errors_syntax),
      cmocka_unit_test(test_errors_rule),
      cmocka_unit_test(test_errors_condition),
      cmocka_unit_test(test_errors_action),
      cmocka_unit_test(test_errors_directory),
      cmocka_unit_test(test_operators),
      cmocka_unit_test(test_absent_values),
      cmocka_unit_test(test_order_fields),
      cmocka_unit_test(test_customer_fields),
      cmocka_unit_test(test_priority_exclusive_group),
      cmocka_unit_test(test_points_math),
      cmocka_unit_test(test_cost_and_approval),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_timer_rules),
      cmocka_unit_test(test_reload_keeps_old),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
