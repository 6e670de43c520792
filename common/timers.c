/*
 * timers.c — the member timer store in Redis (see timers.h for the keys
 * and the guarantees). Each call is one script over one partition's keys:
 * the scripts apply a whole batch with a few multi-argument commands, so
 * a batch of a thousand timers costs one round trip and a handful of
 * Redis commands, not a thousand.
 */
#include "timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "profile_apply.h"
#include "util.h"

/* Shared by every script: runs cmd over list in chunks that unpack can
 * take (pairs stay aligned: the chunk is even). */
#define BULK_LUA                                                               \
  "local function bulk(cmd, key, list)\n"                                      \
  "  for i = 1, #list, 4000 do\n"                                              \
  "    redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))\n"     \
  "  end\n"                                                                    \
  "end\n"

/*
 * schedule. KEYS: 1 due, 2 data, 3 fly, 4 own, 5 gen, 6 done. ARGV:
 * triples of id, due ms, payload. Each timer gets the next generation; one
 * in flight loses its claim (fly and own), so the old claim's ack is a
 * no-op. A timer that already fired at that very due (done holds the due
 * each id last fired at) is not scheduled again: a redelivered record
 * cannot fire a timer twice. Returns the number of timers scheduled.
 */
static const char schedule_script[] = BULK_LUA
    "local n = #ARGV / 3\n"
    "local base = redis.call('INCRBY', KEYS[5], n) - n\n"
    "local fired = {}\n"
    "if KEYS[6] and redis.call('EXISTS', KEYS[6]) == 1 then\n"
    "  for i = 1, n, 4000 do\n"
    "    local q = {}\n"
    "    for k = i, math.min(i + 3999, n) do q[#q + 1] = ARGV[3 * k - 2] end\n"
    "    local f = redis.call('HMGET', KEYS[6], unpack(q))\n"
    "    for k = 1, #q do fired[i + k - 1] = f[k] end\n"
    "  end\n"
    "end\n"
    "local hs, zs, ids = {}, {}, {}\n"
    "for i = 1, n do\n"
    "  local id, due = ARGV[3 * i - 2], ARGV[3 * i - 1]\n"
    "  if fired[i] ~= due then\n"
    "    hs[#hs + 1] = id\n"
    "    hs[#hs + 1] = string.format('%d|%s|', base + i, due) .. "
    "ARGV[3 * i]\n"
    "    zs[#zs + 1] = due\n"
    "    zs[#zs + 1] = id\n"
    "    ids[#ids + 1] = id\n"
    "  end\n"
    "end\n"
    "if #ids == 0 then return 0 end\n"
    "bulk('HSET', KEYS[2], hs)\n"
    "bulk('ZADD', KEYS[1], zs)\n"
    "if redis.call('ZCARD', KEYS[3]) > 0 then\n"
    "  bulk('ZREM', KEYS[3], ids)\n"
    "  bulk('HDEL', KEYS[4], ids)\n"
    "end\n"
    "return #ids\n";

/* cancel. KEYS: 1 due, 2 data, 3 fly, 4 own. ARGV: ids. Returns how many
 * existed. */
static const char cancel_script[] =
    "local n = 0\n"
    "for i = 1, #ARGV, 4000 do\n"
    "  local j = math.min(i + 3999, #ARGV)\n"
    "  n = n + redis.call('HDEL', KEYS[2], unpack(ARGV, i, j))\n"
    "  redis.call('ZREM', KEYS[1], unpack(ARGV, i, j))\n"
    "  redis.call('ZREM', KEYS[3], unpack(ARGV, i, j))\n"
    "  redis.call('HDEL', KEYS[4], unpack(ARGV, i, j))\n"
    "end\n"
    "return n\n";

/*
 * claim. KEYS: 1 due, 2 data, 3 fly, 4 own, 5 bad. ARGV: 1 watermark ms,
 * 2 max (<= 4000), 3 owner, 4 lease ms. First up to max claims whose
 * lease ran out go back to due at their due time; then up to max timers
 * due at or before the watermark (ZRANGEBYSCORE: score, then member
 * bytes) move to fly under owner. A record that is not
 * "<generation>|<due>|..." (written by something else) moves to bad
 * instead of blocking the partition. Returns {{{bad ids}, the earliest
 * due left in due ('' when none)}, id, record, id, record, ...}.
 */
static const char claim_script[] = BULK_LUA
    "local function due_of(rec)\n"
    "  if not rec then return nil end\n"
    "  local g, due = string.match(rec, '^(%-?%d+)|(%-?%d+)|')\n"
    "  if g and #g < 20 and #due < 20 then return due end\n"
    "  return nil\n"
    "end\n"
    "local bad = {}\n"
    "local function quarantine(id, rec)\n"
    "  bad[#bad + 1] = id\n"
    "  if rec then\n"
    "    redis.call('HSET', KEYS[5], id, rec)\n"
    "    redis.call('HDEL', KEYS[2], id)\n"
    "  end\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local max = tonumber(ARGV[2])\n"
    "local back = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now,\n"
    "                        'LIMIT', 0, max)\n"
    "if #back > 0 then\n"
    "  local d = redis.call('HMGET', KEYS[2], unpack(back))\n"
    "  local zs = {}\n"
    "  for i, id in ipairs(back) do\n"
    "    local due = due_of(d[i])\n"
    "    if due then\n"
    "      zs[#zs + 1] = due\n"
    "      zs[#zs + 1] = id\n"
    "    elseif d[i] then\n"
    "      quarantine(id, d[i])\n"
    "    end\n"
    "  end\n"
    "  bulk('ZREM', KEYS[3], back)\n"
    "  bulk('HDEL', KEYS[4], back)\n"
    "  bulk('ZADD', KEYS[1], zs)\n"
    "end\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],\n"
    "                       'LIMIT', 0, max)\n"
    "local head = {bad, ''}\n"
    "local out = {head}\n"
    "local function next_due()\n"
    "  local nx = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "  if nx[2] then head[2] = nx[2] end\n"
    "end\n"
    "if #ids == 0 then next_due() return out end\n"
    "local d = redis.call('HMGET', KEYS[2], unpack(ids))\n"
    "local lease = now + tonumber(ARGV[4])\n"
    "local fs, os = {}, {}\n"
    "for i, id in ipairs(ids) do\n"
    "  if due_of(d[i]) then\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = d[i]\n"
    "    fs[#fs + 1] = lease\n"
    "    fs[#fs + 1] = id\n"
    "    os[#os + 1] = id\n"
    "    os[#os + 1] = ARGV[3]\n"
    "  elseif d[i] then\n"
    "    quarantine(id, d[i])\n"
    "  end\n"
    "end\n"
    "bulk('ZREM', KEYS[1], ids)\n"
    "bulk('ZADD', KEYS[3], fs)\n"
    "bulk('HSET', KEYS[4], os)\n"
    "next_due()\n"
    "return out\n";

/*
 * ack. KEYS: 1 due, 2 data, 3 fly, 4 own, 5 done. ARGV: 1 owner, then
 * quintuples of id, generation, the due it fired at, a new due (0: none)
 * and a new generation. Only a timer owner still holds a claim on, at
 * that generation, is touched (one scheduled again or cancelled since the
 * claim keeps its newer schedule): without a new due it is removed and
 * done keeps the due it fired at; with one it is pending again at that
 * due under the new generation (same payload), done untouched. Returns
 * how many.
 */
static const char ack_script[] = BULK_LUA
    "local ids, gens, dues, moves, ngens = {}, {}, {}, {}, {}\n"
    "for i = 2, #ARGV, 5 do\n"
    "  ids[#ids + 1] = ARGV[i]\n"
    "  gens[#gens + 1] = ARGV[i + 1]\n"
    "  dues[#dues + 1] = ARGV[i + 2]\n"
    "  moves[#moves + 1] = ARGV[i + 3]\n"
    "  ngens[#ngens + 1] = ARGV[i + 4]\n"
    "end\n"
    "if #ids == 0 then return 0 end\n"
    "local del, dn, off, hs, zs = {}, {}, {}, {}, {}\n"
    "for i = 1, #ids, 4000 do\n"
    "  local j = math.min(i + 3999, #ids)\n"
    "  local o = redis.call('HMGET', KEYS[4], unpack(ids, i, j))\n"
    "  local d = redis.call('HMGET', KEYS[2], unpack(ids, i, j))\n"
    "  for k = 1, j - i + 1 do\n"
    "    local x = i + k - 1\n"
    "    if o[k] == ARGV[1] and d[k] then\n"
    "      local g, rest = string.match(d[k], '^([^|]*)|[^|]*|(.*)$')\n"
    "      if g == gens[x] then\n"
    "        off[#off + 1] = ids[x]\n"
    "        if moves[x] == '0' then\n"
    "          del[#del + 1] = ids[x]\n"
    "          dn[#dn + 1] = ids[x]\n"
    "          dn[#dn + 1] = dues[x]\n"
    "        else\n"
    "          hs[#hs + 1] = ids[x]\n"
    "          hs[#hs + 1] = ngens[x] .. '|' .. moves[x] .. '|' .. rest\n"
    "          zs[#zs + 1] = moves[x]\n"
    "          zs[#zs + 1] = ids[x]\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if #off == 0 then return 0 end\n"
    "bulk('ZREM', KEYS[3], off)\n"
    "bulk('HDEL', KEYS[4], off)\n"
    "bulk('HDEL', KEYS[2], del)\n"
    "bulk('HSET', KEYS[5], dn)\n"
    "bulk('HSET', KEYS[2], hs)\n"
    "bulk('ZADD', KEYS[1], zs)\n"
    "return #off\n";

enum { SCRIPT_SCHEDULE, SCRIPT_CANCEL, SCRIPT_CLAIM, SCRIPT_ACK, SCRIPT_COUNT };

static const char *const scripts[SCRIPT_COUNT] = {
    schedule_script, cancel_script, claim_script, ack_script};

struct lp_timers {
  char *host, *ns; /* owned */
  int port, timeout_ms;
  redisContext *ctx; /* NULL while disconnected */
  char sha[SCRIPT_COUNT][41];
  uint64_t round_trips;
  int check_fired;  /* schedule consults done (lp_timers_set_check_fired) */
  int64_t gen_base; /* client-side generations (schedule_plain) */
  int64_t gen_counter;
  /* Pipelining (lp_timers_pipeline_begin/end): schedule and cancel calls
   * are sent at once and their replies read at the end. */
  int pipelining;
  struct pending {
    int cancel; /* 0 schedule script, 1 cancel, 2 plain schedule (MULTI),
                   3 a caller's command, 4 ack */
    size_t n;
    size_t *cancelled;
  } * pend;
  size_t n_pend, cap_pend;
};

/* Event times travel through Lua numbers (doubles): exact below 2^53. */
#define DUE_LIMIT (INT64_C(1) << 53)

struct lp_timers *lp_timers_new(const struct lp_timers_config *conf,
                                char *errstr, size_t errstr_size) {
  if (!conf->host || !*conf->host)
    return lp_err(errstr, errstr_size, "timers: redis host must be set"), NULL;
  if (!conf->ns || !*conf->ns || strpbrk(conf->ns, "{} "))
    return lp_err(errstr, errstr_size,
                  "timers: namespace must be non-empty without spaces or "
                  "braces"),
           NULL;
  struct lp_timers *t = lp_xcalloc(1, sizeof(*t));
  t->host = lp_xstrdup(conf->host);
  t->ns = lp_xstrdup(conf->ns);
  t->port = conf->port;
  t->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 2000;
  t->check_fired = 1;
  /* 24 random bits above a 38-bit counter: < 2^62, digits only. */
  unsigned seed =
      (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)(uintptr_t)t;
  t->gen_base = ((int64_t)(rand_r(&seed) & 0xffffff) << 38) + (1LL << 37);
  return t;
}

static void disconnect(struct lp_timers *t) {
  if (t->ctx)
    redisFree(t->ctx);
  t->ctx = NULL;
}

void lp_timers_destroy(struct lp_timers **tp) {
  struct lp_timers *t = *tp;
  if (!t)
    return;
  disconnect(t);
  free(t->pend);
  free(t->host);
  free(t->ns);
  free(t);
  *tp = NULL;
}

uint64_t lp_timers_round_trips(const struct lp_timers *t) {
  return t->round_trips;
}

/* Connects and loads the scripts; 0 or -1 (then disconnected). */
static int ensure_connected(struct lp_timers *t, char *errstr,
                            size_t errstr_size) {
  if (t->n_pend && !t->pipelining) /* a caller bug: replies would mix */
    return lp_err(errstr, errstr_size,
                  "timers: a sent pipeline's replies are still unread");
  if (t->ctx)
    return 0;
  struct timeval tv = {t->timeout_ms / 1000, (t->timeout_ms % 1000) * 1000};
  t->ctx = redisConnectWithTimeout(t->host, t->port, tv);
  if (!t->ctx || t->ctx->err) {
    lp_err(errstr, errstr_size, "timers: redis %s:%d: %s", t->host, t->port,
           t->ctx ? t->ctx->errstr : "out of memory");
    disconnect(t);
    return -1;
  }
  redisSetTimeout(t->ctx, tv);
  for (int i = 0; i < SCRIPT_COUNT; i++) {
    redisReply *r = redisCommand(t->ctx, "SCRIPT LOAD %s", scripts[i]);
    int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
    /* A script Redis cannot compile is a bug in this file, not an
     * outage: stop loudly instead of retrying forever. */
    if (r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "compiling")) {
      fprintf(stderr, "timers: script %d does not compile: %s\n", i, r->str);
      abort();
    }
    if (ok)
      memcpy(t->sha[i], r->str, 41);
    else
      lp_err(errstr, errstr_size, "timers: redis SCRIPT LOAD: %s",
             !r                             ? t->ctx->errstr
             : r->type == REDIS_REPLY_ERROR ? r->str
                                            : "unexpected reply");
    if (r)
      freeReplyObject(r);
    if (!ok) {
      disconnect(t);
      return -1;
    }
  }
  return 0;
}

/* Errors that a new connection cures: a restarted or failed-over Redis
 * has lost the scripts (reconnecting reloads them), is loading, busy, or
 * not the primary. */
static int needs_reconnect(const char *msg) {
  static const char *const prefixes[] = {"NOSCRIPT", "LOADING", "BUSY",
                                         "MASTERDOWN", "READONLY"};
  for (size_t i = 0; i < LP_ARRAY_LEN(prefixes); i++)
    if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
      return 1;
  return 0;
}

/* One growing argument vector for a script call (lengths kept, so ids
 * and payloads are binary-safe). */
struct args {
  const char **v;
  size_t *len;
  size_t n, cap;
  char *owned; /* number text: one buffer of fixed slots */
  size_t owned_used, owned_cap;
};

static void args_push(struct args *a, const char *s, size_t len) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 16;
    a->v = lp_xrealloc(a->v, a->cap * sizeof(*a->v));
    a->len = lp_xrealloc(a->len, a->cap * sizeof(*a->len));
  }
  a->v[a->n] = s;
  a->len[a->n++] = len;
}

#define NUM_SLOT 24

/* Reserves room for k numbers so their text never moves once pushed. */
static void args_reserve_numbers(struct args *a, size_t k) {
  a->owned_cap = k * NUM_SLOT;
  a->owned = lp_xmalloc(a->owned_cap ? a->owned_cap : 1);
  a->owned_used = 0;
}

static void args_push_number(struct args *a, long long v) {
  if (a->owned_used + NUM_SLOT > a->owned_cap) {
    fprintf(stderr, "timers: number slots exhausted\n");
    abort();
  }
  char *p = a->owned + a->owned_used;
  int l = snprintf(p, NUM_SLOT, "%lld", v);
  a->owned_used += NUM_SLOT;
  args_push(a, p, (size_t)l);
}

static void args_free(struct args *a) {
  free(a->v);
  free(a->len);
  free(a->owned);
  memset(a, 0, sizeof(*a));
}

/* The partition's key for a suffix into buf. */
static void key_of(const struct lp_timers *t, int partition, const char *what,
                   char *buf, size_t size) {
  snprintf(buf, size, "%s:tm:%d:%s", t->ns, partition, what);
}

/* Runs one script call; the reply (caller frees) or NULL with errstr. */
static redisReply *run(struct lp_timers *t, struct args *a, const char *what,
                       char *errstr, size_t errstr_size) {
  if (t->n_pend) { /* a sent pipeline's replies come first: a caller bug */
    lp_err(errstr, errstr_size,
           "timers %s: a sent pipeline's replies are still unread", what);
    return NULL;
  }
  t->round_trips++;
  redisReply *r = redisCommandArgv(t->ctx, (int)a->n, a->v, a->len);
  if (!r) {
    lp_err(errstr, errstr_size, "timers %s: redis %s:%d: %s", what, t->host,
           t->port, t->ctx->errstr[0] ? t->ctx->errstr : "connection lost");
    disconnect(t);
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    lp_err(errstr, errstr_size, "timers %s: redis: %s", what, r->str);
    if (needs_reconnect(r->str))
      disconnect(t);
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

/* Reads the replies of one MULTI (5 commands) ... EXEC; 0 or -1. */
static int read_multi(struct lp_timers *t, char *errstr, size_t errstr_size) {
  int rc = 0;
  for (int i = 0; i < 6; i++) {
    redisReply *r = NULL;
    if (!t->ctx || redisGetReply(t->ctx, (void **)&r) != REDIS_OK || !r) {
      lp_err(errstr, errstr_size, "timers schedule: redis %s:%d: %s", t->host,
             t->port,
             t->ctx && t->ctx->errstr[0] ? t->ctx->errstr : "connection lost");
      disconnect(t);
      return -1;
    }
    if (r->type == REDIS_REPLY_ERROR ||
        (i == 5 && r->type != REDIS_REPLY_ARRAY)) {
      if (rc == 0)
        lp_err(errstr, errstr_size, "timers schedule: redis: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "transaction aborted");
      if (r->type == REDIS_REPLY_ERROR && needs_reconnect(r->str)) {
        freeReplyObject(r);
        disconnect(t);
        return -1;
      }
      rc = -1;
    }
    freeReplyObject(r);
  }
  return rc;
}

/* Pipelining: sends the call now, its reply is checked by pipeline_end.
 * Frees a. */
static void defer(struct lp_timers *t, struct args *a, int cancel, size_t n,
                  size_t *cancelled) {
  redisAppendCommandArgv(t->ctx, (int)a->n, a->v, a->len);
  args_free(a);
  if (t->n_pend == t->cap_pend) {
    t->cap_pend = t->cap_pend ? 2 * t->cap_pend : 16;
    t->pend = lp_xrealloc(t->pend, t->cap_pend * sizeof(*t->pend));
  }
  t->pend[t->n_pend++] = (struct pending){cancel, n, cancelled};
}

static int check_partition(int partition, char *errstr, size_t errstr_size) {
  if (partition < 0)
    return lp_err(errstr, errstr_size, "timers: partition %d: must be >= 0",
                  partition);
  return 0;
}

/* A timer id: non-empty, "<kind>:<member key>...", at most the limit. */
static int check_id(const char *what, size_t i, const char *id, char *errstr,
                    size_t errstr_size) {
  if (!id || !*id)
    return lp_err(errstr, errstr_size, "timers %s: timer %zu: id is empty",
                  what, i);
  size_t l = strlen(id);
  if (l > LP_TIMERS_ID_MAX)
    return lp_err(errstr, errstr_size,
                  "timers %s: timer %zu: id is %zu bytes (at most %d)", what, i,
                  l, LP_TIMERS_ID_MAX);
  const char *colon = strchr(id, ':');
  if (!colon || colon == id || !colon[1])
    return lp_err(errstr, errstr_size,
                  "timers %s: timer %zu (\"%.64s\"): id is not "
                  "<kind>:<member key>",
                  what, i, id);
  return 0;
}

static int check_owner(const char *owner, char *errstr, size_t errstr_size) {
  if (!owner || !*owner || strlen(owner) > LP_TIMERS_OWNER_MAX)
    return lp_err(errstr, errstr_size,
                  "timers: owner token must be 1..%d bytes",
                  LP_TIMERS_OWNER_MAX);
  return 0;
}

static const char *pend_name(int kind) {
  static const char *const names[] = {"schedule", "cancel", "schedule",
                                      "command", "ack"};
  return kind >= 0 && kind < 5 ? names[kind] : "call";
}

/* Queues the reply of one pipelined call (read at pipeline_end). */
static void pend_push(struct lp_timers *t, int kind, size_t n, size_t *count) {
  if (t->n_pend == t->cap_pend) {
    t->cap_pend = t->cap_pend ? 2 * t->cap_pend : 16;
    t->pend = lp_xrealloc(t->pend, t->cap_pend * sizeof(*t->pend));
  }
  t->pend[t->n_pend++] = (struct pending){kind, n, count};
}

/* schedule_batch without the fired check, as plain commands in one
 * MULTI/EXEC (no script: about half the Redis time per timer). The
 * generation is the client's: a 24-bit random instance part and a
 * counter, distinct from the script's (small) ones and from any other
 * instance's with near certainty; all it must do is differ from the
 * claimed generation when a timer in flight is scheduled again. */
static int schedule_plain(struct lp_timers *t, int partition, size_t n,
                          const char *const ids[], const int64_t due_ms[],
                          const char *const payloads[], char *errstr,
                          size_t errstr_size) {
  char k[4][256];
  static const char *const names[] = {"due", "data", "fly", "own"};
  for (int j = 0; j < 4; j++)
    key_of(t, partition, names[j], k[j], sizeof(k[j]));
  struct args hs = {0}, zs = {0}, zr = {0}, hd = {0};
  args_reserve_numbers(&zs, n);
  args_push(&hs, "HSET", 4);
  args_push(&hs, k[1], strlen(k[1]));
  args_push(&zs, "ZADD", 4);
  args_push(&zs, k[0], strlen(k[0]));
  args_push(&zr, "ZREM", 4);
  args_push(&zr, k[2], strlen(k[2]));
  args_push(&hd, "HDEL", 4);
  args_push(&hd, k[3], strlen(k[3]));
  struct lp_buf recs;
  lp_buf_init(&recs);
  size_t *off = lp_xmalloc((n ? n : 1) * sizeof(*off) * 2);
  for (size_t i = 0; i < n; i++) {
    const char *pl = payloads && payloads[i] ? payloads[i] : "";
    off[2 * i] = recs.len;
    lp_buf_appendf(&recs, "%lld|%lld|%s",
                   (long long)(t->gen_base + ++t->gen_counter),
                   (long long)due_ms[i], pl);
    off[2 * i + 1] = recs.len;
  }
  for (size_t i = 0; i < n; i++) {
    args_push(&hs, ids[i], strlen(ids[i]));
    args_push(&hs, (const char *)recs.data + off[2 * i],
              off[2 * i + 1] - off[2 * i]);
    args_push_number(&zs, (long long)due_ms[i]);
    args_push(&zs, ids[i], strlen(ids[i]));
    args_push(&zr, ids[i], strlen(ids[i]));
    args_push(&hd, ids[i], strlen(ids[i]));
  }
  static const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
  static const size_t one[] = {5}, four[] = {4};
  redisAppendCommandArgv(t->ctx, 1, multi, one);
  redisAppendCommandArgv(t->ctx, (int)hs.n, hs.v, hs.len);
  redisAppendCommandArgv(t->ctx, (int)zs.n, zs.v, zs.len);
  redisAppendCommandArgv(t->ctx, (int)zr.n, zr.v, zr.len);
  redisAppendCommandArgv(t->ctx, (int)hd.n, hd.v, hd.len);
  redisAppendCommandArgv(t->ctx, 1, exec, four);
  args_free(&hs);
  args_free(&zs);
  args_free(&zr);
  args_free(&hd);
  lp_buf_free(&recs);
  free(off);
  if (t->pipelining) {
    /* MULTI, 4 QUEUED and EXEC: pipeline_end reads them as one entry. */
    if (t->n_pend == t->cap_pend) {
      t->cap_pend = t->cap_pend ? 2 * t->cap_pend : 16;
      t->pend = lp_xrealloc(t->pend, t->cap_pend * sizeof(*t->pend));
    }
    t->pend[t->n_pend++] = (struct pending){2, n, NULL};
    return 0;
  }
  t->round_trips++;
  return read_multi(t, errstr, errstr_size);
}

int lp_timers_schedule_batch(struct lp_timers *t, int partition, size_t n,
                             const char *const ids[], const int64_t due_ms[],
                             const char *const payloads[], char *errstr,
                             size_t errstr_size) {
  if (check_partition(partition, errstr, errstr_size))
    return -1;
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (check_id("schedule", i, ids[i], errstr, errstr_size))
      return -1;
    if (due_ms[i] <= -DUE_LIMIT || due_ms[i] >= DUE_LIMIT)
      return lp_err(errstr, errstr_size,
                    "timers schedule: timer %zu (\"%.64s\"): due %lld ms is "
                    "out of range",
                    i, ids[i], (long long)due_ms[i]);
    size_t pl = payloads && payloads[i] ? strlen(payloads[i]) : 0;
    if (pl > LP_TIMERS_PAYLOAD_MAX)
      return lp_err(errstr, errstr_size,
                    "timers schedule: timer %zu (\"%.64s\"): payload is %zu "
                    "bytes (at most %d)",
                    i, ids[i], pl, LP_TIMERS_PAYLOAD_MAX);
  }
  if (ensure_connected(t, errstr, errstr_size))
    return -1;
  if (!t->check_fired)
    return schedule_plain(t, partition, n, ids, due_ms, payloads, errstr,
                          errstr_size);
  char k[6][256];
  static const char *const names[] = {"due", "data", "fly",
                                      "own", "gen",  "done"};
  struct args a = {0};
  args_reserve_numbers(&a, n);
  args_push(&a, "EVALSHA", 7);
  args_push(&a, t->sha[SCRIPT_SCHEDULE], 40);
  int nkeys = t->check_fired ? 6 : 5; /* without done: no fired check */
  args_push(&a, nkeys == 6 ? "6" : "5", 1);
  for (int j = 0; j < nkeys; j++) {
    key_of(t, partition, names[j], k[j], sizeof(k[j]));
    args_push(&a, k[j], strlen(k[j]));
  }
  for (size_t i = 0; i < n; i++) {
    const char *pl = payloads && payloads[i] ? payloads[i] : "";
    args_push(&a, ids[i], strlen(ids[i]));
    args_push_number(&a, (long long)due_ms[i]);
    args_push(&a, pl, strlen(pl));
  }
  if (t->pipelining) {
    defer(t, &a, 0, n, NULL);
    return 0;
  }
  redisReply *r = run(t, &a, "schedule", errstr, errstr_size);
  args_free(&a);
  if (!r)
    return -1;
  int rc = 0;
  if (r->type != REDIS_REPLY_INTEGER || r->integer < 0 ||
      (size_t)r->integer > n)
    rc = lp_err(errstr, errstr_size,
                "timers schedule: unexpected reply from redis");
  freeReplyObject(r);
  return rc;
}

int lp_timers_cancel_batch(struct lp_timers *t, int partition, size_t n,
                           const char *const ids[], size_t *cancelled,
                           char *errstr, size_t errstr_size) {
  if (cancelled)
    *cancelled = 0;
  if (check_partition(partition, errstr, errstr_size))
    return -1;
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (check_id("cancel", i, ids[i], errstr, errstr_size))
      return -1;
  if (ensure_connected(t, errstr, errstr_size))
    return -1;
  char k[4][256];
  static const char *const names[] = {"due", "data", "fly", "own"};
  struct args a = {0};
  args_push(&a, "EVALSHA", 7);
  args_push(&a, t->sha[SCRIPT_CANCEL], 40);
  args_push(&a, "4", 1);
  for (int j = 0; j < 4; j++) {
    key_of(t, partition, names[j], k[j], sizeof(k[j]));
    args_push(&a, k[j], strlen(k[j]));
  }
  for (size_t i = 0; i < n; i++)
    args_push(&a, ids[i], strlen(ids[i]));
  if (t->pipelining) {
    defer(t, &a, 1, n, cancelled);
    return 0;
  }
  redisReply *r = run(t, &a, "cancel", errstr, errstr_size);
  args_free(&a);
  if (!r)
    return -1;
  int rc = 0;
  if (r->type != REDIS_REPLY_INTEGER || r->integer < 0)
    rc = lp_err(errstr, errstr_size,
                "timers cancel: unexpected reply from redis");
  else if (cancelled)
    *cancelled = (size_t)r->integer;
  freeReplyObject(r);
  return rc;
}

void lp_timers_claimed_clear(struct lp_timers_claimed *c) {
  for (size_t i = 0; i < c->n; i++) {
    free(c->timers[i].id);
    free(c->timers[i].payload);
  }
  free(c->timers);
  for (size_t i = 0; i < c->n_quarantined; i++)
    free(c->quarantined[i]);
  free(c->quarantined);
  memset(c, 0, sizeof(*c));
}

/* Parses "<generation>|<due>|<payload>" into timer; 0 or -1. */
static int parse_data(const char *s, size_t len, struct lp_timer *timer) {
  const char *end = s + len;
  const char *bar1 = memchr(s, '|', len);
  if (!bar1)
    return -1;
  const char *bar2 = memchr(bar1 + 1, '|', (size_t)(end - bar1 - 1));
  if (!bar2)
    return -1;
  char num[NUM_SLOT];
  size_t gl = (size_t)(bar1 - s), dl = (size_t)(bar2 - bar1 - 1);
  if (gl == 0 || gl >= sizeof(num) || dl == 0 || dl >= sizeof(num))
    return -1;
  char *e;
  memcpy(num, s, gl);
  num[gl] = 0;
  timer->generation = strtoll(num, &e, 10);
  if (*e)
    return -1;
  memcpy(num, bar1 + 1, dl);
  num[dl] = 0;
  timer->due_ms = strtoll(num, &e, 10);
  if (*e)
    return -1;
  timer->payload_len = (size_t)(end - bar2 - 1);
  timer->payload = lp_xmalloc(timer->payload_len + 1);
  memcpy(timer->payload, bar2 + 1, timer->payload_len);
  timer->payload[timer->payload_len] = 0;
  return 0;
}

int lp_timers_claim_due(struct lp_timers *t, int partition,
                        int64_t watermark_ms, size_t max, const char *owner,
                        long lease_ms, struct lp_timers_claimed *out,
                        char *errstr, size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  if (check_partition(partition, errstr, errstr_size) ||
      check_owner(owner, errstr, errstr_size))
    return -1;
  if (max == 0 || max > LP_TIMERS_CLAIM_MAX)
    return lp_err(errstr, errstr_size, "timers claim: max %zu: must be 1..%d",
                  max, LP_TIMERS_CLAIM_MAX);
  if (lease_ms <= 0)
    return lp_err(errstr, errstr_size,
                  "timers claim: lease %ld ms: must be positive", lease_ms);
  if (watermark_ms <= -DUE_LIMIT)
    return 0;
  if (watermark_ms >= DUE_LIMIT)
    watermark_ms = DUE_LIMIT - 1;
  if (ensure_connected(t, errstr, errstr_size))
    return -1;
  char k[5][256];
  static const char *const names[] = {"due", "data", "fly", "own", "bad"};
  struct args a = {0};
  args_reserve_numbers(&a, 3);
  args_push(&a, "EVALSHA", 7);
  args_push(&a, t->sha[SCRIPT_CLAIM], 40);
  args_push(&a, "5", 1);
  for (int j = 0; j < 5; j++) {
    key_of(t, partition, names[j], k[j], sizeof(k[j]));
    args_push(&a, k[j], strlen(k[j]));
  }
  args_push_number(&a, (long long)watermark_ms);
  args_push_number(&a, (long long)max);
  args_push(&a, owner, strlen(owner));
  args_push_number(&a, (long long)lease_ms);
  redisReply *r = run(t, &a, "claim", errstr, errstr_size);
  args_free(&a);
  if (!r)
    return -1;
  int rc = 0;
  if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 1 ||
      r->element[0]->type != REDIS_REPLY_ARRAY ||
      r->element[0]->elements != 2 ||
      r->element[0]->element[0]->type != REDIS_REPLY_ARRAY ||
      r->element[0]->element[1]->type != REDIS_REPLY_STRING) {
    rc = lp_err(errstr, errstr_size,
                "timers claim: unexpected reply from redis");
    goto done;
  }
  const redisReply *bad = r->element[0]->element[0];
  const redisReply *nx = r->element[0]->element[1];
  int64_t next = 0;
  out->has_next_due =
      nx->len > 0 && lp_state_parse_i64(nx->str, nx->len, &next) == 0;
  out->next_due_ms = out->has_next_due ? next : 0;
  if (bad->elements) {
    out->quarantined = lp_xcalloc(bad->elements, sizeof(*out->quarantined));
    for (size_t i = 0; i < bad->elements; i++)
      if (bad->element[i]->type == REDIS_REPLY_STRING)
        out->quarantined[out->n_quarantined++] =
            lp_xstrdup(bad->element[i]->str);
  }
  size_t m = r->elements / 2;
  out->timers = m ? lp_xcalloc(m, sizeof(*out->timers)) : NULL;
  for (size_t i = 0; i < m; i++) {
    const redisReply *id = r->element[2 * i + 1], *d = r->element[2 * i + 2];
    struct lp_timer *tm = &out->timers[out->n];
    if (id->type != REDIS_REPLY_STRING || d->type != REDIS_REPLY_STRING ||
        parse_data(d->str, d->len, tm)) {
      /* The script checked the record: this is a broken invariant. */
      fprintf(stderr, "timers: claim: partition %d: unreadable record\n",
              partition);
      abort();
    }
    tm->id = lp_xmalloc(id->len + 1);
    memcpy(tm->id, id->str, id->len);
    tm->id[id->len] = 0;
    out->n++;
  }
done:
  freeReplyObject(r);
  return rc;
}

int lp_timers_ack_move(struct lp_timers *t, int partition,
                       const struct lp_timer *timers, const int64_t moves[],
                       size_t n, const char *owner, size_t *acked, char *errstr,
                       size_t errstr_size) {
  if (acked)
    *acked = 0;
  if (check_partition(partition, errstr, errstr_size) ||
      check_owner(owner, errstr, errstr_size))
    return -1;
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (check_id("ack", i, timers[i].id, errstr, errstr_size))
      return -1;
    if (moves && (moves[i] < 0 || moves[i] >= DUE_LIMIT))
      return lp_err(errstr, errstr_size,
                    "timers ack: timer %zu (%s): new due %lld out of range", i,
                    timers[i].id, (long long)moves[i]);
  }
  if (ensure_connected(t, errstr, errstr_size))
    return -1;
  char k[5][256];
  static const char *const names[] = {"due", "data", "fly", "own", "done"};
  struct args a = {0};
  args_reserve_numbers(&a, 4 * n);
  args_push(&a, "EVALSHA", 7);
  args_push(&a, t->sha[SCRIPT_ACK], 40);
  args_push(&a, "5", 1);
  for (int j = 0; j < 5; j++) {
    key_of(t, partition, names[j], k[j], sizeof(k[j]));
    args_push(&a, k[j], strlen(k[j]));
  }
  args_push(&a, owner, strlen(owner));
  for (size_t i = 0; i < n; i++) {
    int64_t move = moves ? moves[i] : 0;
    args_push(&a, timers[i].id, strlen(timers[i].id));
    args_push_number(&a, (long long)timers[i].generation);
    args_push_number(&a, (long long)timers[i].due_ms);
    args_push_number(&a, (long long)move);
    args_push_number(&a,
                     move ? (long long)(t->gen_base + ++t->gen_counter) : 0LL);
  }
  if (t->pipelining) { /* read (and *acked filled) at pipeline_end */
    redisAppendCommandArgv(t->ctx, (int)a.n, a.v, a.len);
    args_free(&a);
    pend_push(t, 4, n, acked);
    return 0;
  }
  redisReply *r = run(t, &a, "ack", errstr, errstr_size);
  args_free(&a);
  if (!r)
    return -1;
  int rc = 0;
  if (r->type != REDIS_REPLY_INTEGER || r->integer < 0)
    rc = lp_err(errstr, errstr_size, "timers ack: unexpected reply from redis");
  else if (acked)
    *acked = (size_t)r->integer;
  freeReplyObject(r);
  return rc;
}

int lp_timers_ack(struct lp_timers *t, int partition,
                  const struct lp_timer *timers, size_t n, const char *owner,
                  size_t *acked, char *errstr, size_t errstr_size) {
  return lp_timers_ack_move(t, partition, timers, NULL, n, owner, acked, errstr,
                            errstr_size);
}

int lp_timers_next_due(struct lp_timers *t, int partition, int64_t *due_ms,
                       char *errstr, size_t errstr_size) {
  if (check_partition(partition, errstr, errstr_size))
    return -1;
  if (ensure_connected(t, errstr, errstr_size))
    return -1;
  char key[256];
  key_of(t, partition, "due", key, sizeof(key));
  t->round_trips++;
  redisReply *r = redisCommand(t->ctx, "ZRANGE %s 0 0 WITHSCORES", key);
  if (!r) {
    lp_err(errstr, errstr_size, "timers next due: redis: %s", t->ctx->errstr);
    disconnect(t);
    return -1;
  }
  int rc;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
    rc = 1;
  } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[1]->type == REDIS_REPLY_STRING) {
    *due_ms = (int64_t)strtod(r->element[1]->str, NULL);
    rc = 0;
  } else {
    rc = lp_err(errstr, errstr_size, "timers next due: redis: %s",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
  }
  freeReplyObject(r);
  return rc;
}

int lp_timers_pending(struct lp_timers *t, int partition, size_t *n,
                      char *errstr, size_t errstr_size) {
  *n = 0;
  if (check_partition(partition, errstr, errstr_size))
    return -1;
  if (ensure_connected(t, errstr, errstr_size))
    return -1;
  /* data holds every timer, pending or in flight. */
  char key[256];
  key_of(t, partition, "data", key, sizeof(key));
  t->round_trips++;
  redisReply *r = redisCommand(t->ctx, "HLEN %s", key);
  if (!r) {
    lp_err(errstr, errstr_size, "timers pending: redis: %s", t->ctx->errstr);
    disconnect(t);
    return -1;
  }
  int rc = 0;
  if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
    *n = (size_t)r->integer;
  else
    rc = lp_err(errstr, errstr_size, "timers pending: redis: %s",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
  freeReplyObject(r);
  return rc;
}

size_t lp_timer_output_id(const struct lp_timer *timer, char *buf,
                          size_t size) {
  int l = snprintf(buf, size, "%s@%lld", timer->id, (long long)timer->due_ms);
  return l < 0 ? 0 : (size_t)l;
}

void lp_timers_set_check_fired(struct lp_timers *t, int on) {
  t->check_fired = on != 0;
}

int lp_timers_command(struct lp_timers *t, int argc, const char *argv[],
                      const size_t lens[], char *errstr, size_t errstr_size) {
  if (ensure_connected(t, errstr, errstr_size))
    return -1;
  if (t->pipelining) {
    redisAppendCommandArgv(t->ctx, argc, argv, lens);
    pend_push(t, 3, 0, NULL);
    return 0;
  }
  struct args a = {0};
  for (int i = 0; i < argc; i++)
    args_push(&a, argv[i], lens[i]);
  redisReply *r = run(t, &a, "command", errstr, errstr_size);
  args_free(&a);
  if (!r)
    return -1;
  freeReplyObject(r);
  return 0;
}

void lp_timers_pipeline_begin(struct lp_timers *t) {
  t->pipelining = 1; /* replies of a sent pipeline still unread stay
                        queued ahead: the next recv reads them too */
}

int lp_timers_pipeline_send(struct lp_timers *t, char *errstr,
                            size_t errstr_size) {
  t->pipelining = 0;
  if (t->n_pend == 0)
    return 0;
  int done = 0;
  while (t->ctx && !done)
    if (redisBufferWrite(t->ctx, &done) != REDIS_OK)
      break;
  if (!t->ctx || !done) {
    lp_err(errstr, errstr_size, "timers: redis %s:%d: %s", t->host, t->port,
           t->ctx && t->ctx->errstr[0] ? t->ctx->errstr : "connection lost");
    disconnect(t);
    t->n_pend = 0;
    return -1;
  }
  return 0;
}

int lp_timers_pipeline_end(struct lp_timers *t, char *errstr,
                           size_t errstr_size) {
  t->pipelining = 0;
  return lp_timers_pipeline_recv(t, errstr, errstr_size);
}

int lp_timers_pipeline_recv(struct lp_timers *t, char *errstr,
                            size_t errstr_size) {
  size_t n = t->n_pend;
  t->n_pend = 0;
  if (n == 0)
    return 0;
  t->round_trips++;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    const struct pending *p = &t->pend[i];
    if (p->cancel == 2) { /* a plain schedule's MULTI ... EXEC */
      char e[256];
      if (read_multi(t, e, sizeof(e)) != 0) {
        if (rc == 0)
          lp_err(errstr, errstr_size, "%s", e);
        rc = -1;
        if (!t->ctx)
          return -1;
      }
      continue;
    }
    redisReply *r = NULL;
    if (!t->ctx || redisGetReply(t->ctx, (void **)&r) != REDIS_OK || !r) {
      lp_err(errstr, errstr_size, "timers %s: redis %s:%d: %s",
             pend_name(p->cancel), t->host, t->port,
             t->ctx && t->ctx->errstr[0] ? t->ctx->errstr : "connection lost");
      disconnect(t);
      return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      if (rc == 0)
        lp_err(errstr, errstr_size, "timers %s: redis: %s",
               pend_name(p->cancel), r->str);
      if (needs_reconnect(r->str))
        disconnect(t); /* the later replies are lost with it */
      freeReplyObject(r);
      if (!t->ctx)
        return -1;
      rc = -1;
      continue;
    }
    if (p->cancel == 3) { /* a caller's command: any reply but an error */
      freeReplyObject(r);
      continue;
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0 ||
        (!p->cancel && (size_t)r->integer > p->n)) {
      if (rc == 0)
        lp_err(errstr, errstr_size, "timers %s: unexpected reply from redis",
               pend_name(p->cancel));
      rc = -1;
    } else if (p->cancel && p->cancelled) {
      *p->cancelled = (size_t)r->integer; /* cancelled, or acked */
    }
    freeReplyObject(r);
  }
  return rc;
}
