/*
 * http_server.c — /metrics and /healthz on libmicrohttpd's own thread
 * (see http_server.h). Idle connections time out after 10 s so a slow
 * client cannot pin the server.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "metrics.h"
#include "util.h"

struct lp_http_server {
  struct MHD_Daemon *daemon;
  lp_health_fn health;
  void *opaque;
  int port;
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *type, void *body, size_t len,
                               enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", type);
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)con_cls;
  struct lp_http_server *s = cls;
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return respond(conn, 405, "text/plain", "method not allowed\n", 19,
                   MHD_RESPMEM_PERSISTENT);
  if (strcmp(url, "/metrics") == 0) {
    struct lp_buf b;
    lp_buf_init(&b);
    lp_metrics_render(&b);
    /* MHD frees the buffer with free() once sent. */
    return respond(conn, 200, "text/plain; version=0.0.4", b.data, b.len,
                   MHD_RESPMEM_MUST_FREE);
  }
  if (strcmp(url, "/healthz") == 0) {
    char reason[256] = "unhealthy";
    if (!s->health || s->health(s->opaque, reason, sizeof(reason)))
      return respond(conn, 200, "text/plain", "ok\n", 3,
                     MHD_RESPMEM_PERSISTENT);
    size_t n = strlen(reason);
    if (n + 1 < sizeof(reason)) {
      reason[n++] = '\n';
      reason[n] = '\0';
    }
    return respond(conn, 503, "text/plain", reason, n, MHD_RESPMEM_MUST_COPY);
  }
  return respond(conn, 404, "text/plain", "not found\n", 10,
                 MHD_RESPMEM_PERSISTENT);
}

struct lp_http_server *lp_http_server_start(const char *bind_addr, int port,
                                            lp_health_fn health, void *opaque,
                                            char *errstr, size_t errstr_size) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
    lp_err(errstr, errstr_size, "http.bind: \"%s\" is not an IPv4 address",
           bind_addr);
    return NULL;
  }
  struct lp_http_server *s = lp_xcalloc(1, sizeof(*s));
  s->health = health;
  s->opaque = opaque;
  s->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
      NULL, handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)64, MHD_OPTION_END);
  if (!s->daemon) {
    lp_err(errstr, errstr_size, "http: cannot listen on %s:%d", bind_addr,
           port);
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : port;
  return s;
}

int lp_http_server_port(const struct lp_http_server *s) {
  return s->port;
}

void lp_http_server_stop(struct lp_http_server **sp) {
  struct lp_http_server *s = *sp;
  if (!s)
    return;
  MHD_stop_daemon(s->daemon);
  free(s);
  *sp = NULL;
}
