/*
 * events.h — the canonical in-memory records of the pipeline: OrderEvent,
 * CustomerEvent, ActivityEvent, RewardDecision, DeadLetter and ActionResult.
 * They mirror schemas/<name>.avsc field for field; the codecs (avro_codec,
 * json_codec) fill and read them, the processors transform them.
 *
 * Ownership: every pointer inside a record is owned by the record (heap,
 * allocated with lp_x* allocators) and released by its _clear function,
 * which also leaves the record zeroed and reusable. Optional strings are
 * NULL when absent. Money is micro-units (see util.h), times are epoch
 * milliseconds, always *event time* from the record, never the wall clock
 * (except the time_ms of a dead letter or an action result: when it was
 * written).
 */
#ifndef LP_EVENTS_H
#define LP_EVENTS_H

#include <stddef.h>
#include <stdint.h>

/* Limits applied by every decoder (bad input beyond them is dead-lettered). */
#define LP_MAX_STRING_BYTES 4096 /* any single string field */
#define LP_MAX_LINE_ITEMS 1000   /* line items per order */
#define LP_MAX_TAGS 100          /* tags per customer */
#define LP_MAX_DISCOUNT_CODES 50 /* discount codes per order */
#define LP_MAX_QUANTITY 1000000  /* per line item */
/* Money bound: |amount| <= 9e9 units (9e15 micros, below 2^53 so amounts
 * stay exact for consumers that read numbers as doubles) — anything larger
 * is a corrupted record, not a real order. */
#define LP_MAX_MONEY_MICROS ((int64_t)9000000000000000LL)

enum lp_order_status {
  LP_ORDER_CREATED = 0,
  LP_ORDER_PAID = 1,
  LP_ORDER_CANCELLED = 2,
  LP_ORDER_REFUNDED = 3,
};
#define LP_ORDER_STATUS_COUNT 4
/* "created", "paid", ...; NULL for out-of-range. */
const char *lp_order_status_name(enum lp_order_status s);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int lp_order_status_parse(const char *name, enum lp_order_status *out);

struct lp_line_item {
  char *product_id;          /* optional (custom items have none) */
  char *sku;                 /* optional */
  char *category;            /* optional: product type / collection */
  char *brand;               /* optional: vendor */
  int32_t quantity;          /* > 0 */
  int64_t unit_price_micros; /* >= 0 */
};

struct lp_order_event {
  char *event_id;    /* required: unique per event (dedupe key) */
  char *shop;        /* required: shop domain or id */
  char *order_id;    /* required */
  char *customer_id; /* required: shop-scoped customer id */
  int64_t event_time_ms;
  enum lp_order_status status;
  char *currency;       /* required: ISO 4217 code, 3 letters */
  int64_t total_micros; /* order total; for refunded: amount refunded */
  int64_t subtotal_micros;
  int64_t discount_micros; /* total discounts (>= 0) */
  int64_t tax_micros;
  char **discount_codes; /* n_discount_codes strings */
  size_t n_discount_codes;
  struct lp_line_item *line_items;
  size_t n_line_items;
  char *source; /* optional: "shopify", "canonical", "import" ... */
  /* Non-NULL: the strings and arrays live in this struct lp_arena (a
   * decoder was given one, see lp_avro_codec_set_arena); clearing then
   * only forgets them. NULL: they are owned, clearing frees them. */
  void *arena;
};

enum lp_customer_kind {
  LP_CUSTOMER_CREATED = 0,
  LP_CUSTOMER_UPDATED = 1,
};
const char *lp_customer_kind_name(enum lp_customer_kind k);
int lp_customer_kind_parse(const char *name, enum lp_customer_kind *out);

enum lp_consent {
  LP_CONSENT_UNKNOWN = 0,
  LP_CONSENT_SUBSCRIBED = 1,
  LP_CONSENT_UNSUBSCRIBED = 2,
};
const char *lp_consent_name(enum lp_consent c);
int lp_consent_parse(const char *name, enum lp_consent *out);

struct lp_customer_event {
  char *event_id;    /* required */
  char *shop;        /* required */
  char *customer_id; /* required */
  int64_t event_time_ms;
  enum lp_customer_kind kind;
  char *email_sha256; /* optional: hex SHA-256 of the lower-cased,
                         trimmed email; the raw email never enters Kafka */
  enum lp_consent marketing_consent;
  char **tags;
  size_t n_tags;
  char *birthday;              /* optional: "YYYY-MM-DD" or "--MM-DD" */
  int64_t customer_created_ms; /* 0 when unknown */
  char *source;                /* optional */
  void *arena;                 /* as in lp_order_event */
};

/* What a customer did (ActivityEvent.kind). */
enum lp_activity_kind {
  LP_ACTIVITY_PAGE_VIEW = 0,
  LP_ACTIVITY_PRODUCT_VIEW = 1,
  LP_ACTIVITY_CART_UPDATED = 2,
  LP_ACTIVITY_CHECKOUT_STARTED = 3,
  LP_ACTIVITY_CART_ABANDONED = 4,
  LP_ACTIVITY_REVIEW_WRITTEN = 5,
  LP_ACTIVITY_REFERRAL = 6,
  LP_ACTIVITY_SOCIAL_FOLLOW = 7,
};
#define LP_ACTIVITY_KIND_COUNT 8
/* "page_view", "product_view", ...; NULL for out-of-range. */
const char *lp_activity_kind_name(enum lp_activity_kind k);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int lp_activity_kind_parse(const char *name, enum lp_activity_kind *out);
/* "page_view, product_view, ..., social_follow": every symbol, for
 * error messages (static). */
const char *lp_activity_kind_list(void);

#define LP_MIN_RATING 1 /* review_written stars */
#define LP_MAX_RATING 5

/* A browsing, cart or engagement signal (ActivityEvent.avsc). Only the
 * fields meaningful for the kind are set; the others are NULL / absent. */
struct lp_activity_event {
  char *event_id;    /* required: unique per event (dedupe key) */
  char *shop;        /* required */
  char *customer_id; /* required: shop-scoped customer id */
  int64_t event_time_ms;
  enum lp_activity_kind kind;
  char *url_path;   /* optional: page path, no host or query */
  char *product_id; /* optional; product_view needs it or sku */
  char *sku;        /* optional */
  char *category;   /* optional */
  char *brand;      /* optional */
  char *cart_id;    /* optional: cart / checkout token */
  char *currency;   /* optional: ISO 4217, required with a cart value */
  /* Cart value (>= 0) when has_cart_value; cart_updated needs one. */
  int64_t cart_value_micros;
  int has_cart_value;
  struct lp_line_item *line_items; /* the cart's lines (n_line_items) */
  size_t n_line_items;
  /* Stars 1..5 when has_rating: review_written needs one, the other kinds
   * must have none. */
  int32_t rating;
  int has_rating;
  char *referral_code;        /* optional (referral) */
  char *referred_customer_id; /* optional (referral) */
  char *network;              /* optional (social_follow) */
  char *source;               /* optional */
  void *arena;                /* as in lp_order_event */
};

enum lp_action_kind {
  LP_ACTION_POINTS = 0,
  LP_ACTION_REWARD = 1,
  LP_ACTION_DISCOUNT_CODE = 2,
  LP_ACTION_TIER_CHANGE = 3,
  LP_ACTION_MESSAGE = 4,
  LP_ACTION_SCORE_SYNC = 5, /* write the member's scores to profiles */
};
#define LP_ACTION_KIND_COUNT 6
const char *lp_action_kind_name(enum lp_action_kind k);
int lp_action_kind_parse(const char *name, enum lp_action_kind *out);

enum lp_approval_hint {
  LP_APPROVAL_NONE = 0,
  LP_APPROVAL_RECOMMENDED = 1,
  LP_APPROVAL_REQUIRED = 2,
};
const char *lp_approval_hint_name(enum lp_approval_hint a);
int lp_approval_hint_parse(const char *name, enum lp_approval_hint *out);

/* One input the decision read, as name and canonical text value; also
 * one profile attribute a score_sync action writes. */
struct lp_feature {
  char *name;
  char *value;
};

/* The action's parameters: only those meaningful for the kind are set. */
struct lp_action {
  enum lp_action_kind kind;
  int64_t points;           /* POINTS: points to award (after multiplier) */
  char *reward_id;          /* REWARD: catalogue reward id */
  int32_t discount_percent; /* DISCOUNT_CODE: 0..100, or 0 with amount */
  int64_t discount_amount_micros; /* DISCOUNT_CODE: fixed amount */
  char *tier;                     /* TIER_CHANGE: target tier */
  char *template_id;              /* MESSAGE (and optional for others) */
  char *channel;                  /* MESSAGE: "email", "sms", "push" */
  char *brand;                    /* optional scope: e.g. favourite brand */
  char *category;                 /* optional scope: e.g. favourite category */
  /* SCORE_SYNC: the profile attributes to write (name, value), in a
   * fixed order; empty for other kinds. */
  struct lp_feature *attributes;
  size_t n_attributes;
};

struct lp_explanation {
  char *rule_id;
  int32_t rule_version;
  char *model_version;         /* optional: NULL until models exist */
  char *summary;               /* human-readable: why the rule fired */
  struct lp_feature *features; /* in a deterministic (rule) order */
  size_t n_features;
};

struct lp_reward_decision {
  char *decision_id; /* 32 hex chars, see decision.h */
  char *shop;
  char *customer_id;
  char *trigger_event_id;
  char *trigger_kind; /* "order" or "customer" */
  char *rule_id;
  int32_t rule_version;
  struct lp_action action;
  int64_t estimated_cost_micros;
  char *currency;        /* optional: currency of the cost */
  int64_t event_time_ms; /* the trigger's event time */
  enum lp_approval_hint approval;
  struct lp_explanation explanation;
};

struct lp_dead_letter {
  char *source_topic;
  int32_t source_partition;
  int64_t source_offset;
  uint8_t *source_key; /* optional (NULL, len 0) */
  size_t source_key_len;
  uint8_t *original; /* the record's bytes as received */
  size_t original_len;
  char *processor;
  char *reason;    /* which field and why, for a person */
  char *field;     /* optional: the offending field path */
  int64_t time_ms; /* wall clock when dead-lettered */
};

/* What became of one decision (ActionResult.avsc). */
enum lp_action_outcome {
  LP_OUTCOME_ISSUED = 0,       /* the platform applied it */
  LP_OUTCOME_ALREADY_DONE = 1, /* a redelivery: done before, no call made */
  LP_OUTCOME_PENDING_APPROVAL =
      2,                   /* parked in the approval queue, budget held */
  LP_OUTCOME_REJECTED = 3, /* a person rejected it */
  LP_OUTCOME_EXPIRED = 4,  /* approval never came in time */
  LP_OUTCOME_BLOCKED = 5,  /* a guardrail or kill switch stopped it */
  LP_OUTCOME_FAILED = 6,   /* permanent failure (also dead-lettered) */
};
#define LP_OUTCOME_COUNT 7
/* "issued", "already_done", "pending_approval", "rejected", "expired",
 * "blocked", "failed"; NULL for out-of-range. */
const char *lp_action_outcome_name(enum lp_action_outcome o);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int lp_action_outcome_parse(const char *name, enum lp_action_outcome *out);

/* The executor's audit record of one decision outcome (the actions topic).
 * Required strings: decision_id, shop, customer_id, trigger_event_id,
 * rule_id; the others are optional (NULL). Free text (request_summary,
 * reason) never carries credentials or raw personal data. */
struct lp_action_result {
  char *decision_id;
  char *shop;
  char *customer_id;
  char *trigger_event_id;
  char *rule_id;
  int32_t rule_version;
  char *model_version; /* optional (NULL) */
  enum lp_action_kind action_kind;
  char *platform; /* optional: "loyaltylion", "smile", "klaviyo", "braze" */
  enum lp_action_outcome outcome;
  char *guardrail; /* optional: e.g. "ok", "member_cap", "campaign_budget",
                      "frequency_cap", "kill_switch:rule:<id>" */
  char *request_summary;    /* optional: method, path and the amounts sent;
                               never credentials or personal data */
  int32_t http_status;      /* last HTTP status seen, 0 = no call */
  char *platform_reference; /* optional: the platform's id for the effect */
  int32_t attempts;         /* HTTP attempts made */
  int64_t latency_ms;       /* first attempt to outcome */
  char *reason;             /* optional: detail for a person */
  char *actor;              /* optional: who approved or rejected */
  int64_t event_time_ms;    /* the decision's event time */
  int64_t time_ms;          /* wall clock of the outcome */
  /* Generated message copy (all optional; NULL when the decision sent no
   * message text or no copy endpoint is configured). */
  char *copy_source; /* "generated" (the model's text was sent) or
                        "template" (the template alone: fallback) */
  char *copy_model;  /* the chat model asked */
  char *copy_prompt; /* the prompt's inputs (facts of the decision) */
  char *copy_output; /* what the model answered, sent or not */
  char *copy_note;   /* why the template was used: timeout, guardrail */
};

void lp_order_event_clear(struct lp_order_event *ev);
void lp_customer_event_clear(struct lp_customer_event *ev);
void lp_activity_event_clear(struct lp_activity_event *ev);
void lp_action_clear(struct lp_action *a);
void lp_explanation_clear(struct lp_explanation *e);
void lp_reward_decision_clear(struct lp_reward_decision *d);
void lp_dead_letter_clear(struct lp_dead_letter *dl);
void lp_action_result_clear(struct lp_action_result *r);

/*
 * Semantic validation shared by every decoder: required fields present,
 * limits respected, quantities positive, money within LP_MAX_MONEY_MICROS,
 * currency three upper-case letters, strings valid UTF-8.
 * Returns 0, or -1 with "field: reason" in errstr.
 */
int lp_order_event_validate(const struct lp_order_event *ev, char *errstr,
                            size_t errstr_size);
int lp_customer_event_validate(const struct lp_customer_event *ev, char *errstr,
                               size_t errstr_size);
/* An activity event, as above plus what its kind needs: product_view a
 * product_id or sku; cart_updated a cart value and a currency;
 * review_written a rating 1..5 (no other kind has one). A currency is
 * required whenever a cart value is set; amounts out of range say so with
 * the amount ("cart_value: negative (-5.00)"). */
int lp_activity_event_validate(const struct lp_activity_event *ev, char *errstr,
                               size_t errstr_size);

/*
 * Rejects an event time more than max_future_ms after now_ms (the wall
 * clock): a far-future record is a broken producer clock or a corrupted
 * record, and a processor dead-letters it rather than let it move the
 * member's event-time clock (and every window and timer keyed on it) years
 * ahead. Events in the past are always plausible here (the validators
 * bound them to 1990..2200). Processors call it with their
 * max.future.skew setting. Returns 0, or -1 with
 * "event_time: 2031-01-01T00:00:00.000Z is 5 years after now; the limit is
 * max.future.skew (1 hour)".
 */
int lp_event_time_plausible(int64_t event_ms, int64_t now_ms,
                            int64_t max_future_ms, char *errstr,
                            size_t errstr_size);

/* Kafka key of a member: "<shop>:<customer_id>" (caller frees). */
char *lp_member_key(const char *shop, const char *customer_id);

#endif
