/* tests/test_devmsg.c: signed records as lines (transport/devmsg.h): what
 * tp_msg_take keeps, every refusal its contract lists, tp_msg_format's
 * lines and the round trip through tp_msg_parse_block, with the `ok`,
 * `ok sha256=...` and `error TEXT` endings a device sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/base64.h"
#include "station/base/error.h"
#include "transport/devmsg.h"

static struct tp_signed_msg *new_msg(void)
{
	struct tp_signed_msg *m = malloc(sizeof(*m));

	assert_non_null(m);
	tp_msg_init(m);
	return m;
}

static int take(struct tp_signed_msg *m, const char *line,
		struct stn_diag *d)
{
	stn_diag_init(d);
	return tp_msg_take(m, line, strlen(line), "dev", d);
}

/* `sig ` or `cert ` and the base64 of n bytes of value v. */
static char *b64_line(const char *word, size_t n, uint8_t v)
{
	uint8_t *bytes = malloc(n ? n : 1);
	char *line = malloc(strlen(word) + 1 + STN_B64_LEN(n) + 1);

	assert_non_null(bytes);
	assert_non_null(line);
	memset(bytes, v, n);
	sprintf(line, "%s ", word);
	stn_b64_encode(bytes, n, line + strlen(line));
	free(bytes);
	return line;
}

static void assert_refused(int rc, const struct stn_diag *d, int code,
			   const char *words)
{
	assert_int_equal(rc, code);
	assert_int_equal(d->code, code);
	assert_string_equal(d->where, "dev");
	if (!strstr(d->text, words))
		fail_msg("\"%s\" does not say \"%s\"", d->text, words);
}

static void take_keeps_record_sig_and_certs(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;

	(void)state;
	assert_false(tp_msg_complete(m));
	assert_int_equal(take(m, "format = station-attest-1", &d), 0);
	assert_int_equal(take(m, "", &d), 0); /* blank: not taken */
	assert_int_equal(take(m, "serial = SN-0001", &d), 0);
	assert_false(tp_msg_complete(m));
	assert_int_equal(take(m, "sig AQID", &d), 0);
	assert_true(tp_msg_complete(m));
	assert_int_equal(take(m, "cert BAUG", &d), 0);
	assert_int_equal(take(m, "cert Bw==", &d), 0);
	assert_string_equal(m->record,
			    "format = station-attest-1\nserial = SN-0001\n");
	assert_int_equal(m->record_len, strlen(m->record));
	assert_int_equal(m->nlines, 2);
	assert_int_equal(m->sig_len, 3);
	assert_memory_equal(m->sig, "\1\2\3", 3);
	assert_int_equal(m->ncerts, 2);
	assert_int_equal(m->cert_len[0], 3);
	assert_memory_equal(m->cert[0], "\4\5\6", 3);
	assert_int_equal(m->cert_len[1], 1);
	assert_int_equal(m->cert[1][0], 7);
	free(m);
}

static void take_refuses_a_line_over_the_cap(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char *line = malloc(TP_MSG_LINE_MAX + 2);

	(void)state;
	memset(line, 'a', TP_MSG_LINE_MAX + 1);
	line[TP_MSG_LINE_MAX + 1] = '\0';
	assert_refused(take(m, line, &d), &d, STN_E_PROTOCOL,
		       "a line of 6001 bytes");
	/* A line of exactly TP_MSG_LINE_MAX is judged for what it says. */
	line[TP_MSG_LINE_MAX] = '\0';
	memcpy(line, "cert ", 5);
	assert_int_equal(take(m, "a = b", &d), 0);
	assert_int_equal(take(m, "sig AQID", &d), 0);
	assert_refused(take(m, line, &d), &d, STN_E_PROTOCOL,
		       "`cert` line 1 is not canonical base64");
	free(line);
	free(m);
}

static void take_refuses_control_characters_and_nul(void **state)
{
	static const char *const bad[] = {"a = b\rc", "a\t= b", "a = \x7f",
					  "a = \x1b[2J"};
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(take(m, bad[i], &d), &d, STN_E_PROTOCOL,
			       "control character");
	stn_diag_init(&d);
	assert_refused(tp_msg_take(m, "a = b\0c", 7, "dev", &d), &d,
		       STN_E_PROTOCOL, "record line 1 holds control "
				       "character 0x00");
	assert_int_equal(m->nlines, 0);
	assert_int_equal(m->record_len, 0);
	free(m);
}

static void take_refuses_more_lines_than_the_cap(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char line[32];

	(void)state;
	for (int i = 0; i < TP_MSG_LINES_MAX; i++) {
		snprintf(line, sizeof(line), "k%d = v", i);
		assert_int_equal(take(m, line, &d), 0);
	}
	assert_refused(take(m, "one = more", &d), &d, STN_E_PROTOCOL,
		       "exceeds 288 lines or 16384 bytes");
	assert_int_equal(m->nlines, TP_MSG_LINES_MAX);
	free(m);
}

static void take_refuses_more_record_bytes_than_the_cap(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char line[1100];

	(void)state;
	/* Lines of 1023 + LF, then one that fits exactly. */
	memset(line, 'v', sizeof(line));
	memcpy(line, "k = ", 4);
	line[1023] = '\0';
	for (int i = 0; i < TP_MSG_RECORD_MAX / 1024 - 1; i++)
		assert_int_equal(take(m, line, &d), 0);
	line[1023] = '\0';
	assert_int_equal(take(m, line, &d), 0);
	assert_int_equal(m->record_len, TP_MSG_RECORD_MAX);
	assert_int_equal(m->record[TP_MSG_RECORD_MAX], '\0');
	assert_refused(take(m, "x", &d), &d, STN_E_PROTOCOL,
		       "exceeds 288 lines or 16384 bytes");
	free(m);
}

static void take_refuses_bad_or_oversized_base64(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char *big;

	(void)state;
	assert_int_equal(take(m, "a = b", &d), 0);
	assert_refused(take(m, "sig AQI", &d), &d, STN_E_PROTOCOL,
		       "`sig` line is not canonical base64");
	assert_refused(take(m, "sig AQ==  ", &d), &d, STN_E_PROTOCOL,
		       "`sig` line is not canonical base64");
	assert_refused(take(m, "sig AR==", &d), &d, STN_E_PROTOCOL,
		       "not canonical base64 of at most 1024 bytes");
	assert_refused(take(m, "sig ", &d), &d, STN_E_PROTOCOL,
		       "`sig` line is not canonical base64");
	big = b64_line("sig", TP_MSG_SIG_MAX + 1, 1);
	assert_refused(take(m, big, &d), &d, STN_E_PROTOCOL,
		       "at most 1024 bytes");
	free(big);
	assert_false(tp_msg_complete(m));
	big = b64_line("sig", TP_MSG_SIG_MAX, 1);
	assert_int_equal(take(m, big, &d), 0);
	free(big);
	assert_int_equal(m->sig_len, TP_MSG_SIG_MAX);
	assert_refused(take(m, "cert AQ=", &d), &d, STN_E_PROTOCOL,
		       "`cert` line 1 is not canonical base64");
	big = b64_line("cert", TP_MSG_CERT_MAX + 1, 2);
	assert_refused(take(m, big, &d), &d, STN_E_PROTOCOL,
		       "at most 4096 bytes");
	free(big);
	assert_int_equal(m->ncerts, 0);
	big = b64_line("cert", TP_MSG_CERT_MAX, 2);
	assert_int_equal(take(m, big, &d), 0);
	free(big);
	assert_int_equal(m->cert_len[0], TP_MSG_CERT_MAX);
	free(m);
}

static void take_refuses_lines_out_of_order(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;

	(void)state;
	assert_refused(take(m, "sig AQID", &d), &d, STN_E_PROTOCOL,
		       "a `sig` line before any record line");
	assert_int_equal(take(m, "a = b", &d), 0);
	assert_refused(take(m, "cert AQID", &d), &d, STN_E_PROTOCOL,
		       "a `cert` line before the `sig` line");
	assert_int_equal(take(m, "sig AQID", &d), 0);
	assert_refused(take(m, "sig AQID", &d), &d, STN_E_PROTOCOL,
		       "a second `sig` line");
	assert_refused(take(m, "b = c", &d), &d, STN_E_PROTOCOL,
		       "a record line after the `sig` line");
	for (int i = 0; i < TP_MSG_CERTS_MAX; i++)
		assert_int_equal(take(m, "cert AQID", &d), 0);
	assert_refused(take(m, "cert AQID", &d), &d, STN_E_PROTOCOL,
		       "more than 4 `cert` lines");
	assert_int_equal(m->ncerts, TP_MSG_CERTS_MAX);
	assert_string_equal(m->record, "a = b\n");
	free(m);
}

/* An empty line is never a record line, before or after `sig` (the
 * contract: empty lines are not taken); a device's stray CR LF between
 * the `sig` and `cert` lines is not "a record line after `sig`". */
static void take_skips_empty_lines_after_sig_too(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;

	(void)state;
	assert_int_equal(take(m, "a = b", &d), 0);
	assert_int_equal(take(m, "sig AQID", &d), 0);
	assert_int_equal(take(m, "", &d), 0);
	assert_int_equal(take(m, "cert AQID", &d), 0);
	assert_int_equal(take(m, "", &d), 0);
	assert_int_equal(m->ncerts, 1);
	assert_string_equal(m->record, "a = b\n");
	free(m);
}

static void format_writes_lines_with_the_eol_asked(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char *out;
	size_t len;

	(void)state;
	assert_int_equal(take(m, "format = x", &d), 0);
	assert_int_equal(take(m, "k = v", &d), 0);
	assert_int_equal(take(m, "sig AQID", &d), 0);
	assert_int_equal(take(m, "cert BAUG", &d), 0);
	stn_diag_init(&d);
	assert_int_equal(tp_msg_format(m, "\r\n", &out, &len, &d), 0);
	assert_string_equal(out, "format = x\r\nk = v\r\nsig AQID\r\n"
				 "cert BAUG\r\n");
	assert_int_equal(len, strlen(out));
	free(out);
	assert_int_equal(tp_msg_format(m, "\n", &out, &len, &d), 0);
	assert_string_equal(out, "format = x\nk = v\nsig AQID\ncert BAUG\n");
	free(out);
	free(m);
}

static void format_refuses_a_message_without_signature(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char *out = (char *)"untouched";
	size_t len = 5;

	(void)state;
	assert_int_equal(take(m, "format = x", &d), 0);
	stn_diag_init(&d);
	assert_int_equal(tp_msg_format(m, "\n", &out, &len, &d), STN_E_USAGE);
	assert_null(out);
	assert_non_null(strstr(d.text, "without a signature"));
	free(m);
}

/* Formatted at the caps (largest record, sig and certs), parsed back the
 * same: the round trip is exact for both line ends. */
static void format_and_parse_round_trip_at_the_caps(void **state)
{
	static const char *const eols[] = {"\r\n", "\n"};
	struct tp_signed_msg *m = new_msg(), *back = new_msg();
	struct stn_diag d;
	char line[80], term[80];

	(void)state;
	/* Lines of 63 bytes and an LF fill the record exactly. */
	for (int i = 0; i < TP_MSG_RECORD_MAX / 64; i++) {
		snprintf(line, sizeof(line), "k%03d = %056d", i, i);
		assert_int_equal(take(m, line, &d), 0);
	}
	assert_int_equal(m->record_len, TP_MSG_RECORD_MAX);
	m->has_sig = 1;
	m->sig_len = TP_MSG_SIG_MAX;
	for (size_t i = 0; i < m->sig_len; i++)
		m->sig[i] = (uint8_t)(i * 31);
	m->ncerts = TP_MSG_CERTS_MAX;
	for (size_t c = 0; c < TP_MSG_CERTS_MAX; c++) {
		m->cert_len[c] = TP_MSG_CERT_MAX - c;
		for (size_t i = 0; i < m->cert_len[c]; i++)
			m->cert[c][i] = (uint8_t)(i ^ c);
	}
	for (size_t e = 0; e < 2; e++) {
		char *out, *block;
		size_t len;
		stn_diag_init(&d);
		assert_int_equal(tp_msg_format(m, eols[e], &out, &len, &d), 0);
		block = malloc(len + 32);
		assert_non_null(block);
		memcpy(block, out, len);
		memcpy(block + len, "ok sha256=ab", 12);
		memcpy(block + len + 12, eols[e], strlen(eols[e]));
		assert_int_equal(tp_msg_parse_block(back, block,
						    len + 12 + strlen(eols[e]),
						    term, sizeof(term), "dev",
						    &d),
				 0);
		assert_string_equal(term, "ok sha256=ab");
		assert_int_equal(back->record_len, m->record_len);
		assert_memory_equal(back->record, m->record, m->record_len);
		assert_int_equal(back->nlines, m->nlines);
		assert_int_equal(back->sig_len, m->sig_len);
		assert_memory_equal(back->sig, m->sig, m->sig_len);
		assert_int_equal(back->ncerts, m->ncerts);
		for (size_t c = 0; c < m->ncerts; c++) {
			assert_int_equal(back->cert_len[c], m->cert_len[c]);
			assert_memory_equal(back->cert[c], m->cert[c],
					    m->cert_len[c]);
		}
		free(block);
		free(out);
	}
	free(m);
	free(back);
}

static int parse(struct tp_signed_msg *m, const char *text, char *term,
		 size_t cap, struct stn_diag *d)
{
	stn_diag_init(d);
	return tp_msg_parse_block(m, text, strlen(text), term, cap, "dev", d);
}

static void parse_block_ends_at_ok(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char term[40];

	(void)state;
	assert_int_equal(parse(m, "a = b\r\n\r\nc = d\r\nsig AQID\r\nok\r\n",
			       term, sizeof(term), &d),
			 0);
	assert_string_equal(term, "ok");
	assert_string_equal(m->record, "a = b\nc = d\n");
	assert_true(tp_msg_complete(m));
	/* Empty lines after `ok` are fine; a last line without LF too. */
	assert_int_equal(parse(m, "a = b\nsig AQID\nok\n\n\r\n", term,
			       sizeof(term), &d),
			 0);
	assert_int_equal(parse(m, "a = b\nsig AQID\nok", NULL, 0, &d), 0);
	/* A block may be only `ok` (an answer with nothing signed). */
	assert_int_equal(parse(m, "ok\n", term, sizeof(term), &d), 0);
	assert_false(tp_msg_complete(m));
	free(m);
}

static void parse_block_keeps_the_ok_sha256_line(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char term[100];
	const char *hex = "9f86d081884c7d659a2feaa0c55ad015"
			  "a3bf4f1b2b0b822cd15d6c15b0f00a08";
	char text[300];

	(void)state;
	snprintf(text, sizeof(text),
		 "format = station-receipt-1\r\nsig AQID\r\nok sha256=%s\r\n",
		 hex);
	assert_int_equal(parse(m, text, term, sizeof(term), &d), 0);
	assert_string_equal(term + strlen("ok sha256="), hex);
	assert_int_equal(strncmp(term, "ok sha256=", 10), 0);
	/* The device's terminator text is made printable. */
	assert_int_equal(parse(m, "ok sha256=\x1b[1m\n", term, sizeof(term),
			       &d),
			 0);
	assert_string_equal(term, "ok sha256=?[1m");
	free(m);
}

static void parse_block_refuses_a_block_without_ok(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char term[40];

	(void)state;
	assert_refused(parse(m, "a = b\nsig AQID\n", term, sizeof(term), &d),
		       &d, STN_E_PROTOCOL, "ends without `ok`");
	assert_refused(parse(m, "", term, sizeof(term), &d), &d,
		       STN_E_PROTOCOL, "ends without `ok`");
	/* `okay` and `ok ` alone are no terminators. */
	assert_refused(parse(m, "a = b\nsig AQID\nokay\n", term, sizeof(term),
			     &d),
		       &d, STN_E_PROTOCOL, "a record line after the `sig`");
	free(m);
}

static void parse_block_refuses_text_after_ok(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;

	(void)state;
	assert_refused(parse(m, "a = b\nsig AQID\nok\ncert AQID\n", NULL, 0,
			     &d),
		       &d, STN_E_PROTOCOL, "text after the closing `ok`");
	assert_refused(parse(m, "ok\nok\n", NULL, 0, &d), &d, STN_E_PROTOCOL,
		       "text after the closing `ok`");
	free(m);
}

static void parse_block_passes_on_take_refusals(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;

	(void)state;
	assert_refused(parse(m, "a = b\nsig AQI\nok\n", NULL, 0, &d), &d,
		       STN_E_PROTOCOL, "not canonical base64");
	assert_refused(parse(m, "a = \x01\nok\n", NULL, 0, &d), &d,
		       STN_E_PROTOCOL, "control character 0x01");
	free(m);
}

static void parse_block_reports_the_devices_error(void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	char term[40] = "stale";

	(void)state;
	assert_refused(parse(m, "error unknown command\r\n", term,
			     sizeof(term), &d),
		       &d, STN_E_DEVICE,
		       "the device answered: error unknown command");
	assert_string_equal(term, ""); /* no terminator seen */
	assert_refused(parse(m, "\r\nerror\r\n", NULL, 0, &d), &d,
		       STN_E_DEVICE, "the device answered: error");
	/* The device's words are made printable. */
	assert_refused(parse(m, "error bad\x1b]0;pwn\x07 thing\n", NULL, 0,
			     &d),
		       &d, STN_E_DEVICE, "error bad?]0;pwn? thing");
	/* `errors` is no error line: it is a record line. */
	assert_refused(parse(m, "errors = 1\n", NULL, 0, &d), &d,
		       STN_E_PROTOCOL, "ends without `ok`");
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(take_keeps_record_sig_and_certs),
		cmocka_unit_test(take_refuses_a_line_over_the_cap),
		cmocka_unit_test(take_refuses_control_characters_and_nul),
		cmocka_unit_test(take_refuses_more_lines_than_the_cap),
		cmocka_unit_test(take_refuses_more_record_bytes_than_the_cap),
		cmocka_unit_test(take_refuses_bad_or_oversized_base64),
		cmocka_unit_test(take_refuses_lines_out_of_order),
		cmocka_unit_test(take_skips_empty_lines_after_sig_too),
		cmocka_unit_test(format_writes_lines_with_the_eol_asked),
		cmocka_unit_test(format_refuses_a_message_without_signature),
		cmocka_unit_test(format_and_parse_round_trip_at_the_caps),
		cmocka_unit_test(parse_block_ends_at_ok),
		cmocka_unit_test(parse_block_keeps_the_ok_sha256_line),
		cmocka_unit_test(parse_block_refuses_a_block_without_ok),
		cmocka_unit_test(parse_block_refuses_text_after_ok),
		cmocka_unit_test(parse_block_passes_on_take_refusals),
		cmocka_unit_test(parse_block_reports_the_devices_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
