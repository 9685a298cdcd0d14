/* station/app_view.c: building the snapshots the text UI draws, screen by
 * screen, from the core's state (under its lock). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "custody/manifest.h"
#include "station/base/rfc3339.h"
#include "custody/token.h"
#include "custody/trust.h"
#include "custody/verify.h"
#include "station/app_internal.h"
#include "station/config.h"
#include "station/base/error.h"
#include "station/base/hex.h"
#include "station/reason_words.h"
#include "station/session.h"

/* --- the view ----------------------------------------------------------- */

static void line(struct stn_app_view *v, enum stn_app_tone tone,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void line(struct stn_app_view *v, enum stn_app_tone tone,
		 const char *fmt, ...)
{
	va_list ap;

	if (v->nlines == STN_APP_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(v->lines[v->nlines].text, STN_APP_TEXT, fmt, ap);
	va_end(ap);
	v->lines[v->nlines++].tone = tone;
}

static void home_view(struct stn_app *a, struct stn_app_view *v)
{
	char t1[CU_TIME_LEN + 1], t2[CU_TIME_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	int64_t floor = stn_session_floor(a->session);

	cu_time_format(now, t1);
	cu_time_format(floor, t2);
	line(v, STN_TONE_PLAIN, "Station %s at site %s", a->cfg->id,
	     a->cfg->site);
	line(v, now + 300 >= floor ? STN_TONE_GOOD : STN_TONE_BAD,
	     "Clock %s   trusted-time floor %s", t1, t2);
	line(v, STN_TONE_PLAIN, "Trust anchors %.80s", a->cfg->anchors);
	{
		size_t ncrl, nstale;
		int64_t next;
		char tn[CU_TIME_LEN + 1] = "-";
		cu_trust_crl_status(stn_session_trust(a->session), now, &ncrl,
				    &nstale, &next);
		if (next)
			cu_time_format(next, tn);
		line(v,
		     nstale ? (a->cfg->stale_crl_refuse ? STN_TONE_BAD
							: STN_TONE_WARN)
		     : ncrl ? STN_TONE_GOOD
			    : STN_TONE_WARN,
		     "CRLs: %zu, %zu past nextUpdate (%s), next due %s", ncrl,
		     nstale,
		     a->cfg->stale_crl_refuse ? "refused" : "warned about", tn);
	}
	line(v, STN_TONE_PLAIN, "Release signatures needed: %u   custody: %s",
	     a->cfg->release_threshold,
	     a->cfg->require_custody ? "required" : "not required");
	line(v, STN_TONE_PLAIN, " ");
	line(v, a->nbundles ? STN_TONE_GOOD : STN_TONE_WARN,
	     "Media %.60s: %zu bundle(s)%s", a->cfg->media, a->nbundles,
	     a->media ? "" : " (not watched: r to rescan)");
	line(v, STN_TONE_PLAIN, "Devices:");
	for (size_t i = 0; i < a->ndevs; i++) {
		const char *path = strchr(a->devs[i].pub.spec, ':') + 1;
		/* USB units are listed because they are connected. */
		int present = i >= a->nports || access(path, F_OK) == 0;
		line(v, present ? STN_TONE_GOOD : STN_TONE_DIM,
		     "  %-12.12s %-50.50s %s", a->devs[i].pub.label,
		     a->devs[i].pub.spec, present ? "present" : "absent");
	}
	if (!a->ndevs)
		line(v, STN_TONE_WARN, "  (no [port] configured, no USB DFU "
				       "device connected)");
}

/* Encrypted delivery (formats §10): whether this station could open the
 * images is check 3's; say so in plain words, with the delivery key's
 * recipient id, the one key files and refusals name. */
static void encrypted_view(struct stn_app *a, const struct cu_bundle *b,
			   struct stn_app_view *v)
{
	const struct cu_manifest *m = cu_bundle_manifest(b);
	const struct cu_check_result *r = cu_bundle_check(b, CU_CHECK_IMAGES);
	const uint8_t *rid = stn_session_delivery_recipient(a->session);
	char hex[CU_SHA256_HEX_LEN + 1] = "";
	size_t n = 0;

	for (size_t i = 0; i < m->nimages; i++)
		n += m->images[i].encrypted != 0;
	if (!n)
		return;
	if (rid)
		cu_hex(rid, CU_SHA256_LEN, hex);
	if (r->outcome == CU_PASSED)
		line(v, STN_TONE_GOOD, "Images encrypted for this station "
		     "(delivery key %.16s...)", hex);
	else
		line(v, STN_TONE_BAD, "Encrypted images refused (%s%.16s%s): "
		     "see images below", rid ? "delivery key " :
		     "this station has no delivery key", hex,
		     rid ? "..." : "");
}

static void bundle_view(struct stn_app *a, struct stn_app_view *v)
{
	const struct cu_bundle *b = a->prep ? stn_prepared_bundle(a->prep)
					    : NULL;
	char t[CU_TIME_LEN + 1], w[64];

	if (!b) {
		line(v, STN_TONE_PLAIN, "%s", a->bundles[a->cursor].title);
		if (a->busy)
			line(v, STN_TONE_DIM, "%s", a->progress);
		else if (a->prep_rc) {
			char l[2048], r[2100];
			stn_reason_words(&a->prep_diag, NULL, l, sizeof(l));
			snprintf(r, sizeof(r), "REFUSED: %s", l);
			app_view_wrap(v, STN_TONE_BAD, r, 76, 4);
		}
		return;
	}
	const struct cu_manifest *m = cu_bundle_manifest(b);
	size_t n;
	const struct cu_signer *sg = cu_bundle_signers(b, &n);
	char signers[120] = "";
	for (size_t i = 0, used = 0; i < n && used < 100; i++)
		used += (size_t)snprintf(signers + used, sizeof(signers) - used,
					 "%s%s", i ? ", " : "", sg[i].cn);
	cu_time_format(m->expires, t);
	line(v, STN_TONE_PLAIN, "%s %s  sequence %llu  for %s  expires %s",
	     m->name, m->version, (unsigned long long)m->sequence, m->model,
	     t);
	{
		/* One line for who signed and who carried it. */
		const struct cu_chain *ch = cu_bundle_chain(b);
		char hops[160] = "";
		size_t used = 0;
		for (size_t i = 0; i < ch->n && used < sizeof(hops) - 40; i++)
			used += (size_t)snprintf(hops + used,
						 sizeof(hops) - used, "%s%s",
						 i ? " > " : "",
						 ch->hops[i].from);
		if (ch->n)
			snprintf(hops + used, sizeof(hops) - used, " > %s",
				 ch->hops[ch->n - 1].to);
		line(v, STN_TONE_PLAIN, "Signed by %s%s%s",
		     n ? signers : "(nobody valid)",
		     ch->n ? "; carried " : "", hops);
	}
	encrypted_view(a, b, v);
	for (int c = 0; c < CU_NCHECKS; c++) {
		const struct cu_check_result *r =
			cu_bundle_check(b, (enum cu_check)c);
		char cause[400];
		if (c == CU_CHECK_TARGET || c == CU_CHECK_SEQUENCE ||
		    c == CU_CHECK_ATTESTATION)
			continue; /* per device, below */
		/* A failed check says its cause in words (Enter or d reads
		 * it whole, with its file). */
		if (r->outcome == CU_FAILED)
			stn_reason_cause(&r->diag, NULL, cause, sizeof(cause));
		else
			snprintf(cause, sizeof(cause), "%.399s", r->diag.text);
		line(v,
		     r->outcome == CU_FAILED	   ? STN_TONE_BAD
		     : r->outcome == CU_PASSED ? STN_TONE_GOOD
					       : STN_TONE_DIM,
		     "  %-10s %-12s %.150s", cu_check_name((enum cu_check)c),
		     cu_outcome_name(r->outcome), cause);
	}
	/* Refused with no check failed (the stick pulled or failing while
	 * the bundle was staged): the cause stays on screen, as the
	 * message line may be taken by the next event ("Media removed"). */
	if (a->prep_rc && !a->busy && !app_check_failed(b)) {
		char l[2048], r[2100];
		stn_reason_words(&a->prep_diag, NULL, l, sizeof(l));
		snprintf(r, sizeof(r), "REFUSED: %s", l);
		app_view_wrap(v, STN_TONE_BAD, r, 76, 4);
	}
	const struct cu_token *tk = cu_bundle_tokens(b, &n);
	for (size_t i = 0; i < n; i++)
		line(v, tk[i].problem.code ? STN_TONE_WARN : STN_TONE_PLAIN,
		     "  token %s waives %s for %s: %.80s", tk[i].file,
		     cu_waiver_names(tk[i].waive, w, sizeof(w)),
		     tk[i].ndevices ? tk[i].devices[0] : "-",
		     tk[i].problem.code ? tk[i].problem.text : tk[i].reason);
	const struct cu_chain *ch = cu_bundle_chain(b);
	for (size_t i = 0; i < ch->n; i++) {
		cu_time_format(ch->hops[i].time, t);
		line(v, STN_TONE_DIM, "  custody %s  %s -> %s%s%s", t,
		     ch->hops[i].from, ch->hops[i].to,
		     ch->hops[i].seal[0] ? "  seal " : "", ch->hops[i].seal);
	}
	if (a->busy)
		line(v, STN_TONE_DIM, "%s", a->progress);
}

/* An install by exception never looks like a normal one: each is named,
 * wrapped whole, and the key that confirms it is D (issue 15 item 3). */
static void confirm_exceptions(struct stn_app *a, struct stn_app_view *v)
{
	if (!app_exception_selected(a))
		return;
	line(v, STN_TONE_BAD, "BY EXCEPTION, not a normal install:");
	for (size_t i = 0; i < a->ndevs; i++) {
		char t[STN_APP_TEXT + 40];
		if (!a->devs[i].pub.selected || !a->devs[i].pub.exception[0])
			continue;
		snprintf(t, sizeof(t), "%.12s: %s", a->devs[i].pub.label,
			 a->devs[i].pub.exception);
		app_view_wrap(v, STN_TONE_BAD, t, 76, 4);
	}
	line(v, STN_TONE_BAD, "Press D (capital) to install by exception; "
			      "y does not.");
}

static void confirm_view(struct stn_app *a, struct stn_app_view *v)
{
	const struct cu_manifest *m =
		cu_bundle_manifest(stn_prepared_bundle(a->prep));
	int reinstalls;
	size_t n = app_selected_count(a, &reinstalls);

	line(v, STN_TONE_WARN, "Install %s %s (sequence %llu) on %zu device(s)?",
	     m->name, m->version, (unsigned long long)m->sequence, n);
	for (size_t i = 0; i < a->ndevs; i++)
		if (a->devs[i].pub.selected)
			line(v, STN_TONE_PLAIN, "  %-12.12s %-11s %.150s",
			     a->devs[i].pub.label, a->devs[i].pub.ident_tag,
			     a->devs[i].pub.identity);
	confirm_exceptions(a, v);
	if (reinstalls)
		line(v, STN_TONE_WARN,
		     "%d of them already have this sequence: y reinstalls",
		     reinstalls);
	line(v, STN_TONE_PLAIN, "This writes to the devices and cannot be "
				"undone.");
}

static void result_view(struct stn_app *a, struct stn_app_view *v)
{
	size_t ok = 0, failed = 0, skipped = 0;

	for (size_t i = 0; i < a->ndevs; i++) {
		const struct stn_app_device *p = &a->devs[i].pub;
		switch (p->outcome) {
		case STN_OUT_DONE: ok++; break;
		case STN_OUT_FAILED: failed++; break;
		case STN_OUT_SKIPPED: skipped++; break;
		default: break;
		}
	}
	line(v, failed || skipped ? STN_TONE_BAD : STN_TONE_GOOD,
	     "%zu installed, %zu failed, %zu not installed", ok, failed,
	     skipped);
}

void stn_app_view(struct stn_app *a, struct stn_app_view *v)
{
	static const char *const help[] = {
		[STN_SCR_SIGNIN] = "type  Enter next  Backspace erase  "
				   "Esc back",
		[STN_SCR_HOME] = "m/Enter media  j journal  x export report  "
				 "r rescan  q sign out  ? help",
		[STN_SCR_BUNDLES] = "Up/Down choose  Enter verify  r rescan  "
				    "Esc back  ? help",
		[STN_SCR_BUNDLE] = "Up/Down device  Space select  p install  "
				   "Enter/d why  Esc back  ? help",
		[STN_SCR_CONFIRM] = "y install  n/Esc go back  ? help",
		[STN_SCR_PUSH] = "installing: wait for every device  ? help",
		[STN_SCR_RESULT] = "Enter continue  d read results whole  "
				   "? help",
		[STN_SCR_JOURNAL] = "Up/Down choose  Enter/d read whole  "
				    "Esc back  ? help",
		[STN_SCR_BYE] = "",
		[STN_SCR_QUIT] = "y quit the station  n/Esc stay",
	};
	char t[CU_TIME_LEN + 1];

	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&a->lock);
	/* The push screen turns into the result once every device is done,
	 * without waiting for a key. */
	if (a->screen == STN_SCR_PUSH && !app_install_running(a)) {
		a->screen = STN_SCR_RESULT;
		app_say(a, STN_TONE_PLAIN, "Enter to continue");
	}
	v->screen = a->screen;
	cu_time_format((int64_t)time(NULL), t);
	snprintf(v->header, sizeof(v->header), "station %s  site %s  %s  %s",
		 a->cfg->id, a->cfg->site,
		 a->session ? stn_session_technician(a->session)
			    : "(not signed in)",
		 t);
	/* Overlays are past the table: they set their own help line. */
	snprintf(v->help, sizeof(v->help), "%s",
		 (size_t)a->screen < sizeof(help) / sizeof(help[0]) &&
				 help[a->screen]
			 ? help[a->screen]
			 : "");
	if (a->screen == STN_SCR_SIGNIN && !a->field)
		snprintf(v->help, sizeof(v->help), "type  Enter next  "
			 "Backspace erase  Esc quit");
	if (a->screen == STN_SCR_CONFIRM && app_exception_selected(a))
		snprintf(v->help, sizeof(v->help), "D (capital) install BY "
			 "EXCEPTION  n/Esc go back  ? help");
	/* Only offer what the key would do: a refused bundle installs
	 * nothing, and nothing is chosen while it is being verified. */
	if (a->screen == STN_SCR_BUNDLE && a->busy)
		snprintf(v->help, sizeof(v->help), "verifying: wait  ? help");
	else if (a->screen == STN_SCR_BUNDLE && app_bundle_refused(a))
		snprintf(v->help, sizeof(v->help), "refused: nothing to install"
			 "  Enter/d why  Up/Down device  Esc back  ? help");
	snprintf(v->message, sizeof(v->message), "%s", a->message);
	v->message_tone = a->tone;
	v->busy = a->busy;
	snprintf(v->signin_id, sizeof(v->signin_id), "%s", a->id);
	v->signin_pin_len = a->checking ? a->pin_shown : (int)strlen(a->pin);
	v->signin_checking = a->checking;
	v->signin_field = a->field;
	memcpy(v->bundles, a->bundles, a->nbundles * sizeof(a->bundles[0]));
	v->nbundles = a->nbundles;
	for (size_t i = 0; i < a->ndevs; i++)
		v->devices[i] = a->devs[i].pub;
	v->ndevices = a->ndevs;
	switch (a->screen) {
	case STN_SCR_HOME: home_view(a, v); break;
	case STN_SCR_BUNDLES: v->cursor = a->cursor; break;
	case STN_SCR_BUNDLE:
		v->cursor = a->dev_cursor;
		bundle_view(a, v);
		break;
	case STN_SCR_CONFIRM: confirm_view(a, v); break;
	case STN_SCR_RESULT: result_view(a, v); break;
	case STN_SCR_DETAIL:
	case STN_SCR_HELP: app_overlay_view(a, v); break;
	case STN_SCR_JOURNAL:
		v->cursor = a->jcur - a->jtop;
		for (size_t i = a->jtop; i < a->njlines && v->nlines <
							      STN_APP_LINES;
		     i++)
			v->lines[v->nlines++] = a->jlines[i];
		break;
	default: break;
	}
	pthread_mutex_unlock(&a->lock);
}
