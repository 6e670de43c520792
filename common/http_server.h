/*
 * http_server.h — the operational HTTP endpoint of every processor
 * (libmicrohttpd, its own thread): GET /metrics (Prometheus text) and
 * GET /healthz (200 "ok" while the health callback says healthy, else 503
 * with the reason). Binds to 127.0.0.1 by default.
 */
#ifndef LP_HTTP_SERVER_H
#define LP_HTTP_SERVER_H

#include <stddef.h>

struct lp_http_server;

/* Returns 1 when healthy; else 0 and a reason in reason (reason_size). */
typedef int (*lp_health_fn)(void *opaque, char *reason, size_t reason_size);

/*
 * Starts serving on bind_addr:port (port 0 = pick a free port; read it back
 * with lp_http_server_port). health may be NULL (always healthy).
 * Returns NULL with errstr on failure.
 */
struct lp_http_server *lp_http_server_start(const char *bind_addr, int port,
                                            lp_health_fn health, void *opaque,
                                            char *errstr, size_t errstr_size);
int lp_http_server_port(const struct lp_http_server *s);
/* Stops and frees; NULLs the caller's pointer; accepts NULL. */
void lp_http_server_stop(struct lp_http_server **s);

#endif
