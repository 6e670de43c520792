#!/usr/bin/env bash
# Runs every unit test binary of a build dir (cmocka) and sums cmocka's own
# per-test counts. Usage: tests/run-unit.sh [build-dir].
# Prints "unit: N passed, N failed"; exit 0 only when nothing failed.
set -u
build=${1:-build}
pass=0 fail=0
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  case "$t" in *.out) continue ;; esac
  out="$t.out"
  "$t" >"$out" 2>&1
  rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n1)
  p=${p:-0} f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1 # crashed or sanitizer abort before cmocka's summary
  fi
  if [ "$f" -ne 0 ]; then
    echo "--- $(basename "$t") (exit $rc):"
    tail -n 40 "$out"
  fi
  echo "$(basename "$t"): $p passed, $f failed"
  pass=$((pass + p)) fail=$((fail + f))
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
