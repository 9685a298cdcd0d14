/* ui/cli_report.c: `station report export` (the station signs a period of
 * its journal) and `station report verify` (the auditor's check, which needs
 * no station configuration: only the trust anchors). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "station/base/rfc3339.h"
#include "station/clock.h"
#include "custody/trust.h"
#include "station/config.h"
#include "station/base/error.h"
#include "station/report.h"
#include "station/session.h"
#include "ui/cli.h"

static const char export_usage[] =
	"usage: station report export [--config FILE] [--technician ID] "
	"--out DIR\n"
	"                             [--since T] [--until T] [--json]\n"
	"  T: an RFC 3339 UTC time (2026-11-20T10:00:00Z), a date (2026-11-20:"
	"\n"
	"  its first second for --since, its last for --until) or a duration "
	"back\n"
	"  from now (30m, 24h, 7d).  Without --since, an export starts after "
	"the\n"
	"  previous export; without --until it ends now.\n";
static const char verify_usage[] =
	"usage: station report verify [--trust ROOTS.pem [--crl DIR]]\n"
	"                             [--previous EARLIER.json] [--json] "
	"REPORT.json\n"
	"  without --trust, uses the anchors of the configuration, if one is "
	"readable.\n";
const char *const ui_report_export_usage = export_usage;
const char *const ui_report_verify_usage = verify_usage;

static void print_time(FILE *f, int64_t t)
{
	char ts[CU_TIME_LEN + 1];

	cu_time_format(t, ts);
	fputs(ts, f);
}

static void json_time(FILE *f, int64_t t)
{
	char ts[CU_TIME_LEN + 1];

	cu_time_format(t, ts);
	ui_json_string(f, ts);
}

static int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"technician", required_argument, NULL, 't'},
		{"out", required_argument, NULL, 'o'},
		{"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'u'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *config = NULL, *tech = NULL, *dir = NULL;
	struct stn_report_exported x;
	struct stn_session *s = NULL;
	struct stn_diag d;
	int64_t since = 0, until = 0;
	int json = 0, c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 't': tech = optarg; break;
		case 'o': dir = optarg; break;
		case 's':
		case 'u':
			/* A date given to --until is its last second. */
			if (stn_time_arg_parse(optarg, (int64_t)time(NULL),
					       c == 'u',
					       c == 's' ? &since : &until))
				return ui_usage_error(export_usage,
						      "bad --%s time '%s'",
						      c == 's' ? "since"
							       : "until",
						      optarg);
			break;
		case 'j': json = 1; break;
		case 'h': fputs(export_usage, stdout); return 0;
		default: return ui_usage_error(export_usage, "bad option");
		}
	}
	if (!dir)
		return ui_usage_error(export_usage, "--out DIR is required");
	if (optind != argc)
		return ui_usage_error(export_usage, "unexpected argument '%s'",
				      argv[optind]);
	stn_diag_init(&d);
	rc = stn_session_open(ui_config_path(config), tech, "report export", 0,
			      &s, &d);
	if (rc)
		return ui_report("report export", &d);
	ui_warn_session("report export", s);
	rc = stn_report_export(s, dir, since, until, &x, &d);
	stn_session_close(s, rc);
	if (rc)
		return ui_report("report export", &d);
	if (json) {
		printf("{\"report\":");
		ui_json_string(stdout, x.json);
		printf(",\"summary\":");
		ui_json_string(stdout, x.summary);
		printf(",\"sha256\":\"%s\",\"first\":%" PRIu64
		       ",\"last\":%" PRIu64 ",\"count\":%" PRIu64
		       ",\"last-hash\":\"%s\",\"sessions\":%" PRIu64,
		       x.sha256, x.first, x.last, x.count, x.last_hash,
		       x.sessions);
		if (x.gap_first)
			printf(",\"gap\":{\"first\":%" PRIu64 ",\"last\":%" PRIu64
			       "}", x.gap_first, x.gap_last);
		printf("}\n");
	} else {
		printf("report    %s (+ .sig, .pem)\n", x.json);
		printf("summary   %s\n", x.summary);
		printf("events    %" PRIu64 "..%" PRIu64 " (%" PRIu64
		       " events, %" PRIu64 " sessions)\n",
		       x.first, x.last, x.count, x.sessions);
		printf("last hash %s\n", x.last_hash);
		printf("sha256    %s\n", x.sha256);
	}
	if (x.gap_first)
		fprintf(stderr, "station report export: warning: events "
			"%" PRIu64 "..%" PRIu64 " after the previous export "
			"are in no report\n", x.gap_first, x.gap_last);
	return 0;
}

static void print_session(const struct stn_report_session *p)
{
	printf("  session %s  ", UI_SAFE(p->id));
	print_time(stdout, p->start);
	fputs(" .. ", stdout);
	print_time(stdout, p->end);
	printf("  events %" PRIu64 "..%" PRIu64 "\n", p->first, p->last);
	printf("    who        %s%s%s\n",
	       UI_SAFE(p->technician[0] ? p->technician : "no technician"),
	       p->command[0] ? ", " : "", UI_SAFE(p->command));
	if (p->what[0])
		printf("    what       %s\n", UI_SAFE(p->what));
	if (p->device[0])
		printf("    device     %s\n", UI_SAFE(p->device));
	if (p->authority[0])
		printf("    authority  %s\n", UI_SAFE(p->authority));
	if (p->identity[0])
		printf("    identity   %s\n", UI_SAFE(p->identity));
	printf("    result     %s%s\n",
	       UI_SAFE(p->result[0] ? p->result : "-"),
	       p->ended ? "" : " (its session-end is not in this report)");
}

static void print_info_text(const struct stn_report_info *i,
			    const char *earlier)
{
	printf("report    %s\n", i->path);
	printf("sha256    %s\n", i->sha256);
	printf("signed by %s (station role), chain checked at the export "
	       "time\n", UI_SAFE(i->signer));
	printf("station   %s at site %s\n", UI_SAFE(i->station),
	       UI_SAFE(i->site));
	printf("exported  ");
	print_time(stdout, i->exported);
	printf(" (session %s)\n", UI_SAFE(i->session));
	printf("period    ");
	print_time(stdout, i->since);
	fputs(" .. ", stdout);
	print_time(stdout, i->until);
	printf("\nevents    %" PRIu64 "..%" PRIu64 " (%" PRIu64 "), chain "
	       "recomputed\n", i->first, i->last, i->count);
	printf("prev      %s%s\n", i->first_prev,
	       i->first == 1 ? " (the chain start)"
			     : " (the hash of the event before)");
	printf("last hash %s\n", i->last_hash);
	if (i->has_previous)
		printf("previous  %s, ended at event %" PRIu64 "\n",
		       UI_SAFE(i->prev_report), i->prev_last);
	else
		printf("previous  none%s\n",
		       i->first == 1 ? " (starts at the first event)" : "");
	if (i->gap_first)
		printf("GAP       events %" PRIu64 "..%" PRIu64 " after the "
		       "previous export are in no report\n",
		       i->gap_first, i->gap_last);
	if (i->earlier_checked) {
		printf("continues %s", earlier);
		if (i->overlap)
			printf(" (overlapping %" PRIu64 " events, which agree)",
			       i->overlap);
		printf("\n");
	}
	printf("sessions  %zu\n", i->nsessions);
	for (size_t k = 0; k < i->nsessions; k++)
		print_session(&i->sessions[k]);
	if (i->unlisted)
		printf("note      %" PRIu64 " events of sessions past the first "
		       "%d are verified but not listed\n", i->unlisted,
		       STN_REPORT_SESSIONS_MAX);
	if (i->identity_checked || i->identity_unchecked)
		printf("identity  %" PRIu64 " signed device and station records "
		       "checked\n", i->identity_checked);
	if (i->identity_unchecked)
		printf("UNCHECKED %" PRIu64 " receipts or authorizations (first: "
		       "event %" PRIu64 ") whose device-attested event is in an "
		       "earlier report\n", i->identity_unchecked,
		       i->identity_first_unchecked);
	printf("verdict   report verifies\n");
}

static void print_info_json(const struct stn_report_info *i)
{
	printf("{\"verdict\":\"verified\",\"report\":");
	ui_json_string(stdout, i->path);
	printf(",\"sha256\":\"%s\",\"signer\":", i->sha256);
	ui_json_string(stdout, i->signer);
	printf(",\"station\":");
	ui_json_string(stdout, i->station);
	printf(",\"site\":");
	ui_json_string(stdout, i->site);
	printf(",\"exported\":");
	json_time(stdout, i->exported);
	printf(",\"since\":");
	json_time(stdout, i->since);
	printf(",\"until\":");
	json_time(stdout, i->until);
	printf(",\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"count\":%" PRIu64
	       ",\"last-hash\":\"%s\"",
	       i->first, i->last, i->count, i->last_hash);
	if (i->has_previous) {
		printf(",\"previous-export\":{\"report\":");
		ui_json_string(stdout, i->prev_report);
		printf(",\"last-seq\":%" PRIu64 "}", i->prev_last);
	}
	if (i->gap_first)
		printf(",\"gap\":{\"first\":%" PRIu64 ",\"last\":%" PRIu64 "}",
		       i->gap_first, i->gap_last);
	if (i->earlier_checked)
		printf(",\"continues-earlier\":true,\"overlap\":%" PRIu64,
		       i->overlap);
	printf(",\"identity-checked\":%" PRIu64 ",\"identity-unchecked\":%"
	       PRIu64, i->identity_checked, i->identity_unchecked);
	printf(",\"sessions\":[");
	for (size_t k = 0; k < i->nsessions; k++) {
		const struct stn_report_session *p = &i->sessions[k];

		printf("%s{\"id\":", k ? "," : "");
		ui_json_string(stdout, p->id);
		printf(",\"start\":");
		json_time(stdout, p->start);
		printf(",\"end\":");
		json_time(stdout, p->end);
		printf(",\"first\":%" PRIu64 ",\"last\":%" PRIu64
		       ",\"ended\":%s,\"technician\":",
		       p->first, p->last, p->ended ? "true" : "false");
		ui_json_string(stdout, p->technician);
		printf(",\"command\":");
		ui_json_string(stdout, p->command);
		printf(",\"what\":");
		ui_json_string(stdout, p->what);
		printf(",\"device\":");
		ui_json_string(stdout, p->device);
		printf(",\"authority\":");
		ui_json_string(stdout, p->authority);
		printf(",\"identity\":");
		ui_json_string(stdout, p->identity);
		printf(",\"result\":");
		ui_json_string(stdout, p->result);
		printf("}");
	}
	printf("]}\n");
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"trust", required_argument, NULL, 't'},
		{"crl", required_argument, NULL, 'r'},
		{"previous", required_argument, NULL, 'p'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *config = NULL, *anchors = NULL, *crl = NULL;
	const char *previous = NULL;
	struct stn_config *cfg = NULL;
	struct stn_report_info *info = NULL;
	struct cu_trust *t = NULL;
	struct stn_diag d;
	int json = 0, c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 't': anchors = optarg; break;
		case 'r': crl = optarg; break;
		case 'p': previous = optarg; break;
		case 'j': json = 1; break;
		case 'h': fputs(verify_usage, stdout); return 0;
		default: return ui_usage_error(verify_usage, "bad option");
		}
	}
	if (optind != argc - 1)
		return ui_usage_error(verify_usage,
				      "give exactly one REPORT.json");
	if (crl && !anchors)
		return ui_usage_error(verify_usage,
				      "--crl goes with --trust");
	stn_diag_init(&d);
	/* An auditor's laptop has no station.conf: --trust is enough.  On
	 * a station, its own anchors (and CRL policy) serve. */
	if (!anchors) {
		rc = stn_config_load(ui_config_path(config), &cfg, &d);
		if (rc) {
			char why[1200];

			stn_diag_format(&d, why, sizeof(why));
			return ui_usage_error(verify_usage,
					      "give --trust ROOTS.pem: no "
					      "configuration to take anchors "
					      "from (%s)", why);
		}
		anchors = cfg->anchors;
		crl = cfg->crl_dir;
	}
	rc = cu_trust_load(anchors, crl, &t, &d);
	if (rc) {
		if (stn_err_exit(rc) != STN_EXIT_IO)
			rc = stn_recode(&d, STN_E_CONFIG);
		goto out;
	}
	if (cfg)
		cu_trust_set_stale_crl_refuse(t, cfg->stale_crl_refuse);
	rc = stn_report_verify(t, argv[optind], previous, &info, &d);
	if (rc)
		goto out;
	if (json)
		print_info_json(info);
	else
		print_info_text(info, previous);
out:
	stn_report_info_free(info);
	cu_trust_free(t);
	stn_config_free(cfg);
	if (rc && json) {
		printf("{\"verdict\":\"refused\",\"rule\":");
		ui_json_string(stdout, stn_err_rule(d.code));
		printf(",\"where\":");
		ui_json_string(stdout, d.where);
		printf(",\"reason\":");
		ui_json_string(stdout, d.text);
		printf("}\n");
	}
	return rc ? ui_report("report verify", &d) : 0;
}

int ui_cmd_report(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	return ui_usage_error(NULL, "report: say export or verify (station "
				    "help report)");
}
