/* station/base/sha256.c: SHA-256 over OpenSSL's libcrypto (EVP).  mbedTLS 2.28,
 * which the rest of custody/ uses for X.509 and signatures, has no SHA
 * extensions code path and hashes at about 220 MB/s here; libcrypto uses the
 * CPU's SHA instructions (x86 SHA-NI, ARMv8 SHA2) when present and runs
 * about five times faster, which is what lets staging copy and hash a
 * bundle in one pass faster than `cp` followed by `sha256sum`.  The header
 * stays free of either library's types. */
#include "station/base/sha256.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "station/base/error.h"
#include "station/base/hex.h"

struct cu_sha256 {
	EVP_MD_CTX *ctx;
	int failed; /* an update or a reset failed: the context is spent */
};

/*
 * With the default provider, SHA-256 update and final fail only on
 * programming errors or when a provider cannot allocate; either way the
 * digest was not computed, so the caller gets STN_E_INTERNAL and decides
 * (a check that cannot hash refuses, it never compares a guess).
 */
struct cu_sha256 *cu_sha256_new(void)
{
	struct cu_sha256 *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	return h;
}

int cu_sha256_update(struct cu_sha256 *h, const void *data, size_t len)
{
	if (h->failed || EVP_DigestUpdate(h->ctx, data, len) != 1) {
		h->failed = 1;
		return STN_E_INTERNAL;
	}
	return 0;
}

int cu_sha256_final(struct cu_sha256 *h, uint8_t out[CU_SHA256_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (h->failed || EVP_DigestFinal_ex(h->ctx, md, &n) != 1 ||
	    n != CU_SHA256_LEN) {
		h->failed = 1;
		return STN_E_INTERNAL;
	}
	/* Re-initialising with the same type reuses the fetched method. */
	if (EVP_DigestInit_ex(h->ctx, NULL, NULL) != 1)
		h->failed = 1;
	memcpy(out, md, CU_SHA256_LEN);
	return 0;
}

void cu_sha256_free(struct cu_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int cu_sha256(const void *data, size_t len, uint8_t out[CU_SHA256_LEN])
{
	struct cu_sha256 *h = cu_sha256_new();
	int rc;

	if (!h)
		return STN_E_NOMEM;
	rc = cu_sha256_update(h, data, len);
	if (rc == 0)
		rc = cu_sha256_final(h, out);
	cu_sha256_free(h);
	return rc;
}

int cu_digest_parse(const char *hex, uint8_t out[CU_SHA256_LEN])
{
	if (strlen(hex) != CU_SHA256_HEX_LEN)
		return -1;
	return cu_hex_parse(hex, CU_SHA256_LEN, out);
}
