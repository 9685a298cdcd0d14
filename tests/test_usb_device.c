/* tests/test_usb_device.c: a direct driver of station/device.h against a
 * real USB DFU device with a device key (formats §9; docs/usb.md "Identity
 * over DFU"): attest, authorize, write, receipt, through libusb and a
 * kernel USB stack.  tests/usb/guest.sh runs it inside the qemu guest
 * against sim-dfu; anywhere else (no STATION_TEST_USB_DEVICE) it skips.
 * The authorization is signed here with libcrypto from the test PKI's
 * station key, so the device's judgement (sim_identity.c) and this
 * driver share no station code but devmsg's line format.
 *
 * Environment: STATION_TEST_USB_DEVICE (SPEC), _KEY and _CHAIN (the
 * station key and its PEM chain), _IMAGE (file for slot 0), _EXPECT
 * ("ok" or "refused": the device refuses the authorization). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "station/base/error.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/config.h"
#include "station/device.h"
#include "transport/devmsg.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The value of `key = ` in a record (into out), or fail the test. */
static void field(const char *record, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\n%s = ", key);
	p = strstr(record, pat);
	if (!p)
		fail_msg("record has no %s: %s", key, record);
	p += strlen(pat);
	e = strchr(p, '\n');
	assert_non_null(e);
	assert_true((size_t)(e - p) < cap);
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
}

static void iso(time_t t, char *out, size_t cap)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Sign record with the station key; certificates from the chain PEM. */
static void sign_authz(struct tp_signed_msg *m, const char *key_path,
		       const char *chain_path)
{
	FILE *f = fopen(key_path, "r");
	EVP_PKEY *k;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	X509 *x;
	size_t siglen = sizeof(m->sig);

	assert_non_null(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k),
			 1);
	assert_int_equal(EVP_DigestSign(md, m->sig, &siglen,
					(const unsigned char *)m->record,
					m->record_len),
			 1);
	m->sig_len = siglen;
	m->has_sig = 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	f = fopen(chain_path, "r");
	assert_non_null(f);
	while (m->ncerts < TP_MSG_CERTS_MAX &&
	       (x = PEM_read_X509(f, NULL, NULL, NULL))) {
		unsigned char *p = m->cert[m->ncerts];
		int n = i2d_X509(x, NULL);

		assert_true(n > 0 && n <= TP_MSG_CERT_MAX);
		m->cert_len[m->ncerts++] = (size_t)i2d_X509(x, &p);
		X509_free(x);
	}
	fclose(f);
	assert_true(m->ncerts > 0);
}

static void a_keyed_dfu_device_attests_is_authorized_and_signs_receipts(
	void **state)
{
	static struct stn_config cfg; /* [usb] defaults */
	const char *spec = env("STATION_TEST_USB_DEVICE");
	const char *expect = env("STATION_TEST_USB_EXPECT");
	const char *image = env("STATION_TEST_USB_IMAGE");
	struct tp_signed_msg *att = malloc(sizeof(*att)),
			     *authz = malloc(sizeof(*authz)),
			     *rcpt = malloc(sizeof(*rcpt));
	struct stn_write_result res;
	struct stn_device *dev = NULL;
	struct cu_identity id;
	struct cu_image img;
	struct stn_diag d;
	uint8_t nonce[32];
	char nonce_hex[65], challenge[80], got[80], want[65], t0[32], t1[32];
	int rc;

	(void)state;
	if (!spec || !image || !env("STATION_TEST_USB_KEY") ||
	    !env("STATION_TEST_USB_CHAIN")) {
		free(att), free(authz), free(rcpt);
		skip(); /* no device here: the qemu guest runs this */
	}
	assert_true(att && authz && rcpt);
	stn_diag_init(&d);
	if (stn_device_open(&cfg, spec, &dev, &d) ||
	    stn_device_identify(dev, &id, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_true(stn_device_can_attest(dev));

	/* attest to a fresh nonce */
	assert_int_equal(RAND_bytes(nonce, sizeof(nonce)), 1);
	cu_hex(nonce, sizeof(nonce), nonce_hex);
	if (stn_device_attest(dev, nonce, att, &d))
		fail_msg("attest: %s: %s", d.where, d.text);
	field(att->record, "nonce", got, sizeof(got));
	assert_string_equal(got, nonce_hex);
	field(att->record, "serial", got, sizeof(got));
	assert_string_equal(got, id.serial);
	field(att->record, "challenge", challenge, sizeof(challenge));
	assert_true(att->ncerts >= 1);
	printf("attested: serial %s challenge %s, %zu certificates\n", got,
	       challenge, att->ncerts);

	/* the image and its authorization */
	memset(&img, 0, sizeof(img));
	snprintf(img.label, sizeof(img.label), "app");
	snprintf(img.file, sizeof(img.file), "app.bin");
	{
		FILE *f = fopen(image, "rb");
		uint8_t *buf;
		long n;

		assert_non_null(f);
		assert_int_equal(fseek(f, 0, SEEK_END), 0);
		n = ftell(f);
		rewind(f);
		buf = malloc((size_t)n);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
		fclose(f);
		img.size = (uint64_t)n;
		assert_int_equal(cu_sha256(buf, (size_t)n, img.sha256), 0);
		free(buf);
	}
	cu_hex(img.sha256, sizeof(img.sha256), want);
	iso(time(NULL) - 5, t0, sizeof(t0));
	iso(time(NULL) + 595, t1, sizeof(t1));
	tp_msg_init(authz);
	authz->record_len = (size_t)snprintf(
		authz->record, sizeof(authz->record),
		"format = station-install-1\nstation = STN-0042\n"
		"site = plant-7\ntechnician = ana\ndevice = %s\n"
		"challenge = %s\nbundle = %s\nsequence = 42\nissued = %s\n"
		"expires = %s\n[image app]\nslot = 0\nsize = %llu\n"
		"sha256 = %s\n",
		id.serial, challenge, want, t0, t1,
		(unsigned long long)img.size, want);
	authz->nlines = 14;
	sign_authz(authz, env("STATION_TEST_USB_KEY"),
		   env("STATION_TEST_USB_CHAIN"));
	rc = stn_device_authorize(dev, authz, &d);
	if (expect && !strcmp(expect, "refused")) {
		/* The device refuses: exit-1 class, its words kept; and it
		 * then refuses the image's first block. */
		assert_int_equal(rc, STN_E_AUTHORIZATION);
		assert_non_null(strstr(d.text, "refused the authorization"));
		printf("refused as expected: %s\n", d.text);
		memset(&res, 0, sizeof(res));
		stn_diag_init(&d);
		rc = stn_device_write(dev, &img, image, "app.bin", NULL, &res,
				      &d);
		assert_int_equal(rc, STN_E_DEVICE);
		assert_non_null(strstr(d.text, "block 0"));
		assert_non_null(strstr(d.text, "errWRITE"));
		printf("write refused as expected: %s\n", d.text);
		goto out;
	}
	if (rc)
		fail_msg("authorize: %s: %s", d.where, d.text);

	/* write, read back, and the receipt */
	memset(&res, 0, sizeof(res));
	res.receipt = rcpt;
	if (stn_device_write(dev, &img, image, "app.bin", NULL, &res, &d))
		fail_msg("write: %s: %s", d.where, d.text);
	assert_true(res.has_receipt);
	assert_int_equal(res.proof, STN_PROOF_READBACK);
	assert_true(tp_msg_complete(rcpt));
	field(rcpt->record, "sha256", got, sizeof(got));
	assert_string_equal(got, want);
	field(rcpt->record, "challenge", got, sizeof(got));
	assert_string_equal(got, challenge);
	field(rcpt->record, "nonce", got, sizeof(got));
	assert_string_equal(got, nonce_hex);
	printf("receipt: slot 0 sha256 %s, signed (%zu bytes)\n", want,
	       rcpt->sig_len);
out:
	stn_device_close(dev);
	free(att), free(authz), free(rcpt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			a_keyed_dfu_device_attests_is_authorized_and_signs_receipts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
