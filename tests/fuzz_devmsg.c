/* tests/fuzz_devmsg.c: libFuzzer target for what a device sends as a signed
 * record (transport/devmsg.h): tp_msg_parse_block must give a clean error
 * or a message within every cap, and a complete message must come back
 * the same through tp_msg_format and a second parse, for both line ends. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/error.h"
#include "transport/devmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tp_signed_msg m, back;

static void check_caps(const struct tp_signed_msg *x)
{
	unsigned lf = 0;

	if (x->record_len > TP_MSG_RECORD_MAX || x->nlines > TP_MSG_LINES_MAX ||
	    x->record[x->record_len] != '\0' ||
	    x->ncerts > TP_MSG_CERTS_MAX || x->sig_len > TP_MSG_SIG_MAX ||
	    (x->has_sig && x->sig_len == 0))
		abort();
	for (size_t i = 0; i < x->record_len; i++) {
		unsigned char c = (unsigned char)x->record[i];
		if (c == '\n')
			lf++;
		else if (c < 0x20 || c == 0x7f)
			abort();
	}
	if (lf != x->nlines ||
	    (x->record_len && x->record[x->record_len - 1] != '\n'))
		abort();
	for (size_t i = 0; i < x->ncerts; i++)
		if (x->cert_len[i] == 0 || x->cert_len[i] > TP_MSG_CERT_MAX)
			abort();
}

static void round_trip(const char *eol)
{
	struct stn_diag d;
	char *out, *block, term[16];
	size_t len;

	stn_diag_init(&d);
	if (tp_msg_format(&m, eol, &out, &len, &d) != 0)
		abort();
	if (!(block = malloc(len + 2 + strlen(eol)))) {
		free(out);
		return;
	}
	memcpy(block, out, len);
	memcpy(block + len, "ok", 2);
	memcpy(block + len + 2, eol, strlen(eol));
	if (tp_msg_parse_block(&back, block, len + 2 + strlen(eol), term,
			       sizeof(term), "fuzz", &d) != 0 ||
	    strcmp(term, "ok") != 0 || back.record_len != m.record_len ||
	    memcmp(back.record, m.record, m.record_len) != 0 ||
	    back.nlines != m.nlines || back.sig_len != m.sig_len ||
	    memcmp(back.sig, m.sig, m.sig_len) != 0 ||
	    back.ncerts != m.ncerts)
		abort();
	for (size_t i = 0; i < m.ncerts; i++)
		if (back.cert_len[i] != m.cert_len[i] ||
		    memcmp(back.cert[i], m.cert[i], m.cert_len[i]) != 0)
			abort();
	free(block);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stn_diag d;
	char term[100];

	stn_diag_init(&d);
	if (tp_msg_parse_block(&m, (const char *)data, size, term,
			       sizeof(term), "fuzz", &d) != 0) {
		if (d.code != STN_E_PROTOCOL && d.code != STN_E_DEVICE)
			abort();
		return 0;
	}
	check_caps(&m);
	if (strncmp(term, "ok", 2) != 0)
		abort();
	if (tp_msg_complete(&m)) {
		round_trip("\r\n");
		round_trip("\n");
	}
	return 0;
}
