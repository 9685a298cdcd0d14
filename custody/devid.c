/* custody/devid.c: the station's side of device identity (formats §9) over
 * mbedTLS 2.28: judging a device's attestation and its receipts, and
 * writing the station's install authorization.  The certificate rules are
 * those of sig.c and trust.c (x509_internal.h), with a device's own: no
 * station role, keyUsage digitalSignature, one serialNumber. */
#include "custody/devid.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "custody/record.h"
#include "custody/sign.h"
#include "custody/x509_internal.h"
#include "station/base/error.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "station/base/sha256.h"

#define HEX32_LEN (2 * CU_NONCE_LEN)

/* ---- records (formats §1 and §9) ---- */

/* model, hardware, serial, sequence and version as in station-device-1
 * (devices.md); serial is required here: it is what the certificate
 * proves. */
static const struct cu_key_rule attest_top[] = {
	{"format", CU_REQUIRED},   {"model", CU_REQUIRED},
	{"hardware", CU_OPTIONAL}, {"serial", CU_REQUIRED},
	{"sequence", CU_OPTIONAL}, {"version", CU_OPTIONAL},
	{"nonce", CU_REQUIRED},    {"challenge", CU_REQUIRED},
	{NULL, 0}};
static const struct cu_section_rule attest_rules[] = {
	{"", CU_NO_LABEL, 1, 1, attest_top}, {NULL, 0, 0, 0, NULL}};

static const struct cu_key_rule receipt_top[] = {
	{"format", CU_REQUIRED}, {"device", CU_REQUIRED},
	{"nonce", CU_REQUIRED},  {"challenge", CU_REQUIRED},
	{"slot", CU_REQUIRED},   {"size", CU_REQUIRED},
	{"sha256", CU_REQUIRED}, {NULL, 0}};
static const struct cu_section_rule receipt_rules[] = {
	{"", CU_NO_LABEL, 1, 1, receipt_top}, {NULL, 0, 0, 0, NULL}};

/* A nonce or challenge: 32 bytes as 64 lowercase hex digits (§9). */
static int get_hex32(const struct cu_record *r, const struct cu_section *s,
		     const char *key, uint8_t out[CU_NONCE_LEN],
		     struct stn_diag *d)
{
	const char *v;

	if (!(v = cu_section_get(s, key)) || strlen(v) != HEX32_LEN ||
	    cu_hex_parse(v, CU_NONCE_LEN, out) != 0)
		return cu_record_fail(d, STN_E_SYNTAX, r, s, key,
				      "'%s' must be 64 lowercase hex digits",
				      key);
	return 0;
}

/* The station-attest-1 record into a->id, a->nonce, a->challenge. */
static int attest_parse(const struct cu_devmsg *m, const char *where,
			struct cu_attestation *a, struct stn_diag *d)
{
	struct cu_record *r = NULL;
	struct stn_diag inner;
	const struct cu_section *top;
	const char *serial, *model;
	int rc;

	stn_diag_init(&inner);
	if (!m->record || m->record_len == 0) {
		rc = stn_fail(&inner, STN_E_SYNTAX, where, "it is empty");
		goto out;
	}
	if ((rc = cu_record_parse(m->record, m->record_len, where, &r,
				  &inner)) ||
	    (rc = cu_record_check(r, attest_rules, "station-attest-1",
				  &inner)))
		goto out;
	top = cu_record_section(r, 0);
	if ((rc = cu_get_str(r, top, "serial", &serial, &inner)) ||
	    (rc = cu_get_str(r, top, "model", &model, &inner)))
		goto out;
	/* The identity rules of station-device-1, in one place. */
	if ((rc = cu_identity_set(&a->id, model,
				  cu_section_get(top, "hardware"), serial,
				  cu_section_get(top, "version"), where,
				  &inner)))
		goto out;
	if (cu_section_get(top, "sequence")) {
		if ((rc = cu_get_u64(r, top, "sequence", &a->id.sequence,
				     &inner)))
			goto out;
		a->id.has_sequence = 1;
	}
	if ((rc = get_hex32(r, top, "nonce", a->nonce, &inner)) ||
	    (rc = get_hex32(r, top, "challenge", a->challenge, &inner)))
		goto out;
	cu_hex(a->challenge, CU_NONCE_LEN, a->challenge_hex);
out:
	cu_record_free(r);
	if (rc)
		return stn_fail(d, STN_E_ATTESTATION, inner.where,
				"the attestation record is malformed: %.900s",
				inner.text);
	return 0;
}

struct receipt_fields {
	char device[65];
	uint8_t nonce[CU_NONCE_LEN], challenge[CU_NONCE_LEN];
	struct cu_receipt r;
};

static int receipt_parse(const struct cu_devmsg *m, const char *where,
			 struct receipt_fields *f, struct stn_diag *d)
{
	struct cu_record *r = NULL;
	struct stn_diag inner;
	const struct cu_section *top;
	const char *v;
	uint64_t slot;
	int rc;

	stn_diag_init(&inner);
	if (!m->record || m->record_len == 0) {
		rc = stn_fail(&inner, STN_E_SYNTAX, where, "it is empty");
		goto out;
	}
	if ((rc = cu_record_parse(m->record, m->record_len, where, &r,
				  &inner)) ||
	    (rc = cu_record_check(r, receipt_rules, "station-receipt-1",
				  &inner)))
		goto out;
	top = cu_record_section(r, 0);
	if ((rc = cu_get_token(r, top, "device", "A-Za-z0-9._:-",
			       sizeof(f->device) - 1, &v, &inner)))
		goto out;
	snprintf(f->device, sizeof(f->device), "%s", v);
	if ((rc = get_hex32(r, top, "nonce", f->nonce, &inner)) ||
	    (rc = get_hex32(r, top, "challenge", f->challenge, &inner)) ||
	    (rc = cu_get_u64(r, top, "slot", &slot, &inner)) ||
	    (rc = cu_get_u64(r, top, "size", &f->r.size, &inner)) ||
	    (rc = cu_get_digest(r, top, "sha256", f->r.sha256, &inner)))
		goto out;
	if (slot > 255) {
		rc = cu_record_fail(&inner, STN_E_SYNTAX, r, top, "slot",
				    "'slot' must be 0 to 255");
		goto out;
	}
	f->r.slot = (unsigned)slot;
out:
	cu_record_free(r);
	if (rc)
		return stn_fail(d, STN_E_PROOF, inner.where,
				"the receipt is malformed: %.900s",
				inner.text);
	return 0;
}

/* ---- signatures and certificates ---- */

enum sig_fault { SIG_OK = 0, SIG_NOT_DER, SIG_MISMATCH };

/* formats §2: a DER signature over SHA-256 of the record's exact bytes. */
static enum sig_fault sig_check(mbedtls_pk_context *pk, const char *rec,
				size_t len, const uint8_t *sig, size_t sig_len,
				char *why, size_t size)
{
	uint8_t digest[CU_SHA256_LEN];
	int ret;

	if (cu_x509_sig_not_der(pk, sig, sig_len, why, size))
		return SIG_NOT_DER;
	if (cu_sha256(rec, len, digest) != 0) {
		snprintf(why, size, "cannot hash the record");
		return SIG_MISMATCH;
	}
	ret = mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, digest, CU_SHA256_LEN,
				sig, sig_len);
	if (ret != 0) {
		cu_x509_strerror(ret, why, size);
		return SIG_MISMATCH;
	}
	return SIG_OK;
}

/* The message's DER certificates into chain, leaf first, each exactly one
 * certificate (trailing bytes would reach the journal's PEM and an
 * auditor's openssl). */
static int parse_certs(const struct cu_devmsg *m, const char *where,
		       mbedtls_x509_crt *chain, struct stn_diag *d)
{
	const mbedtls_x509_crt *last;
	char ebuf[128];
	int ret;

	if (m->ncert == 0)
		return stn_fail(d, STN_E_ATTESTATION, where,
				"the attestation carries no device "
				"certificate");
	if (m->ncert > CU_DEVID_CERTS_MAX)
		return stn_fail(d, STN_E_ATTESTATION, where,
				"the attestation carries %zu certificates, "
				"more than %d",
				m->ncert, CU_DEVID_CERTS_MAX);
	for (size_t i = 0; i < m->ncert; i++) {
		if (m->cert_len[i] == 0 || m->cert_len[i] > CU_DEVID_CERT_MAX)
			return stn_fail(d, STN_E_ATTESTATION, where,
					"device certificate %zu is %zu bytes; "
					"1 to %d are allowed",
					i + 1, m->cert_len[i],
					CU_DEVID_CERT_MAX);
		ret = mbedtls_x509_crt_parse_der(chain, m->cert[i],
						 m->cert_len[i]);
		if (ret == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG)
			return stn_fail(d, STN_E_ATTESTATION, where,
					"device certificate %zu has a key "
					"algorithm formats §2 does not accept",
					i + 1);
		if (ret != 0)
			return stn_fail(d, STN_E_ATTESTATION, where,
					"device certificate %zu does not "
					"parse: %s",
					i + 1,
					cu_x509_strerror(ret, ebuf,
							 sizeof(ebuf)));
		for (last = chain; last->next; last = last->next)
			;
		if (last->raw.len != m->cert_len[i])
			return stn_fail(d, STN_E_ATTESTATION, where,
					"device certificate %zu has %zu bytes "
					"after its DER",
					i + 1, m->cert_len[i] - last->raw.len);
	}
	return 0;
}

/* What formats §2 and §9 ask of a device's leaf beyond its chain.  0, or
 * 1 with the refusal in `why`. */
static int leaf_fault(const mbedtls_x509_crt *c, char *why, size_t size)
{
	const char *ca = cu_x509_ca_why(c);
	unsigned roles = cu_x509_leaf_roles(c);
	char names[64];

	if (ca) {
		snprintf(why, size, "the device certificate is a CA (%s)", ca);
		return 1;
	}
	/* RFC 5280 §4.2.1.3 lets keyUsage be absent (any use); §9 asks
	 * for digitalSignature, so it must be there to be seen. */
	if (!(c->ext_types & MBEDTLS_X509_EXT_KEY_USAGE)) {
		snprintf(why, size,
			 "the device certificate has no keyUsage; it needs "
			 "digitalSignature");
		return 1;
	}
	if (!(c->key_usage & MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) {
		snprintf(why, size,
			 "the device certificate's keyUsage lacks "
			 "digitalSignature");
		return 1;
	}
	/* formats §2: a certificate holding a role is refused as a device,
	 * so a station key can never pass for a unit, nor a unit's key for
	 * a signer. */
	if (roles) {
		cu_x509_roles_string(roles, names, sizeof(names));
		snprintf(why, size,
			 "the device certificate holds the station role %s; "
			 "a certificate with a role is no device certificate",
			 names);
		return 1;
	}
	if (cu_x509_has_any_eku(c)) {
		snprintf(why, size,
			 "the device certificate carries "
			 "anyExtendedKeyUsage, which stands for every role");
		return 1;
	}
	return 0;
}

static int printable(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return 0;
	return 1;
}

/* formats §9 (IEEE 802.1AR): exactly one subject serialNumber (2.5.4.5),
 * equal to the serial the device claims.  Every attribute of every RDN is
 * on the list mbedTLS builds, multi-valued RDNs included. */
static int serial_fault(const mbedtls_x509_crt *c, const char *claimed,
			char *why, size_t size)
{
	const mbedtls_x509_buf *val = NULL;
	char subject[256];
	int n = 0;

	for (const mbedtls_x509_name *a = &c->subject; a; a = a->next) {
		if (!a->oid.p ||
		    MBEDTLS_OID_CMP(MBEDTLS_OID_AT_SERIAL_NUMBER, &a->oid))
			continue;
		n++;
		val = &a->val;
	}
	cu_x509_dn_string(&c->subject, subject, sizeof(subject));
	if (n == 0) {
		snprintf(why, size,
			 "the device certificate names no serial number (no "
			 "serialNumber in %.160s)",
			 subject);
		return 1;
	}
	if (n > 1) {
		snprintf(why, size,
			 "the device certificate names %d serial numbers "
			 "(%.160s); it must name one",
			 n, subject);
		return 1;
	}
	if (val->len == 0 || val->len > 64 || !printable(val->p, val->len)) {
		snprintf(why, size,
			 "the device certificate's serial number is not 1 to "
			 "64 printable characters");
		return 1;
	}
	if (val->len != strlen(claimed) ||
	    memcmp(val->p, claimed, val->len) != 0) {
		snprintf(why, size,
			 "the device certificate is for serial %.*s, the "
			 "device claims %s",
			 (int)val->len, (const char *)val->p, claimed);
		return 1;
	}
	return 0;
}

int cu_attest_verify(const struct cu_trust *anchors,
		     const struct cu_devmsg *msg,
		     const uint8_t nonce[CU_NONCE_LEN], int64_t at,
		     const char *where, struct cu_attestation *out,
		     struct stn_diag *d)
{
	struct cu_attestation *a;
	mbedtls_x509_crt chain;
	struct stn_diag inner;
	char why[300], desc[64];
	int rc;

	a = calloc(1, sizeof(*a));
	if (!a)
		return stn_fail(d, STN_E_NOMEM, where,
				"cannot hold an attestation");
	mbedtls_x509_crt_init(&chain);
	if ((rc = attest_parse(msg, where, a, d)))
		goto out;
	if (!msg->sig || msg->sig_len == 0) {
		rc = stn_fail(d, STN_E_ATTESTATION, where,
			      "the attestation is unsigned (no sig line)");
		goto out;
	}
	if ((rc = parse_certs(msg, where, &chain, d)))
		goto out;
	if (!cu_x509_key_accepted(&chain.pk, desc, sizeof(desc))) {
		rc = stn_fail(d, STN_E_ATTESTATION, where,
			      "the device certificate has %s; accepted are "
			      "ECDSA P-256, P-384 and RSA of 2048 bits or more",
			      desc);
		goto out;
	}
	switch (sig_check(&chain.pk, msg->record, msg->record_len, msg->sig,
			  msg->sig_len, why, sizeof(why))) {
	case SIG_OK:
		break;
	case SIG_NOT_DER:
		rc = stn_fail(d, STN_E_ATTESTATION, where,
			      "the attestation's signature is not DER as "
			      "openssl dgst writes it (%s)",
			      why);
		goto out;
	case SIG_MISMATCH:
		rc = stn_fail(d, STN_E_ATTESTATION, where,
			      "the attestation's signature does not verify "
			      "with the device certificate's key (%s)",
			      why);
		goto out;
	}
	if (!anchors) {
		rc = stn_fail(d, STN_E_ATTESTATION, where,
			      "no device anchors to verify the device "
			      "certificate against");
		goto out;
	}
	stn_diag_init(&inner);
	if (cu_trust_verify_chain_anchor(anchors, &chain, at, CU_ROLE_NONE,
					 where, &a->stale_crl,
					 a->anchor_subject,
					 sizeof(a->anchor_subject), &inner)) {
		rc = stn_fail(d, STN_E_ATTESTATION, where,
			      "the device certificate does not chain to the "
			      "device anchors: %.800s",
			      inner.text);
		goto out;
	}
	if (leaf_fault(&chain, why, sizeof(why)) ||
	    serial_fault(&chain, a->id.serial, why, sizeof(why))) {
		rc = stn_fail(d, STN_E_ATTESTATION, where, "%s", why);
		goto out;
	}
	/* The station's fresh nonce, echoed and signed: an answer recorded
	 * on another day, or from another unit, carries another. */
	if (memcmp(a->nonce, nonce, CU_NONCE_LEN) != 0) {
		rc = stn_fail(d, STN_E_ATTESTATION, where,
			      "the attestation answers another nonce than "
			      "the one this session sent (a replayed answer)");
		goto out;
	}
	cu_x509_dn_string(&chain.subject, a->cert_subject,
			  sizeof(a->cert_subject));
	cu_x509_dn_string(&chain.issuer, a->cert_issuer,
			  sizeof(a->cert_issuer));
	cu_x509_serial_string(&chain.serial, a->cert_serial,
			      sizeof(a->cert_serial));
	/* parse_certs held every certificate to CU_DEVID_CERT_MAX. */
	memcpy(a->leaf, chain.raw.p, chain.raw.len);
	a->leaf_len = chain.raw.len;
	*out = *a;
out:
	mbedtls_x509_crt_free(&chain);
	free(a);
	return rc;
}

/* ---- the station's authorization ---- */

/* A value the record can carry as it is: formats §1 strips blanks around
 * a value, so one that starts or ends with a blank would be signed as one
 * thing and read as another. */
static int field_ok(const char *v)
{
	size_t n;

	if (!v || !cu_value_ok(v))
		return 0;
	n = strlen(v);
	return v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' &&
	       v[n - 1] != '\t';
}

static int hex64_ok(const char *v)
{
	uint8_t b[CU_NONCE_LEN];

	return v && strlen(v) == HEX32_LEN &&
	       cu_hex_parse(v, CU_NONCE_LEN, b) == 0;
}

/* Appends to out; 1 when it did not fit. */
static int put(char *out, size_t cap, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int put(char *out, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*n >= cap)
		return 1;
	va_start(ap, fmt);
	w = vsnprintf(out + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= cap - *n)
		return 1;
	*n += (size_t)w;
	return 0;
}

int cu_authz_make(const struct cu_authz *a, struct cu_key *key, char *out,
		  size_t cap, size_t *out_len, uint8_t *sig, size_t sig_cap,
		  size_t *sig_len, struct stn_diag *d)
{
	static const char where[] = "install authorization";
	const char *tech = a->technician ? a->technician : "-";
	char issued[CU_TIME_LEN + 1], expires[CU_TIME_LEN + 1];
	char hex[CU_SHA256_HEX_LEN + 1];
	uint8_t digest[CU_SHA256_LEN];
	size_t n = 0;
	int over, rc;

	if (!field_ok(a->station) || !field_ok(a->site) || !field_ok(tech) ||
	    !field_ok(a->device))
		return stn_fail(d, STN_E_USAGE, where,
				"station, site, technician and device must "
				"be 1 to 1024 printable characters");
	if (!hex64_ok(a->challenge_hex) || !hex64_ok(a->bundle_hex))
		return stn_fail(d, STN_E_USAGE, where,
				"challenge and bundle must be 64 lowercase "
				"hex digits");
	if (a->issued < 0 || a->issued > INT64_MAX - CU_AUTHZ_TTL ||
	    a->nimages == 0 || a->nimages > CU_MAX_IMAGES)
		return stn_fail(d, STN_E_USAGE, where,
				"an issue time and 1 to %d images are needed",
				CU_MAX_IMAGES);
	cu_time_format(a->issued, issued);
	cu_time_format(a->issued + CU_AUTHZ_TTL, expires);
	/* formats §9, in its order; no blank or comment lines, since the
	 * console takes an empty line as no line at all. */
	over = put(out, cap, &n,
		   "format = station-install-1\nstation = %s\nsite = %s\n"
		   "technician = %s\ndevice = %s\nchallenge = %s\n"
		   "bundle = %s\nsequence = %llu\nissued = %s\n"
		   "expires = %s\n",
		   a->station, a->site, tech, a->device, a->challenge_hex,
		   a->bundle_hex, (unsigned long long)a->sequence, issued,
		   expires);
	for (size_t i = 0; i < a->nimages && !over; i++) {
		const struct cu_image *img = &a->images[i];

		if (!cu_label_ok(img->label, strlen(img->label)))
			return stn_fail(d, STN_E_USAGE, where,
					"image label \"%.40s\" does not match "
					"[a-z0-9][a-z0-9-]{0,31}",
					img->label);
		cu_hex(img->sha256, CU_SHA256_LEN, hex);
		over = put(out, cap, &n,
			   "[image %s]\nslot = %u\nsize = %llu\nsha256 = %s\n",
			   img->label, img->slot,
			   (unsigned long long)img->size, hex);
	}
	if (over)
		return stn_fail(d, STN_E_USAGE, where,
				"the record does not fit in %zu bytes", cap);
	if ((rc = cu_sha256(out, n, digest)))
		return stn_fail(d, rc, where, "hashing: %s", stn_strerror(rc));
	if ((rc = cu_key_sign(key, digest, sig, sig_cap, sig_len, d)))
		return rc;
	*out_len = n;
	return 0;
}

/* ---- receipts ---- */

int cu_receipt_verify(const struct cu_attestation *a,
		      const struct cu_devmsg *msg, const struct cu_image *img,
		      const char *where, struct cu_receipt *out,
		      struct stn_diag *d)
{
	struct receipt_fields f;
	mbedtls_x509_crt leaf;
	char why[200], got[CU_SHA256_HEX_LEN + 1], want[CU_SHA256_HEX_LEN + 1];
	int rc, ret;

	memset(&f, 0, sizeof(f));
	mbedtls_x509_crt_init(&leaf);
	if (!msg->sig || msg->sig_len == 0) {
		rc = stn_fail(d, STN_E_PROOF, where,
			      "the receipt is unsigned (no sig line)");
		goto out;
	}
	if ((rc = receipt_parse(msg, where, &f, d)))
		goto out;
	ret = mbedtls_x509_crt_parse_der(&leaf, a->leaf, a->leaf_len);
	if (ret != 0) {
		rc = stn_fail(d, STN_E_INTERNAL, where,
			      "the attested certificate does not parse: %s",
			      cu_x509_strerror(ret, why, sizeof(why)));
		goto out;
	}
	if (sig_check(&leaf.pk, msg->record, msg->record_len, msg->sig,
		      msg->sig_len, why, sizeof(why)) != SIG_OK) {
		rc = stn_fail(d, STN_E_PROOF, where,
			      "the receipt's signature does not verify with "
			      "the attested device's key (%s)",
			      why);
		goto out;
	}
	if (strcmp(f.device, a->id.serial) != 0) {
		rc = stn_fail(d, STN_E_PROOF, where,
			      "the receipt is for device %s, the attested "
			      "device is %s",
			      f.device, a->id.serial);
		goto out;
	}
	if (memcmp(f.nonce, a->nonce, CU_NONCE_LEN) != 0 ||
	    memcmp(f.challenge, a->challenge, CU_NONCE_LEN) != 0) {
		rc = stn_fail(d, STN_E_PROOF, where,
			      "the receipt belongs to another session (its "
			      "%s is not this session's)",
			      memcmp(f.nonce, a->nonce, CU_NONCE_LEN)
				      ? "nonce"
				      : "challenge");
		goto out;
	}
	if (f.r.slot != img->slot) {
		rc = stn_fail(d, STN_E_PROOF, where,
			      "the receipt is for slot %u; the image went to "
			      "slot %u",
			      f.r.slot, img->slot);
		goto out;
	}
	*out = f.r;
	if (f.r.size != img->size ||
	    memcmp(f.r.sha256, img->sha256, CU_SHA256_LEN) != 0) {
		cu_hex(f.r.sha256, CU_SHA256_LEN, got);
		cu_hex(img->sha256, CU_SHA256_LEN, want);
		rc = stn_fail(d, STN_E_PROOF, where,
			      "the device signed for %llu bytes with SHA-256 "
			      "%s; the image is %llu bytes with %s",
			      (unsigned long long)f.r.size, got,
			      (unsigned long long)img->size, want);
	}
out:
	mbedtls_x509_crt_free(&leaf);
	return rc;
}

/* ---- for auditors and the journal ---- */

int cu_devid_sig_check(const char *chain_pem, const char *record,
		       size_t record_len, const uint8_t *sig, size_t sig_len,
		       struct stn_diag *d)
{
	static const char where[] = "journaled record";
	mbedtls_x509_crt chain;
	char why[200];
	int rc = 0;

	mbedtls_x509_crt_init(&chain);
	if (!chain_pem) {
		rc = stn_fail(d, STN_E_CHAIN, where, "no certificate chain");
		goto out;
	}
	if ((rc = cu_x509_parse_chain((const unsigned char *)chain_pem,
				      strlen(chain_pem), where, STN_E_CHAIN,
				      &chain, d))) {
		rc = stn_recode(d, STN_E_CHAIN);
		goto out;
	}
	if (!sig || sig_len == 0) {
		rc = stn_fail(d, STN_E_SIGNATURE, where, "it is unsigned");
		goto out;
	}
	switch (sig_check(&chain.pk, record, record_len, sig, sig_len, why,
			  sizeof(why))) {
	case SIG_OK:
		break;
	case SIG_NOT_DER:
		rc = stn_fail(d, STN_E_SIGNATURE, where,
			      "the signature is not DER as openssl dgst "
			      "writes it (%s)",
			      why);
		break;
	case SIG_MISMATCH:
		rc = stn_fail(d, STN_E_SIGNATURE, where,
			      "the signature does not verify with the first "
			      "certificate's key (%s)",
			      why);
		break;
	}
out:
	mbedtls_x509_crt_free(&chain);
	return rc;
}

int cu_devid_chain_pem(const uint8_t *const *cert, const size_t *cert_len,
		       size_t ncert, char **out, struct stn_diag *d)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----\n";
	static const char end[] = "-----END CERTIFICATE-----\n";
	char ebuf[128], *text;
	size_t cap = 1, n = 0, olen;
	int ret;

	for (size_t i = 0; i < ncert; i++) {
		if (cert_len[i] > CU_DEVID_CERT_MAX)
			return stn_fail(d, STN_E_INTERNAL, "certificate chain",
					"certificate %zu is %zu bytes, over %d",
					i + 1, cert_len[i], CU_DEVID_CERT_MAX);
		/* base64, a newline per 64 characters, the two lines. */
		cap += (cert_len[i] + 2) / 3 * 4 + cert_len[i] / 48 + 2 +
		       sizeof(begin) + sizeof(end);
	}
	text = malloc(cap);
	if (!text)
		return stn_fail(d, STN_E_NOMEM, "certificate chain",
				"cannot hold %zu bytes", cap);
	text[0] = '\0';
	for (size_t i = 0; i < ncert; i++) {
		ret = mbedtls_pem_write_buffer(begin, end, cert[i],
					       cert_len[i],
					       (unsigned char *)text + n,
					       cap - n, &olen);
		if (ret != 0) {
			free(text);
			return stn_fail(d, STN_E_INTERNAL,
					"certificate chain",
					"cannot write certificate %zu as PEM: "
					"%s",
					i + 1,
					cu_x509_strerror(ret, ebuf,
							 sizeof(ebuf)));
		}
		n += strlen(text + n);
	}
	*out = text;
	return 0;
}
