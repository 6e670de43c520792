/*
 * sandbox.h — the development/test emulation of the four platforms the
 * executor calls (LoyaltyLion, Smile.io, Klaviyo, Braze) and of the
 * OpenAI-compatible chat-completions API its generated message copy uses
 * (the fifth "platform", llm): shared types.
 *
 * One struct sandbox holds all state behind one mutex: settings, the
 * seeded PRNG, the fault table, per-platform statistics, the effects
 * ledger, rate-limit windows per client and each platform's world state
 * (balances, transactions, profiles, dedupe sets). Everything is in memory
 * and bounded by ledger.max: every piece of world state is created by an
 * effect, and no effect is applied once the ledger is full.
 *
 * A request flows server.c (libmicrohttpd) -> dispatch.c (auth, limits,
 * faults, in a fixed order) -> the platform's handler (validation and
 * effects) or control.c (/_sandbox/...). Handlers run with the lock held
 * and never block; added latency is slept after the lock is released.
 *
 * The shop side (Shopify and BigCommerce REST for importers, the webhook
 * sender and sink) is declared in shop.h and keeps its own lock: requests
 * for it are handed over before the lock above is taken.
 */
#ifndef SB_SANDBOX_H
#define SB_SANDBOX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "strmap.h"

enum sb_platform {
  SB_LOYALTYLION = 0,
  SB_SMILE,
  SB_KLAVIYO,
  SB_BRAZE,
  SB_LLM, /* chat completions (llm.c): counted and faulted, no effects */
  SB_N_PLATFORMS
};

/* Behaviour of the chat-completions stub: enum constant, name. */
#define SB_LLM_MODES(X)                                                        \
  X(SB_LLM_OK, "ok")                                                           \
  X(SB_LLM_EMPTY, "empty")                                                     \
  X(SB_LLM_LONG, "long")                                                       \
  X(SB_LLM_WRONG_AMOUNT, "wrong_amount")                                       \
  X(SB_LLM_SLOW, "slow")                                                       \
  X(SB_LLM_ERROR, "error")                                                     \
  X(SB_LLM_RATE_LIMITED, "rate_limited")

#define SB_LLM_MODE_ENUM(name, text) name,
enum sb_llm_mode { SB_LLM_MODES(SB_LLM_MODE_ENUM) SB_N_LLM_MODES };
#undef SB_LLM_MODE_ENUM

/* Ledger effect kinds: enum constant, name in the ledger. */
#define SB_KINDS(X)                                                            \
  X(SB_KIND_POINTS, "points")                                                  \
  X(SB_KIND_REMOVE_POINTS, "remove_points")                                    \
  X(SB_KIND_ACTIVITY, "activity")                                              \
  X(SB_KIND_CUSTOMER_UPDATE, "customer_update")                                \
  X(SB_KIND_POINTS_TRANSACTION, "points_transaction")                          \
  X(SB_KIND_EVENT, "event")                                                    \
  X(SB_KIND_PROFILE, "profile")                                                \
  X(SB_KIND_TRACK_EVENT, "track_event")                                        \
  X(SB_KIND_TRACK_ATTRIBUTES, "track_attributes")                              \
  X(SB_KIND_TRACK_PURCHASE, "track_purchase")                                  \
  X(SB_KIND_CAMPAIGN_SEND, "campaign_send")                                    \
  X(SB_KIND_CANVAS_SEND, "canvas_send")

#define SB_KIND_ENUM(name, text) name,
enum sb_kind { SB_KINDS(SB_KIND_ENUM) SB_N_KINDS };
#undef SB_KIND_ENUM

/* One fault row. For a platform row, -1 in latency_ms, error_rate,
 * drop_rate or retry_after_s means "use the '*' row"; burst_429 is a
 * counter of its own on every row (a request consumes its platform's
 * counter first, then the '*' one). */
struct sb_faults {
  long latency_ms;
  double error_rate;
  double drop_rate;
  long burst_429;
  long retry_after_s;
};

/* Start-up settings (the config table of main.c writes them). */
struct sb_settings {
  char *bind; /* owned by the config (lp_config_free) */
  long port;
  char *port_file; /* owned by the config (lp_config_free) */
  long seed;
  char *log_level;
  long body_max;
  long ledger_max;
  long connections_max;
  char *key[SB_N_PLATFORMS]; /* comma-separated accepted credentials */
  long ll_rate;
  long ll_retry_after;
  int ll_auto_create;
  long ll_activity_points;
  long smile_rate;
  long klaviyo_events_burst, klaviyo_events_steady;
  long klaviyo_profiles_burst, klaviyo_profiles_steady;
  long braze_track_limit, braze_track_window_s, braze_messaging_limit;
  int braze_track_combined;
  int dedupe_activities;
  long early_grace_ms;
  char *llm_mode; /* owned by the config; checked by sb_llm_mode_parse */
  long llm_slow_ms;
  struct sb_faults fault;                     /* the '*' row */
  struct sb_faults fault_for[SB_N_PLATFORMS]; /* -1 = inherit */
  /* ---- shop side (shop.h): initial POST /_sandbox/shop values ---- */
  long shop_orders, shop_customers, shop_seed;
};

struct sb_stats {
  long requests;
  long by_status[600];
  long dropped_after_apply;
  long deduped;
  long early;
  long in_flight;
  long max_in_flight;
};

struct sb_effect {
  int64_t seq;
  int64_t time_ms;
  int64_t points;
  char *member;    /* owned */
  char *reference; /* owned; NULL = none */
  json_t *body;    /* a reference on the request's JSON */
  json_t *object;  /* the array element of a multi-effect request, or NULL */
  enum sb_platform platform;
  enum sb_kind kind;
};

struct sb_connection;
struct sb_ll_state;
struct sb_smile_state;
struct sb_klaviyo_state;
struct sb_llm_state;
struct sb_shop;

struct sandbox {
  pthread_mutex_t lock;
  pthread_cond_t wake; /* broadcast on shutdown, ends latency sleeps */
  int stopping;
  const struct sb_settings *settings; /* borrowed */
  uint64_t prng;
  int64_t started_ms;
  struct sb_faults faults[SB_N_PLATFORMS + 1]; /* [SB_N_PLATFORMS] = '*' */
  struct sb_stats stats[SB_N_PLATFORMS];
  struct sb_effect *ledger; /* owned, ledger_len used */
  size_t ledger_len, ledger_cap;
  int64_t next_seq;
  long ledger_refused;
  struct sb_map *clients; /* "platform/group/credential" -> sb_client */
  uint64_t generation;    /* bumped by reset: older connection promises void */
  struct sb_ll_state *ll;
  struct sb_smile_state *smile;
  struct sb_klaviyo_state *klaviyo;
  struct sb_llm_state *llm;
  struct sb_shop *shop; /* shop side (shop.h); owned by main.c, may be NULL */
  /* The stub's behaviour: like the fault table, kept across reset. */
  enum sb_llm_mode llm_mode;
  long llm_slow_ms;
};

/* A request as the handlers see it: everything borrowed from server.c. */
struct sb_request {
  const char *method;
  const char *path; /* percent-decoded, without the query string */
  const char *body;
  size_t body_len;
  json_t *json;           /* parsed body; NULL when empty or malformed */
  const char *json_error; /* why json is NULL although body_len > 0 */
  int too_large;          /* body exceeded body.max (not kept) */
  struct sb_connection *connection; /* the TCP connection's state, or NULL */
  int64_t now_ms;
  /* Header (case-insensitive) and query-argument look-ups; NULL = absent. */
  const char *(*header)(const struct sb_request *req, const char *name);
  const char *(*query)(const struct sb_request *req, const char *name);
  void *conn;
};

#define SB_MAX_HEADERS 8

struct sb_response {
  int status;
  char *body; /* owned (malloc); NULL = empty */
  size_t body_len;
  const char *content_type; /* static string */
  int n_headers;
  struct {
    const char *name; /* static string */
    char value[1536]; /* Shopify Link headers carry two URLs */
  } headers[SB_MAX_HEADERS];
  int drop; /* close the connection instead of answering */
  /* More latency the handler asks for (llm's slow mode): added to the
   * fault's and slept the same way, after the lock is released. */
  long extra_latency_ms;
};

/* Rate-limit windows: fixed, aligned to multiples of their length since
 * the epoch, counted per client (platform + rate group + credential). */
struct sb_window {
  long limit;
  int64_t length_ms;
};

/* The state of a client's windows for one request. */
struct sb_rate {
  int n; /* windows in use (0 = not limited) */
  long limit[2];
  long remaining[2]; /* after this request */
  int64_t reset_ms[2];
  int limited;      /* some window was full: the request was not counted */
  int64_t retry_ms; /* when limited: until the last full window resets */
};

enum sb_throttle_reason {
  SB_THROTTLE_RATE,
  SB_THROTTLE_FAULT,
  SB_THROTTLE_EARLY
};

/*
 * What dispatch.c needs from a platform. route returns an endpoint id
 * (>= 0), or -404 (unknown path) / -405 (known path, wrong method).
 */
struct sb_platform_ops {
  enum sb_platform platform;
  int (*owns)(const char *path);
  int (*route)(const char *method, const char *path);
  /* 0 with the credential (borrowed, *len bytes) or -1. */
  int (*auth)(const struct sandbox *sb, const struct sb_request *req,
              const char **credential, size_t *len);
  /* The platform's error envelope; code may be NULL. */
  void (*error)(struct sandbox *sb, struct sb_response *resp, int status,
                const char *code, const char *message);
  /* Header checks after auth (Klaviyo's revision); 0 or fills resp. May be
   * NULL. */
  int (*precheck)(struct sandbox *sb, int endpoint,
                  const struct sb_request *req, struct sb_response *resp);
  /* Windows of an endpoint (endpoint < 0: the platform's default group);
   * returns how many (0..2) and the group. */
  int (*limits)(const struct sandbox *sb, int endpoint, int *group,
                struct sb_window w[2]);
  /* Fills a 429. hint_ms > 0: say "retry in hint_ms" (a retry_after_s
   * fault, or what is left of an earlier promise); else the platform's own
   * value. Returns the epoch ms the client was told it may retry at, or 0
   * when the 429 says nothing. */
  int64_t (*throttle)(struct sandbox *sb, struct sb_response *resp,
                      enum sb_throttle_reason reason,
                      const struct sb_rate *rate, int64_t now_ms,
                      int64_t hint_ms);
  /* Rate headers on a response that is not a 429; may be NULL. */
  void (*decorate)(struct sandbox *sb, struct sb_response *resp,
                   const struct sb_rate *rate, int64_t now_ms);
  /* Validates and applies; called with the lock held. */
  void (*handle)(struct sandbox *sb, int endpoint, const struct sb_request *req,
                 struct sb_response *resp);
};

extern const struct sb_platform_ops sb_loyaltylion_ops;
extern const struct sb_platform_ops sb_smile_ops;
extern const struct sb_platform_ops sb_klaviyo_ops;
extern const struct sb_platform_ops sb_braze_ops;
extern const struct sb_platform_ops sb_llm_ops;

/* ---- state.c: lifecycle, PRNG, ledger, stats, faults, rate windows ---- */

/* settings is borrowed and must outlive the sandbox. */
struct sandbox *sb_new(const struct sb_settings *settings);
/* NULLs the caller's pointer; accepts NULL. */
void sb_destroy(struct sandbox **sb);
/* Wakes every latency sleep; later sleeps return at once. */
void sb_shutdown(struct sandbox *sb);
/* Clears ledger, stats (keeping requests in flight), rate windows and the
 * platforms' world state; the fault table stays. Lock held. */
void sb_reset(struct sandbox *sb);

const char *sb_platform_name(enum sb_platform p);
/* -1 when unknown. */
int sb_platform_parse(const char *name);
const char *sb_kind_name(enum sb_kind k);

/* Uniform in [0, 1) from the seeded PRNG (lock held). */
double sb_random(struct sandbox *sb);
uint64_t sb_random_u64(struct sandbox *sb);
/* A version-4 UUID from the PRNG; out holds 37 bytes. */
void sb_uuid(struct sandbox *sb, char out[37]);

/* 0 when n more effects fit, else -1 (counted and logged). Check before
 * changing any world state, so a refused request changes nothing. */
int sb_ledger_reserve(struct sandbox *sb, size_t n);
/* Appends one effect. member and reference are copied (reference may be
 * NULL); body and object get a new reference (object may be NULL). */
void sb_ledger_add(struct sandbox *sb, enum sb_platform p, enum sb_kind kind,
                   const char *member, int64_t points, const char *reference,
                   json_t *body, json_t *object, int64_t now_ms);
/* {"effects":[...]} filtered (NULL / -1 = any); caller owns the result. */
json_t *sb_ledger_json(const struct sandbox *sb, int platform,
                       const char *member, int kind, int64_t since_seq);
json_t *sb_stats_json(const struct sandbox *sb);

/* The effective fault row of a platform ('*' filled in). */
struct sb_faults sb_faults_effective(const struct sandbox *sb,
                                     enum sb_platform p);
/* Consumes one injected 429 when one is pending for p; returns 1 if so. */
int sb_faults_take_429(struct sandbox *sb, enum sb_platform p);
/* Applies a POST /_sandbox/faults body; 0, or -1 with errstr (nothing
 * changed). */
int sb_faults_update(struct sandbox *sb, json_t *body, char *errstr,
                     size_t errstr_size);
json_t *sb_faults_json(const struct sandbox *sb);

/* A client's windows and its "not before" promise (owned by sb->clients). */
struct sb_client {
  int64_t start_ms[2];
  long count[2];
  int64_t not_before_ms; /* 0 = nothing promised */
  int64_t told_at_ms;    /* when the first 429 of that promise was sent */
};

/* Per TCP connection (owned by server.c): the last promise made on it.
 * A client that sends again on the connection that carried the 429 has
 * read it (HTTP/1.1 answers in order), so that request is early however
 * soon it comes. */
struct sb_connection {
  uint64_t generation; /* sb->generation when the promise was made */
  int platform, group;
  uint64_t credential_hash;
  int64_t not_before_ms;
  int64_t told_at_ms; /* when the 429 went out on this connection */
};
struct sb_client *sb_client_get(struct sandbox *sb, enum sb_platform p,
                                int group, const char *credential, size_t len);
/* Fills rate for the client's windows at now_ms; when take, counts the
 * request unless a window is full (rate->limited). */
void sb_rate_check(struct sb_client *c, int n, const struct sb_window *w,
                   int64_t now_ms, int take, struct sb_rate *rate);

/* ---- dispatch.c ---- */

/* Serves one request with the lock taken inside; *latency_ms is what to
 * sleep before answering, *platform the platform (-1: control or unknown)
 * for sb_request_done. */
void sb_dispatch(struct sandbox *sb, const struct sb_request *req,
                 struct sb_response *resp, long *latency_ms, int *platform);
/* Sleeps (interruptibly) and ends the in-flight count of platform. */
void sb_request_done(struct sandbox *sb, int platform, long latency_ms);

/* ---- control.c: /_sandbox/... (lock held) ---- */
void sb_control_serve(struct sandbox *sb, const struct sb_request *req,
                      struct sb_response *resp);

/* ---- platform world state (each platform's .c) ---- */
struct sb_ll_state *sb_ll_state_new(void);
void sb_ll_state_destroy(struct sb_ll_state **s);
struct sb_smile_state *sb_smile_state_new(void);
void sb_smile_state_destroy(struct sb_smile_state **s);
struct sb_klaviyo_state *sb_klaviyo_state_new(void);
void sb_klaviyo_state_destroy(struct sb_klaviyo_state **s);
struct sb_llm_state *sb_llm_state_new(void);
void sb_llm_state_destroy(struct sb_llm_state **s);

/* ---- llm.c: the chat-completions stub's modes and control ---- */

/* -1 when unknown. */
int sb_llm_mode_parse(const char *name);
const char *sb_llm_mode_name(enum sb_llm_mode m);
/* The reply text for the facts ("key: value" lines, see docs/sandbox.md)
 * of a user message in a mode; pure. Caller frees. */
char *sb_llm_compose(const char *facts, enum sb_llm_mode mode);
/* Applies a POST /_sandbox/llm body ({"mode", "slow_ms"}); 0, or -1 with
 * errstr (nothing changed). Lock held. */
int sb_llm_update(struct sandbox *sb, json_t *body, char *errstr,
                  size_t errstr_size);
/* GET /_sandbox/llm: mode, slow_ms, counters, the last prompt; caller
 * owns the result. Lock held. */
json_t *sb_llm_json(const struct sandbox *sb);

/* ---- helpers.c: responses, JSON and path helpers ---- */

/* Sets status and a compact JSON body (body is stolen; NULL = empty). */
void sb_respond_json(struct sb_response *resp, int status, json_t *body,
                     const char *content_type);
void sb_respond_empty(struct sb_response *resp, int status);
void sb_response_header(struct sb_response *resp, const char *name,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sb_response_clear(struct sb_response *resp);

/* The token after "<scheme> " in an Authorization header, when the token
 * is one of the comma-separated accepted keys; 0 or -1. */
int sb_auth_scheme(const struct sb_request *req, const char *scheme,
                   const char *accepted, const char **credential, size_t *len);

/* Splits "/a/b/c" into at most max segments (pointers into path, not
 * terminated); returns the count, or -1 when there are more, an empty
 * segment or a trailing slash (unless allow_trailing). */
struct sb_segment {
  const char *s;
  size_t len;
};
int sb_path_split(const char *path, struct sb_segment *seg, int max,
                  int allow_trailing);
int sb_segment_is(const struct sb_segment *seg, const char *text);
/* Copy of a segment the caller frees. */
char *sb_segment_dup(const struct sb_segment *seg);

/* ISO 8601 UTC with milliseconds; out holds 32 bytes. */
void sb_format_time(int64_t ms, char out[32]);
json_t *sb_json_time(int64_t ms);
/* Parses a base-10 integer query value in [min, max]; 0 or -1. */
int sb_parse_long(const char *s, long long min, long long max, long long *out);
/* A string member, or NULL when absent or not a string (borrowed). */
const char *sb_json_string(const json_t *obj, const char *key);
/* Decimal text of an integer member or the string itself (caller frees);
 * NULL when absent, empty or another type. */
char *sb_json_id(const json_t *obj, const char *key);
/* 1 when s is YYYY-MM-DD with a real month and day. */
int sb_valid_date(const char *s);

#endif
