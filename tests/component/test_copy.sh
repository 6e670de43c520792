#!/usr/bin/env bash
# Generated message copy: the executor asks the sandbox's OpenAI-compatible
# stub for a discount decision's text; text that keeps to the decision's
# amount goes with the Klaviyo event as loyalty_copy and the audit record
# says generated, with model, prompt and output; a wrong amount, an empty
# or too long answer, a timeout or a server error send the template alone,
# the decision is still issued once, and the record says why. Without
# copy.url nothing is asked.
set -euo pipefail
. tests/lib.sh
lp_start_broker
lp_start_redis
lp_start_sandbox -X llm.slow.ms=2000

# Members need a profile: one order each through the processor.
for m in c1 c2 c3 c4 c5 c6 c7; do
  printf '{"event_id":"cp-%s","shop":"cp-shop","order_id":"cp-o-%s","customer_id":"%s","event_time":"2026-01-05T10:00:00.000Z","status":"created","currency":"EUR","total":"10.00","subtotal":"10.00","discount":"0.00","tax":"0.00","discount_codes":[],"line_items":[],"source":"test"}\n' \
    "$m" "$m" "$m"
done | lp_ctl produce --type order
lp_start_processor order-processor cp -X redis.namespace=cp -X group.id=order-cp \
  -X topic.decisions=cp-ignored
lp_ctl wait --group order-cp --topic orders --timeout-ms 30000

decision() { # decision N CUSTOMER: a 15% discount decision as JSON
  printf '{"decision_id":"%032d","shop":"cp-shop","customer_id":"%s","trigger_event_id":"cp-t%d","trigger_kind":"order","rule_id":"we-miss-you","rule_version":1,"action":{"kind":"discount_code","points":0,"reward_id":null,"discount_percent":15,"discount_amount":"0.00","tier":null,"template_id":"we-miss-you","channel":"email","brand":"Acme","category":null,"attributes":[]},"estimated_cost":"1.50","currency":"EUR","event_time":"2026-01-06T10:00:00.000Z","approval":"none","explanation":{"rule_id":"we-miss-you","rule_version":1,"model_version":null,"summary":"we miss you","features":[]}}\n' \
    "$1" "$2" "$1"
}
llm_mode() {
  curl -sf -X POST -d "{\"mode\": \"$1\"}" "$SANDBOX_URL/_sandbox/llm" >/dev/null
}
start_executor() { # start_executor GROUP [extra -X...]
  local group=$1
  shift
  "$BIN/executor" -X "bootstrap.file=$BOOTSTRAP_FILE" -X redis.host=127.0.0.1 \
    -X "redis.port=$REDIS_PORT" -X http.port=0 -X redis.namespace=cp \
    -X "group.id=$group" -X topic.input=cp-decisions -X topic.actions=cp-actions \
    -X "loyaltylion.url=$SANDBOX_URL" -X loyaltylion.key=sandbox-ll-key \
    -X "klaviyo.url=$SANDBOX_URL" -X klaviyo.key=pk_sandbox "$@" \
    2>>"$LP_TMP/executor-$group.log" &
  EXEC_PID=$!
  LP_PIDS+=("$EXEC_PID")
}
result() { # result N: that decision's audit record
  lp_ctl consume --topic cp-actions --type action_result --idle-ms 1000 |
    jq -c --arg id "$(printf '%032d' "$1")" 'select(.decision_id == $id)' | tail -n 1
}
event_body() { # event_body N: the Klaviyo event the sandbox recorded for it
  curl -sf "$SANDBOX_URL/_sandbox/ledger" |
    jq -c --arg id "$(printf '%032d' "$1")" \
      '.effects[] | select(.platform == "klaviyo" and .reference == $id) | .body'
}
check() { # check N MODE SOURCE NOTE_PATTERN
  local n=$1 mode=$2 source=$3 note=$4 r
  r=$(result "$n")
  [ -n "$r" ] || lp_fail "$mode: no result for decision $n"
  lp_assert_eq "$(jq -r .outcome <<<"$r")" issued "$mode: the decision is issued"
  lp_assert_eq "$(jq -r .copy_source <<<"$r")" "$source" "$mode: copy source"
  if [ -n "$note" ]; then
    jq -r .copy_note <<<"$r" | grep -q -- "$note" ||
      lp_fail "$mode: copy_note '$(jq -r .copy_note <<<"$r")' lacks '$note'"
  fi
  lp_assert_eq "$(event_body "$n" | wc -l)" 1 "$mode: one Klaviyo event"
}

start_executor exec-cp -X "copy.url=$SANDBOX_URL/v1/chat/completions" \
  -X copy.key=sandbox-llm-key -X copy.model=stub-1 -X copy.timeout.ms=500 \
  -X copy.max.chars=300
n=0
for mode in ok wrong_amount empty long slow error; do
  n=$((n + 1))
  llm_mode "$mode"
  decision "$n" "c$n" | lp_ctl produce --topic cp-decisions --type decision --key "cp-shop:c$n" >/dev/null
  lp_ctl wait --group exec-cp --topic cp-decisions --timeout-ms 30000
  case $mode in
  ok)
    check "$n" ok generated ""
    r=$(result "$n")
    lp_assert_eq "$(jq -r .copy_model <<<"$r")" stub-1 "the model is recorded"
    jq -r .copy_prompt <<<"$r" | grep -q '^discount_percent: 15$' ||
      lp_fail "the prompt lacks the decision's percent: $(jq -r .copy_prompt <<<"$r")"
    out=$(jq -r .copy_output <<<"$r")
    grep -q '15%' <<<"$out" || lp_fail "the stub's text lacks 15%: $out"
    lp_assert_eq "$(event_body "$n" | jq -r .data.attributes.properties.loyalty_copy)" \
      "$out" "the text goes with the event as loyalty_copy"
    ;;
  wrong_amount) check "$n" "$mode" template "guardrail: the text names" ;;
  empty) check "$n" "$mode" template "empty" ;;
  long) check "$n" "$mode" template "too long" ;;
  slow) check "$n" "$mode" template "Timeout" ;;
  error) check "$n" "$mode" template "HTTP 500" ;;
  esac
  if [ "$mode" != ok ]; then
    lp_assert_eq "$(event_body "$n" | jq -r '.data.attributes.properties.loyalty_copy // "none"')" \
      none "$mode: no generated text sent"
  fi
done
lp_stop_pid "$EXEC_PID"

# Without copy.url: nothing asked, no copy fields.
before=$(curl -sf "$SANDBOX_URL/_sandbox/llm" | jq '.requests // .count // 0')
llm_mode ok
start_executor exec-plain
decision 7 c7 | lp_ctl produce --topic cp-decisions --type decision --key cp-shop:c7 >/dev/null
lp_ctl wait --group exec-plain --topic cp-decisions --timeout-ms 30000
r=$(result 7)
lp_assert_eq "$(jq -r .outcome <<<"$r")" issued "without copy.url the decision is issued"
lp_assert_eq "$(jq -r .copy_source <<<"$r")" null "without copy.url no copy is recorded"
lp_assert_eq "$(curl -sf "$SANDBOX_URL/_sandbox/llm" | jq '.requests // .count // 0')" \
  "$before" "without copy.url the model is not asked"
lp_stop_pid "$EXEC_PID"
echo "PASS"
