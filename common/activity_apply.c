/*
 * activity_apply.c — ActivityEvent -> the member's activity part, as pure
 * functions over the text format described in activity_apply.h. Owns the
 * deterministic decay arithmetic and the part's parser and serializer.
 *
 * profile_apply.c keeps its escaping helpers static, so the two small ones
 * needed here (escape, unescape) are written locally with the same rules.
 */
#include "activity_apply.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_apply.h"
#include "util.h"

#ifndef __SIZEOF_INT128__
#error "activity_apply.c needs a 128-bit integer type for exact decay"
#endif
typedef unsigned __int128 u128;

/* Fixed point with 62 fraction bits: 1.0 and one half-unit for rounding. */
#define Q62_ONE ((u128)1 << 62)
#define Q62_HALF ((u128)1 << 61)
#define FRACTION_BITS 32

/* 2^(-2^-k) for k = 1..32 in Q62, correctly rounded (computed once with
 * 80-digit decimal arithmetic). The fraction of a half-life, as a 32-bit
 * binary fraction, selects the factors to multiply. */
static const uint64_t half_pow[FRACTION_BITS] = {
    3260954456333195553ULL, 3877950241171266237ULL, 4228934724888366668ULL,
    4416165660797809419ULL, 4512867096753504463ULL, 4562008997483360349ULL,
    4586780255215411731ULL, 4599216278082138665ULL, 4605446927862164404ULL,
    4608565417332308035ULL, 4610125453837388245ULL, 4610905670110601999ULL,
    4611295827762151833ULL, 4611490918967884501ULL, 4611588467665893036ULL,
    4611637242788701951ULL, 4611661630543559956ULL, 4611673824469352645ULL,
    4611679921444339948ULL, 4611682969934856344ULL, 4611684494180870228ULL,
    4611685256304066092ULL, 4611685637365711255ULL, 4611685827896545643ULL,
    4611685923161965790ULL, 4611685970794676601ULL, 4611685994611032191ULL,
    4611686006519210032ULL, 4611686012473298964ULL, 4611686015450343433ULL,
    4611686016938865668ULL, 4611686017683126786ULL,
};

void lp_activity_params_default(struct lp_activity_params *p) {
  LP_ASSERT(p);
  p->half_life_ms = LP_ACTIVITY_DEFAULT_HALF_LIFE_MS;
  p->max_names = LP_ACTIVITY_DEFAULT_MAX_NAMES;
  p->floor_micros = LP_ACTIVITY_DEFAULT_FLOOR_MICROS;
}

/* The parameters to use: defaults for NULL or out-of-range values (they
 * come from configuration; a bad one must not crash the fold). */
static struct lp_activity_params effective(const struct lp_activity_params *p) {
  struct lp_activity_params e;
  lp_activity_params_default(&e);
  if (p) {
    if (p->half_life_ms > 0)
      e.half_life_ms = p->half_life_ms;
    e.max_names = p->max_names >= 0 ? p->max_names : 0;
    e.floor_micros = p->floor_micros;
  }
  return e;
}

/* The multiplier for elapsed_ms (> 0): 2^(-rest/H) in Q62 and the whole
 * halvings, so a fold decays all its scores with one computation.
 * *halvings >= 63 means everything decays to 0. */
static u128 decay_factor(int64_t elapsed_ms, int64_t half_life_ms,
                         int64_t *halvings) {
  if (half_life_ms <= 0)
    half_life_ms = LP_ACTIVITY_DEFAULT_HALF_LIFE_MS;
  *halvings = elapsed_ms / half_life_ms;
  int64_t rest = elapsed_ms % half_life_ms;
  /* rest / H as a 32-bit binary fraction (truncated), then the product of
   * the matching 2^(-2^-k) factors, each rounded half up. */
  uint64_t frac = (uint64_t)(((u128)(uint64_t)rest << FRACTION_BITS) /
                             (uint64_t)half_life_ms);
  u128 f = Q62_ONE;
  for (int k = 0; k < FRACTION_BITS; k++)
    if (frac & ((uint64_t)1 << (FRACTION_BITS - 1 - k)))
      f = (f * half_pow[k] + Q62_HALF) >> 62;
  return f;
}

/* score (> 0) times the factor, rounded half up. */
static int64_t decay_by(int64_t score, u128 f, int64_t halvings) {
  if (score <= 0)
    return score;
  if (halvings >= 63)
    return 0;
  u128 x = ((u128)(uint64_t)score * f + Q62_HALF) >> 62;
  if (halvings > 0)
    x = (x + ((u128)1 << (halvings - 1))) >> halvings;
  return (int64_t)x;
}

int64_t lp_activity_decay(int64_t score, int64_t elapsed_ms,
                          int64_t half_life_ms) {
  if (score <= 0 || elapsed_ms <= 0)
    return score;
  int64_t halvings;
  u128 f = decay_factor(elapsed_ms, half_life_ms, &halvings);
  return decay_by(score, f, halvings);
}

/* ---- the part in memory ---- */

struct score {
  char *key; /* escaped, "v:c:<name>" or "v:b:<name>" */
  int64_t v;
};

struct part {
  int has_at, has_views, has_cart, has_cart_at, has_lines;
  int64_t at, views, cart, cart_at, cart_lines;
  char *cur, *cart_id, *cart_top; /* escaped; NULL = absent */
  enum lp_cart_state state;
  struct score *s;
  size_t n, cap;
  int malformed; /* a known line had a bad value */
};

static void part_free(struct part *p) {
  free(p->cur);
  free(p->cart_id);
  free(p->cart_top);
  for (size_t i = 0; i < p->n; i++)
    free(p->s[i].key);
  free(p->s);
  memset(p, 0, sizeof(*p));
}

static void clear_cart_fields(struct part *p) {
  p->has_cart = p->has_lines = 0;
  p->cart = p->cart_lines = 0;
  free(p->cur);
  free(p->cart_id);
  free(p->cart_top);
  p->cur = p->cart_id = p->cart_top = NULL;
  p->state = LP_CART_NONE;
}

static int64_t add_sat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

/* a - b, saturated: stored times may be garbage. */
static int64_t sub_sat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r))
    return b < 0 ? INT64_MAX : INT64_MIN;
  return r;
}

static char *escape(const char *s) {
  struct lp_buf b;
  lp_buf_init(&b);
  lp_state_escape_into(&b, s);
  char *out = lp_xstrdup(lp_buf_cstr(&b));
  lp_buf_free(&b);
  return out;
}

/* Unescapes s (caller frees). */
static char *unescape(const char *s) {
  return lp_state_unescape(s, strlen(s));
}

static struct score *score_find(struct part *p, const char *key) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->s[i].key, key) == 0)
      return &p->s[i];
  return NULL;
}

/* Appends key (taken over) without looking for it. */
static void score_append(struct part *p, char *key, int64_t v) {
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 16;
    p->s = lp_xrealloc(p->s, p->cap * sizeof(*p->s));
  }
  p->s[p->n].key = key;
  p->s[p->n].v = v;
  p->n++;
}

/* Sets key to v (key is taken over). */
static void score_put(struct part *p, char *key, int64_t v) {
  struct score *e = score_find(p, key);
  if (e) {
    free(key);
    e->v = v;
    return;
  }
  score_append(p, key, v);
}

static int is_score_key(const char *k, size_t n) {
  return n > 4 && k[0] == 'v' && k[1] == ':' && (k[2] == 'c' || k[2] == 'b') &&
         k[3] == ':';
}

static void set_str(char **dst, const char *v, size_t n) {
  free(*dst);
  *dst = lp_xstrndup(v, n);
}

/* One "key<TAB>value" line (len bytes, no newline). */
static void parse_line(struct part *p, const char *line, size_t len) {
  const char *tab = memchr(line, '\t', len);
  if (!tab)
    return;
  size_t kn = (size_t)(tab - line);
  const char *v = tab + 1;
  size_t vn = len - kn - 1;
  int64_t num = 0;
  int num_ok = lp_state_parse_i64(v, vn, &num) == 0;
#define KEY_IS(s) (kn == sizeof(s) - 1 && memcmp(line, s, kn) == 0)
  if (KEY_IS("at") || KEY_IS("views") || KEY_IS("cart") || KEY_IS("cart_at") ||
      KEY_IS("cart_lines") || is_score_key(line, kn)) {
    if (!num_ok || (!KEY_IS("at") && !KEY_IS("cart_at") && num < 0)) {
      p->malformed = 1;
      return;
    }
    if (KEY_IS("at"))
      p->has_at = 1, p->at = num;
    else if (KEY_IS("views"))
      p->has_views = 1, p->views = num;
    else if (KEY_IS("cart"))
      p->has_cart = 1, p->cart = num;
    else if (KEY_IS("cart_at"))
      p->has_cart_at = 1, p->cart_at = num;
    else if (KEY_IS("cart_lines"))
      p->has_lines = 1, p->cart_lines = num;
    else
      score_append(p, lp_xstrndup(line, kn), num);
  } else if (KEY_IS("cur")) {
    set_str(&p->cur, v, vn);
  } else if (KEY_IS("cart_id")) {
    set_str(&p->cart_id, v, vn);
  } else if (KEY_IS("cart_top")) {
    set_str(&p->cart_top, v, vn);
  } else if (KEY_IS("cart_state")) {
    if (vn == 4 && memcmp(v, "open", 4) == 0)
      p->state = LP_CART_OPEN;
    else if (vn == 8 && memcmp(v, "checkout", 8) == 0)
      p->state = LP_CART_CHECKOUT;
    else if (vn == 9 && memcmp(v, "abandoned", 9) == 0)
      p->state = LP_CART_ABANDONED;
    else
      p->malformed = 1;
  }
#undef KEY_IS
  /* anything else: unknown, ignored */
}

/* By key, then the larger value first. */
static int cmp_key_then_value(const void *a, const void *b) {
  const struct score *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c != 0)
    return c;
  return x->v > y->v ? -1 : x->v < y->v;
}

static void part_parse(struct part *p, const char *text) {
  memset(p, 0, sizeof(*p));
  if (!text)
    return;
  const char *s = text;
  while (*s) {
    const char *nl = strchr(s, '\n');
    size_t len = nl ? (size_t)(nl - s) : strlen(s);
    parse_line(p, s, len);
    s += len + (nl ? 1 : 0);
  }
  /* Sorted by key, a repeated key (only in damaged text) keeps its
   * largest value: one rule, whatever order the copies came in. */
  if (p->n > 1)
    qsort(p->s, p->n, sizeof(*p->s), cmp_key_then_value);
  size_t kept = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (kept > 0 && strcmp(p->s[kept - 1].key, p->s[i].key) == 0) {
      free(p->s[i].key);
      continue;
    }
    p->s[kept++] = p->s[i];
  }
  p->n = kept;
}

static int cmp_key(const void *a, const void *b) {
  return strcmp(((const struct score *)a)->key, ((const struct score *)b)->key);
}

/* Kind (c/b) first, then highest score, then smaller key. */
static int cmp_rank(const void *a, const void *b) {
  const struct score *x = a, *y = b;
  if (x->key[2] != y->key[2])
    return x->key[2] < y->key[2] ? -1 : 1;
  if (x->v != y->v)
    return x->v > y->v ? -1 : 1;
  return strcmp(x->key, y->key);
}

/* Drops scores below the floor and keeps max_names per kind. */
static void prune(struct part *p, const struct lp_activity_params *e) {
  /* The common case (nothing to drop) needs no ranking sort. */
  size_t n_c = 0, n_b = 0;
  int drop = 0;
  for (size_t i = 0; i < p->n && !drop; i++) {
    drop = p->s[i].v < e->floor_micros;
    if (p->s[i].key[2] == 'c')
      n_c++;
    else
      n_b++;
  }
  if (!drop && n_c <= (size_t)e->max_names && n_b <= (size_t)e->max_names)
    return;
  if (p->n > 1)
    qsort(p->s, p->n, sizeof(*p->s), cmp_rank);
  size_t kept = 0, in_kind = 0;
  char kind = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (p->s[i].key[2] != kind) {
      kind = p->s[i].key[2];
      in_kind = 0;
    }
    if (p->s[i].v < e->floor_micros || in_kind >= (size_t)e->max_names) {
      free(p->s[i].key);
      continue;
    }
    in_kind++;
    p->s[kept++] = p->s[i];
  }
  p->n = kept;
}

/* "key<TAB>v\n" without printf: the hot path writes one per score. */
static void append_line(struct lp_buf *b, const char *key, int64_t v) {
  char num[24], *o = num + sizeof(num);
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    *--o = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    *--o = '-';
  lp_buf_append_str(b, key);
  lp_buf_append_byte(b, '\t');
  lp_buf_append(b, o, (size_t)(num + sizeof(num) - o));
  lp_buf_append_byte(b, '\n');
}

static char *part_serialize(struct part *p) {
  struct lp_buf b;
  lp_buf_init(&b);
  if (p->has_at)
    lp_buf_appendf(&b, "at\t%lld\n", (long long)p->at);
  if (p->has_views)
    lp_buf_appendf(&b, "views\t%lld\n", (long long)p->views);
  if (p->has_cart)
    lp_buf_appendf(&b, "cart\t%lld\n", (long long)p->cart);
  if (p->cur)
    lp_buf_appendf(&b, "cur\t%s\n", p->cur);
  if (p->has_cart_at)
    lp_buf_appendf(&b, "cart_at\t%lld\n", (long long)p->cart_at);
  if (p->cart_id)
    lp_buf_appendf(&b, "cart_id\t%s\n", p->cart_id);
  if (p->cart_top)
    lp_buf_appendf(&b, "cart_top\t%s\n", p->cart_top);
  if (p->has_lines)
    lp_buf_appendf(&b, "cart_lines\t%lld\n", (long long)p->cart_lines);
  if (p->state != LP_CART_NONE)
    lp_buf_appendf(&b, "cart_state\t%s\n", lp_cart_state_name(p->state));
  int sorted = 1;
  for (size_t i = 1; i < p->n && sorted; i++)
    sorted = strcmp(p->s[i - 1].key, p->s[i].key) < 0;
  if (!sorted)
    qsort(p->s, p->n, sizeof(*p->s), cmp_key);
  for (size_t i = 0; i < p->n; i++)
    append_line(&b, p->s[i].key, p->s[i].v);
  char *out = lp_xstrdup(lp_buf_cstr(&b));
  lp_buf_free(&b);
  return out;
}

/* ---- the fold ---- */

/* Adds weight (given at the event's time, delayed_ms before `at`) to the
 * score of kind ('c' or 'b') and name; absent or empty names add nothing. */
static void add_weight(struct part *p, char kind, const char *name,
                       int64_t weight, int64_t delayed_ms,
                       const struct lp_activity_params *e) {
  if (!name || !*name)
    return;
  struct lp_buf b;
  lp_buf_init(&b);
  lp_buf_appendf(&b, "v:%c:", kind);
  lp_state_escape_into(&b, name);
  char *key = lp_xstrdup(lp_buf_cstr(&b));
  lp_buf_free(&b);
  int64_t w = lp_activity_decay(weight, delayed_ms, e->half_life_ms);
  struct score *s = score_find(p, key);
  score_put(p, key, add_sat(s ? s->v : 0, w));
}

/* The line's value (quantity * unit price), saturated. */
static int64_t line_value(const struct lp_line_item *li) {
  int64_t v;
  if (li->quantity <= 0 || li->unit_price_micros <= 0)
    return 0;
  if (__builtin_mul_overflow((int64_t)li->quantity, li->unit_price_micros, &v))
    return INT64_MAX;
  return v;
}

static void replace_cart(struct part *p, const struct lp_activity_event *ev) {
  clear_cart_fields(p);
  p->has_cart = 1;
  p->cart = ev->has_cart_value && ev->cart_value_micros > 0
                ? ev->cart_value_micros
                : 0;
  if (ev->currency)
    p->cur = escape(ev->currency);
  if (ev->cart_id)
    p->cart_id = escape(ev->cart_id);
  /* The most valuable line with an identifier; ties to the earlier line. */
  const char *top = NULL;
  int64_t best = -1;
  for (size_t i = 0; i < ev->n_line_items; i++) {
    const struct lp_line_item *li = &ev->line_items[i];
    const char *id = li->sku && *li->sku ? li->sku : li->product_id;
    if (!id || !*id)
      continue;
    int64_t v = line_value(li);
    if (v > best) {
      best = v;
      top = id;
    }
  }
  if (top)
    p->cart_top = escape(top);
  p->has_lines = 1;
  p->cart_lines = (int64_t)ev->n_line_items;
  p->state = LP_CART_OPEN;
}

void lp_activity_apply(const char *own, const struct lp_activity_event *ev,
                       const struct lp_activity_params *params,
                       char **new_own) {
  LP_ASSERT(ev && new_own);
  struct lp_activity_params e = effective(params);
  struct part p;
  part_parse(&p, own);
  int64_t t = ev->event_time_ms;

  /* Decay moves forward only: a newer event brings every score to its
   * time; an older one is folded in at `at` below. */
  if (!p.has_at) {
    p.has_at = 1;
    p.at = t;
  } else if (t > p.at) {
    int64_t halvings;
    u128 f = decay_factor(sub_sat(t, p.at), e.half_life_ms, &halvings);
    for (size_t i = 0; i < p.n; i++)
      p.s[i].v = decay_by(p.s[i].v, f, halvings);
    p.at = t;
  }
  int64_t delayed = sub_sat(p.at, t);

  int cart_newer = !p.has_cart_at || t >= p.cart_at;
  switch (ev->kind) {
  case LP_ACTIVITY_PAGE_VIEW:
  case LP_ACTIVITY_PRODUCT_VIEW: {
    int64_t w = ev->kind == LP_ACTIVITY_PRODUCT_VIEW
                    ? LP_ACTIVITY_SCORE_ONE
                    : LP_ACTIVITY_SCORE_ONE / 2;
    p.has_views = 1;
    p.views = add_sat(p.views, 1);
    add_weight(&p, 'c', ev->category, w, delayed, &e);
    add_weight(&p, 'b', ev->brand, w, delayed, &e);
    break;
  }
  case LP_ACTIVITY_CART_UPDATED:
    for (size_t i = 0; i < ev->n_line_items; i++) {
      const struct lp_line_item *li = &ev->line_items[i];
      add_weight(&p, 'c', li->category, 2 * LP_ACTIVITY_SCORE_ONE, delayed, &e);
      add_weight(&p, 'b', li->brand, 2 * LP_ACTIVITY_SCORE_ONE, delayed, &e);
    }
    if (cart_newer) {
      replace_cart(&p, ev);
      p.has_cart_at = 1;
      p.cart_at = t;
    }
    break;
  case LP_ACTIVITY_CHECKOUT_STARTED:
  case LP_ACTIVITY_CART_ABANDONED:
    if (cart_newer) {
      p.state = ev->kind == LP_ACTIVITY_CHECKOUT_STARTED ? LP_CART_CHECKOUT
                                                         : LP_CART_ABANDONED;
      p.has_cart_at = 1;
      p.cart_at = t;
      if (ev->cart_id) {
        free(p.cart_id);
        p.cart_id = escape(ev->cart_id);
      }
      if (ev->has_cart_value && ev->cart_value_micros >= 0) {
        p.has_cart = 1;
        p.cart = ev->cart_value_micros;
        if (ev->currency) {
          free(p.cur);
          p.cur = escape(ev->currency);
        }
      }
    }
    break;
  default: /* reviews, referrals, follows: only the activity time */
    break;
  }
  prune(&p, &e);
  *new_own = part_serialize(&p);
  part_free(&p);
}

void lp_activity_clear_cart(const char *own, int64_t event_time_ms,
                            char **new_own) {
  LP_ASSERT(new_own);
  struct part p;
  part_parse(&p, own);
  if (!p.has_cart_at || event_time_ms >= p.cart_at) {
    clear_cart_fields(&p);
    p.has_cart_at = 1;
    p.cart_at = event_time_ms;
  }
  *new_own = part_serialize(&p);
  part_free(&p);
}

/* ---- the reader ---- */

const char *lp_cart_state_name(enum lp_cart_state s) {
  switch (s) {
  case LP_CART_NONE:
    return "none";
  case LP_CART_OPEN:
    return "open";
  case LP_CART_CHECKOUT:
    return "checkout";
  case LP_CART_ABANDONED:
    return "abandoned";
  }
  return NULL;
}

int lp_activity_part_parse(const char *own, struct lp_activity_view *out) {
  LP_ASSERT(out);
  memset(out, 0, sizeof(*out));
  struct part p;
  part_parse(&p, own);
  out->at = p.at;
  out->score_time_ms = p.at;
  out->views = p.views;
  out->cart_state = p.state;
  out->cart_micros = p.cart;
  out->cart_at = p.cart_at;
  out->cart_lines = p.cart_lines;
  out->currency = p.cur ? unescape(p.cur) : NULL;
  out->cart_id = p.cart_id ? unescape(p.cart_id) : NULL;
  out->cart_top = p.cart_top ? unescape(p.cart_top) : NULL;
  const struct score *top_c = NULL, *top_b = NULL;
  for (size_t i = 0; i < p.n; i++) {
    const struct score *s = &p.s[i];
    const struct score **top = s->key[2] == 'c' ? &top_c : &top_b;
    if (s->key[2] == 'c')
      out->n_categories++;
    else
      out->n_brands++;
    if (!*top || s->v > (*top)->v ||
        (s->v == (*top)->v && strcmp(s->key, (*top)->key) < 0))
      *top = s;
  }
  if (top_c) {
    out->top_category = unescape(top_c->key + 4);
    out->top_category_score = top_c->v;
  }
  if (top_b) {
    out->top_brand = unescape(top_b->key + 4);
    out->top_brand_score = top_b->v;
  }
  int rc = p.malformed ? -1 : 0;
  part_free(&p);
  return rc;
}

void lp_activity_view_at(struct lp_activity_view *v, int64_t now_ms,
                         const struct lp_activity_params *params) {
  LP_ASSERT(v);
  struct lp_activity_params e = effective(params);
  if (now_ms > v->score_time_ms) {
    int64_t dt = sub_sat(now_ms, v->score_time_ms);
    v->top_category_score =
        lp_activity_decay(v->top_category_score, dt, e.half_life_ms);
    v->top_brand_score =
        lp_activity_decay(v->top_brand_score, dt, e.half_life_ms);
    v->score_time_ms = now_ms;
  }
  v->cart_age_ms =
      v->cart_at && now_ms > v->cart_at ? sub_sat(now_ms, v->cart_at) : 0;
}

void lp_activity_view_clear(struct lp_activity_view *v) {
  if (!v)
    return;
  free(v->top_category);
  free(v->top_brand);
  free(v->currency);
  free(v->cart_id);
  free(v->cart_top);
  memset(v, 0, sizeof(*v));
}
