/*
 * bridge.h — the webhook bridge: platform webhooks in over HTTP,
 * canonical events out to Kafka, answered 200 only once Kafka has
 * acknowledged the record (bridge.c).
 */
#ifndef LP_BRIDGE_H
#define LP_BRIDGE_H

#include <signal.h>

#include "config.h"

struct lp_bridge_config {
  char *bootstrap_file;
  char *topic_orders;
  char *topic_customers;
  char *topic_dlq;
  char *shopify_secrets;   /* comma-separated (rotation) */
  char *shopify_api_url;   /* "" or a base with {shop}: order look-ups */
  char *shopify_api_token; /* X-Shopify-Access-Token of the look-ups */
  long order_index_ttl_s;  /* order -> member, for refunds */
  char *bigcommerce_secret_header;
  char *bigcommerce_secrets; /* comma-separated (rotation) */
  char *bigcommerce_api_url;
  char *bigcommerce_tokens; /* STORE_HASH=TOKEN,... */
  char *adobe_public_keys;  /* PEM files, comma-separated */
  char *adobe_client_id;    /* "" or the recipient_client_id expected */
  long fetch_timeout_ms;
  char *http_bind;
  long http_port;
  long body_max_bytes;
  long connection_limit;
  long connection_timeout_s;
  long ack_timeout_ms;
  char *redis_host;
  long redis_port;
  char *redis_namespace;
  long redis_timeout_ms;
  long dedupe_window_s;
  char *default_shop;
  char *log_level;
};

/* Serves until *stop; returns the exit status (0 clean, 1 run-time
 * failure, 2 bad configuration). */
int lp_bridge_run(const struct lp_bridge_config *c,
                  struct lp_kafka_props *kafka, volatile sig_atomic_t *stop);

#endif
