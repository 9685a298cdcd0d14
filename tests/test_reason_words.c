/* tests/test_reason_words.c: a refusal in the technician's words
 * (station/reason_words.h), one case per rule with the wording its check
 * produces (custody/verify.c, custody/token.c, the transports): the
 * cause leads, the rule follows, the file or device comes last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "station/app_internal.h"
#include "station/base/error.h"
#include "station/canon.h"
#include "station/journal.h"
#include "station/reason_words.h"

static char out[2048];

/* The words for (code, where, text), checked to start with `lead`, to
 * name the rule after the cause, and to end with the place. */
static const char *words(int code, const char *where, const char *text,
			 const struct stn_reason_ctx *ctx, const char *lead)
{
	struct stn_diag d;
	char rule[64];
	const char *r;

	stn_diag_init(&d);
	stn_fail(&d, code, where, "%s", text);
	stn_reason_words(&d, ctx, out, sizeof(out));
	if (strncmp(out, lead, strlen(lead)) != 0)
		fail_msg("'%s' does not lead with '%s'", out, lead);
	snprintf(rule, sizeof(rule), "; rule %s", stn_err_rule(code));
	r = strstr(out, rule);
	assert_non_null(r);
	if (where && where[0]) {
		const char *w = strstr(out, where);
		assert_non_null(w);
		assert_true(w > r); /* paths last */
	}
	return out;
}

static void target_model(void **st)
{
	(void)st;
	words(STN_E_TARGET, "/tmp/m/tx200/manifest",
	      "device serial:/tmp/d/unit-c (serial SN-0100) is model TX-100, "
	      "the bundle is for TX-200", NULL,
	      "wrong model: unit is TX-100, bundle is for TX-200 (serial "
	      "SN-0100); rule target; /tmp/m/tx200/manifest");
	/* The unit's path is there, last. */
	assert_non_null(strstr(out, "; device serial:/tmp/d/unit-c"));
	assert_null(strstr(out, "unit-c (serial"));
}

static void target_hardware(void **st)
{
	(void)st;
	words(STN_E_TARGET, "manifest",
	      "device serial:/x/u (serial SN-7) is hardware revA, the bundle "
	      "accepts only revB ...", NULL,
	      "wrong hardware: unit is revA, bundle accepts only revB ... "
	      "(serial SN-7)");
}

static void downgrade(void **st)
{
	const struct stn_reason_ctx ctx = {"2.2.0", "2.4.1"};
	(void)st;
	words(STN_E_DOWNGRADE, "manifest",
	      "sequence 40 is older than installed 41 on SN-0001 (reported "
	      "by the device)", &ctx,
	      "bundle is older than what the unit runs: 2.2.0 (seq 40) < "
	      "2.4.1 (seq 41) on SN-0001 (reported by the device); rule "
	      "downgrade; manifest");
	/* Without the versions, the sequences still say it. */
	words(STN_E_DOWNGRADE, "manifest",
	      "sequence 40 is older than installed 41 on SN-0001 (journal)",
	      NULL, "bundle is older than what the unit runs: seq 40 < seq 41");
}

static void reinstall(void **st)
{
	const struct stn_reason_ctx ctx = {"2.4.1", NULL};
	(void)st;
	words(STN_E_REINSTALL, "manifest",
	      "sequence 42 equals the installed sequence on SN-0001 (journal);"
	      " confirm to reinstall", &ctx,
	      "unit SN-0001 already runs 2.4.1 (seq 42): installing it again "
	      "needs your confirmation");
}

static void signatures(void **st)
{
	(void)st;
	words(STN_E_THRESHOLD, "b/manifest",
	      "unsigned: no manifest.sig or manifest.LABEL.sig in the bundle",
	      NULL, "bundle is not signed");
	words(STN_E_THRESHOLD, "b/manifest",
	      "1 valid release signature(s) from distinct keys, 2 required",
	      NULL, "not enough release signatures: 1 valid, 2 needed");
	words(STN_E_THRESHOLD, "b/manifest",
	      "1 valid release signature(s) from distinct keys, class tx200 "
	      "requires 2", NULL,
	      "not enough release signatures: 1 valid, 2 needed");
	words(STN_E_SIGNATURE, "b/manifest.sig", "ECDSA verify failed", NULL,
	      "signature does not verify: ECDSA verify failed; rule "
	      "signature; b/manifest.sig");
	words(STN_E_CHAIN, "b/manifest.sig", "unknown issuer", NULL,
	      "signer's certificate is not trusted here: unknown issuer");
	words(STN_E_ROLE, "b/manifest.sig", "not a release key", NULL,
	      "signer may not sign this");
	words(STN_E_TWOROLES, "c.pem", "release and custody", NULL,
	      "signer's certificate has more than one duty");
	words(STN_E_ALGORITHM, "c.pem", "RSA-1024", NULL,
	      "signature uses a weak algorithm or key");
}

static void validity(void **st)
{
	(void)st;
	words(STN_E_VALIDITY, "b/manifest",
	      "expired at 2026-01-01T00:00:00Z; session started "
	      "2026-02-01T00:00:00Z", NULL,
	      "bundle has expired: expired at 2026-01-01");
	words(STN_E_VALIDITY, "b/manifest",
	      "not valid before its created time 2027-01-01T00:00:00Z; session "
	      "started 2026-02-01T00:00:00Z", NULL, "bundle is not valid yet");
}

static void images(void **st)
{
	(void)st;
	words(STN_E_IMAGE, "/m/b/app.bin", "sha256 is 00ab, manifest says 11cd",
	      NULL, "image was altered or damaged: its checksum is not the "
		    "manifest's");
	words(STN_E_IMAGE, "/m/b/app.bin", "size is 10 bytes, manifest says 12",
	      NULL, "image was altered or cut short: size is 10 bytes");
	words(STN_E_IMAGE, "/m/b/app.bin",
	      "missing: named by the manifest but not in the bundle", NULL,
	      "image missing from the bundle");
	words(STN_E_IMAGE, "keys/",
	      "image app is encrypted for ab12; this station has no delivery "
	      "key configured", NULL,
	      "image is encrypted and this station cannot open it");
	words(STN_E_IMAGE, "b", "check images was not run", NULL,
	      "image is damaged or not the released one: check images");
}

static void custody_and_tokens(void **st)
{
	(void)st;
	words(STN_E_CUSTODY, "b/custody",
	      "custody chain has 5 hops, class tx200 allows 3", NULL,
	      "custody chain incomplete: custody chain has 5 hops, class "
	      "tx200 allows 3; rule custody; b/custody");
	words(STN_E_TOKEN, "tokens/rollback.tok", "is not signed", NULL,
	      "exception token refused: is not signed");
}

static void devices(void **st)
{
	(void)st;
	words(STN_E_ATTESTATION, "serial:/d/unit-d",
	      "certificate does not chain to a device anchor of class tx200 "
	      "(issuer CN=Foreign Devices Root)", NULL,
	      "unit could not prove it is genuine: its certificate is not "
	      "from a manufacturer this station trusts (Foreign Devices "
	      "Root)");
	words(STN_E_NOATTEST, "serial:/d/u", "no device key", NULL,
	      "unit cannot prove it is genuine (no device key)");
	words(STN_E_IDENTITY, "serial:/d/u", "device reports no serial number",
	      NULL, "unit's identity is unusable: device reports no serial");
	words(STN_E_VERIFY_DEVICE, "serial:/d/u",
	      "image app: device stored sha256 00, manifest says 11", NULL,
	      "unit stored different bytes than the image: image app");
	words(STN_E_PROOF, "serial:/d/u", "class tx200 requires proof", NULL,
	      "install not proven as the unit's class requires");
	words(STN_E_AUTHORIZATION, "serial:/d/u", "nonce mismatch", NULL,
	      "unit refused the station's authorization: nonce mismatch");
	words(STN_E_DEVICE, "serial:/tmp/d/unit-a", "the other end hung up",
	      NULL, "unit stopped answering or failed: the other end hung up; "
		    "rule device; serial:/tmp/d/unit-a");
	words(STN_E_TIMEOUT, "serial:/d/u", "no answer in 2 s", NULL,
	      "unit did not answer in time");
	words(STN_E_NODEVICE, "usb:1-2", "disconnected", NULL,
	      "unit is gone (unplugged?)");
	words(STN_E_INTERRUPTED, "serial:/d/u", "interrupted by signal 2",
	      NULL, "station was stopped during the install");
	words(STN_E_CLOCK, "", "clock 2020 is behind floor 2026", NULL,
	      "station clock is wrong");
}

/* A text that already says the meaning is not said twice, and a code
 * this module does not know still reads whole. */
static void no_repeat_unknown(void **st)
{
	(void)st;
	words(STN_E_CUSTODY, "b/custody/02.rec",
	      "custody chain incomplete: hop 2 missing",
	      NULL, "custody chain incomplete: hop 2 missing; rule");
	words(STN_E_CHAINBROKEN, "journal.db", "record 7", NULL,
	      "journal hash chain is broken: record 7");
}

/* A stick pulled while it is staged: the cause in the technician's
 * words, with the read error's facts after it; other I/O errors keep the
 * plain meaning. */
static void media_pulled(void **st)
{
	(void)st;
	words(STN_E_IO, "/run/media/sda/b/big.bin",
	      "read error on media after 3145728 bytes: Input/output error "
	      "(media pulled or damaged?)",
	      NULL, "the stick could not be read: read error on media after "
		    "3145728 bytes");
	words(STN_E_IO, "/var/lib/station/x", "cannot create: No space left",
	      NULL, "cannot read or write a file: cannot create");
}

/* Small buffers are cut at a character boundary, never overflowed. */
static void small_buffer(void **st)
{
	struct stn_diag d;
	char b[12];
	(void)st;
	stn_diag_init(&d);
	stn_fail(&d, STN_E_TOKEN, "t", "é%s", "ééééééééé");
	stn_reason_words(&d, NULL, b, sizeof(b));
	assert_true(strlen(b) < sizeof(b));
	assert_string_equal(b, "exception t");
}

/* A journaled refusal, as the text UI's journal lists it: the fields that
 * say what happened, then the reason in words, cause first; the raw rule
 * and reason fields are not repeated before it. */
static void journal_line_gives_a_refusal_in_words(void **state)
{
	static const struct stn_field f[] = {
		{"device", "serial:/dev/ttyUSB0"},
		{"rule", "target"},
		{"code", "-32"},
		{"where", "manifest"},
		{"reason", "device serial:/dev/ttyUSB0 (serial SN-0100) is model "
			   "TX-100, the bundle is for TX-200"},
	};
	struct stn_event e = {.seq = 7, .time = 1796400000,
			      .type = "device-refused", .fields = f,
			      .nfields = sizeof(f) / sizeof(f[0])};
	char line[1024];

	(void)state;
	app_journal_text(&e, line, sizeof(line));
	assert_non_null(strstr(line, "   7 "));
	assert_non_null(strstr(line, "device-refused device=serial:/dev/ttyUSB0: "
				     "wrong model: unit is TX-100, bundle is "
				     "for TX-200"));
	assert_null(strstr(line, "rule=target"));
	assert_null(strstr(line, "reason="));
	assert_non_null(strstr(line, "rule target"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(target_model),
		cmocka_unit_test(target_hardware),
		cmocka_unit_test(downgrade),
		cmocka_unit_test(reinstall),
		cmocka_unit_test(signatures),
		cmocka_unit_test(validity),
		cmocka_unit_test(images),
		cmocka_unit_test(custody_and_tokens),
		cmocka_unit_test(devices),
		cmocka_unit_test(no_repeat_unknown),
		cmocka_unit_test(media_pulled),
		cmocka_unit_test(small_buffer),
		cmocka_unit_test(journal_line_gives_a_refusal_in_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
