/* station/events.c: the event vocabulary's table, the check every emitted
 * event passes, and the lookups that read past events by type
 * (events.h). */
#include "station/events.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/error.h"
#include "station/journal.h"
#include "station/base/strbuf.h"

static const struct {
	const char *name, *fields;
} table[STN_EV_COUNT] = {
#define STN_EV_ROW(id, name, fields) [STN_EV_##id] = {name, fields},
	STN_EVENTS(STN_EV_ROW)
#undef STN_EV_ROW
};

const char *stn_ev_name(enum stn_ev t)
{
	return (unsigned)t < STN_EV_COUNT ? table[t].name : NULL;
}

const char *stn_ev_fields(enum stn_ev t)
{
	return (unsigned)t < STN_EV_COUNT ? table[t].fields : NULL;
}

int stn_ev_is(const char *type, enum stn_ev t)
{
	return type && (unsigned)t < STN_EV_COUNT &&
	       strcmp(type, table[t].name) == 0;
}

int stn_ev_lookup(const char *name, enum stn_ev *t)
{
	for (unsigned i = 0; name && i < STN_EV_COUNT; i++)
		if (strcmp(name, table[i].name) == 0) {
			*t = (enum stn_ev)i;
			return 0;
		}
	return -1;
}

const char *stn_ev_field(const struct stn_event *e, const char *key)
{
	for (size_t i = 0; i < e->nfields; i++)
		if (strcmp(e->fields[i].key, key) == 0)
			return e->fields[i].value;
	return NULL;
}

/* The next entry of a table field list: its key at *key (len bytes, not
 * NUL-terminated), whether it may be left out; the list after it. */
static const char *next_spec(const char *spec, const char **key, size_t *len,
			     int *optional)
{
	size_t n = strcspn(spec, " ");

	*key = spec;
	*optional = n > 0 && spec[n - 1] == '?';
	*len = n - (size_t)*optional;
	return spec[n] ? spec + n + 1 : spec + n;
}

int stn_ev_check(enum stn_ev t, const struct stn_field *fields, size_t n,
		 struct stn_diag *d)
{
	const char *spec = stn_ev_fields(t), *key;
	size_t i = 0, len;
	int optional;

	if (!spec)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"event type %d is not in the table", (int)t);
	while (*spec) {
		spec = next_spec(spec, &key, &len, &optional);
		if (i < n && fields[i].key && strlen(fields[i].key) == len &&
		    memcmp(fields[i].key, key, len) == 0)
			i++;
		else if (!optional)
			return stn_fail(d, STN_E_INTERNAL, "journal",
					"event %s: field %.*s missing (fields "
					"are: %s)",
					table[t].name, (int)len, key,
					table[t].fields);
	}
	if (i < n)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"event %s: field %.40s is not in its table row "
				"or out of order (fields are: %s)",
				table[t].name,
				fields[i].key ? fields[i].key : "(null)",
				table[t].fields);
	return 0;
}

int stn_ev_append(struct stn_journal *j, int64_t time, const char *session,
		  enum stn_ev t, const struct stn_field *fields, size_t n,
		  uint64_t *seq_out, struct stn_diag *d)
{
	struct stn_field f[STN_CANON_FIELDS_MAX];
	size_t off[STN_CANON_FIELDS_MAX];
	struct stn_buf fixed = {0};
	int rc;

	if ((rc = stn_ev_check(t, fields, n, d)))
		return rc;
	if (n > STN_CANON_FIELDS_MAX)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"event %s: %zu fields", table[t].name, n);
	/* Text that is valid keeps its bytes; only what would be refused
	 * as invalid UTF-8 is rewritten, into one buffer (offsets, since
	 * the buffer moves as it grows). */
	for (size_t i = 0; i < n; i++) {
		f[i] = fields[i];
		off[i] = SIZE_MAX;
		if (!fields[i].value || stn_canon_utf8_ok(fields[i].value))
			continue;
		off[i] = fixed.len;
		stn_canon_text_buf(&fixed, fields[i].value);
		stn_buf_add(&fixed, "", 1);
	}
	if (fixed.oom) {
		free(fixed.p);
		return stn_fail(d, STN_E_NOMEM, "journal", "event %s",
				table[t].name);
	}
	for (size_t i = 0; i < n; i++)
		if (off[i] != SIZE_MAX)
			f[i].value = fixed.p + off[i];
	rc = stn_journal_append(j, time, table[t].name, session, f, n, seq_out,
				d);
	free(fixed.p);
	return rc;
}

/* A value as it would be journaled: lookups must find what was written.
 * *buf is what to free. */
static const char *as_journaled(const char *s, char **buf)
{
	struct stn_buf b = {0};

	*buf = NULL;
	if (stn_canon_utf8_ok(s))
		return s;
	stn_canon_text_buf(&b, s);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return *buf = b.p;
}

struct highest {
	const char *where;
	uint64_t best;
	int any;
	struct stn_diag *d;
};

static int take_sequence(void *ctx, const struct stn_event *e)
{
	struct highest *h = ctx;
	const char *text = stn_ev_field(e, "sequence");
	uint64_t v;

	if (!text)
		return 0;
	if (stn_canon_u64(text, &v) != 0)
		return stn_fail(h->d, STN_E_JOURNAL, h->where,
				"event %" PRIu64 ": field sequence \"%.40s\" "
				"is not a decimal number",
				e->seq, text);
	if (!h->any || v > h->best)
		h->best = v;
	h->any = 1;
	return 0;
}

int stn_ev_installed_sequence(struct stn_journal *j, const char *serial,
			      uint64_t *seq, int *found, struct stn_diag *d)
{
	const char *types[] = {table[STN_EV_INSTALL_FINISHED].name};
	struct highest h = {stn_journal_path(j), 0, 0, d};
	struct stn_journal_filter f = {.types = types, .ntypes = 1};
	char *buf;
	int rc;

	if (!j || !serial || !seq || !found)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"installed_sequence: missing argument");
	f.fields[0] = (struct stn_journal_field_is){"serial", NULL,
						    as_journaled(serial, &buf)};
	if (!f.fields[0].value)
		return stn_fail(d, STN_E_NOMEM, "journal", "installed sequence");
	rc = stn_journal_query(j, &f, take_sequence, &h, d);
	free(buf);
	if (rc)
		return rc;
	if (h.any)
		*seq = h.best;
	*found = h.any;
	return 0;
}

static int stop_at_first(void *ctx, const struct stn_event *e)
{
	(void)ctx;
	(void)e;
	return 1;
}

int stn_ev_token_used(struct stn_journal *j, const char *use, int *found,
		      struct stn_diag *d)
{
	const char *types[] = {table[STN_EV_TOKEN_APPLIED].name};
	struct stn_journal_filter f = {.types = types, .ntypes = 1};
	char *buf;
	int rc;

	if (!j || !use || !found)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"token_used: missing argument");
	f.fields[0] = (struct stn_journal_field_is){"use", NULL,
						    as_journaled(use, &buf)};
	if (!f.fields[0].value)
		return stn_fail(d, STN_E_NOMEM, "journal", "token use");
	rc = stn_journal_query(j, &f, stop_at_first, NULL, d);
	free(buf);
	if (rc < 0)
		return rc;
	*found = rc == 1;
	return 0;
}

int stn_ev_query(struct stn_journal *j, const struct stn_ev_filter *f,
		 int (*cb)(void *ctx, const struct stn_event *e), void *ctx,
		 struct stn_diag *d)
{
	struct stn_journal_filter q = {0};

	if (!f)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"query: no filter");
	q.since = f->since;
	q.until = f->until;
	q.session = f->session;
	if (f->type) {
		q.types = &f->type;
		q.ntypes = 1;
	}
	q.fields[0] = (struct stn_journal_field_is){"serial", NULL, f->serial};
	q.fields[1] = (struct stn_journal_field_is){"bundle", "name",
						    f->bundle};
	if (f->technician) {
		q.sessions_with.type = table[STN_EV_SESSION_START].name;
		q.sessions_with.field = (struct stn_journal_field_is){
			"technician", NULL, f->technician};
	}
	return stn_journal_query(j, &q, cb, ctx, d);
}
