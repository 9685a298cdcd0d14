/* station/session.c: configuration, trust and journal for one run. */
#include "station/session.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "custody/delivery.h"
#include "custody/devid.h"
#include "custody/record.h"
#include "station/base/rfc3339.h"
#include "custody/sig.h"
#include "custody/sign.h"
#include "custody/trust.h"
#include "media/stage.h"
#include "station/abandoned.h"
#include "station/clock.h"
#include "station/config.h"
#include "station/base/error.h"
#include "station/base/fileio.h"

struct stn_session {
	pthread_mutex_t lock; /* journal, floor, CRL stores and the station
				 key across threads */
	struct stn_config *cfg;
	struct cu_trust *trust;
	/* Per [class], in cfg->classes order: its device anchors with the
	 * station's CRLs, NULL for a class without device-anchors. */
	struct cu_trust **class_trust;
	struct cu_key *key; /* the station key, when [station] key is set */
	/* The delivery key (formats §10), when [station] delivery-key is
	 * set: it unwraps content keys, under the lock. */
	struct cu_delivery_key *delivery;
	struct stn_journal *journal;
	int64_t start;
	char id[33];
	char *technician;
	char staging[4200];
	char crl_dir[4200]; /* CRLs learned from bundles */
	int64_t floor;
	unsigned flags;
	int live_fd;         /* lock on DATA/live/ID while the session runs */
	unsigned abandoned;  /* installs earlier sessions left (abandoned.h) */
	char abandoned_text[1024];
	char notice[1024]; /* what the start recovered from, for people */
};

/* The data directory holds the journal and staging: it must be ours
 * alone, or another user could swap what we verified. */
static int make_private_dir(const char *path, struct stn_diag *d)
{
	struct stat st;

	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return stn_fail(d, STN_E_CONFIG, path,
				"cannot create data directory: %s",
				strerror(errno));
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return stn_fail(d, STN_E_CONFIG, path,
				"data path is not a directory (a symlink?)");
	if (st.st_uid != geteuid() || (st.st_mode & 022))
		return stn_fail(d, STN_E_CONFIG, path,
				"data directory must be owned by this user and "
				"not writable by others (it is %03o, uid %u)",
				(unsigned)(st.st_mode & 0777),
				(unsigned)st.st_uid);
	return 0;
}

/* Each class's device anchors as a trust store of their own (formats §2:
 * device certificates chain to their class's anchors, never to the
 * release anchors), with the same CRLs as the main store: the [trust]
 * directory and those learned under DATA/crl (formats §9 "Edges"). */
static int load_class_trust(struct stn_session *s, struct stn_diag *d)
{
	const struct stn_config *c = s->cfg;
	int rc;

	if (!c->nclasses)
		return 0;
	s->class_trust = calloc(c->nclasses, sizeof(*s->class_trust));
	if (!s->class_trust)
		return stn_fail(d, STN_E_NOMEM, c->path, "session");
	for (size_t i = 0; i < c->nclasses; i++) {
		const struct stn_class *k = &c->classes[i];
		if (!k->device_anchors)
			continue;
		rc = cu_trust_load(k->device_anchors, c->crl_dir,
				   &s->class_trust[i], d);
		if (rc == 0 && access(s->crl_dir, F_OK) == 0)
			rc = cu_trust_add_crl_dir(s->class_trust[i],
						  s->crl_dir, d);
		if (rc) {
			if (stn_err_exit(rc) != STN_EXIT_IO)
				rc = stn_recode(d, STN_E_CONFIG);
			return rc;
		}
		cu_trust_set_stale_crl_refuse(s->class_trust[i],
					      c->stale_crl_refuse);
	}
	return 0;
}

int stn_session_open(const char *config_path, const char *technician,
		     const char *command, unsigned flags,
		     struct stn_session **out, struct stn_diag *d)
{
	struct stn_session *s;
	uint8_t rnd[16];
	char path[4200];
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return stn_fail(d, STN_E_NOMEM, config_path, "session");
	pthread_mutex_init(&s->lock, NULL);
	s->flags = flags;
	s->live_fd = -1;
	/* The session start is read once: every expiry check in this run
	 * uses it, not the time of the check (formats §6). */
	s->start = (int64_t)time(NULL);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		rc = stn_fail(d, STN_E_IO, "getrandom", "%s", strerror(errno));
		goto fail;
	}
	cu_hex(rnd, sizeof(rnd), s->id);

	if ((rc = stn_config_load(config_path, &s->cfg, d)))
		goto fail;
	if (technician) {
		if (!stn_config_technician(s->cfg, technician)) {
			rc = stn_fail(d, STN_E_TECHNICIAN, config_path,
				      "technician '%s' has no [technician %s] "
				      "section", technician, technician);
			goto fail;
		}
		if (!(s->technician = strdup(technician))) {
			rc = stn_fail(d, STN_E_NOMEM, config_path, "session");
			goto fail;
		}
	}
	if ((rc = cu_trust_load(s->cfg->anchors, s->cfg->crl_dir, &s->trust,
				d))) {
		if (stn_err_exit(rc) != STN_EXIT_IO)
			rc = stn_recode(d, STN_E_CONFIG);
		goto fail;
	}
	if ((rc = make_private_dir(s->cfg->data, d)))
		goto fail;
	snprintf(s->staging, sizeof(s->staging), "%s/staging", s->cfg->data);
	snprintf(s->crl_dir, sizeof(s->crl_dir), "%s/crl", s->cfg->data);
	/* CRLs learned from earlier media count before anything is judged
	 * (docs/trust.md, "Order of CRL decisions"). */
	if (access(s->crl_dir, F_OK) == 0 &&
	    (rc = cu_trust_add_crl_dir(s->trust, s->crl_dir, d)))
		goto fail;
	if ((rc = load_class_trust(s, d)))
		goto fail;
	if (s->cfg->cert) {
		struct cu_signer me;
		struct stn_diag why;
		stn_diag_init(&why);
		/* A stale CRL of the station's own issuer does not stop the
		 * start: an offline station learns the fresh one from the
		 * media, which install offers before any signature is
		 * judged.  Revocation and expiry still stop it here; the
		 * stale-crl policy judges the station's key where it signs
		 * (report export). */
		rc = cu_cert_check(s->trust, s->cfg->cert, CU_ROLE_STATION,
				   s->start, &me, &why);
		if (rc) {
			rc = stn_fail(d, STN_E_CONFIG, s->cfg->cert,
				      "station certificate unusable: %s",
				      why.text);
			goto fail;
		}
	}
	cu_trust_set_stale_crl_refuse(s->trust, s->cfg->stale_crl_refuse);
	/* Loaded now, not at the first install: the configuration already
	 * checked that key and certificate belong together (formats §8). */
	if (s->cfg->key &&
	    (rc = cu_key_load(s->cfg->key, s->cfg->cert, &s->key, d))) {
		if (rc != STN_E_NOMEM)
			rc = stn_recode(d, STN_E_CONFIG);
		goto fail;
	}
	/* The delivery key, likewise: a key that does not match its
	 * certificate, or a certificate without the delivery role or that
	 * does not chain at the session start, stops the start (formats
	 * §8), not the first encrypted bundle. */
	if (s->cfg->delivery_key &&
	    (rc = cu_delivery_load(s->cfg->delivery_key, s->cfg->delivery_cert,
				   s->trust, s->start, &s->delivery, d))) {
		if (rc != STN_E_NOMEM)
			rc = stn_recode(d, STN_E_CONFIG);
		goto fail;
	}
	/* Staged copies a crashed station left behind are removed (live ones
	 * hold a lock); reported below once the journal is open. */
	unsigned swept = 0;
	if (!(flags & STN_SESSION_QUIET) && access(s->staging, F_OK) == 0) {
		struct stn_diag sd;
		stn_diag_init(&sd);
		(void)md_stage_sweep(s->staging, &swept, &sd);
	}
	snprintf(path, sizeof(path), "%s/journal.db", s->cfg->data);
	if ((rc = stn_journal_open(path, &s->journal, d)))
		goto fail;
	/* The clock is checked before anything else happens: every expiry
	 * decision of this session rests on it (formats §6).  Read-only use
	 * (reading the journal) decides nothing and must stay possible while
	 * the clock is wrong, so it neither checks nor raises the floor. */
	struct stn_diag fn;
	stn_diag_init(&fn);
	rc = flags & STN_SESSION_QUIET
		     ? 0
		     : stn_clock_check(s->cfg->data, s->journal, s->start,
				       &s->floor, &fn, d);
	if (fn.code) {
		/* A damaged floor file was rebuilt: journaled before anything
		 * the rebuilt floor decides, refusals included. */
		char ft[CU_TIME_LEN + 1];
		struct stn_diag jd;
		cu_time_format(s->floor, ft);
		const struct stn_field f[] = {
			{"file", fn.where}, {"reason", fn.text},
			{"floor", rc ? "-" : ft}};
		stn_diag_init(&jd);
		snprintf(s->notice, sizeof(s->notice), "%s", fn.text);
		if (stn_session_log(s, STN_EV_TIME_FLOOR_RECOVERED, f, STN_EV_N(f), &jd)) {
			rc = stn_refail(d, STN_E_JOURNAL, jd.where, "%s",
					jd.text);
			goto fail;
		}
	}
	if (rc == STN_E_CLOCK) {
		const struct stn_field f[] = {
			{"station", s->cfg->id}, {"command", command},
			{"rule", "clock"}, {"reason", d->text}};
		struct stn_diag jd;
		stn_diag_init(&jd);
		if (stn_session_log(s, STN_EV_SESSION_REFUSED, f,
				    STN_EV_N(f), &jd))
			rc = stn_refail(d, STN_E_JOURNAL, jd.where, "%s",
					jd.text);
		goto fail;
	}
	if (rc)
		goto fail;
	if (!(flags & STN_SESSION_QUIET)) {
		const struct stn_field f[] = {
			{"station", s->cfg->id},
			{"site", s->cfg->site},
			{"command", command},
			{"technician", technician ? technician : "-"},
		};
		if ((rc = stn_session_log(s, STN_EV_SESSION_START, f,
					   STN_EV_N(f), d)))
			goto fail;
		/* Held before the sweep, so that two sessions starting at
		 * once never take each other's installs for abandoned. */
		if ((rc = stn_live_hold(s->cfg->data, s->id, &s->live_fd, d)) ||
		    (rc = stn_abandoned_sweep(s, s->cfg->data, &s->abandoned,
					      s->abandoned_text,
					      sizeof(s->abandoned_text), d)))
			goto fail;
		if (swept) {
			char n[16];
			snprintf(n, sizeof(n), "%u", swept);
			const struct stn_field sf[] = {{"removed", n}};
			if ((rc = stn_session_log(s, STN_EV_STAGING_SWEPT,
						   sf, STN_EV_N(sf), d)))
				goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	s->flags |= STN_SESSION_QUIET; /* nothing started, nothing to end */
	stn_session_close(s, rc);
	return rc;
}

void stn_session_close(struct stn_session *s, int result)
{
	stn_session_close_as(s, result, NULL);
}

void stn_session_close_as(struct stn_session *s, int result, const char *how)
{
	if (!s)
		return;
	if (s->journal && !(s->flags & STN_SESSION_QUIET)) {
		struct stn_diag d;
		char code[16];
		const struct stn_field f[] = {
			{"result", how		? how
				   : result ? stn_err_rule(result)
					    : "ok"},
			{"code", code},
		};
		snprintf(code, sizeof(code), "%d", result);
		stn_diag_init(&d);
		/* Nothing to do if this fails: the journal reports the
		 * session as unterminated, which is the truth. */
		(void)stn_session_log(s, STN_EV_SESSION_END, f, STN_EV_N(f),
				      &d);
	}
	if (s->cfg)
		stn_live_release(s->cfg->data, s->id, s->live_fd);
	stn_journal_close(s->journal);
	for (size_t i = 0; s->class_trust && i < s->cfg->nclasses; i++)
		cu_trust_free(s->class_trust[i]);
	free(s->class_trust);
	cu_key_free(s->key); /* wipes */
	cu_delivery_free(s->delivery); /* wipes */
	cu_trust_free(s->trust);
	stn_config_free(s->cfg);
	free(s->technician);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

unsigned stn_session_abandoned(const struct stn_session *s,
				const char **text)
{
	*text = s->abandoned_text;
	return s->abandoned;
}

const struct stn_config *stn_session_config(const struct stn_session *s)
{
	return s->cfg;
}

const struct cu_trust *stn_session_trust(const struct stn_session *s)
{
	return s->trust;
}

struct stn_journal *stn_session_journal(struct stn_session *s)
{
	return s->journal;
}

int64_t stn_session_start(const struct stn_session *s)
{
	return s->start;
}

const char *stn_session_id(const struct stn_session *s)
{
	return s->id;
}

const char *stn_session_technician(const struct stn_session *s)
{
	return s->technician;
}

const char *stn_session_staging(const struct stn_session *s)
{
	return s->staging;
}

int64_t stn_session_floor(const struct stn_session *s)
{
	return s->floor;
}

const char *stn_session_notice(const struct stn_session *s)
{
	return s->notice[0] ? s->notice : NULL;
}

int stn_session_accept_time(struct stn_session *s, int64_t t,
			    struct stn_diag *d)
{
	pthread_mutex_lock(&s->lock);
	int rc = stn_clock_raise(s->cfg->data, t, d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int stn_session_installed_sequence(struct stn_session *s, const char *serial,
				   uint64_t *seq, int *found,
				   struct stn_diag *d)
{
	pthread_mutex_lock(&s->lock);
	int rc = stn_ev_installed_sequence(s->journal, serial, seq, found, d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int stn_session_journal_each(struct stn_session *s, int64_t since,
			     int (*cb)(void *ctx, const struct stn_event *e),
			     void *ctx, struct stn_diag *d)
{
	pthread_mutex_lock(&s->lock);
	int rc = stn_journal_each(s->journal, since, cb, ctx, d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int stn_session_token_used(struct stn_session *s, const char *use,
			   int *found, struct stn_diag *d)
{
	pthread_mutex_lock(&s->lock);
	int rc = stn_ev_token_used(s->journal, use, found, d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int stn_session_journal_query(struct stn_session *s,
			      const struct stn_journal_filter *f,
			      int (*cb)(void *ctx, const struct stn_event *e),
			      void *ctx, struct stn_diag *d)
{
	pthread_mutex_lock(&s->lock);
	int rc = stn_journal_query(s->journal, f, cb, ctx, d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Keeps a copy of a CRL that replaced a stored one, named by its digest,
 * so later sessions know the revocation too. */
static int keep_crl(const char *dir, const char *crl_path, struct stn_diag *d)
{
	uint8_t *buf = NULL, digest[CU_SHA256_LEN];
	char hex[CU_SHA256_HEX_LEN + 1], path[4400];
	size_t len = 0;
	int rc;

	if ((rc = cu_record_read(crl_path, &buf, &len, d)))
		return rc;
	if ((rc = cu_sha256(buf, len, digest))) {
		free(buf);
		return stn_fail(d, rc, crl_path, "hashing: %s",
				stn_strerror(rc));
	}
	cu_hex(digest, sizeof(digest), hex);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		free(buf);
		return stn_fail(d, STN_E_IO, dir, "cannot create: %s",
				strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/%s.crl", dir, hex);
	/* A temp name of this writer's own (stn_replace_durable): two
	 * sessions may keep the same CRL at once, and a shared name lets one
	 * rename the other's file away (issue 11).  The same bytes win
	 * either way. */
	rc = stn_replace_durable(path, 0600, buf, len, d);
	free(buf);
	return rc;
}

int stn_session_offer_crl(struct stn_session *s, const char *crl_path,
			  const char *issuer_pem, int *replaced,
			  struct stn_diag *d)
{
	size_t nclasses = s->class_trust ? s->cfg->nclasses : 0;
	struct stn_diag first;
	int rep = 0, accepted = 0, rc, first_rc;

	/* A device CA's CRL travels like any other (formats §9): every
	 * store that can verify it takes it; one that cannot (STN_E_CHAIN)
	 * is not its issuer's.  Any other failure is the file's and stops
	 * the offer. */
	stn_diag_init(&first);
	pthread_mutex_lock(&s->lock);
	first_rc = rc = cu_trust_add_crl(s->trust, crl_path, issuer_pem,
					 s->start, &rep, &first);
	accepted = rc == 0;
	if (rc && rc != STN_E_CHAIN)
		goto out;
	for (size_t i = 0; i < nclasses; i++) {
		struct stn_diag why;
		int r = 0;
		if (!s->class_trust[i])
			continue;
		stn_diag_init(&why);
		rc = cu_trust_add_crl(s->class_trust[i], crl_path, issuer_pem,
				      s->start, &r, &why);
		if (rc == STN_E_CHAIN)
			continue;
		if (rc) {
			first = why;
			first_rc = rc;
			goto out;
		}
		accepted = 1;
		rep |= r;
	}
	if (accepted && rep) {
		/* Kept once, whichever stores took it: every store loads
		 * DATA/crl at the next start. */
		stn_diag_init(&first);
		first_rc = keep_crl(s->crl_dir, crl_path, &first);
	} else if (accepted) {
		first_rc = 0;
	}
out:
	pthread_mutex_unlock(&s->lock);
	rc = first_rc;
	if (rc)
		return stn_fail(d, rc, first.where, "%s", first.text);
	if (replaced)
		*replaced = rep;
	return 0;
}

/* The trust store of class c's device anchors, or NULL. */
static const struct cu_trust *class_store(const struct stn_session *s,
					  const struct stn_class *c)
{
	const struct stn_config *cfg = s->cfg;

	if (!s->class_trust || c < cfg->classes ||
	    c >= cfg->classes + cfg->nclasses)
		return NULL;
	return s->class_trust[c - cfg->classes];
}

int stn_session_attest_verify(struct stn_session *s, const struct stn_class *c,
			      const struct cu_devmsg *msg,
			      const uint8_t *nonce, const char *where,
			      struct cu_attestation *out, struct stn_diag *d)
{
	const struct cu_trust *t = class_store(s, c);
	int rc;

	if (!t)
		return stn_fail(d, STN_E_ATTESTATION, where,
				"class %.64s names no device anchors: no "
				"device certificate can be checked",
				c ? c->label : "(none)");
	/* Under the lock: a CRL offered by another install replaces this
	 * store's entries while we read them. */
	pthread_mutex_lock(&s->lock);
	rc = cu_attest_verify(t, msg, nonce, s->start, where, out, d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int stn_session_authz_make(struct stn_session *s, const struct cu_authz *a,
			   char *out, size_t cap, size_t *out_len,
			   uint8_t *sig, size_t sig_cap, size_t *sig_len,
			   const uint8_t **chain, size_t *chain_len,
			   size_t max, size_t *nchain, struct stn_diag *d)
{
	int rc;

	if (!s->key)
		return stn_fail(d, STN_E_CONFIG, s->cfg->path,
				"the station has no key ([station] key and "
				"cert): it cannot authorize an install");
	/* One signer at a time: the key's random generator is not shared
	 * safely between threads. */
	pthread_mutex_lock(&s->lock);
	rc = cu_authz_make(a, s->key, out, cap, out_len, sig, sig_cap,
			   sig_len, d);
	if (rc == 0)
		rc = cu_key_chain_der(s->key, chain, chain_len, max, nchain,
				      d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int stn_session_content_key(struct stn_session *s, const char *dir,
			    const char *shown, const struct cu_image *img,
			    uint8_t key[CU_CONTENT_KEY_LEN],
			    struct stn_diag *d)
{
	int rc;

	/* Under the lock: the key's unwrap (ECDH, OAEP) is not shared
	 * safely between threads installing at once. */
	pthread_mutex_lock(&s->lock);
	rc = cu_delivery_key_for(s->delivery, dir, shown, img, key, d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

const uint8_t *stn_session_delivery_recipient(const struct stn_session *s)
{
	return s->delivery ? cu_delivery_recipient(s->delivery) : NULL;
}

int stn_session_random(uint8_t *out, size_t len, struct stn_diag *d)
{
	size_t got = 0;

	/* getrandom(2) may return fewer bytes than asked (over 256 bytes)
	 * or be interrupted by a signal before it has any. */
	while (got < len) {
		ssize_t n = getrandom(out + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return stn_fail(d, STN_E_IO, "getrandom", "%s",
					strerror(errno));
		}
		got += (size_t)n;
	}
	return 0;
}

int stn_session_log(struct stn_session *s, enum stn_ev t,
		    const struct stn_field *fields, size_t nfields,
		    struct stn_diag *d)
{
	struct stn_diag why;
	int rc;

	stn_diag_init(&why);
	pthread_mutex_lock(&s->lock);
	rc = stn_ev_append(s->journal, (int64_t)time(NULL), s->id, t, fields,
			   nfields, NULL, &why);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		return stn_refail(d, STN_E_JOURNAL, why.where,
				  "cannot journal %s: %s", stn_ev_name(t),
				  why.text);
	return 0;
}

int stn_session_quiet(const struct stn_session *s)
{
	return (s->flags & STN_SESSION_QUIET) != 0;
}
