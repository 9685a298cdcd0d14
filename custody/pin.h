/* custody/pin.h: technician PINs as station.conf stores them (formats §8):
 * "pbkdf2-sha256$ITERATIONS$SALTHEX$HASHHEX", PBKDF2-HMAC-SHA256 with a
 * 32-byte output, compared in constant time. */
#ifndef CU_PIN_H
#define CU_PIN_H

#include <stddef.h>

struct stn_diag;

/* What `station pin` writes, and the range cu_pin_check accepts. */
#define CU_PIN_ITERATIONS 200000
#define CU_PIN_ITERATIONS_MIN 1000
#define CU_PIN_ITERATIONS_MAX 100000000
#define CU_PIN_SPEC_MAX 160

/* A PIN is what the sign-in screen can type (station/app.c): printable
 * ASCII without spaces, CU_PIN_MIN_LEN to CU_PIN_MAX_LEN characters
 * (docs/decisions.md, "Technician PINs"). */
#define CU_PIN_MIN_LEN 4
#define CU_PIN_MAX_LEN 64

/* 0 when pin matches spec; STN_E_TECHNICIAN when it does not; STN_E_CONFIG
 * when spec is malformed. */
int cu_pin_check(const char *spec, const char *pin, struct stn_diag *d);

/* 0 when pin is one a technician may be given; STN_E_USAGE naming the
 * problem in plain words (empty, too short or long, a control character,
 * a space or a byte outside ASCII) when it is not. */
int cu_pin_acceptable(const char *pin, struct stn_diag *d);

/* Writes a new spec for pin (16 random bytes of salt from getrandom) into
 * out.  STN_E_USAGE when cu_pin_acceptable refuses pin or iterations lie
 * outside what cu_pin_check accepts; STN_E_IO when no randomness is to be
 * had.  The caller wipes pin; nothing derived from it is left here. */
int cu_pin_make(const char *pin, unsigned iterations,
		char out[CU_PIN_SPEC_MAX], struct stn_diag *d);

#endif
