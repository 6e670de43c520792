/*
 * webhook_load.c — a loopback load generator for the webhook bridge: C
 * persistent HTTP/1.1 keep-alive connections, each sending signed Shopify
 * orders/create deliveries one after another (closed loop), or all of
 * them together at a fixed rate (--rate, open loop), for a warm-up and
 * then a measured window.
 *
 * What it guarantees:
 * - every delivery is distinct: its own order id, X-Shopify-Event-Id and
 *   X-Shopify-Webhook-Id, so the bridge's dedupe window never answers a
 *   repeat and every 200 is one produced record;
 * - the signature is base64 HMAC-SHA256 over the exact bytes sent,
 *   computed with OpenSSL here (not with the bridge's own code), per
 *   request inside the loop: measured at under 3% of the generator's CPU
 *   (most of which is the kernel's loopback TCP), so nothing is pre-signed;
 * - a response counts as ok only when it is complete and its status is
 *   200; other statuses are counted by code (non200), and requests
 *   without a readable answer (broken connection, malformed response,
 *   timeout) and failed connects as errors, the first few with their
 *   reason on stderr; requests = ok + non200 + unanswered requests;
 * - latency runs from the first byte of the request written to the last
 *   byte of the response read (CLOCK_MONOTONIC); percentiles are exact,
 *   over every 200 of the measured window;
 * - with --check-topic, the sum of the topic's high watermarks is taken
 *   before and after: it must have grown by exactly the number of 200s
 *   (warm-up included), else the run fails (exit 1).
 *
 * One thread and one epoll set serve every connection, so the generator
 * takes little of the CPU it shares with the bridge. Only 127.0.0.0/8
 * addresses are accepted.
 *
 * Output, one line on stdout:
 *   requests=N ok=N non200=N errors=N rps=X p50_ms=X p90_ms=X p99_ms=X
 *   max_ms=X warmup_requests=N warmup_ok=N warmup_bad=N gen_cpu_s=X
 *   [late=N unsent=N] [topic_records=N]
 * where the first nine are the measured window's (rps: its 200s over the
 * time from its start to its last 200), warmup_bad counts the warm-up's
 * non-200s and errors, gen_cpu_s is this process's CPU time, late/unsent
 * (open loop) the slots sent more than 1 ms late / never sent for want of
 * a free connection, and topic_records what the topic gained.
 * Exit status: 0 the run completed with at least one 200 (and the topic
 * check held), 1 a run-time failure, no 200 at all or a failed check, 2
 * bad usage. Non-200s and errors are counted, not turned into an exit
 * status: the caller judges them (tests/bench.sh fails on any).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"

static const char usage[] =
    "usage: webhook_load --url http://127.0.0.1:PORT/webhooks/shopify\n"
    "         --secret S --connections C --duration-s D [--warmup-s W]\n"
    "         [--rate R] [--shop X] [--body-file F] [--customers N]\n"
    "         [--timeout-ms MS] [--check-topic T (--bootstrap B |\n"
    "         --bootstrap-file F)] [--samples-file F]\n"
    "\n"
    "  --connections C   keep-alive connections, one request in flight each\n"
    "  --duration-s D    measured window (seconds, fractions allowed)\n"
    "  --warmup-s W      sent and answered but not measured (default 1)\n"
    "  --rate R          open loop: R requests/s in total, sent on whichever\n"
    "                    connection is free (default: closed loop, each\n"
    "                    connection sends its next request on the answer)\n"
    "  --shop X          X-Shopify-Shop-Domain (default\n"
    "                    load-shop.myshopify.com)\n"
    "  --body-file F     the body template instead of the built-in order;\n"
    "                    {{order_id}}, {{order_number}}, {{customer_id}},\n"
    "                    {{customer_n}} and {{seq}} are replaced per request\n"
    "  --customers N     distinct customers the orders are spread over\n"
    "                    (default 10000)\n"
    "  --timeout-ms MS   an unanswered request is an error after this\n"
    "                    (default 10000)\n"
    "  --check-topic T   the topic's records must grow by the number of 200s\n"
    "  --bootstrap B     Kafka bootstrap servers for the check\n"
    "  --bootstrap-file F  ... read from devbroker's file\n"
    "  --samples-file F  every measured 200 as 'sent_ms latency_ms' (when\n"
    "                    it was sent, from the start of the window)\n";

/* A realistic orders/create body (docs: apis.md section 5), with the
 * per-request fields as placeholders. */
static const char default_body[] =
    "{\"id\":{{order_id}},\"admin_graphql_api_id\":\"gid://shopify/Order/"
    "{{order_id}}\",\"name\":\"#{{order_number}}\",\"order_number\":{{order_"
    "number}},\"email\":\"member{{customer_n}}@example.com\",\"contact_"
    "email\":\"member{{customer_n}}@example.com\",\"created_at\":\"2024-03-"
    "01T12:00:00-05:00\",\"updated_at\":\"2024-03-01T12:00:00-05:00\","
    "\"processed_at\":\"2024-03-01T12:00:00-05:00\",\"cancelled_at\":null,"
    "\"cancel_reason\":null,\"currency\":\"USD\",\"presentment_currency\":"
    "\"USD\",\"total_price\":\"404.95\",\"subtotal_price\":\"404.95\","
    "\"total_discounts\":\"20.00\",\"total_tax\":\"0.00\",\"total_line_items_"
    "price\":\"414.95\",\"current_total_price\":\"414.95\",\"total_price_"
    "set\":{\"shop_money\":{\"amount\":\"404.95\",\"currency_code\":\"USD\"},"
    "\"presentment_money\":{\"amount\":\"404.95\",\"currency_code\":\"USD\"}}"
    ",\"financial_status\":\"paid\",\"fulfillment_status\":null,\"discount_"
    "codes\":[{\"code\":\"TENOFF\",\"amount\":\"10.00\",\"type\":\"fixed_"
    "amount\"}],\"source_name\":\"web\",\"tags\":\"tag1, tag2\",\"test\":"
    "false,\"buyer_accepts_marketing\":true,\"customer_locale\":\"en\","
    "\"customer\":{\"id\":{{customer_id}},\"admin_graphql_api_id\":\"gid://"
    "shopify/Customer/{{customer_id}}\",\"email\":\"member{{customer_n}}@"
    "example.com\",\"first_name\":\"John\",\"last_name\":\"Smith\",\"phone\""
    ":null,\"state\":\"enabled\",\"verified_email\":true,\"tags\":\"\","
    "\"currency\":\"USD\",\"created_at\":\"2021-12-01T10:00:00-05:00\","
    "\"updated_at\":\"2024-03-01T12:00:00-05:00\"},\"line_items\":[{\"id\":"
    "487817672276298554,\"admin_graphql_api_id\":\"gid://shopify/LineItem/"
    "487817672276298554\",\"product_id\":788032119674292922,\"variant_id\":"
    "49148385,\"sku\":\"SKU2006-001\",\"title\":\"Aviator sunglasses\","
    "\"name\":\"Aviator sunglasses - Black\",\"variant_title\":\"Black\","
    "\"vendor\":\"Acme\",\"quantity\":1,\"current_quantity\":1,\"price\":"
    "\"89.99\",\"total_discount\":\"0.00\",\"gift_card\":false,\"product_"
    "exists\":true,\"discount_allocations\":[{\"amount\":\"9.00\","
    "\"discount_application_index\":0}]},{\"id\":976318377106520349,\"admin_"
    "graphql_api_id\":\"gid://shopify/LineItem/976318377106520349\","
    "\"product_id\":632910392,\"variant_id\":808950810,\"sku\":\"IPOD2008"
    "PINK\",\"title\":\"IPod Nano - 8GB\",\"name\":\"IPod Nano - 8GB - "
    "Pink\",\"variant_title\":\"Pink\",\"vendor\":\"Apple\",\"quantity\":2,"
    "\"current_quantity\":2,\"price\":\"162.48\",\"total_discount\":\"0.00\""
    ",\"gift_card\":false,\"product_exists\":true,\"discount_allocations\":["
    "{\"amount\":\"11.00\",\"discount_application_index\":0}]}],\"refunds\""
    ":[]}";

/* ---- the body template ---- */

enum field {
  FIELD_NONE,
  FIELD_ORDER_ID,
  FIELD_ORDER_NUMBER,
  FIELD_CUSTOMER_ID,
  FIELD_CUSTOMER_N,
  FIELD_SEQ
};

static const struct {
  const char *name;
  enum field field;
} field_names[] = {{"order_id", FIELD_ORDER_ID},
                   {"order_number", FIELD_ORDER_NUMBER},
                   {"customer_id", FIELD_CUSTOMER_ID},
                   {"customer_n", FIELD_CUSTOMER_N},
                   {"seq", FIELD_SEQ}};

/* Literal text followed by a field (FIELD_NONE for the last piece). */
struct piece {
  const char *text; /* borrowed from the template */
  size_t len;
  enum field field;
};

struct template {
  char *text; /* owned */
  struct piece *pieces;
  size_t n;
};

/* Splits text (copied) at its {{field}} placeholders; -1 with the name of
 * an unknown one. */
static int template_parse(struct template *t, const char *text, size_t len,
                          char *err, size_t errsize) {
  t->text = lp_xstrndup(text, len);
  t->pieces = NULL;
  t->n = 0;
  const char *p = t->text, *end = t->text + len;
  for (;;) {
    const char *open = strstr(p, "{{");
    t->pieces = lp_xrealloc(t->pieces, (t->n + 1) * sizeof(*t->pieces));
    struct piece *pc = &t->pieces[t->n++];
    pc->text = p;
    if (!open) {
      pc->len = (size_t)(end - p);
      pc->field = FIELD_NONE;
      return 0;
    }
    pc->len = (size_t)(open - p);
    const char *close = strstr(open, "}}");
    if (!close)
      return lp_err(err, errsize, "body template: '{{' at byte %td unclosed",
                    open - t->text);
    size_t nlen = (size_t)(close - open - 2);
    pc->field = FIELD_NONE;
    for (size_t i = 0; i < LP_ARRAY_LEN(field_names); i++)
      if (strlen(field_names[i].name) == nlen &&
          memcmp(field_names[i].name, open + 2, nlen) == 0)
        pc->field = field_names[i].field;
    if (pc->field == FIELD_NONE)
      return lp_err(err, errsize,
                    "body template: unknown placeholder '{{%.*s}}' at byte %td "
                    "(known: order_id, order_number, customer_id, customer_n, "
                    "seq)",
                    (int)nlen, open + 2, open - t->text);
    p = close + 2;
  }
}

static void template_free(struct template *t) {
  free(t->text);
  free(t->pieces);
}

/* ---- the run ---- */

struct options {
  char host[64];
  int port;
  char *path; /* owned */
  const char *secret;
  int connections;
  double duration_s, warmup_s, rate;
  const char *shop;
  const char *body_file;
  long customers;
  long timeout_ms;
  const char *check_topic;
  const char *bootstrap;
  const char *bootstrap_file;
  const char *samples_file;
};

enum conn_state {
  CONN_DOWN,
  CONN_CONNECTING,
  CONN_IDLE,
  CONN_WRITING,
  CONN_READING
};

struct conn {
  int fd;
  enum conn_state state;
  int want_out;        /* EPOLLOUT registered */
  struct lp_buf out;   /* the request being written */
  size_t out_off;      /* bytes of it written */
  struct lp_buf in;    /* the response read so far */
  size_t header_len;   /* 0 until the header is complete */
  size_t response_len; /* header plus body, once known */
  int status;          /* of the response being read */
  int close_after;     /* the server said Connection: close */
  int64_t started_ns;  /* first byte written */
  int64_t window_ns;   /* when it was issued: which window it counts in */
  int64_t retry_at_ns; /* CONN_DOWN: reconnect from then */
};

#define MAX_REASONS 8

struct counts {
  uint64_t requests, ok, non200, errors;
};

struct run {
  const struct options *o;
  struct template body;
  struct sockaddr_in addr;
  int epfd;
  struct conn *conns;
  /* Clock marks (CLOCK_MONOTONIC ns): warm-up from t_start, measured
   * window [t_measure, t_end). */
  int64_t t_start, t_measure, t_end, t_last_done;
  uint64_t seq;     /* requests built so far */
  uint64_t id_base; /* order ids: id_base + seq */
  char event_prefix[48];
  struct counts warm, measured;
  uint64_t by_status[600];
  int64_t *samples; /* latency of each measured 200, ns */
  int64_t *starts;  /* --samples-file: when each was sent, ns */
  size_t n_samples, cap_samples;
  /* Open loop: the next slot, and how many were sent late or never. */
  double interval_ns;
  uint64_t slots_taken;
  uint64_t late, unsent;
  int *idle; /* idle connection stack */
  int n_idle;
  int in_flight;
  int reasons_shown;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Shows the first few failure reasons; the counts say how many there were. */
static void reason(struct run *r, int conn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reason(struct run *r, int conn, const char *fmt, ...) {
  if (r->reasons_shown >= MAX_REASONS)
    return;
  if (++r->reasons_shown == MAX_REASONS) {
    fprintf(stderr, "webhook_load: (further failures only counted)\n");
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "webhook_load: connection %d: ", conn);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Which counters a request started at t belongs to (NULL: after the end). */
static struct counts *phase(struct run *r, int64_t t) {
  if (t < r->t_measure)
    return &r->warm;
  if (t < r->t_end)
    return &r->measured;
  return NULL;
}

static void watch(struct run *r, int i, int want_out) {
  struct conn *c = &r->conns[i];
  if (c->want_out == want_out)
    return;
  struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u),
                           .data.u32 = (uint32_t)i};
  if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
    perror("webhook_load: epoll_ctl");
    exit(1);
  }
  c->want_out = want_out;
}

static void conn_close(struct run *r, int i, int64_t retry_at) {
  struct conn *c = &r->conns[i];
  if (c->fd >= 0)
    close(c->fd); /* leaves the epoll set with it */
  c->fd = -1;
  c->state = CONN_DOWN;
  c->want_out = 0;
  c->retry_at_ns = retry_at;
}

static void conn_open(struct run *r, int i) {
  struct conn *c = &r->conns[i];
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("webhook_load: socket");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->fd = fd;
  c->want_out = 1;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                           .data.u32 = (uint32_t)i};
  if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    perror("webhook_load: epoll_ctl");
    exit(1);
  }
  if (connect(fd, (struct sockaddr *)&r->addr, sizeof(r->addr)) == 0 ||
      errno == EINPROGRESS) {
    c->state = CONN_CONNECTING; /* done when writable */
    return;
  }
  int64_t t = now_ns();
  struct counts *k = phase(r, t);
  if (k)
    k->errors++;
  reason(r, i, "connect: %s", strerror(errno));
  conn_close(r, i, t + 100000000);
}

static void append_u64(struct lp_buf *b, uint64_t v) {
  char digits[20];
  char *start = lp_u64_digits_back(digits + sizeof(digits), v);
  lp_buf_append(b, start, (size_t)(digits + sizeof(digits) - start));
}

/* Renders the next delivery (body, signature, headers) into c->out. */
static void build_request(struct run *r, struct conn *c, struct lp_buf *body) {
  const struct options *o = r->o;
  uint64_t seq = r->seq++;
  /* A prime stride spreads consecutive orders over the customers (and so
   * over the member-keyed partitions). */
  uint64_t customer_n = (seq * 7919) % (uint64_t)o->customers;
  lp_buf_reset(body);
  for (size_t i = 0; i < r->body.n; i++) {
    const struct piece *p = &r->body.pieces[i];
    lp_buf_append(body, p->text, p->len);
    switch (p->field) {
    case FIELD_ORDER_ID:
      append_u64(body, r->id_base + seq);
      break;
    case FIELD_ORDER_NUMBER:
      append_u64(body, 1000 + seq);
      break;
    case FIELD_CUSTOMER_ID:
      append_u64(body, 115310627314723954ULL + customer_n);
      break;
    case FIELD_CUSTOMER_N:
      append_u64(body, customer_n);
      break;
    case FIELD_SEQ:
      append_u64(body, seq);
      break;
    case FIELD_NONE:
      break;
    }
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  if (!HMAC(EVP_sha256(), o->secret, (int)strlen(o->secret), body->data,
            body->len, mac, &mac_len)) {
    fprintf(stderr, "webhook_load: HMAC-SHA256 failed\n");
    exit(1);
  }
  unsigned char sig[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  EVP_EncodeBlock(sig, mac, (int)mac_len);
  char when[32];
  lp_time_format_iso8601(lp_now_ms(), when, sizeof(when));
  lp_buf_reset(&c->out);
  lp_buf_appendf(&c->out,
                 "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                 "User-Agent: Shopify-Captain-Hook\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                 "X-Shopify-Topic: orders/create\r\n"
                 "X-Shopify-Hmac-Sha256: %s\r\n"
                 "X-Shopify-Shop-Domain: %s\r\n"
                 "X-Shopify-API-Version: 2025-01\r\n"
                 "X-Shopify-Webhook-Id: %s-w%" PRIu64 "\r\n"
                 "X-Shopify-Event-Id: %s-%" PRIu64 "\r\n"
                 "X-Shopify-Triggered-At: %s\r\n\r\n",
                 o->path, o->host, o->port, body->len, (const char *)sig,
                 o->shop, r->event_prefix, seq, r->event_prefix, seq, when);
  lp_buf_append(&c->out, body->data, body->len);
  c->out_off = 0;
}

static void write_more(struct run *r, int i);

static void send_request(struct run *r, int i, struct lp_buf *body) {
  struct conn *c = &r->conns[i];
  LP_ASSERT(c->state == CONN_IDLE);
  int64_t t = now_ns();
  if (t >= r->t_end) {
    /* Past the end (the answer that freed it came just before): a request
     * started now would belong to no window, yet be produced. */
    r->idle[r->n_idle++] = i;
    return;
  }
  build_request(r, c, body);
  lp_buf_reset(&c->in);
  c->header_len = c->response_len = 0;
  c->status = 0;
  c->close_after = 0;
  c->window_ns = t;
  c->started_ns = now_ns();
  c->state = CONN_WRITING;
  r->in_flight++;
  write_more(r, i);
}

/* A request that will not be answered: counted, the connection redialled. */
static void request_failed(struct run *r, int i, int64_t t) {
  struct conn *c = &r->conns[i];
  struct counts *k = phase(r, c->window_ns);
  if (k) {
    k->requests++;
    k->errors++;
  }
  r->in_flight--;
  conn_close(r, i, t + 10000000); /* 10 ms: no busy loop on a dead server */
}

static void write_more(struct run *r, int i) {
  struct conn *c = &r->conns[i];
  while (c->out_off < c->out.len) {
    ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
    if (n > 0) {
      c->out_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      watch(r, i, 1);
      return;
    }
    reason(r, i, "write: %s", n < 0 ? strerror(errno) : "nothing written");
    request_failed(r, i, now_ns());
    return;
  }
  watch(r, i, 0);
  c->state = CONN_READING;
}

/* Finds name's value in the header block (case-insensitive); NULL if
 * absent. The block is NUL-terminated. */
static const char *header_value(const char *block, const char *name,
                                size_t *len) {
  size_t nlen = strlen(name);
  const char *line = strstr(block, "\r\n");
  while (line && line[2] != '\r') {
    line += 2;
    if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
      const char *v = line + nlen + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      const char *e = strstr(v, "\r\n");
      *len = (size_t)(e - v);
      return v;
    }
    line = strstr(line, "\r\n");
  }
  return NULL;
}

/* Parses the status line and framing once the header is in; -1 with the
 * reason when the response is not one this client can read. */
static int parse_header(struct conn *c, char *why, size_t whysize) {
  const char *in = lp_buf_cstr(&c->in);
  const char *end = strstr(in, "\r\n\r\n");
  if (!end)
    return 0;
  c->header_len = (size_t)(end - in) + 4;
  char *block = lp_xstrndup(in, c->header_len);
  int rc = -1;
  int status = 0;
  if (strncmp(block, "HTTP/1.", 7) != 0 ||
      sscanf(block + 8, " %3d", &status) != 1 || status < 100 || status > 599) {
    snprintf(why, whysize, "not an HTTP/1.x status line: %.40s", block);
    goto out;
  }
  c->status = status;
  size_t len = 0;
  const char *v = header_value(block, "Transfer-Encoding", &len);
  if (v) {
    snprintf(why, whysize, "Transfer-Encoding %.*s: not supported here",
             (int)len, v);
    goto out;
  }
  v = header_value(block, "Content-Length", &len);
  char *num_end = NULL;
  unsigned long long clen = v ? strtoull(v, &num_end, 10) : 0;
  if (!v || num_end == v || clen > 16 * 1024 * 1024) {
    snprintf(why, whysize, "status %d without a usable Content-Length", status);
    goto out;
  }
  c->response_len = c->header_len + (size_t)clen;
  v = header_value(block, "Connection", &len);
  c->close_after = v && len == 5 && strncasecmp(v, "close", 5) == 0;
  if (strncmp(block, "HTTP/1.0", 8) == 0 &&
      !(v && len == 10 && strncasecmp(v, "keep-alive", 10) == 0))
    c->close_after = 1;
  rc = 0;
out:
  free(block);
  return rc;
}

static void response_done(struct run *r, int i, int64_t t,
                          struct lp_buf *body) {
  struct conn *c = &r->conns[i];
  struct counts *k = phase(r, c->window_ns);
  r->in_flight--;
  if (k) {
    k->requests++;
    if (c->status == 200) {
      k->ok++;
      if (k == &r->measured) {
        if (r->n_samples == r->cap_samples) {
          r->cap_samples = r->cap_samples ? 2 * r->cap_samples : 65536;
          r->samples =
              lp_xrealloc(r->samples, r->cap_samples * sizeof(*r->samples));
          if (r->o->samples_file)
            r->starts =
                lp_xrealloc(r->starts, r->cap_samples * sizeof(*r->starts));
        }
        if (r->o->samples_file)
          r->starts[r->n_samples] = c->started_ns - r->t_measure;
        r->samples[r->n_samples++] = t - c->started_ns;
        r->t_last_done = t;
      }
    } else {
      k->non200++;
      r->by_status[c->status]++;
      reason(r, i, "status %d: %.*s", c->status,
             (int)(c->in.len - c->header_len > 200 ? 200
                                                   : c->in.len - c->header_len),
             (const char *)c->in.data + c->header_len);
    }
  }
  if (c->in.len > c->response_len) {
    reason(r, i, "%zu bytes after the response", c->in.len - c->response_len);
    if (k)
      k->errors++;
    conn_close(r, i, t);
    return;
  }
  /* An answer before the request was all written leaves the stream
   * mid-request: start afresh. */
  if (c->close_after || c->state == CONN_WRITING) {
    conn_close(r, i, t);
    if (t < r->t_end)
      conn_open(r, i);
    return;
  }
  c->state = CONN_IDLE;
  if (r->o->rate > 0 || t >= r->t_end)
    r->idle[r->n_idle++] = i;
  else
    send_request(r, i, body);
}

static void read_more(struct run *r, int i, struct lp_buf *body) {
  struct conn *c = &r->conns[i];
  for (;;) {
    lp_buf_reserve(&c->in, 4096);
    ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1);
    if (n > 0) {
      c->in.len += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    /* End of stream or an error. */
    int64_t t = now_ns();
    if (c->state == CONN_IDLE || c->state == CONN_DOWN) {
      /* The server closed a keep-alive connection between requests. */
      if (c->state == CONN_IDLE)
        for (int j = 0; j < r->n_idle; j++)
          if (r->idle[j] == i)
            r->idle[j] = r->idle[--r->n_idle];
      conn_close(r, i, t);
      return;
    }
    reason(r, i, "%s after %zu response bytes",
           n == 0 ? "connection closed" : strerror(errno), c->in.len);
    request_failed(r, i, t);
    return;
  }
  if (c->state != CONN_READING && c->state != CONN_WRITING) {
    if (c->in.len) {
      reason(r, i, "%zu bytes while no request was in flight", c->in.len);
      struct counts *k = phase(r, now_ns());
      if (k)
        k->errors++;
      if (c->state == CONN_IDLE)
        for (int j = 0; j < r->n_idle; j++)
          if (r->idle[j] == i)
            r->idle[j] = r->idle[--r->n_idle];
      conn_close(r, i, now_ns());
    }
    return;
  }
  if (!c->header_len) {
    char why[160];
    if (parse_header(c, why, sizeof(why)) != 0) {
      reason(r, i, "%s", why);
      request_failed(r, i, now_ns());
      return;
    }
    if (!c->header_len)
      return;
  }
  if (c->in.len >= c->response_len)
    response_done(r, i, now_ns(), body);
}

/* Connecting finished: the connection is idle (closed loop: sends). */
static void connected(struct run *r, int i, struct lp_buf *body) {
  struct conn *c = &r->conns[i];
  int soerr = 0;
  socklen_t sl = sizeof(soerr);
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  int64_t t = now_ns();
  if (soerr) {
    reason(r, i, "connect: %s", strerror(soerr));
    struct counts *k = phase(r, t);
    if (k)
      k->errors++;
    conn_close(r, i, t + 100000000);
    return;
  }
  watch(r, i, 0);
  c->state = CONN_IDLE;
  if (r->o->rate > 0 || t >= r->t_end)
    r->idle[r->n_idle++] = i;
  else
    send_request(r, i, body);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, in ms. */
static double percentile_ms(const int64_t *s, size_t n, double p) {
  if (!n)
    return 0;
  size_t rank = (size_t)(p * (double)n + 0.999999999);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return (double)s[rank - 1] / 1e6;
}

/* ---- the topic check ---- */

/* The sum of the high watermarks of every partition of topic: the records
 * ever appended (the devbroker's producers are idempotent, not
 * transactional, so there are no control records). -1 with the reason. */
static int64_t topic_records(const char *bootstrap, const char *topic,
                             char *err, size_t errsize) {
  char kerr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, kerr,
                        sizeof(kerr)) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "log_level", "3", kerr, sizeof(kerr)) !=
          RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    lp_err(err, errsize, "kafka: %s", kerr);
    return -1;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    lp_err(err, errsize, "kafka: %s", kerr);
    return -1;
  }
  int64_t total = -1;
  rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
  if (e) {
    lp_err(err, errsize, "topic %s: metadata: %s", topic, rd_kafka_err2str(e));
    goto out;
  }
  if (md->topic_cnt != 1 || md->topics[0].err ||
      md->topics[0].partition_cnt == 0) {
    lp_err(err, errsize, "topic %s: %s", topic,
           md->topic_cnt != 1  ? "not in the metadata"
           : md->topics[0].err ? rd_kafka_err2str(md->topics[0].err)
                               : "no partitions");
    goto out;
  }
  int64_t sum = 0;
  for (int p = 0; p < md->topics[0].partition_cnt; p++) {
    int64_t lo = 0, hi = 0;
    int32_t id = md->topics[0].partitions[p].id;
    e = rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, 10000);
    if (e) {
      lp_err(err, errsize, "topic %s partition %d: watermarks: %s", topic,
             (int)id, rd_kafka_err2str(e));
      goto out;
    }
    sum += hi;
  }
  total = sum;
out:
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  rd_kafka_destroy(rk);
  return total;
}

/* ---- options ---- */

static int parse_url(struct options *o, const char *url, char *err,
                     size_t errsize) {
  if (strncmp(url, "http://", 7) != 0)
    return lp_err(err, errsize, "--url %s: only http:// URLs", url);
  const char *hp = url + 7;
  const char *slash = strchr(hp, '/');
  size_t hplen = slash ? (size_t)(slash - hp) : strlen(hp);
  char spec[96];
  if (hplen == 0 || hplen >= sizeof(spec))
    return lp_err(err, errsize, "--url %s: no host:port", url);
  memcpy(spec, hp, hplen);
  spec[hplen] = '\0';
  if (lp_host_port_parse(spec, o->host, sizeof(o->host), &o->port) != 0)
    return lp_err(err, errsize, "--url %s: host:port expected, got '%s'", url,
                  spec);
  if (strcmp(o->host, "localhost") == 0)
    lp_strlcpy(o->host, "127.0.0.1", sizeof(o->host));
  struct in_addr a;
  if (inet_pton(AF_INET, o->host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
    return lp_err(err, errsize,
                  "--url %s: the host must be a 127.0.0.0/8 address", url);
  o->path = lp_xstrdup(slash ? slash : "/");
  return 0;
}

static int parse_number(const char *opt, const char *s, double lo, double hi,
                        double *out, char *err, size_t errsize) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi))
    return lp_err(err, errsize, "%s '%s': a number in %g..%g expected", opt, s,
                  lo, hi);
  *out = v;
  return 0;
}

static int parse_options(struct options *o, int argc, char **argv, char *err,
                         size_t errsize) {
  static const struct option longs[] = {
      {"url", required_argument, NULL, 'u'},
      {"secret", required_argument, NULL, 's'},
      {"connections", required_argument, NULL, 'c'},
      {"duration-s", required_argument, NULL, 'd'},
      {"warmup-s", required_argument, NULL, 'w'},
      {"rate", required_argument, NULL, 'r'},
      {"shop", required_argument, NULL, 'S'},
      {"body-file", required_argument, NULL, 'B'},
      {"customers", required_argument, NULL, 'C'},
      {"timeout-ms", required_argument, NULL, 't'},
      {"check-topic", required_argument, NULL, 'T'},
      {"bootstrap", required_argument, NULL, 'b'},
      {"bootstrap-file", required_argument, NULL, 'f'},
      {"samples-file", required_argument, NULL, 'L'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof(*o));
  o->warmup_s = 1;
  o->shop = "load-shop.myshopify.com";
  o->customers = 10000;
  o->timeout_ms = 10000;
  const char *url = NULL;
  double v;
  int opt;
  while ((opt = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
    switch (opt) {
    case 'u':
      url = optarg;
      break;
    case 's':
      o->secret = optarg;
      break;
    case 'c':
      if (parse_number("--connections", optarg, 1, 10000, &v, err, errsize))
        return -1;
      o->connections = (int)v;
      break;
    case 'd':
      if (parse_number("--duration-s", optarg, 0.01, 86400, &o->duration_s, err,
                       errsize))
        return -1;
      break;
    case 'w':
      if (parse_number("--warmup-s", optarg, 0, 3600, &o->warmup_s, err,
                       errsize))
        return -1;
      break;
    case 'r':
      if (parse_number("--rate", optarg, 1, 1e7, &o->rate, err, errsize))
        return -1;
      break;
    case 'S':
      o->shop = optarg;
      break;
    case 'B':
      o->body_file = optarg;
      break;
    case 'C':
      if (parse_number("--customers", optarg, 1, 1e9, &v, err, errsize))
        return -1;
      o->customers = (long)v;
      break;
    case 't':
      if (parse_number("--timeout-ms", optarg, 1, 3600000, &v, err, errsize))
        return -1;
      o->timeout_ms = (long)v;
      break;
    case 'T':
      o->check_topic = optarg;
      break;
    case 'b':
      o->bootstrap = optarg;
      break;
    case 'f':
      o->bootstrap_file = optarg;
      break;
    case 'L':
      o->samples_file = optarg;
      break;
    case 'h':
      fputs(usage, stdout);
      exit(0);
    default:
      return lp_err(err, errsize, "unknown option (see --help)");
    }
  }
  if (optind < argc)
    return lp_err(err, errsize, "unexpected argument '%s'", argv[optind]);
  if (!url || !o->secret || !*o->secret || !o->connections || !o->duration_s)
    return lp_err(err, errsize,
                  "--url, --secret, --connections and "
                  "--duration-s are required");
  if (strpbrk(o->shop, "\r\n"))
    return lp_err(err, errsize, "--shop: no line breaks in a header value");
  if (o->check_topic && !o->bootstrap && !o->bootstrap_file)
    return lp_err(err, errsize,
                  "--check-topic needs --bootstrap or --bootstrap-file");
  return parse_url(o, url, err, errsize);
}

/* Reads the whole file into a new buffer (caller frees); -1 with the
 * reason. */
static int read_file(const char *path, struct lp_buf *out, char *err,
                     size_t errsize) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return lp_err(err, errsize, "%s: %s", path, strerror(errno));
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    lp_buf_append(out, chunk, n);
  int bad = ferror(f);
  fclose(f);
  if (bad)
    return lp_err(err, errsize, "%s: read error", path);
  if (memchr(out->data, '\0', out->len))
    return lp_err(err, errsize, "%s: contains a NUL byte", path);
  return 0;
}

/* The bootstrap servers for the check: --bootstrap, else the first line of
 * --bootstrap-file. Caller frees. */
static char *bootstrap_servers(const struct options *o, char *err,
                               size_t errsize) {
  if (o->bootstrap)
    return lp_xstrdup(o->bootstrap);
  struct lp_buf b;
  lp_buf_init(&b);
  if (read_file(o->bootstrap_file, &b, err, errsize) != 0) {
    lp_buf_free(&b);
    return NULL;
  }
  const char *s = lp_buf_cstr(&b);
  char *line = lp_xstrndup(s, strcspn(s, "\r\n"));
  lp_buf_free(&b);
  if (!*line) {
    free(line);
    lp_err(err, errsize, "%s: empty", o->bootstrap_file);
    return NULL;
  }
  return line;
}

/* --samples-file: one line per measured 200, in the order answered. */
static int write_samples(const struct run *r, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "webhook_load: --samples-file %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  for (size_t i = 0; i < r->n_samples; i++)
    fprintf(f, "%.3f %.3f\n", (double)r->starts[i] / 1e6,
            (double)r->samples[i] / 1e6);
  if (fclose(f) != 0) {
    fprintf(stderr, "webhook_load: --samples-file %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  return 0;
}

/* ---- main loop ---- */

static void run_loop(struct run *r) {
  const struct options *o = r->o;
  struct lp_buf body;
  lp_buf_init(&body);
  struct epoll_event events[256];
  int64_t drain_until = 0;
  int64_t next_sweep = 0;
  for (;;) {
    int64_t t = now_ns();
    if (t >= r->t_end) {
      /* No new requests; the ones in flight are waited for. */
      if (!drain_until)
        drain_until = t + o->timeout_ms * 1000000LL;
      if (r->in_flight == 0)
        break;
      if (t >= drain_until) {
        for (int i = 0; i < o->connections; i++)
          if (r->conns[i].state == CONN_WRITING ||
              r->conns[i].state == CONN_READING) {
            reason(r, i, "no answer within --timeout-ms after the end");
            request_failed(r, i, t);
          }
        break;
      }
    }
    if (t >= next_sweep) {
      /* Every 10 ms: redial, and fail requests past their timeout. */
      next_sweep = t + 10000000;
      for (int i = 0; i < o->connections; i++) {
        struct conn *c = &r->conns[i];
        if (c->state == CONN_DOWN && t < r->t_end && t >= c->retry_at_ns)
          conn_open(r, i);
        else if ((c->state == CONN_WRITING || c->state == CONN_READING) &&
                 t - c->started_ns > o->timeout_ms * 1000000LL) {
          reason(r, i, "no answer within %ld ms", o->timeout_ms);
          request_failed(r, i, t);
        }
      }
    }
    int wait_ms = 10;
    if (o->rate > 0 && t < r->t_end) {
      /* Open loop: every slot that is due goes out on a free connection;
       * a slot with none free waits for one (and counts as late). */
      while (r->n_idle > 0) {
        int64_t due =
            r->t_start + (int64_t)((double)r->slots_taken * r->interval_ns);
        if (due > t)
          break;
        if (t - due > 1000000)
          r->late++;
        r->slots_taken++;
        send_request(r, r->idle[--r->n_idle], &body);
      }
      int64_t due =
          r->t_start + (int64_t)((double)r->slots_taken * r->interval_ns);
      if (r->n_idle > 0) {
        int64_t ms = (due - t + 999999) / 1000000;
        wait_ms = ms < wait_ms ? (int)ms : wait_ms;
      }
    }
    if (t < r->t_end) {
      int64_t ms = (r->t_end - t + 999999) / 1000000;
      if (ms < wait_ms)
        wait_ms = (int)ms;
    }
    int n = epoll_wait(r->epfd, events, LP_ARRAY_LEN(events), wait_ms);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      perror("webhook_load: epoll_wait");
      exit(1);
    }
    for (int k = 0; k < n; k++) {
      int i = (int)events[k].data.u32;
      struct conn *c = &r->conns[i];
      if (c->fd < 0)
        continue; /* closed by an earlier event of this batch */
      uint32_t ev = events[k].events;
      if (c->state == CONN_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
          connected(r, i, &body);
        continue;
      }
      if ((ev & EPOLLOUT) && c->state == CONN_WRITING)
        write_more(r, i);
      if (c->fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        read_more(r, i, &body);
    }
  }
  if (o->rate > 0) {
    /* Slots that came due in the window but never found a connection. */
    int64_t slots = (int64_t)((double)(r->t_end - r->t_start) / r->interval_ns);
    if (slots > (int64_t)r->slots_taken)
      r->unsent = (uint64_t)slots - r->slots_taken;
  }
  lp_buf_free(&body);
}

int main(int argc, char **argv) {
  struct options o;
  char err[512];
  if (parse_options(&o, argc, argv, err, sizeof(err)) != 0) {
    fprintf(stderr, "webhook_load: %s (see --help)\n", err);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct run r;
  memset(&r, 0, sizeof(r));
  r.o = &o;
  int status = 1;
  char *bootstrap = NULL;
  struct lp_buf file;
  lp_buf_init(&file);
  if (o.body_file) {
    if (read_file(o.body_file, &file, err, sizeof(err)) != 0) {
      fprintf(stderr, "webhook_load: --body-file %s\n", err);
      lp_buf_free(&file);
      free(o.path);
      return 2;
    }
  } else {
    lp_buf_append_str(&file, default_body);
  }
  if (template_parse(&r.body, lp_buf_cstr(&file), file.len, err, sizeof(err)) !=
      0) {
    fprintf(stderr, "webhook_load: %s%s%s\n", o.body_file ? o.body_file : "",
            o.body_file ? ": " : "", err);
    lp_buf_free(&file);
    template_free(&r.body);
    free(o.path);
    return 2;
  }
  lp_buf_free(&file);
  int64_t before = 0;
  if (o.check_topic) {
    bootstrap = bootstrap_servers(&o, err, sizeof(err));
    if (!bootstrap || (before = topic_records(bootstrap, o.check_topic, err,
                                              sizeof(err))) < 0) {
      fprintf(stderr, "webhook_load: --check-topic: %s\n", err);
      goto out;
    }
  }
  r.addr.sin_family = AF_INET;
  r.addr.sin_port = htons((uint16_t)o.port);
  inet_pton(AF_INET, o.host, &r.addr.sin_addr);
  r.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (r.epfd < 0) {
    perror("webhook_load: epoll_create1");
    goto out;
  }
  /* Ids unique across runs: seconds since the epoch and the pid. */
  int64_t wall_ms = lp_now_ms();
  r.id_base = (uint64_t)(wall_ms / 1000) * 100000000ULL;
  snprintf(r.event_prefix, sizeof(r.event_prefix), "load-%" PRIx64 "-%x",
           (uint64_t)wall_ms, (unsigned)getpid());
  r.conns = lp_xcalloc((size_t)o.connections, sizeof(*r.conns));
  r.idle = lp_xcalloc((size_t)o.connections, sizeof(*r.idle));
  if (o.rate > 0)
    r.interval_ns = 1e9 / o.rate;
  r.t_start = now_ns();
  r.t_measure = r.t_start + (int64_t)(o.warmup_s * 1e9);
  r.t_end = r.t_measure + (int64_t)(o.duration_s * 1e9);
  for (int i = 0; i < o.connections; i++) {
    r.conns[i].fd = -1;
    lp_buf_init(&r.conns[i].out);
    lp_buf_init(&r.conns[i].in);
    conn_open(&r, i);
  }
  run_loop(&r);
  for (int i = 0; i < o.connections; i++) {
    if (r.conns[i].fd >= 0)
      close(r.conns[i].fd);
    lp_buf_free(&r.conns[i].out);
    lp_buf_free(&r.conns[i].in);
  }
  close(r.epfd);

  if (o.samples_file && write_samples(&r, o.samples_file) != 0)
    goto out;
  if (r.n_samples)
    qsort(r.samples, r.n_samples, sizeof(*r.samples), cmp_i64);
  int64_t span =
      (r.t_last_done > r.t_measure ? r.t_last_done : r.t_end) - r.t_measure;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  printf("requests=%" PRIu64 " ok=%" PRIu64 " non200=%" PRIu64
         " errors=%" PRIu64 " rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
         "max_ms=%.3f warmup_requests=%" PRIu64 " warmup_ok=%" PRIu64
         " warmup_bad=%" PRIu64 " gen_cpu_s=%.3f",
         r.measured.requests, r.measured.ok, r.measured.non200,
         r.measured.errors, (double)r.measured.ok / ((double)span / 1e9),
         percentile_ms(r.samples, r.n_samples, 0.50),
         percentile_ms(r.samples, r.n_samples, 0.90),
         percentile_ms(r.samples, r.n_samples, 0.99),
         r.n_samples ? (double)r.samples[r.n_samples - 1] / 1e6 : 0.0,
         r.warm.requests, r.warm.ok, r.warm.non200 + r.warm.errors, cpu);
  if (o.rate > 0)
    printf(" late=%" PRIu64 " unsent=%" PRIu64, r.late, r.unsent);
  for (int s = 100; s < 600; s++)
    if (r.by_status[s])
      fprintf(stderr, "webhook_load: status %d: %" PRIu64 " answers\n", s,
              r.by_status[s]);
  status = 0;
  if (r.warm.ok + r.measured.ok == 0) {
    fprintf(stderr, "webhook_load: FAIL: no request was answered 200\n");
    status = 1;
  }
  if (o.check_topic) {
    int64_t after = topic_records(bootstrap, o.check_topic, err, sizeof(err));
    if (after < 0) {
      printf("\n");
      fprintf(stderr, "webhook_load: --check-topic: %s\n", err);
      status = 1;
      goto out;
    }
    uint64_t oks = r.warm.ok + r.measured.ok;
    printf(" topic_records=%" PRId64, after - before);
    if ((uint64_t)(after - before) != oks) {
      fprintf(stderr,
              "webhook_load: FAIL: topic %s gained %" PRId64
              " records, but %" PRIu64 " deliveries were answered 200\n",
              o.check_topic, after - before, oks);
      status = 1;
    }
  }
  printf("\n");
out:
  fflush(stdout);
  free(bootstrap);
  free(r.conns);
  free(r.idle);
  free(r.samples);
  free(r.starts);
  template_free(&r.body);
  free(o.path);
  return status;
}
