/* tests/test_verify.c: the manifest's form and the acceptance checks 1 to 5
 * of formats §3, against a real openssl test PKI.  Each refusal is checked
 * for its rule and its reason, not only for failing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "custody/chain.h"
#include "custody/manifest.h"
#include "custody/sig.h"
#include "custody/token.h"
#include "custody/sign.h"
#include "custody/trust.h"
#include "custody/verify.h"
#include "station/base/error.h"
#include "station/release.h"
#include "tests/helpers.h"

static char *dir;
static struct cu_trust *trust;
static int64_t now;

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

/* A bundle named `name` with one 4 KiB image, signed by each key listed. */
static char *make_bundle(const char *name, uint64_t seq, const char *model,
			 const char *const *hw, size_t nhw,
			 const char *const *signers)
{
	char img[4200], *out = malloc(4200);
	uint8_t data[4096];
	struct stn_release_image ri = {"app", img, 0};
	struct stn_release rel = {.name = "tx200-app", .version = "2.4.1",
				  .model = model, .sequence = seq,
				  .created = now - 60, .expires = now + 86400,
				  .hardware = hw, .nhardware = nhw,
				  .images = &ri, .nimages = 1};
	struct stn_diag d;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + seq);
	snprintf(img, sizeof(img), "%s/app-%s.bin", dir, name);
	th_write(img, data, sizeof(data));
	snprintf(out, 4200, "%s/%s", dir, name);
	stn_diag_init(&d);
	if (stn_release_create(&rel, out, &d))
		fail_msg("bundle: %s: %s", d.where, d.text);
	for (size_t i = 0; signers && signers[i]; i++) {
		char key[4200], pem[4200], manifest[4200], label[32];
		struct cu_key *k = NULL;
		snprintf(key, sizeof(key), "%s/pki/%s.key", dir, signers[i]);
		snprintf(pem, sizeof(pem), "%s/pki/%s.pem", dir, signers[i]);
		snprintf(manifest, sizeof(manifest), "%s/manifest", out);
		snprintf(label, sizeof(label), "s%zu", i);
		if (cu_key_load(key, pem, &k, &d) ||
		    cu_sign_file(k, manifest, label, &d))
			fail_msg("sign: %s: %s", d.where, d.text);
		cu_key_free(k);
	}
	return out;
}

static int verify(const char *bdir, unsigned threshold,
		  struct cu_bundle **b, struct stn_diag *d)
{
	struct cu_policy p = {.release_threshold = threshold,
			      .max_token_ttl = 72 * 3600};
	stn_diag_init(d);
	*b = NULL;
	return cu_bundle_verify(bdir, NULL, trust, &p, now, b, d);
}

static void verify_accepts_a_bundle_signed_by_a_release_key(void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("good", 42, "TX-200", NULL, 0, signers);
	struct cu_bundle *bundle;
	struct stn_diag d;
	size_t n;

	(void)state;
	assert_int_equal(verify(b, 1, &bundle, &d), 0);
	assert_string_equal(cu_bundle_signers(bundle, &n)[0].cn, "release-1");
	assert_int_equal(cu_bundle_check(bundle, CU_CHECK_SIGNATURES)->outcome,
			 CU_PASSED);
	assert_int_equal(cu_bundle_check(bundle, CU_CHECK_CUSTODY)->outcome,
			 CU_NOT_REQUIRED);
	cu_bundle_free(bundle);
	free(b);
}

static void verify_counts_the_same_key_twice_once(void **state)
{
	const char *const twice[] = {"release1", "release1", NULL};
	const char *const two[] = {"release1", "release2", NULL};
	char *b1 = make_bundle("twice", 42, "TX-200", NULL, 0, twice);
	char *b2 = make_bundle("two", 42, "TX-200", NULL, 0, two);
	struct cu_bundle *bundle;
	struct stn_diag d;

	(void)state;
	assert_int_equal(verify(b1, 2, &bundle, &d), STN_E_THRESHOLD);
	assert_non_null(strstr(d.text, "1 valid release signature(s) from "
					"distinct keys"));
	assert_non_null(strstr(d.text, "2 required"));
	cu_bundle_free(bundle);
	assert_int_equal(verify(b2, 2, &bundle, &d), 0);
	cu_bundle_free(bundle);
	free(b1);
	free(b2);
}

static void verify_refuses_unsigned_and_wrong_role(void **state)
{
	const char *const custody[] = {"custody1", NULL};
	char *b1 = make_bundle("unsigned", 42, "TX-200", NULL, 0, NULL);
	char *b2 = make_bundle("custody-signed", 42, "TX-200", NULL, 0, custody);
	struct cu_bundle *bundle;
	struct stn_diag d;

	(void)state;
	assert_int_equal(verify(b1, 1, &bundle, &d), STN_E_THRESHOLD);
	assert_non_null(strstr(d.text, "unsigned"));
	assert_non_null(strstr(d.where, "unsigned/manifest"));
	cu_bundle_free(bundle);
	assert_int_equal(verify(b2, 1, &bundle, &d), STN_E_ROLE);
	if (!strstr(d.where, "manifest.s0.") || !strstr(d.text, "custody"))
		fail_msg("where '%s' text '%s'", d.where, d.text);
	cu_bundle_free(bundle);
	free(b1);
	free(b2);
}

static void verify_refuses_image_changes_naming_the_file(void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("img", 42, "TX-200", NULL, 0, signers);
	char path[4200], target[4200];
	struct cu_bundle *bundle;
	struct stn_diag d;
	uint8_t data[4096];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/app-img.bin", b);
	/* flipped byte */
	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fread(data, 1, sizeof(data), f), sizeof(data));
	data[100] ^= 1;
	rewind(f);
	fwrite(data, 1, sizeof(data), f);
	fclose(f);
	assert_int_equal(verify(b, 1, &bundle, &d), STN_E_IMAGE);
	assert_non_null(strstr(d.where, "app-img.bin"));
	assert_non_null(strstr(d.text, "manifest says"));
	assert_int_equal(cu_bundle_check(bundle, CU_CHECK_SIGNATURES)->outcome,
			 CU_PASSED); /* the others still ran */
	cu_bundle_free(bundle);
	/* one byte long */
	th_write(path, data, sizeof(data) - 1);
	assert_int_equal(verify(b, 1, &bundle, &d), STN_E_IMAGE);
	assert_non_null(strstr(d.text, "size is 4095 bytes, manifest says 4096"));
	cu_bundle_free(bundle);
	/* missing */
	unlink(path);
	assert_int_equal(verify(b, 1, &bundle, &d), STN_E_IMAGE);
	assert_non_null(strstr(d.text, "missing"));
	cu_bundle_free(bundle);
	/* symlink to a file with the right bytes is still refused */
	snprintf(target, sizeof(target), "%s/elsewhere.bin", dir);
	data[100] ^= 1;
	th_write(target, data, sizeof(data));
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(verify(b, 1, &bundle, &d), STN_E_IMAGE);
	assert_non_null(strstr(d.text, "symbolic link"));
	cu_bundle_free(bundle);
	free(b);
}

static void verify_refuses_outside_the_validity_window(void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("window", 42, "TX-200", NULL, 0, signers);
	struct cu_policy p = {.release_threshold = 1};
	struct cu_bundle *bundle;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_bundle_verify(b, NULL, trust, &p, now + 2 * 86400,
					  &bundle, &d),
			 STN_E_VALIDITY);
	assert_non_null(strstr(d.text, "expired at"));
	cu_bundle_free(bundle);
	stn_diag_init(&d);
	assert_int_equal(cu_bundle_verify(b, NULL, trust, &p, now - 3600,
					  &bundle, &d),
			 STN_E_VALIDITY);
	assert_non_null(strstr(d.text, "not valid before"));
	cu_bundle_free(bundle);
	free(b);
}

static void verify_refuses_a_bundle_without_custody_when_policy_requires_it(
	void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("custody", 42, "TX-200", NULL, 0, signers);
	struct cu_policy p = {.release_threshold = 1, .require_custody = 1,
			      .max_custody_hops = 8,
			      .max_custody_age = 30 * 86400,
			      .technician = "ana"};
	struct cu_bundle *bundle;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_bundle_verify(b, NULL, trust, &p, now, &bundle, &d),
			 STN_E_CUSTODY);
	assert_non_null(strstr(d.text, "no custody records"));
	assert_non_null(strstr(d.where, "custody/custody"));
	cu_bundle_free(bundle);
	free(b);
}

struct device_case {
	const char *title;
	const char *model, *hardware;
	uint64_t installed;
	enum cu_seq_source source;
	int reinstall;
	int code;
	const char *reason;
};

static void device_checks_cover_target_and_sequence(void **state)
{
	static const char *const hw[] = {"revB", "revC"};
	static const struct device_case cases[] = {
		{"newer", "TX-200", "revB", 41, CU_SEQ_DEVICE, 0, 0,
		 "newer than installed 41 (reported by the device)"},
		{"unknown installed", "TX-200", "revC", 0, CU_SEQ_UNKNOWN, 0, 0,
		 "installed sequence unknown"},
		{"journal says older", "TX-200", "revB", 40, CU_SEQ_JOURNAL, 0,
		 0, "from this station's journal"},
		{"wrong model", "TX-100", "revB", 1, CU_SEQ_DEVICE, 0,
		 STN_E_TARGET, "is model TX-100, the bundle is for TX-200"},
		{"wrong hardware", "TX-200", "revA", 1, CU_SEQ_DEVICE, 0,
		 STN_E_TARGET, "is hardware revA"},
		{"no hardware reported", "TX-200", "", 1, CU_SEQ_DEVICE, 0,
		 STN_E_TARGET, "hardware (none)"},
		{"downgrade", "TX-200", "revB", 43, CU_SEQ_DEVICE, 0,
		 STN_E_DOWNGRADE, "sequence 42 is older than installed 43"},
		{"downgrade from journal", "TX-200", "revB", 50, CU_SEQ_JOURNAL,
		 1, STN_E_DOWNGRADE, "from this station's journal"},
		{"equal unconfirmed", "TX-200", "revB", 42, CU_SEQ_DEVICE, 0,
		 STN_E_REINSTALL, "confirm to reinstall"},
		{"equal confirmed", "TX-200", "revB", 42, CU_SEQ_DEVICE, 1, 0,
		 "reinstall confirmed"},
	};
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("dev", 42, "TX-200", hw, 2, signers);
	struct cu_bundle *bundle;
	struct stn_diag d;

	(void)state;
	assert_int_equal(verify(b, 1, &bundle, &d), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct device_case *c = &cases[i];
		struct cu_identity id;
		struct cu_installed inst = {c->installed, c->source};
		struct cu_device_verdict v;

		memset(&id, 0, sizeof(id));
		strcpy(id.model, c->model);
		strcpy(id.hardware, c->hardware);
		strcpy(id.serial, "SN-1");
		stn_diag_init(&d);
		int rc = cu_device_check(bundle, &id, "dev", &inst, c->reinstall,
					 NULL, &v, &d);
		const char *text = rc ? d.text
				      : v.sequence.diag.text;
		if (rc != c->code || !strstr(text, c->reason))
			fail_msg("%s: rc %d text '%s'", c->title, rc, text);
	}
	cu_bundle_free(bundle);
	free(b);
}

static void device_check_never_passes_a_refused_bundle(void **state)
{
	char *b = make_bundle("refused", 42, "TX-200", NULL, 0, NULL);
	struct cu_bundle *bundle;
	struct cu_identity id;
	struct cu_installed inst = {0, CU_SEQ_UNKNOWN};
	struct cu_device_verdict v;
	struct stn_diag d;

	(void)state;
	assert_int_equal(verify(b, 1, &bundle, &d), STN_E_THRESHOLD);
	memset(&id, 0, sizeof(id));
	strcpy(id.model, "TX-200");
	strcpy(id.serial, "SN-1");
	stn_diag_init(&d);
	assert_int_equal(cu_device_check(bundle, &id, "dev", &inst, 0, NULL, &v,
					 &d),
			 STN_E_THRESHOLD);
	cu_bundle_free(bundle);
	free(b);
}

/* --- device class policy (formats §3 checks 1 and 7, §5, §8, §9) ---- */

static struct cu_key *test_key(const char *name)
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

/* An exception token in bundle b waiving `waive` for `device`, issued a
 * minute ago for ttl seconds. */
static void issue_token(const char *b, unsigned waive, const char *device,
			int64_t ttl, const char *name)
{
	const char *devs[] = {device};
	char written[4400];
	struct cu_key *k = test_key("exception1");
	struct stn_diag d;

	stn_diag_init(&d);
	if (cu_token_issue(b, k, waive, devs, 1, NULL, NULL, now - 60, ttl,
			   "unit without a device key, ticket OPS-900", name,
			   written, sizeof(written), &d))
		fail_msg("token: %s", d.text);
	cu_key_free(k);
}

/* The tx200 class of formats §8's example, with attestation as given. */
static struct cu_device_policy tx200_policy(enum cu_attest_policy pol,
					    enum cu_attest_state st)
{
	struct cu_device_policy dp = {
		.class_name = "tx200",
		.release_threshold = 1,
		.require_custody = 0,
		.max_token_ttl = 12 * 3600,
		.waivable = CU_WAIVE_ALL,
		.attestation = pol,
		.attest = st,
		.attest_why = st == CU_ATTEST_FAILED
				      ? "the device certificate is for serial "
					"SN-0099, the device claims SN-0001"
				      : st == CU_ATTEST_ABSENT
						? "the device has no device key"
						: NULL,
	};
	return dp;
}

static void policy_check(const char *b, const char *model, uint64_t installed,
			 const struct cu_device_policy *dp, int *rc,
			 struct cu_device_verdict *v, struct stn_diag *d)
{
	struct cu_bundle *bundle;
	struct cu_identity id;
	struct cu_installed inst = {installed, CU_SEQ_DEVICE};

	if (verify(b, 1, &bundle, d) != 0)
		fail_msg("bundle: %s: %s", d->where, d->text);
	memset(&id, 0, sizeof(id));
	strcpy(id.model, model);
	strcpy(id.serial, "SN-0001");
	stn_diag_init(d);
	*rc = cu_device_check_policy(bundle, &id, "dev", &inst, 0, NULL, dp,
				     v, d);
	cu_bundle_free(bundle);
}

struct attest_case {
	const char *title;
	enum cu_attest_policy pol;
	enum cu_attest_state st;
	unsigned token_waive;    /* 0: no token */
	const char *token_device;
	int64_t token_ttl;
	unsigned class_waivable; /* 0: all */
	int code;
	enum cu_outcome outcome; /* of check 7 */
	const char *words;
};

/* Check 7 under each policy (formats §9 "Policy per class" and "Edges"),
 * with the class's limits on tokens (§3, §8). */
static void policy_check7_follows_the_class_attestation_policy(void **state)
{
	static const struct attest_case cases[] = {
		{"none, not asked", CU_ATTEST_POLICY_NONE,
		 CU_ATTEST_NOT_ASKED, 0, NULL, 0, 0, 0, CU_NOT_REQUIRED,
		 "not asked (attestation none in class tx200)"},
		{"required, proven", CU_ATTEST_POLICY_REQUIRED,
		 CU_ATTEST_PROVEN, 0, NULL, 0, 0, 0, CU_PASSED,
		 "proved it is serial SN-0001"},
		{"optional, absent is recorded", CU_ATTEST_POLICY_OPTIONAL,
		 CU_ATTEST_ABSENT, 0, NULL, 0, 0, 0, CU_NOT_REQUIRED,
		 "did not attest: the device has no device key; attestation "
		 "optional in class tx200: identity not proven"},
		{"required, absent", CU_ATTEST_POLICY_REQUIRED,
		 CU_ATTEST_ABSENT, 0, NULL, 0, 0, STN_E_ATTESTATION, CU_FAILED,
		 "did not attest: the device has no device key; class tx200 "
		 "requires attestation"},
		{"token waives attestation under required",
		 CU_ATTEST_POLICY_REQUIRED, CU_ATTEST_ABSENT,
		 CU_WAIVE_ATTESTATION, "SN-0001", 3600, 0, 0, CU_WAIVED,
		 "waived (attestation) by token"},
		{"no token admits a failed attestation",
		 CU_ATTEST_POLICY_REQUIRED, CU_ATTEST_FAILED,
		 CU_WAIVE_ATTESTATION, "SN-0001", 3600, 0, STN_E_ATTESTATION,
		 CU_FAILED, "certificate is for serial SN-0099, the device "
			    "claims SN-0001; token tokens/t.tok waives "
			    "attestation, but no token admits a failed "
			    "attestation"},
		{"failed under optional", CU_ATTEST_POLICY_OPTIONAL,
		 CU_ATTEST_FAILED, 0, NULL, 0, 0, STN_E_ATTESTATION, CU_FAILED,
		 "failed to prove its identity"},
		{"failed under none", CU_ATTEST_POLICY_NONE, CU_ATTEST_FAILED, 0,
		 NULL, 0, 0, STN_E_ATTESTATION, CU_FAILED,
		 "failed to prove its identity"},
		{"class forbids waiving attestation", CU_ATTEST_POLICY_REQUIRED,
		 CU_ATTEST_ABSENT, CU_WAIVE_ATTESTATION, "SN-0001", 3600,
		 CU_WAIVE_DOWNGRADE | CU_WAIVE_TARGET, STN_E_TOKEN, CU_FAILED,
		 "class tx200 requires attestation; token tokens/t.tok cannot "
		 "waive it: class tx200 does not let tokens waive attestation"},
		{"token lifetime over class ttl does not apply",
		 CU_ATTEST_POLICY_REQUIRED, CU_ATTEST_ABSENT,
		 CU_WAIVE_ATTESTATION, "SN-0001", 24 * 3600, 0, STN_E_TOKEN,
		 CU_FAILED, "its lifetime of 86400s is over class tx200's "
			    "max-token-ttl of 43200s"},
		{"token for another device", CU_ATTEST_POLICY_REQUIRED,
		 CU_ATTEST_ABSENT, CU_WAIVE_ATTESTATION, "SN-0002", 3600, 0,
		 STN_E_TOKEN, CU_FAILED, "does not name device SN-0001"},
		{"token waiving something else", CU_ATTEST_POLICY_REQUIRED,
		 CU_ATTEST_ABSENT, CU_WAIVE_TARGET, "SN-0001", 3600, 0,
		 STN_E_ATTESTATION, CU_FAILED, "requires attestation"},
		{"required but never asked", CU_ATTEST_POLICY_REQUIRED,
		 CU_ATTEST_NOT_ASKED, CU_WAIVE_ATTESTATION, "SN-0001", 3600, 0,
		 STN_E_ATTESTATION, CU_FAILED, "was not asked to attest, but class "
					 "tx200 requires attestation"},
	};
	const char *const signers[] = {"release1", NULL};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct attest_case *c = &cases[i];
		char name[32];
		struct cu_device_policy dp = tx200_policy(c->pol, c->st);
		struct cu_device_verdict v;
		struct stn_diag d;
		int rc;

		snprintf(name, sizeof(name), "att%zu", i);
		char *b = make_bundle(name, 42, "TX-200", NULL, 0, signers);
		if (c->token_waive)
			issue_token(b, c->token_waive, c->token_device,
				    c->token_ttl, "t");
		if (c->class_waivable)
			dp.waivable = c->class_waivable;
		policy_check(b, "TX-200", 41, &dp, &rc, &v, &d);
		const char *text = rc ? d.text : v.attestation.diag.text;
		if (rc != c->code || v.attestation.outcome != c->outcome ||
		    !strstr(text, c->words))
			fail_msg("%s: rc %d outcome %s text '%s'", c->title, rc,
				 cu_outcome_name(v.attestation.outcome), text);
		if (rc && strcmp(d.where, "dev") != 0)
			fail_msg("%s: names '%s', not the device", c->title,
				 d.where);
		if (c->outcome == CU_WAIVED && v.napplied != 1)
			fail_msg("%s: the token's use is not recorded",
				 c->title);
		free(b);
	}
	assert_string_equal(cu_check_name(CU_CHECK_ATTESTATION), "attestation");
}

/* Failures are named in the order 1, 2, 3, 7, 4, 5, 6 (formats §3): a
 * failed attestation before a target mismatch, while every outcome is
 * kept; an expired bundle before the attestation. */
static void policy_names_a_failed_attestation_before_a_target_mismatch(
	void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("order", 42, "TX-200", NULL, 0, signers);
	struct cu_device_policy dp = tx200_policy(CU_ATTEST_POLICY_REQUIRED,
						  CU_ATTEST_FAILED);
	struct cu_device_verdict v;
	struct stn_diag d;
	int rc;

	(void)state;
	policy_check(b, "TX-100", 43, &dp, &rc, &v, &d);
	assert_int_equal(rc, STN_E_ATTESTATION);
	assert_non_null(strstr(d.text, "failed to prove its identity"));
	assert_int_equal(v.target.outcome, CU_FAILED);
	assert_int_equal(v.sequence.outcome, CU_FAILED);
	/* check 2 comes before check 7 */
	struct cu_bundle *bundle;
	struct cu_identity id;
	struct cu_installed inst = {41, CU_SEQ_DEVICE};
	struct cu_policy p = {.release_threshold = 1};
	memset(&id, 0, sizeof(id));
	strcpy(id.model, "TX-200");
	strcpy(id.serial, "SN-0001");
	stn_diag_init(&d);
	(void)cu_bundle_verify(b, NULL, trust, &p, now + 2 * 86400, &bundle,
			       &d);
	assert_non_null(bundle);
	stn_diag_init(&d);
	rc = cu_device_check_policy(bundle, &id, "dev", &inst, 0, NULL, &dp,
				    &v, &d);
	assert_int_equal(rc, STN_E_VALIDITY);
	assert_int_equal(v.attestation.outcome, CU_FAILED);
	cu_bundle_free(bundle);
	free(b);
}

/* Check 1 per class: the gate may pass a bundle at a lower threshold; a
 * class that wants more signatures refuses it, naming itself, and no
 * token can change that. */
static void policy_applies_the_class_release_threshold(void **state)
{
	const char *const one[] = {"release1", NULL};
	const char *const two[] = {"release1", "release2", NULL};
	char *b1 = make_bundle("thr1", 42, "TX-200", NULL, 0, one);
	char *b2 = make_bundle("thr2", 42, "TX-200", NULL, 0, two);
	struct cu_device_policy dp = tx200_policy(CU_ATTEST_POLICY_NONE,
						  CU_ATTEST_NOT_ASKED);
	struct cu_device_verdict v;
	struct stn_diag d;
	int rc;

	(void)state;
	issue_token(b1, CU_WAIVE_ALL, "SN-0001", 3600, "all");
	dp.release_threshold = 2;
	policy_check(b1, "TX-200", 41, &dp, &rc, &v, &d);
	assert_int_equal(rc, STN_E_THRESHOLD);
	assert_non_null(strstr(d.text, "1 valid release signature(s) from "
					"distinct keys, class tx200 requires 2"));
	assert_non_null(strstr(d.where, "thr1/manifest"));
	assert_int_equal(v.signatures.outcome, CU_FAILED);
	policy_check(b2, "TX-200", 41, &dp, &rc, &v, &d);
	assert_int_equal(rc, 0);
	assert_int_equal(v.signatures.outcome, CU_PASSED);
	/* without a class, the bundle's own check 1 stands */
	policy_check(b1, "TX-200", 41, NULL, &rc, &v, &d);
	assert_int_equal(rc, 0);
	assert_int_equal(v.attestation.outcome, CU_NOT_REQUIRED);
	free(b1);
	free(b2);
}

/* Waivers beyond attestation obey the class too: its waivable mask and
 * its token lifetime. */
static void policy_limits_tokens_for_other_checks(void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("down", 42, "TX-200", NULL, 0, signers);
	struct cu_device_policy dp = tx200_policy(CU_ATTEST_POLICY_NONE,
						  CU_ATTEST_NOT_ASKED);
	struct cu_device_verdict v;
	struct stn_diag d;
	int rc;

	(void)state;
	issue_token(b, CU_WAIVE_DOWNGRADE, "SN-0001", 6 * 3600, "down");
	policy_check(b, "TX-200", 43, &dp, &rc, &v, &d);
	assert_int_equal(rc, 0);
	assert_int_equal(v.sequence.outcome, CU_WAIVED);
	dp.max_token_ttl = 3600;
	policy_check(b, "TX-200", 43, &dp, &rc, &v, &d);
	assert_int_equal(rc, STN_E_TOKEN);
	assert_non_null(strstr(d.text, "is older than installed 43"));
	assert_non_null(strstr(d.text, "over class tx200's max-token-ttl"));
	dp.max_token_ttl = 12 * 3600;
	dp.waivable = CU_WAIVE_ALL & ~CU_WAIVE_DOWNGRADE;
	policy_check(b, "TX-200", 43, &dp, &rc, &v, &d);
	assert_int_equal(rc, STN_E_TOKEN);
	assert_non_null(strstr(d.text, "class tx200 does not let tokens "
					"waive downgrade"));
	free(b);
}

static void hand_on(const char *b, const char *signer, const char *to)
{
	char written[4400];
	struct cu_key *k = test_key(signer);
	struct stn_diag d;

	stn_diag_init(&d);
	if (cu_custody_append(b, k, to, NULL, NULL, now - 30, written,
			      sizeof(written), &d))
		fail_msg("custody add: %s", d.text);
	cu_key_free(k);
}

/* Check 6 per class: a class may drop custody, or hold the chain the
 * gate accepted to its own hop and age limits; a class that requires
 * custody the gate never read is refused. */
static void policy_applies_the_class_custody_rules(void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("cust", 42, "TX-200", NULL, 0, signers);
	struct cu_policy p = {.release_threshold = 1, .require_custody = 1,
			      .max_custody_hops = 8,
			      .max_custody_age = 30 * 86400,
			      .technician = "ana"};
	struct cu_device_policy dp = tx200_policy(CU_ATTEST_POLICY_NONE,
						  CU_ATTEST_NOT_ASKED);
	struct cu_installed inst = {41, CU_SEQ_DEVICE};
	struct cu_device_verdict v;
	struct cu_bundle *bundle;
	struct cu_identity id;
	struct stn_diag d;

	(void)state;
	memset(&id, 0, sizeof(id));
	strcpy(id.model, "TX-200");
	strcpy(id.serial, "SN-0001");
	/* no chain: the gate fails check 6, a class without custody passes */
	stn_diag_init(&d);
	assert_int_equal(cu_bundle_verify(b, NULL, trust, &p, now, &bundle, &d),
			 STN_E_CUSTODY);
	stn_diag_init(&d);
	assert_int_equal(cu_device_check_policy(bundle, &id, "dev", &inst, 0,
						NULL, &dp, &v, &d),
			 0);
	assert_int_equal(v.custody.outcome, CU_NOT_REQUIRED);
	assert_non_null(strstr(v.custody.diag.text,
			       "class tx200 does not require custody"));
	cu_bundle_free(bundle);

	hand_on(b, "custody3", "courier-ana");
	hand_on(b, "custody1", "ana");
	dp.require_custody = 1;
	stn_diag_init(&d);
	assert_int_equal(cu_bundle_verify(b, NULL, trust, &p, now, &bundle, &d),
			 0);
	stn_diag_init(&d);
	assert_int_equal(cu_device_check_policy(bundle, &id, "dev", &inst, 0,
						NULL, &dp, &v, &d),
			 0);
	assert_int_equal(v.custody.outcome, CU_PASSED);
	dp.max_custody_hops = 1;
	stn_diag_init(&d);
	assert_int_equal(cu_device_check_policy(bundle, &id, "dev", &inst, 0,
						NULL, &dp, &v, &d),
			 STN_E_CUSTODY);
	assert_non_null(strstr(d.text, "custody chain has 2 hops, class tx200 "
					"allows 1"));
	dp.max_custody_hops = 2;
	dp.max_custody_age = 10;
	stn_diag_init(&d);
	assert_int_equal(cu_device_check_policy(bundle, &id, "dev", &inst, 0,
						NULL, &dp, &v, &d),
			 STN_E_CUSTODY);
	assert_non_null(strstr(d.text, "more than class tx200's "
					"max-custody-age"));
	cu_bundle_free(bundle);

	/* the gate did not read the chain, the class wants it */
	p.require_custody = 0;
	dp.max_custody_age = 0;
	stn_diag_init(&d);
	assert_int_equal(cu_bundle_verify(b, NULL, trust, &p, now, &bundle, &d),
			 0);
	stn_diag_init(&d);
	assert_int_equal(cu_device_check_policy(bundle, &id, "dev", &inst, 0,
						NULL, &dp, &v, &d),
			 STN_E_CUSTODY);
	assert_non_null(strstr(d.text, "class tx200 requires custody, but the "
					"bundle's custody chain was not checked"));
	cu_bundle_free(bundle);
	free(b);
}

static const char man_ok[] =
	"format = station-bundle-1\nname = tx200-app\nversion = 2.4.1\n"
	"sequence = 42\ncreated = 2026-11-20T10:00:00Z\n"
	"expires = 2027-05-20T00:00:00Z\n[target]\nmodel = TX-200\n"
	"hardware = revB revC\n[image app]\nfile = tx200-app.bin\nsize = 524288\n"
	"sha256 = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
	"slot = 0\n";

static void manifest_parses_the_spec_example(void **state)
{
	struct cu_manifest *m = NULL;
	struct stn_diag d;
	char *again;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_manifest_parse(man_ok, strlen(man_ok), "m", &m, &d),
			 0);
	assert_string_equal(m->name, "tx200-app");
	assert_true(m->sequence == 42);
	assert_int_equal(m->nhardware, 2);
	assert_string_equal(m->hardware[1], "revC");
	assert_int_equal(m->nimages, 1);
	assert_true(m->images[0].size == 524288);
	/* rendering and parsing again gives the same manifest */
	again = cu_manifest_render(m);
	struct cu_manifest *m2 = NULL;
	assert_int_equal(cu_manifest_parse(again, strlen(again), "m2", &m2, &d),
			 0);
	assert_true(m2->sequence == m->sequence);
	assert_memory_equal(m2->images[0].sha256, m->images[0].sha256, 32);
	free(again);
	cu_manifest_free(m2);
	cu_manifest_free(m);
}

static void manifest_refuses_bad_values(void **state)
{
	static const struct {
		const char *from, *to, *reason;
	} cases[] = {
		{"expires = 2027-05-20T00:00:00Z", "expires = 2026-11-20T10:00:00Z",
		 "'expires' must be after 'created'"},
		{"name = tx200-app", "name = TX200", "'name' must be"},
		{"file = tx200-app.bin", "file = ../etc/passwd", "'file' must be"},
		{"file = tx200-app.bin", "file = .hidden", "must not start with '.'"},
		{"slot = 0", "slot = 256", "'slot' must be 0 to 255"},
		{"slot = 0\n", "", "missing required key 'slot'"},
		{"hardware = revB revC", "hardware = revB revB",
		 "'hardware' must be distinct"},
		{"sequence = 42", "sequence = -1", "unsigned 64-bit"},
		{"format = station-bundle-1", "format = station-bundle-2",
		 "expected 'station-bundle-1'"},
		{"version = 2.4.1", "version = 123456789012345678901234567890123",
		 "'version' must be 1 to 32"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[2048];
		const char *at = strstr(man_ok, cases[i].from);
		struct cu_manifest *m = NULL;
		struct stn_diag d;
		assert_non_null(at);
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - man_ok),
			 man_ok, cases[i].to, at + strlen(cases[i].from));
		stn_diag_init(&d);
		int rc = cu_manifest_parse(text, strlen(text), "m", &m, &d);
		if (rc != STN_E_SYNTAX || !strstr(d.text, cases[i].reason))
			fail_msg("case %zu: rc %d '%s'", i, rc, d.text);
		assert_null(m);
	}
}

/* formats §10: the spec's encrypted image. */
static const char man_enc[] =
	"format = station-bundle-1\nname = tx200-app\nversion = 2.4.1\n"
	"sequence = 42\ncreated = 2026-11-20T10:00:00Z\n"
	"expires = 2027-05-20T00:00:00Z\n[target]\nmodel = TX-200\n"
	"[image app]\nfile = tx200-app.bin.enc\nsize = 524288\n"
	"sha256 = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
	"slot = 0\ncipher = aes-256-ctr\n"
	"iv = 000102030405060708090a0b0c0d0eff\n"
	"cipher-sha256 = "
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n";

static void manifest_parses_an_encrypted_image_and_renders_it_again(
	void **state)
{
	static const uint8_t iv[16] = {0, 1, 2, 3, 4, 5, 6, 7,
				       8, 9, 10, 11, 12, 13, 14, 0xff};
	struct cu_manifest *m = NULL, *m2 = NULL;
	struct stn_diag d;
	char *again;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_manifest_parse(man_enc, strlen(man_enc), "m", &m,
					   &d),
			 0);
	assert_true(m->images[0].encrypted);
	assert_memory_equal(m->images[0].iv, iv, 16);
	assert_int_equal(m->images[0].cipher_sha256[0], 0xe3);
	assert_int_equal(m->images[0].cipher_sha256[31], 0x55);
	assert_true(m->images[0].size == 524288);
	again = cu_manifest_render(m);
	assert_non_null(strstr(again, "slot = 0\ncipher = aes-256-ctr\n"
				      "iv = 000102030405060708090a0b0c0d0eff\n"
				      "cipher-sha256 = e3b0c442"));
	assert_int_equal(cu_manifest_parse(again, strlen(again), "m2", &m2,
					   &d),
			 0);
	assert_true(m2->images[0].encrypted);
	assert_memory_equal(m2->images[0].iv, iv, 16);
	assert_memory_equal(m2->images[0].cipher_sha256,
			    m->images[0].cipher_sha256, 32);
	free(again);
	cu_manifest_free(m2);
	cu_manifest_free(m);

	/* a plain image is exactly as before: no cipher lines rendered */
	stn_diag_init(&d);
	assert_int_equal(cu_manifest_parse(man_ok, strlen(man_ok), "m", &m, &d),
			 0);
	assert_false(m->images[0].encrypted);
	again = cu_manifest_render(m);
	assert_null(strstr(again, "cipher"));
	assert_null(strstr(again, "iv ="));
	free(again);
	cu_manifest_free(m);
}

static void manifest_refuses_bad_or_partial_cipher_fields(void **state)
{
	static const struct {
		const char *from, *to, *reason;
	} cases[] = {
		{"cipher = aes-256-ctr", "cipher = aes-128-cbc",
		 "'cipher' must be aes-256-ctr, not 'aes-128-cbc'"},
		{"cipher = aes-256-ctr", "cipher = AES-256-CTR",
		 "not 'AES-256-CTR'"},
		{"cipher = aes-256-ctr\n", "",
		 "needs 'cipher', 'iv' and 'cipher-sha256': 'cipher' missing"},
		{"iv = 000102030405060708090a0b0c0d0eff\n", "",
		 "'iv' missing"},
		{"cipher = aes-256-ctr\niv = 000102030405060708090a0b0c0d0eff\n",
		 "", "'cipher' and 'iv' missing"},
		{"iv = 000102030405060708090a0b0c0d0eff\ncipher-sha256 = "
		 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
		 "", "'iv' and 'cipher-sha256' missing"},
		{"iv = 000102030405060708090a0b0c0d0eff",
		 "iv = 000102030405060708090A0B0C0D0EFF",
		 "'iv' must be 32 lowercase hex digits"},
		{"iv = 000102030405060708090a0b0c0d0eff",
		 "iv = 000102030405060708090a0b0c0d0e",
		 "'iv' must be 32 lowercase hex digits"},
		{"iv = 000102030405060708090a0b0c0d0eff",
		 "iv = 000102030405060708090a0b0c0d0eff00",
		 "'iv' must be 32 lowercase hex digits"},
		{"cipher-sha256 = e3b0", "cipher-sha256 = xyz0",
		 "'cipher-sha256' must be a SHA-256 digest"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[2048];
		const char *at = strstr(man_enc, cases[i].from);
		struct cu_manifest *m = NULL;
		struct stn_diag d;
		assert_non_null(at);
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - man_enc),
			 man_enc, cases[i].to, at + strlen(cases[i].from));
		stn_diag_init(&d);
		int rc = cu_manifest_parse(text, strlen(text), "m", &m, &d);
		if (rc != STN_E_SYNTAX || !strstr(d.text, cases[i].reason))
			fail_msg("case %zu: rc %d '%s'", i, rc, d.text);
		assert_null(m);
	}
}

static void identity_requires_a_serial_number(void **state)
{
	const char *no_serial = "format = station-device-1\nmodel = TX-200\n";
	const char *ok = "format = station-device-1\nmodel = TX-200\n"
			 "serial = SN-1\nsequence = 7\n";
	struct cu_identity id;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_identity_parse(no_serial, strlen(no_serial), "dev",
					   &id, &d),
			 STN_E_IDENTITY);
	assert_non_null(strstr(d.text, "no serial number"));
	stn_diag_init(&d);
	assert_int_equal(cu_identity_parse(ok, strlen(ok), "dev", &id, &d), 0);
	assert_true(id.has_sequence && id.sequence == 7);
}

/* A verdict holds a diagnosis per check: it must stay small, and a place
 * longer than it holds keeps the file's name. */
static void diag_is_small_and_keeps_the_end_of_a_long_place(void **state)
{
	char where[701];
	struct stn_diag d;

	(void)state;
	assert_true(sizeof(struct stn_diag) <= 1600);
	memset(where, 'x', 700);
	memcpy(where + 700 - 11, "/manifest:3", 12);
	stn_diag_init(&d);
	assert_int_equal(stn_fail(&d, STN_E_SYNTAX, where, "bad"),
			 STN_E_SYNTAX);
	assert_int_equal(strncmp(d.where, "...x", 4), 0);
	assert_int_equal(strlen(d.where), sizeof(d.where) - 1);
	assert_string_equal(d.where + strlen(d.where) - 11, "/manifest:3");
}

/* A measure that claims only the ciphertext was checked (as
 * cu_bundle_verify_sealed's does): a bundle opened any other way must
 * fail check 3 on it, so no station accepts an unchecked plaintext. */
static int measure_cipher_only(void *ctx, const struct cu_image *img,
			       struct cu_measured *out, struct stn_diag *d)
{
	(void)ctx;
	(void)d;
	out->size = img->size;
	memcpy(out->sha256, img->sha256, sizeof(out->sha256));
	out->cipher_only = 1;
	return 0;
}

static void check3_refuses_a_cipher_only_measure_outside_release_checks(
	void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("cipheronly", 42, "TX-200", NULL, 0, signers);
	struct cu_policy p = {.release_threshold = 1,
			      .max_token_ttl = 72 * 3600};
	struct cu_manifest *m = NULL;
	struct cu_bundle *bundle = NULL;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_manifest_load(b, NULL, &m, &d), 0);
	struct cu_source src = {b, b, m, measure_cipher_only, NULL};
	assert_int_equal(cu_bundle_open(&src, trust, &p, now, &bundle, &d), 0);
	assert_int_equal(cu_bundle_check_images(bundle, &d), STN_E_IMAGE);
	assert_non_null(strstr(d.text, "plaintext is unchecked"));
	assert_int_equal(cu_bundle_check(bundle, CU_CHECK_IMAGES)->outcome,
			 CU_FAILED);
	cu_bundle_free(bundle);
	cu_manifest_free(m);
	/* The same clear bundle through the release check: as ever. */
	stn_diag_init(&d);
	assert_int_equal(cu_bundle_verify_sealed(b, NULL, trust, &p, now,
						 &bundle, &d), 0);
	assert_int_equal(cu_bundle_sealed(bundle), 0);
	assert_string_equal(cu_bundle_check(bundle, CU_CHECK_IMAGES)->diag.text,
			    "1 image(s) match the manifest");
	cu_bundle_free(bundle);
	free(b);
}

/* cu_custody_verify never judges a chain without its signatures. */
static void custody_verify_refuses_to_run_without_a_trust_store(void **state)
{
	const char *const signers[] = {"release1", NULL};
	char *b = make_bundle("notrust", 42, "TX-200", NULL, 0, signers);
	struct cu_custody_rules r = {8, 30 * 86400, "ana", 0};
	struct cu_manifest *m = NULL;
	struct cu_chain *c = calloc(1, sizeof(*c));
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_manifest_load(b, NULL, &m, &d), 0);
	assert_int_equal(cu_custody_verify(b, NULL, m, NULL, &r, now, c, &d),
			 STN_E_INTERNAL);
	cu_manifest_free(m);
	free(c);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(verify_accepts_a_bundle_signed_by_a_release_key),
		cmocka_unit_test(verify_counts_the_same_key_twice_once),
		cmocka_unit_test(verify_refuses_unsigned_and_wrong_role),
		cmocka_unit_test(verify_refuses_image_changes_naming_the_file),
		cmocka_unit_test(verify_refuses_outside_the_validity_window),
		cmocka_unit_test(
			verify_refuses_a_bundle_without_custody_when_policy_requires_it),
		cmocka_unit_test(device_checks_cover_target_and_sequence),
		cmocka_unit_test(device_check_never_passes_a_refused_bundle),
		cmocka_unit_test(
			policy_check7_follows_the_class_attestation_policy),
		cmocka_unit_test(
			policy_names_a_failed_attestation_before_a_target_mismatch),
		cmocka_unit_test(policy_applies_the_class_release_threshold),
		cmocka_unit_test(policy_limits_tokens_for_other_checks),
		cmocka_unit_test(policy_applies_the_class_custody_rules),
		cmocka_unit_test(manifest_parses_the_spec_example),
		cmocka_unit_test(manifest_refuses_bad_values),
		cmocka_unit_test(
			manifest_parses_an_encrypted_image_and_renders_it_again),
		cmocka_unit_test(manifest_refuses_bad_or_partial_cipher_fields),
		cmocka_unit_test(identity_requires_a_serial_number),
		cmocka_unit_test(diag_is_small_and_keeps_the_end_of_a_long_place),
		cmocka_unit_test(
			check3_refuses_a_cipher_only_measure_outside_release_checks),
		cmocka_unit_test(custody_verify_refuses_to_run_without_a_trust_store),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
