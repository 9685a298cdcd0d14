/* transport/sim_line.c: a relay thread between a pty master and a socket
 * the simulated device reads and writes.  Pacing models a UART: a byte sent
 * at time t arrives when the wire is free and one character time has
 * passed, so idle time is never saved up into a burst. */
#include "transport/sim_line.h"
#include "station/base/monotime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX 4096
/* Bytes are handed on every 2 ms of wire time, so a 1 KiB block arrives
 * progressively, as it does from a UART's FIFO. */
#define SLICE_NS 2000000LL

struct pace {
	int from, to;
	uint8_t buf[CHUNK_MAX];
	size_t n, off;
	int64_t due;      /* when buf may be handed on */
	int64_t wire_end; /* when the wire is free again */
};

struct tp_simline {
	char link[PATH_MAX];
	struct tp_simline_opts o;
	int64_t char_ns;
	size_t slice;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int master, slave;
	struct pace rx, tx; /* station to device, device to station */
	struct tp_serial *dev, *handed;
	unsigned gen, taken, drops;
	uint64_t rx_total;
	int drop_done;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int make_link(const char *link, const char *target)
{
	char tmp[PATH_MAX + 32];
	struct stat st;

	if (lstat(link, &st) == 0 && !S_ISLNK(st.st_mode))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", link, (long)getpid());
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* A new pty and socket pair, published to the device side. */
static int line_up(struct tp_simline *l, char *pty, size_t cap,
		   struct stn_diag *d)
{
	char name[PATH_MAX];
	struct termios tio;
	struct tp_serial *dev = NULL;
	int master, slave = -1, sv[2] = {-1, -1};

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, name, sizeof(name)) != 0)
		goto fail;
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0 || tcgetattr(slave, &tio) < 0)
		goto fail;
	cfmakeraw(&tio);
	tio.c_cflag |= CLOCAL | CREAD;
	if (tcsetattr(slave, TCSANOW, &tio) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    fcntl(master, F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		goto fail;
	if (tp_serial_from_fd(sv[1], name, &dev, d)) {
		sv[1] = -1;
		goto fail_quiet;
	}
	sv[1] = -1;
	if (l->link[0] && make_link(l->link, name) < 0)
		goto fail;
	if (pty)
		snprintf(pty, cap, "%s", name);
	memset(&l->rx, 0, sizeof(l->rx));
	memset(&l->tx, 0, sizeof(l->tx));
	l->rx.from = master;
	l->rx.to = sv[0];
	l->tx.from = sv[0];
	l->tx.to = master;
	pthread_mutex_lock(&l->mu);
	l->master = master;
	l->slave = slave;
	l->dev = dev;
	l->gen++;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return 0;
fail:
	stn_fail(d, STN_E_IO, name, "simulated line: %s", strerror(errno));
fail_quiet:
	tp_serial_close(dev);
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			close(sv[i]);
	if (slave >= 0)
		close(slave);
	if (master >= 0)
		close(master);
	return STN_E_IO;
}

/* The adapter is pulled: the station's tty hangs up, the path goes away,
 * the device's end reads end-of-file. */
static void line_down(struct tp_simline *l)
{
	if (l->link[0])
		unlink(l->link);
	close(l->rx.to); /* the relay's socket end */
	close(l->master);
	close(l->slave);
	pthread_mutex_lock(&l->mu);
	l->drops++;
	pthread_mutex_unlock(&l->mu);
}

/* Take what `p->from` has, up to one slice, and schedule its arrival. */
static int take(struct tp_simline *l, struct pace *p, int is_rx)
{
	size_t want = l->slice;
	ssize_t n;
	int64_t now, start;

	if (is_rx && l->o.drop_at && !l->drop_done &&
	    l->o.drop_at - l->rx_total < want)
		want = (size_t)(l->o.drop_at - l->rx_total);
	if (want == 0)
		return 0;
	n = read(p->from, p->buf, want);
	if (n == 0)
		return -1;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (is_rx)
		l->rx_total += (uint64_t)n;
	now = now_ns();
	if (l->char_ns) {
		/* Bytes that queued while the wire was busy follow the
		 * previous ones back to back. */
		start = p->wire_end > now - SLICE_NS ? p->wire_end : now;
		if (start < now)
			start = start > now - SLICE_NS ? start : now;
		p->wire_end = start + (int64_t)n * l->char_ns;
		p->due = p->wire_end;
	} else {
		p->due = now;
	}
	p->n = (size_t)n;
	p->off = 0;
	return 0;
}

static int give(struct pace *p)
{
	ssize_t n = write(p->to, p->buf + p->off, p->n - p->off);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	p->off += (size_t)n;
	if (p->off == p->n)
		p->n = p->off = 0;
	return 0;
}

static void *relay(void *arg)
{
	struct tp_simline *l = arg;

	for (;;) {
		struct pollfd pf[4];
		struct pace *ps[2] = {&l->rx, &l->tx};
		int64_t now = now_ns(), wait = -1;
		struct timespec ts, *tsp = NULL;
		int np = 0, idx[4];

		if (l->o.drop_at && !l->drop_done &&
		    l->rx_total >= l->o.drop_at && l->rx.n == 0) {
			int ms = l->o.drop_ms > 0 ? l->o.drop_ms : 1000;

			l->drop_done = 1;
			line_down(l);
			stn_sleep_ms(ms);
			if (line_up(l, NULL, 0, NULL))
				return NULL;
			continue;
		}
		for (int k = 0; k < 2; k++) {
			struct pace *p = ps[k];

			if (p->n == 0) {
				pf[np].fd = p->from;
				pf[np].events = POLLIN;
			} else if (p->due <= now) {
				pf[np].fd = p->to;
				pf[np].events = POLLOUT;
			} else {
				int64_t w = p->due - now;

				if (wait < 0 || w < wait)
					wait = w;
				continue;
			}
			idx[np++] = k;
		}
		if (wait >= 0) {
			ts.tv_sec = wait / 1000000000LL;
			ts.tv_nsec = wait % 1000000000LL;
			tsp = &ts;
		}
		if (ppoll(pf, (nfds_t)np, tsp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		for (int i = 0; i < np; i++) {
			struct pace *p = ps[idx[i]];

			if (!pf[i].revents)
				continue;
			if (pf[i].events == POLLIN) {
				if (take(l, p, idx[i] == 0) < 0 &&
				    idx[i] == 1)
					return NULL; /* the device quit */
			} else if (give(p) < 0) {
				/* The other end is gone: what was on the
				 * wire is lost, as on a real line with
				 * nobody listening. */
				p->n = p->off = 0;
			}
		}
	}
}

int tp_simline_start(const char *link, const struct tp_simline_opts *o,
		     char *pty, size_t cap, struct tp_simline **out,
		     struct stn_diag *d)
{
	struct tp_simline *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return stn_fail(d, STN_E_NOMEM, link, "out of memory");
	if (link && strlen(link) >= sizeof(l->link)) {
		free(l);
		return stn_fail(d, STN_E_USAGE, link, "link path too long");
	}
	if (link)
		snprintf(l->link, sizeof(l->link), "%s", link);
	if (o)
		l->o = *o;
	if (l->o.baud) {
		l->char_ns = 10 * 1000000000LL / l->o.baud;
		l->slice = (size_t)(SLICE_NS / l->char_ns);
		if (l->slice < 1)
			l->slice = 1;
	} else {
		l->slice = CHUNK_MAX;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	rc = line_up(l, pty, cap, d);
	if (rc) {
		free(l);
		return rc;
	}
	{
		/* The relay takes no signals: the simulator's handler runs
		 * on its main thread. */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&l->thread, NULL, relay, l);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (rc) {
		free(l);
		return stn_fail(d, STN_E_IO, link, "relay thread: %s",
				strerror(rc));
	}
	*out = l;
	return 0;
}

struct tp_serial *tp_simline_device(struct tp_simline *l)
{
	struct tp_serial *s;

	pthread_mutex_lock(&l->mu);
	while (l->taken == l->gen)
		pthread_cond_wait(&l->cv, &l->mu);
	tp_serial_close(l->handed);
	l->handed = s = l->dev;
	l->taken = l->gen;
	pthread_mutex_unlock(&l->mu);
	return s;
}

unsigned tp_simline_drops(struct tp_simline *l)
{
	unsigned n;

	pthread_mutex_lock(&l->mu);
	n = l->drops;
	pthread_mutex_unlock(&l->mu);
	return n;
}
