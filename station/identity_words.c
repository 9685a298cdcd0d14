/* station/identity_words.c: the technician's words for a device's
 * identity.  The causes of rule `attestation` are those formats §9 lists
 * (unsigned, bad signature, certificate not chaining to the class's device
 * anchors, serial not in the certificate, wrong nonce, revoked) and those
 * custody/devid.h adds (a station role, validity); one table maps each to
 * what it means for the unit in hand. */
#include "station/identity_words.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "station/config.h"
#include "station/install.h"

const char *stn_id_verdict_tag(enum stn_id_verdict v)
{
	switch (v) {
	case STN_ID_GENUINE: return "GENUINE";
	case STN_ID_ALLOWED: return "UNPROVEN OK";
	case STN_ID_UNPROVEN: return "UNPROVEN";
	case STN_ID_NOT_GENUINE: return "NOT GENUINE";
	default: return "NOT CHECKED";
	}
}

void stn_words_say(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= cap) {
		size_t end = cap - 1, lead = end;
		unsigned char c;
		size_t want;

		/* Find the last character's lead byte; drop that character
		 * when the cut left it shorter than its lead byte says. */
		while (lead > 0 && ((unsigned char)buf[lead - 1] & 0xC0) == 0x80)
			lead--;
		if (lead == 0)
			return;
		c = (unsigned char)buf[lead - 1];
		want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		if (end - (lead - 1) < want)
			buf[lead - 1] = '\0';
	}
}

/* The CN of a DN as mbedTLS ("CN=x, O=y") or OpenSSL ("/CN=x/O=y") write
 * it, or as a reason quotes one; "" when there is none. */
static void dn_cn(const char *dn, char *out, size_t cap)
{
	const char *p = dn, *end;
	size_t n;

	out[0] = '\0';
	while (p && (p = strstr(p, "CN=")) != NULL) {
		if (p == dn || strchr(" ,/(\"'", p[-1]))
			break;
		p += 3;
	}
	if (!p)
		return;
	p += 3;
	end = p + strcspn(p, ",/);\"'\n");
	while (end > p && (end[-1] == ' ' || end[-1] == '.'))
		end--;
	n = (size_t)(end - p);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* What a failed attestation means, by the words in its reason; first
 * match wins, so the more specific come first (a revoked certificate's
 * reason may also speak of its chain, an expired one of its validity). */
static const struct {
	const char *const words[4]; /* any of these, case ignored */
	const char *cause;
	int names_issuer; /* add "(MANUFACTURER)" when known */
} causes[] = {
	{{"revoked"}, "its certificate has been revoked", 0},
	{{"expired", "not yet valid", "validity"},
	 "its certificate is out of date", 0},
	{{"role", "extendedkeyusage", "keyusage", "is a ca"},
	 "its certificate is not a device certificate", 0},
	{{"anchor", "chain", "not trusted", "unknown issuer"},
	 "its certificate is not from a manufacturer this station trusts", 1},
	{{"nonce", "replay", "challenge"},
	 "it answered with an old proof, not this station's fresh challenge",
	 0},
	{{"serial"},
	 "its certificate does not name the serial number it claims", 0},
	{{"unsigned", "no signature", "no certificate", "carries no"},
	 "it sent no signed proof", 0},
	{{"signature"}, "its signature does not match its certificate", 0},
};

static int mentions(const char *text, const char *const words[4])
{
	for (int i = 0; i < 4 && words[i]; i++)
		if (strcasestr(text, words[i]))
			return 1;
	return 0;
}

static const char *class_name(const struct stn_identity_proof *p)
{
	return p->cls && p->cls->label ? p->cls->label : "default";
}

int stn_attestation_cause(const char *why, const char *issuer, char *buf,
			  size_t cap)
{
	char mfg[160] = "";

	if (issuer)
		dn_cn(issuer, mfg, sizeof(mfg));
	if (!mfg[0])
		dn_cn(why, mfg, sizeof(mfg));
	for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++) {
		if (!mentions(why, causes[i].words))
			continue;
		stn_words_say(buf, cap, "%s%s%s%s", causes[i].cause,
		    causes[i].names_issuer && mfg[0] ? " (" : "",
		    causes[i].names_issuer && mfg[0] ? mfg : "",
		    causes[i].names_issuer && mfg[0] ? ")" : "");
		return 1;
	}
	stn_words_say(buf, cap, "%s", why[0] ? why : "its proof was refused");
	return 0;
}

static enum stn_id_verdict failed(const struct stn_identity_proof *p,
				  char *buf, size_t cap)
{
	char cause[400];

	(void)stn_attestation_cause(p->why, p->att.cert_issuer, cause,
				    sizeof(cause));
	stn_words_say(buf, cap,
	    "This unit could not prove it is genuine: %s. Do not install; "
	    "report the unit.", cause);
	return STN_ID_NOT_GENUINE;
}

enum stn_id_verdict stn_identity_words(const struct stn_identity_proof *p,
				       const char *waiver, char *buf,
				       size_t cap)
{
	enum stn_attest_policy pol =
		p->cls ? p->cls->attestation : STN_ATTEST_NONE;

	switch (p->state) {
	case CU_ATTEST_PROVEN: {
		char who[160], mfg[160];
		dn_cn(p->att.cert_subject, who, sizeof(who));
		dn_cn(p->att.cert_issuer, mfg, sizeof(mfg));
		stn_words_say(buf, cap, "Genuine: certificate %s from %s%s",
		    who[0] ? who : p->att.cert_subject,
		    mfg[0] ? mfg : p->att.cert_issuer,
		    p->att.stale_crl ? " (its revocation list is out of date)"
				     : "");
		return STN_ID_GENUINE;
	}
	case CU_ATTEST_FAILED: return failed(p, buf, cap);
	case CU_ATTEST_ABSENT:
		if (pol == STN_ATTEST_REQUIRED && waiver) {
			stn_words_say(buf, cap,
			    "Unproven, allowed by exception: this unit cannot "
			    "prove its identity; token %s waives that",
			    waiver);
			return STN_ID_ALLOWED;
		}
		if (pol == STN_ATTEST_REQUIRED) {
			stn_words_say(buf, cap,
			    "This unit cannot prove it is genuine (%s), and "
			    "class %s requires it. Do not install.",
			    p->why[0] ? p->why : "no device key",
			    class_name(p));
			return STN_ID_UNPROVEN;
		}
		stn_words_say(buf, cap,
		    "Unproven, allowed: this unit cannot prove its identity; "
		    "class %s accepts that (attestation = optional)",
		    class_name(p));
		return STN_ID_ALLOWED;
	default:
		if (!p->cls || !p->cls->models)
			stn_words_say(buf, cap, "Identity not checked: no device class "
				      "covers this model (attestation = none)");
		else
			stn_words_say(buf, cap, "Identity not checked: class %s does "
				      "not ask for it (attestation = none)",
			    class_name(p));
		return STN_ID_NOT_CHECKED;
	}
}
