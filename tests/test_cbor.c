/* tests/test_cbor.c: the CBOR subset against the examples of RFC 8949
 * appendix A (definite and indefinite lengths), the refusals a hostile
 * device could provoke, and the encoder producing the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "station/base/error.h"
#include "transport/cbor.h"

static struct tp_cbor_item it[64];

static size_t decode_ok(const char *hex_bytes, size_t len)
{
	struct stn_diag d;
	size_t n = 0;

	stn_diag_init(&d);
	if (tp_cbor_decode((const uint8_t *)hex_bytes, len, it, 64, &n,
			   "test", &d) != 0)
		fail_msg("decode failed: %s", d.text);
	return n;
}

#define DECODE_OK(lit) decode_ok(lit, sizeof(lit) - 1)

static void decodes_the_rfc_8949_examples(void **state)
{
	size_t n;

	(void)state;
	n = DECODE_OK("\x00");
	assert_int_equal(n, 1);
	assert_int_equal(it[0].type, TP_CBOR_UINT);
	assert_int_equal(it[0].u, 0);
	DECODE_OK("\x18\x18");
	assert_int_equal(it[0].u, 24);
	DECODE_OK("\x1a\x00\x0f\x42\x40");
	assert_int_equal(it[0].u, 1000000);
	DECODE_OK("\x1b\xff\xff\xff\xff\xff\xff\xff\xff");
	assert_true(it[0].u == UINT64_MAX);
	DECODE_OK("\x39\x03\xe7"); /* -1000 */
	assert_int_equal(it[0].type, TP_CBOR_NINT);
	assert_int_equal(it[0].u, 999);
	DECODE_OK("\x64IETF");
	assert_int_equal(it[0].type, TP_CBOR_TEXT);
	assert_int_equal(it[0].u, 4);
	assert_memory_equal(it[0].ptr, "IETF", 4);
	DECODE_OK("\x44\x01\x02\x03\x04");
	assert_int_equal(it[0].type, TP_CBOR_BYTES);
	/* [1, [2, 3], [4, 5]] */
	n = DECODE_OK("\x83\x01\x82\x02\x03\x82\x04\x05");
	assert_int_equal(n, 8);
	assert_int_equal(it[0].u, 3);
	assert_int_equal(it[0].end, 8);
	assert_int_equal(tp_cbor_child(it, n, 0, 1), 2);
	assert_int_equal(tp_cbor_child(it, n, 0, 2), 5);
	assert_int_equal(tp_cbor_child(it, n, 0, 3), -1);
	/* {"a": 1, "b": [2, 3]} */
	n = DECODE_OK("\xa2\x61\x61\x01\x61\x62\x82\x02\x03");
	assert_int_equal(it[0].type, TP_CBOR_MAP);
	assert_int_equal(it[0].u, 2);
	assert_int_equal(it[tp_cbor_map_get(it, n, 0, "a")].u, 1);
	assert_int_equal(it[tp_cbor_map_get(it, n, 0, "b")].type,
			 TP_CBOR_ARRAY);
	assert_int_equal(tp_cbor_map_get(it, n, 0, "c"), -1);
	DECODE_OK("\xf4");
	assert_int_equal(it[0].type, TP_CBOR_FALSE);
	DECODE_OK("\xf5");
	assert_int_equal(it[0].type, TP_CBOR_TRUE);
	DECODE_OK("\xf6");
	assert_int_equal(it[0].type, TP_CBOR_NULL);
	DECODE_OK("\xf9\x3c\x00"); /* 1.0 as a half float */
	assert_int_equal(it[0].type, TP_CBOR_FLOAT);
	/* 1(1363896240): a tag is skipped, its content kept */
	DECODE_OK("\xc1\x1a\x51\x4b\x67\xb0");
	assert_int_equal(it[0].type, TP_CBOR_UINT);
	assert_int_equal(it[0].u, 1363896240);
}

static void decodes_indefinite_length_maps_and_arrays(void **state)
{
	size_t n;

	(void)state;
	/* [_ 1, [2, 3], [_ 4, 5]] */
	n = DECODE_OK("\x9f\x01\x82\x02\x03\x9f\x04\x05\xff\xff");
	assert_int_equal(it[0].type, TP_CBOR_ARRAY);
	assert_int_equal(it[0].u, 3);
	assert_int_equal(it[0].end, n);
	assert_int_equal(it[tp_cbor_child(it, n, 0, 2)].u, 2);
	/* {_ "Fun": true, "Amt": -2} */
	n = DECODE_OK("\xbf\x63\x46\x75\x6e\xf5\x63\x41\x6d\x74\x21\xff");
	assert_int_equal(it[0].type, TP_CBOR_MAP);
	assert_int_equal(it[0].u, 2);
	assert_int_equal(it[tp_cbor_map_get(it, n, 0, "Fun")].type,
			 TP_CBOR_TRUE);
	assert_int_equal(it[tp_cbor_map_get(it, n, 0, "Amt")].u, 1);
	/* An empty indefinite map inside a definite one. */
	n = DECODE_OK("\xa1\x61\x78\xbf\xff");
	assert_int_equal(it[tp_cbor_map_get(it, n, 0, "x")].u, 0);
}

static void refuses_what_a_hostile_device_could_send(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
		const char *why;
	} bad[] = {
		{"", 0, "ends inside an item"},
		{"\x19\x01", 2, "ends inside an item's length"},
		{"\x45\x01\x02", 3, "runs past the end"},
		{"\x7b\xff\xff\xff\xff\xff\xff\xff\xff", 9, "runs past"},
		{"\x5f\x41\x00\xff", 4, "chunked"},
		{"\x7f\x61\x61\xff", 4, "chunked"},
		{"\xff", 1, "break outside"},
		{"\x1c", 1, "reserved"},
		{"\xbf\x01\xff", 3, "key without a value"},
		{"\x9f\x01", 2, "no break"},
		{"\x00\x00", 2, "bytes after"},
		{"\xf8\x20", 2, "unassigned simple"},
		{"\xe0", 1, "unassigned simple"},
		{"\x1f", 1, "indefinite integer"},
		{"\xa1\x01", 2, "ends inside"},
		/* A count far beyond the input: bounded by the item cap. */
		{"\x9b\xff\xff\xff\xff\xff\xff\xff\xff\x00", 10, "ends inside"},
	};
	uint8_t deep[40];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct stn_diag d;
		size_t n = 99;

		stn_diag_init(&d);
		assert_int_equal(tp_cbor_decode((const uint8_t *)bad[i].bytes,
						bad[i].len, it, 64, &n, "dev",
						&d),
				 STN_E_PROTOCOL);
		if (!strstr(d.text, bad[i].why))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, d.text,
				 bad[i].why);
		assert_string_equal(d.where, "dev");
		assert_int_equal(n, 99); /* untouched on failure */
	}
	/* 17 nested arrays: deeper than the 16 levels allowed. */
	memset(deep, 0x81, 17);
	deep[17] = 0x00;
	{
		struct stn_diag d;
		size_t n;

		stn_diag_init(&d);
		assert_int_equal(tp_cbor_decode(deep, 18, it, 64, &n, "dev",
						&d),
				 STN_E_PROTOCOL);
		assert_non_null(strstr(d.text, "deeper than 16"));
		stn_diag_init(&d);
		assert_int_equal(tp_cbor_decode(deep + 1, 17, it, 64, &n,
						"dev", &d),
				 0);
		/* More items than the array given. */
		stn_diag_init(&d);
		assert_int_equal(tp_cbor_decode(deep + 1, 17, it, 5, &n,
						"dev", &d),
				 STN_E_PROTOCOL);
		assert_non_null(strstr(d.text, "more items"));
	}
}

static void a_key_given_twice_is_ambiguous(void **state)
{
	size_t n = DECODE_OK("\xa2\x62rc\x00\x62rc\x01");

	(void)state;
	assert_int_equal(tp_cbor_map_get(it, n, 0, "rc"), -2);
	/* Not a map: no lookup. */
	n = DECODE_OK("\x82\x62rc\x00");
	assert_int_equal(tp_cbor_map_get(it, n, 0, "rc"), -1);
}

static void encoder_writes_the_same_bytes(void **state)
{
	uint8_t buf[64], small[3];
	struct tp_cbor_writer w;

	(void)state;
	tp_cbor_writer_init(&w, buf, sizeof(buf));
	tp_cbor_put_map(&w, 2);
	tp_cbor_put_text(&w, "a");
	tp_cbor_put_uint(&w, 1);
	tp_cbor_put_text(&w, "b");
	tp_cbor_put_array(&w, 2);
	tp_cbor_put_uint(&w, 2);
	tp_cbor_put_int(&w, -1000);
	assert_false(w.overflow);
	assert_int_equal(w.len, 11);
	assert_memory_equal(buf, "\xa2\x61\x61\x01\x61\x62\x82\x02\x39\x03\xe7",
			    11);
	tp_cbor_writer_init(&w, buf, sizeof(buf));
	tp_cbor_put_uint(&w, 1000000);
	tp_cbor_put_uint(&w, 0x100000000ULL);
	tp_cbor_put_bytes(&w, "\x01\x02", 2);
	tp_cbor_put_bool(&w, 1);
	tp_cbor_put_map_indef(&w);
	tp_cbor_put_break(&w);
	assert_memory_equal(buf,
			    "\x1a\x00\x0f\x42\x40"
			    "\x1b\x00\x00\x00\x01\x00\x00\x00\x00"
			    "\x42\x01\x02\xf5\xbf\xff",
			    w.len);
	assert_int_equal(w.len, 20);
	/* A write that does not fit writes nothing and is remembered. */
	tp_cbor_writer_init(&w, small, sizeof(small));
	tp_cbor_put_text(&w, "long");
	assert_true(w.overflow);
	tp_cbor_put_uint(&w, 1);
	assert_true(w.overflow);
	assert_int_equal(tp_cbor_head_size(23), 1);
	assert_int_equal(tp_cbor_head_size(24), 2);
	assert_int_equal(tp_cbor_head_size(256), 3);
	assert_int_equal(tp_cbor_head_size(65536), 5);
}

/* SMP request sizing counts on head sizes being what the encoder writes,
 * at every width boundary (1, 2, 3, 5 and 9 bytes). */
static void head_size_is_what_the_encoder_writes(void **state)
{
	static const uint64_t v[] = {0, 23, 24, 255, 256, 65535, 65536,
				     0xffffffffu, 0x100000000u, UINT64_MAX};
	static const size_t want[] = {1, 1, 2, 2, 3, 3, 5, 5, 9, 9};
	uint8_t buf[16];
	struct tp_cbor_writer w;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(tp_cbor_head_size(v[i]), want[i]);
		tp_cbor_writer_init(&w, buf, sizeof(buf));
		tp_cbor_put_uint(&w, v[i]);
		assert_false(w.overflow);
		assert_int_equal(w.len, want[i]);
		if (v[i] <= 16) {
			tp_cbor_writer_init(&w, buf, sizeof(buf));
			tp_cbor_put_bytes(&w, buf, (size_t)v[i]);
			assert_int_equal(w.len, want[i] + v[i]);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_the_rfc_8949_examples),
		cmocka_unit_test(decodes_indefinite_length_maps_and_arrays),
		cmocka_unit_test(refuses_what_a_hostile_device_could_send),
		cmocka_unit_test(a_key_given_twice_is_ambiguous),
		cmocka_unit_test(encoder_writes_the_same_bytes),
		cmocka_unit_test(head_size_is_what_the_encoder_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
