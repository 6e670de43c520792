/*
 * rules_eval.c — evaluates a loaded ruleset against one event and the
 * member's profile just before it, producing reward decisions.
 *
 * A pure function of (ruleset, event, profile): it reads the event's time,
 * never the clock, keeps no state between calls, and iterates rules in
 * their fixed (priority desc, id asc) order, so the same input always gives
 * the same decisions, ids and explanations byte for byte. Field values are
 * read straight from the records; nothing is allocated until a rule fires.
 */
#include "rules.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"
#include "model.h"
#include "rules_internal.h"
#include "util.h"

#define MS_PER_DAY 86400000LL
#define SUMMARY_MAX 1000

/* Per-event evaluation state; lazily computed values are cached here. */
struct ctx {
  const struct lp_ruleset *rs;
  unsigned on;
  const struct lp_order_event *order;       /* borrowed, when on order */
  const struct lp_customer_event *customer; /* borrowed, when on customer */
  const struct lp_timer_trigger *timer;     /* borrowed, when on timer */
  const struct lp_activity_view *act; /* borrowed, on timer; may be NULL */
  const char *only_rule;              /* on timer: the one rule to evaluate */
  const struct lp_profile *p;         /* borrowed */
  int64_t time_ms;
  int have_segment;
  const char *segment;
  int have_scores;
  struct lp_scores scores; /* of p at time_ms, when have_scores */
  struct lp_arena *arena;  /* where decisions go; NULL: the heap */
};

/* A scalar field value: present or absent, numeric or string. */
struct value {
  int present;
  int64_t i;
  const char *s;
};

static int eval_cond(struct ctx *x, const struct lp_cond *c);

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The position of this order in the member's history (see docs). */
static int64_t nth_order(const struct ctx *x) {
  int counts =
      x->order->status == LP_ORDER_CREATED || x->order->status == LP_ORDER_PAID;
  return x->p->orders_placed +
         (counts && !x->p->order_previously_applied ? 1 : 0);
}

static const char *segment_of(struct ctx *x) {
  if (!x->have_segment) {
    x->segment = "default";
    for (size_t i = 0; i < x->rs->n_segments; i++)
      if (eval_cond(x, &x->rs->segments[i].when)) {
        x->segment = x->rs->segments[i].id;
        break;
      }
    x->have_segment = 1;
  }
  return x->segment;
}

/* The member's model scores, computed on first use (most events read
 * none), the series part only for the fields that need it. */
static const struct lp_scores *scores_of(struct ctx *x, int full) {
  if (!x->have_scores) {
    lp_model_score_basic(x->p->model, x->p, x->time_ms, &x->scores);
    x->have_scores = 1;
  }
  if (full && !x->scores.full)
    lp_model_score_complete(x->p->model, x->p, x->time_ms, &x->scores);
  return &x->scores;
}

/* A score as micros, saturated (scores are finite, see model.h). */
static int64_t micros_of(double v) {
  double u = v * 1e6;
  if (u >= 9e18)
    return INT64_MAX;
  if (u <= -9e18)
    return INT64_MIN;
  return (int64_t)llround(u);
}

static int order_has_brand(const struct lp_order_event *o, const char *b) {
  for (size_t i = 0; b && i < o->n_line_items; i++)
    if (o->line_items[i].brand && strcmp(o->line_items[i].brand, b) == 0)
      return 1;
  return 0;
}

static int order_has_category(const struct lp_order_event *o, const char *c) {
  for (size_t i = 0; c && i < o->n_line_items; i++)
    if (o->line_items[i].category && strcmp(o->line_items[i].category, c) == 0)
      return 1;
  return 0;
}

/* Reads a model score field; absent without a model or an order. */
static struct value score_value(struct ctx *x, enum lp_field_id f) {
  struct value v = {0, 0, NULL};
  int full = f == LP_F_PROFILE_EXPECTED_ORDERS_30D ||
             f == LP_F_PROFILE_EXPECTED_ORDERS_90D ||
             f == LP_F_PROFILE_EXPECTED_ORDERS_365D ||
             f == LP_F_PROFILE_CLV_12M || f == LP_F_PROFILE_NEXT_BEST_REWARD;
  const struct lp_scores *s = scores_of(x, full);
  if (f == LP_F_PROFILE_VALUE_SEGMENT && x->p->model) {
    /* Members without an order are new; the segment is always known. */
    v.present = 1;
    v.s = lp_value_segment_name(s->segment);
    return v;
  }
  if (!s->scored)
    return v;
  v.present = 1;
  switch (f) {
  case LP_F_PROFILE_P_ALIVE:
    v.i = micros_of(s->p_alive);
    break;
  case LP_F_PROFILE_CHURN_RISK:
    v.s = lp_churn_band_name(s->churn);
    break;
  case LP_F_PROFILE_EXPECTED_ORDERS_30D:
    v.i = micros_of(s->expected_30d);
    break;
  case LP_F_PROFILE_EXPECTED_ORDERS_90D:
    v.i = micros_of(s->expected_90d);
    break;
  case LP_F_PROFILE_EXPECTED_ORDERS_365D:
    v.i = micros_of(s->expected_365d);
    break;
  case LP_F_PROFILE_EXPECTED_AOV: /* money: to the cent */
    v.i = micros_of(round(s->expected_spend * 100) / 100);
    break;
  case LP_F_PROFILE_CLV_12M:
    v.i = micros_of(round(s->clv_12m * 100) / 100);
    break;
  case LP_F_PROFILE_DAYS_TO_NEXT_PURCHASE:
    v.present = s->has_next;
    v.i = floor_div(s->next_purchase_ms - x->time_ms, MS_PER_DAY);
    break;
  case LP_F_PROFILE_NEXT_BEST_REWARD:
    v.present = s->next_best >= 0;
    v.s = v.present ? x->p->model->rewards[s->next_best].id : NULL;
    break;
  default:
    LP_ASSERT(!"not a score field");
  }
  return v;
}

/* Reads a scalar (non-set) field. */
static struct value get_value(struct ctx *x, enum lp_field_id f) {
  struct value v = {1, 0, NULL};
  const struct lp_order_event *o = x->order;
  const struct lp_customer_event *c = x->customer;
  const struct lp_profile *p = x->p;
  switch (f) {
  case LP_F_EVENT_STATUS:
    v.s = lp_order_status_name(o->status);
    break;
  case LP_F_EVENT_IS_NEW_ORDER:
    v.i = !p->order_previously_applied;
    break;
  case LP_F_EVENT_TIME:
    v.i = x->time_ms;
    break;
  case LP_F_EVENT_TOTAL:
    v.i = o->total_micros;
    break;
  case LP_F_EVENT_SUBTOTAL:
    v.i = o->subtotal_micros;
    break;
  case LP_F_EVENT_DISCOUNT:
    v.i = o->discount_micros;
    break;
  case LP_F_EVENT_TAX:
    v.i = o->tax_micros;
    break;
  case LP_F_EVENT_CURRENCY:
    v.s = o->currency;
    break;
  case LP_F_EVENT_ITEM_COUNT:
    for (size_t i = 0; i < o->n_line_items; i++)
      v.i += o->line_items[i].quantity;
    break;
  case LP_F_EVENT_SOURCE:
    v.s = o ? o->source : c->source;
    break;
  case LP_F_EVENT_HAS_FAVOURITE_BRAND:
    v.i = order_has_brand(o, lp_profile_favourite_brand(p));
    break;
  case LP_F_EVENT_HAS_FAVOURITE_CATEGORY:
    v.i = order_has_category(o, lp_profile_favourite_category(p));
    break;
  case LP_F_CUSTOMER_KIND:
    v.s = lp_customer_kind_name(c->kind);
    break;
  case LP_F_CUSTOMER_CONSENT:
    v.s = lp_consent_name(c->marketing_consent);
    break;
  case LP_F_CUSTOMER_BIRTHDAY_SET:
    v.i = c->birthday != NULL && c->birthday[0] != '\0';
    break;
  case LP_F_PROFILE_EXISTS:
    v.i = p->exists;
    break;
  case LP_F_PROFILE_ORDER_COUNT:
    v.i = p->order_count;
    break;
  case LP_F_PROFILE_NTH_ORDER:
    v.i = nth_order(x);
    break;
  case LP_F_PROFILE_IS_FIRST_ORDER:
    v.i = nth_order(x) == 1;
    break;
  case LP_F_PROFILE_LIFETIME_SPEND:
    v.i = p->lifetime_spend_micros;
    break;
  case LP_F_PROFILE_AOV:
    v.i = lp_profile_aov_micros(p);
    break;
  case LP_F_PROFILE_DAYS_SINCE_LAST_ORDER:
    v.present = p->last_order_ms != 0;
    v.i = lp_profile_days_since_last_order(p, x->time_ms);
    break;
  case LP_F_PROFILE_DAYS_SINCE_FIRST_ORDER:
    v.present = p->first_order_ms != 0;
    v.i = floor_div(x->time_ms - p->first_order_ms, MS_PER_DAY);
    break;
  case LP_F_PROFILE_FAVOURITE_CATEGORY:
    v.s = lp_profile_favourite_category(p);
    break;
  case LP_F_PROFILE_FAVOURITE_BRAND:
    v.s = lp_profile_favourite_brand(p);
    break;
  case LP_F_PROFILE_CONSENT:
    v.s = lp_consent_name(p->marketing_consent);
    break;
  case LP_F_PROFILE_TIER:
    v.s = p->tier && p->tier[0] ? p->tier : NULL;
    break;
  case LP_F_PROFILE_SEGMENT:
    v.s = segment_of(x);
    break;
  case LP_F_TIMER_KIND:
    v.s = lp_timer_kind_name(x->timer->kind);
    break;
  case LP_F_TIMER_DUE:
    v.i = x->timer->due_ms;
    break;
  case LP_F_ACTIVITY_TOP_CATEGORY:
    v.s = x->act ? x->act->top_category : NULL;
    break;
  case LP_F_ACTIVITY_TOP_CATEGORY_SCORE:
    v.present = x->act && x->act->top_category;
    v.i = v.present ? x->act->top_category_score : 0;
    break;
  case LP_F_ACTIVITY_TOP_BRAND:
    v.s = x->act ? x->act->top_brand : NULL;
    break;
  case LP_F_ACTIVITY_TOP_BRAND_SCORE:
    v.present = x->act && x->act->top_brand;
    v.i = v.present ? x->act->top_brand_score : 0;
    break;
  case LP_F_ACTIVITY_VIEWS:
    v.i = x->act ? x->act->views : 0;
    break;
  case LP_F_ACTIVITY_DAYS_SINCE_LAST:
    v.present = x->act && x->act->at > 0;
    v.i = v.present ? floor_div(x->time_ms - x->act->at, MS_PER_DAY) : 0;
    break;
  case LP_F_ACTIVITY_CART_STATE:
    v.s = lp_cart_state_name(x->act ? x->act->cart_state : LP_CART_NONE);
    break;
  case LP_F_ACTIVITY_CART_VALUE:
    v.present = x->act && x->act->cart_state != LP_CART_NONE;
    v.i = v.present ? x->act->cart_micros : 0;
    break;
  case LP_F_ACTIVITY_CART_TOP_ITEM:
    v.s =
        x->act && x->act->cart_state != LP_CART_NONE ? x->act->cart_top : NULL;
    break;
  case LP_F_ACTIVITY_CART_LINES:
    v.present = x->act && x->act->cart_state != LP_CART_NONE;
    v.i = v.present ? x->act->cart_lines : 0;
    break;
  case LP_F_PROFILE_P_ALIVE:
  case LP_F_PROFILE_CHURN_RISK:
  case LP_F_PROFILE_EXPECTED_ORDERS_30D:
  case LP_F_PROFILE_EXPECTED_ORDERS_90D:
  case LP_F_PROFILE_EXPECTED_ORDERS_365D:
  case LP_F_PROFILE_EXPECTED_AOV:
  case LP_F_PROFILE_CLV_12M:
  case LP_F_PROFILE_DAYS_TO_NEXT_PURCHASE:
  case LP_F_PROFILE_VALUE_SEGMENT:
  case LP_F_PROFILE_NEXT_BEST_REWARD:
    return score_value(x, f);
  case LP_F_EVENT_BRANDS:
  case LP_F_EVENT_CATEGORIES:
  case LP_F_EVENT_DISCOUNT_CODES:
  case LP_F_CUSTOMER_TAGS:
  case LP_F_PROFILE_TAGS:
  case LP_F_COUNT:
    LP_ASSERT(!"not a scalar field");
    return v;
  }
  if ((unsigned)f < LP_F_COUNT && lp_rule_fields[f].type == LP_FT_STRING &&
      !v.s)
    v.present = 0;
  return v;
}

/* Set fields: element i of n (NULL for a line item without the value). */
static size_t set_size(const struct ctx *x, enum lp_field_id f) {
  switch (f) {
  case LP_F_EVENT_BRANDS:
  case LP_F_EVENT_CATEGORIES:
    return x->order->n_line_items;
  case LP_F_EVENT_DISCOUNT_CODES:
    return x->order->n_discount_codes;
  case LP_F_CUSTOMER_TAGS:
    return x->customer->n_tags;
  case LP_F_PROFILE_TAGS:
    return x->p->n_tags;
  default:
    LP_ASSERT(!"not a set field");
  }
  return 0;
}

static const char *set_at(const struct ctx *x, enum lp_field_id f, size_t i) {
  switch (f) {
  case LP_F_EVENT_BRANDS:
    return x->order->line_items[i].brand;
  case LP_F_EVENT_CATEGORIES:
    return x->order->line_items[i].category;
  case LP_F_EVENT_DISCOUNT_CODES:
    return x->order->discount_codes[i];
  case LP_F_CUSTOMER_TAGS:
    return x->customer->tags[i];
  case LP_F_PROFILE_TAGS:
    return x->p->tags[i];
  default:
    LP_ASSERT(!"not a set field");
  }
  return NULL;
}

static int cmp_key_strp(const void *key, const void *elem) {
  return strcmp((const char *)key, *(char *const *)elem);
}

static int cmp_key_i64(const void *key, const void *elem) {
  int64_t a = *(const int64_t *)key, b = *(const int64_t *)elem;
  return (a > b) - (a < b);
}

static int in_strs(const struct lp_cond *c, const char *s) {
  return s && bsearch(s, c->strs, c->n_list, sizeof(char *), cmp_key_strp);
}

static int eval_set(const struct ctx *x, const struct lp_cond *c) {
  size_t n = set_size(x, c->field);
  size_t present = 0;
  for (size_t i = 0; i < n; i++) {
    const char *e = set_at(x, c->field, i);
    if (!e)
      continue;
    present++;
    if (c->op == LP_OP_CONTAINS && strcmp(e, c->str) == 0)
      return 1;
    if ((c->op == LP_OP_IN || c->op == LP_OP_NOT_IN) && in_strs(c, e))
      return c->op == LP_OP_IN;
  }
  if (c->op == LP_OP_EXISTS)
    return (present > 0) == (c->num[0] != 0);
  return c->op == LP_OP_NOT_IN;
}

static int eval_leaf(struct ctx *x, const struct lp_cond *c) {
  if (lp_rule_fields[c->field].type == LP_FT_SET)
    return eval_set(x, c);
  struct value v = get_value(x, c->field);
  if (c->op == LP_OP_EXISTS)
    return v.present == (c->num[0] != 0);
  if (!v.present)
    return 0;
  if (lp_rule_fields[c->field].type == LP_FT_STRING) {
    switch (c->op) {
    case LP_OP_EQ:
      return strcmp(v.s, c->str) == 0;
    case LP_OP_NE:
      return strcmp(v.s, c->str) != 0;
    case LP_OP_IN:
      return in_strs(c, v.s);
    case LP_OP_NOT_IN:
      return !in_strs(c, v.s);
    default:
      LP_ASSERT(!"operator checked at load");
    }
  }
  int64_t a = v.i;
  switch (c->op) {
  case LP_OP_EQ:
    return a == c->num[0];
  case LP_OP_NE:
    return a != c->num[0];
  case LP_OP_LT:
    return a < c->num[0];
  case LP_OP_LE:
    return a <= c->num[0];
  case LP_OP_GT:
    return a > c->num[0];
  case LP_OP_GE:
    return a >= c->num[0];
  case LP_OP_BETWEEN:
    return a >= c->num[0] && a <= c->num[1];
  case LP_OP_IN:
  case LP_OP_NOT_IN: {
    int found =
        bsearch(&a, c->nums, c->n_list, sizeof(int64_t), cmp_key_i64) != NULL;
    return c->op == LP_OP_IN ? found : !found;
  }
  default:
    LP_ASSERT(!"operator checked at load");
  }
  return 0;
}

static int eval_cond(struct ctx *x, const struct lp_cond *c) {
  switch (c->kind) {
  case LP_COND_LEAF:
    return eval_leaf(x, c);
  case LP_COND_NOT:
    return !eval_cond(x, &c->kids[0]);
  case LP_COND_ALL:
    for (size_t i = 0; i < c->n_kids; i++)
      if (!eval_cond(x, &c->kids[i]))
        return 0;
    return 1;
  case LP_COND_ANY:
    for (size_t i = 0; i < c->n_kids; i++)
      if (eval_cond(x, &c->kids[i]))
        return 1;
    return 0;
  }
  return 0;
}

/* ---- decisions: built only for rules that fire --------------------------
 */

static void append_json_string(struct lp_buf *b, const char *s) {
  lp_buf_append_byte(b, '"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      lp_buf_append_byte(b, '\\');
      lp_buf_append_byte(b, ch);
    } else if (ch < 0x20) {
      lp_buf_appendf(b, "\\u%04x", ch);
    } else {
      lp_buf_append_byte(b, ch);
    }
  }
  lp_buf_append_byte(b, '"');
}

static int cmp_cstrp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Canonical text of a field's value (caller frees); NULL when absent.
 * Sets are a JSON array of their distinct elements, sorted. */
static char *feature_text(struct ctx *x, enum lp_field_id f) {
  char tmp[40];
  enum lp_field_type t = lp_rule_fields[f].type;
  if (t == LP_FT_SET) {
    size_t n = set_size(x, f), m = 0;
    const char **v = lp_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
      if (set_at(x, f, i))
        v[m++] = set_at(x, f, i);
    if (m)
      qsort(v, m, sizeof(char *), cmp_cstrp);
    struct lp_buf b;
    lp_buf_init(&b);
    lp_buf_append_byte(&b, '[');
    for (size_t i = 0, out = 0; i < m; i++) {
      if (i && strcmp(v[i], v[i - 1]) == 0)
        continue;
      if (out++)
        lp_buf_append_byte(&b, ',');
      append_json_string(&b, v[i]);
    }
    lp_buf_append_byte(&b, ']');
    char *s = lp_dup_in(x->arena, lp_buf_cstr(&b));
    lp_buf_free(&b);
    free(v);
    return s;
  }
  struct value v = get_value(x, f);
  if (!v.present)
    return NULL;
  switch (t) {
  case LP_FT_INT: {
    tmp[sizeof(tmp) - 1] = '\0';
    return lp_dup_in(x->arena, lp_i64_digits_back(tmp + sizeof(tmp) - 1, v.i));
  }
  case LP_FT_MONEY:
  case LP_FT_DECIMAL:
    lp_money_format(v.i, tmp, sizeof(tmp));
    return lp_dup_in(x->arena, tmp);
  case LP_FT_BOOL:
    return lp_dup_in(x->arena, v.i ? "true" : "false");
  case LP_FT_TIME:
    lp_time_format_iso8601(v.i, tmp, sizeof(tmp));
    return lp_dup_in(x->arena, tmp);
  case LP_FT_STRING:
    return lp_dup_in(x->arena, v.s);
  case LP_FT_SET:
    break;
  }
  return NULL;
}

/* "field=value op literal" per leaf, in condition order; a leaf that did
 * not hold (inside any / not) is marked "(false)". */
static void summarize(struct ctx *x, const struct lp_cond *c,
                      struct lp_buf *b) {
  if (c->kind != LP_COND_LEAF) {
    for (size_t i = 0; i < c->n_kids; i++)
      summarize(x, &c->kids[i], b);
    return;
  }
  if (b->len >= SUMMARY_MAX)
    return;
  char *val = feature_text(x, c->field);
  lp_buf_append(b, "; ", 2);
  lp_buf_append_str(b, lp_rule_fields[c->field].name);
  lp_buf_append_byte(b, '=');
  lp_buf_append_str(b, val ? val : "absent");
  lp_buf_append_byte(b, ' ');
  lp_buf_append_str(b, lp_rule_op_names[c->op]);
  lp_buf_append_byte(b, ' ');
  lp_buf_append_str(b, c->literal);
  if (!eval_leaf(x, c))
    lp_buf_append_str(b, " (false)");
  if (!x->arena)
    free(val);
}

/* "<description or id>: <leaf>; <leaf>..." capped at SUMMARY_MAX bytes. */
static char *make_summary(struct ctx *x, const struct lp_rule *r) {
  struct lp_buf leaves, b;
  lp_buf_init(&leaves);
  lp_buf_init(&b);
  summarize(x, &r->when, &leaves);
  lp_buf_append_str(&b, r->description ? r->description : r->id);
  if (leaves.len > 2) {
    lp_buf_append_str(&b, ": ");
    lp_buf_append(&b, leaves.data + 2, leaves.len - 2);
  }
  lp_buf_free(&leaves);
  if (b.len > SUMMARY_MAX) {
    b.len = SUMMARY_MAX - 3;
    /* Do not cut a UTF-8 sequence in half. */
    while (b.len > 0 && (b.data[b.len] & 0xC0) == 0x80)
      b.len--;
    lp_buf_append_str(&b, "...");
  }
  char *s = lp_dup_in(x->arena, lp_buf_cstr(&b));
  lp_buf_free(&b);
  return s;
}

static const char *resolve_ref(const struct ctx *x, enum lp_action_ref ref,
                               const char *literal) {
  switch (ref) {
  case LP_REF_FAVOURITE_BRAND:
    return lp_profile_favourite_brand(x->p);
  case LP_REF_FAVOURITE_CATEGORY:
    return lp_profile_favourite_category(x->p);
  case LP_REF_NONE:
    break;
  }
  return literal;
}

static int64_t clamp_i64(__int128 v) {
  if (v > INT64_MAX)
    return INT64_MAX;
  if (v < 0)
    return 0;
  return (int64_t)v;
}

/* "<name>" = text, or NULL, as one attribute (in the arena when set). */
static void put_attr(const struct ctx *x, struct lp_feature *f,
                     const char *name, const char *text) {
  f->name = lp_dup_in(x->arena, name);
  f->value = text ? lp_dup_in(x->arena, text) : NULL;
}

/*
 * A score sync's attributes: the member's scores just after this event
 * (model.h), as profile properties named loyalty_*, in a fixed order.
 * 0 when there is nothing to sync (no model in force, no order yet).
 */
static int sync_attributes(const struct ctx *x, struct lp_action *a) {
  const struct lp_model *m = x->p->model;
  struct lp_scores s;
  if (x->order)
    lp_model_score_after_order(m, x->p, x->order, &s);
  else
    lp_model_score(m, x->p, x->time_ms, &s);
  if (!m || !s.scored)
    return 0;
  enum { N = 10 };
  size_t size = N * sizeof(*a->attributes);
  a->attributes = x->arena ? lp_arena_alloc(x->arena, size) : lp_xmalloc(size);
  memset(a->attributes, 0, size);
  a->n_attributes = N;
  char num[40];
  struct lp_feature *f = a->attributes;
  put_attr(x, f++, "loyalty_model_version", m->version);
  /* Decimals as the rule fields print them (no printf on this path). */
  lp_money_format(micros_of(s.p_alive), num, sizeof(num));
  put_attr(x, f++, "loyalty_p_alive", num);
  put_attr(x, f++, "loyalty_churn_risk", lp_churn_band_name(s.churn));
  lp_money_format(micros_of(round(s.clv_12m * 100) / 100), num, sizeof(num));
  put_attr(x, f++, "loyalty_clv_12m", num);
  lp_money_format(micros_of(round(s.expected_spend * 100) / 100), num,
                  sizeof(num));
  put_attr(x, f++, "loyalty_expected_aov", num);
  lp_money_format(micros_of(s.expected_90d), num, sizeof(num));
  put_attr(x, f++, "loyalty_expected_orders_90d", num);
  put_attr(x, f++, "loyalty_segment", lp_value_segment_name(s.segment));
  put_attr(x, f++, "loyalty_next_best_reward",
           s.next_best >= 0 ? m->rewards[s.next_best].id : NULL);
  if (s.has_next)
    lp_time_format_iso8601(s.next_purchase_ms, num, sizeof(num));
  put_attr(x, f++, "loyalty_next_purchase", s.has_next ? num : NULL);
  lp_time_format_iso8601(x->time_ms, num, sizeof(num));
  put_attr(x, f++, "loyalty_scored_at", num);
  LP_ASSERT(f == a->attributes + N);
  return 1;
}

/*
 * Fills the decision's action and cost. Returns 0 when the rule yields no
 * action for this event (zero points, or a placeholder the member has no
 * value for): the rule then counts as not fired.
 */
static int build_action(const struct ctx *x, const struct lp_rule *r,
                        struct lp_action *a, int64_t *cost) {
  const struct lp_rule_action *ra = &r->action;
  const char *brand = resolve_ref(x, ra->brand_ref, ra->brand);
  const char *category = resolve_ref(x, ra->category_ref, ra->category);
  if ((ra->brand_ref && !brand) || (ra->category_ref && !category))
    return 0;
  int64_t points = ra->points;
  if (ra->per_unit_micros) {
    /* floor(total × per_unit × multiplier), all in micros: exact in 128
     * bits (9e15 × 1e9 × 1e9 < 2^127). */
    __int128 v = (__int128)x->order->total_micros * ra->per_unit_micros *
                 ra->multiplier_micros;
    points = v > 0 ? clamp_i64(v / ((__int128)1000000 * 1000000 * 1000000)) : 0;
  }
  if (ra->kind == LP_ACTION_POINTS && points <= 0)
    return 0;
  memset(a, 0, sizeof(*a));
  a->kind = ra->kind;
  a->points = ra->kind == LP_ACTION_POINTS ? points : 0;
  a->reward_id = lp_dup_in(x->arena, ra->reward_id);
  a->discount_percent = ra->percent;
  a->discount_amount_micros = ra->amount_micros;
  a->tier = lp_dup_in(x->arena, ra->tier);
  a->template_id = lp_dup_in(x->arena, ra->template_id);
  a->channel = lp_dup_in(x->arena, ra->channel);
  a->brand = lp_dup_in(x->arena, brand);
  a->category = lp_dup_in(x->arena, category);

  switch (ra->kind) {
  case LP_ACTION_POINTS:
    *cost = clamp_i64((__int128)points * x->rs->point_cost_micros);
    break;
  case LP_ACTION_REWARD:
    *cost = ra->cost_micros;
    break;
  case LP_ACTION_DISCOUNT_CODE:
    if (ra->percent) {
      /* A code is for a later order: this order's total (or, on a customer
       * event, the member's average order) is the best estimate of it. */
      int64_t base =
          x->order ? x->order->total_micros : lp_profile_aov_micros(x->p);
      *cost = clamp_i64((__int128)base * ra->percent / 100);
    } else {
      *cost = ra->amount_micros;
    }
    break;
  case LP_ACTION_TIER_CHANGE:
  case LP_ACTION_MESSAGE:
    *cost = 0;
    break;
  case LP_ACTION_SCORE_SYNC:
    *cost = 0;
    return sync_attributes(x, a);
  }
  return 1;
}

static void append_decision(struct ctx *x, const struct lp_rule *r,
                            const struct lp_action *a, int64_t cost,
                            struct lp_reward_decision **out, size_t *n_out) {
  const char *shop = x->order   ? x->order->shop
                     : x->timer ? x->timer->shop
                                : x->customer->shop;
  const char *customer = x->order   ? x->order->customer_id
                         : x->timer ? x->timer->customer_id
                                    : x->customer->customer_id;
  const char *event_id = x->order   ? x->order->event_id
                         : x->timer ? x->timer->trigger_id
                                    : x->customer->event_id;
  const char *kind = x->order   ? "order"
                     : x->timer ? lp_timer_kind_name(x->timer->kind)
                                : "customer";
  if (x->arena) {
    struct lp_reward_decision *grown =
        lp_arena_alloc(x->arena, (*n_out + 1) * sizeof(**out));
    if (*n_out)
      memcpy(grown, *out, *n_out * sizeof(**out));
    *out = grown;
  } else {
    *out = lp_xrealloc(*out, (*n_out + 1) * sizeof(**out));
  }
  struct lp_reward_decision *d = &(*out)[(*n_out)++];
  memset(d, 0, sizeof(*d));
  char id[LP_DECISION_ID_LEN + 1];
  lp_decision_id(r->id, r->version, shop, customer, event_id, id);
  d->decision_id = lp_dup_in(x->arena, id);
  d->shop = lp_dup_in(x->arena, shop);
  d->customer_id = lp_dup_in(x->arena, customer);
  d->trigger_event_id = lp_dup_in(x->arena, event_id);
  d->trigger_kind = lp_dup_in(x->arena, kind);
  d->rule_id = lp_dup_in(x->arena, r->id);
  d->rule_version = r->version;
  d->action = *a;
  d->estimated_cost_micros = cost;
  d->currency = x->order ? lp_dup_in(x->arena, x->order->currency) : NULL;
  d->event_time_ms = x->time_ms;
  d->approval = r->approval;
  if (x->rs->has_approval_threshold &&
      cost > x->rs->approval_threshold_micros &&
      d->approval < LP_APPROVAL_RECOMMENDED)
    d->approval = LP_APPROVAL_RECOMMENDED;

  struct lp_explanation *e = &d->explanation;
  e->rule_id = lp_dup_in(x->arena, r->id);
  e->rule_version = r->version;
  /* The model in force, whether or not this rule read a score: an audit
   * can tell which model every decision was made under. */
  e->model_version =
      x->p->model ? lp_dup_in(x->arena, x->p->model->version) : NULL;
  e->summary = make_summary(x, r);
  /* A rule that read a score also records the member's score card (the
   * scores a segment or band is derived from), so an audit sees what the
   * model said, not only the one value the rule compared. */
  static const enum lp_field_id card[] = {
      LP_F_PROFILE_P_ALIVE, LP_F_PROFILE_CHURN_RISK, LP_F_PROFILE_CLV_12M,
      LP_F_PROFILE_EXPECTED_AOV, LP_F_PROFILE_VALUE_SEGMENT};
  uint8_t extra[LP_ARRAY_LEN(card)];
  size_t n_extra = 0;
  int read_score = 0;
  for (size_t i = 0; i < r->n_features; i++)
    read_score |= r->features[i] >= LP_F_PROFILE_P_ALIVE;
  /* A score sync carries the whole card in its attributes already. */
  if (a->kind == LP_ACTION_SCORE_SYNC)
    read_score = 0;
  for (size_t c = 0; read_score && c < LP_ARRAY_LEN(card); c++) {
    int have = 0;
    for (size_t i = 0; i < r->n_features && !have; i++)
      have = r->features[i] == card[c];
    if (!have)
      extra[n_extra++] = (uint8_t)card[c];
  }
  e->n_features = r->n_features + n_extra;
  size_t fsize = (e->n_features ? e->n_features : 1) * sizeof(*e->features);
  e->features = x->arena ? lp_arena_alloc(x->arena, fsize) : lp_xmalloc(fsize);
  memset(e->features, 0, fsize);
  for (size_t i = 0; i < e->n_features; i++) {
    enum lp_field_id f = (enum lp_field_id)(
        i < r->n_features ? r->features[i] : extra[i - r->n_features]);
    e->features[i].name = lp_dup_in(x->arena, lp_rule_fields[f].name);
    e->features[i].value = feature_text(x, f);
  }
}

/*
 * Walks the rules in order. At most one rule per group fires (the first in
 * order whose condition holds and yields an action); once an exclusive
 * rule fires, rules of strictly lower priority are not considered.
 */
static void decide(struct ctx *x, struct lp_reward_decision **out,
                   size_t *n_out) {
  const struct lp_ruleset *rs = x->rs;
  uint64_t small[8] = {0};
  uint64_t *fired = small;
  if (rs->n_groups > 64 * LP_ARRAY_LEN(small))
    fired = lp_xcalloc((rs->n_groups + 63) / 64, sizeof(uint64_t));
  int blocked = 0;
  int32_t block_priority = 0;
  for (size_t i = 0; i < rs->n_rules; i++) {
    const struct lp_rule *r = &rs->rules[i];
    if (blocked && r->priority < block_priority)
      break; /* sorted by priority: every later rule is lower still */
    if (!(r->on & x->on) || !r->enabled)
      continue;
    if (x->only_rule &&
        (strcmp(r->id, x->only_rule) != 0 || r->timer.kind != x->timer->kind))
      continue;
    if (r->group >= 0 && (fired[r->group / 64] >> (r->group % 64)) & 1)
      continue;
    if (!eval_cond(x, &r->when))
      continue;
    struct lp_action a;
    int64_t cost = 0;
    if (!build_action(x, r, &a, &cost))
      continue;
    append_decision(x, r, &a, cost, out, n_out);
    if (r->group >= 0)
      fired[r->group / 64] |= 1ull << (r->group % 64);
    if (r->exclusive && !blocked) {
      blocked = 1;
      block_priority = r->priority;
    }
  }
  if (fired != small)
    free(fired);
}

void lp_rules_decide_order(const struct lp_ruleset *rs,
                           const struct lp_order_event *ev,
                           const struct lp_profile *before,
                           struct lp_arena *arena,
                           struct lp_reward_decision **out, size_t *n_out) {
  LP_ASSERT(rs && ev && before && out && n_out);
  struct ctx x = {0};
  x.rs = rs;
  x.on = LP_ON_ORDER;
  x.order = ev;
  x.p = before;
  x.time_ms = ev->event_time_ms;
  x.arena = arena;
  decide(&x, out, n_out);
}

void lp_rules_decide_customer(const struct lp_ruleset *rs,
                              const struct lp_customer_event *ev,
                              const struct lp_profile *before,
                              struct lp_arena *arena,
                              struct lp_reward_decision **out, size_t *n_out) {
  LP_ASSERT(rs && ev && before && out && n_out);
  struct ctx x = {0};
  x.rs = rs;
  x.on = LP_ON_CUSTOMER;
  x.customer = ev;
  x.p = before;
  x.time_ms = ev->event_time_ms;
  x.arena = arena;
  decide(&x, out, n_out);
}

void lp_rules_decide_timer(const struct lp_ruleset *rs,
                           const struct lp_timer_trigger *trigger,
                           const struct lp_profile *p,
                           const struct lp_activity_view *act,
                           struct lp_arena *arena,
                           struct lp_reward_decision **out, size_t *n_out) {
  LP_ASSERT(rs && trigger && trigger->rule_id && p && out && n_out);
  struct ctx x = {0};
  x.rs = rs;
  x.on = LP_ON_TIMER;
  x.timer = trigger;
  x.act = act;
  x.only_rule = trigger->rule_id;
  x.p = p;
  x.time_ms = trigger->due_ms;
  x.arena = arena;
  decide(&x, out, n_out);
}
