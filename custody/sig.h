/* custody/sig.h: detached signatures (formats §2) and the X.509 chains and
 * station roles behind them, verified against a trust store
 * (custody/trust.h).  Every time decision uses the `at` the caller passes
 * (the session start), never the wall clock. */
#ifndef CU_SIG_H
#define CU_SIG_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;
struct cu_trust; /* custody/trust.h */

/* Roles are extended key usages under the station's UUID arc (§2). */
enum cu_role {
	CU_ROLE_NONE = 0,
	CU_ROLE_RELEASE = 1,
	CU_ROLE_CUSTODY = 2,
	CU_ROLE_EXCEPTION = 3,
	CU_ROLE_STATION = 4,
	CU_ROLE_DELIVERY = 6, /* §10: its key only decrypts (suffix .6) */
};

/* "release", "custody", "exception", "station", "delivery"; "none"
 * otherwise (5 is no role). */
const char *cu_role_name(enum cu_role r);
/* Content octets of the role's DER OBJECT IDENTIFIER (without tag and
 * length), static; NULL for CU_ROLE_NONE or an unknown value. */
const uint8_t *cu_role_oid(enum cu_role r, size_t *len);

/* Size caps on what is read; a larger file is STN_E_TOOBIG. */
#define CU_SIG_MAX (2 * 1024)            /* .sig: RSA-4096 needs 512 */
#define CU_CHAIN_MAX (64 * 1024)         /* .pem chains and private keys */

/*
 * Every file below is opened with O_NOFOLLOW and must be a regular file: a
 * symlink or anything else is STN_E_UNSAFE.
 */

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
 * Intermediates may come in any order (custody/trust.c builds the path).
 * Errors, in the order checked:
 *   STN_E_USAGE      role is not one of the five, or is delivery
 *                    (which signs nothing)
 *   STN_E_IO, STN_E_UNSAFE, STN_E_TOOBIG   reading either file
 *   STN_E_ALGORITHM  a certificate whose key algorithm mbedTLS cannot parse
 *                    (Ed25519, DSA)
 *   STN_E_CHAIN      unparseable chain, leaf without a usable CN
 *   STN_E_ALGORITHM  leaf key not ECDSA P-256/P-384 or RSA >= 2048, or a
 *                    chain signed with a hash or key the profile refuses
 *   STN_E_CHAIN      unknown root, no path, expired or not yet valid at
 *                    `at`, revoked (names serial and issuer), stale CRL
 *                    under the refuse policy, an issuer that is no CA, lacks
 *                    keyCertSign or exceeds its pathLenConstraint (named),
 *                    keyUsage without digitalSignature (for the
 *                    delivery role: without keyAgreement on an EC key,
 *                    keyEncipherment on RSA)
 *   STN_E_ROLE       a CA above the leaf whose extendedKeyUsage lacks
 *                    `role`; a leaf that is a CA (CA:TRUE or keyCertSign);
 *                    a leaf with anyExtendedKeyUsage
 *   STN_E_TWOROLES   leaf carries more than one station role
 *   STN_E_ROLE       leaf lacks `role`
 *   STN_E_SIGNATURE  signature not DER as openssl dgst writes it (BER
 *                    lengths, padded INTEGERs, RSA not the modulus length),
 *                    unparseable or mismatching
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

/* As cu_cert_check, on a chain held in memory (NUL-terminated PEM, at most
 * CU_CHAIN_MAX bytes: else STN_E_TOOBIG); `where` names it in messages.
 * For an auditor who finds a chain in a report rather than a file. */
int cu_cert_check_pem(const struct cu_trust *t, const char *pem,
		      const char *where, enum cu_role role, int64_t at,
		      struct cu_signer *out, struct stn_diag *d);

/* The checks of cu_cert_check_pem that need no trust store: the chain
 * parses, the leaf has one CN and an accepted key, the keyUsage `role`
 * needs, is no CA, has no anyExtendedKeyUsage and holds exactly `role`.
 * For the tools that sign without a station (`token issue`, `custody
 * add`): what every station would refuse is refused before writing.
 * Whether the chain reaches an anchor is not decided here.  Errors: as
 * cu_cert_check_pem's, less the chain's (STN_E_ROLE, STN_E_TWOROLES,
 * STN_E_CHAIN, STN_E_ALGORITHM, STN_E_TOOBIG, STN_E_USAGE). */
int cu_cert_duty_pem(const char *pem, const char *where, enum cu_role role,
		     struct stn_diag *d);

/* What a leaf certificate says of itself, with no trust decision (an
 * auditor reads it beside a signature it checked). */
struct cu_cert_facts {
	char subject[256], issuer[256]; /* DNs as mbedtls_x509_dn_gets prints */
	char serial[80];                /* as openssl x509 -serial prints it */
	char cn[128];                   /* the one CN; "" when not exactly one */
	/* The subject's serialNumber attributes (2.5.4.5, formats §9): how
	 * many, and the first as text ("" when not printable ASCII). */
	unsigned nserial_numbers;
	char serial_number[128];
};

/* Reads the first certificate of a PEM chain in memory (NUL-terminated,
 * at most CU_CHAIN_MAX bytes).  Errors: STN_E_CHAIN (nothing parses),
 * STN_E_ALGORITHM, STN_E_TOOBIG, naming `where`. */
int cu_cert_facts_pem(const char *pem, const char *where,
		      struct cu_cert_facts *out, struct stn_diag *d);

#endif
