/* ui/cli_release.c: release engineering's commands, `station bundle create`
 * and `station sign`.  Neither needs a station configuration. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "custody/record.h"
#include "station/base/rfc3339.h"
#include "custody/sign.h"
#include "station/base/error.h"
#include "station/release.h"
#include "ui/cli.h"

#define DEFAULT_VALIDITY (180LL * 86400) /* documented in docs/release.md */

static const char bundle_usage[] =
	"usage: station bundle create --name N --version V --sequence S "
	"--model M\n"
	"         [--hardware H]... [--expires T] [--encrypt-for DELIVERY_CERT]...\n"
	"         --image LABEL=FILE[@SLOT]... OUTDIR\n"
	"  --expires defaults to 180 days from now; SLOT defaults to 0\n"
	"  --encrypt-for: encrypt each image for this delivery certificate\n"
	"    (repeatable: one key file per image and certificate in keys/)\n";
static const char sign_usage[] =
	"usage: station sign --key KEY --cert CHAIN [--label L] FILE\n"
	"  writes FILE.sig and FILE.pem (or FILE.L.sig and FILE.L.pem)\n";
const char *const ui_bundle_usage = bundle_usage;
const char *const ui_sign_usage = sign_usage;

static int parse_image(char *arg, struct stn_release_image *img)
{
	char *eq = strchr(arg, '='), *at;
	char *end;

	if (!eq || eq == arg || !eq[1])
		return -1;
	*eq = '\0';
	img->label = arg;
	img->path = eq + 1;
	img->slot = 0;
	at = strrchr(eq + 1, '@');
	if (at) {
		unsigned long slot = strtoul(at + 1, &end, 10);
		if (at[1] == '\0' || *end || slot > 255)
			return -1;
		*at = '\0';
		img->slot = (unsigned)slot;
	}
	/* Labels follow the record format's section label rule. */
	return strlen(arg) <= 32 && cu_chars_in(arg, "a-z0-9-") &&
			       arg[0] != '-'
		       ? 0
		       : -1;
}

int ui_cmd_bundle(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"version", required_argument, NULL, 'v'},
		{"sequence", required_argument, NULL, 's'},
		{"model", required_argument, NULL, 'm'},
		{"hardware", required_argument, NULL, 'w'},
		{"expires", required_argument, NULL, 'e'},
		{"image", required_argument, NULL, 'i'},
		{"encrypt-for", required_argument, NULL, 'E'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct stn_release rel;
	struct stn_release_image *images = NULL;
	const char **hw = NULL, **rcp = NULL;
	size_t nimg = 0, nhw = 0, nrcp = 0;
	const char *seq = NULL;
	struct stn_diag d;
	char *end;
	int c, rc = STN_EXIT_USAGE, have_expires = 0;

	if (argc < 2 || strcmp(argv[1], "create") != 0)
		return ui_usage_error(bundle_usage, "expected 'bundle create'");
	argc--;
	argv++;
	memset(&rel, 0, sizeof(rel));
	images = calloc((size_t)argc, sizeof(*images));
	hw = calloc((size_t)argc, sizeof(*hw));
	rcp = calloc((size_t)argc, sizeof(*rcp));
	if (!images || !hw || !rcp)
		goto out;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': rel.name = optarg; break;
		case 'v': rel.version = optarg; break;
		case 's': seq = optarg; break;
		case 'm': rel.model = optarg; break;
		case 'w': hw[nhw++] = optarg; break;
		case 'E': rcp[nrcp++] = optarg; break;
		case 'c': break; /* accepted everywhere; unused here */
		case 'e':
			if (cu_time_parse(optarg, &rel.expires)) {
				rc = ui_usage_error(bundle_usage,
						    "bad --expires '%s': want "
						    "RFC 3339 UTC", optarg);
				goto out;
			}
			have_expires = 1;
			break;
		case 'i':
			if (parse_image(optarg, &images[nimg])) {
				rc = ui_usage_error(bundle_usage,
						    "bad --image: want "
						    "LABEL=FILE[@SLOT]");
				goto out;
			}
			nimg++;
			break;
		case 'h': fputs(bundle_usage, stdout); rc = 0; goto out;
		default: rc = ui_usage_error(bundle_usage, "bad option"); goto out;
		}
	}
	if (!rel.name || !rel.version || !seq || !rel.model || !nimg ||
	    optind != argc - 1) {
		rc = ui_usage_error(bundle_usage,
				    "--name, --version, --sequence, --model, "
				    "--image and OUTDIR are required");
		goto out;
	}
	/* Digits only, no leading zero, no overflow: the same rule the
	 * manifest parser applies, checked here so the error is a usage error
	 * and a counter can never be stuck at UINT64_MAX by a typo. */
	errno = 0;
	rel.sequence = strtoull(seq, &end, 10);
	if (!*seq || *end || errno == ERANGE ||
	    strspn(seq, "0123456789") != strlen(seq) ||
	    (seq[0] == '0' && seq[1])) {
		rc = ui_usage_error(bundle_usage,
				    "bad --sequence '%s': want a decimal "
				    "number up to 18446744073709551615", seq);
		goto out;
	}
	rel.created = (int64_t)time(NULL);
	if (!have_expires)
		rel.expires = rel.created + DEFAULT_VALIDITY;
	rel.hardware = hw;
	rel.nhardware = nhw;
	rel.images = images;
	rel.nimages = nimg;
	rel.recipients = rcp;
	rel.nrecipients = nrcp;
	stn_diag_init(&d);
	if (stn_release_create(&rel, argv[optind], &d)) {
		rc = ui_report("bundle create", &d);
		goto out;
	}
	if (nrcp)
		printf("wrote %s/manifest with %zu image(s), encrypted for "
		       "%zu recipient(s)\n", argv[optind], nimg, nrcp);
	else
		printf("wrote %s/manifest with %zu image(s)\n", argv[optind],
		       nimg);
	rc = 0;
out:
	free(images);
	free(hw);
	free(rcp);
	return rc;
}

int ui_cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"cert", required_argument, NULL, 'C'},
		{"label", required_argument, NULL, 'l'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *key = NULL, *cert = NULL, *label = NULL;
	struct cu_key *k = NULL;
	struct stn_diag d;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'C': cert = optarg; break;
		case 'l': label = optarg; break;
		case 'c': break;
		case 'h': fputs(sign_usage, stdout); return 0;
		default: return ui_usage_error(sign_usage, "bad option");
		}
	}
	if (!key || !cert || optind != argc - 1)
		return ui_usage_error(sign_usage,
				      "--key, --cert and FILE are required");
	stn_diag_init(&d);
	rc = cu_key_load(key, cert, &k, &d);
	if (rc == 0)
		rc = cu_sign_file(k, argv[optind], label, &d);
	cu_key_free(k);
	if (rc)
		return ui_report("sign", &d);
	printf("signed %s%s%s\n", argv[optind], label ? " as " : "",
	       label ? label : "");
	return 0;
}
