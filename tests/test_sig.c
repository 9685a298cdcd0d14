/* tests/test_sig.c: the signature, role and trust-store contract of formats
 * §2 and §6 (custody/sig.h), against a test PKI that tests/pki.sh makes with
 * the openssl CLI, and against openssl's own signing and verifying. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "station/base/rfc3339.h"
#include "station/base/sha256.h"
#include "custody/sig.h"
#include "custody/sign.h"
#include "custody/trust.h"
#include "station/base/error.h"

#define DAY (24 * 3600)

static struct {
	char dir[64];   /* mkdtemp root, removed at the end */
	char pki[96];   /* tests/pki.sh output */
	char doc[128];  /* the signed file */
	uint8_t digest[CU_SHA256_LEN];
	struct cu_trust *trust; /* roots.pem + crl/, stale CRLs warn */
	int64_t now;
} fx;

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

/* First line of a command's output, without its newline. */
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
	buf[0] = '\0';
	p = popen(cmd, "r");
	assert_non_null(p);
	if (!fgets(buf, (int)size, p))
		buf[0] = '\0';
	pclose(p);
	buf[strcspn(buf, "\n")] = '\0';
}

static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void digest_of(const char *path, uint8_t out[CU_SHA256_LEN])
{
	static uint8_t buf[1 << 16];
	size_t n = slurp(path, buf, sizeof(buf));

	assert_int_equal(cu_sha256(buf, n, out), 0);
}

static void assert_says(const struct stn_diag *d, const char *words)
{
	if (!strstr(d->text, words))
		fail_msg("diagnostic \"%s\" (at %s) does not say \"%s\"",
			 d->text, d->where, words);
}

/* The refusal texts are part of the contract; the log shows them. */
static void diag_show(const struct stn_diag *d)
{
	char line[1024];

	stn_diag_format(d, line, sizeof(line));
	print_message("  %s\n", line);
}

/* doc.LABEL.sig/.pem signed by pki/WHO.key with openssl, as a release
 * engineer would; LABEL defaults to WHO. */
static void openssl_sign(const char *who)
{
	assert_int_equal(sh("openssl dgst -sha256 -sign %s/%s.key -out %s.%s.sig %s"
			    " && cp %s/%s.pem %s.%s.pem",
			    fx.pki, who, fx.doc, who, fx.doc, fx.pki, who,
			    fx.doc, who),
			 0);
}

static int verify_signed_by(const char *who, enum cu_role role, int64_t at,
			    struct cu_signer *s, struct stn_diag *d)
{
	char sig[256], pem[256];

	snprintf(sig, sizeof(sig), "%s.%s.sig", fx.doc, who);
	snprintf(pem, sizeof(pem), "%s.%s.pem", fx.doc, who);
	stn_diag_init(d);
	return cu_sig_verify(fx.trust, fx.digest, sig, pem, role, at, s, d);
}

static void expect_refusal_as_is(const char *who, enum cu_role role,
				 int64_t at, int code, const char *words1,
				 const char *words2)
{
	struct cu_signer s;
	struct stn_diag d;

	assert_int_equal(verify_signed_by(who, role, at, &s, &d), code);
	assert_int_equal(d.code, code);
	diag_show(&d);
	if (words1)
		assert_says(&d, words1);
	if (words2)
		assert_says(&d, words2);
}

/* Signed by WHO with openssl, then refused with `code` and these words. */
static void expect_refusal(const char *who, enum cu_role role, int64_t at,
			   int code, const char *words1, const char *words2)
{
	openssl_sign(who);
	expect_refusal_as_is(who, role, at, code, words1, words2);
}

static int group_setup(void **state)
{
	struct stn_diag d;
	char anchors[160], crls[160];
	FILE *f;

	(void)state;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_sig.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.pki, sizeof(fx.pki), "%s/pki", fx.dir);
	if (sh("bash tests/pki.sh %s", fx.pki) != 0)
		return -1;
	snprintf(fx.doc, sizeof(fx.doc), "%s/manifest", fx.dir);
	f = fopen(fx.doc, "w");
	if (!f)
		return -1;
	fputs("format = station-bundle-1\nname = tx200-app\nsequence = 42\n", f);
	fclose(f);
	digest_of(fx.doc, fx.digest);
	fx.now = (int64_t)time(NULL);
	snprintf(anchors, sizeof(anchors), "%s/roots.pem", fx.pki);
	snprintf(crls, sizeof(crls), "%s/crl", fx.pki);
	stn_diag_init(&d);
	if (cu_trust_load(anchors, crls, &fx.trust, &d) != 0) {
		fprintf(stderr, "trust store: %s: %s\n", d.where, d.text);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cu_trust_free(fx.trust);
	if (fx.dir[0])
		sh("rm -rf %s", fx.dir);
	return 0;
}

/* ---- role OIDs ---- */

/* The arc's base-128 digits, by long division of its decimal form. */
static size_t arc_base128(const char *decimal, uint8_t *out, size_t cap)
{
	char num[64];
	uint8_t rev[32];
	size_t n = 0, len = strlen(decimal);

	memcpy(num, decimal, len + 1);
	while (len > 0 && !(len == 1 && num[0] == '0')) {
		unsigned rem = 0;
		size_t o = 0;
		for (size_t i = 0; i < len; i++) {
			unsigned cur = rem * 10 + (unsigned)(num[i] - '0');
			if (o > 0 || cur / 128 > 0)
				num[o++] = (char)('0' + cur / 128);
			rem = cur % 128;
		}
		rev[n++] = (uint8_t)rem;
		len = o;
		num[len] = '\0';
	}
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(rev[n - 1 - i] | (i + 1 < n ? 0x80 : 0));
	return n;
}

static void role_oids_encode_the_uuid_arc(void **state)
{
	uint8_t want[40];
	const uint8_t *got;
	size_t n, len = 0;

	(void)state;
	want[0] = 2 * 40 + 25;
	n = 1 + arc_base128("220105586949796384984797284338591255574", want + 1,
			    sizeof(want) - 2);
	for (int r = CU_ROLE_RELEASE; r <= CU_ROLE_DELIVERY; r++) {
		if (r == 5) /* formats §2: .5 is no role */
			continue;
		want[n] = (uint8_t)r;
		got = cu_role_oid((enum cu_role)r, &len);
		assert_non_null(got);
		assert_int_equal(len, n + 1);
		assert_memory_equal(got, want, n + 1);
	}
	assert_null(cu_role_oid(CU_ROLE_NONE, &len));
	assert_null(cu_role_oid((enum cu_role)5, &len));
	assert_null(cu_role_oid((enum cu_role)7, &len));
}

/* The OID as a DER TLV is present in the certificate openssl made. */
static int cert_has_role_oid(const char *who, enum cu_role r)
{
	static uint8_t der[8192];
	uint8_t tlv[64];
	char path[256];
	size_t n, len = 0;
	const uint8_t *oid = cu_role_oid(r, &len);

	snprintf(path, sizeof(path), "%s/%s.der", fx.dir, who);
	assert_int_equal(sh("openssl x509 -in %s/%s.pem -outform DER -out %s",
			    fx.pki, who, path),
			 0);
	n = slurp(path, der, sizeof(der));
	tlv[0] = 0x06;
	tlv[1] = (uint8_t)len;
	memcpy(tlv + 2, oid, len);
	return memmem(der, n, tlv, len + 2) != NULL;
}

static void role_oids_are_the_ones_openssl_puts_in_certificates(void **state)
{
	(void)state;
	assert_true(cert_has_role_oid("release1", CU_ROLE_RELEASE));
	assert_false(cert_has_role_oid("release1", CU_ROLE_CUSTODY));
	assert_true(cert_has_role_oid("custody1", CU_ROLE_CUSTODY));
	assert_true(cert_has_role_oid("exception1", CU_ROLE_EXCEPTION));
	assert_true(cert_has_role_oid("station", CU_ROLE_STATION));
	assert_false(cert_has_role_oid("station", CU_ROLE_RELEASE));
	assert_true(cert_has_role_oid("delivery", CU_ROLE_DELIVERY));
	assert_true(cert_has_role_oid("delivery-rsa", CU_ROLE_DELIVERY));
	assert_false(cert_has_role_oid("delivery", CU_ROLE_STATION));
}

static void role_names_are_the_spec_words(void **state)
{
	(void)state;
	assert_string_equal(cu_role_name(CU_ROLE_RELEASE), "release");
	assert_string_equal(cu_role_name(CU_ROLE_CUSTODY), "custody");
	assert_string_equal(cu_role_name(CU_ROLE_EXCEPTION), "exception");
	assert_string_equal(cu_role_name(CU_ROLE_STATION), "station");
	assert_string_equal(cu_role_name(CU_ROLE_DELIVERY), "delivery");
	assert_string_equal(cu_role_name((enum cu_role)5), "none");
	assert_string_equal(cu_role_name((enum cu_role)9), "none");
}

/* ---- accepted signatures ---- */

static void expect_accepted(const char *who, const char *cn)
{
	struct cu_signer s;
	struct stn_diag d;
	uint8_t key_id[CU_SHA256_LEN];
	char serial[128], path[256];

	openssl_sign(who);
	if (verify_signed_by(who, CU_ROLE_RELEASE, fx.now, &s, &d) != 0)
		fail_msg("%s refused: %s: %s", who, d.where, d.text);
	assert_string_equal(s.cn, cn);
	capture(serial, sizeof(serial), "openssl x509 -in %s/%s.pem -noout -serial",
		fx.pki, who);
	assert_string_equal(s.serial, serial + strlen("serial="));
	assert_string_equal(s.issuer, "CN=Station Test Intermediate");
	assert_int_equal(s.stale_crl, 0);
	assert_true(s.not_after > fx.now + 365 * DAY);
	assert_true(s.not_after < fx.now + 3 * 365 * DAY);
	snprintf(path, sizeof(path), "%s/%s.spki", fx.dir, who);
	assert_int_equal(sh("openssl x509 -in %s/%s.pem -noout -pubkey | "
			    "openssl pkey -pubin -outform DER -out %s",
			    fx.pki, who, path),
			 0);
	digest_of(path, key_id);
	assert_memory_equal(s.key_id, key_id, sizeof(key_id));
}

static void verify_accepts_p256_release_signature(void **state)
{
	(void)state;
	expect_accepted("release1", "release-1");
}

static void verify_accepts_rsa_2048_release_signature(void **state)
{
	(void)state;
	expect_accepted("release2", "release-2");
}

static void verify_accepts_p384_release_signature(void **state)
{
	(void)state;
	expect_accepted("release3", "release-3");
}

static void distinct_keys_have_distinct_key_ids(void **state)
{
	struct cu_signer a, b;
	struct stn_diag d;

	(void)state;
	openssl_sign("release1");
	openssl_sign("release3");
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now, &a, &d), 0);
	assert_int_equal(verify_signed_by("release3", CU_ROLE_RELEASE, fx.now, &b, &d), 0);
	assert_memory_not_equal(a.key_id, b.key_id, sizeof(a.key_id));
}

static void cert_check_accepts_the_station_certificate(void **state)
{
	struct cu_signer s;
	struct stn_diag d;
	char pem[160];

	(void)state;
	snprintf(pem, sizeof(pem), "%s/station.pem", fx.pki);
	stn_diag_init(&d);
	assert_int_equal(cu_cert_check(fx.trust, pem, CU_ROLE_STATION, fx.now, &s, &d), 0);
	assert_string_equal(s.cn, "STN-0042");
	assert_int_equal(cu_cert_check(fx.trust, pem, CU_ROLE_RELEASE, fx.now, &s, &d),
			 STN_E_ROLE);
	assert_says(&d, "signer CN STN-0042 holds role station, not release");
}

/* formats §2 and §10: the delivery role is a role like the others, with
 * the keyUsage of a key that agrees on or receives keys. */
static void cert_check_accepts_delivery_certificates_for_delivery_only(
	void **state)
{
	struct cu_signer s;
	struct stn_diag d;
	char pem[160];

	(void)state;
	snprintf(pem, sizeof(pem), "%s/delivery.pem", fx.pki);
	stn_diag_init(&d);
	assert_int_equal(cu_cert_check(fx.trust, pem, CU_ROLE_DELIVERY, fx.now,
				       &s, &d),
			 0);
	assert_string_equal(s.cn, "delivery-STN-0042");
	assert_int_equal(cu_cert_check(fx.trust, pem, CU_ROLE_STATION, fx.now,
				       &s, &d),
			 STN_E_CHAIN);
	assert_says(&d, "delivery-STN-0042 has a keyUsage without "
			"digitalSignature");
	snprintf(pem, sizeof(pem), "%s/delivery-rsa.pem", fx.pki);
	stn_diag_init(&d);
	assert_int_equal(cu_cert_check(fx.trust, pem, CU_ROLE_DELIVERY, fx.now,
				       &s, &d),
			 0);
	/* A station certificate (keyUsage digitalSignature) is no delivery
	 * certificate, for its role and for its keyUsage. */
	snprintf(pem, sizeof(pem), "%s/station.pem", fx.pki);
	stn_diag_init(&d);
	assert_int_equal(cu_cert_check(fx.trust, pem, CU_ROLE_DELIVERY, fx.now,
				       &s, &d),
			 STN_E_CHAIN);
	assert_says(&d, "keyUsage without keyAgreement");
	snprintf(pem, sizeof(pem), "%s/release2.pem", fx.pki);
	stn_diag_init(&d);
	assert_int_equal(cu_cert_check(fx.trust, pem, CU_ROLE_DELIVERY, fx.now,
				       &s, &d),
			 STN_E_CHAIN);
	assert_says(&d, "keyUsage without keyEncipherment");
}

static void delivery_and_station_roles_on_one_key_are_refused_for_both(
	void **state)
{
	struct stn_diag d;
	char pem[160];

	(void)state;
	snprintf(pem, sizeof(pem), "%s/delivery-tworole.pem", fx.pki);
	for (int i = 0; i < 2; i++) {
		stn_diag_init(&d);
		assert_int_equal(cu_cert_check(fx.trust, pem,
					       i ? CU_ROLE_STATION
						 : CU_ROLE_DELIVERY,
					       fx.now, NULL, &d),
				 STN_E_TWOROLES);
		assert_says(&d, "holds roles station and delivery; one key "
				"may hold one station role");
	}
}

static void verify_refuses_the_delivery_role_which_signs_nothing(void **state)
{
	struct stn_diag d;
	char pem[160], sig[160];

	(void)state;
	snprintf(pem, sizeof(pem), "%s/delivery.pem", fx.pki);
	snprintf(sig, sizeof(sig), "%s/any.sig", fx.dir);
	stn_diag_init(&d);
	assert_int_equal(cu_sig_verify(fx.trust, fx.digest, sig, pem,
				       CU_ROLE_DELIVERY, fx.now, NULL, &d),
			 STN_E_USAGE);
	assert_says(&d, "the delivery role signs nothing");
}

/* ---- refusals ---- */

static void verify_refuses_wrong_role(void **state)
{
	(void)state;
	expect_refusal("wrongrole", CU_ROLE_RELEASE, fx.now, STN_E_ROLE,
		       "signer CN wrong-role holds role custody, not release",
		       NULL);
}

static void verify_refuses_two_role_certificate(void **state)
{
	(void)state;
	expect_refusal("tworole", CU_ROLE_RELEASE, fx.now, STN_E_TWOROLES,
		       "two-role", "release and custody");
	/* ...for each of the roles it carries. */
	expect_refusal("tworole", CU_ROLE_CUSTODY, fx.now, STN_E_TWOROLES,
		       "two-role", "one station role");
}

static void verify_refuses_certificate_without_role(void **state)
{
	(void)state;
	expect_refusal("norole", CU_ROLE_RELEASE, fx.now, STN_E_ROLE,
		       "signer CN no-role holds no station role, not release",
		       NULL);
}

static void verify_refuses_expired_certificate(void **state)
{
	(void)state;
	expect_refusal("expired", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       "CN=expired-release expired", "session started");
}

static void verify_refuses_not_yet_valid_certificate(void **state)
{
	(void)state;
	expect_refusal("future", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       "CN=future-release is not valid before", NULL);
}

static void verify_refuses_revoked_signer_naming_serial_and_issuer(void **state)
{
	char serial[128];

	(void)state;
	capture(serial, sizeof(serial),
		"openssl x509 -in %s/revoked.pem -noout -serial", fx.pki);
	expect_refusal("revoked", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       serial + strlen("serial="),
		       "issued by CN=Station Test Intermediate is revoked");
}

/* The CRL was made after `at`; what it says still counts. */
static void verify_applies_crl_issued_after_the_given_time(void **state)
{
	(void)state;
	expect_refusal("revoked", CU_ROLE_RELEASE, fx.now - DAY / 2,
		       STN_E_CHAIN, "is revoked", NULL);
}

static void verify_refuses_unknown_root(void **state)
{
	(void)state;
	expect_refusal("other-release", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       "does not verify", "not correctly signed by the trusted CA");
}

static void verify_refuses_p521_signer_key(void **state)
{
	(void)state;
	expect_refusal("p521", CU_ROLE_RELEASE, fx.now, STN_E_ALGORITHM,
		       "p521-release has an EC key on secp521r1", NULL);
}

static void verify_refuses_leaf_key_usage_without_digital_signature(void **state)
{
	(void)state;
	expect_refusal("nodigsig", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       "keyUsage without digitalSignature", NULL);
}

static void verify_refuses_flipped_byte_in_file(void **state)
{
	struct stn_diag d;
	uint8_t saved[CU_SHA256_LEN];
	char other[160];

	(void)state;
	openssl_sign("release1");
	snprintf(other, sizeof(other), "%s/flipped", fx.dir);
	assert_int_equal(sh("sed 's/sequence = 42/sequence = 43/' %s > %s",
			    fx.doc, other),
			 0);
	memcpy(saved, fx.digest, sizeof(saved));
	digest_of(other, fx.digest);
	assert_memory_not_equal(saved, fx.digest, sizeof(saved));
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_SIGNATURE);
	memcpy(fx.digest, saved, sizeof(saved));
	assert_says(&d, "signature by release-1 does not verify");
	assert_non_null(strstr(d.where, "manifest.release1.sig"));
}

static void verify_refuses_truncated_signature(void **state)
{
	struct stn_diag d;

	(void)state;
	openssl_sign("release1");
	assert_int_equal(sh("truncate -s -5 %s.release1.sig", fx.doc), 0);
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_SIGNATURE);
	assert_says(&d, "does not verify");
	assert_int_equal(sh("truncate -s 0 %s.release1.sig", fx.doc), 0);
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_SIGNATURE);
}

static void verify_refuses_symlinked_signature_and_chain(void **state)
{
	struct stn_diag d;

	(void)state;
	openssl_sign("release1");
	assert_int_equal(sh("cd %s && mv manifest.release1.sig real.sig && "
			    "ln -s real.sig manifest.release1.sig",
			    fx.dir),
			 0);
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_UNSAFE);
	assert_says(&d, "symbolic link");
	openssl_sign("release3");
	assert_int_equal(sh("cd %s && mv manifest.release3.pem real.pem && "
			    "ln -s real.pem manifest.release3.pem",
			    fx.dir),
			 0);
	assert_int_equal(verify_signed_by("release3", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_UNSAFE);
	assert_non_null(strstr(d.where, "manifest.release3.pem"));
	assert_int_equal(sh("rm -f %s/manifest.release1.sig %s/manifest.release3.pem",
			    fx.dir, fx.dir),
			 0);
}

static void verify_refuses_oversized_and_missing_files(void **state)
{
	struct stn_diag d;

	(void)state;
	openssl_sign("release2");
	assert_int_equal(sh("head -c 3000 /dev/zero > %s.release2.sig", fx.doc), 0);
	assert_int_equal(verify_signed_by("release2", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_TOOBIG);
	assert_says(&d, "3000 bytes");
	openssl_sign("release2");
	assert_int_equal(sh("head -c 70000 /dev/zero > %s.release2.pem", fx.doc), 0);
	assert_int_equal(verify_signed_by("release2", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_TOOBIG);
	assert_int_equal(sh("rm %s.release2.sig", fx.doc), 0);
	assert_int_equal(verify_signed_by("release2", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_IO);
	assert_says(&d, "No such file");
}

static void verify_refuses_garbage_chain(void **state)
{
	struct stn_diag d;

	(void)state;
	openssl_sign("release1");
	assert_int_equal(sh("printf -- '-----BEGIN CERTIFICATE-----\\nAAAA\\n"
			    "-----END CERTIFICATE-----\\n' > %s.release1.pem",
			    fx.doc),
			 0);
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_CHAIN);
	assert_says(&d, "does not parse");
}

static void verify_refuses_unknown_role(void **state)
{
	struct stn_diag d;

	(void)state;
	openssl_sign("release1");
	assert_int_equal(verify_signed_by("release1", CU_ROLE_NONE, fx.now, NULL, &d),
			 STN_E_USAGE);
}

/* ---- time ---- */

static void verify_decides_validity_at_the_given_time_not_the_wall_clock(void **state)
{
	struct cu_signer s;
	struct stn_diag d;

	(void)state;
	openssl_sign("expired");
	openssl_sign("future");
	openssl_sign("release1");
	/* Inside each certificate's validity: accepted. */
	assert_int_equal(verify_signed_by("expired", CU_ROLE_RELEASE, fx.now - 500 * DAY, &s, &d), 0);
	assert_int_equal(verify_signed_by("future", CU_ROLE_RELEASE, fx.now + 400 * DAY, &s, &d), 0);
	/* Outside: refused, though the wall clock would say otherwise. */
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now - 30 * DAY, &s, &d),
			 STN_E_CHAIN);
	assert_says(&d, "CN=release-1 is not valid before");
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now + 3 * 365 * DAY, &s, &d),
			 STN_E_CHAIN);
	assert_says(&d, "CN=release-1 expired");
}

static void stale_crl_is_reported_under_the_warn_policy(void **state)
{
	struct cu_signer s;
	struct stn_diag d;

	(void)state;
	openssl_sign("release1");
	/* crl/inter.crl.pem has nextUpdate 30 days from now. */
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now + 29 * DAY, &s, &d), 0);
	assert_int_equal(s.stale_crl, 0);
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now + 31 * DAY, &s, &d), 0);
	assert_int_equal(s.stale_crl, 1);
}

static void stale_crl_is_refused_under_the_refuse_policy(void **state)
{
	struct stn_diag d;
	char when[CU_TIME_LEN + 1], next[80];

	(void)state;
	openssl_sign("release1");
	cu_trust_set_stale_crl_refuse(fx.trust, 1);
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now + 29 * DAY, NULL, &d), 0);
	assert_int_equal(verify_signed_by("release1", CU_ROLE_RELEASE, fx.now + 31 * DAY, NULL, &d),
			 STN_E_CHAIN);
	cu_trust_set_stale_crl_refuse(fx.trust, 0);
	assert_says(&d, "CRL of CN=Station Test Intermediate is past its nextUpdate 20");
	/* ...and the time named is the CRL's own. */
	capture(next, sizeof(next),
		"openssl crl -in %s/crl/inter.crl.pem -noout -nextupdate -dateopt iso_8601",
		fx.pki);
	snprintf(when, sizeof(when), "%.10sT%.8sZ", next + strlen("nextUpdate="),
		 next + strlen("nextUpdate=") + 11);
	assert_says(&d, when);
}

/* ---- trust store ---- */

static struct cu_trust *load(const char *anchors, const char *crl_dir,
			     int want, struct stn_diag *d)
{
	struct cu_trust *t = NULL;
	char a[256], c[256];

	snprintf(a, sizeof(a), "%s/%s", fx.pki, anchors);
	snprintf(c, sizeof(c), "%s/%s", fx.dir, crl_dir ? crl_dir : "");
	stn_diag_init(d);
	assert_int_equal(cu_trust_load(a, crl_dir ? c : NULL, &t, d), want);
	return t;
}

static int revoked_accepted_by(const struct cu_trust *t)
{
	char sig[256], pem[256];
	struct stn_diag d;

	openssl_sign("revoked");
	snprintf(sig, sizeof(sig), "%s.revoked.sig", fx.doc);
	snprintf(pem, sizeof(pem), "%s.revoked.pem", fx.doc);
	stn_diag_init(&d);
	return cu_sig_verify(t, fx.digest, sig, pem, CU_ROLE_RELEASE, fx.now,
			     NULL, &d) == 0;
}

static void trust_load_keeps_the_newest_crl_of_an_issuer(void **state)
{
	struct cu_trust *t;
	struct stn_diag d;

	(void)state;
	/* Both file orders: the newer CRL must win either way. */
	assert_int_equal(sh("cd %s && mkdir -p c1 c2 c3 && "
			    "cp pki/crl-old/inter.crl.pem c1/a.pem && cp pki/crl/inter.crl.pem c1/b.pem && "
			    "cp pki/crl/inter.crl.pem c2/a.pem && cp pki/crl-old/inter.crl.pem c2/b.pem && "
			    "openssl crl -in pki/crl-old/inter.crl.pem -outform DER -out c3/old.der && "
			    "touch c3/.hidden",
			    fx.dir),
			 0);
	t = load("roots.pem", "c1", 0, &d);
	assert_false(revoked_accepted_by(t));
	cu_trust_free(t);
	t = load("roots.pem", "c2", 0, &d);
	assert_false(revoked_accepted_by(t));
	cu_trust_free(t);
	/* A DER CRL that revokes nothing; dot files are skipped. */
	t = load("roots.pem", "c3", 0, &d);
	assert_true(revoked_accepted_by(t));
	cu_trust_free(t);
	t = load("roots.pem", NULL, 0, &d);
	assert_true(revoked_accepted_by(t));
	cu_trust_free(t);
}

static void trust_add_crl_replaces_only_with_a_newer_crl(void **state)
{
	struct cu_trust *t;
	struct stn_diag d;
	char crl[256], old[256], chain[256];
	int replaced = -1;

	(void)state;
	snprintf(crl, sizeof(crl), "%s/crl/inter.crl.pem", fx.pki);
	snprintf(old, sizeof(old), "%s/crl-old/inter.crl.pem", fx.pki);
	snprintf(chain, sizeof(chain), "%s/release1.pem", fx.pki);
	assert_int_equal(sh("mkdir -p %s/c4 && cp %s %s/c4/", fx.dir, old, fx.dir), 0);
	t = load("roots.pem", "c4", 0, &d);
	assert_true(revoked_accepted_by(t));
	/* The intermediate's CRL cannot be checked without the intermediate. */
	stn_diag_init(&d);
	assert_int_equal(cu_trust_add_crl(t, crl, NULL, fx.now, &replaced, &d), STN_E_CHAIN);
	assert_says(&d, "CRL of CN=Station Test Intermediate is not signed by a CA of the trust store");
	assert_true(revoked_accepted_by(t));
	stn_diag_init(&d);
	assert_int_equal(cu_trust_add_crl(t, crl, chain, fx.now, &replaced, &d), 0);
	assert_int_equal(replaced, 1);
	assert_false(revoked_accepted_by(t));
	assert_int_equal(cu_trust_add_crl(t, old, chain, fx.now, &replaced, &d), 0);
	assert_int_equal(replaced, 0);
	assert_false(revoked_accepted_by(t));
	cu_trust_free(t);
}

static void trust_load_refuses_unusable_anchors_and_crls(void **state)
{
	struct cu_trust *t;
	struct stn_diag d;

	(void)state;
	t = load("missing.pem", NULL, STN_E_IO, &d);
	assert_null(t);
	t = load("release1.pem", NULL, STN_E_CONFIG, &d);
	assert_says(&d, "anchor 1 (CN=release-1) is not a CA certificate");
	assert_int_equal(sh("cd %s && ln -sf roots.pem link.pem && mkdir -p %s/c5 && "
			    "echo junk > %s/c5/junk.pem",
			    fx.pki, fx.dir, fx.dir),
			 0);
	t = load("link.pem", NULL, STN_E_CONFIG, &d);
	assert_says(&d, "symbolic link");
	t = load("release1.key", NULL, STN_E_CONFIG, &d);
	assert_says(&d, "holds no PEM certificate");
	t = load("roots.pem", "c5", STN_E_CONFIG, &d);
	assert_says(&d, "CRL does not parse");
	assert_non_null(strstr(d.where, "c5/junk.pem"));
	t = load("roots.pem", "nodir", STN_E_IO, &d);
	assert_null(t);
	cu_trust_free(NULL);
}

/* ---- RFC 5280 odd certificates (tests/pki.sh) ---- */

static void expect_verifies(const char *who, enum cu_role role, const char *cn)
{
	struct cu_signer s;
	struct stn_diag d;

	openssl_sign(who);
	if (verify_signed_by(who, role, fx.now, &s, &d) != 0)
		fail_msg("%s refused: %s: %s", who, d.where, d.text);
	assert_string_equal(s.cn, cn);
}

/* A CA could mint custody or exception certificates with fresh keys and
 * get past one key, one duty: no CA signs as any role. */
static void verify_refuses_a_ca_leaf_for_every_role(void **state)
{
	(void)state;
	for (enum cu_role r = CU_ROLE_RELEASE; r <= CU_ROLE_STATION; r++) {
		expect_refusal("caleaf", r, fx.now, STN_E_ROLE,
			       "signer CN ca-leaf is a CA (basicConstraints "
			       "CA:TRUE)",
			       "a CA may not sign as");
		expect_refusal("kcsleaf", r, fx.now, STN_E_ROLE,
			       "signer CN kcs-leaf is a CA (keyUsage "
			       "keyCertSign)",
			       cu_role_name(r));
	}
}

static void verify_refuses_a_role_with_any_extended_key_usage(void **state)
{
	(void)state;
	expect_refusal("anyeku", CU_ROLE_RELEASE, fx.now, STN_E_ROLE,
		       "signer CN any-eku also carries anyExtendedKeyUsage",
		       NULL);
}

/* An intermediate's EKU bounds the roles of the leaves under it. */
static void verify_refuses_a_role_outside_an_intermediates_eku(void **state)
{
	(void)state;
	expect_verifies("ekucustody", CU_ROLE_CUSTODY, "eku-custody");
	expect_refusal("ekurelease", CU_ROLE_RELEASE, fx.now, STN_E_ROLE,
		       "CA CN=EKU Custody Intermediate above signer CN "
		       "eku-release does not allow role release",
		       NULL);
}

static void verify_refuses_ed25519_and_dsa_keys_by_algorithm(void **state)
{
	(void)state;
	/* openssl dgst cannot sign with Ed25519; the chain is refused before
	 * the signature is read, so any bytes will do. */
	assert_int_equal(sh("cp %s/ed25519.pem %s.ed25519.pem && "
			    "head -c 64 /dev/urandom > %s.ed25519.sig",
			    fx.pki, fx.doc, fx.doc),
			 0);
	expect_refusal_as_is("ed25519", CU_ROLE_RELEASE, fx.now, STN_E_ALGORITHM,
		       "key algorithm not accepted", "Ed25519");
	expect_refusal("dsa", CU_ROLE_RELEASE, fx.now, STN_E_ALGORITHM,
		       "key algorithm not accepted", "DSA");
}

static void verify_names_basic_constraints_key_usage_and_path_length(void **state)
{
	(void)state;
	expect_refusal("undernotca", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       "CN=Not A CA", "is not a CA (basicConstraints)");
	expect_refusal("undernokcs", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       "CN=No KeyCertSign CA",
		       "keyUsage does not allow keyCertSign");
	expect_refusal("pathlen", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       "CN=PathLen Zero CA", "pathLenConstraint 0");
}

/* Intermediates in any order, and a cross-certificate (inter's name and
 * key under an untrusted root) ahead of the one that leads to the
 * anchor: a valid path exists, so the chain verifies. */
static void verify_builds_paths_whatever_the_order_of_intermediates(void **state)
{
	(void)state;
	expect_verifies("deep", CU_ROLE_RELEASE, "deep-release");
	/* deep-rev.pem: the same chain, the intermediates swapped. */
	assert_int_equal(sh("cp %s/deep-rev.pem %s/deep.pem.keep && "
			    "cp %s/deep.pem %s/deep.pem.orig && "
			    "cp %s/deep-rev.pem %s/deep.pem",
			    fx.pki, fx.dir, fx.pki, fx.dir, fx.pki, fx.pki),
			 0);
	expect_verifies("deep", CU_ROLE_RELEASE, "deep-release");
	assert_int_equal(sh("cp %s/deep.pem.orig %s/deep.pem", fx.dir, fx.pki), 0);
	assert_int_equal(sh("cp %s/cross.pem %s/release1.pem.x && "
			    "cp %s/release1.pem %s/release1.pem.orig && "
			    "cp %s/cross.pem %s/release1.pem",
			    fx.pki, fx.dir, fx.pki, fx.dir, fx.pki, fx.pki),
			 0);
	expect_verifies("release1", CU_ROLE_RELEASE, "release-1");
	assert_int_equal(sh("cp %s/release1.pem.orig %s/release1.pem", fx.dir,
			    fx.pki),
			 0);
	/* A chain with no path to an anchor still names why. */
	expect_refusal("other-release", CU_ROLE_RELEASE, fx.now, STN_E_CHAIN,
		       "does not verify", NULL);
}

/* ---- strict DER signatures ---- */

static size_t read_sig(const char *who, uint8_t *buf, size_t cap)
{
	char path[256];

	snprintf(path, sizeof(path), "%s.%s.sig", fx.doc, who);
	return slurp(path, buf, cap);
}

static void write_sig(const char *who, const uint8_t *buf, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s.%s.sig", fx.doc, who);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* The signature as openssl made it, with one BER liberty; openssl dgst
 * -verify refuses each (checked below), so must we. */
static void expect_sig_refused_as_not_der(const char *who, const uint8_t *sig,
					  size_t len)
{
	struct stn_diag d;
	char path[256];

	write_sig(who, sig, len);
	snprintf(path, sizeof(path), "%s.%s", fx.doc, who);
	assert_int_not_equal(sh("openssl x509 -in %s.pem -noout -pubkey > %s.pub && "
				"openssl dgst -sha256 -verify %s.pub -signature %s.sig "
				"%s >/dev/null 2>&1",
				path, path, path, path, fx.doc),
			     0);
	assert_int_equal(verify_signed_by(who, CU_ROLE_RELEASE, fx.now, NULL, &d),
			 STN_E_SIGNATURE);
	diag_show(&d);
	assert_says(&d, "is not in DER");
}

static void verify_refuses_ber_ecdsa_signatures(void **state)
{
	uint8_t good[256], bad[260];
	size_t n, rlen;

	(void)state;
	openssl_sign("release1");
	n = read_sig("release1", good, sizeof(good));
	assert_true(n > 8 && n < 128 && good[0] == 0x30 && good[1] == n - 2);
	/* The outer SEQUENCE length in long form: 30 81 LL. */
	bad[0] = 0x30;
	bad[1] = 0x81;
	memcpy(bad + 2, good + 1, n - 1);
	expect_sig_refused_as_not_der("release1", bad, n + 1);
	/* r padded with a zero octet it does not need. */
	rlen = good[3];
	bad[0] = 0x30;
	bad[1] = (uint8_t)(good[1] + 1);
	bad[2] = 0x02;
	bad[3] = (uint8_t)(rlen + 1);
	bad[4] = 0x00;
	memcpy(bad + 5, good + 4, n - 4);
	expect_sig_refused_as_not_der("release1", bad, n + 1);
	/* The good one still passes. */
	write_sig("release1", good, n);
	expect_verifies("release1", CU_ROLE_RELEASE, "release-1");
}

static void verify_refuses_rsa_signature_of_the_wrong_length(void **state)
{
	uint8_t good[600], bad[600];
	size_t n;

	(void)state;
	openssl_sign("release2");
	n = read_sig("release2", good, sizeof(good));
	assert_int_equal(n, 256);
	bad[0] = 0x00;
	memcpy(bad + 1, good, n);
	expect_sig_refused_as_not_der("release2", bad, n + 1);
}

/* ---- CRL files as openssl reads them (RFC 7468 §2: whitespace) ---- */

static void crls_with_trailing_whitespace_parse(void **state)
{
	struct cu_trust *t;
	struct stn_diag d;
	char crl[256], chain[256];
	int replaced = -1;

	(void)state;
	assert_int_equal(sh("cd %s && mkdir -p c6 c7 && "
			    "{ cat pki/crl/inter.crl.pem; printf '\\n \\t\\n\\n'; } > c6/ws.pem && "
			    "{ cat pki/crl-old/inter.crl.pem; printf '\\r\\n\\n'; } > c7/old.pem && "
			    "openssl crl -in c6/ws.pem -noout",
			    fx.dir),
			 0);
	t = load("roots.pem", "c6", 0, &d);
	if (!t)
		fail_msg("%s: %s", d.where, d.text);
	assert_false(revoked_accepted_by(t));
	cu_trust_free(t);
	t = load("roots.pem", "c7", 0, &d);
	if (!t)
		fail_msg("%s: %s", d.where, d.text);
	assert_true(revoked_accepted_by(t));
	snprintf(crl, sizeof(crl), "%s/c6/ws.pem", fx.dir);
	snprintf(chain, sizeof(chain), "%s/release1.pem", fx.pki);
	stn_diag_init(&d);
	if (cu_trust_add_crl(t, crl, chain, fx.now, &replaced, &d) != 0)
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(replaced, 1);
	assert_false(revoked_accepted_by(t));
	cu_trust_free(t);
}

/* ---- signing ---- */

static struct cu_key *key(const char *who_key, const char *who_pem, int want,
			  struct stn_diag *d)
{
	struct cu_key *k = NULL;
	char kp[256], cp[256];

	snprintf(kp, sizeof(kp), "%s/%s.key", fx.pki, who_key);
	snprintf(cp, sizeof(cp), "%s/%s.pem", fx.pki, who_pem);
	stn_diag_init(d);
	assert_int_equal(cu_key_load(kp, cp, &k, d), want);
	return k;
}

/* cu_sign_file's output checked by openssl and by cu_sig_verify. */
static void expect_signed_file_verifies(const char *who, const char *label)
{
	struct cu_key *k;
	struct stn_diag d;
	struct stat st;
	char file[160], base[200], sig[256], pem[256];

	k = key(who, who, 0, &d);
	snprintf(file, sizeof(file), "%s/report-%s.json", fx.dir, who);
	assert_int_equal(sh("echo '{\"station\": \"STN-0042\"}' > %s", file), 0);
	stn_diag_init(&d);
	assert_int_equal(cu_sign_file(k, file, label, &d), 0);
	cu_key_free(k);
	snprintf(base, sizeof(base), "%s%s%s", file, label ? "." : "",
		 label ? label : "");
	snprintf(sig, sizeof(sig), "%s.sig", base);
	snprintf(pem, sizeof(pem), "%s.pem", base);
	assert_int_equal(stat(sig, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(stat(pem, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(sh("openssl x509 -pubkey -noout -in %s > %s.pub && "
			    "openssl dgst -sha256 -verify %s.pub -signature %s %s >/dev/null",
			    pem, base, base, sig, file),
			 0);
	assert_int_equal(sh("cmp -s %s %s/%s.pem", pem, fx.pki, who), 0);
	{
		uint8_t digest[CU_SHA256_LEN];
		digest_of(file, digest);
		stn_diag_init(&d);
		assert_int_equal(cu_sig_verify(fx.trust, digest, sig, pem,
					       CU_ROLE_RELEASE, fx.now, NULL, &d),
				 0);
	}
}

static void sign_file_output_verifies_with_openssl_ec(void **state)
{
	(void)state;
	expect_signed_file_verifies("release1", NULL);
	expect_signed_file_verifies("release3", NULL);
}

static void sign_file_output_verifies_with_openssl_rsa(void **state)
{
	(void)state;
	expect_signed_file_verifies("release2", NULL);
}

static void sign_file_with_label_writes_labelled_pair(void **state)
{
	struct cu_key *k;
	struct stn_diag d;

	(void)state;
	expect_signed_file_verifies("release1", "site-7");
	k = key("release1", "release1", 0, &d);
	assert_int_equal(cu_sign_file(k, fx.doc, "Site", &d), STN_E_USAGE);
	assert_says(&d, "does not match");
	stn_diag_init(&d);
	assert_int_equal(cu_sign_file(k, fx.doc, "-site", &d), STN_E_USAGE);
	stn_diag_init(&d);
	assert_int_equal(cu_sign_file(k, fx.doc, "a23456789012345678901234567890123", &d),
			 STN_E_USAGE);
	stn_diag_init(&d);
	assert_int_equal(cu_sign_file(k, fx.doc, "a/b", &d), STN_E_USAGE);
	cu_key_free(k);
}

static void key_load_refuses_key_that_does_not_match_certificate(void **state)
{
	struct cu_key *k;
	struct stn_diag d;

	(void)state;
	k = key("release1", "release2", STN_E_CONFIG, &d);
	assert_null(k);
	assert_says(&d, "does not match the certificate CN release-2");
	k = key("release1", "missing", STN_E_IO, &d);
	assert_null(k);
	k = key("root", "release1", STN_E_CONFIG, &d);
	assert_null(k);
	k = key("p521", "p521", STN_E_CONFIG, &d);
	assert_says(&d, "secp521r1");
	cu_key_free(NULL);
}

static void key_sign_refuses_a_small_buffer(void **state)
{
	struct cu_key *k;
	struct stn_diag d;
	uint8_t sig[CU_SIG_MAX];
	size_t len = 0, pem_len = 0;
	const char *pem;
	char path[160];
	static uint8_t file[1 << 16];
	size_t n;

	(void)state;
	k = key("release2", "release2", 0, &d);
	assert_int_equal(cu_key_sign(k, fx.digest, sig, 8, &len, &d), STN_E_USAGE);
	stn_diag_init(&d);
	assert_int_equal(cu_key_sign(k, fx.digest, sig, sizeof(sig), &len, &d), 0);
	assert_int_equal(len, 256);
	/* The chain is the file as loaded. */
	pem = cu_key_chain_pem(k, &pem_len);
	snprintf(path, sizeof(path), "%s/release2.pem", fx.pki);
	n = slurp(path, file, sizeof(file));
	assert_int_equal(pem_len, n);
	assert_memory_equal(pem, file, n);
	assert_int_equal(pem[pem_len], '\0');
	cu_key_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(role_oids_encode_the_uuid_arc),
		cmocka_unit_test(role_oids_are_the_ones_openssl_puts_in_certificates),
		cmocka_unit_test(role_names_are_the_spec_words),
		cmocka_unit_test(verify_accepts_p256_release_signature),
		cmocka_unit_test(verify_accepts_rsa_2048_release_signature),
		cmocka_unit_test(verify_accepts_p384_release_signature),
		cmocka_unit_test(distinct_keys_have_distinct_key_ids),
		cmocka_unit_test(cert_check_accepts_the_station_certificate),
		cmocka_unit_test(cert_check_accepts_delivery_certificates_for_delivery_only),
		cmocka_unit_test(delivery_and_station_roles_on_one_key_are_refused_for_both),
		cmocka_unit_test(verify_refuses_the_delivery_role_which_signs_nothing),
		cmocka_unit_test(verify_refuses_wrong_role),
		cmocka_unit_test(verify_refuses_two_role_certificate),
		cmocka_unit_test(verify_refuses_certificate_without_role),
		cmocka_unit_test(verify_refuses_expired_certificate),
		cmocka_unit_test(verify_refuses_not_yet_valid_certificate),
		cmocka_unit_test(verify_refuses_revoked_signer_naming_serial_and_issuer),
		cmocka_unit_test(verify_applies_crl_issued_after_the_given_time),
		cmocka_unit_test(verify_refuses_unknown_root),
		cmocka_unit_test(verify_refuses_p521_signer_key),
		cmocka_unit_test(verify_refuses_leaf_key_usage_without_digital_signature),
		cmocka_unit_test(verify_refuses_flipped_byte_in_file),
		cmocka_unit_test(verify_refuses_truncated_signature),
		cmocka_unit_test(verify_refuses_symlinked_signature_and_chain),
		cmocka_unit_test(verify_refuses_oversized_and_missing_files),
		cmocka_unit_test(verify_refuses_garbage_chain),
		cmocka_unit_test(verify_refuses_unknown_role),
		cmocka_unit_test(verify_decides_validity_at_the_given_time_not_the_wall_clock),
		cmocka_unit_test(stale_crl_is_reported_under_the_warn_policy),
		cmocka_unit_test(stale_crl_is_refused_under_the_refuse_policy),
		cmocka_unit_test(trust_load_keeps_the_newest_crl_of_an_issuer),
		cmocka_unit_test(trust_add_crl_replaces_only_with_a_newer_crl),
		cmocka_unit_test(trust_load_refuses_unusable_anchors_and_crls),
		cmocka_unit_test(sign_file_output_verifies_with_openssl_ec),
		cmocka_unit_test(sign_file_output_verifies_with_openssl_rsa),
		cmocka_unit_test(sign_file_with_label_writes_labelled_pair),
		cmocka_unit_test(key_load_refuses_key_that_does_not_match_certificate),
		cmocka_unit_test(key_sign_refuses_a_small_buffer),
		cmocka_unit_test(verify_refuses_a_ca_leaf_for_every_role),
		cmocka_unit_test(verify_refuses_a_role_with_any_extended_key_usage),
		cmocka_unit_test(verify_refuses_a_role_outside_an_intermediates_eku),
		cmocka_unit_test(verify_refuses_ed25519_and_dsa_keys_by_algorithm),
		cmocka_unit_test(verify_names_basic_constraints_key_usage_and_path_length),
		cmocka_unit_test(verify_builds_paths_whatever_the_order_of_intermediates),
		cmocka_unit_test(verify_refuses_ber_ecdsa_signatures),
		cmocka_unit_test(verify_refuses_rsa_signature_of_the_wrong_length),
		cmocka_unit_test(crls_with_trailing_whitespace_parse),
	};

	/* tests/run.sh runs suites from the repository root. */
	if (access("tests/pki.sh", R_OK) != 0) {
		printf("skip: tests/pki.sh not found; run from the repository root\n");
		return 77;
	}
	if (system("openssl version >/dev/null 2>&1") != 0) {
		printf("skip: the openssl command is not installed\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
