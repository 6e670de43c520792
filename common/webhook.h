/*
 * webhook.h — checks on incoming platform webhooks, as pure functions
 * (OpenSSL, no I/O): Shopify's X-Shopify-Hmac-Sha256 signature, and the
 * shared secret a BigCommerce hook echoes in a custom header.
 */
#ifndef LP_WEBHOOK_H
#define LP_WEBHOOK_H

#include <stddef.h>

/*
 * 1 when header (base64 of HMAC-SHA256 over the raw body) matches the
 * body under one of the comma-separated secrets (several during a
 * rotation), compared in constant time; 0 otherwise (also for a missing
 * or malformed header, or no secret).
 */
int lp_shopify_hmac_ok(const char *secrets, const void *body, size_t len,
                       const char *header);

/* base64 HMAC-SHA256 of body under secret, into out (at least 45 bytes):
 * what a platform sends (the sandbox and the tests sign with it). */
void lp_shopify_hmac(const char *secret, size_t secret_len, const void *body,
                     size_t len, char out[45]);

/* 1 when header equals one of the comma-separated secrets (constant-time
 * compare, every secret tried); 0 otherwise or when either is missing. */
int lp_shared_secret_ok(const char *secrets, const char *header);

#endif
