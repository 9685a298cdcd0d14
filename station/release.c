/* station/release.c: writing bundles for `station bundle create`, and the
 * checks release engineering runs without a station: `verify --trust`,
 * and what `token issue` and `custody add` check before they write. */
#include "station/release.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custody/chain.h"
#include "custody/delivery.h"
#include "custody/manifest.h"
#include "custody/record.h"
#include "custody/sig.h"
#include "custody/trust.h"
#include "custody/verify.h"
#include "station/base/aes_ctr.h"
#include "station/base/error.h"
#include "station/base/fileio.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/config.h" /* the [trust] defaults */
#include "station/session.h" /* stn_session_random */

#define COPY_BUF (1 << 20)
#define ENC_SUFFIX ".enc"
#define RID_SHOWN 8 /* hex digits of the recipient id in key file names */

/* Copy src into dirfd/name, hashing what is read into sha and, with ctr,
 * encrypting each block in place before it is written and hashing the
 * ciphertext into cipher_sha: one pass over the image either way. */
static int copy_hash(const char *src, int dirfd, const char *name,
		     struct cu_ctr *ctr, uint64_t *size,
		     uint8_t sha[CU_SHA256_LEN],
		     uint8_t cipher_sha[CU_SHA256_LEN], struct stn_diag *d)
{
	struct cu_sha256 *h = cu_sha256_new();
	struct cu_sha256 *hc = ctr ? cu_sha256_new() : NULL;
	uint8_t *buf = malloc(COPY_BUF);
	uint64_t total = 0;
	int in = -1, out = -1, rc = 0;
	struct stat st;

	if (!h || !buf || (ctr && !hc)) {
		rc = stn_fail(d, STN_E_NOMEM, src, "copying");
		goto out;
	}
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = stn_fail(d, STN_E_USAGE, src, "image is not a readable "
			      "regular file%s%s", in < 0 ? ": " : "",
			      in < 0 ? strerror(errno) : "");
		goto out;
	}
	out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     0644);
	if (out < 0) {
		rc = stn_fail(d, STN_E_IO, name, "cannot create: %s",
			      strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n = stn_read_retry(in, buf, COPY_BUF);
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, src, "read: %s",
				      strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = cu_sha256_update(h, buf, (size_t)n))) {
			rc = stn_fail(d, rc, name, "hashing: %s",
				      stn_strerror(rc));
			goto out;
		}
		if (ctr) {
			if ((rc = cu_ctr_apply(ctr, buf, buf, (size_t)n))) {
				rc = stn_fail(d, rc, name, "encrypting: %s",
					      stn_strerror(rc));
				goto out;
			}
			if ((rc = cu_sha256_update(hc, buf, (size_t)n))) {
				rc = stn_fail(d, rc, name, "hashing: %s",
					      stn_strerror(rc));
				goto out;
			}
		}
		if (stn_write_all(out, buf, (size_t)n) != 0) {
			rc = stn_fail(d, STN_E_IO, name, "write: %s",
				      strerror(errno));
			goto out;
		}
		total += (uint64_t)n;
	}
	if (fsync(out) != 0) {
		rc = stn_fail(d, STN_E_IO, name, "fsync: %s", strerror(errno));
		goto out;
	}
	if ((rc = cu_sha256_final(h, sha)) ||
	    (ctr && (rc = cu_sha256_final(hc, cipher_sha)))) {
		rc = stn_fail(d, rc, name, "hashing: %s", stn_strerror(rc));
		goto out;
	}
	*size = total;
out:
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = stn_fail(d, STN_E_IO, name, "close: %s", strerror(errno));
	if (in >= 0)
		close(in);
	cu_sha256_free(h);
	cu_sha256_free(hc);
	/* A failure half-way may leave plaintext in buf. */
	if (buf && ctr)
		explicit_bzero(buf, COPY_BUF);
	free(buf);
	return rc;
}

static int write_file(int dirfd, const char *name, const char *text,
		      size_t len, struct stn_diag *d)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			0644);
	int rc = 0;

	if (fd < 0)
		return stn_fail(d, STN_E_IO, name, "cannot create: %s",
				strerror(errno));
	if (stn_write_all(fd, text, len) != 0)
		rc = stn_fail(d, STN_E_IO, name, "write: %s", strerror(errno));
	if (rc == 0 && fsync(fd) != 0)
		rc = stn_fail(d, STN_E_IO, name, "fsync: %s", strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = stn_fail(d, STN_E_IO, name, "close: %s", strerror(errno));
	return rc;
}

/* Fsyncs the directory that holds the bundle directory outdir; a
 * trailing slash ("out/") names the same directory. */
static int sync_bundle_parent(const char *outdir, struct stn_diag *d)
{
	char path[PATH_MAX];
	size_t n = strlen(outdir);

	while (n > 1 && outdir[n - 1] == '/')
		n--;
	if (n >= sizeof(path))
		return stn_fail(d, STN_E_IO, outdir, "path too long");
	memcpy(path, outdir, n);
	path[n] = '\0';
	return stn_fsync_parent(path, d);
}

/* Removes what stn_release_create wrote: files, and keys/ one level
 * down. */
static void remove_dir(const char *dir, int depth)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	char sub[PATH_MAX];

	while (dh && (e = readdir(dh))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(dh), e->d_name, 0) != 0 && errno == EISDIR &&
		    depth == 0 &&
		    (size_t)snprintf(sub, sizeof(sub), "%s/%s", dir,
				     e->d_name) < sizeof(sub))
			remove_dir(sub, depth + 1);
	}
	if (dh)
		closedir(dh);
	rmdir(dir);
}

/* A recipient as checked before anything is written. */
struct recipient {
	const char *path;
	uint8_t rid[CU_SHA256_LEN];
	char rid8[RID_SHOWN + 1];
};

/* Check every --encrypt-for certificate by wrapping a throwaway key for
 * it (cu_delivery_wrap reads the role and the key type), so a release
 * certificate given by mistake is refused before a gigabyte is copied;
 * and refuse the same certificate twice, or two whose key file names
 * would collide. */
static int check_recipients(const struct stn_release *rel,
			    struct recipient *rcp, struct stn_diag *d)
{
	uint8_t probe[CU_CONTENT_KEY_LEN] = {0};
	char *buf = malloc(CU_KEYFILE_MAX);
	size_t len;
	int rc = 0;

	if (!buf)
		return stn_fail(d, STN_E_NOMEM, "--encrypt-for", "key file");
	for (size_t i = 0; i < rel->nrecipients && rc == 0; i++) {
		rcp[i].path = rel->recipients[i];
		if ((rc = cu_delivery_wrap(rcp[i].path, NULL, rel->created,
					   "probe", probe, buf,
					   CU_KEYFILE_MAX, &len, rcp[i].rid,
					   d)))
			break;
		cu_hex(rcp[i].rid, RID_SHOWN / 2, rcp[i].rid8);
		for (size_t k = 0; k < i; k++) {
			if (memcmp(rcp[k].rid, rcp[i].rid, CU_SHA256_LEN) == 0)
				rc = stn_fail(d, STN_E_USAGE, rcp[i].path,
					      "the same delivery certificate "
					      "as %s", rcp[k].path);
			else if (strcmp(rcp[k].rid8, rcp[i].rid8) == 0)
				rc = stn_fail(d, STN_E_USAGE, rcp[i].path,
					      "its recipient id starts with "
					      "%s, as %s's does: the key "
					      "files would share a name",
					      rcp[i].rid8, rcp[k].path);
			if (rc)
				break;
		}
	}
	free(buf);
	return rc;
}

/* Encrypt image i: a fresh content key and IV, the ciphertext as
 * FILE.enc, and one key file per recipient in keysfd. */
static int encrypt_image(const struct stn_release_image *ri,
			 struct cu_image *img, int dirfd, int keysfd,
			 const struct recipient *rcp, size_t nrcp,
			 int64_t at, struct stn_diag *d)
{
	uint8_t key[CU_CONTENT_KEY_LEN];
	struct cu_ctr *ctr = NULL;
	char *kf = NULL, name[CU_LAYOUT_NAME_MAX];
	size_t len;
	int rc;

	if ((rc = stn_session_random(key, sizeof(key), d)) ||
	    (rc = stn_session_random(img->iv, sizeof(img->iv), d)))
		goto out;
	ctr = cu_ctr_new(key, img->iv);
	kf = malloc(CU_KEYFILE_MAX);
	if (!ctr || !kf) {
		rc = stn_fail(d, STN_E_NOMEM, ri->path, "encrypting");
		goto out;
	}
	if ((rc = copy_hash(ri->path, dirfd, img->file, ctr, &img->size,
			    img->sha256, img->cipher_sha256, d)))
		goto out;
	img->encrypted = 1;
	for (size_t r = 0; r < nrcp; r++) {
		snprintf(name, sizeof(name), "%s.%s.key", img->label,
			 rcp[r].rid8);
		if ((rc = cu_delivery_wrap(rcp[r].path, NULL, at, img->label,
					   key, kf, CU_KEYFILE_MAX, &len,
					   NULL, d)) ||
		    (rc = write_file(keysfd, name, kf, len, d)))
			goto out;
	}
out:
	explicit_bzero(key, sizeof(key));
	cu_ctr_free(ctr);
	free(kf);
	return rc;
}

/* Does the parsed manifest give every image as it was written? */
static int same_images(const struct cu_manifest *a,
		       const struct cu_manifest *b)
{
	for (size_t i = 0; i < a->nimages; i++) {
		const struct cu_image *x = &a->images[i], *y = &b->images[i];
		if (strcmp(x->label, y->label) || strcmp(x->file, y->file) ||
		    x->size != y->size || x->slot != y->slot ||
		    memcmp(x->sha256, y->sha256, CU_SHA256_LEN) ||
		    x->encrypted != y->encrypted ||
		    (x->encrypted &&
		     (memcmp(x->iv, y->iv, CU_IV_LEN) ||
		      memcmp(x->cipher_sha256, y->cipher_sha256,
			     CU_SHA256_LEN))))
			return 0;
	}
	return 1;
}

int stn_release_create(const struct stn_release *rel, const char *outdir,
		       struct stn_diag *d)
{
	struct cu_manifest *m = NULL, *check = NULL;
	struct recipient *rcp = NULL;
	char *text = NULL;
	int dirfd = -1, keysfd = -1, rc = 0;

	if (rel->nimages < 1 || rel->nimages > CU_MAX_IMAGES)
		return stn_fail(d, STN_E_USAGE, "--image",
				"give 1 to %d images", CU_MAX_IMAGES);
	/* The station reads at most CU_MAX_KEYFILES key files. */
	if (rel->nrecipients > CU_MAX_KEYFILES / rel->nimages)
		return stn_fail(d, STN_E_USAGE, "--encrypt-for",
				"at most %d key files: images x recipients",
				CU_MAX_KEYFILES);
	if (rel->nhardware > CU_MAX_HARDWARE)
		return stn_fail(d, STN_E_USAGE, "--hardware",
				"at most %d hardware revisions",
				CU_MAX_HARDWARE);
	/* Every value must be one record value: a newline in --model would
	 * otherwise write a line of its own into the signed manifest. */
	if (!cu_value_ok(rel->name) || strlen(rel->name) > 64)
		return stn_fail(d, STN_E_USAGE, "--name",
				"1 to 64 printable characters");
	if (!cu_value_ok(rel->version) || strlen(rel->version) > 128)
		return stn_fail(d, STN_E_USAGE, "--version",
				"1 to 32 printable characters, no control "
				"characters");
	if (!cu_value_ok(rel->model) || strlen(rel->model) > 256)
		return stn_fail(d, STN_E_USAGE, "--model",
				"1 to 64 printable characters, no control "
				"characters");
	for (size_t i = 0; i < rel->nhardware; i++)
		if (!cu_value_ok(rel->hardware[i]) ||
		    strlen(rel->hardware[i]) > 64 ||
		    strpbrk(rel->hardware[i], " \t"))
			return stn_fail(d, STN_E_USAGE, "--hardware",
					"one revision per option, "
					"[A-Za-z0-9._-]");
	if (rel->nrecipients) {
		rcp = calloc(rel->nrecipients, sizeof(*rcp));
		if (!rcp)
			return stn_fail(d, STN_E_NOMEM, outdir, "recipients");
		if ((rc = check_recipients(rel, rcp, d)))
			goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = stn_fail(d, STN_E_NOMEM, outdir, "bundle");
		goto out;
	}
	snprintf(m->name, sizeof(m->name), "%s", rel->name);
	snprintf(m->version, sizeof(m->version), "%s", rel->version);
	snprintf(m->model, sizeof(m->model), "%s", rel->model);
	m->sequence = rel->sequence;
	m->created = rel->created;
	m->expires = rel->expires;
	for (size_t i = 0; i < rel->nhardware; i++) {
		if (strlen(rel->hardware[i]) > 64) {
			rc = stn_fail(d, STN_E_USAGE, "--hardware",
				      "revision too long");
			goto out;
		}
		snprintf(m->hardware[i], sizeof(m->hardware[i]), "%s",
			 rel->hardware[i]);
	}
	m->nhardware = rel->nhardware;

	if (mkdir(outdir, 0755) != 0) {
		/* An existing OUTDIR or a missing parent is the caller's
		 * mistake (usage, 2); a full or failing disk is I/O (3). */
		int eno = errno;
		rc = stn_fail(d, eno == EEXIST || eno == ENOENT ||
					 eno == ENOTDIR
				      ? STN_E_USAGE : STN_E_IO,
			      outdir, "cannot create bundle directory: %s",
			      strerror(eno));
		goto out;
	}
	dirfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		rc = stn_fail(d, STN_E_IO, outdir, "open: %s", strerror(errno));
		goto fail;
	}
	if (rcp) {
		if (mkdirat(dirfd, CU_LAYOUT_KEYS, 0755) != 0 ||
		    (keysfd = openat(dirfd, CU_LAYOUT_KEYS,
				     O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			rc = stn_fail(d, STN_E_IO, CU_LAYOUT_KEYS,
				      "cannot create: %s", strerror(errno));
			goto fail;
		}
	}
	for (size_t i = 0; i < rel->nimages; i++) {
		const struct stn_release_image *ri = &rel->images[i];
		struct cu_image *img = &m->images[i];
		const char *base = strrchr(ri->path, '/');
		char file[CU_FILE_NAME_MAX + 1];

		base = base ? base + 1 : ri->path;
		/* Encrypted, the file on the media is FILE.enc (formats §10):
		 * the name a manifest gives must still be one. */
		if ((size_t)snprintf(file, sizeof(file), "%s%s", base,
				     rcp ? ENC_SUFFIX : "") >= sizeof(file)) {
			rc = stn_fail(d, STN_E_USAGE, ri->path,
				      "file name over %d characters%s",
				      CU_FILE_NAME_MAX,
				      rcp ? " with " ENC_SUFFIX : "");
			goto fail;
		}
		base = file;

		const char *why = cu_layout_image_name(base);

		if (why || strlen(ri->label) > 32) {
			rc = stn_fail(d, STN_E_USAGE, ri->path, "%s",
				      why ? why : "image label is over 32 "
						  "characters");
			goto fail;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(m->images[k].file, base) == 0) {
				rc = stn_fail(d, STN_E_USAGE, ri->path,
					      "two images named %s", base);
				goto fail;
			}
		snprintf(img->label, sizeof(img->label), "%s", ri->label);
		snprintf(img->file, sizeof(img->file), "%s", base);
		img->slot = ri->slot;
		if ((rc = rcp ? encrypt_image(ri, img, dirfd, keysfd, rcp,
					      rel->nrecipients, rel->created, d)
			      : copy_hash(ri->path, dirfd, base, NULL,
					  &img->size, img->sha256, NULL, d)))
			goto fail;
		/* The station refuses images over its cap (media/stage.h). */
		if (img->size > (4ULL << 30)) {
			rc = stn_fail(d, STN_E_USAGE, ri->path,
				      "image over the station's 4 GiB cap");
			goto fail;
		}
	}
	m->nimages = rel->nimages;
	text = cu_manifest_render(m);
	if (!text) {
		rc = stn_fail(d, STN_E_NOMEM, outdir, "manifest");
		goto fail;
	}
	/* Parse what we are about to write with the station's own strict
	 * parser: the release side must never ship a manifest the field
	 * would refuse as malformed. */
	if ((rc = cu_manifest_parse(text, strlen(text), "manifest", &check,
				    d))) {
		rc = stn_recode(d, STN_E_USAGE);
		goto fail;
	}
	/* And it must say what we were asked to write, nothing more. */
	if (strcmp(check->name, m->name) || strcmp(check->version, m->version) ||
	    strcmp(check->model, m->model) || check->nhardware != m->nhardware ||
	    check->nimages != m->nimages || check->sequence != m->sequence ||
	    !same_images(check, m)) {
		rc = stn_fail(d, STN_E_USAGE, outdir,
			      "the manifest would not say what was asked");
		goto fail;
	}
	if ((rc = write_file(dirfd, "manifest", text, strlen(text), d)))
		goto fail;
	/* The files are synced; now their entries in the bundle directory,
	 * and the bundle directory's own entry in its parent, so a power
	 * cut after "created" cannot leave a bundle without its files. */
	if (fsync(dirfd) != 0 && errno != EINVAL) {
		rc = stn_fail(d, STN_E_IO, outdir, "cannot fsync: %s",
			      strerror(errno));
		goto fail;
	}
	if (keysfd >= 0 && fsync(keysfd) != 0 && errno != EINVAL) {
		rc = stn_fail(d, STN_E_IO, CU_LAYOUT_KEYS, "cannot fsync: %s",
			      strerror(errno));
		goto fail;
	}
	if ((rc = sync_bundle_parent(outdir, d)))
		goto fail;
	goto out;
fail:
	if (keysfd >= 0) {
		close(keysfd);
		keysfd = -1;
	}
	if (dirfd >= 0) {
		close(dirfd);
		dirfd = -1;
	}
	remove_dir(outdir, 0);
out:
	if (keysfd >= 0)
		close(keysfd);
	if (dirfd >= 0)
		close(dirfd);
	free(rcp);
	free(text);
	cu_manifest_free(check);
	cu_manifest_free(m);
	return rc;
}

/* Whether dir/custody/ exists: the bundle carries a chain to judge. */
static int has_custody_dir(const char *dir, int *yes, struct stn_diag *d)
{
	char path[4200];
	struct stat st;

	if ((size_t)snprintf(path, sizeof(path), "%s/" CU_LAYOUT_CUSTODY,
			     dir) >= sizeof(path))
		return stn_fail(d, STN_E_USAGE, dir, "bundle path too long");
	if (lstat(path, &st) == 0) {
		*yes = 1;
		return 0;
	}
	if (errno != ENOENT)
		return stn_fail(d, STN_E_IO, path, "cannot stat: %s",
				strerror(errno));
	*yes = 0;
	return 0;
}

int stn_release_verify(const char *anchors_pem, const char *crl_dir,
		       unsigned threshold, int64_t at, const char *dir,
		       struct cu_bundle **out, struct stn_diag *d)
{
	struct cu_trust *trust = NULL;
	struct cu_policy policy = {
		.release_threshold = threshold,
		.max_custody_hops = STN_DEFAULT_MAX_CUSTODY_HOPS,
		.max_custody_age = STN_DEFAULT_MAX_CUSTODY_AGE,
		.max_token_ttl = STN_DEFAULT_MAX_TOKEN_TTL,
		.custody_open_end = 1,
	};
	int rc;

	*out = NULL;
	/* formats §3 check 1: 0 is a configuration error; here, usage. */
	if (threshold < 1)
		return stn_fail(d, STN_E_USAGE, "--threshold",
				"the release threshold is at least 1");
	if ((rc = has_custody_dir(dir, &policy.require_custody, d)))
		return rc;
	if ((rc = cu_trust_load(anchors_pem, crl_dir, &trust, d)))
		return rc;
	rc = cu_bundle_verify_sealed(dir, NULL, trust, &policy, at, out, d);
	cu_trust_free(trust);
	return rc;
}

int stn_release_signer_check(const char *chain_pem, const char *cert_path,
			     enum cu_role role, const char *anchors_pem,
			     int64_t at, struct stn_diag *d)
{
	struct cu_trust *trust = NULL;
	int rc;

	if (!anchors_pem)
		return cu_cert_duty_pem(chain_pem, cert_path, role, d);
	if ((rc = cu_trust_load(anchors_pem, NULL, &trust, d)))
		return rc;
	rc = cu_cert_check_pem(trust, chain_pem, cert_path, role, at, NULL,
			       d);
	cu_trust_free(trust);
	return rc;
}

int stn_release_token_ttl(int64_t ttl, int64_t max_ttl, const char *where,
			  struct stn_diag *d)
{
	if (ttl <= max_ttl)
		return 0;
	return stn_fail(d, STN_E_TOKEN, where,
			"--ttl %lldh is over max-token-ttl %lldh (the default "
			"policy, formats section 8): stations with it refuse "
			"the token",
			(long long)(ttl / 3600), (long long)(max_ttl / 3600));
}

int stn_release_custody_check(const char *dir, const char *anchors_pem,
			      int64_t at, int *checked_sigs,
			      struct stn_diag *d)
{
	struct cu_custody_rules rules = {STN_DEFAULT_MAX_CUSTODY_HOPS,
					 STN_DEFAULT_MAX_CUSTODY_AGE, NULL, 1};
	struct cu_manifest *m = NULL;
	struct cu_trust *trust = NULL;
	struct cu_chain *chain = NULL;
	char first[4400];
	int rc, any;

	*checked_sigs = 0;
	if ((size_t)snprintf(first, sizeof(first), "%s/" CU_LAYOUT_CUSTODY,
			     dir) >= sizeof(first))
		return stn_fail(d, STN_E_USAGE, dir, "bundle path too long");
	{
		/* No record yet: the first hand-off has nothing before it. */
		DIR *dh = opendir(first);
		struct dirent *e;
		unsigned long idx;

		if (!dh && errno != ENOENT)
			return stn_fail(d, STN_E_IO, first, "cannot list: %s",
					strerror(errno));
		any = 0;
		while (dh && (e = readdir(dh)))
			any |= cu_layout_custody_name(e->d_name, &idx);
		if (dh)
			closedir(dh);
		if (!any)
			return 0;
	}
	chain = malloc(sizeof(*chain));
	if (!chain)
		return stn_fail(d, STN_E_NOMEM, dir, "custody chain");
	if ((rc = cu_manifest_load(dir, NULL, &m, d)))
		goto out;
	if (anchors_pem) {
		if ((rc = cu_trust_load(anchors_pem, NULL, &trust, d)))
			goto out;
		rc = cu_custody_verify(dir, NULL, m, trust, &rules, at, chain,
				       d);
		*checked_sigs = 1;
	} else {
		rc = cu_custody_check_links(dir, NULL, m, &rules, at, chain,
					    d);
	}
out:
	cu_trust_free(trust);
	cu_manifest_free(m);
	free(chain);
	return rc;
}
