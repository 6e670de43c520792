/*
 * json_util.h — internal to libloyalty: the JSON field readers shared by
 * the decoders of json_codec.c (canonical JSON, Shopify), bigcommerce.c and
 * adobe.c, so every platform body is read with the same bounds and reports
 * errors the same way ("<field path>: <reason>").
 *
 * Guarantees: no reader crashes on any input; strings are bounded by
 * LP_MAX_STRING_BYTES before use; the raw bytes are checked for UTF-8
 * before Jansson sees them; ids become decimal text without a double;
 * money becomes exact micro-units (util.h).
 *
 * Getter convention: return 1 when the field was read, 0 when it is absent
 * or null and optional, -1 with "path: reason" in errstr. prefix is the
 * path of obj ("" at the top, "line_items[3]" ...); the error names
 * "prefix.key". Borrowed strings live as long as the parsed document.
 */
#ifndef LP_JSON_UTIL_H
#define LP_JSON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Getter flags. */
#define LP_JSON_REQUIRED 1u   /* absent or null is an error */
#define LP_JSON_EMPTY_NULL 2u /* "" reads as absent (Shopify's empty sku) */

/* Room for any field path an error names. */
#define LP_JSON_PATH_MAX 160

/* "object", "array", "string", "integer", "real", "boolean", "null". */
const char *lp_json_type_name(const json_t *v);
/* "prefix.key", or "key" when prefix is empty. */
void lp_json_path_join(char *out, size_t outsize, const char *prefix,
                       const char *key);
/* Length of the valid UTF-8 character at s[0..avail), or 0 if invalid. */
size_t lp_json_utf8_char_len(const char *s, size_t avail);
/* s quoted for an error message (at most ~40 bytes, escaped, valid UTF-8)
 * into out (>= 32 bytes); returns out. */
const char *lp_json_quoted(const char *s, char *out, size_t outsize);
/* Cuts errstr before a UTF-8 sequence that truncation split. Call on
 * every error return, so a dead-letter reason is valid UTF-8. */
void lp_json_errstr_fix_utf8(char *errstr, size_t errstr_size);
/* A hint (header) value, or NULL when absent or empty. */
const char *lp_json_hint_value(const char *s);

/* Parses data (checked for UTF-8 first, duplicate keys rejected) into an
 * object or an array (caller decrefs); NULL with "json: ..." (line and
 * column) on error. */
json_t *lp_json_parse(const void *data, size_t len, char *errstr,
                      size_t errstr_size);
/* The same, requiring an object ("json: expected an object, got array"). */
json_t *lp_json_parse_object(const void *data, size_t len, char *errstr,
                             size_t errstr_size);

/* A borrowed, bounded string. */
int lp_json_get_raw_str(const json_t *obj, const char *prefix, const char *key,
                        unsigned flags, const char **out, char *errstr,
                        size_t errstr_size);
/* An owned copy (caller frees) of a string field. */
int lp_json_get_str(const json_t *obj, const char *prefix, const char *key,
                    unsigned flags, char **out, char *errstr,
                    size_t errstr_size);
/* An id (caller frees): a string, or a positive JSON integer as decimal
 * text. */
int lp_json_get_id(const json_t *obj, const char *prefix, const char *key,
                   unsigned flags, char **out, char *errstr,
                   size_t errstr_size);
/* A JSON integer within min..max. */
int lp_json_get_int(const json_t *obj, const char *prefix, const char *key,
                    unsigned flags, long long min, long long max,
                    long long *out, char *errstr, size_t errstr_size);
/* A JSON boolean (optional). */
int lp_json_get_bool(const json_t *obj, const char *prefix, const char *key,
                     int *out, char *errstr, size_t errstr_size);
/* Money as a decimal string only ("404.95"); when alias_micros is given and
 * key is absent, an integer of micro-units under alias_micros. Numbers are
 * rejected (no exact cents in a double). Bounded by LP_MAX_MONEY_MICROS. */
int lp_json_get_money(const json_t *obj, const char *prefix, const char *key,
                      const char *alias_micros, unsigned flags, int64_t *out,
                      char *errstr, size_t errstr_size);
/* Money as a decimal string or a JSON number (for platforms that write
 * numbers); a real is rounded to the nearest micro-unit. */
int lp_json_get_amount(const json_t *obj, const char *prefix, const char *key,
                       unsigned flags, int64_t *out, char *errstr,
                       size_t errstr_size);
/* An RFC 3339 time (or, alias_ms given and key absent, integer epoch ms);
 * *raw (optional) gets the string read. */
int lp_json_get_time(const json_t *obj, const char *prefix, const char *key,
                     const char *alias_ms, unsigned flags, int64_t *out,
                     const char **raw, char *errstr, size_t errstr_size);
/* A nested object (borrowed). */
int lp_json_get_object(const json_t *obj, const char *prefix, const char *key,
                       unsigned flags, json_t **out, char *errstr,
                       size_t errstr_size);
/* An array of at most max elements (borrowed); noun names them in the
 * limit error ("line_items: 1001 items exceed the limit of 1000"). */
int lp_json_get_array(const json_t *obj, const char *prefix, const char *key,
                      unsigned flags, size_t max, const char *noun,
                      json_t **out, char *errstr, size_t errstr_size);
/* Element i of arr as an object; path gets "key[i]". 0 or -1. */
int lp_json_array_object(const json_t *arr, const char *key, size_t i,
                         char *path, size_t pathsize, json_t **out,
                         char *errstr, size_t errstr_size);
/* Element i of arr as a bounded string (owned copy). 0 or -1. */
int lp_json_array_string(const json_t *arr, const char *key, size_t i,
                         char **out, char *errstr, size_t errstr_size);

/* Hex SHA-256 of the trimmed, lower-cased email (caller frees), NULL when
 * it is empty. The raw address is never kept. */
char *lp_json_email_hash(const char *email);

#endif
