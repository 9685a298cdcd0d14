/* media/stage.c: two-phase, one-pass copy-and-hash of a bundle into private
 * staging.  All opens are relative to a directory descriptor held from the
 * first phase to the last, with O_NOFOLLOW, so a symlink or a directory
 * swapped on the media cannot redirect a read.  Names are checked before
 * anything is opened; counts and sizes are capped before anything is
 * copied, so a hostile stick costs at most a few MiB of phase one. */
#include "media/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "custody/manifest.h"
#include "custody/record.h"
#include "station/base/sha256.h"
#include "custody/verify.h"
#include "station/base/aes_ctr.h"
#include "station/base/error.h"
#include "station/base/hex.h"
#include "station/base/fileio.h"

#define COPY_CHUNK (1 << 20)  /* large sequential reads; memory stays flat */
/* Writes into staging go in 64 KiB pieces: the page cache then takes
 * small folios.  With 1 MiB writes the kernel takes large folios, which on
 * a VM with free page reporting (virtio-balloon) come from blocks the host
 * reclaimed, and copying into them cost 2.1 s of system time per GiB
 * against 0.55 s (measured with dd here); on a warm cache both cost the
 * same (0.3 s). */
#define WRITE_CHUNK (64 << 10)
#define SPARE_BYTES (4 << 20) /* left free in staging beyond a bundle */

struct staged_file {
	char name[CU_FILE_NAME_MAX + 1];
	uint64_t size;		       /* the plaintext's, when encrypted */
	uint8_t sha256[CU_SHA256_LEN]; /* likewise */
	/* The cipher fields of the image it was staged for: a file serves
	 * two slots only when they read it the same way. */
	int encrypted;
	uint8_t iv[CU_IV_LEN];
	uint8_t cipher_sha256[CU_SHA256_LEN];
	struct stn_diag problem; /* code != 0: not staged, and why */
};

static int same_cipher(const struct staged_file *f, const struct cu_image *img)
{
	if (f->encrypted != img->encrypted)
		return 0;
	return !f->encrypted ||
	       (memcmp(f->iv, img->iv, CU_IV_LEN) == 0 &&
		memcmp(f->cipher_sha256, img->cipher_sha256,
		       CU_SHA256_LEN) == 0);
}

struct md_stage {
	char root[3072]; /* the staging root, for keep */
	char dir[3072];	 /* short enough that dir/sub/name always fits */
	char src[3072];
	int src_dirfd, dst_dirfd;
	struct md_io io;
	uint64_t small_total; /* bytes phase one copied */
	int images_tried;     /* md_stage_images ran (it runs once) */
	int spoiled;	      /* a copy failed part-way: use nothing */
	int kept;
	struct cu_manifest *manifest;
	struct staged_file files[CU_MAX_IMAGES];
	size_t nfiles;
	struct cu_source source; /* what verification reads */
};

/* The source's measure: what phase two found when it copied the image. */
static int stage_measure(void *ctx, const struct cu_image *img,
			 struct cu_measured *out, struct stn_diag *d)
{
	const struct md_stage *s = ctx;

	if (s->spoiled || !s->images_tried)
		return stn_fail(d, STN_E_IO, s->src,
				"%s", s->spoiled ? "staging failed part-way; "
						   "nothing staged is used"
						 : "images are not staged yet");
	for (size_t i = 0; i < s->nfiles; i++) {
		const struct staged_file *f = &s->files[i];
		if (strcmp(f->name, img->file) != 0 || !same_cipher(f, img))
			continue;
		if (f->problem.code)
			return stn_fail(d, f->problem.code, f->problem.where,
					"%s", f->problem.text);
		out->size = f->size;
		memcpy(out->sha256, f->sha256, CU_SHA256_LEN);
		return 0;
	}
	return stn_fail(d, STN_E_IMAGE, s->src, "%s was not staged",
			img->file);
}

static ssize_t media_read(const struct md_stage *s, int fd, void *buf,
			  size_t len)
{
	if (s->io.read)
		return s->io.read(s->io.ctx, fd, buf, len);
	return read(fd, buf, len);
}

/* ---- hashing beside the copy ------------------------------------------ */

/* One worker hashes chunk k while the caller writes chunk k and reads
 * chunk k+1 into the other buffer: SHA-256 and the I/O overlap, and the
 * bytes hashed are exactly the bytes written.  Without a thread (creation
 * failed) it hashes inline; the result is the same. */
struct hasher {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cu_sha256 *h;
	const uint8_t *data;
	size_t len;
	int busy, quit, running;
	int rc; /* the first hashing failure: the digest is not to be used */
};

static void *hasher_main(void *arg)
{
	struct hasher *hs = arg;

	pthread_mutex_lock(&hs->mu);
	for (;;) {
		while (!hs->busy && !hs->quit)
			pthread_cond_wait(&hs->cv, &hs->mu);
		if (!hs->busy)
			break;
		pthread_mutex_unlock(&hs->mu);
		int rc = cu_sha256_update(hs->h, hs->data, hs->len);
		pthread_mutex_lock(&hs->mu);
		if (rc && !hs->rc)
			hs->rc = rc;
		hs->busy = 0;
		pthread_cond_broadcast(&hs->cv);
	}
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

static void hasher_start(struct hasher *hs, struct cu_sha256 *h)
{
	memset(hs, 0, sizeof(*hs));
	hs->h = h;
	if (pthread_mutex_init(&hs->mu, NULL) != 0)
		return;
	if (pthread_cond_init(&hs->cv, NULL) != 0) {
		pthread_mutex_destroy(&hs->mu);
		return;
	}
	hs->running = pthread_create(&hs->thread, NULL, hasher_main, hs) == 0;
	if (!hs->running) {
		pthread_cond_destroy(&hs->cv);
		pthread_mutex_destroy(&hs->mu);
	}
}

/* Returns when the last chunk handed over has been hashed. */
static void hasher_wait(struct hasher *hs)
{
	if (!hs->running)
		return;
	pthread_mutex_lock(&hs->mu);
	while (hs->busy)
		pthread_cond_wait(&hs->cv, &hs->mu);
	pthread_mutex_unlock(&hs->mu);
}

static void hasher_submit(struct hasher *hs, const uint8_t *data, size_t len)
{
	if (!hs->running) {
		int rc = cu_sha256_update(hs->h, data, len);
		if (rc && !hs->rc)
			hs->rc = rc;
		return;
	}
	pthread_mutex_lock(&hs->mu);
	while (hs->busy)
		pthread_cond_wait(&hs->cv, &hs->mu);
	hs->data = data;
	hs->len = len;
	hs->busy = 1;
	pthread_cond_broadcast(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
}

static void hasher_stop(struct hasher *hs)
{
	if (!hs->running)
		return;
	pthread_mutex_lock(&hs->mu);
	while (hs->busy)
		pthread_cond_wait(&hs->cv, &hs->mu);
	hs->quit = 1;
	pthread_cond_broadcast(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
	pthread_join(hs->thread, NULL);
	pthread_cond_destroy(&hs->cv);
	pthread_mutex_destroy(&hs->mu);
	hs->running = 0;
}

/* ---- copying ----------------------------------------------------------- */

/* A file to copy: where it is read from and written to, and how it is
 * named in messages ("bundle/custody/01.rec" on the media side). */
struct copy_job {
	int src_dirfd, dst_dirfd;
	const char *name;  /* in both directories */
	const char *shown; /* media path */
	const char *dest;  /* staged path */
};

/* Copies from an open source descriptor, hashing when hs is given, reading
 * at most `cap` bytes (a file growing under us is caught), from bufs[0]
 * and bufs[1] in turn.  The copy is made read-only. */
static int copy_fd(struct md_stage *s, int in, const struct copy_job *j,
		   uint64_t cap, struct hasher *hs, uint8_t *bufs[2],
		   const struct md_progress *prog, uint64_t *copied,
		   struct stn_diag *d)
{
	uint64_t total = 0;
	int out, rc = 0, cur = 0;

	out =
	    openat(j->dst_dirfd, j->name,
		   O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		return stn_fail(d, STN_E_IO, j->dest,
				"cannot create in staging: %s",
				strerror(errno));
	for (;;) {
		uint8_t *buf = bufs[cur];
		ssize_t got = media_read(s, in, buf, COPY_CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = stn_fail(d, STN_E_IO, j->shown,
				      "read error on media after %llu bytes: "
				      "%s (media pulled or damaged?)",
				      (unsigned long long)total,
				      strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		if ((uint64_t)got > cap - total) {
			rc = stn_fail(d, STN_E_TOOBIG, j->shown,
				      "grew past %llu bytes while being copied",
				      (unsigned long long)cap);
			goto out;
		}
		if (hs)
			hasher_submit(hs, buf, (size_t)got);
		for (size_t off = 0; off < (size_t)got; off += WRITE_CHUNK) {
			size_t len = (size_t)got - off < WRITE_CHUNK
					     ? (size_t)got - off
					     : WRITE_CHUNK;
			if (stn_write_all(out, buf + off, len) != 0) {
				rc = stn_fail(d, STN_E_IO, j->dest,
					      "write to staging: %s",
					      strerror(errno));
				goto out;
			}
		}
		total += (uint64_t)got;
		if (prog && prog->update)
			prog->update(prog->ctx, j->name, total, cap);
		if (hs && hs->running)
			cur ^= 1; /* the worker may still read this one */
	}
	/* No fsync: a staged copy lives for one session and is made again
	 * after a crash; its integrity comes from the hash taken here, and
	 * the push hashes the bytes again before and as they are sent. */
	if (fchmod(out, 0400) != 0) {
		rc = stn_fail(d, STN_E_IO, j->dest, "chmod: %s",
			      strerror(errno));
		goto out;
	}
	*copied = total;
out:
	if (hs)
		hasher_wait(hs); /* the caller may reuse or free the buffers */
	if (close(out) != 0 && rc == 0)
		rc = stn_fail(d, STN_E_IO, j->dest, "close in staging: %s",
			      strerror(errno));
	return rc;
}

/* Opens a file in a media directory safely.  Returns the fd or a negative
 * code with d filled (`bad_code` for what the media got wrong); *absent is
 * set (when not NULL) if the file simply does not exist. */
static int open_source(int dirfd, const char *name, const char *shown,
		       struct stat *st, int bad_code, const char *missing,
		       int *absent, struct stn_diag *d)
{
	int fd;

	if (absent)
		*absent = 0;
	/* Look before opening: opening a device node can have side effects
	 * (a tape rewinds), so only what is a regular file now is opened,
	 * and the descriptor is checked again below in case it was swapped. */
	if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISREG(st->st_mode)) {
		if (S_ISLNK(st->st_mode))
			return stn_fail(d, bad_code, shown,
					"is a symbolic link");
		return stn_fail(d, bad_code, shown,
				"not a regular file (device, FIFO or "
				"directory)");
	}
	/* O_NONBLOCK: a FIFO swapped in after the look must not hang. */
	fd =
	    openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return stn_fail(d, bad_code, shown,
					"is a symbolic link");
		if (errno == ENOENT) {
			if (absent)
				*absent = 1;
			return stn_fail(d, bad_code, shown, "%s", missing);
		}
		return stn_fail(d, STN_E_IO, shown, "cannot open: %s",
				strerror(errno));
	}
	if (fstat(fd, st) != 0) {
		int err = errno;
		close(fd);
		return stn_fail(d, STN_E_IO, shown, "stat: %s", strerror(err));
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return stn_fail(d, bad_code, shown,
				"not a regular file (device, FIFO or "
				"directory)");
	}
	return fd;
}

/* Copies a small file whole, counting it against CU_SMALL_TOTAL_MAX. */
static int copy_small(struct md_stage *s, const struct copy_job *j,
		      uint64_t file_max, const char *missing, int *absent,
		      uint8_t *bufs[2], struct stn_diag *d)
{
	struct stat st;
	uint64_t n = 0, left;
	int fd, rc;

	fd = open_source(j->src_dirfd, j->name, j->shown, &st, STN_E_UNSAFE,
			 missing, absent, d);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size > file_max) {
		close(fd);
		return stn_fail(d, STN_E_TOOBIG, j->shown,
				"%lld bytes, over the %llu byte cap",
				(long long)st.st_size,
				(unsigned long long)file_max);
	}
	if (s->small_total + (uint64_t)st.st_size > CU_SMALL_TOTAL_MAX) {
		close(fd);
		return stn_fail(d, STN_E_TOOBIG, j->shown,
				"the bundle's manifest, signatures, records, "
				"tokens, CRLs and key files together exceed "
				"%d bytes",
				CU_SMALL_TOTAL_MAX);
	}
	/* A file growing while it is copied stops at whichever cap is
	 * nearer, so neither can be exceeded. */
	left = CU_SMALL_TOTAL_MAX - s->small_total;
	rc = copy_fd(s, fd, j, left < file_max ? left : file_max, NULL, bufs,
		     NULL, &n, d);
	close(fd);
	if (rc == 0)
		s->small_total += n;
	return rc;
}

/* ---- one directory of signed files -------------------------------------- */

struct dir_rule {
	const char *sub;  /* "" for the bundle directory itself */
	const char *what; /* "custody record", in messages */
	int (*is_primary)(const char *name);
	size_t max_primary;
	size_t max_sigs;  /* per primary; 0: files carry no signatures */
	int primary_done; /* copied already (the manifest) */
	uint64_t file_max; /* each file's cap; 0: CU_SIDECAR_MAX */
};

static uint64_t rule_file_max(const struct dir_rule *r)
{
	return r->file_max ? r->file_max : CU_SIDECAR_MAX;
}

struct entry {
	char name[CU_LAYOUT_NAME_MAX];
	char primary[CU_LAYOUT_NAME_MAX]; /* "" for a primary itself */
};

static int cmp_entries(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static int has_primary(const struct entry *e, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!e[i].primary[0] && strcmp(e[i].name, name) == 0)
			return 1;
	return 0;
}

/*
 * Lists dirfd (shown as `shown`), keeping the primaries and signatures the
 * rule accepts, capped.  Entries other than those are ignored; a readdir
 * error (media pulled) is STN_E_IO.
 */
static int list_dir(int dirfd, const char *shown, const struct dir_rule *r,
		    struct entry **out, size_t *nout, struct stn_diag *d)
{
	size_t max_sigs = r->max_primary * r->max_sigs;
	size_t cap = (r->primary_done ? 0 : r->max_primary) + max_sigs;
	size_t n = 0, nprimary = 0, nsigs = 0, seen = 0;
	struct entry *e = calloc(cap, sizeof(*e));
	struct dirent *de;
	DIR *dh = NULL;
	int fd, rc = 0;

	if (!e)
		return stn_fail(d, STN_E_NOMEM, shown, "listing");
	fd = dup(dirfd);
	if (fd < 0 || !(dh = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		free(e);
		return stn_fail(d, STN_E_IO, shown, "cannot list: %s",
				strerror(errno));
	}
	rewinddir(dh);
	for (;;) {
		char primary[CU_LAYOUT_NAME_MAX];
		int is_sig = 0;

		errno = 0;
		if (!(de = readdir(dh))) {
			if (errno)
				rc = stn_fail(d, STN_E_IO, shown,
					      "cannot list: %s (media pulled "
					      "or damaged?)",
					      strerror(errno));
			break;
		}
		if (++seen > CU_DIR_ENTRIES_MAX) {
			rc = stn_fail(d, STN_E_TOOBIG, shown,
				      CU_DIR_ENTRIES_WHY, CU_DIR_ENTRIES_MAX);
			break;
		}
		if (strlen(de->d_name) >= CU_LAYOUT_NAME_MAX)
			continue;
		if (r->is_primary(de->d_name)) {
			if (r->primary_done)
				continue;
			if (++nprimary > r->max_primary) {
				rc = stn_fail(d, STN_E_TOOBIG, shown,
					      "more than %zu %s files",
					      r->max_primary, r->what);
				break;
			}
			primary[0] = '\0';
		} else if (r->max_sigs &&
			   cu_layout_sig_of(de->d_name, r->is_primary, primary)) {
			if (++nsigs > max_sigs) {
				rc = stn_fail(d, STN_E_TOOBIG, shown,
					      "more than %zu %s signature "
					      "files",
					      max_sigs, r->what);
				break;
			}
			is_sig = 1;
		} else {
			continue; /* not ours: ignored */
		}
		if (n == cap) { /* cannot happen: counted above */
			rc = stn_fail(d, STN_E_INTERNAL, shown, "listing");
			break;
		}
		snprintf(e[n].name, CU_LAYOUT_NAME_MAX, "%s", de->d_name);
		snprintf(e[n].primary, CU_LAYOUT_NAME_MAX, "%s", is_sig ? primary : "");
		n++;
	}
	closedir(dh);
	if (rc) {
		free(e);
		return rc;
	}
	qsort(e, n, sizeof(*e), cmp_entries);
	/* Signatures per file, counted once the listing is complete. */
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t count = 0;
		if (e[i].primary[0])
			continue;
		for (size_t k = 0; k < n; k++)
			count += strcmp(e[k].primary, e[i].name) == 0;
		if (count > r->max_sigs)
			rc = stn_fail(d, STN_E_TOOBIG, shown,
				      "more than %zu signature files for %s",
				      r->max_sigs, e[i].name);
	}
	if (rc) {
		free(e);
		return rc;
	}
	*out = e;
	*nout = n;
	return 0;
}

/* Copies what list_dir kept: each primary, then each signature whose
 * primary exists with the .pem beside it when present (verification
 * reports a missing chain). */
static int copy_listed(struct md_stage *s, int src_dirfd, int dst_dirfd,
		       const char *rel, const struct dir_rule *r,
		       const struct entry *e, size_t n, uint8_t *bufs[2],
		       struct stn_diag *d)
{
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			char shown[4096], dest[4096], pem[CU_LAYOUT_NAME_MAX];
			struct copy_job j = {src_dirfd, dst_dirfd, e[i].name,
					     shown, dest};
			struct stn_diag why;
			int absent, rc;

			/* primaries first, so a signature is only copied
			 * beside its file */
			if ((pass == 0) != !e[i].primary[0])
				continue;
			if (e[i].primary[0] &&
			    !has_primary(e, n, e[i].primary) &&
			    !r->primary_done)
				continue;
			snprintf(shown, sizeof(shown), "%s/%s%s", s->src, rel,
				 e[i].name);
			snprintf(dest, sizeof(dest), "%s/%s%s", s->dir, rel,
				 e[i].name);
			rc = copy_small(s, &j, rule_file_max(r),
					"vanished while being staged", NULL,
					bufs, d);
			if (rc)
				return rc;
			if (!e[i].primary[0])
				continue;
			snprintf(pem, sizeof(pem), "%.*s.pem",
				 (int)(strlen(e[i].name) - 4), e[i].name);
			snprintf(shown, sizeof(shown), "%s/%s%s", s->src, rel,
				 pem);
			snprintf(dest, sizeof(dest), "%s/%s%s", s->dir, rel,
				 pem);
			j.name = pem;
			stn_diag_init(&why);
			rc = copy_small(s, &j, CU_SIDECAR_MAX, "missing",
					&absent, bufs, &why);
			if (rc && !absent)
				return stn_fail(d, why.code, why.where, "%s",
						why.text);
		}
	}
	return 0;
}

/* custody/, tokens/ or crl/: absent is fine; present must be a real
 * directory.  Copied into the same place under the staged directory. */
static int copy_subdir(struct md_stage *s, const struct dir_rule *r,
		       uint8_t *bufs[2], struct stn_diag *d)
{
	char shown[4096], dest[4096], rel[64];
	struct entry *e = NULL;
	struct stat st;
	size_t n = 0;
	int in, out = -1, rc;

	snprintf(shown, sizeof(shown), "%s/%s", s->src, r->sub);
	snprintf(dest, sizeof(dest), "%s/%s", s->dir, r->sub);
	snprintf(rel, sizeof(rel), "%s/", r->sub);
	in = openat(s->src_dirfd, r->sub,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
			O_NONBLOCK);
	if (in < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR) {
			if (fstatat(s->src_dirfd, r->sub, &st,
				    AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				return stn_fail(d, STN_E_UNSAFE, shown,
						"is a symbolic link");
			return stn_fail(d, STN_E_UNSAFE, shown,
					"is not a directory");
		}
		return stn_fail(d, STN_E_IO, shown, "cannot open: %s",
				strerror(errno));
	}
	if ((rc = list_dir(in, shown, r, &e, &n, d)))
		goto out;
	if (n == 0)
		goto out; /* nothing of ours: no directory in staging */
	if (mkdirat(s->dst_dirfd, r->sub, 0700) != 0) {
		rc = stn_fail(d, STN_E_IO, dest, "cannot create in staging: %s",
			      strerror(errno));
		goto out;
	}
	out = openat(s->dst_dirfd, r->sub,
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0) {
		rc = stn_fail(d, STN_E_IO, dest, "open: %s", strerror(errno));
		goto out;
	}
	rc = copy_listed(s, in, out, rel, r, e, n, bufs, d);
out:
	free(e);
	if (out >= 0)
		close(out);
	close(in);
	return rc;
}

/* ---- phase one ---------------------------------------------------------- */

/* The staging root must be ours alone: a directory (not a symlink) owned
 * by this user with no group or other access. */
static int check_staging_root(const char *root, int create, struct stn_diag *d)
{
	struct stat st;

	if (create && mkdir(root, 0700) != 0 && errno != EEXIST)
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

static int free_space(int dirfd, const char *shown, uint64_t need,
		      const char *what, struct stn_diag *d)
{
	struct statvfs vfs;
	uint64_t avail;

	if (fstatvfs(dirfd, &vfs) != 0)
		return stn_fail(d, STN_E_IO, shown, "statvfs: %s",
				strerror(errno));
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail < need + SPARE_BYTES)
		return stn_fail(d, STN_E_IO, shown,
				"staging area has %llu bytes free, %s needs "
				"%llu",
				(unsigned long long)avail, what,
				(unsigned long long)need);
	return 0;
}

static int is_custody_name(const char *name)
{
	return cu_layout_custody_name(name, NULL);
}

static const struct dir_rule manifest_rule = {
    "", "manifest", cu_layout_manifest_name, 1, CU_MAX_SIGNATURES, 1, 0};
static const struct dir_rule sub_rules[] = {
    {CU_LAYOUT_CUSTODY, "custody record (NN.rec)", is_custody_name,
     CU_MAX_CUSTODY, CU_MAX_FILE_SIGNATURES, 0, 0},
    {CU_LAYOUT_TOKENS, "token (NAME.tok)", cu_layout_token_name,
     CU_MAX_TOKENS, CU_MAX_FILE_SIGNATURES, 0, 0},
    {CU_LAYOUT_CRL, "CRL (NAME.pem)", cu_layout_crl_name, CU_MAX_CRLS, 0,
     0, 0},
    /* formats §10: wrapped content keys, unsigned (a wrong one only
     * yields a plaintext that fails check 3). */
    {CU_LAYOUT_KEYS, "key file (NAME.key)", cu_layout_key_name,
     CU_MAX_KEYFILES, 0, 0, CU_KEYFILE_MAX},
};

static int open_bundle_dir(const char *src_dir, struct stn_diag *d)
{
	int fd = open(src_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
				   O_NONBLOCK);
	struct stat lst;
	int err = errno;

	if (fd >= 0)
		return fd;
	/* O_DIRECTORY reports a symlink as ENOTDIR; say what it is. */
	if (lstat(src_dir, &lst) == 0 && S_ISLNK(lst.st_mode))
		return stn_fail(d, STN_E_UNSAFE, src_dir,
				"bundle directory is a symbolic link");
	return stn_fail(
	    d, err == ENOENT || err == ENOTDIR ? STN_E_USAGE : STN_E_IO,
	    src_dir, "cannot open bundle directory: %s", strerror(err));
}

/* Opens the staging root and flocks it (LOCK_SH or LOCK_EX, waiting):
 * creating a stage and sweeping dead ones exclude each other. */
static int lock_root(const char *root, int how, int *fd_out,
		     struct stn_diag *d)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return stn_fail(d, STN_E_IO, root, "open: %s", strerror(errno));
	while (flock(fd, how) != 0) {
		if (errno == EINTR)
			continue;
		int rc = stn_fail(d, STN_E_IO, root, "lock: %s",
				  strerror(errno));
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int md_stage_begin_io(const char *src_dir, const char *staging_root,
		      const struct md_io *io, struct md_stage **out,
		      struct stn_diag *d)
{
	struct md_stage *s = NULL;
	uint8_t *buf = NULL, *bufs[2];
	struct entry *e = NULL;
	size_t n = 0;
	int rc = 0, rootfd = -1;

	s = calloc(1, sizeof(*s));
	/* One buffer serves both halves here: small files never hash. */
	buf = malloc(COPY_CHUNK);
	if (!s || !buf) {
		free(s);
		free(buf);
		return stn_fail(d, STN_E_NOMEM, src_dir, "staging");
	}
	bufs[0] = bufs[1] = buf;
	s->src_dirfd = s->dst_dirfd = -1;
	if (io)
		s->io = *io;
	if (strlen(src_dir) >= sizeof(s->src) - CU_FILE_NAME_MAX - 64 ||
	    strlen(staging_root) >= sizeof(s->dir) - 64) {
		rc = stn_fail(d, STN_E_USAGE, src_dir, "path too long");
		goto out;
	}
	snprintf(s->src, sizeof(s->src), "%s", src_dir);
	snprintf(s->root, sizeof(s->root), "%s", staging_root);

	if ((s->src_dirfd = open_bundle_dir(src_dir, d)) < 0) {
		rc = s->src_dirfd;
		goto out;
	}
	if ((rc = check_staging_root(staging_root, 1, d)))
		goto out;
	/* Between mkdtemp and its lock a new stage looks dead to another
	 * session's sweep, which would remove it under us: create and lock
	 * it while holding the staging root shared (the sweep holds it
	 * exclusive). */
	if ((rc = lock_root(staging_root, LOCK_SH, &rootfd, d)))
		goto out;
	snprintf(s->dir, sizeof(s->dir), "%s/stage-XXXXXX", staging_root);
	if (!mkdtemp(s->dir)) {
		rc = stn_fail(d, STN_E_IO, staging_root,
			      "cannot create a staging directory: %s",
			      strerror(errno));
		s->dir[0] = '\0';
		goto out;
	}
	s->dst_dirfd =
	    open(s->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->dst_dirfd < 0) {
		rc = stn_fail(d, STN_E_IO, s->dir, "open: %s", strerror(errno));
		goto out;
	}
	/* Held until md_stage_free: md_stage_sweep leaves a live stage be. */
	if (flock(s->dst_dirfd, LOCK_EX | LOCK_NB) != 0) {
		rc = stn_fail(d, STN_E_IO, s->dir, "lock: %s", strerror(errno));
		goto out;
	}
	close(rootfd);
	rootfd = -1;
	if ((rc = free_space(s->dst_dirfd, s->dir, CU_SMALL_TOTAL_MAX,
			     "phase one", d)))
		goto out;
	/* The manifest first: it says which images to take. */
	{
		char shown[4096], dest[4096];
		struct copy_job j = {s->src_dirfd, s->dst_dirfd, "manifest",
				     shown, dest};
		int absent = 0;

		snprintf(shown, sizeof(shown), "%s/manifest", s->src);
		snprintf(dest, sizeof(dest), "%s/manifest", s->dir);
		rc = copy_small(s, &j, CU_SIDECAR_MAX,
				"no manifest: this directory is not a bundle",
				&absent, bufs, d);
		if (rc) {
			if (absent)
				rc = stn_recode(d, STN_E_USAGE);
			goto out;
		}
	}
	/* Parsed from the staged copy, never the media's, with messages
	 * naming the media path the operator knows. */
	if ((rc = cu_manifest_load(s->dir, s->src, &s->manifest, d)))
		goto out;
	s->source = (struct cu_source){s->dir, s->src, s->manifest,
				       stage_measure, s};
	if ((rc = list_dir(s->src_dirfd, s->src, &manifest_rule, &e, &n, d)) ||
	    (rc = copy_listed(s, s->src_dirfd, s->dst_dirfd, "", &manifest_rule,
			      e, n, bufs, d)))
		goto out;
	for (size_t i = 0; i < sizeof(sub_rules) / sizeof(sub_rules[0]); i++)
		if ((rc = copy_subdir(s, &sub_rules[i], bufs, d)))
			goto out;
	*out = s;
	s = NULL;
out:
	if (rootfd >= 0)
		close(rootfd);
	free(e);
	free(buf);
	md_stage_free(s); /* a half-staged bundle is never left to be used */
	return rc;
}

int md_stage_begin(const char *src_dir, const char *staging_root,
		   struct md_stage **out, struct stn_diag *d)
{
	return md_stage_begin_io(src_dir, staging_root, NULL, out, d);
}

/* ---- phase two ---------------------------------------------------------- */

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
		if (m->images[i].size > CU_IMAGE_MAX)
			return stn_fail(d, STN_E_TOOBIG, path,
					"manifest gives %llu bytes, over the "
					"%llu byte image cap",
					(unsigned long long)m->images[i].size,
					(unsigned long long)CU_IMAGE_MAX);
		for (k = 0; k < i; k++)
			if (strcmp(m->images[k].file, m->images[i].file) == 0)
				break;
		if (k == i) /* the same file may serve two slots */
			sum += m->images[i].size;
		if (sum > CU_BUNDLE_MAX)
			return stn_fail(d, STN_E_TOOBIG, s->src,
					"images total over the %llu byte cap",
					(unsigned long long)CU_BUNDLE_MAX);
	}
	*need = sum;
	return 0;
}

/* An encrypted image is read twice (copy, then decrypt): progress runs
 * over both passes, 0 to twice its size, so the bar never goes back. */
struct pass_progress {
	const struct md_progress *outer;
	uint64_t base, total;
};

static void pass_update(void *ctx, const char *file, uint64_t done,
			uint64_t total)
{
	const struct pass_progress *pp = ctx;

	(void)total;
	pp->outer->update(pp->outer->ctx, file, pp->base + done, pp->total);
}

/* Copies one image, remembering a problem the media has with it (check 3)
 * in f, and failing only on I/O.  An encrypted image is copied as it is,
 * and f->sha256 is then the ciphertext's. */
static int stage_image(struct md_stage *s, const struct cu_image *img,
		       struct staged_file *f, struct hasher *hs,
		       uint8_t *bufs[2], const struct md_progress *prog,
		       struct stn_diag *d)
{
	char shown[4096], dest[4096];
	struct copy_job j = {s->src_dirfd, s->dst_dirfd, img->file, shown,
			     dest};
	struct stat st;
	int fd, rc;

	snprintf(f->name, sizeof(f->name), "%s", img->file);
	snprintf(shown, sizeof(shown), "%s/%s", s->src, img->file);
	snprintf(dest, sizeof(dest), "%s/%s", s->dir, img->file);
	fd = open_source(s->src_dirfd, img->file, shown, &st, STN_E_IMAGE,
			 "missing: named by the manifest but not in the bundle",
			 NULL, &f->problem);
	if (fd < 0) {
		if (fd != STN_E_IMAGE) /* I/O: stop, media trouble */
			return stn_fail(d, f->problem.code, f->problem.where,
					"%s", f->problem.text);
		return 0;
	}
	/* A wrong size is a check 3 failure: do not copy what will be
	 * refused anyway. */
	if ((uint64_t)st.st_size != img->size) {
		stn_fail(&f->problem, STN_E_IMAGE, shown,
			 "size is %lld bytes, manifest says %llu",
			 (long long)st.st_size, (unsigned long long)img->size);
		close(fd);
		return 0;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	{
		struct pass_progress pp = {prog, 0, 2 * img->size};
		struct md_progress both = {pass_update, &pp};
		if (img->encrypted && prog && prog->update)
			prog = &both;
		rc = copy_fd(s, fd, &j, img->size, hs, bufs, prog, &f->size,
			     d);
	}
	close(fd);
	if (rc)
		return rc;
	/* copy_fd waited for the hasher: hs->rc is settled. */
	if ((rc = hs->rc) == 0)
		rc = cu_sha256_final(hs->h, f->sha256);
	if (rc)
		return stn_fail(d, rc, dest, "hashing the copy: %s",
				stn_strerror(rc));
	return 0;
}

/*
 * Pass two of an encrypted image (formats §10), after stage_image copied
 * the ciphertext: check its digest, get the content key, and decrypt the
 * staged copy in memory while hashing the plaintext, which is never
 * written.  Problems of the image (tampered, no key) go into f; only
 * staging trouble fails.  The hasher works on chunk k while this thread
 * reads and decrypts chunk k+1 into the other buffer, as copy_fd does.
 */
static int decrypt_image(struct md_stage *s, const struct cu_image *img,
			 struct staged_file *f, const struct md_keys *keys,
			 struct hasher *hs, uint8_t *bufs[2],
			 const struct md_progress *prog, struct stn_diag *d)
{
	char shown[4096], dest[4096], h1[65], h2[65];
	struct cu_ctr *ctr = NULL;
	struct stn_diag why;
	uint8_t key[32];
	uint64_t total = 0;
	int fd = -1, rc = 0, cur = 0;

	snprintf(shown, sizeof(shown), "%s/%s", s->src, img->file);
	snprintf(dest, sizeof(dest), "%s/%s", s->dir, img->file);
	/* Tampered on the way: never hand it to the cipher, nor ask for a
	 * key to decrypt it with. */
	if (memcmp(f->sha256, img->cipher_sha256, CU_SHA256_LEN) != 0) {
		cu_hex(f->sha256, CU_SHA256_LEN, h1);
		cu_hex(img->cipher_sha256, CU_SHA256_LEN, h2);
		stn_fail(&f->problem, STN_E_IMAGE, shown,
			 "ciphertext digest %s, manifest's cipher-sha256 %s: "
			 "the file was changed on the way; not decrypted",
			 h1, h2);
		return 0;
	}
	if (!keys || !keys->content_key) {
		stn_fail(&f->problem, STN_E_IMAGE, shown,
			 "encrypted, and the station has no delivery key: "
			 "not decrypted");
		return 0;
	}
	stn_diag_init(&why);
	rc = keys->content_key(keys->ctx, img, key, &why);
	if (rc) {
		explicit_bzero(key, sizeof(key));
		stn_fail(&f->problem, STN_E_IMAGE,
			 why.where[0] ? why.where : shown, "%s",
			 why.text[0] ? why.text : stn_strerror(rc));
		return 0;
	}
	ctr = cu_ctr_new(key, img->iv);
	explicit_bzero(key, sizeof(key)); /* the context holds it now */
	if (!ctr)
		return stn_fail(d, STN_E_NOMEM, dest, "decrypting: no cipher");
	fd = openat(s->dst_dirfd, img->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = stn_fail(d, STN_E_IO, dest, "cannot reopen in staging: %s",
			      strerror(errno));
		goto out;
	}
	for (;;) {
		uint8_t *buf = bufs[cur];
		ssize_t got = read(fd, buf, COPY_CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = stn_fail(d, STN_E_IO, dest,
				      "read error in staging after %llu "
				      "bytes: %s",
				      (unsigned long long)total,
				      strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		/* The copy is ours and read-only; it is f->size long. */
		if ((uint64_t)got > f->size - total) {
			rc = stn_fail(d, STN_E_IO, dest,
				      "staged copy grew past %llu bytes",
				      (unsigned long long)f->size);
			goto out;
		}
		if ((rc = cu_ctr_apply(ctr, buf, buf, (size_t)got))) {
			rc = stn_fail(d, rc, dest, "decrypting: %s",
				      stn_strerror(rc));
			goto out;
		}
		hasher_submit(hs, buf, (size_t)got);
		total += (uint64_t)got;
		if (prog && prog->update)
			prog->update(prog->ctx, img->file, img->size + total,
				     2 * img->size);
		if (hs->running)
			cur ^= 1; /* the worker may still read this one */
	}
out:
	hasher_wait(hs); /* the buffers are free again, hs->rc settled */
	if (fd >= 0)
		close(fd);
	cu_ctr_free(ctr);
	if (rc)
		return rc;
	if (total != f->size)
		return stn_fail(d, STN_E_IO, dest,
				"staged copy shrank to %llu of %llu bytes",
				(unsigned long long)total,
				(unsigned long long)f->size);
	if ((rc = hs->rc) == 0)
		rc = cu_sha256_final(hs->h, f->sha256);
	if (rc)
		return stn_fail(d, rc, dest, "hashing the plaintext: %s",
				stn_strerror(rc));
	f->size = total;
	return 0;
}

int md_stage_images(struct md_stage *s, const struct md_progress *prog,
		    struct stn_diag *d)
{
	return md_stage_images_keys(s, prog, NULL, d);
}

int md_stage_images_keys(struct md_stage *s, const struct md_progress *prog,
			 const struct md_keys *keys, struct stn_diag *d)
{
	const struct cu_manifest *m = s->manifest;
	struct cu_sha256 *h = NULL;
	struct hasher hs;
	uint8_t *bufs[2] = {NULL, NULL};
	uint64_t need = 0;
	int rc, encrypted = 0;

	if (s->images_tried)
		return stn_fail(d, STN_E_INTERNAL, s->src,
				"images were already staged");
	s->images_tried = 1;
	if ((rc = total_size(s, &need, d)) ||
	    (rc = free_space(s->dst_dirfd, s->dir, need, "the bundle", d)))
		return rc;
	h = cu_sha256_new();
	bufs[0] = malloc(COPY_CHUNK);
	bufs[1] = malloc(COPY_CHUNK);
	if (!h || !bufs[0] || !bufs[1]) {
		rc = stn_fail(d, STN_E_NOMEM, s->src, "staging");
		goto out;
	}
	hasher_start(&hs, h);
	for (size_t i = 0; i < m->nimages && rc == 0; i++) {
		const struct cu_image *img = &m->images[i];
		struct staged_file *f;
		int dup = 0, clash = 0;

		for (size_t k = 0; k < s->nfiles; k++) {
			if (strcmp(s->files[k].name, img->file) != 0)
				continue;
			if (same_cipher(&s->files[k], img))
				dup = 1;
			else
				clash = 1;
		}
		if (dup)
			continue; /* already staged for another slot */
		f = &s->files[s->nfiles++];
		f->encrypted = img->encrypted;
		memcpy(f->iv, img->iv, CU_IV_LEN);
		memcpy(f->cipher_sha256, img->cipher_sha256, CU_SHA256_LEN);
		if (clash) {
			/* One file, read two ways (plain and encrypted, or
			 * two IVs): at most one can be right, and the copy
			 * is staged once. */
			snprintf(f->name, sizeof(f->name), "%s", img->file);
			stn_fail(&f->problem, STN_E_IMAGE, s->src,
				 "%s is named by two images with different "
				 "cipher fields",
				 img->file);
			continue;
		}
		rc = stage_image(s, img, f, &hs, bufs, prog, d);
		if (rc == 0 && img->encrypted && !f->problem.code) {
			encrypted = 1;
			rc = decrypt_image(s, img, f, keys, &hs, bufs, prog, d);
		}
	}
	hasher_stop(&hs);
out:
	if (rc)
		s->spoiled = 1;
	cu_sha256_free(h);
	/* Plaintext passed through these buffers. */
	if (encrypted && bufs[0] && bufs[1]) {
		explicit_bzero(bufs[0], COPY_CHUNK);
		explicit_bzero(bufs[1], COPY_CHUNK);
	}
	free(bufs[0]);
	free(bufs[1]);
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

const char *md_stage_dir(const struct md_stage *s) { return s->dir; }

const struct cu_source *md_stage_source(const struct md_stage *s)
{
	return &s->source;
}

/* ---- keeping and removing ------------------------------------------------ */

/* Empties a staged directory: files, and the files of its subdirectories
 * (the layout is one level deep; deeper is not ours and is left). */
static void empty_dir(int dirfd, int depth)
{
	int fd = dup(dirfd);
	DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!dh) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(dh))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd, e->d_name, 0) == 0 || errno != EISDIR ||
		    depth > 0)
			continue;
		int sub =
		    openat(dirfd, e->d_name,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0) {
			empty_dir(sub, depth + 1);
			close(sub);
		}
		(void)unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
	}
	closedir(dh);
}

int md_stage_keep(struct md_stage *s, struct stn_diag *d)
{
	char kept[sizeof(s->dir)];
	const char *base = strrchr(s->dir, '/');

	if (s->kept)
		return 0;
	if (!base || strncmp(base + 1, "stage-", 6) != 0)
		return stn_fail(d, STN_E_INTERNAL, s->dir, "not a stage");
	if ((size_t)snprintf(kept, sizeof(kept), "%s/kept-%s", s->root,
			     base + 7) >= sizeof(kept))
		return stn_fail(d, STN_E_INTERNAL, s->dir, "path too long");
	if (rename(s->dir, kept) != 0)
		return stn_fail(d, STN_E_IO, s->dir, "cannot keep as %s: %s",
				kept, strerror(errno));
	snprintf(s->dir, sizeof(s->dir), "%s", kept);
	s->kept = 1;
	return 0;
}

void md_stage_free(struct md_stage *s)
{
	if (!s)
		return;
	if (s->dst_dirfd >= 0) {
		if (!s->kept)
			empty_dir(s->dst_dirfd, 0);
		close(s->dst_dirfd); /* releases the lock */
	}
	/* Best effort: if this fails a private directory is left under the
	 * staging area; md_stage_sweep removes it later. */
	if (s->dir[0] && !s->kept)
		(void)rmdir(s->dir);
	if (s->src_dirfd >= 0)
		close(s->src_dirfd);
	cu_manifest_free(s->manifest);
	free(s);
}

int md_stage_sweep(const char *staging_root, unsigned *removed,
		   struct stn_diag *d)
{
	unsigned count = 0;
	struct dirent *e;
	DIR *dh;
	int rootfd, rc;

	if ((rc = check_staging_root(staging_root, 0, d)))
		return rc;
	/* Exclusive: no other session is between creating a stage and
	 * locking it while this one decides what is dead. */
	if ((rc = lock_root(staging_root, LOCK_EX, &rootfd, d)))
		return rc;
	if (!(dh = fdopendir(rootfd))) {
		close(rootfd);
		return stn_fail(d, STN_E_IO, staging_root, "cannot list: %s",
				strerror(errno));
	}
	while ((e = readdir(dh))) {
		int fd;

		if (strncmp(e->d_name, "stage-", 6) != 0)
			continue;
		fd = openat(rootfd, e->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* A live stage holds this lock; a dead one cannot. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			empty_dir(fd, 0);
			if (unlinkat(rootfd, e->d_name, AT_REMOVEDIR) == 0)
				count++;
		}
		close(fd);
	}
	closedir(dh);
	if (removed)
		*removed = count;
	return 0;
}
