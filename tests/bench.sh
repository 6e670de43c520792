#!/usr/bin/env bash
# make bench: first the webhook bridge's signed webhooks/s and latency
# (its own section below; BENCH_ONLY=bridge runs only that); then
# order-processor throughput against the bare consume->produce
# passthrough on the same devbroker and the same input, in the same run;
# (with the member-value model in force and the shipped rules, which read
# its scores); then the executor's decisions/s against the sandbox platforms with 20 ms
# added latency and 64 calls in flight, and its Redis round trips per
# decision; then the trainer's CDNOW fit time and scoring rate.
# Each figure is the median of BENCH_RUNS runs (default 3), alternating the
# two so machine noise hits both alike. Prints "bench: name=value" lines.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
. tests/lib.sh

ORDERS=${BENCH_ORDERS:-200000}
CUSTOMERS=${BENCH_CUSTOMERS:-20000}
RUNS=${BENCH_RUNS:-3}
# BENCH_ORDER_ARGS: extra -X settings for order-processor (tuning runs).

# ==== bridge: Shopify webhooks/s with HMAC verification ====================
# The bridge on a devbroker and a redis-server of its own (stopped after),
# driven over loopback by tests/component/webhook_load: C keep-alive
# connections (BENCH_BRIDGE_CONNECTIONS, default 16: with 8/16/32/64
# measured, 16 gave the most webhooks/s; more only grew p99) sending
# signed orders/create deliveries, each unique, for 1 s of warm-up and
# BENCH_BRIDGE_SECONDS (default 4) measured, RUNS times. A run fails on
# any non-200 or error, or when the orders topic did not gain exactly one
# record per 200. Prints the medians, and the CPU of each process per
# webhook (clock ticks of /proc/<pid>/stat; the generator's own from
# getrusage). A run's max (~45 ms) is its last request: once traffic stops,
# the mock broker's Nagle waits for the bridge's delayed ACK (a devbroker
# artefact; Kafka brokers set TCP_NODELAY).
# BENCH_ONLY=bridge runs only this section; BENCH_BRIDGE_ARGS adds -X
# settings to the bridge; BENCH_BRIDGE_SWEEP="8 16 32 64" first prints one
# run per connection count (tuning).
bench_bridge() {
  local load="$PWD/$BUILD/tests/component/webhook_load"
  [ -x "$load" ] || { echo "bench: $load missing (run make)" >&2; return 1; }
  lp_start_broker "orders:16,customers:16"
  lp_start_redis
  local log="$LP_TMP/bridge-bench.log" secret=bench-webhook-secret
  "$BIN/bridge" -X "bootstrap.file=$BOOTSTRAP_FILE" -X http.port=0 \
    -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" \
    -X redis.namespace=bbench -X "shopify.secrets=$secret" \
    ${BENCH_BRIDGE_ARGS:-} 2>"$log" &
  local pid=$! port=""
  LP_PIDS+=("$pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "bench: the bridge did not start: $(cat "$log")" >&2; return 1; }
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  field() { sed -n "s/.*\\<$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }
  # bridge_run CONNECTIONS SECONDS -> "rps p50 p90 p99 max n us_bridge
  # us_broker us_redis us_load"; fails the bench on a bad run.
  bridge_run() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" flushall >/dev/null
    local b0 k0 r0 out
    b0=$(ticks "$pid") k0=$(ticks "$BROKER_PID") r0=$(ticks "$REDIS_PID")
    out=$("$load" --url "http://127.0.0.1:$port/webhooks/shopify" \
      --secret "$secret" --connections "$1" --warmup-s 1 --duration-s "$2" \
      --check-topic orders --bootstrap-file "$BOOTSTRAP_FILE" 2>"$LP_TMP/load.err") ||
      { echo "bench: bridge FAIL: $out $(cat "$LP_TMP/load.err")" >&2; return 1; }
    local b1 k1 r1
    b1=$(ticks "$pid") k1=$(ticks "$BROKER_PID") r1=$(ticks "$REDIS_PID")
    local bad
    bad=$(($(field non200 "$out") + $(field errors "$out") + $(field warmup_bad "$out")))
    [ "$bad" -eq 0 ] ||
      { echo "bench: bridge FAIL: $bad bad answers: $out $(cat "$LP_TMP/load.err")" >&2; return 1; }
    # Every webhook of the run (warm-up too) against the CPU of the run.
    local n
    n=$(($(field requests "$out") + $(field warmup_requests "$out")))
    awk -v n="$n" -v b="$((b1 - b0))" -v k="$((k1 - k0))" -v r="$((r1 - r0))" \
      -v g="$(field gen_cpu_s "$out")" -v rps="$(field rps "$out")" \
      -v p50="$(field p50_ms "$out")" -v p90="$(field p90_ms "$out")" \
      -v p99="$(field p99_ms "$out")" -v mx="$(field max_ms "$out")" \
      'BEGIN {printf "%s %s %s %s %s %d %.0f %.0f %.0f %.0f\n", rps, p50, p90,
        p99, mx, n, b * 1e4 / n, k * 1e4 / n, r * 1e4 / n, g * 1e6 / n}'
  }
  local c=${BENCH_BRIDGE_CONNECTIONS:-16} secs=${BENCH_BRIDGE_SECONDS:-4}
  local rps p50 p90 p99 mx n ub uk ur ug
  local line
  for sc in ${BENCH_BRIDGE_SWEEP:-}; do
    line=$(bridge_run "$sc" "$secs")
    read -r rps p50 p90 p99 mx n ub uk ur ug <<<"$line"
    echo "bench: bridge sweep connections=$sc: $rps webhooks/s p50=${p50}ms p90=${p90}ms p99=${p99}ms max=${mx}ms cpu_us_per_webhook: bridge=$ub devbroker=$uk redis=$ur load=$ug" >&2
  done
  local all_rps=() all_p50=() all_p99=() all_cpu=()
  for run in $(seq "$RUNS"); do
    line=$(bridge_run "$c" "$secs")
    read -r rps p50 p90 p99 mx n ub uk ur ug <<<"$line"
    all_rps+=("$rps") all_p50+=("$p50") all_p99+=("$p99") all_cpu+=("$ub")
    echo "bench: bridge run $run: $rps webhooks/s p50=${p50}ms p90=${p90}ms p99=${p99}ms max=${mx}ms ($c connections, $n webhooks, each one record on the topic) cpu_us_per_webhook: bridge=$ub devbroker=$uk redis=$ur load=$ug" >&2
  done
  bridge_median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
  echo "bench: bridge_rps=$(printf '%s\n' "${all_rps[@]}" | bridge_median)"
  echo "bench: bridge_p50_ms=$(printf '%s\n' "${all_p50[@]}" | bridge_median)"
  echo "bench: bridge_p99_ms=$(printf '%s\n' "${all_p99[@]}" | bridge_median)"
  echo "bench: bridge_cpu_us_per_webhook=$(printf '%s\n' "${all_cpu[@]}" | bridge_median)"
  lp_stop_pid "$pid"
  lp_stop_pid "$REDIS_PID"
  lp_stop_pid "$BROKER_PID"
  local keep=() p
  for p in "${LP_PIDS[@]}"; do
    [ "$p" = "$pid" ] || [ "$p" = "$REDIS_PID" ] || [ "$p" = "$BROKER_PID" ] || keep+=("$p")
  done
  LP_PIDS=("${keep[@]}")
}
if [ -z "${BENCH_ONLY:-}" ] || [ "$BENCH_ONLY" = bridge ]; then bench_bridge; fi
[ "${BENCH_ONLY:-}" != bridge ] || exit 0
# ==== end of the bridge section =============================================
# ==== timers: timer store schedules + fires per second =====================
# tests/component/timers_race bench against a redis-server of its own
# (stopped after): BENCH_TIMERS (default 200000) timers over 8
# partitions scheduled in batches of 1000 (one script call each), then
# claimed and acked in batches of 1000 per partition. The figure is
# (created + fired) / elapsed, the median of RUNS runs, each in a fresh
# namespace. BENCH_ONLY=timers runs only this section; otherwise it runs
# last (the call at the end of the file).
bench_timers() {
  local prog="$PWD/$BUILD/tests/component/timers_race" n=${BENCH_TIMERS:-200000}
  [ -x "$prog" ] || { echo "bench: $prog missing (run make)" >&2; return 1; }
  lp_start_redis
  local all=() run out
  for run in $(seq "$RUNS"); do
    out=$("$prog" "$REDIS_PORT" bench "bench-timers-$run" "$n" 8)
    all+=("${out#timers_per_s=}")
    echo "bench: timers run $run: ${all[-1]} timers/s (created + fired)" >&2
  done
  echo "bench: timers_per_s=$(printf '%s\n' "${all[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')"
  lp_stop_pid "$REDIS_PID"
  local keep=() p
  for p in "${LP_PIDS[@]}"; do
    [ "$p" = "$REDIS_PID" ] || keep+=("$p")
  done
  LP_PIDS=("${keep[@]}")
}
[ "${BENCH_ONLY:-}" != timers ] || { bench_timers; exit 0; }
# ==== end of the timers section =============================================


# 16 partitions keep each one under the mock cluster's ~5 MiB history.
lp_start_broker "orders:16,customers:16,decisions:16,dlq:2,passthrough:16,bench-decisions:8,actions:8"
lp_start_redis
echo "bench: preloading $ORDERS orders for $CUSTOMERS members" >&2
lp_ctl generate --customers "$CUSTOMERS" --orders "$ORDERS" --seed 11 2>&1 >&2
total=$(lp_ctl consume --topic orders --type order --idle-ms 3000 2>/dev/null | wc -l)
echo "bench: $total order events in the topic" >&2
# The processor runs with a member-value model in force, as in production:
# fitted on the same orders, published into each run's namespace.
"$BIN/trainer" --topic orders -f "$BOOTSTRAP_FILE" --calibration-end last \
  --scoring deploy/scoring.json --out "$LP_TMP/bench-model.json" 2>&1 |
  sed -n 's/^  model /bench: model /p' >&2

metric() { # metric PORT NAME -> value (0 when unreadable)
  local v
  v=$(curl -s "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v n="$2" 'index($1, n "{") == 1 {print $2; exit}') || true
  echo "${v:-0}"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_processor() { # run_processor RUN -> prints "eps rss_mb proc_us redis_us"
  local run=$1 log="$LP_TMP/order-bench-$run.log"
  # Every run starts from an empty Redis, so runs are alike: a keyspace
  # left by earlier runs makes Redis slower per event (measured: +20% CPU
  # per event for each 200k-order run kept).
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" flushall >/dev/null
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -x SET "bench$run:model:clv" \
    <"$LP_TMP/bench-model.json" >/dev/null
  "$BIN/order-processor" -X "bootstrap.file=$BOOTSTRAP_FILE" \
    -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" -X http.port=0 \
    -X rules.path=deploy/rules -X "redis.namespace=bench$run" \
    -X "group.id=bench-order-$run" \
    -X topic.decisions=decisions ${BENCH_ORDER_ARGS:-} 2>"$log" &
  local pid=$! port=""
  LP_PIDS+=("$pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "no http port: $(cat "$log")" >&2; return 1; }
  # Time from the first consumed record to the last input record finished,
  # polled every 50 ms (a poll costs a curl; faster polling steals CPU
  # from what is measured on 2 cores).
  local t0="" c=0 r0
  r0=$(cpu_ticks "$REDIS_PID")
  while :; do
    c=$(metric "$port" loyalty_records_consumed_total)
    if [ "${c:-0}" != 0 ] && [ -z "$t0" ]; then t0=$(date +%s.%N); fi
    [ "${c:-0}" -ge "$total" ] && break
    sleep 0.05
  done
  while [ "$(metric "$port" loyalty_in_flight_records)" != 0 ]; do sleep 0.05; done
  local t1 rss p1 r1
  t1=$(date +%s.%N)
  rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
  p1=$(cpu_ticks "$pid")
  r1=$(cpu_ticks "$REDIS_PID")
  lp_stop_pid "$pid"
  # CPU per event (processor incl. start-up and group join; Redis during
  # the run), from clock ticks of 10 ms.
  awk -v n="$total" -v a="$t0" -v b="$t1" -v r="$rss" -v p="$p1" \
    -v rd="$((r1 - r0))" \
    'BEGIN {printf "%.0f %s %.1f %.1f\n", n / (b - a), r, p * 1e4 / n, rd * 1e4 / n}'
}

run_passthrough() { # run_passthrough RUN -> prints eps
  lp_ctl passthrough --from orders --to passthrough --group "bench-pt-$1" \
    --count "$total" | sed -n 's/.*eps=\([0-9]*\).*/\1/p'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

order_eps=() pt_eps=() rss=() pcpu=() rcpu=() off_eps=()
for run in $(seq "$RUNS"); do
  pt_eps+=("$(run_passthrough "$run")")
  read -r eps mb pus rus < <(run_processor "$run")
  order_eps+=("$eps"); rss+=("$mb"); pcpu+=("$pus"); rcpu+=("$rus")
  echo "bench: run $run: passthrough=${pt_eps[-1]}/s order=${eps}/s rss=${mb}MB cpu_us_per_event: processor=$pus redis=$rus" >&2
  # The same run with member timers off (the shipped rules plan a win-back
  # and a replenishment timer on every new order when they are on).
  read -r eps mb pus rus < <(BENCH_ORDER_ARGS="${BENCH_ORDER_ARGS:-} -X timers.enabled=false" run_processor "off$run")
  off_eps+=("$eps")
  echo "bench: run $run: order with timers off=${eps}/s cpu_us_per_event: processor=$pus redis=$rus" >&2
done
o=$(printf '%s\n' "${order_eps[@]}" | median)
p=$(printf '%s\n' "${pt_eps[@]}" | median)
r=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n1)
echo "bench: order_eps=$o"
off=$(printf '%s\n' "${off_eps[@]}" | median)
echo "bench: order_eps_timers_off=$off"
echo "bench: order_timers_on_vs_off=$(awk -v a="$o" -v b="$off" 'BEGIN {printf "%.3f", a / b}')"
echo "bench: passthrough_eps=$p"
echo "bench: order_vs_passthrough=$(awk -v a="$o" -v b="$p" 'BEGIN {printf "%.3f", a / b}')"
echo "bench: order_rss_mb=$r"
echo "bench: order_cpu_us_per_event=$(printf '%s\n' "${pcpu[@]}" | median)"
echo "bench: redis_cpu_us_per_event=$(printf '%s\n' "${rcpu[@]}" | median)"
# BENCH_ONLY=order stops after the order-processor section.
[ "${BENCH_ONLY:-}" != order ] || exit 0

# ---- executor: decisions/s against the sandbox, Redis round trips ----
DECISIONS=${BENCH_DECISIONS:-20000}
lp_start_sandbox -X fault.latency_ms=20 -X loyaltylion.rate=1000000
awk -v n="$DECISIONS" 'BEGIN {
  for (i = 0; i < n; i++)
    printf "{\"decision_id\":\"%032x\",\"shop\":\"bench\",\"customer_id\":\"c%d\",\"trigger_event_id\":\"e%d\",\"trigger_kind\":\"order\",\"rule_id\":\"points-per-order\",\"rule_version\":1,\"action\":{\"kind\":\"points\",\"points\":%d},\"estimated_cost\":\"0.10\",\"currency\":\"EUR\",\"event_time\":\"2024-03-01T12:00:00.000Z\",\"approval\":\"none\",\"explanation\":{\"summary\":\"points per order\",\"features\":[]}}\n", i + 1, i % 5000, i, 10 + i % 90
}' | lp_ctl produce --type decision --topic bench-decisions 2>/dev/null

run_executor() { # run_executor RUN -> prints "dps round_trips_per_decision calls_per_decision"
  local run=$1 log="$LP_TMP/executor-bench-$run.log"
  "$BIN/executor" -X "bootstrap.file=$BOOTSTRAP_FILE" \
    -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" -X http.port=0 \
    -X "redis.namespace=xbench$run" -X "group.id=bench-exec-$run" \
    -X topic.input=bench-decisions -X topic.actions=actions \
    -X "loyaltylion.url=$SANDBOX_URL" -X loyaltylion.key=sandbox-ll-key \
    -X loyaltylion.rate=0 -X exec.check.member=false -X platform.marketing=none \
    -X exec.platform.in.flight=64 -X exec.max.in.flight=256 2>"$log" &
  local pid=$! port=""
  LP_PIDS+=("$pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "no http port: $(cat "$log")" >&2; return 1; }
  local t0="" c=0
  while :; do
    c=$(metric "$port" loyalty_records_consumed_total)
    if [ "${c:-0}" != 0 ] && [ -z "$t0" ]; then t0=$(date +%s.%N); fi
    [ "${c:-0}" -ge "$DECISIONS" ] && break
    sleep 0.05
  done
  while [ "$(metric "$port" loyalty_in_flight_records)" != 0 ]; do sleep 0.05; done
  local t1
  t1=$(date +%s.%N)
  lp_stop_pid "$pid"
  local rt calls
  rt=$(sed -n 's/.*"redis_round_trips":\([0-9]*\).*/\1/p' "$log" | tail -n1)
  calls=$(sed -n 's/.*"redis_calls":\([0-9]*\).*/\1/p' "$log" | tail -n1)
  awk -v n="$DECISIONS" -v a="$t0" -v b="$t1" -v rt="$rt" -v c="$calls" \
    'BEGIN {printf "%.0f %.3f %.3f\n", n / (b - a), rt / n, c / n}'
}

dps=() rtt=() calls=()
for run in $(seq "$RUNS"); do
  curl -sf -X POST "$SANDBOX_URL/_sandbox/reset" >/dev/null
  read -r d r c < <(run_executor "$run")
  dps+=("$d"); rtt+=("$r"); calls+=("$c")
  issued=$(curl -sf "$SANDBOX_URL/_sandbox/ledger?platform=loyaltylion" | jq '.effects | length')
  echo "bench: executor run $run: ${d} decisions/s, redis round trips/decision=$r calls/decision=$c, ledger=$issued" >&2
  [ "$issued" -eq "$DECISIONS" ] || { echo "bench: executor issued $issued of $DECISIONS" >&2; exit 1; }
done
echo "bench: executor_dps=$(printf '%s\n' "${dps[@]}" | median)"
echo "bench: executor_redis_rtt=$(printf '%s\n' "${rtt[@]}" | median)"
echo "bench: executor_redis_calls_per_decision=$(printf '%s\n' "${calls[@]}" | median)"

# ---- trainer: CDNOW fit time, and the scoring rate on one core ----
fits=() scores=()
for run in $(seq "$RUNS"); do
  out=$("$BIN/trainer" --cdnow tests/unit/fixtures/cdnow_sample.txt \
    --out "$LP_TMP/model.json" --bench-score 2000000 2>&1 >/dev/null)
  fits+=("$(sed -n 's/^trainer: fit_s=\([0-9.]*\).*/\1/p' <<<"$out")")
  scores+=("$(sed -n 's/^trainer: score_per_s=\([0-9]*\).*/\1/p' <<<"$out")")
  echo "bench: trainer run $run: fit ${fits[-1]} s, ${scores[-1]} scores/s" >&2
done
echo "bench: cdnow_fit_s=$(printf '%s\n' "${fits[@]}" | median)"
echo "bench: score_per_s=$(printf '%s\n' "${scores[@]}" | median)"

# The timers section (defined after the bridge section).
if [ -z "${BENCH_ONLY:-}" ]; then bench_timers; fi
