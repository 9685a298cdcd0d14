/* media/watch.h: notice media appearing and disappearing under the media
 * root and report them to the station core as events.  No polling loop:
 * the kernel wakes us, through /proc/self/mountinfo (which signals POLLPRI
 * when the mount table changes) for mounts at or below the root, and
 * through inotify for entries created, removed or renamed directly in the
 * root (a plain directory used as media, e.g. on a workstation or in the
 * demo).  What a watch reports is a hint to rescan (media/discover.h); it
 * is never trusted. */
#ifndef MD_WATCH_H
#define MD_WATCH_H

#include <stddef.h>

struct stn_diag;

#define MD_WATCH_MOUNTS 256 /* mounts tracked below the root; more ignored */

enum md_media_event {
	MD_MEDIA_ADDED = 1, /* a file system was mounted at or below the root */
	MD_MEDIA_REMOVED,   /* it was unmounted (or the stick pulled and the
			     * mount detached) */
	MD_MEDIA_CHANGED,   /* an entry appeared, vanished or was renamed in
			     * the root; rescan */
};

/* A mount as /proc/self/mountinfo describes it (octal escapes decoded). */
struct md_mount_entry {
	unsigned id;	  /* the kernel's mount id: one mount, one id */
	char path[4096];  /* mount point */
	char source[256]; /* e.g. "/dev/sdb1"; "" when unknown */
	char fstype[64];  /* e.g. "vfat" */
	int readonly;	  /* mounted "ro" */
};

/* The event payload: for ADDED and REMOVED the mount; for CHANGED, path is
 * the entry in the root (or the root itself when many changed at once) and
 * the rest is empty.  Borrowed for the duration of the call. */
struct md_watch_events {
	void (*media)(void *ctx, enum md_media_event ev,
		      const struct md_mount_entry *m);
	void *ctx;
};

/*
 * The mounts at or below root (root resolved with realpath, as mountinfo
 * shows canonical paths), read from `mountinfo` (NULL means
 * /proc/self/mountinfo; tests pass a file).  Calls each(ctx, entry) in the
 * file's order, at most MD_WATCH_MOUNTS times.  Lines that do not parse are
 * skipped.  Errors: STN_E_CONFIG (root missing), STN_E_IO.
 */
int md_mounts_under(const char *root, const char *mountinfo,
		    void (*each)(void *ctx, const struct md_mount_entry *m),
		    void *ctx, struct stn_diag *d);

struct md_watch;

/*
 * Watch root.  mountinfo as above; when it is not a /proc file it cannot
 * wake the watch, and is only re-read on each md_watch_poll.  Errors:
 * STN_E_CONFIG (root missing or not a directory), STN_E_IO (inotify or
 * epoll unavailable), STN_E_NOMEM.
 */
int md_watch_new(const char *root, const char *mountinfo, struct md_watch **out,
		 struct stn_diag *d);

/* A descriptor that becomes readable when md_watch_poll has something to
 * report, for callers with their own poll loop (borrowed). */
int md_watch_fd(const struct md_watch *w);

/*
 * Wait up to timeout_ms (-1: forever, 0: do not wait) for the kernel to
 * signal a change, then report every change through ev.  The first call
 * reports the media already mounted as ADDED without waiting.  A call with
 * timeout 0 re-reads the mount table (a few KiB), so a caller with its own
 * loop should make it when md_watch_fd is readable, not on a timer.
 * Returns the number of events reported (0 on timeout or a signal), or
 * STN_E_IO, or STN_E_CONFIG when the root itself was removed or moved.
 */
int md_watch_poll(struct md_watch *w, int timeout_ms,
		  const struct md_watch_events *ev, struct stn_diag *d);

void md_watch_free(struct md_watch *w); /* NULL is fine */

#endif
