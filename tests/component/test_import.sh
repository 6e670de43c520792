# Importers (loyaltyctl import, docs/importers.md) against the sandbox's
# generated shop and the devbroker:
#  1. Shopify REST, 100,000 orders, a fast leaky bucket and injected 429s:
#     every order's created event, every cancellation and refund, none
#     twice by event id; the 429s waited out, never hammered.
#  2. The same shop again into another topic, stopped with SIGTERM at about
#     a quarter (exit 143, checkpointed), killed with SIGKILL at about half,
#     re-run each time with the same checkpoint: the topic ends up with
#     exactly the event ids of run 1, each once.
#  3. BigCommerce, 5,000 orders under a small request quota: all present.
#  4. CSV: the CDNOW sample gives exactly `loyaltyctl cdnow`'s events (and a
#     re-run with the checkpoint is a no-op); a malformed CSV reports each
#     bad row with its line number, imports the good ones, exits 1.
# Under the sanitizer build the shop parts run at a smaller scale (the same
# paths; LeakSanitizer must stay quiet), the CSV part in full.
set -euo pipefail
. tests/lib.sh

case "$BUILD" in
*asan*) SHOP_N=4000 BC_N=600 BURST=250 ;;
*) SHOP_N=100000 BC_N=5000 BURST=50 ;;
esac
SHOP=sandbox-shop.myshopify.com

lp_start_broker "orders:32,orders-resume:32,orders-bc:16,orders-csv:8,orders-bad:4"
lp_start_sandbox

# Fails on any sanitizer report in the given logs.
no_sanitizer_reports() {
  if grep -h -A20 -E "LeakSanitizer|AddressSanitizer|runtime error" "$@" >&2; then
    lp_fail "sanitizer report in $*"
  fi
}

shop_config() { # shop_config JSON: POST /_sandbox/shop
  curl -sf -X POST "$SANDBOX_URL/_sandbox/shop" -d "$1" >/dev/null
}

shopify_import() { # shopify_import TOPIC CHECKPOINT [extra args]
  local topic=$1 cp=$2
  shift 2
  lp_ctl import shopify --url "$SANDBOX_URL" --token shpat_sandbox \
    --shop "$SHOP" --topic "$topic" --checkpoint "$cp" "$@"
}

# Order events of a topic as "event_id status order_id" lines.
topic_events() {
  lp_ctl consume --topic "$1" --type order --idle-ms 2000 |
    jq -r '"\(.event_id) \(.status) \(.order_id)"'
}

count_status() { # count_status FILE STATUS
  awk -v s="$2" '$2 == s' "$1" | wc -l | tr -d ' '
}

shopify_count() { # shopify_count QUERY: orders/count.json?QUERY
  curl -sf -H 'X-Shopify-Access-Token: shpat_sandbox' \
    "$SANDBOX_URL/admin/api/2025-01/orders/count.json?$1" | jq .count
}

# ---- 1. Shopify: the whole history, with 429s -----------------------------
# Stats of one side of the shop (they add up over the sandbox's life).
shop_stats() { curl -sf "$SANDBOX_URL/_sandbox/shop" | jq -c ".stats.$1"; }
stat_delta() { # stat_delta BEFORE AFTER FIELD
  echo $(($(jq ".$3" <<<"$2") - $(jq ".$3" <<<"$1")))
}
shop_config "{\"orders\":$SHOP_N,\"customers\":2000,\"seed\":7,\"leak_per_s\":200,\"burst_429_permille\":0}"
cancelled=$(shopify_count "status=cancelled")
refunded=$(($(shopify_count "status=any&financial_status=refunded") +
  $(shopify_count "status=any&financial_status=partially_refunded")))
before=$(shop_stats shopify)
shop_config "{\"burst_429_permille\":$BURST}"
t0=$(date +%s)
shopify_import orders "$LP_TMP/shopify.cp" --progress lines 2>"$LP_TMP/shopify-1.log" ||
  { tail -20 "$LP_TMP/shopify-1.log" >&2; lp_fail "shopify import failed"; }
echo "shopify import of $SHOP_N orders: $(($(date +%s) - t0)) s"
grep 'import: complete:' "$LP_TMP/shopify-1.log"
grep -q 'loyaltyctl import: records=.* rate=.*/s pages=.* retries=' \
  "$LP_TMP/shopify-1.log" || lp_fail "no periodic progress line (not a tty)"
topic_events orders >"$LP_TMP/orders.txt"
lp_assert_eq "$(count_status "$LP_TMP/orders.txt" created)" "$SHOP_N" "created events"
lp_assert_eq "$(awk '$2 == "created" {print $3}' "$LP_TMP/orders.txt" | sort -u |
  awk -v n="$SHOP_N" '$1 >= 5000000000 && $1 < 5000000000 + n' | wc -l | tr -d ' ')" \
  "$SHOP_N" "distinct order ids 5000000000.. (every order present)"
lp_assert_eq "$(count_status "$LP_TMP/orders.txt" cancelled)" "$cancelled" "cancelled events"
lp_assert_eq "$(count_status "$LP_TMP/orders.txt" refunded)" "$refunded" "refunded events"
lp_assert_eq "$(cut -d' ' -f1 "$LP_TMP/orders.txt" | sort | uniq -d | wc -l | tr -d ' ')" \
  0 "event ids produced twice"
summary=$(grep 'import: complete:' "$LP_TMP/shopify-1.log")
n429=$(sed -E 's/.* 429s=([0-9]+).*/\1/' <<<"$summary")
[ "$n429" -gt 0 ] || lp_fail "no 429 was injected and waited out: $summary"
after=$(shop_stats shopify)
echo "sandbox shopify stats: $after"
lp_assert_eq "$(stat_delta "$before" "$after" early)" 0 \
  "requests sent before a 429's Retry-After was over"
lp_assert_eq "$(($(stat_delta "$before" "$after" injected_429) +
  $(stat_delta "$before" "$after" throttled)))" "$n429" "429s the importer waited out"
# A complete checkpoint: a re-run does nothing.
shopify_import orders "$LP_TMP/shopify.cp" 2>"$LP_TMP/shopify-again.log"
grep -q 'already complete' "$LP_TMP/shopify-again.log" || lp_fail "re-run not a no-op"

# ---- 2. stopped, killed, resumed ---------------------------------------------
shop_config "{\"burst_429_permille\":$((BURST / 2))}"
cp="$LP_TMP/resume.cp"
checkpoint_items() { jq -r '.items // 0' "$cp" 2>/dev/null || echo 0; }
# Runs the import in the background until the checkpoint has $1 orders,
# then sends signal $2 (after a short delay, so records of the next page are
# in flight or already written); sets RUN_RC.
run_until() {
  local items=$1 sig=$2
  # The binary itself in the background (not a shell function: the signal
  # must reach loyaltyctl, not a subshell).
  "$BIN/loyaltyctl" import shopify --url "$SANDBOX_URL" --token shpat_sandbox \
    --shop "$SHOP" --topic orders-resume --checkpoint "$cp" --progress lines \
    -f "$BOOTSTRAP_FILE" 2>>"$LP_TMP/resume.log" &
  local pid=$!
  LP_PIDS+=("$pid")
  for _ in $(seq 1200); do
    [ "$(checkpoint_items)" -ge "$items" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  sleep 0.0$((RANDOM % 5 + 1))
  kill "-$sig" "$pid" 2>/dev/null || true
  RUN_RC=0
  { wait "$pid"; } 2>/dev/null || RUN_RC=$?
}
run_until $((SHOP_N / 4)) TERM
lp_assert_eq "$RUN_RC" 143 "exit status after SIGTERM"
grep -q 'import: interrupted:' "$LP_TMP/resume.log" || lp_fail "no summary after SIGTERM"
grep -q 'resume: run the same command again' "$LP_TMP/resume.log" || lp_fail "no resume hint"
run_until $((SHOP_N / 2)) KILL
lp_assert_eq "$RUN_RC" 137 "exit status after SIGKILL"
echo "killed with $(checkpoint_items) of $SHOP_N orders checkpointed"
shopify_import orders-resume "$cp" --progress lines 2>>"$LP_TMP/resume.log" ||
  { tail -20 "$LP_TMP/resume.log" >&2; lp_fail "resumed import failed"; }
grep -E 'resuming from|import: (complete|interrupted):' "$LP_TMP/resume.log"
topic_events orders-resume >"$LP_TMP/resume.txt"
lp_assert_eq "$(cut -d' ' -f1 "$LP_TMP/resume.txt" | sort | uniq -d | wc -l | tr -d ' ')" \
  0 "event ids twice in the resumed topic"
cut -d' ' -f1 "$LP_TMP/orders.txt" | sort >"$LP_TMP/ids-1.txt"
cut -d' ' -f1 "$LP_TMP/resume.txt" | sort >"$LP_TMP/ids-2.txt"
lp_assert_files_eq "$LP_TMP/ids-2.txt" "$LP_TMP/ids-1.txt" \
  "stopped + killed + resumed = one uninterrupted import (event ids)"

# ---- 3. BigCommerce under a small quota ------------------------------------
shop_config "{\"orders\":$BC_N,\"customers\":500,\"seed\":3,\"bc_quota\":250,\"bc_window_ms\":1000,\"burst_429_permille\":0}"
bc_statuses=$(curl -sf -H 'X-Auth-Token: bc_sandbox' \
  "$SANDBOX_URL/stores/sbx123/v2/orders/count")
before=$(shop_stats bigcommerce)
shop_config '{}'
t0=$(date +%s)
lp_ctl import bigcommerce --url "$SANDBOX_URL" --store-hash sbx123 \
  --token bc_sandbox --topic orders-bc --checkpoint "$LP_TMP/bc.cp" \
  2>"$LP_TMP/bc.log" || { tail -20 "$LP_TMP/bc.log" >&2; lp_fail "bigcommerce import failed"; }
echo "bigcommerce import of $BC_N orders: $(($(date +%s) - t0)) s"
grep 'import: complete:' "$LP_TMP/bc.log"
topic_events orders-bc >"$LP_TMP/bc.txt"
lp_assert_eq "$(count_status "$LP_TMP/bc.txt" created)" "$BC_N" "bigcommerce created events"
lp_assert_eq "$(awk '$2 == "created" {print $3}' "$LP_TMP/bc.txt" | sort -u | wc -l | tr -d ' ')" \
  "$BC_N" "distinct bigcommerce order ids"
status_count() { jq --argjson id "$1" '[.statuses[] | select(.id == $id) | .count] | add // 0' <<<"$bc_statuses"; }
lp_assert_eq "$(count_status "$LP_TMP/bc.txt" cancelled)" \
  "$(($(status_count 5) + $(status_count 6)))" "bigcommerce cancelled events"
lp_assert_eq "$(count_status "$LP_TMP/bc.txt" refunded)" \
  "$(($(status_count 4) + $(status_count 14)))" "bigcommerce refunded events"
lp_assert_eq "$(cut -d' ' -f1 "$LP_TMP/bc.txt" | sort | uniq -d | wc -l | tr -d ' ')" \
  0 "bigcommerce event ids twice"
after=$(shop_stats bigcommerce)
echo "sandbox bigcommerce stats: $after"
lp_assert_eq "$(stat_delta "$before" "$after" early)" 0 \
  "requests sent before a 429's reset was over"

# ---- 4. CSV: CDNOW and a malformed file --------------------------------------
cdnow=tests/unit/fixtures/cdnow_sample.txt # the shared/datasets sample, byte for byte
[ -f "$cdnow" ] || lp_fail "CDNOW sample not found at $cdnow"
lp_ctl import csv --format cdnow --file "$cdnow" --shop cdnow --topic orders-csv \
  --checkpoint "$LP_TMP/csv.cp" 2>"$LP_TMP/csv.log" ||
  { cat "$LP_TMP/csv.log" >&2; lp_fail "CDNOW import failed"; }
grep 'import: complete:' "$LP_TMP/csv.log"
lp_ctl consume --topic orders-csv --type order --idle-ms 2000 | sort >"$LP_TMP/csv.json"
"$BIN/loyaltyctl" cdnow --file "$cdnow" --shop cdnow --stdout 2>/dev/null | sort >"$LP_TMP/cdnow.json"
lp_assert_eq "$(wc -l <"$LP_TMP/csv.json" | tr -d ' ')" 6919 "CDNOW sample rows imported"
lp_assert_files_eq "$LP_TMP/csv.json" "$LP_TMP/cdnow.json" \
  "import csv --format cdnow = loyaltyctl cdnow"
lp_ctl import csv --format cdnow --file "$cdnow" --shop cdnow --topic orders-csv \
  --checkpoint "$LP_TMP/csv.cp" 2>"$LP_TMP/csv-again.log"
grep -q 'already complete' "$LP_TMP/csv-again.log" || lp_fail "CDNOW re-run not a no-op"

bad="$LP_TMP/bad.csv"
{
  printf 'customer,date,amount,order_id\n'
  printf 'c1,2024-01-02,10.50,o-1\n'
  printf 'c2,2024-13-02,5.00,o-2\n'          # line 3: no month 13
  printf ',2024-01-03,5.00,o-3\n'            # line 4: no customer
  printf 'c4,2024-01-04,abc,o-4\n'           # line 5: amount
  printf 'c5,2024-01-05T10:00:00+02:00,7.25,\n'
  printf 'c6,2024-01-06,-1,o-6\n'            # line 7: negative
  printf '"c7, quoted",2024-01-07,1.00,o-7\n'
  printf '"c8,2024-01-08,1.00,o-8\n'         # line 9: unterminated quote
  printf 'c9,2024-01-09,1.00\n'              # line 10: a column short
  printf '\xff\xfe,2024-01-10,3.00,o-11\n'   # line 11: not UTF-8
  printf 'c12,2024-01-11,99.99,o-12\n'
} >"$bad"
rc=0
lp_ctl import csv --file "$bad" --shop s1 --topic orders-bad 2>"$LP_TMP/bad.log" || rc=$?
cat "$LP_TMP/bad.log"
lp_assert_eq "$rc" 1 "exit status with bad rows"
for line in 3 4 5 7 9 10 11; do
  grep -q "bad.csv:$line: " "$LP_TMP/bad.log" || lp_fail "line $line not reported"
done
grep -q 'bad=7 ' "$LP_TMP/bad.log" || lp_fail "summary does not count 7 bad rows"
lp_ctl consume --topic orders-bad --type order --idle-ms 2000 >"$LP_TMP/bad.json"
lp_assert_eq "$(jq -r .order_id "$LP_TMP/bad.json" | sort | tr '\n' ' ')" \
  "csv-6 o-1 o-12 o-7 " "good rows imported (order_id, else csv-<line>)"
lp_assert_eq "$(jq -r 'select(.order_id == "o-7") | .customer_id' "$LP_TMP/bad.json")" \
  "c7, quoted" "quoted field"

no_sanitizer_reports "$LP_TMP"/*.log
echo "ok: importers"
