/* station/app_detail.c: the text UI's overlays and the words of its
 * reasons (issue 15 items 1, 3, 5).  STN_SCR_DETAIL shows one reason
 * whole, cause first (station/reason_words.h), wrapped at word boundaries
 * to 78 columns and scrollable; STN_SCR_HELP (`?`) lists what every key
 * does on the screen below.  Esc (or Enter, q) returns to that screen.
 * Also the words for an install by exception, which the confirm and
 * result screens show.  Caller holds the lock throughout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custody/token.h"
#include "custody/verify.h"
#include "station/app_internal.h"
#include "station/base/error.h"
#include "station/base/rfc3339.h"
#include "station/journal.h"
#include "station/reason_words.h"

#define DETAIL_WIDTH 78 /* columns of the overlay's text */
#define DETAIL_PAGE 16  /* rows PgUp/PgDn move (the overlay shows 18) */

/* --- building the overlay ---------------------------------------------- */

static size_t olines_cap(const struct stn_app *a)
{
	return sizeof(a->olines) / sizeof(a->olines[0]);
}

/* Append text wrapped at spaces to `width` columns (a word longer than
 * that, a path, is cut where the line ends and goes on on the next),
 * each row after the first indented by `indent` spaces. */
static void wrap_into(struct stn_app_line *lines, size_t *n, size_t cap,
		      enum stn_app_tone tone, const char *text, size_t width,
		      size_t indent)
{
	const char *t = text;
	int first = 1;

	do {
		size_t pad = first ? 0 : indent, w = width - pad;
		size_t len = strlen(t), k = len;

		if (*n == cap)
			return;
		if (len > w) {
			k = w;
			while (k > 0 && t[k] != ' ')
				k--;
			if (k == 0) {
				k = w;
				/* not inside a UTF-8 character */
				while (k > 1 && ((unsigned char)t[k] & 0xC0) ==
							0x80)
					k--;
			}
		}
		snprintf(lines[*n].text, STN_APP_TEXT, "%*s%.*s", (int)pad, "",
			 (int)k, t);
		lines[(*n)++].tone = tone;
		t += k;
		while (*t == ' ')
			t++;
		first = 0;
	} while (*t);
}

void app_view_wrap(struct stn_app_view *v, enum stn_app_tone tone,
		   const char *text, size_t width, size_t indent)
{
	char t[STN_APP_TEXT * 2];
	snprintf(t, sizeof(t), "  %s", text);
	wrap_into(v->lines, &v->nlines, STN_APP_LINES, tone, t, width, indent);
}

static void para(struct stn_app *a, enum stn_app_tone tone, const char *text)
{
	wrap_into(a->olines, &a->nolines, olines_cap(a), tone, text,
		  DETAIL_WIDTH, 2);
}

static void open_overlay(struct stn_app *a, enum stn_app_screen which,
			 const char *title)
{
	a->overlay_back = a->screen;
	a->screen = which;
	a->nolines = a->otop = 0;
	snprintf(a->otitle, sizeof(a->otitle), "%s", title);
}

/* A refusal read whole: the cause in words, the rule, the file or device,
 * and what the check said, as it said it. */
static void explain(struct stn_app *a, const struct stn_diag *d,
		    const struct stn_reason_ctx *ctx)
{
	char buf[2400];

	stn_reason_cause(d, ctx, buf, sizeof(buf));
	para(a, STN_TONE_BAD, buf);
	snprintf(buf, sizeof(buf), "Rule: %s (%s)", stn_err_rule(d->code),
		 stn_strerror(d->code));
	para(a, STN_TONE_PLAIN, buf);
	stn_reason_place(d, buf, sizeof(buf) - 40);
	if (buf[0]) {
		char f[2500];
		snprintf(f, sizeof(f), "File or device: %s", buf);
		para(a, STN_TONE_PLAIN, f);
	}
	snprintf(buf, sizeof(buf), "The check said: %s", d->text);
	para(a, STN_TONE_DIM, buf);
}

void app_reason_line(const struct app_dev *dv, const struct stn_diag *d,
		     char *buf, size_t cap)
{
	const struct stn_reason_ctx ctx = {dv->bver, dv->uver};
	stn_reason_words(d, &ctx, buf, cap);
}

static void device_detail(struct stn_app *a, const struct app_dev *dv)
{
	const struct stn_reason_ctx ctx = {dv->bver, dv->uver};
	const struct stn_app_device *p = &dv->pub;
	char buf[600];

	snprintf(buf, sizeof(buf), "%s  %s  %s", p->label, p->spec,
		 p->identity);
	para(a, STN_TONE_PLAIN, buf);
	if (p->outcome != STN_OUT_NONE && p->result[0]) {
		para(a, p->outcome == STN_OUT_DONE ? STN_TONE_GOOD
						   : STN_TONE_BAD, p->result);
		if (dv->result_why.code)
			explain(a, &dv->result_why, &ctx);
	} else if (dv->why.code) {
		explain(a, &dv->why, &ctx);
	} else if (p->verdict_known) {
		para(a, p->installable ? STN_TONE_GOOD : STN_TONE_BAD,
		     p->verdict);
	}
	if (p->exception[0])
		para(a, STN_TONE_WARN, p->exception);
	if (p->ident[0])
		para(a, p->ident_tone, p->ident);
	para(a, STN_TONE_PLAIN, " ");
}

/* The bundle's own refusals: what stn_prepare said, and each failed
 * check. */
static void bundle_detail(struct stn_app *a)
{
	const struct cu_bundle *b = a->prep ? stn_prepared_bundle(a->prep)
					    : NULL;

	if (!b) {
		if (a->prep_rc) {
			para(a, STN_TONE_BAD, "The bundle was refused:");
			explain(a, &a->prep_diag, NULL);
		}
		return;
	}
	for (int c = 0; c < CU_NCHECKS; c++) {
		const struct cu_check_result *r =
			cu_bundle_check(b, (enum cu_check)c);
		char head[80];
		if (r->outcome != CU_FAILED)
			continue;
		snprintf(head, sizeof(head), "Bundle check %s FAILED:",
			 cu_check_name((enum cu_check)c));
		para(a, STN_TONE_BAD, head);
		explain(a, &r->diag, NULL);
	}
}

/* --- help ---------------------------------------------------------------- */

static const char *const help_home[] = {
	"m or Enter   the bundles on the media",
	"j            the journal of this station",
	"x            export the signed report to the media",
	"r            scan the media again",
	"q            sign out (Esc here does not)",
	NULL};
static const char *const help_bundles[] = {
	"Up/Down      choose a bundle",
	"Enter        copy and verify the bundle, then ask the devices",
	"r            scan the media again",
	"Esc          back home",
	NULL};
static const char *const help_bundle[] = {
	"Up/Down      choose a device",
	"Space        select or unselect the device for the install",
	"p            install on the selected devices (asks first)",
	"Enter or d   read the reason of the device (and the bundle's "
	"failed checks) whole",
	"Esc          back to the bundles",
	NULL};
static const char *const help_confirm[] = {
	"y            install on the devices listed",
	"D (capital)  install when the list says BY EXCEPTION (a downgrade or "
	"a waived check under an exception token): y does not do it",
	"n or Esc     go back, nothing installed",
	NULL};
static const char *const help_push[] = {
	"(none)       installs cannot be stopped from the keyboard: a half "
	"written device is worse than a wait",
	NULL};
static const char *const help_result[] = {
	"d            read every device's result and reason whole",
	"Enter or Esc back to the bundles",
	NULL};
static const char *const help_journal[] = {
	"Up/Down      choose an event",
	"Enter or d   read the event whole",
	"Esc          back home",
	NULL};
static const char *const help_overlay[] = {
	"Up/Down      scroll one line",
	"PgUp/PgDn    scroll a page",
	"Esc, Enter   back to the screen below",
	NULL};

static void open_help(struct stn_app *a)
{
	const char *const *keys;

	switch (a->screen) {
	case STN_SCR_HOME: keys = help_home; break;
	case STN_SCR_BUNDLES: keys = help_bundles; break;
	case STN_SCR_BUNDLE: keys = help_bundle; break;
	case STN_SCR_CONFIRM: keys = help_confirm; break;
	case STN_SCR_PUSH: keys = help_push; break;
	case STN_SCR_RESULT: keys = help_result; break;
	case STN_SCR_JOURNAL: keys = help_journal; break;
	default: return;
	}
	open_overlay(a, STN_SCR_HELP, "Help: the keys of this screen");
	for (size_t i = 0; keys[i]; i++)
		wrap_into(a->olines, &a->nolines, olines_cap(a),
			  STN_TONE_PLAIN, keys[i], DETAIL_WIDTH, 13);
	para(a, STN_TONE_PLAIN, " ");
	para(a, STN_TONE_DIM, "On every screen: ? this help. In a reason or "
			      "this help:");
	for (size_t i = 0; help_overlay[i]; i++)
		para(a, STN_TONE_DIM, help_overlay[i]);
}

/* --- keys and view -------------------------------------------------------- */

static int open_detail(struct stn_app *a, enum stn_app_key key, int ch)
{
	int d = key == STN_KEY_CHAR && ch == 'd';
	int enter = key == STN_KEY_ENTER;

	switch (a->screen) {
	case STN_SCR_BUNDLE:
		if ((!d && !enter) || a->busy)
			return 0;
		open_overlay(a, STN_SCR_DETAIL, "Why: the device under the "
						"cursor and the bundle");
		if (a->ndevs)
			device_detail(a, &a->devs[a->dev_cursor]);
		bundle_detail(a);
		if (!a->nolines)
			para(a, STN_TONE_PLAIN, "Nothing refused here.");
		return 1;
	case STN_SCR_RESULT:
		if (!d)
			return 0;
		open_overlay(a, STN_SCR_DETAIL, "Results, whole");
		for (size_t i = 0; i < a->ndevs; i++)
			if (a->devs[i].pub.outcome != STN_OUT_NONE)
				device_detail(a, &a->devs[i]);
		return 1;
	case STN_SCR_JOURNAL:
		if ((!d && !enter) || !a->njlines)
			return 0;
		open_overlay(a, STN_SCR_DETAIL, "Journal event, whole");
		para(a, a->jlines[a->jcur].tone, a->jfull[a->jcur]);
		return 1;
	default: return 0;
	}
}

int app_overlay_key(struct stn_app *a, enum stn_app_key key, int ch)
{
	size_t last = a->nolines ? a->nolines - 1 : 0;

	if (a->screen != STN_SCR_DETAIL && a->screen != STN_SCR_HELP) {
		if (key == STN_KEY_CHAR && ch == '?' &&
		    a->screen != STN_SCR_SIGNIN && a->screen != STN_SCR_BYE &&
		    a->screen != STN_SCR_QUIT) {
			open_help(a);
			return 1;
		}
		return open_detail(a, key, ch);
	}
	switch (key) {
	case STN_KEY_UP:
		if (a->otop > 0)
			a->otop--;
		break;
	case STN_KEY_DOWN:
		if (a->otop < last)
			a->otop++;
		break;
	case STN_KEY_PGUP:
		a->otop = a->otop > DETAIL_PAGE ? a->otop - DETAIL_PAGE : 0;
		break;
	case STN_KEY_PGDN:
		a->otop = a->otop + DETAIL_PAGE < last ? a->otop + DETAIL_PAGE
						       : last;
		break;
	case STN_KEY_BACK:
	case STN_KEY_ENTER:
		a->screen = a->overlay_back;
		break;
	case STN_KEY_CHAR:
		if (ch == 'q' || ch == '?' || ch == 'd')
			a->screen = a->overlay_back;
		break;
	default: break; /* a tick: the screen below keeps its state */
	}
	return 1;
}

void app_overlay_view(struct stn_app *a, struct stn_app_view *v)
{
	snprintf(v->title, sizeof(v->title), "%s", a->otitle);
	v->top = 0; /* lines[] already start at the scroll offset */
	v->nlines = 0;
	for (size_t i = a->otop; i < a->nolines && v->nlines < STN_APP_LINES;
	     i++)
		v->lines[v->nlines++] = a->olines[i];
	snprintf(v->help, sizeof(v->help), "Up/Down PgUp/PgDn scroll  "
		 "Esc back  (line %zu of %zu)", a->nolines ? a->otop + 1 : 0,
		 a->nolines);
}

/* --- exceptions ------------------------------------------------------------ */

void app_exception_words(const struct stn_outcome *rep, const char *bver,
			 const char *uver, char *buf, size_t cap)
{
	size_t nt;
	const struct cu_token *tk;
	const struct cu_token *t;
	char w[64];

	buf[0] = '\0';
	if (!rep->bundle || !rep->device.napplied)
		return;
	tk = cu_bundle_tokens(rep->bundle, &nt);
	if (rep->device.applied[0] >= nt)
		return;
	t = &tk[rep->device.applied[0]];
	if (rep->device.sequence.outcome == CU_WAIVED)
		snprintf(buf, cap, "DOWNGRADE %s -> %s under exception token "
			 "%.40s (id %.12s...), reason: %.90s",
			 uver && uver[0] ? uver : "(installed)",
			 bver, t->file, t->id, t->reason);
	else
		snprintf(buf, cap, "UNDER EXCEPTION TOKEN %.40s (id %.12s...) "
			 "waiving %s, reason: %.90s", t->file, t->id,
			 cu_waiver_names(t->waive, w, sizeof(w)), t->reason);
}

int app_exception_selected(const struct stn_app *a)
{
	for (size_t i = 0; i < a->ndevs; i++)
		if (a->devs[i].pub.selected && a->devs[i].pub.exception[0])
			return 1;
	return 0;
}

/* --- the journal ------------------------------------------------------------ */

void app_journal_text(const struct stn_event *e, char *buf, size_t cap)
{
	char t[CU_TIME_LEN + 1], words[1600];
	const char *where = "", *reason = NULL;
	int code = 0;
	size_t used;

	for (size_t i = 0; i < e->nfields; i++) {
		const char *k = e->fields[i].key, *v = e->fields[i].value;
		if (!strcmp(k, "code"))
			code = atoi(v);
		else if (!strcmp(k, "where"))
			where = v;
		else if (!strcmp(k, "reason"))
			reason = v;
	}
	cu_time_format(e->time, t);
	used = (size_t)snprintf(buf, cap, "%4llu %.8s %s",
				(unsigned long long)e->seq, t + 11, e->type);
	/* Seq, time of day, type and the fields that say what happened; the
	 * session id and hashes are in `station journal` for auditors.  A
	 * refusal's reason comes last, in words, cause first. */
	for (size_t i = 0; i < e->nfields && used < cap - 1; i++) {
		const char *k = e->fields[i].key;
		if (!strcmp(k, "bundle") || !strcmp(k, "dir") ||
		    !strcmp(k, "where") || !strcmp(k, "code") ||
		    !strcmp(k, "use") || !strcmp(k, "images"))
			continue;
		if (code && reason && (!strcmp(k, "rule") ||
				       !strcmp(k, "reason")))
			continue;
		used += (size_t)snprintf(buf + used, cap - used, " %s=%s", k,
					 e->fields[i].value);
	}
	if (code && reason && used < cap - 1) {
		struct stn_diag d;
		stn_diag_init(&d);
		stn_fail(&d, code, where, "%s", reason);
		stn_reason_words(&d, NULL, words, sizeof(words));
		snprintf(buf + used, cap - used, ": %s", words);
	}
}
