/*
 * control.c — the sandbox's own endpoints under /_sandbox/ (no auth, no
 * faults, not counted in the statistics): the effects ledger, statistics,
 * the fault table, the chat-completions stub's mode and reset. Called with
 * the lock held. (/_sandbox/shop and /_sandbox/webhooks/ belong to the
 * shop side, shop.h, and never reach this file.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sandbox.h"
#include "shop.h"
#include "util.h"

static void control_error(struct sb_response *resp, int status,
                          const char *message) {
  sb_respond_json(resp, status, json_pack("{ss}", "error", message), NULL);
}

static int kind_parse(const char *name) {
  for (int k = 0; k < SB_N_KINDS; k++)
    if (strcmp(name, sb_kind_name((enum sb_kind)k)) == 0)
      return k;
  return -1;
}

static void serve_ledger(struct sandbox *sb, const struct sb_request *req,
                         struct sb_response *resp) {
  const char *platform = req->query(req, "platform");
  const char *member = req->query(req, "member");
  const char *kind = req->query(req, "kind");
  const char *since = req->query(req, "since_seq");
  int p = -1, k = -1;
  long long since_seq = 0;
  if (platform && (p = sb_platform_parse(platform)) < 0) {
    control_error(resp, 400,
                  "platform: not loyaltylion, smile, klaviyo, braze or llm");
    return;
  }
  if (kind && (k = kind_parse(kind)) < 0) {
    control_error(resp, 400, "kind: unknown effect kind");
    return;
  }
  if (since && sb_parse_long(since, 0, INT64_MAX, &since_seq) != 0) {
    control_error(resp, 400, "since_seq: not a non-negative integer");
    return;
  }
  sb_respond_json(resp, 200, sb_ledger_json(sb, p, member, k, since_seq), NULL);
}

/* A settings endpoint (faults, llm): a POST with a JSON object changes
 * what it names through update; both methods answer the current state. */
static void serve_settings(struct sandbox *sb, const struct sb_request *req,
                           struct sb_response *resp, const char *what,
                           int (*update)(struct sandbox *, json_t *, char *,
                                         size_t),
                           json_t *(*state)(const struct sandbox *)) {
  if (strcmp(req->method, "POST") == 0) {
    char err[256];
    if (req->too_large) {
      control_error(resp, 413, "body too large");
      return;
    }
    if (!req->json) {
      char msg[256];
      snprintf(msg, sizeof(msg), "body: %s",
               req->json_error ? req->json_error : "a JSON object is required");
      control_error(resp, 400, msg);
      return;
    }
    if (update(sb, req->json, err, sizeof(err)) != 0) {
      control_error(resp, 400, err);
      return;
    }
    char *text = json_dumps(req->json, JSON_COMPACT);
    LP_INFO("sandbox settings changed", "\"what\":%s,\"change\":%s",
            lp_log_str(what), lp_log_str(text));
    free(text);
  }
  sb_respond_json(resp, 200, state(sb), NULL);
}

static void serve_faults(struct sandbox *sb, const struct sb_request *req,
                         struct sb_response *resp) {
  serve_settings(sb, req, resp, "faults", sb_faults_update, sb_faults_json);
}

static void serve_llm(struct sandbox *sb, const struct sb_request *req,
                      struct sb_response *resp) {
  serve_settings(sb, req, resp, "llm", sb_llm_update, sb_llm_json);
}

void sb_control_serve(struct sandbox *sb, const struct sb_request *req,
                      struct sb_response *resp) {
  const char *path = req->path;
  int get = strcmp(req->method, "GET") == 0;
  int post = strcmp(req->method, "POST") == 0;
  if (strcmp(path, "/_sandbox/ledger") == 0) {
    if (get)
      serve_ledger(sb, req, resp);
    else
      control_error(resp, 405, "GET only");
  } else if (strcmp(path, "/_sandbox/stats") == 0) {
    if (get)
      sb_respond_json(resp, 200, sb_stats_json(sb), NULL);
    else
      control_error(resp, 405, "GET only");
  } else if (strcmp(path, "/_sandbox/faults") == 0) {
    if (get || post)
      serve_faults(sb, req, resp);
    else
      control_error(resp, 405, "GET or POST only");
  } else if (strcmp(path, "/_sandbox/llm") == 0) {
    if (get || post)
      serve_llm(sb, req, resp);
    else
      control_error(resp, 405, "GET or POST only");
  } else if (strcmp(path, "/_sandbox/reset") == 0) {
    if (post) {
      sb_reset(sb);
      if (sb->shop) /* shop side: buckets, stats, sink records */
        sb_shop_reset(sb->shop);
      LP_INFO("state reset", NULL);
      sb_respond_json(resp, 200, json_pack("{sb}", "reset", 1), NULL);
    } else {
      control_error(resp, 405, "POST only");
    }
  } else {
    control_error(resp, 404,
                  "unknown sandbox endpoint (ledger, stats, faults, llm, "
                  "reset, shop, webhooks/send, webhooks/sink)");
  }
}
