/* station/events.h: the one vocabulary of the journal (formats §7,
 * docs/journal.md).  Every event type the station journals is one row of
 * STN_EVENTS with its fields in the order they are written; whoever writes
 * an event names it by its enum and is checked against the row, whoever
 * reads one asks stn_ev_is.  The journal itself (station/journal.h) is a
 * plain store that knows no event names; the lookups the install flow
 * needs from past events live here, beside the vocabulary. */
#ifndef STN_EVENTS_H
#define STN_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "station/canon.h"

struct stn_diag;
struct stn_event;
struct stn_journal;

/*
 * X(ID, "type", "fields"): the fields in their written order, separated by
 * one space; a trailing '?' marks a field an event may leave out.  Adding
 * an event type is adding a row here and its name to docs/journal.md
 * (tests/test_events.c checks both).  Values are text; untrusted text is
 * made valid UTF-8 as it is journaled (stn_ev_append).
 */
#define STN_EV_REFUSAL_FIELDS \
	"bundle? name? version? dir serial? rule where reason code"
#define STN_EVENTS(X)                                                        \
	X(SESSION_START, "session-start", "station site command technician") \
	X(SESSION_END, "session-end", "result code")                         \
	X(SESSION_REFUSED, "session-refused", "station command rule reason") \
	X(SIGNIN_REFUSED, "signin-refused", "technician failures rule reason") \
	X(TECHNICIAN_LOCKED, "technician-locked", "technician failures until") \
	X(TIME_FLOOR_RECOVERED, "time-floor-recovered", "file reason floor") \
	X(MEDIA_SEEN, "media-seen", "event path source fstype")              \
	X(STAGING_SWEPT, "staging-swept", "removed")                         \
	X(CRL_OFFERED, "crl-offered", "dir crl outcome")                     \
	X(BUNDLE_VERIFIED, "bundle-verified",                                \
	  "bundle name version sequence signers dir")                        \
	X(CUSTODY_VERIFIED, "custody-verified", "bundle hops holders")       \
	X(BUNDLE_REFUSED, "bundle-refused", STN_EV_REFUSAL_FIELDS)           \
	X(MEDIA_ERROR, "media-error", STN_EV_REFUSAL_FIELDS)                 \
	X(DEVICE_REFUSED, "device-refused", STN_EV_REFUSAL_FIELDS)           \
	X(DEVICE_ERROR, "device-error", STN_EV_REFUSAL_FIELDS)               \
	X(TOKEN_APPLIED, "token-applied",                                    \
	  "token use serial bundle file signer waives reason")               \
	X(DEVICE_ATTESTED, "device-attested",                                \
	  "device serial model hardware? class policy result reason? "      \
	  "cert-subject? cert-issuer? cert-serial? nonce? challenge? "       \
	  "record? sig? chain?")                                             \
	X(INSTALL_STARTED, "install-started",                                \
	  "technician bundle name version device transport serial model "    \
	  "hardware sequence-before sequence-source sequence reinstall "      \
	  "class? identity?")                                                \
	X(INSTALL_AUTHORIZED, "install-authorized",                          \
	  "device serial bundle challenge issued expires record sig chain")  \
	X(IMAGE_WRITTEN, "image-written",                                    \
	  "bundle serial image file slot sha256 bytes proof device-sha256 "  \
	  "duration-ms")                                                     \
	X(IMAGE_RECEIPT, "image-receipt",                                    \
	  "device serial bundle image slot size sha256 result reason? "      \
	  "record? sig?")                                                    \
	X(INSTALL_FINISHED, "install-finished",                              \
	  "technician bundle name version serial model hardware "            \
	  "sequence-before sequence images proof duration-ms")               \
	X(INSTALL_FAILED, "install-failed", STN_EV_REFUSAL_FIELDS)           \
	X(INSTALL_ABANDONED, "install-abandoned",                            \
	  "started-seq install-session serial bundle name version device")   \
	X(REPORT_EXPORTED, "report-exported",                                \
	  "report sha256 since until first-seq last-seq events last-hash "   \
	  "dir")

enum stn_ev {
#define STN_EV_ENUM(id, name, fields) STN_EV_##id,
	STN_EVENTS(STN_EV_ENUM)
#undef STN_EV_ENUM
	STN_EV_COUNT
};

/* The number of elements of an array of fields. */
#define STN_EV_N(a) (sizeof(a) / sizeof((a)[0]))

/* The type's name ("install-finished") and its field list as in the table
 * (static strings); NULL for a value outside the enum. */
const char *stn_ev_name(enum stn_ev t);
const char *stn_ev_fields(enum stn_ev t);
/* Whether `type` (an event's type as read back) is t. */
int stn_ev_is(const char *type, enum stn_ev t);
/* The type named `name`: 0 and *t, or -1 when no row has that name. */
int stn_ev_lookup(const char *name, enum stn_ev *t);
/* The value of field `key` of e, or NULL when it has none (borrowed). */
const char *stn_ev_field(const struct stn_event *e, const char *key);

/*
 * Whether fields[0..n-1] are exactly what t's row allows: the table's keys
 * in the table's order, every field without '?' present, nothing else.
 * STN_E_INTERNAL (a caller's bug) naming the type and the key otherwise.
 */
int stn_ev_check(enum stn_ev t, const struct stn_field *fields, size_t n,
		 struct stn_diag *d);

/*
 * Appends an event of type t to j: checks the fields against the table,
 * then makes every value valid UTF-8 (stn_canon_text_buf: a device's or a
 * medium's bytes that are not UTF-8 are journaled as \xNN, not refused),
 * then stn_journal_append.  Errors: stn_ev_check's, stn_journal_append's,
 * STN_E_NOMEM.  Sessions append through stn_session_log, which calls this.
 */
int stn_ev_append(struct stn_journal *j, int64_t time, const char *session,
		  enum stn_ev t, const struct stn_field *fields, size_t n,
		  uint64_t *seq_out, struct stn_diag *d);

/*
 * Anti-rollback fallback when a device cannot report its sequence: the
 * highest field "sequence" of the install-finished events whose "serial"
 * is serial (as journaled: an invalid serial is looked up in its \xNN
 * form).  *found = 0 (and *seq untouched) when none.  A "sequence" that is
 * not a decimal uint64 is STN_E_JOURNAL rather than being skipped, since
 * skipping could let a rollback through.  STN_E_JOURNAL, STN_E_NOMEM.
 */
int stn_ev_installed_sequence(struct stn_journal *j, const char *serial,
			      uint64_t *seq, int *found, struct stn_diag *d);

/* Whether a token-applied event has field use = `use` ("TOKEN/SERIAL"):
 * that token already waived a check on that device.  STN_E_JOURNAL,
 * STN_E_NOMEM. */
int stn_ev_token_used(struct stn_journal *j, const char *use, int *found,
		      struct stn_diag *d);

/*
 * What `station journal` can select.  Every member is optional (0 or
 * NULL) and the ones given must all hold.  Times select by the event's
 * time, inclusive.  serial: events with field serial = it.  bundle:
 * events with field bundle = it, or field name = it (a bundle's name).
 * technician: every event of the sessions whose session-start names this
 * technician.  session, type: exact.
 */
struct stn_ev_filter {
	int64_t since, until; /* 0 = unbounded */
	const char *serial, *bundle, *technician, *session, *type;
};

/* Calls cb for each matching event in seq order, in one snapshot, through
 * the journal's indexes.  cb's non-zero return stops the walk and is
 * returned.  STN_E_JOURNAL, STN_E_NOMEM; STN_E_INTERNAL for a NULL
 * filter. */
int stn_ev_query(struct stn_journal *j, const struct stn_ev_filter *f,
		 int (*cb)(void *ctx, const struct stn_event *e), void *ctx,
		 struct stn_diag *d);

#endif
