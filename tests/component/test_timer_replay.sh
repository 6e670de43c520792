#!/usr/bin/env bash
# (issue 6) Member timers decide the same whatever the batching and claim
# timing, on generated traffic with cancellations (docs/timers.md
# "Planning"): 10,000 orders of 1,000 members (about 2% cancelled) go
# through the order-processor three times, each into a fresh namespace:
#   live    batches of 1000, claims spaced 1 s (the defaults);
#   replay  batches of 7;
#   eager   batches of 100, a claim at every batch boundary
#           (timers.fire.interval.ms=0), so far more timers fire by claim
#           and fewer with their member's next record.
# The timer decisions (decision id and trigger, every fired timer decides)
# must be identical across the three, and cover both kinds.
set -euo pipefail
. tests/lib.sh
lp_start_broker "orders:8,d-live:8,d-replay:8,d-eager:8,dlq:1"
lp_start_redis
RULES=tests/component/fixtures/timer-replay-rules
lp_ctl generate --customers 1000 --orders 10000 --seed 5 --only orders >/dev/null 2>&1
events=$(lp_ctl consume --topic orders --type order --idle-ms 1500 2>/dev/null >"$LP_TMP/orders.jsonl"; wc -l <"$LP_TMP/orders.jsonl")
cancels=$(jq -r 'select(.status == "cancelled") | .order_id' "$LP_TMP/orders.jsonl" | wc -l)
echo "orders topic: $events events, $cancels cancellations"
[ "$cancels" -gt 0 ] || lp_fail "the generated traffic has no cancellation"

run() { # run NAME [extra -X args]
  local name=$1
  shift
  lp_start_processor order-processor "order-$name" -X rules.path=$RULES \
    -X "redis.namespace=replay-$name" -X "group.id=order-$name" \
    -X "topic.decisions=d-$name" "$@"
  local pid=$LAST_PID
  lp_ctl wait --group "order-$name" --topic orders --timeout-ms 120000 >/dev/null
  lp_stop_pid "$pid" # fires what the final watermark passed
  lp_ctl consume --topic "d-$name" --type decision --idle-ms 1500 2>/dev/null |
    jq -r 'select(.trigger_kind != "order") | "\(.decision_id) \(.rule_id) \(.trigger_event_id)"' |
    sort >"$LP_TMP/$name.txt"
  echo "$name: $(wc -l <"$LP_TMP/$name.txt") timer decisions" \
    "($(awk '{print $2}' "$LP_TMP/$name.txt" | sort | uniq -c | tr -s ' ' | tr '\n' ' '))"
}
run live
run replay -X batch.size=7
run eager -X batch.size=100 -X timers.fire.interval.ms=0

n=$(wc -l <"$LP_TMP/live.txt")
[ "$n" -gt 1000 ] || lp_fail "only $n timer decisions in the live run"
for rule in winback-replay replenishment-replay; do
  grep -q " $rule " "$LP_TMP/live.txt" || lp_fail "no $rule decision"
done
dups=$(awk '{print $3}' "$LP_TMP/live.txt" | sort | uniq -d | wc -l)
lp_assert_eq "$dups" 0 "no timer fired twice at one due"
lp_assert_files_eq "$LP_TMP/live.txt" "$LP_TMP/replay.txt" \
  "the replay in batches of 7 decides the live run's timers"
lp_assert_files_eq "$LP_TMP/live.txt" "$LP_TMP/eager.txt" \
  "claims at every batch boundary decide the same timers"
echo "timer replay: ok"
