/* station/base/fileio.c: EINTR, short counts and durability handled in one
 * place, so no writer of a record, a CRL, a floor or a report has its own
 * loop or forgets the directory fsync (issue 12: seven writers, one did). */
#include "station/base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "station/base/error.h"

ssize_t stn_read_retry(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

int stn_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int stn_read_all(int fd, size_t max, char **out, size_t *len)
{
	size_t cap = max < 4096 ? max + 1 : 4096, have = 0;
	char *buf = malloc(cap + 1), *grown;
	int err;

	if (!buf)
		return errno = ENOMEM, -1;
	for (;;) {
		if (have == cap) {
			/* Grow geometrically, never past max + 1: the byte
			 * past max is all it takes to refuse. */
			size_t want = cap > (max + 1) / 2 ? max + 1 : cap * 2;
			if (want == cap)
				break;
			if (!(grown = realloc(buf, want + 1))) {
				err = ENOMEM;
				goto fail;
			}
			buf = grown;
			cap = want;
		}
		ssize_t n = stn_read_retry(fd, buf + have, cap - have);
		if (n < 0) {
			err = errno;
			goto fail;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	if (have > max) {
		err = EFBIG;
		goto fail;
	}
	buf[have] = '\0';
	*out = buf;
	*len = have;
	return 0;
fail:
	free(buf);
	errno = err;
	return -1;
}

int stn_fsync_parent(const char *path, struct stn_diag *d)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return stn_fail(d, STN_E_IO, path, "path too long");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return stn_fail(d, STN_E_IO, dir, "cannot open: %s",
				strerror(errno));
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = stn_fail(d, STN_E_IO, dir, "cannot fsync: %s",
			      strerror(errno));
	close(fd);
	return rc;
}

/* Writes, fsyncs and closes fd (always closed); name is for the message. */
static int write_sync_close(int fd, const char *name, const void *buf,
			    size_t len, struct stn_diag *d)
{
	int rc = 0;

	if (stn_write_all(fd, buf, len) != 0)
		rc = stn_fail(d, STN_E_IO, name, "cannot write: %s",
			      strerror(errno));
	else if (fsync(fd) != 0)
		rc = stn_fail(d, STN_E_IO, name, "cannot fsync: %s",
			      strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = stn_fail(d, STN_E_IO, name, "cannot close: %s",
			      strerror(errno));
	return rc;
}

int stn_create_durable(const char *path, mode_t mode, const void *buf,
		       size_t len, struct stn_diag *d)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
				    O_NOFOLLOW, mode);
	int rc;

	if (fd < 0)
		return stn_fail(d, STN_E_IO, path, "cannot create: %s",
				strerror(errno));
	rc = write_sync_close(fd, path, buf, len, d);
	if (rc == 0)
		rc = stn_fsync_parent(path, d);
	if (rc)
		unlink(path);
	return rc;
}

int stn_replace_durable(const char *path, mode_t mode, const void *buf,
			size_t len, struct stn_diag *d)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return stn_fail(d, STN_E_IO, path, "path too long");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return stn_fail(d, STN_E_IO, path, "cannot write: %s",
				strerror(errno));
	/* mkostemp makes 0600; anything wider is the caller's choice. */
	if (fchmod(fd, mode) != 0) {
		rc = stn_fail(d, STN_E_IO, tmp, "cannot set mode: %s",
			      strerror(errno));
		close(fd);
		goto out;
	}
	rc = write_sync_close(fd, tmp, buf, len, d);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = stn_fail(d, STN_E_IO, path, "cannot rename into place: %s",
			      strerror(errno));
out:
	if (rc) {
		unlink(tmp);
		return rc;
	}
	/* The rename is only durable once the directory is. */
	return stn_fsync_parent(path, d);
}

int stn_path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (!strcmp(b, "/"))
		return 1;
	return !strncmp(a, b, n) && (a[n] == '\0' || a[n] == '/');
}
