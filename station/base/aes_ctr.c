/* station/base/aes_ctr.c: AES-256-CTR over libcrypto's EVP (formats §10).
 * EVP's CTR mode keeps the partial keystream block between calls and
 * carries the counter across all 128 bits (NIST SP 800-38A §B.1 with
 * m = 128), which is what `openssl enc -aes-256-ctr` does, so any chunking
 * of the input gives the same bytes. */
#include "station/base/aes_ctr.h"

#include <limits.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "station/base/error.h"

struct cu_ctr {
	EVP_CIPHER_CTX *ctx;
};

struct cu_ctr *cu_ctr_new(const uint8_t key[32], const uint8_t iv[16])
{
	struct cu_ctr *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ctx = EVP_CIPHER_CTX_new();
	if (!c->ctx ||
	    EVP_EncryptInit_ex(c->ctx, EVP_aes_256_ctr(), NULL, key, iv) != 1) {
		cu_ctr_free(c);
		return NULL;
	}
	return c;
}

int cu_ctr_apply(struct cu_ctr *c, const uint8_t *in, uint8_t *out, size_t len)
{
	/* EVP takes int lengths: feed at most 1 GiB at a time. */
	while (len > 0) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len, outl = 0;

		if (EVP_EncryptUpdate(c->ctx, out, &outl, in, n) != 1 ||
		    outl != n)
			return STN_E_INTERNAL;
		in += n;
		out += n;
		len -= (size_t)n;
	}
	return 0;
}

void cu_ctr_free(struct cu_ctr *c)
{
	if (!c)
		return;
	/* EVP_CIPHER_CTX_free cleanses the key schedule before freeing it. */
	EVP_CIPHER_CTX_free(c->ctx);
	free(c);
}
