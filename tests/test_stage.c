/* tests/test_stage.c: staging copies exactly what the manifest names plus
 * its signatures, custody records, tokens and CRLs, hashing in the same
 * pass; trusts nothing on the media; aborts cleanly when the media fails
 * part-way; and the staged copy is immune to later changes on the media. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "station/base/sha256.h"
#include "custody/verify.h"
#include "media/stage.h"
#include "station/base/error.h"
#include "station/release.h"
#include "tests/helpers.h"


/* Asks the stage's source how FILE measured, as check 3 does. */
static int measure(const struct md_stage *st, const char *file, uint64_t size,
		   uint64_t *got_size, uint8_t sha[32], struct stn_diag *d)
{
	const struct cu_source *src = md_stage_source(st);
	struct cu_image img;
	struct cu_measured m;
	int rc;

	memset(&img, 0, sizeof(img));
	snprintf(img.file, sizeof(img.file), "%s", file);
	img.size = size;
	rc = src->measure(src->ctx, &img, &m, d);
	if (rc == 0) {
		*got_size = m.size;
		memcpy(sha, m.sha256, 32);
	}
	return rc;
}

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
	assert_int_equal(measure(st, "app.bin", 100000, &size, sha, &d),
			 0);
	assert_true(size == 100000);
	uint8_t *data = malloc(100000), want[32];
	for (size_t i = 0; i < 100000; i++)
		data[i] = (uint8_t)(i * 13);
	assert_int_equal(cu_sha256(data, 100000, want), 0);
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
	stn_diag_init(&d);
	assert_int_equal(measure(st, "app.bin", 100, &size, sha, &d),
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
	assert_int_equal(measure(st, "app.bin", 100, &size, sha, &d),
			 STN_E_IMAGE);
	assert_non_null(strstr(d.text, "not a regular file"));
	md_stage_free(st);
}

static void stage_refuses_oversize_sidecars_and_symlinked_bundles(void **state)
{
	char src[4200], root[4200], p[4200], link[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;
	char *big = calloc(1, CU_SIDECAR_MAX + 1);

	(void)state;
	make_bundle("b", 100);
	path_in(p, sizeof(p), "b", "manifest.sig");
	memset(big, 'x', CU_SIDECAR_MAX + 1);
	th_write(p, big, CU_SIDECAR_MAX + 1);
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
	for (int i = 0; i <= CU_MAX_SIGNATURES; i++) {
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

/* ---- custody/, tokens/, crl/ -------------------------------------------- */

static void put(const char *bundle, const char *rel, const char *text)
{
	char p[4200];

	snprintf(p, sizeof(p), "%s/%s/%s", dir, bundle, rel);
	th_write_str(p, text);
}

static void mkdir_in(const char *bundle, const char *rel)
{
	char p[4200];

	snprintf(p, sizeof(p), "%s/%s/%s", dir, bundle, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static int staged(const struct md_stage *st, const char *rel)
{
	char p[4200];

	snprintf(p, sizeof(p), "%s/%s", md_stage_dir(st), rel);
	return access(p, F_OK) == 0;
}

/* The names of the staging root's entries, one per line, or "". */
static void list_root(const char *root, char *out, size_t cap)
{
	char cmd[4300];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' 2>/dev/null", root);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	pclose(f);
}

static void stage_copies_custody_tokens_and_crls_in_the_bundle_layout(
	void **state)
{
	char src[2048], root[2048], p[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;
	struct stat sb;

	(void)state;
	make_bundle("b", 100);
	mkdir_in("b", "custody");
	mkdir_in("b", "tokens");
	mkdir_in("b", "crl");
	put("b", "custody/01.rec", "record 1");
	put("b", "custody/01.rec.sig", "sig");
	put("b", "custody/01.rec.pem", "pem");
	put("b", "custody/02.rec", "record 2");
	put("b", "custody/02.rec.gate-2.sig", "sig, its .pem missing");
	put("b", "custody/0100.rec", "four digits are two or more");
	put("b", "custody/1.rec", "one digit: not a custody record");
	put("b", "custody/._01.rec", "AppleDouble litter");
	put("b", "custody/03.rec.pem", "a .pem without .sig or record");
	put("b", "custody/04.rec.sig", "a .sig without its record");
	put("b", "custody/notes.txt", "not ours");
	put("b", "tokens/fix-881.tok", "token");
	put("b", "tokens/fix-881.tok.sig", "sig");
	put("b", "tokens/fix-881.tok.pem", "pem");
	put("b", "tokens/Fix.tok", "not a label: upper case");
	put("b", "tokens/.DS_Store", "Finder litter");
	put("b", "crl/inter.pem", "crl");
	put("b", "crl/inter.pem.sig", "CRLs carry their own signature");
	put("b", "crl/inter.crl", "not NAME.pem");
	mkdir_in("b", "crl/nested");
	mkdir_in("b", "keys");
	put("b", "keys/app.key", "format = station-key-1");
	put("b", "keys/app.site-3.0a1b.key", "dots say image and recipient");
	put("b", "keys/App.key", "not ours: upper case");
	put("b", "keys/.app.key", "not ours: hidden");
	put("b", "keys/app.key.sig", "key files are unsigned");
	put("b", "keys/notes.txt", "not ours");
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(src, root, &st, &d), 0);

	const char *present[] = {
		"custody/01.rec", "custody/01.rec.sig", "custody/01.rec.pem",
		"custody/02.rec", "custody/02.rec.gate-2.sig",
		"custody/0100.rec", "tokens/fix-881.tok",
		"tokens/fix-881.tok.sig", "tokens/fix-881.tok.pem",
		"crl/inter.pem", "keys/app.key", "keys/app.site-3.0a1b.key"};
	const char *absent[] = {
		"custody/1.rec", "custody/._01.rec", "custody/03.rec.pem",
		"custody/04.rec.sig", "custody/notes.txt", "tokens/Fix.tok",
		"tokens/.DS_Store", "crl/inter.pem.sig", "crl/inter.crl",
		"crl/nested", "keys/App.key", "keys/.app.key",
		"keys/app.key.sig", "keys/notes.txt", "app.bin" /* phase two */};
	for (size_t i = 0; i < sizeof(present) / sizeof(*present); i++)
		if (!staged(st, present[i]))
			fail_msg("%s was not staged", present[i]);
	for (size_t i = 0; i < sizeof(absent) / sizeof(*absent); i++)
		if (staged(st, absent[i]))
			fail_msg("%s was staged", absent[i]);
	snprintf(p, sizeof(p), "%s/custody/01.rec", md_stage_dir(st));
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0400);
	snprintf(p, sizeof(p), "%s/tokens", md_stage_dir(st));
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);

	/* the whole tree goes when the stage is freed */
	md_stage_free(st);
	char names[256];
	list_root(root, names, sizeof(names));
	assert_string_equal(names, "");
}

static void stage_leaves_out_directories_with_nothing_of_ours(void **state)
{
	char src[2048], root[2048];
	struct md_stage *st = NULL;
	struct stn_diag d;

	(void)state;
	make_bundle("b", 100);
	mkdir_in("b", "custody");
	put("b", "custody/readme.txt", "nothing of ours");
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(src, root, &st, &d), 0);
	assert_false(staged(st, "custody"));
	assert_false(staged(st, "tokens"));
	md_stage_free(st);
}

enum bad_media {
	CUSTODY_DIR_IS_A_SYMLINK,
	TOKENS_IS_A_FILE,
	RECORD_IS_A_SYMLINK,
	TOKEN_IS_A_FIFO,
	CRL_OVER_64_KIB,
	PEM_BESIDE_A_RECORD_SIG_IS_A_SYMLINK,
	HUNDRED_CUSTODY_RECORDS,
	SIXTY_FIVE_TOKENS,
	SEVENTEEN_CRLS,
	FIVE_SIGNATURES_FOR_ONE_RECORD,
	KEY_FILE_IS_A_SYMLINK,
	KEY_FILE_OVER_4_KIB,
	TOO_MANY_KEY_FILES,
	KEYS_DIR_IS_A_SYMLINK,
};

static void plant(enum bad_media what)
{
	char p[4200], target[4200], name[64];

	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	mkdir(target, 0755);
	switch (what) {
	case CUSTODY_DIR_IS_A_SYMLINK:
		snprintf(p, sizeof(p), "%s/b/custody", dir);
		assert_int_equal(symlink(target, p), 0);
		break;
	case TOKENS_IS_A_FILE:
		put("b", "tokens", "a file where a directory belongs");
		break;
	case RECORD_IS_A_SYMLINK:
		mkdir_in("b", "custody");
		snprintf(p, sizeof(p), "%s/b/custody/01.rec", dir);
		assert_int_equal(symlink("/etc/passwd", p), 0);
		break;
	case TOKEN_IS_A_FIFO:
		mkdir_in("b", "tokens");
		snprintf(p, sizeof(p), "%s/b/tokens/t.tok", dir);
		assert_int_equal(mkfifo(p, 0600), 0);
		break;
	case CRL_OVER_64_KIB: {
		char *big = malloc(CU_SIDECAR_MAX + 2);
		memset(big, 'x', CU_SIDECAR_MAX + 1);
		big[CU_SIDECAR_MAX + 1] = '\0';
		mkdir_in("b", "crl");
		put("b", "crl/big.pem", big);
		free(big);
		break;
	}
	case PEM_BESIDE_A_RECORD_SIG_IS_A_SYMLINK:
		mkdir_in("b", "custody");
		put("b", "custody/01.rec", "r");
		put("b", "custody/01.rec.sig", "s");
		snprintf(p, sizeof(p), "%s/b/custody/01.rec.pem", dir);
		assert_int_equal(symlink("/etc/passwd", p), 0);
		break;
	case HUNDRED_CUSTODY_RECORDS:
		mkdir_in("b", "custody");
		for (int i = 1; i <= CU_MAX_CUSTODY + 1; i++) {
			snprintf(name, sizeof(name), "custody/%02d.rec", i);
			put("b", name, "r");
		}
		break;
	case SIXTY_FIVE_TOKENS:
		mkdir_in("b", "tokens");
		for (int i = 0; i <= CU_MAX_TOKENS; i++) {
			snprintf(name, sizeof(name), "tokens/t%d.tok", i);
			put("b", name, "t");
		}
		break;
	case SEVENTEEN_CRLS:
		mkdir_in("b", "crl");
		for (int i = 0; i <= CU_MAX_CRLS; i++) {
			snprintf(name, sizeof(name), "crl/c%d.pem", i);
			put("b", name, "c");
		}
		break;
	case FIVE_SIGNATURES_FOR_ONE_RECORD:
		mkdir_in("b", "custody");
		put("b", "custody/01.rec", "r");
		for (int i = 0; i <= CU_MAX_FILE_SIGNATURES; i++) {
			snprintf(name, sizeof(name), "custody/01.rec.s%d.sig", i);
			put("b", name, "s");
		}
		break;
	case KEY_FILE_IS_A_SYMLINK:
		mkdir_in("b", "keys");
		snprintf(p, sizeof(p), "%s/b/keys/app.key", dir);
		assert_int_equal(symlink("/etc/passwd", p), 0);
		break;
	case KEY_FILE_OVER_4_KIB: {
		char big[CU_KEYFILE_MAX + 2];
		memset(big, 'k', CU_KEYFILE_MAX + 1);
		big[CU_KEYFILE_MAX + 1] = '\0';
		mkdir_in("b", "keys");
		put("b", "keys/app.key", big);
		break;
	}
	case TOO_MANY_KEY_FILES:
		mkdir_in("b", "keys");
		for (int i = 0; i <= CU_MAX_KEYFILES; i++) {
			snprintf(name, sizeof(name), "keys/app.r%d.key", i);
			put("b", name, "k");
		}
		break;
	case KEYS_DIR_IS_A_SYMLINK:
		snprintf(p, sizeof(p), "%s/b/keys", dir);
		assert_int_equal(symlink(target, p), 0);
		break;
	}
}

static void stage_refuses_unsafe_or_excess_files_in_custody_tokens_and_crl(
	void **state)
{
	static const struct {
		enum bad_media what;
		int code;
		const char *where; /* suffix of d.where */
		const char *text;  /* in d.text */
	} cases[] = {
		{CUSTODY_DIR_IS_A_SYMLINK, STN_E_UNSAFE, "/b/custody",
		 "symbolic link"},
		{TOKENS_IS_A_FILE, STN_E_UNSAFE, "/b/tokens",
		 "not a directory"},
		{RECORD_IS_A_SYMLINK, STN_E_UNSAFE, "/b/custody/01.rec",
		 "symbolic link"},
		{TOKEN_IS_A_FIFO, STN_E_UNSAFE, "/b/tokens/t.tok",
		 "not a regular file"},
		{CRL_OVER_64_KIB, STN_E_TOOBIG, "/b/crl/big.pem",
		 "over the 65536 byte cap"},
		{PEM_BESIDE_A_RECORD_SIG_IS_A_SYMLINK, STN_E_UNSAFE,
		 "/b/custody/01.rec.pem", "symbolic link"},
		{HUNDRED_CUSTODY_RECORDS, STN_E_TOOBIG, "/b/custody",
		 "more than 99 custody record"},
		{SIXTY_FIVE_TOKENS, STN_E_TOOBIG, "/b/tokens",
		 "more than 64 token"},
		{SEVENTEEN_CRLS, STN_E_TOOBIG, "/b/crl", "more than 16 CRL"},
		{FIVE_SIGNATURES_FOR_ONE_RECORD, STN_E_TOOBIG, "/b/custody",
		 "more than 4 signature files for 01.rec"},
		{KEY_FILE_IS_A_SYMLINK, STN_E_UNSAFE, "/b/keys/app.key",
		 "symbolic link"},
		{KEY_FILE_OVER_4_KIB, STN_E_TOOBIG, "/b/keys/app.key",
		 "4097 bytes, over the 4096 byte cap"},
		{TOO_MANY_KEY_FILES, STN_E_TOOBIG, "/b/keys",
		 "more than 256 key file"},
		{KEYS_DIR_IS_A_SYMLINK, STN_E_UNSAFE, "/b/keys",
		 "symbolic link"},
	};
	char src[2048], root[2048], names[256];

	(void)state;
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct md_stage *st = NULL;
		struct stn_diag d;
		size_t wl = strlen(cases[i].where), dl;

		th_rmrf(src);
		make_bundle("b", 100);
		plant(cases[i].what);
		stn_diag_init(&d);
		int rc = md_stage_begin(src, root, &st, &d);
		dl = strlen(d.where);
		if (rc != cases[i].code || dl < wl ||
		    strcmp(d.where + dl - wl, cases[i].where) != 0 ||
		    !strstr(d.text, cases[i].text))
			fail_msg("case %zu: got %d %s: %s", i, rc, d.where,
				 d.text);
		assert_null(st);
		list_root(root, names, sizeof(names));
		if (names[0])
			fail_msg("case %zu left %s in staging", i, names);
	}
}

static void stage_caps_the_small_files_of_a_bundle_together(void **state)
{
	char src[2048], root[2048], name[64];
	char *big = malloc(CU_SIDECAR_MAX + 1);
	struct md_stage *st = NULL;
	struct stn_diag d;

	(void)state;
	memset(big, 'x', CU_SIDECAR_MAX);
	big[CU_SIDECAR_MAX] = '\0';
	make_bundle("b", 100);
	mkdir_in("b", "custody");
	/* each file within its cap; 99 x 3 x 64 KiB is over 16 MiB */
	for (int i = 1; i <= CU_MAX_CUSTODY; i++) {
		snprintf(name, sizeof(name), "custody/%02d.rec", i);
		put("b", name, big);
		snprintf(name, sizeof(name), "custody/%02d.rec.sig", i);
		put("b", name, big);
		snprintf(name, sizeof(name), "custody/%02d.rec.pem", i);
		put("b", name, big);
	}
	free(big);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(src, root, &st, &d), STN_E_TOOBIG);
	assert_non_null(strstr(d.text, "together exceed 16777216 bytes"));
	assert_null(st);
}

/* ---- media failing or changing mid-copy --------------------------------- */

/* A read layer that fails the read numbered `fail_at` (0 is the first),
 * as media pulled mid-copy does, or that rewrites a file on the media
 * after the first read of it. */
struct fake_media {
	int calls, fail_at, err;
	const char *rewrite; /* path rewritten after the first read */
	int rewrote;
};

static ssize_t fake_read(void *ctx, int fd, void *buf, size_t len)
{
	struct fake_media *m = ctx;
	int n = m->calls++;
	ssize_t got;

	if (n == m->fail_at) {
		errno = m->err;
		return -1;
	}
	got = read(fd, buf, len);
	if (m->rewrite && got > 0 && !m->rewrote && n >= 2) {
		/* same size, other bytes: only a hash would notice */
		FILE *f = fopen(m->rewrite, "r+b");
		uint8_t junk[4096];
		memset(junk, 0xee, sizeof(junk));
		for (int i = 0; i < 768; i++) /* 3 MiB: the size stays */
			fwrite(junk, 1, sizeof(junk), f);
		fclose(f);
		m->rewrote = 1;
	}
	return got;
}

static void expected_digest(size_t size, uint8_t out[32])
{
	uint8_t *data = malloc(size);

	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 13);
	assert_int_equal(cu_sha256(data, size, out), 0);
	free(data);
}

static void stage_aborts_cleanly_when_media_fails_mid_copy(void **state)
{
	/* The manifest takes reads 0 and 1 (data, end); the 3 MiB + 5 byte
	 * image reads 2 to 6 (three 1 MiB chunks, 5 bytes, end). */
	static const struct {
		int fail_at, err;
		int in_phase_one;
		const char *where, *text;
	} cases[] = {
		{0, EIO, 1, "/b/manifest", "read error on media after 0 bytes"},
		{2, ENODEV, 0, "/b/app.bin",
		 "read error on media after 0 bytes: No such device"},
		{4, EIO, 0, "/b/app.bin",
		 "read error on media after 2097152 bytes: Input/output"},
		{6, EIO, 0, "/b/app.bin", "after 3145733 bytes"},
	};
	const size_t size = 3 * 1048576 + 5;
	char src[2048], root[2048], names[256];
	uint8_t want[32], sha[32];
	uint64_t got_size;

	(void)state;
	make_bundle("b", size);
	expected_digest(size, want);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct fake_media fm = {0, cases[i].fail_at, cases[i].err,
					NULL, 0};
		struct md_io io = {fake_read, &fm};
		struct md_stage *st = NULL;
		struct stn_diag d;
		int rc;

		stn_diag_init(&d);
		rc = md_stage_begin_io(src, root, &io, &st, &d);
		if (rc == 0)
			rc = md_stage_images(st, NULL, &d);
		if (rc != STN_E_IO || !strstr(d.where, cases[i].where) ||
		    !strstr(d.text, cases[i].text))
			fail_msg("case %zu: got %d %s: %s", i, rc, d.where,
				 d.text);
		assert_true((st == NULL) == (cases[i].in_phase_one != 0));
		if (st) {
			/* nothing of a half-staged bundle is ever used */
			stn_diag_init(&d);
			assert_int_equal(measure(st, "app.bin", size, &got_size, sha, &d),
					 STN_E_IO);
			assert_non_null(strstr(d.text, "staging failed"));
			stn_diag_init(&d);
			assert_int_equal(md_stage_images(st, NULL, &d),
					 STN_E_INTERNAL);
			md_stage_free(st);
		}
		list_root(root, names, sizeof(names));
		if (names[0])
			fail_msg("case %zu left %s in staging", i, names);
	}

	/* and the station still works: the same bundle stages whole */
	struct md_stage *st = NULL;
	struct stn_diag d;
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(src, root, NULL, &st, &d), 0);
	assert_int_equal(measure(st, "app.bin", size, &got_size, sha, &d),
			 0);
	assert_true(got_size == size);
	assert_memory_equal(sha, want, 32);
	md_stage_free(st);
}

static void stage_hashes_exactly_the_bytes_it_staged_while_media_changes(
	void **state)
{
	const size_t size = 3 * 1048576;
	char src[2048], root[2048], img[4200], staged_path[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;
	uint8_t want[32], sha[32], of_staged[32];
	uint64_t got_size;
	uint8_t *buf = malloc(size);
	FILE *f;

	(void)state;
	make_bundle("b", size);
	expected_digest(size, want);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	snprintf(img, sizeof(img), "%s/b/app.bin", dir);
	struct fake_media fm = {0, -1, 0, img, 0};
	struct md_io io = {fake_read, &fm};
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin_io(src, root, &io, &st, &d), 0);
	assert_int_equal(md_stage_images(st, NULL, &d), 0);
	assert_true(fm.rewrote);
	assert_int_equal(measure(st, "app.bin", size, &got_size, sha, &d),
			 0);
	/* the media changed under the copy: the digest says so (check 3
	 * will refuse it), and it is the digest of the staged bytes */
	assert_memory_not_equal(sha, want, 32);
	snprintf(staged_path, sizeof(staged_path), "%s/app.bin",
		 md_stage_dir(st));
	f = fopen(staged_path, "rb");
	assert_int_equal(fread(buf, 1, size, f), size);
	fclose(f);
	assert_int_equal(cu_sha256(buf, size, of_staged), 0);
	assert_memory_equal(sha, of_staged, 32);
	free(buf);
	md_stage_free(st);
}

/* ---- keeping and sweeping ------------------------------------------------ */

static void stage_keeps_a_copy_when_policy_asks(void **state)
{
	char src[2048], root[2048], kept[2048], p[4200];
	struct md_stage *st = NULL;
	struct stn_diag d;

	(void)state;
	make_bundle("b", 100);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(src, root, NULL, &st, &d), 0);
	assert_int_equal(md_stage_keep(st, &d), 0);
	snprintf(kept, sizeof(kept), "%s", md_stage_dir(st));
	assert_non_null(strstr(kept, "/staging/kept-"));
	md_stage_free(st);
	snprintf(p, sizeof(p), "%s/app.bin", kept);
	assert_int_equal(access(p, R_OK), 0);
	/* a sweep leaves kept copies alone */
	unsigned removed = 99;
	assert_int_equal(md_stage_sweep(root, &removed, &d), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(access(p, R_OK), 0);
}

static void stage_sweep_removes_dead_stages_but_not_live_ones(void **state)
{
	char src[2048], root[2048], dead[2048], p[4200];
	struct md_stage *live = NULL;
	struct stn_diag d;
	unsigned removed = 0;

	(void)state;
	make_bundle("b", 100);
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_bundle(src, root, NULL, &live, &d), 0);
	/* what a station that lost power mid-stage leaves behind */
	snprintf(dead, sizeof(dead), "%s/staging/stage-dead01", dir);
	assert_int_equal(mkdir(dead, 0700), 0);
	snprintf(p, sizeof(p), "%s/custody", dead);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/custody/01.rec", dead);
	th_write_str(p, "r");
	chmod(p, 0400);
	snprintf(p, sizeof(p), "%s/app.bin", dead);
	th_write_str(p, "half");
	assert_int_equal(md_stage_sweep(root, &removed, &d), 0);
	assert_int_equal(removed, 1);
	assert_int_not_equal(access(dead, F_OK), 0);
	snprintf(p, sizeof(p), "%s/app.bin", md_stage_dir(live));
	assert_int_equal(access(p, R_OK), 0);
	md_stage_free(live);
}


/* ---- keys/NAME.key and encrypted images (formats §10) -------------------- */

static void layout_key_names_follow_the_rule(void **state)
{
	static const struct {
		const char *name;
		int ok;
	} cases[] = {
		{"app.key", 1},
		{"0.key", 1},
		{"app-2.key", 1},
		{"app.site-3.key", 1},
		{"app..key", 1}, /* NAME "app.": [a-z0-9.-] after the first */
		/* 64 characters of NAME */
		{"a123456789012345678901234567890123456789012345678901234567890123"
		 ".key", 1},
		{"a1234567890123456789012345678901234567890123456789012345678901234"
		 ".key", 0},
		{".key", 0},
		{"app", 0},
		{"app.key.sig", 0},
		{".app.key", 0},
		{"-app.key", 0},
		{"App.key", 0},
		{"app_1.key", 0},
		{"app/x.key", 0},
		{"app.KEY", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		if (cu_layout_key_name(cases[i].name) != cases[i].ok)
			fail_msg("%s: expected %d", cases[i].name, cases[i].ok);
}

#define ENC_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* The counter's low bytes near the wrap: CTR carries across 64 bits. */
#define ENC_IV "f0f1f2f3f4f5f6f7f8f9fafbfcfdfffe"
#define MARKER "PLAINTEXT-MARKER-q7"

static void hexsha(const char *path, char out[65])
{
	FILE *f = fopen(path, "rb");
	struct cu_sha256 *h = cu_sha256_new();
	uint8_t buf[65536], sha[32];
	size_t n;

	assert_non_null(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		assert_int_equal(cu_sha256_update(h, buf, n), 0);
	fclose(f);
	assert_int_equal(cu_sha256_final(h, sha), 0);
	cu_sha256_free(h);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

/* dir/NAME: a bundle with one image encrypted by the openssl CLI (the
 * release side's tool, formats §10), plaintext `size` bytes with MARKER
 * throughout; the manifest carries the plaintext's size and digest and the
 * ciphertext's.  *plain_sha receives the plaintext digest.  Returns 0, or
 * 77 when openssl is missing. */
static int make_encrypted_bundle(const char *name, size_t size,
				 char plain_sha[65])
{
	char b[2048], plain[4200], enc[4200], cmd[9000], man[4200];
	char text[2048], csha[65];
	uint8_t *data = malloc(size);

	snprintf(b, sizeof(b), "%s/%s", dir, name);
	assert_int_equal(mkdir(b, 0755), 0);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 13);
	for (size_t i = 0; i + 64 <= size; i += 4096)
		memcpy(data + i, MARKER, strlen(MARKER));
	snprintf(plain, sizeof(plain), "%s/plain.bin", dir);
	th_write(plain, data, size);
	free(data);
	snprintf(enc, sizeof(enc), "%s/app.bin.enc", b);
	snprintf(cmd, sizeof(cmd),
		 "openssl enc -aes-256-ctr -K " ENC_KEY " -iv " ENC_IV
		 " -in '%s' -out '%s' 2>/dev/null",
		 plain, enc);
	if (system(cmd) != 0)
		return 77;
	hexsha(plain, plain_sha);
	hexsha(enc, csha);
	snprintf(text, sizeof(text),
		 "format = station-bundle-1\nname = n\nversion = 1\n"
		 "sequence = 1\ncreated = 2026-01-01T00:00:00Z\n"
		 "expires = 2036-01-01T00:00:00Z\n[target]\nmodel = M\n"
		 "[image app]\nfile = app.bin.enc\nsize = %zu\nsha256 = %s\n"
		 "slot = 0\ncipher = aes-256-ctr\niv = " ENC_IV "\n"
		 "cipher-sha256 = %s\n",
		 size, plain_sha, csha);
	snprintf(man, sizeof(man), "%s/manifest", b);
	th_write_str(man, text);
	return 0;
}

struct key_box {
	int calls;
	int fail;	  /* answer this failure instead of a key */
	uint8_t key[32];
	char label[33];	  /* the image asked for */
	uint64_t done, total, last;
	int backwards;
};

static int test_content_key(void *ctx, const struct cu_image *img,
			    uint8_t key[32], struct stn_diag *d)
{
	struct key_box *k = ctx;

	k->calls++;
	snprintf(k->label, sizeof(k->label), "%s", img->label);
	if (k->fail)
		return stn_fail(d, k->fail, "b/keys",
				"encrypted for 3f2a..., 9c01...; this station "
				"holds none of those keys");
	memcpy(key, k->key, 32);
	return 0;
}

static void track(void *ctx, const char *file, uint64_t done, uint64_t total)
{
	struct key_box *k = ctx;

	(void)file;
	if (done < k->last)
		k->backwards = 1;
	k->last = done;
	k->done = done;
	k->total = total;
}

static void set_test_key(struct key_box *k)
{
	for (int i = 0; i < 32; i++)
		k->key[i] = (uint8_t)i; /* ENC_KEY */
}

/* Stages dir/b with keys, answering the measure of its first image. */
static int stage_encrypted(struct key_box *k, int with_keys,
			   struct md_stage **out, struct cu_measured *got,
			   struct stn_diag *d)
{
	char src[2048], root[2048];
	struct md_keys keys = {test_content_key, k};
	struct md_progress prog = {track, k};
	const struct cu_source *cs;
	int rc;

	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(d);
	assert_int_equal(md_stage_begin(src, root, out, d), 0);
	rc = with_keys ? md_stage_images_keys(*out, &prog, &keys, d)
		       : md_stage_images(*out, &prog, d);
	assert_int_equal(rc, 0);
	cs = md_stage_source(*out);
	stn_diag_init(d);
	return cs->measure(cs->ctx, &cs->manifest->images[0], got, d);
}

/* Is MARKER anywhere under the staged directory? */
static int plaintext_in_staging(const struct md_stage *st)
{
	char cmd[4300];

	snprintf(cmd, sizeof(cmd), "grep -rqa '%s' '%s'", MARKER,
		 md_stage_dir(st));
	return system(cmd) == 0;
}

static void stage_decrypts_an_encrypted_image_without_writing_plaintext(
	void **state)
{
	const size_t size = 3 * 1024 * 1024 + 12345; /* chunks and a tail */
	char plain_sha[65], hex[65], p[4200], cmd[9000];
	struct key_box k = {0};
	struct md_stage *st = NULL;
	struct cu_measured got;
	struct stn_diag d;

	(void)state;
	if (make_encrypted_bundle("b", size, plain_sha) == 77) {
		printf("skip: openssl CLI missing\n");
		skip();
	}
	set_test_key(&k);
	assert_int_equal(stage_encrypted(&k, 1, &st, &got, &d), 0);
	assert_int_equal(k.calls, 1);
	assert_string_equal(k.label, "app");
	assert_true(got.size == size);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", got.sha256[i]);
	assert_string_equal(hex, plain_sha);
	/* the staged file is the ciphertext, byte for byte; no plaintext
	 * anywhere in staging */
	snprintf(p, sizeof(p), "%s/app.bin.enc", md_stage_dir(st));
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s/b/app.bin.enc'", p, dir);
	assert_int_equal(system(cmd), 0);
	assert_false(plaintext_in_staging(st));
	snprintf(cmd, sizeof(cmd), "grep -qa '%s' '%s/plain.bin'", MARKER,
		 dir);
	assert_int_equal(system(cmd), 0); /* the grep does find it */
	/* progress covers both passes and never goes back */
	assert_true(k.total == 2 * (uint64_t)size);
	assert_true(k.done == 2 * (uint64_t)size);
	assert_false(k.backwards);
	md_stage_free(st);
}

static void stage_refuses_a_tampered_ciphertext_without_asking_for_a_key(
	void **state)
{
	char plain_sha[65], p[4200];
	struct key_box k = {0};
	struct md_stage *st = NULL;
	struct cu_measured got;
	struct stn_diag d;
	FILE *f;

	(void)state;
	if (make_encrypted_bundle("b", 200000, plain_sha) == 77) {
		printf("skip: openssl CLI missing\n");
		skip();
	}
	/* one byte changed on the way: CTR would decrypt it "fine" */
	snprintf(p, sizeof(p), "%s/b/app.bin.enc", dir);
	f = fopen(p, "r+b");
	fseek(f, 1000, SEEK_SET);
	int c = fgetc(f);
	fseek(f, 1000, SEEK_SET);
	fputc(c ^ 1, f);
	fclose(f);
	set_test_key(&k);
	assert_int_equal(stage_encrypted(&k, 1, &st, &got, &d), STN_E_IMAGE);
	assert_int_equal(k.calls, 0);
	assert_non_null(strstr(d.text, "ciphertext digest "));
	assert_non_null(strstr(d.text, "manifest's cipher-sha256 "));
	assert_non_null(strstr(d.text, "changed on the way; not decrypted"));
	assert_string_equal(d.where + strlen(d.where) - 14, "/b/app.bin.enc");
	assert_false(plaintext_in_staging(st));
	md_stage_free(st);
}

static void stage_reports_a_missing_content_key_as_the_image_problem(
	void **state)
{
	char plain_sha[65];
	struct key_box k = {0};
	struct md_stage *st = NULL;
	struct cu_measured got;
	struct stn_diag d;

	(void)state;
	if (make_encrypted_bundle("b", 5000, plain_sha) == 77) {
		printf("skip: openssl CLI missing\n");
		skip();
	}
	k.fail = STN_E_IMAGE;
	assert_int_equal(stage_encrypted(&k, 1, &st, &got, &d), STN_E_IMAGE);
	assert_int_equal(k.calls, 1);
	assert_non_null(strstr(d.text, "this station holds none of those"));
	assert_string_equal(d.where, "b/keys");
	md_stage_free(st);

	/* no keys at all */
	th_rmrf(dir);
	free(dir);
	dir = th_tempdir();
	assert_int_equal(make_encrypted_bundle("b", 5000, plain_sha), 0);
	memset(&k, 0, sizeof(k));
	assert_int_equal(stage_encrypted(&k, 0, &st, &got, &d), STN_E_IMAGE);
	assert_non_null(strstr(d.text, "no delivery key"));
	md_stage_free(st);
}

static void stage_with_a_wrong_key_measures_a_plaintext_check_3_refuses(
	void **state)
{
	char plain_sha[65], hex[65];
	struct key_box k = {0};
	struct md_stage *st = NULL;
	struct cu_measured got;
	struct stn_diag d;

	(void)state;
	if (make_encrypted_bundle("b", 70000, plain_sha) == 77) {
		printf("skip: openssl CLI missing\n");
		skip();
	}
	set_test_key(&k);
	k.key[31] ^= 1;
	assert_int_equal(stage_encrypted(&k, 1, &st, &got, &d), 0);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", got.sha256[i]);
	assert_string_not_equal(hex, plain_sha);
	md_stage_free(st);
}

/* One file named by a plain and an encrypted image: it is staged once, so
 * the second reading is refused rather than answered with the first's. */
static void stage_refuses_one_file_read_two_ways(void **state)
{
	char plain_sha[65], p[4200], text[4096], *at;
	struct key_box k = {0};
	struct md_stage *st = NULL;
	struct cu_measured got;
	const struct cu_source *cs;
	struct stn_diag d;
	FILE *f;
	size_t n;

	(void)state;
	if (make_encrypted_bundle("b", 5000, plain_sha) == 77) {
		printf("skip: openssl CLI missing\n");
		skip();
	}
	snprintf(p, sizeof(p), "%s/b/manifest", dir);
	f = fopen(p, "r");
	n = fread(text, 1, sizeof(text) - 200, f);
	fclose(f);
	text[n] = '\0';
	at = strstr(text, "cipher = ");
	assert_non_null(at);
	snprintf(text + n, sizeof(text) - n,
		 "[image raw]\nfile = app.bin.enc\nsize = 5000\nsha256 = %s\n"
		 "slot = 1\n",
		 plain_sha);
	th_write_str(p, text);
	set_test_key(&k);
	assert_int_equal(stage_encrypted(&k, 1, &st, &got, &d), 0);
	cs = md_stage_source(st);
	assert_int_equal(cs->manifest->nimages, 2);
	stn_diag_init(&d);
	assert_int_equal(cs->measure(cs->ctx, &cs->manifest->images[1], &got,
				     &d),
			 STN_E_IMAGE);
	assert_non_null(strstr(d.text, "named by two images with different "
				       "cipher fields"));
	md_stage_free(st);
}

/* ---- free space ----------------------------------------------------------- */

static void stage_checks_free_space_before_copying(void **state)
{
	char src[2048], root[2048], p[4200], text[2048];
	struct md_stage *st = NULL;
	struct stn_diag d;
	FILE *f;
	size_t n;

	(void)state;
	snprintf(root, sizeof(root), "%s/small", dir);
	assert_int_equal(mkdir(root, 0700), 0);
	if (geteuid() != 0 ||
	    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=24m,mode=0700") != 0) {
		printf("skip: a small tmpfs staging area needs root\n");
		skip();
	}
	make_bundle("b", 100);
	/* the manifest claims 40 MiB: no byte is copied before the check */
	snprintf(p, sizeof(p), "%s/b/manifest", dir);
	f = fopen(p, "r");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	char *at = strstr(text, "size = 100\n"), out[2100];
	assert_non_null(at);
	snprintf(out, sizeof(out), "%.*ssize = 41943040\n%s", (int)(at - text),
		 text, at + strlen("size = 100\n"));
	th_write_str(p, out);
	snprintf(src, sizeof(src), "%s/b", dir);
	stn_diag_init(&d);
	int rc = md_stage_begin(src, root, &st, &d);
	if (rc == 0)
		rc = md_stage_images(st, NULL, &d);
	md_stage_free(st);
	umount2(root, MNT_DETACH);
	assert_int_equal(rc, STN_E_IO);
	assert_non_null(strstr(d.text, "the bundle needs 41943040"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layout_key_names_follow_the_rule),
		cmocka_unit_test_setup_teardown(
			stage_decrypts_an_encrypted_image_without_writing_plaintext,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_refuses_a_tampered_ciphertext_without_asking_for_a_key,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_reports_a_missing_content_key_as_the_image_problem,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_with_a_wrong_key_measures_a_plaintext_check_3_refuses,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_refuses_one_file_read_two_ways, setup_each,
			teardown_each),
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
		cmocka_unit_test_setup_teardown(
			stage_copies_custody_tokens_and_crls_in_the_bundle_layout,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_leaves_out_directories_with_nothing_of_ours,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_refuses_unsafe_or_excess_files_in_custody_tokens_and_crl,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_caps_the_small_files_of_a_bundle_together,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_aborts_cleanly_when_media_fails_mid_copy,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_hashes_exactly_the_bytes_it_staged_while_media_changes,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_keeps_a_copy_when_policy_asks,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_sweep_removes_dead_stages_but_not_live_ones,
			setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(
			stage_checks_free_space_before_copying,
			setup_each, teardown_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
