#!/usr/bin/env bash
# make demo: the embedded default end to end. Starts devbroker, a
# redis-server on a free loopback port (data in a temp dir), the sandbox
# platforms (LoyaltyLion, Klaviyo), both processors and the executor;
# produces a synthetic shop's traffic (or CDNOW with DEMO_SOURCE=cdnow)
# plus a few broken records; fits the member-value models on that history
# (trainer); sends a second shop's orders through the bridge as Shopify
# webhooks and BigCommerce callbacks and backfills it with the importer;
# then starts order-processor; waits for the pipeline to
# drain; shows the segment mix and the model-driven decisions; reconciles
# the sandbox ledger against the decisions; prints a summary; stops
# everything it started.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
. tests/lib.sh

CUSTOMERS=${DEMO_CUSTOMERS:-2000}
ORDERS=${DEMO_ORDERS:-20000}
SOURCE=${DEMO_SOURCE:-synthetic}

echo "demo: starting devbroker and redis-server on 127.0.0.1"
lp_start_broker
lp_start_redis
echo "demo: broker $BOOTSTRAP, redis 127.0.0.1:$REDIS_PORT, work dir $LP_TMP"
# order-processor starts once the member-value model is fitted (below), so
# every order is decided with scores; customer-processor starts now.
lp_start_processor customer-processor customer-processor
# The sandbox stands in for the SaaS platforms; its rate limits are raised
# (and the executor's pacing with them) so the demo does not take an hour
# at LoyaltyLion's real 20 requests/s.
lp_start_sandbox -X loyaltylion.rate=5000 -X klaviyo.events.burst=5000 \
  -X klaviyo.profiles.burst=5000 -X klaviyo.profiles.steady=300000 \
  -X klaviyo.events.steady=300000
echo "demo: sandbox platforms on $SANDBOX_URL"
"$BIN/executor" -X "bootstrap.file=$BOOTSTRAP_FILE" -X redis.host=127.0.0.1 \
  -X "redis.port=$REDIS_PORT" -X http.port=0 \
  -X "loyaltylion.url=$SANDBOX_URL" -X loyaltylion.key=sandbox-ll-key \
  -X loyaltylion.rate=2000 -X loyaltylion.burst=100 \
  -X "klaviyo.url=$SANDBOX_URL" -X klaviyo.key=pk_sandbox \
  -X klaviyo.rate=2000 -X approval.above=50.00 \
  2>>"$LP_TMP/executor.log" &
LP_PIDS+=("$!")

t0=$(date +%s.%N)
if [ "$SOURCE" = cdnow ]; then
  echo "demo: producing the CDNOW purchase history"
  lp_ctl cdnow --file ../shared/datasets/CDNOW_master.txt --shop cdnow
else
  echo "demo: producing a synthetic shop: $CUSTOMERS customers, $ORDERS orders"
  lp_ctl generate --customers "$CUSTOMERS" --orders "$ORDERS" --seed 7
fi
# A few records a real bridge might forward broken: they must be
# dead-lettered with a reason while everything around them is processed.
printf '%s\n' 'not json at all' | lp_ctl produce --type order --format json --key demo:broken
printf '%s\n' '{"event_id":"e-bad","shop":"demo-shop.myshopify.com","order_id":"o-bad"}' |
  lp_ctl produce --type order --format json --key demo:broken
printf 'c30100\n' | lp_ctl produce --type customer --format hex --key demo:broken

# The member-value models, fitted on the order history just produced and
# published to Redis, where order-processor reads them (and would pick up
# a newer one while running).
echo "demo: fitting BG/NBD and Gamma-Gamma on the order history (trainer)"
if [ "$SOURCE" = cdnow ]; then
  "$BIN/trainer" --cdnow ../shared/datasets/CDNOW_master.txt \
    --out "$LP_TMP/model.json" --redis "127.0.0.1:$REDIS_PORT" 2>"$LP_TMP/trainer.log"
else
  "$BIN/trainer" --topic orders -f "$BOOTSTRAP_FILE" --calibration-end last \
    --scoring deploy/scoring.json --out "$LP_TMP/model.json" \
    --redis "127.0.0.1:$REDIS_PORT" 2>"$LP_TMP/trainer.log"
fi
sed -n 's/^  /demo:   /p' "$LP_TMP/trainer.log" | grep -v holdout

# Platform ingestion: a second shop (the sandbox's generated one) arrives
# the way a real one would — Shopify webhooks and BigCommerce callbacks
# through the bridge (signed, with duplicates, reordering and retries from
# the sandbox's sender), then a Shopify backfill with the importer over
# the same orders (the overlap is one order each: the profile counts an
# order once by its id, and the rules reward only new orders).
"$BIN/bridge" -X "bootstrap.file=$BOOTSTRAP_FILE" -X http.port=0 \
  -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" \
  -X shopify.secrets=demo-shopify-secret -X bigcommerce.secrets=demo-bc-secret \
  -X "bigcommerce.api.url=$SANDBOX_URL" -X bigcommerce.tokens=sbx123=bc_sandbox \
  -X "shopify.api.url=$SANDBOX_URL/admin/api/2025-01" -X shopify.api.token=shpat_sandbox \
  2>>"$LP_TMP/bridge.log" &
LP_PIDS+=("$!")
bridge_port=""
for _ in $(seq 100); do
  bridge_port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$LP_TMP/bridge.log" | head -n1)
  [ -n "$bridge_port" ] && break
  sleep 0.05
done
[ -n "$bridge_port" ] || { echo "demo: the bridge did not start" >&2; cat "$LP_TMP/bridge.log" >&2; exit 1; }
BRIDGE_URL="http://127.0.0.1:$bridge_port"
curl -sf -o /dev/null -X POST "$SANDBOX_URL/_sandbox/shop" -d '{"orders": 600, "customers": 150,
  "seed": 11, "leak_per_s": 40, "bucket_size": 80, "bc_quota": 2000, "bc_window_ms": 1000}'
echo "demo: Shopify webhooks (orders 0-299) and BigCommerce callbacks (orders 0-199) through the bridge on $BRIDGE_URL"
send_webhooks() { # send_webhooks NAME JSON
  curl -sf --max-time 300 -X POST "$SANDBOX_URL/_sandbox/webhooks/send" -d "$2" >"$LP_TMP/sent-$1.json"
  jq -r --arg n "$1" '"demo:   \($n): \(.deliveries) deliveries (\(.duplicates) duplicates), \(.attempts) attempts, answers \(.status | to_entries | map("\(.key) x\(.value)") | join(", ")), failed \(.failed)"' \
    "$LP_TMP/sent-$1.json"
}
send_webhooks shopify "{\"platform\": \"shopify\", \"url\": \"$BRIDGE_URL/webhooks/shopify\",
  \"secret\": \"demo-shopify-secret\", \"topic\": \"orders/create\", \"first\": 0, \"count\": 300,
  \"duplicate_permille\": 100, \"reorder_window\": 20, \"retries\": 5, \"concurrency\": 8}"
send_webhooks bigcommerce "{\"platform\": \"bigcommerce\", \"url\": \"$BRIDGE_URL/webhooks/bigcommerce\",
  \"header\": \"X-Bridge-Secret\", \"secret\": \"demo-bc-secret\", \"topic\": \"store/order/created\",
  \"first\": 0, \"count\": 200, \"duplicate_permille\": 100, \"retries\": 5, \"concurrency\": 8}"
platform_orders() { # the second shop's order events so far (canonical JSON)
  # (loyaltyctl consume exits 1 at the demo's broken records: read on)
  { lp_ctl consume --topic orders --type order --idle-ms 1500 2>/dev/null || true; } |
    jq -c 'select(.shop == "sandbox-shop.myshopify.com" or .shop == "bc-sbx123")'
}
via_webhooks=$(platform_orders | wc -l)
echo "demo: backfilling the Shopify shop's whole history (600 orders) with the importer"
lp_ctl import shopify --url "$SANDBOX_URL" --token shpat_sandbox --shop sandbox-shop.myshopify.com \
  --checkpoint "$LP_TMP/import.ckpt" --progress lines 2>&1 | sed -n 's/^/demo:   /p' | tail -n 2
lp_start_processor order-processor order-processor

echo "demo: waiting for the processors to drain their topics"
lp_ctl wait --group order-processor --topic orders --timeout-ms 300000
lp_ctl wait --group customer-processor --topic customers --timeout-ms 300000
echo "demo: waiting for the executor to carry out the decisions"
lp_ctl wait --group executor --topic decisions --timeout-ms 600000
t1=$(date +%s.%N)

lp_ctl consume --topic decisions --type decision --idle-ms 3000 >"$LP_TMP/decisions.jsonl"
lp_ctl consume --topic dlq --type dead_letter --idle-ms 3000 >"$LP_TMP/dlq.jsonl"
# Count the records as bytes: the broken ones do not decode.
orders_in=$(lp_ctl consume --topic orders --type order --format hex --idle-ms 3000 | wc -l)
customers_in=$(lp_ctl consume --topic customers --type customer --format hex --idle-ms 3000 | wc -l)
events=$((orders_in + customers_in))
decisions=$(jq -r .decision_id "$LP_TMP/decisions.jsonl" | sort -u | wc -l)
dead=$(wc -l <"$LP_TMP/dlq.jsonl")
lp_ctl consume --topic actions --type action_result --idle-ms 3000 >"$LP_TMP/actions.jsonl"
curl -sf "$SANDBOX_URL/_sandbox/ledger" >"$LP_TMP/ledger.json"
# Reconcile: every effect in the ledger names its decision (LoyaltyLion's
# reason ends "[<id>]", Klaviyo's unique_id is the id).
jq -r '.effects[].reference' "$LP_TMP/ledger.json" |
  sed -n -e 's/.*\[\([0-9a-f]\{32\}\)\]$/\1/p;t' -e '/^[0-9a-f]\{32\}$/p' |
  sort >"$LP_TMP/ledger-ids.txt"
issued=$(sort -u "$LP_TMP/ledger-ids.txt" | wc -l)
duplicates=$(uniq -d "$LP_TMP/ledger-ids.txt" | wc -l)
# Score syncs write profiles (an upsert keyed by the member, no decision
# id): they are reconciled by count below.
jq -r 'select(.outcome == "issued" and .action_kind != "score_sync") | .decision_id' \
  "$LP_TMP/actions.jsonl" | sort -u >"$LP_TMP/issued-ids.txt"
syncs_issued=$(jq -r 'select(.outcome == "issued" and .action_kind == "score_sync") | .decision_id' \
  "$LP_TMP/actions.jsonl" | sort -u | wc -l)
profile_writes=$(jq '[.effects[] | select(.kind == "profile")] | length' "$LP_TMP/ledger.json")
missing=$(sort -u "$LP_TMP/ledger-ids.txt" | comm -13 - "$LP_TMP/issued-ids.txt" | wc -l)
unknown=$(sort -u "$LP_TMP/ledger-ids.txt" | comm -23 - "$LP_TMP/issued-ids.txt" | wc -l)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')

echo
echo "================ loyalty demo summary ================"
printf 'events in:        %d (%d order and %d customer records, 3 of them broken)\n' \
  "$events" "$orders_in" "$customers_in"
printf 'decisions:        %d\n' "$decisions"
echo 'decisions by rule:'
jq -r '.rule_id' "$LP_TMP/decisions.jsonl" | sort | uniq -c | sort -rn |
  awk '{printf "  %-32s %d\n", $2, $1}'
echo 'decisions of member timers (fired on event time; docs/timers.md), by kind:'
jq -r 'select(.trigger_kind != "order" and .trigger_kind != "customer") | .trigger_kind' \
  "$LP_TMP/decisions.jsonl" | sort | uniq -c | sort -rn | awk '{printf "  %-32s %d\n", $2, $1}'
jq -c 'select(.trigger_kind == "winback") | {rule_id, customer_id, due: .event_time, trigger: .trigger_event_id, action: {kind: .action.kind, percent: .action.discount_percent, brand: .action.brand}}' \
  "$LP_TMP/decisions.jsonl" | sed -n '1s/^/  e.g. /p'
echo 'executor outcomes:'
jq -r '.outcome' "$LP_TMP/actions.jsonl" | sort | uniq -c | sort -rn |
  awk '{printf "  %-32s %d\n", $2, $1}'
echo 'rewards issued per platform (sandbox ledger):'
jq -r '.effects[] | "\(.platform) \(.kind)"' "$LP_TMP/ledger.json" | sort | uniq -c |
  awk '{printf "  %-32s %d\n", $2 " " $3, $1}'
printf 'points awarded:   %s\n' "$(jq '[.effects[] | select(.kind == "points") | .points] | add // 0' "$LP_TMP/ledger.json")"
printf 'reconciliation:   %d decisions in the ledger, %d twice, %d issued but missing, %d unexplained\n' \
  "$issued" "$duplicates" "$missing" "$unknown"
printf 'score syncs:       %d written to profiles (%d profile writes in the ledger), %d unchanged, %d older than the last\n' \
  "$syncs_issued" "$profile_writes" \
  "$(jq -r 'select(.guardrail == "score_sync:unchanged") | .decision_id' "$LP_TMP/actions.jsonl" | sort -u | wc -l)" \
  "$(jq -r 'select(.guardrail == "score_sync:older_than_last_sync") | .decision_id' "$LP_TMP/actions.jsonl" | sort -u | wc -l)"
pending=$("$BIN/loyaltyctl" approvals --redis "127.0.0.1:$REDIS_PORT" | wc -l)
printf 'awaiting approval: %d (cost above 50.00; loyaltyctl approvals / approve)\n' "$pending"
platform_orders >"$LP_TMP/platform-orders.jsonl"
# Decisions on the second shop's orders, per (rule, order): an order that
# came by webhook and again by the backfill is rewarded once.
jq -r '"\(.event_id) \(.order_id)"' "$LP_TMP/platform-orders.jsonl" | sort >"$LP_TMP/platform-ids.txt"
jq -r 'select(.shop == "sandbox-shop.myshopify.com" or .shop == "bc-sbx123") | "\(.trigger_event_id) \(.rule_id)"' \
  "$LP_TMP/decisions.jsonl" | sort | join - "$LP_TMP/platform-ids.txt" >"$LP_TMP/platform-decisions.txt"
rewarded_twice=$(awk '{print $2, $3}' "$LP_TMP/platform-decisions.txt" | sort | uniq -d | wc -l)
printf 'platform ingestion: %d order events from a second shop: %d via the bridge (Shopify webhooks, BigCommerce callbacks), %d from the Shopify backfill; %d orders, %d decisions on them, %d (rule, order) pairs decided twice\n' \
  "$(wc -l <"$LP_TMP/platform-orders.jsonl")" "$via_webhooks" \
  "$(($(wc -l <"$LP_TMP/platform-orders.jsonl") - via_webhooks))" \
  "$(jq -r '"\(.shop) \(.order_id)"' "$LP_TMP/platform-orders.jsonl" | sort -u | wc -l)" \
  "$(wc -l <"$LP_TMP/platform-decisions.txt")" "$rewarded_twice"
curl -sf "$BRIDGE_URL/metrics" | sed -n 's/^loyalty_webhooks_total{.*webhook="\([^"]*\)"} \([0-9]*\)$/  bridge: \1 x\2/p'
printf 'dead letters:     %d\n' "$dead"
jq -r '"  " + .source_topic + "@" + (.source_offset|tostring) + ": " + .reason' \
  "$LP_TMP/dlq.jsonl" | sed -n '1,5p' # sed reads on: no SIGPIPE under pipefail
printf 'wall time:        %.1f s from the first record produced to the executor done (%.0f events/s incl. start-up; make bench measures throughput)\n' \
  "$secs" "$(awk -v e="$events" -v s="$secs" 'BEGIN{print e / s}')"
echo 'sample decision:'
head -n 1 "$LP_TMP/decisions.jsonl" | jq -c '{decision_id, rule_id, customer_id, action, explanation: .explanation.summary}'
model=$(jq -r .version "$LP_TMP/model.json")
# Score every member at the time of the last order produced.
at=$(jq -r .event_time "$LP_TMP/decisions.jsonl" | sort | tail -n 1)
"$BIN/loyaltyctl" segments --redis "127.0.0.1:$REDIS_PORT" --at "$at" >"$LP_TMP/segments.jsonl"
printf 'member value (model %s, scored at %s):\n' "$model" "$at"
jq -r 'select(.model) | "  members \(.members), predicted 12-month value \(.clv_12m), mean P(alive) \(.mean_p_alive)"' "$LP_TMP/segments.jsonl"
echo '  segment mix:'
jq -r 'select(.segment) | "    \(.segment) \(.members) \(.share * 100 | floor)% \(.clv_12m)"' "$LP_TMP/segments.jsonl" |
  awk '{printf "    %-24s %6d members %3d%%  12-month value %s\n", $1, $2, $3, $4}'
printf '  churn risk:      %s\n' "$(jq -r 'select(.churn_risk) | "\(.churn_risk) \(.members)"' "$LP_TMP/segments.jsonl" | paste -sd, - | sed 's/,/, /g')"
printf '  next-best reward: %s\n' "$(jq -r 'select(has("next_best_reward")) | "\(.next_best_reward // "none") \(.members)"' "$LP_TMP/segments.jsonl" | paste -sd, - | sed 's/,/, /g')"
echo 'decisions driven by the model (rules reading scores):'
jq -r 'select(.explanation.features | any(.name | test("p_alive|churn_risk|clv_12m|value_segment|expected_|next_best"))) | .rule_id' \
  "$LP_TMP/decisions.jsonl" | sort | uniq -c | sort -rn | awk '{printf "  %-32s %d\n", $2, $1}'
jq -c 'select(.rule_id == "win-back-at-risk") | {rule_id, customer_id, action: {kind: .action.kind, percent: .action.discount_percent, brand: .action.brand}, model: .explanation.model_version, scores: (.explanation.features | map({key: (.name | sub("profile."; "")), value}) | from_entries)}' \
  "$LP_TMP/decisions.jsonl" | sed -n '1p'
echo "======================================================"
echo "demo: events=$events decisions=$decisions issued=$issued duplicates=$duplicates dead_letters=$dead"
[ "$duplicates" -eq 0 ] && [ "$missing" -eq 0 ] && [ "$unknown" -eq 0 ] &&
  [ "$rewarded_twice" -eq 0 ] &&
  [ "$syncs_issued" -eq "$profile_writes" ]
