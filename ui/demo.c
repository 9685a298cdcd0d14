/* ui/demo.c: `station demo`.  Builds a self-contained demo in a fresh
 * temporary directory with tests/demo_setup.sh (test PKI, media with good,
 * expired, tampered and token-needing bundles, simulated serial devices on
 * pseudo-terminals, a station.conf), runs the text UI on it, then stops the
 * simulators and removes the directory, unless a report was exported to
 * its media: a report is never deleted, the directory is kept and the
 * demo says where.  STATION_DEMO_DIR chooses the directory and keeps it
 * (the end-to-end tests use this); STATION_DEMO_IDLE_SIGNOUT=SECONDS signs
 * an idle technician out sooner than the configured minimum of a minute
 * (tests/e2e_tui_nav.sh). */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "station/base/error.h"
#include "ui/cli.h"
#include "ui/tui.h"

/* The setup script and simulator, next to this program in the build tree
 * or under PREFIX when installed. */
static int find_parts(char *script, char *sim, size_t cap)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	static const char *const scripts[] = {"/../tests/demo_setup.sh",
					      "/../share/station/demo_setup.sh"};
	static const char *const sims[] = {"/sim-serial",
					   "/../libexec/station/sim-serial"};

	if (n < 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	for (int i = 0; i < 2; i++) {
		snprintf(script, cap, "%s%s", exe, scripts[i]);
		snprintf(sim, cap, "%s%s", exe, sims[i]);
		if (access(script, R_OK) == 0 && access(sim, X_OK) == 0)
			return 0;
	}
	return -1;
}

static void run_script(const char *script, const char *dir, const char *self,
		       const char *sim, const char *action, int *status)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* The script and the simulators it starts must die by the
		 * signals the demo itself holds back. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGHUP);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		execlp("bash", "bash", script, action, dir, self, sim,
		       (char *)NULL);
		_exit(127);
	}
	*status = -1;
	if (pid > 0)
		waitpid(pid, status, 0);
}

static const char demo_usage[] =
	"usage: station demo\n"
	"  builds a self-contained demo (PKI, media, bundles, simulated "
	"units) in a\n"
	"  temporary directory ($STATION_DEMO_DIR keeps it) and starts the "
	"text UI on it\n";
const char *const ui_demo_usage = demo_usage;

/* Reports exported to the demo's media (report-STATION-TIME.json). */
static size_t reports(const char *dir, char *pattern, size_t cap)
{
	glob_t g;
	size_t n = 0;

	snprintf(pattern, cap, "%s/media/report-*.json", dir);
	if (glob(pattern, 0, NULL, &g) == 0)
		n = g.gl_pathc;
	globfree(&g);
	return n;
}

/* STATION_DEMO_IDLE_SIGNOUT: whole seconds, 1 to 86400, else unset (0). */
static int64_t demo_idle(void)
{
	const char *e = getenv("STATION_DEMO_IDLE_SIGNOUT");
	char *end;
	long v;

	if (!e || !*e)
		return 0;
	errno = 0;
	v = strtol(e, &end, 10);
	if (errno || *end || v < 1 || v > 86400)
		return -1;
	return v;
}

int ui_cmd_demo(int argc, char **argv)
{
	char script[PATH_MAX], sim[PATH_MAX], self[PATH_MAX], conf[PATH_MAX];
	char found[PATH_MAX + 32];
	int64_t idle = demo_idle();
	size_t nrep;
	char tmpl[] = "/tmp/station-demo.XXXXXX";
	const char *dir = getenv("STATION_DEMO_DIR");
	int keep = dir != NULL, status, rc;
	ssize_t n;

	(void)argv;
	if (argc > 1)
		return ui_usage_error(demo_usage,
				      "demo takes no arguments");
	if (idle < 0)
		return ui_usage_error(NULL, "demo: STATION_DEMO_IDLE_SIGNOUT "
				      "must be whole seconds, 1 to 86400");
	if ((rc = ui_tui_check_terminal()))
		return rc;
	/* SIGINT, SIGTERM or SIGHUP from here on wait until the text UI
	 * takes them (or setup ends), so the teardown below always runs:
	 * no simulator or directory is left behind. */
	ui_block_signals();
	if (find_parts(script, sim, sizeof(script)) != 0)
		return ui_usage_error(NULL, "demo: cannot find demo_setup.sh "
					    "and sim-serial next to station");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return ui_usage_error(NULL, "demo: %s", strerror(errno));
	self[n] = '\0';
	if (!dir) {
		if (!mkdtemp(tmpl))
			return ui_usage_error(NULL, "demo: %s",
					      strerror(errno));
		dir = tmpl;
	} else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		return ui_usage_error(NULL, "demo: %s: %s", dir,
				      strerror(errno));
	}
	fprintf(stderr, "station demo: building the demo in %s ...\n", dir);
	run_script(script, dir, self, sim, "setup", &status);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		run_script(script, dir, self, sim, "teardown", &status);
		return ui_usage_error(NULL, "demo: setup failed (see %s/setup.log)",
				      dir);
	}
	snprintf(conf, sizeof(conf), "%s/station.conf", dir);
	rc = ui_tui_run_idle(conf, idle);
	/* What the technician exported is kept, with the demo's keys that
	 * verify it (station report verify). */
	nrep = reports(dir, found, sizeof(found));
	run_script(script, dir, self, sim, keep || nrep ? "stop" : "teardown",
		   &status);
	if (nrep)
		fprintf(stderr, "station demo: %zu exported report(s) kept in "
			"%s/media (the demo's keys are in %s/pki); remove %s "
			"when done\n", nrep, dir, dir, dir);
	return rc;
}
