/* tests/test_trust.c: custody chains (formats §4), exception tokens (§5)
 * and the trusted-time floor (§6) at the library level, against a real
 * openssl PKI.  Every refusal is checked for its rule and its words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "custody/chain.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "custody/sign.h"
#include "custody/token.h"
#include "custody/trust.h"
#include "custody/verify.h"
#include "station/clock.h"
#include "station/base/error.h"
#include "station/journal.h"
#include "station/release.h"
#include "tests/helpers.h"

static char *dir;
static struct cu_trust *trust;
static int64_t now;
static int counter;

static int setup(void **state)
{
	(void)state;
	now = (int64_t)time(NULL);
	return th_pki_trust(&dir, &trust);
}

static int teardown(void **state)
{
	(void)state;
	th_pki_free(dir, trust);
	return 0;
}

static struct cu_key *key(const char *name)
{
	char k[4200], p[4200];
	struct cu_key *out = NULL;
	struct stn_diag d;

	snprintf(k, sizeof(k), "%s/pki/%s.key", dir, name);
	snprintf(p, sizeof(p), "%s/pki/%s.pem", dir, name);
	stn_diag_init(&d);
	if (cu_key_load(k, p, &out, &d))
		fail_msg("key %s: %s", name, d.text);
	return out;
}

/* A fresh signed bundle (sequence seq, created a minute ago); returns its
 * directory (malloc'd). */
static char *bundle(uint64_t seq, int64_t created, int64_t expires)
{
	char img[4200], *out = malloc(4200), manifest[4300];
	struct stn_release_image ri = {"app", img, 0};
	struct stn_release rel = {.name = "tx200-app", .version = "2.4.1",
				  .model = "TX-200", .sequence = seq,
				  .created = created, .expires = expires,
				  .images = &ri, .nimages = 1};
	struct cu_key *k = key("release1");
	struct stn_diag d;

	snprintf(img, sizeof(img), "%s/img-%d.bin", dir, counter);
	th_write_str(img, "image bytes");
	snprintf(out, 4200, "%s/b%d", dir, counter++);
	snprintf(manifest, sizeof(manifest), "%s/manifest", out);
	stn_diag_init(&d);
	if (stn_release_create(&rel, out, &d) ||
	    cu_sign_file(k, manifest, "rel", &d))
		fail_msg("bundle: %s", d.text);
	cu_key_free(k);
	return out;
}

static void hand_on(const char *b, const char *signer, const char *to)
{
	char written[4400];
	struct cu_key *k = key(signer);
	struct stn_diag d;

	stn_diag_init(&d);
	if (cu_custody_append(b, k, to, NULL, NULL, now - 30, written,
			      sizeof(written), &d))
		fail_msg("custody add: %s", d.text);
	cu_key_free(k);
}

/* dispatch-office-3 -> courier-ana -> ana */
static char *chained_bundle(void)
{
	char *b = bundle(42, now - 60, now + 86400);
	hand_on(b, "custody3", "courier-ana");
	hand_on(b, "custody1", "ana");
	return b;
}

static struct cu_policy custody_policy(const char *technician)
{
	struct cu_policy p = {.release_threshold = 1,
			      .require_custody = 1,
			      .max_custody_hops = 8,
			      .max_custody_age = 30 * 86400,
			      .technician = technician,
			      .max_token_ttl = 72 * 3600,
			      .site = "plant-7",
			      .station = "STN-0042"};
	return p;
}

static int verify_at(const char *b, const struct cu_policy *p, int64_t at,
		     struct cu_bundle **out, struct stn_diag *d)
{
	stn_diag_init(d);
	*out = NULL;
	return cu_bundle_verify(b, NULL, trust, p, at, out, d);
}

#define EXPECT(rc_, code_, words_)                                             \
	do {                                                                   \
		if ((rc_) != (code_) || !strstr(d.text, (words_)))             \
			fail_msg("rc %d (want %d), where '%s', text '%s'",     \
				 (rc_), (code_), d.where, d.text);             \
	} while (0)

/* Writes a custody record by hand and signs it with `signer`. */
static void forge(const char *b, const char *file, const char *signer,
		  const char *text)
{
	char path[4400];
	struct cu_key *k = key(signer);
	struct stn_diag d;

	snprintf(path, sizeof(path), "%s/custody/%s", b, file);
	th_write_str(path, text);
	stn_diag_init(&d);
	if (cu_sign_file(k, path, NULL, &d))
		fail_msg("sign: %s", d.text);
	cu_key_free(k);
}

static void read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
}

/* Replace the first occurrence of `key = ...` line in text. */
static void set_line(char *text, size_t cap, const char *k, const char *v)
{
	char out[4096], *at = strstr(text, k), *eol;
	assert_non_null(at);
	eol = strchr(at, '\n');
	snprintf(out, sizeof(out), "%.*s%s = %s%s", (int)(at - text), text, k,
		 v, eol ? eol : "");
	snprintf(text, cap, "%s", out);
}

static void custody_accepts_a_complete_chain_to_the_technician(void **state)
{
	char *b = chained_bundle();
	struct cu_policy p = custody_policy("ana");
	struct cu_bundle *bd;
	struct stn_diag d;

	(void)state;
	assert_int_equal(verify_at(b, &p, now, &bd, &d), 0);
	assert_int_equal(cu_bundle_check(bd, CU_CHECK_CUSTODY)->outcome,
			 CU_PASSED);
	const struct cu_chain *c = cu_bundle_chain(bd);
	assert_int_equal(c->n, 2);
	assert_string_equal(c->hops[0].from, "dispatch-office-3");
	assert_string_equal(c->hops[1].to, "ana");
	cu_bundle_free(bd);
	free(b);
}

struct chain_case {
	const char *title;
	const char *technician;
	int64_t at_offset;
	unsigned max_hops;
	int64_t max_age;
	int code;
	const char *words;
};

static void custody_policy_limits_are_enforced(void **state)
{
	static const struct chain_case cases[] = {
		{"last holder not the technician", "bo", 0, 8, 30 * 86400,
		 STN_E_CUSTODY, "last holder is ana, not the technician "
				"signed in (bo)"},
		{"nobody signed in", NULL, 0, 8, 30 * 86400, STN_E_CUSTODY,
		 "no technician is signed in"},
		{"too many hops", "ana", 0, 1, 30 * 86400, STN_E_CUSTODY,
		 "2 records, more than max-custody-hops 1"},
		{"chain too old", "ana", 3 * 86400, 8, 86400, STN_E_CUSTODY,
		 "chain too old"},
		{"last record in the future", "ana", -3600, 8, 30 * 86400,
		 STN_E_CUSTODY, "after the session start"},
	};
	char *b = chained_bundle();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct chain_case *c = &cases[i];
		struct cu_policy p = custody_policy(c->technician);
		struct cu_bundle *bd;
		struct stn_diag d;
		int rc;

		p.max_custody_hops = c->max_hops;
		p.max_custody_age = c->max_age;
		stn_diag_init(&d);
		/* a bundle valid then too: check the custody outcome */
		rc = verify_at(b, &p, now + c->at_offset, &bd, &d);
		const struct cu_check_result *r =
			cu_bundle_check(bd, CU_CHECK_CUSTODY);
		if (r->outcome != CU_FAILED || r->diag.code != c->code ||
		    !strstr(r->diag.text, c->words))
			fail_msg("%s: rc %d outcome %d text '%s'", c->title, rc,
				 r->outcome, r->diag.text);
		cu_bundle_free(bd);
	}
	free(b);
}

static void custody_refuses_each_broken_rule_naming_the_record(void **state)
{
	struct cu_policy p = custody_policy("ana");
	struct cu_bundle *bd;
	struct stn_diag d;
	char path[4400], text[4096], t[CU_TIME_LEN + 1];
	int rc;

	(void)state;
	/* gap: records 1 and 3 */
	char *b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody", b);
	char from[4500], to[4500];
	snprintf(from, sizeof(from), "%s/02.rec", path);
	snprintf(to, sizeof(to), "%s/03.rec", path);
	assert_int_equal(rename(from, to), 0);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY, "gap: no record with index 2");
	assert_non_null(strstr(d.where, "/custody"));
	cu_bundle_free(bd);
	free(b);

	/* reordered: 01 and 02 swapped with their signatures */
	b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody", b);
	const char *ext[] = {"", ".sig", ".pem"};
	for (int i = 0; i < 3; i++) {
		char a[4500], c[4500], tmp[4500];
		snprintf(a, sizeof(a), "%s/01.rec%s", path, ext[i]);
		snprintf(c, sizeof(c), "%s/02.rec%s", path, ext[i]);
		snprintf(tmp, sizeof(tmp), "%s/x%s", path, ext[i]);
		assert_int_equal(rename(a, tmp), 0);
		assert_int_equal(rename(c, a), 0);
		assert_int_equal(rename(tmp, c), 0);
	}
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY, "says index 2 but is file 01.rec");
	assert_non_null(strstr(d.where, "custody/01.rec"));
	cu_bundle_free(bd);
	free(b);

	/* wrong signer: record 2 says from courier-ana, signed by courier-bo */
	b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody/02.rec", b);
	read_file(path, text, sizeof(text));
	forge(b, "02.rec", "custody2", text);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY,
	       "signer CN courier-bo does not match from courier-ana");
	assert_non_null(strstr(d.where, "custody/02.rec"));
	cu_bundle_free(bd);
	free(b);

	/* broken previous hash: record 1 edited (and re-signed by its own
	 * signer) after record 2 was made */
	b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody/01.rec", b);
	read_file(path, text, sizeof(text));
	strcat(text, "seal = BAG-99\n");
	forge(b, "01.rec", "custody3", text);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY,
	       "previous does not match the SHA-256 of the previous record");
	assert_non_null(strstr(d.where, "custody/02.rec"));
	cu_bundle_free(bd);
	free(b);

	/* record for another bundle */
	b = chained_bundle();
	char *other = bundle(43, now - 60, now + 86400);
	snprintf(path, sizeof(path), "%s/custody/01.rec", b);
	read_file(path, text, sizeof(text));
	{
		char mp[4400], otext[4096];
		uint8_t id[32];
		char hex[65];
		snprintf(mp, sizeof(mp), "%s/manifest", other);
		read_file(mp, otext, sizeof(otext));
		assert_int_equal(cu_sha256(otext, strlen(otext), id), 0);
		cu_hex(id, 32, hex);
		set_line(text, sizeof(text), "bundle", hex);
	}
	forge(b, "01.rec", "custody3", text);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY, "is for another bundle");
	cu_bundle_free(bd);
	free(b);
	free(other);

	/* time going backwards: record 2 before record 1 */
	b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody/02.rec", b);
	read_file(path, text, sizeof(text));
	cu_time_format(now - 45, t);
	set_line(text, sizeof(text), "time", t);
	forge(b, "02.rec", "custody1", text);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY, "time goes backwards");
	cu_bundle_free(bd);
	free(b);

	/* first record before the bundle was created */
	b = bundle(42, now - 60, now + 86400);
	{
		char written[4400];
		struct cu_key *k = key("custody3");
		stn_diag_init(&d);
		assert_int_equal(cu_custody_append(b, k, "ana", NULL, NULL,
						   now - 3600, written,
						   sizeof(written), &d),
				 0);
		cu_key_free(k);
	}
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY, "before the bundle was created");
	cu_bundle_free(bd);
	free(b);

	/* handed on by someone who did not hold it */
	b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody/02.rec", b);
	read_file(path, text, sizeof(text));
	set_line(text, sizeof(text), "from", "courier-bo");
	forge(b, "02.rec", "custody2", text);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY,
	       "from courier-bo, but record 01 handed the media to "
	       "courier-ana");
	cu_bundle_free(bd);
	free(b);

	/* unsigned record */
	b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody/02.rec.sig", b);
	unlink(path);
	snprintf(path, sizeof(path), "%s/custody/02.rec.pem", b);
	unlink(path);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_CUSTODY, "is not signed");
	cu_bundle_free(bd);
	free(b);

	/* a record signed by a release key: wrong role */
	b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody/02.rec", b);
	read_file(path, text, sizeof(text));
	forge(b, "02.rec", "release1", text);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_ROLE, "holds role release, not custody");
	cu_bundle_free(bd);
	free(b);

	/* a malformed record: unknown key */
	b = chained_bundle();
	snprintf(path, sizeof(path), "%s/custody/02.rec", b);
	read_file(path, text, sizeof(text));
	strcat(text, "colour = red\n");
	forge(b, "02.rec", "custody1", text);
	rc = verify_at(b, &p, now, &bd, &d);
	EXPECT(rc, STN_E_SYNTAX, "unknown key 'colour'");
	assert_non_null(strstr(d.where, "custody/02.rec:"));
	cu_bundle_free(bd);
	free(b);
}

static void custody_add_only_lets_the_holder_hand_on(void **state)
{
	char *b = chained_bundle();
	char written[4400];
	struct cu_key *k = key("custody2");
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_custody_append(b, k, "x", NULL, NULL, now, written,
					   sizeof(written), &d),
			 STN_E_CUSTODY);
	assert_non_null(strstr(d.text, "handed to ana, not to you "
					"(certificate CN courier-bo)"));
	cu_key_free(k);
	free(b);
}

/* --- tokens ------------------------------------------------------------ */

static void issue(const char *b, const char *signer, unsigned waive,
		  const char *device, int64_t when, int64_t ttl,
		  const char *site, const char *station, const char *name)
{
	const char *devs[] = {device};
	char written[4400];
	struct cu_key *k = key(signer);
	struct stn_diag d;

	stn_diag_init(&d);
	if (cu_token_issue(b, k, waive, devs, 1, site, station, when, ttl,
			   "CVE-2026-1234 field fix, ticket OPS-881", name,
			   written, sizeof(written), &d))
		fail_msg("token issue: %s", d.text);
	cu_key_free(k);
}

static int device_check(const char *b, int64_t at, uint64_t installed,
			const unsigned char *replayed,
			struct cu_device_verdict *v, struct stn_diag *d)
{
	struct cu_policy p = custody_policy("ana");
	struct cu_bundle *bd = NULL;
	struct cu_identity id;
	struct cu_installed inst = {installed, CU_SEQ_DEVICE};
	int rc;

	p.require_custody = 0;
	memset(&id, 0, sizeof(id));
	strcpy(id.model, "TX-200");
	strcpy(id.serial, "SN-0001");
	stn_diag_init(d);
	(void)cu_bundle_verify(b, NULL, trust, &p, at, &bd, d);
	assert_non_null(bd);
	stn_diag_init(d);
	rc = cu_device_check(bd, &id, "dev", &inst, 0, replayed, v, d);
	cu_bundle_free(bd);
	return rc;
}

static void token_waives_a_downgrade_for_the_named_device(void **state)
{
	char *b = bundle(40, now - 60, now + 86400);
	struct cu_device_verdict v;
	struct stn_diag d;

	(void)state;
	issue(b, "exception1", CU_WAIVE_DOWNGRADE, "SN-0001", now - 10, 3600,
	      "plant-7", "STN-0042", "rollback");
	assert_int_equal(device_check(b, now, 41, NULL, &v, &d), 0);
	assert_int_equal(v.sequence.outcome, CU_WAIVED);
	assert_non_null(strstr(v.sequence.diag.text, "waived (downgrade)"));
	assert_int_equal(v.napplied, 1);
	free(b);
}

static void token_waives_an_expired_bundle_but_not_a_reinstall(void **state)
{
	char *b = bundle(41, now - 7200, now - 3600);
	struct cu_device_verdict v;
	struct stn_diag d;
	int rc;

	(void)state;
	issue(b, "exception1", CU_WAIVE_EXPIRED | CU_WAIVE_DOWNGRADE, "SN-0001",
	      now - 10, 3600, NULL, NULL, "late");
	assert_int_equal(device_check(b, now, 40, NULL, &v, &d), 0);
	assert_int_equal(v.validity.outcome, CU_WAIVED);
	/* equal sequence: a reinstall needs confirmation, not a token */
	rc = device_check(b, now, 41, NULL, &v, &d);
	EXPECT(rc, STN_E_REINSTALL, "confirm to reinstall");
	free(b);
}

struct token_case {
	const char *title;
	const char *signer;
	unsigned waive;
	const char *device;
	int64_t issued_offset, ttl;
	const char *site, *station;
	int replayed;
	int code;
	const char *words;
};

static void token_refusals_say_why_the_token_cannot_waive(void **state)
{
	static const struct token_case cases[] = {
		{"another device", "exception1", CU_WAIVE_DOWNGRADE, "SN-0002",
		 -10, 3600, NULL, NULL, 0, STN_E_TOKEN,
		 "does not name device SN-0001"},
		{"expired", "exception1", CU_WAIVE_DOWNGRADE, "SN-0001",
		 -7200, 3600, NULL, NULL, 0, STN_E_TOKEN, "expired at"},
		{"not yet valid", "exception1", CU_WAIVE_DOWNGRADE, "SN-0001",
		 3600, 3600, NULL, NULL, 0, STN_E_TOKEN, "not valid before"},
		{"lifetime over policy", "exception1", CU_WAIVE_DOWNGRADE,
		 "SN-0001", -10, 100 * 3600, NULL, NULL, 0, STN_E_TOKEN,
		 "over policy max-token-ttl"},
		{"another site", "exception1", CU_WAIVE_DOWNGRADE, "SN-0001",
		 -10, 3600, "plant-9", NULL, 0, STN_E_TOKEN,
		 "is for site plant-9, this station is at plant-7"},
		{"another station", "exception1", CU_WAIVE_DOWNGRADE, "SN-0001",
		 -10, 3600, NULL, "STN-0001", 0, STN_E_TOKEN,
		 "is for station STN-0001, this is STN-0042"},
		{"replayed", "exception1", CU_WAIVE_DOWNGRADE, "SN-0001", -10,
		 3600, NULL, NULL, 1, STN_E_TOKEN, "already used on this device"},
		{"signed by a release signer", "release2", CU_WAIVE_DOWNGRADE,
		 "SN-0001", -10, 3600, NULL, NULL, 0, STN_E_TOKEN,
		 "holds role release, not exception"},
		{"signed by a custody cert", "custody1", CU_WAIVE_DOWNGRADE,
		 "SN-0001", -10, 3600, NULL, NULL, 0, STN_E_TOKEN,
		 "holds role custody, not exception"},
		{"wrong waiver", "exception1", CU_WAIVE_TARGET, "SN-0001", -10,
		 3600, NULL, NULL, 0, STN_E_DOWNGRADE, "is older than installed"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct token_case *c = &cases[i];
		char *b = bundle(40, now - 60, now + 86400);
		unsigned char replayed[CU_MAX_TOKENS] = {0};
		struct cu_device_verdict v;
		struct stn_diag d;
		int rc;

		issue(b, c->signer, c->waive, c->device,
		      now + c->issued_offset, c->ttl, c->site, c->station,
		      "t");
		replayed[0] = (unsigned char)c->replayed;
		rc = device_check(b, now, 41, replayed, &v, &d);
		if (rc != c->code || !strstr(d.text, c->words))
			fail_msg("%s: rc %d text '%s'", c->title, rc, d.text);
		if (rc == STN_E_TOKEN &&
		    !strstr(d.text, "is older than installed 41"))
			fail_msg("%s: the check's own reason is lost: '%s'",
				 c->title, d.text);
		free(b);
	}
}

static void token_for_another_bundle_cannot_waive(void **state)
{
	char *b = bundle(40, now - 60, now + 86400);
	char *other = bundle(40, now - 60, now + 86400);
	char from[4400], to[4400];
	struct cu_device_verdict v;
	struct stn_diag d;
	int rc;

	(void)state;
	issue(other, "exception1", CU_WAIVE_DOWNGRADE, "SN-0001", now - 10,
	      3600, NULL, NULL, "moved");
	snprintf(from, sizeof(from), "%s/tokens", other);
	snprintf(to, sizeof(to), "%s/tokens", b);
	assert_int_equal(rename(from, to), 0);
	rc = device_check(b, now, 41, NULL, &v, &d);
	EXPECT(rc, STN_E_TOKEN, "is for another bundle");
	free(b);
	free(other);
}

/* `attestation` is a waiver word like the others (formats §5): parsed,
 * named back in §5's order, and read from a token's `waive` line. */
static void token_waiver_words_include_attestation(void **state)
{
	static const char tok[] =
		"format = station-token-1\n"
		"id = 5f0c2a9e41d37b86a0e4c1d2b3f4a5e6\n"
		"bundle = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b"
		"0f00a08\n"
		"waive = %s\n"
		"devices = SN-0001\n"
		"issued = 2026-11-20T09:00:00Z\n"
		"expires = 2026-11-21T09:00:00Z\n"
		"reason = unit without a device key, ticket OPS-900\n";
	char text[1024], names[64], small[20];
	uint8_t bundle_id[CU_SHA256_LEN];
	struct cu_token t;
	struct stn_diag d;
	unsigned w = 0;

	(void)state;
	assert_int_equal(cu_waiver_parse("attestation", &w), 0);
	assert_int_equal(w, CU_WAIVE_ATTESTATION);
	assert_int_equal(cu_waiver_parse("custody attestation target", &w), 0);
	assert_int_equal(w, CU_WAIVE_CUSTODY | CU_WAIVE_ATTESTATION |
				    CU_WAIVE_TARGET);
	assert_int_equal(cu_waiver_parse("attest", &w), -1);
	assert_string_equal(cu_waiver_names(CU_WAIVE_ALL, names, sizeof(names)),
			    "downgrade expired target custody attestation");
	/* a short buffer keeps whole words, never a cut one */
	assert_string_equal(cu_waiver_names(CU_WAIVE_ALL, small, sizeof(small)),
			    "downgrade expired");

	snprintf(text, sizeof(text), tok, "attestation downgrade");
	stn_diag_init(&d);
	assert_int_equal(cu_token_parse(text, strlen(text), "t.tok", &t,
					bundle_id, &d),
			 0);
	assert_int_equal(t.waive, CU_WAIVE_ATTESTATION | CU_WAIVE_DOWNGRADE);
	snprintf(text, sizeof(text), tok, "identity");
	stn_diag_init(&d);
	assert_int_equal(cu_token_parse(text, strlen(text), "t.tok", &t,
					bundle_id, &d),
			 STN_E_SYNTAX);
	assert_non_null(strstr(d.where, "t.tok:4"));
	assert_non_null(strstr(d.text, "'waive' must list downgrade, expired, "
					"target, custody or attestation"));
}

/* --- trusted time --------------------------------------------------------- */

static void clock_behind_the_floor_is_refused_and_floor_only_rises(void **state)
{
	char data[4200], path[4300], t[CU_TIME_LEN + 1];
	struct stn_journal *j = NULL;
	struct stn_diag d;
	int64_t floor = 0;

	(void)state;
	snprintf(data, sizeof(data), "%s/data-clock", dir);
	mkdir(data, 0700);
	stn_diag_init(&d);
	assert_int_equal(stn_clock_check(data, NULL, now, &floor, NULL, &d), 0);
	assert_true(floor == now);
	/* a clock 4 minutes behind is tolerated, 6 is not */
	assert_int_equal(stn_clock_check(data, NULL, now - 240, &floor, NULL,
					 &d), 0);
	assert_true(floor == now); /* never lowered */
	stn_diag_init(&d);
	assert_int_equal(stn_clock_check(data, NULL, now - 360, &floor, NULL,
					 &d),
			 STN_E_CLOCK);
	assert_non_null(strstr(d.text, "more than 5 minutes behind the "
					"trusted-time floor"));
	/* accepted signed times raise it */
	assert_int_equal(stn_clock_raise(data, now + 3600, &d), 0);
	stn_diag_init(&d);
	assert_int_equal(stn_clock_check(data, NULL, now, &floor, NULL, &d),
			 STN_E_CLOCK);
	/* deleting the file does not lower the floor below the journal */
	snprintf(path, sizeof(path), "%s/time-floor", data);
	unlink(path);
	snprintf(path, sizeof(path), "%s/journal.db", data);
	stn_diag_init(&d);
	assert_int_equal(stn_journal_open(path, &j, &d), 0);
	assert_int_equal(stn_journal_append(j, now + 7200, "x", "s", NULL, 0,
					    NULL, &d),
			 0);
	stn_diag_init(&d);
	assert_int_equal(stn_clock_check(data, j, now, &floor, NULL, &d),
			 STN_E_CLOCK);
	cu_time_format(now + 7200, t);
	assert_non_null(strstr(d.text, t));
	stn_journal_close(j);
	/* a damaged floor file: tests/test_clock.c */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			custody_accepts_a_complete_chain_to_the_technician),
		cmocka_unit_test(custody_policy_limits_are_enforced),
		cmocka_unit_test(
			custody_refuses_each_broken_rule_naming_the_record),
		cmocka_unit_test(custody_add_only_lets_the_holder_hand_on),
		cmocka_unit_test(token_waives_a_downgrade_for_the_named_device),
		cmocka_unit_test(
			token_waives_an_expired_bundle_but_not_a_reinstall),
		cmocka_unit_test(token_refusals_say_why_the_token_cannot_waive),
		cmocka_unit_test(token_for_another_bundle_cannot_waive),
		cmocka_unit_test(token_waiver_words_include_attestation),
		cmocka_unit_test(
			clock_behind_the_floor_is_refused_and_floor_only_rises),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
