/* ui/main.c: the `station` program: subcommands in the style of git
 * (spec/cli.md).  Everything below main returns codes; only here and in
 * ui/ is anything printed or the process exited. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/error.h"
#include "ui/cli.h"
#include "ui/common.h"
#include "ui/tui.h"

static const char usage[] =
	"usage: station [--config FILE] [COMMAND [ARGS]]\n"
	"\n"
	"With no command: the text UI for the technician.\n"
	"\n"
	"commands:\n"
	"  verify [--technician ID] [--device FILE] [--reinstall] [--json] BUNDLE\n"
	"  devices [--attest] [--json] [--watch SECONDS]\n"
	"  push --technician ID --device SPEC [--reinstall] BUNDLE\n"
	"        SPEC: serial:/dev/ttyX (console), ymodem:/dev/ttyX (plain),\n"
	"              smp:/dev/ttyX (MCUmgr), usb:SERIAL or usb:VID:PID (DFU)\n"
	"  journal [--since T] [--until T] [--serial SN] [--bundle ID|NAME]\n"
	"        [--technician ID] [--session ID] [--type T] [--json] [--verify]\n"
	"  report export --out DIR [--since T] [--until T] [--json]\n"
	"  report verify [--trust ROOTS.pem] [--previous EARLIER.json] REPORT.json\n"
	"  bundle create --name N --version V --sequence S --model M\n"
	"        [--hardware H]... [--expires T] --image LABEL=FILE[@SLOT]... OUTDIR\n"
	"  sign --key KEY --cert CHAIN [--label L] FILE\n"
	"  demo                          a self-contained demo in the text UI\n"
	"  media [--json] [--watch [--mount]]  media and the bundles on them\n"
	"  custody add --key KEY --cert CHAIN --to ID [--place P] [--seal S] BUNDLE\n"
	"  token issue --key KEY --cert CHAIN --waive W... --device SN...\n"
	"        --ttl DURATION --reason TEXT [--site S] [--station ID] BUNDLE\n"
	"  pin                           a technician's PIN line for station.conf\n"
	"\n"
	"Every command takes --config FILE (default $STATION_CONFIG, else\n"
	"/etc/station/station.conf).  Exit codes: 0 done or accepted, 1 refused,\n"
	"2 usage or configuration error, 3 I/O or device error (retry may cure).\n";

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
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{"verify", ui_cmd_verify}, {"push", ui_cmd_push},
		{"devices", ui_cmd_devices},
		{"journal", ui_cmd_journal}, {"bundle", ui_cmd_bundle},
		{"report", ui_cmd_report},
		{"sign", ui_cmd_sign}, {"custody", ui_cmd_custody},
		{"token", ui_cmd_token}, {"demo", ui_cmd_demo},
		{"media", ui_cmd_media}, {"pin", ui_cmd_pin},
	};
	int first = 1;

	/* A leading --config applies to the subcommand; pass it along. */
	if (argc > 2 && strcmp(argv[1], "--config") == 0) {
		if (setenv("STATION_CONFIG", argv[2], 1) != 0)
			return ui_usage_error(NULL, "cannot set config path");
		first = 3;
	}
	if (argc <= first)
		return end_by_signal(ui_tui_run(ui_config_path(NULL)));
	if (strcmp(argv[first], "--help") == 0 ||
	    strcmp(argv[first], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[first], cmds[i].name) == 0)
			return end_by_signal(
				cmds[i].fn(argc - first, argv + first));
	return ui_usage_error(usage, "unknown command '%s'", argv[first]);
}
