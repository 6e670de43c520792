# Sandbox: the four emulated platforms answer with their own statuses,
# bodies and headers (auth, validation envelopes, Klaviyo's revision
# header); Klaviyo dedupes on unique_id while LoyaltyLion, Smile and Braze
# record every call; rate limits send 429 with each platform's headers and
# a request sent before the promised time counts as "early"; faults
# (burst 429, drop after apply, latency, 5xx) change at run time; the
# ledgers page newest first; reset clears; the chat-completions stub
# answers OpenAI's shapes with text built from the prompt's facts and
# misbehaves on demand (empty, long, wrong amount, slow, 500, 429);
# SIGTERM exits 0.
set -euo pipefail
. tests/lib.sh

# A: functional checks and run-time faults; defaults but for the
# per-second limits of LoyaltyLion (20) and Smile (10), which this script
# would exceed, and a long in-flight grace (see the burst_429 check).
lp_start_sandbox --seed 7 -X loyaltylion.rate=1000 -X smile.rate=1000 \
  -X early.grace_ms=500
A=$SANDBOX_URL
A_PID=$SANDBOX_PID
# B: small limits, activity dedupe on.
lp_start_sandbox -X loyaltylion.rate=5 -X smile.rate=4 \
  -X klaviyo.events.burst=3 -X braze.track.limit=3 -X braze.track.window.s=2 \
  -X dedupe.activities=1
B=$SANDBOX_URL
B_PID=$SANDBOX_PID

LL=(-H 'Authorization: Bearer sandbox-ll-key' -H 'Content-Type: application/json')
SM=(-H 'Authorization: Bearer sandbox-smile-key' -H 'Content-Type: application/json')
KL=(-H 'Authorization: Klaviyo-API-Key pk_sandbox' -H 'revision: 2024-10-15'
  -H 'Content-Type: application/vnd.api+json')
BR=(-H 'Authorization: Bearer sandbox-braze-key' -H 'Content-Type: application/json')

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
  { grep -i "^$1:" "$LP_TMP/headers" || true; } | head -n1 | cut -d: -f2- | tr -d ' \r'
}
ledger() { curl -s "$1/_sandbox/ledger?$2"; }
stats() { curl -s "$1/_sandbox/stats" | jq -r "$2"; }
faults() { curl -s -o /dev/null -w '%{http_code}' -X POST "$1/_sandbox/faults" -d "$2"; }
now_ms() { date +%s%3N; }
# Waits until now % PERIOD_MS < 300 ms, so a burst stays inside one window.
window_start() {
  while (($(now_ms) % $1 >= 300)); do sleep 0.01; done
}
ll_points() { # URL MEMBER POINTS REASON
  call POST "$1/v2/customers/$2/points" "${LL[@]}" -d "{\"points\":$3,\"reason\":\"$4\"}"
}
kl_event() { # URL EXTERNAL_ID UNIQUE_ID [METRIC]
  call POST "$1/api/events" "${KL[@]}" -d "{\"data\":{\"type\":\"event\",\"attributes\":{
    \"metric\":{\"data\":{\"type\":\"metric\",\"attributes\":{\"name\":\"${4:-Loyalty Points Awarded}\"}}},
    \"profile\":{\"data\":{\"type\":\"profile\",\"attributes\":{\"external_id\":\"$2\"}}},
    \"properties\":{\"points\":5},\"unique_id\":\"$3\"}}}"
}

# --- --help and configuration ---------------------------------------------
"$BIN/sandbox" --help >"$LP_TMP/help.txt"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS ENDPOINTS EXAMPLES; do
  grep -q "^$section" "$LP_TMP/help.txt" || lp_fail "--help lacks $section"
done
grep -q "development and tests only" "$LP_TMP/help.txt" || lp_fail "--help does not say dev/test only"
for key in loyaltylion.key smile.key klaviyo.key braze.key loyaltylion.rate \
  smile.rate klaviyo.events.burst klaviyo.events.steady klaviyo.profiles.burst \
  klaviyo.profiles.steady braze.track.limit braze.track.window.s \
  braze.messaging.limit loyaltylion.retry_after dedupe.activities early.grace_ms bind \
  fault.latency_ms fault.error_rate fault.drop_rate fault.burst_429 \
  fault.loyaltylion.latency_ms fault.smile.error_rate fault.klaviyo.drop_rate \
  fault.braze.burst_429 llm.key llm.mode llm.slow.ms fault.llm.latency_ms; do
  grep -q "^  $key  *[a-z]*  *default: " "$LP_TMP/help.txt" || lp_fail "--help does not list $key with its default"
done
grep -q "^  loyaltylion.retry_after  *int  *default: 1$" "$LP_TMP/help.txt" || lp_fail "retry_after default"
echo "ok: --help is man-style and lists every key with its default"
rc=0
"$BIN/sandbox" -X no.such.key=1 2>"$LP_TMP/badconf.txt" || rc=$?
lp_assert_eq "$rc" 2 "unknown key: exit status"
grep -q 'unknown key "no.such.key"' "$LP_TMP/badconf.txt" || lp_fail "unknown key: $(cat "$LP_TMP/badconf.txt")"
rc=0
"$BIN/sandbox" -X llm.mode=chatty 2>"$LP_TMP/badconf.txt" || rc=$?
lp_assert_eq "$rc" 2 "unknown llm.mode: exit status"
grep -q 'llm.mode: "chatty"' "$LP_TMP/badconf.txt" || lp_fail "unknown llm.mode: $(cat "$LP_TMP/badconf.txt")"
grep -q '"msg":"listening".*"port":' "$LP_TMP"/sandbox-1.log || lp_fail "no listening log line with the port"
echo "ok: the bound port is logged as one JSON line"

# --- LoyaltyLion --------------------------------------------------------------
lp_assert_eq "$(ll_points "$A" 7012 500 dec_1)" 201 "LL add points"
lp_assert_eq "$(body)" "" "LL add points: empty body"
lp_assert_eq "$(call POST "$A/v2/customers/7012/points" -H 'Authorization: Bearer wrong' -d '{"points":5}')" 401 "LL bad key"
lp_assert_eq "$(body)" '{"error":{"message":"Authentication is required"}}' "LL 401 body"
lp_assert_eq "$(call POST "$A/v2/customers/7012/points" -d '{"points":5}')" 401 "LL no key"
lp_assert_eq "$(ll_points "$A" 7012 0 zero)" 400 "LL points 0"
lp_assert_eq "$(jbody '.error.message')" '"Invalid request"' "LL 400 message"
jq -e '.error.details.points | type == "string"' "$LP_TMP/body" >/dev/null || lp_fail "LL 400 details: $(body)"
lp_assert_eq "$(ll_points "$A" 7012 1000001 big)" 400 "LL points 1000001"
lp_assert_eq "$(ll_points "$A" 7012 1000000 max)" 201 "LL points 1000000"
lp_assert_eq "$(call POST "$A/v2/customers/7012/points" "${LL[@]}" -d '{"points":')" 400 "LL malformed JSON"
jq -e '.error.message == "Invalid request"' "$LP_TMP/body" >/dev/null || lp_fail "LL malformed JSON envelope: $(body)"
lp_assert_eq "$(call POST "$A/v2/customers/7012/remove_points" "${LL[@]}" -d '{"points":100,"reason":"dec_2"}')" 204 "LL remove points"
lp_assert_eq "$(call POST "$A/v2/customers/7012/remove_points" "${LL[@]}" -d '{"points":9999999}')" 422 "LL remove below zero"
lp_assert_eq "$(jbody_r '.error.code')" insufficient_points "LL 422 code"
lp_assert_eq "$(call PATCH "$A/v2/customers/7012" "${LL[@]}" -d '{"customer":{"birthday":"1990-02-03","blocked":false}}')" 200 "LL update customer"
lp_assert_eq "$(jbody '[.customer.merchant_id, .customer.points_approved, .customer.birthday, .customer.blocked]')" \
  '["7012",1000400,"1990-02-03",false]' "LL customer shape, points from the ledger"
lp_assert_eq "$(call PATCH "$A/v2/customers/7012" "${LL[@]}" -d '{"customer":{"birthday":"1990-02-30"}}')" 400 "LL bad birthday"
act='{"name":"review","customer_id":"7012","customer_email":"a@example.com","merchant_id":"dec_act","properties":{}}'
lp_assert_eq "$(call POST "$A/v2/activities" "${LL[@]}" -d "$act")" 201 "LL activity"
lp_assert_eq "$(call POST "$A/v2/activities" "${LL[@]}" -d "$act")" 201 "LL same activity again (no dedupe by default)"
lp_assert_eq "$(call POST "$A/v2/activities" "${LL[@]}" -d '{"name":"x","customer_id":"1"}')" 400 "LL activity without email"
lp_assert_eq "$(ledger "$A" 'platform=loyaltylion&kind=activity' | jq '.effects | length')" 2 "LL activities recorded twice"
lp_assert_eq "$(ll_points "$A" 7012 5 dec_dup)$(ll_points "$A" 7012 5 dec_dup)" 201201 "LL same points call twice"
lp_assert_eq "$(ledger "$A" 'platform=loyaltylion&member=7012&kind=points' | jq '[.effects[] | select(.reference == "dec_dup")] | length')" 2 "LL points never dedupe"
lp_assert_eq "$(call GET "$A/v2/no/such" "${LL[@]}")" 404 "LL unknown path"
jq -e '.error.message | type == "string"' "$LP_TMP/body" >/dev/null || lp_fail "LL 404 envelope: $(body)"
lp_assert_eq "$(call GET "$A/v2/activities" "${LL[@]}")" 405 "LL wrong method"

# Transactions: newest first, with paging (the reconciliation read).
for r in t1 t2 t3; do ll_points "$A" m-tx 10 "$r" >/dev/null; done
call POST "$A/v2/customers/m-tx/remove_points" "${LL[@]}" -d '{"points":5,"reason":"t4"}' >/dev/null
lp_assert_eq "$(call GET "$A/v2/customers/m-tx/transactions?limit=3" "${LL[@]}")" 200 "LL transactions"
lp_assert_eq "$(jbody '[.transactions[] | [.adjustment.reason, .points_approved, .resource]]')" \
  '[["t4",-5,"adjustment"],["t3",10,"adjustment"],["t2",10,"adjustment"]]' "LL transactions newest first"
lp_assert_eq "$(jbody '[.transactions[0].customer.merchant_id, .transactions[0].customer.points_approved, .cursor.prev]')" \
  '["m-tx",25,null]' "LL transaction customer"
next=$(jbody_r '.cursor.next')
[ "$next" != null ] || lp_fail "LL transactions: no next cursor"
call GET "$A/v2/customers/m-tx/transactions?limit=3&cursor=$next" "${LL[@]}" >/dev/null
lp_assert_eq "$(jbody '[[.transactions[].adjustment.reason], .cursor.next]')" '[["t1"],null]' "LL transactions second page"
call GET "$A/v2/customers/m-tx/transactions?since_id=0&limit=2" "${LL[@]}" >/dev/null
lp_assert_eq "$(jbody '[.transactions[].adjustment.reason]')" '["t1","t2"]' "LL transactions since_id ascending"
lp_assert_eq "$(call GET "$A/v2/customers/m-tx/transactions?limit=501" "${LL[@]}")" 400 "LL transactions limit 501"

# --- Smile.io -----------------------------------------------------------------
pt() { # URL CUSTOMER CHANGE NOTE
  call POST "$1/v1/points_transactions" "${SM[@]}" -d "{\"points_transaction\":{\"customer_id\":$2,\"points_change\":$3,\"description\":\"Bonus\",\"internal_note\":\"$4\"}}"
}
lp_assert_eq "$(pt "$A" 304169228 100 dec_s1)" 201 "Smile points transaction"
lp_assert_eq "$(jbody '[.points_transaction.customer_id, .points_transaction.points_change, .points_transaction.internal_note, (.points_transaction.id | type), (.points_transaction.created_at | test("^20[0-9-]+T")), (.points_transaction.updated_at | type)]')" \
  '[304169228,100,"dec_s1","number",true,"string"]' "Smile 201 wrapped object"
lp_assert_eq "$(pt "$A" 304169228 -150 dec_s2)" 422 "Smile negative balance"
jq -e '(.error.message | type == "string") and (.error.request_id | test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"))' \
  "$LP_TMP/body" >/dev/null || lp_fail "Smile 422 envelope: $(body)"
lp_assert_eq "$(pt "$A" 304169228 0 zero)" 400 "Smile points_change 0"
jq -e '.error.request_id' "$LP_TMP/body" >/dev/null || lp_fail "Smile 400 envelope: $(body)"
lp_assert_eq "$(call POST "$A/v1/points_transactions" "${SM[@]}" -d '{"points_transaction":')" 400 "Smile malformed JSON"
lp_assert_eq "$(call POST "$A/v1/points_transactions" -H 'Authorization: Bearer sandbox-smile-key' -d '{}')" 400 "Smile without Content-Type"
lp_assert_eq "$(call GET "$A/v1/customers/304169228" -H 'Authorization: Bearer nope')" 401 "Smile bad token"
lp_assert_eq "$(call GET "$A/v1/customers/304169228" "${SM[@]}")" 200 "Smile customer"
lp_assert_eq "$(jbody '[.customer.id, .customer.state, .customer.points_balance]')" '[304169228,"member",100]' "Smile customer balance"
lp_assert_eq "$(call GET "$A/v1/customers/abc" "${SM[@]}")" 404 "Smile customer id not a number"
sact='{"activity":{"customer_id":304169228,"token":"activity_abc","distinct_id":"order-5821","created_on_origin_at":"2025-03-01T12:00:00Z","properties":{}}}'
lp_assert_eq "$(call POST "$A/v1/activities" "${SM[@]}" -d "$sact")$(call POST "$A/v1/activities" "${SM[@]}" -d "$sact")" 201201 "Smile same activity twice (no dedupe by default)"
lp_assert_eq "$(jbody_r '.activity.distinct_id')" order-5821 "Smile activity body"
lp_assert_eq "$(ledger "$A" 'platform=smile&kind=activity' | jq -c '[.effects[].reference]')" '["order-5821","order-5821"]' "Smile activities recorded twice"
for n in 10 20 30; do pt "$A" 77 "$n" "list-$n" >/dev/null; done
pt "$A" 78 1 other >/dev/null
lp_assert_eq "$(call GET "$A/v1/points_transactions?customer_id=77&limit=2" "${SM[@]}")" 200 "Smile list"
lp_assert_eq "$(jbody '[.points_transactions[].points_change]')" '[30,20]' "Smile list newest first"
cursor=$(jbody_r '.metadata.next_cursor')
[ -n "$cursor" ] || lp_fail "Smile list: no next_cursor"
call GET "$A/v1/points_transactions?cursor=$cursor&limit=2" "${SM[@]}" >/dev/null
lp_assert_eq "$(jbody '[[.points_transactions[].points_change], .metadata.next_cursor, .metadata.previous_cursor]')" \
  '[[10],"",""]' "Smile list second page (cursor keeps the filter)"
call GET "$A/v1/points_transactions?limit=250" "${SM[@]}" >/dev/null
lp_assert_eq "$(jbody '[.points_transactions[].id] | (. == (sort | reverse))')" true "Smile list: ids descending"
lp_assert_eq "$(call GET "$A/v1/points_transactions?limit=251" "${SM[@]}")" 400 "Smile list limit 251"

# --- Klaviyo ------------------------------------------------------------------
lp_assert_eq "$(kl_event "$A" shopify:1 dec_k1)" 202 "Klaviyo event"
lp_assert_eq "$(body)" "" "Klaviyo 202: empty body"
lp_assert_eq "$(header RateLimit-Limit)/$(header RateLimit-Remaining)" 3500/3499 "Klaviyo RateLimit-* (steady window)"
[ -n "$(header RateLimit-Reset)" ] || lp_fail "Klaviyo: no RateLimit-Reset"
lp_assert_eq "$(call POST "$A/api/events" -H 'Authorization: Klaviyo-API-Key pk_sandbox' -H 'Content-Type: application/json' -d '{}')" 400 "Klaviyo missing revision"
lp_assert_eq "$(jbody '[.errors[0].status, .errors[0].code, .errors[0].source.parameter, (.errors[0].id | length)]')" \
  '[400,"invalid","revision",36]' "Klaviyo missing revision: JSON:API error"
lp_assert_eq "$(call POST "$A/api/events" -H 'Authorization: Klaviyo-API-Key wrong' -H 'revision: 2024-10-15' -d '{}')" 401 "Klaviyo bad key"
lp_assert_eq "$(jbody_r '.errors[0].code')" not_authenticated "Klaviyo 401 code"
long=$(printf 'm%.0s' $(seq 128))
lp_assert_eq "$(kl_event "$A" shopify:1 dec_long "$long")" 400 "Klaviyo metric name of 128 characters"
lp_assert_eq "$(jbody '[.errors[0].status, .errors[0].code, .errors[0].title, .errors[0].source.pointer]')" \
  '[400,"invalid","Invalid input.","/data/attributes/metric/data/attributes/name"]' "Klaviyo 400 envelope"
lp_assert_eq "$(kl_event "$A" shopify:1 dec_ok "$(printf 'm%.0s' $(seq 127))")" 202 "Klaviyo metric name of 127 characters"
lp_assert_eq "$(call POST "$A/api/events" "${KL[@]}" -d '{"data":{"type":"event","attributes":{"metric":{"data":{"type":"metric","attributes":{"name":"X"}}},"profile":{"data":{"type":"profile","attributes":{}}},"properties":{}}}}')" \
  400 "Klaviyo profile without identifier"
lp_assert_eq "$(jbody_r '.errors[0].source.pointer')" /data/attributes/profile/data/attributes "Klaviyo identifier pointer"
lp_assert_eq "$(call POST "$A/api/events" "${KL[@]}" -d '{"data":{"type":"event","attributes":{"metric":{"data":{"type":"metric","attributes":{"name":"X"}}},"profile":{"data":{"type":"profile","attributes":{"email":"a@example.com"}}}}}}')" \
  400 "Klaviyo event without properties"
lp_assert_eq "$(jbody_r '.errors[0].source.pointer')" /data/attributes/properties "Klaviyo properties pointer"
lp_assert_eq "$(call POST "$A/api/events" "${KL[@]}" -d 'not json')" 400 "Klaviyo malformed JSON"
# unique_id: the second event is accepted but not recorded.
lp_assert_eq "$(kl_event "$A" shopify:2 dec_dd)$(kl_event "$A" shopify:2 dec_dd)" 202202 "Klaviyo same unique_id twice"
lp_assert_eq "$(ledger "$A" 'platform=klaviyo&member=shopify:2' | jq -c '[.effects[] | [.kind, .reference, .points]]')" \
  '[["event","dec_dd",5]]' "Klaviyo: one ledger entry for a repeated unique_id"
lp_assert_eq "$(stats "$A" .platforms.klaviyo.deduped)" 1 "Klaviyo stats deduped"
lp_assert_eq "$(kl_event "$A" shopify:2 dec_dd 'Other Metric')" 202 "Klaviyo same unique_id, other metric"
lp_assert_eq "$(ledger "$A" 'platform=klaviyo&member=shopify:2' | jq '.effects | length')" 2 "Klaviyo: dedupe is per metric"
lp_assert_eq "$(call POST "$A/api/events/" "${KL[@]}" -d "$(jq -c '.data.attributes.unique_id = "dec_slash"' <<<'{"data":{"type":"event","attributes":{"metric":{"data":{"type":"metric","attributes":{"name":"X"}}},"profile":{"data":{"type":"profile","attributes":{"email":"s@example.com"}}},"properties":{}}}}')")" \
  202 "Klaviyo /api/events/ (trailing slash)"
prof='{"data":{"type":"profile","attributes":{"email":"alice@example.com","external_id":"shopify:9","properties":{"loyalty_tier":"Gold"}}}}'
lp_assert_eq "$(call POST "$A/api/profile-import" "${KL[@]}" -d "$prof")" 201 "Klaviyo profile-import creates"
lp_assert_eq "$(jbody '[.data.type, (.data.id | length), .data.attributes.email, .data.attributes.properties.loyalty_tier]')" \
  '["profile",26,"alice@example.com","Gold"]' "Klaviyo profile body"
lp_assert_eq "$(call POST "$A/api/profile-import" "${KL[@]}" -d '{"data":{"type":"profile","attributes":{"email":"alice@example.com","properties":{"points_balance":10}}}}')" \
  200 "Klaviyo profile-import updates"
lp_assert_eq "$(jbody '[.data.attributes.external_id, .data.attributes.properties]')" \
  '["shopify:9",{"loyalty_tier":"Gold","points_balance":10}]' "Klaviyo profile merged"
lp_assert_eq "$(call GET "$A/api/events" "${KL[@]}")" 405 "Klaviyo wrong method"
lp_assert_eq "$(call POST "$A/api/nothing" "${KL[@]}" -d '{}')" 404 "Klaviyo unknown path"
lp_assert_eq "$(jbody_r '.errors[0].code')" not_found "Klaviyo 404 envelope"

# --- Braze --------------------------------------------------------------------
track='{"attributes":[{"external_id":"shopify:1","loyalty_tier":"Gold"}],
  "events":[{"external_id":"shopify:1","name":"loyalty_points_awarded","time":"2025-03-01T12:00:00Z","properties":{"points":500,"decision_id":"dec_b1"}},
            {"external_id":"shopify:1","name":"loyalty_points_awarded","time":"2025-03-01T12:00:00Z","properties":{"points":500,"decision_id":"dec_b1"}}]}'
lp_assert_eq "$(call POST "$A/users/track" "${BR[@]}" -d "$track")" 201 "Braze users/track"
lp_assert_eq "$(body)" '{"message":"success","attributes_processed":1,"events_processed":2}' "Braze track body"
lp_assert_eq "$(header X-RateLimit-Limit)/$(header X-RateLimit-Remaining)" 3000/2999 "Braze X-RateLimit-*"
reset=$(header X-RateLimit-Reset)
(( reset >= $(date +%s) && reset <= $(date +%s) + 3 )) || lp_fail "Braze X-RateLimit-Reset is not the window end in epoch seconds: $reset"
lp_assert_eq "$(ledger "$A" 'platform=braze' | jq -c '[.effects[] | [.kind, .member, .reference, .points]]')" \
  '[["track_attributes","shopify:1",null,0],["track_event","shopify:1","dec_b1",500],["track_event","shopify:1","dec_b1",500]]' \
  "Braze: one effect per object, duplicates recorded"
many=$(jq -nc '{events: [range(76) | {external_id: "u\(.)", name: "e", time: "2025-03-01T12:00:00Z"}]}')
lp_assert_eq "$(call POST "$A/users/track" "${BR[@]}" -d "$many")" 400 "Braze 76 objects"
lp_assert_eq "$(jbody_r '.message')" "Max Input Length Exceeded" "Braze 76 objects message"
[ -n "$(header X-RateLimit-Remaining)" ] || lp_fail "Braze 400 without X-RateLimit-*"
lp_assert_eq "$(call POST "$A/users/track" "${BR[@]}" -d "$(jq -nc '{events: [range(40) | {external_id: "u", name: "e", time: "2025-03-01T12:00:00Z"}], attributes: [range(35) | {external_id: "u"}]}')")" \
  201 "Braze 75 objects"
lp_assert_eq "$(call POST "$A/users/track" "${BR[@]}" -d '{"events":[{"external_id":"u","name":"e"},{"external_id":"u","name":"e","time":"2025-03-01T12:00:00Z"}]}')" \
  201 "Braze one invalid event among valid ones"
lp_assert_eq "$(jbody '[.events_processed, .errors[0].input_array, .errors[0].index]')" '[1,"events",0]' "Braze non-fatal errors"
lp_assert_eq "$(call POST "$A/users/track" "${BR[@]}" -d '{"events":[{"name":"e","time":"2025-03-01T12:00:00Z"}]}')" 400 "Braze event without identifier"
lp_assert_eq "$(call POST "$A/users/track" -H 'Authorization: Bearer nope' -d '{}')" 401 "Braze bad key"
send='{"campaign_id":"c1","send_id":"send-1","trigger_properties":{"decision_id":"dec_top"},
  "recipients":[{"external_user_id":"shopify:1","trigger_properties":{"decision_id":"dec_r1","points":50}},
                {"external_user_id":"shopify:2"},
                {"user_alias":{"alias_name":"dev1","alias_label":"device"}}]}'
lp_assert_eq "$(call POST "$A/campaigns/trigger/send" "${BR[@]}" -d "$send")" 201 "Braze campaign send"
lp_assert_eq "$(jbody '[.message, (.dispatch_id | length)]')" '["success",32]' "Braze dispatch_id"
lp_assert_eq "$(ledger "$A" 'platform=braze&kind=campaign_send' | jq -c '[.effects[] | [.member, .reference, .points]]')" \
  '[["shopify:1","dec_r1",50],["shopify:2","dec_top",0],["user_alias:device/dev1","dec_top",0]]' "Braze one effect per recipient"
lp_assert_eq "$(call POST "$A/campaigns/trigger/send" "${BR[@]}" -d '{"campaign_id":"c1","send_id":"s9","recipients":[{"external_user_id":"x"}]}')" 201 "Braze send without decision_id"
lp_assert_eq "$(ledger "$A" 'platform=braze&member=x' | jq -r '.effects[0].reference')" s9 "Braze reference falls back to send_id"
lp_assert_eq "$(call POST "$A/campaigns/trigger/send" "${BR[@]}" -d "$(jq -nc '{campaign_id: "c", recipients: [range(51) | {external_user_id: "u\(.)"}]}')")" \
  400 "Braze 51 recipients"
lp_assert_eq "$(call POST "$A/campaigns/trigger/send" "${BR[@]}" -d '{"campaign_id":"c","recipients":[{"external_user_id":"u","user_alias":{"alias_name":"a","alias_label":"b"}}]}')" \
  400 "Braze recipient with two identifiers"
lp_assert_eq "$(call POST "$A/campaigns/trigger/send" "${BR[@]}" -d '{"recipients":[{"external_user_id":"u"}]}')" 400 "Braze send without campaign_id"
lp_assert_eq "$(call POST "$A/canvas/trigger/send" "${BR[@]}" -d '{"canvas_id":"cv","canvas_entry_properties":{"decision_id":"dec_cv"},"recipients":[{"external_user_id":"shopify:3"}]}')" \
  201 "Braze canvas send"
lp_assert_eq "$(ledger "$A" 'platform=braze&kind=canvas_send' | jq -c '[.effects[] | [.member, .reference]]')" '[["shopify:3","dec_cv"]]' "Braze canvas effect"
lp_assert_eq "$(call POST "$A/users/track" "${BR[@]}" -d '[1,2')" 400 "Braze malformed JSON"
lp_assert_eq "$(call GET "$A/nowhere")" 404 "unknown prefix"
jq -e '.message' "$LP_TMP/body" >/dev/null || lp_fail "unknown prefix: plain JSON 404: $(body)"
head -c 1100000 /dev/zero | tr '\0' ' ' >"$LP_TMP/big.json"
lp_assert_eq "$(call POST "$A/v2/activities" "${LL[@]}" --data-binary "@$LP_TMP/big.json")" 413 "body over 1 MiB"

# --- rate limits (instance B) ---------------------------------------------------
# LoyaltyLion 5/s: the 6th request in a second gets 429 + Retry-After. A
# request sent before Retry-After has passed is early once the in-flight
# grace (early.grace_ms, 100 ms here) is over, on the connection that
# carried the 429 or another; within it (an HTTP library may hand the
# 429's connection to a request it had queued) it is not.
window_start 1000
codes=""
for i in 1 2 3 4 5; do codes="$codes$(ll_points "$B" rl 1 "r$i") "; done
codes="$codes$(curl -s -o "$LP_TMP/body" -o /dev/null -D "$LP_TMP/headers" \
  -w '%{http_code} ' -X POST "${LL[@]}" -d '{"points":1,"reason":"r6"}' \
  "$B/v2/customers/rl/points" "$B/v2/customers/rl/points")"
lp_assert_eq "$codes" "201 201 201 201 201 429 429 " "LL burst above 5/s, then a retry on the same connection"
lp_assert_eq "$(body)" '{"error":{"message":"Too many requests"}}' "LL 429 body"
lp_assert_eq "$(header Retry-After)" 1 "LL 429 Retry-After"
lp_assert_eq "$(stats "$B" .platforms.loyaltylion.early)" 0 "LL retry at once on the 429's connection: within the grace"
sleep 0.2
lp_assert_eq "$(ll_points "$B" rl 1 early)" 429 "LL request on a new connection before Retry-After"
lp_assert_eq "$(stats "$B" .platforms.loyaltylion.early)" 1 "LL early counted"
sleep 1.0
lp_assert_eq "$(ll_points "$B" rl 1 later)" 201 "LL after Retry-After"
lp_assert_eq "$(stats "$B" .platforms.loyaltylion.early)" 1 "LL waiting is not early"
# Smile 4/s per token: 429 with the error envelope and no rate headers.
window_start 1000
codes=""
for i in 1 2 3 4 5; do codes="$codes$(call GET "$B/v1/customers/1" "${SM[@]}") "; done
lp_assert_eq "$codes" "200 200 200 200 429 " "Smile burst above 4/s"
jq -e '.error.request_id' "$LP_TMP/body" >/dev/null || lp_fail "Smile 429 envelope: $(body)"
lp_assert_eq "$(header Retry-After)$(header X-RateLimit-Limit)$(header RateLimit-Limit)" "" "Smile 429 without rate headers"
# Klaviyo burst 3/s: 429 with Retry-After and the throttled body, no
# RateLimit-* headers; then an early request.
window_start 1000
codes=""
for i in 1 2 3 4; do codes="$codes$(kl_event "$B" burst "b$i") "; done
lp_assert_eq "$codes" "202 202 202 429 " "Klaviyo burst above 3/s"
lp_assert_eq "$(jbody '[.errors[0].status, .errors[0].code, .errors[0].title]')" '[429,"throttled","Request was throttled."]' "Klaviyo 429 body"
lp_assert_eq "$(header Retry-After)" 1 "Klaviyo 429 Retry-After"
lp_assert_eq "$(header RateLimit-Limit)$(header RateLimit-Remaining)" "" "Klaviyo 429 without RateLimit-*"
sleep 0.15
lp_assert_eq "$(kl_event "$B" burst b5)" 429 "Klaviyo request before Retry-After"
lp_assert_eq "$(stats "$B" .platforms.klaviyo.early)" 1 "Klaviyo early counted"
# Braze /users/track 3 per 2 s: X-RateLimit-* on every answer, 429 too.
window_start 2000
codes="" remaining=""
ev='{"events":[{"external_id":"u","name":"e","time":"2025-03-01T12:00:00Z"}]}'
for i in 1 2 3 4; do
  codes="$codes$(call POST "$B/users/track" "${BR[@]}" -d "$ev") "
  remaining="$remaining$(header X-RateLimit-Limit)/$(header X-RateLimit-Remaining) "
done
lp_assert_eq "$codes" "201 201 201 429 " "Braze burst above 3 per window"
lp_assert_eq "$remaining" "3/2 3/1 3/0 3/0 " "Braze X-RateLimit-Limit/Remaining"
reset=$(header X-RateLimit-Reset)
(( reset % 2 == 0 && reset * 1000 > $(now_ms) )) || lp_fail "Braze 429 X-RateLimit-Reset is not the window end: $reset"
sleep 0.15
lp_assert_eq "$(call POST "$B/users/track" "${BR[@]}" -d "$ev")" 429 "Braze request before the reset"
lp_assert_eq "$(stats "$B" .platforms.braze.early)" 1 "Braze early counted"
while (($(date +%s) < reset)); do sleep 0.05; done
lp_assert_eq "$(call POST "$B/users/track" "${BR[@]}" -d "$ev")" 201 "Braze after the reset"
lp_assert_eq "$(stats "$B" .platforms.braze.early)" 1 "Braze waiting is not early"
# dedupe.activities=1: repeated LoyaltyLion merchant_id / Smile distinct_id.
lp_assert_eq "$(call POST "$B/v2/activities" "${LL[@]}" -d "$act")" 201 "LL activity (dedupe on)"
lp_assert_eq "$(call POST "$B/v2/activities" "${LL[@]}" -d "$act")" 422 "LL repeated activity merchant_id (dedupe on)"
lp_assert_eq "$(jbody_r '.error.code')" duplicate_activity "LL duplicate activity code"
lp_assert_eq "$(call POST "$B/v1/activities" "${SM[@]}" -d "$sact")$(call POST "$B/v1/activities" "${SM[@]}" -d "$sact")" \
  201422 "Smile repeated token+distinct_id (dedupe on)"

# --- faults at run time (instance A) ------------------------------------------
# burst_429 with a 3 s Retry-After. A request on another connection within
# A's 500 ms grace was (as far as the sandbox can tell) in flight: it is
# served. One after the grace but inside the 3 s is early.
lp_assert_eq "$(faults "$A" '{"platform":"loyaltylion","burst_429":1,"retry_after_s":3}')" 200 "set LL burst_429"
lp_assert_eq "$(curl -s "$A/_sandbox/faults" | jq -c '.faults.loyaltylion | [.burst_429, .retry_after_s]')" '[1,3]' "fault table"
lp_assert_eq "$(ll_points "$A" f1 1 burst)" 429 "LL injected 429"
t429=$(now_ms)
lp_assert_eq "$(header Retry-After)" 3 "LL injected 429 Retry-After from the fault"
early_before=$(stats "$A" .platforms.loyaltylion.early)
lp_assert_eq "$(ll_points "$A" f1 1 in-flight)" 201 "LL request within the in-flight grace is served"
lp_assert_eq "$(stats "$A" .platforms.loyaltylion.early)" "$early_before" "in-flight request is not early"
sleep 0.6
lp_assert_eq "$(ll_points "$A" f1 1 early)" 429 "LL request after the grace, inside Retry-After"
lp_assert_eq "$(stats "$A" .platforms.loyaltylion.early)" $((early_before + 1)) "LL early after an injected 429"
while (($(now_ms) < t429 + 3050)); do sleep 0.05; done
lp_assert_eq "$(ll_points "$A" f1 1 after)" 201 "LL after the injected Retry-After"
faults "$A" '{"platform":"loyaltylion","retry_after_s":null}' >/dev/null
# drop: applied, then the connection closes without an answer.
lp_assert_eq "$(faults "$A" '{"platform":"smile","drop_rate":1}')" 200 "set Smile drop_rate"
rc=0
curl -s -o /dev/null -X POST "$A/v1/points_transactions" "${SM[@]}" \
  -d '{"points_transaction":{"customer_id":501,"points_change":7,"internal_note":"dec_drop"}}' || rc=$?
lp_assert_eq "$rc" 52 "dropped request: curl sees an empty reply"
lp_assert_eq "$(ledger "$A" 'platform=smile&member=501' | jq -c '[.effects[] | [.reference, .points]]')" '[["dec_drop",7]]' "dropped request is in the ledger"
lp_assert_eq "$(stats "$A" .platforms.smile.dropped_after_apply)" 1 "stats dropped_after_apply"
faults "$A" '{"platform":"smile","drop_rate":0}' >/dev/null
lp_assert_eq "$(call GET "$A/v1/customers/501" "${SM[@]}")" 200 "Smile answers again after drop_rate 0"
lp_assert_eq "$(jbody .customer.points_balance)" 7 "the dropped transaction was applied"
# latency: delays Klaviyo, not the others; slow requests run concurrently.
lp_assert_eq "$(faults "$A" '{"platform":"klaviyo","latency_ms":400}')" 200 "set Klaviyo latency"
start=$(now_ms)
kl_event "$A" slow s1 >/dev/null
ms=$(($(now_ms) - start))
((ms >= 400)) || lp_fail "Klaviyo latency fault: answered in ${ms} ms"
echo "ok: Klaviyo latency fault delays (${ms} ms)"
start=$(now_ms)
slow_pids=()
for i in 1 2 3 4 5; do
  curl -s -o /dev/null -X POST "$A/api/events" "${KL[@]}" \
    -d "{\"data\":{\"type\":\"event\",\"attributes\":{\"metric\":{\"data\":{\"type\":\"metric\",\"attributes\":{\"name\":\"M\"}}},\"profile\":{\"data\":{\"type\":\"profile\",\"attributes\":{\"external_id\":\"slow\"}}},\"properties\":{},\"unique_id\":\"p$i\"}}}" &
  slow_pids+=($!)
done
sleep 0.1
fast_start=$(now_ms)
lp_assert_eq "$(call GET "$A/v1/customers/1" "${SM[@]}")" 200 "Smile during slow Klaviyo requests"
fast=$(($(now_ms) - fast_start))
wait "${slow_pids[@]}"
total=$(($(now_ms) - start))
((fast < 300)) || lp_fail "a Smile request waited for Klaviyo's latency (${fast} ms)"
((total < 1500)) || lp_fail "5 slow requests did not run concurrently (${total} ms)"
(($(stats "$A" .platforms.klaviyo.max_in_flight) >= 5)) || lp_fail "Klaviyo max_in_flight < 5"
echo "ok: latency stalls no other request (Smile ${fast} ms; 5 slow in ${total} ms)"
faults "$A" '{"platform":"klaviyo","latency_ms":null}' >/dev/null
# 64 concurrent connections, each answer 300 ms late: all in flight at once.
faults "$A" '{"platform":"loyaltylion","latency_ms":300}' >/dev/null
start=$(now_ms)
slow_pids=()
for i in $(seq 64); do
  curl -s -o /dev/null -w '%{http_code}\n' "$A/v2/customers/c$i/transactions" "${LL[@]}" >>"$LP_TMP/codes" &
  slow_pids+=($!)
done
wait "${slow_pids[@]}"
total=$(($(now_ms) - start))
lp_assert_eq "$(sort -u "$LP_TMP/codes")" 200 "64 concurrent requests answered"
(($(stats "$A" .platforms.loyaltylion.max_in_flight) >= 64)) || lp_fail "LL max_in_flight < 64"
((total < 3000)) || lp_fail "64 concurrent slow requests took ${total} ms"
echo "ok: 64 concurrent connections (${total} ms)"
faults "$A" '{"platform":"loyaltylion","latency_ms":null}' >/dev/null
lp_assert_eq "$(curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects} ' \
  "$A/v1/customers/1" "$A/v1/customers/2" "$A/v1/customers/3" "${SM[@]}")" "1 0 0 " "keep-alive: one connection for three requests"
# error_rate 1: a 5xx in the platform's shape, nothing applied.
lp_assert_eq "$(faults "$A" '{"platform":"braze","error_rate":1}')" 200 "set Braze error_rate"
before=$(ledger "$A" 'platform=braze' | jq '.effects | length')
status=$(call POST "$A/users/track" "${BR[@]}" -d "$ev")
[[ "$status" == 5* ]] || lp_fail "Braze error_rate 1: status $status"
jq -e '.message' "$LP_TMP/body" >/dev/null || lp_fail "Braze 5xx body: $(body)"
lp_assert_eq "$(ledger "$A" 'platform=braze' | jq '.effects | length')" "$before" "a 5xx fault applies nothing"
faults "$A" '{"platform":"braze","error_rate":0}' >/dev/null
lp_assert_eq "$(call POST "$A/users/track" "${BR[@]}" -d "$ev")" 201 "Braze answers again after error_rate 0"
lp_assert_eq "$(faults "$A" '{"platform":"nowhere"}')" 400 "faults: unknown platform"
lp_assert_eq "$(faults "$A" '{"error_rate":2}')" 400 "faults: rate above 1"
lp_assert_eq "$(faults "$A" '{"latency":5}')" 400 "faults: unknown field"

# --- stats and reset ------------------------------------------------------------
lp_assert_eq "$(curl -s "$A/_sandbox/stats" | jq -c '.platforms.loyaltylion.by_status | [."201" > 0, ."400" > 0, ."401", ."429" > 0]')" \
  '[true,true,2,true]' "stats by_status"
lp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$A/_sandbox/reset")" 200 "reset"
lp_assert_eq "$(ledger "$A" '' | jq '.effects | length')" 0 "reset clears the ledger"
lp_assert_eq "$(stats "$A" '[.platforms[].requests] | add')" 0 "reset clears stats"
lp_assert_eq "$(call GET "$A/v1/customers/304169228" "${SM[@]}")$(jbody .customer.points_balance)" 2000 "reset clears balances"
lp_assert_eq "$(ll_points "$A" 7012 1 after-reset)" 201 "after reset"
lp_assert_eq "$(ledger "$A" '' | jq -c '[.effects[] | [.seq, .reference]]')" '[[1,"after-reset"]]' "ledger restarts at seq 1"

# --- bounded ledger, reproducible seed ------------------------------------------
lp_start_sandbox --seed 5 -X ledger.max=2
C=$SANDBOX_URL
C_PID=$SANDBOX_PID
lp_start_sandbox --seed 5
D=$SANDBOX_URL
D_PID=$SANDBOX_PID
lp_assert_eq "$(ll_points "$C" 1 1 a)$(ll_points "$C" 1 1 b)$(ll_points "$C" 1 1 c)" 201201507 "ledger.max=2: third effect refused with 507"
lp_assert_eq "$(stats "$C" .ledger.refused)" 1 "refused effects counted"
grep -q '"msg":"ledger full' "$LP_TMP"/sandbox-3.log || lp_fail "no log line for the full ledger"
call GET "$C/v1/customers/1" -H 'Authorization: Bearer x' >/dev/null
id_c=$(jbody_r .error.request_id)
call GET "$D/v1/customers/1" -H 'Authorization: Bearer x' >/dev/null
lp_assert_eq "$(jbody_r .error.request_id)" "$id_c" "same seed, same ids"

# --- chat completions (instance E, F) --------------------------------------------
lp_start_sandbox -X llm.slow.ms=300
E=$SANDBOX_URL
E_PID=$SANDBOX_PID
AI=(-H 'Authorization: Bearer sandbox-llm-key' -H 'Content-Type: application/json')
# chat URL FACTS: a request shaped like the executor's (system + user
# message of "key: value" facts); prints the status.
chat() {
  call POST "$1/v1/chat/completions" "${AI[@]}" -d "$(jq -nc --arg facts "$2" \
    '{model: "gpt-4o-mini", max_tokens: 200, temperature: 0.2, messages: [
      {role: "system", content: "Write one short friendly message."},
      {role: "user", content: $facts}]}')"
}
content() { jbody_r '.choices[0].message.content'; }
numbers() { content | grep -oE '[0-9]+(\.[0-9]+)?' | tr '\n' ' '; }
llm_mode() { curl -s -o /dev/null -w '%{http_code}' -X POST "$1/_sandbox/llm" -d "{\"mode\":\"$2\"}"; }
ok_req='{"model":"m","messages":[{"role":"user","content":"points: 5"}]}'
# Auth: OpenAI's envelope.
lp_assert_eq "$(call POST "$E/v1/chat/completions" -d "$ok_req")" 401 "llm without a key"
lp_assert_eq "$(body)" '{"error":{"message":"Incorrect API key provided. Send '"'"'Authorization: Bearer <key>'"'"' with a key of llm.key.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}' \
  "llm 401 envelope"
lp_assert_eq "$(call POST "$E/v1/chat/completions" -H 'Authorization: Bearer sandbox-smile-key' -d "$ok_req")" 401 "llm with another platform's key"
lp_assert_eq "$(jbody '[.error.type, .error.code]')" '["invalid_request_error","invalid_api_key"]' "llm wrong key envelope"
# ok: the completion shape and the facts' exact amounts.
before=$(date +%s)
lp_assert_eq "$(chat "$E" $'kind: points\npoints: 500\nchannel: email')" 200 "llm completion"
lp_assert_eq "$(jbody '[.object, .model, .choices[0].index, .choices[0].message.role, .choices[0].finish_reason, (.choices | length)]')" \
  '["chat.completion","gpt-4o-mini",0,"assistant","stop",1]' "llm completion shape"
lp_assert_eq "$(jbody_r .id)" chatcmpl-1 "llm completion id"
jq -e --argjson t "$before" '.created >= $t and .created <= $t + 5' "$LP_TMP/body" >/dev/null || lp_fail "llm created: $(body)"
jq -e '.usage | .prompt_tokens > 0 and .total_tokens == .prompt_tokens + .completion_tokens' \
  "$LP_TMP/body" >/dev/null || lp_fail "llm usage: $(body)"
lp_assert_eq "$(jbody '.usage.completion_tokens')" $(( ($(content | wc -m) + 3) / 4 )) "llm completion_tokens = ceil(characters / 4)"
lp_assert_eq "$(content)" "Thanks for being with us! You have earned 500 points." "llm points text"
lp_assert_eq "$(numbers)" "500 " "llm points text names exactly 500"
lp_assert_eq "$(chat "$E" $'kind: discount_code\ndiscount_percent: 15\nbrand: Acme\ntemplate: tpl_7')" 200 "llm percent"
lp_assert_eq "$(content)" "We saved you 15% off Acme on your next order." "llm percent text"
lp_assert_eq "$(numbers)" "15 " "llm percent text names exactly 15"
lp_assert_eq "$(chat "$E" $'kind: discount_code\ndiscount_amount: 10.00\ncurrency: EUR')" 200 "llm amount"
lp_assert_eq "$(content)" "Here is 10.00 EUR off your next order." "llm amount text"
lp_assert_eq "$(numbers)" "10.00 " "llm amount text names exactly 10.00"
chat "$E" $'discount_amount: 7.5\ncategory: shoes' >/dev/null
lp_assert_eq "$(content)" "Here is 7.5 off shoes on your next order." "llm amount without currency, with category"
chat "$E" $'kind: message\nbrand: Acme' >/dev/null
lp_assert_eq "$(content)" "Thanks for shopping with us - we have something new for you." "llm text without an amount"
call POST "$E/v1/chat/completions" "${AI[@]}" -d '{"model":"m","messages":[{"role":"user","content":"points: 1"},{"role":"assistant","content":"points: 2"},{"role":"user","content":"points: 3"},{"role":"assistant","content":"points: 4"}]}' >/dev/null
lp_assert_eq "$(numbers)" "3 " "llm reads the last user message"
lp_assert_eq "$(curl -s "$E/_sandbox/llm" | jq -c '.last | [.model, .facts]')" '["m",{"points":"3"}]' "GET /_sandbox/llm shows the last prompt's facts"
# 400: OpenAI's envelope, the field named in message and param.
bad() { # BODY PARAM WHAT
  lp_assert_eq "$(call POST "$E/v1/chat/completions" "${AI[@]}" -d "$1")" 400 "llm 400: $3"
  lp_assert_eq "$(jbody_r '[.error.type, .error.param] | join(" ")')" "invalid_request_error $2" "llm 400 envelope: $3"
  [[ "$(jbody_r .error.message)" == *"'$2'"* || "$(jbody_r .error.message)" == *" $2"* ]] ||
    lp_fail "llm 400 message does not name $2: $(body)"
}
bad '{"messages":[{"role":"user","content":"x"}]}' model "no model"
bad '{"model":7,"messages":[{"role":"user","content":"x"}]}' model "model not a string"
bad '{"model":"m"}' messages "no messages"
bad '{"model":"m","messages":[]}' messages "empty messages"
bad '{"model":"m","messages":{"role":"user"}}' messages "messages not an array"
bad '{"model":"m","messages":["hi"]}' 'messages[0]' "message not an object"
bad '{"model":"m","messages":[{"role":"user","content":"x"},{"role":"bot","content":"x"}]}' 'messages[1].role' "unknown role"
bad '{"model":"m","messages":[{"content":"x"}]}' 'messages[0].role' "no role"
bad '{"model":"m","messages":[{"role":"user"}]}' 'messages[0].content' "no content"
bad '{"model":"m","messages":[{"role":"user","content":["x"]}]}' 'messages[0].content' "content not a string"
bad '{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}' max_tokens "max_tokens 0"
bad '{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"9"}' max_tokens "max_tokens a string"
bad '{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":2.5}' temperature "temperature above 2"
bad '{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":-1}' temperature "temperature below 0"
bad '{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}' temperature "temperature a string"
bad '{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}' stream "stream true"
bad '{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[]}' tools "unknown field"
lp_assert_eq "$(call POST "$E/v1/chat/completions" "${AI[@]}" -d '{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":null,"temperature":0,"n":1,"stream":false,"user":"u"}')" \
  200 "llm optional fields at their defaults"
lp_assert_eq "$(call POST "$E/v1/chat/completions" "${AI[@]}" -d '{"model":"m",')" 400 "llm malformed JSON"
lp_assert_eq "$(jbody '[.error.type, .error.param, .error.code]')" '["invalid_request_error",null,null]' "llm malformed JSON envelope"
lp_assert_eq "$(call GET "$E/v1/chat/completions" "${AI[@]}")" 405 "llm wrong method"
lp_assert_eq "$(call POST "$E/v1/chat/other" "${AI[@]}" -d "$ok_req")" 404 "llm unknown path"
jq -e '.error.type == "invalid_request_error"' "$LP_TMP/body" >/dev/null || lp_fail "llm 404 envelope: $(body)"
lp_assert_eq "$(call GET "$E/v1/customers/1" "${SM[@]}")" 200 "Smile's /v1/ still served beside /v1/chat/"
# Modes, switched at run time.
ok_facts=$'kind: discount_code\npoints: 500\ndiscount_percent: 15\ndiscount_amount: 10.00\ncurrency: EUR'
chat "$E" "$ok_facts" >/dev/null
ok_text=$(content)
lp_assert_eq "$(numbers)" "500 15 10.00 " "llm ok: every fact's amount, exactly"
lp_assert_eq "$(curl -s "$E/_sandbox/llm" | jq -r .mode)" ok "llm mode ok by default"
lp_assert_eq "$(llm_mode "$E" empty)" 200 "llm mode empty"
lp_assert_eq "$(chat "$E" "$ok_facts")$(jbody '.choices[0].message.content')" '200""' "llm empty: 200 with empty content"
lp_assert_eq "$(jbody .usage.completion_tokens)" 0 "llm empty: no completion tokens"
lp_assert_eq "$(llm_mode "$E" long)" 200 "llm mode long"
chat "$E" "$ok_facts" >/dev/null
lp_assert_eq "$(jbody '.choices[0].message.content | length')" 2000 "llm long: 2000 characters"
[[ "$(content)" == "$ok_text"* ]] || lp_fail "llm long does not start with the ok text: $(content | head -c 200)"
lp_assert_eq "$(llm_mode "$E" wrong_amount)" 200 "llm mode wrong_amount"
chat "$E" "$ok_facts" >/dev/null
[ "$(content)" != "$ok_text" ] || lp_fail "llm wrong_amount: same text as ok"
lp_assert_eq "$(numbers)" "600 20 11.00 " "llm wrong_amount: points+100, percent+5, amount+1"
chat "$E" $'kind: message' >/dev/null
lp_assert_eq "$(numbers)" "100 " "llm wrong_amount without amounts invents 100 points"
lp_assert_eq "$(llm_mode "$E" slow)" 200 "llm mode slow"
start=$(now_ms)
chat "$E" "$ok_facts" >"$LP_TMP/slow_status" &
slow_pid=$!
sleep 0.05
fast_start=$(now_ms)
lp_assert_eq "$(call GET "$E/v1/customers/1" "${SM[@]}")" 200 "Smile during a slow completion"
fast=$(($(now_ms) - fast_start))
wait "$slow_pid"
ms=$(($(now_ms) - start))
lp_assert_eq "$(cat "$LP_TMP/slow_status")$(jbody_r '.choices[0].message.content' | grep -c 'earned 500 points')" 2001 "llm slow: a normal completion"
((ms >= 300)) || lp_fail "llm slow answered in ${ms} ms, before llm.slow.ms=300"
((fast < 250)) || lp_fail "a Smile request waited for the slow completion (${fast} ms)"
echo "ok: llm slow answers after ${ms} ms without stalling others (Smile ${fast} ms)"
lp_assert_eq "$(llm_mode "$E" error)" 200 "llm mode error"
lp_assert_eq "$(chat "$E" "$ok_facts")" 500 "llm error: 500"
lp_assert_eq "$(jbody '[.error.type, .error.param, .error.code, (.error.message | length > 0)]')" '["server_error",null,null,true]' "llm 500 envelope"
lp_assert_eq "$(llm_mode "$E" rate_limited)" 200 "llm mode rate_limited"
lp_assert_eq "$(chat "$E" "$ok_facts")" 429 "llm rate_limited: 429"
lp_assert_eq "$(header Retry-After)" 1 "llm 429 Retry-After"
lp_assert_eq "$(jbody '[.error.type, .error.code]')" '["rate_limit_error","rate_limit_exceeded"]' "llm 429 envelope"
lp_assert_eq "$(llm_mode "$E" chatty)" 400 "llm unknown mode"
lp_assert_eq "$(curl -s -X POST "$E/_sandbox/llm" -d '{"mood":"ok"}' | jq -r .error)" "mood: unknown field" "llm control: unknown field"
lp_assert_eq "$(curl -s "$E/_sandbox/llm" | jq -r .mode)" rate_limited "llm mode unchanged by a bad request"
lp_assert_eq "$(curl -s -X POST "$E/_sandbox/llm" -d '{"mode":"slow","slow_ms":50}' | jq -c '[.mode, .slow_ms]')" '["slow",50]' "llm control sets slow_ms"
lp_assert_eq "$(llm_mode "$E" ok)" 200 "llm back to ok"
lp_assert_eq "$(chat "$E" "$ok_facts")" 200 "llm ok again"
lp_assert_eq "$(content)" "$ok_text" "llm ok text again"
# The fault table reaches llm like any platform.
lp_assert_eq "$(faults "$E" '{"platform":"llm","burst_429":1}')" 200 "set llm burst_429"
lp_assert_eq "$(chat "$E" "$ok_facts")$(header Retry-After)" 4291 "llm injected 429 with Retry-After"
lp_assert_eq "$(jbody_r .error.type)" rate_limit_error "llm injected 429 envelope"
# Counted: by status in /_sandbox/stats, by mode in /_sandbox/llm; no ledger.
lp_assert_eq "$(curl -s "$E/_sandbox/llm" | jq -c '.by_mode | [.empty.by_status."200", .long.requests, .wrong_amount.requests, .slow.by_status."200", .error.by_status."500", .rate_limited.by_status."429"]')" \
  '[1,1,2,1,1,1]' "llm answers counted by mode"
lp_assert_eq "$(stats "$E" '.platforms.llm.by_status | [."401", ."405", ."429", ."500"]' | jq -c .)" '[2,1,2,1]' "llm counted in /_sandbox/stats"
lp_assert_eq "$(ledger "$E" '' | jq '.effects | length')" 0 "completions add nothing to the ledger"
lp_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$E/_sandbox/reset")" 200 "reset (llm)"
lp_assert_eq "$(curl -s "$E/_sandbox/llm" | jq -c '[.mode, .requests, .completions, .last]')" '["ok",0,0,null]' "reset clears llm counters, keeps the mode"
chat "$E" "$ok_facts" >/dev/null
lp_assert_eq "$(jbody_r .id)" chatcmpl-1 "llm ids restart after reset"
# F: the mode, slow delay and key set at start-up.
lp_start_sandbox -X llm.mode=wrong_amount -X llm.key=k1,k2
F=$SANDBOX_URL
F_PID=$SANDBOX_PID
lp_assert_eq "$(curl -s "$F/_sandbox/llm" | jq -c '[.mode, .slow_ms]')" '["wrong_amount",3000]' "llm.mode and llm.slow.ms at start-up"
lp_assert_eq "$(call POST "$F/v1/chat/completions" -H 'Authorization: Bearer k2' -d '{"model":"m","messages":[{"role":"user","content":"points: 5"}]}')" \
  200 "llm.key: a second accepted key"
lp_assert_eq "$(numbers)" "105 " "llm.mode=wrong_amount from start-up"
lp_assert_eq "$(call POST "$F/v1/chat/completions" "${AI[@]}" -d "$ok_req")" 401 "llm.key replaces the default key"

for pid in "$A_PID" "$B_PID" "$C_PID" "$D_PID" "$E_PID" "$F_PID"; do lp_stop_pid "$pid"; done
echo "ok: SIGTERM stops every sandbox with status 0"
echo "ok: sandbox"
