/* media/watch.c: media events from the kernel, without polling.  One epoll
 * descriptor holds an inotify watch on the media root and, when it is the
 * real /proc/self/mountinfo, the mount table, which the kernel marks with
 * EPOLLPRI|EPOLLERR whenever a mount is added or removed (proc(5)).  Each
 * wake re-reads the mount table and reports the difference by mount id. */
#include "media/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "station/base/error.h"

#define MOUNTINFO "/proc/self/mountinfo"
#define LINE_MAX_BYTES 8192 /* longer mountinfo lines are skipped */
#define CHANGED_NAMES 16    /* distinct names reported per wake */

struct md_watch {
	char root[PATH_MAX]; /* canonical */
	char mountinfo[PATH_MAX];
	int epfd, infd, mfd;
	int mount_pollable; /* mfd wakes epoll */
	int first;	    /* nothing reported yet */
	struct md_mount_entry *known;
	size_t nknown;
};

/* ---- mountinfo ---------------------------------------------------------- */

/* Decodes mountinfo's octal escapes (\040 for a blank, ...) in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

static int has_option(const char *opts, const char *want)
{
	size_t n = strlen(want);

	for (const char *p = opts; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncmp(p, want, n) == 0)
			return 1;
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

/* "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw"
 * (proc(5)).  Returns 0 and fills e, or -1. */
static int parse_line(char *line, struct md_mount_entry *e)
{
	char *f[64], *save = NULL, *tok;
	size_t n = 0, dash;
	char *end;
	unsigned long id;

	for (tok = strtok_r(line, " ", &save); tok && n < 64;
	     tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	for (dash = 6; dash < n; dash++)
		if (strcmp(f[dash], "-") == 0)
			break;
	if (n < 7 || dash + 1 >= n) /* no separator, or no type after it */
		return -1;
	errno = 0;
	id = strtoul(f[0], &end, 10);
	if (errno || *end || id > UINT_MAX)
		return -1;
	memset(e, 0, sizeof(*e));
	e->id = (unsigned)id;
	unescape(f[4]);
	snprintf(e->path, sizeof(e->path), "%s", f[4]);
	e->readonly = has_option(f[5], "ro");
	unescape(f[dash + 1]);
	snprintf(e->fstype, sizeof(e->fstype), "%s", f[dash + 1]);
	if (dash + 2 < n) {
		unescape(f[dash + 2]);
		snprintf(e->source, sizeof(e->source), "%s",
			 strcmp(f[dash + 2], "none") ? f[dash + 2] : "");
	}
	return 0;
}

static int under(const char *root, const char *path)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return 1;
	return strncmp(path, root, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/');
}

/* Reads the whole table from fd (from offset 0, which also suits the
 * seq_file behind /proc) and calls each for mounts under root. */
static int read_mounts(int fd, const char *shown, const char *root,
		       void (*each)(void *, const struct md_mount_entry *),
		       void *ctx, struct stn_diag *d)
{
	char chunk[16384], *line = malloc(LINE_MAX_BYTES + 1);
	struct md_mount_entry *e = malloc(sizeof(*e));
	size_t len = 0, count = 0;
	off_t off = 0;
	int skipping = 0, rc = 0;

	if (!line || !e) {
		free(line);
		free(e);
		return stn_fail(d, STN_E_NOMEM, shown, "mount table");
	}
	for (;;) {
		ssize_t got = pread(fd, chunk, sizeof(chunk), off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = stn_fail(d, STN_E_IO, shown, "read: %s",
				      strerror(errno));
			break;
		}
		if (got == 0)
			break;
		off += got;
		for (ssize_t i = 0; i < got; i++) {
			if (chunk[i] != '\n') {
				if (len < LINE_MAX_BYTES)
					line[len++] = chunk[i];
				else
					skipping = 1;
				continue;
			}
			line[len] = '\0';
			if (!skipping && count < MD_WATCH_MOUNTS &&
			    parse_line(line, e) == 0 && under(root, e->path)) {
				each(ctx, e);
				count++;
			}
			len = 0;
			skipping = 0;
		}
	}
	free(line);
	free(e);
	return rc;
}

static int canonical_root(const char *root, char out[PATH_MAX],
			  struct stn_diag *d)
{
	struct stat st;

	if (!realpath(root, out))
		return stn_fail(d,
				errno == ENOENT || errno == ENOTDIR
				    ? STN_E_CONFIG
				    : STN_E_IO,
				root, "media root: %s", strerror(errno));
	if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode))
		return stn_fail(d, STN_E_CONFIG, root,
				"media root is not a directory");
	return 0;
}

int md_mounts_under(const char *root, const char *mountinfo,
		    void (*each)(void *ctx, const struct md_mount_entry *m),
		    void *ctx, struct stn_diag *d)
{
	char canon[PATH_MAX];
	const char *mi = mountinfo ? mountinfo : MOUNTINFO;
	int fd, rc;

	if ((rc = canonical_root(root, canon, d)))
		return rc;
	fd = open(mi, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return stn_fail(d, STN_E_IO, mi, "open: %s", strerror(errno));
	rc = read_mounts(fd, mi, canon, each, ctx, d);
	close(fd);
	return rc;
}

/* ---- the watch ------------------------------------------------------------
 */

int md_watch_new(const char *root, const char *mountinfo, struct md_watch **out,
		 struct stn_diag *d)
{
	struct md_watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = {0};
	int rc = 0;

	if (!w)
		return stn_fail(d, STN_E_NOMEM, root, "media watch");
	w->epfd = w->infd = w->mfd = -1;
	w->first = 1;
	if ((rc = canonical_root(root, w->root, d)))
		goto out;
	snprintf(w->mountinfo, sizeof(w->mountinfo), "%s",
		 mountinfo ? mountinfo : MOUNTINFO);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->epfd < 0 || w->infd < 0) {
		rc = stn_fail(d, STN_E_IO, root, "epoll/inotify: %s",
			      strerror(errno));
		goto out;
	}
	if (inotify_add_watch(w->infd, w->root,
			      IN_CREATE | IN_DELETE | IN_MOVED_FROM |
				  IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
				  IN_ONLYDIR | IN_DONT_FOLLOW) < 0) {
		rc = stn_fail(d, STN_E_IO, w->root, "inotify: %s",
			      strerror(errno));
		goto out;
	}
	ev.events = EPOLLIN;
	ev.data.fd = w->infd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->infd, &ev) != 0) {
		rc = stn_fail(d, STN_E_IO, root, "epoll: %s", strerror(errno));
		goto out;
	}
	w->mfd = open(w->mountinfo, O_RDONLY | O_CLOEXEC);
	if (w->mfd < 0) {
		rc = stn_fail(d, STN_E_IO, w->mountinfo, "open: %s",
			      strerror(errno));
		goto out;
	}
	/* EPOLLPRI only: the mount table is always "readable" (EPOLLIN);
	 * EPOLLERR|EPOLLPRI mean it changed.  A plain file (tests) cannot be
	 * added (EPERM) and is re-read on every md_watch_poll instead. */
	ev.events = EPOLLPRI;
	ev.data.fd = w->mfd;
	w->mount_pollable = epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->mfd, &ev) == 0;
	*out = w;
	w = NULL;
out:
	md_watch_free(w);
	return rc;
}

int md_watch_fd(const struct md_watch *w) { return w->epfd; }

struct diff_ctx {
	struct md_mount_entry *cur;
	size_t n, cap;
	int nomem;
};

static void collect(void *ctx, const struct md_mount_entry *m)
{
	struct diff_ctx *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		struct md_mount_entry *more =
		    realloc(c->cur, cap * sizeof(*more));
		if (!more) {
			c->nomem = 1;
			return;
		}
		c->cur = more;
		c->cap = cap;
	}
	c->cur[c->n++] = *m;
}

static int find_id(const struct md_mount_entry *v, size_t n, unsigned id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			return 1;
	return 0;
}

static int rescan_mounts(struct md_watch *w, const struct md_watch_events *ev,
			 struct stn_diag *d)
{
	struct diff_ctx c = {0};
	int rc, count = 0;

	rc = read_mounts(w->mfd, w->mountinfo, w->root, collect, &c, d);
	if (rc == 0 && c.nomem)
		rc = stn_fail(d, STN_E_NOMEM, w->mountinfo, "mount table");
	if (rc) {
		free(c.cur);
		return rc;
	}
	for (size_t i = 0; i < w->nknown; i++)
		if (!find_id(c.cur, c.n, w->known[i].id)) {
			if (ev && ev->media)
				ev->media(ev->ctx, MD_MEDIA_REMOVED,
					  &w->known[i]);
			count++;
		}
	for (size_t i = 0; i < c.n; i++)
		if (!find_id(w->known, w->nknown, c.cur[i].id)) {
			if (ev && ev->media)
				ev->media(ev->ctx, MD_MEDIA_ADDED, &c.cur[i]);
			count++;
		}
	free(w->known);
	w->known = c.cur;
	w->nknown = c.n;
	return count;
}

static void report_changed(const struct md_watch *w, const char *name,
			   const struct md_watch_events *ev)
{
	struct md_mount_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return;
	/* a name too long to append is reported as a change of the root */
	if (!name || (size_t)snprintf(e->path, sizeof(e->path), "%s%s%s",
				      w->root, strcmp(w->root, "/") ? "/" : "",
				      name) >= sizeof(e->path))
		snprintf(e->path, sizeof(e->path), "%s", w->root);
	if (ev && ev->media)
		ev->media(ev->ctx, MD_MEDIA_CHANGED, e);
	free(e);
}

/* Drains inotify; reports each distinct name once (many at once: the
 * root).  Returns the number reported or a negative code. */
static int drain_inotify(struct md_watch *w, const struct md_watch_events *ev,
			 struct stn_diag *d)
{
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	char names[CHANGED_NAMES][NAME_MAX + 1];
	size_t nnames = 0;
	int overflow = 0, gone = 0, count = 0;

	for (;;) {
		ssize_t got = read(w->infd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			break;
		if (got <= 0)
			return stn_fail(d, STN_E_IO, w->root, "inotify: %s",
					got < 0 ? strerror(errno) : "end");
		for (char *p = buf; p < buf + got;) {
			const struct inotify_event *ie = (const void *)p;
			size_t k;

			p += sizeof(*ie) + ie->len;
			if (ie->mask & IN_Q_OVERFLOW)
				overflow = 1;
			if (ie->mask &
			    (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				gone = 1;
			if (!ie->len || !ie->name[0] || ie->name[0] == '.')
				continue; /* dot files are litter */
			for (k = 0; k < nnames; k++)
				if (!strcmp(names[k], ie->name))
					break;
			if (k < nnames)
				continue;
			if (nnames == CHANGED_NAMES)
				overflow = 1;
			else
				snprintf(names[nnames++], NAME_MAX + 1, "%s",
					 ie->name);
		}
	}
	if (gone)
		return stn_fail(d, STN_E_CONFIG, w->root,
				"the media root was removed or moved");
	if (overflow) {
		report_changed(w, NULL, ev);
		return 1;
	}
	for (size_t k = 0; k < nnames; k++, count++)
		report_changed(w, names[k], ev);
	return count;
}

int md_watch_poll(struct md_watch *w, int timeout_ms,
		  const struct md_watch_events *ev, struct stn_diag *d)
{
	struct epoll_event got[4];
	int n, count = 0, rc, rescan;

	/* The first call reports what is mounted; a caller that polls
	 * md_watch_fd itself calls with 0, and its poll may have taken the
	 * mount table's one-shot EPOLLPRI, so 0 always re-reads; a table
	 * that cannot signal is re-read on every call. */
	rescan = w->first || timeout_ms == 0 || !w->mount_pollable;
	if (w->first) {
		w->first = 0;
		timeout_ms = 0;
	}
	n = epoll_wait(w->epfd, got, 4, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return stn_fail(d, STN_E_IO, w->root, "epoll: %s",
				strerror(errno));
	}
	for (int i = 0; i < n; i++)
		if (got[i].data.fd == w->mfd)
			rescan = 1;
	if ((rc = drain_inotify(w, ev, d)) < 0)
		return rc;
	count += rc;
	if (rescan && (rc = rescan_mounts(w, ev, d)) < 0)
		return rc;
	return count + (rescan ? rc : 0);
}

void md_watch_free(struct md_watch *w)
{
	if (!w)
		return;
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->infd >= 0)
		close(w->infd);
	if (w->mfd >= 0)
		close(w->mfd);
	free(w->known);
	free(w);
}
