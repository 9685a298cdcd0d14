/* station/clock.c: the trusted-time floor, kept in DATA/time-floor as one
 * text record line ("floor = 2026-11-20T10:00:00Z"). */
#include "station/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custody/record.h"
#include "custody/rfc3339.h"
#include "station/error.h"
#include "station/journal.h"

static int floor_path(const char *data_dir, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/time-floor", data_dir);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Reads the floor; a missing file is floor 0 (a new station). */
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

static int floor_write(const char *path, int64_t t, struct stn_diag *d)
{
	char tmp[4200], line[64], ts[CU_TIME_LEN + 1];
	int fd, rc = 0, n;

	cu_time_format(t, ts);
	n = snprintf(line, sizeof(line), "floor = %s\n", ts);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return stn_fail(d, STN_E_IO, tmp, "cannot write: %s",
				strerror(errno));
	if (write(fd, line, (size_t)n) != n || fsync(fd) != 0)
		rc = stn_fail(d, STN_E_IO, tmp, "write: %s", strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = stn_fail(d, STN_E_IO, tmp, "close: %s", strerror(errno));
	if (rc == 0 && rename(tmp, path) != 0)
		rc = stn_fail(d, STN_E_IO, path, "rename: %s", strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}

int stn_clock_check(const char *data_dir, struct stn_journal *j, int64_t now,
		    int64_t *floor_out, struct stn_diag *d)
{
	char path[4200], t1[CU_TIME_LEN + 1], t2[CU_TIME_LEN + 1];
	int64_t floor = 0, seen;
	int rc;

	if (floor_path(data_dir, path, sizeof(path)))
		return stn_fail(d, STN_E_IO, data_dir, "path too long");
	if ((rc = floor_read(path, &floor, d)))
		return rc;
	/* Events are stamped with the clock of their day: the newest one is
	 * a floor too, should the file be lost or replaced.  One indexed
	 * lookup, not a walk: journals grow to millions of events. */
	seen = floor;
	if (j) {
		int64_t t = 0;
		int found = 0;
		if ((rc = stn_journal_newest_time(j, &t, &found, d)))
			return rc;
		if (found && t > seen)
			seen = t;
	}
	if (seen > floor)
		floor = seen;
	if (now < floor - STN_CLOCK_SKEW) {
		cu_time_format(now, t1);
		cu_time_format(floor, t2);
		return stn_fail(d, STN_E_CLOCK, path,
				"station clock %s is more than 5 minutes "
				"behind the trusted-time floor %s: set the "
				"clock right before any session", t1, t2);
	}
	/* Write when the clock moved it, and whenever the file is missing,
	 * so the floor is on disk even when the journal supplied it. */
	if ((now > floor || access(path, F_OK) != 0) &&
	    (rc = floor_write(path, now > floor ? now : floor, d)))
		return rc;
	if (floor_out)
		*floor_out = now > floor ? now : floor;
	return 0;
}

int stn_clock_raise(const char *data_dir, int64_t t, struct stn_diag *d)
{
	char path[4200];
	int64_t floor = 0;
	int rc;

	if (floor_path(data_dir, path, sizeof(path)))
		return stn_fail(d, STN_E_IO, data_dir, "path too long");
	if ((rc = floor_read(path, &floor, d)))
		return rc;
	return t > floor ? floor_write(path, t, d) : 0;
}
