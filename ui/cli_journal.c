/* ui/cli_journal.c: `station journal`: print events, selected by time,
 * device serial, bundle, technician, session or type, or recompute the hash
 * chain with --verify (the auditor's and the tests' check). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "station/clock.h"
#include "station/base/error.h"
#include "station/events.h"
#include "station/journal.h"
#include "station/session.h"
#include "ui/cli.h"

static const char journal_usage[] =
	"usage: station journal [--config FILE] [--since T] [--until T]\n"
	"                       [--serial SN] [--bundle ID|NAME] "
	"[--technician ID]\n"
	"                       [--session ID] [--type TYPE] [--json] "
	"[--verify]\n"
	"  T: an RFC 3339 UTC time (2026-11-20T10:00:00Z), a date (2026-11-20:"
	"\n"
	"  its first second for --since, its last for --until) or a duration "
	"back\n"
	"  from now (30m, 24h, 7d); bounds are inclusive.\n"
	"  --serial and --bundle select events with that field; --technician "
	"selects\n"
	"  every event of the sessions that technician signed in to.  Filters "
	"combine.\n";
const char *const ui_journal_usage = journal_usage;

static int print_text(void *ctx, const struct stn_event *e)
{
	char line[8192];

	(void)ctx;
	stn_journal_format(e, line, sizeof(line));
	puts(line);
	return 0;
}

static int print_json(void *ctx, const struct stn_event *e)
{
	int *first = ctx;

	/* The body is canonical JSON already; carry it with its links so
	 * the output can be checked without the database. */
	printf("%s{\"seq\":%llu,\"prev\":\"%s\",\"hash\":\"%s\",\"body\":%s}",
	       *first ? "" : ",\n", (unsigned long long)e->seq, e->prev,
	       e->hash, e->body);
	*first = 0;
	return 0;
}

int ui_cmd_journal(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'u'},
		{"serial", required_argument, NULL, 'n'},
		{"bundle", required_argument, NULL, 'b'},
		{"technician", required_argument, NULL, 't'},
		{"session", required_argument, NULL, 'e'},
		{"type", required_argument, NULL, 'y'},
		{"json", no_argument, NULL, 'j'},
		{"verify", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct stn_ev_filter f = {0};
	const char *config = NULL;
	int json = 0, verify = 0, filtered = 0, c, rc, first = 1;
	struct stn_session *s = NULL;
	struct stn_diag d;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 's':
		case 'u':
			/* A date given to --until is its last second, so
			 * "--since D --until D" is the whole day D. */
			if (stn_time_arg_parse(optarg, (int64_t)time(NULL),
					       c == 'u',
					       c == 's' ? &f.since : &f.until))
				return ui_usage_error(journal_usage,
						      "bad --%s time '%s'",
						      c == 's' ? "since"
							       : "until",
						      optarg);
			filtered = 1;
			break;
		case 'n': f.serial = optarg; filtered = 1; break;
		case 'b': f.bundle = optarg; filtered = 1; break;
		case 't': f.technician = optarg; filtered = 1; break;
		case 'e': f.session = optarg; filtered = 1; break;
		case 'y': f.type = optarg; filtered = 1; break;
		case 'j': json = 1; break;
		case 'v': verify = 1; break;
		case 'h': fputs(journal_usage, stdout); return 0;
		default: return ui_usage_error(journal_usage, "bad option");
		}
	}
	if (optind != argc)
		return ui_usage_error(journal_usage, "unexpected argument");
	if (verify && (filtered || json))
		return ui_usage_error(journal_usage,
				      "--verify checks the whole chain; it "
				      "takes no filter");
	if (f.since && f.until && f.since > f.until)
		return ui_usage_error(journal_usage,
				      "--since is after --until");
	stn_diag_init(&d);
	rc = stn_session_open(ui_config_path(config), NULL, "journal",
			      STN_SESSION_QUIET, &s, &d);
	if (rc)
		return ui_report("journal", &d);
	if (verify) {
		uint64_t count = 0;
		char last[65];
		rc = stn_journal_verify(stn_session_journal(s), &count, last,
					&d);
		if (rc == 0)
			printf("journal chain verifies: %llu events, last "
			       "hash %s\n", (unsigned long long)count, last);
	} else {
		if (json)
			fputs("[", stdout);
		rc = stn_ev_query(stn_session_journal(s), &f,
				  json ? print_json : print_text, &first, &d);
		if (json)
			fputs("]\n", stdout);
	}
	stn_session_close(s, rc);
	return rc ? ui_report("journal", &d) : 0;
}
