/* tests/test_delivery.c: encrypted delivery (formats §10, custody/delivery.h
 * and station/base/aes_ctr.h) against the openssl CLI both ways: key files
 * made with openssl alone unwrap here, key files made here open with
 * openssl alone, and AES-256-CTR matches `openssl enc -aes-256-ctr`. */
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

#include "custody/delivery.h"
#include "custody/layout.h"
#include "custody/manifest.h"
#include "custody/trust.h"
#include "station/base/aes_ctr.h"
#include "station/base/error.h"
#include "station/base/hex.h"
#include "tests/helpers.h"

static struct {
	char *dir;
	char pki[4200];
	struct cu_trust *trust;
	int64_t now;
	uint8_t key[CU_CONTENT_KEY_LEN]; /* the content key, also dir/key.bin */
} fx;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st == -1 ? -1 : WEXITSTATUS(st);
}

/* Runs an openssl script in bundle directory b ($B) with the PKI in $P and
 * the recipient's files at $P/$WHO. */
static int script(const char *text, const char *b, const char *who)
{
	setenv("B", b, 1);
	setenv("P", fx.pki, 1);
	setenv("WHO", who, 1);
	return sh("%s", text);
}

static size_t slurp(const char *path, void *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void assert_says(const struct stn_diag *d, const char *words)
{
	if (!strstr(d->text, words) && !strstr(d->where, words))
		fail_msg("expected \"%s\" in \"%s: %s\"", words, d->where,
			 d->text);
}

static int setup(void **state)
{
	char path[4300];

	(void)state;
	if (th_pki_trust(&fx.dir, &fx.trust))
		return -1;
	snprintf(fx.pki, sizeof(fx.pki), "%s/pki", fx.dir);
	fx.now = (int64_t)time(NULL);
	for (size_t i = 0; i < sizeof(fx.key); i++)
		fx.key[i] = (uint8_t)(0x11 * i + 7);
	snprintf(path, sizeof(path), "%s/key.bin", fx.dir);
	th_write(path, fx.key, sizeof(fx.key));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_pki_free(fx.dir, fx.trust);
	return 0;
}

static struct cu_delivery_key *load(const char *who)
{
	struct cu_delivery_key *k = NULL;
	struct stn_diag d;
	char key[4300], pem[4300];

	snprintf(key, sizeof(key), "%s/%s.key", fx.pki, who);
	snprintf(pem, sizeof(pem), "%s/%s.pem", fx.pki, who);
	stn_diag_init(&d);
	if (cu_delivery_load(key, pem, fx.trust, fx.now, &k, &d))
		fail_msg("load %s: %s: %s", who, d.where, d.text);
	return k;
}

/* A bundle directory dir/NAME with keys/ made fresh. */
static void bundle(const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", fx.dir, name);
	assert_int_equal(sh("rm -rf '%s' && mkdir -p '%s/keys'", out, out), 0);
}

static void img_app(struct cu_image *img)
{
	memset(img, 0, sizeof(*img));
	snprintf(img->label, sizeof(img->label), "app");
	img->encrypted = 1;
}

/* ---- (a) key files made with the openssl CLI alone unwrap here ---- */

/* formats §10 ecdh-p256 with openssl only; writes b/keys/app.key. */
static const char ecdh_by_openssl[] =
	"set -e; cd \"$B\"; W=$P/$WHO.pem\n"
	"openssl x509 -in $W -noout -pubkey > r.pub\n"
	"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	"-out eph.key 2>/dev/null\n"
	"openssl pkeyutl -derive -inkey eph.key -peerkey r.pub -out z.bin\n"
	"openssl kdf -keylen 32 -kdfopt digest:SHA256 "
	"-kdfopt hexkey:$(od -An -tx1 -v z.bin | tr -d ' \\n') "
	"-kdfopt info:station-key-1 -binary -out kek.bin HKDF\n"
	"openssl enc -id-aes256-wrap -K $(od -An -tx1 -v kek.bin | tr -d ' \\n') "
	"-iv A6A6A6A6A6A6A6A6 -in ../key.bin -out wrapped.bin\n"
	"openssl pkey -in eph.key -pubout -outform DER -out eph.der\n"
	"{ echo 'format = station-key-1'; echo 'image = app'\n"
	"  echo \"recipient = $(openssl x509 -in $W -outform DER | "
	"openssl dgst -sha256 -r | cut -c1-64)\"\n"
	"  echo 'method = ecdh-p256'\n"
	"  echo \"ephemeral = $(openssl base64 -A -in eph.der)\"\n"
	"  echo \"wrapped = $(openssl base64 -A -in wrapped.bin)\"\n"
	"} > keys/app.key\n";

static const char rsa_by_openssl[] =
	"set -e; cd \"$B\"; W=$P/$WHO.pem\n"
	"openssl x509 -in $W -noout -pubkey > r.pub\n"
	"openssl pkeyutl -encrypt -pubin -inkey r.pub "
	"-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 "
	"-pkeyopt rsa_mgf1_md:sha256 -in ../key.bin -out wrapped.bin\n"
	"{ echo 'format = station-key-1'; echo 'image = app'\n"
	"  echo \"recipient = $(openssl x509 -in $W -outform DER | "
	"openssl dgst -sha256 -r | cut -c1-64)\"\n"
	"  echo 'method = rsa-oaep-sha256'\n"
	"  echo \"wrapped = $(openssl base64 -A -in wrapped.bin)\"\n"
	"} > keys/app.key\n";

static void expect_openssl_file_unwraps(const char *text, const char *who)
{
	struct cu_delivery_key *k = load(who);
	uint8_t got[CU_CONTENT_KEY_LEN];
	struct cu_image img;
	struct stn_diag d;
	char b[4300];

	bundle(who, b, sizeof(b));
	assert_int_equal(script(text, b, who), 0);
	img_app(&img);
	stn_diag_init(&d);
	if (cu_delivery_key_for(k, b, "media", &img, got, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_memory_equal(got, fx.key, sizeof(got));
	cu_delivery_free(k);
}

static void openssl_made_ecdh_key_file_unwraps(void **state)
{
	(void)state;
	expect_openssl_file_unwraps(ecdh_by_openssl, "delivery");
}

static void openssl_made_rsa_oaep_key_file_unwraps(void **state)
{
	(void)state;
	expect_openssl_file_unwraps(rsa_by_openssl, "delivery-rsa");
}

/* ---- (b) key files made here open with the openssl CLI alone ---- */

static void wrap_into(const char *who, const char *b)
{
	char cert[4300], path[4400], out[CU_KEYFILE_MAX];
	uint8_t rid[CU_SHA256_LEN];
	struct stn_diag d;
	size_t len = 0;

	snprintf(cert, sizeof(cert), "%s/%s.pem", fx.pki, who);
	snprintf(path, sizeof(path), "%s/keys/app.key", b);
	stn_diag_init(&d);
	if (cu_delivery_wrap(cert, fx.trust, fx.now, "app", fx.key, out,
			     sizeof(out), &len, rid, &d))
		fail_msg("wrap: %s: %s", d.where, d.text);
	th_write(path, out, len);
}

/* Pulls `key = value` out of keys/app.key into files the openssl
 * commands read. */
static const char fields[] =
	"set -e; cd \"$B\"; W=$P/$WHO\n"
	"v() { sed -n \"s/^$1 = //p\" keys/app.key; }\n"
	"test \"$(v recipient)\" = \"$(openssl x509 -in $W.pem -outform DER | "
	"openssl dgst -sha256 -r | cut -c1-64)\"\n"
	"v wrapped | openssl base64 -d -A -out wrapped.bin\n";

static void wrap_output_opens_with_openssl_ecdh(void **state)
{
	char b[4300], text[2048];

	(void)state;
	bundle("wrap-ecdh", b, sizeof(b));
	wrap_into("delivery", b);
	snprintf(text, sizeof(text), "%s%s", fields,
		 "grep -qx 'method = ecdh-p256' keys/app.key\n"
		 "v ephemeral | openssl base64 -d -A -out eph.der\n"
		 "openssl pkeyutl -derive -inkey $W.key -peerkey eph.der "
		 "-peerform DER -out z.bin\n"
		 "openssl kdf -keylen 32 -kdfopt digest:SHA256 "
		 "-kdfopt hexkey:$(od -An -tx1 -v z.bin | tr -d ' \\n') "
		 "-kdfopt info:station-key-1 -binary -out kek.bin HKDF\n"
		 "openssl enc -d -id-aes256-wrap "
		 "-K $(od -An -tx1 -v kek.bin | tr -d ' \\n') "
		 "-iv A6A6A6A6A6A6A6A6 -in wrapped.bin -out key.bin\n"
		 "cmp key.bin ../key.bin\n");
	assert_int_equal(script(text, b, "delivery"), 0);
}

static void wrap_output_opens_with_openssl_rsa_oaep(void **state)
{
	char b[4300], text[2048];

	(void)state;
	bundle("wrap-rsa", b, sizeof(b));
	wrap_into("delivery-rsa", b);
	snprintf(text, sizeof(text), "%s%s", fields,
		 "grep -qx 'method = rsa-oaep-sha256' keys/app.key\n"
		 "! grep -q '^ephemeral' keys/app.key\n"
		 "openssl pkeyutl -decrypt -inkey $W.key "
		 "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 "
		 "-pkeyopt rsa_mgf1_md:sha256 -in wrapped.bin -out key.bin\n"
		 "cmp key.bin ../key.bin\n");
	assert_int_equal(script(text, b, "delivery-rsa"), 0);
}

static void wrap_refuses_certificates_that_are_not_for_delivery(void **state)
{
	char cert[4300], out[CU_KEYFILE_MAX];
	struct stn_diag d;
	size_t len;

	(void)state;
	snprintf(cert, sizeof(cert), "%s/station.pem", fx.pki);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_wrap(cert, NULL, 0, "app", fx.key, out,
					  sizeof(out), &len, NULL, &d),
			 STN_E_USAGE);
	assert_says(&d, "its leaf holds the station role");
	snprintf(cert, sizeof(cert), "%s/delivery-tworole.pem", fx.pki);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_wrap(cert, NULL, 0, "app", fx.key, out,
					  sizeof(out), &len, NULL, &d),
			 STN_E_USAGE);
	assert_says(&d, "holds the station and delivery roles (one key, one "
			"duty)");
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_wrap(cert, fx.trust, fx.now, "app",
					  fx.key, out, sizeof(out), &len, NULL,
					  &d),
			 STN_E_USAGE);
	assert_says(&d, "one key may hold one station role");
	snprintf(cert, sizeof(cert), "%s/norole.pem", fx.pki);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_wrap(cert, NULL, 0, "app", fx.key, out,
					  sizeof(out), &len, NULL, &d),
			 STN_E_USAGE);
	assert_says(&d, "holds no station role");
}

/* ---- refusals when unwrapping ---- */

static void key_for_names_the_recipients_of_another_stations_bundle(
	void **state)
{
	struct cu_delivery_key *k = load("delivery");
	uint8_t got[CU_CONTENT_KEY_LEN];
	char b[4300], hex[65], want[200];
	struct cu_image img;
	struct stn_diag d;

	(void)state;
	bundle("other", b, sizeof(b));
	wrap_into("delivery2", b);
	img_app(&img);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_key_for(k, b, "media", &img, got, &d),
			 STN_E_IMAGE);
	assert_says(&d, "image app is encrypted for ");
	cu_hex(cu_delivery_recipient(k), CU_SHA256_LEN, hex);
	snprintf(want, sizeof(want),
		 "this station's delivery certificate is %.16s...", hex);
	assert_says(&d, want);
	assert_string_equal(d.where, "media/keys");
	/* Without a delivery key the same bundle is refused the same way. */
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_key_for(NULL, b, "media", &img, got, &d),
			 STN_E_IMAGE);
	assert_says(&d, "no delivery key configured");
	/* An image nobody wrapped a key for. */
	snprintf(img.label, sizeof(img.label), "boot");
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_key_for(k, b, "media", &img, got, &d),
			 STN_E_IMAGE);
	assert_says(&d, "image boot is encrypted for no recipient");
	cu_delivery_free(k);
}

static void parse_file(const char *b, struct cu_keyfile *kf)
{
	char path[4400], buf[CU_KEYFILE_MAX];
	struct stn_diag d;
	size_t n;

	snprintf(path, sizeof(path), "%s/keys/app.key", b);
	n = slurp(path, buf, sizeof(buf));
	stn_diag_init(&d);
	if (cu_keyfile_parse(buf, n, "keys/app.key", kf, &d))
		fail_msg("%s: %s", d.where, d.text);
}

static void unwrap_refuses_wrong_recipient_and_tampered_files(void **state)
{
	struct cu_delivery_key *k = load("delivery"), *r = load("delivery-rsa");
	struct cu_delivery_key *k2 = load("delivery2");
	struct cu_keyfile kf, t;
	uint8_t got[CU_CONTENT_KEY_LEN];
	struct stn_diag d;
	char b[4300];

	(void)state;
	bundle("tamper", b, sizeof(b));
	wrap_into("delivery", b);
	parse_file(b, &kf);
	/* Another station's key: the caller picked the wrong file. */
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_unwrap(k2, &kf, got, &d), STN_E_USAGE);
	assert_says(&d, "another recipient");
	/* Every byte of the wrapped key is covered by RFC 3394's check. */
	for (size_t i = 0; i < kf.wrapped_len; i += 7) {
		t = kf;
		t.wrapped[i] ^= 0x01;
		stn_diag_init(&d);
		assert_int_equal(cu_delivery_unwrap(k, &t, got, &d),
				 STN_E_IMAGE);
		assert_says(&d, "AES key wrap integrity check fails");
		assert_string_equal(d.where, "keys/app.key");
	}
	/* The ephemeral key: a point off the curve, then a valid key that is
	 * not the one the file was wrapped with. */
	t = kf;
	t.ephemeral[t.ephemeral_len - 1] ^= 0x01;
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_unwrap(k, &t, got, &d), STN_E_IMAGE);
	assert_says(&d, "ephemeral key is not a P-256 public key");
	bundle("tamper2", b, sizeof(b));
	wrap_into("delivery", b);
	parse_file(b, &t);
	memcpy(t.wrapped, kf.wrapped, kf.wrapped_len);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_unwrap(k, &t, got, &d), STN_E_IMAGE);
	assert_says(&d, "integrity check fails");
	/* RSA-OAEP. */
	bundle("tamper-rsa", b, sizeof(b));
	wrap_into("delivery-rsa", b);
	parse_file(b, &kf);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_unwrap(r, &kf, got, &d), 0);
	assert_memory_equal(got, fx.key, sizeof(got));
	kf.wrapped[100] ^= 0x80;
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_unwrap(r, &kf, got, &d), STN_E_IMAGE);
	assert_says(&d, "RSA-OAEP decryption fails");
	cu_delivery_free(k);
	cu_delivery_free(k2);
	cu_delivery_free(r);
}

/* ---- malformed key files, one rule each ---- */

#define RID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define W40 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw=="
#define EPH "MFkwEwYHKoZIzj0CAQ=="

static void malformed_key_files_are_refused_by_rule(void **state)
{
	static const struct {
		const char *text, *words;
	} cases[] = {
		{"format = station-key-2\nimage = app\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\nwrapped = " W40 "\n",
		 "format"},
		{"format = station-key-1\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\nwrapped = " W40 "\n",
		 "image"},
		{"format = station-key-1\nimage = App\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\nwrapped = " W40 "\n",
		 "[image] label"},
		{"format = station-key-1\nimage = app\nrecipient = 0123"
		 "\nmethod = rsa-oaep-sha256\nwrapped = " W40 "\n",
		 "recipient"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = ecdh-p384\nwrapped = " W40 "\n",
		 "method must be ecdh-p256 or rsa-oaep-sha256"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = ecdh-p256\nwrapped = " W40 "\n",
		 "method ecdh-p256 requires key ephemeral"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\nephemeral = " EPH
		 "\nwrapped = " W40 "\n",
		 "takes no ephemeral key"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = ecdh-p256\nephemeral = " EPH
		 "\nwrapped = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		 "is 40 bytes"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\nwrapped = AAF=\n",
		 "canonical base64"}, /* unused bits set */
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\nwrapped = AA ECAw==\n",
		 "canonical base64"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = ecdh-p256\nephemeral = %%%%\nwrapped = " W40 "\n",
		 "ephemeral must be canonical base64"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\nwrapped = " W40 "\nextra = 1\n",
		 "extra"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\n",
		 "wrapped"},
		{"format = station-key-1\nimage = app\nrecipient = " RID
		 "\nmethod = rsa-oaep-sha256\nwrapped = " W40 "\n[x]\n",
		 "x"},
	};
	struct cu_keyfile kf;
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		stn_diag_init(&d);
		memset(&kf, 0x5a, sizeof(kf));
		if (cu_keyfile_parse(cases[i].text, strlen(cases[i].text),
				     "keys/app.key", &kf, &d) != STN_E_SYNTAX)
			fail_msg("case %zu parsed", i);
		assert_says(&d, cases[i].words);
		assert_says(&d, "keys/app.key");
	}
	/* A good one parses, and a malformed file in a bundle is named. */
	stn_diag_init(&d);
	assert_int_equal(cu_keyfile_parse(cases[0].text + 0, 0, "k", &kf, &d),
			 STN_E_SYNTAX);
}

static void key_for_names_a_malformed_key_file(void **state)
{
	struct cu_delivery_key *k = load("delivery");
	uint8_t got[CU_CONTENT_KEY_LEN];
	struct cu_image img;
	struct stn_diag d;
	char b[4300], path[4400];

	(void)state;
	bundle("malformed", b, sizeof(b));
	wrap_into("delivery", b);
	snprintf(path, sizeof(path), "%s/keys/aaa.key", b);
	th_write_str(path, "format = station-key-1\n");
	img_app(&img);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_key_for(k, b, "media", &img, got, &d),
			 STN_E_SYNTAX);
	assert_says(&d, "media/keys/aaa.key");
	/* A key file that does not open is named whole, under `shown`. */
	assert_int_equal(sh("rm '%s' && sed -i 's/^wrapped = A/wrapped = B/;"
			    "t;s/^wrapped = ./wrapped = A/' '%s/keys/app.key'",
			    path, b),
			 0);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_key_for(k, b, "/media/usb0/a-long-"
						    "bundle-directory-name-"
						    "tx200-2.4.1-encrypted",
					     &img, got, &d),
			 STN_E_IMAGE);
	assert_string_equal(d.where, "/media/usb0/a-long-bundle-directory-"
				     "name-tx200-2.4.1-encrypted/keys/app.key");
	assert_says(&d, "integrity check fails");
	wrap_into("delivery", b);
	th_write_str(path, "format = station-key-1\n");
	/* A name the layout does not take is none of ours. */
	assert_int_equal(sh("mv '%s' '%s/keys/AAA.key'", path, b), 0);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_key_for(k, b, "media", &img, got, &d), 0);
	assert_memory_equal(got, fx.key, sizeof(got));
	cu_delivery_free(k);
}

static void key_names_follow_the_layout(void **state)
{
	(void)state;
	assert_true(cu_layout_key_name("app.key"));
	assert_true(cu_layout_key_name("app.stn-0042.key"));
	assert_true(cu_layout_key_name("0.key"));
	assert_false(cu_layout_key_name(".key"));
	assert_false(cu_layout_key_name("App.key"));
	assert_false(cu_layout_key_name(".app.key"));
	assert_false(cu_layout_key_name("app.pem"));
	assert_false(cu_layout_key_name("app_1.key"));
	assert_true(cu_layout_key_name(
		"a234567890123456789012345678901234567890123456789012345678901234"
		".key"));
	assert_false(cu_layout_key_name(
		"a2345678901234567890123456789012345678901234567890123456789012345"
		".key"));
}

/* ---- loading the station's delivery key ---- */

static void expect_load_refused(const char *key, const char *cert,
				const char *words)
{
	struct cu_delivery_key *k = NULL;
	struct stn_diag d;
	char kp[4300], cp[4300];

	snprintf(kp, sizeof(kp), "%s/%s.key", fx.pki, key);
	snprintf(cp, sizeof(cp), "%s/%s.pem", fx.pki, cert);
	stn_diag_init(&d);
	assert_int_equal(cu_delivery_load(kp, cp, fx.trust, fx.now, &k, &d),
			 STN_E_CONFIG);
	assert_null(k);
	assert_says(&d, words);
}

static void load_refuses_non_delivery_two_role_and_mismatched_keys(
	void **state)
{
	(void)state;
	expect_load_refused("station", "station", "keyUsage without "
						  "keyAgreement");
	expect_load_refused("wrongrole", "wrongrole", "delivery certificate "
						      "refused");
	expect_load_refused("delivery-tworole", "delivery-tworole",
			    "holds roles station and delivery");
	expect_load_refused("delivery2", "delivery", "does not match the "
						     "certificate");
	expect_load_refused("delivery-rsa", "delivery", "does not match");
	expect_load_refused("missing", "delivery", "missing.key");
}

static void load_names_the_recipient_id_openssl_computes(void **state)
{
	struct cu_delivery_key *k = load("delivery");
	char hex[65], want[65];

	(void)state;
	assert_int_equal(sh("openssl x509 -in '%s/delivery.pem' -outform DER | "
			    "openssl dgst -sha256 -r | cut -c1-64 "
			    "> '%s/rid.txt'",
			    fx.pki, fx.dir),
			 0);
	snprintf(hex, sizeof(hex), "%s/rid.txt", fx.dir);
	memset(want, 0, sizeof(want));
	slurp(hex, want, 64);
	cu_hex(cu_delivery_recipient(k), CU_SHA256_LEN, hex);
	assert_string_equal(hex, want);
	cu_delivery_free(k);
}

/* ---- AES-256-CTR ---- */

static void aes_ctr_matches_openssl_enc_with_a_carrying_counter(void **state)
{
	static uint8_t plain[5000], mine[5000], theirs[5000];
	uint8_t key[32], iv[16];
	char khex[65], ivhex[33], path[4300];
	static const size_t chunks[] = {1, 15, 17, 3, 200, 33, 4096, 7};
	struct cu_ctr *c;
	size_t o = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 31 + (i >> 8));
	for (size_t i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xa0 + i);
	/* The counter's low 64 bits are all ones: the second block carries
	 * into the upper half (128-bit big-endian increment). */
	for (size_t i = 0; i < 16; i++)
		iv[i] = i < 8 ? (uint8_t)(0x10 + i) : 0xff;
	cu_hex(key, 32, khex);
	cu_hex(iv, 16, ivhex);
	snprintf(path, sizeof(path), "%s/plain.bin", fx.dir);
	th_write(path, plain, sizeof(plain));
	assert_int_equal(sh("openssl enc -aes-256-ctr -K %s -iv %s -in '%s' "
			    "-out '%s/ctr.bin'",
			    khex, ivhex, path, fx.dir),
			 0);
	snprintf(path, sizeof(path), "%s/ctr.bin", fx.dir);
	assert_int_equal(slurp(path, theirs, sizeof(theirs)), sizeof(theirs));
	c = cu_ctr_new(key, iv);
	assert_non_null(c);
	for (size_t i = 0; o < sizeof(plain); i++) {
		size_t n = chunks[i % 8];

		if (n > sizeof(plain) - o)
			n = sizeof(plain) - o;
		memcpy(mine + o, plain + o, n);
		assert_int_equal(cu_ctr_apply(c, mine + o, mine + o, n), 0);
		o += n;
	}
	cu_ctr_free(c);
	assert_memory_equal(mine, theirs, sizeof(mine));
	/* And back: CTR is its own inverse. */
	c = cu_ctr_new(key, iv);
	assert_int_equal(cu_ctr_apply(c, theirs, mine, sizeof(theirs)), 0);
	assert_memory_equal(mine, plain, sizeof(plain));
	cu_ctr_free(c);
	cu_ctr_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(openssl_made_ecdh_key_file_unwraps),
		cmocka_unit_test(openssl_made_rsa_oaep_key_file_unwraps),
		cmocka_unit_test(wrap_output_opens_with_openssl_ecdh),
		cmocka_unit_test(wrap_output_opens_with_openssl_rsa_oaep),
		cmocka_unit_test(wrap_refuses_certificates_that_are_not_for_delivery),
		cmocka_unit_test(key_for_names_the_recipients_of_another_stations_bundle),
		cmocka_unit_test(unwrap_refuses_wrong_recipient_and_tampered_files),
		cmocka_unit_test(malformed_key_files_are_refused_by_rule),
		cmocka_unit_test(key_for_names_a_malformed_key_file),
		cmocka_unit_test(key_names_follow_the_layout),
		cmocka_unit_test(load_refuses_non_delivery_two_role_and_mismatched_keys),
		cmocka_unit_test(load_names_the_recipient_id_openssl_computes),
		cmocka_unit_test(aes_ctr_matches_openssl_enc_with_a_carrying_counter),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
