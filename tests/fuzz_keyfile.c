/* tests/fuzz_keyfile.c: libFuzzer target for the station-key-1 key file
 * parser (formats §10).  Any input must give a clean STN_E_SYNTAX (or
 * TOOBIG/NOMEM) or a key file whose lengths fit its buffers and whose
 * method-specific rules hold; never a crash, leak or out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "custody/delivery.h"
#include "station/base/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cu_keyfile kf;
	struct stn_diag d;
	int rc;

	stn_diag_init(&d);
	rc = cu_keyfile_parse(data, size, "keys/fuzz.key", &kf, &d);
	if (rc == 0) {
		if (kf.ephemeral_len > sizeof(kf.ephemeral) ||
		    kf.wrapped_len > sizeof(kf.wrapped) ||
		    kf.wrapped_len == 0 ||
		    memchr(kf.image, '\0', sizeof(kf.image)) == NULL)
			abort();
		if (kf.method == CU_WRAP_ECDH_P256 &&
		    (kf.ephemeral_len == 0 || kf.wrapped_len != 40))
			abort();
		if (kf.method == CU_WRAP_RSA_OAEP_SHA256 &&
		    kf.ephemeral_len != 0)
			abort();
	} else if (rc != STN_E_SYNTAX && rc != STN_E_TOOBIG &&
		   rc != STN_E_NOMEM) {
		abort();
	}
	return 0;
}
