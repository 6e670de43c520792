/*
 * profile_store.c — Redis-backed member profiles (see profile_store.h for
 * the keys and the guarantees; profile_apply.c holds the update logic).
 *
 * Redis does only cheap work per event (three or four reads, one short
 * compare-and-set script); parsing and applying happen here, on the
 * processor's core, which is what lets one Redis serve tens of thousands
 * of events per second.
 */
#include "profile_store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

/*
 * Compare-and-set of one event. KEYS: part, memo, orders.
 * ARGV: memo field, expected part ("" = absent), new part, snapshot,
 *       ttl seconds, order id ("" = none), new order record ("" = keep).
 * Returns {0} written, {1, memo} already applied (by a racing instance),
 * {2} the part changed since it was read (re-read and retry).
 */
static const char cas_script[] =
    "local memo = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if memo then return {1, memo} end\n"
    "local cur = redis.call('GET', KEYS[1]) or ''\n"
    "if cur ~= ARGV[2] then return {2} end\n"
    "if ARGV[3] ~= cur then redis.call('SET', KEYS[1], ARGV[3]) end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[5])\n"
    "if ARGV[6] ~= '' and ARGV[7] ~= '' then\n"
    "  redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])\n"
    "  redis.call('EXPIRE', KEYS[3], ARGV[5])\n"
    "end\n"
    "return {0}\n";

struct lp_profile_store {
  char *host;
  int port;
  char *ns;
  long memo_ttl_s;
  int timeout_ms;
  int max_affinities;
  redisContext *ctx; /* NULL while disconnected */
  char cas_sha[41];
  int healthy;
  int64_t last_outage_log_us;
};

/* Per-op working state of one attempt. */
struct work {
  char *part_key, *other_key, *memo_key, *orders_key, *memo_field;
  char *memo;     /* read: memo entry, NULL if none */
  char *own;      /* read: own part ("" if absent) */
  char *other;    /* read: the other part ("" if absent) */
  char *rec;      /* read: order record, NULL if none */
  char *new_own;  /* computed */
  char *new_rec;  /* computed, NULL = unchanged */
  char *snapshot; /* computed */
  int conflict;
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

/* Connects and loads the script; 0 or -1 (then disconnected). */
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
  redisReply *r = redisCommand(s->ctx, "SCRIPT LOAD %s", cas_script);
  int rc = 0;
  if (r && r->type == REDIS_REPLY_STRING && r->len == 40)
    memcpy(s->cas_sha, r->str, 41);
  else
    rc = lp_err(errstr, errstr_size, "SCRIPT LOAD: %s",
                !r                             ? s->ctx->errstr
                : r->type == REDIS_REPLY_ERROR ? r->str
                                               : "unexpected reply");
  if (r)
    freeReplyObject(r);
  if (rc)
    disconnect(s);
  return rc;
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

/* "<ns>:<kind>:{<shop>:<customer>}" (caller frees); no printf, as this
 * runs several times per event. */
static char *member_key(const struct lp_profile_store *s, char kind,
                        const char *shop, const char *customer) {
  size_t ln = strlen(s->ns), ls = strlen(shop), lc = strlen(customer);
  char *k = lp_xmalloc(ln + ls + lc + 7), *p = k;
  memcpy(p, s->ns, ln);
  p += ln;
  *p++ = ':';
  *p++ = kind;
  *p++ = ':';
  *p++ = '{';
  memcpy(p, shop, ls);
  p += ls;
  *p++ = ':';
  memcpy(p, customer, lc);
  p += lc;
  *p++ = '}';
  *p = '\0';
  return k;
}

/* Appends a command given as NUL-terminated words. */
static void append_words(redisContext *ctx, int argc, const char **argv) {
  size_t lens[8];
  LP_ASSERT(argc <= 8);
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  redisAppendCommandArgv(ctx, argc, argv, lens);
}

static void work_clear(struct work *w) {
  free(w->part_key);
  free(w->other_key);
  free(w->memo_key);
  free(w->orders_key);
  free(w->memo_field);
  free(w->memo);
  free(w->own);
  free(w->other);
  free(w->rec);
  free(w->new_own);
  free(w->new_rec);
  free(w->snapshot);
  memset(w, 0, sizeof(*w));
}

static void work_init(struct lp_profile_store *s, const struct lp_store_op *op,
                      struct work *w) {
  memset(w, 0, sizeof(*w));
  const char *shop = op->order ? op->order->shop : op->customer->shop;
  const char *cust =
      op->order ? op->order->customer_id : op->customer->customer_id;
  w->part_key = member_key(s, op->order ? 'p' : 'c', shop, cust);
  w->other_key = member_key(s, op->order ? 'c' : 'p', shop, cust);
  w->memo_key = member_key(s, 'm', shop, cust);
  w->orders_key = member_key(s, 'o', shop, cust);
  w->memo_field =
      lp_xasprintf("%c:%s", op->order ? 'o' : 'c',
                   op->order ? op->order->event_id : op->customer->event_id);
}

/* Reads one reply; 1 ok, 0 connection lost / transient (errstr set), and
 * a per-op permanent error is left in *perm. */
static int get_reply(struct lp_profile_store *s, redisReply **r, char *errstr,
                     size_t errstr_size) {
  if (redisGetReply(s->ctx, (void **)r) != REDIS_OK || !*r) {
    lp_err(errstr, errstr_size, "redis %s:%d: %s", s->host, s->port,
           s->ctx->errstr[0] ? s->ctx->errstr : "connection lost");
    disconnect(s);
    return 0;
  }
  if ((*r)->type == REDIS_REPLY_ERROR && transient_error((*r)->str)) {
    lp_err(errstr, errstr_size, "redis: %s", (*r)->str);
    if (strncmp((*r)->str, "NOSCRIPT", 8) == 0)
      disconnect(s);
    return 0;
  }
  return 1;
}

/* Copies a bulk string reply (NULL for nil). */
static char *reply_str(const redisReply *r) {
  return r->type == REDIS_REPLY_STRING ? lp_xstrndup(r->str, r->len) : NULL;
}

/* A small open-addressing map from member key to the latest op of this
 * attempt that computed a new part for that member, so members with
 * several events in a batch chain without a quadratic scan. */
struct chain_map {
  const char **keys;
  size_t *vals;
  size_t mask;
};

static void chain_map_init(struct chain_map *m, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n)
    cap <<= 1;
  m->keys = lp_xcalloc(cap, sizeof(*m->keys));
  m->vals = lp_xcalloc(cap, sizeof(*m->vals));
  m->mask = cap - 1;
}

static void chain_map_free(struct chain_map *m) {
  free(m->keys);
  free(m->vals);
}

static size_t chain_slot(const struct chain_map *m, const char *key) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const char *p = key; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ULL;
  size_t i = (size_t)h & m->mask;
  while (m->keys[i] && strcmp(m->keys[i], key) != 0)
    i = (i + 1) & m->mask;
  return i;
}

/*
 * One attempt over the ops listed in idx. Returns 1 when done (conflicted
 * ops are flagged in w[].conflict for the caller to re-run), 0 on a
 * transient failure (retry everything listed).
 */
static int attempt(struct lp_profile_store *s, struct lp_store_op *ops,
                   struct work *w, size_t *idx, size_t n, char *errstr,
                   size_t errstr_size) {
  if (ensure_connected(s, errstr, errstr_size))
    return 0;
  /* Round 1: reads. */
  for (size_t k = 0; k < n; k++) {
    struct work *x = &w[idx[k]];
    const char *memo_cmd[] = {"HGET", x->memo_key, x->memo_field};
    const char *own_cmd[] = {"GET", x->part_key};
    const char *other_cmd[] = {"GET", x->other_key};
    append_words(s->ctx, 3, memo_cmd);
    append_words(s->ctx, 2, own_cmd);
    append_words(s->ctx, 2, other_cmd);
    if (ops[idx[k]].order) {
      const char *rec_cmd[] = {"HGET", x->orders_key,
                               ops[idx[k]].order->order_id};
      append_words(s->ctx, 3, rec_cmd);
    }
  }
  int ok = 1;
  for (size_t k = 0; k < n; k++) {
    struct work *x = &w[idx[k]];
    int nreplies = ops[idx[k]].order ? 4 : 3;
    for (int i = 0; i < nreplies; i++) {
      redisReply *r = NULL;
      if (!get_reply(s, &r, errstr, errstr_size)) {
        ok = 0;
        if (!s->ctx)
          return 0;
      } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(ops[idx[k]].error, sizeof(ops[idx[k]].error), "redis: %s",
                 r->str);
        ops[idx[k]].failed = 1;
      } else {
        char *v = reply_str(r);
        char **slot = i == 0   ? &x->memo
                      : i == 1 ? &x->own
                      : i == 2 ? &x->other
                               : &x->rec;
        free(*slot);
        *slot = v;
      }
      if (r)
        freeReplyObject(r);
    }
  }
  if (!ok)
    return 0;
  /* Apply in order, chaining members with several events in the batch:
   * prev_of[i] is the previous op (index into ops) of the same member. */
  struct chain_map map;
  chain_map_init(&map, n);
  size_t *prev_of = lp_xmalloc(n * sizeof(*prev_of));
  for (size_t k = 0; k < n; k++) {
    struct work *x = &w[idx[k]];
    struct lp_store_op *op = &ops[idx[k]];
    prev_of[k] = SIZE_MAX;
    if (op->failed || x->memo)
      continue;
    size_t slot = chain_slot(&map, x->part_key);
    struct work *prev = NULL;
    if (map.keys[slot]) {
      prev_of[k] = map.vals[slot];
      prev = &w[idx[prev_of[k]]];
    }
    map.keys[slot] = x->part_key;
    map.vals[slot] = k;
    const char *own = prev ? prev->new_own : (x->own ? x->own : "");
    if (op->order) {
      const char *rec = x->rec;
      /* The same order earlier in the batch: its new record is current. */
      for (size_t j = prev_of[k]; j != SIZE_MAX; j = prev_of[j]) {
        struct work *y = &w[idx[j]];
        if (strcmp(ops[idx[j]].order->order_id, op->order->order_id) == 0) {
          rec = y->new_rec ? y->new_rec : y->rec;
          break;
        }
      }
      int prev_applied = 0;
      lp_profile_apply_order(own, rec, op->order, s->max_affinities,
                             &x->new_own, &x->new_rec, &prev_applied);
      if (!x->new_rec && rec && rec != x->rec) {
        free(x->rec);
        x->rec = lp_xstrdup(rec); /* keep the chain's record for later ops */
      }
      x->snapshot = lp_profile_snapshot(own, x->other, prev_applied);
    } else {
      lp_profile_apply_customer(own, op->customer, &x->new_own);
      x->snapshot = lp_profile_snapshot(x->other, own, 0);
    }
    const char *argv[] = {
        "EVALSHA",     s->cas_sha,    "3", x->part_key, x->memo_key,
        x->orders_key, x->memo_field, own, x->new_own,  x->snapshot,
        NULL,          NULL,          NULL};
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%ld", s->memo_ttl_s);
    argv[10] = ttl;
    argv[11] = op->order ? op->order->order_id : "";
    argv[12] = x->new_rec ? x->new_rec : "";
    size_t lens[LP_ARRAY_LEN(argv)];
    for (size_t i = 0; i < LP_ARRAY_LEN(argv); i++)
      lens[i] = strlen(argv[i]);
    redisAppendCommandArgv(s->ctx, (int)LP_ARRAY_LEN(argv), argv, lens);
  }
  chain_map_free(&map);
  free(prev_of);
  /* Round 2: compare-and-set results. */
  for (size_t k = 0; k < n; k++) {
    struct work *x = &w[idx[k]];
    struct lp_store_op *op = &ops[idx[k]];
    if (op->failed)
      continue;
    if (x->memo) {
      if (lp_profile_from_snapshot(x->memo, strlen(x->memo), &op->before,
                                   op->error, sizeof(op->error)))
        op->failed = 1;
      continue;
    }
    redisReply *r = NULL;
    if (!get_reply(s, &r, errstr, errstr_size)) {
      ok = 0;
      if (!s->ctx)
        return 0;
      if (r)
        freeReplyObject(r);
      continue;
    }
    const char *snap = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
      long long code = r->element[0]->integer;
      if (code == 0)
        snap = x->snapshot;
      else if (code == 1 && r->elements == 2 &&
               r->element[1]->type == REDIS_REPLY_STRING)
        snap = r->element[1]->str;
      else
        x->conflict = 1;
    } else {
      op->failed = 1;
      snprintf(op->error, sizeof(op->error), "redis: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    if (snap && lp_profile_from_snapshot(snap, strlen(snap), &op->before,
                                         op->error, sizeof(op->error)))
      op->failed = 1;
    freeReplyObject(r);
  }
  return ok;
}

/* Sleeps for the backoff of attempt n (50 ms doubling to 2 s), serving the
 * caller's wait function meanwhile. */
static void backoff(int n, lp_store_wait_fn wait, void *opaque) {
  int64_t ms = 50LL << (n < 6 ? n : 6);
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

int lp_profile_store_apply(struct lp_profile_store *s, struct lp_store_op *ops,
                           size_t n, volatile sig_atomic_t *stop,
                           lp_store_wait_fn wait, void *opaque) {
  if (n == 0)
    return 0;
  struct work *w = lp_xcalloc(n, sizeof(*w));
  size_t *idx = lp_xcalloc(n, sizeof(*idx));
  size_t todo = n;
  for (size_t i = 0; i < n; i++) {
    work_init(s, &ops[i], &w[i]);
    idx[i] = i;
  }
  char err[512];
  int rc = 0, failures = 0;
  while (todo > 0) {
    err[0] = '\0';
    if (attempt(s, ops, w, idx, todo, err, sizeof(err))) {
      s->healthy = 1;
      /* Re-run only the ops that lost a race, from fresh reads. */
      size_t again = 0;
      for (size_t k = 0; k < todo; k++) {
        struct work *x = &w[idx[k]];
        if (x->conflict) {
          struct work fresh;
          work_init(s, &ops[idx[k]], &fresh);
          work_clear(x);
          *x = fresh;
          idx[again++] = idx[k];
        }
      }
      todo = again;
      continue;
    }
    /* Transient: forget this attempt's results and retry all of it. */
    for (size_t k = 0; k < todo; k++) {
      struct lp_store_op *op = &ops[idx[k]];
      lp_profile_clear(&op->before);
      op->failed = 0;
      op->error[0] = '\0';
      struct work fresh;
      work_init(s, op, &fresh);
      work_clear(&w[idx[k]]);
      w[idx[k]] = fresh;
    }
    s->healthy = 0;
    lp_metrics_add(LP_M_REDIS_ERRORS, 1);
    int64_t now = lp_mono_us();
    if (failures == 0 || now - s->last_outage_log_us > 5000000) {
      LP_WARN("redis unavailable, retrying the batch",
              "\"error\":%s,\"attempt\":%d,\"batch\":%zu", lp_log_str(err),
              failures + 1, todo);
      s->last_outage_log_us = now;
    }
    if (stop && *stop) {
      rc = -1;
      break;
    }
    backoff(failures++, wait, opaque);
    if (stop && *stop) {
      rc = -1;
      break;
    }
  }
  for (size_t i = 0; i < n; i++)
    work_clear(&w[i]);
  free(w);
  free(idx);
  return rc;
}

int lp_profile_store_get(struct lp_profile_store *s, const char *shop,
                         const char *customer_id, struct lp_profile *out,
                         char *errstr, size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  char *pk = member_key(s, 'p', shop, customer_id);
  char *ck = member_key(s, 'c', shop, customer_id);
  redisReply *r = redisCommand(s->ctx, "MGET %s %s", pk, ck);
  free(pk);
  free(ck);
  if (!r) {
    lp_err(errstr, errstr_size, "redis: %s", s->ctx->errstr);
    disconnect(s);
    return -1;
  }
  int rc = -1;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
    char *text = lp_xasprintf(
        "%s%s",
        r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "",
        r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
    rc = lp_profile_from_snapshot(text, strlen(text), out, errstr, errstr_size);
    free(text);
  } else {
    lp_err(errstr, errstr_size, "redis: unexpected reply to MGET");
  }
  freeReplyObject(r);
  return rc;
}
