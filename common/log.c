/*
 * log.c — JSON-lines logging on stderr (see log.h). Each line is built in
 * a local buffer and written with one write(2), so lines from different
 * threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static char log_proc[64] = "loyalty";
static atomic_int log_level = LP_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void lp_log_init(const char *proc, enum lp_log_level level) {
  lp_strlcpy(log_proc, proc, sizeof(log_proc));
  atomic_store(&log_level, (int)level);
}

void lp_log_set_level(enum lp_log_level level) {
  atomic_store(&log_level, (int)level);
}

int lp_log_level_parse(const char *name, enum lp_log_level *out) {
  for (size_t i = 0; i < LP_ARRAY_LEN(level_names); i++)
    if (name && strcmp(name, level_names[i]) == 0) {
      *out = (enum lp_log_level)i;
      return 0;
    }
  return -1;
}

int lp_log_enabled(enum lp_log_level level) {
  return (int)level >= atomic_load(&log_level);
}

/* Appends s JSON-escaped and quoted, at most max bytes of it, cutting on a
 * UTF-8 character boundary. */
static void escape(struct lp_buf *b, const char *s, size_t max) {
  size_t len = strlen(s);
  if (len > max) {
    len = max;
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
      len--;
  }
  lp_buf_append_byte(b, '"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      lp_buf_append_byte(b, '\\');
      lp_buf_append_byte(b, c);
    } else if (c == '\n') {
      lp_buf_append_str(b, "\\n");
    } else if (c < 0x20 || c == 0x7f) {
      lp_buf_appendf(b, "\\u%04x", c);
    } else {
      lp_buf_append_byte(b, c);
    }
  }
  lp_buf_append_byte(b, '"');
}

const char *lp_log_str(const char *s) {
  static _Thread_local char ring[8][1100];
  static _Thread_local unsigned next;
  char *slot = ring[next++ % 8];
  if (!s) {
    strcpy(slot, "null");
    return slot;
  }
  struct lp_buf b;
  lp_buf_init(&b);
  escape(&b, s, 512);
  lp_strlcpy(slot, lp_buf_cstr(&b), sizeof(ring[0]));
  lp_buf_free(&b);
  return slot;
}

void lp_log(enum lp_log_level level, const char *msg, const char *kvfmt, ...) {
  if (!lp_log_enabled(level))
    return;
  char ts[40];
  lp_time_format_iso8601(lp_now_ms(), ts, sizeof(ts));
  struct lp_buf b;
  lp_buf_init(&b);
  lp_buf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"proc\":", ts,
                 level_names[level]);
  escape(&b, log_proc, sizeof(log_proc));
  lp_buf_append_str(&b, ",\"msg\":");
  escape(&b, msg, 1024);
  if (kvfmt && *kvfmt) {
    char frag[4096];
    va_list ap;
    va_start(ap, kvfmt);
    vsnprintf(frag, sizeof(frag), kvfmt, ap);
    va_end(ap);
    lp_buf_append_byte(&b, ',');
    lp_buf_append_str(&b, frag);
  }
  lp_buf_append_str(&b, "}\n");
  ssize_t off = 0;
  while ((size_t)off < b.len) {
    ssize_t n = write(STDERR_FILENO, b.data + off, b.len - (size_t)off);
    if (n <= 0)
      break;
    off += n;
  }
  lp_buf_free(&b);
}
