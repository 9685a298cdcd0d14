/* transport/ymodem.c: YMODEM-1K (Forsberg's XMODEM/YMODEM protocol reference,
 * 1988) with CRC-16, one file per batch.  The sender is written to the
 * behaviour of real receivers (lrzsz rb, U-Boot's xyzModem) rather than to
 * the letter of the reference where the two differ; each such place says so. */
#include "transport/ymodem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SOH 0x01    /* 128-byte block */
#define STX 0x02    /* 1024-byte block */
#define EOT 0x04
#define ACK 0x06
#define NAK 0x15
#define CAN 0x18
#define CPMEOF 0x1A /* padding of the last block */
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
/* The receiver repeats 'C' while waiting for block 0, as U-Boot (every 2.25 s)
 * and rb do; 3 s keeps the queue of stale 'C's short. */
#define WANTCRC_EVERY_MS 3000
/* After a damaged packet, the rest of it is still arriving: skip input until
 * the line is quiet before NAKing, or the NAK crosses the tail. */
#define RESYNC_QUIET_MS 300
#define RESYNC_MAX_MS 5000
/* The file is delivered once EOT is acknowledged; the null block only closes
 * the batch, so its answer is waited for briefly and is not required:
 * receivers answer it at once (it needs no storage), and rb even flushes
 * its output queue (TCIOFLUSH) on exit, which can swallow that ACK. */
#define BATCH_END_MS 1000
#define CANCEL_BYTES 8 /* U-Boot wants 3 CANs, lrzsz 2; lrzsz itself sends 10 */
/* After a block was sent again because its answer did not come, the
 * receiver may have both copies and ACK both: answers that arrive until the
 * line has been quiet this long (plus the packet's wire time) belong to the
 * old copy.  Bounded in all by DUP_MAX_MS. */
#define DUP_QUIET_MS 150
#define DUP_MAX_MS 3000

struct ylink {
	struct tp_serial *s;
	const char *dev;
	int start_ms;
	int block_ms;
	int retries;
	const struct tp_ymodem_opts *o; /* receiver fault hooks; may be NULL */
	struct stn_diag *d;
};

/* What a sender hears after a packet. */
enum answer { ANS_SILENT, ANS_ACK, ANS_NAK, ANS_OTHER };

uint16_t tp_crc16_xmodem(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint16_t crc = 0;

	while (len--) {
		crc ^= (uint16_t)(*p++ << 8);
		for (int i = 0; i < 8; i++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021)
					     : (uint16_t)(crc << 1);
	}
	return crc;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	return left < 0 ? 0 : (int)left;
}

static void link_init(struct ylink *l, struct tp_serial *s,
		      const struct tp_ymodem_opts *o, struct stn_diag *d)
{
	l->s = s;
	l->dev = tp_serial_name(s);
	l->start_ms = o && o->start_timeout_ms > 0 ? o->start_timeout_ms
						   : DEFAULT_START_MS;
	l->block_ms = o && o->block_timeout_ms > 0 ? o->block_timeout_ms
						   : DEFAULT_BLOCK_MS;
	l->retries = o && o->max_retries > 0 ? o->max_retries : DEFAULT_RETRIES;
	l->o = o;
	l->d = d;
}

/* Pass a serial-layer failure on, except a timeout: the protocol decides
 * what silence means and says so in its own words. */
static int keep_cause(struct ylink *l, int rc, const struct stn_diag *ld)
{
	if (rc && rc != STN_E_TIMEOUT)
		stn_fail(l->d, rc, ld->where, "%s", ld->text);
	return rc;
}

static int rx(struct ylink *l, int timeout_ms, uint8_t *c)
{
	struct stn_diag ld;

	stn_diag_init(&ld);
	return keep_cause(l, tp_serial_getc(l->s, timeout_ms, c, &ld), &ld);
}

static int peek(struct ylink *l, int timeout_ms, uint8_t *c)
{
	struct stn_diag ld;

	stn_diag_init(&ld);
	return keep_cause(l, tp_serial_peek(l->s, timeout_ms, c, &ld), &ld);
}

/* Read exactly n bytes, none of them more than CHAR_MS after the last. */
static int rx_exact(struct ylink *l, uint8_t *buf, size_t n)
{
	struct stn_diag ld;
	size_t have = 0;

	while (have < n) {
		size_t got = 0;
		int rc;

		stn_diag_init(&ld);
		rc = tp_serial_read(l->s, buf + have, n - have, CHAR_MS, &got,
				    &ld);
		if (rc)
			return keep_cause(l, rc, &ld);
		have += got;
	}
	return 0;
}

static int tx(struct ylink *l, const void *buf, size_t len)
{
	return tp_serial_write(l->s, buf, len, l->block_ms, l->d);
}

static int tx_byte(struct ylink *l, uint8_t c)
{
	return tx(l, &c, 1);
}

/* Tell the peer to abort; best effort, the transfer has failed already. */
static void cancel_peer(struct ylink *l)
{
	uint8_t cans[CANCEL_BYTES];

	memset(cans, CAN, sizeof(cans));
	tp_serial_write(l->s, cans, sizeof(cans), 1000, NULL);
}

static int cancelled(struct ylink *l, const char *who, const char *when)
{
	return stn_fail(l->d, STN_E_CANCELLED, l->dev,
			"the %s cancelled the transfer (CAN CAN)%s%s", who,
			*when ? " " : "", when);
}

/* The byte a CAN check handed back in *pending, else the next one from the
 * line before the deadline. */
static int next_byte(struct ylink *l, int *pending, int64_t deadline,
		     uint8_t *c)
{
	if (*pending >= 0) {
		*c = (uint8_t)*pending;
		*pending = -1;
		return 0;
	}
	return rx(l, ms_left(deadline), c);
}

/* A CAN was just read: a second one right behind it is a cancel by `who`.
 * A byte other than CAN is returned through *next for the caller. */
static int second_can(struct ylink *l, const char *who, const char *when,
		      int *next)
{
	uint8_t c;
	int rc = rx(l, CAN_PAIR_MS, &c);

	*next = -1;
	if (rc == STN_E_TIMEOUT)
		return 0;
	if (rc)
		return rc;
	if (c == CAN)
		return cancelled(l, who, when);
	*next = c;
	return 0;
}

/* Wait up to timeout_ms for a receiver's answer, skipping line noise. */
static int await_answer(struct ylink *l, int timeout_ms, const char *when,
			int *ans)
{
	int64_t deadline = now_ms() + timeout_ms;
	int next = -1;

	for (;;) {
		uint8_t c;
		int rc = next_byte(l, &next, deadline, &c);

		if (rc == STN_E_TIMEOUT) {
			*ans = ANS_SILENT;
			return 0;
		}
		if (rc)
			return rc;
		switch (c) {
		case ACK:
			*ans = ANS_ACK;
			return 0;
		case NAK:
		case WANTCRC: /* U-Boot asks again with 'C' after an error */
			*ans = ANS_NAK;
			return 0;
		case CAN:
			rc = second_can(l, "receiver", when, &next);
			if (rc)
				return rc;
			break;
		default:
			break;
		}
	}
}

/* Like await_answer, but only protocol bytes are consumed: a device with a
 * console may already be printing its verdict ("ok sha256=...") instead of
 * asking for the null block, and that line must stay for the console. */
static int await_end(struct ylink *l, int timeout_ms, const char *when,
		     int *ans)
{
	uint8_t c;
	int rc = peek(l, timeout_ms, &c);

	if (rc == STN_E_TIMEOUT) {
		*ans = ANS_SILENT;
		return 0;
	}
	if (rc)
		return rc;
	switch (c) {
	case ACK:
		*ans = ANS_ACK;
		break;
	case NAK:
	case WANTCRC:
		*ans = ANS_NAK;
		break;
	case CAN:
		/* Peek for the second one too: a lone CAN is noise, and the
		 * byte after it may be the console's. */
		rx(l, 0, &c);
		rc = peek(l, CAN_PAIR_MS, &c);
		if (rc == 0 && c == CAN) {
			rx(l, 0, &c);
			return cancelled(l, "receiver", when);
		}
		if (rc && rc != STN_E_TIMEOUT)
			return rc;
		*ans = ANS_OTHER;
		return 0;
	default:
		*ans = ANS_OTHER;
		return 0;
	}
	return rx(l, 0, &c);
}

/* Swallow answers to an earlier copy of a block (see DUP_QUIET_MS).  A
 * cancel is still a cancel. */
static int absorb_duplicates(struct ylink *l, size_t pkt_len, const char *when)
{
	int quiet = DUP_QUIET_MS + tp_serial_line_ms(l->s, pkt_len);
	int64_t end = now_ms() + DUP_MAX_MS;
	int next = -1;

	while (now_ms() < end) {
		uint8_t c;
		int rc = next_byte(l, &next, now_ms() + quiet, &c);

		if (rc == STN_E_TIMEOUT)
			return 0;
		if (rc)
			return rc;
		if (c == CAN && (rc = second_can(l, "receiver", when, &next)))
			return rc;
	}
	return 0;
}

/* Send one packet until it is ACKed.  `index` counts data blocks from 1
 * without wrapping, for messages; the wire number is its low byte. */
static int send_packet(struct ylink *l, uint64_t index, const uint8_t *data,
		       size_t len)
{
	uint8_t pkt[3 + 1024 + 2];
	uint16_t crc = tp_crc16_xmodem(data, len);
	char when[64];
	int naks = 0, silent = 0, resent_blind = 0;
	/* Wait for the answer once the packet is on the wire: at 9600 baud a
	 * 1K block alone takes 1.07 s. */
	int wait = l->block_ms + tp_serial_line_ms(l->s, len + 5);

	pkt[0] = len == 128 ? SOH : STX;
	pkt[1] = (uint8_t)index;
	pkt[2] = (uint8_t)~index;
	memcpy(pkt + 3, data, len);
	pkt[3 + len] = (uint8_t)(crc >> 8);
	pkt[4 + len] = (uint8_t)crc;
	snprintf(when, sizeof(when), "at block %" PRIu64, index);
	for (int tries = 1;; tries++) {
		int ans;
		int rc = tx(l, pkt, len + 5);

		if (rc)
			return rc;
		rc = await_answer(l, wait, when, &ans);
		if (rc)
			return rc;
		if (ans == ANS_ACK)
			return resent_blind ? absorb_duplicates(l, len + 5, when)
					    : 0;
		if (ans == ANS_SILENT) {
			resent_blind = 1;
			/* A live receiver answers a damaged or lost packet
			 * with NAK when its own timer runs out (rb 10 s,
			 * U-Boot 2 s); silence twice means it is gone. */
			if (++silent == 2)
				return stn_fail(l->d, STN_E_TIMEOUT, l->dev,
						"no answer to block %" PRIu64
						" within %d ms, twice",
						index, wait);
		} else {
			silent = 0;
			naks++;
		}
		if (tries >= l->retries)
			return stn_fail(l->d, STN_E_PROTOCOL, l->dev,
					"block %" PRIu64 " NAKed %d times"
					" (%d tries)", index, naks, tries);
	}
}

/* The receiver opens the batch with 'C'.  NAK asks for checksum mode, which
 * YMODEM-1K does not have; it is noted for the message, not answered. */
static int await_start(struct ylink *l)
{
	int64_t deadline = now_ms() + l->start_ms;
	int saw_nak = 0;
	int next = -1;

	for (;;) {
		uint8_t c;
		int rc = next_byte(l, &next, deadline, &c);

		if (rc == STN_E_TIMEOUT)
			return stn_fail(l->d, STN_E_TIMEOUT, l->dev,
					"no 'C' from the receiver within %d ms%s",
					l->start_ms,
					saw_nak ? " (it sent NAK: checksum mode, "
						  "which YMODEM-1K does not use)"
						: " (is it waiting in YMODEM "
						  "receive?)");
		if (rc)
			return rc;
		if (c == WANTCRC)
			break;
		if (c == NAK)
			saw_nak = 1;
		if (c == CAN) {
			rc = second_can(l, "receiver", "before the transfer",
					&next);
			if (rc)
				return rc;
		}
	}
	/* Receivers repeat 'C' until block 0 arrives; more of them queued now
	 * would read as NAKs of block 0 and cost needless resends. */
	for (;;) {
		uint8_t c;
		int rc = rx(l, 0, &c);

		if (rc == STN_E_TIMEOUT)
			return 0;
		if (rc)
			return rc;
		if (c == CAN) {
			rc = second_can(l, "receiver", "before the transfer",
					&next);
			if (rc)
				return rc;
		}
	}
}

static int validate_name(struct ylink *l, const char *name, uint64_t size,
			 uint8_t hdr[128])
{
	size_t n = strlen(name);
	int w;

	if (n == 0 || strchr(name, '/'))
		return stn_fail(l->d, STN_E_USAGE, l->dev,
				"file name '%s' for block 0 must be a non-empty "
				"base name", name);
	memset(hdr, 0, 128);
	/* Block 0: name NUL size, zero padded.  Modification time and mode
	 * are optional and left out: bootloaders ignore them. */
	if (n + 1 >= 128)
		w = -1;
	else
		w = snprintf((char *)hdr + n + 1, 128 - n - 1, "%" PRIu64,
			     size);
	if (w < 0 || (size_t)w >= 128 - n - 1)
		return stn_fail(l->d, STN_E_USAGE, l->dev,
				"file name '%s' is too long for block 0", name);
	memcpy(hdr, name, n);
	return 0;
}

static int read_source(struct ylink *l, const struct tp_source *src,
		       uint8_t *buf, size_t want, uint64_t offset,
		       uint64_t size)
{
	size_t have = 0;

	while (have < want) {
		size_t got = 0;
		int rc = src->read(src->ctx, buf + have, want - have, &got);

		if (rc)
			return stn_fail(l->d, rc, l->dev,
					"reading the image at byte %" PRIu64
					" failed: %s", offset + have,
					stn_strerror(rc));
		if (got > want - have)
			return stn_fail(l->d, STN_E_IO, l->dev,
					"image source returned %zu bytes when "
					"asked for %zu", got, want - have);
		if (got == 0)
			return stn_fail(l->d, STN_E_IO, l->dev,
					"image ended at byte %" PRIu64
					" of the %" PRIu64 " announced",
					offset + have, size);
		have += got;
	}
	return 0;
}

/* Before the last block goes out: a source with more bytes than announced
 * is a wrong size, and the receiver must not get to take the file. */
static int check_source_end(struct ylink *l, const struct tp_source *src,
			    uint64_t size)
{
	uint8_t extra;
	size_t got = 0;
	int rc = src->read(src->ctx, &extra, 1, &got);

	if (rc)
		return stn_fail(l->d, rc, l->dev,
				"reading the image at its end failed: %s",
				stn_strerror(rc));
	if (got)
		return stn_fail(l->d, STN_E_IO, l->dev,
				"image is longer than the %" PRIu64
				" bytes announced", size);
	return 0;
}

/* EOT until ACKed.  lrzsz's reference receiver NAKs the first EOT to make
 * sure it was no line noise; U-Boot and current rb ACK it at once. */
static int send_eot(struct ylink *l)
{
	int silent = 0;

	for (int tries = 1;; tries++) {
		int ans;
		int rc = tx_byte(l, EOT);

		if (rc)
			return rc;
		rc = await_answer(l, l->block_ms, "after EOT", &ans);
		if (rc)
			return rc;
		if (ans == ANS_ACK)
			return 0;
		if (ans == ANS_SILENT && ++silent == 2)
			return stn_fail(l->d, STN_E_TIMEOUT, l->dev,
					"no answer to EOT within %d ms, twice",
					l->block_ms);
		if (tries >= l->retries)
			return stn_fail(l->d, STN_E_PROTOCOL, l->dev,
					"EOT refused %d times", tries);
	}
}

/* After the file: the receiver asks with 'C' for the next block 0, and the
 * all-zero one ends the batch.  A receiver that asks for nothing (some MCU
 * loaders), never answers the null block, or goes away (a USB loader that
 * resets into the new image) still has the whole file. */
static int close_batch(struct ylink *l)
{
	/* 128 zero bytes, and their CRC, which is 0 too. */
	const uint8_t nul[3 + 128 + 2] = {SOH, 0x00, 0xFF};
	int ans;
	int rc = await_end(l, l->block_ms, "after the file", &ans);

	/* An EOT repeated on a 'C' that crossed it gets a second ACK. */
	for (int stale = 0; !rc && ans == ANS_ACK && stale < 4; stale++)
		rc = await_end(l, l->block_ms, "after the file", &ans);
	if (rc || ans != ANS_NAK)
		return rc;
	for (int tries = 1; tries <= l->retries; tries++) {
		rc = tx(l, nul, sizeof(nul));
		if (rc)
			return rc;
		rc = await_end(l, BATCH_END_MS, "after the file", &ans);
		if (rc || ans != ANS_NAK)
			return rc;
	}
	return 0;
}

static int end_batch(struct ylink *l)
{
	struct stn_diag *outer = l->d;
	struct stn_diag ld;
	int rc;

	stn_diag_init(&ld);
	l->d = &ld;
	rc = close_batch(l);
	l->d = outer;
	if (rc == STN_E_NODEVICE)
		return 0;
	if (rc)
		stn_fail(outer, rc, ld.where, "%s", ld.text);
	return rc;
}

int tp_ymodem_send(struct tp_serial *s, const char *name, uint64_t size,
		   const struct tp_source *src,
		   const struct tp_ymodem_opts *opts,
		   const struct tp_progress *prog, struct stn_diag *d)
{
	struct ylink l;
	uint8_t hdr[128];
	uint8_t data[1024];
	uint64_t done = 0;
	int started = 0;
	int ans;
	int rc;

	link_init(&l, s, opts, d);
	rc = validate_name(&l, name, size, hdr);
	if (rc)
		return rc;
	if (size == 0) {
		rc = check_source_end(&l, src, size);
		if (rc)
			return rc;
	}
	rc = await_start(&l);
	if (rc)
		goto out;
	started = 1;
	rc = send_packet(&l, 0, hdr, sizeof(hdr));
	if (rc)
		goto out;
	/* The receiver asks for the data (or the EOT of an empty file) with
	 * 'C' once it has dealt with block 0; U-Boot does so only after its
	 * 2 s read timeout. */
	rc = await_answer(&l, l.block_ms, "after block 0", &ans);
	/* A block 0 sent twice is ACKed twice. */
	for (int stale = 0; !rc && ans == ANS_ACK && stale < 4; stale++)
		rc = await_answer(&l, l.block_ms, "after block 0", &ans);
	if (rc)
		goto out;
	if (ans != ANS_NAK) {
		rc = stn_fail(d, STN_E_TIMEOUT, l.dev,
			      "the receiver took block 0 but did not ask for "
			      "data within %d ms", l.block_ms);
		goto out;
	}
	for (uint64_t index = 1; done < size; index++) {
		uint64_t rest = size - done;
		/* 1K blocks while they fill; a tail of at most 128 bytes goes
		 * in one 128-byte block, a longer one in a padded 1K block:
		 * one round trip costs more than 900 bytes of padding. */
		size_t blen = rest <= 128 ? 128 : 1024;
		size_t take = rest < blen ? (size_t)rest : blen;

		rc = read_source(&l, src, data, take, done, size);
		if (!rc && done + take == size)
			rc = check_source_end(&l, src, size);
		if (rc)
			goto out;
		memset(data + take, CPMEOF, blen - take);
		rc = send_packet(&l, index, data, blen);
		if (rc)
			goto out;
		done += take;
		if (prog && prog->update)
			prog->update(prog->ctx, done, size);
	}
	rc = send_eot(&l);
	if (rc)
		goto out;
	rc = end_batch(&l);
out:
	if (rc && started && rc != STN_E_CANCELLED && rc != STN_E_NODEVICE)
		cancel_peer(&l);
	return rc;
}

/* ---- receiver ---- */

enum pkt_kind { PKT_NONE, PKT_BAD, PKT_DATA, PKT_EOT };

struct packet {
	enum pkt_kind kind;
	uint8_t blk;
	size_t len;
	uint8_t data[1024];
};

/* Wait up to wait_ms for a packet and read it whole.  Noise before the
 * header is skipped; a packet that is short, misnumbered or fails its CRC is
 * PKT_BAD (the caller resyncs and NAKs). */
static int recv_packet(struct ylink *l, int wait_ms, struct packet *p)
{
	int64_t deadline = now_ms() + wait_ms;
	uint8_t head[2], crc[2];
	uint8_t c;
	int next = -1;
	int rc;

	for (;;) {
		rc = next_byte(l, &next, deadline, &c);
		if (rc == STN_E_TIMEOUT) {
			p->kind = PKT_NONE;
			return 0;
		}
		if (rc)
			return rc;
		if (c == SOH || c == STX || c == EOT)
			break;
		if (c == CAN) {
			rc = second_can(l, "sender", "", &next);
			if (rc)
				return rc;
		}
	}
	if (c == EOT) {
		p->kind = PKT_EOT;
		return 0;
	}
	p->len = c == SOH ? 128 : 1024;
	p->kind = PKT_BAD;
	rc = rx_exact(l, head, 2);
	if (!rc)
		rc = rx_exact(l, p->data, p->len);
	if (!rc)
		rc = rx_exact(l, crc, 2);
	if (rc == STN_E_TIMEOUT)
		return 0;
	if (rc)
		return rc;
	if ((uint8_t)(head[0] ^ head[1]) != 0xFF ||
	    tp_crc16_xmodem(p->data, p->len) != ((crc[0] << 8) | crc[1]))
		return 0;
	p->blk = head[0];
	p->kind = PKT_DATA;
	return 0;
}

/* Cancel the sender and say why. */
static int refuse(struct ylink *l, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct ylink *l, int code, const char *fmt, ...)
{
	char text[sizeof(l->d->text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	cancel_peer(l);
	return stn_fail(l->d, code, l->dev, "%s", text);
}

static int write_all(struct ylink *l, int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cancel_peer(l);
			return stn_fail(l->d, STN_E_IO, l->dev,
					"writing the received file: %s",
					n < 0 ? strerror(errno) : "no progress");
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Block 0: "name NUL size [more fields]".  The name is checked although the
 * simulator never uses it as a path: other callers might. */
static int parse_header(struct ylink *l, const struct packet *p,
			uint64_t max_size, char *name, size_t name_cap,
			uint64_t *size)
{
	const char *txt = (const char *)p->data;
	size_t n = strnlen(txt, p->len);
	uint64_t v = 0;
	size_t i;

	if (n == p->len)
		return refuse(l, STN_E_PROTOCOL,
			      "block 0 holds no NUL-terminated file name");
	if (n >= name_cap)
		return refuse(l, STN_E_PROTOCOL,
			      "file name in block 0 is too long");
	for (i = 0; i < n; i++)
		if ((uint8_t)txt[i] < 0x20 || txt[i] == 0x7f)
			return refuse(l, STN_E_PROTOCOL,
				      "file name in block 0 holds control "
				      "characters");
	memcpy(name, txt, n);
	name[n] = '\0';
	if (strchr(name, '/') || strchr(name, '\\') || strstr(name, "..") ||
	    strcmp(name, ".") == 0)
		return refuse(l, STN_E_PROTOCOL,
			      "file name '%s' in block 0 is not a plain name",
			      name);
	for (i = n + 1; i < p->len && txt[i] >= '0' && txt[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return refuse(l, STN_E_PROTOCOL,
				      "file size in block 0 is too large");
		v = v * 10 + (uint64_t)(txt[i] - '0');
	}
	if (i == n + 1 || (i < p->len && txt[i] != ' ' && txt[i] != '\0'))
		return refuse(l, STN_E_PROTOCOL,
			      "block 0 for '%s' carries no decimal file size",
			      name);
	if (v > max_size) {
		cancel_peer(l);
		return stn_fail(l->d, STN_E_TOOBIG, l->dev,
				"'%s' is %" PRIu64 " bytes, more than the %"
				PRIu64 " allowed", name, v, max_size);
	}
	*size = v;
	return 0;
}

/* The simulator's fault hooks (tp_ymodem_opts): a slow device, and a sound
 * block to be handled as a damaged one. */
static void answer_delay(struct ylink *l)
{
	if (l->o && l->o->answer_delay_ms > 0) {
		struct timespec ts = {
			.tv_sec = l->o->answer_delay_ms / 1000,
			.tv_nsec = (long)(l->o->answer_delay_ms % 1000) *
				   1000000L};

		nanosleep(&ts, NULL);
	}
}

static int injected_fault(struct ylink *l, uint64_t index, unsigned arrival)
{
	return l->o && l->o->block_fault &&
	       l->o->block_fault(l->o->fault_ctx, index, arrival);
}

/* Skip the rest of a damaged packet, then ask again. */
static int renak(struct ylink *l, int *errors, const char *when)
{
	tp_serial_drain_quiet(l->s, RESYNC_QUIET_MS, RESYNC_MAX_MS);
	if (++*errors >= l->retries) {
		cancel_peer(l);
		return stn_fail(l->d, STN_E_PROTOCOL, l->dev,
				"%d bad packets in a row %s", *errors, when);
	}
	return tx_byte(l, NAK);
}

/* Wait for block 0, sending 'C' every few seconds. */
static int recv_header(struct ylink *l, struct packet *p)
{
	int64_t deadline = now_ms() + l->start_ms;
	int errors = 0;

	while (ms_left(deadline) > 0) {
		struct stn_diag ld;
		int wait = ms_left(deadline);
		int rc;

		/* Nobody may be listening yet; a 'C' that finds the output
		 * queue full is simply not sent. */
		stn_diag_init(&ld);
		rc = tp_serial_write(l->s, "C", 1, 100, &ld);
		if (rc && rc != STN_E_TIMEOUT)
			return keep_cause(l, rc, &ld);
		rc = recv_packet(l, wait < WANTCRC_EVERY_MS ? wait
							    : WANTCRC_EVERY_MS,
				 p);
		if (rc)
			return rc;
		if (p->kind == PKT_DATA && p->blk == 0)
			return 0;
		if (p->kind == PKT_DATA)
			return refuse(l, STN_E_PROTOCOL,
				      "the sender started without block 0 "
				      "(XMODEM, not YMODEM?)");
		if (p->kind == PKT_EOT) {
			/* A sender finishing an earlier batch. */
			rc = tx_byte(l, ACK);
			if (rc)
				return rc;
		}
		if (p->kind == PKT_BAD && ++errors >= l->retries)
			return refuse(l, STN_E_PROTOCOL,
				      "block 0 damaged too many times");
		if (p->kind == PKT_BAD)
			tp_serial_drain_quiet(l->s, RESYNC_QUIET_MS,
					      RESYNC_MAX_MS);
	}
	return stn_fail(l->d, STN_E_TIMEOUT, l->dev,
			"no block 0 from the sender within %d ms", l->start_ms);
}

/* After the file: ask for the next block 0, which must be the null one. */
static int recv_batch_end(struct ylink *l, struct packet *p)
{
	for (int tries = 0; tries < 3; tries++) {
		int rc = tx_byte(l, WANTCRC);

		if (!rc)
			rc = recv_packet(l, BATCH_END_MS, p);
		if (rc)
			return rc;
		if (p->kind == PKT_EOT) /* our ACK of EOT was lost */
			rc = tx_byte(l, ACK);
		else if (p->kind == PKT_BAD)
			tp_serial_drain_quiet(l->s, RESYNC_QUIET_MS,
					      RESYNC_MAX_MS);
		else if (p->kind == PKT_DATA && p->blk == 0 && p->data[0] == 0)
			return tx_byte(l, ACK);
		else if (p->kind == PKT_DATA)
			return refuse(l, STN_E_PROTOCOL,
				      "the batch holds more than one file");
		if (rc)
			return rc;
	}
	/* The file is complete; a sender that never closes the batch has
	 * still delivered it. */
	return 0;
}

int tp_ymodem_receive(struct tp_serial *s, int out_fd, uint64_t max_size,
		      char *name, size_t name_cap, uint64_t *size,
		      const struct tp_ymodem_opts *opts, struct stn_diag *d)
{
	struct ylink l;
	struct packet p;
	char fname[1024];
	uint64_t fsize = 0, written = 0, expected = 1;
	int errors = 0, silent = 0, eots = 0;
	unsigned arrivals = 0;
	int rc;

	link_init(&l, s, opts, d);
	if (name_cap == 0)
		return stn_fail(d, STN_E_USAGE, l.dev, "no room for the name");
	rc = recv_header(&l, &p);
	if (rc)
		return rc;
	if (p.data[0] == 0) {
		tx_byte(&l, ACK);
		return stn_fail(d, STN_E_PROTOCOL, l.dev,
				"the sender ended the batch without a file");
	}
	rc = parse_header(&l, &p, max_size,
			  fname, name_cap < sizeof(fname) ? name_cap
							  : sizeof(fname),
			  &fsize);
	if (rc)
		return rc;
	rc = tx(&l, "\x06" "C", 2); /* ACK, and ask for the data */
	if (rc)
		return rc;
	for (;;) {
		char when[64];

		snprintf(when, sizeof(when), "at block %" PRIu64, expected);
		rc = recv_packet(&l, l.block_ms, &p);
		if (rc)
			return rc;
		if (p.kind != PKT_NONE)
			answer_delay(&l);
		if (p.kind == PKT_NONE) {
			if (++silent == 2) {
				cancel_peer(&l);
				return stn_fail(d, STN_E_TIMEOUT, l.dev,
						"no block %" PRIu64
						" within %d ms, twice",
						expected, l.block_ms);
			}
			rc = tx_byte(&l, NAK);
		} else if (p.kind == PKT_BAD) {
			silent = 0;
			rc = renak(&l, &errors, when);
		} else if (p.kind == PKT_EOT) {
			silent = 0;
			/* NAK the first EOT, ACK the second. */
			if (++eots == 1) {
				rc = tx_byte(&l, NAK);
			} else {
				rc = tx_byte(&l, ACK);
				break;
			}
		} else if (p.blk == (uint8_t)expected &&
			   injected_fault(&l, expected, ++arrivals)) {
			silent = 0;
			rc = renak(&l, &errors, when);
		} else if (p.blk == (uint8_t)expected) {
			size_t keep = fsize - written < p.len
					      ? (size_t)(fsize - written)
					      : p.len;

			/* Bytes past the announced size are padding. */
			rc = write_all(&l, out_fd, p.data, keep);
			if (rc)
				return rc;
			written += keep;
			expected++;
			arrivals = 0;
			errors = silent = eots = 0;
			rc = tx_byte(&l, ACK);
		} else if (p.blk == (uint8_t)(expected - 1)) {
			/* Our ACK was lost and the sender repeats itself;
			 * after block 0 it also needs the 'C' again. */
			silent = 0;
			rc = expected == 1 ? tx(&l, "\x06" "C", 2)
					   : tx_byte(&l, ACK);
		} else {
			cancel_peer(&l);
			return stn_fail(d, STN_E_PROTOCOL, l.dev,
					"block %u arrived when %u was expected",
					p.blk, (unsigned)(uint8_t)expected);
		}
		if (rc)
			return rc;
	}
	if (rc)
		return rc;
	if (written != fsize)
		return stn_fail(d, STN_E_PROTOCOL, l.dev,
				"'%s' ended after %" PRIu64 " of the %" PRIu64
				" bytes announced", fname, written, fsize);
	rc = recv_batch_end(&l, &p);
	if (rc)
		return rc;
	memcpy(name, fname, strlen(fname) + 1);
	*size = fsize;
	return 0;
}
