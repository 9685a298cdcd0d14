/* station/base/base64.h: RFC 4648 §4 base64, the spelling of signatures and
 * DER certificates on a device's console (spec/devices.md: `sig BASE64`,
 * `cert BASE64`).  The decoder is strict, because its input comes from a
 * device: the standard alphabet only, padding exactly as §3.2 requires,
 * no whitespace, no line breaks, and the unused bits of the last group
 * zero (§3.5), so that one byte string has one spelling. */
#ifndef STN_BASE64_H
#define STN_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters stn_b64_encode writes for n bytes, without the NUL. */
#define STN_B64_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes STN_B64_LEN(len) characters and a NUL into out. */
void stn_b64_encode(const uint8_t *in, size_t len, char *out);

/* Decodes exactly len characters of in into out (at most cap bytes);
 * *out_len gets the byte count.  Returns 0, or -1 (not canonical base64,
 * or longer than cap) with out's contents unspecified. */
int stn_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap,
		   size_t *out_len);

#endif
