# (a) A known set of customers and orders (canonical JSON as Avro, and a
# Shopify orders/create body as a bridge forwards it, delivered twice)
# -> exactly the expected decisions of the shipped rules
# (tests/component/fixtures/expected-a.txt, worked out by hand from
# deploy/rules/seed.json), with their explanations and the profiles.
set -euo pipefail
. tests/lib.sh
FX=tests/component/fixtures
lp_start_broker
lp_start_redis

lp_ctl produce --type customer <"$FX/customers-a.jsonl"
lp_start_processor customer-processor customer-a -X redis.namespace=a \
  -X group.id=customer-a
lp_ctl wait --group customer-a --topic customers --timeout-ms 60000

lp_ctl produce --type order <"$FX/orders-a.jsonl"
for _ in 1 2; do # the platform delivers the webhook twice
  lp_ctl produce --type order --format json \
    --header X-Shopify-Topic=orders/create \
    --header X-Shopify-Shop-Domain=shopify-shop.myshopify.com \
    --header X-Shopify-Event-Id=evt-777 <"$FX/shopify-orders-create.json"
done
lp_start_processor order-processor order-a -X redis.namespace=a \
  -X group.id=order-a
lp_ctl wait --group order-a --topic orders --timeout-ms 60000

lp_ctl consume --topic decisions --type decision >"$LP_TMP/decisions.jsonl"
jq -r '[.customer_id, .trigger_event_id, .rule_id, .action.kind,
        (.action.points | tostring), (.action.discount_percent | tostring),
        (.action.brand // "-")] | join(" ")' "$LP_TMP/decisions.jsonl" |
  LC_ALL=C sort -u >"$LP_TMP/actual.txt"
lp_assert_files_eq "$LP_TMP/actual.txt" "$FX/expected-a.txt" \
  "decisions of the known set"
# The duplicate webhook re-emitted the same two decisions, same ids.
lp_assert_eq "$(wc -l <"$LP_TMP/decisions.jsonl")" 22 "records incl. the redelivered webhook's"
lp_assert_eq "$(jq -r .decision_id "$LP_TMP/decisions.jsonl" | sort -u | wc -l)" 20 "distinct decision ids"

# Decisions carry event time, the rule version and their explanation.
wmy=$(jq -c 'select(.rule_id == "we-miss-you")' "$LP_TMP/decisions.jsonl")
lp_assert_eq "$(jq -r .event_time <<<"$wmy")" "2024-03-01T12:00:00.000Z" "we-miss-you event time"
lp_assert_eq "$(jq -r .rule_version <<<"$wmy")" 1 "we-miss-you rule version"
lp_assert_eq "$(jq -r '.explanation.features[] | select(.name == "profile.days_since_last_order") | .value' <<<"$wmy")" 60 \
  "explanation: days since last order"
lp_assert_eq "$(jq -r '.explanation.features[] | select(.name == "profile.lifetime_spend") | .value' <<<"$wmy")" 600.00 \
  "explanation: lifetime spend"
# The id is the documented hash of (rule id, version, shop, customer, event).
lenpre() { # 4-byte big-endian length, then the bytes (docs/rules.md)
  local n=${#1}
  printf "\\x$(printf %02x $((n >> 24 & 255)))\\x$(printf %02x $((n >> 16 & 255)))\\x$(printf %02x $((n >> 8 & 255)))\\x$(printf %02x $((n & 255)))%s" "$1"
}
want=$( { lenpre we-miss-you; lenpre 1; lenpre shop-a; lenpre m5; lenpre a-o11-created; } |
  sha256sum | cut -c1-32)
lp_assert_eq "$(jq -r .decision_id <<<"$wmy")" "$want" "decision id = documented hash"

# Profiles: the cancellation reversed o3; the paid event did not count o1 twice.
profile() { lp_ctl profile --redis "127.0.0.1:$REDIS_PORT" --namespace a --shop shop-a --customer "$1"; }
lp_assert_eq "$(profile m3 | jq -r '[.order_count, .lifetime_spend] | join(" ")')" "1 30.00" "m3 after cancellation"
lp_assert_eq "$(profile m1 | jq -r '[.order_count, .lifetime_spend] | join(" ")')" "1 120.00" "m1 after create+paid"
lp_assert_eq "$(profile m5 | jq -r '[.order_count, .lifetime_spend, .favourite_brand] | join(" ")')" "5 710.00 Roastery" "m5"
lp_assert_eq "$(lp_ctl consume --topic dlq --type dead_letter --idle-ms 1500 | wc -l)" 0 "no dead letters"
