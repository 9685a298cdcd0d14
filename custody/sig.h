/* custody/sig.h: detached signatures (formats §2), the X.509 chains and
 * station roles behind them, the trust store of anchors and CRLs (§6), and
 * signing with the station's own key.  Every time decision uses the `at`
 * the caller passes (the session start), never the wall clock. */
#ifndef CU_SIG_H
#define CU_SIG_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;

/* Roles are extended key usages under the station's UUID arc (§2). */
enum cu_role {
	CU_ROLE_NONE = 0,
	CU_ROLE_RELEASE = 1,
	CU_ROLE_CUSTODY = 2,
	CU_ROLE_EXCEPTION = 3,
	CU_ROLE_STATION = 4,
};

/* "release", "custody", "exception", "station"; "none" otherwise. */
const char *cu_role_name(enum cu_role r);
/* Content octets of the role's DER OBJECT IDENTIFIER (without tag and
 * length), static; NULL for CU_ROLE_NONE or an unknown value. */
const uint8_t *cu_role_oid(enum cu_role r, size_t *len);

/* Size caps on what is read; a larger file is STN_E_TOOBIG. */
#define CU_SIG_MAX (2 * 1024)            /* .sig: RSA-4096 needs 512 */
#define CU_CHAIN_MAX (64 * 1024)         /* .pem chains and private keys */
#define CU_ANCHORS_MAX (1024 * 1024)
#define CU_CRL_MAX (4 * 1024 * 1024)

/*
 * Every file below is opened with O_NOFOLLOW and must be a regular file: a
 * symlink or anything else is STN_E_UNSAFE (trust files: STN_E_CONFIG).
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
 * accepted and reported through cu_signer.stale_crl. */
void cu_trust_set_stale_crl_refuse(struct cu_trust *t, int refuse);
/* Offer a CRL found in a bundle's crl/ (§6).  It must verify against an
 * anchor, or against a CA certificate in issuer_pem (may be NULL; e.g. the
 * manifest's .pem) that itself chains to an anchor at `at`.  It replaces
 * the stored CRL of its issuer when newer (as above) and is ignored
 * otherwise; *replaced (may be NULL) says which.  Errors: STN_E_IO,
 * STN_E_UNSAFE, STN_E_TOOBIG, STN_E_CHAIN (unparseable, or signed by no CA
 * of the store). */
int cu_trust_add_crl(struct cu_trust *t, const char *crl_path,
		     const char *issuer_pem, int64_t at, int *replaced,
		     struct stn_diag *d);
void cu_trust_free(struct cu_trust *t); /* NULL is fine */

struct cu_signer {
	char cn[128];       /* subject CN of the leaf (printable ASCII) */
	char serial[80];    /* hex serial of the leaf, as openssl x509 -serial */
	char issuer[256];   /* issuer DN, as mbedtls_x509_dn_gets prints it */
	uint8_t key_id[32]; /* SHA-256 of the leaf's SubjectPublicKeyInfo DER:
			     * distinct keys = distinct key_id */
	int64_t not_after;  /* leaf validity end */
	int stale_crl;      /* a CRL on the path is past nextUpdate (warn) */
};

/*
 * Verify a detached signature (sig_path DER, pem_path chain) over a file
 * whose SHA-256 is `digest`, requiring `role`, at time `at`.  The chain must
 * verify to an anchor at `at` with CRLs applied (a CRL issued after `at` is
 * still applied: it can only know more revocations); a leaf keyUsage, when
 * present, must allow digitalSignature.  On success fills *out (may be NULL).
 * Errors, in the order checked:
 *   STN_E_USAGE      role is not one of the four
 *   STN_E_IO, STN_E_UNSAFE, STN_E_TOOBIG   reading either file
 *   STN_E_CHAIN      unparseable chain, leaf without a usable CN
 *   STN_E_ALGORITHM  leaf key not ECDSA P-256/P-384 or RSA >= 2048, or a
 *                    chain signed with a hash or key the profile refuses
 *   STN_E_CHAIN      unknown root, bad chain, expired or not yet valid at
 *                    `at`, revoked (names serial and issuer), stale CRL
 *                    under the refuse policy, keyUsage without
 *                    digitalSignature
 *   STN_E_TWOROLES   leaf carries more than one station role
 *   STN_E_ROLE       leaf lacks `role`
 *   STN_E_SIGNATURE  unparseable or mismatching signature
 */
int cu_sig_verify(const struct cu_trust *t, const uint8_t digest[32],
		  const char *sig_path, const char *pem_path, enum cu_role role,
		  int64_t at, struct cu_signer *out, struct stn_diag *d);

/* Check a certificate chain file carries exactly `role` and chains to the
 * trust store at `at` (the station's own certificate at start-up).  Same
 * rules and errors as cu_sig_verify, without the signature. */
int cu_cert_check(const struct cu_trust *t, const char *pem_path,
		  enum cu_role role, int64_t at, struct cu_signer *out,
		  struct stn_diag *d);

struct cu_key; /* a private key with its certificate chain */

/* Load an unencrypted PEM private key (ECDSA P-256/P-384 or RSA >= 2048)
 * and its PEM chain; the key must match the leaf's public key.  The key
 * file's bytes are wiped after parsing.  Errors: STN_E_IO, STN_E_UNSAFE,
 * STN_E_TOOBIG, STN_E_CONFIG (unparseable, encrypted, refused algorithm,
 * mismatch), STN_E_NOMEM. */
int cu_key_load(const char *key_path, const char *cert_path,
		struct cu_key **out, struct stn_diag *d);
void cu_key_free(struct cu_key *k); /* wipes; NULL is fine */
/* DER signature over a SHA-256 digest, exactly as openssl dgst -sha256
 * -sign makes (ECDSA DER, deterministic per RFC 6979, or RSA PKCS#1 v1.5),
 * using a CTR-DRBG seeded from the entropy source.  CU_SIG_MAX always
 * suffices for `cap`.  Errors: STN_E_USAGE (cap too small), STN_E_INTERNAL. */
int cu_key_sign(struct cu_key *k, const uint8_t digest[32], uint8_t *sig,
		size_t cap, size_t *sig_len, struct stn_diag *d);
/* The PEM chain bytes as loaded, NUL-terminated (borrowed). */
const char *cu_key_chain_pem(const struct cu_key *k, size_t *len);
/* Sign file `path` (a regular file, not a symlink): writes path.sig and
 * path.pem, or path.LABEL.sig and path.LABEL.pem when label is not NULL
 * (label must match [a-z0-9][a-z0-9-]{0,31}, else STN_E_USAGE).  Each is
 * written to a temp file, fsynced, mode 0644, renamed into place, the .pem
 * before the .sig.  Errors: STN_E_USAGE, STN_E_IO, STN_E_UNSAFE, and those
 * of cu_key_sign. */
int cu_sign_file(struct cu_key *k, const char *path, const char *label,
		 struct stn_diag *d);

#endif
