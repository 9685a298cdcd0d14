/* station/signin.c: the sign-in guard.  The policy half is pure (events
 * and the clock in, a decision out); stn_signin_attempt is the one place
 * that reads and writes the journal for it. */
#include "station/signin.h"

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
#include "station/session.h"

/* The rule of a signin-refused event that counts as a failure; a refusal
 * for a lock or a delay in force checked no PIN and counts nothing. */
#define RULE_PIN "pin"
#define RULE_LOCKED "locked"
#define RULE_DELAY "delay"

int64_t stn_signin_delay(unsigned failures)
{
	int64_t s = 1;

	if (failures == 0)
		return 0;
	for (unsigned i = 1; i < failures && s < STN_SIGNIN_DELAY_CAP; i++)
		s *= 2;
	return s < STN_SIGNIN_DELAY_CAP ? s : STN_SIGNIN_DELAY_CAP;
}

void stn_signin_init(struct stn_signin_state *st)
{
	memset(st, 0, sizeof(*st));
}

void stn_signin_note(struct stn_signin_state *st, const struct stn_event *e)
{
	const char *v;

	if (stn_ev_is(e->type, STN_EV_SIGNIN_REFUSED)) {
		v = stn_ev_field(e, "rule");
		if (!v || strcmp(v, RULE_PIN) != 0)
			return;
		st->failures++;
		st->last_failure = e->time;
	} else if (stn_ev_is(e->type, STN_EV_TECHNICIAN_LOCKED)) {
		int64_t until = e->time;
		v = stn_ev_field(e, "until");
		if (!v || cu_time_parse(v, &until) != 0 || until < e->time)
			until = e->time;
		st->failures = 0;
		st->last_failure = 0;
		st->locked_at = e->time;
		st->locked_until = until;
	} else if (stn_ev_is(e->type, STN_EV_SESSION_START)) {
		v = stn_ev_field(e, "command");
		if (!v || strcmp(v, STN_SIGNIN_COMMAND) != 0)
			return;
		st->failures = 0;
		st->last_failure = 0;
	}
}

enum stn_signin_verdict stn_signin_check(const struct stn_signin_policy *p,
					 const struct stn_signin_state *st,
					 int64_t now, int64_t *until)
{
	int64_t end;

	if (st->locked_at) {
		end = st->locked_at + p->lockout;
		if (st->locked_until < end)
			end = st->locked_until;
		if (now < end) {
			if (until)
				*until = end;
			return STN_SIGNIN_LOCKED;
		}
	}
	if (st->failures) {
		end = st->last_failure + stn_signin_delay(st->failures);
		if (now < end) {
			if (until)
				*until = end;
			return STN_SIGNIN_WAIT;
		}
	}
	if (until)
		*until = now;
	return STN_SIGNIN_OPEN;
}

int stn_signin_fail(const struct stn_signin_policy *p,
		    struct stn_signin_state *st, int64_t now)
{
	st->failures++;
	st->last_failure = now;
	if (st->failures < p->attempts)
		return 0;
	st->failures = 0;
	st->last_failure = 0;
	st->locked_at = now;
	st->locked_until = now + p->lockout;
	return 1;
}

static const char *plural(int64_t n)
{
	return n == 1 ? "" : "s";
}

void stn_signin_words(const struct stn_signin_result *r, const char *id,
		      int64_t now, char *out, size_t cap, int *waiting)
{
	int64_t left = r->until > now ? r->until - now : 0;

	*waiting = left > 0;
	if (r->verdict == STN_SIGNIN_LOCKED) {
		int64_t min = (left + 59) / 60;
		if (!left)
			snprintf(out, cap, "The lock on id %.16s is over: you "
				 "may sign in again.", id);
		else
			snprintf(out, cap, "Id %.16s is locked for %lld more "
				 "minute%s: too many failed tries.", id,
				 (long long)min, plural(min));
		return;
	}
	if (r->refused && left)
		snprintf(out, cap, "Sign-in refused: unknown id or wrong PIN. "
			 "Next try in %lld second%s.", (long long)left,
			 plural(left));
	else if (r->refused)
		snprintf(out, cap, "Sign-in refused: unknown id or wrong PIN. "
			 "You may try again.");
	else if (left)
		snprintf(out, cap, "Too soon after a failed sign-in: next try "
			 "in %lld second%s.", (long long)left, plural(left));
	else
		snprintf(out, cap, "You may try again.");
}

/* --- one attempt: the journal's part -------------------------------- */

static int note_cb(void *ctx, const struct stn_event *e)
{
	stn_signin_note(ctx, e);
	return 0;
}

/* The id's history: its refusals, its locks and its text UI sign-ins,
 * through the journal's index on (technician, value). */
static int load_history(struct stn_session *s, const char *id,
			struct stn_signin_state *st, struct stn_diag *d)
{
	const char *types[] = {stn_ev_name(STN_EV_SIGNIN_REFUSED),
			       stn_ev_name(STN_EV_TECHNICIAN_LOCKED),
			       stn_ev_name(STN_EV_SESSION_START)};
	struct stn_journal_filter f = {
		.types = types,
		.ntypes = STN_EV_N(types),
		.fields = {{"technician", NULL, id}},
	};

	stn_signin_init(st);
	return stn_session_journal_query(s, &f, note_cb, st, d);
}

/* A PIN record that matches nothing, with the cost of the configured
 * ones, so that an unknown id costs what a wrong PIN costs: the first
 * configured record's iteration count, else the default. */
static void dummy_record(const struct stn_config *cfg, char *out, size_t cap)
{
	unsigned long iter = CU_PIN_ITERATIONS;

	for (size_t i = 0; i < cfg->ntechs; i++) {
		const char *p = cfg->techs[i].pin;
		if (p && strncmp(p, "pbkdf2-sha256$", 14) == 0) {
			iter = strtoul(p + 14, NULL, 10);
			break;
		}
	}
	snprintf(out, cap, "pbkdf2-sha256$%lu$%032d$%064d", iter, 0, 0);
}

static int journal_refusal(struct stn_session *s, const char *id,
			   unsigned failures, const char *rule,
			   const char *reason, struct stn_diag *d)
{
	char n[16];

	snprintf(n, sizeof(n), "%u", failures);
	const struct stn_field f[] = {{"technician", id}, {"failures", n},
				      {"rule", rule}, {"reason", reason}};
	return stn_session_log(s, STN_EV_SIGNIN_REFUSED, f, STN_EV_N(f), d);
}

int stn_signin_attempt(const char *config_path, const struct stn_config *cfg,
		       const char *id, const char *pin, int64_t now,
		       struct stn_signin_result *r, struct stn_diag *d)
{
	const struct stn_technician *t = stn_config_technician(cfg, id);
	const struct stn_signin_policy p = {cfg->signin_attempts,
					    cfg->signin_lockout};
	struct stn_signin_state st;
	struct stn_session *s = NULL;
	char dummy[CU_PIN_SPEC_MAX], ts[CU_TIME_LEN + 1], why[160];
	int rc, ok;

	memset(r, 0, sizeof(*r));
	if (t && !t->pin)
		return 0; /* signs in with the id alone, as configured */
	if ((rc = stn_session_open(config_path, NULL, "signin",
				   STN_SESSION_QUIET, &s, d)))
		return rc;
	if ((rc = load_history(s, id, &st, d)))
		goto out;
	r->failures = st.failures;
	r->verdict = stn_signin_check(&p, &st, now, &r->until);
	if (r->verdict != STN_SIGNIN_OPEN) {
		cu_time_format(r->until, ts);
		snprintf(why, sizeof(why), "%s until %s",
			 r->verdict == STN_SIGNIN_LOCKED ? "locked"
							 : "too soon, wait",
			 ts);
		rc = journal_refusal(s, id, st.failures,
				     r->verdict == STN_SIGNIN_LOCKED
					     ? RULE_LOCKED
					     : RULE_DELAY,
				     why, d);
		goto out;
	}
	/* The same PBKDF2 work whether or not the id exists. */
	{
		struct stn_diag pd;
		stn_diag_init(&pd);
		dummy_record(cfg, dummy, sizeof(dummy));
		ok = cu_pin_check(t ? t->pin : dummy, pin, &pd) == 0 && t;
	}
	if (ok)
		goto out;
	r->refused = 1;
	r->locked_now = stn_signin_fail(&p, &st, now);
	r->failures = r->locked_now ? p.attempts : st.failures;
	if ((rc = journal_refusal(s, id, r->failures, RULE_PIN,
				  "unknown id or wrong PIN", d)))
		goto out;
	if (r->locked_now) {
		char n[16];
		r->verdict = STN_SIGNIN_LOCKED;
		r->until = st.locked_until;
		cu_time_format(r->until, ts);
		snprintf(n, sizeof(n), "%u", r->failures);
		const struct stn_field f[] = {
			{"technician", id}, {"failures", n}, {"until", ts}};
		rc = stn_session_log(s, STN_EV_TECHNICIAN_LOCKED, f,
				     STN_EV_N(f), d);
	} else {
		/* From the refusal's journaled time (the clock read as it
		 * was appended, after `now`): the screen's countdown never
		 * ends before the delay the journal will enforce. */
		int64_t logged = (int64_t)time(NULL);
		r->until = (logged > now ? logged : now) + stn_signin_delay(st.failures);
	}
out:
	stn_session_close(s, rc);
	return rc;
}
