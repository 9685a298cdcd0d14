/* custody/sign.h: signing with the station's own key: a private key with
 * its certificate chain, and the detached .sig and .pem pair (formats §2)
 * that custody/sig.h verifies. */
#ifndef CU_SIGN_H
#define CU_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "custody/sig.h" /* CU_SIG_MAX, CU_CHAIN_MAX */

struct stn_diag;

/*
 * Every file below is opened with O_NOFOLLOW and must be a regular file: a
 * symlink or anything else is STN_E_UNSAFE.
 */

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
/* The leaf certificate's subject CN (borrowed): the signer's identity. */
const char *cu_key_cn(const struct cu_key *k);
/* Sign file `path` (a regular file, not a symlink): writes path.sig and
 * path.pem, or path.LABEL.sig and path.LABEL.pem when label is not NULL
 * (label must match [a-z0-9][a-z0-9-]{0,31}, else STN_E_USAGE).  Each is
 * written to a temp file, fsynced, mode 0644, renamed into place, the .pem
 * before the .sig.  Errors: STN_E_USAGE, STN_E_IO, STN_E_UNSAFE, and those
 * of cu_key_sign. */
int cu_sign_file(struct cu_key *k, const char *path, const char *label,
		 struct stn_diag *d);

#endif
