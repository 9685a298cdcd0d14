/* custody/trust.c: the trust store of anchors and CRLs (formats §6), and
 * verifying a certificate chain against it at a given time, over mbedTLS
 * 2.28.  mbedTLS judges validity by the wall clock; a verify callback
 * re-decides every time check against the session start the caller passes. */
#include "custody/trust.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "station/base/rfc3339.h"
#include "custody/sig.h"
#include "custody/x509_internal.h"
#include "station/base/error.h"

/* The algorithms formats §2 accepts, applied to every certificate of a chain
 * by mbedTLS; the leaf's own key is checked more narrowly by
 * cu_x509_key_accepted. */
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

static const char *time_string(int64_t t, char buf[CU_TIME_LEN + 1])
{
	cu_time_format(t, buf);
	return buf;
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
	enum cu_role role; /* CU_ROLE_NONE: no EKU nesting to check */
	char eku_ca[128]; /* a CA whose EKU does not allow `role` */
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
	cu_x509_dn_string(&crt->subject, subject, sizeof(subject));
	snprintf(v->time_text, sizeof(v->time_text),
		 "certificate %s %s %s; the session started %s", subject, what,
		 time_string(when, t1), time_string(v->at, t2));
}

/* Whether a CA certificate's extendedKeyUsage, if it has one, lets the
 * leaves under it hold `role`. */
static int eku_allows(const mbedtls_x509_crt *ca, enum cu_role role)
{
	static const char any[] = MBEDTLS_OID_ANY_EXTENDED_KEY_USAGE;
	size_t len = 0;
	const uint8_t *oid = cu_role_oid(role, &len);

	if (!(ca->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE))
		return 1;
	for (const mbedtls_x509_sequence *q = &ca->ext_key_usage; q && q->buf.p;
	     q = q->next) {
		if (q->buf.len == sizeof(any) - 1 &&
		    memcmp(q->buf.p, any, sizeof(any) - 1) == 0)
			return 1;
		if (oid && q->buf.len == len && memcmp(q->buf.p, oid, len) == 0)
			return 1;
	}
	return 0;
}

/*
 * mbedTLS calls this for every certificate of the chain it built, top first,
 * with the flags it set by the wall clock.  Validity is re-decided against
 * the session start.  A CRL's flags sit on the certificate it was applied
 * to (the child of the CRL's issuer), and the top was checked against none.
 * It is handed one path at a time (build_path below), so mbedTLS never
 * chooses between two parents of one name.
 */
static int verify_cb(void *p, mbedtls_x509_crt *crt, int depth,
		     uint32_t *flags)
{
	struct verify_ctx *v = p;
	int64_t from = cu_x509_secs(&crt->valid_from, INT64_MAX);
	int64_t to = cu_x509_secs(&crt->valid_to, INT64_MIN);
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
		cu_x509_dn_string(&crt->issuer, dn, sizeof(dn));
		cu_x509_dn_string(&crt->subject, subject, sizeof(subject));
		cu_x509_serial_string(&crt->serial, serial, sizeof(serial));
		snprintf(v->revoked_text, sizeof(v->revoked_text),
			 "certificate %s serial %s issued by %s is revoked by "
			 "its issuer's CRL",
			 subject, serial, dn);
	}
	/* EKU nesting: a CA whose extendedKeyUsage lists purposes has said
	 * which its subordinates may hold (RFC 5280 §4.2.1.12 leaves this to
	 * the application; CA/Browser Forum practice, and ours, is that it
	 * binds every leaf under it).  anyExtendedKeyUsage on a CA allows
	 * all. */
	if (depth > 0 && v->role != CU_ROLE_NONE && !eku_allows(crt, v->role)) {
		*flags |= MBEDTLS_X509_BADCERT_EXT_KEY_USAGE;
		if (!v->eku_ca[0])
			cu_x509_dn_string(&crt->subject, v->eku_ca,
					  sizeof(v->eku_ca));
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
	    v->at > cu_x509_secs(&crl->next_update, INT64_MIN)) {
		if (!v->stale) {
			cu_x509_dn_string(&crl->issuer, dn, sizeof(dn));
			snprintf(v->stale_text, sizeof(v->stale_text),
				 "CRL of %s is past its nextUpdate %s", dn,
				 time_string(cu_x509_secs(&crl->next_update,
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

/*
 * Path building (RFC 4158 in miniature).  mbedTLS 2.28 looks for a child's
 * parent among the anchors and then only among the certificates AFTER the
 * child in the list, takes the first that matches by name and signature,
 * and never backtracks (x509_crt_find_parent, x509_crt_verify_chain).  So
 * intermediates out of issuing order fail, and so does a cross-certificate
 * (an intermediate's name and key under another root) listed ahead of the
 * one that leads to our anchor.  Here every candidate issuer among the
 * presented certificates is tried, depth first, and each complete path
 * (one whose top an anchor signed) is handed to mbedTLS alone, in order,
 * until one verifies.  The search is bounded three ways, so a chain file
 * built to make it explode costs at most PATH_STEPS signature checks.
 */
#define PATH_GIVEN_MAX 32 /* certificates of one chain file */
#define PATH_DEPTH 8      /* intermediates above the leaf, as mbedTLS's
			   * MBEDTLS_X509_MAX_INTERMEDIATE_CA */
#define PATH_TRIES 8      /* complete paths verified by mbedTLS */
#define PATH_STEPS 64     /* candidate issuers whose signature is checked */

struct attempt {
	int ret;
	uint32_t flags;
	struct verify_ctx v;
	const mbedtls_x509_crt *path[PATH_DEPTH + 1]; /* leaf first */
	size_t n;
	const mbedtls_x509_crt *anchor;
};

struct path_search {
	const struct cu_trust *t;
	int64_t at;
	enum cu_role role;
	const mbedtls_x509_crt *given[PATH_GIVEN_MAX];
	size_t ngiven;
	const mbedtls_x509_crt *path[PATH_DEPTH + 1];
	size_t n;
	size_t tries, steps;
	int done;
	int stale;
	const mbedtls_x509_crt *anchor_done; /* the anchor of the path */
	int have_first;
	struct attempt first; /* the first path that failed, reported */
};

/* Whether `parent`'s key made `child`'s signature (names are compared by
 * the caller). */
static int cert_signed_by(const mbedtls_x509_crt *child,
			  const mbedtls_x509_crt *parent)
{
	unsigned char hash[MBEDTLS_MD_MAX_SIZE];
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(child->sig_md);

	if (!md || mbedtls_md(md, child->tbs.p, child->tbs.len, hash) != 0)
		return 0;
	return mbedtls_pk_verify_ext(child->sig_pk, child->sig_opts,
				     (mbedtls_pk_context *)(uintptr_t)&parent->pk,
				     child->sig_md, hash,
				     mbedtls_md_get_size(md), child->sig.p,
				     child->sig.len) == 0;
}

static int issued(struct path_search *s, const mbedtls_x509_crt *child,
		  const mbedtls_x509_crt *parent)
{
	if (!same_name(&parent->subject_raw, &child->issuer_raw))
		return 0;
	if (s->steps >= PATH_STEPS)
		return 0;
	s->steps++;
	return cert_signed_by(child, parent);
}

static void verify_ctx_init(struct verify_ctx *v, const struct cu_trust *t,
			    int64_t at, enum cu_role role)
{
	memset(v, 0, sizeof(*v));
	v->t = t;
	v->at = at;
	v->role = role;
	v->top = -1;
}

/* Hand the current path, alone and in order, to mbedTLS. */
static void try_path(struct path_search *s, const mbedtls_x509_crt *anchor)
{
	struct attempt a;
	mbedtls_x509_crt list;

	memset(&a, 0, sizeof(a));
	verify_ctx_init(&a.v, s->t, s->at, s->role);
	mbedtls_x509_crt_init(&list);
	for (size_t i = 0; i < s->n && a.ret == 0; i++)
		a.ret = mbedtls_x509_crt_parse_der(&list, s->path[i]->raw.p,
						   s->path[i]->raw.len);
	if (a.ret == 0)
		a.ret = mbedtls_x509_crt_verify_with_profile(
			&list, s->t->anchors, s->t->crls, &cu_profile, NULL,
			&a.flags, verify_cb, &a.v);
	mbedtls_x509_crt_free(&list);
	s->tries++;
	if (a.ret == 0) {
		s->done = 1;
		s->stale = a.v.stale;
		s->anchor_done = anchor;
		return;
	}
	if (s->have_first)
		return;
	memcpy(a.path, s->path, s->n * sizeof(s->path[0]));
	a.n = s->n;
	a.anchor = anchor;
	s->first = a;
	s->have_first = 1;
}

static void search_from(struct path_search *s)
{
	const mbedtls_x509_crt *cur = s->path[s->n - 1];

	for (const mbedtls_x509_crt *a = s->t->anchors; a && a->raw.p;
	     a = a->next) {
		if (s->done || s->tries >= PATH_TRIES)
			return;
		if (issued(s, cur, a))
			try_path(s, a);
	}
	if (s->n > PATH_DEPTH)
		return;
	for (size_t i = 0; i < s->ngiven; i++) {
		const mbedtls_x509_crt *c = s->given[i];
		int used = 0;

		if (s->done || s->tries >= PATH_TRIES)
			return;
		for (size_t k = 0; k < s->n; k++)
			used |= s->path[k] == c;
		if (used || !issued(s, cur, c))
			continue;
		s->path[s->n++] = c;
		search_from(s);
		s->n--;
	}
}

/* RFC 5280 §4.2.1.9 and §4.2.1.3 by name, for a path mbedTLS refused with
 * only "not correctly signed by the trusted CA" (it skips a parent that is
 * no CA, lacks keyCertSign or exceeds a pathLenConstraint, then finds
 * none).  Returns 1 with the cause in buf. */
static int path_fault(const struct attempt *a, char *buf, size_t size)
{
	char dn[128], child[128];
	size_t below = 0;

	for (size_t i = 1; i <= a->n; i++) {
		const mbedtls_x509_crt *c = i < a->n ? a->path[i] : a->anchor;

		if (!c)
			break;
		cu_x509_dn_string(&c->subject, dn, sizeof(dn));
		cu_x509_dn_string(&a->path[i - 1]->subject, child,
				  sizeof(child));
		if (!c->ca_istrue) {
			snprintf(buf, size,
				 "certificate %s is not a CA (basicConstraints) "
				 "yet issued %s",
				 dn, child);
			return 1;
		}
		if ((c->ext_types & MBEDTLS_X509_EXT_KEY_USAGE) &&
		    !(c->key_usage & MBEDTLS_X509_KU_KEY_CERT_SIGN)) {
			snprintf(buf, size,
				 "CA %s: its keyUsage does not allow "
				 "keyCertSign, yet it issued %s",
				 dn, child);
			return 1;
		}
		/* mbedTLS stores pathLenConstraint + 1, 0 for none; self-
		 * issued certificates do not count (RFC 5280 §6.1.4). */
		if (c->max_pathlen > 0 &&
		    (size_t)(c->max_pathlen - 1) < below) {
			snprintf(buf, size,
				 "CA %s has pathLenConstraint %d, but %zu CA "
				 "certificate%s below it in the path",
				 dn, c->max_pathlen - 1, below,
				 below == 1 ? " is" : "s are");
			return 1;
		}
		if (i < a->n && !same_name(&c->subject_raw, &c->issuer_raw))
			below++;
	}
	return 0;
}

static int report_failure(const struct attempt *a, const mbedtls_x509_crt *leaf,
			  const char *where, struct stn_diag *d)
{
	char info[300], ebuf[128], fault[400], cn[128];
	uint32_t flags = a->flags;

	if (a->ret != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
		return stn_fail(d, STN_E_CHAIN, where,
				"certificate chain cannot be verified: %s",
				cu_x509_strerror(a->ret, ebuf, sizeof(ebuf)));
	flags_string(flags, info, sizeof(info));
	if (flags & MBEDTLS_X509_BADCERT_REVOKED)
		return stn_fail(d, STN_E_CHAIN, where, "%s", a->v.revoked_text);
	if (flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE))
		return stn_fail(d, STN_E_CHAIN, where, "%s (%s)",
				a->v.time_text, info);
	if ((flags & MBEDTLS_X509_BADCRL_EXPIRED) && a->v.stale)
		return stn_fail(d, STN_E_CHAIN, where,
				"%s; the trust policy refuses stale CRLs",
				a->v.stale_text);
	if ((flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) && a->n &&
	    path_fault(a, fault, sizeof(fault)))
		return stn_fail(d, STN_E_CHAIN, where,
				"certificate chain does not verify: %s", fault);
	if ((flags & MBEDTLS_X509_BADCERT_EXT_KEY_USAGE) && a->v.eku_ca[0]) {
		if (cu_x509_leaf_cn(leaf, where, cn, sizeof(cn), NULL))
			snprintf(cn, sizeof(cn), "?");
		return stn_fail(d, STN_E_ROLE, where,
				"CA %s above signer CN %s does not allow role "
				"%s (its extendedKeyUsage lacks it)",
				a->v.eku_ca, cn, cu_role_name(a->v.role));
	}
	if (!(flags & ~(uint32_t)ALGORITHM_FLAGS))
		return stn_fail(d, STN_E_ALGORITHM, where,
				"certificate chain uses a refused algorithm: %s",
				info);
	return stn_fail(d, STN_E_CHAIN, where,
			"certificate chain does not verify: %s", info);
}

int cu_trust_verify_chain(const struct cu_trust *t, mbedtls_x509_crt *crt,
			  int64_t at, enum cu_role role, const char *where,
			  int *stale, struct stn_diag *d)
{
	return cu_trust_verify_chain_anchor(t, crt, at, role, where, stale,
					    NULL, 0, d);
}

int cu_trust_verify_chain_anchor(const struct cu_trust *t,
				 mbedtls_x509_crt *crt, int64_t at,
				 enum cu_role role, const char *where,
				 int *stale, char *anchor, size_t anchor_size,
				 struct stn_diag *d)
{
	struct path_search *s;
	struct attempt *a;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return stn_fail(d, STN_E_NOMEM, where, "cannot build a path");
	s->t = t;
	s->at = at;
	s->role = role;
	for (const mbedtls_x509_crt *c = crt->next; c && c->raw.p;
	     c = c->next) {
		if (s->ngiven == PATH_GIVEN_MAX) {
			rc = stn_fail(d, STN_E_CHAIN, where,
				      "certificate chain holds more than %d "
				      "certificates",
				      PATH_GIVEN_MAX);
			goto out;
		}
		s->given[s->ngiven++] = c;
	}
	s->path[0] = crt;
	s->n = 1;
	search_from(s);
	if (s->done) {
		*stale = s->stale;
		if (anchor && anchor_size)
			cu_x509_dn_string(&s->anchor_done->subject, anchor,
					  anchor_size);
		rc = 0;
		goto out;
	}
	if (s->have_first) {
		rc = report_failure(&s->first, crt, where, d);
		goto out;
	}
	/* No path reaches an anchor: let mbedTLS say why, on the chain as
	 * given. */
	a = &s->first;
	memset(a, 0, sizeof(*a));
	verify_ctx_init(&a->v, t, at, role);
	a->ret = mbedtls_x509_crt_verify_with_profile(crt, t->anchors, t->crls,
						      &cu_profile, NULL,
						      &a->flags, verify_cb,
						      &a->v);
	if (a->ret == 0) { /* cannot happen: a path would have been found */
		if (anchor && anchor_size)
			snprintf(anchor, anchor_size, "?");
		*stale = a->v.stale;
		rc = 0;
		goto out;
	}
	rc = report_failure(a, crt, where, d);
out:
	free(s);
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
	return cu_x509_secs(&a->this_update, INT64_MIN) >
	       cu_x509_secs(&b->this_update, INT64_MIN);
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
		cu_x509_dn_string(&c->issuer, dn, sizeof(dn));
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
				cu_x509_strerror(ret, ebuf, sizeof(ebuf)));
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

static int load_anchors(struct cu_trust *t, const char *path,
			struct stn_diag *d)
{
	unsigned char *buf = NULL;
	size_t len;
	char dn[256];
	int rc, i = 0;

	rc = cu_x509_read_capped(path, CU_ANCHORS_MAX, "anchors file",
				 STN_E_CONFIG, &buf, &len, d);
	if (rc)
		return rc;
	rc = cu_x509_parse_chain(buf, len, path, STN_E_CONFIG, t->anchors, d);
	if (rc)
		goto out;
	/* A non-CA anchor would sign nothing mbedTLS accepts; better to say
	 * so at start-up than to refuse every bundle later. */
	for (const mbedtls_x509_crt *c = t->anchors; c && c->raw.p;
	     c = c->next) {
		i++;
		if (!c->ca_istrue) {
			cu_x509_dn_string(&c->subject, dn, sizeof(dn));
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
		rc = cu_x509_read_capped(path, CU_CRL_MAX, "CRL", STN_E_CONFIG,
					 &buf, &len, d);
		if (rc)
			break;
		mbedtls_x509_crl_init(&list);
		rc = cu_x509_parse_crls(buf, len, path, STN_E_CONFIG, &list, d);
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

void cu_trust_crl_status(const struct cu_trust *t, int64_t at, size_t *count,
			 size_t *stale, int64_t *next_update)
{
	*count = *stale = 0;
	*next_update = 0;
	for (const mbedtls_x509_crl *c = t->crls; c; c = c->next) {
		int64_t nu;
		if (c->raw.len == 0)
			continue; /* an empty list head */
		(*count)++;
		if (c->next_update.year == 0)
			continue;
		nu = cu_x509_secs(&c->next_update, INT64_MIN);
		if (at > nu)
			(*stale)++;
		else if (!*next_update || nu < *next_update)
			*next_update = nu;
	}
}

int cu_trust_add_crl_dir(struct cu_trust *t, const char *dir,
			 struct stn_diag *d)
{
	return load_crl_dir(t, dir, d);
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
		if (cu_trust_verify_chain(t, ca, at, CU_ROLE_NONE, NULL, &stale,
					  &ignored) == 0)
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
		rc = cu_x509_read_capped(issuer_pem, CU_CHAIN_MAX,
					 "certificate chain", STN_E_UNSAFE,
					 &buf, &len, d);
		if (rc == 0)
			rc = cu_x509_parse_chain(buf, len, issuer_pem,
						 STN_E_CHAIN, &issuers, d);
		free(buf);
		buf = NULL;
		if (rc)
			goto out;
	}
	rc = cu_x509_read_capped(crl_path, CU_CRL_MAX, "CRL", STN_E_UNSAFE,
				 &buf, &len, d);
	if (rc)
		goto out;
	rc = cu_x509_parse_crls(buf, len, crl_path, STN_E_CHAIN, &list, d);
	if (rc)
		goto out;
	/* Every CRL of the file is checked before any is kept, so a refused
	 * file leaves the store as it was. */
	for (const mbedtls_x509_crl *c = &list; c; c = c->next) {
		if (!crl_from_store(t, c, &issuers, at)) {
			cu_x509_dn_string(&c->issuer, dn, sizeof(dn));
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
