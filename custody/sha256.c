/* custody/sha256.c: SHA-256 over OpenSSL's libcrypto (EVP).  mbedTLS 2.28,
 * which the rest of custody/ uses for X.509 and signatures, has no SHA
 * extensions code path and hashes at about 220 MB/s here; libcrypto uses the
 * CPU's SHA instructions (x86 SHA-NI, ARMv8 SHA2) when present and runs
 * about five times faster, which is what lets staging copy and hash a
 * bundle in one pass faster than `cp` followed by `sha256sum`.  The header
 * stays free of either library's types. */
#include "custody/sha256.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct cu_sha256 {
	EVP_MD_CTX *ctx;
};

/*
 * With the default provider, SHA-256 update and final cannot fail once the
 * context is initialised: they only fail on programming errors (a NULL or
 * finalised context).  The header's contract has no error path, and a
 * digest we did not compute must never be compared against a manifest, so
 * such a failure stops the process rather than return wrong bytes.
 */
static void must(int ok)
{
	if (ok != 1)
		abort();
}

struct cu_sha256 *cu_sha256_new(void)
{
	struct cu_sha256 *h = malloc(sizeof(*h));

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

void cu_sha256_update(struct cu_sha256 *h, const void *data, size_t len)
{
	must(EVP_DigestUpdate(h->ctx, data, len));
}

void cu_sha256_final(struct cu_sha256 *h, uint8_t out[CU_SHA256_LEN])
{
	unsigned int n = 0;

	must(EVP_DigestFinal_ex(h->ctx, out, &n));
	must(n == CU_SHA256_LEN);
	/* Re-initialising with the same type reuses the fetched method. */
	must(EVP_DigestInit_ex(h->ctx, NULL, NULL));
}

void cu_sha256_free(struct cu_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void cu_sha256(const void *data, size_t len, uint8_t out[CU_SHA256_LEN])
{
	unsigned int n = 0;

	must(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL));
	must(n == CU_SHA256_LEN);
}

void cu_hex(const uint8_t *bytes, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[bytes[i] >> 4];
		hex[2 * i + 1] = digits[bytes[i] & 15];
	}
	hex[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase is not a digest per formats §1 */
}

int cu_digest_parse(const char *hex, uint8_t out[CU_SHA256_LEN])
{
	uint8_t tmp[CU_SHA256_LEN];

	if (strlen(hex) != CU_SHA256_HEX_LEN)
		return -1;
	for (size_t i = 0; i < CU_SHA256_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(out, tmp, sizeof(tmp));
	return 0;
}
