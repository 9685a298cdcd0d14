/* tests/test_events.c: the event vocabulary (station/events.h).  Every row
 * of the table is emitted and read back with exactly its fields, the
 * table agrees with docs/journal.md, untrusted bytes are journaled as
 * \xNN rather than refused, and the lookups that read past events find
 * what the emitters wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "station/base/error.h"
#include "station/events.h"
#include "station/journal.h"
#include "station/report.h"
#include "station/base/strbuf.h"
#include "tests/helpers.h"

/* 2026-11-20T10:00:00Z */
#define T0 INT64_C(1795168800)

struct fx {
	char *dir;
	char path[128];
	struct stn_journal *j;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct stn_diag d = {0};

	assert_non_null(f);
	f->dir = th_tempdir();
	snprintf(f->path, sizeof(f->path), "%s/journal.db", f->dir);
	assert_int_equal(stn_journal_open(f->path, &f->j, &d), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	stn_journal_close(f->j);
	th_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* A type's field list split into keys (with or without the optional
 * ones); values are "v-KEY". */
struct spec {
	char keys[64][40], values[64][48];
	struct stn_field f[64];
	size_t n;
};

static void spec_fields(enum stn_ev t, int with_optional, struct spec *s)
{
	const char *p = stn_ev_fields(t);

	memset(s, 0, sizeof(*s));
	while (*p) {
		size_t len = strcspn(p, " ");
		int opt = p[len - 1] == '?';

		assert_true(len > 0 && len - (size_t)opt < 40 && s->n < 64);
		if (with_optional || !opt) {
			memcpy(s->keys[s->n], p, len - (size_t)opt);
			memcpy(s->values[s->n], "v-", 2);
			memcpy(s->values[s->n] + 2, p, len - (size_t)opt);
			s->f[s->n].key = s->keys[s->n];
			s->f[s->n].value = s->values[s->n];
			s->n++;
		}
		p += len + (p[len] == ' ');
	}
}

struct got {
	char type[40];
	char text[2048]; /* "k=v k=v" */
};

static int take(void *ctx, const struct stn_event *e)
{
	struct got *g = ctx;
	size_t used = 0;

	snprintf(g->type, sizeof(g->type), "%s", e->type);
	g->text[0] = '\0';
	for (size_t i = 0; i < e->nfields; i++)
		used += (size_t)snprintf(g->text + used, sizeof(g->text) - used,
					 "%s%s=%s", i ? " " : "",
					 e->fields[i].key, e->fields[i].value);
	return 0;
}

static void expect_fields(const struct spec *s, char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->n; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%s=%s",
					 i ? " " : "", s->f[i].key,
					 s->f[i].value);
}

static void every_type_is_journaled_with_exactly_its_table_fields(
	void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	uint64_t seq = 0, want = 0;
	char expect[2048];

	for (int t = 0; t < STN_EV_COUNT; t++) {
		for (int opt = 1; opt >= 0; opt--) {
			struct spec s;
			struct got g;
			int found = 0;

			spec_fields((enum stn_ev)t, opt, &s);
			assert_int_equal(stn_ev_append(f->j, T0, "S", t, s.f,
						       s.n, &seq, &d),
					 0);
			assert_int_equal(seq, ++want);
			assert_int_equal(stn_journal_lookup(f->j, seq, NULL,
							    take, &g, &found,
							    &d),
					 0);
			assert_true(found);
			assert_string_equal(g.type, stn_ev_name(t));
			assert_true(stn_ev_is(g.type, (enum stn_ev)t));
			expect_fields(&s, expect, sizeof(expect));
			assert_string_equal(g.text, expect);
		}
	}
}

static void names_are_unique_and_keys_are_field_keys(void **state)
{
	(void)state;
	for (int t = 0; t < STN_EV_COUNT; t++) {
		enum stn_ev back;
		struct spec s;

		assert_int_equal(stn_ev_lookup(stn_ev_name(t), &back), 0);
		assert_int_equal(back, t);
		spec_fields((enum stn_ev)t, 1, &s);
		for (size_t i = 0; i < s.n; i++) {
			if (!stn_canon_key_ok(s.keys[i]))
				fail_msg("%s: key '%s'", stn_ev_name(t),
					 s.keys[i]);
			for (size_t k = 0; k < i; k++)
				assert_string_not_equal(s.keys[k], s.keys[i]);
		}
	}
	assert_null(stn_ev_name(STN_EV_COUNT));
	assert_int_equal(stn_ev_lookup("no-such-event", &(enum stn_ev){0}), -1);
	/* The report verifier names the export event in its messages. */
	assert_string_equal(STN_REPORT_EVENT,
			    stn_ev_name(STN_EV_REPORT_EXPORTED));
}

static void append_refuses_fields_that_do_not_fit_the_row(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *what;
		struct stn_field f[4];
		size_t n;
		const char *text;
	} cases[] = {
		{"a required field left out",
		 {{"result", "ok"}}, 1, "field code missing"},
		{"fields out of order",
		 {{"code", "0"}, {"result", "ok"}}, 2, "field result missing"},
		{"a field not in the row",
		 {{"result", "ok"}, {"code", "0"}, {"extra", "x"}}, 3,
		 "field extra is not in its table row"},
		{"a field twice",
		 {{"result", "ok"}, {"result", "ok"}, {"code", "0"}}, 3,
		 "field code missing"},
	};
	uint64_t count = 0;
	char last[65];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stn_diag d = {0};

		if (stn_ev_append(f->j, T0, "S", STN_EV_SESSION_END,
				  cases[i].f, cases[i].n, NULL,
				  &d) != STN_E_INTERNAL)
			fail_msg("%s: accepted", cases[i].what);
		if (!strstr(d.text, cases[i].text) ||
		    !strstr(d.text, "session-end"))
			fail_msg("%s: got \"%s\"", cases[i].what, d.text);
	}
	assert_int_equal(stn_journal_verify(f->j, &count, last,
					    &(struct stn_diag){0}),
			 0);
	assert_int_equal(count, 0);
}

/* Free text from a device or a medium is journaled, not refused: bytes
 * that are not UTF-8 become \xNN, valid text keeps its bytes. */
static void text_buf_escapes_only_what_is_not_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain", "plain"},
		{"", ""},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* valid */
		 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
		{"error \xff", "error \\xff"},
		{"\xc3", "\\xc3"},                 /* cut short at the end */
		{"\xc3(", "\\xc3("},               /* bad continuation */
		{"\xc0\xaf", "\\xc0\\xaf"},        /* overlong '/' */
		{"\xed\xa0\x80", "\\xed\\xa0\\x80"}, /* a surrogate */
		{"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"}, /* > U+10FFFF */
		{"a\x80" "b\xfe", "a\\x80b\\xfe"},
		{"esc \x1b ok", "esc \x1b ok"}, /* control bytes are canon's */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stn_buf b = {0};

		stn_canon_text_buf(&b, cases[i].in);
		assert_false(b.oom);
		assert_non_null(b.p);
		assert_string_equal(b.p, cases[i].out);
		assert_true(stn_canon_utf8_ok(b.p));
		free(b.p);
	}
}

static void a_device_error_with_invalid_utf8_is_journaled(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	const struct stn_field fl[] = {
		{"dir", "/media/usb/tx200-\xff"},
		{"serial", "SN-1"},
		{"rule", "device-io"},
		{"where", "serial:/dev/ttyUSB0"},
		{"reason", "device refused `info`: bad \xff\xfe byte"},
		{"code", "-20"},
	};
	struct got g;
	uint64_t seq = 0;
	int found = 0;

	assert_int_equal(stn_ev_append(f->j, T0, "S", STN_EV_DEVICE_ERROR, fl,
				       STN_EV_N(fl), &seq, &d),
			 0);
	assert_int_equal(stn_journal_lookup(f->j, seq, NULL, take, &g, &found,
					    &d),
			 0);
	assert_string_equal(g.text,
			    "dir=/media/usb/tx200-\\xff serial=SN-1 "
			    "rule=device-io where=serial:/dev/ttyUSB0 "
			    "reason=device refused `info`: bad \\xff\\xfe byte "
			    "code=-20");
	assert_int_equal(stn_journal_verify(f->j, NULL, NULL, &d), 0);
}

static void append(struct stn_journal *j, enum stn_ev t, const char *session,
		   const struct stn_field *fl, size_t n)
{
	struct stn_diag d = {0};

	if (stn_ev_append(j, T0, session, t, fl, n, NULL, &d) != 0)
		fail_msg("%s: %s", stn_ev_name(t), d.text);
}

/* install-finished with only the fields the lookup reads: the rest of the
 * row is optional-free, so the test goes through the store directly. */
static void finished(struct stn_journal *j, const char *serial,
		     const char *sequence)
{
	struct stn_field fl[] = {{"serial", serial}, {"sequence", sequence}};
	struct stn_diag d = {0};

	assert_int_equal(stn_journal_append(j, T0, "install-finished", "S", fl,
					    2, NULL, &d),
			 0);
}

static void installed_sequence_picks_the_highest_install_for_the_serial(
	void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	const struct stn_field other[] = {{"serial", "SN-1"},
					  {"sequence", "50"}};
	uint64_t seq = 0;
	int found = -1;

	finished(f->j, "SN-1", "3");
	finished(f->j, "SN-1", "10"); /* numeric, not text, max */
	finished(f->j, "SN-1", "9");
	finished(f->j, "SN-2", "99");
	finished(f->j, "SN-10", "77");
	/* Other types with a sequence do not count. */
	assert_int_equal(stn_journal_append(f->j, T0, "install-started", "S",
					    other, 2, NULL, &d),
			 0);
	assert_int_equal(stn_journal_append(f->j, T0, "install-failed", "S",
					    other, 2, NULL, &d),
			 0);
	assert_int_equal(stn_ev_installed_sequence(f->j, "SN-1", &seq, &found,
						   &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(seq, 10);
	assert_int_equal(stn_ev_installed_sequence(f->j, "SN-2", &seq, &found,
						   &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(seq, 99);
	seq = 1234;
	assert_int_equal(stn_ev_installed_sequence(f->j, "SN-3", &seq, &found,
						   &d),
			 0);
	assert_int_equal(found, 0);
	assert_int_equal(seq, 1234);
}

static void installed_sequence_refuses_a_sequence_that_is_not_a_number(
	void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	uint64_t seq = 0;
	int found = 0;

	finished(f->j, "SN-1", "7x");
	assert_int_equal(stn_ev_installed_sequence(f->j, "SN-1", &seq, &found,
						   &d),
			 STN_E_JOURNAL);
	assert_non_null(strstr(d.text, "event 1: field sequence \"7x\""));
}

/* A device whose serial is not UTF-8 is journaled under its \xNN form;
 * the anti-rollback lookup must find it there, or the device's history
 * would be invisible and a rollback would pass. */
static void installed_sequence_finds_a_serial_that_was_not_utf8(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct spec s;
	uint64_t seq = 0;
	int found = 0;

	spec_fields(STN_EV_INSTALL_FINISHED, 1, &s);
	for (size_t i = 0; i < s.n; i++) {
		if (strcmp(s.keys[i], "serial") == 0)
			s.f[i].value = "SN-\xff";
		if (strcmp(s.keys[i], "sequence") == 0)
			s.f[i].value = "42";
	}
	append(f->j, STN_EV_INSTALL_FINISHED, "S", s.f, s.n);
	assert_int_equal(stn_ev_installed_sequence(f->j, "SN-\xff", &seq,
						   &found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(seq, 42);
}

static void token_used_finds_a_use_of_token_applied_only(void **state)
{
	struct fx *f = *state;
	struct stn_diag d = {0};
	struct spec s;
	int found = -1;

	spec_fields(STN_EV_TOKEN_APPLIED, 1, &s);
	s.f[1].value = "TOK-42/SN-1"; /* use */
	assert_string_equal(s.keys[1], "use");
	append(f->j, STN_EV_TOKEN_APPLIED, "S", s.f, s.n);
	{
		struct stn_field fl[] = {{"use", "TOK-43/SN-1"}};
		assert_int_equal(stn_journal_append(f->j, T0, "token-refused",
						    "S", fl, 1, NULL, &d),
				 0);
	}
	assert_int_equal(stn_ev_token_used(f->j, "TOK-42/SN-1", &found, &d),
			 0);
	assert_int_equal(found, 1);
	assert_int_equal(stn_ev_token_used(f->j, "TOK-43/SN-1", &found, &d),
			 0);
	assert_int_equal(found, 0);
	assert_int_equal(stn_ev_token_used(f->j, "TOK-42/SN-2", &found, &d),
			 0);
	assert_int_equal(found, 0);
}

/* docs/journal.md's "Event types" table: one row per type, its fields
 * spelled as in the table ("| `type` | `fields` |"). */
static void docs_list_every_type_with_its_fields(void **state)
{
	FILE *fp = fopen("docs/journal.md", "r");
	char line[1024];
	int rows[STN_EV_COUNT] = {0}, in = 0;

	(void)state;
	if (!fp)
		fail_msg("docs/journal.md: run from the repository root");
	while (fgets(line, sizeof(line), fp)) {
		char type[64], fields[512];
		enum stn_ev t;

		if (strncmp(line, "## ", 3) == 0)
			in = strcmp(line, "## Event types\n") == 0;
		if (!in || sscanf(line, "| `%63[a-z-]` | `%511[^`]` |", type,
			   fields) != 2)
			continue;
		if (stn_ev_lookup(type, &t) != 0)
			fail_msg("docs/journal.md documents %s, which the "
				 "station does not journal",
				 type);
		if (strcmp(fields, stn_ev_fields(t)) != 0)
			fail_msg("docs/journal.md: %s has `%s`, the table "
				 "has `%s`",
				 type, fields, stn_ev_fields(t));
		rows[t]++;
	}
	fclose(fp);
	for (int t = 0; t < STN_EV_COUNT; t++)
		if (rows[t] != 1)
			fail_msg("docs/journal.md lists %s %d times",
				 stn_ev_name(t), rows[t]);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(every_type_is_journaled_with_exactly_its_table_fields),
		cmocka_unit_test(names_are_unique_and_keys_are_field_keys),
		T(append_refuses_fields_that_do_not_fit_the_row),
		cmocka_unit_test(text_buf_escapes_only_what_is_not_utf8),
		T(a_device_error_with_invalid_utf8_is_journaled),
		T(installed_sequence_picks_the_highest_install_for_the_serial),
		T(installed_sequence_refuses_a_sequence_that_is_not_a_number),
		T(installed_sequence_finds_a_serial_that_was_not_utf8),
		T(token_used_finds_a_use_of_token_applied_only),
		cmocka_unit_test(docs_list_every_type_with_its_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
