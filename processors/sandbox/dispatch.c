/*
 * dispatch.c — one request through the sandbox, in the order a client
 * would meet a real platform's layers:
 *
 *   body size (413) -> credential (401) -> path and method (404/405) ->
 *   platform headers (Klaviyo revision, content type) -> "early" (the
 *   client was told to wait, had time to hear it, and did not wait: 429,
 *   counted) -> rate windows
 *   (429) -> injected 429s (burst_429) -> injected 5xx (error_rate, before
 *   anything is applied) -> the handler (validation, effects) -> drop
 *   (drop_rate: the effect stays applied, the client gets no answer).
 *
 * "Early" means sent after the client could know it had to wait: once
 * early.grace_ms have passed since the 429 was sent, on the connection
 * that carried it or on any other. Within the grace a client's HTTP
 * library may still hand that connection to a request it queued before
 * it read the 429 (libcurl does), which is not the client ignoring it.
 * Requests already in flight when a concurrent client's first 429 went
 * out are therefore not early; they meet the windows and faults as usual.
 *
 * Latency (latency_ms, plus what a handler asks for in extra_latency_ms:
 * llm's slow mode) is slept by the caller after the lock is released, so
 * the effect is already applied when a slow answer times a client out:
 * the ambiguous case an executor must reconcile.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "sandbox.h"
#include "shop.h"
#include "util.h"

/* In look-up order: the first that owns a path serves it, so llm (whose
 * /v1/chat/ lies inside Smile's /v1/) comes before Smile. */
static const struct sb_platform_ops *const platforms[SB_N_PLATFORMS] = {
    &sb_llm_ops, &sb_loyaltylion_ops, &sb_smile_ops, &sb_klaviyo_ops,
    &sb_braze_ops};

static void unknown_prefix(struct sb_response *resp) {
  sb_respond_json(
      resp, 404,
      json_pack("{ss s{ss ss ss ss ss ss ss ss}}", "message",
                "No emulated platform serves this path", "served", "/v2/",
                "loyaltylion", "/v1/", "smile", "/v1/chat/", "llm", "/api/",
                "klaviyo", "/users/, /campaigns/, /canvas/, /messages/",
                "braze", "/admin/api/", "shopify", "/stores/", "bigcommerce",
                "/_sandbox/",
                "ledger, stats, faults, llm, reset, shop, webhooks/send, "
                "webhooks/sink"),
      NULL);
}

static uint64_t credential_hash(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* Records that a 429 sent at send_ms told the client to wait until
 * until_ms. The grace period counts from the first 429 of a promise, so a
 * stream of in-flight requests cannot stretch it. */
static void remember_promise(const struct sandbox *sb, struct sb_client *c,
                             struct sb_connection *conn, enum sb_platform p,
                             int group, uint64_t hash, int64_t until_ms,
                             int64_t now_ms, int64_t send_ms) {
  if (c->not_before_ms <= now_ms)
    c->told_at_ms = send_ms;
  if (until_ms > c->not_before_ms)
    c->not_before_ms = until_ms;
  if (conn) {
    conn->generation = sb->generation;
    conn->platform = (int)p;
    conn->group = group;
    conn->credential_hash = hash;
    conn->not_before_ms = until_ms;
    conn->told_at_ms = send_ms;
  }
}

/* The platform layers (see the file comment); lock held. */
static void serve_platform(struct sandbox *sb,
                           const struct sb_platform_ops *ops,
                           const struct sb_request *req,
                           struct sb_response *resp, long *latency_ms) {
  enum sb_platform p = ops->platform;
  struct sb_stats *st = &sb->stats[p];
  int64_t now = req->now_ms;
  st->requests++;
  if (++st->in_flight > st->max_in_flight)
    st->max_in_flight = st->in_flight;
  struct sb_faults f = sb_faults_effective(sb, p);
  *latency_ms = f.latency_ms;

  int endpoint = ops->route(req->method, req->path);
  struct sb_window w[2];
  int group = 0;
  int nw = ops->limits(sb, endpoint, &group, w);
  /* Until the client is known, rate headers show an untouched window. */
  struct sb_client fresh;
  memset(&fresh, 0, sizeof(fresh));
  struct sb_rate rate;
  sb_rate_check(&fresh, nw, w, now, 0, &rate);

  const char *credential = NULL;
  size_t credential_len = 0;
  if (req->too_large) {
    ops->error(sb, resp, 413, "request_too_large", "Request body too large");
    goto decorate;
  }
  if (ops->auth(sb, req, &credential, &credential_len) != 0) {
    ops->error(sb, resp, 401, NULL, NULL);
    goto decorate;
  }
  if (endpoint == -404) {
    ops->error(sb, resp, 404, "not_found", "Not found");
    goto decorate;
  }
  if (endpoint == -405) {
    ops->error(sb, resp, 405, "method_not_allowed", "Method not allowed");
    goto decorate;
  }
  LP_ASSERT(endpoint >= 0);
  if (ops->precheck && ops->precheck(sb, endpoint, req, resp) != 0)
    goto decorate;

  struct sb_client *c = sb_client_get(sb, p, group, credential, credential_len);
  uint64_t hash = credential_hash(credential, credential_len);
  /* The 429 (if any) reaches the client after the injected latency. */
  int64_t send_ms = now + f.latency_ms;
  struct sb_connection *conn = req->connection;
  int told_here = conn && conn->generation == sb->generation &&
                  conn->not_before_ms > now && conn->platform == (int)p &&
                  conn->group == group && conn->credential_hash == hash &&
                  now >= conn->told_at_ms + sb->settings->early_grace_ms;
  int told_in_time = c->not_before_ms > now &&
                     now >= c->told_at_ms + sb->settings->early_grace_ms;
  if (told_here || told_in_time) {
    /* Told to wait, had time to hear it, and did not wait: the proof
     * tests look for. */
    st->early++;
    int64_t until = c->not_before_ms;
    if (told_here && conn->not_before_ms > until)
      until = conn->not_before_ms;
    sb_rate_check(c, nw, w, now, 0, &rate);
    ops->throttle(sb, resp, SB_THROTTLE_EARLY, &rate, send_ms,
                  until - send_ms > 0 ? until - send_ms : 1);
    remember_promise(sb, c, conn, p, group, hash, until, now, send_ms);
    goto count;
  }
  sb_rate_check(c, nw, w, now, 1, &rate);
  int64_t hint_ms = f.retry_after_s > 0 ? f.retry_after_s * 1000 : 0;
  if (rate.limited || sb_faults_take_429(sb, p)) {
    int64_t told = ops->throttle(
        sb, resp, rate.limited ? SB_THROTTLE_RATE : SB_THROTTLE_FAULT, &rate,
        send_ms, hint_ms);
    if (told)
      remember_promise(sb, c, conn, p, group, hash, told, now, send_ms);
    goto count;
  }
  if (f.error_rate > 0 && sb_random(sb) < f.error_rate) {
    ops->error(sb, resp, sb_random(sb) < 0.5 ? 500 : 503, NULL, NULL);
    goto decorate;
  }
  ops->handle(sb, endpoint, req, resp);
  LP_ASSERT(resp->status >= 100 && resp->status < 600);
  LP_ASSERT(resp->extra_latency_ms >= 0);
  *latency_ms += resp->extra_latency_ms;
  if (resp->status >= 200 && resp->status < 300 && f.drop_rate > 0 &&
      sb_random(sb) < f.drop_rate)
    resp->drop = 1;
decorate:
  if (ops->decorate)
    ops->decorate(sb, resp, &rate, now);
count:
  if (resp->drop)
    st->dropped_after_apply++;
  else
    st->by_status[resp->status]++;
}

void sb_dispatch(struct sandbox *sb, const struct sb_request *req,
                 struct sb_response *resp, long *latency_ms, int *platform) {
  *latency_ms = 0;
  *platform = -1;
  /* ---- shop side (shop.h): its own lock, never this one, so the webhook
   * sender may post to this sandbox's own sink while it sends. ---- */
  if (sb->shop && sb_shop_owns(req->path)) {
    sb_shop_serve(sb->shop, req, resp);
    return;
  }
  if (strncmp(req->path, "/_sandbox/", 10) == 0 ||
      strcmp(req->path, "/_sandbox") == 0) {
    pthread_mutex_lock(&sb->lock);
    sb_control_serve(sb, req, resp);
    pthread_mutex_unlock(&sb->lock);
    return;
  }
  const struct sb_platform_ops *ops = NULL;
  for (int i = 0; i < SB_N_PLATFORMS && !ops; i++)
    if (platforms[i]->owns(req->path))
      ops = platforms[i];
  if (!ops) {
    unknown_prefix(resp);
    return;
  }
  *platform = (int)ops->platform;
  pthread_mutex_lock(&sb->lock);
  serve_platform(sb, ops, req, resp, latency_ms);
  pthread_mutex_unlock(&sb->lock);
}

void sb_request_done(struct sandbox *sb, int platform, long latency_ms) {
  if (platform < 0)
    return;
  pthread_mutex_lock(&sb->lock);
  if (latency_ms > 0) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += latency_ms / 1000;
    deadline.tv_nsec += (latency_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
    while (!sb->stopping &&
           pthread_cond_timedwait(&sb->wake, &sb->lock, &deadline) != ETIMEDOUT)
      ;
  }
  sb->stats[platform].in_flight--;
  LP_ASSERT(sb->stats[platform].in_flight >= 0);
  pthread_mutex_unlock(&sb->lock);
}
