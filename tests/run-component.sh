#!/usr/bin/env bash
# Runs every tests/component/test_*.sh against a build dir: each starts its
# own devbroker and redis-server on free loopback ports and cleans up.
# Usage: tests/run-component.sh [build-dir] [name-filter].
# COMPONENT_JOBS scenarios run at a time (default 2: they spend most of
# their time waiting on brokers, Redis and timers, not on the CPU); a
# scenario that fails is run once more, alone, and reported as flaky if it
# then passes (its first log is shown).
# Prints "component: N passed, N failed"; exit 0 only when nothing failed.
set -u
build=${1:-build}
filter=${2:-}
jobs=${COMPONENT_JOBS:-2}
logs="$build/component-logs"
mkdir -p "$logs"
pass=0 fail=0
declare -A started=() pids=()
failed=()

finish() { # finish NAME RC
  local name=$1 rc=$2
  local secs=$(( $(date +%s) - started[$name] ))
  if [ "$rc" -eq 0 ]; then
    pass=$((pass + 1))
    echo "$name: ok (${secs}s)"
  else
    echo "--- $name failed once (${secs}s); its log:"
    tail -n 60 "$logs/$name.log"
    failed+=("$name")
  fi
}

# Waits for one running scenario to end and records it.
reap() {
  local n rc
  while :; do
    for n in "${!pids[@]}"; do
      if ! kill -0 "${pids[$n]}" 2>/dev/null; then
        rc=0
        wait "${pids[$n]}" || rc=$?
        unset "pids[$n]"
        finish "$n" "$rc"
        return
      fi
    done
    sleep 0.2
  done
}

for t in tests/component/test_*.sh; do
  name=$(basename "$t" .sh)
  [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
  while [ "${#pids[@]}" -ge "$jobs" ]; do reap; done
  started[$name]=$(date +%s)
  BUILD="$build" timeout -k 10 600 bash "$t" >"$logs/$name.log" 2>&1 &
  pids[$name]=$!
done
while [ "${#pids[@]}" -gt 0 ]; do reap; done

# Retries one at a time, so a failure caused by a busy neighbour shows as
# flaky rather than as a failure.
for name in "${failed[@]}"; do
  start=$(date +%s)
  if BUILD="$build" timeout -k 10 600 bash "tests/component/$name.sh" \
    >"$logs/$name.log.retry" 2>&1; then
    pass=$((pass + 1))
    echo "$name: ok on retry (FLAKY: first log above) ($(( $(date +%s) - start ))s)"
  else
    fail=$((fail + 1))
    tail -n 60 "$logs/$name.log.retry"
    echo "$name: FAILED"
  fi
done
echo "component: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
