/* ui/common.c: the one sanitiser for untrusted text and the printing that
 * every front end shares (refusals, usage errors, JSON strings). */
#include "ui/common.h"

#include <signal.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "station/base/monotime.h"
#include "station/config.h"
#include "station/base/error.h"
#include "station/install.h"
#include "station/session.h"

/* Length of the strict UTF-8 sequence at p (no overlongs, surrogates or
 * code points past U+10FFFF; RFC 3629 section 4), with its code point;
 * 0 when p does not start one. */
static size_t utf8_seq(const unsigned char *p, uint32_t *cp)
{
	size_t n;
	uint32_t c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return n;
}

/* Code points a terminal acts on or that change how a line reads: C1
 * controls (0x9b is a CSI on some terminals), line and paragraph
 * separators, and bidirectional embeddings, overrides and isolates. */
static int cp_unsafe(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029 ||
	       (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
	       c == 0x200e || c == 0x200f || c == 0x061c;
}

/* The escaped form of one sequence into esc (at least 12 bytes); returns
 * its length, or 0 when the sequence passes unchanged. */
static size_t escape_one(const unsigned char *p, size_t n, uint32_t cp,
			 char *esc)
{
	if (n == 0)
		return (size_t)snprintf(esc, 12, "\\x%02x", p[0]);
	if (n == 1) {
		switch (cp) {
		case '\n': return (size_t)snprintf(esc, 12, "\\n");
		case '\r': return (size_t)snprintf(esc, 12, "\\r");
		case '\t': return (size_t)snprintf(esc, 12, "\\t");
		case '\\': return (size_t)snprintf(esc, 12, "\\\\");
		default:
			if (cp < 0x20 || cp == 0x7f)
				return (size_t)snprintf(esc, 12, "\\x%02x",
							(unsigned)cp);
			return 0;
		}
	}
	if (cp_unsafe(cp))
		return (size_t)snprintf(esc, 12, "\\u{%04x}", (unsigned)cp);
	return 0;
}

char *ui_sanitize(const char *s, char *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t used = 0;

	if (cap == 0)
		return out;
	while (*p) {
		char esc[12];
		uint32_t cp = 0;
		size_t n = utf8_seq(p, &cp), k = escape_one(p, n, cp, esc);
		const char *piece = k ? esc : (const char *)p;
		size_t len = k ? k : n;

		/* Room is kept for "..." and the NUL at every step. */
		if (used + len + 4 > cap) {
			if (used + 4 <= cap) {
				memcpy(out + used, "...", 3);
				used += 3;
			}
			break;
		}
		memcpy(out + used, piece, len);
		used += len;
		p += n ? n : 1;
	}
	out[used] = '\0';
	return out;
}

void ui_put_untrusted(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	while (*p) {
		char esc[12];
		uint32_t cp = 0;
		size_t n = utf8_seq(p, &cp), k = escape_one(p, n, cp, esc);

		if (k)
			fwrite(esc, 1, k, f);
		else
			fwrite(p, 1, n, f);
		p += n ? n : 1;
	}
}

int ui_report(const char *cmd, const struct stn_diag *d)
{
	char line[1200];
	int code = stn_err_exit(d->code);

	stn_diag_format(d, line, sizeof(line));
	fprintf(stderr, "station %s: %s: ", cmd,
		code == STN_EXIT_REFUSED ? "refused" : "error");
	ui_put_untrusted(stderr, line);
	fputc('\n', stderr);
	return code;
}

int ui_usage_error(const char *use, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fputs("station: ", stderr);
	ui_put_untrusted(stderr, msg);
	fputs("\n", stderr);
	if (use)
		fputs(use, stderr);
	return STN_EXIT_USAGE;
}

void ui_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	if (caught) {
		/* Asked twice: stop now, as the technician wants. */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	caught = sig;
	stn_install_interrupt(sig);
}

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

void ui_catch_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a wait on a device returns EINTR and the transfer
	 * looks at the stop flag sooner. */
	stop_signals(&set);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&set, sig) == 1)
			(void)sigaction(sig, &sa, NULL);
}

void ui_block_signals(void)
{
	sigset_t set;

	stop_signals(&set);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int ui_poll_signal(void)
{
	const struct timespec now = {0, 0};
	sigset_t set;
	int sig;

	stop_signals(&set);
	sig = sigtimedwait(&set, NULL, &now);
	if (sig <= 0)
		return 0;
	if (!caught)
		caught = sig;
	stn_install_interrupt(sig);
	return sig;
}

int ui_caught_signal(void)
{
	return caught;
}

void ui_warn_session(const char *cmd, const struct stn_session *s)
{
	const char *text;
	unsigned n = stn_session_abandoned(s, &text);

	if (stn_session_notice(s))
		fprintf(stderr, "station %s: warning: %s\n", cmd,
			stn_session_notice(s));
	if (!n)
		return;
	fprintf(stderr, "station %s: warning: %u install(s) were cut off "
			"without an outcome (the station was\nstopped); check "
			"these devices and install again: ", cmd, n);
	ui_put_untrusted(stderr, text);
	fputc('\n', stderr);
}

const char *ui_config_path(const char *given)
{
	return given ? given : stn_config_default_path();
}

void ui_human_bytes(double n, char *buf, size_t cap)
{
	if (n >= 1 << 20)
		snprintf(buf, cap, "%.1f MiB", n / (1 << 20));
	else if (n >= 1 << 10)
		snprintf(buf, cap, "%.1f KiB", n / (1 << 10));
	else
		snprintf(buf, cap, "%.0f B", n);
}

void ui_progress_text(char *buf, size_t cap, uint64_t done, uint64_t total,
		      int64_t elapsed_ms)
{
	char a[32], b[32], r[32], left[32] = "";
	int pct = total ? (int)(done * 100 / total) : 100;
	double rate = elapsed_ms > 0 ? (double)done * 1000.0 / elapsed_ms : 0;

	ui_human_bytes((double)done, a, sizeof(a));
	ui_human_bytes((double)total, b, sizeof(b));
	if (rate > 0)
		ui_human_bytes(rate, r, sizeof(r));
	else
		snprintf(r, sizeof(r), "-");
	if (rate > 0 && done < total) {
		long long s = (long long)((double)(total - done) / rate + 0.5);
		if (s >= 60)
			snprintf(left, sizeof(left), "  %lldm%02llds left",
				 s / 60, s % 60);
		else
			snprintf(left, sizeof(left), "  %llds left", s);
	}
	snprintf(buf, cap, "%3d%%  %s of %s  %s/s%s", pct, a, b, r, left);
}

void ui_progress_begin(struct ui_progress *p, int tty)
{
	p->tty = tty;
	p->start_ms = p->last_ms = stn_mono_ms();
	p->last_pct = -1;
}

void ui_progress_update(struct ui_progress *p, uint64_t done, uint64_t total)
{
	int64_t now = stn_mono_ms();
	int pct = total ? (int)(done * 100 / total) : 100;
	char line[160];

	if (now - p->start_ms < p->quiet_ms)
		return;
	if (p->tty) {
		if (pct == p->last_pct && now - p->last_ms < 250)
			return;
	} else if (pct == p->last_pct ||
		   (p->last_pct >= 0 && pct / 10 == p->last_pct / 10 &&
		    now - p->last_ms < 5000)) {
		return;
	}
	p->last_pct = pct;
	p->last_ms = now;
	ui_progress_text(line, sizeof(line), done, total, now - p->start_ms);
	if (p->tty)
		fprintf(stderr, "\r           %-66s", line);
	else
		fprintf(stderr, "           %s\n", line);
	fflush(stderr);
}

void ui_progress_end(struct ui_progress *p)
{
	if (p->tty && p->last_pct >= 0)
		fputc('\n', stderr);
	p->last_pct = -1;
}
