/*
 * strmap.h — the sandbox's one associative container: byte-string keys
 * (copied) to pointer values, open addressing with linear probing. No
 * deletion: the sandbox only ever adds state and clears it all on reset.
 * Not thread-safe; the sandbox's state lock covers every use.
 */
#ifndef SB_STRMAP_H
#define SB_STRMAP_H

#include <stddef.h>

struct sb_map;

/* Called on each value by clear/destroy and on a replaced value; NULL =
 * values are not owned by the map. */
typedef void (*sb_map_free_fn)(void *value);

struct sb_map *sb_map_new(sb_map_free_fn free_value);
/* Frees keys and (when owned) values; NULLs the caller's pointer; accepts
 * NULL. */
void sb_map_destroy(struct sb_map **m);
/* Removes every entry, keeping the table's memory. */
void sb_map_clear(struct sb_map *m);
/* Value for key, or NULL (borrowed). */
void *sb_map_get(const struct sb_map *m, const char *key, size_t key_len);
/* Inserts or replaces (the old value is freed when owned); key copied. */
void sb_map_put(struct sb_map *m, const char *key, size_t key_len, void *value);
size_t sb_map_count(const struct sb_map *m);

#endif
