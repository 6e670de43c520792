# (issue 6) The shipped timer rules (deploy/rules/timers.json) end to end,
# with all three processors and event time only:
#   - the 45-day premium-browser win-back: a member who spent 150.00 or
#     more, browses premium categories (activity-processor) and has not
#     ordered for 45 days gets 20% off their favourite brand, decided when
#     the order stream reaches day 45; a member who does not browse gets
#     nothing;
#   - cart abandonment: a cart of 20.00 or more left for an hour gets a
#     nudge naming its top item when the activity stream passes the hour;
#     a checkout cancels it;
#   - birthday: 250 points when the customer stream reaches the birthday;
#   - a member who orders on a rhythm gets the replenishment reminder 3
#     days before the expected next order.
set -euo pipefail
. tests/lib.sh
lp_start_broker "orders:1,customers:1,activity:1,decisions:4,dlq:1"
lp_start_redis
NS=wf
DAY=86400000 MIN=60000
T0=$(( ($(date +%s) / 86400 - 100) * DAY ))
iso() { date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S.$(printf %03d $(($1 % 1000)))Z; }
ymd() { date -u -d "@$(($1 / 1000))" +%Y-%m-%d; }
order() { # order ID CUSTOMER TIME_MS CATEGORY BRAND TOTAL
  printf '{"event_id":"%s","shop":"wf-shop","order_id":"%s","customer_id":"%s","event_time":"%s","status":"created","currency":"EUR","total":"%s","subtotal":"%s","discount":"0.00","tax":"0.00","discount_codes":[],"line_items":[{"product_id":"p-%s","sku":"sku-%s","category":"%s","brand":"%s","quantity":1,"unit_price":"%s"}],"source":"test"}\n' \
    "$1" "$1" "$2" "$(iso "$3")" "$6" "$6" "$1" "$1" "$4" "$5" "$6"
}
activity() { # activity ID CUSTOMER TIME_MS KIND [EXTRA-JSON]
  printf '{"event_id":"%s","shop":"wf-shop","customer_id":"%s","event_time":"%s","kind":"%s"%s}\n' \
    "$1" "$2" "$(iso "$3")" "$4" "${5:-}"
}
view() { activity "$1" "$2" "$3" product_view ",\"product_id\":\"p-$1\",\"brand\":\"$4\",\"category\":\"$5\""; }
cart() { # cart ID CUSTOMER TIME_MS VALUE
  activity "$1" "$2" "$3" cart_updated ",\"cart_id\":\"cart-$2\",\"currency\":\"EUR\",\"cart_value\":\"$4\",\"line_items\":[{\"product_id\":\"7001\",\"sku\":\"RS-42\",\"category\":\"shoes\",\"brand\":\"Acme\",\"quantity\":1,\"unit_price\":\"$4\"},{\"product_id\":\"7002\",\"sku\":\"SOCK-1\",\"category\":\"shoes\",\"brand\":\"Acme\",\"quantity\":1,\"unit_price\":\"1.00\"}]"
}
customer() { # customer ID CUSTOMER TIME_MS [BIRTHDAY]
  printf '{"event_id":"%s","shop":"wf-shop","customer_id":"%s","event_time":"%s","kind":"updated","marketing_consent":"subscribed","tags":[]%s,"source":"test"}\n' \
    "$1" "$2" "$(iso "$3")" "${4:+,\"birthday\":\"$4\"}"
}
decisions() { # decisions -> "rule customer trigger_kind event_time action" lines
  lp_ctl consume --topic decisions --type decision --idle-ms 1500 |
    jq -r 'select(.trigger_kind != "order" and .trigger_kind != "customer") | "\(.rule_id) \(.customer_id) \(.trigger_kind) \(.event_time) \(.action.kind) \(.action.brand // "-") \(.action.discount_percent // 0) \(.action.points // 0)"' | sort
}
start_all() {
  for p in order customer activity; do
    lp_start_processor "$p-processor" "$p-wf" -X "redis.namespace=$NS" \
      -X "group.id=$p-wf" -X timers.lateness.ms=0
  done
}
drained() {
  lp_ctl wait --group activity-wf --topic activity --timeout-ms 60000
  lp_ctl wait --group order-wf --topic orders --timeout-ms 60000
  lp_ctl wait --group customer-wf --topic customers --timeout-ms 60000
}
start_all

# Browsing first (premium category "equipment", on day 30), then orders:
# pat and quinn spend 200.00 on day 0; rhea orders every 10 days.
{
  view v1 pat $((T0 + 30 * DAY)) Precisa equipment
  view v2 pat $((T0 + 30 * DAY + 1000)) Precisa equipment
} | lp_ctl produce --type activity
lp_ctl wait --group activity-wf --topic activity --timeout-ms 60000
{
  order o1 pat $T0 equipment Brewtech 200.00
  order o2 quinn $T0 equipment Brewtech 200.00
  order r1 rhea $((T0 + 1 * DAY)) coffee Roastery 20.00
  order r2 rhea $((T0 + 11 * DAY)) coffee Roastery 20.00
  order r3 rhea $((T0 + 21 * DAY)) coffee Roastery 20.00
} | lp_ctl produce --type order
# Rhea's consent (replenishment needs it) and bea's birthday, day 20.
{
  customer c1 rhea $T0 "1990-01-01"
  customer c2 bea $T0 "--$(date -u -d "@$(( (T0 + 20 * DAY) / 1000 ))" +%m-%d)"
} | lp_ctl produce --type customer
order b1 bea $((T0 + 2 * DAY)) tea Leafwise 30.00 | lp_ctl produce --type order
drained
lp_assert_eq "$(decisions | wc -l)" 0 "no timer decision before the streams reach the due times"

# The order stream reaches day 46: pat's and quinn's win-backs (due day 45)
# and rhea's reminder (expected day 31, so due day 28) fire.
order x46 xavier $((T0 + 46 * DAY)) tea Leafwise 5.00 | lp_ctl produce --type order
# The customer stream reaches day 21: bea's birthday (day 20) fires.
customer c3 yan $((T0 + 21 * DAY)) | lp_ctl produce --type customer
drained
for _ in $(seq 50); do [ "$(decisions | wc -l)" -ge 3 ] && break; sleep 0.2; done
decisions | tee "$LP_TMP/timer-decisions.txt"
lp_assert_eq "$(grep -c '^winback-45d-premium-browser pat winback' "$LP_TMP/timer-decisions.txt")" 1 \
  "pat (browses equipment) gets the premium win-back"
lp_assert_eq "$(grep '^winback-45d-premium-browser pat' "$LP_TMP/timer-decisions.txt" | awk '{print $4, $5, $6, $7}')" \
  "$(iso $((T0 + 45 * DAY))) discount_code Brewtech 20" \
  "at day 45, 20% off her favourite brand (by spend)"
lp_assert_eq "$(grep -c ' quinn ' "$LP_TMP/timer-decisions.txt" || true)" 0 \
  "quinn (no browsing) gets no premium win-back"
lp_assert_eq "$(grep '^replenishment-reminder rhea' "$LP_TMP/timer-decisions.txt" | awk '{print $3, $4, $5}')" \
  "replenishment $(iso $((T0 + 28 * DAY))) message" \
  "rhea's reminder 3 days before her expected day-31 order"
lp_assert_eq "$(grep '^birthday-reward bea' "$LP_TMP/timer-decisions.txt" | awk '{print $3, $4, $8}')" \
  "birthday $(iso $((T0 + 20 * DAY))) 250" "bea's birthday points on the day"

# Carts: cara leaves 36.00 in her cart; cody checks out 10 minutes after
# his; the activity stream then passes the hour.
C0=$((T0 + 50 * DAY))
{
  cart k1 cara $C0 35.00
  cart k2 cody $C0 35.00
  activity k3 cody $((C0 + 10 * MIN)) checkout_started ",\"cart_id\":\"cart-cody\",\"currency\":\"EUR\",\"cart_value\":\"36.00\""
  view k4 zed $((C0 + 61 * MIN)) Acme shoes
} | lp_ctl produce --type activity
drained
for _ in $(seq 50); do [ "$(decisions | grep -c '^cart-abandonment-nudge')" -ge 1 ] && break; sleep 0.2; done
lp_assert_eq "$(decisions | grep '^cart-abandonment-nudge' | awk '{print $2, $3, $4}')" \
  "cara cart $(iso $((C0 + 60 * MIN)))" \
  "cara's cart nudge an hour after her cart; cody checked out: none"
top=$(lp_ctl consume --topic decisions --type decision --idle-ms 1500 |
  jq -r 'select(.rule_id == "cart-abandonment-nudge") | .explanation.features[] | select(.name == "activity.cart_top_item") | .value')
lp_assert_eq "$top" "RS-42" "the nudge names the cart's top item"
