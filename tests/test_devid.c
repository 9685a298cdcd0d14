/* tests/test_devid.c: the station's judge of device identity (formats §9,
 * custody/devid.h) against the device PKI of tests/pki.sh.  Both directions
 * are plain OpenSSL: attestations and receipts are signed here with
 * `openssl dgst -sha256 -sign` and certificates converted with `openssl
 * x509 -outform DER`, and the station's authorization is checked with
 * `openssl dgst -sha256 -verify`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "custody/devid.h"
#include "custody/sign.h"
#include "custody/trust.h"
#include "transport/devmsg.h"
#include "station/base/error.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "station/base/sha256.h"

#define YEAR (365 * 24 * 3600)
#define WHERE "serial:/dev/ttyUSB0"

static struct {
	char dir[64];
	char pki[96];
	struct cu_trust *mfg; /* mfg-anchors.pem + mfg-crl/ */
	int64_t now;
	uint8_t nonce[CU_NONCE_LEN];
	char nonce_hex[2 * CU_NONCE_LEN + 1];
	char challenge_hex[2 * CU_NONCE_LEN + 1];
} fx;

/* A signed message as a device sends it, with the storage behind the
 * borrowed pointers of struct cu_devmsg. */
struct msg {
	char rec[4096];
	size_t rec_len;
	uint8_t sig[1024];
	size_t sig_len;
	uint8_t cert[2][CU_DEVID_CERT_MAX];
	size_t cert_len[2];
	const uint8_t *certp[2];
	struct cu_devmsg m;
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st == -1 ? -1 : WEXITSTATUS(st);
}

static size_t slurp(const char *path, void *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	assert_true(n < cap);
	fclose(f);
	return n;
}

static void spit(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void assert_says(const struct stn_diag *d, const char *words)
{
	if (!strstr(d->text, words))
		fail_msg("diagnostic \"%s\" (at %s) does not say \"%s\"",
			 d->text, d->where, words);
}

static void diag_show(const struct stn_diag *d)
{
	char line[1200];

	stn_diag_format(d, line, sizeof(line));
	print_message("  %s\n", line);
}

/* The first certificate of pki/NAME.pem as DER, by openssl. */
static size_t der_of(const char *name, uint8_t *out, size_t cap)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/out.der", fx.dir);
	assert_int_equal(sh("openssl x509 -in %s/%s.pem -outform DER -out %s",
			    fx.pki, name, path),
			 0);
	return slurp(path, out, cap);
}

/* m->rec signed by pki/KEY.key with openssl into m->sig. */
static void openssl_sign(struct msg *m, const char *key)
{
	char rec[160], sig[160];

	snprintf(rec, sizeof(rec), "%s/rec", fx.dir);
	snprintf(sig, sizeof(sig), "%s/rec.sig", fx.dir);
	spit(rec, m->rec, m->rec_len);
	assert_int_equal(sh("openssl dgst -sha256 -sign %s/%s.key -out %s %s",
			    fx.pki, key, sig, rec),
			 0);
	m->sig_len = slurp(sig, m->sig, sizeof(m->sig));
}

/* Point m->m at the storage; certs: leaf NAME and its issuer. */
static void msg_wire(struct msg *m)
{
	m->m.record = m->rec;
	m->m.record_len = m->rec_len;
	m->m.sig = m->sig;
	m->m.sig_len = m->sig_len;
	m->certp[0] = m->cert[0];
	m->certp[1] = m->cert[1];
	m->m.cert = m->certp;
	m->m.cert_len = m->cert_len;
}

static void msg_certs(struct msg *m, const char *leaf, const char *issuer)
{
	m->cert_len[0] = der_of(leaf, m->cert[0], sizeof(m->cert[0]));
	m->cert_len[1] = der_of(issuer, m->cert[1], sizeof(m->cert[1]));
	m->m.ncert = 2;
}

static void attest_text(struct msg *m, const char *serial,
			const char *nonce_hex)
{
	m->rec_len = (size_t)snprintf(m->rec, sizeof(m->rec),
				      "format = station-attest-1\n"
				      "model = TX-200\nhardware = revB\n"
				      "serial = %s\nsequence = 41\n"
				      "version = 2.4.0\nnonce = %s\n"
				      "challenge = %s\n",
				      serial, nonce_hex, fx.challenge_hex);
}

/* An attestation claiming `serial`, signed with pki/KEY.key, carrying
 * CERT's leaf and ISSUER. */
static void attest_by(struct msg *m, const char *serial, const char *key,
		      const char *cert, const char *issuer)
{
	memset(m, 0, sizeof(*m));
	attest_text(m, serial, fx.nonce_hex);
	openssl_sign(m, key);
	msg_certs(m, cert, issuer);
	msg_wire(m);
}

static int attest_verify_at(struct msg *m, int64_t at,
			    struct cu_attestation *a, struct stn_diag *d)
{
	stn_diag_init(d);
	return cu_attest_verify(fx.mfg, &m->m, fx.nonce, at, WHERE, a, d);
}

static void expect_refused(struct msg *m, int64_t at, const char *w1,
			   const char *w2)
{
	struct cu_attestation a;
	struct stn_diag d;

	memset(&a, 0x5a, sizeof(a));
	assert_int_equal(attest_verify_at(m, at, &a, &d), STN_E_ATTESTATION);
	assert_int_equal(d.code, STN_E_ATTESTATION);
	diag_show(&d);
	assert_non_null(strstr(d.where, WHERE));
	assert_says(&d, w1);
	if (w2)
		assert_says(&d, w2);
	assert_int_equal(((unsigned char *)&a)[0], 0x5a); /* untouched */
}

static int group_setup(void **state)
{
	struct stn_diag d;
	char anchors[160], crls[160];

	(void)state;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_devid.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.pki, sizeof(fx.pki), "%s/pki", fx.dir);
	if (sh("bash tests/pki.sh %s", fx.pki) != 0)
		return -1;
	snprintf(anchors, sizeof(anchors), "%s/mfg-anchors.pem", fx.pki);
	snprintf(crls, sizeof(crls), "%s/mfg-crl", fx.pki);
	stn_diag_init(&d);
	if (cu_trust_load(anchors, crls, &fx.mfg, &d) != 0) {
		fprintf(stderr, "trust store: %s: %s\n", d.where, d.text);
		return -1;
	}
	fx.now = (int64_t)time(NULL);
	for (int i = 0; i < CU_NONCE_LEN; i++)
		fx.nonce[i] = (uint8_t)(0xa0 + i);
	cu_hex(fx.nonce, CU_NONCE_LEN, fx.nonce_hex);
	snprintf(fx.challenge_hex, sizeof(fx.challenge_hex), "%s",
		 "0123456789abcdef0123456789abcdef"
		 "fedcba9876543210fedcba9876543210");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cu_trust_free(fx.mfg);
	if (fx.dir[0])
		sh("rm -rf %s", fx.dir);
	return 0;
}

/* First line of a command's output. */
static void capture(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void capture(char *buf, size_t size, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	assert_non_null(p);
	if (!fgets(buf, (int)size, p))
		buf[0] = '\0';
	pclose(p);
	buf[strcspn(buf, "\n")] = '\0';
}

/* ---- attestation: accepted ---- */

static void attest_accept(const char *serial, const char *who, int64_t at)
{
	struct cu_attestation a;
	struct stn_diag d;
	struct msg m;
	char serial_line[128];

	attest_by(&m, serial, who, who, "mfg-ca");
	memset(&a, 0, sizeof(a));
	if (attest_verify_at(&m, at, &a, &d) != 0)
		fail_msg("refused: %s: %s", d.where, d.text);
	assert_string_equal(a.id.serial, serial);
	assert_string_equal(a.id.model, "TX-200");
	assert_string_equal(a.id.hardware, "revB");
	assert_string_equal(a.id.version, "2.4.0");
	assert_true(a.id.has_sequence);
	assert_int_equal(a.id.sequence, 41);
	assert_memory_equal(a.nonce, fx.nonce, CU_NONCE_LEN);
	assert_string_equal(a.challenge_hex, fx.challenge_hex);
	assert_int_equal(a.challenge[0], 0x01);
	assert_non_null(strstr(a.cert_subject, serial));
	assert_non_null(strstr(a.cert_issuer, "Acme TX-200 Device CA"));
	assert_non_null(strstr(a.anchor_subject, "Acme Devices Root CA"));
	capture(serial_line, sizeof(serial_line),
		"openssl x509 -in %s/%s.pem -noout -serial", fx.pki, who);
	assert_string_equal(serial_line + strlen("serial="), a.cert_serial);
	assert_int_equal(a.stale_crl, 0);
	assert_int_equal(a.leaf_len, m.cert_len[0]);
	assert_memory_equal(a.leaf, m.cert[0], m.cert_len[0]);
}

static void attest_accepts_an_ecdsa_device_signed_with_openssl(void **state)
{
	(void)state;
	attest_accept("SN-0001", "dev1", fx.now);
}

static void attest_accepts_an_rsa_device_signed_with_openssl(void **state)
{
	(void)state;
	attest_accept("SN-0007", "dev-rsa", fx.now);
}

/* ---- attestation: refused, each for its reason ---- */

static void attest_refuses_an_unsigned_answer(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev1", "dev1", "mfg-ca");
	m.m.sig = NULL;
	m.m.sig_len = 0;
	expect_refused(&m, fx.now, "unsigned", NULL);
}

static void attest_refuses_an_answer_without_a_certificate(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev1", "dev1", "mfg-ca");
	m.m.ncert = 0;
	expect_refused(&m, fx.now, "no device certificate", NULL);
}

static void attest_refuses_a_record_changed_after_signing(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev1", "dev1", "mfg-ca");
	memcpy(strstr(m.rec, "sequence = 41"), "sequence = 42", 13);
	expect_refused(&m, fx.now, "signature does not verify", NULL);
}

static void attest_refuses_a_ber_signature(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev1", "dev1", "mfg-ca");
	/* 30 LL ... as 30 81 LL ...: the same value in BER, which mbedTLS
	 * alone would take and openssl dgst -verify refuses. */
	assert_int_equal(m.sig[0], 0x30);
	assert_true(m.sig[1] < 0x80);
	memmove(m.sig + 2, m.sig + 1, m.sig_len - 1);
	m.sig[1] = 0x81;
	m.sig_len++;
	m.m.sig_len = m.sig_len;
	expect_refused(&m, fx.now, "not DER", NULL);
}

static void attest_refuses_a_signature_by_another_key(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev2", "dev1", "mfg-ca");
	expect_refused(&m, fx.now, "signature does not verify",
		       "device certificate's key");
}

static void attest_refuses_a_certificate_of_another_manufacturer(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "foreign-dev", "foreign-dev", "foreign-root");
	expect_refused(&m, fx.now,
		       "does not verify against the device anchors",
		       "not correctly signed");
}

static void attest_refuses_a_serial_the_certificate_does_not_name(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev-other", "dev-other", "mfg-ca");
	expect_refused(&m, fx.now,
		       "the device certificate is for serial SN-0099, the "
		       "device claims SN-0001",
		       NULL);
}

static void attest_refuses_a_certificate_without_serial_number(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev-noserial", "dev-noserial", "mfg-ca");
	expect_refused(&m, fx.now, "names no serial number", NULL);
}

static void attest_refuses_a_certificate_with_two_serial_numbers(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev-twoserial", "dev-twoserial", "mfg-ca");
	expect_refused(&m, fx.now, "names 2 serial numbers", NULL);
}

static void attest_refuses_a_certificate_holding_a_station_role(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0006", "dev-station", "dev-station", "mfg-ca");
	expect_refused(&m, fx.now, "holds the station role station", NULL);
}

/* pki/NAME.pem: a device leaf for SERIAL under mfg-ca with the
 * extensions EXT (openssl x509v3_config lines), made here with openssl for
 * the rules no pki.sh certificate breaks. */
/* Those are valid from when they are made, after fx.now. */
#define LATER ((int64_t)time(NULL) + 3600)

static void odd_devcert(const char *name, const char *serial,
			const char *ext)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s.ext", fx.dir, name);
	spit(path, ext, strlen(ext));
	assert_int_equal(
		sh("cd %s && openssl genpkey -algorithm EC -pkeyopt "
		   "ec_paramgen_curve:P-256 -out %s.key 2>/dev/null && "
		   "openssl req -new -key %s.key -subj '/CN=TX-200 %s/"
		   "serialNumber=%s' -out %s.csr && openssl x509 -req -in "
		   "%s.csr -CA mfg-ca.pem -CAkey mfg-ca.key -set_serial 0x%x "
		   "-days 30 -sha256 -extfile %s -out %s.pem 2>/dev/null",
		   fx.pki, name, name, serial, serial, name, name,
		   (unsigned)(0x4000 + strlen(ext)), path, name),
		0);
}

static void attest_refuses_a_certificate_without_digital_signature(void **state)
{
	struct msg m;

	(void)state;
	odd_devcert("dev-noku", "SN-0008", "basicConstraints = CA:FALSE\n");
	attest_by(&m, "SN-0008", "dev-noku", "dev-noku", "mfg-ca");
	expect_refused(&m, LATER, "has no keyUsage", "digitalSignature");
	odd_devcert("dev-kenc", "SN-0008",
		    "basicConstraints = CA:FALSE\n"
		    "keyUsage = critical, keyAgreement\n");
	attest_by(&m, "SN-0008", "dev-kenc", "dev-kenc", "mfg-ca");
	expect_refused(&m, LATER, "keyUsage lacks digitalSignature", NULL);
}

static void attest_refuses_a_ca_or_any_purpose_certificate(void **state)
{
	struct msg m;

	(void)state;
	odd_devcert("dev-ca", "SN-0008",
		    "basicConstraints = critical, CA:TRUE\n"
		    "keyUsage = critical, digitalSignature, keyCertSign\n");
	attest_by(&m, "SN-0008", "dev-ca", "dev-ca", "mfg-ca");
	expect_refused(&m, LATER, "is a CA", NULL);
	odd_devcert("dev-any", "SN-0008",
		    "basicConstraints = CA:FALSE\n"
		    "keyUsage = critical, digitalSignature\n"
		    "extendedKeyUsage = clientAuth, anyExtendedKeyUsage\n");
	attest_by(&m, "SN-0008", "dev-any", "dev-any", "mfg-ca");
	expect_refused(&m, LATER, "anyExtendedKeyUsage", NULL);
	/* clientAuth alone is a device's business (802.1AR, TLS). */
	odd_devcert("dev-tls", "SN-0008",
		    "basicConstraints = CA:FALSE\n"
		    "keyUsage = critical, digitalSignature\n"
		    "extendedKeyUsage = clientAuth\n");
	attest_accept("SN-0008", "dev-tls", LATER);
}

static void attest_refuses_a_revoked_certificate_naming_its_serial(void **state)
{
	char serial_line[128];
	struct msg m;

	(void)state;
	capture(serial_line, sizeof(serial_line),
		"openssl x509 -in %s/dev-revoked.pem -noout -serial", fx.pki);
	attest_by(&m, "SN-0005", "dev-revoked", "dev-revoked", "mfg-ca");
	expect_refused(&m, fx.now, "revoked",
		       serial_line + strlen("serial="));
}

static void attest_refuses_an_answer_to_another_nonce(void **state)
{
	struct msg m;

	(void)state;
	memset(&m, 0, sizeof(m));
	attest_text(&m, "SN-0001",
		    "00000000000000000000000000000000"
		    "00000000000000000000000000000000");
	openssl_sign(&m, "dev1");
	msg_certs(&m, "dev1", "mfg-ca");
	msg_wire(&m);
	expect_refused(&m, fx.now, "another nonce", NULL);
}

static void attest_refuses_a_certificate_expired_at_the_session(void **state)
{
	struct msg m;

	(void)state;
	attest_by(&m, "SN-0001", "dev1", "dev1", "mfg-ca");
	expect_refused(&m, fx.now + 3 * YEAR, "expired", NULL);
}

/* text with @N and @C replaced by the session's nonce and challenge. */
static size_t subst(const char *text, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *s = text; *s; s++) {
		const char *v = NULL;

		if (s[0] == '@' && s[1] == 'N')
			v = fx.nonce_hex;
		else if (s[0] == '@' && s[1] == 'C')
			v = fx.challenge_hex;
		if (v) {
			n += (size_t)snprintf(out + n, cap - n, "%s", v);
			s++;
		} else if (n + 1 < cap) {
			out[n++] = *s;
		}
	}
	assert_true(n < cap);
	out[n] = '\0';
	return n;
}

static void attest_refuses_malformed_records(void **state)
{
	static const struct {
		const char *text, *words;
	} cases[] = {
		{"format = station-attest-1\nmodel = TX-200\n"
		 "serial = SN-0001\ncolor = red\nnonce = @N\nchallenge = @C\n",
		 "unknown key 'color'"},
		{"format = station-attest-1\nmodel = TX-200\n"
		 "serial = SN-0001\nchallenge = @C\n",
		 "missing required key 'nonce'"},
		{"format = station-device-1\nmodel = TX-200\n"
		 "serial = SN-0001\nnonce = @N\nchallenge = @C\n",
		 "format is 'station-device-1'"},
		{"format = station-attest-1\nmodel = TX-200\n"
		 "serial = SN/0001\nnonce = @N\nchallenge = @C\n",
		 "serial must be"},
		{"format = station-attest-1\nmodel = TX-200\n"
		 "serial = SN-0001\nnonce = A0A1A2A3A4A5A6A7A8A9AAABACADAEAF"
		 "B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF\nchallenge = @C\n",
		 "'nonce' must be 64 lowercase hex digits"},
		{"format = station-attest-1\nmodel = TX-200\n"
		 "serial = SN-0001\nnonce = @N\nchallenge = @C0\n",
		 "'challenge' must be 64 lowercase hex digits"},
		{"format = station-attest-1\nmodel = TX-200\n"
		 "serial = SN-0001\nsequence = -1\nnonce = @N\n"
		 "challenge = @C\n",
		 "sequence"},
	};
	struct msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&m, 0, sizeof(m));
		m.rec_len = subst(cases[i].text, m.rec, sizeof(m.rec));
		openssl_sign(&m, "dev1");
		msg_certs(&m, "dev1", "mfg-ca");
		msg_wire(&m);
		expect_refused(&m, fx.now, "attestation record is malformed",
			       cases[i].words);
	}
}

/* ---- authorization ---- */

static struct cu_key *station_key(void)
{
	char key[160], pem[160];
	struct cu_key *k = NULL;
	struct stn_diag d;

	snprintf(key, sizeof(key), "%s/station.key", fx.pki);
	snprintf(pem, sizeof(pem), "%s/station.pem", fx.pki);
	stn_diag_init(&d);
	if (cu_key_load(key, pem, &k, &d) != 0)
		fail_msg("key: %s: %s", d.where, d.text);
	return k;
}

static void two_images(struct cu_image img[2])
{
	memset(img, 0, 2 * sizeof(img[0]));
	snprintf(img[0].label, sizeof(img[0].label), "app");
	img[0].slot = 0;
	img[0].size = 524288;
	memset(img[0].sha256, 0x11, CU_SHA256_LEN);
	snprintf(img[1].label, sizeof(img[1].label), "boot-2");
	img[1].slot = 3;
	img[1].size = 4096;
	memset(img[1].sha256, 0xee, CU_SHA256_LEN);
}

static void authz_fill(struct cu_authz *a, const struct cu_image *img)
{
	memset(a, 0, sizeof(*a));
	a->station = "STN-0042";
	a->site = "plant-7";
	a->technician = "ana";
	a->device = "SN-0001";
	a->challenge_hex = fx.challenge_hex;
	a->bundle_hex = "9f86d081884c7d659a2feaa0c55ad015"
			"a3bf4f1b2b0b822cd15d6c15b0f00a08";
	a->sequence = 42;
	cu_time_parse("2026-11-20T10:00:00Z", &a->issued);
	a->images = img;
	a->nimages = 2;
}

static void authz_is_the_section_9_record_and_verifies_with_openssl(void **state)
{
	struct cu_image img[2];
	struct cu_authz a;
	struct cu_key *k = station_key();
	char text[CU_AUTHZ_MAX], want[2048], path[160];
	uint8_t sig[CU_SIG_MAX];
	size_t len = 0, sig_len = 0;
	struct stn_diag d;

	(void)state;
	two_images(img);
	authz_fill(&a, img);
	stn_diag_init(&d);
	assert_int_equal(cu_authz_make(&a, k, text, sizeof(text), &len, sig,
				       sizeof(sig), &sig_len, &d),
			 0);
	snprintf(want, sizeof(want),
		 "format = station-install-1\n"
		 "station = STN-0042\n"
		 "site = plant-7\n"
		 "technician = ana\n"
		 "device = SN-0001\n"
		 "challenge = %s\n"
		 "bundle = 9f86d081884c7d659a2feaa0c55ad015"
		 "a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
		 "sequence = 42\n"
		 "issued = 2026-11-20T10:00:00Z\n"
		 "expires = 2026-11-20T10:10:00Z\n"
		 "[image app]\n"
		 "slot = 0\n"
		 "size = 524288\n"
		 "sha256 = 1111111111111111111111111111111111111111111111111111111111111111\n"
		 "[image boot-2]\n"
		 "slot = 3\n"
		 "size = 4096\n"
		 "sha256 = eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\n",
		 fx.challenge_hex);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(text, want, len);
	/* An auditor's check: the station leaf's public key, openssl. */
	snprintf(path, sizeof(path), "%s/authz", fx.dir);
	spit(path, text, len);
	snprintf(path, sizeof(path), "%s/authz.sig", fx.dir);
	spit(path, sig, sig_len);
	assert_int_equal(sh("openssl x509 -in %s/station.pem -noout -pubkey "
			    ">%s/station.pub && openssl dgst -sha256 -verify "
			    "%s/station.pub -signature %s/authz.sig %s/authz "
			    ">/dev/null",
			    fx.pki, fx.dir, fx.dir, fx.dir, fx.dir),
			 0);
	/* And one byte changed fails the same check. */
	text[len - 2] ^= 1;
	snprintf(path, sizeof(path), "%s/authz", fx.dir);
	spit(path, text, len);
	assert_int_not_equal(sh("openssl dgst -sha256 -verify %s/station.pub "
				"-signature %s/authz.sig %s/authz >/dev/null",
				fx.dir, fx.dir, fx.dir),
			     0);
	cu_key_free(k);
}

/* A manifest's most images, with the longest labels and sizes, make an
 * authorization the device's message caps carry whole (devmsg.h). */
static void authz_for_the_most_images_fits_a_device_message(void **state)
{
	static struct cu_image img[CU_MAX_IMAGES];
	static char text[CU_AUTHZ_MAX];
	static struct tp_signed_msg m;
	struct cu_authz a;
	struct cu_key *k = station_key();
	uint8_t sig[CU_SIG_MAX];
	size_t len = 0, sig_len = 0, pos = 0;
	struct stn_diag d;

	(void)state;
	two_images(img);
	authz_fill(&a, img);
	for (size_t i = 0; i < CU_MAX_IMAGES; i++) {
		img[i] = img[0];
		snprintf(img[i].label, sizeof(img[i].label),
			 "image-%026zu", i);
		img[i].size = UINT64_MAX;
		img[i].slot = 255;
	}
	a.nimages = CU_MAX_IMAGES;
	stn_diag_init(&d);
	assert_int_equal(cu_authz_make(&a, k, text, sizeof(text), &len, sig,
				       sizeof(sig), &sig_len, &d),
			 0);
	tp_msg_init(&m);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		assert_non_null(nl);
		assert_int_equal(tp_msg_take(&m, text + pos,
					     (size_t)(nl - (text + pos)),
					     "test", &d),
				 0);
		pos = (size_t)(nl - text) + 1;
	}
	assert_int_equal(m.record_len, len);
	assert_memory_equal(m.record, text, len);
	cu_key_free(k);
}

static void authz_refuses_what_the_record_cannot_carry(void **state)
{
	struct cu_image img[2];
	struct cu_authz a;
	struct cu_key *k = station_key();
	char text[CU_AUTHZ_MAX];
	uint8_t sig[CU_SIG_MAX];
	size_t len, sig_len;
	struct stn_diag d;

	(void)state;
	two_images(img);
	authz_fill(&a, img);
	a.technician = "ana "; /* read back as "ana": signed != read */
	stn_diag_init(&d);
	assert_int_equal(cu_authz_make(&a, k, text, sizeof(text), &len, sig,
				       sizeof(sig), &sig_len, &d),
			 STN_E_USAGE);
	authz_fill(&a, img);
	a.device = "SN-0001\nsite = elsewhere";
	stn_diag_init(&d);
	assert_int_equal(cu_authz_make(&a, k, text, sizeof(text), &len, sig,
				       sizeof(sig), &sig_len, &d),
			 STN_E_USAGE);
	authz_fill(&a, img);
	a.challenge_hex = "ABCD";
	stn_diag_init(&d);
	assert_int_equal(cu_authz_make(&a, k, text, sizeof(text), &len, sig,
				       sizeof(sig), &sig_len, &d),
			 STN_E_USAGE);
	assert_says(&d, "64 lowercase hex");
	authz_fill(&a, img);
	snprintf(img[1].label, sizeof(img[1].label), "Boot");
	stn_diag_init(&d);
	assert_int_equal(cu_authz_make(&a, k, text, sizeof(text), &len, sig,
				       sizeof(sig), &sig_len, &d),
			 STN_E_USAGE);
	two_images(img);
	stn_diag_init(&d);
	assert_int_equal(cu_authz_make(&a, k, text, 200, &len, sig,
				       sizeof(sig), &sig_len, &d),
			 STN_E_USAGE);
	assert_says(&d, "does not fit");
	cu_key_free(k);
}

static void key_chain_der_is_the_station_chain_leaf_first(void **state)
{
	struct cu_key *k = station_key();
	const uint8_t *der[CU_DEVID_CERTS_MAX];
	size_t len[CU_DEVID_CERTS_MAX], n = 0, want_len;
	uint8_t want[CU_DEVID_CERT_MAX];
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_key_chain_der(k, der, len, CU_DEVID_CERTS_MAX, &n,
					  &d),
			 0);
	assert_int_equal(n, 2); /* station leaf + inter */
	want_len = der_of("station", want, sizeof(want));
	assert_int_equal(len[0], want_len);
	assert_memory_equal(der[0], want, want_len);
	want_len = der_of("inter", want, sizeof(want));
	assert_int_equal(len[1], want_len);
	assert_memory_equal(der[1], want, want_len);
	stn_diag_init(&d);
	assert_int_equal(cu_key_chain_der(k, der, len, 1, &n, &d),
			 STN_E_INTERNAL);
	cu_key_free(k);
}

/* ---- receipts ---- */

static struct cu_attestation att; /* dev1's, verified */

static void attested_dev1(void)
{
	struct stn_diag d;
	struct msg m;

	attest_by(&m, "SN-0001", "dev1", "dev1", "mfg-ca");
	if (attest_verify_at(&m, fx.now, &att, &d) != 0)
		fail_msg("refused: %s: %s", d.where, d.text);
}

static void receipt_by(struct msg *m, const char *key, const char *device,
		       const char *nonce_hex, const char *challenge_hex,
		       unsigned slot, unsigned long long size, uint8_t fill)
{
	uint8_t digest[CU_SHA256_LEN];
	char hex[CU_SHA256_HEX_LEN + 1];

	memset(m, 0, sizeof(*m));
	memset(digest, fill, sizeof(digest));
	cu_hex(digest, sizeof(digest), hex);
	m->rec_len = (size_t)snprintf(m->rec, sizeof(m->rec),
				      "format = station-receipt-1\n"
				      "device = %s\nnonce = %s\n"
				      "challenge = %s\nslot = %u\n"
				      "size = %llu\nsha256 = %s\n",
				      device, nonce_hex, challenge_hex, slot,
				      size, hex);
	openssl_sign(m, key);
	msg_wire(m);
}

static int receipt_check(struct msg *m, const struct cu_image *img,
			 struct cu_receipt *r, struct stn_diag *d)
{
	stn_diag_init(d);
	return cu_receipt_verify(&att, &m->m, img, WHERE, r, d);
}

static void expect_proof_refusal(struct msg *m, const struct cu_image *img,
				 const char *w1, const char *w2)
{
	struct cu_receipt r;
	struct stn_diag d;

	assert_int_equal(receipt_check(m, img, &r, &d), STN_E_PROOF);
	diag_show(&d);
	assert_non_null(strstr(d.where, WHERE));
	assert_says(&d, w1);
	if (w2)
		assert_says(&d, w2);
}

static void receipt_matching_the_image_is_accepted(void **state)
{
	struct cu_image img[2];
	struct cu_receipt r;
	struct stn_diag d;
	struct msg m;

	(void)state;
	attested_dev1();
	two_images(img);
	receipt_by(&m, "dev1", "SN-0001", fx.nonce_hex, fx.challenge_hex, 3,
		   4096, 0xee);
	memset(&r, 0, sizeof(r));
	if (receipt_check(&m, &img[1], &r, &d) != 0)
		fail_msg("refused: %s: %s", d.where, d.text);
	assert_int_equal(r.slot, 3);
	assert_int_equal(r.size, 4096);
	assert_memory_equal(r.sha256, img[1].sha256, CU_SHA256_LEN);
}

static void receipt_that_differs_fails_and_says_both(void **state)
{
	struct cu_image img[2];
	struct cu_receipt r;
	struct stn_diag d;
	struct msg m;

	(void)state;
	attested_dev1();
	two_images(img);
	/* Another size. */
	receipt_by(&m, "dev1", "SN-0001", fx.nonce_hex, fx.challenge_hex, 0,
		   524287, 0x11);
	memset(&r, 0, sizeof(r));
	assert_int_equal(receipt_check(&m, &img[0], &r, &d), STN_E_PROOF);
	diag_show(&d);
	assert_says(&d, "the device signed for 524287 bytes with SHA-256 "
			"1111111111111111111111111111111111111111111111111111"
			"111111111111; the image is 524288 bytes with 1111");
	assert_int_equal(r.size, 524287); /* filled for the journal */
	assert_int_equal(r.slot, 0);
	/* Another digest. */
	receipt_by(&m, "dev1", "SN-0001", fx.nonce_hex, fx.challenge_hex, 0,
		   524288, 0x22);
	memset(&r, 0, sizeof(r));
	assert_int_equal(receipt_check(&m, &img[0], &r, &d), STN_E_PROOF);
	assert_says(&d, "the device signed for 524288 bytes with SHA-256 "
			"2222");
	assert_int_equal(r.sha256[0], 0x22);
}

static void receipt_for_another_slot_session_or_device_fails(void **state)
{
	static const char other[] = "00000000000000000000000000000000"
				    "00000000000000000000000000000000";
	struct cu_image img[2];
	struct msg m;

	(void)state;
	attested_dev1();
	two_images(img);
	receipt_by(&m, "dev1", "SN-0001", fx.nonce_hex, fx.challenge_hex, 3,
		   524288, 0x11);
	expect_proof_refusal(&m, &img[0], "slot 3", "slot 0");
	receipt_by(&m, "dev1", "SN-0001", other, fx.challenge_hex, 0, 524288,
		   0x11);
	expect_proof_refusal(&m, &img[0], "another session", "nonce");
	receipt_by(&m, "dev1", "SN-0001", fx.nonce_hex, other, 0, 524288,
		   0x11);
	expect_proof_refusal(&m, &img[0], "another session", "challenge");
	receipt_by(&m, "dev1", "SN-0002", fx.nonce_hex, fx.challenge_hex, 0,
		   524288, 0x11);
	expect_proof_refusal(&m, &img[0], "for device SN-0002",
			     "attested device is SN-0001");
}

static void receipt_signed_badly_or_not_at_all_fails(void **state)
{
	struct cu_image img[2];
	struct msg m;

	(void)state;
	attested_dev1();
	two_images(img);
	/* dev2's key: a receipt from another unit for this one. */
	receipt_by(&m, "dev2", "SN-0001", fx.nonce_hex, fx.challenge_hex, 0,
		   524288, 0x11);
	expect_proof_refusal(&m, &img[0], "signature does not verify",
			     "attested device's key");
	receipt_by(&m, "dev1", "SN-0001", fx.nonce_hex, fx.challenge_hex, 0,
		   524288, 0x11);
	m.m.sig = NULL;
	m.m.sig_len = 0;
	expect_proof_refusal(&m, &img[0], "unsigned", NULL);
	receipt_by(&m, "dev1", "SN-0001", fx.nonce_hex, fx.challenge_hex, 0,
		   524288, 0x11);
	memcpy(strstr(m.rec, "slot = 0"), "slit", 4);
	expect_proof_refusal(&m, &img[0], "receipt is malformed",
			     "unknown key 'slit'");
}

/* ---- the journal's copies, checked by an auditor ---- */

static void chain_pem_is_what_openssl_wrote_and_sig_check_uses_it(void **state)
{
	char *pem = NULL, want[16384], path[160];
	struct stn_diag d;
	struct msg m;
	size_t n;

	(void)state;
	attest_by(&m, "SN-0001", "dev1", "dev1", "mfg-ca");
	stn_diag_init(&d);
	assert_int_equal(cu_devid_chain_pem(m.m.cert, m.m.cert_len,
					    m.m.ncert, &pem, &d),
			 0);
	/* pki.sh wrote dev1.pem as the leaf openssl ca made + mfg-ca.pem. */
	snprintf(path, sizeof(path), "%s/dev1.pem", fx.pki);
	n = slurp(path, want, sizeof(want) - 1);
	want[n] = '\0';
	assert_string_equal(pem, want);
	stn_diag_init(&d);
	assert_int_equal(cu_devid_sig_check(pem, m.rec, m.rec_len, m.sig,
					    m.sig_len, &d),
			 0);
	m.rec[5] ^= 1;
	stn_diag_init(&d);
	assert_int_equal(cu_devid_sig_check(pem, m.rec, m.rec_len, m.sig,
					    m.sig_len, &d),
			 STN_E_SIGNATURE);
	stn_diag_init(&d);
	assert_int_equal(cu_devid_sig_check("no pem here", m.rec, m.rec_len,
					    m.sig, m.sig_len, &d),
			 STN_E_CHAIN);
	free(pem);
}

static void sig_check_verifies_the_station_authorization(void **state)
{
	struct cu_image img[2];
	struct cu_authz a;
	struct cu_key *k = station_key();
	char text[CU_AUTHZ_MAX];
	uint8_t sig[CU_SIG_MAX];
	size_t len, sig_len;
	struct stn_diag d;

	(void)state;
	two_images(img);
	authz_fill(&a, img);
	stn_diag_init(&d);
	assert_int_equal(cu_authz_make(&a, k, text, sizeof(text), &len, sig,
				       sizeof(sig), &sig_len, &d),
			 0);
	stn_diag_init(&d);
	assert_int_equal(cu_devid_sig_check(cu_key_chain_pem(k, NULL), text,
					    len, sig, sig_len, &d),
			 0);
	cu_key_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(attest_accepts_an_ecdsa_device_signed_with_openssl),
		cmocka_unit_test(attest_accepts_an_rsa_device_signed_with_openssl),
		cmocka_unit_test(attest_refuses_an_unsigned_answer),
		cmocka_unit_test(attest_refuses_an_answer_without_a_certificate),
		cmocka_unit_test(attest_refuses_a_record_changed_after_signing),
		cmocka_unit_test(attest_refuses_a_ber_signature),
		cmocka_unit_test(attest_refuses_a_signature_by_another_key),
		cmocka_unit_test(attest_refuses_a_certificate_of_another_manufacturer),
		cmocka_unit_test(attest_refuses_a_serial_the_certificate_does_not_name),
		cmocka_unit_test(attest_refuses_a_certificate_without_serial_number),
		cmocka_unit_test(attest_refuses_a_certificate_with_two_serial_numbers),
		cmocka_unit_test(attest_refuses_a_certificate_holding_a_station_role),
		cmocka_unit_test(attest_refuses_a_certificate_without_digital_signature),
		cmocka_unit_test(attest_refuses_a_ca_or_any_purpose_certificate),
		cmocka_unit_test(attest_refuses_a_revoked_certificate_naming_its_serial),
		cmocka_unit_test(attest_refuses_an_answer_to_another_nonce),
		cmocka_unit_test(attest_refuses_a_certificate_expired_at_the_session),
		cmocka_unit_test(attest_refuses_malformed_records),
		cmocka_unit_test(authz_is_the_section_9_record_and_verifies_with_openssl),
		cmocka_unit_test(authz_refuses_what_the_record_cannot_carry),
		cmocka_unit_test(authz_for_the_most_images_fits_a_device_message),
		cmocka_unit_test(key_chain_der_is_the_station_chain_leaf_first),
		cmocka_unit_test(receipt_matching_the_image_is_accepted),
		cmocka_unit_test(receipt_that_differs_fails_and_says_both),
		cmocka_unit_test(receipt_for_another_slot_session_or_device_fails),
		cmocka_unit_test(receipt_signed_badly_or_not_at_all_fails),
		cmocka_unit_test(chain_pem_is_what_openssl_wrote_and_sig_check_uses_it),
		cmocka_unit_test(sig_check_verifies_the_station_authorization),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
