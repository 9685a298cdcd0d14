/* custody/x509_util.c: what trust.c, sig.c and sign.c share
 * (custody/x509_internal.h): bounded reads that refuse symlinks and special
 * files, and mbedTLS 2.28 helpers for names, serials, times, keys and PEM
 * chains (formats §2). */
#include "custody/x509_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "station/base/rfc3339.h"
#include "custody/sig.h"
#include "station/base/error.h"

const char *cu_x509_strerror(int ret, char *buf, size_t size)
{
	mbedtls_strerror(ret, buf, size);
	return buf;
}

/* ---- bounded, symlink-refusing reads ---- */

/* Paths can come from removable media: a symlink could point the station at
 * any file of its own, and a FIFO or device could block or never end. */
int cu_x509_open_regular(const char *path, int unsafe_code, int *fd_out,
			 struct stat *st, struct stn_diag *d)
{
	int fd, e;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP)
			return stn_fail(d, unsafe_code, path,
					"is a symbolic link, not a regular file");
		return stn_fail(d, STN_E_IO, path, "cannot open: %s",
				strerror(e));
	}
	if (fstat(fd, st) != 0) {
		e = errno;
		close(fd);
		return stn_fail(d, STN_E_IO, path, "cannot stat: %s",
				strerror(e));
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return stn_fail(d, unsafe_code, path, "is not a regular file");
	}
	*fd_out = fd;
	return 0;
}

/* Reads a whole file of at most `cap` bytes and appends a NUL, which the
 * PEM parsers need.  The buffer is wiped on failure: it may hold a key. */
int cu_x509_read_capped(const char *path, size_t cap, const char *what,
			int unsafe_code, unsigned char **out, size_t *out_len,
			struct stn_diag *d)
{
	struct stat st;
	unsigned char *buf = NULL, extra;
	size_t len = 0, size = 0;
	ssize_t n;
	int fd = -1, rc;

	rc = cu_x509_open_regular(path, unsafe_code, &fd, &st, d);
	if (rc)
		return rc;
	if ((uintmax_t)st.st_size > cap) {
		rc = stn_fail(d, STN_E_TOOBIG, path,
			      "%s is %jd bytes, over its cap of %zu", what,
			      (intmax_t)st.st_size, cap);
		goto out;
	}
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (!buf) {
		rc = stn_fail(d, STN_E_NOMEM, path, "cannot hold %s of %zu bytes",
			      what, size);
		goto out;
	}
	/* One read past the size fstat gave notices a file that grows. */
	for (;;) {
		if (len < size)
			n = read(fd, buf + len, size - len);
		else
			n = read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, path, "cannot read %s: %s",
				      what, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (len == size) {
			rc = stn_fail(d, STN_E_IO, path,
				      "%s grew while being read", what);
			goto out;
		}
		len += (size_t)n;
	}
	if (len != size) {
		rc = stn_fail(d, STN_E_IO, path, "%s shrank while being read",
			      what);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	if (buf) {
		mbedtls_platform_zeroize(buf, size + 1);
		free(buf);
	}
	close(fd);
	return rc;
}

/* ---- names, serials, times ---- */

void cu_x509_dn_string(const mbedtls_x509_name *dn, char *buf, size_t size)
{
	/* mbedtls_x509_dn_gets may give up before writing anything; it
	 * already replaces control characters with '?'. */
	buf[0] = '\0';
	(void)mbedtls_x509_dn_gets(buf, size, dn);
	buf[size - 1] = '\0';
}

/* As `openssl x509 -serial` prints it (uppercase, no separators, without the
 * zero octet DER puts in front of a high bit), so operators can grep. */
void cu_x509_serial_string(const mbedtls_x509_buf *s, char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = s->p;
	size_t len = s->len, o = 0;

	while (len > 1 && *p == 0) {
		p++;
		len--;
	}
	for (size_t i = 0; i < len && o + 2 < size; i++) {
		buf[o++] = hex[p[i] >> 4];
		buf[o++] = hex[p[i] & 15];
	}
	buf[o] = '\0';
}

/* mbedTLS has range-checked the fields.  UTCTime can say 1950..1969, which
 * is before any session; anything cu_time_parse still refuses gets `if_bad`,
 * which callers choose to be the refusing side. */
int64_t cu_x509_secs(const mbedtls_x509_time *t, int64_t if_bad)
{
	char s[32];
	int64_t v;

	if (t->year < 1970)
		return INT64_MIN;
	snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02dZ", t->year,
		 t->mon, t->day, t->hour, t->min, t->sec);
	if (cu_time_parse(s, &v) != 0)
		return if_bad;
	return v;
}


/* The signer's identity (§2): exactly one CN, printable ASCII, short enough
 * to keep whole, so that two identities never compare equal by truncation. */
int cu_x509_leaf_cn(const mbedtls_x509_crt *c, const char *where, char *cn,
		    size_t size, struct stn_diag *d)
{
	const mbedtls_x509_name *n;
	const mbedtls_x509_buf *val = NULL;
	char subject[256];

	for (n = &c->subject; n; n = n->next) {
		if (!n->oid.p || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid))
			continue;
		if (val) {
			cu_x509_dn_string(&c->subject, subject,
					  sizeof(subject));
			return stn_fail(d, STN_E_CHAIN, where,
					"signer %s has more than one CN", subject);
		}
		val = &n->val;
	}
	cu_x509_dn_string(&c->subject, subject, sizeof(subject));
	if (!val || val->len == 0)
		return stn_fail(d, STN_E_CHAIN, where,
				"signer %s has no subject CN to name it by",
				subject);
	if (val->len >= size)
		return stn_fail(d, STN_E_CHAIN, where,
				"signer %s has a CN of %zu bytes, over %zu",
				subject, val->len, size - 1);
	for (size_t i = 0; i < val->len; i++)
		if (val->p[i] < 0x20 || val->p[i] > 0x7e)
			return stn_fail(d, STN_E_CHAIN, where,
					"signer %s has a CN with a byte "
					"outside printable ASCII",
					subject);
	memcpy(cn, val->p, val->len);
	cn[val->len] = '\0';
	return 0;
}

/* ---- keys and chains ---- */

/* formats §2: ECDSA P-256 and P-384, RSA of 2048 bits or more. */
int cu_x509_key_accepted(const mbedtls_pk_context *pk, char *desc, size_t size)
{
	mbedtls_pk_type_t type = mbedtls_pk_get_type(pk);

	if (type == MBEDTLS_PK_RSA) {
		size_t bits = mbedtls_pk_get_bitlen(pk);
		snprintf(desc, size, "an RSA-%zu key", bits);
		return bits >= 2048;
	}
	if (type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECDSA) {
		mbedtls_ecp_group_id id = mbedtls_pk_ec(*pk)->grp.id;
		const mbedtls_ecp_curve_info *ci =
			mbedtls_ecp_curve_info_from_grp_id(id);
		snprintf(desc, size, "an EC key on %s",
			 ci ? ci->name : "an unknown curve");
		return id == MBEDTLS_ECP_DP_SECP256R1 ||
		       id == MBEDTLS_ECP_DP_SECP384R1;
	}
	snprintf(desc, size, "a %s key", mbedtls_pk_get_name(pk));
	return 0;
}

/* ---- what a leaf may be (formats §2) ---- */

unsigned cu_x509_leaf_roles(const mbedtls_x509_crt *c)
{
	unsigned mask = 0;

	if (!(c->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE))
		return 0;
	for (const mbedtls_x509_sequence *s = &c->ext_key_usage; s && s->buf.p;
	     s = s->next)
		for (int r = CU_ROLE_RELEASE; r <= CU_ROLE_DELIVERY; r++) {
			size_t len = 0;
			const uint8_t *oid = cu_role_oid((enum cu_role)r, &len);

			if (oid && s->buf.len == len && memcmp(s->buf.p, oid, len) == 0)
				mask |= 1u << r;
		}
	return mask;
}

int cu_x509_has_any_eku(const mbedtls_x509_crt *c)
{
	static const char any[] = MBEDTLS_OID_ANY_EXTENDED_KEY_USAGE;

	if (!(c->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE))
		return 0;
	for (const mbedtls_x509_sequence *s = &c->ext_key_usage; s && s->buf.p;
	     s = s->next)
		if (s->buf.len == sizeof(any) - 1 &&
		    memcmp(s->buf.p, any, sizeof(any) - 1) == 0)
			return 1;
	return 0;
}

void cu_x509_roles_string(unsigned mask, char *buf, size_t size)
{
	size_t o = 0;
	int left = __builtin_popcount(mask);

	buf[0] = '\0';
	for (int r = CU_ROLE_RELEASE; r <= CU_ROLE_DELIVERY; r++) {
		if (!(mask & (1u << r)))
			continue;
		left--;
		o += (size_t)snprintf(buf + o, size - o, "%s%s",
				      cu_role_name((enum cu_role)r),
				      left > 1 ? ", " : left == 1 ? " and " : "");
		if (o >= size)
			break;
	}
}

const char *cu_x509_ca_why(const mbedtls_x509_crt *c)
{
	if (c->ca_istrue)
		return "basicConstraints CA:TRUE";
	if ((c->ext_types & MBEDTLS_X509_EXT_KEY_USAGE) &&
	    (c->key_usage & MBEDTLS_X509_KU_KEY_CERT_SIGN))
		return "keyUsage keyCertSign";
	return NULL;
}

/*
 * formats §2: a .sig is DER as `openssl dgst -sign` writes it, and
 * `openssl dgst -verify` refuses anything else, so an auditor's check and
 * ours agree.  mbedTLS reads ECDSA signatures leniently (BER long-form
 * lengths, INTEGERs padded with zero octets), so (r, s) are re-encoded as
 * DER (X.690 §10.1, §8.3.2) and compared byte for byte; an RSA signature
 * is exactly as long as the modulus (RFC 8017 §8.2.2).
 */
int cu_x509_sig_not_der(const mbedtls_pk_context *pk, const unsigned char *sig,
			size_t len, char *why, size_t size)
{
	unsigned char der[MBEDTLS_ECDSA_MAX_LEN], *p, *end, *q;
	mbedtls_mpi r, s;
	size_t n;
	int bad = 1, w, total = 0;

	if (mbedtls_pk_get_type(pk) == MBEDTLS_PK_RSA) {
		if (len == mbedtls_pk_get_len(pk))
			return 0;
		snprintf(why, size, "%zu bytes for a %zu-byte RSA modulus", len,
			 mbedtls_pk_get_len(pk));
		return 1;
	}
	snprintf(why, size, "not an ECDSA-Sig-Value in DER");
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	p = (unsigned char *)(uintptr_t)sig;
	end = p + len;
	if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED |
						     MBEDTLS_ASN1_SEQUENCE) ||
	    p + n != end || mbedtls_asn1_get_mpi(&p, end, &r) ||
	    mbedtls_asn1_get_mpi(&p, end, &s) || p != end ||
	    mbedtls_mpi_cmp_int(&r, 0) <= 0 || mbedtls_mpi_cmp_int(&s, 0) <= 0)
		goto out;
	/* Written backwards from the end, as mbedtls_asn1_write_* do. */
	q = der + sizeof(der);
	if ((w = mbedtls_asn1_write_mpi(&q, der, &s)) < 0)
		goto out;
	total += w;
	if ((w = mbedtls_asn1_write_mpi(&q, der, &r)) < 0)
		goto out;
	total += w;
	if ((w = mbedtls_asn1_write_len(&q, der, (size_t)total)) < 0)
		goto out;
	total += w;
	if ((w = mbedtls_asn1_write_tag(&q, der, MBEDTLS_ASN1_CONSTRUCTED |
							 MBEDTLS_ASN1_SEQUENCE)) <
	    0)
		goto out;
	total += w;
	if ((size_t)total == len && memcmp(q, sig, len) == 0)
		bad = 0;
	else
		snprintf(why, size,
			 "BER where DER is required (long-form length or "
			 "padded INTEGER)");
out:
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return bad;
}

/* The SubjectPublicKeyInfo algorithm of a certificate mbedTLS could not
 * parse, named for a technician (RFC 5280 §4.1: tbsCertificate is version,
 * serialNumber, signature, issuer, validity, subject, then the SPKI).
 * RFC 8410 §3 gives the Ed25519/Ed448 OIDs, RFC 3279 §2.3.2 the DSA one. */
static void spki_alg_name(unsigned char *der, size_t len, char *buf,
			  size_t size)
{
	static const struct {
		const char *oid;
		size_t len;
		const char *name;
	} known[] = {
		{"\x2b\x65\x70", 3, "an Ed25519 key"},
		{"\x2b\x65\x71", 3, "an Ed448 key"},
		{"\x2a\x86\x48\xce\x38\x04\x01", 7, "a DSA key"},
	};
	unsigned char *p = der, *end = p + len;
	mbedtls_x509_buf oid;
	size_t n;
	int i;

	snprintf(buf, size, "a key of an unknown algorithm");
	if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED |
						     MBEDTLS_ASN1_SEQUENCE) ||
	    mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED |
						     MBEDTLS_ASN1_SEQUENCE))
		return;
	end = p + n;
	if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONTEXT_SPECIFIC |
						     MBEDTLS_ASN1_CONSTRUCTED |
						     0) == 0)
		p += n; /* [0] version */
	if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_INTEGER))
		return;
	p += n;
	for (i = 0; i < 4; i++) { /* signature, issuer, validity, subject */
		if (mbedtls_asn1_get_tag(&p, end, &n,
					 MBEDTLS_ASN1_CONSTRUCTED |
						 MBEDTLS_ASN1_SEQUENCE))
			return;
		p += n;
	}
	if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED |
						     MBEDTLS_ASN1_SEQUENCE) ||
	    mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED |
						     MBEDTLS_ASN1_SEQUENCE) ||
	    mbedtls_asn1_get_tag(&p, end, &oid.len, MBEDTLS_ASN1_OID))
		return;
	oid.p = p;
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		if (oid.len == known[k].len &&
		    memcmp(oid.p, known[k].oid, oid.len) == 0) {
			snprintf(buf, size, "%s", known[k].name);
			return;
		}
	{
		char num[48];
		if (mbedtls_oid_get_numeric_string(num, sizeof(num), &oid) > 0)
			snprintf(buf, size, "a key of algorithm %s", num);
	}
}

/* Each PEM block is decoded and parsed here rather than by
 * mbedtls_x509_crt_parse, so that a key of an algorithm mbedTLS does not
 * know (Ed25519, DSA) is named as such, and so that whitespace after the
 * last END line is ignored as RFC 7468 §2 asks. */
int cu_x509_parse_chain(const unsigned char *pem, size_t len, const char *where,
			int code, mbedtls_x509_crt *chain, struct stn_diag *d)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char endl[] = "-----END CERTIFICATE-----";
	const char *p = (const char *)pem, *s;
	char ebuf[128], alg[96];
	size_t use_len;
	int ret, i = 0;

	(void)len;
	if (!strstr(p, begin))
		return stn_fail(d, code, where, "holds no PEM certificate");
	while ((s = strstr(p, begin))) {
		mbedtls_pem_context ctx;

		i++;
		mbedtls_pem_init(&ctx);
		ret = mbedtls_pem_read_buffer(&ctx, begin, endl,
					      (const unsigned char *)s, NULL, 0,
					      &use_len);
		if (ret == 0)
			ret = mbedtls_x509_crt_parse_der(chain, ctx.buf,
							 ctx.buflen);
		if (ret == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG) {
			spki_alg_name(ctx.buf, ctx.buflen, alg, sizeof(alg));
			mbedtls_pem_free(&ctx);
			/* A chain's caller reports refusals as `chain`; a
			 * refused algorithm is its own rule (formats §2). */
			return stn_fail(d, code == STN_E_CHAIN ? STN_E_ALGORITHM
							       : code,
					where,
					"certificate %d has %s: key algorithm "
					"not accepted; accepted are ECDSA "
					"P-256, P-384 and RSA of 2048 bits or "
					"more",
					i, alg);
		}
		mbedtls_pem_free(&ctx);
		if (ret != 0)
			return stn_fail(d, code, where,
					"certificate %d does not parse: %s", i,
					cu_x509_strerror(ret, ebuf,
							 sizeof(ebuf)));
		p = s + use_len;
	}
	return 0;
}

int cu_x509_parse_crls(const unsigned char *buf, size_t len, const char *where,
		       int code, mbedtls_x509_crl *list, struct stn_diag *d)
{
	static const char begin[] = "-----BEGIN X509 CRL-----";
	static const char endl[] = "-----END X509 CRL-----";
	const char *p = (const char *)buf, *s;
	char ebuf[128];
	size_t use_len;
	int ret;

	if (!strstr(p, begin)) {
		ret = mbedtls_x509_crl_parse_der(list, buf, len);
		if (ret != 0)
			return stn_fail(d, code, where,
					"CRL does not parse: %s",
					cu_x509_strerror(ret, ebuf,
							 sizeof(ebuf)));
		return 0;
	}
	while ((s = strstr(p, begin))) {
		mbedtls_pem_context ctx;

		mbedtls_pem_init(&ctx);
		ret = mbedtls_pem_read_buffer(&ctx, begin, endl,
					      (const unsigned char *)s, NULL, 0,
					      &use_len);
		if (ret == 0)
			ret = mbedtls_x509_crl_parse_der(list, ctx.buf,
							 ctx.buflen);
		mbedtls_pem_free(&ctx);
		if (ret != 0)
			return stn_fail(d, code, where,
					"CRL does not parse: %s",
					cu_x509_strerror(ret, ebuf,
							 sizeof(ebuf)));
		p = s + use_len;
	}
	return 0;
}
