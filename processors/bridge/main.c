/*
 * bridge — platform webhooks in, canonical events on Kafka out. Wiring
 * only: the server is bridge.c, the platforms bridge_shopify.c,
 * bridge_bigcommerce.c and bridge_adobe.c, the signature checks
 * common/webhook.c and common/adobe.c, the mappings common/json_codec.c,
 * common/bigcommerce.c and common/adobe.c.
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
    "  Receives platform webhooks, maps each to a canonical OrderEvent or\n"
    "  CustomerEvent and produces it keyed by member. It answers 200 only\n"
    "  after Kafka has acknowledged the record, so a failure before that is\n"
    "  covered by the platform's retry. Repeats inside dedupe.window.s\n"
    "  (kept in Redis) answer 200 and produce nothing.\n"
    "\n"
    "  POST /webhooks/shopify      orders/create, orders/paid,\n"
    "      orders/cancelled, refunds/create, customers/create,\n"
    "      customers/update; X-Shopify-Hmac-Sha256 against shopify.secrets;\n"
    "      deduped on X-Shopify-Event-Id. A refund's customer comes from\n"
    "      the order index (orders seen here) or shopify.api.url.\n"
    "  POST /webhooks/bigcommerce  ids-only callbacks (store/order/*,\n"
    "      store/customer/*); the bigcommerce.secret.header against\n"
    "      bigcommerce.secrets; deduped on the body's hash; the order and\n"
    "      its products fetched with the store's token, within its rate\n"
    "      limit, retried until fetch.timeout.ms.\n"
    "  POST /webhooks/adobe        Adobe Commerce events via Adobe I/O\n"
    "      Events; x-adobe-digital-signature-1/2 (RSA-SHA256) against\n"
    "      adobe.public.keys; GET ?challenge=X answers the registration.\n"
    "\n"
    "ANSWERS\n"
    "  200 produced (or a repeat inside the window), JSON with the event id\n"
    "  200 {\"dead_letter\": reason}: can never be mapped (a refund of an\n"
    "      unknown order, a deleted order); kept on topic.dlq\n"
    "  400 malformed: not JSON, wrong shape, invalid UTF-8, a missing\n"
    "      customer, an unsupported topic (JSON {\"error\": reason})\n"
    "  401 missing or wrong signature      413 body above body.max.bytes\n"
    "  404 unknown path, or a platform not configured\n"
    "  503 Kafka did not acknowledge within ack.timeout.ms, or a REST fetch\n"
    "      did not succeed within fetch.timeout.ms\n"
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
    {"topic.dlq", LP_CONF_STRING, "dlq", C(topic_dlq),
     "Dead-letter topic: webhooks that can never be mapped (a refund of an "
     "unknown order, a deleted order)",
     0, 0},
    {"shopify.secrets", LP_CONF_STRING, "", C(shopify_secrets),
     "Shopify: the app's webhook secret(s), comma-separated during a "
     "rotation (better from the environment: LOYALTY_SHOPIFY_SECRETS); "
     "empty = no Shopify endpoint",
     0, 0},
    {"shopify.api.url", LP_CONF_STRING, "", C(shopify_api_url),
     "Shopify Admin REST base for refunds of orders not in the order index, "
     "e.g. https://{shop}/admin/api/2025-01 ({shop} = X-Shopify-Shop-Domain)",
     0, 0},
    {"shopify.api.token", LP_CONF_STRING, "", C(shopify_api_token),
     "X-Shopify-Access-Token for those look-ups (LOYALTY_SHOPIFY_API_TOKEN)", 0,
     0},
    {"order.index.ttl.s", LP_CONF_INT, "15552000", C(order_index_ttl_s),
     "How long the order -> member index is kept for refunds (180 days)", 3600,
     315360000},
    {"bigcommerce.secrets", LP_CONF_STRING, "", C(bigcommerce_secrets),
     "BigCommerce: the shared secret(s) the hooks were created with, "
     "comma-separated (LOYALTY_BIGCOMMERCE_SECRETS); empty = no BigCommerce "
     "endpoint",
     0, 0},
    {"bigcommerce.secret.header", LP_CONF_STRING, "X-Bridge-Secret",
     C(bigcommerce_secret_header),
     "The custom header the hooks echo the secret in", 0, 0},
    {"bigcommerce.api.url", LP_CONF_STRING, "https://api.bigcommerce.com",
     C(bigcommerce_api_url), "BigCommerce API base (before /stores/<hash>/)", 0,
     0},
    {"bigcommerce.tokens", LP_CONF_STRING, "", C(bigcommerce_tokens),
     "API token per store: STORE_HASH=TOKEN,... (LOYALTY_BIGCOMMERCE_TOKENS)",
     0, 0},
    {"adobe.public.keys", LP_CONF_STRING, "", C(adobe_public_keys),
     "Adobe Commerce (I/O Events): PEM public key file(s) the deliveries are "
     "signed with, comma-separated; empty = no Adobe endpoint",
     0, 0},
    {"adobe.client.id", LP_CONF_STRING, "", C(adobe_client_id),
     "When set, the recipient_client_id a delivery must carry", 0, 0},
    {"fetch.timeout.ms", LP_CONF_INT, "3000", C(fetch_timeout_ms),
     "Time for a REST fetch with its retries before the webhook answers 503",
     100, 60000},
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
