/* station/base/sha256.h: the project's one SHA-256 (over OpenSSL libcrypto's
 * EVP, which uses the CPU's SHA instructions; see README), streaming and
 * one-shot, and the digest parser.  A leaf anyone may include. */
#ifndef CU_SHA256_H
#define CU_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define CU_SHA256_LEN 32
#define CU_SHA256_HEX_LEN 64 /* without the terminating NUL */

struct cu_sha256;

#define CU_SHA256_MUST_USE __attribute__((warn_unused_result))

/* Returns NULL when out of memory. */
struct cu_sha256 *cu_sha256_new(void);
/* Each returns 0, or STN_E_INTERNAL when libcrypto failed
 * (station/base/error.h): a digest that was not computed is never written.  After a failure the
 * context fails every call until it is freed, so a digest cannot be made
 * from part of the bytes. */
int cu_sha256_update(struct cu_sha256 *h, const void *data,
		     size_t len) CU_SHA256_MUST_USE;
/* Writes the digest and resets the context for reuse. */
int cu_sha256_final(struct cu_sha256 *h,
		    uint8_t out[CU_SHA256_LEN]) CU_SHA256_MUST_USE;
void cu_sha256_free(struct cu_sha256 *h); /* NULL is fine */

/* One shot.  Returns 0, STN_E_NOMEM or STN_E_INTERNAL. */
int cu_sha256(const void *data, size_t len,
	      uint8_t out[CU_SHA256_LEN]) CU_SHA256_MUST_USE;

struct stn_diag;

/* Hash what fd yields from its offset to the end of the file, reading at
 * most max + 1 bytes (so a file that grows past max is seen, not trusted):
 * *len is what was read (NULL is fine).  Failures name `shown`.  Returns 0,
 * STN_E_IO (read), STN_E_NOMEM or STN_E_INTERNAL. */
int cu_sha256_fd(int fd, uint64_t max, const char *shown,
		 uint8_t out[CU_SHA256_LEN], uint64_t *len,
		 struct stn_diag *d) CU_SHA256_MUST_USE;

/* Parses exactly 64 lowercase hex digits (station/base/hex.h writes them
 * with cu_hex); returns 0 or -1 with out untouched. */
int cu_digest_parse(const char *hex, uint8_t out[CU_SHA256_LEN]);

#endif
