/* transport/console.c: the station side of the device console: commands out
 * as CR LF lines, answers in as lines, the image in between over YMODEM. */
#include "transport/console.h"
#include "station/base/monotime.h"

#include <inttypes.h>
#include <stdio.h>
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

int tp_console_receive(struct tp_serial *s, unsigned slot, const char *name,
		       uint64_t size, const struct tp_source *src,
		       const struct tp_progress *prog, char sha_hex[65],
		       struct stn_diag *d)
{
	const struct tp_ymodem_opts opts = {.start_timeout_ms =
						    YMODEM_START_MS};
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
	answer_start(&a, "receive", VERDICT_MS, 0, 1);
	rc = read_answer(s, &a, line, sizeof(line), d);
	if (!rc)
		rc = parse_verdict(s, line, sha_hex, d);
out:
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
