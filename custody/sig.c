/* custody/sig.c: detached signatures, X.509 chains, station roles, the trust
 * store and signing, over mbedTLS 2.28 (formats §2, §6).  mbedTLS judges
 * validity by the wall clock; a verify callback re-decides every time check
 * against the session start the caller passes. */
#include "custody/sig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "custody/rfc3339.h"
#include "custody/sha256.h"
#include "station/error.h"

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
#define ROLE_COUNT 4

static const uint8_t role_oids[ROLE_COUNT][ROLE_OID_LEN] = {
	{ROLE_ARC, 0x01},
	{ROLE_ARC, 0x02},
	{ROLE_ARC, 0x03},
	{ROLE_ARC, 0x04},
};

static const char *const role_names[ROLE_COUNT + 1] = {
	"none", "release", "custody", "exception", "station",
};

/* The algorithms formats §2 accepts, applied to every certificate of a chain
 * by mbedTLS; the leaf's own key is checked more narrowly by key_accepted. */
static const mbedtls_x509_crt_profile cu_profile = {
	MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA256) |
		MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA384) |
		MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA512),
	MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_RSA) |
		MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_ECKEY) |
		MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_ECDSA),
	MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_SECP256R1) |
		MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_SECP384R1),
	2048,
};

/* Flags that only say the profile refused a hash or key somewhere. */
#define ALGORITHM_FLAGS                                                       \
	(MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK |          \
	 MBEDTLS_X509_BADCERT_BAD_KEY | MBEDTLS_X509_BADCRL_BAD_MD |          \
	 MBEDTLS_X509_BADCRL_BAD_PK | MBEDTLS_X509_BADCRL_BAD_KEY)

struct cu_trust {
	/* Heap objects, so that a const trust store can still be handed to
	 * mbedTLS, whose verify functions take non-const pointers. */
	mbedtls_x509_crt *anchors;
	/* One CRL per issuer, each its own allocation, linked through next so
	 * that one can be replaced without reparsing the others. */
	mbedtls_x509_crl *crls;
	int stale_refuse;
};

struct cu_key {
	mbedtls_pk_context pk;
	char *chain; /* PEM as loaded, NUL-terminated */
	size_t chain_len;
};

const char *cu_role_name(enum cu_role r)
{
	if (r < CU_ROLE_NONE || r > CU_ROLE_STATION)
		return "none";
	return role_names[r];
}

const uint8_t *cu_role_oid(enum cu_role r, size_t *len)
{
	if (r < CU_ROLE_RELEASE || r > CU_ROLE_STATION)
		return NULL;
	*len = ROLE_OID_LEN;
	return role_oids[r - 1];
}

static const char *tls_strerror(int ret, char *buf, size_t size)
{
	mbedtls_strerror(ret, buf, size);
	return buf;
}

/* ---- bounded, symlink-refusing reads ---- */

/* Paths can come from removable media: a symlink could point the station at
 * any file of its own, and a FIFO or device could block or never end. */
static int open_regular(const char *path, int unsafe_code, int *fd_out,
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
static int read_capped(const char *path, size_t cap, const char *what,
		       int unsafe_code, unsigned char **out, size_t *out_len,
		       struct stn_diag *d)
{
	struct stat st;
	unsigned char *buf = NULL, extra;
	size_t len = 0, size = 0;
	ssize_t n;
	int fd = -1, rc;

	rc = open_regular(path, unsafe_code, &fd, &st, d);
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

static void dn_string(const mbedtls_x509_name *dn, char *buf, size_t size)
{
	/* mbedtls_x509_dn_gets may give up before writing anything; it
	 * already replaces control characters with '?'. */
	buf[0] = '\0';
	(void)mbedtls_x509_dn_gets(buf, size, dn);
	buf[size - 1] = '\0';
}

/* As `openssl x509 -serial` prints it (uppercase, no separators, without the
 * zero octet DER puts in front of a high bit), so operators can grep. */
static void serial_string(const mbedtls_x509_buf *s, char *buf, size_t size)
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
static int64_t x509_secs(const mbedtls_x509_time *t, int64_t if_bad)
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

static const char *time_string(int64_t t, char buf[CU_TIME_LEN + 1])
{
	cu_time_format(t, buf);
	return buf;
}

/* The signer's identity (§2): exactly one CN, printable ASCII, short enough
 * to keep whole, so that two identities never compare equal by truncation. */
static int leaf_cn(const mbedtls_x509_crt *c, const char *where, char *cn,
		   size_t size, struct stn_diag *d)
{
	const mbedtls_x509_name *n;
	const mbedtls_x509_buf *val = NULL;
	char subject[256];

	for (n = &c->subject; n; n = n->next) {
		if (!n->oid.p || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid))
			continue;
		if (val) {
			dn_string(&c->subject, subject, sizeof(subject));
			return stn_fail(d, STN_E_CHAIN, where,
					"signer %s has more than one CN", subject);
		}
		val = &n->val;
	}
	dn_string(&c->subject, subject, sizeof(subject));
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

/* ---- chain verification at a given time ---- */

static int same_name(const mbedtls_x509_buf *a, const mbedtls_x509_buf *b)
{
	return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

static const mbedtls_x509_crl *crl_of(const struct cu_trust *t,
				      const mbedtls_x509_buf *issuer)
{
	for (const mbedtls_x509_crl *c = t->crls; c; c = c->next)
		if (same_name(&c->issuer_raw, issuer))
			return c;
	return NULL;
}

struct verify_ctx {
	const struct cu_trust *t;
	int64_t at;
	int top; /* depth of the chain's top, which the callback sees first */
	char time_text[256];
	char revoked_text[600];
	int stale;
	char stale_text[400];
};

static void note_time(struct verify_ctx *v, mbedtls_x509_crt *crt,
		      const char *what, int64_t when)
{
	char subject[128], t1[CU_TIME_LEN + 1], t2[CU_TIME_LEN + 1];

	if (v->time_text[0])
		return;
	dn_string(&crt->subject, subject, sizeof(subject));
	snprintf(v->time_text, sizeof(v->time_text),
		 "certificate %s %s %s; the session started %s", subject, what,
		 time_string(when, t1), time_string(v->at, t2));
}

/*
 * mbedTLS calls this for every certificate of the chain it built, top first,
 * with the flags it set by the wall clock.  Validity is re-decided against
 * the session start.  A CRL's flags sit on the certificate it was applied
 * to (the child of the CRL's issuer), and the top was checked against none.
 * (When two candidate parents share a name, mbedTLS prefers the one valid
 * by the wall clock; with one issuer per name, as here, that never matters.)
 */
static int verify_cb(void *p, mbedtls_x509_crt *crt, int depth,
		     uint32_t *flags)
{
	struct verify_ctx *v = p;
	int64_t from = x509_secs(&crt->valid_from, INT64_MAX);
	int64_t to = x509_secs(&crt->valid_to, INT64_MIN);
	const mbedtls_x509_crl *crl;
	char t1[CU_TIME_LEN + 1], dn[256], serial[80], subject[128];

	if (v->top < 0)
		v->top = depth;
	*flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED |
			      MBEDTLS_X509_BADCERT_FUTURE);
	if (v->at > to) {
		*flags |= MBEDTLS_X509_BADCERT_EXPIRED;
		note_time(v, crt, "expired", to);
	}
	if (v->at < from) {
		*flags |= MBEDTLS_X509_BADCERT_FUTURE;
		note_time(v, crt, "is not valid before", from);
	}
	if ((*flags & MBEDTLS_X509_BADCERT_REVOKED) && !v->revoked_text[0]) {
		dn_string(&crt->issuer, dn, sizeof(dn));
		dn_string(&crt->subject, subject, sizeof(subject));
		serial_string(&crt->serial, serial, sizeof(serial));
		snprintf(v->revoked_text, sizeof(v->revoked_text),
			 "certificate %s serial %s issued by %s is revoked by "
			 "its issuer's CRL",
			 subject, serial, dn);
	}
	if (depth == v->top || (*flags & MBEDTLS_X509_BADCRL_NOT_TRUSTED))
		return 0;
	crl = crl_of(v->t, &crt->issuer_raw);
	if (!crl)
		return 0; /* none applied; any flags mbedTLS set stand */
	*flags &= ~(uint32_t)(MBEDTLS_X509_BADCRL_EXPIRED |
			      MBEDTLS_X509_BADCRL_FUTURE);
	/* A CRL issued after `at` is still applied: it can only know more
	 * revocations than one that was current then. */
	if (crl->next_update.year != 0 &&
	    v->at > x509_secs(&crl->next_update, INT64_MIN)) {
		if (!v->stale) {
			dn_string(&crl->issuer, dn, sizeof(dn));
			snprintf(v->stale_text, sizeof(v->stale_text),
				 "CRL of %s is past its nextUpdate %s", dn,
				 time_string(x509_secs(&crl->next_update,
						       INT64_MIN),
					     t1));
		}
		v->stale = 1;
		if (v->t->stale_refuse)
			*flags |= MBEDTLS_X509_BADCRL_EXPIRED;
	}
	return 0;
}

/* mbedtls_x509_crt_verify_info gives one line per flag; a refusal is one
 * line, so they are joined with "; ". */
static void flags_string(uint32_t flags, char *buf, size_t size)
{
	char lines[512];
	size_t o = 0;

	lines[0] = '\0';
	(void)mbedtls_x509_crt_verify_info(lines, sizeof(lines), "", flags);
	lines[sizeof(lines) - 1] = '\0';
	for (const char *p = lines; *p && o + 3 < size; p++) {
		if (*p != '\n') {
			buf[o++] = *p;
		} else if (p[1]) {
			buf[o++] = ';';
			buf[o++] = ' ';
		}
	}
	buf[o] = '\0';
}

/* Verify `crt` (followed by its intermediates through ->next) to an anchor
 * at `at`; *stale reports a stale CRL accepted under the warn policy. */
static int chain_verify(const struct cu_trust *t, mbedtls_x509_crt *crt,
			int64_t at, const char *where, int *stale,
			struct stn_diag *d)
{
	struct verify_ctx v;
	uint32_t flags = 0;
	char info[300], ebuf[128];
	int ret;

	memset(&v, 0, sizeof(v));
	v.t = t;
	v.at = at;
	v.top = -1;
	ret = mbedtls_x509_crt_verify_with_profile(crt, t->anchors, t->crls,
						   &cu_profile, NULL, &flags,
						   verify_cb, &v);
	if (ret == 0) {
		*stale = v.stale;
		return 0;
	}
	if (ret != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
		return stn_fail(d, STN_E_CHAIN, where,
				"certificate chain cannot be verified: %s",
				tls_strerror(ret, ebuf, sizeof(ebuf)));
	flags_string(flags, info, sizeof(info));
	if (flags & MBEDTLS_X509_BADCERT_REVOKED)
		return stn_fail(d, STN_E_CHAIN, where, "%s", v.revoked_text);
	if (flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE))
		return stn_fail(d, STN_E_CHAIN, where, "%s (%s)", v.time_text,
				info);
	if ((flags & MBEDTLS_X509_BADCRL_EXPIRED) && v.stale)
		return stn_fail(d, STN_E_CHAIN, where,
				"%s; the trust policy refuses stale CRLs",
				v.stale_text);
	if (!(flags & ~(uint32_t)ALGORITHM_FLAGS))
		return stn_fail(d, STN_E_ALGORITHM, where,
				"certificate chain uses a refused algorithm: %s",
				info);
	return stn_fail(d, STN_E_CHAIN, where,
			"certificate chain does not verify: %s", info);
}

/* ---- the leaf: algorithm, key usage, role ---- */

/* formats §2: ECDSA P-256 and P-384, RSA of 2048 bits or more. */
static int key_accepted(const mbedtls_pk_context *pk, char *desc, size_t size)
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

static unsigned leaf_roles(const mbedtls_x509_crt *c)
{
	unsigned mask = 0;

	if (!(c->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE))
		return 0;
	for (const mbedtls_x509_sequence *s = &c->ext_key_usage; s && s->buf.p;
	     s = s->next)
		for (int r = 0; r < ROLE_COUNT; r++)
			if (s->buf.len == ROLE_OID_LEN &&
			    memcmp(s->buf.p, role_oids[r], ROLE_OID_LEN) == 0)
				mask |= 1u << (r + 1);
	return mask;
}

static void roles_string(unsigned mask, char *buf, size_t size)
{
	size_t o = 0;
	int left = __builtin_popcount(mask);

	buf[0] = '\0';
	for (int r = CU_ROLE_RELEASE; r <= CU_ROLE_STATION; r++) {
		if (!(mask & (1u << r)))
			continue;
		left--;
		o += (size_t)snprintf(buf + o, size - o, "%s%s", role_names[r],
				      left > 1 ? ", " : left == 1 ? " and " : "");
		if (o >= size)
			break;
	}
}

/* Parse a PEM chain: the leaf first, then any intermediates. */
static int parse_chain(const unsigned char *pem, size_t len, const char *where,
		       int code, mbedtls_x509_crt *chain, struct stn_diag *d)
{
	char ebuf[128];
	int ret;

	if (!strstr((const char *)pem, "-----BEGIN CERTIFICATE-----"))
		return stn_fail(d, code, where,
				"holds no PEM certificate");
	ret = mbedtls_x509_crt_parse(chain, pem, len + 1);
	if (ret < 0)
		return stn_fail(d, code, where,
				"certificate does not parse: %s",
				tls_strerror(ret, ebuf, sizeof(ebuf)));
	if (ret > 0)
		return stn_fail(d, code, where,
				"%d of its certificates do not parse", ret);
	return 0;
}

static int role_required(enum cu_role role, const char *where,
			 struct stn_diag *d)
{
	if (role < CU_ROLE_RELEASE || role > CU_ROLE_STATION)
		return stn_fail(d, STN_E_USAGE, where,
				"no such role %d to require", (int)role);
	return 0;
}

/* What cu_sig_verify and cu_cert_check share; leaves the chain parsed. */
static int check_cert(const struct cu_trust *t, const char *pem_path,
		      enum cu_role role, int64_t at, mbedtls_x509_crt *chain,
		      struct cu_signer *s, struct stn_diag *d)
{
	unsigned char *pem = NULL, spki[1200], *der;
	size_t len;
	unsigned mask;
	char desc[64], roles[64];
	int rc, n;

	rc = role_required(role, pem_path, d);
	if (rc)
		return rc;
	memset(s, 0, sizeof(*s));
	rc = read_capped(pem_path, CU_CHAIN_MAX, "certificate chain",
			 STN_E_UNSAFE, &pem, &len, d);
	if (rc)
		return rc;
	rc = parse_chain(pem, len, pem_path, STN_E_CHAIN, chain, d);
	if (rc)
		goto out;
	rc = leaf_cn(chain, pem_path, s->cn, sizeof(s->cn), d);
	if (rc)
		goto out;
	if (!key_accepted(&chain->pk, desc, sizeof(desc))) {
		rc = stn_fail(d, STN_E_ALGORITHM, pem_path,
			      "signer CN %s has %s; accepted are ECDSA P-256, "
			      "P-384 and RSA of 2048 bits or more",
			      s->cn, desc);
		goto out;
	}
	rc = chain_verify(t, chain, at, pem_path, &s->stale_crl, d);
	if (rc)
		goto out;
	/* RFC 5280 §4.2.1.3; mbedTLS checks the CAs' keyCertSign itself. */
	if (mbedtls_x509_crt_check_key_usage(
		    chain, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0) {
		rc = stn_fail(d, STN_E_CHAIN, pem_path,
			      "signer CN %s has a keyUsage without "
			      "digitalSignature",
			      s->cn);
		goto out;
	}
	mask = leaf_roles(chain);
	roles_string(mask, roles, sizeof(roles));
	if (mask & (mask - 1)) {
		rc = stn_fail(d, STN_E_TWOROLES, pem_path,
			      "signer CN %s holds roles %s; one key may hold "
			      "one station role",
			      s->cn, roles);
		goto out;
	}
	if (!(mask & (1u << role))) {
		rc = stn_fail(d, STN_E_ROLE, pem_path,
			      "signer CN %s holds %s%s, not %s", s->cn,
			      mask ? "role " : "no station role", roles,
			      role_names[role]);
		goto out;
	}
	serial_string(&chain->serial, s->serial, sizeof(s->serial));
	dn_string(&chain->issuer, s->issuer, sizeof(s->issuer));
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
	cu_sha256(der, (size_t)n, s->key_id);
	s->not_after = x509_secs(&chain->valid_to, INT64_MIN);
out:
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
	char ebuf[128];
	int rc, ret;

	mbedtls_x509_crt_init(&chain);
	rc = role_required(role, sig_path, d);
	if (rc)
		return rc;
	rc = read_capped(sig_path, CU_SIG_MAX, "signature", STN_E_UNSAFE,
			 &sig, &sig_len, d);
	if (rc)
		goto out;
	rc = check_cert(t, pem_path, role, at, &chain, &s, d);
	if (rc)
		goto out;
	ret = mbedtls_pk_verify(&chain.pk, MBEDTLS_MD_SHA256, digest,
				CU_SHA256_LEN, sig, sig_len);
	if (ret != 0) {
		rc = stn_fail(d, STN_E_SIGNATURE, sig_path,
			      "signature by %s does not verify over the file's "
			      "SHA-256: %s",
			      s.cn, tls_strerror(ret, ebuf, sizeof(ebuf)));
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

/* ---- trust store ---- */

static void crl_free_one(mbedtls_x509_crl *c)
{
	if (!c)
		return;
	c->next = NULL; /* mbedtls_x509_crl_free would follow it */
	mbedtls_x509_crl_free(c);
	free(c);
}

/* RFC 5280 §5.2.3: crlNumber orders the CRLs of one issuer.  mbedTLS skips
 * the content of non-critical CRL extensions, so it is read here.  Returns
 * 0 with the unsigned big-endian number, 1 when absent, -1 if malformed. */
static int crl_number(const mbedtls_x509_crl *c, const unsigned char **num,
		      size_t *num_len)
{
	unsigned char *p = c->crl_ext.p, *end, *ext_end, *oid, *q;
	size_t len, oid_len, n;
	int critical, ret;

	if (!p || c->crl_ext.len == 0)
		return 1;
	end = p + c->crl_ext.len;
	if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED |
							MBEDTLS_ASN1_SEQUENCE))
		return -1;
	end = p + len;
	while (p < end) {
		if (mbedtls_asn1_get_tag(&p, end, &len,
					 MBEDTLS_ASN1_CONSTRUCTED |
						 MBEDTLS_ASN1_SEQUENCE))
			return -1;
		ext_end = p + len;
		if (mbedtls_asn1_get_tag(&p, ext_end, &oid_len, MBEDTLS_ASN1_OID))
			return -1;
		oid = p;
		p += oid_len;
		ret = mbedtls_asn1_get_bool(&p, ext_end, &critical);
		if (ret != 0 && ret != MBEDTLS_ERR_ASN1_UNEXPECTED_TAG)
			return -1;
		if (mbedtls_asn1_get_tag(&p, ext_end, &len,
					 MBEDTLS_ASN1_OCTET_STRING))
			return -1;
		if (oid_len == MBEDTLS_OID_SIZE(MBEDTLS_OID_CRL_NUMBER) &&
		    memcmp(oid, MBEDTLS_OID_CRL_NUMBER, oid_len) == 0) {
			q = p;
			if (mbedtls_asn1_get_tag(&q, p + len, &n,
						 MBEDTLS_ASN1_INTEGER) ||
			    q + n != p + len || n == 0 || (q[0] & 0x80))
				return -1;
			while (n > 1 && q[0] == 0) {
				q++;
				n--;
			}
			*num = q;
			*num_len = n;
			return 0;
		}
		p = ext_end;
	}
	return 1;
}

/* formats §6: a higher CRL number, or a later thisUpdate when either
 * lacks one. */
static int crl_newer(const mbedtls_x509_crl *a, const mbedtls_x509_crl *b)
{
	const unsigned char *na, *nb;
	size_t la, lb;

	if (crl_number(a, &na, &la) == 0 && crl_number(b, &nb, &lb) == 0) {
		if (la != lb)
			return la > lb;
		return memcmp(na, nb, la) > 0;
	}
	return x509_secs(&a->this_update, INT64_MIN) >
	       x509_secs(&b->this_update, INT64_MIN);
}

/* Keep a copy of `c` unless the store holds a CRL of its issuer at least as
 * new. */
static int crl_keep(struct cu_trust *t, const mbedtls_x509_crl *c,
		    const char *where, int code, int *kept, struct stn_diag *d)
{
	mbedtls_x509_crl **pp, *n, *old;
	const unsigned char *num;
	size_t num_len;
	char dn[256], ebuf[128];
	int ret;

	if (crl_number(c, &num, &num_len) < 0) {
		dn_string(&c->issuer, dn, sizeof(dn));
		return stn_fail(d, code, where,
				"CRL of %s has a malformed crlNumber", dn);
	}
	for (pp = &t->crls; *pp; pp = &(*pp)->next)
		if (same_name(&(*pp)->issuer_raw, &c->issuer_raw))
			break;
	*kept = 0;
	if (*pp && !crl_newer(c, *pp))
		return 0;
	n = calloc(1, sizeof(*n));
	if (!n)
		return stn_fail(d, STN_E_NOMEM, where, "cannot hold a CRL");
	mbedtls_x509_crl_init(n);
	ret = mbedtls_x509_crl_parse_der(n, c->raw.p, c->raw.len);
	if (ret != 0) {
		crl_free_one(n);
		return stn_fail(d, code, where, "CRL does not parse: %s",
				tls_strerror(ret, ebuf, sizeof(ebuf)));
	}
	old = *pp;
	if (old) {
		n->next = old->next;
		crl_free_one(old);
	}
	*pp = n;
	*kept = 1;
	return 0;
}

/* A CRL file is PEM (one or more blocks) or a single DER CRL. */
static int crl_parse_file(const unsigned char *buf, size_t len,
			  const char *where, int code, mbedtls_x509_crl *list,
			  struct stn_diag *d)
{
	char ebuf[128];
	int ret;

	if (strstr((const char *)buf, "-----BEGIN X509 CRL-----"))
		ret = mbedtls_x509_crl_parse(list, buf, len + 1);
	else
		ret = mbedtls_x509_crl_parse_der(list, buf, len);
	if (ret != 0)
		return stn_fail(d, code, where, "CRL does not parse: %s",
				tls_strerror(ret, ebuf, sizeof(ebuf)));
	return 0;
}

static int load_anchors(struct cu_trust *t, const char *path,
			struct stn_diag *d)
{
	unsigned char *buf = NULL;
	size_t len;
	char dn[256];
	int rc, i = 0;

	rc = read_capped(path, CU_ANCHORS_MAX, "anchors file", STN_E_CONFIG,
			 &buf, &len, d);
	if (rc)
		return rc;
	rc = parse_chain(buf, len, path, STN_E_CONFIG, t->anchors, d);
	if (rc)
		goto out;
	/* A non-CA anchor would sign nothing mbedTLS accepts; better to say
	 * so at start-up than to refuse every bundle later. */
	for (const mbedtls_x509_crt *c = t->anchors; c && c->raw.p;
	     c = c->next) {
		i++;
		if (!c->ca_istrue) {
			dn_string(&c->subject, dn, sizeof(dn));
			rc = stn_fail(d, STN_E_CONFIG, path,
				      "anchor %d (%s) is not a CA certificate",
				      i, dn);
			goto out;
		}
	}
out:
	free(buf);
	return rc;
}

static int load_crl_dir(struct cu_trust *t, const char *dir,
			struct stn_diag *d)
{
	struct dirent **names = NULL;
	mbedtls_x509_crl list;
	unsigned char *buf = NULL;
	char path[PATH_MAX];
	size_t len;
	int n, rc = 0, kept;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return stn_fail(d, STN_E_IO, dir,
				"cannot read the CRL directory: %s",
				strerror(errno));
	for (int i = 0; i < n && rc == 0; i++) {
		if (names[i]->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir,
			     names[i]->d_name) >= (int)sizeof(path)) {
			rc = stn_fail(d, STN_E_CONFIG, dir,
				      "CRL path too long");
			break;
		}
		rc = read_capped(path, CU_CRL_MAX, "CRL", STN_E_CONFIG, &buf,
				 &len, d);
		if (rc)
			break;
		mbedtls_x509_crl_init(&list);
		rc = crl_parse_file(buf, len, path, STN_E_CONFIG, &list, d);
		for (const mbedtls_x509_crl *c = &list; rc == 0 && c;
		     c = c->next)
			rc = crl_keep(t, c, path, STN_E_CONFIG, &kept, d);
		mbedtls_x509_crl_free(&list);
		free(buf);
		buf = NULL;
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int cu_trust_load(const char *anchors_pem, const char *crl_dir,
		  struct cu_trust **out, struct stn_diag *d)
{
	struct cu_trust *t;
	int rc;

	t = calloc(1, sizeof(*t));
	if (!t)
		return stn_fail(d, STN_E_NOMEM, anchors_pem,
				"cannot hold a trust store");
	t->anchors = calloc(1, sizeof(*t->anchors));
	if (!t->anchors) {
		rc = stn_fail(d, STN_E_NOMEM, anchors_pem,
			      "cannot hold a trust store");
		goto out;
	}
	mbedtls_x509_crt_init(t->anchors);
	rc = load_anchors(t, anchors_pem, d);
	if (rc == 0 && crl_dir)
		rc = load_crl_dir(t, crl_dir, d);
	if (rc == 0) {
		*out = t;
		t = NULL;
	}
out:
	cu_trust_free(t);
	return rc;
}

void cu_trust_set_stale_crl_refuse(struct cu_trust *t, int refuse)
{
	t->stale_refuse = refuse != 0;
}

void cu_trust_free(struct cu_trust *t)
{
	mbedtls_x509_crl *c, *next;

	if (!t)
		return;
	if (t->anchors) {
		mbedtls_x509_crt_free(t->anchors);
		free(t->anchors);
	}
	for (c = t->crls; c; c = next) {
		next = c->next;
		crl_free_one(c);
	}
	free(t);
}

/* Whether `ca` is a CA that may sign CRLs and signed this one. */
static int crl_signed_by(const mbedtls_x509_crl *c, mbedtls_x509_crt *ca)
{
	unsigned char hash[MBEDTLS_MD_MAX_SIZE];
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(c->sig_md);

	if (!md || !(cu_profile.allowed_mds & MBEDTLS_X509_ID_FLAG(c->sig_md)))
		return 0;
	if (!ca->ca_istrue || !same_name(&ca->subject_raw, &c->issuer_raw) ||
	    mbedtls_x509_crt_check_key_usage(ca, MBEDTLS_X509_KU_CRL_SIGN))
		return 0;
	if (mbedtls_md(md, c->tbs.p, c->tbs.len, hash) != 0)
		return 0;
	return mbedtls_pk_verify_ext(c->sig_pk, c->sig_opts, &ca->pk,
				     c->sig_md, hash, mbedtls_md_get_size(md),
				     c->sig.p, c->sig.len) == 0;
}

/* formats §6 asks that a bundle's CRL verify against a CA of the store: an
 * anchor, or an intermediate that chains to one at `at`. */
static int crl_from_store(const struct cu_trust *t,
			  const mbedtls_x509_crl *c, mbedtls_x509_crt *issuers,
			  int64_t at)
{
	struct stn_diag ignored;
	int stale;

	for (mbedtls_x509_crt *a = t->anchors; a && a->raw.p; a = a->next)
		if (crl_signed_by(c, a))
			return 1;
	for (mbedtls_x509_crt *ca = issuers; ca && ca->raw.p; ca = ca->next) {
		if (!crl_signed_by(c, ca))
			continue;
		stn_diag_init(&ignored);
		if (chain_verify(t, ca, at, NULL, &stale, &ignored) == 0)
			return 1;
	}
	return 0;
}

int cu_trust_add_crl(struct cu_trust *t, const char *crl_path,
		     const char *issuer_pem, int64_t at, int *replaced,
		     struct stn_diag *d)
{
	mbedtls_x509_crl list;
	mbedtls_x509_crt issuers;
	unsigned char *buf = NULL;
	size_t len;
	char dn[256];
	int rc, kept, any = 0;

	mbedtls_x509_crl_init(&list);
	mbedtls_x509_crt_init(&issuers);
	if (issuer_pem) {
		rc = read_capped(issuer_pem, CU_CHAIN_MAX, "certificate chain",
				 STN_E_UNSAFE, &buf, &len, d);
		if (rc == 0)
			rc = parse_chain(buf, len, issuer_pem, STN_E_CHAIN,
					 &issuers, d);
		free(buf);
		buf = NULL;
		if (rc)
			goto out;
	}
	rc = read_capped(crl_path, CU_CRL_MAX, "CRL", STN_E_UNSAFE, &buf, &len,
			 d);
	if (rc)
		goto out;
	rc = crl_parse_file(buf, len, crl_path, STN_E_CHAIN, &list, d);
	if (rc)
		goto out;
	/* Every CRL of the file is checked before any is kept, so a refused
	 * file leaves the store as it was. */
	for (const mbedtls_x509_crl *c = &list; c; c = c->next) {
		if (!crl_from_store(t, c, &issuers, at)) {
			dn_string(&c->issuer, dn, sizeof(dn));
			rc = stn_fail(d, STN_E_CHAIN, crl_path,
				      "CRL of %s is not signed by a CA of the "
				      "trust store",
				      dn);
			goto out;
		}
	}
	for (const mbedtls_x509_crl *c = &list; c; c = c->next) {
		rc = crl_keep(t, c, crl_path, STN_E_CHAIN, &kept, d);
		if (rc)
			goto out;
		any |= kept;
	}
	if (replaced)
		*replaced = any;
out:
	free(buf);
	mbedtls_x509_crl_free(&list);
	mbedtls_x509_crt_free(&issuers);
	return rc;
}

/* ---- signing ---- */

void cu_key_free(struct cu_key *k)
{
	if (!k)
		return;
	mbedtls_pk_free(&k->pk); /* zeroizes the key's numbers */
	free(k->chain);
	mbedtls_platform_zeroize(k, sizeof(*k));
	free(k);
}

int cu_key_load(const char *key_path, const char *cert_path,
		struct cu_key **out, struct stn_diag *d)
{
	struct cu_key *k;
	mbedtls_x509_crt chain;
	unsigned char *buf = NULL;
	size_t len = 0;
	char ebuf[128], desc[64], cn[128];
	int rc, ret;

	mbedtls_x509_crt_init(&chain);
	k = calloc(1, sizeof(*k));
	if (!k)
		return stn_fail(d, STN_E_NOMEM, key_path, "cannot hold a key");
	mbedtls_pk_init(&k->pk);
	rc = read_capped(key_path, CU_CHAIN_MAX, "private key", STN_E_UNSAFE,
			 &buf, &len, d);
	if (rc)
		goto out;
	ret = mbedtls_pk_parse_key(&k->pk, buf, len + 1, NULL, 0);
	mbedtls_platform_zeroize(buf, len + 1);
	free(buf);
	buf = NULL;
	if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "private key is encrypted; the station needs it "
			      "unencrypted");
		goto out;
	}
	if (ret != 0) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "private key does not parse: %s",
			      tls_strerror(ret, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (!key_accepted(&k->pk, desc, sizeof(desc))) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "private key is %s; the station signs with "
			      "ECDSA P-256, P-384 or RSA of 2048 bits or more",
			      desc);
		goto out;
	}
	rc = read_capped(cert_path, CU_CHAIN_MAX, "certificate chain",
			 STN_E_UNSAFE, &buf, &len, d);
	if (rc)
		goto out;
	rc = parse_chain(buf, len, cert_path, STN_E_CONFIG, &chain, d);
	if (rc)
		goto out;
	if (mbedtls_pk_check_pair(&chain.pk, &k->pk) != 0) {
		if (leaf_cn(&chain, cert_path, cn, sizeof(cn), NULL) != 0)
			snprintf(cn, sizeof(cn), "(no usable CN)");
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "private key does not match the certificate CN "
			      "%s in %s",
			      cn, cert_path);
		goto out;
	}
	k->chain = (char *)buf;
	k->chain_len = len;
	buf = NULL;
	*out = k;
	k = NULL;
out:
	free(buf);
	mbedtls_x509_crt_free(&chain);
	cu_key_free(k);
	return rc;
}

int cu_key_sign(struct cu_key *k, const uint8_t digest[32], uint8_t *sig,
		size_t cap, size_t *sig_len, struct stn_diag *d)
{
	static const char pers[] = "station cu_key_sign";
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	unsigned char buf[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t len = 0;
	char ebuf[128];
	int rc = 0, ret;

	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
				    (const unsigned char *)pers,
				    sizeof(pers) - 1);
	if (ret != 0) {
		rc = stn_fail(d, STN_E_INTERNAL, NULL,
			      "cannot seed the random generator: %s",
			      tls_strerror(ret, ebuf, sizeof(ebuf)));
		goto out;
	}
	/* With a deterministic ECDSA build the generator only blinds. */
	ret = mbedtls_pk_sign(&k->pk, MBEDTLS_MD_SHA256, digest, CU_SHA256_LEN,
			      buf, &len, mbedtls_ctr_drbg_random, &drbg);
	if (ret != 0) {
		rc = stn_fail(d, STN_E_INTERNAL, NULL, "signing failed: %s",
			      tls_strerror(ret, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (len > cap) {
		rc = stn_fail(d, STN_E_USAGE, NULL,
			      "signature needs %zu bytes, the buffer holds %zu",
			      len, cap);
		goto out;
	}
	memcpy(sig, buf, len);
	*sig_len = len;
out:
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return rc;
}

const char *cu_key_chain_pem(const struct cu_key *k, size_t *len)
{
	if (len)
		*len = k->chain_len;
	return k->chain;
}

static int label_ok(const char *label)
{
	size_t n = strlen(label);

	if (n < 1 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = label[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      (c == '-' && i > 0)))
			return 0;
	}
	return 1;
}

static int hash_file(const char *path, uint8_t digest[CU_SHA256_LEN],
		     struct stn_diag *d)
{
	struct cu_sha256 *h = NULL;
	struct stat st;
	unsigned char buf[16384];
	ssize_t n;
	int fd = -1, rc;

	rc = open_regular(path, STN_E_UNSAFE, &fd, &st, d);
	if (rc)
		return rc;
	h = cu_sha256_new();
	if (!h) {
		rc = stn_fail(d, STN_E_NOMEM, path, "cannot hash the file");
		goto out;
	}
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, path, "cannot read: %s",
				      strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		cu_sha256_update(h, buf, (size_t)n);
	}
	cu_sha256_final(h, digest);
out:
	cu_sha256_free(h);
	close(fd);
	return rc;
}

/* A crash must leave either the old file or the whole new one, never part:
 * an auditor may be handed whatever is on disk. */
static int write_replace(const char *target, const void *data, size_t len,
			 struct stn_diag *d)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const unsigned char *p = data;
	int fd = -1, dfd, rc = 0, made = 0;
	ssize_t n;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", target) >=
	    (int)sizeof(tmp))
		return stn_fail(d, STN_E_USAGE, target, "path too long");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return stn_fail(d, STN_E_IO, target,
				"cannot create a temporary file beside it: %s",
				strerror(errno));
	made = 1;
	/* mkostemp makes 0600; signatures and chains are public. */
	if (fchmod(fd, 0644) != 0) {
		rc = stn_fail(d, STN_E_IO, tmp, "cannot chmod: %s",
			      strerror(errno));
		goto out;
	}
	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, tmp, "cannot write: %s",
				      strerror(errno));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0) {
		rc = stn_fail(d, STN_E_IO, tmp, "cannot fsync: %s",
			      strerror(errno));
		goto out;
	}
	n = close(fd);
	fd = -1;
	if (n != 0) {
		rc = stn_fail(d, STN_E_IO, tmp, "cannot close: %s",
			      strerror(errno));
		goto out;
	}
	if (rename(tmp, target) != 0) {
		rc = stn_fail(d, STN_E_IO, target, "cannot rename %s to it: %s",
			      tmp, strerror(errno));
		goto out;
	}
	made = 0;
	/* The rename itself is durable only once the directory is synced;
	 * some file systems cannot (EINVAL), which is no reason to fail. */
	snprintf(dir, sizeof(dir), "%s", target);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) != 0 && errno != EINVAL)
			rc = stn_fail(d, STN_E_IO, target,
				      "cannot fsync its directory: %s",
				      strerror(errno));
		close(dfd);
	}
out:
	if (fd >= 0)
		close(fd);
	if (made)
		unlink(tmp);
	return rc;
}

int cu_sign_file(struct cu_key *k, const char *path, const char *label,
		 struct stn_diag *d)
{
	char sig_path[PATH_MAX], pem_path[PATH_MAX];
	const char *dot = label ? "." : "", *lab = label ? label : "";
	uint8_t digest[CU_SHA256_LEN], sig[CU_SIG_MAX];
	size_t sig_len;
	int rc;

	if (label && !label_ok(label))
		return stn_fail(d, STN_E_USAGE, path,
				"signature label \"%s\" does not match "
				"[a-z0-9][a-z0-9-]{0,31}",
				label);
	if (snprintf(sig_path, sizeof(sig_path), "%s%s%s.sig", path, dot,
		     lab) >= (int)sizeof(sig_path) ||
	    snprintf(pem_path, sizeof(pem_path), "%s%s%s.pem", path, dot,
		     lab) >= (int)sizeof(pem_path))
		return stn_fail(d, STN_E_USAGE, path, "path too long");
	rc = hash_file(path, digest, d);
	if (rc)
		return rc;
	rc = cu_key_sign(k, digest, sig, sizeof(sig), &sig_len, d);
	if (rc)
		return rc;
	/* The .pem first: a reader that sees a .sig finds its chain. */
	rc = write_replace(pem_path, k->chain, k->chain_len, d);
	if (rc)
		return rc;
	return write_replace(sig_path, sig, sig_len, d);
}
