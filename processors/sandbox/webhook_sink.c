/*
 * webhook_sink.c — a webhook receiver inside the sandbox, to test the
 * sender (and anything else that posts webhooks) without a bridge:
 *
 *   POST /_sandbox/webhooks/sink          records one delivery; answers
 *                                         200, or fail_status to the first
 *                                         fail_first attempts of each event
 *   GET  /_sandbox/webhooks/sink[?since_seq=N][&bodies=1]  what was
 *                                         received
 *   GET  /_sandbox/webhooks/sink/config
 *   POST /_sandbox/webhooks/sink/config   {"secret", "header",
 *                                         "fail_first", "fail_status",
 *                                         "clear"} (omitted: unchanged)
 *
 * A record keeps the delivery's headers (names lower-cased), the body's
 * SHA-256 and length, whether X-Shopify-Hmac-Sha256 verifies with the
 * configured secret (null: no HMAC header or no secret) and whether the
 * configured custom header carries the secret (null: no header
 * configured), the event key (X-Shopify-Event-Id, else the body's "hash",
 * else the body's SHA-256), the attempt number for that key and the status
 * answered, and the body itself (shown with ?bodies=1; bodies over
 * MAX_BODY, or past MAX_BODY_BYTES in all, are not kept). Records are
 * capped (MAX_RECORDS; later ones are counted as dropped, still answered).
 * The secret is never echoed back.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "log.h"
#include "shop.h"
#include "util.h"

#define MAX_RECORDS 100000
#define MAX_SECRET 256
#define MAX_BODY 65536             /* larger bodies are not kept */
#define MAX_BODY_BYTES (64L << 20) /* nor any once this much is kept */

struct sink_record {
  long seq;
  int64_t time_ms;
  json_t *headers; /* owned */
  char body_sha256[65];
  size_t body_len;
  int hmac_ok, header_ok; /* -1 = not applicable */
  int status;
  long attempt;
  char *event_key; /* owned */
  char *topic;     /* owned; NULL when unknown */
  char *body;      /* owned copy, NULL when not kept (see MAX_BODY) */
  const char *platform;
};

struct sb_sink {
  struct sink_record *records; /* owned, n used */
  size_t n, cap;
  long received, dropped;
  size_t body_bytes;       /* kept in records */
  char secret[MAX_SECRET]; /* empty = none */
  char header[64];         /* custom header to check; empty = none */
  long fail_first;
  int fail_status;
  struct sb_map *attempts; /* event key -> long (owned) */
};

static void free_value(void *p) {
  free(p);
}

struct sb_sink *sb_sink_new(void) {
  struct sb_sink *s = lp_xcalloc(1, sizeof(*s));
  s->attempts = sb_map_new(free_value);
  s->fail_status = 503;
  return s;
}

void sb_sink_clear(struct sb_sink *s) {
  for (size_t i = 0; i < s->n; i++) {
    json_decref(s->records[i].headers);
    free(s->records[i].event_key);
    free(s->records[i].topic);
    free(s->records[i].body);
  }
  s->n = 0;
  s->body_bytes = 0;
  s->received = s->dropped = 0;
  sb_map_clear(s->attempts);
}

void sb_sink_destroy(struct sb_sink **sp) {
  if (!sp || !*sp)
    return;
  struct sb_sink *s = *sp;
  sb_sink_clear(s);
  free(s->records);
  sb_map_destroy(&s->attempts);
  free(s);
  *sp = NULL;
}

static void sink_error(struct sb_response *resp, int status,
                       const char *message) {
  sb_respond_json(resp, status, json_pack("{ss}", "error", message), NULL);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value) {
  (void)kind;
  char name[128];
  size_t n = 0;
  for (; key[n] && n + 1 < sizeof(name); n++)
    name[n] = (char)tolower((unsigned char)key[n]);
  name[n] = '\0';
  json_object_set_new(cls, name, json_string(value ? value : ""));
  return MHD_YES;
}

static const char *header_value(const json_t *headers, const char *lower) {
  return sb_json_string(headers, lower);
}

static void receive(struct sb_shop *shop, const struct sb_request *req,
                    struct sb_response *resp) {
  struct sb_sink *s = shop->sink;
  json_t *headers = json_object();
  if (req->conn)
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_header,
                              headers);
  char sha[65];
  lp_sha256_hex(req->body ? req->body : "", req->body_len, sha);
  const char *topic = header_value(headers, "x-shopify-topic");
  const char *event = header_value(headers, "x-shopify-event-id");
  const char *platform = topic ? "shopify" : "unknown";
  if (!topic && req->json && sb_json_string(req->json, "scope") &&
      sb_json_string(req->json, "hash")) {
    topic = sb_json_string(req->json, "scope");
    event = sb_json_string(req->json, "hash");
    platform = "bigcommerce";
  }
  if (!event)
    event = sha;

  pthread_mutex_lock(&shop->lock);
  int hmac_ok = -1, header_ok = -1;
  const char *hmac = header_value(headers, "x-shopify-hmac-sha256");
  if (hmac && s->secret[0]) {
    char expected[45];
    sb_shop_hmac_sha256_base64(s->secret, strlen(s->secret),
                               req->body ? req->body : "", req->body_len,
                               expected);
    hmac_ok = strlen(hmac) == 44 && CRYPTO_memcmp(hmac, expected, 44) == 0;
  }
  if (s->header[0]) {
    char lower[64];
    size_t i = 0;
    for (; s->header[i]; i++)
      lower[i] = (char)tolower((unsigned char)s->header[i]);
    lower[i] = '\0';
    const char *v = header_value(headers, lower);
    header_ok = v && strlen(v) == strlen(s->secret) &&
                CRYPTO_memcmp(v, s->secret, strlen(v)) == 0;
  }
  long *count = sb_map_get(s->attempts, event, strlen(event));
  if (!count) {
    count = lp_xcalloc(1, sizeof(*count));
    sb_map_put(s->attempts, event, strlen(event), count);
  }
  long attempt = ++*count;
  int status = attempt <= s->fail_first ? s->fail_status : 200;
  long seq = ++s->received;
  if (s->n < MAX_RECORDS) {
    if (s->n == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 256;
      s->records = lp_xrealloc(s->records, s->cap * sizeof(*s->records));
    }
    struct sink_record *r = &s->records[s->n++];
    memset(r, 0, sizeof(*r));
    r->seq = seq;
    r->time_ms = req->now_ms;
    r->headers = headers;
    headers = NULL;
    memcpy(r->body_sha256, sha, sizeof(sha));
    r->body_len = req->body_len;
    r->hmac_ok = hmac_ok;
    r->header_ok = header_ok;
    r->status = status;
    r->attempt = attempt;
    r->event_key = lp_xstrdup(event);
    r->topic = lp_xstrdup(topic);
    r->platform = platform;
    if (req->body_len <= MAX_BODY &&
        s->body_bytes + req->body_len <= (size_t)MAX_BODY_BYTES) {
      r->body = lp_xmalloc(req->body_len + 1);
      if (req->body_len)
        memcpy(r->body, req->body, req->body_len);
      r->body[req->body_len] = '\0';
      s->body_bytes += req->body_len;
    }
  } else {
    s->dropped++;
  }
  long fail_first = s->fail_first;
  pthread_mutex_unlock(&shop->lock);
  json_decref(headers);
  if (status == 200) {
    sb_respond_json(resp, 200, json_pack("{sI}", "seq", (json_int_t)seq), NULL);
  } else {
    char msg[128];
    snprintf(msg, sizeof(msg),
             "sandbox sink: failing attempt %ld of the first %ld of this "
             "event",
             attempt, fail_first);
    sink_error(resp, status, msg);
  }
}

static json_t *tri(int v) {
  return v < 0 ? json_null() : json_boolean(v);
}

static json_t *config_json(const struct sb_sink *s) {
  return json_pack("{sb ss* si si}", "secret_set", s->secret[0] != '\0',
                   "header", s->header[0] ? s->header : NULL, "fail_first",
                   (int)s->fail_first, "fail_status", s->fail_status);
}

/* Lock held. */
static json_t *records_json(const struct sb_sink *s, long since, int bodies) {
  json_t *arr = json_array();
  for (size_t i = 0; i < s->n; i++) {
    const struct sink_record *r = &s->records[i];
    if (r->seq <= since)
      continue;
    json_t *o = json_pack(
        "{sI sI ss ss* ss sI si so so ss sI sO}", "seq", (json_int_t)r->seq,
        "time_ms", (json_int_t)r->time_ms, "platform", r->platform, "topic",
        r->topic, "event_key", r->event_key, "attempt", (json_int_t)r->attempt,
        "status", r->status, "hmac_ok", tri(r->hmac_ok), "header_ok",
        tri(r->header_ok), "body_sha256", r->body_sha256, "body_len",
        (json_int_t)r->body_len, "headers", r->headers);
    if (bodies) {
      /* NULL for a body that is not UTF-8 text: shown as null. */
      json_t *b = r->body ? json_stringn(r->body, r->body_len) : NULL;
      json_object_set_new(o, "body", b ? b : json_null());
    }
    json_array_append_new(arr, o);
  }
  return json_pack("{sI sI so}", "received", (json_int_t)s->received, "dropped",
                   (json_int_t)s->dropped, "deliveries", arr);
}

/* Applies a config body; 0, or -1 with errstr (nothing changed). */
static int configure(struct sb_sink *s, const json_t *body, char *errstr,
                     size_t errstr_size) {
  if (!json_is_object(body))
    return lp_err(errstr, errstr_size, "body: a JSON object is required");
  struct sb_sink next = *s;
  int clear = 0;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)body, key, v) {
    if (strcmp(key, "secret") == 0) {
      if (!json_is_string(v) || strlen(json_string_value(v)) >= MAX_SECRET)
        return lp_err(errstr, errstr_size,
                      "secret: not a string shorter than %d bytes", MAX_SECRET);
      lp_strlcpy(next.secret, json_string_value(v), sizeof(next.secret));
    } else if (strcmp(key, "header") == 0) {
      const char *h = json_is_string(v) ? json_string_value(v) : NULL;
      int ok = h && strlen(h) < sizeof(next.header);
      for (const char *p = h; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '-' || *p == '_';
      if (!ok)
        return lp_err(errstr, errstr_size,
                      "header: not a header name (letters, digits, '-', "
                      "'_'; under 64 bytes; \"\" = none)");
      lp_strlcpy(next.header, h, sizeof(next.header));
    } else if (strcmp(key, "fail_first") == 0) {
      if (!json_is_integer(v) || json_integer_value(v) < 0 ||
          json_integer_value(v) > 1000)
        return lp_err(errstr, errstr_size,
                      "fail_first: not an integer in 0..1000");
      next.fail_first = (long)json_integer_value(v);
    } else if (strcmp(key, "fail_status") == 0) {
      if (!json_is_integer(v) || json_integer_value(v) < 300 ||
          json_integer_value(v) > 599)
        return lp_err(errstr, errstr_size,
                      "fail_status: not an integer in 300..599");
      next.fail_status = (int)json_integer_value(v);
    } else if (strcmp(key, "clear") == 0) {
      if (!json_is_boolean(v))
        return lp_err(errstr, errstr_size, "clear: not a boolean");
      clear = json_is_true(v);
    } else {
      return lp_err(errstr, errstr_size,
                    "%s: unknown key (secret, header, fail_first, "
                    "fail_status, clear)",
                    key);
    }
  }
  memcpy(s->secret, next.secret, sizeof(s->secret));
  memcpy(s->header, next.header, sizeof(s->header));
  s->fail_first = next.fail_first;
  s->fail_status = next.fail_status;
  if (clear)
    sb_sink_clear(s);
  return 0;
}

void sb_sink_serve(struct sb_shop *shop, const struct sb_request *req,
                   struct sb_response *resp) {
  int get = strcmp(req->method, "GET") == 0;
  int post = strcmp(req->method, "POST") == 0;
  int is_config = strcmp(req->path, "/_sandbox/webhooks/sink/config") == 0;
  if (!get && !post) {
    sink_error(resp, 405, "GET or POST only");
    return;
  }
  if (post && req->too_large) {
    sink_error(resp, 413, "body too large");
    return;
  }
  if (!is_config && post) {
    receive(shop, req, resp);
    return;
  }
  if (!is_config) {
    long long since = 0;
    const char *v = req->query(req, "since_seq");
    if (v && sb_parse_long(v, 0, INT64_MAX, &since) != 0) {
      sink_error(resp, 400, "since_seq: not a non-negative integer");
      return;
    }
    pthread_mutex_lock(&shop->lock);
    const char *b = req->query(req, "bodies");
    json_t *out =
        records_json(shop->sink, (long)since, b && strcmp(b, "1") == 0);
    pthread_mutex_unlock(&shop->lock);
    sb_respond_json(resp, 200, out, NULL);
    return;
  }
  if (post) {
    char err[256];
    if (!req->json) {
      char msg[300];
      snprintf(msg, sizeof(msg), "body: %s",
               req->json_error ? req->json_error : "a JSON object is required");
      sink_error(resp, 400, msg);
      return;
    }
    pthread_mutex_lock(&shop->lock);
    int rc = configure(shop->sink, req->json, err, sizeof(err));
    pthread_mutex_unlock(&shop->lock);
    if (rc != 0) {
      sink_error(resp, 400, err);
      return;
    }
  }
  pthread_mutex_lock(&shop->lock);
  json_t *out = config_json(shop->sink);
  pthread_mutex_unlock(&shop->lock);
  sb_respond_json(resp, 200, out, NULL);
}
