/*
 * model_watch.h — where a processor gets its member-value model from, and
 * how it notices a new one without a restart: a Redis key the trainer
 * publishes to (polled from the processor's loop), or a file (read at
 * start and again on request, e.g. SIGHUP, for replays pinned to one
 * model version).
 *
 * A poll that finds new content parses and validates it (model.h); a
 * model that does not parse is rejected with the reason and reported
 * once per distinct content, so the previous model stays in force and
 * the log does not fill up.
 */
#ifndef LP_MODEL_WATCH_H
#define LP_MODEL_WATCH_H

#include <stddef.h>

#include "model.h"

struct lp_model_watch_config {
  const char *redis_host; /* with key: where the model is published */
  int redis_port;
  int timeout_ms;   /* connect and command timeout */
  const char *key;  /* full Redis key, or NULL */
  const char *file; /* or a file path (key then unused), or NULL */
};

enum lp_model_poll {
  LP_MODEL_UNCHANGED = 0,   /* nothing new */
  LP_MODEL_NEW = 1,         /* *out holds a new valid model */
  LP_MODEL_REJECTED = 2,    /* new content that is not a valid model */
  LP_MODEL_UNAVAILABLE = 3, /* Redis unreachable, no key, unreadable file */
};

struct lp_model_watch;

/* Copies the config's strings. Never fails (Redis is reached lazily). */
struct lp_model_watch *
lp_model_watch_new(const struct lp_model_watch_config *c);
/* Accepts NULL and NULLs the pointer. */
void lp_model_watch_destroy(struct lp_model_watch **w);

/* Reads the source once. REJECTED and UNAVAILABLE fill errstr; each
 * distinct rejected content and each change of availability is returned
 * once, later polls of the same state return UNCHANGED. */
enum lp_model_poll lp_model_watch_poll(struct lp_model_watch *w,
                                       struct lp_model *out, char *errstr,
                                       size_t errstr_size);

/* "redis <host>:<port> key <key>" or "file <path>" (borrowed). */
const char *lp_model_watch_source(const struct lp_model_watch *w);

#endif
