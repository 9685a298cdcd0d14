/* tests/test_ymodem.c: the YMODEM sender and receiver against each other,
 * against scripted receivers that behave like lrzsz and U-Boot or misbehave
 * on purpose, and against a pseudo-terminal, each peer in its own process. */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "station/base/error.h"
#include "transport/serial.h"
#include "transport/ymodem.h"

#define SOH 0x01
#define STX 0x02
#define EOT 0x04
#define ACK 0x06
#define NAK 0x15
#define CAN 0x18

/* Short enough that a hung peer fails the suite quickly, long enough for a
 * loaded CI machine. */
static const struct tp_ymodem_opts quick = {
	.start_timeout_ms = 5000, .block_timeout_ms = 2000, .max_retries = 10};

/* Child exit codes the parent checks. */
enum {
	CHILD_OK = 0,
	CHILD_SAW_CANCEL = 7,
	CHILD_SLOW = 8, /* the transfer worked, but a wait took too long */
	CHILD_FAILED = 9,
};

/* ---- helpers ---- */

static uint8_t *pattern(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n ? n : 1);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
	return p;
}

struct mem_source {
	const uint8_t *data;
	size_t len, pos;
	size_t extra; /* bytes served past len: a source longer than said */
};

static int mem_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct mem_source *m = ctx;
	size_t n = m->len + m->extra - m->pos;

	if (n > len)
		n = len;
	/* Odd chunk sizes make the sender assemble blocks from pieces. */
	if (n > 700)
		n = 700;
	for (size_t i = 0; i < n; i++, m->pos++)
		((uint8_t *)buf)[i] = m->pos < m->len ? m->data[m->pos] : 0xEE;
	*got = n;
	return 0;
}

struct progress_log {
	int calls;
	uint64_t last_done, last_total;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress_log *p = ctx;

	p->calls++;
	p->last_done = done;
	p->last_total = total;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connected pair of serial ends over a socketpair. */
static void sock_pair(struct tp_serial **a, struct tp_serial **b)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(tp_serial_from_fd(sv[0], "sender-end", a, NULL), 0);
	assert_int_equal(tp_serial_from_fd(sv[1], "receiver-end", b, NULL), 0);
}

typedef int (*child_fn)(struct tp_serial *s, void *arg);

/* Run fn on `mine` in a child process; the parent keeps `other`. */
static pid_t spawn(child_fn fn, void *arg, struct tp_serial *mine,
		   struct tp_serial *other)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		tp_serial_close(other);
		alarm(60); /* never outlive the suite */
		_exit(fn(mine, arg));
	}
	tp_serial_close(mine);
	return pid;
}

/* The child's exit status; a child still running after timeout_ms is
 * killed and reported as -1. */
static int reap(pid_t pid, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(5000);
	}
}

static int new_memfd(void)
{
	int fd = memfd_create("ymodem-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static void assert_fd_holds(int fd, const uint8_t *data, size_t len)
{
	uint8_t *got = malloc(len + 2);
	ssize_t n;

	assert_non_null(got);
	n = pread(fd, got, len + 1, 0);
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(got, data, len);
	free(got);
}

/* ---- a real receiver in the child ---- */

struct recv_args {
	int out_fd;
	uint64_t max_size;
	const char *want_name;
	uint64_t want_size;
};

/* Exit 0 when the file arrived as announced, else -rc (or CHILD_FAILED). */
static int child_receive(struct tp_serial *s, void *arg)
{
	struct recv_args *a = arg;
	char name[128];
	uint64_t size = 0;
	int rc = tp_ymodem_receive(s, a->out_fd, a->max_size, name,
				   sizeof(name), &size, &quick, NULL);

	/* Closing a pty master at once would flush the last ACK out of the
	 * slave's queue before the sender reads it. */
	tp_serial_drain_quiet(s, 200, 2000);
	tp_serial_close(s);
	if (rc)
		return -rc;
	if (strcmp(name, a->want_name) != 0 || size != a->want_size)
		return CHILD_FAILED;
	return CHILD_OK;
}

/* ---- a scripted receiver: lrzsz or U-Boot, or a faulty one ---- */

struct script {
	int nak_block;       /* NAK this data block ... */
	int nak_times;       /* ... this many times before taking it */
	int ack_first_eot;   /* U-Boot: ACK the first EOT */
	int late_c_ms;       /* U-Boot: 'C' after block 0 only after a pause */
	int cancel_at_block; /* answer this data block with CAN CAN */
	int silent_at_block; /* stop answering at this block */
	int late_ack_block;  /* ACK this block only after late_ack_ms, so the
				sender resends it, then ACK the copy too */
	int late_ack_ms;
	int late_ack0_ms;    /* U-Boot: ACK block 0 only after a pause */
	int garbage;         /* console noise (and a lone CAN) before ACKs */
	/* U-Boot's loady (common/xyzModem.c) as a late sender finds it:
	 * `queued` is on the line (NULL: one 'C'), e.g. ten 'C's then a NAK,
	 * and with `checksum` the batch is in checksum mode (8-bit sum
	 * instead of CRC-16). */
	const char *queued;
	int checksum;
	/* U-Boot: no 'C' after the ACK of block 0; a block must start within
	 * 2 s, else 'C' (NAK) comes 2.25 s later.  The child exits CHILD_SLOW
	 * when block 1 started more than BLOCK1_GAP_MS after that ACK. */
	int uboot_silence;
	int reack_dups; /* U-Boot: a repeated block is ACKed again */
	int out_fd;
};

#define BLOCK1_GAP_MS 1500

static int get(struct tp_serial *s, uint8_t *c)
{
	return tp_serial_getc(s, 3000, c, NULL);
}

static int put(struct tp_serial *s, const char *bytes, size_t n)
{
	return tp_serial_write(s, bytes, n, 3000, NULL);
}

/* Read the packet whose first byte is `first`; 0 with blk/len/data on a
 * sound one, -1 otherwise. */
static int read_packet(struct tp_serial *s, uint8_t first, int checksum,
		       uint8_t *blk, size_t *len, uint8_t *data)
{
	uint8_t hdr[2], crc[2], sum = 0;
	size_t n = first == SOH ? 128 : 1024;

	for (int i = 0; i < 2; i++)
		if (get(s, &hdr[i]))
			return -1;
	for (size_t i = 0; i < n; i++)
		if (get(s, &data[i]))
			return -1;
	for (int i = 0; i < (checksum ? 1 : 2); i++)
		if (get(s, &crc[i]))
			return -1;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + data[i]);
	if ((uint8_t)(hdr[0] ^ hdr[1]) != 0xFF)
		return -1;
	if (checksum ? crc[0] != sum
		     : tp_crc16_xmodem(data, n) != ((crc[0] << 8) | crc[1]))
		return -1;
	*blk = hdr[0];
	*len = n;
	return 0;
}

/* Wait for the sender's cancel after we refused or went quiet. */
static int expect_cancel(struct tp_serial *s, int ms)
{
	int64_t end = now_ms() + ms;
	uint8_t c, last = 0;

	while (now_ms() < end) {
		if (tp_serial_getc(s, 200, &c, NULL) != 0)
			continue;
		if (c == CAN && last == CAN)
			return CHILD_SAW_CANCEL;
		last = c;
	}
	return CHILD_FAILED;
}

/* U-Boot after it ACKed block 0: wait 2 s for a header; if none starts,
 * sit out the line-quiet wait and ask with 'C' (NAK in checksum mode).
 * Returns the first byte of what came in *c and the milliseconds from the
 * ACK to it in *gap_ms; -1 if nothing came. */
static int uboot_wait_block_1(struct tp_serial *s, int checksum, uint8_t *c,
			      int64_t *gap_ms)
{
	int64_t t0 = now_ms();

	if (tp_serial_getc(s, 2000, c, NULL) != 0) {
		usleep(2250 * 1000);
		if (put(s, checksum ? "\x15" : "C", 1) || get(s, c))
			return -1;
	}
	*gap_ms = now_ms() - t0;
	return 0;
}

static int child_script(struct tp_serial *s, void *arg)
{
	const struct script *sc = arg;
	uint8_t data[1024], blk, c;
	const char *start = sc->queued ? sc->queued : "C";
	size_t len;
	uint64_t size, written = 0;
	int64_t gap_ms = 0;
	int expected = 1, naks = 0, pending = 0, rc = CHILD_FAILED;

	if (put(s, start, strlen(start)) || get(s, &c) ||
	    (c != SOH && c != STX) ||
	    read_packet(s, c, sc->checksum, &blk, &len, data) || blk != 0)
		goto out;
	size = strtoull((char *)data + strlen((char *)data) + 1, NULL, 10);
	if (sc->late_ack0_ms)
		usleep((useconds_t)sc->late_ack0_ms * 1000);
	if (put(s, "\x06", 1))
		goto out;
	if (sc->uboot_silence) {
		if (uboot_wait_block_1(s, sc->checksum, &c, &gap_ms))
			goto out;
		pending = 1;
	} else {
		if (sc->late_c_ms)
			usleep((useconds_t)sc->late_c_ms * 1000);
		if (put(s, "C", 1))
			goto out;
	}
	for (;;) {
		if (!pending && get(s, &c))
			goto out;
		pending = 0;
		if (c == EOT)
			break;
		if (c == CAN) {
			rc = expect_cancel(s, 100) == CHILD_SAW_CANCEL
				     ? CHILD_SAW_CANCEL
				     : CHILD_FAILED;
			goto out;
		}
		if ((c != SOH && c != STX) ||
		    read_packet(s, c, sc->checksum, &blk, &len, data))
			goto out;
		if (sc->reack_dups && blk == (uint8_t)(expected - 1)) {
			if (put(s, "\x06", 1))
				goto out;
			continue;
		}
		if (blk != (uint8_t)expected)
			goto out;
		if (expected == sc->silent_at_block) {
			rc = expect_cancel(s, 10000);
			goto out;
		}
		if (expected == sc->cancel_at_block) {
			put(s, "\x18\x18", 2);
			rc = CHILD_OK;
			goto out;
		}
		if (expected == sc->nak_block && naks < sc->nak_times) {
			naks++;
			if (put(s, "\x15", 1))
				goto out;
			continue;
		}
		len = size - written < len ? (size_t)(size - written) : len;
		if (write(sc->out_fd, data, len) != (ssize_t)len)
			goto out;
		written += len;
		expected++;
		if (sc->garbage &&
		    put(s, "U-Boot> \x18" "abc\r\n\x01\x02", 14))
			goto out;
		if (expected - 1 == sc->late_ack_block) {
			/* The sender gives up waiting and sends the block
			 * again; both copies get their ACK, as rb does. */
			usleep((useconds_t)sc->late_ack_ms * 1000);
			if (put(s, "\x06", 1) || get(s, &c) ||
			    (c != SOH && c != STX) ||
			    read_packet(s, c, 0, &blk, &len, data) ||
			    blk != (uint8_t)(expected - 1))
				goto out;
		}
		if (put(s, "\x06", 1))
			goto out;
	}
	if (!sc->ack_first_eot) {
		/* lrzsz's classic check that the EOT was no noise */
		if (put(s, "\x15", 1) || get(s, &c) || c != EOT)
			goto out;
	}
	if (put(s, "\x06", 1) || put(s, sc->checksum ? "\x15" : "C", 1) ||
	    get(s, &c) || c != SOH ||
	    read_packet(s, c, sc->checksum, &blk, &len, data) || blk != 0 ||
	    data[0] != 0 || put(s, "\x06", 1))
		goto out;
	rc = written == size && naks == (sc->nak_block ? sc->nak_times : 0)
		     ? CHILD_OK
		     : CHILD_FAILED;
	if (rc == CHILD_OK && gap_ms > BLOCK1_GAP_MS)
		rc = CHILD_SLOW;
out:
	tp_serial_close(s);
	return rc;
}

/* Send `len` bytes of pattern to a scripted receiver; returns the sender's
 * code, the child's exit status in *child, and checks the stored bytes
 * when the transfer worked. */
static int send_to_script(struct script *sc, size_t len,
			  const struct tp_ymodem_opts *opts, int *child,
			  struct stn_diag *d)
{
	struct tp_serial *a, *b;
	uint8_t *data = pattern(len, 7);
	struct mem_source m = {.data = data, .len = len};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	pid_t pid;
	int rc;

	sc->out_fd = new_memfd();
	sock_pair(&a, &b);
	pid = spawn(child_script, sc, b, a);
	rc = tp_ymodem_send(a, "image.bin", len, &src, opts, NULL, d);
	tp_serial_close(a);
	*child = reap(pid, 15000);
	if (rc == 0 && *child == CHILD_OK)
		assert_fd_holds(sc->out_fd, data, len);
	close(sc->out_fd);
	free(data);
	return rc;
}

/* ---- tests ---- */

static void crc16_matches_published_check_values(void **state)
{
	uint8_t zeros[128] = {0};

	(void)state;
	/* The CRC-16/XMODEM check value from the CRC catalogue. */
	assert_int_equal(tp_crc16_xmodem("123456789", 9), 0x31C3);
	assert_int_equal(tp_crc16_xmodem("", 0), 0x0000);
	assert_int_equal(tp_crc16_xmodem("A", 1), 0x58E5);
	/* The null block's CRC, which the sender relies on being 0. */
	assert_int_equal(tp_crc16_xmodem(zeros, sizeof(zeros)), 0x0000);
}

static void sender_and_receiver_agree_on_every_block_shape(void **state)
{
	/* Empty; one byte; tails around the 128-byte SOH limit; around one
	 * 1K block; and a long file whose block numbers wrap past 255. */
	static const size_t sizes[] = {0,    1,    127,  128,   129,
				       1023, 1024, 1025, 300000};

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		uint8_t *data = pattern(len, (uint32_t)len + 1);
		struct mem_source m = {.data = data, .len = len};
		struct tp_source src = {.read = mem_read, .ctx = &m};
		struct progress_log pl = {0};
		struct tp_progress prog = {.update = on_progress, .ctx = &pl};
		struct recv_args ra = {.out_fd = new_memfd(),
				       .max_size = 1 << 20,
				       .want_name = "image.bin",
				       .want_size = len};
		struct tp_serial *a, *b;
		struct stn_diag d;
		pid_t pid;
		int rc;

		print_message("size %zu\n", len);
		stn_diag_init(&d);
		sock_pair(&a, &b);
		pid = spawn(child_receive, &ra, b, a);
		rc = tp_ymodem_send(a, "image.bin", len, &src, &quick, &prog,
				    &d);
		tp_serial_close(a);
		assert_int_equal(reap(pid, 15000), CHILD_OK);
		assert_int_equal(rc, 0);
		assert_fd_holds(ra.out_fd, data, len);
		/* One call per data block: a short tail is one block too. */
		assert_int_equal(pl.calls, (int)((len + 1023) / 1024));
		if (len) {
			assert_int_equal(pl.last_done, len);
			assert_int_equal(pl.last_total, len);
		}
		close(ra.out_fd);
		free(data);
	}
}

static void transfer_works_over_a_pseudo_terminal(void **state)
{
	size_t len = 300000;
	uint8_t *data = pattern(len, 99);
	struct mem_source m = {.data = data, .len = len};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	struct recv_args ra = {.out_fd = new_memfd(),
			       .max_size = 1 << 20,
			       .want_name = "fw.img",
			       .want_size = len};
	struct tp_serial *a, *b;
	struct termios tio;
	struct stn_diag d;
	char path[128];
	int master, slave;
	pid_t pid;
	int rc;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(openpty(&master, &slave, path, NULL, NULL), 0);
	assert_int_equal(tcgetattr(slave, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(slave, TCSANOW, &tio), 0);
	/* The station side opens the tty by path as it would /dev/ttyUSB0;
	 * the slave fd stays open here so the master never sees a hangup. */
	if (tp_serial_open(path, 921600, 0, &a, &d) != 0)
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(tp_serial_from_fd(master, "pty-master", &b, NULL), 0);
	pid = spawn(child_receive, &ra, b, a);
	rc = tp_ymodem_send(a, "fw.img", len, &src, &quick, NULL, &d);
	tp_serial_close(a);
	assert_int_equal(reap(pid, 15000), CHILD_OK);
	assert_int_equal(rc, 0);
	assert_fd_holds(ra.out_fd, data, len);
	close(slave);
	close(ra.out_fd);
	free(data);
}

static void receiver_cancel_aborts_the_sender(void **state)
{
	struct script sc = {.cancel_at_block = 3};
	struct stn_diag d;
	int child;
	int rc;

	(void)state;
	stn_diag_init(&d);
	rc = send_to_script(&sc, 10000, &quick, &child, &d);
	assert_int_equal(rc, STN_E_CANCELLED);
	assert_int_equal(child, CHILD_OK);
	assert_string_equal(d.where, "sender-end");
	assert_non_null(strstr(d.text, "cancelled"));
	assert_non_null(strstr(d.text, "block 3"));
}

static void silent_receiver_times_out_within_the_start_timeout(void **state)
{
	const struct tp_ymodem_opts o = {.start_timeout_ms = 300};
	uint8_t one = 1;
	struct mem_source m = {.data = &one, .len = 1};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	struct tp_serial *a, *b;
	struct stn_diag d;
	int64_t t0, took;
	int rc;

	(void)state;
	stn_diag_init(&d);
	sock_pair(&a, &b);
	t0 = now_ms();
	rc = tp_ymodem_send(a, "x.bin", 1, &src, &o, NULL, &d);
	took = now_ms() - t0;
	assert_int_equal(rc, STN_E_TIMEOUT);
	assert_true(took >= 290 && took < 1500);
	assert_non_null(strstr(d.text, "no 'C'"));
	tp_serial_close(a);
	tp_serial_close(b);
}

static void receiver_silent_mid_transfer_times_out_and_is_cancelled(
	void **state)
{
	const struct tp_ymodem_opts o = {.start_timeout_ms = 2000,
					 .block_timeout_ms = 250};
	struct script sc = {.silent_at_block = 2};
	struct stn_diag d;
	int64_t t0, took;
	int child;
	int rc;

	(void)state;
	stn_diag_init(&d);
	t0 = now_ms();
	rc = send_to_script(&sc, 5000, &o, &child, &d);
	took = now_ms() - t0;
	assert_int_equal(rc, STN_E_TIMEOUT);
	/* Twice the block timeout, then the receiver hears CAN CAN. */
	assert_true(took < 3000);
	assert_int_equal(child, CHILD_SAW_CANCEL);
	assert_non_null(strstr(d.text, "block 2"));
}

static void block_naked_twice_then_acked_succeeds(void **state)
{
	struct script sc = {.nak_block = 2, .nak_times = 2};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(send_to_script(&sc, 5000, &quick, &child, &d), 0);
	assert_int_equal(child, CHILD_OK);
}

static void block_naked_max_retries_times_fails_and_cancels(void **state)
{
	const struct tp_ymodem_opts o = {.max_retries = 3};
	struct script sc = {.nak_block = 2, .nak_times = 100};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(send_to_script(&sc, 5000, &o, &child, &d),
			 STN_E_PROTOCOL);
	assert_string_equal(d.text, "block 2 NAKed 3 times (3 tries)");
	assert_int_equal(child, CHILD_SAW_CANCEL);
}

static void uboot_style_receiver_acking_first_eot_works(void **state)
{
	/* U-Boot's loady: ACKs the first EOT, and asks for data with 'C'
	 * only after its read timeout (shortened here). */
	struct script sc = {.ack_first_eot = 1, .late_c_ms = 300,
			    .reack_dups = 1};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(send_to_script(&sc, 2100, &quick, &child, &d), 0);
	assert_int_equal(child, CHILD_OK);
}

static void oversize_file_is_refused_by_the_receiver(void **state)
{
	size_t len = 300000;
	uint8_t *data = pattern(len, 3);
	struct mem_source m = {.data = data, .len = len};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	struct recv_args ra = {.out_fd = new_memfd(),
			       .max_size = 1000,
			       .want_name = "big.bin",
			       .want_size = len};
	struct tp_serial *a, *b;
	struct stn_diag d;
	pid_t pid;
	int rc;

	(void)state;
	stn_diag_init(&d);
	sock_pair(&a, &b);
	pid = spawn(child_receive, &ra, b, a);
	rc = tp_ymodem_send(a, "big.bin", len, &src, &quick, NULL, &d);
	tp_serial_close(a);
	assert_int_equal(rc, STN_E_CANCELLED);
	assert_int_equal(reap(pid, 15000), -STN_E_TOOBIG);
	/* Nothing of it was stored. */
	assert_int_equal(lseek(ra.out_fd, 0, SEEK_END), 0);
	close(ra.out_fd);
	free(data);
}

static void source_shorter_or_longer_than_announced_is_io_error(void **state)
{
	static const struct {
		size_t have, extra, announced;
	} cases[] = {
		{3000, 0, 5000}, /* ends early */
		{5000, 10, 5000}, /* goes on: caught before the last block */
		{0, 1, 0},        /* empty file that is not empty */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *data = pattern(cases[i].have, 5);
		struct mem_source m = {.data = data,
				       .len = cases[i].have,
				       .extra = cases[i].extra};
		struct tp_source src = {.read = mem_read, .ctx = &m};
		struct recv_args ra = {.out_fd = new_memfd(),
				       .max_size = 1 << 20,
				       .want_name = "s.bin",
				       .want_size = cases[i].announced};
		struct tp_serial *a, *b;
		struct stn_diag d;
		pid_t pid;
		int child;
		int rc;

		stn_diag_init(&d);
		sock_pair(&a, &b);
		pid = spawn(child_receive, &ra, b, a);
		rc = tp_ymodem_send(a, "s.bin", cases[i].announced, &src,
				    &quick, NULL, &d);
		tp_serial_close(a);
		child = reap(pid, 15000);
		assert_int_equal(rc, STN_E_IO);
		assert_non_null(strstr(d.text, "image"));
		/* The receiver never took the file as complete: it was
		 * cancelled, or (empty case) never got a block 0. */
		assert_true(child == -STN_E_CANCELLED ||
			    child == -STN_E_NODEVICE ||
			    child == -STN_E_TIMEOUT);
		close(ra.out_fd);
		free(data);
	}
}

static void sender_refuses_names_that_are_not_base_names(void **state)
{
	static const char *bad[] = {"", "dir/image.bin", "/abs"};
	char longname[200];
	struct mem_source m = {.data = NULL, .len = 0};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	struct tp_serial *a, *b;

	(void)state;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	sock_pair(&a, &b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct stn_diag d;

		stn_diag_init(&d);
		assert_int_equal(tp_ymodem_send(a, bad[i], 0, &src, &quick,
						NULL, &d),
				 STN_E_USAGE);
	}
	assert_int_equal(tp_ymodem_send(a, longname, 0, &src, &quick, NULL,
					NULL),
			 STN_E_USAGE);
	tp_serial_close(a);
	tp_serial_close(b);
}

/* A hostile sender: block 0 names a path. */
static int child_evil_sender(struct tp_serial *s, void *arg)
{
	const char *name = arg;
	uint8_t pkt[133] = {SOH, 0, 0xFF};
	uint8_t c;
	uint16_t crc;
	int rc = CHILD_FAILED;

	memcpy(pkt + 3, name, strlen(name));
	memcpy(pkt + 3 + strlen(name) + 1, "10", 2);
	crc = tp_crc16_xmodem(pkt + 3, 128);
	pkt[131] = (uint8_t)(crc >> 8);
	pkt[132] = (uint8_t)crc;
	if (get(s, &c) || c != 'C' || put(s, (char *)pkt, sizeof(pkt)))
		goto out;
	rc = expect_cancel(s, 3000);
out:
	tp_serial_close(s);
	return rc;
}

static void receiver_refuses_paths_in_block_0(void **state)
{
	static char bad[][16] = {"..", "../etc/passwd", "a/b", "x..y"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tp_serial *a, *b;
		struct stn_diag d;
		char name[64] = "untouched";
		uint64_t size = 77;
		int fd = new_memfd();
		pid_t pid;

		stn_diag_init(&d);
		sock_pair(&a, &b);
		pid = spawn(child_evil_sender, bad[i], a, b);
		assert_int_equal(tp_ymodem_receive(b, fd, 1000, name,
						   sizeof(name), &size, &quick,
						   &d),
				 STN_E_PROTOCOL);
		assert_int_equal(reap(pid, 5000), CHILD_SAW_CANCEL);
		assert_string_equal(name, "untouched");
		assert_int_equal(size, 77);
		assert_non_null(strstr(d.text, "block 0"));
		tp_serial_close(b);
		close(fd);
	}
}

static void make_packet(uint8_t *pkt, uint8_t blk, const uint8_t *data)
{
	uint16_t crc = tp_crc16_xmodem(data, 128);

	pkt[0] = SOH;
	pkt[1] = blk;
	pkt[2] = (uint8_t)~blk;
	memcpy(pkt + 3, data, 128);
	pkt[131] = (uint8_t)(crc >> 8);
	pkt[132] = (uint8_t)crc;
}

/* A sender on a noisy line: block 1 arrives with a flipped bit first. */
static int child_noisy_sender(struct tp_serial *s, void *arg)
{
	const uint8_t *payload = arg;
	uint8_t hdr[128] = "noisy.bin\0" "100", pkt[133], c;
	int rc = CHILD_FAILED;

	make_packet(pkt, 0, hdr);
	if (get(s, &c) || c != 'C' || put(s, (char *)pkt, 133) ||
	    get(s, &c) || c != ACK || get(s, &c) || c != 'C')
		goto out;
	make_packet(pkt, 1, payload);
	pkt[50] ^= 0x04;
	if (put(s, (char *)pkt, 133) || get(s, &c) || c != NAK)
		goto out;
	pkt[50] ^= 0x04;
	if (put(s, (char *)pkt, 133) || get(s, &c) || c != ACK ||
	    put(s, "\x04", 1) || get(s, &c) || c != NAK ||
	    put(s, "\x04", 1) || get(s, &c) || c != ACK || get(s, &c) ||
	    c != 'C')
		goto out;
	memset(hdr, 0, sizeof(hdr));
	make_packet(pkt, 0, hdr);
	if (put(s, (char *)pkt, 133) || get(s, &c) || c != ACK)
		goto out;
	rc = CHILD_OK;
out:
	tp_serial_close(s);
	return rc;
}

static void receiver_naks_a_damaged_block_and_takes_the_resend(void **state)
{
	uint8_t *payload = pattern(128, 11);
	struct tp_serial *a, *b;
	struct stn_diag d;
	char name[64];
	uint64_t size = 0;
	int fd = new_memfd();
	pid_t pid;

	(void)state;
	stn_diag_init(&d);
	sock_pair(&a, &b);
	pid = spawn(child_noisy_sender, payload, a, b);
	assert_int_equal(tp_ymodem_receive(b, fd, 1000, name, sizeof(name),
					   &size, &quick, &d),
			 0);
	assert_int_equal(reap(pid, 5000), CHILD_OK);
	assert_string_equal(name, "noisy.bin");
	assert_int_equal(size, 100);
	assert_fd_holds(fd, payload, 100);
	tp_serial_close(b);
	close(fd);
	free(payload);
}

static void receiver_times_out_when_nobody_sends(void **state)
{
	const struct tp_ymodem_opts o = {.start_timeout_ms = 400};
	struct tp_serial *a, *b;
	struct stn_diag d;
	char name[32];
	uint64_t size;
	int64_t t0;
	int fd = new_memfd();

	(void)state;
	stn_diag_init(&d);
	sock_pair(&a, &b);
	t0 = now_ms();
	assert_int_equal(tp_ymodem_receive(b, fd, 1000, name, sizeof(name),
					   &size, &o, &d),
			 STN_E_TIMEOUT);
	assert_true(now_ms() - t0 < 1500);
	tp_serial_close(a);
	tp_serial_close(b);
	close(fd);
}

static void hangup_is_reported_as_device_gone(void **state)
{
	uint8_t one = 1;
	struct mem_source m = {.data = &one, .len = 1};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	struct tp_serial *a, *b;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	sock_pair(&a, &b);
	tp_serial_close(b);
	assert_int_equal(tp_ymodem_send(a, "x.bin", 1, &src, &quick, NULL, &d),
			 STN_E_NODEVICE);
	tp_serial_close(a);
}

static void duplicate_ack_after_a_resend_is_not_taken_for_the_next(
	void **state)
{
	/* Block 3's ACK comes after the sender's timeout: it resends, the
	 * receiver ACKs both copies.  Taking the second ACK for block 4's
	 * would put the sender one answer ahead and end in a broken batch. */
	const struct tp_ymodem_opts o = {.start_timeout_ms = 3000,
					 .block_timeout_ms = 300};
	struct script sc = {.late_ack_block = 3, .late_ack_ms = 450};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	if (send_to_script(&sc, 8000, &o, &child, &d) != 0)
		fail_msg("%s", d.text);
	assert_int_equal(child, CHILD_OK);
}

static void noise_between_blocks_is_skipped(void **state)
{
	struct script sc = {.garbage = 1};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	if (send_to_script(&sc, 6000, &quick, &child, &d) != 0)
		fail_msg("%s", d.text);
	assert_int_equal(child, CHILD_OK);
}

static void uboot_style_late_ack_of_block_0_works(void **state)
{
	struct script sc = {.ack_first_eot = 1, .late_ack0_ms = 600,
			    .late_c_ms = 300, .reack_dups = 1};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(send_to_script(&sc, 1500, &quick, &child, &d), 0);
	assert_int_equal(child, CHILD_OK);
}

static void uboot_silent_after_block_0_gets_block_1_after_a_short_wait(
	void **state)
{
	/* loady ACKs block 0 and asks for nothing until 4.3 s later; it
	 * takes block 1 if it starts within 2 s.  The block timeout is long
	 * enough that waiting for U-Boot's late 'C' would still work: the
	 * child's gap check is what tells the two apart. */
	const struct tp_ymodem_opts o = {.start_timeout_ms = 5000,
					 .block_timeout_ms = 6000};
	struct script sc = {.ack_first_eot = 1, .uboot_silence = 1,
			    .reack_dups = 1};
	struct stn_diag d;
	int64_t t0, took;
	int child, rc;

	(void)state;
	stn_diag_init(&d);
	t0 = now_ms();
	rc = send_to_script(&sc, 3000, &o, &child, &d);
	took = now_ms() - t0;
	if (rc != 0)
		fail_msg("%s", d.text);
	assert_int_equal(child, CHILD_OK);
	assert_true(took < 3000);
}

static void empty_file_to_silent_uboot_gets_eot_after_a_short_wait(
	void **state)
{
	const struct tp_ymodem_opts o = {.start_timeout_ms = 5000,
					 .block_timeout_ms = 6000};
	struct script sc = {.ack_first_eot = 1, .uboot_silence = 1,
			    .reack_dups = 1};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	if (send_to_script(&sc, 0, &o, &child, &d) != 0)
		fail_msg("%s", d.text);
	assert_int_equal(child, CHILD_OK);
}

static void late_sender_takes_the_last_of_queued_cs_and_nak_as_the_mode(
	void **state)
{
	/* Started after loady gave up on CRC mode: nine 'C's then NAK are
	 * queued, and U-Boot now checks an 8-bit sum, block 0 included. */
	struct script sc = {.queued = "CCCCCCCCC\x15", .checksum = 1,
			    .ack_first_eot = 1, .uboot_silence = 1,
			    .reack_dups = 1};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	if (send_to_script(&sc, 5000, &quick, &child, &d) != 0)
		fail_msg("%s", d.text);
	assert_int_equal(child, CHILD_OK);
}

static void late_c_that_crosses_an_unasked_block_1_costs_one_resend(
	void **state)
{
	/* A receiver slower than the short wait: its 'C' reads as a NAK of
	 * the block 1 already sent, which goes again and is ACKed twice; the
	 * second ACK must not be taken for block 2's, or the NAK of block 2
	 * would be taken for block 3's. */
	struct script sc = {.late_c_ms = 800, .reack_dups = 1,
			    .ack_first_eot = 1, .nak_block = 2,
			    .nak_times = 1};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	if (send_to_script(&sc, 2500, &quick, &child, &d) != 0)
		fail_msg("%s", d.text);
	assert_int_equal(child, CHILD_OK);
}

static void queued_nak_then_c_keeps_crc_mode(void **state)
{
	/* A NAK that a 'C' follows is an older request: CRC-16 it is. */
	struct script sc = {.queued = "\x15\x15" "CC", .reack_dups = 1};
	struct stn_diag d;
	int child;

	(void)state;
	stn_diag_init(&d);
	if (send_to_script(&sc, 2000, &quick, &child, &d) != 0)
		fail_msg("%s", d.text);
	assert_int_equal(child, CHILD_OK);
}

static void answer_timeouts_grow_with_the_wire_time(void **state)
{
	struct tp_serial *s9600, *fast;
	struct termios tio;
	char path[128];
	int master, slave;

	(void)state;
	assert_int_equal(openpty(&master, &slave, path, NULL, NULL), 0);
	assert_int_equal(tcgetattr(slave, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(slave, TCSANOW, &tio), 0);
	assert_int_equal(tp_serial_open(path, 9600, 0, &s9600, NULL), 0);
	assert_int_equal(tp_serial_baud(s9600), 9600);
	/* A 1K block with its header and CRC: 1029 bytes, 10 bits each. */
	assert_int_equal(tp_serial_line_ms(s9600, 1029), 1072);
	tp_serial_close(s9600);
	assert_int_equal(tp_serial_open(path, 921600, 0, &fast, NULL), 0);
	assert_int_equal(tp_serial_line_ms(fast, 1029), 12);
	tp_serial_close(fast);
	assert_int_equal(tp_serial_from_fd(dup(master), "wrapped", &fast,
					   NULL),
			 0);
	assert_int_equal(tp_serial_line_ms(fast, 1029), 0);
	tp_serial_close(fast);
	close(master);
	close(slave);
}

/* The simulator's fault hooks: block 2 is handled as damaged on arrival,
 * every 3rd block is NAKed once, and answers are slow. */
static int fault_every(void *ctx, uint64_t index, unsigned arrival)
{
	int *hits = ctx;

	if (arrival == 1 && (index == 2 || index % 3 == 0)) {
		(*hits)++;
		return 1;
	}
	return 0;
}

struct hooked_args {
	int out_fd;
	int hits;
};

static int child_hooked_receive(struct tp_serial *s, void *arg)
{
	struct hooked_args *a = arg;
	struct tp_ymodem_opts o = quick;
	char name[64];
	uint64_t size;
	int rc;

	o.block_fault = fault_every;
	o.fault_ctx = &a->hits;
	o.answer_delay_ms = 20;
	rc = tp_ymodem_receive(s, a->out_fd, 1 << 20, name, sizeof(name),
			       &size, &o, NULL);
	tp_serial_drain_quiet(s, 200, 2000);
	tp_serial_close(s);
	if (rc)
		return -rc;
	/* blocks 2, 3, 6, 9: four injected faults */
	return a->hits == 4 ? CHILD_OK : CHILD_FAILED;
}

static void receiver_fault_hooks_make_the_sender_retry(void **state)
{
	size_t len = 10000;
	uint8_t *data = pattern(len, 21);
	struct mem_source m = {.data = data, .len = len};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	struct hooked_args ha = {.out_fd = new_memfd()};
	struct tp_serial *a, *b;
	struct stn_diag d;
	pid_t pid;
	int rc;

	(void)state;
	stn_diag_init(&d);
	sock_pair(&a, &b);
	pid = spawn(child_hooked_receive, &ha, b, a);
	rc = tp_ymodem_send(a, "hooked.bin", len, &src, &quick, NULL, &d);
	tp_serial_close(a);
	assert_int_equal(reap(pid, 15000), CHILD_OK);
	assert_int_equal(rc, 0);
	assert_fd_holds(ha.out_fd, data, len);
	close(ha.out_fd);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc16_matches_published_check_values),
		cmocka_unit_test(
			sender_and_receiver_agree_on_every_block_shape),
		cmocka_unit_test(transfer_works_over_a_pseudo_terminal),
		cmocka_unit_test(receiver_cancel_aborts_the_sender),
		cmocka_unit_test(
			silent_receiver_times_out_within_the_start_timeout),
		cmocka_unit_test(
			receiver_silent_mid_transfer_times_out_and_is_cancelled),
		cmocka_unit_test(block_naked_twice_then_acked_succeeds),
		cmocka_unit_test(
			block_naked_max_retries_times_fails_and_cancels),
		cmocka_unit_test(uboot_style_receiver_acking_first_eot_works),
		cmocka_unit_test(oversize_file_is_refused_by_the_receiver),
		cmocka_unit_test(
			source_shorter_or_longer_than_announced_is_io_error),
		cmocka_unit_test(sender_refuses_names_that_are_not_base_names),
		cmocka_unit_test(receiver_refuses_paths_in_block_0),
		cmocka_unit_test(
			receiver_naks_a_damaged_block_and_takes_the_resend),
		cmocka_unit_test(receiver_times_out_when_nobody_sends),
		cmocka_unit_test(hangup_is_reported_as_device_gone),
		cmocka_unit_test(
			duplicate_ack_after_a_resend_is_not_taken_for_the_next),
		cmocka_unit_test(noise_between_blocks_is_skipped),
		cmocka_unit_test(uboot_style_late_ack_of_block_0_works),
		cmocka_unit_test(
			uboot_silent_after_block_0_gets_block_1_after_a_short_wait),
		cmocka_unit_test(
			empty_file_to_silent_uboot_gets_eot_after_a_short_wait),
		cmocka_unit_test(
			late_sender_takes_the_last_of_queued_cs_and_nak_as_the_mode),
		cmocka_unit_test(
			late_c_that_crosses_an_unasked_block_1_costs_one_resend),
		cmocka_unit_test(queued_nak_then_c_keeps_crc_mode),
		cmocka_unit_test(answer_timeouts_grow_with_the_wire_time),
		cmocka_unit_test(receiver_fault_hooks_make_the_sender_retry),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
