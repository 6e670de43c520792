#!/usr/bin/env bash
# The executor's limits, against the sandbox:
#  1. a 429 storm on LoyaltyLion (the next 40 calls refused with
#     Retry-After: 1) and Klaviyo's own burst window exceeded -> every
#     decision is issued in the end, and the sandbox saw no request
#     before the time it had said (its "early" counter stays 0);
#  2. two executors in one group sharing a campaign budget of 300.00
#     under a demand of 1,000 decisions of 1.00 -> exactly 300 issued,
#     never more; with a budget of 2,000.00 all 1,000 are issued;
#  3. "apply, then drop the connection" on half the calls to Smile.io and
#     Braze -> Smile.io points exactly once each (checked through its
#     points transactions); Braze, which can neither dedupe nor be read
#     back, never twice: an unknown outcome is reported failed, not
#     resent.
set -euo pipefail
. tests/lib.sh
lp_start_broker "storm:4,budget:8,budget2:8,drops:4,actions:8,dlq:2"
lp_start_redis
lp_start_sandbox -X loyaltylion.rate=100000 -X klaviyo.events.burst=10

# synthetic N KIND COST: canonical JSON decisions (points on LoyaltyLion,
# or discount offers on Klaviyo), one member per 10.
synthetic() {
  awk -v n="$1" -v kind="$2" -v cost="$3" -v base="$4" -v prefix="${5-c}" 'BEGIN {
    for (i = 0; i < n; i++)
      printf "{\"decision_id\":\"%032x\",\"shop\":\"lim\",\"customer_id\":\"%s%d\",\"trigger_event_id\":\"e%d\",\"trigger_kind\":\"order\",\"rule_id\":\"campaign-x\",\"rule_version\":1,\"action\":{\"kind\":\"%s\",\"points\":%d,\"discount_percent\":%d},\"estimated_cost\":\"%s\",\"currency\":\"EUR\",\"event_time\":\"2024-03-01T12:00:00.000Z\",\"approval\":\"none\",\"explanation\":{\"summary\":\"limits test\",\"features\":[]}}\n", base + i, prefix, 1 + i % (n / 10 + 1), i, kind, kind == "points" ? 10 : 0, kind == "points" ? 0 : 10, cost
  }'
}

run_executor() { # run_executor NS GROUP TOPIC [extra -X...]: sets EXEC_PID
  local ns=$1 group=$2 topic=$3
  shift 3
  "$BIN/executor" -X "bootstrap.file=$BOOTSTRAP_FILE" \
    -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" -X http.port=-1 \
    -X "redis.namespace=$ns" -X "group.id=$group" -X "topic.input=$topic" \
    -X "loyaltylion.url=$SANDBOX_URL" -X loyaltylion.key=sandbox-ll-key \
    -X "klaviyo.url=$SANDBOX_URL" -X klaviyo.key=pk_sandbox \
    -X exec.check.member=false -X loyaltylion.rate=0 -X exec.retry.base.ms=20 \
    "$@" 2>>"$LP_TMP/executor-$group.log" &
  EXEC_PID=$!
  LP_PIDS+=("$EXEC_PID")
}
stats() { curl -sf "$SANDBOX_URL/_sandbox/stats"; }
ledger_count() { # ledger_count PLATFORM
  curl -sf "$SANDBOX_URL/_sandbox/ledger?platform=$1" | jq '.effects | length'
}

# 1. The storm. The executor's own Klaviyo pacing is set above the
# sandbox's burst window (10/s), so Klaviyo's 429s come from the window.
{
  synthetic 100 points 0.10 1
  synthetic 60 discount_code 0.10 1001
} | lp_ctl produce --type decision --topic storm
curl -sf -X POST "$SANDBOX_URL/_sandbox/faults" \
  -d '{"platform":"loyaltylion","burst_429":40,"retry_after_s":1}' >/dev/null
run_executor storm exec-storm storm -X klaviyo.rate=0
lp_ctl wait --group exec-storm --topic storm --timeout-ms 120000
lp_stop_pid "$EXEC_PID"
lp_assert_eq "$(ledger_count loyaltylion)" 100 "storm: every point award issued"
lp_assert_eq "$(ledger_count klaviyo)" 60 "storm: every offer issued"
s=$(stats)
lp_assert_eq "$(jq '.platforms.loyaltylion.by_status["429"] // 0' <<<"$s")" 40 \
  "storm: LoyaltyLion answered 429 forty times"
k429=$(jq '.platforms.klaviyo.by_status["429"] // 0' <<<"$s")
[ "$k429" -gt 0 ] || lp_fail "Klaviyo's window never refused a call"
echo "ok: Klaviyo refused $k429 calls over its burst window"
jq -c '.platforms | map_values({early, by_status})' <<<"$s"
lp_assert_eq "$(jq '[.platforms[].early] | add' <<<"$s")" 0 \
  "no request before the platform said it may be"

# 2. Two executors, one budget.
curl -sf -X POST "$SANDBOX_URL/_sandbox/reset" >/dev/null
synthetic 1000 points 1.00 5001 | lp_ctl produce --type decision --topic budget
run_executor shared exec-budget budget -X guard.campaign.budget=300.00
A=$EXEC_PID
run_executor shared exec-budget budget -X guard.campaign.budget=300.00
B=$EXEC_PID
lp_ctl wait --group exec-budget --topic budget --timeout-ms 120000
lp_stop_pid "$A"
lp_stop_pid "$B"
lp_assert_eq "$(ledger_count loyaltylion)" 300 "shared budget: exactly the budget issued"
spent=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --scan --pattern 'shared:b:{campaign-x}:*' |
  xargs redis-cli -h 127.0.0.1 -p "$REDIS_PORT" GET)
lp_assert_eq "$spent" 300000000 "shared budget: spend recorded (micros)"
both=$(jq -r 'select(.msg == "decision outcome") | .decision_id' "$LP_TMP/executor-exec-budget.log" |
  sort -u | wc -l)
lp_assert_eq "$both" 1000 "shared budget: every decision has an outcome"

curl -sf -X POST "$SANDBOX_URL/_sandbox/reset" >/dev/null
synthetic 1000 points 1.00 9001 | lp_ctl produce --type decision --topic budget2
run_executor roomy exec-budget2 budget2 -X guard.campaign.budget=2000.00
A=$EXEC_PID
run_executor roomy exec-budget2 budget2 -X guard.campaign.budget=2000.00
B=$EXEC_PID
lp_ctl wait --group exec-budget2 --topic budget2 --timeout-ms 120000
lp_stop_pid "$A"
lp_stop_pid "$B"
lp_assert_eq "$(ledger_count loyaltylion)" 1000 "budget above demand: all issued"

# 3. Dropped connections on Smile.io and Braze (numeric member ids: Smile
# identifies members by number).
curl -sf -X POST "$SANDBOX_URL/_sandbox/reset" >/dev/null
{
  synthetic 200 points 0.10 20001 ""
  synthetic 100 message 0 30001 ""
} | lp_ctl produce --type decision --topic drops
curl -sf -X POST "$SANDBOX_URL/_sandbox/faults" -d '{"platform":"smile","drop_rate":0.5}' >/dev/null
curl -sf -X POST "$SANDBOX_URL/_sandbox/faults" -d '{"platform":"braze","drop_rate":0.5}' >/dev/null
run_executor drops exec-drops drops -X platform.loyalty=smile -X platform.marketing=braze \
  -X "smile.url=$SANDBOX_URL" -X smile.key=sandbox-smile-key -X smile.rate=0 \
  -X "braze.url=$SANDBOX_URL" -X braze.key=sandbox-braze-key -X braze.rate=0 \
  -X topic.actions=actions-drops
lp_ctl wait --group exec-drops --topic drops --timeout-ms 120000
lp_stop_pid "$EXEC_PID"
curl -sf "$SANDBOX_URL/_sandbox/ledger?platform=smile" |
  jq -r '.effects[].reference' | sort >"$LP_TMP/smile.txt"
lp_assert_eq "$(uniq -d "$LP_TMP/smile.txt" | wc -l)" 0 "Smile.io: no award twice"
lp_assert_eq "$(sort -u "$LP_TMP/smile.txt" | wc -l)" 200 "Smile.io: every award once"
[ "$(stats | jq '.platforms.smile.dropped_after_apply')" -gt 0 ] || lp_fail "no Smile.io drop fired"
curl -sf "$SANDBOX_URL/_sandbox/ledger?platform=braze" |
  jq -r '.effects[].reference' | sort >"$LP_TMP/braze.txt"
lp_assert_eq "$(uniq -d "$LP_TMP/braze.txt" | wc -l)" 0 "Braze: no message twice"
lp_ctl consume --topic actions-drops --type action_result --idle-ms 1000 |
  jq -r 'select(.platform == "braze") | "\(.decision_id) \(.outcome)"' | sort -u >"$LP_TMP/braze-out.txt"
issued=$(grep -c ' issued$' "$LP_TMP/braze-out.txt" || true)
unknown=$(grep -c ' failed$' "$LP_TMP/braze-out.txt" || true)
lp_assert_eq "$((issued + unknown))" 100 "Braze: every message issued or reported unknown"
[ "$unknown" -gt 0 ] || lp_fail "no Braze drop fired"
# Every dropped call was applied by the sandbox: the ledger holds the
# issued ones and the unknown ones, each once.
lp_assert_eq "$(wc -l <"$LP_TMP/braze.txt")" 100 "Braze: ledger = issued + unknown"
echo "ok: Braze: $issued issued, $unknown reported unknown and not resent"
echo "ok: executor limits"
