/*
 * import_source_csv.c — a purchase-history file as an import source.
 *
 * Formats:
 *   cdnow  the CDNOW layout (shared/datasets/README.md): whitespace
 *          separated "customer [sample_id] YYYYMMDD cds amount", CRLF,
 *          optional header line. Events are the ones `loyaltyctl cdnow`
 *          produces (common/shop_generator.h): order id and event id
 *          "cdnow-<n>", n the data row number (blank lines and the header
 *          not counted), so for a clean file the two commands dedupe
 *          against each other.
 *   csv    a header line naming the columns customer, date, amount and
 *          optionally order_id and currency (any order; other columns are
 *          ignored), then one order per line, RFC 4180 quoting within a
 *          line. date is YYYY-MM-DD (12:00 UTC that day) or RFC 3339;
 *          amount a decimal (at most 6 decimals, >= 0). order id = the
 *          order_id column, else "csv-<line number>"; event id
 *          "csv:<shop>:<order id>".
 * Either way an order is one "created" event with one line item (quantity
 * = CDs for cdnow, else 1; unit price = amount / quantity).
 *
 * The cursor is "<byte offset>:<line number>:<data rows>" of the next line
 * to read: a page is rows_per_page data rows. A malformed row is reported
 * with its line number and the reason, counted and skipped; reading goes
 * on. Row numbers count good and bad rows alike, so ids stay stable when a
 * bad row is fixed and the file re-imported.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import_internal.h"
#include "util.h"

#define CSV_MAX_LINE (1024 * 1024)
#define CSV_MAX_FIELDS 64

struct csv_source {
  struct imp_source base; /* first: the driver holds this */
  FILE *f;
  char *path;
  char *shop;
  char *currency;
  int cdnow;
  long rows_per_page;
  long long size;
  /* csv header: column index of each field, -1 when absent */
  int col_customer, col_date, col_amount, col_order_id, col_currency;
  int n_cols;
  long long data_start; /* byte offset after the header */
  char *line;
  size_t cap;
};

static void csv_destroy(struct imp_source *s) {
  struct csv_source *cs = (struct csv_source *)s;
  if (cs->f)
    fclose(cs->f);
  free(cs->path);
  free(cs->shop);
  free(cs->currency);
  free(cs->line);
}

/* Splits one line in place into fields (RFC 4180 quoting, no newline in a
 * quoted field); unquoted fields are trimmed. -1 with why. */
static int split_csv(char *line, char **fields, int *n, char *why,
                     size_t why_size) {
  char *p = line;
  *n = 0;
  for (;;) {
    if (*n >= CSV_MAX_FIELDS)
      return lp_err(why, why_size, "more than %d columns", CSV_MAX_FIELDS);
    while (*p == ' ' || *p == '\t')
      p++;
    char *out = p, *start = p;
    if (*p == '"') {
      start = out = ++p;
      for (;;) {
        if (*p == '\0')
          return lp_err(why, why_size, "column %d: unterminated quote", *n + 1);
        if (*p == '"') {
          if (p[1] == '"') {
            *out++ = '"';
            p += 2;
            continue;
          }
          p++;
          break;
        }
        *out++ = *p++;
      }
      while (*p == ' ' || *p == '\t')
        p++;
      if (*p != ',' && *p != '\0')
        return lp_err(why, why_size, "column %d: text after the closing quote",
                      *n + 1);
    } else {
      while (*p && *p != ',') {
        if (*p == '"')
          return lp_err(why, why_size, "column %d: stray quote", *n + 1);
        p++;
      }
      out = p;
      while (out > start && (out[-1] == ' ' || out[-1] == '\t'))
        out--;
    }
    char sep = *p;
    *out = '\0';
    fields[(*n)++] = start;
    if (sep == '\0')
      return 0;
    p++;
  }
}

/* "YYYY-MM-DD" (12:00 UTC) or RFC 3339 -> epoch ms. */
static int parse_date(const char *s, int64_t *ms) {
  size_t len = strlen(s);
  if (len == 10 && s[4] == '-' && s[7] == '-') {
    char iso[32];
    snprintf(iso, sizeof(iso), "%sT12:00:00Z", s);
    return lp_time_parse_iso8601(iso, ms);
  }
  if (len < 20)
    return -1;
  return lp_time_parse_iso8601(s, ms);
}

/* One line item of the whole amount. */
static void one_item(struct lp_order_event *e, const char *category,
                     const char *brand, long quantity, int64_t micros) {
  e->line_items = lp_xcalloc(1, sizeof(*e->line_items));
  e->n_line_items = 1;
  e->line_items[0].category = lp_xstrdup(category);
  e->line_items[0].brand = lp_xstrdup(brand);
  e->line_items[0].quantity = (int32_t)quantity;
  e->line_items[0].unit_price_micros = micros / quantity;
}

static int map_cdnow(struct csv_source *cs, char *line, long long row,
                     struct lp_order_event *e, char *why, size_t why_size) {
  char *tok[6], *save = NULL;
  int n = 0;
  for (char *t = strtok_r(line, " \t", &save); t;
       t = strtok_r(NULL, " \t", &save)) {
    if (n == 6)
      return lp_err(why, why_size, "expected 4 or 5 columns, got more");
    tok[n++] = t;
  }
  if (n != 4 && n != 5)
    return lp_err(why, why_size, "expected 4 or 5 columns, got %d", n);
  const char *date = tok[n - 3], *cds = tok[n - 2], *value = tok[n - 1];
  char iso[32];
  int64_t t, micros;
  int digits = strlen(date) == 8;
  for (int i = 0; digits && i < 8; i++)
    digits = date[i] >= '0' && date[i] <= '9';
  if (!digits)
    return lp_err(why, why_size, "date: expected YYYYMMDD, got \"%.40s\"",
                  date);
  snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2sT00:00:00Z", date, date + 4,
           date + 6);
  if (lp_time_parse_iso8601(iso, &t) != 0)
    return lp_err(why, why_size, "date: not a calendar date: \"%s\"", date);
  char *end;
  errno = 0;
  long q = strtol(cds, &end, 10);
  if (*end || errno || q < 1 || q > LP_MAX_QUANTITY)
    return lp_err(why, why_size, "cds: expected a count 1..%d, got \"%.40s\"",
                  LP_MAX_QUANTITY, cds);
  if (lp_money_parse(value, &micros) != 0 || micros < 0)
    return lp_err(why, why_size,
                  "amount: expected a decimal >= 0, got \"%.40s\"", value);
  e->event_id = lp_xasprintf("cdnow-%lld", row);
  e->order_id = lp_xasprintf("cdnow-%lld", row);
  e->shop = lp_xstrdup(cs->shop);
  e->customer_id = lp_xstrdup(tok[0]);
  /* As common/shop_generator.c: noon UTC plus the row in seconds. */
  e->event_time_ms = t + 12 * 3600000LL + (row % 43200) * 1000;
  e->status = LP_ORDER_CREATED;
  e->currency = lp_xstrdup("USD");
  e->total_micros = micros;
  e->subtotal_micros = micros;
  one_item(e, "music", "cdnow", q, micros);
  e->source = lp_xstrdup("cdnow");
  return 0;
}

static int map_csv(struct csv_source *cs, char *line, long lineno,
                   struct lp_order_event *e, char *why, size_t why_size) {
  char *f[CSV_MAX_FIELDS];
  int n;
  if (split_csv(line, f, &n, why, why_size) != 0)
    return -1;
  if (n != cs->n_cols)
    return lp_err(why, why_size, "expected %d columns (as the header), got %d",
                  cs->n_cols, n);
  const char *customer = f[cs->col_customer], *date = f[cs->col_date],
             *amount = f[cs->col_amount];
  const char *order_id = cs->col_order_id >= 0 ? f[cs->col_order_id] : "";
  const char *currency = cs->col_currency >= 0 && f[cs->col_currency][0]
                             ? f[cs->col_currency]
                             : cs->currency;
  int64_t t, micros;
  if (!customer[0])
    return lp_err(why, why_size, "customer: empty");
  if (parse_date(date, &t) != 0)
    return lp_err(why, why_size,
                  "date: expected YYYY-MM-DD or RFC 3339, got \"%.40s\"", date);
  if (lp_money_parse(amount, &micros) != 0)
    return lp_err(why, why_size, "amount: expected a decimal, got \"%.40s\"",
                  amount);
  if (micros < 0)
    return lp_err(why, why_size, "amount: negative (\"%.40s\")", amount);
  e->order_id =
      order_id[0] ? lp_xstrdup(order_id) : lp_xasprintf("csv-%ld", lineno);
  e->event_id = lp_xasprintf("csv:%s:%s", cs->shop, e->order_id);
  e->shop = lp_xstrdup(cs->shop);
  e->customer_id = lp_xstrdup(customer);
  e->event_time_ms = t;
  e->status = LP_ORDER_CREATED;
  e->currency = lp_xstrdup(currency);
  e->total_micros = micros;
  e->subtotal_micros = micros;
  e->line_items = lp_xcalloc(1, sizeof(*e->line_items));
  e->n_line_items = 1;
  e->line_items[0].quantity = 1;
  e->line_items[0].unit_price_micros = micros;
  e->source = lp_xstrdup("import");
  return 0;
}

static int parse_cursor(const char *cursor, long long *offset, long *lineno,
                        long long *row) {
  char tail;
  return sscanf(cursor, "%lld:%ld:%lld%c", offset, lineno, row, &tail) == 3 &&
                 *offset >= 0 && *lineno >= 0 && *row >= 0
             ? 0
             : -1;
}

static int csv_fetch(struct imp_source *s, const char *cursor,
                     struct imp_page *page, char *errstr, size_t errstr_size) {
  struct csv_source *cs = (struct csv_source *)s;
  long long offset, row;
  long lineno;
  if (parse_cursor(cursor, &offset, &lineno, &row) != 0)
    return lp_err(errstr, errstr_size,
                  "csv cursor: expected OFFSET:LINE:ROW, got \"%.60s\"",
                  cursor);
  if (offset > cs->size)
    return lp_err(errstr, errstr_size,
                  "%s: the checkpoint is at byte %lld but the file has %lld: "
                  "was it replaced?",
                  cs->path, offset, cs->size);
  if (fseeko(cs->f, (off_t)offset, SEEK_SET) != 0)
    return lp_err(errstr, errstr_size, "%s: seek: %s", cs->path,
                  strerror(errno));
  char why[512];
  int eof = 0;
  while (page->items < cs->rows_per_page) {
    errno = 0;
    ssize_t n = getline(&cs->line, &cs->cap, cs->f);
    if (n < 0) {
      if (ferror(cs->f))
        return lp_err(errstr, errstr_size, "%s: read: %s", cs->path,
                      strerror(errno));
      eof = 1;
      break;
    }
    offset += n;
    lineno++;
    if ((size_t)n != strlen(cs->line)) {
      row++;
      page->items++;
      page->bad++;
      imp_report_bad("%s:%ld: NUL byte in the line", cs->path, lineno);
      continue;
    }
    while (n > 0 && (cs->line[n - 1] == '\n' || cs->line[n - 1] == '\r'))
      cs->line[--n] = '\0';
    size_t blank = strspn(cs->line, " \t");
    if ((ssize_t)blank == n)
      continue;
    if (cs->cdnow && lineno == 1 &&
        strncmp(cs->line + blank, "customer_id", 11) == 0)
      continue; /* CDNOW_master.txt's header */
    row++;
    page->items++;
    if (n > CSV_MAX_LINE) {
      page->bad++;
      imp_report_bad("%s:%ld: line longer than %d bytes", cs->path, lineno,
                     CSV_MAX_LINE);
      continue;
    }
    struct imp_record *r = imp_page_add(page);
    int rc = cs->cdnow
                 ? map_cdnow(cs, cs->line, row, &r->order, why, sizeof(why))
                 : map_csv(cs, cs->line, lineno, &r->order, why, sizeof(why));
    if (rc == 0 && lp_order_event_validate(&r->order, why, sizeof(why)) != 0)
      rc = -1;
    if (rc != 0) {
      imp_page_drop_last(page);
      page->bad++;
      imp_report_bad("%s:%ld: %s", cs->path, lineno, why);
    }
  }
  page->position = offset;
  page->position_is_absolute = 1;
  if (!eof) {
    /* A full page: is anything left? (A file ending exactly here needs no
     * empty last page.) */
    int c = fgetc(cs->f);
    eof = c == EOF;
  }
  if (!eof)
    page->next = lp_xasprintf("%lld:%ld:%lld", offset, lineno, row);
  return 0;
}

static void csv_estimate(struct imp_source *s, const char *cursor) {
  struct csv_source *cs = (struct csv_source *)s;
  long long offset, row;
  long lineno;
  s->stats->total = cs->size;
  if (parse_cursor(cursor, &offset, &lineno, &row) == 0)
    s->stats->done = offset;
}

/* Reads the csv header: column positions, required ones present. */
static int read_header(struct csv_source *cs, char *errstr,
                       size_t errstr_size) {
  ssize_t n = getline(&cs->line, &cs->cap, cs->f);
  if (n <= 0)
    return lp_err(errstr, errstr_size,
                  "%s:1: expected a header (customer,date,amount[,order_id])",
                  cs->path);
  cs->data_start = n;
  while (n > 0 && (cs->line[n - 1] == '\n' || cs->line[n - 1] == '\r'))
    cs->line[--n] = '\0';
  char *f[CSV_MAX_FIELDS], why[256];
  int nf;
  if ((size_t)n != strlen(cs->line) ||
      split_csv(cs->line, f, &nf, why, sizeof(why)) != 0)
    return lp_err(errstr, errstr_size, "%s:1: header: %s", cs->path,
                  (size_t)n != strlen(cs->line) ? "NUL byte" : why);
  cs->col_customer = cs->col_date = cs->col_amount = cs->col_order_id =
      cs->col_currency = -1;
  struct {
    const char *name;
    int *col;
  } cols[] = {{"customer", &cs->col_customer},
              {"date", &cs->col_date},
              {"amount", &cs->col_amount},
              {"order_id", &cs->col_order_id},
              {"currency", &cs->col_currency}};
  for (int i = 0; i < nf; i++)
    for (size_t c = 0; c < LP_ARRAY_LEN(cols); c++)
      if (strcasecmp(f[i], cols[c].name) == 0) {
        if (*cols[c].col >= 0)
          return lp_err(errstr, errstr_size, "%s:1: header: column %s twice",
                        cs->path, cols[c].name);
        *cols[c].col = i;
      }
  for (size_t c = 0; c < 3; c++)
    if (*cols[c].col < 0)
      return lp_err(errstr, errstr_size,
                    "%s:1: header: no \"%s\" column (expected "
                    "customer,date,amount[,order_id][,currency])",
                    cs->path, cols[c].name);
  cs->n_cols = nf;
  return 0;
}

struct imp_source *imp_csv_new(const struct imp_options *o,
                               struct imp_stats *st, char *errstr,
                               size_t errstr_size) {
  if (!o->file || !o->shop) {
    lp_err(errstr, errstr_size, "import csv: --file and --shop are required");
    return NULL;
  }
  const char *format = o->format ? o->format : "csv";
  if (strcmp(format, "csv") && strcmp(format, "cdnow")) {
    lp_err(errstr, errstr_size, "import csv: --format cdnow|csv, got %s",
           format);
    return NULL;
  }
  FILE *f = fopen(o->file, "r");
  if (!f) {
    lp_err(errstr, errstr_size, "%s: %s", o->file, strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    lp_err(errstr, errstr_size, "%s: not a regular file", o->file);
    fclose(f);
    return NULL;
  }
  struct csv_source *cs = lp_xcalloc(1, sizeof(*cs));
  cs->f = f;
  cs->path = lp_xstrdup(o->file);
  cs->shop = lp_xstrdup(o->shop);
  cs->currency = lp_xstrdup(o->currency ? o->currency : "USD");
  cs->cdnow = strcmp(format, "cdnow") == 0;
  cs->rows_per_page = o->rows_per_page > 0 ? o->rows_per_page : 1000;
  cs->size = (long long)sb.st_size;
  cs->base.kind = "csv";
  cs->base.fetch = csv_fetch;
  cs->base.estimate = csv_estimate;
  cs->base.destroy = csv_destroy;
  cs->base.stats = st;
  if (!cs->cdnow && read_header(cs, errstr, errstr_size) != 0) {
    struct imp_source *s = &cs->base;
    imp_source_destroy(&s);
    return NULL;
  }
  cs->base.first_cursor =
      lp_xasprintf("%lld:%d:0", cs->data_start, cs->cdnow ? 0 : 1);
  char real[PATH_MAX];
  cs->base.identity = lp_xasprintf(
      "csv format=%s file=%s shop=%s currency=%s", format,
      realpath(o->file, real) ? real : o->file, o->shop, cs->currency);
  return &cs->base;
}
