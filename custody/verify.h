/* custody/verify.h: decide whether a bundle may be installed on a device
 * (formats §3 checks 1 to 6, with §5 exceptions).  Bundle checks
 * (signatures, validity, images, custody) run once per bundle; device
 * checks (target, sequence) and token waivers once per device.
 * Every check's outcome is kept, not only the first failure, so front ends
 * can show the whole picture; the first failure is the refusal reason. */
#ifndef CU_VERIFY_H
#define CU_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "custody/chain.h"
#include "custody/manifest.h"
#include "custody/sig.h"
#include "custody/token.h"
#include "custody/trust.h"
#include "station/base/error.h"

struct cu_policy {
	unsigned release_threshold; /* distinct release keys, >= 1 */
	int require_custody;        /* check 6 */
	unsigned max_custody_hops;
	int64_t max_custody_age;    /* seconds */
	const char *technician;     /* signed in; the custody chain's end */
	int64_t max_token_ttl;      /* seconds */
	const char *site;           /* this station's site and id, which */
	const char *station;        /* a token may name */
	/* Release engineering's check without a station (`verify --trust`):
	 * the chain's last holder is not judged, since no technician is
	 * there to receive it (every other rule of formats §4 holds).  A
	 * station leaves this 0. */
	int custody_open_end;
};

enum cu_check {
	CU_CHECK_SIGNATURES = 0, /* 1: release signatures, threshold */
	CU_CHECK_VALIDITY,       /* 2: created <= start < expires */
	CU_CHECK_IMAGES,         /* 3: images exist, size, sha256 */
	CU_CHECK_TARGET,         /* 4: model and hardware */
	CU_CHECK_SEQUENCE,       /* 5: anti-rollback */
	CU_CHECK_CUSTODY,        /* 6: custody chain */
	CU_CHECK_ATTESTATION,    /* 7: the device proved its identity (§9);
				    named before 4 to 6 */
	CU_NCHECKS
};

enum cu_outcome {
	CU_NOT_RUN = 0,
	CU_PASSED,
	CU_FAILED,
	CU_WAIVED,
	CU_NOT_REQUIRED, /* policy does not ask for it */
};

const char *cu_check_name(enum cu_check c);     /* "signatures", ... */
const char *cu_outcome_name(enum cu_outcome o); /* "passed", ... */

struct cu_check_result {
	enum cu_outcome outcome;
	struct stn_diag diag; /* why it failed; a note when it passed */
};

/* What one image measured as.  For an image that travels encrypted
 * (formats §10) these are the plaintext's size and digest; the source
 * checks the stored file's own digest itself. */
struct cu_measured {
	uint64_t size;
	uint8_t sha256[CU_SHA256_LEN];
	/* Set only by cu_bundle_verify_sealed's measure: the image is
	 * encrypted and only its ciphertext was checked (against the
	 * manifest's cipher-sha256); the plaintext was not.  Any other
	 * bundle that reports it fails check 3. */
	int cipher_only;
};

/*
 * A bundle as verification reads it: the directory its files are read
 * from, the name messages give it, its manifest parsed once from the bytes
 * in dir, and how its images measure.  Staging hands one over for its
 * private copy (md_stage_source: images measured as they were copied, so
 * they are read once); cu_bundle_verify makes one over a plain directory.
 * `measure` returns 0 with *out filled, or the image's check 3 failure
 * (STN_E_IMAGE naming the file and what is wrong, STN_E_IO, STN_E_NOMEM).
 */
struct cu_source {
	const char *dir;
	const char *shown;
	const struct cu_manifest *manifest;
	int (*measure)(void *ctx, const struct cu_image *img,
		       struct cu_measured *out, struct stn_diag *d);
	void *ctx;
};

struct cu_bundle;

/*
 * Phase one: run checks 1 (signatures), 2 (validity) and 6 (custody, when
 * policy requires it) on src at time `at` (the session start), and load the
 * bundle's exception tokens (device-independent rules only;
 * custody/token.h).  Check 3 is left "not run": its images need not be
 * there yet.  *out is set whenever the bundle could be built, even if a
 * check fails, so every outcome can be shown; it borrows src's strings,
 * manifest and measure context, which must outlive it.  Returns 0 when
 * check 1 passed and the tokens could be read: the images may be copied
 * (an unsigned bundle's never are).  Else check 1's failure, or
 * STN_E_IO, STN_E_TOOBIG, STN_E_NOMEM reading the tokens, with d filled.
 * Failures of checks 2 and 6 are recorded and named by
 * cu_bundle_check_images, in the spec's order.
 */
int cu_bundle_open(const struct cu_source *src, const struct cu_trust *trust,
		   const struct cu_policy *policy, int64_t at,
		   struct cu_bundle **out, struct stn_diag *d);

/* Phase two: check 3, measuring each image through the source.  Returns 0
 * when every bundle check passed, else the first failure in spec order. */
int cu_bundle_check_images(struct cu_bundle *b, struct stn_diag *d);

/*
 * Both phases over a plain directory: read and parse dir/manifest, measure
 * each image by reading dir/FILE (no symlinks, regular files, at most its
 * size + 1 bytes read).  Messages name files under `shown_as` (NULL: dir).
 * Every check runs; returns the first failure in spec order.  *out is set
 * when the manifest could be parsed.
 */
int cu_bundle_verify(const char *dir, const char *shown_as,
		     const struct cu_trust *trust,
		     const struct cu_policy *policy, int64_t at,
		     struct cu_bundle **out, struct stn_diag *d);
/*
 * cu_bundle_verify for release engineering, which holds no delivery key
 * (`station verify --trust`): an encrypted image (formats §10) is checked
 * as far as it can be without decrypting it: a regular file of the
 * plaintext's size (CTR keeps the length) whose SHA-256 equals the
 * manifest's cipher-sha256.  Check 3 then passes with a note saying how
 * many images had only their ciphertext checked; cu_bundle_sealed counts
 * them.  Clear images are checked exactly as cu_bundle_verify does.
 */
int cu_bundle_verify_sealed(const char *dir, const char *shown_as,
			    const struct cu_trust *trust,
			    const struct cu_policy *policy, int64_t at,
			    struct cu_bundle **out, struct stn_diag *d);
/* How many images check 3 passed on their ciphertext alone (above). */
size_t cu_bundle_sealed(const struct cu_bundle *b);
void cu_bundle_free(struct cu_bundle *b); /* NULL is fine */

const struct cu_manifest *cu_bundle_manifest(const struct cu_bundle *b);
const char *cu_bundle_dir(const struct cu_bundle *b);
const struct cu_check_result *cu_bundle_check(const struct cu_bundle *b,
					      enum cu_check c);
/* Signers whose signatures verified (distinct keys), borrowed. */
const struct cu_signer *cu_bundle_signers(const struct cu_bundle *b,
					  size_t *n);
/* The custody chain as read (possibly partial when check 6 failed). */
const struct cu_chain *cu_bundle_chain(const struct cu_bundle *b);
/* The bundle's tokens, each with its device-independent problem. */
const struct cu_token *cu_bundle_tokens(const struct cu_bundle *b, size_t *n);

enum cu_seq_source {
	CU_SEQ_UNKNOWN = 0, /* neither device nor journal knows */
	CU_SEQ_DEVICE,      /* reported by the device */
	CU_SEQ_JOURNAL,     /* highest this station's journal installed */
};

struct cu_installed {
	uint64_t sequence;
	enum cu_seq_source source;
};

/* What the identity step found (formats §9), for check 7. */
enum cu_attest_state {
	CU_ATTEST_NOT_ASKED = 0, /* the class says attestation = none */
	CU_ATTEST_PROVEN,        /* a valid attestation */
	CU_ATTEST_ABSENT,        /* the device cannot attest */
	CU_ATTEST_FAILED,        /* it tried and failed: never waived */
};

enum cu_attest_policy {
	CU_ATTEST_POLICY_NONE = 0,
	CU_ATTEST_POLICY_OPTIONAL,
	CU_ATTEST_POLICY_REQUIRED,
};

/*
 * The device's class policy (formats §8) as the device checks apply it:
 * the class's release threshold (check 1 per device: the bundle's distinct
 * verified release keys must reach it), whether custody is required and
 * the chain's limits, the token lifetime it accepts, which checks tokens
 * may waive here, and check 7's inputs.  attest_why (may be NULL) says why
 * an attestation is absent or failed, in words, for the refusal.
 */
struct cu_device_policy {
	const char *class_name;
	unsigned release_threshold;
	int require_custody;
	unsigned max_custody_hops; /* 0: only the bundle policy's */
	int64_t max_custody_age;   /* seconds; 0: only the bundle policy's */
	int64_t max_token_ttl; /* seconds */
	unsigned waivable;     /* enum cu_waiver bits */
	enum cu_attest_policy attestation;
	enum cu_attest_state attest;
	const char *attest_why;
};

struct cu_device_verdict {
	struct cu_check_result signatures; /* check 1 by the class threshold */
	struct cu_check_result attestation; /* check 7 */
	struct cu_check_result validity; /* check 2 for this device */
	struct cu_check_result target;
	struct cu_check_result sequence;
	struct cu_check_result custody;  /* check 6 for this device */
	int reinstall;                   /* equal sequence, confirmed */
	/* Tokens that waived a failing check here (indices into
	 * cu_bundle_tokens); these are the uses to journal. */
	size_t applied[CU_MAX_TOKENS];
	size_t napplied;
};

/*
 * Checks 4 and 5 for one device, run whatever the bundle checks said so
 * every outcome can be shown, then exception tokens: a failing check 2, 4,
 * 5 (a downgrade; an equal sequence needs confirmation, not a token) or 6
 * is WAIVED by a token that names this device's serial, waives that check,
 * has no problem, and is not in `replayed` (per token, non-zero when the
 * journal shows it was already used on this device; NULL for none).  When
 * tokens that would waive a failing check exist but none can, the refusal
 * is STN_E_TOKEN saying why.  Checks 1 and 3 are never waived.  `device`
 * names the device in messages; allow_reinstall is the technician's
 * confirmation.  Returns 0 only when checks 1 to 6 all passed or were
 * waived (a check not run counts as failed), else the first failure in the
 * spec's order 1..6; v is always filled.
 */
int cu_device_check(const struct cu_bundle *b, const struct cu_identity *id,
		    const char *device, const struct cu_installed *installed,
		    int allow_reinstall, const unsigned char *replayed,
		    struct cu_device_verdict *v, struct stn_diag *d);

/*
 * cu_device_check under a device class's policy (dp; NULL: the bundle's
 * own policy, attestation none).  Adds: check 1 again with the class's
 * threshold (never waived; STN_E_THRESHOLD); check 7 (STN_E_ATTESTATION):
 * PROVEN passes, NOT_ASKED is "not required" (but fails, unwaivable, under
 * `required`: the flow should have asked), under `optional` ABSENT is "not
 * required" with a note, under `required` ABSENT fails and may be waived
 * by a token that waives `attestation`; FAILED fails under every policy
 * and no token waives it; a token whose lifetime exceeds the class's
 * max_token_ttl, or waiving a check outside `waivable`, does not apply
 * here (the refusal says so, STN_E_TOKEN when no other token could);
 * custody is not required when the class says so, fails when the class
 * requires it and the bundle's policy did not read the chain, and is held
 * to the class's hop and age limits (when set).  The order failures are
 * named in: 1, 2, 3, 7, 4, 5, 6.
 */
int cu_device_check_policy(const struct cu_bundle *b,
			   const struct cu_identity *id, const char *device,
			   const struct cu_installed *installed,
			   int allow_reinstall, const unsigned char *replayed,
			   const struct cu_device_policy *dp,
			   struct cu_device_verdict *v, struct stn_diag *d);

#endif
