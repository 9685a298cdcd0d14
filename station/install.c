/* station/install.c: verify and push as journaled flows.  The order is the
 * safety argument: stage (media can no longer change the bytes), verify the
 * staged copy, identify the device, check it, and only then write, from the
 * staged copy, hashing what goes on the wire. */
#include "station/install.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "custody/devid.h"
#include "custody/record.h"
#include "station/base/base64.h"
#include "transport/devmsg.h"
#include "station/base/rfc3339.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "media/stage.h"
#include "station/config.h"
#include "station/base/error.h"
#include "station/events.h"
#include "station/session.h"
#include "station/base/monotime.h"

const char *stn_phase_name(enum stn_phase p)
{
	static const char *const names[] = {"stage", "verify", "identify",
					    "check", "write",  "boot",
					    "done"};
	return p <= STN_PHASE_DONE ? names[p] : "unknown";
}

void stn_outcome_init(struct stn_outcome *r)
{
	memset(r, 0, sizeof(*r));
}

struct stn_prepared {
	char dir[4096];
	struct md_stage *st;
	int keep; /* policy keeps the staged copy */
	struct cu_bundle *bundle; /* reads the stage's source */
	/* A refusal no device check can come before (checks 1 to 3, a
	 * bundle that could not be staged), with its code: every
	 * stn_install repeats it.  code 0: none. */
	struct stn_diag refused;
};

void stn_outcome_fini(struct stn_outcome *r)
{
	stn_prepared_free(r->owned);
	memset(r, 0, sizeof(*r));
}

const struct cu_bundle *stn_prepared_bundle(const struct stn_prepared *p)
{
	return p->bundle;
}

void stn_prepared_free(struct stn_prepared *p)
{
	if (!p)
		return;
	if (p->keep && p->st) {
		struct stn_diag d;
		stn_diag_init(&d);
		(void)md_stage_keep(p->st, &d); /* best effort: policy only */
	}
	cu_bundle_free(p->bundle);
	md_stage_free(p->st);
	free(p);
}

/* Process-wide: a signal stops every install at once (install.h). */
static int interrupt_signal;

void stn_install_interrupt(int signal)
{
	__atomic_store_n(&interrupt_signal, signal, __ATOMIC_RELAXED);
}

int stn_install_interrupted(void)
{
	return __atomic_load_n(&interrupt_signal, __ATOMIC_RELAXED);
}

static void ev_phase(const struct stn_events *ev, enum stn_phase p,
		     const char *detail)
{
	if (ev && ev->phase)
		ev->phase(ev->ctx, p, detail);
}

struct progress_ctx {
	const struct stn_events *ev;
	enum stn_phase phase;
};

static void stage_progress(void *ctx, const char *file, uint64_t done,
			   uint64_t total)
{
	struct progress_ctx *p = ctx;
	(void)file;
	if (p->ev && p->ev->progress)
		p->ev->progress(p->ev->ctx, p->phase, done, total);
}

static void write_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress_ctx *p = ctx;
	if (p->ev && p->ev->progress)
		p->ev->progress(p->ev->ctx, p->phase, done, total);
}

/* Journal a refusal or failure with its rule, place and reason.  Returns
 * the original code unless the journal itself failed; then the journal's
 * error, still carrying the reason it failed to record. */
static int log_refusal(struct stn_session *s, enum stn_ev type,
		       const struct cu_manifest *m, const char *dir,
		       const char *serial, int code, const struct stn_diag *why,
		       struct stn_diag *d)
{
	char codebuf[16];
	struct stn_field f[10];
	struct stn_diag jd;
	size_t n = 0;

	snprintf(codebuf, sizeof(codebuf), "%d", code);
	if (m) {
		f[n++] = (struct stn_field){"bundle", m->id_hex};
		f[n++] = (struct stn_field){"name", m->name};
		f[n++] = (struct stn_field){"version", m->version};
	}
	f[n++] = (struct stn_field){"dir", dir};
	if (serial)
		f[n++] = (struct stn_field){"serial", serial};
	f[n++] = (struct stn_field){"rule", stn_err_rule(code)};
	f[n++] = (struct stn_field){"where", why->where};
	f[n++] = (struct stn_field){"reason", why->text};
	f[n++] = (struct stn_field){"code", codebuf};
	*d = *why;
	stn_diag_init(&jd);
	if (stn_session_log(s, type, f, n, &jd) == 0)
		return code;
	return stn_refail(d, STN_E_JOURNAL, jd.where,
			  "%.400s; the %s it could not record: rule %s: "
			  "%.1000s: %.1000s", jd.text, stn_ev_name(type),
			  stn_err_rule(code),
			  why->where, why->text);
}

/* The event type for a refusal: device checks are device refusals, a
 * device we could not reach is a device error, the rest refuse the bundle. */
static enum stn_ev refusal_type(int code)
{
	switch (code) {
	case STN_E_TARGET:
	case STN_E_DOWNGRADE:
	case STN_E_REINSTALL:
	case STN_E_IDENTITY:
	case STN_E_ATTESTATION:
	case STN_E_NOATTEST:
	case STN_E_PROOF:
		return STN_EV_DEVICE_REFUSED;
	default:
		return stn_err_exit(code) == STN_EXIT_IO ? STN_EV_DEVICE_ERROR
							 : STN_EV_BUNDLE_REFUSED;
	}
}

/* Offers each staged crl/NAME.pem to the trust store, with the manifest's
 * signer chains as possible issuers, and journals each that replaced a
 * stored CRL.  An older CRL is ignored; one that verifies against no CA of
 * the store is a refusal (someone shipped a CRL we cannot trust). */
static int offer_crls(struct stn_session *s, const char *stage_dir,
		      const char *dir, struct stn_diag *d)
{
	char cdir[4200];
	struct dirent *e;
	DIR *dh;
	int rc = 0;

	snprintf(cdir, sizeof(cdir), "%s/" CU_LAYOUT_CRL, stage_dir);
	dh = opendir(cdir);
	if (!dh)
		return errno == ENOENT ? 0
				       : stn_fail(d, STN_E_IO, cdir,
						  "cannot list: %s",
						  strerror(errno));
	while (rc == 0 && (e = readdir(dh))) {
		char path[sizeof(cdir) + 258], shown[4400], pem[4400];
		struct stn_diag why;
		int replaced = 0;

		if (!cu_layout_crl_name(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", cdir, e->d_name);
		snprintf(shown, sizeof(shown), "%s/" CU_LAYOUT_CRL "/%s", dir,
			 e->d_name);
		/* The issuing intermediate usually travels in a signer's
		 * chain; try without it, then with each manifest chain. */
		stn_diag_init(&why);
		rc = stn_session_offer_crl(s, path, NULL, &replaced, &why);
		DIR *sh = rc ? opendir(stage_dir) : NULL;
		struct dirent *f;
		while (rc && sh && (f = readdir(sh))) {
			char primary[CU_LAYOUT_NAME_MAX];
			/* manifest.pem (unlabelled, formats §2) and
			 * manifest.LABEL.pem alike. */
			if (!cu_layout_chain_of(f->d_name,
						cu_layout_manifest_name,
						primary))
				continue;
			snprintf(pem, sizeof(pem), "%s/%s", stage_dir,
				 f->d_name);
			stn_diag_init(&why);
			rc = stn_session_offer_crl(s, path, pem, &replaced,
						   &why);
		}
		if (sh)
			closedir(sh);
		if (rc) {
			rc = stn_fail(d, rc, shown, "%s", why.text);
			break;
		}
		const struct stn_field f2[] = {
			{"dir", dir}, {"crl", shown},
			{"outcome", replaced ? "replaced the stored CRL"
					     : "ignored: not newer than the "
					       "stored CRL"}};
		rc = stn_session_log(s, STN_EV_CRL_OFFERED, f2, STN_EV_N(f2),
				     d);
	}
	closedir(dh);
	return rc;
}

/* The chain as one field: "A > B @TIME; B > C @TIME; ...". */
static void chain_text(const struct cu_chain *c, char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->n && used + 1 < cap; i++) {
		char t[CU_TIME_LEN + 1];
		cu_time_format(c->hops[i].time, t);
		used += (size_t)snprintf(buf + used, cap - used,
					 "%s%s > %s @%s%s%s", i ? "; " : "",
					 c->hops[i].from, c->hops[i].to, t,
					 c->hops[i].seal[0] ? " seal " : "",
					 c->hops[i].seal);
	}
}

/* A staging failure of the I/O class is the media's (or the staging
 * area's), not a device's. */
static int staging_failed(int rc, int *media_error)
{
	*media_error = stn_err_exit(rc) == STN_EXIT_IO;
	return rc;
}

/* The bundle is judged once, before any device is known, by the loosest
 * of [trust] and every class (the lowest threshold, the longest token and
 * custody lifetimes, the most hops, custody read when any asks for it);
 * each device's class then holds it to its own policy
 * (cu_device_check_policy; docs/decisions.md, "Device classes"). */
static void loosest_policy(const struct stn_config *cfg, struct cu_policy *p)
{
	p->release_threshold = cfg->release_threshold;
	p->require_custody = cfg->require_custody;
	p->max_custody_hops = cfg->max_custody_hops;
	p->max_custody_age = cfg->max_custody_age;
	p->max_token_ttl = cfg->max_token_ttl;
	for (size_t i = 0; i < cfg->nclasses; i++) {
		const struct stn_class *c = &cfg->classes[i];
		if (c->release_threshold < p->release_threshold)
			p->release_threshold = c->release_threshold;
		p->require_custody |= c->require_custody;
		if (c->max_custody_hops > p->max_custody_hops)
			p->max_custody_hops = c->max_custody_hops;
		if (c->max_custody_age > p->max_custody_age)
			p->max_custody_age = c->max_custody_age;
		if (c->max_token_ttl > p->max_token_ttl)
			p->max_token_ttl = c->max_token_ttl;
	}
}

/* Content keys for staging (formats §10): unwrapped from the staged
 * keys/ (copied in phase one), named under the media path. */
struct key_ctx {
	struct stn_session *s;
	struct md_stage *st;
	const char *shown;
};

static int stage_content_key(void *ctx, const struct cu_image *img,
			     uint8_t key[32], struct stn_diag *d)
{
	struct key_ctx *k = ctx;

	return stn_session_content_key(k->s, md_stage_dir(k->st), k->shown,
				       img, key, d);
}

/*
 * Stage and verify; journals bundle-verified when the bundle checks pass.
 * Returns 0, or the first bundle failure WITHOUT journaling it (the caller
 * decides, because with a device known the device checks come first in
 * the spec's order).  *fatal is set when the failure is one no device
 * check can precede (checks 1 to 3, or an unreadable bundle).
 */
static int stage_and_verify(struct stn_session *s, const char *dir,
			    const struct stn_events *ev, struct md_stage **st,
			    struct cu_bundle **bundle, int *fatal,
			    int *media_error, struct stn_diag *d)
{
	const struct stn_config *cfg = stn_session_config(s);
	struct progress_ctx pc = {ev, STN_PHASE_STAGE};
	struct md_progress mp = {stage_progress, &pc};
	struct cu_policy policy = {
		.technician = stn_session_technician(s),
		.site = cfg->site,
		.station = cfg->id,
	};
	const struct cu_manifest *m;
	int rc;

	loosest_policy(cfg, &policy);

	*fatal = 1;
	ev_phase(ev, STN_PHASE_STAGE, dir);
	*media_error = 0;
	if ((rc = md_stage_begin(dir, stn_session_staging(s), st, d)))
		return staging_failed(rc, media_error);
	ev_phase(ev, STN_PHASE_VERIFY, dir);
	/* Revocations travel with the bundle: apply them before any
	 * signature is judged (formats §6). */
	if ((rc = offer_crls(s, md_stage_dir(*st), dir, d)))
		return rc;
	/* Signatures first: an unsigned or badly signed bundle never gets
	 * its images copied (they could be gigabytes of anyone's bytes). */
	if ((rc = cu_bundle_open(md_stage_source(*st), stn_session_trust(s),
				 &policy, stn_session_start(s), bundle, d)))
		return rc;
	ev_phase(ev, STN_PHASE_STAGE, "images");
	/* An image encrypted for no key of this station is its check 3
	 * problem, reported by cu_bundle_check_images below. */
	struct key_ctx kc = {s, *st, dir};
	struct md_keys keys = {stage_content_key, &kc};
	if ((rc = md_stage_images_keys(*st, &mp, &keys, d)))
		return staging_failed(rc, media_error);
	ev_phase(ev, STN_PHASE_VERIFY, "images");
	if ((rc = cu_bundle_check_images(*bundle, d))) {
		/* Custody (check 6) is each device's to judge: checks 4
		 * and 5 come before it, and a token may waive it. */
		*fatal = rc != STN_E_CUSTODY;
		return rc;
	}
	*fatal = 0;
	m = cu_bundle_manifest(*bundle);
	{
		char seq[24], signers[600] = "";
		size_t n, used = 0;
		const struct cu_signer *sg = cu_bundle_signers(*bundle, &n);
		for (size_t i = 0; i < n && used < sizeof(signers) - 130; i++)
			used += (size_t)snprintf(signers + used,
						 sizeof(signers) - used,
						 "%s%s", i ? " " : "",
						 sg[i].cn);
		snprintf(seq, sizeof(seq), "%llu",
			 (unsigned long long)m->sequence);
		const struct stn_field f[] = {
			{"bundle", m->id_hex}, {"name", m->name},
			{"version", m->version}, {"sequence", seq},
			{"signers", signers}, {"dir", dir},
		};
		if ((rc = stn_session_log(s, STN_EV_BUNDLE_VERIFIED, f,
					  STN_EV_N(f), d)))
			return rc;
	}
	/* Signed times the station accepted raise its time floor. */
	if ((rc = stn_session_accept_time(s, m->created, d)))
		return rc;
	if (cu_bundle_check(*bundle, CU_CHECK_CUSTODY)->outcome ==
	    CU_PASSED) {
		const struct cu_chain *c = cu_bundle_chain(*bundle);
		char hops[24], text[3000];
		snprintf(hops, sizeof(hops), "%zu", c->n);
		chain_text(c, text, sizeof(text));
		const struct stn_field f[] = {{"bundle", m->id_hex},
					      {"hops", hops},
					      {"holders", text}};
		if ((rc = stn_session_log(s, STN_EV_CUSTODY_VERIFIED, f,
					  STN_EV_N(f), d)) ||
		    (rc = stn_session_accept_time(s, c->hops[c->n - 1].time,
						  d)))
			return rc;
	}
	return 0;
}

/* Installed sequence: the device's word, else the journal's highest. */
static int installed_sequence(struct stn_session *s,
			      const struct cu_identity *id,
			      struct cu_installed *out, struct stn_diag *d)
{
	uint64_t seq = 0;
	int found = 0, rc;

	if (id->has_sequence) {
		out->sequence = id->sequence;
		out->source = CU_SEQ_DEVICE;
		return 0;
	}
	rc = stn_session_installed_sequence(s, id->serial, &seq, &found, d);
	if (rc)
		return rc;
	out->sequence = seq;
	out->source = found ? CU_SEQ_JOURNAL : CU_SEQ_UNKNOWN;
	return 0;
}

/* Which of the bundle's tokens this journal shows already used on this
 * device: each (token id, serial) waives once, on any bundle (§5). */
static int token_replays(struct stn_session *s, const struct stn_outcome *rep,
			 unsigned char *replayed, struct stn_diag *d)
{
	size_t n;
	const struct cu_token *t = cu_bundle_tokens(rep->bundle, &n);

	for (size_t i = 0; i < n; i++) {
		char use[120];
		int found = 0, rc;
		if (t[i].problem.code || !cu_token_names(&t[i],
							 rep->identity.serial))
			continue;
		snprintf(use, sizeof(use), "%s/%s", t[i].id,
			 rep->identity.serial);
		rc = stn_session_token_used(s, use, &found, d);
		if (rc)
			return rc;
		replayed[i] = (unsigned char)found;
	}
	return 0;
}

/* Journal each token that waived a check here: this is its one use on
 * this device, recorded before anything is written to the device. */
static int log_token_uses(struct stn_session *s, const struct stn_outcome *rep,
			  struct stn_diag *d)
{
	size_t n;
	const struct cu_token *t = cu_bundle_tokens(rep->bundle, &n);
	const struct cu_manifest *m = cu_bundle_manifest(rep->bundle);

	for (size_t k = 0; k < rep->device.napplied; k++) {
		const struct cu_token *tok = &t[rep->device.applied[k]];
		char use[120], waives[64];
		int rc;
		snprintf(use, sizeof(use), "%s/%s", tok->id,
			 rep->identity.serial);
		const struct stn_field f[] = {
			{"token", tok->id},
			{"use", use},
			{"serial", rep->identity.serial},
			{"bundle", m->id_hex},
			{"file", tok->file},
			{"signer", tok->signer.cn},
			{"waives", cu_waiver_names(tok->waive, waives,
						   sizeof(waives))},
			{"reason", tok->reason},
		};
		if ((rc = stn_session_log(s, STN_EV_TOKEN_APPLIED, f,
					  STN_EV_N(f), d)) ||
		    (rc = stn_session_accept_time(s, tok->issued, d)))
			return rc;
	}
	return 0;
}

const char *stn_attest_state_name(enum cu_attest_state st)
{
	switch (st) {
	case CU_ATTEST_PROVEN: return "proven";
	case CU_ATTEST_ABSENT: return "absent";
	case CU_ATTEST_FAILED: return "failed";
	default: return "not-asked";
	}
}

void stn_identity_text(const struct stn_identity_proof *p, char *buf,
		       size_t cap)
{
	const char *cls = p->cls ? p->cls->label : "default";
	const char *pol = p->cls ? stn_attest_policy_name(p->cls->attestation)
				 : "none";

	switch (p->state) {
	case CU_ATTEST_PROVEN:
		snprintf(buf, cap, "proven: %s, certificate %s by %s",
			 p->att.id.serial, p->att.cert_subject,
			 p->att.cert_issuer);
		break;
	case CU_ATTEST_FAILED:
		snprintf(buf, cap, "not proven: %s", p->why);
		break;
	case CU_ATTEST_ABSENT:
		snprintf(buf, cap, "unproven: %s; class %s has attestation = "
			 "%s", p->why, cls, pol);
		break;
	default:
		snprintf(buf, cap, "unproven: not asked; class %s has "
			 "attestation = none", cls);
		break;
	}
}

/* The device-side policy of the device's class, for the device checks. */
static void device_policy(const struct stn_class *c,
			  const struct stn_identity_proof *ip,
			  struct cu_device_policy *dp)
{
	memset(dp, 0, sizeof(*dp));
	dp->class_name = c->label;
	dp->release_threshold = c->release_threshold;
	dp->require_custody = c->require_custody;
	dp->max_token_ttl = c->max_token_ttl;
	dp->max_custody_hops = c->max_custody_hops;
	dp->max_custody_age = c->max_custody_age;
	dp->waivable = c->waivable;
	dp->attestation = c->attestation == STN_ATTEST_REQUIRED
				  ? CU_ATTEST_POLICY_REQUIRED
			  : c->attestation == STN_ATTEST_OPTIONAL
				  ? CU_ATTEST_POLICY_OPTIONAL
				  : CU_ATTEST_POLICY_NONE;
	dp->attest = ip ? ip->state : CU_ATTEST_NOT_ASKED;
	dp->attest_why = ip && ip->why[0] ? ip->why : NULL;
}

/* base64 of bytes, malloc'd. */
static char *b64_dup(const uint8_t *b, size_t n)
{
	char *out = malloc(STN_B64_LEN(n) + 1);
	if (out)
		stn_b64_encode(b, n, out);
	return out;
}

/* The DER certificates of a device message as PEM for the journal
 * (*out stays NULL when there are none).  Only wraps the bytes, so a
 * counterfeit's garbage is journaled too; errors are resources. */
static int msg_chain_pem(const struct tp_signed_msg *m, char **out,
			 struct stn_diag *d)
{
	const uint8_t *certs[TP_MSG_CERTS_MAX];

	*out = NULL;
	for (size_t i = 0; i < m->ncerts; i++)
		certs[i] = m->cert[i];
	return m->ncerts ? cu_devid_chain_pem(certs, m->cert_len, m->ncerts,
					      out, d)
			 : 0;
}

static void devmsg_of(const struct tp_signed_msg *m, const uint8_t **certs,
		      struct cu_devmsg *out)
{
	for (size_t i = 0; i < m->ncerts; i++)
		certs[i] = m->cert[i];
	out->record = m->record;
	out->record_len = m->record_len;
	out->sig = m->has_sig ? m->sig : NULL;
	out->sig_len = m->has_sig ? m->sig_len : 0;
	out->cert = certs;
	out->cert_len = m->cert_len;
	out->ncert = m->ncerts;
}

/* Journal the identity step whole: what was asked, what came back. */
static int log_attestation(struct stn_session *s, const char *spec,
			   const struct cu_identity *id,
			   const struct stn_identity_proof *ip,
			   const uint8_t *nonce, const struct tp_signed_msg *m,
			   struct stn_diag *d)
{
	char nonce_hex[2 * CU_NONCE_LEN + 1], *sig = NULL, *chain = NULL;
	struct stn_field f[18];
	size_t n = 0;
	int rc;

	f[n++] = (struct stn_field){"device", spec};
	f[n++] = (struct stn_field){"serial", id->serial};
	f[n++] = (struct stn_field){"model", id->model};
	if (id->hardware[0])
		f[n++] = (struct stn_field){"hardware", id->hardware};
	f[n++] = (struct stn_field){"class", ip->cls->label};
	f[n++] = (struct stn_field){"policy",
				    stn_attest_policy_name(ip->cls->attestation)};
	f[n++] = (struct stn_field){"result", stn_attest_state_name(ip->state)};
	if (ip->why[0])
		f[n++] = (struct stn_field){"reason", ip->why};
	if (ip->state == CU_ATTEST_PROVEN) {
		f[n++] = (struct stn_field){"cert-subject",
					    ip->att.cert_subject};
		f[n++] = (struct stn_field){"cert-issuer", ip->att.cert_issuer};
		f[n++] = (struct stn_field){"cert-serial", ip->att.cert_serial};
	}
	if (nonce) {
		cu_hex(nonce, CU_NONCE_LEN, nonce_hex);
		f[n++] = (struct stn_field){"nonce", nonce_hex};
	}
	if (ip->state == CU_ATTEST_PROVEN)
		f[n++] = (struct stn_field){"challenge",
					    ip->att.challenge_hex};
	if (m && m->nlines) {
		f[n++] = (struct stn_field){"record", m->record};
		if (m->has_sig) {
			if (!(sig = b64_dup(m->sig, m->sig_len)))
				return stn_fail(d, STN_E_NOMEM, spec,
						"journaling attestation");
			f[n++] = (struct stn_field){"sig", sig};
		}
		if ((rc = msg_chain_pem(m, &chain, d))) {
			free(sig);
			return rc;
		}
		if (chain)
			f[n++] = (struct stn_field){"chain", chain};
	}
	rc = stn_session_log(s, STN_EV_DEVICE_ATTESTED, f, n, d);
	free(sig);
	free(chain);
	return rc;
}

/*
 * The identity step (formats §9), right after identify: ask the device to
 * attest when its class wants it, judge the answer against the class's
 * device anchors, and make the attested record the identity every later
 * check uses.  Fills *ip; returns 0 whatever the device proved (check 7
 * judges ip->state), or a device or journal error.  journal: log
 * device-attested.
 */
static int prove_identity(struct stn_session *s, struct stn_device *dev,
			  const char *spec, int force, struct cu_identity *id,
			  struct stn_identity_proof *ip, int journal,
			  struct stn_diag *d)
{
	const struct stn_config *cfg = stn_session_config(s);
	struct tp_signed_msg *m = NULL;
	uint8_t nonce[CU_NONCE_LEN];
	struct stn_diag why;
	int rc, asked = 0;

	memset(ip, 0, sizeof(*ip));
	ip->cls = stn_config_class(cfg, id->model);
	ip->state = CU_ATTEST_NOT_ASKED;
	if (ip->cls->attestation == STN_ATTEST_NONE && !force)
		goto log;
	if (!stn_device_can_attest(dev)) {
		ip->state = CU_ATTEST_ABSENT;
		snprintf(ip->why, sizeof(ip->why), "the %s transport has no "
			 "command to prove a device's identity",
			 stn_device_transport(dev));
		goto log;
	}
	if (!(m = malloc(sizeof(*m))))
		return stn_fail(d, STN_E_NOMEM, spec, "attestation");
	if ((rc = stn_session_random(nonce, sizeof(nonce), d)))
		goto out;
	asked = 1;
	stn_diag_init(&why);
	rc = stn_device_attest(dev, nonce, m, &why);
	if (rc == STN_E_NOATTEST) {
		ip->state = CU_ATTEST_ABSENT;
		/* One cause first, whatever the transport's words. */
		if (strncmp(why.text, "the device cannot attest", 24) == 0)
			snprintf(ip->why, sizeof(ip->why), "%.590s",
				 why.text);
		else
			snprintf(ip->why, sizeof(ip->why), "the device cannot "
				 "attest: %.560s", why.text);
	} else if (rc == STN_E_PROTOCOL) {
		/* It tried and failed: not a device that never tried. */
		ip->state = CU_ATTEST_FAILED;
		snprintf(ip->why, sizeof(ip->why), "its attestation is not a "
			 "signed record: %.500s", why.text);
	} else if (rc) {
		*d = why;
		goto out;
	} else {
		const uint8_t *certs[TP_MSG_CERTS_MAX];
		struct cu_devmsg dm;
		devmsg_of(m, certs, &dm);
		stn_diag_init(&why);
		rc = stn_session_attest_verify(s, ip->cls, &dm, nonce, spec,
					       &ip->att, &why);
		if (rc == STN_E_ATTESTATION) {
			ip->state = CU_ATTEST_FAILED;
			snprintf(ip->why, sizeof(ip->why), "%.590s", why.text);
		} else if (rc) {
			*d = why;
			goto out;
		} else if (strcmp(ip->att.id.serial, id->serial) != 0 ||
			   strcmp(ip->att.id.model, id->model) != 0) {
			/* Who it says it is must be who it proves to be. */
			ip->state = CU_ATTEST_FAILED;
			snprintf(ip->why, sizeof(ip->why),
				 "the device says it is %.64s %.64s but "
				 "attests %.64s %.64s", id->model, id->serial,
				 ip->att.id.model, ip->att.id.serial);
		} else {
			ip->state = CU_ATTEST_PROVEN;
			*id = ip->att.id;
		}
	}
log:
	rc = journal ? log_attestation(s, spec, id, ip, asked ? nonce : NULL,
				       m, d)
		     : 0;
out:
	free(m);
	return rc;
}

/* Checks 4 and 5 and the spec-ordered verdict; journals a refusal when
 * `journal` is set (not when stn_prepare already journaled it). */
static int check_device_quiet(struct stn_session *s, const char *dir,
			      const char *source, int allow_reinstall,
			      const struct stn_events *ev,
			      struct stn_outcome *rep, struct stn_diag *d,
			      int journal)
{
	unsigned char replayed[CU_MAX_TOKENS] = {0};
	struct stn_diag why;
	int rc;

	ev_phase(ev, STN_PHASE_CHECK, source);
	stn_diag_init(&why);
	rc = installed_sequence(s, &rep->identity, &rep->installed, &why);
	if (rc == 0)
		rc = token_replays(s, rep, replayed, &why);
	if (rc == 0) {
		const struct stn_class *c =
			rep->ident.cls ? rep->ident.cls
				       : stn_config_class(
						 stn_session_config(s),
						 rep->identity.model);
		struct cu_device_policy dp;
		/* An identity record given to verify was never attested:
		 * check 7 is not run there (docs/trust.md). */
		device_policy(c, rep->ident.cls ? &rep->ident : NULL, &dp);
		if (!rep->ident.cls)
			dp.attestation = CU_ATTEST_POLICY_NONE;
		rc = cu_device_check_policy(rep->bundle, &rep->identity,
					    source, &rep->installed,
					    allow_reinstall, replayed, &dp,
					    &rep->device, &why);
	}
	/* Check 1 judged again for this device's class is this device's
	 * refusal; the bundle's own check 1 is refused in stn_prepare. */
	if (rc && journal)
		return log_refusal(s, rc == STN_E_THRESHOLD
					      ? STN_EV_DEVICE_REFUSED
					      : refusal_type(rc),
				   cu_bundle_manifest(rep->bundle), dir,
				   rep->identity.serial, rc, &why, d);
	if (rc)
		*d = why;
	return rc;
}

static int check_device(struct stn_session *s, const char *dir,
			const char *source, int allow_reinstall,
			const struct stn_events *ev, struct stn_outcome *rep,
			struct stn_diag *d)
{
	return check_device_quiet(s, dir, source, allow_reinstall, ev, rep, d,
				  1);
}

/* Reads an identity record file; any problem is an identity refusal. */
static int load_identity(const char *path, struct cu_identity *id,
			 struct stn_diag *d)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = cu_record_read(path, &buf, &len, d);

	if (rc)
		return stn_recode(d, STN_E_IDENTITY);
	rc = cu_identity_parse(buf, len, path, id, d);
	free(buf);
	return rc;
}

int stn_prepare(struct stn_session *s, const char *dir,
		const struct stn_events *ev, struct stn_prepared **out,
		struct stn_diag *d)
{
	struct stn_prepared *p = calloc(1, sizeof(*p));
	struct stn_diag why;
	int rc, fatal = 1, media_error = 0;

	*out = NULL;
	if (!p)
		return stn_fail(d, STN_E_NOMEM, dir, "preparing bundle");
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	stn_diag_init(&why);
	p->keep = stn_session_config(s)->keep_staged;
	rc = stage_and_verify(s, dir, ev, &p->st, &p->bundle, &fatal,
			      &media_error, &why);
	if (rc && fatal) {
		/* Journaled once here, whatever the number of devices.  No
		 * device is involved yet: an I/O failure here is the media's
		 * (pulled mid-copy, read errors) or the staging area's. */
		p->refused = why;
		rc = log_refusal(s,
				 media_error ? STN_EV_MEDIA_ERROR
						: refusal_type(rc),
				 p->bundle ? cu_bundle_manifest(p->bundle)
					   : NULL,
				 dir, NULL, rc, &why, d);
	} else if (rc) {
		*d = why; /* each device's verdict judges it again */
	}
	if (!p->bundle) {
		stn_prepared_free(p);
		return rc;
	}
	*out = p;
	return rc;
}

int stn_verify(struct stn_session *s, const char *dir,
	       const char *identity_path, int allow_reinstall,
	       const struct stn_events *ev, struct stn_outcome *rep,
	       struct stn_diag *d)
{
	struct stn_prepared *p = NULL;
	struct stn_diag why;
	int rc;

	stn_diag_init(&why);
	if (identity_path &&
	    (rc = load_identity(identity_path, &rep->identity, &why))) {
		rc = log_refusal(s, STN_EV_DEVICE_REFUSED, NULL, dir, NULL, rc,
				 &why,
				 d);
		goto out;
	}
	rc = stn_prepare(s, dir, ev, &p, &why);
	rep->owned = p;
	rep->bundle = p ? p->bundle : NULL;
	if (identity_path && p &&
	    (rc == 0 || stn_err_exit(rc) == STN_EXIT_REFUSED)) {
		/* Show every outcome; the spec's order decides the reason.
		 * A fatal bundle failure was journaled by stn_prepare. */
		rep->have_device = 1;
		rc = check_device_quiet(s, dir, identity_path, allow_reinstall,
					ev, rep, d, !p->refused.code);
	} else if (rc) {
		if (p && !p->refused.code)
			rc = log_refusal(s, refusal_type(rc),
					 cu_bundle_manifest(p->bundle), dir,
					 NULL, rc, &why, d);
		else
			*d = why;
	}
out:
	ev_phase(ev, STN_PHASE_DONE, NULL);
	return rc;
}

/*
 * formats §9: the station's authorization for exactly this install (this
 * device's challenge, serial, the bundle, each image's slot, size and
 * digest), signed with the station key, journaled whole, then handed to
 * the device before the first image.  A device that refuses it gets
 * nothing written (STN_E_AUTHORIZATION).
 */
static int authorize(struct stn_session *s, struct stn_device *dev,
		     const char *spec, struct stn_outcome *rep,
		     struct stn_diag *d)
{
	const struct stn_config *cfg = stn_session_config(s);
	const struct cu_manifest *m = cu_bundle_manifest(rep->bundle);
	const char *tech = stn_session_technician(s);
	const uint8_t *chain[TP_MSG_CERTS_MAX];
	size_t chain_len[TP_MSG_CERTS_MAX], nchain = 0;
	struct tp_signed_msg *msg = malloc(sizeof(*msg));
	char issued[CU_TIME_LEN + 1], expires[CU_TIME_LEN + 1];
	char *sig64 = NULL, *pem = NULL;
	size_t rlen = 0;
	int64_t now = time(NULL);
	int rc;

	if (!msg)
		return stn_fail(d, STN_E_NOMEM, spec, "authorization");
	tp_msg_init(msg);
	/* Never issued before the session's start: its clock was checked
	 * against the trusted-time floor then. */
	if (now < stn_session_start(s))
		now = stn_session_start(s);
	struct cu_authz a = {
		.station = cfg->id,
		.site = cfg->site,
		.technician = tech ? tech : "-",
		.device = rep->identity.serial,
		.challenge_hex = rep->ident.att.challenge_hex,
		.bundle_hex = m->id_hex,
		.sequence = m->sequence,
		.issued = now,
		.images = m->images,
		.nimages = m->nimages,
	};
	rc = stn_session_authz_make(s, &a, msg->record, sizeof(msg->record),
				    &rlen, msg->sig, sizeof(msg->sig),
				    &msg->sig_len, chain, chain_len,
				    TP_MSG_CERTS_MAX, &nchain, d);
	if (rc)
		goto out;
	msg->record_len = rlen;
	msg->record[rlen] = '\0';
	for (size_t i = 0; i < rlen; i++)
		msg->nlines += msg->record[i] == '\n';
	msg->has_sig = 1;
	for (size_t i = 0; i < nchain; i++) {
		if (chain_len[i] > TP_MSG_CERT_MAX) {
			rc = stn_fail(d, STN_E_CONFIG, cfg->cert, "a station "
				      "certificate of %zu bytes does not fit a "
				      "device message (%d at most)",
				      chain_len[i], TP_MSG_CERT_MAX);
			goto out;
		}
		memcpy(msg->cert[i], chain[i], chain_len[i]);
		msg->cert_len[i] = chain_len[i];
	}
	msg->ncerts = nchain;
	if (!(sig64 = b64_dup(msg->sig, msg->sig_len))) {
		rc = stn_fail(d, STN_E_NOMEM, spec, "authorization");
		goto out;
	}
	if ((rc = cu_devid_chain_pem(chain, chain_len, nchain, &pem, d)))
		goto out;
	cu_time_format(now, issued);
	cu_time_format(now + CU_AUTHZ_TTL, expires);
	{
		const struct stn_field f[] = {
			{"device", spec},
			{"serial", rep->identity.serial},
			{"bundle", m->id_hex},
			{"challenge", rep->ident.att.challenge_hex},
			{"issued", issued},
			{"expires", expires},
			{"record", msg->record},
			{"sig", sig64},
			{"chain", pem},
		};
		if ((rc = stn_session_log(s, STN_EV_INSTALL_AUTHORIZED, f,
					  STN_EV_N(f), d)))
			goto out;
	}
	if ((rc = stn_device_authorize(dev, msg, d)) == 0)
		rep->authorized = 1;
out:
	free(sig64);
	free(pem);
	free(msg);
	return rc;
}

/*
 * Judge the receipt an attested device signed for image img and journal
 * it whole (image-receipt).  Returns 0 when it proves the manifest's
 * bytes are stored (proof device-signed), else STN_E_PROOF.
 */
static int judge_receipt(struct stn_session *s, const char *spec,
			 const struct stn_outcome *rep,
			 const struct cu_image *img,
			 const struct stn_write_result *wr, struct stn_diag *d)
{
	const struct cu_manifest *m = cu_bundle_manifest(rep->bundle);
	const uint8_t *certs[TP_MSG_CERTS_MAX];
	struct cu_receipt got = {.size = UINT64_MAX};
	struct cu_devmsg dm;
	struct stn_diag why, jd;
	char slot[12], size[24], hex[CU_SHA256_HEX_LEN + 1], *sig64 = NULL;
	struct stn_field f[12];
	size_t n = 0;
	int rc;

	stn_diag_init(&why);
	if (!wr->has_receipt) {
		rc = stn_fail(&why, STN_E_PROOF, spec, "image %s: the device "
			      "proved its identity but sent no signed receipt "
			      "for what it stored", img->label);
	} else {
		devmsg_of(wr->receipt, certs, &dm);
		rc = cu_receipt_verify(&rep->ident.att, &dm, img, spec, &got,
				       &why);
	}
	snprintf(slot, sizeof(slot), "%u", img->slot);
	f[n++] = (struct stn_field){"device", spec};
	f[n++] = (struct stn_field){"serial", rep->identity.serial};
	f[n++] = (struct stn_field){"bundle", m->id_hex};
	f[n++] = (struct stn_field){"image", img->label};
	f[n++] = (struct stn_field){"slot", slot};
	if (got.size != UINT64_MAX) {
		snprintf(size, sizeof(size), "%llu",
			 (unsigned long long)got.size);
		cu_hex(got.sha256, sizeof(got.sha256), hex);
	} else {
		snprintf(size, sizeof(size), "-");
		snprintf(hex, sizeof(hex), "-");
	}
	f[n++] = (struct stn_field){"size", size};
	f[n++] = (struct stn_field){"sha256", hex};
	f[n++] = (struct stn_field){"result",
				    rc == 0 ? "matches"
				    : got.size != UINT64_MAX ? "differs"
							     : "refused"};
	if (rc)
		f[n++] = (struct stn_field){"reason", why.text};
	if (wr->has_receipt && wr->receipt->nlines) {
		f[n++] = (struct stn_field){"record", wr->receipt->record};
		if (wr->receipt->has_sig) {
			if (!(sig64 = b64_dup(wr->receipt->sig,
					      wr->receipt->sig_len)))
				return stn_fail(d, STN_E_NOMEM, spec,
						"journaling the receipt");
			f[n++] = (struct stn_field){"sig", sig64};
		}
	}
	stn_diag_init(&jd);
	if (stn_session_log(s, STN_EV_IMAGE_RECEIPT, f, n, &jd)) {
		free(sig64);
		*d = jd;
		return jd.code;
	}
	free(sig64);
	if (rc)
		*d = why;
	return rc;
}

/*
 * The write failed (rc, in d) after the device sent a signed receipt: its
 * own digest or the read-back differs from the image.  The receipt is
 * journaled all the same, as evidence; one for other bytes than the
 * authorized image is the refusal (formats §9: rule proof), one for the
 * authorized bytes is a lie the failure already refuses.
 */
static int judge_failed(struct stn_session *s, struct stn_device *dev,
			const struct stn_outcome *rep,
			const struct cu_image *img,
			const struct stn_write_result *wr, int rc,
			struct stn_diag *d)
{
	struct stn_diag jd;
	int jrc;

	stn_diag_init(&jd);
	jrc = judge_receipt(s, stn_device_name(dev), rep, img, wr, &jd);
	if (jrc == 0)
		return rc;
	*d = jd;
	return jrc;
}

/* Writes one image; an encrypted one with its content key unwrapped
 * again just before and wiped just after, so the key lives in memory for
 * one transfer only. */
static int write_one(struct stn_session *s, struct stn_device *dev,
		     const struct cu_image *img, const char *stage_dir,
		     const char *dir, const char *path, const char *shown,
		     const struct stn_device_progress *dp,
		     struct stn_write_result *wr, struct stn_diag *d)
{
	uint8_t key[32];
	int rc;

	if (!img->encrypted)
		return stn_device_write(dev, img, path, shown, dp, wr, d);
	rc = stn_session_content_key(s, stage_dir, dir, img, key, d);
	if (rc == 0)
		rc = stn_device_write_key(dev, img, path, shown, key, dp, wr,
					  d);
	explicit_bzero(key, sizeof(key));
	return rc;
}

/* Writes each image in order, judging each receipt when `receipt` is
 * given (an attested device); one image-written event per image. */
static int write_each(struct stn_session *s, struct stn_device *dev,
		      const char *dir, const char *stage_dir,
		      const struct stn_events *ev, struct stn_outcome *rep,
		      char *digests, size_t dcap, struct tp_signed_msg *receipt,
		      struct stn_diag *d)
{
	const struct cu_manifest *m = cu_bundle_manifest(rep->bundle);
	struct progress_ctx pc = {ev, STN_PHASE_WRITE};
	struct stn_device_progress dp = {write_progress, &pc,
					 &interrupt_signal};
	struct stn_device_progress *dpp = &dp;
	size_t used = 0;
	int rc;

	rep->proof = STN_PROOF_DEVICE_SIGNED;
	for (size_t i = 0; i < m->nimages; i++) {
		const struct cu_image *img = &m->images[i];
		struct stn_write_result wr;
		char path[4400], shown[4400], hex[CU_SHA256_HEX_LEN + 1];
		char slot[8], bytes[24];

		int64_t i0;
		char ms[24];

		if (stn_install_interrupted())
			return stn_fail(d, STN_E_INTERRUPTED,
					stn_device_name(dev), "interrupted by "
					"signal %d before image %s",
					stn_install_interrupted(), img->label);
		snprintf(path, sizeof(path), "%s/%s", stage_dir, img->file);
		snprintf(shown, sizeof(shown), "%s/%s", dir, img->file);
		ev_phase(ev, STN_PHASE_WRITE, img->label);
		i0 = stn_mono_ms();
		memset(&wr, 0, sizeof(wr));
		wr.receipt = receipt;
		if (receipt)
			tp_msg_init(receipt);
		rc = write_one(s, dev, img, stage_dir, dir, path, shown, dpp,
			       &wr, d);
		if (rc && receipt && wr.has_receipt)
			return judge_failed(s, dev, rep, img, &wr, rc, d);
		if (rc)
			return rc;
		if (receipt) {
			if ((rc = judge_receipt(s, stn_device_name(dev), rep,
						img, &wr, d)))
				return rc;
			wr.proof = STN_PROOF_DEVICE_SIGNED;
		}
		snprintf(ms, sizeof(ms), "%lld",
			 (long long)(stn_mono_ms() - i0));
		rep->images_written++;
		if (wr.proof < rep->proof)
			rep->proof = wr.proof;
		cu_hex(img->sha256, sizeof(img->sha256), hex);
		snprintf(slot, sizeof(slot), "%u", img->slot);
		snprintf(bytes, sizeof(bytes), "%llu",
			 (unsigned long long)wr.bytes);
		/* One event per image: if a later image fails, the journal
		 * still says exactly what is on the device. */
		const struct stn_field f[] = {
			{"bundle", m->id_hex},
			{"serial", rep->identity.serial},
			{"image", img->label},
			{"file", img->file},
			{"slot", slot},
			{"sha256", hex},
			{"bytes", bytes},
			{"proof", stn_proof_name(wr.proof)},
			{"device-sha256",
			 wr.proof == STN_PROOF_NONE ? "-" : wr.device_sha256},
			{"duration-ms", ms},
		};
		if ((rc = stn_session_log(s, STN_EV_IMAGE_WRITTEN, f,
					  STN_EV_N(f), d)))
			return rc;
		used += (size_t)snprintf(digests + used, dcap - used,
					 "%s%s:%s", i ? " " : "", img->label,
					 hex);
		if (used >= dcap)
			used = dcap - 1;
	}
	return 0;
}

static int write_images(struct stn_session *s, struct stn_device *dev,
			const char *dir, const char *stage_dir,
			const struct stn_events *ev, struct stn_outcome *rep,
			char *digests, size_t dcap, struct stn_diag *d)
{
	struct tp_signed_msg *receipt = NULL;
	int rc;

	if (rep->ident.state == CU_ATTEST_PROVEN &&
	    !(receipt = malloc(sizeof(*receipt))))
		return stn_fail(d, STN_E_NOMEM, stn_device_name(dev),
				"receipt");
	rc = write_each(s, dev, dir, stage_dir, ev, rep, digests, dcap,
			receipt, d);
	free(receipt);
	return rc;
}

int stn_push(struct stn_session *s, const char *dir, const char *spec,
	     int allow_reinstall, const struct stn_events *ev,
	     struct stn_outcome *rep, struct stn_diag *d)
{
	struct stn_prepared *p = NULL;
	struct stn_diag why;
	int rc;

	stn_diag_init(&why);
	rc = stn_prepare(s, dir, ev, &p, &why);
	rep->owned = p;
	rep->bundle = p ? p->bundle : NULL;
	/* A failure left to the device (custody) goes with its code: the
	 * install judges it again, for this device, in the spec's order. */
	if (p && !p->refused.code)
		return stn_install(s, p, spec, allow_reinstall, ev, rep, d);
	*d = why;
	ev_phase(ev, STN_PHASE_DONE, NULL);
	return rc;
}

int stn_inspect(struct stn_session *s, const struct stn_prepared *p,
		const char *spec, struct stn_outcome *rep, struct stn_diag *d)
{
	struct stn_device *dev = NULL;
	int rc;

	rep->bundle = p->bundle;
	rc = stn_device_open(stn_session_config(s), spec, &dev, d);
	if (rc == 0)
		rc = stn_device_identify(dev, &rep->identity, d);
	if (rc == 0)
		rc = prove_identity(s, dev, spec, 0, &rep->identity,
				    &rep->ident, 0, d);
	stn_device_close(dev);
	if (rc)
		return rc;
	rep->have_device = 1;
	return check_device_quiet(s, p->dir, spec, 0, NULL, rep, d, 0);
}

int stn_identify_and_prove(struct stn_session *s, const char *spec, int force,
			   struct cu_identity *id, struct stn_identity_proof *p,
			   struct stn_diag *d)
{
	struct stn_device *dev = NULL;
	int rc;

	memset(p, 0, sizeof(*p));
	rc = stn_device_open(stn_session_config(s), spec, &dev, d);
	if (rc == 0)
		rc = stn_device_identify(dev, id, d);
	if (rc == 0)
		rc = prove_identity(s, dev, spec, force, id, p,
				    !stn_session_quiet(s), d);
	stn_device_close(dev);
	return rc;
}

int stn_install(struct stn_session *s, const struct stn_prepared *p,
		const char *spec, int allow_reinstall,
		const struct stn_events *ev, struct stn_outcome *rep,
		struct stn_diag *d)
{
	const char *dir = p->dir;
	struct stn_device *dev = NULL;
	const struct cu_manifest *m;
	struct stn_diag why;
	char before[24], seq[24], ms[24];
	char digests[CU_MAX_IMAGES * 100];
	int64_t t0, t1;
	int rc;

	rep->bundle = p->bundle;
	if (p->refused.code) {
		/* Checks 1 to 3 come before anything a device could change:
		 * the device is not even asked who it is.  (Journaled once
		 * by stn_prepare.) */
		rc = stn_fail(d, p->refused.code, p->refused.where, "%s",
			      p->refused.text);
		goto out;
	}
	m = cu_bundle_manifest(rep->bundle);
	if (stn_install_interrupted()) {
		/* Asked to stop before this device was touched: nothing
		 * started, so there is no outcome to journal either. */
		rc = stn_fail(d, STN_E_INTERRUPTED, spec, "interrupted by "
			      "signal %d before the install started",
			      stn_install_interrupted());
		goto out;
	}

	ev_phase(ev, STN_PHASE_IDENTIFY, spec);
	stn_diag_init(&why);
	rc = stn_device_open(stn_session_config(s), spec, &dev, &why);
	if (rc == 0)
		rc = stn_device_identify(dev, &rep->identity, &why);
	if (rc) {
		rc = log_refusal(s, refusal_type(rc), m, dir, NULL, rc, &why,
				 d);
		goto out;
	}
	rep->have_device = 1;
	stn_diag_init(&why);
	if ((rc = prove_identity(s, dev, spec, 0, &rep->identity, &rep->ident,
				 1, &why))) {
		rc = log_refusal(s, refusal_type(rc), m, dir,
				 rep->identity.serial, rc, &why, d);
		goto out;
	}
	rc = check_device(s, dir, spec, allow_reinstall, ev, rep, d);
	if (rc)
		goto out;
	if (rep->ident.cls->proof_required && !stn_device_can_prove(dev)) {
		/* formats §9: refused before a byte is sent. */
		stn_diag_init(&why);
		stn_fail(&why, STN_E_PROOF, spec, "class %s requires proof of "
			 "every install (proof = required) and the %s "
			 "transport cannot read back or send receipts: "
			 "nothing sent", rep->ident.cls->label,
			 stn_device_transport(dev));
		rc = log_refusal(s, STN_EV_DEVICE_REFUSED, m, dir,
				 rep->identity.serial, STN_E_PROOF, &why, d);
		goto out;
	}

	if ((rc = log_token_uses(s, rep, d)))
		goto out;
	snprintf(before, sizeof(before), "%llu",
		 (unsigned long long)rep->installed.sequence);
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)m->sequence);
	{
		const char *src = rep->installed.source == CU_SEQ_DEVICE
					  ? "device"
				  : rep->installed.source == CU_SEQ_JOURNAL
					  ? "journal"
					  : "unknown";
		const char *tech = stn_session_technician(s);
		char idtext[800];
		stn_identity_text(&rep->ident, idtext, sizeof(idtext));
		const struct stn_field f[] = {
			{"technician", tech ? tech : "-"},
			{"bundle", m->id_hex},
			{"name", m->name},
			{"version", m->version},
			{"device", spec},
			{"transport", stn_device_transport(dev)},
			{"serial", rep->identity.serial},
			{"model", rep->identity.model},
			{"hardware", rep->identity.hardware[0]
					     ? rep->identity.hardware
					     : "-"},
			{"sequence-before", before},
			{"sequence-source", src},
			{"sequence", seq},
			{"reinstall", rep->device.reinstall ? "yes" : "no"},
			{"class", rep->ident.cls->label},
			{"identity", idtext},
		};
		if ((rc = stn_session_log(s, STN_EV_INSTALL_STARTED, f,
					  STN_EV_N(f), d)))
			goto out;
	}

	t0 = stn_mono_ms();
	stn_diag_init(&why);
	rc = rep->ident.state == CU_ATTEST_PROVEN
		     ? authorize(s, dev, spec, rep, &why)
		     : 0;
	if (rc == 0)
		rc = write_images(s, dev, dir, md_stage_dir(p->st), ev, rep,
				  digests, sizeof(digests), &why);
	if (rc == 0 && rep->ident.cls->proof_required &&
	    rep->proof == STN_PROOF_NONE)
		rc = stn_fail(&why, STN_E_PROOF, spec, "class %s requires "
			      "proof of every install and the device gave "
			      "none (it cannot read back)",
			      rep->ident.cls->label);
	if (rc == 0) {
		ev_phase(ev, STN_PHASE_BOOT, spec);
		rc = stn_device_boot(dev, &why);
		rep->booted = rc == 0;
	}
	t1 = stn_mono_ms();
	if (rc) {
		/* How long it ran before it failed goes with the cause. */
		char text[sizeof(why.text)];
		/* A unit with a device key refuses images without an
		 * authorization, which a class that does not ask for
		 * attestation never hands over: say where to look. */
		int hint = rc == STN_E_DEVICE && !rep->authorized &&
			   rep->ident.state == CU_ATTEST_NOT_ASKED &&
			   stn_device_can_attest(dev);
		snprintf(text, sizeof(text), "%.700s (after %lld ms, %zu of "
			 "%zu image(s) written)%s%.40s%s", why.text,
			 (long long)(t1 - t0),
			 rep->images_written, m->nimages,
			 hint ? "; if the unit holds a device key it needs an "
				"install authorization, which class " : "",
			 hint ? rep->ident.cls->label : "",
			 hint ? " never asks for (attestation = none)" : "");
		memcpy(why.text, text, sizeof(text));
		rc = log_refusal(s, STN_EV_INSTALL_FAILED, m, dir,
				 rep->identity.serial, rc, &why, d);
		goto out;
	}
	snprintf(ms, sizeof(ms), "%lld",
		 (long long)(t1 - t0));
	{
		const char *tech = stn_session_technician(s);
		const struct stn_field f[] = {
			{"technician", tech ? tech : "-"},
			{"bundle", m->id_hex},
			{"name", m->name},
			{"version", m->version},
			{"serial", rep->identity.serial},
			{"model", rep->identity.model},
			{"hardware", rep->identity.hardware[0]
					     ? rep->identity.hardware
					     : "-"},
			{"sequence-before", before},
			{"sequence", seq},
			{"images", digests},
			{"proof", stn_proof_name(rep->proof)},
			{"duration-ms", ms},
		};
		rc = stn_session_log(s, STN_EV_INSTALL_FINISHED, f,
				     STN_EV_N(f), d);
	}
out:
	stn_device_close(dev);
	ev_phase(ev, STN_PHASE_DONE, NULL);
	return rc;
}
