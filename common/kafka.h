/*
 * kafka.h — librdkafka configuration helpers shared by every binary:
 * builds an rd_kafka_conf_t from our defaults plus the user's kafka.*
 * pass-through properties (user wins), resolves the bootstrap address
 * (kafka.bootstrap.servers, else the file devbroker writes), and routes
 * librdkafka's own log lines into our JSON log.
 */
#ifndef LP_KAFKA_H
#define LP_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

/*
 * defaults: NULL-terminated list of name, value, name, value, ... applied
 * first; then every property in props. Returns a new conf (caller owns;
 * rd_kafka_new takes it over) or NULL with errstr naming the property.
 */
rd_kafka_conf_t *lp_kafka_conf_build(const char *const *defaults,
                                     const struct lp_kafka_props *props,
                                     char *errstr, size_t errstr_size);

/*
 * Makes sure props has bootstrap.servers: if unset and bootstrap_file is
 * non-empty, reads the first line of that file (as written by devbroker).
 * Returns 0, or -1 with errstr when neither gives an address.
 */
int lp_kafka_resolve_bootstrap(struct lp_kafka_props *props,
                               const char *bootstrap_file, char *errstr,
                               size_t errstr_size);

/*
 * Stores position (the next offset to consume) of topic/partition for
 * the consumer's next commit, logging a failure and counting a success
 * (LP_M_OFFSETS_STORED). Matches lp_offsets_visit_fn with the consumer
 * as opaque, so it can be handed to lp_offsets_drain_committable.
 */
void lp_kafka_store_offset(void *consumer, const char *topic, int32_t partition,
                           int64_t position);

#endif
