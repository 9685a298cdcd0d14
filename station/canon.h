/* station/canon.h: the canonical encoding of the event chain (formats §7,
 * docs/journal.md): how a string is spelled in JSON, the canonical body of
 * an event, the chain hash over it, and the rules on UTF-8 and field keys.
 * The journal writes with it, the report exporter writes with it and the
 * report verifier checks with it: one encoder, so a report cannot disagree
 * with the journal it was exported from.  Uses only the base helpers. */
#ifndef STN_CANON_H
#define STN_CANON_H

#include <stddef.h>
#include <stdint.h>

struct stn_buf;
struct stn_diag;

/* One field of an event: keys obey stn_canon_key_ok, values are UTF-8. */
struct stn_field {
	const char *key;
	const char *value;
};

/* The prev of event 1 (the chain start). */
#define STN_CANON_GENESIS \
	"0000000000000000000000000000000000000000000000000000000000000000"
/* Caps on one event, so that every event fits a report (station/report.h). */
#define STN_CANON_FIELDS_MAX 256
#define STN_CANON_BODY_MAX (256 * 1024) /* bytes of the canonical body */
#define STN_CANON_KEY_MAX 32
/* 9999-12-31T23:59:59Z: the last time RFC 3339's four-digit year can say. */
#define STN_CANON_TIME_MAX INT64_C(253402300799)

/* How one byte of a string is written between JSON quotes; the only
 * spellings a writer uses and a checker accepts. */
enum stn_canon_spelling {
	STN_CANON_AS_IS, /* the byte itself */
	STN_CANON_SHORT, /* '"' and '\': a backslash, then the byte */
	STN_CANON_U00XX, /* bytes below 0x20 and 0x7f: \u00xx, lowercase */
};
enum stn_canon_spelling stn_canon_spelling_of(unsigned char c);

/* Writes s as a quoted JSON string by the rule above, in runs, through
 * put(ctx, bytes, n).  The _buf form appends to b (b->oom on failure). */
typedef void stn_canon_sink(void *ctx, const void *p, size_t n);
void stn_canon_json(stn_canon_sink *put, void *ctx, const char *s);
void stn_canon_json_buf(struct stn_buf *b, const char *s);

/* The parts of a body, in order: {"seq":N,"time":"T","type":..,
 * "session":..,"fields":{..}} */
enum stn_canon_part {
	STN_CANON_SEQ,
	STN_CANON_TIME,
	STN_CANON_TYPE,
	STN_CANON_SESSION,
	STN_CANON_FIELDS,
	STN_CANON_PARTS
};
/* "seq", "time", "type", "session", "fields". */
const char *stn_canon_part_name(enum stn_canon_part p);

/*
 * Whether these values may form an event: time in 0..STN_CANON_TIME_MAX,
 * type non-empty, every string strict UTF-8, at most STN_CANON_FIELDS_MAX
 * fields, keys valid and unique.  Breaking a rule is STN_E_INTERNAL (a
 * caller's bug) with text naming the rule; `where` is the diag's place.
 */
int stn_canon_check(const char *where, int64_t time, const char *type,
		    const char *session, const struct stn_field *fields,
		    size_t nfields, struct stn_diag *d);

/* Writes the canonical body of values that passed stn_canon_check into b,
 * from its start (b->len is reset), and where each part ends in ends. */
void stn_canon_body_build(struct stn_buf *b, uint64_t seq, int64_t time,
			  const char *type, const char *session,
			  const struct stn_field *fields, size_t nfields,
			  size_t ends[STN_CANON_PARTS]);

/* Checks and builds: the body malloc'd and NUL-terminated in *body (*len
 * without the NUL).  Errors of stn_canon_check; STN_E_INTERNAL for a body
 * over STN_CANON_BODY_MAX; STN_E_NOMEM. */
int stn_canon_body(uint64_t seq, int64_t time, const char *type,
		   const char *session, const struct stn_field *fields,
		   size_t nfields, char **body, size_t *len,
		   struct stn_diag *d);

/* Which part of a stored body first differs from the body built from the
 * values (rebuilt, with its ends); STN_CANON_PARTS when they are equal. */
enum stn_canon_part stn_canon_body_diff(const char *rebuilt, size_t rlen,
					const size_t ends[STN_CANON_PARTS],
					const char *stored, size_t slen);

/* hex = lowercase hex SHA-256 of prev "\n" body (len bytes of body).
 * STN_E_NOMEM. */
int stn_canon_hash(const char *prev, const char *body, size_t len,
		   char hex[65]);

/* Whether s is 64 lowercase hex digits (a hash or digest); whether s is
 * strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF);
 * whether k is a field key, [a-z][a-z0-9-]{0,31}.  NULL is never ok. */
int stn_canon_is_hash(const char *s);
int stn_canon_utf8_ok(const char *s);
int stn_canon_key_ok(const char *k);

/* Untrusted text (a device's error line, a directory name from media) made
 * strict UTF-8 so that it can be journaled: each byte that is not part of
 * a valid sequence becomes the four characters \xNN (lowercase hex); valid
 * UTF-8 is copied unchanged, so text that was already valid keeps its
 * bytes.  Appends s, NUL-terminated, to b (b->oom on failure). */
void stn_canon_text_buf(struct stn_buf *b, const char *s);

/* A decimal number in its one spelling: digits only, no leading zero,
 * at most UINT64_MAX.  -1 (and *out untouched) when s is not one. */
int stn_canon_u64(const char *s, uint64_t *out);

#endif
