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
	snprintf(src, sizeof(src), "%s/b", dir);
	snprintf(root, sizeof(root), "%s/staging", dir);
	stn_diag_init(&d);
	assert_int_equal(md_stage_begin(src, root, &st, &d), 0);

	const char *present[] = {
		"custody/01.rec", "custody/01.rec.sig", "custody/01.rec.pem",
		"custody/02.rec", "custody/02.rec.gate-2.sig",
		"custody/0100.rec", "tokens/fix-881.tok",
		"tokens/fix-881.tok.sig", "tokens/fix-881.tok.pem",
		"crl/inter.pem"};
	const char *absent[] = {
		"custody/1.rec", "custody/._01.rec", "custody/03.rec.pem",
		"custody/04.rec.sig", "custody/notes.txt", "tokens/Fix.tok",
		"tokens/.DS_Store", "crl/inter.pem.sig", "crl/inter.crl",
		"crl/nested", "app.bin" /* phase two */};
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
