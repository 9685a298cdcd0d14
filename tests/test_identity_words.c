/* tests/test_identity_words.c: the words a technician reads about a
 * device's identity (station/identity_words.h), one case per outcome of
 * formats §9 and per cause of rule `attestation`: each leads with the
 * cause and fits two 71-column lines of the text UI's device list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "station/config.h"
#include "station/identity_words.h"
#include "station/install.h"

static char *models[] = {"TX-200"};

static struct stn_class cls(enum stn_attest_policy pol)
{
	struct stn_class c;

	memset(&c, 0, sizeof(c));
	c.label = "tx200";
	c.models = models;
	c.nmodels = 1;
	c.attestation = pol;
	return c;
}

static enum stn_id_verdict words(const struct stn_identity_proof *p,
				 const char *waiver, char *buf, size_t cap)
{
	enum stn_id_verdict v = stn_identity_words(p, waiver, buf, cap);
	/* Cause first: a whole sentence, never more than the list shows. */
	assert_true(strlen(buf) <= 2 * 71 + 20);
	return v;
}

static void counterfeit_from_a_foreign_manufacturer_is_told_to_report(
	void **state)
{
	struct stn_class c = cls(STN_ATTEST_REQUIRED);
	struct stn_identity_proof p;
	char buf[400];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.cls = &c;
	p.state = CU_ATTEST_FAILED;
	snprintf(p.why, sizeof(p.why),
		 "the device certificate (issuer CN=Foreign Devices Root) "
		 "does not chain to the device anchors of class tx200");
	assert_int_equal(words(&p, NULL, buf, sizeof(buf)),
			 STN_ID_NOT_GENUINE);
	assert_string_equal(buf,
			    "This unit could not prove it is genuine: its "
			    "certificate is not from a manufacturer this "
			    "station trusts (Foreign Devices Root). Do not "
			    "install; report the unit.");
	/* The issuer as the flow read it wins over the reason's. */
	snprintf(p.att.cert_issuer, sizeof(p.att.cert_issuer),
		 "CN=Other Root, O=Other");
	words(&p, NULL, buf, sizeof(buf));
	assert_non_null(strstr(buf, "trusts (Other Root)."));
	/* A token cannot make a failed proof acceptable. */
	assert_int_equal(words(&p, "rollback.tok", buf, sizeof(buf)),
			 STN_ID_NOT_GENUINE);
}

static void each_attestation_cause_has_its_words(void **state)
{
	static const struct {
		const char *why, *cause;
	} cases[] = {
		{"the device certificate (serial 0A) is revoked",
		 "its certificate has been revoked"},
		{"the device certificate expired on 2025-01-01",
		 "its certificate is out of date"},
		{"the device certificate holds the station role",
		 "its certificate is not a device certificate"},
		{"the record's nonce is not this session's",
		 "it answered with an old proof"},
		{"the device certificate is for serial SN-2, the device "
		 "claims SN-1",
		 "its certificate does not name the serial number it claims"},
		{"the answer is unsigned", "it sent no signed proof"},
		{"the signature does not verify with the device certificate",
		 "its signature does not match its certificate"},
		/* Unknown words are quoted, not lost. */
		{"something new went wrong", "genuine: something new went "
					     "wrong. Do not install"},
	};
	struct stn_class c = cls(STN_ATTEST_OPTIONAL);
	struct stn_identity_proof p;
	char buf[400];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.cls = &c;
		p.state = CU_ATTEST_FAILED;
		snprintf(p.why, sizeof(p.why), "%s", cases[i].why);
		/* Failed is refused under every policy, optional too. */
		assert_int_equal(words(&p, NULL, buf, sizeof(buf)),
				 STN_ID_NOT_GENUINE);
		if (!strstr(buf, cases[i].cause))
			fail_msg("%s -> %s", cases[i].why, buf);
		assert_true(strncmp(buf, "This unit could not prove", 25) == 0);
	}
}

static void proven_names_certificate_and_manufacturer(void **state)
{
	struct stn_class c = cls(STN_ATTEST_REQUIRED);
	struct stn_identity_proof p;
	char buf[400];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.cls = &c;
	p.state = CU_ATTEST_PROVEN;
	snprintf(p.att.cert_subject, sizeof(p.att.cert_subject),
		 "CN=TX-200 SN-0001, serialNumber=SN-0001");
	snprintf(p.att.cert_issuer, sizeof(p.att.cert_issuer),
		 "CN=Acme TX-200 Device CA");
	assert_int_equal(words(&p, NULL, buf, sizeof(buf)), STN_ID_GENUINE);
	assert_string_equal(buf, "Genuine: certificate TX-200 SN-0001 from "
				 "Acme TX-200 Device CA");
	p.att.stale_crl = 1;
	words(&p, NULL, buf, sizeof(buf));
	assert_non_null(strstr(buf, "revocation list is out of date"));
	assert_string_equal(stn_id_verdict_tag(STN_ID_GENUINE), "GENUINE");
}

static void unproven_says_why_it_is_allowed_or_not(void **state)
{
	struct stn_class opt = cls(STN_ATTEST_OPTIONAL);
	struct stn_class req = cls(STN_ATTEST_REQUIRED);
	struct stn_identity_proof p;
	char buf[400];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.state = CU_ATTEST_ABSENT;
	snprintf(p.why, sizeof(p.why), "plain YMODEM cannot attest");
	p.cls = &opt;
	assert_int_equal(words(&p, NULL, buf, sizeof(buf)), STN_ID_ALLOWED);
	assert_non_null(strstr(buf, "class tx200 accepts that "
				    "(attestation = optional)"));
	p.cls = &req;
	assert_int_equal(words(&p, "ops-881.tok", buf, sizeof(buf)),
			 STN_ID_ALLOWED);
	assert_non_null(strstr(buf, "token ops-881.tok waives that"));
	assert_int_equal(words(&p, NULL, buf, sizeof(buf)), STN_ID_UNPROVEN);
	assert_string_equal(buf, "This unit cannot prove it is genuine (plain "
				 "YMODEM cannot attest), and class tx200 "
				 "requires it. Do not install.");
}

static void not_asked_names_the_class_or_its_absence(void **state)
{
	struct stn_class none = cls(STN_ATTEST_NONE);
	struct stn_identity_proof p;
	char buf[400];

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(words(&p, NULL, buf, sizeof(buf)),
			 STN_ID_NOT_CHECKED);
	assert_non_null(strstr(buf, "no device class covers this model"));
	p.cls = &none;
	words(&p, NULL, buf, sizeof(buf));
	assert_non_null(strstr(buf, "class tx200 does not ask"));
}

static void a_short_buffer_is_cut_at_a_character(void **state)
{
	struct stn_identity_proof p;
	char fits[44], cut[43];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.state = CU_ATTEST_FAILED;
	snprintf(p.why, sizeof(p.why), "\xc3\xa9\xc3\xa9");
	/* "This unit could not prove it is genuine: " is 41 bytes; an e
	 * acute takes 2 more. */
	stn_identity_words(&p, NULL, fits, sizeof(fits));
	assert_int_equal(strlen(fits), 43);
	stn_identity_words(&p, NULL, cut, sizeof(cut));
	assert_int_equal(strlen(cut), 41); /* no lone lead byte */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			counterfeit_from_a_foreign_manufacturer_is_told_to_report),
		cmocka_unit_test(each_attestation_cause_has_its_words),
		cmocka_unit_test(proven_names_certificate_and_manufacturer),
		cmocka_unit_test(unproven_says_why_it_is_allowed_or_not),
		cmocka_unit_test(not_asked_names_the_class_or_its_absence),
		cmocka_unit_test(a_short_buffer_is_cut_at_a_character),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
