/* custody/token.h: exception tokens (formats §5), short-lived permissions
 * from an exception authority to waive named checks (downgrade, expired,
 * target, custody, attestation) for named devices.  Loading checks
 * everything that does not depend on the device; which device a token
 * applies to, and whether it was already used there, is decided per device
 * (custody/verify.h and the station's journal). */
#ifndef CU_TOKEN_H
#define CU_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "custody/layout.h"
#include "station/base/sha256.h"
#include "custody/sig.h"
#include "station/base/error.h"

struct cu_trust;
struct cu_key;
struct cu_manifest;
struct cu_sigset;

enum cu_waiver {
	CU_WAIVE_DOWNGRADE = 1, /* check 5 */
	CU_WAIVE_EXPIRED = 2,   /* check 2 */
	CU_WAIVE_TARGET = 4,    /* check 4 */
	CU_WAIVE_CUSTODY = 8,   /* check 6 */
	CU_WAIVE_ATTESTATION = 16, /* check 7: a device that does not attest */
};
#define CU_WAIVE_ALL 31

#define CU_TOKEN_DEVICES 64
#define CU_TOKEN_SKEW 300 /* issued - 5 minutes (§5) */

struct cu_token {
	char file[80];  /* "tokens/NAME.tok" */
	char id[33];    /* 32 lowercase hex */
	unsigned waive; /* enum cu_waiver bits */
	char devices[CU_TOKEN_DEVICES][65];
	size_t ndevices;
	char site[65];    /* "" when not given */
	char station[65]; /* "" when not given */
	int64_t issued, expires;
	char reason[1025];
	struct cu_signer signer;
	struct stn_diag problem; /* code != 0: unusable on any device, why */
};

struct cu_token_rules {
	const char *site;    /* this station's site */
	const char *station; /* this station's id */
	int64_t max_ttl;     /* policy max-token-ttl, seconds */
};

/* "downgrade expired" for the bits set (into buf). */
const char *cu_waiver_names(unsigned waive, char *buf, size_t cap);
/* Parses "downgrade expired ..." into bits; -1 on an unknown word. */
int cu_waiver_parse(const char *words, unsigned *waive);

/* Parse a token's bytes (form only); bundle receives the id it names.
 * Errors: STN_E_SYNTAX naming FILE:LINE. */
int cu_token_parse(const void *buf, size_t len, const char *path,
		   struct cu_token *t, uint8_t bundle[CU_SHA256_LEN],
		   struct stn_diag *d);

/*
 * Read every bundle_dir/tokens/NAME.tok (NAME a formats §1 label; other
 * files ignored; at most CU_MAX_TOKENS) and check what does not depend on
 * the device: form, a signature chain to an exception-role certificate
 * that is not also a signer of the manifest (`manifest_signers`), this
 * bundle, site and station when given, `at` within issued - 5 minutes ..
 * expires, and expires - issued within max_ttl.  A token failing a rule is
 * kept with its `problem` set (it may explain a refusal later); *out is
 * malloc'd (free it), *n may be 0.  Errors only for I/O or too many tokens.
 */
int cu_tokens_load(const char *bundle_dir, const char *shown_dir,
		   const struct cu_manifest *m,
		   const struct cu_sigset *manifest_signers,
		   const struct cu_trust *trust,
		   const struct cu_token_rules *rules, int64_t at,
		   struct cu_token **out, size_t *n, struct stn_diag *d);

/* Whether the token lists this device serial. */
int cu_token_names(const struct cu_token *t, const char *serial);

/*
 * Write bundle_dir/tokens/NAME.tok (NAME: `name`, or "tok-" and the first 8
 * hex digits of the new id) with a fresh random id, issued = now, expires
 * = now + ttl, and sign it (NAME.tok.sig/.pem).  Errors: STN_E_USAGE (bad
 * value, ttl not positive), STN_E_IO.
 */
int cu_token_issue(const char *bundle_dir, struct cu_key *key,
		   unsigned waive, const char *const *devices,
		   size_t ndevices, const char *site, const char *station,
		   int64_t now, int64_t ttl, const char *reason,
		   const char *name, char *written, size_t cap,
		   struct stn_diag *d);

#endif
