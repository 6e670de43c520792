/*
 * shop_generator.c — deterministic sample traffic (see shop_generator.h).
 *
 * Members are in a min-heap keyed by the time of their next event, so the
 * output is in non-decreasing event time with O(members) memory. Each
 * member has a rhythm: regular buyers, replenishers (pet food about every
 * 90 days), premium enthusiasts, gift buyers, and lapsing members whose
 * next order sometimes comes after a 50–80 day silence (the "we miss you"
 * case) or a 120–240 day one, or never (churn; regular buyers churn now
 * and then too). Randomness is splitmix64 seeded by the caller; money is
 * integer cents; no clock, no locale.
 */
#include "shop_generator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define DAY_MS 86400000LL

struct product {
  const char *sku;
  int category, brand;
  int64_t cents;
};

static const char *const categories[] = {"coffee", "tea",     "equipment",
                                         "gifts",  "books",   "apparel",
                                         "beauty", "pet-food"};
#define N_CATEGORIES 8
#define BRANDS_PER_CATEGORY 4
static const char *const brands[N_CATEGORIES][BRANDS_PER_CATEGORY] = {
    {"Roastery", "Acme", "Nordic Bean", "Casa Verde"},
    {"Leafwise", "Acme", "Jade Hill", "Earl & Co"},
    {"Brewtech", "Acme", "Kettleworks", "Precisa"},
    {"Giftory", "Wrapped", "Acme", "Ribbon Lane"},
    {"Inkwell", "Paperback Co", "Acme", "Folio"},
    {"Threadline", "Acme", "Northwear", "Loomi"},
    {"Glowlab", "Acme", "Petal", "Pure Skin"},
    {"Happy Paws", "Acme", "Kibble Co", "Tail Treats"}};
/* Base price per category in cents; products vary around it. */
static const int64_t base_cents[N_CATEGORIES] = {1800, 1200, 9500, 3500,
                                                 2200, 4500, 3000, 5200};

enum rhythm { REGULAR, REPLENISH, PREMIUM, GIFT, LAPSING, N_RHYTHMS };

struct member {
  int64_t next_ms;   /* next event of this member */
  int64_t cancel_ms; /* pending cancellation, 0 if none */
  int64_t cancel_total;
  uint32_t cancel_order;
  uint32_t id;
  uint8_t rhythm, fav_category, fav_brand, signed_up, updated;
};

struct lp_shop_gen {
  struct lp_shop_gen_params p;
  char *shop;
  uint64_t rng;
  struct member *members;
  uint32_t *heap; /* member indexes, min-heap on event time */
  size_t heap_len;
  size_t orders_emitted;
  uint32_t next_order_no;
};

static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint64_t below(struct lp_shop_gen *g, uint64_t n) {
  return n ? next_u64(&g->rng) % n : 0;
}

static int64_t member_time(const struct member *m) {
  return m->cancel_ms && m->cancel_ms < m->next_ms ? m->cancel_ms : m->next_ms;
}

static int heap_less(const struct lp_shop_gen *g, uint32_t a, uint32_t b) {
  int64_t ta = member_time(&g->members[a]), tb = member_time(&g->members[b]);
  return ta < tb || (ta == tb && a < b); /* ties by id: deterministic */
}

static void sift_down(struct lp_shop_gen *g, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < g->heap_len && heap_less(g, g->heap[l], g->heap[m]))
      m = l;
    if (r < g->heap_len && heap_less(g, g->heap[r], g->heap[m]))
      m = r;
    if (m == i)
      return;
    uint32_t tmp = g->heap[i];
    g->heap[i] = g->heap[m];
    g->heap[m] = tmp;
    i = m;
  }
}

struct lp_shop_gen *lp_shop_gen_new(const struct lp_shop_gen_params *p) {
  struct lp_shop_gen *g = lp_xcalloc(1, sizeof(*g));
  g->p = *p;
  if (g->p.customers == 0)
    g->p.customers = 1;
  g->shop = lp_xstrdup(p->shop ? p->shop : "demo-shop.myshopify.com");
  g->p.shop = g->shop;
  g->rng = p->seed ^ 0x6c6f79616c7479ULL;
  g->members = lp_xcalloc(g->p.customers, sizeof(*g->members));
  g->heap = lp_xcalloc(g->p.customers, sizeof(*g->heap));
  for (size_t i = 0; i < g->p.customers; i++) {
    struct member *m = &g->members[i];
    m->id = (uint32_t)i + 1;
    /* Sign-ups spread over the first 90 days. */
    m->next_ms = g->p.start_ms + (int64_t)below(g, 90 * DAY_MS);
    uint64_t r = below(g, 100);
    m->rhythm = r < 40   ? REGULAR
                : r < 55 ? REPLENISH
                : r < 70 ? PREMIUM
                : r < 80 ? GIFT
                         : LAPSING;
    m->fav_category = m->rhythm == REPLENISH ? 7
                      : m->rhythm == PREMIUM ? 2
                      : m->rhythm == GIFT    ? 3
                                             : (uint8_t)below(g, N_CATEGORIES);
    m->fav_brand = (uint8_t)below(g, BRANDS_PER_CATEGORY);
    g->heap[i] = (uint32_t)i;
  }
  g->heap_len = g->p.customers;
  for (size_t i = g->heap_len / 2 + 1; i-- > 0;)
    sift_down(g, i);
  return g;
}

void lp_shop_gen_destroy(struct lp_shop_gen **gp) {
  struct lp_shop_gen *g = *gp;
  if (!g)
    return;
  free(g->shop);
  free(g->members);
  free(g->heap);
  free(g);
  *gp = NULL;
}

/* Days until this member's next order, by rhythm. */
static int64_t next_gap_ms(struct lp_shop_gen *g, const struct member *m) {
  int64_t days;
  switch (m->rhythm) {
  case REPLENISH:
    days = 80 + (int64_t)below(g, 21);
    break;
  case PREMIUM:
    days = 7 + (int64_t)below(g, 21);
    break;
  case GIFT:
    days = 30 + (int64_t)below(g, 150);
    break;
  case LAPSING: {
    /* Frequent while active; then a silence (the "we miss you" case), a
     * long one that puts them at risk, or gone for good (churn, which
     * the member-value models must see in the history). */
    uint64_t r = below(g, 12);
    days = r == 0   ? 400 + (int64_t)below(g, 300)
           : r == 1 ? 120 + (int64_t)below(g, 120)
           : r <= 4 ? 50 + (int64_t)below(g, 31)
                    : 5 + (int64_t)below(g, 20);
    break;
  }
  default:
    /* Now and then a regular buyer drops out too. */
    days = below(g, 25) == 0 ? 400 + (int64_t)below(g, 300)
                             : 15 + (int64_t)below(g, 30);
  }
  return days * DAY_MS + (int64_t)below(g, DAY_MS);
}

static char *xstrdup_fmt_member(const char *fmt, uint32_t id) {
  return lp_xasprintf(fmt, id);
}

static void fill_customer(struct lp_shop_gen *g, struct member *m, int64_t t,
                          struct lp_customer_event *c) {
  memset(c, 0, sizeof(*c));
  enum lp_customer_kind kind =
      m->signed_up ? LP_CUSTOMER_UPDATED : LP_CUSTOMER_CREATED;
  c->event_id =
      lp_xasprintf("gen-c%06u-%s", m->id, lp_customer_kind_name(kind));
  c->shop = lp_xstrdup(g->shop);
  c->customer_id = xstrdup_fmt_member("c%06u", m->id);
  c->event_time_ms = t;
  c->kind = kind;
  char email[48], hex[65];
  snprintf(email, sizeof(email), "c%06u@example.com", m->id);
  lp_sha256_hex(email, strlen(email), hex);
  c->email_sha256 = lp_xstrdup(hex);
  c->marketing_consent =
      below(g, 10) < 6 ? LP_CONSENT_SUBSCRIBED : LP_CONSENT_UNSUBSCRIBED;
  static const char *const tag_pool[] = {"vip", "newsletter", "wholesale"};
  size_t ntags = m->rhythm == PREMIUM ? 1 + below(g, 2) : below(g, 4) / 3;
  if (ntags) {
    c->tags = lp_xcalloc(ntags, sizeof(char *));
    for (size_t i = 0; i < ntags; i++)
      c->tags[c->n_tags++] = lp_xstrdup(tag_pool[(m->id + i) % 3]);
  }
  if (below(g, 10) < 4)
    c->birthday = lp_xasprintf("%04d-%02d-%02d", 1950 + (int)below(g, 55),
                               1 + (int)below(g, 12), 1 + (int)below(g, 28));
  c->customer_created_ms = kind == LP_CUSTOMER_CREATED ? t : 0;
  c->source = lp_xstrdup("generator");
}

static void fill_order(struct lp_shop_gen *g, struct member *m, int64_t t,
                       struct lp_order_event *o) {
  memset(o, 0, sizeof(*o));
  uint32_t no = ++g->next_order_no;
  o->event_id = lp_xasprintf("gen-o%08u-created", no);
  o->shop = lp_xstrdup(g->shop);
  o->order_id = lp_xasprintf("o%08u", no);
  o->customer_id = xstrdup_fmt_member("c%06u", m->id);
  o->event_time_ms = t;
  o->status = LP_ORDER_CREATED;
  o->currency = lp_xstrdup("EUR");
  size_t n = 1 + below(g, 4);
  o->line_items = lp_xcalloc(n, sizeof(*o->line_items));
  int64_t sub = 0;
  for (size_t i = 0; i < n; i++) {
    int cat = below(g, 10) < 7 ? m->fav_category : (int)below(g, N_CATEGORIES);
    int brand = below(g, 10) < 6 && cat == m->fav_category
                    ? m->fav_brand
                    : (int)below(g, BRANDS_PER_CATEGORY);
    int64_t cents = base_cents[cat] * (50 + (int64_t)below(g, 150)) / 100;
    if (m->rhythm == PREMIUM)
      cents *= 3;
    struct lp_line_item *li = &o->line_items[o->n_line_items++];
    li->product_id = lp_xasprintf("p-%d-%d", cat, brand);
    li->sku = lp_xasprintf("SKU-%d%d-%03u", cat, brand, (unsigned)below(g, 50));
    li->category = lp_xstrdup(categories[cat]);
    li->brand = lp_xstrdup(brands[cat][brand]);
    li->quantity = 1 + (int32_t)below(g, 3);
    li->unit_price_micros = cents * 10000;
    sub += li->quantity * li->unit_price_micros;
  }
  o->subtotal_micros = sub;
  if (below(g, 10) == 0) {
    o->discount_codes = lp_xcalloc(1, sizeof(char *));
    o->discount_codes[o->n_discount_codes++] = lp_xstrdup("SAVE10");
    o->discount_micros = sub / 10 / 10000 * 10000; /* whole cents */
  }
  o->total_micros = sub - o->discount_micros;
  o->source = lp_xstrdup("generator");
  if ((int)below(g, 1000) < g->p.cancel_permille) {
    m->cancel_ms = t + DAY_MS + (int64_t)below(g, 2 * DAY_MS);
    m->cancel_order = no;
    m->cancel_total = o->total_micros;
  }
}

static void fill_cancel(struct lp_shop_gen *g, struct member *m, int64_t t,
                        struct lp_order_event *o) {
  memset(o, 0, sizeof(*o));
  o->event_id = lp_xasprintf("gen-o%08u-cancelled", m->cancel_order);
  o->shop = lp_xstrdup(g->shop);
  o->order_id = lp_xasprintf("o%08u", m->cancel_order);
  o->customer_id = xstrdup_fmt_member("c%06u", m->id);
  o->event_time_ms = t;
  o->status = LP_ORDER_CANCELLED;
  o->currency = lp_xstrdup("EUR");
  o->total_micros = m->cancel_total;
  o->subtotal_micros = m->cancel_total;
  o->source = lp_xstrdup("generator");
  m->cancel_ms = 0;
}

enum lp_gen_kind lp_shop_gen_next(struct lp_shop_gen *g,
                                  struct lp_order_event *order,
                                  struct lp_customer_event *customer) {
  while (g->heap_len > 0) {
    uint32_t idx = g->heap[0];
    struct member *m = &g->members[idx];
    int64_t t = member_time(m);
    enum lp_gen_kind kind = LP_GEN_END;
    if (m->cancel_ms && m->cancel_ms <= m->next_ms) {
      fill_cancel(g, m, t, order);
      kind = LP_GEN_ORDER;
    } else if (!m->signed_up) {
      fill_customer(g, m, t, customer);
      m->signed_up = 1;
      m->next_ms = t + (int64_t)below(g, 3 * DAY_MS); /* first order soon */
      kind = LP_GEN_CUSTOMER;
    } else if (g->orders_emitted < g->p.orders) {
      if (!m->updated && below(g, 50) == 0) {
        fill_customer(g, m, t, customer); /* a consent/tags update */
        m->updated = 1;
        kind = LP_GEN_CUSTOMER;
      } else {
        fill_order(g, m, t, order);
        g->orders_emitted++;
        kind = LP_GEN_ORDER;
      }
      m->next_ms = t + next_gap_ms(g, m);
    } else {
      /* Order budget spent: this member is done (a pending cancellation
       * still comes first). */
      m->next_ms = INT64_MAX;
      if (!m->cancel_ms) {
        g->heap[0] = g->heap[--g->heap_len];
        sift_down(g, 0);
        continue;
      }
    }
    sift_down(g, 0);
    if (kind != LP_GEN_END)
      return kind;
  }
  return LP_GEN_END;
}

struct lp_cdnow_reader {
  FILE *f;
  char *shop;
  char *line;
  size_t cap;
  long lineno;
  long row;
};

struct lp_cdnow_reader *lp_cdnow_reader_open(const char *path, const char *shop,
                                             char *errstr, size_t errstr_size) {
  FILE *f = fopen(path, "r");
  if (!f) {
    lp_err(errstr, errstr_size, "%s: %s", path, strerror(errno));
    return NULL;
  }
  struct lp_cdnow_reader *r = lp_xcalloc(1, sizeof(*r));
  r->f = f;
  r->shop = lp_xstrdup(shop);
  return r;
}

int lp_cdnow_reader_next(struct lp_cdnow_reader *r, struct lp_order_event *out,
                         char *errstr, size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  for (;;) {
    if (getline(&r->line, &r->cap, r->f) < 0)
      return 0;
    r->lineno++;
    char *tok[6];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(r->line, " \t\r\n", &save); t && n < 6;
         t = strtok_r(NULL, " \t\r\n", &save))
      tok[n++] = t;
    if (n == 0)
      continue;
    if (r->lineno == 1 && strcmp(tok[0], "customer_id") == 0)
      continue; /* the master file's header */
    /* master: id date cds value; sample: id sample_id date cds value */
    if (n != 4 && n != 5)
      return lp_err(errstr, errstr_size,
                    "line %ld: expected 4 or 5 columns, got %d", r->lineno, n);
    const char *date = tok[n - 3], *cds = tok[n - 2], *value = tok[n - 1];
    char iso[16];
    int64_t t, micros;
    char *end;
    long q = strtol(cds, &end, 10);
    if (strlen(date) != 8 ||
        snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2s", date, date + 4,
                 date + 6) != 10 ||
        lp_time_parse_iso8601(iso, &t) != 0)
      return lp_err(errstr, errstr_size, "line %ld: bad date \"%s\"", r->lineno,
                    date);
    if (*end || q < 1 || q > LP_MAX_QUANTITY)
      return lp_err(errstr, errstr_size, "line %ld: bad CD count \"%s\"",
                    r->lineno, cds);
    if (lp_money_parse(value, &micros) != 0 || micros < 0)
      return lp_err(errstr, errstr_size, "line %ld: bad dollar value \"%s\"",
                    r->lineno, value);
    r->row++;
    out->event_id = lp_xasprintf("cdnow-%ld", r->row);
    out->shop = lp_xstrdup(r->shop);
    out->order_id = lp_xasprintf("cdnow-%ld", r->row);
    out->customer_id = lp_xstrdup(tok[0]);
    /* Noon UTC plus the row number in seconds: a stable order within a
     * day (rows are sorted by customer, then date). */
    out->event_time_ms = t + 12 * 3600000LL + (r->row % 43200) * 1000;
    out->status = LP_ORDER_CREATED;
    out->currency = lp_xstrdup("USD");
    out->total_micros = micros;
    out->subtotal_micros = micros;
    out->line_items = lp_xcalloc(1, sizeof(*out->line_items));
    out->n_line_items = 1;
    out->line_items[0].category = lp_xstrdup("music");
    out->line_items[0].brand = lp_xstrdup("cdnow");
    out->line_items[0].quantity = (int32_t)q;
    out->line_items[0].unit_price_micros = micros / q;
    out->source = lp_xstrdup("cdnow");
    return 1;
  }
}

void lp_cdnow_reader_close(struct lp_cdnow_reader **rp) {
  struct lp_cdnow_reader *r = *rp;
  if (!r)
    return;
  fclose(r->f);
  free(r->line);
  free(r->shop);
  free(r);
  *rp = NULL;
}
