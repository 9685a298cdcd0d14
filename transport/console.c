/* transport/console.c: the station side of the device console: commands out
 * as CR LF lines, answers in as lines, the image in between over YMODEM. */
#include "transport/console.h"
#include "station/base/base64.h"
#include "station/base/hex.h"
#include "station/base/monotime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The device answers from RAM; 5 s covers a slow UART and a busy device. */
#define LINE_MS 5000
/* The whole identity record: a slow device printing a line a second still
 * fits; one that trickles lines just under LINE_MS does not hold us for
 * minutes. */
#define INFO_MS 30000
/* After `receive` the device may first erase its slot before it says
 * `ready` and sends 'C'. */
#define YMODEM_START_MS 15000
/* Between the last block and the verdict the device writes out and hashes
 * the image; flash is slow. */
#define VERDICT_MS 30000
/* After a failed exchange the rest of the device's answer may still be on
 * its way; it must not be read as the answer to the next command.  A device
 * sends an answer back to back, so 100 ms of silence means it is done. */
#define SETTLE_QUIET_MS 100
#define SETTLE_MAX_MS 2000
/* Values in an identity record reach 1024 characters (formats §1). */
#define LINE_MAX_LEN 1200
#define INFO_MAX_LINES 64
/* Empty or control-only lines an answer may carry before its first real
 * line (a CR LF echo, CAN bytes left by an aborted transfer).  A device
 * that sends endless ones is broken; without a cap it held the station in
 * a busy loop (issue 12). */
#define SKIP_MAX_LINES 16
/* Signed answers (formats §9) carry base64 certificates: a line may hold
 * TP_MSG_LINE_MAX characters, and the whole answer as many bytes as the
 * caps of devmsg.h allow, each line with its CR LF (`ok` included).  Its
 * overall deadline adds the wire time of that much to INFO_MS. */
#define MSG_LINE_CAP (TP_MSG_LINE_MAX + 1)
#define MSG_WIRE_MAX                                                      \
	(TP_MSG_RECORD_MAX + TP_MSG_LINES_MAX +                           \
	 STN_B64_LEN(TP_MSG_SIG_MAX) + 6 +                                \
	 TP_MSG_CERTS_MAX * (STN_B64_LEN(TP_MSG_CERT_MAX) + 7) + 4)
/* Lines of a signed answer: the record's, `sig`, the `cert`s, `ok`. */
#define MSG_MAX_LINES (TP_MSG_LINES_MAX + TP_MSG_CERTS_MAX + 2)

static int send_command(struct tp_serial *s, const char *cmd,
			struct stn_diag *d)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "%s\r\n", cmd);

	if (n < 0 || (size_t)n >= sizeof(line))
		return stn_fail(d, STN_E_INTERNAL, tp_serial_name(s),
				"command too long");
	tp_serial_drain_input(s);
	return tp_serial_write(s, line, (size_t)n, LINE_MS, d);
}

/* One answer: each line of it that carries something may take timeout_ms
 * (a slow device prints its identity line by line), counted from the
 * command or the previous such line; empty and control-only lines never
 * extend it, so a device that babbles them cannot restart the clock.  A
 * multi-line answer also has an overall deadline from the command, and
 * every answer a cap on its lines. */
struct answer {
	const char *cmd;
	int timeout_ms; /* per line that counts; also for messages */
	int64_t deadline, end;
	int lines_left;
	int skipped;
};

static void answer_start(struct answer *a, const char *cmd, int timeout_ms,
			 int total_ms, int max_lines)
{
	int64_t now = stn_mono_ms();

	a->cmd = cmd;
	a->timeout_ms = timeout_ms;
	a->deadline = now + timeout_ms;
	a->end = now + (total_ms > timeout_ms ? total_ms : timeout_ms);
	a->lines_left = max_lines + SKIP_MAX_LINES;
	a->skipped = 0;
}

/* Read the answer's next line; leading control bytes (CAN left over from
 * an aborted transfer) are dropped, and empty lines are skipped, within
 * the answer's deadline and line cap. */
static int read_answer(struct tp_serial *s, struct answer *a, char *line,
		       size_t cap, struct stn_diag *d)
{
	struct stn_diag ld;

	for (;;) {
		int64_t left = (a->deadline < a->end ? a->deadline : a->end) -
			       stn_mono_ms();
		size_t skip = 0;
		int rc;

		if (a->lines_left-- <= 0)
			return stn_fail(d, STN_E_PROTOCOL, tp_serial_name(s),
					"device sent too many lines in answer "
					"to `%s` (%d empty or control-only): "
					"a babbling line?",
					a->cmd, a->skipped);
		stn_diag_init(&ld);
		rc = left <= 0 ? STN_E_TIMEOUT
			       : tp_serial_readline(s, line, cap, (int)left,
						    &ld);
		if (rc == STN_E_TIMEOUT && a->skipped)
			return stn_fail(d, rc, tp_serial_name(s),
					"no answer to `%s` within %d ms, "
					"only %d empty or control-only lines",
					a->cmd, a->timeout_ms, a->skipped);
		if (rc == STN_E_TIMEOUT)
			return stn_fail(d, rc, tp_serial_name(s),
					"no answer to `%s` within %d ms",
					a->cmd, a->timeout_ms);
		if (rc)
			return stn_fail(d, rc, ld.where, "answer to `%s`: %s",
					a->cmd, ld.text);
		while (line[skip] && (unsigned char)line[skip] < 0x20)
			skip++;
		if (line[skip] == '\0') {
			a->skipped++;
			continue;
		}
		memmove(line, line + skip, strlen(line + skip) + 1);
		a->deadline = stn_mono_ms() + a->timeout_ms;
		return 0;
	}
}

/* Every verb leaves through here: a failure waits for the line to settle.
 * A device that is gone has nothing more to say. */
static int settle(struct tp_serial *s, int rc)
{
	if (rc && rc != STN_E_NODEVICE)
		tp_serial_drain_quiet(s, SETTLE_QUIET_MS, SETTLE_MAX_MS);
	return rc;
}

static int is_error(const char *line)
{
	return strncmp(line, "error", 5) == 0 &&
	       (line[5] == ' ' || line[5] == '\0');
}

/* The device's words after `error`, printable ASCII only, for a message
 * a technician reads. */
static void device_words(const char *line, char *buf, size_t cap)
{
	const char *p = line[5] ? line + 6 : "(no reason given)";
	size_t o = 0;

	for (; *p && o + 1 < cap; p++)
		buf[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	buf[o] = '\0';
}

/* One line of a signed answer into m, the refusal naming the command. */
static int take_line(struct tp_serial *s, struct tp_signed_msg *m,
		     const char *line, const char *cmd, struct stn_diag *d)
{
	struct stn_diag md;
	int rc;

	stn_diag_init(&md);
	rc = tp_msg_take(m, line, strlen(line), tp_serial_name(s), &md);
	if (rc)
		return stn_fail(d, rc, tp_serial_name(s), "answer to `%s`: %s",
				cmd, md.text);
	return 0;
}

/* `error TEXT` from the device; any other unexpected line. */
static int bad_answer(struct tp_serial *s, const char *line, const char *cmd,
		      struct stn_diag *d)
{
	if (strncmp(line, "error", 5) == 0 &&
	    (line[5] == ' ' || line[5] == '\0'))
		return stn_fail(d, STN_E_DEVICE, tp_serial_name(s),
				"device refused `%s`: %s", cmd,
				line[5] ? line + 6 : "(no reason given)");
	return stn_fail(d, STN_E_PROTOCOL, tp_serial_name(s),
			"unexpected answer to `%s`: \"%.200s\"", cmd, line);
}

int tp_console_info(struct tp_serial *s, char *buf, size_t cap,
		    struct stn_diag *d)
{
	char line[LINE_MAX_LEN];
	struct answer a;
	size_t len = 0;
	int lines = 0;
	int rc;

	if (cap == 0)
		return stn_fail(d, STN_E_USAGE, tp_serial_name(s),
				"no room for the identity");
	rc = send_command(s, "info", d);
	answer_start(&a, "info", LINE_MS, INFO_MS + tp_serial_line_ms(s, cap),
		     INFO_MAX_LINES + 1);
	while (!rc) {
		size_t n;

		rc = read_answer(s, &a, line, sizeof(line), d);
		if (rc)
			break;
		if (strcmp(line, "ok") == 0 && lines == 0) {
			/* Most likely the late `ok` of an earlier command
			 * that timed out; the protocol has no request ids. */
			rc = stn_fail(d, STN_E_PROTOCOL, tp_serial_name(s),
				      "`info` answered with an empty record");
			break;
		}
		if (strcmp(line, "ok") == 0) {
			buf[len] = '\0';
			break;
		}
		if (strncmp(line, "error", 5) == 0 &&
		    (line[5] == ' ' || line[5] == '\0')) {
			rc = bad_answer(s, line, "info", d);
			break;
		}
		if (++lines > INFO_MAX_LINES) {
			rc = stn_fail(d, STN_E_PROTOCOL, tp_serial_name(s),
				      "identity record has more than %d lines",
				      INFO_MAX_LINES);
			break;
		}
		n = strlen(line) + (len ? 1 : 0);
		if (len + n > cap - 1) {
			rc = stn_fail(d, STN_E_PROTOCOL, tp_serial_name(s),
				      "identity record longer than %zu bytes",
				      cap - 1);
			break;
		}
		if (len)
			buf[len++] = '\n';
		memcpy(buf + len, line, strlen(line));
		len += strlen(line);
	}
	return settle(s, rc);
}

/* The device's `error` line after a failed transfer says more than the
 * YMODEM failure alone (a full slot, an image too large); keep the code, add
 * the text. */
static void add_device_reason(struct tp_serial *s, struct stn_diag *d)
{
	char line[LINE_MAX_LEN];
	char text[sizeof(d->text)];
	char where[sizeof(d->where)];
	const char *why;

	if (!d || tp_serial_readline(s, line, sizeof(line), 2000, NULL) != 0)
		return;
	/* Protocol bytes of the aborted transfer may precede the line. */
	why = strstr(line, "error ");
	if (!why)
		return;
	/* Copies: stn_refail writes the very buffers it would read. */
	snprintf(text, sizeof(text), "%.290s (device says: %.200s)", d->text,
		 why + 6);
	snprintf(where, sizeof(where), "%s", d->where);
	stn_refail(d, d->code, where, "%s", text);
}

static int parse_verdict(struct tp_serial *s, const char *line,
			 char sha_hex[65], struct stn_diag *d)
{
	static const char prefix[] = "ok sha256=";
	const char *hex = line + sizeof(prefix) - 1;
	char out[65];

	if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
		return bad_answer(s, line, "receive", d);
	/* Spec digests are lowercase; a device printing uppercase still
	 * means the same bytes. */
	for (int i = 0; i < 64; i++) {
		char c = hex[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return stn_fail(d, STN_E_PROTOCOL, tp_serial_name(s),
					"device sent a malformed sha256: "
					"\"%.100s\"", hex);
		out[i] = c;
	}
	if (hex[64] != '\0')
		return stn_fail(d, STN_E_PROTOCOL, tp_serial_name(s),
				"device sent a malformed sha256: \"%.100s\"",
				hex);
	out[64] = '\0';
	memcpy(sha_hex, out, sizeof(out));
	return 0;
}

/* Whether a line after the transfer opens a receipt: its first key is
 * `format` (formats §1: whitespace around the key is ignored).  Anything
 * else before the verdict stays an unexpected answer, as it was before
 * devices signed receipts. */
static int opens_record(const char *line)
{
	while (*line == ' ' || *line == '\t')
		line++;
	return strncmp(line, "format", 6) == 0 &&
	       (line[6] == ' ' || line[6] == '\t' || line[6] == '=');
}

/* After the last block: the receipt lines a keyed device signs (formats
 * §9), then the verdict.  The first line may take VERDICT_MS (the device
 * writes flash and hashes), each further one LINE_MS. */
static int read_verdict(struct tp_serial *s, char sha_hex[65],
			struct tp_signed_msg *m, struct stn_diag *d)
{
	static const char prefix[] = "ok sha256=";
	char *line = malloc(MSG_LINE_CAP);
	struct answer a;
	int rc = 0;

	if (!line)
		return stn_fail(d, STN_E_NOMEM, tp_serial_name(s),
				"reading the answer to `receive`");
	answer_start(&a, "receive", VERDICT_MS,
		     VERDICT_MS + INFO_MS + tp_serial_line_ms(s, MSG_WIRE_MAX),
		     MSG_MAX_LINES);
	for (;;) {
		rc = read_answer(s, &a, line, MSG_LINE_CAP, d);
		if (rc)
			break;
		a.timeout_ms = LINE_MS;
		if (strncmp(line, prefix, sizeof(prefix) - 1) == 0 &&
		    m->nlines && !tp_msg_complete(m)) {
			rc = stn_fail(d, STN_E_PROTOCOL, tp_serial_name(s),
				      "the device's receipt ends without a "
				      "`sig` line");
			break;
		}
		if (strncmp(line, prefix, sizeof(prefix) - 1) == 0 ||
		    is_error(line) || (m->nlines == 0 && !opens_record(line))) {
			rc = parse_verdict(s, line, sha_hex, d);
			break;
		}
		if ((rc = take_line(s, m, line, "receive", d)))
			break;
	}
	free(line);
	return rc;
}

int tp_console_receive(struct tp_serial *s, unsigned slot, const char *name,
		       uint64_t size, const struct tp_source *src,
		       const struct tp_progress *prog, char sha_hex[65],
		       struct tp_signed_msg *receipt, int *has_receipt,
		       struct stn_diag *d)
{
	const struct tp_ymodem_opts opts = {.start_timeout_ms =
						    YMODEM_START_MS};
	struct tp_signed_msg *m = NULL;
	char cmd[64];
	char line[LINE_MAX_LEN];
	struct answer a;
	int rc;

	snprintf(cmd, sizeof(cmd), "receive %u %" PRIu64, slot, size);
	rc = send_command(s, cmd, d);
	answer_start(&a, cmd, LINE_MS, 0, 1);
	if (!rc)
		rc = read_answer(s, &a, line, sizeof(line), d);
	if (!rc && strcmp(line, "ready") != 0)
		rc = bad_answer(s, line, cmd, d);
	if (rc)
		goto out;
	rc = tp_ymodem_send(s, name, size, src, &opts, prog, d);
	if (rc == STN_E_USAGE) {
		/* Refused before a byte went out; the device sits in receive
		 * mode, and CANs (three for U-Boot's count) end that. */
		tp_serial_write(s, "\x18\x18\x18\x18\x18\x18\x18\x18", 8, 1000,
				NULL);
		add_device_reason(s, d);
		goto out;
	}
	if (rc) {
		if (rc == STN_E_CANCELLED || rc == STN_E_PROTOCOL ||
		    rc == STN_E_TIMEOUT)
			add_device_reason(s, d);
		goto out;
	}
	if (!(m = malloc(sizeof(*m)))) {
		rc = stn_fail(d, STN_E_NOMEM, tp_serial_name(s),
			      "reading the device's receipt");
		goto out;
	}
	tp_msg_init(m);
	rc = read_verdict(s, sha_hex, m, d);
	if (!rc && receipt) {
		if (m->nlines)
			memcpy(receipt, m, sizeof(*m));
		*has_receipt = m->nlines > 0;
	}
out:
	free(m);
	return settle(s, rc);
}

int tp_console_attest(struct tp_serial *s, const uint8_t nonce[32],
		      struct tp_signed_msg *out, struct stn_diag *d)
{
	char cmd[sizeof("attest ") + 64];
	char words[256];
	char *line = malloc(MSG_LINE_CAP);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct answer a;
	int rc;

	if (!line || !m) {
		rc = stn_fail(d, STN_E_NOMEM, tp_serial_name(s),
			      "reading the device's attestation");
		goto out;
	}
	tp_msg_init(m);
	memcpy(cmd, "attest ", 7);
	cu_hex(nonce, 32, cmd + 7);
	rc = send_command(s, cmd, d);
	answer_start(&a, "attest", LINE_MS,
		     INFO_MS + tp_serial_line_ms(s, MSG_WIRE_MAX),
		     MSG_MAX_LINES);
	for (int first = 1; !rc; first = 0) {
		rc = read_answer(s, &a, line, MSG_LINE_CAP, d);
		if (rc)
			break;
		if (is_error(line)) {
			device_words(line, words, sizeof(words));
			/* A device that tried and broke off is not one
			 * that never could (formats §9). */
			rc = first ? stn_fail(d, STN_E_NOATTEST,
					      tp_serial_name(s),
					      "the device cannot attest: it "
					      "answered `attest` with error "
					      "%s", words)
				   : stn_fail(d, STN_E_PROTOCOL,
					      tp_serial_name(s),
					      "the device broke off its "
					      "attestation: error %s", words);
			break;
		}
		if (strcmp(line, "ok") == 0) {
			if (!tp_msg_complete(m))
				rc = stn_fail(d, STN_E_PROTOCOL,
					      tp_serial_name(s),
					      "the device's attestation ends "
					      "without %s",
					      m->nlines ? "a `sig` line"
							: "a record");
			break;
		}
		rc = take_line(s, m, line, "attest", d);
	}
	if (!rc)
		memcpy(out, m, sizeof(*m));
out:
	free(line);
	free(m);
	return settle(s, rc);
}

/* A block the caller formatted: CR LF lines, none of them `end` (which
 * would end it early on the device's side), no NUL. */
static int check_block(struct tp_serial *s, const char *lines, size_t len,
		       struct stn_diag *d)
{
	if (len < 2 || lines[len - 2] != '\r' || lines[len - 1] != '\n' ||
	    memchr(lines, '\0', len))
		return stn_fail(d, STN_E_USAGE, tp_serial_name(s),
				"authorization block is not CR LF lines");
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(lines + i, '\n', len - i);
		size_t n = (size_t)(nl - (lines + i)) + 1;

		if (n < 2 || lines[i + n - 2] != '\r')
			return stn_fail(d, STN_E_USAGE, tp_serial_name(s),
					"authorization block is not CR LF "
					"lines");
		if (n == 5 && memcmp(lines + i, "end\r\n", 5) == 0)
			return stn_fail(d, STN_E_USAGE, tp_serial_name(s),
					"authorization block holds an `end` "
					"line");
		i += n;
	}
	return 0;
}

int tp_console_authorize(struct tp_serial *s, const char *lines, size_t len,
			 struct stn_diag *d)
{
	char line[LINE_MAX_LEN];
	char words[256];
	struct answer a;
	int rc = check_block(s, lines, len, d);

	if (rc)
		return rc;
	rc = send_command(s, "authorize", d);
	if (!rc)
		rc = tp_serial_write(s, lines, len,
				     LINE_MS + tp_serial_line_ms(s, len), d);
	if (!rc)
		rc = tp_serial_write(s, "end\r\n", 5, LINE_MS, d);
	/* The device checks a signature and a chain: quick. */
	answer_start(&a, "authorize", LINE_MS, 0, 1);
	if (!rc)
		rc = read_answer(s, &a, line, sizeof(line), d);
	if (!rc && is_error(line)) {
		device_words(line, words, sizeof(words));
		rc = stn_fail(d, STN_E_AUTHORIZATION, tp_serial_name(s),
			      "the device refused the install "
			      "authorization: %s", words);
	} else if (!rc && strcmp(line, "ok") != 0) {
		rc = bad_answer(s, line, "authorize", d);
	}
	return settle(s, rc);
}

int tp_console_boot(struct tp_serial *s, struct stn_diag *d)
{
	char line[LINE_MAX_LEN];
	struct answer a;
	int rc = send_command(s, "boot", d);

	answer_start(&a, "boot", LINE_MS, 0, 1);
	if (!rc)
		rc = read_answer(s, &a, line, sizeof(line), d);
	if (!rc && strcmp(line, "ok") != 0)
		rc = bad_answer(s, line, "boot", d);
	return settle(s, rc);
}
