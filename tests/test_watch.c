/* tests/test_watch.c: media appearing and disappearing become events
 * without a polling loop (the mount table and inotify wake the watch), and
 * in appliance mode removable block devices are mounted read-only, nosuid,
 * nodev, noexec from kernel uevents and unmounted when they go.  Tests
 * that need root, loop devices or mkfs say so and skip otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "media/discover.h"
#include "media/mount.h"
#include "media/watch.h"
#include "station/base/error.h"
#include "station/release.h"
#include "tests/helpers.h"

static char *dir;
static char loopdev[64]; /* set while a test holds a loop device */

static int setup_each(void **state)
{
	(void)state;
	dir = th_tempdir();
	loopdev[0] = '\0';
	return 0;
}

static int teardown_each(void **state)
{
	char cmd[2300];

	(void)state;
	/* whatever a failed test left mounted or attached */
	snprintf(cmd, sizeof(cmd),
		 "grep -o ' %s[^ ]*' /proc/self/mountinfo | sort -r | "
		 "while read m; do umount -l \"$m\"; done 2>/dev/null",
		 dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup: umount failed\n");
	if (loopdev[0]) {
		snprintf(cmd, sizeof(cmd), "losetup -d %s 2>/dev/null",
			 loopdev);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup: cannot detach %s\n", loopdev);
	}
	th_rmrf(dir);
	free(dir);
	return 0;
}

static void path_of(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "%s/%s", dir, rel);
}

/* ---- events, recorded ------------------------------------------------------
 */

struct seen {
	int n;
	char lines[32][600];
};

static void record(void *ctx, enum md_media_event ev,
		   const struct md_mount_entry *m)
{
	struct seen *s = ctx;
	static const char *const names[] = {"", "added", "removed", "changed"};

	if (s->n < 32)
		snprintf(s->lines[s->n++], sizeof(s->lines[0]),
			 "%s %.400s %.32s %.100s%s", names[ev], m->path,
			 m->fstype, m->source, m->readonly ? " ro" : "");
}

static int saw(const struct seen *s, const char *line)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->lines[i], line) == 0)
			return 1;
	return 0;
}

static void write_mountinfo(const char *file, const char *root,
			    const char *extra)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
		 "40 22 8:17 / %s/usb0 ro,nosuid,nodev,noexec shared:2 - vfat "
		 "/dev/sdb1 ro,fmask=0022\n"
		 "41 22 8:33 / %s/my\\040stick rw,nosuid master:3 - ext4 "
		 "/dev/sdc1 rw\n"
		 "42 22 0:50 / %s2/other ro - tmpfs none ro\n"
		 "this line is not a mount\n"
		 "%s",
		 root, root, root, extra);
	th_write_str(file, text);
}

static void collect_entry(void *ctx, const struct md_mount_entry *m)
{
	record(ctx, MD_MEDIA_ADDED, m);
}

static void
mounts_under_reads_mountinfo_with_escapes_and_only_below_root(void **state)
{
	char mi[1024], line[1200];
	struct seen s = {0};
	struct stn_diag d;

	(void)state;
	path_of(mi, sizeof(mi), "mountinfo");
	write_mountinfo(mi, dir, "");
	stn_diag_init(&d);
	assert_int_equal(md_mounts_under(dir, mi, collect_entry, &s, &d), 0);
	assert_int_equal(s.n, 2); /* not /, not ROOT2/other */
	snprintf(line, sizeof(line), "added %s/usb0 vfat /dev/sdb1 ro", dir);
	assert_true(saw(&s, line));
	snprintf(line, sizeof(line), "added %s/my stick ext4 /dev/sdc1", dir);
	assert_true(saw(&s, line));
}

static void watch_reports_mounts_added_and_removed_by_mount_id(void **state)
{
	char mi[1024], line[1200], extra[600];
	struct md_watch *w = NULL;
	struct seen s = {0};
	struct md_watch_events ev = {record, &s};
	struct stn_diag d;

	(void)state;
	path_of(mi, sizeof(mi), "mountinfo");
	write_mountinfo(mi, dir, "");
	stn_diag_init(&d);
	assert_int_equal(md_watch_new(dir, mi, &w, &d), 0);
	/* the first poll reports what is already there, without waiting */
	assert_int_equal(md_watch_poll(w, -1, &ev, &d), 2);
	assert_int_equal(md_watch_poll(w, 0, &ev, &d), 0); /* no change */
	/* usb0 pulled and another mounted; the same path under a new id is
	 * a new medium */
	s.n = 0;
	snprintf(extra, sizeof(extra),
		 "43 22 8:49 / %s/usb1 ro - exfat /dev/sdd1 ro\n", dir);
	write_mountinfo(mi, dir, extra);
	{
		/* drop line 40 (usb0) */
		char text[4096], *at, *end;
		FILE *f = fopen(mi, "r");
		size_t n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		at = strstr(text, "40 22");
		end = strchr(at, '\n') + 1;
		memmove(at, end, strlen(end) + 1);
		th_write_str(mi, text);
	}
	assert_int_equal(md_watch_poll(w, 0, &ev, &d), 2);
	snprintf(line, sizeof(line), "removed %s/usb0 vfat /dev/sdb1 ro", dir);
	assert_true(saw(&s, line));
	snprintf(line, sizeof(line), "added %s/usb1 exfat /dev/sdd1 ro", dir);
	assert_true(saw(&s, line));
	md_watch_free(w);
}

static void
watch_reports_entries_made_in_the_root_but_not_dot_files(void **state)
{
	char mi[1024], p[1024], line[1200];
	struct md_watch *w = NULL;
	struct seen s = {0};
	struct md_watch_events ev = {record, &s};
	struct stn_diag d;

	(void)state;
	path_of(mi, sizeof(mi), "mountinfo");
	th_write_str(mi, "");
	stn_diag_init(&d);
	assert_int_equal(md_watch_new(dir, mi, &w, &d), 0);
	assert_int_equal(md_watch_poll(w, 0, &ev, &d), 0);
	path_of(p, sizeof(p), ".Trashes");
	assert_int_equal(mkdir(p, 0700), 0);
	path_of(p, sizeof(p), "tx200-2.4.1");
	assert_int_equal(mkdir(p, 0700), 0);
	/* the kernel wakes the watch: no timeout needed to see it */
	assert_int_equal(md_watch_poll(w, 5000, &ev, &d), 1);
	snprintf(line, sizeof(line), "changed %s/tx200-2.4.1  ", dir);
	assert_true(saw(&s, line));
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(md_watch_poll(w, 5000, &ev, &d), 1);
	md_watch_free(w);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void watch_sleeps_until_the_kernel_wakes_it(void **state)
{
	struct md_watch *w = NULL;
	struct seen s = {0};
	struct md_watch_events ev = {record, &s};
	struct stn_diag d;
	double t0, c0;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(md_watch_new(dir, NULL, &w, &d), 0);
	md_watch_poll(w, 0, &ev, &d); /* the initial report */
	t0 = now_seconds();
	c0 = cpu_seconds();
	/* Other programs mounting things elsewhere may wake it; it goes
	 * back to sleep each time.  Over 400 ms it burns (almost) no CPU:
	 * the mount table must not be "always readable" to it. */
	for (double left; (left = 0.4 - (now_seconds() - t0)) > 0;)
		assert_true(md_watch_poll(w, (int)(left * 1000) + 1, &ev, &d) >=
			    0);
	assert_int_equal(s.n, 0);
	assert_true(cpu_seconds() - c0 < 0.05);
	md_watch_free(w);
}

static void
watch_wakes_when_a_file_system_is_mounted_below_the_root(void **state)
{
	char p[1024], line[1200];
	struct md_watch *w = NULL;
	struct seen s = {0};
	struct md_watch_events ev = {record, &s};
	struct stn_diag d;
	int n;

	(void)state;
	path_of(p, sizeof(p), "usb0");
	assert_int_equal(mkdir(p, 0700), 0);
	stn_diag_init(&d);
	assert_int_equal(md_watch_new(dir, NULL, &w, &d), 0);
	assert_int_equal(md_watch_poll(w, 0, &ev, &d), 0);
	if (geteuid() != 0 ||
	    mount("stick", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
		  "size=1m") != 0) {
		md_watch_free(w);
		printf("skip: mounting needs root\n");
		skip();
	}
	/* the real /proc/self/mountinfo wakes epoll (EPOLLPRI) */
	n = md_watch_poll(w, 5000, &ev, &d);
	umount2(p, MNT_DETACH);
	assert_int_equal(n, 1);
	snprintf(line, sizeof(line), "added %s/usb0 tmpfs stick ro", dir);
	assert_true(saw(&s, line));
	s.n = 0;
	assert_int_equal(md_watch_poll(w, 5000, &ev, &d), 1);
	snprintf(line, sizeof(line), "removed %s/usb0 tmpfs stick ro", dir);
	assert_true(saw(&s, line));
	md_watch_free(w);
}

static void watch_refuses_a_missing_root(void **state)
{
	char p[1024];
	struct md_watch *w = NULL;
	struct stn_diag d;

	(void)state;
	path_of(p, sizeof(p), "none");
	stn_diag_init(&d);
	assert_int_equal(md_watch_new(p, NULL, &w, &d), STN_E_CONFIG);
	assert_null(w);
}

/* ---- uevents and sysfs ----------------------------------------------------
 */

static void
uevent_parse_takes_kernel_messages_and_refuses_the_rest(void **state)
{
	static const char add[] =
	    "add@/devices/pci0000:00/usb1/1-1/host0/block/sdb/sdb1\0"
	    "ACTION=add\0DEVPATH=/devices/pci0000:00/usb1/1-1/host0/block/"
	    "sdb/sdb1\0SUBSYSTEM=block\0MAJOR=8\0MINOR=17\0DEVNAME=sdb1\0"
	    "DEVTYPE=partition\0SEQNUM=2012\0";
	static const char change[] =
	    "change@/devices/x/block/sdc\0ACTION=change\0DEVPATH=/devices/"
	    "x/block/sdc\0SUBSYSTEM=block\0DEVNAME=sdc\0DEVTYPE=disk\0"
	    "DISK_MEDIA_CHANGE=1\0";
	static const char udev[] = "libudev\0\xfe\xed\xca\xfe garbage";
	static const char no_action[] = "add@/x\0SUBSYSTEM=block\0";
	static const char unterminated[] = {'a', 'd', 'd', '@', '/', 'x'};
	struct md_uevent u;

	(void)state;
	assert_int_equal(md_uevent_parse(add, sizeof(add), &u), 0);
	assert_string_equal(u.action, "add");
	assert_string_equal(u.subsystem, "block");
	assert_string_equal(u.devname, "sdb1");
	assert_string_equal(u.devtype, "partition");
	assert_false(u.media_change);
	assert_int_equal(md_uevent_parse(change, sizeof(change), &u), 0);
	assert_true(u.media_change);
	assert_int_equal(md_uevent_parse(udev, sizeof(udev), &u), -1);
	assert_int_equal(md_uevent_parse(no_action, sizeof(no_action), &u), -1);
	assert_int_equal(
	    md_uevent_parse(unterminated, sizeof(unterminated), &u), -1);
	assert_int_equal(md_uevent_parse("", 0, &u), -1);
}

/* A fake /sys: class/block/NAME links into devices/ as the kernel's do. */
static void fake_block(const char *sysfs, const char *devpath,
		       const char *removable, const char *size, int partition)
{
	char p[2048], link[2048], cmd[4400];
	const char *name = strrchr(devpath, '/') + 1;

	snprintf(p, sizeof(p), "%s/devices/%s", sysfs, devpath);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' '%s/class/block'", p, sysfs);
	assert_int_equal(system(cmd), 0);
	snprintf(link, sizeof(link), "%s/class/block/%s", sysfs, name);
	unlink(link);
	assert_int_equal(symlink(p, link), 0);
	if (removable) {
		snprintf(cmd, sizeof(cmd), "%s/removable", p);
		th_write_str(cmd, removable);
	}
	snprintf(cmd, sizeof(cmd), "%s/size", p);
	th_write_str(cmd, size);
	if (partition) {
		snprintf(cmd, sizeof(cmd), "%s/partition", p);
		th_write_str(cmd, "1\n");
	}
}

static void removable_media_is_decided_by_sysfs(void **state)
{
	char sysfs[1024];

	(void)state;
	path_of(sysfs, sizeof(sysfs), "sys");
	/* a USB stick whose flag is 0, with a partition */
	fake_block(sysfs, "pci0000:00/0000:00:14.0/usb1/1-1/host6/block/sdb",
		   "0\n", "7864320\n", 0);
	fake_block(sysfs,
		   "pci0000:00/0000:00:14.0/usb1/1-1/host6/block/sdb/sdb1",
		   NULL, "7862272\n", 1);
	/* a card reader on another bus that sets the flag */
	fake_block(sysfs, "platform/reader/block/sdc", "1\n", "0\n", 0);
	/* the station's own disk and a loop device */
	fake_block(sysfs, "pci0000:00/0000:00:17.0/ata1/host0/block/sda", "0\n",
		   "500118192\n", 0);
	fake_block(sysfs, "pci0000:00/0000:00:17.0/ata1/host0/block/sda/sda1",
		   NULL, "1000000\n", 1);
	fake_block(sysfs, "virtual/block/loop0", "0\n", "32768\n", 0);

	assert_true(md_block_removable(sysfs, "sdb"));
	assert_true(md_block_removable(sysfs, "sdb1"));
	assert_true(md_block_removable(sysfs, "sdc"));
	assert_false(md_block_removable(sysfs, "sda"));
	assert_false(md_block_removable(sysfs, "sda1"));
	assert_false(md_block_removable(sysfs, "loop0"));
	assert_false(md_block_removable(sysfs, "sdq"));	      /* unknown */
	assert_false(md_block_removable(sysfs, "../../etc")); /* not a name */
}

/* ---- appliance mounting on a real loop device ------------------------------
 */

static int run_quiet(const char *cmd)
{
	char full[6500];

	snprintf(full, sizeof(full), "%s >/dev/null 2>&1", cmd);
	return system(full);
}

/* An ext4 image holding one bundle, attached to a loop device, whose name
 * ("loopN") goes into name.  Skips the test when that cannot be done.
 * marker: what the top of the file system holds as STATION-REPORTS: NULL
 * nothing, "file", "dir", "link" (a symlink to a regular file); "vfat" a
 * FAT file system with the file, as a laptop makes a report stick. */
static void attach_marked(int with_fs, const char *marker, char name[32])
{
	char img[1024], src[1024], cmd[6400], out[4200], bin[1024];
	struct stn_release_image ri = {"app", bin, 0};
	struct stn_release r = {.name = "on-stick",
				.version = "1",
				.model = "M",
				.sequence = 3,
				.created = 1,
				.expires = (int64_t)time(NULL) + 86400,
				.images = &ri,
				.nimages = 1};
	struct stn_diag d;
	FILE *f;

	if (geteuid() != 0 || run_quiet("losetup -f") != 0 ||
	    run_quiet("command -v mkfs.ext4") != 0) {
		printf("skip: loop devices need root, losetup and mkfs.ext4\n");
		skip();
	}
	if (marker && !strcmp(marker, "vfat") &&
	    run_quiet("command -v mkfs.vfat mcopy") != 0) {
		printf("skip: a FAT stick needs mkfs.vfat and mcopy\n");
		skip();
	}
	path_of(img, sizeof(img), "stick.img");
	path_of(src, sizeof(src), "content");
	path_of(bin, sizeof(bin), "app.bin");
	th_write_str(bin, "image bytes");
	snprintf(out, sizeof(out), "%s/bundle", src);
	mkdir(src, 0755);
	stn_diag_init(&d);
	if (stn_release_create(&r, out, &d))
		fail_msg("%s", d.text);
	if (marker && strcmp(marker, "vfat")) {
		char mk[1100], target[1100];
		snprintf(mk, sizeof(mk), "%s/" MD_REPORT_MARKER, src);
		snprintf(target, sizeof(target), "%s/elsewhere", src);
		if (!strcmp(marker, "file"))
			th_write_str(mk, "reports go here\n");
		else if (!strcmp(marker, "dir"))
			assert_int_equal(mkdir(mk, 0755), 0);
		else {
			th_write_str(target, "a regular file\n");
			assert_int_equal(symlink("elsewhere", mk), 0);
		}
	}
	if (marker && !strcmp(marker, "vfat")) {
		char mk[1100];
		snprintf(mk, sizeof(mk), "%s/marker", dir);
		th_write_str(mk, "reports go here\n");
		snprintf(cmd, sizeof(cmd),
			 "mkfs.vfat -C -n REPORTS '%s' 8192 && "
			 "mcopy -i '%s' '%s' ::" MD_REPORT_MARKER
			 " && mcopy -s -i '%s' '%s/bundle' ::",
			 img, img, mk, img, src);
	} else if (with_fs)
		snprintf(cmd, sizeof(cmd),
			 "truncate -s 8M '%s' && mkfs.ext4 -q -F -d '%s' '%s'",
			 img, src, img);
	else
		snprintf(cmd, sizeof(cmd), "truncate -s 8M '%s'", img);
	if (run_quiet(cmd) != 0) {
		printf("skip: cannot build a file system image\n");
		skip();
	}
	snprintf(cmd, sizeof(cmd), "losetup -f --show '%s'", img);
	f = popen(cmd, "r");
	if (!f || !fgets(loopdev, sizeof(loopdev), f)) {
		if (f)
			pclose(f);
		loopdev[0] = '\0';
		printf("skip: losetup could not attach an image\n");
		skip();
	}
	pclose(f);
	loopdev[strcspn(loopdev, "\n")] = '\0';
	snprintf(name, 32, "%s", strrchr(loopdev, '/') + 1);
}

static void attach_image(int with_fs, char name[32])
{
	attach_marked(with_fs, NULL, name);
}

struct mount_log {
	int mounted, unmounted, refused, reports;
	char path[4096], fstype[32];
	struct stn_diag why;
};

static void on_mounted(void *ctx, const char *dev, const char *path,
		       const char *fstype)
{
	struct mount_log *l = ctx;
	(void)dev;
	l->mounted++;
	snprintf(l->path, sizeof(l->path), "%s", path);
	snprintf(l->fstype, sizeof(l->fstype), "%s", fstype);
}

static void on_unmounted(void *ctx, const char *dev, const char *path)
{
	struct mount_log *l = ctx;
	(void)dev;
	(void)path;
	l->unmounted++;
}

static void on_refused(void *ctx, const char *dev, const struct stn_diag *why)
{
	struct mount_log *l = ctx;
	(void)dev;
	l->refused++;
	l->why = *why;
}

static void on_report_mounted(void *ctx, const char *dev, const char *path,
			      const char *fstype)
{
	struct mount_log *l = ctx;
	(void)dev;
	l->reports++;
	snprintf(l->path, sizeof(l->path), "%s", path);
	snprintf(l->fstype, sizeof(l->fstype), "%s", fstype);
}

/* The block device's read-only flag, as the kernel has it. */
static int block_ro(const char *name)
{
	char p[256], v[8] = "";
	FILE *f;

	snprintf(p, sizeof(p), "/sys/class/block/%s/ro", name);
	f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(v, sizeof(v), f));
	fclose(f);
	return atoi(v);
}

/* Whether mountinfo shows path mounted with option opt (per mount). */
static int mount_has_option(const char *path, const char *opt)
{
	char line[8192], mp[4096], opts[1024];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int found = 0;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*u %*u %*s %*s %4095s %1023s", mp, opts) ==
			2 &&
		    !strcmp(mp, path)) {
			char *o = strtok(opts, ",");
			for (; o && !found; o = strtok(NULL, ","))
				found = !strcmp(o, opt);
		}
	fclose(f);
	return found;
}

/* A report root and a media root beside it, and a mounter for both. */
static struct md_mounter *report_mounter(char media[1024], char reports[1024])
{
	struct md_mounter *m = NULL;
	struct stn_diag d;

	path_of(media, 1024, "media");
	path_of(reports, 1024, "reports");
	assert_int_equal(mkdir(media, 0755), 0);
	assert_int_equal(mkdir(reports, 0700), 0);
	stn_diag_init(&d);
	assert_int_equal(md_mounter_new(media, NULL, &m, &d), 0);
	if (md_mounter_set_reports(m, reports, &d) != 0)
		fail_msg("%s: %s", d.where, d.text);
	return m;
}

/* Whether this kernel has a file system type (vfat is a module the test
 * machine may lack). */
static int kernel_has_fs(const char *type)
{
	char line[128], want[64];
	FILE *f = fopen("/proc/filesystems", "r");
	int found = 0;

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "\t%s\n", type);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, want) != NULL;
	fclose(f);
	return found;
}

/* Detaches the test's loop device and empties the temporary directory,
 * for the next stick of a test. */
static void next_stick(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "losetup -d %s", loopdev);
	assert_int_equal(run_quiet(cmd), 0);
	loopdev[0] = '\0';
	th_rmrf(dir);
	assert_int_equal(mkdir(dir, 0700), 0);
}

static void report_stick_is_mounted_read_write_outside_the_media_root(
    void **state)
{
	static const char *const kinds[] = {"file", "vfat"};
	char media[1024], reports[1024], name[32], p[4200];
	struct md_discovery *disc = NULL;
	struct statvfs vfs;
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		struct mount_log log = {0};
		struct md_mount_events ev = {on_mounted, on_unmounted,
					     on_refused, on_report_mounted,
					     &log};
		struct md_mounter *m;
		int fd;

		if (!strcmp(kinds[i], "vfat") && !kernel_has_fs("vfat")) {
			printf("note: no vfat in this kernel; FAT report "
			       "stick not tried\n");
			continue;
		}
		attach_marked(1, kinds[i], name);
		m = report_mounter(media, reports);
		stn_diag_init(&d);
		if (md_mount_device(m, name, &ev, &d) != 0)
			fail_msg("%s: %s: %s", kinds[i], d.where, d.text);
		assert_int_equal(log.reports, 1);
		assert_int_equal(log.mounted, 0);
		assert_string_equal(log.fstype,
				    strcmp(kinds[i], "vfat") ? "ext4" : "vfat");
		snprintf(p, sizeof(p), "%s/%s", reports, name);
		assert_string_equal(log.path, p);
		assert_int_equal(statvfs(p, &vfs), 0);
		assert_false(vfs.f_flag & ST_RDONLY);
		assert_true(vfs.f_flag & ST_NOSUID);
		assert_true(vfs.f_flag & ST_NODEV);
		assert_true(vfs.f_flag & ST_NOEXEC);
		assert_true(mount_has_option(p, "noatime"));
		assert_true(mount_has_option(p, "nosymfollow"));
		assert_int_equal(block_ro(name), 0);
		/* writable: a report lands there */
		snprintf(p, sizeof(p), "%s/%s/report-test.json", reports,
			 name);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
		/* and it is no bundle source: nothing of it under the media
		 * root, though it holds a bundle */
		snprintf(p, sizeof(p), "%s/%s", media, name);
		assert_int_not_equal(access(p, F_OK), 0);
		assert_int_equal(md_discover(media, 0, &disc, &d), 0);
		assert_int_equal(disc->nbundles, 0);
		md_discovery_free(disc);
		/* pulled: unmounted, its mount point gone */
		assert_int_equal(md_unmount_device(m, name, &ev, &d), 1);
		assert_int_equal(log.unmounted, 1);
		snprintf(p, sizeof(p), "%s/%s", reports, name);
		assert_int_not_equal(access(p, F_OK), 0);
		md_mounter_free(m);
		next_stick();
	}
}

/* Without the marker as a regular file at the top, a stick is a courier's:
 * read-only under the media root, the block device read-only, as ever. */
static void only_a_regular_marker_file_makes_a_report_stick(void **state)
{
	static const char *const kinds[] = {NULL, "dir", "link"};
	char media[1024], reports[1024], name[32], p[4200];
	struct md_discovery *disc = NULL;
	struct statvfs vfs;
	struct stn_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		struct mount_log log = {0};
		struct md_mount_events ev = {on_mounted, on_unmounted,
					     on_refused, on_report_mounted,
					     &log};
		struct md_mounter *m;

		attach_marked(1, kinds[i], name);
		m = report_mounter(media, reports);
		stn_diag_init(&d);
		if (md_mount_device(m, name, &ev, &d) != 0)
			fail_msg("%s: %s", d.where, d.text);
		assert_int_equal(log.reports, 0);
		assert_int_equal(log.mounted, 1);
		snprintf(p, sizeof(p), "%s/%s", media, name);
		assert_string_equal(log.path, p);
		assert_int_equal(statvfs(p, &vfs), 0);
		assert_true(vfs.f_flag & ST_RDONLY);
		assert_int_equal(block_ro(name), 1);
		/* the probe left nothing in the report root */
		snprintf(p, sizeof(p), "%s/%s", reports, name);
		assert_int_not_equal(access(p, F_OK), 0);
		assert_int_equal(md_discover(media, 0, &disc, &d), 0);
		assert_int_equal(disc->nbundles, 1);
		md_discovery_free(disc);
		md_mounter_free(m);
		next_stick();
	}
}

static void report_root_must_not_overlap_the_media_root(void **state)
{
	char media[1024], inside[1200];
	struct md_mounter *m = NULL;
	struct stn_diag d;

	(void)state;
	if (geteuid() != 0) {
		printf("skip: the mounter needs root\n");
		skip();
	}
	path_of(media, sizeof(media), "media");
	snprintf(inside, sizeof(inside), "%s/reports", media);
	assert_int_equal(mkdir(media, 0755), 0);
	assert_int_equal(mkdir(inside, 0755), 0);
	stn_diag_init(&d);
	assert_int_equal(md_mounter_new(media, NULL, &m, &d), 0);
	assert_int_equal(md_mounter_set_reports(m, inside, &d), STN_E_CONFIG);
	assert_non_null(strstr(d.text, "overlap"));
	assert_non_null(strstr(d.text, "never be a bundle source"));
	stn_diag_init(&d);
	assert_int_equal(md_mounter_set_reports(m, media, &d), STN_E_CONFIG);
	assert_non_null(strstr(d.text, "overlap"));
	stn_diag_init(&d);
	assert_int_equal(md_mounter_set_reports(m, dir, &d), STN_E_CONFIG);
	assert_non_null(strstr(d.text, "overlap"));
	md_mounter_free(m);
}

static void mounter_mounts_read_only_and_unmounts_on_removal(void **state)
{
	char media[1024], name[32], p[4200];
	struct md_mounter *m = NULL;
	struct mount_log log = {0};
	struct md_mount_events ev = {on_mounted, on_unmounted, on_refused,
				     NULL, &log};
	struct md_discovery *disc = NULL;
	struct md_uevent u = {0};
	struct statvfs vfs;
	struct stn_diag d;

	(void)state;
	attach_image(1, name);
	path_of(media, sizeof(media), "media");
	assert_int_equal(mkdir(media, 0755), 0);
	stn_diag_init(&d);
	assert_int_equal(md_mounter_new(media, NULL, &m, &d), 0);
	if (md_mount_device(m, name, &ev, &d) != 0)
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(log.mounted, 1);
	assert_string_equal(log.fstype, "ext4");
	snprintf(p, sizeof(p), "%s/%s", media, name);
	assert_string_equal(log.path, p);
	assert_int_equal(statvfs(p, &vfs), 0);
	assert_true(vfs.f_flag & ST_RDONLY);
	assert_true(vfs.f_flag & ST_NOSUID);
	assert_true(vfs.f_flag & ST_NODEV);
	assert_true(vfs.f_flag & ST_NOEXEC);
	snprintf(p, sizeof(p), "%s/%s/bundle/planted", media, name);
	assert_int_equal(open(p, O_WRONLY | O_CREAT, 0600), -1);
	assert_int_equal(errno, EROFS);
	/* what discovery sees there */
	assert_int_equal(md_discover(media, 0, &disc, &d), 0);
	assert_int_equal(disc->nbundles, 1);
	assert_string_equal(disc->bundles[0].name, "on-stick");
	snprintf(p, sizeof(p), "%s/%s", media, name);
	assert_string_equal(disc->bundles[0].medium, p);
	md_discovery_free(disc);

	/* the stick is pulled: the kernel says remove */
	snprintf(u.action, sizeof(u.action), "remove");
	snprintf(u.subsystem, sizeof(u.subsystem), "block");
	snprintf(u.devname, sizeof(u.devname), "%s", name);
	snprintf(u.devpath, sizeof(u.devpath), "/devices/virtual/block/%s",
		 name);
	assert_int_equal(md_mounter_handle(m, &u, &ev, &d), 1);
	assert_int_equal(log.unmounted, 1);
	assert_int_not_equal(access(p, F_OK), 0); /* mount point removed */
	md_mounter_free(m);
}

static void mounter_follows_kernel_uevents_for_removable_devices(void **state)
{
	char media[1024], sysfs[1024], name[32], devpath[256], p[4200];
	struct md_mounter *m = NULL;
	struct mount_log log = {0};
	struct md_mount_events ev = {on_mounted, on_unmounted, on_refused,
				     NULL, &log};
	struct stn_diag d;
	double deadline;

	(void)state;
	attach_image(1, name);
	path_of(media, sizeof(media), "media");
	assert_int_equal(mkdir(media, 0755), 0);
	/* sysfs that says this loop device hangs off a USB bus */
	path_of(sysfs, sizeof(sysfs), "sys");
	snprintf(devpath, sizeof(devpath),
		 "pci0000:00/0000:00:14.0/usb1/1-1/host6/block/%s", name);
	fake_block(sysfs, devpath, "0\n", "16384\n", 0);
	stn_diag_init(&d);
	assert_int_equal(md_mounter_new(media, sysfs, &m, &d), 0);
	/* ask the kernel to announce the device again */
	snprintf(p, sizeof(p), "/sys/class/block/%s/uevent", name);
	th_write_str(p, "add");
	deadline = now_seconds() + 5;
	while (!log.mounted && !log.refused && now_seconds() < deadline) {
		struct pollfd pfd = {md_mounter_fd(m), POLLIN, 0};
		if (poll(&pfd, 1, 500) > 0)
			md_mounter_dispatch(m, &ev, &d);
	}
	if (log.refused)
		fail_msg("refused: %s: %s", log.why.where, log.why.text);
	assert_int_equal(log.mounted, 1);
	th_write_str(p, "remove");
	deadline = now_seconds() + 5;
	while (!log.unmounted && now_seconds() < deadline) {
		struct pollfd pfd = {md_mounter_fd(m), POLLIN, 0};
		if (poll(&pfd, 1, 500) > 0)
			md_mounter_dispatch(m, &ev, &d);
	}
	assert_int_equal(log.unmounted, 1);
	md_mounter_free(m);
}

static void mounter_refuses_devices_it_cannot_or_must_not_mount(void **state)
{
	char media[1024], other[1024], name[32];
	struct md_mounter *m = NULL;
	struct mount_log log = {0};
	struct md_mount_events ev = {on_mounted, on_unmounted, on_refused,
				     NULL, &log};
	struct stn_diag d;

	(void)state;
	attach_image(0, name); /* no file system at all */
	path_of(media, sizeof(media), "media");
	assert_int_equal(mkdir(media, 0755), 0);
	stn_diag_init(&d);
	assert_int_equal(md_mounter_new(media, NULL, &m, &d), 0);
	assert_int_equal(md_mount_device(m, name, &ev, &d), STN_E_IO);
	assert_non_null(strstr(d.text, "no file system this station reads"));
	assert_int_equal(log.refused, 1);
	stn_diag_init(&d);
	assert_int_equal(md_mount_device(m, "../sda", &ev, &d), STN_E_USAGE);
	stn_diag_init(&d);
	assert_int_equal(md_mount_device(m, "null", &ev, &d), STN_E_UNSAFE);
	md_mounter_free(m);

	/* a device mounted elsewhere (the system disk, say) is not media */
	th_rmrf(media);
	mkdir(media, 0755);
	path_of(other, sizeof(other), "other");
	mkdir(other, 0755);
	char cmd[2400];
	snprintf(cmd, sizeof(cmd),
		 "blockdev --setrw %s && mkfs.ext4 -q -F %s && "
		 "mount -o ro %s %s",
		 loopdev, loopdev, loopdev, other);
	if (run_quiet(cmd) != 0) {
		printf("skip: cannot mount the loop device elsewhere\n");
		skip();
	}
	assert_int_equal(md_mounter_new(media, NULL, &m, &d), 0);
	stn_diag_init(&d);
	assert_int_equal(md_mount_device(m, name, &ev, &d), STN_E_UNSAFE);
	assert_non_null(strstr(d.text, "already mounted at"));
	md_mounter_free(m);
	umount2(other, MNT_DETACH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		mounts_under_reads_mountinfo_with_escapes_and_only_below_root,
		setup_each, teardown_each),
	    cmocka_unit_test_setup_teardown(
		watch_reports_mounts_added_and_removed_by_mount_id, setup_each,
		teardown_each),
	    cmocka_unit_test_setup_teardown(
		watch_reports_entries_made_in_the_root_but_not_dot_files,
		setup_each, teardown_each),
	    cmocka_unit_test_setup_teardown(
		watch_sleeps_until_the_kernel_wakes_it, setup_each,
		teardown_each),
	    cmocka_unit_test_setup_teardown(
		watch_wakes_when_a_file_system_is_mounted_below_the_root,
		setup_each, teardown_each),
	    cmocka_unit_test_setup_teardown(watch_refuses_a_missing_root,
					    setup_each, teardown_each),
	    cmocka_unit_test_setup_teardown(
		uevent_parse_takes_kernel_messages_and_refuses_the_rest,
		setup_each, teardown_each),
	    cmocka_unit_test_setup_teardown(removable_media_is_decided_by_sysfs,
					    setup_each, teardown_each),
	    cmocka_unit_test_setup_teardown(
		mounter_mounts_read_only_and_unmounts_on_removal, setup_each,
		teardown_each),
	    cmocka_unit_test_setup_teardown(
		mounter_follows_kernel_uevents_for_removable_devices,
		setup_each, teardown_each),
	    cmocka_unit_test_setup_teardown(
		mounter_refuses_devices_it_cannot_or_must_not_mount, setup_each,
		teardown_each),
	    cmocka_unit_test_setup_teardown(
		report_stick_is_mounted_read_write_outside_the_media_root,
		setup_each, teardown_each),
	    cmocka_unit_test_setup_teardown(
		only_a_regular_marker_file_makes_a_report_stick, setup_each,
		teardown_each),
	    cmocka_unit_test_setup_teardown(
		report_root_must_not_overlap_the_media_root, setup_each,
		teardown_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
