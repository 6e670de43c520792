/*
 * profile_apply.h — the pure part of profile updates: how an order or
 * customer event changes a member's stored state, and the text format that
 * state is stored in. No I/O: profile_store.c reads the state from Redis,
 * calls these, and writes the result back with a compare-and-set.
 *
 * Stored state is text, one "key<TAB>value" line per field, fields in a
 * fixed order (affinities sorted by name), so equal states are equal bytes
 * and a replay into a fresh namespace produces identical keys. In names
 * and values '\\', TAB and newline are escaped as \\\\, \\t, \\n; a
 * multi-valued field (tags) separates its values with a raw TAB.
 *
 *   order part (written only by order events):
 *     spend, orders (counted now: cancellations and full refunds take one
 *     back), first, last, placed (orders ever counted, never taken back;
 *     absent in parts written before it existed = orders), days
 *     (distinct UTC days with a counted order: an order adds a day unless
 *     it falls on the day of the first or the last order so far, exact
 *     when a member's orders arrive in time order; absent = placed), then
 *     c:<category> and b:<brand> spend
 *   customer part (written only by customer events):
 *     cu (event time of the newest applied customer event), consent, tags,
 *     birthday, email, created
 *   order record (what one order added, so it can be reversed exactly):
 *     s (spend still attributed), x (1 = reversed or cancelled), then the
 *     c:/b: amounts it added
 *
 * A snapshot (the state just before an event, as stored in the memo) is
 * the order part, the customer part and a line "_prev<TAB>0|1" (the order
 * had been applied before this event).
 *
 *   order entry (one per order: its record, then the memo of each of its
 *   applied events, in the order they were applied):
 *     the order record's lines (none: no record yet, e.g. after a refund
 *     of an order never seen), then per applied event a line
 *     "@<event id><TAB><snapshot length>" and that many bytes of snapshot.
 *     A record line never starts with '@', so the first one starts the
 *     memos; the lengths make the rest unambiguous.
 */
#ifndef LP_PROFILE_APPLY_H
#define LP_PROFILE_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "profile.h"
#include "util.h"

/* The stored state's text helpers, shared with activity_apply.c:
 * escape \, TAB and newline into b; unescape n bytes of s (caller
 * frees); a whole decimal integer ("-" allowed) within int64, 0 or -1. */
void lp_state_escape_into(struct lp_buf *b, const char *s);
char *lp_state_unescape(const char *s, size_t n);
int lp_state_parse_i64(const char *v, size_t n, int64_t *out);
/* The integer of the line "<key><TAB>..." of a stored part (NULL = empty),
 * or 0 when it has none: a scan, not a parse, for readers that need one
 * field (the last order time, a cart's time). */
int64_t lp_state_line_i64(const char *part, const char *key);

/*
 * Applies an order event to the order part own (NULL/"" = empty) given the
 * order's record rec (NULL = never seen). Sets *new_own and *new_rec
 * (caller frees; *new_rec is NULL when the record does not change) and
 * *previously_applied (rec existed before this event). max_affinities caps
 * the distinct categories (and, separately, brands) tracked.
 */
void lp_profile_apply_order(const char *own, const char *rec,
                            const struct lp_order_event *ev, int max_affinities,
                            char **new_own, char **new_rec,
                            int *previously_applied);

/* 1 when an order at at_ms counts a new purchase day, given the first
 * and last order times so far (first_ms 0: none yet): the "days" rule
 * above, shared with the scores' view of an order just applied. */
int lp_order_adds_purchase_day(int64_t first_ms, int64_t last_ms,
                               int64_t at_ms);

/* The member's numbers as order event ev leaves them, as
 * lp_profile_apply_order counts a new order (created or paid, not applied
 * before): *after is a shallow copy of *before (it shares its strings and
 * arrays: never clear it) with the order counted. Another event (a
 * cancellation, a refund, a repeat) leaves the copy as it was: what it
 * takes back depends on the order's record, which before does not hold.
 * The scores' and the timers' view of an order just applied. */
void lp_profile_after_order(const struct lp_profile *before,
                            const struct lp_order_event *ev,
                            struct lp_profile *after);

/* Applies a customer event to the customer part own; *new_own (caller
 * frees). Out-of-order updates: the newest event time wins; consent
 * "unknown" and absent fields never overwrite. */
void lp_profile_apply_customer(const char *own,
                               const struct lp_customer_event *ev,
                               char **new_own);

/* Builds the snapshot text from the two parts (caller frees). */
char *lp_profile_snapshot(const char *order_part, const char *customer_part,
                          int previously_applied);

/* Parses a snapshot (or the two parts concatenated) into *out.
 * 0, or -1 with errstr ("snapshot: ..."). */
int lp_profile_from_snapshot(const char *text, size_t len,
                             struct lp_profile *out, char *errstr,
                             size_t errstr_size);

/* At most this many events of one order are memoised; a further event of
 * the order is refused (dead-lettered) rather than growing its entry
 * without bound. Real orders have a handful (created, paid, refunds). */
#define LP_ORDER_MAX_EVENTS 64

/* An order entry as read, pointing into its text. */
struct lp_order_entry {
  const char *record; /* the record's lines; record_len 0 = no record */
  size_t record_len;
  const char *memos; /* the memo section, verbatim */
  size_t memos_len;
  size_t n_memos;
};

/* Splits an entry's text (len bytes) and checks its memo section.
 * 0, or -1 with errstr ("order entry: ..."). */
int lp_order_entry_parse(const char *text, size_t len,
                         struct lp_order_entry *out, char *errstr,
                         size_t errstr_size);

/* The memo of event_id in a parsed entry: 1 with *snapshot and *len pointing
 * into the entry's text, or 0. */
int lp_order_entry_memo(const struct lp_order_entry *e, const char *event_id,
                        const char **snapshot, size_t *len);

/* The entry after one more event (caller frees): record (NULL = none;
 * else NUL-terminated record lines), then old's memos (old may be NULL),
 * then the memo of event_id. */
char *lp_order_entry_compose(const char *record,
                             const struct lp_order_entry *old,
                             const char *event_id, const char *snapshot);

#endif
