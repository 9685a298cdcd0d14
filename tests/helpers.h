/* tests/helpers.h: small fixtures shared by the cmocka suites: a temp
 * directory, file writing, and the openssl test PKI (tests/pki.sh). */
#ifndef TESTS_HELPERS_H
#define TESTS_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custody/trust.h"
#include "station/base/error.h"

static inline void th_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		abort();
	}
}

static inline void th_write_str(const char *path, const char *text)
{
	th_write(path, text, strlen(text));
}

/* A fresh directory under /tmp; the caller frees the string. */
static inline char *th_tempdir(void)
{
	char *dir = strdup("/tmp/station-test-XXXXXX");
	if (!dir || !mkdtemp(dir))
		abort();
	return dir;
}

static inline void th_rmrf(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* Build the test PKI into dir/pki with tests/pki.sh (run from the repo
 * root, as tests/run.sh does).  Returns 0 or -1. */
static inline int th_make_pki(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "bash tests/pki.sh '%s/pki' >/dev/null",
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The test PKI in a fresh directory and a trust store over its roots:
 * the setup of every suite that verifies signatures.  0 or -1. */
static inline int th_pki_trust(char **dir, struct cu_trust **trust)
{
	char anchors[4200];
	struct stn_diag d;

	*dir = th_tempdir();
	if (th_make_pki(*dir))
		return -1;
	snprintf(anchors, sizeof(anchors), "%s/pki/roots.pem", *dir);
	stn_diag_init(&d);
	return cu_trust_load(anchors, NULL, trust, &d) ? -1 : 0;
}

static inline void th_pki_free(char *dir, struct cu_trust *trust)
{
	cu_trust_free(trust);
	th_rmrf(dir);
	free(dir);
}

#endif
