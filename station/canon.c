/* station/canon.c: the one implementation of the canonical encoding that
 * docs/journal.md specifies for auditors.  Anything here that changes
 * changes every hash in every journal and report: it does not change. */
#include "station/canon.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/rfc3339.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/base/error.h"
#include "station/base/strbuf.h"

/* ---- strings ---- */

/* Only '"', '\', bytes below 0x20 and 0x7f are escaped, and the control
 * bytes always as \u00xx, so that an auditor's re-implementation has one
 * rule to follow and a verifier one spelling to accept. */
enum stn_canon_spelling stn_canon_spelling_of(unsigned char c)
{
	if (c == '"' || c == '\\')
		return STN_CANON_SHORT;
	if (c < 0x20 || c == 0x7f)
		return STN_CANON_U00XX;
	return STN_CANON_AS_IS;
}

void stn_canon_json(stn_canon_sink *put, void *ctx, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};

	put(ctx, "\"", 1);
	for (; *p; p++) {
		enum stn_canon_spelling how = stn_canon_spelling_of(*p);

		if (how == STN_CANON_AS_IS)
			continue;
		put(ctx, run, (size_t)(p - run));
		run = p + 1;
		if (how == STN_CANON_SHORT) {
			char two[2] = {'\\', (char)*p};

			put(ctx, two, 2);
		} else {
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			put(ctx, esc, 6);
		}
	}
	put(ctx, run, (size_t)(p - run));
	put(ctx, "\"", 1);
}

static void buf_sink(void *ctx, const void *p, size_t n)
{
	stn_buf_add(ctx, p, n);
}

void stn_canon_json_buf(struct stn_buf *b, const char *s)
{
	stn_canon_json(buf_sink, b, s);
}

/* ---- rules on the values ---- */

int stn_canon_is_hash(const char *s)
{
	size_t i;

	if (!s)
		return 0;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == CU_SHA256_HEX_LEN;
}

/* The length of the strict UTF-8 sequence at p (1 to 4), or 0 when the
 * bytes there are not one (a stray byte, an overlong, a surrogate, past
 * U+10FFFF, cut short).  *p is not NUL. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned cp, min;
	size_t n, i;

	if (*p < 0x80)
		return 1;
	if ((*p & 0xe0) == 0xc0) {
		n = 1, cp = *p & 0x1f, min = 0x80;
	} else if ((*p & 0xf0) == 0xe0) {
		n = 2, cp = *p & 0x0f, min = 0x800;
	} else if ((*p & 0xf8) == 0xf0) {
		n = 3, cp = *p & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	/* A NUL fails the continuation test, so this never reads past the
	 * end of the string. */
	for (i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

/* Strict UTF-8: the body must be valid JSON for the report and for
 * auditors' tools. */
int stn_canon_utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	if (!s)
		return 0;
	for (; *p; p += n)
		if (!(n = utf8_seq(p)))
			return 0;
	return 1;
}

void stn_canon_text_buf(struct stn_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;
	size_t n;

	while (*p) {
		if ((n = utf8_seq(p))) {
			p += n;
			continue;
		}
		char esc[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
		stn_buf_add(b, run, (size_t)(p - run));
		stn_buf_add(b, esc, sizeof(esc));
		run = ++p;
	}
	stn_buf_add(b, run, (size_t)(p - run));
}

int stn_canon_key_ok(const char *k)
{
	size_t i;

	if (!k || !(k[0] >= 'a' && k[0] <= 'z'))
		return 0;
	for (i = 1; k[i]; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '-'))
			return 0;
	return i <= STN_CANON_KEY_MAX;
}

int stn_canon_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' ||
		    v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Breaking these is a bug in the caller, not something a user did, hence
 * STN_E_INTERNAL. */
int stn_canon_check(const char *w, int64_t time, const char *type,
		    const char *session, const struct stn_field *fields,
		    size_t nfields, struct stn_diag *d)
{
	if (time < 0 || time > STN_CANON_TIME_MAX)
		return stn_fail(d, STN_E_INTERNAL, w,
				"event time %" PRId64 " is outside 1970..9999",
				time);
	if (!type || !type[0] || !stn_canon_utf8_ok(type))
		return stn_fail(d, STN_E_INTERNAL, w,
				"event type is empty or not UTF-8");
	if (!stn_canon_utf8_ok(session))
		return stn_fail(d, STN_E_INTERNAL, w,
				"event %s: session is missing or not UTF-8",
				type);
	if (nfields && !fields)
		return stn_fail(d, STN_E_INTERNAL, w,
				"event %s: %zu fields but no array", type,
				nfields);
	if (nfields > STN_CANON_FIELDS_MAX)
		return stn_fail(d, STN_E_INTERNAL, w,
				"event %s: %zu fields, more than %d", type,
				nfields, STN_CANON_FIELDS_MAX);
	for (size_t i = 0; i < nfields; i++) {
		const char *k = fields[i].key;

		if (!stn_canon_key_ok(k))
			return stn_fail(d, STN_E_INTERNAL, w,
					"event %s: field %zu key \"%.40s\" is "
					"not [a-z][a-z0-9-]{0,31}",
					type, i + 1, k ? k : "(null)");
		if (!stn_canon_utf8_ok(fields[i].value))
			return stn_fail(d, STN_E_INTERNAL, w,
					"event %s: field %s value is missing "
					"or not UTF-8",
					type, k);
		for (size_t n = 0; n < i; n++)
			if (strcmp(fields[n].key, k) == 0)
				return stn_fail(d, STN_E_INTERNAL, w,
						"event %s: field %s appears "
						"twice",
						type, k);
	}
	return 0;
}

/* ---- the body and the chain ---- */

static const char *const part_names[STN_CANON_PARTS] = {
	"seq", "time", "type", "session", "fields",
};

const char *stn_canon_part_name(enum stn_canon_part p)
{
	return (unsigned)p < STN_CANON_PARTS ? part_names[p] : "body";
}

void stn_canon_body_build(struct stn_buf *b, uint64_t seq, int64_t time,
			  const char *type, const char *session,
			  const struct stn_field *fields, size_t nfields,
			  size_t ends[STN_CANON_PARTS])
{
	char num[32], ts[CU_TIME_LEN + 1];

	b->len = 0;
	snprintf(num, sizeof(num), "{\"seq\":%" PRIu64, seq);
	stn_buf_str(b, num);
	ends[STN_CANON_SEQ] = b->len;
	cu_time_format(time, ts);
	stn_buf_str(b, ",\"time\":\"");
	stn_buf_str(b, ts);
	stn_buf_str(b, "\"");
	ends[STN_CANON_TIME] = b->len;
	stn_buf_str(b, ",\"type\":");
	stn_canon_json_buf(b, type);
	ends[STN_CANON_TYPE] = b->len;
	stn_buf_str(b, ",\"session\":");
	stn_canon_json_buf(b, session);
	ends[STN_CANON_SESSION] = b->len;
	stn_buf_str(b, ",\"fields\":{");
	for (size_t i = 0; i < nfields; i++) {
		if (i)
			stn_buf_str(b, ",");
		stn_canon_json_buf(b, fields[i].key);
		stn_buf_str(b, ":");
		stn_canon_json_buf(b, fields[i].value);
	}
	stn_buf_str(b, "}}");
	ends[STN_CANON_FIELDS] = b->len;
}

int stn_canon_body(uint64_t seq, int64_t time, const char *type,
		   const char *session, const struct stn_field *fields,
		   size_t nfields, char **body, size_t *len,
		   struct stn_diag *d)
{
	struct stn_buf b = {0};
	size_t ends[STN_CANON_PARTS];
	int rc;

	if (!body || !len)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"body: nowhere to put it");
	rc = stn_canon_check("event", time, type, session, fields, nfields, d);
	if (rc)
		return rc;
	stn_canon_body_build(&b, seq, time, type, session, fields, nfields,
			     ends);
	if (b.oom) {
		free(b.p);
		return stn_fail(d, STN_E_NOMEM, "event", NULL);
	}
	if (b.len > STN_CANON_BODY_MAX) {
		free(b.p);
		return stn_fail(d, STN_E_INTERNAL, "event",
				"event %s: body is %zu bytes, more than %d",
				type, b.len, STN_CANON_BODY_MAX);
	}
	*body = b.p;
	*len = b.len;
	return 0;
}

/* A part differs when the first differing byte lies inside it or just
 * after it (the stored part runs on where the rebuilt one ended). */
enum stn_canon_part stn_canon_body_diff(const char *rebuilt, size_t rlen,
					const size_t ends[STN_CANON_PARTS],
					const char *stored, size_t slen)
{
	size_t same = 0;
	int part;

	if (rlen == slen && memcmp(rebuilt, stored, rlen) == 0)
		return STN_CANON_PARTS;
	while (same < rlen && same < slen && rebuilt[same] == stored[same])
		same++;
	for (part = 0; part < STN_CANON_FIELDS && ends[part] < same; part++)
		;
	return (enum stn_canon_part)part;
}

int stn_canon_hash(const char *prev, const char *body, size_t len,
		   char hex[CU_SHA256_HEX_LEN + 1])
{
	struct cu_sha256 *h = cu_sha256_new();
	uint8_t md[CU_SHA256_LEN];

	int rc;

	if (!h)
		return STN_E_NOMEM;
	if (!(rc = cu_sha256_update(h, prev, strlen(prev))) &&
	    !(rc = cu_sha256_update(h, "\n", 1)) &&
	    !(rc = cu_sha256_update(h, body, len)))
		rc = cu_sha256_final(h, md);
	cu_sha256_free(h);
	if (rc == 0)
		cu_hex(md, sizeof(md), hex);
	return rc;
}
