/* tests/test_fileio.c: the base layer's file I/O: durable create and
 * replace (refusals, faults that must leave the old state), the bounded
 * whole-file read, and EINTR from a signal without SA_RESTART. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "station/base/error.h"
#include "station/base/fileio.h"
#include "station/base/monotime.h"
#include "tests/helpers.h"

static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(stn_read_all(fd, 1 << 20, &buf, len), 0);
	close(fd);
	return buf;
}

/* Entries in dir other than . and .. (a temp left behind shows here). */
static int entries(const char *dir)
{
	char cmd[4200];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void create_writes_new_and_refuses_what_exists(void **state)
{
	static const struct {
		const char *name, *setup; /* setup: "file", "symlink" or NULL */
		int want;
		const char *text;
	} cases[] = {
		{"new", NULL, 0, NULL},
		{"existing", "file", STN_E_IO, "cannot create: File exists"},
		{"dangling-link", "symlink", STN_E_IO, "cannot create"},
	};
	char *dir = th_tempdir(), path[4200];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stn_diag d;
		stn_diag_init(&d);
		snprintf(path, sizeof(path), "%s/%s", dir, cases[i].name);
		if (cases[i].setup && !strcmp(cases[i].setup, "file"))
			th_write_str(path, "old\n");
		if (cases[i].setup && !strcmp(cases[i].setup, "symlink"))
			assert_int_equal(symlink("/nonexistent-x", path), 0);
		int rc = stn_create_durable(path, 0640, "new\n", 4, &d);
		assert_int_equal(rc, cases[i].want);
		if (rc) {
			assert_non_null(strstr(d.text, cases[i].text));
			assert_string_equal(d.where, path);
			continue;
		}
		size_t len;
		char *got = slurp(path, &len);
		struct stat st;
		assert_string_equal(got, "new\n");
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0640);
		free(got);
	}
	/* The refused create left "existing" as it was. */
	snprintf(path, sizeof(path), "%s/existing", dir);
	size_t len;
	char *got = slurp(path, &len);
	assert_string_equal(got, "old\n");
	free(got);
	th_rmrf(dir);
	free(dir);
}

static void replace_swaps_content_and_sets_mode(void **state)
{
	char *dir = th_tempdir(), path[4200];
	struct stn_diag d;
	struct stat st;
	size_t len;
	char *got;
	(void)state;

	stn_diag_init(&d);
	snprintf(path, sizeof(path), "%s/floor", dir);
	th_write_str(path, "old\n");
	assert_int_equal(stn_replace_durable(path, 0644, "new!\n", 5, &d), 0);
	got = slurp(path, &len);
	assert_string_equal(got, "new!\n");
	free(got);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(entries(dir), 1); /* no temp left */
	th_rmrf(dir);
	free(dir);
}

static void replace_keeps_old_content_when_the_write_fails(void **state)
{
	char *dir = th_tempdir(), path[4200], big[8192];
	struct rlimit old, lim = {.rlim_cur = 1024, .rlim_max = RLIM_INFINITY};
	struct stn_diag d;
	size_t len;
	char *got;
	(void)state;

	/* A file size limit makes write(2) fail with EFBIG part-way, as a
	 * full disk would; SIGXFSZ ignored so the failure is a return. */
	stn_diag_init(&d);
	snprintf(path, sizeof(path), "%s/crl", dir);
	th_write_str(path, "old\n");
	memset(big, 'x', sizeof(big));
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = stn_replace_durable(path, 0600, big, sizeof(big), &d);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, STN_E_IO);
	assert_non_null(strstr(d.text, "cannot write"));
	got = slurp(path, &len);
	assert_string_equal(got, "old\n");
	free(got);
	assert_int_equal(entries(dir), 1); /* the temp was removed */
	th_rmrf(dir);
	free(dir);
}

static void replace_over_a_directory_fails_and_leaves_no_temp(void **state)
{
	char *dir = th_tempdir(), path[4200], inner[4300];
	struct stn_diag d;
	(void)state;

	stn_diag_init(&d);
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(inner, sizeof(inner), "%s/keep", path);
	th_write_str(inner, "x");
	assert_int_equal(stn_replace_durable(path, 0600, "y", 1, &d), STN_E_IO);
	assert_non_null(strstr(d.text, "cannot rename into place"));
	assert_string_equal(d.where, path);
	assert_int_equal(entries(dir), 1);
	th_rmrf(dir);
	free(dir);
}

static void read_all_refuses_over_the_bound(void **state)
{
	static const struct {
		size_t size, max;
		int ok;
	} cases[] = {
		{0, 0, 1},          {10, 10, 1},      {11, 10, 0},
		{4096, 4096, 1},    {4097, 4096, 0},  {10000, 9999, 0},
		{100000, 100000, 1}, {100001, 100000, 0},
	};
	char *dir = th_tempdir(), path[4200];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *data = malloc(cases[i].size + 1), *out = (char *)1;
		size_t len = 7;
		assert_non_null(data);
		for (size_t k = 0; k < cases[i].size; k++)
			data[k] = (char)('a' + k % 26);
		snprintf(path, sizeof(path), "%s/f%zu", dir, i);
		th_write(path, data, cases[i].size);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		int rc = stn_read_all(fd, cases[i].max, &out, &len);
		close(fd);
		if (cases[i].ok) {
			assert_int_equal(rc, 0);
			assert_int_equal(len, cases[i].size);
			assert_memory_equal(out, data, cases[i].size);
			assert_int_equal(out[len], '\0');
			free(out);
		} else {
			assert_int_equal(rc, -1);
			assert_int_equal(errno, EFBIG);
			assert_ptr_equal(out, (char *)1); /* untouched */
			assert_int_equal(len, 7);
		}
		free(data);
	}
	th_rmrf(dir);
	free(dir);
}

static volatile sig_atomic_t interrupted;
static void on_usr1(int sig)
{
	(void)sig;
	interrupted++;
}

/* SIGUSR1 without SA_RESTART, so a blocked read or write returns EINTR. */
static void catch_usr1(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
	interrupted = 0;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A signal halfway through the sleep does not cut it short. */
static void sleep_ms_sleeps_the_whole_time_through_eintr(void **state)
{
	pid_t parent = getpid(), child;
	int64_t t0, slept;
	int st;
	(void)state;

	catch_usr1();
	child = fork();
	assert_true(child >= 0);
	if (child == 0) { /* interrupt the sleep early, twice */
		pause_ms(60);
		kill(parent, SIGUSR1);
		pause_ms(60);
		kill(parent, SIGUSR1);
		_exit(0);
	}
	t0 = stn_mono_ms();
	stn_sleep_ms(400);
	slept = stn_mono_ms() - t0;
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(interrupted >= 1);
	assert_true(slept >= 400);
	signal(SIGUSR1, SIG_DFL);
}

static void mono_ms_does_not_go_back(void **state)
{
	int64_t a = stn_mono_ms(), b;
	(void)state;

	stn_sleep_ms(0); /* returns at once */
	stn_sleep_ms(-5);
	b = stn_mono_ms();
	assert_true(b >= a);
	assert_true(b - a < 1000);
	stn_sleep_ms(20);
	assert_true(stn_mono_ms() - b >= 20);
}

static void read_all_goes_on_after_eintr(void **state)
{
	int p[2];
	pid_t parent = getpid(), child;
	char *out = NULL;
	size_t len = 0;
	(void)state;

	catch_usr1();
	assert_int_equal(pipe(p), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) { /* interrupt the blocked read, then answer */
		close(p[0]);
		pause_ms(100);
		kill(parent, SIGUSR1);
		pause_ms(100);
		_exit(stn_write_all(p[1], "late\n", 5) != 0);
	}
	close(p[1]);
	int rc = stn_read_all(p[0], 64, &out, &len);
	int st;
	close(p[0]);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_int_equal(rc, 0);
	assert_true(interrupted >= 1);
	assert_string_equal(out, "late\n");
	free(out);
	signal(SIGUSR1, SIG_DFL);
}

static void write_all_goes_on_after_eintr(void **state)
{
	enum { TOTAL = 1 << 20 };
	int p[2], st;
	pid_t parent = getpid(), child;
	char *data = malloc(TOTAL);
	(void)state;

	assert_non_null(data);
	memset(data, 'z', TOTAL);
	catch_usr1();
	assert_int_equal(pipe(p), 0);
	/* Fill the pipe first: a write interrupted after some bytes went
	 * returns a short count, only one that wrote nothing returns EINTR. */
	size_t prefill = 0;
	assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	while (write(p[1], data, 4096) > 0)
		prefill += 4096;
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(fcntl(p[1], F_SETFL, 0), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) { /* interrupt the writer blocked on a full pipe */
		char *got = NULL;
		size_t len = 0;
		close(p[1]);
		pause_ms(100);
		kill(parent, SIGUSR1);
		pause_ms(100);
		if (stn_read_all(p[0], prefill + TOTAL, &got, &len) != 0)
			_exit(2);
		_exit(len == prefill + TOTAL ? 0 : 3);
	}
	close(p[0]);
	int rc = stn_write_all(p[1], data, TOTAL);
	close(p[1]);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_int_equal(rc, 0);
	assert_true(interrupted >= 1);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	free(data);
	signal(SIGUSR1, SIG_DFL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_writes_new_and_refuses_what_exists),
		cmocka_unit_test(replace_swaps_content_and_sets_mode),
		cmocka_unit_test(replace_keeps_old_content_when_the_write_fails),
		cmocka_unit_test(replace_over_a_directory_fails_and_leaves_no_temp),
		cmocka_unit_test(read_all_refuses_over_the_bound),
		cmocka_unit_test(read_all_goes_on_after_eintr),
		cmocka_unit_test(write_all_goes_on_after_eintr),
		cmocka_unit_test(sleep_ms_sleeps_the_whole_time_through_eintr),
		cmocka_unit_test(mono_ms_does_not_go_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
