/* tests/test_discover.c: discovery finds every bundle on the media, side by
 * side, within its bounds; skips the litter other systems leave; notes
 * symlinks and special files without following or opening them; and says
 * why a directory with an unusable manifest is not a bundle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "media/discover.h"
#include "media/stage.h"
#include "station/base/error.h"
#include "station/release.h"
#include "tests/helpers.h"

static char *dir;

static int setup_each(void **state)
{
	(void)state;
	dir = th_tempdir();
	return 0;
}

static int teardown_each(void **state)
{
	(void)state;
	th_rmrf(dir);
	free(dir);
	return 0;
}

/* A bundle at dir/rel named `name`, with sequence seq and a 100-byte
 * image app.bin. */
static void make_bundle(const char *rel, const char *name, uint64_t seq)
{
	char img[1024], out[1024], cmd[2200];
	uint8_t data[100];
	struct stn_release_image ri = {"app", img, 0};
	struct stn_release r = {.name = name, .version = "2.4.1", .model = "M",
				.sequence = seq, .created = 1,
				.expires = (int64_t)time(NULL) + 86400,
				.images = &ri, .nimages = 1};
	struct stn_diag d;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	snprintf(img, sizeof(img), "%s/app.bin", dir);
	th_write(img, data, sizeof(data));
	snprintf(out, sizeof(out), "%s/%s", dir, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", out);
	assert_int_equal(system(cmd), 0);
	stn_diag_init(&d);
	if (stn_release_create(&r, out, &d))
		fail_msg("%s", d.text);
}

static void mkdirs(const char *rel)
{
	char cmd[2200];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", dir, rel);
	assert_int_equal(system(cmd), 0);
}

static void path_of(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "%s/%s", dir, rel);
}

static struct md_discovery *discover(unsigned depth)
{
	struct md_discovery *disc = NULL;
	struct stn_diag d;

	stn_diag_init(&d);
	if (md_discover(dir, depth, &disc, &d))
		fail_msg("md_discover: %s: %s", d.where, d.text);
	return disc;
}

static const struct md_note *find_note(const struct md_discovery *disc,
				       const char *path_suffix)
{
	size_t n = strlen(path_suffix);

	for (size_t i = 0; i < disc->nnotes; i++) {
		size_t l = strlen(disc->notes[i].path);
		if (l >= n && !strcmp(disc->notes[i].path + l - n, path_suffix))
			return &disc->notes[i];
	}
	return NULL;
}

static void discover_lists_several_bundles_side_by_side(void **state)
{
	struct md_discovery *disc;
	char p[1024];

	(void)state;
	make_bundle("stick-a/tx200-2.4.1", "tx200-app", 42);
	make_bundle("stick-a/updates/tx300-1.0", "tx300-app", 7);
	make_bundle("stick-b/tx200-2.5.0", "tx200-app", 43);
	path_of(p, sizeof(p), "stick-a/README.txt");
	th_write_str(p, "a stray file is not our business");
	disc = discover(0);
	assert_int_equal(disc->nbundles, 3);
	assert_int_equal(disc->nnotes, 0);
	/* sorted by path */
	assert_non_null(strstr(disc->bundles[0].path, "/stick-a/tx200-2.4.1"));
	assert_non_null(strstr(disc->bundles[1].path,
			       "/stick-a/updates/tx300-1.0"));
	assert_non_null(strstr(disc->bundles[2].path, "/stick-b/tx200-2.5.0"));
	assert_string_equal(disc->bundles[0].name, "tx200-app");
	assert_string_equal(disc->bundles[0].version, "2.4.1");
	assert_true(disc->bundles[0].sequence == 42);
	assert_true(disc->bundles[2].sequence == 43);
	assert_string_equal(disc->bundles[1].name, "tx300-app");
	assert_int_equal(strlen(disc->bundles[0].id_hex), 64);
	assert_int_equal(disc->bundles[0].nimages, 1);
	assert_true(disc->bundles[0].bytes == 100);
	assert_int_equal(disc->bundles[0].image_problem, 0);
	/* no mount below the root: the medium is the root */
	assert_string_equal(disc->bundles[0].medium, dir);
	md_discovery_free(disc);
}

static void discover_skips_the_litter_other_systems_leave(void **state)
{
	struct md_discovery *disc;
	char p[1024];

	(void)state;
	make_bundle("stick/good", "good", 1);
	make_bundle("stick/.Trashes/501/old", "trashed", 1);
	make_bundle("stick/.Spotlight-V100/b", "spotlight", 1);
	make_bundle("stick/System Volume Information/b", "windows", 1);
	make_bundle("stick/$RECYCLE.BIN/b", "recycled", 1);
	make_bundle("stick/.hidden", "hidden", 1);
	path_of(p, sizeof(p), "stick/._good");
	th_write_str(p, "AppleDouble resource fork");
	path_of(p, sizeof(p), "stick/good/._manifest");
	th_write_str(p, "AppleDouble resource fork");
	disc = discover(0);
	assert_int_equal(disc->nbundles, 1);
	assert_string_equal(disc->bundles[0].name, "good");
	assert_int_equal(disc->nnotes, 0);
	md_discovery_free(disc);
}

static void discover_notes_symlinks_and_special_files_without_opening_them(
	void **state)
{
	struct md_discovery *disc;
	const struct md_note *n;
	char p[1024], t[1024];

	(void)state;
	make_bundle("stick/good", "good", 1);
	make_bundle("elsewhere/target", "target", 1);
	path_of(t, sizeof(t), "elsewhere/target");
	path_of(p, sizeof(p), "stick/linked");
	assert_int_equal(symlink(t, p), 0);
	path_of(p, sizeof(p), "stick/fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	/* a bundle whose manifest is a FIFO: opening it could hang */
	mkdirs("stick/fifo-bundle");
	path_of(p, sizeof(p), "stick/fifo-bundle/manifest");
	assert_int_equal(mkfifo(p, 0600), 0);
	/* a bundle whose manifest is a symlink to a good one */
	mkdirs("stick/link-bundle");
	path_of(t, sizeof(t), "elsewhere/target/manifest");
	path_of(p, sizeof(p), "stick/link-bundle/manifest");
	assert_int_equal(symlink(t, p), 0);
	if (geteuid() == 0) {
		path_of(p, sizeof(p), "stick/zero");
		assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(1, 5)), 0);
	}

	disc = discover(0);
	/* good, and target (reached directly, not through the link) */
	assert_int_equal(disc->nbundles, 2);
	assert_string_equal(disc->bundles[0].name, "target");
	assert_string_equal(disc->bundles[1].name, "good");
	n = find_note(disc, "/stick/linked");
	assert_non_null(n);
	assert_int_equal(n->kind, MD_NOTE_IGNORED);
	assert_string_equal(n->text, "symbolic link, not followed");
	n = find_note(disc, "/stick/fifo");
	assert_non_null(n);
	assert_string_equal(n->text, "FIFO, not opened");
	n = find_note(disc, "/stick/fifo-bundle/manifest");
	assert_non_null(n);
	assert_int_equal(n->kind, MD_NOTE_REFUSED);
	assert_int_equal(n->code, STN_E_UNSAFE);
	n = find_note(disc, "/stick/link-bundle/manifest");
	assert_non_null(n);
	assert_int_equal(n->kind, MD_NOTE_REFUSED);
	assert_string_equal(n->text, "manifest is a symbolic link");
	if (geteuid() == 0) {
		n = find_note(disc, "/stick/zero");
		assert_non_null(n);
		assert_string_equal(n->text, "device node, not opened");
	}
	md_discovery_free(disc);
}

static void discover_refuses_oversize_and_malformed_manifests(void **state)
{
	struct md_discovery *disc;
	const struct md_note *n;
	char p[1024];
	char *big = malloc(65 * 1024 + 1);

	(void)state;
	mkdirs("stick/huge");
	memset(big, '#', 65 * 1024);
	big[65 * 1024] = '\0';
	path_of(p, sizeof(p), "stick/huge/manifest");
	th_write_str(p, big);
	free(big);
	mkdirs("stick/broken");
	path_of(p, sizeof(p), "stick/broken/manifest");
	th_write_str(p, "format = station-bundle-1\nname = Bad Name\n");
	disc = discover(0);
	assert_int_equal(disc->nbundles, 0);
	n = find_note(disc, "/stick/huge/manifest");
	assert_non_null(n);
	assert_int_equal(n->kind, MD_NOTE_REFUSED);
	assert_int_equal(n->code, STN_E_TOOBIG);
	assert_non_null(strstr(n->text, "over the 65536 byte cap"));
	for (size_t i = 0; i < disc->nnotes; i++)
		if (strstr(disc->notes[i].path, "/stick/broken/manifest"))
			n = &disc->notes[i];
	assert_int_equal(n->code, STN_E_SYNTAX);
	assert_non_null(strstr(n->path, "/stick/broken/manifest:"));
	md_discovery_free(disc);
}

/* Entries readdir gives for dir/rel, "." and ".." included: how staging
 * counts them. */
static long entries_of(const char *rel)
{
	char p[1024];
	DIR *dh;
	long n = 0;

	path_of(p, sizeof(p), rel);
	assert_non_null(dh = opendir(p));
	while (readdir(dh))
		n++;
	closedir(dh);
	return n;
}

/* Pad dir/rel with empty files until readdir gives `want` entries. */
static void pad_to(const char *rel, long want)
{
	char p[1200];

	for (long i = entries_of(rel); i < want; i++) {
		snprintf(p, sizeof(p), "%s/%s/pad-%05ld", dir, rel, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(entries_of(rel), want);
}

/* A bundle staging would refuse for its size of directory was listed as
 * fine (issue 15): the listing now says what verify will say. */
static void discover_refuses_a_bundle_staging_would_refuse_for_its_entries(
	void **state)
{
	struct md_discovery *disc;
	const struct md_note *n;
	struct md_stage *st = NULL;
	struct stn_diag d;
	char p[1024], staging[1024], want[128];

	(void)state;
	snprintf(want, sizeof(want), CU_DIR_ENTRIES_WHY, CU_DIR_ENTRIES_MAX);
	make_bundle("stick/many", "many", 1);
	pad_to("stick/many", CU_DIR_ENTRIES_MAX + 1);
	make_bundle("stick/cust", "cust", 1);
	mkdirs("stick/cust/custody");
	pad_to("stick/cust/custody", CU_DIR_ENTRIES_MAX + 1);
	make_bundle("stick/edge", "edge", 1);
	pad_to("stick/edge", CU_DIR_ENTRIES_MAX);
	disc = discover(0);
	assert_int_equal(disc->nbundles, 1); /* only the one at the limit */
	assert_non_null(strstr(disc->bundles[0].path, "/stick/edge"));
	n = find_note(disc, "/stick/many");
	assert_non_null(n);
	assert_int_equal(n->kind, MD_NOTE_REFUSED);
	assert_int_equal(n->code, STN_E_TOOBIG);
	assert_string_equal(n->text, want);
	n = find_note(disc, "/stick/cust/custody");
	assert_non_null(n);
	assert_int_equal(n->kind, MD_NOTE_REFUSED);
	assert_int_equal(n->code, STN_E_TOOBIG);
	assert_string_equal(n->text, want);
	/* The same rule and words as staging, which verify runs first. */
	path_of(staging, sizeof(staging), "staging");
	path_of(p, sizeof(p), "stick/many");
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(p, staging, &st, &d), STN_E_TOOBIG);
	assert_string_equal(d.text, want);
	path_of(p, sizeof(p), "stick/cust");
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(p, staging, &st, &d), STN_E_TOOBIG);
	assert_string_equal(d.text, want);
	path_of(p, sizeof(p), "stick/edge");
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(p, staging, &st, &d), 0);
	md_stage_free(st);
	md_discovery_free(disc);
}

static void discover_looks_at_images_without_reading_them(void **state)
{
	static const struct {
		const char *bundle;
		int code;
		const char *text;
	} cases[] = {
		{"missing", STN_E_IMAGE, "/missing/app.bin: missing"},
		{"linked", STN_E_IMAGE, "/linked/app.bin: is a symbolic link"},
		{"short", STN_E_IMAGE,
		 "/short/app.bin: size is 3 bytes, manifest says 100"},
	};
	struct md_discovery *disc;
	char p[1024];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "stick/%s", cases[i].bundle);
		make_bundle(rel, cases[i].bundle, 1);
		snprintf(rel, sizeof(rel), "stick/%s/app.bin", cases[i].bundle);
		path_of(p, sizeof(p), rel);
		unlink(p);
	}
	path_of(p, sizeof(p), "stick/linked/app.bin");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	path_of(p, sizeof(p), "stick/short/app.bin");
	th_write_str(p, "abc");
	disc = discover(0);
	assert_int_equal(disc->nbundles, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct md_bundle *b = NULL;
		for (size_t k = 0; k < disc->nbundles; k++)
			if (!strcmp(disc->bundles[k].name, cases[i].bundle))
				b = &disc->bundles[k];
		assert_non_null(b);
		assert_int_equal(b->image_problem, cases[i].code);
		if (!strstr(b->image_note, cases[i].text))
			fail_msg("%s: %s", cases[i].bundle, b->image_note);
	}
	md_discovery_free(disc);
}

static void discover_reports_signatures_and_trust_directories(void **state)
{
	struct md_discovery *disc;
	char p[1024];

	(void)state;
	make_bundle("stick/b", "b", 1);
	path_of(p, sizeof(p), "stick/b/manifest.sig");
	th_write_str(p, "s");
	path_of(p, sizeof(p), "stick/b/manifest.rel-2.sig");
	th_write_str(p, "s");
	path_of(p, sizeof(p), "stick/b/manifest.Bad.sig");
	th_write_str(p, "not a label");
	mkdirs("stick/b/custody");
	mkdirs("stick/b/crl");
	disc = discover(0);
	assert_int_equal(disc->nbundles, 1);
	assert_int_equal(disc->bundles[0].nsignatures, 2);
	assert_true(disc->bundles[0].has_custody);
	assert_false(disc->bundles[0].has_tokens);
	assert_true(disc->bundles[0].has_crl);
	md_discovery_free(disc);
}

static void discover_stays_within_its_depth_and_outside_bundles(void **state)
{
	struct md_discovery *disc;

	(void)state;
	make_bundle("a/b/c/d/deep", "deep", 1); /* level 5 */
	make_bundle("a/b/c/shallow", "shallow", 1); /* level 4 */
	/* a bundle inside a bundle is not searched for */
	make_bundle("outer", "outer", 1);
	make_bundle("outer/custody/inner", "inner", 1);
	disc = discover(0);
	assert_int_equal(disc->nbundles, 2);
	assert_string_equal(disc->bundles[0].name, "shallow");
	assert_string_equal(disc->bundles[1].name, "outer");
	md_discovery_free(disc);
	disc = discover(5);
	assert_int_equal(disc->nbundles, 3);
	md_discovery_free(disc);
}

static void discover_bounds_bundles_and_notes(void **state)
{
	struct md_discovery *disc;
	char rel[64], p[1024];

	(void)state;
	for (int i = 0; i < MD_DISCOVER_BUNDLES + 3; i++) {
		snprintf(rel, sizeof(rel), "stick/b%03d", i);
		make_bundle(rel, "b", (uint64_t)i + 1);
	}
	for (int i = 0; i < MD_DISCOVER_NOTES + 5; i++) {
		snprintf(rel, sizeof(rel), "stick/l%03d", i);
		path_of(p, sizeof(p), rel);
		assert_int_equal(symlink("/", p), 0);
	}
	disc = discover(0);
	assert_int_equal(disc->nbundles, MD_DISCOVER_BUNDLES);
	assert_int_equal(disc->nnotes, MD_DISCOVER_NOTES);
	assert_true(disc->notes_dropped > 0);
	int limit = 0;
	for (size_t i = 0; i < disc->nnotes; i++)
		limit += disc->notes[i].kind == MD_NOTE_LIMIT;
	/* the limit note may itself be among those dropped, depending on
	 * listing order; either way the caller can tell it is partial */
	assert_true(limit == 1 || disc->notes_dropped > 5);
	md_discovery_free(disc);
}

static void discover_refuses_a_missing_media_root(void **state)
{
	struct md_discovery *disc = NULL;
	struct stn_diag d;
	char p[1024];

	(void)state;
	path_of(p, sizeof(p), "no-such-root");
	stn_diag_init(&d);
	assert_int_equal(md_discover(p, 0, &disc, &d), STN_E_CONFIG);
	assert_non_null(strstr(d.text, "media root"));
	assert_null(disc);
}

static void discover_names_the_medium_a_bundle_is_on(void **state)
{
	struct md_discovery *disc;
	char p[1024];

	(void)state;
	mkdirs("usb0");
	path_of(p, sizeof(p), "usb0");
	if (geteuid() != 0 ||
	    mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m") != 0) {
		printf("skip: mounting a medium needs root\n");
		skip();
	}
	make_bundle("usb0/updates/b", "b", 1);
	make_bundle("plain/b", "plain", 1);
	disc = discover(0);
	umount2(p, MNT_DETACH);
	assert_int_equal(disc->nbundles, 2);
	assert_string_equal(disc->bundles[0].name, "plain");
	assert_string_equal(disc->bundles[0].medium, dir);
	assert_string_equal(disc->bundles[1].medium, p);
	md_discovery_free(disc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			discover_refuses_a_bundle_staging_would_refuse_for_its_entries,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_lists_several_bundles_side_by_side,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_skips_the_litter_other_systems_leave,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_notes_symlinks_and_special_files_without_opening_them,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_refuses_oversize_and_malformed_manifests,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_looks_at_images_without_reading_them,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_reports_signatures_and_trust_directories,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_stays_within_its_depth_and_outside_bundles,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_bounds_bundles_and_notes, setup_each,
			teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_refuses_a_missing_media_root, setup_each,
			teardown_each),
		cmocka_unit_test_setup_teardown(
			discover_names_the_medium_a_bundle_is_on, setup_each,
			teardown_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
