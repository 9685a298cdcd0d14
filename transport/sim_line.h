/* transport/sim_line.h: the line the device simulators put between their
 * pseudo-terminal and their protocol code, so that a simulated device
 * behaves like one behind a real UART: bytes flow no faster than the baud
 * rate allows (10 bits a byte, both directions at once), and the line can
 * be dropped part way, as a USB serial adapter that is pulled out and
 * plugged back in.  For the simulators and tests only. */
#ifndef TP_SIM_LINE_H
#define TP_SIM_LINE_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"
#include "transport/serial.h"

struct tp_simline_opts {
	unsigned baud;    /* pace both directions at this rate; 0: no pacing */
	uint64_t drop_at; /* when the station has sent this many bytes in
			     all, the line drops (once); 0: never */
	int drop_ms;      /* how long it stays down (0: 1000 ms): the link
			     path is gone meanwhile, then a new pty appears
			     behind it */
};

struct tp_simline;

/* Create a pty (raw; its slave end is held open so the master never reads
 * EIO while no station has it open), point `link` at it (may be NULL) and
 * start relaying in a thread.  The pty's path is copied into pty.  Errors:
 * STN_E_IO. */
int tp_simline_start(const char *link, const struct tp_simline_opts *o,
		     char *pty, size_t cap, struct tp_simline **out,
		     struct stn_diag *d);

/* The device's end of the line, for the protocol code.  The first call
 * returns the line as it is; each later call is made after that end
 * reported STN_E_NODEVICE (the line dropped): it closes the old end, waits
 * until the line is back and returns the new one.  Owned by the line. */
struct tp_serial *tp_simline_device(struct tp_simline *l);

/* How many times the line has dropped so far. */
unsigned tp_simline_drops(struct tp_simline *l);

#endif
