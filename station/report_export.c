/* station/report_export.c: `station report export` (formats §7).  A
 * range of the journal, already checked link by link, is streamed into
 * station-report-1 JSON while what is written is hashed; the report is
 * signed, its signature checked as an auditor would, the readable summary
 * written beside it, and only then is the export journaled.
 * docs/auditor.md describes the layout byte for byte. */
#include "station/report_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "station/base/rfc3339.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "custody/sig.h"
#include "custody/sign.h"
#include "station/canon.h"
#include "station/config.h"
#include "station/base/error.h"
#include "station/events.h"
#include "station/session.h"
#include "station/base/monotime.h"

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

/* Sleeps until the wall clock's next whole second. */
static void sleep_to_next_second(void)
{
	struct timespec t;

	if (clock_gettime(CLOCK_REALTIME, &t) != 0)
		t.tv_nsec = 0;
	/* The rest of this second rounded up, and 1 ms. */
	stn_sleep_ms((1000000000L - t.tv_nsec + 999999L) / 1000000L + 1);
}

/* Whether a report file of this name is already there (or cannot be
 * told apart from being there). */
static int name_taken(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

/* How long the second of two exports in one second waits for its own
 * name, at most: the next second comes within one; a clock that does not
 * move (held back to the session start) is refused as before. */
#define NAME_WAIT_SECONDS 2

/*
 * Names the report by its export time *now (formats §7:
 * report-STATIONID-YYYYMMDDTHHMMSSZ, the second it was exported).  If a
 * report of that name is already in out_dir (two exports in one second),
 * the export waits for the next second and takes that as its time, so
 * that names keep the spec's form and a report is never replaced
 * (docs/decisions.md).  base gets the name without extension, jpath and
 * tpath the .json and .txt paths (4200 bytes each).  STN_E_USAGE for a
 * path too long; STN_E_IO when the name is still taken after the wait.
 */
static int export_name(const char *out_dir, const char *id, int64_t *now,
		       char base[160], char *jpath, char *tpath,
		       struct stn_diag *d)
{
	char ts[CU_TIME_LEN + 1];

	for (int waited = 0;; waited++) {
		cu_time_format(*now, ts);
		/* 2026-11-20T10:00:00Z -> report-ID-20261120T100000Z */
		snprintf(base, 160, "report-%s-%.4s%.2s%.2sT%.2s%.2s%.2sZ", id,
			 ts, ts + 5, ts + 8, ts + 11, ts + 14, ts + 17);
		if (snprintf(jpath, 4200, "%s/%s.json", out_dir, base) >= 4200 ||
		    snprintf(tpath, 4200, "%s/%s.txt", out_dir, base) >= 4200)
			return stn_fail(d, STN_E_USAGE, out_dir,
					"path too long");
		if (!name_taken(jpath) && !name_taken(tpath))
			return 0;
		if (waited == NAME_WAIT_SECONDS)
			return stn_fail(d, STN_E_IO, jpath,
					"already exists: a report is never "
					"replaced, and the clock did not reach "
					"a free second in %d s",
					NAME_WAIT_SECONDS);
		sleep_to_next_second();
		if ((int64_t)time(NULL) > *now)
			*now = (int64_t)time(NULL);
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
				"(another export took this name meanwhile)");
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
	int hrc; /* first hashing error */
};

static void out_flush(struct out *o)
{
	size_t done = 0;
	ssize_t n;

	if (o->eno) {
		o->len = 0;
		return;
	}
	if (!o->hrc)
		o->hrc = cu_sha256_update(o->h, o->buf, o->len);
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
		size_t room = RPT_IO_CHUNK - o->len, k = n < room ? n : room;

		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
		if (o->len == RPT_IO_CHUNK)
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

static void out_sink(void *ctx, const void *p, size_t n)
{
	out_add(ctx, p, n);
}

/* A string as the canonical encoder spells it: the one spelling verify
 * accepts (station/canon.h). */
static void out_json(struct out *o, const char *s)
{
	stn_canon_json(out_sink, o, s);
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
	o->buf = malloc(RPT_IO_CHUNK);
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
	if (rc == 0 && digest &&
	    ((rc = o->hrc) || (rc = cu_sha256_final(o->h, digest))))
		rc = stn_fail(d, rc, o->tmp, "cannot hash: %s",
			      stn_strerror(rc));
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

struct peek {
	int64_t time;
	char prev[RPT_HASH_LEN + 1], hash[RPT_HASH_LEN + 1];
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
	struct rpt_sessions ss;
	uint64_t n;
	struct peek first, last; /* as the header states them */
	struct peek seen_first, seen_last;
	/* Summary pages of sessions that have ended, kept in an unlinked
	 * scratch file so that memory follows the open sessions, not the
	 * length of the report. */
	int spill;
	/* The summary's first page: its entries, per section, in scratch
	 * files of their own (the outline's counts stay in memory). */
	struct rpt_outline outline;
	int sect[RPT_SECTIONS];
	uint64_t pages;
	int spill_eno;
};

static void fd_add(struct exp *x, int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len && !x->spill_eno) {
		n = write(fd, p, len);
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

static void spill_add(struct exp *x, const char *p, size_t len)
{
	fd_add(x, x->spill, p, len);
}

/* The outline's entries of the last event, to their scratch files. */
static void outline_spill(struct exp *x)
{
	for (int k = 0; k < RPT_SECTIONS; k++) {
		struct stn_buf *b = &x->outline.sect[k];

		if (b->oom) /* an entry lost is a summary that lies */
			x->spill_eno = ENOMEM;
		fd_add(x, x->sect[k], b->p ? b->p : "", b->len);
		b->len = 0;
	}
}

/* A session's page: who, what, on whose authority, with what result, then
 * its events.  Written when the session ends, or at the end of the walk. */
static void page_spill(struct exp *x, struct rpt_sess *v)
{
	struct stn_buf h = {0};

	rpt_sess_final(v);
	rpt_page_head(&h, v);
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
	/* An exported event is its canonical body (which the journal has
	 * just checked against its columns) with the chain members added:
	 * the body without its closing brace, then prev, hash and body. */
	out_add(o, e->body, strlen(e->body) - 1);
	out_str(o, ",\"prev\":\"");
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
	if (rpt_sessions_add(&x->ss, e) != 0)
		return STN_E_NOMEM;
	outline_spill(x);
	if (stn_ev_is(e->type, STN_EV_SESSION_END) && x->ss.n &&
	    strcmp(x->ss.v[x->ss.hint].s.id, e->session) == 0)
		page_spill(x, &x->ss.v[x->ss.hint]);
	return x->spill_eno ? STN_E_IO : 0;
}

static void write_header(struct exp *x, const struct stn_config *cfg,
			 const char *session, int64_t exported, int64_t since,
			 int64_t until, uint64_t first, uint64_t last,
			 const struct rpt_prev *prev)
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

static void out_buf(struct out *o, struct stn_buf *t)
{
	if (t->oom)
		o->eno = ENOMEM;
	out_add(o, t->p ? t->p : "", t->len);
	free(t->p);
	memset(t, 0, sizeof(*t));
}

/* Copies scratch file fd to o. */
static void out_scratch(struct out *o, int fd)
{
	if (lseek(fd, 0, SEEK_SET) != 0) {
		o->eno = errno;
		return;
	}
	for (;;) {
		ssize_t n = read(fd, o->buf + o->len, RPT_IO_CHUNK - o->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			o->eno = errno;
			return;
		}
		if (n == 0)
			break;
		o->len += (size_t)n;
		if (o->len == RPT_IO_CHUNK)
			out_flush(o);
	}
}

/* The readable summary: first what failed or was refused, every exception
 * used and what was installed, then the cover (the record and its chain),
 * then one page (form feed) per session, from the scratch files. */
static void write_summary(struct out *o, struct exp *x,
			  const struct rpt_cover *c)
{
	struct stn_buf t = {0};

	rpt_cover_head(&t, c, &x->outline);
	out_buf(o, &t);
	for (int k = 0; k < RPT_SECTIONS; k++) {
		rpt_outline_heading(&t, &x->outline, k);
		out_buf(o, &t);
		out_scratch(o, x->sect[k]);
		out_add(o, "\n", 1);
	}
	rpt_cover_page(&t, c);
	out_buf(o, &t);
	out_scratch(o, x->spill);
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
			const struct rpt_prev *prev, uint64_t *first,
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
static int check_previous(struct stn_journal *j, struct rpt_prev *p,
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
	struct rpt_prev prev = {0};
	struct cu_key *key = NULL;
	struct cu_signer me;
	struct stn_diag why;
	struct exp *x = NULL;
	struct stat st;
	char base[160], hex[RPT_HASH_LEN + 1];
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
	if (!stn_canon_utf8_ok(out_dir))
		return stn_fail(d, STN_E_USAGE, "report",
				"--out path is not UTF-8");
	if (stat(out_dir, &st) != 0)
		return stn_fail(d, STN_E_USAGE, out_dir,
				"--out directory: %s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return stn_fail(d, STN_E_USAGE, out_dir,
				"--out is not a directory");
	rc = export_name(out_dir, cfg->id, &now, base, jpath, tpath, d);
	if (rc)
		return rc;
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

	snprintf(sigp, sizeof(sigp), "%s.sig", jpath);
	snprintf(pemp, sizeof(pemp), "%s.pem", jpath);

	x = calloc(1, sizeof(*x));
	if (!x) {
		rc = stn_fail(d, STN_E_NOMEM, "report", NULL);
		goto out;
	}
	x->spill = -1;
	for (int k = 0; k < RPT_SECTIONS; k++)
		x->sect[k] = -1;
	x->o.fd = -1;
	x->ss.pages = 1;
	x->ss.outline = &x->outline;
	for (int k = -1; k < RPT_SECTIONS; k++) {
		int *fd = k < 0 ? &x->spill : &x->sect[k];
		char sp[4300];

		snprintf(sp, sizeof(sp), "%s/.report-pages.XXXXXX", cfg->data);
		*fd = mkostemp(sp, O_CLOEXEC);
		if (*fd < 0) {
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
	rc = stn_journal_lookup(j, 0, STN_REPORT_EVENT, rpt_take_prev, &prev,
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
		const struct rpt_cover c = {
			.station = cfg->id, .site = cfg->site,
			.session = stn_session_id(s), .json_base = jb,
			.sha256 = hex, .first_prev = x->first.prev,
			.last_hash = x->last.hash, .exported = now,
			.since = since_eff, .until = until, .first = first,
			.last = last, .prev = has_prev ? &prev : NULL,
			.sessions = x->ss.n, .unlisted = x->ss.unlisted,
		};

		snprintf(jb, sizeof(jb), "%s.json", base);
		write_summary(&x->o, x, &c);
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
		rc = stn_session_log(s, STN_EV_REPORT_EXPORTED, f,
				     STN_EV_N(f), d);
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
		for (int k = 0; k < RPT_SECTIONS; k++) {
			if (x->sect[k] >= 0)
				close(x->sect[k]);
			free(x->outline.sect[k].p);
		}
		out_fini(&x->o);
		rpt_sessions_free(&x->ss);
		free(x);
	}
	cu_key_free(key);
	return rc;
}

