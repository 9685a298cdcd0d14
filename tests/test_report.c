/* tests/test_report.c: signed service reports (formats §7, docs/auditor.md):
 * export writes exactly the documented layout and journals itself, exports
 * chain, a broken journal or an existing file stops an export with nothing
 * left behind, and verify names every kind of tampering: edits without a
 * new signature, re-signing by keys without the station role, and (with the
 * station's own key) removed, moved, edited and recomputed events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "custody/rfc3339.h"
#include "custody/sha256.h"
#include "custody/sign.h"
#include "station/error.h"
#include "station/journal.h"
#include "station/report.h"
#include "station/session.h"
#include "tests/helpers.h"

struct fx {
	char *dir;    /* holds pki/ for the whole suite */
	char t[4096]; /* this test's directory */
	char conf[4200], out[4200];
	struct stn_session *s;
	int64_t base; /* event times are base + 10 * seq */
};

static int group_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->dir = th_tempdir();
	if (th_make_pki(f->dir) != 0)
		return -1;
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fx *f = *state;

	th_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void write_conf(const struct fx *f, const char *path, const char *id,
		       int with_key)
{
	char text[8192];

	snprintf(text, sizeof(text),
		 "[station]\nid = %s\nsite = plant-7\n%s%s%s%s%sdata = %s/data\n\n"
		 "[trust]\nanchors = %s/pki/roots.pem\nrequire-custody = no\n\n"
		 "[technician ana]\nname = Ana Lima\n",
		 id, with_key ? "key = " : "", with_key ? f->dir : "",
		 with_key ? "/pki/station.key\ncert = " : "",
		 with_key ? f->dir : "", with_key ? "/pki/station.pem\n" : "",
		 f->t, f->dir);
	th_write_str(path, text);
}

static void open_session(struct fx *f, const char *conf)
{
	struct stn_diag d = {0};

	if (stn_session_open(conf, NULL, "test", STN_SESSION_QUIET, &f->s,
			     &d) != 0)
		fail_msg("session: %s: %s", d.where, d.text);
}

static int setup(void **state)
{
	static int n;
	struct fx *f = *state;

	snprintf(f->t, sizeof(f->t), "%s/t%d", f->dir, ++n);
	if (mkdir(f->t, 0700) != 0)
		return -1;
	snprintf(f->conf, sizeof(f->conf), "%s/station.conf", f->t);
	snprintf(f->out, sizeof(f->out), "%s/out", f->t);
	if (mkdir(f->out, 0755) != 0)
		return -1;
	write_conf(f, f->conf, "STN-0042", 1);
	open_session(f, f->conf);
	/* In the past, so no event is newer than the export time. */
	f->base = stn_session_start(f->s) - 100000;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	stn_session_close(f->s, 0);
	f->s = NULL;
	return 0;
}

static uint64_t add(struct fx *f, const char *type, const char *session,
		    const struct stn_field *fl, size_t n)
{
	struct stn_journal *j = stn_session_journal(f->s);
	struct stn_diag d = {0};
	uint64_t count = 0, seq = 0;
	char last[65];

	assert_int_equal(stn_journal_verify(j, &count, last, &d), 0);
	assert_int_equal(stn_journal_append(j, f->base + 10 * (int64_t)(count + 1),
					    type, session, fl, n, &seq, &d),
			 0);
	return seq;
}

/* n plain events in session S-n. */
static void add_plain(struct fx *f, int n)
{
	char v[16];
	struct stn_field fl[] = {{"serial", "SN-1"}, {"n", v}};

	for (int i = 0; i < n; i++) {
		snprintf(v, sizeof(v), "%d", i);
		add(f, "note", "S-plain", fl, 2);
	}
}

static void export_ok(struct fx *f, const char *dir, int64_t since,
		      int64_t until, struct stn_report_exported *x)
{
	struct stn_diag d = {0};

	if (stn_report_export(f->s, dir, since, until, x, &d) != 0)
		fail_msg("export: %s: %s", d.where, d.text);
}

static struct stn_report_info *verify_ok(struct fx *f, const char *path,
					 const char *earlier)
{
	struct stn_report_info *i = NULL;
	struct stn_diag d = {0};

	if (stn_report_verify(stn_session_trust(f->s), path, earlier, &i,
			      &d) != 0)
		fail_msg("verify %s: rule %s: %s: %s", path,
			 stn_err_rule(d.code), d.where, d.text);
	return i;
}

static void verify_refused(struct fx *f, const char *path,
			   const char *earlier, int code, const char *text)
{
	struct stn_report_info *i = NULL;
	struct stn_diag d = {0};
	int rc = stn_report_verify(stn_session_trust(f->s), path, earlier, &i,
				   &d);

	if (rc != code || !strstr(d.text, text))
		fail_msg("verify %s: got %d \"%s\", want %d \"%s\"", path, rc,
			 d.text, code, text);
	assert_null(i);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *b;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
	b[n] = '\0';
	fclose(fp);
	if (len)
		*len = (size_t)n;
	return b;
}

static int entries(const char *dir)
{
	char cmd[4300], out[32] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, sizeof(out), p));
	pclose(p);
	return atoi(out);
}

/* docs/journal.md's string rule, written again here. */
static void json_str(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);

	n += (size_t)snprintf(out + n, cap - n, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p && n < cap;
	     p++) {
		if (*p == '"' || *p == '\\')
			n += (size_t)snprintf(out + n, cap - n, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *p);
		else
			n += (size_t)snprintf(out + n, cap - n, "%c", *p);
	}
	snprintf(out + n, cap - n, "\"");
}

struct lines_ctx {
	char (*want)[4096];
	int n;
};

/* The line the report must hold for an event, built from the journal. */
static int expected_line(void *ctx, const struct stn_event *e)
{
	struct lines_ctx *c = ctx;
	char *o = c->want[c->n++];
	char ts[CU_TIME_LEN + 1];

	cu_time_format(e->time, ts);
	snprintf(o, 4096, "{\"seq\":%llu,\"time\":\"%s\",\"type\":",
		 (unsigned long long)e->seq, ts);
	json_str(o, 4096, e->type);
	strcat(o, ",\"session\":");
	json_str(o, 4096, e->session);
	strcat(o, ",\"fields\":{");
	for (size_t i = 0; i < e->nfields; i++) {
		if (i)
			strcat(o, ",");
		json_str(o, 4096, e->fields[i].key);
		strcat(o, ":");
		json_str(o, 4096, e->fields[i].value);
	}
	snprintf(o + strlen(o), 4096 - strlen(o),
		 "},\"prev\":\"%s\",\"hash\":\"%s\",\"body\":", e->prev,
		 e->hash);
	json_str(o, 4096, e->body);
	strcat(o, "}");
	return 0;
}

static void an_export_verifies_and_carries_each_event_exactly(void **state)
{
	struct fx *f = *state;
	struct stn_field hostile[] = {
		{"serial", "SN-1"},
		{"note", "q\"b\\s\nn\x01" "e\x7f" "f\xc3\xa9"},
	};
	struct lines_ctx lc = {calloc(8, 4096), 0};
	struct stn_report_exported x;
	struct stn_report_info *i;
	struct stn_diag d = {0};
	struct stat st;
	char p[4300], *text, *line, *save = NULL;
	int k = 0;

	assert_non_null(lc.want);
	add_plain(f, 3);
	add(f, "install-finished", "S \"1\"", hostile, 2);
	add_plain(f, 1);
	export_ok(f, f->out, 0, 0, &x);
	assert_int_equal(x.first, 1);
	assert_int_equal(x.last, 5);
	assert_int_equal(x.count, 5);
	assert_int_equal(x.has_previous, 0);
	assert_non_null(strstr(x.json, "/report-STN-0042-"));
	/* The name is the export time, YYYYMMDDTHHMMSZ. */
	{
		char ts[CU_TIME_LEN + 1], want[64];

		assert_true(x.exported >= stn_session_start(f->s));
		cu_time_format(x.exported, ts);
		snprintf(want, sizeof(want),
			 "report-STN-0042-%.4s%.2s%.2sT%.2s%.2s%.2sZ.json", ts,
			 ts + 5, ts + 8, ts + 11, ts + 14, ts + 17);
		assert_string_equal(strrchr(x.json, '/') + 1, want);
	}
	for (const char *ext = ".sig"; ext; ext = strcmp(ext, ".sig") == 0 ? ".pem" : NULL) {
		snprintf(p, sizeof(p), "%s%s", x.json, ext);
		assert_int_equal(stat(p, &st), 0);
	}
	assert_int_equal(stat(x.json, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(stat(x.summary, &st), 0);
	/* Exactly the report files: no temporary file left behind. */
	assert_int_equal(entries(f->out), 4);

	i = verify_ok(f, x.json, NULL);
	assert_string_equal(i->station, "STN-0042");
	assert_string_equal(i->site, "plant-7");
	assert_string_equal(i->signer, "STN-0042");
	assert_string_equal(i->sha256, x.sha256);
	assert_int_equal(i->first, 1);
	assert_int_equal(i->last, 5);
	assert_string_equal(i->first_prev, STN_JOURNAL_GENESIS);
	assert_string_equal(i->last_hash, x.last_hash);
	assert_int_equal(i->has_previous, 0);
	assert_int_equal(i->nsessions, 2);
	stn_report_info_free(i);

	/* Line by line: the header, one line per event, the end. */
	assert_int_equal(stn_journal_each(stn_session_journal(f->s), 0,
					  expected_line, &lc, &d),
			 0);
	text = slurp(x.json, NULL);
	assert_true(strncmp(text, "{\"format\":\"station-report-1\","
				  "\"station\":\"STN-0042\",\"site\":\"plant-7\","
				  "\"exported\":\"", 76) == 0);
	assert_non_null(strstr(text, ",\"count\":5,\"previous-export\":null,"
				     "\"events\":[\n"));
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), k++) {
		if (k == 0)
			continue;
		if (k == 6) {
			assert_string_equal(line, "]}");
			continue;
		}
		assert_true(k <= 5);
		if (strncmp(line, lc.want[k - 1], strlen(lc.want[k - 1])) != 0)
			fail_msg("line %d:\n got %s\nwant %s", k + 1, line,
				 lc.want[k - 1]);
		assert_string_equal(line + strlen(lc.want[k - 1]),
				    k < 5 ? "," : "");
	}
	assert_int_equal(k, 7);
	free(text);
	free(lc.want);
}

struct exported_ctx {
	char report[256], sha256[65], last_seq[24], last_hash[65], events[24];
};

static int take_export(void *ctx, const struct stn_event *e)
{
	struct exported_ctx *c = ctx;

	for (size_t i = 0; i < e->nfields; i++) {
		const char *k = e->fields[i].key, *v = e->fields[i].value;

		if (!strcmp(k, "report"))
			snprintf(c->report, sizeof(c->report), "%s", v);
		if (!strcmp(k, "sha256"))
			snprintf(c->sha256, sizeof(c->sha256), "%s", v);
		if (!strcmp(k, "last-seq"))
			snprintf(c->last_seq, sizeof(c->last_seq), "%s", v);
		if (!strcmp(k, "last-hash"))
			snprintf(c->last_hash, sizeof(c->last_hash), "%s", v);
		if (!strcmp(k, "events"))
			snprintf(c->events, sizeof(c->events), "%s", v);
	}
	return 0;
}

static void the_export_is_journaled_with_the_report_digest_and_last_hash(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct exported_ctx c = {0};
	struct stn_diag d = {0};
	uint8_t md[CU_SHA256_LEN];
	char hex[65], *text;
	size_t len;
	int found = 0;

	add_plain(f, 4);
	export_ok(f, f->out, 0, 0, &x);
	assert_int_equal(stn_journal_lookup(stn_session_journal(f->s), 0,
					    STN_REPORT_EVENT, take_export, &c,
					    &found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_string_equal(c.report, strrchr(x.json, '/') + 1);
	text = slurp(x.json, &len);
	cu_sha256(text, len, md);
	cu_hex(md, sizeof(md), hex);
	free(text);
	assert_string_equal(c.sha256, hex);
	assert_string_equal(x.sha256, hex);
	assert_string_equal(c.last_seq, "4");
	assert_string_equal(c.events, "4");
	assert_string_equal(c.last_hash, x.last_hash);
}

static void subdir(const struct fx *f, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", f->t, name);
	assert_int_equal(mkdir(out, 0755), 0);
}

static void consecutive_exports_chain_and_verify_with_the_previous_report(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b;
	struct stn_report_info *i;
	char da[4200], db[4200];

	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	add_plain(f, 5);
	export_ok(f, da, 0, 0, &a);
	add_plain(f, 3); /* events 7..9 after a's report-exported (6) */
	export_ok(f, db, 0, 0, &b);
	assert_int_equal(b.first, 6);
	assert_int_equal(b.last, 9);
	assert_int_equal(b.has_previous, 1);
	assert_int_equal(b.gap_first, 0);
	i = verify_ok(f, b.json, NULL);
	assert_int_equal(i->has_previous, 1);
	assert_int_equal(i->prev_last, 5);
	assert_int_equal(i->prev_event, 6);
	assert_string_equal(i->prev_last_hash, a.last_hash);
	assert_string_equal(i->prev_sha256, a.sha256);
	assert_string_equal(i->first_prev, a.last_hash);
	assert_int_equal(i->gap_first, 0);
	stn_report_info_free(i);
	i = verify_ok(f, b.json, a.json);
	assert_int_equal(i->earlier_checked, 1);
	assert_int_equal(i->overlap, 0);
	stn_report_info_free(i);
}

static void a_gap_between_exports_shows_and_fails_continuity(void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b;
	struct stn_report_info *i;
	char da[4200], db[4200];

	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	add_plain(f, 10); /* event k at base + 10 k */
	export_ok(f, da, 0, f->base + 50, &a);
	assert_int_equal(a.last, 5);
	export_ok(f, db, f->base + 80, 0, &b);
	assert_int_equal(b.first, 8);
	assert_int_equal(b.gap_first, 6);
	assert_int_equal(b.gap_last, 7);
	i = verify_ok(f, b.json, NULL);
	assert_int_equal(i->gap_first, 6);
	assert_int_equal(i->gap_last, 7);
	stn_report_info_free(i);
	verify_refused(f, b.json, a.json, STN_E_CHAINBROKEN,
		       "events 6..7 are in neither report");
}

static void an_overlap_that_agrees_verifies_and_an_earlier_start_does_not(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b, c;
	struct stn_report_info *i;
	char da[4200], db[4200], dc[4200];

	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	subdir(f, "c", dc, sizeof(dc));
	add_plain(f, 10);
	export_ok(f, da, 0, f->base + 50, &a);    /* 1..5 */
	export_ok(f, db, f->base + 30, 0, &b);    /* 3..11 */
	assert_int_equal(b.first, 3);
	i = verify_ok(f, b.json, a.json);
	assert_int_equal(i->overlap, 3);
	stn_report_info_free(i);
	/* c starts at event 1; its previous export is b (3..11). */
	export_ok(f, dc, f->base + 1, 0, &c);
	assert_int_equal(c.first, 1);
	verify_refused(f, c.json, b.json, STN_E_CHAINBROKEN,
		       "starts at event 1, before");
}

static void an_earlier_report_that_is_not_the_previous_export_is_refused(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b, c;
	char da[4200], db[4200], dc[4200];

	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	subdir(f, "c", dc, sizeof(dc));
	add_plain(f, 2);
	export_ok(f, da, 0, 0, &a);
	add_plain(f, 2);
	export_ok(f, db, 0, 0, &b);
	add_plain(f, 2);
	export_ok(f, dc, 0, 0, &c);
	verify_refused(f, c.json, a.json, STN_E_CHAINBROKEN,
		       "is not the previous export");
	verify_refused(f, a.json, b.json, STN_E_CHAINBROKEN,
		       "names no previous export");
}

static void sql(const struct fx *f, const char *stmt)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "sqlite3 '%s/data/journal.db' \"%s\"",
		 f->t, stmt);
	assert_int_equal(system(cmd), 0);
}

static void export_refuses_a_journal_rewritten_after_the_previous_export(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b;
	struct stn_diag d = {0};
	char da[4200], db[4200];

	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	add_plain(f, 5);
	export_ok(f, da, 0, 0, &a);
	sql(f, "UPDATE events SET hash = "
	       "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"
	       " WHERE seq = 5");
	assert_int_equal(stn_report_export(f->s, db, 0, 0, &b, &d),
			 STN_E_CHAINBROKEN);
	assert_non_null(strstr(d.text, "event 5 no longer has the hash the "
				       "previous export recorded"));
	assert_int_equal(entries(db), 0);
}

static void export_refuses_a_broken_chain_in_its_period_and_leaves_nothing(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct stn_diag d = {0};
	int found = 1;
	struct exported_ctx c = {0};

	add_plain(f, 6);
	sql(f, "UPDATE events SET body = replace(body, '\\\"n\\\":\\\"2\\\"', "
	       "'\\\"n\\\":\\\"9\\\"') WHERE seq = 3");
	assert_int_equal(stn_report_export(f->s, f->out, 0, 0, &x, &d),
			 STN_E_CHAINBROKEN);
	assert_non_null(strstr(d.text, "event 3: hash does not match its "
				       "content"));
	assert_int_equal(entries(f->out), 0);
	assert_int_equal(stn_journal_lookup(stn_session_journal(f->s), 0,
					    STN_REPORT_EVENT, take_export, &c,
					    &found, &d),
			 0);
	assert_int_equal(found, 0);
}

static void export_never_replaces_an_existing_report(void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct stn_diag d = {0};
	char ts[CU_TIME_LEN + 1], p[4300], *text;
	int found = 1;
	struct exported_ctx c = {0};

	add_plain(f, 2);
	/* The names of the next few seconds, each an earlier report. */
	for (int k = 0; k < 5; k++) {
		cu_time_format(time(NULL) + k, ts);
		snprintf(p, sizeof(p),
			 "%s/report-STN-0042-%.4s%.2s%.2sT%.2s%.2s%.2sZ.json",
			 f->out, ts, ts + 5, ts + 8, ts + 11, ts + 14, ts + 17);
		th_write_str(p, "an earlier report\n");
	}
	assert_int_equal(stn_report_export(f->s, f->out, 0, 0, &x, &d),
			 STN_E_IO);
	assert_non_null(strstr(d.text, "already exists: a report is never "
				       "replaced"));
	assert_non_null(strstr(d.where, "/report-STN-0042-"));
	text = slurp(d.where, NULL);
	assert_string_equal(text, "an earlier report\n");
	free(text);
	assert_int_equal(entries(f->out), 5);
	assert_int_equal(stn_journal_lookup(stn_session_journal(f->s), 0,
					    STN_REPORT_EVENT, take_export, &c,
					    &found, &d),
			 0);
	assert_int_equal(found, 0);
}

static void export_without_station_key_or_matching_cn_is_a_config_error(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct stn_session *s = NULL;
	struct stn_diag d = {0};
	char conf[4300];

	add_plain(f, 1);
	snprintf(conf, sizeof(conf), "%s/nokey.conf", f->t);
	write_conf(f, conf, "STN-0042", 0);
	assert_int_equal(stn_session_open(conf, NULL, "test", STN_SESSION_QUIET,
					  &s, &d),
			 0);
	assert_int_equal(stn_report_export(s, f->out, 0, 0, &x, &d),
			 STN_E_CONFIG);
	assert_non_null(strstr(d.text, "[station] key and cert are not set"));
	assert_string_equal(d.where, conf);
	stn_session_close(s, 0);

	/* A certificate naming another station stops the station when it
	 * starts (formats §8), before any work a report would cover; so
	 * does an id of dots alone, which no station certificate names. */
	snprintf(conf, sizeof(conf), "%s/other.conf", f->t);
	write_conf(f, conf, "STN-0099", 1);
	stn_diag_init(&d);
	s = NULL;
	assert_int_equal(stn_session_open(conf, NULL, "test", STN_SESSION_QUIET,
					  &s, &d),
			 STN_E_CONFIG);
	assert_null(s);
	assert_non_null(strstr(d.text, "station certificate CN STN-0042 is not "
				       "the station id STN-0099"));

	snprintf(conf, sizeof(conf), "%s/badid.conf", f->t);
	write_conf(f, conf, "..", 1);
	stn_diag_init(&d);
	assert_int_equal(stn_session_open(conf, NULL, "test", STN_SESSION_QUIET,
					  &s, &d),
			 STN_E_CONFIG);
	assert_null(s);
	assert_int_equal(entries(f->out), 0);
}

static void export_of_an_empty_period_or_a_missing_directory_is_usage(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct stn_diag d = {0};
	char p[4300];

	add_plain(f, 3);
	assert_int_equal(stn_report_export(f->s, f->out, f->base + 1000, 0, &x,
					   &d),
			 STN_E_USAGE);
	assert_non_null(strstr(d.text, "no events between"));
	stn_diag_init(&d);
	assert_int_equal(stn_report_export(f->s, f->out, f->base + 30,
					   f->base + 20, &x, &d),
			 STN_E_USAGE);
	assert_non_null(strstr(d.text, "is after the period's end"));
	stn_diag_init(&d);
	snprintf(p, sizeof(p), "%s/nonexistent", f->t);
	assert_int_equal(stn_report_export(f->s, p, 0, 0, &x, &d),
			 STN_E_USAGE);
	assert_string_equal(d.where, p);
	assert_int_equal(entries(f->out), 0);
}

static void export_removes_its_files_when_the_journal_cannot_record_it(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct stn_diag d = {0};
	char cmd[16384], ready[4300];
	struct stat st;
	int i;

	add_plain(f, 3);
	/* Another process holds the write lock for longer than the 5 s busy
	 * timeout: the export's own event cannot be appended. */
	snprintf(ready, sizeof(ready), "%s/locked", f->t);
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 '%s/data/journal.db' 'BEGIN IMMEDIATE;' "
		 "'.shell touch %s; sleep 8' 'COMMIT;' >/dev/null 2>&1 &",
		 f->t, ready);
	assert_int_equal(system(cmd), 0);
	for (i = 0; i < 100 && stat(ready, &st) != 0; i++)
		usleep(50000);
	assert_int_equal(stat(ready, &st), 0);
	assert_int_equal(stn_report_export(f->s, f->out, 0, 0, &x, &d),
			 STN_E_JOURNAL);
	assert_non_null(strstr(d.text, "cannot journal report-exported"));
	assert_int_equal(entries(f->out), 0);
}

/* ---- tampering ---- */

struct doc {
	char *line[64];
	int n;
};

static void doc_load(struct doc *doc, const char *path)
{
	char *text = slurp(path, NULL), *save = NULL, *l;

	doc->n = 0;
	for (l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		assert_true(doc->n < 64);
		doc->line[doc->n++] = strdup(l);
	}
	free(text);
}

static void doc_free(struct doc *doc)
{
	for (int i = 0; i < doc->n; i++)
		free(doc->line[i]);
	doc->n = 0;
}

static void doc_save(const struct doc *doc, const char *path)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	for (int i = 0; i < doc->n; i++)
		fprintf(fp, "%s\n", doc->line[i]);
	assert_int_equal(fclose(fp), 0);
}

/* Replace the first `from` in line k by `to`. */
static void doc_sub(struct doc *doc, int k, const char *from, const char *to)
{
	char *l = doc->line[k], *at = strstr(l, from), *n;
	size_t a, lf = strlen(from), lt = strlen(to);

	if (!at)
		fail_msg("line %d has no \"%s\"", k + 1, from);
	a = (size_t)(at - l);
	n = malloc(strlen(l) - lf + lt + 1);
	assert_non_null(n);
	memcpy(n, l, a);
	memcpy(n + a, to, lt);
	strcpy(n + a + lt, at + lf);
	free(l);
	doc->line[k] = n;
}

static void doc_del(struct doc *doc, int k)
{
	free(doc->line[k]);
	memmove(&doc->line[k], &doc->line[k + 1],
		(size_t)(doc->n - k - 1) * sizeof(doc->line[0]));
	doc->n--;
}

static void doc_insert(struct doc *doc, int k, const char *line)
{
	assert_true(doc->n < 64);
	memmove(&doc->line[k + 1], &doc->line[k],
		(size_t)(doc->n - k) * sizeof(doc->line[0]));
	doc->line[k] = strdup(line);
	doc->n++;
}

/* Replace the last n bytes of line k by `to`. */
static void doc_tail(struct doc *doc, int k, size_t n, const char *to)
{
	char *l = doc->line[k], *r;
	size_t keep = strlen(l) - n;

	r = malloc(keep + strlen(to) + 1);
	assert_non_null(r);
	memcpy(r, l, keep);
	strcpy(r + keep, to);
	free(l);
	doc->line[k] = r;
}

static void doc_swap(struct doc *doc, int a, int b)
{
	char *t = doc->line[a];

	doc->line[a] = doc->line[b];
	doc->line[b] = t;
}

/* The value of "key":"..." in line k (no escapes in what we look up). */
static void doc_get(const struct doc *doc, int k, const char *key, char *out,
		    size_t cap)
{
	char pat[64];
	const char *at;
	size_t n;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	at = strstr(doc->line[k], pat);
	assert_non_null(at);
	at += strlen(pat);
	n = strcspn(at, "\"");
	assert_true(n < cap);
	memcpy(out, at, n);
	out[n] = '\0';
}

/* The body of event line k, decoded from its JSON string. */
static void doc_body(const struct doc *doc, int k, char *out, size_t cap)
{
	const char *p = strstr(doc->line[k], ",\"body\":\"");
	size_t n = 0;

	assert_non_null(p);
	for (p += 9; *p != '"'; p++) {
		assert_true(n + 1 < cap);
		if (*p == '\\') {
			p++;
			assert_true(*p == '"' || *p == '\\');
		}
		out[n++] = *p;
	}
	out[n] = '\0';
}

/* What a forger with the station's key does after editing event line k:
 * recompute its hash from the stored prev and its (edited) body. */
static void doc_rehash(struct doc *doc, int k)
{
	char prev[65], hash[65], body[4096], calc[65];

	doc_get(doc, k, "prev", prev, sizeof(prev));
	doc_get(doc, k, "hash", hash, sizeof(hash));
	doc_body(doc, k, body, sizeof(body));
	assert_int_equal(stn_journal_hash(prev, body, strlen(body), calc), 0);
	doc_sub(doc, k, hash, calc);
}

static void sign_with(const struct fx *f, const char *path, const char *who)
{
	struct cu_key *k = NULL;
	struct stn_diag d = {0};
	char key[4300], cert[4300];

	snprintf(key, sizeof(key), "%s/pki/%s.key", f->dir, who);
	snprintf(cert, sizeof(cert), "%s/pki/%s.pem", f->dir, who);
	assert_int_equal(cu_key_load(key, cert, &k, &d), 0);
	assert_int_equal(cu_sign_file(k, path, NULL, &d), 0);
	cu_key_free(k);
}

enum edit {
	E_CHAR, E_DEL, E_SWAP, E_FIELD, E_TIME, E_TYPE, E_BODY, E_REHASH,
	E_COUNT, E_LASTHASH, E_MEMBER, E_MISSING, E_EXTRA, E_TRAIL, E_ESCAPE,
	E_FORMAT, E_STATION, E_DUP, E_ORDER, E_NONE, E_GARBAGE,
};

static const struct {
	const char *what;
	enum edit edit;
	const char *signer; /* NULL: keep the station's old signature */
	int code;
	const char *text;
} tamperings[] = {
	{"one byte edited, not re-signed", E_CHAR, NULL, STN_E_SIGNATURE,
	 "does not verify over the file's SHA-256"},
	{"garbage under the old signature", E_GARBAGE, NULL, STN_E_SIGNATURE,
	 "does not verify over the file's SHA-256"},
	{"re-signed by a release key", E_CHAR, "release1", STN_E_ROLE,
	 "holds role release, not station"},
	{"re-signed by a custody key", E_NONE, "custody1", STN_E_ROLE,
	 "holds role custody, not station"},
	{"re-signed by a two-role key", E_NONE, "tworole", STN_E_TWOROLES,
	 "one key may hold one station role"},
	{"re-signed by a key from another root", E_NONE, "other-release",
	 STN_E_CHAIN, ""},
	{"an event removed", E_DEL, "station", STN_E_CHAINBROKEN,
	 "event 4 follows event 2: events must run on without a gap"},
	{"two events swapped", E_SWAP, "station", STN_E_CHAINBROKEN,
	 "event 4 follows event 2"},
	{"an event repeated", E_DUP, "station", STN_E_CHAINBROKEN,
	 "event 3 follows event 3"},
	{"a shown field edited", E_FIELD, "station", STN_E_CHAINBROKEN,
	 "event 3: its body does not match the fields shown for it"},
	{"a shown time edited", E_TIME, "station", STN_E_CHAINBROKEN,
	 "event 3: its body does not match the time shown for it"},
	{"a shown type edited", E_TYPE, "station", STN_E_CHAINBROKEN,
	 "event 3: its body does not match the type shown for it"},
	{"shown fields reordered", E_ORDER, "station", STN_E_CHAINBROKEN,
	 "event 3: its body does not match the fields shown for it"},
	{"a body edited", E_BODY, "station", STN_E_CHAINBROKEN,
	 "event 3: hash does not match its body"},
	{"an event rewritten with its hash recomputed", E_REHASH, "station",
	 STN_E_CHAINBROKEN, "event 4: prev does not name event 3"},
	{"the header's count edited", E_COUNT, "station", STN_E_CHAINBROKEN,
	 "header: first 1, last 6 and count 7 do not agree"},
	{"the header's last hash edited", E_LASTHASH, "station",
	 STN_E_CHAINBROKEN, "header: the last hash is not event 6's hash"},
	{"an unknown member", E_MEMBER, "station", STN_E_SYNTAX,
	 "line 1: report: member \"colour\" where \"station\" belongs"},
	{"a member missing", E_MISSING, "station", STN_E_SYNTAX,
	 "line 1: report: member \"exported\" where \"site\" belongs"},
	{"an unknown member in an event", E_EXTRA, "station", STN_E_SYNTAX,
	 "line 4: event 3: unknown member \"x\" after \"body\""},
	{"bytes after the end", E_TRAIL, "station", STN_E_SYNTAX,
	 "bytes after the end of the report"},
	{"an escape the station never writes", E_ESCAPE, "station",
	 STN_E_SYNTAX, "escape \\n is not one the station writes"},
	{"another format version", E_FORMAT, "station", STN_E_SYNTAX,
	 "format is \"station-report-2\""},
	{"another station's name", E_STATION, "station", STN_E_SIGNATURE,
	 "signed by station CN STN-0042, but the report is for station "
	 "STN-0099"},
};

static void make_base_report(struct fx *f, struct stn_report_exported *x)
{
	struct stn_field a[] = {{"serial", "SN-1"}, {"model", "TX-200"},
				{"note", "line1\nline2"}};

	add_plain(f, 2);
	add(f, "install-finished", "S-2", a, 3);
	add_plain(f, 3);
	export_ok(f, f->out, 0, 0, x);
	assert_int_equal(x->last, 6);
}

static void verify_names_each_tampering_with_its_reason(void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	char path[4300], sigp[4400], pemp[4400], cmd[20000];

	make_base_report(f, &x);
	/* Line 1 is the header; event k is on line k + 1 (index k). */
	for (size_t t = 0; t < sizeof(tamperings) / sizeof(tamperings[0]);
	     t++) {
		struct doc doc;
		char v[128];

		doc_load(&doc, x.json);
		switch (tamperings[t].edit) {
		case E_CHAR: doc_sub(&doc, 3, "\"SN-1\"", "\"SN-7\""); break;
		case E_DEL: doc_del(&doc, 3); break;
		case E_SWAP: doc_swap(&doc, 3, 4); break;
		case E_DUP: doc_insert(&doc, 4, doc.line[3]); break;
		case E_FIELD:
			doc_sub(&doc, 3, "\"model\":\"TX-200\"",
				"\"model\":\"TX-300\"");
			break;
		case E_TIME:
			doc_get(&doc, 3, "time", v, sizeof(v));
			doc_sub(&doc, 3, v, "2001-01-01T00:00:00Z");
			break;
		case E_TYPE:
			doc_sub(&doc, 3, "\"type\":\"install-finished\"",
				"\"type\":\"install-failed\"");
			break;
		case E_ORDER:
			doc_sub(&doc, 3, "\"serial\":\"SN-1\",\"model\":\"TX-200\"",
				"\"model\":\"TX-200\",\"serial\":\"SN-1\"");
			break;
		case E_BODY:
			doc_sub(&doc, 3, "\\\"model\\\":\\\"TX-200\\\"",
				"\\\"model\\\":\\\"TX-300\\\"");
			break;
		case E_REHASH:
			doc_sub(&doc, 3, "\"model\":\"TX-200\"",
				"\"model\":\"TX-300\"");
			doc_sub(&doc, 3, "\\\"model\\\":\\\"TX-200\\\"",
				"\\\"model\\\":\\\"TX-300\\\"");
			doc_rehash(&doc, 3);
			break;
		case E_COUNT: doc_sub(&doc, 0, "\"count\":6", "\"count\":7"); break;
		case E_LASTHASH:
			doc_get(&doc, 0, "hash", v, sizeof(v)); /* first.hash */
			doc_sub(&doc, 0, x.last_hash, v);
			break;
		case E_MEMBER:
			doc_sub(&doc, 0, ",\"station\":", ",\"colour\":\"red\","
							  "\"station\":");
			break;
		case E_MISSING: doc_sub(&doc, 0, ",\"site\":\"plant-7\"", ""); break;
		case E_EXTRA: doc_tail(&doc, 3, 2, ",\"x\":\"1\"},"); break;
		case E_TRAIL:
			doc.line[doc.n++] = strdup("");
			break;
		case E_ESCAPE: doc_sub(&doc, 3, "\\u000a", "\\n"); break;
		case E_FORMAT:
			doc_sub(&doc, 0, "station-report-1", "station-report-2");
			break;
		case E_STATION: doc_sub(&doc, 0, "\"STN-0042\"", "\"STN-0099\""); break;
		case E_NONE: break;
		case E_GARBAGE:
			/* Signature first: what a file says is not read
			 * until its signature holds. */
			doc_free(&doc);
			doc.line[doc.n++] = strdup("{\"format\":\"no\"");
			break;
		}
		snprintf(path, sizeof(path), "%s/tamper-%zu.json", f->t, t);
		doc_save(&doc, path);
		doc_free(&doc);
		snprintf(sigp, sizeof(sigp), "%s.sig", path);
		snprintf(pemp, sizeof(pemp), "%s.pem", path);
		if (tamperings[t].signer) {
			sign_with(f, path, tamperings[t].signer);
		} else {
			snprintf(cmd, sizeof(cmd), "cp '%s.sig' '%s' && cp "
				 "'%s.pem' '%s'", x.json, sigp, x.json, pemp);
			assert_int_equal(system(cmd), 0);
		}
		{
			struct stn_report_info *i = NULL;
			struct stn_diag d = {0};
			int rc = stn_report_verify(stn_session_trust(f->s),
						   path, NULL, &i, &d);

			if (rc != tamperings[t].code ||
			    !strstr(d.text, tamperings[t].text))
				fail_msg("%s: got %d (%s) \"%s\", want %d "
					 "\"%s\"", tamperings[t].what, rc,
					 stn_err_rule(rc), d.text,
					 tamperings[t].code,
					 tamperings[t].text);
			print_message("      %-44s rule %s: %s\n",
				      tamperings[t].what, stn_err_rule(rc),
				      d.text);
			assert_null(i);
			/* Signature problems name the .sig or .pem; the
			 * rest name the report. */
			if (rc == STN_E_CHAINBROKEN || rc == STN_E_SYNTAX)
				assert_string_equal(d.where, path);
		}
	}
	/* The untouched report still verifies. */
	stn_report_info_free(verify_ok(f, x.json, NULL));
}

static void a_cut_tail_verifies_alone_but_breaks_the_next_continuity(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b;
	struct doc doc;
	char da[4200], db[4200], h5[65];

	/* With the station's key a forger can drop the newest events and
	 * fix the header: the report alone cannot show it, the next one
	 * does. */
	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	add_plain(f, 6);
	export_ok(f, da, 0, 0, &a);
	add_plain(f, 2);
	export_ok(f, db, 0, 0, &b);
	doc_load(&doc, a.json);
	doc_get(&doc, 5, "hash", h5, sizeof(h5));
	doc_del(&doc, 6);
	doc_tail(&doc, 5, 1, "");
	doc_sub(&doc, 0, "\"last\":{\"seq\":6", "\"last\":{\"seq\":5");
	doc_sub(&doc, 0, a.last_hash, h5);
	doc_sub(&doc, 0, "\"count\":6", "\"count\":5");
	doc_save(&doc, a.json);
	doc_free(&doc);
	sign_with(f, a.json, "station");
	stn_report_info_free(verify_ok(f, a.json, NULL));
	verify_refused(f, b.json, a.json, STN_E_CHAINBROKEN,
		       "is not the previous export");
}

static void verify_refuses_a_symlink_a_fifo_a_missing_sig_and_a_huge_file(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	char p[4300], q[4400];
	int fd;

	add_plain(f, 2);
	export_ok(f, f->out, 0, 0, &x);
	snprintf(p, sizeof(p), "%s/link.json", f->t);
	assert_int_equal(symlink(x.json, p), 0);
	verify_refused(f, p, NULL, STN_E_UNSAFE, "symbolic link");
	snprintf(p, sizeof(p), "%s/fifo.json", f->t);
	assert_int_equal(mkfifo(p, 0600), 0);
	verify_refused(f, p, NULL, STN_E_UNSAFE, "not a regular file");
	snprintf(p, sizeof(p), "%s/huge.json", f->t);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, STN_REPORT_MAX + 1), 0);
	close(fd);
	verify_refused(f, p, NULL, STN_E_TOOBIG, "more than a report may have");
	snprintf(q, sizeof(q), "%s.sig", x.json);
	assert_int_equal(unlink(q), 0);
	verify_refused(f, x.json, NULL, STN_E_IO, "");
	verify_refused(f, "/nonexistent/report.json", NULL, STN_E_IO,
		       "cannot open the report");
}

static void verify_lists_each_session_with_who_what_authority_and_result(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct stn_report_info *i;
	char *text;
	const char *ff;
	int pages = 0;
	static const struct stn_field start_ana[] = {
		{"station", "STN-0042"}, {"command", "push"},
		{"technician", "ana"}};
	static const struct stn_field start_bo[] = {
		{"command", "push"}, {"technician", "bo"}};
	static const struct stn_field verified[] = {
		{"bundle", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"name", "tx200-app"}, {"version", "2.4.1"},
		{"sequence", "42"}, {"signers", "release-1 release-2"}};
	static const struct stn_field custody[] = {
		{"holders", "dispatch-office-3 > courier-ana > ana"},
		{"first", "2026-11-20T08:00:00Z"}};
	static const struct stn_field token[] = {
		{"token-id", "5f0c2a9e41d37b86a0e4c1d2b3f4a5e6"},
		{"waive", "downgrade"},
		{"reason", "CVE-2026-1234 field fix, ticket OPS-881"}};
	static const struct stn_field started[] = {
		{"serial", "SN-0001"}, {"model", "TX-200"},
		{"hardware", "revB"}, {"sequence-before", "41"}};
	static const struct stn_field finished[] = {
		{"serial", "SN-0001"}, {"sequence", "42"},
		{"proof", "device-sha256"}, {"duration-ms", "812"}};
	static const struct stn_field end_ok[] = {{"result", "ok"}};
	static const struct stn_field refused[] = {
		{"name", "tx200-app"}, {"rule", "image"},
		{"reason", "sha256 is 00, manifest says 11\nfake line"}};
	static const struct stn_field failed[] = {
		{"serial", "SN-0002"}, {"rule", "device"},
		{"reason", "device did not answer in time"}};

	add(f, "session-start", "S-1", start_ana, 3);
	add(f, "bundle-verified", "S-1", verified, 5);
	add(f, "custody-verified", "S-1", custody, 2);
	add(f, "token-applied", "S-1", token, 3);
	add(f, "install-started", "S-1", started, 4);
	add(f, "session-start", "S-2", start_bo, 2);
	add(f, "install-finished", "S-1", finished, 4);
	add(f, "session-end", "S-1", end_ok, 1);
	add(f, "bundle-refused", "S-2", refused, 3);
	add(f, "session-end", "S-2", end_ok, 1);
	add(f, "install-failed", "S-3", failed, 3);
	/* One session, two devices: the second was cut off mid-install. */
	{
		static const struct stn_field a[] = {{"serial", "SN-3"}};
		static const struct stn_field b[] = {{"serial", "SN-3"},
						     {"sequence", "7"}};
		static const struct stn_field c[] = {{"serial", "SN-4"}};

		add(f, "install-started", "S-4", a, 1);
		add(f, "install-finished", "S-4", b, 2);
		add(f, "install-started", "S-4", c, 1);
	}
	export_ok(f, f->out, 0, 0, &x);
	i = verify_ok(f, x.json, NULL);
	assert_int_equal(i->nsessions, 4);
	assert_string_equal(i->sessions[3].device, "SN-3; SN-4");
	assert_string_equal(i->sessions[3].result,
			    "SN-3: installed sequence 7 (proof not recorded); "
			    "an install started without an outcome");
	assert_string_equal(i->sessions[0].id, "S-1");
	assert_string_equal(i->sessions[0].technician, "ana");
	assert_string_equal(i->sessions[0].command, "push");
	assert_string_equal(i->sessions[0].what,
			    "tx200-app 2.4.1 (sequence 42), bundle "
			    "9f86d081884c7d65...");
	assert_string_equal(i->sessions[0].device, "SN-0001 TX-200 revB");
	assert_string_equal(i->sessions[0].authority,
			    "release signed by release-1 release-2; "
			    "custody-verified: holders=dispatch-office-3 > "
			    "courier-ana > ana, first=2026-11-20T08:00:00Z; "
			    "token-applied: token-id=5f0c2a9e41d37b86a0e4c1d2b3f4a5e6, "
			    "waive=downgrade, reason=CVE-2026-1234 field fix, "
			    "ticket OPS-881");
	assert_string_equal(i->sessions[0].result,
			    "SN-0001: installed sequence 42 (proof "
			    "device-sha256, 812 ms)");
	assert_int_equal(i->sessions[0].ended, 1);
	assert_int_equal(i->sessions[0].first, 1);
	assert_int_equal(i->sessions[0].last, 8);
	assert_int_equal(i->sessions[0].events, 7);
	assert_string_equal(i->sessions[1].technician, "bo");
	assert_non_null(strstr(i->sessions[1].result,
			       "REFUSED: rule image: sha256 is 00"));
	assert_int_equal(i->sessions[1].ended, 1);
	assert_string_equal(i->sessions[2].technician, "");
	assert_string_equal(i->sessions[2].result,
			    "SN-0002: install FAILED: rule device: device did "
			    "not answer in time");
	assert_int_equal(i->sessions[2].ended, 0);
	stn_report_info_free(i);

	/* The readable summary: a cover page and one page per session; a
	 * value with a newline cannot start a line of its own. */
	text = slurp(x.summary, NULL);
	for (ff = text; (ff = strchr(ff, '\f')); ff++)
		pages++;
	assert_int_equal(pages, 4);
	assert_non_null(strstr(text, "This summary is for reading.  The record "
				     "is report-STN-0042-"));
	assert_non_null(strstr(text, "\nWho         ana\n"));
	assert_non_null(strstr(text, "\nAuthority   release signed by "
				     "release-1 release-2; custody-verified"));
	assert_non_null(strstr(text, "\nResult      SN-0001: installed "
				     "sequence 42"));
	assert_non_null(strstr(text, "\nResult      REFUSED: rule image"));
	assert_non_null(strstr(text, "(its session-end is not in this "
				     "report)"));
	assert_non_null(strstr(text, "manifest says 11\\x0afake line"));
	assert_null(strstr(text, "\nfake line"));
	free(text);
}

static double since_t(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void a_report_of_3000_events_exports_and_verifies_in_bounded_time(
	void **state)
{
	struct fx *f = *state;
	struct stn_journal *j = stn_session_journal(f->s);
	struct stn_report_exported x;
	struct stn_report_info *i;
	struct stn_diag d = {0};
	struct timespec t0;
	char v[16], sess[16];
	struct stn_field fl[] = {{"serial", "SN-1"}, {"n", v},
				 {"reason", "a reason of some length, as "
					    "refusals have"}};
	double te, tv;

	for (int k = 1; k <= 3000; k++) {
		snprintf(v, sizeof(v), "%d", k);
		snprintf(sess, sizeof(sess), "S-%d", k / 6);
		assert_int_equal(stn_journal_append(j, f->base + k, "note",
						    sess, fl, 3, NULL, &d),
				 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	export_ok(f, f->out, 0, 0, &x);
	te = since_t(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	i = verify_ok(f, x.json, NULL);
	tv = since_t(&t0);
	assert_int_equal(i->count, 3000);
	assert_int_equal(i->nsessions, 501);
	stn_report_info_free(i);
	print_message("      export %.3f s, verify %.3f s for 3000 events\n",
		      te, tv);
	/* Ten times what a slow machine takes: a quadratic step would not
	 * fit. */
	assert_true(te < 5.0);
	assert_true(tv < 5.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(an_export_verifies_and_carries_each_event_exactly),
		T(the_export_is_journaled_with_the_report_digest_and_last_hash),
		T(consecutive_exports_chain_and_verify_with_the_previous_report),
		T(a_gap_between_exports_shows_and_fails_continuity),
		T(an_overlap_that_agrees_verifies_and_an_earlier_start_does_not),
		T(an_earlier_report_that_is_not_the_previous_export_is_refused),
		T(export_refuses_a_journal_rewritten_after_the_previous_export),
		T(export_refuses_a_broken_chain_in_its_period_and_leaves_nothing),
		T(export_never_replaces_an_existing_report),
		T(export_without_station_key_or_matching_cn_is_a_config_error),
		T(export_of_an_empty_period_or_a_missing_directory_is_usage),
		T(export_removes_its_files_when_the_journal_cannot_record_it),
		T(verify_names_each_tampering_with_its_reason),
		T(a_cut_tail_verifies_alone_but_breaks_the_next_continuity),
		T(verify_refuses_a_symlink_a_fifo_a_missing_sig_and_a_huge_file),
		T(verify_lists_each_session_with_who_what_authority_and_result),
		T(a_report_of_3000_events_exports_and_verifies_in_bounded_time),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
