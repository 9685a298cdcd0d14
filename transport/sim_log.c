/* transport/sim_log.c: one "sim-x: message" line on stderr for every
 * simulator (issue 12: sim-dfu, sim-serial and sim-smp each had a copy). */
#include "transport/sim_log.h"

#include <stdarg.h>
#include <stdio.h>

void tp_sim_logf(const char *who, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", who);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
