/* transport/devmsg.c: signed records as lines (devmsg.h). */
#include "transport/devmsg.h"

#include <stdlib.h>
#include <string.h>

#include "station/base/base64.h"
#include "station/base/error.h"

void tp_msg_init(struct tp_signed_msg *m)
{
	m->record[0] = '\0';
	m->record_len = 0;
	m->nlines = 0;
	m->has_sig = 0;
	m->sig_len = 0;
	m->ncerts = 0;
}

int tp_msg_complete(const struct tp_signed_msg *m)
{
	return m->nlines > 0 && m->has_sig;
}

static int starts(const char *line, size_t len, const char *word)
{
	size_t n = strlen(word);
	return len > n && memcmp(line, word, n) == 0 && line[n] == ' ';
}

int tp_msg_take(struct tp_signed_msg *m, const char *line, size_t len,
		const char *where, struct stn_diag *d)
{
	if (len > TP_MSG_LINE_MAX)
		return stn_fail(d, STN_E_PROTOCOL, where,
				"a line of %zu bytes (at most %d)", len,
				TP_MSG_LINE_MAX);
	if (starts(line, len, "sig")) {
		if (m->has_sig)
			return stn_fail(d, STN_E_PROTOCOL, where,
					"a second `sig` line");
		if (m->nlines == 0)
			return stn_fail(d, STN_E_PROTOCOL, where,
					"a `sig` line before any record line");
		if (stn_b64_decode(line + 4, len - 4, m->sig,
				   sizeof(m->sig), &m->sig_len) ||
		    m->sig_len == 0)
			return stn_fail(d, STN_E_PROTOCOL, where,
					"the `sig` line is not canonical "
					"base64 of at most %d bytes",
					TP_MSG_SIG_MAX);
		m->has_sig = 1;
		return 0;
	}
	if (starts(line, len, "cert")) {
		if (!m->has_sig)
			return stn_fail(d, STN_E_PROTOCOL, where,
					"a `cert` line before the `sig` line");
		if (m->ncerts == TP_MSG_CERTS_MAX)
			return stn_fail(d, STN_E_PROTOCOL, where,
					"more than %d `cert` lines",
					TP_MSG_CERTS_MAX);
		if (stn_b64_decode(line + 5, len - 5, m->cert[m->ncerts],
				   TP_MSG_CERT_MAX,
				   &m->cert_len[m->ncerts]) ||
		    m->cert_len[m->ncerts] == 0)
			return stn_fail(d, STN_E_PROTOCOL, where,
					"`cert` line %zu is not canonical "
					"base64 of at most %d bytes",
					m->ncerts + 1, TP_MSG_CERT_MAX);
		m->ncerts++;
		return 0;
	}
	/* An empty line is no record line, before `sig` or after it (a
	 * signed record has no blank line; a stray CR LF is not a line). */
	if (len == 0)
		return 0;
	if (m->has_sig)
		return stn_fail(d, STN_E_PROTOCOL, where,
				"a record line after the `sig` line");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return stn_fail(d, STN_E_PROTOCOL, where,
					"record line %u holds control "
					"character 0x%02x", m->nlines + 1,
					(unsigned char)line[i]);
	if (m->nlines == TP_MSG_LINES_MAX ||
	    m->record_len + len + 1 > TP_MSG_RECORD_MAX)
		return stn_fail(d, STN_E_PROTOCOL, where,
				"the record exceeds %d lines or %d bytes",
				TP_MSG_LINES_MAX, TP_MSG_RECORD_MAX);
	memcpy(m->record + m->record_len, line, len);
	m->record_len += len;
	m->record[m->record_len++] = '\n';
	m->record[m->record_len] = '\0';
	m->nlines++;
	return 0;
}

int tp_msg_format(const struct tp_signed_msg *m, const char *eol, char **out,
		  size_t *len, struct stn_diag *d)
{
	size_t el = strlen(eol), cap, o = 0;
	char *buf;

	*out = NULL;
	if (!m->has_sig)
		return stn_fail(d, STN_E_USAGE, "message",
				"a message without a signature");
	cap = m->record_len + (m->nlines + 2 + m->ncerts) * el +
	      STN_B64_LEN(m->sig_len) + 8;
	for (size_t i = 0; i < m->ncerts; i++)
		cap += STN_B64_LEN(m->cert_len[i]) + 8;
	if (!(buf = malloc(cap)))
		return stn_fail(d, STN_E_NOMEM, "message", "formatting");
	for (size_t i = 0; i < m->record_len; i++) {
		if (m->record[i] == '\n') {
			memcpy(buf + o, eol, el);
			o += el;
		} else {
			buf[o++] = m->record[i];
		}
	}
	memcpy(buf + o, "sig ", 4);
	o += 4;
	stn_b64_encode(m->sig, m->sig_len, buf + o);
	o += strlen(buf + o);
	memcpy(buf + o, eol, el);
	o += el;
	for (size_t i = 0; i < m->ncerts; i++) {
		memcpy(buf + o, "cert ", 5);
		o += 5;
		stn_b64_encode(m->cert[i], m->cert_len[i], buf + o);
		o += strlen(buf + o);
		memcpy(buf + o, eol, el);
		o += el;
	}
	buf[o] = '\0';
	*out = buf;
	*len = o;
	return 0;
}

/* The device's words, printable ASCII only, for a message. */
static void shown_text(const char *p, size_t n, char *buf, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++)
		buf[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
	buf[o] = '\0';
}

int tp_msg_parse_block(struct tp_signed_msg *m, const char *buf, size_t len,
		       char *term, size_t term_cap, const char *where,
		       struct stn_diag *d)
{
	size_t pos = 0;
	int first = 1, done = 0, rc;

	tp_msg_init(m);
	if (term && term_cap)
		term[0] = '\0';
	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (n && line[n - 1] == '\r')
			n--;
		if (n == 0)
			continue;
		if (done)
			return stn_fail(d, STN_E_PROTOCOL, where,
					"text after the closing `ok`");
		if (first && (n == 5 || (n > 5 && line[5] == ' ')) &&
		    memcmp(line, "error", 5) == 0) {
			char text[300];
			shown_text(line + (n > 6 ? 6 : n),
				   n > 6 ? n - 6 : 0, text, sizeof(text));
			return stn_fail(d, STN_E_DEVICE, where,
					"the device answered: error %s",
					text);
		}
		first = 0;
		if ((n == 2 || (n > 3 && line[2] == ' ')) &&
		    memcmp(line, "ok", 2) == 0) {
			if (term && term_cap)
				shown_text(line, n, term, term_cap);
			done = 1;
			continue;
		}
		if ((rc = tp_msg_take(m, line, n, where, d)))
			return rc;
	}
	if (!done)
		return stn_fail(d, STN_E_PROTOCOL, where,
				"the answer ends without `ok`");
	return 0;
}
