#!/usr/bin/env bash
# The webhook bridge over loopback HTTP: a signed Shopify orders/create
# lands as one canonical OrderEvent keyed by member (200 only after Kafka
# acknowledged it); the same delivery three times is one event; a wrong
# signature is 401 and produces nothing; the second secret of a rotation
# is accepted; malformed bodies (not JSON, wrong shape, invalid UTF-8, no
# customer, an unsupported topic) are 400 with the reason; a 10 MB body
# is 413; a slow or idle client pins nothing and is cut off after
# connection.timeout.s; customers/update lands on the customers topic; with Kafka down
# the answer is 503 and, after the recovery, the platform's retry lands
# exactly one event; SIGTERM exits 0.
set -euo pipefail
. tests/lib.sh
FX=tests/component/fixtures
lp_start_broker
lp_start_redis
"$BIN/bridge" -X "bootstrap.file=$BOOTSTRAP_FILE" -X http.port=0 \
  -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" -X redis.namespace=br \
  -X shopify.secrets=old-secret,new-secret -X ack.timeout.ms=1500 \
  -X connection.timeout.s=2 \
  -X body.max.bytes=1048576 2>>"$LP_TMP/bridge.log" &
BRIDGE_PID=$!
LP_PIDS+=("$BRIDGE_PID")
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$LP_TMP/bridge.log" | head -n1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || lp_fail "the bridge did not start: $(cat "$LP_TMP/bridge.log")"
URL="http://127.0.0.1:$port/webhooks/shopify"

sign() { openssl dgst -sha256 -hmac "$1" -binary <"$2" | base64; }
# post FILE TOPIC EVENT_ID [SECRET|-]: prints "<status> <body>"
post() {
  local file=$1 topic=$2 id=$3 secret=${4:-new-secret} sig
  sig=$([ "$secret" = - ] && echo "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" || sign "$secret" "$file")
  curl -s -o "$LP_TMP/resp" -w '%{http_code}' -X POST --data-binary "@$file" \
    -H "Content-Type: application/json" -H "X-Shopify-Topic: $topic" \
    -H "X-Shopify-Hmac-Sha256: $sig" -H "X-Shopify-Shop-Domain: br-shop.myshopify.com" \
    -H "X-Shopify-Event-Id: $id" -H "X-Shopify-Triggered-At: 2022-01-01T00:00:05Z" "$URL"
  printf ' %s\n' "$(cat "$LP_TMP/resp")"
}
count() { lp_ctl consume --topic "$1" --type "$2" --idle-ms 1000 | wc -l; }

ORDER="$FX/shopify-orders-create.json"
r=$(post "$ORDER" orders/create evt-1)
lp_assert_eq "${r%% *}" 200 "a signed orders/create"
grep -q '"event_id":"shopify:orders/create:evt-1"' <<<"$r" || lp_fail "no event id in: $r"
lp_ctl consume --topic orders --type order --idle-ms 1000 >"$LP_TMP/orders.jsonl"
lp_assert_eq "$(wc -l <"$LP_TMP/orders.jsonl")" 1 "one order event"
lp_assert_eq "$(jq -r '[.shop, .status, .total, .currency] | join(" ")' "$LP_TMP/orders.jsonl")" \
  "br-shop.myshopify.com created 404.95 USD" "its shop, status, total and currency"
jq -e '.customer_id != null and (.line_items | length) > 0' "$LP_TMP/orders.jsonl" >/dev/null ||
  lp_fail "customer or line items missing: $(cat "$LP_TMP/orders.jsonl")"

for _ in 1 2; do
  r=$(post "$ORDER" orders/create evt-1)
  lp_assert_eq "$r" '200 {"duplicate":true}' "a repeated delivery"
done
lp_assert_eq "$(count orders order)" 1 "three deliveries, one event"

r=$(post "$ORDER" orders/create evt-2 wrong-secret)
lp_assert_eq "${r%% *}" 401 "a wrong signature"
r=$(post "$ORDER" orders/create evt-2 -)
lp_assert_eq "${r%% *}" 401 "a forged signature"
lp_assert_eq "$(count orders order)" 1 "nothing produced for a bad signature"
r=$(post "$ORDER" orders/paid evt-3 old-secret)
lp_assert_eq "${r%% *}" 200 "the previous secret during a rotation"

# A slow client (half a request, then silence) and an idle one hold their
# own connections only: a webhook meanwhile is served at once, and the
# server closes both after connection.timeout.s.
exec 7<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"id":' >&7
exec 8<>"/dev/tcp/127.0.0.1/$port"
t0=$(date +%s%N)
r=$(post "$ORDER" orders/paid evt-slow)
lp_assert_eq "${r%% *}" 200 "a webhook while a slow and an idle client are connected"
[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1500 ] || lp_fail "the webhook waited for the slow clients"
for fd in 7 8; do
  # read returns (EOF or the server's 408-style answer) once the server
  # closes the connection; a pinned connection would hit the 6 s timeout.
  timeout 6 cat <&$fd >/dev/null || lp_fail "connection $fd was not closed after connection.timeout.s"
done
exec 7<&- 8<&-
echo "ok: slow and idle clients are cut off after connection.timeout.s and pin nothing"

bad() { # bad NAME TOPIC STATUS REASON_PATTERN: with the body in $LP_TMP/bad
  local r
  r=$(post "$LP_TMP/bad" "$2" "bad-$1")
  lp_assert_eq "${r%% *}" "$3" "$1"
  grep -q -- "$4" <<<"$r" || lp_fail "$1: the reason '$r' lacks '$4'"
}
printf 'not json' >"$LP_TMP/bad"
bad "not JSON" orders/create 400 'json:'
printf '{"id": "x", "total_price": 5}' >"$LP_TMP/bad"
bad "wrong shape" orders/create 400 '"error"'
printf '{"id": 1, "note": "\xff\xfe"}' >"$LP_TMP/bad"
bad "invalid UTF-8" orders/create 400 'UTF-8'
jq -c 'del(.customer)' "$ORDER" >"$LP_TMP/bad"
bad "no customer" orders/create 400 'customer'
cp "$ORDER" "$LP_TMP/bad"
bad "unsupported topic" products/create 400 'X-Shopify-Topic'
head -c 10485760 /dev/zero | tr '\0' ' ' >"$LP_TMP/bad"
bad "a 10 MB body" orders/create 413 'body.max.bytes'
lp_assert_eq "$(count orders order)" 3 "nothing produced for bad bodies"

cat >"$LP_TMP/customer.json" <<'EOF'
{"id": 706405506930370084, "email": "bob@example.com", "accepts_marketing": true,
 "created_at": "2021-12-31T19:00:00-05:00", "updated_at": "2022-01-01T09:00:00-05:00",
 "first_name": "Bob", "last_name": "Biller", "tags": "vip, newsletter",
 "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
   "consent_updated_at": "2022-01-01T09:00:00-05:00"}}
EOF
r=$(post "$LP_TMP/customer.json" customers/update evt-c1)
lp_assert_eq "${r%% *}" 200 "customers/update"
lp_assert_eq "$(count customers customer)" 1 "one customer event"
lp_ctl consume --topic customers --type customer --idle-ms 1000 | jq -e '.marketing_consent == "subscribed"' >/dev/null ||
  lp_fail "consent not carried"
echo "ok: customers/update carries the consent"

# (to a file first: grep -q closing the pipe early would fail curl)
curl -sf "http://127.0.0.1:$port/metrics" >"$LP_TMP/metrics.txt"
grep -q 'loyalty_webhooks_total{.*shopify orders/create 200' "$LP_TMP/metrics.txt" ||
  lp_fail "no webhook metric: $(cat "$LP_TMP/metrics.txt")"
echo "ok: /metrics counts webhooks by topic and answer"

# Kafka down: 503, nothing acknowledged; the platform's retries after the
# recovery land the webhook exactly once.
before=$(count orders order)
lp_broker_down
r=$(post "$ORDER" orders/cancelled evt-4)
lp_assert_eq "${r%% *}" 503 "Kafka down"
grep -q 'kafka\|Local: Message timed out' <<<"$r" || lp_fail "503 without the reason: $r"
r=$(post "$ORDER" orders/cancelled evt-4)
lp_assert_eq "${r%% *}" 503 "Kafka still down (the retry)"
lp_broker_up
status=""
for _ in $(seq 30); do # the platform's retries, at most 30 s
  r=$(post "$ORDER" orders/cancelled evt-4)
  status=${r%% *}
  [ "$status" = 200 ] && break
  sleep 1
done
lp_assert_eq "$status" 200 "a retry once Kafka is back"
r=$(post "$ORDER" orders/cancelled evt-4)
lp_assert_eq "$r" '200 {"duplicate":true}' "a retry after the one that landed"
lp_ctl consume --topic orders --type order --idle-ms 1000 >"$LP_TMP/orders.jsonl"
lp_assert_eq "$(wc -l <"$LP_TMP/orders.jsonl")" "$((before + 1))" "one event from the outage's deliveries"
lp_assert_eq "$(jq -r 'select(.event_id == "shopify:orders/cancelled:evt-4") | .status' "$LP_TMP/orders.jsonl")" \
  cancelled "the retried webhook, once"
echo "ok: Kafka down -> 503; after the recovery the retry lands exactly one event"
lp_stop_pid "$BRIDGE_PID"
echo "PASS"
