/* tests/test_pin.c: technician PIN records (formats §8): what `station
 * pin` writes is what sign-in accepts, each record has its own salt, and
 * PINs the sign-in screen could not take are refused with the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custody/pin.h"
#include "station/base/error.h"

/* The salt field of a record: between the second and third '$'. */
static void salt_of(const char *spec, char out[CU_PIN_SPEC_MAX])
{
	const char *a = strchr(strchr(spec, '$') + 1, '$') + 1;
	const char *b = strchr(a, '$');

	assert_non_null(b);
	memcpy(out, a, (size_t)(b - a));
	out[b - a] = '\0';
}

static void made_record_verifies_with_its_pin_only(void **state)
{
	char spec[CU_PIN_SPEC_MAX];
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_pin_make("4711", CU_PIN_ITERATIONS, spec, &d), 0);
	assert_true(strncmp(spec, "pbkdf2-sha256$200000$", 21) == 0);
	/* 16 bytes of salt and a 32-byte hash, lowercase hex. */
	assert_int_equal(strlen(spec), 21 + 32 + 1 + 64);
	assert_int_equal(strspn(spec + 21, "0123456789abcdef$"),
			 strlen(spec + 21));
	assert_int_equal(cu_pin_check(spec, "4711", &d), 0);
	stn_diag_init(&d);
	assert_int_equal(cu_pin_check(spec, "4712", &d), STN_E_TECHNICIAN);
	assert_non_null(strstr(d.text, "wrong PIN"));
}

static void each_record_gets_a_fresh_salt(void **state)
{
	char a[CU_PIN_SPEC_MAX], b[CU_PIN_SPEC_MAX];
	char sa[CU_PIN_SPEC_MAX], sb[CU_PIN_SPEC_MAX];
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(cu_pin_make("same-pin", CU_PIN_ITERATIONS_MIN, a, &d),
			 0);
	assert_int_equal(cu_pin_make("same-pin", CU_PIN_ITERATIONS_MIN, b, &d),
			 0);
	salt_of(a, sa);
	salt_of(b, sb);
	assert_int_equal(strlen(sa), 32);
	assert_string_not_equal(sa, sb);
	assert_string_not_equal(a, b);
	assert_int_equal(cu_pin_check(a, "same-pin", &d), 0);
	assert_int_equal(cu_pin_check(b, "same-pin", &d), 0);
}

static void iteration_counts_the_verifier_refuses_are_not_made(void **state)
{
	static const unsigned bad[] = {0, CU_PIN_ITERATIONS_MIN - 1,
				       CU_PIN_ITERATIONS_MAX + 1u};
	char spec[CU_PIN_SPEC_MAX];
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		stn_diag_init(&d);
		assert_int_equal(cu_pin_make("4711", bad[i], spec, &d),
				 STN_E_USAGE);
		assert_non_null(strstr(d.text, "iteration count"));
	}
}

struct bad_pin {
	const char *pin;
	const char *reason; /* substring of the diagnostic */
};

static const struct bad_pin bad_pins[] = {
	{"", "no PIN given"},
	{"123", "too short: 3 characters, at least 4"},
	{"12\t34", "control character"},
	{"1234\r", "control character"},
	{"12\x1b[31m", "control character"},
	{"12\x7f" "34", "control character"},
	{"12 34", "space"},
	{"caf\xc3\xa9", "outside ASCII"},
	{"12345678901234567890123456789012345678901234567890123456789012345",
	 "too long: 65 characters, at most 64"},
};

static void pins_sign_in_cannot_take_are_refused_with_the_reason(void **state)
{
	char spec[CU_PIN_SPEC_MAX];
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_pins) / sizeof(bad_pins[0]); i++) {
		stn_diag_init(&d);
		assert_int_equal(cu_pin_make(bad_pins[i].pin, CU_PIN_ITERATIONS,
					     spec, &d),
				 STN_E_USAGE);
		if (!strstr(d.text, bad_pins[i].reason))
			fail_msg("case %zu: '%s' lacks '%s'", i, d.text,
				 bad_pins[i].reason);
	}
	/* The edges are accepted: 4 and 64 printable characters. */
	assert_int_equal(cu_pin_acceptable("a!Z~", &d), 0);
	assert_int_equal(
		cu_pin_acceptable("1234567890123456789012345678901234567890"
				  "123456789012345678901234",
				  &d),
		0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(made_record_verifies_with_its_pin_only),
		cmocka_unit_test(each_record_gets_a_fresh_salt),
		cmocka_unit_test(
			iteration_counts_the_verifier_refuses_are_not_made),
		cmocka_unit_test(
			pins_sign_in_cannot_take_are_refused_with_the_reason),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
