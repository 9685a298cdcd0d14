/* ui/main.c: the `station` program: subcommands in the style of git
 * (spec/cli.md).  Everything below main returns codes; only here and in
 * ui/ is anything printed or the process exited.  One table names every
 * command: help, `CMD -h` and "did you mean" all read it, so a new
 * command is one row. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/error.h"
#include "ui/cli.h"
#include "ui/common.h"
#include "ui/tui.h"

#ifndef STATION_VERSION
#define STATION_VERSION "unknown" /* the Makefile passes VERSION */
#endif

/* A command; a command with subcommands has one row per subcommand, all
 * with the same fn (which reads the subcommand itself). */
struct command {
	const char *name;
	const char *sub; /* NULL: no subcommand */
	int (*fn)(int argc, char **argv);
	const char *const *usage;
	const char *what; /* one line for the overview */
};

static const struct command commands[] = {
	{"verify", NULL, ui_cmd_verify, &ui_verify_usage,
	 "check a bundle (and with --device, its binding and tokens)"},
	{"devices", NULL, ui_cmd_devices, &ui_devices_usage,
	 "list USB and serial devices with their identity"},
	{"push", NULL, ui_cmd_push, &ui_push_usage,
	 "verify, stage, install and read back on one or more devices"},
	{"media", NULL, ui_cmd_media, &ui_media_usage,
	 "list media and the bundles found on them"},
	{"journal", NULL, ui_cmd_journal, &ui_journal_usage,
	 "print journal events, or check the hash chain"},
	{"report", "export", ui_cmd_report, &ui_report_export_usage,
	 "write a signed report of the journal"},
	{"report", "verify", ui_cmd_report, &ui_report_verify_usage,
	 "the auditor's check of a report"},
	{"bundle", "create", ui_cmd_bundle, &ui_bundle_usage,
	 "write a manifest and copy images (release engineering)"},
	{"sign", NULL, ui_cmd_sign, &ui_sign_usage,
	 "sign a file (FILE.sig and FILE.pem)"},
	{"custody", "add", ui_cmd_custody, &ui_custody_usage,
	 "append the next signed custody record to a bundle"},
	{"token", "issue", ui_cmd_token, &ui_token_usage,
	 "write a signed exception token"},
	{"demo", NULL, ui_cmd_demo, &ui_demo_usage,
	 "a self-contained demo in the text UI"},
	{"pin", NULL, ui_cmd_pin, &ui_pin_usage,
	 "a technician's PIN line for station.conf"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char overview_head[] =
	"usage: station [--config FILE] [COMMAND [ARGS]]\n"
	"       station help [COMMAND [SUBCOMMAND]] | --help | --version\n"
	"\n"
	"With no command: the text UI for the technician.\n"
	"\n"
	"commands:\n";
static const char overview_tail[] =
	"\n"
	"`station help COMMAND` or `station COMMAND -h` prints a command's "
	"usage.\n"
	"Every command takes --config FILE (default $STATION_CONFIG, else\n"
	"/etc/station/station.conf).  Exit codes: 0 done or accepted, 1 "
	"refused,\n"
	"2 usage or configuration error, 3 I/O or device error (retry may "
	"cure).\n";

static void print_overview(FILE *f)
{
	fputs(overview_head, f);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char name[40];

		snprintf(name, sizeof(name), "%s%s%s", commands[i].name,
			 commands[i].sub ? " " : "",
			 commands[i].sub ? commands[i].sub : "");
		fprintf(f, "  %-16s %s\n", name, commands[i].what);
	}
	fputs(overview_tail, f);
}

/* Optimal string alignment distance (Levenshtein with adjacent
 * transpositions, which is how commands get mistyped: "verfiy"). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[33][33];

	if (la > 32 || lb > 32)
		return (size_t)-1;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1], v;

			v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

/* The closest command name (or, with name set, subcommand of name) to
 * word, when close enough to be a typo: at most 2 edits and fewer than
 * the word's length.  NULL when none is. */
static const char *nearest(const char *name, const char *word)
{
	const char *best = NULL;
	size_t best_d = 3, len = strlen(word);

	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *cand = name ? commands[i].sub : commands[i].name;
		size_t dist;

		if (!cand || (name && strcmp(commands[i].name, name) != 0))
			continue;
		dist = edit_distance(word, cand);
		if (dist < best_d && dist < len) {
			best = cand;
			best_d = dist;
		}
	}
	return best;
}

static const struct command *find(const char *name, const char *sub)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0 &&
		    (!sub || (commands[i].sub &&
			      strcmp(commands[i].sub, sub) == 0)))
			return &commands[i];
	return NULL;
}

static int unknown(const char *name, const char *word)
{
	const char *near = nearest(name, word);
	char what[80];

	snprintf(what, sizeof(what), "%s%scommand", name ? name : "",
		 name ? " " : "");
	if (near)
		return ui_usage_error(NULL, "unknown %s '%s'; did you mean "
					    "'%s'?", what, word, near);
	return ui_usage_error(NULL, "unknown %s '%s' (station help lists "
				    "them)", what, word);
}

/* The usage of c (one subcommand), or of every subcommand of c's name
 * when whole is set. */
static void print_usage(const struct command *c, int whole)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (&commands[i] == c ||
		    (whole && strcmp(commands[i].name, c->name) == 0))
			fputs(*commands[i].usage, stdout);
}

/* `station help [CMD [SUB]]` and `station help --list` (every command
 * line, one a line: for the tests and for bash completion). */
static int help(int argc, char **argv)
{
	const struct command *c;

	if (argc == 0) {
		print_overview(stdout);
		return 0;
	}
	if (argc == 1 && strcmp(argv[0], "--list") == 0) {
		for (size_t i = 0; i < NCOMMANDS; i++)
			printf("%s%s%s\n", commands[i].name,
			       commands[i].sub ? " " : "",
			       commands[i].sub ? commands[i].sub : "");
		return 0;
	}
	if (argc > 2)
		return ui_usage_error(NULL, "help takes a command and at most "
					    "one subcommand");
	c = find(argv[0], NULL);
	if (!c)
		return unknown(NULL, argv[0]);
	if (argc == 2) {
		if (!c->sub)
			return ui_usage_error(NULL, "'%s' has no subcommand "
						    "'%s'", argv[0], argv[1]);
		c = find(argv[0], argv[1]);
		if (!c)
			return unknown(argv[0], argv[1]);
	}
	print_usage(c, argc == 1);
	return 0;
}

/* Whether the command line asks for help: -h or --help before a "--",
 * where it cannot be an option's value.  After an option written without
 * "=" (`--reason -h`) it may be that option's value, which the command's
 * own parser takes as such (or refuses as a usage error): help there
 * would exit 0 without doing what the script asked (docs/decisions.md).
 * `words` is how many leading arguments name the command. */
static int asks_help(int argc, char **argv, int words)
{
	for (int i = words; i < argc; i++) {
		const char *prev = argv[i - 1];

		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "-h") != 0 && strcmp(argv[i], "--help") != 0)
			continue;
		if (i == words || prev[0] != '-' || strchr(prev, '='))
			return 1;
	}
	return 0;
}

/* A command that stopped for SIGINT, SIGTERM or SIGHUP has journaled and
 * cleaned up; the process then ends by that signal, so a shell or a
 * supervisor sees 128+N and stops its script too (docs/decisions.md). */
static int end_by_signal(int rc)
{
	int sig = ui_caught_signal();
	sigset_t set;

	if (!sig)
		return rc;
	fflush(NULL);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	raise(sig);
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL); /* blocked by the UI */
	return 128 + sig; /* not reached */
}

int main(int argc, char **argv)
{
	const struct command *c;
	int first = 1;

	/* A leading --config applies to the subcommand; pass it along. */
	if (argc > 2 && strcmp(argv[1], "--config") == 0) {
		if (setenv("STATION_CONFIG", argv[2], 1) != 0)
			return ui_usage_error(NULL, "cannot set config path");
		first = 3;
	}
	if (argc <= first)
		return end_by_signal(ui_tui_run(ui_config_path(NULL)));
	if (strcmp(argv[first], "--version") == 0) {
		printf("station %s\n", STATION_VERSION);
		return 0;
	}
	if (strcmp(argv[first], "--help") == 0 ||
	    strcmp(argv[first], "-h") == 0) {
		print_overview(stdout);
		return 0;
	}
	if (strcmp(argv[first], "help") == 0)
		return help(argc - first - 1, argv + first + 1);
	c = find(argv[first], NULL);
	if (!c)
		return unknown(NULL, argv[first]);
	/* Help is answered here, before the command runs, so that no
	 * command can forget it: `report export -h` is export's usage,
	 * `report -h` every subcommand's. */
	const struct command *s = c->sub && argc > first + 1
					  ? find(argv[first], argv[first + 1])
					  : NULL;
	if (asks_help(argc - first, argv + first, s ? 2 : 1)) {
		print_usage(s ? s : c, s == NULL);
		return 0;
	}
	if (c->sub && argc > first + 1 && argv[first + 1][0] != '-' &&
	    !find(argv[first], argv[first + 1]))
		return unknown(argv[first], argv[first + 1]);
	return end_by_signal(c->fn(argc - first, argv + first));
}
