/* tests/test_console.c: the station's console verbs against the serial
 * device simulator ($BUILD/sim-serial) on a real pseudo-terminal, plus the
 * serial layer's refusals (missing device, bad baud, port in use). */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "station/base/base64.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/base/error.h"
#include "transport/console.h"
#include "transport/devmsg.h"
#include "transport/serial.h"
#include "transport/ymodem.h"

/* Deliberately untidy: the simulator must normalise spacing and drop
 * comments and blank lines. */
static const char identity_file[] =
	"# bench device\n"
	"format = station-device-1\n"
	"model=TX-200\n"
	"\n"
	"  hardware   =   revB  \n"
	"serial = SN-0001\n"
	"sequence = 41\n"
	"version = 2.4.0\n";

static const char identity_record[] =
	"format = station-device-1\n"
	"model = TX-200\n"
	"hardware = revB\n"
	"serial = SN-0001\n"
	"sequence = 41\n"
	"version = 2.4.0";

struct fixture {
	char dir[64];
	char identity[128];
	char store[128];
	char pty[256];
	pid_t sim;
};

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* The whole file, NUL terminated; *len without the NUL. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;

	if (!f)
		return NULL;
	buf = malloc(1 << 20);
	if (buf) {
		n = fread(buf, 1, (1 << 20) - 1, f);
		buf[n] = '\0';
	}
	fclose(f);
	if (len)
		*len = n;
	return buf;
}

/* Start the simulator with extra arguments (NULL-terminated, at most 12)
 * and read its `pty PATH` line. */
static int start_sim(struct fixture *fx, char *const *extra)
{
	const char *build = getenv("BUILD");
	char prog[256], line[256], log[160];
	struct pollfd p;
	size_t n = 0;
	int pipefd[2];

	snprintf(prog, sizeof(prog), "%s/sim-serial",
		 build && *build ? build : "build");
	if (access(prog, X_OK) != 0) {
		print_error("%s: %s (run make first)\n", prog, strerror(errno));
		return -1;
	}
	snprintf(log, sizeof(log), "%s/sim.log", fx->dir);
	if (pipe(pipefd) < 0)
		return -1;
	fx->sim = fork();
	if (fx->sim < 0)
		return -1;
	if (fx->sim == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		char *argv[20] = {prog, "--identity", fx->identity,
				  "--store", fx->store};

		for (int i = 0; extra[i] && i < 12; i++)
			argv[5 + i] = extra[i];

		dup2(pipefd[1], 1);
		if (fd >= 0)
			dup2(fd, 2);
		close(pipefd[0]);
		alarm(120); /* never outlive the suite */
		execv(prog, argv);
		_exit(127);
	}
	close(pipefd[1]);
	p.fd = pipefd[0];
	p.events = POLLIN;
	while (n < sizeof(line) - 1 && poll(&p, 1, 5000) == 1) {
		ssize_t r = read(pipefd[0], line + n, 1);

		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(pipefd[0]);
	if (strncmp(line, "pty /dev/", 9) != 0) {
		print_error("simulator said \"%s\"\n", line);
		return -1;
	}
	snprintf(fx->pty, sizeof(fx->pty), "%s", line + 4);
	return 0;
}

static int setup_args(void **state, char *const *extra)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/test_console.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->identity, sizeof(fx->identity), "%s/dev.id", fx->dir);
	snprintf(fx->store, sizeof(fx->store), "%s/store", fx->dir);
	if (mkdir(fx->store, 0755) < 0 ||
	    write_file(fx->identity, identity_file, strlen(identity_file)))
		return -1;
	*state = fx;
	return start_sim(fx, extra);
}

static int setup_with(void **state, char *extra1, char *extra2)
{
	char *extra[] = {extra1, extra2, NULL};

	return setup_args(state, extra);
}

static int setup(void **state)
{
	return setup_with(state, NULL, NULL);
}

static int setup_wrong_sha(void **state)
{
	return setup_with(state, "--wrong-sha", NULL);
}

static int setup_small(void **state)
{
	return setup_with(state, "--max-size", "1000");
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	int status;

	if (!fx)
		return 0;
	if (fx->sim > 0) {
		kill(fx->sim, SIGTERM);
		for (int i = 0; i < 200; i++) {
			if (waitpid(fx->sim, &status, WNOHANG) == fx->sim)
				break;
			if (i == 199) {
				kill(fx->sim, SIGKILL);
				waitpid(fx->sim, &status, 0);
			}
			usleep(10000);
		}
	}
	nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static struct tp_serial *open_port(const struct fixture *fx)
{
	struct tp_serial *s = NULL;
	struct stn_diag d;

	stn_diag_init(&d);
	if (tp_serial_open(fx->pty, 115200, 0, &s, &d) != 0)
		fail_msg("%s: %s", d.where, d.text);
	return s;
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

static uint8_t *image(size_t len, const char *head)
{
	uint8_t *p = malloc(len);
	uint32_t x = 12345;

	assert_non_null(p);
	for (size_t i = 0; i < len; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (uint8_t)(x >> 24);
	}
	if (head)
		memcpy(p, head, strlen(head));
	return p;
}

static void record_progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)total;
	*(uint64_t *)ctx = done;
}

static int push(struct tp_serial *s, unsigned slot, const uint8_t *data,
		size_t len, char sha[65], uint64_t *last_done,
		struct stn_diag *d)
{
	struct mem_source m = {.data = data, .len = len};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	struct tp_progress prog = {.update = record_progress,
				   .ctx = last_done};

	return tp_console_receive(s, slot, "fw.img", len, &src, &prog, sha, NULL,
				  NULL, d);
}

/* ---- tests ---- */

static void info_returns_the_normalised_identity_record(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	char buf[2048];
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(tp_console_info(s, buf, sizeof(buf), &d), 0);
	assert_string_equal(buf, identity_record);
	tp_serial_close(s);
}

static void info_larger_than_the_buffer_is_a_protocol_error(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	char buf[40];
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(tp_console_info(s, buf, sizeof(buf), &d),
			 STN_E_PROTOCOL);
	assert_string_equal(d.where, fx->pty);
	/* The rest of that answer must not confuse the next command. */
	stn_diag_init(&d);
	{
		char big[2048];

		assert_int_equal(tp_console_info(s, big, sizeof(big), &d), 0);
		assert_string_equal(big, identity_record);
	}
	tp_serial_close(s);
}

static void receive_stores_the_image_and_reports_its_sha256(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	uint8_t *img = image(5000, NULL);
	uint8_t dig[CU_SHA256_LEN];
	char want[65], sha[65] = "", path[256];
	uint64_t done = 0;
	struct stn_diag d;
	size_t len;
	char *stored;

	stn_diag_init(&d);
	if (push(s, 1, img, 5000, sha, &done, &d) != 0)
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(cu_sha256(img, 5000, dig), 0);
	cu_hex(dig, sizeof(dig), want);
	assert_string_equal(sha, want);
	assert_int_equal(done, 5000);
	snprintf(path, sizeof(path), "%s/slot-1.bin", fx->store);
	stored = slurp(path, &len);
	assert_non_null(stored);
	assert_int_equal(len, 5000);
	assert_memory_equal(stored, img, 5000);
	free(stored);
	free(img);
	tp_serial_close(s);
}

static void wrong_sha_simulator_reports_a_different_hash(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	uint8_t *img = image(5000, NULL);
	uint8_t dig[CU_SHA256_LEN];
	char real[65], sha[65] = "";
	uint64_t done = 0;
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(push(s, 1, img, 5000, sha, &done, &d), 0);
	assert_int_equal(cu_sha256(img, 5000, dig), 0);
	cu_hex(dig, sizeof(dig), real);
	assert_int_equal(strlen(sha), 64);
	assert_string_not_equal(sha, real);
	free(img);
	tp_serial_close(s);
}

static void boot_installs_the_sequence_of_a_tagged_image(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	uint8_t *img =
		image(3000, "#station-sim-image sequence=42 version=2.5.0\n");
	char sha[65], buf[2048];
	uint64_t done = 0;
	struct stn_diag d;
	char *id;

	stn_diag_init(&d);
	assert_int_equal(push(s, 0, img, 3000, sha, &done, &d), 0);
	id = slurp(fx->identity, NULL);
	assert_non_null(strstr(id, "sequence = 41"));
	free(id);
	assert_int_equal(tp_console_boot(s, &d), 0);
	id = slurp(fx->identity, NULL);
	assert_non_null(strstr(id, "sequence = 42\n"));
	assert_non_null(strstr(id, "version = 2.5.0\n"));
	assert_null(strstr(id, "sequence = 41"));
	assert_non_null(strstr(id, "serial = SN-0001"));
	free(id);
	/* A new session on the same simulator sees the installed image. */
	tp_serial_close(s);
	s = open_port(fx);
	assert_int_equal(tp_console_info(s, buf, sizeof(buf), &d), 0);
	assert_non_null(strstr(buf, "sequence = 42\nversion = 2.5.0"));
	free(img);
	tp_serial_close(s);
}

static void boot_without_tagged_image_changes_nothing(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct stn_diag d;
	char *id;

	stn_diag_init(&d);
	assert_int_equal(tp_console_boot(s, &d), 0);
	id = slurp(fx->identity, NULL);
	assert_string_equal(id, identity_file);
	free(id);
	tp_serial_close(s);
}

static void unknown_command_is_answered_with_error(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	char line[256];
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(tp_serial_write(s, "frobnicate\r\n", 12, 1000, &d), 0);
	assert_int_equal(tp_serial_readline(s, line, sizeof(line), 5000, &d),
			 0);
	assert_string_equal(line, "error unknown command");
	/* and the console still works afterwards */
	assert_int_equal(tp_console_boot(s, &d), 0);
	tp_serial_close(s);
}

static void image_over_the_device_limit_is_a_device_error(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	uint8_t *img = image(5000, NULL);
	char sha[65] = "untouched";
	uint64_t done = 0;
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(push(s, 1, img, 5000, sha, &done, &d),
			 STN_E_DEVICE);
	assert_non_null(strstr(d.text, "exceeds"));
	assert_string_equal(sha, "untouched");
	assert_int_equal(done, 0);
	free(img);
	tp_serial_close(s);
}

static void simulator_gone_is_reported_as_no_device(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	char buf[2048];
	struct stn_diag d;
	int status;

	stn_diag_init(&d);
	kill(fx->sim, SIGKILL);
	waitpid(fx->sim, &status, 0);
	fx->sim = 0;
	assert_int_equal(tp_console_info(s, buf, sizeof(buf), &d),
			 STN_E_NODEVICE);
	assert_string_equal(d.where, fx->pty);
	tp_serial_close(s);
}

static void receive_of_a_path_name_is_refused_and_the_device_recovers(
	void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	uint8_t *img = image(100, NULL);
	struct mem_source m = {.data = img, .len = 100};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	char sha[65], buf[2048];
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(tp_console_receive(s, 1, "../fw.img", 100, &src, NULL,
					    sha, NULL, NULL, &d),
			 STN_E_USAGE);
	assert_non_null(strstr(d.text, "base name"));
	/* The device was told to give up, not left waiting 30 s. */
	assert_non_null(strstr(d.text, "device says"));
	assert_string_equal(d.where, fx->pty);
	stn_diag_init(&d);
	assert_int_equal(tp_console_info(s, buf, sizeof(buf), &d), 0);
	assert_string_equal(buf, identity_record);
	free(img);
	tp_serial_close(s);
}

static int setup_slow(void **state)
{
	return setup_with(state, "--slow", "6000");
}

static void device_slower_than_the_line_timeout_times_out(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct stn_diag d;
	struct timespec t0, t1;
	long ms;

	stn_diag_init(&d);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(tp_console_boot(s, &d), STN_E_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	/* 5 s for the line, plus at most the settle time. */
	assert_true(ms >= 4900 && ms < 7500);
	assert_non_null(strstr(d.text, "no answer to `boot`"));
	assert_string_equal(d.where, fx->pty);
	tp_serial_close(s);
}

/* A broken device on a real pseudo-terminal: it answers every command with
 * lines that hold nothing (CR LF, CAN, BEL), as a flood or as a drip of
 * one line every 400 ms (under the line cap), for BABBLE_S seconds; then it falls silent. */
#define BABBLE_S 15
static void babble(int master, int drip)
{
	static const char junk[] = "\r\n\x18\r\n\x07\x01\r\n";
	time_t end = time(NULL) + BABBLE_S;

	alarm(BABBLE_S + 30); /* never outlive the suite */
	while (time(NULL) < end) {
		const char *what = drip ? "\x18\r\n" : junk;
		if (write(master, what, strlen(what)) < 0 && errno != EINTR &&
		    errno != EAGAIN)
			break;
		if (drip)
			usleep(400000);
	}
	pause();
	_exit(0);
}

static int setup_babbler_with(void **state, int drip)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int master;

	if (!fx)
		return -1;
	*state = fx;
	strcpy(fx->dir, "/tmp/test_console.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
	    !ptsname(master))
		return -1;
	snprintf(fx->pty, sizeof(fx->pty), "%s", ptsname(master));
	fx->sim = fork();
	if (fx->sim < 0)
		return -1;
	if (fx->sim == 0)
		babble(master, drip);
	close(master);
	return 0;
}

static int setup_flood(void **state)
{
	return setup_babbler_with(state, 0);
}

static int setup_drip(void **state)
{
	return setup_babbler_with(state, 1);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Endless empty lines once held the station in a loop at 57% CPU, the
 * deadline restarting with each line (issue 12): the line cap ends it at
 * once, for a one-line answer and for the identity record alike. */
static void endless_empty_lines_are_refused_by_the_line_cap(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	char buf[2048];
	struct stn_diag d;
	struct timespec t0;
	int rc;

	stn_diag_init(&d);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = tp_console_boot(s, &d);
	assert_int_equal(rc, STN_E_PROTOCOL);
	assert_string_equal(stn_err_rule(rc), "device");
	assert_non_null(strstr(d.text, "too many lines in answer to `boot`"));
	assert_string_equal(d.where, fx->pty);
	assert_true(ms_since(&t0) < 3000); /* the cap, then at most settle */
	stn_diag_init(&d);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(tp_console_info(s, buf, sizeof(buf), &d),
			 STN_E_PROTOCOL);
	assert_non_null(strstr(d.text, "too many lines in answer to `info`"));
	assert_true(ms_since(&t0) < 3000);
	tp_serial_close(s);
}

/* A drip of empty lines stays under the cap; the answer's one deadline,
 * counted from the command, still ends it. */
static void a_drip_of_empty_lines_ends_at_the_answer_deadline(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct stn_diag d;
	struct timespec t0;
	long ms;
	int rc;

	stn_diag_init(&d);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = tp_console_boot(s, &d);
	ms = ms_since(&t0);
	assert_int_equal(rc, STN_E_TIMEOUT);
	assert_string_equal(stn_err_rule(rc), "device");
	assert_non_null(strstr(d.text, "no answer to `boot` within 5000 ms, "
				       "only"));
	assert_non_null(strstr(d.text, "empty or control-only lines"));
	/* 5 s for the answer, plus at most the settle time. */
	assert_true(ms >= 4900 && ms < 7500);
	tp_serial_close(s);
}

/* ---- a scripted peer ----
 *
 * For answers no honest simulator gives: a child on the pty master that,
 * step by step, reads lines until one starts with `expect` (NULL: at
 * once), then writes `answer` and, for a `ymodem` step, receives one file
 * with the project's YMODEM receiver.  Every line it reads goes to
 * DIR/peer.in, so a test can check what the station sent. */
struct peer_step {
	const char *expect;
	char *answer;
	int ymodem;
};

#define PEER_STEPS 4

static void peer_run(int master, const char *dir,
		     const struct peer_step *steps)
{
	char path[128], *line = malloc(16384);
	struct tp_serial *s = NULL;
	FILE *in;

	alarm(60); /* never outlive the suite */
	snprintf(path, sizeof(path), "%s/peer.in", dir);
	in = fopen(path, "w");
	if (!line || !in || tp_serial_from_fd(master, "peer", &s, NULL))
		_exit(1);
	for (int i = 0; i < PEER_STEPS && steps[i].answer; i++) {
		while (steps[i].expect) {
			if (tp_serial_readline(s, line, 16384, 30000, NULL))
				_exit(1);
			fprintf(in, "%s\n", line);
			fflush(in);
			if (strncmp(line, steps[i].expect,
				    strlen(steps[i].expect)) == 0)
				break;
		}
		if (tp_serial_write(s, steps[i].answer,
				    strlen(steps[i].answer), 5000, NULL))
			_exit(1);
		if (steps[i].ymodem) {
			char name[256], file[160];
			uint64_t size;
			int fd;

			snprintf(file, sizeof(file), "%s/peer.bin", dir);
			fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 ||
			    tp_ymodem_receive(s, fd, 1 << 20, name,
					      sizeof(name), &size, NULL, NULL))
				_exit(1);
			close(fd);
		}
	}
	pause();
	_exit(0);
}

static int setup_peer(void **state, const struct peer_step *steps)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int master;

	if (!fx)
		return -1;
	*state = fx;
	strcpy(fx->dir, "/tmp/test_console.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
	    !ptsname(master))
		return -1;
	snprintf(fx->pty, sizeof(fx->pty), "%s", ptsname(master));
	fx->sim = fork();
	if (fx->sim < 0)
		return -1;
	if (fx->sim == 0)
		peer_run(master, fx->dir, steps);
	close(master);
	return 0;
}

/* Answers built from parts: printf into a malloc'd string. */
static char *text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *text(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;

	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0)
		out = NULL;
	va_end(ap);
	assert_non_null(out);
	return out;
}

/* `len` bytes of a pattern (a stand-in DER blob: the console does not
 * judge signatures), base64; malloc'd. */
static char *blob_b64(size_t len, uint8_t seed)
{
	uint8_t *b = malloc(len);
	char *out = malloc(STN_B64_LEN(len) + 1);

	assert_non_null(b);
	assert_non_null(out);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 7);
	stn_b64_encode(b, len, out);
	free(b);
	return out;
}

static const char attest_record[] =
	"format = station-attest-1\n"
	"model = TX-200\n"
	"hardware = revB\n"
	"serial = SN-0001\n"
	"sequence = 41\n"
	"nonce = 0001020304050607080910111213141516171819202122232425262728293031\n"
	"challenge = "
	"aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999\n";

static const uint8_t test_nonce[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x10,
	0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x20, 0x21,
	0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x30, 0x31};

/* The record's lines ended CR LF, as a device sends them. */
static char *crlf(const char *record)
{
	char *out = malloc(2 * strlen(record) + 1), *o = out;

	assert_non_null(out);
	for (const char *p = record; *p; p++) {
		if (*p == '\n')
			*o++ = '\r';
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* A good attestation answer: record, sig (72 bytes), two certs, ok. */
static char *good_attestation(void)
{
	char *rec = crlf(attest_record), *sig = blob_b64(72, 1),
	     *c1 = blob_b64(700, 2), *c2 = blob_b64(4096, 3);
	char *out = text("%ssig %s\r\ncert %s\r\ncert %s\r\nok\r\n", rec, sig,
			 c1, c2);

	free(rec);
	free(sig);
	free(c1);
	free(c2);
	return out;
}

static struct peer_step one_step[PEER_STEPS];

static int setup_answer(void **state, const char *expect, char *answer)
{
	memset(one_step, 0, sizeof(one_step));
	one_step[0].expect = expect;
	one_step[0].answer = answer;
	return setup_peer(state, one_step);
}

static int teardown_peer(void **state)
{
	for (int i = 0; i < PEER_STEPS; i++) {
		free(one_step[i].answer);
		one_step[i].answer = NULL;
	}
	return teardown(state);
}

static int setup_good_attestation(void **state)
{
	return setup_answer(state, "attest", good_attestation());
}

static void attest_returns_record_signature_and_chain(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	char path[128], *in;
	struct stn_diag d;

	assert_non_null(m);
	stn_diag_init(&d);
	if (tp_console_attest(s, test_nonce, m, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_string_equal(m->record, attest_record);
	assert_int_equal(m->record_len, strlen(attest_record));
	assert_int_equal(m->nlines, 7);
	assert_true(m->has_sig);
	assert_int_equal(m->sig_len, 72);
	assert_int_equal(m->sig[1], 8);
	assert_int_equal(m->ncerts, 2);
	assert_int_equal(m->cert_len[0], 700);
	assert_int_equal(m->cert_len[1], 4096);
	assert_int_equal(m->cert[1][1], 10);
	/* The nonce went out as 64 lowercase hex digits. */
	snprintf(path, sizeof(path), "%s/peer.in", fx->dir);
	in = slurp(path, NULL);
	assert_non_null(in);
	assert_string_equal(in, "attest 000102030405060708091011121314151617"
				"1819202122232425262728293031\n");
	free(in);
	free(m);
	tp_serial_close(s);
}

static int setup_attest_unknown(void **state)
{
	return setup_answer(state, "attest",
			    text("error unknown command\r\n"));
}

static void attest_answered_with_error_is_a_device_without_attestation(
	void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct stn_diag d;
	int rc;

	assert_non_null(m);
	m->record_len = 4242; /* untouched on failure */
	stn_diag_init(&d);
	rc = tp_console_attest(s, test_nonce, m, &d);
	assert_int_equal(rc, STN_E_NOATTEST);
	assert_string_equal(stn_err_rule(rc), "attestation");
	assert_non_null(strstr(d.text, "cannot attest"));
	assert_non_null(strstr(d.text, "unknown command"));
	assert_string_equal(d.where, fx->pty);
	assert_int_equal(m->record_len, 4242);
	free(m);
	tp_serial_close(s);
}

/* Answers of a device that tries and fails: each is STN_E_PROTOCOL,
 * never NOATTEST, with the named fault in the message. */
struct bad_attest {
	const char *name;
	char *(*make)(void);
	const char *says;
};

static char *att_error_after_lines(void)
{
	return text("format = station-attest-1\r\nerror key locked\r\n");
}

static char *att_cert_before_sig(void)
{
	char *rec = crlf(attest_record), *c = blob_b64(300, 2),
	     *sig = blob_b64(72, 1);
	char *out = text("%scert %s\r\nsig %s\r\nok\r\n", rec, c, sig);

	free(rec);
	free(c);
	free(sig);
	return out;
}

static char *att_no_sig(void)
{
	char *rec = crlf(attest_record);
	char *out = text("%sok\r\n", rec);

	free(rec);
	return out;
}

static char *att_bad_base64(void)
{
	char *rec = crlf(attest_record);
	/* "QQ=" is not canonical: padding wrong. */
	char *out = text("%ssig QQ=\r\nok\r\n", rec);

	free(rec);
	return out;
}

static char *att_empty(void)
{
	return text("ok\r\n");
}

static char *att_too_many_lines(void)
{
	char *out = NULL, *p;
	size_t cap = 80 * (TP_MSG_LINES_MAX + 10);

	out = p = malloc(cap);
	assert_non_null(out);
	p += sprintf(p, "format = station-attest-1\r\n");
	for (int i = 0; i < TP_MSG_LINES_MAX + 6; i++)
		p += sprintf(p, "x-line%d = %d\r\n", i, i);
	strcpy(p, "ok\r\n");
	return out;
}

static char *att_line_too_long(void)
{
	char *rec = crlf(attest_record), *sig = blob_b64(72, 1),
	     *c = blob_b64(TP_MSG_CERT_MAX * 3 / 2, 2);
	char *out = text("%ssig %s\r\ncert %s\r\nok\r\n", rec, sig, c);

	free(rec);
	free(sig);
	free(c);
	return out;
}

static char *att_five_certs(void)
{
	char *rec = crlf(attest_record), *sig = blob_b64(72, 1),
	     *c = blob_b64(100, 2);
	char *out = text("%ssig %s\r\ncert %s\r\ncert %s\r\ncert %s\r\n"
			 "cert %s\r\ncert %s\r\nok\r\n",
			 rec, sig, c, c, c, c, c);

	free(rec);
	free(sig);
	free(c);
	return out;
}

static const struct bad_attest bad_attests[] = {
	{"error after record lines", att_error_after_lines,
	 "broke off its attestation: error key locked"},
	{"cert before sig", att_cert_before_sig,
	 "a `cert` line before the `sig` line"},
	{"no sig", att_no_sig, "ends without a `sig` line"},
	{"bad base64", att_bad_base64, "not canonical base64"},
	{"empty answer", att_empty, "ends without a record"},
	{"too many record lines", att_too_many_lines, "exceeds 288 lines"},
	{"a 8 KiB line", att_line_too_long, "answer to `attest`"},
	{"five certs", att_five_certs, "more than 4 `cert` lines"},
};

static void attest_refuses_answers_that_are_not_a_signed_record(
	void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_attests) / sizeof(bad_attests[0]);
	     i++) {
		void *st = NULL;
		struct fixture *fx;
		struct tp_serial *s;
		struct tp_signed_msg *m = malloc(sizeof(*m));
		struct stn_diag d;
		int rc;

		assert_non_null(m);
		assert_int_equal(setup_answer(&st, "attest",
					      bad_attests[i].make()),
				 0);
		fx = st;
		s = open_port(fx);
		stn_diag_init(&d);
		rc = tp_console_attest(s, test_nonce, m, &d);
		if (rc != STN_E_PROTOCOL ||
		    !strstr(d.text, bad_attests[i].says))
			fail_msg("%s: rc %d, \"%s\"", bad_attests[i].name, rc,
				 d.text);
		assert_string_equal(d.where, fx->pty);
		tp_serial_close(s);
		free(m);
		teardown_peer(&st);
	}
}

static int setup_attest_stalls(void **state)
{
	char *rec = crlf(attest_record);

	return setup_answer(state, "attest", rec);
}

static void attest_that_stalls_mid_answer_times_out(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	struct timespec t0;
	struct stn_diag d;
	long ms;

	assert_non_null(m);
	stn_diag_init(&d);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(tp_console_attest(s, test_nonce, m, &d),
			 STN_E_TIMEOUT);
	ms = ms_since(&t0);
	assert_non_null(strstr(d.text, "no answer to `attest` within 5000"));
	/* 5 s after the last line, plus at most the settle time. */
	assert_true(ms >= 4900 && ms < 7500);
	free(m);
	tp_serial_close(s);
}

static const char authz_block[] =
	"format = station-install-1\r\n"
	"device = SN-0001\r\n"
	"sig QUJD\r\n"
	"cert REVG\r\n";

static int setup_authorize_ok(void **state)
{
	return setup_answer(state, "end", text("ok\r\n"));
}

static void authorize_sends_the_block_between_authorize_and_end(
	void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	char path[128], *in;
	struct stn_diag d;

	stn_diag_init(&d);
	if (tp_console_authorize(s, authz_block, strlen(authz_block), &d))
		fail_msg("%s: %s", d.where, d.text);
	snprintf(path, sizeof(path), "%s/peer.in", fx->dir);
	in = slurp(path, NULL);
	assert_non_null(in);
	assert_string_equal(in, "authorize\n"
				"format = station-install-1\n"
				"device = SN-0001\n"
				"sig QUJD\n"
				"cert REVG\n"
				"end\n");
	free(in);
	tp_serial_close(s);
}

static int setup_authorize_refused(void **state)
{
	return setup_answer(state, "end",
			    text("error challenge is not this session's\r\n"));
}

static void authorize_refused_is_an_authorization_error(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct stn_diag d;
	int rc;

	stn_diag_init(&d);
	rc = tp_console_authorize(s, authz_block, strlen(authz_block), &d);
	assert_int_equal(rc, STN_E_AUTHORIZATION);
	assert_string_equal(stn_err_rule(rc), "authorization");
	assert_non_null(strstr(d.text, "refused the install authorization: "
				       "challenge is not this session's"));
	assert_string_equal(d.where, fx->pty);
	/* Not CR LF lines, or an `end` inside: refused before a byte. */
	stn_diag_init(&d);
	assert_int_equal(tp_console_authorize(s, "format = x\n", 11, &d),
			 STN_E_USAGE);
	stn_diag_init(&d);
	assert_int_equal(tp_console_authorize(s, "a = b\r\nend\r\nc = d\r\n",
					      19, &d),
			 STN_E_USAGE);
	assert_non_null(strstr(d.text, "`end`"));
	tp_serial_close(s);
}

static const char receipt_record[] =
	"format = station-receipt-1\n"
	"device = SN-0001\n"
	"slot = 1\n"
	"size = 3000\n";

/* `ready`, YMODEM, then `tail` (the receipt and verdict). */
static int setup_receive_with(void **state, char *tail)
{
	memset(one_step, 0, sizeof(one_step));
	one_step[0].expect = "receive";
	one_step[0].answer = text("ready\r\n");
	one_step[0].ymodem = 1;
	one_step[1].answer = tail;
	return setup_peer(state, one_step);
}

static const char some_sha[] =
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static int setup_receipt(void **state)
{
	char *rec = crlf(receipt_record), *sig = blob_b64(71, 5);
	char *tail = text("%ssig %s\r\nok sha256=%s\r\n", rec, sig, some_sha);

	free(rec);
	free(sig);
	return setup_receive_with(state, tail);
}

static int setup_no_receipt(void **state)
{
	return setup_receive_with(state, text("ok sha256=%s\r\n", some_sha));
}

static int setup_unsigned_receipt(void **state)
{
	char *rec = crlf(receipt_record);
	char *tail = text("%sok sha256=%s\r\n", rec, some_sha);

	free(rec);
	return setup_receive_with(state, tail);
}

static int push_receipt(struct tp_serial *s, char sha[65],
			struct tp_signed_msg *r, int *has, struct stn_diag *d)
{
	uint8_t *img = image(3000, NULL);
	struct mem_source m = {.data = img, .len = 3000};
	struct tp_source src = {.read = mem_read, .ctx = &m};
	int rc = tp_console_receive(s, 1, "fw.img", 3000, &src, NULL, sha, r,
				    has, d);

	free(img);
	return rc;
}

static void receive_returns_the_receipt_before_the_verdict(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *r = malloc(sizeof(*r));
	char sha[65] = "";
	int has = -1;
	struct stn_diag d;

	assert_non_null(r);
	stn_diag_init(&d);
	if (push_receipt(s, sha, r, &has, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(has, 1);
	assert_string_equal(sha, some_sha);
	assert_string_equal(r->record, receipt_record);
	assert_true(r->has_sig);
	assert_int_equal(r->sig_len, 71);
	assert_int_equal(r->ncerts, 0);
	free(r);
	tp_serial_close(s);
}

static void receive_without_receipt_says_so(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *r = malloc(sizeof(*r));
	char sha[65] = "";
	int has = -1;
	struct stn_diag d;

	assert_non_null(r);
	stn_diag_init(&d);
	if (push_receipt(s, sha, r, &has, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(has, 0);
	assert_string_equal(sha, some_sha);
	free(r);
	tp_serial_close(s);
}

static void receive_refuses_a_receipt_without_signature(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *r = malloc(sizeof(*r));
	char sha[65] = "untouched";
	int has = -1;
	struct stn_diag d;

	assert_non_null(r);
	stn_diag_init(&d);
	assert_int_equal(push_receipt(s, sha, r, &has, &d), STN_E_PROTOCOL);
	assert_non_null(strstr(d.text, "receipt ends without a `sig` line"));
	assert_int_equal(has, -1);
	assert_string_equal(sha, "untouched");
	free(r);
	tp_serial_close(s);
}

/* ---- a keyed simulator (formats §9), end to end ----
 *
 * sim-serial with dev1 (SN-0001) of tests/pki.sh and the fleet anchor
 * roots.pem; the authorization is signed by the test station (STN-0042)
 * with the openssl CLI, and what the device signs is checked with the
 * openssl CLI too: neither side uses the station's own crypto. */
static char pki[96];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st == -1 ? -1 : WEXITSTATUS(st);
}

static const char *pki_dir(void)
{
	if (!pki[0]) {
		strcpy(pki, "/tmp/test_console_pki.XXXXXX");
		if (!mkdtemp(pki) ||
		    sh("bash tests/pki.sh %s >/dev/null", pki) != 0)
			return NULL;
	}
	return pki;
}

static int setup_keyed_with(void **state, char *fault, char *flag)
{
	const char *p = pki_dir();
	char key[128], cert[128], anchor[128];
	char *extra[12] = {"--device-key", key, "--device-cert", cert,
			   "--fleet-anchor", anchor};
	int n = 6;

	if (!p) {
		print_error("tests/pki.sh failed (run from the repository "
			    "root)\n");
		return -1;
	}
	snprintf(key, sizeof(key), "%s/dev1.key", p);
	snprintf(cert, sizeof(cert), "%s/dev1.pem", p);
	snprintf(anchor, sizeof(anchor), "%s/roots.pem", p);
	if (fault) {
		extra[n++] = "--misbehave";
		extra[n++] = fault;
	}
	extra[n] = flag;
	return setup_args(state, extra);
}

static int setup_keyed(void **state)
{
	return setup_keyed_with(state, NULL, NULL);
}

/* --wrong-sha: the device believes it stored other bytes. */
static int setup_keyed_wrong_sha(void **state)
{
	return setup_keyed_with(state, NULL, "--wrong-sha");
}

static int setup_lying_receipt(void **state)
{
	return setup_keyed_with(state, "lying-receipt", "--wrong-sha");
}

static int setup_refuse_auth(void **state)
{
	return setup_keyed_with(state, "refuse-auth", NULL);
}

static int write_bytes(const char *dir, const char *name, const void *p,
		       size_t len)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return write_file(path, p, len);
}

/* Whether openssl verifies m's signature over its record with the key of
 * the DER certificate `leaf` (formats §2: `openssl dgst -sha256`). */
static int openssl_verifies(const char *dir, const struct tp_signed_msg *m,
			    const uint8_t *leaf, size_t leaf_len)
{
	if (write_bytes(dir, "v.rec", m->record, m->record_len) ||
	    write_bytes(dir, "v.sig", m->sig, m->sig_len) ||
	    write_bytes(dir, "v.der", leaf, leaf_len))
		return -1;
	return sh("openssl x509 -inform DER -in %s/v.der -pubkey -noout "
		  ">%s/v.pub && openssl dgst -sha256 -verify %s/v.pub "
		  "-signature %s/v.sig %s/v.rec >/dev/null",
		  dir, dir, dir, dir, dir);
}

/* The value of `key = ` in a record, 64 characters, or "" */
static void field64(const char *record, const char *key, char out[65])
{
	char want[64];
	const char *p;

	snprintf(want, sizeof(want), "\n%s = ", key);
	p = strstr(record, want);
	out[0] = '\0';
	if (p && strlen(p + strlen(want)) >= 64) {
		memcpy(out, p + strlen(want), 64);
		out[64] = '\0';
	}
}

static void read_into(const char *path, uint8_t *buf, size_t cap,
		      size_t *len)
{
	size_t n = 0;
	char *b = slurp(path, &n);

	assert_non_null(b);
	assert_true(n > 0 && n <= cap);
	memcpy(buf, b, n);
	*len = n;
	free(b);
}

/* A station-install-1 for one image (slot 1) bound to `challenge`,
 * signed by the test station with the openssl CLI, its chain attached. */
static void make_authz(const char *dir, const char *challenge,
		       const char *sha, uint64_t size,
		       struct tp_signed_msg *a)
{
	char rec[2048], issued[32], expires[32], path[160];
	time_t now = time(NULL) - 1, end = now + 600;
	struct stn_diag d;
	struct tm tm;
	char *save = NULL;

	strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ",
		 gmtime_r(&now, &tm));
	strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ",
		 gmtime_r(&end, &tm));
	snprintf(rec, sizeof(rec),
		 "format = station-install-1\nstation = STN-0042\n"
		 "site = plant-7\ntechnician = ana\ndevice = SN-0001\n"
		 "challenge = %s\nbundle = tx200-app\nsequence = 42\n"
		 "issued = %s\nexpires = %s\n[image app]\nslot = 1\n"
		 "size = %" PRIu64 "\nsha256 = %s\n",
		 challenge, issued, expires, size, sha);
	assert_int_equal(write_bytes(dir, "authz", rec, strlen(rec)), 0);
	assert_int_equal(sh("openssl dgst -sha256 -sign %s/station.key -out "
			    "%s/authz.sig %s/authz && openssl x509 -in "
			    "%s/station.pem -outform DER -out %s/st.der && "
			    "openssl x509 -in %s/inter.pem -outform DER -out "
			    "%s/in.der",
			    pki, dir, dir, pki, dir, pki, dir),
			 0);
	tp_msg_init(a);
	stn_diag_init(&d);
	for (char *l = strtok_r(rec, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		assert_int_equal(tp_msg_take(a, l, strlen(l), "test", &d), 0);
	snprintf(path, sizeof(path), "%s/authz.sig", dir);
	read_into(path, a->sig, sizeof(a->sig), &a->sig_len);
	a->has_sig = 1;
	snprintf(path, sizeof(path), "%s/st.der", dir);
	read_into(path, a->cert[0], TP_MSG_CERT_MAX, &a->cert_len[0]);
	snprintf(path, sizeof(path), "%s/in.der", dir);
	read_into(path, a->cert[1], TP_MSG_CERT_MAX, &a->cert_len[1]);
	a->ncerts = 2;
}

static int send_authz(struct tp_serial *s, const struct tp_signed_msg *a,
		      struct stn_diag *d)
{
	char *lines = NULL;
	size_t len = 0;
	int rc = tp_msg_format(a, "\r\n", &lines, &len, d);

	if (!rc)
		rc = tp_console_authorize(s, lines, len, d);
	free(lines);
	return rc;
}

/* Attest, then authorize slot 1 for img (3000 bytes); *att keeps the
 * attestation.  Returns what tp_console_authorize returned. */
static int attest_and_authorize(struct fixture *fx, struct tp_serial *s,
				const uint8_t *img,
				struct tp_signed_msg *att,
				struct stn_diag *d)
{
	struct tp_signed_msg *a = malloc(sizeof(*a));
	uint8_t dig[CU_SHA256_LEN];
	char sha[65], challenge[65], nonce[65];
	int rc;

	assert_non_null(a);
	if (tp_console_attest(s, test_nonce, att, d))
		fail_msg("%s: %s", d->where, d->text);
	field64(att->record, "nonce", nonce);
	field64(att->record, "challenge", challenge);
	cu_hex(test_nonce, 32, sha);
	assert_string_equal(nonce, sha);
	assert_int_equal(strlen(challenge), 64);
	assert_non_null(strstr(att->record, "\nserial = SN-0001\n"));
	assert_true(att->ncerts >= 1);
	assert_int_equal(openssl_verifies(fx->dir, att, att->cert[0],
					  att->cert_len[0]),
			 0);
	assert_int_equal(cu_sha256(img, 3000, dig), 0);
	cu_hex(dig, sizeof(dig), sha);
	make_authz(fx->dir, challenge, sha, 3000, a);
	rc = send_authz(s, a, d);
	free(a);
	return rc;
}

static void keyed_device_attests_is_authorized_and_signs_a_receipt(
	void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *att = malloc(sizeof(*att)),
			     *r = malloc(sizeof(*r));
	uint8_t *img = image(3000, NULL), dig[CU_SHA256_LEN];
	char sha[65] = "", want[65], got[65];
	int has = -1;
	struct stn_diag d;

	assert_non_null(att);
	assert_non_null(r);
	stn_diag_init(&d);
	/* No authorization yet: nothing is taken. */
	assert_int_equal(push_receipt(s, sha, r, &has, &d), STN_E_DEVICE);
	assert_non_null(strstr(d.text, "not authorized: no authorization"));
	stn_diag_init(&d);
	if (attest_and_authorize(fx, s, img, att, &d))
		fail_msg("%s: %s", d.where, d.text);
	if (push_receipt(s, sha, r, &has, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(cu_sha256(img, 3000, dig), 0);
	cu_hex(dig, sizeof(dig), want);
	assert_string_equal(sha, want);
	assert_int_equal(has, 1);
	assert_non_null(strstr(r->record, "format = station-receipt-1\n"));
	field64(r->record, "sha256", got);
	assert_string_equal(got, want);
	assert_non_null(strstr(r->record, "\nsize = 3000\n"));
	assert_non_null(strstr(r->record, "\nslot = 1\n"));
	field64(att->record, "challenge", want);
	field64(r->record, "challenge", got);
	assert_string_equal(got, want);
	assert_int_equal(openssl_verifies(fx->dir, r, att->cert[0],
					  att->cert_len[0]),
			 0);
	free(img);
	free(att);
	free(r);
	tp_serial_close(s);
}

static void keyed_device_refusing_authorization_is_an_authorization_error(
	void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *att = malloc(sizeof(*att)),
			     *r = malloc(sizeof(*r));
	uint8_t *img = image(3000, NULL);
	char sha[65] = "";
	int has = -1, rc;
	struct stn_diag d;

	assert_non_null(att);
	assert_non_null(r);
	stn_diag_init(&d);
	rc = attest_and_authorize(fx, s, img, att, &d);
	assert_int_equal(rc, STN_E_AUTHORIZATION);
	assert_non_null(strstr(d.text, "refused the install authorization: "
				       "authorization refused"));
	/* and then it takes no image */
	stn_diag_init(&d);
	assert_int_equal(push_receipt(s, sha, r, &has, &d), STN_E_DEVICE);
	assert_non_null(strstr(d.text, "not authorized"));
	free(img);
	free(att);
	free(r);
	tp_serial_close(s);
}

/* An authorization for another challenge (a replayed one) is refused by
 * the device's own check. */
static void keyed_device_refuses_an_authorization_for_another_session(
	void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *att = malloc(sizeof(*att)),
			     *a = malloc(sizeof(*a));
	struct stn_diag d;

	assert_non_null(att);
	assert_non_null(a);
	stn_diag_init(&d);
	assert_int_equal(tp_console_attest(s, test_nonce, att, &d), 0);
	make_authz(fx->dir, "00000000000000000000000000000000"
			    "00000000000000000000000000000000",
		   some_sha, 3000, a);
	assert_int_equal(send_authz(s, a, &d), STN_E_AUTHORIZATION);
	assert_non_null(strstr(d.text, "challenge is not this session's"));
	free(att);
	free(a);
	tp_serial_close(s);
}

/* An honest device that stored other bytes than it was authorized for
 * signs nothing and says so. */
static void keyed_device_that_stored_other_bytes_answers_error(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *att = malloc(sizeof(*att)),
			     *r = malloc(sizeof(*r));
	uint8_t *img = image(3000, NULL);
	char sha[65] = "untouched";
	int has = -1;
	struct stn_diag d;

	assert_non_null(att);
	assert_non_null(r);
	stn_diag_init(&d);
	if (attest_and_authorize(fx, s, img, att, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(push_receipt(s, sha, r, &has, &d), STN_E_DEVICE);
	assert_non_null(strstr(d.text, "differs from the authorized image"));
	assert_int_equal(has, -1);
	assert_string_equal(sha, "untouched");
	free(img);
	free(att);
	free(r);
	tp_serial_close(s);
}

/* A lying device signs the authorized digest; its `ok sha256=` still
 * names what it holds, which is how the station can catch it. */
static void lying_device_signs_the_authorized_digest(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *att = malloc(sizeof(*att)),
			     *r = malloc(sizeof(*r));
	uint8_t *img = image(3000, NULL), dig[CU_SHA256_LEN];
	char sha[65] = "", want[65], got[65];
	int has = -1;
	struct stn_diag d;

	assert_non_null(att);
	assert_non_null(r);
	stn_diag_init(&d);
	if (attest_and_authorize(fx, s, img, att, &d))
		fail_msg("%s: %s", d.where, d.text);
	if (push_receipt(s, sha, r, &has, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(cu_sha256(img, 3000, dig), 0);
	cu_hex(dig, sizeof(dig), want);
	assert_int_equal(has, 1);
	field64(r->record, "sha256", got);
	assert_string_equal(got, want);
	assert_string_not_equal(sha, want);
	assert_int_equal(openssl_verifies(fx->dir, r, att->cert[0],
					  att->cert_len[0]),
			 0);
	free(img);
	free(att);
	free(r);
	tp_serial_close(s);
}

static void device_without_key_answers_attest_with_noattest(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = open_port(fx);
	struct tp_signed_msg *m = malloc(sizeof(*m));
	char buf[2048];
	struct stn_diag d;

	assert_non_null(m);
	stn_diag_init(&d);
	assert_int_equal(tp_console_attest(s, test_nonce, m, &d),
			 STN_E_NOATTEST);
	assert_non_null(strstr(d.text, "unknown command"));
	/* The console is in step afterwards. */
	assert_int_equal(tp_console_info(s, buf, sizeof(buf), &d), 0);
	assert_string_equal(buf, identity_record);
	free(m);
	tp_serial_close(s);
}

static void serial_open_refusals_name_the_problem(void **state)
{
	struct fixture *fx = *state;
	struct tp_serial *s = NULL, *again = NULL;
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(tp_serial_open("/dev/ttyNOPE9", 115200, 0, &s, &d),
			 STN_E_NODEVICE);
	assert_string_equal(d.where, "/dev/ttyNOPE9");
	assert_null(s);
	stn_diag_init(&d);
	assert_int_equal(tp_serial_open(fx->pty, 12345, 0, &s, &d),
			 STN_E_USAGE);
	assert_non_null(strstr(d.text, "12345"));
	stn_diag_init(&d);
	assert_int_equal(tp_serial_open(fx->identity, 115200, 0, &s, &d),
			 STN_E_IO);
	assert_non_null(strstr(d.text, "not a serial port"));
	/* Two sessions on one port would interleave their bytes. */
	s = open_port(fx);
	stn_diag_init(&d);
	assert_int_equal(tp_serial_open(fx->pty, 115200, 0, &again, &d),
			 STN_E_DEVICE);
	assert_non_null(strstr(d.text, "in use"));
	tp_serial_close(s);
	tp_serial_close(NULL);
}

static int group_teardown(void **state)
{
	(void)state;
	if (pki[0])
		nftw(pki, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			info_returns_the_normalised_identity_record, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			info_larger_than_the_buffer_is_a_protocol_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			receive_stores_the_image_and_reports_its_sha256, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			wrong_sha_simulator_reports_a_different_hash,
			setup_wrong_sha, teardown),
		cmocka_unit_test_setup_teardown(
			boot_installs_the_sequence_of_a_tagged_image, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			boot_without_tagged_image_changes_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			unknown_command_is_answered_with_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			image_over_the_device_limit_is_a_device_error,
			setup_small, teardown),
		cmocka_unit_test_setup_teardown(
			simulator_gone_is_reported_as_no_device, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			receive_of_a_path_name_is_refused_and_the_device_recovers,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			device_slower_than_the_line_timeout_times_out,
			setup_slow, teardown),
		cmocka_unit_test_setup_teardown(
			serial_open_refusals_name_the_problem, setup, teardown),
		cmocka_unit_test_setup_teardown(
			endless_empty_lines_are_refused_by_the_line_cap,
			setup_flood, teardown),
		cmocka_unit_test_setup_teardown(
			a_drip_of_empty_lines_ends_at_the_answer_deadline,
			setup_drip, teardown),
		cmocka_unit_test_setup_teardown(
			attest_returns_record_signature_and_chain,
			setup_good_attestation, teardown_peer),
		cmocka_unit_test_setup_teardown(
			attest_answered_with_error_is_a_device_without_attestation,
			setup_attest_unknown, teardown_peer),
		cmocka_unit_test(
			attest_refuses_answers_that_are_not_a_signed_record),
		cmocka_unit_test_setup_teardown(
			attest_that_stalls_mid_answer_times_out,
			setup_attest_stalls, teardown_peer),
		cmocka_unit_test_setup_teardown(
			authorize_sends_the_block_between_authorize_and_end,
			setup_authorize_ok, teardown_peer),
		cmocka_unit_test_setup_teardown(
			authorize_refused_is_an_authorization_error,
			setup_authorize_refused, teardown_peer),
		cmocka_unit_test_setup_teardown(
			receive_returns_the_receipt_before_the_verdict,
			setup_receipt, teardown_peer),
		cmocka_unit_test_setup_teardown(
			receive_without_receipt_says_so, setup_no_receipt,
			teardown_peer),
		cmocka_unit_test_setup_teardown(
			receive_refuses_a_receipt_without_signature,
			setup_unsigned_receipt, teardown_peer),
		cmocka_unit_test_setup_teardown(
			device_without_key_answers_attest_with_noattest, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			keyed_device_attests_is_authorized_and_signs_a_receipt,
			setup_keyed, teardown),
		cmocka_unit_test_setup_teardown(
			keyed_device_refusing_authorization_is_an_authorization_error,
			setup_refuse_auth, teardown),
		cmocka_unit_test_setup_teardown(
			keyed_device_refuses_an_authorization_for_another_session,
			setup_keyed, teardown),
		cmocka_unit_test_setup_teardown(
			keyed_device_that_stored_other_bytes_answers_error,
			setup_keyed_wrong_sha, teardown),
		cmocka_unit_test_setup_teardown(
			lying_device_signs_the_authorized_digest,
			setup_lying_receipt, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
