/* station/reason_words.c: a refusal in the technician's words.  Each rule
 * gets the plain meaning a technician acts on; for the wordings the
 * checks produce (custody/verify.c for target, sequence, signatures,
 * validity, images and custody; custody/token.c for tokens; the
 * transports for devices), the facts that matter are taken out of the
 * text and said cause first.  A wording not recognised is quoted after
 * the plain meaning, so nothing is lost.  Attestation causes are
 * station/identity_words.c's (one table for both). */
#include "station/reason_words.h"

#include <stdio.h>
#include <string.h>

#include "station/base/error.h"
#include "station/identity_words.h"

/* The plain meaning of each code a technician meets, in their words.
 * Codes not listed fall back to the error list's message. */
static const struct {
	int code;
	const char *plain;
} plain[] = {
	{STN_E_SIGNATURE, "signature does not verify"},
	{STN_E_CHAIN, "signer's certificate is not trusted here"},
	{STN_E_ROLE, "signer may not sign this"},
	{STN_E_TWOROLES, "signer's certificate has more than one duty"},
	{STN_E_ALGORITHM, "signature uses a weak algorithm or key"},
	{STN_E_THRESHOLD, "not enough release signatures"},
	{STN_E_VALIDITY, "bundle is out of date"},
	{STN_E_IMAGE, "image is damaged or not the released one"},
	{STN_E_TARGET, "wrong unit for this bundle"},
	{STN_E_DOWNGRADE, "bundle is older than what the unit runs"},
	{STN_E_REINSTALL, "unit already runs this release"},
	{STN_E_CUSTODY, "custody chain incomplete"},
	{STN_E_TOKEN, "exception token refused"},
	{STN_E_IDENTITY, "unit's identity is unusable"},
	{STN_E_CLOCK, "station clock is wrong (behind its trusted time)"},
	{STN_E_VERIFY_DEVICE, "unit stored different bytes than the image"},
	{STN_E_ATTESTATION, "unit could not prove it is genuine"},
	{STN_E_NOATTEST, "unit cannot prove it is genuine (no device key)"},
	{STN_E_PROOF, "install not proven as the unit's class requires"},
	{STN_E_AUTHORIZATION, "unit refused the station's authorization"},
	{STN_E_DEVICE, "unit stopped answering or failed"},
	{STN_E_TIMEOUT, "unit did not answer in time"},
	{STN_E_PROTOCOL, "unit answered something unexpected"},
	{STN_E_CANCELLED, "transfer cancelled by the unit"},
	{STN_E_NODEVICE, "unit is gone (unplugged?)"},
	{STN_E_INTERRUPTED, "station was stopped during the install"},
	{STN_E_SYNTAX, "a file of the bundle is malformed"},
	{STN_E_UNSAFE, "unsafe file on the media"},
	{STN_E_TOOBIG, "a file is larger than allowed"},
	{STN_E_IO, "cannot read or write a file"},
	{STN_E_JOURNAL, "journal error"},
};

static const char *plain_words(int code)
{
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (plain[i].code == code)
			return plain[i].plain;
	return stn_strerror(code);
}

/* " (seq N)" after a version, or "seq N" alone. */
static void ver_seq(const char *version, const char *seq, char *out,
		    size_t cap)
{
	if (version && version[0])
		stn_words_say(out, cap, "%s (seq %s)", version, seq);
	else
		stn_words_say(out, cap, "seq %s", seq);
}

/* Wordings with facts worth leading with; 1 when one matched. */
static int known_cause(const struct stn_diag *d,
		       const struct stn_reason_ctx *ctx, char *buf, size_t cap)
{
	const char *t = d->text;
	const char *bv = ctx ? ctx->bundle_version : NULL;
	const char *uv = ctx ? ctx->unit_version : NULL;
	char a[300], b[300], c[300], e[300];
	unsigned n1, n2;

	switch (d->code) {
	case STN_E_TARGET:
		/* "device D (serial S) is model M, the bundle is for N" */
		if (sscanf(t, "device %*s (serial %64[^)]) is model %256[^,], "
			      "the bundle is for %256[^\n]", a, b, c) == 3) {
			stn_words_say(buf, cap, "wrong model: unit is %s, bundle "
				      "is for %s (serial %s)", b, c, a);
			return 1;
		}
		if (sscanf(t, "device %*s (serial %64[^)]) is hardware "
			      "%256[^,], the bundle accepts only %256[^\n]",
			   a, b, c) == 3) {
			stn_words_say(buf, cap, "wrong hardware: unit is %s, "
				      "bundle accepts only %s (serial %s)", b,
				      c, a);
			return 1;
		}
		return 0;
	case STN_E_DOWNGRADE:
		/* "sequence N is older than installed M on S (SOURCE)" */
		if (sscanf(t, "sequence %299s is older than installed %299s "
			      "on %299s (%299[^)])", a, b, c, e) == 4) {
			char x[400], y[400];
			ver_seq(bv, a, x, sizeof(x));
			ver_seq(uv, b, y, sizeof(y));
			stn_words_say(buf, cap, "bundle is older than what the "
				      "unit runs: %s < %s on %s (%s)", x, y, c,
				      e);
			return 1;
		}
		return 0;
	case STN_E_REINSTALL:
		/* "sequence N equals the installed sequence on S (SOURCE);
		 * confirm to reinstall" */
		if (sscanf(t, "sequence %299s equals the installed sequence on "
			      "%299s", a, c) == 2) {
			char x[400];
			ver_seq(bv, a, x, sizeof(x));
			stn_words_say(buf, cap, "unit %s already runs %s: "
				      "installing it again needs your "
				      "confirmation", c, x);
			return 1;
		}
		return 0;
	case STN_E_THRESHOLD:
		if (strncmp(t, "unsigned", 8) == 0) {
			stn_words_say(buf, cap, "bundle is not signed: no "
				      "release signature in it");
			return 1;
		}
		/* "N valid release signature(s) from distinct keys, [class
		 * C requires | M required]..." */
		if (sscanf(t, "%u valid release signature(s) from distinct "
			      "keys, %u required", &n1, &n2) == 2 ||
		    sscanf(t, "%u valid release signature(s) from distinct "
			      "keys, class %*s requires %u", &n1, &n2) == 2) {
			const char *rest = strstr(t, "required");
			rest = rest ? rest + 8 : "";
			if (*rest == ':' || *rest == ';')
				rest++;
			while (*rest == ' ')
				rest++;
			stn_words_say(buf, cap, "not enough release signatures: "
				      "%u valid, %u needed%s%s", n1, n2,
				      *rest ? "; " : "", rest);
			return 1;
		}
		return 0;
	case STN_E_VALIDITY:
		if (strncmp(t, "expired at ", 11) == 0) {
			stn_words_say(buf, cap, "bundle has expired: %s", t);
			return 1;
		}
		if (strncmp(t, "not valid before", 16) == 0) {
			stn_words_say(buf, cap, "bundle is not valid yet: %s",
				      t);
			return 1;
		}
		return 0;
	case STN_E_IMAGE:
		if (strncmp(t, "sha256 is ", 10) == 0) {
			/* The hashes are in the detail (the check's text),
			 * not in the line a list shows. */
			stn_words_say(buf, cap, "image was altered or damaged: "
				      "its checksum is not the manifest's");
			return 1;
		}
		if (strncmp(t, "size is ", 8) == 0) {
			stn_words_say(buf, cap, "image was altered or cut "
				      "short: %s", t);
			return 1;
		}
		if (strncmp(t, "missing", 7) == 0) {
			stn_words_say(buf, cap, "image missing from the bundle "
				      "(%s)", t);
			return 1;
		}
		if (strstr(t, "encrypted for") || strstr(t, "wrapped key")) {
			stn_words_say(buf, cap, "image is encrypted and this "
				      "station cannot open it: %s", t);
			return 1;
		}
		return 0;
	case STN_E_IO:
		/* media/stage.c: "read error on media after N bytes: ..."
		 * (the stick pulled, or failing, while it was staged) */
		if (strncmp(t, "read error on media", 19) == 0) {
			stn_words_say(buf, cap, "the stick could not be read: "
				      "%s", t);
			return 1;
		}
		return 0;
	case STN_E_ATTESTATION:
		(void)stn_attestation_cause(t, NULL, a, sizeof(a));
		stn_words_say(buf, cap, "unit could not prove it is genuine: "
			      "%s", a);
		return 1;
	default: return 0;
	}
}

void stn_reason_cause(const struct stn_diag *d,
		      const struct stn_reason_ctx *ctx, char *buf, size_t cap)
{
	const char *p = plain_words(d->code);
	size_t n = strlen(p);

	if (!cap)
		return;
	if (known_cause(d, ctx, buf, cap))
		return;
	/* A text that already says the meaning is not said twice. */
	if (!d->text[0] || strncmp(d->text, p, n) == 0)
		stn_words_say(buf, cap, "%s", d->text[0] ? d->text : p);
	else
		stn_words_say(buf, cap, "%s: %s", p, d->text);
}

/* The device a text names after "device " when it is a path or a
 * SCHEME:PATH spec (contains '/' or ':'); its length, 0 when none. */
static size_t device_in_text(const char *t, const char **at)
{
	const char *p = strstr(t, "device ");
	size_t n;

	if (!p)
		return 0;
	p += 7;
	n = strcspn(p, " ");
	if (!memchr(p, '/', n) && !memchr(p, ':', n))
		return 0;
	*at = p;
	return n;
}

void stn_reason_place(const struct stn_diag *d, char *buf, size_t cap)
{
	const char *dev = NULL;
	size_t n = device_in_text(d->text, &dev);

	if (!cap)
		return;
	/* Target refusals name the unit in the text, not in where. */
	if (n && d->code == STN_E_TARGET)
		stn_words_say(buf, cap, "%s%sdevice %.*s", d->where,
			      d->where[0] ? "; " : "", (int)n, dev);
	else
		stn_words_say(buf, cap, "%s", d->where);
}

void stn_reason_words(const struct stn_diag *d,
		      const struct stn_reason_ctx *ctx, char *buf, size_t cap)
{
	char cause[1600], place[800];

	if (!cap)
		return;
	stn_reason_cause(d, ctx, cause, sizeof(cause));
	stn_reason_place(d, place, sizeof(place));
	stn_words_say(buf, cap, "%s; rule %s%s%s", cause,
		      stn_err_rule(d->code), place[0] ? "; " : "", place);
}
