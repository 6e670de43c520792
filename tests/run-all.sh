#!/usr/bin/env bash
# The README's test command (make test) runs this: unit and component tests
# on the normal build, then both again on the ASan+UBSan build. Ends with
# the line CI reads: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
total_pass=0 total_fail=0
run() {
  local log
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local line
  line=$(grep -E '^(unit|component): [0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
  if [ -z "$line" ]; then
    echo "runner '$*' printed no summary: counted as 1 failure"
    total_fail=$((total_fail + 1))
  else
    set -- $line
    total_pass=$((total_pass + $2))
    total_fail=$((total_fail + $4))
  fi
  rm -f "$log"
}
run tests/run-unit.sh build
run tests/run-component.sh build
echo "== building with ASan+UBSan"
if make --no-print-directory SAN=1 all >/tmp/loyalty-asan-build.log 2>&1; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
  run tests/run-unit.sh build-asan
  run tests/run-component.sh build-asan
else
  tail -n 30 /tmp/loyalty-asan-build.log
  echo "ASan build failed: counted as 1 failure"
  total_fail=$((total_fail + 1))
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
