#!/usr/bin/env bash
# The bridge's three platforms against the sandbox's shop side, over
# loopback HTTP:
# - Shopify orders/create, orders/paid, refunds/create and customers/update
#   bodies shaped like apis.md -> the right canonical events; the refund
#   finds its customer in the order index, and the order-processor's
#   profile shows the refund reversing what the order added; a refund of
#   an order the bridge never saw is looked up with the Admin REST API; one
#   of an order that does not exist is dead-lettered (200).
# - BigCommerce ids-only callbacks from the sandbox's sender (with
#   duplicates and retries): the order and its products fetched within a
#   tight quota; every order once, with the store's customer and total;
#   refund/created -> exactly that refund's amount; customers; a wrong
#   secret -> 401; the store's API unreachable -> 503, and the retry after
#   it is back lands once.
# - Adobe Commerce via I/O Events: the registration challenge; an
#   RSA-signed order and customer event -> canonical events; a repeat ->
#   one; a bad signature -> 401.
set -euo pipefail
. tests/lib.sh
FX=tests/component/fixtures
UFX=tests/unit/fixtures/platforms
lp_start_broker
lp_start_redis
lp_start_sandbox -X log.level=warn
curl -sf -o /dev/null -X POST "$SANDBOX_URL/_sandbox/shop" \
  -d '{"orders": 60, "customers": 12, "refund_permille": 400, "cancel_permille": 0,
       "bc_quota": 12, "bc_window_ms": 1000}' || lp_fail "the sandbox shop did not take its settings"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$LP_TMP/adobe.key" 2>/dev/null
openssl pkey -in "$LP_TMP/adobe.key" -pubout -out "$LP_TMP/adobe.pub"

"$BIN/bridge" -X "bootstrap.file=$BOOTSTRAP_FILE" -X http.port=0 \
  -X redis.host=127.0.0.1 -X "redis.port=$REDIS_PORT" -X redis.namespace=bp \
  -X shopify.secrets=shp-secret \
  -X "shopify.api.url=$SANDBOX_URL/admin/api/2025-01" -X shopify.api.token=shpat_sandbox \
  -X bigcommerce.secrets=bc-secret -X "bigcommerce.api.url=$SANDBOX_URL" \
  -X bigcommerce.tokens=sbx123=bc_sandbox -X fetch.timeout.ms=1500 \
  -X "adobe.public.keys=$LP_TMP/adobe.pub" -X shop.default=adobe-shop \
  -X ack.timeout.ms=3000 2>>"$LP_TMP/bridge.log" &
BRIDGE_PID=$!
LP_PIDS+=("$BRIDGE_PID")
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$LP_TMP/bridge.log" | head -n1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || lp_fail "the bridge did not start: $(cat "$LP_TMP/bridge.log")"
BRIDGE="http://127.0.0.1:$port"

sign() { openssl dgst -sha256 -hmac "$1" -binary <"$2" | base64 -w0; }
# shopify FILE TOPIC EVENT_ID: prints "<status> <body>"
shopify() {
  curl -s -o "$LP_TMP/resp" -w '%{http_code}' -X POST --data-binary "@$1" \
    -H "Content-Type: application/json" -H "X-Shopify-Topic: $2" \
    -H "X-Shopify-Hmac-Sha256: $(sign shp-secret "$1")" \
    -H "X-Shopify-Shop-Domain: bp-shop.myshopify.com" \
    -H "X-Shopify-Event-Id: $3" -H "X-Shopify-Triggered-At: 2022-01-03T15:00:01Z" \
    "$BRIDGE/webhooks/shopify"
  printf ' %s\n' "$(cat "$LP_TMP/resp")"
}
orders() { lp_ctl consume --topic orders --type order --idle-ms 1000 >"$LP_TMP/orders.jsonl"; }
customers() { lp_ctl consume --topic customers --type customer --idle-ms 1000 >"$LP_TMP/customers.jsonl"; }
ev() { jq -c "select(.event_id == \"$1\") | $2" "$LP_TMP/orders.jsonl"; }

# --- Shopify --------------------------------------------------------------
ORDER=$FX/shopify-orders-create.json
# (sed, not jq: jq 1.6 rounds 64-bit ids through doubles)
sed 's/"financial_status":"paid"/"financial_status":"pending"/' "$ORDER" >"$LP_TMP/created.json"
r=$(shopify "$LP_TMP/created.json" orders/create o-1)
lp_assert_eq "${r%% *}" 200 "orders/create"
r=$(shopify "$ORDER" orders/paid o-2)
lp_assert_eq "${r%% *}" 200 "orders/paid"
r=$(shopify "$FX/shopify-refunds-create.json" refunds/create r-1)
lp_assert_eq "${r%% *}" 200 "refunds/create of an order the bridge has seen"
orders
lp_assert_eq "$(ev shopify:orders/create:o-1 '[.status, .order_id, .customer_id, .total, .currency, .line_items[0].brand, .line_items[0].quantity]')" \
  '["created","820982911946154508","115310627314723954","404.95","USD","Acme",1]' \
  "orders/create: status, order, customer, total, currency, brand"
lp_assert_eq "$(ev shopify:orders/paid:o-2 '[.status, .customer_id, .total, .discount, (.discount_codes | join(","))]')" \
  '["paid","115310627314723954","404.95","20.00","TENOFF"]' "orders/paid: status, customer, totals, codes"
lp_assert_eq "$(ev shopify:refunds/create:509562969 '[.status, .order_id, .customer_id, .total, .currency, .line_items[0].brand, .line_items[0].sku]')" \
  '["refunded","820982911946154508","115310627314723954","89.99","USD","Acme","SKU2006-001"]' \
  "refunds/create: the order's customer (from the order index), the amount refunded, the line"

cat >"$LP_TMP/customer.json" <<'EOF'
{"id": 115310627314723954, "email": "John@Example.com ", "phone": "+15142546011",
 "first_name": "John", "last_name": "Smith", "state": "enabled", "verified_email": true,
 "tags": "vip, newsletter", "orders_count": 3, "total_spent": "199.00", "currency": "USD",
 "created_at": "2021-12-01T10:00:00-05:00", "updated_at": "2022-01-04T09:00:00-05:00",
 "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
   "consent_updated_at": "2022-01-04T09:00:00-05:00"}}
EOF
r=$(shopify "$LP_TMP/customer.json" customers/update c-1)
lp_assert_eq "${r%% *}" 200 "customers/update"
customers
want_email=$(printf '%s' john@example.com | sha256sum | cut -d' ' -f1)
lp_assert_eq "$(jq -c '[.kind, .customer_id, .marketing_consent, .tags, .email_sha256]' "$LP_TMP/customers.jsonl")" \
  "[\"updated\",\"115310627314723954\",\"subscribed\",[\"vip\",\"newsletter\"],\"$want_email\"]" \
  "customers/update: kind, customer, consent, tags, hashed email"

# A refund of an order that came before the bridge: the Admin API says whose.
curl -sf -H 'X-Shopify-Access-Token: shpat_sandbox' \
  "$SANDBOX_URL/admin/api/2025-01/orders.json?status=any&limit=250" >"$LP_TMP/shop-orders.json"
jq -c '[.orders[] | select((.refunds | length) > 0)][0]' "$LP_TMP/shop-orders.json" >"$LP_TMP/shop-order.json"
[ "$(jq -r .id "$LP_TMP/shop-order.json")" != null ] || lp_fail "the sandbox shop has no refunded order"
jq -c '.refunds[0]' "$LP_TMP/shop-order.json" >"$LP_TMP/shop-refund.json"
r=$(shopify "$LP_TMP/shop-refund.json" refunds/create r-2)
lp_assert_eq "${r%% *}" 200 "refunds/create of an order not in the index"
orders
r2id="shopify:refunds/create:$(jq -r .id "$LP_TMP/shop-refund.json")"
want=$(jq -c '[(.id | tostring), (.customer.id | tostring)]' "$LP_TMP/shop-order.json")
lp_assert_eq "$(ev "$r2id" '[.order_id, .customer_id]')" "$want" \
  "the looked-up refund names the order's customer"
want=$(jq -r '[.transactions[] | select(.kind == "refund") | .amount | tonumber] | add' "$LP_TMP/shop-refund.json")
lp_assert_eq "$(ev "$r2id" '.total | tonumber')" "$want" "the looked-up refund's amount"

# The shop header is not signed: one that is not a shop domain (here one
# that would point the order look-up, and its token, at another host) is
# refused.
st=$(curl -s -o "$LP_TMP/resp" -w '%{http_code}' -X POST --data-binary "@$LP_TMP/shop-refund.json" \
  -H "X-Shopify-Topic: refunds/create" -H "X-Shopify-Hmac-Sha256: $(sign shp-secret "$LP_TMP/shop-refund.json")" \
  -H "X-Shopify-Shop-Domain: evil.example/x?" -H "X-Shopify-Event-Id: r-evil" "$BRIDGE/webhooks/shopify")
lp_assert_eq "$st" 400 "a shop header that is not a shop domain"
grep -q 'X-Shopify-Shop-Domain' "$LP_TMP/resp" || lp_fail "no reason: $(cat "$LP_TMP/resp")"

# A refund of an order that exists nowhere: kept on the dead-letter topic.
sed 's/820982911946154508/42/g' "$FX/shopify-refunds-create.json" >"$LP_TMP/lost-refund.json"
r=$(shopify "$LP_TMP/lost-refund.json" refunds/create r-3)
lp_assert_eq "${r%% *}" 200 "a refund of an unknown order"
grep -q '"dead_letter"' <<<"$r" || lp_fail "not dead-lettered: $r"
lp_ctl consume --topic dlq --type dead_letter --idle-ms 1000 >"$LP_TMP/dlq.jsonl"
lp_assert_eq "$(jq -r '[.processor, .field, (.reason | test("order 42"))] | join(" ")' "$LP_TMP/dlq.jsonl")" \
  "bridge order_id true" "the dead letter names the order and why"

# The refund reverses what the order added: the order-processor's profile.
lp_start_processor order-processor order -X redis.namespace=bpp -X group.id=bp-order \
  -X topic.decisions=decisions
ORDER_PID=$LAST_PID
lp_ctl wait --group bp-order --topic orders --timeout-ms 60000
lp_dump_profiles bpp >"$LP_TMP/profiles.txt"
member=$(grep -F '{bp-shop.myshopify.com:115310627314723954}' "$LP_TMP/profiles.txt") ||
  lp_fail "no profile for the member: $(cat "$LP_TMP/profiles.txt")"
# spend (micros) = 404.95 ordered - 89.99 refunded; one order still
# counted; the Acme brand's affinity 89.99 - 89.99.
for want in $'spend\t314960000' $'orders\t1' $'b:Acme\t0'; do
  grep -qF "|$want|" <<<"|${member#* }|" || lp_fail "'$want' not in the profile after the refund: $member"
done
echo "ok: the refund took 89.99 back from the member's spend ($member)"
lp_stop_pid "$ORDER_PID"

# --- BigCommerce ----------------------------------------------------------
send() { # send JSON: the sandbox sender's answer in $LP_TMP/sent
  curl -s -o "$LP_TMP/sent" -w '%{http_code}' --max-time 300 -X POST \
    "$SANDBOX_URL/_sandbox/webhooks/send" -d "$1"
}
bc_send() { # bc_send TOPIC COUNT [DUPLICATE_PERMILLE]
  send "{\"platform\": \"bigcommerce\", \"url\": \"$BRIDGE/webhooks/bigcommerce\",
         \"header\": \"X-Bridge-Secret\", \"secret\": \"bc-secret\", \"topic\": \"$1\",
         \"first\": 0, \"count\": $2, \"duplicate_permille\": ${3:-0},
         \"retries\": 8, \"retry_backoff_ms\": 300, \"concurrency\": 8}" >/dev/null
  lp_assert_eq "$(jq -r .failed "$LP_TMP/sent")" 0 "$1: every callback answered 2xx in the end"
}
before=$(wc -l <"$LP_TMP/orders.jsonl")
bc_send store/order/created 30 300
echo "sender: $(jq -c '{deliveries, attempts, status}' "$LP_TMP/sent")"
orders
jq -c 'select(.source == "bigcommerce")' "$LP_TMP/orders.jsonl" >"$LP_TMP/bc.jsonl"
lp_assert_eq "$(jq -r .order_id "$LP_TMP/bc.jsonl" | sort -u | wc -l)" 30 "30 BigCommerce orders"
lp_assert_eq "$(wc -l <"$LP_TMP/bc.jsonl")" 30 "each once, whatever the duplicates and retries"
bc_get() { # bc_get PATH OUT: the sandbox store's answer, waiting out its quota
  local status
  for _ in $(seq 50); do
    status=$(curl -s -o "$2" -w '%{http_code}' -H 'X-Auth-Token: bc_sandbox' "$SANDBOX_URL/stores/sbx123/$1")
    [ "$status" = 200 ] && return 0
    [ "$status" = 429 ] || lp_fail "GET $1: $status"
    sleep 0.2
  done
  lp_fail "GET $1: still 429"
}
bad=0
for id in $(jq -r .order_id "$LP_TMP/bc.jsonl" | head -n 10); do
  bc_get "v2/orders/$id" "$LP_TMP/bco.json"
  bc_get "v2/orders/$id/products" "$LP_TMP/bcp.json"
  want=$(jq -c --slurpfile p "$LP_TMP/bcp.json" \
    '[(.customer_id | tostring), (.total_inc_tax | tonumber), .currency_code, ($p[0] | length)]' "$LP_TMP/bco.json")
  got=$(jq -c "select(.order_id == \"$id\") | [.customer_id, (.total | tonumber), .currency, (.line_items | length)]" "$LP_TMP/bc.jsonl")
  [ "$want" = "$got" ] || { echo "order $id: want $want, got $got" >&2; bad=1; }
done
lp_assert_eq "$bad" 0 "BigCommerce orders carry the store's customer, total, currency and lines"
lp_assert_eq "$(jq -r .shop "$LP_TMP/bc.jsonl" | sort -u)" bc-sbx123 "the shop is the store"
waits=$(curl -sf "$BRIDGE/metrics" | sed -n 's/^loyalty_bridge_fetch_waits_total{.*} \([0-9]*\)$/\1/p')
[ "${waits:-0}" -gt 0 ] || lp_fail "60 fetches against a quota of 12/s never waited for it"
echo "ok: the bridge kept to the store's quota ($waits fetches waited for its reset)"

bc_send store/order/refund/created 30
orders
jq -c 'select(.source == "bigcommerce" and .status == "refunded")' "$LP_TMP/orders.jsonl" >"$LP_TMP/bcr.jsonl"
[ -s "$LP_TMP/bcr.jsonl" ] || lp_fail "no refunded BigCommerce events"
id=$(jq -r .order_id "$LP_TMP/bcr.jsonl" | head -n1)
bc_get "v3/orders/$id/payment_actions/refunds" "$LP_TMP/bcref.json"
lp_assert_eq "$(jq -r "select(.order_id == \"$id\") | .total | tonumber" "$LP_TMP/bcr.jsonl")" \
  "$(jq -r '.data[0].total_amount | tonumber' "$LP_TMP/bcref.json")" "refund/created: exactly that refund's amount"

bc_send store/customer/updated 3
customers
lp_assert_eq "$(jq -r 'select(.source == "bigcommerce") | .customer_id' "$LP_TMP/customers.jsonl" | sort -u | wc -l)" 3 \
  "store/customer/updated: three customers"

BODY='{"scope":"store/order/created","store_id":"1025646","data":{"type":"order","id":105},"hash":"feedc0de","created_at":1561479335,"producer":"stores/sbx123"}'
bc_post() { # bc_post SECRET: prints the status
  curl -s -o "$LP_TMP/resp" -w '%{http_code}' -X POST -H "X-Bridge-Secret: $1" \
    -H 'Content-Type: application/json' -d "$BODY" "$BRIDGE/webhooks/bigcommerce"
}
lp_assert_eq "$(bc_post wrong)" 401 "BigCommerce: a wrong secret"
kill -STOP "$SANDBOX_PID" # the store's API stops answering
lp_assert_eq "$(bc_post bc-secret)" 503 "the store's API unreachable"
grep -q 'gave up' "$LP_TMP/resp" || lp_fail "503 without the reason: $(cat "$LP_TMP/resp")"
kill -CONT "$SANDBOX_PID"
sleep 1.2 # the quota window the timed-out fetch may have spent
lp_assert_eq "$(bc_post bc-secret)" 200 "BigCommerce's retry once the API answers"
lp_assert_eq "$(bc_post bc-secret)" 200 "and a repeat (duplicate)"
grep -q '"duplicate":true' "$LP_TMP/resp" || lp_fail "the repeat was not a duplicate"
orders
lp_assert_eq "$(jq -r 'select(.event_id == "bigcommerce:sbx123:feedc0de") | .order_id' "$LP_TMP/orders.jsonl")" \
  105 "the callback landed exactly once"

# --- Adobe Commerce -------------------------------------------------------
lp_assert_eq "$(curl -s "$BRIDGE/webhooks/adobe?challenge=c4a11e" | jq -r .challenge)" c4a11e \
  "the I/O Events registration challenge"
adobe() { # adobe FILE [KEY]: prints the status
  local sig
  sig=$(openssl dgst -sha256 -sign "${2:-$LP_TMP/adobe.key}" "$1" | base64 -w0)
  curl -s -o "$LP_TMP/resp" -w '%{http_code}' -X POST --data-binary "@$1" \
    -H 'Content-Type: application/cloudevents+json' \
    -H "x-adobe-digital-signature-1: $sig" -H 'x-adobe-public-key1-path: /prod/keys/pub-key-1.pem' \
    "$BRIDGE/webhooks/adobe"
}
lp_assert_eq "$(adobe "$UFX/adobe-order-event.json")" 200 "a signed Adobe order event"
lp_assert_eq "$(adobe "$UFX/adobe-order-event.json")" 200 "the same event again"
grep -q '"duplicate":true' "$LP_TMP/resp" || lp_fail "the repeat was not a duplicate"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$LP_TMP/other.key" 2>/dev/null
lp_assert_eq "$(adobe "$UFX/adobe-customer-event.json" "$LP_TMP/other.key")" 401 "signed with another key"
lp_assert_eq "$(adobe "$UFX/adobe-customer-event.json")" 200 "a signed Adobe customer event"
# Two events whose ids share their first 150 bytes are two events, not a
# duplicate (the dedupe key is the whole id, never a cut of it).
LONG=$(printf 'e%.0s' $(seq 150))
for tail in a b; do
  jq -c --arg id "$LONG$tail" '.id = $id | .data.value.id = "8"' \
    "$UFX/adobe-customer-event.json" >"$LP_TMP/adobe-long-$tail.json"
  lp_assert_eq "$(adobe "$LP_TMP/adobe-long-$tail.json")" 200 "a long Adobe event id ($tail)"
  if grep -q '"duplicate"' "$LP_TMP/resp"; then lp_fail "event $tail taken for a duplicate"; fi
done
orders
customers
lp_assert_eq "$(jq -r 'select(.source == "adobe_commerce" and .customer_id == "8") | .event_id' "$LP_TMP/customers.jsonl" | sort | tr '\n' ' ')" \
  "adobe:${LONG}a adobe:${LONG}b " "both long-id Adobe events landed"
lp_assert_eq "$(jq -c 'select(.source == "adobe_commerce") | [.order_id, .customer_id, .total, .currency, (.line_items | length)]' "$LP_TMP/orders.jsonl")" \
  '["42","7","123.45","EUR",2]' "the Adobe order once: the configurable product counted once"
lp_assert_eq "$(jq -r 'select(.source == "adobe_commerce" and .customer_id == "7") | [.customer_id, .marketing_consent, .birthday] | join(" ")' "$LP_TMP/customers.jsonl")" \
  "7 subscribed 1990-05-17" "the Adobe customer: consent and birthday"

curl -sf "$BRIDGE/metrics" >"$LP_TMP/metrics.txt"
for label in 'shopify refunds/create 200' 'bigcommerce store/order/created 200' \
  'adobe order 200' 'adobe customer 200' 'bigcommerce duplicate' 'shopify dead_letter'; do
  grep -q "loyalty_webhooks_total{.*webhook=\"$label" "$LP_TMP/metrics.txt" || lp_fail "no metric for '$label': $(grep loyalty_webhooks "$LP_TMP/metrics.txt")"
done
echo "ok: /metrics counts each platform and topic"
lp_stop_pid "$BRIDGE_PID"
echo "PASS"
