/*
 * shop_data.c — the generated shop behind the Shopify and BigCommerce
 * emulations: its configuration (defaults, the POST /_sandbox/shop
 * update, JSON), a catalogue of 256 products in 8 categories, and order k
 * / customer c as pure functions of (configuration, k or c).
 *
 * Nothing is stored: every page, filter and webhook regenerates what it
 * needs, so a million orders cost no memory and the same configuration
 * gives the same bytes on every machine (integer cents, hashes instead of
 * a running PRNG, UTC, no locale).
 *
 * Guarantees the REST emulations rely on:
 *   - ids ascend with k (Shopify 5000000000 + k, BigCommerce 100 + k);
 *   - created_at is strictly increasing in k: order k is created at
 *     start + k * gap + jitter with jitter < gap, so "first order created
 *     at or after t" is a binary search;
 *   - updated_at = the latest of created/cancelled/refund times and never
 *     more than sb_shop_max_update_delay_s() after created_at;
 *   - an order is either cancelled (cancel_permille), refunded
 *     (refund_permille, fully or its first line) or neither; the choice
 *     uses its own hash stream, so changing the permilles never changes an
 *     order's lines.
 */
#include "shop.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define DAY_S 86400LL
#define MAX_UPDATE_DELAY_S (31 * DAY_S)
#define TAX_PERCENT 8
#define HORIZON_S 7258118400LL /* 2200-01-01T00:00:00Z */

/* Hash domains: one independent stream per purpose. */
enum {
  D_TIME = 1,
  D_ORDER,
  D_FATE,
  D_CUSTOMER,
  D_CUSTOMER_TASTE,
  D_PRODUCT,
  D_BC_STATUS
};

/* ---- catalogue ------------------------------------------------------ */

#define N_CATEGORIES 8
#define BRANDS_PER_CATEGORY 4
#define PRODUCTS_PER_BRAND 8
#define N_PRODUCTS (N_CATEGORIES * BRANDS_PER_CATEGORY * PRODUCTS_PER_BRAND)

static const char *const category_names[N_CATEGORIES] = {
    "kitchen", "outdoor",      "apparel",     "beauty",
    "books",   "pet-supplies", "electronics", "toys"};
static const char *const category_codes[N_CATEGORIES] = {
    "KIT", "OUT", "APP", "BEA", "BOK", "PET", "ELE", "TOY"};
static const char *const brand_names[N_CATEGORIES][BRANDS_PER_CATEGORY] = {
    {"Hearth & Co", "Ironleaf", "Copperline", "Acme"},
    {"Summit Gear", "Pinecrest", "Northtrail", "Acme"},
    {"Threadwell", "Urban Loom", "Field & Fold", "Acme"},
    {"Bloom Lab", "Velvet Botanica", "Clearwater", "Acme"},
    {"Marginalia Press", "Dogear Books", "Quarto House", "Acme"},
    {"Happy Tails", "Pawsome", "Whisker Works", "Acme"},
    {"Voltix", "Lumen", "Auralink", "Acme"},
    {"Playforge", "Tinker Town", "Kitebird", "Acme"}};
static const char *const product_nouns[N_CATEGORIES][PRODUCTS_PER_BRAND] = {
    {"Chef Knife", "Cast Iron Skillet", "Pour-Over Kettle", "Cutting Board",
     "Spice Set", "Stock Pot", "Whisk Set", "Salad Bowl"},
    {"Trail Backpack", "Camp Stove", "Headlamp", "Trekking Poles",
     "Sleeping Bag", "Water Filter", "Rain Shell", "Camp Chair"},
    {"Merino Tee", "Denim Jacket", "Wool Socks", "Hoodie", "Chinos",
     "Rain Boots", "Beanie", "Linen Shirt"},
    {"Face Serum", "Night Cream", "Lip Balm", "Clay Mask", "Body Oil",
     "Sunscreen SPF 50", "Hair Mask", "Gentle Cleanser"},
    {"Cookbook", "Travel Guide", "Mystery Novel", "Field Journal",
     "Poetry Collection", "Children's Atlas", "Design Handbook", "Biography"},
    {"Dog Kibble 12kg", "Cat Litter", "Chew Toy", "Pet Bed", "Leash",
     "Grooming Brush", "Cat Treats", "Water Fountain"},
    {"Wireless Earbuds", "USB-C Charger", "Smart Plug", "Bluetooth Speaker",
     "Power Bank", "Phone Case", "Desk Lamp", "HDMI Cable"},
    {"Building Blocks", "Puzzle 1000pc", "Plush Bear", "Board Game", "Kite",
     "Wooden Train", "Art Kit", "Yo-Yo"}};
static const int64_t category_base_cents[N_CATEGORIES] = {
    3900, 6900, 3500, 2400, 1800, 3200, 4900, 2600};
static const char *const variant_names[] = {"Black", "Natural", "Blue",
                                            "Large"};

static const char *const first_names[] = {
    "Ada",   "Grace", "Alan",    "Edsger",   "Barbara", "Donald",  "Frances",
    "Ken",   "Radia", "Niklaus", "Margaret", "Dennis",  "Hedy",    "John",
    "Karen", "Linus", "Mary",    "Tim",      "Sophie",  "Yukihiro"};
static const char *const last_names[] = {
    "Lovelace", "Hopper",  "Turing",      "Dijkstra", "Liskov",
    "Knuth",    "Allen",   "Thompson",    "Perlman",  "Wirth",
    "Hamilton", "Ritchie", "Lamarr",      "Backus",   "Jones",
    "Torvalds", "Shaw",    "Berners-Lee", "Wilson",   "Matsumoto"};
static const char *const cities[][3] = {
    {"Portland", "Oregon", "OR"},      {"Austin", "Texas", "TX"},
    {"Boston", "Massachusetts", "MA"}, {"Denver", "Colorado", "CO"},
    {"Chicago", "Illinois", "IL"},     {"Seattle", "Washington", "WA"}};

/* ---- hashing -------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t sb_shop_hash(uint64_t seed, uint64_t domain, uint64_t k) {
  return mix64(mix64(seed ^ mix64(domain)) ^ (k * 0xd6e8feb86659fd93ULL));
}

/* A small stream of draws from one hash (splitmix64 steps). */
struct draws {
  uint64_t state;
};

static struct draws draws_of(uint64_t seed, uint64_t domain, uint64_t k) {
  struct draws d = {sb_shop_hash(seed, domain, k)};
  return d;
}

static uint64_t draw(struct draws *d) {
  d->state += 0x9e3779b97f4a7c15ULL;
  uint64_t z = d->state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t draw_below(struct draws *d, uint64_t n) {
  return n ? draw(d) % n : 0;
}

/* Uniform in [0, 1), exact in IEEE double on every machine. */
static double draw_unit(struct draws *d) {
  return (double)(draw(d) >> 11) * 0x1.0p-53;
}

void sb_shop_uuid(uint64_t a, uint64_t b, char out[37]) {
  snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
           (unsigned)((a >> 16) & 0xffff), (unsigned)(a & 0xfff),
           (unsigned)(0x8000 | ((b >> 48) & 0x3fff)),
           (unsigned long long)(b & 0xffffffffffffULL));
}

/* ---- configuration -------------------------------------------------- */

void sb_shop_config_defaults(struct sb_shop_config *cfg,
                             const struct sb_settings *settings) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->orders = settings ? settings->shop_orders : 1000;
  cfg->customers = settings ? settings->shop_customers : 200;
  cfg->seed = settings ? settings->shop_seed : 1;
  lp_strlcpy(cfg->shop, "sandbox-shop.myshopify.com", sizeof(cfg->shop));
  lp_strlcpy(cfg->store_hash, "sbx123", sizeof(cfg->store_hash));
  lp_strlcpy(cfg->start, "2025-01-01T00:00:00Z", sizeof(cfg->start));
  int64_t ms = 0;
  LP_ASSERT(lp_time_parse_iso8601(cfg->start, &ms) == 0);
  cfg->start_s = ms / 1000;
  cfg->order_gap_s = 1800;
  lp_strlcpy(cfg->shopify_token, "shpat_sandbox", sizeof(cfg->shopify_token));
  lp_strlcpy(cfg->bigcommerce_token, "bc_sandbox",
             sizeof(cfg->bigcommerce_token));
  cfg->bucket_size = 40;
  cfg->leak_per_s = 2;
  cfg->bc_quota = 150;
  cfg->bc_window_ms = 30000;
  cfg->burst_429_permille = 0;
  cfg->cancel_permille = 30;
  cfg->refund_permille = 30;
}

enum field_type { F_INT, F_DOUBLE, F_HOST, F_HASH, F_TOKEN, F_TIME };

/* One row per POST /_sandbox/shop key. */
static const struct config_field {
  const char *key;
  enum field_type type;
  size_t offset, size; /* size: string buffer */
  long long min, max;
} config_fields[] = {
#define O(f) offsetof(struct sb_shop_config, f)
#define S(f) sizeof(((struct sb_shop_config *)0)->f)
    {"orders", F_INT, O(orders), 0, 0, SB_SHOP_MAX_ORDERS},
    {"customers", F_INT, O(customers), 0, 1, SB_SHOP_MAX_CUSTOMERS},
    {"seed", F_INT, O(seed), 0, 0, INT64_MAX},
    {"shop", F_HOST, O(shop), S(shop), 0, 0},
    {"store_hash", F_HASH, O(store_hash), S(store_hash), 0, 0},
    {"start", F_TIME, O(start), S(start), 0, 0},
    {"order_gap_s", F_INT, O(order_gap_s), 0, 1, 30 * DAY_S},
    {"shopify_token", F_TOKEN, O(shopify_token), S(shopify_token), 0, 0},
    {"bigcommerce_token", F_TOKEN, O(bigcommerce_token), S(bigcommerce_token),
     0, 0},
    {"bucket_size", F_INT, O(bucket_size), 0, 1, 1000000},
    {"leak_per_s", F_DOUBLE, O(leak_per_s), 0, 0, 1000000},
    {"bc_quota", F_INT, O(bc_quota), 0, 1, 100000000},
    {"bc_window_ms", F_INT, O(bc_window_ms), 0, 1, 3600000},
    {"burst_429_permille", F_INT, O(burst_429_permille), 0, 0, 1000},
    {"cancel_permille", F_INT, O(cancel_permille), 0, 0, 1000},
    {"refund_permille", F_INT, O(refund_permille), 0, 0, 1000},
#undef O
#undef S
};

static int string_ok(enum field_type type, const char *s) {
  if (!*s)
    return 0;
  for (const char *p = s; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    int ok = type == F_HOST    ? (isalnum(ch) || ch == '.' || ch == '-')
             : type == F_HASH  ? isalnum(ch)
             : type == F_TOKEN ? (ch > 0x20 && ch < 0x7f && ch != ',')
                               : 1;
    if (!ok)
      return 0;
  }
  return 1;
}

static const char *type_text(enum field_type type) {
  switch (type) {
  case F_HOST:
    return "a host name (letters, digits, '.', '-')";
  case F_HASH:
    return "letters and digits";
  case F_TOKEN:
    return "printable ASCII without spaces or commas";
  case F_TIME:
    return "an RFC 3339 time";
  default:
    return "a value";
  }
}

int sb_shop_config_update(struct sb_shop_config *cfg, const json_t *body,
                          char *errstr, size_t errstr_size) {
  if (!json_is_object(body))
    return lp_err(errstr, errstr_size, "body: a JSON object is required");
  struct sb_shop_config next = *cfg;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)body, key, v) {
    const struct config_field *f = NULL;
    for (size_t i = 0; i < LP_ARRAY_LEN(config_fields) && !f; i++)
      if (strcmp(config_fields[i].key, key) == 0)
        f = &config_fields[i];
    if (!f)
      return lp_err(errstr, errstr_size,
                    "%s: unknown key (orders, customers, seed, shop, "
                    "store_hash, start, order_gap_s, shopify_token, "
                    "bigcommerce_token, bucket_size, leak_per_s, bc_quota, "
                    "bc_window_ms, burst_429_permille, cancel_permille, "
                    "refund_permille)",
                    key);
    char *field = (char *)&next + f->offset;
    switch (f->type) {
    case F_INT: {
      if (!json_is_integer(v) || json_integer_value(v) < f->min ||
          json_integer_value(v) > f->max)
        return lp_err(errstr, errstr_size, "%s: not an integer in %lld..%lld",
                      key, f->min, f->max);
      long long x = json_integer_value(v);
      memcpy(field, &x, sizeof(x));
      break;
    }
    case F_DOUBLE: {
      if (!json_is_number(v) || json_number_value(v) <= (double)f->min ||
          json_number_value(v) > (double)f->max)
        return lp_err(errstr, errstr_size,
                      "%s: not a number above %lld and at most %lld", key,
                      f->min, f->max);
      double x = json_number_value(v);
      memcpy(field, &x, sizeof(x));
      break;
    }
    default: {
      const char *s = json_is_string(v) ? json_string_value(v) : NULL;
      if (!s || strlen(s) >= f->size || !string_ok(f->type, s))
        return lp_err(errstr, errstr_size,
                      "%s: not a string of %s, shorter than %zu bytes", key,
                      type_text(f->type), f->size);
      if (f->type == F_TIME) {
        int64_t ms;
        if (lp_time_parse_iso8601(s, &ms) != 0 || ms < 0 ||
            ms > 4102444800000LL) /* 2100-01-01 */
          return lp_err(errstr, errstr_size,
                        "start: \"%s\" is not an RFC 3339 time in "
                        "1970..2100",
                        s);
        next.start_s = ms / 1000;
      }
      lp_strlcpy(field, s, f->size);
    }
    }
  }
  if (next.start_s + next.orders * next.order_gap_s + MAX_UPDATE_DELAY_S >
      HORIZON_S)
    return lp_err(errstr, errstr_size,
                  "orders * order_gap_s: %lld orders %lld s apart from %s "
                  "run past the year 2200; use fewer orders or a shorter gap",
                  next.orders, next.order_gap_s, next.start);
  if (next.cancel_permille + next.refund_permille > 1000)
    return lp_err(errstr, errstr_size,
                  "cancel_permille + refund_permille: %lld exceeds 1000 (an "
                  "order is cancelled, refunded or neither)",
                  next.cancel_permille + next.refund_permille);
  *cfg = next;
  return 0;
}

json_t *sb_shop_config_json(const struct sb_shop_config *cfg) {
  return json_pack(
      "{sI sI sI ss ss ss sI ss ss sI sf sI sI sI sI sI}", "orders",
      (json_int_t)cfg->orders, "customers", (json_int_t)cfg->customers, "seed",
      (json_int_t)cfg->seed, "shop", cfg->shop, "store_hash", cfg->store_hash,
      "start", cfg->start, "order_gap_s", (json_int_t)cfg->order_gap_s,
      "shopify_token", cfg->shopify_token, "bigcommerce_token",
      cfg->bigcommerce_token, "bucket_size", (json_int_t)cfg->bucket_size,
      "leak_per_s", cfg->leak_per_s, "bc_quota", (json_int_t)cfg->bc_quota,
      "bc_window_ms", (json_int_t)cfg->bc_window_ms, "burst_429_permille",
      (json_int_t)cfg->burst_429_permille, "cancel_permille",
      (json_int_t)cfg->cancel_permille, "refund_permille",
      (json_int_t)cfg->refund_permille);
}

/* ---- ids ------------------------------------------------------------ */

int64_t sb_shop_shopify_order_id(int64_t k) {
  return 5000000000LL + k;
}
int64_t sb_shop_shopify_customer_id(int64_t c) {
  return 7000000000LL + c;
}
int64_t sb_shop_bc_order_id(int64_t k) {
  return 100 + k;
}
int64_t sb_shop_bc_customer_id(int64_t c) {
  return 1 + c;
}
int64_t sb_shop_bc_refund_id(int64_t k) {
  return 1 + k;
}
static int64_t shopify_line_id(int64_t k, int i) {
  return 9000000000LL + k * SB_SHOP_MAX_ITEMS + i;
}
static int64_t shopify_refund_id(int64_t k) {
  return 6000000000LL + k;
}

/* ---- orders and customers ------------------------------------------- */

static int64_t created_s(const struct sb_shop_config *cfg, int64_t k) {
  uint64_t gap = (uint64_t)cfg->order_gap_s;
  return cfg->start_s + k * (int64_t)gap +
         (int64_t)(sb_shop_hash((uint64_t)cfg->seed, D_TIME, (uint64_t)k) %
                   gap);
}

int64_t sb_shop_first_created_at_or_after(const struct sb_shop_config *cfg,
                                          int64_t t_s) {
  int64_t lo = 0, hi = cfg->orders; /* answer in [lo, hi] */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (created_s(cfg, mid) >= t_s)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

int64_t sb_shop_max_update_delay_s(void) {
  return MAX_UPDATE_DELAY_S;
}

/* The catalogue, prices included, is the same in every shop. */
static int64_t product_price_cents(int p) {
  int64_t base =
      category_base_cents[p / (BRANDS_PER_CATEGORY * PRODUCTS_PER_BRAND)];
  int64_t v = base *
              (int64_t)(60 + sb_shop_hash(0, D_PRODUCT, (uint64_t)p) % 100) /
              100;
  return (v / 100) * 100 + 99; /* x.99 */
}

static int customer_taste(const struct sb_shop_config *cfg, int64_t c,
                          int *brand) {
  struct draws d = draws_of((uint64_t)cfg->seed, D_CUSTOMER_TASTE, (uint64_t)c);
  int category = (int)draw_below(&d, N_CATEGORIES);
  *brand = (int)draw_below(&d, BRANDS_PER_CATEGORY);
  return category;
}

void sb_shop_order_get(const struct sb_shop_config *cfg, int64_t k,
                       struct sb_shop_order *o) {
  LP_ASSERT(k >= 0 && k < cfg->orders);
  memset(o, 0, sizeof(*o));
  uint64_t seed = (uint64_t)cfg->seed;
  o->k = k;
  o->created_s = created_s(cfg, k);
  struct draws d = draws_of(seed, D_ORDER, (uint64_t)k);
  uint64_t m = (uint64_t)cfg->customers;
  /* Most customers buy now and then; a few buy a lot (u^2 skew). */
  if (draw_below(&d, 10) < 6) {
    o->customer = (int64_t)draw_below(&d, m);
  } else {
    double u = draw_unit(&d);
    o->customer = (int64_t)(u * u * (double)m);
    if (o->customer >= (int64_t)m)
      o->customer = (int64_t)m - 1;
  }
  int fav_brand;
  int fav_category = customer_taste(cfg, o->customer, &fav_brand);
  uint64_t r = draw_below(&d, 100);
  o->n_lines = r < 50 ? 1 : r < 80 ? 2 : r < 95 ? 3 : 4;
  o->has_discount = draw_below(&d, 100) < 12;
  for (int i = 0; i < o->n_lines; i++) {
    struct sb_shop_line *l = &o->line[i];
    int category = draw_below(&d, 100) < 60 ? fav_category
                                            : (int)draw_below(&d, N_CATEGORIES);
    int brand = draw_below(&d, 100) < 50
                    ? fav_brand
                    : (int)draw_below(&d, BRANDS_PER_CATEGORY);
    l->product = (category * BRANDS_PER_CATEGORY + brand) * PRODUCTS_PER_BRAND +
                 (int)draw_below(&d, PRODUCTS_PER_BRAND);
    uint64_t q = draw_below(&d, 100);
    l->quantity = q < 75 ? 1 : q < 95 ? 2 : 3;
    l->price_cents = product_price_cents(l->product);
    l->line_cents = l->price_cents * l->quantity;
    l->discount_cents = o->has_discount ? l->line_cents / 10 : 0;
    l->net_cents = l->line_cents - l->discount_cents;
    l->tax_cents = (l->net_cents * TAX_PERCENT + 50) / 100;
    o->line_cents += l->line_cents;
    o->discount_cents += l->discount_cents;
    o->subtotal_cents += l->net_cents;
    o->tax_cents += l->tax_cents;
  }
  o->total_cents = o->subtotal_cents + o->tax_cents;

  struct draws fate = draws_of(seed, D_FATE, (uint64_t)k);
  int64_t roll = (int64_t)draw_below(&fate, 1000);
  if (roll < cfg->cancel_permille) {
    o->cancelled_s =
        o->created_s + 3600 + (int64_t)draw_below(&fate, 71 * 3600);
    o->financial = SB_FIN_VOIDED;
  } else if (roll < cfg->cancel_permille + cfg->refund_permille) {
    o->refund_s = o->created_s + DAY_S + (int64_t)draw_below(&fate, 29 * DAY_S);
    o->refund_lines =
        o->n_lines == 1 || draw_below(&fate, 2) == 0 ? o->n_lines : 1;
    for (int i = 0; i < o->refund_lines; i++)
      o->refund_cents += o->line[i].net_cents + o->line[i].tax_cents;
    LP_ASSERT(o->refund_cents <= o->total_cents);
    o->financial = o->refund_lines == o->n_lines ? SB_FIN_REFUNDED
                                                 : SB_FIN_PARTIALLY_REFUNDED;
  } else {
    o->financial = SB_FIN_PAID;
  }
  o->updated_s = o->created_s;
  if (o->cancelled_s > o->updated_s)
    o->updated_s = o->cancelled_s;
  if (o->refund_s > o->updated_s)
    o->updated_s = o->refund_s;
  LP_ASSERT(o->updated_s - o->created_s <= MAX_UPDATE_DELAY_S);
  if (o->cancelled_s)
    o->bc_status_id = 5;
  else if (o->refund_s)
    o->bc_status_id = 14;
  else
    o->bc_status_id =
        sb_shop_hash(seed, D_BC_STATUS, (uint64_t)k) % 100 < 70 ? 10 : 11;
}

void sb_shop_customer_get(const struct sb_shop_config *cfg, int64_t c,
                          struct sb_shop_customer *cu) {
  LP_ASSERT(c >= 0 && c < cfg->customers);
  memset(cu, 0, sizeof(*cu));
  struct draws d = draws_of((uint64_t)cfg->seed, D_CUSTOMER, (uint64_t)c);
  cu->c = c;
  /* Signed up within the 400 days before the shop's start; last changed
   * somewhere between sign-up and the start. */
  cu->created_s = cfg->start_s - DAY_S - (int64_t)draw_below(&d, 400 * DAY_S);
  cu->updated_s =
      cu->created_s +
      (int64_t)draw_below(&d, (uint64_t)(cfg->start_s - cu->created_s));
  cu->first_name = (int)draw_below(&d, LP_ARRAY_LEN(first_names));
  cu->last_name = (int)draw_below(&d, LP_ARRAY_LEN(last_names));
  cu->subscribed = draw_below(&d, 100) < 60;
  cu->vip = draw_below(&d, 100) < 10;
  int brand;
  cu->favourite_category = customer_taste(cfg, c, &brand);
}

/* ---- formats -------------------------------------------------------- */

/* Broken-down UTC. The configuration keeps every generated time before
 * 2200 (HORIZON_S); the clamp only guards the 4-digit formats. */
static void utc(int64_t s, struct tm *tm) {
  time_t t = (time_t)s;
  LP_ASSERT(gmtime_r(&t, tm));
  if (tm->tm_year > 9999 - 1900)
    tm->tm_year = 9999 - 1900;
  if (tm->tm_year < 0)
    tm->tm_year = 0;
}

void sb_shop_time_rfc3339(int64_t s, char out[40]) {
  struct tm tm;
  utc(s, &tm);
  char buf[96];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d+00:00",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec);
  lp_strlcpy(out, buf, 40);
}

void sb_shop_time_rfc3339z(int64_t s, char out[40]) {
  struct tm tm;
  utc(s, &tm);
  char buf[96];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec);
  lp_strlcpy(out, buf, 40);
}

static const char *const day_abbr[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
static const char *const month_abbr[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};

void sb_shop_time_rfc2822(int64_t s, char out[40]) {
  struct tm tm;
  utc(s, &tm);
  char buf[96];
  snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d +0000",
           day_abbr[tm.tm_wday], tm.tm_mday, month_abbr[tm.tm_mon],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  lp_strlcpy(out, buf, 40);
}

/* "Tue, 20 Nov 2012 00:00:00 +0000" (the weekday optional). */
static int parse_rfc2822(const char *s, int64_t *ms) {
  const char *p = s;
  if (isalpha((unsigned char)p[0])) {
    if (strlen(p) < 5 || p[3] != ',')
      return -1;
    p += 4;
  }
  while (*p == ' ')
    p++;
  int day, year, h, m, sec, n = 0;
  char mon[4], zone[8];
  if (sscanf(p, "%2d %3s %4d %2d:%2d:%2d %7s%n", &day, mon, &year, &h, &m, &sec,
             zone, &n) != 7 ||
      p[n] != '\0')
    return -1;
  int month = -1;
  for (int i = 0; i < 12; i++)
    if (strcmp(mon, month_abbr[i]) == 0)
      month = i + 1;
  if (month < 0 || strlen(zone) != 5 || (zone[0] != '+' && zone[0] != '-'))
    return -1;
  for (int i = 1; i < 5; i++)
    if (!isdigit((unsigned char)zone[i]))
      return -1;
  /* Re-use the ISO parser for the calendar arithmetic. */
  char iso[48];
  snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02d%c%c%c:%c%c", year,
           month, day, h, m, sec, zone[0], zone[1], zone[2], zone[3], zone[4]);
  return lp_time_parse_iso8601(iso, ms);
}

int sb_shop_time_parse(const char *s, int64_t *ms) {
  if (!s || !*s || strlen(s) > 40)
    return -1;
  if (!isdigit((unsigned char)s[0]))
    return parse_rfc2822(s, ms);
  /* An unescaped '+' in a query string arrives as a space. */
  char copy[48];
  lp_strlcpy(copy, s, sizeof(copy));
  char *sp = strchr(copy, ' ');
  if (sp && sp > copy + 10 && isdigit((unsigned char)sp[1]))
    *sp = '+';
  return lp_time_parse_iso8601(copy, ms);
}

/* ---- JSON helpers --------------------------------------------------- */

static json_t *money2(int64_t cents) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%s%lld.%02lld", cents < 0 ? "-" : "",
           (long long)(llabs(cents) / 100), (long long)(llabs(cents) % 100));
  return json_string(buf);
}

static json_t *money4(int64_t cents) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%s%lld.%02lld00", cents < 0 ? "-" : "",
           (long long)(llabs(cents) / 100), (long long)(llabs(cents) % 100));
  return json_string(buf);
}

static json_t *time3339(int64_t s) {
  char buf[40];
  sb_shop_time_rfc3339(s, buf);
  return json_string(buf);
}

static json_t *time3339z(int64_t s) {
  char buf[40];
  sb_shop_time_rfc3339z(s, buf);
  return json_string(buf);
}

static json_t *time2822(int64_t s) {
  char buf[40];
  sb_shop_time_rfc2822(s, buf);
  return json_string(buf);
}

static json_t *time_or_null(int64_t s) {
  return s ? time3339(s) : json_null();
}

static json_t *gid(const char *type, int64_t id) {
  char buf[80];
  snprintf(buf, sizeof(buf), "gid://shopify/%s/%lld", type, (long long)id);
  return json_string(buf);
}

static void customer_email(const struct sb_shop_customer *cu, char *out,
                           size_t size) {
  char name[64];
  snprintf(name, sizeof(name), "%s.%s", first_names[cu->first_name],
           last_names[cu->last_name]);
  for (char *p = name; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  snprintf(out, size, "%s.%lld@example.com", name, (long long)cu->c);
}

static const char *product_category(int p) {
  return category_names[p / (BRANDS_PER_CATEGORY * PRODUCTS_PER_BRAND)];
}

static const char *product_brand(int p) {
  int category = p / (BRANDS_PER_CATEGORY * PRODUCTS_PER_BRAND);
  return brand_names[category][(p / PRODUCTS_PER_BRAND) % BRANDS_PER_CATEGORY];
}

static const char *product_title(int p) {
  int category = p / (BRANDS_PER_CATEGORY * PRODUCTS_PER_BRAND);
  return product_nouns[category][p % PRODUCTS_PER_BRAND];
}

static const char *product_variant(int p) {
  return variant_names[sb_shop_hash(1, D_PRODUCT, (uint64_t)p) %
                       LP_ARRAY_LEN(variant_names)];
}

static void product_sku(int p, char *out, size_t size) {
  snprintf(out, size, "%s-%04d",
           category_codes[p / (BRANDS_PER_CATEGORY * PRODUCTS_PER_BRAND)], p);
}

/* ---- Shopify resources ---------------------------------------------- */

static json_t *shopify_slim_customer(const struct sb_shop_customer *cu) {
  char email[128];
  customer_email(cu, email, sizeof(email));
  int64_t id = sb_shop_shopify_customer_id(cu->c);
  return json_pack("{sI so ss ss ss sn ss sb ss ss so so}", "id",
                   (json_int_t)id, "admin_graphql_api_id", gid("Customer", id),
                   "email", email, "first_name", first_names[cu->first_name],
                   "last_name", last_names[cu->last_name], "phone", "state",
                   "enabled", "verified_email", 1, "tags", cu->vip ? "vip" : "",
                   "currency", "USD", "created_at", time3339(cu->created_s),
                   "updated_at", time3339(cu->updated_s));
}

static json_t *shopify_line_json(const struct sb_shop_order *o, int i,
                                 int refunded_quantity) {
  const struct sb_shop_line *l = &o->line[i];
  int64_t id = shopify_line_id(o->k, i);
  char sku[32], name[128];
  product_sku(l->product, sku, sizeof(sku));
  snprintf(name, sizeof(name), "%s - %s", product_title(l->product),
           product_variant(l->product));
  json_t *allocations = json_array();
  if (l->discount_cents)
    json_array_append_new(
        allocations, json_pack("{so si}", "amount", money2(l->discount_cents),
                               "discount_application_index", 0));
  return json_pack(
      "{sI so sI sI ss ss ss ss ss ss si si so ss so sb sb sb sn}", "id",
      (json_int_t)id, "admin_graphql_api_id", gid("LineItem", id), "product_id",
      (json_int_t)(8000000000LL + l->product), "variant_id",
      (json_int_t)(4000000000LL + l->product), "sku", sku, "title",
      product_title(l->product), "name", name, "variant_title",
      product_variant(l->product), "vendor", product_brand(l->product),
      "product_type", product_category(l->product), "quantity", l->quantity,
      "current_quantity", l->quantity - refunded_quantity, "price",
      money2(l->price_cents), "total_discount", "0.00", "discount_allocations",
      allocations, "gift_card", 0, "product_exists", 1, "requires_shipping", 1,
      "fulfillment_status");
}

json_t *sb_shop_shopify_refund_json(const struct sb_shop_config *cfg,
                                    const struct sb_shop_order *o) {
  (void)cfg;
  if (!o->refund_lines)
    return NULL;
  int64_t id = shopify_refund_id(o->k);
  int64_t order_id = sb_shop_shopify_order_id(o->k);
  json_t *lines = json_array();
  for (int i = 0; i < o->refund_lines; i++) {
    const struct sb_shop_line *l = &o->line[i];
    json_array_append_new(
        lines,
        json_pack("{sI sI si ss so so so}", "id",
                  (json_int_t)(2000000000LL + o->k * SB_SHOP_MAX_ITEMS + i),
                  "line_item_id", (json_int_t)shopify_line_id(o->k, i),
                  "quantity", l->quantity, "restock_type", "no_restock",
                  "subtotal", money2(l->net_cents), "total_tax",
                  money2(l->tax_cents), "line_item",
                  shopify_line_json(o, i, 0)));
  }
  int64_t tx_id = 3000000000LL + o->k;
  json_t *tx = json_pack(
      "{sI so sI ss ss ss so ss so so sn sb}", "id", (json_int_t)tx_id,
      "admin_graphql_api_id", gid("OrderTransaction", tx_id), "order_id",
      (json_int_t)order_id, "kind", "refund", "status", "success", "gateway",
      "bogus", "amount", money2(o->refund_cents), "currency", "USD",
      "created_at", time3339(o->refund_s), "processed_at",
      time3339(o->refund_s), "parent_id", "test", 0);
  return json_pack(
      "{sI so sI so so ss sb sn so s[o] s[]}", "id", (json_int_t)id,
      "admin_graphql_api_id", gid("Refund", id), "order_id",
      (json_int_t)order_id, "created_at", time3339(o->refund_s), "processed_at",
      time3339(o->refund_s), "note", "Sandbox refund", "restock", 0, "user_id",
      "refund_line_items", lines, "transactions", tx, "order_adjustments");
}

static const char *const financial_names[SB_N_FIN] = {
    "paid", "partially_refunded", "refunded", "voided"};

json_t *sb_shop_shopify_order_json(const struct sb_shop_config *cfg,
                                   const struct sb_shop_order *o) {
  struct sb_shop_customer cu;
  sb_shop_customer_get(cfg, o->customer, &cu);
  char email[128], name[32];
  customer_email(&cu, email, sizeof(email));
  int64_t id = sb_shop_shopify_order_id(o->k);
  snprintf(name, sizeof(name), "#%lld", (long long)(1001 + o->k));
  json_t *lines = json_array();
  for (int i = 0; i < o->n_lines; i++)
    json_array_append_new(
        lines,
        shopify_line_json(o, i, i < o->refund_lines ? o->line[i].quantity : 0));
  json_t *codes = json_array();
  if (o->has_discount)
    json_array_append_new(codes, json_pack("{ss so ss}", "code", "SAVE10",
                                           "amount", money2(o->discount_cents),
                                           "type", "percentage"));
  json_t *refunds = json_array();
  json_t *refund = sb_shop_shopify_refund_json(cfg, o);
  if (refund)
    json_array_append_new(refunds, refund);
  json_t *price_set = json_pack("{s{so ss} s{so ss}}", "shop_money", "amount",
                                money2(o->total_cents), "currency_code", "USD",
                                "presentment_money", "amount",
                                money2(o->total_cents), "currency_code", "USD");
  json_t *order = json_pack(
      "{sI so ss sI ss ss so so so so so sn ss ss}", "id", (json_int_t)id,
      "admin_graphql_api_id", gid("Order", id), "name", name, "order_number",
      (json_int_t)(1001 + o->k), "email", email, "contact_email", email,
      "created_at", time3339(o->created_s), "updated_at",
      time3339(o->updated_s), "processed_at", time3339(o->created_s),
      "cancelled_at", time_or_null(o->cancelled_s), "cancel_reason",
      o->cancelled_s ? json_string("customer") : json_null(), "closed_at",
      "currency", "USD", "presentment_currency", "USD");
  json_object_set_new(order, "total_price", money2(o->total_cents));
  json_object_set_new(order, "subtotal_price", money2(o->subtotal_cents));
  json_object_set_new(order, "total_discounts", money2(o->discount_cents));
  json_object_set_new(order, "total_tax", money2(o->tax_cents));
  json_object_set_new(order, "total_line_items_price", money2(o->line_cents));
  json_object_set_new(order, "current_total_price",
                      money2(o->total_cents - o->refund_cents));
  json_object_set_new(order, "total_price_set", price_set);
  json_object_set_new(order, "financial_status",
                      json_string(financial_names[o->financial]));
  json_object_set_new(order, "fulfillment_status", json_null());
  json_object_set_new(order, "discount_codes", codes);
  json_object_set_new(order, "source_name", json_string("web"));
  json_object_set_new(order, "tags", json_string(""));
  json_object_set_new(order, "test", json_false());
  json_object_set_new(order, "buyer_accepts_marketing",
                      json_boolean(cu.subscribed));
  json_object_set_new(order, "customer_locale", json_string("en"));
  json_object_set_new(order, "customer", shopify_slim_customer(&cu));
  json_object_set_new(order, "line_items", lines);
  json_object_set_new(order, "refunds", refunds);
  return order;
}

static json_t *shopify_address(const struct sb_shop_customer *cu) {
  const char *const *city = cities[cu->c % LP_ARRAY_LEN(cities)];
  char street[64], zip[16];
  snprintf(street, sizeof(street), "%lld Market Street",
           (long long)(10 + cu->c % 990));
  snprintf(zip, sizeof(zip), "%05lld", (long long)(10000 + cu->c % 89999));
  return json_pack("{sI sI ss ss ss ss ss ss ss ss ss sb}", "id",
                   (json_int_t)(1000000000LL + cu->c), "customer_id",
                   (json_int_t)sb_shop_shopify_customer_id(cu->c), "first_name",
                   first_names[cu->first_name], "last_name",
                   last_names[cu->last_name], "address1", street, "city",
                   city[0], "province", city[1], "province_code", city[2],
                   "country", "United States", "country_code", "US", "zip", zip,
                   "default", 1);
}

json_t *sb_shop_shopify_customer_json(const struct sb_shop_config *cfg,
                                      const struct sb_shop_customer *cu) {
  (void)cfg;
  char email[128];
  customer_email(cu, email, sizeof(email));
  int64_t id = sb_shop_shopify_customer_id(cu->c);
  json_t *consent = json_pack(
      "{ss ss so}", "state", cu->subscribed ? "subscribed" : "not_subscribed",
      "opt_in_level", "single_opt_in", "consent_updated_at",
      cu->subscribed ? time3339(cu->created_s) : json_null());
  json_t *sms = json_pack("{ss ss sn ss}", "state", "not_subscribed",
                          "opt_in_level", "single_opt_in", "consent_updated_at",
                          "consent_collected_from", "OTHER");
  json_t *customer = json_pack(
      "{sI so ss sn ss ss ss sb ss sn ss so so}", "id", (json_int_t)id,
      "admin_graphql_api_id", gid("Customer", id), "email", email, "phone",
      "first_name", first_names[cu->first_name], "last_name",
      last_names[cu->last_name], "state", "enabled", "verified_email", 1,
      "tags", cu->vip ? "vip" : "", "note", "currency", "USD", "created_at",
      time3339(cu->created_s), "updated_at", time3339(cu->updated_s));
  json_object_set_new(customer, "email_marketing_consent", consent);
  json_object_set_new(customer, "sms_marketing_consent", sms);
  json_object_set_new(customer, "tax_exempt", json_false());
  json_object_set_new(customer, "tax_exemptions", json_array());
  json_object_set_new(customer, "default_address", shopify_address(cu));
  json_object_set_new(customer, "addresses",
                      json_pack("[o]", shopify_address(cu)));
  return customer;
}

/* ---- BigCommerce resources ------------------------------------------ */

const char *sb_shop_bc_status_name(int status_id) {
  switch (status_id) {
  case 0:
    return "Incomplete";
  case 1:
    return "Pending";
  case 4:
    return "Refunded";
  case 5:
    return "Cancelled";
  case 10:
    return "Completed";
  case 11:
    return "Awaiting Fulfillment";
  case 14:
    return "Partially Refunded";
  default:
    return "Unknown";
  }
}

static json_t *sub_resource(const char *base_url, const char *store_hash,
                            int64_t order_id, const char *what) {
  char url[512], resource[128];
  snprintf(resource, sizeof(resource), "/orders/%lld/%s", (long long)order_id,
           what);
  snprintf(url, sizeof(url), "%s/stores/%s/v2%s", base_url, store_hash,
           resource);
  return json_pack("{ss ss}", "url", url, "resource", resource);
}

json_t *sb_shop_bc_order_json(const struct sb_shop_config *cfg,
                              const struct sb_shop_order *o,
                              const char *base_url) {
  struct sb_shop_customer cu;
  sb_shop_customer_get(cfg, o->customer, &cu);
  char email[128];
  customer_email(&cu, email, sizeof(email));
  int64_t id = sb_shop_bc_order_id(o->k);
  int items = 0;
  for (int i = 0; i < o->n_lines; i++)
    items += o->line[i].quantity;
  int64_t subtotal_tax = (o->line_cents * TAX_PERCENT + 50) / 100;
  static const char *const payment_statuses[SB_N_FIN] = {
      "captured", "partially refunded", "refunded", "void"};
  const char *payment_status = payment_statuses[o->financial];
  const char *const *city = cities[cu.c % LP_ARRAY_LEN(cities)];
  json_t *billing = json_pack(
      "{ss ss ss ss ss ss ss ss ss ss}", "first_name",
      first_names[cu.first_name], "last_name", last_names[cu.last_name],
      "company", "", "street_1", "1 Market Street", "city", city[0], "state",
      city[1], "zip", "10001", "country", "United States", "country_iso2", "US",
      "email", email);
  json_t *order =
      json_pack("{sI sI so so ss si ss}", "id", (json_int_t)id, "customer_id",
                (json_int_t)sb_shop_bc_customer_id(o->customer), "date_created",
                time2822(o->created_s), "date_modified", time2822(o->updated_s),
                "date_shipped", "", "status_id", o->bc_status_id, "status",
                sb_shop_bc_status_name(o->bc_status_id));
  json_object_set_new(order, "subtotal_ex_tax", money4(o->line_cents));
  json_object_set_new(order, "subtotal_inc_tax",
                      money4(o->line_cents + subtotal_tax));
  json_object_set_new(order, "subtotal_tax", money4(subtotal_tax));
  json_object_set_new(order, "base_shipping_cost", money4(0));
  json_object_set_new(order, "total_ex_tax", money4(o->subtotal_cents));
  json_object_set_new(order, "total_inc_tax", money4(o->total_cents));
  json_object_set_new(order, "total_tax", money4(o->tax_cents));
  json_object_set_new(order, "items_total", json_integer(items));
  json_object_set_new(order, "items_shipped", json_integer(0));
  json_object_set_new(order, "payment_method", json_string("Credit Card"));
  json_object_set_new(order, "payment_status", json_string(payment_status));
  json_object_set_new(order, "refunded_amount", money4(o->refund_cents));
  json_object_set_new(order, "discount_amount", money4(o->discount_cents));
  json_object_set_new(order, "coupon_discount", money4(o->discount_cents));
  json_object_set_new(order, "currency_code", json_string("USD"));
  json_object_set_new(order, "default_currency_code", json_string("USD"));
  json_object_set_new(order, "order_source", json_string("www"));
  json_object_set_new(order, "channel_id", json_integer(1));
  json_object_set_new(order, "is_deleted", json_false());
  json_object_set_new(order, "billing_address", billing);
  json_object_set_new(order, "products",
                      sub_resource(base_url, cfg->store_hash, id, "products"));
  json_object_set_new(
      order, "shipping_addresses",
      sub_resource(base_url, cfg->store_hash, id, "shipping_addresses"));
  json_object_set_new(order, "coupons",
                      sub_resource(base_url, cfg->store_hash, id, "coupons"));
  return order;
}

json_t *sb_shop_bc_products_json(const struct sb_shop_config *cfg,
                                 const struct sb_shop_order *o) {
  (void)cfg;
  json_t *arr = json_array();
  for (int i = 0; i < o->n_lines; i++) {
    const struct sb_shop_line *l = &o->line[i];
    char sku[32];
    product_sku(l->product, sku, sizeof(sku));
    int64_t unit_tax = (l->price_cents * TAX_PERCENT + 50) / 100;
    json_t *p = json_pack("{sI sI sI sI ss ss ss si}", "id",
                          (json_int_t)(o->k * SB_SHOP_MAX_ITEMS + i + 1),
                          "order_id", (json_int_t)sb_shop_bc_order_id(o->k),
                          "product_id", (json_int_t)(1000 + l->product),
                          "variant_id", (json_int_t)(2000 + l->product), "name",
                          product_title(l->product), "sku", sku, "type",
                          "physical", "quantity", l->quantity);
    json_object_set_new(p, "base_price", money4(l->price_cents));
    json_object_set_new(p, "price_ex_tax", money4(l->price_cents));
    json_object_set_new(p, "price_inc_tax", money4(l->price_cents + unit_tax));
    json_object_set_new(p, "price_tax", money4(unit_tax));
    json_object_set_new(p, "total_ex_tax", money4(l->net_cents));
    json_object_set_new(p, "total_inc_tax",
                        money4(l->net_cents + l->tax_cents));
    json_object_set_new(p, "total_tax", money4(l->tax_cents));
    json_t *discounts = json_array();
    if (l->discount_cents)
      json_array_append_new(
          discounts, json_pack("{ss so ss}", "id", "coupon", "amount",
                               money4(l->discount_cents), "code", "SAVE10"));
    json_object_set_new(p, "applied_discounts", discounts);
    json_object_set_new(p, "product_options", json_array());
    /* Sandbox extras: the real line has neither (catalog API). */
    json_object_set_new(p, "brand", json_string(product_brand(l->product)));
    json_object_set_new(p, "category",
                        json_string(product_category(l->product)));
    json_array_append_new(arr, p);
  }
  return arr;
}

json_t *sb_shop_bc_customer_json(const struct sb_shop_config *cfg,
                                 const struct sb_shop_customer *cu) {
  (void)cfg;
  char email[128];
  customer_email(cu, email, sizeof(email));
  return json_pack(
      "{sI s{sb} ss si ss ss ss ss ss ss ss so so sb s[{si}] si sn}", "id",
      (json_int_t)sb_shop_bc_customer_id(cu->c), "authentication",
      "force_password_reset", 0, "company", "", "customer_group_id", 0, "email",
      email, "first_name", first_names[cu->first_name], "last_name",
      last_names[cu->last_name], "notes", "", "phone", "",
      "registration_ip_address", "", "tax_exempt_category", "", "date_created",
      time3339z(cu->created_s), "date_modified", time3339z(cu->updated_s),
      "accepts_product_review_abandoned_cart_emails", cu->subscribed,
      "store_credit_amounts", "amount", 0, "origin_channel_id", 1,
      "channel_ids");
}

json_t *sb_shop_bc_refund_json(const struct sb_shop_config *cfg,
                               const struct sb_shop_order *o) {
  (void)cfg;
  if (!o->refund_lines)
    return NULL;
  json_t *items = json_array();
  int64_t tax = 0;
  for (int i = 0; i < o->refund_lines; i++) {
    tax += o->line[i].tax_cents;
    json_array_append_new(
        items, json_pack("{ss sI si sn ss}", "item_type", "PRODUCT", "item_id",
                         (json_int_t)(o->k * SB_SHOP_MAX_ITEMS + i + 1),
                         "quantity", o->line[i].quantity, "requested_amount",
                         "reason", "Sandbox refund"));
  }
  json_t *payments = json_pack(
      "[{sI ss so sb sb ss}]", "id", (json_int_t)sb_shop_bc_refund_id(o->k),
      "provider_id", "braintree", "amount", money4(o->refund_cents), "offline",
      0, "is_declined", 0, "declined_message", "");
  return json_pack("{sI sI si so ss so so sb so so}", "id",
                   (json_int_t)sb_shop_bc_refund_id(o->k), "order_id",
                   (json_int_t)sb_shop_bc_order_id(o->k), "user_id", 0,
                   "created", time3339z(o->refund_s), "reason",
                   "Sandbox refund", "total_amount", money4(o->refund_cents),
                   "total_tax", money4(tax), "uses_merchant_override_values", 0,
                   "payments", payments, "items", items);
}
