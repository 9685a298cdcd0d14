/* tests/test_base64.c: station/base/base64.h against RFC 4648 (§10's test
 * vectors), and the strictness its input from devices needs: one byte
 * string, one spelling (§3.2 padding, §3.5 zero trailing bits, no
 * whitespace, no '=' but at the end, nothing over the caller's cap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "station/base/base64.h"

/* RFC 4648 §10. */
static const struct {
	const char *bytes, *b64;
} vectors[] = {
	{"", ""},
	{"f", "Zg=="},
	{"fo", "Zm8="},
	{"foo", "Zm9v"},
	{"foob", "Zm9vYg=="},
	{"fooba", "Zm9vYmE="},
	{"foobar", "Zm9vYmFy"},
};
#define NVEC (sizeof(vectors) / sizeof(vectors[0]))

static void encode_gives_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVEC; i++) {
		char out[16];
		size_t n = strlen(vectors[i].bytes);
		memset(out, 'X', sizeof(out));
		stn_b64_encode((const uint8_t *)vectors[i].bytes, n, out);
		assert_string_equal(out, vectors[i].b64);
		assert_int_equal(strlen(out), STN_B64_LEN(n));
	}
}

static void decode_gives_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVEC; i++) {
		uint8_t out[16];
		size_t n = 99;
		const char *b = vectors[i].b64;
		assert_int_equal(stn_b64_decode(b, strlen(b), out, sizeof(out),
						&n),
				 0);
		assert_int_equal(n, strlen(vectors[i].bytes));
		if (n)
			assert_memory_equal(out, vectors[i].bytes, n);
	}
}

/* Every byte value and every tail length survives the round trip. */
static void round_trip_of_all_bytes_and_lengths(void **state)
{
	uint8_t in[256 + 2], back[260];
	char text[STN_B64_LEN(sizeof(in)) + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(in); len++) {
		size_t n = 0;
		stn_b64_encode(in, len, text);
		assert_int_equal(strlen(text), STN_B64_LEN(len));
		assert_int_equal(stn_b64_decode(text, strlen(text), back,
						sizeof(back), &n),
				 0);
		assert_int_equal(n, len);
		if (len)
			assert_memory_equal(back, in, len);
	}
}

/* Each of these is refused (the reason in the comment). */
static const struct {
	const char *text, *why;
} refused[] = {
	{"Zm9v Zg==", "a space"},
	{" Zm9v", "a leading space"},
	{"Zm9v\n", "a line break"},
	{"Zm9v\r\nZg==", "CR LF inside"},
	{"Zm9\tv", "a tab"},
	{"Zg", "no padding"},
	{"Zg=", "padding short"},
	{"Zg===", "padding too long"},
	{"Z===", "three pad characters"},
	{"====", "nothing but padding"},
	{"=Zm9", "padding first"},
	{"Zg=A", "data after padding"},
	{"Zg==Zm9v", "'=' in the middle"},
	{"Zm=v", "'=' inside a group"},
	{"Zh==", "non-zero trailing bits after one byte"},
	{"Zm9=", "non-zero trailing bits after two bytes"},
	{"Zm==", "non-zero trailing bits (4 of them)"},
	{"Zm9_", "base64url alphabet '_'"},
	{"Zm9-", "base64url alphabet '-'"},
	{"Zm9*", "not in any alphabet"},
	{"Zm9v\xc3\xa9", "non-ASCII"},
	{"Z", "one character"},
	{"Zm9vY", "length not a multiple of four"},
};

static void decode_refuses_non_canonical_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		uint8_t out[16];
		size_t n = 1234;
		const char *t = refused[i].text;
		if (stn_b64_decode(t, strlen(t), out, sizeof(out), &n) != -1)
			fail_msg("accepted %s: \"%s\"", refused[i].why, t);
		assert_int_equal(n, 1234); /* written only on success */
	}
}

/* A NUL is a character like any other to a length-counted decoder. */
static void decode_refuses_nul_inside(void **state)
{
	uint8_t out[8];
	size_t n;

	(void)state;
	assert_int_equal(stn_b64_decode("Zm\0v", 4, out, sizeof(out), &n), -1);
	assert_int_equal(stn_b64_decode("Zg=\0", 4, out, sizeof(out), &n), -1);
}

/* The same bits with the trailing ones zero are accepted: the refusal
 * above is of the spelling, not of the bytes. */
static void decode_accepts_canonical_twins(void **state)
{
	uint8_t out[8];
	size_t n;

	(void)state;
	assert_int_equal(stn_b64_decode("Zg==", 4, out, sizeof(out), &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 'f');
	assert_int_equal(stn_b64_decode("Zm8=", 4, out, sizeof(out), &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "fo", 2);
	assert_int_equal(stn_b64_decode("+/+/", 4, out, sizeof(out), &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

static void decode_refuses_over_the_cap(void **state)
{
	uint8_t out[8];
	size_t n = 77;

	(void)state;
	/* 6 bytes into 5: refused; into exactly 6: fine. */
	assert_int_equal(stn_b64_decode("Zm9vYmFy", 8, out, 5, &n), -1);
	assert_int_equal(n, 77);
	assert_int_equal(stn_b64_decode("Zm9vYmFy", 8, out, 6, &n), 0);
	assert_int_equal(n, 6);
	/* With padding: 5 bytes into 4 refused, into 5 fine. */
	assert_int_equal(stn_b64_decode("Zm9vYmE=", 8, out, 4, &n), -1);
	assert_int_equal(stn_b64_decode("Zm9vYmE=", 8, out, 5, &n), 0);
	assert_int_equal(n, 5);
	/* One byte into nothing. */
	assert_int_equal(stn_b64_decode("Zg==", 4, out, 0, &n), -1);
	/* Nothing into nothing is fine. */
	assert_int_equal(stn_b64_decode("", 0, out, 0, &n), 0);
	assert_int_equal(n, 0);
}

/* The decoder reads exactly len characters, not to a NUL. */
static void decode_reads_exactly_len(void **state)
{
	uint8_t out[8];
	size_t n;

	(void)state;
	assert_int_equal(stn_b64_decode("Zm9vGARBAGE", 4, out, sizeof(out),
					&n),
			 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "foo", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encode_gives_rfc4648_vectors),
		cmocka_unit_test(decode_gives_rfc4648_vectors),
		cmocka_unit_test(round_trip_of_all_bytes_and_lengths),
		cmocka_unit_test(decode_refuses_non_canonical_text),
		cmocka_unit_test(decode_refuses_nul_inside),
		cmocka_unit_test(decode_accepts_canonical_twins),
		cmocka_unit_test(decode_refuses_over_the_cap),
		cmocka_unit_test(decode_reads_exactly_len),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
