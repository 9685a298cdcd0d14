/* station/abandoned.c: find and journal installs left without an outcome
 * (abandoned.h). */
#include "station/abandoned.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "station/base/rfc3339.h"
#include "station/base/error.h"
#include "station/events.h"
#include "station/session.h"

/* An install-started with no outcome yet.  Only these are kept: an
 * outcome removes its start, so memory follows the installs still open,
 * not the journal's history. */
struct started {
	uint64_t seq;
	int64_t time;
	char session[40], serial[80], bundle[70], name[80], version[40];
	char device[300];
};

struct sweep {
	struct started *v;
	size_t n, cap;
	int nomem;
};

static const char *field(const struct stn_event *e, const char *key)
{
	const char *v = stn_ev_field(e, key);

	return v ? v : "";
}

static void drop(struct sweep *w, size_t i)
{
	memmove(&w->v[i], &w->v[i + 1], (w->n - i - 1) * sizeof(w->v[0]));
	w->n--;
}

static int add_start(struct sweep *w, const struct stn_event *e)
{
	struct started *st;

	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct started *v = realloc(w->v, cap * sizeof(*v));
		if (!v) {
			w->nomem = 1;
			return STN_E_NOMEM;
		}
		w->v = v;
		w->cap = cap;
	}
	st = &w->v[w->n++];
	memset(st, 0, sizeof(*st));
	st->seq = e->seq;
	st->time = e->time;
	snprintf(st->session, sizeof(st->session), "%s", e->session);
	snprintf(st->serial, sizeof(st->serial), "%s", field(e, "serial"));
	snprintf(st->bundle, sizeof(st->bundle), "%s", field(e, "bundle"));
	snprintf(st->name, sizeof(st->name), "%s", field(e, "name"));
	snprintf(st->version, sizeof(st->version), "%s", field(e, "version"));
	snprintf(st->device, sizeof(st->device), "%s", field(e, "device"));
	return 0;
}

/* Called for the install events only (the query selects them by type). */
static int on_event(void *ctx, const struct stn_event *e)
{
	struct sweep *w = ctx;

	if (stn_ev_is(e->type, STN_EV_INSTALL_STARTED))
		return add_start(w, e);
	if (stn_ev_is(e->type, STN_EV_INSTALL_ABANDONED)) {
		uint64_t seq = strtoull(field(e, "started-seq"), NULL, 10);
		for (size_t i = 0; i < w->n; i++)
			if (w->v[i].seq == seq) {
				drop(w, i);
				break;
			}
		return 0;
	}
	/* install-finished or install-failed: the outcome of the oldest
	 * open install of the same session, device and bundle (one device
	 * takes one install at a time). */
	for (size_t i = 0; i < w->n; i++) {
		struct started *st = &w->v[i];
		if (strcmp(st->session, e->session) == 0 &&
		    strcmp(st->serial, field(e, "serial")) == 0 &&
		    strcmp(st->bundle, field(e, "bundle")) == 0) {
			drop(w, i);
			break;
		}
	}
	return 0;
}

int stn_live_hold(const char *data_dir, const char *id, int *fd,
		  struct stn_diag *d)
{
	char path[4300];
	int f;

	snprintf(path, sizeof(path), "%s/live", data_dir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return stn_fail(d, STN_E_IO, path, "cannot create: %s",
				strerror(errno));
	snprintf(path, sizeof(path), "%s/live/%s", data_dir, id);
	f = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f < 0)
		return stn_fail(d, STN_E_IO, path, "cannot create: %s",
				strerror(errno));
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int eno = errno;
		close(f);
		return stn_fail(d, STN_E_IO, path, "cannot lock: %s",
				strerror(eno));
	}
	*fd = f;
	return 0;
}

void stn_live_release(const char *data_dir, const char *id, int fd)
{
	char path[4300];

	if (fd < 0)
		return;
	snprintf(path, sizeof(path), "%s/live/%s", data_dir, id);
	(void)unlink(path); /* a leftover file only costs a lock probe */
	close(fd);
}

/* Whether the session is running now in some process (it holds its lock).
 * The session ids come from the journal: only hex ids are looked up. */
static int session_live(const char *data_dir, const char *id)
{
	char path[4300];
	int f, live;

	if (!*id || strspn(id, "0123456789abcdef") != strlen(id))
		return 0;
	snprintf(path, sizeof(path), "%s/live/%s", data_dir, id);
	f = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0)
		return 0;
	live = flock(f, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(f);
	if (!live)
		(void)unlink(path); /* its process is gone */
	return live;
}

int stn_abandoned_sweep(struct stn_session *s, const char *data_dir,
			unsigned *count, char *text, size_t cap,
			struct stn_diag *d)
{
	static const enum stn_ev install[] = {
		STN_EV_INSTALL_STARTED, STN_EV_INSTALL_FINISHED,
		STN_EV_INSTALL_FAILED, STN_EV_INSTALL_ABANDONED};
	const char *types[STN_EV_N(install)];
	struct stn_journal_filter f = {.types = types,
				       .ntypes = STN_EV_N(install)};
	struct sweep w = {NULL, 0, 0, 0};
	size_t used = 0;
	int rc = 0;

	for (size_t i = 0; i < STN_EV_N(install); i++)
		types[i] = stn_ev_name(install[i]);

	*count = 0;
	if (cap)
		text[0] = '\0';
	/* One walk in seq order over the install events alone, through the
	 * type index: an outcome can only follow its start. */
	rc = stn_session_journal_query(s, &f, on_event, &w, d);
	if (rc) {
		if (w.nomem)
			rc = stn_fail(d, STN_E_NOMEM, data_dir,
				      "installs without an outcome");
		goto out;
	}
	for (size_t i = 0; i < w.n; i++) {
		struct started *st = &w.v[i];
		char seq[24], when[CU_TIME_LEN + 1];

		if (strcmp(st->session, stn_session_id(s)) == 0 ||
		    session_live(data_dir, st->session))
			continue;
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)st->seq);
		const struct stn_field ef[] = {
			{"started-seq", seq},
			{"install-session", st->session},
			{"serial", st->serial},
			{"bundle", st->bundle},
			{"name", st->name},
			{"version", st->version},
			{"device", st->device},
		};
		if ((rc = stn_session_log(s, STN_EV_INSTALL_ABANDONED, ef,
					   STN_EV_N(ef), d)))
			goto out;
		(*count)++;
		cu_time_format(st->time, when);
		if (used < cap) {
			int k = snprintf(text + used, cap - used,
					 "%s%s (%s %s via %s, started %s)",
					 used ? "; " : "", st->serial, st->name,
					 st->version, st->device, when);
			used = k < 0 ? cap : used + (size_t)k;
		}
	}
out:
	free(w.v);
	return rc;
}
