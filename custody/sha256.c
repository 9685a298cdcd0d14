/* custody/sha256.c: SHA-256 over mbedTLS 2.28. */
#include "custody/sha256.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

struct cu_sha256 {
	mbedtls_sha256_context ctx;
};

struct cu_sha256 *cu_sha256_new(void)
{
	struct cu_sha256 *h = malloc(sizeof(*h));

	if (!h)
		return NULL;
	mbedtls_sha256_init(&h->ctx);
	/* With is224 = 0 these cannot fail for a software context. */
	if (mbedtls_sha256_starts_ret(&h->ctx, 0) != 0) {
		free(h);
		return NULL;
	}
	return h;
}

void cu_sha256_update(struct cu_sha256 *h, const void *data, size_t len)
{
	(void)mbedtls_sha256_update_ret(&h->ctx, data, len);
}

void cu_sha256_final(struct cu_sha256 *h, uint8_t out[CU_SHA256_LEN])
{
	(void)mbedtls_sha256_finish_ret(&h->ctx, out);
	(void)mbedtls_sha256_starts_ret(&h->ctx, 0);
}

void cu_sha256_free(struct cu_sha256 *h)
{
	if (!h)
		return;
	mbedtls_sha256_free(&h->ctx);
	free(h);
}

void cu_sha256(const void *data, size_t len, uint8_t out[CU_SHA256_LEN])
{
	(void)mbedtls_sha256_ret(data, len, out, 0);
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
