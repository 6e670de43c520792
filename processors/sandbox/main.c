/*
 * sandbox — the development and test stand-in for the four platforms the
 * executor calls: LoyaltyLion, Smile.io, Klaviyo and Braze on their real
 * paths, with their auth, status codes, bodies, rate limits and headers,
 * an effects ledger for reconciliation tests, and injectable faults; plus
 * an OpenAI-compatible chat-completions stub (llm) for generated copy.
 * In memory only, 127.0.0.1 only: never for production.
 *
 * main.c is wiring: configuration, signals, the port file, start and stop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "sandbox.h"
#include "server.h"
#include "shop.h"
#include "util.h"

#define C(field) offsetof(struct sb_settings, field)
#define FAULT_KEYS(P, NAME)                                                    \
  {"fault." NAME ".latency_ms",                                                \
   LP_CONF_INT,                                                                \
   "-1",                                                                       \
   C(fault_for[P].latency_ms),                                                 \
   NAME ": added latency; -1 = fault.latency_ms",                              \
   -1,                                                                         \
   600000},                                                                    \
      {"fault." NAME ".error_rate",                                            \
       LP_CONF_DOUBLE,                                                         \
       "-1",                                                                   \
       C(fault_for[P].error_rate),                                             \
       NAME ": 5xx probability; -1 = fault.error_rate",                        \
       0,                                                                      \
       0},                                                                     \
      {"fault." NAME ".drop_rate",                                             \
       LP_CONF_DOUBLE,                                                         \
       "-1",                                                                   \
       C(fault_for[P].drop_rate),                                              \
       NAME ": apply-then-drop probability; -1 = fault.drop_rate",             \
       0,                                                                      \
       0},                                                                     \
      {"fault." NAME ".burst_429",                                             \
       LP_CONF_INT,                                                            \
       "0",                                                                    \
       C(fault_for[P].burst_429),                                              \
       NAME ": the next N requests get 429 (before fault.burst_429's)",        \
       0,                                                                      \
       1000000000},                                                            \
  {                                                                            \
    "fault." NAME ".retry_after_s", LP_CONF_INT, "-1",                         \
        C(fault_for[P].retry_after_s),                                         \
        NAME ": retry delay told on 429s; -1 = fault.retry_after_s", -1, 3600  \
  }

static const struct lp_config_entry config_table[] = {
    {"bind", LP_CONF_STRING, "127.0.0.1", C(bind),
     "Address to listen on (keep 127.0.0.1 outside a container)", 0, 0},
    {"port", LP_CONF_INT, "0", C(port),
     "TCP port on 127.0.0.1 (0 = a free port; --port)", 0, 65535},
    {"port.file", LP_CONF_STRING, "", C(port_file),
     "Write the bound port to this file once listening, removed at exit "
     "(--port-file)",
     0, 0},
    {"seed", LP_CONF_INT, "1", C(seed),
     "PRNG seed for ids and fault rolls: same seed and requests, same run "
     "(--seed)",
     0, 0},
    {"log.level", LP_CONF_STRING, "info", C(log_level),
     "debug (one line per request), info, warn or error", 0, 0},
    {"body.max", LP_CONF_INT, "1048576", C(body_max),
     "Largest request body in bytes; larger ones get 413", 1024, 67108864},
    {"ledger.max", LP_CONF_INT, "1000000", C(ledger_max),
     "Most ledger effects kept; further effects are refused with 507", 1,
     100000000},
    {"connections.max", LP_CONF_INT, "256", C(connections_max),
     "Concurrent connections (one thread each)", 64, 4096},
    {"loyaltylion.key", LP_CONF_STRING, "sandbox-ll-key",
     C(key[SB_LOYALTYLION]),
     "Accepted LoyaltyLion API keys (Bearer), comma-separated", 0, 0},
    {"smile.key", LP_CONF_STRING, "sandbox-smile-key", C(key[SB_SMILE]),
     "Accepted Smile.io tokens (Bearer), comma-separated", 0, 0},
    {"klaviyo.key", LP_CONF_STRING, "pk_sandbox", C(key[SB_KLAVIYO]),
     "Accepted Klaviyo private keys (Klaviyo-API-Key), comma-separated", 0, 0},
    {"braze.key", LP_CONF_STRING, "sandbox-braze-key", C(key[SB_BRAZE]),
     "Accepted Braze REST API keys (Bearer), comma-separated", 0, 0},
    {"llm.key", LP_CONF_STRING, "sandbox-llm-key", C(key[SB_LLM]),
     "Accepted chat-completions API keys (Bearer), comma-separated", 0, 0},
    {"llm.mode", LP_CONF_STRING, "ok", C(llm_mode),
     "Chat completions: ok, empty, long, wrong_amount, slow, error or "
     "rate_limited (POST /_sandbox/llm changes it)",
     0, 0},
    {"llm.slow.ms", LP_CONF_INT, "3000", C(llm_slow_ms),
     "Chat completions: how late llm.mode=slow answers", 0, 600000},
    {"loyaltylion.rate", LP_CONF_INT, "20", C(ll_rate),
     "LoyaltyLion requests per second per key", 1, 1000000},
    {"loyaltylion.retry_after", LP_CONF_INT, "1", C(ll_retry_after),
     "Retry-After seconds on LoyaltyLion 429s; 0 = send none (UNCONFIRMED "
     "upstream)",
     0, 3600},
    {"loyaltylion.auto_create", LP_CONF_BOOL, "1", C(ll_auto_create),
     "Unknown merchant_id on points/PATCH creates the customer; 0 = 404 "
     "(UNCONFIRMED upstream)",
     0, 0},
    {"loyaltylion.activity_points", LP_CONF_INT, "0", C(ll_activity_points),
     "Points each tracked activity awards (stands in for the program's "
     "rules; 0 = none, no transaction)",
     0, 1000000},
    {"smile.rate", LP_CONF_INT, "10", C(smile_rate),
     "Smile.io requests per second per token", 1, 1000000},
    {"klaviyo.events.burst", LP_CONF_INT, "350", C(klaviyo_events_burst),
     "Klaviyo POST /api/events per second", 1, 1000000},
    {"klaviyo.events.steady", LP_CONF_INT, "3500", C(klaviyo_events_steady),
     "Klaviyo POST /api/events per minute", 1, 100000000},
    {"klaviyo.profiles.burst", LP_CONF_INT, "75", C(klaviyo_profiles_burst),
     "Klaviyo POST /api/profile-import per second", 1, 1000000},
    {"klaviyo.profiles.steady", LP_CONF_INT, "750", C(klaviyo_profiles_steady),
     "Klaviyo POST /api/profile-import per minute", 1, 100000000},
    {"braze.track.limit", LP_CONF_INT, "3000", C(braze_track_limit),
     "Braze /users/track requests per window", 1, 100000000},
    {"braze.track.window.s", LP_CONF_INT, "3", C(braze_track_window_s),
     "Braze /users/track window in seconds", 1, 3600},
    {"braze.track.combined", LP_CONF_BOOL, "1", C(braze_track_combined),
     "Cap /users/track at 75 objects combined; 0 = 75 of each kind "
     "(UNCONFIRMED upstream)",
     0, 0},
    {"braze.messaging.limit", LP_CONF_INT, "250000", C(braze_messaging_limit),
     "Braze campaign/canvas trigger sends per hour", 1, 100000000},
    {"dedupe.activities", LP_CONF_BOOL, "0", C(dedupe_activities),
     "1 = 422 for a repeated LoyaltyLion activity merchant_id or Smile "
     "token+distinct_id (UNCONFIRMED upstream)",
     0, 0},
    {"early.grace_ms", LP_CONF_INT, "100", C(early_grace_ms),
     "A request before a 429's retry time counts as early on the 429's "
     "connection, or on any other once this long after the 429 (in-flight "
     "requests); 0 = always",
     0, 60000},
    {"fault.latency_ms", LP_CONF_INT, "0", C(fault.latency_ms),
     "Added latency, slept after the effect is applied", 0, 600000},
    {"fault.error_rate", LP_CONF_DOUBLE, "0", C(fault.error_rate),
     "Probability (0..1) of a 5xx before anything is applied", 0, 0},
    {"fault.drop_rate", LP_CONF_DOUBLE, "0", C(fault.drop_rate),
     "Probability (0..1) of applying, then closing the connection unanswered",
     0, 0},
    {"fault.burst_429", LP_CONF_INT, "0", C(fault.burst_429),
     "The next N requests (any platform) get 429", 0, 1000000000},
    {"fault.retry_after_s", LP_CONF_INT, "0", C(fault.retry_after_s),
     "Retry delay told on every 429 (0 = each platform's own)", 0, 3600},
    FAULT_KEYS(SB_LOYALTYLION, "loyaltylion"),
    FAULT_KEYS(SB_SMILE, "smile"),
    FAULT_KEYS(SB_KLAVIYO, "klaviyo"),
    FAULT_KEYS(SB_BRAZE, "braze"),
    FAULT_KEYS(SB_LLM, "llm"),
    /* ---- shop side (shop.h) ---- */
    {"shop.orders", LP_CONF_INT, "1000", C(shop_orders),
     "Shop side: generated orders at start-up (POST /_sandbox/shop changes "
     "it)",
     0, 1000000},
    {"shop.customers", LP_CONF_INT, "200", C(shop_customers),
     "Shop side: generated customers at start-up", 1, 1000000},
    {"shop.seed", LP_CONF_INT, "1", C(shop_seed),
     "Shop side: seed of the generated shop (order k is a pure function of "
     "seed and k)",
     0, 0},
};
#undef FAULT_KEYS
#undef C

static const char usage_head[] =
    "NAME\n"
    "  sandbox - LoyaltyLion, Smile.io, Klaviyo, Braze and an OpenAI-style\n"
    "  chat-completions stub emulated on one local HTTP server, for\n"
    "  development and tests only; plus a generated shop served as Shopify\n"
    "  and BigCommerce REST, and a signed webhook sender and sink\n"
    "\n"
    "SYNOPSIS\n"
    "  sandbox [--port N] [--port-file FILE] [--seed N] [-c FILE]\n"
    "          [-X key=value]... [--help] [--version]\n"
    "\n"
    "DESCRIPTION\n"
    "  Answers the real paths of the four platforms the executor calls,\n"
    "  with their authentication, status codes, bodies, rate limits and\n"
    "  rate headers (docs/sandbox.md says where it differs), and\n"
    "  POST /v1/chat/completions with deterministic replies built from\n"
    "  the prompt's facts, in a mode set with -X llm.mode or at run time\n"
    "  with POST /_sandbox/llm. Every applied\n"
    "  effect is recorded in a ledger that tests read back; faults\n"
    "  (latency, 5xx, apply-then-drop, 429 bursts) are set at start-up\n"
    "  with -X or at run time with POST /_sandbox/faults. Ids and fault\n"
    "  rolls come from a PRNG seeded with --seed.\n"
    "\n"
    "  DEV/TEST ONLY: all state is in memory and lost at exit; it listens\n"
    "  on 127.0.0.1 only; the ledger is capped at ledger.max effects.\n"
    "  Once listening it logs one JSON line with the port and writes the\n"
    "  port to --port-file. SIGTERM or SIGINT stops it cleanly.\n"
    "\n"
    "OPTIONS\n"
    "  --port N              same as -X port=N\n"
    "  --port-file FILE      same as -X port.file=FILE\n"
    "  --seed N              same as -X seed=N\n"
    "  -c, --config FILE     'key = value' lines, '#' comments\n"
    "  -X, --set KEY=VALUE   set one key (repeatable); keys below\n"
    "  -h, --help            this text\n"
    "  -V, --version         print the version\n"
    "  Keys are layered: defaults < -c FILE < environment LOYALTY_<KEY>\n"
    "  (upper case, '.' as '_') < -X. Unknown keys are errors.\n"
    "\n";
/* print_help appends the key table to the OPTIONS section. */

static const char usage_tail[] =
    "\n"
    "ENDPOINTS\n"
    "  LoyaltyLion (Authorization: Bearer <loyaltylion.key>)\n"
    "    POST  /v2/customers/{merchant_id}/points         201\n"
    "    POST  /v2/customers/{merchant_id}/remove_points  204 (422 below 0)\n"
    "    POST  /v2/activities                             201\n"
    "    PATCH /v2/customers/{merchant_id}                200 {customer}\n"
    "    GET   /v2/customers/{merchant_id}/transactions   200\n"
    "  Smile.io (Authorization: Bearer <smile.key>)\n"
    "    POST  /v1/points_transactions                    201 (422 below 0)\n"
    "    GET   /v1/points_transactions                    200\n"
    "    POST  /v1/activities                             201\n"
    "    GET   /v1/customers/{id}                         200\n"
    "  Klaviyo (Authorization: Klaviyo-API-Key <klaviyo.key>, revision:)\n"
    "    POST  /api/events[/]                             202 (unique_id "
    "dedupe)\n"
    "    POST  /api/profile-import[/]                     201 new / 200\n"
    "  Braze (Authorization: Bearer <braze.key>)\n"
    "    POST  /users/track                               201\n"
    "    POST  /campaigns/trigger/send                    201 {dispatch_id}\n"
    "    POST  /canvas/trigger/send                       201 {dispatch_id}\n"
    "  Chat completions (Authorization: Bearer <llm.key>)\n"
    "    POST  /v1/chat/completions                       200 "
    "chat.completion\n"
    /* ---- shop side (shop.h) ---- */
    "  Shopify REST for importers (X-Shopify-Access-Token: shopify_token;\n"
    "  leaky bucket, X-Shopify-Shop-Api-Call-Limit, 429 + Retry-After)\n"
    "    GET   /admin/api/{version}/orders.json             {orders}, Link "
    "paging\n"
    "          ?status=open|closed|cancelled|any&limit=1..250&since_id=\n"
    "          &created_at_min/max=&updated_at_min/max=&financial_status=\n"
    "          &fields=  (page_info=: only with limit and fields)\n"
    "    GET   /admin/api/{version}/orders/{id}.json        {order} or 404\n"
    "    GET   /admin/api/{version}/orders/count.json       {count}\n"
    "    GET   /admin/api/{version}/customers.json          {customers}, Link "
    "paging\n"
    "    GET   /admin/api/{version}/customers/{id}.json     {customer}\n"
    "    GET   /admin/api/{version}/customers/count.json    {count}\n"
    "  BigCommerce REST (X-Auth-Token: bigcommerce_token; bc_quota per\n"
    "  bc_window_ms, X-Rate-Limit-* headers, 429)\n"
    "    GET   /stores/{store_hash}/v2/orders               [orders], 204 past "
    "the end\n"
    "          ?page=&limit=1..250&min_id=&max_id=&sort=id:asc|id:desc\n"
    "          &min/max_date_created=&min/max_date_modified=&status_id=\n"
    "          &customer_id=\n"
    "    GET   /stores/{store_hash}/v2/orders/count         {count, statuses}\n"
    "    GET   /stores/{store_hash}/v2/orders/{id}          order or 404\n"
    "    GET   /stores/{store_hash}/v2/orders/{id}/products lines (+ brand, "
    "category:\n"
    "          sandbox extras)\n"
    "    GET   /stores/{store_hash}/v3/customers?id:in=1,2  {data, meta}\n"
    "    GET   /stores/{store_hash}/v3/orders/{id}/payment_actions/refunds\n"
    "  Shop control (no auth)\n"
    "    GET   /_sandbox/shop    configuration and statistics\n"
    "    POST  /_sandbox/shop    {\"orders\":N, \"customers\":M, \"seed\":S, "
    "\"shop\", \"store_hash\",\n"
    "          \"start\", \"order_gap_s\", \"shopify_token\", "
    "\"bigcommerce_token\",\n"
    "          \"bucket_size\", \"leak_per_s\", \"bc_quota\", "
    "\"bc_window_ms\",\n"
    "          \"burst_429_permille\", \"cancel_permille\", "
    "\"refund_permille\"}\n"
    "          (omitted fields unchanged; resets buckets and quota)\n"
    "    POST  /_sandbox/webhooks/send  {\"platform\":\"shopify\"|"
    "\"bigcommerce\", \"url\",\n"
    "          \"secret\", \"header\", \"topic\", \"first\", \"count\",\n"
    "          \"duplicate_permille\", \"reorder_window\", \"retries\",\n"
    "          \"retry_backoff_ms\", \"concurrency\", \"timeout_ms\", "
    "\"api_version\"}\n"
    "          -> {deliveries, attempts, status, failed, event_ids, ...};\n"
    "          url must be http:// on 127.0.0.0/8\n"
    "    POST  /_sandbox/webhooks/sink         records a delivery (HMAC / "
    "header\n"
    "          checked), 503 to the first fail_first attempts per event\n"
    "    GET   /_sandbox/webhooks/sink[?since_seq=N]  what it received\n"
    "    GET   /_sandbox/webhooks/sink/config\n"
    "    POST  /_sandbox/webhooks/sink/config  {\"secret\", \"header\", "
    "\"fail_first\",\n"
    "          \"fail_status\", \"clear\"}\n"
    "  Control (no auth, not counted, no faults)\n"
    "    GET   "
    "/_sandbox/ledger[?platform=P][&member=M][&kind=K][&since_seq=N]\n"
    "    GET   /_sandbox/stats\n"
    "    GET   /_sandbox/faults\n"
    "    POST  /_sandbox/faults  {\"platform\":\"*\"|P, \"latency_ms\":N,\n"
    "          \"error_rate\":F, \"drop_rate\":F, \"burst_429\":N,\n"
    "          \"retry_after_s\":N}  (omitted fields unchanged)\n"
    "    GET   /_sandbox/llm     mode, slow_ms, counters by mode, last prompt\n"
    "    POST  /_sandbox/llm     {\"mode\":M, \"slow_ms\":N}  (omitted fields "
    "unchanged)\n"
    "    POST  /_sandbox/reset   clears ledger, stats, rate windows, state\n"
    "          (and the shop side's buckets, statistics and sink records)\n"
    "\n"
    "EXAMPLES\n"
    "  sandbox --port 8089\n"
    "  curl -s -X POST localhost:8089/v2/customers/42/points \\\n"
    "    -H 'Authorization: Bearer sandbox-ll-key' \\\n"
    "    -H 'Content-Type: application/json' \\\n"
    "    -d '{\"points\":500,\"reason\":\"dec_1\"}'\n"
    "  curl -s 'localhost:8089/_sandbox/ledger?platform=loyaltylion'\n"
    "  curl -s -X POST localhost:8089/_sandbox/faults \\\n"
    "    -d '{\"platform\":\"klaviyo\",\"drop_rate\":0.2,\"latency_ms\":300}'\n"
    "  curl -s -X POST localhost:8089/v1/chat/completions \\\n"
    "    -H 'Authorization: Bearer sandbox-llm-key' \\\n"
    "    -d '{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
    "\"content\":\"points: 500\"}]}'\n"
    "  curl -s -X POST localhost:8089/_sandbox/llm -d '{\"mode\":\"slow\"}'\n"
    "  curl -s -X POST localhost:8089/_sandbox/shop -d '{\"orders\":100000}'\n"
    "  curl -s 'localhost:8089/admin/api/2025-01/orders.json?status=any&"
    "limit=250' \\\n"
    "    -H 'X-Shopify-Access-Token: shpat_sandbox' -D -\n"
    "  curl -s -X POST localhost:8089/_sandbox/webhooks/send -d '{\n"
    "    \"platform\":\"shopify\",\"topic\":\"orders/create\",\"count\":100,\n"
    "    \"url\":\"http://127.0.0.1:8080/webhooks/shopify\",\"secret\":\"s\",\n"
    "    \"duplicate_permille\":50,\"reorder_window\":10,\"retries\":3}'\n"
    "  sandbox --seed 7 -X loyaltylion.retry_after=0 -X "
    "fault.error_rate=0.05\n"
    "\n"
    "EXIT STATUS\n"
    "  0 after SIGTERM/SIGINT or --help, 2 on bad configuration or when\n"
    "  the port cannot be bound\n";

static const char *type_name(enum lp_config_type t) {
  switch (t) {
  case LP_CONF_STRING:
    return "string";
  case LP_CONF_INT:
    return "int";
  case LP_CONF_DOUBLE:
    return "number";
  case LP_CONF_BOOL:
    return "bool";
  }
  return "?";
}

static void print_help(void) {
  fputs(usage_head, stdout);
  printf("  Keys of -X key=value, with type and default:\n");
  for (size_t i = 0; i < LP_ARRAY_LEN(config_table); i++) {
    const struct lp_config_entry *e = &config_table[i];
    printf("  %-30s %-7s default: %s\n", e->key, type_name(e->type),
           *e->default_value ? e->default_value : "(empty)");
    printf("      %s", e->help);
    if (e->type == LP_CONF_INT && (e->min || e->max))
      printf(" [%ld..%ld]", e->min, e->max);
    printf("\n");
  }
  fputs(usage_tail, stdout);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

/*
 * Rewrites --port/--port-file/--seed (also as --opt=value) into -X pairs
 * so the shared config loader sees one syntax. Returns a new argv the
 * caller frees with free_args (its strings are copies), or NULL with
 * errstr.
 */
static char **translate_args(int argc, char **argv, int *out_argc, char *errstr,
                             size_t errstr_size) {
  static const struct {
    const char *flag, *key;
  } flags[] = {
      {"--port", "port"}, {"--port-file", "port.file"}, {"--seed", "seed"}};
  char **out = lp_xcalloc((size_t)argc * 2 + 1, sizeof(char *));
  int n = 0;
  out[n++] = lp_xstrdup(argv[0]);
  for (int i = 1; i < argc; i++) {
    size_t f = 0;
    const char *value = NULL;
    for (; f < LP_ARRAY_LEN(flags); f++) {
      size_t len = strlen(flags[f].flag);
      if (strcmp(argv[i], flags[f].flag) == 0) {
        if (i + 1 >= argc) {
          lp_err(errstr, errstr_size, "%s needs a value", flags[f].flag);
          goto fail;
        }
        value = argv[++i];
        break;
      }
      if (strncmp(argv[i], flags[f].flag, len) == 0 && argv[i][len] == '=') {
        value = argv[i] + len + 1;
        break;
      }
    }
    if (f < LP_ARRAY_LEN(flags)) {
      out[n++] = lp_xstrdup("-X");
      out[n++] = lp_xasprintf("%s=%s", flags[f].key, value);
    } else {
      out[n++] = lp_xstrdup(argv[i]);
    }
  }
  *out_argc = n;
  return out;
fail:
  for (int i = 0; i < n; i++)
    free(out[i]);
  free(out);
  return NULL;
}

static void free_args(char **args, int n) {
  for (int i = 0; args && i < n; i++)
    free(args[i]);
  free(args);
}

/* Checks what the table cannot express; 0 or -1 with errstr. */
static int check_settings(const struct sb_settings *s, char *errstr,
                          size_t errstr_size) {
  if (s->fault.error_rate < 0 || s->fault.error_rate > 1 ||
      s->fault.drop_rate < 0 || s->fault.drop_rate > 1)
    return lp_err(errstr, errstr_size,
                  "fault.error_rate and fault.drop_rate must be in 0..1");
  for (int p = 0; p < SB_N_PLATFORMS; p++) {
    const struct sb_faults *f = &s->fault_for[p];
    if ((f->error_rate != -1 && (f->error_rate < 0 || f->error_rate > 1)) ||
        (f->drop_rate != -1 && (f->drop_rate < 0 || f->drop_rate > 1)))
      return lp_err(errstr, errstr_size,
                    "fault.%s.error_rate/drop_rate must be -1 or in 0..1",
                    sb_platform_name((enum sb_platform)p));
    if (!*s->key[p])
      return lp_err(errstr, errstr_size, "%s.key must not be empty",
                    sb_platform_name((enum sb_platform)p));
  }
  if (sb_llm_mode_parse(s->llm_mode) < 0)
    return lp_err(errstr, errstr_size,
                  "llm.mode: \"%s\" is not ok, empty, long, wrong_amount, "
                  "slow, error or rate_limited",
                  s->llm_mode);
  return 0;
}

/* Writes the port to a temporary name and renames it, so a reader never
 * sees half a number. */
static int write_port_file(const char *path, int port, char *errstr,
                           size_t errstr_size) {
  char *tmp = lp_xasprintf("%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int rc = 0;
  if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 ||
      rename(tmp, path) != 0)
    rc = lp_err(errstr, errstr_size, "port.file %s: %s", path, strerror(errno));
  free(tmp);
  return rc;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      print_help();
      return 0;
    }
  struct sb_settings settings;
  struct lp_kafka_props kafka;
  memset(&settings, 0, sizeof(settings));
  memset(&kafka, 0, sizeof(kafka));
  char err[512];
  int exit_code = 2, args_n = 0, port_written = 0;
  struct sandbox *sb = NULL;
  struct sb_server *server = NULL;
  lp_log_init("sandbox", LP_LOG_INFO);

  char **args = translate_args(argc, argv, &args_n, err, sizeof(err));
  if (!args) {
    fprintf(stderr, "sandbox: %s\n", err);
    goto done;
  }
  int rc = lp_config_load(config_table, LP_ARRAY_LEN(config_table), &settings,
                          &kafka, args_n, args, usage_head, err, sizeof(err));
  if (rc != 0) {
    if (rc < 0)
      fprintf(stderr, "sandbox: %s\n", err);
    exit_code = rc < 0 ? 2 : 0;
    goto done;
  }
  if (kafka.n > 0) {
    fprintf(stderr, "sandbox: kafka.%s: the sandbox takes no kafka.* keys\n",
            kafka.names[0]);
    goto done;
  }
  if (check_settings(&settings, err, sizeof(err)) != 0) {
    fprintf(stderr, "sandbox: %s\n", err);
    goto done;
  }
  enum lp_log_level level;
  if (lp_log_level_parse(settings.log_level, &level) != 0) {
    fprintf(stderr, "sandbox: log.level: unknown level \"%s\"\n",
            settings.log_level);
    goto done;
  }
  lp_log_set_level(level);

  /* Signals are blocked in every thread (the server's inherit the mask)
   * and taken only by sigsuspend below: the handler just sets a flag. */
  sigset_t block, orig;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  pthread_sigmask(SIG_BLOCK, &block, &orig);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  sb = sb_new(&settings);
  sb->shop = sb_shop_new(&settings); /* shop side (shop.h) */
  server = sb_server_start(sb, settings.bind, (int)settings.port,
                           (unsigned)settings.connections_max,
                           (size_t)settings.body_max, err, sizeof(err));
  if (!server) {
    fprintf(stderr, "sandbox: %s\n", err);
    goto done;
  }
  int port = sb_server_port(server);
  if (*settings.port_file) {
    if (write_port_file(settings.port_file, port, err, sizeof(err)) != 0) {
      fprintf(stderr, "sandbox: %s\n", err);
      goto done;
    }
    port_written = 1;
  }
  LP_INFO("listening",
          "\"host\":%s,\"port\":%d,\"seed\":%ld,\"ledger_max\":%ld",
          lp_log_str(settings.bind), port, settings.seed, settings.ledger_max);
  while (!stop)
    sigsuspend(&orig);
  LP_INFO("stopping", NULL);
  exit_code = 0;

done:
  if (sb) {
    sb_shutdown(sb);
    sb_shop_shutdown(sb->shop);
  }
  sb_server_stop(&server);
  if (sb)
    sb_shop_destroy(&sb->shop);
  sb_destroy(&sb);
  if (port_written)
    unlink(settings.port_file);
  lp_config_free(config_table, LP_ARRAY_LEN(config_table), &settings, &kafka);
  free_args(args, args_n);
  return exit_code;
}
