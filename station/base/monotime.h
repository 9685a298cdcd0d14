/* station/base/monotime.h: the monotonic clock in milliseconds and a sleep
 * that sleeps the whole time asked, done once for every timeout, deadline
 * and pause in the station, its transports and its simulators. */
#ifndef STN_MONOTIME_H
#define STN_MONOTIME_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC (not wall time: a clock set by NTP or
 * the technician never stretches or cuts a timeout). */
int64_t stn_mono_ms(void);
/* Sleeps at least ms milliseconds; a signal that interrupts the sleep
 * (EINTR) does not cut it short, the time left is slept.  ms <= 0 returns
 * at once. */
void stn_sleep_ms(int64_t ms);

#endif
