/* transport/ymodem_link.c: the byte-level helpers the YMODEM sender and
 * receiver share (transport/ymodem_link.h), and the CRC. */
#include "transport/ymodem_link.h"
#include "station/base/monotime.h"

#include <string.h>
#include <time.h>

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

int tp_yl_ms_left(int64_t deadline)
{
	int64_t left = deadline - stn_mono_ms();

	return left < 0 ? 0 : (int)left;
}

void tp_yl_link_init(struct ylink *l, struct tp_serial *s,
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
int tp_yl_keep_cause(struct ylink *l, int rc, const struct stn_diag *ld)
{
	if (rc && rc != STN_E_TIMEOUT)
		stn_fail(l->d, rc, ld->where, "%s", ld->text);
	return rc;
}

int tp_yl_rx(struct ylink *l, int timeout_ms, uint8_t *c)
{
	struct stn_diag ld;
	int rc;

	stn_diag_init(&ld);
	rc = tp_serial_getc(l->s, timeout_ms, c, &ld);
	return tp_yl_keep_cause(l, rc, &ld);
}

int tp_yl_peek(struct ylink *l, int timeout_ms, uint8_t *c)
{
	struct stn_diag ld;
	int rc;

	stn_diag_init(&ld);
	rc = tp_serial_peek(l->s, timeout_ms, c, &ld);
	return tp_yl_keep_cause(l, rc, &ld);
}

/* Read exactly n bytes, none of them more than CHAR_MS after the last. */
int tp_yl_rx_exact(struct ylink *l, uint8_t *buf, size_t n)
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
			return tp_yl_keep_cause(l, rc, &ld);
		have += got;
	}
	return 0;
}

int tp_yl_tx(struct ylink *l, const void *buf, size_t len)
{
	return tp_serial_write(l->s, buf, len, l->block_ms, l->d);
}

int tp_yl_tx_byte(struct ylink *l, uint8_t c) { return tp_yl_tx(l, &c, 1); }

/* Tell the peer to abort; best effort, the transfer has failed already. */
void tp_yl_cancel_peer(struct ylink *l)
{
	uint8_t cans[CANCEL_BYTES];

	memset(cans, CAN, sizeof(cans));
	tp_serial_write(l->s, cans, sizeof(cans), 1000, NULL);
}

int tp_yl_cancelled(struct ylink *l, const char *who, const char *when)
{
	return stn_fail(l->d, STN_E_CANCELLED, l->dev,
			"the %s cancelled the transfer (CAN CAN)%s%s", who,
			*when ? " " : "", when);
}

/* The byte a CAN check handed back in *pending, else the next one from the
 * line before the deadline. */
int tp_yl_next_byte(struct ylink *l, int *pending, int64_t deadline, uint8_t *c)
{
	if (*pending >= 0) {
		*c = (uint8_t)*pending;
		*pending = -1;
		return 0;
	}
	return tp_yl_rx(l, tp_yl_ms_left(deadline), c);
}

/* A CAN was just read: a second one right behind it is a cancel by `who`.
 * A byte other than CAN is returned through *next for the caller. */
int tp_yl_second_can(struct ylink *l, const char *who, const char *when,
		     int *next)
{
	uint8_t c;
	int rc = tp_yl_rx(l, CAN_PAIR_MS, &c);

	*next = -1;
	if (rc == STN_E_TIMEOUT)
		return 0;
	if (rc)
		return rc;
	if (c == CAN)
		return tp_yl_cancelled(l, who, when);
	*next = c;
	return 0;
}
