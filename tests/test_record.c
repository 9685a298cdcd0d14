/* tests/test_record.c: every rule of the text record format (formats §1),
 * one row each, with the reason checked, not only the refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custody/record.h"
#include "station/base/error.h"

struct bad_case {
	const char *title;
	const char *text;
	int code;
	const char *reason; /* substring of the diagnostic */
	const char *where;  /* substring of where, e.g. ":3" */
};

static const struct bad_case bad_cases[] = {
	{"carriage return", "format = x\r\nname = a\r\n", STN_E_SYNTAX,
	 "carriage return", "t:1"},
	{"uppercase key", "format = x\nName = a\n", STN_E_SYNTAX, "bad key",
	 "t:2"},
	{"key starting with digit", "format = x\n1a = b\n", STN_E_SYNTAX,
	 "bad key", "t:2"},
	{"key of 33 characters",
	 "format = x\nabcdefghijabcdefghijabcdefghijabc = v\n", STN_E_SYNTAX,
	 "bad key", "t:2"},
	{"empty value", "format = x\nname =\n", STN_E_SYNTAX,
	 "1 to 1024 characters", "t:2"},
	{"line without equals", "format = x\nname\n", STN_E_SYNTAX,
	 "not a key = value line", "t:2"},
	{"tab inside a value", "format = x\nname = a\tb\n", STN_E_SYNTAX,
	 "control", "t:2"},
	{"escape character in a value", "format = x\nname = a\x1b[31m\n",
	 STN_E_SYNTAX, "control", "t:2"},
	{"DEL in a value", "format = x\nname = a\x7f\n", STN_E_SYNTAX,
	 "control", "t:2"},
	{"invalid UTF-8", "format = x\nname = caf\xc3\n", STN_E_SYNTAX,
	 "UTF-8", "t:2"},
	{"overlong UTF-8", "format = x\nname = \xc0\xaf\n", STN_E_SYNTAX,
	 "UTF-8", "t:2"},
	{"C1 control as UTF-8", "format = x\nname = \xc2\x85\n", STN_E_SYNTAX,
	 "UTF-8", "t:2"},
	{"key twice in one section", "format = x\nname = a\nname = b\n",
	 STN_E_SYNTAX, "given twice", "t:3"},
	{"section label twice",
	 "format = x\n[image a]\nfile = f\n[image a]\nfile = g\n",
	 STN_E_SYNTAX, "given twice", "t:4"},
	{"unlabelled section twice", "format = x\n[target]\n[target]\n",
	 STN_E_SYNTAX, "given twice", "t:3"},
	{"section header with uppercase", "format = x\n[Image a]\n",
	 STN_E_SYNTAX, "bad section header", "t:2"},
	{"section label with two words", "format = x\n[image a b]\n",
	 STN_E_SYNTAX, "bad section header", "t:2"},
	{"section label with underscore", "format = x\n[image a_b]\n",
	 STN_E_SYNTAX, "bad section header", "t:2"},
	{"unterminated section header", "format = x\n[image a\n",
	 STN_E_SYNTAX, "bad section header", "t:2"},
	{"blanks inside a section header", "format = x\n[ target ]\n",
	 STN_E_SYNTAX, "bad section header", "t:2"},
	{"NUL byte", "format = x\nna\0me = a\n", STN_E_SYNTAX, "NUL", "t:1"},
};

static void parser_refuses_each_broken_rule_with_its_reason(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cu_record *r = NULL;
		struct stn_diag d;
		size_t len = strlen(c->text);

		if (strcmp(c->title, "NUL byte") == 0)
			len = sizeof("format = x\nna\0me = a\n") - 1;
		stn_diag_init(&d);
		int rc = cu_record_parse(c->text, len, "t", &r, &d);
		if (rc != c->code || !strstr(d.text, c->reason) ||
		    !strstr(d.where, c->where))
			fail_msg("case '%s': rc %d, where '%s', text '%s'",
				 c->title, rc, d.where, d.text);
		assert_null(r);
	}
}

static void parser_accepts_comments_blanks_and_whitespace(void **state)
{
	const char *text = "# a comment\n"
			   "\n"
			   "   format   =   x  \n"
			   "  # indented comment\n"
			   "name=a b  c\n"
			   "[image app]\n"
			   "\tfile = f.bin\n"
			   "[target]\n"
			   "model = TX-200";
	struct cu_record *r = NULL;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_record_parse(text, strlen(text), "t", &r, &d), 0);
	assert_int_equal(cu_record_nsections(r), 1 + 0 + 1 + 0 + 1 + 0);
	const struct cu_section *top = cu_record_section(r, 0);
	assert_string_equal(cu_section_get(top, "format"), "x");
	assert_string_equal(cu_section_get(top, "name"), "a b  c");
	const struct cu_section *img = cu_record_find(r, "image", "app");
	assert_non_null(img);
	assert_string_equal(cu_section_get(img, "file"), "f.bin");
	assert_int_equal(cu_section_line(img, "file"), 7);
	cu_record_free(r);
}

static void parser_accepts_an_empty_record_and_schema_refuses_it(void **state)
{
	static const struct cu_key_rule top[] = {{"format", CU_REQUIRED},
						 {NULL, 0}};
	static const struct cu_section_rule rules[] = {
		{"", CU_NO_LABEL, 0, 1, top}, {NULL, 0, 0, 0, NULL}};
	struct cu_record *r = NULL;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_record_parse("", 0, "t", &r, &d), 0);
	assert_int_equal(cu_record_section(r, 0)->nentries, 0);
	assert_int_equal(cu_record_check(r, rules, "x", &d), STN_E_SYNTAX);
	assert_non_null(strstr(d.text, "first key must be 'format'"));
	cu_record_free(r);
}

static void parser_keeps_hash_inside_values(void **state)
{
	/* Only whole-line comments exist; '#' later in a line is data. */
	const char *text = "format = x\nreason = ticket #881\n";
	struct cu_record *r = NULL;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_record_parse(text, strlen(text), "t", &r, &d), 0);
	assert_string_equal(cu_section_get(cu_record_section(r, 0), "reason"),
			    "ticket #881");
	cu_record_free(r);
}

static void parser_ignores_vendor_extension_keys(void **state)
{
	static const struct cu_key_rule top[] = {{"format", CU_REQUIRED},
						 {NULL, 0}};
	static const struct cu_section_rule rules[] = {
		{"", CU_NO_LABEL, 0, 1, top}, {NULL, 0, 0, 0, NULL}};
	const char *text = "format = x\nx-build-host = ci-7\n";
	struct cu_record *r = NULL;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_record_parse(text, strlen(text), "t", &r, &d), 0);
	assert_int_equal(cu_record_check(r, rules, "x", &d), 0);
	assert_null(cu_section_get(cu_record_section(r, 0), "x-build-host"));
	cu_record_free(r);
}

static void parser_accepts_utf8_values_and_counts_characters(void **state)
{
	/* 1024 two-byte characters pass; 1025 do not. */
	char *text = malloc(16 + 2 * 1025 + 2);
	struct cu_record *r = NULL;
	struct stn_diag d;
	size_t n;

	(void)state;
	strcpy(text, "name = ");
	n = strlen(text);
	for (int i = 0; i < 1024; i++) {
		text[n++] = (char)0xc3;
		text[n++] = (char)0xa9;
	}
	text[n] = '\n';
	stn_diag_init(&d);
	assert_int_equal(cu_record_parse(text, n + 1, "t", &r, &d), 0);
	cu_record_free(r);
	r = NULL;
	text[n++] = (char)0xc3;
	text[n++] = (char)0xa9;
	text[n] = '\n';
	stn_diag_init(&d);
	assert_int_equal(cu_record_parse(text, n + 1, "t", &r, &d),
			 STN_E_SYNTAX);
	assert_non_null(strstr(d.text, "1 to 1024"));
	free(text);
}

static void parser_refuses_records_over_64_kib(void **state)
{
	size_t len = 65 * 1024;
	char *text = malloc(len);
	struct cu_record *r = NULL;
	struct stn_diag d;

	(void)state;
	memset(text, '#', len);
	stn_diag_init(&d);
	assert_int_equal(cu_record_parse(text, len, "big", &r, &d),
			 STN_E_TOOBIG);
	assert_non_null(strstr(d.text, "64 KiB"));
	free(text);
}

static const struct cu_key_rule doc_top[] = {
	{"format", CU_REQUIRED}, {"name", CU_REQUIRED}, {"note", CU_OPTIONAL},
	{NULL, 0}};
static const struct cu_key_rule doc_image[] = {{"file", CU_REQUIRED},
					       {NULL, 0}};
static const struct cu_key_rule doc_target[] = {{"model", CU_REQUIRED},
						{NULL, 0}};
static const struct cu_section_rule doc_rules[] = {
	{"", CU_NO_LABEL, 0, 1, doc_top},
	{"image", CU_LABELLED, 1, 4, doc_image},
	{"target", CU_NO_LABEL, 1, 1, doc_target},
	{NULL, 0, 0, 0, NULL}};

static int check_text(const char *text, struct stn_diag *d)
{
	struct cu_record *r = NULL;
	int rc;

	stn_diag_init(d);
	rc = cu_record_parse(text, strlen(text), "t", &r, d);
	if (rc == 0)
		rc = cu_record_check(r, doc_rules, "doc-1", d);
	cu_record_free(r);
	return rc;
}

static void schema_refuses_what_the_document_does_not_allow(void **state)
{
	static const struct {
		const char *text, *reason;
	} cases[] = {
		{"name = a\nformat = doc-1\n[target]\nmodel = m\n[image a]\n"
		 "file = f\n", "first key must be 'format'"},
		{"format = doc-2\nname = a\n[target]\nmodel = m\n[image a]\n"
		 "file = f\n", "expected 'doc-1'"},
		{"format = doc-1\nname = a\ncolour = red\n[target]\nmodel = "
		 "m\n[image a]\nfile = f\n", "unknown key 'colour'"},
		{"format = doc-1\n[target]\nmodel = m\n[image a]\nfile = f\n",
		 "missing required key 'name'"},
		{"format = doc-1\nname = a\n[target]\nmodel = m\n[image a]\n",
		 "missing required key 'file' in [image a]"},
		{"format = doc-1\nname = a\n[target]\nmodel = m\n",
		 "[image] must appear at least 1"},
		{"format = doc-1\nname = a\n[image a]\nfile = f\n",
		 "[target] must appear 1"},
		{"format = doc-1\nname = a\n[target x]\nmodel = m\n[image a]\n"
		 "file = f\n", "[target] takes no label"},
		{"format = doc-1\nname = a\n[target]\nmodel = m\n[image]\n"
		 "file = f\n", "[image] needs a label"},
		{"format = doc-1\nname = a\n[target]\nmodel = m\n[image a]\n"
		 "file = f\n[extra]\n", "unknown section [extra]"},
	};
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = check_text(cases[i].text, &d);
		if (rc != STN_E_SYNTAX || !strstr(d.text, cases[i].reason))
			fail_msg("case %zu: rc %d, text '%s', want '%s'", i, rc,
				 d.text, cases[i].reason);
	}
	assert_int_equal(check_text("format = doc-1\nname = a\n[target]\n"
				    "model = m\n[image a]\nfile = f\n"
				    "[image b]\nfile = g\n", &d), 0);
}

static void getters_check_typed_values(void **state)
{
	const char *text = "format = x\n"
			   "n = 18446744073709551615\n"
			   "big = 18446744073709551616\n"
			   "lead = 007\n"
			   "neg = -1\n"
			   "t = 2026-11-20T10:00:00Z\n"
			   "tbad = 2026-02-30T10:00:00Z\n"
			   "tfrac = 2026-11-20T10:00:00.5Z\n"
			   "dig = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
			   "digup = 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n"
			   "dur = 72h\n"
			   "durbad = 72\n"
			   "yes = yes\n"
			   "nope = maybe\n"
			   "tok = tx200-app\n"
			   "tokbad = tx200/../app\n";
	struct cu_record *r = NULL;
	struct stn_diag d;
	uint64_t u;
	int64_t t;
	uint8_t dig[32];
	int b;
	const char *s;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_record_parse(text, strlen(text), "t", &r, &d), 0);
	const struct cu_section *top = cu_record_section(r, 0);
	assert_int_equal(cu_get_u64(r, top, "n", &u, &d), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(cu_get_u64(r, top, "big", &u, &d), STN_E_SYNTAX);
	assert_non_null(strstr(d.text, "unsigned 64-bit"));
	assert_string_equal(d.where, "t:3");
	stn_diag_init(&d);
	assert_int_equal(cu_get_u64(r, top, "lead", &u, &d), STN_E_SYNTAX);
	assert_int_equal(cu_get_u64(r, top, "neg", &u, &d), STN_E_SYNTAX);
	assert_int_equal(cu_get_time(r, top, "t", &t, &d), 0);
	assert_true(t == 1795168800);
	assert_int_equal(cu_get_time(r, top, "tbad", &t, &d), STN_E_SYNTAX);
	assert_int_equal(cu_get_time(r, top, "tfrac", &t, &d), STN_E_SYNTAX);
	assert_int_equal(cu_get_digest(r, top, "dig", dig, &d), 0);
	assert_int_equal(dig[0], 0x9f);
	assert_int_equal(cu_get_digest(r, top, "digup", dig, &d),
			 STN_E_SYNTAX);
	assert_int_equal(cu_get_duration(r, top, "dur", &t, &d), 0);
	assert_true(t == 72 * 3600);
	assert_int_equal(cu_get_duration(r, top, "durbad", &t, &d),
			 STN_E_SYNTAX);
	assert_int_equal(cu_get_bool(r, top, "yes", &b, &d), 0);
	assert_int_equal(b, 1);
	assert_int_equal(cu_get_bool(r, top, "nope", &b, &d), STN_E_SYNTAX);
	assert_int_equal(cu_get_token(r, top, "tok", "a-z0-9._-", 64, &s, &d),
			 0);
	stn_diag_init(&d);
	assert_int_equal(
		cu_get_token(r, top, "tokbad", "a-z0-9._-", 64, &s, &d),
		STN_E_SYNTAX);
	assert_non_null(strstr(d.text, "'tokbad' must be"));
	stn_diag_init(&d);
	assert_int_equal(cu_get_str(r, top, "absent", &s, &d), STN_E_SYNTAX);
	assert_non_null(strstr(d.text, "missing required key 'absent'"));
	cu_record_free(r);
}

static void load_refuses_symlinks_and_non_regular_files(void **state)
{
	char dir[] = "/tmp/rec-XXXXXX", path[64], link[64];
	struct cu_record *r = NULL;
	struct stn_diag d;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/real", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	f = fopen(path, "w");
	fputs("format = x\n", f);
	fclose(f);
	assert_int_equal(symlink(path, link), 0);
	stn_diag_init(&d);
	assert_int_equal(cu_record_load(path, &r, &d), 0);
	cu_record_free(r);
	r = NULL;
	stn_diag_init(&d);
	assert_int_equal(cu_record_load(link, &r, &d), STN_E_UNSAFE);
	assert_non_null(strstr(d.text, "symbolic link"));
	stn_diag_init(&d);
	assert_int_equal(cu_record_load(dir, &r, &d), STN_E_UNSAFE);
	unlink(link);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parser_refuses_each_broken_rule_with_its_reason),
		cmocka_unit_test(parser_accepts_comments_blanks_and_whitespace),
		cmocka_unit_test(parser_keeps_hash_inside_values),
		cmocka_unit_test(
			parser_accepts_an_empty_record_and_schema_refuses_it),
		cmocka_unit_test(parser_ignores_vendor_extension_keys),
		cmocka_unit_test(
			parser_accepts_utf8_values_and_counts_characters),
		cmocka_unit_test(parser_refuses_records_over_64_kib),
		cmocka_unit_test(
			schema_refuses_what_the_document_does_not_allow),
		cmocka_unit_test(getters_check_typed_values),
		cmocka_unit_test(load_refuses_symlinks_and_non_regular_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
