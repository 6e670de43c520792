/*
 * model_watch.c — polls a Redis key or reads a file for the model JSON
 * (see model_watch.h). Uses its own short-timeout hiredis connection so a
 * slow or absent Redis costs the poll, never the event path's pipeline.
 */
#include "model_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>

#include "util.h"

struct lp_model_watch {
  char *host;
  int port;
  int timeout_ms;
  char *key;
  char *file;
  char source[600];
  redisContext *rc;
  char *last;      /* content last seen (valid or not), or NULL */
  size_t last_len; /* its length */
  int unavailable; /* the last poll found no content */
};

struct lp_model_watch *
lp_model_watch_new(const struct lp_model_watch_config *c) {
  LP_ASSERT(c && (c->key || c->file));
  struct lp_model_watch *w = lp_xcalloc(1, sizeof(*w));
  w->host = lp_xstrdup(c->redis_host ? c->redis_host : "127.0.0.1");
  w->port = c->redis_port;
  w->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 1000;
  w->key = c->key ? lp_xstrdup(c->key) : NULL;
  w->file = c->file ? lp_xstrdup(c->file) : NULL;
  if (w->file)
    snprintf(w->source, sizeof(w->source), "file %s", w->file);
  else
    snprintf(w->source, sizeof(w->source), "redis %s:%d key %s", w->host,
             w->port, w->key);
  return w;
}

void lp_model_watch_destroy(struct lp_model_watch **wp) {
  if (!wp || !*wp)
    return;
  struct lp_model_watch *w = *wp;
  if (w->rc)
    redisFree(w->rc);
  free(w->host);
  free(w->key);
  free(w->file);
  free(w->last);
  free(w);
  *wp = NULL;
}

const char *lp_model_watch_source(const struct lp_model_watch *w) {
  return w->source;
}

/* The content (caller frees), or NULL with errstr. */
static char *read_file(const struct lp_model_watch *w, size_t *len,
                       char *errstr, size_t errstr_size) {
  FILE *f = fopen(w->file, "rb");
  if (!f) {
    lp_err(errstr, errstr_size, "%s: cannot open", w->file);
    return NULL;
  }
  struct lp_buf b;
  lp_buf_init(&b);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= (1u << 20))
    lp_buf_append(&b, chunk, n);
  int bad = ferror(f);
  fclose(f);
  if (!bad && b.len > (1u << 20)) {
    lp_buf_free(&b);
    lp_err(errstr, errstr_size, "%s: larger than 1 MiB: not a model file",
           w->file);
    return NULL;
  }
  if (bad) {
    lp_buf_free(&b);
    lp_err(errstr, errstr_size, "%s: read error", w->file);
    return NULL;
  }
  *len = b.len;
  (void)lp_buf_cstr(&b);
  return (char *)b.data;
}

static char *read_redis(struct lp_model_watch *w, size_t *len, char *errstr,
                        size_t errstr_size) {
  if (!w->rc) {
    struct timeval tv = {w->timeout_ms / 1000, (w->timeout_ms % 1000) * 1000};
    w->rc = redisConnectWithTimeout(w->host, w->port, tv);
    if (!w->rc || w->rc->err) {
      lp_err(errstr, errstr_size, "redis %s:%d: %s", w->host, w->port,
             w->rc ? w->rc->errstr : "cannot connect");
      if (w->rc)
        redisFree(w->rc);
      w->rc = NULL;
      return NULL;
    }
    redisSetTimeout(w->rc, tv);
  }
  redisReply *r = redisCommand(w->rc, "GET %s", w->key);
  if (!r) {
    lp_err(errstr, errstr_size, "redis %s:%d: %s", w->host, w->port,
           w->rc->errstr);
    redisFree(w->rc);
    w->rc = NULL;
    return NULL;
  }
  char *out = NULL;
  if (r->type == REDIS_REPLY_STRING) {
    out = lp_xmalloc(r->len + 1);
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    *len = r->len;
  } else if (r->type == REDIS_REPLY_NIL) {
    lp_err(errstr, errstr_size,
           "no model published at key %s yet (run the "
           "trainer with --redis)",
           w->key);
  } else {
    lp_err(errstr, errstr_size, "key %s: not a string (%s)", w->key,
           r->type == REDIS_REPLY_ERROR ? r->str : "wrong type");
  }
  freeReplyObject(r);
  return out;
}

enum lp_model_poll lp_model_watch_poll(struct lp_model_watch *w,
                                       struct lp_model *out, char *errstr,
                                       size_t errstr_size) {
  size_t len = 0;
  char *text = w->file ? read_file(w, &len, errstr, errstr_size)
                       : read_redis(w, &len, errstr, errstr_size);
  if (!text) {
    if (w->unavailable)
      return LP_MODEL_UNCHANGED;
    w->unavailable = 1;
    return LP_MODEL_UNAVAILABLE;
  }
  w->unavailable = 0;
  if (w->last && w->last_len == len && memcmp(w->last, text, len) == 0) {
    free(text);
    return LP_MODEL_UNCHANGED;
  }
  free(w->last);
  w->last = text;
  w->last_len = len;
  char src[700];
  snprintf(src, sizeof(src), "%s", w->file ? w->file : w->key);
  if (lp_model_parse(text, len, src, out, errstr, errstr_size) != 0)
    return LP_MODEL_REJECTED;
  return LP_MODEL_NEW;
}
