/* tests/test_app.c: the text UI's core, driven by key events without
 * ncurses, on the real demo (tests/demo_setup.sh: PKI, bundles, simulated
 * devices).  Asserts what a technician would see on each screen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "station/app.h"
#include "station/base/error.h"
#include "tests/helpers.h"

static char *dir;
static char conf[4300];
static struct stn_app *app;
static struct stn_app_view view;

static int setup(void **state)
{
	char cmd[4600];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";

	(void)state;
	dir = th_tempdir();
	snprintf(cmd, sizeof(cmd),
		 "bash tests/demo_setup.sh setup '%s' '%s/station' "
		 "'%s/sim-serial'", dir, build, build);
	if (system(cmd) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/station.conf", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[4600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "bash tests/demo_setup.sh teardown '%s'",
		 dir);
	if (system(cmd) != 0)
		fprintf(stderr, "teardown failed\n");
	free(dir);
	return 0;
}

static void keys(const char *text)
{
	for (const char *p = text; *p; p++)
		stn_app_key(app, STN_KEY_CHAR, *p);
}

static void look(void)
{
	stn_app_view(app, &view);
}

/* Wait (bounded) until background work is over. */
static void settle(void)
{
	for (int i = 0; i < 300; i++) {
		look();
		if (!view.busy && view.screen != STN_SCR_PUSH)
			return;
		struct timespec t = {0, 50 * 1000000};
		nanosleep(&t, NULL);
	}
	fail_msg("the app stayed busy for 15 s");
}

static int shows(const char *words)
{
	if (strstr(view.message, words) || strstr(view.header, words))
		return 1;
	for (size_t i = 0; i < view.nlines; i++)
		if (strstr(view.lines[i].text, words))
			return 1;
	for (size_t i = 0; i < view.ndevices; i++)
		if (strstr(view.devices[i].verdict, words) ||
		    strstr(view.devices[i].result, words) ||
		    strstr(view.devices[i].identity, words))
			return 1;
	return 0;
}

#define SHOWS(w)                                                              \
	do {                                                                  \
		look();                                                       \
		if (!shows(w))                                                \
			fail_msg("screen %d does not show '%s' (message '%s'; " \
				 "first lines '%s' / '%s')",                  \
				 view.screen, (w), view.message,              \
				 view.nlines > 0 ? view.lines[0].text : "",   \
				 view.nlines > 1 ? view.lines[1].text : "");  \
	} while (0)

/* The PIN is checked in a worker: tick, as the text UI does, until its
 * outcome has come back (bounded). */
static void await_signin(void)
{
	for (int i = 0; i < 300; i++) {
		stn_app_key(app, STN_KEY_TICK, 0);
		look();
		if (!view.signin_checking)
			return;
		struct timespec t = {0, 20 * 1000000};
		nanosleep(&t, NULL);
	}
	fail_msg("the PIN check did not finish in 6 s");
}

/* The app started on conf_path, ana signed in, home shown. */
static void sign_in_with(const char *conf_path)
{
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(stn_app_new(conf_path, &app, &d), 0);
	keys("ana");
	stn_app_key(app, STN_KEY_ENTER, 0);
	keys("1234");
	stn_app_key(app, STN_KEY_ENTER, 0);
	await_signin();
	assert_int_equal(view.screen, STN_SCR_HOME);
}

static void sign_in(void)
{
	sign_in_with(conf);
}

static size_t find_bundle(const char *suffix)
{
	look();
	for (size_t i = 0; i < view.nbundles; i++) {
		size_t n = strlen(view.bundles[i].dir), m = strlen(suffix);
		if (n >= m && strcmp(view.bundles[i].dir + n - m, suffix) == 0)
			return i;
	}
	fail_msg("no bundle %s on the media", suffix);
	return 0;
}

static void open_bundle(const char *suffix)
{
	stn_app_key(app, STN_KEY_CHAR, 'm');
	size_t want = find_bundle(suffix);
	look();
	while (view.cursor > want)
		stn_app_key(app, STN_KEY_UP, 0), look();
	while (view.cursor < want)
		stn_app_key(app, STN_KEY_DOWN, 0), look();
	/* The list may not change under the cursor before Enter. */
	assert_int_equal(view.screen, STN_SCR_BUNDLES);
	assert_int_equal(view.cursor, want);
	assert_string_equal(view.bundles[view.cursor].dir +
				    strlen(view.bundles[view.cursor].dir) -
				    strlen(suffix),
			    suffix);
	stn_app_key(app, STN_KEY_ENTER, 0);
	settle();
	assert_int_equal(view.screen, STN_SCR_BUNDLE);
}

static void sign_in_refuses_unknown_technicians_and_wrong_pins(void **state)
{
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(stn_app_new(conf, &app, &d), 0);
	look();
	assert_int_equal(view.screen, STN_SCR_SIGNIN);
	/* An unknown id is asked for a PIN like a known one, and refused
	 * in the same words as a wrong PIN (station/signin.h). */
	keys("mallory");
	stn_app_key(app, STN_KEY_ENTER, 0);
	look();
	assert_int_equal(view.signin_field, 1);
	SHOWS("PIN for mallory");
	keys("9999");
	stn_app_key(app, STN_KEY_ENTER, 0);
	await_signin();
	SHOWS("Sign-in refused: unknown id or wrong PIN.");
	stn_app_free(app);
	assert_int_equal(stn_app_new(conf, &app, &d), 0);
	keys("ana");
	stn_app_key(app, STN_KEY_ENTER, 0);
	look();
	assert_int_equal(view.signin_field, 1);
	keys("9999");
	look();
	assert_int_equal(view.signin_pin_len, 4); /* shown as stars only */
	stn_app_key(app, STN_KEY_ENTER, 0);
	await_signin();
	SHOWS("Sign-in refused: unknown id or wrong PIN.");
	look();
	assert_int_equal(view.screen, STN_SCR_SIGNIN);
	assert_int_equal(view.signin_pin_len, 0); /* wiped */
	/* The delay after a failure: Enter waits for the countdown. */
	keys("1234");
	for (int i = 0; i < 60; i++) {
		stn_app_key(app, STN_KEY_TICK, 0);
		look();
		if (!shows("Next try in"))
			break;
		stn_app_key(app, STN_KEY_ENTER, 0);
		look();
		assert_false(view.signin_checking);
		struct timespec t = {0, 50 * 1000000};
		nanosleep(&t, NULL);
	}
	SHOWS("You may try again.");
	stn_app_key(app, STN_KEY_ENTER, 0);
	await_signin();
	assert_int_equal(view.screen, STN_SCR_HOME);
	SHOWS("Station STN-0042 at site plant-7");
	SHOWS("trusted-time floor");
	SHOWS("CRLs: 1, 0 past nextUpdate");
	SHOWS("5 bundle(s)");
	stn_app_free(app);
	app = NULL;
}

/* PBKDF2 takes about 0.2 s: the Enter that submits the PIN returns at
 * once with the app checking, the screen keeps drawing, keys typed
 * meanwhile change nothing, and the outcome arrives as an event that a
 * later tick delivers. */
static void pin_check_runs_in_a_worker_and_its_outcome_is_an_event(
	void **state)
{
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(stn_app_new(conf, &app, &d), 0);
	keys("ana");
	stn_app_key(app, STN_KEY_ENTER, 0);
	keys("1234");
	stn_app_key(app, STN_KEY_ENTER, 0);
	look();
	assert_int_equal(view.screen, STN_SCR_SIGNIN);
	assert_true(view.signin_checking);
	assert_true(view.busy);
	assert_int_equal(view.signin_pin_len, 4);
	SHOWS("Checking the PIN");
	/* typed while checking: not added to the PIN, not acted on later */
	keys("9");
	stn_app_key(app, STN_KEY_CHAR, 'j');
	look();
	assert_int_equal(view.signin_pin_len, 4);
	await_signin();
	assert_int_equal(view.screen, STN_SCR_HOME);
	assert_false(view.busy);
	SHOWS("Signed in as Ana Lima");
	stn_app_free(app);
	app = NULL;
}

static void bundle_screen_gives_each_device_its_verdict(void **state)
{
	(void)state;
	sign_in();
	open_bundle("/tx200-2.4.1");
	SHOWS("2 hop(s), from dispatch-office-3 to ana");
	SHOWS("courier-ana -> ana");
	look();
	assert_int_equal(view.ndevices, 4);
	for (size_t i = 0; i < 4; i++)
		assert_true(view.devices[i].verdict_known);
	/* Each device says whether it proved who it is: the genuine TX-200
	 * units by Acme's certificate, the TX-100 is not asked (no class),
	 * and the counterfeit is refused in the technician's words. */
	assert_string_equal(view.devices[0].ident_tag, "GENUINE");
	assert_non_null(strstr(view.devices[0].ident,
			       "certificate TX-200 SN-0001 from Acme TX-200 "
			       "Device CA"));
	assert_string_equal(view.devices[2].ident_tag, "NOT CHECKED");
	assert_string_equal(view.devices[3].ident_tag, "NOT GENUINE");
	assert_false(view.devices[3].installable);
	assert_false(view.devices[3].selected);
	assert_non_null(strstr(view.devices[3].verdict,
			       "This unit could not prove it is genuine: its "
			       "certificate is not from a manufacturer this "
			       "station trusts"));
	assert_non_null(strstr(view.devices[3].verdict,
			       "Do not install; report the unit."));
	assert_string_equal(view.devices[3].ident, ""); /* said once */
	assert_true(view.devices[0].installable && view.devices[0].selected);
	assert_true(view.devices[1].installable && view.devices[1].selected);
	assert_false(view.devices[2].installable);
	/* the TX-100: the cause first, in words (issue 15 item 1) */
	assert_non_null(strstr(view.devices[2].verdict,
			       "refused: wrong model: unit is TX-100, bundle "
			       "is for TX-200"));
	/* a refused device cannot be selected, and says why */
	stn_app_key(app, STN_KEY_DOWN, 0);
	stn_app_key(app, STN_KEY_DOWN, 0);
	stn_app_key(app, STN_KEY_TOGGLE, 0);
	look();
	assert_false(view.devices[2].selected);
	SHOWS("cannot take this bundle");
	stn_app_free(app);
	app = NULL;
}

static void push_installs_on_two_devices_in_parallel_after_confirmation(
	void **state)
{
	char a[4400], b[4400];

	(void)state;
	sign_in();
	open_bundle("/tx200-2.4.1");
	stn_app_key(app, STN_KEY_CHAR, 'p');
	look();
	assert_int_equal(view.screen, STN_SCR_CONFIRM);
	SHOWS("on 2 device(s)?");
	SHOWS("cannot be undone");
	stn_app_key(app, STN_KEY_CHAR, 'n'); /* changed my mind */
	look();
	assert_int_equal(view.screen, STN_SCR_BUNDLE);
	SHOWS("Nothing installed");
	stn_app_key(app, STN_KEY_CHAR, 'p');
	stn_app_key(app, STN_KEY_CHAR, 'y');
	settle();
	assert_int_equal(view.screen, STN_SCR_RESULT);
	SHOWS("2 installed, 0 failed, 0 not installed");
	assert_int_equal(view.devices[0].outcome, STN_OUT_DONE);
	assert_int_equal(view.devices[1].outcome, STN_OUT_DONE);
	assert_non_null(strstr(view.devices[0].result, "INSTALLED on SN-0001"));
	assert_int_equal(view.devices[2].outcome, STN_OUT_NONE);
	assert_int_equal(view.devices[3].outcome, STN_OUT_NONE);
	/* proven by the units' signed receipts (class tx200: proof =
	 * required) */
	assert_non_null(strstr(view.devices[0].result, "(device-signed)"));
	/* the devices really have it */
	snprintf(a, sizeof(a), "cmp -s '%s/unit-a.store/slot-0.bin' "
			       "'%s/images/tx200-app-2.4.1.bin'", dir, dir);
	snprintf(b, sizeof(b), "grep -qx 'sequence = 42' '%s/unit-b.id'", dir);
	assert_int_equal(system(a), 0);
	assert_int_equal(system(b), 0);
	stn_app_free(app);
	app = NULL;
}

static void refused_bundle_cannot_be_installed_and_says_why(void **state)
{
	(void)state;
	sign_in();
	open_bundle("/tx200-2.4.1-copy");
	SHOWS("image was altered or damaged");
	for (size_t i = 0; i < 3; i++)
		assert_false(view.devices[i].installable);
	stn_app_key(app, STN_KEY_CHAR, 'p');
	SHOWS("This bundle was refused");
	look();
	assert_int_equal(view.screen, STN_SCR_BUNDLE);
	stn_app_key(app, STN_KEY_BACK, 0);
	stn_app_key(app, STN_KEY_BACK, 0);
	open_bundle("/tx200-2.3.0-old");
	SHOWS("expired at");
	stn_app_free(app);
	app = NULL;
}

/* The demo's 2.5.0 travels encrypted for this station (formats §10): the
 * bundle screen says so, and the TX-200 units may take it. */
static void encrypted_bundle_says_it_is_for_this_station(void **state)
{
	(void)state;
	sign_in();
	open_bundle("/tx200-2.5.0-encrypted");
	SHOWS("Images encrypted for this station (delivery key");
	SHOWS("ready: sequence 44 is newer");
	stn_app_free(app);
	app = NULL;
}

static void media_appearing_reaches_the_home_screen_as_an_event(void **state)
{
	char cmd[4600];

	(void)state;
	sign_in();
	SHOWS("5 bundle(s)");
	/* a new bundle directory appears in the media root */
	snprintf(cmd, sizeof(cmd), "cp -r '%s/media/tx200-2.4.1' "
				   "'%s/media/zz-new'", dir, dir);
	assert_int_equal(system(cmd), 0);
	for (int i = 0; i < 50; i++) {
		stn_app_key(app, STN_KEY_TICK, 0);
		look();
		if (shows("6 bundle(s)"))
			break;
		struct timespec t = {0, 50 * 1000000};
		nanosleep(&t, NULL);
	}
	SHOWS("6 bundle(s)");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/media/zz-new'", dir);
	assert_int_equal(system(cmd), 0);
	stn_app_free(app);
	app = NULL;
}

static void journal_and_export_work_from_home(void **state)
{
	char cmd[4500];

	(void)state;
	sign_in();
	stn_app_key(app, STN_KEY_CHAR, 'j');
	look();
	assert_int_equal(view.screen, STN_SCR_JOURNAL);
	SHOWS("install-finished");
	stn_app_key(app, STN_KEY_BACK, 0);
	stn_app_key(app, STN_KEY_CHAR, 'x');
	settle();
	SHOWS("Report written");
	snprintf(cmd, sizeof(cmd), "ls '%s'/media/report-STN-0042-*.json.sig "
				   ">/dev/null", dir);
	assert_int_equal(system(cmd), 0);
	/* q signs out to the sign-in screen; quitting asks first. */
	stn_app_key(app, STN_KEY_CHAR, 'q');
	look();
	assert_int_equal(view.screen, STN_SCR_SIGNIN);
	assert_false(stn_app_finished(app));
	SHOWS("Signed out");
	stn_app_key(app, STN_KEY_BACK, 0);
	look();
	assert_int_equal(view.screen, STN_SCR_QUIT);
	stn_app_key(app, STN_KEY_CHAR, 'y');
	assert_true(stn_app_finished(app));
	stn_app_free(app);
	app = NULL;
}

/* The demo's configuration in appliance mode with report sticks under
 * DIR/reports; the app started on it and signed in. */
static void sign_in_with_report_media(char reports[4200])
{
	char cmd[13000], conf2[4300];

	snprintf(reports, 4200, "%s/reports", dir);
	snprintf(conf2, sizeof(conf2), "%s/appliance.conf", dir);
	snprintf(cmd, sizeof(cmd),
		 "rm -rf '%s' && mkdir -m 0700 '%s' && "
		 "sed '/^media = /a mount-media = yes\\nreport-media = %s' "
		 "'%s' >'%s'",
		 reports, reports, reports, conf, conf2);
	assert_int_equal(system(cmd), 0);
	sign_in_with(conf2);
}

static int count_files(const char *pattern)
{
	char cmd[4600];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -d %s 2>/dev/null | wc -l", pattern);
	f = popen(cmd, "r");
	assert_non_null(f);
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

/* Tick as the text UI does until the screen shows words (bounded). */
static void tick_until(const char *words)
{
	for (int i = 0; i < 100; i++) {
		stn_app_key(app, STN_KEY_TICK, 0);
		look();
		if (shows(words))
			return;
		struct timespec t = {0, 50 * 1000000};
		nanosleep(&t, NULL);
	}
	SHOWS(words);
}

static void export_without_a_report_stick_says_so_and_writes_nothing(
    void **state)
{
	char reports[4200], pat[4400];
	int before;

	(void)state;
	snprintf(pat, sizeof(pat), "'%s'/media/report-*", dir);
	before = count_files(pat);
	sign_in_with_report_media(reports);
	stn_app_key(app, STN_KEY_CHAR, 'x');
	settle();
	SHOWS("No report stick: plug in a stick with a file STATION-REPORTS "
	      "at its top");
	assert_true(strlen(view.message) <= 80);
	/* nothing written: not to the media root, not to the report root */
	assert_int_equal(count_files(pat), before);
	snprintf(pat, sizeof(pat), "'%s'/*", reports);
	assert_int_equal(count_files(pat), 0);
	stn_app_free(app);
	app = NULL;
}

/* A report stick is what is mounted under report-media; the station's
 * own mounter puts marked sticks there (tests/test_watch.c), here a tmpfs
 * stands in for one. */
static void export_goes_to_the_report_stick_and_it_comes_and_goes(
    void **state)
{
	char reports[4200], stick[4300], pat[4400], cmd[9000];
	int before;

	(void)state;
	if (geteuid() != 0) {
		printf("skip: mounting a stand-in report stick needs root\n");
		skip();
	}
	snprintf(pat, sizeof(pat), "'%s'/media/report-*", dir);
	before = count_files(pat);
	sign_in_with_report_media(reports);
	snprintf(stick, sizeof(stick), "%s/sdz", reports);
	assert_int_equal(mkdir(stick, 0700), 0);
	assert_int_equal(mount("stick", stick, "tmpfs", MS_NOSUID | MS_NODEV |
			       MS_NOEXEC, "size=4m"), 0);
	tick_until("Report stick sdz ready");
	SHOWS("report stick");
	stn_app_key(app, STN_KEY_CHAR, 'x');
	settle();
	SHOWS("Report written");
	SHOWS(stick);
	snprintf(pat, sizeof(pat), "'%s'/report-STN-0042-*.json.sig", stick);
	assert_int_equal(count_files(pat), 1);
	/* the stick's arrival was journaled as any medium is, before x */
	snprintf(cmd, sizeof(cmd),
		 "grep -q 'media-seen.*inserted.*%s' '%s'/report-*.json",
		 stick, stick);
	assert_int_equal(system(cmd), 0);
	snprintf(pat, sizeof(pat), "'%s'/media/report-*", dir);
	assert_int_equal(count_files(pat), before);
	/* pulled just before x, its removal not yet seen: the export lands
	 * in the bare mount point, in RAM, and must not pass for written */
	assert_int_equal(umount2(stick, MNT_DETACH), 0);
	stn_app_key(app, STN_KEY_CHAR, 'x');
	settle();
	SHOWS("Report not exported");
	SHOWS("report stick was pulled during the export");
	/* its removal seen: x has nowhere to go again */
	tick_until("Report stick sdz removed");
	stn_app_key(app, STN_KEY_CHAR, 'x');
	settle();
	SHOWS("No report stick");
	stn_app_free(app);
	app = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", stick);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			sign_in_refuses_unknown_technicians_and_wrong_pins),
		cmocka_unit_test(
			pin_check_runs_in_a_worker_and_its_outcome_is_an_event),
		cmocka_unit_test(bundle_screen_gives_each_device_its_verdict),
		cmocka_unit_test(
			push_installs_on_two_devices_in_parallel_after_confirmation),
		cmocka_unit_test(
			refused_bundle_cannot_be_installed_and_says_why),
		cmocka_unit_test(
			encrypted_bundle_says_it_is_for_this_station),
		cmocka_unit_test(
			media_appearing_reaches_the_home_screen_as_an_event),
		cmocka_unit_test(journal_and_export_work_from_home),
		cmocka_unit_test(
		    export_without_a_report_stick_says_so_and_writes_nothing),
		cmocka_unit_test(
		    export_goes_to_the_report_stick_and_it_comes_and_goes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
