/*
 * schemas_embed.h — the Avro schemas of schemas/<name>.avsc, compiled into the
 * library by the Makefile (build/gen/schemas_embed.c).
 */
#ifndef LP_SCHEMAS_EMBED_H
#define LP_SCHEMAS_EMBED_H

struct lp_embedded_schema {
  const char *name; /* file name without .avsc, e.g. "OrderEvent" */
  const char *json; /* the file's text */
};

/* Terminated by an entry whose name is NULL. */
extern const struct lp_embedded_schema lp_embedded_schemas[];

#endif
