/* transport/console.h: the line console of station-aware serial devices
 * (spec/devices.md, "Serial: console plus YMODEM"): ask who the device is,
 * hand it an image over YMODEM, and tell it to boot. */
#ifndef TP_CONSOLE_H
#define TP_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"
#include "transport/devmsg.h"
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
 * when it sends one.
 *
 * A device that holds a key (formats §9) sends its signed receipt before
 * the verdict: the station-receipt-1 record lines and `sig BASE64`, taken
 * with tp_msg_take (each line after the first may take 5 s; at most
 * TP_MSG_LINES_MAX + 5 lines).  On success, when receipt is not NULL,
 * *receipt gets it (unjudged) and *has_receipt 1, or *has_receipt 0 when
 * the device sent none; receipt NULL: a receipt is parsed and dropped
 * (has_receipt may then be NULL too).  A receipt without `sig`, or one
 * that is not well-formed, is STN_E_PROTOCOL. */
int tp_console_receive(struct tp_serial *s, unsigned slot, const char *name,
		       uint64_t size, const struct tp_source *src,
		       const struct tp_progress *prog, char sha_hex[65],
		       struct tp_signed_msg *receipt, int *has_receipt,
		       struct stn_diag *d);

/* `attest HEX` with the station's 32-byte nonce as 64 lowercase hex
 * digits; *out gets the device's answer up to its `ok` (record lines,
 * `sig`, `cert` lines: tp_msg_take), unjudged: custody/devid.h judges it.
 * An `error TEXT` as the first line is STN_E_NOATTEST (a device that knows
 * no `attest`; its words in the message); `error` later, an answer that
 * ends without `sig`, or any line tp_msg_take refuses, is STN_E_PROTOCOL:
 * a device that tried and failed.  Each line may take 5 s, the whole
 * answer 30 s plus the wire time of the largest answer the caps allow
 * (devmsg.h); at most TP_MSG_LINES_MAX + TP_MSG_CERTS_MAX + 2 lines, each
 * at most TP_MSG_LINE_MAX characters.  *out is written only on success. */
int tp_console_attest(struct tp_serial *s, const uint8_t nonce[32],
		      struct tp_signed_msg *out, struct stn_diag *d);

/* `authorize`, then `lines` (len bytes: the install authorization as
 * tp_msg_format writes it with "\r\n"), then `end`; the device answers
 * `ok` (5 s from the last byte sent) or `error TEXT`, which is
 * STN_E_AUTHORIZATION with the device's words in the message.  lines must
 * be non-empty, end with CR LF and hold no NUL and no `end` line
 * (STN_E_USAGE). */
int tp_console_authorize(struct tp_serial *s, const char *lines, size_t len,
			 struct stn_diag *d);

/* `boot`; returns once the device answered `ok` (5 s). */
int tp_console_boot(struct tp_serial *s, struct stn_diag *d);

#endif
