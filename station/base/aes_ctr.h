/* station/base/aes_ctr.h: AES-256-CTR (formats §10), streaming, over
 * libcrypto (AES-NI): the one cipher that turns an encrypted image into
 * the plaintext the station hashes and sends, and that release
 * engineering encrypts with.  The 16-byte IV is the initial counter block,
 * incremented as a 128-bit big-endian number, as `openssl enc
 * -aes-256-ctr -K KEY -iv IV` does.  The context holds the key schedule
 * and is wiped when freed. */
#ifndef STN_AES_CTR_H
#define STN_AES_CTR_H

#include <stddef.h>
#include <stdint.h>

struct cu_ctr;

/* NULL when out of memory or libcrypto refuses. */
struct cu_ctr *cu_ctr_new(const uint8_t key[32], const uint8_t iv[16]);
/* out = in XOR keystream, continuing where the last call stopped; in and
 * out may be the same buffer.  Returns 0, or STN_E_INTERNAL. */
__attribute__((warn_unused_result)) int
cu_ctr_apply(struct cu_ctr *c, const uint8_t *in, uint8_t *out, size_t len);
void cu_ctr_free(struct cu_ctr *c); /* wipes; NULL is fine */

#endif
