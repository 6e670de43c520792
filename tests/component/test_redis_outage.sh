# (f) Redis stopped for a few seconds mid-stream: processors wait, resume,
# and lose nothing — decisions and profiles equal a run without outage.
set -euo pipefail
. tests/lib.sh
lp_start_broker "orders:8,customers:8,decisions-ref:8,decisions-out:8,dlq:2"
lp_start_redis

lp_ctl generate --customers 500 --orders 8000 --seed 21 --only customers
lp_start_pipeline out out decisions-out
lp_ctl wait --group customer-out --topic customers --timeout-ms 120000
lp_ctl generate --customers 500 --orders 8000 --seed 21 --rate 2000 \
  --only orders &
GEN=$!
sleep 2
echo "stopping redis-server (saving its data)"
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" SHUTDOWN SAVE >/dev/null 2>&1 || true
wait "$REDIS_PID" 2>/dev/null || true
sleep 4
lp_restart_redis
echo "redis-server is back"
wait "$GEN"
lp_wait_drained out
grep -q 'redis unavailable' "$LP_TMP/order-out.log" ||
  lp_fail "the outage was not noticed by order-processor"
lp_stop_pid "$ORDER_PID"; lp_stop_pid "$CUSTOMER_PID"

lp_run_sequential ref ref decisions-ref

lp_decision_ids decisions-ref >"$LP_TMP/ref.ids"
lp_decision_ids decisions-out >"$LP_TMP/out.ids"
[ "$(wc -l <"$LP_TMP/ref.ids")" -gt 300 ] || lp_fail "too few decisions"
lp_assert_files_eq "$LP_TMP/out.ids" "$LP_TMP/ref.ids" \
  "decisions across a Redis outage"
lp_dump_profiles out >"$LP_TMP/p-out.txt"
lp_dump_profiles ref >"$LP_TMP/p-ref.txt"
lp_assert_files_eq "$LP_TMP/p-out.txt" "$LP_TMP/p-ref.txt" \
  "profiles across a Redis outage"
dl=$(lp_ctl consume --topic dlq --type dead_letter --idle-ms 1500 | wc -l)
lp_assert_eq "$dl" 0 "no dead letters from the outage"
