# Operations: SIGHUP reloads rules without dropping events (an invalid file
# is rejected with file, position and reason and the old rules stay in
# force), /healthz and /metrics answer, --help lists every key, and SIGTERM
# finishes, commits and exits 0 within seconds.
set -euo pipefail
. tests/lib.sh
FX=tests/component/fixtures
lp_start_broker
lp_start_redis
mkdir -p "$LP_TMP/rules"
cp deploy/rules/seed.json "$LP_TMP/rules/"

"$BIN/order-processor" --help >"$LP_TMP/help.txt"
for key in group.id topic.input topic.decisions topic.dlq redis.host \
  redis.port redis.namespace redis.memo.ttl.s redis.cas.batch rules.path batch.size \
  max.in.flight http.port log.level shutdown.timeout.ms kafka.; do
  grep -q "^  $key" "$LP_TMP/help.txt" || lp_fail "--help does not list $key"
done
echo "ok: --help lists every key"
"$BIN/order-processor" -X no.such.key=1 2>"$LP_TMP/badconf.txt" && lp_fail "unknown key accepted"
grep -q 'unknown key "no.such.key"' "$LP_TMP/badconf.txt" || lp_fail "unknown key: $(cat "$LP_TMP/badconf.txt")"
echo "ok: unknown configuration key rejected"

lp_start_processor order-processor ops -X redis.namespace=ops \
  -X group.id=order-ops -X "rules.path=$LP_TMP/rules"
P=$LAST_PID
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$LP_TMP/ops.log" | head -n1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || lp_fail "no http port in the log"
lp_assert_eq "$(curl -s "http://127.0.0.1:$port/healthz")" ok "/healthz"

order() { # order ID CUSTOMER
  printf '{"event_id":"ops-%s","shop":"ops-shop","order_id":"%s","customer_id":"%s","event_time":"2024-05-01T10:00:00.000Z","status":"created","currency":"EUR","total":"10.00","subtotal":"10.00","discount":"0.00","tax":"0.00","discount_codes":[],"line_items":[],"source":"test"}\n' "$1" "$1" "$2"
}
order o1 m1 | lp_ctl produce --type order
lp_ctl wait --group order-ops --topic orders --timeout-ms 30000

# An invalid file: rejected with file and position, old rules kept.
printf '{"rules": [{"id": "broken", "version": 1, "on": "order",\n  "when": {"field": "event.total", "op": "=~", "value": 1},\n  "action": {"kind": "points", "points": 1}}]}\n' \
  >"$LP_TMP/rules/zz-broken.json"
kill -HUP "$P"
for _ in $(seq 50); do grep -q "rule reload rejected" "$LP_TMP/ops.log" && break; sleep 0.1; done
grep "rule reload rejected" "$LP_TMP/ops.log" | grep -q 'zz-broken.json: \$.rules\[0\].when.op: unknown operator' ||
  lp_fail "reload rejection without file/position/reason: $(grep reload "$LP_TMP/ops.log")"
echo "ok: invalid rules rejected with file, position and reason"
order o2 m2 | lp_ctl produce --type order
lp_ctl wait --group order-ops --topic orders --timeout-ms 30000

# A valid new rule: in force for the next event.
rm "$LP_TMP/rules/zz-broken.json"
printf '{"rules": [{"id": "ops-bonus", "version": 1, "on": "order", "priority": 1,\n  "when": {"field": "event.is_new_order", "op": "==", "value": true},\n  "action": {"kind": "points", "points": 7}}]}\n' \
  >"$LP_TMP/rules/zz-bonus.json"
kill -HUP "$P"
for _ in $(seq 50); do grep -q '"rules reloaded"' "$LP_TMP/ops.log" && break; sleep 0.1; done
grep -q '"rules reloaded","rules":8' "$LP_TMP/ops.log" || lp_fail "valid reload not applied"
order o3 m3 | lp_ctl produce --type order
lp_ctl wait --group order-ops --topic orders --timeout-ms 30000

lp_ctl consume --topic decisions --type decision >"$LP_TMP/d.jsonl"
rules_for() { jq -r "select(.customer_id == \"$1\") | .rule_id" "$LP_TMP/d.jsonl" | sort | tr '\n' ' '; }
lp_assert_eq "$(rules_for m1)" "points-per-order welcome " "m1 before any reload"
lp_assert_eq "$(rules_for m2)" "points-per-order welcome " "m2 after the rejected reload (old rules)"
lp_assert_eq "$(rules_for m3)" "ops-bonus points-per-order welcome " "m3 after the valid reload"

metrics=$(curl -s "http://127.0.0.1:$port/metrics")
for m in loyalty_records_consumed_total loyalty_records_produced_total \
  loyalty_dead_letters_total loyalty_decisions_by_rule_total \
  loyalty_processing_latency_seconds_bucket loyalty_rule_reload_failures_total; do
  grep -q "^$m{" <<<"$metrics" || lp_fail "/metrics lacks $m"
done
lp_assert_eq "$(awk '$1 ~ /^loyalty_records_consumed_total/ {print $2}' <<<"$metrics")" 3 "consumed metric"
lp_assert_eq "$(awk '$1 ~ /^loyalty_rule_reload_failures_total/ {print $2}' <<<"$metrics")" 1 "reload failure metric"

start=$(date +%s%N)
lp_stop_pid "$P"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 5000 ] || lp_fail "SIGTERM took ${ms} ms"
grep -q '"msg":"stopped"' "$LP_TMP/ops.log" || lp_fail "no clean stop logged"
echo "ok: SIGTERM: clean exit 0 in ${ms} ms"
