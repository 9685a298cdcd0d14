/* station/session.h: one run of the station.  A session loads the
 * configuration and trust store, opens the journal, fixes the start time
 * that every expiry check uses, and journals its own start and end.  Every
 * event goes through stn_session_log, which fails closed: an action whose
 * event cannot be journaled does not happen. */
#ifndef STN_SESSION_H
#define STN_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "station/events.h"
#include "station/journal.h"

struct stn_diag;
struct stn_config;
struct cu_trust;

enum {
	STN_SESSION_QUIET = 1, /* read-only use: no session-start/end events,
				  no clock check (it decides nothing) */
};

struct stn_session;

/* Errors: STN_E_CONFIG (configuration, trust store or station certificate
 * unusable), STN_E_TECHNICIAN (technician given but not configured),
 * STN_E_CLOCK (the clock is more than 5 minutes behind the trusted-time
 * floor; journaled), STN_E_JOURNAL, STN_E_NOMEM. */
int stn_session_open(const char *config_path, const char *technician,
		     const char *command, unsigned flags,
		     struct stn_session **out, struct stn_diag *d);
/* Journals session-end with the result (0 or an STN_E_* code) and frees.
 * NULL is fine. */
void stn_session_close(struct stn_session *s, int result);
/* The same, with `how` as the result when it is not NULL: a session the
 * technician ended without an error ("signed-out", "idle" from the text
 * UI), code 0. */
void stn_session_close_as(struct stn_session *s, int result, const char *how);

/* Installs that earlier sessions left without an outcome, found and
 * journaled (install-abandoned) as this session opened: the count, and in
 * *text the devices, for the technician (station/abandoned.h). */
unsigned stn_session_abandoned(const struct stn_session *s,
			       const char **text);

const struct stn_config *stn_session_config(const struct stn_session *s);
const struct cu_trust *stn_session_trust(const struct stn_session *s);
struct stn_journal *stn_session_journal(struct stn_session *s);
int64_t stn_session_start(const struct stn_session *s);
const char *stn_session_id(const struct stn_session *s);
const char *stn_session_technician(const struct stn_session *s); /* or NULL */
/* Opened with STN_SESSION_QUIET: it journals nothing of its own. */
int stn_session_quiet(const struct stn_session *s);
/* data/staging: where bundles are copied before they are verified. */
const char *stn_session_staging(const struct stn_session *s);
/* The trusted-time floor in force at the session start (formats §6). */
int64_t stn_session_floor(const struct stn_session *s);
/* What the start had to recover from, for the front end to say (a damaged
 * trusted-time floor file, rebuilt from the journal and journaled as
 * time-floor-recovered); NULL when nothing.  Borrowed. */
const char *stn_session_notice(const struct stn_session *s);

/*
 * Offer a CRL found in a bundle's crl/ (formats §6).  It must verify
 * against a CA of the store or one in issuer_pem (may be NULL); when it is
 * newer than the stored CRL of its issuer it replaces it, for this session
 * and (kept under DATA/crl) for later ones; an older one is ignored.
 * *replaced says which.  Errors: those of cu_trust_add_crl.
 */
int stn_session_offer_crl(struct stn_session *s, const char *crl_path,
			  const char *issuer_pem, int *replaced,
			  struct stn_diag *d);
/*
 * Device identity (formats §8, §9).  Each [class] with device-anchors has
 * its own trust store, loaded at open with the [trust] crl directory and
 * the CRLs learned under DATA/crl; stn_session_offer_crl offers a bundle's
 * CRL to the release store and to every class store, and accepts it when
 * one of them can verify it (a device CA's CRL travels like any other).
 * The station key is loaded at open when [station] key is set.
 */
struct cu_devmsg;
struct cu_attestation;
struct cu_authz;
struct stn_class;

/* Judge an attestation (cu_attest_verify) against class c's device
 * anchors at the session start, under the session's lock.  A class
 * without device-anchors refuses every attestation (STN_E_ATTESTATION:
 * "class X names no device anchors"). */
int stn_session_attest_verify(struct stn_session *s, const struct stn_class *c,
			      const struct cu_devmsg *msg,
			      const uint8_t *nonce, const char *where,
			      struct cu_attestation *out, struct stn_diag *d);
/* Make and sign an authorization with the station key (cu_authz_make),
 * under the session's lock; chain gets the key's DER certificates (at
 * most max).  STN_E_CONFIG when the station has no key. */
int stn_session_authz_make(struct stn_session *s, const struct cu_authz *a,
			   char *out, size_t cap, size_t *out_len,
			   uint8_t *sig, size_t sig_cap, size_t *sig_len,
			   const uint8_t **chain, size_t *chain_len,
			   size_t max, size_t *nchain, struct stn_diag *d);
/*
 * Encrypted delivery (formats §10).  The delivery key is loaded at open
 * when [station] delivery-key is set (cu_delivery_load against the
 * release trust store at the session start; any problem is STN_E_CONFIG
 * and stops the start).  stn_session_content_key unwraps the content key
 * of encrypted image img of the bundle staged in dir (cu_delivery_key_for
 * under the session's lock, with the delivery key, or NULL when none:
 * then STN_E_IMAGE, rule images, naming the recipients); messages name
 * files under `shown`.  The caller wipes key as soon as it is used.
 */
struct cu_image;
int stn_session_content_key(struct stn_session *s, const char *dir,
			    const char *shown, const struct cu_image *img,
			    uint8_t key[32], struct stn_diag *d);
/* The SHA-256 of the delivery certificate (DER), the recipient id key
 * files name; NULL when the station holds no delivery key.  Borrowed. */
const uint8_t *stn_session_delivery_recipient(const struct stn_session *s);

/* Fresh random bytes (nonces) from the kernel (getrandom). */
int stn_session_random(uint8_t *out, size_t len, struct stn_diag *d);

/* Raise the trusted-time floor to a signed time that was accepted. */
int stn_session_accept_time(struct stn_session *s, int64_t t,
			    struct stn_diag *d);

/* Append an event of type t to the journal under this session, checked
 * against the vocabulary and with untrusted text made valid
 * (stn_ev_append; pass STN_EV_N(fields) as n).  Safe to call from several
 * threads (installs to several devices at once): journal access through
 * the session functions is serialised.  Errors: STN_E_JOURNAL. */
int stn_session_log(struct stn_session *s, enum stn_ev t,
		    const struct stn_field *fields, size_t nfields,
		    struct stn_diag *d);
/* Thread-safe forms of the journal reads the install flow needs
 * (station/events.h and station/journal.h have the contracts). */
int stn_session_installed_sequence(struct stn_session *s, const char *serial,
				   uint64_t *seq, int *found,
				   struct stn_diag *d);
int stn_session_token_used(struct stn_session *s, const char *use,
			   int *found, struct stn_diag *d);
int stn_session_journal_each(struct stn_session *s, int64_t since,
			     int (*cb)(void *ctx, const struct stn_event *e),
			     void *ctx, struct stn_diag *d);
int stn_session_journal_query(struct stn_session *s,
			      const struct stn_journal_filter *f,
			      int (*cb)(void *ctx, const struct stn_event *e),
			      void *ctx, struct stn_diag *d);

#endif
