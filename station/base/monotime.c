/* station/base/monotime.c: one monotonic clock and one EINTR-safe sleep
 * (issue 12: nine copies, some of which woke early on a signal). */
#include "station/base/monotime.h"

#include <errno.h>
#include <time.h>

int64_t stn_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void stn_sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	/* nanosleep writes the time left into ts when a signal cuts it. */
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
