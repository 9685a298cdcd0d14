/* station/report_verify.c: `station report verify`, the auditor's check
 * of a station-report-1 file from the file alone: no session, no journal,
 * no configuration, only the trust anchors.  The report is read once,
 * hashing and parsing the same bytes, so what is checked is what was
 * signed; every event is rebuilt with the journal's own encoder
 * (station/canon.h) and must match byte for byte. */
#include "station/report_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "station/base/base64.h"
#include "station/base/rfc3339.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "custody/devid.h"
#include "custody/record.h"
#include "custody/sig.h"
#include "station/canon.h"
#include "station/base/error.h"
#include "station/events.h"

_Static_assert(STN_REPORT_STRING_MAX >= STN_CANON_BODY_MAX,
	       "every body the journal accepts fits a report string");
_Static_assert(STN_REPORT_FIELDS_MAX >= STN_CANON_FIELDS_MAX,
	       "every event the journal accepts fits a report event");

/* Identity (formats §9): a proven device-attested event, kept until its
 * session ends so that the session's receipts and authorizations can be
 * checked against it.  Sessions a killed station never ended would keep
 * theirs for ever; past ID_OPEN_MAX the oldest is forgotten, and what
 * needed it is counted as unchecked (never as proven). */
#define ID_OPEN_MAX 4096
struct id_attest {
	char *session, *device, *chain;
	char serial[CU_VALUE_MAX + 1];
	char nonce[2 * CU_NONCE_LEN + 1], challenge[2 * CU_NONCE_LEN + 1];
	uint64_t seq;
};

struct id_state {
	struct id_attest *v; /* oldest first */
	size_t n;
	char **started; /* sessions whose session-start is in the report */
	size_t nstarted;
};

struct parser {
	/* input */
	int fd;
	const char *path;
	unsigned char *buf;
	size_t pos, len;
	uint64_t total, line;
	struct cu_sha256 *h;
	int hrc; /* first hashing error */
	int eof, eno, toobig;
	/* first failure of layout or chain; the signature is checked first */
	struct stn_diag pd;
	int failed;
	/* the current event's strings, and its body rebuilt from them */
	struct stn_buf a, rebuilt;
	struct stn_field fields[STN_REPORT_FIELDS_MAX];
	size_t foff[2 * STN_REPORT_FIELDS_MAX];
	/* what the header says, then what the events showed */
	struct stn_report_info *info;
	int have_exported, have_station;
	uint64_t n, next;
	char prev[RPT_HASH_LEN + 1];
	int64_t first_time, last_time;
	char first_hash[RPT_HASH_LEN + 1];
	/* continuity with a later report: the hash of event `want` */
	int want_set, want_found;
	uint64_t want;
	char want_hash[RPT_HASH_LEN + 1];
	struct rpt_sessions ss;
	/* signed identity records: the station-role chain of authorizations
	 * is checked against t (NULL: not at all, for the fuzz target) */
	const struct cu_trust *t;
	struct id_state id;
	uint64_t id_checked, id_unchecked, id_first_unchecked;
};

static int fill(struct parser *P)
{
	ssize_t n;

	if (P->eof)
		return -1;
	do
		n = read(P->fd, P->buf, RPT_IO_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n < 0)
			P->eno = errno;
		P->eof = 1;
		return -1;
	}
	P->total += (uint64_t)n;
	/* The file may grow after fstat; the cap holds regardless. */
	if (P->total > (uint64_t)STN_REPORT_MAX) {
		P->toobig = 1;
		P->eof = 1;
		return -1;
	}
	if (!P->hrc)
		P->hrc = cu_sha256_update(P->h, P->buf, (size_t)n);
	P->pos = 0;
	P->len = (size_t)n;
	return 0;
}

static int peekc(struct parser *P)
{
	if (P->pos == P->len && fill(P) != 0)
		return -1;
	return P->buf[P->pos];
}

static int nextc(struct parser *P)
{
	int c = peekc(P);

	if (c >= 0) {
		P->pos++;
		if (c == '\n')
			P->line++;
	}
	return c;
}

/* Reads (and hashes) whatever the parser left. */
static void drain(struct parser *P)
{
	P->pos = P->len;
	while (fill(P) == 0)
		P->pos = P->len;
}

static int p_vfail(struct parser *P, int code, int line, const char *fmt,
		   va_list ap)
{
	char text[900];

	if (P->failed)
		return -1;
	vsnprintf(text, sizeof(text), fmt, ap);
	if (line)
		stn_fail(&P->pd, code, P->path, "line %" PRIu64 ": %s",
			 P->line, text);
	else
		stn_fail(&P->pd, code, P->path, "%s", text);
	P->failed = 1;
	return -1;
}

/* A layout error: not what station-report-1 says, at this line. */
static int layout(struct parser *P, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int layout(struct parser *P, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = p_vfail(P, STN_E_SYNTAX, 1, fmt, ap);
	va_end(ap);
	return rc;
}

/* A chain or consistency error: the content was changed. */
static int broken(struct parser *P, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int broken(struct parser *P, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = p_vfail(P, STN_E_CHAINBROKEN, 0, fmt, ap);
	va_end(ap);
	return rc;
}

static int lit(struct parser *P, const char *s, const char *what)
{
	for (; *s; s++)
		if (nextc(P) != (unsigned char)*s)
			return layout(P, "%s: expected `%s`", what, s);
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * A JSON string in the one spelling the station writes: '"' and '\' as
 * \" and \\, bytes below 0x20 and 0x7f as \u00xx in lowercase, everything
 * else as itself; no other escape, no raw control byte, valid UTF-8, no
 * NUL, at most max bytes decoded.  Appended to P->a with a NUL; *off is
 * where it starts.
 */
static int jstr(struct parser *P, size_t max, const char *what, size_t *off)
{
	size_t start = P->a.len, n = 0;
	unsigned char ch;
	int c, h1, h2;

	/* A valid event's strings all fit its body twice over (the body and
	 * the fields shown); anything larger is not one. */
	if (P->a.len > 2 * (size_t)STN_REPORT_STRING_MAX + 4096)
		return layout(P, "%s: more than %d bytes of strings in one "
			      "event", what, 2 * STN_REPORT_STRING_MAX + 4096);
	if (nextc(P) != '"')
		return layout(P, "%s: expected a string", what);
	for (;;) {
		c = nextc(P);
		if (c < 0)
			return layout(P, "%s: the string does not end", what);
		if (c == '"')
			break;
		if (c == '\\') {
			c = nextc(P);
			if (c == 'u') {
				if (nextc(P) != '0' || nextc(P) != '0' ||
				    (h1 = hexval(nextc(P))) < 0 ||
				    (h2 = hexval(nextc(P))) < 0)
					return layout(P, "%s: \\u escapes are "
						      "written \\u00xx, lowercase",
						      what);
				c = h1 << 4 | h2;
				if (c == 0 || stn_canon_spelling_of(
						      (unsigned char)c) !=
						      STN_CANON_U00XX)
					return layout(P, "%s: \\u00%02x is not "
						      "an escape the station "
						      "writes",
						      what, c);
			} else if (c < 0 || stn_canon_spelling_of(
					     (unsigned char)c) !=
					     STN_CANON_SHORT) {
				return layout(P, "%s: escape \\%c is not one "
					      "the station writes (only \\\" "
					      "\\\\ \\u00xx)",
					      what,
					      c >= 0x20 && c < 0x7f ? c : '?');
			}
		} else if (stn_canon_spelling_of((unsigned char)c) !=
			   STN_CANON_AS_IS) {
			return layout(P, "%s: raw control byte 0x%02x in a "
				      "string", what, c);
		}
		if (++n > max)
			return layout(P, "%s: longer than %zu bytes", what,
				      max);
		ch = (unsigned char)c;
		stn_buf_add(&P->a, &ch, 1);
	}
	stn_buf_add(&P->a, "", 1);
	if (P->a.oom)
		return layout(P, "%s: out of memory", what);
	if (!stn_canon_utf8_ok(P->a.p + start))
		return layout(P, "%s: not UTF-8", what);
	*off = start;
	return 0;
}

/* A string copied into a fixed buffer (header values). */
static int jstr_to(struct parser *P, char *dst, size_t cap, const char *what)
{
	size_t off, keep = P->a.len;

	if (jstr(P, cap - 1, what, &off))
		return -1;
	memcpy(dst, P->a.p + off, strlen(P->a.p + off) + 1);
	P->a.len = keep;
	return 0;
}

static int jhash(struct parser *P, char out[RPT_HASH_LEN + 1], const char *what)
{
	if (jstr_to(P, out, RPT_HASH_LEN + 1, what))
		return -1;
	if (!stn_canon_is_hash(out))
		return layout(P, "%s: not 64 lowercase hex digits", what);
	return 0;
}

static int jtime(struct parser *P, int64_t *out, const char *what)
{
	char ts[CU_TIME_LEN + 2];

	if (jstr_to(P, ts, sizeof(ts), what))
		return -1;
	if (cu_time_parse(ts, out) != 0)
		return layout(P, "%s: \"%s\" is not an RFC 3339 UTC time "
			      "(YYYY-MM-DDTHH:MM:SSZ)", what, ts);
	return 0;
}

/* A decimal number in one spelling: no sign, no leading zero, no
 * fraction, at most 2^63 - 1 (what SQLite stores). */
static int jnum(struct parser *P, uint64_t *out, const char *what)
{
	uint64_t v;
	int c = nextc(P);

	if (c < '0' || c > '9')
		return layout(P, "%s: expected a number", what);
	v = (uint64_t)(c - '0');
	if (c == '0' && (c = peekc(P)) >= '0' && c <= '9')
		return layout(P, "%s: a number with a leading zero", what);
	while (v && (c = peekc(P)) >= '0' && c <= '9') {
		nextc(P);
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(c - '0')) / 10)
			return layout(P, "%s: number too large", what);
		v = v * 10 + (uint64_t)(c - '0');
	}
	*out = v;
	return 0;
}

/* [","] "\"name\":" where members are fixed and in a fixed order. */
static int member(struct parser *P, const char *obj, int first,
		  const char *name)
{
	size_t off, keep;
	int c;

	if (!first) {
		c = nextc(P);
		if (c == '}')
			return layout(P, "%s: member \"%s\" is missing", obj,
				      name);
		if (c != ',')
			return layout(P, "%s: expected `,` before \"%s\"", obj,
				      name);
	}
	keep = P->a.len;
	if (jstr(P, 64, obj, &off))
		return -1;
	if (strcmp(P->a.p + off, name) != 0)
		return layout(P, "%s: member \"%.64s\" where \"%s\" belongs "
			      "(unknown, missing, repeated or out of order)",
			      obj, P->a.p + off, name);
	P->a.len = keep;
	if (nextc(P) != ':')
		return layout(P, "%s: expected `:` after \"%s\"", obj, name);
	return 0;
}

static int obj_end(struct parser *P, const char *obj, const char *after)
{
	size_t off;
	int c = nextc(P);

	if (c == '}')
		return 0;
	if (c == ',') {
		if (jstr(P, 64, obj, &off))
			return -1;
		return layout(P, "%s: unknown member \"%.64s\" after \"%s\"",
			      obj, P->a.p + off, after);
	}
	return layout(P, "%s: expected `}` after \"%s\"", obj, after);
}

static int parse_header(struct parser *P)
{
	struct stn_report_info *i = P->info;
	char fmt[64];
	int c;

	if (lit(P, "{", "report"))
		return -1;
	if (member(P, "report", 1, "format") ||
	    jstr_to(P, fmt, sizeof(fmt), "format"))
		return -1;
	if (strcmp(fmt, STN_REPORT_FORMAT) != 0)
		return layout(P, "format is \"%s\"; this verifier reads "
			      STN_REPORT_FORMAT, fmt);
	if (member(P, "report", 0, "station") ||
	    jstr_to(P, i->station, sizeof(i->station), "station"))
		return -1;
	P->have_station = i->station[0] != '\0';
	if (!P->have_station)
		return layout(P, "station: empty");
	if (member(P, "report", 0, "site") ||
	    jstr_to(P, i->site, sizeof(i->site), "site") ||
	    member(P, "report", 0, "exported") ||
	    jtime(P, &i->exported, "exported"))
		return -1;
	P->have_exported = 1;
	if (member(P, "report", 0, "session") ||
	    jstr_to(P, i->session, sizeof(i->session), "session") ||
	    member(P, "report", 0, "period") || lit(P, "{", "period") ||
	    member(P, "period", 1, "since") ||
	    jtime(P, &i->since, "period since") ||
	    member(P, "period", 0, "until") ||
	    jtime(P, &i->until, "period until") ||
	    obj_end(P, "period", "until"))
		return -1;
	if (member(P, "report", 0, "first") || lit(P, "{", "first") ||
	    member(P, "first", 1, "seq") || jnum(P, &i->first, "first seq") ||
	    member(P, "first", 0, "prev") ||
	    jhash(P, i->first_prev, "first prev") ||
	    member(P, "first", 0, "hash") ||
	    jhash(P, i->first_hash, "first hash") ||
	    obj_end(P, "first", "hash"))
		return -1;
	if (member(P, "report", 0, "last") || lit(P, "{", "last") ||
	    member(P, "last", 1, "seq") || jnum(P, &i->last, "last seq") ||
	    member(P, "last", 0, "hash") ||
	    jhash(P, i->last_hash, "last hash") ||
	    obj_end(P, "last", "hash"))
		return -1;
	if (member(P, "report", 0, "count") || jnum(P, &i->count, "count") ||
	    member(P, "report", 0, "previous-export"))
		return -1;
	c = peekc(P);
	if (c == 'n') {
		if (lit(P, "null", "previous-export"))
			return -1;
	} else {
		const char *o = "previous-export";

		if (lit(P, "{", o) || member(P, o, 1, "event") ||
		    jnum(P, &i->prev_event, "previous-export event") ||
		    member(P, o, 0, "report") ||
		    jstr_to(P, i->prev_report, sizeof(i->prev_report),
			    "previous-export report") ||
		    member(P, o, 0, "sha256") ||
		    jhash(P, i->prev_sha256, "previous-export sha256") ||
		    member(P, o, 0, "last-seq") ||
		    jnum(P, &i->prev_last, "previous-export last-seq") ||
		    member(P, o, 0, "last-hash") ||
		    jhash(P, i->prev_last_hash, "previous-export last-hash") ||
		    obj_end(P, o, "last-hash"))
			return -1;
		if (!i->prev_report[0] || i->prev_last == 0 ||
		    i->prev_event <= i->prev_last)
			return layout(P, "previous-export: empty report name, "
				      "last-seq 0, or an event not after "
				      "last-seq");
		i->has_previous = 1;
	}
	if (member(P, "report", 0, "events") || lit(P, "[\n", "events"))
		return -1;
	/* What the header says must hang together before any event. */
	if (i->first == 0 || i->last < i->first ||
	    i->count != i->last - i->first + 1)
		return broken(P, "header: first %" PRIu64 ", last %" PRIu64
			      " and count %" PRIu64 " do not agree",
			      i->first, i->last, i->count);
	if (i->since > i->until || i->until > i->exported)
		return broken(P, "header: the period does not lie before the "
			      "export time (since <= until <= exported)");
	if ((i->first == 1) !=
	    (strcmp(i->first_prev, STN_CANON_GENESIS) == 0))
		return broken(P, "header: only event 1 has the chain start "
			      "(64 zeros) as its prev");
	return 0;
}

/* ---- identity: the signed records of formats §9 ---- */

static void id_attest_free(struct id_attest *a)
{
	free(a->session);
	free(a->device);
	free(a->chain);
}

static void id_fini(struct id_state *s)
{
	for (size_t k = 0; k < s->n; k++)
		id_attest_free(&s->v[k]);
	for (size_t k = 0; k < s->nstarted; k++)
		free(s->started[k]);
	free(s->v);
	free(s->started);
	memset(s, 0, sizeof(*s));
}

/* The newest attestation of this session and device, or NULL. */
static struct id_attest *id_find(struct id_state *s, const char *session,
				 const char *device)
{
	for (size_t k = s->n; k-- > 0;)
		if (strcmp(s->v[k].session, session) == 0 &&
		    strcmp(s->v[k].device, device) == 0)
			return &s->v[k];
	return NULL;
}

static void id_drop(struct id_state *s, size_t k)
{
	id_attest_free(&s->v[k]);
	memmove(&s->v[k], &s->v[k + 1], (s->n - k - 1) * sizeof(s->v[0]));
	s->n--;
}

static int id_started(const struct id_state *s, const char *session)
{
	for (size_t k = s->nstarted; k-- > 0;)
		if (strcmp(s->started[k], session) == 0)
			return 1;
	return 0;
}

/* Session start and end: what the session's identity events may rely on. */
static int id_session(struct id_state *s, const char *session, int start)
{
	char **v;

	if (!start) {
		for (size_t k = s->n; k-- > 0;)
			if (strcmp(s->v[k].session, session) == 0)
				id_drop(s, k);
		for (size_t k = s->nstarted; k-- > 0;)
			if (strcmp(s->started[k], session) == 0) {
				free(s->started[k]);
				s->started[k] = s->started[--s->nstarted];
			}
		return 0;
	}
	if (s->nstarted == ID_OPEN_MAX) {
		free(s->started[0]);
		memmove(&s->started[0], &s->started[1],
			(s->nstarted - 1) * sizeof(s->started[0]));
		s->nstarted--;
	}
	v = realloc(s->started, (s->nstarted + 1) * sizeof(*v));
	if (!v)
		return -1;
	s->started = v;
	if (!(v[s->nstarted] = strdup(session)))
		return -1;
	s->nstarted++;
	return 0;
}

/* The value of a record's top-level key, or "" (so comparisons fail). */
static const char *rec_get(const struct cu_record *r, const char *key)
{
	const char *v = cu_section_get(cu_record_section(r, 0), key);

	return v ? v : "";
}

/* A field the event must carry to be checked. */
static const char *need(struct parser *P, const struct stn_event *e,
			const char *key)
{
	const char *v = stn_ev_field(e, key);

	if (!v || !v[0])
		broken(P, "event %" PRIu64 " (%s): field %s is missing, so its "
		       "signed record cannot be checked", e->seq, e->type, key);
	return v && v[0] ? v : NULL;
}

/* Parses e's `record` as a §1 text record of `format`. */
static int id_record(struct parser *P, const struct stn_event *e,
		     const char *format, struct cu_record **r)
{
	const char *text = need(P, e, "record");
	struct stn_diag d;

	if (!text)
		return -1;
	stn_diag_init(&d);
	if (cu_record_parse(text, strlen(text), "record", r, &d) != 0)
		return broken(P, "event %" PRIu64 " (%s): its record is not a "
			      "text record: %s", e->seq, e->type, d.text);
	if (strcmp(rec_get(*r, "format"), format) != 0)
		return broken(P, "event %" PRIu64 " (%s): its record's format "
			      "is \"%.64s\", not %s", e->seq, e->type,
			      rec_get(*r, "format"), format);
	return 0;
}

/* e's `sig` over e's `record` with the first certificate of `chain`
 * (`whose` says where the chain comes from). */
static int id_sig(struct parser *P, const struct stn_event *e,
		  const char *chain, const char *whose)
{
	const char *rec = need(P, e, "record"), *b64 = need(P, e, "sig");
	uint8_t sig[CU_SIG_MAX];
	struct stn_diag d;
	size_t len;

	if (!rec || !b64)
		return -1;
	if (stn_b64_decode(b64, strlen(b64), sig, sizeof(sig), &len) != 0)
		return broken(P, "event %" PRIu64 " (%s): sig is not base64 of "
			      "at most %d bytes", e->seq, e->type, CU_SIG_MAX);
	stn_diag_init(&d);
	if (cu_devid_sig_check(chain, rec, strlen(rec), sig, len, &d) != 0)
		return broken(P, "event %" PRIu64 " (%s): the signature of its "
			      "record does not verify with the first "
			      "certificate of %s: %s", e->seq, e->type, whose,
			      d.text);
	P->id_checked++;
	return 0;
}

/* What the report shows (`what`, e.g. "field nonce") must be what the
 * signed record says. */
static int same(struct parser *P, const struct stn_event *e, const char *what,
		const char *shown, const char *signed_as)
{
	if (shown && strcmp(shown, signed_as) == 0)
		return 0;
	return broken(P, "event %" PRIu64 " (%s): %s is \"%.80s\" but its "
		      "signed record says \"%.80s\"", e->seq, e->type, what,
		      shown ? shown : "(missing)", signed_as);
}

/* A device-attested event whose result is proven: the device's
 * signature with its own chain, the record's serial, nonce and challenge
 * as shown, the certificate's one serialNumber the record's serial. */
static int id_attested(struct parser *P, const struct stn_event *e)
{
	const char *chain = need(P, e, "chain"), *serial = need(P, e, "serial");
	const char *device = need(P, e, "device");
	struct cu_record *r = NULL;
	struct cu_cert_facts c;
	struct id_attest *a;
	struct stn_diag d;
	int rc = -1;

	if (!chain || !serial || !device ||
	    id_sig(P, e, chain, "its own chain") ||
	    id_record(P, e, "station-attest-1", &r))
		goto out;
	if (same(P, e, "field serial", serial, rec_get(r, "serial")) ||
	    same(P, e, "field nonce", stn_ev_field(e, "nonce"),
		 rec_get(r, "nonce")) ||
	    same(P, e, "field challenge", stn_ev_field(e, "challenge"),
		 rec_get(r, "challenge")))
		goto out;
	stn_diag_init(&d);
	if (cu_cert_facts_pem(chain, "chain", &c, &d) != 0) {
		broken(P, "event %" PRIu64 " (%s): its chain: %s", e->seq,
		       e->type, d.text);
		goto out;
	}
	if (c.nserial_numbers != 1 || strcmp(c.serial_number, serial) != 0) {
		broken(P, "event %" PRIu64 " (%s): the device certificate (%s) "
		       "does not carry exactly one serialNumber %.80s",
		       e->seq, e->type, c.subject, serial);
		goto out;
	}
	if (strlen(rec_get(r, "nonce")) != 2 * CU_NONCE_LEN ||
	    strlen(rec_get(r, "challenge")) != 2 * CU_NONCE_LEN) {
		broken(P, "event %" PRIu64 " (%s): nonce and challenge are not "
		       "%d hex digits each", e->seq, e->type, 2 * CU_NONCE_LEN);
		goto out;
	}
	if ((a = id_find(&P->id, e->session, device)))
		id_drop(&P->id, (size_t)(a - P->id.v));
	if (P->id.n == ID_OPEN_MAX)
		id_drop(&P->id, 0);
	a = realloc(P->id.v, (P->id.n + 1) * sizeof(*a));
	if (!a) {
		broken(P, "out of memory");
		goto out;
	}
	P->id.v = a;
	a = &P->id.v[P->id.n];
	memset(a, 0, sizeof(*a));
	a->session = strdup(e->session);
	a->device = strdup(device);
	a->chain = strdup(chain);
	if (!a->session || !a->device || !a->chain) {
		id_attest_free(a);
		broken(P, "out of memory");
		goto out;
	}
	snprintf(a->serial, sizeof(a->serial), "%s", serial);
	memcpy(a->nonce, rec_get(r, "nonce"), sizeof(a->nonce));
	memcpy(a->challenge, rec_get(r, "challenge"), sizeof(a->challenge));
	a->seq = e->seq;
	P->id.n++;
	rc = 0;
out:
	cu_record_free(r);
	return rc;
}

/* The attestation a receipt or an authorization is bound to.  None found:
 * a failure when the session started in this report (its attestation
 * would be here), else *a = NULL and the event is counted unchecked (its
 * attestation is in an earlier report). */
static int id_bound(struct parser *P, const struct stn_event *e,
		    const char *device, struct id_attest **a)
{
	*a = id_find(&P->id, e->session, device);
	if (*a)
		return 0;
	if (id_started(&P->id, e->session))
		return broken(P, "event %" PRIu64 " (%s): no device-attested "
			      "event with result proven for device %.200s "
			      "precedes it in its session", e->seq, e->type,
			      device);
	if (!P->id_unchecked++)
		P->id_first_unchecked = e->seq;
	return 0;
}

/* formats §9 station-install-1: signed by a station-role certificate of
 * this report's station (its CN is the station id), bound to the
 * attested device and its challenge. */
static int id_authorized(struct parser *P, const struct stn_event *e)
{
	const char *chain = need(P, e, "chain"), *device = need(P, e, "device");
	const char *serial = need(P, e, "serial");
	const char *issued = need(P, e, "issued");
	struct cu_record *r = NULL;
	struct cu_signer signer;
	struct id_attest *a;
	struct stn_diag d;
	int64_t at;
	int rc = -1;

	if (!chain || !device || !serial || !issued)
		goto out;
	if (cu_time_parse(issued, &at) != 0) {
		broken(P, "event %" PRIu64 " (%s): issued is not an RFC 3339 "
		       "UTC time", e->seq, e->type);
		goto out;
	}
	stn_diag_init(&d);
	if (P->t && cu_cert_check_pem(P->t, chain, "chain", CU_ROLE_STATION,
				      at, &signer, &d) != 0) {
		broken(P, "event %" PRIu64 " (%s): its chain is not a station "
		       "certificate the trust anchors accept at %s: %s",
		       e->seq, e->type, issued, d.text);
		goto out;
	}
	if (P->t && strcmp(signer.cn, P->info->station) != 0) {
		broken(P, "event %" PRIu64 " (%s): authorized by station CN "
		       "%s, but the report is for station %.200s", e->seq,
		       e->type, signer.cn, P->info->station);
		goto out;
	}
	if (id_sig(P, e, chain, "its own (the station's) chain") ||
	    id_record(P, e, "station-install-1", &r))
		goto out;
	if (same(P, e, "the report's station id", P->info->station,
		 rec_get(r, "station")) ||
	    same(P, e, "field serial (the record's device)", serial,
		 rec_get(r, "device")) ||
	    same(P, e, "field challenge", stn_ev_field(e, "challenge"),
		 rec_get(r, "challenge")) ||
	    same(P, e, "field bundle", stn_ev_field(e, "bundle"),
		 rec_get(r, "bundle")) ||
	    same(P, e, "field issued", issued, rec_get(r, "issued")) ||
	    same(P, e, "field expires", stn_ev_field(e, "expires"),
		 rec_get(r, "expires")) ||
	    id_bound(P, e, device, &a))
		goto out;
	if (a && (strcmp(rec_get(r, "device"), a->serial) != 0 ||
		  strcmp(rec_get(r, "challenge"), a->challenge) != 0)) {
		broken(P, "event %" PRIu64 " (%s): it authorizes device %.80s "
		       "with challenge %.64s, but event %" PRIu64 " attested "
		       "%.80s with challenge %.64s", e->seq, e->type,
		       rec_get(r, "device"), rec_get(r, "challenge"), a->seq,
		       a->serial, a->challenge);
		goto out;
	}
	rc = 0;
out:
	cu_record_free(r);
	return rc;
}

/* formats §9 station-receipt-1: signed by the attested device's key, for
 * this session's nonce and challenge.  Receipts the station itself found
 * unsigned or malformed prove nothing and are not checked. */
static int id_receipt(struct parser *P, const struct stn_event *e)
{
	const char *result = stn_ev_field(e, "result");
	const char *device = need(P, e, "device");
	struct cu_record *r = NULL;
	struct id_attest *a;
	char whose[80];
	int rc = -1;

	if (!result || (strcmp(result, "matches") != 0 &&
			strcmp(result, "differs") != 0))
		return 0;
	if (!device || id_bound(P, e, device, &a))
		goto out;
	if (!a) {
		rc = 0;
		goto out;
	}
	snprintf(whose, sizeof(whose), "the device chain of event %" PRIu64,
		 a->seq);
	if (id_sig(P, e, a->chain, whose) ||
	    id_record(P, e, "station-receipt-1", &r))
		goto out;
	if (same(P, e, "field serial (the attested device)",
		 stn_ev_field(e, "serial"), a->serial))
		goto out;
	if (strcmp(rec_get(r, "device"), a->serial) != 0 ||
	    strcmp(rec_get(r, "nonce"), a->nonce) != 0 ||
	    strcmp(rec_get(r, "challenge"), a->challenge) != 0) {
		broken(P, "event %" PRIu64 " (%s): its record is for device "
		       "%.80s, nonce %.64s, challenge %.64s; event %" PRIu64
		       " attested %.80s with nonce %.64s, challenge %.64s",
		       e->seq, e->type, rec_get(r, "device"),
		       rec_get(r, "nonce"), rec_get(r, "challenge"), a->seq,
		       a->serial, a->nonce, a->challenge);
		goto out;
	}
	/* A receipt that matches: what the report shows of the stored image
	 * is what the device signed. */
	if (strcmp(result, "matches") == 0 &&
	    (same(P, e, "field slot", stn_ev_field(e, "slot"),
		  rec_get(r, "slot")) ||
	     same(P, e, "field size", stn_ev_field(e, "size"),
		  rec_get(r, "size")) ||
	     same(P, e, "field sha256", stn_ev_field(e, "sha256"),
		  rec_get(r, "sha256"))))
		goto out;
	rc = 0;
out:
	cu_record_free(r);
	return rc;
}

/* The identity checks of one event that verified as part of the chain. */
static int id_event(struct parser *P, const struct stn_event *e)
{
	const char *result;

	if (stn_ev_is(e->type, STN_EV_SESSION_START) ||
	    stn_ev_is(e->type, STN_EV_SESSION_END)) {
		if (id_session(&P->id, e->session,
			       stn_ev_is(e->type, STN_EV_SESSION_START)))
			return broken(P, "out of memory");
		return 0;
	}
	if (stn_ev_is(e->type, STN_EV_DEVICE_ATTESTED)) {
		result = stn_ev_field(e, "result");
		if (result && strcmp(result, "proven") == 0)
			return id_attested(P, e);
		/* A later attempt that failed: nothing may ride on an
		 * earlier proof. */
		if (stn_ev_field(e, "device")) {
			struct id_attest *a = id_find(
				&P->id, e->session, stn_ev_field(e, "device"));

			if (a)
				id_drop(&P->id, (size_t)(a - P->id.v));
		}
		return 0;
	}
	if (stn_ev_is(e->type, STN_EV_INSTALL_AUTHORIZED))
		return id_authorized(P, e);
	if (stn_ev_is(e->type, STN_EV_IMAGE_RECEIPT))
		return id_receipt(P, e);
	return 0;
}

static int check_event(struct parser *P, uint64_t seq, int64_t time,
		       size_t type_off, size_t session_off, size_t nf,
		       const char *prev, const char *hash, size_t body_off,
		       size_t body_len)
{
	struct stn_report_info *i = P->info;
	const char *body = P->a.p + body_off;
	struct stn_event e = {0};
	struct stn_diag bd;
	char calc[RPT_HASH_LEN + 1];
	size_t ends[STN_CANON_PARTS];
	enum stn_canon_part part;

	for (size_t k = 0; k < nf; k++) {
		P->fields[k].key = P->a.p + P->foff[2 * k];
		P->fields[k].value = P->a.p + P->foff[2 * k + 1];
	}
	e.seq = seq;
	e.time = time;
	e.type = P->a.p + type_off;
	e.session = P->a.p + session_off;
	e.fields = P->fields;
	e.nfields = nf;
	e.prev = prev;
	e.hash = hash;
	e.body = body;

	/* In this order: a removed or moved event shows as a gap, an edited
	 * body as a bad hash, a recomputed hash at the next prev, an edited
	 * readable field against the body. */
	if (P->n == 0 && seq != i->first)
		return broken(P, "event %" PRIu64 ": the header says the first "
			      "event is %" PRIu64, seq, i->first);
	if (P->n && seq != P->next)
		return broken(P, "event %" PRIu64 " follows event %" PRIu64
			      ": events must run on without a gap (one was "
			      "removed, moved or renumbered)",
			      seq, P->next - 1);
	if (P->n == 0 && strcmp(prev, i->first_prev) != 0)
		return broken(P, "event %" PRIu64 ": prev is not the first "
			      "prev the header states", seq);
	if (P->n && strcmp(prev, P->prev) != 0)
		return broken(P, "event %" PRIu64 ": prev does not name event "
			      "%" PRIu64, seq, seq - 1);
	if (stn_canon_hash(prev, body, body_len, calc) != 0)
		return broken(P, "out of memory");
	if (strcmp(calc, hash) != 0)
		return broken(P, "event %" PRIu64 ": hash does not match its "
			      "body", seq);
	stn_diag_init(&bd);
	if (stn_canon_check("event", time, e.type, e.session, e.fields, nf,
			    &bd) != 0)
		return broken(P, "event %" PRIu64 ": %s", seq, bd.text);
	stn_canon_body_build(&P->rebuilt, seq, time, e.type, e.session,
			     e.fields, nf, ends);
	if (P->rebuilt.oom)
		return broken(P, "out of memory");
	part = stn_canon_body_diff(P->rebuilt.p, P->rebuilt.len, ends, body,
				   body_len);
	if (part != STN_CANON_PARTS)
		return broken(P, "event %" PRIu64 ": its body does not match "
			      "the %s shown for it", seq,
			      stn_canon_part_name(part));
	/* Where this report reaches the previous export's last event, the
	 * hash that export recorded must be there. */
	if (i->has_previous && seq == i->prev_last &&
	    strcmp(hash, i->prev_last_hash) != 0)
		return broken(P, "event %" PRIu64 ": hash is not the one the "
			      "previous export (%.200s) recorded for its last "
			      "event", seq, i->prev_report);
	if (i->has_previous && seq == i->prev_last + 1 &&
	    strcmp(prev, i->prev_last_hash) != 0)
		return broken(P, "event %" PRIu64 ": prev is not the last hash "
			      "of the previous export (%.200s), which ended "
			      "at event %" PRIu64, seq, i->prev_report,
			      i->prev_last);
	if (P->want_set && seq == P->want + 1) {
		memcpy(P->want_hash, prev, RPT_HASH_LEN + 1);
		P->want_found = 1;
	}
	if (P->want_set && seq == P->want) {
		memcpy(P->want_hash, hash, RPT_HASH_LEN + 1);
		P->want_found = 1;
	}
	/* The previous export journaled itself after writing its report;
	 * where this report holds that event, it must say what the header
	 * says about that export. */
	if (i->has_previous && seq == i->prev_event) {
		struct rpt_prev x = {0};

		rpt_take_prev(&x, &e);
		if (strcmp(e.type, STN_REPORT_EVENT) != 0 || x.bad ||
		    strcmp(x.report, i->prev_report) != 0 ||
		    strcmp(x.sha256, i->prev_sha256) != 0 ||
		    x.last != i->prev_last ||
		    strcmp(x.last_hash, i->prev_last_hash) != 0)
			return broken(P, "event %" PRIu64 " is not the "
				      STN_REPORT_EVENT " event of the previous "
				      "export the header names", seq);
	}
	if (P->n == 0) {
		P->first_time = time;
		memcpy(P->first_hash, hash, RPT_HASH_LEN + 1);
	}
	P->last_time = time;
	P->n++;
	P->next = seq + 1;
	memcpy(P->prev, hash, RPT_HASH_LEN + 1);
	if (id_event(P, &e) != 0)
		return -1;
	if (rpt_sessions_add(&P->ss, &e) != 0)
		return broken(P, "out of memory listing sessions");
	return 0;
}

static int parse_event(struct parser *P)
{
	char what[48], prev[RPT_HASH_LEN + 1], hash[RPT_HASH_LEN + 1];
	size_t type_off, session_off, body_off, nf = 0, off;
	uint64_t seq;
	int64_t time;
	int c;

	P->a.len = 0;
	snprintf(what, sizeof(what), "event %" PRIu64, P->n + 1);
	if (lit(P, "{", what) || member(P, what, 1, "seq") ||
	    jnum(P, &seq, what))
		return -1;
	snprintf(what, sizeof(what), "event %" PRIu64, seq);
	if (member(P, what, 0, "time"))
		return -1;
	{
		char ts[CU_TIME_LEN + 2];
		size_t keep = P->a.len;

		if (jstr(P, sizeof(ts) - 1, what, &off))
			return -1;
		memcpy(ts, P->a.p + off, strlen(P->a.p + off) + 1);
		P->a.len = keep;
		if (cu_time_parse(ts, &time) != 0)
			return layout(P, "%s: time \"%s\" is not RFC 3339 UTC",
				      what, ts);
	}
	if (member(P, what, 0, "type") ||
	    jstr(P, STN_REPORT_STRING_MAX, what, &type_off) ||
	    member(P, what, 0, "session") ||
	    jstr(P, STN_REPORT_STRING_MAX, what, &session_off) ||
	    member(P, what, 0, "fields") || lit(P, "{", what))
		return -1;
	if (peekc(P) == '}') {
		nextc(P);
	} else {
		for (;;) {
			if (nf == STN_REPORT_FIELDS_MAX)
				return layout(P, "%s: more than %d fields", what,
					      STN_REPORT_FIELDS_MAX);
			if (jstr(P, 32, what, &P->foff[2 * nf]))
				return -1;
			if (!stn_canon_key_ok(P->a.p + P->foff[2 * nf]))
				return layout(P, "%s: field key \"%s\" is not "
					      "[a-z][a-z0-9-]{0,31}", what,
					      P->a.p + P->foff[2 * nf]);
			for (size_t k = 0; k < nf; k++)
				if (strcmp(P->a.p + P->foff[2 * k],
					   P->a.p + P->foff[2 * nf]) == 0)
					return layout(P, "%s: field \"%s\" "
						      "appears twice", what,
						      P->a.p + P->foff[2 * k]);
			if (lit(P, ":", what) ||
			    jstr(P, STN_REPORT_STRING_MAX, what,
				 &P->foff[2 * nf + 1]))
				return -1;
			nf++;
			c = nextc(P);
			if (c == '}')
				break;
			if (c != ',')
				return layout(P, "%s: expected `,` or `}` in "
					      "fields", what);
		}
	}
	if (member(P, what, 0, "prev") || jhash(P, prev, what))
		return -1;
	if (member(P, what, 0, "hash") || jhash(P, hash, what))
		return -1;
	if (member(P, what, 0, "body") ||
	    jstr(P, STN_REPORT_STRING_MAX, what, &body_off) ||
	    obj_end(P, what, "body"))
		return -1;
	return check_event(P, seq, time, type_off, session_off, nf, prev,
			   hash, body_off, strlen(P->a.p + body_off));
}

static int parse_report(struct parser *P)
{
	struct stn_report_info *i = P->info;
	int c;

	if (parse_header(P))
		return -1;
	for (;;) {
		if (parse_event(P))
			return -1;
		c = nextc(P);
		if (c == ',') {
			if (lit(P, "\n", "events"))
				return -1;
			continue;
		}
		if (c != '\n' || lit(P, "]}\n", "report"))
			return layout(P, "events: expected `,` and a new line "
				      "between events, or `\\n]}\\n` at the end");
		break;
	}
	if (peekc(P) >= 0)
		return layout(P, "bytes after the end of the report");
	if (P->n != i->count)
		return broken(P, "the header counts %" PRIu64 " events; the "
			      "report holds %" PRIu64 " (first %" PRIu64
			      ", last %" PRIu64 ")",
			      i->count, P->n, i->first, P->next - 1);
	if (strcmp(P->first_hash, i->first_hash) != 0)
		return broken(P, "header: the first hash is not event %" PRIu64
			      "'s hash", i->first);
	if (strcmp(P->prev, i->last_hash) != 0)
		return broken(P, "header: the last hash is not event %" PRIu64
			      "'s hash", i->last);
	if (P->first_time < i->since || P->last_time > i->until)
		return broken(P, "the first or last event lies outside the "
			      "period the header states");
	return 0;
}

/* One pass over the open file from its start, the header only or the
 * whole report, hashing every byte to the end either way. */
static int read_pass(struct parser *P, int whole,
		     uint8_t digest[CU_SHA256_LEN], struct stn_diag *d)
{
	int rc;

	if (lseek(P->fd, 0, SEEK_SET) != 0)
		return stn_fail(d, STN_E_IO, P->path, "cannot seek: %s",
				strerror(errno));
	P->line = 1;
	P->buf = malloc(RPT_IO_CHUNK);
	P->h = cu_sha256_new();
	if (!P->buf || !P->h)
		return stn_fail(d, STN_E_NOMEM, P->path,
				"cannot read the report");
	(void)(whole ? parse_report(P) : parse_header(P));
	drain(P);
	if (P->eno)
		return stn_fail(d, STN_E_IO, P->path, "cannot read: %s",
				strerror(P->eno));
	if (P->toobig)
		return stn_fail(d, STN_E_TOOBIG, P->path,
				"more than %lld bytes",
				(long long)STN_REPORT_MAX);
	if ((rc = P->hrc) || (rc = cu_sha256_final(P->h, digest)))
		return stn_fail(d, rc, P->path, "cannot hash: %s",
				stn_strerror(rc));
	return 0;
}

static void parser_fini(struct parser *P);
static struct parser *parser_new(struct stn_report_info *info);

/* A missing .sig or .pem is an unsigned report: STN_E_SIGNATURE. */
static int unsigned_report(const char *path, struct stn_diag *d)
{
	struct stat st;

	if (lstat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR))
		return 0;
	return stn_fail(d, STN_E_SIGNATURE, path,
			"missing: the report is not signed (formats §2: "
			"REPORT.json.sig and .pem lie beside it)");
}

/*
 * Whose report first, what it says second.  Pass 1 reads the header (a
 * few KiB) and hashes the file; the signature, role, chain and CN are
 * checked on that digest, so an unsigned file costs a hash and nothing it
 * says is held.  Pass 2 parses everything and must hash to the same
 * digest, or the file changed under us.
 */
static int verify_file(const struct cu_trust *t, const char *path,
		       struct parser *P, struct stn_diag *d)
{
	struct stn_report_info *i = P->info, *hi = NULL;
	struct parser *H = NULL;
	struct cu_signer signer;
	char sigp[4300], pemp[4300];
	uint8_t d1[CU_SHA256_LEN], d2[CU_SHA256_LEN];
	struct stat st;
	int64_t at;
	int rc;

	snprintf(i->path, sizeof(i->path), "%s", path);
	if (snprintf(sigp, sizeof(sigp), "%s.sig", path) >= (int)sizeof(sigp) ||
	    snprintf(pemp, sizeof(pemp), "%s.pem", path) >= (int)sizeof(pemp))
		return stn_fail(d, STN_E_USAGE, path, "path too long");
	/* O_NONBLOCK: a FIFO planted as the report must not hang us. */
	P->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	/* No report, or a report without its signature: nothing signed to
	 * verify, which is a refusal (exit 1), not an I/O error a retry
	 * might cure. */
	if (P->fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return stn_fail(d, STN_E_SIGNATURE, path,
				"no report here (%s): nothing signed to "
				"verify", strerror(errno));
	if (P->fd < 0)
		return stn_fail(d, errno == ELOOP ? STN_E_UNSAFE : STN_E_IO,
				path, "cannot open the report: %s",
				errno == ELOOP ? "it is a symbolic link"
					       : strerror(errno));
	if (fstat(P->fd, &st) != 0)
		return stn_fail(d, STN_E_IO, path, "cannot stat: %s",
				strerror(errno));
	if (!S_ISREG(st.st_mode))
		return stn_fail(d, STN_E_UNSAFE, path,
				"the report is not a regular file");
	if (st.st_size > STN_REPORT_MAX)
		return stn_fail(d, STN_E_TOOBIG, path,
				"%lld bytes, more than a report may have "
				"(%lld)", (long long)st.st_size,
				(long long)STN_REPORT_MAX);
	P->path = path;
	P->t = t;
	if (unsigned_report(sigp, d) || unsigned_report(pemp, d))
		return d->code;

	hi = calloc(1, sizeof(*hi));
	H = hi ? parser_new(hi) : NULL;
	if (!H) {
		rc = stn_fail(d, STN_E_NOMEM, path, "verify");
		goto out;
	}
	H->fd = P->fd;
	H->path = path;
	rc = read_pass(H, 0, d1, d);
	if (rc)
		goto out;
	cu_hex(d1, sizeof(d1), i->sha256);
	/* At the time it was signed; a header too broken to say: now. */
	at = H->have_exported ? hi->exported : (int64_t)time(NULL);
	rc = cu_sig_verify(t, d1, sigp, pemp, CU_ROLE_STATION, at, &signer,
			   d);
	if (rc)
		goto out;
	snprintf(i->signer, sizeof(i->signer), "%s", signer.cn);
	if (H->have_station && strcmp(signer.cn, hi->station) != 0) {
		rc = stn_fail(d, STN_E_SIGNATURE, pemp,
			      "signed by station CN %s, but the report is for "
			      "station %.200s", signer.cn, hi->station);
		goto out;
	}
	if (H->failed) {
		*d = H->pd;
		rc = H->pd.code;
		goto out;
	}

	rc = read_pass(P, 1, d2, d);
	if (rc)
		goto out;
	if (memcmp(d1, d2, sizeof(d1)) != 0) {
		rc = stn_fail(d, STN_E_IO, path,
			      "the report changed while it was read");
		goto out;
	}
	if (P->failed) {
		*d = P->pd;
		rc = P->pd.code;
		goto out;
	}
	if (P->ss.oom) {
		rc = stn_fail(d, STN_E_NOMEM, path, "sessions");
		goto out;
	}
	i->unlisted = P->ss.unlisted;
	i->identity_checked = P->id_checked;
	i->identity_unchecked = P->id_unchecked;
	i->identity_first_unchecked = P->id_first_unchecked;
	if (i->has_previous && i->prev_last + 1 < i->first) {
		i->gap_first = i->prev_last + 1;
		i->gap_last = i->first - 1;
	}
out:
	if (H) {
		H->fd = -1; /* P's */
		parser_fini(H);
	}
	free(hi);
	return rc;
}

static void parser_fini(struct parser *P)
{
	if (P->fd >= 0)
		close(P->fd);
	free(P->buf);
	cu_sha256_free(P->h);
	free(P->a.p);
	free(P->rebuilt.p);
	rpt_sessions_free(&P->ss);
	id_fini(&P->id);
	free(P);
}

static struct parser *parser_new(struct stn_report_info *info)
{
	struct parser *P = calloc(1, sizeof(*P));

	if (!P)
		return NULL;
	P->fd = -1;
	P->info = info;
	stn_diag_init(&P->pd);
	return P;
}

void stn_report_info_free(struct stn_report_info *i)
{
	if (!i)
		return;
	free(i->sessions);
	free(i);
}

/* Continuity: earlier is the previous export later names, and later
 * starts where earlier ended (or overlaps it, with the same hashes). */
static int check_continuity(const struct stn_report_info *later,
			    const struct stn_report_info *earlier,
			    const struct parser *E, uint64_t *overlap,
			    struct stn_diag *d)
{
	const char *lp = later->path, *ep = earlier->path;

	if (!later->has_previous)
		return stn_fail(d, STN_E_CHAINBROKEN, lp,
				"names no previous export, so %s cannot be "
				"the report before it", ep);
	if (strcmp(earlier->sha256, later->prev_sha256) != 0)
		return stn_fail(d, STN_E_CHAINBROKEN, ep,
				"is not the previous export %s names (%.200s, "
				"SHA-256 %.16s...); this file's SHA-256 is "
				"%.16s...", lp, later->prev_report,
				later->prev_sha256, earlier->sha256);
	if (earlier->last != later->prev_last ||
	    strcmp(earlier->last_hash, later->prev_last_hash) != 0)
		return stn_fail(d, STN_E_CHAINBROKEN, ep,
				"ends at event %" PRIu64 " but %s says the "
				"previous export ended at event %" PRIu64
				" with another hash", earlier->last, lp,
				later->prev_last);
	if (later->first > earlier->last + 1)
		return stn_fail(d, STN_E_CHAINBROKEN, lp,
				"events %" PRIu64 "..%" PRIu64 " are in neither "
				"report: %s ends at event %" PRIu64 ", this one "
				"starts at event %" PRIu64,
				earlier->last + 1, later->first - 1, ep,
				earlier->last, later->first);
	if (!E->want_found)
		return stn_fail(d, STN_E_CHAINBROKEN, lp,
				"starts at event %" PRIu64 ", before %s "
				"(events %" PRIu64 "..%" PRIu64 "): not a later "
				"report", later->first, ep, earlier->first,
				earlier->last);
	if (strcmp(E->want_hash, later->first_prev) != 0)
		return stn_fail(d, STN_E_CHAINBROKEN, lp,
				"event %" PRIu64 ": prev is not event %" PRIu64
				"'s hash as %s holds it", later->first,
				later->first - 1, ep);
	*overlap = earlier->last + 1 - later->first;
	return 0;
}

/* Hands the session list over without a second copy: each entry's
 * stn_report_session moves down over the larger struct rpt_sess entries. */
static void take_sessions(struct stn_report_info *i, struct rpt_sessions *ss)
{
	struct stn_report_session *v = (struct stn_report_session *)ss->v, *p;

	_Static_assert(sizeof(struct rpt_sess) >= sizeof(struct stn_report_session),
		       "compaction moves entries down");
	if (!ss->n)
		return;
	for (size_t k = 0; k < ss->n; k++) {
		rpt_sess_final(&ss->v[k]);
		free(ss->v[k].page.p);
		memmove(&v[k], &ss->v[k].s, sizeof(v[k]));
	}
	p = realloc(v, ss->n * sizeof(*p));
	i->sessions = p ? p : v;
	i->nsessions = ss->n;
	free(ss->slot);
	memset(ss, 0, sizeof(*ss));
}

int rpt_parse_unsigned(int fd, const char *path, struct stn_diag *d)
{
	struct stn_report_info *info = calloc(1, sizeof(*info));
	struct parser *P = info ? parser_new(info) : NULL;
	uint8_t digest[CU_SHA256_LEN];
	int rc;

	if (!P) {
		free(info);
		return stn_fail(d, STN_E_NOMEM, path, "parse");
	}
	P->fd = fd;
	P->path = path;
	rc = read_pass(P, 1, digest, d);
	if (rc == 0 && P->failed) {
		*d = P->pd;
		rc = P->pd.code;
	}
	P->fd = -1; /* the caller's */
	parser_fini(P);
	free(info);
	return rc;
}

int stn_report_verify(const struct cu_trust *t, const char *path,
		      const char *earlier, struct stn_report_info **out,
		      struct stn_diag *d)
{
	struct stn_report_info *info = NULL, *einfo = NULL;
	struct parser *P = NULL, *E = NULL;
	uint64_t overlap = 0;
	int rc;

	if (!t || !path || !out)
		return stn_fail(d, STN_E_INTERNAL, "report",
				"verify: missing argument");
	info = calloc(1, sizeof(*info));
	P = parser_new(info);
	if (!info || !P) {
		rc = stn_fail(d, STN_E_NOMEM, path, "verify");
		goto out;
	}
	rc = verify_file(t, path, P, d);
	if (rc)
		goto out;
	if (earlier) {
		einfo = calloc(1, sizeof(*einfo));
		E = parser_new(einfo);
		if (!einfo || !E) {
			rc = stn_fail(d, STN_E_NOMEM, earlier, "verify");
			goto out;
		}
		E->want_set = 1;
		E->want = info->first - 1;
		rc = verify_file(t, earlier, E, d);
		if (rc)
			goto out;
		rc = check_continuity(info, einfo, E, &overlap, d);
		if (rc)
			goto out;
		info->earlier_checked = 1;
		info->overlap = overlap;
	}
	take_sessions(info, &P->ss);
	*out = info;
	info = NULL;
out:
	if (P)
		parser_fini(P);
	if (E)
		parser_fini(E);
	stn_report_info_free(info);
	stn_report_info_free(einfo);
	return rc;
}
