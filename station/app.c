/* station/app.c: the text UI's core: events and workers.  One lock guards
 * all state; worker threads (prepare a bundle and inspect devices, install
 * on each selected device, export a report) update it through the same
 * lock, and the front end only ever sees copies, which station/app_view.c
 * builds. */
#include "station/app.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "custody/manifest.h"
#include "custody/pin.h"
#include "custody/record.h"
#include "station/base/rfc3339.h"
#include "custody/trust.h"
#include "custody/verify.h"
#include "media/discover.h"
#include "station/config.h"
#include "station/device.h"
#include "station/base/error.h"
#include "station/identity_words.h"
#include "station/install.h"
#include "station/journal.h"
#include "station/reason_words.h"
#include "station/media_watch.h"
#include "station/report.h"
#include "station/session.h"
#include "station/signin.h"

#include "station/app_internal.h"
#include "station/base/monotime.h"

/* Set the message line (caller holds the lock). */
void app_say(struct stn_app *a, enum stn_app_tone tone, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	a->tone = tone;
	a->said++;
}

static void say_diag(struct stn_app *a, const char *what,
		     const struct stn_diag *d)
{
	char line[2048];

	/* The cause first, in words; the rule and the file after it. */
	stn_reason_words(d, NULL, line, sizeof(line));
	app_say(a, STN_TONE_BAD, "%s: %.150s", what, line);
}

static const char *port_scheme(enum stn_port_mode m)
{
	switch (m) {
	case STN_PORT_YMODEM: return "ymodem";
	case STN_PORT_SMP: return "smp";
	default: return "serial";
	}
}

static void mounted(void *ctx, const char *dev, const char *path,
		    const char *fstype);
static void unmounted(void *ctx, const char *dev, const char *path);
static void mount_refused(void *ctx, const char *dev,
			  const struct stn_diag *why);
static void media_event(void *ctx, enum md_media_event ev,
			const struct md_mount_entry *m);
static void report_event(void *ctx, enum md_media_event ev,
			 const struct md_mount_entry *m);

/* USB DFU units present now, after the configured ports.  Only called
 * when no bundle is in hand and nothing is installing, so no worker holds
 * a pointer into the list (caller holds the lock, or is stn_app_new). */
static void refresh_usb(struct stn_app *a)
{
	struct stn_device_seen *seen = NULL;
	size_t n = 0;
	struct stn_diag d;

	a->ndevs = a->nports;
	stn_diag_init(&d);
	if (stn_device_list(&seen, &n, &d) != 0)
		return; /* no USB on this machine: ports only */
	for (size_t i = 0; i < n && a->ndevs < STN_APP_DEVICES; i++) {
		struct app_dev *dv = &a->devs[a->ndevs++];
		memset(&dv->pub, 0, sizeof(dv->pub));
		dv->app = a;
		snprintf(dv->pub.label, sizeof(dv->pub.label), "usb %.20s",
			 seen[i].port);
		snprintf(dv->pub.spec, sizeof(dv->pub.spec), "%s",
			 seen[i].spec);
	}
	free(seen);
}

static void usb_event(void *ctx, enum stn_device_event ev,
		      const struct stn_device_seen *dev)
{
	struct stn_app *a = ctx;

	a->usb_changed = 1;
	app_say(a, ev == STN_DEVICE_ARRIVED ? STN_TONE_GOOD : STN_TONE_WARN,
	    "USB device %s: %.100s",
	    ev == STN_DEVICE_ARRIVED ? "connected" : "disconnected",
	    dev ? dev->spec : "");
}

int stn_app_new(const char *config_path, struct stn_app **out,
		struct stn_diag *d)
{
	struct stn_app *a = calloc(1, sizeof(*a));
	int rc;

	if (!a || !(a->config_path = strdup(config_path))) {
		free(a);
		return stn_fail(d, STN_E_NOMEM, config_path, "starting");
	}
	pthread_mutex_init(&a->lock, NULL);
	if ((rc = stn_config_load(config_path, &a->cfg, d))) {
		stn_app_free(a);
		return rc;
	}
	for (size_t i = 0; i < a->cfg->nports && a->ndevs < STN_APP_DEVICES;
	     i++) {
		struct app_dev *dv = &a->devs[a->ndevs++];
		const struct stn_port *p = &a->cfg->ports[i];
		dv->app = a;
		snprintf(dv->pub.label, sizeof(dv->pub.label), "%s", p->label);
		snprintf(dv->pub.spec, sizeof(dv->pub.spec), "%s:%.280s",
			 port_scheme(p->mode), p->path);
	}
	a->nports = a->ndevs;
	refresh_usb(a);
	{
		struct stn_diag ud;
		stn_diag_init(&ud);
		if (stn_device_watch_new(usb_event, a, &a->usb_watch, &ud) != 0)
			a->usb_watch = NULL; /* no USB here: ports only */
	}
	/* Watched, so insertion and removal reach the core as events; in
	 * appliance mode this station also mounts removable media itself,
	 * read-only, nosuid, nodev, noexec (station/media_watch.h).  No
	 * watch (media root missing, no inotify) is not fatal: the
	 * technician can still rescan with r; the home screen says so. */
	{
		const struct stn_media_events me = {
		    media_event, mounted, unmounted, mount_refused,
		    report_event, a};
		struct stn_diag md;
		int mount = a->cfg->mount_media;
		stn_diag_init(&md);
		if (stn_media_watch_new_reports(a->cfg->media,
						a->cfg->report_media, mount,
						&me, &a->media, &md) != 0) {
			if (mount)
				say_diag(a, "Cannot mount media", &md);
			stn_diag_init(&md);
			if (!mount || stn_media_watch_new(a->cfg->media, 0, &me,
							  &a->media, &md) != 0)
				a->media = NULL;
		}
	}
	a->screen = STN_SCR_SIGNIN;
	a->idle_ms = a->cfg->idle_signout * 1000;
	a->last_key_ms = stn_mono_ms();
	app_say(a, STN_TONE_PLAIN, "Sign in: type your technician id, then Enter");
	*out = a;
	return 0;
}

static void join_all(struct stn_app *a)
{
	for (size_t i = 0; i < a->ndevs; i++)
		if (a->devs[i].live) {
			pthread_join(a->devs[i].thread, NULL);
			a->devs[i].live = 0;
		}
	if (a->worker_live) {
		pthread_join(a->worker, NULL);
		a->worker_live = 0;
	}
}

void stn_app_set_idle_signout(struct stn_app *a, int64_t seconds)
{
	pthread_mutex_lock(&a->lock);
	if (seconds > 0 && seconds * 1000 < a->idle_ms)
		a->idle_ms = seconds * 1000;
	pthread_mutex_unlock(&a->lock);
}

void stn_app_interrupt(struct stn_app *a, int signal)
{
	stn_install_interrupt(signal);
	pthread_mutex_lock(&a->lock);
	if (!a->interrupted)
		a->interrupted = signal;
	pthread_mutex_unlock(&a->lock);
}

void stn_app_free(struct stn_app *a)
{
	if (!a)
		return;
	join_all(a);
	if (a->signin_session) /* signed in as the station stopped */
		a->session = a->signin_session;
	stn_prepared_free(a->prep);
	stn_media_watch_free(a->media, a->session);
	stn_device_watch_free(a->usb_watch);
	stn_session_close(a->session, a->interrupted ? STN_E_INTERRUPTED : 0);
	stn_config_free(a->cfg);
	memset(a->pin, 0, sizeof(a->pin));
	pthread_mutex_destroy(&a->lock);
	free(a->config_path);
	free(a);
}

int stn_app_finished(struct stn_app *a)
{
	pthread_mutex_lock(&a->lock);
	int f = a->finished;
	pthread_mutex_unlock(&a->lock);
	return f;
}

/* --- media ---------------------------------------------------------- */

/* Where the bundle list's cursor starts: on the newest bundle (highest
 * sequence) whose images look whole and that is within its validity, so
 * it never starts on a rollback, an expired or an unusable one; the first
 * bundle when none qualifies.  Whether a device takes it is only known
 * once it is verified. */
static size_t newest_bundle(const struct md_discovery *disc, size_t n)
{
	int64_t now = (int64_t)time(NULL);
	size_t best = 0;
	int found = 0;

	for (size_t i = 0; i < disc->nbundles && i < n; i++) {
		const struct md_bundle *m = &disc->bundles[i];
		if (m->image_problem || m->expires <= now || m->created > now)
			continue;
		if (!found || m->sequence > disc->bundles[best].sequence)
			best = i, found = 1;
	}
	return best;
}

/* The bundles on the media, as media/discover.h finds them (bounded depth,
 * no symlinks followed, litter ignored); refused directories are listed
 * too, with why, so the technician is not left guessing. */
static void rescan(struct stn_app *a)
{
	struct md_discovery *disc = NULL;
	struct stn_diag d;

	a->nbundles = 0;
	stn_diag_init(&d);
	if (md_discover(a->cfg->media, 0, &disc, &d) != 0) {
		say_diag(a, "Cannot read the media", &d);
		a->cursor = 0;
		return;
	}
	for (size_t i = 0; i < disc->nbundles && a->nbundles < STN_APP_BUNDLES;
	     i++) {
		const struct md_bundle *m = &disc->bundles[i];
		struct stn_app_bundle *b = &a->bundles[a->nbundles++];
		snprintf(b->dir, sizeof(b->dir), "%.1000s", m->path);
		snprintf(b->title, sizeof(b->title),
			 "%.48s %.24s  (sequence %llu, for %.40s)%s", m->name,
			 m->version, (unsigned long long)m->sequence, m->model,
			 m->image_problem ? "  IMAGE PROBLEM" : "");
	}
	for (size_t i = 0; i < disc->nnotes && a->nbundles < STN_APP_BUNDLES;
	     i++) {
		const struct md_note *n = &disc->notes[i];
		struct stn_app_bundle *b;
		if (n->kind != MD_NOTE_REFUSED)
			continue;
		b = &a->bundles[a->nbundles++];
		snprintf(b->dir, sizeof(b->dir), "%.1000s", n->path);
		snprintf(b->title, sizeof(b->title), "unusable: %.150s",
			 n->text);
	}
	a->newest = newest_bundle(disc, a->nbundles);
	md_discovery_free(disc);
	if (a->cursor >= a->nbundles)
		a->cursor = 0;
}

/* --- workers ---------------------------------------------------------- */

static void prep_phase(void *ctx, enum stn_phase p, const char *detail)
{
	struct stn_app *a = ctx;
	pthread_mutex_lock(&a->lock);
	snprintf(a->progress, sizeof(a->progress), "%s %.150s",
		 stn_phase_name(p), detail ? detail : "");
	pthread_mutex_unlock(&a->lock);
}

static void prep_progress(void *ctx, enum stn_phase p, uint64_t done,
			  uint64_t total)
{
	struct stn_app *a = ctx;
	pthread_mutex_lock(&a->lock);
	snprintf(a->progress, sizeof(a->progress), "%s %llu of %llu bytes",
		 stn_phase_name(p), (unsigned long long)done,
		 (unsigned long long)total);
	pthread_mutex_unlock(&a->lock);
}

static void identity_text(const struct stn_outcome *rep, char *buf,
			  size_t cap)
{
	const struct cu_identity *id = &rep->identity;
	char seq[32] = "sequence unknown";

	if (id->has_sequence)
		snprintf(seq, sizeof(seq), "sequence %llu",
			 (unsigned long long)id->sequence);
	snprintf(buf, cap, "%.60s %.30s serial %.60s, %s", id->model,
		 id->hardware[0] ? id->hardware : "", id->serial, seq);
}

/* The token that waived attestation for this device, or NULL. */
static const char *attestation_waiver(const struct stn_outcome *rep)
{
	size_t nt;
	const struct cu_token *tk;

	if (!rep->bundle || rep->device.attestation.outcome != CU_WAIVED)
		return NULL;
	tk = cu_bundle_tokens(rep->bundle, &nt);
	for (size_t k = 0; k < rep->device.napplied; k++)
		if (rep->device.applied[k] < nt &&
		    tk[rep->device.applied[k]].waive & CU_WAIVE_ATTESTATION)
			return tk[rep->device.applied[k]].file;
	return NULL;
}

/* Say whether the device proved who it is (caller holds the lock).
 * Returns 1 when rc is the identity's own refusal: then `words` is the
 * whole reason the technician needs, and p->ident is left empty so the
 * screen does not say it twice. */
static int say_identity(const struct stn_outcome *rep, int rc,
			struct stn_app_device *p, char *words, size_t cap)
{
	enum stn_id_verdict v;

	p->ident_tag[0] = p->ident[0] = words[0] = '\0';
	if (!rep->have_device && rep->ident.state == CU_ATTEST_NOT_ASKED)
		return 0; /* it never answered: nothing to say */
	v = stn_identity_words(&rep->ident, attestation_waiver(rep), words,
			       cap);
	snprintf(p->ident_tag, sizeof(p->ident_tag), "%s",
		 stn_id_verdict_tag(v));
	p->ident_tone = v == STN_ID_GENUINE	   ? STN_TONE_GOOD
			: v == STN_ID_NOT_CHECKED ? STN_TONE_DIM
			: v == STN_ID_ALLOWED	   ? STN_TONE_WARN
						   : STN_TONE_BAD;
	if ((rc == STN_E_ATTESTATION || rc == STN_E_NOATTEST) &&
	    (v == STN_ID_NOT_GENUINE || v == STN_ID_UNPROVEN))
		return 1;
	snprintf(p->ident, sizeof(p->ident), "%s", words);
	return 0;
}

/* A device's refusal names a file of the bundle on screen (manifest,
 * custody/02.rec, tokens/x.tok): name it within the bundle, so the reason
 * itself fits the device list. */
static void in_bundle(struct stn_diag *d, const char *dir)
{
	size_t n = strlen(dir);

	if (n && strncmp(d->where, dir, n) == 0 && d->where[n] == '/')
		memmove(d->where, d->where + n + 1, strlen(d->where + n));
}

/* Stage and verify the chosen bundle, then ask each device who it is and
 * whether it may take the bundle. */
static void *prepare_worker(void *arg)
{
	struct stn_app *a = arg;
	struct stn_events ev = {prep_phase, prep_progress, a};
	struct stn_prepared *p = NULL;
	struct stn_diag d;
	char dir[1024];
	int rc;

	pthread_mutex_lock(&a->lock);
	snprintf(dir, sizeof(dir), "%s", a->bundles[a->cursor].dir);
	pthread_mutex_unlock(&a->lock);
	stn_diag_init(&d);
	rc = stn_prepare(a->session, dir, &ev, &p, &d);
	pthread_mutex_lock(&a->lock);
	a->prep = p;
	a->prep_rc = rc;
	a->prep_diag = d;
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; p && i < a->ndevs; i++) {
		struct app_dev *dv = &a->devs[i];
		struct stn_outcome rep;
		struct stn_diag dd;
		char line[1400], words[STN_APP_TEXT];

		stn_outcome_init(&rep);
		stn_diag_init(&dd);
		rc = stn_inspect(a->session, p, dv->pub.spec, &rep, &dd);
		pthread_mutex_lock(&a->lock);
		if (rep.have_device)
			identity_text(&rep, dv->pub.identity,
				      sizeof(dv->pub.identity));
		else
			snprintf(dv->pub.identity, sizeof(dv->pub.identity),
				 "not answering");
		dv->pub.verdict_known = 1;
		dv->pub.installable = rc == 0 || rc == STN_E_REINSTALL;
		snprintf(dv->bver, sizeof(dv->bver), "%s",
			 cu_bundle_manifest(stn_prepared_bundle(p))->version);
		snprintf(dv->uver, sizeof(dv->uver), "%s",
			 rep.have_device ? rep.identity.version : "");
		dv->pub.exception[0] = '\0';
		stn_diag_init(&dv->why);
		if (say_identity(&rep, rc, &dv->pub, words, sizeof(words))) {
			snprintf(dv->pub.verdict, sizeof(dv->pub.verdict),
				 "%s", words);
		} else if (rc == 0 && rep.device.napplied) {
			/* An exception must be visible as one before anyone
			 * selects the device. */
			size_t nt;
			const struct cu_token *tk =
				cu_bundle_tokens(rep.bundle, &nt);
			const struct cu_token *t0 = &tk[rep.device.applied[0]];
			char w[64];
			snprintf(dv->pub.verdict, sizeof(dv->pub.verdict),
				 "ready BY EXCEPTION: %.40s waives %.30s: %.80s",
				 t0->file, cu_waiver_names(t0->waive, w,
							   sizeof(w)),
				 t0->reason);
			app_exception_words(&rep, dv->bver, dv->uver,
					    dv->pub.exception,
					    sizeof(dv->pub.exception));
		} else if (rc == 0) {
			snprintf(dv->pub.verdict, sizeof(dv->pub.verdict),
				 "ready: %.150s", rep.device.sequence.diag.text);
		} else {
			in_bundle(&dd, dir);
			dv->why = dd;
			app_reason_line(dv, &dd, line, sizeof(line));
			snprintf(dv->pub.verdict, sizeof(dv->pub.verdict),
				 "%s: %.170s",
				 rc == STN_E_REINSTALL ? "reinstall" : "refused",
				 line);
		}
		/* Preselect what can be installed without an exception;
		 * exceptions are chosen deliberately. */
		dv->pub.selected = rc == 0 && !rep.device.napplied;
		pthread_mutex_unlock(&a->lock);
		rep.owned = NULL;
		stn_outcome_fini(&rep);
	}
	pthread_mutex_lock(&a->lock);
	a->busy = 0;
	if (!a->prep)
		say_diag(a, "Bundle refused", &a->prep_diag);
	else if (a->prep_rc && !app_check_failed(stn_prepared_bundle(a->prep)))
		say_diag(a, "Bundle refused", &a->prep_diag);
	else if (a->prep_rc)
		app_say(a, STN_TONE_BAD, "Bundle refused: see the checks above");
	else
		app_say(a, STN_TONE_GOOD, "Bundle verified. Space selects devices, "
				      "p installs");
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static void dev_phase(void *ctx, enum stn_phase p, const char *detail)
{
	struct app_dev *dv = ctx;
	(void)detail;
	pthread_mutex_lock(&dv->app->lock);
	snprintf(dv->pub.phase, sizeof(dv->pub.phase), "%s", stn_phase_name(p));
	if (p == STN_PHASE_WRITE) {
		dv->pub.done = 0;
		dv->started_ms = stn_mono_ms();
	}
	pthread_mutex_unlock(&dv->app->lock);
}

static void dev_progress(void *ctx, enum stn_phase p, uint64_t done,
			 uint64_t total)
{
	struct app_dev *dv = ctx;
	int64_t el;

	if (p != STN_PHASE_WRITE)
		return;
	pthread_mutex_lock(&dv->app->lock);
	dv->pub.done = done;
	dv->pub.total = total;
	el = stn_mono_ms() - dv->started_ms;
	dv->pub.rate = el > 0 ? (double)done * 1000.0 / (double)el : 0;
	dv->pub.eta = dv->pub.rate > 0
			      ? (int64_t)((double)(total - done) / dv->pub.rate)
			      : -1;
	pthread_mutex_unlock(&dv->app->lock);
}

static void *install_worker(void *arg)
{
	struct app_dev *dv = arg;
	struct stn_app *a = dv->app;
	struct stn_events ev = {dev_phase, dev_progress, dv};
	struct stn_outcome rep;
	struct stn_diag d;
	char spec[300], line[1400], words[STN_APP_TEXT];
	int rc, reinstall;

	pthread_mutex_lock(&a->lock);
	snprintf(spec, sizeof(spec), "%s", dv->pub.spec);
	reinstall = a->allow_reinstall;
	pthread_mutex_unlock(&a->lock);
	stn_outcome_init(&rep);
	stn_diag_init(&d);
	rc = stn_install(a->session, a->prep, spec, reinstall, &ev, &rep, &d);
	pthread_mutex_lock(&a->lock);
	stn_diag_init(&dv->result_why);
	if (say_identity(&rep, rc, &dv->pub, words, sizeof(words))) {
		/* The unit did not prove it is genuine: nothing written. */
		dv->pub.outcome = rep.images_written ? STN_OUT_FAILED
						      : STN_OUT_SKIPPED;
		snprintf(dv->pub.result, sizeof(dv->pub.result),
			 "NOT INSTALLED: %.180s", words);
	} else if (rc == 0) {
		dv->pub.outcome = STN_OUT_DONE;
		snprintf(dv->pub.result, sizeof(dv->pub.result),
			 "INSTALLED on %s (%s)%s", rep.identity.serial,
			 rep.proof == STN_PROOF_NONE
				 ? "no readback: unproven"
				 : stn_proof_name(rep.proof),
			 rep.installed.source == CU_SEQ_JOURNAL
				 ? "; old sequence from the journal"
				 : "");
	} else {
		/* Nothing written unless images_written says so. */
		dv->pub.outcome = rep.images_written ? STN_OUT_FAILED
						      : STN_OUT_SKIPPED;
		dv->result_why = d;
		app_reason_line(dv, &d, line, sizeof(line));
		snprintf(dv->pub.result, sizeof(dv->pub.result), "%s: %.170s",
			 rep.images_written ? "FAILED" : "NOT INSTALLED", line);
		if (stn_err_exit(rc) == STN_EXIT_IO && !rep.images_written)
			dv->pub.outcome = STN_OUT_FAILED;
	}
	snprintf(dv->pub.phase, sizeof(dv->pub.phase), "done");
	pthread_mutex_unlock(&a->lock);
	stn_outcome_fini(&rep);
	return NULL;
}

static int sync_dir_fs(const char *dir, const char *root,
		       struct stn_diag *d);

static void *export_worker(void *arg)
{
	struct stn_app *a = arg;
	struct stn_report_exported out;
	struct stn_diag d;
	int rc;

	stn_diag_init(&d);
	memset(&out, 0, sizeof(out));
	rc = stn_report_export(a->session, a->export_dir, 0, 0, &out, &d);
	/* The files are fsynced; on a report stick the file system's own
	 * records (vfat: the directory) too, so pulling it loses nothing. */
	if (rc == 0 && a->cfg->report_media)
		rc = sync_dir_fs(a->export_dir, a->cfg->report_media, &d);
	pthread_mutex_lock(&a->lock);
	a->busy = 0;
	if (rc)
		say_diag(a, "Report not exported", &d);
	else
		app_say(a, STN_TONE_GOOD, "Report written: %.150s (%llu events)",
		    out.json, (unsigned long long)out.count);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* syncfs(2) of the file system that holds dir, a report stick's mount
 * point under root.  A stick pulled during the export leaves dir a plain
 * directory of root (the mount detached, the directory not yet gone), and
 * the files in RAM: that is a failure, not "Report written". */
static int sync_dir_fs(const char *dir, const char *root,
		       struct stn_diag *d)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	struct stat in, top;

	if (fd < 0)
		return stn_fail(d, STN_E_IO, dir, "cannot open: %s",
				strerror(errno));
	if (fstat(fd, &in) != 0 || stat(root, &top) != 0 ||
	    in.st_dev == top.st_dev)
		rc = stn_fail(d, STN_E_IO, dir,
			      "the report stick was pulled during the export: "
			      "the report is not on it; plug it in and export "
			      "again");
	else if (syncfs(fd) != 0)
		rc = stn_fail(d, STN_E_IO, dir,
			      "report written but not flushed to the stick "
			      "(%s): export again before pulling it",
			      strerror(errno));
	close(fd);
	return rc;
}

/* The base name of a mount point: the device's kernel name. */
static const char *stick_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Drops report stick i from the list (caller holds the lock). */
static void forget_stick(struct stn_app *a, size_t i)
{
	memmove(a->report_sticks[i], a->report_sticks[i + 1],
		(a->nreport_sticks - i - 1) * sizeof(a->report_sticks[0]));
	a->nreport_sticks--;
}

/* A report stick came or went under report-media; station/media_watch.c
 * journaled it first.  The list keeps the order they came in. */
static void report_event(void *ctx, enum md_media_event ev,
			 const struct md_mount_entry *m)
{
	const size_t cap = sizeof(((struct stn_app *)0)->report_sticks) /
			   sizeof(((struct stn_app *)0)->report_sticks[0]);
	struct stn_app *a = ctx;
	size_t i;

	if (!m)
		return;
	for (i = 0; i < a->nreport_sticks; i++)
		if (!strcmp(a->report_sticks[i], m->path))
			break;
	if (ev == MD_MEDIA_ADDED) {
		if (i < a->nreport_sticks)
			forget_stick(a, i); /* again: it goes to the end */
		else if (a->nreport_sticks == cap)
			forget_stick(a, 0); /* the oldest makes room */
		snprintf(a->report_sticks[a->nreport_sticks++],
			 sizeof(a->report_sticks[0]), "%s", m->path);
		app_say(a, STN_TONE_GOOD, "Report stick %.20s ready: x exports "
			"the report to this report stick", stick_name(m->path));
	} else if (ev == MD_MEDIA_REMOVED && i < a->nreport_sticks) {
		forget_stick(a, i);
		app_say(a, STN_TONE_WARN, "Report stick %.20s removed",
			stick_name(m->path));
	}
}

static void mounted(void *ctx, const char *dev, const char *path,
		    const char *fstype)
{
	struct stn_app *a = ctx;
	app_say(a, STN_TONE_GOOD, "Mounted %.20s read-only at %.80s (%.10s)",
	    dev ? dev : "?", path ? path : "?", fstype ? fstype : "?");
}

static void unmounted(void *ctx, const char *dev, const char *path)
{
	struct stn_app *a = ctx;
	app_say(a, STN_TONE_WARN, "Unmounted %.20s from %.80s", dev ? dev : "?",
	    path ? path : "?");
}

static void mount_refused(void *ctx, const char *dev,
			  const struct stn_diag *why)
{
	struct stn_app *a = ctx;
	app_say(a, STN_TONE_BAD, "Not mounting %.20s: %.140s", dev ? dev : "?",
	    why ? why->text : "");
}

/* A medium came or went; station/media_watch.c journaled it first. */
static void media_event(void *ctx, enum md_media_event ev,
			const struct md_mount_entry *m)
{
	struct stn_app *a = ctx;

	a->media_changed = 1;
	if (ev == MD_MEDIA_ADDED)
		app_say(a, STN_TONE_GOOD, "Media inserted: %.120s",
		    m ? m->path : "");
	else if (ev == MD_MEDIA_REMOVED)
		app_say(a, STN_TONE_WARN, "Media removed: %.120s",
		    m ? m->path : "");
}

/* Drain media events without waiting; a change rescans the lists that
 * show media (caller holds the lock). */
static void poll_media(struct stn_app *a)
{
	struct stn_diag d;

	stn_diag_init(&d);
	/* Media seen before sign-in are not journaled: no session yet. */
	if (a->media && stn_media_watch_run(a->media, a->session, 0, &d) < 0)
		say_diag(a, "Media", &d);
	stn_diag_init(&d);
	if (a->media_changed && (a->screen == STN_SCR_HOME ||
				 a->screen == STN_SCR_BUNDLES)) {
		a->media_changed = 0;
		rescan(a);
	}
	if (a->usb_watch)
		(void)stn_device_watch_dispatch(a->usb_watch, 0, &d);
	/* The device list only changes where no bundle is in hand. */
	if (a->usb_changed && (a->screen == STN_SCR_HOME ||
			       a->screen == STN_SCR_BUNDLES)) {
		a->usb_changed = 0;
		refresh_usb(a);
	}
}

/* --- keys, screen by screen (caller holds the lock) ------------------ */

static void start_worker(struct stn_app *a, void *(*fn)(void *));
static void start_export(struct stn_app *a);
static void join_all(struct stn_app *a);
static void sign_out(struct stn_app *a, const char *how);
static void ask_quit(struct stn_app *a);

static void go_home(struct stn_app *a)
{
	a->screen = STN_SCR_HOME;
	rescan(a);
	if (!a->worker_live || !a->busy)
		refresh_usb(a);
}

/* Quitting the program asks first (STN_SCR_QUIT over the screen). */
static void ask_quit(struct stn_app *a)
{
	a->back_to = a->screen;
	a->screen = STN_SCR_QUIT;
	app_say(a, STN_TONE_WARN, "Quit the station? y quits, n or Esc stays");
}

static void quit_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	if (key == STN_KEY_CHAR && (ch == 'y' || ch == 'Y')) {
		a->finished = 1;
		a->screen = STN_SCR_BYE;
	} else if (key == STN_KEY_BACK ||
		   (key == STN_KEY_CHAR && (ch == 'n' || ch == 'N'))) {
		a->screen = a->back_to;
		app_say(a, STN_TONE_PLAIN, "Sign in: type your technician id, "
			"then Enter");
	}
}

static void reset_devices(struct stn_app *a);

/* End the technician's session (journaled, session-end result `how`) and
 * return to the sign-in screen for the next one.  Only when no worker and
 * no install runs (caller holds the lock and checked): the threads have
 * ended, and are joined here, outside the lock. */
static void sign_out(struct stn_app *a, const char *how)
{
	struct stn_session *s = a->session;

	pthread_mutex_unlock(&a->lock);
	join_all(a);
	pthread_mutex_lock(&a->lock);
	stn_prepared_free(a->prep);
	a->prep = NULL;
	a->prep_rc = 0;
	a->allow_reinstall = 0;
	a->progress[0] = '\0';
	reset_devices(a);
	for (size_t i = 0; i < a->ndevs; i++)
		a->devs[i].pub.identity[0] = '\0';
	a->njlines = a->jtop = 0;
	a->cursor = a->dev_cursor = 0;
	a->session = NULL;
	stn_session_close_as(s, 0, how);
	a->id[0] = '\0';
	memset(a->pin, 0, sizeof(a->pin));
	a->field = 0;
	a->screen = STN_SCR_SIGNIN;
	if (!strcmp(how, "idle"))
		app_say(a, STN_TONE_WARN, "Signed out after %lld %s without a "
			"key. Sign in: type your technician id",
			(long long)(a->idle_ms % 60000 ? a->idle_ms / 1000
						       : a->idle_ms / 60000),
			a->idle_ms % 60000 ? "s" : "min");
	else
		app_say(a, STN_TONE_PLAIN, "Signed out. Sign in: type your "
			"technician id, then Enter");
}

/* Sign out a technician who pressed no key for the idle time (a tick,
 * caller holds the lock).  Never while anything runs: the idle time
 * counts from when it ended, so a result stays on screen that long. */
static void idle_check(struct stn_app *a)
{
	int64_t now = stn_mono_ms();

	if (!a->session || a->busy || a->checking || app_install_running(a) ||
	    a->screen == STN_SCR_PUSH) {
		a->last_key_ms = now;
		return;
	}
	if (a->idle_ms > 0 && now - a->last_key_ms >= a->idle_ms)
		sign_out(a, "idle");
}

/* Check the PIN, then open the session, away from the UI thread.  The
 * PIN is copied out and wiped from the shared state at once. */
static void *signin_worker(void *arg)
{
	struct stn_app *a = arg;
	struct stn_signin_result res;
	struct stn_session *s = NULL;
	struct stn_diag d;
	char id[sizeof(a->id)], pin[sizeof(a->pin)];
	int rc = 0;

	pthread_mutex_lock(&a->lock);
	memcpy(id, a->id, sizeof(id));
	memcpy(pin, a->pin, sizeof(pin));
	memset(a->pin, 0, sizeof(a->pin));
	pthread_mutex_unlock(&a->lock);
	stn_diag_init(&d);
	/* The guard judges and journals (a->cfg is never changed). */
	rc = stn_signin_attempt(a->config_path, a->cfg, id, pin,
				(int64_t)time(NULL), &res, &d);
	if (!rc && (res.refused || res.verdict != STN_SIGNIN_OPEN))
		rc = STN_E_TECHNICIAN;
	memset(pin, 0, sizeof(pin));
	if (!rc) {
		stn_diag_init(&d);
		rc = stn_session_open(a->config_path, id, "ui", 0, &s, &d);
	}
	pthread_mutex_lock(&a->lock);
	a->signin_rc = rc;
	a->signin_res = res;
	a->signin_diag = d;
	a->signin_session = s;
	a->signin_ready = 1;
	a->busy = 0;
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* The guard's words for the last refusal, counted down as time passes;
 * Enter waits until the delay is over (caller holds the lock). */
static void signin_countdown(struct stn_app *a)
{
	char line[STN_APP_TEXT];
	int waiting;

	stn_signin_words(&a->signin_res, a->id, (int64_t)time(NULL), line,
			 sizeof(line), &waiting);
	app_say(a, STN_TONE_BAD, "%s", line);
	/* A lock is said once: the next id typed is another's. */
	a->signin_wait = waiting &&
			 a->signin_res.verdict != STN_SIGNIN_LOCKED;
}

static void signin_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	char *field = a->field ? a->pin : a->id;
	size_t cap = a->field ? sizeof(a->pin) : sizeof(a->id);
	size_t len = strlen(field);
	const struct stn_technician *t;

	if (a->checking)
		return; /* the worker has the PIN; its outcome comes next */
	if (a->signin_wait)
		signin_countdown(a);
	switch (key) {
	case STN_KEY_BACK: /* back one step: PIN to id, id to quitting */
		if (a->field) {
			a->field = 0;
			memset(a->pin, 0, sizeof(a->pin));
			app_say(a, STN_TONE_PLAIN, "Sign in: type your "
				"technician id, then Enter");
		} else {
			ask_quit(a);
		}
		return;
	case STN_KEY_ERASE:
		if (len)
			field[len - 1] = '\0';
		return;
	case STN_KEY_CHAR:
		if (len + 1 < cap && ch > 32 && ch < 127)
			field[len] = (char)ch, field[len + 1] = '\0';
		return;
	case STN_KEY_ENTER:
		break;
	default:
		return;
	}
	if (a->signin_wait)
		return; /* the delay after a failure: the countdown is shown */
	if (!a->id[0]) {
		app_say(a, STN_TONE_PLAIN, "Type your technician id, then Enter");
		return;
	}
	/* An unknown id is asked for a PIN like a known one: the screen
	 * must not tell which ids exist (station/signin.h). */
	t = stn_config_technician(a->cfg, a->id);
	if ((!t || t->pin) && a->field == 0) {
		a->field = 1;
		app_say(a, STN_TONE_PLAIN, "PIN for %.32s, then Enter", a->id);
		return;
	}
	/* PBKDF2 takes a good fraction of a second by design, and opening
	 * the session reads the journal: both run in a worker, and the
	 * outcome comes back as an event (signin_outcome). */
	a->checking = 1;
	a->pin_shown = (int)strlen(a->pin);
	app_say(a, STN_TONE_PLAIN, !t || t->pin ? "Checking the PIN..."
						: "Signing in...");
	start_worker(a, signin_worker);
	if (!a->worker_live)
		a->checking = 0, memset(a->pin, 0, sizeof(a->pin));
}

/* The sign-in worker finished (caller holds the lock). */
static void signin_outcome(struct stn_app *a)
{
	const struct stn_technician *t = stn_config_technician(a->cfg, a->id);
	const char *name = t ? t->name : a->id;

	a->checking = 0;
	a->signin_ready = 0;
	a->pin_shown = 0;
	if (a->signin_rc == STN_E_TECHNICIAN) {
		a->signin_wait = 1;
		signin_countdown(a);
		if (a->signin_res.verdict == STN_SIGNIN_LOCKED)
			a->field = 0, a->id[0] = '\0'; /* another may sign in */
		return;
	}
	if (a->signin_rc) {
		say_diag(a, "Cannot start the session", &a->signin_diag);
		a->field = 0;
		return;
	}
	a->session = a->signin_session;
	a->signin_session = NULL;
	go_home(a);
	{
		const char *what;
		unsigned n = stn_session_abandoned(a->session, &what);
		/* Said after go_home, which may set its own message: this
		 * one must not be missed. */
		if (n)
			app_say(a, STN_TONE_WARN, "Signed in as %.40s. %u install(s) "
				"were cut off: check %.80s", name, n, what);
		else if (stn_session_notice(a->session))
			app_say(a, STN_TONE_WARN, "Signed in as %.40s. %.200s",
				name, stn_session_notice(a->session));
		else
			app_say(a, STN_TONE_GOOD, "Signed in as %.60s", name);
	}
}

static void start_worker(struct stn_app *a, void *(*fn)(void *))
{
	if (a->worker_live) {
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->worker, NULL);
		pthread_mutex_lock(&a->lock);
		a->worker_live = 0;
	}
	a->busy = 1;
	if (pthread_create(&a->worker, NULL, fn, a) == 0)
		a->worker_live = 1;
	else
		a->busy = 0, app_say(a, STN_TONE_BAD, "cannot start a worker");
}

int app_install_running(const struct stn_app *a)
{
	for (size_t i = 0; i < a->ndevs; i++)
		if (a->devs[i].pub.outcome == STN_OUT_RUNNING &&
		    strcmp(a->devs[i].pub.phase, "done") != 0)
			return 1;
	return 0;
}

static void open_journal(struct stn_app *a);
static void go_home(struct stn_app *a);

static void home_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	/* Home is as far back as a session goes: Esc pressed a few times
	 * too many to get here must not end it (docs/decisions.md). */
	if (key == STN_KEY_BACK) {
		app_say(a, STN_TONE_PLAIN, "This is home; q signs out");
		return;
	}
	if (key == STN_KEY_CHAR && ch == 'q') {
		if (a->busy)
			app_say(a, STN_TONE_WARN, "Wait until the report is "
				"written, then sign out");
		else
			sign_out(a, "signed-out");
		return;
	}
	if (key == STN_KEY_ENTER || (key == STN_KEY_CHAR && ch == 'm')) {
		rescan(a);
		a->cursor = a->newest;
		a->screen = STN_SCR_BUNDLES;
		app_say(a, STN_TONE_PLAIN, "%zu bundle(s) on the media", a->nbundles);
		return;
	}
	if (key != STN_KEY_CHAR)
		return;
	if (ch == 'j')
		open_journal(a);
	else if (ch == 'r')
		rescan(a), app_say(a, STN_TONE_PLAIN, "Media scanned again");
	else if (ch == 'x' && !a->busy)
		start_export(a);
}

/* x: the signed report goes to the newest report stick when report-media
 * is set (and nowhere without one), else to the media root as ever. */
static void start_export(struct stn_app *a)
{
	if (a->cfg->report_media && !a->nreport_sticks) {
		app_say(a, STN_TONE_WARN, "No report stick: plug in a stick "
			"with a file %s at its top", MD_REPORT_MARKER);
		return;
	}
	snprintf(a->export_dir, sizeof(a->export_dir), "%s",
		 a->cfg->report_media
		     ? a->report_sticks[a->nreport_sticks - 1]
		     : a->cfg->media);
	if (a->cfg->report_media)
		app_say(a, STN_TONE_PLAIN, "Exporting the signed report to "
			"report stick %.20s...", stick_name(a->export_dir));
	else
		app_say(a, STN_TONE_PLAIN, "Exporting the signed report...");
	start_worker(a, export_worker);
}

static void reset_devices(struct stn_app *a)
{
	for (size_t i = 0; i < a->ndevs; i++) {
		struct stn_app_device *p = &a->devs[i].pub;
		p->selected = p->verdict_known = p->installable = 0;
		p->verdict[0] = p->result[0] = p->phase[0] = '\0';
		p->ident[0] = p->ident_tag[0] = '\0';
		p->outcome = STN_OUT_NONE;
		p->done = p->total = 0;
		snprintf(p->identity, sizeof(p->identity), "asking...");
	}
}

static void bundles_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	if (key == STN_KEY_BACK) {
		go_home(a);
		return;
	}
	if (key == STN_KEY_UP && a->cursor > 0)
		a->cursor--;
	else if (key == STN_KEY_DOWN && a->cursor + 1 < a->nbundles)
		a->cursor++;
	else if (key == STN_KEY_CHAR && ch == 'r')
		rescan(a);
	else if (key == STN_KEY_ENTER && a->nbundles && !a->busy) {
		stn_prepared_free(a->prep);
		a->prep = NULL;
		a->prep_rc = 0;
		a->dev_cursor = 0;
		a->allow_reinstall = 0;
		a->progress[0] = '\0';
		reset_devices(a);
		a->screen = STN_SCR_BUNDLE;
		app_say(a, STN_TONE_PLAIN, "Copying and verifying...");
		start_worker(a, prepare_worker);
	}
}

int app_check_failed(const struct cu_bundle *b)
{
	for (int c = 0; b && c < CU_NCHECKS; c++)
		if (cu_bundle_check(b, (enum cu_check)c)->outcome == CU_FAILED)
			return 1;
	return 0;
}

int app_bundle_refused(const struct stn_app *a)
{
	return !a->prep || (a->prep_rc && a->prep_rc != STN_E_CUSTODY);
}

size_t app_selected_count(const struct stn_app *a, int *reinstalls)
{
	size_t n = 0;
	*reinstalls = 0;
	for (size_t i = 0; i < a->ndevs; i++)
		if (a->devs[i].pub.selected) {
			n++;
			*reinstalls += strncmp(a->devs[i].pub.verdict,
					       "reinstall", 9) == 0;
		}
	return n;
}

static void bundle_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	int reinstalls;

	if (key == STN_KEY_BACK && !a->busy) {
		a->screen = STN_SCR_BUNDLES;
		return;
	}
	if (a->busy)
		return;
	if (key == STN_KEY_UP && a->dev_cursor > 0)
		a->dev_cursor--;
	else if (key == STN_KEY_DOWN && a->dev_cursor + 1 < a->ndevs)
		a->dev_cursor++;
	else if (key == STN_KEY_TOGGLE && a->ndevs) {
		struct stn_app_device *p = &a->devs[a->dev_cursor].pub;
		if (p->installable)
			p->selected = !p->selected;
		else
			app_say(a, STN_TONE_BAD, "%.20s cannot take this bundle: "
					     "%.140s", p->label, p->verdict);
	} else if (key == STN_KEY_CHAR && ch == 'p') {
		if (app_bundle_refused(a)) {
			app_say(a, STN_TONE_BAD, "This bundle was refused; nothing "
					     "can be installed");
			return;
		}
		if (!app_selected_count(a, &reinstalls)) {
			app_say(a, STN_TONE_BAD, "Select at least one device "
					     "(Space)");
			return;
		}
		a->screen = STN_SCR_CONFIRM;
		if (app_exception_selected(a))
			app_say(a, STN_TONE_WARN, "Confirm: D (capital) installs "
						  "BY EXCEPTION, n goes back");
		else
			app_say(a, STN_TONE_WARN, "Confirm: y installs, n goes back");
	}
}

static void confirm_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	int reinstalls;

	if (key == STN_KEY_BACK || (key == STN_KEY_CHAR && ch == 'n')) {
		a->screen = STN_SCR_BUNDLE;
		app_say(a, STN_TONE_PLAIN, "Nothing installed");
		return;
	}
	if (key != STN_KEY_CHAR || (ch != 'y' && ch != 'D'))
		return;
	/* An install by exception (a downgrade, a waived check) is named on
	 * this screen and needs its own key, D, which no slip on `y` or
	 * Enter presses (issue 15 item 3). */
	if (app_exception_selected(a) && ch != 'D') {
		app_say(a, STN_TONE_WARN, "This install is BY EXCEPTION: press "
					  "D (capital) to confirm it, n to go "
					  "back");
		return;
	}
	(void)app_selected_count(a, &reinstalls);
	/* The confirmation covered the reinstalls it listed. */
	a->allow_reinstall = reinstalls > 0;
	a->screen = STN_SCR_PUSH;
	app_say(a, STN_TONE_PLAIN, "Installing; each device on its own");
	for (size_t i = 0; i < a->ndevs; i++) {
		struct app_dev *dv = &a->devs[i];
		if (!dv->pub.selected)
			continue;
		if (dv->live) { /* finished long ago (push screen waited) */
			pthread_mutex_unlock(&a->lock);
			pthread_join(dv->thread, NULL);
			pthread_mutex_lock(&a->lock);
			dv->live = 0;
		}
		dv->pub.outcome = STN_OUT_RUNNING;
		dv->pub.done = 0;
		dv->pub.total = 0;
		dv->pub.eta = -1;
		snprintf(dv->pub.phase, sizeof(dv->pub.phase), "queued");
		if (pthread_create(&dv->thread, NULL, install_worker, dv) == 0)
			dv->live = 1;
		else
			dv->pub.outcome = STN_OUT_FAILED,
			snprintf(dv->pub.result, sizeof(dv->pub.result),
				 "FAILED: cannot start a worker");
	}
}

static void result_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	(void)ch;
	if (key == STN_KEY_ENTER || key == STN_KEY_BACK) {
		for (size_t i = 0; i < a->ndevs; i++)
			a->devs[i].pub.outcome = STN_OUT_NONE;
		a->screen = STN_SCR_BUNDLES;
		rescan(a);
	}
}

static int journal_line(void *ctx, const struct stn_event *e)
{
	struct stn_app *a = ctx;
	size_t cap = sizeof(a->jlines) / sizeof(a->jlines[0]);
	struct stn_app_line *l;
	char line[2048];

	if (a->njlines == cap) { /* keep the newest */
		memmove(a->jlines, a->jlines + 1,
			(cap - 1) * sizeof(a->jlines[0]));
		memmove(a->jfull, a->jfull + 1, (cap - 1) * sizeof(a->jfull[0]));
		a->njlines--;
	}
	l = &a->jlines[a->njlines++];
	app_journal_text(e, line, sizeof(line));
	snprintf(a->jfull[l - a->jlines], sizeof(a->jfull[0]), "%.699s", line);
	snprintf(l->text, sizeof(l->text), "%.199s", line);
	l->tone = strstr(e->type, "refused") || strstr(e->type, "failed") ||
				  strstr(e->type, "error")
			  ? STN_TONE_BAD
		  : strstr(e->type, "finished") ? STN_TONE_GOOD
						: STN_TONE_PLAIN;
	return 0;
}

static void open_journal(struct stn_app *a)
{
	struct stn_diag d;

	a->njlines = 0;
	stn_diag_init(&d);
	if (stn_session_journal_each(a->session, 0, journal_line, a, &d)) {
		say_diag(a, "Cannot read the journal", &d);
		return;
	}
	a->jtop = a->njlines > 16 ? a->njlines - 16 : 0;
	a->jcur = a->njlines ? a->njlines - 1 : 0;
	a->screen = STN_SCR_JOURNAL;
	app_say(a, STN_TONE_PLAIN, "%zu most recent events", a->njlines);
}

static void journal_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	(void)ch;
	if (key == STN_KEY_BACK || key == STN_KEY_ENTER)
		go_home(a);
	else if (key == STN_KEY_UP && a->jcur > 0)
		a->jtop = --a->jcur < a->jtop ? a->jcur : a->jtop;
	else if (key == STN_KEY_DOWN && a->jcur + 1 < a->njlines)
		a->jtop = ++a->jcur >= a->jtop + 16 ? a->jcur - 15 : a->jtop;
}

void stn_app_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	enum stn_app_screen was;
	unsigned said;

	pthread_mutex_lock(&a->lock);
	was = a->screen;
	said = a->said;
	if (key != STN_KEY_TICK)
		a->last_key_ms = stn_mono_ms();
	if (a->signin_ready) {
		signin_outcome(a);
		/* A key typed while the PIN was checked was meant for the
		 * sign-in screen, not for the one that follows. */
		if (key != STN_KEY_TICK) {
			pthread_mutex_unlock(&a->lock);
			return;
		}
	}
	if (key == STN_KEY_TICK) {
		poll_media(a);
		idle_check(a);
	}
	if (app_overlay_key(a, key, ch)) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	switch (a->screen) {
	case STN_SCR_SIGNIN: signin_key(a, key, ch); break;
	case STN_SCR_HOME: home_key(a, key, ch); break;
	case STN_SCR_BUNDLES: bundles_key(a, key, ch); break;
	case STN_SCR_BUNDLE: bundle_key(a, key, ch); break;
	case STN_SCR_CONFIRM: confirm_key(a, key, ch); break;
	case STN_SCR_PUSH:
		/* Installs cannot be interrupted from the keyboard: a half
		 * written device is worse than a wait. */
		if (!app_install_running(a)) {
			a->screen = STN_SCR_RESULT;
			app_say(a, STN_TONE_PLAIN, "Enter to continue");
		}
		break;
	case STN_SCR_RESULT: result_key(a, key, ch); break;
	case STN_SCR_JOURNAL: journal_key(a, key, ch); break;
	case STN_SCR_BYE: break;
	case STN_SCR_DETAIL: /* overlays: issue 15 */
	case STN_SCR_HELP: break;
	case STN_SCR_QUIT: quit_key(a, key, ch); break;
	}
	/* A message belongs to the screen that said it. */
	if (a->screen != was && a->said == said)
		a->message[0] = '\0';
	pthread_mutex_unlock(&a->lock);
}

