/*
 * import_checkpoint.c — the importer's checkpoint file: where the source
 * stands (the cursor of the next page after the last fully acknowledged
 * one), the counts so far, and the topic's per-partition end offsets at
 * that moment. One JSON object:
 *
 *   {"format": "loyaltyctl-import-checkpoint/1", "kind": "shopify",
 *    "identity": "...", "topic": "orders", "cursor": "..." | null,
 *    "complete": false, "records": N, "items": N, "pages": N, "bad": N,
 *    "skipped": N, "end_offsets": [o0, o1, ...], "written_at": "..."}
 *
 * Written atomically (path.tmp, fsync, rename over path, fsync of the
 * folder): after a crash the file is the old checkpoint or the new one,
 * never a torn mix. A malformed file is an error naming the field, never a
 * silent restart from the beginning.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "import_internal.h"
#include "util.h"

#define CHECKPOINT_FORMAT "loyaltyctl-import-checkpoint/1"

void imp_checkpoint_clear(struct imp_checkpoint *cp) {
  free(cp->kind);
  free(cp->identity);
  free(cp->topic);
  free(cp->cursor);
  free(cp->end_offsets);
  memset(cp, 0, sizeof(*cp));
}

static int get_string(json_t *root, const char *path, const char *key,
                      int nullable, char **out, char *errstr,
                      size_t errstr_size) {
  json_t *v = json_object_get(root, key);
  if (nullable && (!v || json_is_null(v))) {
    *out = NULL;
    return 0;
  }
  if (!json_is_string(v))
    return lp_err(errstr, errstr_size, "checkpoint %s: %s: expected a string",
                  path, key);
  *out = lp_xstrdup(json_string_value(v));
  return 0;
}

static int get_count(json_t *root, const char *path, const char *key,
                     long long *out, char *errstr, size_t errstr_size) {
  json_t *v = json_object_get(root, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return lp_err(errstr, errstr_size,
                  "checkpoint %s: %s: expected a count (integer >= 0)", path,
                  key);
  *out = json_integer_value(v);
  return 0;
}

int imp_checkpoint_load(const char *path, struct imp_checkpoint *cp,
                        char *errstr, size_t errstr_size) {
  memset(cp, 0, sizeof(*cp));
  if (access(path, F_OK) != 0 && errno == ENOENT)
    return 0;
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return lp_err(errstr, errstr_size, "checkpoint %s: %d:%d: %s", path,
                  je.line, je.column, je.text);
  json_t *v, *arr;
  if (!json_is_object(root)) {
    lp_err(errstr, errstr_size, "checkpoint %s: expected a JSON object", path);
    goto fail;
  }
  v = json_object_get(root, "format");
  if (!json_is_string(v) || strcmp(json_string_value(v), CHECKPOINT_FORMAT)) {
    lp_err(errstr, errstr_size, "checkpoint %s: format: expected \"%s\"", path,
           CHECKPOINT_FORMAT);
    goto fail;
  }
  if (get_string(root, path, "kind", 0, &cp->kind, errstr, errstr_size) ||
      get_string(root, path, "identity", 0, &cp->identity, errstr,
                 errstr_size) ||
      get_string(root, path, "topic", 0, &cp->topic, errstr, errstr_size) ||
      get_string(root, path, "cursor", 1, &cp->cursor, errstr, errstr_size) ||
      get_count(root, path, "records", &cp->records, errstr, errstr_size) ||
      get_count(root, path, "items", &cp->items, errstr, errstr_size) ||
      get_count(root, path, "pages", &cp->pages, errstr, errstr_size) ||
      get_count(root, path, "bad", &cp->bad, errstr, errstr_size) ||
      get_count(root, path, "skipped", &cp->skipped, errstr, errstr_size))
    goto fail;
  v = json_object_get(root, "complete");
  if (!json_is_boolean(v)) {
    lp_err(errstr, errstr_size, "checkpoint %s: complete: expected a boolean",
           path);
    goto fail;
  }
  cp->complete = json_is_true(v);
  if (!cp->complete && !cp->cursor) {
    lp_err(errstr, errstr_size,
           "checkpoint %s: cursor: null, but the import is not complete", path);
    goto fail;
  }
  arr = json_object_get(root, "end_offsets");
  if (!json_is_array(arr) || json_array_size(arr) > 100000) {
    lp_err(errstr, errstr_size,
           "checkpoint %s: end_offsets: expected an array of offsets", path);
    goto fail;
  }
  cp->n_partitions = (int32_t)json_array_size(arr);
  cp->end_offsets = lp_xcalloc(cp->n_partitions ? (size_t)cp->n_partitions : 1,
                               sizeof(int64_t));
  for (int32_t i = 0; i < cp->n_partitions; i++) {
    v = json_array_get(arr, (size_t)i);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
      lp_err(errstr, errstr_size,
             "checkpoint %s: end_offsets[%d]: expected an offset >= 0", path,
             (int)i);
      goto fail;
    }
    cp->end_offsets[i] = json_integer_value(v);
  }
  json_decref(root);
  return 1;
fail:
  json_decref(root);
  imp_checkpoint_clear(cp);
  return -1;
}

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

int imp_checkpoint_save(const char *path, const struct imp_checkpoint *cp,
                        char *errstr, size_t errstr_size) {
  json_t *offs = json_array();
  for (int32_t i = 0; i < cp->n_partitions; i++)
    json_array_append_new(offs, json_integer(cp->end_offsets[i]));
  char now[40];
  lp_time_format_iso8601(lp_now_ms(), now, sizeof(now));
  json_t *root = json_pack(
      "{s:s, s:s, s:s, s:s, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:s}",
      "format", CHECKPOINT_FORMAT, "kind", cp->kind, "identity", cp->identity,
      "topic", cp->topic, "cursor",
      cp->cursor ? json_string(cp->cursor) : json_null(), "complete",
      cp->complete, "records", (json_int_t)cp->records, "items",
      (json_int_t)cp->items, "pages", (json_int_t)cp->pages, "bad",
      (json_int_t)cp->bad, "skipped", (json_int_t)cp->skipped, "end_offsets",
      offs, "written_at", now);
  LP_ASSERT(root != NULL);
  char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  json_decref(root);
  LP_ASSERT(text != NULL);
  char *tmp = lp_xasprintf("%s.tmp", path);
  int rc = -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    lp_err(errstr, errstr_size, "checkpoint %s: %s", tmp, strerror(errno));
    goto out;
  }
  if (write_all(fd, text, strlen(text)) || write_all(fd, "\n", 1) ||
      fsync(fd) != 0) {
    lp_err(errstr, errstr_size, "checkpoint %s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    goto out;
  }
  if (close(fd) != 0 || rename(tmp, path) != 0) {
    lp_err(errstr, errstr_size, "checkpoint %s: %s", path, strerror(errno));
    unlink(tmp);
    goto out;
  }
  /* The rename itself must survive a power cut: sync the folder. */
  char *copy = lp_xstrdup(path);
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  rc = 0;
out:
  free(tmp);
  free(text);
  return rc;
}
