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

/* ---- lines of at most 80 columns ---- */

#define SUMMARY_COLS 80

/* Columns of n bytes of UTF-8: one per character (no wide ones assumed). */
static size_t cols(const char *p, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)p[i] & 0xc0) != 0x80;
	return c;
}

/* Bytes of the first at most c characters of p[0..n). */
static size_t cols_bytes(const char *p, size_t n, size_t c)
{
	size_t i = 0;

	while (i < n && c) {
		i++;
		while (i < n && ((unsigned char)p[i] & 0xc0) == 0x80)
			i++;
		c--;
	}
	return i;
}

static void spaces(struct stn_buf *b, size_t n)
{
	while (n--)
		stn_buf_add(b, " ", 1);
}

/*
 * Appends s, escaped as one value (buf_line_value: at most max bytes of
 * it), to b, whose current line already has col columns; breaks at spaces
 * so that no line passes SUMMARY_COLS, continuation lines indented by
 * indent; a word that does not fit starts a line, and one longer than a
 * line is cut across lines.  Ends the line.
 */
static void wrap_value(struct stn_buf *b, size_t col, size_t indent,
		       const char *s, size_t max)
{
	struct stn_buf e = {0};
	const char *p;
	int words = 0; /* a word of s is on the current line */

	buf_line_value(&e, s, max);
	if (e.oom) {
		b->oom = 1;
		free(e.p);
		return;
	}
	p = e.p ? e.p : "";
	while (*p) {
		const char *gap = p, *w;
		size_t gl, wl, wc;

		while (*p == ' ')
			p++;
		gl = (size_t)(p - gap);
		if (!*p)
			break;
		w = p;
		while (*p && *p != ' ')
			p++;
		wl = (size_t)(p - w);
		wc = cols(w, wl);
		if ((words || col > indent) && col + gl + wc > SUMMARY_COLS) {
			stn_buf_str(b, "\n");
			spaces(b, indent);
			col = indent;
		} else {
			stn_buf_add(b, gap, gl);
			col += gl;
		}
		while (col + wc > SUMMARY_COLS) {
			size_t room = SUMMARY_COLS > col ? SUMMARY_COLS - col : 0;
			size_t k = cols_bytes(w, wl, room);

			stn_buf_add(b, w, k);
			stn_buf_str(b, "\n");
			spaces(b, indent);
			col = indent;
			w += k;
			wl -= k;
			wc = cols(w, wl);
		}
		stn_buf_add(b, w, wl);
		col += wc;
		words = 1;
	}
	stn_buf_str(b, "\n");
	free(e.p);
}

/* "Label       value", the value wrapped under itself. */
static void labelled(struct stn_buf *b, const char *label, size_t width,
		     const char *value, size_t max)
{
	size_t n = strlen(label);

	stn_buf_str(b, label);
	spaces(b, n < width ? width - n : 1);
	wrap_value(b, n < width ? width : n + 1, width, value, max);
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
static const char *const fields_shown[] = {"bundle", "name", "version",
					   "serial", "dir", NULL};

static void fields_line(const struct stn_event *e, const char *const *skip,
			char *out, size_t cap)
{
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

		fields_line(e, fields_shown, f, sizeof(f));
		snprintf(line, sizeof(line), "%.40s%s%.480s", t,
			 f[0] ? ": " : "", f);
		text_add(s->authority, sizeof(s->authority), "; ", line);
	}
	if (stn_ev_is(t, STN_EV_TOKEN_APPLIED)) {
		v = fv(e, "serial");
		text_add(x->excepted, sizeof(x->excepted), "\n", v ? v : "?");
		v = fv(e, "token");
		text_add(x->excepted, sizeof(x->excepted), "\t", v ? v : "?");
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

	size_t col = x->page.len;

	cu_time_format(e->time, ts);
	stn_buf_fmt(&x->page, "  %" PRIu64 "  %s  ", e->seq, ts);
	wrap_value(&x->page, x->page.len - col, 8, e->type, 64);
	for (size_t i = 0; i < e->nfields; i++) {
		size_t n = strlen(e->fields[i].key);

		stn_buf_fmt(&x->page, "        %-16s ", e->fields[i].key);
		wrap_value(&x->page, 8 + (n > 16 ? n : 16) + 1, 25,
			   e->fields[i].value, SUMMARY_VALUE_MAX);
	}
}

/* ---- the first page: failed or refused, exceptions, installed ---- */

/*
 * What the first page lists as failed or refused, by event type: adding a
 * type is one row.  A type not here that ends in -refused, -failed or
 * -error is listed too, under its own name (outline_kind_of).
 */
static const struct outline_kind {
	const char *type;
	enum rpt_class cls;
	const char *what;
} outline_kinds[] = {
	{"bundle-refused", RPT_REFUSED, "bundle REFUSED"},
	{"device-refused", RPT_REFUSED, "device REFUSED"},
	{"session-refused", RPT_REFUSED, "command REFUSED"},
	{"signin-refused", RPT_REFUSED, "sign-in REFUSED"},
	{"technician-locked", RPT_LOCKED, "technician LOCKED OUT"},
	{"install-failed", RPT_FAILED, "install FAILED"},
	{"install-abandoned", RPT_FAILED, "install ABANDONED, no outcome"},
	{"media-error", RPT_FAILED, "media ERROR"},
	{"device-error", RPT_FAILED, "device ERROR"},
};

/* The counts line, in this order; a class not always shown appears when
 * it has happened. */
static const struct {
	const char *one, *many;
	int always;
} class_words[RPT_CLASSES] = {
	[RPT_INSTALLED] = {"installed", "installed", 1},
	[RPT_REFUSED] = {"refused", "refused", 1},
	[RPT_FAILED] = {"failed", "failed", 1},
	[RPT_LOCKED] = {"technician locked out", "technicians locked out", 0},
	[RPT_EXCEPTION] = {"exception used", "exceptions used", 1},
};

static const char *const section_names[RPT_SECTIONS] = {
	[RPT_SEC_FAILED] = "FAILED OR REFUSED",
	[RPT_SEC_EXCEPTIONS] = "EXCEPTIONS USED",
	[RPT_SEC_INSTALLED] = "INSTALLED, per unit",
};

void rpt_outline_counts(struct stn_buf *b, const struct rpt_outline *o)
{
	const char *sep = "";

	for (int k = 0; k < RPT_CLASSES; k++) {
		if (!o->count[k] && !class_words[k].always)
			continue;
		stn_buf_fmt(b, "%s%" PRIu64 " %s", sep, o->count[k],
			    o->count[k] == 1 ? class_words[k].one
					     : class_words[k].many);
		sep = ", ";
	}
	stn_buf_str(b, "\n");
}

void rpt_outline_heading(struct stn_buf *b, const struct rpt_outline *o,
			 enum rpt_section k)
{
	if (o->entries[k])
		stn_buf_fmt(b, "%s (%" PRIu64 ")\n", section_names[k],
			    o->entries[k]);
	else
		stn_buf_fmt(b, "%s: none\n", section_names[k]);
}

/* The row for type t, or one made up for a failure this file does not
 * know (what = the type as journaled); NULL when t is no failure. */
static const struct outline_kind *outline_kind_of(const char *t,
						  struct outline_kind *other)
{
	for (size_t i = 0; i < sizeof(outline_kinds) / sizeof(outline_kinds[0]);
	     i++)
		if (strcmp(t, outline_kinds[i].type) == 0)
			return &outline_kinds[i];
	if (!ends(t, "-refused") && !ends(t, "-failed") && !ends(t, "-error"))
		return NULL;
	other->type = t;
	other->cls = ends(t, "-refused") ? RPT_REFUSED : RPT_FAILED;
	other->what = t;
	return other;
}

/* "      by TECH, session ID, event N" under an entry: the event's own
 * technician field when it has one (own_is_typed: a sign-in's, the id as
 * typed, said as "technician"), else the session's. */
static void outline_by(struct stn_buf *b, const struct stn_event *e,
		       const char *tech, int own_is_typed)
{
	const char *own = fv(e, "technician");
	const char *word = "by ";
	char line[300];

	if (own && own[0] && strcmp(own, "-")) {
		tech = own;
		if (own_is_typed)
			word = "technician ";
	}
	snprintf(line, sizeof(line), "%s%.72s, session %.72s, event %" PRIu64,
		 tech && tech[0] ? word : "no technician signed in",
		 tech ? tech : "", e->session, e->seq);
	spaces(b, 6);
	wrap_value(b, 6, 6, line, sizeof(line));
}

static void outline_failure(struct rpt_outline *o, const struct stn_event *e,
			    const struct outline_kind *k, const char *tech)
{
	static const char *const shown[] = {
		"bundle", "name", "version", "serial", "dir", "rule", "where",
		"reason", "code", "technician", NULL};
	struct stn_buf *b = &o->sect[RPT_SEC_FAILED];
	const char *serial = fv(e, "serial"), *name = fv(e, "name");
	const char *ver = fv(e, "version"), *why = fv(e, "reason");
	const char *rule = fv(e, "rule"), *where = fv(e, "where");
	char ts[CU_TIME_LEN + 1], line[1200];

	o->count[k->cls]++;
	o->entries[RPT_SEC_FAILED]++;
	cu_time_format(e->time, ts);
	snprintf(line, sizeof(line), "%.64s%s%.80s%s%.64s%s%.32s", k->what,
		 serial ? " on " : "", serial ? serial : "",
		 name ? ": " : "", name ? name : "",
		 name && ver ? " " : "", name && ver ? ver : "");
	stn_buf_fmt(b, "  %s  ", ts);
	wrap_value(b, 4 + strlen(ts), 6, line, sizeof(line));
	/* The cause first; the rule and the place after it. */
	if (why && why[0]) {
		spaces(b, 6);
		wrap_value(b, 6, 6, why, SUMMARY_VALUE_MAX);
	} else {
		fields_line(e, shown, line, sizeof(line));
		if (line[0]) {
			spaces(b, 6);
			wrap_value(b, 6, 6, line, SUMMARY_VALUE_MAX);
		}
	}
	if (rule || (where && where[0])) {
		snprintf(line, sizeof(line), "%s%.40s%s%.600s",
			 rule ? "rule " : "", rule ? rule : "",
			 rule && where && where[0] ? ", at " : "",
			 where ? where : "");
		spaces(b, 6);
		wrap_value(b, 6, 6, line, SUMMARY_VALUE_MAX);
	}
	outline_by(b, e, tech, 1);
}

static void outline_exception(struct rpt_outline *o, const struct stn_event *e,
			      const char *tech)
{
	static const char *const parts[][2] = {
		{"waives", "waives"}, {"reason", "reason"},
		{"issuer", "signer"}, {"bundle", "bundle"}, {"file", "file"}};
	struct stn_buf *b = &o->sect[RPT_SEC_EXCEPTIONS];
	const char *tok = fv(e, "token"), *serial = fv(e, "serial"), *v;
	char ts[CU_TIME_LEN + 1], line[300];

	o->count[RPT_EXCEPTION]++;
	o->entries[RPT_SEC_EXCEPTIONS]++;
	cu_time_format(e->time, ts);
	snprintf(line, sizeof(line), "token %.72s on %.80s", tok ? tok : "?",
		 serial ? serial : "?");
	stn_buf_fmt(b, "  %s  ", ts);
	wrap_value(b, 4 + strlen(ts), 6, line, sizeof(line));
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		v = fv(e, parts[i][1]);
		spaces(b, 6);
		labelled(b, parts[i][0], 10, v && v[0] ? v : "not recorded",
			 SUMMARY_VALUE_MAX);
	}
	outline_by(b, e, tech, 0);
}

/* The token x applied to serial (as shown), or NULL. */
static const char *excepted_by(const struct rpt_sess *x, const char *serial,
			       char *tok, size_t cap)
{
	char shown[100];
	size_t n;

	if (!x)
		return NULL;
	text_set(shown, sizeof(shown), serial);
	n = strlen(shown);
	for (const char *p = x->excepted; *p;) {
		const char *eol = strchr(p, '\n'), *tab = strchr(p, '\t');

		if (!eol)
			eol = p + strlen(p);
		if (tab && tab < eol && (size_t)(tab - p) == n &&
		    strncmp(p, shown, n) == 0) {
			snprintf(tok, cap, "%.*s", (int)(eol - tab - 1), tab + 1);
			return tok;
		}
		p = *eol ? eol + 1 : eol;
	}
	return NULL;
}

static void outline_install(struct rpt_outline *o, const struct stn_event *e,
			    const struct rpt_sess *x, const char *tech)
{
	struct stn_buf *b = &o->sect[RPT_SEC_INSTALLED];
	const char *serial = fv(e, "serial"), *name = fv(e, "name");
	const char *ver = fv(e, "version"), *seq = fv(e, "sequence");
	const char *before = fv(e, "sequence-before"), *proof = fv(e, "proof");
	char ts[CU_TIME_LEN + 1], line[400], tok[100];
	uint64_t a, z;

	o->count[RPT_INSTALLED]++;
	o->entries[RPT_SEC_INSTALLED]++;
	cu_time_format(e->time, ts);
	snprintf(line, sizeof(line), "%.80s: %.64s%s%.32s%s%.24s%s",
		 serial ? serial : "?", name ? name : "?", ver ? " " : "",
		 ver ? ver : "", seq ? " (sequence " : "", seq ? seq : "",
		 seq ? ")" : "");
	stn_buf_str(b, "  ");
	wrap_value(b, 2, 6, line, sizeof(line));
	snprintf(line, sizeof(line), "proof %.40s, %s", proof ? proof
							   : "not recorded", ts);
	spaces(b, 6);
	wrap_value(b, 6, 6, line, sizeof(line));
	if (seq && before && stn_canon_u64(seq, &z) == 0 &&
	    stn_canon_u64(before, &a) == 0 && z < a) {
		snprintf(line, sizeof(line), "DOWNGRADE from sequence %.24s",
			 before);
		spaces(b, 6);
		wrap_value(b, 6, 6, line, sizeof(line));
	}
	if (serial && excepted_by(x, serial, tok, sizeof(tok))) {
		snprintf(line, sizeof(line), "under exception token %s", tok);
		spaces(b, 6);
		wrap_value(b, 6, 6, line, sizeof(line));
	}
	outline_by(b, e, tech, 0);
}

/* e's entry on the first page, if it is one; x is its session (NULL past
 * the cap). */
static int outline_add(struct rpt_outline *o, const struct stn_event *e,
		       const struct rpt_sess *x)
{
	const char *tech = x ? x->s.technician : NULL;
	struct outline_kind other;
	const struct outline_kind *k;

	if (stn_ev_is(e->type, STN_EV_INSTALL_FINISHED))
		outline_install(o, e, x, tech);
	else if (stn_ev_is(e->type, STN_EV_TOKEN_APPLIED))
		outline_exception(o, e, tech);
	else if ((k = outline_kind_of(e->type, &other)))
		outline_failure(o, e, k, tech);
	for (int i = 0; i < RPT_SECTIONS; i++)
		if (o->sect[i].oom)
			return STN_E_NOMEM;
	return 0;
}

int rpt_sessions_add(struct rpt_sessions *ss, const struct stn_event *e)
{
	struct rpt_sess *x = sess_find(ss, e->session);

	if (!x && ss->oom)
		return STN_E_NOMEM;
	if (x)
		sess_facts(x, e);
	if (ss->outline && outline_add(ss->outline, e, x) != 0)
		return STN_E_NOMEM;
	if (!x) {
		ss->unlisted++;
		return 0;
	}
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
	stn_buf_str(h, "\f\n");
	labelled(h, "SESSION", 8, p->id, 100);
	stn_buf_str(h, "\n");
	labelled(h, "Command", 12, p->command[0] ? p->command : "-", 100);
	labelled(h, "Who", 12, p->technician[0] ? p->technician
					      : "no technician signed in",
		 100);
	stn_buf_fmt(h, "When        %s .. %s\n", a, b);
	labelled(h, "What", 12, p->what[0] ? p->what : "-", 300);
	labelled(h, "Device", 12, p->device[0] ? p->device : "-", 300);
	labelled(h, "Authority", 12, p->authority[0] ? p->authority : "-", 600);
	if (p->identity[0])
		labelled(h, "Identity", 12, p->identity, 800);
	labelled(h, "Result", 12, p->result[0] ? p->result : "-", 600);
	stn_buf_fmt(h, "%s\nEvents %" PRIu64 " .. %" PRIu64
		" (%" PRIu64 " of this session in this report)\n",
		p->ended ? ""
			 : "            (its session-end is not in this "
			   "report)\n",
		p->first, p->last, p->events);
}

/* The top of the summary: what it covers and how much of each outcome;
 * the outline's sections follow it. */
void rpt_cover_head(struct stn_buf *t, const struct rpt_cover *c,
		    const struct rpt_outline *o)
{
	char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1], line[600];

	cu_time_format(c->since, a);
	cu_time_format(c->until, b);
	stn_buf_str(t, "STATION SERVICE REPORT - SUMMARY\n");
	snprintf(line, sizeof(line), "Station %.200s at site %.200s, %s .. %s",
		 c->station, c->site, a, b);
	wrap_value(t, 0, 4, line, sizeof(line));
	rpt_outline_counts(t, o);
	stn_buf_str(t, "\n");
}

/* The record: what the report is and how to check it.  It says it is not
 * the record. */
void rpt_cover_page(struct stn_buf *t, const struct rpt_cover *c)
{
	const struct rpt_prev *prev = c->prev;
	char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1], line[1400];

	cu_time_format(c->exported, a);
	stn_buf_str(t, "This summary is for reading; it is not signed.  The "
		    "record is\n    ");
	wrap_value(t, 4, 4, c->json_base, 300);
	stn_buf_str(t, "signed by the station beside it (.sig and .pem).  Check "
		    "it with\n    ");
	snprintf(line, sizeof(line), "station report verify --trust ROOTS.pem "
		 "%.300s", c->json_base);
	wrap_value(t, 4, 8, line, sizeof(line));
	stn_buf_str(t, "or with OpenSSL alone as docs/auditor.md shows.\n\n");
	snprintf(line, sizeof(line), "%.200s at site %.200s", c->station,
		 c->site);
	labelled(t, "Station", 12, line, sizeof(line));
	stn_buf_fmt(t, "Exported    %s (session %s)\n", a, c->session);
	cu_time_format(c->since, a);
	cu_time_format(c->until, b);
	stn_buf_fmt(t, "Period      %s .. %s\n", a, b);
	stn_buf_fmt(t, "Events      %" PRIu64 " .. %" PRIu64 " (%" PRIu64 ")\n",
		c->first, c->last, c->last - c->first + 1);
	stn_buf_fmt(t, "First prev  %s\n", c->first_prev);
	stn_buf_fmt(t, "Last hash   %s\n", c->last_hash);
	snprintf(line, sizeof(line), "%s  %.300s", c->sha256, c->json_base);
	labelled(t, "SHA-256", 12, line, sizeof(line));
	if (prev) {
		snprintf(line, sizeof(line), "%.1040s ended at event %" PRIu64
			 ", hash %s", prev->report, prev->last, prev->last_hash);
		labelled(t, "Previous", 12, line, sizeof(line));
		if (c->first > prev->last + 1) {
			snprintf(line, sizeof(line), "events %" PRIu64 " .. %"
				 PRIu64 " after the previous export are in NO "
				 "report", prev->last + 1, c->first - 1);
			labelled(t, "GAP", 12, line, sizeof(line));
		}
	} else {
		snprintf(line, sizeof(line), "none: no earlier export is "
			 "journaled%s", c->first == 1
			 ? "; this report starts the chain" : "");
		labelled(t, "Previous", 12, line, sizeof(line));
	}
	stn_buf_fmt(t, "Sessions    %zu, one page each (in the order they "
		 "ended)\n", c->sessions);
	if (c->unlisted) {
		snprintf(line, sizeof(line), "%" PRIu64 " events belong to "
			 "sessions past the first %d; they are in the report "
			 "but have no page here", c->unlisted,
			 STN_REPORT_SESSIONS_MAX);
		labelled(t, "NOTE", 12, line, sizeof(line));
	}
}
