/*
 * state.c — the sandbox's shared state (see sandbox.h): lifecycle and
 * reset, the seeded PRNG (splitmix64, so one --seed gives one sequence of
 * ids and fault rolls for one sequence of requests), the effects ledger,
 * statistics, the fault table and the per-client rate windows.
 * Every function here expects the lock held, except sb_new/sb_destroy/
 * sb_shutdown. The llm stub's mode, like the fault table, survives reset;
 * its counters and completion ids are world state and do not.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sandbox.h"
#include "util.h"

static const char *const platform_names[SB_N_PLATFORMS] = {
    "loyaltylion", "smile", "klaviyo", "braze", "llm"};

#define SB_KIND_NAME(name, text) text,
static const char *const kind_names[SB_N_KINDS] = {SB_KINDS(SB_KIND_NAME)};
#undef SB_KIND_NAME

const char *sb_platform_name(enum sb_platform p) {
  LP_ASSERT(p >= 0 && p < SB_N_PLATFORMS);
  return platform_names[p];
}

int sb_platform_parse(const char *name) {
  for (int i = 0; name && i < SB_N_PLATFORMS; i++)
    if (strcmp(name, platform_names[i]) == 0)
      return i;
  return -1;
}

const char *sb_kind_name(enum sb_kind k) {
  LP_ASSERT(k >= 0 && k < SB_N_KINDS);
  return kind_names[k];
}

static void free_client(void *p) {
  free(p);
}

static void create_world(struct sandbox *sb) {
  sb->ll = sb_ll_state_new();
  sb->smile = sb_smile_state_new();
  sb->klaviyo = sb_klaviyo_state_new();
  sb->llm = sb_llm_state_new();
}

static void destroy_world(struct sandbox *sb) {
  sb_ll_state_destroy(&sb->ll);
  sb_smile_state_destroy(&sb->smile);
  sb_klaviyo_state_destroy(&sb->klaviyo);
  sb_llm_state_destroy(&sb->llm);
}

struct sandbox *sb_new(const struct sb_settings *settings) {
  struct sandbox *sb = lp_xcalloc(1, sizeof(*sb));
  LP_ASSERT(pthread_mutex_init(&sb->lock, NULL) == 0);
  LP_ASSERT(pthread_cond_init(&sb->wake, NULL) == 0);
  sb->settings = settings;
  sb->prng = (uint64_t)settings->seed;
  sb->started_ms = lp_now_ms();
  sb->faults[SB_N_PLATFORMS] = settings->fault;
  for (int p = 0; p < SB_N_PLATFORMS; p++)
    sb->faults[p] = settings->fault_for[p];
  int mode = sb_llm_mode_parse(settings->llm_mode);
  LP_ASSERT(mode >= 0); /* main.c checked it */
  sb->llm_mode = (enum sb_llm_mode)mode;
  sb->llm_slow_ms = settings->llm_slow_ms;
  sb->next_seq = 1;
  sb->clients = sb_map_new(free_client);
  create_world(sb);
  return sb;
}

static void ledger_clear(struct sandbox *sb) {
  for (size_t i = 0; i < sb->ledger_len; i++) {
    struct sb_effect *e = &sb->ledger[i];
    free(e->member);
    free(e->reference);
    json_decref(e->body);
    json_decref(e->object);
  }
  sb->ledger_len = 0;
}

void sb_destroy(struct sandbox **sbp) {
  if (!sbp || !*sbp)
    return;
  struct sandbox *sb = *sbp;
  ledger_clear(sb);
  free(sb->ledger);
  sb_map_destroy(&sb->clients);
  destroy_world(sb);
  pthread_cond_destroy(&sb->wake);
  pthread_mutex_destroy(&sb->lock);
  free(sb);
  *sbp = NULL;
}

void sb_shutdown(struct sandbox *sb) {
  pthread_mutex_lock(&sb->lock);
  sb->stopping = 1;
  pthread_cond_broadcast(&sb->wake);
  pthread_mutex_unlock(&sb->lock);
}

void sb_reset(struct sandbox *sb) {
  ledger_clear(sb);
  sb->next_seq = 1;
  sb->ledger_refused = 0;
  for (int p = 0; p < SB_N_PLATFORMS; p++) {
    long in_flight = sb->stats[p].in_flight;
    memset(&sb->stats[p], 0, sizeof(sb->stats[p]));
    sb->stats[p].in_flight = in_flight;
    sb->stats[p].max_in_flight = in_flight;
  }
  sb_map_clear(sb->clients);
  sb->generation++;
  destroy_world(sb);
  create_world(sb);
}

uint64_t sb_random_u64(struct sandbox *sb) {
  uint64_t z = (sb->prng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double sb_random(struct sandbox *sb) {
  return (double)(sb_random_u64(sb) >> 11) * (1.0 / 9007199254740992.0);
}

void sb_uuid(struct sandbox *sb, char out[37]) {
  uint64_t hi = sb_random_u64(sb), lo = sb_random_u64(sb);
  hi = (hi & ~0xf000ULL) | 0x4000ULL;       /* version 4 */
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62); /* RFC 4122 variant */
  snprintf(out, 37,
           "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
           "-%012" PRIx64,
           hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
           lo & (uint64_t)0xffffffffffffULL);
}

int sb_ledger_reserve(struct sandbox *sb, size_t n) {
  size_t max = (size_t)sb->settings->ledger_max;
  if (sb->ledger_len + n <= max)
    return 0;
  /* Logged on the first refusal and then every 10000th, so a client
   * hammering a full sandbox does not flood the log. */
  if (sb->ledger_refused++ % 10000 == 0)
    LP_WARN("ledger full: effects refused with 507 until POST /_sandbox/reset",
            "\"ledger_max\":%ld,\"refused\":%ld", sb->settings->ledger_max,
            sb->ledger_refused);
  return -1;
}

void sb_ledger_add(struct sandbox *sb, enum sb_platform p, enum sb_kind kind,
                   const char *member, int64_t points, const char *reference,
                   json_t *body, json_t *object, int64_t now_ms) {
  LP_ASSERT(sb->ledger_len < (size_t)sb->settings->ledger_max);
  if (sb->ledger_len == sb->ledger_cap) {
    sb->ledger_cap = sb->ledger_cap ? sb->ledger_cap * 2 : 1024;
    sb->ledger = lp_xrealloc(sb->ledger, sb->ledger_cap * sizeof(*sb->ledger));
  }
  struct sb_effect *e = &sb->ledger[sb->ledger_len++];
  e->seq = sb->next_seq++;
  e->time_ms = now_ms;
  e->points = points;
  e->member = lp_xstrdup(member ? member : "");
  e->reference = lp_xstrdup(reference);
  e->body = body ? json_incref(body) : json_null();
  e->object = object ? json_incref(object) : NULL;
  e->platform = p;
  e->kind = kind;
}

json_t *sb_ledger_json(const struct sandbox *sb, int platform,
                       const char *member, int kind, int64_t since_seq) {
  json_t *effects = json_array();
  for (size_t i = 0; i < sb->ledger_len; i++) {
    const struct sb_effect *e = &sb->ledger[i];
    if ((platform >= 0 && (int)e->platform != platform) ||
        (kind >= 0 && (int)e->kind != kind) || e->seq <= since_seq ||
        (member && strcmp(member, e->member) != 0))
      continue;
    json_t *o = json_pack(
        "{sI ss ss ss sI so sI sO}", "seq", (json_int_t)e->seq, "platform",
        sb_platform_name(e->platform), "kind", sb_kind_name(e->kind), "member",
        e->member, "points", (json_int_t)e->points, "reference",
        e->reference ? json_string(e->reference) : json_null(), "time_ms",
        (json_int_t)e->time_ms, "body", e->body);
    LP_ASSERT(o);
    if (e->object)
      json_object_set(o, "object", e->object);
    json_array_append_new(effects, o);
  }
  return json_pack("{so}", "effects", effects);
}

json_t *sb_stats_json(const struct sandbox *sb) {
  json_t *platforms = json_object();
  for (int p = 0; p < SB_N_PLATFORMS; p++) {
    const struct sb_stats *st = &sb->stats[p];
    json_t *by_status = json_object();
    for (int code = 100; code < 600; code++)
      if (st->by_status[code]) {
        char key[16];
        snprintf(key, sizeof(key), "%d", code);
        json_object_set_new(by_status, key,
                            json_integer((json_int_t)st->by_status[code]));
      }
    json_object_set_new(platforms, sb_platform_name((enum sb_platform)p),
                        json_pack("{sI so sI sI sI sI sI}", "requests",
                                  (json_int_t)st->requests, "by_status",
                                  by_status, "dropped_after_apply",
                                  (json_int_t)st->dropped_after_apply,
                                  "deduped", (json_int_t)st->deduped, "early",
                                  (json_int_t)st->early, "max_in_flight",
                                  (json_int_t)st->max_in_flight, "in_flight",
                                  (json_int_t)st->in_flight));
  }
  return json_pack("{so s{sI sI sI}}", "platforms", platforms, "ledger",
                   "entries", (json_int_t)sb->ledger_len, "max",
                   (json_int_t)sb->settings->ledger_max, "refused",
                   (json_int_t)sb->ledger_refused);
}

struct sb_faults sb_faults_effective(const struct sandbox *sb,
                                     enum sb_platform p) {
  const struct sb_faults *all = &sb->faults[SB_N_PLATFORMS];
  const struct sb_faults *own = &sb->faults[p];
  struct sb_faults f;
  f.latency_ms = own->latency_ms >= 0 ? own->latency_ms : all->latency_ms;
  f.error_rate = own->error_rate >= 0 ? own->error_rate : all->error_rate;
  f.drop_rate = own->drop_rate >= 0 ? own->drop_rate : all->drop_rate;
  f.retry_after_s =
      own->retry_after_s >= 0 ? own->retry_after_s : all->retry_after_s;
  f.burst_429 = own->burst_429 + all->burst_429;
  return f;
}

int sb_faults_take_429(struct sandbox *sb, enum sb_platform p) {
  if (sb->faults[p].burst_429 > 0) {
    sb->faults[p].burst_429--;
    return 1;
  }
  if (sb->faults[SB_N_PLATFORMS].burst_429 > 0) {
    sb->faults[SB_N_PLATFORMS].burst_429--;
    return 1;
  }
  return 0;
}

/* Reads one numeric field into *out: absent = unchanged, null = inherit
 * (-1) on a platform row or 0 on '*'. */
static int fault_field(json_t *body, const char *key, int is_all, double min,
                       double max, int integer, double *out, int *set,
                       char *errstr, size_t errstr_size) {
  json_t *v = json_object_get(body, key);
  *set = 0;
  if (!v)
    return 0;
  *set = 1;
  if (json_is_null(v)) {
    *out = is_all ? 0 : -1;
    return 0;
  }
  if (integer ? !json_is_integer(v) : !json_is_number(v))
    return lp_err(errstr, errstr_size, "%s: must be %s or null", key,
                  integer ? "an integer" : "a number");
  double d = json_number_value(v);
  if (d < min || d > max)
    return lp_err(errstr, errstr_size, "%s: %g is not in %g..%g", key, d, min,
                  max);
  *out = d;
  return 0;
}

int sb_faults_update(struct sandbox *sb, json_t *body, char *errstr,
                     size_t errstr_size) {
  if (!json_is_object(body))
    return lp_err(errstr, errstr_size, "body: must be a JSON object");
  static const char *const known[] = {"platform",   "latency_ms",
                                      "error_rate", "drop_rate",
                                      "burst_429",  "retry_after_s"};
  const char *key;
  json_t *value;
  json_object_foreach(body, key, value) {
    size_t i = 0;
    while (i < LP_ARRAY_LEN(known) && strcmp(key, known[i]) != 0)
      i++;
    if (i == LP_ARRAY_LEN(known))
      return lp_err(errstr, errstr_size, "%s: unknown field", key);
  }
  const char *name = sb_json_string(body, "platform");
  if (json_object_get(body, "platform") && !name)
    return lp_err(errstr, errstr_size, "platform: must be a string");
  int row = SB_N_PLATFORMS;
  if (name && strcmp(name, "*") != 0) {
    row = sb_platform_parse(name);
    if (row < 0)
      return lp_err(errstr, errstr_size,
                    "platform: \"%s\" is not *, loyaltylion, smile, klaviyo, "
                    "braze or llm",
                    name);
  }
  int is_all = row == SB_N_PLATFORMS;
  double latency, error_rate, drop_rate, burst, retry;
  int set_latency, set_error, set_drop, set_burst, set_retry;
  if (fault_field(body, "latency_ms", is_all, 0, 600000, 1, &latency,
                  &set_latency, errstr, errstr_size) ||
      fault_field(body, "error_rate", is_all, 0, 1, 0, &error_rate, &set_error,
                  errstr, errstr_size) ||
      fault_field(body, "drop_rate", is_all, 0, 1, 0, &drop_rate, &set_drop,
                  errstr, errstr_size) ||
      fault_field(body, "burst_429", 1, 0, 1e9, 1, &burst, &set_burst, errstr,
                  errstr_size) ||
      fault_field(body, "retry_after_s", is_all, 0, 3600, 1, &retry, &set_retry,
                  errstr, errstr_size))
    return -1;
  struct sb_faults *f = &sb->faults[row];
  if (set_latency)
    f->latency_ms = (long)latency;
  if (set_error)
    f->error_rate = error_rate;
  if (set_drop)
    f->drop_rate = drop_rate;
  if (set_burst)
    f->burst_429 = (long)burst;
  if (set_retry)
    f->retry_after_s = (long)retry;
  return 0;
}

static json_t *fault_row_json(const struct sb_faults *f) {
  return json_pack("{sI sf sf sI sI}", "latency_ms", (json_int_t)f->latency_ms,
                   "error_rate", f->error_rate, "drop_rate", f->drop_rate,
                   "burst_429", (json_int_t)f->burst_429, "retry_after_s",
                   (json_int_t)f->retry_after_s);
}

json_t *sb_faults_json(const struct sandbox *sb) {
  json_t *rows = json_object();
  json_object_set_new(rows, "*", fault_row_json(&sb->faults[SB_N_PLATFORMS]));
  for (int p = 0; p < SB_N_PLATFORMS; p++) {
    /* Effective values, but a platform's own pending 429s (the '*' counter
     * is shared and shown once). */
    struct sb_faults f = sb_faults_effective(sb, (enum sb_platform)p);
    f.burst_429 = sb->faults[p].burst_429;
    json_object_set_new(rows, sb_platform_name((enum sb_platform)p),
                        fault_row_json(&f));
  }
  return json_pack("{so}", "faults", rows);
}

struct sb_client *sb_client_get(struct sandbox *sb, enum sb_platform p,
                                int group, const char *credential, size_t len) {
  char prefix[32];
  int n = snprintf(prefix, sizeof(prefix), "%d/%d/", (int)p, group);
  LP_ASSERT(n > 0 && (size_t)n < sizeof(prefix));
  char *key = lp_xmalloc((size_t)n + len);
  memcpy(key, prefix, (size_t)n);
  memcpy(key + n, credential, len);
  struct sb_client *c = sb_map_get(sb->clients, key, (size_t)n + len);
  if (!c) {
    c = lp_xcalloc(1, sizeof(*c));
    sb_map_put(sb->clients, key, (size_t)n + len, c);
  }
  free(key);
  return c;
}

void sb_rate_check(struct sb_client *c, int n, const struct sb_window *w,
                   int64_t now_ms, int take, struct sb_rate *rate) {
  LP_ASSERT(n >= 0 && n <= 2);
  memset(rate, 0, sizeof(*rate));
  rate->n = n;
  for (int i = 0; i < n; i++) {
    int64_t len = w[i].length_ms;
    LP_ASSERT(len > 0);
    int64_t start = now_ms - now_ms % len;
    if (c->start_ms[i] != start) {
      c->start_ms[i] = start;
      c->count[i] = 0;
    }
    rate->limit[i] = w[i].limit;
    rate->reset_ms[i] = start + len;
    if (c->count[i] >= w[i].limit) {
      rate->limited = 1;
      if (start + len - now_ms > rate->retry_ms)
        rate->retry_ms = start + len - now_ms;
    }
  }
  for (int i = 0; i < n; i++) {
    if (take && !rate->limited)
      c->count[i]++;
    rate->remaining[i] =
        c->count[i] >= w[i].limit ? 0 : w[i].limit - c->count[i];
  }
}
