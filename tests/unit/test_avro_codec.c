/*
 * test_avro_codec.c — the Avro codec (common/avro_codec.c): CRC-64-AVRO and
 * Parsing Canonical Form against the Avro specification's own test vectors,
 * the single-object header byte for byte, round trips of the five records (the
 * sixth, ActivityEvent, in test_activity.c), schema resolution (older writer
 * schemas, registry ids preloaded and fetched from a real HTTP registry on
 * loopback), and hostile input: garbage, every truncation, huge claimed
 * lengths, varint overflow, invalid UTF-8, too many items, trailing bytes,
 * semantic validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>

#include "avro_codec.h"
#include "events.h"
#include "schemas_embed.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * Helpers
 */

static void assert_str_or_null(const char *got, const char *want) {
  if (!want || !got)
    assert_ptr_equal(got, want);
  else
    assert_string_equal(got, want);
}

static struct lp_avro_codec *new_codec(const char *registry_url) {
  char err[256] = "";
  struct lp_avro_codec *c = lp_avro_codec_new(registry_url, err, sizeof(err));
  if (!c)
    fail_msg("lp_avro_codec_new: %s", err);
  return c;
}

static int all_zero(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

/* A hand-made Avro datum, to check the encoder's bytes and to forge
 * hostile records. */
struct bld {
  uint8_t b[16384];
  size_t n;
};

static void b_raw(struct bld *b, const void *p, size_t n) {
  assert_true(b->n + n <= sizeof(b->b));
  memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void b_varint(struct bld *b, uint64_t v) {
  while (v & ~UINT64_C(0x7f)) {
    uint8_t x = (uint8_t)((v & 0x7f) | 0x80);
    b_raw(b, &x, 1);
    v >>= 7;
  }
  uint8_t x = (uint8_t)v;
  b_raw(b, &x, 1);
}

static void b_long(struct bld *b, int64_t v) {
  b_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void b_str(struct bld *b, const char *s) {
  b_long(b, (int64_t)strlen(s));
  b_raw(b, s, strlen(s));
}

/* Single-object header for fingerprint fp. */
static void b_header(struct bld *b, uint64_t fp) {
  uint8_t h[10] = {0xC3, 0x01};
  for (int i = 0; i < 8; i++)
    h[2 + i] = (uint8_t)(fp >> (8 * i));
  b_raw(b, h, sizeof(h));
}

/* Confluent header for schema id. */
static void b_confluent(struct bld *b, uint32_t id) {
  uint8_t h[5] = {0, (uint8_t)(id >> 24), (uint8_t)(id >> 16),
                  (uint8_t)(id >> 8), (uint8_t)id};
  b_raw(b, h, sizeof(h));
}

#define T_TIME INT64_C(1700000000123) /* 2023-11-14T22:13:20.123Z */

/* OrderEvent fields up to (not including) event_time_ms. */
static void b_order_ids(struct bld *b) {
  b_str(b, "e1");
  b_str(b, "s");
  b_str(b, "o1");
  b_str(b, "c1");
}

/* The minimal order below, by hand: every field in schema order. */
static void b_minimal_order(struct bld *b) {
  b_order_ids(b);
  b_long(b, T_TIME);  /* event_time_ms */
  b_long(b, 1);       /* status: paid */
  b_str(b, "USD");    /* currency */
  b_long(b, 1000000); /* total_micros */
  b_long(b, 1000000); /* subtotal_micros */
  b_long(b, 0);       /* discount_micros */
  b_long(b, 0);       /* tax_micros */
  b_long(b, 0);       /* discount_codes: [] */
  b_long(b, 0);       /* line_items: [] */
  b_long(b, 0);       /* source: null branch */
}

static void minimal_order(struct lp_order_event *ev) {
  memset(ev, 0, sizeof(*ev));
  ev->event_id = lp_xstrdup("e1");
  ev->shop = lp_xstrdup("s");
  ev->order_id = lp_xstrdup("o1");
  ev->customer_id = lp_xstrdup("c1");
  ev->event_time_ms = T_TIME;
  ev->status = LP_ORDER_PAID;
  ev->currency = lp_xstrdup("USD");
  ev->total_micros = 1000000;
  ev->subtotal_micros = 1000000;
}

static void full_order(struct lp_order_event *ev) {
  memset(ev, 0, sizeof(*ev));
  ev->event_id = lp_xstrdup("shopify:orders/paid:450789469:2023-11-14");
  ev->shop = lp_xstrdup("café-ünïcode.myshopify.com");
  ev->order_id = lp_xstrdup("450789469");
  ev->customer_id = lp_xstrdup("207119551");
  ev->event_time_ms = T_TIME;
  ev->status = LP_ORDER_REFUNDED;
  ev->currency = lp_xstrdup("EUR");
  ev->total_micros = 404950000;
  ev->subtotal_micros = 398000000;
  ev->discount_micros = 10000000;
  ev->tax_micros = 16950000;
  ev->n_discount_codes = 2;
  ev->discount_codes = lp_xcalloc(2, sizeof(char *));
  ev->discount_codes[0] = lp_xstrdup("TENOFF");
  ev->discount_codes[1] = lp_xstrdup("☕COFFEE");
  ev->n_line_items = 3;
  ev->line_items = lp_xcalloc(3, sizeof(struct lp_line_item));
  ev->line_items[0] = (struct lp_line_item){lp_xstrdup("632910392"),
                                            lp_xstrdup("IPOD2008PINK"),
                                            lp_xstrdup("Music players"),
                                            lp_xstrdup("Apple"),
                                            2,
                                            199000000};
  ev->line_items[1] = (struct lp_line_item){NULL, NULL, NULL, NULL, 1, 0};
  ev->line_items[2] = (struct lp_line_item){
      lp_xstrdup("1"),    NULL, lp_xstrdup("Gifts"), NULL, LP_MAX_QUANTITY,
      LP_MAX_MONEY_MICROS};
  ev->source = lp_xstrdup("shopify");
}

static void assert_order_equal(const struct lp_order_event *a,
                               const struct lp_order_event *b) {
  assert_str_or_null(a->event_id, b->event_id);
  assert_str_or_null(a->shop, b->shop);
  assert_str_or_null(a->order_id, b->order_id);
  assert_str_or_null(a->customer_id, b->customer_id);
  assert_int_equal(a->event_time_ms, b->event_time_ms);
  assert_int_equal(a->status, b->status);
  assert_str_or_null(a->currency, b->currency);
  assert_int_equal(a->total_micros, b->total_micros);
  assert_int_equal(a->subtotal_micros, b->subtotal_micros);
  assert_int_equal(a->discount_micros, b->discount_micros);
  assert_int_equal(a->tax_micros, b->tax_micros);
  assert_int_equal(a->n_discount_codes, b->n_discount_codes);
  for (size_t i = 0; i < a->n_discount_codes; i++)
    assert_str_or_null(a->discount_codes[i], b->discount_codes[i]);
  assert_int_equal(a->n_line_items, b->n_line_items);
  for (size_t i = 0; i < a->n_line_items; i++) {
    const struct lp_line_item *x = &a->line_items[i], *y = &b->line_items[i];
    assert_str_or_null(x->product_id, y->product_id);
    assert_str_or_null(x->sku, y->sku);
    assert_str_or_null(x->category, y->category);
    assert_str_or_null(x->brand, y->brand);
    assert_int_equal(x->quantity, y->quantity);
    assert_int_equal(x->unit_price_micros, y->unit_price_micros);
  }
  assert_str_or_null(a->source, b->source);
}

static void encode_order_ok(struct lp_avro_codec *c,
                            const struct lp_order_event *ev,
                            struct lp_buf *out) {
  char err[256] = "";
  if (lp_avro_encode_order(c, ev, out, err, sizeof(err)) != 0)
    fail_msg("encode order: %s", err);
}

/* Decoding must fail with exactly `want`, leaving out cleared. */
static void expect_order_error(struct lp_avro_codec *c, const void *data,
                               size_t len, const char *want) {
  char err[512] = "";
  struct lp_order_event ev = {0};
  assert_int_equal(lp_avro_decode_order(c, data, len, &ev, err, sizeof(err)),
                   -1);
  assert_string_equal(err, want);
  assert_true(all_zero(&ev, sizeof(ev)));
}

/* ------------------------------------------------------------------------
 * Fingerprints and canonical form: vectors of the Avro specification
 * (share/test/data/schema-tests.txt in apache/avro, cases 000-033; its
 * fingerprints are cross-checked there against the Java implementation).
 */

struct pcf_vector {
  const char *input;
  const char *canonical;
  int has_fingerprint;
  int64_t fingerprint; /* signed, as the file gives them */
};

static const struct pcf_vector pcf_vectors[] = {
    {"\"null\"", "\"null\"", 1, INT64_C(7195948357588979594)},
    {"{\"type\":\"null\"}", "\"null\"", 0, 0},
    {"\"boolean\"", "\"boolean\"", 1, INT64_C(-6970731678124411036)},
    {"{\"type\":\"boolean\"}", "\"boolean\"", 0, 0},
    {"\"int\"", "\"int\"", 1, INT64_C(8247732601305521295)},
    {"{\"type\":\"int\"}", "\"int\"", 0, 0},
    {"\"long\"", "\"long\"", 1, INT64_C(-3434872931120570953)},
    {"{\"type\":\"long\"}", "\"long\"", 0, 0},
    {"\"float\"", "\"float\"", 1, INT64_C(5583340709985441680)},
    {"{\"type\":\"float\"}", "\"float\"", 0, 0},
    {"\"double\"", "\"double\"", 1, INT64_C(-8181574048448539266)},
    {"{\"type\":\"double\"}", "\"double\"", 0, 0},
    {"\"bytes\"", "\"bytes\"", 1, INT64_C(5746618253357095269)},
    {"{\"type\":\"bytes\"}", "\"bytes\"", 0, 0},
    {"\"string\"", "\"string\"", 1, INT64_C(-8142146995180207161)},
    {"{\"type\":\"string\"}", "\"string\"", 0, 0},
    {"[  ]", "[]", 1, INT64_C(-1241056759729112623)},
    {"[ \"int\"  ]", "[\"int\"]", 1, INT64_C(-5232228896498058493)},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 1,
     INT64_C(5392556393470105090)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
     INT64_C(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
     "\"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 1,
     INT64_C(5916914534497305771)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", "
     "\"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", 1,
     INT64_C(-4616218487480524110)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
     "\"doc\":\"Useful info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
     INT64_C(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
     INT64_C(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
     INT64_C(-4824392279771201922)},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], "
     "\"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
     "\"type\":\"boolean\"}]}",
     1, INT64_C(7843277075252814651)},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", "
     "\"default\":\"true\"},\n"
     "            {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\","
     "\"type\":\"int\"}],\n"
     "  \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
     "\"type\":\"boolean\"},{\"name\":\"f2\",\"type\":\"int\"}]}",
     1, INT64_C(-4860222112080293046)},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", 1,
     INT64_C(-6342190197741309591)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", "
     "\"doc\":\"foo bar\", \"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
     1, INT64_C(-4448647247586288245)},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", 1,
     INT64_C(1756455273707447556)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", "
     "\"doc\":\"foo bar\", \"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", 1,
     INT64_C(-3064184465700546786)},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", 1,
     INT64_C(-589620603366471059)},
    {"{ \"values\":\"string\", \"type\":\"map\"}",
     "{\"type\":\"map\",\"values\":\"string\"}", 1,
     INT64_C(-8732877298790414990)},
    {"  {\"name\":\"PigValue\",\"type\":\"record\",\n"
     "   \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", "
     "\"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":"
     "\"value\",\"type\":[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     1, INT64_C(-1759257747318642341)},
};

static void test_crc64_spec_vectors(void **state) {
  (void)state;
  /* The empty input leaves the initial value (the spec's EMPTY). */
  assert_true(lp_avro_crc64("", 0) == UINT64_C(0xc15d213aa4d7a795));
  /* "int" and "string" as the spec's implementations list them in hex. */
  assert_true(lp_avro_crc64("\"int\"", 5) == UINT64_C(0x7275d51a3f395c8f));
  assert_true(lp_avro_crc64("\"string\"", 8) == UINT64_C(0x8f014872634503c7));
}

static void test_canonical_form_spec_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < LP_ARRAY_LEN(pcf_vectors); i++) {
    const struct pcf_vector *v = &pcf_vectors[i];
    char err[256] = "";
    char *pcf = lp_avro_schema_canonical_form(v->input, strlen(v->input), err,
                                              sizeof(err));
    if (!pcf)
      fail_msg("vector %03zu: %s", i, err);
    if (strcmp(pcf, v->canonical) != 0)
      fail_msg("vector %03zu: got %s, want %s", i, pcf, v->canonical);
    if (v->has_fingerprint &&
        lp_avro_crc64(pcf, strlen(pcf)) != (uint64_t)v->fingerprint)
      fail_msg("vector %03zu: fingerprint %" PRId64 ", want %" PRId64, i,
               (int64_t)lp_avro_crc64(pcf, strlen(pcf)), v->fingerprint);
    free(pcf);
  }
  /* Not a schema: an error, not a crash. */
  char err[256] = "";
  assert_null(lp_avro_schema_canonical_form("{\"type\":", 8, err, sizeof(err)));
  assert_true(strncmp(err, "schema: JSON line 1", 19) == 0);
  assert_null(lp_avro_schema_canonical_form("{\"type\":\"record\"}", 17, err,
                                            sizeof(err)));
  assert_string_equal(err, "schema: record without a name");
  /* A second definition of one name is an error. */
  const char *twice = "[{\"type\":\"fixed\",\"name\":\"a.F\",\"size\":1},"
                      "{\"type\":\"fixed\",\"name\":\"a.F\",\"size\":2}]";
  assert_null(
      lp_avro_schema_canonical_form(twice, strlen(twice), err, sizeof(err)));
  assert_string_equal(err, "schema: a.F is defined twice");
}

static void test_our_schemas(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  static const char *const names[] = {"OrderEvent", "CustomerEvent",
                                      "RewardDecision", "DeadLetter",
                                      "ActionResult"};
  uint64_t fps[LP_ARRAY_LEN(names)];
  for (int t = 0; t < (int)LP_ARRAY_LEN(names); t++) {
    const char *pcf = lp_avro_canonical_form(c, (enum lp_record_type)t);
    char prefix[96];
    snprintf(prefix, sizeof(prefix),
             "{\"name\":\"com.loyalty.events.%s\",\"type\":\"record\","
             "\"fields\":[{\"name\":",
             names[t]);
    assert_true(strncmp(pcf, prefix, strlen(prefix)) == 0);
    /* Stripped of everything that does not affect parsing. */
    assert_null(strstr(pcf, "\"doc\""));
    assert_null(strstr(pcf, "\"default\""));
    assert_null(strstr(pcf, "logicalType"));
    assert_null(strstr(pcf, "namespace"));
    assert_null(strchr(pcf, ' '));
    fps[t] = lp_avro_fingerprint(c, (enum lp_record_type)t);
    assert_true(fps[t] == lp_avro_crc64(pcf, strlen(pcf)));
    print_message("%-15s fingerprint 0x%016" PRIx64 "\n", names[t], fps[t]);
    for (int u = 0; u < t; u++)
      assert_true(fps[u] != fps[t]);
  }
  /* Nested named types take the enclosing namespace. */
  const char *order = lp_avro_canonical_form(c, LP_REC_ORDER);
  assert_non_null(strstr(order, "{\"name\":\"line_items\",\"type\":{\"type\":"
                                "\"array\",\"items\":{\"name\":\"com.loyalty."
                                "events.LineItem\",\"type\":\"record\""));
  assert_non_null(
      strstr(order, "{\"name\":\"event_time_ms\",\"type\":\"long\"}"));
  assert_non_null(strstr(
      order, "{\"name\":\"status\",\"type\":{\"name\":\"com.loyalty.events."
             "OrderStatus\",\"type\":\"enum\",\"symbols\":[\"created\","
             "\"paid\",\"cancelled\",\"refunded\"]}}"));
  /* ActionResult's ActionKind is RewardDecision's, name and symbols. */
  static const char kind[] =
      "{\"name\":\"com.loyalty.events.ActionKind\",\"type\":\"enum\","
      "\"symbols\":[\"points\",\"reward\",\"discount_code\",\"tier_change\","
      "\"message\",\"score_sync\"]}";
  assert_non_null(strstr(lp_avro_canonical_form(c, LP_REC_DECISION), kind));
  assert_non_null(
      strstr(lp_avro_canonical_form(c, LP_REC_ACTION_RESULT), kind));
  /* Action's last field: the score_sync attributes, after category. */
  assert_non_null(strstr(
      lp_avro_canonical_form(c, LP_REC_DECISION),
      "{\"name\":\"category\",\"type\":[\"null\",\"string\"]},{\"name\":"
      "\"attributes\",\"type\":{\"type\":\"array\",\"items\":{\"name\":"
      "\"com.loyalty.events.Attribute\",\"type\":\"record\",\"fields\":[{"
      "\"name\":\"name\",\"type\":\"string\"},{\"name\":\"value\","
      "\"type\":[\"null\",\"string\"]}]}}}]}}"));
  /* ActionResult's last fields: the generated message copy, after time_ms. */
  static const char copy_tail[] =
      "{\"name\":\"time_ms\",\"type\":\"long\"},{\"name\":\"copy_source\","
      "\"type\":[\"null\",\"string\"]},{\"name\":\"copy_model\",\"type\":["
      "\"null\",\"string\"]},{\"name\":\"copy_prompt\",\"type\":[\"null\","
      "\"string\"]},{\"name\":\"copy_output\",\"type\":[\"null\","
      "\"string\"]},{\"name\":\"copy_note\",\"type\":[\"null\","
      "\"string\"]}]}";
  const char *ar = lp_avro_canonical_form(c, LP_REC_ACTION_RESULT);
  assert_true(strlen(ar) > strlen(copy_tail));
  assert_string_equal(ar + strlen(ar) - strlen(copy_tail), copy_tail);
  lp_avro_codec_destroy(&c);
  assert_null(c);
  lp_avro_codec_destroy(&c); /* NULL is fine */
}

static void test_single_object_header_and_bytes(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_order_event ev;
  minimal_order(&ev);
  struct lp_buf out;
  lp_buf_init(&out);
  lp_buf_append(&out, "xy", 2); /* encoders append */
  encode_order_ok(c, &ev, &out);
  uint64_t fp = lp_avro_fingerprint(c, LP_REC_ORDER);
  struct bld want = {.n = 0};
  b_raw(&want, "xy", 2);
  b_header(&want, fp);
  b_minimal_order(&want);
  assert_int_equal(out.len, want.n);
  assert_memory_equal(out.data, want.b, want.n);
  /* Header: 0xC3 0x01 then the fingerprint, least significant byte first. */
  assert_int_equal(out.data[2], 0xC3);
  assert_int_equal(out.data[3], 0x01);
  for (int i = 0; i < 8; i++)
    assert_int_equal(out.data[4 + i], (uint8_t)(fp >> (8 * i)));
  lp_order_event_clear(&ev);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* ------------------------------------------------------------------------
 * Round trips
 */

static void test_round_trip_order(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  for (int full = 0; full < 2; full++) {
    struct lp_order_event ev, back = {0};
    if (full)
      full_order(&ev);
    else
      minimal_order(&ev);
    struct lp_buf out, again;
    lp_buf_init(&out);
    lp_buf_init(&again);
    encode_order_ok(c, &ev, &out);
    char err[256] = "";
    if (lp_avro_decode_order(c, out.data, out.len, &back, err, sizeof(err)))
      fail_msg("decode order: %s", err);
    assert_order_equal(&back, &ev);
    /* Deterministic: the decoded record encodes to the same bytes. */
    encode_order_ok(c, &back, &again);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    /* With an arena set: the same record, its memory the arena's (a free
     * of any of it would trip the allocator or ASan). */
    struct lp_arena arena;
    lp_arena_init(&arena);
    lp_avro_codec_set_arena(c, &arena);
    struct lp_order_event in_arena = {0};
    if (lp_avro_decode_order(c, out.data, out.len, &in_arena, err, sizeof(err)))
      fail_msg("decode order in arena: %s", err);
    assert_ptr_equal(in_arena.arena, &arena);
    assert_order_equal(&in_arena, &ev);
    lp_order_event_clear(&in_arena);
    assert_true(all_zero(&in_arena, sizeof(in_arena)));
    lp_avro_codec_set_arena(c, NULL);
    lp_arena_free(&arena);
    lp_order_event_clear(&ev);
    lp_order_event_clear(&back);
    lp_buf_free(&out);
    lp_buf_free(&again);
  }
  lp_avro_codec_destroy(&c);
}

static void full_customer(struct lp_customer_event *ev) {
  memset(ev, 0, sizeof(*ev));
  ev->event_id = lp_xstrdup("shopify:customers/update:207119551:x");
  ev->shop = lp_xstrdup("shop-a");
  ev->customer_id = lp_xstrdup("207119551");
  ev->event_time_ms = T_TIME;
  ev->kind = LP_CUSTOMER_UPDATED;
  char hex[65];
  lp_sha256_hex("bob@example.com", 15, hex);
  ev->email_sha256 = lp_xstrdup(hex);
  ev->marketing_consent = LP_CONSENT_UNSUBSCRIBED;
  ev->n_tags = 3;
  ev->tags = lp_xcalloc(3, sizeof(char *));
  ev->tags[0] = lp_xstrdup("vip");
  ev->tags[1] = lp_xstrdup("wholesale");
  ev->tags[2] = lp_xstrdup("ñandú");
  ev->birthday = lp_xstrdup("--02-29");
  ev->customer_created_ms = T_TIME - 86400000;
  ev->source = lp_xstrdup("shopify");
}

static void assert_customer_equal(const struct lp_customer_event *a,
                                  const struct lp_customer_event *b) {
  assert_str_or_null(a->event_id, b->event_id);
  assert_str_or_null(a->shop, b->shop);
  assert_str_or_null(a->customer_id, b->customer_id);
  assert_int_equal(a->event_time_ms, b->event_time_ms);
  assert_int_equal(a->kind, b->kind);
  assert_str_or_null(a->email_sha256, b->email_sha256);
  assert_int_equal(a->marketing_consent, b->marketing_consent);
  assert_int_equal(a->n_tags, b->n_tags);
  for (size_t i = 0; i < a->n_tags; i++)
    assert_str_or_null(a->tags[i], b->tags[i]);
  assert_str_or_null(a->birthday, b->birthday);
  assert_int_equal(a->customer_created_ms, b->customer_created_ms);
  assert_str_or_null(a->source, b->source);
}

static void test_round_trip_customer(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  for (int full = 0; full < 2; full++) {
    struct lp_customer_event ev = {0}, back = {0};
    if (full) {
      full_customer(&ev);
    } else {
      ev.event_id = lp_xstrdup("e");
      ev.shop = lp_xstrdup("s");
      ev.customer_id = lp_xstrdup("c");
      ev.event_time_ms = T_TIME;
      ev.kind = LP_CUSTOMER_CREATED;
    }
    struct lp_buf out;
    lp_buf_init(&out);
    char err[256] = "";
    if (lp_avro_encode_customer(c, &ev, &out, err, sizeof(err)))
      fail_msg("encode customer: %s", err);
    if (lp_avro_decode_customer(c, out.data, out.len, &back, err, sizeof(err)))
      fail_msg("decode customer: %s", err);
    assert_customer_equal(&back, &ev);
    assert_true(out.data[0] == 0xC3 && out.data[1] == 0x01);
    struct lp_arena arena;
    lp_arena_init(&arena);
    lp_avro_codec_set_arena(c, &arena);
    struct lp_customer_event in_arena = {0};
    if (lp_avro_decode_customer(c, out.data, out.len, &in_arena, err,
                                sizeof(err)))
      fail_msg("decode customer in arena: %s", err);
    assert_ptr_equal(in_arena.arena, &arena);
    assert_customer_equal(&in_arena, &ev);
    lp_customer_event_clear(&in_arena);
    lp_avro_codec_set_arena(c, NULL);
    lp_arena_free(&arena);
    lp_customer_event_clear(&ev);
    lp_customer_event_clear(&back);
    lp_buf_free(&out);
  }
  lp_avro_codec_destroy(&c);
}

static void full_decision(struct lp_reward_decision *d) {
  memset(d, 0, sizeof(*d));
  d->decision_id = lp_xstrdup("0123456789abcdef0123456789abcdef");
  d->shop = lp_xstrdup("shop-a");
  d->customer_id = lp_xstrdup("c-7");
  d->trigger_event_id = lp_xstrdup("evt-1");
  d->trigger_kind = lp_xstrdup("order");
  d->rule_id = lp_xstrdup("big-spender");
  d->rule_version = 3;
  d->action.kind = LP_ACTION_DISCOUNT_CODE;
  d->action.points = -5; /* not meaningful for the kind; still carried */
  d->action.reward_id = lp_xstrdup("rw-1");
  d->action.discount_percent = 15;
  d->action.discount_amount_micros = 7500000;
  d->action.tier = lp_xstrdup("gold");
  d->action.template_id = lp_xstrdup("tpl-thanks");
  d->action.channel = lp_xstrdup("email");
  d->action.brand = lp_xstrdup("Acme");
  d->action.category = lp_xstrdup("Shoes");
  d->estimated_cost_micros = 7500000;
  d->currency = lp_xstrdup("USD");
  d->event_time_ms = T_TIME;
  d->approval = LP_APPROVAL_RECOMMENDED;
  d->explanation.rule_id = lp_xstrdup("big-spender");
  d->explanation.rule_version = 3;
  d->explanation.model_version = lp_xstrdup("bgnbd-2023-11");
  d->explanation.summary = lp_xstrdup("lifetime spend over 500");
  d->explanation.n_features = 3;
  d->explanation.features = lp_xcalloc(3, sizeof(struct lp_feature));
  d->explanation.features[0] =
      (struct lp_feature){lp_xstrdup("lifetime_spend"), lp_xstrdup("612.40")};
  d->explanation.features[1] =
      (struct lp_feature){lp_xstrdup("order_count"), lp_xstrdup("7")};
  d->explanation.features[2] =
      (struct lp_feature){lp_xstrdup("birthday"), NULL};
}

static void assert_decision_equal(const struct lp_reward_decision *a,
                                  const struct lp_reward_decision *b) {
  assert_str_or_null(a->decision_id, b->decision_id);
  assert_str_or_null(a->shop, b->shop);
  assert_str_or_null(a->customer_id, b->customer_id);
  assert_str_or_null(a->trigger_event_id, b->trigger_event_id);
  assert_str_or_null(a->trigger_kind, b->trigger_kind);
  assert_str_or_null(a->rule_id, b->rule_id);
  assert_int_equal(a->rule_version, b->rule_version);
  assert_int_equal(a->action.kind, b->action.kind);
  assert_int_equal(a->action.points, b->action.points);
  assert_str_or_null(a->action.reward_id, b->action.reward_id);
  assert_int_equal(a->action.discount_percent, b->action.discount_percent);
  assert_int_equal(a->action.discount_amount_micros,
                   b->action.discount_amount_micros);
  assert_str_or_null(a->action.tier, b->action.tier);
  assert_str_or_null(a->action.template_id, b->action.template_id);
  assert_str_or_null(a->action.channel, b->action.channel);
  assert_str_or_null(a->action.brand, b->action.brand);
  assert_str_or_null(a->action.category, b->action.category);
  assert_int_equal(a->action.n_attributes, b->action.n_attributes);
  for (size_t i = 0; i < a->action.n_attributes; i++) {
    assert_str_or_null(a->action.attributes[i].name,
                       b->action.attributes[i].name);
    assert_str_or_null(a->action.attributes[i].value,
                       b->action.attributes[i].value);
  }
  assert_int_equal(a->estimated_cost_micros, b->estimated_cost_micros);
  assert_str_or_null(a->currency, b->currency);
  assert_int_equal(a->event_time_ms, b->event_time_ms);
  assert_int_equal(a->approval, b->approval);
  const struct lp_explanation *x = &a->explanation, *y = &b->explanation;
  assert_str_or_null(x->rule_id, y->rule_id);
  assert_int_equal(x->rule_version, y->rule_version);
  assert_str_or_null(x->model_version, y->model_version);
  assert_str_or_null(x->summary, y->summary);
  assert_int_equal(x->n_features, y->n_features);
  for (size_t i = 0; i < x->n_features; i++) {
    assert_str_or_null(x->features[i].name, y->features[i].name);
    assert_str_or_null(x->features[i].value, y->features[i].value);
  }
}

static void test_round_trip_decision(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  for (int full = 0; full < 2; full++) {
    struct lp_reward_decision d = {0}, back = {0};
    if (full) {
      full_decision(&d);
    } else {
      d.decision_id = lp_xstrdup("00000000000000000000000000000000");
      d.shop = lp_xstrdup("s");
      d.customer_id = lp_xstrdup("c");
      d.trigger_event_id = lp_xstrdup("e");
      d.rule_id = lp_xstrdup("r");
      d.action.kind = LP_ACTION_POINTS;
      d.action.points = 100;
      d.event_time_ms = T_TIME;
    }
    struct lp_buf out;
    lp_buf_init(&out);
    char err[256] = "";
    if (lp_avro_encode_decision(c, &d, &out, err, sizeof(err)))
      fail_msg("encode decision: %s", err);
    if (lp_avro_decode_decision(c, out.data, out.len, &back, err, sizeof(err)))
      fail_msg("decode decision: %s", err);
    assert_decision_equal(&back, &d);
    lp_reward_decision_clear(&d);
    lp_reward_decision_clear(&back);
    lp_buf_free(&out);
  }
  lp_avro_codec_destroy(&c);
}

static void test_round_trip_dead_letter(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  for (int full = 0; full < 2; full++) {
    struct lp_dead_letter dl = {0}, back = {0};
    dl.source_topic = lp_xstrdup("shopify.orders");
    dl.source_partition = 2;
    dl.source_offset = INT64_C(123456789012);
    if (full) {
      static const uint8_t key[] = {'s', ':', 0, 0xFF, 'c'};
      dl.source_key = lp_xmalloc(sizeof(key));
      memcpy(dl.source_key, key, sizeof(key));
      dl.source_key_len = sizeof(key);
      dl.original_len = 3000;
      dl.original = lp_xmalloc(dl.original_len);
      for (size_t i = 0; i < dl.original_len; i++)
        dl.original[i] = (uint8_t)(i * 7); /* binary, NULs included */
      dl.field = lp_xstrdup("line_items[2].quantity");
    } else {
      dl.original = lp_xmalloc(1); /* present but empty */
      dl.original_len = 0;
    }
    dl.processor = lp_xstrdup("order-processor");
    dl.reason = lp_xstrdup("line_items[2].quantity: 0 is not in 1..1000000");
    dl.time_ms = T_TIME;
    struct lp_buf out;
    lp_buf_init(&out);
    char err[256] = "";
    if (lp_avro_encode_dead_letter(c, &dl, &out, err, sizeof(err)))
      fail_msg("encode dead letter: %s", err);
    if (lp_avro_decode_dead_letter(c, out.data, out.len, &back, err,
                                   sizeof(err)))
      fail_msg("decode dead letter: %s", err);
    assert_string_equal(back.source_topic, dl.source_topic);
    assert_int_equal(back.source_partition, 2);
    assert_int_equal(back.source_offset, INT64_C(123456789012));
    assert_int_equal(back.source_key_len, dl.source_key_len);
    if (full)
      assert_memory_equal(back.source_key, dl.source_key, dl.source_key_len);
    else
      assert_null(back.source_key);
    assert_int_equal(back.original_len, dl.original_len);
    assert_non_null(back.original);
    if (dl.original_len)
      assert_memory_equal(back.original, dl.original, dl.original_len);
    assert_string_equal(back.processor, dl.processor);
    assert_string_equal(back.reason, dl.reason);
    assert_str_or_null(back.field, dl.field);
    assert_int_equal(back.time_ms, T_TIME);
    lp_dead_letter_clear(&dl);
    lp_dead_letter_clear(&back);
    lp_buf_free(&out);
  }
  lp_avro_codec_destroy(&c);
}

/* A dead letter always encodes: bad text is repaired, not refused. */
static void test_dead_letter_repairs_text(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_dead_letter dl = {0}, back = {0};
  dl.source_topic = lp_xstrdup("t");
  dl.original = lp_xmalloc(1);
  dl.processor = lp_xstrdup("p");
  dl.reason = lp_xstrdup("currency: \"\xFF\xFE\" is bad");
  dl.field = lp_xmalloc(5000 + 1);
  memset(dl.field, 'x', 5000);
  dl.field[5000] = '\0';
  struct lp_buf out;
  lp_buf_init(&out);
  char err[256] = "";
  if (lp_avro_encode_dead_letter(c, &dl, &out, err, sizeof(err)))
    fail_msg("encode dead letter: %s", err);
  if (lp_avro_decode_dead_letter(c, out.data, out.len, &back, err, sizeof(err)))
    fail_msg("decode dead letter: %s", err);
  assert_string_equal(back.reason,
                      "currency: \"\xEF\xBF\xBD\xEF\xBF\xBD\" is bad");
  assert_int_equal(strlen(back.field), LP_MAX_STRING_BYTES);
  /* A NULL required string is a bug, not data: still an error. */
  free(dl.processor);
  dl.processor = NULL;
  size_t before = out.len;
  assert_int_equal(lp_avro_encode_dead_letter(c, &dl, &out, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "processor: required field missing");
  assert_int_equal(out.len, before);
  lp_dead_letter_clear(&dl);
  lp_dead_letter_clear(&back);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* Generated message copy as the executor records it: the prompt's facts
 * over many lines (longer than 127 bytes, so its length takes a two-byte
 * varint), quotes, a tab and text beyond ASCII. */
#define COPY_SOURCE "template"
#define COPY_MODEL "copy-model-7b"
#define COPY_PROMPT                                                            \
  "Write one short message for a loyalty member.\n"                            \
  "shop: shop-a\n"                                                             \
  "action: reward \"Café crème offert\" (rw-1)\n"                            \
  "tier: Gold → Platinum\n"                                                  \
  "lifetime_spend: 612.40 EUR\n"                                               \
  "order_count: 7\n"                                                           \
  "days_since_last_order: 12\n"                                                \
  "tone:\twarm, no emoji ☕, at most 160 characters\n"                        \
  "language: de — „Grüße“ is fine\n"
#define COPY_OUTPUT                                                            \
  "Danke für Ihre Treue! Ihr Café crème geht auf uns ☕\n"                 \
  "Jetzt 20 % sparen: https://shop-a.example/r/rw-1"
#define COPY_NOTE "guardrail: link not in allow-list (shop-a.example)"

/* The five copy_* fields of a decision whose generated text was refused. */
static void set_copy(struct lp_action_result *r) {
  r->copy_source = lp_xstrdup(COPY_SOURCE);
  r->copy_model = lp_xstrdup(COPY_MODEL);
  r->copy_prompt = lp_xstrdup(COPY_PROMPT);
  r->copy_output = lp_xstrdup(COPY_OUTPUT);
  r->copy_note = lp_xstrdup(COPY_NOTE);
}

/* An ActionResult with every field set (non-ASCII text included). */
static void full_action_result(struct lp_action_result *r) {
  memset(r, 0, sizeof(*r));
  r->decision_id = lp_xstrdup("0123456789abcdef0123456789abcdef");
  r->shop = lp_xstrdup("shop-a");
  r->customer_id = lp_xstrdup("c-7");
  r->trigger_event_id = lp_xstrdup("evt-1");
  r->rule_id = lp_xstrdup("big-spender");
  r->rule_version = 3;
  r->model_version = lp_xstrdup("bgnbd-2023-11");
  r->action_kind = LP_ACTION_REWARD;
  r->platform = lp_xstrdup("loyaltylion");
  r->outcome = LP_OUTCOME_ISSUED;
  r->guardrail = lp_xstrdup("kill_switch:rule:big-spender");
  r->request_summary = lp_xstrdup("POST /v2/customers/c-7/rewards reward=rw-1");
  r->http_status = 201;
  r->platform_reference = lp_xstrdup("claim-99812");
  r->attempts = 2;
  r->latency_ms = INT64_C(1234);
  r->reason = lp_xstrdup("retried after HTTP 503 — then créé");
  r->actor = lp_xstrdup("ops:alice");
  r->event_time_ms = T_TIME;
  r->time_ms = T_TIME + 5000;
  set_copy(r);
}

/* The required fields only; every optional string NULL, numbers 0. */
static void minimal_action_result(struct lp_action_result *r) {
  memset(r, 0, sizeof(*r));
  r->decision_id = lp_xstrdup("00000000000000000000000000000000");
  r->shop = lp_xstrdup("s");
  r->customer_id = lp_xstrdup("c");
  r->trigger_event_id = lp_xstrdup("e");
  r->rule_id = lp_xstrdup("r");
  r->action_kind = LP_ACTION_MESSAGE;
  r->outcome = LP_OUTCOME_BLOCKED;
  r->event_time_ms = T_TIME;
  r->time_ms = T_TIME + 1;
}

/* What an action result's datum carries in the copy_* fields. */
enum b_copy {
  B_NO_COPY,   /* nothing: the writer's schema predates the fields */
  B_COPY_NULL, /* five nulls */
  B_COPY_SET,  /* set_copy()'s five strings */
};

static void b_opt_str(struct bld *b, const char *s) {
  b_long(b, s != NULL); /* ["null","string"] */
  if (s)
    b_str(b, s);
}

/* minimal_action_result's datum by hand, every field in schema order, with
 * the outcome and action kind given as symbol indexes of the writer. */
static void b_minimal_action_result(struct bld *b, int outcome, int kind,
                                    enum b_copy copy) {
  b_str(b, "00000000000000000000000000000000");
  b_str(b, "s");
  b_str(b, "c");
  b_str(b, "e");
  b_str(b, "r");
  b_long(b, 0);       /* rule_version */
  b_long(b, 0);       /* model_version: null */
  b_long(b, kind);    /* action_kind */
  b_long(b, 0);       /* platform: null */
  b_long(b, outcome); /* outcome */
  b_long(b, 0);       /* guardrail: null */
  b_long(b, 0);       /* request_summary: null */
  b_long(b, 0);       /* http_status */
  b_long(b, 0);       /* platform_reference: null */
  b_long(b, 0);       /* attempts */
  b_long(b, 0);       /* latency_ms */
  b_long(b, 0);       /* reason: null */
  b_long(b, 0);       /* actor: null */
  b_long(b, T_TIME);  /* event_time_ms */
  b_long(b, T_TIME + 1);
  if (copy == B_NO_COPY)
    return;
  int set = copy == B_COPY_SET;
  b_opt_str(b, set ? COPY_SOURCE : NULL);
  b_opt_str(b, set ? COPY_MODEL : NULL);
  b_opt_str(b, set ? COPY_PROMPT : NULL);
  b_opt_str(b, set ? COPY_OUTPUT : NULL);
  b_opt_str(b, set ? COPY_NOTE : NULL);
}

static void assert_action_result_equal(const struct lp_action_result *a,
                                       const struct lp_action_result *b) {
  assert_str_or_null(a->decision_id, b->decision_id);
  assert_str_or_null(a->shop, b->shop);
  assert_str_or_null(a->customer_id, b->customer_id);
  assert_str_or_null(a->trigger_event_id, b->trigger_event_id);
  assert_str_or_null(a->rule_id, b->rule_id);
  assert_int_equal(a->rule_version, b->rule_version);
  assert_str_or_null(a->model_version, b->model_version);
  assert_int_equal(a->action_kind, b->action_kind);
  assert_str_or_null(a->platform, b->platform);
  assert_int_equal(a->outcome, b->outcome);
  assert_str_or_null(a->guardrail, b->guardrail);
  assert_str_or_null(a->request_summary, b->request_summary);
  assert_int_equal(a->http_status, b->http_status);
  assert_str_or_null(a->platform_reference, b->platform_reference);
  assert_int_equal(a->attempts, b->attempts);
  assert_int_equal(a->latency_ms, b->latency_ms);
  assert_str_or_null(a->reason, b->reason);
  assert_str_or_null(a->actor, b->actor);
  assert_int_equal(a->event_time_ms, b->event_time_ms);
  assert_int_equal(a->time_ms, b->time_ms);
  assert_str_or_null(a->copy_source, b->copy_source);
  assert_str_or_null(a->copy_model, b->copy_model);
  assert_str_or_null(a->copy_prompt, b->copy_prompt);
  assert_str_or_null(a->copy_output, b->copy_output);
  assert_str_or_null(a->copy_note, b->copy_note);
}

/* The text of schemas/<name>.avsc as compiled in. */
static const char *embedded_json(const char *name) {
  for (const struct lp_embedded_schema *e = lp_embedded_schemas; e->name; e++)
    if (strcmp(e->name, name) == 0)
      return e->json;
  fail_msg("schema %s not compiled in", name);
  return NULL;
}

/* Full and minimal records, read back from both framings: single-object
 * (as written) and Confluent (our schema preloaded as registry id 21). */
static void test_round_trip_action_result(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  char err[256] = "";
  assert_int_equal(lp_avro_codec_add_registry_schema(
                       c, 21, embedded_json("ActionResult"), err, sizeof(err)),
                   0);
  for (int full = 0; full < 2; full++) {
    struct lp_action_result r, back = {0};
    if (full)
      full_action_result(&r);
    else
      minimal_action_result(&r);
    struct lp_buf out, again;
    lp_buf_init(&out);
    lp_buf_init(&again);
    if (lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)))
      fail_msg("encode action result: %s", err);
    assert_true(out.data[0] == 0xC3 && out.data[1] == 0x01);
    if (!full) { /* the bytes are exactly Avro's binary encoding */
      struct bld want = {.n = 0};
      b_header(&want, lp_avro_fingerprint(c, LP_REC_ACTION_RESULT));
      b_minimal_action_result(&want, LP_OUTCOME_BLOCKED, LP_ACTION_MESSAGE,
                              B_COPY_NULL);
      assert_int_equal(out.len, want.n);
      assert_memory_equal(out.data, want.b, want.n);
    }
    if (lp_avro_decode_action_result(c, out.data, out.len, &back, err,
                                     sizeof(err)))
      fail_msg("decode action result: %s", err);
    assert_action_result_equal(&back, &r);
    /* Deterministic: the decoded record encodes to the same bytes. */
    if (lp_avro_encode_action_result(c, &back, &again, err, sizeof(err)))
      fail_msg("re-encode action result: %s", err);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    lp_action_result_clear(&back);
    assert_true(all_zero(&back, sizeof(back)));
    /* The same datum behind a Confluent header. */
    struct bld conf = {.n = 0};
    b_confluent(&conf, 21);
    b_raw(&conf, out.data + 10, out.len - 10);
    if (lp_avro_decode_action_result(c, conf.b, conf.n, &back, err,
                                     sizeof(err)))
      fail_msg("decode Confluent-framed action result: %s", err);
    assert_action_result_equal(&back, &r);
    lp_action_result_clear(&back);
    /* Read as another record: refused with the reason, out left cleared. */
    struct lp_reward_decision d = {0};
    assert_int_equal(
        lp_avro_decode_decision(c, out.data, out.len, &d, err, sizeof(err)),
        -1);
    assert_string_equal(err, "avro: writer schema com.loyalty.events."
                             "ActionResult cannot be read as RewardDecision: "
                             "writer record ActionResult is not "
                             "RewardDecision (record names must match)");
    assert_true(all_zero(&d, sizeof(d)));
    lp_action_result_clear(&r);
    lp_buf_free(&out);
    lp_buf_free(&again);
  }
  lp_avro_codec_destroy(&c);
}

/* An action result always encodes its text, as a dead letter does: it is
 * the audit record of something already done. Bugs are still errors. */
static void test_action_result_repairs_text(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_action_result r, back = {0};
  full_action_result(&r);
  free(r.reason);
  r.reason = lp_xstrdup("HTTP 422: \"\xFF\xFE\" is bad");
  free(r.request_summary);
  r.request_summary = lp_xmalloc(5000 + 1);
  memset(r.request_summary, 'x', 5000);
  r.request_summary[5000] = '\0';
  /* A model's answer over the limit, three bytes a character: cut at the
   * last whole character within it. */
  free(r.copy_output);
  r.copy_output = lp_xmalloc(3 * 2000 + 1);
  for (int i = 0; i < 2000; i++)
    memcpy(r.copy_output + 3 * i, "\xE2\x86\x92", 3); /* → */
  r.copy_output[3 * 2000] = '\0';
  struct lp_buf out;
  lp_buf_init(&out);
  char err[256] = "";
  if (lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)))
    fail_msg("encode action result: %s", err);
  if (lp_avro_decode_action_result(c, out.data, out.len, &back, err,
                                   sizeof(err)))
    fail_msg("decode action result: %s", err);
  assert_string_equal(back.reason,
                      "HTTP 422: \"\xEF\xBF\xBD\xEF\xBF\xBD\" is bad");
  assert_int_equal(strlen(back.request_summary), LP_MAX_STRING_BYTES);
  assert_int_equal(strlen(back.copy_output), LP_MAX_STRING_BYTES / 3 * 3);
  assert_true(lp_utf8_valid(back.copy_output, strlen(back.copy_output)));
  assert_string_equal(back.copy_prompt, COPY_PROMPT);
  lp_action_result_clear(&back);
  size_t before = out.len;
  /* A NULL required string, an enum out of range: errors, out unchanged. */
  free(r.trigger_event_id);
  r.trigger_event_id = NULL;
  assert_int_equal(lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "trigger_event_id: required field missing");
  r.trigger_event_id = lp_xstrdup("evt-1");
  r.outcome = (enum lp_action_outcome)LP_OUTCOME_COUNT;
  assert_int_equal(lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "outcome: unknown value 7");
  r.outcome = LP_OUTCOME_FAILED;
  r.action_kind = (enum lp_action_kind) - 1;
  assert_int_equal(lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "action_kind: unknown value -1");
  assert_int_equal(out.len, before);
  lp_action_result_clear(&r);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* ------------------------------------------------------------------------
 * score_sync decisions: the attributes array, both readers, older writers
 */

/* The minimal decision's fields with kind score_sync and three attributes
 * (the last without a value), as the rules write them. */
static void score_sync_decision(struct lp_reward_decision *d) {
  memset(d, 0, sizeof(*d));
  d->decision_id = lp_xstrdup("00000000000000000000000000000000");
  d->shop = lp_xstrdup("s");
  d->customer_id = lp_xstrdup("c");
  d->trigger_event_id = lp_xstrdup("e");
  d->rule_id = lp_xstrdup("r");
  d->action.kind = LP_ACTION_SCORE_SYNC;
  d->action.n_attributes = 3;
  d->action.attributes = lp_xcalloc(3, sizeof(struct lp_feature));
  d->action.attributes[0] =
      (struct lp_feature){lp_xstrdup("loyalty_clv_12m"), lp_xstrdup("612.40")};
  d->action.attributes[1] = (struct lp_feature){
      lp_xstrdup("loyalty_segment"), lp_xstrdup("at_risk_high_value")};
  d->action.attributes[2] =
      (struct lp_feature){lp_xstrdup("loyalty_next_purchase"), NULL};
  d->event_time_ms = T_TIME;
}

/* What a decision's datum carries in Action.attributes. */
enum b_attrs {
  B_NO_FIELD, /* nothing: the previous schema has no such field */
  B_EMPTY,    /* [] */
  B_SYNC,     /* score_sync_decision's three, one block */
  B_BLOCKS,   /* the same three in a sized block of two and a block of one */
};

static void b_attribute(struct bld *b, const char *name, const char *value) {
  b_str(b, name);
  b_long(b, value != NULL); /* value: ["null","string"] */
  if (value)
    b_str(b, value);
}

/* score_sync_decision's datum by hand (any kind), every field in schema
 * order; kind is the writer's symbol index. */
static void b_decision(struct bld *b, int kind, enum b_attrs attrs) {
  b_str(b, "00000000000000000000000000000000");
  b_str(b, "s");
  b_str(b, "c");
  b_str(b, "e");
  b_long(b, 0); /* trigger_kind: null */
  b_str(b, "r");
  b_long(b, 0);    /* rule_version */
  b_long(b, kind); /* action.kind */
  for (int i = 0; i < 9; i++)
    b_long(b, 0); /* points ... category: 0 or null */
  if (attrs == B_EMPTY) {
    b_long(b, 0);
  } else if (attrs == B_SYNC) {
    b_long(b, 3);
    b_attribute(b, "loyalty_clv_12m", "612.40");
    b_attribute(b, "loyalty_segment", "at_risk_high_value");
    b_attribute(b, "loyalty_next_purchase", NULL);
    b_long(b, 0);
  } else if (attrs == B_BLOCKS) {
    struct bld two = {.n = 0};
    b_attribute(&two, "loyalty_clv_12m", "612.40");
    b_attribute(&two, "loyalty_segment", "at_risk_high_value");
    b_long(b, -2);
    b_long(b, (int64_t)two.n);
    b_raw(b, two.b, two.n);
    b_long(b, 1);
    b_attribute(b, "loyalty_next_purchase", NULL);
    b_long(b, 0);
  }
  b_long(b, 0);      /* estimated_cost_micros */
  b_long(b, 0);      /* currency: null */
  b_long(b, T_TIME); /* event_time_ms */
  b_long(b, 0);      /* approval: none */
  for (int i = 0; i < 5; i++)
    b_long(b, 0); /* explanation: null, 0, null, null, [] */
}

/* RewardDecision as the schema read before score_sync: no
 * Action.attributes, no score_sync symbol (caller frees). */
static char *previous_decision_schema(void) {
  json_error_t jerr;
  json_t *root = json_loads(embedded_json("RewardDecision"), 0, &jerr);
  assert_non_null(root);
  json_t *fields = json_object_get(root, "fields"), *f;
  size_t i;
  int found = 0;
  json_array_foreach(fields, i, f) {
    if (strcmp(json_string_value(json_object_get(f, "name")), "action") != 0)
      continue;
    json_t *afields = json_object_get(json_object_get(f, "type"), "fields");
    size_t last = json_array_size(afields) - 1;
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(afields, last), "name")),
                        "attributes");
    json_array_remove(afields, last);
    json_t *syms = json_object_get(
        json_object_get(json_array_get(afields, 0), "type"), "symbols");
    assert_int_equal(json_array_size(syms), LP_ACTION_KIND_COUNT);
    assert_string_equal(json_string_value(json_array_get(syms, 5)),
                        "score_sync");
    json_array_remove(syms, 5);
    found = 1;
  }
  assert_true(found);
  char *json = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return json;
}

/* ActionResult as the schema read before the generated message copy: ours
 * without its last five fields, copy_source ... copy_note (caller
 * json_decrefs). */
static json_t *action_result_before_copy(void) {
  static const char *const copy[] = {"copy_source", "copy_model", "copy_prompt",
                                     "copy_output", "copy_note"};
  const size_t n_copy = LP_ARRAY_LEN(copy);
  json_error_t jerr;
  json_t *root = json_loads(embedded_json("ActionResult"), 0, &jerr);
  assert_non_null(root);
  json_t *fields = json_object_get(root, "fields");
  size_t n = json_array_size(fields);
  assert_true(n > n_copy);
  for (size_t k = 0; k < n_copy; k++)
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(fields, n - n_copy + k), "name")),
                        copy[k]);
  for (size_t k = 0; k < n_copy; k++)
    json_array_remove(fields, n - 1 - k);
  return root;
}

/* The same as JSON text (caller frees). */
static char *action_result_schema_before_copy(void) {
  json_t *root = action_result_before_copy();
  char *json = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return json;
}

/* ActionResult as the schema read before score_sync, the version before
 * that: no copy_* fields and no score_sync symbol (caller frees). */
static char *action_result_schema_before_score_sync(void) {
  json_t *root = action_result_before_copy();
  json_t *fields = json_object_get(root, "fields"), *f;
  size_t i;
  int found = 0;
  json_array_foreach(fields, i, f) {
    if (strcmp(json_string_value(json_object_get(f, "name")), "action_kind"))
      continue;
    json_t *syms = json_object_get(json_object_get(f, "type"), "symbols");
    assert_int_equal(json_array_size(syms), LP_ACTION_KIND_COUNT);
    json_array_remove(syms, 5);
    found = 1;
  }
  assert_true(found);
  char *json = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return json;
}

static uint64_t fingerprint_of(const char *json) {
  char err[256] = "";
  char *pcf =
      lp_avro_schema_canonical_form(json, strlen(json), err, sizeof(err));
  if (!pcf)
    fail_msg("canonical form: %s", err);
  uint64_t fp = lp_avro_crc64(pcf, strlen(pcf));
  free(pcf);
  return fp;
}

/* RewardDecision's layout under another namespace: another fingerprint,
 * so its records take the checked path (walk, avro-c, plan) where ours
 * take the fast reader (caller frees). */
static char *mirror_decision_schema(void) {
  json_error_t jerr;
  json_t *root = json_loads(embedded_json("RewardDecision"), 0, &jerr);
  assert_non_null(root);
  json_object_set_new(root, "namespace", json_string("com.loyalty.mirror"));
  char *json = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return json;
}

static void decode_decision_ok(struct lp_avro_codec *c, const void *data,
                               size_t len, struct lp_reward_decision *out,
                               const char *what) {
  char err[256] = "";
  memset(out, 0, sizeof(*out));
  if (lp_avro_decode_decision(c, data, len, out, err, sizeof(err)))
    fail_msg("decode %s: %s", what, err);
}

/* Encodes d and checks the bytes are exactly want's. */
static void encode_decision_is(struct lp_avro_codec *c,
                               const struct lp_reward_decision *d,
                               const struct bld *want) {
  struct lp_buf out;
  lp_buf_init(&out);
  char err[256] = "";
  if (lp_avro_encode_decision(c, d, &out, err, sizeof(err)))
    fail_msg("encode decision: %s", err);
  assert_int_equal(out.len, want->n);
  assert_memory_equal(out.data, want->b, want->n);
  lp_buf_free(&out);
}

/* Encodes r and checks the bytes are exactly want's. */
static void encode_action_result_is(struct lp_avro_codec *c,
                                    const struct lp_action_result *r,
                                    const struct bld *want) {
  struct lp_buf out;
  lp_buf_init(&out);
  char err[256] = "";
  if (lp_avro_encode_action_result(c, r, &out, err, sizeof(err)))
    fail_msg("encode action result: %s", err);
  assert_int_equal(out.len, want->n);
  assert_memory_equal(out.data, want->b, want->n);
  lp_buf_free(&out);
}

/* Three attributes, one without a value: byte-exact Avro, read back the
 * same by the fast reader and by the checked path, in one block or in
 * several (one sized), and re-encoded to the same bytes. */
static void test_round_trip_score_sync(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  char err[256] = "";
  char *mirror = mirror_decision_schema();
  uint64_t mirror_fp = fingerprint_of(mirror);
  uint64_t fp = lp_avro_fingerprint(c, LP_REC_DECISION);
  assert_true(mirror_fp != fp);
  assert_int_equal(lp_avro_codec_add_schema(c, mirror, err, sizeof(err)), 0);
  free(mirror);
  struct lp_reward_decision d;
  score_sync_decision(&d);
  struct bld want = {.n = 0};
  b_header(&want, fp);
  b_decision(&want, LP_ACTION_SCORE_SYNC, B_SYNC);
  encode_decision_is(c, &d, &want);
  for (int checked = 0; checked < 2; checked++) {
    for (int blocks = 0; blocks < 2; blocks++) {
      struct bld in = {.n = 0};
      b_header(&in, checked ? mirror_fp : fp);
      b_decision(&in, LP_ACTION_SCORE_SYNC, blocks ? B_BLOCKS : B_SYNC);
      struct lp_reward_decision back;
      decode_decision_ok(c, in.b, in.n, &back, "score_sync");
      assert_decision_equal(&back, &d);
      assert_int_equal(back.action.kind, LP_ACTION_SCORE_SYNC);
      assert_null(back.action.attributes[2].value);
      encode_decision_is(c, &back, &want);
      lp_reward_decision_clear(&back);
      assert_true(all_zero(&back, sizeof(back)));
    }
  }
  /* Other kinds write [] (one zero byte) whatever the kind. */
  lp_action_clear(&d.action);
  d.action.kind = LP_ACTION_POINTS;
  d.action.points = 0;
  want.n = 0;
  b_header(&want, fp);
  b_decision(&want, LP_ACTION_POINTS, B_EMPTY);
  encode_decision_is(c, &d, &want);
  struct lp_reward_decision back;
  decode_decision_ok(c, want.b, want.n, &back, "points");
  assert_int_equal(back.action.n_attributes, 0);
  assert_null(back.action.attributes);
  lp_reward_decision_clear(&back);
  lp_reward_decision_clear(&d);
  lp_avro_codec_destroy(&c);
}

/* Records of the previous RewardDecision (no attributes, no score_sync)
 * are read without configuration, both framings: attributes empty, and
 * re-encoded they are what our schema writes for the same decision. The
 * previous ActionResult is read too. */
static void test_previous_schema_writers(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  char err[512] = "";
  char *prev = previous_decision_schema();
  uint64_t prev_fp = fingerprint_of(prev);
  /* The version before this one (docs/schemas.md's table had it). */
  assert_true(prev_fp == UINT64_C(0x7ae4fc5c4fdac569));
  assert_true(prev_fp != lp_avro_fingerprint(c, LP_REC_DECISION));
  /* Known from the start. */
  assert_int_equal(lp_avro_codec_add_schema(c, prev, err, sizeof(err)), -1);
  assert_string_equal(err, "avro: a schema with fingerprint "
                           "0x7ae4fc5c4fdac569 is already known");
  assert_int_equal(
      lp_avro_codec_add_registry_schema(c, 41, prev, err, sizeof(err)), 0);
  free(prev);
  for (int kind = 0; kind < LP_ACTION_KIND_COUNT - 1; kind++) {
    for (int confluent = 0; confluent < 2; confluent++) {
      struct bld in = {.n = 0};
      if (confluent)
        b_confluent(&in, 41);
      else
        b_header(&in, prev_fp);
      b_decision(&in, kind, B_NO_FIELD);
      struct lp_reward_decision back;
      decode_decision_ok(c, in.b, in.n, &back, "previous decision");
      assert_int_equal(back.action.kind, kind);
      assert_int_equal(back.action.n_attributes, 0);
      assert_null(back.action.attributes);
      assert_string_equal(back.rule_id, "r");
      assert_int_equal(back.event_time_ms, T_TIME);
      struct bld want = {.n = 0};
      b_header(&want, lp_avro_fingerprint(c, LP_REC_DECISION));
      b_decision(&want, kind, B_EMPTY);
      encode_decision_is(c, &back, &want);
      lp_reward_decision_clear(&back);
    }
  }
  /* An index past the previous writer's five symbols is out of its range
   * (score_sync did not exist there), not score_sync. */
  struct bld in = {.n = 0};
  b_header(&in, prev_fp);
  b_decision(&in, LP_ACTION_SCORE_SYNC, B_NO_FIELD);
  struct lp_reward_decision d = {0};
  assert_int_equal(lp_avro_decode_decision(c, in.b, in.n, &d, err, sizeof(err)),
                   -1);
  assert_string_equal(err,
                      "action.kind: enum index 5 out of range (5 symbols)");
  assert_true(all_zero(&d, sizeof(d)));

  char *prev_ar = action_result_schema_before_score_sync();
  uint64_t prev_ar_fp = fingerprint_of(prev_ar);
  free(prev_ar);
  assert_true(prev_ar_fp == UINT64_C(0xf89b5032ab1bd2c1));
  assert_true(prev_ar_fp != lp_avro_fingerprint(c, LP_REC_ACTION_RESULT));
  in.n = 0;
  b_header(&in, prev_ar_fp);
  b_minimal_action_result(&in, LP_OUTCOME_ISSUED, LP_ACTION_MESSAGE, B_NO_COPY);
  struct lp_action_result r = {0};
  if (lp_avro_decode_action_result(c, in.b, in.n, &r, err, sizeof(err)))
    fail_msg("decode previous action result: %s", err);
  assert_int_equal(r.action_kind, LP_ACTION_MESSAGE);
  assert_int_equal(r.outcome, LP_OUTCOME_ISSUED);
  assert_null(r.copy_source);
  assert_null(r.copy_note);
  /* Re-encoded, it is what ours writes: the copy_* fields null. */
  struct bld want_ar = {.n = 0};
  b_header(&want_ar, lp_avro_fingerprint(c, LP_REC_ACTION_RESULT));
  b_minimal_action_result(&want_ar, LP_OUTCOME_ISSUED, LP_ACTION_MESSAGE,
                          B_COPY_NULL);
  encode_action_result_is(c, &r, &want_ar);
  lp_action_result_clear(&r);
  /* Ours carries score_sync (index 5) as an action result's kind. */
  minimal_action_result(&r);
  r.action_kind = LP_ACTION_SCORE_SYNC;
  struct lp_buf out;
  lp_buf_init(&out);
  if (lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)))
    fail_msg("encode action result: %s", err);
  in.n = 0;
  b_header(&in, lp_avro_fingerprint(c, LP_REC_ACTION_RESULT));
  b_minimal_action_result(&in, LP_OUTCOME_BLOCKED, LP_ACTION_SCORE_SYNC,
                          B_COPY_NULL);
  assert_int_equal(out.len, in.n);
  assert_memory_equal(out.data, in.b, in.n);
  struct lp_action_result back = {0};
  if (lp_avro_decode_action_result(c, out.data, out.len, &back, err,
                                   sizeof(err)))
    fail_msg("decode action result: %s", err);
  assert_int_equal(back.action_kind, LP_ACTION_SCORE_SYNC);
  lp_action_result_clear(&back);
  lp_action_result_clear(&r);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* ------------------------------------------------------------------------
 * Generated message copy: ActionResult's copy_* fields
 */

/* ActionResult's layout under another namespace: another fingerprint, so
 * its records take the checked path (caller frees). */
static char *mirror_action_result_schema(void) {
  json_error_t jerr;
  json_t *root = json_loads(embedded_json("ActionResult"), 0, &jerr);
  assert_non_null(root);
  json_object_set_new(root, "namespace", json_string("com.loyalty.mirror"));
  char *json = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return json;
}

/* Decodes data (either reader), checks it reads as want and re-encodes to
 * exactly the bytes of ours, ours_bytes. */
static void action_result_reads_as(struct lp_avro_codec *c, const void *data,
                                   size_t len,
                                   const struct lp_action_result *want,
                                   const struct bld *ours_bytes,
                                   const char *what) {
  char err[256] = "";
  struct lp_action_result back = {0};
  if (lp_avro_decode_action_result(c, data, len, &back, err, sizeof(err)))
    fail_msg("decode %s: %s", what, err);
  assert_action_result_equal(&back, want);
  encode_action_result_is(c, &back, ours_bytes);
  lp_action_result_clear(&back);
  assert_true(all_zero(&back, sizeof(back)));
}

/* The five copy_* fields, all set (a long prompt over many lines, text
 * beyond ASCII), all null, or some: byte-exact Avro, read back the same by
 * the fast reader and by the checked path, and re-encoded to the same
 * bytes. */
static void test_round_trip_action_result_copy(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  char err[256] = "";
  char *mirror = mirror_action_result_schema();
  uint64_t mirror_fp = fingerprint_of(mirror);
  uint64_t fp = lp_avro_fingerprint(c, LP_REC_ACTION_RESULT);
  assert_true(mirror_fp != fp);
  assert_int_equal(lp_avro_codec_add_schema(c, mirror, err, sizeof(err)), 0);
  free(mirror);
  assert_true(strlen(COPY_PROMPT) > 127 && strchr(COPY_PROMPT, '\n'));
  /* The minimal record with the copy fields set, then null: the bytes are
   * the schema's, field for field. */
  for (int set = 1; set >= 0; set--) {
    struct lp_action_result r;
    minimal_action_result(&r);
    if (set)
      set_copy(&r);
    enum b_copy copy = set ? B_COPY_SET : B_COPY_NULL;
    struct bld want = {.n = 0};
    b_header(&want, fp);
    b_minimal_action_result(&want, LP_OUTCOME_BLOCKED, LP_ACTION_MESSAGE, copy);
    encode_action_result_is(c, &r, &want);
    for (int checked = 0; checked < 2; checked++) {
      struct bld in = {.n = 0};
      b_header(&in, checked ? mirror_fp : fp);
      b_minimal_action_result(&in, LP_OUTCOME_BLOCKED, LP_ACTION_MESSAGE, copy);
      action_result_reads_as(c, in.b, in.n, &r, &want,
                             checked ? "mirror" : "ours");
    }
    lp_action_result_clear(&r);
  }
  /* Every field set; then text sent as generated, so no note. */
  for (int generated = 0; generated < 2; generated++) {
    struct lp_action_result r;
    full_action_result(&r);
    if (generated) {
      free(r.copy_source);
      r.copy_source = lp_xstrdup("generated");
      free(r.copy_note);
      r.copy_note = NULL;
    }
    struct lp_buf out;
    lp_buf_init(&out);
    if (lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)))
      fail_msg("encode action result: %s", err);
    struct bld ours = {.n = 0};
    b_raw(&ours, out.data, out.len);
    /* The datum ends with the copy fields, in schema order. */
    struct bld tail = {.n = 0};
    b_opt_str(&tail, r.copy_source);
    b_opt_str(&tail, COPY_MODEL);
    b_opt_str(&tail, COPY_PROMPT);
    b_opt_str(&tail, COPY_OUTPUT);
    b_opt_str(&tail, generated ? NULL : COPY_NOTE);
    assert_true(out.len > tail.n);
    assert_memory_equal(out.data + out.len - tail.n, tail.b, tail.n);
    action_result_reads_as(c, out.data, out.len, &r, &ours, "ours");
    struct bld in = {.n = 0};
    b_header(&in, mirror_fp);
    b_raw(&in, out.data + 10, out.len - 10);
    action_result_reads_as(c, in.b, in.n, &r, &ours, "mirror");
    lp_action_result_clear(&r);
    lp_buf_free(&out);
  }
  lp_avro_codec_destroy(&c);
}

/* Records of the ActionResult before the copy fields (fingerprint
 * 0x3b8acc8eff0909f7, what executors not yet upgraded write) are read
 * without configuration, both framings: the copy fields NULL, and
 * re-encoded they are exactly what ours writes for the same outcome. */
static void test_previous_action_result_writer(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  char err[512] = "";
  char *prev = action_result_schema_before_copy();
  uint64_t prev_fp = fingerprint_of(prev);
  /* The version before this one (docs/schemas.md's table had it). */
  assert_true(prev_fp == UINT64_C(0x3b8acc8eff0909f7));
  uint64_t fp = lp_avro_fingerprint(c, LP_REC_ACTION_RESULT);
  assert_true(prev_fp != fp);
  /* Known from the start. */
  assert_int_equal(lp_avro_codec_add_schema(c, prev, err, sizeof(err)), -1);
  assert_string_equal(err, "avro: a schema with fingerprint "
                           "0x3b8acc8eff0909f7 is already known");
  assert_int_equal(
      lp_avro_codec_add_registry_schema(c, 42, prev, err, sizeof(err)), 0);
  free(prev);
  /* Minimal records of every kind, score_sync included (that version had
   * it), and every outcome. */
  for (int kind = 0; kind < LP_ACTION_KIND_COUNT; kind++) {
    for (int outcome = 0; outcome < LP_OUTCOME_COUNT; outcome++) {
      for (int confluent = 0; confluent < 2; confluent++) {
        struct bld in = {.n = 0};
        if (confluent)
          b_confluent(&in, 42);
        else
          b_header(&in, prev_fp);
        b_minimal_action_result(&in, outcome, kind, B_NO_COPY);
        struct lp_action_result want;
        minimal_action_result(&want);
        want.action_kind = (enum lp_action_kind)kind;
        want.outcome = (enum lp_action_outcome)outcome;
        struct bld ours = {.n = 0};
        b_header(&ours, fp);
        b_minimal_action_result(&ours, outcome, kind, B_COPY_NULL);
        action_result_reads_as(c, in.b, in.n, &want, &ours, "previous");
        lp_action_result_clear(&want);
      }
    }
  }
  /* A full record: the previous writer's datum is ours without the five
   * trailing nulls. */
  struct lp_action_result r;
  full_action_result(&r);
  free(r.copy_source);
  free(r.copy_model);
  free(r.copy_prompt);
  free(r.copy_output);
  free(r.copy_note);
  r.copy_source = r.copy_model = r.copy_prompt = r.copy_output = NULL;
  r.copy_note = NULL;
  struct lp_buf out;
  lp_buf_init(&out);
  if (lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)))
    fail_msg("encode action result: %s", err);
  static const uint8_t five_nulls[5] = {0};
  assert_true(out.len > 15);
  assert_memory_equal(out.data + out.len - 5, five_nulls, 5);
  struct bld ours = {.n = 0};
  b_raw(&ours, out.data, out.len);
  for (int confluent = 0; confluent < 2; confluent++) {
    struct bld in = {.n = 0};
    if (confluent)
      b_confluent(&in, 42);
    else
      b_header(&in, prev_fp);
    b_raw(&in, out.data + 10, out.len - 10 - 5);
    action_result_reads_as(c, in.b, in.n, &r, &ours, "previous full");
    /* The copy fields' bytes after the previous writer's datum are not
     * its: trailing bytes, an error. */
    b_raw(&in, five_nulls, 5);
    struct lp_action_result back = {0};
    assert_int_equal(
        lp_avro_decode_action_result(c, in.b, in.n, &back, err, sizeof(err)),
        -1);
    assert_string_equal(err, "avro: 5 trailing bytes after the datum");
    assert_true(all_zero(&back, sizeof(back)));
  }
  lp_action_result_clear(&r);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* Bad attributes: encoder errors name the item; every truncation of a
 * score_sync record is an error; bad text in an attribute is named. */
static void test_score_sync_errors(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_reward_decision d;
  struct lp_buf out;
  lp_buf_init(&out);
  char err[256] = "";

  score_sync_decision(&d);
  free(d.action.attributes[1].name);
  d.action.attributes[1].name = NULL;
  assert_int_equal(lp_avro_encode_decision(c, &d, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "action.attributes[1].name: required field missing");
  d.action.attributes[1].name = lp_xstrdup("bad \xC3\x28");
  assert_int_equal(lp_avro_encode_decision(c, &d, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "action.attributes[1].name: not valid UTF-8");
  lp_reward_decision_clear(&d);

  score_sync_decision(&d);
  struct lp_feature *three = d.action.attributes;
  d.action.attributes = lp_xcalloc(1001, sizeof(struct lp_feature));
  memcpy(d.action.attributes, three, 3 * sizeof(*three));
  free(three);
  d.action.n_attributes = 1001;
  assert_int_equal(lp_avro_encode_decision(c, &d, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "action.attributes: 1001 items exceed the limit of "
                           "1000");
  lp_reward_decision_clear(&d);
  assert_int_equal(out.len, 0);

  score_sync_decision(&d);
  if (lp_avro_encode_decision(c, &d, &out, err, sizeof(err)))
    fail_msg("encode: %s", err);
  for (size_t n = 0; n < out.len; n++) {
    uint8_t *copy = lp_xmalloc(n ? n : 1);
    memcpy(copy, out.data, n);
    struct lp_reward_decision back = {0};
    assert_int_equal(
        lp_avro_decode_decision(c, copy, n, &back, err, sizeof(err)), -1);
    assert_true(all_zero(&back, sizeof(back)));
    if (n >= 10 && strncmp(err, "avro: truncated datum", 21) != 0)
      fail_msg("prefix %zu: %s", n, err);
    free(copy);
  }
  const uint8_t *seg = memmem(out.data, out.len, "loyalty_segment", 15);
  assert_non_null(seg);
  struct lp_reward_decision back = {0};
  assert_int_equal(lp_avro_decode_decision(c, out.data,
                                           (size_t)(seg - out.data) + 3, &back,
                                           err, sizeof(err)),
                   -1);
  assert_string_equal(err,
                      "avro: truncated datum at action.attributes[1].name");
  lp_reward_decision_clear(&d);

  struct bld b = {.n = 0};
  b_header(&b, lp_avro_fingerprint(c, LP_REC_DECISION));
  size_t start = b.n;
  b_decision(&b, LP_ACTION_SCORE_SYNC, B_SYNC);
  uint8_t *v = memmem(b.b + start, b.n - start, "612.40", 6);
  assert_non_null(v);
  v[0] = 0xFF;
  assert_int_equal(
      lp_avro_decode_decision(c, b.b, b.n, &back, err, sizeof(err)), -1);
  assert_string_equal(err, "action.attributes[0].value: not valid UTF-8");
  assert_true(all_zero(&back, sizeof(back)));
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* ------------------------------------------------------------------------
 * Encoder errors
 */

static void test_encode_errors(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_order_event ev;
  struct lp_buf out;
  lp_buf_init(&out);
  char err[256];

  full_order(&ev);
  free(ev.event_id);
  ev.event_id = NULL;
  assert_int_equal(lp_avro_encode_order(c, &ev, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "event_id: required field missing");
  assert_int_equal(out.len, 0);
  lp_order_event_clear(&ev);

  full_order(&ev);
  free(ev.line_items[1].sku);
  ev.line_items[1].sku = lp_xstrdup("bad \xC3\x28");
  assert_int_equal(lp_avro_encode_order(c, &ev, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "line_items[1].sku: not valid UTF-8");
  lp_order_event_clear(&ev);

  full_order(&ev);
  free(ev.shop);
  ev.shop = lp_xmalloc(LP_MAX_STRING_BYTES + 2);
  memset(ev.shop, 'a', LP_MAX_STRING_BYTES + 1);
  ev.shop[LP_MAX_STRING_BYTES + 1] = '\0';
  assert_int_equal(lp_avro_encode_order(c, &ev, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "shop: string of 4097 bytes exceeds the limit of "
                           "4096");
  lp_order_event_clear(&ev);

  full_order(&ev);
  ev.status = (enum lp_order_status)9;
  assert_int_equal(lp_avro_encode_order(c, &ev, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "status: unknown value 9");
  lp_order_event_clear(&ev);

  full_order(&ev);
  free(ev.discount_codes[1]);
  ev.discount_codes[1] = NULL;
  assert_int_equal(lp_avro_encode_order(c, &ev, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "discount_codes[1]: required field missing");
  lp_order_event_clear(&ev);

  minimal_order(&ev);
  ev.n_line_items = LP_MAX_LINE_ITEMS + 1;
  ev.line_items = lp_xcalloc(ev.n_line_items, sizeof(struct lp_line_item));
  assert_int_equal(lp_avro_encode_order(c, &ev, &out, err, sizeof(err)), -1);
  assert_string_equal(err, "line_items: 1001 items exceed the limit of 1000");
  lp_order_event_clear(&ev);

  struct lp_reward_decision d;
  full_decision(&d);
  free(d.explanation.features[1].name);
  d.explanation.features[1].name = NULL;
  assert_int_equal(lp_avro_encode_decision(c, &d, &out, err, sizeof(err)), -1);
  assert_string_equal(err,
                      "explanation.features[1].name: required field missing");
  lp_reward_decision_clear(&d);
  assert_int_equal(out.len, 0);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* ------------------------------------------------------------------------
 * Hostile and invalid input
 */

static void test_framing_errors(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  expect_order_error(c, "", 0, "avro: empty record");
  expect_order_error(c, "{\"id\":1}", 8,
                     "avro: unknown framing: first byte 0x7B (expected 0xC3 "
                     "for Avro single-object or 0x00 for the Confluent wire "
                     "format)");
  expect_order_error(c, "\xC3\x01\x01", 3,
                     "avro: truncated single-object header (3 of 10 bytes)");
  expect_order_error(c, "\xC3\x02\x01\x02\x03\x04\x05\x06\x07\x08", 10,
                     "avro: bad single-object marker 0xC3 0x02 (expected "
                     "0xC3 0x01)");
  struct bld b = {.n = 0};
  b_header(&b, UINT64_C(0x0123456789abcdef));
  b_minimal_order(&b);
  expect_order_error(c, b.b, b.n,
                     "avro: unknown schema fingerprint 0x0123456789abcdef");
  expect_order_error(c, "\x00\x00\x00", 3,
                     "avro: truncated Confluent header (3 of 5 bytes)");
  b.n = 0;
  b_confluent(&b, 7);
  b_minimal_order(&b);
  expect_order_error(c, b.b, b.n,
                     "avro: Confluent-framed record but no schema registry "
                     "configured");
  /* A valid record of another type. */
  struct lp_customer_event ce;
  full_customer(&ce);
  struct lp_buf out;
  lp_buf_init(&out);
  char err[256] = "";
  assert_int_equal(lp_avro_encode_customer(c, &ce, &out, err, sizeof(err)), 0);
  expect_order_error(c, out.data, out.len,
                     "avro: writer schema com.loyalty.events.CustomerEvent "
                     "cannot be read as OrderEvent: writer record "
                     "CustomerEvent is not OrderEvent (record names must "
                     "match)");
  /* Trailing bytes after a valid datum. */
  lp_buf_reset(&out);
  struct lp_order_event ev;
  minimal_order(&ev);
  encode_order_ok(c, &ev, &out);
  lp_buf_append(&out, "\0\0", 2);
  expect_order_error(c, out.data, out.len - 1,
                     "avro: 1 trailing byte after the datum");
  expect_order_error(c, out.data, out.len,
                     "avro: 2 trailing bytes after the datum");
  lp_order_event_clear(&ev);
  lp_customer_event_clear(&ce);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* Every proper prefix of a valid record is an error, never a crash. */
static void test_every_truncation(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_order_event ev;
  full_order(&ev);
  struct lp_buf out;
  lp_buf_init(&out);
  encode_order_ok(c, &ev, &out);
  assert_true(out.len > 100);
  /* The same with an arena set: a fast read that gives up leaves nothing
   * behind for the checked path, whose errors are unchanged. */
  struct lp_arena arena;
  lp_arena_init(&arena);
  for (size_t k = 0; k < 2 * out.len; k++) {
    size_t n = k % out.len;
    if (k == out.len)
      lp_avro_codec_set_arena(c, &arena);
    /* An exact-size copy, so ASan sees any read past the prefix. */
    uint8_t *copy = lp_xmalloc(n ? n : 1);
    memcpy(copy, out.data, n);
    char err[256] = "";
    struct lp_order_event back = {0};
    assert_int_equal(lp_avro_decode_order(c, copy, n, &back, err, sizeof(err)),
                     -1);
    assert_true(all_zero(&back, sizeof(back)));
    if (n == 0)
      assert_string_equal(err, "avro: empty record");
    else if (n < 10)
      assert_true(strncmp(err, "avro: truncated single-object header", 36) ==
                  0);
    else if (strncmp(err, "avro: truncated datum", 21) != 0)
      fail_msg("prefix %zu: %s", n, err);
    free(copy);
  }
  lp_avro_codec_set_arena(c, NULL);
  lp_arena_free(&arena);
  /* One spot check of the path in the message: cut inside line 0's sku
   * ("IPOD2008PINK"). */
  const uint8_t *sku = memmem(out.data, out.len, "IPOD2008PINK", 12);
  assert_non_null(sku);
  expect_order_error(c, out.data, (size_t)(sku - out.data) + 3,
                     "avro: truncated datum at line_items[0].sku");
  lp_order_event_clear(&ev);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* The same for an action result (fast reader and checked path alike). */
static void test_every_truncation_action_result(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_action_result r;
  full_action_result(&r);
  struct lp_buf out;
  lp_buf_init(&out);
  char err[256] = "";
  if (lp_avro_encode_action_result(c, &r, &out, err, sizeof(err)))
    fail_msg("encode action result: %s", err);
  assert_true(out.len > 100);
  for (size_t n = 0; n < out.len; n++) {
    uint8_t *copy = lp_xmalloc(n ? n : 1);
    memcpy(copy, out.data, n);
    struct lp_action_result back = {0};
    assert_int_equal(
        lp_avro_decode_action_result(c, copy, n, &back, err, sizeof(err)), -1);
    assert_true(all_zero(&back, sizeof(back)));
    if (n == 0)
      assert_string_equal(err, "avro: empty record");
    else if (n < 10)
      assert_true(strncmp(err, "avro: truncated single-object header", 36) ==
                  0);
    else if (strncmp(err, "avro: truncated datum", 21) != 0)
      fail_msg("prefix %zu: %s", n, err);
    free(copy);
  }
  const uint8_t *actor = memmem(out.data, out.len, "ops:alice", 9);
  assert_non_null(actor);
  struct lp_action_result back = {0};
  assert_int_equal(lp_avro_decode_action_result(c, out.data,
                                                (size_t)(actor - out.data) + 3,
                                                &back, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "avro: truncated datum at actor");
  lp_action_result_clear(&r);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

static void test_hostile_lengths_and_values(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  uint64_t fp = lp_avro_fingerprint(c, LP_REC_ORDER);
  struct bld b;

  /* A claimed 2 GiB string: refused before anything is allocated. */
  b.n = 0;
  b_header(&b, fp);
  b_long(&b, INT64_C(2147483648));
  b_raw(&b, "abc", 3);
  expect_order_error(c, b.b, b.n,
                     "event_id: string of 2147483648 bytes exceeds the limit "
                     "of 4096");
  /* Within the string limit but beyond the bytes present. */
  b.n = 0;
  b_header(&b, fp);
  b_long(&b, 4000);
  b_raw(&b, "abc", 3);
  expect_order_error(c, b.b, b.n, "avro: truncated datum at event_id");
  /* Negative length. */
  b.n = 0;
  b_header(&b, fp);
  b_long(&b, -1);
  expect_order_error(c, b.b, b.n, "event_id: negative length -1");
  /* A varint longer than 64 bits. */
  b.n = 0;
  b_header(&b, fp);
  b_order_ids(&b);
  b_raw(&b, "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x7F", 10);
  expect_order_error(c, b.b, b.n,
                     "event_time_ms: malformed varint (more than 64 bits)");
  b.n = 0;
  b_header(&b, fp);
  b_order_ids(&b);
  b_raw(&b, "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x81\x00", 11);
  expect_order_error(c, b.b, b.n,
                     "event_time_ms: malformed varint (more than 64 bits)");
  /* Invalid UTF-8, and a NUL inside a string. */
  b.n = 0;
  b_header(&b, fp);
  b_str(&b, "e1");
  b_str(&b, "caf\xC3");
  expect_order_error(c, b.b, b.n, "shop: not valid UTF-8");
  b.n = 0;
  b_header(&b, fp);
  b_str(&b, "e1");
  b_long(&b, 3);
  b_raw(&b, "a\0b", 3);
  expect_order_error(c, b.b, b.n, "shop: string contains a NUL byte");
  /* Enum index out of range. */
  b.n = 0;
  b_header(&b, fp);
  b_order_ids(&b);
  b_long(&b, T_TIME);
  b_long(&b, 7);
  expect_order_error(c, b.b, b.n,
                     "status: enum index 7 out of range (4 symbols)");
  /* Too many array items: a claimed billion discount codes. */
  b.n = 0;
  b_header(&b, fp);
  b_order_ids(&b);
  b_long(&b, T_TIME);
  b_long(&b, 1);
  b_str(&b, "USD");
  for (int i = 0; i < 4; i++)
    b_long(&b, 0);
  b_long(&b, 1000000000);
  expect_order_error(c, b.b, b.n, "discount_codes: more than 1000 array items");
  /* ... also when split into blocks, one with a (negative) byte count. */
  b.n -= 5; /* drop the count just written (5-byte varint) */
  b_long(&b, 600);
  for (int i = 0; i < 600; i++)
    b_str(&b, "X");
  b_long(&b, -401);
  b_long(&b, 802);
  expect_order_error(c, b.b, b.n, "discount_codes: more than 1000 array items");
  /* Blocks with byte sizes (as other writers may send) decode; a size
   * that does not match the items is an error. */
  for (int good = 1; good >= 0; good--) {
    b.n = 0;
    b_header(&b, fp);
    b_order_ids(&b);
    b_long(&b, T_TIME);
    b_long(&b, 1);
    b_str(&b, "USD");
    for (int i = 0; i < 4; i++)
      b_long(&b, 0);
    b_long(&b, -2);           /* discount_codes: 2 items ... */
    b_long(&b, good ? 6 : 7); /* ... taking 6 bytes */
    b_str(&b, "AB");
    b_str(&b, "CD");
    b_long(&b, 1); /* one more plain block */
    b_str(&b, "EF");
    b_long(&b, 0);
    b_long(&b, 0); /* line_items: [] */
    b_long(&b, 0); /* source: null */
    if (good) {
      char err[256] = "";
      struct lp_order_event ev = {0};
      if (lp_avro_decode_order(c, b.b, b.n, &ev, err, sizeof(err)))
        fail_msg("sized blocks: %s", err);
      assert_int_equal(ev.n_discount_codes, 3);
      assert_string_equal(ev.discount_codes[0], "AB");
      assert_string_equal(ev.discount_codes[2], "EF");
      lp_order_event_clear(&ev);
    } else {
      expect_order_error(c, b.b, b.n,
                         "discount_codes: block says 7 bytes but its items "
                         "take 6");
    }
  }
  /* An int that does not fit 32 bits, and a union branch out of range. */
  b.n = 0;
  b_header(&b, fp);
  b_order_ids(&b);
  b_long(&b, T_TIME);
  b_long(&b, 1);
  b_str(&b, "USD");
  for (int i = 0; i < 4; i++)
    b_long(&b, 0);
  b_long(&b, 0); /* discount_codes: [] */
  b_long(&b, 1); /* line_items: one block of 1 */
  for (int i = 0; i < 4; i++)
    b_long(&b, 0); /* four null optional strings */
  b_long(&b, INT64_C(1) << 40);
  expect_order_error(c, b.b, b.n,
                     "line_items[0].quantity: 1099511627776 does not fit an "
                     "int");
  b.n -= 6;
  b_long(&b, 2);
  b_long(&b, 5);
  b_long(&b, 0);
  b_long(&b, 2); /* source: branch 2 of 2 */
  expect_order_error(c, b.b, b.n,
                     "source: union branch 2 out of range (2 branches)");
  lp_avro_codec_destroy(&c);
}

static void test_semantic_validation(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_order_event ev;
  struct lp_buf out;
  lp_buf_init(&out);

  /* The encoder carries a negative quantity; the decoder refuses it. */
  full_order(&ev);
  ev.line_items[1].quantity = -1;
  encode_order_ok(c, &ev, &out);
  expect_order_error(c, out.data, out.len,
                     "line_items[1].quantity: -1 is not in 1..1000000");
  lp_order_event_clear(&ev);

  /* Money: the bound itself is fine, one micro more is not, nor INT64_MAX
   * (1e300 cannot even be written as a long). */
  int64_t totals[] = {LP_MAX_MONEY_MICROS, LP_MAX_MONEY_MICROS + 1, INT64_MAX};
  for (size_t i = 0; i < LP_ARRAY_LEN(totals); i++) {
    lp_buf_reset(&out);
    minimal_order(&ev);
    ev.total_micros = totals[i];
    encode_order_ok(c, &ev, &out);
    if (i == 0) {
      char err[256] = "";
      struct lp_order_event back = {0};
      assert_int_equal(
          lp_avro_decode_order(c, out.data, out.len, &back, err, sizeof(err)),
          0);
      assert_int_equal(back.total_micros, LP_MAX_MONEY_MICROS);
      lp_order_event_clear(&back);
    } else {
      expect_order_error(c, out.data, out.len, "total: amount out of range");
    }
    lp_order_event_clear(&ev);
  }
  lp_buf_reset(&out);
  minimal_order(&ev);
  ev.line_items = lp_xcalloc(1, sizeof(struct lp_line_item));
  ev.n_line_items = 1;
  ev.line_items[0].quantity = 1;
  ev.line_items[0].unit_price_micros = INT64_MIN;
  encode_order_ok(c, &ev, &out);
  expect_order_error(c, out.data, out.len,
                     "line_items[0].unit_price: amount out of range");
  lp_order_event_clear(&ev);

  /* Customer: a raw email where the digest belongs. */
  struct lp_customer_event ce;
  full_customer(&ce);
  free(ce.email_sha256);
  ce.email_sha256 = lp_xstrdup("bob@example.com");
  lp_buf_reset(&out);
  char err[256] = "";
  assert_int_equal(lp_avro_encode_customer(c, &ce, &out, err, sizeof(err)), 0);
  struct lp_customer_event back = {0};
  assert_int_equal(
      lp_avro_decode_customer(c, out.data, out.len, &back, err, sizeof(err)),
      -1);
  assert_string_equal(err, "email_sha256: expected 64 hex characters (a "
                           "SHA-256 digest, never a raw email)");
  assert_true(all_zero(&back, sizeof(back)));
  lp_customer_event_clear(&ce);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* Random damage to a valid record: always 0 or -1, never a crash, and a
 * success is a valid record. Deterministic (fixed seed). */
static void test_mutations(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  struct lp_order_event ev;
  full_order(&ev);
  struct lp_buf out;
  lp_buf_init(&out);
  encode_order_ok(c, &ev, &out);
  uint8_t *m = lp_xcalloc(1, out.len + 16);
  unsigned seed = 12345;
  int ok = 0, failed = 0;
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = out.len;
    memcpy(m, out.data, n);
    int flips = 1 + (int)(rand_r(&seed) % 4);
    for (int k = 0; k < flips; k++) {
      size_t at = 10 + (size_t)rand_r(&seed) % (n - 10);
      m[at] = (uint8_t)rand_r(&seed);
    }
    if (iter % 7 == 0)
      n = 10 + (size_t)rand_r(&seed) % (out.len - 10 + 16);
    char err[256] = "";
    struct lp_order_event back = {0};
    int rc = lp_avro_decode_order(c, m, n, &back, err, sizeof(err));
    if (rc == 0) {
      ok++;
      assert_int_equal(lp_order_event_validate(&back, err, sizeof(err)), 0);
    } else {
      failed++;
      assert_int_equal(rc, -1);
      assert_true(err[0] != '\0');
      assert_true(all_zero(&back, sizeof(back)));
    }
    lp_order_event_clear(&back);
  }
  assert_true(ok > 0 && failed > 0);
  /* Pure garbage after a valid header. */
  for (int iter = 0; iter < 5000; iter++) {
    size_t n = 10 + (size_t)rand_r(&seed) % 64;
    memcpy(m, out.data, 10);
    for (size_t i = 10; i < n; i++)
      m[i] = (uint8_t)rand_r(&seed);
    char err[256] = "";
    struct lp_order_event back = {0};
    if (lp_avro_decode_order(c, m, n, &back, err, sizeof(err)) == 0)
      lp_order_event_clear(&back);
  }
  free(m);
  lp_order_event_clear(&ev);
  lp_buf_free(&out);
  lp_avro_codec_destroy(&c);
}

/* ------------------------------------------------------------------------
 * Schema resolution: older writers, registry ids
 */

/* An older OrderEvent: no discount_micros, tax_micros, discount_codes,
 * source; line items without product_id/category/brand; total as int;
 * status symbols in another order plus one we do not know; an extra field
 * we do not know. */
static const char *const old_order_schema =
    "{\"type\":\"record\",\"name\":\"OrderEvent\",\"namespace\":"
    "\"com.loyalty.events\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"shop\",\"type\":\"string\"},"
    "{\"name\":\"order_id\",\"type\":\"string\"},"
    "{\"name\":\"customer_id\",\"type\":\"string\"},"
    "{\"name\":\"event_time_ms\",\"type\":\"long\"},"
    "{\"name\":\"status\",\"type\":{\"type\":\"enum\",\"name\":"
    "\"OrderStatus\",\"symbols\":[\"paid\",\"created\",\"on_hold\"]}},"
    "{\"name\":\"currency\",\"type\":\"string\"},"
    "{\"name\":\"total_micros\",\"type\":\"int\"},"
    "{\"name\":\"subtotal_micros\",\"type\":\"long\"},"
    "{\"name\":\"legacy_channel\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"line_items\",\"type\":{\"type\":\"array\",\"items\":"
    "{\"type\":\"record\",\"name\":\"LineItem\",\"fields\":["
    "{\"name\":\"sku\",\"type\":\"string\"},"
    "{\"name\":\"quantity\",\"type\":\"int\"},"
    "{\"name\":\"unit_price_micros\",\"type\":\"long\"}]}}}]}";

/* A datum of old_order_schema with the given status symbol index. */
static void b_old_order(struct bld *b, int status) {
  b_order_ids(b);
  b_long(b, T_TIME);
  b_long(b, status);
  b_str(b, "USD");
  b_long(b, 2500000); /* total_micros (int) */
  b_long(b, 2000000); /* subtotal_micros */
  b_long(b, 1);       /* legacy_channel: string branch */
  b_str(b, "pos");
  b_long(b, 1); /* one line item */
  b_str(b, "SKU-1");
  b_long(b, 2);
  b_long(b, 1000000);
  b_long(b, 0);
}

static void assert_old_order(const struct lp_order_event *ev,
                             enum lp_order_status status) {
  assert_string_equal(ev->event_id, "e1");
  assert_string_equal(ev->customer_id, "c1");
  assert_int_equal(ev->event_time_ms, T_TIME);
  assert_int_equal(ev->status, status);
  assert_string_equal(ev->currency, "USD");
  assert_int_equal(ev->total_micros, 2500000);
  assert_int_equal(ev->subtotal_micros, 2000000);
  assert_int_equal(ev->discount_micros, 0);
  assert_int_equal(ev->tax_micros, 0);
  assert_int_equal(ev->n_discount_codes, 0);
  assert_null(ev->discount_codes);
  assert_null(ev->source);
  assert_int_equal(ev->n_line_items, 1);
  assert_null(ev->line_items[0].product_id);
  assert_string_equal(ev->line_items[0].sku, "SKU-1");
  assert_null(ev->line_items[0].category);
  assert_int_equal(ev->line_items[0].quantity, 2);
  assert_int_equal(ev->line_items[0].unit_price_micros, 1000000);
}

static void test_older_writer_single_object(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  char err[512] = "";
  char *pcf = lp_avro_schema_canonical_form(
      old_order_schema, strlen(old_order_schema), err, sizeof(err));
  assert_non_null(pcf);
  uint64_t fp = lp_avro_crc64(pcf, strlen(pcf));
  free(pcf);
  struct bld b = {.n = 0};
  b_header(&b, fp);
  b_old_order(&b, 0);
  char want[128];
  snprintf(want, sizeof(want), "avro: unknown schema fingerprint 0x%016" PRIx64,
           fp);
  expect_order_error(c, b.b, b.n, want);

  assert_int_equal(
      lp_avro_codec_add_schema(c, old_order_schema, err, sizeof(err)), 0);
  assert_int_equal(
      lp_avro_codec_add_schema(c, old_order_schema, err, sizeof(err)), -1);
  snprintf(want, sizeof(want),
           "avro: a schema with fingerprint 0x%016" PRIx64 " is already known",
           fp);
  assert_string_equal(err, want);
  for (int sym = 0; sym < 3; sym++) {
    b.n = 0;
    b_header(&b, fp);
    b_old_order(&b, sym);
    struct lp_order_event ev = {0};
    if (lp_avro_decode_order(c, b.b, b.n, &ev, err, sizeof(err)))
      fail_msg("decode old order: %s", err);
    /* paid -> paid, created -> created, on_hold (unknown) -> default. */
    assert_old_order(&ev, sym == 0 ? LP_ORDER_PAID : LP_ORDER_CREATED);
    lp_order_event_clear(&ev);
  }
  /* The same writer read as another record: refused with the reason. */
  struct lp_customer_event ce = {0};
  assert_int_equal(lp_avro_decode_customer(c, b.b, b.n, &ce, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "avro: writer schema com.loyalty.events.OrderEvent "
                           "cannot be read as CustomerEvent: writer record "
                           "OrderEvent is not CustomerEvent (record names "
                           "must match)");
  assert_int_equal(
      lp_avro_codec_add_schema(c, "{\"type\":\"nope\"}", err, sizeof(err)), -1);
  assert_true(strncmp(err, "schema: ", 8) == 0);
  lp_avro_codec_destroy(&c);
}

static void test_registry_preloaded(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  char err[512] = "";
  assert_int_equal(lp_avro_codec_add_registry_schema(c, 7, old_order_schema,
                                                     err, sizeof(err)),
                   0);
  assert_int_equal(lp_avro_codec_add_registry_schema(c, 7, old_order_schema,
                                                     err, sizeof(err)),
                   -1);
  assert_string_equal(err, "avro: schema id 7 is already known");
  struct bld b = {.n = 0};
  b_confluent(&b, 7);
  b_old_order(&b, 0);
  struct lp_order_event ev = {0};
  if (lp_avro_decode_order(c, b.b, b.n, &ev, err, sizeof(err)))
    fail_msg("decode: %s", err);
  assert_old_order(&ev, LP_ORDER_PAID);
  lp_order_event_clear(&ev);
  assert_int_equal(lp_avro_codec_last_error_retryable(c), 0);

  /* A writer without a required field (currency) cannot be read. */
  const char *no_currency =
      "{\"type\":\"record\",\"name\":\"OrderEvent\",\"fields\":["
      "{\"name\":\"event_id\",\"type\":\"string\"}]}";
  assert_int_equal(
      lp_avro_codec_add_registry_schema(c, 8, no_currency, err, sizeof(err)),
      0);
  b.n = 0;
  b_confluent(&b, 8);
  b_str(&b, "e1");
  expect_order_error(c, b.b, b.n,
                     "avro: writer schema OrderEvent cannot be read as "
                     "OrderEvent: shop: missing from the writer schema and "
                     "has no default");
  /* Other ids still need a registry. */
  b.n = 0;
  b_confluent(&b, 9);
  expect_order_error(c, b.b, b.n,
                     "avro: Confluent-framed record but no schema registry "
                     "configured");
  lp_avro_codec_destroy(&c);
}

/* ActionResult as a newer writer might send it: one more outcome symbol
 * ("partially_issued", index 7) and one more field (cost_micros, last). */
static char *newer_action_result_schema(void) {
  json_error_t jerr;
  json_t *root = json_loads(embedded_json("ActionResult"), 0, &jerr);
  assert_non_null(root);
  json_t *fields = json_object_get(root, "fields");
  size_t i;
  json_t *f;
  int found = 0;
  json_array_foreach(fields, i, f) {
    if (strcmp(json_string_value(json_object_get(f, "name")), "outcome") != 0)
      continue;
    json_t *syms = json_object_get(json_object_get(f, "type"), "symbols");
    assert_int_equal(json_array_size(syms), LP_OUTCOME_COUNT);
    json_array_append_new(syms, json_string("partially_issued"));
    found = 1;
  }
  assert_true(found);
  json_array_append_new(fields,
                        json_pack("{s:s,s:s,s:i}", "name", "cost_micros",
                                  "type", "long", "default", 0));
  char *json = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return json;
}

/* A newer writer's outcome symbol reads as failed (the enum's default),
 * never as issued; its extra field is skipped. Both framings. */
static void test_action_result_newer_writer(void **state) {
  (void)state;
  struct lp_avro_codec *c = new_codec(NULL);
  char err[512] = "";
  char *json = newer_action_result_schema();
  char *pcf =
      lp_avro_schema_canonical_form(json, strlen(json), err, sizeof(err));
  assert_non_null(pcf);
  uint64_t fp = lp_avro_crc64(pcf, strlen(pcf));
  free(pcf);
  assert_true(fp != lp_avro_fingerprint(c, LP_REC_ACTION_RESULT));
  assert_int_equal(lp_avro_codec_add_schema(c, json, err, sizeof(err)), 0);
  assert_int_equal(
      lp_avro_codec_add_registry_schema(c, 22, json, err, sizeof(err)), 0);
  free(json);
  static const struct {
    int writer_outcome, writer_kind;
    enum lp_action_outcome outcome;
  } cases[] = {
      {7, 1, LP_OUTCOME_FAILED}, /* partially_issued: unknown here */
      {0, 1, LP_OUTCOME_ISSUED},
      {2, 1, LP_OUTCOME_PENDING_APPROVAL},
      {6, 1, LP_OUTCOME_FAILED},
  };
  for (size_t k = 0; k < LP_ARRAY_LEN(cases); k++) {
    for (int confluent = 0; confluent < 2; confluent++) {
      struct bld b = {.n = 0};
      if (confluent)
        b_confluent(&b, 22);
      else
        b_header(&b, fp);
      b_minimal_action_result(&b, cases[k].writer_outcome, cases[k].writer_kind,
                              B_COPY_NULL);
      b_long(&b, 7500000); /* cost_micros */
      struct lp_action_result r = {0};
      if (lp_avro_decode_action_result(c, b.b, b.n, &r, err, sizeof(err)))
        fail_msg("decode newer action result: %s", err);
      assert_int_equal(r.outcome, cases[k].outcome);
      assert_int_equal(r.action_kind, LP_ACTION_REWARD);
      assert_string_equal(r.decision_id, "00000000000000000000000000000000");
      assert_null(r.platform);
      assert_int_equal(r.event_time_ms, T_TIME);
      assert_int_equal(r.time_ms, T_TIME + 1);
      lp_action_result_clear(&r);
    }
  }
  /* Out of the newer writer's own range: an error, not a default. */
  struct bld b = {.n = 0};
  b_header(&b, fp);
  b_minimal_action_result(&b, 8, 1, B_COPY_NULL);
  b_long(&b, 0);
  struct lp_action_result r = {0};
  assert_int_equal(
      lp_avro_decode_action_result(c, b.b, b.n, &r, err, sizeof(err)), -1);
  assert_string_equal(err, "outcome: enum index 8 out of range (8 symbols)");
  assert_true(all_zero(&r, sizeof(r)));
  lp_avro_codec_destroy(&c);
}

/* A tiny schema registry on loopback (libmicrohttpd). */
struct registry {
  struct MHD_Daemon *daemon;
  uint16_t port;
  pthread_mutex_t lock;
  int requests;
  char last_url[128];
};

static enum MHD_Result registry_handler(void *cls, struct MHD_Connection *conn,
                                        const char *url, const char *method,
                                        const char *version,
                                        const char *upload_data,
                                        size_t *upload_data_size,
                                        void **con_cls) {
  (void)method;
  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)con_cls;
  struct registry *r = cls;
  pthread_mutex_lock(&r->lock);
  r->requests++;
  snprintf(r->last_url, sizeof(r->last_url), "%s", url);
  pthread_mutex_unlock(&r->lock);
  unsigned status = MHD_HTTP_OK;
  char *body;
  if (strcmp(url, "/schemas/ids/7") == 0) {
    json_t *o = json_pack("{s:s}", "schema", old_order_schema);
    body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
  } else if (strcmp(url, "/schemas/ids/10") == 0) {
    body = strdup("{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = "
                  "\\\"proto3\\\";\"}");
  } else if (strcmp(url, "/schemas/ids/11") == 0) {
    status = MHD_HTTP_SERVICE_UNAVAILABLE;
    body = strdup("{\"error_code\":50301,\"message\":\"busy\"}");
  } else {
    status = MHD_HTTP_NOT_FOUND;
    body = strdup("{\"error_code\":40403,\"message\":\"Schema not found\"}");
  }
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      strlen(body), body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(resp, "Content-Type",
                          "application/vnd.schemaregistry.v1+json");
  enum MHD_Result rc = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return rc;
}

static int registry_requests(struct registry *r) {
  pthread_mutex_lock(&r->lock);
  int n = r->requests;
  pthread_mutex_unlock(&r->lock);
  return n;
}

static void test_registry_fetch(void **state) {
  (void)state;
  struct registry r = {0};
  pthread_mutex_init(&r.lock, NULL);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  r.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                              registry_handler, &r, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&addr, MHD_OPTION_END);
  assert_non_null(r.daemon);
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(r.daemon, MHD_DAEMON_INFO_BIND_PORT);
  assert_non_null(info);
  r.port = info->port;
  assert_true(r.port != 0);

  /* Credentials in the URL are used but never shown; a trailing slash is
   * fine. */
  char url[128];
  snprintf(url, sizeof(url), "http://user:s3cret@127.0.0.1:%u/",
           (unsigned)r.port);
  struct lp_avro_codec *c = new_codec(url);
  struct bld b;
  char err[512] = "";
  for (int round = 0; round < 3; round++) {
    b.n = 0;
    b_confluent(&b, 7);
    b_old_order(&b, round % 2);
    struct lp_order_event ev = {0};
    if (lp_avro_decode_order(c, b.b, b.n, &ev, err, sizeof(err)))
      fail_msg("decode via registry: %s", err);
    assert_old_order(&ev, round % 2 ? LP_ORDER_CREATED : LP_ORDER_PAID);
    lp_order_event_clear(&ev);
  }
  assert_int_equal(registry_requests(&r), 1); /* fetched once, cached */
  assert_string_equal(r.last_url, "/schemas/ids/7");

  /* Unknown id: a permanent error, asked once. */
  for (int round = 0; round < 2; round++) {
    b.n = 0;
    b_confluent(&b, 4242);
    b_old_order(&b, 0);
    expect_order_error(c, b.b, b.n,
                       "avro: schema registry has no schema id 4242 (HTTP "
                       "404)");
    assert_int_equal(lp_avro_codec_last_error_retryable(c), 0);
  }
  assert_int_equal(registry_requests(&r), 2);
  /* Not an Avro schema: permanent. */
  b.n = 0;
  b_confluent(&b, 10);
  expect_order_error(c, b.b, b.n,
                     "avro: schema id 10 is a PROTOBUF schema, not Avro");
  assert_int_equal(lp_avro_codec_last_error_retryable(c), 0);
  /* 503: transient, retried on the next record. */
  for (int round = 0; round < 2; round++) {
    b.n = 0;
    b_confluent(&b, 11);
    char want[160];
    snprintf(want, sizeof(want),
             "avro: schema registry http://127.0.0.1:%u answered HTTP 503 "
             "for id 11",
             (unsigned)r.port);
    expect_order_error(c, b.b, b.n, want);
    assert_int_equal(lp_avro_codec_last_error_retryable(c), 1);
  }
  assert_int_equal(registry_requests(&r), 5);
  /* A success clears the flag. */
  b.n = 0;
  b_confluent(&b, 7);
  b_old_order(&b, 0);
  struct lp_order_event ev = {0};
  assert_int_equal(lp_avro_decode_order(c, b.b, b.n, &ev, err, sizeof(err)), 0);
  assert_int_equal(lp_avro_codec_last_error_retryable(c), 0);
  lp_order_event_clear(&ev);
  lp_avro_codec_destroy(&c);
  MHD_stop_daemon(r.daemon);

  /* Registry down (the port is closed now): transient, and the password
   * stays out of the message. */
  c = new_codec(url);
  b.n = 0;
  b_confluent(&b, 7);
  b_old_order(&b, 0);
  struct lp_order_event down = {0};
  assert_int_equal(lp_avro_decode_order(c, b.b, b.n, &down, err, sizeof(err)),
                   -1);
  char prefix[128];
  snprintf(prefix, sizeof(prefix),
           "avro: schema registry http://127.0.0.1:%u unreachable for id 7: ",
           (unsigned)r.port);
  if (strncmp(err, prefix, strlen(prefix)) != 0)
    fail_msg("unexpected: %s", err);
  assert_null(strstr(err, "s3cret"));
  assert_int_equal(lp_avro_codec_last_error_retryable(c), 1);
  lp_avro_codec_destroy(&c);
  pthread_mutex_destroy(&r.lock);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc64_spec_vectors),
      cmocka_unit_test(test_canonical_form_spec_vectors),
      cmocka_unit_test(test_our_schemas),
      cmocka_unit_test(test_single_object_header_and_bytes),
      cmocka_unit_test(test_round_trip_order),
      cmocka_unit_test(test_round_trip_customer),
      cmocka_unit_test(test_round_trip_decision),
      cmocka_unit_test(test_round_trip_dead_letter),
      cmocka_unit_test(test_dead_letter_repairs_text),
      cmocka_unit_test(test_round_trip_action_result),
      cmocka_unit_test(test_action_result_repairs_text),
      cmocka_unit_test(test_round_trip_score_sync),
      cmocka_unit_test(test_previous_schema_writers),
      cmocka_unit_test(test_round_trip_action_result_copy),
      cmocka_unit_test(test_previous_action_result_writer),
      cmocka_unit_test(test_score_sync_errors),
      cmocka_unit_test(test_encode_errors),
      cmocka_unit_test(test_framing_errors),
      cmocka_unit_test(test_every_truncation),
      cmocka_unit_test(test_every_truncation_action_result),
      cmocka_unit_test(test_hostile_lengths_and_values),
      cmocka_unit_test(test_semantic_validation),
      cmocka_unit_test(test_mutations),
      cmocka_unit_test(test_older_writer_single_object),
      cmocka_unit_test(test_registry_preloaded),
      cmocka_unit_test(test_action_result_newer_writer),
      cmocka_unit_test(test_registry_fetch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
