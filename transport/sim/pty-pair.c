/* transport/sim/pty-pair.c: two connected pseudo-terminals with a UART's
 * pace between them (transport/sim_line.h), like `socat pty pty` but with
 * the latency of a real line: a byte takes 10 bits' time at the given baud.
 * On an unpaced pty pair lrzsz's rb loses blocks that arrive in the
 * microseconds between its ACK and the input flush that follows it; real
 * lines never deliver that fast, so interoperability is tested here. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "station/base/error.h"
#include "transport/serial.h"
#include "transport/sim_line.h"

static char g_link_b[PATH_MAX], g_link_a[PATH_MAX];

static void on_signal(int sig)
{
	(void)sig;
	unlink(g_link_a);
	unlink(g_link_b);
	_exit(0);
}

struct pump {
	struct tp_serial *dev;
	int fd;
};

/* The paced line's far end to pty B. */
static void *to_b(void *arg)
{
	struct pump *p = arg;
	uint8_t buf[4096];

	for (;;) {
		size_t got = 0;

		if (tp_serial_read(p->dev, buf, sizeof(buf), -1, &got, NULL))
			return NULL;
		for (size_t off = 0; off < got;) {
			ssize_t n = write(p->fd, buf + off, got - off);

			if (n < 0 && errno != EINTR && errno != EAGAIN)
				return NULL;
			if (n > 0)
				off += (size_t)n;
		}
	}
}

int main(int argc, char **argv)
{
	struct tp_simline_opts lo = {0};
	struct tp_simline *line;
	struct stn_diag d;
	struct termios tio;
	struct pump p;
	pthread_t th;
	char a[PATH_MAX], b[PATH_MAX];
	int master, slave;

	if (argc != 4 || strlen(argv[2]) >= PATH_MAX - 16 ||
	    strlen(argv[3]) >= PATH_MAX - 16) {
		fputs("usage: pty-pair BAUD LINK-A LINK-B\n"
		      "Two pseudo-terminals at LINK-A and LINK-B, connected "
		      "through a line paced at BAUD.\n", stderr);
		return 2;
	}
	lo.baud = (unsigned)strtoul(argv[1], NULL, 10);
	if (lo.baud < 300 || lo.baud > 4000000) {
		fputs("pty-pair: bad baud rate\n", stderr);
		return 2;
	}
	snprintf(g_link_a, sizeof(g_link_a), "%s", argv[2]);
	snprintf(g_link_b, sizeof(g_link_b), "%s", argv[3]);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	/* B: a raw pty whose slave stays open here, so its master never
	 * reads EIO between the programs that use it. */
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, b, sizeof(b)) != 0 ||
	    (slave = open(b, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 ||
	    tcgetattr(slave, &tio) < 0) {
		perror("pty-pair: pty");
		return 1;
	}
	cfmakeraw(&tio);
	tio.c_cflag |= CLOCAL | CREAD;
	if (tcsetattr(slave, TCSANOW, &tio) < 0) {
		perror("pty-pair: tcsetattr");
		return 1;
	}
	unlink(g_link_b);
	if (symlink(b, g_link_b) < 0) {
		perror("pty-pair: symlink");
		return 1;
	}
	stn_diag_init(&d);
	if (tp_simline_start(g_link_a, &lo, a, sizeof(a), &line, &d)) {
		fprintf(stderr, "pty-pair: %s: %s\n", d.where, d.text);
		return 1;
	}
	p.dev = tp_simline_device(line);
	p.fd = master;
	if (pthread_create(&th, NULL, to_b, &p)) {
		fputs("pty-pair: thread\n", stderr);
		return 1;
	}
	printf("pty %s %s\n", a, b);
	fflush(stdout);
	/* pty B to the paced line. */
	for (;;) {
		uint8_t buf[4096];
		ssize_t n = read(master, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (tp_serial_write(p.dev, buf, (size_t)n, -1, NULL))
			break;
	}
	on_signal(0);
	return 0;
}
