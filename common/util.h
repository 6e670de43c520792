/*
 * util.h — small helpers every module uses: abort-on-OOM allocation, a
 * growable byte buffer, time and string helpers.
 *
 * Allocation failure is not a condition a stream processor can handle
 * usefully at run time, so lp_x* allocators abort loudly (as Redis does)
 * and call sites stay free of NULL checks.
 */
#ifndef LP_UTIL_H
#define LP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define LP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Abort with file:line when an invariant does not hold (kept in release). */
#define LP_ASSERT(cond)                                                        \
  do {                                                                         \
    if (!(cond))                                                               \
      lp_assert_fail(#cond, __FILE__, __LINE__);                               \
  } while (0)

void lp_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

void *lp_xmalloc(size_t size);
void *lp_xcalloc(size_t n, size_t size);
void *lp_xrealloc(void *ptr, size_t size);
/* Returns a copy the caller frees; NULL in, NULL out. */
char *lp_xstrdup(const char *s);
char *lp_xstrndup(const char *s, size_t n);
/* printf into a new string the caller frees. */
char *lp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer. data is owned by the buffer; lp_buf_free releases. */
struct lp_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
};

void lp_buf_init(struct lp_buf *b);
void lp_buf_free(struct lp_buf *b);
void lp_buf_reset(struct lp_buf *b); /* len = 0, keeps memory */
void lp_buf_reserve(struct lp_buf *b, size_t extra);
void lp_buf_append(struct lp_buf *b, const void *data, size_t len);
void lp_buf_append_byte(struct lp_buf *b, uint8_t byte);
void lp_buf_append_str(struct lp_buf *b, const char *s);
void lp_buf_appendf(struct lp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Ensures a NUL after len (not counted) and returns data as a C string. */
const char *lp_buf_cstr(struct lp_buf *b);

/*
 * Arena: many small allocations released together. For data that lives
 * exactly as long as one batch of records (decoded strings, decisions), it
 * replaces a malloc and a free per string with a pointer bump; reset keeps
 * the blocks for the next batch, so a steady stream allocates nothing.
 * Allocations are 8-byte aligned; lp_arena_free releases the blocks.
 */
struct lp_arena_block;
struct lp_arena {
  struct lp_arena_block *first, *cur;
  size_t used; /* bytes used in cur */
};

void lp_arena_init(struct lp_arena *a);
void lp_arena_free(struct lp_arena *a);
void lp_arena_reset(struct lp_arena *a);
void *lp_arena_alloc(struct lp_arena *a, size_t size);
/* Copies into the arena; NULL in, NULL out. */
char *lp_arena_strdup(struct lp_arena *a, const char *s);
char *lp_arena_strndup(struct lp_arena *a, const char *s, size_t n);
/* The arena's copy when a is non-NULL, else lp_xstrdup's. */
char *lp_dup_in(struct lp_arena *a, const char *s);

/* Decimal digits of u (of v, with '-' when negative) written backwards so
 * they end just before end; returns where they start (no NUL). 20 bytes
 * hold any u64, 20 any i64. For hot paths, without printf. */
char *lp_u64_digits_back(char *end, uint64_t u);
char *lp_i64_digits_back(char *end, int64_t v);

/* Wall clock in milliseconds since the epoch (only for logs, DLQ time). */
int64_t lp_now_ms(void);
/* Monotonic clock in microseconds (latency, timers). */
int64_t lp_mono_us(void);

/* Copies at most dstsize-1 bytes and NUL-terminates; returns strlen(src). */
size_t lp_strlcpy(char *dst, const char *src, size_t dstsize);

/* Fills errstr (if non-NULL) printf-style; returns -1 for one-line error
 * returns: `return lp_err(errstr, errsize, "...", ...);` */
int lp_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Money is carried as signed 64-bit micro-units (1 unit = 1,000,000):
 * exact for every ISO 4217 currency (at most 3 decimals), no binary
 * floating point in totals, range ±9.2e12 units.
 * Parses a decimal string such as "404.95" or "-3" or "1e2" is NOT accepted.
 * Returns 0, or -1 when malformed, more than 6 decimals, or out of range.
 */
int lp_money_parse(const char *s, int64_t *micros);
/* Formats micros as a decimal string with 2..6 decimals ("404.95"). */
void lp_money_format(int64_t micros, char *out, size_t outsize);

/*
 * Parses an RFC 3339 / ISO 8601 timestamp ("2021-12-31T19:00:00-05:00",
 * "...Z", fractional seconds allowed) to epoch milliseconds. Returns 0 or -1.
 */
int lp_time_parse_iso8601(const char *s, int64_t *epoch_ms);
/* Formats epoch ms as "YYYY-MM-DDTHH:MM:SS.sssZ" (UTC). out >= 32 bytes. */
void lp_time_format_iso8601(int64_t epoch_ms, char *out, size_t outsize);

/* Lower-case hex of SHA-256(data); out must hold 65 bytes. */
void lp_sha256_hex(const void *data, size_t len, char out[65]);

/* True when s (len bytes) is valid UTF-8. */
int lp_utf8_valid(const char *s, size_t len);

/* "HOST:PORT" (the last ':' splits, so "::1:6379" works) into host and
 * port. 0, or -1 when there is no host, no port or the port is not in
 * 1..65535. */
int lp_host_port_parse(const char *spec, char *host, size_t host_size,
                       int *port);

#endif
