/* media/mount.h: appliance mode, where the station (running as root, by
 * setting) is its own automounter.  It listens to the kernel's block device
 * events (netlink uevents; no udev needed), and mounts removable devices
 * (a disk whose `removable` flag is set, or any disk on a USB bus) under
 * the media root, read-only, nosuid, nodev, noexec, noatime and, where the
 * kernel has it, nosymfollow; the block device itself is first set
 * read-only, so not even journal replay writes to a courier's stick.  A
 * device removed or its medium ejected is unmounted (detached: a copy in
 * progress fails cleanly on its next read) and its mount point removed.
 * Which file systems: vfat, exfat, ext4 (with ext2/ext3, journal not
 * replayed: `noload`), iso9660, udf; the first that mounts wins.
 *
 * Report sticks (md_mounter_set_reports, docs/media.md): with a report
 * root, a device whose file system holds a regular file MD_REPORT_MARKER at
 * its top is mounted read-WRITE (still nosuid, nodev, noexec, noatime,
 * nosymfollow) under the report root instead, outside the media root, so
 * it is never a bundle source; every other device as above. */
#ifndef MD_MOUNT_H
#define MD_MOUNT_H

#include <stddef.h>

struct stn_diag;

#define MD_MOUNTS_MAX 16 /* devices mounted at once */

/* The file at the top of a stick that makes it a report stick. */
#define MD_REPORT_MARKER "STATION-REPORTS"

/* One kernel uevent, the fields staging cares about (strings from the
 * kernel, each bounded). */
struct md_uevent {
	char action[16];    /* "add", "remove", "change" */
	char devpath[512];  /* "/devices/.../block/sdb/sdb1" */
	char subsystem[32]; /* "block" */
	char devname[64];   /* "sdb1" */
	char devtype[16];   /* "disk" or "partition" */
	int media_change;   /* DISK_MEDIA_CHANGE=1: a card in or out */
	int eject;	    /* DISK_EJECT_REQUEST=1: the eject button */
};

/* Parses a kernel uevent datagram ("ACTION@DEVPATH\0KEY=VALUE\0...").
 * Messages from udev (the "libudev" header) and anything malformed are
 * refused.  Returns 0 or -1. */
int md_uevent_parse(const void *buf, size_t len, struct md_uevent *out);

/* Whether block device `name` (as in /sys/class/block/NAME) is removable
 * media by the rule above; sysfs NULL means "/sys".  0 when not, or when
 * sysfs does not know it. */
int md_block_removable(const char *sysfs, const char *name);

struct md_mount_events {
	/* dev is the kernel name ("sdb1"); all may be NULL. */
	void (*mounted)(void *ctx, const char *dev, const char *path,
			const char *fstype);
	void (*unmounted)(void *ctx, const char *dev, const char *path);
	void (*refused)(void *ctx, const char *dev, const struct stn_diag *why);
	/* A report stick mounted read-write (its unmount is `unmounted`). */
	void (*report_mounted)(void *ctx, const char *dev, const char *path,
			       const char *fstype);
	void *ctx;
};

struct md_mounter;

/*
 * Listen for block devices; mount under media_root (which must exist).
 * sysfs as above (tests pass a fake tree to say which devices count as
 * removable).  Errors: STN_E_CONFIG (not root, media root unusable),
 * STN_E_IO (netlink), STN_E_NOMEM.
 */
int md_mounter_new(const char *media_root, const char *sysfs,
		   struct md_mounter **out, struct stn_diag *d);

/*
 * Mount report sticks (see above) at DIR/NAME from now on; call before
 * md_mounter_coldplug.  DIR must exist and neither be nor lie below the
 * media root, nor contain it.  Errors: STN_E_CONFIG (naming dir).
 */
int md_mounter_set_reports(struct md_mounter *m, const char *dir,
			   struct stn_diag *d);

/* Readable when uevents are waiting for md_mounter_dispatch (borrowed). */
int md_mounter_fd(const struct md_mounter *m);

/* Mount the removable devices already present (at start, and after the
 * kernel dropped events).  Returns the number mounted or a negative code;
 * devices that cannot be mounted are reported through ev->refused. */
int md_mounter_coldplug(struct md_mounter *m, const struct md_mount_events *ev,
			struct stn_diag *d);

/* Read every waiting uevent (without blocking) and act on each with
 * md_mounter_handle.  Returns the number of mounts and unmounts done. */
int md_mounter_dispatch(struct md_mounter *m, const struct md_mount_events *ev,
			struct stn_diag *d);

/* Act on one event: a removable disk without partitions or a removable
 * partition added is mounted; a device removed, or whose medium is gone,
 * is unmounted.  Returns 1 when it mounted or unmounted, 0 when the event
 * is not ours, or a negative code (also reported through ev->refused). */
int md_mounter_handle(struct md_mounter *m, const struct md_uevent *u,
		      const struct md_mount_events *ev, struct stn_diag *d);

/*
 * Mount /dev/NAME at MEDIA_ROOT/NAME as described above (a report stick at
 * REPORT_ROOT/NAME, reported through ev->report_mounted), whatever sysfs
 * says (the caller decided it is media).  Errors: STN_E_USAGE (bad name),
 * STN_E_UNSAFE (not a block device, mount point not a plain directory),
 * STN_E_IO (no supported file system, or the mount failed, with the
 * kernel's reason; a report stick that cannot be made writable),
 * STN_E_TOOBIG (MD_MOUNTS_MAX reached).
 */
int md_mount_device(struct md_mounter *m, const char *name,
		    const struct md_mount_events *ev, struct stn_diag *d);

/* Unmount what md_mount_device mounted for NAME (eject): detached, mount
 * point removed.  Returns 1 when done, 0 when NAME was not mounted by us. */
int md_unmount_device(struct md_mounter *m, const char *name,
		      const struct md_mount_events *ev, struct stn_diag *d);

/* Unmounts everything it mounted, and frees.  NULL is fine. */
void md_mounter_free(struct md_mounter *m);

#endif
