/* tests/fuzz_manifest.c: libFuzzer target for the manifest and device
 * identity parsers; a parsed manifest must also render and parse again to
 * the same bundle fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "custody/manifest.h"
#include "station/base/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cu_manifest *m = NULL, *again = NULL;
	struct cu_identity id;
	struct stn_diag d;
	char *text;

	stn_diag_init(&d);
	(void)cu_identity_parse(data, size, "fuzz", &id, &d);
	stn_diag_init(&d);
	if (cu_manifest_parse(data, size, "fuzz", &m, &d) != 0)
		return 0;
	text = cu_manifest_render(m);
	if (!text)
		abort();
	stn_diag_init(&d);
	if (cu_manifest_parse(text, strlen(text), "again", &again, &d) != 0 ||
	    again->sequence != m->sequence || again->nimages != m->nimages ||
	    strcmp(again->name, m->name) != 0 ||
	    again->expires != m->expires)
		abort(); /* render and parse must round-trip */
	for (size_t i = 0; i < m->nimages; i++) {
		const struct cu_image *a = &m->images[i], *b = &again->images[i];
		if (a->encrypted != b->encrypted ||
		    memcmp(a->iv, b->iv, sizeof(a->iv)) != 0 ||
		    memcmp(a->cipher_sha256, b->cipher_sha256,
			   sizeof(a->cipher_sha256)) != 0)
			abort(); /* formats §10 fields too */
	}
	free(text);
	cu_manifest_free(again);
	cu_manifest_free(m);
	return 0;
}
