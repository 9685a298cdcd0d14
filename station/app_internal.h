/* station/app_internal.h: the state shared by the text UI core's two
 * halves, station/app.c (events and workers) and station/app_view.c
 * (building snapshots).  Private to those two files. */
#ifndef STN_APP_INTERNAL_H
#define STN_APP_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "station/app.h"
#include "station/device.h"
#include "station/install.h"
#include "station/media_watch.h"
#include "station/signin.h"

struct app_dev {
	struct stn_app_device pub;
	struct stn_app *app;
	pthread_t thread;
	int live;
	int64_t started_ms;
	/* the refusal behind pub.verdict / pub.result, read whole in the
	 * detail overlay (station/app_detail.c) */
	struct stn_diag why, result_why;
	char bver[129], uver[129]; /* versions, for the words of a downgrade */
};

struct stn_app {
	pthread_mutex_t lock;
	int interrupted; /* the signal that stopped the station, or 0 */
	char *config_path;
	struct stn_config *cfg;
	struct stn_session *session;
	enum stn_app_screen screen, back_to;
	int finished;
	char message[STN_APP_TEXT];
	enum stn_app_tone tone;
	unsigned said;      /* counts app_say: a screen change that said
			     * nothing clears the message line */
	/* idle sign-out: no key for idle_ms while signed in (never while a
	 * worker or an install runs: counted from when it ended) */
	int64_t idle_ms, last_key_ms;
	/* sign-in */
	char id[33], pin[65];
	int field;
	int checking;     /* the sign-in worker has the PIN */
	int pin_shown;    /* stars shown while it checks */
	int signin_ready; /* its outcome, an event for the next key or tick */
	int signin_rc;    /* 0, STN_E_TECHNICIAN (wrong PIN) or why the
			   * session did not open (signin_diag) */
	struct stn_diag signin_diag;
	struct stn_session *signin_session;
	/* the guard's answer (station/signin.h) when it did not let the id
	 * in; signin_wait: its countdown is on screen and Enter waits */
	struct stn_signin_result signin_res;
	int signin_wait;
	/* USB DFU units come and go: hot-plug events refresh the list */
	struct stn_device_watch *usb_watch;
	int usb_changed;
	size_t nports; /* devs[0..nports) are configured ports */
	/* media: watched (and in appliance mode, mount-media = yes, mounted)
	 * so insertion and removal reach the core as journaled events */
	struct stn_media_watch *media;
	int media_changed;
	/* report sticks mounted under cfg->report_media, in the order they
	 * came; x exports to the last one */
	char report_sticks[4][4096];
	size_t nreport_sticks;
	char export_dir[4096]; /* where the export worker writes */
	struct stn_app_bundle bundles[STN_APP_BUNDLES];
	size_t nbundles, cursor;
	size_t newest; /* where the list's cursor starts (rescan) */
	/* the bundle in hand */
	struct stn_prepared *prep;
	int prep_rc;
	struct stn_diag prep_diag;
	int preparing;
	char progress[STN_APP_TEXT];
	struct app_dev devs[STN_APP_DEVICES];
	size_t ndevs, dev_cursor;
	int allow_reinstall;
	/* one background worker besides the installs */
	pthread_t worker;
	int worker_live, busy;
	/* journal browser */
	struct stn_app_line jlines[STN_APP_LINES * 4];
	size_t njlines, jtop, jcur;
	char jfull[STN_APP_LINES * 4][700]; /* each journal line whole */
	/* STN_SCR_DETAIL and STN_SCR_HELP (station/app_detail.c) */
	enum stn_app_screen overlay_back;
	char otitle[STN_APP_TEXT];
	struct stn_app_line olines[STN_APP_LINES * 2];
	size_t nolines, otop;
};

/* The overlays (station/app_detail.c; caller holds the lock).
 * app_overlay_key takes a key first: 1 when it was the overlay's (or
 * opened one: `?` help; Enter or `d` on a reason), 0 to pass it on. */
int app_overlay_key(struct stn_app *a, enum stn_app_key key, int ch);
void app_overlay_view(struct stn_app *a, struct stn_app_view *v);
/* The reason a device's verdict or result shows, one line, cause first
 * (station/reason_words.h) with the versions of a downgrade. */
void app_reason_line(const struct app_dev *dv, const struct stn_diag *d,
		     char *buf, size_t cap);
/* What an install by exception is, for confirm and result: "DOWNGRADE
 * 2.4.1 -> 2.2.0 under exception token F (id ...), reason R" or "UNDER
 * EXCEPTION TOKEN F waiving W, reason R" ("" when no token applied). */
void app_exception_words(const struct stn_outcome *rep, const char *bver,
			 const char *uver, char *buf, size_t cap);
/* Append text to v->lines wrapped at spaces to width columns, rows after
 * the first indented by indent spaces (prefixed by one space). */
void app_view_wrap(struct stn_app_view *v, enum stn_app_tone tone,
		   const char *text, size_t width, size_t indent);
/* Whether a selected device would be installed by exception. */
int app_exception_selected(const struct stn_app *a);
/* One journal line: seq, time, type, the fields that say what happened,
 * and a refusal's reason in words, cause first. */
struct stn_event;
void app_journal_text(const struct stn_event *e, char *buf, size_t cap);

/* Set the message line (caller holds the lock). */
void app_say(struct stn_app *a, enum stn_app_tone tone, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Whether any selected device is still installing. */
int app_install_running(const struct stn_app *a);
/* Whether the bundle in hand was refused (nothing can be installed). */
/* Whether any of the bundle's checks failed (a refusal without one came
 * from outside the checks: the medium, the staging area). */
int app_check_failed(const struct cu_bundle *b);
int app_bundle_refused(const struct stn_app *a);
/* Selected devices, and how many of them are reinstalls. */
size_t app_selected_count(const struct stn_app *a, int *reinstalls);

#endif
