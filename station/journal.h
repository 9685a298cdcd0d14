/* station/journal.h: the station's append-only event journal (formats §7), an
 * SQLite database in which every event carries the SHA-256 of the previous
 * event's hash and its own canonical body, so that editing or deleting a row
 * breaks the chain.  docs/journal.md gives auditors the exact format. */
#ifndef STN_JOURNAL_H
#define STN_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "station/canon.h"

struct stn_diag;
struct stn_journal;

/* Borrowed, valid during the callback only. */
struct stn_event {
	uint64_t seq;
	int64_t time; /* seconds since the epoch, UTC */
	const char *type, *session;
	const char *body; /* the canonical JSON line that was hashed */
	const char *prev; /* previous event's hash, 64 '0' for the first */
	const char *hash; /* lowercase hex SHA-256 of prev "\n" body */
	const struct stn_field *fields;
	size_t nfields;
};

/* The prev of the first event, and the last hash of an empty journal. */
#define STN_JOURNAL_GENESIS STN_CANON_GENESIS
/* 1: events, fields, meta.  2: indexes on events(time), (session) and
 * (type) for period exports and filters on a journal of millions. */
#define STN_JOURNAL_SCHEMA_VERSION 2
/* Caps on one event, so that every event fits a report (station/report.h):
 * appending more is refused as STN_E_INTERNAL. */
#define STN_JOURNAL_FIELDS_MAX STN_CANON_FIELDS_MAX
#define STN_JOURNAL_BODY_MAX STN_CANON_BODY_MAX /* bytes of the body */

/*
 * Opens (creating if absent, with mode 0700 for missing directories and 0600
 * for the file) the journal at `path`, creates or migrates its schema, and
 * sets WAL mode, synchronous=FULL, foreign keys and a 5 s busy timeout.
 * STN_E_JOURNAL for any SQLite or file system failure (text names the path
 * and the cause) or a schema newer than this station knows; STN_E_NOMEM.
 * The handle is for one thread at a time.
 */
int stn_journal_open(const char *path, struct stn_journal **out,
		     struct stn_diag *d);
void stn_journal_close(struct stn_journal *j); /* NULL is fine */
/* The path it was opened with (borrowed): another handle on the same file
 * (a reader in another thread) opens it again. */
const char *stn_journal_path(const struct stn_journal *j);

/*
 * Appends one event and returns only once it is committed durably.  `time`
 * and the values must pass stn_canon_check (time in 1970..9999, type
 * non-empty, UTF-8, field keys unique and [a-z][a-z0-9-]{0,31}) and make a
 * body of at most STN_CANON_BODY_MAX bytes.  Fields keep the caller's
 * order.  Breaking those rules is STN_E_INTERNAL and appends nothing.  STN_E_JOURNAL for SQLite
 * failures (including another writer holding the lock for more than 5 s),
 * STN_E_CHAINBROKEN when the last stored hash is not a hash at all.
 */
int stn_journal_append(struct stn_journal *j, int64_t time, const char *type,
		       const char *session, const struct stn_field *fields,
		       size_t nfields, uint64_t *seq_out /* may be NULL */,
		       struct stn_diag *d);

/*
 * Calls cb for each event with time >= since (0 = all), in seq order, inside
 * one read transaction (a consistent snapshot).  A non-zero return from cb
 * stops the walk and is returned as is (cb fills d itself if it wants to).
 * cb may call the read functions on j but not stn_journal_append.
 * Does not check the chain: that is stn_journal_verify.  STN_E_JOURNAL,
 * STN_E_NOMEM.
 */
int stn_journal_each(struct stn_journal *j, int64_t since,
		     int (*cb)(void *ctx, const struct stn_event *e),
		     void *ctx, struct stn_diag *d);

/*
 * A consistent snapshot across several reads (an export finds its range,
 * its predecessor and its events in one).  Between begin and end every
 * read function sees the journal as it was at begin; appends on j are
 * refused by SQLite until end.  begin: STN_E_JOURNAL; STN_E_INTERNAL when
 * a snapshot is already open.  end: NULL or no snapshot is fine.
 */
int stn_journal_read_begin(struct stn_journal *j, struct stn_diag *d);
void stn_journal_read_end(struct stn_journal *j);

/*
 * The seq range a period covers: *first = the lowest seq whose time is
 * >= since, *last = the highest seq whose time is <= until.  Everything
 * between is in the range even if the clock once went back, so a range
 * is always a contiguous piece of the chain.  *found = 0 (first and last
 * untouched) when no such pair exists with first <= last.  STN_E_JOURNAL.
 */
int stn_journal_span(struct stn_journal *j, int64_t since, int64_t until,
		     uint64_t *first, uint64_t *last, int *found,
		     struct stn_diag *d);

/*
 * Calls cb for events first..last in seq order and checks the chain as it
 * goes, exactly as stn_journal_verify does for those events: no seq
 * missing, first's prev is event first-1's hash (the 64 zeros when first
 * is 1), every prev the previous hash, every hash SHA-256(prev "\n" body)
 * and every body what the columns and field rows say.  An event reaches
 * cb only once it has passed.  A range past the last event is
 * STN_E_CHAINBROKEN ("seq gap"), as is an empty range (first > last or
 * first == 0).  cb's non-zero return stops the walk and is returned.
 * STN_E_CHAINBROKEN naming the event, STN_E_JOURNAL, STN_E_NOMEM.
 */
int stn_journal_each_range(struct stn_journal *j, uint64_t first,
			   uint64_t last,
			   int (*cb)(void *ctx, const struct stn_event *e),
			   void *ctx, struct stn_diag *d);

/*
 * Calls cb once with the event numbered seq, or with the newest event of
 * `type` when seq is 0 (e.g. the last export).  *found = 0 and
 * cb is not called when there is none.  The event is not checked against
 * the chain.  cb's non-zero return is returned.  STN_E_JOURNAL,
 * STN_E_NOMEM; STN_E_INTERNAL when both or neither of seq and type given.
 */
int stn_journal_lookup(struct stn_journal *j, uint64_t seq, const char *type,
		       int (*cb)(void *ctx, const struct stn_event *e),
		       void *ctx, int *found, struct stn_diag *d);

/* The latest event time in the journal (the clock floor's lower bound),
 * through the time index: one probe however long the journal is.
 * *found = 0 when the journal is empty.  STN_E_JOURNAL. */
int stn_journal_newest_time(struct stn_journal *j, int64_t *t, int *found,
			    struct stn_diag *d);

/* An event has a field named key, or alt_key when that is given, whose
 * value is value. */
struct stn_journal_field_is {
	const char *key, *alt_key, *value;
};

/* Caps on one filter's lists (more is STN_E_INTERNAL). */
#define STN_JOURNAL_QUERY_TYPES 16
#define STN_JOURNAL_QUERY_FIELDS 2

/*
 * What stn_journal_query selects; the store knows no event names, so the
 * caller says which types and fields it means (station/events.h turns
 * `station journal`'s options into one of these).  Every member is
 * optional (0 or NULL) and the ones given must all hold.  since, until:
 * the event's time, inclusive.  session: exact.  types: the event's type
 * is one of types[0..ntypes-1].  fields: each entry with a value.
 * sessions_with: every event of the sessions that hold an event of
 * sessions_with.type with that field (when its type and value are set).
 * Each goes through an index (events_time, events_type, fields_key_value,
 * events_session), so a selective filter reads few rows of millions.
 */
struct stn_journal_filter {
	int64_t since, until; /* 0 = unbounded */
	const char *session;
	const char *const *types;
	size_t ntypes;
	struct stn_journal_field_is fields[STN_JOURNAL_QUERY_FIELDS];
	struct {
		const char *type;
		struct stn_journal_field_is field;
	} sessions_with;
};

/* Calls cb for each matching event in seq order, in one snapshot.  cb's
 * non-zero return stops the walk and is returned (a lookup that wants
 * only the first match returns 1).  STN_E_JOURNAL, STN_E_NOMEM;
 * STN_E_INTERNAL for a NULL filter or lists over their caps. */
int stn_journal_query(struct stn_journal *j,
		      const struct stn_journal_filter *f,
		      int (*cb)(void *ctx, const struct stn_event *e),
		      void *ctx, struct stn_diag *d);

/* The canonical body, its hash and the rules on values are
 * station/canon.h's: the journal, the exporter and the verifier share them. */

/*
 * Recomputes the whole chain: seq runs 1, 2, 3... without gaps, each prev is
 * the previous hash, each hash is SHA-256(prev "\n" body), each body is what
 * the columns and field rows give, and no field row names a missing event.
 * On success *count is the number of events and last_hash the last hash
 * (STN_JOURNAL_GENESIS when empty).  STN_E_CHAINBROKEN with text naming the
 * seq and the part that is wrong ("event 17: hash does not match its
 * content", "seq gap after 16"); STN_E_JOURNAL, STN_E_NOMEM.  Deleting the
 * newest events together with their field rows is not detectable here: a
 * signed report's last hash anchors the tail.
 */
int stn_journal_verify(struct stn_journal *j, uint64_t *count,
		       char last_hash[65], struct stn_diag *d);

/*
 * Formats one event as a human line "SEQ TIME TYPE session=S k=v k=v" into
 * buf (always NUL-terminated when cap > 0, cut at a UTF-8 boundary when too
 * long).  A value that is empty or holds a space, '"', '\', '=' or a control
 * byte is printed in double quotes with \" \\ \n \t \xNN escapes, so one
 * event is always one line and a crafted value cannot fake another field.
 */
void stn_journal_format(const struct stn_event *e, char *buf, size_t cap);

#endif
