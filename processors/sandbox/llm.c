/*
 * llm.c — an OpenAI-compatible chat-completions stub, the sandbox's fifth
 * platform ("llm"), so the executor's generated message copy can be tested
 * over real HTTP: POST /v1/chat/completions with OpenAI's Bearer auth,
 * request validation, error envelope
 * {"error":{"message","type","param","code"}} and chat.completion shape.
 *
 * The reply is deterministic: sb_llm_compose builds it from the facts
 * ("key: value" lines) of the last user message, so a test knows the text
 * and its amounts in advance. A mode (llm.mode, POST /_sandbox/llm) makes
 * it misbehave the ways a model or its API does: an empty or 2,000-
 * character text, wrong amounts, a slow answer, 500, 429.
 *
 * It passes through dispatch.c like the platforms (413, 401, 404/405, the
 * fault table, /_sandbox/stats, in-flight counts). A completion changes
 * nothing in any platform's world, so it adds no ledger entry; GET
 * /_sandbox/llm shows the answers by mode and the last prompt's facts
 * instead. Mode and slow_ms live in struct sandbox and survive reset; the
 * counters, completion ids and last prompt here do not. The state is
 * bounded without the ledger: fixed counters and one last prompt (at most
 * body.max).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"
#include "util.h"

enum { LLM_COMPLETIONS };

/* The length of a reply in long mode, in characters. */
#define LLM_LONG_CHARS 2000

struct sb_llm_state {
  int64_t next_id; /* of the next completion: chatcmpl-<next_id> */
  long requests[SB_N_LLM_MODES];
  long by_status[SB_N_LLM_MODES][600];
  json_t *last; /* owned; the last completion's prompt and reply, or NULL */
};

#define SB_LLM_MODE_NAME(name, text) text,
static const char *const mode_names[SB_N_LLM_MODES] = {
    SB_LLM_MODES(SB_LLM_MODE_NAME)};
#undef SB_LLM_MODE_NAME

int sb_llm_mode_parse(const char *name) {
  for (int i = 0; name && i < SB_N_LLM_MODES; i++)
    if (strcmp(name, mode_names[i]) == 0)
      return i;
  return -1;
}

const char *sb_llm_mode_name(enum sb_llm_mode m) {
  LP_ASSERT(m >= 0 && m < SB_N_LLM_MODES);
  return mode_names[m];
}

struct sb_llm_state *sb_llm_state_new(void) {
  struct sb_llm_state *s = lp_xcalloc(1, sizeof(*s));
  s->next_id = 1;
  return s;
}

void sb_llm_state_destroy(struct sb_llm_state **sp) {
  if (!sp || !*sp)
    return;
  json_decref((*sp)->last);
  free(*sp);
  *sp = NULL;
}

/* ---- the reply text (pure) ---------------------------------------------- */

static size_t utf8_chars(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

/* [*s, *end) without surrounding blanks. */
static void trim(const char **s, const char **end) {
  while (*s < *end && (**s == ' ' || **s == '\t' || **s == '\r'))
    (*s)++;
  while (*end > *s &&
         ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
    (*end)--;
}

/* The facts of a prompt as a JSON object of strings (caller owns): each
 * "key: value" line, both sides trimmed; a later line of a key wins;
 * lines without ':' or with an empty key are not facts. */
static json_t *facts_parse(const char *text) {
  json_t *facts = json_object();
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    const char *colon = memchr(line, ':', len);
    if (colon) {
      const char *k = line, *k_end = colon;
      const char *v = colon + 1, *v_end = line + len;
      trim(&k, &k_end);
      trim(&v, &v_end);
      if (k_end > k) {
        /* Cut at ASCII bytes of valid UTF-8, so both stay valid. */
        char *key = lp_xstrndup(k, (size_t)(k_end - k));
        json_t *value = json_stringn(v, (size_t)(v_end - v));
        if (value)
          json_object_set_new(facts, key, value);
        free(key);
      }
    }
    if (!end)
      break;
    line = end + 1;
  }
  return facts;
}

/* 1 when s is an amount the stub understands: 1..15 digits and, when
 * decimals, optionally '.' and 1..6 more. Other values are not facts. */
static int is_amount(const char *s, int decimals) {
  size_t i = 0;
  while (isdigit((unsigned char)s[i]))
    i++;
  if (i == 0 || i > 15)
    return 0;
  if (!s[i])
    return 1;
  if (!decimals || s[i] != '.')
    return 0;
  size_t first = ++i;
  while (isdigit((unsigned char)s[i]))
    i++;
  return i > first && i - first <= 6 && !s[i];
}

/* The amount as given, or (wrong) with by added to its whole part, the
 * decimals kept: "10.00" + 1 = "11.00". */
static const char *amount_text(const char *s, int wrong, long long by,
                               char *out, size_t out_size) {
  if (!wrong)
    return s;
  char *rest;
  long long whole = strtoll(s, &rest, 10);
  snprintf(out, out_size, "%lld%s", whole + by, rest);
  return out;
}

/* A non-empty string fact, or NULL (borrowed). */
static const char *fact(const json_t *facts, const char *key) {
  const char *v = sb_json_string(facts, key);
  return v && *v ? v : NULL;
}

/* The reply of ok mode, or of wrong_amount mode (wrong); caller frees. */
static char *compose_text(const json_t *facts, int wrong) {
  const char *points = fact(facts, "points");
  const char *percent = fact(facts, "discount_percent");
  const char *amount = fact(facts, "discount_amount");
  const char *currency = fact(facts, "currency");
  const char *brand = fact(facts, "brand");
  const char *category = fact(facts, "category");
  if (points && !is_amount(points, 0))
    points = NULL;
  if (percent && !is_amount(percent, 1))
    percent = NULL;
  if (amount && !is_amount(amount, 1))
    amount = NULL;
  if (!points && !percent && !amount)
    return lp_xstrdup(
        wrong ? "Thanks for shopping with us - here are 100 bonus points for "
                "you."
              : "Thanks for shopping with us - we have something new for "
                "you.");
  /* What a discount is on: "Acme shoes", "Acme", "shoes" or nothing. */
  char *target = brand && category ? lp_xasprintf("%s %s", brand, category)
                 : brand           ? lp_xstrdup(brand)
                 : category        ? lp_xstrdup(category)
                                   : NULL;
  struct lp_buf b;
  lp_buf_init(&b);
  char num[48];
  if (points) {
    const char *n = amount_text(points, wrong, 100, num, sizeof(num));
    lp_buf_appendf(&b, "Thanks for being with us! You have earned %s %s.", n,
                   strcmp(n, "1") == 0 ? "point" : "points");
  }
  if (percent) {
    const char *n = amount_text(percent, wrong, 5, num, sizeof(num));
    if (b.len)
      lp_buf_append_byte(&b, ' ');
    if (target)
      lp_buf_appendf(&b, "We saved you %s%% off %s on your next order.", n,
                     target);
    else
      lp_buf_appendf(&b, "We saved you %s%% off your next order.", n);
  }
  if (amount) {
    const char *n = amount_text(amount, wrong, 1, num, sizeof(num));
    char *money = currency ? lp_xasprintf("%s %s", n, currency) : lp_xstrdup(n);
    if (b.len)
      lp_buf_append_byte(&b, ' ');
    if (target)
      lp_buf_appendf(&b, "Here is %s off %s on your next order.", money,
                     target);
    else
      lp_buf_appendf(&b, "Here is %s off your next order.", money);
    free(money);
  }
  free(target);
  char *text = lp_xstrdup(lp_buf_cstr(&b));
  lp_buf_free(&b);
  return text;
}

/* text followed by amount-free filler, cut to exactly chars characters
 * (at a character boundary); consumes text, caller frees the result. */
static char *lengthen(char *text, size_t chars) {
  static const char filler[] = " We are always glad to see you again.";
  struct lp_buf b;
  lp_buf_init(&b);
  lp_buf_append_str(&b, text);
  free(text);
  while (utf8_chars((const char *)b.data, b.len) < chars)
    lp_buf_append_str(&b, filler);
  size_t n = 0, cut = 0;
  for (; cut < b.len; cut++) {
    if (((unsigned char)b.data[cut] & 0xC0) != 0x80 && n++ == chars)
      break;
  }
  char *out = lp_xstrndup((const char *)b.data, cut);
  lp_buf_free(&b);
  return out;
}

static char *compose(const json_t *facts, enum sb_llm_mode mode) {
  switch (mode) {
  case SB_LLM_EMPTY:
    return lp_xstrdup("");
  case SB_LLM_LONG:
    return lengthen(compose_text(facts, 0), LLM_LONG_CHARS);
  case SB_LLM_WRONG_AMOUNT:
    return compose_text(facts, 1);
  default:
    return compose_text(facts, 0);
  }
}

char *sb_llm_compose(const char *prompt, enum sb_llm_mode mode) {
  json_t *facts = facts_parse(prompt ? prompt : "");
  char *text = compose(facts, mode);
  json_decref(facts);
  return text;
}

/* ---- the platform ----------------------------------------------------- */

static int llm_owns(const char *path) {
  return strncmp(path, "/v1/chat/", 9) == 0 || strcmp(path, "/v1/chat") == 0;
}

static int llm_route(const char *method, const char *path) {
  if (strcmp(path, "/v1/chat/completions") != 0)
    return -404;
  return strcmp(method, "POST") == 0 ? LLM_COMPLETIONS : -405;
}

static int llm_auth(const struct sandbox *sb, const struct sb_request *req,
                    const char **credential, size_t *len) {
  return sb_auth_scheme(req, "Bearer", sb->settings->key[SB_LLM], credential,
                        len);
}

static json_t *nullable_string(const char *s) {
  return s ? json_string(s) : json_null();
}

/* OpenAI's error envelope; param and code may be NULL (JSON null). */
static void envelope(struct sb_response *resp, int status, const char *type,
                     const char *message, const char *param, const char *code) {
  json_t *body =
      json_pack("{s{ss ss so so}}", "error", "message", message, "type", type,
                "param", nullable_string(param), "code", nullable_string(code));
  LP_ASSERT(body);
  sb_respond_json(resp, status, body, NULL);
}

static void llm_error(struct sandbox *sb, struct sb_response *resp, int status,
                      const char *code, const char *message) {
  (void)sb;
  const char *type = "invalid_request_error";
  if (status == 401) {
    code = "invalid_api_key";
    message = "Incorrect API key provided. Send 'Authorization: Bearer "
              "<key>' with a key of llm.key.";
  } else if (status == 429) {
    type = "rate_limit_error";
    code = code ? code : "rate_limit_exceeded";
    message = message ? message
                      : "Rate limit reached for requests. Please try again "
                        "later.";
  } else if (status >= 500) {
    type = "server_error";
    message = message         ? message
              : status == 503 ? "The server is overloaded or not ready yet."
                              : "The server had an error while processing your "
                                "request. Sorry about that!";
  }
  envelope(resp, status, type, message ? message : "Invalid request", NULL,
           code);
}

/* No windows: a 429 comes only from a fault or rate_limited mode. */
static int llm_limits(const struct sandbox *sb, int endpoint, int *group,
                      struct sb_window w[2]) {
  (void)sb;
  (void)endpoint;
  (void)w;
  *group = 0;
  return 0;
}

/* 429 with Retry-After: retry_after_s of the fault, else 1 s. */
static int64_t llm_throttle(struct sandbox *sb, struct sb_response *resp,
                            enum sb_throttle_reason reason,
                            const struct sb_rate *rate, int64_t now_ms,
                            int64_t hint_ms) {
  (void)reason;
  (void)rate;
  int64_t seconds = hint_ms > 0 ? (hint_ms + 999) / 1000 : 1;
  llm_error(sb, resp, 429, NULL, NULL);
  sb_response_header(resp, "Retry-After", "%" PRId64, seconds);
  return now_ms + seconds * 1000;
}

/* A 400 in the making: OpenAI's wording, the field as param. */
struct llm_invalid {
  char message[320];
  char param[96];   /* "" = null */
  const char *code; /* static; NULL = null */
};

__attribute__((format(printf, 4, 5))) static int invalid(struct llm_invalid *e,
                                                         const char *param,
                                                         const char *code,
                                                         const char *fmt, ...) {
  snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
  e->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof(e->message), fmt, ap);
  va_end(ap);
  return -1;
}

static const char *type_word(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
    return "an integer";
  case JSON_REAL:
    return "a decimal";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  case JSON_NULL:
    return "null";
  }
  return "a value";
}

static int wrong_type(struct llm_invalid *e, const char *param,
                      const char *expected, const json_t *v) {
  return invalid(e, param, "invalid_type",
                 "Invalid type for '%s': expected %s, but got %s instead.",
                 param, expected, type_word(v));
}

/* One element of messages. */
static int check_message(const json_t *m, size_t i, struct llm_invalid *e) {
  char param[96];
  snprintf(param, sizeof(param), "messages[%zu]", i);
  if (!json_is_object(m))
    return wrong_type(e, param, "an object", m);
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)m, key, value) {
    if (strcmp(key, "role") != 0 && strcmp(key, "content") != 0 &&
        strcmp(key, "name") != 0) {
      snprintf(param, sizeof(param), "messages[%zu].%.40s", i, key);
      return invalid(e, param, "unknown_parameter",
                     "Unrecognized request argument supplied: %s", param);
    }
  }
  json_t *role = json_object_get(m, "role");
  snprintf(param, sizeof(param), "messages[%zu].role", i);
  if (!role || json_is_null(role))
    return invalid(e, param, "missing_required_parameter",
                   "Missing required parameter: '%s'.", param);
  if (!json_is_string(role))
    return wrong_type(e, param, "a string", role);
  const char *r = json_string_value(role);
  if (strcmp(r, "system") != 0 && strcmp(r, "user") != 0 &&
      strcmp(r, "assistant") != 0)
    return invalid(e, param, "invalid_value",
                   "Invalid value for '%s': '%.40s'. Supported values are: "
                   "'system', 'user' and 'assistant'.",
                   param, r);
  json_t *content = json_object_get(m, "content");
  snprintf(param, sizeof(param), "messages[%zu].content", i);
  if (!content || json_is_null(content))
    return invalid(e, param, "missing_required_parameter",
                   "Missing required parameter: '%s'.", param);
  if (!json_is_string(content))
    return wrong_type(e, param, "a string", content);
  json_t *name = json_object_get(m, "name");
  snprintf(param, sizeof(param), "messages[%zu].name", i);
  if (name && !json_is_string(name))
    return wrong_type(e, param, "a string", name);
  return 0;
}

/* The accepted fields of a request: the four the stub reads, then those
 * it accepts and ignores (n and stream only at their defaults). */
static const char *const request_fields[] = {
    "model", "messages", "max_tokens", "temperature", "user",
    "n",     "stream",   "seed",       "top_p",       "stop"};

/* 0 when body is a request the stub serves, else -1 with e. */
static int check_request(const json_t *body, struct llm_invalid *e) {
  if (!json_is_object(body))
    return invalid(e, NULL, "invalid_type",
                   "Invalid type for the request body: expected an object, "
                   "but got %s instead.",
                   type_word(body));
  json_t *model = json_object_get(body, "model");
  if (!model || json_is_null(model))
    return invalid(e, "model", "missing_required_parameter",
                   "Missing required parameter: 'model'.");
  if (!json_is_string(model))
    return wrong_type(e, "model", "a string", model);
  if (!*json_string_value(model))
    return invalid(e, "model", "invalid_value",
                   "Invalid value for 'model': must not be empty.");
  json_t *messages = json_object_get(body, "messages");
  if (!messages || json_is_null(messages))
    return invalid(e, "messages", "missing_required_parameter",
                   "Missing required parameter: 'messages'.");
  if (!json_is_array(messages))
    return wrong_type(e, "messages", "an array", messages);
  if (json_array_size(messages) == 0)
    return invalid(e, "messages", "empty_array",
                   "Invalid 'messages': empty array. Expected an array with "
                   "minimum length 1, but got an empty array instead.");
  size_t i;
  json_t *m;
  json_array_foreach(messages, i, m) {
    if (check_message(m, i, e) != 0)
      return -1;
  }
  json_t *v = json_object_get(body, "max_tokens");
  if (v && !json_is_null(v)) {
    if (!json_is_integer(v))
      return wrong_type(e, "max_tokens", "an integer", v);
    if (json_integer_value(v) < 1)
      return invalid(e, "max_tokens", "integer_below_min_value",
                     "Invalid 'max_tokens': integer below minimum value. "
                     "Expected a value >= 1, but got %" JSON_INTEGER_FORMAT
                     " instead.",
                     json_integer_value(v));
  }
  v = json_object_get(body, "temperature");
  if (v && !json_is_null(v)) {
    if (!json_is_number(v))
      return wrong_type(e, "temperature", "a number", v);
    double t = json_number_value(v);
    if (t < 0)
      return invalid(e, "temperature", "decimal_below_min_value",
                     "Invalid 'temperature': decimal below minimum value. "
                     "Expected a value >= 0, but got %g instead.",
                     t);
    if (t > 2)
      return invalid(e, "temperature", "decimal_above_max_value",
                     "Invalid 'temperature': decimal above maximum value. "
                     "Expected a value <= 2, but got %g instead.",
                     t);
  }
  v = json_object_get(body, "n");
  if (v && !json_is_null(v) &&
      (!json_is_integer(v) || json_integer_value(v) != 1))
    return invalid(e, "n", "invalid_value",
                   "Invalid value for 'n': the sandbox answers one choice; "
                   "send 1 or leave it out.");
  v = json_object_get(body, "stream");
  if (v && !json_is_null(v) && !json_is_false(v))
    return invalid(e, "stream", "invalid_value",
                   "Invalid value for 'stream': the sandbox does not stream; "
                   "send false or leave it out.");
  const char *key;
  json_object_foreach((json_t *)body, key, v) {
    size_t k = 0;
    while (k < LP_ARRAY_LEN(request_fields) &&
           strcmp(key, request_fields[k]) != 0)
      k++;
    if (k == LP_ARRAY_LEN(request_fields)) {
      char param[64];
      snprintf(param, sizeof(param), "%.60s", key);
      return invalid(e, param, "unknown_parameter",
                     "Unrecognized request argument supplied: %s", param);
    }
  }
  return 0;
}

/* About four characters a token, rounded up: the usual rule of thumb. */
static json_int_t tokens(const char *s) {
  return (json_int_t)((utf8_chars(s, strlen(s)) + 3) / 4);
}

/* The content of the last user message, or "" (borrowed). */
static const char *last_user_content(const json_t *messages) {
  for (size_t i = json_array_size(messages); i-- > 0;) {
    const json_t *m = json_array_get(messages, i);
    const char *role = sb_json_string(m, "role");
    if (role && strcmp(role, "user") == 0)
      return sb_json_string(m, "content");
  }
  return "";
}

/* The completion of a request in a mode; fills resp. Lock held. */
static void complete(struct sandbox *sb, enum sb_llm_mode mode,
                     const struct sb_request *req, struct sb_response *resp) {
  /* In the order of dispatch.c's layers: 429, then 5xx, before the
   * request is looked at. */
  if (mode == SB_LLM_RATE_LIMITED) {
    envelope(resp, 429, "rate_limit_error",
             "Rate limit reached for requests. Please try again in 1s.", NULL,
             "rate_limit_exceeded");
    sb_response_header(resp, "Retry-After", "1");
    return;
  }
  if (mode == SB_LLM_ERROR) {
    envelope(resp, 500, "server_error",
             "The server had an error while processing your request. Sorry "
             "about that!",
             NULL, NULL);
    return;
  }
  if (!req->json && req->body_len > 0) {
    char msg[320];
    snprintf(msg, sizeof(msg),
             "We could not parse the JSON body of your request (%s). The "
             "API expects a JSON payload.",
             req->json_error ? req->json_error : "malformed");
    envelope(resp, 400, "invalid_request_error", msg, NULL, NULL);
    return;
  }
  json_t *empty = NULL;
  const json_t *body = req->json;
  if (!body)
    body = empty = json_object(); /* no body: "model" is missing */
  struct llm_invalid e;
  int rc = check_request(body, &e);
  json_decref(empty);
  if (rc != 0) {
    envelope(resp, 400, "invalid_request_error", e.message,
             *e.param ? e.param : NULL, e.code);
    return;
  }

  const char *model = sb_json_string(body, "model");
  json_t *messages = json_object_get(body, "messages");
  json_int_t prompt_chars = 0;
  size_t i;
  json_t *m;
  json_array_foreach(messages, i, m) {
    const char *c = sb_json_string(m, "content");
    prompt_chars += (json_int_t)utf8_chars(c, strlen(c));
  }
  json_t *facts = facts_parse(last_user_content(messages));
  char *text = compose(facts, mode);
  json_int_t prompt_tokens = (prompt_chars + 3) / 4;
  json_int_t completion_tokens = tokens(text);
  char id[40];
  snprintf(id, sizeof(id), "chatcmpl-%" PRId64, sb->llm->next_id++);
  json_t *out = json_pack(
      "{ss ss sI ss s[{si s{ss ss} ss}] s{sI sI sI}}", "id", id, "object",
      "chat.completion", "created", (json_int_t)(req->now_ms / 1000), "model",
      model, "choices", "index", 0, "message", "role", "assistant", "content",
      text, "finish_reason", "stop", "usage", "prompt_tokens", prompt_tokens,
      "completion_tokens", completion_tokens, "total_tokens",
      prompt_tokens + completion_tokens);
  LP_ASSERT(out);
  json_decref(sb->llm->last);
  sb->llm->last =
      json_pack("{ss ss ss so ss}", "id", id, "model", model, "mode",
                sb_llm_mode_name(mode), "facts", facts, "content", text);
  LP_ASSERT(sb->llm->last);
  free(text);
  sb_respond_json(resp, 200, out, NULL);
  if (mode == SB_LLM_SLOW)
    resp->extra_latency_ms = sb->llm_slow_ms;
}

static void llm_handle(struct sandbox *sb, int endpoint,
                       const struct sb_request *req, struct sb_response *resp) {
  LP_ASSERT(endpoint == LLM_COMPLETIONS);
  enum sb_llm_mode mode = sb->llm_mode;
  complete(sb, mode, req, resp);
  LP_ASSERT(resp->status >= 100 && resp->status < 600);
  sb->llm->requests[mode]++;
  sb->llm->by_status[mode][resp->status]++;
}

const struct sb_platform_ops sb_llm_ops = {
    .platform = SB_LLM,
    .owns = llm_owns,
    .route = llm_route,
    .auth = llm_auth,
    .error = llm_error,
    .precheck = NULL,
    .limits = llm_limits,
    .throttle = llm_throttle,
    .decorate = NULL,
    .handle = llm_handle,
};

/* ---- control: /_sandbox/llm ---------------------------------------------- */

int sb_llm_update(struct sandbox *sb, json_t *body, char *errstr,
                  size_t errstr_size) {
  if (!json_is_object(body))
    return lp_err(errstr, errstr_size, "body: must be a JSON object");
  const char *key;
  json_t *value;
  json_object_foreach(body, key, value) {
    if (strcmp(key, "mode") != 0 && strcmp(key, "slow_ms") != 0)
      return lp_err(errstr, errstr_size, "%s: unknown field", key);
  }
  int mode = (int)sb->llm_mode;
  json_t *v = json_object_get(body, "mode");
  if (v) {
    if (!json_is_string(v))
      return lp_err(errstr, errstr_size, "mode: must be a string");
    mode = sb_llm_mode_parse(json_string_value(v));
    if (mode < 0)
      return lp_err(errstr, errstr_size,
                    "mode: \"%s\" is not ok, empty, long, wrong_amount, slow, "
                    "error or rate_limited",
                    json_string_value(v));
  }
  long slow_ms = sb->llm_slow_ms;
  v = json_object_get(body, "slow_ms");
  if (v) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 600000)
      return lp_err(errstr, errstr_size,
                    "slow_ms: must be an integer in 0..600000");
    slow_ms = (long)json_integer_value(v);
  }
  sb->llm_mode = (enum sb_llm_mode)mode;
  sb->llm_slow_ms = slow_ms;
  return 0;
}

json_t *sb_llm_json(const struct sandbox *sb) {
  const struct sb_llm_state *s = sb->llm;
  json_t *by_mode = json_object();
  long requests = 0;
  for (int m = 0; m < SB_N_LLM_MODES; m++) {
    json_t *by_status = json_object();
    for (int code = 100; code < 600; code++)
      if (s->by_status[m][code]) {
        char key[16];
        snprintf(key, sizeof(key), "%d", code);
        json_object_set_new(by_status, key,
                            json_integer((json_int_t)s->by_status[m][code]));
      }
    requests += s->requests[m];
    json_object_set_new(by_mode, mode_names[m],
                        json_pack("{sI so}", "requests",
                                  (json_int_t)s->requests[m], "by_status",
                                  by_status));
  }
  return json_pack(
      "{ss sI sI sI so sO}", "mode", sb_llm_mode_name(sb->llm_mode), "slow_ms",
      (json_int_t)sb->llm_slow_ms, "requests", (json_int_t)requests,
      "completions", (json_int_t)(s->next_id - 1), "by_mode", by_mode, "last",
      s->last ? s->last : json_null());
}
