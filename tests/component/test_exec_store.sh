#!/usr/bin/env bash
# The executor's Redis state against a real redis-server: claims and
# leases, takeover, a budget shared by two instances, member and
# frequency caps, kill switches, approval parking, unknown members and the
# shared rate schedule (tests/component/exec_store.c).
set -euo pipefail
. tests/lib.sh
lp_start_redis
"$PWD/$BUILD/tests/component/exec_store" "$REDIS_PORT"
echo "ok: executor store"
