#!/usr/bin/env bash
# The executor SIGKILLed at random moments while it carries out 5,000
# point awards on the LoyaltyLion sandbox (20 ms per call, 16 in flight),
# six times, each time restarted; then run to the end. Every decision
# must be in the ledger exactly once: none missing, none twice. Claims of
# the killed executors run out (exec.lease.ms) and are taken over and
# checked against the member's transactions before any resend.
set -euo pipefail
. tests/lib.sh
lp_start_broker "decisions:8,actions:8,dlq:2"
lp_start_redis
lp_start_sandbox -X loyaltylion.rate=100000 -X fault.latency_ms=20

N=5000
# Synthetic point awards for 500 members (no profiles: exec.check.member
# is off for this test).
awk -v n=$N 'BEGIN {
  for (i = 0; i < n; i++)
    printf "{\"decision_id\":\"%032x\",\"shop\":\"kill-shop\",\"customer_id\":\"c%d\",\"trigger_event_id\":\"e%d\",\"trigger_kind\":\"order\",\"rule_id\":\"points-per-order\",\"rule_version\":1,\"action\":{\"kind\":\"points\",\"points\":%d},\"estimated_cost\":\"0.10\",\"currency\":\"EUR\",\"event_time\":\"2024-03-01T12:00:00.000Z\",\"approval\":\"none\",\"explanation\":{\"summary\":\"points per order\",\"features\":[]}}\n", i + 1, i % 500, i, 10 + i % 90
}' >"$LP_TMP/decisions.jsonl"
lp_ctl produce --type decision <"$LP_TMP/decisions.jsonl"

run_executor() {
  "$BIN/executor" -X "bootstrap.file=$BOOTSTRAP_FILE" \
    -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" -X http.port=-1 \
    -X redis.namespace=kill -X group.id=exec-kill \
    -X "loyaltylion.url=$SANDBOX_URL" -X loyaltylion.key=sandbox-ll-key \
    -X loyaltylion.rate=0 -X exec.check.member=false -X platform.marketing=none \
    -X exec.lease.ms=1000 -X exec.platform.in.flight=16 \
    -X exec.max.in.flight=256 -X kafka.session.timeout.ms=6000 \
    -X kafka.heartbeat.interval.ms=500 \
    2>>"$LP_TMP/executor.log" &
  EXEC_PID=$!
  LP_PIDS+=("$EXEC_PID")
}

issued() { curl -sf "$SANDBOX_URL/_sandbox/ledger?platform=loyaltylion" | jq '.effects | length'; }

before=0
for round in 1 2 3 4 5 6; do
  run_executor
  # Kill it mid-stream: once it is issuing (the group join takes a few
  # seconds), after a random 0.1 .. 0.4 s more.
  for _ in $(seq 600); do
    [ "$(issued)" -gt $((before + 100)) ] && break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 4 + 1))"
  kill -KILL "$EXEC_PID"
  wait "$EXEC_PID" 2>/dev/null || true
  before=$(issued)
  echo "round $round: killed; effects so far: $before"
done
run_executor
lp_ctl wait --group exec-kill --topic decisions --timeout-ms 240000
lp_stop_pid "$EXEC_PID"

curl -sf "$SANDBOX_URL/_sandbox/ledger?platform=loyaltylion" |
  jq -r '.effects[].reference' | sed -n 's/.*\[\([0-9a-f]\{32\}\)\]$/\1/p' |
  sort >"$LP_TMP/got.txt"
jq -r .decision_id "$LP_TMP/decisions.jsonl" | sort >"$LP_TMP/want.txt"
dups=$(uniq -d "$LP_TMP/got.txt" | wc -l)
lp_assert_eq "$dups" 0 "decisions issued twice"
lp_assert_eq "$(sort -u "$LP_TMP/got.txt" | comm -13 - "$LP_TMP/want.txt" | wc -l)" 0 \
  "decisions missing"
lp_assert_eq "$(wc -l <"$LP_TMP/got.txt")" "$N" "effects in the ledger"
takeovers=$(grep -c 'taking over a claim' "$LP_TMP/executor.log" || true)
checked=$(grep -c 'earlier attempt found applied' "$LP_TMP/executor.log" || true)
echo "ok: $takeovers claims taken over, $checked found applied by the check"
[ "$takeovers" -gt 0 ] || lp_fail "no kill landed mid-call (no takeover): the test proved nothing"
echo "ok: executor under SIGKILL"
