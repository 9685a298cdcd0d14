/* custody/sig.c: detached signatures and the station roles of their
 * signers' certificates, over mbedTLS 2.28 (formats §2).  The chain itself
 * is verified against the trust store by custody/trust.c. */
#include "custody/sig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "station/base/sha256.h"
#include "custody/x509_internal.h"
#include "station/base/error.h"

/*
 * DER content octets of 2.25.220105586949796384984797284338591255574.N.
 * X.690 packs the first two arcs into one subidentifier, 2 * 40 + 25 = 105
 * (0x69); the UUID arc follows in base 128, most significant group first,
 * with 0x80 on every octet but its last (19 octets, worked out with a short
 * Python loop and checked against `openssl asn1parse -genstr OID:...`); the
 * role number is the final octet.  tests/test_sig.c recomputes the arc from
 * its decimal form and finds these bytes in certificates openssl made.
 */
#define ROLE_ARC                                                              \
	0x69, 0x82, 0xcb, 0x96, 0xe5, 0xd2, 0xa1, 0xbf, 0xa2, 0x92, 0xb5,     \
		0x9c, 0x9b, 0xea, 0x9e, 0xc3, 0xb8, 0xdb, 0x98, 0x16
#define ROLE_OID_LEN 21

/* Indexed by enum cu_role; the suffix .5 is not a role (formats §2 skips
 * it), so its row stays empty and every lookup refuses it. */
static const struct {
	const char *name;
	uint8_t oid[ROLE_OID_LEN];
} role_table[] = {
	[CU_ROLE_RELEASE] = {"release", {ROLE_ARC, 0x01}},
	[CU_ROLE_CUSTODY] = {"custody", {ROLE_ARC, 0x02}},
	[CU_ROLE_EXCEPTION] = {"exception", {ROLE_ARC, 0x03}},
	[CU_ROLE_STATION] = {"station", {ROLE_ARC, 0x04}},
	[CU_ROLE_DELIVERY] = {"delivery", {ROLE_ARC, 0x06}},
};

static int role_known(enum cu_role r)
{
	size_t n = sizeof(role_table) / sizeof(role_table[0]);

	return (int)r > 0 && (size_t)r < n && role_table[r].name;
}

const char *cu_role_name(enum cu_role r)
{
	return role_known(r) ? role_table[r].name : "none";
}

const uint8_t *cu_role_oid(enum cu_role r, size_t *len)
{
	if (!role_known(r))
		return NULL;
	*len = ROLE_OID_LEN;
	return role_table[r].oid;
}

static int role_required(enum cu_role role, const char *where,
			 struct stn_diag *d)
{
	if (!role_known(role))
		return stn_fail(d, STN_E_USAGE, where,
				"no such role %d to require", (int)role);
	return 0;
}

/* What the leaf itself must say for `role`, after its chain verified (or,
 * for cu_cert_duty_pem, with no trust decision at all): the keyUsage the
 * role needs, not a CA, no anyExtendedKeyUsage, exactly one station role
 * and that one. */
static int check_duty(const mbedtls_x509_crt *chain, const char *pem_path,
		      enum cu_role role, const char *cn, struct stn_diag *d)
{
	unsigned mask;
	char roles[64];
	const char *ca;
	int rc;

	/* RFC 5280 §4.2.1.3; mbedTLS checks the CAs' keyCertSign itself.  A
	 * delivery key never signs: it agrees on a key (ECDH) or has one
	 * encrypted to it (RSA), so that is the bit its keyUsage must hold. */
	if (role == CU_ROLE_DELIVERY) {
		int rsa = mbedtls_pk_get_type(&chain->pk) == MBEDTLS_PK_RSA;
		unsigned need = rsa ? MBEDTLS_X509_KU_KEY_ENCIPHERMENT
				    : MBEDTLS_X509_KU_KEY_AGREEMENT;

		if (mbedtls_x509_crt_check_key_usage(chain, need) != 0) {
			rc = stn_fail(d, STN_E_CHAIN, pem_path,
				      "delivery certificate CN %s has a "
				      "keyUsage without %s",
				      cn,
				      rsa ? "keyEncipherment" : "keyAgreement");
			return rc;
		}
	} else if (mbedtls_x509_crt_check_key_usage(
			   chain, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0) {
		rc = stn_fail(d, STN_E_CHAIN, pem_path,
			      "signer CN %s has a keyUsage without "
			      "digitalSignature",
			      cn);
		return rc;
	}
	/* A CA could mint custody or exception certificates with fresh keys
	 * and so get past one key, one duty and the rule that a token's
	 * signer did not sign the manifest: no CA signs as any role. */
	if ((ca = cu_x509_ca_why(chain))) {
		rc = stn_fail(d, STN_E_ROLE, pem_path,
			      "signer CN %s is a CA (%s); a CA may not sign "
			      "as %s",
			      cn, ca, cu_role_name(role));
		return rc;
	}
	/* RFC 5280 §4.2.1.12: anyExtendedKeyUsage lets a key serve any
	 * purpose, which one key, one duty forbids. */
	if (cu_x509_has_any_eku(chain)) {
		rc = stn_fail(d, STN_E_ROLE, pem_path,
			      "signer CN %s also carries anyExtendedKeyUsage, "
			      "which is not a role; one key may hold one duty",
			      cn);
		return rc;
	}
	mask = cu_x509_leaf_roles(chain);
	cu_x509_roles_string(mask, roles, sizeof(roles));
	if (mask & (mask - 1)) {
		rc = stn_fail(d, STN_E_TWOROLES, pem_path,
			      "signer CN %s holds roles %s; one key may hold "
			      "one station role",
			      cn, roles);
		return rc;
	}
	if (!(mask & (1u << role))) {
		rc = stn_fail(d, STN_E_ROLE, pem_path,
			      "signer CN %s holds %s%s, not %s", cn,
			      mask ? "role " : "no station role", roles,
			      cu_role_name(role));
		return rc;
	}
	return 0;
}

/* What check_cert and cu_cert_check_pem share: the chain given as a
 * NUL-terminated PEM text; `pem_path` names it in messages.  Leaves the
 * chain parsed. */
static int check_cert_text(const struct cu_trust *t, const unsigned char *pem,
			   size_t len, const char *pem_path, enum cu_role role,
			   int64_t at, mbedtls_x509_crt *chain,
			   struct cu_signer *s, struct stn_diag *d)
{
	unsigned char spki[1200], *der;
	char desc[64];
	int rc, n;

	rc = role_required(role, pem_path, d);
	if (rc)
		return rc;
	memset(s, 0, sizeof(*s));
	rc = cu_x509_parse_chain(pem, len, pem_path, STN_E_CHAIN, chain, d);
	if (rc)
		goto out;
	rc = cu_x509_leaf_cn(chain, pem_path, s->cn, sizeof(s->cn), d);
	if (rc)
		goto out;
	if (!cu_x509_key_accepted(&chain->pk, desc, sizeof(desc))) {
		rc = stn_fail(d, STN_E_ALGORITHM, pem_path,
			      "signer CN %s has %s; accepted are ECDSA P-256, "
			      "P-384 and RSA of 2048 bits or more",
			      s->cn, desc);
		goto out;
	}
	rc = cu_trust_verify_chain(t, chain, at, role, pem_path, &s->stale_crl,
				   d);
	if (rc)
		goto out;
	if ((rc = check_duty(chain, pem_path, role, s->cn, d)))
		goto out;
	cu_x509_serial_string(&chain->serial, s->serial, sizeof(s->serial));
	cu_x509_dn_string(&chain->issuer, s->issuer, sizeof(s->issuer));
	/* Re-encoded rather than hashed as found, so that one key spelt two
	 * ways (explicit curve parameters, say) cannot pass for two keys
	 * when release signatures are counted. */
	n = mbedtls_pk_write_pubkey_der(&chain->pk, spki, sizeof(spki));
	if (n <= 0) {
		rc = stn_fail(d, STN_E_INTERNAL, pem_path,
			      "cannot encode the public key of %s", s->cn);
		goto out;
	}
	der = spki + sizeof(spki) - (size_t)n;
	if ((rc = cu_sha256(der, (size_t)n, s->key_id))) {
		rc = stn_fail(d, rc, pem_path, "hashing the public key: %s",
			      stn_strerror(rc));
		goto out;
	}
	s->not_after = cu_x509_secs(&chain->valid_to, INT64_MIN);
out:
	return rc;
}

/* What cu_sig_verify and cu_cert_check share; leaves the chain parsed. */
static int check_cert(const struct cu_trust *t, const char *pem_path,
		      enum cu_role role, int64_t at, mbedtls_x509_crt *chain,
		      struct cu_signer *s, struct stn_diag *d)
{
	unsigned char *pem = NULL;
	size_t len;
	int rc;

	rc = role_required(role, pem_path, d);
	if (rc)
		return rc;
	rc = cu_x509_read_capped(pem_path, CU_CHAIN_MAX, "certificate chain",
				 STN_E_UNSAFE, &pem, &len, d);
	if (rc)
		return rc;
	rc = check_cert_text(t, pem, len, pem_path, role, at, chain, s, d);
	free(pem);
	return rc;
}

int cu_sig_verify(const struct cu_trust *t, const uint8_t digest[32],
		  const char *sig_path, const char *pem_path, enum cu_role role,
		  int64_t at, struct cu_signer *out, struct stn_diag *d)
{
	mbedtls_x509_crt chain;
	struct cu_signer s;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	char ebuf[128], why[96];
	int rc, ret;

	mbedtls_x509_crt_init(&chain);
	rc = role_required(role, sig_path, d);
	if (rc)
		return rc;
	/* formats §2: a delivery key signs nothing, so nothing it signed
	 * counts. */
	if (role == CU_ROLE_DELIVERY)
		return stn_fail(d, STN_E_USAGE, sig_path,
				"the delivery role signs nothing; its key only "
				"decrypts");
	rc = cu_x509_read_capped(sig_path, CU_SIG_MAX, "signature",
				 STN_E_UNSAFE, &sig, &sig_len, d);
	if (rc)
		goto out;
	rc = check_cert(t, pem_path, role, at, &chain, &s, d);
	if (rc)
		goto out;
	if (cu_x509_sig_not_der(&chain.pk, sig, sig_len, why, sizeof(why))) {
		rc = stn_fail(d, STN_E_SIGNATURE, sig_path,
			      "signature by %s does not verify: it is not in "
			      "DER as openssl dgst writes it (%s)",
			      s.cn, why);
		goto out;
	}
	ret = mbedtls_pk_verify(&chain.pk, MBEDTLS_MD_SHA256, digest,
				CU_SHA256_LEN, sig, sig_len);
	if (ret != 0) {
		rc = stn_fail(d, STN_E_SIGNATURE, sig_path,
			      "signature by %s does not verify over the file's "
			      "SHA-256: %s",
			      s.cn, cu_x509_strerror(ret, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (out)
		*out = s;
out:
	free(sig);
	mbedtls_x509_crt_free(&chain);
	return rc;
}

int cu_cert_check(const struct cu_trust *t, const char *pem_path,
		  enum cu_role role, int64_t at, struct cu_signer *out,
		  struct stn_diag *d)
{
	mbedtls_x509_crt chain;
	struct cu_signer s;
	int rc;

	mbedtls_x509_crt_init(&chain);
	rc = check_cert(t, pem_path, role, at, &chain, &s, d);
	if (rc == 0 && out)
		*out = s;
	mbedtls_x509_crt_free(&chain);
	return rc;
}

int cu_cert_check_pem(const struct cu_trust *t, const char *pem,
		      const char *where, enum cu_role role, int64_t at,
		      struct cu_signer *out, struct stn_diag *d)
{
	mbedtls_x509_crt chain;
	struct cu_signer s;
	size_t len = strlen(pem);
	int rc;

	if (len > CU_CHAIN_MAX)
		return stn_fail(d, STN_E_TOOBIG, where,
				"certificate chain of %zu bytes, over %d", len,
				CU_CHAIN_MAX);
	mbedtls_x509_crt_init(&chain);
	rc = check_cert_text(t, (const unsigned char *)pem, len, where, role,
			     at, &chain, &s, d);
	if (rc == 0 && out)
		*out = s;
	mbedtls_x509_crt_free(&chain);
	return rc;
}

/* Parse a PEM chain of at most CU_CHAIN_MAX bytes into `chain` (which the
 * caller has initialised and frees, whatever this returns). */
static int parse_pem_chain(const char *pem, const char *where,
			   mbedtls_x509_crt *chain, struct stn_diag *d)
{
	size_t len = strlen(pem);

	if (len > CU_CHAIN_MAX)
		return stn_fail(d, STN_E_TOOBIG, where,
				"certificate chain of %zu bytes, over %d", len,
				CU_CHAIN_MAX);
	return cu_x509_parse_chain((const unsigned char *)pem, len, where,
				   STN_E_CHAIN, chain, d);
}

int cu_cert_duty_pem(const char *pem, const char *where, enum cu_role role,
		     struct stn_diag *d)
{
	mbedtls_x509_crt chain;
	char cn[128], desc[64];
	int rc;

	if ((rc = role_required(role, where, d)))
		return rc;
	mbedtls_x509_crt_init(&chain);
	rc = parse_pem_chain(pem, where, &chain, d);
	if (rc == 0)
		rc = cu_x509_leaf_cn(&chain, where, cn, sizeof(cn), d);
	if (rc == 0 && !cu_x509_key_accepted(&chain.pk, desc, sizeof(desc)))
		rc = stn_fail(d, STN_E_ALGORITHM, where,
			      "signer CN %s has %s; accepted are ECDSA P-256, "
			      "P-384 and RSA of 2048 bits or more",
			      cn, desc);
	if (rc == 0)
		rc = check_duty(&chain, where, role, cn, d);
	mbedtls_x509_crt_free(&chain);
	return rc;
}

int cu_cert_facts_pem(const char *pem, const char *where,
		      struct cu_cert_facts *out, struct stn_diag *d)
{
	mbedtls_x509_crt chain;
	const mbedtls_x509_name *n;
	int rc;

	memset(out, 0, sizeof(*out));
	mbedtls_x509_crt_init(&chain);
	if ((rc = parse_pem_chain(pem, where, &chain, d)))
		goto out;
	cu_x509_dn_string(&chain.subject, out->subject, sizeof(out->subject));
	cu_x509_dn_string(&chain.issuer, out->issuer, sizeof(out->issuer));
	cu_x509_serial_string(&chain.serial, out->serial, sizeof(out->serial));
	if (cu_x509_leaf_cn(&chain, where, out->cn, sizeof(out->cn), NULL))
		out->cn[0] = '\0';
	/* formats §9: the device's serial is the subject's serialNumber
	 * (2.5.4.5), the IEEE 802.1AR DevID convention. */
	for (n = &chain.subject; n; n = n->next) {
		if (!n->oid.p ||
		    MBEDTLS_OID_CMP(MBEDTLS_OID_AT_SERIAL_NUMBER, &n->oid))
			continue;
		if (out->nserial_numbers++ == 0) {
			size_t k = n->val.len;
			int ok = k > 0 && k < sizeof(out->serial_number);

			for (size_t i = 0; ok && i < k; i++)
				ok = n->val.p[i] >= 0x20 && n->val.p[i] < 0x7f;
			if (ok) {
				memcpy(out->serial_number, n->val.p, k);
				out->serial_number[k] = '\0';
			}
		}
	}
out:
	mbedtls_x509_crt_free(&chain);
	return rc;
}
