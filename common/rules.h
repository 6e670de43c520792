/*
 * rules.h — reward rules as data: JSON files (format in docs/rules.md),
 * loaded into an immutable lp_ruleset and evaluated as a pure function of
 * (event, member profile just before the event, ruleset) -> decisions.
 *
 * Evaluation reads event time only, never the clock, so a replay decides
 * what the live run decided. A ruleset is immutable once loaded and may be
 * read from any thread; a reload builds a new one and swaps it (the old one
 * stays in force when the new files are invalid).
 */
#ifndef LP_RULES_H
#define LP_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "profile.h"
#include "timer_plan.h"

struct lp_arena;

struct lp_ruleset;

/*
 * Loads one JSON file, or every *.json file of a directory (sorted by name)
 * into one ruleset. Rule ids must be unique across files. On error returns
 * NULL and errstr holds "<file>: <position>: <reason>" where position is
 * "line L column C" for JSON syntax errors and a JSON path such as
 * "$.rules[2].when.all[1].op" for semantic ones.
 */
struct lp_ruleset *lp_ruleset_load(const char *path, char *errstr,
                                   size_t errstr_size);
/* Same, from a string (name is used in messages). */
struct lp_ruleset *lp_ruleset_load_string(const char *json, const char *name,
                                          char *errstr, size_t errstr_size);
void lp_ruleset_destroy(struct lp_ruleset **rs);

size_t lp_ruleset_count(const struct lp_ruleset *rs);
/* SHA-256 prefix of the loaded files' content (borrowed); logged on load. */
const char *lp_ruleset_digest(const struct lp_ruleset *rs);

/*
 * Decides for an order / customer event given the profile *before* it.
 * Appends 0..n decisions to *out (realloc'd array of *n_out items, owned by
 * the caller: lp_reward_decision_clear each, then free the array). With an
 * arena, the array and every string are allocated in it instead: *out
 * must then be NULL or from the same arena, and the decisions are neither
 * cleared nor freed; they live until the arena is reset.
 * Decisions come out in rule priority order, with deterministic ids
 * (decision.h) and their explanation filled.
 */
void lp_rules_decide_order(const struct lp_ruleset *rs,
                           const struct lp_order_event *ev,
                           const struct lp_profile *before,
                           struct lp_arena *arena,
                           struct lp_reward_decision **out, size_t *n_out);
void lp_rules_decide_customer(const struct lp_ruleset *rs,
                              const struct lp_customer_event *ev,
                              const struct lp_profile *before,
                              struct lp_arena *arena,
                              struct lp_reward_decision **out, size_t *n_out);

/*
 * Timer rules ("on": "timer", docs/rules.md): a rule that owns a member
 * timer (timer_plan.h) and decides when it fires. The processor plans a
 * timer per (rule, member) from these specs and, when the timer fires,
 * asks lp_rules_decide_timer for that one rule.
 */
struct lp_timer_rule {
  const char *rule_id; /* borrowed from the ruleset */
  int32_t rule_version;
  enum lp_timer_kind kind;
  int after_days;        /* winback, fixed: days after the last order; 0 */
  int64_t p_alive_below; /* winback, model: threshold in micros; 0 */
  int horizon_days;      /* winback, model: how far ahead to look */
  int lead_days;         /* replenishment: days before the expected date */
  int days_before;       /* birthday: days before the birthday */
  int after_minutes;     /* cart: minutes without checkout */
};

/* The ruleset's enabled timer rules, in rule order (borrowed array). */
size_t lp_ruleset_timer_rules(const struct lp_ruleset *rs,
                              const struct lp_timer_rule **out);

/* A fired timer as the rules see it (all borrowed). */
struct lp_timer_trigger {
  enum lp_timer_kind kind;
  const char *rule_id; /* the rule that planned it */
  const char *shop;
  const char *customer_id;
  const char *trigger_id; /* lp_timer_output_id: "<timer id>@<due ms>" */
  int64_t due_ms;         /* event time the rule is evaluated at */
};

/*
 * Decides for a fired timer: only the rule trigger->rule_id is evaluated
 * (none when it is gone, disabled or no longer a timer rule of that kind),
 * at trigger->due_ms, against the member's profile p and browse/cart
 * activity act (NULL: none). Decision ids come from trigger_id, so every
 * re-fire of one schedule gives the same ids. Output as the above.
 */
void lp_rules_decide_timer(const struct lp_ruleset *rs,
                           const struct lp_timer_trigger *trigger,
                           const struct lp_profile *p,
                           const struct lp_activity_view *act,
                           struct lp_arena *arena,
                           struct lp_reward_decision **out, size_t *n_out);

#endif
