/* tests/test_report_summary.c: what a report says for people
 * (station/report_summary.c): sessions with who, what, device, authority
 * and result, as `report verify` lists them and the summary pages show
 * them, one line each whatever the events hold. */
#include "tests/report_fixture.h"

static void verify_lists_each_session_with_who_what_authority_and_result(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct stn_report_info *i;
	char *text;
	const char *ff;
	int pages = 0;
	static const struct stn_field start_ana[] = {
		{"station", "STN-0042"}, {"command", "push"},
		{"technician", "ana"}};
	static const struct stn_field start_bo[] = {
		{"command", "push"}, {"technician", "bo"}};
	static const struct stn_field verified[] = {
		{"bundle", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"name", "tx200-app"}, {"version", "2.4.1"},
		{"sequence", "42"}, {"signers", "release-1 release-2"}};
	static const struct stn_field custody[] = {
		{"holders", "dispatch-office-3 > courier-ana > ana"},
		{"first", "2026-11-20T08:00:00Z"}};
	static const struct stn_field token[] = {
		{"token-id", "5f0c2a9e41d37b86a0e4c1d2b3f4a5e6"},
		{"waive", "downgrade"},
		{"reason", "CVE-2026-1234 field fix, ticket OPS-881"}};
	static const struct stn_field started[] = {
		{"serial", "SN-0001"}, {"model", "TX-200"},
		{"hardware", "revB"}, {"sequence-before", "41"}};
	static const struct stn_field finished[] = {
		{"serial", "SN-0001"}, {"sequence", "42"},
		{"proof", "device-sha256"}, {"duration-ms", "812"}};
	static const struct stn_field end_ok[] = {{"result", "ok"}};
	static const struct stn_field refused[] = {
		{"name", "tx200-app"}, {"rule", "images"},
		{"reason", "sha256 is 00, manifest says 11\nfake line"}};
	static const struct stn_field failed[] = {
		{"serial", "SN-0002"}, {"rule", "device"},
		{"reason", "device did not answer in time"}};

	add(f, "session-start", "S-1", start_ana, 3);
	add(f, "bundle-verified", "S-1", verified, 5);
	add(f, "custody-verified", "S-1", custody, 2);
	add(f, "token-applied", "S-1", token, 3);
	add(f, "install-started", "S-1", started, 4);
	add(f, "session-start", "S-2", start_bo, 2);
	add(f, "install-finished", "S-1", finished, 4);
	add(f, "session-end", "S-1", end_ok, 1);
	add(f, "bundle-refused", "S-2", refused, 3);
	add(f, "session-end", "S-2", end_ok, 1);
	add(f, "install-failed", "S-3", failed, 3);
	/* One session, two devices: the second was cut off mid-install. */
	{
		static const struct stn_field a[] = {{"serial", "SN-3"}};
		static const struct stn_field b[] = {{"serial", "SN-3"},
						     {"sequence", "7"}};
		static const struct stn_field c[] = {{"serial", "SN-4"}};

		add(f, "install-started", "S-4", a, 1);
		add(f, "install-finished", "S-4", b, 2);
		add(f, "install-started", "S-4", c, 1);
	}
	export_ok(f, f->out, 0, 0, &x);
	i = verify_ok(f, x.json, NULL);
	assert_int_equal(i->nsessions, 4);
	assert_string_equal(i->sessions[3].device, "SN-3; SN-4");
	assert_string_equal(i->sessions[3].result,
			    "SN-3: installed sequence 7 (proof not recorded); "
			    "an install started without an outcome");
	assert_string_equal(i->sessions[0].id, "S-1");
	assert_string_equal(i->sessions[0].technician, "ana");
	assert_string_equal(i->sessions[0].command, "push");
	assert_string_equal(i->sessions[0].what,
			    "tx200-app 2.4.1 (sequence 42), bundle "
			    "9f86d081884c7d65...");
	assert_string_equal(i->sessions[0].device, "SN-0001 TX-200 revB");
	assert_string_equal(i->sessions[0].authority,
			    "release signed by release-1 release-2; "
			    "custody-verified: holders=dispatch-office-3 > "
			    "courier-ana > ana, first=2026-11-20T08:00:00Z; "
			    "token-applied: token-id=5f0c2a9e41d37b86a0e4c1d2b3f4a5e6, "
			    "waive=downgrade, reason=CVE-2026-1234 field fix, "
			    "ticket OPS-881");
	assert_string_equal(i->sessions[0].result,
			    "SN-0001: installed sequence 42 (proof "
			    "device-sha256, 812 ms)");
	assert_int_equal(i->sessions[0].ended, 1);
	assert_int_equal(i->sessions[0].first, 1);
	assert_int_equal(i->sessions[0].last, 8);
	assert_int_equal(i->sessions[0].events, 7);
	assert_string_equal(i->sessions[1].technician, "bo");
	assert_non_null(strstr(i->sessions[1].result,
			       "REFUSED: rule images: sha256 is 00"));
	assert_int_equal(i->sessions[1].ended, 1);
	assert_string_equal(i->sessions[2].technician, "");
	assert_string_equal(i->sessions[2].result,
			    "SN-0002: install FAILED: rule device: device did "
			    "not answer in time");
	assert_int_equal(i->sessions[2].ended, 0);
	stn_report_info_free(i);

	/* The readable summary: a cover page and one page per session; a
	 * value with a newline cannot start a line of its own. */
	text = slurp(x.summary, NULL);
	for (ff = text; (ff = strchr(ff, '\f')); ff++)
		pages++;
	assert_int_equal(pages, 4);
	assert_non_null(strstr(text, "This summary is for reading; it is not "
				     "signed.  The record is\n    "
				     "report-STN-0042-"));
	assert_non_null(strstr(text, "\nWho         ana\n"));
	assert_non_null(strstr(text, "\nAuthority   release signed by "
				     "release-1 release-2; custody-verified"));
	assert_non_null(strstr(text, "\nResult      SN-0001: installed "
				     "sequence 42"));
	assert_non_null(strstr(text, "\nResult      REFUSED: rule images"));
	assert_non_null(strstr(text, "(its session-end is not in this "
				     "report)"));
	assert_non_null(strstr(text, "manifest says 11\\x0afake line"));
	assert_null(strstr(text, "\nfake line"));
	free(text);
}

/* Where needle is in hay (fails the test when it is not). */
static size_t at(const char *hay, const char *needle)
{
	const char *p = strstr(hay, needle);

	if (!p)
		fail_msg("the summary has no \"%s\"", needle);
	return (size_t)(p - hay);
}

/* The first page leads with what failed or was refused and every
 * exception used, then what was installed per unit, with counts at the
 * top; every line of the summary fits 80 columns and untrusted values
 * stay escaped. */
static void summary_leads_with_failures_and_exceptions_then_installs(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	char *text;
	size_t fails, exc, inst, cover, page, col;
	static const struct stn_field start_ana[] = {
		{"station", "STN-0042"}, {"command", "push"},
		{"technician", "ana"}};
	static const struct stn_field start_bo[] = {
		{"station", "STN-0042"}, {"command", "push"},
		{"technician", "bo"}};
	static const struct stn_field token[] = {
		{"token", "5f0c2a9e41d37b86a0e4c1d2b3f4a5e6"},
		{"use", "5f0c2a9e41d37b86a0e4c1d2b3f4a5e6/SN-0001"},
		{"serial", "SN-0001"},
		{"bundle", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"file", "/media/usb0/tokens/ops-881.token"},
		{"signer", "exception-1"}, {"waives", "downgrade"},
		{"reason", "CVE-2026-1234 field fix, ticket OPS-881"}};
	static const struct stn_field down[] = {
		{"technician", "ana"}, {"name", "tx200-app"},
		{"version", "2.2.0"}, {"serial", "SN-0001"},
		{"sequence-before", "42"}, {"sequence", "40"},
		{"proof", "device-sha256"}};
	static const struct stn_field up[] = {
		{"technician", "ana"}, {"name", "tx200-app"},
		{"version", "2.4.1"}, {"serial", "SN-0003"},
		{"sequence-before", "40"}, {"sequence", "42"},
		{"proof", "device-signed"}};
	static const struct stn_field refused[] = {
		{"name", "tx200-app"}, {"version", "2.5.0"},
		{"dir", "/media/usb0/tx200-app-2.5.0"}, {"rule", "images"},
		{"where", "/media/usb0/tx200-app-2.5.0/images/app.bin"},
		{"reason", "the image's SHA-256 is not the one its manifest "
			   "names: sha256 is 00, manifest says 11\nfake line"},
		{"code", "refused"}};
	static const struct stn_field failed[] = {
		{"serial", "SN-0002"}, {"rule", "device"},
		{"where", "serial:/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_"
			  "A50285BI-if00-port0"},
		{"reason", "device did not answer in time"}};
	static const struct stn_field signin[] = {
		{"technician", "mallory"}, {"failures", "5"}, {"rule", "pin"},
		{"reason", "unknown technician or wrong PIN"}};
	static const struct stn_field locked[] = {
		{"technician", "mallory"}, {"failures", "5"},
		{"until", "2026-11-21T07:00:00Z"}};
	static const struct stn_field widget[] = {{"part", "fan 2"}};
	static const struct stn_field end_ok[] = {{"result", "ok"}};

	add(f, "session-start", "S-1", start_ana, 3);
	add(f, "token-applied", "S-1", token, 8);
	add(f, "install-finished", "S-1", down, 7);
	add(f, "install-finished", "S-1", up, 7);
	add(f, "session-end", "S-1", end_ok, 1);
	add(f, "session-start", "S-2", start_bo, 3);
	add(f, "bundle-refused", "S-2", refused, 7);
	add(f, "install-failed", "S-2", failed, 4);
	add(f, "session-end", "S-2", end_ok, 1);
	add(f, "signin-refused", "S-3", signin, 4);
	add(f, "technician-locked", "S-3", locked, 3);
	/* A type this build does not know is still listed, by its name. */
	add(f, "widget-failed", "S-3", widget, 1);
	export_ok(f, f->out, 0, 0, &x);
	text = slurp(x.summary, NULL);

	assert_non_null(strstr(text, "\n2 installed, 2 refused, 2 failed, 1 "
				     "technician locked out, 1 exception "
				     "used\n"));
	fails = at(text, "\nFAILED OR REFUSED (5)\n");
	exc = at(text, "\nEXCEPTIONS USED (1)\n");
	inst = at(text, "\nINSTALLED, per unit (2)\n");
	cover = at(text, "\nThis summary is for reading");
	page = at(text, "\f");
	assert_true(at(text, "2 installed") < fails);
	assert_true(fails < exc && exc < inst && inst < cover &&
		    cover < page);

	/* What failed or was refused: cause, then rule and place, then who. */
	assert_true(at(text, "  bundle REFUSED: tx200-app 2.5.0\n      the "
			     "image's SHA-256 is not the one its manifest "
			     "names: sha256 is 00,\n      manifest says "
			     "11\\x0afake line\n      rule images, at "
			     "/media/usb0/tx200-app-2.5.0/images/app.bin\n"
			     "      by bo, session S-2, event 7\n") < exc);
	assert_true(at(text, "  install FAILED on SN-0002\n      device did "
			     "not answer in time\n      rule device, at\n"
			     "      serial:/dev/serial/by-id/usb-FTDI_") < exc);
	/* A sign-in names the id as typed, not who was signed in. */
	assert_true(at(text, "  sign-in REFUSED\n      unknown technician or "
			     "wrong PIN\n      rule pin\n      technician "
			     "mallory, session S-3, event 10\n") < exc);
	assert_true(at(text, "  technician LOCKED OUT\n      failures=5, "
			     "until=2026-11-21T07:00:00Z\n") < exc);
	assert_true(at(text, "  widget-failed\n      part=fan 2\n") < exc);
	assert_true(fails < at(text, "bundle REFUSED"));

	/* Every exception: the token, device, checks waived, reason, issuer. */
	assert_true(exc < at(text, "Z  token 5f0c2a9e41d37b86a0e4c1d2b3f4a5e6 "
				   "on SN-0001\n      waives    downgrade\n"
				   "      reason    CVE-2026-1234 field fix, "
				   "ticket OPS-881\n      issuer    "
				   "exception-1\n"));
	assert_true(at(text, "issuer    exception-1") < inst);

	/* What was installed, per unit, the downgrade and its token named. */
	assert_true(inst < at(text, "  SN-0001: tx200-app 2.2.0 (sequence 40)\n"
				    "      proof device-sha256, 2026-"));
	assert_true(inst < at(text, "Z\n      DOWNGRADE from sequence 42\n"
				    "      under exception token "
				    "5f0c2a9e41d37b86a0e4c1d2b3f4a5e6\n      "
				    "by ana, session S-1, event 3\n"));
	assert_true(inst < at(text, "  SN-0003: tx200-app 2.4.1 (sequence 42)\n"
				    "      proof device-signed, 2026-"));
	assert_true(inst < at(text, "Z\n      by ana, session S-1, event 4\n"));
	assert_true(at(text, "SN-0003: tx200-app") < cover);

	/* Every line of the summary fits 80 columns; none is made up. */
	col = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '\n') {
			col = 0;
			continue;
		}
		if ((*p & 0xc0) != 0x80 && ++col > 80)
			fail_msg("a line passes 80 columns at byte %zu: %.90s",
				 (size_t)((const char *)p - text),
				 (const char *)p - 80);
	}
	assert_null(strstr(text, "\nfake line"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(verify_lists_each_session_with_who_what_authority_and_result),
		T(summary_leads_with_failures_and_exceptions_then_installs),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
