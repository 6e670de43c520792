#!/usr/bin/env bash
# Profile store races against a real redis-server: a redelivery through
# another instance, a lost compare-and-set, a racing duplicate, two
# batches in flight on one connection, and a lost race in the older batch
# while the newer one's reads are pending (tests/component/store_race.c).
set -euo pipefail
. tests/lib.sh
lp_start_redis
"$PWD/$BUILD/tests/component/store_race" "$REDIS_PORT"
echo "ok: store races"
