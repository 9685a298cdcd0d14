/* transport/sim_identity.h: the device side of formats §9, for the
 * simulators (sim-serial, sim-dfu) and tests only: a device key, its
 * certificate chain (IEEE 802.1AR style, serialNumber in the subject) and
 * the fleet anchor its station authorizations must chain to.  It makes
 * station-attest-1 and station-receipt-1 records and checks
 * station-install-1 authorizations, with OpenSSL's libcrypto: an
 * implementation independent of the station's mbedTLS code, so that the
 * two agreeing is evidence that the records are plain §2 signatures.
 * It can misbehave as counterfeit or broken units do (spec/devices.md,
 * "Device simulators"). */
#ifndef TP_SIM_IDENTITY_H
#define TP_SIM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

/* Misbehaviours (bits). */
enum sim_id_fault {
	SIM_ID_WRONG_KEY = 1,     /* sign with a key that does not match the
				     certificate (a fresh P-256 key) */
	SIM_ID_REPLAY = 2,        /* ignore the station's nonce: answer with
				     the attestation made for the first
				     nonce ever seen (an old one) */
	SIM_ID_LYING_RECEIPT = 4, /* sign a receipt for the authorized
				     digest whatever was stored */
	SIM_ID_REFUSE_AUTH = 8,   /* answer every authorize with error */
};

/* "wrong-key", "replay", "lying-receipt", "refuse-auth": 0 and *bit, or
 * -1 for an unknown name. */
int sim_id_fault_parse(const char *name, unsigned *bit);

struct sim_identity;

/* Load key (PEM), chain (PEM, leaf first) and the fleet anchor (PEM CA
 * certificates).  Each argument is a file's path, or the PEM text itself
 * when it starts with "-----BEGIN".  The key must match the chain's first
 * certificate (SIM_ID_WRONG_KEY makes the mismatch).  Returns 0, or -1
 * with err filled. */
int sim_id_load(const char *key_pem, const char *chain_pem,
		const char *anchor_pem, unsigned faults,
		struct sim_identity **out, char *err, size_t errlen);
void sim_id_free(struct sim_identity *s); /* NULL is fine */

/* The identity the device claims (its station-device-1 fields). */
struct sim_id_claim {
	const char *model, *hardware, *serial, *version; /* hardware and
							    version may be
							    NULL */
	int has_sequence;
	uint64_t sequence;
};

/*
 * Answer `attest NONCE` (nonce_hex: what followed the command): a fresh
 * 32-byte challenge (kept for this session: authorizations and receipts
 * must carry it), the station-attest-1 record, `sig B64`, one `cert B64`
 * per certificate, and `ok`, each line ended by eol.  *out is malloc'd.
 * A nonce that is not 64 lowercase hex digits is an error answer
 * ("error bad nonce").  Returns 0.
 */
int sim_id_attest(struct sim_identity *s, const struct sim_id_claim *c,
		  const char *nonce_hex, const char *eol, char **out,
		  size_t *len);

/*
 * Judge an authorization block (the lines between `authorize` and `end`,
 * each ended by "\n" or "\r\n") at time `now`: station-install-1 whose
 * `device` is c->serial and `challenge` this session's, now within
 * issued..expires, signed (sig over the record's bytes) by a leaf that
 * holds the station role OID (2.25.220105586949796384984797284338591255574.4)
 * and chains to the fleet anchor.  On success the authorized images
 * (slot, size, sha256) are kept and 0 returned; else -1 with err naming
 * the rule in a few words (sent back as `error TEXT`).
 */
int sim_id_authorize(struct sim_identity *s, const struct sim_id_claim *c,
		     const char *block, size_t len, int64_t now, char *err,
		     size_t errlen);

/* Whether the kept authorization covers an image of `size` bytes for
 * `slot` (0), else -1 with err ("no authorization", "slot 3 not
 * authorized", "size differs from the authorization"). */
int sim_id_may_receive(const struct sim_identity *s, unsigned slot,
		       uint64_t size, char *err, size_t errlen);

/* Whether `sha256` of what was stored is what the authorization named for
 * `slot` (0), else -1 with err. */
int sim_id_check_stored(const struct sim_identity *s, unsigned slot,
			const uint8_t sha256[32], char *err, size_t errlen);

/*
 * The station-receipt-1 record for what was stored (slot, size, digest)
 * and its `sig B64` line, each line ended by eol (the caller adds the
 * `ok sha256=HEX` line).  With SIM_ID_LYING_RECEIPT the digest and size
 * are the authorization's, whatever was stored.  *out is malloc'd.
 * Returns 0, or -1 with err.
 */
int sim_id_receipt(struct sim_identity *s, const struct sim_id_claim *c,
		   unsigned slot, uint64_t size, const uint8_t sha256[32],
		   const char *eol, char **out, size_t *len, char *err,
		   size_t errlen);

#endif
