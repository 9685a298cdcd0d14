/* transport/ymodem_recv.c: the YMODEM-1K receiver behind
 * transport/ymodem.h, used by the simulators and the tests: one file per
 * batch, CRC-16, the name checked, the size enforced, padding trimmed. */
#include "transport/ymodem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/ymodem_link.h"
#include "station/base/monotime.h"

/* The receiver repeats 'C' while waiting for block 0, as U-Boot (every 2.25 s)
 * and rb do; 3 s keeps the queue of stale 'C's short. */
#define WANTCRC_EVERY_MS 3000
/* After a damaged packet, the rest of it is still arriving: skip input until
 * the line is quiet before NAKing, or the NAK crosses the tail. */
#define RESYNC_QUIET_MS 300
#define RESYNC_MAX_MS 5000

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
	int64_t deadline = stn_mono_ms() + wait_ms;
	uint8_t head[2], crc[2];
	uint8_t c;
	int next = -1;
	int rc;

	for (;;) {
		rc = tp_yl_next_byte(l, &next, deadline, &c);
		if (rc == STN_E_TIMEOUT) {
			p->kind = PKT_NONE;
			return 0;
		}
		if (rc)
			return rc;
		if (c == SOH || c == STX || c == EOT)
			break;
		if (c == CAN) {
			rc = tp_yl_second_can(l, "sender", "", &next);
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
	rc = tp_yl_rx_exact(l, head, 2);
	if (!rc)
		rc = tp_yl_rx_exact(l, p->data, p->len);
	if (!rc)
		rc = tp_yl_rx_exact(l, crc, 2);
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
	tp_yl_cancel_peer(l);
	return stn_fail(l->d, code, l->dev, "%s", text);
}

static int write_all(struct ylink *l, int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			tp_yl_cancel_peer(l);
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
		tp_yl_cancel_peer(l);
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
	if (l->o && l->o->answer_delay_ms > 0)
		stn_sleep_ms(l->o->answer_delay_ms);
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
		tp_yl_cancel_peer(l);
		return stn_fail(l->d, STN_E_PROTOCOL, l->dev,
				"%d bad packets in a row %s", *errors, when);
	}
	return tp_yl_tx_byte(l, NAK);
}

/* Wait for block 0, sending 'C' every few seconds. */
static int recv_header(struct ylink *l, struct packet *p)
{
	int64_t deadline = stn_mono_ms() + l->start_ms;
	int errors = 0;

	while (tp_yl_ms_left(deadline) > 0) {
		struct stn_diag ld;
		int wait = tp_yl_ms_left(deadline);
		int rc;

		/* Nobody may be listening yet; a 'C' that finds the output
		 * queue full is simply not sent. */
		stn_diag_init(&ld);
		rc = tp_serial_write(l->s, "C", 1, 100, &ld);
		if (rc && rc != STN_E_TIMEOUT)
			return tp_yl_keep_cause(l, rc, &ld);
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
			rc = tp_yl_tx_byte(l, ACK);
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
		int rc = tp_yl_tx_byte(l, WANTCRC);

		if (!rc)
			rc = recv_packet(l, BATCH_END_MS, p);
		if (rc)
			return rc;
		if (p->kind == PKT_EOT) /* our ACK of EOT was lost */
			rc = tp_yl_tx_byte(l, ACK);
		else if (p->kind == PKT_BAD)
			tp_serial_drain_quiet(l->s, RESYNC_QUIET_MS,
					      RESYNC_MAX_MS);
		else if (p->kind == PKT_DATA && p->blk == 0 && p->data[0] == 0)
			return tp_yl_tx_byte(l, ACK);
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

	tp_yl_link_init(&l, s, opts, d);
	if (name_cap == 0)
		return stn_fail(d, STN_E_USAGE, l.dev, "no room for the name");
	rc = recv_header(&l, &p);
	if (rc)
		return rc;
	if (p.data[0] == 0) {
		tp_yl_tx_byte(&l, ACK);
		return stn_fail(d, STN_E_PROTOCOL, l.dev,
				"the sender ended the batch without a file");
	}
	rc = parse_header(&l, &p, max_size,
			  fname, name_cap < sizeof(fname) ? name_cap
							  : sizeof(fname),
			  &fsize);
	if (rc)
		return rc;
	rc = tp_yl_tx(&l, "\x06" "C", 2); /* ACK, and ask for the data */
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
				tp_yl_cancel_peer(&l);
				return stn_fail(d, STN_E_TIMEOUT, l.dev,
						"no block %" PRIu64
						" within %d ms, twice",
						expected, l.block_ms);
			}
			rc = tp_yl_tx_byte(&l, NAK);
		} else if (p.kind == PKT_BAD) {
			silent = 0;
			rc = renak(&l, &errors, when);
		} else if (p.kind == PKT_EOT) {
			silent = 0;
			/* NAK the first EOT, ACK the second. */
			if (++eots == 1) {
				rc = tp_yl_tx_byte(&l, NAK);
			} else {
				rc = tp_yl_tx_byte(&l, ACK);
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
			rc = tp_yl_tx_byte(&l, ACK);
		} else if (p.blk == (uint8_t)(expected - 1)) {
			/* Our ACK was lost and the sender repeats itself;
			 * after block 0 it also needs the 'C' again. */
			silent = 0;
			rc = expected == 1 ? tp_yl_tx(&l, "\x06" "C", 2)
					   : tp_yl_tx_byte(&l, ACK);
		} else {
			tp_yl_cancel_peer(&l);
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
