/* station/media_watch.h: the station's one media watch, for every front
 * end (the text UI's core and `station media --watch`).  It watches the
 * media root (media/watch.h), in appliance mode also mounts removable
 * devices read-only (media/mount.h), and journals each medium that
 * appears or goes (`media-seen`, docs/journal.md) before it tells the
 * caller.  A mount it makes is journaled when the mount table shows it,
 * so a medium is journaled once whoever mounted it.  With a report root
 * (report sticks, media/mount.h), that root is watched the same way and
 * its mounts are journaled alike and reported through `report`. */
#ifndef STN_MEDIA_WATCH_H
#define STN_MEDIA_WATCH_H

#include "media/mount.h"
#include "media/watch.h"

struct stn_diag;
struct stn_session;

/* What the caller hears, after journaling; every member may be NULL.
 * Strings are borrowed for the call. */
struct stn_media_events {
	void (*media)(void *ctx, enum md_media_event ev,
		      const struct md_mount_entry *m);
	void (*mounted)(void *ctx, const char *dev, const char *path,
			const char *fstype);
	void (*unmounted)(void *ctx, const char *dev, const char *path);
	void (*refused)(void *ctx, const char *dev, const struct stn_diag *why);
	/* A report stick mounted (ADDED) or gone (REMOVED) under the report
	 * root. */
	void (*report)(void *ctx, enum md_media_event ev,
		       const struct md_mount_entry *m);
	void *ctx;
};

struct stn_media_watch;

/*
 * Watch root; with mount (appliance mode, root only), also mount the
 * removable devices present now and those that arrive.  ev is copied.
 * Errors: STN_E_CONFIG (root missing; not root for mount), STN_E_IO
 * (inotify, netlink), STN_E_NOMEM.
 */
int stn_media_watch_new(const char *root, int mount,
			const struct stn_media_events *ev,
			struct stn_media_watch **out, struct stn_diag *d);

/* As stn_media_watch_new, and with mount and a report root `reports`
 * (NULL: none), report sticks are mounted there and watched.  Errors as
 * above, and those of md_mounter_set_reports. */
int stn_media_watch_new_reports(const char *root, const char *reports,
				int mount, const struct stn_media_events *ev,
				struct stn_media_watch **out,
				struct stn_diag *d);

/*
 * Wait up to timeout_ms (0: not at all, -1: until something happens or a
 * signal interrupts the wait) for media events, then act on all of them:
 * mount or unmount (appliance mode), journal each medium added or removed
 * as `media-seen` in s (NULL: not journaled, e.g. before sign-in), and
 * report each through the events.  The first call reports the media
 * already mounted.  Returns the number of changes seen (0 on timeout or a
 * signal), or the first error: STN_E_JOURNAL and the like when an event
 * could not be journaled (the watch goes on; the caller decides whether
 * to stop), STN_E_IO, STN_E_CONFIG (the root itself went away).
 */
int stn_media_watch_run(struct stn_media_watch *w, struct stn_session *s,
			int timeout_ms, struct stn_diag *d);

/* Unmount what it mounted, journal those removals in s (may be NULL),
 * and free.  NULL w is fine. */
void stn_media_watch_free(struct stn_media_watch *w, struct stn_session *s);

#endif
