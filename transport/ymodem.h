/* transport/ymodem.h: YMODEM-1K with CRC-16, one file per batch: the sender
 * the station uses to push images to bootloaders (U-Boot loady, lrzsz rb,
 * station-aware devices after `receive`), and a receiver for the simulator
 * and the tests. */
#ifndef TP_YMODEM_H
#define TP_YMODEM_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"
#include "transport/serial.h"

/* Where the image bytes come from; the station streams its staging copy. */
struct tp_source {
	/* Fill buf with up to len bytes; *got = 0 only at the end of the data.
	 * Return 0 or a negative STN_E_* code. */
	int (*read)(void *ctx, void *buf, size_t len, size_t *got);
	void *ctx;
};

/* Optional; called after each block the receiver acknowledged. */
struct tp_progress {
	void (*update)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
};

/* Zeros mean the defaults: start 60000 ms (a person may still be typing
 * `loady`), block 10000 ms (lrzsz's own timeout is 10 s), 10 tries.  The
 * sender adds the time a packet takes on the wire at the line's baud rate
 * (tp_serial_line_ms) to each wait for its answer. */
struct tp_ymodem_opts {
	int start_timeout_ms; /* sender: wait for the first 'C';
				 receiver: wait for block 0 */
	int block_timeout_ms; /* sender: wait for the answer to one block;
				 receiver: wait for the next block */
	int max_retries;      /* a block is sent at most this many times */
	/* Receiver only, for the simulator's fault modes: called with each
	 * sound data block (index from 1, the times it arrived so far
	 * including this one) before it is taken; nonzero makes the receiver
	 * treat it as damaged and NAK it, as after a line error.  NULL: every
	 * sound block is taken. */
	int (*block_fault)(void *ctx, uint64_t index, unsigned arrival);
	void *fault_ctx;
	/* Receiver only: wait this long before each answer (a slow device). */
	int answer_delay_ms;
};

/* Send one file as a one-file batch.  `name` goes into block 0 and must be a
 * bare file name (no '/', not empty, fitting block 0 with the size:
 * STN_E_USAGE otherwise, before anything is sent).  Exactly `size` bytes are read from src; a source
 * that gives fewer or more is STN_E_IO (and the receiver is cancelled before
 * it can take the file as complete).  `opts` and `prog` may be NULL.
 * Noise between packets is skipped; 'C' after the data has started counts
 * as a NAK (U-Boot asks again that way); a lone CAN is noise, two in a row
 * a cancel.  After a block that had to be sent again, answers still queued
 * for an earlier copy (a duplicate ACK) are absorbed before the next block,
 * so that they are not taken as the next block's ACK.
 * Errors: STN_E_TIMEOUT (no 'C', or no answer to a block twice in a row),
 * STN_E_PROTOCOL (a block refused max_retries times), STN_E_CANCELLED (the
 * receiver sent CAN CAN), STN_E_NODEVICE, STN_E_IO, or the source's code. */
int tp_ymodem_send(struct tp_serial *s, const char *name, uint64_t size,
		   const struct tp_source *src,
		   const struct tp_ymodem_opts *opts,
		   const struct tp_progress *prog, struct stn_diag *d);

/* Receive one file: writes exactly the announced size to out_fd (padding
 * trimmed), then takes the end-of-batch null block.  A size over max_size is
 * refused with CAN (STN_E_TOOBIG); a name that is empty of a file, contains
 * '/' or "..", control characters, or does not fit name_cap is refused with
 * CAN (STN_E_PROTOCOL); so are a missing size, a block out of sequence, and a
 * second file in the batch.  The first EOT is NAKed and the second ACKed, as
 * lrzsz does, to exercise senders' EOT retry.  Fills name and *size only on
 * success; out_fd has been written to either way.  Errors also:
 * STN_E_TIMEOUT, STN_E_CANCELLED (CAN CAN from the sender), STN_E_IO
 * (writing out_fd), STN_E_NODEVICE. */
int tp_ymodem_receive(struct tp_serial *s, int out_fd, uint64_t max_size,
		      char *name, size_t name_cap, uint64_t *size,
		      const struct tp_ymodem_opts *opts, struct stn_diag *d);

/* CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection. */
uint16_t tp_crc16_xmodem(const void *data, size_t len);

#endif
