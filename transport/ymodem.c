/* transport/ymodem.c: the YMODEM-1K sender (Forsberg's XMODEM/YMODEM
 * protocol reference, 1988) with CRC-16, one file per batch.  It is written
 * to the behaviour of real receivers (lrzsz rb, U-Boot's xyzModem) rather
 * than to the letter of the reference where the two differ; each such place
 * says so.  The receiver is transport/ymodem_recv.c. */
#include "transport/ymodem.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "transport/ymodem_link.h"
#include "station/base/monotime.h"

#define CPMEOF 0x1A /* padding of the last block */
/* After a block was sent again because its answer did not come, the
 * receiver may have both copies and ACK both: answers that arrive until the
 * line has been quiet this long (plus the packet's wire time) belong to the
 * old copy.  Bounded in all by DUP_MAX_MS. */
#define DUP_QUIET_MS 150
#define DUP_MAX_MS 3000
/* lrzsz rb sends its 'C' for the data (and for the next file) and then
 * flushes its input queue (purgeline): block 1, or the null block, sent the
 * instant the 'C' arrives can be flushed with it, which costs rb's 13 s
 * timeout, or leaves it waiting for the end of the batch.  A short quiet
 * wait after those two 'C's closes the race; it costs 20 ms a transfer. */
#define HEADER_SETTLE_MS 20
#define HEADER_SETTLE_MAX_MS 200
/* U-Boot's loady (common/xyzModem.c, 2023.01) ACKs block 0 and then asks
 * for nothing: its read of the next header gives up after 2 s
 * (xyzModem_CHAR_TIMEOUT), it waits for 2 s of line quiet (xyzModem_flush)
 * and 250 ms more, and only then sends 'C': 4.3 s of idle line, most of a
 * 64 KiB transfer.  It takes a block that starts within those first 2 s,
 * so when no 'C' follows the ACK of block 0 within DATA_ASK_MS, block 1 (or
 * the EOT of an empty file) goes out unasked.  lrzsz rb and our receiver
 * send their 'C' right behind the ACK, well inside the wait. */
#define DATA_ASK_MS 500

/* What a sender hears after a packet. */
enum answer { ANS_SILENT, ANS_ACK, ANS_NAK, ANS_OTHER };
/* Wait up to timeout_ms for a receiver's answer, skipping line noise. */
static int await_answer(struct ylink *l, int timeout_ms, const char *when,
			int *ans)
{
	int64_t deadline = stn_mono_ms() + timeout_ms;
	int next = -1;

	for (;;) {
		uint8_t c;
		int rc = tp_yl_next_byte(l, &next, deadline, &c);

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
			rc = tp_yl_second_can(l, "receiver", when, &next);
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
	int rc = tp_yl_peek(l, timeout_ms, &c);

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
		tp_yl_rx(l, 0, &c);
		rc = tp_yl_peek(l, CAN_PAIR_MS, &c);
		if (rc == 0 && c == CAN) {
			tp_yl_rx(l, 0, &c);
			return tp_yl_cancelled(l, "receiver", when);
		}
		if (rc && rc != STN_E_TIMEOUT)
			return rc;
		*ans = ANS_OTHER;
		return 0;
	default:
		*ans = ANS_OTHER;
		return 0;
	}
	return tp_yl_rx(l, 0, &c);
}

/* Swallow what arrives until the line has been quiet for quiet_ms, at most
 * max_ms in all: answers to an earlier copy of a block (DUP_QUIET_MS), or
 * repeated 'C's (HEADER_SETTLE_MS).  A cancel is still a cancel. */
static int absorb(struct ylink *l, int quiet, int max_ms, const char *when)
{
	int64_t end = stn_mono_ms() + max_ms;
	int next = -1;

	while (stn_mono_ms() < end) {
		uint8_t c;
		int rc = tp_yl_next_byte(l, &next, stn_mono_ms() + quiet, &c);

		if (rc == STN_E_TIMEOUT)
			return 0;
		if (rc)
			return rc;
		if (c == CAN &&
		    (rc = tp_yl_second_can(l, "receiver", when, &next)))
			return rc;
	}
	return 0;
}

/* Wait until the line has been quiet for HEADER_SETTLE_MS, consuming only
 * repeated 'C's: anything else (a console line) stays for the caller. */
static int settle_after_c(struct ylink *l)
{
	int64_t end = stn_mono_ms() + HEADER_SETTLE_MAX_MS;

	while (stn_mono_ms() < end) {
		uint8_t c;
		int rc = tp_yl_peek(l, HEADER_SETTLE_MS, &c);

		if (rc == STN_E_TIMEOUT)
			return 0;
		if (rc)
			return rc;
		if (c != WANTCRC)
			return 0;
		tp_yl_rx(l, 0, &c);
	}
	return 0;
}

/* Frame a block: header, data, then CRC-16 (big-endian) or, in checksum
 * mode, the low byte of the sum of the data bytes.  Returns the length. */
static size_t frame(uint8_t *pkt, uint64_t index, const uint8_t *data,
		    size_t len, int checksum)
{
	uint16_t crc;
	uint8_t sum = 0;

	pkt[0] = len == 128 ? SOH : STX;
	pkt[1] = (uint8_t)index;
	pkt[2] = (uint8_t)~index;
	memcpy(pkt + 3, data, len);
	if (checksum) {
		for (size_t i = 0; i < len; i++)
			sum = (uint8_t)(sum + data[i]);
		pkt[3 + len] = sum;
		return len + 4;
	}
	crc = tp_crc16_xmodem(data, len);
	pkt[3 + len] = (uint8_t)(crc >> 8);
	pkt[4 + len] = (uint8_t)crc;
	return len + 5;
}

/* Send one packet until it is ACKed.  `index` counts data blocks from 1
 * without wrapping, for messages; the wire number is its low byte.
 * `unasked`: the first copy goes out before the receiver asked for it (block
 * 1 to a silent U-Boot); a 'C' that crosses it may be a late request rather
 * than a NAK, so after a resend both copies may be ACKed. */
static int send_packet(struct ylink *l, uint64_t index, const uint8_t *data,
		       size_t len, int checksum, int unasked)
{
	uint8_t pkt[3 + 1024 + 2];
	size_t plen = frame(pkt, index, data, len, checksum);
	char when[64];
	int naks = 0, silent = 0, resent_blind = 0;
	/* Wait for the answer once the packet is on the wire: at 9600 baud a
	 * 1K block alone takes 1.07 s. */
	int line_ms = tp_serial_line_ms(l->s, plen);
	int wait = l->block_ms + line_ms;

	snprintf(when, sizeof(when), "at block %" PRIu64, index);
	for (int tries = 1;; tries++) {
		int ans;
		int rc = tp_yl_tx(l, pkt, plen);

		if (rc)
			return rc;
		rc = await_answer(l, wait, when, &ans);
		if (rc)
			return rc;
		if (ans == ANS_ACK && !resent_blind)
			return 0;
		if (ans == ANS_ACK)
			return absorb(l, DUP_QUIET_MS + line_ms, DUP_MAX_MS,
				      when);
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
			if (unasked && tries == 1)
				resent_blind = 1;
			silent = 0;
			naks++;
		}
		if (tries >= l->retries)
			return stn_fail(l->d, STN_E_PROTOCOL, l->dev,
					"block %" PRIu64 " NAKed %d times"
					" (%d tries)", index, naks, tries);
	}
}

/* The receiver opens the batch with 'C' (CRC-16) or NAK (an 8-bit
 * checksum).  U-Boot's loady repeats 'C' every 4.75 s while nobody sends
 * (2 s read timeout, 2 s line quiet, 250 ms and 500 ms of delay) and after
 * ten of them falls back to NAK, checksum mode, for good (xyzModem.c,
 * xyzModem_stream_open): a sender started late finds a queue of 'C's and
 * then NAKs, and the last of them is the mode the receiver is in.  Sets
 * *checksum to 1 for checksum mode. */
static int await_start(struct ylink *l, int *checksum)
{
	int64_t deadline = stn_mono_ms() + l->start_ms;
	int next = -1;

	for (;;) {
		uint8_t c;
		int rc = tp_yl_next_byte(l, &next, deadline, &c);

		if (rc == STN_E_TIMEOUT)
			return stn_fail(l->d, STN_E_TIMEOUT, l->dev,
					"no 'C' or NAK from the receiver within "
					"%d ms (is it waiting in YMODEM "
					"receive?)", l->start_ms);
		if (rc)
			return rc;
		if (c == WANTCRC || c == NAK) {
			*checksum = c == NAK;
			break;
		}
		if (c == CAN) {
			rc = tp_yl_second_can(l, "receiver",
					      "before the transfer", &next);
			if (rc)
				return rc;
		}
	}
	/* Receivers repeat 'C' until block 0 arrives; more of them queued now
	 * would read as NAKs of block 0 and cost needless resends. */
	for (;;) {
		uint8_t c;
		int rc = tp_yl_rx(l, 0, &c);

		if (rc == STN_E_TIMEOUT)
			return 0;
		if (rc)
			return rc;
		if (c == WANTCRC || c == NAK)
			*checksum = c == NAK;
		if (c == CAN) {
			rc = tp_yl_second_can(l, "receiver",
					      "before the transfer", &next);
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
		int rc = tp_yl_tx_byte(l, EOT);

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
static int close_batch(struct ylink *l, int checksum)
{
	/* 128 zero bytes, and their CRC or checksum, which is 0 too. */
	const uint8_t nul[3 + 128 + 2] = {SOH, 0x00, 0xFF};
	size_t nul_len = checksum ? sizeof(nul) - 1 : sizeof(nul);
	int ans;
	int rc = await_end(l, l->block_ms, "after the file", &ans);

	/* An EOT repeated on a 'C' that crossed it gets a second ACK. */
	for (int stale = 0; !rc && ans == ANS_ACK && stale < 4; stale++)
		rc = await_end(l, l->block_ms, "after the file", &ans);
	if (rc || ans != ANS_NAK || (rc = settle_after_c(l)))
		return rc;
	for (int tries = 1; tries <= l->retries; tries++) {
		rc = tp_yl_tx(l, nul, nul_len);
		if (rc)
			return rc;
		rc = await_end(l, BATCH_END_MS, "after the file", &ans);
		if (rc || ans != ANS_NAK)
			return rc;
	}
	return 0;
}

static int end_batch(struct ylink *l, int checksum)
{
	struct stn_diag *outer = l->d;
	struct stn_diag ld;
	int rc;

	stn_diag_init(&ld);
	l->d = &ld;
	rc = close_batch(l, checksum);
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
	int started = 0, checksum = 0, unasked = 0;
	int ans;
	int rc;

	tp_yl_link_init(&l, s, opts, d);
	rc = validate_name(&l, name, size, hdr);
	if (rc)
		return rc;
	if (size == 0) {
		rc = check_source_end(&l, src, size);
		if (rc)
			return rc;
	}
	rc = await_start(&l, &checksum);
	if (rc)
		goto out;
	started = 1;
	rc = send_packet(&l, 0, hdr, sizeof(hdr), checksum, 0);
	if (rc)
		goto out;
	/* The receiver asks for the data (or the EOT of an empty file) with
	 * 'C' once it has dealt with block 0; U-Boot does not (DATA_ASK_MS). */
	rc = await_answer(&l, DATA_ASK_MS, "after block 0", &ans);
	/* A block 0 sent twice is ACKed twice. */
	for (int stale = 0; !rc && ans == ANS_ACK && stale < 4; stale++)
		rc = await_answer(&l, DATA_ASK_MS, "after block 0", &ans);
	if (rc)
		goto out;
	if (ans == ANS_NAK)
		rc = settle_after_c(&l);
	else
		unasked = 1;
	if (rc)
		goto out;
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
		rc = send_packet(&l, index, data, blen, checksum, unasked);
		unasked = 0;
		if (rc)
			goto out;
		done += take;
		if (prog && prog->update)
			prog->update(prog->ctx, done, size);
	}
	rc = send_eot(&l);
	if (rc)
		goto out;
	rc = end_batch(&l, checksum);
out:
	if (rc && started && rc != STN_E_CANCELLED && rc != STN_E_NODEVICE)
		tp_yl_cancel_peer(&l);
	return rc;
}
