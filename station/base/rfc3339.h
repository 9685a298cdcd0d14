/* station/base/rfc3339.h: the one time format of formats §1, RFC 3339 UTC
 * with a `Z` and no fraction ("2026-11-20T10:00:00Z"), and §8 durations
 * ("72h"). */
#ifndef CU_RFC3339_H
#define CU_RFC3339_H

#include <stddef.h>
#include <stdint.h>

#define CU_TIME_LEN 20 /* "YYYY-MM-DDTHH:MM:SSZ" without NUL */

/* Parses exactly the form above (years 1970..9999, real calendar dates,
 * seconds 00..59) into seconds since the epoch; returns 0 or -1. */
int cu_time_parse(const char *s, int64_t *out);
/* Writes the form above into buf (at least CU_TIME_LEN + 1 bytes). */
void cu_time_format(int64_t t, char buf[CU_TIME_LEN + 1]);
/* Parses "<digits><unit>" with unit s, m, h or d into seconds; 0 or -1. */
int cu_duration_parse(const char *s, int64_t *out);

#endif
