/*
 * strmap.c — open-addressing hash map (see strmap.h). FNV-1a hashes,
 * power-of-two tables kept at most 70 % full, so a probe sequence always
 * ends at an empty slot.
 */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct sb_map_slot {
  char *key; /* owned; NULL = empty slot */
  size_t key_len;
  uint64_t hash;
  void *value;
};

struct sb_map {
  struct sb_map_slot *slots; /* owned */
  size_t cap;                /* power of two */
  size_t count;
  sb_map_free_fn free_value;
};

static uint64_t hash_bytes(const char *key, size_t len) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)key[i];
    h *= 1099511628211ULL;
  }
  return h;
}

struct sb_map *sb_map_new(sb_map_free_fn free_value) {
  struct sb_map *m = lp_xcalloc(1, sizeof(*m));
  m->cap = 16;
  m->slots = lp_xcalloc(m->cap, sizeof(*m->slots));
  m->free_value = free_value;
  return m;
}

void sb_map_clear(struct sb_map *m) {
  for (size_t i = 0; i < m->cap; i++) {
    struct sb_map_slot *s = &m->slots[i];
    if (!s->key)
      continue;
    if (m->free_value)
      m->free_value(s->value);
    free(s->key);
    memset(s, 0, sizeof(*s));
  }
  m->count = 0;
}

void sb_map_destroy(struct sb_map **mp) {
  if (!mp || !*mp)
    return;
  sb_map_clear(*mp);
  free((*mp)->slots);
  free(*mp);
  *mp = NULL;
}

static struct sb_map_slot *find(const struct sb_map *m, const char *key,
                                size_t len, uint64_t h) {
  size_t i = (size_t)h & (m->cap - 1);
  for (;;) {
    struct sb_map_slot *s = &m->slots[i];
    if (!s->key ||
        (s->hash == h && s->key_len == len && memcmp(s->key, key, len) == 0))
      return s;
    i = (i + 1) & (m->cap - 1);
  }
}

static void grow(struct sb_map *m) {
  struct sb_map_slot *old = m->slots;
  size_t old_cap = m->cap;
  m->cap *= 2;
  m->slots = lp_xcalloc(m->cap, sizeof(*m->slots));
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].key)
      *find(m, old[i].key, old[i].key_len, old[i].hash) = old[i];
  free(old);
}

void *sb_map_get(const struct sb_map *m, const char *key, size_t key_len) {
  struct sb_map_slot *s = find(m, key, key_len, hash_bytes(key, key_len));
  return s->key ? s->value : NULL;
}

void sb_map_put(struct sb_map *m, const char *key, size_t key_len,
                void *value) {
  uint64_t h = hash_bytes(key, key_len);
  struct sb_map_slot *s = find(m, key, key_len, h);
  if (s->key) {
    if (m->free_value && s->value != value)
      m->free_value(s->value);
    s->value = value;
    return;
  }
  if ((m->count + 1) * 10 > m->cap * 7) {
    grow(m);
    s = find(m, key, key_len, h);
  }
  s->key = lp_xmalloc(key_len + 1);
  memcpy(s->key, key, key_len);
  s->key[key_len] = '\0';
  s->key_len = key_len;
  s->hash = h;
  s->value = value;
  m->count++;
}

size_t sb_map_count(const struct sb_map *m) {
  return m->count;
}
