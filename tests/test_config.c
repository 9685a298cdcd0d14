/* tests/test_config.c: station.conf is read strictly (formats §8); every
 * refusal names file, line and problem; defaults are the documented ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "custody/token.h"
#include "station/config.h"
#include "station/base/error.h"
#include "tests/helpers.h"

static char *dir;

/* The station key and certificate are real (tests/pki.sh: CN STN-0042):
 * the configuration checks that they belong together (formats §8). */
static int setup(void **state)
{
	char path[4200], cmd[9000];
	(void)state;
	dir = th_tempdir();
	if (th_make_pki(dir) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "cp '%s/pki/station.key' '%s/pki/station.pem' '%s/' && "
		 "cp '%s/pki/release1.key' '%s/other.key'",
		 dir, dir, dir, dir, dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/roots.pem", dir);
	th_write_str(path, "anchors\n");
	snprintf(path, sizeof(path), "%s/notakey.key", dir);
	th_write_str(path, "this is not a key\n");
	snprintf(path, sizeof(path), "%s/crl", dir);
	mkdir(path, 0700);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_rmrf(dir);
	free(dir);
	return 0;
}

static const char good[] =
	"# station.conf\n"
	"[station]\n"
	"id = STN-0042\n"
	"site = plant-7\n"
	"key = station.key\n"
	"cert = station.pem\n"
	"data = data\n"
	"[trust]\n"
	"anchors = roots.pem\n"
	"crl = crl\n"
	"[technician ana]\n"
	"name = Ana Lima\n"
	"pin = pbkdf2-sha256$200000$00112233445566778899aabbccddeeff$"
	"0011223344556677889900112233445566778899001122334455667788990011\n"
	"[port bench-1]\n"
	"path = /dev/ttyUSB0\n"
	"baud = 921600\n"
	"mode = ymodem\n"
	"model = TX-200\n"
	"serial = SN-0009\n"
	"[port mcu]\n"
	"path = /dev/ttyACM0\n"
	"mode = smp\n"
	"reset-timeout = 3m\n"
	"[usb]\n"
	"busy-timeout = 1s\n"
	"request-timeout = 20s\n";

static int load_text(const char *text, struct stn_config **out,
		     struct stn_diag *d)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/station.conf", dir);
	th_write_str(path, text);
	stn_diag_init(d);
	return stn_config_load(path, out, d);
}

static void config_loads_values_and_defaults(void **state)
{
	struct stn_config *c = NULL;
	struct stn_diag d;
	char want[4200];

	(void)state;
	assert_int_equal(load_text(good, &c, &d), 0);
	assert_string_equal(c->id, "STN-0042");
	assert_string_equal(c->site, "plant-7");
	/* relative paths are taken relative to the file's directory */
	snprintf(want, sizeof(want), "%s/data", dir);
	assert_string_equal(c->data, want);
	assert_string_equal(c->media, "/media");
	assert_null(c->delivery_key);
	assert_null(c->delivery_cert);
	assert_int_equal(c->release_threshold, 1);
	assert_true(c->max_token_ttl == 72 * 3600);
	assert_true(c->max_custody_age == 30 * 86400);
	assert_int_equal(c->max_custody_hops, 8);
	assert_int_equal(c->require_custody, 1);
	assert_int_equal(c->stale_crl_refuse, 0);
	assert_non_null(stn_config_technician(c, "ana"));
	assert_string_equal(stn_config_technician(c, "ana")->name, "Ana Lima");
	assert_null(stn_config_technician(c, "bo"));
	const struct stn_port *p = stn_config_port(c, "/dev/ttyUSB0");
	assert_non_null(p);
	assert_int_equal(p->baud, 921600);
	assert_int_equal(p->mode, STN_PORT_YMODEM);
	assert_string_equal(p->serial, "SN-0009");
	assert_int_equal(p->reset_timeout_ms, 0);
	/* device timings: given ones in milliseconds, absent ones 0 (the
	 * transport's documented default) */
	p = stn_config_port(c, "/dev/ttyACM0");
	assert_non_null(p);
	assert_int_equal(p->reset_timeout_ms, 180000);
	assert_int_equal(p->recovery_wait_ms, 0);
	assert_int_equal(c->usb.busy_timeout_ms, 1000);
	assert_int_equal(c->usb.request_timeout_ms, 20000);
	assert_int_equal(c->usb.manifest_timeout_ms, 0);
	assert_int_equal(c->usb.reappear_timeout_ms, 0);
	stn_config_free(c);
}

struct bad_conf {
	const char *title;
	const char *text;
	const char *where; /* ":LINE" */
	const char *reason;
};

#define STATION_OK "[station]\nid = S\nsite = p\ndata = d\n"
#define TRUST_OK "[trust]\nanchors = roots.pem\n"

static const struct bad_conf bad[] = {
	{"unknown key", STATION_OK "colour = red\n" TRUST_OK, ":5",
	 "unknown key 'colour' in [station]"},
	{"unknown section", STATION_OK TRUST_OK "[printer]\n", ":7",
	 "unknown section [printer]"},
	{"missing id", "[station]\nsite = p\ndata = d\n" TRUST_OK, ":1",
	 "missing required key 'id'"},
	{"missing trust section", STATION_OK, ":1",
	 "[trust] must appear 1"},
	{"anchors unreadable", STATION_OK "[trust]\nanchors = nope.pem\n",
	 ":6", "cannot use"},
	{"key without cert", STATION_OK "key = station.key\n" TRUST_OK, ":5",
	 "key and cert must be given together"},
	{"key unreadable",
	 STATION_OK "key = absent.key\ncert = station.pem\n" TRUST_OK, ":5",
	 "cannot use"},
	{"crl not a directory", STATION_OK TRUST_OK "crl = roots.pem\n", ":7",
	 "is not a directory"},
	{"bad threshold", STATION_OK TRUST_OK "release-threshold = 0\n", ":7",
	 "release-threshold must be 1 to 16"},
	{"bad duration", STATION_OK TRUST_OK "max-token-ttl = 3 days\n", ":7",
	 "'max-token-ttl' must be a duration"},
	{"bad bool", STATION_OK TRUST_OK "require-custody = maybe\n", ":7",
	 "'require-custody' must be yes or no"},
	{"bad stale-crl", STATION_OK TRUST_OK "stale-crl = ignore\n", ":7",
	 "stale-crl must be warn or refuse"},
	{"bad pin format",
	 STATION_OK TRUST_OK "[technician ana]\nname = A\npin = 1234\n", ":9",
	 "pin must be pbkdf2-sha256"},
	{"technician without name",
	 STATION_OK TRUST_OK "[technician ana]\n", ":7",
	 "missing required key 'name' in [technician ana]"},
	{"port with bad baud",
	 STATION_OK TRUST_OK "[port p]\npath = /dev/x\nbaud = 12345\n", ":9",
	 "baud must be one of"},
	{"ymodem port without serial",
	 STATION_OK TRUST_OK "[port p]\npath = /dev/x\nmode = ymodem\nmodel = "
			     "M\n", ":7",
	 "a ymodem port needs model and serial"},
	{"same port twice",
	 STATION_OK TRUST_OK "[port a]\npath = /dev/x\n[port b]\npath = "
			     "/dev/x\n", ":10",
	 "configured twice"},
	{"bad station id", "[station]\nid = S 1\nsite = p\ndata = d\n" TRUST_OK,
	 ":2", "'id' must be"},
	{"CR line ends", "[station]\r\nid = S\n", ":1", "carriage return"},
	{"key that is not a key",
	 "[station]\nid = STN-0042\nsite = p\ndata = d\nkey = notakey.key\n"
	 "cert = station.pem\n" TRUST_OK, ":5",
	 "station key unusable: private key does not parse"},
	{"key of another certificate",
	 "[station]\nid = STN-0042\nsite = p\ndata = d\nkey = other.key\n"
	 "cert = station.pem\n" TRUST_OK, ":5",
	 "private key does not match the certificate CN STN-0042"},
	{"certificate of another station",
	 STATION_OK "key = station.key\ncert = station.pem\n" TRUST_OK, ":6",
	 "station certificate CN STN-0042 is not the station id S"},
	/* [station] delivery-key and delivery-cert (formats §8, §10) */
	{"delivery key without its certificate",
	 STATION_OK "delivery-key = station.key\n" TRUST_OK, ":5",
	 "delivery-key and delivery-cert must be given together"},
	{"delivery certificate without its key",
	 STATION_OK "delivery-cert = station.pem\n" TRUST_OK, ":5",
	 "delivery-key and delivery-cert must be given together"},
	{"delivery key missing",
	 STATION_OK "delivery-key = nope.key\ndelivery-cert = station.pem\n"
	 TRUST_OK, ":5", "cannot use"},
	{"delivery certificate a directory",
	 STATION_OK "delivery-key = station.key\ndelivery-cert = crl\n"
	 TRUST_OK, ":6", "is not a regular file"},
	{"unknown port mode",
	 STATION_OK TRUST_OK "[port p]\npath = /dev/x\nmode = zmodem\n", ":9",
	 "mode must be console, ymodem or smp"},
	{"unknown usb key", STATION_OK TRUST_OK "[usb]\ntimeout = 5s\n", ":8",
	 "unknown key 'timeout' in [usb]"},
	{"usb timing not a duration",
	 STATION_OK TRUST_OK "[usb]\nbusy-timeout = 1000\n", ":8",
	 "'busy-timeout' must be a duration"},
	{"usb timing of zero",
	 STATION_OK TRUST_OK "[usb]\nrequest-timeout = 0s\n", ":8", "request-timeout must be 1s to 1h"},
	{"usb timing over an hour",
	 STATION_OK TRUST_OK "[usb]\nmanifest-timeout = 2h\n", ":8",
	 "manifest-timeout must be 1s to 1h"},
	{"smp timing on a console port",
	 STATION_OK TRUST_OK "[port p]\npath = /dev/x\nreset-timeout = 90s\n",
	 ":9", "reset-timeout applies to mode = smp only"},
	/* [class NAME] (formats §8) */
	{"class without model", STATION_OK TRUST_OK "[class a]\nproof = "
						    "required\n", ":7",
	 "missing required key 'model' in [class a]"},
	{"model in two classes",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\n[class b]\nmodel = N M\n",
	 ":10", "station.conf:8) and class b: a device has one class"},
	{"model twice in one class",
	 STATION_OK TRUST_OK "[class a]\nmodel = M N M\n", ":8",
	 "model M is named twice in class a"},
	{"same class label twice",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\n[class a]\nmodel = N\n",
	 ":9", "given twice"},
	{"model too long",
	 STATION_OK TRUST_OK "[class a]\nmodel = "
	 "M2345678901234567890123456789012345678901234567890123456789012345\n",
	 ":8", "model must be 1 to 64 characters"},
	{"attestation required without device anchors",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nattestation = required\n",
	 ":9", "attestation = required in class a needs device-anchors"},
	{"attestation optional without device anchors",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nattestation = optional\n",
	 ":9", "attestation = optional in class a needs device-anchors"},
	{"device anchors missing",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\ndevice-anchors = nope.pem\n",
	 ":9", "cannot use"},
	{"device anchors that are no certificates",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\n"
			     "device-anchors = notakey.key\n",
	 ":9", "device anchors of class a unusable"},
	{"device anchors holding a device certificate",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\n"
			     "device-anchors = pki/dev1.pem\n",
	 ":9", "device anchors of class a unusable"},
	{"device anchors a directory",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\ndevice-anchors = crl\n",
	 ":9", "is not a regular file"},
	{"unknown attestation policy",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nattestation = maybe\n",
	 ":9", "attestation must be none, optional or required"},
	{"unknown proof policy",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nproof = yes\n", ":9",
	 "proof must be required or allowed"},
	{"class threshold of zero",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nrelease-threshold = 0\n",
	 ":9", "release-threshold must be 1 to 16"},
	{"class hops of zero",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nmax-custody-hops = 0\n",
	 ":9", "max-custody-hops must be 1 to 99"},
	{"class token ttl not a duration",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nmax-token-ttl = 12\n",
	 ":9", "'max-token-ttl' must be a duration"},
	{"class custody age not a duration",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nmax-custody-age = long\n",
	 ":9", "'max-custody-age' must be a duration"},
	{"class require-custody not a bool",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nrequire-custody = 1\n",
	 ":9", "'require-custody' must be yes or no"},
	{"unknown waiver",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nwaivable = target "
			     "signatures\n",
	 ":9", "waivable must list downgrade, expired, target, custody or "
	       "attestation, or be none"},
	{"none among waivers",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nwaivable = none target\n",
	 ":9", "waivable must list"},
	{"unknown class key",
	 STATION_OK TRUST_OK "[class a]\nmodel = M\nstale-crl = refuse\n",
	 ":9", "unknown key 'stale-crl' in [class a]"},
	/* [station] report-media (docs/media.md "Report sticks") */
	{"report-media without mount-media",
	 STATION_OK "report-media = /run/reports\n" TRUST_OK, ":5",
	 "report-media needs mount-media = yes"},
	{"report-media with mount-media = no",
	 STATION_OK "mount-media = no\nreport-media = /run/reports\n" TRUST_OK,
	 ":6", "report-media needs mount-media = yes"},
	{"report-media inside media",
	 STATION_OK "mount-media = yes\nmedia = /run/media\n"
	 "report-media = /run/media/reports\n" TRUST_OK, ":7",
	 "report-media /run/media/reports is inside media /run/media: a "
	 "report stick must never be a bundle source"},
	{"report-media the media root itself",
	 STATION_OK "mount-media = yes\nmedia = /run/media\n"
	 "report-media = /run//media/\n" TRUST_OK, ":7", "is inside media"},
	{"report-media inside media by a detour",
	 STATION_OK "mount-media = yes\nmedia = m\n"
	 "report-media = r/../m/./reports\n" TRUST_OK, ":7",
	 "is inside media"},
	{"report-media containing media",
	 STATION_OK "mount-media = yes\nmedia = /run/x/media\n"
	 "report-media = /run/x\n" TRUST_OK, ":7",
	 "report-media /run/x contains media /run/x/media"},
	{"smp wait not a duration",
	 STATION_OK TRUST_OK "[port p]\npath = /dev/x\nmode = smp\n"
			     "recovery-wait = soon\n", ":10",
	 "'recovery-wait' must be a duration"},
};

static void config_refuses_each_problem_naming_file_and_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct stn_config *c = NULL;
		struct stn_diag d;
		int rc = load_text(bad[i].text, &c, &d);
		if (rc != STN_E_CONFIG || !strstr(d.where, "station.conf") ||
		    !strstr(d.where, bad[i].where) ||
		    !strstr(d.text, bad[i].reason))
			fail_msg("%s: rc %d where '%s' text '%s'", bad[i].title,
				 rc, d.where, d.text);
		assert_null(c);
		assert_int_equal(stn_err_exit(rc), STN_EXIT_USAGE);
	}
}

/* Classes resolve against [trust]: what a class leaves out is [trust]'s,
 * a model no class names gets the default class (formats §8). */
static void config_reads_classes_and_resolves_them_against_trust(void **state)
{
	static const char text[] =
		STATION_OK
		"[trust]\nanchors = roots.pem\nrelease-threshold = 3\n"
		"max-token-ttl = 24h\nmax-custody-age = 7d\n"
		"max-custody-hops = 5\nrequire-custody = no\n"
		"[class tx200]\n"
		"model = TX-200  TX-210\n"
		"device-anchors = pki/mfg-anchors.pem\n"
		"attestation = required\n"
		"proof = required\n"
		"release-threshold = 2\n"
		"require-custody = yes\n"
		"max-token-ttl = 12h\n"
		"max-custody-age = 2d\n"
		"max-custody-hops = 3\n"
		"waivable = downgrade target attestation\n"
		"[class legacy]\n"
		"model = TX-100\n"
		"[class mixed]\n"
		"model = TX-300\n"
		"device-anchors = /%s/pki/mfg-anchors.pem\n"
		"attestation = optional\n"
		"proof = allowed\n"
		"waivable = none\n";
	char conf[sizeof(text) + 4200], want[4200];
	struct stn_config *c = NULL;
	const struct stn_class *k;
	struct stn_diag d;

	(void)state;
	snprintf(conf, sizeof(conf), text, dir);
	if (load_text(conf, &c, &d))
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(c->nclasses, 3);

	k = stn_config_class(c, "TX-210");
	assert_string_equal(k->label, "tx200");
	assert_int_equal(k->nmodels, 2);
	assert_string_equal(k->models[0], "TX-200");
	assert_string_equal(k->models[1], "TX-210");
	assert_ptr_equal(stn_config_class(c, "TX-200"), k);
	/* relative to the configuration file, like every other path */
	snprintf(want, sizeof(want), "%s/pki/mfg-anchors.pem", dir);
	assert_string_equal(k->device_anchors, want);
	assert_int_equal(k->attestation, STN_ATTEST_REQUIRED);
	assert_int_equal(k->proof_required, 1);
	assert_int_equal(k->release_threshold, 2);
	assert_int_equal(k->require_custody, 1);
	assert_true(k->max_token_ttl == 12 * 3600);
	assert_true(k->max_custody_age == 2 * 86400);
	assert_int_equal(k->max_custody_hops, 3);
	assert_int_equal(k->waivable, CU_WAIVE_DOWNGRADE | CU_WAIVE_TARGET |
					      CU_WAIVE_ATTESTATION);
	assert_int_equal(k->line, 13); /* its model line */

	/* a class that sets nothing else has [trust]'s values */
	k = stn_config_class(c, "TX-100");
	assert_string_equal(k->label, "legacy");
	assert_null(k->device_anchors);
	assert_int_equal(k->attestation, STN_ATTEST_NONE);
	assert_int_equal(k->proof_required, 0);
	assert_int_equal(k->release_threshold, 3);
	assert_int_equal(k->require_custody, 0);
	assert_true(k->max_token_ttl == 24 * 3600);
	assert_true(k->max_custody_age == 7 * 86400);
	assert_int_equal(k->max_custody_hops, 5);
	assert_int_equal(k->waivable, CU_WAIVE_ALL);

	k = stn_config_class(c, "TX-300");
	assert_int_equal(k->attestation, STN_ATTEST_OPTIONAL);
	assert_int_equal(k->proof_required, 0);
	assert_int_equal(k->waivable, 0);
	assert_string_equal(stn_attest_policy_name(k->attestation),
			    "optional");

	/* a model no class names, and a near miss (exact match only) */
	k = stn_config_class(c, "TX-2000");
	assert_ptr_equal(k, &c->default_class);
	assert_ptr_equal(stn_config_class(c, "tx-200"), &c->default_class);
	assert_string_equal(k->label, "default");
	assert_int_equal(k->nmodels, 0);
	assert_null(k->device_anchors);
	assert_int_equal(k->attestation, STN_ATTEST_NONE);
	assert_int_equal(k->proof_required, 0);
	assert_int_equal(k->release_threshold, 3);
	assert_int_equal(k->require_custody, 0);
	assert_true(k->max_token_ttl == 24 * 3600);
	assert_true(k->max_custody_age == 7 * 86400);
	assert_int_equal(k->max_custody_hops, 5);
	assert_int_equal(k->waivable, CU_WAIVE_ALL);
	stn_config_free(c);
}

/* Without any [class], every device has the default class. */
static void config_without_classes_has_the_default_class(void **state)
{
	struct stn_config *c = NULL;
	struct stn_diag d;

	(void)state;
	assert_int_equal(load_text(good, &c, &d), 0);
	assert_int_equal(c->nclasses, 0);
	const struct stn_class *k = stn_config_class(c, "TX-200");
	assert_ptr_equal(k, &c->default_class);
	assert_string_equal(k->label, "default");
	assert_int_equal(k->release_threshold, 1);
	assert_int_equal(k->require_custody, 1);
	assert_int_equal(k->waivable, CU_WAIVE_ALL);
	assert_int_equal(k->attestation, STN_ATTEST_NONE);
	assert_string_equal(stn_attest_policy_name(STN_ATTEST_NONE), "none");
	assert_string_equal(stn_attest_policy_name(STN_ATTEST_REQUIRED),
			    "required");
	stn_config_free(c);
}

/* The delivery key and certificate (formats §10) are paths relative to
 * the file, like every other; their role and match are the session's to
 * check, against the trust store. */
static void config_reads_delivery_key_relative_to_the_file(void **state)
{
	struct stn_config *c = NULL;
	struct stn_diag d;
	char want[4200];

	(void)state;
	assert_int_equal(load_text(STATION_OK "delivery-key = station.key\n"
				   "delivery-cert = station.pem\n" TRUST_OK,
				   &c, &d), 0);
	snprintf(want, sizeof(want), "%s/station.key", dir);
	assert_string_equal(c->delivery_key, want);
	snprintf(want, sizeof(want), "%s/station.pem", dir);
	assert_string_equal(c->delivery_cert, want);
	stn_config_free(c);
}

/* report-media beside media, relative to the file like every path; a
 * name that merely starts like media's is not inside it. */
static void config_reads_report_media_beside_media(void **state)
{
	struct stn_config *c = NULL;
	struct stn_diag d;
	char want[4200];

	(void)state;
	assert_int_equal(load_text(STATION_OK TRUST_OK, &c, &d), 0);
	assert_null(c->report_media);
	stn_config_free(c);
	if (load_text(STATION_OK "mount-media = yes\nmedia = media\n"
				 "report-media = media-reports\n" TRUST_OK,
		      &c, &d) != 0)
		fail_msg("%s: %s", d.where, d.text);
	snprintf(want, sizeof(want), "%s/media-reports", dir);
	assert_string_equal(c->report_media, want);
	assert_int_equal(c->mount_media, 1);
	stn_config_free(c);
}

static void config_missing_file_is_a_configuration_error(void **state)
{
	struct stn_config *c = NULL;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(stn_config_load("/nonexistent/station.conf", &c, &d),
			 STN_E_CONFIG);
	assert_non_null(strstr(d.text, "cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_loads_values_and_defaults),
		cmocka_unit_test(
			config_refuses_each_problem_naming_file_and_line),
		cmocka_unit_test(config_missing_file_is_a_configuration_error),
		cmocka_unit_test(config_reads_report_media_beside_media),
		cmocka_unit_test(
			config_reads_delivery_key_relative_to_the_file),
		cmocka_unit_test(
			config_reads_classes_and_resolves_them_against_trust),
		cmocka_unit_test(config_without_classes_has_the_default_class),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
