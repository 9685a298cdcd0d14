/* station/journal.c: the hash-chained event journal over SQLite.  This is the
 * only file that includes sqlite3.h: SQLite failures become STN_E_JOURNAL
 * here, with the database path and SQLite's own message kept. */
#include "station/journal.h"
#include "station/base/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "station/base/rfc3339.h"
#include "station/base/sha256.h"
#include "station/canon.h"
#include "station/base/error.h"
#include "station/base/fileio.h"

/* Another writer (a second `station` process) may hold the lock while it
 * commits; a commit with synchronous=FULL takes milliseconds, so 5 s only
 * runs out when something is really stuck. */
#define BUSY_TIMEOUT_MS 5000

struct stn_journal {
	sqlite3 *db;
	char *path;
	int snapshot; /* inside stn_journal_read_begin .. _end */
};

/*
 * migrations[i] takes the schema from version i to i + 1, inside the same
 * transaction as the version bump.  Append new steps; never edit a shipped
 * one, since a station in the field may be at any version.  fields(seq) is
 * indexed because every event read looks its fields up by seq (and SQLite
 * wants the child key of a foreign key indexed); fields(key, value) serves
 * lookups such as "installs on serial SN-1".
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value NOT NULL);"
	"INSERT INTO meta(key, value) VALUES('schema_version', 0);"
	"CREATE TABLE events(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
	" type TEXT NOT NULL, session TEXT NOT NULL, body TEXT NOT NULL,"
	" prev TEXT NOT NULL, hash TEXT NOT NULL UNIQUE);"
	"CREATE TABLE fields(seq INTEGER REFERENCES events(seq), key TEXT,"
	" value TEXT);"
	"CREATE INDEX fields_key_value ON fields(key, value);"
	"CREATE INDEX fields_seq ON fields(seq);",
	/* 1 -> 2: a period export finds its first and last event by time,
	 * the previous export by type, and `station journal --technician`
	 * the events of a session, each through an index rather than a scan
	 * of millions of rows. */
	"CREATE INDEX events_time ON events(time);"
	"CREATE INDEX events_session ON events(session);"
	"CREATE INDEX events_type ON events(type);",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
		       STN_JOURNAL_SCHEMA_VERSION,
	       "one migration step per schema version");

/* Field rows are read back in insertion (rowid) order, which is the order the
 * caller gave and the order the body was hashed in.  The fields table has no
 * position column (the schema is as decided), so nothing may renumber its
 * rowids out of order: no VACUUM INTO a reordered copy, no row rewrites. */
#define EVENT_COLUMNS "seq, time, type, session, body, prev, hash"
static const char sql_fields[] =
	"SELECT key, value FROM fields WHERE seq = ?1 ORDER BY rowid";

/* ---- errors ---- */

static int db_fail(const struct stn_journal *j, const char *what,
		   struct stn_diag *d)
{
	int code = j->db ? sqlite3_errcode(j->db) : SQLITE_NOMEM;

	return stn_fail(d, code == SQLITE_NOMEM ? STN_E_NOMEM : STN_E_JOURNAL,
			j->path, "sqlite3 %s: %s: %s (%d)", j->path, what,
			sqlite3_errmsg(j->db),
			j->db ? sqlite3_extended_errcode(j->db) : SQLITE_NOMEM);
}

static int sys_fail(const char *path, const char *what, struct stn_diag *d)
{
	return stn_fail(d, STN_E_JOURNAL, path, "%s %s: %s", what, path,
			strerror(errno));
}

static int nomem(const struct stn_journal *j, struct stn_diag *d)
{
	return stn_fail(d, STN_E_NOMEM, j->path, NULL);
}

/* ---- the canonical encoding (station/canon.c) ---- */

/* How verify names a part of a stored body that disagrees with its row. */
static const char *const part_names[STN_CANON_PARTS] = {
	"seq", "time column", "type column", "session column", "field rows",
};

/* ---- SQLite plumbing ---- */

static int exec(struct stn_journal *j, const char *sql, const char *what,
		struct stn_diag *d)
{
	if (sqlite3_exec(j->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(j, what, d);
	return 0;
}

static int prepare(struct stn_journal *j, const char *sql, sqlite3_stmt **st,
		   const char *what, struct stn_diag *d)
{
	if (sqlite3_prepare_v2(j->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(j, what, d);
	return 0;
}

/* Used on error paths only, where the first error is what gets reported. */
static void rollback(struct stn_journal *j)
{
	if (!sqlite3_get_autocommit(j->db))
		(void)sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
}

/* A text column as a C string; "" for NULL, NULL only when out of memory.
 * The type is read first: after a conversion it is undefined. */
static const char *col_text(sqlite3_stmt *st, int i, size_t *len)
{
	int null = sqlite3_column_type(st, i) == SQLITE_NULL;
	const unsigned char *s = sqlite3_column_text(st, i);

	if (len)
		*len = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
	if (!s)
		return null ? "" : NULL;
	return (const char *)s;
}

/* ---- open ---- */

/* Makes a new directory entry durable; a file system that cannot fsync a
 * directory gets what it can give rather than a station that will not
 * start. */
static void sync_parent(const char *path)
{
	struct stn_diag best_effort;

	stn_diag_init(&best_effort);
	(void)stn_fsync_parent(path, &best_effort);
}

/* The journal names technicians, devices and tokens: only the station's user
 * may read it, so missing directories are made 0700 and the file 0600 (SQLite
 * gives its -wal and -shm files the database file's mode). */
static int create_file(const char *path, struct stn_diag *d)
{
	char *p = strdup(path);
	int rc = 0, fd;

	if (!p)
		return stn_fail(d, STN_E_NOMEM, path, NULL);
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0700) == 0) {
			sync_parent(p);
		} else if (errno != EEXIST) {
			rc = sys_fail(p, "cannot create directory", d);
			goto out;
		}
		*s = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		sync_parent(path);
	} else if (errno != EEXIST) {
		rc = sys_fail(path, "cannot create journal", d);
	}
out:
	free(p);
	return rc;
}

static int set_pragmas(struct stn_journal *j, struct stn_diag *d)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc;

	rc = prepare(j, "PRAGMA journal_mode=WAL", &st, "set WAL mode", d);
	if (rc)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(j, "set WAL mode", d);
		goto out;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0) {
		rc = stn_fail(d, STN_E_JOURNAL, j->path,
			      "sqlite3 %s: journal mode stays %s, not wal",
			      j->path, mode ? mode : "unknown");
		goto out;
	}
	/* FULL: an event the station has reported must survive power loss,
	 * which WAL's default NORMAL does not promise. */
	rc = exec(j, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
		  "set pragmas", d);
out:
	sqlite3_finalize(st);
	return rc;
}

static int schema_version(struct stn_journal *j, int64_t *out,
			  struct stn_diag *d)
{
	sqlite3_stmt *st = NULL;
	int rc, s;

	rc = prepare(j,
		     "SELECT (SELECT count(*) FROM sqlite_master"
		     " WHERE type = 'table' AND name = 'meta')",
		     &st, "read schema", d);
	if (rc)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(j, "read schema", d);
		goto out;
	}
	if (sqlite3_column_int(st, 0) == 0) {
		*out = 0;
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = prepare(j, "SELECT value FROM meta WHERE key = 'schema_version'",
		     &st, "read schema version", d);
	if (rc)
		goto out;
	s = sqlite3_step(st);
	if (s == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
		*out = sqlite3_column_int64(st, 0);
	} else if (s == SQLITE_ROW || s == SQLITE_DONE) {
		rc = stn_fail(d, STN_E_JOURNAL, j->path,
			      "sqlite3 %s: meta holds no integer "
			      "schema_version",
			      j->path);
	} else {
		rc = db_fail(j, "read schema version", d);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/* In one IMMEDIATE transaction, so two stations' processes opening a fresh
 * file cannot both create the schema.  A journal already current is only
 * read: a second handle (an export's reader) must open while another
 * writer holds the lock. */
static int migrate(struct stn_journal *j, struct stn_diag *d)
{
	sqlite3_stmt *st = NULL;
	char what[48];
	int64_t v = 0;
	int rc;

	rc = schema_version(j, &v, d);
	if (rc)
		return rc;
	if (v == STN_JOURNAL_SCHEMA_VERSION)
		return 0;
	rc = exec(j, "BEGIN IMMEDIATE", "begin schema transaction", d);
	if (rc)
		return rc;
	rc = schema_version(j, &v, d);
	if (rc)
		goto out;
	if (v < 0 || v > STN_JOURNAL_SCHEMA_VERSION) {
		rc = stn_fail(d, STN_E_JOURNAL, j->path,
			      "sqlite3 %s: schema version %" PRId64
			      " is not one this station knows (up to %d)",
			      j->path, v, STN_JOURNAL_SCHEMA_VERSION);
		goto out;
	}
	for (; v < STN_JOURNAL_SCHEMA_VERSION; v++) {
		snprintf(what, sizeof(what), "migrate schema to version %" PRId64,
			 v + 1);
		rc = exec(j, migrations[v], what, d);
		if (rc)
			goto out;
		/* Prepared only now: before step 0 there is no meta table. */
		rc = prepare(j, "UPDATE meta SET value = ?1"
				" WHERE key = 'schema_version'",
			     &st, what, d);
		if (rc)
			goto out;
		if (sqlite3_bind_int64(st, 1, v + 1) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_DONE) {
			rc = db_fail(j, what, d);
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	rc = exec(j, "COMMIT", "commit schema", d);
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(j);
	return rc;
}

int stn_journal_open(const char *path, struct stn_journal **out,
		     struct stn_diag *d)
{
	struct stn_journal *j = NULL;
	int rc;

	if (!path || !path[0] || !out)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"no journal path given");
	j = calloc(1, sizeof(*j));
	if (!j)
		return stn_fail(d, STN_E_NOMEM, path, NULL);
	j->path = strdup(path);
	if (!j->path) {
		rc = stn_fail(d, STN_E_NOMEM, path, NULL);
		goto out;
	}
	rc = create_file(path, d);
	if (rc)
		goto out;
	/* No SQLITE_OPEN_CREATE: create_file made the file with our mode. */
	if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		rc = db_fail(j, "open", d);
		goto out;
	}
	sqlite3_extended_result_codes(j->db, 1);
	sqlite3_busy_timeout(j->db, BUSY_TIMEOUT_MS);
	rc = set_pragmas(j, d);
	if (rc)
		goto out;
	rc = migrate(j, d);
	if (rc)
		goto out;
	*out = j;
	j = NULL;
out:
	stn_journal_close(j);
	return rc;
}

void stn_journal_close(struct stn_journal *j)
{
	if (!j)
		return;
	/* Every statement is finalized where it was prepared, so this cannot
	 * be refused as busy. */
	sqlite3_close(j->db);
	free(j->path);
	free(j);
}

const char *stn_journal_path(const struct stn_journal *j)
{
	return j ? j->path : NULL;
}

/* ---- append ---- */

int stn_journal_append(struct stn_journal *j, int64_t time, const char *type,
		       const char *session, const struct stn_field *fields,
		       size_t nfields, uint64_t *seq_out, struct stn_diag *d)
{
	sqlite3_stmt *st = NULL;
	struct stn_buf body = {0};
	size_t ends[STN_CANON_PARTS];
	char prev[CU_SHA256_HEX_LEN + 1] = STN_JOURNAL_GENESIS;
	char hash[CU_SHA256_HEX_LEN + 1];
	uint64_t seq = 1;
	int rc, s;

	if (!j)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"append: no journal");
	rc = stn_canon_check(j->path, time, type, session, fields, nfields, d);
	if (rc)
		return rc;
	/* IMMEDIATE takes the write lock before reading the last hash, so a
	 * second writer cannot chain onto the same predecessor. */
	rc = exec(j, "BEGIN IMMEDIATE", "begin append", d);
	if (rc)
		return rc;
	rc = prepare(j, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
		     &st, "read last event", d);
	if (rc)
		goto out;
	s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		sqlite3_int64 last = sqlite3_column_int64(st, 0);
		const char *h = col_text(st, 1, NULL);

		if (!h) {
			rc = nomem(j, d);
			goto out;
		}
		if (last < 1 || last == INT64_MAX || !stn_canon_is_hash(h)) {
			rc = stn_fail(d, STN_E_CHAINBROKEN, j->path,
				      "event %lld: seq or hash unusable as a "
				      "predecessor",
				      (long long)last);
			goto out;
		}
		seq = (uint64_t)last + 1;
		memcpy(prev, h, sizeof(prev));
	} else if (s != SQLITE_DONE) {
		rc = db_fail(j, "read last event", d);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;

	stn_canon_body_build(&body, seq, time, type, session, fields, nfields, ends);
	if (body.oom || stn_canon_hash(prev, body.p, body.len, hash) != 0) {
		rc = nomem(j, d);
		goto out;
	}
	if (body.len > STN_JOURNAL_BODY_MAX) {
		rc = stn_fail(d, STN_E_INTERNAL, j->path,
			      "event %s: body would be %zu bytes, more than %d",
			      type, body.len, STN_JOURNAL_BODY_MAX);
		goto out;
	}

	rc = prepare(j, "INSERT INTO events(seq, time, type, session, body,"
			" prev, hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
		     &st, "prepare event insert", d);
	if (rc)
		goto out;
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, time) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 4, session, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, body.p, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 6, prev, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 7, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		rc = db_fail(j, "insert event", d);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;

	rc = prepare(j, "INSERT INTO fields(seq, key, value) VALUES(?1, ?2, ?3)",
		     &st, "prepare field insert", d);
	if (rc)
		goto out;
	for (size_t i = 0; i < nfields; i++) {
		if (sqlite3_bind_int64(st, 1, (sqlite3_int64)seq) != SQLITE_OK ||
		    sqlite3_bind_text(st, 2, fields[i].key, -1,
				      SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(st, 3, fields[i].value, -1,
				      SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_DONE) {
			rc = db_fail(j, "insert field", d);
			goto out;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	st = NULL;

	/* With synchronous=FULL the WAL is fsynced before COMMIT returns: from
	 * here on the event survives power loss. */
	rc = exec(j, "COMMIT", "commit event", d);
	if (rc)
		goto out;
	if (seq_out)
		*seq_out = seq;
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(j);
	free(body.p);
	return rc;
}

/* ---- reading events back ---- */

struct row {
	struct stn_event ev;
	sqlite3_int64 seq;  /* as stored, which may be negative if tampered */
	size_t body_len;    /* bodies are hashed by length, not up to a NUL */
	int time_is_int;    /* 0 when someone stored a non-integer time */
	int null_field;     /* a field row with a NULL key or value */
};

struct walker {
	struct stn_journal *j;
	sqlite3_stmt *ev, *fl;
	struct stn_field *fields;
	size_t *offs; /* key and value offsets into strs, two per field */
	size_t cap;
	struct stn_buf strs;
};

typedef int (*row_fn)(void *ctx, const struct row *r, struct stn_diag *d);

/* Field text is copied: a column's pointer dies at the next step of the
 * fields statement, and the callback needs all of them at once. */
static int read_fields(struct walker *w, struct row *r, struct stn_diag *d)
{
	size_t n = 0, klen, vlen;
	const char *k, *v;
	int s;

	w->strs.len = 0;
	r->null_field = 0;
	sqlite3_reset(w->fl);
	if (sqlite3_bind_int64(w->fl, 1, r->seq) != SQLITE_OK)
		return db_fail(w->j, "read fields", d);
	while ((s = sqlite3_step(w->fl)) == SQLITE_ROW) {
		if (n == w->cap) {
			size_t cap = w->cap ? 2 * w->cap : 16;
			struct stn_field *f;
			size_t *o;

			f = realloc(w->fields, cap * sizeof(*f));
			if (!f)
				return nomem(w->j, d);
			w->fields = f;
			o = realloc(w->offs, 2 * cap * sizeof(*o));
			if (!o)
				return nomem(w->j, d);
			w->offs = o;
			w->cap = cap;
		}
		if (sqlite3_column_type(w->fl, 0) == SQLITE_NULL ||
		    sqlite3_column_type(w->fl, 1) == SQLITE_NULL)
			r->null_field = 1;
		k = col_text(w->fl, 0, &klen);
		v = col_text(w->fl, 1, &vlen);
		if (!k || !v)
			return nomem(w->j, d);
		w->offs[2 * n] = w->strs.len;
		stn_buf_add(&w->strs, k, klen);
		stn_buf_add(&w->strs, "", 1);
		w->offs[2 * n + 1] = w->strs.len;
		stn_buf_add(&w->strs, v, vlen);
		stn_buf_add(&w->strs, "", 1);
		n++;
	}
	if (s != SQLITE_DONE)
		return db_fail(w->j, "read fields", d);
	if (w->strs.oom)
		return nomem(w->j, d);
	for (size_t i = 0; i < n; i++) {
		w->fields[i].key = w->strs.p + w->offs[2 * i];
		w->fields[i].value = w->strs.p + w->offs[2 * i + 1];
	}
	r->ev.fields = w->fields;
	r->ev.nfields = n;
	return 0;
}

static int read_row(struct walker *w, struct row *r, struct stn_diag *d)
{
	sqlite3_stmt *st = w->ev;

	memset(r, 0, sizeof(*r));
	r->seq = sqlite3_column_int64(st, 0);
	r->ev.seq = (uint64_t)r->seq;
	r->time_is_int = sqlite3_column_type(st, 1) == SQLITE_INTEGER;
	r->ev.time = sqlite3_column_int64(st, 1);
	r->ev.type = col_text(st, 2, NULL);
	r->ev.session = col_text(st, 3, NULL);
	r->ev.body = col_text(st, 4, &r->body_len);
	r->ev.prev = col_text(st, 5, NULL);
	r->ev.hash = col_text(st, 6, NULL);
	if (!r->ev.type || !r->ev.session || !r->ev.body || !r->ev.prev ||
	    !r->ev.hash)
		return nomem(w->j, d);
	return read_fields(w, r, d);
}

/* Opens a read transaction unless one is open already (a snapshot, verify,
 * or a callback of stn_journal_each that reads again).  *began says whether
 * read_done must close it. */
static int read_start(struct stn_journal *j, int *began, struct stn_diag *d)
{
	int rc;

	*began = 0;
	if (!sqlite3_get_autocommit(j->db))
		return 0;
	rc = exec(j, "BEGIN", "begin read", d);
	if (rc == 0)
		*began = 1;
	return rc;
}

static int read_done(struct stn_journal *j, int began, int rc,
		     struct stn_diag *d)
{
	if (!began)
		return rc;
	if (rc == 0)
		return exec(j, "COMMIT", "end read", d);
	rollback(j);
	return rc;
}

/* Walks the rows of `ev` (prepared with EVENT_COLUMNS, bound; finalized
 * here whatever happens), inside one read transaction. */
static int walk(struct stn_journal *j, sqlite3_stmt *ev, row_fn fn,
		void *ctx, struct stn_diag *d)
{
	struct walker w = {.j = j, .ev = ev};
	struct row r;
	int began = 0, rc, s;

	rc = read_start(j, &began, d);
	if (rc)
		goto out;
	rc = prepare(j, sql_fields, &w.fl, "read fields", d);
	if (rc)
		goto out;
	while ((s = sqlite3_step(w.ev)) == SQLITE_ROW) {
		rc = read_row(&w, &r, d);
		if (rc)
			goto out;
		rc = fn(ctx, &r, d);
		if (rc)
			goto out;
	}
	if (s != SQLITE_DONE)
		rc = db_fail(j, "read events", d);
out:
	sqlite3_finalize(w.ev);
	sqlite3_finalize(w.fl);
	rc = read_done(j, began, rc, d);
	free(w.fields);
	free(w.offs);
	free(w.strs.p);
	return rc;
}

/* Prepares `sql` and binds the 64-bit integers a[0..n-1] to ?1..?n. */
static int prepare_ints(struct stn_journal *j, const char *sql,
			const int64_t *a, int n, sqlite3_stmt **st,
			const char *what, struct stn_diag *d)
{
	int rc = prepare(j, sql, st, what, d);

	if (rc)
		return rc;
	for (int i = 0; i < n; i++)
		if (sqlite3_bind_int64(*st, i + 1, a[i]) != SQLITE_OK) {
			rc = db_fail(j, what, d);
			sqlite3_finalize(*st);
			*st = NULL;
			return rc;
		}
	return 0;
}

struct each_ctx {
	int (*cb)(void *ctx, const struct stn_event *e);
	void *ctx;
};

static int each_row(void *ctx, const struct row *r, struct stn_diag *d)
{
	const struct each_ctx *c = ctx;

	(void)d;
	return c->cb(c->ctx, &r->ev);
}

int stn_journal_each(struct stn_journal *j, int64_t since,
		     int (*cb)(void *ctx, const struct stn_event *e),
		     void *ctx, struct stn_diag *d)
{
	struct stn_journal_filter f = {.since = since};

	return stn_journal_query(j, &f, cb, ctx, d);
}

int stn_journal_read_begin(struct stn_journal *j, struct stn_diag *d)
{
	int rc;

	if (!j)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"read_begin: no journal");
	if (j->snapshot || !sqlite3_get_autocommit(j->db))
		return stn_fail(d, STN_E_INTERNAL, j->path,
				"read_begin: a transaction is already open");
	rc = exec(j, "BEGIN", "begin snapshot", d);
	/* A deferred BEGIN takes its snapshot at the first read: read now, so
	 * the snapshot is the journal as of this call. */
	if (rc == 0)
		rc = exec(j, "SELECT count(*) FROM meta", "begin snapshot", d);
	if (rc) {
		rollback(j);
		return rc;
	}
	j->snapshot = 1;
	return 0;
}

void stn_journal_read_end(struct stn_journal *j)
{
	if (!j || !j->snapshot)
		return;
	j->snapshot = 0;
	/* A read transaction has nothing to commit; ending it cannot lose
	 * anything, so a failure here is not worth reporting. */
	rollback(j);
}

/* One integer (or NULL) from a single-row query with integer binds. */
static int query_int(struct stn_journal *j, const char *sql,
		     const int64_t *a, int n, int64_t *out, int *isnull,
		     const char *what, struct stn_diag *d)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare_ints(j, sql, a, n, &st, what, d);

	if (rc)
		return rc;
	*isnull = 1;
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		*isnull = sqlite3_column_type(st, 0) == SQLITE_NULL;
		*out = sqlite3_column_int64(st, 0);
		break;
	case SQLITE_DONE:
		break;
	default:
		rc = db_fail(j, what, d);
	}
	sqlite3_finalize(st);
	return rc;
}

int stn_journal_span(struct stn_journal *j, int64_t since, int64_t until,
		     uint64_t *first, uint64_t *last, int *found,
		     struct stn_diag *d)
{
	int64_t a = 0, b = 0;
	int anull = 1, bnull = 1, began = 0, rc;

	if (!j || !first || !last || !found)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"span: missing argument");
	*found = 0;
	rc = read_start(j, &began, d);
	if (rc == 0)
		rc = query_int(j, "SELECT min(seq) FROM events"
			       " INDEXED BY events_time WHERE time >= ?1",
			       &since, 1, &a, &anull, "find period start", d);
	if (rc == 0 && !anull)
		rc = query_int(j, "SELECT max(seq) FROM events WHERE time <= ?1",
			       &until, 1, &b, &bnull, "find period end", d);
	rc = read_done(j, began, rc, d);
	if (rc || anull || bnull || a < 1 || b < a)
		return rc;
	*first = (uint64_t)a;
	*last = (uint64_t)b;
	*found = 1;
	return 0;
}

int stn_journal_newest_time(struct stn_journal *j, int64_t *t, int *found,
			    struct stn_diag *d)
{
	int64_t v = 0;
	int isnull = 1, rc;

	if (!j || !t || !found)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"newest_time: missing argument");
	rc = query_int(j, "SELECT max(time) FROM events", NULL, 0, &v, &isnull,
		       "find the newest event", d);
	if (rc)
		return rc;
	*found = !isnull;
	if (!isnull)
		*t = v;
	return 0;
}

struct one_ctx {
	struct each_ctx c;
	int n;
};

static int one_row(void *ctx, const struct row *r, struct stn_diag *d)
{
	struct one_ctx *o = ctx;

	(void)d;
	o->n++;
	return o->c.cb(o->c.ctx, &r->ev);
}

int stn_journal_lookup(struct stn_journal *j, uint64_t seq, const char *type,
		       int (*cb)(void *ctx, const struct stn_event *e),
		       void *ctx, int *found, struct stn_diag *d)
{
	struct one_ctx o = {{cb, ctx}, 0};
	sqlite3_stmt *st = NULL;
	int rc;

	if (!j || !cb || !found || (seq == 0) == (type == NULL) ||
	    seq > INT64_MAX)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"lookup: give a journal, a callback, and a seq "
				"or a type");
	*found = 0;
	if (seq) {
		rc = prepare(j, "SELECT " EVENT_COLUMNS " FROM events"
				" WHERE seq = ?1", &st, "look up event", d);
		if (rc == 0 &&
		    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq) != SQLITE_OK)
			rc = db_fail(j, "look up event", d);
	} else {
		/* events_type is (type, seq): this is one index probe. */
		rc = prepare(j, "SELECT " EVENT_COLUMNS " FROM events"
				" WHERE type = ?1 ORDER BY seq DESC LIMIT 1",
			     &st, "look up event", d);
		if (rc == 0 && sqlite3_bind_text(st, 1, type, -1,
						 SQLITE_STATIC) != SQLITE_OK)
			rc = db_fail(j, "look up event", d);
	}
	if (rc) {
		sqlite3_finalize(st);
		return rc;
	}
	rc = walk(j, st, one_row, &o, d);
	*found = o.n > 0;
	return rc;
}

/* A query being built: its SQL and the text bound to its ?s in order.
 * Values are never pasted into SQL. */
struct query {
	struct stn_buf sql;
	const char *text[3 + STN_JOURNAL_QUERY_TYPES +
			 3 * (STN_JOURNAL_QUERY_FIELDS + 1)];
	int ntext;
};

static void q_and(struct query *q, const char *cond)
{
	stn_buf_str(&q->sql, " AND ");
	stn_buf_str(&q->sql, cond);
}

static void q_text(struct query *q, const char *sql, const char *value)
{
	stn_buf_str(&q->sql, sql);
	q->text[q->ntext++] = value;
}

/* "key = ? AND value = ?", or "key IN (?, ?) AND value = ?": served by
 * the fields_key_value index. */
static void q_field(struct query *q, const struct stn_journal_field_is *f)
{
	q_text(q, f->alt_key ? "key IN (?, " : "key = ?", f->key);
	if (f->alt_key)
		q_text(q, "?)", f->alt_key);
	q_text(q, " AND value = ?", f->value);
}

static int filter_ok(const struct stn_journal_filter *f)
{
	if (f->ntypes > STN_JOURNAL_QUERY_TYPES || (f->ntypes && !f->types))
		return 0;
	for (size_t i = 0; i < f->ntypes; i++)
		if (!f->types[i])
			return 0;
	for (size_t i = 0; i < STN_JOURNAL_QUERY_FIELDS; i++)
		if (f->fields[i].value && !f->fields[i].key)
			return 0;
	return !(f->sessions_with.type && f->sessions_with.field.value &&
		 !f->sessions_with.field.key);
}

int stn_journal_query(struct stn_journal *j,
		      const struct stn_journal_filter *f,
		      int (*cb)(void *ctx, const struct stn_event *e),
		      void *ctx, struct stn_diag *d)
{
	struct each_ctx c = {cb, ctx};
	struct query q = {{0}, {0}, 0};
	sqlite3_stmt *st = NULL;
	int times = 0, rc, ok = 1;

	if (!j || !f || !cb || !filter_ok(f))
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"query: no journal, filter or callback, or "
				"a filter over its caps");
	stn_buf_str(&q.sql, "SELECT " EVENT_COLUMNS " FROM events WHERE 1");
	if (f->since || f->until) {
		q_and(&q, "time BETWEEN ?1 AND ?2");
		times = 2;
	}
	for (size_t i = 0; i < STN_JOURNAL_QUERY_FIELDS; i++) {
		if (!f->fields[i].value)
			continue;
		q_and(&q, "seq IN (SELECT seq FROM fields WHERE ");
		q_field(&q, &f->fields[i]);
		stn_buf_str(&q.sql, ")");
	}
	if (f->sessions_with.type && f->sessions_with.field.value) {
		q_and(&q, "session IN (SELECT e.session FROM fields AS t"
			  " JOIN events AS e ON e.seq = t.seq WHERE t.");
		q_text(&q, "key = ?", f->sessions_with.field.key);
		q_text(&q, " AND t.value = ?", f->sessions_with.field.value);
		q_text(&q, " AND e.type = ?)", f->sessions_with.type);
	}
	if (f->session) {
		q_and(&q, "");
		q_text(&q, "session = ?", f->session);
	}
	for (size_t i = 0; i < f->ntypes; i++)
		q_text(&q, i ? ", ?" : " AND type IN (?", f->types[i]);
	if (f->ntypes)
		stn_buf_str(&q.sql, ")");
	stn_buf_str(&q.sql, " ORDER BY seq");
	if (q.sql.oom) {
		free(q.sql.p);
		return nomem(j, d);
	}
	rc = prepare(j, q.sql.p, &st, "query events", d);
	free(q.sql.p);
	if (rc)
		return rc;
	if (times)
		ok = sqlite3_bind_int64(st, 1, f->since ? f->since : INT64_MIN) ==
			     SQLITE_OK &&
		     sqlite3_bind_int64(st, 2, f->until ? f->until : INT64_MAX) ==
			     SQLITE_OK;
	for (int i = 0; i < q.ntext && ok; i++)
		ok = sqlite3_bind_text(st, times + i + 1, q.text[i], -1,
				       SQLITE_STATIC) == SQLITE_OK;
	if (!ok) {
		rc = db_fail(j, "query events", d);
		sqlite3_finalize(st);
		return rc;
	}
	return walk(j, st, each_row, &c, d);
}

/* ---- verify ---- */

/* The chain check one event at a time, shared by verify (from event 1) and
 * each_range (from any event, with its predecessor's hash). */
struct chain_ctx {
	struct stn_journal *j;
	uint64_t next;  /* the seq the next row must have */
	uint64_t count; /* rows passed */
	char last[CU_SHA256_HEX_LEN + 1];
	struct stn_buf body;
	struct each_ctx then; /* called for each row that passed, if set */
};

static int chain_row(void *ctx, const struct row *r, struct stn_diag *d)
{
	struct chain_ctx *v = ctx;
	const struct stn_event *e = &r->ev;
	const char *w = v->j->path;
	char hash[CU_SHA256_HEX_LEN + 1];
	size_t ends[STN_CANON_PARTS];
	enum stn_canon_part part;

	/* Order matters: a deleted row shows first as a gap, an edited body
	 * as a bad hash, a rewritten hash at the next event's prev. */
	if (r->seq < 0 || e->seq != v->next)
		return stn_fail(d, STN_E_CHAINBROKEN, w,
				"seq gap after %" PRIu64 " (next event is %lld)",
				v->next - 1, (long long)r->seq);
	if (strcmp(e->prev, v->last) != 0) {
		if (e->seq == 1)
			return stn_fail(d, STN_E_CHAINBROKEN, w,
					"event 1: prev is not the chain start "
					"(64 zeros)");
		return stn_fail(d, STN_E_CHAINBROKEN, w,
				"event %" PRIu64 ": prev does not name event "
				"%" PRIu64,
				e->seq, e->seq - 1);
	}
	if (stn_canon_hash(e->prev, e->body, r->body_len, hash) != 0)
		return nomem(v->j, d);
	if (strcmp(hash, e->hash) != 0)
		return stn_fail(d, STN_E_CHAINBROKEN, w,
				"event %" PRIu64
				": hash does not match its content",
				e->seq);
	if (r->null_field)
		return stn_fail(d, STN_E_CHAINBROKEN, w,
				"event %" PRIu64
				": a field row has no key or value",
				e->seq);
	if (!r->time_is_int)
		return stn_fail(d, STN_E_CHAINBROKEN, w,
				"event %" PRIu64 ": time column is not an "
				"integer",
				e->seq);
	stn_canon_body_build(&v->body, e->seq, e->time, e->type, e->session, e->fields,
		   e->nfields, ends);
	if (v->body.oom)
		return nomem(v->j, d);
	part = stn_canon_body_diff(v->body.p, v->body.len, ends, e->body,
				   r->body_len);
	if (part != STN_CANON_PARTS)
		return stn_fail(d, STN_E_CHAINBROKEN, w,
				"event %" PRIu64
				": %s do%s not match its body",
				e->seq, part_names[part],
				part == STN_CANON_FIELDS ? "" : "es");
	v->count++;
	v->next++;
	memcpy(v->last, e->hash, sizeof(v->last));
	return v->then.cb ? v->then.cb(v->then.ctx, e) : 0;
}

/* Field rows whose event is gone: what is left when someone deletes the
 * newest event but forgets its fields. */
static int verify_orphans(struct stn_journal *j, struct stn_diag *d)
{
	sqlite3_stmt *st = NULL;
	int rc, s;

	rc = prepare(j,
		     "SELECT seq FROM fields WHERE seq IS NULL"
		     " OR seq NOT IN (SELECT seq FROM events) LIMIT 1",
		     &st, "check field rows", d);
	if (rc)
		return rc;
	s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) == SQLITE_NULL)
			rc = stn_fail(d, STN_E_CHAINBROKEN, j->path,
				      "a field row names no event");
		else
			rc = stn_fail(d, STN_E_CHAINBROKEN, j->path,
				      "field rows name event %lld, which is "
				      "not in the journal",
				      (long long)sqlite3_column_int64(st, 0));
	} else if (s != SQLITE_DONE) {
		rc = db_fail(j, "check field rows", d);
	}
	sqlite3_finalize(st);
	return rc;
}

int stn_journal_verify(struct stn_journal *j, uint64_t *count,
		       char last_hash[65], struct stn_diag *d)
{
	struct chain_ctx v = {.j = j, .next = 1, .last = STN_JOURNAL_GENESIS};
	sqlite3_stmt *st = NULL;
	int began = 0, rc;

	if (!j)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"verify: no journal");
	/* One snapshot for the walk and the orphan check, so an append by
	 * another process in between cannot look like damage. */
	rc = read_start(j, &began, d);
	if (rc == 0)
		rc = prepare(j, "SELECT " EVENT_COLUMNS " FROM events"
				" ORDER BY seq", &st, "read events", d);
	if (rc == 0)
		rc = walk(j, st, chain_row, &v, d);
	if (rc == 0)
		rc = verify_orphans(j, d);
	rc = read_done(j, began, rc, d);
	free(v.body.p);
	if (rc)
		return rc;
	if (count)
		*count = v.count;
	if (last_hash)
		memcpy(last_hash, v.last, sizeof(v.last));
	return 0;
}

struct hash_ctx {
	char hash[CU_SHA256_HEX_LEN + 1];
};

static int take_hash(void *ctx, const struct stn_event *e)
{
	struct hash_ctx *h = ctx;

	snprintf(h->hash, sizeof(h->hash), "%s", e->hash);
	return 0;
}

int stn_journal_each_range(struct stn_journal *j, uint64_t first,
			   uint64_t last,
			   int (*cb)(void *ctx, const struct stn_event *e),
			   void *ctx, struct stn_diag *d)
{
	struct chain_ctx v = {.j = j, .next = first,
			      .last = STN_JOURNAL_GENESIS, .then = {cb, ctx}};
	struct hash_ctx before = {""};
	sqlite3_stmt *st = NULL;
	int64_t a[2];
	int began = 0, found = 0, rc;

	if (!j || !cb)
		return stn_fail(d, STN_E_INTERNAL, "journal",
				"each_range: no journal or callback");
	if (first == 0 || first > last || last >= INT64_MAX)
		return stn_fail(d, STN_E_CHAINBROKEN, j->path,
				"no events in the range %" PRIu64 "..%" PRIu64,
				first, last);
	a[0] = (int64_t)first;
	a[1] = (int64_t)last;
	rc = read_start(j, &began, d);
	if (rc)
		return rc;
	if (first > 1) {
		/* The range's first prev must name the event before it, or a
		 * rewritten prefix would pass unseen. */
		rc = stn_journal_lookup(j, first - 1, NULL, take_hash, &before,
					&found, d);
		if (rc == 0 && !found)
			rc = stn_fail(d, STN_E_CHAINBROKEN, j->path,
				      "seq gap before %" PRIu64 " (event %" PRIu64
				      " is missing)",
				      first, first - 1);
		if (rc == 0 && !stn_canon_is_hash(before.hash))
			rc = stn_fail(d, STN_E_CHAINBROKEN, j->path,
				      "event %" PRIu64 ": hash is not a hash",
				      first - 1);
		if (rc == 0)
			memcpy(v.last, before.hash, sizeof(v.last));
	}
	if (rc == 0)
		rc = prepare_ints(j, "SELECT " EVENT_COLUMNS " FROM events"
				     " WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
				  a, 2, &st, "read events", d);
	if (rc == 0)
		rc = walk(j, st, chain_row, &v, d);
	if (rc == 0 && v.next != last + 1)
		rc = stn_fail(d, STN_E_CHAINBROKEN, j->path,
			      "seq gap after %" PRIu64 " (the range ends at "
			      "%" PRIu64 ")",
			      v.next - 1, last);
	rc = read_done(j, began, rc, d);
	free(v.body.p);
	return rc;
}

/* ---- the human line ---- */

struct line {
	char *p;
	size_t cap, len;
	int full;
};

/* Copies what fits; a cut never splits a UTF-8 sequence, and once something
 * did not fit nothing later is added (no line with a hole in it). */
static void line_add(struct line *l, const char *s, size_t n)
{
	size_t room;

	if (l->full)
		return;
	room = l->cap - 1 - l->len;
	if (n > room) {
		n = room;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		l->full = 1;
	}
	memcpy(l->p + l->len, s, n);
	l->len += n;
	l->p[l->len] = '\0';
}

static void line_str(struct line *l, const char *s)
{
	line_add(l, s, strlen(s));
}

static int needs_quotes(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!*p)
		return 1;
	for (; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\' ||
		    *p == '=')
			return 1;
	return 0;
}

/* A word, quoted and escaped when it could otherwise break the line or be
 * read as more than one k=v (a device's serial string is not ours). */
static void line_word(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;
	char esc[4];

	if (!needs_quotes(s)) {
		line_str(l, s);
		return;
	}
	line_add(l, "\"", 1);
	for (; *p; p++) {
		if (*p >= 0x20 && *p != 0x7f && *p != '"' && *p != '\\')
			continue;
		line_add(l, (const char *)run, (size_t)(p - run));
		run = p + 1;
		esc[0] = '\\';
		if (*p == '"' || *p == '\\') {
			esc[1] = (char)*p;
			line_add(l, esc, 2);
		} else if (*p == '\n' || *p == '\t') {
			esc[1] = *p == '\n' ? 'n' : 't';
			line_add(l, esc, 2);
		} else {
			esc[1] = 'x';
			esc[2] = hex[*p >> 4];
			esc[3] = hex[*p & 15];
			line_add(l, esc, 4);
		}
	}
	line_add(l, (const char *)run, (size_t)(p - run));
	line_add(l, "\"", 1);
}

void stn_journal_format(const struct stn_event *e, char *buf, size_t cap)
{
	struct line l = {buf, cap, 0, 0};
	char num[24], ts[CU_TIME_LEN + 1];

	if (!buf || cap == 0)
		return;
	buf[0] = '\0';
	if (!e)
		return;
	snprintf(num, sizeof(num), "%" PRIu64 " ", e->seq);
	line_str(&l, num);
	cu_time_format(e->time, ts);
	line_str(&l, ts);
	line_add(&l, " ", 1);
	line_word(&l, e->type ? e->type : "");
	line_str(&l, " session=");
	line_word(&l, e->session ? e->session : "");
	for (size_t i = 0; i < e->nfields; i++) {
		line_add(&l, " ", 1);
		line_word(&l, e->fields[i].key ? e->fields[i].key : "");
		line_add(&l, "=", 1);
		line_word(&l, e->fields[i].value ? e->fields[i].value : "");
	}
}
