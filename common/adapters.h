/*
 * adapters.h — how the executor talks to each platform, as pure functions
 * (no I/O, unit tested): which platform carries out a decision, the HTTP
 * request that does it, the request that checks whether an earlier
 * attempt already did it, and what a response means.
 *
 *   points          loyalty platform: LoyaltyLion add points (reason ends
 *                   "[<decision id>]"), or a Smile.io points transaction
 *                   (internal_note = decision id)
 *   message,        marketing platform: a Klaviyo event (unique_id =
 *   discount_code   decision id, so Klaviyo itself drops a repeat) or a
 *                   Braze /users/track event (properties.decision_id)
 *   tier_change     marketing platform profile property loyalty_tier
 *   reward          not carried out yet by any adapter (dead-lettered)
 *
 * Dedupe: Klaviyo's unique_id makes a resend harmless. LoyaltyLion and
 * Smile.io points have no dedupe, so after an ambiguous outcome (timeout,
 * connection dropped after sending, a lost claim) the executor first reads
 * the member's transactions for the decision's reference. Braze has
 * neither: an ambiguous Braze call is not resent (at most once) and is
 * reported failed with that reason.
 */
#ifndef LP_ADAPTERS_H
#define LP_ADAPTERS_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

enum lp_platform {
  LP_PLATFORM_NONE = -1,
  LP_PLATFORM_LOYALTYLION = 0,
  LP_PLATFORM_SMILE = 1,
  LP_PLATFORM_KLAVIYO = 2,
  LP_PLATFORM_BRAZE = 3,
};
#define LP_PLATFORM_COUNT 4
const char *lp_platform_name(enum lp_platform p);
/* "loyaltylion", "smile", "klaviyo", "braze" or "none"; 0 or -1. */
int lp_platform_parse(const char *name, enum lp_platform *out);

struct lp_platform_conf {
  const char *base_url; /* e.g. https://api.loyaltylion.com (borrowed) */
  const char *key;      /* credential (borrowed; never logged) */
};

struct lp_adapters_conf {
  enum lp_platform loyalty;   /* carries out points */
  enum lp_platform marketing; /* messages, discount offers, tiers */
  struct lp_platform_conf platforms[LP_PLATFORM_COUNT];
  const char *klaviyo_revision; /* pinned revision header */
};

/* The platform for a decision, or LP_PLATFORM_NONE with a reason. */
enum lp_platform lp_adapters_route(const struct lp_adapters_conf *c,
                                   const struct lp_reward_decision *d,
                                   char *errstr, size_t errstr_size);

#define LP_HTTP_MAX_HEADERS 6

/* One HTTP request, owned (lp_http_request_clear). */
struct lp_http_request {
  const char *method; /* static */
  char *url;
  char *body; /* NULL = none */
  char *headers[LP_HTTP_MAX_HEADERS];
  int n_headers;
  char *summary; /* method, path and amounts: safe to log and audit */
};
void lp_http_request_clear(struct lp_http_request *r);

/*
 * The request that carries out d on platform p. -1 with errstr when the
 * decision cannot be carried out there (a permanent problem of the
 * decision: negative or too many points, an unsupported kind, a Smile
 * customer id that is not a number); nothing is to be sent then.
 */
int lp_adapters_build(const struct lp_adapters_conf *c, enum lp_platform p,
                      const struct lp_reward_decision *d,
                      struct lp_http_request *out, char *errstr,
                      size_t errstr_size);

/* 1 when a resend after an ambiguous outcome is harmless (the platform
 * dedupes), 0 when the executor must check first (check_request), -1
 * when it can neither check nor resend safely (Braze). */
int lp_adapters_resend_safe(enum lp_platform p,
                            const struct lp_reward_decision *d);

/* The read that tells whether d was already applied (LoyaltyLion and
 * Smile.io points): the member's newest transactions. 0 or -1. */
int lp_adapters_check_request(const struct lp_adapters_conf *c,
                              enum lp_platform p,
                              const struct lp_reward_decision *d,
                              struct lp_http_request *out, char *errstr,
                              size_t errstr_size);

/* Whether a check response shows d applied: 1 yes (reference set), 0
 * no, -1 the response could not be read (errstr). */
int lp_adapters_check_result(enum lp_platform p,
                             const struct lp_reward_decision *d, int status,
                             const char *body, size_t len, char *reference,
                             size_t reference_size, char *errstr,
                             size_t errstr_size);

enum lp_response_class {
  LP_RESP_OK = 0,           /* applied */
  LP_RESP_RATE_LIMITED = 1, /* 429: wait retry_after_ms, then resend */
  LP_RESP_TRANSIENT = 2,    /* 5xx, 408: not applied, retry with backoff */
  LP_RESP_PERMANENT = 3,    /* 4xx: will never work (dead-letter) */
};

/* What the platform's rate headers said, as read from the response. */
struct lp_rate_headers {
  int64_t retry_after_s;   /* Retry-After, -1 absent */
  int64_t reset_s;         /* RateLimit-Reset (seconds), -1 absent */
  int64_t x_reset_epoch_s; /* X-RateLimit-Reset (epoch s), -1 absent */
  int64_t x_remaining;     /* X-RateLimit-Remaining, -1 absent */
};
void lp_rate_headers_init(struct lp_rate_headers *h);
/* Feeds one raw header line ("Name: value\r\n") into h. */
void lp_rate_headers_parse_line(struct lp_rate_headers *h, const char *line,
                                size_t len);

/*
 * Classifies a response. For RATE_LIMITED, *wait_ms is how long the
 * platform said to wait (default 1 s when it said nothing); reason gets a
 * short text for PERMANENT (the platform's own message where it has one)
 * and reference the platform's id for the effect where the response
 * carries one.
 */
enum lp_response_class lp_adapters_classify(
    enum lp_platform p, int status, const struct lp_rate_headers *h,
    int64_t now_epoch_ms, const char *body, size_t len, int64_t *wait_ms,
    char *reference, size_t reference_size, char *reason, size_t reason_size);

#endif
