/*
 * profile_store.c — Redis-backed member profiles (see profile_store.h for
 * the key layout and the guarantees). The Lua scripts below are the only
 * code that changes a profile.
 */
#include "profile_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>
#include <jansson.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

/*
 * Apply an order event. KEYS: profile, memo, orders.
 * ARGV: event_id, order_id, status, event_time_ms, total_micros, memo_ttl_s,
 *       max_affinities, n_items, then per item: category, brand, amount.
 * Money is handled as integers: HINCRBY is exact in int64 and amounts are
 * below 2^53 (events.h bounds them), so Lua's doubles hold them exactly;
 * string.format('%.0f') keeps them out of %.14g notation.
 */
static const char order_script[] =
    "local memo = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if memo then return memo end\n"
    "local flat = redis.call('HGETALL', KEYS[1])\n"
    "local p = {}\n"
    "local ncat, nbrand = 0, 0\n"
    "for i = 1, #flat, 2 do\n"
    "  p[flat[i]] = flat[i + 1]\n"
    "  local pre = string.sub(flat[i], 1, 2)\n"
    "  if pre == 'c:' then ncat = ncat + 1 elseif pre == 'b:' then\n"
    "    nbrand = nbrand + 1 end\n"
    "end\n"
    "local orec = redis.call('HGET', KEYS[3], ARGV[2])\n"
    "flat[#flat + 1] = '_prev'\n"
    "flat[#flat + 1] = orec and '1' or '0'\n"
    "local snap = cjson.encode(flat)\n"
    "local function fmt(x) return string.format('%.0f', x) end\n"
    "local status, t = ARGV[3], tonumber(ARGV[4])\n"
    "local maxaff, n = tonumber(ARGV[7]), tonumber(ARGV[8])\n"
    "local function add_aff(prefix, name, amt, rec)\n"
    "  if name == '' then return end\n"
    "  local f = prefix .. name\n"
    "  if p[f] == nil then\n"
    "    if (prefix == 'c:' and ncat >= maxaff) or\n"
    "       (prefix == 'b:' and nbrand >= maxaff) then return end\n"
    "    if prefix == 'c:' then ncat = ncat + 1 else nbrand = nbrand + 1 end\n"
    "    p[f] = '0'\n"
    "  end\n"
    "  redis.call('HINCRBY', KEYS[1], f, fmt(amt))\n"
    "  rec[f] = fmt(tonumber(rec[f] or '0') + amt)\n"
    "end\n"
    "if status == 'created' or status == 'paid' then\n"
    "  if not orec then\n"
    "    local total = tonumber(ARGV[5])\n"
    "    redis.call('HINCRBY', KEYS[1], 'spend', ARGV[5])\n"
    "    redis.call('HINCRBY', KEYS[1], 'orders', 1)\n"
    "    local first = tonumber(p['first'] or '0')\n"
    "    if first == 0 or t < first then\n"
    "      redis.call('HSET', KEYS[1], 'first', ARGV[4]) end\n"
    "    if t > tonumber(p['last'] or '0') then\n"
    "      redis.call('HSET', KEYS[1], 'last', ARGV[4]) end\n"
    "    local rec = {s = fmt(total), a = {}}\n"
    "    for i = 0, n - 1 do\n"
    "      local amt = tonumber(ARGV[11 + 3 * i])\n"
    "      add_aff('c:', ARGV[9 + 3 * i], amt, rec.a)\n"
    "      add_aff('b:', ARGV[10 + 3 * i], amt, rec.a)\n"
    "    end\n"
    "    redis.call('HSET', KEYS[3], ARGV[2], cjson.encode(rec))\n"
    "  end\n"
    "elseif status == 'cancelled' or status == 'refunded' then\n"
    "  if not orec then\n"
    /* A cancellation seen before its order: a tombstone keeps the late
     * order from counting. */
    "    if status == 'cancelled' then\n"
    "      redis.call('HSET', KEYS[3], ARGV[2], '{\"x\":1}') end\n"
    "  else\n"
    "    local rec = cjson.decode(orec)\n"
    "    rec.a = rec.a or {}\n"
    "    if not rec.x then\n"
    "      local left = tonumber(rec.s)\n"
    "      local amount = left\n"
    "      if status == 'refunded' then\n"
    "        amount = math.min(tonumber(ARGV[5]), left) end\n"
    "      redis.call('HINCRBY', KEYS[1], 'spend', fmt(-amount))\n"
    "      left = left - amount\n"
    "      rec.s = fmt(left)\n"
    "      if status == 'cancelled' then\n"
    "        for f, v in pairs(rec.a) do\n"
    "          redis.call('HINCRBY', KEYS[1], f, fmt(-tonumber(v)))\n"
    "        end\n"
    "        rec.a = {}\n"
    "      else\n"
    "        for i = 0, n - 1 do\n"
    "          local amt = tonumber(ARGV[11 + 3 * i])\n"
    "          for _, f in ipairs({'c:' .. ARGV[9 + 3 * i],\n"
    "                              'b:' .. ARGV[10 + 3 * i]}) do\n"
    "            local had = tonumber(rec.a[f] or '0')\n"
    "            local take = math.min(had, amt)\n"
    "            if take > 0 then\n"
    "              redis.call('HINCRBY', KEYS[1], f, fmt(-take))\n"
    "              rec.a[f] = fmt(had - take)\n"
    "            end\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "      if status == 'cancelled' or left <= 0 then\n"
    "        redis.call('HINCRBY', KEYS[1], 'orders', -1)\n"
    "        rec.x = 1\n"
    "      end\n"
    "      if next(rec.a) == nil then rec.a = nil end\n"
    "      redis.call('HSET', KEYS[3], ARGV[2], cjson.encode(rec))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], snap)\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[6])\n"
    "redis.call('EXPIRE', KEYS[3], ARGV[6])\n"
    "return snap\n";

/*
 * Apply a customer event. KEYS: profile, memo.
 * ARGV: event_id, event_time_ms, memo_ttl_s, consent, tags_json, birthday,
 *       email_sha256, created_ms.
 * Customer updates can arrive out of order: the newest event time wins
 * (field "cu"); consent "unknown" and empty fields never overwrite.
 */
static const char customer_script[] =
    "local memo = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if memo then return memo end\n"
    "local flat = redis.call('HGETALL', KEYS[1])\n"
    "local cu = 0\n"
    "for i = 1, #flat, 2 do\n"
    "  if flat[i] == 'cu' then cu = tonumber(flat[i + 1]) end\n"
    "end\n"
    "flat[#flat + 1] = '_prev'\n"
    "flat[#flat + 1] = '0'\n"
    "local snap = cjson.encode(flat)\n"
    "if tonumber(ARGV[2]) >= cu then\n"
    "  redis.call('HSET', KEYS[1], 'cu', ARGV[2], 'tags', ARGV[5])\n"
    "  if ARGV[4] ~= 'unknown' then\n"
    "    redis.call('HSET', KEYS[1], 'consent', ARGV[4]) end\n"
    "  if ARGV[6] ~= '' then\n"
    "    redis.call('HSET', KEYS[1], 'birthday', ARGV[6]) end\n"
    "  if ARGV[7] ~= '' then\n"
    "    redis.call('HSET', KEYS[1], 'email', ARGV[7]) end\n"
    "  if ARGV[8] ~= '0' then\n"
    "    redis.call('HSET', KEYS[1], 'created', ARGV[8]) end\n"
    "end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], snap)\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "return snap\n";

struct lp_profile_store {
  char *host;
  int port;
  char *ns;
  long memo_ttl_s;
  int timeout_ms;
  int max_affinities;
  redisContext *ctx;  /* NULL while disconnected */
  char order_sha[41]; /* SHA1 of the loaded scripts */
  char customer_sha[41];
  int healthy;
  int64_t last_outage_log_us;
};

struct lp_profile_store *
lp_profile_store_new(const struct lp_profile_store_config *conf, char *errstr,
                     size_t errstr_size) {
  if (!conf->host || !*conf->host)
    return lp_err(errstr, errstr_size, "redis.host: must be set"), NULL;
  if (conf->port <= 0 || conf->port > 65535)
    return lp_err(errstr, errstr_size, "redis.port: %d is not a TCP port",
                  conf->port),
           NULL;
  if (!conf->ns || !*conf->ns || strpbrk(conf->ns, "{} "))
    return lp_err(errstr, errstr_size,
                  "redis.namespace: must be non-empty without spaces or "
                  "braces"),
           NULL;
  struct lp_profile_store *s = lp_xcalloc(1, sizeof(*s));
  s->host = lp_xstrdup(conf->host);
  s->port = conf->port;
  s->ns = lp_xstrdup(conf->ns);
  s->memo_ttl_s = conf->memo_ttl_s > 0 ? conf->memo_ttl_s : 90L * 86400;
  s->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 2000;
  s->max_affinities =
      conf->max_affinities > 0 ? conf->max_affinities : LP_MAX_AFFINITIES;
  return s;
}

static void disconnect(struct lp_profile_store *s) {
  if (s->ctx)
    redisFree(s->ctx);
  s->ctx = NULL;
  s->healthy = 0;
}

void lp_profile_store_destroy(struct lp_profile_store **sp) {
  struct lp_profile_store *s = *sp;
  if (!s)
    return;
  disconnect(s);
  free(s->host);
  free(s->ns);
  free(s);
  *sp = NULL;
}

int lp_profile_store_healthy(const struct lp_profile_store *s) {
  return s->healthy;
}

/* Loads one script and copies its SHA1; 0 or -1. */
static int load_script(struct lp_profile_store *s, const char *body,
                       char sha[41], char *errstr, size_t errstr_size) {
  redisReply *r = redisCommand(s->ctx, "SCRIPT LOAD %s", body);
  if (!r)
    return lp_err(errstr, errstr_size, "SCRIPT LOAD: %s", s->ctx->errstr);
  int rc = 0;
  if (r->type == REDIS_REPLY_STRING && r->len == 40)
    memcpy(sha, r->str, 41);
  else
    rc = lp_err(errstr, errstr_size, "SCRIPT LOAD: %s",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
  freeReplyObject(r);
  return rc;
}

/* Connects and loads the scripts; 0 or -1 (then disconnected). */
static int ensure_connected(struct lp_profile_store *s, char *errstr,
                            size_t errstr_size) {
  if (s->ctx)
    return 0;
  struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
  s->ctx = redisConnectWithTimeout(s->host, s->port, tv);
  if (!s->ctx || s->ctx->err) {
    lp_err(errstr, errstr_size, "connect %s:%d: %s", s->host, s->port,
           s->ctx ? s->ctx->errstr : "out of memory");
    disconnect(s);
    return -1;
  }
  redisSetTimeout(s->ctx, tv);
  if (load_script(s, order_script, s->order_sha, errstr, errstr_size) ||
      load_script(s, customer_script, s->customer_sha, errstr, errstr_size)) {
    disconnect(s);
    return -1;
  }
  return 0;
}

/* Redis errors that go away by themselves: retry the batch, never
 * dead-letter an event for them. */
static int transient_error(const char *msg) {
  static const char *const prefixes[] = {
      "LOADING",  "BUSY",        "OOM",      "READONLY",  "MASTERDOWN",
      "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT", "NOREPLICAS"};
  for (size_t i = 0; i < LP_ARRAY_LEN(prefixes); i++)
    if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
      return 1;
  return 0;
}

/* Key of one of a member's hashes (kind 'p', 'm' or 'o'); caller frees. */
static char *member_key(const struct lp_profile_store *s, char kind,
                        const char *shop, const char *customer) {
  return lp_xasprintf("%s:%c:{%s:%s}", s->ns, kind, shop, customer);
}

/* Appends one EVALSHA for an order event to the pipeline. */
static void append_order(struct lp_profile_store *s,
                         const struct lp_order_event *ev) {
  size_t argc = 3 + 3 + 8 + 3 * ev->n_line_items;
  const char **argv = lp_xmalloc(argc * sizeof(*argv));
  size_t *lens = lp_xmalloc(argc * sizeof(*lens));
  char *pk = member_key(s, 'p', ev->shop, ev->customer_id);
  char *mk = member_key(s, 'm', ev->shop, ev->customer_id);
  char *ok = member_key(s, 'o', ev->shop, ev->customer_id);
  char num[4][24], ttl[24], maxaff[16], nitems[16];
  snprintf(num[0], sizeof(num[0]), "%lld", (long long)ev->event_time_ms);
  snprintf(num[1], sizeof(num[1]), "%lld", (long long)ev->total_micros);
  snprintf(ttl, sizeof(ttl), "%ld", s->memo_ttl_s);
  snprintf(maxaff, sizeof(maxaff), "%d", s->max_affinities);
  snprintf(nitems, sizeof(nitems), "%zu", ev->n_line_items);
  char(*amounts)[24] = lp_xmalloc((ev->n_line_items + 1) * sizeof(*amounts));
  size_t i = 0;
  argv[i++] = "EVALSHA";
  argv[i++] = s->order_sha;
  argv[i++] = "3";
  argv[i++] = pk;
  argv[i++] = mk;
  argv[i++] = ok;
  argv[i++] = ev->event_id;
  argv[i++] = ev->order_id;
  argv[i++] = lp_order_status_name(ev->status);
  argv[i++] = num[0];
  argv[i++] = num[1];
  argv[i++] = ttl;
  argv[i++] = maxaff;
  argv[i++] = nitems;
  for (size_t k = 0; k < ev->n_line_items; k++) {
    const struct lp_line_item *li = &ev->line_items[k];
    /* Line amount: quantity x unit price, bounded by validation. */
    snprintf(amounts[k], sizeof(amounts[k]), "%lld",
             (long long)li->quantity * (long long)li->unit_price_micros);
    argv[i++] = li->category ? li->category : "";
    argv[i++] = li->brand ? li->brand : "";
    argv[i++] = amounts[k];
  }
  LP_ASSERT(i == argc);
  for (size_t k = 0; k < argc; k++)
    lens[k] = strlen(argv[k]);
  redisAppendCommandArgv(s->ctx, (int)argc, argv, lens);
  free(amounts);
  free(pk);
  free(mk);
  free(ok);
  free(argv);
  free(lens);
}

/* Appends one EVALSHA for a customer event to the pipeline. */
static void append_customer(struct lp_profile_store *s,
                            const struct lp_customer_event *ev) {
  char *pk = member_key(s, 'p', ev->shop, ev->customer_id);
  char *mk = member_key(s, 'm', ev->shop, ev->customer_id);
  char t[24], ttl[24], created[24];
  snprintf(t, sizeof(t), "%lld", (long long)ev->event_time_ms);
  snprintf(ttl, sizeof(ttl), "%ld", s->memo_ttl_s);
  snprintf(created, sizeof(created), "%lld",
           (long long)ev->customer_created_ms);
  json_t *tags = json_array();
  for (size_t k = 0; k < ev->n_tags; k++)
    json_array_append_new(tags, json_string(ev->tags[k]));
  char *tags_json = json_dumps(tags, JSON_COMPACT);
  json_decref(tags);
  const char *argv[] = {"EVALSHA",
                        s->customer_sha,
                        "2",
                        pk,
                        mk,
                        ev->event_id,
                        t,
                        ttl,
                        lp_consent_name(ev->marketing_consent),
                        tags_json ? tags_json : "[]",
                        ev->birthday ? ev->birthday : "",
                        ev->email_sha256 ? ev->email_sha256 : "",
                        created};
  size_t lens[LP_ARRAY_LEN(argv)];
  for (size_t k = 0; k < LP_ARRAY_LEN(argv); k++)
    lens[k] = strlen(argv[k]);
  redisAppendCommandArgv(s->ctx, (int)LP_ARRAY_LEN(argv), argv, lens);
  free(tags_json);
  free(pk);
  free(mk);
}

static int cmp_affinity(const void *a, const void *b) {
  return strcmp(((const struct lp_affinity *)a)->name,
                ((const struct lp_affinity *)b)->name);
}

static int parse_i64(const char *v, int64_t *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end)
    return -1;
  *out = x;
  return 0;
}

int lp_profile_from_snapshot(const char *json, size_t len,
                             struct lp_profile *out, char *errstr,
                             size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  json_error_t jerr;
  json_t *root = json_loadb(json, len, 0, &jerr);
  if (!root)
    return lp_err(errstr, errstr_size, "snapshot: %s", jerr.text);
  int rc = 0;
  size_t n = json_is_array(root) ? json_array_size(root) : 0;
  if (!json_is_array(root) &&
      !(json_is_object(root) && json_object_size(root) == 0)) {
    rc = lp_err(errstr, errstr_size, "snapshot: not an array");
    goto done;
  }
  for (size_t i = 0; i + 1 < n; i += 2) {
    const char *k = json_string_value(json_array_get(root, i));
    const char *v = json_string_value(json_array_get(root, i + 1));
    if (!k || !v) {
      rc = lp_err(errstr, errstr_size, "snapshot: non-string entry %zu", i);
      goto done;
    }
    int64_t x = 0;
    if (strcmp(k, "_prev") == 0) {
      out->order_previously_applied = strcmp(v, "1") == 0;
      continue;
    }
    out->exists = 1;
    if (strcmp(k, "spend") == 0) {
      rc = parse_i64(v, &out->lifetime_spend_micros);
    } else if (strcmp(k, "orders") == 0) {
      rc = parse_i64(v, &out->order_count);
    } else if (strcmp(k, "first") == 0) {
      rc = parse_i64(v, &out->first_order_ms);
    } else if (strcmp(k, "last") == 0) {
      rc = parse_i64(v, &out->last_order_ms);
    } else if (strcmp(k, "created") == 0) {
      rc = parse_i64(v, &out->customer_created_ms);
    } else if (strcmp(k, "consent") == 0) {
      lp_consent_parse(v, &out->marketing_consent);
    } else if (strcmp(k, "birthday") == 0) {
      out->birthday = lp_xstrdup(v);
    } else if (strcmp(k, "email") == 0) {
      out->email_sha256 = lp_xstrdup(v);
    } else if (strcmp(k, "tier") == 0) {
      out->tier = lp_xstrdup(v);
    } else if (strcmp(k, "tags") == 0) {
      json_t *tags = json_loads(v, 0, NULL);
      size_t nt = json_is_array(tags) ? json_array_size(tags) : 0;
      out->tags = nt ? lp_xcalloc(nt, sizeof(char *)) : NULL;
      for (size_t t = 0; t < nt; t++) {
        const char *tag = json_string_value(json_array_get(tags, t));
        if (tag)
          out->tags[out->n_tags++] = lp_xstrdup(tag);
      }
      json_decref(tags);
    } else if ((k[0] == 'c' || k[0] == 'b') && k[1] == ':') {
      if (parse_i64(v, &x) == 0 && x > 0) {
        struct lp_affinity **arr =
            k[0] == 'c' ? &out->categories : &out->brands;
        size_t *cnt = k[0] == 'c' ? &out->n_categories : &out->n_brands;
        *arr = lp_xrealloc(*arr, (*cnt + 1) * sizeof(**arr));
        (*arr)[*cnt].name = lp_xstrdup(k + 2);
        (*arr)[*cnt].spend_micros = x;
        (*cnt)++;
      }
    }
    if (rc) {
      lp_err(errstr, errstr_size, "snapshot: field %s: bad integer \"%s\"", k,
             v);
      goto done;
    }
  }
  if (out->n_categories)
    qsort(out->categories, out->n_categories, sizeof(*out->categories),
          cmp_affinity);
  if (out->n_brands)
    qsort(out->brands, out->n_brands, sizeof(*out->brands), cmp_affinity);
done:
  json_decref(root);
  if (rc)
    lp_profile_clear(out);
  return rc;
}

/* Sleeps for the backoff of attempt n (50 ms doubling to 2 s), serving the
 * caller's wait function meanwhile. */
static void backoff(int attempt, lp_store_wait_fn wait, void *opaque) {
  int64_t ms = 50LL << (attempt < 6 ? attempt : 6);
  if (ms > 2000)
    ms = 2000;
  int64_t until = lp_mono_us() + ms * 1000;
  do {
    if (wait)
      wait(opaque);
    else {
      struct timespec ts = {0, 10 * 1000000};
      nanosleep(&ts, NULL);
    }
  } while (lp_mono_us() < until);
}

/* One pipelined attempt: 1 done, 0 transient failure (retry the batch). */
static int apply_once(struct lp_profile_store *s, struct lp_store_op *ops,
                      size_t n, char *errstr, size_t errstr_size) {
  if (ensure_connected(s, errstr, errstr_size))
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (ops[i].order)
      append_order(s, ops[i].order);
    else
      append_customer(s, ops[i].customer);
  }
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    redisReply *r = NULL;
    if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || !r) {
      lp_err(errstr, errstr_size, "redis %s:%d: %s", s->host, s->port,
             s->ctx->errstr[0] ? s->ctx->errstr : "connection lost");
      disconnect(s);
      return 0;
    }
    struct lp_store_op *op = &ops[i];
    if (r->type == REDIS_REPLY_STRING) {
      if (ok && lp_profile_from_snapshot(r->str, r->len, &op->before, op->error,
                                         sizeof(op->error)) != 0)
        op->failed = 1;
    } else if (r->type == REDIS_REPLY_ERROR && transient_error(r->str)) {
      if (ok)
        lp_err(errstr, errstr_size, "redis: %s", r->str);
      if (strncmp(r->str, "NOSCRIPT", 8) == 0)
        disconnect(s); /* reconnecting reloads the scripts */
      ok = 0;
    } else {
      op->failed = 1;
      snprintf(op->error, sizeof(op->error), "redis: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    if (!s->ctx) {
      /* Drained what we could; the rest of the replies are gone. */
      return 0;
    }
  }
  if (!ok) {
    for (size_t i = 0; i < n; i++) {
      lp_profile_clear(&ops[i].before);
      ops[i].failed = 0;
      ops[i].error[0] = '\0';
    }
    return 0;
  }
  s->healthy = 1;
  return 1;
}

int lp_profile_store_apply(struct lp_profile_store *s, struct lp_store_op *ops,
                           size_t n, volatile sig_atomic_t *stop,
                           lp_store_wait_fn wait, void *opaque) {
  if (n == 0)
    return 0;
  char err[512];
  for (int attempt = 0;; attempt++) {
    err[0] = '\0';
    if (apply_once(s, ops, n, err, sizeof(err)))
      return 0;
    s->healthy = 0;
    lp_metrics_add(LP_M_REDIS_ERRORS, 1);
    int64_t now = lp_mono_us();
    if (attempt == 0 || now - s->last_outage_log_us > 5000000) {
      LP_WARN("redis unavailable, retrying the batch",
              "\"error\":%s,\"attempt\":%d,\"batch\":%zu", lp_log_str(err),
              attempt + 1, n);
      s->last_outage_log_us = now;
    }
    if (stop && *stop)
      return -1;
    backoff(attempt, wait, opaque);
    if (stop && *stop)
      return -1;
  }
}

int lp_profile_store_get(struct lp_profile_store *s, const char *shop,
                         const char *customer_id, struct lp_profile *out,
                         char *errstr, size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  char *pk = member_key(s, 'p', shop, customer_id);
  redisReply *r = redisCommand(s->ctx, "HGETALL %s", pk);
  free(pk);
  if (!r) {
    lp_err(errstr, errstr_size, "redis: %s", s->ctx->errstr);
    disconnect(s);
    return -1;
  }
  int rc = -1;
  if (r->type == REDIS_REPLY_ARRAY) {
    json_t *arr = json_array();
    for (size_t i = 0; i < r->elements; i++)
      json_array_append_new(
          arr, json_stringn(r->element[i]->str, r->element[i]->len));
    char *txt = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    rc = lp_profile_from_snapshot(txt, strlen(txt), out, errstr, errstr_size);
    free(txt);
  } else {
    lp_err(errstr, errstr_size, "redis: unexpected reply to HGETALL");
  }
  freeReplyObject(r);
  return rc;
}
