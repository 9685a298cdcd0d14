/* station/base/fileio.h: file I/O done once: reads and writes through
 * EINTR and short counts, a bounded read of a whole file, and the two
 * durable writes (a new file, and a file replaced whole), each fsynced
 * with its directory so a power cut leaves the old state or the new. */
#ifndef STN_FILEIO_H
#define STN_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

struct stn_diag;

/* read(2), retried while it fails with EINTR; otherwise its result. */
ssize_t stn_read_retry(int fd, void *buf, size_t len);
/* Writes all len bytes through EINTR and short writes.  Returns 0, or -1
 * with errno set (what was written before the failure stays written). */
int stn_write_all(int fd, const void *buf, size_t len);
/* Reads fd to its end into a new NUL-terminated buffer (the caller frees
 * it), refusing more than max bytes: one byte past max is read, so a file
 * that grows is caught.  Returns 0, or -1 with errno EFBIG (over max),
 * ENOMEM, or read's; *out and *len are written only on success. */
int stn_read_all(int fd, size_t max, char **out, size_t *len);

/* Creates path, which must not exist (O_EXCL, no symlink followed), with
 * mode, writes buf, fsyncs it, then fsyncs its directory.  On a failure
 * after the create the file is removed.  Returns 0 or STN_E_IO with d
 * naming path and the cause. */
int stn_create_durable(const char *path, mode_t mode, const void *buf,
		       size_t len, struct stn_diag *d);
/* Replaces path whole: a temp file of this call's own in the same
 * directory (mkostemp, so two writers never share one), buf written and
 * fsynced, mode set, renamed over path, the directory fsynced.  A failure
 * before the rename leaves path as it was and no temp behind.  Returns 0
 * or STN_E_IO with d naming the file and the cause. */
int stn_replace_durable(const char *path, mode_t mode, const void *buf,
			size_t len, struct stn_diag *d);
/* Fsyncs the directory that holds path, so an entry made or renamed there
 * survives a power cut.  A file system that cannot fsync a directory
 * (EINVAL) is not an error.  Returns 0 or STN_E_IO. */
int stn_fsync_parent(const char *path, struct stn_diag *d);

/* Whether path a is b or below it, compared as text (both absolute and
 * already normalised or resolved by the caller): "/a/bc" is not below
 * "/a/b". */
int stn_path_within(const char *a, const char *b);

#endif
