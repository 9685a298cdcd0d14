/* tests/report_fixture.h: the fixture the report suites share
 * (test_report_export.c, test_report_verify.c, test_report_summary.c): a
 * test PKI for the whole suite, and per test a station configuration, an
 * open session, events at known times, and export and verify helpers that
 * fail the test with the diagnostic.  Helpers are static inline so that a
 * suite that does not use one is not warned about it. */
#ifndef TESTS_REPORT_FIXTURE_H
#define TESTS_REPORT_FIXTURE_H

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

#include "station/base/rfc3339.h"
#include "station/base/sha256.h"
#include "custody/sign.h"
#include "station/base/error.h"
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

static inline int group_setup(void **state)
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

static inline int group_teardown(void **state)
{
	struct fx *f = *state;

	th_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static inline void write_conf(const struct fx *f, const char *path, const char *id,
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

static inline void open_session(struct fx *f, const char *conf)
{
	struct stn_diag d = {0};

	if (stn_session_open(conf, NULL, "test", STN_SESSION_QUIET, &f->s,
			     &d) != 0)
		fail_msg("session: %s: %s", d.where, d.text);
}

static inline int setup(void **state)
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

static inline int teardown(void **state)
{
	struct fx *f = *state;

	stn_session_close(f->s, 0);
	f->s = NULL;
	return 0;
}

static inline uint64_t add(struct fx *f, const char *type, const char *session,
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
static inline void add_plain(struct fx *f, int n)
{
	char v[16];
	struct stn_field fl[] = {{"serial", "SN-1"}, {"n", v}};

	for (int i = 0; i < n; i++) {
		snprintf(v, sizeof(v), "%d", i);
		add(f, "note", "S-plain", fl, 2);
	}
}

static inline void export_ok(struct fx *f, const char *dir, int64_t since,
		      int64_t until, struct stn_report_exported *x)
{
	struct stn_diag d = {0};

	if (stn_report_export(f->s, dir, since, until, x, &d) != 0)
		fail_msg("export: %s: %s", d.where, d.text);
}

static inline struct stn_report_info *verify_ok(struct fx *f, const char *path,
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

static inline void verify_refused(struct fx *f, const char *path,
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

static inline char *slurp(const char *path, size_t *len)
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

static inline int entries(const char *dir)
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
static inline void json_str(char *out, size_t cap, const char *s)
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
static inline int expected_line(void *ctx, const struct stn_event *e)
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


struct exported_ctx {
	char report[256], sha256[65], last_seq[24], last_hash[65], events[24];
};

static inline int take_export(void *ctx, const struct stn_event *e)
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


static inline void subdir(const struct fx *f, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", f->t, name);
	assert_int_equal(mkdir(out, 0755), 0);
}


static inline void sql(const struct fx *f, const char *stmt)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "sqlite3 '%s/data/journal.db' \"%s\"",
		 f->t, stmt);
	assert_int_equal(system(cmd), 0);
}

#endif
