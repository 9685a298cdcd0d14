/* transport/sim/ysend.c: send one file with the station's YMODEM sender,
 * so the end-to-end tests can hold it against lrzsz's rb and a person can
 * try it against a real bootloader's `loady`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "station/base/error.h"
#include "transport/serial.h"
#include "transport/ymodem.h"

static int fd_read(void *ctx, void *buf, size_t len, size_t *got)
{
	int fd = *(int *)ctx;

	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return STN_E_IO;
		*got = (size_t)n;
		return 0;
	}
}

int main(int argc, char **argv)
{
	struct tp_serial *s = NULL;
	struct stn_diag d;
	struct stat st;
	char msg[1024];
	const char *base;
	unsigned baud = 115200;
	int argi = 1;
	int fd, rc;

	if (argc == 5 && strcmp(argv[1], "--baud") == 0) {
		baud = (unsigned)strtoul(argv[2], NULL, 10);
		argi = 3;
	}
	if (argc - argi != 2) {
		fputs("usage: ysend [--baud N] DEVICE FILE\n", stderr);
		return 2;
	}
	fd = open(argv[argi + 1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "ysend: %s: %s\n", argv[argi + 1],
			strerror(errno));
		return 2;
	}
	base = strrchr(argv[argi + 1], '/');
	base = base ? base + 1 : argv[argi + 1];
	stn_diag_init(&d);
	rc = tp_serial_open(argv[argi], baud, 0, &s, &d);
	if (!rc) {
		struct tp_source src = {.read = fd_read, .ctx = &fd};

		rc = tp_ymodem_send(s, base, (uint64_t)st.st_size, &src, NULL,
				    NULL, &d);
	}
	tp_serial_close(s);
	close(fd);
	if (rc) {
		stn_diag_format(&d, msg, sizeof(msg));
		fprintf(stderr, "ysend: %s\n", msg);
		return stn_err_exit(rc);
	}
	return 0;
}
