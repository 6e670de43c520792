# (issue 6) Member timers on event time, driven by the order stream:
#   1. orders on days 0 and 10 and none after: the win-back decision comes
#      exactly when the partition's event time reaches day 55 (not one
#      millisecond before); an order on day 50 gives none at day 55 and a
#      new timer due on day 95;
#   2. a replay of the same topic into a fresh namespace fires the same
#      timers: the same decision ids, byte for byte;
#   3. an idle partition's due timer fires by wall clock within the
#      documented bound (timers.idle.ms + timers.wall.lag.ms + 1 s);
#   4. a far-future event time is dead-lettered (field event_time), and one
#      within the skew bound cannot pull the watermark past the wall clock,
#      so it fires nothing early.
set -euo pipefail
. tests/lib.sh
lp_start_broker "orders:1,orders-idle:1,customers:1,decisions:4,decisions-replay:4,decisions-idle:4,dlq:1"
lp_start_redis
RULES=tests/component/fixtures/timer-rules
DAY=86400000
now_ms=$(($(date +%s) * 1000))
T0=$(( (now_ms / DAY - 100) * DAY )) # midnight UTC, 100 days ago
iso() { date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S.$(printf %03d $(($1 % 1000)))Z; }
order() { # order EVENT_ID CUSTOMER TIME_MS
  printf '{"event_id":"%s","shop":"tm-shop","order_id":"%s","customer_id":"%s","event_time":"%s","status":"created","currency":"EUR","total":"40.00","subtotal":"40.00","discount":"0.00","tax":"0.00","discount_codes":[],"line_items":[{"product_id":"p1","sku":"s1","category":"coffee","brand":"Acme","quantity":1,"unit_price":"40.00"}],"source":"test"}\n' \
    "$1" "$1" "$2" "$(iso "$3")"
}
timer_decisions() { # timer_decisions TOPIC -> "customer trigger_event_id event_time" lines
  lp_ctl consume --topic "$1" --type decision --idle-ms 1500 |
    jq -r 'select(.rule_id == "winback-45d-test") | "\(.customer_id) \(.trigger_event_id) \(.trigger_kind) \(.event_time)"' | sort
}
metric() { # metric LOG NAME
  local port
  port=$(sed -n 's/.*"http_port":\([0-9]*\).*/\1/p' "$LP_TMP/$1.log" | head -n1)
  local body
  body=$(curl -s "http://127.0.0.1:$port/metrics") || true
  awk -v n="$2" 'index($1, n) == 1 {print $2; exit}' <<<"$body"
}

# --- 1. win-back at day 55 exactly; an order on day 50 moves it ---------
{
  order a0 alice $T0
  order b0 bob $T0
  order e15 erin $((T0 + 15 * DAY)) # due on day 60
  order a10 alice $((T0 + 10 * DAY))
  order b10 bob $((T0 + 10 * DAY))
  order b50 bob $((T0 + 50 * DAY))
  order c54 carol $((T0 + 55 * DAY - 1)) # event time 1 ms before day 55
} | lp_ctl produce --type order
lp_start_processor order-processor order-live -X rules.path=$RULES \
  -X redis.namespace=live -X group.id=order-live -X topic.decisions=decisions \
  -X timers.lateness.ms=0 -X timers.wall.clock=false
LIVE_PID=$LAST_PID
lp_ctl wait --group order-live --topic orders --timeout-ms 60000
sleep 1
lp_assert_eq "$(timer_decisions decisions | wc -l)" 0 \
  "no win-back while the stream is 1 ms before day 55"
due_a=$((T0 + 55 * DAY)) due_b=$((T0 + 95 * DAY))
r() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
lp_assert_eq "$(r ZSCORE live:orders:tm:0:due winback:tm-shop:alice:winback-45d-test)" \
  "$due_a" "alice's timer due on day 55"
lp_assert_eq "$(r ZSCORE live:orders:tm:0:due winback:tm-shop:bob:winback-45d-test)" \
  "$due_b" "bob's timer moved by his day-50 order to day 95"

order c55 carol $((T0 + 55 * DAY)) | lp_ctl produce --type order
lp_ctl wait --group order-live --topic orders --timeout-ms 60000
for _ in $(seq 50); do
  [ "$(timer_decisions decisions | wc -l)" -ge 1 ] && break
  sleep 0.2
done
lp_assert_eq "$(timer_decisions decisions)" \
  "alice winback:tm-shop:alice:winback-45d-test@$due_a winback $(iso $due_a)" \
  "alice's win-back fires when the stream reaches day 55; bob gets none"
lp_assert_eq "$(r ZSCORE live:orders:tm:0:due winback:tm-shop:alice:winback-45d-test)" \
  "" "alice's fired timer is gone"
lp_assert_eq "$(r ZSCORE live:orders:tm:0:due winback:tm-shop:bob:winback-45d-test)" \
  "$due_b" "bob's day-95 timer is still pending"
# Erin (due day 60) fires as the stream passes day 70, and orders again on
# day 97 in the same batch: her win-back is decided with that record, on
# her profile just before it (the replay below, in batches of 2, fires it
# between batches instead: the same bytes either way).
{
  order a70 alice $((T0 + 70 * DAY))
  order d96 dave $((T0 + 96 * DAY)) # the stream passes day 95: bob fires
  order e97 erin $((T0 + 97 * DAY))
} | lp_ctl produce --type order
lp_ctl wait --group order-live --topic orders --timeout-ms 60000
for _ in $(seq 50); do
  [ "$(timer_decisions decisions | wc -l)" -ge 3 ] && break
  sleep 0.2
done
lp_assert_eq "$(timer_decisions decisions | awk '{print $1, $2}')" \
  "alice winback:tm-shop:alice:winback-45d-test@$due_a
bob winback:tm-shop:bob:winback-45d-test@$due_b
erin winback:tm-shop:erin:winback-45d-test@$((T0 + 60 * DAY))" \
  "bob's win-back fires at day 95, 45 days after his day-50 order; erin's at day 60"
lp_stop_pid "$LIVE_PID"

# --- 2. replay into a fresh namespace: the same timers, the same ids -----
lp_start_processor order-processor order-replay -X rules.path=$RULES \
  -X redis.namespace=replay -X group.id=order-replay \
  -X topic.decisions=decisions-replay -X timers.lateness.ms=0 \
  -X timers.wall.clock=false -X batch.size=2
REPLAY_PID=$LAST_PID
lp_ctl wait --group order-replay --topic orders --timeout-ms 60000
for _ in $(seq 50); do
  [ "$(timer_decisions decisions-replay | wc -l)" -ge 3 ] && break
  sleep 0.2
done
lp_stop_pid "$REPLAY_PID"
lp_ctl consume --topic decisions --type decision --format hex | sort >"$LP_TMP/live.hex"
lp_ctl consume --topic decisions-replay --type decision --format hex | sort >"$LP_TMP/replay.hex"
lp_assert_files_eq "$LP_TMP/replay.hex" "$LP_TMP/live.hex" \
  "replay (other batch size) decides the same, timers included, byte for byte"

# --- 3. an idle partition fires by wall clock within the bound -----------
# Frank's last order makes his win-back due 4 s from now; nothing else
# arrives on the partition. Bound (docs/timers.md): due + wall.lag, or
# last record + idle if later, plus one second.
idle_ms=2000 lag_ms=1000
due_f=$(( $(date +%s%3N) + 4000 ))
order f0 frank $((due_f - 45 * DAY)) | lp_ctl produce --type order --topic orders-idle
lp_start_processor order-processor order-idle -X rules.path=$RULES \
  -X redis.namespace=idle -X group.id=order-idle -X topic.input=orders-idle \
  -X topic.decisions=decisions-idle -X timers.lateness.ms=0 \
  -X timers.wall.clock=true -X timers.idle.ms=$idle_ms -X timers.wall.lag.ms=$lag_ms \
  -X timers.fire.interval.ms=200
IDLE_PID=$LAST_PID
fired_at=""
for _ in $(seq 150); do
  if [ "$(timer_decisions decisions-idle | wc -l)" -ge 1 ]; then
    fired_at=$(date +%s%3N)
    break
  fi
  sleep 0.1
done
[ -n "$fired_at" ] || lp_fail "frank's due timer never fired by wall clock"
late=$((fired_at - due_f))
echo "frank's win-back seen $late ms after its due time (bound lag + fire interval + 1 s, + observation)"
[ "$late" -ge "$lag_ms" ] || lp_fail "fired before due + wall.lag ($late ms)"
[ "$late" -le $((lag_ms + 1000 + 2500)) ] || lp_fail "fired $late ms late: over the bound"
wall_late=$(metric order-idle 'loyalty_timer_lateness_wall_ms{')
echo "loyalty_timer_lateness_wall_ms = $wall_late"
[ "$wall_late" -ge "$lag_ms" ] && [ "$wall_late" -le $((lag_ms + 1200)) ] ||
  lp_fail "wall lateness $wall_late ms outside [lag, lag + fire interval + 1 s]"
lp_assert_eq "$(timer_decisions decisions-idle | awk '{print $1, $2}')" \
  "frank winback:tm-shop:frank:winback-45d-test@$due_f" \
  "frank's win-back carries his due time (the same id a replay gives)"

# --- 4. future event times: dead-lettered, or clamped to the wall clock --
# Gina's win-back is due in one day. A record 10 years ahead is refused;
# one 1 hour ahead (inside event.max.future.ms) is accepted, but the
# watermark stops at the wall clock, so gina's timer stays pending.
due_g=$(( $(date +%s%3N) + DAY ))
{
  order g0 gina $((due_g - 45 * DAY))
  order h-far henry $(( $(date +%s%3N) + 3650 * DAY ))
  order h-near henry $(( $(date +%s%3N) + 3600000 ))
} | lp_ctl produce --type order --topic orders-idle
lp_ctl wait --group order-idle --topic orders-idle --timeout-ms 60000
sleep $(( (idle_ms + lag_ms) / 1000 + 2 ))
lp_ctl consume --topic dlq --type dead_letter >"$LP_TMP/dlq.jsonl"
lp_assert_eq "$(jq -r 'select(.source_topic == "orders-idle") | .field' "$LP_TMP/dlq.jsonl")" \
  "event_time" "the order 10 years ahead is dead-lettered (field event_time)"
jq -r .reason "$LP_TMP/dlq.jsonl" | grep -q "event.max.future.ms" ||
  lp_fail "the reason names the bound: $(jq -r .reason "$LP_TMP/dlq.jsonl")"
lp_assert_eq "$(timer_decisions decisions-idle | awk '{print $1}' | tr '\n' ' ')" \
  "frank " "no timer fired early by a future event time"
lp_assert_eq "$(r ZSCORE idle:orders-idle:tm:0:due winback:tm-shop:gina:winback-45d-test)" \
  "$due_g" "gina's timer is still pending"
lp_stop_pid "$IDLE_PID"
echo "member timers: ok"
