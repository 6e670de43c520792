#!/usr/bin/env bash
# The trainer on the CDNOW sample: the fitted BG/NBD and Gamma-Gamma
# parameters match the published ones (Fader, Hardie & Lee 2005: r 0.243,
# alpha 4.414, a 0.793, b 2.426, LL -9582.4 within 1%; Fader & Hardie
# 2013: p 6.25, q 3.74, gamma 15.44 within 2%), the holdout comparison is
# printed, the model is stored in Redis; a bad log is refused with the
# line and the stored model stays; the same history read from the orders
# topic gives the same fit (to 1e-4).
set -euo pipefail
. tests/lib.sh
lp_start_redis
FX=tests/unit/fixtures
"$BIN/trainer" --cdnow "$FX/cdnow_sample.txt" --out "$LP_TMP/model.json" \
  --redis "127.0.0.1:$REDIS_PORT" --namespace t 2>"$LP_TMP/trainer.log"
cat "$LP_TMP/trainer.log"
within() { # within VALUE WANT TOLERANCE WHAT
  awk -v v="$1" -v w="$2" -v t="$3" 'BEGIN {d = v - w; if (d < 0) d = -d; exit !(d <= t * (w < 0 ? -w : w))}' ||
    lp_fail "$4: $1, want $2 within $3"
  echo "ok: $4 ($1)"
}
M="$LP_TMP/model.json"
within "$(jq .bgnbd.r "$M")" 0.243 0.01 "BG/NBD r"
within "$(jq .bgnbd.alpha "$M")" 4.414 0.01 "BG/NBD alpha"
within "$(jq .bgnbd.a "$M")" 0.793 0.01 "BG/NBD a"
within "$(jq .bgnbd.b "$M")" 2.426 0.01 "BG/NBD b"
within "$(jq .bgnbd.fit.log_likelihood "$M")" -9582.4 0.01 "BG/NBD log-likelihood"
within "$(jq .gamma_gamma.p "$M")" 6.25 0.02 "Gamma-Gamma p"
within "$(jq .gamma_gamma.q "$M")" 3.74 0.02 "Gamma-Gamma q"
within "$(jq .gamma_gamma.gamma "$M")" 15.44 0.02 "Gamma-Gamma gamma"
lp_assert_eq "$(jq -r '[.bgnbd.fit.converged, .gamma_gamma.fit.converged, .time_unit, .members] | @tsv' "$M")" \
  "$(printf 'true\ttrue\tweeks\t2357')" "converged, unit, members"
grep -q 'holdout (39.0 weeks): predicted 1653.4 repeat purchases, actual 1882' "$LP_TMP/trainer.log" ||
  lp_fail "holdout comparison missing or off"
stored=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" GET t:model:clv | jq -r .version)
lp_assert_eq "$stored" "$(jq -r .version "$M")" "model stored in Redis"

# A bad log: refused with the line, nothing written, the stored model stays.
printf ' 00001 0001 19970101 1 10.00\n 00002 0002 19971345 1 5.00\n' >"$LP_TMP/bad.txt"
if "$BIN/trainer" --cdnow "$LP_TMP/bad.txt" --redis "127.0.0.1:$REDIS_PORT" \
  --namespace t >"$LP_TMP/bad.json" 2>"$LP_TMP/bad.log"; then
  lp_fail "a bad log was accepted"
fi
grep -q 'bad.txt:2: bad date 19971345' "$LP_TMP/bad.log" || lp_fail "reason: $(cat "$LP_TMP/bad.log")"
lp_assert_eq "$(wc -c <"$LP_TMP/bad.json")" 0 "nothing written for a bad log"
lp_assert_eq "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" GET t:model:clv | jq -r .version)" "$stored" \
  "the stored model stays"
# A log whose members never repeat cannot fit Gamma-Gamma: refused.
printf ' 00001 0001 19970101 1 10.00\n 00002 0002 19970105 1 5.00\n' >"$LP_TMP/flat.txt"
if "$BIN/trainer" --cdnow "$LP_TMP/flat.txt" >/dev/null 2>"$LP_TMP/flat.log"; then
  lp_fail "a log without repeat purchases was fitted"
fi
grep -q 'nothing written, the model in force stays' "$LP_TMP/flat.log" || lp_fail "flat: $(cat "$LP_TMP/flat.log")"
# The same history as order events on the orders topic (as loyaltyctl
# cdnow produces them): the same summaries, hence the same fit.
lp_start_broker "orders:4,dlq:1"
lp_ctl cdnow --file "$FX/cdnow_sample.txt" --shop cdnow
printf 'not an order\n' | lp_ctl produce --type order --format json --key junk:1
"$BIN/trainer" --topic orders -f "$BOOTSTRAP_FILE" --out "$LP_TMP/topic.json" \
  2>"$LP_TMP/topic.log"
cat "$LP_TMP/topic.log"
grep -q '1 records of orders did not decode and were skipped' "$LP_TMP/topic.log" ||
  lp_fail "the undecodable record was not reported"
lp_assert_eq "$(jq .members "$LP_TMP/topic.json")" 2357 "members from the topic"
for k in r alpha a b; do
  within "$(jq ".bgnbd.$k" "$LP_TMP/topic.json")" "$(jq ".bgnbd.$k" "$M")" 1e-4 \
    "topic fit = file fit: $k"
done
within "$(jq .gamma_gamma.p "$LP_TMP/topic.json")" "$(jq .gamma_gamma.p "$M")" 1e-4 \
  "topic fit = file fit: Gamma-Gamma p"
# CDNOW_master.txt's layout (no master id, a header line): the same fit.
{
  echo " customer_id  date number_of_cds  dollar_value"
  awk '{printf "%s %s %s %s\r\n", $2, $3, $4, $5}' "$FX/cdnow_sample.txt"
} >"$LP_TMP/cdnow_4.txt"
"$BIN/trainer" --cdnow "$LP_TMP/cdnow_4.txt" --out "$LP_TMP/four.json" 2>/dev/null
for k in r alpha a b; do
  lp_assert_eq "$(jq ".bgnbd.$k" "$LP_TMP/four.json")" "$(jq ".bgnbd.$k" "$M")" \
    "four-column CDNOW = five-column: $k"
done
echo "ok: trainer"
