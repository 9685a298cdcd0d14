/* tests/test_canon.c: the canonical encoding (station/canon.h) against
 * docs/journal.md, table by table: how each byte of a string is spelled,
 * strict UTF-8, field keys, numbers, the body of known values, which part
 * of a body differs, the refusals, and the chain hash of a known body
 * against sha256sum run on the same bytes (not against this code). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "station/canon.h"
#include "station/base/error.h"
#include "station/base/strbuf.h"

/* 2026-11-20T10:00:00Z */
#define T0 INT64_C(1795168800)

static char *json_of(const char *s)
{
	struct stn_buf b = {0};

	stn_canon_json_buf(&b, s);
	assert_false(b.oom);
	return b.p;
}

static void strings_are_escaped_only_as_the_document_says(void **state)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{"", "\"\""},
		{"plain", "\"plain\""},
		{"q\"", "\"q\\\"\""},
		{"b\\s", "\"b\\\\s\""},
		{"\n\t\r", "\"\\u000a\\u0009\\u000d\""},
		{"\x01" "a\x1f", "\"\\u0001a\\u001f\""},
		{"del\x7f", "\"del\\u007f\""},
		/* '/' and UTF-8 are never escaped. */
		{"a/b \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		 "\"a/b \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
		{"\x20~", "\" ~\""},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *got = json_of(t[i].in);

		if (strcmp(got, t[i].out) != 0)
			fail_msg("case %zu: got %s, want %s", i, got, t[i].out);
		free(got);
	}
}

static void every_byte_has_the_one_spelling_of_the_document(void **state)
{
	(void)state;
	for (int c = 1; c < 256; c++) {
		enum stn_canon_spelling want =
			c == '"' || c == '\\'    ? STN_CANON_SHORT
			: c < 0x20 || c == 0x7f ? STN_CANON_U00XX
						: STN_CANON_AS_IS;

		if (stn_canon_spelling_of((unsigned char)c) != want)
			fail_msg("byte 0x%02x", c);
	}
}

static void utf8_is_strict(void **state)
{
	static const struct {
		const char *s;
		int ok;
	} t[] = {
		{"", 1},
		{"ascii", 1},
		{"\xc3\xa9", 1},                 /* U+00E9 */
		{"\xe2\x82\xac", 1},             /* U+20AC */
		{"\xf4\x8f\xbf\xbf", 1},         /* U+10FFFF */
		{"\xc0\xaf", 0},                 /* overlong '/' */
		{"\xe0\x80\xaf", 0},             /* overlong, 3 bytes */
		{"\xed\xa0\x80", 0},             /* surrogate U+D800 */
		{"\xf4\x90\x80\x80", 0},         /* past U+10FFFF */
		{"\xc3", 0},                     /* cut short */
		{"\xe2\x82", 0},                 /* cut short */
		{"\x80", 0},                     /* lone continuation */
		{"\xff", 0},
		{"a\xc3(", 0},                   /* bad continuation */
	};
	(void)state;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (stn_canon_utf8_ok(t[i].s) != t[i].ok)
			fail_msg("case %zu: want %d", i, t[i].ok);
	assert_false(stn_canon_utf8_ok(NULL));
}

static void keys_are_lowercase_words_of_at_most_32(void **state)
{
	static const struct {
		const char *k;
		int ok;
	} t[] = {
		{"serial", 1},
		{"duration-ms", 1},
		{"a", 1},
		{"x9", 1},
		{"abcdefghijklmnopqrstuvwxyz012345", 1}, /* 32 */
		{"abcdefghijklmnopqrstuvwxyz0123456", 0}, /* 33 */
		{"", 0},
		{"9x", 0},
		{"-x", 0},
		{"Serial", 0},
		{"se rial", 0},
		{"se_rial", 0},
		{"s\xc3\xa9", 0},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (stn_canon_key_ok(t[i].k) != t[i].ok)
			fail_msg("key \"%s\": want %d", t[i].k, t[i].ok);
	assert_false(stn_canon_key_ok(NULL));
}

static void hashes_and_numbers_have_one_spelling(void **state)
{
	static const struct {
		const char *s;
		int ok;
		uint64_t v;
	} n[] = {
		{"0", 1, 0},
		{"42", 1, 42},
		{"18446744073709551615", 1, UINT64_MAX},
		{"18446744073709551616", 0, 0},
		{"007", 0, 0},
		{"", 0, 0},
		{"-1", 0, 0},
		{"+1", 0, 0},
		{"1.0", 0, 0},
		{" 1", 0, 0},
	};
	char h[65];
	uint64_t v;
	(void)state;

	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
		v = 7;
		if ((stn_canon_u64(n[i].s, &v) == 0) != n[i].ok ||
		    (n[i].ok && v != n[i].v) || (!n[i].ok && v != 7))
			fail_msg("number \"%s\"", n[i].s);
	}
	memset(h, 'a', 64);
	h[64] = '\0';
	assert_true(stn_canon_is_hash(h));
	assert_true(stn_canon_is_hash(STN_CANON_GENESIS));
	h[3] = 'A';
	assert_false(stn_canon_is_hash(h));
	h[3] = 'a';
	h[63] = '\0';
	assert_false(stn_canon_is_hash(h));
	assert_false(stn_canon_is_hash(NULL));
}

static const struct stn_field known_fields[] = {
	{"serial", "SN-1"},
	{"note", "q\"b\\s\nn\x01" "e\x7f" "f\xc3\xa9"},
};
/* docs/journal.md's body, written out by hand. */
static const char known_body[] =
	"{\"seq\":7,\"time\":\"2026-11-20T10:00:00Z\","
	"\"type\":\"install-finished\",\"session\":\"S \\\"1\\\"\","
	"\"fields\":{\"serial\":\"SN-1\","
	"\"note\":\"q\\\"b\\\\s\\u000an\\u0001e\\u007ff\xc3\xa9\"}}";

static void the_body_of_known_values_is_the_documented_line(void **state)
{
	struct stn_diag d = {0};
	char *body = NULL;
	size_t len = 0;
	(void)state;

	assert_int_equal(stn_canon_body(7, T0, "install-finished", "S \"1\"",
					known_fields, 2, &body, &len, &d),
			 0);
	assert_string_equal(body, known_body);
	assert_int_equal(len, strlen(known_body));
	free(body);
	assert_int_equal(stn_canon_body(1, 0, "t", "", NULL, 0, &body, &len,
					&d),
			 0);
	assert_string_equal(body, "{\"seq\":1,\"time\":\"1970-01-01T00:00:00Z\","
				  "\"type\":\"t\",\"session\":\"\","
				  "\"fields\":{}}");
	free(body);
}

/* sha256sum, a program of its own, over the bytes prev "\n" body. */
static void sha256sum_of(const char *prev, const char *body, char hex[65])
{
	char path[] = "/tmp/test_canon.XXXXXX", cmd[128];
	int fd = mkstemp(path);
	FILE *p;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, prev, strlen(prev)), (ssize_t)strlen(prev));
	assert_int_equal(write(fd, "\n", 1), 1);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%64s", hex), 1);
	assert_int_equal(pclose(p), 0);
	unlink(path);
}

static void the_chain_hash_is_what_sha256sum_says(void **state)
{
	char want[65], got[65];
	const char *prev2 =
		"5722a332985676395b894198a01359defe373051948d56b7ff8e8d0d3df70f07";
	(void)state;

	sha256sum_of(STN_CANON_GENESIS, known_body, want);
	assert_int_equal(stn_canon_hash(STN_CANON_GENESIS, known_body,
					strlen(known_body), got),
			 0);
	assert_string_equal(got, want);
	sha256sum_of(prev2, "{}", want);
	assert_int_equal(stn_canon_hash(prev2, "{}", 2, got), 0);
	assert_string_equal(got, want);
}

static void a_differing_body_names_its_first_wrong_part(void **state)
{
	static const struct {
		const char *stored;
		enum stn_canon_part part;
	} t[] = {
		{"{\"seq\":1,\"time\":\"2026-11-20T10:00:00Z\",\"type\":\"t\","
		 "\"session\":\"S\",\"fields\":{\"k\":\"v\"}}", STN_CANON_PARTS},
		{"{\"seq\":12,\"time\":\"2026-11-20T10:00:00Z\",\"type\":\"t\","
		 "\"session\":\"S\",\"fields\":{\"k\":\"v\"}}", STN_CANON_SEQ},
		{"{\"seq\":1,\"time\":\"2026-11-20T10:00:01Z\",\"type\":\"t\","
		 "\"session\":\"S\",\"fields\":{\"k\":\"v\"}}", STN_CANON_TIME},
		{"{\"seq\":1,\"time\":\"2026-11-20T10:00:00Z\",\"type\":\"tt\","
		 "\"session\":\"S\",\"fields\":{\"k\":\"v\"}}", STN_CANON_TYPE},
		{"{\"seq\":1,\"time\":\"2026-11-20T10:00:00Z\",\"type\":\"t\","
		 "\"session\":\"X\",\"fields\":{\"k\":\"v\"}}",
		 STN_CANON_SESSION},
		{"{\"seq\":1,\"time\":\"2026-11-20T10:00:00Z\",\"type\":\"t\","
		 "\"session\":\"S\",\"fields\":{\"k\":\"w\"}}", STN_CANON_FIELDS},
		{"{\"seq\":1,\"time\":\"2026-11-20T10:00:00Z\",\"type\":\"t\","
		 "\"session\":\"S\",\"fields\":{\"k\":\"v\"}} ",
		 STN_CANON_FIELDS},
	};
	const struct stn_field f[] = {{"k", "v"}};
	struct stn_buf b = {0};
	size_t ends[STN_CANON_PARTS];
	(void)state;

	stn_canon_body_build(&b, 1, T0, "t", "S", f, 1, ends);
	assert_false(b.oom);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		enum stn_canon_part got = stn_canon_body_diff(
			b.p, b.len, ends, t[i].stored, strlen(t[i].stored));

		if (got != t[i].part)
			fail_msg("case %zu: got %s, want %s", i,
				 stn_canon_part_name(got),
				 stn_canon_part_name(t[i].part));
	}
	free(b.p);
}

static void values_that_break_a_rule_are_refused_by_name(void **state)
{
	const struct stn_field bad_key[] = {{"Bad", "v"}};
	const struct stn_field twice[] = {{"k", "1"}, {"k", "2"}};
	const struct stn_field bad_value[] = {{"k", "\xc0\xaf"}};
	const struct stn_field null_value[] = {{"k", NULL}};
	static const struct {
		int64_t time;
		const char *type, *session;
		const struct stn_field *f;
		size_t n;
		const char *text;
	} t[] = {
		{-1, "t", "S", NULL, 0, "outside 1970..9999"},
		{STN_CANON_TIME_MAX + 1, "t", "S", NULL, 0,
		 "outside 1970..9999"},
		{T0, "", "S", NULL, 0, "type is empty or not UTF-8"},
		{T0, NULL, "S", NULL, 0, "type is empty or not UTF-8"},
		{T0, "t", NULL, NULL, 0, "session is missing or not UTF-8"},
		{T0, "t", "S", NULL, 1, "1 fields but no array"},
		{T0, "t", "S", NULL, STN_CANON_FIELDS_MAX + 1,
		 "fields but no array"},
	};
	struct stn_diag d;
	char *body = NULL;
	size_t len;
	(void)state;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		stn_diag_init(&d);
		assert_int_equal(stn_canon_check("x", t[i].time, t[i].type,
						 t[i].session, t[i].f, t[i].n,
						 &d),
				 STN_E_INTERNAL);
		if (!strstr(d.text, t[i].text))
			fail_msg("case %zu: \"%s\"", i, d.text);
	}
	stn_diag_init(&d);
	assert_int_equal(stn_canon_check("x", T0, "t", "S", bad_key, 1, &d),
			 STN_E_INTERNAL);
	assert_non_null(strstr(d.text, "is not [a-z][a-z0-9-]{0,31}"));
	stn_diag_init(&d);
	assert_int_equal(stn_canon_check("x", T0, "t", "S", twice, 2, &d),
			 STN_E_INTERNAL);
	assert_non_null(strstr(d.text, "field k appears twice"));
	stn_diag_init(&d);
	assert_int_equal(stn_canon_check("x", T0, "t", "S", bad_value, 1, &d),
			 STN_E_INTERNAL);
	assert_non_null(strstr(d.text, "value is missing or not UTF-8"));
	stn_diag_init(&d);
	assert_int_equal(stn_canon_body(1, T0, "t", "S", null_value, 1, &body,
					&len, &d),
			 STN_E_INTERNAL);
	assert_null(body);
}

static void a_body_over_the_cap_is_refused(void **state)
{
	char *big = malloc(STN_CANON_BODY_MAX + 1), *body = NULL;
	struct stn_field f[] = {{"k", big}};
	struct stn_diag d = {0};
	size_t len;
	(void)state;

	assert_non_null(big);
	memset(big, 'x', STN_CANON_BODY_MAX);
	big[STN_CANON_BODY_MAX] = '\0';
	assert_int_equal(stn_canon_body(1, T0, "t", "S", f, 1, &body, &len,
					&d),
			 STN_E_INTERNAL);
	assert_non_null(strstr(d.text, "more than"));
	assert_null(body);
	/* Escapes count: 1/6 of the cap in control bytes is over it too. */
	memset(big, '\x01', STN_CANON_BODY_MAX / 6 + 1);
	big[STN_CANON_BODY_MAX / 6 + 1] = '\0';
	assert_int_equal(stn_canon_body(1, T0, "t", "S", f, 1, &body, &len,
					&d),
			 STN_E_INTERNAL);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strings_are_escaped_only_as_the_document_says),
		cmocka_unit_test(every_byte_has_the_one_spelling_of_the_document),
		cmocka_unit_test(utf8_is_strict),
		cmocka_unit_test(keys_are_lowercase_words_of_at_most_32),
		cmocka_unit_test(hashes_and_numbers_have_one_spelling),
		cmocka_unit_test(the_body_of_known_values_is_the_documented_line),
		cmocka_unit_test(the_chain_hash_is_what_sha256sum_says),
		cmocka_unit_test(a_differing_body_names_its_first_wrong_part),
		cmocka_unit_test(values_that_break_a_rule_are_refused_by_name),
		cmocka_unit_test(a_body_over_the_cap_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
