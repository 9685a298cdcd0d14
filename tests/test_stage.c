/* tests/test_stage.c: staging copies exactly what the manifest names plus
 * its signatures, hashing in the same pass; trusts nothing on the media;
 * and the staged copy is immune to later changes on the media. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <time.h>

#include "custody/sha256.h"
#include "custody/verify.h"
#include "media/stage.h"
#include "station/error.h"
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

static void make_bundle(const char *name, size_t size)
{
	char img[4200], out[4200];
	uint8_t *data = malloc(size);
	struct stn_release_image ri = {"app", img, 0};
	struct stn_release rel = {.name = "n", .version = "1", .model = "M",
				  .sequence = 1, .created = 1,
				  .expires = (int64_t)time(NULL) + 86400,
				  .images = &ri, .nimages = 1};
	struct stn_diag d;

	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 13);
	snprintf(img, sizeof(img), "%s/app.bin", dir);
	th_write(img, data, size);
	unlink(out);
	snprintf(out, sizeof(out), "%s/%s", dir, name);
	stn_diag_init(&d);
	if (stn_release_create(&rel, out, &d))
		fail_msg("%s", d.text);
	free(data);
}

static void path_in(char *buf, size_t cap, const char *a, const char *b)
{
	snprintf(buf, cap, "%s/%s/%s", dir, a, b);
}

static void stage_copies_manifest_signatures_and_images(void **state)
{
	char src[4200], root[4200], p[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;
	uint8_t sha[32];
	uint64_t size;

	(void)state;
	make_bundle("b", 100000);
	path_in(p, sizeof(p), "b", "manifest.sig");
	th_write_str(p, "sig");
	path_in(p, sizeof(p), "b", "manifest.rel-2.sig");
	th_write_str(p, "sig");
	path_in(p, sizeof(p), "b", "manifest.rel-2.pem");
	th_write_str(p, "pem");
	path_in(p, sizeof(p), "b", "manifest.stray.pem");
	th_write_str(p, "a .pem without its .sig is not copied");
	path_in(p, sizeof(p), "b", "manifest.Bad.sig");
	th_write_str(p, "ignored: label not lowercase");
	path_in(p, sizeof(p), "b", "._app.bin");
	th_write_str(p, "AppleDouble litter");
	path_in(p, sizeof(p), "b", "notes.txt");
	th_write_str(p, "not named by the manifest");
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(src, root, NULL, &st, &d), 0);

	const char *sd = md_stage_dir(st);
	struct stat sb;
	assert_int_equal(stat(root, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	const char *present[] = {"manifest", "manifest.sig",
				 "manifest.rel-2.sig", "manifest.rel-2.pem",
				 "app.bin"};
	const char *absent[] = {"manifest.Bad.sig", "._app.bin", "notes.txt",
				"manifest.stray.pem"};
	for (size_t i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/%s", sd, present[i]);
		if (access(p, F_OK) != 0)
			fail_msg("%s was not staged", present[i]);
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", sd, absent[i]);
		if (access(p, F_OK) == 0)
			fail_msg("%s was staged", absent[i]);
	}
	/* the measure answers what was hashed while copying */
	const struct cu_measure *m = md_stage_measure(st);
	assert_int_equal(m->measure(m->ctx, sd, "app.bin", 100000, &size, sha,
				    &d),
			 0);
	assert_true(size == 100000);
	uint8_t *data = malloc(100000), want[32];
	for (size_t i = 0; i < 100000; i++)
		data[i] = (uint8_t)(i * 13);
	cu_sha256(data, 100000, want);
	assert_memory_equal(sha, want, 32);
	free(data);

	char saved[4200];
	snprintf(saved, sizeof(saved), "%s", sd);
	md_stage_free(st);
	assert_int_not_equal(access(saved, F_OK), 0); /* removed */
}

static void stage_is_immune_to_media_changes_after_copy(void **state)
{
	char src[4200], root[4200], p[4200], staged[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;
	uint8_t got[100], orig[100];
	FILE *f;

	(void)state;
	make_bundle("b", 100);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(src, root, NULL, &st, &d), 0);
	path_in(p, sizeof(p), "b", "app.bin");
	f = fopen(p, "rb");
	assert_int_equal(fread(orig, 1, 100, f), 100);
	fclose(f);
	th_write_str(p, "the courier's friend rewrote this file"); /* after */
	snprintf(staged, sizeof(staged), "%s/app.bin", md_stage_dir(st));
	f = fopen(staged, "rb");
	assert_int_equal(fread(got, 1, 100, f), 100);
	fclose(f);
	assert_memory_equal(got, orig, 100);
	md_stage_free(st);
}

static void stage_records_unsafe_images_for_check_3(void **state)
{
	char src[4200], root[4200], p[4200], target[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;
	uint8_t sha[32];
	uint64_t size;

	(void)state;
	make_bundle("b", 100);
	path_in(p, sizeof(p), "b", "app.bin");
	snprintf(target, sizeof(target), "%s/app.bin", dir);
	unlink(p);
	assert_int_equal(symlink(target, p), 0);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(src, root, NULL, &st, &d), 0);
	const struct cu_measure *m = md_stage_measure(st);
	stn_diag_init(&d);
	assert_int_equal(m->measure(m->ctx, md_stage_dir(st), "app.bin", 100,
				    &size, sha, &d),
			 STN_E_IMAGE);
	assert_non_null(strstr(d.text, "symbolic link"));
	assert_non_null(strstr(d.where, "/b/app.bin")); /* the media path */
	md_stage_free(st);
}

static void stage_does_not_hang_on_a_fifo_image(void **state)
{
	char src[4200], root[4200], p[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;
	uint8_t sha[32];
	uint64_t size;

	(void)state;
	make_bundle("b", 100);
	path_in(p, sizeof(p), "b", "app.bin");
	unlink(p);
	assert_int_equal(mkfifo(p, 0600), 0);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(src, root, NULL, &st, &d), 0);
	const struct cu_measure *m = md_stage_measure(st);
	assert_int_equal(m->measure(m->ctx, md_stage_dir(st), "app.bin", 100,
				    &size, sha, &d),
			 STN_E_IMAGE);
	assert_non_null(strstr(d.text, "not a regular file"));
	md_stage_free(st);
}

static void stage_refuses_oversize_sidecars_and_symlinked_bundles(void **state)
{
	char src[4200], root[4200], p[4200], link[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;
	char *big = calloc(1, MD_SIDECAR_MAX + 1);

	(void)state;
	make_bundle("b", 100);
	path_in(p, sizeof(p), "b", "manifest.sig");
	memset(big, 'x', MD_SIDECAR_MAX + 1);
	th_write(p, big, MD_SIDECAR_MAX + 1);
	free(big);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(src, root, NULL, &st, &d),
			 STN_E_TOOBIG);
	assert_non_null(strstr(d.where, "manifest.sig"));
	assert_null(st);
	/* nothing half-staged is left behind */
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", root);
	assert_int_equal(system(cmd), 0);

	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink(src, link), 0);
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(link, root, NULL, &st, &d),
			 STN_E_UNSAFE);
	assert_non_null(strstr(d.text, "symbolic link"));
}

static void stage_refuses_a_flood_of_signature_files(void **state)
{
	char src[4200], root[4200], p[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;

	(void)state;
	make_bundle("b", 100);
	for (int i = 0; i <= MD_MAX_SIGNATURES; i++) {
		char name[32];
		snprintf(name, sizeof(name), "manifest.l%d.sig", i);
		path_in(p, sizeof(p), "b", name);
		th_write_str(p, "sig");
	}
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(src, root, &st, &d), STN_E_TOOBIG);
	assert_non_null(strstr(d.text, "more than 16 manifest signature"));
}

static void stage_refuses_an_image_size_over_the_cap_before_copying(
	void **state)
{
	char src[4200], root[4200], p[4200], text[2048];
	struct md_stage *st = NULL;
	struct stn_diag d;
	FILE *f;
	size_t n;

	(void)state;
	make_bundle("b", 100);
	path_in(p, sizeof(p), "b", "manifest");
	f = fopen(p, "r");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* the largest size a manifest can state: must not wrap any sum */
	char *at = strstr(text, "size = 100\n");
	assert_non_null(at);
	char out[2100];
	snprintf(out, sizeof(out), "%.*ssize = 18446744073709551615\n%s",
		 (int)(at - text), text, at + strlen("size = 100\n"));
	th_write_str(p, out);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(src, root, &st, &d), 0);
	assert_int_equal(md_stage_images(st, NULL, &d), STN_E_TOOBIG);
	assert_non_null(strstr(d.text, "over the 4294967296 byte image cap"));
	md_stage_free(st);
}

static void stage_refuses_a_staging_area_others_can_reach(void **state)
{
	char src[4200], root[4200], elsewhere[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;

	(void)state;
	make_bundle("b", 100);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	assert_int_equal(mkdir(root, 0777), 0);
	assert_int_equal(chmod(root, 0777), 0);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(src, root, &st, &d), STN_E_UNSAFE);
	assert_non_null(strstr(d.text, "mode 0700"));
	rmdir(root);
	snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", dir);
	assert_int_equal(mkdir(elsewhere, 0700), 0);
	assert_int_equal(symlink(elsewhere, root), 0);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(src, root, &st, &d), STN_E_UNSAFE);
	assert_non_null(strstr(d.text, "not a directory"));
}

static void stage_says_a_directory_without_manifest_is_not_a_bundle(
	void **state)
{
	char root[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;

	(void)state;
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(dir, root, &st, &d), STN_E_USAGE);
	assert_non_null(strstr(d.text, "not a bundle"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			stage_copies_manifest_signatures_and_images, setup_each,
			teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_is_immune_to_media_changes_after_copy, setup_each,
			teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_records_unsafe_images_for_check_3, setup_each,
			teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_does_not_hang_on_a_fifo_image, setup_each,
			teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_refuses_oversize_sidecars_and_symlinked_bundles,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_refuses_a_flood_of_signature_files, setup_each,
			teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_refuses_an_image_size_over_the_cap_before_copying,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_refuses_a_staging_area_others_can_reach,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_says_a_directory_without_manifest_is_not_a_bundle,
			setup_each, teardown_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
