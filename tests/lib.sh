# tests/lib.sh — shared shell helpers for component tests, the demo and the
# benchmark: start/stop a real redis-server and the devbroker on free
# loopback ports inside a private temp dir, start processors, and clean up
# everything on exit. Sourced, not executed. Only 127.0.0.1 is ever used.

: "${BUILD:=build}"
BIN="$PWD/$BUILD/bin"
LP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/loyalty-test.XXXXXX")
LP_PIDS=()

lp_cleanup() {
  local rc=$? pid
  set +e
  trap - ERR
  for pid in "${LP_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${LP_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  LP_PIDS=()
  [ -n "${LP_KEEP_TMP:-}" ] || rm -rf "$LP_TMP"
  return "$rc"
}
trap 'lp_cleanup; exit $?' EXIT
# Under set -e, name the command that failed instead of exiting silently.
set -E
trap 'echo "FAIL: ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND (status $?)" >&2' ERR

# A random free-looking port in 20000..59999, checked by trying to connect.
lp_free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free loopback port found" >&2
  return 1
}

# lp_start_redis: sets REDIS_PORT; data in $LP_TMP/redis.
lp_start_redis() {
  mkdir -p "$LP_TMP/redis"
  for _ in 1 2 3 4 5; do
    REDIS_PORT=$(lp_free_port)
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$LP_TMP/redis" \
      --save "" --appendonly no --daemonize no \
      --logfile "$LP_TMP/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 50); do
      if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        LP_PIDS+=("$REDIS_PID")
        return 0
      fi
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true
  done
  echo "could not start redis-server" >&2
  return 1
}

lp_stop_redis() {
  kill -TERM "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null
}

lp_restart_redis() {
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$LP_TMP/redis" \
    --save "" --appendonly no --daemonize no \
    --logfile "$LP_TMP/redis.log" &
  REDIS_PID=$!
  LP_PIDS+=("$REDIS_PID")
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# lp_start_broker [topics-spec]: sets BOOTSTRAP_FILE and BOOTSTRAP.
lp_start_broker() {
  local topics=${1:-orders:8,customers:8,activity:8,decisions:8,actions:8,dlq:2}
  BOOTSTRAP_FILE="$LP_TMP/bootstrap"
  rm -f "$BOOTSTRAP_FILE"
  "$BIN/devbroker" -X "topics=$topics" -X "bootstrap.file=$BOOTSTRAP_FILE" \
    -X log.level=warn >"$LP_TMP/devbroker.out" 2>"$LP_TMP/devbroker.log" &
  BROKER_PID=$!
  LP_PIDS+=("$BROKER_PID")
  for _ in $(seq 100); do
    [ -s "$BOOTSTRAP_FILE" ] && { BOOTSTRAP=$(cat "$BOOTSTRAP_FILE"); return 0; }
    sleep 0.05
  done
  echo "devbroker did not start:" >&2
  cat "$LP_TMP/devbroker.log" >&2
  return 1
}

# lp_broker_down / lp_broker_up: an outage of every devbroker broker (the
# data stays), returning once the devbroker has applied it.
lp_broker_state() {
  local signal=$1 line=$2 n
  n=$(grep -c "$line" "$LP_TMP/devbroker.log" || true)
  kill "-$signal" "$BROKER_PID"
  for _ in $(seq 100); do
    [ "$(grep -c "$line" "$LP_TMP/devbroker.log" || true)" -gt "$n" ] && return 0
    sleep 0.05
  done
  lp_fail "the devbroker did not log '$line'"
}
lp_broker_down() { lp_broker_state USR1 "brokers down"; }
lp_broker_up() { lp_broker_state USR2 "brokers up"; }

# lp_start_processor NAME LOGNAME [extra -X args...]: sets LAST_PID.
lp_start_processor() {
  local name=$1 log=$2
  shift 2
  # Timers fire on event time only unless a test asks for the wall clock
  # (-X timers.wall.clock=true): runs compared with each other must not
  # depend on how long a partition happened to sit idle.
  "$BIN/$name" -X "bootstrap.file=$BOOTSTRAP_FILE" -X redis.host=127.0.0.1 \
    -X "redis.port=$REDIS_PORT" -X http.port=0 -X rules.path=deploy/rules \
    -X timers.wall.clock=false "$@" 2>>"$LP_TMP/$log.log" &
  LAST_PID=$!
  LP_PIDS+=("$LAST_PID")
}

# lp_stop_pid PID: SIGTERM, and the process must exit 0 (a clean shutdown;
# under ASan this is also where LeakSanitizer reports leaks).
lp_stop_pid() {
  kill -TERM "$1" 2>/dev/null
  local rc=0
  wait "$1" 2>/dev/null || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: process $1 exited with status $rc after SIGTERM" >&2
    grep -h -A30 -E "LeakSanitizer|AddressSanitizer|runtime error" "$LP_TMP"/*.log 2>/dev/null | head -60 >&2
    exit 1
  fi
}

lp_ctl() { "$BIN/loyaltyctl" "$@" -f "$BOOTSTRAP_FILE"; }

# lp_start_pipeline NS SUFFIX DECISIONS_TOPIC [extra -X args]: both
# processors in namespace NS, groups *-SUFFIX, deciding into the topic.
# Sets ORDER_PID and CUSTOMER_PID.
lp_start_pipeline() {
  local ns=$1 suffix=$2 topic=$3
  shift 3
  lp_start_processor order-processor "order-$suffix" \
    -X "redis.namespace=$ns" -X "group.id=order-$suffix" \
    -X "topic.decisions=$topic" "$@"
  ORDER_PID=$LAST_PID
  lp_start_processor customer-processor "customer-$suffix" \
    -X "redis.namespace=$ns" -X "group.id=customer-$suffix" \
    -X "topic.decisions=$topic" "$@"
  CUSTOMER_PID=$LAST_PID
}

# lp_wait_drained SUFFIX: both groups committed the end of their inputs.
lp_wait_drained() {
  lp_ctl wait --group "order-$1" --topic orders --timeout-ms "${2:-120000}" &&
    lp_ctl wait --group "customer-$1" --topic customers --timeout-ms "${2:-120000}"
}

# lp_dump_profiles NS: every member's stored profile parts (order part
# p:, customer part c:) of a namespace, one line per key with the value's
# newlines shown as '|', sorted, without the namespace prefix.
lp_dump_profiles() {
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw EVAL "
    local out = {}
    for _, kind in ipairs({':p:', ':c:'}) do
      local cursor = '0'
      repeat
        local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1] .. kind .. '*', 'COUNT', 1000)
        cursor = r[1]
        for _, k in ipairs(r[2]) do
          local v = string.gsub(redis.call('GET', k), '\n', '|')
          out[#out + 1] = string.sub(k, #ARGV[1] + 1) .. ' ' .. v
        end
      until cursor == '0'
    end
    table.sort(out)
    return out" 0 "$1"
}

# lp_decisions TOPIC: the topic's decisions as canonical JSON, sorted.
lp_decisions() {
  lp_ctl consume --topic "$1" --type decision --idle-ms "${2:-2000}" | sort
}

# lp_decision_ids TOPIC: distinct decision ids of a topic, sorted.
lp_decision_ids() {
  lp_ctl consume --topic "$1" --type decision --idle-ms "${2:-2000}" |
    jq -r .decision_id | sort -u
}

# Assertions: print what failed and exit 1.
lp_fail() { echo "FAIL: $*" >&2; exit 1; }
lp_assert_eq() { # lp_assert_eq ACTUAL EXPECTED WHAT
  [ "$1" = "$2" ] || lp_fail "$3: expected '$2', got '$1'"
  echo "ok: $3 ($1)"
}
lp_assert_files_eq() { # lp_assert_files_eq A B WHAT
  if ! cmp -s "$1" "$2"; then
    diff "$1" "$2" | head -n 20 >&2
    lp_fail "$3: $1 and $2 differ"
  fi
  echo "ok: $3 ($(wc -l <"$1") lines identical)"
}

# lp_run_sequential NS SUFFIX TOPIC: the documented backfill order —
# customer-processor drains the customers topic, then order-processor the
# orders topic — in namespace NS with groups *-SUFFIX; stops both.
lp_run_sequential() {
  local ns=$1 suffix=$2 topic=$3
  lp_start_processor customer-processor "customer-$suffix" \
    -X "redis.namespace=$ns" -X "group.id=customer-$suffix" \
    -X "topic.decisions=$topic"
  local c=$LAST_PID
  lp_ctl wait --group "customer-$suffix" --topic customers --timeout-ms 120000
  lp_start_processor order-processor "order-$suffix" \
    -X "redis.namespace=$ns" -X "group.id=order-$suffix" \
    -X "topic.decisions=$topic"
  local o=$LAST_PID
  lp_ctl wait --group "order-$suffix" --topic orders --timeout-ms 120000
  lp_stop_pid "$o"
  lp_stop_pid "$c"
}

# lp_start_sandbox [args...]: the platform sandbox (LoyaltyLion, Smile.io,
# Klaviyo, Braze) on a free loopback port it picks itself and reports in a
# --port-file under $LP_TMP; extra args are passed on (-X key=value ...).
# Waits until it answers; sets SANDBOX_PORT, SANDBOX_URL and SANDBOX_PID
# (registered for cleanup). Each call starts another one, logging to
# $LP_TMP/sandbox-N.log.
lp_start_sandbox() {
  LP_SANDBOX_N=$(( ${LP_SANDBOX_N:-0} + 1 ))
  local port_file="$LP_TMP/sandbox-$LP_SANDBOX_N.port"
  local log="$LP_TMP/sandbox-$LP_SANDBOX_N.log"
  rm -f "$port_file"
  "$BIN/sandbox" --port-file "$port_file" "$@" 2>>"$log" &
  SANDBOX_PID=$!
  LP_PIDS+=("$SANDBOX_PID")
  for _ in $(seq 200); do
    if [ -s "$port_file" ]; then
      SANDBOX_PORT=$(cat "$port_file")
      SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT"
      curl -sf -o /dev/null "$SANDBOX_URL/_sandbox/stats" && return 0
    fi
    kill -0 "$SANDBOX_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "sandbox did not start:" >&2
  cat "$log" >&2
  return 1
}
