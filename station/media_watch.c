/* station/media_watch.c: one media watch for the text UI's core and the
 * command line: watch, mount in appliance mode, journal, then tell the
 * caller.  Before it, `station media --watch --mount` ran a loop of its own
 * that mounted without journaling. */
#include "station/media_watch.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/error.h"
#include "station/events.h"
#include "station/session.h"

struct stn_media_watch {
	struct md_watch *watch;
	struct md_mounter *mounter; /* appliance mode only */
	struct md_watch *reports;   /* the report root, when there is one */
	struct stn_media_events ev;
	int first;		    /* nothing reported yet */
	int rfirst;		    /* the same, for the report root */
	/* during one run: where to journal, and the first failure */
	struct stn_session *session;
	int jrc;
	struct stn_diag jd;
};

static void on_mounted(void *ctx, const char *dev, const char *path,
		       const char *fstype)
{
	struct stn_media_watch *w = ctx;
	if (w->ev.mounted)
		w->ev.mounted(w->ev.ctx, dev, path, fstype);
}

static void on_unmounted(void *ctx, const char *dev, const char *path)
{
	struct stn_media_watch *w = ctx;
	if (w->ev.unmounted)
		w->ev.unmounted(w->ev.ctx, dev, path);
}

static void on_refused(void *ctx, const char *dev, const struct stn_diag *why)
{
	struct stn_media_watch *w = ctx;
	if (w->ev.refused)
		w->ev.refused(w->ev.ctx, dev, why);
}

/* formats §7: a medium seen is an event of the record.  An entry that
 * changed in a plain directory root is only a hint to rescan.  A report
 * stick is a medium too; its path (under the report root) tells it. */
static void journal_media(struct stn_media_watch *w, enum md_media_event e,
			  const struct md_mount_entry *m)
{
	if (w->session && m && e != MD_MEDIA_CHANGED) {
		const struct stn_field f[] = {
			{"event", e == MD_MEDIA_ADDED ? "inserted" : "removed"},
			{"path", m->path},
			{"source", m->source[0] ? m->source : "-"},
			{"fstype", m->fstype[0] ? m->fstype : "-"}};
		struct stn_diag d;
		int rc;

		stn_diag_init(&d);
		rc = stn_session_log(w->session, STN_EV_MEDIA_SEEN, f,
				     STN_EV_N(f), &d);
		if (rc && !w->jrc) {
			w->jrc = rc;
			w->jd = d;
		}
	}
}

static void on_media(void *ctx, enum md_media_event e,
		     const struct md_mount_entry *m)
{
	struct stn_media_watch *w = ctx;

	journal_media(w, e, m);
	if (w->ev.media)
		w->ev.media(w->ev.ctx, e, m);
}

/* Entries made in the report root (mount points) are not media. */
static void on_report(void *ctx, enum md_media_event e,
		      const struct md_mount_entry *m)
{
	struct stn_media_watch *w = ctx;

	if (e == MD_MEDIA_CHANGED)
		return;
	journal_media(w, e, m);
	if (w->ev.report)
		w->ev.report(w->ev.ctx, e, m);
}

int stn_media_watch_new(const char *root, int mount,
			const struct stn_media_events *ev,
			struct stn_media_watch **out, struct stn_diag *d)
{
	return stn_media_watch_new_reports(root, NULL, mount, ev, out, d);
}

int stn_media_watch_new_reports(const char *root, const char *reports,
				int mount, const struct stn_media_events *ev,
				struct stn_media_watch **out,
				struct stn_diag *d)
{
	struct stn_media_watch *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return stn_fail(d, STN_E_NOMEM, root, "media watch");
	if (ev)
		w->ev = *ev;
	w->first = w->rfirst = 1;
	if ((rc = md_watch_new(root, NULL, &w->watch, d)))
		goto fail;
	if (mount) {
		struct md_mount_events me = {on_mounted, on_unmounted,
					     on_refused, NULL, w};
		if ((rc = md_mounter_new(root, NULL, &w->mounter, d)))
			goto fail;
		if (reports &&
		    ((rc = md_mounter_set_reports(w->mounter, reports, d)) ||
		     (rc = md_watch_new(reports, NULL, &w->reports, d))))
			goto fail;
		/* What is plugged in already is mounted now and journaled
		 * by the first run, which reports the mount table. */
		rc = md_mounter_coldplug(w->mounter, &me, d);
		if (rc < 0)
			goto fail;
	}
	*out = w;
	return 0;
fail:
	stn_media_watch_free(w, NULL);
	return rc;
}

int stn_media_watch_run(struct stn_media_watch *w, struct stn_session *s,
			int timeout_ms, struct stn_diag *d)
{
	struct md_mount_events me = {on_mounted, on_unmounted, on_refused,
				     NULL, w};
	struct md_watch_events we = {on_media, w}, re = {on_report, w};
	struct pollfd pfd[3] = {
		{md_watch_fd(w->watch), POLLIN | POLLPRI, 0},
		{w->mounter ? md_mounter_fd(w->mounter) : -1, POLLIN, 0},
		{w->reports ? md_watch_fd(w->reports) : -1, POLLIN | POLLPRI,
		 0}};
	int n = 0, rc;

	/* The first run reports what is mounted now without waiting. */
	if (poll(pfd, 3, w->first || w->rfirst ? 0 : timeout_ms) < 0) {
		if (errno == EINTR)
			return 0;
		return stn_fail(d, STN_E_IO, "media", "poll: %s",
				strerror(errno));
	}
	w->session = s;
	w->jrc = 0;
	stn_diag_init(&w->jd);
	if (w->mounter && (pfd[1].revents & POLLIN)) {
		if ((rc = md_mounter_dispatch(w->mounter, &me, d)) < 0)
			goto out;
		n += rc;
	}
	/* Only when the kernel says something changed (or on the first
	 * run): each poll re-reads the mount table. */
	if (w->first || (pfd[0].revents & (POLLIN | POLLPRI))) {
		w->first = 0;
		if ((rc = md_watch_poll(w->watch, 0, &we, d)) < 0)
			goto out;
		n += rc;
	}
	if (w->reports &&
	    (w->rfirst || (pfd[2].revents & (POLLIN | POLLPRI)))) {
		w->rfirst = 0;
		if ((rc = md_watch_poll(w->reports, 0, &re, d)) < 0)
			goto out;
		n += rc;
	}
	rc = n;
	if (w->jrc) {
		*d = w->jd;
		rc = w->jrc;
	}
out:
	w->session = NULL;
	return rc;
}

void stn_media_watch_free(struct stn_media_watch *w, struct stn_session *s)
{
	if (!w)
		return;
	if (w->mounter) {
		/* Unmount what we mounted and let the watch see it go, so
		 * that the removals are journaled like any other. */
		md_mounter_free(w->mounter);
		w->mounter = NULL;
		if (w->watch && !w->first) {
			struct md_watch_events we = {on_media, w};
			struct md_watch_events re = {on_report, w};
			struct stn_diag d;
			stn_diag_init(&d);
			w->session = s;
			(void)md_watch_poll(w->watch, 0, &we, &d);
			if (w->reports)
				(void)md_watch_poll(w->reports, 0, &re, &d);
			w->session = NULL;
		}
	}
	md_watch_free(w->watch);
	md_watch_free(w->reports);
	free(w);
}
