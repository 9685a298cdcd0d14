/* custody/record.h: the strict text record format of formats §1, used by
 * manifests, custody records, tokens, device identities and station.conf.
 * Parsing checks syntax; a schema (cu_record_check) checks which sections
 * and keys a document may and must have; typed getters check values.  Every
 * error names "FILE:LINE" and the rule. */
#ifndef CU_RECORD_H
#define CU_RECORD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "station/base/sha256.h"

struct stn_diag;

#define CU_RECORD_MAX (64 * 1024) /* bytes, formats §1 */
#define CU_VALUE_MAX 1024         /* characters */

struct cu_entry {
	const char *key;
	const char *value;
	unsigned line;
};

/* A read-only view; the top level (keys before any [section]) is the
 * section with name "" and label NULL, always present at index 0. */
struct cu_section {
	const char *name;
	const char *label; /* NULL when the header had none */
	unsigned line;
	size_t nentries;
	const struct cu_entry *entries; /* x- vendor keys are left out */
};

struct cu_record;

/* Parse `len` bytes.  `name` (copied) is used in messages, normally the
 * file's path.  Errors: STN_E_SYNTAX (which rule, which line), STN_E_TOOBIG
 * (over 64 KiB), STN_E_NOMEM. */
int cu_record_parse(const void *buf, size_t len, const char *name,
		    struct cu_record **out, struct stn_diag *d);
/* Read a record file whole: a regular file (not a symlink, not a FIFO),
 * at most 64 KiB, into a malloc'd buffer the caller frees.  Errors:
 * STN_E_IO, STN_E_UNSAFE, STN_E_TOOBIG, STN_E_NOMEM, naming the path. */
int cu_record_read(const char *path, uint8_t **buf, size_t *len,
		   struct stn_diag *d);
/* Create path (it must not exist; never through a symlink), write text,
 * fsync it and its directory (stn_create_durable); on any failure the
 * partial file is removed.  Used to write custody records and tokens
 * before they are signed.  Errors: STN_E_IO naming the path. */
int cu_record_write_new(const char *path, const char *text,
			struct stn_diag *d);
/* Read a file (regular, not a symlink, at most 64 KiB) and parse it.
 * Errors as above plus STN_E_IO and STN_E_UNSAFE. */
int cu_record_load(const char *path, struct cu_record **out,
		   struct stn_diag *d);
void cu_record_free(struct cu_record *r); /* NULL is fine */

const char *cu_record_name(const struct cu_record *r);
size_t cu_record_nsections(const struct cu_record *r);
const struct cu_section *cu_record_section(const struct cu_record *r,
					   size_t i);
/* First section with this name (and label, unless label is NULL). */
const struct cu_section *cu_record_find(const struct cu_record *r,
					const char *name, const char *label);
/* Value of key in section, or NULL. */
const char *cu_section_get(const struct cu_section *s, const char *key);

/* Schema.  Sections not listed, keys not listed, a required key missing or
 * a section count out of bounds are STN_E_SYNTAX. */
enum { CU_OPTIONAL = 0, CU_REQUIRED = 1 };
enum { CU_NO_LABEL = 0, CU_LABELLED = 1 };

struct cu_key_rule {
	const char *key;
	int required;
};

struct cu_section_rule {
	const char *name; /* "" for the top level */
	int labelled;
	unsigned min, max;
	const struct cu_key_rule *keys; /* terminated by {NULL, 0} */
};

/* rules is terminated by an entry with name NULL.  When format is not
 * NULL the document's first key must be `format` with exactly that value. */
int cu_record_check(const struct cu_record *r,
		    const struct cu_section_rule *rules, const char *format,
		    struct stn_diag *d);

/* Typed getters for a key of section s of record r.  A missing key is
 * STN_E_SYNTAX unless the getter says otherwise; bad values are
 * STN_E_SYNTAX naming FILE:LINE, key and the expected form. */
int cu_get_str(const struct cu_record *r, const struct cu_section *s,
	       const char *key, const char **out, struct stn_diag *d);
int cu_get_u64(const struct cu_record *r, const struct cu_section *s,
	       const char *key, uint64_t *out, struct stn_diag *d);
int cu_get_time(const struct cu_record *r, const struct cu_section *s,
		const char *key, int64_t *out, struct stn_diag *d);
int cu_get_digest(const struct cu_record *r, const struct cu_section *s,
		  const char *key, uint8_t out[CU_SHA256_LEN],
		  struct stn_diag *d);
int cu_get_duration(const struct cu_record *r, const struct cu_section *s,
		    const char *key, int64_t *out, struct stn_diag *d);
/* "yes" or "no". */
int cu_get_bool(const struct cu_record *r, const struct cu_section *s,
		const char *key, int *out, struct stn_diag *d);
/* Check the value of key against a character class: every byte must be in
 * `allowed` (a string of characters, with "a-z" style ranges) and the length
 * within [1, maxlen]. */
int cu_get_token(const struct cu_record *r, const struct cu_section *s,
		 const char *key, const char *allowed, size_t maxlen,
		 const char **out, struct stn_diag *d);
/* Line of key in s, or of the section header when the key is absent. */
unsigned cu_section_line(const struct cu_section *s, const char *key);

/* Fail with `code` at "NAME:LINE" of key in s (of the section when key is
 * absent or NULL), the text made from fmt.  Returns code. */
int cu_record_fail(struct stn_diag *d, int code, const struct cu_record *r,
		   const struct cu_section *s, const char *key,
		   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int cu_record_failv(struct stn_diag *d, int code, const struct cu_record *r,
		    const struct cu_section *s, const char *key,
		    const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));

/* Whether str is a valid record value: 1 to 1024 printable characters
 * (formats §1), so that writing "key = str" cannot add a line. */
int cu_value_ok(const char *str);

/* Whether the n bytes at s are a label as formats §1 defines one for
 * sections and signature files: [a-z0-9][a-z0-9-]{0,31}. */
int cu_label_ok(const char *s, size_t n);

/* Whether every character of str is in the class (see cu_get_token). */
int cu_chars_in(const char *str, const char *allowed);

#endif
