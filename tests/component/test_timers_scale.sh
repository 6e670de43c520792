# (issue 6) Two order-processors in one group share 100,000 member timers
# over 8 partitions and fire each exactly once, also when one of them is
# SIGKILLed while firing: the survivor takes over its partitions, fires
# what it had not claimed and, after the lease, what it had claimed but not
# acknowledged. Every timer yields one decision id; a timer fired twice
# (the killed one's unacknowledged claims) carries the same id both times,
# so the executor issues it once; no timer is left in Redis.
set -euo pipefail
. tests/lib.sh
lp_start_broker "orders:8,decisions:16,dlq:1"
lp_start_redis
N=${TIMERS_SCALE_N:-100000}
RULES=tests/component/fixtures/timer-rules-scale
DAY=86400000
T0=$(( ($(date +%s) / 86400 - 100) * DAY ))
FAST=(-X kafka.session.timeout.ms=6000 -X kafka.heartbeat.interval.ms=500)
start() { # start NAME
  lp_start_processor order-processor "$1" -X rules.path=$RULES \
    -X redis.namespace=scale -X group.id=order-scale \
    -X topic.decisions=decisions -X timers.lateness.ms=0 \
    -X timers.wall.clock=false -X timers.lease.ms=4000 "${FAST[@]}"
}
metric() { # metric LOG NAME
  local port
  port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$LP_TMP/$1.log" | head -n1)
  local body
  body=$(curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null) || true
  awk -v n="$2" 'index($1, n "{") == 1 {print $2; exit}' <<<"$body"
}
start order-a; A=$LAST_PID
start order-b; B=$LAST_PID
for _ in $(seq 100); do
  grep -q "partitions assigned" "$LP_TMP/order-a.log" &&
    grep -q "partitions assigned" "$LP_TMP/order-b.log" && break
  sleep 0.2
done

# N members with one order each on day 0 (win-back due on day 45), then
# 200 members ordering on day 50: every partition's event time passes day
# 45 and all N timers are due.
awk -v n="$N" -v t0="$T0" 'BEGIN {
  for (i = 0; i < n; i++) {
    s = (t0 + i) / 1000
    printf "{\"event_id\":\"s%d\",\"shop\":\"sc\",\"order_id\":\"s%d\",\"customer_id\":\"m%d\",\"event_time\":\"%s.%03dZ\",\"status\":\"created\",\"currency\":\"EUR\",\"total\":\"10.00\",\"subtotal\":\"10.00\",\"discount\":\"0.00\",\"tax\":\"0.00\",\"discount_codes\":[],\"line_items\":[{\"product_id\":\"p\",\"sku\":\"s\",\"category\":\"c\",\"brand\":\"b\",\"quantity\":1,\"unit_price\":\"10.00\"}],\"source\":\"test\"}\n", i, i, i, strftime("%Y-%m-%dT%H:%M:%S", int(s), 1), (t0 + i) % 1000
  }
  for (i = 0; i < 200; i++) {
    s = (t0 + 50 * 86400000) / 1000
    printf "{\"event_id\":\"k%d\",\"shop\":\"sc\",\"order_id\":\"k%d\",\"customer_id\":\"clock%d\",\"event_time\":\"%s.000Z\",\"status\":\"created\",\"currency\":\"EUR\",\"total\":\"10.00\",\"subtotal\":\"10.00\",\"discount\":\"0.00\",\"tax\":\"0.00\",\"discount_codes\":[],\"line_items\":[],\"source\":\"test\"}\n", i, i, i, strftime("%Y-%m-%dT%H:%M:%S", int(s), 1)
  }
}' >"$LP_TMP/orders.jsonl"
lp_ctl produce --type order <"$LP_TMP/orders.jsonl"

# Kill A as soon as it is firing.
killed_at=""
for _ in $(seq 3000); do
  fa=$(metric order-a loyalty_timers_fired_total)
  if [ "${fa:-0}" -gt 0 ]; then
    kill -KILL "$A"
    killed_at=$fa
    break
  fi
  sleep 0.01
done
[ -n "$killed_at" ] || lp_fail "A never fired a timer"
echo "SIGKILLed A after it had fired $killed_at timers"

# B takes A's partitions over and fires the rest (the killed claims after
# their 4 s lease).
r() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
pending() {
  local total=0
  for p in $(seq 0 7); do
    total=$((total + $(r ZCARD "scale:orders:tm:$p:due") + $(r ZCARD "scale:orders:tm:$p:fly")))
  done
  echo "$total"
}
for _ in $(seq 600); do
  [ "$(pending)" -le 200 ] && break # the 200 clock members' own timers
  sleep 0.2
done
lp_assert_eq "$(pending)" 200 "every due timer fired and acknowledged (left: the clock members' day-95 timers)"
fb=$(metric order-b loyalty_timers_fired_total)
echo "B fired $fb timers"
[ "${fb:-0}" -gt 0 ] || lp_fail "B fired nothing"
lp_stop_pid "$B"

lp_ctl consume --topic decisions --type decision --idle-ms 3000 |
  jq -r '[.trigger_event_id, .decision_id] | @tsv' >"$LP_TMP/fired.tsv"
total=$(wc -l <"$LP_TMP/fired.tsv")
distinct=$(cut -f1 "$LP_TMP/fired.tsv" | sort -u | wc -l)
ids=$(cut -f2 "$LP_TMP/fired.tsv" | sort -u | wc -l)
pairs=$(sort -u "$LP_TMP/fired.tsv" | wc -l)
echo "decisions: $total records, $distinct timers, $ids decision ids, $((total - distinct)) re-fired"
lp_assert_eq "$distinct" "$N" "every timer fired"
lp_assert_eq "$ids" "$N" "one decision id per timer"
lp_assert_eq "$pairs" "$N" "a re-fired timer carries the same decision id"
expected=$(awk -v n="$N" -v t0="$T0" 'BEGIN {for (i = 0; i < n; i++) printf "winback:sc:m%d:winback-45d-scale@%.0f\n", i, t0 + i + 45 * 86400000}' | sort)
cut -f1 "$LP_TMP/fired.tsv" | sort -u >"$LP_TMP/fired-ids.txt"
echo "$expected" >"$LP_TMP/expected-ids.txt"
lp_assert_eq "$(cmp "$LP_TMP/fired-ids.txt" "$LP_TMP/expected-ids.txt" && echo same)" \
  same "the fired timers are exactly the members' day-45 win-backs"
# The re-fires are bounded by what A had claimed and not acknowledged.
# At most what A had claimed and not acknowledged: FIRED_IN_FLIGHT_MAX
# (4000) plus one claim (1000), common/stream_timers.c.
[ $((total - distinct)) -le 5000 ] || lp_fail "too many re-fires: $((total - distinct))"
