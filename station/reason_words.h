/* station/reason_words.h: what a technician reads about a refusal, cause
 * first and in their words ("wrong model: unit is TX-100, bundle is for
 * TX-200"), then the rule, and the file or device last, so that a line cut
 * at the screen's edge still says what is wrong.  Pure (no I/O, no locks),
 * like station/identity_words.h, whose attestation causes it reuses. */
#ifndef STN_REASON_WORDS_H
#define STN_REASON_WORDS_H

#include <stddef.h>

struct stn_diag;

/* What a refusal cannot say itself: the versions behind the sequence
 * numbers of a downgrade or reinstall.  Either may be NULL or "". */
struct stn_reason_ctx {
	const char *bundle_version;
	const char *unit_version;
};

/*
 * The cause alone, into buf (cap bytes, always NUL-terminated, cut at a
 * character boundary): the code's meaning in plain words, with the facts
 * from d->text that matter (models, sequences, counts); a text that
 * matches no known wording is quoted after the plain meaning, so nothing
 * is lost.  ctx may be NULL.
 */
void stn_reason_cause(const struct stn_diag *d,
		      const struct stn_reason_ctx *ctx, char *buf, size_t cap);

/* The whole line: "CAUSE; rule RULE; WHERE" (WHERE, then any device path
 * the text named, last; parts that are empty are left out). */
void stn_reason_words(const struct stn_diag *d,
		      const struct stn_reason_ctx *ctx, char *buf, size_t cap);

/* The place a refusal names, last: d->where, and the device the text
 * names ("serial:/dev/ttyUSB0") when it names one.  "" when neither. */
void stn_reason_place(const struct stn_diag *d, char *buf, size_t cap);

#endif
