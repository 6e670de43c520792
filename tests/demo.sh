#!/usr/bin/env bash
# make demo: the embedded default end to end. Starts devbroker, a
# redis-server on a free loopback port (data in a temp dir) and both
# processors; produces a synthetic shop's traffic (or CDNOW with
# DEMO_SOURCE=cdnow) plus a few broken records; waits for the pipeline to
# drain; prints a summary; stops everything it started.
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
lp_start_processor order-processor order-processor
lp_start_processor customer-processor customer-processor

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

echo "demo: waiting for the processors to drain their topics"
lp_ctl wait --group order-processor --topic orders --timeout-ms 300000
lp_ctl wait --group customer-processor --topic customers --timeout-ms 300000
t1=$(date +%s.%N)

lp_ctl consume --topic decisions --type decision --idle-ms 3000 >"$LP_TMP/decisions.jsonl"
lp_ctl consume --topic dlq --type dead_letter --idle-ms 3000 >"$LP_TMP/dlq.jsonl"
# Count the records as bytes: the broken ones do not decode.
orders_in=$(lp_ctl consume --topic orders --type order --format hex --idle-ms 3000 | wc -l)
customers_in=$(lp_ctl consume --topic customers --type customer --format hex --idle-ms 3000 | wc -l)
events=$((orders_in + customers_in))
decisions=$(wc -l <"$LP_TMP/decisions.jsonl")
dead=$(wc -l <"$LP_TMP/dlq.jsonl")
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')

echo
echo "================ loyalty demo summary ================"
printf 'events in:        %d (%d order and %d customer records, 3 of them broken)\n' \
  "$events" "$orders_in" "$customers_in"
printf 'decisions:        %d\n' "$decisions"
echo 'decisions by rule:'
jq -r '.rule_id' "$LP_TMP/decisions.jsonl" | sort | uniq -c | sort -rn |
  awk '{printf "  %-32s %d\n", $2, $1}'
printf 'dead letters:     %d\n' "$dead"
jq -r '"  " + .source_topic + "@" + (.source_offset|tostring) + ": " + .reason' \
  "$LP_TMP/dlq.jsonl" | head -n 5
printf 'wall time:        %.1f s from the first record produced to both groups committed (%.0f events/s incl. start-up; make bench measures throughput)\n' \
  "$secs" "$(awk -v e="$events" -v s="$secs" 'BEGIN{print e / s}')"
echo 'sample decision:'
head -n 1 "$LP_TMP/decisions.jsonl" | jq -c '{decision_id, rule_id, customer_id, action, explanation: .explanation.summary}'
echo "======================================================"
echo "demo: events=$events decisions=$decisions dead_letters=$dead"
