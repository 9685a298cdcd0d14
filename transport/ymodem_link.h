/* transport/ymodem_link.h: internal to transport/ymodem*.c, not an API:
 * the protocol bytes, timing constants and byte-level helpers that the
 * YMODEM sender (ymodem.c) and receiver (ymodem_recv.c) share.  The
 * contract for users of YMODEM is transport/ymodem.h. */
#ifndef TP_YMODEM_LINK_H
#define TP_YMODEM_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"
#include "transport/serial.h"
#include "transport/ymodem.h"

#define SOH 0x01 /* 128-byte block */
#define STX 0x02 /* 1024-byte block */
#define EOT 0x04
#define ACK 0x06
#define NAK 0x15
#define CAN 0x18
#define WANTCRC 'C' /* "send, and use CRC-16" */

#define DEFAULT_START_MS 60000
#define DEFAULT_BLOCK_MS 10000
#define DEFAULT_RETRIES 10
/* A lone CAN is line noise; a cancel is two in a row, sent back to back. */
#define CAN_PAIR_MS 1000
/* Inside a packet bytes follow each other within a character time (10 us at
 * 921600 baud, 1 ms at 9600) plus USB-serial latency (16 ms); a 1 s gap
 * means the packet is broken, U-Boot uses 2 s for the same test. */
#define CHAR_MS 1000
/* The file is delivered once EOT is acknowledged; the null block only closes
 * the batch, so its answer is waited for briefly and is not required:
 * receivers answer it at once (it needs no storage), and rb even flushes
 * its output queue (TCIOFLUSH) on exit, which can swallow that ACK. */
#define BATCH_END_MS 1000
#define CANCEL_BYTES 8 /* U-Boot wants 3 CANs, lrzsz 2; lrzsz itself sends 10  \
			*/

struct ylink {
	struct tp_serial *s;
	const char *dev;
	int start_ms;
	int block_ms;
	int retries;
	const struct tp_ymodem_opts *o; /* receiver fault hooks; may be NULL */
	struct stn_diag *d;
};

/* Milliseconds until deadline, 0 when it has passed. */
int tp_yl_ms_left(int64_t deadline);
void tp_yl_link_init(struct ylink *l, struct tp_serial *s,
		     const struct tp_ymodem_opts *o, struct stn_diag *d);
/* Pass a serial-layer failure on, except a timeout: the protocol decides
 * what silence means and says so in its own words. */
int tp_yl_keep_cause(struct ylink *l, int rc, const struct stn_diag *ld);
int tp_yl_rx(struct ylink *l, int timeout_ms, uint8_t *c);
int tp_yl_peek(struct ylink *l, int timeout_ms, uint8_t *c);
/* Read exactly n bytes, none of them more than CHAR_MS after the last. */
int tp_yl_rx_exact(struct ylink *l, uint8_t *buf, size_t n);
int tp_yl_tx(struct ylink *l, const void *buf, size_t len);
int tp_yl_tx_byte(struct ylink *l, uint8_t c);
/* Tell the peer to abort; best effort, the transfer has failed already. */
void tp_yl_cancel_peer(struct ylink *l);
/* STN_E_CANCELLED: "the WHO cancelled the transfer (CAN CAN) WHEN". */
int tp_yl_cancelled(struct ylink *l, const char *who, const char *when);
/* The byte a CAN check handed back in *pending, else the next one from the
 * line before the deadline. */
int tp_yl_next_byte(struct ylink *l, int *pending, int64_t deadline,
		    uint8_t *c);
/* A CAN was just read: a second one right behind it is a cancel by `who`.
 * A byte other than CAN is returned through *next for the caller. */
int tp_yl_second_can(struct ylink *l, const char *who, const char *when,
		     int *next);

#endif
