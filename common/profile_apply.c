/*
 * profile_apply.c — event -> stored member state, as pure functions over
 * the text format described in profile_apply.h.
 */
#include "profile_apply.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct kv {
  char *k; /* escaped */
  char *v; /* escaped */
};

struct kvs {
  struct kv *a;
  size_t n, cap;
};

static void kvs_free(struct kvs *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->a[i].k);
    free(s->a[i].v);
  }
  free(s->a);
  memset(s, 0, sizeof(*s));
}

static struct kv *kvs_find(struct kvs *s, const char *k) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->a[i].k, k) == 0)
      return &s->a[i];
  return NULL;
}

static void kvs_set(struct kvs *s, const char *k, const char *v) {
  struct kv *e = kvs_find(s, k);
  if (e) {
    free(e->v);
    e->v = lp_xstrdup(v);
    return;
  }
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->a = lp_xrealloc(s->a, s->cap * sizeof(*s->a));
  }
  s->a[s->n].k = lp_xstrdup(k);
  s->a[s->n].v = lp_xstrdup(v);
  s->n++;
}

static int64_t kvs_int(struct kvs *s, const char *k) {
  struct kv *e = kvs_find(s, k);
  return e ? strtoll(e->v, NULL, 10) : 0;
}

static void kvs_set_int(struct kvs *s, const char *k, int64_t v) {
  char num[24];
  snprintf(num, sizeof(num), "%lld", (long long)v);
  kvs_set(s, k, num);
}

/* Parses "k\tv\n" lines (escaped text kept as is). */
static void kvs_parse(struct kvs *s, const char *text) {
  if (!text)
    return;
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    const char *end = nl ? nl : p + strlen(p);
    const char *tab = memchr(p, '\t', (size_t)(end - p));
    if (tab) {
      char *k = lp_xstrndup(p, (size_t)(tab - p));
      char *v = lp_xstrndup(tab + 1, (size_t)(end - tab - 1));
      if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->a = lp_xrealloc(s->a, s->cap * sizeof(*s->a));
      }
      s->a[s->n].k = k;
      s->a[s->n].v = v;
      s->n++;
    }
    p = nl ? nl + 1 : end;
  }
}

static int cmp_kv(const void *a, const void *b) {
  return strcmp(((const struct kv *)a)->k, ((const struct kv *)b)->k);
}

/* Serializes: the fixed keys in the given order, then the rest sorted. */
static char *kvs_serialize(struct kvs *s, const char *const *fixed,
                           size_t n_fixed) {
  struct lp_buf b;
  lp_buf_init(&b);
  for (size_t i = 0; i < n_fixed; i++) {
    struct kv *e = kvs_find(s, fixed[i]);
    if (e)
      lp_buf_appendf(&b, "%s\t%s\n", e->k, e->v);
  }
  if (s->n > 1)
    qsort(s->a, s->n, sizeof(*s->a), cmp_kv);
  for (size_t i = 0; i < s->n; i++) {
    int is_fixed = 0;
    for (size_t j = 0; j < n_fixed && !is_fixed; j++)
      is_fixed = strcmp(s->a[i].k, fixed[j]) == 0;
    if (!is_fixed)
      lp_buf_appendf(&b, "%s\t%s\n", s->a[i].k, s->a[i].v);
  }
  char *out = lp_xstrdup(lp_buf_cstr(&b));
  lp_buf_free(&b);
  return out;
}

void lp_state_escape_into(struct lp_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '\\')
      lp_buf_append_str(b, "\\\\");
    else if (*s == '\t')
      lp_buf_append_str(b, "\\t");
    else if (*s == '\n')
      lp_buf_append_str(b, "\\n");
    else
      lp_buf_append_byte(b, (uint8_t)*s);
  }
}

static const char *const order_fixed[] = {"spend", "orders", "first",
                                          "last",  "placed", "days"};
static const char *const record_fixed[] = {"s", "x"};
static const char *const customer_fixed[] = {"cu",       "consent", "tags",
                                             "birthday", "email",   "created"};

/* ---- order part and order record: parsed in place, no printf ---- */

/* One "key<TAB>integer" line of an order part or record. key points into
 * the parsed text or, for a key added by this event, into owned memory. */
struct ent {
  const char *k;
  size_t klen;
  int64_t v;
  char *owned;
};

/* The fixed fields come first in a fixed order; the rest (affinities) are
 * kept sorted by key, as stored. */
struct ints {
  const char *const *fixed;
  size_t n_fixed;
  int64_t fv[6];
  int fpresent[6];
  struct ent *e;
  size_t n, cap;
};

static void ints_free(struct ints *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->e[i].owned);
  free(s->e);
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
  int c = memcmp(a, b, alen < blen ? alen : blen);
  return c ? c : (alen < blen ? -1 : alen > blen);
}

/* Index of key, or -(insertion point) - 1. */
static ptrdiff_t ints_find(const struct ints *s, const char *k, size_t klen) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = key_cmp(s->e[mid].k, s->e[mid].klen, k, klen);
    if (c == 0)
      return (ptrdiff_t)mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -(ptrdiff_t)lo - 1;
}

static int64_t parse_int_n(const char *p, size_t n) {
  int64_t v = 0;
  int neg = n > 0 && p[0] == '-';
  for (size_t i = neg; i < n && p[i] >= '0' && p[i] <= '9'; i++)
    v = v * 10 + (p[i] - '0');
  return neg ? -v : v;
}

static void ints_parse(struct ints *s, const char *text,
                       const char *const *fixed, size_t n_fixed) {
  memset(s, 0, sizeof(*s));
  s->fixed = fixed;
  s->n_fixed = n_fixed;
  const char *stop = text ? text + strlen(text) : NULL;
  for (const char *p = text; p && p < stop;) {
    const char *nl = memchr(p, '\n', (size_t)(stop - p));
    const char *end = nl ? nl : stop;
    const char *tab = memchr(p, '\t', (size_t)(end - p));
    if (tab) {
      size_t klen = (size_t)(tab - p);
      int64_t v = parse_int_n(tab + 1, (size_t)(end - tab - 1));
      size_t f = 0;
      /* Affinity keys ("c:", "b:") never match a fixed key. */
      if (klen > 1 && p[1] == ':')
        f = n_fixed;
      while (f < n_fixed && !(fixed[f][0] == p[0] && strlen(fixed[f]) == klen &&
                              memcmp(fixed[f], p, klen) == 0))
        f++;
      if (f < n_fixed) {
        s->fv[f] = v;
        s->fpresent[f] = 1;
      } else {
        if (s->n == s->cap) {
          s->cap = s->cap ? 2 * s->cap : 16;
          s->e = lp_xrealloc(s->e, s->cap * sizeof(*s->e));
        }
        /* Stored text is sorted; keep it so even if it was not. */
        ptrdiff_t at = ints_find(s, p, klen);
        size_t pos = at >= 0 ? (size_t)at : (size_t)(-at - 1);
        memmove(&s->e[pos + 1], &s->e[pos], (s->n - pos) * sizeof(*s->e));
        s->e[pos] = (struct ent){p, klen, v, NULL};
        s->n++;
      }
    }
    p = nl ? nl + 1 : end;
  }
}

static int64_t *ints_fixed(struct ints *s, size_t f) {
  s->fpresent[f] = 1;
  return &s->fv[f];
}

/* The entry for key, created (with value 0) when create is set. */
static struct ent *ints_get(struct ints *s, const char *k, size_t klen,
                            int create) {
  ptrdiff_t at = ints_find(s, k, klen);
  if (at >= 0)
    return &s->e[at];
  if (!create)
    return NULL;
  size_t pos = (size_t)(-at - 1);
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 16;
    s->e = lp_xrealloc(s->e, s->cap * sizeof(*s->e));
  }
  memmove(&s->e[pos + 1], &s->e[pos], (s->n - pos) * sizeof(*s->e));
  char *owned = lp_xstrndup(k, klen);
  s->e[pos] = (struct ent){owned, klen, 0, owned};
  s->n++;
  return &s->e[pos];
}

static size_t ints_count_prefix(const struct ints *s, char prefix) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->e[i].klen > 1 && s->e[i].k[0] == prefix && s->e[i].k[1] == ':')
      n++;
  return n;
}

/* Writes "key<TAB>value<LF>" at o; returns the end. */
static char *put_line(char *o, const char *k, size_t klen, int64_t v) {
  memcpy(o, k, klen);
  o += klen;
  *o++ = '\t';
  char tmp[24], *p = lp_i64_digits_back(tmp + sizeof(tmp), v);
  size_t n = (size_t)(tmp + sizeof(tmp) - p);
  memcpy(o, p, n);
  o += n;
  *o++ = '\n';
  return o;
}

/* Sized once (an integer takes at most 20 bytes), written in one pass. */
static char *ints_serialize(const struct ints *s) {
  size_t size = 1;
  for (size_t f = 0; f < s->n_fixed; f++)
    if (s->fpresent[f])
      size += strlen(s->fixed[f]) + 22;
  for (size_t i = 0; i < s->n; i++)
    size += s->e[i].klen + 22;
  char *out = lp_xmalloc(size), *o = out;
  for (size_t f = 0; f < s->n_fixed; f++)
    if (s->fpresent[f])
      o = put_line(o, s->fixed[f], strlen(s->fixed[f]), s->fv[f]);
  for (size_t i = 0; i < s->n; i++)
    o = put_line(o, s->e[i].k, s->e[i].klen, s->e[i].v);
  *o = '\0';
  return out;
}

/* UTC day number of an epoch-ms time (floor). */
static int64_t day_of(int64_t ms) {
  int64_t q = ms / 86400000LL;
  return ms % 86400000LL < 0 ? q - 1 : q;
}

int lp_order_adds_purchase_day(int64_t first_ms, int64_t last_ms,
                               int64_t at_ms) {
  return first_ms == 0 || (day_of(at_ms) != day_of(first_ms) &&
                           day_of(at_ms) != day_of(last_ms));
}

/* "c:"/"b:" + escaped name into key (reset first). */
static void build_aff_key(struct lp_buf *key, char prefix, const char *name) {
  lp_buf_reset(key);
  lp_buf_append_byte(key, (uint8_t)prefix);
  lp_buf_append_byte(key, ':');
  lp_state_escape_into(key, name);
}

enum { F_SPEND, F_ORDERS, F_FIRST, F_LAST, F_PLACED, F_DAYS };
enum { R_S, R_X };

static void add_affinity(struct ints *prof, struct ints *rec,
                         struct lp_buf *key, char prefix, const char *name,
                         int64_t amt, int max, size_t *count) {
  if (!name || !*name)
    return;
  build_aff_key(key, prefix, name);
  struct ent *e = ints_get(prof, (const char *)key->data, key->len, 0);
  if (!e) {
    if ((int)*count >= max)
      return;
    (*count)++;
    e = ints_get(prof, (const char *)key->data, key->len, 1);
  }
  e->v += amt;
  ints_get(rec, (const char *)key->data, key->len, 1)->v += amt;
}

void lp_profile_apply_order(const char *own, const char *rec_text,
                            const struct lp_order_event *ev, int max_affinities,
                            char **new_own, char **new_rec,
                            int *previously_applied) {
  struct ints prof, rec;
  struct lp_buf key;
  lp_buf_init(&key);
  ints_parse(&prof, own, order_fixed, LP_ARRAY_LEN(order_fixed));
  ints_parse(&rec, rec_text, record_fixed, LP_ARRAY_LEN(record_fixed));
  *previously_applied = rec_text != NULL;
  *new_rec = NULL;
  int rec_changed = 0;
  if (ev->status == LP_ORDER_CREATED || ev->status == LP_ORDER_PAID) {
    if (!rec_text) {
      *ints_fixed(&prof, F_SPEND) += ev->total_micros;
      /* A part written before "placed" existed: its orders were placed. */
      if (!prof.fpresent[F_PLACED])
        prof.fv[F_PLACED] = prof.fv[F_ORDERS];
      *ints_fixed(&prof, F_PLACED) += 1; /* never taken back */
      *ints_fixed(&prof, F_ORDERS) += 1;
      /* A part written before "days" existed: one day per order placed. */
      if (!prof.fpresent[F_DAYS])
        prof.fv[F_DAYS] = prof.fv[F_PLACED] - 1;
      if (lp_order_adds_purchase_day(prof.fv[F_FIRST], prof.fv[F_LAST],
                                     ev->event_time_ms))
        *ints_fixed(&prof, F_DAYS) += 1;
      else
        (void)ints_fixed(&prof, F_DAYS);
      int64_t *first = ints_fixed(&prof, F_FIRST);
      if (*first == 0 || ev->event_time_ms < *first)
        *first = ev->event_time_ms;
      int64_t *last = ints_fixed(&prof, F_LAST);
      if (ev->event_time_ms > *last)
        *last = ev->event_time_ms;
      *ints_fixed(&rec, R_S) = ev->total_micros;
      size_t ncat = ints_count_prefix(&prof, 'c');
      size_t nbrand = ints_count_prefix(&prof, 'b');
      for (size_t i = 0; i < ev->n_line_items; i++) {
        const struct lp_line_item *li = &ev->line_items[i];
        int64_t amt = (int64_t)li->quantity * li->unit_price_micros;
        add_affinity(&prof, &rec, &key, 'c', li->category, amt, max_affinities,
                     &ncat);
        add_affinity(&prof, &rec, &key, 'b', li->brand, amt, max_affinities,
                     &nbrand);
      }
      rec_changed = 1;
    }
  } else if (!rec_text) {
    /* A cancellation before its order: a tombstone keeps the late order
     * from counting. A refund of an unknown order changes nothing. */
    if (ev->status == LP_ORDER_CANCELLED) {
      *ints_fixed(&rec, R_X) = 1;
      rec_changed = 1;
    }
  } else if (!rec.fpresent[R_X]) {
    int64_t left = rec.fv[R_S];
    int64_t amount = left;
    if (ev->status == LP_ORDER_REFUNDED && ev->total_micros < left)
      amount = ev->total_micros;
    *ints_fixed(&prof, F_SPEND) -= amount;
    left -= amount;
    *ints_fixed(&rec, R_S) = left;
    if (ev->status == LP_ORDER_CANCELLED) {
      for (size_t i = 0; i < rec.n; i++) {
        struct ent *r = &rec.e[i];
        struct ent *p = ints_get(&prof, r->k, r->klen, 1);
        p->v -= r->v;
        r->v = 0;
      }
    } else {
      for (size_t i = 0; i < ev->n_line_items; i++) {
        const struct lp_line_item *li = &ev->line_items[i];
        int64_t amt = (int64_t)li->quantity * li->unit_price_micros;
        const char *names[2] = {li->category, li->brand};
        for (int j = 0; j < 2; j++) {
          if (!names[j] || !*names[j])
            continue;
          build_aff_key(&key, j == 0 ? 'c' : 'b', names[j]);
          struct ent *r = ints_get(&rec, (const char *)key.data, key.len, 0);
          int64_t had = r ? r->v : 0;
          int64_t take = had < amt ? had : amt;
          if (take > 0) {
            ints_get(&prof, (const char *)key.data, key.len, 1)->v -= take;
            r->v = had - take;
          }
        }
      }
    }
    if (ev->status == LP_ORDER_CANCELLED || left <= 0) {
      *ints_fixed(&prof, F_ORDERS) -= 1;
      *ints_fixed(&rec, R_X) = 1;
    }
    rec_changed = 1;
  }
  *new_own = ints_serialize(&prof);
  if (rec_changed)
    *new_rec = ints_serialize(&rec);
  ints_free(&prof);
  ints_free(&rec);
  lp_buf_free(&key);
}

void lp_profile_after_order(const struct lp_profile *before,
                            const struct lp_order_event *ev,
                            struct lp_profile *after) {
  *after = *before;
  if ((ev->status != LP_ORDER_CREATED && ev->status != LP_ORDER_PAID) ||
      before->order_previously_applied)
    return;
  int64_t t = ev->event_time_ms;
  after->exists = 1;
  if (lp_order_adds_purchase_day(before->first_order_ms, before->last_order_ms,
                                 t))
    after->purchase_days++;
  after->order_count++;
  after->orders_placed++;
  after->lifetime_spend_micros += ev->total_micros;
  if (after->first_order_ms == 0 || t < after->first_order_ms)
    after->first_order_ms = t;
  if (t > after->last_order_ms)
    after->last_order_ms = t;
}

void lp_profile_apply_customer(const char *own,
                               const struct lp_customer_event *ev,
                               char **new_own) {
  struct kvs c = {0};
  kvs_parse(&c, own);
  if (ev->event_time_ms >= kvs_int(&c, "cu")) {
    kvs_set_int(&c, "cu", ev->event_time_ms);
    struct lp_buf b;
    lp_buf_init(&b);
    for (size_t i = 0; i < ev->n_tags; i++) {
      if (i)
        lp_buf_append_byte(&b, '\t');
      lp_state_escape_into(&b, ev->tags[i]);
    }
    kvs_set(&c, "tags", lp_buf_cstr(&b));
    if (ev->marketing_consent != LP_CONSENT_UNKNOWN)
      kvs_set(&c, "consent", lp_consent_name(ev->marketing_consent));
    if (ev->birthday && *ev->birthday) {
      lp_buf_reset(&b);
      lp_state_escape_into(&b, ev->birthday);
      kvs_set(&c, "birthday", lp_buf_cstr(&b));
    }
    if (ev->email_sha256 && *ev->email_sha256)
      kvs_set(&c, "email", ev->email_sha256);
    if (ev->customer_created_ms)
      kvs_set_int(&c, "created", ev->customer_created_ms);
    lp_buf_free(&b);
  }
  *new_own = kvs_serialize(&c, customer_fixed, LP_ARRAY_LEN(customer_fixed));
  kvs_free(&c);
}

char *lp_profile_snapshot(const char *order_part, const char *customer_part,
                          int previously_applied) {
  return lp_xasprintf("%s%s_prev\t%d\n", order_part ? order_part : "",
                      customer_part ? customer_part : "",
                      previously_applied ? 1 : 0);
}

char *lp_state_unescape(const char *s, size_t n) {
  char *out = lp_xmalloc(n + 1), *o = out;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\' && i + 1 < n) {
      i++;
      *o++ = s[i] == 't' ? '\t' : s[i] == 'n' ? '\n' : s[i];
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
}

static int cmp_affinity(const void *a, const void *b) {
  return strcmp(((const struct lp_affinity *)a)->name,
                ((const struct lp_affinity *)b)->name);
}

int lp_state_parse_i64(const char *v, size_t n, int64_t *out) {
  size_t i = n > 0 && v[0] == '-';
  if (i == n)
    return -1;
  uint64_t u = 0, limit = i ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    unsigned d = (unsigned)(v[i] - '0');
    if (u > (limit - d) / 10)
      return -1;
    u = u * 10 + d;
  }
  *out = v[0] == '-' ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

int64_t lp_state_line_i64(const char *part, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = part; p && *p;) {
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    int64_t v;
    if (n > kl && strncmp(p, key, kl) == 0 && p[kl] == '\t' &&
        lp_state_parse_i64(p + kl + 1, n - kl - 1, &v) == 0)
      return v;
    p = end ? end + 1 : p + n;
  }
  return 0;
}

int lp_profile_from_snapshot(const char *text, size_t len,
                             struct lp_profile *out, char *errstr,
                             size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  int placed_seen = 0, days_seen = 0;
  const char *p = text, *stop = text + len;
  /* Size the affinity arrays once: a line per category or brand. */
  size_t n_c = 0, n_b = 0;
  for (const char *q = text; q + 2 < stop;) {
    n_c += q[0] == 'c' && q[1] == ':';
    n_b += q[0] == 'b' && q[1] == ':';
    const char *nl = memchr(q, '\n', (size_t)(stop - q));
    if (!nl)
      break;
    q = nl + 1;
  }
  if (n_c)
    out->categories = lp_xmalloc(n_c * sizeof(*out->categories));
  if (n_b)
    out->brands = lp_xmalloc(n_b * sizeof(*out->brands));
  while (p < stop) {
    const char *nl = memchr(p, '\n', (size_t)(stop - p));
    const char *end = nl ? nl : stop;
    const char *tab = memchr(p, '\t', (size_t)(end - p));
    if (!tab) {
      lp_profile_clear(out);
      return lp_err(errstr, errstr_size, "snapshot: line without a TAB");
    }
    size_t klen = (size_t)(tab - p), vlen = (size_t)(end - tab - 1);
    const char *v = tab + 1;
#define KEY_IS(s) (klen == sizeof(s) - 1 && memcmp(p, s, klen) == 0)
    int rc = 0;
    if (KEY_IS("_prev")) {
      out->order_previously_applied = vlen == 1 && v[0] == '1';
    } else {
      out->exists = 1;
      if (KEY_IS("spend"))
        rc = lp_state_parse_i64(v, vlen, &out->lifetime_spend_micros);
      else if (KEY_IS("orders"))
        rc = lp_state_parse_i64(v, vlen, &out->order_count);
      else if (KEY_IS("placed")) {
        rc = lp_state_parse_i64(v, vlen, &out->orders_placed);
        placed_seen = 1;
      } else if (KEY_IS("days")) {
        rc = lp_state_parse_i64(v, vlen, &out->purchase_days);
        days_seen = 1;
      } else if (KEY_IS("first"))
        rc = lp_state_parse_i64(v, vlen, &out->first_order_ms);
      else if (KEY_IS("last"))
        rc = lp_state_parse_i64(v, vlen, &out->last_order_ms);
      else if (KEY_IS("created"))
        rc = lp_state_parse_i64(v, vlen, &out->customer_created_ms);
      else if (KEY_IS("consent")) {
        char *c = lp_state_unescape(v, vlen);
        lp_consent_parse(c, &out->marketing_consent);
        free(c);
      } else if (KEY_IS("birthday")) {
        free(out->birthday);
        out->birthday = lp_state_unescape(v, vlen);
      } else if (KEY_IS("email")) {
        free(out->email_sha256);
        out->email_sha256 = lp_state_unescape(v, vlen);
      } else if (KEY_IS("tier")) {
        free(out->tier);
        out->tier = lp_state_unescape(v, vlen);
      } else if (KEY_IS("tags")) {
        for (size_t t = 0; t < out->n_tags; t++)
          free(out->tags[t]);
        free(out->tags);
        out->tags = NULL;
        out->n_tags = 0;
        const char *q = v, *qend = v + vlen;
        while (vlen && q <= qend) {
          const char *sep = memchr(q, '\t', (size_t)(qend - q));
          const char *e = sep ? sep : qend;
          out->tags =
              lp_xrealloc(out->tags, (out->n_tags + 1) * sizeof(char *));
          out->tags[out->n_tags++] = lp_state_unescape(q, (size_t)(e - q));
          q = e + 1;
        }
      } else if (klen > 2 && (p[0] == 'c' || p[0] == 'b') && p[1] == ':') {
        int64_t x = 0;
        rc = lp_state_parse_i64(v, vlen, &x);
        if (rc == 0 && x > 0) {
          struct lp_affinity *arr = p[0] == 'c' ? out->categories : out->brands;
          size_t *cnt = p[0] == 'c' ? &out->n_categories : &out->n_brands;
          LP_ASSERT(*cnt < (p[0] == 'c' ? n_c : n_b)); /* counted above */
          arr[*cnt].name = lp_state_unescape(p + 2, klen - 2);
          arr[*cnt].spend_micros = x;
          (*cnt)++;
        }
      }
    }
    if (rc) {
      lp_err(errstr, errstr_size, "snapshot: field %.*s: bad integer \"%.*s\"",
             (int)(klen < 64 ? klen : 64), p, (int)(vlen < 32 ? vlen : 32), v);
      lp_profile_clear(out);
      return -1;
    }
#undef KEY_IS
    p = nl ? nl + 1 : stop;
  }
  if (!placed_seen) /* written before "placed" existed */
    out->orders_placed = out->order_count;
  if (!days_seen) /* written before "days" existed */
    out->purchase_days = out->orders_placed;
  if (out->n_categories)
    qsort(out->categories, out->n_categories, sizeof(*out->categories),
          cmp_affinity);
  if (out->n_brands)
    qsort(out->brands, out->n_brands, sizeof(*out->brands), cmp_affinity);
  return 0;
}

/* ---- order entries: the record, then one memo per applied event ---- */

/* Reads the memo at p (*p == '@') up to end: its escaped event id and its
 * snapshot. Returns the byte after it, or NULL if malformed. */
static const char *memo_next(const char *p, const char *end, const char **id,
                             size_t *id_len, const char **snap,
                             size_t *snap_len) {
  if (p >= end || *p != '@')
    return NULL;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  const char *tab = nl ? memchr(p, '\t', (size_t)(nl - p)) : NULL;
  if (!tab || tab == p + 1 || tab == nl - 1) /* no id, or no length */
    return NULL;
  size_t n = 0;
  for (const char *d = tab + 1; d < nl; d++) {
    if (*d < '0' || *d > '9' || n > (size_t)(end - nl))
      return NULL;
    n = n * 10 + (size_t)(*d - '0');
  }
  if (n > (size_t)(end - nl - 1))
    return NULL;
  *id = p + 1;
  *id_len = (size_t)(tab - p - 1);
  *snap = nl + 1;
  *snap_len = n;
  return nl + 1 + n;
}

int lp_order_entry_parse(const char *text, size_t len,
                         struct lp_order_entry *out, char *errstr,
                         size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  const char *end = text + len, *m = text;
  if (len > 0 && *text != '@') {
    m = memmem(text, len, "\n@", 2);
    m = m ? m + 1 : end;
  }
  out->record = text;
  out->record_len = (size_t)(m - text);
  out->memos = m;
  out->memos_len = (size_t)(end - m);
  while (m < end) {
    const char *id, *snap;
    size_t id_len, snap_len;
    const char *next = memo_next(m, end, &id, &id_len, &snap, &snap_len);
    if (!next)
      return lp_err(errstr, errstr_size,
                    "order entry: memo %zu at byte %zu is malformed",
                    out->n_memos + 1, (size_t)(m - text));
    out->n_memos++;
    m = next;
  }
  return 0;
}

int lp_order_entry_memo(const struct lp_order_entry *e, const char *event_id,
                        const char **snapshot, size_t *len) {
  struct lp_buf want;
  lp_buf_init(&want);
  lp_state_escape_into(&want, event_id);
  const char *p = e->memos, *end = e->memos + e->memos_len;
  int found = 0;
  while (!found && p && p < end) {
    const char *id;
    size_t id_len;
    p = memo_next(p, end, &id, &id_len, snapshot, len);
    found = p && id_len == want.len && memcmp(id, want.data, id_len) == 0;
  }
  lp_buf_free(&want);
  return found;
}

char *lp_order_entry_compose(const char *record,
                             const struct lp_order_entry *old,
                             const char *event_id, const char *snapshot) {
  struct lp_buf b;
  lp_buf_init(&b);
  size_t ls = strlen(snapshot);
  lp_buf_reserve(&b, (record ? strlen(record) : 0) +
                         (old ? old->memos_len : 0) + strlen(event_id) + ls +
                         32);
  if (record)
    lp_buf_append_str(&b, record);
  if (old)
    lp_buf_append(&b, old->memos, old->memos_len);
  lp_buf_append_byte(&b, '@');
  lp_state_escape_into(&b, event_id);
  lp_buf_appendf(&b, "\t%zu\n", ls);
  lp_buf_append(&b, snapshot, ls);
  (void)lp_buf_cstr(&b); /* NUL-terminated; its memory is the caller's */
  return (char *)b.data;
}
