/*
 * bridge — platform webhooks in, canonical events on Kafka out. Wiring
 * only: the server is bridge.c, the signature check common/webhook.c,
 * the Shopify mapping common/json_codec.c.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

static const char usage[] =
    "NAME\n"
    "  bridge - platform webhooks to canonical events on Kafka\n"
    "\n"
    "SYNOPSIS\n"
    "  bridge [-c FILE] [-X key=value ...] [--help]\n"
    "\n"
    "DESCRIPTION\n"
    "  Receives Shopify webhooks on POST /webhooks/shopify (orders/create,\n"
    "  orders/paid, orders/cancelled, customers/create, customers/update),\n"
    "  verifies X-Shopify-Hmac-Sha256 against shopify.secrets, drops a\n"
    "  repeated X-Shopify-Event-Id within dedupe.window.s (kept in Redis),\n"
    "  maps the body to a canonical OrderEvent or CustomerEvent and\n"
    "  produces it keyed by member. It answers 200 only after Kafka has\n"
    "  acknowledged the record, so a failure before that is covered by\n"
    "  the platform's retry.\n"
    "\n"
    "ANSWERS\n"
    "  200 produced (or a repeat inside the window), JSON with the event id\n"
    "  400 malformed: not JSON, wrong shape, invalid UTF-8, a missing\n"
    "      customer, an unsupported topic (JSON {\"error\": reason})\n"
    "  401 missing or wrong signature      413 body above body.max.bytes\n"
    "  503 Kafka did not acknowledge within ack.timeout.ms\n"
    "  GET /healthz and GET /metrics (Prometheus text) on the same port.\n"
    "\n"
    "EXIT STATUS\n"
    "  0 clean shutdown (SIGTERM: requests in hand are finished), 1 run-time\n"
    "  failure, 2 bad configuration\n";

static struct lp_bridge_config conf;

#define C(field) offsetof(struct lp_bridge_config, field)
static struct lp_config_entry table[] = {
    {"bootstrap.file", LP_CONF_STRING, "", C(bootstrap_file),
     "File holding the bootstrap address (written by devbroker); used when "
     "kafka.bootstrap.servers is unset",
     0, 0},
    {"topic.orders", LP_CONF_STRING, "orders", C(topic_orders),
     "Topic of the order events", 0, 0},
    {"topic.customers", LP_CONF_STRING, "customers", C(topic_customers),
     "Topic of the customer events", 0, 0},
    {"shopify.secrets", LP_CONF_STRING, "", C(shopify_secrets),
     "The app's webhook secret(s), comma-separated during a rotation "
     "(better from the environment: LOYALTY_SHOPIFY_SECRETS)",
     0, 0},
    {"http.bind", LP_CONF_STRING, "127.0.0.1", C(http_bind),
     "IPv4 address to listen on (0.0.0.0: every interface)", 0, 0},
    {"http.port", LP_CONF_INT, "8090", C(http_port),
     "Port of the webhook endpoint (0 = pick a free one and log it)", 0, 65535},
    {"body.max.bytes", LP_CONF_INT, "1048576", C(body_max_bytes),
     "Largest webhook body accepted (413 above)", 1024, 104857600},
    {"connection.limit", LP_CONF_INT, "256", C(connection_limit),
     "Connections served at a time (a thread each)", 1, 10000},
    {"connection.timeout.s", LP_CONF_INT, "10", C(connection_timeout_s),
     "An idle or slow connection is closed after this", 1, 3600},
    {"ack.timeout.ms", LP_CONF_INT, "5000", C(ack_timeout_ms),
     "Longest wait for Kafka's acknowledgement before answering 503", 100,
     300000},
    {"redis.host", LP_CONF_STRING, "127.0.0.1", C(redis_host),
     "Redis keeping the dedupe window", 0, 0},
    {"redis.port", LP_CONF_INT, "6379", C(redis_port), "Redis port", 1, 65535},
    {"redis.namespace", LP_CONF_STRING, "loyalty", C(redis_namespace),
     "Key prefix", 0, 0},
    {"redis.timeout.ms", LP_CONF_INT, "500", C(redis_timeout_ms),
     "Redis connect and command timeout (Redis away: no dedupe here, the "
     "processors still dedupe on the event id)",
     10, 60000},
    {"dedupe.window.s", LP_CONF_INT, "86400", C(dedupe_window_s),
     "How long a delivered X-Shopify-Event-Id is remembered", 60, 31536000},
    {"shop.default", LP_CONF_STRING, "", C(default_shop),
     "Shop for bodies without X-Shopify-Shop-Domain", 0, 0},
    {"log.level", LP_CONF_STRING, "info", C(log_level),
     "debug, info, warn or error", 0, 0},
};
#undef C

static volatile sig_atomic_t stop_requested;

int main(int argc, char **argv) {
  struct lp_kafka_props kafka = {0};
  int rc = lp_daemon_start("bridge", table, LP_ARRAY_LEN(table), &conf, &kafka,
                           argc, argv, usage, &stop_requested);
  if (rc >= 0)
    return rc;
  rc = lp_bridge_run(&conf, &kafka, &stop_requested);
  lp_daemon_end(table, LP_ARRAY_LEN(table), &conf, &kafka);
  return rc;
}
