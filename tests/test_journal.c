/* tests/test_journal.c: the journal's contract: canonical bodies, the hash
 * chain, verification naming the damaged event, lookups and reopening.
 * sqlite3.h is included here only to tamper with a journal from outside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "custody/rfc3339.h"
#include "custody/sha256.h"
#include "station/error.h"
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
	cu_sha256(m, la + 1 + lb, md);
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
	cu_sha256(sqlite3_value_blob(v[0]), (size_t)sqlite3_value_bytes(v[0]),
		  md);
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

static void installed_sequence_picks_the_highest_install_for_the_serial(
	void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	static const struct {
		const char *type, *serial, *sequence;
	} ev[] = {
		{"install-finished", "SN-1", "3"},
		{"install-finished", "SN-1", "10"}, /* numeric, not text, max */
		{"install-finished", "SN-1", "9"},
		{"install-finished", "SN-2", "99"},
		{"install-started", "SN-1", "50"},
		{"install-failed", "SN-1", "51"},
		{"install-finished", "SN-10", "77"},
	};
	uint64_t seq = 0;
	int found = -1;

	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		struct stn_field fl[] = {{"serial", ev[i].serial},
					 {"sequence", ev[i].sequence}};

		append_ok(f->j, T0 + (int64_t)i, ev[i].type, "S-1", fl, 2,
			  i + 1);
	}
	assert_int_equal(stn_journal_installed_sequence(f->j, "SN-1", &seq,
							&found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(seq, 10);
	assert_int_equal(stn_journal_installed_sequence(f->j, "SN-2", &seq,
							&found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(seq, 99);
	seq = 1234;
	assert_int_equal(stn_journal_installed_sequence(f->j, "SN-3", &seq,
							&found, &d),
			 0);
	assert_int_equal(found, 0);
	assert_int_equal(seq, 1234);
}

static void installed_sequence_refuses_a_sequence_that_is_not_a_number(
	void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct stn_field fl[] = {{"serial", "SN-1"}, {"sequence", "7x"}};
	uint64_t seq = 0;
	int found = 0;

	append_ok(f->j, T0, "install-finished", "S-1", fl, 2, 1);
	assert_int_equal(stn_journal_installed_sequence(f->j, "SN-1", &seq,
							&found, &d),
			 STN_E_JOURNAL);
	assert_non_null(strstr(d.text, "event 1: field sequence \"7x\""));
}

static void has_finds_a_token_use(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct stn_field tok[] = {{"token-id", "TOK-42"}, {"serial", "SN-1"}};
	struct stn_field other[] = {{"token-id", "TOK-43"}};
	int found = -1;

	append_ok(f->j, T0, "token-applied", "S-1", tok, 2, 1);
	append_ok(f->j, T0 + 1, "token-refused", "S-1", other, 1, 2);
	assert_int_equal(stn_journal_has(f->j, "token-applied", "token-id",
					 "TOK-42", &found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(stn_journal_has(f->j, "token-applied", "token-id",
					 "TOK-43", &found, &d),
			 0);
	assert_int_equal(found, 0);
	assert_int_equal(stn_journal_has(f->j, "token-refused", "token-id",
					 "TOK-42", &found, &d),
			 0);
	assert_int_equal(found, 0);
	assert_int_equal(stn_journal_has(f->j, "token-applied", "serial",
					 "SN-1", &found, &d),
			 0);
	assert_int_equal(found, 1);
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

	(void)e;
	assert_int_equal(stn_journal_has(n->j, "install-finished", "serial",
					 "SN-2", &found, &d),
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

static void open_uses_wal_and_schema_version_1(void **state)
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
	assert_int_equal(sqlite3_column_int(st, 0), 1);
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
	       "UPDATE meta SET value = 2 WHERE key = 'schema_version'");
	assert_int_equal(stn_journal_open(f->path, &j, &d), STN_E_JOURNAL);
	assert_null(j);
	assert_non_null(strstr(d.text, "schema version 2 is not one this "
				       "station knows (up to 1)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(append_then_each_returns_events_in_order_with_fields),
		T(body_is_the_documented_json_with_escapes),
		T(hash_is_sha256_of_prev_newline_body),
		T(verify_passes_for_100_events),
		T(an_empty_journal_verifies_with_the_genesis_hash),
		T(verify_names_the_seq_of_each_tampering),
		T(installed_sequence_picks_the_highest_install_for_the_serial),
		T(installed_sequence_refuses_a_sequence_that_is_not_a_number),
		T(has_finds_a_token_use),
		T(reopen_keeps_the_chain),
		T(two_processes_append_to_one_chain),
		T(invalid_field_key_is_refused_and_nothing_is_written),
		T(invalid_events_are_refused),
		T(each_since_skips_older_events_and_a_callback_can_stop),
		T(a_callback_may_look_up_while_walking),
		T(format_prints_one_line_and_quotes_hostile_values),
		T(format_truncates_at_a_utf8_boundary),
		T(open_creates_directory_0700_and_file_0600),
		T(open_uses_wal_and_schema_version_1),
		T(open_refuses_a_file_that_is_not_a_database),
		T(open_refuses_a_path_under_a_file),
		T(open_refuses_a_newer_schema_version),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
