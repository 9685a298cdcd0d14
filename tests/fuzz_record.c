/* tests/fuzz_record.c: libFuzzer target for the text record parser and the
 * schema checker (formats §1).  Any input must give a clean error or a
 * record, never a crash, leak or out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "custody/record.h"
#include "station/base/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cu_key_rule top[] = {{"format", CU_REQUIRED},
						 {"name", CU_OPTIONAL},
						 {NULL, 0}};
	static const struct cu_key_rule sec[] = {{"file", CU_REQUIRED},
						 {"size", CU_OPTIONAL},
						 {NULL, 0}};
	static const struct cu_section_rule rules[] = {
		{"", CU_NO_LABEL, 0, 1, top},
		{"image", CU_LABELLED, 0, 8, sec},
		{NULL, 0, 0, 0, NULL}};
	struct cu_record *r = NULL;
	struct stn_diag d;
	uint64_t u;
	int64_t t;
	uint8_t dig[32];
	const char *v;

	stn_diag_init(&d);
	if (cu_record_parse(data, size, "fuzz", &r, &d) != 0)
		return 0;
	(void)cu_record_check(r, rules, "x", &d);
	for (size_t i = 0; i < cu_record_nsections(r); i++) {
		const struct cu_section *s = cu_record_section(r, i);
		for (size_t k = 0; k < s->nentries; k++) {
			const char *key = s->entries[k].key;
			stn_diag_init(&d);
			(void)cu_get_u64(r, s, key, &u, &d);
			(void)cu_get_time(r, s, key, &t, &d);
			(void)cu_get_digest(r, s, key, dig, &d);
			(void)cu_get_duration(r, s, key, &t, &d);
			(void)cu_get_token(r, s, key, "a-z0-9._-", 64, &v, &d);
		}
	}
	cu_record_free(r);
	return 0;
}
