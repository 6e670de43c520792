/*
 * webhook_sender.c — POST /_sandbox/webhooks/send: delivers Shopify or
 * BigCommerce webhooks for a range of generated orders or customers to a
 * loopback URL, the way those platforms do (shared reference apis.md §5,
 * §6), with the misbehaviour a receiver must survive: duplicates,
 * reordering and retries carrying the original payload.
 *
 * The plan (which events, which duplicates, the order) is a pure function
 * of the shop's seed and the request, so the same request makes the same
 * plan; bodies are regenerated per delivery from (configuration, k), so a
 * duplicate or a retry carries identical bytes. Shopify deliveries carry
 * X-Shopify-Hmac-Sha256 = base64 HMAC-SHA256(secret, body), a stable
 * X-Shopify-Event-Id per (topic, resource) and a new X-Shopify-Webhook-Id
 * per attempt; BigCommerce deliveries the ids-only body whose "hash" is
 * the SHA-1 hex of the payload without it (stable per event: created_at is
 * the event's own time) and the custom header.
 *
 * Sending holds no lock: each of `concurrency` worker threads has its own
 * libcurl easy handle (keep-alive), takes the next delivery from a shared
 * index and merges its counts at the end. Only http:// URLs on
 * 127.0.0.0/8 are accepted, with no proxy and no redirects.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "log.h"
#include "shop.h"
#include "util.h"

#define MAX_COUNT 1000000LL
#define MAX_CONCURRENCY 64
#define MAX_EVENT_IDS 1000
#define D_PLAN 0x504c414eULL
#define D_EVENT 0x4556454eULL
#define D_WEBHOOK 0x57454248ULL

enum topic_resource { R_ORDER, R_REFUND, R_CUSTOMER };
/* Which orders a topic skips. */
enum topic_skip { SKIP_NONE, SKIP_UNREFUNDED, SKIP_UNCANCELLED, SKIP_UNPAID };

static const struct topic {
  const char *name;
  enum sb_shop_side side;
  enum topic_resource resource;
  enum topic_skip skip;
} topics[] = {
    {"orders/create", SB_SHOP_SHOPIFY, R_ORDER, SKIP_NONE},
    {"orders/updated", SB_SHOP_SHOPIFY, R_ORDER, SKIP_NONE},
    {"orders/paid", SB_SHOP_SHOPIFY, R_ORDER, SKIP_UNPAID},
    {"orders/cancelled", SB_SHOP_SHOPIFY, R_ORDER, SKIP_UNCANCELLED},
    {"refunds/create", SB_SHOP_SHOPIFY, R_REFUND, SKIP_UNREFUNDED},
    {"customers/create", SB_SHOP_SHOPIFY, R_CUSTOMER, SKIP_NONE},
    {"customers/update", SB_SHOP_SHOPIFY, R_CUSTOMER, SKIP_NONE},
    {"store/order/created", SB_SHOP_BIGCOMMERCE, R_ORDER, SKIP_NONE},
    {"store/order/updated", SB_SHOP_BIGCOMMERCE, R_ORDER, SKIP_NONE},
    {"store/order/statusUpdated", SB_SHOP_BIGCOMMERCE, R_ORDER, SKIP_NONE},
    {"store/order/refund/created", SB_SHOP_BIGCOMMERCE, R_REFUND,
     SKIP_UNREFUNDED},
    {"store/customer/created", SB_SHOP_BIGCOMMERCE, R_CUSTOMER, SKIP_NONE},
    {"store/customer/updated", SB_SHOP_BIGCOMMERCE, R_CUSTOMER, SKIP_NONE},
};

struct send_request {
  enum sb_shop_side side;
  const struct topic *topic;
  char url[512];
  char secret[256];
  char header[64];
  char api_version[32];
  long long first, count, duplicate_permille, reorder_window, retries;
  long long retry_backoff_ms, concurrency, timeout_ms;
};

struct delivery {
  int64_t index; /* k or c */
  int duplicate;
};

/* Shared by the workers of one send. */
struct send_job {
  const struct send_request *rq;
  const struct sb_shop_config *cfg;
  struct sb_shop *shop;
  const struct delivery *plan;
  size_t n_plan;
  uint64_t send_no;
  int64_t triggered_ms;
  pthread_mutex_t lock; /* next and the totals below */
  size_t next;
  long attempts, failed, not_attempted;
  long by_status[600];
  long transport_errors;
  char first_error[CURL_ERROR_SIZE];
};

/* ---- request parsing ------------------------------------------------ */

static int int_field(const json_t *body, const char *key, long long min,
                     long long max, long long *out, char *errstr,
                     size_t errstr_size) {
  json_t *v = json_object_get(body, key);
  if (!v)
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) < min ||
      json_integer_value(v) > max)
    return lp_err(errstr, errstr_size, "%s: not an integer in %lld..%lld", key,
                  min, max);
  *out = json_integer_value(v);
  return 0;
}

static int string_field(const json_t *body, const char *key, char *out,
                        size_t size, int required, char *errstr,
                        size_t errstr_size) {
  json_t *v = json_object_get(body, key);
  if (!v) {
    if (required)
      return lp_err(errstr, errstr_size, "%s: required", key);
    return 0;
  }
  if (!json_is_string(v) || strlen(json_string_value(v)) >= size)
    return lp_err(errstr, errstr_size,
                  "%s: not a string shorter than %zu bytes", key, size);
  lp_strlcpy(out, json_string_value(v), size);
  return 0;
}

/* http://127.x.y.z[:port]/...: the sandbox never posts anywhere else. */
static int check_url(const char *url, char *errstr, size_t errstr_size) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL;
  int rc = -1;
  struct in_addr addr;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
    lp_err(errstr, errstr_size, "url: \"%.100s\" is not a URL", url);
  } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             strcmp(scheme, "http") != 0) {
    lp_err(errstr, errstr_size, "url: only http:// is supported");
  } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
             inet_pton(AF_INET, host, &addr) != 1 ||
             (ntohl(addr.s_addr) >> 24) != 127) {
    lp_err(errstr, errstr_size,
           "url: the host must be an address in 127.0.0.0/8 (the sandbox "
           "never posts off the loopback)");
  } else {
    rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return rc;
}

static int parse_request(const json_t *body, const struct sb_shop_config *cfg,
                         struct send_request *rq, char *errstr,
                         size_t errstr_size) {
  static const char *const keys[] = {"platform",
                                     "url",
                                     "secret",
                                     "header",
                                     "topic",
                                     "first",
                                     "count",
                                     "duplicate_permille",
                                     "reorder_window",
                                     "retries",
                                     "retry_backoff_ms",
                                     "concurrency",
                                     "timeout_ms",
                                     "api_version"};
  if (!json_is_object(body))
    return lp_err(errstr, errstr_size, "body: a JSON object is required");
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)body, key, v) {
    size_t i = 0;
    while (i < LP_ARRAY_LEN(keys) && strcmp(keys[i], key) != 0)
      i++;
    if (i == LP_ARRAY_LEN(keys))
      return lp_err(errstr, errstr_size,
                    "%s: unknown key (platform, url, secret, header, topic, "
                    "first, count, duplicate_permille, reorder_window, "
                    "retries, retry_backoff_ms, concurrency, timeout_ms, "
                    "api_version)",
                    key);
  }
  memset(rq, 0, sizeof(*rq));
  lp_strlcpy(rq->header, "X-Bridge-Secret", sizeof(rq->header));
  lp_strlcpy(rq->api_version, "2025-01", sizeof(rq->api_version));
  rq->count = 1;
  rq->retry_backoff_ms = 200;
  rq->concurrency = 1;
  rq->timeout_ms = 5000;
  char platform[32] = "", topic[64] = "";
  if (string_field(body, "platform", platform, sizeof(platform), 1, errstr,
                   errstr_size) ||
      string_field(body, "url", rq->url, sizeof(rq->url), 1, errstr,
                   errstr_size) ||
      string_field(body, "secret", rq->secret, sizeof(rq->secret), 0, errstr,
                   errstr_size) ||
      string_field(body, "header", rq->header, sizeof(rq->header), 0, errstr,
                   errstr_size) ||
      string_field(body, "topic", topic, sizeof(topic), 1, errstr,
                   errstr_size) ||
      string_field(body, "api_version", rq->api_version,
                   sizeof(rq->api_version), 0, errstr, errstr_size) ||
      int_field(body, "first", 0, SB_SHOP_MAX_CUSTOMERS, &rq->first, errstr,
                errstr_size) ||
      int_field(body, "count", 1, MAX_COUNT, &rq->count, errstr, errstr_size) ||
      int_field(body, "duplicate_permille", 0, 1000, &rq->duplicate_permille,
                errstr, errstr_size) ||
      int_field(body, "reorder_window", 0, MAX_COUNT, &rq->reorder_window,
                errstr, errstr_size) ||
      int_field(body, "retries", 0, 20, &rq->retries, errstr, errstr_size) ||
      int_field(body, "retry_backoff_ms", 0, 60000, &rq->retry_backoff_ms,
                errstr, errstr_size) ||
      int_field(body, "concurrency", 1, MAX_CONCURRENCY, &rq->concurrency,
                errstr, errstr_size) ||
      int_field(body, "timeout_ms", 100, 60000, &rq->timeout_ms, errstr,
                errstr_size))
    return -1;
  if (strcmp(platform, "shopify") == 0)
    rq->side = SB_SHOP_SHOPIFY;
  else if (strcmp(platform, "bigcommerce") == 0)
    rq->side = SB_SHOP_BIGCOMMERCE;
  else
    return lp_err(errstr, errstr_size,
                  "platform: \"%.40s\" is not shopify or bigcommerce",
                  platform);
  for (size_t i = 0; i < LP_ARRAY_LEN(topics) && !rq->topic; i++)
    if (topics[i].side == rq->side && strcmp(topics[i].name, topic) == 0)
      rq->topic = &topics[i];
  if (!rq->topic)
    return lp_err(
        errstr, errstr_size, "topic: \"%.60s\" is not a %s topic (%s)", topic,
        platform,
        rq->side == SB_SHOP_SHOPIFY
            ? "orders/create, orders/updated, orders/paid, orders/cancelled, "
              "refunds/create, customers/create, customers/update"
            : "store/order/created, store/order/updated, "
              "store/order/statusUpdated, store/order/refund/created, "
              "store/customer/created, store/customer/updated");
  if (rq->side == SB_SHOP_SHOPIFY && !rq->secret[0])
    return lp_err(errstr, errstr_size,
                  "secret: required for shopify (the HMAC key)");
  for (const char *p = rq->header; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
      return lp_err(errstr, errstr_size,
                    "header: not a header name (letters, digits, '-', '_')");
  if (!rq->header[0])
    return lp_err(errstr, errstr_size, "header: must not be empty");
  for (const char *p = rq->secret; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return lp_err(errstr, errstr_size,
                    "secret: control characters cannot go in a header");
  for (const char *p = rq->api_version; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-')
      return lp_err(errstr, errstr_size,
                    "api_version: letters, digits and '-' only");
  long long total =
      rq->topic->resource == R_CUSTOMER ? cfg->customers : cfg->orders;
  if (rq->first + rq->count > total)
    return lp_err(errstr, errstr_size,
                  "first + count: %s %lld..%lld asked, but the shop has %lld "
                  "(POST /_sandbox/shop changes that)",
                  rq->topic->resource == R_CUSTOMER ? "customers" : "orders",
                  rq->first, rq->first + rq->count - 1, total);
  return check_url(rq->url, errstr, errstr_size);
}

/* ---- plan ----------------------------------------------------------- */

static uint64_t text_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

static int skipped(const struct sb_shop_config *cfg, const struct topic *t,
                   int64_t k) {
  if (t->skip == SKIP_NONE)
    return 0;
  struct sb_shop_order o;
  sb_shop_order_get(cfg, k, &o);
  switch (t->skip) {
  case SKIP_UNREFUNDED:
    return !o.refund_lines;
  case SKIP_UNCANCELLED:
    return !o.cancelled_s;
  case SKIP_UNPAID:
    return o.financial == SB_FIN_VOIDED;
  default:
    return 0;
  }
}

/* Events in index order, duplicates right after their original, then
 * shuffled within windows of reorder_window. Caller frees. */
static struct delivery *make_plan(const struct sb_shop_config *cfg,
                                  const struct send_request *rq, size_t *n_plan,
                                  long *events, long *duplicates, long *skips) {
  uint64_t state =
      sb_shop_hash((uint64_t)cfg->seed, D_PLAN,
                   text_hash(rq->topic->name) ^ ((uint64_t)rq->first << 20) ^
                       (uint64_t)rq->count);
  size_t cap = (size_t)rq->count + 16, n = 0;
  struct delivery *plan = lp_xmalloc(cap * sizeof(*plan));
  *events = *duplicates = *skips = 0;
  for (int64_t i = rq->first; i < rq->first + rq->count; i++) {
    if (skipped(cfg, rq->topic, i)) {
      (*skips)++;
      continue;
    }
    (*events)++;
    if (n + 2 > cap) {
      cap *= 2;
      plan = lp_xrealloc(plan, cap * sizeof(*plan));
    }
    plan[n].index = i;
    plan[n++].duplicate = 0;
    state = sb_shop_hash(state, D_PLAN, (uint64_t)i);
    if ((long long)(state % 1000) < rq->duplicate_permille) {
      plan[n].index = i;
      plan[n++].duplicate = 1;
      (*duplicates)++;
    }
  }
  if (rq->reorder_window >= 2) {
    size_t w = (size_t)rq->reorder_window;
    for (size_t start = 0; start < n; start += w) {
      size_t len = n - start < w ? n - start : w;
      for (size_t j = len; j > 1; j--) {
        state = sb_shop_hash(state, D_PLAN, j);
        size_t r = (size_t)(state % j);
        struct delivery t = plan[start + j - 1];
        plan[start + j - 1] = plan[start + r];
        plan[start + r] = t;
      }
    }
  }
  *n_plan = n;
  return plan;
}

/* ---- bodies and headers --------------------------------------------- */

static void shopify_event_id(const struct sb_shop_config *cfg,
                             const struct topic *t, int64_t index,
                             char out[37]) {
  uint64_t a = sb_shop_hash((uint64_t)cfg->seed, D_EVENT,
                            text_hash(t->name) ^ (uint64_t)index);
  sb_shop_uuid(a, sb_shop_hash(a, D_EVENT, (uint64_t)index), out);
}

static char *shopify_body(const struct sb_shop_config *cfg,
                          const struct topic *t, int64_t index) {
  json_t *body;
  if (t->resource == R_CUSTOMER) {
    struct sb_shop_customer cu;
    sb_shop_customer_get(cfg, index, &cu);
    body = sb_shop_shopify_customer_json(cfg, &cu);
  } else {
    struct sb_shop_order o;
    sb_shop_order_get(cfg, index, &o);
    body = t->resource == R_REFUND ? sb_shop_shopify_refund_json(cfg, &o)
                                   : sb_shop_shopify_order_json(cfg, &o);
  }
  LP_ASSERT(body);
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  LP_ASSERT(text);
  return text;
}

static void sha1_hex(const char *data, size_t len, char out[41]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  LP_ASSERT(EVP_Digest(data, len, md, &n, EVP_sha1(), NULL) == 1 && n == 20);
  for (unsigned i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The ids-only body; *hash receives its "hash". */
static char *bigcommerce_body(const struct sb_shop_config *cfg,
                              const struct topic *t, int64_t index,
                              char hash[41]) {
  char store_id[16], producer[96];
  snprintf(
      store_id, sizeof(store_id), "%llu",
      (unsigned long long)(1000000 + text_hash(cfg->store_hash) % 9000000));
  snprintf(producer, sizeof(producer), "stores/%s", cfg->store_hash);
  json_t *data;
  int64_t at;
  if (t->resource == R_CUSTOMER) {
    struct sb_shop_customer cu;
    sb_shop_customer_get(cfg, index, &cu);
    data = json_pack("{ss sI}", "type", "customer", "id",
                     (json_int_t)sb_shop_bc_customer_id(index));
    at = strcmp(t->name, "store/customer/created") == 0 ? cu.created_s
                                                        : cu.updated_s;
  } else {
    struct sb_shop_order o;
    sb_shop_order_get(cfg, index, &o);
    data = json_pack("{ss sI}", "type", "order", "id",
                     (json_int_t)sb_shop_bc_order_id(index));
    at = o.created_s;
    if (strcmp(t->name, "store/order/statusUpdated") == 0) {
      int previous = o.bc_status_id == 11 ? 1 : o.bc_status_id == 14 ? 10 : 11;
      json_object_set_new(data, "status",
                          json_pack("{si si}", "previous_status_id", previous,
                                    "new_status_id", o.bc_status_id));
      at = o.updated_s;
    } else if (strcmp(t->name, "store/order/updated") == 0) {
      at = o.updated_s;
    } else if (t->resource == R_REFUND) {
      json_object_set_new(data, "refund",
                          json_pack("{sI}", "refund_id",
                                    (json_int_t)sb_shop_bc_refund_id(index)));
      at = o.refund_s;
    }
  }
  json_t *payload = json_pack("{ss ss sO sI ss}", "scope", t->name, "store_id",
                              store_id, "data", data, "created_at",
                              (json_int_t)at, "producer", producer);
  char *text = json_dumps(payload, JSON_COMPACT);
  LP_ASSERT(text);
  sha1_hex(text, strlen(text), hash);
  free(text);
  json_decref(payload);
  json_t *body = json_pack("{ss ss so ss sI ss}", "scope", t->name, "store_id",
                           store_id, "data", data, "hash", hash, "created_at",
                           (json_int_t)at, "producer", producer);
  text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  LP_ASSERT(text);
  return text;
}

/* ---- workers -------------------------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t n, void *cls) {
  (void)ptr;
  (void)cls;
  return size * n;
}

/* Sleeps ms in slices, returning early when the sandbox stops. */
static void pause_ms(const struct sb_shop *shop, long long ms) {
  while (ms > 0 && !shop->stopping) {
    long long slice = ms < 50 ? ms : 50;
    struct timespec ts = {0, (long)slice * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
      ;
    ms -= slice;
  }
}

struct worker_counts {
  long attempts, failed, transport_errors;
  long by_status[600];
  char first_error[CURL_ERROR_SIZE];
};

/* One delivery: every attempt until a 2xx or the retries are spent. */
static void deliver(struct send_job *job, CURL *curl, size_t slot,
                    struct worker_counts *wc) {
  const struct send_request *rq = job->rq;
  const struct delivery *d = &job->plan[slot];
  char *body;
  char event_id[41] = "";
  if (rq->side == SB_SHOP_SHOPIFY) {
    body = shopify_body(job->cfg, rq->topic, d->index);
    shopify_event_id(job->cfg, rq->topic, d->index, event_id);
  } else {
    body = bigcommerce_body(job->cfg, rq->topic, d->index, event_id);
  }
  size_t len = strlen(body);
  char hmac[45] = "", triggered[32];
  if (rq->side == SB_SHOP_SHOPIFY)
    sb_shop_hmac_sha256_base64(rq->secret, strlen(rq->secret), body, len, hmac);
  lp_time_format_iso8601(job->triggered_ms, triggered, sizeof(triggered));

  char errbuf[CURL_ERROR_SIZE];
  long long backoff = rq->retry_backoff_ms;
  for (long long attempt = 0; attempt <= rq->retries && !job->shop->stopping;
       attempt++) {
    if (attempt > 0) {
      pause_ms(job->shop, backoff);
      backoff *= 2;
      if (job->shop->stopping)
        break;
    }
    struct curl_slist *h = NULL;
    char line[600];
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (rq->side == SB_SHOP_SHOPIFY) {
      char webhook_id[37];
      uint64_t a = sb_shop_hash(job->send_no, D_WEBHOOK,
                                ((uint64_t)slot << 8) ^ (uint64_t)attempt);
      sb_shop_uuid(a, sb_shop_hash(a, D_WEBHOOK, (uint64_t)job->cfg->seed),
                   webhook_id);
      const char *const fields[][2] = {
          {"X-Shopify-Topic", rq->topic->name},
          {"X-Shopify-Hmac-Sha256", hmac},
          {"X-Shopify-Shop-Domain", job->cfg->shop},
          {"X-Shopify-API-Version", rq->api_version},
          {"X-Shopify-Webhook-Id", webhook_id},
          {"X-Shopify-Event-Id", event_id},
          {"X-Shopify-Triggered-At", triggered},
          {"User-Agent", "Shopify-Captain-Hook"}};
      for (size_t i = 0; i < LP_ARRAY_LEN(fields); i++) {
        snprintf(line, sizeof(line), "%s: %s", fields[i][0], fields[i][1]);
        h = curl_slist_append(h, line);
      }
    } else {
      h = curl_slist_append(h, "User-Agent: BigCommerce-Webhooks (sandbox)");
      if (rq->secret[0]) {
        snprintf(line, sizeof(line), "%s: %s", rq->header, rq->secret);
        h = curl_slist_append(h, line);
      }
    }
    LP_ASSERT(h);
    curl_easy_setopt(curl, CURLOPT_URL, rq->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    errbuf[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(h);
    wc->attempts++;
    long status = 0;
    if (rc == CURLE_OK)
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status < 100 || status >= 600) {
      wc->transport_errors++;
      if (!wc->first_error[0])
        snprintf(wc->first_error, sizeof(wc->first_error), "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
      continue;
    }
    wc->by_status[status]++;
    if (status >= 200 && status < 300) {
      free(body);
      return;
    }
  }
  wc->failed++;
  free(body);
}

static void *worker(void *arg) {
  struct send_job *job = arg;
  struct worker_counts *wc = lp_xcalloc(1, sizeof(*wc));
  CURL *curl = curl_easy_init();
  LP_ASSERT(curl);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)job->rq->timeout_ms);
  curl_easy_setopt(
      curl, CURLOPT_CONNECTTIMEOUT_MS,
      (long)(job->rq->timeout_ms < 1000 ? job->rq->timeout_ms : 1000));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  for (;;) {
    pthread_mutex_lock(&job->lock);
    size_t slot = job->next;
    if (slot < job->n_plan && !job->shop->stopping)
      job->next++;
    else
      slot = job->n_plan;
    pthread_mutex_unlock(&job->lock);
    if (slot >= job->n_plan)
      break;
    deliver(job, curl, slot, wc);
  }
  curl_easy_cleanup(curl);
  pthread_mutex_lock(&job->lock);
  job->attempts += wc->attempts;
  job->failed += wc->failed;
  job->transport_errors += wc->transport_errors;
  for (int s = 0; s < 600; s++)
    job->by_status[s] += wc->by_status[s];
  if (!job->first_error[0] && wc->first_error[0])
    memcpy(job->first_error, wc->first_error, sizeof(job->first_error));
  pthread_mutex_unlock(&job->lock);
  free(wc);
  return NULL;
}

/* Adjacent pairs of the plan whose indexes go backwards. */
static long inversions(const struct delivery *plan, size_t n) {
  long r = 0;
  for (size_t i = 1; i < n; i++)
    r += plan[i].index < plan[i - 1].index;
  return r;
}

void sb_shop_webhooks_send(struct sb_shop *shop, const struct sb_request *req,
                           struct sb_response *resp) {
  char err[512];
  if (req->too_large || !req->json) {
    snprintf(err, sizeof(err), "body: %s",
             req->too_large    ? "too large"
             : req->json_error ? req->json_error
                               : "a JSON object is required");
    sb_respond_json(resp, 400, json_pack("{ss}", "error", err), NULL);
    return;
  }
  struct sb_shop_config cfg;
  pthread_mutex_lock(&shop->lock);
  cfg = shop->cfg;
  uint64_t send_no = ++shop->sends;
  pthread_mutex_unlock(&shop->lock);
  struct send_request rq;
  if (parse_request(req->json, &cfg, &rq, err, sizeof(err)) != 0) {
    sb_respond_json(resp, 400, json_pack("{ss}", "error", err), NULL);
    return;
  }
  int64_t started = lp_mono_us();
  size_t n_plan;
  long events, duplicates, skips;
  struct delivery *plan =
      make_plan(&cfg, &rq, &n_plan, &events, &duplicates, &skips);
  struct send_job *job = lp_xcalloc(1, sizeof(*job));
  job->rq = &rq;
  job->cfg = &cfg;
  job->shop = shop;
  job->plan = plan;
  job->n_plan = n_plan;
  job->send_no = sb_shop_hash((uint64_t)cfg.seed, D_WEBHOOK, send_no) ^
                 (uint64_t)lp_now_ms();
  job->triggered_ms = lp_now_ms();
  LP_ASSERT(pthread_mutex_init(&job->lock, NULL) == 0);

  pthread_t threads[MAX_CONCURRENCY];
  int started_threads = 0;
  long long want = rq.concurrency;
  if ((long long)n_plan < want)
    want = n_plan ? (long long)n_plan : 1;
  for (long long i = 0; i < want; i++) {
    if (pthread_create(&threads[started_threads], NULL, worker, job) != 0)
      break;
    started_threads++;
  }
  if (started_threads == 0)
    worker(job); /* no thread could start: send from this one */
  for (int i = 0; i < started_threads; i++)
    pthread_join(threads[i], NULL);
  job->not_attempted = (long)(n_plan - job->next);

  json_t *status = json_object();
  for (int s = 100; s < 600; s++)
    if (job->by_status[s]) {
      char key[16];
      snprintf(key, sizeof(key), "%d", s);
      json_object_set_new(status, key, json_integer(job->by_status[s]));
    }
  if (job->transport_errors)
    json_object_set_new(status, "transport_error",
                        json_integer(job->transport_errors));
  json_t *out = json_pack(
      "{sI sI so sI sI sI sI sI sI sI}", "deliveries", (json_int_t)n_plan,
      "attempts", (json_int_t)job->attempts, "status", status, "failed",
      (json_int_t)(job->failed + job->not_attempted), "not_attempted",
      (json_int_t)job->not_attempted, "events", (json_int_t)events,
      "duplicates", (json_int_t)duplicates, "skipped", (json_int_t)skips,
      "reordered", (json_int_t)inversions(plan, n_plan), "elapsed_ms",
      (json_int_t)((lp_mono_us() - started) / 1000));
  if (job->first_error[0])
    json_object_set_new(out, "first_transport_error",
                        json_string(job->first_error));
  if (rq.count <= MAX_EVENT_IDS) {
    json_t *ids = json_array();
    for (int64_t i = rq.first; i < rq.first + rq.count; i++) {
      if (skipped(&cfg, rq.topic, i))
        continue;
      char id[41];
      if (rq.side == SB_SHOP_SHOPIFY) {
        shopify_event_id(&cfg, rq.topic, i, id);
      } else {
        char *body = bigcommerce_body(&cfg, rq.topic, i, id);
        free(body);
      }
      json_array_append_new(ids, json_string(id));
    }
    json_object_set_new(out, "event_ids", ids);
  }
  LP_INFO("webhooks sent",
          "\"platform\":%s,\"topic\":%s,\"deliveries\":%ld,\"attempts\":%ld,"
          "\"failed\":%ld",
          lp_log_str(rq.side == SB_SHOP_SHOPIFY ? "shopify" : "bigcommerce"),
          lp_log_str(rq.topic->name), (long)n_plan, job->attempts,
          job->failed + job->not_attempted);
  pthread_mutex_destroy(&job->lock);
  free(job);
  free(plan);
  sb_respond_json(resp, 200, out, NULL);
}
