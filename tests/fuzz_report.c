/* tests/fuzz_report.c: libFuzzer target for the report verifier's parser
 * and chain checks (station/report_verify.c, docs/auditor.md), past the
 * signature check that would stop every mutated input at its first byte.
 * Any input must give a clean refusal or pass, never a crash, leak or
 * out-of-bounds read.  Seeds are real exports: tests/fixtures_report.sh
 * makes them (tests/e2e_fuzz.sh runs it), and tests/corpus/report holds
 * two small ones for `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "station/base/error.h"
#include "station/report_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stn_diag d;
	int fd = memfd_create("fuzz-report", MFD_CLOEXEC);
	size_t done = 0;

	if (fd < 0)
		return 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);

		if (n <= 0) {
			close(fd);
			return 0;
		}
		done += (size_t)n;
	}
	stn_diag_init(&d);
	(void)rpt_parse_unsigned(fd, "fuzz.json", &d);
	close(fd);
	return 0;
}
