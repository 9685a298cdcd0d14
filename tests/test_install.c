/* tests/test_install.c: the install flow (station/install.h) against the
 * fake device (station/device_fake.h) with its fault countdowns: nothing is
 * written before every check passed, the proof recorded is the weakest
 * image's, a failure after N images leaves exactly N image-written events,
 * installs on one prepared bundle are independent, and an event that
 * cannot be journaled stops the install. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>

#include "custody/verify.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/device_fake.h"
#include "station/base/error.h"
#include "station/install.h"
#include "station/session.h"
#include "tests/helpers.h"

#define NIMAGES 3
static const size_t image_size[NIMAGES] = {70000, 1, 4096};

static char *dir;		   /* PKI, bundle, per-test data */
static char bundle[4300];	   /* a signed bundle of NIMAGES images */
static char enc_bundle[4300];	   /* the same images encrypted (formats
				      §10) for this station and another */
static char enc_other[4300];	   /* ... for another station only */
static char conf[4300];
static struct stn_session *sess;
static struct stn_prepared *prep;
static int ntest;

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0) {
		fprintf(stderr, "failed: %s\n", cmd);
		abort();
	}
}

/* The test PKI and one bundle, TX-200 revB sequence 42, whose images are
 * random bytes of the sizes above. */
static int group_setup(void **state)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char images[2000] = "";
	size_t used = 0;

	(void)state;
	dir = th_tempdir();
	if (th_make_pki(dir))
		return -1;
	for (size_t i = 0; i < NIMAGES; i++) {
		run("head -c %zu /dev/urandom >'%s/img%zu.bin'", image_size[i],
		    dir, i);
		used += (size_t)snprintf(images + used, sizeof(images) - used,
					 " --image img%zu='%s/img%zu.bin'@%zu",
					 i, dir, i, i);
	}
	snprintf(bundle, sizeof(bundle), "%s/bundle", dir);
	run("%s/station bundle create --name tx200-app --version 2.5.0 "
	    "--sequence 42 --model TX-200 --hardware revB%s '%s' >/dev/null",
	    build, images, bundle);
	run("%s/station sign --key '%s/pki/release1.key' --cert "
	    "'%s/pki/release1.pem' '%s/manifest' >/dev/null",
	    build, dir, dir, bundle);
	snprintf(enc_bundle, sizeof(enc_bundle), "%s/enc", dir);
	snprintf(enc_other, sizeof(enc_other), "%s/enc-other", dir);
	run("%s/station bundle create --name tx200-app --version 2.5.0 "
	    "--sequence 42 --model TX-200 --hardware revB%s --encrypt-for "
	    "'%s/pki/delivery2.pem' --encrypt-for '%s/pki/delivery.pem' "
	    "'%s' >/dev/null && %s/station sign --key '%s/pki/release1.key' "
	    "--cert '%s/pki/release1.pem' '%s/manifest' >/dev/null",
	    build, images, dir, dir, enc_bundle, build, dir, dir, enc_bundle);
	run("%s/station bundle create --name tx200-app --version 2.5.0 "
	    "--sequence 42 --model TX-200 --hardware revB%s --encrypt-for "
	    "'%s/pki/delivery2.pem' '%s' >/dev/null && %s/station sign "
	    "--key '%s/pki/release1.key' --cert '%s/pki/release1.pem' "
	    "'%s/manifest' >/dev/null",
	    build, images, dir, enc_other, build, dir, dir, enc_other);
	return stn_fake_register(NULL) ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	th_rmrf(dir);
	free(dir);
	return 0;
}

/* A fresh journal for each test, a session and the prepared bundle. */
static int setup(void **state)
{
	struct stn_diag d;
	FILE *f;

	(void)state;
	snprintf(conf, sizeof(conf), "%s/station-%d.conf", dir, ++ntest);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f,
		"[station]\nid = STN-0042\nsite = plant-7\n"
		"key = %s/pki/station.key\ncert = %s/pki/station.pem\n"
		"delivery-key = %s/pki/delivery.key\n"
		"delivery-cert = %s/pki/delivery.pem\n"
		"data = %s/data-%d\n"
		"[trust]\nanchors = %s/pki/roots.pem\nrequire-custody = no\n"
		"[technician ana]\nname = Ana Lima\n",
		dir, dir, dir, dir, dir, ntest, dir);
	fclose(f);
	stn_diag_init(&d);
	if (stn_session_open(conf, "ana", "push", 0, &sess, &d) ||
	    stn_prepare(sess, bundle, NULL, &prep, &d)) {
		fprintf(stderr, "setup: %s: %s\n", d.where, d.text);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	stn_fake_detach_all();
	stn_prepared_free(prep);
	stn_session_close(sess, 0);
	prep = NULL;
	sess = NULL;
	return 0;
}

static void attach(struct stn_fake_unit *u)
{
	assert_int_equal(stn_fake_attach(u, NULL), 0);
}

/* Install on fake:NAME; returns the code, d says why. */
static int install(const char *name, struct stn_outcome *rep,
		   struct stn_diag *d)
{
	char spec[80];

	snprintf(spec, sizeof(spec), "fake:%s", name);
	stn_outcome_init(rep);
	stn_diag_init(d);
	return stn_install(sess, prep, spec, 0, NULL, rep, d);
}

struct count {
	const char *type, *serial;
	size_t n;
	char proof[32]; /* of the last match */
};

static const char *field(const struct stn_event *e, const char *key)
{
	for (size_t i = 0; i < e->nfields; i++)
		if (strcmp(e->fields[i].key, key) == 0)
			return e->fields[i].value;
	return NULL;
}

static int count_cb(void *ctx, const struct stn_event *e)
{
	struct count *c = ctx;
	const char *serial = field(e, "serial"), *proof = field(e, "proof");

	if (strcmp(e->type, c->type) == 0 && serial &&
	    strcmp(serial, c->serial) == 0) {
		c->n++;
		snprintf(c->proof, sizeof(c->proof), "%s", proof ? proof : "");
	}
	return 0;
}

/* How many events of type name serial; *proof of the last one. */
static size_t events(const char *type, const char *serial, char *proof)
{
	struct count c = {type, serial, 0, ""};
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(stn_session_journal_each(sess, 0, count_cb, &c, &d),
			 0);
	if (proof)
		strcpy(proof, c.proof);
	return c.n;
}

/* The bytes unit u holds for image i are exactly the bundle's. */
static void holds_image(const struct stn_fake_unit *u, size_t i)
{
	char path[4400];
	uint8_t *want = malloc(image_size[i]);
	FILE *f;

	snprintf(path, sizeof(path), "%s/img%zu.bin", dir, i);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_non_null(want);
	assert_int_equal(fread(want, 1, image_size[i], f), image_size[i]);
	fclose(f);
	assert_int_equal(u->got[i].len, image_size[i]);
	assert_int_equal(u->got[i].slot, i);
	assert_memory_equal(u->got[i].data, want, image_size[i]);
	free(want);
}

static void install_writes_every_image_and_boots(void **state)
{
	struct stn_fake_unit u;
	struct stn_outcome rep;
	struct stn_diag d;
	char proof[32];

	(void)state;
	stn_fake_unit_init(&u, "a", "TX-200", "revB", "SN-A");
	attach(&u);
	assert_int_equal(install("a", &rep, &d), 0);
	assert_int_equal(rep.images_written, NIMAGES);
	assert_int_equal(rep.proof, STN_PROOF_DEVICE_SHA);
	assert_true(rep.booted);
	assert_int_equal(u.booted, 1);
	for (size_t i = 0; i < NIMAGES; i++)
		holds_image(&u, i);
	assert_int_equal(events("image-written", "SN-A", NULL), NIMAGES);
	assert_int_equal(events("install-finished", "SN-A", proof), 1);
	assert_string_equal(proof, "device-sha256");
	stn_outcome_fini(&rep);
	stn_fake_unit_fini(&u);
}

/* Each device check that fails: the device was asked who it is and was
 * sent nothing. */
static const struct {
	const char *title, *model, *hardware;
	int has_sequence;
	uint64_t sequence;
	int fail_identify;
	const char *reason;
} refused[] = {
	{"another model", "TX-100", "revB", 0, 0, 0, "TX-100"},
	{"another hardware", "TX-200", "revA", 0, 0, 0, "revA"},
	{"an older bundle", "TX-200", "revB", 1, 43, 0, "43"},
	{"the same sequence", "TX-200", "revB", 1, 42, 0, "42"},
	{"identify fails", "TX-200", "revB", 0, 0, 1, "fault: identify"},
};

static void nothing_is_written_before_every_check_passed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct stn_fake_unit u;
		struct stn_outcome rep;
		struct stn_diag d;
		char name[16], serial[16];

		snprintf(name, sizeof(name), "r%zu", i);
		snprintf(serial, sizeof(serial), "SN-R%zu", i);
		stn_fake_unit_init(&u, name, refused[i].model,
				   refused[i].hardware, serial);
		u.id.has_sequence = refused[i].has_sequence;
		u.id.sequence = refused[i].sequence;
		u.fail_identify = refused[i].fail_identify;
		attach(&u);
		if (install(name, &rep, &d) == 0 || u.writes != 0 ||
		    u.booted != 0 || !strstr(d.text, refused[i].reason))
			fail_msg("%s: %d writes, %d boots, text '%s'",
				 refused[i].title, (int)u.writes, u.booted,
				 d.text);
		assert_int_equal(rep.images_written, 0);
		assert_int_equal(events("image-written", serial, NULL), 0);
		assert_int_equal(events("install-started", serial, NULL), 0);
		stn_outcome_fini(&rep);
		stn_fake_unit_fini(&u);
	}
}

static void recorded_proof_is_the_weakest_images(void **state)
{
	static const enum stn_proof proofs[][NIMAGES] = {
		{STN_PROOF_READBACK, STN_PROOF_NONE, STN_PROOF_DEVICE_SHA},
		{STN_PROOF_READBACK, STN_PROOF_DEVICE_SHA, STN_PROOF_READBACK},
		{STN_PROOF_READBACK, STN_PROOF_READBACK, STN_PROOF_READBACK},
	};
	static const char *const want[] = {"none", "device-sha256",
					   "readback"};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct stn_fake_unit u;
		struct stn_outcome rep;
		struct stn_diag d;
		char name[16], serial[16], proof[32];

		snprintf(name, sizeof(name), "p%zu", i);
		snprintf(serial, sizeof(serial), "SN-P%zu", i);
		stn_fake_unit_init(&u, name, "TX-200", "revB", serial);
		memcpy(u.proof, proofs[i], sizeof(proofs[i]));
		attach(&u);
		assert_int_equal(install(name, &rep, &d), 0);
		assert_string_equal(stn_proof_name(rep.proof), want[i]);
		assert_int_equal(events("install-finished", serial, proof), 1);
		assert_string_equal(proof, want[i]);
		stn_outcome_fini(&rep);
		stn_fake_unit_fini(&u);
	}
}

/* The line drops after n images (and part of image n): the journal says
 * exactly n images are on the device, and the device holds those n. */
static void failure_after_n_images_leaves_n_image_written_events(
	void **state)
{
	(void)state;
	for (int n = 0; n < NIMAGES; n++) {
		struct stn_fake_unit u;
		struct stn_outcome rep;
		struct stn_diag d;
		char name[16], serial[16];

		snprintf(name, sizeof(name), "f%d", n);
		snprintf(serial, sizeof(serial), "SN-F%d", n);
		stn_fake_unit_init(&u, name, "TX-200", "revB", serial);
		u.images_before_fail = n;
		u.bytes_before_fail = n == 0 ? 1000 : 0;
		attach(&u);
		assert_int_equal(install(name, &rep, &d), STN_E_IO);
		assert_non_null(strstr(d.text, "fault: the line dropped"));
		assert_int_equal(rep.images_written, n);
		assert_int_equal(events("image-written", serial, NULL),
				 (size_t)n);
		assert_int_equal(events("install-failed", serial, NULL), 1);
		assert_int_equal(events("install-finished", serial, NULL), 0);
		for (int i = 0; i < n; i++)
			holds_image(&u, (size_t)i);
		assert_int_equal(u.got[n].len, n == 0 ? 1000 : 0);
		assert_int_equal(u.booted, 0);
		stn_outcome_fini(&rep);
		stn_fake_unit_fini(&u);
	}
}

/* A device that reports a digest of other bytes: that image is not
 * journaled as written, and nothing after it is sent. */
static void wrong_device_digest_is_refused_and_stops_the_install(
	void **state)
{
	struct stn_fake_unit u;
	struct stn_outcome rep;
	struct stn_diag d;

	(void)state;
	stn_fake_unit_init(&u, "w", "TX-200", "revB", "SN-W");
	u.wrong_digest_image = 1;
	attach(&u);
	assert_int_equal(install("w", &rep, &d), STN_E_VERIFY_DEVICE);
	assert_non_null(strstr(d.text, "image img1: device stored sha256"));
	assert_int_equal(u.writes, 2);
	assert_int_equal(events("image-written", "SN-W", NULL), 1);
	assert_int_equal(u.booted, 0);
	stn_outcome_fini(&rep);
	stn_fake_unit_fini(&u);
}

static void failed_boot_is_a_failed_install(void **state)
{
	struct stn_fake_unit u;
	struct stn_outcome rep;
	struct stn_diag d;

	(void)state;
	stn_fake_unit_init(&u, "b", "TX-200", "revB", "SN-B");
	u.fail_boot = 1;
	attach(&u);
	assert_int_equal(install("b", &rep, &d), STN_E_DEVICE);
	assert_false(rep.booted);
	assert_int_equal(events("image-written", "SN-B", NULL), NIMAGES);
	assert_int_equal(events("install-failed", "SN-B", NULL), 1);
	assert_int_equal(events("install-finished", "SN-B", NULL), 0);
	stn_outcome_fini(&rep);
	stn_fake_unit_fini(&u);
}

struct job {
	const char *name;
	struct stn_outcome rep;
	struct stn_diag d;
	int rc;
};

static void *install_job(void *arg)
{
	struct job *j = arg;

	j->rc = install(j->name, &j->rep, &j->d);
	return NULL;
}

/* Two threads install the one prepared bundle; one unit fails after two
 * images, the other is untouched by it. */
static void parallel_installs_on_one_prepared_bundle_are_independent(
	void **state)
{
	struct stn_fake_unit good, bad;
	struct job jobs[2] = {{.name = "good"}, {.name = "bad"}};
	pthread_t t[2];
	char proof[32];

	(void)state;
	stn_fake_unit_init(&good, "good", "TX-200", "revB", "SN-GOOD");
	stn_fake_unit_init(&bad, "bad", "TX-200", "revB", "SN-BAD");
	bad.images_before_fail = 2;
	bad.bytes_before_fail = 100;
	attach(&good);
	attach(&bad);
	for (int i = 0; i < 2; i++)
		assert_int_equal(
			pthread_create(&t[i], NULL, install_job, &jobs[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(jobs[0].rc, 0);
	assert_int_equal(jobs[1].rc, STN_E_IO);
	for (size_t i = 0; i < NIMAGES; i++)
		holds_image(&good, i);
	assert_int_equal(good.booted, 1);
	holds_image(&bad, 0);
	holds_image(&bad, 1);
	assert_int_equal(bad.got[2].len, 100);
	assert_int_equal(events("image-written", "SN-GOOD", NULL), NIMAGES);
	assert_int_equal(events("install-finished", "SN-GOOD", proof), 1);
	assert_string_equal(proof, "device-sha256");
	assert_int_equal(events("image-written", "SN-BAD", NULL), 2);
	assert_int_equal(events("install-failed", "SN-BAD", NULL), 1);
	for (int i = 0; i < 2; i++)
		stn_outcome_fini(&jobs[i].rep);
	stn_fake_unit_fini(&good);
	stn_fake_unit_fini(&bad);
}

/* Make every append of `type` fail from now on: a trigger that another
 * connection puts into the journal's database (the store refuses the
 * insert, as a full disk or a broken file would). */
static void journal_refuses(const char *type)
{
	char path[4400], sql[300];
	sqlite3 *db;
	char *err = NULL;

	snprintf(path, sizeof(path), "%s/data-%d/journal.db", dir, ntest);
	snprintf(sql, sizeof(sql),
		 "CREATE TRIGGER fault BEFORE INSERT ON events "
		 "WHEN NEW.type = '%s' BEGIN SELECT RAISE(ABORT, "
		 "'injected fault'); END;", type);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", path, err);
	sqlite3_close(db);
}

static void journal_failure_stops_the_install(void **state)
{
	static const struct {
		const char *type;
		size_t writes; /* images sent before the failure */
	} at[] = {{"install-started", 0}, {"image-written", 1}};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct stn_fake_unit u;
		struct stn_outcome rep;
		struct stn_diag d;
		char name[16], serial[16];

		teardown(NULL);
		assert_int_equal(setup(NULL), 0);
		snprintf(name, sizeof(name), "j%zu", i);
		snprintf(serial, sizeof(serial), "SN-J%zu", i);
		stn_fake_unit_init(&u, name, "TX-200", "revB", serial);
		attach(&u);
		journal_refuses(at[i].type);
		assert_int_equal(install(name, &rep, &d), STN_E_JOURNAL);
		assert_non_null(strstr(d.text, "injected fault"));
		assert_int_equal(u.writes, at[i].writes);
		assert_int_equal(u.booted, 0);
		assert_false(rep.booted);
		assert_int_equal(events("install-finished", serial, NULL), 0);
		stn_outcome_fini(&rep);
		stn_fake_unit_fini(&u);
	}
}

/* The SHA-256 of file path, hex. */
static void sha256_file_hex(const char *path, char hex[65])
{
	uint8_t *buf, digest[32];
	size_t len;
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	buf = malloc(1 << 20);
	assert_non_null(buf);
	len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	assert_int_equal(cu_sha256(buf, len, digest), 0);
	cu_hex(digest, sizeof(digest), hex);
	free(buf);
}

/* The sha256 of image-written events for serial, in order, joined. */
struct digests {
	const char *serial;
	char text[1000];
};

static int digests_cb(void *ctx, const struct stn_event *e)
{
	struct digests *g = ctx;
	const char *serial = field(e, "serial");
	size_t used = strlen(g->text);

	if (strcmp(e->type, "image-written") == 0 && serial &&
	    strcmp(serial, g->serial) == 0)
		snprintf(g->text + used, sizeof(g->text) - used, "%s:%s ",
			 field(e, "sha256"), field(e, "device-sha256"));
	return 0;
}

/* An encrypted bundle (formats §10) for this station installs the
 * plaintext: the device receives it, and the journal records the
 * plaintext's digests, the manifest's and the device's, as for any
 * bundle. */
static void encrypted_bundle_installs_the_plaintext(void **state)
{
	struct stn_prepared *enc = NULL;
	struct stn_fake_unit u;
	struct stn_outcome rep;
	struct digests g = {"SN-E", ""};
	char want[1000] = "", hex[65];
	struct stn_diag d;
	size_t used = 0;

	(void)state;
	stn_diag_init(&d);
	if (stn_prepare(sess, enc_bundle, NULL, &enc, &d))
		fail_msg("prepare: %s: %s", d.where, d.text);
	for (size_t i = 0; i < NIMAGES; i++)
		assert_true(cu_bundle_manifest(stn_prepared_bundle(enc))
				    ->images[i].encrypted);
	stn_fake_unit_init(&u, "e", "TX-200", "revB", "SN-E");
	attach(&u);
	stn_outcome_init(&rep);
	if (stn_install(sess, enc, "fake:e", 0, NULL, &rep, &d))
		fail_msg("install: %s: %s", d.where, d.text);
	assert_int_equal(rep.images_written, NIMAGES);
	for (size_t i = 0; i < NIMAGES; i++) {
		char path[4400];
		holds_image(&u, i);
		snprintf(path, sizeof(path), "%s/img%zu.bin", dir, i);
		sha256_file_hex(path, hex);
		used += (size_t)snprintf(want + used, sizeof(want) - used,
					 "%s:%s ", hex, hex);
	}
	stn_diag_init(&d);
	assert_int_equal(stn_session_journal_each(sess, 0, digests_cb, &g, &d),
			 0);
	assert_string_equal(g.text, want);
	stn_outcome_fini(&rep);
	stn_prepared_free(enc);
	stn_fake_unit_fini(&u);
}

/* A bundle whose images are encrypted for no key of this station is
 * refused as check 3 (rule images), naming the recipients; nothing is
 * sent. */
static void bundle_encrypted_for_another_station_is_refused(void **state)
{
	struct stn_prepared *enc = NULL;
	struct stn_fake_unit u;
	struct stn_outcome rep;
	struct stn_diag d;
	int rc;

	(void)state;
	stn_diag_init(&d);
	rc = stn_prepare(sess, enc_other, NULL, &enc, &d);
	assert_int_equal(rc, STN_E_IMAGE);
	assert_string_equal(stn_err_rule(rc), "images");
	assert_non_null(strstr(d.text, "is encrypted for"));
	assert_non_null(strstr(d.text, "this station's delivery certificate"));
	stn_fake_unit_init(&u, "o", "TX-200", "revB", "SN-O");
	attach(&u);
	stn_outcome_init(&rep);
	stn_diag_init(&d);
	assert_int_equal(stn_install(sess, enc, "fake:o", 0, NULL, &rep, &d),
			 STN_E_IMAGE);
	assert_int_equal(u.writes, 0);
	assert_int_equal(events("image-written", "SN-O", NULL), 0);
	stn_outcome_fini(&rep);
	stn_prepared_free(enc);
	stn_fake_unit_fini(&u);
}

/* The pre-send check decrypts too: a content key that is not the image's
 * yields a plaintext whose digest is not the manifest's, and nothing is
 * sent; the right key sends the plaintext. */
static void wrong_content_key_sends_nothing(void **state)
{
	struct stn_prepared *enc = NULL;
	const struct cu_image *img;
	struct stn_fake_unit u;
	struct stn_device *dev = NULL;
	struct stn_write_result wr;
	struct cu_identity id;
	char path[4500];
	uint8_t key[32];
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	if (stn_prepare(sess, enc_bundle, NULL, &enc, &d))
		fail_msg("prepare: %s: %s", d.where, d.text);
	img = &cu_bundle_manifest(stn_prepared_bundle(enc))->images[0];
	snprintf(path, sizeof(path), "%s/%s", enc_bundle, img->file);
	stn_fake_unit_init(&u, "k", "TX-200", "revB", "SN-K");
	attach(&u);
	assert_int_equal(stn_device_open(stn_session_config(sess), "fake:k",
					 &dev, &d), 0);
	assert_int_equal(stn_device_identify(dev, &id, &d), 0);
	if (stn_session_content_key(sess, enc_bundle, enc_bundle, img, key,
				    &d))
		fail_msg("key: %s: %s", d.where, d.text);
	key[0] ^= 1;
	memset(&wr, 0, sizeof(wr));
	assert_int_equal(stn_device_write_key(dev, img, path, path, key, NULL,
					      &wr, &d), STN_E_IMAGE);
	assert_non_null(strstr(d.text, "nothing sent"));
	assert_int_equal(u.writes, 0);
	/* the key is what the encrypted image needs, also the other way */
	assert_int_equal(stn_device_write(dev, img, path, path, NULL, &wr, &d),
			 STN_E_INTERNAL);
	assert_int_equal(u.writes, 0);
	key[0] ^= 1;
	memset(&wr, 0, sizeof(wr));
	if (stn_device_write_key(dev, img, path, path, key, NULL, &wr, &d))
		fail_msg("write: %s: %s", d.where, d.text);
	holds_image(&u, 0);
	explicit_bzero(key, sizeof(key));
	stn_device_close(dev);
	stn_prepared_free(enc);
	stn_fake_unit_fini(&u);
}

static void fake_scheme_needs_an_attached_unit(void **state)
{
	struct stn_outcome rep;
	struct stn_diag d;

	(void)state;
	assert_int_equal(install("nobody", &rep, &d), STN_E_NODEVICE);
	assert_non_null(strstr(d.text, "no fake unit nobody"));
	stn_outcome_fini(&rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			install_writes_every_image_and_boots, setup, teardown),
		cmocka_unit_test_setup_teardown(
			nothing_is_written_before_every_check_passed, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			recorded_proof_is_the_weakest_images, setup, teardown),
		cmocka_unit_test_setup_teardown(
			failure_after_n_images_leaves_n_image_written_events,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			wrong_device_digest_is_refused_and_stops_the_install,
			setup, teardown),
		cmocka_unit_test_setup_teardown(failed_boot_is_a_failed_install,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			parallel_installs_on_one_prepared_bundle_are_independent,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			journal_failure_stops_the_install, setup, teardown),
		cmocka_unit_test_setup_teardown(
			fake_scheme_needs_an_attached_unit, setup, teardown),
		cmocka_unit_test_setup_teardown(
			encrypted_bundle_installs_the_plaintext, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			bundle_encrypted_for_another_station_is_refused, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			wrong_content_key_sends_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
