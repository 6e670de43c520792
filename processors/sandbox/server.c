/*
 * server.c — libmicrohttpd glue (see server.h): collects the body (at
 * most body.max bytes; beyond that the rest is discarded and the request
 * answered 413), parses it as JSON once, dispatches, sleeps any injected
 * latency outside the state lock, then answers — or, for a dropped
 * request, returns MHD_NO so the client sees the connection close with no
 * response.
 */
#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "log.h"
#include "util.h"

struct sb_server {
  struct MHD_Daemon *daemon;
  struct sandbox *sb; /* borrowed */
  size_t body_max;
  int port;
};

/* Per request: the body so far. */
struct request_ctx {
  struct lp_buf body;
  int too_large;
};

static const char *lookup_header(const struct sb_request *req,
                                 const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static const char *lookup_query(const struct sb_request *req,
                                const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result answer(struct sb_server *srv,
                              struct MHD_Connection *conn, const char *method,
                              const char *url, struct request_ctx *ctx) {
  struct sb_request req;
  memset(&req, 0, sizeof(req));
  req.method = method;
  req.path = url;
  req.too_large = ctx->too_large;
  req.body = ctx->too_large ? NULL : (const char *)ctx->body.data;
  req.body_len = ctx->too_large ? 0 : ctx->body.len;
  req.header = lookup_header;
  req.query = lookup_query;
  req.conn = conn;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  req.connection = ci ? ci->socket_context : NULL;
  req.now_ms = lp_now_ms();
  json_error_t jerr;
  json_t *json = NULL;
  if (req.body_len) {
    json = json_loadb(req.body, req.body_len, 0, &jerr);
    if (!json)
      req.json_error = jerr.text;
  }
  req.json = json;

  struct sb_response resp;
  memset(&resp, 0, sizeof(resp));
  long latency_ms = 0;
  int platform = -1;
  sb_dispatch(srv->sb, &req, &resp, &latency_ms, &platform);
  json_decref(json);
  sb_request_done(srv->sb, platform, latency_ms);
  LP_DEBUG("request", "\"method\":%s,\"path\":%s,\"status\":%d,\"dropped\":%s",
           lp_log_str(method), lp_log_str(url), resp.status,
           resp.drop ? "true" : "false");
  if (resp.drop) {
    sb_response_clear(&resp);
    return MHD_NO;
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(
      resp.body_len, resp.body,
      resp.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!r) {
    sb_response_clear(&resp);
    return MHD_NO;
  }
  resp.body = NULL; /* MHD frees it once sent */
  if (resp.content_type)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp.content_type);
  for (int i = 0; i < resp.n_headers; i++)
    MHD_add_response_header(r, resp.headers[i].name, resp.headers[i].value);
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp.status, r);
  MHD_destroy_response(r);
  sb_response_clear(&resp);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  struct sb_server *srv = cls;
  struct request_ctx *ctx = *con_cls;
  if (!ctx) {
    ctx = lp_xcalloc(1, sizeof(*ctx));
    lp_buf_init(&ctx->body);
    *con_cls = ctx;
    const char *length = MHD_lookup_connection_value(
        conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > srv->body_max) {
      /* Answer before reading (no 100 Continue); MHD closes after. */
      ctx->too_large = 1;
      return answer(srv, conn, method, url, ctx);
    }
    return MHD_YES;
  }
  if (*upload_size) {
    if (!ctx->too_large && ctx->body.len + *upload_size > srv->body_max) {
      ctx->too_large = 1;
      lp_buf_free(&ctx->body);
    }
    if (!ctx->too_large)
      lp_buf_append(&ctx->body, upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  return answer(srv, conn, method, url, ctx);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  (void)cls;
  (void)conn;
  (void)why;
  struct request_ctx *ctx = *con_cls;
  if (!ctx)
    return;
  lp_buf_free(&ctx->body);
  free(ctx);
  *con_cls = NULL;
}

/* One sb_connection per TCP connection, for the "early" rule. */
static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  (void)cls;
  (void)conn;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    *socket_context = lp_xcalloc(1, sizeof(struct sb_connection));
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    free(*socket_context);
    *socket_context = NULL;
  }
}

/* libmicrohttpd's own messages, as JSON log lines. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n && msg[n - 1] == '\n')
    msg[--n] = '\0';
  /* MHD_NO from the handler is how a drop fault closes the connection:
   * expected, counted in the stats, not worth a warning each time. */
  if (strstr(msg, "Application reported internal error"))
    LP_DEBUG("libmicrohttpd", "\"detail\":%s", lp_log_str(msg));
  else
    LP_WARN("libmicrohttpd", "\"detail\":%s", lp_log_str(msg));
}

struct sb_server *sb_server_start(struct sandbox *sb, const char *bind,
                                  int port, unsigned max_connections,
                                  size_t body_max, char *errstr,
                                  size_t errstr_size) {
  struct in_addr addr;
  if (inet_pton(AF_INET, bind, &addr) != 1) {
    lp_err(errstr, errstr_size, "bind: \"%s\" is not an IPv4 address", bind);
    return NULL;
  }
  struct sb_server *s = lp_xcalloc(1, sizeof(*s));
  s->sb = sb;
  s->body_max = body_max;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr = addr;
  s->daemon = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_ERROR_LOG,
      (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
      on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_CONNECTION_LIMIT, max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
      MHD_OPTION_END);
  if (!s->daemon) {
    free(s);
    lp_err(errstr, errstr_size, "cannot listen on %s:%d", bind, port);
    return NULL;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? (int)info->port : port;
  return s;
}

int sb_server_port(const struct sb_server *s) {
  return s->port;
}

void sb_server_stop(struct sb_server **sp) {
  if (!sp || !*sp)
    return;
  MHD_stop_daemon((*sp)->daemon);
  free(*sp);
  *sp = NULL;
}
