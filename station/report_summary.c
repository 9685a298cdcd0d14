/* station/report_summary.c: what a report's events say, for people.
 * Events are read into sessions (who did what, to which device, on whose
 * authority, with what result) from whatever fields they carry; the
 * export's readable summary and `report verify` show the same facts.
 * Every text is one line whatever a device or a bundle put in it. */
#include "station/report_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/rfc3339.h"
#include "station/canon.h"
#include "station/base/error.h"
#include "station/events.h"

/* A value shown in the readable summary is cut here; the JSON has it all. */
#define SUMMARY_VALUE_MAX 400

/* ---- one line of text ---- */

/* Appends s to b, at most max bytes of it, with control bytes as \xNN so
 * that a crafted value cannot start a fake line.  Returns where it
 * stopped in s (at its NUL when all of it went). */
static const char *line_escape(struct stn_buf *b, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	char esc[4] = {'\\', 'x', 0, 0};

	for (size_t n = 0; *p && n < max; p++, n++) {
		if (*p < 0x20 || *p == 0x7f) {
			esc[2] = hex[*p >> 4];
			esc[3] = hex[*p & 15];
			stn_buf_add(b, esc, 4);
		} else {
			stn_buf_add(b, p, 1);
		}
	}
	return (const char *)p;
}

/* Appends src to dst (capacity cap, NUL-terminated), after sep when dst is
 * not empty, escaped as one line; what does not fit is cut at a UTF-8
 * boundary and marked with "...". */
static void text_add(char *dst, size_t cap, const char *sep, const char *src)
{
	size_t len = strlen(dst), slen = len && sep ? strlen(sep) : 0;
	size_t room, n;
	struct stn_buf e = {0};

	if (len + slen + 1 >= cap)
		return;
	line_escape(&e, src, SIZE_MAX);
	if (e.oom)
		return;
	n = e.len;
	room = cap - 1 - len - slen;
	if (n > room) {
		if (room < 4) {
			free(e.p);
			return;
		}
		n = room - 3;
		while (n > 0 && ((unsigned char)e.p[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst + len, sep ? sep : "", slen);
	len += slen;
	memcpy(dst + len, e.p ? e.p : "", n);
	len += n;
	if (n < e.len) {
		memcpy(dst + len, "...", 3);
		len += 3;
	}
	dst[len] = '\0';
	free(e.p);
}

static void text_set(char *dst, size_t cap, const char *src)
{
	dst[0] = '\0';
	text_add(dst, cap, NULL, src);
}

/* A value as one printable line of at most max bytes of it; a longer one
 * is cut (never inside a UTF-8 sequence) and says how long it was. */
static void buf_line_value(struct stn_buf *b, const char *s, size_t max)
{
	if (!*line_escape(b, s, max))
		return;
	while (b->len && ((unsigned char)b->p[b->len - 1] & 0xc0) == 0x80)
		b->len--;
	if (b->len && ((unsigned char)b->p[b->len - 1] & 0xc0) == 0xc0)
		b->len--;
	if (b->p)
		b->p[b->len] = '\0';
	stn_buf_fmt(b, "... (%zu bytes in all)", strlen(s));
}

/* ---- sessions: who did what, on whose authority, with what result ---- */

static const char *fv(const struct stn_event *e, const char *key)
{
	for (size_t i = 0; i < e->nfields; i++)
		if (strcmp(e->fields[i].key, key) == 0)
			return e->fields[i].value;
	return NULL;
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ends(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

void rpt_sessions_free(struct rpt_sessions *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		free(ss->v[i].page.p);
	free(ss->v);
	free(ss->slot);
	memset(ss, 0, sizeof(*ss));
}

/* FNV-1a: ids are the station's random hex or whatever a test wrote. */
static size_t id_hash(const char *id)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * UINT64_C(1099511628211);
	return (size_t)h;
}

static size_t *slot_of(const struct rpt_sessions *ss, const char *id)
{
	size_t mask = ss->nslot - 1, i = id_hash(id) & mask;

	while (ss->slot[i] && strcmp(ss->v[ss->slot[i] - 1].s.id, id) != 0)
		i = (i + 1) & mask;
	return &ss->slot[i];
}

static int slots_grow(struct rpt_sessions *ss)
{
	size_t n = ss->nslot ? 2 * ss->nslot : 256, *old = ss->slot;
	size_t oldn = ss->nslot;

	ss->slot = calloc(n, sizeof(*ss->slot));
	if (!ss->slot) {
		ss->slot = old;
		return -1;
	}
	ss->nslot = n;
	for (size_t i = 0; i < oldn; i++)
		if (old[i])
			*slot_of(ss, ss->v[old[i] - 1].s.id) = old[i];
	free(old);
	return 0;
}

static struct rpt_sess *sess_find(struct rpt_sessions *ss, const char *full)
{
	char id[sizeof(ss->v[0].s.id)];
	struct rpt_sess *v;
	size_t *slot;

	/* Sessions are told apart by the id as shown (cut and escaped); the
	 * station's own ids are 32 hex digits, far below the cut. */
	text_set(id, sizeof(id), full);
	if (ss->n && strcmp(ss->v[ss->hint].s.id, id) == 0)
		return &ss->v[ss->hint];
	if ((ss->n + 1) * 2 > ss->nslot && slots_grow(ss) != 0) {
		ss->oom = 1;
		return NULL;
	}
	slot = slot_of(ss, id);
	if (*slot) {
		ss->hint = *slot - 1;
		return &ss->v[ss->hint];
	}
	/* Memory follows the number of sessions: past the cap they are
	 * counted, not listed. */
	if (ss->n >= STN_REPORT_SESSIONS_MAX)
		return NULL;
	if (ss->n == ss->cap) {
		size_t cap = ss->cap ? 2 * ss->cap : 64;

		v = realloc(ss->v, cap * sizeof(*v));
		if (!v) {
			ss->oom = 1;
			return NULL;
		}
		ss->v = v;
		ss->cap = cap;
	}
	v = &ss->v[ss->n];
	memset(v, 0, sizeof(*v));
	memcpy(v->s.id, id, sizeof(id));
	*slot = ss->n + 1;
	ss->hint = ss->n++;
	return v;
}

/* The result line: a later, more final outcome replaces an earlier one
 * (a verified bundle that is then installed shows as installed). */
static void sess_result(struct rpt_sess *x, int rank, const char *text)
{
	if (rank < x->rank)
		return;
	x->rank = rank;
	text_set(x->s.result, sizeof(x->s.result), text);
}

/* A final outcome.  One session may install on several devices, so each
 * outcome is kept, named by the device's serial when the event has one. */
static void sess_outcome(struct rpt_sess *x, const char *serial, const char *text)
{
	char one[800];

	if (serial && serial[0])
		snprintf(one, sizeof(one), "%.80s: %.700s", serial, text);
	else
		snprintf(one, sizeof(one), "%.700s", text);
	if (x->rank < 3) {
		x->rank = 3;
		text_set(x->s.result, sizeof(x->s.result), one);
	} else {
		text_add(x->s.result, sizeof(x->s.result), "; ", one);
	}
}

/* Once all its events are seen: an install that started and has no
 * outcome is said so, even when another device's outcome is known. */
void rpt_sess_final(struct rpt_sess *x)
{
	if (x->rank == 3 && x->started > x->ended_installs) {
		text_add(x->s.result, sizeof(x->s.result), "; ",
			 "an install started without an outcome");
		x->ended_installs = x->started;
	}
}

static void sess_device(struct stn_report_session *s, const struct stn_event *e)
{
	const char *serial = fv(e, "serial"), *model = fv(e, "model");
	const char *hw = fv(e, "hardware");
	char one[200];

	if (!serial || !serial[0] || strstr(s->device, serial))
		return;
	snprintf(one, sizeof(one), "%.80s%s%.40s%s%.40s", serial,
		 model ? " " : "", model ? model : "",
		 hw && strcmp(hw, "-") ? " " : "",
		 hw && strcmp(hw, "-") ? hw : "");
	text_add(s->device, sizeof(s->device), "; ", one);
}

/* "k=v, k=v" of every field but those shown elsewhere, for event types
 * this file does not know in detail (custody and token events). */
static void fields_line(const struct stn_event *e, char *out, size_t cap)
{
	static const char *const skip[] = {"bundle", "name", "version",
					   "serial", "dir", NULL};
	char one[320];

	out[0] = '\0';
	for (size_t i = 0; i < e->nfields; i++) {
		int shown = 0;

		for (size_t k = 0; skip[k]; k++)
			shown |= strcmp(e->fields[i].key, skip[k]) == 0;
		if (shown)
			continue;
		snprintf(one, sizeof(one), "%.32s=%.280s", e->fields[i].key,
			 e->fields[i].value);
		text_add(out, cap, ", ", one);
	}
}

/* formats §9, per device: who proved it is which unit (the certificate
 * and the CA that issued it), who authorized the install, and what the
 * device signed for.  As the events say it; `report verify` checks the
 * signatures behind them (docs/auditor.md). */
static void sess_identity(struct stn_report_session *s,
			  const struct stn_event *e)
{
	const char *t = e->type, *serial = fv(e, "serial"), *v;
	const char *why = fv(e, "reason");
	char line[700];

	if (!serial)
		serial = "?";
	if (stn_ev_is(t, STN_EV_DEVICE_ATTESTED)) {
		v = fv(e, "result");
		if (v && strcmp(v, "proven") == 0) {
			const char *subj = fv(e, "cert-subject");
			const char *iss = fv(e, "cert-issuer");
			const char *cs = fv(e, "cert-serial");

			snprintf(line, sizeof(line),
				 "%.80s proven by certificate %.200s "
				 "(serial %.40s) of CA %.200s", serial,
				 subj ? subj : "?", cs ? cs : "?",
				 iss ? iss : "?");
		} else {
			snprintf(line, sizeof(line),
				 "%.80s identity UNPROVEN (%.20s)%s%.300s",
				 serial, v ? v : "?",
				 why && why[0] ? ": " : "",
				 why ? why : "");
		}
	} else if (stn_ev_is(t, STN_EV_INSTALL_AUTHORIZED)) {
		v = fv(e, "expires");
		snprintf(line, sizeof(line),
			 "%.80s authorized by the station until %.24s", serial,
			 v ? v : "?");
	} else if (stn_ev_is(t, STN_EV_IMAGE_RECEIPT)) {
		v = fv(e, "result");
		snprintf(line, sizeof(line),
			 "%.80s receipt for image %.40s: %s%.20s", serial,
			 (why = fv(e, "image")) ? why : "?",
			 v && strcmp(v, "matches") == 0 ? "proof device-signed, "
							: "NO proof, ",
			 v ? v : "?");
	} else {
		return;
	}
	text_add(s->identity, sizeof(s->identity), "; ", line);
}

static void sess_facts(struct rpt_sess *x, const struct stn_event *e)
{
	struct stn_report_session *s = &x->s;
	const char *t = e->type, *v, *rule, *why, *where;
	char line[600];

	if (s->events == 0) {
		s->start = e->time;
		s->first = e->seq;
	}
	s->end = e->time;
	s->last = e->seq;
	s->events++;
	if (!s->technician[0] && (v = fv(e, "technician")) && strcmp(v, "-"))
		text_set(s->technician, sizeof(s->technician), v);
	if (stn_ev_is(t, STN_EV_SESSION_START) && (v = fv(e, "command")))
		text_set(s->command, sizeof(s->command), v);
	if (!s->what[0] && (v = fv(e, "name"))) {
		const char *ver = fv(e, "version"), *seq = fv(e, "sequence");
		const char *id = fv(e, "bundle");

		snprintf(line, sizeof(line), "%.64s%s%.32s%s%.24s%s%s%.16s%s",
			 v, ver ? " " : "", ver ? ver : "",
			 seq ? " (sequence " : "", seq ? seq : "",
			 seq ? ")" : "", id ? ", bundle " : "",
			 id ? id : "", id ? "..." : "");
		text_set(s->what, sizeof(s->what), line);
	}
	sess_device(s, e);
	if ((v = fv(e, "signers")) && stn_ev_is(t, STN_EV_BUNDLE_VERIFIED)) {
		snprintf(line, sizeof(line), "release signed by %.500s", v);
		if (!strstr(s->authority, line))
			text_add(s->authority, sizeof(s->authority), "; ",
				 line);
	}
	if (starts(t, "token-") || starts(t, "custody-")) {
		char f[480];

		fields_line(e, f, sizeof(f));
		snprintf(line, sizeof(line), "%.40s%s%.480s", t,
			 f[0] ? ": " : "", f);
		text_add(s->authority, sizeof(s->authority), "; ", line);
	}

	sess_identity(s, e);

	rule = fv(e, "rule");
	why = fv(e, "reason");
	where = fv(e, "where");
	if (stn_ev_is(t, STN_EV_INSTALL_FINISHED)) {
		const char *seq = fv(e, "sequence"), *proof = fv(e, "proof");
		const char *ms = fv(e, "duration-ms");

		snprintf(line, sizeof(line),
			 "installed%s%.24s (proof %.40s%s%.24s%s)",
			 seq ? " sequence " : "", seq ? seq : "",
			 proof ? proof : "not recorded", ms ? ", " : "",
			 ms ? ms : "", ms ? " ms" : "");
		x->ended_installs++;
		sess_outcome(x, fv(e, "serial"), line);
	} else if (stn_ev_is(t, STN_EV_INSTALL_FAILED) || ends(t, "-refused") ||
		   stn_ev_is(t, STN_EV_DEVICE_ERROR)) {
		/* As the command line said it: rule, place, reason. */
		snprintf(line, sizeof(line), "%s: rule %.40s: %.200s%s%.300s",
			 stn_ev_is(t, STN_EV_INSTALL_FAILED) ? "install FAILED"
			 : stn_ev_is(t, STN_EV_DEVICE_ERROR) ? "device ERROR"
							  : "REFUSED",
			 rule ? rule : "?", where && where[0] ? where : "",
			 where && where[0] ? ": " : "",
			 why ? why : "(no reason recorded)");
		if (stn_ev_is(t, STN_EV_INSTALL_FAILED))
			x->ended_installs++;
		sess_outcome(x, fv(e, "serial"), line);
	} else if (stn_ev_is(t, STN_EV_INSTALL_STARTED)) {
		x->started++;
		sess_result(x, 2, "install started, no outcome recorded");
	} else if (stn_ev_is(t, STN_EV_BUNDLE_VERIFIED)) {
		sess_result(x, 1, "bundle verified");
	} else if (stn_ev_is(t, STN_EV_REPORT_EXPORTED)) {
		const char *f = fv(e, "first-seq"), *l = fv(e, "last-seq");

		snprintf(line, sizeof(line), "report exported: %.200s (events "
			 "%.24s..%.24s)", (v = fv(e, "report")) ? v : "?",
			 f ? f : "?", l ? l : "?");
		sess_result(x, 1, line);
	} else if (stn_ev_is(t, STN_EV_SESSION_END)) {
		s->ended = 1;
		v = fv(e, "result");
		snprintf(line, sizeof(line), "session ended: %.40s",
			 v ? v : "?");
		sess_result(x, 0, line);
	}
}

/* The event as readable text for the summary page: seq, time, type, then
 * every field on its own line. */
static void sess_page_event(struct rpt_sess *x, const struct stn_event *e)
{
	char ts[CU_TIME_LEN + 1];

	cu_time_format(e->time, ts);
	stn_buf_fmt(&x->page, "  %" PRIu64 "  %s  ", e->seq, ts);
	buf_line_value(&x->page, e->type, 64);
	stn_buf_str(&x->page, "\n");
	for (size_t i = 0; i < e->nfields; i++) {
		stn_buf_fmt(&x->page, "        %-16s ", e->fields[i].key);
		buf_line_value(&x->page, e->fields[i].value, SUMMARY_VALUE_MAX);
		stn_buf_str(&x->page, "\n");
	}
}

int rpt_sessions_add(struct rpt_sessions *ss, const struct stn_event *e)
{
	struct rpt_sess *x = sess_find(ss, e->session);

	if (!x && !ss->oom) {
		ss->unlisted++;
		return 0;
	}
	if (!x)
		return STN_E_NOMEM;
	sess_facts(x, e);
	if (ss->pages) {
		sess_page_event(x, e);
		if (x->page.oom)
			return STN_E_NOMEM;
	}
	return 0;
}

/* ---- the previous export ---- */

int rpt_take_prev(void *ctx, const struct stn_event *e)
{
	struct rpt_prev *p = ctx;
	const char *r = fv(e, "report"), *h = fv(e, "sha256");
	const char *l = fv(e, "last-seq"), *lh = fv(e, "last-hash");

	p->event = e->seq;
	if (!r || !r[0] || strlen(r) >= sizeof(p->report))
		p->bad = "report";
	else if (!stn_canon_is_hash(h))
		p->bad = "sha256";
	else if (stn_canon_u64(l, &p->last) != 0 || p->last == 0 ||
		 p->last >= e->seq)
		p->bad = "last-seq";
	else if (!stn_canon_is_hash(lh))
		p->bad = "last-hash";
	if (p->bad)
		return 0;
	snprintf(p->report, sizeof(p->report), "%s", r);
	snprintf(p->sha256, sizeof(p->sha256), "%s", h);
	snprintf(p->last_hash, sizeof(p->last_hash), "%s", lh);
	return 0;
}


/* ---- the readable pages ---- */

/* Who, what, on whose authority, with what result; its events follow. */
void rpt_page_head(struct stn_buf *h, const struct rpt_sess *v)
{
	const struct stn_report_session *p = &v->s;
	char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1];

	cu_time_format(p->start, a);
	cu_time_format(p->end, b);
	stn_buf_fmt(h, "\f\nSESSION %s\n\n", p->id);
	stn_buf_str(h, "Command     ");
	buf_line_value(h, p->command[0] ? p->command : "-", 100);
	stn_buf_str(h, "\nWho         ");
	buf_line_value(h, p->technician[0] ? p->technician
					   : "no technician signed in",
		       100);
	stn_buf_fmt(h, "\nWhen        %s .. %s\n", a, b);
	stn_buf_str(h, "What        ");
	buf_line_value(h, p->what[0] ? p->what : "-", 300);
	stn_buf_str(h, "\nDevice      ");
	buf_line_value(h, p->device[0] ? p->device : "-", 300);
	stn_buf_str(h, "\nAuthority   ");
	buf_line_value(h, p->authority[0] ? p->authority : "-", 600);
	if (p->identity[0]) {
		stn_buf_str(h, "\nIdentity    ");
		buf_line_value(h, p->identity, 800);
	}
	stn_buf_str(h, "\nResult      ");
	buf_line_value(h, p->result[0] ? p->result : "-", 600);
	stn_buf_fmt(h, "\n%s\nEvents %" PRIu64 " .. %" PRIu64
		" (%" PRIu64 " of this session in this report)\n",
		p->ended ? ""
			 : "            (its session-end is not in this "
			   "report)\n",
		p->first, p->last, p->events);
}

/* The cover: what the report is and how to check it.  It says it is not
 * the record. */
void rpt_cover_page(struct stn_buf *t, const struct rpt_cover *c)
{
	const struct rpt_prev *prev = c->prev;
	char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1];

	cu_time_format(c->exported, a);
	stn_buf_str(t, "STATION SERVICE REPORT - SUMMARY\n\n");
	stn_buf_fmt(t, "This summary is for reading.  The record is %s,\n",
		c->json_base);
	stn_buf_str(t, "signed by the station beside it (.sig and .pem).  Check "
		    "it with\n");
	stn_buf_fmt(t, "    station report verify --trust ROOTS.pem %s\n",
		c->json_base);
	stn_buf_str(t, "or with OpenSSL alone as docs/auditor.md shows.\n\n");
	stn_buf_str(t, "Station     ");
	buf_line_value(t, c->station, 200);
	stn_buf_str(t, " at site ");
	buf_line_value(t, c->site, 200);
	stn_buf_fmt(t, "\nExported    %s (session %s)\n", a, c->session);
	cu_time_format(c->since, a);
	cu_time_format(c->until, b);
	stn_buf_fmt(t, "Period      %s .. %s\n", a, b);
	stn_buf_fmt(t, "Events      %" PRIu64 " .. %" PRIu64 " (%" PRIu64 ")\n",
		c->first, c->last, c->last - c->first + 1);
	stn_buf_fmt(t, "First prev  %s\n", c->first_prev);
	stn_buf_fmt(t, "Last hash   %s\n", c->last_hash);
	stn_buf_fmt(t, "SHA-256     %s  %s\n", c->sha256, c->json_base);
	if (prev) {
		stn_buf_str(t, "Previous    ");
		buf_line_value(t, prev->report, 300);
		stn_buf_fmt(t, " ended at event %" PRIu64 ",\n            hash %s\n",
			prev->last, prev->last_hash);
		if (c->first > prev->last + 1)
			stn_buf_fmt(t, "GAP         events %" PRIu64 " .. %" PRIu64
				" after the previous export are in NO report\n",
				prev->last + 1, c->first - 1);
	} else {
		stn_buf_fmt(t, "Previous    none: no earlier export is journaled%s\n",
			c->first == 1 ? "; this report starts the chain" : "");
	}
	stn_buf_fmt(t, "Sessions    %zu, one page each (in the order they "
		 "ended)\n", c->sessions);
	if (c->unlisted)
		stn_buf_fmt(t, "NOTE        %" PRIu64 " events belong to sessions "
			"past the first %d; they are in the report but have no "
			"page here\n", c->unlisted, STN_REPORT_SESSIONS_MAX);
}
