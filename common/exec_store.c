/*
 * exec_store.c — the executor's Redis state (see exec_store.h for the keys
 * and the guarantees). Each decision costs two script calls, begin and
 * finish, pipelined across the decisions at hand.
 */
#include "exec_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "log.h"
#include "util.h"

/*
 * begin. KEYS: 1 record, 2 member cost, 3 member frequency, 4 campaign
 * spend, 5 budgets, 6 kill switches, 7 and 8 the member's profile parts,
 * 9 the platform's rate schedule, 10 approval queue, 11 approval entry.
 * ARGV: 1 cost, 2 member cap, 3 frequency cap, 4 default budget,
 * 5 campaign, 6 rule, 7 platform, 8 counter ttl s, 9 lease ms, 10 record
 * ttl s, 11 needs approval, 12 rate interval µs, 13 rate burst,
 * 14 approval ttl ms, 15 decision bytes, 16 decision id, 17 check member,
 * 18 claim token (the claimant's; finish and renew must present it),
 * 19 "1" for a score sync (then 20 P(alive) micros, 21 CLV cents, 22
 * segment, 23 churn band, 24 event time ms, 25 the least P(alive) change
 * that syncs, micros, 26 the least CLV change, ppm of the last synced
 * CLV (at least 1.00)); KEYS 12 the member's last sync. A sync whose
 * scores moved less than that, segment and band unchanged, or older
 * than the last sync, is blocked (score_sync:unchanged /
 * score_sync:older_than_last_sync). One sync of a member runs at a
 * time: while another is claimed (f, its decision id, until fl ms, two
 * leases) the answer is busy, so their platform writes never overtake
 * each other.
 * Replies: {0, attempts, takeover, wait ms} claimed; {1, state, platform,
 * reference, status, guardrail} final; {2, ms} busy; {3, guardrail}
 * blocked; {4} pending; {5} unknown member.
 */
static const char begin_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local function rate()\n"
    "  local iv = tonumber(ARGV[12])\n"
    "  if iv <= 0 then return 0 end\n"
    "  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "  local tat = tonumber(redis.call('GET', KEYS[9]) or '0')\n"
    "  if tat < us then tat = us end\n"
    "  local wait = tat - iv * (tonumber(ARGV[13]) - 1) - us\n"
    "  if wait < 0 then wait = 0 end\n"
    "  redis.call('SET', KEYS[9], string.format('%.0f', tat + iv), 'PX',\n"
    "             math.ceil((tat + iv - us) / 1000) + 1000)\n"
    "  return math.ceil(wait / 1000)\n"
    "end\n"
    "local function release(rc)\n"
    "  if tonumber(rc) > 0 then\n"
    "    for _, k in ipairs({KEYS[2], KEYS[4]}) do\n"
    "      if redis.call('EXISTS', k) == 1 then redis.call('DECRBY', k, rc) "
    "end\n"
    "    end\n"
    "  end\n"
    "  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('DECR', KEYS[3]) "
    "end\n"
    "end\n"
    "local scopes = {'all', 'rule:' .. ARGV[6], 'campaign:' .. ARGV[5],\n"
    "                'platform:' .. ARGV[7]}\n"
    "local function killed()\n"
    "  local k = redis.call('HMGET', KEYS[6], unpack(scopes))\n"
    "  for i = 1, 4 do\n"
    "    if k[i] then return 'kill_switch:' .. scopes[i] end\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "local r = redis.call('HMGET', KEYS[1], 's', 'lease', 'n', 'p', 'ref',\n"
    "                     'st', 'g', 'rc')\n"
    "if r[1] == 'inflight' then\n"
    "  local lease = tonumber(r[2]) or 0\n"
    "  if lease > now then return {2, lease - now} end\n"
    "  redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[9]), 'tok',\n"
    "             ARGV[18])\n"
    "  return {0, tonumber(r[3]) or 0, 1, rate()}\n"
    "elseif r[1] == 'approved' then\n"
    "  local g = killed()\n"
    "  if g then\n"
    "    release(r[8] or '0')\n"
    "    redis.call('HSET', KEYS[1], 's', 'blocked', 'g', g, 'res', 0)\n"
    "    return {3, g}\n"
    "  end\n"
    "  redis.call('HSET', KEYS[1], 's', 'inflight', 'lease',\n"
    "             now + tonumber(ARGV[9]), 'tok', ARGV[18])\n"
    "  return {0, tonumber(r[3]) or 0, 0, rate()}\n"
    "elseif r[1] then\n"
    "  return {1, r[1], r[4] or '', r[5] or '', r[6] or '0', r[7] or ''}\n"
    "end\n"
    "if ARGV[17] == '1' and redis.call('EXISTS', KEYS[7], KEYS[8]) == 0 then\n"
    "  return {5}\n"
    "end\n"
    "local function block(g)\n"
    "  redis.call('HSET', KEYS[1], 's', 'blocked', 'g', g, 'p', ARGV[7])\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[10])\n"
    "  return {3, g}\n"
    "end\n"
    "local g = killed()\n"
    "if g then return block(g) end\n"
    "if ARGV[19] == '1' then\n"
    "  local o = redis.call('HMGET', KEYS[12], 'p', 'c', 's', 'r', 't', 'f',\n"
    "                       'fl')\n"
    "  if o[6] and o[6] ~= ARGV[16] and tonumber(o[7] or '0') > now then\n"
    "    return {2, tonumber(o[7]) - now}\n"
    "  end\n"
    "  if o[5] then\n"
    "    if tonumber(o[5]) > tonumber(ARGV[24]) then\n"
    "      return block('score_sync:older_than_last_sync')\n"
    "    end\n"
    "    local c0 = tonumber(o[2]) or 0\n"
    "    local dp = math.abs(tonumber(ARGV[20]) - (tonumber(o[1]) or 0))\n"
    "    local dc = math.abs(tonumber(ARGV[21]) - c0)\n"
    "    if c0 < 100 then c0 = 100 end\n"
    "    if o[3] == ARGV[22] and o[4] == ARGV[23] and\n"
    "       dp < tonumber(ARGV[25]) and dc * 1000000 < tonumber(ARGV[26]) * "
    "c0\n"
    "    then\n"
    "      return block('score_sync:unchanged')\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local cost = tonumber(ARGV[1])\n"
    "local cap = tonumber(ARGV[2])\n"
    "if cap > 0 and cost > 0 and\n"
    "   tonumber(redis.call('GET', KEYS[2]) or '0') + cost > cap then\n"
    "  return block('member_cap')\n"
    "end\n"
    "local fcap = tonumber(ARGV[3])\n"
    "if fcap > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= fcap then\n"
    "  return block('frequency_cap')\n"
    "end\n"
    "local budget = tonumber(redis.call('HGET', KEYS[5], ARGV[5]) or ARGV[4])\n"
    "if budget > 0 and cost > 0 and\n"
    "   tonumber(redis.call('GET', KEYS[4]) or '0') + cost > budget then\n"
    "  return block('campaign_budget')\n"
    "end\n"
    "if ARGV[19] == '1' then\n"
    "  redis.call('HSET', KEYS[12], 'f', ARGV[16], 'fl',\n"
    "             now + 2 * tonumber(ARGV[9]))\n"
    "  redis.call('EXPIRE', KEYS[12], ARGV[10])\n"
    "end\n"
    "if cost > 0 then\n"
    "  redis.call('INCRBY', KEYS[2], ARGV[1])\n"
    "  redis.call('EXPIRE', KEYS[2], ARGV[8])\n"
    "  redis.call('INCRBY', KEYS[4], ARGV[1])\n"
    "  redis.call('EXPIRE', KEYS[4], ARGV[8])\n"
    "end\n"
    "redis.call('INCR', KEYS[3])\n"
    "redis.call('EXPIRE', KEYS[3], ARGV[8])\n"
    "if ARGV[11] == '1' then\n"
    "  local ttl = tonumber(ARGV[14])\n"
    "  redis.call('HSET', KEYS[1], 's', 'pending', 'res', 1, 'rc', ARGV[1],\n"
    "             'p', ARGV[7], 'n', 0)\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[10])\n"
    "  redis.call('HSET', KEYS[11], 'd', ARGV[15], 'x', KEYS[1],\n"
    "             'campaign', ARGV[5], 'rule', ARGV[6], 'at', now,\n"
    "             'until', now + ttl, 'rc', ARGV[1], 'k2', KEYS[2],\n"
    "             'k3', KEYS[3], 'k4', KEYS[4])\n"
    "  redis.call('PEXPIRE', KEYS[11], ttl + 86400000)\n"
    "  redis.call('ZADD', KEYS[10], now + ttl, ARGV[16])\n"
    "  return {4}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 's', 'inflight', 'lease',\n"
    "           now + tonumber(ARGV[9]), 'n', 0, 'res', 1, 'rc', ARGV[1],\n"
    "           'p', ARGV[7], 'tok', ARGV[18])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[10])\n"
    "return {0, 0, 0, rate()}\n";

/*
 * finish. KEYS: 1 record, 2 member cost, 3 member frequency, 4 campaign
 * spend. ARGV: 1 "done" | "failed" | "abandon" (never sent: return the
 * reservation and forget the claim, as if begin had not run) | "unclaim"
 * (never sent, an approved decision: back to approved), 2 platform, 3
 * reference, 4 status, 5 attempts, 6 record ttl s, 7 reason, 8 claim token,
 * 9 "1" for a score sync, whose scores (10..14 as begin's 20..24) become
 * the member's last sync (KEYS 5) when done and not older, 15 its
 * decision id (its in-flight mark is cleared whatever the outcome). A
 * failure returns the reserved cost and frequency slot. Replies 0, or {1,
 * state} when the record was not in flight under this claim (another executor
 * took it over, or it finished): nothing changed.
 */
static const char finish_script[] =
    "local r = redis.call('HMGET', KEYS[1], 's', 'res', 'rc', 'tok')\n"
    "if r[1] ~= 'inflight' or r[4] ~= ARGV[8] then\n"
    "  return {1, r[1] or ''}\n"
    "end\n"
    "if ARGV[9] == '1' and redis.call('HGET', KEYS[5], 'f') == ARGV[15] then\n"
    "  redis.call('HDEL', KEYS[5], 'f', 'fl')\n"
    "end\n"
    "if ARGV[1] == 'unclaim' then\n"
    "  redis.call('HSET', KEYS[1], 's', 'approved')\n"
    "  redis.call('HDEL', KEYS[1], 'lease', 'tok')\n"
    "  return 0\n"
    "end\n"
    "local res = 2\n"
    "if ARGV[1] ~= 'done' then\n"
    "  res = 0\n"
    "  if ARGV[1] == 'abandon' then r[2] = r[2] or '1' end\n"
    "  if r[2] == '1' then\n"
    "    local rc = tonumber(r[3]) or 0\n"
    "    if rc > 0 then\n"
    "      for _, k in ipairs({KEYS[2], KEYS[4]}) do\n"
    "        if redis.call('EXISTS', k) == 1 then\n"
    "          redis.call('DECRBY', k, r[3])\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    if redis.call('EXISTS', KEYS[3]) == 1 then\n"
    "      redis.call('DECR', KEYS[3])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if ARGV[1] == 'abandon' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 0\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 's', ARGV[1], 'p', ARGV[2], 'ref', ARGV[3],\n"
    "           'st', ARGV[4], 'n', ARGV[5], 'why', ARGV[7], 'res', res)\n"
    "if ARGV[1] == 'done' and ARGV[9] == '1' then\n"
    "  local t0 = tonumber(redis.call('HGET', KEYS[5], 't') or '-1')\n"
    "  if t0 <= tonumber(ARGV[14]) then\n"
    "    redis.call('HSET', KEYS[5], 'p', ARGV[10], 'c', ARGV[11], 's',\n"
    "               ARGV[12], 'r', ARGV[13], 't', ARGV[14])\n"
    "    redis.call('EXPIRE', KEYS[5], ARGV[6])\n"
    "  end\n"
    "end\n"
    "redis.call('HDEL', KEYS[1], 'lease')\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[6])\n"
    "return 0\n";

/* renew. KEYS: 1 record. ARGV: 1 lease ms, 2 claim token. 1 renewed, 0
 * the claim is no longer this claimant's. */
static const char renew_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local r = redis.call('HMGET', KEYS[1], 's', 'tok')\n"
    "if r[1] ~= 'inflight' or r[2] ~= ARGV[2] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[1]))\n"
    "return 1\n";

/*
 * settle: a parked decision's fate. KEYS: 1 pending, 2 entry, 3 ready,
 * 4 record, 5-7 its counters (as read from the entry). ARGV: 1 decision
 * id, 2 fate (approved, rejected, expired), 3 actor. approved keeps the
 * reservation for the call; rejected and expired return it. The decision
 * then waits in ready for an executor to carry out or report it.
 * Replies {0, fate}, or {1, why} when it was not (or no longer) pending.
 */
static const char settle_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local sc = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "if not sc then return {1, 'not pending'} end\n"
    "local expired = tonumber(sc) <= now\n"
    "if ARGV[2] == 'expired' and not expired then return {1, 'not due'} end\n"
    "if ARGV[2] ~= 'expired' and expired then return {1, 'expired'} end\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('HSET', KEYS[2], 'fate', ARGV[2], 'actor', ARGV[3],\n"
    "           'decided', now)\n"
    "redis.call('HSET', KEYS[4], 's', ARGV[2], 'actor', ARGV[3])\n"
    "if ARGV[2] ~= 'approved' then\n"
    "  local rc = redis.call('HGET', KEYS[2], 'rc') or '0'\n"
    "  if tonumber(rc) > 0 then\n"
    "    for _, k in ipairs({KEYS[5], KEYS[7]}) do\n"
    "      if redis.call('EXISTS', k) == 1 then redis.call('DECRBY', k, rc) "
    "end\n"
    "    end\n"
    "  end\n"
    "  if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('DECR', KEYS[6]) "
    "end\n"
    "  redis.call('HSET', KEYS[4], 'res', 0)\n"
    "end\n"
    "redis.call('ZADD', KEYS[3], now, ARGV[1])\n"
    "return {0, ARGV[2]}\n";

/* take: up to ARGV[1] ready decisions, hidden from other executors for
 * ARGV[2] ms (they come back if this one dies). KEYS: 1 ready. */
static const char take_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT',\n"
    "                       0, tonumber(ARGV[1]))\n"
    "for _, id in ipairs(ids) do\n"
    "  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)\n"
    "end\n"
    "return ids\n";

/* hold: a platform said "not before" (a 429): move its schedule so that
 * the next slot, burst included, is no earlier. KEYS: 1 the rate
 * schedule. ARGV: 1 until (epoch ms), 2 interval µs, 3 burst. */
static const char hold_script[] =
    "local limit = tonumber(ARGV[1]) * 1000 +\n"
    "              tonumber(ARGV[2]) * (tonumber(ARGV[3]) - 1)\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if limit > tat then\n"
    "  local t = redis.call('TIME')\n"
    "  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "  redis.call('SET', KEYS[1], string.format('%.0f', limit), 'PX',\n"
    "             math.max(1, math.ceil((limit - us) / 1000)) + 1000)\n"
    "end\n"
    "return 0\n";

enum {
  SCRIPT_BEGIN,
  SCRIPT_FINISH,
  SCRIPT_RENEW,
  SCRIPT_SETTLE,
  SCRIPT_TAKE,
  SCRIPT_HOLD,
  SCRIPT_COUNT
};
static const char *const scripts[SCRIPT_COUNT] = {begin_script, finish_script,
                                                  renew_script, settle_script,
                                                  take_script,  hold_script};

struct lp_exec_store {
  struct lp_exec_store_config conf; /* strings below are owned copies */
  char *host, *ns, *profile_ns;
  redisContext *ctx; /* NULL while disconnected */
  char sha[SCRIPT_COUNT][41];
  uint64_t calls, round_trips;
  int healthy;
  char sync_min_p[24], sync_min_c[24]; /* score sync thresholds, as ARGV */
};

/* A score sync's values for the scripts, from its attributes (other
 * kinds: on = 0). Text that does not parse counts as 0: such a sync
 * simply moved. */
struct sync_values {
  int on;
  char p[24], c[24], segment[64], churn[16], t[24];
};

static const char *attribute(const struct lp_reward_decision *d,
                             const char *name) {
  for (size_t i = 0; i < d->action.n_attributes; i++)
    if (d->action.attributes[i].name &&
        strcmp(d->action.attributes[i].name, name) == 0)
      return d->action.attributes[i].value;
  return NULL;
}

static void sync_values_of(const struct lp_reward_decision *d,
                           struct sync_values *v) {
  memset(v, 0, sizeof(*v));
  v->on = d->action.kind == LP_ACTION_SCORE_SYNC;
  int64_t p = 0, c = 0;
  const char *pv = attribute(d, "loyalty_p_alive");
  const char *cv = attribute(d, "loyalty_clv_12m");
  if (pv)
    lp_money_parse(pv, &p);
  if (cv && lp_money_parse(cv, &c) == 0)
    c /= 10000; /* micros -> cents */
  snprintf(v->p, sizeof(v->p), "%lld", (long long)p);
  snprintf(v->c, sizeof(v->c), "%lld", (long long)c);
  const char *sg = attribute(d, "loyalty_segment");
  const char *ch = attribute(d, "loyalty_churn_risk");
  snprintf(v->segment, sizeof(v->segment), "%s", sg ? sg : "");
  snprintf(v->churn, sizeof(v->churn), "%s", ch ? ch : "");
  snprintf(v->t, sizeof(v->t), "%lld", (long long)d->event_time_ms);
}

struct lp_exec_store *lp_exec_store_new(const struct lp_exec_store_config *conf,
                                        char *errstr, size_t errstr_size) {
  if (!conf->host || !*conf->host)
    return lp_err(errstr, errstr_size, "redis.host: must be set"), NULL;
  if (!conf->ns || !*conf->ns || strpbrk(conf->ns, "{} "))
    return lp_err(errstr, errstr_size,
                  "exec.namespace: must be non-empty without spaces or "
                  "braces"),
           NULL;
  if (conf->member_period_s <= 0 || conf->frequency_period_s <= 0 ||
      conf->campaign_period_s <= 0)
    return lp_err(errstr, errstr_size, "guard periods must be positive"), NULL;
  struct lp_exec_store *s = lp_xcalloc(1, sizeof(*s));
  s->conf = *conf;
  s->host = lp_xstrdup(conf->host);
  s->ns = lp_xstrdup(conf->ns);
  s->profile_ns = lp_xstrdup(conf->profile_ns ? conf->profile_ns : "loyalty");
  snprintf(s->sync_min_p, sizeof(s->sync_min_p), "%lld",
           (long long)(conf->sync_min_p_alive_micros > 0
                           ? conf->sync_min_p_alive_micros
                           : 0));
  snprintf(s->sync_min_c, sizeof(s->sync_min_c), "%ld",
           conf->sync_min_clv_ppm > 0 ? conf->sync_min_clv_ppm : 0);
  s->conf.host = s->host;
  s->conf.ns = s->ns;
  s->conf.profile_ns = s->profile_ns;
  if (s->conf.timeout_ms <= 0)
    s->conf.timeout_ms = 2000;
  if (s->conf.lease_ms <= 0)
    s->conf.lease_ms = 30000;
  if (s->conf.record_ttl_s <= 0)
    s->conf.record_ttl_s = 180L * 86400;
  if (s->conf.approval_ttl_s <= 0)
    s->conf.approval_ttl_s = 7L * 86400;
  return s;
}

static void disconnect(struct lp_exec_store *s) {
  if (s->ctx)
    redisFree(s->ctx);
  s->ctx = NULL;
  s->healthy = 0;
}

void lp_exec_store_destroy(struct lp_exec_store **sp) {
  struct lp_exec_store *s = *sp;
  if (!s)
    return;
  disconnect(s);
  free(s->host);
  free(s->ns);
  free(s->profile_ns);
  free(s);
  *sp = NULL;
}

uint64_t lp_exec_store_calls(const struct lp_exec_store *s) {
  return s->calls;
}

uint64_t lp_exec_store_round_trips(const struct lp_exec_store *s) {
  return s->round_trips;
}

int lp_exec_store_healthy(const struct lp_exec_store *s) {
  return s->healthy;
}

/* Connects and loads the scripts; 0 or -1 (then disconnected). */
static int ensure_connected(struct lp_exec_store *s, char *errstr,
                            size_t errstr_size) {
  if (s->ctx)
    return 0;
  struct timeval tv = {s->conf.timeout_ms / 1000,
                       (s->conf.timeout_ms % 1000) * 1000};
  s->ctx = redisConnectWithTimeout(s->host, s->conf.port, tv);
  if (!s->ctx || s->ctx->err) {
    lp_err(errstr, errstr_size, "redis %s:%d: %s", s->host, s->conf.port,
           s->ctx ? s->ctx->errstr : "out of memory");
    disconnect(s);
    return -1;
  }
  redisSetTimeout(s->ctx, tv);
  for (int i = 0; i < SCRIPT_COUNT; i++) {
    redisReply *r = redisCommand(s->ctx, "SCRIPT LOAD %s", scripts[i]);
    int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
    /* A script Redis cannot compile is a bug in this file, not an
     * outage: stop loudly instead of retrying forever. */
    if (r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "compiling")) {
      fprintf(stderr, "exec_store: script %d does not compile: %s\n", i,
              r->str);
      abort();
    }
    if (ok)
      memcpy(s->sha[i], r->str, 41);
    else
      lp_err(errstr, errstr_size, "redis SCRIPT LOAD: %s",
             !r                             ? s->ctx->errstr
             : r->type == REDIS_REPLY_ERROR ? r->str
                                            : "unexpected reply");
    if (r)
      freeReplyObject(r);
    if (!ok) {
      disconnect(s);
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

/* Reads one pipelined reply. 0, or -1 with errstr (disconnected, or an
 * error that needs a reconnect). */
static int get_reply(struct lp_exec_store *s, redisReply **r, char *errstr,
                     size_t errstr_size) {
  *r = NULL;
  if (!s->ctx || redisGetReply(s->ctx, (void **)r) != REDIS_OK || !*r) {
    lp_err(errstr, errstr_size, "redis %s:%d: %s", s->host, s->conf.port,
           s->ctx && s->ctx->errstr[0] ? s->ctx->errstr : "connection lost");
    disconnect(s);
    return -1;
  }
  if ((*r)->type == REDIS_REPLY_ERROR && needs_reconnect((*r)->str)) {
    lp_err(errstr, errstr_size, "redis: %s", (*r)->str);
    freeReplyObject(*r);
    *r = NULL;
    disconnect(s);
    return -1;
  }
  return 0;
}

/* The member's hash tag "{shop:customer}" (caller frees). */
static char *member_tag(const struct lp_reward_decision *d) {
  return lp_xasprintf("{%s:%s}", d->shop, d->customer_id);
}

static int64_t period_of(const struct lp_reward_decision *d, long period_s) {
  int64_t t = d->event_time_ms > 0 ? d->event_time_ms : 0;
  return t / 1000 / period_s;
}

/* The three guardrail counter keys of a decision (caller frees each). */
static void counter_keys(const struct lp_exec_store *s,
                         const struct lp_reward_decision *d,
                         const char *campaign, const char *tag, char **cost,
                         char **freq, char **spend) {
  *cost = lp_xasprintf("%s:g:%s:cost:%lld", s->ns, tag,
                       (long long)period_of(d, s->conf.member_period_s));
  *freq = lp_xasprintf("%s:g:%s:freq:%s:%lld", s->ns, tag, d->rule_id,
                       (long long)period_of(d, s->conf.frequency_period_s));
  *spend = lp_xasprintf("%s:b:{%s}:%lld", s->ns, campaign,
                        (long long)period_of(d, s->conf.campaign_period_s));
}

/* Longest period plus a week: how long a counter outlives its period. */
static long counter_ttl(const struct lp_exec_store *s) {
  long p = s->conf.member_period_s;
  if (s->conf.frequency_period_s > p)
    p = s->conf.frequency_period_s;
  if (s->conf.campaign_period_s > p)
    p = s->conf.campaign_period_s;
  return p + 7L * 86400;
}

/* Copies a reply element's string into dst (truncated, NUL-terminated). */
static void copy_elem(char *dst, size_t size, const redisReply *e) {
  dst[0] = '\0';
  if (e && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS))
    snprintf(dst, size, "%.*s", (int)e->len, e->str);
}

static long long elem_int(const redisReply *e) {
  if (!e)
    return 0;
  if (e->type == REDIS_REPLY_INTEGER)
    return e->integer;
  if (e->type == REDIS_REPLY_STRING)
    return strtoll(e->str, NULL, 10);
  return 0;
}

/* Fills op from a begin reply; a malformed one fails the op. */
static void parse_begin(struct lp_exec_begin *op, const redisReply *r) {
  if (r->type == REDIS_REPLY_ERROR) {
    snprintf(op->error, sizeof(op->error), "redis: %s", r->str);
    op->failed = 1;
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    snprintf(op->error, sizeof(op->error), "redis: unexpected begin reply");
    op->failed = 1;
    return;
  }
  redisReply *const *e = r->element;
  size_t n = r->elements;
  op->verdict = (enum lp_exec_verdict)e[0]->integer;
  switch (op->verdict) {
  case LP_EXEC_CLAIMED:
    op->attempts = n > 1 ? (int)elem_int(e[1]) : 0;
    op->takeover = n > 2 ? (int)elem_int(e[2]) : 0;
    op->wait_ms = n > 3 ? elem_int(e[3]) : 0;
    break;
  case LP_EXEC_FINAL:
    if (n < 6)
      goto bad;
    copy_elem(op->state, sizeof(op->state), e[1]);
    copy_elem(op->done_platform, sizeof(op->done_platform), e[2]);
    copy_elem(op->reference, sizeof(op->reference), e[3]);
    op->http_status = (int)elem_int(e[4]);
    copy_elem(op->guardrail, sizeof(op->guardrail), e[5]);
    break;
  case LP_EXEC_BUSY:
    op->busy_ms = n > 1 ? elem_int(e[1]) : 0;
    break;
  case LP_EXEC_BLOCKED:
    if (n < 2)
      goto bad;
    copy_elem(op->guardrail, sizeof(op->guardrail), e[1]);
    break;
  case LP_EXEC_PENDING:
  case LP_EXEC_UNKNOWN_MEMBER:
    break;
  default:
    goto bad;
  }
  return;
bad:
  snprintf(op->error, sizeof(op->error), "redis: malformed begin reply");
  op->failed = 1;
}

int lp_exec_store_begin(struct lp_exec_store *s, struct lp_exec_begin *ops,
                        size_t n, char *errstr, size_t errstr_size) {
  if (n == 0)
    return 0;
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  char ttl[24], lease[24], rttl[24], mcap[24], fcap[24], budget[24],
      appr_ttl[24];
  snprintf(ttl, sizeof(ttl), "%ld", counter_ttl(s));
  snprintf(lease, sizeof(lease), "%ld", s->conf.lease_ms);
  snprintf(rttl, sizeof(rttl), "%ld", s->conf.record_ttl_s);
  snprintf(mcap, sizeof(mcap), "%lld", (long long)s->conf.member_cap);
  snprintf(fcap, sizeof(fcap), "%ld", s->conf.frequency_cap);
  snprintf(budget, sizeof(budget), "%lld", (long long)s->conf.default_budget);
  snprintf(appr_ttl, sizeof(appr_ttl), "%lld",
           (long long)s->conf.approval_ttl_s * 1000);
  for (size_t i = 0; i < n; i++) {
    struct lp_exec_begin *op = &ops[i];
    const struct lp_reward_decision *d = op->d;
    op->failed = 0;
    op->error[0] = '\0';
    char *tag = member_tag(d);
    char *cost_k, *freq_k, *spend_k;
    counter_keys(s, d, op->campaign, tag, &cost_k, &freq_k, &spend_k);
    char *keys[12] = {lp_xasprintf("%s:x:%s:%s", s->ns, tag, d->decision_id),
                      cost_k,
                      freq_k,
                      spend_k,
                      lp_xasprintf("%s:budgets", s->ns),
                      lp_xasprintf("%s:kill", s->ns),
                      lp_xasprintf("%s:p:%s", s->profile_ns, tag),
                      lp_xasprintf("%s:c:%s", s->profile_ns, tag),
                      lp_xasprintf("%s:rate:%s", s->ns, op->platform),
                      lp_xasprintf("%s:approval:pending", s->ns),
                      lp_xasprintf("%s:approval:d:%s", s->ns, d->decision_id),
                      lp_xasprintf("%s:sync:%s", s->ns, tag)};
    struct sync_values sv;
    sync_values_of(d, &sv);
    char cost[24], interval[24], burst[24];
    snprintf(cost, sizeof(cost), "%lld",
             (long long)(d->estimated_cost_micros > 0 ? d->estimated_cost_micros
                                                      : 0));
    snprintf(interval, sizeof(interval), "%lld",
             (long long)op->rate_interval_us);
    snprintf(burst, sizeof(burst), "%d",
             op->rate_burst > 0 ? op->rate_burst : 1);
    const char *argv[3 + 12 + 26];
    size_t argl[3 + 12 + 26];
    size_t a = 0;
    argv[a++] = "EVALSHA";
    argv[a++] = s->sha[SCRIPT_BEGIN];
    argv[a++] = "12";
    for (int k = 0; k < 12; k++)
      argv[a++] = keys[k];
    const char *args[26] = {cost,
                            mcap,
                            fcap,
                            budget,
                            op->campaign,
                            d->rule_id,
                            op->platform,
                            ttl,
                            lease,
                            rttl,
                            op->needs_approval ? "1" : "0",
                            interval,
                            burst,
                            appr_ttl,
                            NULL,
                            d->decision_id,
                            op->check_member ? "1" : "0",
                            op->token ? op->token : "",
                            sv.on ? "1" : "0",
                            sv.p,
                            sv.c,
                            sv.segment,
                            sv.churn,
                            sv.t,
                            s->sync_min_p,
                            s->sync_min_c};
    for (int k = 0; k < 26; k++)
      argv[a++] = args[k];
    for (size_t k = 0; k < a; k++)
      argl[k] = argv[k] ? strlen(argv[k]) : 0;
    /* The decision bytes are binary. */
    argv[3 + 12 + 14] = op->decision_bytes ? op->decision_bytes : "";
    argl[3 + 12 + 14] = op->decision_bytes ? op->decision_len : 0;
    redisAppendCommandArgv(s->ctx, (int)a, argv, argl);
    for (int k = 0; k < 12; k++)
      free(keys[k]);
    free(tag);
  }
  s->calls += n;
  s->round_trips++;
  for (size_t i = 0; i < n; i++) {
    redisReply *r;
    if (get_reply(s, &r, errstr, errstr_size))
      return -1;
    parse_begin(&ops[i], r);
    freeReplyObject(r);
  }
  s->healthy = 1;
  return 0;
}

int lp_exec_store_finish(struct lp_exec_store *s, struct lp_exec_finish *ops,
                         size_t n, char *errstr, size_t errstr_size) {
  if (n == 0)
    return 0;
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  char rttl[24];
  snprintf(rttl, sizeof(rttl), "%ld", s->conf.record_ttl_s);
  for (size_t i = 0; i < n; i++) {
    struct lp_exec_finish *op = &ops[i];
    const struct lp_reward_decision *d = op->d;
    char *tag = member_tag(d);
    char *rec = lp_xasprintf("%s:x:%s:%s", s->ns, tag, d->decision_id);
    char *cost_k, *freq_k, *spend_k;
    counter_keys(s, d, op->campaign, tag, &cost_k, &freq_k, &spend_k);
    char status[16], attempts[16];
    snprintf(status, sizeof(status), "%d", op->http_status);
    snprintf(attempts, sizeof(attempts), "%d", op->attempts);
    char *sync_k = lp_xasprintf("%s:sync:%s", s->ns, tag);
    struct sync_values sv;
    sync_values_of(d, &sv);
    const char *argv[] = {"EVALSHA",
                          s->sha[SCRIPT_FINISH],
                          "5",
                          rec,
                          cost_k,
                          freq_k,
                          spend_k,
                          sync_k,
                          op->outcome == LP_EXEC_ABANDON   ? "abandon"
                          : op->outcome == LP_EXEC_UNCLAIM ? "unclaim"
                          : op->done                       ? "done"
                                                           : "failed",
                          op->platform ? op->platform : "",
                          op->reference ? op->reference : "",
                          status,
                          attempts,
                          rttl,
                          op->reason ? op->reason : "",
                          op->token ? op->token : "",
                          sv.on ? "1" : "0",
                          sv.p,
                          sv.c,
                          sv.segment,
                          sv.churn,
                          sv.t,
                          d->decision_id};
    size_t argl[LP_ARRAY_LEN(argv)];
    for (size_t k = 0; k < LP_ARRAY_LEN(argv); k++)
      argl[k] = strlen(argv[k]);
    redisAppendCommandArgv(s->ctx, (int)LP_ARRAY_LEN(argv), argv, argl);
    free(sync_k);
    free(rec);
    free(cost_k);
    free(freq_k);
    free(spend_k);
    free(tag);
  }
  s->calls += n;
  s->round_trips++;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    redisReply *r;
    if (get_reply(s, &r, errstr, errstr_size))
      return -1;
    ops[i].not_inflight = 0;
    if (r->type == REDIS_REPLY_ARRAY)
      ops[i].not_inflight = 1;
    else if (r->type != REDIS_REPLY_INTEGER)
      rc = lp_err(errstr, errstr_size, "redis finish: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
  }
  if (rc == 0)
    s->healthy = 1;
  return rc;
}

int lp_exec_store_renew(struct lp_exec_store *s, struct lp_exec_renew *ops,
                        size_t n, char *errstr, size_t errstr_size) {
  if (n == 0)
    return 0;
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  char lease[24];
  snprintf(lease, sizeof(lease), "%ld", s->conf.lease_ms);
  for (size_t i = 0; i < n; i++) {
    char *tag = member_tag(ops[i].d);
    char *rec = lp_xasprintf("%s:x:%s:%s", s->ns, tag, ops[i].d->decision_id);
    const char *argv[] = {"EVALSHA", s->sha[SCRIPT_RENEW],
                          "1",       rec,
                          lease,     ops[i].token ? ops[i].token : ""};
    size_t argl[LP_ARRAY_LEN(argv)];
    for (size_t k = 0; k < LP_ARRAY_LEN(argv); k++)
      argl[k] = strlen(argv[k]);
    redisAppendCommandArgv(s->ctx, (int)LP_ARRAY_LEN(argv), argv, argl);
    free(rec);
    free(tag);
  }
  s->calls += n;
  s->round_trips++;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    redisReply *r;
    if (get_reply(s, &r, errstr, errstr_size))
      return -1;
    if (r->type == REDIS_REPLY_INTEGER)
      ops[i].lost = r->integer == 0;
    else
      rc = lp_err(errstr, errstr_size, "redis renew: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
  }
  return rc;
}

/* Runs one simple command built with printf-style redisCommand. */
static int simple(struct lp_exec_store *s, redisReply *r, char *errstr,
                  size_t errstr_size) {
  s->calls++;
  s->round_trips++;
  if (!r) {
    lp_err(errstr, errstr_size, "redis: %s",
           s->ctx ? s->ctx->errstr : "not connected");
    disconnect(s);
    return -1;
  }
  int rc = 0;
  if (r->type == REDIS_REPLY_ERROR) {
    rc = lp_err(errstr, errstr_size, "redis: %s", r->str);
    if (needs_reconnect(r->str))
      disconnect(s);
  }
  freeReplyObject(r);
  return rc;
}

/* A scope is "all", "rule:<id>", "campaign:<id>" or "platform:<name>". */
static int valid_scope(const char *scope) {
  if (strcmp(scope, "all") == 0)
    return 1;
  static const char *const prefixes[] = {"rule:", "campaign:", "platform:"};
  for (size_t i = 0; i < LP_ARRAY_LEN(prefixes); i++) {
    size_t l = strlen(prefixes[i]);
    if (strncmp(scope, prefixes[i], l) == 0 && scope[l])
      return 1;
  }
  return 0;
}

int lp_exec_store_kill_set(struct lp_exec_store *s, const char *scope,
                           const char *note, char *errstr, size_t errstr_size) {
  if (!valid_scope(scope))
    return lp_err(errstr, errstr_size,
                  "kill switch \"%s\": expected all, rule:<id>, "
                  "campaign:<id> or platform:<name>",
                  scope);
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  return simple(s,
                redisCommand(s->ctx, "HSET %s:kill %s %s", s->ns, scope,
                             note && *note ? note : "set"),
                errstr, errstr_size);
}

int lp_exec_store_kill_clear(struct lp_exec_store *s, const char *scope,
                             char *errstr, size_t errstr_size) {
  if (!valid_scope(scope))
    return lp_err(errstr, errstr_size, "kill switch \"%s\": not a scope",
                  scope);
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  return simple(s, redisCommand(s->ctx, "HDEL %s:kill %s", s->ns, scope),
                errstr, errstr_size);
}

int lp_exec_store_budget_set(struct lp_exec_store *s, const char *campaign,
                             int64_t budget, char *errstr, size_t errstr_size) {
  if (budget < 0)
    return lp_err(errstr, errstr_size, "budget: must not be negative");
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  if (budget == 0)
    return simple(s,
                  redisCommand(s->ctx, "HDEL %s:budgets %s", s->ns, campaign),
                  errstr, errstr_size);
  return simple(s,
                redisCommand(s->ctx, "HSET %s:budgets %s %lld", s->ns, campaign,
                             (long long)budget),
                errstr, errstr_size);
}

/* ---- the approval queue ---- */

/* One command, one round trip: the reply, or NULL with errstr (then
 * disconnected). Connects first when needed. */
static redisReply *command(struct lp_exec_store *s, char *errstr,
                           size_t errstr_size, const char *fmt, ...) {
  if (ensure_connected(s, errstr, errstr_size))
    return NULL;
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(s->ctx, fmt, ap);
  va_end(ap);
  s->calls++;
  s->round_trips++;
  if (!r) {
    lp_err(errstr, errstr_size, "redis: %s", s->ctx->errstr);
    disconnect(s);
  }
  return r;
}

void lp_exec_approval_clear(struct lp_exec_approval *a) {
  free(a->decision);
  memset(a, 0, sizeof(*a));
}

/* Reads a parked decision's entry into a (id already set). 0 when the
 * entry exists, 1 when it does not, -1 on a Redis error. */
static int read_entry(struct lp_exec_store *s, struct lp_exec_approval *a,
                      char *errstr, size_t errstr_size) {
  redisReply *r =
      command(s, errstr, errstr_size,
              "HMGET %s:approval:d:%s d rule campaign at until fate actor",
              s->ns, a->decision_id);
  if (!r)
    return -1;
  int rc = 1;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 7 &&
      r->element[0]->type == REDIS_REPLY_STRING) {
    a->decision = lp_xmalloc(r->element[0]->len + 1);
    memcpy(a->decision, r->element[0]->str, r->element[0]->len);
    a->decision_len = r->element[0]->len;
    copy_elem(a->rule, sizeof(a->rule), r->element[1]);
    copy_elem(a->campaign, sizeof(a->campaign), r->element[2]);
    a->parked_ms = elem_int(r->element[3]);
    a->until_ms = elem_int(r->element[4]);
    copy_elem(a->fate, sizeof(a->fate), r->element[5]);
    copy_elem(a->actor, sizeof(a->actor), r->element[6]);
    rc = 0;
  }
  freeReplyObject(r);
  return rc;
}

/* Reads the entries of the k ids in *out, keeping those that exist (in
 * order) and setting *n. An id whose entry expired is dropped (and, when
 * from_ready, taken out of the ready set: nothing is left to do for it).
 * 0, or -1 with errstr and *out freed. */
static int read_entries(struct lp_exec_store *s, struct lp_exec_approval **out,
                        size_t k, size_t *n, int from_ready, char *errstr,
                        size_t errstr_size) {
  size_t kept = 0;
  for (size_t i = 0; i < k; i++) {
    struct lp_exec_approval *a = &(*out)[i];
    int rc = read_entry(s, a, errstr, errstr_size);
    if (rc < 0) {
      for (size_t j = 0; j < k; j++)
        lp_exec_approval_clear(&(*out)[j]);
      free(*out);
      *out = NULL;
      return -1;
    }
    if (rc > 0) {
      if (from_ready)
        lp_exec_store_ready_done(s, a->decision_id, errstr, errstr_size);
      lp_exec_approval_clear(a);
      continue;
    }
    if (kept != i) {
      (*out)[kept] = *a;
      memset(a, 0, sizeof(*a));
    }
    kept++;
  }
  *n = kept;
  return 0;
}

/* Fills ids from an array reply of strings; returns how many. */
static size_t reply_ids(const redisReply *r, struct lp_exec_approval **out) {
  size_t n = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
  *out = n ? lp_xcalloc(n, sizeof(**out)) : NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING)
      copy_elem((*out)[k++].decision_id, sizeof((*out)[0].decision_id),
                r->element[i]);
  return k;
}

int lp_exec_store_approvals(struct lp_exec_store *s,
                            struct lp_exec_approval **out, size_t *n,
                            char *errstr, size_t errstr_size) {
  *out = NULL;
  *n = 0;
  redisReply *r =
      command(s, errstr, errstr_size, "ZRANGE %s:approval:pending 0 -1", s->ns);
  if (!r)
    return -1;
  size_t k = reply_ids(r, out);
  freeReplyObject(r);
  return read_entries(s, out, k, n, 0, errstr, errstr_size);
}

int lp_exec_store_settle(struct lp_exec_store *s, const char *decision_id,
                         const char *fate, const char *actor, char *errstr,
                         size_t errstr_size) {
  if (strcmp(fate, "approved") && strcmp(fate, "rejected") &&
      strcmp(fate, "expired"))
    return lp_err(errstr, errstr_size,
                  "fate \"%s\": not approved, rejected "
                  "or expired",
                  fate);
  redisReply *r =
      command(s, errstr, errstr_size, "HMGET %s:approval:d:%s x k2 k3 k4",
              s->ns, decision_id);
  if (!r)
    return -1;
  int found = r->type == REDIS_REPLY_ARRAY && r->elements == 4;
  for (size_t i = 0; found && i < 4; i++)
    found = r->element[i]->type == REDIS_REPLY_STRING;
  if (!found) {
    freeReplyObject(r);
    return lp_err(errstr, errstr_size, "decision %s: not in the approval queue",
                  decision_id);
  }
  char pending[256], entry[256], ready[256];
  snprintf(pending, sizeof(pending), "%s:approval:pending", s->ns);
  snprintf(entry, sizeof(entry), "%s:approval:d:%s", s->ns, decision_id);
  snprintf(ready, sizeof(ready), "%s:approval:ready", s->ns);
  const char *argv[] = {"EVALSHA",
                        s->sha[SCRIPT_SETTLE],
                        "7",
                        pending,
                        entry,
                        ready,
                        r->element[0]->str,
                        r->element[1]->str,
                        r->element[2]->str,
                        r->element[3]->str,
                        decision_id,
                        fate,
                        actor && *actor ? actor : "unknown"};
  size_t argl[LP_ARRAY_LEN(argv)];
  for (size_t k = 0; k < LP_ARRAY_LEN(argv); k++)
    argl[k] = strlen(argv[k]);
  redisReply *q = redisCommandArgv(s->ctx, (int)LP_ARRAY_LEN(argv), argv, argl);
  freeReplyObject(r);
  s->calls++;
  s->round_trips++;
  if (!q) {
    lp_err(errstr, errstr_size, "redis: %s", s->ctx->errstr);
    disconnect(s);
    return -1;
  }
  int rc = 0;
  if (q->type != REDIS_REPLY_ARRAY || q->elements != 2 ||
      q->element[0]->type != REDIS_REPLY_INTEGER)
    rc = lp_err(errstr, errstr_size, "redis settle: %s",
                q->type == REDIS_REPLY_ERROR ? q->str : "unexpected reply");
  else if (q->element[0]->integer != 0)
    rc = lp_err(errstr, errstr_size, "decision %s: %s", decision_id,
                q->element[1]->str);
  freeReplyObject(q);
  return rc;
}

int lp_exec_store_expire_due(struct lp_exec_store *s, size_t max,
                             size_t *expired, char *errstr,
                             size_t errstr_size) {
  *expired = 0;
  redisReply *r =
      command(s, errstr, errstr_size,
              "ZRANGEBYSCORE %s:approval:pending -inf %lld LIMIT 0 %lld", s->ns,
              (long long)lp_now_ms(), (long long)max);
  if (!r)
    return -1;
  struct lp_exec_approval *ids;
  size_t k = reply_ids(r, &ids);
  freeReplyObject(r);
  int rc = 0;
  char err[256];
  for (size_t i = 0; i < k && rc == 0; i++) {
    /* Redis' clock decides (a racing approval may win): "not due" and
     * "not pending" are not errors here. */
    if (lp_exec_store_settle(s, ids[i].decision_id, "expired", "expiry", err,
                             sizeof(err)) == 0)
      (*expired)++;
    else if (!s->ctx)
      rc = lp_err(errstr, errstr_size, "%s", err);
  }
  free(ids);
  return rc;
}

int lp_exec_store_take_ready(struct lp_exec_store *s, size_t max, long hide_ms,
                             struct lp_exec_approval **out, size_t *n,
                             char *errstr, size_t errstr_size) {
  *out = NULL;
  *n = 0;
  redisReply *r =
      command(s, errstr, errstr_size, "EVALSHA %s 1 %s:approval:ready %lld %ld",
              s->sha[SCRIPT_TAKE], s->ns, (long long)max, hide_ms);
  if (!r)
    return -1;
  if (r->type == REDIS_REPLY_ERROR) {
    lp_err(errstr, errstr_size, "redis take: %s", r->str);
    freeReplyObject(r);
    return -1;
  }
  size_t k = reply_ids(r, out);
  freeReplyObject(r);
  return read_entries(s, out, k, n, 1, errstr, errstr_size);
}

int lp_exec_store_ready_done(struct lp_exec_store *s, const char *decision_id,
                             char *errstr, size_t errstr_size) {
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  return simple(
      s, redisCommand(s->ctx, "ZREM %s:approval:ready %s", s->ns, decision_id),
      errstr, errstr_size);
}

int lp_exec_store_rate_hold(struct lp_exec_store *s, const char *platform,
                            int64_t until_ms, int64_t interval_us, int burst,
                            char *errstr, size_t errstr_size) {
  if (ensure_connected(s, errstr, errstr_size))
    return -1;
  return simple(s,
                redisCommand(s->ctx, "EVALSHA %s 1 %s:rate:%s %lld %lld %d",
                             s->sha[SCRIPT_HOLD], s->ns, platform,
                             (long long)until_ms, (long long)interval_us,
                             burst > 0 ? burst : 1),
                errstr, errstr_size);
}
