/* custody/record.c: strict parser for the text records of formats §1.
 * Anything the spec does not allow is an error, never a guess: signed bytes
 * must mean one thing to every tool that reads them. */
#include "custody/record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "station/base/rfc3339.h"
#include "station/base/error.h"
#include "station/base/fileio.h"

struct cu_record {
	char *name;
	char *text;                  /* a private copy, tokens point into it */
	struct cu_section *sections; /* [0] is the top level */
	size_t nsections;
	struct cu_entry *entries;    /* all entries, sections index into it */
	size_t nentries;
	unsigned first_key_line;     /* line of the document's first key */
	const char *first_key;
	const char *first_value;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Keys: [a-z][a-z0-9-]{0,31}.  Labels: [a-z0-9][a-z0-9-]{0,31}. */
static int name_ok(const char *s, int first_may_be_digit)
{
	size_t n = strlen(s);

	if (n < 1 || n > 32)
		return 0;
	if (!((s[0] >= 'a' && s[0] <= 'z') ||
	      (first_may_be_digit && s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* Counts the characters of a value, or returns -1 if any is not printable:
 * ASCII 0x20..0x7e, or well-formed UTF-8 of U+00A0 and above (no C1
 * controls, no overlongs, no surrogates). */
static long printable_chars(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	long count = 0;

	while (*p) {
		unsigned c = *p, cp, need;

		if (c >= 0x20 && c <= 0x7e) {
			p++;
			count++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return -1;
		}
		for (unsigned i = 1; i <= need; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return -1;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < 0xa0 || (need == 2 && cp < 0x800) ||
		    (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		p += need + 1;
		count++;
	}
	return count;
}

static char *trim(char *s, char *end)
{
	while (s < end && is_blank(*s))
		s++;
	while (end > s && is_blank(end[-1]))
		end--;
	*end = '\0';
	return s;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	void *p;

	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int syntax(struct stn_diag *d, const char *name, unsigned line,
		  const char *what)
{
	char where[4200];

	snprintf(where, sizeof(where), "%s:%u", name, line);
	return stn_fail(d, STN_E_SYNTAX, where, "%s", what);
}

/* Parses a "[name]" or "[name label]" line (already trimmed). */
static int parse_header(char *line, char **name, char **label)
{
	size_t n = strlen(line);
	char *sp;

	if (n < 3 || line[n - 1] != ']')
		return -1;
	line[n - 1] = '\0';
	line++;
	sp = strpbrk(line, " \t");
	*label = NULL;
	if (sp) {
		*sp = '\0';
		*label = sp + 1;
		while (is_blank(**label))
			(*label)++;
		/* exactly one label: no further blanks */
		if (strpbrk(*label, " \t") || !name_ok(*label, 1))
			return -1;
	}
	*name = line;
	return name_ok(*name, 0) ? 0 : -1;
}

static int add_section(struct cu_record *r, size_t *cap, const char *name,
		       const char *label, unsigned line)
{
	if (grow((void **)&r->sections, cap, r->nsections, sizeof(*r->sections)))
		return -1;
	struct cu_section *s = &r->sections[r->nsections++];
	s->name = name;
	s->label = label;
	s->line = line;
	s->nentries = 0;
	s->entries = NULL;
	return 0;
}

int cu_record_parse(const void *buf, size_t len, const char *name,
		    struct cu_record **out, struct stn_diag *d)
{
	struct cu_record *r = NULL;
	size_t scap = 0, ecap = 0;
	size_t *first_entry = NULL; /* per section, index into entries */
	size_t fcap = 0;
	char where[4200];
	int rc = STN_E_NOMEM;
	unsigned lineno = 0;
	char *p, *end;

	if (!name)
		name = "record";
	if (len > CU_RECORD_MAX) {
		snprintf(where, sizeof(where), "%s", name);
		return stn_fail(d, STN_E_TOOBIG, where,
				"%zu bytes, over the 64 KiB record limit", len);
	}
	if (memchr(buf, '\0', len))
		return syntax(d, name, 1, "NUL byte in record");
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out;
	r->name = strdup(name);
	r->text = malloc(len + 1);
	if (!r->name || !r->text)
		goto out;
	memcpy(r->text, buf, len);
	r->text[len] = '\0';
	if (add_section(r, &scap, "", NULL, 0) ||
	    grow((void **)&first_entry, &fcap, 0, sizeof(*first_entry)))
		goto out;
	first_entry[0] = 0;

	p = r->text;
	end = r->text + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl ? nl : end;
		char *line, *eq, *key, *value;

		lineno++;
		if (memchr(p, '\r', (size_t)(eol - p))) {
			rc = syntax(d, name, lineno,
				    "carriage return: lines must end in LF only");
			goto out;
		}
		line = trim(p, eol);
		p = nl ? nl + 1 : end;
		if (*line == '\0' || *line == '#')
			continue;
		if (*line == '[') {
			char *sname, *label;

			if (parse_header(line, &sname, &label)) {
				rc = syntax(d, name, lineno,
					    "bad section header: want [name] or "
					    "[name label], lowercase");
				goto out;
			}
			for (size_t i = 1; i < r->nsections; i++) {
				const struct cu_section *o = &r->sections[i];
				if (strcmp(o->name, sname) == 0 &&
				    ((!o->label && !label) ||
				     (o->label && label &&
				      strcmp(o->label, label) == 0))) {
					char msg[128];
					snprintf(msg, sizeof(msg),
						 "section [%s%s%s] given twice "
						 "(first at line %u)",
						 sname, label ? " " : "",
						 label ? label : "", o->line);
					rc = syntax(d, name, lineno, msg);
					goto out;
				}
			}
			if (add_section(r, &scap, sname, label, lineno) ||
			    grow((void **)&first_entry, &fcap, r->nsections - 1,
				 sizeof(*first_entry)))
				goto out;
			first_entry[r->nsections - 1] = r->nentries;
			continue;
		}
		eq = strchr(line, '=');
		if (!eq) {
			rc = syntax(d, name, lineno,
				    "not a key = value line, section or comment");
			goto out;
		}
		key = trim(line, eq);
		value = trim(eq + 1, eq + 1 + strlen(eq + 1));
		if (!name_ok(key, 0)) {
			rc = syntax(d, name, lineno,
				    "bad key: want [a-z][a-z0-9-]{0,31}");
			goto out;
		}
		long nchars = printable_chars(value);
		if (nchars < 0) {
			rc = syntax(d, name, lineno,
				    "control or invalid UTF-8 character in "
				    "value");
			goto out;
		}
		if (nchars < 1 || nchars > CU_VALUE_MAX) {
			rc = syntax(d, name, lineno,
				    "value must be 1 to 1024 characters");
			goto out;
		}
		if (!r->first_key) {
			r->first_key = key;
			r->first_value = value;
			r->first_key_line = lineno;
		}
		if (strncmp(key, "x-", 2) == 0)
			continue; /* vendor extension: ignored (formats §1) */
		size_t sec = r->nsections - 1;
		for (size_t i = first_entry[sec]; i < r->nentries; i++) {
			if (strcmp(r->entries[i].key, key) == 0) {
				char msg[128];
				snprintf(msg, sizeof(msg),
					 "key '%s' given twice in one section "
					 "(first at line %u)",
					 key, r->entries[i].line);
				rc = syntax(d, name, lineno, msg);
				goto out;
			}
		}
		if (grow((void **)&r->entries, &ecap, r->nentries,
			 sizeof(*r->entries)))
			goto out;
		r->entries[r->nentries].key = key;
		r->entries[r->nentries].value = value;
		r->entries[r->nentries].line = lineno;
		r->nentries++;
	}
	/* Entries are contiguous per section; point the views at them now
	 * that the array will not move again. */
	for (size_t i = 0; i < r->nsections; i++) {
		size_t stop = i + 1 < r->nsections ? first_entry[i + 1]
						   : r->nentries;
		/* No entries at all: entries stays NULL (NULL + 0 is UB). */
		r->sections[i].entries =
			r->entries ? r->entries + first_entry[i] : NULL;
		r->sections[i].nentries = stop - first_entry[i];
	}
	free(first_entry);
	*out = r;
	return 0;
out:
	if (rc == STN_E_NOMEM)
		stn_fail(d, STN_E_NOMEM, name, "parsing record");
	free(first_entry);
	cu_record_free(r);
	return rc;
}

int cu_record_read(const char *path, uint8_t **buf, size_t *len,
		   struct stn_diag *d)
{
	uint8_t *p = NULL;
	char *text;
	struct stat st;
	size_t have = 0;
	int fd, rc = 0;

	/* O_NONBLOCK: opening a FIFO must not hang the station. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return stn_fail(d, STN_E_UNSAFE, path,
					"is a symbolic link");
		return stn_fail(d, STN_E_IO, path, "cannot open: %s",
				strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = stn_fail(d, STN_E_UNSAFE, path, "not a regular file");
		goto out;
	}
	if (st.st_size > CU_RECORD_MAX) {
		rc = stn_fail(d, STN_E_TOOBIG, path,
			      "%lld bytes, over the 64 KiB record limit",
			      (long long)st.st_size);
		goto out;
	}
	/* stn_read_all reads one byte past the cap, so a file growing under
	 * us is caught. */
	if (stn_read_all(fd, CU_RECORD_MAX, &text, &have) != 0) {
		if (errno == EFBIG)
			rc = stn_fail(d, STN_E_TOOBIG, path,
				      "over the 64 KiB record limit");
		else if (errno == ENOMEM)
			rc = stn_fail(d, STN_E_NOMEM, path, "reading record");
		else
			rc = stn_fail(d, STN_E_IO, path, "read: %s",
				      strerror(errno));
		goto out;
	}
	p = (uint8_t *)text;
	*buf = p;
	*len = have;
	p = NULL;
out:
	free(p);
	close(fd);
	return rc;
}

int cu_record_load(const char *path, struct cu_record **out,
		   struct stn_diag *d)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = cu_record_read(path, &buf, &len, d);

	if (rc == 0)
		rc = cu_record_parse(buf, len, path, out, d);
	free(buf);
	return rc;
}

int cu_record_write_new(const char *path, const char *text,
			struct stn_diag *d)
{
	return stn_create_durable(path, 0644, text, strlen(text), d);
}

void cu_record_free(struct cu_record *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->text);
	free(r->sections);
	free(r->entries);
	free(r);
}

const char *cu_record_name(const struct cu_record *r)
{
	return r->name;
}

size_t cu_record_nsections(const struct cu_record *r)
{
	return r->nsections;
}

const struct cu_section *cu_record_section(const struct cu_record *r,
					   size_t i)
{
	return i < r->nsections ? &r->sections[i] : NULL;
}

const struct cu_section *cu_record_find(const struct cu_record *r,
					const char *name, const char *label)
{
	for (size_t i = 0; i < r->nsections; i++) {
		const struct cu_section *s = &r->sections[i];
		if (strcmp(s->name, name) != 0)
			continue;
		if (label && (!s->label || strcmp(s->label, label) != 0))
			continue;
		return s;
	}
	return NULL;
}

static const struct cu_entry *entry_find(const struct cu_section *s,
					 const char *key)
{
	for (size_t i = 0; i < s->nentries; i++)
		if (strcmp(s->entries[i].key, key) == 0)
			return &s->entries[i];
	return NULL;
}

const char *cu_section_get(const struct cu_section *s, const char *key)
{
	const struct cu_entry *e = entry_find(s, key);
	return e ? e->value : NULL;
}

unsigned cu_section_line(const struct cu_section *s, const char *key)
{
	const struct cu_entry *e = key ? entry_find(s, key) : NULL;
	return e ? e->line : s->line;
}

int cu_record_failv(struct stn_diag *d, int code, const struct cu_record *r,
		    const struct cu_section *s, const char *key,
		    const char *fmt, va_list ap)
{
	char where[4200], text[1024];

	snprintf(where, sizeof(where), "%s:%u", cu_record_name(r),
		 cu_section_line(s, key));
	vsnprintf(text, sizeof(text), fmt, ap);
	return stn_fail(d, code, where, "%s", text);
}

int cu_record_fail(struct stn_diag *d, int code, const struct cu_record *r,
		   const struct cu_section *s, const char *key,
		   const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cu_record_failv(d, code, r, s, key, fmt, ap);
	va_end(ap);
	return rc;
}

static const char *section_title(const struct cu_section *s, char *buf,
				 size_t cap)
{
	if (s->name[0] == '\0')
		snprintf(buf, cap, "the top level");
	else
		snprintf(buf, cap, "[%s%s%s]", s->name, s->label ? " " : "",
			 s->label ? s->label : "");
	return buf;
}

int cu_record_check(const struct cu_record *r,
		    const struct cu_section_rule *rules, const char *format,
		    struct stn_diag *d)
{
	char msg[200], title[80];

	if (format) {
		if (!r->first_key || strcmp(r->first_key, "format") != 0)
			return syntax(d, r->name,
				      r->first_key ? r->first_key_line : 1,
				      "the first key must be 'format'");
		if (strcmp(r->first_value, format) != 0) {
			snprintf(msg, sizeof(msg),
				 "format is '%.60s', expected '%s'",
				 r->first_value, format);
			return syntax(d, r->name, r->first_key_line, msg);
		}
		/* the first key must also be in the top level */
		if (r->nsections > 1 && r->sections[0].nentries == 0)
			return syntax(d, r->name, r->first_key_line,
				      "'format' must come before any section");
	}
	for (size_t i = 0; i < r->nsections; i++) {
		const struct cu_section *s = &r->sections[i];
		const struct cu_section_rule *rule = NULL;

		for (const struct cu_section_rule *q = rules; q->name; q++)
			if (strcmp(q->name, s->name) == 0)
				rule = q;
		if (!rule) {
			snprintf(msg, sizeof(msg), "unknown section [%s]",
				 s->name);
			return syntax(d, r->name, s->line, msg);
		}
		if (i > 0 && rule->labelled != (s->label != NULL)) {
			snprintf(msg, sizeof(msg), "section [%s] %s",
				 s->name, rule->labelled ? "needs a label"
							 : "takes no label");
			return syntax(d, r->name, s->line, msg);
		}
		for (size_t k = 0; k < s->nentries; k++) {
			const struct cu_key_rule *kr = rule->keys;
			while (kr && kr->key &&
			       strcmp(kr->key, s->entries[k].key) != 0)
				kr++;
			if (!kr || !kr->key) {
				snprintf(msg, sizeof(msg),
					 "unknown key '%s' in %s",
					 s->entries[k].key,
					 section_title(s, title, sizeof(title)));
				return syntax(d, r->name, s->entries[k].line,
					      msg);
			}
		}
		for (const struct cu_key_rule *kr = rule->keys; kr && kr->key;
		     kr++) {
			if (kr->required && !entry_find(s, kr->key)) {
				snprintf(msg, sizeof(msg),
					 "missing required key '%s' in %s",
					 kr->key,
					 section_title(s, title, sizeof(title)));
				return syntax(d, r->name, s->line ? s->line : 1,
					      msg);
			}
		}
	}
	for (const struct cu_section_rule *q = rules; q->name; q++) {
		unsigned n = 0;

		if (q->name[0] == '\0')
			continue;
		for (size_t i = 1; i < r->nsections; i++)
			n += strcmp(r->sections[i].name, q->name) == 0;
		if (n < q->min || n > q->max) {
			if (q->min == q->max)
				snprintf(msg, sizeof(msg),
					 "section [%s] must appear %u time(s), "
					 "found %u", q->name, q->min, n);
			else if (n < q->min)
				snprintf(msg, sizeof(msg),
					 "section [%s] must appear at least %u "
					 "time(s), found %u", q->name, q->min, n);
			else
				snprintf(msg, sizeof(msg),
					 "section [%s] may appear at most %u "
					 "time(s), found %u", q->name, q->max, n);
			return syntax(d, r->name, 1, msg);
		}
	}
	return 0;
}

static int bad_value(const struct cu_record *r, const struct cu_section *s,
		     const char *key, const char *want, struct stn_diag *d)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "'%s' must be %s", key, want);
	return syntax(d, r->name, cu_section_line(s, key), msg);
}

int cu_get_str(const struct cu_record *r, const struct cu_section *s,
	       const char *key, const char **out, struct stn_diag *d)
{
	const char *v = cu_section_get(s, key);
	char msg[160], title[80];

	if (!v) {
		snprintf(msg, sizeof(msg), "missing required key '%s' in %s",
			 key, section_title(s, title, sizeof(title)));
		return syntax(d, r->name, s->line ? s->line : 1, msg);
	}
	*out = v;
	return 0;
}

int cu_get_u64(const struct cu_record *r, const struct cu_section *s,
	       const char *key, uint64_t *out, struct stn_diag *d)
{
	const char *v;
	uint64_t n = 0;
	int rc = cu_get_str(r, s, key, &v, d);

	if (rc)
		return rc;
	/* Decimal digits only: no sign, no 0x, no leading zeros (one
	 * spelling per number, so two tools cannot read it differently). */
	if (!*v || (v[0] == '0' && v[1]) || strlen(v) > 20)
		return bad_value(r, s, key, "an unsigned 64-bit decimal number",
				 d);
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return bad_value(r, s, key,
					 "an unsigned 64-bit decimal number", d);
		unsigned dgt = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - dgt) / 10)
			return bad_value(r, s, key,
					 "an unsigned 64-bit decimal number", d);
		n = n * 10 + dgt;
	}
	*out = n;
	return 0;
}

int cu_get_time(const struct cu_record *r, const struct cu_section *s,
		const char *key, int64_t *out, struct stn_diag *d)
{
	const char *v;
	int rc = cu_get_str(r, s, key, &v, d);

	if (rc)
		return rc;
	if (cu_time_parse(v, out))
		return bad_value(r, s, key,
				 "an RFC 3339 UTC time like "
				 "2026-11-20T10:00:00Z", d);
	return 0;
}

int cu_get_digest(const struct cu_record *r, const struct cu_section *s,
		  const char *key, uint8_t out[CU_SHA256_LEN],
		  struct stn_diag *d)
{
	const char *v;
	int rc = cu_get_str(r, s, key, &v, d);

	if (rc)
		return rc;
	if (cu_digest_parse(v, out))
		return bad_value(r, s, key,
				 "a SHA-256 digest of 64 lowercase hex digits",
				 d);
	return 0;
}

int cu_get_duration(const struct cu_record *r, const struct cu_section *s,
		    const char *key, int64_t *out, struct stn_diag *d)
{
	const char *v;
	int rc = cu_get_str(r, s, key, &v, d);

	if (rc)
		return rc;
	if (cu_duration_parse(v, out))
		return bad_value(r, s, key,
				 "a duration: a number and s, m, h or d", d);
	return 0;
}

int cu_get_bool(const struct cu_record *r, const struct cu_section *s,
		const char *key, int *out, struct stn_diag *d)
{
	const char *v;
	int rc = cu_get_str(r, s, key, &v, d);

	if (rc)
		return rc;
	if (strcmp(v, "yes") == 0)
		*out = 1;
	else if (strcmp(v, "no") == 0)
		*out = 0;
	else
		return bad_value(r, s, key, "yes or no", d);
	return 0;
}

int cu_value_ok(const char *str)
{
	long n = printable_chars(str);

	/* Leading or trailing blanks would be trimmed by the parser and so
	 * change the value on the way back in. */
	return n >= 1 && n <= CU_VALUE_MAX && str[0] != ' ' &&
	       str[strlen(str) - 1] != ' ';
}

int cu_label_ok(const char *s, size_t n)
{
	char buf[34];

	if (n < 1 || n > 32)
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return name_ok(buf, 1);
}

int cu_chars_in(const char *str, const char *allowed)
{
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		int ok = 0;
		for (const char *a = allowed; *a && !ok; a++) {
			if (a[1] == '-' && a[2]) {
				ok = *p >= (unsigned char)a[0] &&
				     *p <= (unsigned char)a[2];
				a += 2;
			} else {
				ok = *p == (unsigned char)*a;
			}
		}
		if (!ok)
			return 0;
	}
	return 1;
}

int cu_get_token(const struct cu_record *r, const struct cu_section *s,
		 const char *key, const char *allowed, size_t maxlen,
		 const char **out, struct stn_diag *d)
{
	const char *v;
	char want[120];
	int rc = cu_get_str(r, s, key, &v, d);

	if (rc)
		return rc;
	if (strlen(v) > maxlen || !cu_chars_in(v, allowed)) {
		snprintf(want, sizeof(want), "1 to %zu characters of [%s]",
			 maxlen, allowed);
		return bad_value(r, s, key, want, d);
	}
	*out = v;
	return 0;
}
