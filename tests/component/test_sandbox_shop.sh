# Sandbox, shop side: a generated shop (order k a pure function of seed and
# k) served as Shopify REST (Link/page_info pagination, status filter,
# X-Shopify-Access-Token, leaky bucket with 429 + Retry-After and the
# call-limit header) and BigCommerce REST (pages until 204, products, v3
# customers and refunds, X-Rate-Limit-* quota and 429); the same seed gives
# the same bytes; the webhook sender delivers Shopify (HMAC-signed) and
# BigCommerce (ids-only, hash, custom header) webhooks to the sandbox's own
# sink with duplicates, reordering and retries carrying the original body;
# a million orders cost no memory; SIGTERM exits 0. Only bash, curl, jq
# (and openssl, sha1sum, sha256sum for independent checks).
set -euo pipefail
. tests/lib.sh

lp_start_sandbox -X log.level=warn
A=$SANDBOX_URL
A_PID=$SANDBOX_PID
lp_start_sandbox -X log.level=warn -X shop.seed=7
B=$SANDBOX_URL
B_PID=$SANDBOX_PID

SH=(-H 'X-Shopify-Access-Token: shpat_sandbox')
BC=(-H 'X-Auth-Token: bc_sandbox' -H 'Accept: application/json')
V=admin/api/2025-01

# call METHOD URL [curl args]: prints the status; body and headers of the
# answer are in $LP_TMP/body and $LP_TMP/headers.
call() {
  local method=$1 url=$2
  shift 2
  curl -s -o "$LP_TMP/body" -D "$LP_TMP/headers" -w '%{http_code}' \
    -X "$method" "$url" "$@"
}
body() { cat "$LP_TMP/body"; }
jbody() { jq -c "$1" "$LP_TMP/body"; }
jbody_r() { jq -r "$1" "$LP_TMP/body"; }
header() { # the value of a response header, or empty
  { grep -i "^$1:" "$LP_TMP/headers" || true; } | head -n1 | cut -d: -f2- |
    sed 's/^ *//; s/\r$//'
}
link() { # the URL of rel=$1 in the last Link header, or empty
  header Link | { grep -o "<[^>]*>; rel=\"$1\"" || true; } | sed 's/^<//; s/>.*//'
}
shop() { curl -s -o "$LP_TMP/shop" -w '%{http_code}' -X POST "$1/_sandbox/shop" -d "$2"; }
sink_config() { curl -s -o /dev/null -w '%{http_code}' -X POST "$1/_sandbox/webhooks/sink/config" -d "$2"; }
send() { # send URL JSON: the sender's answer in $LP_TMP/sent, prints the status
  curl -s -o "$LP_TMP/sent" -w '%{http_code}' --max-time 120 -X POST \
    "$1/_sandbox/webhooks/send" -d "$2"
}
sent() { jq -c "$1" "$LP_TMP/sent"; }
sink() { curl -s "$1/_sandbox/webhooks/sink?bodies=1" >"$LP_TMP/sink"; }
jsink() { jq -c "$1" "$LP_TMP/sink"; }
same_bytes() { # same_bytes A B WHAT
  cmp -s "$1" "$2" || lp_fail "$3: $1 and $2 differ"
  echo "ok: $3 ($(wc -c <"$1") bytes)"
}

# --- --help, configuration ------------------------------------------------
"$BIN/sandbox" --help >"$LP_TMP/help.txt"
for key in shop.orders shop.customers shop.seed; do
  grep -q "^  $key  *int  *default: " "$LP_TMP/help.txt" || lp_fail "--help does not list $key"
done
for path in /admin/api/ /stores/ /_sandbox/shop /_sandbox/webhooks/send /_sandbox/webhooks/sink; do
  grep -q "$path" "$LP_TMP/help.txt" || lp_fail "--help does not list $path"
done
echo "ok: --help lists the shop keys and endpoints"

lp_assert_eq "$(curl -s "$A/_sandbox/shop" | jq -c '[.orders, .customers, .seed, .shop, .store_hash, .start, .shopify_token, .bigcommerce_token, .bucket_size, .leak_per_s, .bc_quota, .bc_window_ms, .burst_429_permille, .cancel_permille, .refund_permille]')" \
  '[1000,200,1,"sandbox-shop.myshopify.com","sbx123","2025-01-01T00:00:00Z","shpat_sandbox","bc_sandbox",40,2,150,30000,0,30,30]' "shop defaults"
lp_assert_eq "$(curl -s "$B/_sandbox/shop" | jq -c .seed)" 7 "-X shop.seed"
lp_assert_eq "$(shop "$A" '{"orders":10,"colour":"red"}')" 400 "shop: unknown key"
grep -q 'colour: unknown key' "$LP_TMP/shop" || lp_fail "unknown key not named: $(cat "$LP_TMP/shop")"
lp_assert_eq "$(shop "$A" '{"orders":1000001}')" 400 "shop: orders above 1,000,000"
grep -q '"orders: not an integer in 0..1000000"' "$LP_TMP/shop" || lp_fail "orders bound: $(cat "$LP_TMP/shop")"
lp_assert_eq "$(shop "$A" '{"cancel_permille":600,"refund_permille":500}')" 400 "shop: cancel + refund > 1000"
lp_assert_eq "$(shop "$A" '{"start":"yesterday"}')" 400 "shop: bad start"
lp_assert_eq "$(shop "$A" '{"shop":"a b"}')" 400 "shop: bad shop domain"
lp_assert_eq "$(shop "$A" '{"orders":')" 400 "shop: malformed JSON"
lp_assert_eq "$(curl -s "$A/_sandbox/shop" | jq .orders)" 1000 "a refused change changes nothing"
# Big enough limits for the functional checks; the limit checks set their own.
for u in "$A" "$B"; do
  lp_assert_eq "$(shop "$u" '{"orders":1000,"seed":7,"bucket_size":100000,"bc_quota":100000}')" 200 "configure 1,000 orders, seed 7"
done
lp_assert_eq "$(jq -c '[.orders, .seed, .bucket_size]' "$LP_TMP/shop")" '[1000,7,100000]' "POST answers the new configuration"

# --- Shopify: auth ------------------------------------------------------------
lp_assert_eq "$(call GET "$A/$V/orders.json" -H 'X-Shopify-Access-Token: wrong')" 401 "Shopify wrong token"
lp_assert_eq "$(body)" '{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}' "Shopify 401 body"
[[ "$(header X-Shopify-Shop-Api-Call-Limit)" =~ ^[0-9]+/100000$ ]] || lp_fail "401 without the call-limit header"
lp_assert_eq "$(call GET "$A/$V/orders.json")" 401 "Shopify no token"

# --- Shopify: orders.json paging (status=any) ---------------------------------
: >"$LP_TMP/ids"
url="$A/$V/orders.json?status=any&limit=250"
pages=0 prev_missing_on_first=1 prev_on_later=1
while [ -n "$url" ]; do
  lp_assert_eq "$(call GET "$url" "${SH[@]}")" 200 "orders.json page $((pages + 1))"
  jbody_r '.orders[].id' >>"$LP_TMP/ids"
  if [ "$pages" -eq 0 ]; then
    [ -z "$(link previous)" ] || prev_missing_on_first=0
    body >"$LP_TMP/first_page"
  elif [ -n "$(link next)" ]; then
    [ -n "$(link previous)" ] || prev_on_later=0
  else
    [ -z "$(header Link)" ] || lp_fail "the last page has a Link header: $(header Link)"
  fi
  [[ "$(header X-Shopify-Shop-Api-Call-Limit)" =~ ^[0-9]+/100000$ ]] || lp_fail "no call-limit header"
  url=$(link next)
  pages=$((pages + 1))
done
lp_assert_eq "$pages" 4 "status=any, limit=250: 4 pages"
lp_assert_eq "$(wc -l <"$LP_TMP/ids")" 1000 "every order"
lp_assert_eq "$(sort -u "$LP_TMP/ids" | wc -l)" 1000 "every order once"
lp_assert_eq "$(head -n1 "$LP_TMP/ids") $(tail -n1 "$LP_TMP/ids")" "5000000000 5000000999" "ids 5000000000 + k"
sort -n -c "$LP_TMP/ids" || lp_fail "orders not ascending by id"
lp_assert_eq "$prev_missing_on_first$prev_on_later" 11 "rel=previous after the first page; no Link on the last"
[ -z "$(link next)" ] || lp_fail "last page has a next link"

# The previous link of page 2 gives page 1 again.
call GET "$A/$V/orders.json?status=any&limit=250" "${SH[@]}" >/dev/null
call GET "$(link next)" "${SH[@]}" >/dev/null
call GET "$(link previous)" "${SH[@]}" >/dev/null
cmp -s "$LP_TMP/body" "$LP_TMP/first_page" || lp_fail "rel=previous does not lead back to page 1"
echo "ok: rel=previous leads back to the same bytes"

# --- Shopify: status=open (the default) excludes cancelled ---------------------
: >"$LP_TMP/open"
url="$A/$V/orders.json?limit=100"
while [ -n "$url" ]; do
  call GET "$url" "${SH[@]}" >/dev/null
  jbody '.orders[] | [.id, .cancelled_at]' >>"$LP_TMP/open"
  url=$(link next)
done
call GET "$A/$V/orders.json?status=cancelled&limit=250" "${SH[@]}" >/dev/null
cancelled=$(jbody '.orders | length')
[ "$cancelled" -gt 10 ] && [ "$cancelled" -lt 60 ] || lp_fail "cancel_permille 30: $cancelled cancelled of 1000"
jq -e 'all(.orders[]; .cancelled_at != null and .cancelled_at > .created_at and .financial_status == "voided" and .updated_at == .cancelled_at)' \
  "$LP_TMP/body" >/dev/null || lp_fail "cancelled orders' shape"
lp_assert_eq "$(wc -l <"$LP_TMP/open")" "$((1000 - cancelled))" "status=open: every order but the $cancelled cancelled"
grep -qv ',null]$' "$LP_TMP/open" && lp_fail "status=open returned a cancelled order"
lp_assert_eq "$(call GET "$A/$V/orders/count.json" "${SH[@]}")$(body)" "200{\"count\":$((1000 - cancelled))}" "count.json (open)"
lp_assert_eq "$(call GET "$A/$V/orders/count.json?status=any" "${SH[@]}")$(body)" '200{"count":1000}' "count.json status=any"

# --- Shopify: filters ---------------------------------------------------------
call GET "$A/$V/orders.json?status=any&limit=3&since_id=5000000500" "${SH[@]}" >/dev/null
lp_assert_eq "$(jbody '[.orders[].id]')" '[5000000501,5000000502,5000000503]' "since_id"
call GET "$A/$V/orders.json?status=any&limit=250&created_at_min=2025-01-10T00:00:00Z&created_at_max=2025-01-11T00:00:00%2B00:00" "${SH[@]}" >/dev/null
n=$(jbody '.orders | length')
[ "$n" -gt 20 ] && [ "$n" -lt 80 ] || lp_fail "one day of orders: $n"
jq -e 'all(.orders[]; .created_at >= "2025-01-10T00:00:00+00:00" and .created_at <= "2025-01-11T00:00:00+00:00")' "$LP_TMP/body" >/dev/null ||
  lp_fail "created_at_min/max"
call GET "$A/$V/orders.json?status=any&limit=250&updated_at_min=2025-01-20T00:00:00Z" "${SH[@]}" >/dev/null
jq -e 'all(.orders[]; .updated_at >= "2025-01-20T00:00:00+00:00") and (.orders | length) > 0' "$LP_TMP/body" >/dev/null || lp_fail "updated_at_min"
call GET "$A/$V/orders.json?status=any&limit=2&fields=id,total_price" "${SH[@]}" >/dev/null
lp_assert_eq "$(jbody '[.orders[] | keys]')" '[["id","total_price"],["id","total_price"]]' "fields="
[[ "$(link next)" == *"fields=id,total_price"* ]] || lp_fail "the next link keeps fields"
lp_assert_eq "$(call GET "$(link next)" "${SH[@]}")$(jbody '[.orders[].id]')" '200[5000000002,5000000003]' "fields= page 2"
echo "ok: since_id, created_at_min/max, updated_at_min, fields"

# --- Shopify: bad parameters ----------------------------------------------------
call GET "$A/$V/orders.json?status=any&limit=5" "${SH[@]}" >/dev/null
next=$(link next)
lp_assert_eq "$(call GET "$next&status=any" "${SH[@]}")" 400 "page_info + status"
jq -e '.errors.page_info | test("status")' "$LP_TMP/body" >/dev/null || lp_fail "page_info error: $(body)"
lp_assert_eq "$(call GET "$next&since_id=5" "${SH[@]}")" 400 "page_info + since_id"
lp_assert_eq "$(call GET "$next&updated_at_min=2025-01-01T00:00:00Z" "${SH[@]}")" 400 "page_info + updated_at_min"
lp_assert_eq "$(call GET "$next&limit=7&fields=id" "${SH[@]}")" 200 "page_info + limit + fields"
lp_assert_eq "$(call GET "$A/$V/orders.json?page_info=bm90LWEtdG9rZW4" "${SH[@]}")" 400 "page_info not issued here"
lp_assert_eq "$(jbody '.errors | keys')" '["page_info"]' "bad page_info names page_info"
lp_assert_eq "$(call GET "$A/$V/orders.json?page_info=%00%ff" "${SH[@]}")" 400 "page_info garbage"
lp_assert_eq "$(call GET "$A/$V/orders.json?limit=251" "${SH[@]}")" 400 "limit 251"
lp_assert_eq "$(jbody '.errors | keys')" '["limit"]' "limit error names limit"
lp_assert_eq "$(call GET "$A/$V/orders.json?limit=0" "${SH[@]}")" 400 "limit 0"
lp_assert_eq "$(call GET "$A/$V/orders.json?limit=abc" "${SH[@]}")" 400 "limit abc"
lp_assert_eq "$(call GET "$A/$V/orders.json?status=weird" "${SH[@]}")" 400 "status weird"
lp_assert_eq "$(call GET "$A/$V/orders.json?since_id=-1" "${SH[@]}")" 400 "since_id -1"
lp_assert_eq "$(call GET "$A/$V/orders.json?created_at_min=soon" "${SH[@]}")" 400 "created_at_min soon"
lp_assert_eq "$(call GET "$A/$V/orders.json?fields=id;drop" "${SH[@]}")" 400 "fields with ';'"
lp_assert_eq "$(call POST "$A/$V/orders.json" "${SH[@]}" -d '{}')" 405 "POST orders.json"
lp_assert_eq "$(call GET "$A/$V/products.json" "${SH[@]}")" 404 "unknown resource"
lp_assert_eq "$(body)" '{"errors":"Not Found"}' "Shopify 404 body"

# --- Shopify: one order, refunds, customers -------------------------------------
lp_assert_eq "$(call GET "$A/$V/orders/5000000042.json" "${SH[@]}")" 200 "orders/{id}.json"
lp_assert_eq "$(jbody '[.order.id, .order.name, (.order.line_items | length > 0 and length <= 4), (.order.customer.id >= 7000000000), .order.customer.email == .order.email]')" \
  '[5000000042,"#1043",true,true,true]' "order shape"
jq -e '.order.line_items | all(.vendor != null and .product_type != null and .sku != null and (.price | test("^[0-9]+\\.[0-9]{2}$")))' \
  "$LP_TMP/body" >/dev/null || lp_fail "line items: vendor, product_type, sku, price"
lp_assert_eq "$(call GET "$A/$V/orders/5000001000.json" "${SH[@]}")$(body)" '404{"errors":"Not Found"}' "order past the end"
lp_assert_eq "$(call GET "$A/$V/orders/abc.json" "${SH[@]}")" 404 "order id abc"
lp_assert_eq "$(call GET "$A/$V/orders/99999999999999999999999.json" "${SH[@]}")" 404 "order id overflow"

: >"$LP_TMP/all_orders"
url="$A/$V/orders.json?status=any&limit=250"
while [ -n "$url" ]; do
  call GET "$url" "${SH[@]}" >/dev/null
  jbody '.orders[]' >>"$LP_TMP/all_orders"
  url=$(link next)
done
refunded=$(jq -s '[.[] | select(.refunds | length > 0)] | length' "$LP_TMP/all_orders")
[ "$refunded" -gt 10 ] && [ "$refunded" -lt 60 ] || lp_fail "refund_permille 30: $refunded refunded"
jq -se 'all(.[] | select(.refunds | length > 0);
  .refunds[0].order_id == .id and .refunds[0].transactions[0].kind == "refund" and
  (.refunds[0].transactions[0].amount | tonumber) <= (.total_price | tonumber) and
  (.refunds[0].transactions[0].amount | tonumber) > 0 and
  .updated_at == .refunds[0].created_at and .cancelled_at == null and
  (.financial_status == "refunded" or .financial_status == "partially_refunded"))' \
  "$LP_TMP/all_orders" >/dev/null || lp_fail "refunds: shape, amount <= total, updated_at"
jq -se 'map(.created_at) as $c | $c == ($c | sort)' "$LP_TMP/all_orders" >/dev/null || lp_fail "created_at not non-decreasing"
jq -se 'all(.[] | select(.refunds == [] and .cancelled_at == null); .financial_status == "paid" and .updated_at == .created_at)' \
  "$LP_TMP/all_orders" >/dev/null || lp_fail "other orders: paid, updated_at = created_at"
lp_assert_eq "$(jq -s '[.[].customer.id] | unique | length > 100 and all(. >= 7000000000 and . < 7000000200)' "$LP_TMP/all_orders")" true "orders spread over the 200 customers"
echo "ok: $cancelled cancelled, $refunded refunded (Shopify refund shape, amount <= total)"

: >"$LP_TMP/customers"
url="$A/$V/customers.json?limit=50"
while [ -n "$url" ]; do
  call GET "$url" "${SH[@]}" >/dev/null
  jbody_r '.customers[].id' >>"$LP_TMP/customers"
  url=$(link next)
done
lp_assert_eq "$(sort -u "$LP_TMP/customers" | wc -l) $(head -n1 "$LP_TMP/customers")" "200 7000000000" "customers.json: every customer once"
lp_assert_eq "$(call GET "$A/$V/customers/7000000003.json" "${SH[@]}")" 200 "customers/{id}.json"
jq -e '.customer | .id == 7000000003 and (.email | test("@example.com$")) and
  (.email_marketing_consent.state | test("subscribed")) and .created_at <= .updated_at' \
  "$LP_TMP/body" >/dev/null || lp_fail "customer shape: $(body)"
lp_assert_eq "$(call GET "$A/$V/customers/7000000200.json" "${SH[@]}")" 404 "customer past the end"
lp_assert_eq "$(call GET "$A/$V/customers/count.json" "${SH[@]}")$(body)" '200{"count":200}' "customers/count.json"

# --- same seed, same bytes ------------------------------------------------------
call GET "$A/$V/orders.json?status=any&limit=250&since_id=5000000300" "${SH[@]}" >/dev/null
cp "$LP_TMP/body" "$LP_TMP/seed7_a"
call GET "$B/$V/orders.json?status=any&limit=250&since_id=5000000300" "${SH[@]}" >/dev/null
same_bytes "$LP_TMP/seed7_a" "$LP_TMP/body" "seed 7 on two sandboxes: identical bytes"
shop "$B" '{"seed":8}' >/dev/null
call GET "$B/$V/orders.json?status=any&limit=250&since_id=5000000300" "${SH[@]}" >/dev/null
cmp -s "$LP_TMP/seed7_a" "$LP_TMP/body" && lp_fail "seed 8 gives the same orders as seed 7"
shop "$B" '{"seed":7}' >/dev/null
call GET "$B/$V/orders.json?status=any&limit=250&since_id=5000000300" "${SH[@]}" >/dev/null
same_bytes "$LP_TMP/seed7_a" "$LP_TMP/body" "back to seed 7: identical bytes again"

# --- Shopify: leaky bucket ------------------------------------------------------
lp_assert_eq "$(shop "$A" '{"bucket_size":5,"leak_per_s":1}')" 200 "bucket of 5 leaking 1/s"
codes=""
for _ in 1 2 3 4 5 6 7; do codes+="$(call GET "$A/$V/orders/count.json" "${SH[@]}") "; done
[[ "$codes" == "200 200 200 200 200 429 "* ]] || lp_fail "draining the bucket: $codes"
lp_assert_eq "$(header X-Shopify-Shop-Api-Call-Limit)" 5/5 "429: call-limit header full"
retry=$(header Retry-After)
[[ "$retry" =~ ^[0-9]+\.[0-9]$ ]] || lp_fail "429: Retry-After '$retry'"
lp_assert_eq "$(jbody_r .errors)" "Exceeded 1 calls per second for api client. Reduce request rates to resume uninterrupted service." "429 body"
sleep "$retry"
lp_assert_eq "$(call GET "$A/$V/orders/count.json" "${SH[@]}")" 200 "after Retry-After ($retry s): 200"
lp_assert_eq "$(curl -s "$A/_sandbox/shop" | jq '.stats.shopify.throttled >= 1')" true "throttled counted"
lp_assert_eq "$(shop "$A" '{"bucket_size":100000,"burst_429_permille":1000}')" 200 "burst_429_permille 1000"
lp_assert_eq "$(call GET "$A/$V/orders/count.json" "${SH[@]}")$(header Retry-After)" 4291.0 "injected 429 with Retry-After"
lp_assert_eq "$(call GET "$A/stores/sbx123/v2/orders" "${BC[@]}")" 429 "injected 429 on BigCommerce too"
[ -n "$(header X-Rate-Limit-Time-Reset-Ms)" ] || lp_fail "injected BigCommerce 429 without rate headers"
shop "$A" '{"burst_429_permille":0}' >/dev/null
lp_assert_eq "$(curl -s "$A/_sandbox/shop" | jq '[.stats.shopify.injected_429, .stats.bigcommerce.injected_429]' | jq -c .)" '[1,1]' "injected 429s counted"

# --- BigCommerce ------------------------------------------------------------------
S="$A/stores/sbx123"
lp_assert_eq "$(call GET "$S/v2/orders" -H 'X-Auth-Token: nope')" 401 "BigCommerce wrong token"
lp_assert_eq "$(header X-Rate-Limit-Requests-Quota)" 100000 "BigCommerce 401 carries the rate headers"
lp_assert_eq "$(call GET "$A/stores/other/v2/orders" "${BC[@]}")" 404 "BigCommerce wrong store hash"
lp_assert_eq "$(call GET "$S/v2/orders" -H "X-Auth-Token: bc_sandbox" -H "Accept: application/xml")" 406 "BigCommerce Accept: xml"
: >"$LP_TMP/bc_orders"
page=1
while :; do
  status=$(call GET "$S/v2/orders?page=$page&limit=250&sort=id:asc" "${BC[@]}")
  [ "$status" = 204 ] && break
  lp_assert_eq "$status" 200 "v2/orders page $page"
  for h in Left Quota; do [ -n "$(header "X-Rate-Limit-Requests-$h")" ] || lp_fail "no X-Rate-Limit-Requests-$h"; done
  for h in Window Reset; do [ -n "$(header "X-Rate-Limit-Time-$h-Ms")" ] || lp_fail "no X-Rate-Limit-Time-$h-Ms"; done
  jbody '.[]' >>"$LP_TMP/bc_orders"
  page=$((page + 1))
  [ "$page" -le 10 ] || lp_fail "v2/orders never answered 204"
done
lp_assert_eq "$page $(wc -c <"$LP_TMP/body")" "5 0" "v2/orders: 4 pages, then 204 with an empty body"
lp_assert_eq "$(jq -s '[length, (map(.id) | unique | length), .[0].id, .[-1].id]' "$LP_TMP/bc_orders" | jq -c .)" '[1000,1000,100,1099]' "every BigCommerce order once, ids 100 + k"
lp_assert_eq "$(jq -s '[.[] | select(.status_id == 5)] | length' "$LP_TMP/bc_orders")" "$cancelled" "status_id 5 = the cancelled orders"
lp_assert_eq "$(jq -s '[.[] | select(.status_id == 14 and (.refunded_amount | tonumber) > 0)] | length' "$LP_TMP/bc_orders")" "$refunded" "status_id 14 + refunded_amount = the refunded orders"
jq -se 'all(.[]; (.status_id | IN(5, 10, 11, 14)) and
  (.date_created | test("^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000$")) and
  ([.subtotal_ex_tax, .subtotal_inc_tax, .total_ex_tax, .total_inc_tax, .total_tax, .discount_amount, .coupon_discount, .refunded_amount] | all(test("^[0-9]+\\.[0-9]{4}$"))) and
  .currency_code == "USD" and (.billing_address.email | test("@")) and (.products.resource | test("/products$")) and
  (.customer_id >= 1 and .customer_id <= 200))' "$LP_TMP/bc_orders" >/dev/null || lp_fail "v2 order shape"
lp_assert_eq "$(call GET "$S/v2/orders?limit=251" "${BC[@]}")" 400 "v2/orders limit 251"
jq -e '.[0].status == 400 and (.[0].message | test("limit"))' "$LP_TMP/body" >/dev/null || lp_fail "v2 400 body: $(body)"
lp_assert_eq "$(call GET "$S/v2/orders?min_id=1095&limit=50" "${BC[@]}")$(jbody '[.[].id]')" '200[1095,1096,1097,1098,1099]' "min_id"
lp_assert_eq "$(call GET "$S/v2/orders?sort=id:desc&limit=2" "${BC[@]}")$(jbody '[.[].id]')" '200[1099,1098]' "sort=id:desc"
lp_assert_eq "$(call GET "$S/v2/orders?status_id=5&limit=250" "${BC[@]}")$(jbody 'length')" "200$cancelled" "status_id=5"
call GET "$S/v2/orders?limit=250&min_date_modified=Mon,%2020%20Jan%202025%2000:00:00%20%2B0000" "${BC[@]}" >/dev/null
jq -e 'length > 0' "$LP_TMP/body" >/dev/null || lp_fail "min_date_modified (RFC 2822)"
lp_assert_eq "$(call GET "$S/v2/orders/count" "${BC[@]}")$(jbody .count)" 2001000 "v2/orders/count"
lp_assert_eq "$(call GET "$S/v2/orders/142" "${BC[@]}")$(jbody .id)" 200142 "v2/orders/{id}"
lp_assert_eq "$(call GET "$S/v2/orders/1100" "${BC[@]}")$(body)" '404[{"status":404,"message":"The requested resource was not found."}]' "v2 order past the end"
lp_assert_eq "$(call GET "$S/v2/orders/142/products" "${BC[@]}")" 200 "v2/orders/{id}/products"
jq -e 'length >= 1 and all(.[]; .order_id == 142 and (.brand | length) > 0 and (.category | length) > 0 and
  (.base_price | test("^[0-9]+\\.[0-9]{4}$")) and .quantity >= 1 and (.sku | length) > 0)' "$LP_TMP/body" >/dev/null ||
  lp_fail "products shape: $(body)"
lp_assert_eq "$(call GET "$S/v2/orders/abc/products" "${BC[@]}")" 404 "products of order abc"
lp_assert_eq "$(call GET "$S/v3/customers?id:in=2,1,2,999" "${BC[@]}")" 200 "v3/customers id:in"
lp_assert_eq "$(jbody '[[.data[].id], .meta.pagination.total, (.data[0] | has("accepts_product_review_abandoned_cart_emails")), (.data[0].date_created | test("^[0-9-]{10}T[0-9:]{8}Z$"))]')" \
  '[[1,2],2,true,true]' "v3 customers: known ids, deduped, with the consent flag"
lp_assert_eq "$(call GET "$S/v3/customers?limit=50&page=4" "${BC[@]}")$(jbody '[.data[0].id, .meta.pagination.total_pages, (.meta.pagination.links | has("next"))]')" \
  '200[151,4,false]' "v3 customers pages"
lp_assert_eq "$(call GET "$S/v3/customers?id:in=1,x" "${BC[@]}")" 422 "v3 customers id:in=x"
rid=$(jq -s 'map(select(.status_id == 14)) | .[0].id' "$LP_TMP/bc_orders")
ramount=$(jq -rs "map(select(.id == $rid)) | .[0].refunded_amount" "$LP_TMP/bc_orders")
lp_assert_eq "$(call GET "$S/v3/orders/$rid/payment_actions/refunds" "${BC[@]}")$(jbody '[.data[0].order_id, .data[0].total_amount, (.data[0].created | test("Z$"))]')" \
  "200[$rid,\"$ramount\",true]" "v3 refunds of a refunded order"
lp_assert_eq "$(call GET "$S/v3/orders/100/payment_actions/refunds" "${BC[@]}")$(jbody .data)" '200[]' "v3 refunds of an order without"
lp_assert_eq "$(call GET "$S/v3/orders/5000/payment_actions/refunds" "${BC[@]}")$(jbody .status)" 404404 "v3 refunds of an unknown order"

lp_assert_eq "$(shop "$A" '{"bc_quota":3,"bc_window_ms":60000}')" 200 "BigCommerce quota 3 per minute"
left=""
for _ in 1 2 3; do call GET "$S/v2/orders/count" "${BC[@]}" >/dev/null; left+="$(header X-Rate-Limit-Requests-Left)"; done
lp_assert_eq "$left" 210 "Requests-Left counts down"
lp_assert_eq "$(call GET "$S/v2/orders/count" "${BC[@]}")" 429 "quota used up: 429"
lp_assert_eq "$(header X-Rate-Limit-Requests-Left)/$(header X-Rate-Limit-Requests-Quota)/$(header X-Rate-Limit-Time-Window-Ms)" 0/3/60000 "429 carries the rate headers"
reset=$(header X-Rate-Limit-Time-Reset-Ms)
[ "$reset" -gt 50000 ] && [ "$reset" -le 60000 ] || lp_fail "Time-Reset-Ms $reset"
shop "$A" '{"bc_quota":100000,"bc_window_ms":30000}' >/dev/null
echo "ok: BigCommerce pages, products, customers, refunds, quota"

# --- webhooks: Shopify ---------------------------------------------------------------
SINK="$A/_sandbox/webhooks/sink"
lp_assert_eq "$(sink_config "$A" '{"secret":"hush","fail_first":0,"clear":true}')" 200 "sink: secret hush"
lp_assert_eq "$(curl -s "$SINK/config")" '{"secret_set":true,"fail_first":0,"fail_status":503}' "sink config (secret not echoed)"
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",\"url\":\"$SINK\",\"secret\":\"hush\",\"topic\":\"orders/create\",\"first\":100,\"count\":60,\"duplicate_permille\":300,\"reorder_window\":10}")" 200 "send 60 orders/create"
lp_assert_eq "$(sent '[.events, .failed, (.deliveries == .events + .duplicates), (.attempts == .deliveries), (.status."200" == .deliveries), (.event_ids | length), (.event_ids | unique | length)]')" \
  '[60,0,true,true,true,60,60]' "counts add up"
dups=$(sent .duplicates)
[ "$dups" -gt 5 ] && [ "$dups" -lt 40 ] || lp_fail "duplicate_permille 300 gave $dups duplicates of 60"
sink "$A"
lp_assert_eq "$(jsink "[.received, ([.deliveries[] | .hmac_ok] | unique), ([.deliveries[] | .platform] | unique), ([.deliveries[].topic] | unique)]")" \
  "[$(sent .deliveries),[true],[\"shopify\"],[\"orders/create\"]]" "every delivery received, HMAC verifies"
jq -e '[.deliveries[] | .headers | has("x-shopify-hmac-sha256") and has("x-shopify-shop-domain") and has("x-shopify-api-version") and
  has("x-shopify-webhook-id") and has("x-shopify-event-id") and has("x-shopify-triggered-at") and
  .["content-type"] == "application/json" and .["x-shopify-shop-domain"] == "sandbox-shop.myshopify.com"] | all' "$LP_TMP/sink" >/dev/null ||
  lp_fail "Shopify delivery headers"
jq -e '.deliveries | group_by(.event_key) | map(select(length > 1)) | length > 0 and
  all(.[]; (map(.body_sha256) | unique | length) == 1 and (map(.headers["x-shopify-webhook-id"]) | unique | length) == length)' \
  "$LP_TMP/sink" >/dev/null || lp_fail "duplicates: same event id and bytes, new webhook id"
lp_assert_eq "$(jsink '[.deliveries[].headers["x-shopify-webhook-id"]] | (unique | length) == length')" true "webhook ids unique per delivery"
# Reordered: first arrivals per event are not in order id order.
arrival=$(jq -c '[.deliveries[].event_key] | reduce .[] as $k ([]; if index([$k]) then . else . + [$k] end)' "$LP_TMP/sink")
[ "$(jq -c sort <<<"$arrival")" = "$(sent ".event_ids | sort")" ] || lp_fail "different events arrived: $arrival"
echo "ok: the same $(jq length <<<"$arrival") events arrived"
[ "$arrival" != "$(sent .event_ids)" ] || lp_fail "reorder_window 10: arrived in order"
lp_assert_eq "$(sent '.reordered > 0')" true "sender reports reordering"
# Independent checks: the body is the REST resource, byte for byte, and
# openssl agrees with the HMAC.
rec=$(jq -c --arg id "$(jq -r ".event_ids[3]" "$LP_TMP/sent")" '[.deliveries[] | select(.event_key == $id)][0]' "$LP_TMP/sink")
call GET "$A/$V/orders/5000000103.json" "${SH[@]}" >/dev/null
rest=$(body)
rest=${rest#\{\"order\":}
rest=${rest%\}}
lp_assert_eq "$(printf '%s' "$rest" | sha256sum | cut -d' ' -f1)" "$(jq -r .body_sha256 <<<"$rec")" "webhook body = orders/{id}.json's order, byte for byte"
lp_assert_eq "$(jq -j .body <<<"$rec" | openssl dgst -sha256 -hmac hush -binary | base64)" "$(jq -r '.headers["x-shopify-hmac-sha256"]' <<<"$rec")" "openssl agrees with X-Shopify-Hmac-Sha256"
# Same request, same plan: the event ids are stable per (topic, order).
ids1=$(sent .event_ids)
send "$A" "{\"platform\":\"shopify\",\"url\":\"$SINK\",\"secret\":\"hush\",\"topic\":\"orders/create\",\"first\":100,\"count\":60}" >/dev/null
[ "$(sent .event_ids)" = "$ids1" ] || lp_fail "event ids changed between two sends"
echo "ok: event ids stable per (topic, order)"
lp_assert_eq "$(sent '[.duplicates, .reordered]')" '[0,0]' "no duplicates or reordering unless asked"
send "$A" "{\"platform\":\"shopify\",\"url\":\"$SINK\",\"secret\":\"hush\",\"topic\":\"orders/paid\",\"first\":100,\"count\":3}" >/dev/null
[ "$(sent '.event_ids[0]')" != "$(jq -c '.[0]' <<<"$ids1")" ] || lp_fail "orders/paid shares orders/create's event id"

# Wrong secret: the sink says so.
sink_config "$A" '{"secret":"other","clear":true}' >/dev/null
send "$A" "{\"platform\":\"shopify\",\"url\":\"$SINK\",\"secret\":\"hush\",\"topic\":\"customers/update\",\"count\":5}" >/dev/null
sink "$A"
lp_assert_eq "$(jsink '[.received, ([.deliveries[].hmac_ok] | unique)]')" '[5,[false]]' "HMAC with another secret does not verify"

# Retries: the sink fails the first 2 attempts of each event.
sink_config "$A" '{"secret":"hush","fail_first":2,"clear":true}' >/dev/null
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",\"url\":\"$SINK\",\"secret\":\"hush\",\"topic\":\"refunds/create\",\"count\":1000,\"retries\":3,\"retry_backoff_ms\":5,\"concurrency\":4}")" 200 "send refunds/create with retries"
lp_assert_eq "$(sent '[.events, .skipped, .failed, .attempts, .status."503", .status."200"]')" \
  "[$refunded,$((1000 - refunded)),0,$((3 * refunded)),$((2 * refunded)),$refunded]" "refunded orders only; 2 failures then 200 each"
sink "$A"
jq -e '.deliveries | group_by(.event_key) | length > 0 and all(.[];
  length == 3 and (map(.attempt) | sort) == [1,2,3] and (map(.body_sha256) | unique | length) == 1 and
  (map(.headers["x-shopify-webhook-id"]) | unique | length) == 3 and
  (map(.headers["x-shopify-triggered-at"]) | unique | length) == 1 and (map(.status) | sort) == [200,503,503])' \
  "$LP_TMP/sink" >/dev/null || lp_fail "retries: original body, event id and triggered-at; a new webhook id each"
jq -e 'all(.deliveries[]; (.body | fromjson | .transactions[0].kind == "refund" and .order_id >= 5000000000))' "$LP_TMP/sink" >/dev/null ||
  lp_fail "refunds/create body is the refund with order_id"
sink_config "$A" '{"fail_first":5,"clear":true}' >/dev/null
send "$A" "{\"platform\":\"shopify\",\"url\":\"$SINK\",\"secret\":\"hush\",\"topic\":\"customers/create\",\"count\":4,\"retries\":1,\"retry_backoff_ms\":1}" >/dev/null
lp_assert_eq "$(sent '[.deliveries, .attempts, .failed, .status."503"]')" '[4,8,4,8]' "retries exhausted: failed"
dead=$(lp_free_port)
send "$A" "{\"platform\":\"shopify\",\"url\":\"http://127.0.0.1:$dead/hook\",\"secret\":\"hush\",\"topic\":\"orders/create\",\"count\":2,\"retries\":1,\"retry_backoff_ms\":1,\"timeout_ms\":1000}" >/dev/null
lp_assert_eq "$(sent '[.failed, .attempts, .status.transport_error]')" '[2,4,4]' "nobody listening: transport errors, failed"
echo "ok: Shopify webhooks (HMAC, duplicates, reordering, retries)"

# Concurrency: counts still add up.
sink_config "$A" '{"fail_first":0,"clear":true}' >/dev/null
send "$A" "{\"platform\":\"shopify\",\"url\":\"$SINK\",\"secret\":\"hush\",\"topic\":\"orders/paid\",\"count\":1000,\"duplicate_permille\":100,\"concurrency\":16}" >/dev/null
sink "$A"
lp_assert_eq "$(sent '[.events, .failed, (.status."200" == .deliveries)]')" "[$((1000 - cancelled)),0,true]" "orders/paid x 16 workers: paid orders only"
lp_assert_eq "$(jsink .received)" "$(sent .attempts)" "the sink saw every attempt"
echo "ok: 16 concurrent workers: $(sent .deliveries) deliveries in $(sent .elapsed_ms) ms"

# --- webhooks: BigCommerce -----------------------------------------------------------
sink_config "$A" '{"secret":"bc-secret","header":"X-Bridge-Secret","clear":true}' >/dev/null
send "$A" "{\"platform\":\"bigcommerce\",\"url\":\"$SINK\",\"secret\":\"bc-secret\",\"header\":\"X-Bridge-Secret\",\"topic\":\"store/order/created\",\"count\":40,\"duplicate_permille\":300,\"reorder_window\":5}" >/dev/null
sink "$A"
lp_assert_eq "$(jsink "[.received, ([.deliveries[].header_ok] | unique), ([.deliveries[].platform] | unique), ([.deliveries[].hmac_ok] | unique)]")" \
  "[$(sent .deliveries),[true],[\"bigcommerce\"],[null]]" "BigCommerce: custom header matches"
jq -e 'all(.deliveries[]; .body | fromjson | .scope == "store/order/created" and .data.type == "order" and
  .data.id >= 100 and .producer == "stores/sbx123" and (.created_at | type) == "number" and (.store_id | type) == "string" and
  (.hash | test("^[0-9a-f]{40}$")))' "$LP_TMP/sink" >/dev/null || lp_fail "BigCommerce ids-only body"
b=$(jq -r '.deliveries[0].body' "$LP_TMP/sink")
lp_assert_eq "$(jq -cj 'del(.hash)' <<<"$b" | sha1sum | cut -d' ' -f1)" "$(jq -r .hash <<<"$b")" "hash = SHA-1 of the payload without it"
jq -e '.deliveries | group_by(.event_key) | map(select(length > 1)) | length > 0 and all(.[]; (map(.body_sha256) | unique | length) == 1)' \
  "$LP_TMP/sink" >/dev/null || lp_fail "BigCommerce duplicates: same hash, same bytes"
lp_assert_eq "$(sent '.event_ids | length')" 40 "event ids are the hashes"
send "$A" "{\"platform\":\"bigcommerce\",\"url\":\"$SINK\",\"secret\":\"bc-secret\",\"topic\":\"store/order/refund/created\",\"count\":1000}" >/dev/null
lp_assert_eq "$(sent '[.events, .failed]')" "[$refunded,0]" "refund/created: the refunded orders"
sink "$A"
jq -e '[.deliveries[] | .body | fromjson | select(.scope == "store/order/refund/created") | .data.refund.refund_id > 0] | all' \
  "$LP_TMP/sink" >/dev/null || lp_fail "refund/created carries data.refund.refund_id"
send "$A" "{\"platform\":\"bigcommerce\",\"url\":\"$SINK\",\"secret\":\"bc-secret\",\"topic\":\"store/order/statusUpdated\",\"first\":10,\"count\":2}" >/dev/null
sink "$A"
jq -e '[.deliveries[] | .body | fromjson | select(.scope == "store/order/statusUpdated") | .data.status | has("previous_status_id") and has("new_status_id")] | length == 2 and all' \
  "$LP_TMP/sink" >/dev/null || lp_fail "statusUpdated carries data.status"
sink_config "$A" '{"secret":"other","clear":true}' >/dev/null
send "$A" "{\"platform\":\"bigcommerce\",\"url\":\"$SINK\",\"secret\":\"bc-secret\",\"topic\":\"store/customer/updated\",\"count\":3}" >/dev/null
sink "$A"
lp_assert_eq "$(jsink '[.received, ([.deliveries[].header_ok] | unique), (.deliveries[0].body | fromjson | .data.type)]')" '[3,[false],"customer"]' "BigCommerce: wrong header value detected"
echo "ok: BigCommerce webhooks (ids-only body, hash, custom header)"

# --- webhooks: bad requests ------------------------------------------------------------
W="\"url\":\"$SINK\",\"secret\":\"s\""
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",\"url\":\"http://10.0.0.1/x\",\"secret\":\"s\",\"topic\":\"orders/create\"}")" 400 "url off the loopback"
grep -q '127.0.0.0/8' "$LP_TMP/sent" || lp_fail "off-loopback error: $(cat "$LP_TMP/sent")"
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",\"url\":\"https://127.0.0.1/x\",\"secret\":\"s\",\"topic\":\"orders/create\"}")" 400 "https url"
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",$W,\"topic\":\"orders/exploded\"}")" 400 "unknown topic"
lp_assert_eq "$(send "$A" "{\"platform\":\"bigcommerce\",$W,\"topic\":\"orders/create\"}")" 400 "Shopify topic for BigCommerce"
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",\"url\":\"$SINK\",\"topic\":\"orders/create\"}")" 400 "Shopify without secret"
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",$W,\"topic\":\"orders/create\",\"first\":990,\"count\":20}")" 400 "past the last order"
grep -q 'first + count' "$LP_TMP/sent" || lp_fail "range error: $(cat "$LP_TMP/sent")"
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",$W,\"topic\":\"orders/create\",\"concurrency\":65}")" 400 "concurrency 65"
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",$W,\"topic\":\"orders/create\",\"colour\":1}")" 400 "unknown key"
lp_assert_eq "$(send "$A" "{\"platform\":\"shopify\",$W,\"topic\":\"orders/create\",\"secret\":\"a\\nb\"}")" 400 "secret with a newline"
lp_assert_eq "$(send "$A" '[1,2]')" 400 "not an object"
lp_assert_eq "$(send "$A" '{')" 400 "malformed JSON"
lp_assert_eq "$(sink_config "$A" '{"fail_first":-1}')" 400 "sink: fail_first -1"
lp_assert_eq "$(sink_config "$A" '{"header":"bad header"}')" 400 "sink: bad header name"
lp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$SINK")" 405 "sink: DELETE"

# --- reset --------------------------------------------------------------------------------
lp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$A/_sandbox/reset")" 200 "reset"
lp_assert_eq "$(curl -s "$SINK" | jq -c '[.received, (.deliveries | length)]')" '[0,0]' "reset clears the sink"
lp_assert_eq "$(curl -s "$A/_sandbox/shop" | jq -c '[.stats.shopify.requests, .stats.bigcommerce.requests, .orders]')" '[0,0,1000]' "reset clears shop stats, keeps the configuration"

# --- a million orders cost nothing ---------------------------------------------------------
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss_kb "$A_PID")
lp_assert_eq "$(shop "$A" '{"orders":1000000,"customers":50000}')" 200 "1,000,000 orders"
t0=$(date +%s%N)
call GET "$A/$V/orders.json?status=any&limit=250&since_id=5000999900" "${SH[@]}" >/dev/null
lp_assert_eq "$(jbody '[.orders | length, .[0].id, .[-1].id]')" '[99,5000999901,5000999999]' "the last orders by since_id"
[ -z "$(link next)" ] || lp_fail "a next link after the last order"
lp_assert_eq "$(call GET "$S/v2/orders?page=4000&limit=250" "${BC[@]}")$(jbody '[.[0].id, .[-1].id]')" '200[999850,1000099]' "BigCommerce page 4000"
lp_assert_eq "$(call GET "$S/v2/orders?page=4001&limit=250" "${BC[@]}")" 204 "BigCommerce page 4001: 204"
call GET "$A/$V/orders.json?status=any&limit=250&created_at_min=2040-06-01T00:00:00Z" "${SH[@]}" >/dev/null
lp_assert_eq "$(jbody '(.orders | length) == 250 and (.orders[0].created_at >= "2040-06-01")')" true "created_at_min deep into the shop (binary search)"
lp_assert_eq "$(call GET "$A/$V/orders/count.json?status=cancelled" "${SH[@]}")" 200 "count over 1,000,000 orders"
t1=$(date +%s%N)
after=$(rss_kb "$A_PID")
echo "measure: 1,000,000-order shop: last page, page 4000, deep filter and a full count in $(((t1 - t0) / 1000000)) ms; RSS ${before} kB -> ${after} kB; $(jbody .count) cancelled"
[ $((after - before)) -lt 65536 ] || lp_fail "RSS grew by $((after - before)) kB for a million orders"

lp_stop_pid "$A_PID"
lp_stop_pid "$B_PID"
echo "ok: SIGTERM stops both sandboxes with status 0"
echo "ok: sandbox shop"
