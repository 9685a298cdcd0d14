/* tests/test_smp.c: the SMP transport: console framing and reassembly,
 * requests against scripted devices (each in its own process over a
 * socket pair) for the faults a real device shows only rarely (answers to
 * old requests, log lines in between, silence, offsets that go wrong), and
 * against the SMP simulator on a pseudo-terminal, including a line drop
 * that the upload survives by resuming at the device's offset. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "station/base/sha256.h"
#include "station/base/error.h"
#include "transport/cbor.h"
#include "transport/mcuboot.h"
#include "transport/serial.h"
#include "transport/smp.h"

static const struct tp_smp_opts quick = {.timeout_ms = 400, .retries = 3};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- framing ---- */

static size_t split_lines(const uint8_t *wire, size_t n, size_t *lens,
			  size_t cap)
{
	size_t k = 0, s = 0;

	for (size_t i = 0; i < n; i++)
		if (wire[i] == '\n') {
			assert_true(k < cap);
			lens[k++] = i - s;
			s = i + 1;
		}
	assert_int_equal(s, n); /* every frame ends in a newline */
	return k;
}

static void frames_are_at_most_127_bytes_and_round_trip(void **state)
{
	static uint8_t msg[3000], wire[5000];
	static struct tp_smp_rx rx;
	size_t lens[64], sizes[] = {8, 9, 10, 90, 91, 92, 93, 2000, 3000};

	(void)state;
	for (size_t c = 0; c < sizeof(sizes) / sizeof(sizes[0]); c++) {
		size_t len = sizes[c], n, k, off = 0;
		const uint8_t *got = NULL;
		size_t glen = 0;
		int rc = 0;

		for (size_t i = 0; i < len; i++)
			msg[i] = (uint8_t)(i * 7 + c);
		n = tp_smp_frame(msg, len, wire, sizeof(wire));
		assert_true(n > 0);
		k = split_lines(wire, n, lens, 64);
		memset(&rx, 0, sizeof(rx));
		for (size_t f = 0; f < k; f++) {
			const char *why;
			char line[200];

			assert_true(lens[f] + 1 <= TP_SMP_FRAME_MAX);
			assert_int_equal(wire[off], f == 0 ? 0x06 : 0x04);
			assert_int_equal(wire[off + 1], f == 0 ? 0x09 : 0x14);
			memcpy(line, wire + off, lens[f]);
			line[lens[f]] = '\0';
			rc = tp_smp_rx_line(&rx, line, lens[f], &got, &glen,
					    &why);
			assert_int_equal(rc, f + 1 == k ? 1 : 0);
			off += lens[f] + 1;
		}
		assert_int_equal(glen, len);
		assert_memory_equal(got, msg, len);
	}
	/* Too small an output buffer is refused, not overrun. */
	assert_int_equal(tp_smp_frame(msg, 100, wire, 50), 0);
	assert_int_equal(tp_smp_frame(msg, TP_SMP_PACKET_MAX + 1, wire,
				      sizeof(wire)),
			 0);
}

static void broken_frames_are_dropped_with_a_reason(void **state)
{
	static struct tp_smp_rx rx;
	uint8_t msg[20] = {0, 0, 0, 12, 0, 1, 5, 0}, wire[200];
	char line[200];
	const uint8_t *got;
	const char *why;
	size_t glen, n;

	(void)state;
	n = tp_smp_frame(msg, sizeof(msg), wire, sizeof(wire));
	assert_int_equal(wire[n - 1], '\n');
	memcpy(line, wire, n - 1);
	line[n - 1] = '\0';
	/* A log line is not ours; nor a continuation without a start. */
	memset(&rx, 0, sizeof(rx));
	assert_int_equal(tp_smp_rx_line(&rx, "<inf> boot", 10, &got, &glen,
					&why),
			 0);
	assert_int_equal(tp_smp_rx_line(&rx, "\x04\x14QUJD", 6, &got, &glen,
					&why),
			 0);
	/* One flipped base64 character: the CRC catches it. */
	line[10] = line[10] == 'A' ? 'B' : 'A';
	assert_int_equal(tp_smp_rx_line(&rx, line, n - 1, &got, &glen, &why),
			 -1);
	assert_non_null(strstr(why, "CRC"));
	line[10] = '*';
	assert_int_equal(tp_smp_rx_line(&rx, line, n - 1, &got, &glen, &why),
			 -1);
	assert_non_null(strstr(why, "not base64"));
	assert_int_equal(tp_smp_rx_line(&rx, "\x06\x09QUJ", 5, &got, &glen,
					&why),
			 -1);
	assert_non_null(strstr(why, "whole base64 groups"));
	/* A length field that no message can have. */
	assert_int_equal(tp_smp_rx_line(&rx, "\x06\x09//8=", 6, &got, &glen,
					&why),
			 -1);
	assert_non_null(strstr(why, "length"));
	/* A CR before the newline is allowed. */
	memcpy(line, wire, n - 1);
	line[n - 1] = '\r';
	line[n] = '\0';
	assert_int_equal(tp_smp_rx_line(&rx, line, n, &got, &glen, &why), 1);
	assert_int_equal(glen, sizeof(msg));
}

/* ---- scripted devices ---- */

struct script {
	int stale_first;     /* answer with a wrong sequence number first */
	int log_lines;       /* write a log line before each answer */
	int silent_first;    /* ignore the first request */
	int late_first_ms;   /* answer the first request this late ... */
	int ignore_second;   /* ... and never the second */
	int rc;              /* answer with this rc (0: success body) */
	int err_v2;          /* the rc in SMP version 2's err map */
	uint64_t resume_at;  /* upload: first answer's offset */
	int go_back;         /* upload: third answer goes back to 0 */
	int overshoot;       /* upload: second answer claims too much */
	int stall;           /* upload: never advance past the first */
	uint64_t size;       /* upload: image size */
	int fd;              /* upload: where the data goes */
};

static void fake_answer(struct tp_serial *s, const uint8_t *req,
			const uint8_t *body, size_t blen, uint8_t seq)
{
	uint8_t msg[512], wire[1024];
	size_t n;

	msg[0] = (uint8_t)((req[0] & 7) + 1);
	msg[1] = 0;
	msg[2] = (uint8_t)(blen >> 8);
	msg[3] = (uint8_t)blen;
	memcpy(msg + 4, req + 4, 4);
	msg[6] = seq;
	memcpy(msg + 8, body, blen);
	n = tp_smp_frame(msg, 8 + blen, wire, sizeof(wire));
	tp_serial_write(s, wire, n, 2000, NULL);
}

static int child_device(struct tp_serial *s, const struct script *sc)
{
	static struct tp_smp_rx rx;
	struct tp_cbor_item it[64];
	uint64_t have = 0;
	int requests = 0, ups = 0;
	char line[300];

	for (;;) {
		const uint8_t *msg;
		const char *why;
		uint8_t body[64];
		struct tp_cbor_writer w;
		size_t len, n;
		long off, data;

		if (tp_serial_readline(s, line, sizeof(line), 5000, NULL))
			return 0;
		if (tp_smp_rx_line(&rx, line, strlen(line), &msg, &len,
				   &why) != 1)
			continue;
		requests++;
		if (sc->silent_first && requests == 1)
			continue;
		if (sc->late_first_ms && requests == 1)
			usleep((useconds_t)sc->late_first_ms * 1000);
		if (sc->ignore_second && requests == 2)
			continue;
		if (sc->log_lines)
			tp_serial_write(s, "[00:01] <inf> main: tick\r\n", 26,
					1000, NULL);
		if (sc->stale_first && requests == 1)
			fake_answer(s, msg, (const uint8_t *)"\xa0", 1,
				    (uint8_t)(msg[6] - 1));
		tp_cbor_writer_init(&w, body, sizeof(body));
		if (sc->rc && sc->err_v2) {
			tp_cbor_put_map(&w, 1);
			tp_cbor_put_text(&w, "err");
			tp_cbor_put_map(&w, 2);
			tp_cbor_put_text(&w, "group");
			tp_cbor_put_uint(&w, 1);
			tp_cbor_put_text(&w, "rc");
			tp_cbor_put_uint(&w, (uint64_t)sc->rc);
		} else if (sc->rc) {
			tp_cbor_put_map(&w, 1);
			tp_cbor_put_text(&w, "rc");
			tp_cbor_put_uint(&w, (uint64_t)sc->rc);
		} else if (msg[5] == TP_SMP_GROUP_OS &&
			   msg[7] == TP_SMP_OS_PARAMS) {
			/* Like MCUboot's serial recovery: not supported. */
			tp_cbor_put_map(&w, 1);
			tp_cbor_put_text(&w, "rc");
			tp_cbor_put_uint(&w, 8);
		} else if (msg[5] == TP_SMP_GROUP_IMAGE &&
			   msg[7] == TP_SMP_IMAGE_UPLOAD) {
			if (tp_cbor_decode(msg + 8, len - 8, it, 64, &n, "t",
					   NULL))
				return 9;
			off = tp_cbor_map_get(it, n, 0, "off");
			data = tp_cbor_map_get(it, n, 0, "data");
			if (off < 0 || data < 0 || it[off].u != have)
				return 8; /* the station must send at ours */
			if (pwrite(sc->fd, it[data].ptr, (size_t)it[data].u,
				   (off_t)have) != (ssize_t)it[data].u)
				return 9;
			have += it[data].u;
			ups++;
			if (ups == 1 && sc->resume_at)
				have = sc->resume_at;
			if (sc->stall)
				have = 0;
			if (sc->overshoot && ups == 2)
				have += 1000;
			if (sc->go_back && ups == 3)
				have = 0;
			tp_cbor_put_map(&w, 2);
			tp_cbor_put_text(&w, "rc");
			tp_cbor_put_uint(&w, 0);
			tp_cbor_put_text(&w, "off");
			tp_cbor_put_uint(&w, have);
		} else {
			tp_cbor_put_map(&w, 1);
			tp_cbor_put_text(&w, "output");
			tp_cbor_put_text(&w, "fake_board");
		}
		fake_answer(s, msg, body, w.len, msg[6]);
	}
}

struct run {
	struct tp_smp *m;
	pid_t pid;
	struct tp_serial *dev;
};

static void start_fake(struct run *r, const struct script *sc)
{
	struct tp_serial *a, *b;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(tp_serial_from_fd(sv[0], "station-end", &a, NULL), 0);
	assert_int_equal(tp_serial_from_fd(sv[1], "device-end", &b, NULL), 0);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		tp_serial_close(a);
		alarm(30);
		_exit(child_device(b, sc));
	}
	tp_serial_close(b);
	assert_int_equal(tp_smp_from_serial(a, &quick, &r->m, NULL), 0);
}

static int stop_fake(struct run *r)
{
	int status;

	tp_smp_close(r->m);
	kill(r->pid, SIGTERM);
	waitpid(r->pid, &status, 0);
	/* Still serving when told to stop is how a good run ends. */
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
		return 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void stale_answers_and_log_lines_are_skipped(void **state)
{
	struct script sc = {.stale_first = 1, .log_lines = 1};
	struct tp_smp_stats st;
	struct stn_diag d;
	struct run r;
	char out[64];

	(void)state;
	start_fake(&r, &sc);
	stn_diag_init(&d);
	assert_int_equal(tp_smp_os_info(r.m, "i", out, sizeof(out), &d), 0);
	assert_string_equal(out, "fake_board");
	tp_smp_stats(r.m, &st);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.resends, 0);
	stop_fake(&r);
}

static void an_unanswered_request_is_sent_again(void **state)
{
	struct script sc = {.silent_first = 1};
	struct tp_smp_stats st;
	struct stn_diag d;
	struct run r;
	char out[64];

	(void)state;
	start_fake(&r, &sc);
	stn_diag_init(&d);
	assert_int_equal(tp_smp_os_info(r.m, "i", out, sizeof(out), &d), 0);
	tp_smp_stats(r.m, &st);
	assert_int_equal(st.resends, 1);
	stop_fake(&r);
}

static void a_late_answer_to_an_earlier_try_is_taken(void **state)
{
	/* The first answer comes after the 400 ms timeout, while the second
	 * try (which the device never answers) is out: it is taken, rather
	 * than waiting for a third try. */
	struct script sc = {.late_first_ms = 600, .ignore_second = 1};
	struct tp_smp_stats st;
	struct stn_diag d;
	struct run r;
	char out[64];
	int64_t t0 = now_ms();

	(void)state;
	start_fake(&r, &sc);
	stn_diag_init(&d);
	assert_int_equal(tp_smp_os_info(r.m, "i", out, sizeof(out), &d), 0);
	assert_true(now_ms() - t0 < 780); /* before a third try */
	assert_int_equal(tp_smp_os_info(r.m, "n", out, sizeof(out), &d), 0);
	tp_smp_stats(r.m, &st);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.resends, 1);
	stop_fake(&r);
}

static void a_silent_device_times_out_within_the_bound(void **state)
{
	struct tp_serial *a, *b;
	struct tp_smp *m;
	struct stn_diag d;
	char out[64];
	int64_t t0;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(tp_serial_from_fd(sv[0], "mute", &a, NULL), 0);
	assert_int_equal(tp_serial_from_fd(sv[1], "other", &b, NULL), 0);
	assert_int_equal(tp_smp_from_serial(a, &quick, &m, NULL), 0);
	stn_diag_init(&d);
	t0 = now_ms();
	assert_int_equal(tp_smp_os_info(m, "i", out, sizeof(out), &d),
			 STN_E_TIMEOUT);
	/* 3 tries of 400 ms */
	assert_true(now_ms() - t0 < 2000);
	assert_string_equal(d.where, "mute");
	assert_non_null(strstr(d.text, "3 tries"));
	tp_smp_close(m);
	/* The other end gone: the line is gone, and cannot come back. */
	assert_int_equal(tp_serial_from_fd(dup(sv[1]), "x", &a, NULL), 0);
	tp_serial_close(b);
	assert_int_equal(tp_smp_from_serial(a, &quick, &m, NULL), 0);
	stn_diag_init(&d);
	assert_int_equal(tp_smp_os_info(m, "i", out, sizeof(out), &d),
			 STN_E_NODEVICE);
	tp_smp_close(m);
}

static void a_device_refusal_names_the_mcumgr_error(void **state)
{
	struct script v1 = {.rc = 8}, v2 = {.rc = 6, .err_v2 = 1};
	struct stn_diag d;
	struct run r;
	char out[64];

	(void)state;
	start_fake(&r, &v1);
	stn_diag_init(&d);
	assert_int_equal(tp_smp_os_info(r.m, "i", out, sizeof(out), &d),
			 STN_E_DEVICE);
	assert_non_null(strstr(d.text, "rc 8 (ENOTSUP"));
	assert_string_equal(d.where, "station-end");
	stop_fake(&r);
	start_fake(&r, &v2);
	stn_diag_init(&d);
	assert_int_equal(tp_smp_os_info(r.m, "i", out, sizeof(out), &d),
			 STN_E_DEVICE);
	assert_non_null(strstr(d.text, "rc 6 (EBADSTATE, group 1)"));
	stop_fake(&r);
}

struct mem_source {
	const uint8_t *data;
	size_t len, pos;
};

static int mem_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct mem_source *m = ctx;
	size_t n = m->len - m->pos < len ? m->len - m->pos : len;

	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131 + (i >> 8));
	return p;
}

/* Upload `size` bytes to a scripted device: the transport's code. */
static int upload_to(struct script *sc, size_t size, struct stn_diag *d,
		     struct tp_smp_upload_result *res, uint8_t **data_out,
		     int *child)
{
	uint8_t *data = pattern(size), sha[32];
	struct mem_source m = {.data = data, .len = size};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	struct run r;
	int rc;

	sc->size = size;
	sc->fd = memfd_create("upload", MFD_CLOEXEC);
	assert_true(sc->fd >= 0);
	assert_int_equal(cu_sha256(data, size, sha), 0);
	start_fake(&r, sc);
	rc = tp_smp_upload(r.m, 0, size, sha, &src, NULL, res, d);
	*child = stop_fake(&r);
	/* Every byte read exactly once, front to back. */
	if (rc == 0)
		assert_int_equal(m.pos, size);
	*data_out = data;
	return rc;
}

static void upload_honours_the_devices_offsets(void **state)
{
	struct script sc = {.log_lines = 1};
	struct tp_smp_upload_result res;
	struct stn_diag d;
	uint8_t *data, *got;
	int child;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(upload_to(&sc, 5000, &d, &res, &data, &child), 0);
	assert_int_equal(child, 0);
	assert_int_equal(res.match, -1);
	assert_int_equal(res.resumed_at, 0);
	got = malloc(5000);
	assert_int_equal(pread(sc.fd, got, 5000, 0), 5000);
	assert_memory_equal(got, data, 5000);
	free(got);
	free(data);
	close(sc.fd);
	/* The device already has 3000 bytes (an upload it remembers): the
	 * station goes on from there, reading the skipped bytes once. */
	sc = (struct script){.resume_at = 3000};
	stn_diag_init(&d);
	assert_int_equal(upload_to(&sc, 5000, &d, &res, &data, &child), 0);
	assert_int_equal(child, 0);
	assert_int_equal(res.resumed_at, 3000);
	free(data);
	close(sc.fd);
}

static void upload_refuses_offsets_that_make_no_sense(void **state)
{
	static const struct {
		struct script sc;
		const char *why;
	} cases[] = {
		{{.go_back = 1}, "went back from offset"},
		{{.overshoot = 1}, "claims offset"},
		{{.stall = 1}, "did not take data at offset 0"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct script sc = cases[i].sc;
		struct tp_smp_upload_result res;
		struct stn_diag d;
		uint8_t *data;
		int child;

		stn_diag_init(&d);
		assert_int_equal(upload_to(&sc, 3000, &d, &res, &data, &child),
				 STN_E_PROTOCOL);
		if (!strstr(d.text, cases[i].why))
			fail_msg("case %zu: %s", i, d.text);
		free(data);
		close(sc.fd);
	}
}

/* ---- upload request sizing ---- */

/* The whole request (header and body) of rq with n data bytes, encoded by
 * the transport's encoder and decoded again to check it is what it says. */
static size_t request_len(const struct tp_smp_upload_req *rq, size_t n)
{
	static uint8_t data[TP_SMP_PACKET_MAX + 1], body[TP_SMP_PACKET_MAX + 64];
	struct tp_cbor_item it[32];
	size_t blen, nit;
	long off, dat;

	blen = tp_smp_upload_body(rq, data, n, body, sizeof(body));
	assert_true(blen > 0);
	assert_int_equal(tp_cbor_decode(body, blen, it, 32, &nit, "t", NULL),
			 0);
	off = tp_cbor_map_get(it, nit, 0, "off");
	dat = tp_cbor_map_get(it, nit, 0, "data");
	assert_true(off > 0 && dat > 0);
	assert_int_equal(it[off].u, rq->off);
	assert_int_equal(it[dat].u, n);
	assert_int_equal(tp_cbor_map_get(it, nit, 0, "len") > 0, rq->first);
	return TP_SMP_HDR + blen;
}

/* Zephyr holds length, message and CRC in one buffer of buf_size (see
 * transport/smp.h): every request must be at most buf_size - 4 bytes, at
 * every CBOR width of the offset and the image length, and no larger
 * chunk would still fit (the buffer is used to the byte). */
static void upload_requests_fill_buf_size_less_4_exactly(void **state)
{
	static const uint64_t offs[] = {
		0, 1, 23, 24, 255, 256, 65535, 65536, 65537,
		0xfffffffeu, 0xffffffffu, 0x100000000u, 0x100000001u};
	static const uint64_t lens[] = {1, 65537, 0xffffffffu, 0x100000005u};
	static const uint8_t sha[32] = {1};
	unsigned bufs[64];
	size_t nb = 0;

	(void)state;
	/* The sizes devices report, those where the data's byte string head
	 * changes width, and a spread in between. */
	for (unsigned b = 256; b <= 4096; b += 97)
		bufs[nb++] = b;
	bufs[nb++] = 512;
	bufs[nb++] = 1024;
	bufs[nb++] = 2048;
	bufs[nb++] = 4096;
	bufs[nb++] = 4095;
	bufs[nb++] = 287; /* data near 255 -> 256: head 2 -> 3 */
	bufs[nb++] = 288;
	bufs[nb++] = 289;
	bufs[nb++] = 290;
	for (size_t b = 0; b < nb; b++)
		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++)
			for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]);
			     l++)
				for (int first = 0; first < 2; first++) {
					struct tp_smp_upload_req rq = {
						.first = first,
						.image = 0,
						.len = lens[l],
						.sha = sha,
						.off = offs[o]};
					size_t cap = bufs[b] - 4;
					size_t n = tp_smp_upload_chunk(bufs[b],
								       &rq);
					size_t fits = request_len(&rq, n);
					size_t over = request_len(&rq, n + 1);

					if (fits > cap || over <= cap)
						fail_msg("buf %u off %llu len "
							 "%llu first %d: %zu "
							 "bytes -> %zu, +1 -> "
							 "%zu, cap %zu",
							 bufs[b],
							 (unsigned long long)
								 offs[o],
							 (unsigned long long)
								 lens[l],
							 first, n, fits, over,
							 cap);
					/* Near the cap: header and fields
					 * take at most 88 bytes in the first
					 * request (9-byte len and off), 30
					 * in later ones. */
					assert_true(n + (first ? 88 : 30) >=
						    cap);
				}
	/* A buffer larger than the station's packet limit is used up to
	 * that limit, not past it. */
	{
		struct tp_smp_upload_req rq = {.off = 70000};
		size_t n = tp_smp_upload_chunk(65535, &rq);

		assert_true(request_len(&rq, n) <= TP_SMP_PACKET_MAX);
		assert_true(request_len(&rq, n + 1) > TP_SMP_PACKET_MAX);
	}
	/* Too small for any data at all. */
	{
		struct tp_smp_upload_req rq = {.first = 1, .len = 1,
					       .sha = sha};

		assert_int_equal(tp_smp_upload_chunk(4, &rq), 0);
		assert_int_equal(tp_smp_upload_chunk(60, &rq), 0);
	}
}

/* ---- against the simulator ---- */

struct simproc {
	pid_t pid;
	char dir[64], link[128], store[128], img[128];
};

static void build_path(char *buf, size_t cap, const char *prog)
{
	const char *b = getenv("BUILD");

	snprintf(buf, cap, "%s/%s", b && *b ? b : "build", prog);
}

/* An MCUboot image of `len` body bytes at sp->img, made by the tool. */
static void make_image(struct simproc *sp, size_t len)
{
	char tool[256], body[160], cmd[700];
	uint8_t *data = pattern(len);
	FILE *f;

	snprintf(body, sizeof(body), "%s/body", sp->dir);
	f = fopen(body, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	free(data);
	build_path(tool, sizeof(tool), "mcuboot-image");
	snprintf(cmd, sizeof(cmd), "%s --version 2.0.1 %s %s", tool, body,
		 sp->img);
	assert_int_equal(system(cmd), 0);
}

static void start_sim(struct simproc *sp, char *a1, char *a2, char *a3,
		      char *a4)
{
	char prog[256];
	int pipefd[2];
	char c;

	strcpy(sp->dir, "/tmp/test_smp.XXXXXX");
	assert_non_null(mkdtemp(sp->dir));
	snprintf(sp->link, sizeof(sp->link), "%s/tty", sp->dir);
	snprintf(sp->store, sizeof(sp->store), "%s/store", sp->dir);
	snprintf(sp->img, sizeof(sp->img), "%s/app.img", sp->dir);
	assert_int_equal(mkdir(sp->store, 0755), 0);
	build_path(prog, sizeof(prog), "sim-smp");
	assert_int_equal(pipe(pipefd), 0);
	sp->pid = fork();
	assert_true(sp->pid >= 0);
	if (sp->pid == 0) {
		char *argv[] = {prog, "--store", sp->store, "--link", sp->link,
				a1, a2, a3, a4, NULL};
		int null = open("/dev/null", O_WRONLY);

		dup2(pipefd[1], 1);
		dup2(null, 2);
		close(pipefd[0]);
		alarm(60);
		execv(prog, argv);
		_exit(127);
	}
	close(pipefd[1]);
	/* The first byte of "pty PATH" means the link is in place. */
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	close(pipefd[0]);
}

static void stop_sim(struct simproc *sp)
{
	char cmd[200];
	int status;

	kill(sp->pid, SIGTERM);
	waitpid(sp->pid, &status, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sp->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", sp->dir);
}

static int file_read(void *ctx, void *buf, size_t len, size_t *got)
{
	ssize_t n = read(*(int *)ctx, buf, len);

	if (n < 0)
		return STN_E_IO;
	*got = (size_t)n;
	return 0;
}

static void upload_survives_a_line_drop_by_resuming(void **state)
{
	struct simproc sp;
	struct tp_smp *m;
	struct tp_smp_stats st;
	struct tp_smp_upload_result res;
	struct tp_smp_image imgs[TP_SMP_MAX_IMAGES];
	struct stn_diag d;
	struct stat sb;
	uint8_t sha[32], buf[65536];
	char slot1[200], board[64];
	unsigned bs, bc;
	size_t n;
	int fd;

	(void)state;
	start_sim(&sp, "--drop-at", "30000", "--drop-ms", "700");
	make_image(&sp, 60000);
	fd = open(sp.img, O_RDONLY);
	assert_true(fd >= 0 && fstat(fd, &sb) == 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), sb.st_size);
	assert_int_equal(cu_sha256(buf, (size_t)sb.st_size, sha), 0);
	lseek(fd, 0, SEEK_SET);
	stn_diag_init(&d);
	assert_int_equal(tp_smp_open(sp.link, 115200, 0, NULL, &m, &d), 0);
	assert_int_equal(tp_smp_params(m, &bs, &bc, &d), 0);
	assert_int_equal(bs, 2048);
	assert_int_equal(tp_smp_os_info(m, "i", board, sizeof(board), &d), 0);
	assert_string_equal(board, "tx200_nrf52840");
	{
		struct tp_source src = {.read = file_read, .ctx = &fd};

		if (tp_smp_upload(m, 0, (uint64_t)sb.st_size, sha, &src, NULL,
				  &res, &d))
			fail_msg("%s: %s", d.where, d.text);
	}
	tp_smp_stats(m, &st);
	assert_int_equal(st.reconnects, 1);
	assert_int_equal(res.match, 1);
	assert_true(res.chunk > 1900 && res.chunk < 2048);
	/* The device stored exactly the image, and lists it in slot 1. */
	snprintf(slot1, sizeof(slot1), "%s/slot-1.bin", sp.store);
	{
		int s1 = open(slot1, O_RDONLY);
		uint8_t got[65536];

		assert_true(s1 >= 0);
		assert_int_equal(read(s1, got, sizeof(got)), sb.st_size);
		assert_memory_equal(got, buf, (size_t)sb.st_size);
		close(s1);
	}
	assert_int_equal(tp_smp_image_state(m, imgs, &n, &d), 0);
	assert_int_equal(n, 1);
	assert_int_equal(imgs[0].slot, 1);
	assert_string_equal(imgs[0].version, "2.0.1");
	assert_int_equal(tp_smp_image_set(m, imgs[0].hash, 0, imgs, &n, &d),
			 0);
	assert_true(imgs[0].pending);
	tp_smp_close(m);
	close(fd);
	stop_sim(&sp);
}

/* The regression of issue 11: with Zephyr's reassembly (length, message
 * and CRC in buf_size) every full request past offset 65536 was 1 byte too
 * large and dropped without an answer, so the upload timed out. */
static void upload_past_64_kib_fits_zephyrs_buffer(void **state)
{
	struct simproc sp;
	struct tp_smp *m;
	struct tp_smp_stats st;
	struct tp_smp_upload_result res;
	struct stn_diag d;
	struct stat sb;
	uint8_t sha[32], *buf, *got;
	char slot1[200];
	unsigned bs, bc;
	int fd, s1;

	(void)state;
	start_sim(&sp, "--buf-size", "256", "--boot-ms", "0");
	make_image(&sp, 70000);
	fd = open(sp.img, O_RDONLY);
	assert_true(fd >= 0 && fstat(fd, &sb) == 0);
	assert_true(sb.st_size > 65536);
	buf = malloc((size_t)sb.st_size);
	got = malloc((size_t)sb.st_size);
	assert_true(buf && got);
	assert_int_equal(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	assert_int_equal(cu_sha256(buf, (size_t)sb.st_size, sha), 0);
	lseek(fd, 0, SEEK_SET);
	stn_diag_init(&d);
	if (tp_smp_open(sp.link, 115200, 0, &quick, &m, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(tp_smp_params(m, &bs, &bc, &d), 0);
	assert_int_equal(bs, 256);
	{
		struct tp_source src = {.read = file_read, .ctx = &fd};

		if (tp_smp_upload(m, 0, (uint64_t)sb.st_size, sha, &src, NULL,
				  &res, &d))
			fail_msg("%s: %s", d.where, d.text);
	}
	tp_smp_stats(m, &st);
	assert_int_equal(st.resends, 0); /* nothing was dropped */
	assert_int_equal(res.match, 1);
	/* 256 - 4 - 8 (header) - 17: map head 1, "off" 4, a 5-byte
	 * offset, "data" 5 and a 2-byte data head. */
	assert_int_equal(res.chunk, 227);
	snprintf(slot1, sizeof(slot1), "%s/slot-1.bin", sp.store);
	s1 = open(slot1, O_RDONLY);
	assert_true(s1 >= 0);
	assert_int_equal(read(s1, got, (size_t)sb.st_size), sb.st_size);
	assert_memory_equal(got, buf, (size_t)sb.st_size);
	close(s1);
	free(buf);
	free(got);
	tp_smp_close(m);
	close(fd);
	stop_sim(&sp);
}

static void a_line_that_stays_away_fails_naming_the_wait(void **state)
{
	const struct tp_smp_opts o = {.reconnect_ms = 400};
	struct simproc sp;
	struct tp_smp *m;
	struct stn_diag d;
	struct stat sb;
	uint8_t sha[32] = {0};
	int64_t t0;
	int fd;

	(void)state;
	start_sim(&sp, "--drop-at", "8000", "--drop-ms", "5000");
	make_image(&sp, 30000);
	fd = open(sp.img, O_RDONLY);
	assert_true(fd >= 0 && fstat(fd, &sb) == 0);
	stn_diag_init(&d);
	assert_int_equal(tp_smp_open(sp.link, 115200, 0, &o, &m, &d), 0);
	t0 = now_ms();
	{
		struct tp_source src = {.read = file_read, .ctx = &fd};

		assert_int_equal(tp_smp_upload(m, 0, (uint64_t)sb.st_size,
					       sha, &src, NULL, NULL, &d),
				 STN_E_NODEVICE);
	}
	assert_true(now_ms() - t0 < 3000);
	assert_non_null(strstr(d.text, "did not come back within 400 ms"));
	assert_string_equal(d.where, sp.link);
	tp_smp_close(m);
	close(fd);
	stop_sim(&sp);
}

/* ---- MCUboot images ---- */

static void put_le(uint8_t *p, uint32_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* header (32) + body (100) + [protected 12] + TLV info + SHA256 TLV */
static size_t build_image(uint8_t *img, int protect)
{
	size_t body = 100, pos, hashed;

	memset(img, 0, 300);
	put_le(img, TP_MCUBOOT_MAGIC, 4);
	put_le(img + 8, 32, 2);
	put_le(img + 10, protect ? 12 : 0, 2);
	put_le(img + 12, (uint32_t)body, 4);
	img[20] = 1;
	img[21] = 2;
	put_le(img + 22, 3, 2);
	put_le(img + 24, 4, 4);
	for (size_t i = 0; i < body; i++)
		img[32 + i] = (uint8_t)i;
	pos = 32 + body;
	if (protect) {
		put_le(img + pos, TP_MCUBOOT_TLV_PROT_INFO, 2);
		put_le(img + pos + 2, 12, 2);
		put_le(img + pos + 4, 0x50, 2);
		put_le(img + pos + 6, 4, 2);
		pos += 12;
	}
	hashed = pos;
	put_le(img + pos, TP_MCUBOOT_TLV_INFO, 2);
	put_le(img + pos + 2, 4 + 4 + 32, 2);
	put_le(img + pos + 4, TP_MCUBOOT_TLV_SHA256, 2);
	put_le(img + pos + 6, 32, 2);
	assert_int_equal(cu_sha256(img, hashed, img + pos + 8), 0);
	return pos + 40;
}

static int inspect(const uint8_t *img, size_t len, int verify,
		   struct tp_mcuboot_info *info, struct stn_diag *d)
{
	int fd = memfd_create("img", MFD_CLOEXEC);
	int rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, len), (ssize_t)len);
	rc = tp_mcuboot_inspect(fd, len, verify, "bundle/app.img", info, d);
	close(fd);
	return rc;
}

static void mcuboot_images_are_checked_before_anything_is_sent(void **state)
{
	uint8_t img[300], bad[300], dig[32];
	struct tp_mcuboot_info info;
	struct stn_diag d;
	size_t len;
	static const struct {
		size_t off;
		uint8_t val;
		int verify;
		const char *why;
	} cases[] = {
		{0, 0x00, 0, "no MCUboot header magic"},
		{8, 16, 0, "header size below 32"},
		{14, 0x10, 0, "run past the end"},   /* body of 1 MiB */
		{132, 0x00, 0, "no TLV area"},       /* TLV info magic */
		{134, 0xff, 0, "TLV area runs past"}, /* TLV total */
		{138, 31, 0, "not one 32-byte value"}, /* SHA256 length */
		{136, 0x11, 0, "no SHA256 TLV"},     /* TLV type */
		{60, 0x5a, 1, "hashes to"},          /* body changed */
	};

	(void)state;
	for (int protect = 0; protect < 2; protect++) {
		len = build_image(img, protect);
		stn_diag_init(&d);
		if (inspect(img, len, 1, &info, &d))
			fail_msg("%s", d.text);
		assert_string_equal(info.version, "1.2.3.4");
		assert_int_equal(cu_sha256(img, 132 + (protect ? 12 : 0), dig), 0);
		assert_memory_equal(info.hash, dig, 32);
		assert_int_equal(info.hashed, 132 + (protect ? 12 : 0));
	}
	len = build_image(img, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, img, len);
		bad[cases[i].off] = cases[i].val;
		stn_diag_init(&d);
		assert_int_equal(inspect(bad, len, cases[i].verify, &info, &d),
				 STN_E_IMAGE);
		if (!strstr(d.text, cases[i].why))
			fail_msg("case %zu: %s", i, d.text);
		assert_string_equal(d.where, "bundle/app.img");
	}
	/* Without verify the changed body passes: that is what a device
	 * lists; MCUboot's check at boot is the verify. */
	memcpy(bad, img, len);
	bad[60] ^= 0x5a;
	stn_diag_init(&d);
	assert_int_equal(inspect(bad, len, 0, &info, &d), 0);
	/* Cut short anywhere: refused, never read past the end. */
	for (size_t cut = 0; cut < len; cut += 7) {
		stn_diag_init(&d);
		assert_int_equal(inspect(img, cut, 1, &info, &d), STN_E_IMAGE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_are_at_most_127_bytes_and_round_trip),
		cmocka_unit_test(broken_frames_are_dropped_with_a_reason),
		cmocka_unit_test(stale_answers_and_log_lines_are_skipped),
		cmocka_unit_test(an_unanswered_request_is_sent_again),
		cmocka_unit_test(a_late_answer_to_an_earlier_try_is_taken),
		cmocka_unit_test(a_silent_device_times_out_within_the_bound),
		cmocka_unit_test(a_device_refusal_names_the_mcumgr_error),
		cmocka_unit_test(upload_honours_the_devices_offsets),
		cmocka_unit_test(upload_refuses_offsets_that_make_no_sense),
		cmocka_unit_test(upload_requests_fill_buf_size_less_4_exactly),
		cmocka_unit_test(upload_survives_a_line_drop_by_resuming),
		cmocka_unit_test(upload_past_64_kib_fits_zephyrs_buffer),
		cmocka_unit_test(a_line_that_stays_away_fails_naming_the_wait),
		cmocka_unit_test(
			mcuboot_images_are_checked_before_anything_is_sent),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
