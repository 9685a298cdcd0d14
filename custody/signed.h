/* custody/signed.h: the detached signatures of one file (formats §2):
 * find F.sig and F.LABEL.sig beside F, verify each with its .pem chain for
 * a role at a time, and collect the distinct signers.  Manifests, custody
 * records and tokens all go through here. */
#ifndef CU_SIGNED_H
#define CU_SIGNED_H

#include <stddef.h>
#include <stdint.h>

#include "custody/layout.h"
#include "custody/sig.h"
#include "station/base/error.h"

struct cu_trust;

struct cu_sigset {
	struct cu_signer signers[CU_MAX_SIGNATURES]; /* distinct keys */
	size_t n;
	size_t nfiles;             /* signature files found */
	size_t nfail;              /* of which did not verify */
	struct stn_diag first_fail; /* the first one's reason */
};

/*
 * Verify every signature of dir/name over `digest` (SHA-256 of the file's
 * bytes) for `role` at time `at`.  Messages name files under shown_dir
 * (NULL: dir).  Returns 0 with *out filled whatever the signatures said
 * (count them with out->n); an error only when the directory cannot be
 * listed, a path is too long, or there are more than CU_MAX_SIGNATURES
 * signature files (STN_E_TOOBIG).
 */
int cu_signed_verify(const char *dir, const char *name, const char *shown_dir,
		     const uint8_t digest[32], const struct cu_trust *trust,
		     enum cu_role role, int64_t at, struct cu_sigset *out,
		     struct stn_diag *d);

/* Whether a signer with this public key is in the set. */
int cu_sigset_has_key(const struct cu_sigset *set, const uint8_t key_id[32]);

#endif
