/* station/report_internal.h: what the three halves of reports share,
 * private to station/report_export.c, report_verify.c and
 * report_summary.c: the reading of a report's events into sessions (the
 * summary and `report verify` list the same facts), the readable pages,
 * and the report-exported event that chains one export to the next. */
#ifndef STN_REPORT_INTERNAL_H
#define STN_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "station/journal.h"
#include "station/report.h"
#include "station/base/strbuf.h"

#define RPT_HASH_LEN 64
/* Reads and writes go in pieces of this size. */
#define RPT_IO_CHUNK (64 * 1024)

/* One session being read. */
struct rpt_sess {
	struct stn_report_session s;
	int rank;        /* how final s.result is */
	/* Exception tokens applied in it: "SERIAL TOKEN\n" each, as shown,
	 * so that an install under one says so; cut when full. */
	char excepted[512];
	unsigned started, ended_installs; /* install-started, and outcomes */
	struct stn_buf page; /* export only: its events as text, not yet spilled */
};

/*
 * The summary's first page (export only): what failed or was refused,
 * every exception used, then what was installed, per unit, as readable
 * entries wrapped to 80 columns.  Entries wait in sect[] until the export
 * moves them to its scratch files (memory follows one event, not the
 * report); count[] counts every event of the report, listed or not.
 */
enum rpt_section { RPT_SEC_FAILED, RPT_SEC_EXCEPTIONS, RPT_SEC_INSTALLED,
		   RPT_SECTIONS };
enum rpt_class { RPT_INSTALLED, RPT_REFUSED, RPT_FAILED, RPT_LOCKED,
		 RPT_EXCEPTION, RPT_CLASSES };
struct rpt_outline {
	struct stn_buf sect[RPT_SECTIONS]; /* entries not yet moved */
	uint64_t entries[RPT_SECTIONS];    /* entries made, per section */
	uint64_t count[RPT_CLASSES];
};
/* "2 installed, 1 refused, 1 failed, 1 exception used" */
void rpt_outline_counts(struct stn_buf *b, const struct rpt_outline *o);
/* A section's heading line, "FAILED OR REFUSED (3)" or "... none". */
void rpt_outline_heading(struct stn_buf *b, const struct rpt_outline *o,
			 enum rpt_section k);

/* The sessions of a report, in order of first event, found by id. */
struct rpt_sessions {
	struct rpt_sess *v;
	size_t n, cap;
	size_t hint;   /* the session found last: events come in runs */
	size_t *slot;  /* open addressing: index + 1 into v, 0 = empty */
	size_t nslot;  /* a power of two, at least twice n */
	int pages;     /* keep each session's events as text */
	struct rpt_outline *outline; /* export only: the first page's entries */
	int oom;
	uint64_t unlisted; /* events of sessions past STN_REPORT_SESSIONS_MAX */
};

/* Adds e's facts to its session (and its page, when ss->pages).
 * STN_E_NOMEM; a session past the cap only counts in ss->unlisted. */
int rpt_sessions_add(struct rpt_sessions *ss, const struct stn_event *e);
/* Once all of a session's events are seen: says so of an install that
 * started and has no outcome. */
void rpt_sess_final(struct rpt_sess *x);
void rpt_sessions_free(struct rpt_sessions *ss);

/* A session's readable page (its facts; then its events, v->page, follow). */
void rpt_page_head(struct stn_buf *b, const struct rpt_sess *v);

/* The previous export, as its report-exported event says. */
struct rpt_prev {
	uint64_t event; /* seq of the report-exported event */
	char report[1040], sha256[RPT_HASH_LEN + 1],
		last_hash[RPT_HASH_LEN + 1];
	uint64_t last;
	const char *bad; /* the field that is missing or malformed */
};
/* Reads a report-exported event into *p (a stn_journal callback: ctx is
 * p; returns 0).  p->bad names the first unusable field. */
int rpt_take_prev(void *ctx, const struct stn_event *e);

/* What the summary's cover page says. */
struct rpt_cover {
	const char *station, *site, *session;
	const char *json_base, *sha256, *first_prev, *last_hash;
	int64_t exported, since, until;
	uint64_t first, last;
	const struct rpt_prev *prev; /* NULL: none journaled */
	size_t sessions;
	uint64_t unlisted;
};
/* The summary's top (title, station and period, the outline's counts),
 * then after the outline's sections the cover proper (what the record
 * is, how to check it, the chain). */
void rpt_cover_head(struct stn_buf *b, const struct rpt_cover *c,
		    const struct rpt_outline *o);
void rpt_cover_page(struct stn_buf *b, const struct rpt_cover *c);

/* For tests/fuzz_report.c only: the layout and chain checks of
 * stn_report_verify (3 to 5) on the report open on fd (not closed), with
 * no signature checked first; 0 or the first failure.  Never a verdict:
 * an unsigned report proves nothing. */
int rpt_parse_unsigned(int fd, const char *path, struct stn_diag *d);

#endif
