/*
 * log.h — structured logs: one JSON object per line on stderr.
 *
 * Every line carries ts (UTC ISO 8601), level, proc (the processor name set
 * once with lp_log_init) and msg; callers add key/value context
 * (topic, partition, offset, decision_id, ...). Level-gated; thread-safe
 * (one write(2) per line). Never pass secrets or raw personal data.
 */
#ifndef LP_LOG_H
#define LP_LOG_H

#include <stdint.h>

enum lp_log_level { LP_LOG_DEBUG = 0, LP_LOG_INFO, LP_LOG_WARN, LP_LOG_ERROR };

/* proc is copied. Default level INFO. */
void lp_log_init(const char *proc, enum lp_log_level level);
void lp_log_set_level(enum lp_log_level level);
/* "debug" | "info" | "warn" | "error" -> 0, or -1 when unknown. */
int lp_log_level_parse(const char *name, enum lp_log_level *out);
int lp_log_enabled(enum lp_log_level level);

/*
 * Logs msg with context given as a NULL-terminated list of
 * (const char *key, const char *fmt-tagged value) pairs is awkward in C, so
 * context is a pre-formatted JSON fragment instead:
 *   lp_log(LP_LOG_WARN, "dead-lettered record",
 *          "\"topic\":%s,\"partition\":%d", lp_log_str(topic), part);
 * kvfmt may be NULL. Strings in the fragment must be JSON-escaped: use
 * lp_log_str() (thread-local ring of escaped, quoted copies).
 */
void lp_log(enum lp_log_level level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quoted, JSON-escaped copy of s ("null" for NULL), valid until 8 more calls
 * from the same thread. Truncates beyond 512 bytes. */
const char *lp_log_str(const char *s);

/* The level is checked before the arguments are evaluated, so a disabled
 * debug line costs nothing on the hot path. */
#define LP_LOG_AT(level, msg, ...)                                             \
  do {                                                                         \
    if (lp_log_enabled(level))                                                 \
      lp_log(level, msg, __VA_ARGS__);                                         \
  } while (0)
#define LP_DEBUG(msg, ...) LP_LOG_AT(LP_LOG_DEBUG, msg, __VA_ARGS__)
#define LP_INFO(msg, ...) LP_LOG_AT(LP_LOG_INFO, msg, __VA_ARGS__)
#define LP_WARN(msg, ...) LP_LOG_AT(LP_LOG_WARN, msg, __VA_ARGS__)
#define LP_ERROR(msg, ...) LP_LOG_AT(LP_LOG_ERROR, msg, __VA_ARGS__)

#endif
