/* transport/serial.c: a non-blocking fd driven by poll() with deadlines, a
 * small input buffer so that line and byte protocols can share one stream,
 * and translation of errno into the project's error list (here and only
 * here). */
#include "transport/serial.h"
#include "station/base/monotime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Enough for a few 1K YMODEM blocks; larger reads gain nothing on a UART. */
#define SERIAL_BUF 4096

struct tp_serial {
	int fd;
	int is_socket;          /* send(MSG_NOSIGNAL): no SIGPIPE from a peer */
	unsigned baud;          /* 0 when not known (a wrapped fd) */
	size_t head, tail;      /* unread input is buf[head .. tail) */
	uint8_t buf[SERIAL_BUF];
	char name[];
};

struct baud_map {
	unsigned baud;
	speed_t speed;
};

static const struct baud_map bauds[] = {
	{9600, B9600},     {19200, B19200},   {38400, B38400},
	{57600, B57600},   {115200, B115200}, {230400, B230400},
	{460800, B460800}, {500000, B500000}, {576000, B576000},
	{921600, B921600},
};

/* Milliseconds left before `deadline` as poll() wants them; -1 = forever. */
static int remaining(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - stn_mono_ms();
	if (left < 0)
		return 0;
	return left > 1000000000 ? 1000000000 : (int)left;
}

static int64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : stn_mono_ms() + timeout_ms;
}

static int serial_new(int fd, const char *name, struct tp_serial **out,
		      struct stn_diag *d)
{
	size_t n = strlen(name) + 1;
	struct tp_serial *s = malloc(sizeof(*s) + n);

	if (!s)
		return stn_fail(d, STN_E_NOMEM, name, "out of memory");
	s->fd = fd;
	s->is_socket = 0;
	s->baud = 0;
	s->head = s->tail = 0;
	memcpy(s->name, name, n);
	*out = s;
	return 0;
}

int tp_serial_open(const char *path, unsigned baud, int rtscts,
		   struct tp_serial **out, struct stn_diag *d)
{
	struct tp_serial *s = NULL;
	struct termios tio;
	speed_t speed = 0;
	int fd = -1;
	int rc;

	for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++)
		if (bauds[i].baud == baud)
			speed = bauds[i].speed;
	if (!speed)
		return stn_fail(d, STN_E_USAGE, path,
				"baud rate %u is not supported (9600 .. 921600)",
				baud);

	fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT || e == ENXIO || e == ENODEV)
			return stn_fail(d, STN_E_NODEVICE, path, "open: %s",
					strerror(e));
		if (e == EACCES)
			return stn_fail(d, STN_E_IO, path,
					"open: %s (is the user in group dialout?)",
					strerror(e));
		return stn_fail(d, STN_E_IO, path, "open: %s", strerror(e));
	}
	/* Two sessions writing to one device would interleave their blocks;
	 * the lock is advisory but every station instance honours it. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK
			     ? stn_fail(d, STN_E_DEVICE, path,
					"in use by another program (locked)")
			     : stn_fail(d, STN_E_IO, path, "flock: %s",
					strerror(errno));
		goto out;
	}
	if (tcgetattr(fd, &tio) < 0) {
		rc = stn_fail(d, STN_E_IO, path, "not a serial port: %s",
			      strerror(errno));
		goto out;
	}
	cfmakeraw(&tio);
	tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS | HUPCL);
	/* HUPCL off: dropping DTR on close resets many boards, and the station
	 * closes the port between identification and transfer. */
	tio.c_cflag |= CS8 | CLOCAL | CREAD | (rtscts ? CRTSCTS : 0);
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (cfsetispeed(&tio, speed) < 0 || cfsetospeed(&tio, speed) < 0 ||
	    tcsetattr(fd, TCSANOW, &tio) < 0) {
		rc = stn_fail(d, STN_E_IO, path, "cannot set %u 8N1 raw: %s",
			      baud, strerror(errno));
		goto out;
	}
	/* tcsetattr succeeds when any one change took; check the speed did. */
	if (tcgetattr(fd, &tio) < 0 || cfgetospeed(&tio) != speed) {
		rc = stn_fail(d, STN_E_IO, path,
			      "the driver refused %u baud", baud);
		goto out;
	}
	/* No input flush here: a YMODEM receiver that is already waiting has
	 * sent its 'C', and throwing it away costs a whole retry period (3 s
	 * on U-Boot's loady).  The console drains before each command. */
	rc = serial_new(fd, path, &s, d);
	if (rc)
		goto out;
	s->baud = baud;
	fd = -1;
	*out = s;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int tp_serial_from_fd(int fd, const char *name, struct tp_serial **out,
		      struct stn_diag *d)
{
	struct tp_serial *s = NULL;
	struct stat st;
	int fl;
	int rc;

	if (fd < 0)
		return stn_fail(d, STN_E_USAGE, name, "invalid descriptor");
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fstat(fd, &st) < 0) {
		rc = stn_fail(d, STN_E_IO, name, "fcntl: %s", strerror(errno));
		goto out;
	}
	rc = serial_new(fd, name, &s, d);
	if (rc)
		goto out;
	s->is_socket = S_ISSOCK(st.st_mode);
	*out = s;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void tp_serial_close(struct tp_serial *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}

const char *tp_serial_name(const struct tp_serial *s)
{
	return s->name;
}

unsigned tp_serial_baud(const struct tp_serial *s)
{
	return s->baud;
}

int tp_serial_line_ms(const struct tp_serial *s, size_t bytes)
{
	uint64_t ms;

	if (!s->baud)
		return 0;
	/* 8N1: a start bit, eight data bits and a stop bit per byte. */
	ms = ((uint64_t)bytes * 10 * 1000 + s->baud - 1) / s->baud;
	return ms > 600000 ? 600000 : (int)ms;
}

/* Wait until the fd is ready for `events`.  STN_E_TIMEOUT at the deadline
 * is returned unrecorded: the caller says what did not happen. */
static int wait_ready(struct tp_serial *s, short events, int64_t deadline,
		      struct stn_diag *d)
{
	for (;;) {
		struct pollfd p = {.fd = s->fd, .events = events};
		int r = poll(&p, 1, remaining(deadline));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return stn_fail(d, STN_E_IO, s->name, "poll: %s",
					strerror(errno));
		if (r == 0)
			return STN_E_TIMEOUT;
		if (p.revents & POLLNVAL)
			return stn_fail(d, STN_E_IO, s->name,
					"descriptor is not open");
		/* POLLHUP and POLLERR fall through to the read or write,
		 * whose errno names the end. */
		return 0;
	}
}

/* A failed read or write: a USB adapter pulled out, or a pty or socket
 * whose other side is gone, is the device being gone. */
static int io_failed(struct tp_serial *s, const char *op, int e,
		     struct stn_diag *d)
{
	if (e == EIO || e == ENXIO || e == ENODEV || e == EPIPE ||
	    e == ECONNRESET)
		return stn_fail(d, STN_E_NODEVICE, s->name,
				"%s: %s (device unplugged?)", op, strerror(e));
	return stn_fail(d, STN_E_IO, s->name, "%s: %s", op, strerror(e));
}

/* Make sure at least one unread byte is buffered. */
static int fill(struct tp_serial *s, int64_t deadline, int timeout_ms,
		struct stn_diag *d)
{
	if (s->head < s->tail)
		return 0;
	s->head = s->tail = 0;
	for (;;) {
		ssize_t n;
		int rc = wait_ready(s, POLLIN, deadline, d);

		if (rc == STN_E_TIMEOUT)
			return stn_fail(d, rc, s->name,
					"nothing received within %d ms",
					timeout_ms);
		if (rc)
			return rc;
		/* After a hangup read() first delivers what was sent
		 * before it, then reports the end. */
		n = read(s->fd, s->buf, sizeof(s->buf));
		if (n > 0) {
			s->tail = (size_t)n;
			return 0;
		}
		if (n == 0)
			return stn_fail(d, STN_E_NODEVICE, s->name,
					"the other end hung up");
		if (errno != EAGAIN && errno != EINTR)
			return io_failed(s, "read", errno, d);
	}
}

int tp_serial_write(struct tp_serial *s, const void *buf, size_t len,
		    int timeout_ms, struct stn_diag *d)
{
	const uint8_t *p = buf;
	int64_t deadline = deadline_after(timeout_ms);
	size_t done = 0;

	while (done < len) {
		ssize_t n;
		int rc = wait_ready(s, POLLOUT, deadline, d);

		if (rc == STN_E_TIMEOUT)
			return stn_fail(d, rc, s->name,
					"line took %zu of %zu bytes in %d ms "
					"(flow control held?)",
					done, len, timeout_ms);
		if (rc)
			return rc;
		if (s->is_socket)
			n = send(s->fd, p + done, len - done, MSG_NOSIGNAL);
		else
			n = write(s->fd, p + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return stn_fail(d, STN_E_IO, s->name,
					"write: nothing written");
		if (errno != EAGAIN && errno != EINTR)
			return io_failed(s, "write", errno, d);
	}
	return 0;
}

int tp_serial_read(struct tp_serial *s, void *buf, size_t cap, int timeout_ms,
		   size_t *got, struct stn_diag *d)
{
	size_t n;
	int rc;

	if (cap == 0)
		return stn_fail(d, STN_E_USAGE, s->name, "read of 0 bytes");
	rc = fill(s, deadline_after(timeout_ms), timeout_ms, d);
	if (rc)
		return rc;
	n = s->tail - s->head;
	if (n > cap)
		n = cap;
	memcpy(buf, s->buf + s->head, n);
	s->head += n;
	*got = n;
	return 0;
}

int tp_serial_getc(struct tp_serial *s, int timeout_ms, uint8_t *c,
		   struct stn_diag *d)
{
	int rc = fill(s, deadline_after(timeout_ms), timeout_ms, d);

	if (rc)
		return rc;
	*c = s->buf[s->head++];
	return 0;
}

int tp_serial_peek(struct tp_serial *s, int timeout_ms, uint8_t *c,
		   struct stn_diag *d)
{
	int rc = fill(s, deadline_after(timeout_ms), timeout_ms, d);

	if (rc)
		return rc;
	*c = s->buf[s->head];
	return 0;
}

int tp_serial_readline(struct tp_serial *s, char *line, size_t cap,
		       int timeout_ms, struct stn_diag *d)
{
	int64_t deadline = deadline_after(timeout_ms);
	size_t n = 0;

	if (cap < 2)
		return stn_fail(d, STN_E_USAGE, s->name,
				"line buffer of %zu bytes", cap);
	for (;;) {
		uint8_t c;
		int rc = fill(s, deadline, timeout_ms, d);

		if (rc)
			return rc;
		c = s->buf[s->head++];
		if (c == '\n')
			break;
		if (c == '\r')
			continue;
		if (c == '\0')
			return stn_fail(d, STN_E_PROTOCOL, s->name,
					"NUL byte in a line");
		if (n == cap - 1)
			return stn_fail(d, STN_E_PROTOCOL, s->name,
					"line longer than %zu characters",
					cap - 1);
		line[n++] = (char)c;
	}
	line[n] = '\0';
	return 0;
}

void tp_serial_drain_input(struct tp_serial *s)
{
	uint8_t junk[256];

	s->head = s->tail = 0;
	if (isatty(s->fd))
		tcflush(s->fd, TCIFLUSH);
	/* Sockets and pty masters have no input queue to flush; a bounded
	 * number of reads keeps a babbling peer from holding us here. */
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(s->fd, junk, sizeof(junk));

		if (n <= 0)
			break;
	}
}

void tp_serial_drain_quiet(struct tp_serial *s, int quiet_ms, int max_ms)
{
	int64_t end = stn_mono_ms() + max_ms;

	s->head = s->tail = 0;
	while (stn_mono_ms() < end) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		uint8_t junk[256];
		int wait = remaining(end);
		int r = poll(&p, 1, wait < quiet_ms ? wait : quiet_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || read(s->fd, junk, sizeof(junk)) <= 0)
			return;
	}
}
