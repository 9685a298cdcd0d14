/* tests/test_signin.c: the sign-in guard (station/signin.h).  The policy
 * from a history of events and the clock: the growing delay, the lock
 * after signin-attempts failures and its end, what clears the count.
 * Then whole attempts against a real journal: an unknown id and a wrong
 * PIN are refused alike and journaled, the lock is journaled and holds
 * for a later attempt that reads the journal afresh (a restart), and the
 * technician's words fit the screen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "custody/pin.h"
#include "station/base/error.h"
#include "station/base/rfc3339.h"
#include "station/config.h"
#include "station/events.h"
#include "station/journal.h"
#include "station/signin.h"
#include "tests/helpers.h"

/* 2026-11-20T10:00:00Z */
#define T0 INT64_C(1795168800)

static const struct stn_signin_policy policy = {3, 900};

/* An event as the journal hands it back: type, time, fields. */
static struct stn_event ev(const char *type, int64_t time,
			   const struct stn_field *f, size_t n)
{
	struct stn_event e = {0};

	e.type = type;
	e.time = time;
	e.fields = f;
	e.nfields = n;
	return e;
}

static void delay_grows_from_one_second_and_is_capped(void **state)
{
	static const int64_t want[] = {0, 1, 2, 4, 8, 16, 30, 30};

	(void)state;
	for (unsigned i = 0; i < STN_EV_N(want); i++)
		assert_int_equal(stn_signin_delay(i), want[i]);
	assert_int_equal(stn_signin_delay(1000), STN_SIGNIN_DELAY_CAP);
}

static void a_failure_makes_the_next_attempt_wait_its_delay(void **state)
{
	struct stn_signin_state st;
	int64_t until = 0;

	(void)state;
	stn_signin_init(&st);
	assert_int_equal(stn_signin_check(&policy, &st, T0, &until),
			 STN_SIGNIN_OPEN);
	assert_int_equal(stn_signin_fail(&policy, &st, T0), 0);
	assert_int_equal(stn_signin_check(&policy, &st, T0, &until),
			 STN_SIGNIN_WAIT);
	assert_int_equal(until, T0 + 1);
	assert_int_equal(stn_signin_check(&policy, &st, T0 + 1, NULL),
			 STN_SIGNIN_OPEN);
	assert_int_equal(stn_signin_fail(&policy, &st, T0 + 1), 0);
	assert_int_equal(stn_signin_check(&policy, &st, T0 + 2, &until),
			 STN_SIGNIN_WAIT);
	assert_int_equal(until, T0 + 3);
}

static void the_policy_number_of_failures_locks_for_the_lockout(void **state)
{
	struct stn_signin_state st;
	int64_t until = 0;

	(void)state;
	stn_signin_init(&st);
	assert_int_equal(stn_signin_fail(&policy, &st, T0), 0);
	assert_int_equal(stn_signin_fail(&policy, &st, T0 + 10), 0);
	assert_int_equal(stn_signin_fail(&policy, &st, T0 + 20), 1);
	assert_int_equal(stn_signin_check(&policy, &st, T0 + 20, &until),
			 STN_SIGNIN_LOCKED);
	assert_int_equal(until, T0 + 20 + 900);
	assert_int_equal(stn_signin_check(&policy, &st, T0 + 919, NULL),
			 STN_SIGNIN_LOCKED);
	/* Over: a fresh count, no delay left from before the lock. */
	assert_int_equal(stn_signin_check(&policy, &st, T0 + 920, NULL),
			 STN_SIGNIN_OPEN);
	assert_int_equal(st.failures, 0);
}

static void history_counts_pin_refusals_until_a_text_ui_sign_in(void **state)
{
	const struct stn_field pin[] = {{"technician", "ana"},
					{"failures", "1"},
					{"rule", "pin"},
					{"reason", "unknown id or wrong PIN"}};
	const struct stn_field locked[] = {{"technician", "ana"},
					   {"failures", "2"},
					   {"rule", "locked"},
					   {"reason", "locked"}};
	const struct stn_field ui[] = {{"station", "S"}, {"site", "s"},
				       {"command", "ui"},
				       {"technician", "ana"}};
	const struct stn_field push[] = {{"station", "S"}, {"site", "s"},
					 {"command", "push"},
					 {"technician", "ana"}};
	struct stn_signin_state st;
	struct stn_event e;

	(void)state;
	stn_signin_init(&st);
	e = ev("signin-refused", T0, pin, STN_EV_N(pin));
	stn_signin_note(&st, &e);
	e = ev("signin-refused", T0 + 5, pin, STN_EV_N(pin));
	stn_signin_note(&st, &e);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.last_failure, T0 + 5);
	/* A refusal for a lock or a delay checked no PIN: not counted. */
	e = ev("signin-refused", T0 + 6, locked, STN_EV_N(locked));
	stn_signin_note(&st, &e);
	assert_int_equal(st.failures, 2);
	/* The command line names a technician without a PIN: no reset. */
	e = ev("session-start", T0 + 7, push, STN_EV_N(push));
	stn_signin_note(&st, &e);
	assert_int_equal(st.failures, 2);
	e = ev("session-start", T0 + 8, ui, STN_EV_N(ui));
	stn_signin_note(&st, &e);
	assert_int_equal(st.failures, 0);
	assert_int_equal(stn_signin_check(&policy, &st, T0 + 8, NULL),
			 STN_SIGNIN_OPEN);
}

static void a_journaled_lock_holds_and_a_lower_lockout_shortens_it(
	void **state)
{
	char until[CU_TIME_LEN + 1];
	struct stn_signin_state st;
	struct stn_event e;
	int64_t end = 0;

	(void)state;
	cu_time_format(T0 + 900, until);
	const struct stn_field f[] = {{"technician", "ana"},
				      {"failures", "3"},
				      {"until", until}};
	stn_signin_init(&st);
	e = ev("technician-locked", T0, f, STN_EV_N(f));
	stn_signin_note(&st, &e);
	assert_int_equal(stn_signin_check(&policy, &st, T0 + 899, &end),
			 STN_SIGNIN_LOCKED);
	assert_int_equal(end, T0 + 900);
	assert_int_equal(stn_signin_check(&policy, &st, T0 + 900, NULL),
			 STN_SIGNIN_OPEN);
	/* The administrator lowered signin-lockout to one minute. */
	const struct stn_signin_policy short_lock = {3, 60};
	assert_int_equal(stn_signin_check(&short_lock, &st, T0 + 59, NULL),
			 STN_SIGNIN_LOCKED);
	assert_int_equal(stn_signin_check(&short_lock, &st, T0 + 60, NULL),
			 STN_SIGNIN_OPEN);
}

static void words_count_down_and_fit_the_screen(void **state)
{
	struct stn_signin_result r = {0};
	const char *id = "an-id-of-thirty-two-characters-x";
	char line[200];
	int waiting;

	(void)state;
	r.refused = 1;
	r.failures = 2;
	r.until = T0 + 2;
	stn_signin_words(&r, id, T0, line, sizeof(line), &waiting);
	assert_string_equal(line, "Sign-in refused: unknown id or wrong PIN. "
				  "Next try in 2 seconds.");
	assert_true(waiting);
	stn_signin_words(&r, id, T0 + 1, line, sizeof(line), &waiting);
	assert_non_null(strstr(line, "Next try in 1 second."));
	stn_signin_words(&r, id, T0 + 2, line, sizeof(line), &waiting);
	assert_false(waiting);
	assert_non_null(strstr(line, "You may try again."));

	r.verdict = STN_SIGNIN_LOCKED;
	r.locked_now = 1;
	r.until = T0 + 86400;
	stn_signin_words(&r, id, T0, line, sizeof(line), &waiting);
	assert_string_equal(line, "Id an-id-of-thirty- is locked for 1440 more "
				  "minutes: too many failed tries.");
	assert_true(strlen(line) <= 78);
	stn_signin_words(&r, id, T0 + 86400 - 30, line, sizeof(line),
			 &waiting);
	assert_non_null(strstr(line, "for 1 more minute:"));

	r = (struct stn_signin_result){.verdict = STN_SIGNIN_WAIT,
				       .until = T0 + 16};
	stn_signin_words(&r, id, T0, line, sizeof(line), &waiting);
	assert_string_equal(line, "Too soon after a failed sign-in: next try "
				  "in 16 seconds.");
}

/* --- whole attempts against a journal ------------------------------- */

struct fx {
	char *dir;
	char conf[4300];
	struct stn_config *cfg;
};

static int setup_station(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char cmd[4600], pin[CU_PIN_SPEC_MAX], text[8000];
	struct stn_diag d;

	stn_diag_init(&d);
	if (!f)
		return -1;
	f->dir = th_tempdir();
	/* One self-signed root: the session loads a trust store. */
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:P-256 -nodes -subj /CN=signin-root "
		 "-days 30 -keyout '%s/root.key' -out '%s/roots.pem' "
		 ">/dev/null 2>&1", f->dir, f->dir);
	if (system(cmd) != 0 || cu_pin_make("1234", 1000, pin, &d) != 0)
		return -1;
	snprintf(text, sizeof(text),
		 "[station]\nid = STN-0042\nsite = plant-7\ndata = %s/data\n"
		 "signin-attempts = 3\nsignin-lockout = 2m\n\n"
		 "[trust]\nanchors = %s/roots.pem\n\n"
		 "[technician ana]\nname = Ana Lima\npin = %s\n\n"
		 "[technician bo]\nname = Bo\n",
		 f->dir, f->dir, pin);
	snprintf(f->conf, sizeof(f->conf), "%s/station.conf", f->dir);
	th_write_str(f->conf, text);
	if (stn_config_load(f->conf, &f->cfg, &d) != 0) {
		fprintf(stderr, "config: %s\n", d.text);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown_station(void **state)
{
	struct fx *f = *state;

	stn_config_free(f->cfg);
	th_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

struct tally {
	unsigned refused_pin, refused_locked, locked;
	char last_failures[16], last_tech[40];
};

static int tally_cb(void *ctx, const struct stn_event *e)
{
	struct tally *t = ctx;
	const char *rule = stn_ev_field(e, "rule");

	if (stn_ev_is(e->type, STN_EV_SIGNIN_REFUSED)) {
		if (rule && strcmp(rule, "pin") == 0)
			t->refused_pin++;
		else
			t->refused_locked++;
		snprintf(t->last_failures, sizeof(t->last_failures), "%s",
			 stn_ev_field(e, "failures"));
		snprintf(t->last_tech, sizeof(t->last_tech), "%s",
			 stn_ev_field(e, "technician"));
	} else if (stn_ev_is(e->type, STN_EV_TECHNICIAN_LOCKED)) {
		t->locked++;
	}
	return 0;
}

static struct tally journal_tally(const struct fx *f)
{
	struct tally t = {0};
	struct stn_journal *j;
	char path[4300];
	struct stn_diag d;

	stn_diag_init(&d);
	snprintf(path, sizeof(path), "%s/data/journal.db", f->dir);
	assert_int_equal(stn_journal_open(path, &j, &d), 0);
	assert_int_equal(stn_journal_each(j, 0, tally_cb, &t, &d), 0);
	stn_journal_close(j);
	return t;
}

/* The time of the newest event: "now" for a test that must fall inside
 * the delay that event started. */
static int64_t newest_time(const struct fx *f)
{
	struct stn_journal *j;
	char path[4300];
	struct stn_diag d;
	int64_t t = 0;
	int found = 0;

	stn_diag_init(&d);
	snprintf(path, sizeof(path), "%s/data/journal.db", f->dir);
	assert_int_equal(stn_journal_open(path, &j, &d), 0);
	assert_int_equal(stn_journal_newest_time(j, &t, &found, &d), 0);
	stn_journal_close(j);
	assert_true(found);
	return t;
}

static struct stn_signin_result attempt(const struct fx *f, const char *id,
					const char *pin, int64_t now)
{
	struct stn_signin_result r;
	struct stn_diag d;

	stn_diag_init(&d);
	if (stn_signin_attempt(f->conf, f->cfg, id, pin, now, &r, &d) != 0)
		fail_msg("attempt: %s: %s", d.where, d.text);
	return r;
}

static void unknown_id_and_wrong_pin_are_refused_alike_and_journaled(
	void **state)
{
	struct fx *f = *state;
	int64_t now = (int64_t)time(NULL);
	struct stn_signin_result u, w;
	char lu[200], lw[200];
	int waiting;
	struct tally t;

	u = attempt(f, "mallory", "1234", now);
	w = attempt(f, "ana", "9999", now);
	assert_true(u.refused);
	assert_true(w.refused);
	assert_int_equal(u.verdict, w.verdict);
	assert_int_equal(u.failures, 1);
	assert_int_equal(w.failures, 1);
	assert_int_equal(u.until, w.until);
	stn_signin_words(&u, "mallory", now, lu, sizeof(lu), &waiting);
	stn_signin_words(&w, "ana", now, lw, sizeof(lw), &waiting);
	assert_string_equal(lu, lw);
	t = journal_tally(f);
	assert_int_equal(t.refused_pin, 2);
	assert_string_equal(t.last_tech, "ana");
	assert_string_equal(t.last_failures, "1");
	/* A configured technician without a PIN signs in with the id. */
	u = attempt(f, "bo", "", now);
	assert_false(u.refused);
	assert_int_equal(u.verdict, STN_SIGNIN_OPEN);
	assert_int_equal(journal_tally(f).refused_pin, 2);
}

static void the_lock_is_journaled_and_holds_for_a_later_attempt(
	void **state)
{
	struct fx *f = *state;
	int64_t now = newest_time(f);
	struct stn_signin_result r;
	struct tally t;

	/* Too soon after the failure: refused unchecked, not counted. */
	r = attempt(f, "ana", "9999", now);
	assert_int_equal(r.verdict, STN_SIGNIN_WAIT);
	assert_false(r.refused);
	assert_int_equal(journal_tally(f).refused_pin, 2);
	r = attempt(f, "ana", "9999", now + 10);
	assert_true(r.refused);
	assert_int_equal(r.failures, 2);
	r = attempt(f, "ana", "9999", now + 20);
	assert_true(r.refused);
	assert_true(r.locked_now);
	assert_int_equal(r.verdict, STN_SIGNIN_LOCKED);
	t = journal_tally(f);
	assert_int_equal(t.locked, 1);
	assert_string_equal(t.last_failures, "3");
	/* Each attempt reads the journal afresh, as after a restart: the
	 * right PIN does not open a locked id, and that is journaled. */
	r = attempt(f, "ana", "1234", now + 30);
	assert_int_equal(r.verdict, STN_SIGNIN_LOCKED);
	assert_false(r.refused);
	t = journal_tally(f);
	assert_int_equal(t.refused_locked, 2); /* the WAIT and this one */
	/* After signin-lockout (2m) the right PIN is let in. */
	r = attempt(f, "ana", "1234", now + 200);
	assert_int_equal(r.verdict, STN_SIGNIN_OPEN);
	assert_false(r.refused);
}

static void an_unknown_id_is_locked_like_a_known_one(void **state)
{
	struct fx *f = *state;
	int64_t now = (int64_t)time(NULL);
	struct stn_signin_result r;

	/* mallory failed once in the first test; two more lock it. */
	r = attempt(f, "mallory", "1", now + 10);
	assert_true(r.refused);
	r = attempt(f, "mallory", "2", now + 20);
	assert_true(r.locked_now);
	r = attempt(f, "mallory", "3", now + 30);
	assert_int_equal(r.verdict, STN_SIGNIN_LOCKED);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(delay_grows_from_one_second_and_is_capped),
		cmocka_unit_test(
			a_failure_makes_the_next_attempt_wait_its_delay),
		cmocka_unit_test(
			the_policy_number_of_failures_locks_for_the_lockout),
		cmocka_unit_test(
			history_counts_pin_refusals_until_a_text_ui_sign_in),
		cmocka_unit_test(
			a_journaled_lock_holds_and_a_lower_lockout_shortens_it),
		cmocka_unit_test(words_count_down_and_fit_the_screen),
	};
	/* In order: each builds on the journal the one before left. */
	const struct CMUnitTest journal[] = {
		cmocka_unit_test(
			unknown_id_and_wrong_pin_are_refused_alike_and_journaled),
		cmocka_unit_test(
			the_lock_is_journaled_and_holds_for_a_later_attempt),
		cmocka_unit_test(an_unknown_id_is_locked_like_a_known_one),
	};
	int fails = cmocka_run_group_tests(pure, NULL, NULL);

	return fails + cmocka_run_group_tests(journal, setup_station,
					      teardown_station);
}
