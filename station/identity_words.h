/* station/identity_words.h: what a technician reads about a device's
 * identity (formats §9), cause first and in their words: proven by which
 * certificate and manufacturer CA, unproven and why that is allowed, or
 * not genuine and what to do.  Pure (no I/O, no locks), so every front end
 * says the same thing and a test reads each wording. */
#ifndef STN_IDENTITY_WORDS_H
#define STN_IDENTITY_WORDS_H

#include <stddef.h>

struct stn_identity_proof;

enum stn_id_verdict {
	STN_ID_NOT_CHECKED = 0, /* the class says attestation = none */
	STN_ID_GENUINE,         /* proven */
	STN_ID_ALLOWED,         /* unproven; class policy or a token allows it */
	STN_ID_UNPROVEN,        /* cannot attest, and the class requires it */
	STN_ID_NOT_GENUINE,     /* tried and failed: refused under every policy */
};

/* A short tag for a list: "GENUINE", "NOT CHECKED", "UNPROVEN OK",
 * "UNPROVEN", "NOT GENUINE". */
const char *stn_id_verdict_tag(enum stn_id_verdict v);

/*
 * Write into buf (cap bytes, always NUL-terminated, cut at a character
 * boundary) the sentence for p, and return its verdict.  `waiver` names
 * the exception token that waived attestation for this unit (NULL: none).
 * A failed attestation's reason (p->why, rule `attestation`, as
 * custody/devid.h words it) is turned into the cause a technician
 * understands ("its certificate is not from a manufacturer this station
 * trusts (Foreign Devices Root)"); a reason that matches none of the known
 * causes is quoted as it is, so nothing is lost.  The manufacturer named
 * is the CN of p->att.cert_issuer when set, else the first CN= in the
 * reason.  p->cls may be NULL (treated as the default class).
 */
enum stn_id_verdict stn_identity_words(const struct stn_identity_proof *p,
				       const char *waiver, char *buf,
				       size_t cap);

/* What a failed attestation's reason (rule `attestation`, as
 * custody/devid.h words it) means, in the technician's words, into buf:
 * "its certificate is not from a manufacturer this station trusts (Foreign
 * Devices Root)".  The manufacturer is the CN of issuer when given, else
 * the first CN= in why.  Returns 1 when a known cause matched, 0 when why
 * is quoted as it is.  station/reason_words.c says refusals with it. */
int stn_attestation_cause(const char *why, const char *issuer, char *buf,
			  size_t cap);

/* snprintf that never leaves half a UTF-8 character at a cut (the words
 * modules quote names from devices and media). */
void stn_words_say(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
