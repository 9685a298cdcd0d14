/* station/report.h: signed service reports (formats §7).  An export writes a
 * period of the journal as one station-report-1 JSON file that carries every
 * event with its seq, prev, hash and exact canonical body, signs it with the
 * station's key as formats §2 says, writes a readable summary beside it and
 * journals the export; consecutive exports chain through the last hash of
 * the previous one.  Verify checks a report from the report alone (and an
 * earlier one, for continuity), with no journal and no configuration.
 * docs/auditor.md is the format, for people who never saw a station. */
#ifndef STN_REPORT_H
#define STN_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;
struct stn_session;
struct cu_trust;

#define STN_REPORT_FORMAT "station-report-1"
/* Caps on what verify reads.  A report of 100,000 events is about 80 MB;
 * a larger file than this is STN_E_TOOBIG before a byte is parsed. */
#define STN_REPORT_MAX (INT64_C(4) << 30)  /* bytes of a report file */
#define STN_REPORT_STRING_MAX (256 * 1024) /* one JSON string, decoded */
#define STN_REPORT_FIELDS_MAX 256          /* fields of one event */
/* Sessions listed (by verify, and paged in an export's summary); events of
 * further sessions are counted, not listed, so memory stays bounded. */
#define STN_REPORT_SESSIONS_MAX 100000
/* (station/journal.h caps what it appends below these, so every journaled
 * event can be exported and verified.) */

/* The event an export journals after it has written and signed a report. */
#define STN_REPORT_EVENT "report-exported"

/*
 * One session as a report shows it: who did what, to which device, on
 * whose authority, and how it ended.  Derived from whatever fields the
 * session's events carry (technician, command, name, version, sequence,
 * bundle, serial, model, hardware, signers, token-* and custody-* events,
 * rule, reason, proof...), so new event types show up without a change
 * here.  Texts are "" when the events say nothing; long ones are cut with
 * "...".
 */
struct stn_report_session {
	char id[72];
	int64_t start, end;         /* times of its first and last event */
	uint64_t first, last, events; /* seq of first and last, and count */
	int ended;                  /* its session-end is in the report */
	char technician[72], command[40];
	char what[256], device[256], authority[512], result[512];
	/* Per device (formats §9): its identity proven by which certificate
	 * and CA, or unproven and why; the station's authorization; its
	 * signed receipts. */
	char identity[768];
};

/* What an export wrote (paths of the files, and what they hold). */
struct stn_report_exported {
	char json[4200], summary[4200];
	int64_t exported;            /* the export time, in the file name */
	uint64_t first, last, count; /* seq of first and last event */
	char last_hash[65];
	char sha256[65];             /* SHA-256 of the JSON file */
	uint64_t sessions;
	int has_previous;            /* the journal held an earlier export */
	uint64_t gap_first, gap_last; /* events after it not exported; 0 0 */
};

/*
 * Export events of the journal as
 * out_dir/report-STATIONID-YYYYMMDDTHHMMSSZ.json (the export time: now, or
 * the session start if the clock is behind it; when a report of that name
 * is already there, the next second, waited for, at most 2 s: two exports
 * in one second both succeed) with its .sig and .pem
 * (formats §2, the [station] key and cert), and a summary, ...Z.txt, one
 * page per session.
 *
 * Which events: from the first event whose time >= since (when since is
 * not 0; otherwise the event after the last one the previous export held,
 * or event 1) to the last event whose time <= until (0: the export time;
 * later than the export time is cut to it), every event between included
 * so that the report is one unbroken piece of the chain.  The range's chain
 * is recomputed before anything is signed, and the previous export's last
 * event must still have the hash that export recorded.
 *
 * The journal is read through a handle of its own, so install threads of
 * the same session keep appending meanwhile.  Files are written to
 * temporary names, fsynced, and linked into place
 * (an existing report is never replaced); the signature is then checked
 * against the trust store as an auditor would.  Only then is
 * report-exported journaled; if that fails, the files are removed.
 *
 * Errors: STN_E_CONFIG (no key/cert, a key that does not load, a
 * certificate whose CN is not the station id, a station id that cannot
 * name a file); STN_E_USAGE (out_dir not a directory, since after until,
 * no event in the period); STN_E_IO (writing, or the report name still
 * taken after the wait); STN_E_CHAINBROKEN (the journal's chain, or a
 * previous export's last hash no longer in the journal); STN_E_JOURNAL;
 * STN_E_NOMEM; and those of cu_sign_file.
 */
int stn_report_export(struct stn_session *s, const char *out_dir,
		      int64_t since, int64_t until,
		      struct stn_report_exported *out, struct stn_diag *d);

/* What verify found; free with stn_report_info_free. */
struct stn_report_info {
	char path[4200];
	char sha256[65];             /* SHA-256 of the report file */
	char signer[128];            /* CN of the station certificate */
	char station[1040], site[1040], session[72];
	int64_t exported, since, until;
	uint64_t first, last, count;
	char first_prev[65], first_hash[65], last_hash[65];
	/* The previous export, as the journal knew it at export time. */
	int has_previous;
	char prev_report[1040], prev_sha256[65], prev_last_hash[65];
	uint64_t prev_last;  /* the last event it held */
	uint64_t prev_event; /* its report-exported event */
	/* Events after the previous export that this report does not hold
	 * (a gap an auditor must explain); 0 and 0 when none. */
	uint64_t gap_first, gap_last;
	/* With an earlier report: it was verified too and this one continues
	 * it (overlap = events both hold, which agree). */
	int earlier_checked;
	uint64_t overlap;
	struct stn_report_session *sessions; /* in order of first event */
	size_t nsessions;
	uint64_t unlisted; /* events of sessions past STN_REPORT_SESSIONS_MAX */
	/* Identity (formats §9): signed records checked (step 7), and
	 * receipts and authorizations that could not be because their
	 * device-attested event is not in this report (the first one's seq). */
	uint64_t identity_checked, identity_unchecked;
	uint64_t identity_first_unchecked;
};

/*
 * Verify report `path` against trust store t, in this order, naming the
 * first failure with the file it is in (the signature is checked on a
 * first pass that reads only the header, so an unsigned file costs one
 * hash; the second pass must hash to the same digest):
 *  1. its size is at most STN_REPORT_MAX (STN_E_TOOBIG); the report, its
 *     .sig and its .pem exist (else STN_E_SIGNATURE: nothing signed);
 *  2. path.sig and path.pem: the signature over the file's SHA-256 and a
 *     station-role chain to t, at the export time the report states (the
 *     time it was signed; CRLs are applied whatever their date), and the
 *     signer's CN is the report's station id (errors of cu_sig_verify;
 *     STN_E_SIGNATURE for the CN);
 *  3. the layout is exactly station-report-1 (docs/auditor.md): no member
 *     missing, unknown, repeated or out of order, one spelling per value
 *     (STN_E_SYNTAX naming the line);
 *  4. the events: seq runs on without a gap, the first prev is the one the
 *     header states, every prev is the previous hash, every hash is
 *     SHA-256(prev "\n" body), every body is the canonical body of the
 *     event's shown seq, time, type, session and fields, the header's
 *     first, last and count agree, and the first and last event lie in the
 *     stated period (STN_E_CHAINBROKEN naming the event);
 *  5. the previous export it names: where this report reaches that
 *     export's last event, its hash is the one recorded, and where it
 *     holds that export's report-exported event, the event says what the
 *     header says (STN_E_CHAINBROKEN);
 *  6. when earlier is not NULL: the earlier report passes 1-5 too, it is
 *     the previous export named (its SHA-256 and last hash), and this
 *     report starts where it ended or overlaps it with the same hashes; a
 *     gap or a report that starts before the earlier one is
 *     STN_E_CHAINBROKEN.
 * Reads are bounded (files opened with O_NOFOLLOW, regular files only:
 * else STN_E_UNSAFE; STN_E_IO).  The file is read once: the bytes hashed
 * are the bytes parsed.  On success *out holds what the report says.
 */
int stn_report_verify(const struct cu_trust *t, const char *path,
		      const char *earlier, struct stn_report_info **out,
		      struct stn_diag *d);
void stn_report_info_free(struct stn_report_info *i); /* NULL is fine */

#endif
