/* custody/devid.h: the recipient's identity (formats §9), judged by the
 * station: a device's station-attest-1 record with its certificate chain,
 * the station's own station-install-1 authorization, and the device's
 * station-receipt-1 for each image.  All three are text records (§1)
 * signed as §2 says (SHA-256 over the record's exact bytes, DER signature),
 * so each can be checked with OpenSSL alone.  Pure over mbedTLS: the bytes
 * come from a transport (transport/devmsg.h), the time from the session.
 * Every failure names `where` (the device) and the rule's words. */
#ifndef CU_DEVID_H
#define CU_DEVID_H

#include <stddef.h>
#include <stdint.h>

#include "custody/manifest.h" /* struct cu_identity, struct cu_image */

struct stn_diag;
struct cu_trust;
struct cu_key;

#define CU_NONCE_LEN 32
#define CU_DEVID_CERTS_MAX 4
#define CU_DEVID_CERT_MAX 4096

/* A device's signed message as it came: the record bytes as signed, the
 * DER signature, and (attestation only) the DER certificates, leaf first.
 * Borrowed pointers (e.g. into a struct tp_signed_msg). */
struct cu_devmsg {
	const char *record;
	size_t record_len;
	const uint8_t *sig;
	size_t sig_len;
	const uint8_t *const *cert; /* ncert pointers */
	const size_t *cert_len;
	size_t ncert;
};

/* A verified attestation: who the unit is, by which certificate. */
struct cu_attestation {
	struct cu_identity id; /* from the attested record: the identity
				  every later check uses */
	uint8_t nonce[CU_NONCE_LEN];     /* the station's, echoed */
	uint8_t challenge[CU_NONCE_LEN]; /* the device's own */
	char challenge_hex[2 * CU_NONCE_LEN + 1];
	char cert_subject[256]; /* leaf subject DN */
	char cert_issuer[256];  /* leaf issuer DN: the manufacturer CA */
	char cert_serial[80];   /* as openssl x509 -serial prints it */
	char anchor_subject[256]; /* the device anchor the chain ended at */
	int stale_crl;            /* a CRL on the path is past nextUpdate */
	/* The leaf, DER, kept to check this device's receipts. */
	uint8_t leaf[CU_DEVID_CERT_MAX];
	size_t leaf_len;
};

/*
 * Judge an attestation answer to `nonce` at time `at` (the session start)
 * against `anchors` (the device anchors of the device's class, with the
 * station's CRLs: custody/trust.h).  In this order: the record parses as
 * station-attest-1 (every field of formats §9, hardware and sequence and
 * version optional as in station-device-1); it carries a signature and a
 * certificate; the leaf's key is accepted by §2 and the signature verifies
 * over the record's bytes (DER as openssl writes it); the chain verifies
 * to `anchors` at `at` with CRLs (a revoked certificate names its serial);
 * the leaf is no CA, has keyUsage digitalSignature, and holds none of the
 * station roles of §2 (nor anyExtendedKeyUsage); its subject carries
 * exactly one serialNumber (2.5.4.5) equal to the record's serial; the
 * record's nonce equals `nonce`.  anchors NULL (a class without device
 * anchors) refuses at the chain step.  Every failure is STN_E_ATTESTATION with
 * d->text saying which of these in plain words ("the device certificate
 * is for serial SN-2, the device claims SN-1").  *out is filled on
 * success only.
 */
int cu_attest_verify(const struct cu_trust *anchors,
		     const struct cu_devmsg *msg,
		     const uint8_t nonce[CU_NONCE_LEN], int64_t at,
		     const char *where, struct cu_attestation *out,
		     struct stn_diag *d);

/* What the station authorizes (formats §9 station-install-1). */
struct cu_authz {
	const char *station, *site, *technician; /* technician: "-" if none */
	const char *device;                      /* the attested serial */
	const char *challenge_hex;               /* the device's challenge */
	const char *bundle_hex;                  /* bundle id */
	uint64_t sequence;
	int64_t issued; /* expires = issued + CU_AUTHZ_TTL */
	const struct cu_image *images;           /* in install order */
	size_t nimages;
};

#define CU_AUTHZ_TTL 600 /* seconds: formats §9, 10 minutes */
#define CU_AUTHZ_MAX 16384

/*
 * Write the authorization record into out (cap bytes; CU_AUTHZ_MAX holds
 * CU_MAX_IMAGES images with labels of 32 characters, and so do the
 * device message caps of transport/devmsg.h) and sign it with the station
 * key:
 * sig (CU_SIG_MAX bytes) gets the DER signature over SHA-256 of the
 * record's bytes.  The record has no blank or comment lines (the console
 * carries records line by line).  Errors: STN_E_USAGE (a field that the
 * record format cannot carry, cap too small), those of cu_key_sign.
 */
int cu_authz_make(const struct cu_authz *a, struct cu_key *key, char *out,
		  size_t cap, size_t *out_len, uint8_t *sig, size_t sig_cap,
		  size_t *sig_len, struct stn_diag *d);

/* The station key's certificate chain as DER certificates, leaf first (at
 * most CU_DEVID_CERTS_MAX), for the authorization's `cert` lines.
 * Pointers into k, valid while k lives.  Errors: STN_E_INTERNAL. */
int cu_key_chain_der(const struct cu_key *k, const uint8_t **der,
		     size_t *len, size_t max, size_t *n, struct stn_diag *d);

/* A verified receipt. */
struct cu_receipt {
	unsigned slot;
	uint64_t size;
	uint8_t sha256[CU_SHA256_LEN];
};

/*
 * Judge a receipt for image `img` from the device of attestation `a`: it
 * parses as station-receipt-1, its signature (DER) verifies with the
 * attested leaf's key, `device` is the attested serial, `nonce` and
 * `challenge` are this session's (a's), `slot` is img's.  Then *out is
 * filled and the size and digest compared with img's.  Errors:
 * STN_E_PROOF naming `where` and, in words, what is wrong: unsigned, bad
 * signature, another device or session, another slot, or "the device
 * signed for N bytes with SHA-256 X; the image is M bytes with Y"
 * (out is filled in that last case, for the journal).
 */
int cu_receipt_verify(const struct cu_attestation *a,
		      const struct cu_devmsg *msg, const struct cu_image *img,
		      const char *where, struct cu_receipt *out,
		      struct stn_diag *d);

/*
 * An auditor's check from journaled text alone: `sig` (DER) over
 * SHA-256 of `record` verifies with the public key of the first
 * certificate in `chain_pem` (PEM, NUL-terminated).  No trust decision.
 * Errors: STN_E_CHAIN (unparseable chain), STN_E_SIGNATURE.
 */
int cu_devid_sig_check(const char *chain_pem, const char *record,
		       size_t record_len, const uint8_t *sig, size_t sig_len,
		       struct stn_diag *d);

/* The DER certificates of msg as PEM text, leaf first, into a malloc'd
 * NUL-terminated string (for the journal's `chain` field).  Errors:
 * STN_E_NOMEM, STN_E_INTERNAL. */
int cu_devid_chain_pem(const uint8_t *const *cert, const size_t *cert_len,
		       size_t ncert, char **out, struct stn_diag *d);

#endif
