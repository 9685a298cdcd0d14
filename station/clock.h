/* station/clock.h: the trusted-time floor (formats §6).  The station keeps
 * the latest of its own clock readings and every signed time it has
 * accepted; a session whose clock is more than 5 minutes behind that floor
 * is refused until the clock is set right, so rolling the clock back
 * cannot revive an expired bundle, token or certificate. */
#ifndef STN_CLOCK_H
#define STN_CLOCK_H

#include <stdint.h>

struct stn_diag;
struct stn_journal;

#define STN_CLOCK_SKEW 300 /* seconds the clock may lag the floor */

/*
 * At session start: the floor is the later of DATA/time-floor and the
 * newest journal event (so deleting the file does not lower it).  When
 * `now` is more than 5 minutes behind the floor the result is STN_E_CLOCK
 * naming both times; otherwise the floor is raised to `now` and kept
 * (written atomically, under DATA/time-floor.lock, so concurrent sessions
 * neither fail nor lower it).  *floor_out (may be NULL) receives the floor
 * in force.  A floor file that is there but unusable (empty, cut short,
 * garbled: what a crash can leave) is not a lock-out: the floor is rebuilt
 * from the journal's newest event and the clock, written back, and
 * `notice` (may be NULL; else initialised by the caller) receives what
 * happened, also when the result is STN_E_CLOCK; the caller journals it
 * (time-floor-recovered).  Errors also: STN_E_IO (the floor cannot be
 * written or locked), STN_E_JOURNAL.
 */
int stn_clock_check(const char *data_dir, struct stn_journal *j, int64_t now,
		    int64_t *floor_out, struct stn_diag *notice,
		    struct stn_diag *d);

/* Raise the floor to t (a signed time the station accepted) when later,
 * under the same lock.  Errors: STN_E_IO (including a floor file damaged
 * since the session start: fail closed). */
int stn_clock_raise(const char *data_dir, int64_t t, struct stn_diag *d);

/*
 * A --since or --until argument (spec/cli.md): an RFC 3339 UTC time
 * ("2026-12-04T10:00:00Z"), a date ("2026-12-04") or a duration back from
 * `now` ("30m", "24h", "7d"; units of cu_duration_parse).  A date is its
 * first second (00:00:00Z) when end_of_day is 0 and its last second
 * (23:59:59Z) when 1, so `--since D --until D` covers the whole day D with
 * the journal's inclusive bounds.  *out gets seconds since the epoch, at
 * least 1 (0 means "unbounded" in filters).  Returns 0, or -1 when s is
 * none of these forms or names a time before 1970-01-01T00:00:01Z.
 */
int stn_time_arg_parse(const char *s, int64_t now, int end_of_day,
		       int64_t *out);

#endif
