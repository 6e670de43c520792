# (d) Bad input: garbage bytes, truncated Avro, an unknown schema
# fingerprint, JSON missing required fields, negative quantities, totals of
# 1e300, 1 MB strings -> dead-letter records with reasons, no crash, and
# every valid record around them processed.
set -euo pipefail
. tests/lib.sh
lp_start_broker
lp_start_redis
lp_start_pipeline bad bad decisions

order() { # order ID CUSTOMER [QTY] [TOTAL]
  printf '{"event_id":"bad-%s","shop":"bad-shop","order_id":"%s","customer_id":"%s","event_time":"2024-03-01T10:00:00.000Z","status":"created","currency":"EUR","total":"%s","subtotal":"%s","discount":"0.00","tax":"0.00","discount_codes":[],"line_items":[{"product_id":"p1","sku":"s1","category":"coffee","brand":"Acme","quantity":%s,"unit_price":"10.00"}],"source":"test"}\n' \
    "$1" "$1" "$2" "${4:-20.00}" "${4:-20.00}" "${3:-2}"
}
valid_hex=$(order v1 good-1 | lp_ctl encode --type order)
trunc_hex=${valid_hex:0:$(( ${#valid_hex} / 2 ))}
unknown_fp_hex="c3010102030405060708${valid_hex:20}"
big=$(head -c 1000000 /dev/zero | tr '\0' 'x')

# Valid records interleaved with every kind of bad one (Avro as hex).
{
  echo "$valid_hex"
  echo "deadbeef00ff"
  order v2 good-2 | lp_ctl encode --type order
  echo "$trunc_hex"
  echo "$unknown_fp_hex"
  order v3 good-3 | lp_ctl encode --type order
} | lp_ctl produce --type order --format hex --key bad-shop:mixed
{
  echo '{"event_id":"bad-missing","shop":"bad-shop"}'
  order neg good-1 -3
  order huge good-1 1 1e300
  order v4 good-4 | sed 's/"total":"20.00"/"total":1e300/'
  order big "$big"
  echo '{"event_id": "bad-syntax", '
  order v5 good-5
} | lp_ctl produce --type order --format json --key bad-shop:mixed \
      -X message.max.bytes=3000000
printf 'not json\n' | lp_ctl produce --type customer --format json --key bad-shop:c

lp_wait_drained bad
kill -0 "$ORDER_PID" || lp_fail "order-processor died"
kill -0 "$CUSTOMER_PID" || lp_fail "customer-processor died"
lp_ctl consume --topic dlq --type dead_letter >"$LP_TMP/dlq.jsonl"
cat "$LP_TMP/dlq.jsonl" | jq -c '{source_topic, source_offset, field, reason}' | cut -c1-240

lp_assert_eq "$(wc -l <"$LP_TMP/dlq.jsonl")" 10 "dead letters (9 orders, 1 customer)"
expect_reason() { # expect_reason PATTERN WHAT
  jq -r .reason "$LP_TMP/dlq.jsonl" | grep -qiE "$1" ||
    lp_fail "no dead letter with a reason matching /$1/ ($2)"
  echo "ok: dead letter for $2"
}
expect_reason 'unrecognised framing' "garbage bytes"
expect_reason 'unknown schema fingerprint' "unknown fingerprint"
expect_reason 'truncat|end of|short' "truncated Avro"
expect_reason '^order_id: required field missing|required' "missing fields"
expect_reason 'quantity' "negative quantity"
expect_reason 'total: .*(range|decimal)' "total of 1e300"
expect_reason 'customer_id: .*(limit|long|exceeds)' "1 MB string"
expect_reason '^json: line' "JSON syntax"
lp_assert_eq "$(jq -r 'select(.source_topic == "customers") | .processor' "$LP_TMP/dlq.jsonl")" \
  customer-processor "customer garbage dead-lettered by customer-processor"
# The original bytes travel with the reason.
got=$(jq -r 'select(.reason | test("unrecognised")) | select(.source_topic=="orders") | .original_base64' \
  "$LP_TMP/dlq.jsonl" | base64 -d | od -An -tx1 | tr -d ' \n')
lp_assert_eq "$got" "deadbeef00ff" "original bytes kept in the dead letter"

# Every valid record around them was processed exactly once.
for c in good-1 good-2 good-3 good-5; do
  n=$(lp_ctl profile --redis "127.0.0.1:$REDIS_PORT" --namespace bad \
        --shop bad-shop --customer "$c" | jq -r .order_count)
  lp_assert_eq "$n" 1 "order count of $c"
done
n=$(lp_ctl profile --redis "127.0.0.1:$REDIS_PORT" --namespace bad \
      --shop bad-shop --customer good-4 | jq -r .order_count)
lp_assert_eq "$n" 0 "the 1e300 order of good-4 was not applied"
dead=$(curl -s "http://127.0.0.1:$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$LP_TMP/order-bad.log" | head -n1)/metrics" |
  awk '$1 ~ /^loyalty_dead_letters_total/ {print $2}')
lp_assert_eq "$dead" 9 "dead-letter metric of order-processor"
