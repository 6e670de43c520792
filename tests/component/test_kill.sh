# (e) Two order-processors in one group over 8 partitions, one SIGKILLed
# mid-stream: the set of decision ids equals a single-process run (the
# topic may hold duplicates, nothing may be missing), and the profiles
# equal the single-process run's.
set -euo pipefail
. tests/lib.sh
lp_start_broker "orders:8,customers:8,decisions-single:8,decisions-ha:8,dlq:2"
lp_start_redis
FAST=(-X kafka.session.timeout.ms=6000 -X kafka.heartbeat.interval.ms=500)

# Members sign up first (customer-processor drains them), then the orders
# stream in over a few seconds while two order-processors share them.
lp_ctl generate --customers 800 --orders 12000 --seed 3 --only customers
lp_start_processor customer-processor customer-ha -X redis.namespace=ha \
  -X group.id=customer-ha -X topic.decisions=decisions-ha "${FAST[@]}"
C=$LAST_PID
lp_ctl wait --group customer-ha --topic customers --timeout-ms 120000
lp_start_processor order-processor order-a -X redis.namespace=ha \
  -X group.id=order-ha -X topic.decisions=decisions-ha "${FAST[@]}"
A=$LAST_PID
lp_start_processor order-processor order-b -X redis.namespace=ha \
  -X group.id=order-ha -X topic.decisions=decisions-ha "${FAST[@]}"
B=$LAST_PID
sleep 2 # both order-processors join and split the partitions
lp_ctl generate --customers 800 --orders 12000 --seed 3 --rate 3000 \
  --only orders &
GEN=$!
sleep 2
grep -q '"partitions assigned"' "$LP_TMP/order-a.log" ||
  lp_fail "processor A never got partitions"
kill -KILL "$A"
echo "SIGKILLed order-processor A mid-stream"
wait "$GEN"
lp_ctl wait --group order-ha --topic orders --timeout-ms 120000
lp_stop_pid "$B"; lp_stop_pid "$C"

# The reference: one processor of each kind over the same topics.
lp_run_sequential single single decisions-single

lp_decision_ids decisions-single >"$LP_TMP/single.ids"
lp_decision_ids decisions-ha >"$LP_TMP/ha.ids"
[ "$(wc -l <"$LP_TMP/single.ids")" -gt 500 ] || lp_fail "too few decisions"
lp_assert_files_eq "$LP_TMP/ha.ids" "$LP_TMP/single.ids" \
  "decision ids with a SIGKILL equal the single-process run"
lp_dump_profiles ha >"$LP_TMP/p-ha.txt"
lp_dump_profiles single >"$LP_TMP/p-single.txt"
lp_assert_files_eq "$LP_TMP/p-ha.txt" "$LP_TMP/p-single.txt" \
  "profiles with a SIGKILL equal the single-process run"
total=$(lp_ctl consume --topic decisions-ha --type decision | wc -l)
echo "decisions-ha holds $total records for $(wc -l <"$LP_TMP/ha.ids") ids"
