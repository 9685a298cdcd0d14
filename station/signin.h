/* station/signin.h: the text UI's sign-in guard (issue 15 item 4).  A
 * pure policy (how long to wait after failures, when an id is locked)
 * fed with one technician id's past events, and one attempt that reads
 * that history from the journal, checks the PIN and journals a refusal.
 * An unknown id is treated exactly as a known one whose PIN is wrong:
 * same checks, same PBKDF2 work, same words, same lock. */
#ifndef STN_SIGNIN_H
#define STN_SIGNIN_H

#include <stddef.h>
#include <stdint.h>

struct stn_config;
struct stn_diag;
struct stn_event;

/* The session-start command of a text UI sign-in: only such a start (a
 * PIN that matched) clears an id's failures; the command line names a
 * technician without a PIN and clears nothing. */
#define STN_SIGNIN_COMMAND "ui"

/* The growing delay: 1 s after the first failure, doubling, at most
 * STN_SIGNIN_DELAY_CAP (a technician who mistyped twice waits 2 s; a
 * guesser is slowed long before the lock). */
#define STN_SIGNIN_DELAY_CAP 30

/* What one id's history says, built with stn_signin_note. */
struct stn_signin_state {
	unsigned failures;    /* refusals since the last success or lock */
	int64_t last_failure; /* time of the newest of them, 0 = none */
	int64_t locked_at;    /* the newest lock, 0 = never locked */
	int64_t locked_until; /* its end as journaled */
};

struct stn_signin_policy {
	unsigned attempts; /* [station] signin-attempts: failures to lock */
	int64_t lockout;   /* [station] signin-lockout, seconds */
};

enum stn_signin_verdict {
	STN_SIGNIN_OPEN = 0, /* an attempt is accepted now */
	STN_SIGNIN_WAIT,     /* the delay after a failure is not over */
	STN_SIGNIN_LOCKED,   /* the id is locked */
};

/* Seconds to wait after `failures` consecutive failures: 0 for none,
 * then 1, 2, 4 ... capped at STN_SIGNIN_DELAY_CAP. */
int64_t stn_signin_delay(unsigned failures);

void stn_signin_init(struct stn_signin_state *st);
/* Feeds one past event of the id, in journal order: signin-refused
 * counts a failure, technician-locked starts a lock and clears the
 * count, a session-start with command STN_SIGNIN_COMMAND clears it;
 * any other event is ignored.  A malformed `until` is taken as the
 * lock time plus nothing (the policy's lockout still applies). */
void stn_signin_note(struct stn_signin_state *st, const struct stn_event *e);

/*
 * Whether an attempt is accepted at `now`.  LOCKED while now is before
 * the lock's end: the journaled until, or the lock time plus the
 * policy's lockout when that is sooner (an administrator shortens every
 * lock by lowering signin-lockout).  WAIT while now is before the last
 * failure plus stn_signin_delay(failures).  *until (may be NULL) is when
 * that ends, else now.
 */
enum stn_signin_verdict stn_signin_check(const struct stn_signin_policy *p,
					 const struct stn_signin_state *st,
					 int64_t now, int64_t *until);

/* Records a failure at now in st.  Returns 1 when it reaches the
 * policy's attempts: the id is then locked from now to now + lockout
 * (st says so, with failures back to 0); 0 otherwise. */
int stn_signin_fail(const struct stn_signin_policy *p,
		    struct stn_signin_state *st, int64_t now);

/* What one attempt came to. */
struct stn_signin_result {
	enum stn_signin_verdict verdict; /* OPEN with refused = 0: signed in */
	int refused;      /* the id or PIN was wrong (journaled) */
	int locked_now;   /* this refusal locked the id (journaled) */
	unsigned failures; /* consecutive failures, this one included */
	int64_t until;     /* WAIT or LOCKED: when it ends; after a refusal:
			    * when the next attempt is accepted */
};

/*
 * What the technician reads after an attempt that was not let in, at
 * `now` (a countdown: called again as time passes), one line of at most
 * 78 columns into out.  The same words for an unknown id and a wrong
 * PIN; id is shown (cut to 16 characters) only when it is locked.
 * *waiting = 1 while the next attempt is not yet accepted.
 */
void stn_signin_words(const struct stn_signin_result *r, const char *id,
		      int64_t now, char *out, size_t cap, int *waiting);

/*
 * One sign-in attempt by `id` with `pin` at `now`.  A configured
 * technician without a PIN is accepted at once and nothing is read.
 * Otherwise a quiet session on config_path (no session-start, like the
 * journaling of session-refused) reads the id's history, refuses a
 * locked id or one still in its delay (journaled as signin-refused, not
 * counted), then runs the PIN through PBKDF2 against the technician's
 * record, or for an unknown id against a record of the same cost that
 * matches nothing, and journals a failure as signin-refused (technician,
 * failures) and a lock as technician-locked (technician, failures,
 * until).  0 with *r filled, or the error of the session or journal (the
 * caller refuses the sign-in: a refusal that cannot be journaled must
 * not be free to repeat).
 */
int stn_signin_attempt(const char *config_path, const struct stn_config *cfg,
		       const char *id, const char *pin, int64_t now,
		       struct stn_signin_result *r, struct stn_diag *d);

#endif
