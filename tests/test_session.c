/* tests/test_session.c: what a session holds for device identity (formats
 * §8, §9): a trust store per device class that learns device CAs' CRLs as
 * the release store does, attestations judged only against a class's own
 * anchors, the station key for authorizations, and fresh nonces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>

#include "custody/delivery.h"
#include "custody/devid.h"
#include "custody/sig.h"
#include "station/config.h"
#include "station/session.h"
#include "station/base/error.h"
#include "tests/helpers.h"

static char *dir;
static int nconf;

static int setup(void **state)
{
	(void)state;
	dir = th_tempdir();
	return th_make_pki(dir);
}

static int teardown(void **state)
{
	(void)state;
	th_rmrf(dir);
	free(dir);
	return 0;
}

/* A session over a fresh data directory (or `data`, to share one between
 * sessions); `classes` is appended to the configuration; with_key says
 * whether [station] names the station key. */
static struct stn_session *open_with(const char *classes, int with_key,
				     const char *data)
{
	char conf[4200], own[4200];
	struct stn_session *s = NULL;
	struct stn_diag d;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/station-%d.conf", dir, ++nconf);
	snprintf(own, sizeof(own), "%s/data-%d", dir, nconf);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "[station]\nid = STN-0042\nsite = plant-7\ndata = %s\n",
		data ? data : own);
	if (with_key)
		fprintf(f, "key = pki/station.key\ncert = pki/station.pem\n");
	fprintf(f, "[trust]\nanchors = pki/roots.pem\nrequire-custody = no\n"
		   "%s", classes);
	fclose(f);
	stn_diag_init(&d);
	if (stn_session_open(conf, NULL, "test", STN_SESSION_QUIET, &s, &d))
		fail_msg("open: %s: %s", d.where, d.text);
	return s;
}

static const char tx200[] = "[class tx200]\nmodel = TX-200\n"
			    "device-anchors = pki/mfg-anchors.pem\n"
			    "attestation = required\n"
			    "[class legacy]\nmodel = TX-100\n";

static size_t count_kept(const char *data)
{
	char path[4300];
	struct dirent *e;
	size_t n = 0;
	DIR *dh;

	snprintf(path, sizeof(path), "%s/crl", data);
	dh = opendir(path);
	if (!dh)
		return 0;
	while ((e = readdir(dh)))
		n += e->d_name[0] != '.';
	closedir(dh);
	return n;
}

/* A device CA's CRL on the media verifies against no release anchor, but
 * against the class's device anchors: it is taken and kept (formats §9
 * "Edges": device-CA CRLs come from the same places as every CRL). */
static void session_takes_a_device_ca_crl_into_the_class_store(void **state)
{
	char crl[4200], issuer[4200], data[4200];
	struct stn_session *s;
	struct stn_diag d;
	int replaced = -1;

	(void)state;
	snprintf(crl, sizeof(crl), "%s/pki/mfg-crl/mfg-ca.crl.pem", dir);
	snprintf(issuer, sizeof(issuer), "%s/pki/mfg-ca.pem", dir);
	snprintf(data, sizeof(data), "%s/data-shared", dir);
	s = open_with(tx200, 0, data);
	stn_diag_init(&d);
	if (stn_session_offer_crl(s, crl, issuer, &replaced, &d))
		fail_msg("offer: %s: %s", d.where, d.text);
	assert_int_equal(replaced, 1);
	assert_int_equal(count_kept(data), 1);
	/* offered again: the store has it, nothing replaced */
	stn_diag_init(&d);
	assert_int_equal(stn_session_offer_crl(s, crl, issuer, &replaced, &d),
			 0);
	assert_int_equal(replaced, 0);
	stn_session_close(s, 0);
	/* the next session loads it into the class store at the start */
	s = open_with(tx200, 0, data);
	stn_diag_init(&d);
	assert_int_equal(stn_session_offer_crl(s, crl, issuer, &replaced, &d),
			 0);
	assert_int_equal(replaced, 0);
	stn_session_close(s, 0);
}

/* Without a class whose anchors verify it, the CRL is refused as before:
 * the main store's reason. */
static void session_refuses_a_crl_no_store_can_verify(void **state)
{
	char crl[4200], issuer[4200];
	struct stn_session *s = open_with("[class legacy]\nmodel = TX-100\n",
					  0, NULL);
	struct stn_diag d;
	int replaced = -1;

	(void)state;
	snprintf(crl, sizeof(crl), "%s/pki/mfg-crl/mfg-ca.crl.pem", dir);
	snprintf(issuer, sizeof(issuer), "%s/pki/mfg-ca.pem", dir);
	stn_diag_init(&d);
	assert_int_equal(stn_session_offer_crl(s, crl, issuer, &replaced, &d),
			 STN_E_CHAIN);
	assert_non_null(strstr(d.where, "mfg-ca.crl.pem"));
	assert_int_equal(replaced, -1);
	stn_session_close(s, 0);
}

/* A class without device anchors cannot check any device certificate:
 * every attestation is refused, naming the class. */
static void session_refuses_attestation_for_a_class_without_anchors(
	void **state)
{
	struct stn_session *s = open_with(tx200, 0, NULL);
	const struct stn_config *cfg = stn_session_config(s);
	uint8_t nonce[CU_NONCE_LEN] = {0};
	const char rec[] = "format = station-attest-1\n";
	struct cu_devmsg msg = {rec, sizeof(rec) - 1, NULL, 0, NULL, NULL, 0};
	struct cu_attestation att;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(stn_session_attest_verify(
				 s, stn_config_class(cfg, "TX-100"), &msg,
				 nonce, "dev", &att, &d),
			 STN_E_ATTESTATION);
	assert_string_equal(d.where, "dev");
	assert_non_null(strstr(d.text, "class legacy names no device anchors"));
	stn_diag_init(&d);
	assert_int_equal(stn_session_attest_verify(
				 s, stn_config_class(cfg, "TX-999"), &msg,
				 nonce, "dev", &att, &d),
			 STN_E_ATTESTATION);
	assert_non_null(strstr(d.text, "class default names no device "
					"anchors"));
	/* the class with anchors judges the message (an unsigned one) */
	stn_diag_init(&d);
	assert_int_equal(stn_session_attest_verify(
				 s, stn_config_class(cfg, "TX-200"), &msg,
				 nonce, "dev", &att, &d),
			 STN_E_ATTESTATION);
	assert_null(strstr(d.text, "names no device anchors"));
	stn_session_close(s, 0);
}

/* The station key signs authorizations; a station without one cannot. */
static void session_signs_authorizations_only_with_a_station_key(
	void **state)
{
	struct cu_image img = {.label = "app", .file = "tx200-app.bin",
			       .size = 4096};
	struct cu_authz a = {
		.station = "STN-0042", .site = "plant-7", .technician = "ana",
		.device = "SN-0001",
		.challenge_hex = "00112233445566778899aabbccddeeff"
				 "00112233445566778899aabbccddeeff",
		.bundle_hex = "9f86d081884c7d659a2feaa0c55ad015"
			      "a3bf4f1b2b0b822cd15d6c15b0f00a08",
		.sequence = 42, .issued = 1795000000, .images = &img,
		.nimages = 1};
	char rec[CU_AUTHZ_MAX];
	uint8_t sig[CU_SIG_MAX];
	const uint8_t *chain[CU_DEVID_CERTS_MAX];
	size_t chain_len[CU_DEVID_CERTS_MAX], rec_len = 0, sig_len = 0, n = 0;
	struct stn_session *s = open_with("", 0, NULL);
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(stn_session_authz_make(s, &a, rec, sizeof(rec),
						&rec_len, sig, sizeof(sig),
						&sig_len, chain, chain_len,
						CU_DEVID_CERTS_MAX, &n, &d),
			 STN_E_CONFIG);
	assert_non_null(strstr(d.text, "the station has no key"));
	stn_session_close(s, 0);

	s = open_with("", 1, NULL);
	stn_diag_init(&d);
	if (stn_session_authz_make(s, &a, rec, sizeof(rec), &rec_len, sig,
				   sizeof(sig), &sig_len, chain, chain_len,
				   CU_DEVID_CERTS_MAX, &n, &d))
		fail_msg("authz: %s: %s", d.where, d.text);
	assert_true(rec_len > 0 && sig_len > 0 && n >= 1);
	assert_non_null(strstr(rec, "device = SN-0001"));
	stn_session_close(s, 0);
}

/* Opens a session whose [station] adds `extra`; returns the code. */
static int open_extra(const char *extra, struct stn_session **out,
		      struct stn_diag *d)
{
	char conf[4200];
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/station-%d.conf", dir, ++nconf);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "[station]\nid = STN-0042\nsite = plant-7\n"
		   "data = data-%d\n%s"
		   "[trust]\nanchors = pki/roots.pem\nrequire-custody = no\n",
		nconf, extra);
	fclose(f);
	stn_diag_init(d);
	*out = NULL;
	return stn_session_open(conf, NULL, "test", STN_SESSION_QUIET, out, d);
}

/* A staged bundle directory with keys/ holding the content key of image
 * `app` wrapped for each certificate given (formats §10). */
static void make_keys(const char *bundle, const uint8_t key[32],
		      const char *const *certs, size_t n)
{
	char path[4400], rec[CU_KEYFILE_MAX];
	struct stn_diag d;

	assert_int_equal(mkdir(bundle, 0700), 0);
	snprintf(path, sizeof(path), "%s/keys", bundle);
	assert_int_equal(mkdir(path, 0700), 0);
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		stn_diag_init(&d);
		snprintf(path, sizeof(path), "%s/pki/%s.pem", dir, certs[i]);
		if (cu_delivery_wrap(path, NULL, 0, "app", key, rec,
				     sizeof(rec), &len, NULL, &d))
			fail_msg("wrap: %s: %s", d.where, d.text);
		rec[len] = 0;
		snprintf(path, sizeof(path), "%s/keys/app.%s.key", bundle,
			 certs[i]);
		th_write_str(path, rec);
	}
}

/* The delivery key is loaded at the start and unwraps the content key
 * wrapped for this station, whatever else keys/ holds. */
static void session_unwraps_the_content_key_for_its_delivery_key(
	void **state)
{
	static const char *const both[] = {"delivery2", "delivery"};
	struct cu_image img = {.label = "app", .file = "app.bin.enc",
			       .size = 10, .encrypted = 1};
	uint8_t key[32], got[32];
	char bundle[4200];
	struct stn_session *s;
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	snprintf(bundle, sizeof(bundle), "%s/enc-ok", dir);
	make_keys(bundle, key, both, 2);
	if (open_extra("delivery-key = pki/delivery.key\n"
		       "delivery-cert = pki/delivery.pem\n", &s, &d))
		fail_msg("open: %s: %s", d.where, d.text);
	assert_non_null(stn_session_delivery_recipient(s));
	memset(got, 0, sizeof(got));
	if (stn_session_content_key(s, bundle, "/media/b", &img, got, &d))
		fail_msg("content key: %s: %s", d.where, d.text);
	assert_memory_equal(got, key, sizeof(key));
	stn_session_close(s, 0);
}

/* Without a delivery key, or for another station's, an encrypted image
 * is refused as check 3 (rule images), naming its recipients. */
static void session_refuses_images_encrypted_for_another_station(
	void **state)
{
	static const char *const other[] = {"delivery2"};
	struct cu_image img = {.label = "app", .file = "app.bin.enc",
			       .size = 10, .encrypted = 1};
	uint8_t key[32] = {1}, got[32];
	char bundle[4200];
	struct stn_session *s;
	struct stn_diag d;
	int rc;

	(void)state;
	snprintf(bundle, sizeof(bundle), "%s/enc-other", dir);
	make_keys(bundle, key, other, 1);
	if (open_extra("", &s, &d))
		fail_msg("open: %s: %s", d.where, d.text);
	assert_null(stn_session_delivery_recipient(s));
	rc = stn_session_content_key(s, bundle, "/media/b", &img, got, &d);
	assert_int_equal(rc, STN_E_IMAGE);
	assert_string_equal(stn_err_rule(rc), "images");
	assert_non_null(strstr(d.text, "image app is encrypted for"));
	assert_non_null(strstr(d.text, "no delivery key"));
	assert_non_null(strstr(d.where, "/media/b/keys"));
	stn_session_close(s, 0);

	if (open_extra("delivery-key = pki/delivery.key\n"
		       "delivery-cert = pki/delivery.pem\n", &s, &d))
		fail_msg("open: %s: %s", d.where, d.text);
	rc = stn_session_content_key(s, bundle, "/media/b", &img, got, &d);
	assert_int_equal(rc, STN_E_IMAGE);
	assert_non_null(strstr(d.text, "this station's delivery certificate"));
	stn_session_close(s, 0);
}

/* A delivery key that is not its certificate's, or a certificate without
 * the delivery role, stops the start (formats §8). */
static void session_start_refuses_an_unusable_delivery_key(void **state)
{
	static const struct {
		const char *conf, *where, *reason;
	} bad[] = {
		{"delivery-key = pki/delivery2.key\n"
		 "delivery-cert = pki/delivery.pem\n",
		 "delivery2.key", "does not match"},
		{"delivery-key = pki/station.key\n"
		 "delivery-cert = pki/station.pem\n",
		 "station.pem", "delivery certificate refused"},
		{"delivery-key = pki/delivery-tworole.key\n"
		 "delivery-cert = pki/delivery-tworole.pem\n",
		 "delivery-tworole.pem", "delivery certificate refused"},
	};
	struct stn_session *s;
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = open_extra(bad[i].conf, &s, &d);
		if (rc != STN_E_CONFIG || !strstr(d.where, bad[i].where) ||
		    !strstr(d.text, bad[i].reason))
			fail_msg("%zu: rc %d where '%s' text '%s'", i, rc,
				 d.where, d.text);
		assert_null(s);
	}
}

static void session_random_fills_every_byte(void **state)
{
	uint8_t a[1000], b[1000];
	struct stn_diag d;

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	stn_diag_init(&d);
	assert_int_equal(stn_session_random(a, sizeof(a), &d), 0);
	assert_int_equal(stn_session_random(b, sizeof(b), &d), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	/* the last 32 bytes are filled too, not left as they were */
	static const uint8_t zero[32];
	assert_memory_not_equal(a + sizeof(a) - 32, zero, 32);
	assert_int_equal(stn_session_random(a, 0, &d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			session_takes_a_device_ca_crl_into_the_class_store),
		cmocka_unit_test(session_refuses_a_crl_no_store_can_verify),
		cmocka_unit_test(
			session_refuses_attestation_for_a_class_without_anchors),
		cmocka_unit_test(
			session_signs_authorizations_only_with_a_station_key),
		cmocka_unit_test(session_random_fills_every_byte),
		cmocka_unit_test(
			session_unwraps_the_content_key_for_its_delivery_key),
		cmocka_unit_test(
			session_refuses_images_encrypted_for_another_station),
		cmocka_unit_test(
			session_start_refuses_an_unusable_delivery_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
