/* tests/fuzz_custody.c: libFuzzer target for custody records (formats §4)
 * and exception tokens (§5): any input gives a record or a clean error. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "custody/chain.h"
#include "custody/token.h"
#include "station/base/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cu_hop hop;
	struct cu_token tok;
	uint8_t bundle[32], previous[32];
	struct stn_diag d;
	char names[64];

	stn_diag_init(&d);
	if (cu_custody_parse(data, size, "fuzz", &hop, bundle, previous,
			     &d) == 0 &&
	    (hop.index < 1 || hop.index > CU_MAX_HOPS || !hop.from[0]))
		__builtin_trap(); /* parse promised these */
	stn_diag_init(&d);
	if (cu_token_parse(data, size, "fuzz", &tok, bundle, &d) == 0) {
		if (strlen(tok.id) != 32 || !tok.waive || !tok.ndevices ||
		    tok.expires <= tok.issued)
			__builtin_trap();
		(void)cu_waiver_names(tok.waive, names, sizeof(names));
	}
	return 0;
}
