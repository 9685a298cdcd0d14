/* tests/fuzz_devid.c: libFuzzer target for a device's signed answers
 * (formats §9): any bytes, taken as a block of lines (transport/devmsg.h),
 * are judged as an attestation (custody/devid.h: record parser,
 * certificate parsing, DER signature checks, chain rules) and as a receipt
 * for it, and their certificates written as PEM.  Nothing may crash, leak
 * or read out of bounds, and a refusal is always STN_E_ATTESTATION or
 * STN_E_PROOF.  The device anchors come from FUZZ_DEVID_ANCHORS (a PEM
 * file, e.g. tests/pki.sh's mfg-anchors.pem) when set; without them the
 * chain step refuses, which mutated inputs rarely reach anyway: their
 * signatures stop them first. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "custody/devid.h"
#include "custody/trust.h"
#include "station/base/error.h"
#include "transport/devmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cu_trust *anchors(void)
{
	static struct cu_trust *t;
	static int tried;
	struct stn_diag d;
	const char *path;

	if (!tried) {
		tried = 1;
		path = getenv("FUZZ_DEVID_ANCHORS");
		stn_diag_init(&d);
		if (path && cu_trust_load(path, NULL, &t, &d) != 0)
			abort(); /* asked for, so it must load */
	}
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tp_signed_msg m; /* 20 KiB: not on the stack */
	static struct cu_attestation a;
	const uint8_t *cert[TP_MSG_CERTS_MAX];
	uint8_t nonce[CU_NONCE_LEN];
	struct cu_devmsg msg;
	struct cu_receipt r;
	struct cu_image img;
	struct stn_diag d;
	char *pem = NULL;
	int rc;

	stn_diag_init(&d);
	tp_msg_init(&m);
	if (tp_msg_parse_block(&m, (const char *)data, size, NULL, 0, "fuzz",
			       &d) != 0)
		return 0;
	for (size_t i = 0; i < m.ncerts; i++)
		cert[i] = m.cert[i];
	memset(&msg, 0, sizeof(msg));
	msg.record = m.record;
	msg.record_len = m.record_len;
	msg.sig = m.has_sig ? m.sig : NULL;
	msg.sig_len = m.has_sig ? m.sig_len : 0;
	msg.cert = cert;
	msg.cert_len = m.cert_len;
	msg.ncert = m.ncerts;
	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)i;
	stn_diag_init(&d);
	memset(&a, 0, sizeof(a));
	rc = cu_attest_verify(anchors(), &msg, nonce, 1800000000, "fuzz", &a,
			      &d);
	if (rc != 0 && rc != STN_E_ATTESTATION && rc != STN_E_NOMEM)
		__builtin_trap();
	/* The same bytes as a receipt from that device (with no verified
	 * leaf, the record parser still runs before the key is needed). */
	memset(&img, 0, sizeof(img));
	stn_diag_init(&d);
	rc = cu_receipt_verify(&a, &msg, &img, "fuzz", &r, &d);
	if (rc != 0 && rc != STN_E_PROOF && rc != STN_E_INTERNAL)
		__builtin_trap();
	stn_diag_init(&d);
	if (cu_devid_chain_pem(cert, m.cert_len, m.ncerts, &pem, &d) == 0)
		free(pem);
	return 0;
}
