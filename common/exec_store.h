/*
 * exec_store.h — the executor's state in Redis: one idempotency record per
 * decision, the guardrail counters and budgets, kill switches, the
 * approval queue and the per-platform rate schedule shared by every
 * executor instance. Used by the executor and by loyaltyctl.
 *
 * Keys (namespace ns; member keys carry the member's hash tag):
 *   <ns>:x:{shop:customer}:<decision id>  hash  idempotency record: s
 *         (state: inflight, done, failed, blocked, pending, rejected,
 *         expired), lease (ms, while inflight), n (attempts), p
 *         (platform), ref (the platform's reference), st (last HTTP
 *         status), g (guardrail), why, res (1 = budget reserved, 2 =
 *         spent, 0 = released), rc (cost reserved)
 *   <ns>:g:{shop:customer}:cost:<period>         int  member's reward cost
 *   <ns>:g:{shop:customer}:freq:<rule>:<period>  int  decisions of the rule
 *   <ns>:b:{<campaign>}:<period>                 int  campaign spend
 *   <ns>:budgets   hash  campaign -> budget per period (micros)
 *   <ns>:kill      hash  "all" | "rule:<id>" | "campaign:<id>" |
 *                        "platform:<name>" -> who set it and why
 *   <ns>:approval:pending  zset  decision id by expiry (ms)
 *   <ns>:approval:d:<decision id>  hash  the parked decision (Avro), its
 *                                        member key and campaign
 *   <ns>:rate:<platform>   string  rate schedule (GCRA arrival time, µs)
 *   <ns>:sync:{shop:customer}  hash  the member's last score sync done: p
 *         (P(alive) micros), c (CLV cents), s (segment), r (churn band),
 *         t (its event time ms); f, fl: the member's sync in flight
 *         (decision id, until when), one at a time
 * Costs are micro-units of the deployment's currency. A period is
 * event_time / period length (seconds), so a decision is judged in the
 * period of its trigger whenever it is executed.
 *
 * Exactly once: a decision is claimed (state inflight with a lease)
 * before any call, in the same script that checks the kill switches and
 * the guardrails and reserves the budget, so any number of executors in
 * parallel never overspend and never run one decision twice at a time. A
 * claim whose lease ran out (its executor died mid-call) is taken over
 * with `takeover` set: the call may or may not have happened, so the
 * caller reconciles with the platform before calling again. Finishing
 * records the outcome, spends the reservation (done) or returns it
 * (failed). Two Redis calls per decision: begin and finish.
 *
 * The guardrail counters of one decision live in different hash slots
 * (the member's, the campaign's), so the scripts need one Redis, not a
 * Redis Cluster. Not thread-safe.
 */
#ifndef LP_EXEC_STORE_H
#define LP_EXEC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

struct lp_exec_store;

struct lp_exec_store_config {
  const char *host; /* copied */
  int port;
  const char *ns;         /* executor namespace, copied */
  const char *profile_ns; /* the processors' namespace (member check) */
  int timeout_ms;
  long lease_ms;      /* a claim's lease */
  long record_ttl_s;  /* idempotency records (> the replay horizon) */
  int64_t member_cap; /* reward cost per member per period; 0 = none */
  long member_period_s;
  long frequency_cap; /* decisions per rule per member per period */
  long frequency_period_s;
  int64_t default_budget; /* per campaign per period unless set; 0 = none */
  long campaign_period_s;
  long approval_ttl_s; /* a parked decision expires after this */
  /* A score sync is blocked as unchanged when segment and churn band are
   * the member's last synced ones, P(alive) moved less than this (micros)
   * and the 12-month CLV less than this share of the last synced one
   * (ppm; a last CLV under 1.00 counts as 1.00). 0 and 0: every sync is
   * sent. */
  int64_t sync_min_p_alive_micros;
  long sync_min_clv_ppm;
};

struct lp_exec_store *lp_exec_store_new(const struct lp_exec_store_config *conf,
                                        char *errstr, size_t errstr_size);
void lp_exec_store_destroy(struct lp_exec_store **s);

enum lp_exec_verdict {
  LP_EXEC_CLAIMED = 0, /* go: call the platform (after wait_ms) */
  LP_EXEC_FINAL = 1,   /* decided before: state, platform, reference set */
  LP_EXEC_BUSY = 2,    /* another claim holds it for busy_ms more */
  LP_EXEC_BLOCKED = 3, /* a guardrail or kill switch: guardrail set */
  LP_EXEC_PENDING = 4, /* parked for approval, budget held */
  LP_EXEC_UNKNOWN_MEMBER = 5, /* no profile: nothing recorded */
};

/* One decision through begin. The caller fills the inputs. */
struct lp_exec_begin {
  const struct lp_reward_decision *d; /* borrowed */
  const char *campaign;               /* guardrail scope, borrowed */
  const char *platform;               /* who would carry it out, borrowed */
  int needs_approval;
  const void *decision_bytes; /* the record as consumed (for approval) */
  size_t decision_len;
  int64_t rate_interval_us; /* platform pacing: 1e6 / rate; 0 = none */
  int rate_burst;
  int check_member;  /* an unknown member (no profile) is refused */
  const char *token; /* this claimant's claim token (borrowed) */
  /* Outputs. */
  enum lp_exec_verdict verdict;
  int takeover;    /* CLAIMED after a lost claim: reconcile first */
  int attempts;    /* HTTP attempts already made (takeover) */
  int64_t wait_ms; /* CLAIMED: the platform's schedule says send then */
  int64_t busy_ms; /* BUSY */
  char state[16];  /* FINAL: the recorded state */
  char done_platform[24];
  char reference[160];
  int http_status;
  char guardrail[160]; /* BLOCKED, or FINAL blocked */
  char error[256];     /* a per-decision Redis error (verdict invalid) */
  int failed;
};

/*
 * Runs begin for n decisions in one pipeline. Returns 0 when every op has
 * a verdict (or failed with error set); -1 with errstr when Redis is
 * unreachable or answered a transient error (nothing can be assumed:
 * retry later; begin is safe to repeat).
 */
int lp_exec_store_begin(struct lp_exec_store *s, struct lp_exec_begin *ops,
                        size_t n, char *errstr, size_t errstr_size);

/* One decision's outcome. */
struct lp_exec_finish {
  const struct lp_reward_decision *d; /* borrowed */
  const char *campaign;               /* as given to begin */
  int done;                           /* 1 done (spend), 0 failed (release) */
  /* LP_EXEC_RECORD (default): done or failed as above. LP_EXEC_ABANDON: the
   * claim was never acted on (nothing sent): its reservation returns and
   * the record is deleted, as if begin had not run. LP_EXEC_UNCLAIM: the
   * same for an approved decision, which goes back to approved. */
  enum { LP_EXEC_RECORD = 0, LP_EXEC_ABANDON, LP_EXEC_UNCLAIM } outcome;
  const char *platform;
  const char *reference; /* may be NULL */
  int http_status;
  int attempts;
  const char *reason; /* may be NULL */
  const char *token;  /* the token the claim was made with */
  int not_inflight;   /* output: the record was not in flight under this
                         claim (taken over, or finished); nothing changed */
};

/* Records n outcomes in one pipeline. 0, or -1 with errstr (retry). */
int lp_exec_store_finish(struct lp_exec_store *s, struct lp_exec_finish *ops,
                         size_t n, char *errstr, size_t errstr_size);

/* Extends claims' leases, in one pipeline. A claim whose lease ran out
 * and was taken over by another claimant comes back lost: its holder must
 * not call the platform for it. 0, or -1 with errstr. */
struct lp_exec_renew {
  const struct lp_reward_decision *d; /* borrowed */
  const char *token;                  /* borrowed */
  int lost;                           /* output */
};
int lp_exec_store_renew(struct lp_exec_store *s, struct lp_exec_renew *ops,
                        size_t n, char *errstr, size_t errstr_size);

/* A platform answered 429 "not before until_ms" (epoch ms): every
 * executor's next claims for it (paced at interval_us with burst, as in
 * begin) are scheduled after that. 0 or -1. */
int lp_exec_store_rate_hold(struct lp_exec_store *s, const char *platform,
                            int64_t until_ms, int64_t interval_us, int burst,
                            char *errstr, size_t errstr_size);

/* Kill switches: scope is "all", "rule:<id>", "campaign:<id>" or
 * "platform:<name>"; note says who and why. 0, or -1 with errstr. */
int lp_exec_store_kill_set(struct lp_exec_store *s, const char *scope,
                           const char *note, char *errstr, size_t errstr_size);
int lp_exec_store_kill_clear(struct lp_exec_store *s, const char *scope,
                             char *errstr, size_t errstr_size);

/* A campaign's budget per period (micros; 0 = back to the default). */
int lp_exec_store_budget_set(struct lp_exec_store *s, const char *campaign,
                             int64_t budget, char *errstr, size_t errstr_size);

/*
 * The approval queue. A decision parked by begin (LP_EXEC_PENDING) waits
 * in <ns>:approval:pending until a person settles it (approved or
 * rejected, with who) or it expires. Settled decisions wait in
 * <ns>:approval:ready until an executor takes them: an approved one is
 * then claimed by begin like any other (its budget was held all along),
 * a rejected or expired one (budget returned when it was settled) is
 * reported. take_ready hides what it returns from other executors for
 * hide_ms, so a dead executor's share comes back; ready_done ends it.
 */
struct lp_exec_approval {
  char decision_id[40];
  char rule[128], campaign[128];
  int64_t parked_ms, until_ms; /* wall clock, ms */
  char fate[16];               /* "" while pending */
  char actor[128];
  void *decision; /* the decision as consumed (Avro), owned */
  size_t decision_len;
};
void lp_exec_approval_clear(struct lp_exec_approval *a);

/* Every pending decision (caller frees each and the array). */
int lp_exec_store_approvals(struct lp_exec_store *s,
                            struct lp_exec_approval **out, size_t *n,
                            char *errstr, size_t errstr_size);
/* fate: "approved" or "rejected" (or "expired", used by the sweep). -1
 * with errstr when the decision is not pending (never parked, settled
 * already, or expired). */
int lp_exec_store_settle(struct lp_exec_store *s, const char *decision_id,
                         const char *fate, const char *actor, char *errstr,
                         size_t errstr_size);
/* Expires up to max pending decisions whose time is up. */
int lp_exec_store_expire_due(struct lp_exec_store *s, size_t max,
                             size_t *expired, char *errstr, size_t errstr_size);
int lp_exec_store_take_ready(struct lp_exec_store *s, size_t max, long hide_ms,
                             struct lp_exec_approval **out, size_t *n,
                             char *errstr, size_t errstr_size);
int lp_exec_store_ready_done(struct lp_exec_store *s, const char *decision_id,
                             char *errstr, size_t errstr_size);

/* Redis calls made so far (scripts and commands), and the round trips
 * they took (a pipeline of many calls is one); for the benchmark. */
uint64_t lp_exec_store_calls(const struct lp_exec_store *s);
uint64_t lp_exec_store_round_trips(const struct lp_exec_store *s);

/* 1 when the last Redis exchange succeeded (for /healthz). */
int lp_exec_store_healthy(const struct lp_exec_store *s);

#endif
