/* media/stage.c: two-phase, one-pass copy-and-hash of a bundle into private
 * staging.  All opens are relative to the bundle directory's descriptor,
 * held from the first phase to the last, with O_NOFOLLOW, so a symlink or a
 * directory swapped on the media cannot redirect a read. */
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
	int src_dirfd, dst_dirfd;
	struct cu_manifest *manifest;
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

/* Copies from an open source descriptor into the staging directory as
 * `name`, hashing when h is given, reading at most `cap` bytes (plus one,
 * so a file growing under us is caught).  The copy is made read-only. */
static int copy_fd(struct md_stage *s, int in, const char *src_path,
		   const char *name, uint64_t cap, struct cu_sha256 *h,
		   uint8_t *buf, const struct md_progress *prog,
		   uint64_t *copied, struct stn_diag *d)
{
	char dst[4096];
	uint64_t total = 0;
	int out, rc = 0;

	snprintf(dst, sizeof(dst), "%s/%s", s->dir, name);
	out = openat(s->dst_dirfd, name,
		     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		     0600);
	if (out < 0)
		return stn_fail(d, STN_E_IO, dst, "cannot create in staging: %s",
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
				rc = stn_fail(d, STN_E_IO, dst,
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
	 * the push hashes the bytes again before and as they are sent. */
	if (fchmod(out, 0400) != 0) {
		rc = stn_fail(d, STN_E_IO, dst, "chmod: %s", strerror(errno));
		goto out;
	}
	*copied = total;
out:
	if (close(out) != 0 && rc == 0)
		rc = stn_fail(d, STN_E_IO, dst, "close in staging: %s",
			      strerror(errno));
	return rc;
}

/* Opens name in the bundle directory safely.  Returns the fd or a negative
 * code with d filled (`bad_code` for what the media got wrong); `st`
 * receives the file's status. */
static int open_source(const struct md_stage *s, const char *name,
		       struct stat *st, int bad_code, const char *missing,
		       struct stn_diag *d)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", s->src, name);
	/* O_NONBLOCK: opening a FIFO planted on the media must not hang. */
	fd = openat(s->src_dirfd, name,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return stn_fail(d, bad_code, path,
					"is a symbolic link");
		if (errno == ENOENT)
			return stn_fail(d, bad_code, path, "%s", missing);
		return stn_fail(d, STN_E_IO, path, "cannot open: %s",
				strerror(errno));
	}
	if (fstat(fd, st) != 0) {
		close(fd);
		return stn_fail(d, STN_E_IO, path, "stat: %s", strerror(errno));
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return stn_fail(d, bad_code, path,
				"not a regular file (device, FIFO or "
				"directory)");
	}
	return fd;
}

/* Copies a small file (manifest, .sig, .pem) whole; returns bytes copied
 * through *n. */
static int copy_small(struct md_stage *s, const char *name, int bad_code,
		      const char *missing, uint8_t *buf, uint64_t *n,
		      struct stn_diag *d)
{
	char path[4096];
	struct stat st;
	int fd, rc;

	fd = open_source(s, name, &st, bad_code, missing, d);
	if (fd < 0)
		return fd;
	snprintf(path, sizeof(path), "%s/%s", s->src, name);
	if (st.st_size > MD_SIDECAR_MAX) {
		close(fd);
		return stn_fail(d, STN_E_TOOBIG, path,
				"%lld bytes, over the %d byte cap",
				(long long)st.st_size, MD_SIDECAR_MAX);
	}
	rc = copy_fd(s, fd, path, name, MD_SIDECAR_MAX, NULL, buf, NULL, n, d);
	close(fd);
	return rc;
}

/* Is this a signature of the manifest: manifest.sig or manifest.LABEL.sig
 * with LABEL as formats §1 defines it? */
static int is_manifest_sig(const char *name)
{
	size_t len = strlen(name), l;
	char label[40];

	/* "manifest.sig" is 12 characters; "manifest." LABEL ".sig" is 13
	 * plus the label. */
	if (strncmp(name, "manifest.", 9) != 0 || len < 12 ||
	    strcmp(name + len - 4, ".sig") != 0)
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

/* Parses the staged copy of the manifest, never the media's, with
 * messages naming the media path the operator knows. */
static int parse_staged_manifest(struct md_stage *s, uint8_t *buf,
				 struct stn_diag *d)
{
	char where[4096];
	size_t have = 0;
	int fd, rc = 0;

	snprintf(where, sizeof(where), "%s/manifest", s->src);
	fd = openat(s->dst_dirfd, "manifest", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return stn_fail(d, STN_E_IO, s->dir, "open staged manifest: %s",
				strerror(errno));
	while (have <= CU_RECORD_MAX) {
		ssize_t n = read(fd, buf + have, CU_RECORD_MAX + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, s->dir,
				      "read staged manifest: %s",
				      strerror(errno));
			break;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	if (rc == 0)
		rc = cu_manifest_parse(buf, have, where, &s->manifest, d);
	return rc;
}

/* The staging root must be ours alone: a directory (not a symlink) owned
 * by this user with no group or other access. */
static int check_staging_root(const char *root, struct stn_diag *d)
{
	struct stat st;

	if (mkdir(root, 0700) != 0 && errno != EEXIST)
		return stn_fail(d, STN_E_IO, root,
				"cannot create staging area: %s",
				strerror(errno));
	if (lstat(root, &st) != 0)
		return stn_fail(d, STN_E_IO, root, "stat: %s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return stn_fail(d, STN_E_UNSAFE, root,
				"staging area is not a directory (a symlink?)");
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return stn_fail(d, STN_E_UNSAFE, root,
				"staging area must be owned by this user with "
				"mode 0700 (it is %03o, uid %u)",
				(unsigned)(st.st_mode & 0777),
				(unsigned)st.st_uid);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int copy_signatures(struct md_stage *s, uint8_t *buf,
			   struct stn_diag *d)
{
	char *names[MD_MAX_SIGNATURES];
	size_t n = 0;
	struct dirent *e;
	DIR *dh;
	int dup_fd, rc = 0;
	uint64_t copied;

	dup_fd = dup(s->src_dirfd);
	if (dup_fd < 0 || !(dh = fdopendir(dup_fd))) {
		if (dup_fd >= 0)
			close(dup_fd);
		return stn_fail(d, STN_E_IO, s->src, "cannot list: %s",
				strerror(errno));
	}
	rewinddir(dh);
	while ((e = readdir(dh))) {
		if (!is_manifest_sig(e->d_name))
			continue;
		if (n == MD_MAX_SIGNATURES) {
			rc = stn_fail(d, STN_E_TOOBIG, s->src,
				      "more than %d manifest signature files",
				      MD_MAX_SIGNATURES);
			goto out;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = stn_fail(d, STN_E_NOMEM, s->src, "listing");
			goto out;
		}
		n++;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char pem[64];
		struct stn_diag missing;

		rc = copy_small(s, names[i], STN_E_UNSAFE, "vanished",
				buf, &copied, d);
		if (rc)
			break;
		/* The .pem that goes with it; when absent, verification
		 * reports that signature's chain as missing. */
		snprintf(pem, sizeof(pem), "%.*s.pem",
			 (int)(strlen(names[i]) - 4), names[i]);
		stn_diag_init(&missing);
		rc = copy_small(s, pem, STN_E_UNSAFE, "missing", buf, &copied,
				&missing);
		if (rc && !(rc == STN_E_UNSAFE &&
			    strstr(missing.text, "missing"))) {
			stn_fail(d, missing.code, missing.where, "%s",
				 missing.text);
			break;
		}
		rc = 0;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	closedir(dh);
	return rc;
}

/* The trust documents that travel with a bundle (formats §3): custody
 * records, tokens and CRLs, in subdirectories of the same names. */
struct sub_rule {
	const char *dir;
	unsigned max;       /* documents, each with its .sig/.pem */
	const char *suffix; /* ".rec", ".tok", ".pem" */
	int digits;         /* name is NN (two or more digits), else a label */
};

static const struct sub_rule sub_rules[] = {
	{"custody", 99, ".rec", 1},
	{"tokens", 64, ".tok", 0},
	{"crl", 16, ".pem", 0},
};

static int sub_name_ok(const struct sub_rule *r, const char *name)
{
	size_t len = strlen(name), sl = strlen(r->suffix), base = len - sl;
	char stem[40];

	if (len <= sl || strcmp(name + base, r->suffix) != 0 || base > 32)
		return 0;
	memcpy(stem, name, base);
	stem[base] = '\0';
	if (r->digits)
		return base >= 2 && strspn(stem, "0123456789") == base;
	return cu_chars_in(stem, "a-z0-9-") && stem[0] != '-';
}

/* Copies one trust subdirectory: documents named by the rule and their
 * signature sidecars; anything else there is ignored.  A missing
 * directory is fine (policy decides whether its contents are needed). */
static int copy_subdir(struct md_stage *s, const struct sub_rule *r,
		       uint8_t *buf, struct stn_diag *d)
{
	/* A view of the stage rooted at the subdirectory, so copy_small's
	 * rules and messages apply unchanged.  Paths fit: md_stage_begin
	 * keeps both roots well under the buffer sizes. */
	struct md_stage *sub = malloc(sizeof(*sub));
	char name[300];
	int sfd, rc = 0;
	unsigned count = 0;
	struct dirent *e;
	DIR *dh = NULL;
	uint64_t n;

	if (!sub)
		return stn_fail(d, STN_E_NOMEM, s->src, "staging");
	memset(sub, 0, sizeof(*sub));
	sub->dst_dirfd = -1;
	snprintf(sub->src, sizeof(sub->src), "%.3000s/%s", s->src, r->dir);
	snprintf(sub->dir, sizeof(sub->dir), "%.3000s/%s", s->dir, r->dir);
	sfd = openat(s->src_dirfd, r->dir,
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0) {
		if (errno != ENOENT)
			rc = stn_fail(d, errno == ELOOP || errno == ENOTDIR
						 ? STN_E_UNSAFE
						 : STN_E_IO,
				      sub->src, "cannot open: %s",
				      strerror(errno));
		goto out;
	}
	dh = fdopendir(sfd);
	if (!dh) {
		close(sfd);
		rc = stn_fail(d, STN_E_IO, sub->src, "cannot list: %s",
			      strerror(errno));
		goto out;
	}
	sub->src_dirfd = dirfd(dh);
	if (mkdirat(s->dst_dirfd, r->dir, 0700) != 0 ||
	    (sub->dst_dirfd = openat(s->dst_dirfd, r->dir,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC)) < 0) {
		rc = stn_fail(d, STN_E_IO, sub->dir,
			      "cannot create in staging: %s", strerror(errno));
		goto out;
	}
	while (rc == 0 && (e = readdir(dh))) {
		static const char *const ext[] = {".sig", ".pem"};

		if (!sub_name_ok(r, e->d_name))
			continue;
		if (++count > r->max) {
			rc = stn_fail(d, STN_E_TOOBIG, sub->src,
				      "more than %u documents", r->max);
			break;
		}
		/* The document and its F.sig / F.pem (formats §2). */
		rc = copy_small(sub, e->d_name, STN_E_UNSAFE, "vanished", buf,
				&n, d);
		for (int i = 0; rc == 0 && i < 2; i++) {
			struct stn_diag miss;
			snprintf(name, sizeof(name), "%s%s", e->d_name, ext[i]);
			stn_diag_init(&miss);
			if (copy_small(sub, name, STN_E_UNSAFE, "missing", buf,
				       &n, &miss) &&
			    !strstr(miss.text, "missing"))
				rc = stn_fail(d, miss.code, miss.where, "%s",
					      miss.text);
		}
	}
out:
	if (sub->dst_dirfd >= 0)
		close(sub->dst_dirfd);
	if (dh)
		closedir(dh);
	free(sub);
	return rc;
}

int md_stage_begin(const char *src_dir, const char *staging_root,
		   struct md_stage **out, struct stn_diag *d)
{
	struct md_stage *s = NULL;
	uint8_t *buf = NULL;
	uint64_t n;
	int rc = 0;

	s = calloc(1, sizeof(*s));
	buf = malloc(CU_RECORD_MAX + 1 > COPY_CHUNK ? CU_RECORD_MAX + 1
						    : COPY_CHUNK);
	if (!s || !buf) {
		free(s);
		free(buf);
		return stn_fail(d, STN_E_NOMEM, src_dir, "staging");
	}
	s->src_dirfd = s->dst_dirfd = -1;
	s->measure.measure = stage_measure;
	s->measure.ctx = s;
	if (strlen(src_dir) >= sizeof(s->src) - CU_FILE_NAME_MAX - 2 ||
	    strlen(staging_root) >= sizeof(s->dir) - 16) {
		rc = stn_fail(d, STN_E_USAGE, src_dir, "path too long");
		goto out;
	}
	snprintf(s->src, sizeof(s->src), "%s", src_dir);

	s->src_dirfd = open(src_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC);
	if (s->src_dirfd < 0) {
		struct stat lst;
		int err = errno;
		/* O_DIRECTORY reports a symlink as ENOTDIR; say what it is. */
		if (lstat(src_dir, &lst) == 0 && S_ISLNK(lst.st_mode))
			rc = stn_fail(d, STN_E_UNSAFE, src_dir,
				      "bundle directory is a symbolic link");
		else
			rc = stn_fail(d, err == ENOENT || err == ENOTDIR
						 ? STN_E_USAGE
						 : STN_E_IO,
				      src_dir, "cannot open bundle directory: %s",
				      strerror(err));
		goto out;
	}
	if ((rc = check_staging_root(staging_root, d)))
		goto out;
	snprintf(s->dir, sizeof(s->dir), "%s/stage-XXXXXX", staging_root);
	if (!mkdtemp(s->dir)) {
		rc = stn_fail(d, STN_E_IO, staging_root,
			      "cannot create a staging directory: %s",
			      strerror(errno));
		s->dir[0] = '\0';
		goto out;
	}
	s->dst_dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					    O_CLOEXEC);
	if (s->dst_dirfd < 0) {
		rc = stn_fail(d, STN_E_IO, s->dir, "open: %s", strerror(errno));
		goto out;
	}
	/* The manifest first: it says which images to take. */
	if ((rc = copy_small(s, "manifest", STN_E_UNSAFE,
			     "no manifest: this directory is not a bundle", buf,
			     &n, d))) {
		if (d && strstr(d->text, "not a bundle"))
			rc = stn_recode(d, STN_E_USAGE);
		goto out;
	}
	if ((rc = parse_staged_manifest(s, buf, d)) ||
	    (rc = copy_signatures(s, buf, d)))
		goto out;
	for (size_t i = 0; i < sizeof(sub_rules) / sizeof(*sub_rules); i++)
		if ((rc = copy_subdir(s, &sub_rules[i], buf, d)))
			goto out;
	*out = s;
	s = NULL;
out:
	free(buf);
	md_stage_free(s); /* a half-staged bundle is never left to be used */
	return rc;
}

/* Sum of distinct image sizes, refusing any single image over the cap
 * before it is added, so the total cannot wrap. */
static int total_size(const struct md_stage *s, uint64_t *need,
		      struct stn_diag *d)
{
	const struct cu_manifest *m = s->manifest;
	uint64_t sum = 0;

	for (size_t i = 0; i < m->nimages; i++) {
		char path[4096];
		size_t k;

		snprintf(path, sizeof(path), "%s/%s", s->src,
			 m->images[i].file);
		if (m->images[i].size > MD_IMAGE_MAX)
			return stn_fail(d, STN_E_TOOBIG, path,
					"manifest gives %llu bytes, over the "
					"%llu byte image cap",
					(unsigned long long)m->images[i].size,
					(unsigned long long)MD_IMAGE_MAX);
		for (k = 0; k < i; k++)
			if (strcmp(m->images[k].file, m->images[i].file) == 0)
				break;
		if (k == i) /* the same file may serve two slots */
			sum += m->images[i].size;
		if (sum > MD_BUNDLE_MAX)
			return stn_fail(d, STN_E_TOOBIG, s->src,
					"images total over the %llu byte cap",
					(unsigned long long)MD_BUNDLE_MAX);
	}
	*need = sum;
	return 0;
}

int md_stage_images(struct md_stage *s, const struct md_progress *prog,
		    struct stn_diag *d)
{
	const struct cu_manifest *m = s->manifest;
	struct cu_sha256 *h = NULL;
	struct statvfs vfs;
	uint8_t *buf = NULL;
	uint64_t need = 0, avail;
	int rc;

	if ((rc = total_size(s, &need, d)))
		return rc;
	if (fstatvfs(s->dst_dirfd, &vfs) != 0)
		return stn_fail(d, STN_E_IO, s->dir, "statvfs: %s",
				strerror(errno));
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail < need + (4 << 20))
		return stn_fail(d, STN_E_IO, s->dir,
				"staging area has %llu bytes free, the bundle "
				"needs %llu", (unsigned long long)avail,
				(unsigned long long)need);
	h = cu_sha256_new();
	buf = malloc(COPY_CHUNK);
	if (!h || !buf) {
		rc = stn_fail(d, STN_E_NOMEM, s->src, "staging");
		goto out;
	}
	for (size_t i = 0; i < m->nimages && rc == 0; i++) {
		const struct cu_image *img = &m->images[i];
		struct staged_file *f;
		struct stat st;
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
		fd = open_source(s, img->file, &st, STN_E_IMAGE,
				 "missing: named by the manifest but not in "
				 "the bundle", &f->problem);
		if (fd < 0) {
			if (fd != STN_E_IMAGE) /* I/O: stop, media trouble */
				rc = stn_fail(d, f->problem.code,
					      f->problem.where, "%s",
					      f->problem.text);
			continue;
		}
		/* A wrong size is a check 3 failure: do not copy what will
		 * be refused anyway. */
		if ((uint64_t)st.st_size != img->size) {
			stn_fail(&f->problem, STN_E_IMAGE, path,
				 "size is %lld bytes, manifest says %llu",
				 (long long)st.st_size,
				 (unsigned long long)img->size);
			close(fd);
			continue;
		}
		rc = copy_fd(s, fd, path, img->file, img->size, h, buf, prog,
			     &f->size, d);
		close(fd);
		cu_sha256_final(h, f->sha256);
	}
out:
	cu_sha256_free(h);
	free(buf);
	return rc;
}

int md_stage_bundle(const char *src_dir, const char *staging_root,
		    const struct md_progress *progress, struct md_stage **out,
		    struct stn_diag *d)
{
	struct md_stage *s = NULL;
	int rc = md_stage_begin(src_dir, staging_root, &s, d);

	if (rc == 0)
		rc = md_stage_images(s, progress, d);
	if (rc) {
		md_stage_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

const char *md_stage_dir(const struct md_stage *s)
{
	return s->dir;
}

const struct cu_measure *md_stage_measure(const struct md_stage *s)
{
	return &s->measure;
}

/* Empties and removes one trust subdirectory of the staged copy. */
static void remove_subdir(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					      O_CLOEXEC);
	DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!dh && fd >= 0)
		close(fd);
	while (dh && (e = readdir(dh)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			(void)unlinkat(dirfd(dh), e->d_name, 0);
	if (dh)
		closedir(dh);
	(void)unlinkat(parent, name, AT_REMOVEDIR);
}

void md_stage_free(struct md_stage *s)
{
	if (!s)
		return;
	if (s->dst_dirfd >= 0) {
		int fd = dup(s->dst_dirfd);
		DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *e;

		if (!dh && fd >= 0)
			close(fd);
		while (dh && (e = readdir(dh))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (unlinkat(s->dst_dirfd, e->d_name, 0) != 0 &&
			    errno == EISDIR)
				remove_subdir(s->dst_dirfd, e->d_name);
		}
		if (dh)
			closedir(dh);
		close(s->dst_dirfd);
	}
	/* Best effort: if this fails a private, empty directory is left
	 * under the staging area; it is never read again. */
	if (s->dir[0])
		(void)rmdir(s->dir);
	if (s->src_dirfd >= 0)
		close(s->src_dirfd);
	cu_manifest_free(s->manifest);
	free(s);
}
