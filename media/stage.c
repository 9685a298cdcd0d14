/* media/stage.c: one-pass copy-and-hash of a bundle into private staging.
 * All opens are relative to the bundle directory's descriptor with
 * O_NOFOLLOW, so a symlink or a directory swapped on the media after we
 * opened it cannot redirect a read. */
#include "media/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "custody/manifest.h"
#include "custody/record.h"
#include "custody/sha256.h"
#include "custody/verify.h"
#include "station/error.h"

#define COPY_CHUNK (1 << 20) /* large sequential reads; memory stays flat */

struct staged_file {
	char name[CU_FILE_NAME_MAX + 1];
	uint64_t size;
	uint8_t sha256[CU_SHA256_LEN];
	struct stn_diag problem; /* code != 0: not staged, and why */
};

struct md_stage {
	char dir[3072]; /* short enough that dir/name always fits a path */
	char src[3072];
	struct staged_file files[CU_MAX_IMAGES];
	size_t nfiles;
	struct cu_measure measure;
};

static int stage_measure(void *ctx, const char *dir, const char *file,
			 uint64_t expect_size, uint64_t *size,
			 uint8_t sha256[CU_SHA256_LEN], struct stn_diag *d)
{
	const struct md_stage *s = ctx;

	(void)expect_size;
	for (size_t i = 0; i < s->nfiles; i++) {
		const struct staged_file *f = &s->files[i];
		if (strcmp(f->name, file) != 0)
			continue;
		if (f->problem.code)
			return stn_fail(d, f->problem.code, f->problem.where,
					"%s", f->problem.text);
		*size = f->size;
		memcpy(sha256, f->sha256, CU_SHA256_LEN);
		return 0;
	}
	return stn_fail(d, STN_E_IMAGE, dir, "%s was not staged", file);
}

/* Copies from an open source descriptor into dst_dir/name, hashing when h
 * is given.  Reads at most `cap` bytes plus one so growth is caught. */
static int copy_fd(int in, const char *src_path, int dst_dirfd,
		   const char *name, uint64_t cap, struct cu_sha256 *h,
		   uint8_t *buf, const struct md_progress *prog,
		   uint64_t *copied, struct stn_diag *d)
{
	uint64_t total = 0;
	int out, rc = 0;

	out = openat(dst_dirfd, name,
		     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		     0600);
	if (out < 0)
		return stn_fail(d, STN_E_IO, name,
				"cannot create in staging: %s",
				strerror(errno));
	for (;;) {
		ssize_t got = read(in, buf, COPY_CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = stn_fail(d, STN_E_IO, src_path,
				      "read error on media: %s (media pulled?)",
				      strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		if (total + (uint64_t)got > cap) {
			rc = stn_fail(d, STN_E_TOOBIG, src_path,
				      "grew past %llu bytes while being copied",
				      (unsigned long long)cap);
			goto out;
		}
		for (ssize_t off = 0; off < got;) {
			ssize_t w = write(out, buf + off, (size_t)(got - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = stn_fail(d, STN_E_IO, name,
					      "write to staging: %s",
					      strerror(errno));
				goto out;
			}
			off += w;
		}
		if (h)
			cu_sha256_update(h, buf, (size_t)got);
		total += (uint64_t)got;
		if (prog && prog->update)
			prog->update(prog->ctx, name, total, cap);
	}
	/* No fsync: a staged copy lives for one session and is made again
	 * after a crash; its integrity comes from the hash taken here, and
	 * the push hashes the bytes again as they are sent. */
	*copied = total;
out:
	if (close(out) != 0 && rc == 0)
		rc = stn_fail(d, STN_E_IO, name, "close in staging: %s",
			      strerror(errno));
	return rc;
}

/* Opens name in the source directory safely.  Returns the fd or a negative
 * code with d filled; `st` receives the file's status. */
static int open_source(int src_dirfd, const char *src_dir, const char *name,
		       struct stat *st, int missing_code, struct stn_diag *d)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", src_dir, name);
	/* O_NONBLOCK: opening a FIFO planted on the media must not hang. */
	fd = openat(src_dirfd, name,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return stn_fail(d, missing_code, path,
					"is a symbolic link");
		if (errno == ENOENT)
			return stn_fail(d, missing_code, path,
					"missing: named by the manifest but "
					"not in the bundle");
		return stn_fail(d, STN_E_IO, path, "cannot open: %s",
				strerror(errno));
	}
	if (fstat(fd, st) != 0) {
		close(fd);
		return stn_fail(d, STN_E_IO, path, "stat: %s", strerror(errno));
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return stn_fail(d, missing_code, path,
				"not a regular file (device, FIFO or "
				"directory)");
	}
	return fd;
}

static int copy_small(struct md_stage *s, int src_dirfd, int dst_dirfd,
		      const char *name, uint8_t *buf, struct stn_diag *d)
{
	char path[4096];
	struct stat st;
	uint64_t n;
	int fd, rc;

	fd = open_source(src_dirfd, s->src, name, &st, STN_E_UNSAFE, d);
	if (fd < 0)
		return fd;
	snprintf(path, sizeof(path), "%s/%s", s->src, name);
	if (st.st_size > MD_SIDECAR_MAX) {
		close(fd);
		return stn_fail(d, STN_E_TOOBIG, path,
				"%lld bytes, over the %d byte cap",
				(long long)st.st_size, MD_SIDECAR_MAX);
	}
	rc = copy_fd(fd, path, dst_dirfd, name, MD_SIDECAR_MAX, NULL, buf,
		     NULL, &n, d);
	close(fd);
	return rc;
}

/* Is this a signature sidecar of the manifest: manifest[.LABEL].sig/.pem? */
static int is_manifest_sidecar(const char *name)
{
	size_t len = strlen(name), l;
	char label[40];

	/* "manifest.sig" is 12 characters; "manifest." LABEL ".sig" is 13
	 * plus the label. */
	if (strncmp(name, "manifest.", 9) != 0 || len < 12)
		return 0;
	if (strcmp(name + len - 4, ".sig") != 0 &&
	    strcmp(name + len - 4, ".pem") != 0)
		return 0;
	if (len == 12)
		return 1;
	if (len < 14)
		return 0;
	l = len - 13;
	if (l > 32 || name[9 + l] != '.')
		return 0;
	memcpy(label, name + 9, l);
	label[l] = '\0';
	return cu_chars_in(label, "a-z0-9-") && label[0] != '-';
}

static int stage_images(struct md_stage *s, const struct cu_manifest *m,
			int src_dirfd, int dst_dirfd, uint8_t *buf,
			const struct md_progress *prog, struct stn_diag *d)
{
	struct stat st;
	uint64_t need = 0;
	struct statvfs vfs;
	struct cu_sha256 *h;
	int rc = 0;

	for (size_t i = 0; i < m->nimages; i++) {
		size_t k;
		for (k = 0; k < i; k++)
			if (strcmp(m->images[k].file, m->images[i].file) == 0)
				break;
		if (k == i) /* the same file may serve two slots */
			need += m->images[i].size;
	}
	if (need > MD_BUNDLE_MAX)
		return stn_fail(d, STN_E_TOOBIG, s->src,
				"images total %llu bytes, over the %llu cap",
				(unsigned long long)need,
				(unsigned long long)MD_BUNDLE_MAX);
	if (fstatvfs(dst_dirfd, &vfs) != 0)
		return stn_fail(d, STN_E_IO, s->dir, "statvfs: %s",
				strerror(errno));
	if ((uint64_t)vfs.f_bavail * vfs.f_frsize < need + (1 << 20))
		return stn_fail(d, STN_E_IO, s->dir,
				"staging area has %llu bytes free, the bundle "
				"needs %llu",
				(unsigned long long)vfs.f_bavail * vfs.f_frsize,
				(unsigned long long)need);

	h = cu_sha256_new();
	if (!h)
		return stn_fail(d, STN_E_NOMEM, s->src, "hashing");
	for (size_t i = 0; i < m->nimages && rc == 0; i++) {
		const struct cu_image *img = &m->images[i];
		struct staged_file *f;
		char path[4096];
		int fd;
		size_t k;

		for (k = 0; k < s->nfiles; k++)
			if (strcmp(s->files[k].name, img->file) == 0)
				break;
		if (k < s->nfiles)
			continue; /* already staged for another slot */
		f = &s->files[s->nfiles++];
		snprintf(f->name, sizeof(f->name), "%s", img->file);
		snprintf(path, sizeof(path), "%s/%s", s->src, img->file);
		fd = open_source(src_dirfd, s->src, img->file, &st,
				 STN_E_IMAGE, &f->problem);
		if (fd < 0) {
			if (fd != STN_E_IMAGE) /* I/O: stop, media trouble */
				rc = stn_fail(d, f->problem.code,
					      f->problem.where, "%s",
					      f->problem.text);
			continue;
		}
		/* A wrong size is a check 3 failure; do not copy what will
		 * be refused anyway, and never more than the cap. */
		if ((uint64_t)st.st_size != img->size ||
		    img->size > MD_IMAGE_MAX) {
			stn_fail(&f->problem, STN_E_IMAGE, path,
				 "size is %lld bytes, manifest says %llu",
				 (long long)st.st_size,
				 (unsigned long long)img->size);
			close(fd);
			continue;
		}
		rc = copy_fd(fd, path, dst_dirfd, img->file, img->size, h, buf,
			     prog, &f->size, d);
		close(fd);
		cu_sha256_final(h, f->sha256);
	}
	cu_sha256_free(h);
	return rc;
}

/* Parses the staged copy of the manifest, never the media's, with
 * messages naming the media path the operator knows. */
static int parse_staged_manifest(const struct md_stage *s, uint8_t *buf,
				 struct cu_manifest **m, struct stn_diag *d)
{
	char staged[4096], where[4096];
	size_t have = 0;
	int fd, rc = 0;

	snprintf(staged, sizeof(staged), "%s/manifest", s->dir);
	snprintf(where, sizeof(where), "%s/manifest", s->src);
	fd = open(staged, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return stn_fail(d, STN_E_IO, staged, "open: %s",
				strerror(errno));
	while (have <= CU_RECORD_MAX) {
		ssize_t n = read(fd, buf + have, CU_RECORD_MAX + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, staged, "read: %s",
				      strerror(errno));
			break;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	if (rc == 0)
		rc = cu_manifest_parse(buf, have, where, m, d);
	return rc;
}

int md_stage_bundle(const char *src_dir, const char *staging_root,
		    const struct md_progress *progress, struct md_stage **out,
		    struct stn_diag *d)
{
	struct md_stage *s = NULL;
	struct cu_manifest *m = NULL;
	uint8_t *buf = NULL;
	int src_dirfd = -1, dst_dirfd = -1, rc = 0;
	DIR *dh = NULL;
	struct dirent *e;

	s = calloc(1, sizeof(*s));
	buf = malloc(COPY_CHUNK);
	if (!s || !buf) {
		rc = stn_fail(d, STN_E_NOMEM, src_dir, "staging");
		goto out;
	}
	if (strlen(src_dir) >= sizeof(s->src) - CU_FILE_NAME_MAX - 2 ||
	    strlen(staging_root) >= sizeof(s->dir) - 16) {
		rc = stn_fail(d, STN_E_USAGE, src_dir, "path too long");
		goto out;
	}
	snprintf(s->src, sizeof(s->src), "%s", src_dir);
	s->measure.measure = stage_measure;
	s->measure.ctx = s;

	src_dirfd = open(src_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					  O_CLOEXEC);
	if (src_dirfd < 0) {
		struct stat lst;
		int err = errno;
		/* O_DIRECTORY reports a symlink as ENOTDIR; say what it is. */
		if (lstat(src_dir, &lst) == 0 && S_ISLNK(lst.st_mode))
			rc = stn_fail(d, STN_E_UNSAFE, src_dir,
				      "bundle directory is a symbolic link");
		else
			rc = stn_fail(d, err == ENOTDIR ? STN_E_UNSAFE
							: STN_E_IO,
				      src_dir, "cannot open bundle directory: %s",
				      strerror(err));
		goto out;
	}
	if (mkdir(staging_root, 0700) != 0 && errno != EEXIST) {
		rc = stn_fail(d, STN_E_IO, staging_root,
			      "cannot create staging area: %s",
			      strerror(errno));
		goto out;
	}
	snprintf(s->dir, sizeof(s->dir), "%s/stage-XXXXXX", staging_root);
	if (!mkdtemp(s->dir)) {
		rc = stn_fail(d, STN_E_IO, staging_root,
			      "cannot create a staging directory: %s",
			      strerror(errno));
		s->dir[0] = '\0';
		goto out;
	}
	dst_dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dst_dirfd < 0) {
		rc = stn_fail(d, STN_E_IO, s->dir, "open: %s", strerror(errno));
		goto out;
	}

	/* The manifest first: it says which images to take. */
	if ((rc = copy_small(s, src_dirfd, dst_dirfd, "manifest", buf, d)))
		goto out;
	if ((rc = parse_staged_manifest(s, buf, &m, d)))
		goto out;

	dh = fdopendir(dup(src_dirfd));
	if (!dh) {
		rc = stn_fail(d, STN_E_IO, src_dir, "cannot list: %s",
			      strerror(errno));
		goto out;
	}
	while ((e = readdir(dh))) {
		if (!is_manifest_sidecar(e->d_name))
			continue;
		if ((rc = copy_small(s, src_dirfd, dst_dirfd, e->d_name, buf,
				     d)))
			goto out;
	}
	rc = stage_images(s, m, src_dirfd, dst_dirfd, buf, progress, d);
	if (rc)
		goto out;
	*out = s;
	s = NULL;
out:
	if (dh)
		closedir(dh);
	if (src_dirfd >= 0)
		close(src_dirfd);
	if (dst_dirfd >= 0)
		close(dst_dirfd);
	cu_manifest_free(m);
	free(buf);
	md_stage_free(s); /* a half-staged bundle is never left to be used */
	return rc;
}

const char *md_stage_dir(const struct md_stage *s)
{
	return s->dir;
}

const struct cu_measure *md_stage_measure(const struct md_stage *s)
{
	return &s->measure;
}

void md_stage_free(struct md_stage *s)
{
	if (!s)
		return;
	if (s->dir[0]) {
		int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			DIR *dh = fdopendir(dfd);
			struct dirent *e;
			while (dh && (e = readdir(dh)))
				if (e->d_name[0] != '.')
					unlinkat(dirfd(dh), e->d_name, 0);
			if (dh)
				closedir(dh);
			else
				close(dfd);
		}
		rmdir(s->dir);
	}
	free(s);
}
