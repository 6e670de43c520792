/*
 * profile_store.c — Redis-backed member profiles (see profile_store.h for
 * the keys and the guarantees; profile_apply.c holds the update logic).
 *
 * Redis does only cheap work per event (four or five reads, one short
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

#include <errno.h>
#include <unistd.h>

#include <hiredis.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

/*
 * Compare-and-set of a group of events (up to cas_batch; one member's
 * several events may be in one group, in order). KEYS: per event its part
 * and its gate: for an order event the order's entry (record + memos),
 * for a customer or activity event its memo entry. ARGV: ttl seconds, then
 * per event the kind ('o', 'c' or 'a'), the expected part ("" = absent),
 * the new part, and
 *   orders:    the expected entry ("" = absent) and the new one ("" = keep)
 *   customers, activity: the memo, and "" (unused)
 * Returns one result per event: 0 written, {1, memo} already applied by a
 * racing instance (customer and activity events), 2 the part or the entry
 * changed since
 * they were read (re-read and retry; a racing instance's memo is then
 * found in the entry). At most four calls per event, and an order event
 * creates no key of its own: the entry it rewrites holds its memo. One
 * script per group instead of per event saves the ~2.7 µs Redis spends
 * starting any script.
 */
static const char cas_script[] =
    "local ttl, out = ARGV[1], {}\n"
    "for i = 0, #KEYS / 2 - 1 do\n"
    "  local k, a = i * 2, i * 5 + 1\n"
    "  local cur = redis.call('GET', KEYS[k + 1]) or ''\n"
    "  if cur ~= ARGV[a + 2] then\n"
    "    out[i + 1] = 2\n"
    "  elseif ARGV[a + 1] == 'o' then\n"
    "    if (redis.call('GET', KEYS[k + 2]) or '') ~= ARGV[a + 4] then\n"
    "      out[i + 1] = 2\n"
    "    else\n"
    "      if ARGV[a + 3] ~= cur then\n"
    "        redis.call('SET', KEYS[k + 1], ARGV[a + 3])\n"
    "      end\n"
    "      if ARGV[a + 5] ~= '' then\n"
    "        redis.call('SET', KEYS[k + 2], ARGV[a + 5], 'EX', ttl)\n"
    "      end\n"
    "      out[i + 1] = 0\n"
    "    end\n"
    "  elseif not redis.call('SET', KEYS[k + 2], ARGV[a + 4], 'NX', 'EX',\n"
    "                        ttl) then\n"
    "    out[i + 1] = {1, redis.call('GET', KEYS[k + 2])}\n"
    "  else\n"
    "    if ARGV[a + 3] ~= cur then\n"
    "      redis.call('SET', KEYS[k + 1], ARGV[a + 3])\n"
    "    end\n"
    "    out[i + 1] = 0\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Per-op working state of one attempt. */
struct work {
  char *keys; /* one allocation holding the four keys below */
  /* gate: entry or memo. other and third: the parts this op does not
   * write — orders: customer, activity; customers: order, activity;
   * activity: order, customer. */
  const char *part_key, *other_key, *third_key, *gate_key;
  size_t part_len, other_len, third_len, gate_len;
  char *gate; /* read: the order entry or the event's memo, NULL = none */
  size_t gate_size;
  char *own;   /* read: own part (NULL if absent) */
  char *other; /* read: the other part (NULL if absent) */
  char *third; /* read: the third part (NULL if absent) */
  char *memo;  /* a memo of this event found (orders: in the entry) */
  /* Orders: the entry in force just before this event (the one read, or
   * the one an earlier event of the order in this batch wrote; borrowed,
   * NULL = none), and the entry this event writes (NULL = keep). */
  const char *entry_before;
  char *new_entry;
  char *new_own;  /* computed */
  char *snapshot; /* computed */
  int cas_sent;   /* its compare-and-set is in the pipeline */
  int conflict;
};

/* A small open-addressing map from member key to the latest op of this
 * attempt that computed a new part for that member, so members with
 * several events in a batch chain without a quadratic scan. */
struct chain_map {
  const char **keys;
  size_t *vals;
  size_t mask;
};

/* One batch's way through the store. Two can be in flight on the one
 * connection: the older with its compare-and-sets sent, the newer with
 * its reads sent behind them (Redis runs them in that order). */
enum batch_phase { B_IDLE, B_READS_SENT, B_CAS_SENT };

struct batch {
  struct lp_store_op *ops; /* borrowed from the caller until finished */
  size_t n, todo;          /* todo: ops listed in idx still to apply */
  struct work *w;          /* per op; kept between batches */
  size_t *idx, *prev_of;
  size_t cap;
  const struct lp_store_callbacks *cb; /* borrowed */
  enum batch_phase phase;
  uint64_t generation; /* connection the commands went out on */
  int failures;        /* transient failures in a row (backoff) */
  int active;
};

struct lp_profile_store {
  char *host;
  int port;
  char *ns;
  long memo_ttl_s;
  char ttl_text[24]; /* memo_ttl_s as the script's argument */
  int timeout_ms;
  int max_affinities;
  struct lp_activity_params activity;
  redisContext *ctx; /* NULL while disconnected */
  char cas_sha[41];
  int healthy;
  int64_t last_outage_log_us;
  struct lp_buf out; /* the pipeline being formatted (RESP) */
  int cas_batch;     /* events per compare-and-set script */
  /* The group being formatted: its keys and arguments apart, as RESP
   * needs the argument count first. */
  struct lp_buf group_keys, group_args;
  size_t group_n;
  /* Per-batch working arrays are kept between batches: allocating and
   * freeing them per batch made glibc consolidate its heap every time. */
  struct batch batches[LP_STORE_SLOTS];
  uint64_t generation; /* bumped on every disconnect */
  struct chain_map map;
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
  if (conf->activity &&
      (conf->activity->half_life_ms <= 0 || conf->activity->max_names < 0 ||
       conf->activity->floor_micros < 0))
    return lp_err(errstr, errstr_size,
                  "activity: the half-life must be positive, the name cap "
                  "and the floor not negative"),
           NULL;
  struct lp_profile_store *s = lp_xcalloc(1, sizeof(*s));
  s->host = lp_xstrdup(conf->host);
  s->port = conf->port;
  s->ns = lp_xstrdup(conf->ns);
  s->memo_ttl_s = conf->memo_ttl_s > 0 ? conf->memo_ttl_s : 90L * 86400;
  s->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 2000;
  s->max_affinities =
      conf->max_affinities > 0 ? conf->max_affinities : LP_MAX_AFFINITIES;
  if (conf->activity)
    s->activity = *conf->activity;
  else
    lp_activity_params_default(&s->activity);
  snprintf(s->ttl_text, sizeof(s->ttl_text), "%ld", s->memo_ttl_s);
  s->cas_batch = conf->cas_batch > 0 ? conf->cas_batch : 32;
  lp_buf_init(&s->out);
  lp_buf_init(&s->group_keys);
  lp_buf_init(&s->group_args);
  return s;
}

static void disconnect(struct lp_profile_store *s) {
  if (s->ctx)
    redisFree(s->ctx);
  s->ctx = NULL;
  s->healthy = 0;
  s->generation++; /* whatever was on the wire is lost */
}

static void work_clear(struct work *w);

void lp_profile_store_destroy(struct lp_profile_store **sp) {
  struct lp_profile_store *s = *sp;
  if (!s)
    return;
  disconnect(s);
  free(s->host);
  free(s->ns);
  lp_buf_free(&s->out);
  lp_buf_free(&s->group_keys);
  lp_buf_free(&s->group_args);
  for (int i = 0; i < LP_STORE_SLOTS; i++) {
    struct batch *b = &s->batches[i];
    for (size_t k = 0; b->active && k < b->n; k++)
      work_clear(&b->w[k]);
    free(b->w);
    free(b->idx);
    free(b->prev_of);
  }
  free(s->map.keys);
  free(s->map.vals);
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
  /* Keep the reply buffer between batches instead of freeing it whenever
   * it drains (hiredis' default above 16 KiB). */
  s->ctx->reader->maxbuf = 0;
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

/* Writes "<ns>:<kind>:{<shop>:<customer>}" at p; returns the end. No
 * printf: this runs several times per event. */
static char *put_member_key(char *p, const char *ns, size_t ln, char kind,
                            const char *shop, size_t ls, const char *cust,
                            size_t lc) {
  memcpy(p, ns, ln);
  p += ln;
  *p++ = ':';
  *p++ = kind;
  *p++ = ':';
  *p++ = '{';
  memcpy(p, shop, ls);
  p += ls;
  *p++ = ':';
  memcpy(p, cust, lc);
  p += lc;
  *p++ = '}';
  return p;
}

/* "<ns>:<kind>:{<shop>:<customer>}" (caller frees). */
static char *member_key(const struct lp_profile_store *s, char kind,
                        const char *shop, const char *customer) {
  size_t ln = strlen(s->ns), ls = strlen(shop), lc = strlen(customer);
  char *k = lp_xmalloc(ln + ls + lc + 7);
  *put_member_key(k, s->ns, ln, kind, shop, ls, customer, lc) = '\0';
  return k;
}

static void work_clear(struct work *w) {
  free(w->keys);
  free(w->gate);
  free(w->own);
  free(w->other);
  free(w->third);
  free(w->memo);
  free(w->new_entry);
  free(w->new_own);
  free(w->snapshot);
  memset(w, 0, sizeof(*w));
}

/* Builds the op's four keys in one allocation:
 *   part   <ns>:p:{m} (orders), <ns>:c:{m} (customers), <ns>:a:{m} (activity)
 *   other, third  the other two parts (see struct work)
 *   gate   <ns>:r:{m}:<order id> (orders: the order's entry),
 *          <ns>:m:{m}:c:<event id> (customers: the event's memo) or
 *          <ns>:m:{m}:a:<event id> (activity: the event's memo) */
static void work_init(struct lp_profile_store *s, const struct lp_store_op *op,
                      struct work *w) {
  memset(w, 0, sizeof(*w));
  LP_ASSERT(!!op->order + !!op->customer + !!op->activity == 1);
  const char *shop, *cust, *tail;
  char kinds[3], memo_kind = 0; /* own, other, third; 0 = order entry */
  if (op->order) {
    shop = op->order->shop;
    cust = op->order->customer_id;
    tail = op->order->order_id;
    memcpy(kinds, "pca", 3);
  } else if (op->customer) {
    shop = op->customer->shop;
    cust = op->customer->customer_id;
    tail = op->customer->event_id;
    memcpy(kinds, "cpa", 3);
    memo_kind = 'c';
  } else {
    shop = op->activity->shop;
    cust = op->activity->customer_id;
    tail = op->activity->event_id;
    memcpy(kinds, "apc", 3);
    memo_kind = 'a';
  }
  size_t ln = strlen(s->ns), ls = strlen(shop), lc = strlen(cust);
  size_t lt = strlen(tail);
  size_t member = ln + ls + lc + 6; /* one member key without NUL */
  char *p = w->keys = lp_xmalloc(4 * member + lt + 8);
  const char **key[3] = {&w->part_key, &w->other_key, &w->third_key};
  size_t *len[3] = {&w->part_len, &w->other_len, &w->third_len};
  for (int i = 0; i < 3; i++) {
    *key[i] = p;
    p = put_member_key(p, s->ns, ln, kinds[i], shop, ls, cust, lc);
    *len[i] = (size_t)(p - *key[i]);
    *p++ = '\0';
  }
  w->gate_key = p;
  p = put_member_key(p, s->ns, ln, memo_kind ? 'm' : 'r', shop, ls, cust, lc);
  *p++ = ':';
  if (memo_kind) {
    *p++ = memo_kind;
    *p++ = ':';
  }
  memcpy(p, tail, lt);
  p += lt;
  w->gate_len = (size_t)(p - w->gate_key);
  *p = '\0';
}

/* ---- RESP formatting straight into the pipeline buffer ---- */

static void resp_count(struct lp_buf *b, char type, size_t n) {
  char tmp[24], *p = tmp + sizeof(tmp);
  *--p = '\n';
  *--p = '\r';
  p = lp_u64_digits_back(p, n);
  *--p = type;
  lp_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void resp_arg(struct lp_buf *b, const char *s, size_t n) {
  resp_count(b, '$', n);
  lp_buf_append(b, s, n);
  lp_buf_append(b, "\r\n", 2);
}

static void resp_str(struct lp_buf *b, const char *s) {
  resp_arg(b, s, strlen(s));
}

/* Writes the formatted pipeline to the socket ourselves and empties it, so
 * Redis starts on these commands while we prepare the next ones.
 * hiredis' own output buffer is never used on this connection after the
 * synchronous SCRIPT LOAD, so nothing can overtake these bytes; copying
 * them into hiredis first cost a reallocation per chunk. A failed write
 * drops the connection: the reads that follow then fail as transient. */
static void resp_flush(struct lp_profile_store *s) {
  const uint8_t *p = s->out.data;
  size_t left = s->out.len;
  while (s->ctx && left > 0) {
    ssize_t n = write(s->ctx->fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      LP_WARN("redis write failed", "\"error\":%s",
              lp_log_str(n < 0 ? strerror(errno) : "short write"));
      disconnect(s);
      break;
    }
    p += n;
    left -= (size_t)n;
  }
  lp_buf_reset(&s->out);
}

/* Compare-and-sets formatted before they are sent on their way. */
#define CAS_CHUNK 64

/* An activity event's memo: "a<TAB><n>\n", the n bytes of the activity
 * part before it (n = 0: none), then the snapshot of the order and
 * customer parts it was applied against (caller frees). */
static char *activity_memo(const char *activity_before, const char *order_part,
                           const char *customer_part) {
  char *snap = lp_profile_snapshot(order_part, customer_part, 0);
  char *memo = lp_xasprintf("a\t%zu\n%s%s",
                            activity_before ? strlen(activity_before) : 0,
                            activity_before ? activity_before : "", snap);
  free(snap);
  return memo;
}

/* Splits an activity memo of len bytes: *before (caller frees; NULL when
 * the member had no activity part) and the snapshot at *snap / *snap_len.
 * 0, or -1 when it is not one. */
static int activity_memo_split(const char *memo, size_t len, char **before,
                               const char **snap, size_t *snap_len) {
  *before = NULL;
  const char *nl = len > 2 ? memchr(memo, '\n', len) : NULL;
  int64_t n;
  if (!nl || memo[0] != 'a' || memo[1] != '\t' ||
      lp_state_parse_i64(memo + 2, (size_t)(nl - memo - 2), &n) || n < 0 ||
      (uint64_t)n > len - (size_t)(nl + 1 - memo))
    return -1;
  if (n > 0)
    *before = lp_xstrndup(nl + 1, (size_t)n);
  *snap = nl + 1 + n;
  *snap_len = len - (size_t)(*snap - memo);
  return 0;
}

/* Fills op->before (and op->before_activity) from snapshot text — for
 * activity events their memo — and tells the caller; on a parse error the
 * op fails (dead-lettered with the reason). x is the op's work: for order
 * and customer events its activity part as read is the before_activity. */
static void known(struct lp_store_op *op, size_t i, const struct work *x,
                  const char *snap, size_t len,
                  const struct lp_store_callbacks *cb) {
  lp_profile_clear(&op->before);
  free(op->before_activity);
  op->before_activity = NULL;
  if (op->activity) {
    if (activity_memo_split(snap, len, &op->before_activity, &snap, &len)) {
      snprintf(op->error, sizeof(op->error),
               "redis: %.*s: not an activity memo", (int)x->gate_len,
               x->gate_key);
      op->failed = 1;
      return;
    }
  } else if (x->third) {
    op->before_activity = lp_xstrdup(x->third);
  }
  if (lp_profile_from_snapshot(snap, len, &op->before, op->error,
                               sizeof(op->error))) {
    op->failed = 1;
    return;
  }
  if (cb && cb->known)
    cb->known(cb->opaque, i, op);
}

/* Folds activity event ev into the member's activity part own (borrowed)
 * and sets x->new_own and x->snapshot (its memo). An order at or after
 * the stored cart_at — the order part says when the member last ordered —
 * consumed the cart: it is cleared first, with the order's time as
 * cart_at, so an older cart event cannot reopen it. */
static void activity_step(const struct lp_profile_store *s, struct work *x,
                          const struct lp_activity_event *ev, const char *own) {
  int64_t last_order = lp_state_line_i64(x->other, "last");
  char *cleared = NULL;
  if (last_order > 0 && last_order >= lp_state_line_i64(own, "cart_at"))
    lp_activity_clear_cart(own, last_order, &cleared);
  lp_activity_apply(cleared ? cleared : own, ev, &s->activity, &x->new_own);
  free(cleared);
  x->snapshot = activity_memo(*own ? own : NULL, x->other, x->third);
}

/* Reads one reply; 1 ok, 0 connection lost / transient (errstr set), and
 * a per-op permanent error is left in *perm. */
static int get_reply(struct lp_profile_store *s, redisReply **r, char *errstr,
                     size_t errstr_size) {
  if (!s->ctx) {
    lp_err(errstr, errstr_size, "redis %s:%d: connection lost", s->host,
           s->port);
    return 0;
  }
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

/* Empties the map, sized for n keys (memory kept between batches). */
static void chain_map_reset(struct chain_map *m, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n)
    cap <<= 1;
  if (!m->keys || cap > m->mask + 1) {
    free(m->keys);
    free(m->vals);
    m->keys = lp_xmalloc(cap * sizeof(*m->keys));
    m->vals = lp_xmalloc(cap * sizeof(*m->vals));
  } else {
    cap = m->mask + 1;
  }
  memset(m->keys, 0, cap * sizeof(*m->keys));
  m->mask = cap - 1;
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

/* Closes the group being formatted: one EVALSHA into the pipeline. */
static void close_group(struct lp_profile_store *s) {
  if (s->group_n == 0)
    return;
  struct lp_buf *b = &s->out;
  char numkeys[24];
  snprintf(numkeys, sizeof(numkeys), "%zu", 2 * s->group_n);
  resp_count(b, '*', 3 + 2 * s->group_n + 1 + 5 * s->group_n);
  resp_arg(b, "EVALSHA", 7);
  resp_arg(b, s->cas_sha, 40);
  resp_str(b, numkeys);
  lp_buf_append(b, s->group_keys.data, s->group_keys.len);
  resp_str(b, s->ttl_text);
  lp_buf_append(b, s->group_args.data, s->group_args.len);
  lp_buf_reset(&s->group_keys);
  lp_buf_reset(&s->group_args);
  s->group_n = 0;
}

/* The op's kind as the compare-and-set script names it. */
static char op_kind(const struct lp_store_op *op) {
  return op->order ? 'o' : op->customer ? 'c' : 'a';
}

/* Adds the compare-and-set of one applied op to the group; returns 1 when
 * that closed the group (it is then in the pipeline). */
static int append_cas(struct lp_profile_store *s, const struct work *x,
                      char kind, const char *own) {
  resp_arg(&s->group_keys, x->part_key, x->part_len);
  resp_arg(&s->group_keys, x->gate_key, x->gate_len);
  resp_arg(&s->group_args, &kind, 1);
  resp_str(&s->group_args, own);
  resp_str(&s->group_args, x->new_own);
  if (kind == 'o') {
    resp_str(&s->group_args, x->entry_before ? x->entry_before : "");
    resp_str(&s->group_args, x->new_entry ? x->new_entry : "");
  } else {
    resp_str(&s->group_args, x->snapshot);
    resp_arg(&s->group_args, "", 0);
  }
  if (++s->group_n < (size_t)s->cas_batch)
    return 0;
  close_group(s);
  return 1;
}

/* Phase 1: one MGET per event of its gate (the order's entry or the
 * event's memo) and the three parts, sent without waiting. 0 when not
 * connected. */
static int send_reads(struct lp_profile_store *s, struct batch *b, char *errstr,
                      size_t errstr_size) {
  if (ensure_connected(s, errstr, errstr_size))
    return 0;
  lp_buf_reset(&s->out);
  for (size_t k = 0; k < b->todo; k++) {
    struct work *x = &b->w[b->idx[k]];
    resp_count(&s->out, '*', 5);
    resp_arg(&s->out, "MGET", 4);
    resp_arg(&s->out, x->gate_key, x->gate_len);
    resp_arg(&s->out, x->part_key, x->part_len);
    resp_arg(&s->out, x->other_key, x->other_len);
    resp_arg(&s->out, x->third_key, x->third_len);
  }
  b->phase = B_READS_SENT;
  b->generation = s->generation; /* a failed write below bumps it */
  resp_flush(s);
  if (!s->ctx) {
    lp_err(errstr, errstr_size, "redis %s:%d: write failed", s->host, s->port);
    return 0;
  }
  return 1;
}

/*
 * Works out order event k of b from the entry in force just before it:
 * the one read or, when an earlier event of the same order is in this
 * batch (found through the member's chain from op `chain`), the one that
 * event writes. Returns 1 with its compare-and-set ready to send; 0 when
 * it has none: its memo was read from Redis (x->memo, final) or it failed
 * (op->failed, with the reason).
 */
static int order_step(struct lp_profile_store *s, struct batch *b, size_t k,
                      size_t chain, const char *own) {
  struct work *x = &b->w[b->idx[k]];
  struct lp_store_op *op = &b->ops[b->idx[k]];
  const struct lp_order_event *ev = op->order;
  const char *entry = x->gate;
  size_t len = x->gate_size;
  int in_batch = 0;
  for (size_t j = chain; j != SIZE_MAX; j = b->prev_of[j]) {
    const struct work *y = &b->w[b->idx[j]];
    if (strcmp(b->ops[b->idx[j]].order->order_id, ev->order_id) == 0) {
      entry = y->new_entry ? y->new_entry : y->entry_before;
      len = entry ? strlen(entry) : 0;
      in_batch = 1;
      break;
    }
  }
  x->entry_before = entry;
  struct lp_order_entry e;
  char err[160];
  if (lp_order_entry_parse(entry ? entry : "", len, &e, err, sizeof(err))) {
    snprintf(op->error, sizeof(op->error), "redis: %.*s: %s", (int)x->gate_len,
             x->gate_key, err);
    op->failed = 1;
    return 0;
  }
  const char *memo;
  size_t memo_len;
  if (lp_order_entry_memo(&e, ev->event_id, &memo, &memo_len)) {
    if (!in_batch) {
      x->memo = lp_xstrndup(memo, memo_len);
      return 0;
    }
    /* The same event earlier in this batch: change nothing, but confirm
     * that the write it relies on happened (a lost race re-runs both). */
    x->snapshot = lp_xstrndup(memo, memo_len);
    x->new_own = lp_xstrdup(own);
    return 1;
  }
  if (e.n_memos >= LP_ORDER_MAX_EVENTS) {
    snprintf(op->error, sizeof(op->error),
             "order %.64s already has %d events applied, the most one order "
             "may have; event refused",
             ev->order_id, LP_ORDER_MAX_EVENTS);
    op->failed = 1;
    return 0;
  }
  char *rec = e.record_len ? lp_xstrndup(e.record, e.record_len) : NULL;
  char *new_rec = NULL;
  int prev_applied = 0;
  lp_profile_apply_order(own, rec, ev, s->max_affinities, &x->new_own, &new_rec,
                         &prev_applied);
  x->snapshot = lp_profile_snapshot(own, x->other, prev_applied);
  x->new_entry = lp_order_entry_compose(new_rec ? new_rec : rec, &e,
                                        ev->event_id, x->snapshot);
  free(rec);
  free(new_rec);
  return 1;
}

/* Phase 2: the reads' replies; apply every event in order (chaining a
 * member's events), hand each before-state to the caller and send the
 * compare-and-sets in chunks meanwhile. 0 on a transient failure. */
static int recv_reads_apply(struct lp_profile_store *s, struct batch *b,
                            char *errstr, size_t errstr_size) {
  struct lp_store_op *ops = b->ops;
  struct work *w = b->w;
  size_t *idx = b->idx, n = b->todo;
  const struct lp_store_callbacks *cb = b->cb;
  int ok = 1;
  for (size_t k = 0; k < n; k++) {
    struct work *x = &w[idx[k]];
    struct lp_store_op *op = &ops[idx[k]];
    redisReply *r = NULL;
    if (!get_reply(s, &r, errstr, errstr_size)) {
      ok = 0;
      if (!s->ctx)
        return 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
      snprintf(op->error, sizeof(op->error), "redis: %s", r->str);
      op->failed = 1;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
      snprintf(op->error, sizeof(op->error), "redis: unexpected MGET reply");
      op->failed = 1;
    } else {
      char **slots[4] = {&x->gate, &x->own, &x->other, &x->third};
      for (size_t i = 0; i < 4; i++) {
        free(*slots[i]);
        *slots[i] = reply_str(r->element[i]);
      }
      x->gate_size = x->gate ? r->element[0]->len : 0;
      if (!op->order && x->gate)
        x->memo = lp_xstrndup(x->gate, x->gate_size);
    }
    if (r)
      freeReplyObject(r);
  }
  if (!ok)
    return 0;
  /* Apply in order, chaining members with several events in the batch:
   * prev_of[i] is the previous op (index into ops) of the same member. */
  struct chain_map *map = &s->map;
  chain_map_reset(map, n);
  size_t *prev_of = b->prev_of;
  size_t queued = 0; /* groups in the pipeline, not yet sent */
  lp_buf_reset(&s->group_keys);
  lp_buf_reset(&s->group_args);
  s->group_n = 0;
  for (size_t k = 0; k < n; k++) {
    struct work *x = &w[idx[k]];
    struct lp_store_op *op = &ops[idx[k]];
    prev_of[k] = SIZE_MAX;
    if (op->failed)
      continue;
    if (x->memo) { /* applied before: its before-state is final */
      known(op, idx[k], x, x->memo, strlen(x->memo), cb);
      continue;
    }
    size_t slot = chain_slot(map, x->part_key);
    size_t before = map->keys[slot] ? map->vals[slot] : SIZE_MAX;
    const struct work *prev = before != SIZE_MAX ? &w[idx[before]] : NULL;
    const char *own = prev ? prev->new_own : (x->own ? x->own : "");
    if (op->order) {
      if (!order_step(s, b, k, before, own)) {
        if (!op->failed) /* applied before: its before-state is final */
          known(op, idx[k], x, x->memo, strlen(x->memo), cb);
        continue;
      }
    } else if (op->customer) {
      lp_profile_apply_customer(own, op->customer, &x->new_own);
      x->snapshot = lp_profile_snapshot(x->other, own, 0);
    } else {
      activity_step(s, x, op->activity, own);
    }
    prev_of[k] = before;
    map->keys[slot] = x->part_key;
    map->vals[slot] = k;
    x->cas_sent = 1;
    if (append_cas(s, x, op_kind(op), own) &&
        ++queued * (size_t)s->cas_batch >= CAS_CHUNK) {
      resp_flush(s);
      queued = 0;
    }
    /* Speculative until Redis confirms; see lp_store_known_fn. */
    known(op, idx[k], x, x->snapshot, strlen(x->snapshot), cb);
  }
  close_group(s);
  resp_flush(s);
  b->phase = B_CAS_SENT;
  return 1;
}

/* Phase 3: the compare-and-set results; lost races are flagged in
 * w[].conflict. 0 on a transient failure. */
static int recv_cas(struct lp_profile_store *s, struct batch *b, char *errstr,
                    size_t errstr_size) {
  struct lp_store_op *ops = b->ops;
  struct work *w = b->w;
  size_t *idx = b->idx, n = b->todo;
  const struct lp_store_callbacks *cb = b->cb;
  int ok = 1;
  /* Round 2: compare-and-set results, one reply per group of cas_batch
   * events (the groups were cut in the same order). */
  redisReply *r = NULL;
  size_t in_group = 0;
  for (size_t k = 0; k < n; k++) {
    struct work *x = &w[idx[k]];
    struct lp_store_op *op = &ops[idx[k]];
    if (!x->cas_sent)
      continue;
    if (in_group == 0) {
      if (r)
        freeReplyObject(r);
      r = NULL;
      if (!get_reply(s, &r, errstr, errstr_size)) {
        ok = 0;
        if (!s->ctx)
          return 0;
      }
    }
    size_t i = in_group;
    in_group = in_group + 1 == (size_t)s->cas_batch ? 0 : in_group + 1;
    if (!r)
      continue; /* transient: the whole attempt is retried */
    const redisReply *e =
        r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
    if (e && e->type == REDIS_REPLY_INTEGER && e->integer == 0) {
      /* written: the speculative before-state stands */
    } else if (e && e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
               e->element[0]->type == REDIS_REPLY_INTEGER &&
               e->element[0]->integer == 1 &&
               e->element[1]->type == REDIS_REPLY_STRING) {
      /* a racing instance applied it first: its memo is the truth */
      known(op, idx[k], x, e->element[1]->str, e->element[1]->len, cb);
    } else if (e && e->type == REDIS_REPLY_INTEGER && e->integer == 2) {
      x->conflict = 1;
    } else {
      op->failed = 1;
      snprintf(op->error, sizeof(op->error), "redis: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
  }
  if (r)
    freeReplyObject(r);
  b->phase = B_IDLE;
  return ok;
}

/* Sleeps for the backoff of attempt n (50 ms doubling to 2 s), serving the
 * caller's wait function meanwhile. */
static void backoff(int n, const struct lp_store_callbacks *cb) {
  int64_t ms = 50LL << (n < 6 ? n : 6);
  if (ms > 2000)
    ms = 2000;
  int64_t until = lp_mono_us() + ms * 1000;
  do {
    if (cb && cb->wait)
      cb->wait(cb->opaque);
    else {
      struct timespec ts = {0, 10 * 1000000};
      nanosleep(&ts, NULL);
    }
  } while (lp_mono_us() < until);
}

/* Forgets a batch's results so far and lists all its unfinished ops
 * again, to be retried from fresh reads. */
static void batch_reset(struct lp_profile_store *s, struct batch *b) {
  for (size_t k = 0; k < b->todo; k++) {
    struct lp_store_op *op = &b->ops[b->idx[k]];
    lp_profile_clear(&op->before);
    free(op->before_activity);
    op->before_activity = NULL;
    op->failed = 0;
    op->error[0] = '\0';
    work_clear(&b->w[b->idx[k]]);
    work_init(s, op, &b->w[b->idx[k]]);
  }
  b->phase = B_IDLE;
}

/* Before b sends anything new, the other batch's reads still on the wire
 * are read and dropped (they would arrive first); it re-reads later. */
static void drain_other(struct lp_profile_store *s, struct batch *b) {
  for (int i = 0; i < LP_STORE_SLOTS; i++) {
    struct batch *o = &s->batches[i];
    if (o == b || !o->active || o->phase == B_IDLE)
      continue;
    LP_ASSERT(o->phase == B_READS_SENT); /* older batches finish first */
    for (size_t k = 0; s->ctx && o->generation == s->generation && k < o->todo;
         k++) {
      redisReply *r = NULL;
      if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || !r)
        disconnect(s);
      if (r)
        freeReplyObject(r);
    }
    batch_reset(s, o);
  }
}

/* A transient failure of b: log (at most every 5 s), count, back off.
 * Returns -1 when the caller's stop flag is set. */
static int batch_transient(struct lp_profile_store *s, struct batch *b,
                           volatile sig_atomic_t *stop, const char *err) {
  drain_other(s, b);
  batch_reset(s, b);
  s->healthy = 0;
  lp_metrics_add(LP_M_REDIS_ERRORS, 1);
  int64_t now = lp_mono_us();
  if (b->failures == 0 || now - s->last_outage_log_us > 5000000) {
    LP_WARN("redis unavailable, retrying the batch",
            "\"error\":%s,\"attempt\":%d,\"batch\":%zu", lp_log_str(err),
            b->failures + 1, b->todo);
    s->last_outage_log_us = now;
  }
  if (stop && *stop)
    return -1;
  backoff(b->failures++, b->cb);
  return stop && *stop ? -1 : 0;
}

static struct batch *slot_batch(struct lp_profile_store *s, int slot) {
  LP_ASSERT(slot >= 0 && slot < LP_STORE_SLOTS);
  return &s->batches[slot];
}

void lp_profile_store_start(struct lp_profile_store *s, int slot,
                            struct lp_store_op *ops, size_t n,
                            const struct lp_store_callbacks *cb) {
  struct batch *b = slot_batch(s, slot);
  LP_ASSERT(!b->active);
  if (n > b->cap) {
    b->cap = n;
    b->w = lp_xrealloc(b->w, n * sizeof(*b->w));
    b->idx = lp_xrealloc(b->idx, n * sizeof(*b->idx));
    b->prev_of = lp_xrealloc(b->prev_of, n * sizeof(*b->prev_of));
  }
  b->ops = ops;
  b->n = b->todo = n;
  b->cb = cb;
  b->phase = B_IDLE;
  b->failures = 0;
  b->active = 1;
  for (size_t i = 0; i < n; i++) {
    work_init(s, &ops[i], &b->w[i]);
    b->idx[i] = i;
  }
  /* Reads go out now only if nothing is waiting for its reads: Redis
   * answers in order, so these may queue behind the other batch's
   * compare-and-sets but never ahead of replies it still expects. */
  for (int i = 0; i < LP_STORE_SLOTS; i++)
    if (&s->batches[i] != b && s->batches[i].active &&
        s->batches[i].phase == B_READS_SENT)
      return;
  char err[512];
  if (n > 0)
    (void)send_reads(s, b, err, sizeof(err)); /* else: retried later */
}

int lp_profile_store_advance(struct lp_profile_store *s, int slot,
                             volatile sig_atomic_t *stop) {
  struct batch *b = slot_batch(s, slot);
  LP_ASSERT(b->active);
  char err[512];
  while (b->todo > 0 && b->phase != B_CAS_SENT) {
    err[0] = '\0';
    if (b->phase == B_READS_SENT && b->generation != s->generation)
      batch_reset(s, b); /* the connection it went out on is gone */
    int ok = b->phase == B_IDLE ? send_reads(s, b, err, sizeof(err))
                                : recv_reads_apply(s, b, err, sizeof(err));
    if (!ok && batch_transient(s, b, stop, err[0] ? err : "redis error"))
      return -1;
  }
  return 0;
}

int lp_profile_store_finish(struct lp_profile_store *s, int slot,
                            volatile sig_atomic_t *stop) {
  struct batch *b = slot_batch(s, slot);
  LP_ASSERT(b->active);
  char err[512];
  int rc = 0;
  while (b->todo > 0) {
    if (lp_profile_store_advance(s, slot, stop) != 0) {
      rc = -1;
      break;
    }
    if (b->todo == 0)
      break;
    err[0] = '\0';
    if (b->generation != s->generation || !recv_cas(s, b, err, sizeof(err))) {
      if (batch_transient(s, b, stop, err[0] ? err : "connection lost")) {
        rc = -1;
        break;
      }
      continue;
    }
    s->healthy = 1;
    b->failures = 0;
    /* Re-run only the ops that lost a race, from fresh reads. */
    size_t again = 0;
    for (size_t k = 0; k < b->todo; k++) {
      struct work *x = &b->w[b->idx[k]];
      if (x->conflict) {
        work_clear(x);
        work_init(s, &b->ops[b->idx[k]], x);
        b->idx[again++] = b->idx[k];
      }
    }
    if (again > 0)
      drain_other(s, b);
    b->todo = again;
  }
  for (size_t i = 0; i < b->n; i++)
    work_clear(&b->w[i]);
  b->active = 0;
  b->phase = B_IDLE;
  return rc;
}

int lp_profile_store_apply(struct lp_profile_store *s, struct lp_store_op *ops,
                           size_t n, volatile sig_atomic_t *stop,
                           const struct lp_store_callbacks *cb) {
  if (n == 0)
    return 0;
  lp_profile_store_start(s, 0, ops, n, cb);
  return lp_profile_store_finish(s, 0, stop);
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
