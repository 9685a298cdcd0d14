/* ui/common.h: what every front end prints through.  Text that comes from
 * outside the station (bundle and file names on media, a device's lines,
 * reasons that quote them, journal values) goes through one sanitiser, so
 * that no byte a medium or a device chose can move the cursor, clear the
 * screen, retitle the terminal or fake a line of output. */
#ifndef UI_COMMON_H
#define UI_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct stn_diag;
struct stn_session;

/*
 * Copy s into out (cap > 0 bytes, always NUL-terminated) with every byte a
 * terminal could act on made visible: C0 controls, ESC and DEL as \xNN
 * (\n, \r and \t as such), C1 controls and the Unicode line separators and
 * bidirectional overrides as \u{XXXX}, bytes that are not valid UTF-8 as
 * \xNN, and the backslash itself as \\, so an escape is never ambiguous.
 * Printable UTF-8 passes unchanged.  Output that does not fit is cut at a
 * character boundary and ends in "...".  Returns out.  s may be NULL ("").
 */
char *ui_sanitize(const char *s, char *out, size_t cap);

#define UI_SAFE_MAX 8192
/* ui_sanitize into a buffer that lives until the end of the enclosing
 * block: printf("%s\n", UI_SAFE(name)). */
#define UI_SAFE(s) ui_sanitize((s), (char[UI_SAFE_MAX]){0}, UI_SAFE_MAX)

/* fputs(ui_sanitize(s)) without a length limit. */
void ui_put_untrusted(FILE *f, const char *s);

/* Print "station CMD: refused: rule R: WHERE: TEXT" (or "error:" for
 * usage, configuration and I/O classes) to stderr, sanitised, and return
 * the exit code. */
int ui_report(const char *cmd, const struct stn_diag *d);
/* A usage error: "station: MESSAGE" (sanitised: it may quote argv), then
 * the command's usage; returns 2. */
int ui_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Write s as a JSON string (with quotes) to f; controls as \u00XX. */
void ui_json_string(FILE *f, const char *s);

/*
 * Command-line progress of a transfer on stderr, like the text UI's: bytes,
 * rate and time left ("  42%  1.2 MiB of 3.0 MiB  850.0 KiB/s  3s left").
 * On a terminal one line is redrawn in place (at most 4 times a second);
 * otherwise (a log, a pipe) a plain line is printed at every 10% step or
 * after 5 seconds, and at 100%, so logs stay readable.
 * ui_progress_begin at each phase start; ui_progress_update from the
 * progress callback; ui_progress_end before other output (ends a line
 * drawn in place).
 */
struct ui_progress {
	int tty;
	int64_t start_ms, last_ms;
	int last_pct; /* -1: nothing printed in this phase */
	int64_t quiet_ms; /* print nothing for a phase shorter than this */
};
void ui_progress_begin(struct ui_progress *p, int tty);
void ui_progress_update(struct ui_progress *p, uint64_t done, uint64_t total);
void ui_progress_end(struct ui_progress *p);
/* The line itself, after elapsed_ms of the phase (pure, for the above). */
/* n bytes as "12 B", "3.4 KiB" or "5.6 MiB" (the text UI and the command
 * line say sizes and rates alike). */
void ui_human_bytes(double n, char *buf, size_t cap);

void ui_progress_text(char *buf, size_t cap, uint64_t done, uint64_t total,
		      int64_t elapsed_ms);

/* The configuration file: --config's value when given, else
 * $STATION_CONFIG, else the default (station/config.h). */
const char *ui_config_path(const char *given);

/* Tell the technician on stderr what opening s found: what the start
 * recovered from (a damaged time floor) and installs earlier sessions left
 * without an outcome (journaled as install-abandoned as s opened). */
void ui_warn_session(const char *cmd, const struct stn_session *s);

/*
 * SIGINT, SIGTERM and SIGHUP (Ctrl-C, a shutdown, a lost terminal) while
 * the station works.  ui_catch_signals: the first one asks every install
 * to stop (stn_install_interrupt) so each is journaled and the session
 * ended; a second one of them ends the process at once (the next session
 * reports what it left as install-abandoned).  ui_block_signals: the same
 * signals are blocked in this thread and every thread it starts, and
 * ui_poll_signal (from the thread that blocked them, e.g. the text UI's
 * loop) takes one that is pending, records it and returns it (0: none).
 * ui_caught_signal: the first signal seen, 0 when none; main ends the
 * process by it once the command has cleaned up (docs/decisions.md).
 */
void ui_catch_signals(void);
void ui_block_signals(void);
int ui_poll_signal(void);
int ui_caught_signal(void);

#endif
