/* custody/verify.c: the acceptance rules of formats §3.  Order matters only
 * for which reason is reported first; every check runs so the operator and
 * the journal see all that is wrong with a bundle at once. */
#include "custody/verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custody/record.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "custody/signed.h"
#include "station/base/fileio.h"

struct cu_bundle {
	char *dir;
	char *shown;              /* name used in messages */
	char manifest_path[4096]; /* shown/manifest */
	const struct cu_manifest *manifest; /* the source's */
	struct cu_manifest *own_manifest;   /* cu_bundle_verify's */
	struct cu_source src;               /* dir and shown are ours */
	struct cu_check_result checks[CU_NCHECKS];
	struct cu_sigset sigs;
	struct cu_chain chain;
	struct cu_token *tokens;
	size_t ntokens;
	int64_t at; /* the session start it was checked at */
	int sealed_ok; /* cu_bundle_verify_sealed: ciphertext-only may pass */
	size_t nsealed; /* images check 3 passed on their ciphertext alone */
};

/* dir + "/" + name into buf; -1 when it would not fit (never cut a path
 * short: a shorter path names a different file). */
static int join(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static const char *const check_names[CU_NCHECKS] = {
	"signatures", "validity", "images", "target", "sequence", "custody",
	"attestation"};
static const char *const outcome_names[] = {"not run", "passed", "failed",
					    "waived", "not required"};

const char *cu_check_name(enum cu_check c)
{
	return c < CU_NCHECKS ? check_names[c] : "unknown";
}

const char *cu_outcome_name(enum cu_outcome o)
{
	return o <= CU_NOT_REQUIRED ? outcome_names[o] : "unknown";
}

/* cu_bundle_verify's measure: open dir/FILE (ctx is dir) without following
 * symlinks, refuse anything but a regular file of the manifest's size,
 * read at most size + 1 bytes. */
static int measure_file(void *ctx, const struct cu_image *img,
			struct cu_measured *out, struct stn_diag *d)
{
	const char *dir = ctx, *file = img->file;
	uint64_t expect_size = img->size;
	char path[4096];
	struct stat st;
	uint64_t total = 0;
	int fd, rc = 0;

	if (join(path, sizeof(path), dir, file))
		return stn_fail(d, STN_E_UNSAFE, dir, "path to %s too long",
				file);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return stn_fail(d, STN_E_IMAGE, path,
					"is a symbolic link");
		if (errno == ENOENT)
			return stn_fail(d, STN_E_IMAGE, path,
					"missing: named by the manifest but "
					"not in the bundle");
		return stn_fail(d, STN_E_IO, path, "cannot open: %s",
				strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = stn_fail(d, STN_E_IMAGE, path, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size != expect_size) {
		rc = stn_fail(d, STN_E_IMAGE, path,
			      "size is %lld bytes, manifest says %llu",
			      (long long)st.st_size,
			      (unsigned long long)expect_size);
		goto out;
	}
	/* Read one byte past the expected size: a file that grows while we
	 * read is caught here, not trusted. */
	if ((rc = cu_sha256_fd(fd, expect_size, path, out->sha256, &total, d)))
		goto out;
	out->size = total;
out:
	close(fd);
	return rc;
}

/* Rewrite a message's place from the directory read to the name shown. */
static void show_path(const struct cu_bundle *b, struct stn_diag *why)
{
	size_t n = strlen(b->dir);
	char where[sizeof(why->where)];

	if (strcmp(b->dir, b->shown) == 0 ||
	    strncmp(why->where, b->dir, n) != 0 ||
	    (why->where[n] != '/' && why->where[n] != '\0'))
		return;
	snprintf(where, sizeof(where), "%s%s", b->shown, why->where + n);
	snprintf(why->where, sizeof(why->where), "%s", where);
}

static void set_result(struct cu_check_result *c, enum cu_outcome o,
		       const struct stn_diag *why)
{
	c->outcome = o;
	if (why)
		c->diag = *why;
}

/* Check 1: at least release_threshold valid signatures from distinct
 * release keys.  The same key signing twice counts once. */
static void check_signatures(struct cu_bundle *b, const struct cu_trust *trust,
			     const struct cu_policy *policy, int64_t at)
{
	struct cu_check_result *res = &b->checks[CU_CHECK_SIGNATURES];
	struct cu_sigset *set = &b->sigs;
	struct stn_diag why;

	stn_diag_init(&why);
	if (cu_signed_verify(b->dir, "manifest", b->shown, b->manifest->id,
			     trust, CU_ROLE_RELEASE, at, set, &why)) {
		set_result(res, CU_FAILED, &why);
		return;
	}
	if (set->n >= policy->release_threshold) {
		int stale = 0;
		for (size_t i = 0; i < set->n; i++)
			stale |= set->signers[i].stale_crl;
		stn_fail(&why, STN_E_OK, b->manifest_path,
			 "%zu valid release signature(s) from distinct keys, "
			 "%u required%s", set->n, policy->release_threshold,
			 stale ? "; warning: a CRL on the chain is past its "
				 "nextUpdate"
			       : "");
		set_result(res, CU_PASSED, &why);
		return;
	}
	if (set->nfiles == 0)
		stn_fail(&why, STN_E_THRESHOLD, b->manifest_path,
			 "unsigned: no manifest.sig or manifest.LABEL.sig in "
			 "the bundle");
	else if (set->n == 0 && set->nfail == 1)
		why = set->first_fail; /* the one signature's own reason */
	else if (set->nfail)
		stn_fail(&why, STN_E_THRESHOLD, b->manifest_path,
			 "%zu valid release signature(s) from distinct keys, "
			 "%u required; %s: %s", set->n,
			 policy->release_threshold, set->first_fail.where,
			 set->first_fail.text);
	else if (set->nfiles > set->n)
		stn_fail(&why, STN_E_THRESHOLD, b->manifest_path,
			 "%zu valid release signature(s) from distinct keys, "
			 "%u required: %zu signature files, but the same key "
			 "signing twice counts once", set->n,
			 policy->release_threshold, set->nfiles);
	else
		stn_fail(&why, STN_E_THRESHOLD, b->manifest_path,
			 "%zu valid release signature(s) from distinct keys, "
			 "%u required", set->n, policy->release_threshold);
	set_result(res, CU_FAILED, &why);
}

/* Check 2: the session start lies in [created, expires). */
static void check_validity(struct cu_bundle *b, int64_t at)
{
	struct stn_diag why;
	char t1[CU_TIME_LEN + 1], t2[CU_TIME_LEN + 1];

	stn_diag_init(&why);
	cu_time_format(at, t2);
	if (at < b->manifest->created) {
		cu_time_format(b->manifest->created, t1);
		stn_fail(&why, STN_E_VALIDITY, b->manifest_path,
			 "not valid before its created time %s; session "
			 "started %s", t1, t2);
		set_result(&b->checks[CU_CHECK_VALIDITY], CU_FAILED, &why);
	} else if (at >= b->manifest->expires) {
		cu_time_format(b->manifest->expires, t1);
		stn_fail(&why, STN_E_VALIDITY, b->manifest_path,
			 "expired at %s; session started %s", t1, t2);
		set_result(&b->checks[CU_CHECK_VALIDITY], CU_FAILED, &why);
	} else {
		cu_time_format(b->manifest->expires, t1);
		stn_fail(&why, STN_E_OK, b->manifest_path, "valid until %s",
			 t1);
		set_result(&b->checks[CU_CHECK_VALIDITY], CU_PASSED, &why);
	}
}

/* Check 3: every image is a regular file of exactly `size` bytes with the
 * manifest's SHA-256. */
static void check_images(struct cu_bundle *b)
{
	struct stn_diag why;

	b->nsealed = 0;
	for (size_t i = 0; i < b->manifest->nimages; i++) {
		const struct cu_image *img = &b->manifest->images[i];
		struct cu_measured got;
		uint64_t size;
		int rc;

		stn_diag_init(&why);
		memset(&got, 0, sizeof(got));
		rc = b->src.measure(b->src.ctx, img, &got, &why);
		size = got.size;
		/* A ciphertext-only measure stands only where it was asked
		 * for (fail closed: a station must see the plaintext). */
		if (rc == 0 && got.cipher_only && !b->sealed_ok) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", b->shown,
				 img->file);
			rc = stn_fail(&why, STN_E_IMAGE, path,
				      "only the ciphertext was measured; the "
				      "plaintext is unchecked");
		}
		if (rc == 0 && size != img->size) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", b->shown,
				 img->file);
			rc = stn_fail(&why, STN_E_IMAGE, path,
				      "size is %llu bytes, manifest says %llu",
				      (unsigned long long)size,
				      (unsigned long long)img->size);
		}
		if (rc == 0 && got.cipher_only) {
			b->nsealed++;
			continue;
		}
		if (rc == 0 &&
		    memcmp(got.sha256, img->sha256, sizeof(got.sha256)) != 0) {
			char path[4096], h1[65], h2[65];
			snprintf(path, sizeof(path), "%s/%s", b->shown,
				 img->file);
			cu_hex(got.sha256, sizeof(got.sha256), h1);
			cu_hex(img->sha256, sizeof(img->sha256), h2);
			rc = stn_fail(&why, STN_E_IMAGE, path,
				      "sha256 is %s, manifest says %s", h1, h2);
		}
		if (rc) {
			show_path(b, &why);
			set_result(&b->checks[CU_CHECK_IMAGES], CU_FAILED,
				   &why);
			return;
		}
	}
	stn_diag_init(&why);
	if (b->nsealed)
		stn_fail(&why, STN_E_OK, b->shown,
			 "%zu image(s) match the manifest; %zu encrypted: "
			 "ciphertext matches cipher-sha256, plaintext NOT "
			 "checked (no delivery key here)",
			 b->manifest->nimages, b->nsealed);
	else
		stn_fail(&why, STN_E_OK, b->shown,
			 "%zu image(s) match the manifest",
			 b->manifest->nimages);
	set_result(&b->checks[CU_CHECK_IMAGES], CU_PASSED, &why);
}

/* The spec's order for naming the first failure (formats §3). */
static const enum cu_check bundle_order[] = {
	CU_CHECK_SIGNATURES, CU_CHECK_VALIDITY, CU_CHECK_IMAGES,
	CU_CHECK_CUSTODY};

static int first_failure(const struct cu_bundle *b, struct stn_diag *d)
{
	for (size_t i = 0; i < sizeof(bundle_order) / sizeof(*bundle_order);
	     i++) {
		const struct cu_check_result *c = &b->checks[bundle_order[i]];
		if (c->outcome == CU_FAILED)
			return stn_fail(d, c->diag.code, c->diag.where, "%s",
					c->diag.text);
	}
	return 0;
}

int cu_bundle_open(const struct cu_source *src, const struct cu_trust *trust,
		   const struct cu_policy *policy, int64_t at,
		   struct cu_bundle **out, struct stn_diag *d)
{
	const struct cu_check_result *sigs;
	struct cu_bundle *b;
	struct stn_diag why;
	int rc;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b || !(b->dir = strdup(src->dir)) ||
	    !(b->shown = strdup(src->shown ? src->shown : src->dir))) {
		cu_bundle_free(b);
		return stn_fail(d, STN_E_NOMEM, src->dir, "verifying bundle");
	}
	if (join(b->manifest_path, sizeof(b->manifest_path), b->shown,
		 CU_LAYOUT_MANIFEST)) {
		cu_bundle_free(b);
		return stn_fail(d, STN_E_USAGE, src->dir,
				"bundle path too long");
	}
	b->src = *src;
	b->src.dir = b->dir;
	b->src.shown = b->shown;
	b->manifest = src->manifest;
	b->at = at;

	check_signatures(b, trust, policy, at);
	check_validity(b, at);
	if (policy->require_custody) {
		struct cu_custody_rules rules = {policy->max_custody_hops,
						 policy->max_custody_age,
						 policy->technician,
						 policy->custody_open_end};
		stn_diag_init(&why);
		if (cu_custody_verify(b->dir, b->shown, b->manifest, trust,
				      &rules, at, &b->chain, &why) == 0) {
			stn_fail(&why, STN_E_OK, b->shown,
				 "%zu hop(s), from %s to %s", b->chain.n,
				 b->chain.hops[0].from,
				 b->chain.hops[b->chain.n - 1].to);
			set_result(&b->checks[CU_CHECK_CUSTODY], CU_PASSED,
				   &why);
		} else {
			set_result(&b->checks[CU_CHECK_CUSTODY], CU_FAILED,
				   &why);
		}
	} else {
		b->checks[CU_CHECK_CUSTODY].outcome = CU_NOT_REQUIRED;
	}
	{
		struct cu_token_rules tr = {policy->site ? policy->site : "",
					    policy->station ? policy->station
							    : "",
					    policy->max_token_ttl};
		stn_diag_init(&why);
		rc = cu_tokens_load(b->dir, b->shown, b->manifest, &b->sigs,
				    trust, &tr, at, &b->tokens, &b->ntokens,
				    &why);
	}
	*out = b;
	/* Check 1 first: it is the reason an unsigned bundle stops here,
	 * whatever its tokens. */
	sigs = &b->checks[CU_CHECK_SIGNATURES];
	if (sigs->outcome == CU_FAILED)
		return stn_fail(d, sigs->diag.code, sigs->diag.where, "%s",
				sigs->diag.text);
	if (rc)
		return stn_fail(d, rc, why.where, "%s", why.text);
	return 0;
}

int cu_bundle_check_images(struct cu_bundle *b, struct stn_diag *d)
{
	check_images(b);
	return first_failure(b, d);
}

/* cu_bundle_verify_sealed's measure: a clear image as measure_file; an
 * encrypted one is measured as the file it is and held to cipher-sha256,
 * and reported as checked on its ciphertext alone. */
static int measure_sealed(void *ctx, const struct cu_image *img,
			  struct cu_measured *out, struct stn_diag *d)
{
	char path[4096], h1[65], h2[65];
	int rc = measure_file(ctx, img, out, d);

	if (rc || !img->encrypted)
		return rc;
	if (memcmp(out->sha256, img->cipher_sha256, CU_SHA256_LEN) != 0) {
		snprintf(path, sizeof(path), "%s/%s", (const char *)ctx,
			 img->file);
		cu_hex(out->sha256, CU_SHA256_LEN, h1);
		cu_hex(img->cipher_sha256, CU_SHA256_LEN, h2);
		return stn_fail(d, STN_E_IMAGE, path,
				"encrypted image: ciphertext sha256 is %s, "
				"manifest's cipher-sha256 says %s", h1, h2);
	}
	out->cipher_only = 1;
	return 0;
}

static int verify_dir(const char *dir, const char *shown_as,
		      const struct cu_trust *trust,
		      const struct cu_policy *policy, int64_t at, int sealed,
		      struct cu_bundle **out, struct stn_diag *d)
{
	struct cu_source src = {dir, shown_as ? shown_as : dir, NULL,
				sealed ? measure_sealed : measure_file, NULL};
	struct cu_manifest *m = NULL;
	int rc, images;

	*out = NULL;
	if ((rc = cu_manifest_load(dir, src.shown, &m, d)))
		return rc;
	src.manifest = m;
	rc = cu_bundle_open(&src, trust, policy, at, out, d);
	if (!*out) {
		cu_manifest_free(m);
		return rc;
	}
	(*out)->own_manifest = m;
	(*out)->src.ctx = (*out)->dir;
	(*out)->sealed_ok = sealed;
	/* Check 3 runs even after check 1 failed, so every outcome shows;
	 * the first failure recorded in d stays the reason. */
	images = cu_bundle_check_images(*out, d);
	return rc ? rc : images;
}

int cu_bundle_verify(const char *dir, const char *shown_as,
		     const struct cu_trust *trust,
		     const struct cu_policy *policy, int64_t at,
		     struct cu_bundle **out, struct stn_diag *d)
{
	return verify_dir(dir, shown_as, trust, policy, at, 0, out, d);
}

int cu_bundle_verify_sealed(const char *dir, const char *shown_as,
			    const struct cu_trust *trust,
			    const struct cu_policy *policy, int64_t at,
			    struct cu_bundle **out, struct stn_diag *d)
{
	return verify_dir(dir, shown_as, trust, policy, at, 1, out, d);
}

size_t cu_bundle_sealed(const struct cu_bundle *b)
{
	return b->nsealed;
}

void cu_bundle_free(struct cu_bundle *b)
{
	if (!b)
		return;
	cu_manifest_free(b->own_manifest);
	free(b->tokens);
	free(b->dir);
	free(b->shown);
	free(b);
}

const struct cu_manifest *cu_bundle_manifest(const struct cu_bundle *b)
{
	return b->manifest;
}

const char *cu_bundle_dir(const struct cu_bundle *b)
{
	return b->dir;
}

const struct cu_check_result *cu_bundle_check(const struct cu_bundle *b,
					      enum cu_check c)
{
	return c < CU_NCHECKS ? &b->checks[c] : NULL;
}

const struct cu_signer *cu_bundle_signers(const struct cu_bundle *b,
					  size_t *n)
{
	*n = b->sigs.n;
	return b->sigs.signers;
}

const struct cu_chain *cu_bundle_chain(const struct cu_bundle *b)
{
	return &b->chain;
}

const struct cu_token *cu_bundle_tokens(const struct cu_bundle *b, size_t *n)
{
	*n = b->ntokens;
	return b->tokens;
}

static const char *seq_source_text(enum cu_seq_source s)
{
	switch (s) {
	case CU_SEQ_DEVICE: return "reported by the device";
	case CU_SEQ_JOURNAL: return "from this station's journal";
	default: return "unknown";
	}
}

/* Try to waive one failing check for this device.  A usable token turns
 * it into WAIVED; when tokens for the check exist but none is usable, the
 * refusal becomes a token refusal that says why.  dp (may be NULL) is the
 * device's class: a token applies only within what it lets tokens waive
 * and within its token lifetime (formats §3, §8). */
static void waive(const struct cu_bundle *b, const struct cu_identity *id,
		  const unsigned char *replayed,
		  const struct cu_device_policy *dp, unsigned bit,
		  struct cu_check_result *c, struct cu_device_verdict *v)
{
	const struct cu_token *why_not = NULL;
	const char *not_text = NULL;
	char waived[64], class_text[300];

	if (c->outcome != CU_FAILED)
		return;
	for (size_t i = 0; i < b->ntokens; i++) {
		const struct cu_token *t = &b->tokens[i];
		if (!(t->waive & bit))
			continue;
		if (t->problem.code) {
			if (!why_not || !not_text)
				why_not = t, not_text = t->problem.text;
			continue;
		}
		if (!cu_token_names(t, id->serial)) {
			if (!why_not)
				why_not = t, not_text = NULL;
			continue;
		}
		if (dp && !(dp->waivable & bit)) {
			snprintf(class_text, sizeof(class_text),
				 "class %.64s does not let tokens waive %s",
				 dp->class_name,
				 cu_waiver_names(bit, waived, sizeof(waived)));
			why_not = t, not_text = class_text;
			continue;
		}
		if (dp && dp->max_token_ttl > 0 &&
		    t->expires - t->issued > dp->max_token_ttl) {
			snprintf(class_text, sizeof(class_text),
				 "its lifetime of %llds is over class %.64s's "
				 "max-token-ttl of %llds",
				 (long long)(t->expires - t->issued),
				 dp->class_name, (long long)dp->max_token_ttl);
			why_not = t, not_text = class_text;
			continue;
		}
		if (replayed && replayed[i]) {
			why_not = t;
			not_text = "already used on this device (each token "
				   "waives once per device)";
			continue;
		}
		/* Usable: waive, and remember the use. */
		size_t k;
		for (k = 0; k < v->napplied; k++)
			if (v->applied[k] == i)
				break;
		if (k == v->napplied)
			v->applied[v->napplied++] = i;
		/* Copy first: the new note quotes the old one. */
		struct stn_diag was = c->diag;
		c->outcome = CU_WAIVED;
		stn_refail(&c->diag, STN_E_OK, t->file,
			   "waived (%s) by token %s signed by %s: %.300s; "
			   "the check said: %.300s",
			   cu_waiver_names(bit, waived, sizeof(waived)), t->id,
			   t->signer.cn, t->reason, was.text);
		return;
	}
	if (!why_not)
		return;
	char text[sizeof(c->diag.text)];
	if (not_text)
		snprintf(text, sizeof(text), "%.400s; token %s cannot waive "
			 "it: %.400s", c->diag.text, why_not->file, not_text);
	else
		snprintf(text, sizeof(text), "%.400s; token %s cannot waive "
			 "it: it does not name device %s", c->diag.text,
			 why_not->file, id->serial);
	char where[sizeof(c->diag.where)];
	memcpy(where, c->diag.where, sizeof(where));
	stn_refail(&c->diag, STN_E_TOKEN, where, "%s", text);
}

/* Check 1 again with the class's threshold: the bundle gate may have
 * counted against a lower one (docs/decisions.md).  Never waived. */
static void class_signatures(const struct cu_bundle *b,
			     const struct cu_device_policy *dp,
			     struct cu_check_result *res)
{
	struct stn_diag why;

	*res = b->checks[CU_CHECK_SIGNATURES];
	if (!dp || res->outcome != CU_PASSED)
		return;
	stn_diag_init(&why);
	if (b->sigs.n < dp->release_threshold) {
		stn_fail(&why, STN_E_THRESHOLD, b->manifest_path,
			 "%zu valid release signature(s) from distinct keys, "
			 "class %.64s requires %u", b->sigs.n, dp->class_name,
			 dp->release_threshold);
		set_result(res, CU_FAILED, &why);
		return;
	}
	stn_fail(&why, STN_E_OK, b->manifest_path,
		 "%zu valid release signature(s) from distinct keys, class "
		 "%.64s requires %u", b->sigs.n, dp->class_name,
		 dp->release_threshold);
	set_result(res, CU_PASSED, &why);
}

/* Check 7 (formats §3, §9): what the identity step found, judged by the
 * class's attestation policy.  Only a device that could not attest under
 * `required` may be waived (by the caller); a failed attestation never. */
static void check_attestation(const struct cu_identity *id, const char *device,
			      const struct cu_device_policy *dp,
			      struct cu_check_result *res)
{
	static const char *const policy_names[] = {"none", "optional",
						   "required"};
	enum cu_attest_policy pol = dp ? dp->attestation
				       : CU_ATTEST_POLICY_NONE;
	enum cu_attest_state st = dp ? dp->attest : CU_ATTEST_NOT_ASKED;
	const char *cls = dp ? dp->class_name : "default";
	const char *why = dp && dp->attest_why ? dp->attest_why : "";
	const char *pname = pol <= CU_ATTEST_POLICY_REQUIRED
				    ? policy_names[pol]
				    : "unknown";
	struct stn_diag d;

	stn_diag_init(&d);
	switch (st) {
	case CU_ATTEST_PROVEN:
		stn_fail(&d, STN_E_OK, device, "device %s proved it is serial "
			 "%s (attestation %s in class %.64s)", device,
			 id->serial, pname, cls);
		set_result(res, CU_PASSED, &d);
		return;
	case CU_ATTEST_FAILED:
		/* A device that tries and fails is not one that never
		 * tried (formats §9): refused under every policy. */
		stn_fail(&d, STN_E_ATTESTATION, device,
			 "device %s (serial %s) failed to prove its identity: "
			 "%.400s", device, id->serial,
			 *why ? why : "attestation did not verify");
		set_result(res, CU_FAILED, &d);
		return;
	case CU_ATTEST_ABSENT:
		if (pol == CU_ATTEST_POLICY_REQUIRED) {
			stn_fail(&d, STN_E_ATTESTATION, device,
				 "device %s (serial %s) did not attest%s"
				 "%.400s; class %.64s requires attestation",
				 device, id->serial, *why ? ": " : "", why,
				 cls);
			set_result(res, CU_FAILED, &d);
			return;
		}
		stn_fail(&d, STN_E_OK, device,
			 "device %s (serial %s) did not attest%s%.400s; "
			 "attestation %s in class %.64s: identity not proven",
			 device, id->serial, *why ? ": " : "", why, pname,
			 cls);
		set_result(res, CU_NOT_REQUIRED, &d);
		return;
	case CU_ATTEST_NOT_ASKED:
	default:
		/* The flow asks whenever the class wants it; a required
		 * attestation that was never asked for is not waved
		 * through (fail closed, docs/decisions.md). */
		if (pol == CU_ATTEST_POLICY_REQUIRED) {
			stn_fail(&d, STN_E_ATTESTATION, device,
				 "device %s (serial %s) was not asked to "
				 "attest, but class %.64s requires attestation",
				 device, id->serial, cls);
			set_result(res, CU_FAILED, &d);
			return;
		}
		stn_fail(&d, STN_E_OK, device, "not asked (attestation %s in "
			 "class %.64s)", pname, cls);
		set_result(res, CU_NOT_REQUIRED, &d);
		return;
	}
}

/* A token that waives attestation for this device does not admit one
 * whose attestation failed: say so, so nobody issues another. */
static void no_waiver_for_failure(const struct cu_bundle *b,
				  const struct cu_identity *id,
				  struct cu_check_result *res)
{
	for (size_t i = 0; i < b->ntokens; i++) {
		const struct cu_token *t = &b->tokens[i];
		if (!(t->waive & CU_WAIVE_ATTESTATION) ||
		    !cu_token_names(t, id->serial))
			continue;
		char text[sizeof(res->diag.text)], where[sizeof(res->diag.where)];
		snprintf(text, sizeof(text), "%.600s; token %s waives "
			 "attestation, but no token admits a failed "
			 "attestation", res->diag.text, t->file);
		memcpy(where, res->diag.where, sizeof(where));
		stn_refail(&res->diag, res->diag.code, where, "%s", text);
		return;
	}
}

/* Check 6 as the class wants it: not required, or required with its own
 * hop and age limits over the chain the bundle check read. */
static void class_custody(const struct cu_bundle *b,
			  const struct cu_device_policy *dp,
			  struct cu_check_result *res)
{
	const struct cu_chain *ch = &b->chain;
	struct stn_diag why;

	*res = b->checks[CU_CHECK_CUSTODY];
	if (!dp)
		return;
	stn_diag_init(&why);
	if (!dp->require_custody) {
		stn_fail(&why, STN_E_OK, b->shown,
			 "class %.64s does not require custody",
			 dp->class_name);
		set_result(res, CU_NOT_REQUIRED, &why);
		return;
	}
	if (res->outcome == CU_NOT_REQUIRED) {
		/* The gate did not read the chain: fail closed. */
		stn_fail(&why, STN_E_CUSTODY, b->shown,
			 "class %.64s requires custody, but the bundle's "
			 "custody chain was not checked", dp->class_name);
		set_result(res, CU_FAILED, &why);
		return;
	}
	if (res->outcome != CU_PASSED || ch->n == 0)
		return;
	if (dp->max_custody_hops && ch->n > dp->max_custody_hops) {
		stn_fail(&why, STN_E_CUSTODY, b->shown,
			 "custody chain has %zu hops, class %.64s allows %u",
			 ch->n, dp->class_name, dp->max_custody_hops);
		set_result(res, CU_FAILED, &why);
	} else if (dp->max_custody_age &&
		   b->at - ch->hops[0].time > dp->max_custody_age) {
		char t[CU_TIME_LEN + 1];
		cu_time_format(ch->hops[0].time, t);
		stn_fail(&why, STN_E_CUSTODY, b->shown,
			 "custody chain starts at %s, more than class %.64s's "
			 "max-custody-age of %lld day(s) before the session",
			 t, dp->class_name,
			 (long long)(dp->max_custody_age / 86400));
		set_result(res, CU_FAILED, &why);
	}
}

int cu_device_check(const struct cu_bundle *b, const struct cu_identity *id,
		    const char *device, const struct cu_installed *installed,
		    int allow_reinstall, const unsigned char *replayed,
		    struct cu_device_verdict *v, struct stn_diag *d)
{
	return cu_device_check_policy(b, id, device, installed,
				      allow_reinstall, replayed, NULL, v, d);
}

int cu_device_check_policy(const struct cu_bundle *b,
			   const struct cu_identity *id, const char *device,
			   const struct cu_installed *installed,
			   int allow_reinstall, const unsigned char *replayed,
			   const struct cu_device_policy *dp,
			   struct cu_device_verdict *v, struct stn_diag *d)
{
	const struct cu_manifest *m = b->manifest;
	struct stn_diag why;

	memset(v, 0, sizeof(*v));
	/* Check 4: model equal, hardware listed when the manifest lists. */
	stn_diag_init(&why);
	if (strcmp(id->model, m->model) != 0) {
		stn_fail(&why, STN_E_TARGET, b->manifest_path,
			 "device %s (serial %s) is model %s, the bundle is for "
			 "%s", device, id->serial, id->model, m->model);
	} else if (m->nhardware) {
		size_t i;
		for (i = 0; i < m->nhardware; i++)
			if (strcmp(m->hardware[i], id->hardware) == 0)
				break;
		if (i == m->nhardware)
			stn_fail(&why, STN_E_TARGET, b->manifest_path,
				 "device %s (serial %s) is hardware %s, the "
				 "bundle accepts only %s%s", device, id->serial,
				 id->hardware[0] ? id->hardware : "(none)",
				 m->hardware[0], m->nhardware > 1 ? " ..." : "");
	}
	if (why.code) {
		set_result(&v->target, CU_FAILED, &why);
	} else {
		stn_fail(&why, STN_E_OK, b->manifest_path,
			 "model %s%s%s matches", id->model,
			 id->hardware[0] ? " hardware " : "", id->hardware);
		set_result(&v->target, CU_PASSED, &why);
	}

	/* Check 5: strictly newer, or equal with the technician's consent. */
	stn_diag_init(&why);
	if (installed->source == CU_SEQ_UNKNOWN) {
		stn_fail(&why, STN_E_OK, b->manifest_path,
			 "installed sequence unknown (device does not report "
			 "it and this station never installed on %s)",
			 id->serial);
		set_result(&v->sequence, CU_PASSED, &why);
	} else if (m->sequence > installed->sequence) {
		stn_fail(&why, STN_E_OK, b->manifest_path,
			 "sequence %llu is newer than installed %llu (%s)",
			 (unsigned long long)m->sequence,
			 (unsigned long long)installed->sequence,
			 seq_source_text(installed->source));
		set_result(&v->sequence, CU_PASSED, &why);
	} else if (m->sequence == installed->sequence && allow_reinstall) {
		stn_fail(&why, STN_E_OK, b->manifest_path,
			 "sequence %llu equals installed (%s): reinstall "
			 "confirmed", (unsigned long long)m->sequence,
			 seq_source_text(installed->source));
		set_result(&v->sequence, CU_PASSED, &why);
		v->reinstall = 1;
	} else if (m->sequence == installed->sequence) {
		stn_fail(&why, STN_E_REINSTALL, b->manifest_path,
			 "sequence %llu equals the installed sequence on %s "
			 "(%s); confirm to reinstall",
			 (unsigned long long)m->sequence, id->serial,
			 seq_source_text(installed->source));
		set_result(&v->sequence, CU_FAILED, &why);
	} else {
		stn_fail(&why, STN_E_DOWNGRADE, b->manifest_path,
			 "sequence %llu is older than installed %llu on %s "
			 "(%s)", (unsigned long long)m->sequence,
			 (unsigned long long)installed->sequence, id->serial,
			 seq_source_text(installed->source));
		set_result(&v->sequence, CU_FAILED, &why);
	}

	class_signatures(b, dp, &v->signatures);
	check_attestation(id, device, dp, &v->attestation);

	/* Exceptions, one device at a time (formats §5).  An equal sequence
	 * is a reinstall to confirm, never a token's business. */
	v->validity = b->checks[CU_CHECK_VALIDITY];
	class_custody(b, dp, &v->custody);
	waive(b, id, replayed, dp, CU_WAIVE_EXPIRED, &v->validity, v);
	/* Only a device that could not attest: a failed attestation is
	 * not a missing one (formats §9), and one never asked for is the
	 * flow's mistake, not the device's. */
	if (dp && dp->attest == CU_ATTEST_ABSENT)
		waive(b, id, replayed, dp, CU_WAIVE_ATTESTATION,
		      &v->attestation, v);
	else if (dp && dp->attest == CU_ATTEST_FAILED)
		no_waiver_for_failure(b, id, &v->attestation);
	waive(b, id, replayed, dp, CU_WAIVE_TARGET, &v->target, v);
	if (v->sequence.diag.code == STN_E_DOWNGRADE)
		waive(b, id, replayed, dp, CU_WAIVE_DOWNGRADE, &v->sequence,
		      v);
	waive(b, id, replayed, dp, CU_WAIVE_CUSTODY, &v->custody, v);

	/* The first failure in the spec's order 1, 2, 3, 7, 4, 5, 6: check 7
	 * runs when the device is identified, and 4 to 6 rely on the
	 * identity it proves (formats §3).  A bundle check that never ran
	 * (images not yet checked) is a failure, not a pass. */
	const struct cu_check_result *order[] = {
		&v->signatures, &v->validity,
		&b->checks[CU_CHECK_IMAGES], &v->attestation,
		&v->target, &v->sequence, &v->custody};
	for (size_t i = 0; i < sizeof(order) / sizeof(*order); i++) {
		if (order[i]->outcome == CU_FAILED)
			return stn_fail(d, order[i]->diag.code,
					order[i]->diag.where, "%s",
					order[i]->diag.text);
		if (order[i]->outcome == CU_NOT_RUN)
			return stn_fail(d, STN_E_IMAGE, b->manifest_path,
					"check %s was not run",
					i == 2 ? "images" : "of the bundle");
	}
	return 0;
}
