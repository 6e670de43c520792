# (b) Redelivery: every record consumed a second time (a second consumer
# group over the same namespace reads the topics again from offset 0, after
# all later events were applied) leaves the profiles exactly as one pass
# left them, and re-emits decisions with identical ids and contents.
set -euo pipefail
. tests/lib.sh
lp_start_broker
lp_start_redis
lp_ctl generate --customers 300 --orders 3000 --seed 5

# Decisions on events are re-emitted by a redelivery; a fired timer's are
# not (it fired once; redelivered records do not bring it back), and the
# ones that fire later never come twice.
event_decisions() { jq -c 'select(.trigger_kind == "order" or .trigger_kind == "customer")'; }
lp_run_sequential ns1 pass1 decisions
lp_decisions decisions | event_decisions >"$LP_TMP/first.jsonl"
lp_dump_profiles ns1 >"$LP_TMP/profiles1.txt"
n1=$(wc -l <"$LP_TMP/first.jsonl")
[ "$n1" -gt 100 ] || lp_fail "first pass made only $n1 decisions"
lp_assert_eq "$(grep -c '^:c:' "$LP_TMP/profiles1.txt")" 300 "members with a customer part"

# Both processors at once this time: redelivery must not depend on order.
lp_start_pipeline ns1 pass2 decisions
lp_wait_drained pass2
lp_stop_pid "$ORDER_PID"; lp_stop_pid "$CUSTOMER_PID"
lp_decisions decisions >"$LP_TMP/with-timers.jsonl"
event_decisions <"$LP_TMP/with-timers.jsonl" >"$LP_TMP/all.jsonl"
jq -r 'select(.trigger_kind != "order" and .trigger_kind != "customer") | .decision_id' \
  "$LP_TMP/with-timers.jsonl" | sort >"$LP_TMP/timer-ids.txt"
lp_assert_eq "$(uniq -d "$LP_TMP/timer-ids.txt" | wc -l)" 0 \
  "no timer decision emitted twice ($(wc -l <"$LP_TMP/timer-ids.txt") timer decisions)"
lp_dump_profiles ns1 >"$LP_TMP/profiles2.txt"

lp_assert_files_eq "$LP_TMP/profiles2.txt" "$LP_TMP/profiles1.txt" \
  "profiles after redelivery equal one pass"
lp_assert_eq "$(wc -l <"$LP_TMP/all.jsonl")" "$((2 * n1))" \
  "every decision emitted again"
sort -u "$LP_TMP/all.jsonl" >"$LP_TMP/distinct.jsonl"
lp_assert_files_eq "$LP_TMP/distinct.jsonl" "$LP_TMP/first.jsonl" \
  "re-emitted decisions identical in id and content"
