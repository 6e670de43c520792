# Activity fold: activity-processor folds ActivityEvents into the member's
# activity part <ns>:a:{shop:customer} — browse scores by brand and
# category, the cart and its state — exactly once (the same events produced
# again change nothing), an order (through order-processor) stops an older
# cart event from reopening the cart, bad input (unknown kind, negative
# cart value, an event time years ahead) is dead-lettered with the reason,
# and no decision is ever produced.
set -euo pipefail
. tests/lib.sh
lp_start_broker orders:4,activity:4,decisions:4,activity-decisions:2,dlq:2
lp_start_redis
NS=act
SHOP=act-shop
lp_start_processor order-processor order-act -X "redis.namespace=$NS" \
  -X group.id=order-act
ORDER_PID=$LAST_PID
lp_start_processor activity-processor activity-act -X "redis.namespace=$NS" \
  -X group.id=activity-act -X topic.decisions=activity-decisions
ACTIVITY_PID=$LAST_PID

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw "$@"; }
part() { rcli GET "$NS:a:{$SHOP:$1}"; } # part CUSTOMER: the activity part
ms() { echo $(($(date -u -d "$1" +%s) * 1000)); }
wait_activity() {
  lp_ctl wait --group activity-act --topic activity --timeout-ms 60000
}
has_line() { # has_line CUSTOMER REGEX WHAT
  part "$1" | grep -qE "$2" || { part "$1" >&2; lp_fail "$3: no line /$2/"; }
  echo "ok: $3"
}
no_line() { # no_line CUSTOMER REGEX WHAT
  ! part "$1" | grep -qE "$2" || { part "$1" >&2; lp_fail "$3: line /$2/"; }
  echo "ok: $3"
}
TAB=$'\t'

# activity ID CUSTOMER TIME KIND [EXTRA-JSON]: one canonical JSON event.
activity() {
  printf '{"event_id":"act-%s","shop":"%s","customer_id":"%s","event_time":"%s","kind":"%s"%s}\n' \
    "$1" "$SHOP" "$2" "$3" "$4" "${5:-}"
}
view() { # view ID CUSTOMER TIME BRAND CATEGORY
  activity "$1" "$2" "$3" product_view \
    ",\"product_id\":\"p-$1\",\"brand\":\"$4\",\"category\":\"$5\""
}
cart() { # cart ID CUSTOMER TIME VALUE
  activity "$1" "$2" "$3" cart_updated \
    ",\"cart_id\":\"cart-$2\",\"currency\":\"EUR\",\"cart_value\":\"$4\",\"line_items\":[{\"product_id\":\"7001\",\"sku\":\"RS-42\",\"category\":\"shoes\",\"brand\":\"Acme\",\"quantity\":1,\"unit_price\":\"$4\"}]"
}

# 1. Product views of one brand give that brand (and category) a score.
{
  view v1 a1 2024-03-01T10:00:00.000Z Acme shoes
  view v2 a1 2024-03-01T10:00:01.000Z Acme shoes
} >"$LP_TMP/views.jsonl"
lp_ctl produce --type activity <"$LP_TMP/views.jsonl"
wait_activity
has_line a1 "^v:b:Acme$TAB[0-9]+$" "product views of Acme give v:b:Acme"
has_line a1 "^v:c:shoes$TAB[0-9]+$" "and v:c:shoes"
has_line a1 "^views${TAB}2$" "two views counted"
has_line a1 "^at$TAB$(ms 2024-03-01T10:00:01Z)$" "at is the newest event time"
no_line a1 "^cart_state" "no cart yet"

# 2. A cart update opens the cart; a checkout moves it to checkout.
cart c1 a1 2024-03-01T10:00:02.000Z 49.99 >"$LP_TMP/cart.jsonl"
lp_ctl produce --type activity <"$LP_TMP/cart.jsonl"
wait_activity
has_line a1 "^cart${TAB}49990000$" "cart value"
has_line a1 "^cur${TAB}EUR$" "cart currency"
has_line a1 "^cart_top${TAB}RS-42$" "cart_top is the most valuable line's sku"
has_line a1 "^cart_state${TAB}open$" "cart_state open"
activity k1 a1 2024-03-01T10:00:03.000Z checkout_started \
  ',"cart_id":"cart-a1"' >"$LP_TMP/checkout.jsonl"
lp_ctl produce --type activity <"$LP_TMP/checkout.jsonl"
wait_activity
has_line a1 "^cart_state${TAB}checkout$" "checkout_started gives cart_state checkout"
has_line a1 "^cart${TAB}49990000$" "the cart stays"
ttl=$(rcli TTL "$NS:m:{$SHOP:a1}:a:act-k1")
[ "$ttl" -gt 0 ] || lp_fail "memo of act-k1 has no expiry (TTL $ttl)"
echo "ok: the activity memo expires (TTL $ttl s)"

# 3. An order consumes the cart: a later-arriving but older cart event
# does not reopen it.
cart c2 b1 2024-03-01T10:01:00.000Z 20.00 >"$LP_TMP/b1-cart.jsonl"
lp_ctl produce --type activity <"$LP_TMP/b1-cart.jsonl"
wait_activity
has_line b1 "^cart_state${TAB}open$" "b1's cart is open"
printf '{"event_id":"act-o1","shop":"%s","order_id":"o1","customer_id":"b1","event_time":"2024-03-01T10:05:00.000Z","status":"created","currency":"EUR","total":"20.00","subtotal":"20.00","discount":"0.00","tax":"0.00","discount_codes":[],"line_items":[{"product_id":"7001","sku":"RS-42","category":"shoes","brand":"Acme","quantity":1,"unit_price":"20.00"}],"source":"test"}\n' \
  "$SHOP" | lp_ctl produce --type order
lp_ctl wait --group order-act --topic orders --timeout-ms 60000
n=$(lp_ctl profile --redis "127.0.0.1:$REDIS_PORT" --namespace "$NS" \
  --shop "$SHOP" --customer b1 | jq -r .order_count)
lp_assert_eq "$n" 1 "order-processor applied b1's order"
cart c3 b1 2024-03-01T10:03:00.000Z 35.00 >"$LP_TMP/b1-late.jsonl"
lp_ctl produce --type activity <"$LP_TMP/b1-late.jsonl"
wait_activity
no_line b1 "^cart_state" "an older cart event after the order does not reopen the cart"
no_line b1 "^cart$TAB" "no cart value after the order"
has_line b1 "^cart_at$TAB$(ms 2024-03-01T10:05:00Z)$" "cart_at is the order's time"

# 4. The same events produced again change nothing.
dump() {
  for c in a1 b1; do echo "$c $(part "$c" | tr '\n' '|')"; done
}
dump >"$LP_TMP/parts1.txt"
memos1=$(rcli KEYS "$NS:m:*:a:*" | sort | tr '\n' ' ')
cat "$LP_TMP/views.jsonl" "$LP_TMP/cart.jsonl" "$LP_TMP/checkout.jsonl" \
  "$LP_TMP/b1-cart.jsonl" "$LP_TMP/b1-late.jsonl" | lp_ctl produce --type activity
# As JSON too: the same event whatever its framing.
cat "$LP_TMP/views.jsonl" | lp_ctl produce --type activity --format json
wait_activity
dump >"$LP_TMP/parts2.txt"
lp_assert_files_eq "$LP_TMP/parts2.txt" "$LP_TMP/parts1.txt" \
  "activity parts after the same events again"
lp_assert_eq "$(rcli KEYS "$NS:m:*:a:*" | sort | tr '\n' ' ')" "$memos1" \
  "no new memos for redelivered events"
lp_assert_eq "$(echo "$memos1" | wc -w)" 6 "one memo per distinct activity event"

# 5. Bad input is dead-lettered with the reason.
{
  activity bad1 bad 2024-03-01T10:00:00.000Z teleported
  activity bad2 bad 2024-03-01T10:00:00.000Z cart_updated \
    ',"currency":"EUR","cart_value":"-5.00"'
  view bad3 bad 2099-03-01T10:00:00.000Z Acme shoes
  view good1 good 2024-03-01T10:00:00.000Z Acme shoes
} | lp_ctl produce --type activity --format json --key "$SHOP:bad"
wait_activity
lp_ctl consume --topic dlq --type dead_letter >"$LP_TMP/dlq.jsonl"
jq -c '{source_topic, processor, field, reason}' "$LP_TMP/dlq.jsonl" | cut -c1-240
lp_assert_eq "$(wc -l <"$LP_TMP/dlq.jsonl")" 3 "dead letters"
expect_reason() { # expect_reason PATTERN WHAT
  jq -r .reason "$LP_TMP/dlq.jsonl" | grep -qE "$1" ||
    lp_fail "no dead letter with a reason matching /$1/ ($2)"
  echo "ok: dead letter for $2"
}
expect_reason '^kind: unknown activity kind "teleported"' "an unknown kind"
expect_reason '^cart_value: negative \(-5\.00\)' "a negative cart value"
expect_reason '^event_time: 2099-03-01T10:00:00\.000Z is .* after now; the limit is event\.max\.future\.ms \(1 day\)' \
  "an event time years ahead"
lp_assert_eq "$(jq -r 'select(.reason | startswith("event_time")) | .field' "$LP_TMP/dlq.jsonl")" \
  event_time "the far-future dead letter's field"
lp_assert_eq "$(jq -r .processor "$LP_TMP/dlq.jsonl" | sort -u)" activity-processor \
  "dead-lettered by activity-processor"
lp_assert_eq "$(jq -r .source_topic "$LP_TMP/dlq.jsonl" | sort -u)" activity \
  "from the activity topic"
[ -z "$(part bad)" ] || lp_fail "a bad record changed the activity part"
has_line good "^v:b:Acme$TAB" "the valid record among them was folded"

# 6. No rules fire on activity events: zero decisions.
lp_assert_eq "$(lp_decisions activity-decisions 1000 | wc -l)" 0 \
  "decisions produced by activity-processor"
lp_stop_pid "$ACTIVITY_PID"
lp_stop_pid "$ORDER_PID"
