#!/usr/bin/env bash
# The timer store (common/timers.c) against a real redis-server
# (tests/component/timers_race.c): schedule, move and cancel semantics,
# deterministic claim order, ack ownership and generations, leases; then
# 100k timers over 8 partitions fired by two processes racing for every
# partition (as after a rebalance race): every timer fired, none by both;
# then the same with one process SIGKILLed after a claim and its output,
# before the ack: once the lease runs out the survivor fires the rest, the
# union is all 100k and the only timers fired twice are exactly those the
# killed process claimed and did not ack (deduped downstream by output id).
set -euo pipefail
. tests/lib.sh
lp_start_redis
race="$PWD/$BUILD/tests/component/timers_race"
N=${TIMERS_N:-100000}
PARTS=8
LEASE_MS=2000

"$race" "$REDIS_PORT" semantics
echo "ok: timers semantics"

# expected: every output id "<id>@<due>", sorted.
"$race" "$REDIS_PORT" load race "$N" "$PARTS"
redis-cli -p "$REDIS_PORT" --raw eval "
  local out = {}
  for p = 0, $((PARTS - 1)) do
    local z = redis.call('ZRANGE', 'race:tm:' .. p .. ':due', 0, -1, 'WITHSCORES')
    for i = 1, #z, 2 do out[#out + 1] = z[i] .. '@' .. z[i + 1] end
  end
  return out" 0 | LC_ALL=C sort >"$LP_TMP/expected"
lp_assert_eq "$(wc -l <"$LP_TMP/expected")" "$N" "timers loaded"

# ---- two live processes racing for every partition ----
"$race" "$REDIS_PORT" fire race "$PARTS" ownerA "$LEASE_MS" "$LP_TMP/a" &
pa=$!
"$race" "$REDIS_PORT" fire race "$PARTS" ownerB "$LEASE_MS" "$LP_TMP/b" &
pb=$!
wait "$pa"
wait "$pb"
na=$(wc -l <"$LP_TMP/a.fired")
nb=$(wc -l <"$LP_TMP/b.fired")
echo "race: A fired $na, B fired $nb"
[ "$na" -gt 0 ] && [ "$nb" -gt 0 ] || lp_fail "one process fired nothing: no race ($na, $nb)"
LC_ALL=C sort "$LP_TMP/a.fired" "$LP_TMP/b.fired" >"$LP_TMP/all"
lp_assert_eq "$(LC_ALL=C uniq -d "$LP_TMP/all" | wc -l)" 0 "timers fired by both"
lp_assert_files_eq "$LP_TMP/all" "$LP_TMP/expected" "fired timers"
echo "ok: $N timers fired once each by two racing processes"

# ---- one process SIGKILLed between its output and its ack ----
"$race" "$REDIS_PORT" load kill "$N" "$PARTS"
start=$(date +%s%N)
"$race" "$REDIS_PORT" fire kill "$PARTS" ownerK "$LEASE_MS" "$LP_TMP/k" $((N / 10)) &
pk=$!
"$race" "$REDIS_PORT" fire kill "$PARTS" ownerS "$LEASE_MS" "$LP_TMP/s" &
ps=$!
rk=0
wait "$pk" 2>/dev/null || rk=$?
[ "$rk" -eq 137 ] || lp_fail "the killed process exited $rk, not by SIGKILL"
wait "$ps"
took=$((($(date +%s%N) - start) / 1000000))
nk=$(wc -l <"$LP_TMP/k.fired")
nka=$(wc -l <"$LP_TMP/k.acked")
ns=$(wc -l <"$LP_TMP/s.fired")
echo "kill: killed fired $nk (acked $nka), survivor fired $ns, ${took} ms"
LC_ALL=C sort "$LP_TMP/k.fired" "$LP_TMP/s.fired" >"$LP_TMP/all"
# The kill namespace was loaded with the same ids and dues as race.
LC_ALL=C sort -u "$LP_TMP/all" >"$LP_TMP/union"
lp_assert_files_eq "$LP_TMP/union" "$LP_TMP/expected" "union of fired timers"
LC_ALL=C uniq -d "$LP_TMP/all" >"$LP_TMP/twice"
LC_ALL=C sort "$LP_TMP/k.fired" >"$LP_TMP/kf"
LC_ALL=C sort "$LP_TMP/k.acked" >"$LP_TMP/ka"
LC_ALL=C comm -23 "$LP_TMP/kf" "$LP_TMP/ka" >"$LP_TMP/claimed_not_acked"
[ -s "$LP_TMP/claimed_not_acked" ] || lp_fail "the killed process left no claim"
lp_assert_files_eq "$LP_TMP/twice" "$LP_TMP/claimed_not_acked" \
  "timers fired twice vs claimed by the killed process and not acked"
[ "$took" -ge "$LEASE_MS" ] || lp_fail "the survivor re-fired before the lease ran out"
left=0
for p in $(seq 0 $((PARTS - 1))); do
  left=$((left + $(redis-cli -p "$REDIS_PORT" hlen "kill:tm:$p:data")))
done
lp_assert_eq "$left" 0 "timers left after the survivor"
echo "ok: after a SIGKILL the survivor fired the rest; $(wc -l <"$LP_TMP/twice") re-fired, all the killed one's unacked claim"
