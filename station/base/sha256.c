/* station/base/sha256.c: SHA-256 over OpenSSL's libcrypto (EVP).  mbedTLS 2.28,
 * which the rest of custody/ uses for X.509 and signatures, has no SHA
 * extensions code path and hashes at about 220 MB/s here; libcrypto uses the
 * CPU's SHA instructions (x86 SHA-NI, ARMv8 SHA2) when present and runs
 * about five times faster, which is what lets staging copy and hash a
 * bundle in one pass faster than `cp` followed by `sha256sum`.  The header
 * stays free of either library's types. */
#include "station/base/sha256.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "station/base/error.h"
#include "station/base/fileio.h"
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

int cu_sha256_fd(int fd, uint64_t max, const char *shown,
		 uint8_t out[CU_SHA256_LEN], uint64_t *len, struct stn_diag *d)
{
	enum { CHUNK = 1 << 16 };
	struct cu_sha256 *h = cu_sha256_new();
	uint8_t *buf = malloc(CHUNK);
	uint64_t total = 0;
	int rc = 0;

	if (!h || !buf) {
		rc = stn_fail(d, STN_E_NOMEM, shown, "hashing");
		goto out;
	}
	while (total <= max) {
		uint64_t want = max - total + 1;
		ssize_t n = stn_read_retry(fd, buf,
					   want < CHUNK ? (size_t)want : CHUNK);
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, shown, "read: %s",
				      strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = cu_sha256_update(h, buf, (size_t)n)))
			break;
		total += (uint64_t)n;
	}
	if (rc == 0)
		rc = cu_sha256_final(h, out);
	if (rc) {
		rc = stn_fail(d, rc, shown, "hashing: %s", stn_strerror(rc));
		goto out;
	}
	if (len)
		*len = total;
out:
	cu_sha256_free(h);
	free(buf);
	return rc;
}
