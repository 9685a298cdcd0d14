/* tests/test_release.c: `station bundle create` writing bundles
 * (station/release.h), here its encrypted side (formats §10): each image
 * becomes FILE.enc with one key file per recipient that the recipient's
 * delivery key opens to the content key that decrypts it; refused
 * recipients write nothing; a failure part-way leaves no bundle, keys/
 * included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "custody/delivery.h"
#include "custody/manifest.h"
#include "custody/trust.h"
#include "station/base/aes_ctr.h"
#include "station/base/error.h"
#include "station/base/hex.h"
#include "station/release.h"
#include "tests/helpers.h"

static char *pki_dir;
static struct cu_trust *trust;

static int setup(void **state)
{
	(void)state;
	return th_pki_trust(&pki_dir, &trust);
}

static int teardown(void **state)
{
	(void)state;
	th_pki_free(pki_dir, trust);
	return 0;
}

static char *pki(const char *name)
{
	static char path[4][4200];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof(path[0]), "%s/pki/%s", pki_dir, name);
	return p;
}

static void write_image(const char *path, size_t len, uint8_t seed)
{
	uint8_t *b = malloc(len);
	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 31 + seed);
	th_write(path, b, len);
	free(b);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void make_rel(struct stn_release *rel, struct stn_release_image *imgs,
		     size_t nimg, const char *const *rcp, size_t nrcp)
{
	memset(rel, 0, sizeof(*rel));
	rel->name = "tx200-app";
	rel->version = "2.4.1";
	rel->model = "TX-200";
	rel->sequence = 42;
	rel->created = (int64_t)time(NULL);
	rel->expires = rel->created + 86400;
	rel->images = imgs;
	rel->nimages = nimg;
	rel->recipients = rcp;
	rel->nrecipients = nrcp;
}

/* Both images decrypt, for both recipients, through the station's own
 * key file reader and unwrap. */
static void test_encrypted_roundtrip(void **state)
{
	char *dir = th_tempdir(), a[4200], b[4200], out[4200], path[4400];
	const char *rcp[] = {pki("delivery.pem"), pki("delivery-rsa.pem")};
	const char *who[] = {"delivery", "delivery-rsa"};
	struct stn_release_image imgs[] = {{"app", a, 0}, {"boot", b, 1}};
	struct stn_release rel;
	struct cu_manifest *m = NULL;
	struct stn_diag d;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	snprintf(a, sizeof(a), "%s/app.bin", dir);
	snprintf(b, sizeof(b), "%s/boot.bin", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	write_image(a, 100000, 1);
	write_image(b, 4097, 2);
	make_rel(&rel, imgs, 2, rcp, 2);
	stn_diag_init(&d);
	assert_int_equal(stn_release_create(&rel, out, &d), 0);
	assert_int_equal(cu_manifest_load(out, NULL, &m, &d), 0);
	assert_int_equal(m->nimages, 2);
	snprintf(path, sizeof(path), "%s/app.bin", out);
	assert_int_not_equal(access(path, F_OK), 0); /* no plaintext */
	for (size_t r = 0; r < 2; r++) {
		struct cu_delivery_key *k = NULL;
		char key_path[4200];
		snprintf(key_path, sizeof(key_path), "%s/pki/%s.key", pki_dir,
			 who[r]);
		assert_int_equal(cu_delivery_load(key_path, rcp[r], trust, now,
						  &k, &d),
				 0);
		for (size_t i = 0; i < 2; i++) {
			const struct cu_image *img = &m->images[i];
			uint8_t key[CU_CONTENT_KEY_LEN];
			size_t elen, plen;
			uint8_t *enc, *plain;
			struct cu_ctr *c;
			char rid8[9];

			assert_true(img->encrypted);
			assert_non_null(strstr(img->file, ".bin.enc"));
			/* keys/LABEL.RID8.key */
			cu_hex(cu_delivery_recipient(k), 4, rid8);
			snprintf(path, sizeof(path), "%s/keys/%s.%s.key", out,
				 img->label, rid8);
			assert_int_equal(access(path, F_OK), 0);
			assert_int_equal(cu_delivery_key_for(k, out, "out", img,
							     key, &d),
					 0);
			snprintf(path, sizeof(path), "%s/%s", out, img->file);
			enc = slurp(path, &elen);
			plain = slurp(i ? b : a, &plen);
			assert_int_equal(elen, plen);
			assert_int_equal(img->size, plen);
			assert_memory_not_equal(enc, plain, plen);
			c = cu_ctr_new(key, img->iv);
			assert_non_null(c);
			assert_int_equal(cu_ctr_apply(c, enc, enc, elen), 0);
			cu_ctr_free(c);
			assert_memory_equal(enc, plain, plen);
			free(enc);
			free(plain);
		}
		cu_delivery_free(k);
	}
	/* Two images, two recipients: four key files, nothing else. */
	snprintf(path, sizeof(path), "test $(ls '%s/keys' | wc -l) -eq 4",
		 out);
	assert_int_equal(system(path), 0);
	cu_manifest_free(m);
	th_rmrf(dir);
	free(dir);
}

/* A recipient that is not a delivery certificate: usage, nothing written. */
static void test_refuses_other_roles(void **state)
{
	char *dir = th_tempdir(), a[4200], out[4200];
	const char *names[] = {"release1.pem", "station.pem",
			       "delivery-tworole.pem"};
	struct stn_release_image imgs[] = {{"app", a, 0}};
	struct stn_release rel;
	struct stn_diag d;

	(void)state;
	snprintf(a, sizeof(a), "%s/app.bin", dir);
	write_image(a, 1000, 3);
	for (size_t i = 0; i < 3; i++) {
		const char *rcp[] = {pki("delivery.pem"), pki(names[i])};
		snprintf(out, sizeof(out), "%s/out%zu", dir, i);
		make_rel(&rel, imgs, 1, rcp, 2);
		stn_diag_init(&d);
		assert_int_equal(stn_release_create(&rel, out, &d),
				 STN_E_USAGE);
		assert_non_null(strstr(d.where, names[i]));
		assert_int_not_equal(access(out, F_OK), 0);
	}
	th_rmrf(dir);
	free(dir);
}

/* An image that cannot be read after the first was encrypted: the bundle
 * directory goes, keys/ and its files included. */
static void test_failure_removes_keys(void **state)
{
	char *dir = th_tempdir(), a[4200], b[4200], out[4200];
	const char *rcp[] = {pki("delivery.pem")};
	struct stn_release_image imgs[] = {{"app", a, 0}, {"boot", b, 1}};
	struct stn_release rel;
	struct stn_diag d;

	(void)state;
	snprintf(a, sizeof(a), "%s/app.bin", dir);
	snprintf(b, sizeof(b), "%s/missing.bin", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	write_image(a, 5000, 4);
	make_rel(&rel, imgs, 2, rcp, 1);
	stn_diag_init(&d);
	assert_int_equal(stn_release_create(&rel, out, &d), STN_E_USAGE);
	assert_int_not_equal(access(out, F_OK), 0);
	th_rmrf(dir);
	free(dir);
}

/* Without recipients nothing changes: the file keeps its name, no keys/. */
static void test_clear_has_no_keys(void **state)
{
	char *dir = th_tempdir(), a[4200], out[4200], path[4400];
	struct stn_release_image imgs[] = {{"app", a, 0}};
	struct stn_release rel;
	struct cu_manifest *m = NULL;
	struct stn_diag d;

	(void)state;
	snprintf(a, sizeof(a), "%s/app.bin", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	write_image(a, 5000, 5);
	make_rel(&rel, imgs, 1, NULL, 0);
	stn_diag_init(&d);
	assert_int_equal(stn_release_create(&rel, out, &d), 0);
	assert_int_equal(cu_manifest_load(out, NULL, &m, &d), 0);
	assert_false(m->images[0].encrypted);
	assert_string_equal(m->images[0].file, "app.bin");
	snprintf(path, sizeof(path), "%s/keys", out);
	assert_int_not_equal(access(path, F_OK), 0);
	cu_manifest_free(m);
	th_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encrypted_roundtrip),
		cmocka_unit_test(test_refuses_other_roles),
		cmocka_unit_test(test_failure_removes_keys),
		cmocka_unit_test(test_clear_has_no_keys),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
