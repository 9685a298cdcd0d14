/* tests/test_sim_identity.c: the simulators' device side of formats §9
 * (transport/sim_identity.h) against the test PKI of tests/pki.sh and the
 * openssl CLI: its attestations and receipts verify with `openssl dgst
 * -sha256 -verify` and the device certificate's key; authorizations that
 * `openssl dgst -sha256 -sign` made with the station key are accepted, and
 * every rule a device checks refuses, naming itself; each fault does what
 * spec/devices.md says a counterfeit or broken unit does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "station/base/base64.h"
#include "station/base/error.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "station/base/sha256.h"
#include "tests/helpers.h"
#include "transport/devmsg.h"
#include "transport/sim_identity.h"

#define NONCE_A "00112233445566778899aabbccddeeff" \
		"00112233445566778899aabbccddeeff"
#define NONCE_B "ffeeddccbbaa99887766554433221100" \
		"ffeeddccbbaa99887766554433221100"
#define IMG_SIZE 524288

static struct {
	char *dir;
	char pki[4200];
	int64_t now;
	uint8_t img_sha[32];   /* the authorized image's digest */
	char img_hex[65];
} fx;

static const struct sim_id_claim claim = {
	.model = "TX-200",
	.hardware = "revB",
	.serial = "SN-0001",
	.version = "2.4.0",
	.has_sequence = 1,
	.sequence = 41,
};

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
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static char *path(const char *name)
{
	static char buf[4][4300];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", fx.dir, name);
	return buf[i];
}

static char *pki(const char *name)
{
	static char buf[4][4300];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", fx.pki, name);
	return buf[i];
}

static uint8_t *slurp(const char *file, size_t *len)
{
	FILE *f = fopen(file, "rb");
	uint8_t *buf = malloc(65536 + 1); /* room for a NUL */

	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, 65536, f);
	fclose(f);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	fx.dir = th_tempdir();
	if (th_make_pki(fx.dir))
		return -1;
	snprintf(fx.pki, sizeof(fx.pki), "%s/pki", fx.dir);
	fx.now = (int64_t)time(NULL);
	for (int i = 0; i < 32; i++)
		fx.img_sha[i] = (uint8_t)(0xa0 + i);
	cu_hex(fx.img_sha, 32, fx.img_hex);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_rmrf(fx.dir);
	free(fx.dir);
	return 0;
}

static struct sim_identity *load_faulty(const char *dev, unsigned faults)
{
	struct sim_identity *s = NULL;
	char key[64], chain[64], err[200] = "";

	snprintf(key, sizeof(key), "%s.key", dev);
	snprintf(chain, sizeof(chain), "%s.pem", dev);
	if (sim_id_load(pki(key), pki(chain), pki("roots.pem"), faults, &s,
			err, sizeof(err)))
		fail_msg("load %s: %s", dev, err);
	return s;
}

static struct sim_identity *load(unsigned faults)
{
	return load_faulty("dev1", faults);
}

/* The attestation answer to nonce, parsed; the challenge into ch. */
static void attest(struct sim_identity *s, const char *nonce,
		   struct tp_signed_msg *m, char ch[65], char **text)
{
	struct stn_diag d;
	char term[16], *out;
	size_t len;
	const char *p;

	assert_int_equal(sim_id_attest(s, &claim, nonce, "\r\n", &out, &len),
			 0);
	assert_int_equal(len, strlen(out));
	stn_diag_init(&d);
	if (tp_msg_parse_block(m, out, len, term, sizeof(term), "sim", &d))
		fail_msg("attestation answer: %s\n%s", d.text, out);
	assert_string_equal(term, "ok");
	assert_true(tp_msg_complete(m));
	p = strstr(m->record, "\nchallenge = ");
	assert_non_null(p);
	memcpy(ch, p + 13, 64);
	ch[64] = '\0';
	if (text)
		*text = out;
	else
		free(out);
}

/* Whether openssl verifies sig over data with the key of cert_pem's
 * first certificate: 0 yes, 1 no. */
static int openssl_verify(const char *cert_pem, const void *data,
			  size_t len, const uint8_t *sig, size_t sig_len)
{
	th_write(path("v.rec"), data, len);
	th_write(path("v.sig"), sig, sig_len);
	assert_int_equal(sh("openssl x509 -in '%s' -pubkey -noout >'%s'",
			    cert_pem, path("v.pub")),
			 0);
	return sh("openssl dgst -sha256 -verify '%s' -signature '%s' '%s' "
		  ">/dev/null 2>&1",
		  path("v.pub"), path("v.sig"), path("v.rec"));
}

/* The DER of cert_pem's first certificate. */
static uint8_t *leaf_der(const char *cert_pem, size_t *len)
{
	assert_int_equal(sh("openssl x509 -in '%s' -outform DER -out '%s'",
			    cert_pem, path("leaf.der")),
			 0);
	return slurp(path("leaf.der"), len);
}

/* ---- authorizations as a station signs them, with the openssl CLI ---- */

struct authz_spec {
	const char *device, *challenge, *issued, *expires;
	const char *signer;  /* pki name whose .key signs */
	const char *chain;   /* pki name whose .pem goes in cert lines */
	const char *images;  /* the [image] sections, NULL for one app */
	const char *extra;   /* top-level lines after format (x- etc.) */
	const char *record;  /* the whole record instead, if not NULL */
	int tamper;          /* change the record after signing */
	int unsigned_;       /* no sig line */
	int no_certs;        /* no cert lines */
};

static void times(int64_t issued, int64_t ttl, char *is, char *ex)
{
	cu_time_format(issued, is);
	cu_time_format(issued + ttl, ex);
}

/* `cert B64` lines of every certificate in a PEM file, appended to b
 * (made once per file: the openssl runs are what the suite waits on). */
static void cert_lines_made(const char *pem, char *b, size_t cap);
static void cert_lines(const char *pem, char *b, size_t cap)
{
	static struct {
		char pem[4300];
		char lines[16384];
	} cache[8];
	static size_t n;

	for (size_t i = 0; i < n; i++)
		if (strcmp(cache[i].pem, pem) == 0) {
			assert_true(strlen(b) + strlen(cache[i].lines) < cap);
			strcat(b, cache[i].lines);
			return;
		}
	assert_true(n < 8);
	snprintf(cache[n].pem, sizeof(cache[n].pem), "%s", pem);
	cache[n].lines[0] = '\0';
	cert_lines_made(pem, cache[n].lines, sizeof(cache[n].lines));
	assert_true(strlen(b) + strlen(cache[n].lines) < cap);
	strcat(b, cache[n++].lines);
}

static void cert_lines_made(const char *pem, char *b, size_t cap)
{
	size_t len, n = 0;
	char *text = (char *)slurp(pem, &len);
	char *p = text;

	text[len] = '\0';
	while ((p = strstr(p, "-----BEGIN CERTIFICATE-----"))) {
		char *end = strstr(p, "-----END CERTIFICATE-----");
		char one[40], der[40];
		uint8_t *bytes;
		size_t blen;
		assert_non_null(end);
		end += strlen("-----END CERTIFICATE-----");
		snprintf(one, sizeof(one), "c%zu.pem", n);
		snprintf(der, sizeof(der), "c%zu.der", n);
		th_write(path(one), p, (size_t)(end - p));
		assert_int_equal(sh("openssl x509 -in '%s' -outform DER "
				    "-out '%s'", path(one), path(der)),
				 0);
		bytes = slurp(path(der), &blen);
		strcat(b, "cert ");
		assert_true(strlen(b) + STN_B64_LEN(blen) + 3 < cap);
		stn_b64_encode(bytes, blen, b + strlen(b));
		strcat(b, "\r\n");
		free(bytes);
		p = end;
		n++;
	}
	free(text);
}

/* The block between `authorize` and `end`, malloc'd. */
static char *authz_block(const struct authz_spec *a, const char *challenge)
{
	char is[32], ex[32], rec[4096], images[512], keyname[64];
	char *block = malloc(65536);
	uint8_t *sig;
	size_t sig_len;

	assert_non_null(block);
	times(fx.now - 60, 600, is, ex);
	snprintf(images, sizeof(images),
		 "[image app]\nslot = 0\nsize = %d\nsha256 = %s\n", IMG_SIZE,
		 fx.img_hex);
	if (a->record)
		snprintf(rec, sizeof(rec), "%s", a->record);
	else
		snprintf(rec, sizeof(rec),
			 "format = station-install-1\n%s"
			 "station = STN-0042\nsite = plant-7\n"
			 "technician = ana\ndevice = %s\nchallenge = %s\n"
			 "bundle = 0123abcd\nsequence = 42\nissued = %s\n"
			 "expires = %s\n%s",
			 a->extra ? a->extra : "",
			 a->device ? a->device : "SN-0001",
			 a->challenge ? a->challenge : challenge,
			 a->issued ? a->issued : is,
			 a->expires ? a->expires : ex,
			 a->images ? a->images : images);
	th_write_str(path("authz.rec"), rec);
	snprintf(keyname, sizeof(keyname), "%s.key",
		 a->signer ? a->signer : "station");
	assert_int_equal(sh("openssl dgst -sha256 -sign '%s' -out '%s' '%s'",
			    pki(keyname), path("authz.sig"),
			    path("authz.rec")),
			 0);
	sig = slurp(path("authz.sig"), &sig_len);
	if (a->tamper) {
		char *p = strstr(rec, "size = 524288");
		assert_non_null(p);
		p[7] = '9';
	}
	/* The console's lines: CR LF, as the station sends them. */
	block[0] = '\0';
	for (char *p = rec, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
		strncat(block, p, (size_t)(nl - p));
		strcat(block, "\r\n");
	}
	if (!a->unsigned_) {
		strcat(block, "sig ");
		stn_b64_encode(sig, sig_len, block + strlen(block));
		strcat(block, "\r\n");
	}
	free(sig);
	if (!a->no_certs && !a->unsigned_) {
		char chain[64];
		snprintf(chain, sizeof(chain), "%s.pem",
			 a->chain ? a->chain : (a->signer ? a->signer
							  : "station"));
		cert_lines(pki(chain), block, 65536);
	}
	return block;
}

static int authorize(struct sim_identity *s, const struct authz_spec *a,
		     const char *challenge, char *err, size_t errlen)
{
	char *block = authz_block(a, challenge);
	int rc;

	err[0] = '\0';
	rc = sim_id_authorize(s, &claim, block, strlen(block), fx.now, err,
			      errlen);
	free(block);
	return rc;
}

/* ---- attestation ---- */

static void attest_answer_parses_and_verifies_with_openssl(void **state)
{
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	char ch[65], want[1024], *text;
	uint8_t *der, chb[32];
	size_t der_len;

	(void)state;
	attest(s, NONCE_A, m, ch, &text);
	/* Every line as sent ends with CR LF; the last is `ok`. */
	assert_non_null(strstr(text, "format = station-attest-1\r\n"));
	assert_int_equal(strcmp(text + strlen(text) - 4, "ok\r\n"), 0);
	free(text);
	assert_int_equal(cu_hex_parse(ch, 32, chb), 0);
	snprintf(want, sizeof(want),
		 "format = station-attest-1\nmodel = TX-200\nhardware = revB\n"
		 "serial = SN-0001\nsequence = 41\nversion = 2.4.0\n"
		 "nonce = %s\nchallenge = %s\n",
		 NONCE_A, ch);
	assert_string_equal(m->record, want);
	/* The chain as DER, leaf first: dev1's certificate, then mfg-ca. */
	assert_int_equal(m->ncerts, 2);
	der = leaf_der(pki("dev1.pem"), &der_len);
	assert_int_equal(m->cert_len[0], der_len);
	assert_memory_equal(m->cert[0], der, der_len);
	free(der);
	der = leaf_der(pki("mfg-ca.pem"), &der_len);
	assert_int_equal(m->cert_len[1], der_len);
	assert_memory_equal(m->cert[1], der, der_len);
	free(der);
	/* openssl checks the signature over the record's exact bytes... */
	assert_int_equal(openssl_verify(pki("dev1.pem"), m->record,
					m->record_len, m->sig, m->sig_len),
			 0);
	/* ...and not over other bytes, nor with another device's key. */
	m->record[m->record_len - 2] ^= 1;
	assert_int_equal(openssl_verify(pki("dev1.pem"), m->record,
					m->record_len, m->sig, m->sig_len),
			 1);
	m->record[m->record_len - 2] ^= 1;
	assert_int_equal(openssl_verify(pki("dev2.pem"), m->record,
					m->record_len, m->sig, m->sig_len),
			 1);
	free(m);
	sim_id_free(s);
}

/* Optional fields stay out; the line end is the caller's. */
static void attest_leaves_out_what_the_claim_lacks(void **state)
{
	struct sim_identity *s = load(0);
	struct sim_id_claim bare = {.model = "TX-200", .serial = "SN-0001"};
	char *out;
	size_t len;

	(void)state;
	assert_int_equal(sim_id_attest(s, &bare, NONCE_A, "\n", &out, &len),
			 0);
	assert_int_equal(strncmp(out, "format = station-attest-1\n"
				      "model = TX-200\nserial = SN-0001\n"
				      "nonce = " NONCE_A "\nchallenge = ",
				 strlen("format = station-attest-1\n"
					"model = TX-200\nserial = SN-0001\n"
					"nonce = " NONCE_A "\nchallenge = ")),
			 0);
	assert_null(strchr(out, '\r'));
	free(out);
	sim_id_free(s);
}

static void attest_answers_error_for_a_bad_nonce(void **state)
{
	static const char *const bad[] = {
		"", "00", NONCE_A "0", NONCE_A " ",
		"00112233445566778899AABBCCDDEEFF"
		"00112233445566778899aabbccddeeff",
		"0011223344556677889gaabbccddeeff"
		"00112233445566778899aabbccddeeff",
	};
	struct sim_identity *s = load(0);
	char *out, err[200];
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sim_id_attest(s, &claim, bad[i], "\r\n", &out,
					       &len),
				 0);
		assert_string_equal(out, "error bad nonce\r\n");
		assert_int_equal(len, strlen(out));
		free(out);
	}
	/* Without an attestation there is no session to authorize. */
	assert_int_equal(sim_id_authorize(s, &claim, "x", 1, fx.now, err,
					  sizeof(err)),
			 -1);
	assert_string_equal(err, "no attestation in this session");
	sim_id_free(s);
}

/* Each attestation is a new session with its own challenge: an
 * authorization bound to the old one is refused. */
static void attest_starts_a_new_session_each_time(void **state)
{
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct authz_spec a = {0};
	char ch1[65], ch2[65], err[200];

	(void)state;
	attest(s, NONCE_A, m, ch1, NULL);
	attest(s, NONCE_A, m, ch2, NULL);
	assert_string_not_equal(ch1, ch2);
	assert_int_equal(authorize(s, &a, ch1, err, sizeof(err)), -1);
	assert_string_equal(err, "the authorization's challenge is not this "
				 "session's");
	assert_int_equal(authorize(s, &a, ch2, err, sizeof(err)), 0);
	assert_int_equal(sim_id_may_receive(s, 0, IMG_SIZE, err,
					    sizeof(err)),
			 0);
	/* A new attestation drops the kept authorization. */
	attest(s, NONCE_B, m, ch1, NULL);
	assert_int_equal(sim_id_may_receive(s, 0, IMG_SIZE, err,
					    sizeof(err)),
			 -1);
	assert_string_equal(err, "no authorization");
	free(m);
	sim_id_free(s);
}

/* ---- authorization ---- */

static void authorize_accepts_a_station_signed_record(void **state)
{
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct authz_spec a = {0};
	char ch[65], err[200];
	uint8_t other[32];

	(void)state;
	attest(s, NONCE_A, m, ch, NULL);
	assert_int_equal(sim_id_may_receive(s, 0, IMG_SIZE, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "no authorization");
	if (authorize(s, &a, ch, err, sizeof(err)))
		fail_msg("refused: %s", err);
	assert_int_equal(sim_id_may_receive(s, 0, IMG_SIZE, err, sizeof(err)),
			 0);
	assert_int_equal(sim_id_may_receive(s, 3, IMG_SIZE, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "slot 3 not authorized");
	assert_int_equal(sim_id_may_receive(s, 0, IMG_SIZE + 1, err,
					    sizeof(err)),
			 -1);
	assert_string_equal(err, "size differs from the authorization");
	assert_int_equal(sim_id_check_stored(s, 0, fx.img_sha, err,
					     sizeof(err)),
			 0);
	memcpy(other, fx.img_sha, 32);
	other[31] ^= 1;
	assert_int_equal(sim_id_check_stored(s, 0, other, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "what was stored differs from the "
				 "authorized image");
	assert_int_equal(sim_id_check_stored(s, 2, fx.img_sha, err,
					     sizeof(err)),
			 -1);
	assert_string_equal(err, "slot 2 not authorized");
	free(m);
	sim_id_free(s);
}

static void authorize_keeps_every_image(void **state)
{
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct authz_spec a = {0};
	char ch[65], err[200], images[512];
	uint8_t z[32] = {0};

	(void)state;
	snprintf(images, sizeof(images),
		 "[image app]\nslot = 0\nsize = 10\nsha256 = %s\n"
		 "[image boot]\nx-note = ignored\nslot = 1\nsize = 0\n"
		 "sha256 = %064d\n", fx.img_hex, 0);
	a.images = images;
	a.extra = "x-vendor = anything\n";
	attest(s, NONCE_A, m, ch, NULL);
	if (authorize(s, &a, ch, err, sizeof(err)))
		fail_msg("refused: %s", err);
	assert_int_equal(sim_id_may_receive(s, 0, 10, err, sizeof(err)), 0);
	assert_int_equal(sim_id_may_receive(s, 1, 0, err, sizeof(err)), 0);
	assert_int_equal(sim_id_check_stored(s, 1, z, err, sizeof(err)), 0);
	assert_int_equal(sim_id_check_stored(s, 0, fx.img_sha, err,
					     sizeof(err)),
			 0);
	free(m);
	sim_id_free(s);
}

/* One refusal each: what is changed, and the words the device answers. */
static void authorize_refuses_what_a_device_must_refuse(void **state)
{
	char is_old[32], ex_old[32], is_new[32], ex_new[32], is_long[32],
		ex_long[32], other_ch[65];
	struct {
		struct authz_spec a;
		const char *why;
	} cases[] = {
		{{.device = "SN-0002"},
		 "the authorization is for device SN-0002, not this one"},
		{{.challenge = other_ch},
		 "the authorization's challenge is not this session's"},
		{{.issued = is_old, .expires = ex_old},
		 "the authorization has expired"},
		{{.issued = is_new, .expires = ex_new},
		 "the authorization is not yet valid"},
		{{.issued = is_long, .expires = ex_long},
		 "the authorization's lifetime is not within 600 seconds"},
		{{.signer = "release1"},
		 "the authorization's signer does not hold the station role"},
		{{.signer = "norole"},
		 "the authorization's signer holds no role"},
		{{.signer = "tworole"},
		 "the authorization's signer does not hold the station role"},
		{{.signer = "other-release"},
		 "the authorization's signer does not chain to the fleet "
		 "anchor"},
		{{.tamper = 1}, "the authorization's signature does not verify"},
		{{.signer = "release1", .chain = "station"},
		 "the authorization's signature does not verify"},
		{{.unsigned_ = 1}, "the authorization is not signed"},
		{{.no_certs = 1}, "the authorization carries no certificate"},
	};
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	char ch[65], err[200];

	(void)state;
	times(fx.now - 700, 600, is_old, ex_old);
	times(fx.now + 60, 600, is_new, ex_new);
	times(fx.now - 60, 601, is_long, ex_long);
	memset(other_ch, 'a', 64);
	other_ch[64] = '\0';
	attest(s, NONCE_A, m, ch, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* A good one first: a refusal must undo it. */
		struct authz_spec good = {0};
		assert_int_equal(authorize(s, &good, ch, err, sizeof(err)), 0);
		if (authorize(s, &cases[i].a, ch, err, sizeof(err)) != -1)
			fail_msg("case %zu accepted (%s)", i, cases[i].why);
		if (strncmp(err, cases[i].why, strlen(cases[i].why)))
			fail_msg("case %zu: \"%s\", want \"%s\"", i, err,
				 cases[i].why);
		assert_int_equal(sim_id_may_receive(s, 0, IMG_SIZE, err,
						    sizeof(err)),
				 -1);
		assert_string_equal(err, "no authorization");
	}
	free(m);
	sim_id_free(s);
}

/* A device whose fleet anchor is another refuses the real station. */
static void authorize_refuses_a_station_of_another_fleet(void **state)
{
	struct sim_identity *s = NULL;
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct authz_spec a = {0};
	char ch[65], err[200];

	(void)state;
	assert_int_equal(sim_id_load(pki("dev1.key"), pki("dev1.pem"),
				     pki("mfg-anchors.pem"), 0, &s, err,
				     sizeof(err)),
			 0);
	attest(s, NONCE_A, m, ch, NULL);
	assert_int_equal(authorize(s, &a, ch, err, sizeof(err)), -1);
	assert_string_equal(err, "the authorization's signer does not chain "
				 "to the fleet anchor: unable to get local "
				 "issuer certificate");
	free(m);
	sim_id_free(s);
}

/* formats §1 strictly: the record's own shape. */
static void authorize_parses_the_record_strictly(void **state)
{
	char ok_top[512], is[32], ex[32];
	char rec[12][2048];
	static const char *const why[] = {
		"not a station-install-1 authorization (format must come "
		"first)",
		"not a station-install-1 authorization (format must come "
		"first)",
		"authorization: unknown key colour",
		"authorization: missing key site",
		"authorization: key site given twice",
		"authorization: [image app] has no sha256",
		"authorization line 11: unknown section (want [image LABEL])",
		"authorization: [image app] given twice",
		"authorization names no image",
		"authorization: [image app] slot is not a number",
		"authorization: unknown key boot in [image app]",
		"authorization: [image app] size or sha256 is malformed",
	};
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	char ch[65], err[200], img[300];

	(void)state;
	attest(s, NONCE_A, m, ch, NULL);
	times(fx.now - 60, 600, is, ex);
	snprintf(ok_top, sizeof(ok_top),
		 "station = STN-0042\nsite = plant-7\ntechnician = ana\n"
		 "device = SN-0001\nchallenge = %s\nbundle = 0123abcd\n"
		 "sequence = 42\nissued = %s\nexpires = %s\n", ch, is, ex);
	snprintf(img, sizeof(img),
		 "[image app]\nslot = 0\nsize = 1\nsha256 = %s\n", fx.img_hex);
	snprintf(rec[0], 2048, "%sformat = station-install-1\n%s", ok_top,
		 img);
	snprintf(rec[1], 2048, "format = station-install-2\n%s%s", ok_top,
		 img);
	snprintf(rec[2], 2048, "format = station-install-1\n%scolour = red\n"
		 "%s", ok_top, img);
	snprintf(rec[3], 2048, "format = station-install-1\n%s%s", ok_top,
		 img);
	{ /* take site out */
		char *p = strstr(rec[3], "site = plant-7\n");
		memmove(p, p + 15, strlen(p + 15) + 1);
	}
	snprintf(rec[4], 2048, "format = station-install-1\n%ssite = x\n%s",
		 ok_top, img);
	snprintf(rec[5], 2048, "format = station-install-1\n%s"
		 "[image app]\nslot = 0\nsize = 1\n", ok_top);
	snprintf(rec[6], 2048, "format = station-install-1\n%s[images app]\n"
		 "%s", ok_top, img);
	snprintf(rec[7], 2048, "format = station-install-1\n%s%s%s", ok_top,
		 img, img);
	snprintf(rec[8], 2048, "format = station-install-1\n%s", ok_top);
	snprintf(rec[9], 2048, "format = station-install-1\n%s"
		 "[image app]\nslot = 00\nsize = 1\nsha256 = %s\n", ok_top,
		 fx.img_hex);
	snprintf(rec[10], 2048, "format = station-install-1\n%s%sboot = 1\n",
		 ok_top, img);
	snprintf(rec[11], 2048, "format = station-install-1\n%s"
		 "[image app]\nslot = 0\nsize = 1\nsha256 = %.63s\n", ok_top,
		 fx.img_hex);
	for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
		struct authz_spec a = {.record = rec[i]};
		if (authorize(s, &a, ch, err, sizeof(err)) != -1)
			fail_msg("record %zu accepted", i);
		if (strcmp(err, why[i]))
			fail_msg("record %zu: \"%s\", want \"%s\"", i, err,
				 why[i]);
	}
	/* Comments and blank lines are no keys; the rest is the same. */
	snprintf(rec[0], 2048, "format = station-install-1\n# a comment\n"
		 "%s%s", ok_top, img);
	{
		struct authz_spec a = {.record = rec[0]};
		if (authorize(s, &a, ch, err, sizeof(err)))
			fail_msg("refused: %s", err);
	}
	free(m);
	sim_id_free(s);
}

/* Lines that are not §9 lines at all are refused before anything. */
static void authorize_refuses_a_malformed_block(void **state)
{
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	char ch[65], err[200];
	const char *b1 = "format = station-install-1\r\nsig AQID\r\nx = y\r\n";
	const char *b2 = "format = station-install-1\r\nsig AQI\r\n";
	struct authz_spec nocert = {.no_certs = 1};
	char *b3;

	(void)state;
	attest(s, NONCE_A, m, ch, NULL);
	assert_int_equal(sim_id_authorize(s, &claim, b1, strlen(b1), fx.now,
					  err, sizeof(err)),
			 -1);
	assert_string_equal(err, "bad authorization: a record line after the "
				 "`sig` line");
	assert_int_equal(sim_id_authorize(s, &claim, b2, strlen(b2), fx.now,
					  err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "`sig` line is not canonical base64"));
	/* A good record whose certificate is no DER certificate. */
	b3 = authz_block(&nocert, ch);
	strcat(b3, "cert AQID\r\n");
	assert_int_equal(sim_id_authorize(s, &claim, b3, strlen(b3), fx.now,
					  err, sizeof(err)),
			 -1);
	assert_string_equal(err, "the authorization's certificate 1 is not "
				 "one DER certificate");
	free(b3);
	free(m);
	sim_id_free(s);
}

/* ---- receipts ---- */

static void receipt_verifies_with_openssl(void **state)
{
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m)), *r = malloc(sizeof(*r));
	struct authz_spec a = {0};
	struct stn_diag d;
	char ch[65], err[200], want[600], *out, *block, term[100];
	size_t len;

	(void)state;
	attest(s, NONCE_A, m, ch, NULL);
	assert_int_equal(authorize(s, &a, ch, err, sizeof(err)), 0);
	assert_int_equal(sim_id_receipt(s, &claim, 0, IMG_SIZE, fx.img_sha,
					"\r\n", &out, &len, err, sizeof(err)),
			 0);
	assert_int_equal(len, strlen(out));
	/* The caller ends it with `ok sha256=HEX`. */
	block = malloc(len + 100);
	snprintf(block, len + 100, "%sok sha256=%s\r\n", out, fx.img_hex);
	stn_diag_init(&d);
	assert_int_equal(tp_msg_parse_block(r, block, strlen(block), term,
					    sizeof(term), "sim", &d),
			 0);
	snprintf(want, sizeof(want),
		 "format = station-receipt-1\ndevice = SN-0001\nnonce = %s\n"
		 "challenge = %s\nslot = 0\nsize = %d\nsha256 = %s\n",
		 NONCE_A, ch, IMG_SIZE, fx.img_hex);
	assert_string_equal(r->record, want);
	assert_int_equal(r->ncerts, 0);
	assert_int_equal(openssl_verify(pki("dev1.pem"), r->record,
					r->record_len, r->sig, r->sig_len),
			 0);
	free(block);
	free(out);
	free(m);
	free(r);
	sim_id_free(s);
}

/* A receipt says what was stored, even when it is not what was asked. */
static void receipt_tells_what_was_stored(void **state)
{
	struct sim_identity *s = load(0);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct authz_spec a = {0};
	char ch[65], err[200], *out;
	uint8_t stored[32] = {1, 2, 3};
	char hex[65], line[100];
	size_t len;

	(void)state;
	assert_int_equal(sim_id_receipt(s, &claim, 0, 1, stored, "\n", &out,
					&len, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "no attestation in this session");
	attest(s, NONCE_A, m, ch, NULL);
	assert_int_equal(authorize(s, &a, ch, err, sizeof(err)), 0);
	assert_int_equal(sim_id_receipt(s, &claim, 0, 77, stored, "\n", &out,
					&len, err, sizeof(err)),
			 0);
	cu_hex(stored, 32, hex);
	snprintf(line, sizeof(line), "\nsize = 77\nsha256 = %s\nsig ", hex);
	assert_non_null(strstr(out, line));
	free(out);
	free(m);
	sim_id_free(s);
}

/* ---- faults ---- */

static void fault_names_parse(void **state)
{
	unsigned bit = 99;

	(void)state;
	assert_int_equal(sim_id_fault_parse("wrong-key", &bit), 0);
	assert_int_equal(bit, SIM_ID_WRONG_KEY);
	assert_int_equal(sim_id_fault_parse("replay", &bit), 0);
	assert_int_equal(bit, SIM_ID_REPLAY);
	assert_int_equal(sim_id_fault_parse("lying-receipt", &bit), 0);
	assert_int_equal(bit, SIM_ID_LYING_RECEIPT);
	assert_int_equal(sim_id_fault_parse("refuse-auth", &bit), 0);
	assert_int_equal(bit, SIM_ID_REFUSE_AUTH);
	bit = 99;
	assert_int_equal(sim_id_fault_parse("Replay", &bit), -1);
	assert_int_equal(sim_id_fault_parse("", &bit), -1);
	assert_int_equal(bit, 99);
}

static void wrong_key_signs_what_the_certificate_cannot_verify(void **state)
{
	struct sim_identity *s = load(SIM_ID_WRONG_KEY);
	struct tp_signed_msg *m = malloc(sizeof(*m)), *r = malloc(sizeof(*r));
	struct authz_spec a = {0};
	struct stn_diag d;
	char ch[65], err[200], *out, term[8];
	size_t len;
	uint8_t *der;
	size_t der_len;

	(void)state;
	attest(s, NONCE_A, m, ch, NULL);
	/* The same certificate as a true unit shows... */
	der = leaf_der(pki("dev1.pem"), &der_len);
	assert_memory_equal(m->cert[0], der, der_len);
	free(der);
	/* ...but a signature its key does not make. */
	assert_int_equal(openssl_verify(pki("dev1.pem"), m->record,
					m->record_len, m->sig, m->sig_len),
			 1);
	assert_int_equal(authorize(s, &a, ch, err, sizeof(err)), 0);
	assert_int_equal(sim_id_receipt(s, &claim, 0, IMG_SIZE, fx.img_sha,
					"\n", &out, &len, err, sizeof(err)),
			 0);
	out = realloc(out, len + 4);
	strcat(out, "ok\n");
	stn_diag_init(&d);
	assert_int_equal(tp_msg_parse_block(r, out, strlen(out), term,
					    sizeof(term), "sim", &d),
			 0);
	assert_int_equal(openssl_verify(pki("dev1.pem"), r->record,
					r->record_len, r->sig, r->sig_len),
			 1);
	free(out);
	free(m);
	free(r);
	sim_id_free(s);
}

static void replay_answers_the_first_attestation_whatever_the_nonce(
	void **state)
{
	struct sim_identity *s = load(SIM_ID_REPLAY);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct authz_spec a = {0};
	char ch1[65], ch2[65], err[200], *first, *again, *out;
	size_t len;

	(void)state;
	attest(s, NONCE_A, m, ch1, &first);
	attest(s, NONCE_B, m, ch2, &again);
	assert_string_equal(first, again);
	assert_string_equal(ch1, ch2);
	assert_non_null(strstr(m->record, "\nnonce = " NONCE_A "\n"));
	/* It is still a good signature: only the nonce gives it away. */
	assert_int_equal(openssl_verify(pki("dev1.pem"), m->record,
					m->record_len, m->sig, m->sig_len),
			 0);
	/* Even a bad nonce gets the old answer. */
	assert_int_equal(sim_id_attest(s, &claim, "junk", "\r\n", &out, &len),
			 0);
	assert_string_equal(out, first);
	free(out);
	/* The replaying unit's session is the old one. */
	assert_int_equal(authorize(s, &a, ch1, err, sizeof(err)), 0);
	free(first);
	free(again);
	free(m);
	sim_id_free(s);
}

static void lying_receipt_signs_the_authorized_digest(void **state)
{
	struct sim_identity *s = load(SIM_ID_LYING_RECEIPT);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct authz_spec a = {0};
	char ch[65], err[200], *out, line[200];
	uint8_t stored[32] = {9};
	size_t len;

	(void)state;
	attest(s, NONCE_A, m, ch, NULL);
	assert_int_equal(authorize(s, &a, ch, err, sizeof(err)), 0);
	assert_int_equal(sim_id_receipt(s, &claim, 0, 5, stored, "\n", &out,
					&len, err, sizeof(err)),
			 0);
	snprintf(line, sizeof(line), "\nsize = %d\nsha256 = %s\nsig ",
		 IMG_SIZE, fx.img_hex);
	assert_non_null(strstr(out, line));
	free(out);
	/* No authorization for the slot: nothing to lie about. */
	assert_int_equal(sim_id_receipt(s, &claim, 4, 5, stored, "\n", &out,
					&len, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "slot 4 not authorized");
	free(m);
	sim_id_free(s);
}

static void refuse_auth_refuses_a_good_authorization(void **state)
{
	struct sim_identity *s = load(SIM_ID_REFUSE_AUTH);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct authz_spec a = {0};
	char ch[65], err[200];

	(void)state;
	attest(s, NONCE_A, m, ch, NULL);
	assert_int_equal(authorize(s, &a, ch, err, sizeof(err)), -1);
	assert_string_equal(err, "authorization refused");
	assert_int_equal(sim_id_may_receive(s, 0, IMG_SIZE, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "no authorization");
	free(m);
	sim_id_free(s);
}

/* ---- loading ---- */

static void load_refuses_what_cannot_be_a_device(void **state)
{
	struct sim_identity *s = (struct sim_identity *)1;
	char err[300];

	(void)state;
	assert_int_equal(sim_id_load(pki("dev2.key"), pki("dev1.pem"),
				     pki("roots.pem"), 0, &s, err,
				     sizeof(err)),
			 -1);
	assert_null(s);
	assert_string_equal(err, "the device key does not match the chain's "
				 "first certificate");
	assert_int_equal(sim_id_load(pki("nonexistent.key"), pki("dev1.pem"),
				     pki("roots.pem"), 0, &s, err,
				     sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "cannot read the device key"));
	assert_non_null(strstr(err, "No such file or directory"));
	assert_int_equal(sim_id_load(pki("dev1.pem"), pki("dev1.pem"),
				     pki("roots.pem"), 0, &s, err,
				     sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "the device key is not a PEM private "
				    "key"));
	assert_int_equal(sim_id_load(pki("dev1.key"), pki("dev1.key"),
				     pki("roots.pem"), 0, &s, err,
				     sizeof(err)),
			 -1);
	assert_string_equal(err, "the certificate chain must hold 1 to 4 PEM "
				 "certificates");
	assert_int_equal(sim_id_load(pki("dev1.key"), pki("dev1.pem"),
				     pki("dev1.key"), 0, &s, err,
				     sizeof(err)),
			 -1);
	assert_string_equal(err, "the fleet anchor file holds no PEM "
				 "certificate");
	sim_id_free(NULL);
}

/* PEM text is taken as well as a path. */
static void load_takes_pem_text(void **state)
{
	struct sim_identity *s = NULL;
	char err[300];
	size_t klen, clen, alen;
	char *key = (char *)slurp(pki("dev2.key"), &klen);
	char *chain = (char *)slurp(pki("dev2.pem"), &clen);
	char *anchor = (char *)slurp(pki("roots.pem"), &alen);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct sim_id_claim c2 = claim;
	char *out;
	size_t len;
	struct stn_diag d;

	(void)state;
	key[klen] = chain[clen] = anchor[alen] = '\0';
	if (sim_id_load(key, chain, anchor, 0, &s, err, sizeof(err)))
		fail_msg("%s", err);
	c2.serial = "SN-0002";
	assert_int_equal(sim_id_attest(s, &c2, NONCE_B, "\n", &out, &len), 0);
	stn_diag_init(&d);
	assert_int_equal(tp_msg_parse_block(m, out, len, NULL, 0, "sim", &d),
			 0);
	assert_int_equal(openssl_verify(pki("dev2.pem"), m->record,
					m->record_len, m->sig, m->sig_len),
			 0);
	free(out);
	free(m);
	free(key);
	free(chain);
	free(anchor);
	sim_id_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(attest_answer_parses_and_verifies_with_openssl),
		cmocka_unit_test(attest_leaves_out_what_the_claim_lacks),
		cmocka_unit_test(attest_answers_error_for_a_bad_nonce),
		cmocka_unit_test(attest_starts_a_new_session_each_time),
		cmocka_unit_test(authorize_accepts_a_station_signed_record),
		cmocka_unit_test(authorize_keeps_every_image),
		cmocka_unit_test(authorize_refuses_what_a_device_must_refuse),
		cmocka_unit_test(authorize_refuses_a_station_of_another_fleet),
		cmocka_unit_test(authorize_parses_the_record_strictly),
		cmocka_unit_test(authorize_refuses_a_malformed_block),
		cmocka_unit_test(receipt_verifies_with_openssl),
		cmocka_unit_test(receipt_tells_what_was_stored),
		cmocka_unit_test(fault_names_parse),
		cmocka_unit_test(
			wrong_key_signs_what_the_certificate_cannot_verify),
		cmocka_unit_test(
			replay_answers_the_first_attestation_whatever_the_nonce),
		cmocka_unit_test(lying_receipt_signs_the_authorized_digest),
		cmocka_unit_test(refuse_auth_refuses_a_good_authorization),
		cmocka_unit_test(load_refuses_what_cannot_be_a_device),
		cmocka_unit_test(load_takes_pem_text),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
