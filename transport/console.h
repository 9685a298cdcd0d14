/* transport/console.h: the line console of station-aware serial devices
 * (spec/devices.md, "Serial: console plus YMODEM"): ask who the device is,
 * hand it an image over YMODEM, and tell it to boot. */
#ifndef TP_CONSOLE_H
#define TP_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"
#include "transport/serial.h"
#include "transport/ymodem.h"

/*
 * Every verb discards stale input first (a boot banner, the tail of an
 * earlier answer), sends its command ending CR LF, and reads the answer one
 * line at a time, empty and control-only lines skipped.  Each line that
 * carries something may take the verb's time below, counted from the
 * command or the previous such line; empty and control-only lines never
 * extend it.  `info` has also an overall deadline (30 s plus the wire
 * time of cap bytes), and every answer a cap on its lines (16 skipped ones
 * beyond what it may hold) and on each line's length.  A device line `error TEXT` is STN_E_DEVICE with TEXT
 * in the message; an answer that is not in the protocol, or over a cap, is
 * STN_E_PROTOCOL; a device that gives no answer by the deadline is
 * STN_E_TIMEOUT; one that is unplugged is STN_E_NODEVICE.
 */

/* Ask `info`; return the identity record (its lines joined with '\n', no
 * '\n' after the last, without the final `ok`, empty lines left out) in buf.
 * cap includes the NUL; a record over cap-1 bytes or over 64 lines is
 * STN_E_PROTOCOL.  The record is not parsed here.  Each line may take 5 s,
 * the whole answer 30 s plus the time cap bytes take at the line's baud.
 * On failure the contents of buf are unspecified. */
int tp_console_info(struct tp_serial *s, char *buf, size_t cap,
		    struct stn_diag *d);

/* `receive SLOT SIZE`, wait for `ready` (5 s), YMODEM-send `size` bytes from
 * src under `name` (a base name), then read the verdict (30 s: the device
 * may be writing flash): `ok sha256=HEX` copies HEX into sha_hex as 64
 * lowercase digits and a NUL; `error TEXT` is STN_E_DEVICE.  Comparing the
 * hash with the image is the caller's job.  YMODEM errors are those of
 * tp_ymodem_send, with the device's own `error` line added to the message
 * when it sends one. */
int tp_console_receive(struct tp_serial *s, unsigned slot, const char *name,
		       uint64_t size, const struct tp_source *src,
		       const struct tp_progress *prog, char sha_hex[65],
		       struct stn_diag *d);

/* `boot`; returns once the device answered `ok` (5 s). */
int tp_console_boot(struct tp_serial *s, struct stn_diag *d);

#endif
