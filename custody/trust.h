/* custody/trust.h: the trust store (formats §6): the anchors, the CRLs of
 * their CAs and the policy for stale CRLs, against which custody/sig.h
 * verifies certificate chains.  Every time decision uses the `at` the caller
 * passes (the session start), never the wall clock. */
#ifndef CU_TRUST_H
#define CU_TRUST_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;

/* Size caps on what is read; a larger file is STN_E_TOOBIG. */
#define CU_ANCHORS_MAX (1024 * 1024)
#define CU_CRL_MAX (4 * 1024 * 1024)

/*
 * Every file below is opened with O_NOFOLLOW and must be a regular file: a
 * symlink or anything else is STN_E_CONFIG for the station's own trust files
 * (cu_trust_load), STN_E_UNSAFE for a bundle's (cu_trust_add_crl).
 */

struct cu_trust; /* anchors + CRLs + policy */

/* Load the anchors (a file of one or more PEM CA certificates, each of
 * which must parse and be a CA) and, when crl_dir is not NULL, every file
 * in it whose name does not start with '.' as a PEM or DER CRL.  Of several
 * CRLs from one issuer the newest is kept (higher crlNumber, or later
 * thisUpdate when either has none).  CRL signatures are checked against
 * the issuing CA when a chain through it is verified.  Stale CRLs warn by
 * default.  Errors: STN_E_IO, STN_E_TOOBIG, STN_E_CONFIG (no usable anchor,
 * a bad anchor or CRL, a symlink; the message names the file). */
int cu_trust_load(const char *anchors_pem, const char *crl_dir,
		  struct cu_trust **out, struct stn_diag *d);
/* refuse != 0: a CRL past its nextUpdate at `at` fails the chain; 0: it is
 * accepted and reported through cu_signer.stale_crl (custody/sig.h). */
void cu_trust_set_stale_crl_refuse(struct cu_trust *t, int refuse);
/* Offer a CRL found in a bundle's crl/ (§6).  It must verify against an
 * anchor, or against a CA certificate in issuer_pem (may be NULL; e.g. the
 * manifest's .pem; capped at CU_CHAIN_MAX of custody/sig.h) that itself
 * chains to an anchor at `at`.  It replaces the stored CRL of its issuer
 * when newer (as above) and is ignored otherwise; *replaced (may be NULL)
 * says which.  Errors: STN_E_IO, STN_E_UNSAFE, STN_E_TOOBIG, STN_E_CHAIN
 * (unparseable, or signed by no CA of the store). */
int cu_trust_add_crl(struct cu_trust *t, const char *crl_path,
		     const char *issuer_pem, int64_t at, int *replaced,
		     struct stn_diag *d);
/* Load every CRL in dir as cu_trust_load does for its crl_dir (newest per
 * issuer kept, signatures checked when a chain through the issuer is
 * verified): the station's own directory of CRLs learned from bundles. */
int cu_trust_add_crl_dir(struct cu_trust *t, const char *dir,
			 struct stn_diag *d);
/* How fresh the store's CRLs are at `at`: how many, how many are past
 * their nextUpdate, and the earliest nextUpdate still ahead (0: none). */
void cu_trust_crl_status(const struct cu_trust *t, int64_t at, size_t *count,
			 size_t *stale, int64_t *next_update);
void cu_trust_free(struct cu_trust *t); /* NULL is fine */

#endif
