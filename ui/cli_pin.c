/* ui/cli_pin.c: `station pin` (spec/cli.md): asks for a technician's PIN
 * twice and prints the `pin = ...` line for a [technician] section
 * (formats §8), so that nobody needs an openssl recipe to write one.
 * On a terminal it reads /dev/tty with echo off; otherwise (a script) two
 * lines from stdin (docs/decisions.md, "Technician PINs"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "custody/pin.h"
#include "station/base/error.h"
#include "ui/cli.h"

static const char pin_usage[] =
	"usage: station pin\n"
	"\n"
	"Asks for a technician's PIN twice without showing it and prints the\n"
	"line to put in that technician's [technician ID] section:\n"
	"  pin = pbkdf2-sha256$200000$SALTHEX$HASHHEX\n"
	"A PIN is 4 to 64 printable ASCII characters without spaces.  When\n"
	"standard input is not a terminal, the PIN and its repetition are the\n"
	"first two lines of standard input.\n";
const char *const ui_pin_usage = pin_usage;

/* Longer than any acceptable PIN, so that "too long" can be told. */
#define LINE_MAX_PIN (CU_PIN_MAX_LEN + 2)

enum read_end { READ_LINE, READ_EOF, READ_LONG, READ_ERROR };

/* One line from fd without its '\n' into buf (NUL-terminated).  A line
 * longer than the buffer is read to its end and reported READ_LONG. */
static enum read_end read_line(int fd, char buf[LINE_MAX_PIN + 1])
{
	size_t n = 0;
	int long_line = 0;
	char c;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR && !ui_caught_signal())
			continue;
		if (r < 0)
			return READ_ERROR;
		if (r == 0) {
			buf[n] = '\0';
			return n || long_line ? (long_line ? READ_LONG
							   : READ_LINE)
					      : READ_EOF;
		}
		if (c == '\n')
			break;
		if (n < LINE_MAX_PIN)
			buf[n++] = c;
		else
			long_line = 1;
	}
	buf[n] = '\0';
	return long_line ? READ_LONG : READ_LINE;
}

/* Where the PIN comes from: the terminal (echo off while it is typed) or
 * a script's stdin. */
struct pin_source {
	int fd;
	int tty;
	struct termios saved;
};

static int source_open(struct pin_source *s)
{
	s->tty = 0;
	s->fd = STDIN_FILENO;
	if (!isatty(STDIN_FILENO))
		return 0;
	s->fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s->fd < 0)
		return -1;
	if (tcgetattr(s->fd, &s->saved) != 0) {
		close(s->fd);
		return -1;
	}
	s->tty = 1;
	return 0;
}

static void source_close(struct pin_source *s)
{
	if (s->tty)
		close(s->fd);
}

/* Prompt on the terminal and read one line with echo off; the terminal is
 * restored before returning, whatever happened (a signal included). */
static enum read_end source_ask(struct pin_source *s, const char *prompt,
				char buf[LINE_MAX_PIN + 1])
{
	struct termios quiet;
	enum read_end end;

	if (!s->tty)
		return read_line(s->fd, buf);
	quiet = s->saved;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	/* Ctrl-Z would stop, and Ctrl-\ kill, the process with the echo
	 * still off: while the PIN is typed they are plain (refused)
	 * characters.  Ctrl-C still interrupts, and is caught. */
	quiet.c_cc[VSUSP] = _POSIX_VDISABLE;
	quiet.c_cc[VQUIT] = _POSIX_VDISABLE;
	if (write(s->fd, prompt, strlen(prompt)) < 0 ||
	    tcsetattr(s->fd, TCSAFLUSH, &quiet) != 0)
		return READ_ERROR;
	end = read_line(s->fd, buf);
	(void)tcsetattr(s->fd, TCSAFLUSH, &s->saved);
	if (end != READ_LINE && write(s->fd, "\n", 1) < 0)
		end = READ_ERROR;
	return end;
}

/* Explain a refused entry in words and return exit code 2. */
static int refuse(const char *text)
{
	fprintf(stderr, "station pin: %s\n", text);
	return STN_EXIT_USAGE;
}

static int ask(struct pin_source *s, const char *prompt, const char *what,
	       char buf[LINE_MAX_PIN + 1])
{
	char text[160];

	switch (source_ask(s, prompt, buf)) {
	case READ_LINE:
		return 0;
	case READ_LONG:
		snprintf(text, sizeof(text),
			 "the PIN is too long: at most %d characters",
			 CU_PIN_MAX_LEN);
		return refuse(text);
	case READ_EOF:
		snprintf(text, sizeof(text),
			 "the input ended before %s (a script gives two lines)",
			 what);
		return refuse(text);
	case READ_ERROR:
		break;
	}
	if (ui_caught_signal())
		return STN_EXIT_IO; /* main ends the process by the signal */
	fprintf(stderr, "station pin: error: cannot read the PIN from %s: %s\n",
		s->tty ? "/dev/tty" : "standard input", strerror(errno));
	return STN_EXIT_IO;
}

int ui_cmd_pin(int argc, char **argv)
{
	char first[LINE_MAX_PIN + 1] = "", again[LINE_MAX_PIN + 1] = "";
	char spec[CU_PIN_SPEC_MAX];
	struct pin_source src;
	struct stn_diag d;
	int rc;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 ||
			  strcmp(argv[1], "--help") == 0)) {
		fputs(pin_usage, stdout);
		return 0;
	}
	if (argc > 1)
		return ui_usage_error(pin_usage, "pin: unexpected argument '%s'",
				      argv[1]);
	if (source_open(&src) != 0) {
		fprintf(stderr, "station pin: error: cannot open /dev/tty: %s\n",
			strerror(errno));
		return STN_EXIT_IO;
	}
	/* A Ctrl-C at the prompt interrupts the read, the terminal gets its
	 * echo back, and main ends the process by the signal. */
	ui_catch_signals();
	stn_diag_init(&d);
	rc = ask(&src, "PIN: ", "the PIN", first);
	if (rc == 0 && cu_pin_acceptable(first, &d) != 0)
		rc = refuse(d.text);
	if (rc == 0)
		rc = ask(&src, "PIN again: ", "the PIN's repetition", again);
	if (rc == 0 && strcmp(first, again) != 0)
		rc = refuse("the two entries differ: type the same PIN twice");
	explicit_bzero(again, sizeof(again));
	source_close(&src);
	if (rc == 0 && cu_pin_make(first, CU_PIN_ITERATIONS, spec, &d) != 0)
		rc = d.code == STN_E_USAGE ? refuse(d.text)
					   : ui_report("pin", &d);
	explicit_bzero(first, sizeof(first));
	if (rc == 0)
		printf("pin = %s\n", spec);
	explicit_bzero(spec, sizeof(spec));
	if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
		fprintf(stderr, "station pin: error: cannot write the line: %s\n",
			strerror(errno));
		rc = STN_EXIT_IO;
	}
	return rc;
}
