/* tests/test_clock.c: station/clock.h's reading of a --since or --until
 * argument (spec/cli.md): an RFC 3339 time, a date (its first second, or
 * its last for --until) or a duration back from now, and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "station/clock.h"

/* 2026-12-04T12:00:00Z */
#define NOW 1796385600LL

static const struct {
	const char *arg;
	int end_of_day;
	int64_t want;
} good[] = {
	{"2026-12-04T12:00:00Z", 0, NOW},
	{"2026-12-04T12:00:00Z", 1, NOW}, /* a time is a time */
	{"2026-12-04", 0, NOW - 12 * 3600},
	{"2026-12-04", 1, NOW + 12 * 3600 - 1},
	{"2024-02-29", 0, 1709164800LL},
	{"30m", 0, NOW - 1800},
	{"24h", 0, NOW - 86400},
	{"24h", 1, NOW - 86400}, /* a duration is a moment, not a day */
	{"7d", 0, NOW - 7 * 86400},
	{"0s", 0, NOW},
};

static const char *const bad[] = {
	"", "yesterday", "2026-12-4", "2026-13-01", "2026-02-30",
	"2025-02-29", "2026/12/04", "2026-12-04T12:00:00", "24", "h",
	"-24h", "24x", "1.5h", "2026-12-04 ", " 24h", "1969-12-31",
	"1970-01-01", "99999999999d",
};

static void time_arg_reads_time_date_and_duration(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t t = -5;
		assert_int_equal(stn_time_arg_parse(good[i].arg, NOW,
						    good[i].end_of_day, &t),
				 0);
		assert_int_equal(t, good[i].want);
	}
}

static void time_arg_refuses_other_forms(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t t = -5;
		assert_int_equal(stn_time_arg_parse(bad[i], NOW, 0, &t), -1);
		assert_int_equal(t, -5); /* written only on success */
	}
	assert_int_equal(stn_time_arg_parse(NULL, NOW, 0, &(int64_t){0}), -1);
}

static void time_arg_until_date_covers_the_whole_day(void **state)
{
	int64_t since = 0, until = 0;

	(void)state;
	assert_int_equal(stn_time_arg_parse("2026-12-04", NOW, 0, &since), 0);
	assert_int_equal(stn_time_arg_parse("2026-12-04", NOW, 1, &until), 0);
	assert_int_equal(until - since, 86400 - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(time_arg_reads_time_date_and_duration),
		cmocka_unit_test(time_arg_refuses_other_forms),
		cmocka_unit_test(time_arg_until_date_covers_the_whole_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
