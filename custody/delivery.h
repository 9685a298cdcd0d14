/* custody/delivery.h: encrypted delivery (formats §10).  The station's
 * delivery key (a delivery-role certificate, §2 `.6`) unwraps the content
 * key of each encrypted image from a `keys/NAME.key` file
 * (station-key-1); release engineering wraps a fresh content key for each
 * recipient certificate.  Methods: `ecdh-p256` (ephemeral ECDH with the
 * recipient's P-256 key, HKDF-SHA256 with no salt and info
 * "station-key-1" to a 32-byte KEK, AES-256 key wrap RFC 3394) and
 * `rsa-oaep-sha256` (RSA-OAEP, SHA-256 and MGF1-SHA-256).  Over libcrypto:
 * Debian's mbedTLS 2.28 is built without AES key wrap (MBEDTLS_NIST_KW_C),
 * so the whole unwrap is one implementation, the one `openssl` uses.
 * Content keys live in caller buffers the caller wipes; the delivery key
 * is wiped when freed. */
#ifndef CU_DELIVERY_H
#define CU_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "custody/manifest.h" /* CU_SHA256_LEN */

struct stn_diag;
struct cu_trust;

#define CU_CONTENT_KEY_LEN 32

enum cu_wrap_method {
	CU_WRAP_ECDH_P256 = 1,
	CU_WRAP_RSA_OAEP_SHA256 = 2,
};

/* A parsed keys/NAME.key (station-key-1; §1 record rules, every key
 * required except `ephemeral`, which ecdh-p256 requires and
 * rsa-oaep-sha256 forbids). */
struct cu_keyfile {
	char file[80];  /* "keys/NAME.key", for messages */
	char image[33]; /* the [image] label */
	uint8_t recipient[CU_SHA256_LEN];
	enum cu_wrap_method method;
	uint8_t ephemeral[256]; /* DER SubjectPublicKeyInfo */
	size_t ephemeral_len;
	uint8_t wrapped[512];
	size_t wrapped_len;
};

/* Parse a key file's bytes.  Errors: STN_E_SYNTAX naming `where` and the
 * line (bad record, unknown method, base64 not canonical, an ecdh-p256
 * file without `ephemeral` or a wrapped key that is not 40 bytes, an RSA
 * one with `ephemeral`). */
int cu_keyfile_parse(const void *buf, size_t len, const char *where,
		     struct cu_keyfile *out, struct stn_diag *d);

struct cu_delivery_key;

/*
 * Load the station's delivery key (PEM, unencrypted; P-256 or RSA >= 2048)
 * and its certificate chain, checked with cu_cert_check for the delivery
 * role against `trust` at `at`; the key must match the leaf.  Errors:
 * STN_E_CONFIG naming the file (unreadable, mismatch, refused algorithm,
 * not the delivery role), STN_E_NOMEM.
 */
int cu_delivery_load(const char *key_path, const char *cert_path,
		     const struct cu_trust *trust, int64_t at,
		     struct cu_delivery_key **out, struct stn_diag *d);
void cu_delivery_free(struct cu_delivery_key *k); /* wipes; NULL is fine */

/* SHA-256 of the leaf certificate's DER: the `recipient` key files name. */
const uint8_t *cu_delivery_recipient(const struct cu_delivery_key *k);

/*
 * Unwrap kf's content key with k.  kf must name k's recipient (else
 * STN_E_USAGE: the caller picks the file).  Errors: STN_E_IMAGE naming
 * kf->file when the wrapped key does not open (a wrong or tampered file:
 * ECDH or OAEP fails, or the key wrap's integrity check), STN_E_INTERNAL.
 */
int cu_delivery_unwrap(const struct cu_delivery_key *k,
		       const struct cu_keyfile *kf,
		       uint8_t key[CU_CONTENT_KEY_LEN], struct stn_diag *d);

/*
 * The content key of encrypted image img of the bundle staged in dir:
 * read dir/keys/ (files by cu_layout_key_name, each at most
 * CU_KEYFILE_MAX), take the one whose `image` is img->label and whose
 * `recipient` is k's, and unwrap it.  Messages name files under `shown`.
 * Errors: STN_E_IMAGE (rule images) when k is NULL (no delivery key
 * configured) or no file is for this station, naming the recipients the
 * bundle has for that image ("image app is encrypted for 3f2a9c1d...,
 * 77e01b2c...; this station's delivery certificate is 9d0e...") and, for
 * a file that does not open, which; STN_E_SYNTAX for a malformed key file
 * naming it; STN_E_IO.
 */
int cu_delivery_key_for(const struct cu_delivery_key *k, const char *dir,
			const char *shown, const struct cu_image *img,
			uint8_t key[CU_CONTENT_KEY_LEN], struct stn_diag *d);

/*
 * Release side: wrap `key` for the recipient whose certificate chain is at
 * cert_path (its leaf must carry the delivery role, checked with
 * cu_cert_check against `trust` at `at` when trust is not NULL; without a
 * trust store only the role is read from the leaf), for image `label`,
 * and write the station-key-1 record into out (cap bytes, CU_KEYFILE_MAX
 * from custody/layout.h suffices).  The method follows the key: P-256 is
 * ecdh-p256 with a fresh ephemeral key, RSA is rsa-oaep-sha256.  *rid
 * gets the recipient id (may be NULL).  Errors: STN_E_USAGE (not a
 * delivery certificate, another key type), STN_E_IO, STN_E_INTERNAL.
 */
int cu_delivery_wrap(const char *cert_path, const struct cu_trust *trust,
		     int64_t at, const char *label,
		     const uint8_t key[CU_CONTENT_KEY_LEN], char *out,
		     size_t cap, size_t *out_len, uint8_t rid[CU_SHA256_LEN],
		     struct stn_diag *d);

#endif
