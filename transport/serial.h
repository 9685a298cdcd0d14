/* transport/serial.h: a serial line (tty, pseudo-terminal or socket) with
 * deadlines on every read and write, so that protocols above it (the console,
 * YMODEM) never block forever on a silent or unplugged device. */
#ifndef TP_SERIAL_H
#define TP_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"

/*
 * Timeouts are in milliseconds: 0 polls once without waiting, a negative
 * value waits without limit.  Every function that fails records the device
 * name and the problem in `d` (which may be NULL).
 */

struct tp_serial;

/* Open a tty raw (cfmakeraw), 8N1, at `baud` (9600 .. 921600 as the B*
 * constants know them; others are STN_E_USAGE), CLOCAL, RTS/CTS when
 * `rtscts`, HUPCL off, locked with flock() against a second user.  Input
 * already queued is kept: a YMODEM receiver's 'C' may be waiting in it (the
 * console drains before each command).  STN_E_NODEVICE when the path does not exist or has
 * no device behind it, STN_E_DEVICE when another program holds the lock,
 * STN_E_IO otherwise (not a tty, permission denied, termios refused). */
int tp_serial_open(const char *path, unsigned baud, int rtscts,
		   struct tp_serial **out, struct stn_diag *d);

/* Wrap an already open fd (a pty master, a socket) for tests and the
 * simulator.  Takes ownership of `fd` (closed by tp_serial_close, also when
 * this fails); leaves its termios alone; `name` is used in messages. */
int tp_serial_from_fd(int fd, const char *name, struct tp_serial **out,
		      struct stn_diag *d);

void tp_serial_close(struct tp_serial *s); /* NULL is fine */
const char *tp_serial_name(const struct tp_serial *s); /* borrowed */

/* The baud rate the line was opened at; 0 for a wrapped fd. */
unsigned tp_serial_baud(const struct tp_serial *s);

/* Milliseconds `bytes` take on the wire at the line's baud rate (10 bits a
 * byte, rounded up; at most 600000), 0 when the rate is unknown.  Protocols
 * add it to their answer timeouts, so that a slow line is not mistaken for
 * a silent device: a 1 KiB block takes 1.07 s at 9600 baud. */
int tp_serial_line_ms(const struct tp_serial *s, size_t bytes);

/* Write all `len` bytes or fail: STN_E_TIMEOUT when the line does not take
 * them within timeout_ms (flow control held), STN_E_NODEVICE on hangup. */
int tp_serial_write(struct tp_serial *s, const void *buf, size_t len,
		    int timeout_ms, struct stn_diag *d);

/* Read at least 1 and at most cap bytes.  STN_E_TIMEOUT when nothing arrives
 * within timeout_ms, STN_E_NODEVICE on hangup or when the peer closed. */
int tp_serial_read(struct tp_serial *s, void *buf, size_t cap, int timeout_ms,
		   size_t *got, struct stn_diag *d);

/* Read one byte (convenience for protocols). */
int tp_serial_getc(struct tp_serial *s, int timeout_ms, uint8_t *c,
		   struct stn_diag *d);

/* Look at the next byte without consuming it (a later read returns it). */
int tp_serial_peek(struct tp_serial *s, int timeout_ms, uint8_t *c,
		   struct stn_diag *d);

/* Read one line ending in LF within timeout_ms (for the whole line); CR
 * bytes are dropped, the LF is not stored, the result is NUL terminated.
 * A line of more than cap-1 characters, or one holding a NUL byte, is
 * STN_E_PROTOCOL (cap must be at least 2: STN_E_USAGE).  On failure the
 * contents of `line` are unspecified and the bytes of a partial line that
 * were read are gone. */
int tp_serial_readline(struct tp_serial *s, char *line, size_t cap,
		       int timeout_ms, struct stn_diag *d);

/* Discard everything received and not yet read: buffered bytes, the
 * kernel's input queue, and whatever can be read without waiting. */
void tp_serial_drain_input(struct tp_serial *s);

/* Discard input until the line has been quiet for quiet_ms, or at most
 * max_ms in all (a sender that never stops cannot hold us).  Used to resync
 * after a damaged packet: the rest of it is still arriving. */
void tp_serial_drain_quiet(struct tp_serial *s, int quiet_ms, int max_ms);

#endif
