/*
 * copywriter.h — generated message copy as pure functions (no I/O, unit
 * tested): the chat-completions request that asks an OpenAI-compatible
 * model to draft a decision's message text, reading its answer, and the
 * guardrail that decides whether the text may be sent.
 *
 * The prompt carries facts of the decision only (kind, amounts, brand,
 * category, template, channel, segment), one "key: value" per line, never
 * the member's name, email or ids: the model writes around the facts and
 * the guardrail checks it kept to them. Text that fails the guardrail is
 * never sent; the template alone goes instead, and the audit record says
 * why (executor.c).
 */
#ifndef LP_COPYWRITER_H
#define LP_COPYWRITER_H

#include <stddef.h>

#include "adapters.h"
#include "events.h"

struct lp_copy_conf {
  const char *url;   /* chat completions endpoint, e.g.
                        https://api.openai.com/v1/chat/completions */
  const char *model; /* e.g. "gpt-4o-mini" */
  const char *key;   /* bearer token (borrowed; never logged) */
  int max_chars;     /* longest text accepted (characters) */
};

/* 1 when d is a kind whose message copy can be generated (message,
 * discount_code, points with a template): the platforms send text. */
int lp_copy_applies(const struct lp_reward_decision *d);

/* The facts of d the model may use, "key: value" lines (caller frees):
 * also the audit record's copy_prompt. */
char *lp_copy_facts(const struct lp_reward_decision *d);

/* The chat-completions request for d with those facts. 0, or -1 with
 * errstr. */
int lp_copy_request(const struct lp_copy_conf *c,
                    const struct lp_reward_decision *d, const char *facts,
                    struct lp_http_request *out, char *errstr,
                    size_t errstr_size);

/* The answer's text (choices[0].message.content, caller frees) from a 200
 * response; NULL with errstr when the body is not a completion. */
char *lp_copy_parse(const char *body, size_t len, char *errstr,
                    size_t errstr_size);

/*
 * The guardrail: 0 when text may be sent for d, else -1 with the reason
 * in errstr: empty, longer than max_chars characters, not UTF-8, or it
 * names a percentage, a points amount or a money amount other than the
 * decision's own (a percentage or points where the decision gives none
 * counts as other).
 */
int lp_copy_check(const struct lp_reward_decision *d, const char *text,
                  int max_chars, char *errstr, size_t errstr_size);

/* The request body of a platform event with the copy added as the
 * event property loyalty_copy (Klaviyo or Braze). 0, or -1 when the body
 * is not the adapters' event shape. */
int lp_copy_attach(struct lp_http_request *r, enum lp_platform p,
                   const char *text);

#endif
