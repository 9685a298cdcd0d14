/* custody/pin.c: PBKDF2-HMAC-SHA256 PIN records over mbedTLS. */
#include "custody/pin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>

#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/base/error.h"

static int derive(const char *pin, const uint8_t *salt, size_t slen,
		  unsigned iterations, uint8_t out[32])
{
	mbedtls_md_context_t md;
	int rc;

	mbedtls_md_init(&md);
	rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
			      1);
	if (rc == 0)
		rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)pin,
					       strlen(pin), salt, slen,
					       iterations, 32, out);
	mbedtls_md_free(&md);
	return rc;
}

int cu_pin_check(const char *spec, const char *pin, struct stn_diag *d)
{
	uint8_t salt[64], want[32], got[32];
	unsigned long iterations;
	const char *p = spec, *salt_hex, *hash_hex;
	char *end;
	size_t slen;
	unsigned diff = 0;

	if (strncmp(p, "pbkdf2-sha256$", 14) != 0)
		return stn_fail(d, STN_E_CONFIG, "pin", "unknown PIN scheme");
	iterations = strtoul(p + 14, &end, 10);
	if (*end != '$' || iterations < CU_PIN_ITERATIONS_MIN ||
	    iterations > CU_PIN_ITERATIONS_MAX)
		return stn_fail(d, STN_E_CONFIG, "pin", "bad iteration count");
	salt_hex = end + 1;
	hash_hex = strchr(salt_hex, '$');
	if (!hash_hex)
		return stn_fail(d, STN_E_CONFIG, "pin", "no hash");
	slen = (size_t)(hash_hex - salt_hex) / 2;
	hash_hex++;
	if (slen < 8 || slen > sizeof(salt) || strlen(hash_hex) != 64 ||
	    cu_hex_parse(salt_hex, slen, salt) ||
	    cu_hex_parse(hash_hex, 32, want))
		return stn_fail(d, STN_E_CONFIG, "pin", "malformed PIN record");
	if (derive(pin, salt, slen, (unsigned)iterations, got) != 0)
		return stn_fail(d, STN_E_INTERNAL, "pin", "PBKDF2 failed");
	for (size_t i = 0; i < sizeof(got); i++)
		diff |= got[i] ^ want[i]; /* constant time: no early exit */
	mbedtls_platform_zeroize(got, sizeof(got));
	if (diff)
		return stn_fail(d, STN_E_TECHNICIAN, "pin", "wrong PIN");
	return 0;
}

int cu_pin_acceptable(const char *pin, struct stn_diag *d)
{
	size_t n = strlen(pin);

	if (n == 0)
		return stn_fail(d, STN_E_USAGE, NULL, "no PIN given (empty)");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pin[i];

		if (c < 0x20 || c == 0x7f)
			return stn_fail(d, STN_E_USAGE, NULL,
					"the PIN holds a control character "
					"(character %zu)",
					i + 1);
		if (c == ' ')
			return stn_fail(d, STN_E_USAGE, NULL,
					"the PIN holds a space, which the "
					"sign-in screen cannot take");
		if (c > 0x7f)
			return stn_fail(d, STN_E_USAGE, NULL,
					"the PIN holds a character outside "
					"ASCII, which the sign-in screen "
					"cannot take");
	}
	if (n < CU_PIN_MIN_LEN)
		return stn_fail(d, STN_E_USAGE, NULL,
				"the PIN is too short: %zu characters, at "
				"least %d",
				n, CU_PIN_MIN_LEN);
	if (n > CU_PIN_MAX_LEN)
		return stn_fail(d, STN_E_USAGE, NULL,
				"the PIN is too long: %zu characters, at "
				"most %d",
				n, CU_PIN_MAX_LEN);
	return 0;
}

int cu_pin_make(const char *pin, unsigned iterations,
		char out[CU_PIN_SPEC_MAX], struct stn_diag *d)
{
	uint8_t salt[16], hash[32];
	char sh[33], hh[65];
	int rc, n;

	rc = cu_pin_acceptable(pin, d);
	if (rc)
		return rc;
	/* A record the verifier would refuse is no record at all. */
	if (iterations < CU_PIN_ITERATIONS_MIN ||
	    iterations > CU_PIN_ITERATIONS_MAX)
		return stn_fail(d, STN_E_USAGE, "pin",
				"iteration count %u outside %d..%d", iterations,
				CU_PIN_ITERATIONS_MIN, CU_PIN_ITERATIONS_MAX);
	if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt))
		return stn_fail(d, STN_E_IO, "getrandom", "%s",
				strerror(errno));
	if (derive(pin, salt, sizeof(salt), iterations, hash) != 0) {
		mbedtls_platform_zeroize(hash, sizeof(hash));
		return stn_fail(d, STN_E_INTERNAL, "pin", "PBKDF2 failed");
	}
	cu_hex(salt, sizeof(salt), sh);
	cu_hex(hash, sizeof(hash), hh);
	mbedtls_platform_zeroize(hash, sizeof(hash));
	n = snprintf(out, CU_PIN_SPEC_MAX, "pbkdf2-sha256$%u$%s$%s", iterations,
		     sh, hh);
	mbedtls_platform_zeroize(hh, sizeof(hh));
	if (n < 0 || n >= CU_PIN_SPEC_MAX)
		return stn_fail(d, STN_E_INTERNAL, "pin", "PIN record too long");
	return 0;
}
