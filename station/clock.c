/* station/clock.c: the trusted-time floor, kept in DATA/time-floor as one
 * text record line ("floor = 2026-11-20T10:00:00Z").  Several station
 * processes may start at once (a script running verifies side by side):
 * every read-modify-write of the floor holds DATA/time-floor.lock, and
 * every write goes to a temp file of its own, fsynced, renamed into place,
 * with the directory fsynced, so the floor never goes down and a crash
 * leaves either the old floor or the new one. */
#include "station/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "custody/record.h"
#include "station/base/rfc3339.h"
#include "station/base/error.h"
#include "station/base/fileio.h"
#include "station/journal.h"

#define PATH_CAP 4200

static int floor_path(const char *data_dir, const char *suffix, char *buf,
		      size_t cap)
{
	int n = snprintf(buf, cap, "%s/time-floor%s", data_dir, suffix);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Serialises the floor's read-modify-write across processes; released by
 * closing the returned descriptor.  Threads of one process are already
 * serialised by the session lock. */
static int floor_lock(const char *data_dir, int *fd_out, struct stn_diag *d)
{
	char path[PATH_CAP];
	int fd;

	if (floor_path(data_dir, ".lock", path, sizeof(path)))
		return stn_fail(d, STN_E_IO, data_dir, "path too long");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return stn_fail(d, STN_E_IO, path, "cannot open: %s",
				strerror(errno));
	while (flock(fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		int rc = stn_fail(d, STN_E_IO, path, "flock: %s",
				  strerror(errno));
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

/* Reads the floor; a missing file is floor 0 (a new station).  Any other
 * trouble is returned with d saying what it was. */
static int floor_read(const char *path, int64_t *out, struct stn_diag *d)
{
	static const struct cu_key_rule keys[] = {{"floor", CU_REQUIRED},
						  {NULL, 0}};
	static const struct cu_section_rule rules[] = {
		{"", CU_NO_LABEL, 1, 1, keys}, {NULL, 0, 0, 0, NULL}};
	struct cu_record *r = NULL;
	int rc;

	if (access(path, F_OK) != 0 && errno == ENOENT) {
		*out = 0;
		return 0;
	}
	rc = cu_record_load(path, &r, d);
	if (rc == 0)
		rc = cu_record_check(r, rules, NULL, d);
	if (rc == 0)
		rc = cu_get_time(r, cu_record_section(r, 0), "floor", out, d);
	cu_record_free(r);
	/* A damaged floor must not silently become "no floor". */
	return rc ? stn_recode(d, STN_E_IO) : 0;
}

/* Replaces the floor file durably (station/base/fileio.h): a temp file of
 * this writer's own, the whole line, fsync, rename, then fsync of the
 * directory so the rename itself survives a power cut. */
static int floor_write(const char *path, int64_t t, struct stn_diag *d)
{
	char line[64], ts[CU_TIME_LEN + 1];
	int n;

	cu_time_format(t, ts);
	n = snprintf(line, sizeof(line), "floor = %s\n", ts);
	return stn_replace_durable(path, 0600, line, (size_t)n, d);
}

static int clock_check_locked(const char *path,
			      struct stn_journal *j, int64_t now,
			      int64_t *floor_out, struct stn_diag *notice,
			      struct stn_diag *d)
{
	char t1[CU_TIME_LEN + 1], t2[CU_TIME_LEN + 1];
	struct stn_diag why;
	int64_t kept = 0, floor, newest = 0;
	int rc, found = 0, damaged;

	stn_diag_init(&why);
	damaged = floor_read(path, &kept, &why) != 0;
	if (damaged)
		kept = 0;
	/* Events are stamped with the clock of their day: the newest one is
	 * a floor too, should the file be lost, replaced or damaged.  One
	 * indexed lookup, not a walk: journals grow to millions of events. */
	if (j && (rc = stn_journal_newest_time(j, &newest, &found, d)))
		return rc;
	floor = found && newest > kept ? newest : kept;
	if (damaged) {
		/* A crash (or a full disk) can leave the file empty or cut
		 * short; refusing every session after it would lock the
		 * station out for good.  The journal, hash-chained, is the
		 * better witness: rebuild the floor from it and say so. */
		cu_time_format(newest, t2);
		(void)stn_fail(notice, STN_E_IO, path,
			       "trusted-time floor file %s was unusable (%s); "
			       "rebuilt from the journal's newest event %s",
			       path, why.text[0] ? why.text : "unreadable",
			       found ? t2 : "(none yet) and the clock");
	}
	if (now < floor - STN_CLOCK_SKEW) {
		if (damaged && (rc = floor_write(path, floor, d)))
			return rc;
		cu_time_format(now, t1);
		cu_time_format(floor, t2);
		return stn_fail(d, STN_E_CLOCK, path,
				"station clock %s is more than 5 minutes "
				"behind the trusted-time floor %s: set the "
				"clock right before any session", t1, t2);
	}
	/* Write when the clock moved it, when the file is damaged, and
	 * whenever it is missing, so the floor is on disk even when the
	 * journal supplied it. */
	if (now > floor || damaged || access(path, F_OK) != 0) {
		if (now > floor)
			floor = now;
		if ((rc = floor_write(path, floor, d)))
			return rc;
	}
	if (floor_out)
		*floor_out = floor;
	return 0;
}

int stn_clock_check(const char *data_dir, struct stn_journal *j, int64_t now,
		    int64_t *floor_out, struct stn_diag *notice,
		    struct stn_diag *d)
{
	char path[PATH_CAP];
	int lock = -1, rc;

	if (floor_path(data_dir, "", path, sizeof(path)))
		return stn_fail(d, STN_E_IO, data_dir, "path too long");
	if ((rc = floor_lock(data_dir, &lock, d)))
		return rc;
	rc = clock_check_locked(path, j, now, floor_out, notice, d);
	close(lock);
	return rc;
}

int stn_clock_raise(const char *data_dir, int64_t t, struct stn_diag *d)
{
	char path[PATH_CAP];
	int64_t floor = 0;
	int lock = -1, rc;

	if (floor_path(data_dir, "", path, sizeof(path)))
		return stn_fail(d, STN_E_IO, data_dir, "path too long");
	if ((rc = floor_lock(data_dir, &lock, d)))
		return rc;
	rc = floor_read(path, &floor, d);
	if (rc == 0 && t > floor)
		rc = floor_write(path, t, d);
	close(lock);
	return rc;
}

int stn_time_arg_parse(const char *s, int64_t now, int end_of_day,
		       int64_t *out)
{
	char full[CU_TIME_LEN + 1];
	int64_t t, back;

	if (!s || !*s)
		return -1;
	if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
		/* A date: the RFC 3339 parser checks the calendar. */
		snprintf(full, sizeof(full), "%sT00:00:00Z", s);
		if (cu_time_parse(full, &t))
			return -1;
		if (end_of_day)
			t += 86400 - 1;
	} else if (cu_time_parse(s, &t) == 0) {
		/* t as given */
	} else if (cu_duration_parse(s, &back) == 0) {
		if (back > now)
			return -1;
		t = now - back;
	} else {
		return -1;
	}
	if (t < 1)
		return -1;
	*out = t;
	return 0;
}
