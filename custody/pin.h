/* custody/pin.h: technician PINs as station.conf stores them (formats §8):
 * "pbkdf2-sha256$ITERATIONS$SALTHEX$HASHHEX", PBKDF2-HMAC-SHA256 with a
 * 32-byte output, compared in constant time. */
#ifndef CU_PIN_H
#define CU_PIN_H

#include <stddef.h>

struct stn_diag;

#define CU_PIN_ITERATIONS 200000
#define CU_PIN_SPEC_MAX 160

/* 0 when pin matches spec; STN_E_TECHNICIAN when it does not; STN_E_CONFIG
 * when spec is malformed. */
int cu_pin_check(const char *spec, const char *pin, struct stn_diag *d);

/* Writes a new spec for pin (random 16-byte salt) into out. */
int cu_pin_make(const char *pin, unsigned iterations,
		char out[CU_PIN_SPEC_MAX], struct stn_diag *d);

#endif
