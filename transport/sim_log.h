/* transport/sim_log.h: the simulators' one diagnostic line.  It lives in
 * the library because a simulator links only its own object and the
 * library (Makefile). */
#ifndef TP_SIM_LOG_H
#define TP_SIM_LOG_H

/* Writes "who: " and the formatted message as one line to stderr. */
void tp_sim_logf(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
