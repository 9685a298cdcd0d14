/* tests/fuzz_cbor.c: libFuzzer target for what an SMP device sends the
 * station: the CBOR decoder (every item must stay inside the input and the
 * item array, lookups must terminate) and the console frame reassembler
 * (fed the input as lines; a completed message is decoded too).  Inputs of
 * SMP size also go through frame and reassembly, which must round-trip. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/error.h"
#include "transport/cbor.h"
#include "transport/smp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tp_cbor_item items[512];

static void decode_and_walk(const uint8_t *buf, size_t len)
{
	struct stn_diag d;
	size_t n = 0;

	stn_diag_init(&d);
	if (tp_cbor_decode(buf, len, items, 512, &n, "fuzz", &d) != 0)
		return;
	if (n == 0 || n > 512 || items[0].end != n)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (items[i].end <= i || items[i].end > n)
			abort();
		if ((items[i].type == TP_CBOR_BYTES ||
		     items[i].type == TP_CBOR_TEXT) &&
		    (items[i].ptr < buf || items[i].u > len ||
		     items[i].ptr + items[i].u > buf + len))
			abort();
		if (items[i].type == TP_CBOR_MAP) {
			(void)tp_cbor_map_get(items, n, i, "off");
			(void)tp_cbor_map_get(items, n, i, "images");
			(void)tp_cbor_child(items, n, i, 1);
		}
		if (items[i].type == TP_CBOR_ARRAY)
			(void)tp_cbor_child(items, n, i, 2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tp_smp_rx rx;
	static uint8_t wire[(TP_SMP_PACKET_MAX + 16) * 4 / 3 + 512];
	char line[256];
	size_t start = 0;

	decode_and_walk(data, size);

	/* The input as console lines. */
	memset(&rx, 0, sizeof(rx));
	for (size_t i = 0; i <= size; i++) {
		if (i < size && data[i] != '\n')
			continue;
		if (i - start < sizeof(line)) {
			const uint8_t *msg;
			const char *why;
			size_t len;

			memcpy(line, data + start, i - start);
			line[i - start] = '\0';
			if (tp_smp_rx_line(&rx, line, i - start, &msg, &len,
					   &why) == 1) {
				if (len < TP_SMP_HDR || len > TP_SMP_PACKET_MAX)
					abort();
				decode_and_walk(msg + TP_SMP_HDR,
						len - TP_SMP_HDR);
			}
		}
		start = i + 1;
	}

	/* Frame the input as a message and read it back. */
	if (size >= TP_SMP_HDR && size <= TP_SMP_PACKET_MAX) {
		size_t n = tp_smp_frame(data, size, wire, sizeof(wire));
		const uint8_t *msg = NULL;
		size_t len = 0, s = 0;
		int got = 0;

		if (!n)
			abort();
		memset(&rx, 0, sizeof(rx));
		for (size_t i = 0; i < n; i++) {
			const char *why;

			if (wire[i] != '\n')
				continue;
			if (i - s > TP_SMP_FRAME_MAX - 1)
				abort(); /* a frame over 127 bytes */
			memcpy(line, wire + s, i - s);
			got = tp_smp_rx_line(&rx, line, i - s, &msg, &len, &why);
			if (got < 0)
				abort();
			s = i + 1;
		}
		if (got != 1 || len != size || memcmp(msg, data, size) != 0)
			abort();
	}
	return 0;
}
