/* station/base/hex.h: lowercase hex, the one spelling of digests, key ids
 * and salts in our formats (formats §1: uppercase is not a digest). */
#ifndef STN_HEX_H
#define STN_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*len lowercase hex digits and a NUL into hex (2*len+1 bytes). */
void cu_hex(const uint8_t *bytes, size_t len, char *hex);
/* Parses the first 2*n characters of hex, lowercase digits only, into n
 * bytes; what follows them is the caller's to check.  Returns 0, or -1
 * with out untouched. */
int cu_hex_parse(const char *hex, size_t n, uint8_t *out);

#endif
