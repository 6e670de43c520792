#!/usr/bin/env bash
# make bench: order-processor throughput against the bare consume->produce
# passthrough on the same devbroker and the same input, in the same run.
# Each figure is the median of BENCH_RUNS runs (default 3), alternating the
# two so machine noise hits both alike. Prints "bench: name=value" lines.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
. tests/lib.sh

ORDERS=${BENCH_ORDERS:-200000}
CUSTOMERS=${BENCH_CUSTOMERS:-20000}
RUNS=${BENCH_RUNS:-3}

# 16 partitions keep each one under the mock cluster's ~5 MiB history.
lp_start_broker "orders:16,customers:16,decisions:16,dlq:2,passthrough:16"
lp_start_redis
echo "bench: preloading $ORDERS orders for $CUSTOMERS members" >&2
lp_ctl generate --customers "$CUSTOMERS" --orders "$ORDERS" --seed 11 2>&1 >&2
total=$(lp_ctl consume --topic orders --type order --idle-ms 3000 2>/dev/null | wc -l)
echo "bench: $total order events in the topic" >&2

metric() { # metric PORT NAME -> value (0 when unreadable)
  local v
  v=$(curl -s "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v n="$2" 'index($1, n "{") == 1 {print $2; exit}') || true
  echo "${v:-0}"
}

run_processor() { # run_processor RUN -> prints "eps rss_mb"
  local run=$1 log="$LP_TMP/order-bench-$run.log"
  "$BIN/order-processor" -X "bootstrap.file=$BOOTSTRAP_FILE" \
    -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" -X http.port=0 \
    -X rules.path=deploy/rules -X "redis.namespace=bench$run" \
    -X "group.id=bench-order-$run" \
    -X topic.decisions=decisions 2>"$log" &
  local pid=$! port=""
  LP_PIDS+=("$pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "no http port: $(cat "$log")" >&2; return 1; }
  # Time from the first consumed record to the last input record finished.
  local t0="" c=0
  while :; do
    c=$(metric "$port" loyalty_records_consumed_total)
    if [ "${c:-0}" != 0 ] && [ -z "$t0" ]; then t0=$(date +%s.%N); fi
    [ "${c:-0}" -ge "$total" ] && break
    sleep 0.02
  done
  while [ "$(metric "$port" loyalty_in_flight_records)" != 0 ]; do sleep 0.02; done
  local t1
  t1=$(date +%s.%N)
  local rss
  rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
  lp_stop_pid "$pid"
  awk -v n="$total" -v a="$t0" -v b="$t1" -v r="$rss" \
    'BEGIN {printf "%.0f %s\n", n / (b - a), r}'
}

run_passthrough() { # run_passthrough RUN -> prints eps
  lp_ctl passthrough --from orders --to passthrough --group "bench-pt-$1" \
    --count "$total" | sed -n 's/.*eps=\([0-9]*\).*/\1/p'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

order_eps=() pt_eps=() rss=()
for run in $(seq "$RUNS"); do
  pt_eps+=("$(run_passthrough "$run")")
  read -r eps mb < <(run_processor "$run")
  order_eps+=("$eps"); rss+=("$mb")
  echo "bench: run $run: passthrough=${pt_eps[-1]}/s order=${eps}/s rss=${mb}MB" >&2
done
o=$(printf '%s\n' "${order_eps[@]}" | median)
p=$(printf '%s\n' "${pt_eps[@]}" | median)
r=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n1)
echo "bench: order_eps=$o"
echo "bench: passthrough_eps=$p"
echo "bench: order_vs_passthrough=$(awk -v a="$o" -v b="$p" 'BEGIN {printf "%.3f", a / b}')"
echo "bench: order_rss_mb=$r"
