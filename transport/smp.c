/* transport/smp.c: SMP (MCUmgr) requests over the serial console framing.
 * Facts from the public MCUmgr documents: the 8-byte header (op, flags,
 * length, group, sequence, command), console frames of at most 127 bytes,
 * the length and CRC-16/XMODEM around the base64-encoded message, the
 * group and command numbers, and the map keys of each command. */
#include "transport/smp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/cbor.h"
#include "station/base/monotime.h"

#define DEFAULT_TIMEOUT_MS 2500
#define DEFAULT_RETRIES 5
#define DEFAULT_RECONNECT_MS 30000
/* Reopening a path that is not back yet is retried this often. */
#define RECONNECT_POLL_MS 100
/* A dropped line may drop again; each drop costs at most reconnect_ms. */
#define MAX_RECONNECTS 5
/* The first upload request makes many devices erase the slot first. */
#define FIRST_UPLOAD_MS 15000
/* MCUboot's serial recovery reads requests into 1 KiB; half of that is
 * safe for any device that does not tell its buffer size (and, as any
 * buf_size, holds the length and CRC too: see tp_smp_upload_chunk). */
#define DEFAULT_BUF 512
#define MIN_CHUNK 32
/* Device log lines on the same UART can be long; longer ones are skipped. */
#define LINE_CAP 1024
#define MAX_ITEMS 512
#define RSP_EST 256 /* bytes of an answer on the wire, for timeouts */

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* What was read from the image and not yet taken by the device. */
struct window {
	uint8_t buf[TP_SMP_PACKET_MAX];
	uint64_t base; /* file offset of buf[0] */
	size_t len;    /* bytes held */
	uint64_t read; /* bytes read from the source so far */
};

struct tp_smp {
	struct tp_serial *s;
	char *path; /* NULL: cannot reconnect */
	unsigned baud;
	int rtscts;
	int timeout_ms, retries, reconnect_ms;
	uint8_t seq;
	unsigned buf_size; /* 0 until asked */
	int params_asked;
	struct tp_smp_stats st;
	struct tp_smp_rx rx;
	uint8_t tx[TP_SMP_HDR + TP_SMP_PACKET_MAX];
	uint8_t wire[(TP_SMP_PACKET_MAX + 16) * 4 / 3 + 512];
	uint8_t rsp[TP_SMP_PACKET_MAX];
	size_t rsp_len;
	struct tp_cbor_item items[MAX_ITEMS];
	size_t nitems;
	struct window win;
	char name[];
};

/* ---- framing ---- */

static int b64_value(uint8_t c)
{
	const char *p;

	if (c == 0)
		return -1;
	p = memchr(b64, c, 64);
	return p ? (int)(p - b64) : -1;
}

size_t tp_smp_frame(const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
	uint8_t pkt[TP_SMP_PACKET_MAX + 4];
	uint16_t crc;
	size_t plen, o = 0, col = 0;

	if (len > TP_SMP_PACKET_MAX)
		return 0;
	crc = tp_crc16_xmodem(msg, len);
	pkt[0] = (uint8_t)((len + 2) >> 8);
	pkt[1] = (uint8_t)(len + 2);
	memcpy(pkt + 2, msg, len);
	pkt[2 + len] = (uint8_t)(crc >> 8);
	pkt[3 + len] = (uint8_t)crc;
	plen = len + 4;
	for (size_t i = 0; i < plen; i += 3) {
		size_t n = plen - i < 3 ? plen - i : 3;
		uint32_t v = (uint32_t)pkt[i] << 16;

		if (n > 1)
			v |= (uint32_t)pkt[i + 1] << 8;
		if (n > 2)
			v |= pkt[i + 2];
		/* A frame is the marker, up to 124 base64 characters (31
		 * whole groups) and the newline: 127 bytes. */
		if (col == 0) {
			if (cap - o < 2)
				return 0;
			out[o++] = i == 0 ? 0x06 : 0x04;
			out[o++] = i == 0 ? 0x09 : 0x14;
		}
		if (cap - o < 4)
			return 0;
		out[o++] = (uint8_t)b64[(v >> 18) & 63];
		out[o++] = (uint8_t)b64[(v >> 12) & 63];
		out[o++] = n > 1 ? (uint8_t)b64[(v >> 6) & 63] : '=';
		out[o++] = n > 2 ? (uint8_t)b64[v & 63] : '=';
		col += 4;
		if (col == TP_SMP_FRAME_MAX - 3 || i + 3 >= plen) {
			if (cap - o < 1)
				return 0;
			out[o++] = '\n';
			col = 0;
		}
	}
	return o;
}

static int rx_fail(struct tp_smp_rx *rx, const char **why, const char *what)
{
	rx->active = 0;
	rx->have = 0;
	*why = what;
	return -1;
}

int tp_smp_rx_line(struct tp_smp_rx *rx, const char *line, size_t n,
		   const uint8_t **msg, size_t *len, const char **why)
{
	const uint8_t *p = (const uint8_t *)line;
	size_t plen;
	uint16_t crc;

	*why = NULL;
	if (n && p[n - 1] == '\r')
		n--;
	if (n >= 2 && p[0] == 0x06 && p[1] == 0x09) {
		rx->active = 1;
		rx->have = 0;
	} else if (!(n >= 2 && p[0] == 0x04 && p[1] == 0x14 && rx->active)) {
		return 0; /* not ours: a log line, or a stray continuation */
	}
	if (n > TP_SMP_FRAME_MAX - 1)
		return rx_fail(rx, why, "frame longer than 127 bytes");
	p += 2;
	n -= 2;
	if (n == 0 || n % 4)
		return rx_fail(rx, why, "frame is not whole base64 groups");
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;

		for (int k = 0; k < 4; k++) {
			if (p[i + k] == '=' && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return rx_fail(rx, why,
					       "base64 data after padding");
			v[k] = b64_value(p[i + k]);
			if (v[k] < 0)
				return rx_fail(rx, why,
					       "frame holds a character that "
					       "is not base64");
		}
		if (pad && i + 4 != n)
			return rx_fail(rx, why, "base64 padding inside a frame");
		if (rx->have + 3 - pad > sizeof(rx->buf))
			return rx_fail(rx, why, "message larger than 8 KiB");
		{
			uint32_t w = (uint32_t)v[0] << 18 |
				     (uint32_t)v[1] << 12 |
				     (uint32_t)v[2] << 6 | (uint32_t)v[3];

			rx->buf[rx->have++] = (uint8_t)(w >> 16);
			if (pad < 2)
				rx->buf[rx->have++] = (uint8_t)(w >> 8);
			if (pad < 1)
				rx->buf[rx->have++] = (uint8_t)w;
		}
	}
	if (rx->have < 2)
		return 0;
	plen = (size_t)rx->buf[0] << 8 | rx->buf[1];
	if (plen < TP_SMP_HDR + 2 || plen > TP_SMP_PACKET_MAX + 2)
		return rx_fail(rx, why, "packet length out of range");
	if (rx->have < 2 + plen)
		return 0;
	if (rx->have > 2 + plen)
		return rx_fail(rx, why, "frames carry more than the packet "
					"length");
	crc = tp_crc16_xmodem(rx->buf + 2, plen - 2);
	rx->active = 0;
	rx->have = 0;
	if (crc != ((uint16_t)rx->buf[plen] << 8 | rx->buf[plen + 1])) {
		*why = "CRC mismatch";
		return -1;
	}
	*msg = rx->buf + 2;
	*len = plen - 2;
	return 1;
}

/* ---- the connection ---- */

static int smp_new(struct tp_serial *s, const char *path, unsigned baud,
		   int rtscts, const struct tp_smp_opts *o,
		   struct tp_smp **out, struct stn_diag *d)
{
	const char *name = tp_serial_name(s);
	size_t n = strlen(name) + 1;
	struct tp_smp *m = calloc(1, sizeof(*m) + n);

	if (!m) {
		tp_serial_close(s);
		return stn_fail(d, STN_E_NOMEM, name, "out of memory");
	}
	memcpy(m->name, name, n);
	if (path && !(m->path = strdup(path))) {
		free(m);
		tp_serial_close(s);
		return stn_fail(d, STN_E_NOMEM, name, "out of memory");
	}
	m->s = s;
	m->baud = baud;
	m->rtscts = rtscts;
	m->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms
					       : DEFAULT_TIMEOUT_MS;
	m->retries = o && o->retries > 0 ? o->retries : DEFAULT_RETRIES;
	m->reconnect_ms = o && o->reconnect_ms > 0 ? o->reconnect_ms
						   : DEFAULT_RECONNECT_MS;
	m->seq = (uint8_t)(stn_mono_ms() & 0xff);
	*out = m;
	return 0;
}

int tp_smp_open(const char *path, unsigned baud, int rtscts,
		const struct tp_smp_opts *opts, struct tp_smp **out,
		struct stn_diag *d)
{
	struct tp_serial *s = NULL;
	int rc = tp_serial_open(path, baud, rtscts, &s, d);

	if (rc)
		return rc;
	return smp_new(s, path, baud, rtscts, opts, out, d);
}

int tp_smp_from_serial(struct tp_serial *s, const struct tp_smp_opts *opts,
		       struct tp_smp **out, struct stn_diag *d)
{
	return smp_new(s, NULL, 0, 0, opts, out, d);
}

void tp_smp_close(struct tp_smp *m)
{
	if (!m)
		return;
	tp_serial_close(m->s);
	free(m->path);
	free(m);
}

const char *tp_smp_name(const struct tp_smp *m)
{
	return m->name;
}

void tp_smp_stats(const struct tp_smp *m, struct tp_smp_stats *st)
{
	*st = m->st;
}

/* The line went away: wait for the path to come back and reopen it. */
static int reconnect(struct tp_smp *m, const struct stn_diag *cause,
		     struct stn_diag *d)
{
	int64_t end = stn_mono_ms() + m->reconnect_ms;
	struct stn_diag ld;

	if (!m->path || m->st.reconnects >= MAX_RECONNECTS)
		return stn_fail(d, STN_E_NODEVICE, cause->where, "%s%s",
				cause->text,
				m->path ? " (dropped too often)" : "");
	tp_serial_close(m->s);
	m->s = NULL;
	for (;;) {
		stn_diag_init(&ld);
		if (tp_serial_open(m->path, m->baud, m->rtscts, &m->s, &ld) ==
		    0)
			break;
		if (stn_mono_ms() >= end)
			return stn_fail(d, STN_E_NODEVICE, m->name,
					"%s; the line did not come back "
					"within %d ms (%s)", cause->text,
					m->reconnect_ms, ld.text);
		stn_sleep_ms(RECONNECT_POLL_MS);
	}
	m->st.reconnects++;
	m->rx.active = 0;
	m->rx.have = 0;
	return 0;
}

static const char *mgmt_err_name(uint64_t rc)
{
	static const char *const names[] = {
		"EOK",	      "EUNKNOWN", "ENOMEM",   "EINVAL",
		"ETIMEOUT",   "ENOENT",	  "EBADSTATE", "EMSGSIZE",
		"ENOTSUP",    "ECORRUPT", "EBUSY",    "EACCESSDENIED",
		"UNSUPPORTED_TOO_OLD", "UNSUPPORTED_TOO_NEW",
	};

	return rc < sizeof(names) / sizeof(names[0]) ? names[rc] : "unknown";
}

static const char *group_name(unsigned g)
{
	return g == TP_SMP_GROUP_OS ? "os" : g == TP_SMP_GROUP_IMAGE ? "image"
								     : "other";
}

/* A nonzero rc in the answer, in either protocol version's form. */
static int check_rc(struct tp_smp *m, unsigned group, uint8_t id,
		    uint64_t *rc_out, struct stn_diag *d)
{
	long v = tp_cbor_map_get(m->items, m->nitems, 0, "rc");
	long e = tp_cbor_map_get(m->items, m->nitems, 0, "err");
	uint64_t rc = 0, grp = group;

	if (v == -2 || e == -2)
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"answer to %s command %u repeats a key",
				group_name(group), id);
	if (v >= 0) {
		if (m->items[v].type != TP_CBOR_UINT &&
		    m->items[v].type != TP_CBOR_NINT)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"answer to %s command %u has an rc "
					"that is not a number",
					group_name(group), id);
		rc = m->items[v].type == TP_CBOR_UINT ? m->items[v].u : 1;
	} else if (e >= 0) {
		long g = tp_cbor_map_get(m->items, m->nitems, (size_t)e,
					 "group");
		long r = tp_cbor_map_get(m->items, m->nitems, (size_t)e, "rc");

		if (r < 0 || m->items[r].type != TP_CBOR_UINT)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"answer to %s command %u has an err "
					"without an rc", group_name(group), id);
		rc = m->items[r].u;
		if (g >= 0 && m->items[g].type == TP_CBOR_UINT)
			grp = m->items[g].u;
	}
	*rc_out = rc;
	if (rc == 0)
		return 0;
	return stn_fail(d, STN_E_DEVICE, m->name,
			"device refused %s command %u: rc %" PRIu64
			" (%s, group %" PRIu64 ")", group_name(group), id, rc,
			grp == TP_SMP_GROUP_OS || grp == TP_SMP_GROUP_IMAGE
				? mgmt_err_name(rc) : "group-specific",
			grp);
}

/* Wait until the deadline for the answer to a request sent with sequence
 * numbers first..last (every try of one request; any number when first is
 * negative): 0 with the body in m->rsp, STN_E_TIMEOUT unrecorded, or a line
 * error.  Every try carries the same request, so a late answer to an
 * earlier try is as good as one to the last; answers to earlier requests
 * fall outside the range and are skipped. */
static int await(struct tp_smp *m, uint8_t op, unsigned group, uint8_t id,
		 int first, uint8_t last, int64_t deadline, struct stn_diag *ld)
{
	char line[LINE_CAP];

	for (;;) {
		const uint8_t *msg;
		const char *why;
		size_t len, blen;
		int64_t left = deadline - stn_mono_ms();
		int rc;

		if (left <= 0)
			return STN_E_TIMEOUT;
		stn_diag_init(ld);
		rc = tp_serial_readline(m->s, line, sizeof(line), (int)left,
					ld);
		if (rc == STN_E_TIMEOUT)
			return STN_E_TIMEOUT;
		if (rc == STN_E_PROTOCOL) { /* an overlong or binary line */
			m->st.skipped++;
			m->rx.active = 0;
			continue;
		}
		if (rc)
			return rc;
		rc = tp_smp_rx_line(&m->rx, line, strlen(line), &msg, &len,
				    &why);
		if (rc <= 0) {
			if (rc < 0)
				m->st.skipped++;
			continue;
		}
		blen = (size_t)msg[2] << 8 | msg[3];
		if ((msg[0] & 7) != op + 1 ||
		    ((unsigned)msg[4] << 8 | msg[5]) != group ||
		    (first >= 0 && (uint8_t)(msg[6] - first) >
					   (uint8_t)(last - first)) ||
		    msg[7] != id ||
		    blen != len - TP_SMP_HDR) {
			m->st.skipped++; /* an answer to an earlier try */
			continue;
		}
		memcpy(m->rsp, msg + TP_SMP_HDR, blen);
		m->rsp_len = blen;
		return 0;
	}
}

/* One request and its answer, decoded into m->items (items[0] the map).
 * `tries` 0 means m->retries; extra_ms is added to each wait; with any_seq
 * an answer to an earlier try of the same command is taken too. */
static int transact_seq(struct tp_smp *m, uint8_t op, unsigned group,
			uint8_t id, const uint8_t *body, size_t blen,
			int tries, int extra_ms, int any_seq,
			struct stn_diag *d)
{
	struct stn_diag ld;
	size_t wlen;
	uint64_t rc_dev;
	int first_seq = (uint8_t)(m->seq + 1);
	int rc = 0;

	if (blen > TP_SMP_PACKET_MAX - TP_SMP_HDR)
		return stn_fail(d, STN_E_INTERNAL, m->name,
				"request of %zu bytes", blen);
	if (!tries)
		tries = m->retries;
	for (int t = 1; t <= tries;) {
		uint8_t seq = ++m->seq;
		int wait;

		if (!m->s) {
			/* An earlier reconnect failed half way. */
			return stn_fail(d, STN_E_NODEVICE, m->name,
					"the line is gone");
		}
		m->tx[0] = op;
		m->tx[1] = 0;
		m->tx[2] = (uint8_t)(blen >> 8);
		m->tx[3] = (uint8_t)blen;
		m->tx[4] = (uint8_t)(group >> 8);
		m->tx[5] = (uint8_t)group;
		m->tx[6] = seq;
		m->tx[7] = id;
		memcpy(m->tx + TP_SMP_HDR, body, blen);
		wlen = tp_smp_frame(m->tx, TP_SMP_HDR + blen, m->wire,
				    sizeof(m->wire));
		if (!wlen)
			return stn_fail(d, STN_E_INTERNAL, m->name,
					"request does not frame");
		wait = m->timeout_ms + extra_ms +
		       tp_serial_line_ms(m->s, wlen + RSP_EST);
		stn_diag_init(&ld);
		rc = tp_serial_write(m->s, m->wire, wlen, wait, &ld);
		if (rc == 0)
			rc = await(m, op, group, id, any_seq ? -1 : first_seq,
				   seq, stn_mono_ms() + wait, &ld);
		if (rc == STN_E_NODEVICE) {
			rc = reconnect(m, &ld, d);
			if (rc)
				return rc;
			continue; /* the same try, on the new line */
		}
		if (rc == STN_E_TIMEOUT) {
			if (t++ < tries)
				m->st.resends++;
			continue;
		}
		if (rc)
			return stn_fail(d, rc, ld.where, "%s", ld.text);
		rc = tp_cbor_decode(m->rsp, m->rsp_len, m->items, MAX_ITEMS,
				    &m->nitems, m->name, d);
		if (rc)
			return rc;
		if (m->items[0].type != TP_CBOR_MAP)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"answer to %s command %u is not a map",
					group_name(group), id);
		m->st.requests++;
		return check_rc(m, group, id, &rc_dev, d);
	}
	return stn_fail(d, STN_E_TIMEOUT, m->name,
			"no answer to %s command %u within %d ms, %d tries",
			group_name(group), id,
			m->timeout_ms + extra_ms, tries);
}

static int transact(struct tp_smp *m, uint8_t op, unsigned group, uint8_t id,
		    const uint8_t *body, size_t blen, int tries, int extra_ms,
		    struct stn_diag *d)
{
	return transact_seq(m, op, group, id, body, blen, tries, extra_ms, 0,
			    d);
}

/* ---- verbs ---- */

static const uint8_t empty_map[] = {0xa0};

/* A uint under key in items[map]: 0, -1 when absent, or a protocol error. */
static int get_uint(struct tp_smp *m, size_t map, const char *key,
		    uint64_t *v, const char *what, struct stn_diag *d)
{
	long i = tp_cbor_map_get(m->items, m->nitems, map, key);

	if (i == -1)
		return -1;
	if (i < 0 || m->items[i].type != TP_CBOR_UINT)
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"%s: '%s' is %s", what, key,
				i == -2 ? "given twice" : "not a number");
	*v = m->items[i].u;
	return 0;
}

/* A bool under key: 1/0, -1 when absent; a non-bool is a protocol error. */
static int get_bool(struct tp_smp *m, size_t map, const char *key, int *v,
		    const char *what, struct stn_diag *d)
{
	long i = tp_cbor_map_get(m->items, m->nitems, map, key);

	if (i == -1)
		return -1;
	if (i < 0 || (m->items[i].type != TP_CBOR_TRUE &&
		      m->items[i].type != TP_CBOR_FALSE))
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"%s: '%s' is %s", what, key,
				i == -2 ? "given twice" : "not a bool");
	*v = m->items[i].type == TP_CBOR_TRUE;
	return 0;
}

int tp_smp_params(struct tp_smp *m, unsigned *buf_size, unsigned *buf_count,
		  struct stn_diag *d)
{
	struct stn_diag ld;
	uint64_t size = 0, count = 0;
	int rc;

	stn_diag_init(&ld);
	m->params_asked = 1;
	/* One try: a device that does not know the command may just not
	 * answer, and then the default is the answer. */
	rc = transact(m, TP_SMP_OP_READ, TP_SMP_GROUP_OS, TP_SMP_OS_PARAMS,
		      empty_map, sizeof(empty_map), 1, 0, &ld);
	if (rc == STN_E_TIMEOUT || rc == STN_E_DEVICE) {
		*buf_size = 0;
		*buf_count = 0;
		m->buf_size = 0;
		return 0;
	}
	if (rc)
		return stn_fail(d, rc, ld.where, "%s", ld.text);
	if (get_uint(m, 0, "buf_size", &size, "MCUmgr parameters", d) ||
	    get_uint(m, 0, "buf_count", &count, "MCUmgr parameters", d))
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"MCUmgr parameters without buf_size and "
				"buf_count");
	if (size < 64 || size > 65535 || count > 65535)
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"MCUmgr parameters out of range: buf_size %"
				PRIu64 ", buf_count %" PRIu64, size, count);
	*buf_size = m->buf_size = (unsigned)size;
	*buf_count = (unsigned)count;
	return 0;
}

int tp_smp_os_info(struct tp_smp *m, const char *format, char *out,
		   size_t cap, struct stn_diag *d)
{
	uint8_t body[64];
	struct tp_cbor_writer w;
	long i;
	int rc;

	tp_cbor_writer_init(&w, body, sizeof(body));
	tp_cbor_put_map(&w, 1);
	tp_cbor_put_text(&w, "format");
	tp_cbor_put_text(&w, format);
	if (w.overflow || cap == 0)
		return stn_fail(d, STN_E_USAGE, m->name, "bad info format");
	rc = transact(m, TP_SMP_OP_READ, TP_SMP_GROUP_OS, TP_SMP_OS_INFO,
		      body, w.len, 0, 0, d);
	if (rc)
		return rc;
	i = tp_cbor_map_get(m->items, m->nitems, 0, "output");
	if (i < 0 || m->items[i].type != TP_CBOR_TEXT)
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"OS info for '%s' has no text output", format);
	if (m->items[i].u > cap - 1)
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"OS info for '%s' is longer than %zu bytes",
				format, cap - 1);
	for (uint64_t k = 0; k < m->items[i].u; k++)
		if (m->items[i].ptr[k] < 0x20 || m->items[i].ptr[k] == 0x7f)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"OS info for '%s' holds control "
					"characters", format);
	memcpy(out, m->items[i].ptr, (size_t)m->items[i].u);
	out[m->items[i].u] = '\0';
	return 0;
}

/* The "images" list of an image state answer. */
static int parse_images(struct tp_smp *m, struct tp_smp_image *imgs,
			size_t *n, struct stn_diag *d)
{
	long arr = tp_cbor_map_get(m->items, m->nitems, 0, "images");

	if (arr < 0 || m->items[arr].type != TP_CBOR_ARRAY)
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"image state has no images list");
	if (m->items[arr].u > TP_SMP_MAX_IMAGES)
		return stn_fail(d, STN_E_PROTOCOL, m->name,
				"image state lists %" PRIu64 " images, more "
				"than %d", m->items[arr].u, TP_SMP_MAX_IMAGES);
	for (uint64_t k = 0; k < m->items[arr].u; k++) {
		struct tp_smp_image *im = &imgs[k];
		long e = tp_cbor_child(m->items, m->nitems, (size_t)arr, k);
		long v, h;
		uint64_t u;
		int rc;
		const char *what = "image state entry";

		memset(im, 0, sizeof(*im));
		if (e < 0 || m->items[e].type != TP_CBOR_MAP)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"image state entry %" PRIu64
					" is not a map", k);
		rc = get_uint(m, (size_t)e, "image", &u, what, d);
		if (rc == 0)
			im->image = u > 255 ? 255 : (unsigned)u;
		else if (rc != -1)
			return rc;
		if (get_uint(m, (size_t)e, "slot", &u, what, d) != 0 || u > 1)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"image state entry %" PRIu64
					" has no slot 0 or 1", k);
		im->slot = (unsigned)u;
		v = tp_cbor_map_get(m->items, m->nitems, (size_t)e, "version");
		if (v < 0 || m->items[v].type != TP_CBOR_TEXT ||
		    m->items[v].u == 0 ||
		    m->items[v].u >= sizeof(im->version))
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"image state entry %" PRIu64
					" has no usable version", k);
		for (uint64_t c = 0; c < m->items[v].u; c++)
			if (m->items[v].ptr[c] <= 0x20 ||
			    m->items[v].ptr[c] >= 0x7f)
				return stn_fail(d, STN_E_PROTOCOL, m->name,
						"image state entry %" PRIu64
						": version is not printable",
						k);
		memcpy(im->version, m->items[v].ptr, (size_t)m->items[v].u);
		h = tp_cbor_map_get(m->items, m->nitems, (size_t)e, "hash");
		if (h >= 0) {
			if (m->items[h].type != TP_CBOR_BYTES ||
			    m->items[h].u != 32)
				return stn_fail(d, STN_E_PROTOCOL, m->name,
						"image state entry %" PRIu64
						": hash is not 32 bytes", k);
			memcpy(im->hash, m->items[h].ptr, 32);
			im->has_hash = 1;
		}
		if (get_bool(m, (size_t)e, "bootable", &im->bootable, what,
			     d) < -1 ||
		    get_bool(m, (size_t)e, "pending", &im->pending, what, d) <
			    -1 ||
		    get_bool(m, (size_t)e, "confirmed", &im->confirmed, what,
			     d) < -1 ||
		    get_bool(m, (size_t)e, "active", &im->active, what, d) <
			    -1 ||
		    get_bool(m, (size_t)e, "permanent", &im->permanent, what,
			     d) < -1)
			return STN_E_PROTOCOL;
	}
	*n = (size_t)m->items[arr].u;
	return 0;
}

int tp_smp_image_state(struct tp_smp *m, struct tp_smp_image *imgs,
		       size_t *n, struct stn_diag *d)
{
	int rc = transact(m, TP_SMP_OP_READ, TP_SMP_GROUP_IMAGE,
			  TP_SMP_IMAGE_STATE, empty_map, sizeof(empty_map), 0,
			  0, d);

	return rc ? rc : parse_images(m, imgs, n, d);
}

int tp_smp_image_set(struct tp_smp *m, const uint8_t hash[32], int confirm,
		     struct tp_smp_image *imgs, size_t *n, struct stn_diag *d)
{
	uint8_t body[64];
	struct tp_cbor_writer w;
	int rc;

	tp_cbor_writer_init(&w, body, sizeof(body));
	tp_cbor_put_map(&w, hash ? 2 : 1);
	if (hash) {
		tp_cbor_put_text(&w, "hash");
		tp_cbor_put_bytes(&w, hash, 32);
	}
	tp_cbor_put_text(&w, "confirm");
	tp_cbor_put_bool(&w, confirm);
	rc = transact(m, TP_SMP_OP_WRITE, TP_SMP_GROUP_IMAGE,
		      TP_SMP_IMAGE_STATE, body, w.len, 0, 0, d);
	return rc ? rc : parse_images(m, imgs, n, d);
}

int tp_smp_reset(struct tp_smp *m, struct stn_diag *d)
{
	struct stn_diag ld;
	int rc;

	stn_diag_init(&ld);
	/* One try: a reset that was carried out must not be repeated on the
	 * freshly started image. */
	rc = transact(m, TP_SMP_OP_WRITE, TP_SMP_GROUP_OS, TP_SMP_OS_RESET,
		      empty_map, sizeof(empty_map), 1, 0, &ld);
	if (rc)
		return stn_fail(d, rc, ld.where, "reset: %s", ld.text);
	return 0;
}

#define READY_POLL_MS 500

int tp_smp_await_ready(struct tp_smp *m, int max_ms, struct stn_diag *d)
{
	static const uint8_t echo[] = {0xa1, 0x61, 'd', 0x67, 's', 't', 'a',
				       't', 'i', 'o', 'n'};
	int64_t end = stn_mono_ms() + max_ms;
	int saved = m->timeout_ms;
	struct stn_diag ld;
	int rc;

	m->timeout_ms = READY_POLL_MS;
	do {
		stn_diag_init(&ld);
		/* An answer to any of these echoes means the device is up,
		 * also when it is slower than the poll. */
		rc = transact_seq(m, TP_SMP_OP_WRITE, TP_SMP_GROUP_OS,
				  TP_SMP_OS_ECHO, echo, sizeof(echo), 1, 0, 1,
				  &ld);
	} while (rc == STN_E_TIMEOUT && stn_mono_ms() < end);
	m->timeout_ms = saved;
	if (rc == 0 || rc == STN_E_DEVICE)
		return 0;
	if (rc == STN_E_TIMEOUT)
		return stn_fail(d, rc, m->name,
				"the device did not answer within %d ms of "
				"its reset", max_ms);
	return stn_fail(d, rc, ld.where, "%s", ld.text);
}

/* ---- upload ---- */

static int src_fill(struct tp_smp *m, const struct tp_source *src,
		    struct window *w, size_t want, uint64_t size,
		    struct stn_diag *d)
{
	while (w->len < want) {
		size_t got = 0;
		int rc = src->read(src->ctx, w->buf + w->len, want - w->len,
				   &got);

		if (rc)
			return stn_fail(d, rc, m->name,
					"reading the image at byte %" PRIu64
					" failed: %s", w->read, stn_strerror(rc));
		if (got > want - w->len)
			return stn_fail(d, STN_E_IO, m->name,
					"image source returned too many bytes");
		if (got == 0)
			return stn_fail(d, STN_E_IO, m->name,
					"image ended at byte %" PRIu64
					" of the %" PRIu64 " announced",
					w->read, size);
		w->len += got;
		w->read += got;
	}
	if (w->read == size) {
		uint8_t extra;
		size_t got = 0;
		int rc = src->read(src->ctx, &extra, 1, &got);

		if (rc || got)
			return stn_fail(d, rc ? rc : STN_E_IO, m->name,
					"image is longer than the %" PRIu64
					" bytes announced", size);
	}
	return 0;
}

/* Drop bytes before `off` from the window (reading past the end of what
 * it holds when the device resumed further than we had read). */
static int advance(struct tp_smp *m, const struct tp_source *src,
		   struct window *w, uint64_t off, uint64_t size,
		   struct stn_diag *d)
{
	while (w->base + w->len < off) {
		uint64_t skip = off - w->base - w->len;
		size_t want = skip > sizeof(w->buf) ? sizeof(w->buf)
						    : (size_t)skip;
		int rc;

		w->base += w->len;
		w->len = 0;
		if ((rc = src_fill(m, src, w, want, size, d)))
			return rc;
	}
	memmove(w->buf, w->buf + (off - w->base),
		w->len - (size_t)(off - w->base));
	w->len -= (size_t)(off - w->base);
	w->base = off;
	return 0;
}

size_t tp_smp_upload_body(const struct tp_smp_upload_req *rq,
			  const uint8_t *data, size_t dlen, uint8_t *body,
			  size_t cap)
{
	static const uint8_t none[1];
	struct tp_cbor_writer wr;

	tp_cbor_writer_init(&wr, body, cap);
	tp_cbor_put_map(&wr, rq->first ? 5 : 2);
	if (rq->first) {
		tp_cbor_put_text(&wr, "image");
		tp_cbor_put_uint(&wr, rq->image);
		tp_cbor_put_text(&wr, "len");
		tp_cbor_put_uint(&wr, rq->len);
		tp_cbor_put_text(&wr, "sha");
		tp_cbor_put_bytes(&wr, rq->sha, 32);
	}
	tp_cbor_put_text(&wr, "off");
	tp_cbor_put_uint(&wr, rq->off);
	tp_cbor_put_text(&wr, "data");
	tp_cbor_put_bytes(&wr, dlen ? data : none, dlen);
	return wr.overflow ? 0 : wr.len;
}

size_t tp_smp_upload_chunk(unsigned buf_size,
			   const struct tp_smp_upload_req *rq)
{
	uint8_t body[128];
	size_t limit, fixed, room, n;

	/* Zephyr: subsys/mgmt/mcumgr/transport/src/serial_util.c,
	 * mcumgr_serial_process_frag(): length, message and CRC are decoded
	 * into one net_buf of buf_size bytes. */
	if (buf_size <= TP_SMP_SERIAL_OVERHEAD)
		return 0;
	limit = buf_size - TP_SMP_SERIAL_OVERHEAD;
	if (limit > TP_SMP_PACKET_MAX)
		limit = TP_SMP_PACKET_MAX;
	/* Everything but the data itself, measured by the encoder that
	 * writes the request: header, map head, keys, the values at their
	 * real widths, and the data's byte string head for 0 bytes (one). */
	fixed = tp_smp_upload_body(rq, NULL, 0, body, sizeof(body));
	if (!fixed || TP_SMP_HDR + fixed - 1 >= limit)
		return 0;
	room = limit - TP_SMP_HDR - (fixed - 1); /* head and data */
	/* Largest n with head(n) + n <= room; the head grows at 24, 256 and
	 * 65536 bytes, so at most a few steps back from room - 1. */
	n = room - 1;
	while (n && n + tp_cbor_head_size(n) > room)
		n--;
	return n;
}

int tp_smp_upload(struct tp_smp *m, unsigned image, uint64_t size,
		  const uint8_t sha256[32], const struct tp_source *src,
		  const struct tp_progress *prog,
		  struct tp_smp_upload_result *res, struct stn_diag *d)
{
	struct window *w = &m->win;
	uint8_t body[TP_SMP_PACKET_MAX];
	struct tp_smp_upload_result r = {.match = -1};
	unsigned bufsz, count;
	struct tp_smp_upload_req rq = {.image = image, .len = size,
				       .sha = sha256};
	size_t first_chunk, chunk;
	uint64_t off = 0;
	int first = 1, stalls = 0;
	int rc;

	memset(w, 0, sizeof(*w));
	if (!m->params_asked && (rc = tp_smp_params(m, &bufsz, &count, d)))
		return rc;
	bufsz = m->buf_size ? m->buf_size : DEFAULT_BUF;
	/* The smallest requests of this upload: the first one, and a later
	 * one at the image's end, where the offset is widest. */
	rq.first = 1;
	first_chunk = tp_smp_upload_chunk(bufsz, &rq);
	rq.first = 0;
	rq.off = size;
	chunk = tp_smp_upload_chunk(bufsz, &rq);
	if (first_chunk < MIN_CHUNK || chunk < MIN_CHUNK)
		return stn_fail(d, STN_E_DEVICE, m->name,
				"device buffer of %u bytes is too small for "
				"an upload", bufsz);
	r.chunk = (unsigned)chunk;
	while (off < size || (size == 0 && first)) {
		size_t take, blen;
		uint64_t got;
		int match;

		/* Sized for this request's own offset: its CBOR width grows
		 * at 24, 256, 65536 and 2^32. */
		rq.first = first;
		rq.off = off;
		take = tp_smp_upload_chunk(bufsz, &rq);
		if (take > size - off)
			take = (size_t)(size - off);
		if ((rc = src_fill(m, src, w, take, size, d)))
			return rc;
		blen = tp_smp_upload_body(&rq, w->buf, take, body,
					  sizeof(body));
		if (!blen || TP_SMP_HDR + blen >
				     bufsz - TP_SMP_SERIAL_OVERHEAD)
			return stn_fail(d, STN_E_INTERNAL, m->name,
					"upload request does not fit the "
					"device's %u-byte buffer", bufsz);
		rc = transact(m, TP_SMP_OP_WRITE, TP_SMP_GROUP_IMAGE,
			      TP_SMP_IMAGE_UPLOAD, body, blen, 0,
			      first ? FIRST_UPLOAD_MS : 0, d);
		if (rc)
			return rc;
		if (get_uint(m, 0, "off", &got, "upload answer", d) != 0)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"upload answer at offset %" PRIu64
					" carries no offset", off);
		if (got > size)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"device asks for offset %" PRIu64
					", past the image's %" PRIu64 " bytes",
					got, size);
		if (got < w->base)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"device went back from offset %" PRIu64
					" to %" PRIu64 ": it lost part of the "
					"upload (push again)", w->base, got);
		if (got > off + take && !first)
			return stn_fail(d, STN_E_PROTOCOL, m->name,
					"device claims offset %" PRIu64
					" after only %" PRIu64 " bytes were "
					"sent", got, off + take);
		if (first && got > 0)
			r.resumed_at = got > take ? got : 0;
		if (got == off && size > 0) {
			/* Not taken (a device that dropped the data, or a
			 * fresh start after it lost track): send again. */
			if (++stalls > m->retries)
				return stn_fail(d, STN_E_PROTOCOL, m->name,
						"device did not take data at "
						"offset %" PRIu64 " in %d "
						"tries", off, stalls);
		} else {
			stalls = 0;
			first = first && got == 0 && size > 0;
		}
		if ((rc = advance(m, src, w, got, size, d)))
			return rc;
		off = got;
		if (size == 0)
			first = 0;
		rc = get_bool(m, 0, "match", &match, "upload answer", d);
		if (rc == 0)
			r.match = match;
		else if (rc != -1)
			return rc;
		if (prog && prog->update)
			prog->update(prog->ctx, off, size);
	}
	if (res)
		*res = r;
	return 0;
}
