/*
 * stream_timers.c — member timers inside a stream processor (see
 * stream_timers.h for the rules of watermark, planning and firing).
 */
#include "stream_timers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis.h>

#include "log.h"
#include "metrics.h"
#include "profile_apply.h"
#include "timer_plan.h"

#define CLAIM_BATCH 1000
/* Fired timers not yet acknowledged in Redis, at most: claiming stops
 * there until acks catch up, so a claim is acked well within its lease. */
#define FIRED_IN_FLIGHT_MAX 4000
#define PENDING_SAMPLE_MS 5000
#define NONE_DUE INT64_MAX
#define MAX_PARTITIONS 65536

struct part {
  int assigned;
  int loaded;       /* mark and next due read from Redis */
  int64_t wm;       /* watermark over the records observed */
  int64_t wm_done;  /* watermark over the records written (applied) */
  int64_t wm_next;  /* wm_done once the plans being written are */
  int64_t mark;     /* fired mark */
  int mark_dirty;   /* mark advanced since it was stored: persist it */
  int mark_sending; /* mark_sent is in the write in flight */
  int64_t mark_sent;
  int64_t wm_saved;   /* wm_done as last stored, for a takeover */
  int64_t wm_at_load; /* the stored watermark when assigned: records up to
                         it may have been seen by the previous owner */
  int64_t next_due;   /* lower bound of the earliest pending due */
  int64_t last_record_wall_ms;
  int64_t next_claim_ms; /* claims of due timers wait for this (wall) */
  int64_t next_sweep_ms; /* next claim even with nothing due: takes back
                            claims whose lease ran out (their owner died) */
};

struct lp_stream_timers {
  struct lp_stream_timers_config conf;
  char *host, *ns, *prefix;
  char owner[LP_TIMERS_OWNER_MAX];
  struct lp_timers *timers;
  redisContext *rc;
  struct part *parts;
  size_t n_parts;
  size_t cursor;              /* round-robin start of the next claim */
  struct lp_st_fired *done;   /* finished, their acks not yet sent */
  struct lp_st_fired *acking; /* finished, acked by the write in flight */
  struct lp_buf pbuf;         /* payload text, reused */
  size_t queued_schedules, queued_cancels; /* of the pending write */
  /* The write of the last batch's plans (apply_send), until collected. */
  int pend, pend_sent;
  struct pend_op {
    int partition;
    struct lp_st_op op; /* strings in pend_arena */
  } * pops;
  size_t n_pops, cap_pops;
  struct lp_arena pend_arena;
  uint64_t seq, confirmed;
  size_t in_flight; /* handed out by claim, not yet acked */
  int force;        /* claims ignore fire_interval_ms (at shutdown) */
  int64_t next_pending_sample_ms;
};

static int64_t wall_ms(void) {
  return lp_now_ms();
}

/* ---- Redis (marks and profile reads) ------------------------------------ */

static void rc_drop(struct lp_stream_timers *st) {
  if (st->rc)
    redisFree(st->rc);
  st->rc = NULL;
}

static int rc_ensure(struct lp_stream_timers *st, char *err, size_t n) {
  if (st->rc)
    return 0;
  int ms = st->conf.timeout_ms > 0 ? st->conf.timeout_ms : 2000;
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  st->rc = redisConnectWithTimeout(st->host, st->conf.redis_port, tv);
  if (!st->rc || st->rc->err) {
    lp_err(err, n, "timers: redis %s:%d: %s", st->host, st->conf.redis_port,
           st->rc ? st->rc->errstr : "out of memory");
    rc_drop(st);
    return -1;
  }
  redisSetTimeout(st->rc, tv);
  return 0;
}

static char *mark_key(const struct lp_stream_timers *st, int p) {
  return lp_xasprintf("%s:tm:%d:mark", st->prefix, p);
}

static char *wm_key(const struct lp_stream_timers *st, int p) {
  return lp_xasprintf("%s:tm:%d:wm", st->prefix, p);
}

/* Queues, into the timers' pipeline, raising every advanced stored mark
 * (never lowering it: a late writer that lost the partition cannot take
 * it back). 0 or -1. */
static int queue_marks(struct lp_stream_timers *st, char *err, size_t n) {
  static const char script[] =
      "local c = tonumber(redis.call('GET', KEYS[1]) or '-9007199254740992') "
      "if tonumber(ARGV[1]) > c then redis.call('SET', KEYS[1], ARGV[1]) end "
      "return 1";
  for (size_t p = 0; p < st->n_parts; p++) {
    struct part *pt = &st->parts[p];
    if (!pt->assigned || !pt->mark_dirty)
      continue;
    char *key = mark_key(st, (int)p), val[32];
    snprintf(val, sizeof(val), "%" PRId64, pt->mark);
    pt->mark_sent = pt->mark;
    pt->mark_sending = 1;
    const char *argv[] = {"EVAL", script, "1", key, val};
    const size_t lens[] = {4, sizeof(script) - 1, 1, strlen(key), strlen(val)};
    int rc = lp_timers_command(st->timers, 5, argv, lens, err, n);
    free(key);
    if (rc != 0)
      return -1;
  }
  return 0;
}

/* The marks queue_marks sent are stored (one advanced since stays
 * dirty). */
static void marks_stored(struct lp_stream_timers *st) {
  for (size_t p = 0; p < st->n_parts; p++) {
    struct part *pt = &st->parts[p];
    if (pt->mark_sending && pt->mark == pt->mark_sent)
      pt->mark_dirty = 0;
    pt->mark_sending = 0;
  }
}

static struct part *part_of(struct lp_stream_timers *st, int p) {
  if (p < 0 || p >= MAX_PARTITIONS)
    return NULL;
  if ((size_t)p >= st->n_parts) {
    size_t n = (size_t)p + 1;
    st->parts = lp_xrealloc(st->parts, n * sizeof(*st->parts));
    memset(st->parts + st->n_parts, 0, (n - st->n_parts) * sizeof(*st->parts));
    st->n_parts = n;
  }
  return &st->parts[p];
}

/* Reads the partition's mark and next due; 0 or -1. */
static int part_load(struct lp_stream_timers *st, int p, char *err, size_t n) {
  struct part *pt = part_of(st, p);
  if (pt->loaded)
    return 0;
  if (lp_stream_timers_collect(st, err, n) != 0 || rc_ensure(st, err, n) != 0)
    return -1;
  char *key = mark_key(st, p), *wkey = wm_key(st, p);
  redisReply *r = redisCommand(st->rc, "MGET %s %s", key, wkey);
  free(key);
  free(wkey);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
    lp_err(err, n, "timers: read mark: %s",
           r && r->type == REDIS_REPLY_ERROR ? r->str : "connection lost");
    if (!r)
      rc_drop(st);
    if (r)
      freeReplyObject(r);
    return -1;
  }
  int64_t mark = INT64_MIN, saved = INT64_MIN;
  if (r->element[0]->type == REDIS_REPLY_STRING)
    mark = strtoll(r->element[0]->str, NULL, 10);
  if (r->element[1]->type == REDIS_REPLY_STRING)
    saved = strtoll(r->element[1]->str, NULL, 10);
  freeReplyObject(r);
  int64_t due = 0;
  int rc = lp_timers_next_due(st->timers, p, &due, err, n);
  if (rc < 0)
    return -1;
  /* Records are judged from the mark (a redelivered record sees no
   * watermark its first processing did not); firing goes on from the
   * watermark the previous owner had written, whose timer writes are in
   * Redis already. */
  pt->mark = mark;
  if (pt->wm < mark)
    pt->wm = mark;
  if (pt->wm_done < mark)
    pt->wm_done = mark;
  if (pt->wm_done < saved)
    pt->wm_done = saved;
  pt->wm_saved = saved;
  pt->wm_at_load = saved;
  pt->next_due = rc == 1 ? NONE_DUE : due;
  pt->loaded = 1;
  return 0;
}

/* ---- life cycle ---------------------------------------------------------- */

struct lp_stream_timers *
lp_stream_timers_new(const struct lp_stream_timers_config *conf, char *errstr,
                     size_t errstr_size) {
  if (!conf->ns || !*conf->ns || !conf->stream || !*conf->stream) {
    lp_err(errstr, errstr_size, "timers: namespace and stream are required");
    return NULL;
  }
  struct lp_stream_timers *st = lp_xcalloc(1, sizeof(*st));
  lp_buf_init(&st->pbuf);
  lp_arena_init(&st->pend_arena);
  st->conf = *conf;
  st->host = lp_xstrdup(conf->redis_host);
  st->conf.redis_host = st->host;
  st->ns = lp_xstrdup(conf->ns);
  st->prefix = lp_xasprintf("%s:%s", conf->ns, conf->stream);
  st->conf.ns = NULL;
  st->conf.stream = NULL;
  char host[64] = "";
  gethostname(host, sizeof(host) - 1);
  snprintf(st->owner, sizeof(st->owner), "%s:%d:%08x", host, (int)getpid(),
           (unsigned)(lp_mono_us() & 0xffffffffu));
  struct lp_timers_config tc = {st->host, conf->redis_port, st->prefix,
                                conf->timeout_ms};
  st->timers = lp_timers_new(&tc, errstr, errstr_size);
  if (!st->timers) {
    lp_stream_timers_destroy(&st);
    return NULL;
  }
  return st;
}

void lp_stream_timers_fired_free(struct lp_st_fired *f) {
  if (!f)
    return;
  free(f->timer.id);
  free(f->timer.payload);
  free(f->shop);
  free(f->customer_id);
  free(f->rule_id);
  free(f->trigger_id);
  lp_profile_clear(&f->profile);
  lp_activity_view_clear(&f->activity);
  free(f->parts);
  free(f->activity_text);
  free(f);
}

static void fired_list_free(struct lp_st_fired *f) {
  while (f) {
    struct lp_st_fired *next = f->next;
    lp_stream_timers_fired_free(f);
    f = next;
  }
}

void lp_stream_timers_destroy(struct lp_stream_timers **stp) {
  struct lp_stream_timers *st = *stp;
  if (!st)
    return;
  fired_list_free(st->done);
  fired_list_free(st->acking);
  lp_timers_destroy(&st->timers);
  rc_drop(st);
  lp_buf_free(&st->pbuf);
  lp_arena_free(&st->pend_arena);
  free(st->pops);
  free(st->parts);
  free(st->host);
  free(st->ns);
  free(st->prefix);
  free(st);
  *stp = NULL;
}

void lp_stream_timers_assign(struct lp_stream_timers *st, int partition) {
  struct part *pt = part_of(st, partition);
  if (!pt)
    return;
  memset(pt, 0, sizeof(*pt));
  pt->assigned = 1;
  pt->wm = pt->wm_done = pt->mark = INT64_MIN;
  pt->next_due = NONE_DUE;
  pt->last_record_wall_ms = wall_ms();
  char err[256];
  if (part_load(st, partition, err, sizeof(err)) != 0)
    LP_WARN("timers: partition state not read yet; retried before firing",
            "\"partition\":%d,\"error\":%s", partition, lp_log_str(err));
}

void lp_stream_timers_revoke(struct lp_stream_timers *st, int partition) {
  struct part *pt = part_of(st, partition);
  if (pt)
    memset(pt, 0, sizeof(*pt));
}

int64_t lp_stream_timers_observe(struct lp_stream_timers *st, int partition,
                                 int64_t event_ms) {
  struct part *pt = part_of(st, partition);
  if (!pt)
    return INT64_MIN;
  if (!pt->assigned) { /* a record before its assignment was seen */
    lp_stream_timers_assign(st, partition);
    pt = part_of(st, partition);
  }
  if (!pt->loaded) {
    char err[256];
    (void)part_load(st, partition, err, sizeof(err));
  }
  int64_t before = pt->wm;
  int64_t now = wall_ms();
  int64_t cand = event_ms - st->conf.lateness_ms;
  /* Bounded skew: the watermark never runs ahead of the wall clock, so an
   * event from the future (within event.max.future.ms; beyond it the
   * record is dead-lettered) cannot fire timers before their time. */
  if (cand > now)
    cand = now;
  if (cand > pt->wm)
    pt->wm = cand;
  pt->last_record_wall_ms = now;
  return before;
}

/* ---- planning ------------------------------------------------------------ */

static char *payload_of(struct lp_stream_timers *st, struct lp_arena *a,
                        const char *shop, const char *customer,
                        const char *rule, int arg) {
  struct lp_buf *b = &st->pbuf; /* kept: no malloc per record */
  lp_buf_reset(b);
  lp_buf_append_str(b, "1\t");
  lp_state_escape_into(b, shop);
  lp_buf_append_byte(b, '\t');
  lp_state_escape_into(b, customer);
  lp_buf_append_byte(b, '\t');
  lp_state_escape_into(b, rule);
  lp_buf_appendf(b, "\t%d", arg);
  return lp_dup_in(a, lp_buf_cstr(b));
}

static void plan_init(struct lp_st_plan *out, int partition,
                      const struct lp_stream_timers *st) {
  memset(out, 0, sizeof(*out));
  out->partition = partition;
  out->valid = 1;
  const struct part *pt =
      (size_t)partition < st->n_parts ? &st->parts[partition] : NULL;
  out->wm_after = pt ? pt->wm : INT64_MIN;
}

static void add_op(struct lp_arena *a, struct lp_st_plan *out, const char *id,
                   int64_t due, const char *payload, int cancel,
                   enum lp_timer_kind kind) {
  struct lp_st_op *grown =
      lp_arena_alloc(a, (out->n_ops + 1) * sizeof(*out->ops));
  if (out->n_ops)
    memcpy(grown, out->ops, out->n_ops * sizeof(*out->ops));
  out->ops = grown;
  out->ops[out->n_ops++] =
      (struct lp_st_op){lp_dup_in(a, id), due, payload, cancel, kind};
}

static void add_inline(struct lp_arena *a, struct lp_st_plan *out,
                       enum lp_timer_kind kind, const char *rule,
                       const char *shop, const char *customer, const char *id,
                       int64_t due) {
  struct lp_timer_trigger *grown =
      lp_arena_alloc(a, (out->n_inline + 1) * sizeof(*out->inline_fires));
  if (out->n_inline)
    memcpy(grown, out->inline_fires, out->n_inline * sizeof(*grown));
  out->inline_fires = grown;
  struct lp_timer t = {(char *)id, NULL, 0, due, 0};
  char tid[LP_TIMERS_ID_MAX + 32];
  lp_timer_output_id(&t, tid, sizeof(tid));
  out->inline_fires[out->n_inline++] = (struct lp_timer_trigger){
      kind, rule, shop, customer, lp_dup_in(a, tid), due};
}

/* When rule r's timer is due for profile p whose last order is at last_ms
 * (0: no timer). */
static int64_t order_timer_due(const struct lp_timer_rule *r,
                               const struct lp_model *m,
                               const struct lp_profile *p, int64_t last_ms) {
  int64_t due = 0;
  if (last_ms <= 0)
    return 0;
  if (r->kind == LP_TIMER_WINBACK) {
    if (r->after_days > 0)
      return lp_plan_winback_fixed(last_ms, r->after_days);
    if (!m)
      return 0;
    if (lp_plan_winback_p_alive(m, p, (double)r->p_alive_below / 1e6, last_ms,
                                (int64_t)r->horizon_days * LP_PLAN_DAY_MS,
                                &due) != 0)
      return 0;
    return due;
  }
  if (r->kind == LP_TIMER_REPLENISHMENT) {
    if (lp_plan_replenishment(m, p, last_ms, r->lead_days, &due) != 0)
      return 0;
    return due;
  }
  return 0;
}

void lp_stream_timers_plan_order(
    struct lp_stream_timers *st, int partition, int64_t wm_before,
    const struct lp_ruleset *rules, const struct lp_model *model,
    const struct lp_order_event *ev, const struct lp_profile *before,
    struct lp_arena *arena, struct lp_st_plan *out) {
  plan_init(out, partition, st);
  const struct lp_timer_rule *tr;
  size_t n = lp_ruleset_timer_rules(rules, &tr);
  if (n == 0)
    return;
  int counts =
      (ev->status == LP_ORDER_CREATED || ev->status == LP_ORDER_PAID) &&
      !before->order_previously_applied;
  int64_t t = ev->event_time_ms, last = before->last_order_ms;
  if (!counts && last <= 0)
    return; /* no order yet: no timer either */
  struct lp_profile after;
  lp_profile_after_order(before, ev, &after);
  const struct part *pt =
      (size_t)partition < st->n_parts ? &st->parts[partition] : NULL;
  int64_t mark = pt ? pt->mark : INT64_MIN;
  char mk[LP_TIMERS_ID_MAX + 1];
  int mk_len = snprintf(mk, sizeof(mk), "%s:%s", ev->shop, ev->customer_id);
  if (mk_len < 0 || (size_t)mk_len >= sizeof(mk))
    return; /* a member key too long for any timer id */
  for (size_t i = 0; i < n; i++) {
    const struct lp_timer_rule *r = &tr[i];
    if (r->kind != LP_TIMER_WINBACK && r->kind != LP_TIMER_REPLENISHMENT)
      continue;
    char id[LP_TIMERS_ID_MAX + 1];
    if (lp_plan_timer_id(r->kind, mk, r->rule_id, id, sizeof(id)) < 0)
      continue; /* an id too long for the store: no timer for this member */
    /* The member's due just before this record. Whatever the record is,
     * a due the watermark had passed fires with it, on the before-state
     * (unless a claim took it): the state a claim between the two would
     * have seen, so a claim that comes later decides the same. An order
     * newer than that due fires it too (the member did not order in
     * time). */
    int64_t prev = last > 0 ? lp_stream_timers_order_due(r, model, before) : 0;
    int fired =
        prev > 0 && (prev <= wm_before || (counts && t > last && prev < t));
    if (fired && prev > mark)
      add_inline(arena, out, r->kind, r->rule_id, ev->shop, ev->customer_id, id,
                 prev);
    if (!counts) {
      /* A cancellation or refund only takes back: the fixed win-back's due
       * stays, the rhythm's moves later or ends (fewer orders), so the
       * stored due stays at or before the member's and its claim finds
       * the rest (lazy). A fired timer is over until the next order. */
      if (fired)
        add_op(arena, out, id, 0, NULL, 1, r->kind);
      continue;
    }
    int64_t due = lp_stream_timers_order_due(r, model, &after);
    /* A due that only moves later is not written (lazy): the stored one,
     * no later than the member's due, is found early by its claim, which
     * schedules it again at the due the profile then gives. Only for the
     * dues that depend on the profile alone (a fixed win-back, the
     * replenishment rhythm), so the stored one cannot be later. */
    int lazy_kind = (r->kind == LP_TIMER_WINBACK && r->after_days > 0) ||
                    r->kind == LP_TIMER_REPLENISHMENT;
    if (lazy_kind && prev > 0 && !fired && due >= prev)
      continue;
    if (due > 0 && due > wm_before)
      add_op(arena, out, id, due,
             payload_of(st, arena, ev->shop, ev->customer_id, r->rule_id, 0), 0,
             r->kind);
    else if (last > 0)
      add_op(arena, out, id, 0, NULL, 1, r->kind);
  }
}

void lp_stream_timers_plan_customer(struct lp_stream_timers *st, int partition,
                                    int64_t wm_before,
                                    const struct lp_ruleset *rules,
                                    const struct lp_customer_event *ev,
                                    const struct lp_profile *before,
                                    struct lp_arena *arena,
                                    struct lp_st_plan *out) {
  (void)before;
  plan_init(out, partition, st);
  const struct lp_timer_rule *tr;
  size_t n = lp_ruleset_timer_rules(rules, &tr);
  if (n == 0 || !ev->birthday)
    return; /* the event says nothing about the birthday */
  char *mk = lp_member_key(ev->shop, ev->customer_id);
  for (size_t i = 0; i < n; i++) {
    const struct lp_timer_rule *r = &tr[i];
    if (r->kind != LP_TIMER_BIRTHDAY)
      continue;
    char id[LP_TIMERS_ID_MAX + 1];
    if (lp_plan_timer_id(r->kind, mk, r->rule_id, id, sizeof(id)) < 0)
      continue;
    int64_t lead = (int64_t)r->days_before * LP_PLAN_DAY_MS, due = 0;
    /* As for orders, a due the watermark had passed before this record is
     * not planned (a late event cannot bring back a birthday that fired):
     * the next year's is. */
    int ok =
        ev->birthday[0] &&
        lp_plan_birthday(ev->birthday, ev->event_time_ms + lead, &due) == 0;
    for (int k = 0; ok && k < 200 && due - lead <= wm_before; k++)
      ok = lp_plan_birthday(ev->birthday, due + 1, &due) == 0;
    if (ok && due - lead > wm_before)
      add_op(arena, out, id, due - lead,
             payload_of(st, arena, ev->shop, ev->customer_id, r->rule_id,
                        r->days_before),
             0, r->kind);
    else if (!ev->birthday[0])
      add_op(arena, out, id, 0, NULL, 1, r->kind);
  }
  free(mk);
}

void lp_stream_timers_plan_activity(
    struct lp_stream_timers *st, int partition, int64_t wm_before,
    const struct lp_ruleset *rules, const struct lp_activity_event *ev,
    const char *before_activity, int64_t last_order_ms, struct lp_arena *arena,
    struct lp_st_plan *out) {
  (void)wm_before;
  plan_init(out, partition, st);
  const struct lp_timer_rule *tr;
  size_t n = lp_ruleset_timer_rules(rules, &tr);
  if (n == 0 || (ev->kind != LP_ACTIVITY_CART_UPDATED &&
                 ev->kind != LP_ACTIVITY_CHECKOUT_STARTED &&
                 ev->kind != LP_ACTIVITY_CART_ABANDONED))
    return; /* only cart changes move the cart timer */
  size_t k = 0;
  while (k < n && tr[k].kind != LP_TIMER_CART)
    k++;
  if (k == n)
    return;
  /* The cart as this event leaves it (as the store folds it: an order
   * newer than the cart consumed it). */
  struct lp_activity_view v;
  lp_activity_part_parse(before_activity, &v);
  char *own = NULL, *next = NULL;
  if (last_order_ms > 0 && v.cart_state != LP_CART_NONE &&
      v.cart_at <= last_order_ms)
    lp_activity_clear_cart(before_activity, last_order_ms, &own);
  lp_activity_view_clear(&v);
  lp_activity_apply(own ? own : before_activity, ev, &st->conf.activity, &next);
  lp_activity_part_parse(next, &v);
  free(own);
  free(next);
  int wanted = lp_plan_cart_timer_wanted(&v);
  char *mk = lp_member_key(ev->shop, ev->customer_id);
  for (; k < n; k++) {
    const struct lp_timer_rule *r = &tr[k];
    if (r->kind != LP_TIMER_CART)
      continue;
    char id[LP_TIMERS_ID_MAX + 1];
    if (lp_plan_timer_id(r->kind, mk, r->rule_id, id, sizeof(id)) < 0)
      continue;
    int64_t due =
        wanted ? lp_plan_cart_abandon(v.cart_at, r->after_minutes) : 0;
    if (due > 0 && due > wm_before)
      add_op(arena, out, id, due,
             payload_of(st, arena, ev->shop, ev->customer_id, r->rule_id, 0), 0,
             r->kind);
    else
      add_op(arena, out, id, 0, NULL, 1, r->kind);
  }
  lp_activity_view_clear(&v);
  free(mk);
}

/* ---- writing plans ------------------------------------------------------- */

/* Queues the SET of every watermark the batch advances into the timers'
 * pipeline: a new owner of the partition fires from there even when no
 * record is left to consume. 0 or -1. */
static int queue_watermarks(struct lp_stream_timers *st, char *err, size_t n) {
  for (size_t p = 0; p < st->n_parts; p++) {
    struct part *pt = &st->parts[p];
    if (!pt->assigned || pt->wm_next <= pt->wm_saved)
      continue;
    char *key = wm_key(st, (int)p), val[32];
    snprintf(val, sizeof(val), "%" PRId64, pt->wm_next);
    const char *argv[] = {"SET", key, val};
    const size_t lens[] = {3, strlen(key), strlen(val)};
    int rc = lp_timers_command(st->timers, 3, argv, lens, err, n);
    free(key);
    if (rc != 0)
      return -1;
  }
  return 0;
}

struct run {
  const char **ids;
  int64_t *dues;
  const char **payloads;
  size_t n, cap;
};

static void run_push(struct run *r, const struct lp_st_op *op) {
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 64;
    r->ids = lp_xrealloc(r->ids, r->cap * sizeof(*r->ids));
    r->dues = lp_xrealloc(r->dues, r->cap * sizeof(*r->dues));
    r->payloads = lp_xrealloc(r->payloads, r->cap * sizeof(*r->payloads));
  }
  r->ids[r->n] = op->id;
  r->dues[r->n] = op->due_ms;
  r->payloads[r->n] = op->payload;
  r->n++;
}

/* Queues one run (pipelined; counted once the pipeline succeeded). */
static int run_flush(struct lp_stream_timers *st, int p, struct run *r,
                     int cancel, char *err, size_t n) {
  if (r->n == 0)
    return 0;
  int rc;
  if (cancel) {
    rc = lp_timers_cancel_batch(st->timers, p, r->n, r->ids, NULL, err, n);
    if (rc == 0)
      st->queued_cancels += r->n;
  } else {
    /* A redelivered record must not bring back a timer that fired; past
     * the previous owner's watermark no record is a redelivery. */
    struct part *pp = part_of(st, p);
    lp_timers_set_check_fired(st->timers, !pp || !pp->loaded ||
                                              pp->wm_done <= pp->wm_at_load);
    rc = lp_timers_schedule_batch(st->timers, p, r->n, r->ids, r->dues,
                                  r->payloads, err, n);
    lp_timers_set_check_fired(st->timers, 1);
    if (rc == 0) {
      st->queued_schedules += r->n;
      for (size_t i = 0; pp && i < r->n; i++)
        if (r->dues[i] < pp->next_due)
          pp->next_due = r->dues[i];
    }
  }
  if (rc == 0)
    r->n = 0;
  return rc;
}

static int queue_acks(struct lp_stream_timers *st, char *err, size_t n);
static void acks_stored(struct lp_stream_timers *st);

/* Sends the pending write (st->pops, grouped by partition in record
 * order: a run of schedules or of cancels goes out as one call, so an id
 * scheduled then cancelled, or the reverse, ends as its last op says) with
 * the watermarks it reaches, the marks that advanced and the acks of the
 * timers finished so far, as one pipeline; its replies are read by
 * lp_stream_timers_collect. 0 or -1 (nothing to read then). */
static int send_pending(struct lp_stream_timers *st, char *errstr,
                        size_t errstr_size) {
  struct run r = {0};
  int rc = 0, p = -1, cancel_run = 0;
  st->queued_schedules = st->queued_cancels = 0;
  lp_timers_pipeline_begin(st->timers);
  for (size_t i = 0; i < st->n_pops && rc == 0; i++) {
    const struct lp_st_op *op = &st->pops[i].op;
    if (r.n && (st->pops[i].partition != p || op->cancel != cancel_run))
      rc = run_flush(st, p, &r, cancel_run, errstr, errstr_size);
    p = st->pops[i].partition;
    cancel_run = op->cancel;
    run_push(&r, op);
  }
  if (rc == 0 && r.n)
    rc = run_flush(st, p, &r, cancel_run, errstr, errstr_size);
  free(r.ids);
  free(r.dues);
  free(r.payloads);
  if (rc == 0)
    rc = queue_watermarks(st, errstr, errstr_size);
  if (rc == 0)
    rc = queue_marks(st, errstr, errstr_size);
  if (rc == 0 && !st->acking) { /* a resend carries the same acks */
    st->acking = st->done;
    st->done = NULL;
  }
  if (rc == 0)
    rc = queue_acks(st, errstr, errstr_size);
  if (rc != 0) {
    (void)lp_timers_pipeline_end(st->timers, NULL, 0); /* drop what went */
    return -1;
  }
  if (lp_timers_pipeline_send(st->timers, errstr, errstr_size) != 0)
    return -1;
  st->pend_sent = 1;
  return 0;
}

int lp_stream_timers_collect(struct lp_stream_timers *st, char *errstr,
                             size_t errstr_size) {
  if (!st->pend)
    return 0;
  if (!st->pend_sent && send_pending(st, errstr, errstr_size) != 0)
    return -1;
  st->pend_sent = 0;
  if (lp_timers_pipeline_recv(st->timers, errstr, errstr_size) != 0)
    return -1; /* sent again by the next collect: writes are repeatable */
  lp_metrics_add(LP_M_TIMERS_SCHEDULED, (int64_t)st->queued_schedules);
  lp_metrics_add(LP_M_TIMERS_CANCELLED, (int64_t)st->queued_cancels);
  marks_stored(st);
  acks_stored(st);
  for (size_t p = 0; p < st->n_parts; p++) {
    struct part *pt = &st->parts[p];
    if (pt->wm_next > pt->wm_done)
      pt->wm_done = pt->wm_next;
    if (pt->assigned && pt->wm_done > pt->wm_saved)
      pt->wm_saved = pt->wm_done;
  }
  st->pend = 0;
  st->n_pops = 0;
  lp_arena_reset(&st->pend_arena);
  st->confirmed = st->seq;
  return 0;
}

uint64_t lp_stream_timers_confirmed(const struct lp_stream_timers *st) {
  return st->confirmed;
}

int lp_stream_timers_apply_send(struct lp_stream_timers *st,
                                const struct lp_st_plan *const plans[],
                                size_t n, uint64_t *seq, char *errstr,
                                size_t errstr_size) {
  if (lp_stream_timers_collect(st, errstr, errstr_size) != 0)
    return -1;
  /* Copied: the write outlives the batch (a failed one is sent again). */
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += plans[i]->n_ops;
  if (total > st->cap_pops) {
    st->cap_pops = total;
    st->pops = lp_xrealloc(st->pops, total * sizeof(*st->pops));
  }
  st->n_pops = 0;
  for (size_t p = 0; p < st->n_parts; p++)
    st->parts[p].wm_next = st->parts[p].wm_done;
  for (size_t i = 0; i < n; i++) {
    struct part *pt = part_of(st, plans[i]->partition);
    if (pt && plans[i]->wm_after > pt->wm_next)
      pt->wm_next = plans[i]->wm_after;
  }
  /* Partition by partition (in order of first appearance), each one's
   * ops in record order. */
  int max_p = 0;
  for (size_t i = 0; i < n; i++)
    if (plans[i]->partition > max_p)
      max_p = plans[i]->partition;
  unsigned char *seen = lp_xcalloc((size_t)max_p + 1, 1);
  for (size_t i = 0; i < n; i++) {
    int p = plans[i]->partition;
    if (p < 0 || seen[p] || !plans[i]->n_ops)
      continue;
    seen[p] = 1;
    for (size_t j = i; j < n; j++) {
      if (plans[j]->partition != p)
        continue;
      for (size_t k = 0; k < plans[j]->n_ops; k++) {
        const struct lp_st_op *op = &plans[j]->ops[k];
        struct pend_op *d = &st->pops[st->n_pops++];
        d->partition = p;
        d->op = *op;
        d->op.id = lp_arena_strdup(&st->pend_arena, op->id);
        d->op.payload =
            op->payload ? lp_arena_strdup(&st->pend_arena, op->payload) : NULL;
      }
    }
  }
  free(seen);
  st->pend = 1;
  *seq = ++st->seq;
  if (send_pending(st, errstr, errstr_size) != 0)
    st->pend_sent = 0; /* sent again by collect */
  return 0;
}

int64_t lp_stream_timers_order_due(const struct lp_timer_rule *r,
                                   const struct lp_model *m,
                                   const struct lp_profile *p) {
  return order_timer_due(r, m, p, p->last_order_ms);
}

void lp_stream_timers_reschedule(struct lp_stream_timers *st,
                                 struct lp_st_fired *f, int64_t due) {
  f->reschedule_due = due;
  lp_stream_timers_done(st, f);
}

/* ---- firing -------------------------------------------------------------- */

/* Splits a payload "1\t<shop>\t<customer>\t<rule>\t<arg>"; 0 or -1. */
static int payload_parse(const char *s, char **shop, char **customer,
                         char **rule, int *arg) {
  const char *f[5];
  size_t len[5];
  if (strncmp(s, "1\t", 2) != 0)
    return -1;
  const char *p = s + 2;
  for (int i = 0; i < 4; i++) {
    const char *tab = i < 3 ? strchr(p, '\t') : p + strlen(p);
    if (!tab)
      return -1;
    f[i] = p;
    len[i] = (size_t)(tab - p);
    p = *tab ? tab + 1 : tab;
  }
  (void)f[4];
  (void)len[4];
  *shop = lp_state_unescape(f[0], len[0]);
  *customer = lp_state_unescape(f[1], len[1]);
  *rule = lp_state_unescape(f[2], len[2]);
  *arg = atoi(f[3]);
  if (!**shop || !**customer || !**rule) {
    free(*shop);
    free(*customer);
    free(*rule);
    return -1;
  }
  return 0;
}

static int kind_of_id(const char *id, enum lp_timer_kind *out) {
  for (int k = 0; k < LP_TIMER_KIND_COUNT; k++) {
    const char *name = lp_timer_kind_name((enum lp_timer_kind)k);
    size_t n = strlen(name);
    if (strncmp(id, name, n) == 0 && id[n] == ':') {
      *out = (enum lp_timer_kind)k;
      return 0;
    }
  }
  return -1;
}

static struct lp_st_fired *fired_from(struct lp_timer *t, int partition,
                                      int64_t watermark, int64_t now_ms) {
  struct lp_st_fired *f = lp_xcalloc(1, sizeof(*f));
  int arg = 0;
  enum lp_timer_kind kind;
  if (kind_of_id(t->id, &kind) != 0 ||
      payload_parse(t->payload, &f->shop, &f->customer_id, &f->rule_id, &arg) !=
          0) {
    LP_ERROR("timers: timer payload unreadable; acknowledged without a "
             "decision",
             "\"partition\":%d,\"timer\":%s", partition, lp_log_str(t->id));
    f->shop = lp_xstrdup("");
    f->customer_id = lp_xstrdup("");
    f->rule_id = lp_xstrdup("");
    kind = LP_TIMER_WINBACK;
  }
  f->partition = partition;
  f->timer = *t; /* takes the strings */
  memset(t, 0, sizeof(*t));
  char tid[LP_TIMERS_ID_MAX + 32];
  lp_timer_output_id(&f->timer, tid, sizeof(tid));
  f->trigger_id = lp_xstrdup(tid);
  f->trig =
      (struct lp_timer_trigger){kind,           f->rule_id,    f->shop,
                                f->customer_id, f->trigger_id, f->timer.due_ms};
  f->watermark = watermark;
  f->lateness_event_ms = watermark - f->timer.due_ms;
  f->lateness_wall_ms = now_ms - f->timer.due_ms;
  return f;
}

void lp_stream_timers_fired_parse(const struct lp_stream_timers *st,
                                  struct lp_st_fired *f) {
  if (f->parsed)
    return;
  f->parsed = 1;
  char perr[256];
  const char *parts = f->parts ? f->parts : "";
  if (lp_profile_from_snapshot(parts, strlen(parts), &f->profile, perr,
                               sizeof(perr)) != 0)
    LP_WARN("timers: member profile unreadable; deciding on an empty one",
            "\"timer\":%s,\"error\":%s", lp_log_str(f->timer.id),
            lp_log_str(perr));
  if (f->activity_text) {
    lp_activity_part_parse(f->activity_text, &f->activity);
    f->have_activity = 1;
    /* An order newer than the cart's last change consumed it. */
    if (f->activity.cart_state != LP_CART_NONE &&
        f->profile.last_order_ms >= f->activity.cart_at) {
      f->activity.cart_state = LP_CART_NONE;
      f->activity.cart_micros = 0;
    }
    lp_activity_view_at(&f->activity, f->timer.due_ms, &st->conf.activity);
  }
}

/* Reads the members' profiles and activity for a claimed list (one
 * pipelined round trip). 0 or -1. */
static int read_members(struct lp_stream_timers *st, struct lp_st_fired *list,
                        char *err, size_t n) {
  if (!list)
    return 0;
  if (rc_ensure(st, err, n) != 0)
    return -1;
  size_t count = 0;
  for (struct lp_st_fired *f = list; f; f = f->next, count++) {
    const char *ns = st->ns;
    size_t ns_len = strlen(ns);
    redisAppendCommand(st->rc, "MGET %b:p:{%s:%s} %b:c:{%s:%s} %b:a:{%s:%s}",
                       ns, ns_len, f->shop, f->customer_id, ns, ns_len, f->shop,
                       f->customer_id, ns, ns_len, f->shop, f->customer_id);
  }
  int rc = 0;
  for (struct lp_st_fired *f = list; f; f = f->next) {
    redisReply *r = NULL;
    if (redisGetReply(st->rc, (void **)&r) != REDIS_OK || !r) {
      lp_err(err, n, "timers: read profiles: %s", st->rc->errstr);
      rc_drop(st);
      return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
      lp_err(err, n, "timers: read profiles: %s",
             r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
      rc = -1;
      freeReplyObject(r);
      continue;
    }
    /* Kept as text: a win-back found early needs only the last order
     * time (lp_stream_timers_fired_parse reads the rest when it fires). */
    struct lp_buf b;
    lp_buf_init(&b);
    for (int i = 0; i < 2; i++)
      if (r->element[i]->type == REDIS_REPLY_STRING)
        lp_buf_append(&b, r->element[i]->str, r->element[i]->len);
    free(f->parts);
    f->parts = lp_xstrndup(b.len ? (const char *)b.data : "", b.len);
    lp_buf_free(&b);
    f->last_order_ms = lp_state_line_i64(f->parts, "last");
    const redisReply *a = r->element[2];
    free(f->activity_text);
    f->activity_text =
        a->type == REDIS_REPLY_STRING ? lp_xstrndup(a->str, a->len) : NULL;
    freeReplyObject(r);
  }
  return rc;
}

/* What a claim of partition pt fires up to: its completed watermark
 * done, or in live operation, when the partition is idle, the wall-clock
 * watermark if that is later. */
static int64_t claim_target(const struct lp_stream_timers *st,
                            const struct part *pt, int64_t done,
                            int64_t now_ms) {
  int idle = now_ms - pt->last_record_wall_ms >= st->conf.idle_ms;
  if (st->conf.wall_clock && idle && now_ms - st->conf.wall_lag_ms > done)
    return now_ms - st->conf.wall_lag_ms;
  return done;
}

int lp_stream_timers_wants_claim(const struct lp_stream_timers *st,
                                 int64_t now_ms) {
  if (st->in_flight >= FIRED_IN_FLIGHT_MAX)
    return 0;
  for (size_t p = 0; p < st->n_parts; p++) {
    const struct part *pt = &st->parts[p];
    if (!pt->assigned)
      continue;
    if (!pt->loaded || now_ms >= pt->next_sweep_ms)
      return 1;
    /* The write in flight, once collected, completes up to wm_next. */
    int64_t target = claim_target(
        st, pt,
        st->pend && pt->wm_next > pt->wm_done ? pt->wm_next : pt->wm_done,
        now_ms);
    if (pt->next_due <= target && (st->force || now_ms >= pt->next_claim_ms))
      return 1;
  }
  return 0;
}

int lp_stream_timers_claim(struct lp_stream_timers *st, int64_t now_ms,
                           struct lp_st_fired **out, char *errstr,
                           size_t errstr_size) {
  *out = NULL;
  if (st->in_flight >= FIRED_IN_FLIGHT_MAX)
    return 0; /* wait for acks first */
  if (lp_stream_timers_collect(st, errstr, errstr_size) != 0)
    return -1; /* claims go after the writes they must see */
  for (size_t step = 0; step < st->n_parts; step++) {
    int p = (int)((st->cursor + step) % st->n_parts);
    struct part *pt = &st->parts[p];
    if (!pt->assigned)
      continue;
    if (part_load(st, p, errstr, errstr_size) != 0)
      return -1;
    int64_t target = claim_target(st, pt, pt->wm_done, now_ms);
    int sweep = now_ms >= pt->next_sweep_ms;
    if (pt->next_due > target && !sweep) {
      /* Nothing is due up to target: the mark moves without a claim. */
      if (target > pt->mark) {
        pt->mark = target;
        pt->mark_dirty = 1;
      }
      continue;
    }
    /* Claims are spaced (fire_interval_ms): a later claim fires the same
     * timers with the same decisions (a member's newer record fires its
     * own timer itself), and each claim costs round trips. */
    if (!sweep && !st->force && now_ms < pt->next_claim_ms)
      continue;
    pt->next_sweep_ms = now_ms + st->conf.lease_ms / 2;
    if (target < pt->mark)
      target = pt->mark; /* a sweep re-claims up to the mark */
    struct lp_timers_claimed c = {0};
    if (lp_timers_claim_due(st->timers, p, target, CLAIM_BATCH, st->owner,
                            (long)st->conf.lease_ms, &c, errstr,
                            errstr_size) != 0)
      return -1;
    for (size_t i = 0; i < c.n_quarantined; i++)
      LP_ERROR("timers: unreadable timer record quarantined, not fired",
               "\"partition\":%d,\"timer\":%s", p,
               lp_log_str(c.quarantined[i]));
    int64_t mark_before = pt->mark;
    if (c.n < CLAIM_BATCH) {
      /* Everything due up to target is claimed: that is the mark. */
      pt->next_due = c.has_next_due ? c.next_due_ms : NONE_DUE;
      /* Stored with the next flush's acks: a mark found lower after a
       * crash only lets a new owner fire a claimed timer again, with the
       * same id. */
      if (target > pt->mark) {
        pt->mark = target;
        pt->mark_dirty = 1;
      }
      pt->next_claim_ms = now_ms + st->conf.fire_interval_ms;
      st->cursor = (size_t)p + 1;
    }
    struct lp_st_fired *head = NULL, **tail = &head;
    for (size_t i = 0; i < c.n; i++) {
      struct lp_st_fired *f = fired_from(&c.timers[i], p, target, now_ms);
      *tail = f;
      tail = &f->next;
      st->in_flight++;
    }
    lp_timers_claimed_clear(&c);
    /* A timer is decided on its member's profile or not at all: a read
     * that fails (a connection Redis closed while it restarted) is made
     * once more on a new connection, and if that fails too the claims go
     * back to due (fired by a later claim, with the same ids). */
    if (read_members(st, head, errstr, errstr_size) != 0) {
      rc_drop(st);
      if (read_members(st, head, errstr, errstr_size) != 0) {
        size_t k = 0;
        for (struct lp_st_fired *f = head; f; f = f->next)
          k++;
        struct lp_timer *ts = lp_xcalloc(k ? k : 1, sizeof(*ts));
        int64_t *back = lp_xcalloc(k ? k : 1, sizeof(*back));
        k = 0;
        for (struct lp_st_fired *f = head; f; f = f->next, k++) {
          ts[k] = f->timer;
          back[k] = f->timer.due_ms;
          if (back[k] < pt->next_due)
            pt->next_due = back[k];
        }
        pt->mark = mark_before; /* records still fire them themselves */
        char e2[256];
        if (lp_timers_ack_move(st->timers, p, ts, back, k, st->owner, NULL, e2,
                               sizeof(e2)) != 0)
          LP_WARN("timers: claims not put back; they come back after the "
                  "lease",
                  "\"error\":%s", lp_log_str(e2));
        free(ts);
        free(back);
        while (head) {
          struct lp_st_fired *f = head;
          head = f->next;
          lp_stream_timers_fired_free(f);
          if (st->in_flight)
            st->in_flight--;
        }
        return -1;
      }
    }
    *out = head;
    return 0;
  }
  return 0;
}

void lp_stream_timers_done(struct lp_stream_timers *st, struct lp_st_fired *f) {
  f->next = st->done;
  st->done = f;
}

/* The due a finished timer moves to instead of being removed (0: none):
 * an early one to its member's due, a birthday to next year's. */
static int64_t finished_move(const struct lp_st_fired *f) {
  if (f->reschedule_due > 0)
    return f->reschedule_due;
  if (f->trig.kind != LP_TIMER_BIRTHDAY || !f->profile.birthday)
    return 0;
  char *shop, *cust, *rule;
  int days = 0;
  if (payload_parse(f->timer.payload, &shop, &cust, &rule, &days) == 0) {
    free(shop);
    free(cust);
    free(rule);
  }
  int64_t lead = (int64_t)days * LP_PLAN_DAY_MS, next = 0;
  if (lp_plan_birthday(f->profile.birthday, f->timer.due_ms + lead + 1,
                       &next) != 0)
    return 0;
  return next - lead;
}

/* Queues the acks (and moves) of st->acking into the timers' pipeline:
 * each only while this claim is the timer's latest schedule. A move goes
 * beyond every due the timer fired at (a reschedule beyond the claim's
 * watermark, a birthday to next year); a timer an order scheduled again
 * since the claim keeps that newer due. 0 or -1. */
static int queue_acks(struct lp_stream_timers *st, char *err, size_t n) {
  size_t count = 0;
  for (struct lp_st_fired *f = st->acking; f; f = f->next) {
    f->move_due = finished_move(f);
    count++;
  }
  if (!count)
    return 0;
  struct lp_timer *ts = lp_xcalloc(count, sizeof(*ts));
  int64_t *moves = lp_xcalloc(count, sizeof(*moves));
  int rc = 0;
  for (size_t p = 0; p < st->n_parts && rc == 0; p++) {
    size_t na = 0;
    for (struct lp_st_fired *f = st->acking; f; f = f->next)
      if ((size_t)f->partition == p) {
        ts[na] = f->timer;
        moves[na++] = f->move_due;
      }
    if (na)
      rc = lp_timers_ack_move(st->timers, (int)p, ts, moves, na, st->owner,
                              NULL, err, n);
  }
  free(ts);
  free(moves);
  return rc;
}

/* The acks of st->acking are stored: those timers are over (or pending
 * again at their move). */
static void acks_stored(struct lp_stream_timers *st) {
  while (st->acking) {
    struct lp_st_fired *f = st->acking;
    st->acking = f->next;
    struct part *pt = part_of(st, f->partition);
    if (pt && f->move_due > 0 && f->move_due < pt->next_due)
      pt->next_due = f->move_due;
    lp_stream_timers_fired_free(f);
    if (st->in_flight)
      st->in_flight--;
  }
}

int lp_stream_timers_flush(struct lp_stream_timers *st, int wait, char *errstr,
                           size_t errstr_size) {
  int64_t now = wall_ms();
  int sample = now >= st->next_pending_sample_ms;
  int dirty = 0;
  for (size_t p = 0; p < st->n_parts; p++)
    dirty |= st->parts[p].assigned && st->parts[p].mark_dirty;
  /* With a write in flight, the acks and marks go with the next one. */
  if (!st->pend && (st->done || dirty)) {
    st->pend = 1;
    if (send_pending(st, errstr, errstr_size) != 0)
      st->pend_sent = 0; /* sent again by collect */
  }
  if ((wait || sample || st->force) &&
      lp_stream_timers_collect(st, errstr, errstr_size) != 0)
    return -1;
  if (sample) {
    int64_t total = 0;
    for (size_t p = 0; p < st->n_parts; p++) {
      size_t k = 0;
      if (st->parts[p].assigned &&
          lp_timers_pending(st->timers, (int)p, &k, errstr, errstr_size) == 0)
        total += (int64_t)k;
    }
    lp_metrics_set(LP_M_TIMERS_PENDING, total);
    st->next_pending_sample_ms = now + PENDING_SAMPLE_MS;
  }
  return 0;
}

int64_t lp_stream_timers_watermark(const struct lp_stream_timers *st,
                                   int partition) {
  if (partition < 0 || (size_t)partition >= st->n_parts)
    return INT64_MIN;
  return st->parts[partition].wm;
}

void lp_stream_timers_force(struct lp_stream_timers *st, int on) {
  st->force = on != 0;
}
