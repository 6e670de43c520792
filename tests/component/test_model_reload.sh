#!/usr/bin/env bash
# Member-value model while the processor runs: without a model rules see
# no scores; a model the trainer publishes to Redis is picked up without
# a restart and every decision's explanation names it; a malformed model
# is rejected with the key, the JSON path and the reason, and the
# previous model stays in force; a newer valid model replaces it; a
# processor pinned to a versioned key keeps that version.
set -euo pipefail
. tests/lib.sh
lp_start_broker
lp_start_redis
mkdir -p "$LP_TMP/rules"
cp deploy/rules/seed.json "$LP_TMP/rules/"
cat >"$LP_TMP/rules/scored.json" <<'EOF'
{"rules": [{"id": "scored-member", "version": 1, "on": "order", "priority": 1,
  "when": {"all": [
    {"field": "event.is_new_order", "op": "==", "value": true},
    {"field": "profile.p_alive", "op": "exists", "value": true},
    {"field": "profile.value_segment", "op": "exists", "value": true}]},
  "action": {"kind": "points", "points": 3}}]}
EOF
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

lp_start_processor order-processor mr -X redis.namespace=mr \
  -X group.id=order-mr -X "rules.path=$LP_TMP/rules" -X model.poll.ms=100
P=$LAST_PID

n=0
order() { # order CUSTOMER DATE: a new order of 40.00
  n=$((n + 1))
  printf '{"event_id":"mr-%d","shop":"mr-shop","order_id":"mr-o%d","customer_id":"%s","event_time":"%sT10:00:00.000Z","status":"created","currency":"USD","total":"40.00","subtotal":"40.00","discount":"0.00","tax":"0.00","discount_codes":[],"line_items":[],"source":"test"}\n' \
    "$n" "$n" "$1" "$2" | lp_ctl produce --type order
  lp_ctl wait --group order-mr --topic orders --timeout-ms 30000
}
# decisions_of EVENT_ID: that event's decisions as JSON lines
decisions_of() {
  lp_ctl consume --topic decisions --type decision --idle-ms 1000 |
    jq -c --arg e "$1" 'select(.trigger_event_id == $e)'
}
wait_log() { # wait_log PATTERN COUNT
  for _ in $(seq 100); do
    [ "$(grep -c "$1" "$LP_TMP/mr.log" || true)" -ge "$2" ] && return 0
    sleep 0.1
  done
  lp_fail "log never showed $2 x '$1': $(tail -n 5 "$LP_TMP/mr.log")"
}

# 1. No model yet: a warning, and rules see no scores.
wait_log "no model available yet" 1
order m1 1997-02-01
order m1 1997-03-01
lp_assert_eq "$(decisions_of mr-2 | jq -r .rule_id | sort | tr '\n' ' ')" \
  "points-per-order " "without a model the score rule does not fire"
lp_assert_eq "$(decisions_of mr-2 | jq -r .explanation.model_version | sort -u)" \
  null "without a model explanations name none"

# 2. The trainer publishes a model: picked up by the running process.
"$BIN/trainer" --cdnow tests/unit/fixtures/cdnow_sample.txt \
  --out "$LP_TMP/a.json" --redis "127.0.0.1:$REDIS_PORT" --namespace mr \
  2>"$LP_TMP/train-a.log"
A=$(jq -r .version "$LP_TMP/a.json")
wait_log "\"model in force\",\"version\":\"$A\"" 1
order m1 1997-04-01
lp_assert_eq "$(decisions_of mr-3 | jq -r .rule_id | sort | tr '\n' ' ')" \
  "points-per-order scored-member " "with the model the score rule fires"
lp_assert_eq "$(decisions_of mr-3 | jq -r .explanation.model_version | sort -u)" \
  "$A" "every decision names the model in force"
pa=$(decisions_of mr-3 | jq -r 'select(.rule_id == "scored-member") |
  .explanation.features[] | select(.name == "profile.p_alive") | .value')
awk -v p="$pa" 'BEGIN { exit !(p > 0 && p <= 1) }' ||
  lp_fail "p_alive feature '$pa' not in (0, 1]"
echo "ok: the explanation carries the score read (p_alive $pa)"

# 3. A malformed model: rejected with key, path and reason; A stays.
rcli SET mr:model:clv "$(jq -c '.bgnbd.r = -1 | .version = "broken-1"' "$LP_TMP/a.json")" >/dev/null
wait_log "model rejected; the previous model stays in force" 1
grep "model rejected" "$LP_TMP/mr.log" |
  grep -q 'mr:model:clv: \$.bgnbd.r: must be a positive number, got -1' ||
  lp_fail "rejection lacks key/path/reason: $(grep 'model rejected' "$LP_TMP/mr.log")"
echo "ok: malformed model rejected with key, path and reason"
rcli SET mr:model:clv '{"version": "x", "time_unit": ' >/dev/null
wait_log "model rejected; the previous model stays in force" 2
grep "model rejected" "$LP_TMP/mr.log" | tail -n 1 | grep -q 'mr:model:clv: line 1 column' ||
  lp_fail "invalid JSON rejection lacks its position"
echo "ok: invalid JSON rejected with its position"
order m1 1997-05-01
lp_assert_eq "$(decisions_of mr-4 | jq -r .explanation.model_version | sort -u)" \
  "$A" "after rejections the previous model stays in force"

# 4. A newer model (other scoring settings, so another version).
echo '{"annual_discount_rate": 0.2, "churn_high_below": 0.25}' >"$LP_TMP/scoring.json"
"$BIN/trainer" --cdnow tests/unit/fixtures/cdnow_sample.txt --scoring "$LP_TMP/scoring.json" \
  --out "$LP_TMP/b.json" --redis "127.0.0.1:$REDIS_PORT" --namespace mr \
  2>"$LP_TMP/train-b.log"
B=$(jq -r .version "$LP_TMP/b.json")
[ "$A" != "$B" ] || lp_fail "scoring settings did not change the version"
wait_log "\"model in force\",\"version\":\"$B\"" 1
order m1 1997-06-01
lp_assert_eq "$(decisions_of mr-5 | jq -r .explanation.model_version | sort -u)" \
  "$B" "the newer model is in force"
kill -0 "$P" || lp_fail "the processor is gone"
lp_assert_eq "$(grep -c '"rules loaded"' "$LP_TMP/mr.log")" 1 "no restart"

port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$LP_TMP/mr.log" | head -n1)
metrics=$(curl -s "http://127.0.0.1:$port/metrics")
lp_assert_eq "$(awk '$1 ~ /^loyalty_model_loads_total/ {print $2}' <<<"$metrics")" 2 "model loads metric"
lp_assert_eq "$(awk '$1 ~ /^loyalty_model_rejects_total/ {print $2}' <<<"$metrics")" 2 "model rejects metric"
lp_stop_pid "$P"

# 5. Pinned to A's versioned key: B, current since, is not used.
[ "$(rcli GET "mr:model:clv:$A" | jq -r .version)" = "$A" ] ||
  lp_fail "the trainer did not keep the versioned key mr:model:clv:$A"
lp_start_processor order-processor pin -X redis.namespace=mr \
  -X group.id=order-pin -X "rules.path=$LP_TMP/rules" -X "model.key=model:clv:$A"
PIN=$LAST_PID
lp_ctl wait --group order-pin --topic orders --timeout-ms 30000
lp_stop_pid "$PIN"
grep -q "\"model in force\",\"version\":\"$A\"" "$LP_TMP/pin.log" ||
  lp_fail "pinned processor did not load $A"
echo "ok: a processor pinned to model:clv:$A uses it"
echo "PASS"
