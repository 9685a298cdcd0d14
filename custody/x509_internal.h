/* custody/x509_internal.h: PRIVATE to custody/; nothing outside custody/
 * includes it.  What trust.c, sig.c, sign.c and devid.c share over mbedTLS
 * 2.28: bounded reads that refuse symlinks and special files, names,
 * serials, times, keys, PEM chains, DER signatures and what a leaf may be
 * (x509_util.c), and verifying a chain against the trust store (trust.c).
 * The public headers carry no mbedTLS type. */
#ifndef CU_X509_INTERNAL_H
#define CU_X509_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "custody/sig.h"

struct stn_diag;
struct cu_trust;

/* mbedtls_strerror into buf; returns buf. */
const char *cu_x509_strerror(int ret, char *buf, size_t size);

/* Open `path` read-only with O_NOFOLLOW and require a regular file: a
 * symlink or anything else is `unsafe_code`.  Errors: unsafe_code,
 * STN_E_IO. */
int cu_x509_open_regular(const char *path, int unsafe_code, int *fd_out,
			 struct stat *st, struct stn_diag *d);
/* Read a whole file of at most `cap` bytes (`what` names it in messages)
 * into a malloc'd buffer with a NUL appended; *out_len excludes the NUL.
 * Errors: those of cu_x509_open_regular, STN_E_TOOBIG, STN_E_NOMEM,
 * STN_E_IO (also when the file grows or shrinks while read). */
int cu_x509_read_capped(const char *path, size_t cap, const char *what,
			int unsafe_code, unsigned char **out, size_t *out_len,
			struct stn_diag *d);

/* A DN as mbedtls_x509_dn_gets prints it, always NUL-terminated. */
void cu_x509_dn_string(const mbedtls_x509_name *dn, char *buf, size_t size);
/* A serial as `openssl x509 -serial` prints it. */
void cu_x509_serial_string(const mbedtls_x509_buf *s, char *buf,
			   size_t size);
/* Seconds since the epoch; INT64_MIN before 1970, `if_bad` when
 * cu_time_parse refuses the time (callers pass the refusing side). */
int64_t cu_x509_secs(const mbedtls_x509_time *t, int64_t if_bad);
/* The leaf's one subject CN, printable ASCII, shorter than `size`.
 * Errors: STN_E_CHAIN naming `where` (d may be NULL). */
int cu_x509_leaf_cn(const mbedtls_x509_crt *c, const char *where, char *cn,
		    size_t size, struct stn_diag *d);
/* Whether formats §2 accepts the key; `desc` says what it is either way. */
int cu_x509_key_accepted(const mbedtls_pk_context *pk, char *desc,
			 size_t size);
/* The station roles (formats §2) a leaf's extendedKeyUsage lists: bit r
 * set for enum cu_role r. */
unsigned cu_x509_leaf_roles(const mbedtls_x509_crt *c);
/* Whether its extendedKeyUsage lists anyExtendedKeyUsage. */
int cu_x509_has_any_eku(const mbedtls_x509_crt *c);
/* "release", "release and custody", ... for a mask as above. */
void cu_x509_roles_string(unsigned mask, char *buf, size_t size);
/* What makes c a CA ("basicConstraints CA:TRUE", "keyUsage keyCertSign"),
 * or NULL: no leaf may be one (a CA could mint signers). */
const char *cu_x509_ca_why(const mbedtls_x509_crt *c);
/* 0 when sig is DER as `openssl dgst -sign` writes it for key pk (ECDSA
 * re-encoded and compared; RSA exactly the modulus length); else 1 with
 * what is wrong in `why`. */
int cu_x509_sig_not_der(const mbedtls_pk_context *pk, const unsigned char *sig,
			size_t len, char *why, size_t size);
/* Parse a NUL-terminated PEM chain of `len` bytes into `chain`: the leaf
 * first, then any intermediates; text around the PEM blocks is ignored.
 * Errors: `code` naming `where`; a key of an algorithm mbedTLS cannot
 * parse (Ed25519, DSA) is STN_E_ALGORITHM when `code` is STN_E_CHAIN. */
int cu_x509_parse_chain(const unsigned char *pem, size_t len,
			const char *where, int code, mbedtls_x509_crt *chain,
			struct stn_diag *d);
/* Append the CRLs of a NUL-terminated file of `len` bytes to `list`: PEM
 * (one or more blocks; text around them, such as trailing blank lines, is
 * ignored as RFC 7468 §2 asks) or a single DER CRL.  Errors: `code`
 * naming `where`. */
int cu_x509_parse_crls(const unsigned char *buf, size_t len, const char *where,
		       int code, mbedtls_x509_crl *list, struct stn_diag *d);

/* Verify `crt` (followed by its intermediates through ->next, in any
 * order) to an anchor of `t` at `at` with its CRLs applied, trying every
 * path the intermediates allow (bounded in trust.c); *stale reports a stale
 * CRL accepted under the warn policy.  Unless `role` is CU_ROLE_NONE, every
 * CA above `crt` that has an extendedKeyUsage must list `role` (or
 * anyExtendedKeyUsage).  Errors, naming `where`: STN_E_CHAIN (naming a
 * basicConstraints, keyUsage or pathLenConstraint fault when that is why),
 * STN_E_ALGORITHM, STN_E_ROLE (EKU nesting), STN_E_NOMEM. */
int cu_trust_verify_chain(const struct cu_trust *t, mbedtls_x509_crt *crt,
			  int64_t at, enum cu_role role, const char *where,
			  int *stale, struct stn_diag *d);
/* The same, and on success the subject DN of the anchor the path ended
 * at into `anchor` (anchor_size bytes; anchor may be NULL). */
int cu_trust_verify_chain_anchor(const struct cu_trust *t,
				 mbedtls_x509_crt *crt, int64_t at,
				 enum cu_role role, const char *where,
				 int *stale, char *anchor, size_t anchor_size,
				 struct stn_diag *d);

#endif
