/*
 * copywriter.c — the chat-completions request, its answer and the
 * guardrail on generated copy (see copywriter.h).
 */
#include "copywriter.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

int lp_copy_applies(const struct lp_reward_decision *d) {
  return d->action.kind == LP_ACTION_MESSAGE ||
         d->action.kind == LP_ACTION_DISCOUNT_CODE;
}

/* "key: value\n" with the value on one line and at most 64 bytes (a
 * brand name must not be able to add instructions of its own). */
static void fact(struct lp_buf *b, const char *key, const char *value) {
  if (!value || !*value)
    return;
  lp_buf_append_str(b, key);
  lp_buf_append_str(b, ": ");
  size_t n = strlen(value);
  if (n > 64) { /* cut at 64 bytes, never inside a UTF-8 character */
    n = 64;
    while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80)
      n--;
  }
  for (size_t i = 0; i < n; i++)
    lp_buf_append_byte(
        b, (value[i] == '\n' || value[i] == '\r' || value[i] == '\t')
               ? ' '
               : (uint8_t)value[i]);
  lp_buf_append_byte(b, '\n');
}

static const char *feature_value(const struct lp_reward_decision *d,
                                 const char *name) {
  for (size_t i = 0; i < d->explanation.n_features; i++)
    if (d->explanation.features[i].name &&
        strcmp(d->explanation.features[i].name, name) == 0)
      return d->explanation.features[i].value;
  return NULL;
}

char *lp_copy_facts(const struct lp_reward_decision *d) {
  struct lp_buf b;
  lp_buf_init(&b);
  char num[40];
  const struct lp_action *a = &d->action;
  fact(&b, "kind", lp_action_kind_name(a->kind));
  if (a->points > 0) {
    snprintf(num, sizeof(num), "%lld", (long long)a->points);
    fact(&b, "points", num);
  }
  if (a->kind == LP_ACTION_DISCOUNT_CODE && a->discount_percent > 0) {
    snprintf(num, sizeof(num), "%d", (int)a->discount_percent);
    fact(&b, "discount_percent", num);
  }
  if (a->kind == LP_ACTION_DISCOUNT_CODE && a->discount_amount_micros > 0) {
    lp_money_format(a->discount_amount_micros, num, sizeof(num));
    fact(&b, "discount_amount", num);
    fact(&b, "currency", d->currency);
  }
  fact(&b, "brand", a->brand);
  fact(&b, "category", a->category);
  fact(&b, "template", a->template_id);
  fact(&b, "channel", a->channel);
  fact(&b, "segment", feature_value(d, "profile.value_segment"));
  char *out = lp_xstrdup(lp_buf_cstr(&b));
  lp_buf_free(&b);
  return out;
}

int lp_copy_request(const struct lp_copy_conf *c,
                    const struct lp_reward_decision *d, const char *facts,
                    struct lp_http_request *out, char *errstr,
                    size_t errstr_size) {
  memset(out, 0, sizeof(*out));
  if (!c->url || !*c->url || !c->model || !*c->model)
    return lp_err(errstr, errstr_size, "copy: no endpoint or model");
  (void)d;
  char *system = lp_xasprintf(
      "You write one short, friendly message from a shop to a member of "
      "its loyalty programme. Use only the facts given. Name no discount, "
      "points or price other than those in the facts, and no personal "
      "details. At most %d characters. Reply with the message text only.",
      c->max_chars);
  json_t *body =
      json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s}],s:i,s:f}", "model", c->model,
                "messages", "role", "system", "content", system, "role", "user",
                "content", facts, "max_tokens", 200, "temperature", 0.2);
  free(system);
  if (!body)
    return lp_err(errstr, errstr_size, "copy: cannot build the request");
  out->method = "POST";
  out->url = lp_xstrdup(c->url);
  out->body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(body);
  out->headers[out->n_headers++] =
      lp_xasprintf("Authorization: Bearer %s", c->key ? c->key : "");
  out->headers[out->n_headers++] = lp_xstrdup("Content-Type: application/json");
  const char *path = strstr(c->url, "://");
  path = path ? strchr(path + 3, '/') : NULL;
  out->summary = lp_xasprintf("POST %s model=%s", path ? path : "/", c->model);
  return 0;
}

char *lp_copy_parse(const char *body, size_t len, char *errstr,
                    size_t errstr_size) {
  json_error_t je;
  json_t *root = json_loadb(body ? body : "", len, 0, &je);
  if (!root) {
    lp_err(errstr, errstr_size, "copy: the answer is not JSON (%s)", je.text);
    return NULL;
  }
  json_t *content = json_object_get(
      json_object_get(json_array_get(json_object_get(root, "choices"), 0),
                      "message"),
      "content");
  char *text =
      json_is_string(content) ? lp_xstrdup(json_string_value(content)) : NULL;
  if (!text)
    lp_err(errstr, errstr_size,
           "copy: the answer has no choices[0].message.content string");
  json_decref(root);
  return text;
}

/* ---- the guardrail ------------------------------------------------------ */

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

/* Case-insensitive prefix. */
static int starts_with(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++)
    if (tolower((unsigned char)*s) != *prefix)
      return 0;
  return 1;
}

/* A currency named right before position i — $, £, € (UTF-8) or a
 * three-letter code such as "USD " — skipping one space: its ISO code
 * into code[4], 1; else 0. */
static int currency_before(const char *text, size_t i, char code[4]) {
  if (i > 0 && text[i - 1] == ' ')
    i--;
  const char *iso = NULL;
  if (i >= 1 && text[i - 1] == '$')
    iso = "USD";
  else if (i >= 2 && (unsigned char)text[i - 2] == 0xC2 &&
           (unsigned char)text[i - 1] == 0xA3)
    iso = "GBP";
  else if (i >= 3 && (unsigned char)text[i - 3] == 0xE2 &&
           (unsigned char)text[i - 2] == 0x82 &&
           (unsigned char)text[i - 1] == 0xAC)
    iso = "EUR";
  if (iso) {
    memcpy(code, iso, 4);
    return 1;
  }
  if (i >= 3 && isupper((unsigned char)text[i - 1]) &&
      isupper((unsigned char)text[i - 2]) &&
      isupper((unsigned char)text[i - 3]) &&
      (i == 3 || !isalpha((unsigned char)text[i - 4]))) {
    memcpy(code, text + i - 3, 3);
    code[3] = '\0';
    return 1;
  }
  return 0;
}

enum amount_kind { AMOUNT_NONE, AMOUNT_PERCENT, AMOUNT_POINTS, AMOUNT_MONEY };

/* What the words after a number say it is (money: its ISO code into
 * code[4]). */
static enum amount_kind kind_after(const char *p, char code[4]) {
  while (*p == ' ')
    p++;
  if (*p == '%' || starts_with(p, "percent") || starts_with(p, "per cent"))
    return AMOUNT_PERCENT;
  if (starts_with(p, "point") || starts_with(p, "pts"))
    return AMOUNT_POINTS;
  static const struct {
    const char *word, *iso;
  } names[] = {{"\xe2\x82\xac", "EUR"},
               {"euro", "EUR"},
               {"dollar", "USD"},
               {"pound", "GBP"}};
  for (size_t i = 0; i < LP_ARRAY_LEN(names); i++)
    if (starts_with(p, names[i].word)) {
      memcpy(code, names[i].iso, 4);
      return AMOUNT_MONEY;
    }
  if (isupper((unsigned char)p[0]) && isupper((unsigned char)p[1]) &&
      isupper((unsigned char)p[2]) && !isalpha((unsigned char)p[3])) {
    memcpy(code, p, 3); /* "10.00 EUR" */
    code[3] = '\0';
    return AMOUNT_MONEY;
  }
  return AMOUNT_NONE;
}

int lp_copy_check(const struct lp_reward_decision *d, const char *text,
                  int max_chars, char *errstr, size_t errstr_size) {
  if (!text)
    return lp_err(errstr, errstr_size, "guardrail: no text");
  size_t len = strlen(text);
  if (!lp_utf8_valid(text, len))
    return lp_err(errstr, errstr_size, "guardrail: the text is not UTF-8");
  const char *t = text;
  while (*t && isspace((unsigned char)*t))
    t++;
  if (!*t)
    return lp_err(errstr, errstr_size, "guardrail: the text is empty");
  size_t chars = utf8_chars(text);
  if (max_chars > 0 && chars > (size_t)max_chars)
    return lp_err(errstr, errstr_size,
                  "guardrail: the text is too long (%zu characters, at most "
                  "%d)",
                  chars, max_chars);
  const struct lp_action *a = &d->action;
  for (size_t i = 0; i < len;) {
    if (!isdigit((unsigned char)text[i]) ||
        (i > 0 &&
         (isalnum((unsigned char)text[i - 1]) || text[i - 1] == '.'))) {
      i++;
      continue;
    }
    /* A number: digits with thousands commas, an optional decimal part.
     * One too long for num is kept cut, so it matches no amount. */
    char num[48];
    size_t n = 0, j = i;
    int cut = 0;
    while (j < len &&
           (isdigit((unsigned char)text[j]) ||
            (text[j] == ',' && isdigit((unsigned char)text[j + 1])))) {
      if (text[j] != ',') {
        if (n + 1 < sizeof(num))
          num[n++] = text[j];
        else
          cut = 1;
      }
      j++;
    }
    if (j + 1 < len && text[j] == '.' && isdigit((unsigned char)text[j + 1])) {
      do {
        if (n + 1 < sizeof(num))
          num[n++] = text[j];
        else
          cut = 1;
        j++;
      } while (j < len && isdigit((unsigned char)text[j]));
    }
    num[n] = '\0';
    char code[4] = "";
    enum amount_kind k = currency_before(text, i, code)
                             ? AMOUNT_MONEY
                             : kind_after(text + j, code);
    int64_t micros = 0;
    int parsed = !cut && lp_money_parse(num, &micros) == 0;
    if (k == AMOUNT_MONEY && d->currency && code[0] &&
        strcmp(code, d->currency) != 0)
      return lp_err(errstr, errstr_size,
                    "guardrail: the text names an amount in %s but the "
                    "decision's currency is %s",
                    code, d->currency);
    switch (k) {
    case AMOUNT_PERCENT:
      if (!parsed || a->kind != LP_ACTION_DISCOUNT_CODE ||
          a->discount_percent <= 0 ||
          micros != (int64_t)a->discount_percent * 1000000)
        return lp_err(
            errstr, errstr_size,
            "guardrail: the text names %s%% but the decision "
            "gives %d%%",
            num, a->kind == LP_ACTION_DISCOUNT_CODE ? a->discount_percent : 0);
      break;
    case AMOUNT_POINTS:
      if (!parsed || a->points <= 0 || micros != a->points * 1000000)
        return lp_err(errstr, errstr_size,
                      "guardrail: the text names %s points but the decision "
                      "gives %lld",
                      num, (long long)a->points);
      break;
    case AMOUNT_MONEY:
      if (!parsed || a->discount_amount_micros <= 0 ||
          micros != a->discount_amount_micros) {
        char want[32];
        lp_money_format(a->discount_amount_micros, want, sizeof(want));
        return lp_err(errstr, errstr_size,
                      "guardrail: the text names an amount of %s but the "
                      "decision gives %s",
                      num, want);
      }
      break;
    case AMOUNT_NONE:
      break;
    }
    i = j;
  }
  return 0;
}

int lp_copy_attach(struct lp_http_request *r, enum lp_platform p,
                   const char *text) {
  json_t *root = r->body ? json_loads(r->body, 0, NULL) : NULL;
  json_t *props = NULL;
  if (p == LP_PLATFORM_KLAVIYO)
    props = json_object_get(
        json_object_get(json_object_get(root, "data"), "attributes"),
        "properties");
  else if (p == LP_PLATFORM_BRAZE)
    props = json_object_get(json_array_get(json_object_get(root, "events"), 0),
                            "properties");
  if (!json_is_object(props)) {
    json_decref(root);
    return -1;
  }
  json_object_set_new(props, "loyalty_copy", json_string(text));
  char *body = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(root);
  if (!body)
    return -1;
  free(r->body);
  r->body = body;
  return 0;
}
