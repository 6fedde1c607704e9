/* AES-256-GCM (FIPS 197, NIST SP 800-38D) for secrets kept at rest, such as
 * account credentials in the database. */
#ifndef S2A_AEAD_H
#define S2A_AEAD_H

#include <apr_pools.h>

#define S2A_AEAD_KEY_LEN 32
#define S2A_AEAD_NONCE_LEN 12
#define S2A_AEAD_TAG_LEN 16

/* Encrypts plain[0..len) with a 96-bit nonce; out receives len bytes of ciphertext followed by
   the 16-byte tag (out must hold len + 16). aad may be NULL with aad_len 0. */
void s2a_aead_seal(const unsigned char key[S2A_AEAD_KEY_LEN],
                   const unsigned char nonce[S2A_AEAD_NONCE_LEN], const unsigned char *aad,
                   apr_size_t aad_len, const unsigned char *plain, apr_size_t len,
                   unsigned char *out);

/* Verifies and decrypts in[0..len) (ciphertext + tag, len >= 16) into out (len - 16 bytes).
   Returns 0 on success, -1 if the tag does not match (out is then zeroed). Tag check is
   constant time. */
int s2a_aead_open(const unsigned char key[S2A_AEAD_KEY_LEN],
                  const unsigned char nonce[S2A_AEAD_NONCE_LEN], const unsigned char *aad,
                  apr_size_t aad_len, const unsigned char *in, apr_size_t len, unsigned char *out);

/* Text form for storing a secret in a database column:
   "s2a-gcm1:" + base64(nonce || ciphertext || tag), nonce random (apr_generate_random_bytes).
   The aad binds the value to its use (the caller passes e.g. "account-credential").
   NULL if the system random source fails or plain exceeds what base64 in int can hold. */
char *s2a_aead_seal_text(apr_pool_t *p, const unsigned char key[S2A_AEAD_KEY_LEN], const char *aad,
                         const char *plain);

/* Inverse; NULL if the text is not of that form, or the tag fails. */
char *s2a_aead_open_text(apr_pool_t *p, const unsigned char key[S2A_AEAD_KEY_LEN], const char *aad,
                         const char *text);

/* 1 if text starts with "s2a-gcm1:" */
int s2a_aead_is_sealed(const char *text);

#endif
