/* station/abandoned.h: installs a station left without an outcome.  A
 * station killed outright (SIGKILL, power lost, a crash) journals no
 * install-failed and no session-end; the next session finds each
 * install-started with no install-finished, install-failed or
 * install-abandoned after it, journals install-abandoned for it once, and
 * says so, so that the technician checks that device.  A session that is
 * still running in another process is not swept: each session holds a
 * lock on DATA/live/SESSION for its life. */
#ifndef STN_ABANDONED_H
#define STN_ABANDONED_H

#include <stddef.h>

struct stn_diag;
struct stn_session;

/* Create DATA/live/ID and hold a lock on it; *fd is closed (and the file
 * removed) by stn_live_release.  Errors: STN_E_IO naming the file. */
int stn_live_hold(const char *data_dir, const char *id, int *fd,
		  struct stn_diag *d);
void stn_live_release(const char *data_dir, const char *id, int fd);

/*
 * Journal install-abandoned (fields started-seq, install-session, serial,
 * bundle, name, version, device) for every install-started of an ended
 * or dead session with no outcome, and set *count and text (always
 * NUL-terminated; "SN-1 (tx200-app 2.4.1 via serial:/dev/ttyUSB0,
 * started 2026-...)", several joined by "; ", cut to cap).  Errors:
 * STN_E_JOURNAL, STN_E_NOMEM.
 */
int stn_abandoned_sweep(struct stn_session *s, const char *data_dir,
			unsigned *count, char *text, size_t cap,
			struct stn_diag *d);

#endif
