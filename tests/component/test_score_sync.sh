#!/usr/bin/env bash
# Score sync end to end: with a model in force, the shipped score-sync
# rule decides score_sync decisions carrying the member's scores just
# after each order; the executor writes them to Klaviyo's profile (the
# sandbox) as profile properties, and only when they moved: a sync with
# the same scores is blocked as unchanged, an older one as older than the
# last sync, and the member's last sync is kept in Redis.
set -euo pipefail
. tests/lib.sh
lp_start_broker
lp_start_redis
lp_start_sandbox
"$BIN/trainer" --cdnow tests/unit/fixtures/cdnow_sample.txt \
  --out "$LP_TMP/model.json" --redis "127.0.0.1:$REDIS_PORT" --namespace ss \
  2>"$LP_TMP/trainer.log"
MODEL=$(jq -r .version "$LP_TMP/model.json")
lp_start_processor order-processor ss -X redis.namespace=ss -X group.id=order-ss

n=0
order() { # order DATE TOTAL: a new order of member m1
  n=$((n + 1))
  printf '{"event_id":"ss-%d","shop":"ss-shop","order_id":"ss-o%d","customer_id":"m1","event_time":"%sT10:00:00.000Z","status":"created","currency":"USD","total":"%s","subtotal":"%s","discount":"0.00","tax":"0.00","discount_codes":[],"line_items":[],"source":"test"}\n' \
    "$n" "$n" "$1" "$2" "$2"
}
{
  order 1997-01-05 30.00 # 1st order: synced
  order 1997-01-20 30.00 # 2nd: not a sync order
  order 1997-02-10 30.00 # 3rd: synced
  order 1997-02-11 30.00 # 4th: not a sync order, member not at risk
  order 1997-12-01 30.00 # 5th, after ten months at high churn risk: synced
} | lp_ctl produce --type order
lp_ctl wait --group order-ss --topic orders --timeout-ms 30000
lp_ctl consume --topic decisions --type decision --idle-ms 1000 |
  jq -c 'select(.rule_id == "score-sync")' >"$LP_TMP/syncs.jsonl"
lp_assert_eq "$(jq -r .trigger_event_id "$LP_TMP/syncs.jsonl" | tr '\n' ' ')" \
  "ss-1 ss-3 ss-5 " "score-sync decisions on the 1st and 3rd order and the at-risk member's return"
lp_assert_eq "$(jq -r '.action.kind' "$LP_TMP/syncs.jsonl" | sort -u)" score_sync "their kind"
lp_assert_eq "$(jq -r '.action.attributes[] | select(.name == "loyalty_model_version") | .value' \
  "$LP_TMP/syncs.jsonl" | sort -u)" "$MODEL" "they name the model"
lp_assert_eq "$(jq -r '.action.attributes[] | select(.name == "loyalty_segment") | .value' \
  "$LP_TMP/syncs.jsonl" | head -n 1)" new "the first order's member is new"

"$BIN/executor" -X "bootstrap.file=$BOOTSTRAP_FILE" -X redis.host=127.0.0.1 \
  -X "redis.port=$REDIS_PORT" -X http.port=0 -X redis.namespace=ss \
  -X group.id=exec-ss -X topic.actions=actions-ss \
  -X "loyaltylion.url=$SANDBOX_URL" -X loyaltylion.key=sandbox-ll-key \
  -X "klaviyo.url=$SANDBOX_URL" -X klaviyo.key=pk_sandbox \
  -X score_sync.min.p_alive=0.05 -X score_sync.min.clv=0.10 \
  2>>"$LP_TMP/executor.log" &
EXEC_PID=$!
LP_PIDS+=("$EXEC_PID")
lp_ctl wait --group exec-ss --topic decisions --timeout-ms 60000
results() {
  lp_ctl consume --topic actions-ss --type action_result --idle-ms 1000 |
    jq -r 'select(.action_kind == "score_sync") |
      "\(.trigger_event_id) \(.outcome) \(.guardrail // "-")"'
}
results >"$LP_TMP/results.txt"
cat "$LP_TMP/results.txt"
lp_assert_eq "$(wc -l <"$LP_TMP/results.txt")" 3 "one result per score sync"
# The newest sync is sent; the older ones, taken one at a time per member,
# are sent before it or refused after it, never after it.
grep -q '^ss-5 issued' "$LP_TMP/results.txt" ||
  lp_fail "the newest sync (after ten months, scores moved) was not issued"
if grep -v '^ss-5 ' "$LP_TMP/results.txt" |
  grep -v -E ' (issued ok|blocked score_sync:older_than_last_sync)$'; then
  lp_fail "an older sync was neither sent nor refused as older"
fi
echo "ok: older syncs sent before the newest or refused as older"

# The sandbox's Klaviyo profile holds the newest issued sync's values (by
# event time: the executor may carry the syncs out in any order, the
# newest wins in Redis).
last=$(grep ' issued ' "$LP_TMP/results.txt" | cut -d' ' -f1 | sort -t- -k2 -n | tail -n 1)
want=$(jq -c --arg e "$last" 'select(.trigger_event_id == $e) | .action.attributes |
  map(select(.name == "loyalty_p_alive" or .name == "loyalty_segment")) |
  map({(.name): .value}) | add' "$LP_TMP/syncs.jsonl")
profiles=$(curl -sf "$SANDBOX_URL/_sandbox/ledger" |
  jq -c '[.effects[] | select(.platform == "klaviyo" and .kind == "profile")]')
lp_assert_eq "$(jq length <<<"$profiles")" \
  "$(grep -c ' issued ' "$LP_TMP/results.txt")" "one profile write per issued sync"
lp_assert_eq "$(jq -r '.[0].member' <<<"$profiles")" "ss-shop:m1" "written to the member's profile"
# The newest write carries that sync's scores as profile properties
# (P(alive) a number, the segment a string).
at=$(jq -r --arg e "$last" 'select(.trigger_event_id == $e) | .action.attributes[] |
  select(.name == "loyalty_scored_at") | .value' "$LP_TMP/syncs.jsonl")
props=$(jq -c --arg at "$at" '.[] | .body.data.attributes.properties |
  select(.loyalty_scored_at == $at)' <<<"$profiles")
lp_assert_eq "$(jq -c '{loyalty_p_alive: (.loyalty_p_alive | tostring | tonumber), loyalty_segment}' <<<"$props")" \
  "$(jq -c '{loyalty_p_alive: (.loyalty_p_alive | tonumber), loyalty_segment}' <<<"$want")" \
  "the profile properties are the sync's scores"
jq -e '.loyalty_p_alive | type == "number"' <<<"$props" >/dev/null ||
  lp_fail "loyalty_p_alive is not a number on the profile"
got=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" HGET "ss:sync:{ss-shop:m1}" s)
lp_assert_eq "$got" "$(jq -r .loyalty_segment <<<"$want")" "the member's last sync in Redis"

# The same scores again (a later event): unchanged. An older one: refused.
again=$(jq -c --arg e "$last" 'select(.trigger_event_id == $e) |
  .decision_id = "00000000000000000000000000000a01" | .trigger_event_id = "ss-again" |
  .event_time = "1998-01-01T00:00:00.000Z"' "$LP_TMP/syncs.jsonl")
older=$(jq -c 'select(.trigger_event_id == "ss-1") |
  .decision_id = "00000000000000000000000000000a02" | .trigger_event_id = "ss-older" |
  .action.attributes |= map(if .name == "loyalty_p_alive" then .value = "0.010000" else . end)' \
  "$LP_TMP/syncs.jsonl")
printf '%s\n%s\n' "$again" "$older" |
  lp_ctl produce --type decision --key ss-shop:m1 >/dev/null
lp_ctl wait --group exec-ss --topic decisions --timeout-ms 30000
results >"$LP_TMP/results2.txt"
grep -q '^ss-again blocked score_sync:unchanged$' "$LP_TMP/results2.txt" ||
  lp_fail "same scores were not blocked as unchanged: $(cat "$LP_TMP/results2.txt")"
echo "ok: the same scores again are blocked as unchanged"
grep -q '^ss-older blocked score_sync:older_than_last_sync$' "$LP_TMP/results2.txt" ||
  lp_fail "an older sync was not refused: $(cat "$LP_TMP/results2.txt")"
echo "ok: a sync older than the last one is refused"
lp_assert_eq "$(curl -sf "$SANDBOX_URL/_sandbox/ledger" |
  jq '[.effects[] | select(.kind == "profile")] | length')" "$(jq length <<<"$profiles")" \
  "no profile write for blocked syncs"
lp_stop_pid "$EXEC_PID"
echo "PASS"
