/*
 * json_util.c — the field readers every JSON decoder shares (json_codec's
 * canonical and Shopify decoders, bigcommerce.c, adobe.c): parsing with
 * the UTF-8 check first, bounded getters that name the field path in
 * their errors, money as exact micro-units, ids as decimal text, and the
 * email hash. See json_util.h for the contract.
 */
#include "json_util.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "util.h"

const char *lp_json_type_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "object";
  case JSON_ARRAY:
    return "array";
  case JSON_STRING:
    return "string";
  case JSON_INTEGER:
    return "integer";
  case JSON_REAL:
    return "real";
  case JSON_TRUE:
  case JSON_FALSE:
    return "boolean";
  case JSON_NULL:
  default:
    return "null";
  }
}

/* "prefix.key", or "key" when prefix is empty. */
void lp_json_path_join(char *out, size_t outsize, const char *prefix,
                       const char *key) {
  if (prefix && *prefix)
    snprintf(out, outsize, "%s.%s", prefix, key);
  else
    snprintf(out, outsize, "%s", key);
}

/* Length of the UTF-8 sequence a lead byte announces (1 for a stray byte,
 * so the validity check below rejects it). */
static size_t utf8_seq_len(unsigned char c) {
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0)
    return 2;
  if ((c & 0xF0) == 0xE0)
    return 3;
  if ((c & 0xF8) == 0xF0)
    return 4;
  return 1;
}

/* Length of the valid UTF-8 character at s[0..avail), or 0 if invalid. */
size_t lp_json_utf8_char_len(const char *s, size_t avail) {
  size_t n = utf8_seq_len((unsigned char)s[0]);
  if (n > avail || !lp_utf8_valid(s, n))
    return 0;
  return n;
}

/* A value lp_json_quoted for an error message: at most ~40 bytes, cut on a
 * character boundary, quotes/backslashes/control characters escaped, so
 * the message stays one valid UTF-8 line. */
const char *lp_json_quoted(const char *s, char *out, size_t outsize) {
  size_t o = 0, i = 0, len = strlen(s);
  LP_ASSERT(outsize >= 32);
  out[o++] = '"';
  while (i < len) {
    /* One step writes at most 6 bytes; keep 5 for "...", quote, NUL. */
    if (i >= 40 || o + 6 + 5 > outsize) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
      i++;
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, outsize - o, "\\u%04x", c);
      i++;
    } else {
      size_t n = lp_json_utf8_char_len(s + i, len - i);
      if (n == 0) {
        out[o++] = '?';
        i++;
      } else {
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
      }
    }
  }
  out[o++] = '"';
  out[o] = '\0';
  return out;
}

/* Byte offset of the first invalid UTF-8 sequence, or len when valid. */
static size_t utf8_first_invalid(const char *s, size_t len) {
  if (lp_utf8_valid(s, len))
    return len;
  size_t i = 0;
  while (i < len) {
    size_t n = lp_json_utf8_char_len(s + i, len - i);
    if (n == 0)
      return i;
    i += n;
  }
  return len; /* not reached: the whole was invalid */
}

/* Cuts errstr before a UTF-8 sequence that truncation (ours or Jansson's
 * fixed-size error text) split, so the reason is always valid UTF-8 for
 * the dead-letter record. */
void lp_json_errstr_fix_utf8(char *errstr, size_t errstr_size) {
  if (errstr && errstr_size)
    errstr[utf8_first_invalid(errstr, strlen(errstr))] = '\0';
}

/* Parses data into a JSON object or array; NULL with "json: ..." on
 * error. */
json_t *lp_json_parse(const void *data, size_t len, char *errstr,
                      size_t errstr_size) {
  if (!data || len == 0) {
    lp_err(errstr, errstr_size, "json: empty input");
    return NULL;
  }
  const char *s = data;
  size_t bad = utf8_first_invalid(s, len);
  if (bad < len) {
    /* Same line/column convention as Jansson: columns count characters. */
    int line = 1, column = 1;
    for (size_t i = 0; i < bad; i++) {
      if (s[i] == '\n') {
        line++;
        column = 1;
      } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
        column++;
      }
    }
    lp_err(errstr, errstr_size,
           "json: line %d column %d: invalid UTF-8 (byte 0x%02x at offset "
           "%zu)",
           line, column, (unsigned char)s[bad], bad);
    return NULL;
  }
  json_error_t jerr;
  /* Without JSON_DECODE_ANY Jansson accepts only an object or an array at
   * the top; its error then says so. */
  json_t *root = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    lp_err(errstr, errstr_size, "json: line %d column %d: %s", jerr.line,
           jerr.column, jerr.text);
    return NULL;
  }
  return root;
}

json_t *lp_json_parse_object(const void *data, size_t len, char *errstr,
                             size_t errstr_size) {
  json_t *root = lp_json_parse(data, len, errstr, errstr_size);
  if (root && !json_is_object(root)) {
    lp_err(errstr, errstr_size, "json: expected an object, got %s",
           lp_json_type_name(root));
    json_decref(root);
    return NULL;
  }
  return root;
}

/* A hint header value, or NULL when absent or empty. */
const char *lp_json_hint_value(const char *s) {
  return s && *s ? s : NULL;
}

/* ---------------------------------------------------------------------- */
/* Field getters: return 1 when the field was read, 0 when it is absent    */
/* (or null) and optional, -1 with "path: reason" in errstr.              */
/* ---------------------------------------------------------------------- */

/* Common start: looks up key, handles absent/null. *v set when present. */
static int lookup(const json_t *obj, const char *path, const char *key,
                  unsigned flags, json_t **v, char *errstr,
                  size_t errstr_size) {
  *v = json_object_get(obj, key);
  if (!*v || json_is_null(*v)) {
    if (flags & LP_JSON_REQUIRED)
      return lp_err(errstr, errstr_size, "%s: required field %s", path,
                    *v ? "is null" : "missing");
    *v = NULL;
    return 0;
  }
  return 1;
}

/* Borrowed string (lives as long as the parsed document), bounded. */
int lp_json_get_raw_str(const json_t *obj, const char *prefix, const char *key,
                        unsigned flags, const char **out, char *errstr,
                        size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *v;
  lp_json_path_join(path, sizeof(path), prefix, key);
  *out = NULL;
  int rc = lookup(obj, path, key, flags, &v, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (!json_is_string(v))
    return lp_err(errstr, errstr_size, "%s: expected string, got %s", path,
                  lp_json_type_name(v));
  size_t len = json_string_length(v);
  if (len > LP_MAX_STRING_BYTES)
    return lp_err(errstr, errstr_size,
                  "%s: string of %zu bytes exceeds the limit of %d", path, len,
                  LP_MAX_STRING_BYTES);
  if (len == 0 && (flags & LP_JSON_EMPTY_NULL)) {
    if (flags & LP_JSON_REQUIRED)
      return lp_err(errstr, errstr_size, "%s: must not be empty", path);
    return 0;
  }
  *out = json_string_value(v);
  return 1;
}

/* Owned copy (caller frees) of a string field. */
int lp_json_get_str(const json_t *obj, const char *prefix, const char *key,
                    unsigned flags, char **out, char *errstr,
                    size_t errstr_size) {
  const char *s;
  int rc =
      lp_json_get_raw_str(obj, prefix, key, flags, &s, errstr, errstr_size);
  if (rc > 0)
    *out = lp_xstrdup(s);
  return rc;
}

/* An id: a string, or a positive JSON integer written as decimal text (the
 * 64-bit Shopify ids are read as integers, never through a double). */
int lp_json_get_id(const json_t *obj, const char *prefix, const char *key,
                   unsigned flags, char **out, char *errstr,
                   size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *v;
  lp_json_path_join(path, sizeof(path), prefix, key);
  int rc = lookup(obj, path, key, flags, &v, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (json_is_integer(v)) {
    json_int_t n = json_integer_value(v);
    if (n <= 0)
      return lp_err(errstr, errstr_size,
                    "%s: %" JSON_INTEGER_FORMAT " is not a valid id", path, n);
    *out = lp_xasprintf("%" JSON_INTEGER_FORMAT, n);
    return 1;
  }
  if (json_is_string(v))
    return lp_json_get_str(obj, prefix, key, flags, out, errstr, errstr_size);
  return lp_err(errstr, errstr_size, "%s: expected string or integer, got %s",
                path, lp_json_type_name(v));
}

int lp_json_get_int(const json_t *obj, const char *prefix, const char *key,
                    unsigned flags, long long min, long long max,
                    long long *out, char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *v;
  lp_json_path_join(path, sizeof(path), prefix, key);
  int rc = lookup(obj, path, key, flags, &v, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (!json_is_integer(v))
    return lp_err(errstr, errstr_size, "%s: expected integer, got %s", path,
                  lp_json_type_name(v));
  long long n = json_integer_value(v);
  if (n < min || n > max)
    return lp_err(errstr, errstr_size, "%s: %lld is not in %lld..%lld", path, n,
                  min, max);
  *out = n;
  return 1;
}

int lp_json_get_bool(const json_t *obj, const char *prefix, const char *key,
                     int *out, char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *v;
  lp_json_path_join(path, sizeof(path), prefix, key);
  int rc = lookup(obj, path, key, 0, &v, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (!json_is_boolean(v))
    return lp_err(errstr, errstr_size, "%s: expected boolean, got %s", path,
                  lp_json_type_name(v));
  *out = json_is_true(v);
  return 1;
}

/* True when s is [+-]digits[.digits]: a decimal that lp_money_parse
 * rejected only for precision or range. */
static int decimal_syntax(const char *s, int *decimals) {
  const char *p = s;
  *decimals = 0;
  if (*p == '+' || *p == '-')
    p++;
  if (!isdigit((unsigned char)*p))
    return 0;
  while (isdigit((unsigned char)*p))
    p++;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return 0;
    while (isdigit((unsigned char)*p)) {
      p++;
      (*decimals)++;
    }
  }
  return *p == '\0';
}

/* Money: a decimal string under key, or (when alias_micros is given and key
 * is absent) an integer of micro-units under alias_micros. */
int lp_json_get_money(const json_t *obj, const char *prefix, const char *key,
                      const char *alias_micros, unsigned flags, int64_t *out,
                      char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], q[64];
  json_t *v;
  lp_json_path_join(path, sizeof(path), prefix, key);
  if (alias_micros && !json_object_get(obj, key) &&
      json_object_get(obj, alias_micros)) {
    long long n;
    int rc =
        lp_json_get_int(obj, prefix, alias_micros, flags, -LP_MAX_MONEY_MICROS,
                        LP_MAX_MONEY_MICROS, &n, errstr, errstr_size);
    if (rc > 0)
      *out = n;
    return rc;
  }
  int rc = lookup(obj, path, key, flags, &v, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (json_is_number(v)) {
    /* Numbers are not accepted (no exact cents), but a number too large
     * for any order is better reported as what it is. */
    double d = json_number_value(v);
    if (!isfinite(d) || fabs(d) > (double)LP_MAX_MONEY_MICROS / 1e6)
      return lp_err(errstr, errstr_size, "%s: out of range", path);
    return lp_err(errstr, errstr_size,
                  "%s: expected a decimal string such as \"404.95\", got %s",
                  path, lp_json_type_name(v));
  }
  const char *s;
  rc = lp_json_get_raw_str(obj, prefix, key, flags, &s, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  int64_t micros;
  int decimals;
  if (lp_money_parse(s, &micros) != 0) {
    if (!decimal_syntax(s, &decimals))
      return lp_err(errstr, errstr_size, "%s: not a decimal amount: %s", path,
                    lp_json_quoted(s, q, sizeof(q)));
    if (decimals > 6)
      return lp_err(errstr, errstr_size, "%s: more than 6 decimal places: %s",
                    path, lp_json_quoted(s, q, sizeof(q)));
    return lp_err(errstr, errstr_size, "%s: out of range", path);
  }
  if (micros > LP_MAX_MONEY_MICROS || micros < -LP_MAX_MONEY_MICROS)
    return lp_err(errstr, errstr_size, "%s: out of range", path);
  *out = micros;
  return 1;
}

/* Money as a decimal string or a JSON number (platforms that write
 * numbers: Magento's REST, BigCommerce v3 refunds, Shopify refund lines).
 * A real is rounded to the nearest micro-unit through its shortest %.6f
 * text, which is exact for every amount with at most 6 decimals below
 * 9e9 units. */
int lp_json_get_amount(const json_t *obj, const char *prefix, const char *key,
                       unsigned flags, int64_t *out, char *errstr,
                       size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *v;
  const int64_t max_units = LP_MAX_MONEY_MICROS / 1000000;
  lp_json_path_join(path, sizeof(path), prefix, key);
  int rc = lookup(obj, path, key, flags, &v, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (json_is_integer(v)) {
    json_int_t n = json_integer_value(v);
    if (n > max_units || n < -max_units)
      return lp_err(errstr, errstr_size, "%s: out of range", path);
    *out = (int64_t)n * 1000000;
    return 1;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    char text[64];
    if (!isfinite(d) || fabs(d) > (double)max_units)
      return lp_err(errstr, errstr_size, "%s: out of range", path);
    snprintf(text, sizeof(text), "%.6f", d);
    if (lp_money_parse(text, out) != 0)
      return lp_err(errstr, errstr_size, "%s: out of range", path);
    return 1;
  }
  if (!json_is_string(v))
    return lp_err(errstr, errstr_size,
                  "%s: expected a decimal amount (string or number), got %s",
                  path, lp_json_type_name(v));
  return lp_json_get_money(obj, prefix, key, NULL, flags, out, errstr,
                           errstr_size);
}

/* Time: an RFC 3339 string under key, or (alias_ms given, key absent) an
 * integer of epoch milliseconds. *raw (optional) gets the string read. */
int lp_json_get_time(const json_t *obj, const char *prefix, const char *key,
                     const char *alias_ms, unsigned flags, int64_t *out,
                     const char **raw, char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX], q[64];
  lp_json_path_join(path, sizeof(path), prefix, key);
  if (raw)
    *raw = NULL;
  if (alias_ms && !json_object_get(obj, key) &&
      json_object_get(obj, alias_ms)) {
    long long n;
    int rc = lp_json_get_int(obj, prefix, alias_ms, flags, LLONG_MIN, LLONG_MAX,
                             &n, errstr, errstr_size);
    if (rc > 0)
      *out = n;
    return rc;
  }
  const char *s;
  int rc =
      lp_json_get_raw_str(obj, prefix, key, flags, &s, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (lp_time_parse_iso8601(s, out) != 0)
    return lp_err(errstr, errstr_size, "%s: not an RFC 3339 timestamp: %s",
                  path, lp_json_quoted(s, q, sizeof(q)));
  if (raw)
    *raw = s;
  return 1;
}

int lp_json_get_object(const json_t *obj, const char *prefix, const char *key,
                       unsigned flags, json_t **out, char *errstr,
                       size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *v;
  lp_json_path_join(path, sizeof(path), prefix, key);
  *out = NULL;
  int rc = lookup(obj, path, key, flags, &v, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (!json_is_object(v))
    return lp_err(errstr, errstr_size, "%s: expected object, got %s", path,
                  lp_json_type_name(v));
  *out = v;
  return 1;
}

/* An array of at most max elements; noun names them in the limit error
 * (same text as events.c: "line_items: 1001 items exceed the limit ..."). */
int lp_json_get_array(const json_t *obj, const char *prefix, const char *key,
                      unsigned flags, size_t max, const char *noun,
                      json_t **out, char *errstr, size_t errstr_size) {
  char path[LP_JSON_PATH_MAX];
  json_t *v;
  lp_json_path_join(path, sizeof(path), prefix, key);
  *out = NULL;
  int rc = lookup(obj, path, key, flags, &v, errstr, errstr_size);
  if (rc <= 0)
    return rc;
  if (!json_is_array(v))
    return lp_err(errstr, errstr_size, "%s: expected array, got %s", path,
                  lp_json_type_name(v));
  if (json_array_size(v) > max)
    return lp_err(errstr, errstr_size, "%s: %zu %s exceed the limit of %zu",
                  path, json_array_size(v), noun, max);
  *out = v;
  return 1;
}

/* Element i of an array as an object; path gets "key[i]". */
int lp_json_array_object(const json_t *arr, const char *key, size_t i,
                         char *path, size_t pathsize, json_t **out,
                         char *errstr, size_t errstr_size) {
  snprintf(path, pathsize, "%s[%zu]", key, i);
  *out = json_array_get(arr, i);
  if (!json_is_object(*out))
    return lp_err(errstr, errstr_size, "%s: expected object, got %s", path,
                  lp_json_type_name(*out));
  return 0;
}

/* Element i of an array as a bounded, non-empty string (owned copy). */
int lp_json_array_string(const json_t *arr, const char *key, size_t i,
                         char **out, char *errstr, size_t errstr_size) {
  const json_t *v = json_array_get(arr, i);
  if (!json_is_string(v))
    return lp_err(errstr, errstr_size, "%s[%zu]: expected string, got %s", key,
                  i, lp_json_type_name(v));
  size_t len = json_string_length(v);
  if (len > LP_MAX_STRING_BYTES)
    return lp_err(errstr, errstr_size,
                  "%s[%zu]: string of %zu bytes exceeds the limit of %d", key,
                  i, len, LP_MAX_STRING_BYTES);
  *out = lp_xstrndup(json_string_value(v), len);
  return 0;
}

/* Trimmed, lower-cased email -> hex SHA-256 (NULL when empty). The raw
 * address lives only in the parsed document and this scratch copy. */
char *lp_json_email_hash(const char *email) {
  size_t len = strlen(email);
  while (len > 0 && isspace((unsigned char)email[len - 1]))
    len--;
  while (len > 0 && isspace((unsigned char)*email)) {
    email++;
    len--;
  }
  if (len == 0)
    return NULL;
  char *norm = lp_xstrndup(email, len);
  for (size_t i = 0; i < len; i++)
    norm[i] = (char)tolower((unsigned char)norm[i]);
  char *hex = lp_xmalloc(65);
  lp_sha256_hex(norm, len, hex);
  free(norm);
  return hex;
}
