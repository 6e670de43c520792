/*
 * util.c — allocation, byte buffers, clocks, money and time parsing,
 * SHA-256 and UTF-8 checks shared by every module (see util.h).
 */
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

void lp_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "assertion failed: %s at %s:%d\n", expr, file, line);
  abort();
}

static void oom(size_t size) {
  fprintf(stderr, "out of memory allocating %zu bytes\n", size);
  abort();
}

void *lp_xmalloc(size_t size) {
  void *p = malloc(size ? size : 1);
  if (!p)
    oom(size);
  return p;
}

void *lp_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    oom(n * size);
  return p;
}

void *lp_xrealloc(void *ptr, size_t size) {
  void *p = realloc(ptr, size ? size : 1);
  if (!p)
    oom(size);
  return p;
}

char *lp_xstrdup(const char *s) {
  if (!s)
    return NULL;
  return lp_xstrndup(s, strlen(s));
}

char *lp_xstrndup(const char *s, size_t n) {
  if (!s)
    return NULL;
  char *p = lp_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *lp_xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *out = NULL;
  int n = vasprintf(&out, fmt, ap);
  va_end(ap);
  if (n < 0)
    oom(0);
  return out;
}

void lp_buf_init(struct lp_buf *b) {
  memset(b, 0, sizeof(*b));
}

void lp_buf_free(struct lp_buf *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

void lp_buf_reset(struct lp_buf *b) {
  b->len = 0;
}

void lp_buf_reserve(struct lp_buf *b, size_t extra) {
  size_t need = b->len + extra + 1; /* room for lp_buf_cstr's NUL */
  if (need <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  b->data = lp_xrealloc(b->data, cap);
  b->cap = cap;
}

void lp_buf_append(struct lp_buf *b, const void *data, size_t len) {
  if (len == 0)
    return;
  lp_buf_reserve(b, len);
  memcpy(b->data + b->len, data, len);
  b->len += len;
}

void lp_buf_append_byte(struct lp_buf *b, uint8_t byte) {
  lp_buf_reserve(b, 1);
  b->data[b->len++] = byte;
}

void lp_buf_append_str(struct lp_buf *b, const char *s) {
  lp_buf_append(b, s, strlen(s));
}

void lp_buf_appendf(struct lp_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    va_end(ap2);
    return;
  }
  lp_buf_reserve(b, (size_t)n);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  b->len += (size_t)n;
}

const char *lp_buf_cstr(struct lp_buf *b) {
  lp_buf_reserve(b, 0);
  b->data[b->len] = '\0';
  return (const char *)b->data;
}

/* A block's payload follows its header; blocks form a list that reset
 * walks again from the first. */
struct lp_arena_block {
  struct lp_arena_block *next;
  size_t size;
  max_align_t data[];
};

#define ARENA_BLOCK_MIN 16384

void lp_arena_init(struct lp_arena *a) {
  memset(a, 0, sizeof(*a));
}

void lp_arena_free(struct lp_arena *a) {
  for (struct lp_arena_block *b = a->first, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  memset(a, 0, sizeof(*a));
}

void lp_arena_reset(struct lp_arena *a) {
  a->cur = a->first;
  a->used = 0;
}

void *lp_arena_alloc(struct lp_arena *a, size_t size) {
  size = (size + 7) & ~(size_t)7;
  if (size == 0)
    size = 8;
  while (a->cur && a->cur->size - a->used < size) {
    /* Move on to the next kept block; one too small for this request is
     * skipped (it is used again after the next reset). */
    a->cur = a->cur->next;
    a->used = 0;
  }
  if (!a->cur) {
    size_t bsize = size > ARENA_BLOCK_MIN ? size : ARENA_BLOCK_MIN;
    struct lp_arena_block *b = lp_xmalloc(sizeof(*b) + bsize);
    b->size = bsize;
    b->next = NULL;
    /* Appended at the end so that the order of reuse stays stable. */
    struct lp_arena_block **tail = &a->first;
    while (*tail)
      tail = &(*tail)->next;
    *tail = b;
    a->cur = b;
    a->used = 0;
  }
  void *p = (char *)a->cur->data + a->used;
  a->used += size;
  return p;
}

char *lp_arena_strndup(struct lp_arena *a, const char *s, size_t n) {
  if (!s)
    return NULL;
  char *p = lp_arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *lp_arena_strdup(struct lp_arena *a, const char *s) {
  return s ? lp_arena_strndup(a, s, strlen(s)) : NULL;
}

char *lp_dup_in(struct lp_arena *a, const char *s) {
  return a ? lp_arena_strdup(a, s) : lp_xstrdup(s);
}

int64_t lp_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lp_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

size_t lp_strlcpy(char *dst, const char *src, size_t dstsize) {
  size_t len = strlen(src);
  if (dstsize) {
    size_t n = len < dstsize - 1 ? len : dstsize - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
  }
  return len;
}

int lp_err(char *errstr, size_t errstr_size, const char *fmt, ...) {
  if (errstr && errstr_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int lp_money_parse(const char *s, int64_t *micros) {
  if (!s)
    return -1;
  const char *p = s;
  int neg = 0;
  if (*p == '-' || *p == '+') {
    neg = *p == '-';
    p++;
  }
  if (!isdigit((unsigned char)*p))
    return -1;
  /* Accumulate in unsigned micros, checking against the int64 range. */
  uint64_t units = 0;
  const uint64_t max_units = (uint64_t)INT64_MAX / 1000000;
  while (isdigit((unsigned char)*p)) {
    units = units * 10 + (uint64_t)(*p - '0');
    if (units > max_units)
      return -1;
    p++;
  }
  uint64_t frac = 0;
  int digits = 0;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return -1;
    while (isdigit((unsigned char)*p)) {
      if (digits == 6)
        return -1; /* more precision than a micro-unit */
      frac = frac * 10 + (uint64_t)(*p - '0');
      digits++;
      p++;
    }
  }
  if (*p != '\0')
    return -1;
  for (; digits < 6; digits++)
    frac *= 10;
  uint64_t total = units * 1000000 + frac;
  if (total > (uint64_t)INT64_MAX)
    return -1;
  *micros = neg ? -(int64_t)total : (int64_t)total;
  return 0;
}

char *lp_u64_digits_back(char *end, uint64_t u) {
  do {
    *--end = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  return end;
}

char *lp_i64_digits_back(char *end, int64_t v) {
  char *p =
      lp_u64_digits_back(end, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
  if (v < 0)
    *--p = '-';
  return p;
}

/* No printf: this runs for every money feature of every decision. */
void lp_money_format(int64_t micros, char *out, size_t outsize) {
  uint64_t abs = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
  uint64_t units = abs / 1000000, frac = abs % 1000000;
  char tmp[40], *end = tmp + sizeof(tmp) - 1;
  *end = '\0';
  char fracbuf[6];
  for (int i = 5; i >= 0; i--) {
    fracbuf[i] = (char)('0' + frac % 10);
    frac /= 10;
  }
  /* Keep at least 2 decimals, drop trailing zeros beyond that. */
  int keep = 6;
  while (keep > 2 && fracbuf[keep - 1] == '0')
    keep--;
  end -= keep;
  memcpy(end, fracbuf, (size_t)keep);
  *--end = '.';
  char *p = lp_u64_digits_back(end, units);
  if (micros < 0)
    *--p = '-';
  lp_strlcpy(out, p, outsize);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so no timezone state or timegm() is involved. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int parse_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i]))
      return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

int lp_time_parse_iso8601(const char *s, int64_t *epoch_ms) {
  if (!s)
    return -1;
  const char *p = s;
  int Y, M, D, h = 0, m = 0, sec = 0, ms = 0;
  if (parse_digits(&p, 4, &Y) || *p++ != '-' || parse_digits(&p, 2, &M) ||
      *p++ != '-' || parse_digits(&p, 2, &D))
    return -1;
  if (M < 1 || M > 12 || D < 1 || D > 31)
    return -1;
  int64_t offset_min = 0;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &m))
      return -1;
    if (*p == ':') {
      p++;
      if (parse_digits(&p, 2, &sec))
        return -1;
    }
    if (*p == '.' || *p == ',') {
      p++;
      int scale = 100, digits = 0;
      while (isdigit((unsigned char)*p)) {
        if (digits < 3)
          ms += (*p - '0') * scale;
        scale /= 10;
        digits++;
        p++;
      }
      if (digits == 0)
        return -1;
    }
    if (h > 23 || m > 59 || sec > 60)
      return -1;
    if (*p == 'Z' || *p == 'z') {
      p++;
    } else if (*p == '+' || *p == '-') {
      int sign = *p == '-' ? -1 : 1, oh, om = 0;
      p++;
      if (parse_digits(&p, 2, &oh))
        return -1;
      if (*p == ':')
        p++;
      if (isdigit((unsigned char)*p) && parse_digits(&p, 2, &om))
        return -1;
      if (oh > 23 || om > 59)
        return -1;
      offset_min = sign * (oh * 60 + om);
    }
  }
  if (*p != '\0')
    return -1;
  int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
  int64_t secs = days * 86400 + h * 3600 + m * 60 + sec - offset_min * 60;
  *epoch_ms = secs * 1000 + ms;
  return 0;
}

void lp_time_format_iso8601(int64_t epoch_ms, char *out, size_t outsize) {
  int64_t secs = epoch_ms / 1000, ms = epoch_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  time_t t = (time_t)secs;
  struct tm tm;
  if (!gmtime_r(&t, &tm)) {
    snprintf(out, outsize, "invalid-time");
    return;
  }
  int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999) {
    snprintf(out, outsize, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)ms);
    return;
  }
  /* The common case without printf (features of every decision). */
  char b[25];
  const int parts[7] = {year,      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                        tm.tm_min, tm.tm_sec,     (int)ms};
  static const int widths[7] = {4, 2, 2, 2, 2, 2, 3};
  static const char seps[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
  char *q = b;
  for (int i = 0; i < 7; i++) {
    for (int d = widths[i] - 1, v = parts[i]; d >= 0; d--, v /= 10)
      q[d] = (char)('0' + v % 10);
    q += widths[i];
    *q++ = seps[i];
  }
  *q = '\0';
  lp_strlcpy(out, b, outsize);
}

static EVP_MD *sha256_md;
/* Each thread's reusable digest context, freed when the thread ends (a
 * server with a thread per connection would leak one per connection). */
static pthread_key_t sha256_ctx_key;

static void sha256_ctx_free(void *ctx) {
  EVP_MD_CTX_free(ctx);
}

static void sha256_fetch(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  LP_ASSERT(pthread_key_create(&sha256_ctx_key, sha256_ctx_free) == 0);
}

void lp_sha256_hex(const void *data, size_t len, char out[65]) {
  /* Fetched once: EVP_sha256() makes OpenSSL 3 look the implementation up
   * again on every digest, which cost more than the hash itself. */
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, sha256_fetch);
  LP_ASSERT(sha256_md != NULL);
  /* One context per thread, reused: EVP_Digest allocates and frees a
   * context on every call. */
  EVP_MD_CTX *ctx = pthread_getspecific(sha256_ctx_key);
  if (!ctx) {
    ctx = EVP_MD_CTX_new();
    LP_ASSERT(ctx && pthread_setspecific(sha256_ctx_key, ctx) == 0);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  LP_ASSERT(ctx && EVP_DigestInit_ex2(ctx, sha256_md, NULL) == 1 &&
            EVP_DigestUpdate(ctx, data, len) == 1 &&
            EVP_DigestFinal_ex(ctx, md, &mdlen) == 1);
  LP_ASSERT(mdlen == 32);
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

int lp_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    /* Ids, SKUs and numbers are ASCII: eight bytes at a time. */
    while (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, sizeof(w));
      if (w & 0x8080808080808080ULL)
        break;
      p += 8;
    }
    if (p == end)
      break;
    unsigned c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    size_t n;
    unsigned min;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      min = 0x80;
      c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      min = 0x800;
      c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      min = 0x10000;
      c &= 0x07;
    } else {
      return 0;
    }
    if ((size_t)(end - p) <= n)
      return 0;
    for (size_t i = 1; i <= n; i++) {
      if ((p[i] & 0xC0) != 0x80)
        return 0;
      c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
      return 0; /* overlong, out of range, or a surrogate */
    p += n + 1;
  }
  return 1;
}

int lp_host_port_parse(const char *spec, char *host, size_t host_size,
                       int *port) {
  const char *colon = spec ? strrchr(spec, ':') : NULL;
  if (!colon || colon == spec || (size_t)(colon - spec) >= host_size)
    return -1;
  char *end = NULL;
  long p = strtol(colon + 1, &end, 10);
  if (end == colon + 1 || *end || p < 1 || p > 65535)
    return -1;
  snprintf(host, host_size, "%.*s", (int)(colon - spec), spec);
  *port = (int)p;
  return 0;
}
