/* tests/test_journal.c: the journal's contract: canonical bodies, the hash
 * chain, verification naming the damaged event, lookups, filters, period
 * ranges, schema migration, appends that survive SIGKILL, and the
 * answers of a filled journal (their speed is `make bench`'s).  sqlite3.h is included here only to tamper with a journal
 * from outside and to fill big journals fast with an independent encoder.
 *
 * For tests/bench_journal.sh: `test_journal --fill PATH N START STEP`
 * appends N events to the journal at PATH in one transaction, times START,
 * START+STEP, ...; `--append PATH N` times N durable appends; `--scale
 * PATH N` times a period export's and the filters' steps on N events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "station/base/rfc3339.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/base/error.h"
#include "station/events.h"
#include "station/journal.h"

/* 2026-11-20T10:00:00Z */
#define T0 INT64_C(1795168800)

struct fx {
	char dir[64];
	char path[128];
	struct stn_journal *j;
};

static int rm_one(const char *p, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct stn_diag d = {0};

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_journal.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/journal.db", f->dir);
	assert_int_equal(stn_journal_open(f->path, &f->j, &d), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	stn_journal_close(f->j);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void append_ok(struct stn_journal *j, int64_t t, const char *type,
		      const char *session, const struct stn_field *fl,
		      size_t n, uint64_t want_seq)
{
	struct stn_diag d = {0};
	uint64_t seq = 0;

	assert_int_equal(stn_journal_append(j, t, type, session, fl, n, &seq,
					    &d),
			 0);
	assert_int_equal(seq, want_seq);
}

/* Events i = 1..n with distinct times, a serial SN-i and a sequence i. */
static void append_many(struct stn_journal *j, int n)
{
	char serial[16], sequence[16];
	struct stn_field fl[] = {{"serial", serial}, {"sequence", sequence}};

	for (int i = 1; i <= n; i++) {
		snprintf(serial, sizeof(serial), "SN-%d", i);
		snprintf(sequence, sizeof(sequence), "%d", i);
		append_ok(j, T0 + 60 * i, "install-finished", "S-1", fl, 2,
			  (uint64_t)i);
	}
}

/* Collects copies of everything each() hands out. */
struct seen {
	int n;
	uint64_t seq[16];
	int64_t time[16];
	char type[16][32], session[16][32], body[16][512], prev[16][65],
		hash[16][65];
	size_t nfields[16];
	char fields[16][512]; /* "k=v;k=v;" */
	int stop_at;          /* return 7 from the callback at this count */
};

static int collect(void *ctx, const struct stn_event *e)
{
	struct seen *s = ctx;
	int i = s->n++;

	assert_true(i < 16);
	s->seq[i] = e->seq;
	s->time[i] = e->time;
	snprintf(s->type[i], sizeof(s->type[i]), "%s", e->type);
	snprintf(s->session[i], sizeof(s->session[i]), "%s", e->session);
	snprintf(s->body[i], sizeof(s->body[i]), "%s", e->body);
	snprintf(s->prev[i], sizeof(s->prev[i]), "%s", e->prev);
	snprintf(s->hash[i], sizeof(s->hash[i]), "%s", e->hash);
	s->nfields[i] = e->nfields;
	s->fields[i][0] = '\0';
	for (size_t k = 0; k < e->nfields; k++) {
		size_t len = strlen(s->fields[i]);

		snprintf(s->fields[i] + len, sizeof(s->fields[i]) - len,
			 "%s=%s;", e->fields[k].key, e->fields[k].value);
	}
	return s->n == s->stop_at ? 7 : 0;
}

static void sha256_hex_of(const char *a, const char *b, char hex[65])
{
	size_t la = strlen(a), lb = strlen(b);
	char *m = malloc(la + 1 + lb);
	uint8_t md[CU_SHA256_LEN];

	assert_non_null(m);
	memcpy(m, a, la);
	m[la] = '\n';
	memcpy(m + la + 1, b, lb);
	assert_int_equal(cu_sha256(m, la + 1 + lb, md), 0);
	cu_hex(md, sizeof(md), hex);
	free(m);
}

static void append_then_each_returns_events_in_order_with_fields(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct seen *s = calloc(1, sizeof(*s));
	struct stn_field a[] = {{"zeta", "1"}, {"alpha", "2"}, {"mid", "3"}};
	struct stn_field b[] = {{"serial", "SN-1"}};

	assert_non_null(s);
	append_ok(f->j, T0, "session-start", "S-1", NULL, 0, 1);
	append_ok(f->j, T0 + 1, "media-seen", "S-1", a, 3, 2);
	append_ok(f->j, T0 + 2, "device-seen", "S-2", b, 1, 3);
	assert_int_equal(stn_journal_each(f->j, 0, collect, s, &d), 0);
	assert_int_equal(s->n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(s->seq[i], (uint64_t)i + 1);
		assert_int_equal(s->time[i], T0 + i);
	}
	assert_string_equal(s->type[0], "session-start");
	assert_string_equal(s->type[1], "media-seen");
	assert_string_equal(s->session[2], "S-2");
	assert_int_equal(s->nfields[0], 0);
	/* The caller's order, not alphabetical. */
	assert_string_equal(s->fields[1], "zeta=1;alpha=2;mid=3;");
	assert_string_equal(s->fields[2], "serial=SN-1;");
	assert_string_equal(s->prev[0], STN_JOURNAL_GENESIS);
	assert_string_equal(s->prev[1], s->hash[0]);
	assert_string_equal(s->prev[2], s->hash[1]);
	free(s);
}

static void body_is_the_documented_json_with_escapes(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct seen *s = calloc(1, sizeof(*s));
	/* quote, backslash, newline, 0x01, 0x7f, and UTF-8 left as is; the
	 * string literals are split so \x01 does not swallow the next digit. */
	struct stn_field fl[] = {
		{"serial", "SN-1"},
		{"note", "q\"b\\s\nn\x01" "e\x7f" "f\xc3\xa9"},
	};

	assert_non_null(s);
	append_ok(f->j, T0, "install-finished", "S \"1\"", fl, 2, 1);
	append_ok(f->j, T0 + 59, "session-end", "", NULL, 0, 2);
	assert_int_equal(stn_journal_each(f->j, 0, collect, s, &d), 0);
	assert_string_equal(
		s->body[0],
		"{\"seq\":1,\"time\":\"2026-11-20T10:00:00Z\","
		"\"type\":\"install-finished\",\"session\":\"S \\\"1\\\"\","
		"\"fields\":{\"serial\":\"SN-1\","
		"\"note\":\"q\\\"b\\\\s\\u000an\\u0001e\\u007ff\xc3\xa9\"}}");
	assert_string_equal(s->body[1],
			    "{\"seq\":2,\"time\":\"2026-11-20T10:00:59Z\","
			    "\"type\":\"session-end\",\"session\":\"\","
			    "\"fields\":{}}");
	free(s);
}

static void hash_is_sha256_of_prev_newline_body(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct seen *s = calloc(1, sizeof(*s));
	struct stn_field fl[] = {{"serial", "SN-1"}, {"sequence", "12"}};
	char want[65];

	assert_non_null(s);
	append_ok(f->j, T0, "install-finished", "S-1", fl, 2, 1);
	for (int i = 2; i <= 5; i++)
		append_ok(f->j, T0 + i, "install-finished", "S-1", fl, 2,
			  (uint64_t)i);
	assert_int_equal(stn_journal_each(f->j, 0, collect, s, &d), 0);
	/* Fixed value from `printf '%064d\n%s' 0 "$body" | sha256sum`, so the
	 * test does not only agree with itself. */
	assert_string_equal(
		s->body[0],
		"{\"seq\":1,\"time\":\"2026-11-20T10:00:00Z\","
		"\"type\":\"install-finished\",\"session\":\"S-1\","
		"\"fields\":{\"serial\":\"SN-1\",\"sequence\":\"12\"}}");
	assert_string_equal(
		s->hash[0],
		"5722a332985676395b894198a01359defe373051948d56b7ff8e8d0d3df70f07");
	for (int i = 0; i < s->n; i++) {
		sha256_hex_of(s->prev[i], s->body[i], want);
		assert_string_equal(s->hash[i], want);
		if (i)
			assert_string_equal(s->prev[i], s->hash[i - 1]);
	}
	free(s);
}

static int last_hash_of(void *ctx, const struct stn_event *e)
{
	snprintf(ctx, 65, "%s", e->hash);
	return 0;
}

static void verify_passes_for_100_events(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	uint64_t count = 0;
	char last[65] = "", want[65] = "";

	append_many(f->j, 100);
	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	assert_int_equal(count, 100);
	assert_int_equal(stn_journal_each(f->j, 0, last_hash_of, want, &d), 0);
	assert_string_equal(last, want);
}

static void an_empty_journal_verifies_with_the_genesis_hash(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	uint64_t count = 99;
	char last[65] = "";

	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	assert_int_equal(count, 0);
	assert_string_equal(last, STN_JOURNAL_GENESIS);
}

/* An SQL function for the tamperer who knows the format and recomputes the
 * hash of the row they rewrote. */
static void sql_sha256hex(sqlite3_context *c, int argc, sqlite3_value **v)
{
	uint8_t md[CU_SHA256_LEN];
	char hex[65];

	(void)argc;
	assert_int_equal(cu_sha256(sqlite3_value_blob(v[0]), (size_t)sqlite3_value_bytes(v[0]),
		  md), 0);
	cu_hex(md, sizeof(md), hex);
	sqlite3_result_text(c, hex, -1, SQLITE_TRANSIENT);
}

static void tamper(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_create_function(db, "sha256hex", 1,
						 SQLITE_UTF8, NULL,
						 sql_sha256hex, NULL, NULL),
			 SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("tamper SQL failed: %s", err);
	sqlite3_close(db);
}

static const struct {
	const char *what, *sql, *text;
} tamperings[] = {
	{"edit a field value",
	 "UPDATE fields SET value = 'SN-99' WHERE seq = 5 AND key = 'serial'",
	 "event 5: field rows do not match its body"},
	{"add a field row",
	 "INSERT INTO fields(seq, key, value) VALUES(2, 'extra', 'x')",
	 "event 2: field rows do not match its body"},
	{"edit a body",
	 "UPDATE events SET body = replace(body, 'SN-7', 'SN-8') WHERE seq = 7",
	 "event 7: hash does not match its content"},
	{"delete a middle row",
	 "DELETE FROM fields WHERE seq = 4; DELETE FROM events WHERE seq = 4",
	 "seq gap after 3"},
	{"delete the first row",
	 "DELETE FROM fields WHERE seq = 1; DELETE FROM events WHERE seq = 1",
	 "seq gap after 0"},
	{"delete the last event but not its fields",
	 "DELETE FROM events WHERE seq = 10",
	 "field rows name event 10, which is not in the journal"},
	{"swap two rows' times",
	 "UPDATE events SET time = CASE seq"
	 " WHEN 3 THEN (SELECT time FROM events WHERE seq = 6)"
	 " ELSE (SELECT time FROM events WHERE seq = 3) END"
	 " WHERE seq IN (3, 6)",
	 "event 3: time column does not match its body"},
	{"change a session",
	 "UPDATE events SET session = 'S-2' WHERE seq = 9",
	 "event 9: session column does not match its body"},
	{"change a hash",
	 "UPDATE events SET hash = "
	 "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"
	 " WHERE seq = 8",
	 "event 8: hash does not match its content"},
	{"change a prev",
	 "UPDATE events SET prev = (SELECT hash FROM events WHERE seq = 2)"
	 " WHERE seq = 4",
	 "event 4: prev does not name event 3"},
	{"rewrite an event and its hash consistently",
	 "UPDATE fields SET value = 'SN-99' WHERE seq = 5 AND key = 'serial';"
	 "UPDATE events SET body = replace(body, '\"SN-5\"', '\"SN-99\"')"
	 " WHERE seq = 5;"
	 "UPDATE events SET hash = sha256hex(prev || char(10) || body)"
	 " WHERE seq = 5",
	 "event 6: prev does not name event 5"},
	{"blank a field key",
	 "UPDATE fields SET key = NULL WHERE seq = 2 AND key = 'serial'",
	 "event 2: a field row has no key or value"},
};

static void verify_names_the_seq_of_each_tampering(void **state)
{
	struct fx *f = *state;
	char path[160];

	for (size_t i = 0; i < sizeof(tamperings) / sizeof(tamperings[0]);
	     i++) {
		struct stn_journal *j = NULL;
		struct stn_diag d = {0};
		uint64_t count = 0;
		char last[65];

		snprintf(path, sizeof(path), "%s/t%zu.db", f->dir, i);
		assert_int_equal(stn_journal_open(path, &j, &d), 0);
		append_many(j, 10);
		assert_int_equal(stn_journal_verify(j, &count, last, &d), 0);
		/* Through a second connection while ours stays open. */
		tamper(path, tamperings[i].sql);
		assert_int_equal(stn_journal_verify(j, &count, last, &d),
				 STN_E_CHAINBROKEN);
		assert_int_equal(d.code, STN_E_CHAINBROKEN);
		if (!strstr(d.text, tamperings[i].text))
			fail_msg("%s: got \"%s\", want \"%s\"",
				 tamperings[i].what, d.text,
				 tamperings[i].text);
		assert_string_equal(d.where, path);
		stn_journal_close(j);
	}
}

static void query(struct stn_journal *j, const struct stn_journal_filter *q,
		  const char *want);

static int count_one(void *ctx, const struct stn_event *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

/* The store's lookup by type and field: what the vocabulary's token-use
 * and anti-rollback lookups (station/events.c) are built on. */
static int matches(struct stn_journal *j, const char *type, const char *key,
		   const char *value)
{
	const char *types[] = {type};
	struct stn_journal_filter q = {.types = types, .ntypes = 1};
	struct stn_diag d = {0};
	int n = 0;

	q.fields[0] = (struct stn_journal_field_is){key, NULL, value};
	assert_int_equal(stn_journal_query(j, &q, count_one, &n, &d), 0);
	return n;
}

static void query_finds_events_by_type_and_field(void **state)
{
	struct fx *f = *state;
	struct stn_field tok[] = {{"token-id", "TOK-42"}, {"serial", "SN-1"}};
	struct stn_field other[] = {{"token-id", "TOK-43"}};

	append_ok(f->j, T0, "token-applied", "S-1", tok, 2, 1);
	append_ok(f->j, T0 + 1, "token-refused", "S-1", other, 1, 2);
	assert_int_equal(matches(f->j, "token-applied", "token-id", "TOK-42"),
			 1);
	assert_int_equal(matches(f->j, "token-applied", "token-id", "TOK-43"),
			 0);
	assert_int_equal(matches(f->j, "token-refused", "token-id", "TOK-42"),
			 0);
	assert_int_equal(matches(f->j, "token-applied", "serial", "SN-1"), 1);
}

static void query_selects_any_of_several_types_in_seq_order(void **state)
{
	struct fx *f = *state;
	const char *types[] = {"b", "c"};
	const char *many[STN_JOURNAL_QUERY_TYPES + 1];
	struct stn_journal_filter q = {.types = types, .ntypes = 2};
	struct stn_diag d = {0};
	int n = 0;

	append_ok(f->j, T0, "a", "S", NULL, 0, 1);
	append_ok(f->j, T0, "c", "S", NULL, 0, 2);
	append_ok(f->j, T0, "b", "S", NULL, 0, 3);
	append_ok(f->j, T0, "a", "S", NULL, 0, 4);
	query(f->j, &q, "2 3");
	for (size_t i = 0; i < STN_JOURNAL_QUERY_TYPES + 1; i++)
		many[i] = "a";
	q.types = many;
	q.ntypes = STN_JOURNAL_QUERY_TYPES;
	query(f->j, &q, "1 4");
	q.ntypes++;
	assert_int_equal(stn_journal_query(f->j, &q, count_one, &n, &d),
			 STN_E_INTERNAL);
}

static void reopen_keeps_the_chain(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct seen *s = calloc(1, sizeof(*s));
	uint64_t count = 0;
	char last[65];

	assert_non_null(s);
	append_many(f->j, 3);
	stn_journal_close(f->j);
	f->j = NULL;
	assert_int_equal(stn_journal_open(f->path, &f->j, &d), 0);
	append_ok(f->j, T0 + 1000, "session-end", "S-1", NULL, 0, 4);
	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	assert_int_equal(count, 4);
	assert_int_equal(stn_journal_each(f->j, 0, collect, s, &d), 0);
	assert_string_equal(s->prev[3], s->hash[2]);
	assert_string_equal(last, s->hash[3]);
	free(s);
}

static void two_processes_append_to_one_chain(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	uint64_t count = 0;
	char last[65];
	pid_t pid[2];
	int st;

	/* Each child opens its own handle: BEGIN IMMEDIATE plus the busy
	 * timeout must serialise them into one unbroken chain. */
	for (int c = 0; c < 2; c++) {
		pid[c] = fork();
		assert_true(pid[c] >= 0);
		if (pid[c] == 0) {
			struct stn_journal *j = NULL;
			struct stn_diag cd = {0};
			int bad = stn_journal_open(f->path, &j, &cd) != 0;

			for (int i = 0; i < 25 && !bad; i++)
				bad = stn_journal_append(j, T0 + i, "tick",
							 c ? "B" : "A", NULL,
							 0, NULL, &cd) != 0;
			stn_journal_close(j);
			_exit(bad);
		}
	}
	for (int c = 0; c < 2; c++) {
		assert_int_equal(waitpid(pid[c], &st, 0), pid[c]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	assert_int_equal(count, 50);
}

static void invalid_field_key_is_refused_and_nothing_is_written(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"", "Serial", "1serial", "-x", "a_b", "a b", "a.b", "é",
		"abcdefghijklmnopqrstuvwxyz0123456", /* 33 characters */
	};
	uint64_t count = 9;
	char last[65];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct stn_field fl[] = {{"serial", "SN-1"}, {bad[i], "v"}};
		struct stn_diag d = {0};
		uint64_t seq = 77;

		assert_int_equal(stn_journal_append(f->j, T0, "t", "S", fl, 2,
						    &seq, &d),
				 STN_E_INTERNAL);
		assert_int_equal(seq, 77);
		assert_non_null(strstr(d.text, "field 2 key"));
	}
	{
		/* The longest legal key: 32 characters. */
		struct stn_field fl[] = {
			{"abcdefghijklmnopqrstuvwxyz-01234", "v"}};

		append_ok(f->j, T0, "t", "S", fl, 1, 1);
	}
	{
		struct stn_diag d = {0};

		assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
		assert_int_equal(count, 1);
	}
}

static void invalid_events_are_refused(void **state)
{
	struct fx *f = *state;
	static const struct stn_field dup[] = {{"serial", "a"}, {"serial", "b"}};
	static const struct stn_field nul[] = {{"serial", NULL}};
	static const struct stn_field utf[] = {{"serial", "\xc3"}};   /* cut sequence */
	static const struct stn_field ovl[] = {{"serial", "\xc0\xaf"}}; /* overlong '/' */
	static const struct stn_field sur[] = {{"serial", "\xed\xa0\x80"}}; /* surrogate */
	static const struct {
		int64_t time;
		const char *type, *session;
		const struct stn_field *fl;
		size_t n;
		const char *text;
	} cases[] = {
		{-1, "t", "S", NULL, 0, "outside 1970..9999"},
		{INT64_C(253402300800), "t", "S", NULL, 0, "outside"},
		{T0, "", "S", NULL, 0, "type is empty"},
		{T0, NULL, "S", NULL, 0, "type is empty"},
		{T0, "t", NULL, NULL, 0, "session is missing"},
		{T0, "t", "S\xff", NULL, 0, "not UTF-8"},
		{T0, "t", "S", dup, 2, "field serial appears twice"},
		{T0, "t", "S", nul, 1, "value is missing"},
		{T0, "t", "S", utf, 1, "not UTF-8"},
		{T0, "t", "S", ovl, 1, "not UTF-8"},
		{T0, "t", "S", sur, 1, "not UTF-8"},
		{T0, "t", "S", NULL, 1, "no array"},
	};
	uint64_t count = 9;
	char last[65];
	struct stn_diag d = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		stn_diag_init(&d);
		assert_int_equal(stn_journal_append(f->j, cases[i].time,
						    cases[i].type,
						    cases[i].session,
						    cases[i].fl, cases[i].n,
						    NULL, &d),
				 STN_E_INTERNAL);
		if (!strstr(d.text, cases[i].text))
			fail_msg("case %zu: got \"%s\"", i, d.text);
	}
	stn_diag_init(&d);
	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	assert_int_equal(count, 0);
	/* The last second RFC 3339 can write is fine. */
	append_ok(f->j, INT64_C(253402300799), "t", "S", NULL, 0, 1);
}

static void each_since_skips_older_events_and_a_callback_can_stop(
	void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct seen *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	append_many(f->j, 6); /* times T0+60 .. T0+360 */
	assert_int_equal(stn_journal_each(f->j, T0 + 240, collect, s, &d), 0);
	assert_int_equal(s->n, 3);
	assert_int_equal(s->seq[0], 4);
	assert_int_equal(s->seq[2], 6);
	memset(s, 0, sizeof(*s));
	s->stop_at = 2;
	assert_int_equal(stn_journal_each(f->j, 0, collect, s, &d), 7);
	assert_int_equal(s->n, 2);
	assert_int_equal(d.code, 0);
	/* The read transaction was closed: appending works again. */
	append_ok(f->j, T0, "t", "S", NULL, 0, 7);
	free(s);
}

struct nested {
	struct stn_journal *j;
	int found;
};

static int look_up_inside(void *ctx, const struct stn_event *e)
{
	struct nested *n = ctx;
	struct stn_diag d = {0};
	int found = 0;

	const char *types[] = {"install-finished"};
	struct stn_journal_filter q = {.types = types, .ntypes = 1};

	(void)e;
	q.fields[0] = (struct stn_journal_field_is){"serial", NULL, "SN-2"};
	assert_int_equal(stn_journal_query(n->j, &q, count_one, &found, &d),
			 0);
	n->found += found;
	return 0;
}

static void a_callback_may_look_up_while_walking(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct nested n = {f->j, 0};

	append_many(f->j, 3);
	assert_int_equal(stn_journal_each(f->j, 0, look_up_inside, &n, &d), 0);
	assert_int_equal(n.found, 3);
}

static void format_prints_one_line_and_quotes_hostile_values(void **state)
{
	struct stn_field fl[] = {
		{"serial", "SN-1"},
		{"sequence", "12"},
		{"model", "A b=c"},
		{"note", "x\n7 fake"},
		{"quote", "\"\\\x01"},
		{"empty", ""},
		{"name", "J\xc3\xa9r\xc3\xb4me"},
	};
	struct stn_event e = {
		.seq = 7,
		.time = T0,
		.type = "install-finished",
		.session = "S-1",
		.fields = fl,
		.nfields = sizeof(fl) / sizeof(fl[0]),
	};
	char buf[256];

	(void)state;
	stn_journal_format(&e, buf, sizeof(buf));
	assert_string_equal(buf,
			    "7 2026-11-20T10:00:00Z install-finished "
			    "session=S-1 serial=SN-1 sequence=12 "
			    "model=\"A b=c\" note=\"x\\n7 fake\" "
			    "quote=\"\\\"\\\\\\x01\" empty=\"\" "
			    "name=J\xc3\xa9r\xc3\xb4me");
	e.nfields = 0;
	stn_journal_format(&e, buf, sizeof(buf));
	assert_string_equal(buf,
			    "7 2026-11-20T10:00:00Z install-finished "
			    "session=S-1");
}

static void format_truncates_at_a_utf8_boundary(void **state)
{
	struct stn_field fl[] = {{"name", "\xc3\xa9\xc3\xa9\xc3\xa9"}};
	struct stn_event e = {
		.seq = 1, .time = T0, .type = "t", .session = "S",
		.fields = fl, .nfields = 1,
	};
	const char *full = "1 2026-11-20T10:00:00Z t session=S name=";
	char buf[128];
	size_t n = strlen(full);

	(void)state;
	/* Room for the prefix and one and a half characters. */
	memset(buf, 'X', sizeof(buf));
	stn_journal_format(&e, buf, n + 3 + 1);
	assert_int_equal(strlen(buf), n + 2);
	assert_memory_equal(buf + n, "\xc3\xa9", 2);
	stn_journal_format(&e, buf, 1);
	assert_string_equal(buf, "");
	stn_journal_format(&e, buf, 5);
	assert_string_equal(buf, "1 20");
	stn_journal_format(&e, NULL, 0); /* does nothing, does not crash */
}

static void open_creates_directory_0700_and_file_0600(void **state)
{
	struct fx *f = *state;
	struct stn_journal *j = NULL;
	struct stn_diag d = {0};
	struct stat st;
	char path[256], dir[192];
	mode_t old = umask(022);

	snprintf(dir, sizeof(dir), "%s/var/station", f->dir);
	snprintf(path, sizeof(path), "%s/journal.db", dir);
	assert_int_equal(stn_journal_open(path, &j, &d), 0);
	umask(old);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	append_ok(j, T0, "t", "S", NULL, 0, 1);
	snprintf(path, sizeof(path), "%s/journal.db-wal", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	stn_journal_close(j);
}

static void open_uses_wal_and_the_current_schema_version(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
					    NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT value FROM meta WHERE key"
					    " = 'schema_version'",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), STN_JOURNAL_SCHEMA_VERSION);
	assert_int_equal(STN_JOURNAL_SCHEMA_VERSION, 2);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void open_refuses_a_file_that_is_not_a_database(void **state)
{
	struct fx *f = *state;
	struct stn_journal *j = (struct stn_journal *)1;
	struct stn_diag d = {0};
	char path[160];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/junk.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database\n", fp);
	fclose(fp);
	assert_int_equal(stn_journal_open(path, &j, &d), STN_E_JOURNAL);
	assert_ptr_equal(j, (struct stn_journal *)1);
	/* The path and SQLite's own words, kept. */
	assert_non_null(strstr(d.text, path));
	assert_non_null(strstr(d.text, "file is not a database"));
	assert_string_equal(d.where, path);
}

static void open_refuses_a_path_under_a_file(void **state)
{
	struct fx *f = *state;
	struct stn_journal *j = NULL;
	struct stn_diag d = {0};
	char path[192];

	snprintf(path, sizeof(path), "%s/journal.db/sub/x.db", f->dir);
	assert_int_equal(stn_journal_open(path, &j, &d), STN_E_JOURNAL);
	assert_null(j);
	assert_non_null(strstr(d.text, "Not a directory"));
}

static void open_refuses_a_newer_schema_version(void **state)
{
	struct fx *f = *state;
	struct stn_journal *j = NULL;
	struct stn_diag d = {0};

	tamper(f->path,
	       "UPDATE meta SET value = 3 WHERE key = 'schema_version'");
	assert_int_equal(stn_journal_open(f->path, &j, &d), STN_E_JOURNAL);
	assert_null(j);
	assert_non_null(strstr(d.text, "schema version 3 is not one this "
				       "station knows (up to 2)"));
}

/* ---- the range, lookup and filter API ---- */

struct stn_event_copy {
	uint64_t seq;
	char hash[65];
	char type[32];
};

static int take_one(void *ctx, const struct stn_event *e)
{
	struct stn_event_copy *c = ctx;

	c->seq = e->seq;
	snprintf(c->hash, sizeof(c->hash), "%s", e->hash);
	snprintf(c->type, sizeof(c->type), "%s", e->type);
	return 0;
}

static void span_finds_the_first_and_last_event_of_a_period(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	uint64_t a = 0, b = 0;
	int found = 0;

	append_many(f->j, 6); /* times T0+60 .. T0+360 */
	/* The clock went back: event 7 is dated before event 6. */
	append_ok(f->j, T0 + 100, "t", "S", NULL, 0, 7);
	assert_int_equal(stn_journal_span(f->j, T0 + 120, T0 + 300, &a, &b,
					  &found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(a, 2);
	/* The last event dated up to T0+300 is 7: everything between is
	 * in the range, so it stays one piece of the chain. */
	assert_int_equal(b, 7);
	assert_int_equal(stn_journal_span(f->j, T0 + 361, T0 + 999, &a, &b,
					  &found, &d),
			 0);
	assert_int_equal(found, 0);
	assert_int_equal(stn_journal_span(f->j, T0 + 200, T0 + 90, &a, &b,
					  &found, &d),
			 0);
	assert_int_equal(found, 0);
}

static int count_events(void *ctx, const struct stn_event *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

static void each_range_checks_the_chain_from_the_event_before(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	char path[160];
	int n = 0;

	append_many(f->j, 10);
	assert_int_equal(stn_journal_each_range(f->j, 4, 8, count_events, &n,
						&d),
			 0);
	assert_int_equal(n, 5);
	/* Past the end, an empty range, a range starting at 0. */
	stn_diag_init(&d);
	assert_int_equal(stn_journal_each_range(f->j, 9, 12, count_events, &n,
						&d),
			 STN_E_CHAINBROKEN);
	assert_non_null(strstr(d.text, "seq gap after 10 (the range ends at "
				       "12)"));
	stn_diag_init(&d);
	assert_int_equal(stn_journal_each_range(f->j, 5, 4, count_events, &n,
						&d),
			 STN_E_CHAINBROKEN);
	stn_diag_init(&d);
	assert_int_equal(stn_journal_each_range(f->j, 0, 4, count_events, &n,
						&d),
			 STN_E_CHAINBROKEN);

	/* A rewritten event just before the range shows at its start. */
	snprintf(path, sizeof(path), "%s", f->path);
	tamper(path, "UPDATE fields SET value = 'SN-99' WHERE seq = 3 AND "
		     "key = 'serial';"
		     "UPDATE events SET body = replace(body, '\"SN-3\"', "
		     "'\"SN-99\"') WHERE seq = 3;"
		     "UPDATE events SET hash = sha256hex(prev || char(10) || "
		     "body) WHERE seq = 3");
	stn_diag_init(&d);
	n = 0;
	assert_int_equal(stn_journal_each_range(f->j, 4, 8, count_events, &n,
						&d),
			 STN_E_CHAINBROKEN);
	assert_non_null(strstr(d.text, "event 4: prev does not name event 3"));
	assert_int_equal(n, 0);
	/* Damage inside the range: the events before it were handed out,
	 * the damaged one was not. */
	tamper(path, "UPDATE events SET body = replace(body, 'SN-7', 'SN-8')"
		     " WHERE seq = 7");
	stn_diag_init(&d);
	n = 0;
	assert_int_equal(stn_journal_each_range(f->j, 5, 9, count_events, &n,
						&d),
			 STN_E_CHAINBROKEN);
	assert_non_null(strstr(d.text, "event 7: hash does not match its "
				       "content"));
	assert_int_equal(n, 2);
	/* A deleted event before the range. */
	tamper(path, "DELETE FROM fields WHERE seq = 1;"
		     "DELETE FROM events WHERE seq = 1");
	stn_diag_init(&d);
	assert_int_equal(stn_journal_each_range(f->j, 2, 3, count_events, &n,
						&d),
			 STN_E_CHAINBROKEN);
	assert_non_null(strstr(d.text, "seq gap before 2 (event 1 is "
				       "missing)"));
}

static void lookup_finds_an_event_by_seq_and_the_newest_of_a_type(
	void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct stn_event_copy c = {0};
	int found = -1;

	append_ok(f->j, T0, "report-exported", "S", NULL, 0, 1);
	append_ok(f->j, T0 + 1, "t", "S", NULL, 0, 2);
	append_ok(f->j, T0 + 2, "report-exported", "S", NULL, 0, 3);
	append_ok(f->j, T0 + 3, "t", "S", NULL, 0, 4);
	assert_int_equal(stn_journal_lookup(f->j, 0, "report-exported",
					    take_one, &c, &found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(c.seq, 3);
	assert_int_equal(stn_journal_lookup(f->j, 2, NULL, take_one, &c,
					    &found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(c.seq, 2);
	assert_string_equal(c.type, "t");
	assert_int_equal(stn_journal_lookup(f->j, 99, NULL, take_one, &c,
					    &found, &d),
			 0);
	assert_int_equal(found, 0);
	assert_int_equal(stn_journal_lookup(f->j, 0, "none", take_one, &c,
					    &found, &d),
			 0);
	assert_int_equal(found, 0);
	assert_int_equal(stn_journal_lookup(f->j, 2, "t", take_one, &c,
					    &found, &d),
			 STN_E_INTERNAL);
}

struct seqs {
	int n;
	uint64_t v[64];
};

static int take_seqs(void *ctx, const struct stn_event *e)
{
	struct seqs *s = ctx;

	if (s->n < 64)
		s->v[s->n] = e->seq;
	s->n++;
	return 0;
}

/* A store filter (q) or the vocabulary's filter of `station journal` (v). */
static void query_either(struct stn_journal *j,
			 const struct stn_journal_filter *q,
			 const struct stn_ev_filter *v, const char *want)
{
	struct stn_diag d = {0};
	struct seqs s = {0};
	char got[256] = "";

	if (q)
		assert_int_equal(stn_journal_query(j, q, take_seqs, &s, &d), 0);
	else
		assert_int_equal(stn_ev_query(j, v, take_seqs, &s, &d), 0);
	for (int i = 0; i < s.n && i < 64; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%llu",
			 i ? " " : "", (unsigned long long)s.v[i]);
	if (strcmp(got, want) != 0)
		fail_msg("got \"%s\", want \"%s\"", got, want);
}

static void query(struct stn_journal *j, const struct stn_journal_filter *q,
		  const char *want)
{
	query_either(j, q, NULL, want);
}

static void ev_query(struct stn_journal *j, const struct stn_ev_filter *v,
		     const char *want)
{
	query_either(j, NULL, v, want);
}

static void query_filters_by_time_serial_bundle_technician_session_and_type(
	void **state)
{
	struct fx *f = *state;
	static const struct stn_field ana[] = {{"command", "push"},
					       {"technician", "ana"}};
	static const struct stn_field bo[] = {{"command", "push"},
					      {"technician", "bo"}};
	static const struct stn_field i1[] = {{"bundle", "b1"},
					      {"name", "app"},
					      {"serial", "SN-1"}};
	static const struct stn_field i2[] = {{"bundle", "b2"},
					      {"name", "boot"},
					      {"serial", "SN-2"}};
	static const struct stn_field t1[] = {{"technician", "ana"}};
	struct stn_ev_filter q;

	append_ok(f->j, T0 + 0, "session-start", "S1", ana, 2, 1);
	append_ok(f->j, T0 + 10, "install-finished", "S1", i1, 3, 2);
	append_ok(f->j, T0 + 20, "session-start", "S2", bo, 2, 3);
	append_ok(f->j, T0 + 30, "install-finished", "S2", i2, 3, 4);
	append_ok(f->j, T0 + 40, "install-finished", "S2", i1, 3, 5);
	append_ok(f->j, T0 + 50, "session-end", "S1", NULL, 0, 6);
	/* A technician field on another event type does not make a
	 * session that technician's. */
	append_ok(f->j, T0 + 60, "note", "S3", t1, 1, 7);

	memset(&q, 0, sizeof(q));
	ev_query(f->j, &q, "1 2 3 4 5 6 7");
	q.since = T0 + 20;
	q.until = T0 + 40;
	ev_query(f->j, &q, "3 4 5");
	memset(&q, 0, sizeof(q));
	q.serial = "SN-1";
	ev_query(f->j, &q, "2 5");
	q.since = T0 + 35;
	ev_query(f->j, &q, "5");
	memset(&q, 0, sizeof(q));
	q.bundle = "b2";
	ev_query(f->j, &q, "4");
	q.bundle = "app"; /* a bundle's name */
	ev_query(f->j, &q, "2 5");
	memset(&q, 0, sizeof(q));
	q.technician = "ana";
	ev_query(f->j, &q, "1 2 6");
	q.technician = "bo";
	ev_query(f->j, &q, "3 4 5");
	q.serial = "SN-1";
	ev_query(f->j, &q, "5");
	q.technician = "nobody";
	ev_query(f->j, &q, "");
	memset(&q, 0, sizeof(q));
	q.session = "S2";
	q.type = "install-finished";
	ev_query(f->j, &q, "4 5");
	/* Values are bound, never pasted into SQL. */
	memset(&q, 0, sizeof(q));
	q.serial = "SN-1' OR '1'='1";
	ev_query(f->j, &q, "");
}

static void append_refuses_more_fields_or_body_than_a_report_can_carry(
	void **state)
{
	struct fx *f = *state;
	struct stn_field *fl = calloc(STN_JOURNAL_FIELDS_MAX + 1, sizeof(*fl));
	char (*keys)[16] = calloc(STN_JOURNAL_FIELDS_MAX + 1, 16);
	char *big = malloc(STN_JOURNAL_BODY_MAX + 1);
	struct stn_diag d = {0};
	uint64_t count = 9;
	char last[65];

	assert_non_null(fl);
	assert_non_null(keys);
	assert_non_null(big);
	for (int i = 0; i <= STN_JOURNAL_FIELDS_MAX; i++) {
		snprintf(keys[i], 16, "k%d", i);
		fl[i].key = keys[i];
		fl[i].value = "v";
	}
	assert_int_equal(stn_journal_append(f->j, T0, "t", "S", fl,
					    STN_JOURNAL_FIELDS_MAX + 1, NULL,
					    &d),
			 STN_E_INTERNAL);
	assert_non_null(strstr(d.text, "257 fields, more than 256"));
	append_ok(f->j, T0, "t", "S", fl, STN_JOURNAL_FIELDS_MAX, 1);
	memset(big, 'x', STN_JOURNAL_BODY_MAX);
	big[STN_JOURNAL_BODY_MAX] = '\0';
	fl[0].value = big;
	stn_diag_init(&d);
	assert_int_equal(stn_journal_append(f->j, T0, "t", "S", fl, 1, NULL,
					    &d),
			 STN_E_INTERNAL);
	assert_non_null(strstr(d.text, "more than 262144"));
	stn_diag_init(&d);
	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	assert_int_equal(count, 1);
	free(fl);
	free(keys);
	free(big);
}

/* ---- schema migration ---- */

static int has_index(const char *path, const char *name)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = 0;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(*) FROM sqlite_master"
					    " WHERE type = 'index' AND name = ?1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void a_version_1_journal_is_migrated_and_keeps_its_chain(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	uint64_t count = 0;
	char last[65], before[65];

	append_many(f->j, 5);
	assert_int_equal(stn_journal_verify(f->j, &count, before, &d), 0);
	stn_journal_close(f->j);
	f->j = NULL;
	/* What a station of schema 1 left behind. */
	tamper(f->path, "DROP INDEX events_time; DROP INDEX events_session;"
			"DROP INDEX events_type;"
			"UPDATE meta SET value = 1 WHERE key = 'schema_version'");
	assert_int_equal(has_index(f->path, "events_time"), 0);
	assert_int_equal(stn_journal_open(f->path, &f->j, &d), 0);
	assert_int_equal(has_index(f->path, "events_time"), 1);
	assert_int_equal(has_index(f->path, "events_session"), 1);
	assert_int_equal(has_index(f->path, "events_type"), 1);
	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	assert_int_equal(count, 5);
	assert_string_equal(last, before);
	append_ok(f->j, T0 + 999, "t", "S", NULL, 0, 6);
	/* And a second open changes nothing. */
	stn_journal_close(f->j);
	f->j = NULL;
	assert_int_equal(stn_journal_open(f->path, &f->j, &d), 0);
	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	assert_int_equal(count, 6);
}

/* ---- durability: SIGKILL at random moments ---- */

/* The child appends events with a counter field and reports each seq on a
 * pipe only after stn_journal_append returned: those are acknowledged. */
static void appender(const char *path, int fd, uint64_t start)
{
	struct stn_journal *j = NULL;
	struct stn_diag d = {0};
	char n[24];
	struct stn_field fl[] = {{"n", n}, {"pad", "0123456789abcdef"}};
	uint64_t seq;

	if (stn_journal_open(path, &j, &d) != 0)
		_exit(2);
	for (uint64_t i = start;; i++) {
		snprintf(n, sizeof(n), "%llu", (unsigned long long)i);
		if (stn_journal_append(j, T0 + (int64_t)i, "tick", "K", fl, 2,
				       &seq, &d) != 0)
			_exit(3);
		if (write(fd, &seq, sizeof(seq)) != (ssize_t)sizeof(seq))
			_exit(4);
	}
}

struct acked {
	uint64_t *seq;
	size_t n, cap;
};

static int check_tick(void *ctx, const struct stn_event *e)
{
	int *bad = ctx;
	char want[24];

	/* Every tick's counter is its own seq here (see below). */
	snprintf(want, sizeof(want), "%llu", (unsigned long long)e->seq);
	if (strcmp(e->type, "tick") != 0 || e->nfields != 2 ||
	    strcmp(e->fields[0].value, want) != 0)
		(*bad)++;
	return 0;
}

static void acknowledged_appends_survive_sigkill_at_random_moments(
	void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct acked a = {0};
	uint64_t count = 0, next = 1;
	char last[65];
	int bad = 0, rounds = 25;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int r = 0; r < rounds; r++) {
		int p[2], st;
		pid_t pid;
		uint64_t seq;
		struct timespec ts;

		assert_int_equal(pipe(p), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			appender(f->path, p[1], next);
		}
		close(p[1]);
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(1 + rand() % 60) * 1000000L;
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		while (read(p[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq)) {
			if (a.n == a.cap) {
				a.cap = a.cap ? 2 * a.cap : 1024;
				a.seq = realloc(a.seq, a.cap * sizeof(*a.seq));
				assert_non_null(a.seq);
			}
			a.seq[a.n++] = seq;
		}
		close(p[0]);
		/* The next child continues the counter from what is in the
		 * journal (an unacknowledged append may have landed too). */
		assert_int_equal(stn_journal_verify(f->j, &next, last, &d), 0);
		next++;
	}
	assert_int_equal(stn_journal_verify(f->j, &count, last, &d), 0);
	/* Every acknowledged event is there, in order, with its content. */
	assert_true(a.n > 0);
	for (size_t i = 0; i < a.n; i++) {
		assert_true(a.seq[i] >= 1 && a.seq[i] <= count);
		if (i)
			assert_true(a.seq[i] > a.seq[i - 1]);
	}
	assert_int_equal(stn_journal_each(f->j, 0, check_tick, &bad, &d), 0);
	assert_int_equal(bad, 0);
	print_message("      %d kills, %zu acknowledged appends, %llu events "
		      "in the journal\n",
		      rounds, a.n, (unsigned long long)count);
	free(a.seq);
}

/* ---- scale: an independent encoder fills big journals fast ---- */

struct dbuf {
	char *p;
	size_t len, cap;
};

static void db_add(struct dbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void db_str(struct dbuf *b, const char *s)
{
	db_add(b, s, strlen(s));
}

/* docs/journal.md, written again from the document: only '"', '\' and
 * bytes below 0x20 or 0x7f escaped, always as \u00xx. */
static void doc_json(struct dbuf *b, const char *s)
{
	char esc[8];

	db_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			db_add(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			db_add(b, esc, 6);
		} else {
			db_add(b, (const char *)p, 1);
		}
	}
	db_add(b, "\"", 1);
}

/* Appends n events to the journal at path in one transaction, times
 * t0, t0+step, ...: sessions of six events (session-start with a
 * technician, bundle-verified, install-started, image-written,
 * install-finished, session-end) over 5000 serials and 20 technicians. */
static int fill_journal(const char *path, uint64_t n, int64_t t0,
			int64_t step)
{
	struct stn_journal *j = NULL;
	struct stn_diag d = {0};
	sqlite3 *db = NULL;
	sqlite3_stmt *ev = NULL, *fl = NULL, *st = NULL;
	struct dbuf body = {0};
	char prev[65] = STN_JOURNAL_GENESIS, hash[65], ts[CU_TIME_LEN + 1];
	char num[32], sess[40], tech[32], serial[32], bundle[65], seqs[24];
	uint64_t seq = 1;
	uint8_t md[CU_SHA256_LEN];

	/* The schema comes from the station itself. */
	if (stn_journal_open(path, &j, &d) != 0) {
		fprintf(stderr, "fill: %s\n", d.text);
		return -1;
	}
	stn_journal_close(j);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA synchronous=OFF; BEGIN IMMEDIATE", NULL,
			 NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT seq, hash FROM events ORDER BY seq"
				   " DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		seq = (uint64_t)sqlite3_column_int64(st, 0) + 1;
		snprintf(prev, sizeof(prev), "%s",
			 (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "INSERT INTO events(seq, time, type,"
				   " session, body, prev, hash)"
				   " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			       -1, &ev, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO fields(seq, key, value)"
				   " VALUES(?1, ?2, ?3)",
			       -1, &fl, NULL) != SQLITE_OK)
		goto fail;
	for (uint64_t i = 0; i < n; i++, seq++) {
		uint64_t s = seq / 6, k = seq % 6;
		int64_t t = t0 + (int64_t)i * step;
		static const char *const types[6] = {
			"session-start", "bundle-verified", "install-started",
			"image-written", "install-finished", "session-end"};
		struct stn_field f[6];
		size_t nf = 0;

		snprintf(sess, sizeof(sess), "fill-%llu", (unsigned long long)s);
		snprintf(tech, sizeof(tech), "tech-%llu",
			 (unsigned long long)(s % 20));
		snprintf(serial, sizeof(serial), "SN-%llu",
			 (unsigned long long)(s % 5000));
		snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)s);
		assert_int_equal(cu_sha256(sess, strlen(sess), md), 0);
		cu_hex(md, sizeof(md), bundle);
		switch (k) {
		case 0:
			f[nf++] = (struct stn_field){"command", "push"};
			f[nf++] = (struct stn_field){"technician", tech};
			break;
		case 5:
			f[nf++] = (struct stn_field){"result", "ok"};
			break;
		default:
			f[nf++] = (struct stn_field){"bundle", bundle};
			f[nf++] = (struct stn_field){"name", "tx200-app"};
			f[nf++] = (struct stn_field){"sequence", seqs};
			if (k >= 2)
				f[nf++] = (struct stn_field){"serial", serial};
		}
		body.len = 0;
		snprintf(num, sizeof(num), "{\"seq\":%llu",
			 (unsigned long long)seq);
		db_str(&body, num);
		cu_time_format(t, ts);
		db_str(&body, ",\"time\":\"");
		db_str(&body, ts);
		db_str(&body, "\",\"type\":");
		doc_json(&body, types[k]);
		db_str(&body, ",\"session\":");
		doc_json(&body, sess);
		db_str(&body, ",\"fields\":{");
		for (size_t m = 0; m < nf; m++) {
			if (m)
				db_str(&body, ",");
			doc_json(&body, f[m].key);
			db_str(&body, ":");
			doc_json(&body, f[m].value);
		}
		db_str(&body, "}}");
		{
			size_t pl = strlen(prev);
			char *m = malloc(pl + 1 + body.len);

			if (!m)
				goto fail;
			memcpy(m, prev, pl);
			m[pl] = '\n';
			memcpy(m + pl + 1, body.p, body.len);
			assert_int_equal(cu_sha256(m, pl + 1 + body.len, md), 0);
			free(m);
		}
		cu_hex(md, sizeof(md), hash);
		sqlite3_reset(ev);
		sqlite3_bind_int64(ev, 1, (sqlite3_int64)seq);
		sqlite3_bind_int64(ev, 2, t);
		sqlite3_bind_text(ev, 3, types[k], -1, SQLITE_STATIC);
		sqlite3_bind_text(ev, 4, sess, -1, SQLITE_STATIC);
		sqlite3_bind_text(ev, 5, body.p, (int)body.len, SQLITE_STATIC);
		sqlite3_bind_text(ev, 6, prev, -1, SQLITE_STATIC);
		sqlite3_bind_text(ev, 7, hash, -1, SQLITE_STATIC);
		if (sqlite3_step(ev) != SQLITE_DONE)
			goto fail;
		for (size_t m = 0; m < nf; m++) {
			sqlite3_reset(fl);
			sqlite3_bind_int64(fl, 1, (sqlite3_int64)seq);
			sqlite3_bind_text(fl, 2, f[m].key, -1, SQLITE_STATIC);
			sqlite3_bind_text(fl, 3, f[m].value, -1, SQLITE_STATIC);
			if (sqlite3_step(fl) != SQLITE_DONE)
				goto fail;
		}
		memcpy(prev, hash, sizeof(prev));
	}
	sqlite3_finalize(ev);
	sqlite3_finalize(fl);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_close(db);
	free(body.p);
	return 0;
fail:
	fprintf(stderr, "fill: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(ev);
	sqlite3_finalize(fl);
	sqlite3_close(db);
	free(body.p);
	return -1;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

#define SCALE_STEP 9 /* seconds: 9600 events a day */

/* What a period export and `station journal` ask of a filled journal of
 * n events (n >= 9600, so that the last day is full), each step timed
 * into t[] for `make bench`: fill, 20 durable appends, the last day's
 * range, walking and checking it, one serial's events, one technician's
 * day, verifying the whole chain.  The counts go to the caller. */
struct scale {
	double t[7];
	uint64_t span_first, span_last, verified;
	int day_events, serial_events, tech_events;
};

static int scale_run(const char *path, uint64_t n, struct scale *r)
{
	struct stn_journal *j = NULL;
	struct stn_diag d = {0};
	struct stn_ev_filter q = {0};
	struct timespec t0;
	int64_t end = T0 + (int64_t)n * SCALE_STEP;
	char last[65];
	int found = 0, rc;

	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (fill_journal(path, n, T0, SCALE_STEP) != 0)
		return -1;
	r->t[0] = seconds_since(&t0);
	if (stn_journal_open(path, &j, &d) != 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20; i++)
		if ((rc = stn_journal_append(j, end + i, "t", "S", NULL, 0,
					     NULL, &d)) != 0)
			goto out;
	r->t[1] = seconds_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = stn_journal_span(j, end - 86400, end - 1, &r->span_first,
			      &r->span_last, &found, &d);
	r->t[2] = seconds_since(&t0);
	if (rc || !found)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = stn_journal_each_range(j, r->span_first, r->span_last,
				    count_events, &r->day_events, &d);
	r->t[3] = seconds_since(&t0);
	if (rc)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	q.serial = "SN-42";
	rc = stn_ev_query(j, &q, count_events, &r->serial_events, &d);
	r->t[4] = seconds_since(&t0);
	if (rc)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&q, 0, sizeof(q));
	q.technician = "tech-7";
	q.since = end - 86400;
	rc = stn_ev_query(j, &q, count_events, &r->tech_events, &d);
	r->t[5] = seconds_since(&t0);
	if (rc)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = stn_journal_verify(j, &r->verified, last, &d);
	r->t[6] = seconds_since(&t0);
out:
	if (rc)
		fprintf(stderr, "scale: %s\n", d.text);
	stn_journal_close(j);
	return rc ? -1 : 0;
}

static void a_filled_journal_answers_ranges_filters_and_verify(void **state)
{
	struct fx *f = *state;
	struct scale r;
	struct stn_diag d = {0};
	const uint64_t n = 12000; /* 2000 sessions of six events */

	stn_journal_close(f->j);
	f->j = NULL;
	assert_int_equal(scale_run(f->path, n, &r), 0);
	assert_int_equal(r.span_last, n);
	assert_int_equal(r.span_last - r.span_first + 1, 86400 / SCALE_STEP);
	assert_int_equal(r.day_events, 86400 / SCALE_STEP);
	/* Session 42 alone has serial SN-42, in three of its events. */
	assert_int_equal(r.serial_events, 3);
	assert_true(r.tech_events > 0);
	assert_int_equal(r.verified, n + 20);
	assert_int_equal(stn_journal_open(f->path, &f->j, &d), 0);
}

/* `test_journal --scale PATH N` (tests/bench_journal.sh): the same steps
 * on N events, timed. */
static int bench_scale(const char *path, unsigned long long n)
{
	static const char *const what[7] = {
		"fill (one transaction, bench only)", "20 durable appends",
		"find the last day's range", "walk and check a day",
		"events of one serial", "one technician's events of a day",
		"verify the whole chain"};
	struct scale r;

	if (n < 9600 || scale_run(path, n, &r) != 0)
		return 1;
	for (int i = 0; i < 7; i++)
		printf("%-36s %8.3f s\n", what[i], r.t[i]);
	return 0;
}

static void newest_time_is_the_latest_time_not_the_last_event(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	int64_t t = 0;
	int found = -1;

	assert_int_equal(stn_journal_newest_time(f->j, &t, &found, &d), 0);
	assert_int_equal(found, 0);
	append_ok(f->j, T0 + 50, "t", "S", NULL, 0, 1);
	append_ok(f->j, T0 + 90, "t", "S", NULL, 0, 2);
	append_ok(f->j, T0 + 10, "t", "S", NULL, 0, 3); /* clock went back */
	assert_int_equal(stn_journal_newest_time(f->j, &t, &found, &d), 0);
	assert_int_equal(found, 1);
	assert_int_equal(t, T0 + 90);
}

static void a_reader_opens_and_reads_while_another_writer_holds_the_lock(
	void **state)
{
	struct fx *f = *state;
	struct stn_journal *r = NULL;
	struct stn_diag d = {0};
	sqlite3 *db = NULL;
	uint64_t count = 0;
	char last[65];

	append_many(f->j, 3);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO meta"
					  "(key, value) VALUES('x', 1)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	/* An export opens its own handle while installs hold the lock. */
	assert_int_equal(stn_journal_open(f->path, &r, &d), 0);
	assert_int_equal(stn_journal_verify(r, &count, last, &d), 0);
	assert_int_equal(count, 3);
	stn_journal_close(r);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

/* `test_journal --append PATH N`: N appends with full durability (one
 * commit and WAL fsync each), as the station does; prints the rate. */
static int bench_append(const char *path, unsigned long long n)
{
	struct stn_journal *j = NULL;
	struct stn_diag d = {0};
	struct timespec t0;
	char serial[24];
	struct stn_field fl[] = {
		{"bundle", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"name", "tx200-app"}, {"serial", serial}, {"sequence", "42"},
		{"proof", "device-sha256"}};
	double s;

	if (n == 0 || stn_journal_open(path, &j, &d) != 0) {
		fprintf(stderr, "append: %s\n", d.text);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long long i = 0; i < n; i++) {
		snprintf(serial, sizeof(serial), "SN-%llu", i % 5000);
		if (stn_journal_append(j, (int64_t)time(NULL), "install-finished",
				       "bench", fl, 5, NULL, &d) != 0) {
			fprintf(stderr, "append: %s\n", d.text);
			stn_journal_close(j);
			return 1;
		}
	}
	s = seconds_since(&t0);
	stn_journal_close(j);
	printf("%llu durable appends in %.3f s: %.0f events/s, %.3f ms each\n",
	       n, s, (double)n / s, 1000.0 * s / (double)n);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(append_then_each_returns_events_in_order_with_fields),
		T(body_is_the_documented_json_with_escapes),
		T(hash_is_sha256_of_prev_newline_body),
		T(verify_passes_for_100_events),
		T(an_empty_journal_verifies_with_the_genesis_hash),
		T(verify_names_the_seq_of_each_tampering),
		T(query_finds_events_by_type_and_field),
		T(query_selects_any_of_several_types_in_seq_order),
		T(reopen_keeps_the_chain),
		T(two_processes_append_to_one_chain),
		T(invalid_field_key_is_refused_and_nothing_is_written),
		T(invalid_events_are_refused),
		T(each_since_skips_older_events_and_a_callback_can_stop),
		T(a_callback_may_look_up_while_walking),
		T(format_prints_one_line_and_quotes_hostile_values),
		T(format_truncates_at_a_utf8_boundary),
		T(open_creates_directory_0700_and_file_0600),
		T(open_uses_wal_and_the_current_schema_version),
		T(open_refuses_a_file_that_is_not_a_database),
		T(open_refuses_a_path_under_a_file),
		T(open_refuses_a_newer_schema_version),
		T(span_finds_the_first_and_last_event_of_a_period),
		T(each_range_checks_the_chain_from_the_event_before),
		T(lookup_finds_an_event_by_seq_and_the_newest_of_a_type),
		T(query_filters_by_time_serial_bundle_technician_session_and_type),
		T(append_refuses_more_fields_or_body_than_a_report_can_carry),
		T(a_version_1_journal_is_migrated_and_keeps_its_chain),
		T(acknowledged_appends_survive_sigkill_at_random_moments),
		T(a_filled_journal_answers_ranges_filters_and_verify),
		T(newest_time_is_the_latest_time_not_the_last_event),
		T(a_reader_opens_and_reads_while_another_writer_holds_the_lock),
#undef T
	};

	if (argc == 4 && strcmp(argv[1], "--scale") == 0)
		return bench_scale(argv[2], strtoull(argv[3], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "--append") == 0)
		return bench_append(argv[2], strtoull(argv[3], NULL, 10));
	if (argc == 6 && strcmp(argv[1], "--fill") == 0) {
		char *e1, *e2, *e3;
		unsigned long long n = strtoull(argv[3], &e1, 10);
		long long start = strtoll(argv[4], &e2, 10);
		long long step = strtoll(argv[5], &e3, 10);

		if (*e1 || *e2 || *e3 || n == 0) {
			fprintf(stderr, "usage: test_journal --fill PATH N "
					"START STEP\n");
			return 2;
		}
		return fill_journal(argv[2], n, start, step) ? 1 : 0;
	}

	return cmocka_run_group_tests(tests, NULL, NULL);
}
