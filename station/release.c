/* station/release.c: writing bundles for `station bundle create`. */
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

#include "custody/manifest.h"
#include "custody/record.h"
#include "station/base/sha256.h"
#include "station/base/error.h"
#include "station/base/fileio.h"

static int copy_hash(const char *src, int dirfd, const char *name,
		     uint64_t *size, uint8_t sha[CU_SHA256_LEN],
		     struct stn_diag *d)
{
	struct cu_sha256 *h = cu_sha256_new();
	uint8_t *buf = malloc(1 << 20);
	uint64_t total = 0;
	int in = -1, out = -1, rc = 0;
	struct stat st;

	if (!h || !buf) {
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
		ssize_t n = stn_read_retry(in, buf, 1 << 20);
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, src, "read: %s",
				      strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (stn_write_all(out, buf, (size_t)n) != 0) {
			rc = stn_fail(d, STN_E_IO, name, "write: %s",
				      strerror(errno));
			goto out;
		}
		if ((rc = cu_sha256_update(h, buf, (size_t)n))) {
			rc = stn_fail(d, rc, name, "hashing: %s",
				      stn_strerror(rc));
			goto out;
		}
		total += (uint64_t)n;
	}
	if (fsync(out) != 0) {
		rc = stn_fail(d, STN_E_IO, name, "fsync: %s", strerror(errno));
		goto out;
	}
	if ((rc = cu_sha256_final(h, sha))) {
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
	free(buf);
	return rc;
}

static int write_file(int dirfd, const char *name, const char *text,
		      struct stn_diag *d)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			0644);
	int rc = 0;

	if (fd < 0)
		return stn_fail(d, STN_E_IO, name, "cannot create: %s",
				strerror(errno));
	if (stn_write_all(fd, text, strlen(text)) != 0)
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

static void remove_dir(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *e;

	while (dh && (e = readdir(dh)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(dh), e->d_name, 0);
	if (dh)
		closedir(dh);
	rmdir(dir);
}

int stn_release_create(const struct stn_release *rel, const char *outdir,
		       struct stn_diag *d)
{
	struct cu_manifest *m = NULL, *check = NULL;
	char *text = NULL;
	int dirfd = -1, rc = 0;

	if (rel->nimages < 1 || rel->nimages > CU_MAX_IMAGES)
		return stn_fail(d, STN_E_USAGE, "--image",
				"give 1 to %d images", CU_MAX_IMAGES);
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
	m = calloc(1, sizeof(*m));
	if (!m)
		return stn_fail(d, STN_E_NOMEM, outdir, "bundle");
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
	for (size_t i = 0; i < rel->nimages; i++) {
		const struct stn_release_image *ri = &rel->images[i];
		struct cu_image *img = &m->images[i];
		const char *base = strrchr(ri->path, '/');
		base = base ? base + 1 : ri->path;

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
		if ((rc = copy_hash(ri->path, dirfd, base, &img->size,
				    img->sha256, d)))
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
	    check->nimages != m->nimages || check->sequence != m->sequence) {
		rc = stn_fail(d, STN_E_USAGE, outdir,
			      "the manifest would not say what was asked");
		goto fail;
	}
	if ((rc = write_file(dirfd, "manifest", text, d)))
		goto fail;
	/* The files are synced; now their entries in the bundle directory,
	 * and the bundle directory's own entry in its parent, so a power
	 * cut after "created" cannot leave a bundle without its files. */
	if (fsync(dirfd) != 0 && errno != EINVAL) {
		rc = stn_fail(d, STN_E_IO, outdir, "cannot fsync: %s",
			      strerror(errno));
		goto fail;
	}
	if ((rc = sync_bundle_parent(outdir, d)))
		goto fail;
	goto out;
fail:
	if (dirfd >= 0) {
		close(dirfd);
		dirfd = -1;
	}
	remove_dir(outdir);
out:
	if (dirfd >= 0)
		close(dirfd);
	free(text);
	cu_manifest_free(check);
	cu_manifest_free(m);
	return rc;
}
