/* ui/cli_trust.c: the signed handoffs around a bundle: `station custody add`
 * (a courier or dispatcher hands the media on) and `station token issue`
 * (an exception authority waives named checks for named devices).  Neither
 * needs a station configuration.  Both check what they can before they
 * write (station/release.h): what every station would refuse is refused
 * here, unless --force (a site whose policy differs), which writes with a
 * warning. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "custody/chain.h"
#include "custody/sig.h"
#include "station/base/rfc3339.h"
#include "custody/sign.h"
#include "custody/token.h"
#include "station/base/error.h"
#include "station/config.h" /* STN_DEFAULT_MAX_TOKEN_TTL */
#include "station/release.h"
#include "ui/cli.h"

static const char custody_usage[] =
	"usage: station custody add --key KEY --cert CHAIN --to ID "
	"[--place P] [--seal S]\n"
	"         [--trust FILE] [--force] BUNDLE\n"
	"  appends custody/NN.rec, from = your certificate's CN, time = now\n"
	"  refused first: a certificate without the custody role, a chain "
	"already\n"
	"  broken (its signatures too with --trust); --force writes anyway, "
	"warning\n";
static const char token_usage[] =
	"usage: station token issue --key KEY --cert CHAIN --waive W...\n"
	"         --device SN... --ttl DURATION\n"
	"         --reason TEXT [--site S] [--station ID] [--name NAME] "
	"[--trust FILE]\n"
	"         [--force] BUNDLE\n"
	"  W: downgrade, expired, target, custody or attestation; DURATION "
	"e.g. 12h\n"
	"  refused first: a certificate without the exception role, "
	"--ttl over 72h\n"
	"  (default max-token-ttl); --force writes anyway, with a warning\n";
const char *const ui_custody_usage = custody_usage;
const char *const ui_token_usage = token_usage;

/* A check before writing: refused (exit 1) unless --force, which turns a
 * refusal (and only a refusal: never a usage, configuration or I/O error)
 * into a warning on stderr.  Returns 0 to go on. */
static int before_writing(const char *cmd, int rc, int force,
			  const struct stn_diag *d)
{
	char line[1200];

	if (rc == 0)
		return 0;
	if (!force || stn_err_exit(rc) != STN_EXIT_REFUSED)
		return ui_report(cmd, d);
	stn_diag_format(d, line, sizeof(line));
	fprintf(stderr, "station %s: warning: writing anyway (--force), "
		"though stations with the default policy refuse it: ", cmd);
	ui_put_untrusted(stderr, line);
	fputc('\n', stderr);
	return 0;
}

int ui_cmd_custody(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"cert", required_argument, NULL, 'C'},
		{"to", required_argument, NULL, 't'},
		{"place", required_argument, NULL, 'p'},
		{"seal", required_argument, NULL, 's'},
		{"trust", required_argument, NULL, 'T'},
		{"force", no_argument, NULL, 'f'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *key = NULL, *cert = NULL, *to = NULL, *place = NULL,
		   *seal = NULL, *trust = NULL;
	char written[4400];
	struct cu_key *k = NULL;
	struct stn_diag d;
	int64_t now = (int64_t)time(NULL);
	int c, rc, force = 0, sigs = 0;

	if (argc < 2 || strcmp(argv[1], "add") != 0)
		return ui_usage_error(custody_usage, "expected 'custody add'");
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'C': cert = optarg; break;
		case 't': to = optarg; break;
		case 'p': place = optarg; break;
		case 's': seal = optarg; break;
		case 'T': trust = optarg; break;
		case 'f': force = 1; break;
		case 'c': break;
		case 'h': fputs(custody_usage, stdout); return 0;
		default: return ui_usage_error(custody_usage, "bad option");
		}
	}
	if (!key || !cert || !to || optind != argc - 1)
		return ui_usage_error(custody_usage,
				      "--key, --cert, --to and BUNDLE are "
				      "required");
	stn_diag_init(&d);
	/* A key that does not match its certificate is never forced: no
	 * one could verify what it signs. */
	if ((rc = cu_key_load(key, cert, &k, &d))) {
		rc = ui_report("custody add", &d);
		goto out;
	}
	if ((rc = before_writing("custody add",
				 stn_release_signer_check(
					 cu_key_chain_pem(k, NULL), cert,
					 CU_ROLE_CUSTODY, trust, now, &d),
				 force, &d)))
		goto out;
	stn_diag_init(&d);
	if ((rc = before_writing("custody add",
				 stn_release_custody_check(argv[optind], trust,
							   now, &sigs, &d),
				 force, &d)))
		goto out;
	stn_diag_init(&d);
	rc = cu_custody_append(argv[optind], k, to, place, seal, now, written,
			       sizeof(written), &d);
	if (rc) {
		rc = ui_report("custody add", &d);
		goto out;
	}
	printf("wrote %s: %s hands the media to %s\n", UI_SAFE(written),
	       UI_SAFE(cu_key_cn(k)), UI_SAFE(to));
	if (!trust)
		printf("note: earlier records' signatures not checked (give "
		       "--trust FILE to check them)\n");
out:
	cu_key_free(k);
	return rc;
}

int ui_cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"cert", required_argument, NULL, 'C'},
		{"waive", required_argument, NULL, 'w'},
		{"device", required_argument, NULL, 'v'},
		{"ttl", required_argument, NULL, 't'},
		{"reason", required_argument, NULL, 'r'},
		{"site", required_argument, NULL, 's'},
		{"station", required_argument, NULL, 'S'},
		{"name", required_argument, NULL, 'n'},
		{"trust", required_argument, NULL, 'T'},
		{"force", no_argument, NULL, 'f'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *key = NULL, *cert = NULL, *ttl_s = NULL, *reason = NULL,
		   *site = NULL, *station = NULL, *name = NULL, *trust = NULL;
	const char **devices = NULL;
	size_t ndev = 0;
	unsigned waive = 0, w;
	int64_t ttl = 0;
	char written[4400];
	struct cu_key *k = NULL;
	struct stn_diag d;
	int64_t now = (int64_t)time(NULL);
	int c, rc = STN_EXIT_USAGE, force = 0;

	if (argc < 2 || strcmp(argv[1], "issue") != 0)
		return ui_usage_error(token_usage, "expected 'token issue'");
	argc--;
	argv++;
	devices = calloc((size_t)argc, sizeof(*devices));
	if (!devices)
		return ui_usage_error(NULL, "out of memory");
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'C': cert = optarg; break;
		case 'w':
			if (cu_waiver_parse(optarg, &w)) {
				rc = ui_usage_error(token_usage,
						    "bad --waive '%s'", optarg);
				goto out;
			}
			waive |= w;
			break;
		case 'v': devices[ndev++] = optarg; break;
		case 't': ttl_s = optarg; break;
		case 'r': reason = optarg; break;
		case 's': site = optarg; break;
		case 'S': station = optarg; break;
		case 'n': name = optarg; break;
		case 'T': trust = optarg; break;
		case 'f': force = 1; break;
		case 'c': break;
		case 'h': fputs(token_usage, stdout); rc = 0; goto out;
		default: rc = ui_usage_error(token_usage, "bad option"); goto out;
		}
	}
	if (!key || !cert || !waive || !ndev || !ttl_s || !reason ||
	    optind != argc - 1) {
		rc = ui_usage_error(token_usage,
				    "--key, --cert, --waive, --device, --ttl, "
				    "--reason and BUNDLE are required");
		goto out;
	}
	if (cu_duration_parse(ttl_s, &ttl) || ttl <= 0) {
		rc = ui_usage_error(token_usage, "bad --ttl '%s'", ttl_s);
		goto out;
	}
	stn_diag_init(&d);
	if ((rc = cu_key_load(key, cert, &k, &d))) {
		rc = ui_report("token issue", &d);
		goto out;
	}
	/* formats §5: only an exception-role chain makes a token apply;
	 * its lifetime within max-token-ttl (§8's default, 72h). */
	if ((rc = before_writing("token issue",
				 stn_release_signer_check(
					 cu_key_chain_pem(k, NULL), cert,
					 CU_ROLE_EXCEPTION, trust, now, &d),
				 force, &d)))
		goto out;
	stn_diag_init(&d);
	if ((rc = before_writing("token issue",
				 stn_release_token_ttl(
					 ttl, STN_DEFAULT_MAX_TOKEN_TTL,
					 argv[optind], &d),
				 force, &d)))
		goto out;
	stn_diag_init(&d);
	rc = cu_token_issue(argv[optind], k, waive, devices, ndev, site,
			    station, now, ttl, reason, name, written,
			    sizeof(written), &d);
	if (rc == 0)
		printf("wrote %s\n", UI_SAFE(written));
	else
		rc = ui_report("token issue", &d);
out:
	cu_key_free(k);
	free(devices);
	return rc;
}
