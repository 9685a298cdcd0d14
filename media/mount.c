/* media/mount.c: the appliance's automounter.  Kernel uevents arrive on a
 * netlink socket (only datagrams from the kernel itself, port id 0, are
 * believed); sysfs says whether a device is removable; mount(2) is tried
 * with each allowed file system type, read-only and without suid, device
 * nodes, exec or symlinks.  Nothing here trusts what is on the device: the
 * mount only makes it readable for discovery and staging. */
#include "media/mount.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "station/base/error.h"
#include "station/base/fileio.h"

/* linux/fs.h would clash with glibc's sys/mount.h; this is its value. */
#ifndef BLKROSET
#define BLKROSET _IO(0x12, 93)
#endif

#define UEVENT_MAX 8192 /* the kernel's uevent buffer is 2048 + env */

/* Tried in order; the kernel checks the superblock.  ext4 mounts ext2 and
 * ext3 too; `noload` skips journal replay, which would write. */
static const struct {
	const char *type, *data;
} fs_types[] = {
    {"vfat", ""},    {"exfat", ""}, {"ext4", "noload"},
    {"iso9660", ""}, {"udf", ""},
};

struct mounted {
	char name[32]; /* kernel name, e.g. sdb1 */
	char disk[32]; /* its disk, e.g. sdb; the same for a whole disk */
	char path[PATH_MAX];
	int report;    /* a report stick, read-write under the report root */
};

struct md_mounter {
	char root[PATH_MAX];
	char sysfs[PATH_MAX];
	int rootfd, nlfd;
	dev_t root_dev;
	/* report sticks (md_mounter_set_reports); reportsfd -1: none */
	char reports[PATH_MAX];
	int reportsfd;
	dev_t reports_dev;
	struct mounted mounts[MD_MOUNTS_MAX];
	size_t n;
};

/* ---- uevents and sysfs ----------------------------------------------------
 */

static int copy_value(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

int md_uevent_parse(const void *buf, size_t len, struct md_uevent *out)
{
	const char *p = buf, *end = p + len;
	struct md_uevent u;
	const char *at;

	memset(&u, 0, sizeof(u));
	if (len == 0 || len > UEVENT_MAX || p[len - 1] != '\0')
		return -1;
	/* udev's rebroadcasts start "libudev\0" with a binary header; the
	 * kernel's start "ACTION@DEVPATH". */
	at = strchr(p, '@');
	if (!at || strncmp(p, "libudev", 7) == 0)
		return -1;
	for (p += strlen(p) + 1; p < end; p += strlen(p) + 1) {
		int bad = 0;
		if (!strncmp(p, "ACTION=", 7))
			bad = copy_value(u.action, sizeof(u.action), p + 7);
		else if (!strncmp(p, "DEVPATH=", 8))
			bad = copy_value(u.devpath, sizeof(u.devpath), p + 8);
		else if (!strncmp(p, "SUBSYSTEM=", 10))
			bad = copy_value(u.subsystem, sizeof(u.subsystem),
					 p + 10);
		else if (!strncmp(p, "DEVNAME=", 8))
			bad = copy_value(u.devname, sizeof(u.devname), p + 8);
		else if (!strncmp(p, "DEVTYPE=", 8))
			bad = copy_value(u.devtype, sizeof(u.devtype), p + 8);
		else if (!strcmp(p, "DISK_MEDIA_CHANGE=1"))
			u.media_change = 1;
		else if (!strcmp(p, "DISK_EJECT_REQUEST=1"))
			u.eject = 1;
		if (bad)
			return -1;
	}
	if (!u.action[0] || !u.devpath[0])
		return -1;
	*out = u;
	return 0;
}

/* Kernel block device names we accept: [a-z0-9], 1 to 31 characters
 * (sdb1, mmcblk0p1, nvme0n1p1, loop3).  Nothing that could be a path. */
static int good_name(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > 31)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9')))
			return 0;
	return 1;
}

/* Reads a short sysfs attribute into buf; returns 0 or -1. */
static int read_attr(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The sysfs directory of a block device, resolved; and of its disk. */
static int sysfs_dirs(const char *sysfs, const char *name, char dev[PATH_MAX],
		      char disk[PATH_MAX])
{
	char link[PATH_MAX], probe[PATH_MAX + 16];
	struct stat st;

	if (!good_name(name))
		return -1;
	snprintf(link, sizeof(link), "%s/class/block/%s",
		 sysfs ? sysfs : "/sys", name);
	if (!realpath(link, dev))
		return -1;
	snprintf(disk, PATH_MAX, "%s", dev);
	snprintf(probe, sizeof(probe), "%s/partition", dev);
	if (stat(probe, &st) == 0) {
		char *slash = strrchr(disk, '/');
		if (!slash)
			return -1;
		*slash = '\0';
	}
	return 0;
}

int md_block_removable(const char *sysfs, const char *name)
{
	char dev[PATH_MAX], disk[PATH_MAX], attr[PATH_MAX + 16], v[16];

	if (sysfs_dirs(sysfs, name, dev, disk) != 0)
		return 0;
	snprintf(attr, sizeof(attr), "%s/removable", disk);
	if (read_attr(attr, v, sizeof(v)) == 0 && strcmp(v, "1") == 0)
		return 1;
	/* USB sticks and card readers that do not set the flag, and USB
	 * disks, hang off a USB host controller. */
	return strstr(dev, "/usb") != NULL;
}

static int is_partition(const char *sysfs, const char *name)
{
	char dev[PATH_MAX], disk[PATH_MAX];

	return sysfs_dirs(sysfs, name, dev, disk) == 0 && strcmp(dev, disk);
}

static void disk_of(const char *sysfs, const char *name, char out[32])
{
	char dev[PATH_MAX], disk[PATH_MAX];
	const char *base;

	snprintf(out, 32, "%s", name);
	if (sysfs_dirs(sysfs, name, dev, disk) == 0 &&
	    (base = strrchr(disk, '/')) && good_name(base + 1))
		snprintf(out, 32, "%s", base + 1);
}

static int has_partitions(const char *sysfs, const char *name)
{
	char dev[PATH_MAX], disk[PATH_MAX];
	struct dirent *e;
	size_t n = strlen(name);
	int found = 0;
	DIR *dh;

	if (sysfs_dirs(sysfs, name, dev, disk) != 0 || !(dh = opendir(dev)))
		return 0;
	while (!found && (e = readdir(dh))) {
		char probe[PATH_MAX + 300];
		struct stat st;
		if (strncmp(e->d_name, name, n) != 0 || !e->d_name[n])
			continue;
		snprintf(probe, sizeof(probe), "%s/%s/partition", dev,
			 e->d_name);
		found = stat(probe, &st) == 0;
	}
	closedir(dh);
	return found;
}

/* Media present: a card reader without a card has size 0. */
static int has_media(const char *sysfs, const char *name)
{
	char dev[PATH_MAX], disk[PATH_MAX], attr[PATH_MAX + 16], v[32];

	if (sysfs_dirs(sysfs, name, dev, disk) != 0)
		return 0;
	snprintf(attr, sizeof(attr), "%s/size", dev);
	return read_attr(attr, v, sizeof(v)) == 0 && strcmp(v, "0") != 0 &&
	       v[0];
}

/* Is a device with this number mounted anywhere already (the system
 * disk, or mounted by someone else)?  Writes the place into where. */
static int mounted_elsewhere(dev_t rdev, char *where, size_t cap)
{
	char want[32], line[8192];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int found = 0;

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "%u:%u", major(rdev), minor(rdev));
	while (!found && fgets(line, sizeof(line), f)) {
		char majmin[32], mp[4096];
		if (sscanf(line, "%*u %*u %31s %*s %4095s", majmin, mp) == 2 &&
		    strcmp(majmin, want) == 0) {
			snprintf(where, cap, "%s", mp);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

/* ---- mounting -------------------------------------------------------------
 */

static void refused(const struct md_mount_events *ev, const char *name,
		    const struct stn_diag *why)
{
	if (ev && ev->refused)
		ev->refused(ev->ctx, name, why);
}

static struct mounted *find_mount(struct md_mounter *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->mounts[i].name, name))
			return &m->mounts[i];
	return NULL;
}

/* mount(2) with each type, first with nosymfollow, then, on a kernel that
 * refuses the flag (before 5.10), without.  Returns the type index or -1
 * with *err the most telling errno; *flags gets the flags that worked. */
static int try_mount(const char *devnode, const char *path, int *err,
		     unsigned long *flags)
{
	const unsigned long base =
	    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME;
	const unsigned long extra[] = {MS_NOSYMFOLLOW, 0};

	*err = ENODEV;
	for (size_t pass = 0; pass < 2; pass++) {
		int all_einval = 1;
		for (size_t i = 0; i < sizeof(fs_types) / sizeof(*fs_types);
		     i++) {
			if (mount(devnode, path, fs_types[i].type,
				  base | extra[pass], fs_types[i].data) == 0) {
				*flags = base | extra[pass];
				return (int)i;
			}
			/* ENODEV: type not in this kernel; EINVAL: not this
			 * type (or the flag).  Anything else says more about
			 * the device, and is what the operator is told. */
			if (errno != EINVAL && errno != ENODEV)
				all_einval = 0;
			if (errno != ENODEV && errno != EINVAL)
				*err = errno;
			else if (*err == ENODEV)
				*err = errno;
			if (errno == EBUSY)
				return -1;
		}
		if (!all_einval)
			break; /* the flag was not the problem */
	}
	return -1;
}

/* Sets the block device read-only (on 1) or writable (on 0). */
static int set_block_ro(const char *devnode, int on)
{
	int fd = open(devnode, O_RDONLY | O_CLOEXEC | O_NONBLOCK), rc;

	if (fd < 0)
		return -1;
	rc = ioctl(fd, BLKROSET, &on);
	close(fd);
	return rc;
}

/* NAME in the directory dirfd (on device dev) made, or already there as a
 * plain directory of that file system; *created says which.  0 or -1. */
static int mount_point(int dirfd, dev_t dev, const char *name, int *created)
{
	struct stat st;

	*created = 0;
	if (mkdirat(dirfd, name, 0700) == 0) {
		*created = 1;
		return 0;
	}
	if (errno != EEXIST ||
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISDIR(st.st_mode) || st.st_dev != dev)
		return -1;
	return 0;
}

/* Whether the file system mounted at path (not the directory under it,
 * on device outer) has the marker at its top: a regular file, not a
 * symlink to one, not a directory. */
static int has_marker(const char *path, dev_t outer)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int yes;

	if (fd < 0)
		return 0;
	yes = fstat(fd, &st) == 0 && st.st_dev != outer &&
	      fstatat(fd, MD_REPORT_MARKER, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	      S_ISREG(st.st_mode);
	close(fd);
	return yes;
}

/* With a report root: mount devnode read-only (the block device is
 * read-only already) at REPORTS/NAME and look for the marker.  Returns 1
 * when it is a report stick, now mounted read-write there (*t: its type),
 * 0 when it is not (nothing of the probe left: the caller mounts it as
 * any other medium), -1 with why set when it is one that cannot be made
 * writable. */
static int probe_report(struct md_mounter *m, const char *name,
			const char *devnode, char path[PATH_MAX], int *t,
			struct stn_diag *why)
{
	unsigned long flags = 0;
	int created, err;

	if ((size_t)snprintf(path, PATH_MAX, "%s/%s", m->reports, name) >=
	    PATH_MAX) {
		stn_fail(why, STN_E_CONFIG, m->reports,
			 "report root path too long");
		return -1;
	}
	if (mount_point(m->reportsfd, m->reports_dev, name, &created) != 0) {
		stn_fail(why, STN_E_UNSAFE, path,
			 "mount point is not a plain directory of the "
			 "report root");
		return -1;
	}
	*t = try_mount(devnode, path, &err, &flags);
	if (*t >= 0 && has_marker(path, m->reports_dev)) {
		/* Its owner made it for reports: writable at the block layer
		 * and the mount, still without suid, device nodes, exec or
		 * symlinks.  A remount, not a second mount: the device
		 * cannot change in between. */
		if (set_block_ro(devnode, 0) == 0 &&
		    mount(NULL, path, NULL, MS_REMOUNT | (flags & ~MS_RDONLY),
			  fs_types[*t].data) == 0)
			return 1;
		err = errno;
		(void)umount2(path, MNT_DETACH);
		(void)set_block_ro(devnode, 1);
		if (created)
			(void)unlinkat(m->reportsfd, name, AT_REMOVEDIR);
		stn_fail(why, STN_E_IO, devnode,
			 "report stick (%s at its top) cannot be mounted "
			 "read-write: %s",
			 MD_REPORT_MARKER, strerror(err));
		return -1;
	}
	/* Not a report stick, or no file system we read: the medium's own
	 * mount (or refusal) follows, as without a report root. */
	if (*t >= 0 && umount2(path, 0) != 0)
		(void)umount2(path, MNT_DETACH);
	if (created)
		(void)unlinkat(m->reportsfd, name, AT_REMOVEDIR);
	return 0;
}

int md_mount_device(struct md_mounter *m, const char *name,
		    const struct md_mount_events *ev, struct stn_diag *d)
{
	char devnode[64], path[PATH_MAX], elsewhere[4096];
	struct stat st;
	struct mounted *mt;
	struct stn_diag why;
	unsigned long flags = 0;
	int created = 0, err = ENODEV, t = -1, report = 0;

	stn_diag_init(&why);
	if (!good_name(name)) {
		stn_fail(&why, STN_E_USAGE, name, "not a block device name");
		goto fail;
	}
	if (find_mount(m, name))
		return 0;
	snprintf(devnode, sizeof(devnode), "/dev/%s", name);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", m->root, name) >=
	    sizeof(path)) {
		stn_fail(&why, STN_E_CONFIG, m->root,
			 "media root path too long");
		goto fail;
	}
	if (m->n == MD_MOUNTS_MAX) {
		stn_fail(&why, STN_E_TOOBIG, devnode,
			 "%d devices are mounted already", MD_MOUNTS_MAX);
		goto fail;
	}
	if (stat(devnode, &st) != 0 || !S_ISBLK(st.st_mode)) {
		stn_fail(&why, STN_E_UNSAFE, devnode, "not a block device");
		goto fail;
	}
	if (mounted_elsewhere(st.st_rdev, elsewhere, sizeof(elsewhere))) {
		stn_fail(&why, STN_E_UNSAFE, devnode,
			 "already mounted at %s; not media", elsewhere);
		goto fail;
	}
	/* Read-only at the block layer too: then no file system code path
	 * (a dirty bit, a journal replay, an atime) can write the stick. */
	(void)set_block_ro(devnode, 1);
	if (m->reportsfd >= 0) {
		char rpath[PATH_MAX];
		report = probe_report(m, name, devnode, rpath, &t, &why);
		if (report < 0)
			goto fail;
		if (report)
			memcpy(path, rpath, sizeof(path));
	}
	if (!report) {
		if (mount_point(m->rootfd, m->root_dev, name, &created) != 0) {
			stn_fail(&why, STN_E_UNSAFE, path,
				 "mount point is not a plain directory of "
				 "the media root");
			goto fail;
		}
		t = try_mount(devnode, path, &err, &flags);
	}
	if (t < 0) {
		if (created)
			(void)unlinkat(m->rootfd, name, AT_REMOVEDIR);
		if (err == EINVAL || err == ENODEV)
			stn_fail(&why, STN_E_IO, devnode,
				 "no file system this station reads "
				 "(vfat, exfat, ext4, iso9660, udf)");
		else
			stn_fail(&why, STN_E_IO, devnode,
				 "cannot mount read-only: %s", strerror(err));
		goto fail;
	}
	mt = &m->mounts[m->n++];
	snprintf(mt->name, sizeof(mt->name), "%s", name);
	disk_of(m->sysfs, name, mt->disk);
	snprintf(mt->path, sizeof(mt->path), "%s", path);
	mt->report = report;
	if (report && ev && ev->report_mounted)
		ev->report_mounted(ev->ctx, name, mt->path, fs_types[t].type);
	else if (!report && ev && ev->mounted)
		ev->mounted(ev->ctx, name, mt->path, fs_types[t].type);
	return 0;
fail:
	refused(ev, name, &why);
	return stn_fail(d, why.code, why.where, "%s", why.text);
}

static void unmount_at(struct md_mounter *m, size_t i,
		       const struct md_mount_events *ev)
{
	struct mounted mt = m->mounts[i];

	/* Detach: a reader still inside (staging) gets EIO or ENODEV on its
	 * next read and aborts cleanly; the mount goes when it lets go. */
	(void)umount2(mt.path, MNT_DETACH);
	(void)unlinkat(mt.report ? m->reportsfd : m->rootfd, mt.name,
		       AT_REMOVEDIR);
	m->mounts[i] = m->mounts[--m->n];
	if (ev && ev->unmounted)
		ev->unmounted(ev->ctx, mt.name, mt.path);
}

int md_unmount_device(struct md_mounter *m, const char *name,
		      const struct md_mount_events *ev, struct stn_diag *d)
{
	(void)d;
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->mounts[i].name, name)) {
			unmount_at(m, i, ev);
			return 1;
		}
	return 0;
}

/* The device and every partition of it that we mounted. */
static int unmount_with_partitions(struct md_mounter *m, const char *name,
				   const struct md_mount_events *ev)
{
	int count = 0;

	for (size_t i = m->n; i-- > 0;)
		if (!strcmp(m->mounts[i].name, name) ||
		    !strcmp(m->mounts[i].disk, name)) {
			unmount_at(m, i, ev);
			count++;
		}
	return count;
}

/* Mount name if it is removable media we should mount now. */
static int maybe_mount(struct md_mounter *m, const char *name,
		       const struct md_mount_events *ev, struct stn_diag *d)
{
	if (find_mount(m, name) || !md_block_removable(m->sysfs, name) ||
	    !has_media(m->sysfs, name))
		return 0;
	/* A partitioned disk is mounted through its partitions. */
	if (!is_partition(m->sysfs, name) && has_partitions(m->sysfs, name))
		return 0;
	int rc = md_mount_device(m, name, ev, d);
	return rc == 0 ? 1 : rc;
}

int md_mounter_handle(struct md_mounter *m, const struct md_uevent *u,
		      const struct md_mount_events *ev, struct stn_diag *d)
{
	if (strcmp(u->subsystem, "block") != 0 || !good_name(u->devname))
		return 0;
	if (!strcmp(u->action, "remove"))
		return unmount_with_partitions(m, u->devname, ev) > 0;
	/* The eject button, or a card reader whose card was taken out. */
	if (!strcmp(u->action, "change") &&
	    (u->eject || (u->media_change && !has_media(m->sysfs, u->devname))))
		return unmount_with_partitions(m, u->devname, ev) > 0;
	if (!strcmp(u->action, "add") || !strcmp(u->action, "change"))
		return maybe_mount(m, u->devname, ev, d);
	return 0;
}

int md_mounter_coldplug(struct md_mounter *m, const struct md_mount_events *ev,
			struct stn_diag *d)
{
	char dir[PATH_MAX + 16];
	struct dirent *e;
	int count = 0;
	DIR *dh;

	/* Forget mounts whose device went while we were not listening. */
	for (size_t i = m->n; i-- > 0;)
		if (!has_media(m->sysfs, m->mounts[i].name))
			unmount_at(m, i, ev);
	snprintf(dir, sizeof(dir), "%s/class/block", m->sysfs);
	if (!(dh = opendir(dir)))
		return stn_fail(d, STN_E_IO, dir, "cannot list: %s",
				strerror(errno));
	while ((e = readdir(dh))) {
		struct stn_diag why;
		stn_diag_init(&why);
		if (good_name(e->d_name) &&
		    maybe_mount(m, e->d_name, ev, &why) == 1)
			count++;
	}
	closedir(dh);
	return count;
}

int md_mounter_dispatch(struct md_mounter *m, const struct md_mount_events *ev,
			struct stn_diag *d)
{
	char *buf = malloc(UEVENT_MAX);
	int count = 0, rc = 0;

	if (!buf)
		return stn_fail(d, STN_E_NOMEM, "uevent", "buffer");
	for (;;) {
		struct sockaddr_nl sa;
		struct iovec iov = {buf, UEVENT_MAX};
		struct msghdr msg = {.msg_name = &sa,
				     .msg_namelen = sizeof(sa),
				     .msg_iov = &iov,
				     .msg_iovlen = 1};
		struct md_uevent u;
		struct stn_diag why;
		ssize_t n = recvmsg(m->nlfd, &msg, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0 && errno == ENOBUFS) {
			/* the kernel dropped events: look at what is there */
			stn_diag_init(&why);
			if (md_mounter_coldplug(m, ev, &why) > 0)
				count++;
			continue;
		}
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, "uevent", "netlink: %s",
				      strerror(errno));
			break;
		}
		/* Only the kernel (port id 0) is believed; truncated
		 * messages are not parsed. */
		if (msg.msg_namelen != sizeof(sa) || sa.nl_pid != 0 ||
		    (msg.msg_flags & MSG_TRUNC) ||
		    md_uevent_parse(buf, (size_t)n, &u) != 0)
			continue;
		stn_diag_init(&why);
		if (md_mounter_handle(m, &u, ev, &why) > 0)
			count++;
	}
	free(buf);
	return rc ? rc : count;
}

int md_mounter_new(const char *media_root, const char *sysfs,
		   struct md_mounter **out, struct stn_diag *d)
{
	struct md_mounter *m = calloc(1, sizeof(*m));
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
	struct stat st;
	int size = 1 << 20, rc = 0;

	if (!m)
		return stn_fail(d, STN_E_NOMEM, media_root, "mounter");
	m->rootfd = m->nlfd = m->reportsfd = -1;
	if (geteuid() != 0) {
		rc = stn_fail(d, STN_E_CONFIG, media_root,
			      "mounting media (appliance mode) needs root");
		goto out;
	}
	if (!realpath(media_root, m->root) ||
	    (m->rootfd = open(m->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
		0 ||
	    fstat(m->rootfd, &st) != 0) {
		rc = stn_fail(d, STN_E_CONFIG, media_root, "media root: %s",
			      strerror(errno));
		goto out;
	}
	m->root_dev = st.st_dev;
	snprintf(m->sysfs, sizeof(m->sysfs), "%s", sysfs ? sysfs : "/sys");
	m->nlfd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			 NETLINK_KOBJECT_UEVENT);
	if (m->nlfd < 0 || bind(m->nlfd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = stn_fail(d, STN_E_IO, "uevent", "netlink: %s",
			      strerror(errno));
		goto out;
	}
	/* Room for a burst (a hub with several sticks); overflow is
	 * handled by a coldplug scan anyway. */
	(void)setsockopt(m->nlfd, SOL_SOCKET, SO_RCVBUFFORCE, &size,
			 sizeof(size));
	*out = m;
	m = NULL;
out:
	md_mounter_free(m);
	return rc;
}


int md_mounter_set_reports(struct md_mounter *m, const char *dir,
			   struct stn_diag *d)
{
	char real[PATH_MAX];
	struct stat st;
	int fd;

	if (!realpath(dir, real) ||
	    (fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return stn_fail(d, STN_E_CONFIG, dir, "report root: %s",
				strerror(errno));
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return stn_fail(d, STN_E_CONFIG, dir, "report root: %s",
				strerror(e));
	}
	/* A report stick below the media root would be searched for
	 * bundles; the media root below it would be written beside. */
	if (stn_path_within(real, m->root) || stn_path_within(m->root, real)) {
		close(fd);
		return stn_fail(d, STN_E_CONFIG, dir,
				"report root %s and media root %s overlap: a "
				"report stick must never be a bundle source",
				real, m->root);
	}
	if (m->reportsfd >= 0)
		close(m->reportsfd);
	m->reportsfd = fd;
	m->reports_dev = st.st_dev;
	snprintf(m->reports, sizeof(m->reports), "%s", real);
	return 0;
}

int md_mounter_fd(const struct md_mounter *m) { return m->nlfd; }

void md_mounter_free(struct md_mounter *m)
{
	if (!m)
		return;
	while (m->n)
		unmount_at(m, m->n - 1, NULL);
	if (m->nlfd >= 0)
		close(m->nlfd);
	if (m->rootfd >= 0)
		close(m->rootfd);
	if (m->reportsfd >= 0)
		close(m->reportsfd);
	free(m);
}
