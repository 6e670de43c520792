/*
 * webhook.c — webhook signatures (see webhook.h).
 */
#include "webhook.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

void lp_shopify_hmac(const char *secret, size_t secret_len, const void *body,
                     size_t len, char out[45]) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret, (int)secret_len, body, len, mac, &mac_len);
  EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len); /* 44 + NUL */
}

int lp_shopify_hmac_ok(const char *secrets, const void *body, size_t len,
                       const char *header) {
  if (!secrets || !header || strlen(header) != 44)
    return 0;
  int ok = 0;
  for (const char *s = secrets; *s;) {
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    if (n > 0) {
      char want[45];
      lp_shopify_hmac(s, n, body, len, want);
      /* Every secret is tried, whatever matched: no timing difference
       * between the first and the last. */
      ok |= CRYPTO_memcmp(want, header, 44) == 0;
    }
    s += n;
    if (*s == ',')
      s++;
  }
  return ok;
}

int lp_shared_secret_ok(const char *secrets, const char *header) {
  if (!secrets || !header || !*header)
    return 0;
  size_t hlen = strlen(header);
  int ok = 0;
  for (const char *s = secrets; *s;) {
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    /* Lengths are not secret; the bytes are compared in constant time and
     * every secret is tried. */
    if (n > 0 && n == hlen)
      ok |= CRYPTO_memcmp(s, header, n) == 0;
    s += n;
    if (*s == ',')
      s++;
  }
  return ok;
}
