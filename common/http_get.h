/*
 * http_get.h — one HTTP GET with libcurl, the response kept whole: status,
 * body (bounded) and the response headers, for the clients that read a
 * platform's REST API (the bridge's order fetches and look-ups). Retries,
 * rate limits and what a status means are the caller's business.
 *
 * Binaries that call it link libcurl (see the Makefile).
 */
#ifndef LP_HTTP_GET_H
#define LP_HTTP_GET_H

#include <stddef.h>

#include "util.h"

struct lp_http_response {
  long status;         /* 0 when no response came (error says why) */
  struct lp_buf body;  /* NUL-terminated by lp_buf_cstr */
  struct lp_buf heads; /* the last response's headers, "name: value\n" */
  char error[256];     /* transport error or "body above N bytes" */
};

void lp_http_response_init(struct lp_http_response *r);
void lp_http_response_clear(struct lp_http_response *r);

/* The value of response header name (case-insensitive), copied into out
 * (trimmed); NULL when absent. */
const char *lp_http_response_header(const struct lp_http_response *r,
                                    const char *name, char *out,
                                    size_t out_size);

/*
 * GETs url with the extra request headers ("Name: value", NULL-ended),
 * giving up after timeout_ms. 0 when a response arrived (any status), -1
 * on a transport error, a timeout or a body above max_body bytes (r->error
 * says which). r is reset first. curl_handle: a CURL * to reuse (keeps the
 * connection alive), or NULL for a one-off handle.
 */
int lp_http_get(void *curl_handle, const char *url, const char *const *headers,
                long timeout_ms, size_t max_body, struct lp_http_response *r);

#endif
