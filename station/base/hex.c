/* station/base/hex.c: lowercase hex encoding and strict parsing. */
#include "station/base/hex.h"

#include <string.h>

void cu_hex(const uint8_t *bytes, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[bytes[i] >> 4];
		hex[2 * i + 1] = digits[bytes[i] & 15];
	}
	hex[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase is not a digest per formats §1 */
}

int cu_hex_parse(const char *hex, size_t n, uint8_t *out)
{
	/* Two passes so a bad digit late in the string leaves out as it was
	 * (callers parse into keys and digests they compare later). */
	for (size_t i = 0; i < 2 * n; i++)
		if (hexval(hex[i]) < 0) /* also stops at the NUL */
			return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hexval(hex[2 * i]) << 4 |
				   hexval(hex[2 * i + 1]));
	return 0;
}
