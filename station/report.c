/* station/report.c: service reports (formats §7).  Export streams a range of
 * the journal, already checked link by link, into station-report-1 JSON
 * while hashing what it writes, signs it, checks the signature as an auditor
 * would and only then journals the export.  Verify reads a report once,
 * hashing and parsing the same bytes, so what is checked is what was signed.
 * docs/auditor.md describes the layout byte for byte. */
#include "station/report.h"
#include "station/strbuf.h"

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

#include "custody/rfc3339.h"
#include "custody/sha256.h"
#include "custody/sig.h"
#include "custody/sign.h"
#include "station/config.h"
#include "station/error.h"
#include "station/journal.h"
#include "station/session.h"

#define HASH_LEN CU_SHA256_HEX_LEN
#define IO_CHUNK (64 * 1024)
/* A value shown in the readable summary is cut here; the JSON has it all. */
#define SUMMARY_VALUE_MAX 400

/* ---- bounded text ---- */

/* Appends src to dst (capacity cap, NUL-terminated), after sep when dst is
 * not empty.  Control bytes become \xNN, so a text is always one line
 * whatever a device or a bundle put in it; what does not fit is cut at a
 * UTF-8 boundary and marked with "...". */
static void text_add(char *dst, size_t cap, const char *sep, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = strlen(dst), slen = len && sep ? strlen(sep) : 0;
	size_t room, n = 0, full;
	const unsigned char *p;
	char *e;

	if (len + slen + 1 >= cap)
		return;
	e = malloc(4 * strlen(src) + 1);
	if (!e)
		return;
	for (p = (const unsigned char *)src; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			e[n++] = '\\';
			e[n++] = 'x';
			e[n++] = hex[*p >> 4];
			e[n++] = hex[*p & 15];
		} else {
			e[n++] = (char)*p;
		}
	}
	e[n] = '\0';
	full = n;
	room = cap - 1 - len - slen;
	if (n > room) {
		if (room < 4) {
			free(e);
			return;
		}
		n = room - 3;
		while (n > 0 && ((unsigned char)e[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst + len, sep ? sep : "", slen);
	len += slen;
	memcpy(dst + len, e, n);
	len += n;
	if (n < full) {
		memcpy(dst + len, "...", 3);
		len += 3;
	}
	dst[len] = '\0';
	free(e);
}

static void text_set(char *dst, size_t cap, const char *src)
{
	dst[0] = '\0';
	text_add(dst, cap, NULL, src);
}

/* A value as one printable line: control bytes become \xNN, so a crafted
 * value cannot start a fake line in the summary. */
static void buf_line_value(struct stn_buf *b, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	char esc[4] = {'\\', 'x', 0, 0};

	for (; *p && n < max; p++, n++) {
		if (*p < 0x20 || *p == 0x7f) {
			esc[2] = hex[*p >> 4];
			esc[3] = hex[*p & 15];
			stn_buf_add(b, esc, 4);
		} else {
			stn_buf_add(b, p, 1);
		}
	}
	if (*p) {
		/* Do not leave half a UTF-8 sequence behind the cut. */
		while (b->len &&
		       ((unsigned char)b->p[b->len - 1] & 0xc0) == 0x80)
			b->len--;
		if (b->len && ((unsigned char)b->p[b->len - 1] & 0xc0) == 0xc0)
			b->len--;
		if (b->p)
			b->p[b->len] = '\0';
		stn_buf_fmt(b, "... (%zu bytes in all)", strlen(s));
	}
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

struct sess {
	struct stn_report_session s;
	int rank;        /* how final s.result is: see sess_result */
	unsigned started, ended_installs; /* install-started, and outcomes */
	struct stn_buf page; /* export only: its events as text, not yet spilled */
};

struct sessions {
	struct sess *v;
	size_t n, cap;
	size_t hint;   /* the session found last: events come in runs */
	size_t *slot;  /* open addressing: index + 1 into v, 0 = empty */
	size_t nslot;  /* a power of two, at least twice n */
	int pages;     /* keep each session's events as text */
	int oom;
	uint64_t unlisted; /* events of sessions past STN_REPORT_SESSIONS_MAX */
};

static void sessions_free(struct sessions *ss)
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

static size_t *slot_of(const struct sessions *ss, const char *id)
{
	size_t mask = ss->nslot - 1, i = id_hash(id) & mask;

	while (ss->slot[i] && strcmp(ss->v[ss->slot[i] - 1].s.id, id) != 0)
		i = (i + 1) & mask;
	return &ss->slot[i];
}

static int slots_grow(struct sessions *ss)
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

static struct sess *sess_find(struct sessions *ss, const char *full)
{
	char id[sizeof(ss->v[0].s.id)];
	struct sess *v;
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
static void sess_result(struct sess *x, int rank, const char *text)
{
	if (rank < x->rank)
		return;
	x->rank = rank;
	text_set(x->s.result, sizeof(x->s.result), text);
}

/* A final outcome.  One session may install on several devices, so each
 * outcome is kept, named by the device's serial when the event has one. */
static void sess_outcome(struct sess *x, const char *serial, const char *text)
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
static void sess_final(struct sess *x)
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

static void sess_facts(struct sess *x, const struct stn_event *e)
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
	if (strcmp(t, "session-start") == 0 && (v = fv(e, "command")))
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
	if ((v = fv(e, "signers")) && strcmp(t, "bundle-verified") == 0) {
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

	rule = fv(e, "rule");
	why = fv(e, "reason");
	where = fv(e, "where");
	if (strcmp(t, "install-finished") == 0) {
		const char *seq = fv(e, "sequence"), *proof = fv(e, "proof");
		const char *ms = fv(e, "duration-ms");

		snprintf(line, sizeof(line),
			 "installed%s%.24s (proof %.40s%s%.24s%s)",
			 seq ? " sequence " : "", seq ? seq : "",
			 proof ? proof : "not recorded", ms ? ", " : "",
			 ms ? ms : "", ms ? " ms" : "");
		x->ended_installs++;
		sess_outcome(x, fv(e, "serial"), line);
	} else if (strcmp(t, "install-failed") == 0 || ends(t, "-refused") ||
		   strcmp(t, "device-error") == 0) {
		/* As the command line said it: rule, place, reason. */
		snprintf(line, sizeof(line), "%s: rule %.40s: %.200s%s%.300s",
			 strcmp(t, "install-failed") == 0 ? "install FAILED"
			 : strcmp(t, "device-error") == 0 ? "device ERROR"
							  : "REFUSED",
			 rule ? rule : "?", where && where[0] ? where : "",
			 where && where[0] ? ": " : "",
			 why ? why : "(no reason recorded)");
		if (strcmp(t, "install-failed") == 0)
			x->ended_installs++;
		sess_outcome(x, fv(e, "serial"), line);
	} else if (strcmp(t, "install-started") == 0) {
		x->started++;
		sess_result(x, 2, "install started, no outcome recorded");
	} else if (strcmp(t, "bundle-verified") == 0) {
		sess_result(x, 1, "bundle verified");
	} else if (strcmp(t, STN_REPORT_EVENT) == 0) {
		const char *f = fv(e, "first-seq"), *l = fv(e, "last-seq");

		snprintf(line, sizeof(line), "report exported: %.200s (events "
			 "%.24s..%.24s)", (v = fv(e, "report")) ? v : "?",
			 f ? f : "?", l ? l : "?");
		sess_result(x, 1, line);
	} else if (strcmp(t, "session-end") == 0) {
		s->ended = 1;
		v = fv(e, "result");
		snprintf(line, sizeof(line), "session ended: %.40s",
			 v ? v : "?");
		sess_result(x, 0, line);
	}
}

/* The event as readable text for the summary page: seq, time, type, then
 * every field on its own line. */
static void sess_page_event(struct sess *x, const struct stn_event *e)
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

static int sessions_add(struct sessions *ss, const struct stn_event *e)
{
	struct sess *x = sess_find(ss, e->session);

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

/* ---- names and files ---- */

static int id_ok_for_file(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > 64 || id[0] == '.' || id[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		/* Some file systems (vfat) cannot sync a directory; the files
		 * themselves were synced. */
		(void)fsync(fd);
		close(fd);
	}
}

/* Puts tmp at final unless final exists (then STN_E_IO: a report is never
 * replaced).  RENAME_NOREPLACE where the file system has it, else a hard
 * link, which fails on an existing name just as well. */
static int place(const char *tmp, const char *final, struct stn_diag *d)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOSYS) {
		if (link(tmp, final) == 0) {
			unlink(tmp);
			return 0;
		}
	}
	if (errno == EEXIST)
		return stn_fail(d, STN_E_IO, final,
				"already exists: a report is never replaced "
				"(one export per station per second)");
	return stn_fail(d, STN_E_IO, final, "cannot create: %s",
			strerror(errno));
}

/* The output: a buffered file that hashes what it writes. */
struct out {
	int fd;
	char tmp[4300];
	struct cu_sha256 *h;
	char *buf;
	size_t len;
	int eno; /* first write error */
};

static void out_flush(struct out *o)
{
	size_t done = 0;
	ssize_t n;

	if (o->eno) {
		o->len = 0;
		return;
	}
	cu_sha256_update(o->h, o->buf, o->len);
	while (done < o->len) {
		n = write(o->fd, o->buf + done, o->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			o->eno = errno;
			break;
		}
		done += (size_t)n;
	}
	o->len = 0;
}

static void out_add(struct out *o, const char *s, size_t n)
{
	while (n) {
		size_t room = IO_CHUNK - o->len, k = n < room ? n : room;

		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
		if (o->len == IO_CHUNK)
			out_flush(o);
	}
}

static void out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void out_u64(struct out *o, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	out_str(o, num);
}

/* The escaping rule of docs/journal.md, the one spelling verify accepts. */
static void out_json(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};

	out_add(o, "\"", 1);
	for (; *p; p++) {
		if (*p != '"' && *p != '\\' && *p >= 0x20 && *p != 0x7f)
			continue;
		out_add(o, (const char *)run, (size_t)(p - run));
		run = p + 1;
		if (*p == '"' || *p == '\\') {
			esc[1] = (char)*p;
			out_add(o, esc, 2);
			esc[1] = 'u';
		} else {
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			out_add(o, esc, 6);
		}
	}
	out_add(o, (const char *)run, (size_t)(p - run));
	out_add(o, "\"", 1);
}

static void out_time(struct out *o, int64_t t)
{
	char ts[CU_TIME_LEN + 1];

	cu_time_format(t, ts);
	out_add(o, "\"", 1);
	out_str(o, ts);
	out_add(o, "\"", 1);
}

/* Opens a temporary file beside `final` (a dot name, mode 0644). */
static int out_open(struct out *o, const char *dir, const char *final_base,
		    struct stn_diag *d)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.XXXXXX", dir,
		     final_base) >= (int)sizeof(o->tmp))
		return stn_fail(d, STN_E_USAGE, dir, "path too long");
	o->buf = malloc(IO_CHUNK);
	o->h = cu_sha256_new();
	if (!o->buf || !o->h)
		return stn_fail(d, STN_E_NOMEM, dir, "cannot write a report");
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		o->tmp[0] = '\0';
		return stn_fail(d, STN_E_IO, dir, "cannot create a file: %s",
				strerror(errno));
	}
	/* Reports are handed to auditors, like the .sig and .pem beside
	 * them; mkostemp made the file 0600. */
	if (fchmod(o->fd, 0644) != 0)
		return stn_fail(d, STN_E_IO, o->tmp, "cannot chmod: %s",
				strerror(errno));
	return 0;
}

/* Flushes, fsyncs and closes; the digest of everything written. */
static int out_close(struct out *o, uint8_t digest[CU_SHA256_LEN],
		     struct stn_diag *d)
{
	int rc = 0;

	out_flush(o);
	if (o->eno)
		rc = stn_fail(d, STN_E_IO, o->tmp, "cannot write: %s",
			      strerror(o->eno));
	else if (fsync(o->fd) != 0)
		rc = stn_fail(d, STN_E_IO, o->tmp, "cannot fsync: %s",
			      strerror(errno));
	if (close(o->fd) != 0 && rc == 0)
		rc = stn_fail(d, STN_E_IO, o->tmp, "cannot close: %s",
			      strerror(errno));
	o->fd = -1;
	if (rc == 0 && digest)
		cu_sha256_final(o->h, digest);
	return rc;
}

/* Frees; removes the temporary file if it was not placed. */
static void out_fini(struct out *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp[0])
		unlink(o->tmp);
	cu_sha256_free(o->h);
	free(o->buf);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
}

/* ---- export ---- */

static int parse_u64(const char *s, uint64_t *out)
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

/* The last export, from its report-exported event. */
struct prev_export {
	uint64_t event; /* seq of the report-exported event */
	char report[1040], sha256[HASH_LEN + 1], last_hash[HASH_LEN + 1];
	uint64_t last;
	const char *bad; /* the field that is missing or malformed */
};

static int take_prev(void *ctx, const struct stn_event *e)
{
	struct prev_export *p = ctx;
	const char *r = fv(e, "report"), *h = fv(e, "sha256");
	const char *l = fv(e, "last-seq"), *lh = fv(e, "last-hash");

	p->event = e->seq;
	if (!r || !r[0] || strlen(r) >= sizeof(p->report))
		p->bad = "report";
	else if (!stn_journal_is_hash(h))
		p->bad = "sha256";
	else if (parse_u64(l, &p->last) != 0 || p->last == 0 ||
		 p->last >= e->seq)
		p->bad = "last-seq";
	else if (!stn_journal_is_hash(lh))
		p->bad = "last-hash";
	if (p->bad)
		return 0;
	snprintf(p->report, sizeof(p->report), "%s", r);
	snprintf(p->sha256, sizeof(p->sha256), "%s", h);
	snprintf(p->last_hash, sizeof(p->last_hash), "%s", lh);
	return 0;
}

struct peek {
	int64_t time;
	char prev[HASH_LEN + 1], hash[HASH_LEN + 1];
};

static int take_peek(void *ctx, const struct stn_event *e)
{
	struct peek *p = ctx;

	p->time = e->time;
	snprintf(p->prev, sizeof(p->prev), "%s", e->prev);
	snprintf(p->hash, sizeof(p->hash), "%s", e->hash);
	return 0;
}

struct exp {
	struct out o;
	struct sessions ss;
	uint64_t n;
	struct peek first, last; /* as the header states them */
	struct peek seen_first, seen_last;
	/* Summary pages of sessions that have ended, kept in an unlinked
	 * scratch file so that memory follows the open sessions, not the
	 * length of the report. */
	int spill;
	uint64_t pages;
	int spill_eno;
};

static void spill_add(struct exp *x, const char *p, size_t len)
{
	ssize_t n;

	while (len && !x->spill_eno) {
		n = write(x->spill, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			x->spill_eno = errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* A session's page: who, what, on whose authority, with what result, then
 * its events.  Written when the session ends, or at the end of the walk. */
static void page_spill(struct exp *x, struct sess *v)
{
	const struct stn_report_session *p = &v->s;
	char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1];
	struct stn_buf h = {0};

	sess_final(v);
	cu_time_format(p->start, a);
	cu_time_format(p->end, b);
	stn_buf_fmt(&h, "\f\nSESSION %s\n\n", p->id);
	stn_buf_str(&h, "Command     ");
	buf_line_value(&h, p->command[0] ? p->command : "-", 100);
	stn_buf_str(&h, "\nWho         ");
	buf_line_value(&h, p->technician[0] ? p->technician
					    : "no technician signed in",
		       100);
	stn_buf_fmt(&h, "\nWhen        %s .. %s\n", a, b);
	stn_buf_str(&h, "What        ");
	buf_line_value(&h, p->what[0] ? p->what : "-", 300);
	stn_buf_str(&h, "\nDevice      ");
	buf_line_value(&h, p->device[0] ? p->device : "-", 300);
	stn_buf_str(&h, "\nAuthority   ");
	buf_line_value(&h, p->authority[0] ? p->authority : "-", 600);
	stn_buf_str(&h, "\nResult      ");
	buf_line_value(&h, p->result[0] ? p->result : "-", 600);
	stn_buf_fmt(&h, "\n%s\nEvents %" PRIu64 " .. %" PRIu64
		" (%" PRIu64 " of this session in this report)\n",
		p->ended ? ""
			 : "            (its session-end is not in this "
			   "report)\n",
		p->first, p->last, p->events);
	if (h.oom)
		x->spill_eno = ENOMEM;
	spill_add(x, h.p ? h.p : "", h.len);
	spill_add(x, v->page.p ? v->page.p : "", v->page.len);
	free(h.p);
	free(v->page.p);
	memset(&v->page, 0, sizeof(v->page));
	x->pages++;
}

/* One event, one line; the journal has checked it against the chain. */
static int export_event(void *ctx, const struct stn_event *e)
{
	struct exp *x = ctx;
	struct out *o = &x->o;

	if (x->n++)
		out_add(o, ",\n", 2);
	out_str(o, "{\"seq\":");
	out_u64(o, e->seq);
	out_str(o, ",\"time\":");
	out_time(o, e->time);
	out_str(o, ",\"type\":");
	out_json(o, e->type);
	out_str(o, ",\"session\":");
	out_json(o, e->session);
	out_str(o, ",\"fields\":{");
	for (size_t i = 0; i < e->nfields; i++) {
		if (i)
			out_add(o, ",", 1);
		out_json(o, e->fields[i].key);
		out_add(o, ":", 1);
		out_json(o, e->fields[i].value);
	}
	out_str(o, "},\"prev\":\"");
	out_str(o, e->prev);
	out_str(o, "\",\"hash\":\"");
	out_str(o, e->hash);
	out_str(o, "\",\"body\":");
	out_json(o, e->body);
	out_add(o, "}", 1);
	if (x->n == 1)
		take_peek(&x->seen_first, e);
	take_peek(&x->seen_last, e);
	if (o->eno)
		return STN_E_IO;
	if (sessions_add(&x->ss, e) != 0)
		return STN_E_NOMEM;
	if (strcmp(e->type, "session-end") == 0 && x->ss.n &&
	    strcmp(x->ss.v[x->ss.hint].s.id, e->session) == 0)
		page_spill(x, &x->ss.v[x->ss.hint]);
	return x->spill_eno ? STN_E_IO : 0;
}

static void write_header(struct exp *x, const struct stn_config *cfg,
			 const char *session, int64_t exported, int64_t since,
			 int64_t until, uint64_t first, uint64_t last,
			 const struct prev_export *prev)
{
	struct out *o = &x->o;

	out_str(o, "{\"format\":\"" STN_REPORT_FORMAT "\",\"station\":");
	out_json(o, cfg->id);
	out_str(o, ",\"site\":");
	out_json(o, cfg->site);
	out_str(o, ",\"exported\":");
	out_time(o, exported);
	out_str(o, ",\"session\":");
	out_json(o, session);
	out_str(o, ",\"period\":{\"since\":");
	out_time(o, since);
	out_str(o, ",\"until\":");
	out_time(o, until);
	out_str(o, "},\"first\":{\"seq\":");
	out_u64(o, first);
	out_str(o, ",\"prev\":\"");
	out_str(o, x->first.prev);
	out_str(o, "\",\"hash\":\"");
	out_str(o, x->first.hash);
	out_str(o, "\"},\"last\":{\"seq\":");
	out_u64(o, last);
	out_str(o, ",\"hash\":\"");
	out_str(o, x->last.hash);
	out_str(o, "\"},\"count\":");
	out_u64(o, last - first + 1);
	out_str(o, ",\"previous-export\":");
	if (prev) {
		out_str(o, "{\"event\":");
		out_u64(o, prev->event);
		out_str(o, ",\"report\":");
		out_json(o, prev->report);
		out_str(o, ",\"sha256\":\"");
		out_str(o, prev->sha256);
		out_str(o, "\",\"last-seq\":");
		out_u64(o, prev->last);
		out_str(o, ",\"last-hash\":\"");
		out_str(o, prev->last_hash);
		out_str(o, "\"}");
	} else {
		out_str(o, "null");
	}
	out_str(o, ",\"events\":[\n");
}

/* The readable summary: a cover page, then one page (form feed) per
 * session.  It says it is not the record. */
static void write_summary(struct out *o, struct exp *x,
			  const struct stn_config *cfg, const char *json_base,
			  const char *sha256, int64_t exported, int64_t since,
			  int64_t until, uint64_t first, uint64_t last,
			  const struct prev_export *prev, const char *session)
{
	char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1];
	struct stn_buf t = {0};

	cu_time_format(exported, a);
	stn_buf_str(&t, "STATION SERVICE REPORT - SUMMARY\n\n");
	stn_buf_fmt(&t, "This summary is for reading.  The record is %s,\n",
		json_base);
	stn_buf_str(&t, "signed by the station beside it (.sig and .pem).  Check "
		    "it with\n");
	stn_buf_fmt(&t, "    station report verify --trust ROOTS.pem %s\n",
		json_base);
	stn_buf_str(&t, "or with OpenSSL alone as docs/auditor.md shows.\n\n");
	stn_buf_str(&t, "Station     ");
	buf_line_value(&t, cfg->id, 200);
	stn_buf_str(&t, " at site ");
	buf_line_value(&t, cfg->site, 200);
	stn_buf_fmt(&t, "\nExported    %s (session %s)\n", a, session);
	cu_time_format(since, a);
	cu_time_format(until, b);
	stn_buf_fmt(&t, "Period      %s .. %s\n", a, b);
	stn_buf_fmt(&t, "Events      %" PRIu64 " .. %" PRIu64 " (%" PRIu64 ")\n",
		first, last, last - first + 1);
	stn_buf_fmt(&t, "First prev  %s\n", x->first.prev);
	stn_buf_fmt(&t, "Last hash   %s\n", x->last.hash);
	stn_buf_fmt(&t, "SHA-256     %s  %s\n", sha256, json_base);
	if (prev) {
		stn_buf_str(&t, "Previous    ");
		buf_line_value(&t, prev->report, 300);
		stn_buf_fmt(&t, " ended at event %" PRIu64 ",\n            hash %s\n",
			prev->last, prev->last_hash);
		if (first > prev->last + 1)
			stn_buf_fmt(&t, "GAP         events %" PRIu64 " .. %" PRIu64
				" after the previous export are in NO report\n",
				prev->last + 1, first - 1);
	} else {
		stn_buf_fmt(&t, "Previous    none: no earlier export is journaled%s\n",
			first == 1 ? "; this report starts the chain" : "");
	}
	stn_buf_fmt(&t, "Sessions    %zu, one page each (in the order they "
		 "ended)\n", x->ss.n);
	if (x->ss.unlisted)
		stn_buf_fmt(&t, "NOTE        %" PRIu64 " events belong to sessions "
			"past the first %d; they are in the report but have no "
			"page here\n", x->ss.unlisted, STN_REPORT_SESSIONS_MAX);
	out_add(o, t.p ? t.p : "", t.len);
	free(t.p);
	if (lseek(x->spill, 0, SEEK_SET) != 0) {
		o->eno = errno;
		return;
	}
	for (;;) {
		ssize_t n = read(x->spill, o->buf + o->len, IO_CHUNK - o->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			o->eno = errno;
			return;
		}
		if (n == 0)
			break;
		o->len += (size_t)n;
		if (o->len == IO_CHUNK)
			out_flush(o);
	}
}

static void remove_files(const char *json, const char *txt)
{
	char p[4300];

	if (json[0]) {
		unlink(json);
		snprintf(p, sizeof(p), "%s.sig", json);
		unlink(p);
		snprintf(p, sizeof(p), "%s.pem", json);
		unlink(p);
	}
	if (txt[0])
		unlink(txt);
}

/* Finds the period's first and last event in the snapshot. */
static int export_range(struct stn_journal *j, int64_t since, int64_t until,
			const struct prev_export *prev, uint64_t *first,
			uint64_t *last, struct stn_diag *d)
{
	char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1];
	int found = 0, rc;

	rc = stn_journal_span(j, since ? since : INT64_MIN, until, first,
			      last, &found, d);
	if (rc)
		return rc;
	if (found && !since)
		*first = prev ? prev->last + 1 : 1;
	if (found && *first <= *last)
		return 0;
	cu_time_format(until, b);
	if (since) {
		cu_time_format(since, a);
		return stn_fail(d, STN_E_USAGE, "journal",
				"no events between %s and %s: nothing to export",
				a, b);
	}
	return stn_fail(d, STN_E_USAGE, "journal",
			"no events up to %s%s: nothing to export", b,
			prev ? " since the previous export" : "");
}

/* The previous export's last event must still be in the journal with the
 * hash that export recorded: else the journal was rewritten since. */
static int check_previous(struct stn_journal *j, struct prev_export *p,
			  struct stn_diag *d)
{
	struct peek now = {0};
	int found = 0, rc;

	rc = stn_journal_lookup(j, p->last, NULL, take_peek, &now, &found, d);
	if (rc)
		return rc;
	if (!found)
		return stn_fail(d, STN_E_CHAINBROKEN, p->report,
				"event %" PRIu64 ", the last the previous export "
				"held, is no longer in the journal",
				p->last);
	if (strcmp(now.hash, p->last_hash) != 0)
		return stn_fail(d, STN_E_CHAINBROKEN, p->report,
				"event %" PRIu64 " no longer has the hash the "
				"previous export recorded for it (%.16s..., "
				"now %.16s...): the journal was rewritten "
				"after that export",
				p->last, p->last_hash, now.hash);
	return 0;
}

int stn_report_export(struct stn_session *s, const char *out_dir,
		      int64_t since, int64_t until,
		      struct stn_report_exported *out, struct stn_diag *d)
{
	const struct stn_config *cfg;
	struct stn_journal *j = NULL;
	struct prev_export prev = {0};
	struct cu_key *key = NULL;
	struct cu_signer me;
	struct stn_diag why;
	struct exp *x = NULL;
	struct stat st;
	char ts[CU_TIME_LEN + 1], stamp[24], base[160], hex[HASH_LEN + 1];
	char json[4200] = "", txt[4200] = "", sigp[4300], pemp[4300];
	char jpath[4200], tpath[4200];
	uint8_t digest[CU_SHA256_LEN];
	uint64_t first = 0, last = 0;
	int64_t now, since_eff;
	int rc, snap = 0, found = 0, has_prev;

	if (!s || !out_dir || !out)
		return stn_fail(d, STN_E_INTERNAL, "report",
				"export: missing argument");
	cfg = stn_session_config(s);
	/* The export time is now, not the session start: in a long session
	 * (the text UI) events keep coming after the start, and the report
	 * should hold them. */
	now = (int64_t)time(NULL);
	if (now < stn_session_start(s))
		now = stn_session_start(s);
	memset(out, 0, sizeof(*out));
	if (!cfg->key || !cfg->cert)
		return stn_fail(d, STN_E_CONFIG, cfg->path,
				"[station] key and cert are not set: a report "
				"is signed with the station's key");
	if (!id_ok_for_file(cfg->id))
		return stn_fail(d, STN_E_CONFIG, cfg->path,
				"station id \"%.64s\" cannot name a report file "
				"(1 to 64 of A-Z a-z 0-9 . _ -)",
				cfg->id);
	/* The directory is journaled with the export, and the journal holds
	 * UTF-8 only: refuse now rather than after writing the files. */
	if (!stn_journal_utf8_ok(out_dir))
		return stn_fail(d, STN_E_USAGE, "report",
				"--out path is not UTF-8");
	if (stat(out_dir, &st) != 0)
		return stn_fail(d, STN_E_USAGE, out_dir,
				"--out directory: %s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return stn_fail(d, STN_E_USAGE, out_dir,
				"--out is not a directory");
	if (until == 0 || until > now)
		until = now;
	if (since && since > until) {
		char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1];

		cu_time_format(since, a);
		cu_time_format(until, b);
		return stn_fail(d, STN_E_USAGE, "report",
				"--since %s is after the period's end %s", a,
				b);
	}
	/* The report names the station; its certificate must too, or an
	 * auditor could not tell which station signed it. */
	stn_diag_init(&why);
	rc = cu_cert_check(stn_session_trust(s), cfg->cert, CU_ROLE_STATION,
			   now, &me, &why);
	if (rc)
		return stn_fail(d, STN_E_CONFIG, cfg->cert,
				"station certificate unusable: %s", why.text);
	if (strcmp(me.cn, cfg->id) != 0)
		return stn_fail(d, STN_E_CONFIG, cfg->cert,
				"station certificate CN %s is not the station "
				"id %.64s: auditors check that the two match",
				me.cn, cfg->id);
	rc = cu_key_load(cfg->key, cfg->cert, &key, d);
	if (rc)
		goto out;

	cu_time_format(now, ts);
	/* 2026-11-20T10:00:00Z -> 20261120T100000Z */
	snprintf(stamp, sizeof(stamp), "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts,
		 ts + 5, ts + 8, ts + 11, ts + 14, ts + 17);
	snprintf(base, sizeof(base), "report-%s-%s", cfg->id, stamp);
	if (snprintf(jpath, sizeof(jpath), "%s/%s.json", out_dir, base) >=
		    (int)sizeof(jpath) ||
	    snprintf(tpath, sizeof(tpath), "%s/%s.txt", out_dir, base) >=
		    (int)sizeof(tpath)) {
		rc = stn_fail(d, STN_E_USAGE, out_dir, "path too long");
		goto out;
	}
	snprintf(sigp, sizeof(sigp), "%s.sig", jpath);
	snprintf(pemp, sizeof(pemp), "%s.pem", jpath);

	x = calloc(1, sizeof(*x));
	if (!x) {
		rc = stn_fail(d, STN_E_NOMEM, "report", NULL);
		goto out;
	}
	x->spill = -1;
	x->o.fd = -1;
	x->ss.pages = 1;
	{
		char sp[4300];

		snprintf(sp, sizeof(sp), "%s/.report-pages.XXXXXX", cfg->data);
		x->spill = mkostemp(sp, O_CLOEXEC);
		if (x->spill < 0) {
			rc = stn_fail(d, STN_E_IO, cfg->data,
				      "cannot create a scratch file: %s",
				      strerror(errno));
			goto out;
		}
		unlink(sp);
	}

	/* A handle of our own: the session's is shared with install threads
	 * under the session's lock (the text UI), and a snapshot held on it
	 * for the whole export would stop their appends.  WAL lets this
	 * reader and that writer work side by side.  The export's own event
	 * still goes through stn_session_log. */
	rc = stn_journal_open(stn_journal_path(stn_session_journal(s)), &j, d);
	if (rc)
		goto out;
	/* One snapshot: the previous export, the range and the events. */
	rc = stn_journal_read_begin(j, d);
	if (rc)
		goto out;
	snap = 1;
	rc = stn_journal_lookup(j, 0, STN_REPORT_EVENT, take_prev, &prev,
				&found, d);
	if (rc)
		goto out;
	has_prev = found;
	if (has_prev && prev.bad) {
		rc = stn_fail(d, STN_E_JOURNAL, "journal",
			      "event %" PRIu64 " (" STN_REPORT_EVENT ") has no "
			      "usable field %s",
			      prev.event, prev.bad);
		goto out;
	}
	if (has_prev && (rc = check_previous(j, &prev, d)))
		goto out;
	rc = export_range(j, since, until, has_prev ? &prev : NULL, &first,
			  &last, d);
	if (rc)
		goto out;
	rc = stn_journal_lookup(j, first, NULL, take_peek, &x->first, &found,
				d);
	if (rc == 0)
		rc = stn_journal_lookup(j, last, NULL, take_peek, &x->last,
					&found, d);
	if (rc)
		goto out;
	since_eff = since ? since : x->first.time;
	if (since_eff > until) {
		char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1];

		cu_time_format(since_eff, a);
		cu_time_format(until, b);
		rc = stn_fail(d, STN_E_USAGE, "journal",
			      "event %" PRIu64 " (the first not yet exported) "
			      "is dated %s, after the period's end %s: the "
			      "clock went back; give --since and --until",
			      first, a, b);
		goto out;
	}

	rc = out_open(&x->o, out_dir, base, d);
	if (rc)
		goto out;
	write_header(x, cfg, stn_session_id(s), now, since_eff, until, first,
		     last, has_prev ? &prev : NULL);
	rc = stn_journal_each_range(j, first, last, export_event, x, d);
	/* Sessions still open at the period's end get their pages too. */
	for (size_t k = 0; rc == 0 && k < x->ss.n; k++)
		if (x->ss.v[k].page.len)
			page_spill(x, &x->ss.v[k]);
	if (rc == STN_E_IO || (rc == 0 && (x->o.eno || x->spill_eno)))
		rc = stn_fail(d, STN_E_IO, x->o.eno ? x->o.tmp : cfg->data,
			      "cannot write: %s",
			      strerror(x->o.eno ? x->o.eno : x->spill_eno));
	else if (rc == STN_E_NOMEM || x->ss.oom)
		rc = stn_fail(d, STN_E_NOMEM, "report", "summary");
	if (rc)
		goto out;
	stn_journal_read_end(j);
	snap = 0;
	out_str(&x->o, "\n]}\n");
	rc = out_close(&x->o, digest, d);
	if (rc)
		goto out;
	/* The header was written from the same snapshot before the walk
	 * checked the events: they cannot differ, but the header is what
	 * auditors anchor on, so make sure. */
	if (x->n != last - first + 1 ||
	    strcmp(x->seen_first.prev, x->first.prev) ||
	    strcmp(x->seen_first.hash, x->first.hash) ||
	    strcmp(x->seen_last.hash, x->last.hash)) {
		rc = stn_fail(d, STN_E_INTERNAL, x->o.tmp,
			      "report header does not match its events");
		goto out;
	}
	cu_hex(digest, sizeof(digest), hex);
	rc = place(x->o.tmp, jpath, d);
	if (rc)
		goto out;
	x->o.tmp[0] = '\0';
	snprintf(json, sizeof(json), "%s", jpath);
	sync_dir(out_dir);

	rc = cu_sign_file(key, json, NULL, d);
	if (rc)
		goto out;
	/* As an auditor will: the signature over the bytes we wrote (not
	 * what is on disk now), by a station-role chain to our anchors. */
	stn_diag_init(&why);
	if (cu_sig_verify(stn_session_trust(s), digest, sigp, pemp,
			  CU_ROLE_STATION, now, NULL, &why) != 0) {
		rc = stn_fail(d, STN_E_IO, json,
			      "the signature just written does not verify "
			      "(was the file changed meanwhile?): %s",
			      why.text);
		goto out;
	}

	out_fini(&x->o);
	rc = out_open(&x->o, out_dir, base_name(tpath), d);
	if (rc)
		goto out;
	{
		char jb[200];

		snprintf(jb, sizeof(jb), "%s.json", base);
		write_summary(&x->o, x, cfg, jb, hex, now, since_eff, until,
			      first, last, has_prev ? &prev : NULL,
			      stn_session_id(s));
	}
	rc = out_close(&x->o, NULL, d);
	if (rc == 0)
		rc = place(x->o.tmp, tpath, d);
	if (rc)
		goto out;
	x->o.tmp[0] = '\0';
	snprintf(txt, sizeof(txt), "%s", tpath);
	sync_dir(out_dir);

	{
		char a[CU_TIME_LEN + 1], b[CU_TIME_LEN + 1], fs[24], ls[24],
			cs[24], jb[200];
		const struct stn_field f[] = {
			{"report", jb},    {"sha256", hex},
			{"since", a},      {"until", b},
			{"first-seq", fs}, {"last-seq", ls},
			{"events", cs},    {"last-hash", x->last.hash},
			{"dir", out_dir},
		};

		snprintf(jb, sizeof(jb), "%s.json", base);
		cu_time_format(since_eff, a);
		cu_time_format(until, b);
		snprintf(fs, sizeof(fs), "%" PRIu64, first);
		snprintf(ls, sizeof(ls), "%" PRIu64, last);
		snprintf(cs, sizeof(cs), "%" PRIu64, last - first + 1);
		/* Fail closed: an export the journal does not know about did
		 * not happen, so its files go. */
		rc = stn_session_log(s, STN_REPORT_EVENT, f,
				     sizeof(f) / sizeof(f[0]), d);
		if (rc)
			goto out;
	}
	snprintf(out->json, sizeof(out->json), "%s", json);
	snprintf(out->summary, sizeof(out->summary), "%s", txt);
	out->exported = now;
	out->first = first;
	out->last = last;
	out->count = last - first + 1;
	snprintf(out->last_hash, sizeof(out->last_hash), "%s", x->last.hash);
	snprintf(out->sha256, sizeof(out->sha256), "%s", hex);
	out->sessions = x->ss.n;
	out->has_previous = has_prev;
	if (has_prev && first > prev.last + 1) {
		out->gap_first = prev.last + 1;
		out->gap_last = first - 1;
	}
out:
	if (snap)
		stn_journal_read_end(j);
	stn_journal_close(j);
	if (rc)
		remove_files(json, txt);
	if (x) {
		if (x->spill >= 0)
			close(x->spill);
		out_fini(&x->o);
		sessions_free(&x->ss);
		free(x);
	}
	cu_key_free(key);
	return rc;
}

/* ---- verify: one pass over the file, hashing what is parsed ---- */

_Static_assert(STN_REPORT_STRING_MAX >= STN_JOURNAL_BODY_MAX,
	       "every body the journal accepts fits a report string");
_Static_assert(STN_REPORT_FIELDS_MAX >= STN_JOURNAL_FIELDS_MAX,
	       "every event the journal accepts fits a report event");

struct parser {
	/* input */
	int fd;
	const char *path;
	unsigned char *buf;
	size_t pos, len;
	uint64_t total, line;
	struct cu_sha256 *h;
	int eof, eno, toobig;
	/* first failure of layout or chain; the signature is checked first */
	struct stn_diag pd;
	int failed;
	/* the current event's strings */
	struct stn_buf a;
	struct stn_field fields[STN_REPORT_FIELDS_MAX];
	size_t foff[2 * STN_REPORT_FIELDS_MAX];
	/* what the header says, then what the events showed */
	struct stn_report_info *info;
	int have_exported, have_station;
	uint64_t n, next;
	char prev[HASH_LEN + 1];
	int64_t first_time, last_time;
	char first_hash[HASH_LEN + 1];
	/* continuity with a later report: the hash of event `want` */
	int want_set, want_found;
	uint64_t want;
	char want_hash[HASH_LEN + 1];
	struct sessions ss;
};

static int fill(struct parser *P)
{
	ssize_t n;

	if (P->eof)
		return -1;
	do
		n = read(P->fd, P->buf, IO_CHUNK);
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
	cu_sha256_update(P->h, P->buf, (size_t)n);
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
				if (c == 0 || (c >= 0x20 && c != 0x7f))
					return layout(P, "%s: \\u00%02x is not "
						      "an escape the station "
						      "writes",
						      what, c);
			} else if (c != '"' && c != '\\') {
				return layout(P, "%s: escape \\%c is not one "
					      "the station writes (only \\\" "
					      "\\\\ \\u00xx)",
					      what,
					      c >= 0x20 && c < 0x7f ? c : '?');
			}
		} else if (c < 0x20 || c == 0x7f) {
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
	if (!stn_journal_utf8_ok(P->a.p + start))
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

static int jhash(struct parser *P, char out[HASH_LEN + 1], const char *what)
{
	if (jstr_to(P, out, HASH_LEN + 1, what))
		return -1;
	if (!stn_journal_is_hash(out))
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
	    (strcmp(i->first_prev, STN_JOURNAL_GENESIS) == 0))
		return broken(P, "header: only event 1 has the chain start "
			      "(64 zeros) as its prev");
	return 0;
}

/* Which part of a rebuilt body first differs from the stored one.  A '"'
 * inside a JSON string is always escaped, so the first unescaped
 * `,"time":` and so on are the body's own members. */
static const char *body_part(const char *rebuilt, const char *stored)
{
	static const char *const marks[] = {",\"time\":", ",\"type\":",
					    ",\"session\":", ",\"fields\":"};
	static const char *const names[] = {"seq", "time", "type", "session",
					    "fields"};
	size_t k = 0, at;
	const char *p = rebuilt;
	int part = 0;

	while (rebuilt[k] && rebuilt[k] == stored[k])
		k++;
	for (int m = 0; m < 4; m++) {
		const char *q = strstr(p, marks[m]);

		if (!q)
			break;
		at = (size_t)(q - rebuilt);
		if (k < at + 1)
			break;
		part = m + 1;
		p = q + 1;
	}
	return names[part];
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
	char calc[HASH_LEN + 1], *rebuilt = NULL;
	size_t rlen = 0;

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
	if (stn_journal_hash(prev, body, body_len, calc) != 0)
		return broken(P, "out of memory");
	if (strcmp(calc, hash) != 0)
		return broken(P, "event %" PRIu64 ": hash does not match its "
			      "body", seq);
	stn_diag_init(&bd);
	if (stn_journal_body(seq, time, e.type, e.session, e.fields, nf,
			     &rebuilt, &rlen, &bd) != 0)
		return broken(P, "event %" PRIu64 ": %s", seq, bd.text);
	if (rlen != body_len || memcmp(rebuilt, body, rlen) != 0) {
		const char *part = body_part(rebuilt, body);

		free(rebuilt);
		return broken(P, "event %" PRIu64 ": its body does not match "
			      "the %s shown for it", seq, part);
	}
	free(rebuilt);
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
		memcpy(P->want_hash, prev, HASH_LEN + 1);
		P->want_found = 1;
	}
	if (P->want_set && seq == P->want) {
		memcpy(P->want_hash, hash, HASH_LEN + 1);
		P->want_found = 1;
	}
	/* The previous export journaled itself after writing its report;
	 * where this report holds that event, it must say what the header
	 * says about that export. */
	if (i->has_previous && seq == i->prev_event) {
		struct prev_export x = {0};

		take_prev(&x, &e);
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
		memcpy(P->first_hash, hash, HASH_LEN + 1);
	}
	P->last_time = time;
	P->n++;
	P->next = seq + 1;
	memcpy(P->prev, hash, HASH_LEN + 1);
	if (sessions_add(&P->ss, &e) != 0)
		return broken(P, "out of memory listing sessions");
	return 0;
}

static int parse_event(struct parser *P)
{
	char what[48], prev[HASH_LEN + 1], hash[HASH_LEN + 1];
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
			if (!stn_journal_key_ok(P->a.p + P->foff[2 * nf]))
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
	if (lseek(P->fd, 0, SEEK_SET) != 0)
		return stn_fail(d, STN_E_IO, P->path, "cannot seek: %s",
				strerror(errno));
	P->line = 1;
	P->buf = malloc(IO_CHUNK);
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
	cu_sha256_final(P->h, digest);
	return 0;
}

static void parser_fini(struct parser *P);
static struct parser *parser_new(struct stn_report_info *info);

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
	sessions_free(&P->ss);
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
 * stn_report_session moves down over the larger struct sess entries. */
static void take_sessions(struct stn_report_info *i, struct sessions *ss)
{
	struct stn_report_session *v = (struct stn_report_session *)ss->v, *p;

	_Static_assert(sizeof(struct sess) >= sizeof(struct stn_report_session),
		       "compaction moves entries down");
	if (!ss->n)
		return;
	for (size_t k = 0; k < ss->n; k++) {
		sess_final(&ss->v[k]);
		free(ss->v[k].page.p);
		memmove(&v[k], &ss->v[k].s, sizeof(v[k]));
	}
	p = realloc(v, ss->n * sizeof(*p));
	i->sessions = p ? p : v;
	i->nsessions = ss->n;
	free(ss->slot);
	memset(ss, 0, sizeof(*ss));
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
