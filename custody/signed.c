/* custody/signed.c: listing and verifying a file's detached signatures. */
#include "custody/signed.h"

#include "custody/record.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* base.sig and base.LABEL.sig in dir, sorted. */
static int list_signatures(const char *dir, const char *base, char ***out,
			   size_t *n, struct stn_diag *d)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t count = 0, blen = strlen(base);
	int rc = 0;

	if (!dh)
		return stn_fail(d, STN_E_IO, dir, "cannot list: %s",
				strerror(errno));
	names = calloc(CU_MAX_SIGNATURES, sizeof(*names));
	if (!names) {
		closedir(dh);
		return stn_fail(d, STN_E_NOMEM, dir, "listing signatures");
	}
	while ((e = readdir(dh))) {
		size_t len = strlen(e->d_name);
		const char *mid = e->d_name + blen;

		if (len < blen + 4 || strncmp(e->d_name, base, blen) != 0 ||
		    strcmp(e->d_name + len - 4, ".sig") != 0)
			continue;
		if (len != blen + 4 &&
		    (mid[0] != '.' || !cu_label_ok(mid + 1, len - blen - 5)))
			continue; /* not one of ours: ignored like any file */
		if (count == CU_MAX_SIGNATURES) {
			rc = stn_fail(d, STN_E_TOOBIG, dir,
				      "more than %d signatures on %s",
				      CU_MAX_SIGNATURES, base);
			goto out;
		}
		if (!(names[count++] = strdup(e->d_name))) {
			rc = stn_fail(d, STN_E_NOMEM, dir, "listing");
			goto out;
		}
	}
	qsort(names, count, sizeof(*names), cmp_str);
out:
	closedir(dh);
	if (rc) {
		for (size_t i = 0; i < count; i++)
			free(names[i]);
		free(names);
		return rc;
	}
	*out = names;
	*n = count;
	return 0;
}

/* Rewrite a message's place from the directory read to the one shown. */
static void show_path(const char *dir, const char *shown, struct stn_diag *d)
{
	size_t n = strlen(dir);
	char where[sizeof(d->where)];

	if (!shown || strcmp(dir, shown) == 0 ||
	    strncmp(d->where, dir, n) != 0 ||
	    (d->where[n] != '/' && d->where[n] != '\0'))
		return;
	snprintf(where, sizeof(where), "%s%s", shown, d->where + n);
	snprintf(d->where, sizeof(d->where), "%s", where);
}

int cu_sigset_has_key(const struct cu_sigset *set, const uint8_t key_id[32])
{
	for (size_t i = 0; i < set->n; i++)
		if (memcmp(set->signers[i].key_id, key_id, 32) == 0)
			return 1;
	return 0;
}

int cu_signed_verify(const char *dir, const char *name, const char *shown_dir,
		     const uint8_t digest[32], const struct cu_trust *trust,
		     enum cu_role role, int64_t at, struct cu_sigset *out,
		     struct stn_diag *d)
{
	struct cu_sigset set;
	char **names = NULL;
	size_t n = 0;
	int rc;

	memset(&set, 0, sizeof(set));
	if ((rc = list_signatures(dir, name, &names, &n, d))) {
		show_path(dir, shown_dir, d);
		return rc;
	}
	set.nfiles = n;
	for (size_t i = 0; i < n; i++) {
		char sig[4200], pem[4200];
		struct cu_signer s;
		struct stn_diag one;
		int len;

		stn_diag_init(&one);
		len = snprintf(sig, sizeof(sig), "%s/%s", dir, names[i]);
		if (len < 0 || (size_t)len >= sizeof(sig)) {
			rc = stn_fail(&one, STN_E_UNSAFE, dir,
				      "path to %s too long", names[i]);
		} else {
			memcpy(pem, sig, (size_t)len + 1);
			memcpy(pem + len - 4, ".pem", 4);
			rc = cu_sig_verify(trust, digest, sig, pem, role, at,
					   &s, &one);
		}
		if (rc) {
			/* A missing or unreadable .pem beside a .sig is the
			 * signer's fault, not a retryable I/O error. */
			if (stn_err_exit(rc) == STN_EXIT_IO &&
			    rc != STN_E_NOMEM)
				stn_recode(&one, STN_E_SIGNATURE);
			show_path(dir, shown_dir, &one);
			if (set.nfail++ == 0)
				set.first_fail = one;
			continue;
		}
		if (!cu_sigset_has_key(&set, s.key_id))
			set.signers[set.n++] = s;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	*out = set;
	return 0;
}
