/*
 * server.h — the sandbox's HTTP front: libmicrohttpd on 127.0.0.1 with a
 * thread per connection (a slow answer never stalls another client;
 * keep-alive supported), request bodies capped, every request handed to
 * sb_dispatch.
 */
#ifndef SB_SERVER_H
#define SB_SERVER_H

#include <stddef.h>

#include "sandbox.h"

struct sb_server;

/* Listens on bind:port (an IPv4 address, normally 127.0.0.1; port 0 = a
 * free port). sb is borrowed and must outlive the server. Returns NULL
 * with errstr on failure. */
struct sb_server *sb_server_start(struct sandbox *sb, const char *bind,
                                  int port, unsigned max_connections,
                                  size_t body_max, char *errstr,
                                  size_t errstr_size);
int sb_server_port(const struct sb_server *s);
/* Stops (joining every connection thread) and frees; NULLs the caller's
 * pointer; accepts NULL. Call sb_shutdown first so sleeping answers end. */
void sb_server_stop(struct sb_server **s);

#endif
