# (c) Replay: the same topics processed again into a fresh Redis namespace
# and a separate decisions topic produce the same decision set as the first
# run, byte for byte (compared as the raw Avro record bytes). Both runs
# apply customers before orders (docs/operations.md, Replay), since the
# seed's welcome rules read customer-written tags and consent.
set -euo pipefail
. tests/lib.sh
lp_start_broker "orders:8,customers:8,decisions:8,decisions-replay:8,dlq:2"
lp_start_redis
lp_ctl generate --customers 400 --orders 4000 --seed 9

lp_run_sequential live live decisions
lp_run_sequential backfill replay decisions-replay

lp_ctl consume --topic decisions --type decision --format hex | sort >"$LP_TMP/live.hex"
lp_ctl consume --topic decisions-replay --type decision --format hex | sort >"$LP_TMP/replay.hex"
[ "$(wc -l <"$LP_TMP/live.hex")" -gt 100 ] || lp_fail "too few decisions"
lp_assert_files_eq "$LP_TMP/replay.hex" "$LP_TMP/live.hex" \
  "replayed decisions byte for byte"
lp_dump_profiles live >"$LP_TMP/p-live.txt"
lp_dump_profiles backfill >"$LP_TMP/p-replay.txt"
lp_assert_files_eq "$LP_TMP/p-replay.txt" "$LP_TMP/p-live.txt" \
  "replayed profiles"
