/* station/app.h: the technician's session as a state machine, the pure
 * core of the text UI.  The front end turns keys into stn_app_key events
 * and draws stn_app_view snapshots; every decision (who may sign in, what
 * is installable, what to confirm, what a result means) is made here.
 * Slow work (staging, verifying, asking devices, installing, exporting)
 * runs in worker threads, so the screen never waits on I/O; a snapshot is
 * copied under a lock and is consistent. */
#ifndef STN_APP_H
#define STN_APP_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;

#define STN_APP_DEVICES 16
#define STN_APP_BUNDLES 32
#define STN_APP_LINES 64  /* detail and journal lines in a view */
#define STN_APP_TEXT 200  /* characters of one line of text */

enum stn_app_screen {
	STN_SCR_SIGNIN = 0,
	STN_SCR_HOME,
	STN_SCR_BUNDLES,
	STN_SCR_BUNDLE,
	STN_SCR_CONFIRM,
	STN_SCR_PUSH,
	STN_SCR_RESULT,
	STN_SCR_JOURNAL,
	STN_SCR_BYE,
	/* Overlays over the screen in `back`: Esc returns to it. */
	STN_SCR_DETAIL, /* one reason read whole: title + wrapped lines */
	STN_SCR_HELP,   /* `?`: what every key does on the screen below */
	STN_SCR_QUIT,   /* "Quit the station?" asked before it ends */
};

enum stn_app_key {
	STN_KEY_TICK = 0, /* time passed: refresh */
	STN_KEY_UP,
	STN_KEY_DOWN,
	STN_KEY_ENTER,
	STN_KEY_BACK,   /* Esc or left arrow */
	STN_KEY_TOGGLE, /* space */
	STN_KEY_ERASE,  /* backspace */
	STN_KEY_CHAR,   /* a printable character in `ch` */
	STN_KEY_PGUP,   /* page up / page down: scroll long text */
	STN_KEY_PGDN,
};

enum stn_app_tone { STN_TONE_PLAIN = 0, STN_TONE_GOOD, STN_TONE_BAD,
		    STN_TONE_WARN, STN_TONE_DIM };

struct stn_app_line {
	char text[STN_APP_TEXT];
	enum stn_app_tone tone;
};

enum stn_app_outcome {
	STN_OUT_NONE = 0,  /* not part of this push */
	STN_OUT_RUNNING,
	STN_OUT_DONE,      /* installed, with proof or said without */
	STN_OUT_FAILED,
	STN_OUT_SKIPPED,   /* refused before any byte was written */
};

struct stn_app_device {
	char label[33];     /* [port LABEL] */
	char spec[300];
	char identity[STN_APP_TEXT]; /* "TX-200 revB SN-0001 seq 41" or why not */
	/* Whether the unit proved who it is (formats §9), in the
	 * technician's words (station/identity_words.h): ident_tag is
	 * "GENUINE", "NOT GENUINE", ... ("" before the unit answered);
	 * ident is "" when the verdict already is the identity's refusal. */
	char ident_tag[16];
	char ident[STN_APP_TEXT];
	enum stn_app_tone ident_tone;
	int selected;
	int verdict_known;
	int installable;
	char verdict[STN_APP_TEXT];  /* "ok: ..." or the refusal */
	/* during and after a push */
	enum stn_app_outcome outcome;
	char phase[16];
	uint64_t done, total;
	double rate;       /* bytes per second */
	int64_t eta;       /* seconds left, -1 unknown */
	char result[STN_APP_TEXT];
	/* "" or, for an install by exception, what it is: "DOWNGRADE 2.4.1
	 * -> 2.2.0 under exception token ..." (confirm and result say it) */
	char exception[STN_APP_TEXT];
};

struct stn_app_bundle {
	char dir[1024];
	char title[STN_APP_TEXT]; /* "tx200-app 2.4.1 seq 42" or a problem */
};

struct stn_app_view {
	enum stn_app_screen screen;
	char header[STN_APP_TEXT];  /* station, site, technician, clock */
	char help[STN_APP_TEXT];    /* the keys this screen takes */
	char message[STN_APP_TEXT]; /* the last thing to tell the technician */
	enum stn_app_tone message_tone;
	int busy;                   /* background work under way */
	/* sign-in */
	char signin_id[33];
	int signin_pin_len;         /* shown as stars */
	int signin_field;           /* 0 technician, 1 PIN */
	int signin_checking;        /* the PIN is being checked (a worker;
				     * keys wait for its outcome) */
	/* lists */
	struct stn_app_bundle bundles[STN_APP_BUNDLES];
	size_t nbundles;
	struct stn_app_device devices[STN_APP_DEVICES];
	size_t ndevices;
	size_t cursor;              /* selected row of the current list */
	/* home, bundle detail, confirm, result, journal text */
	struct stn_app_line lines[STN_APP_LINES];
	size_t nlines;
	/* STN_SCR_DETAIL and STN_SCR_HELP: what is shown, lines[] from
	 * `top` (the core scrolls; the front end draws what fits) */
	char title[STN_APP_TEXT];
	size_t top;
};

struct stn_app;

/* Load the configuration (errors name file and line); no session yet:
 * that opens when a technician signs in. */
int stn_app_new(const char *config_path, struct stn_app **out,
		struct stn_diag *d);
/* Waits for any worker, closes the session (journaling its end). */
void stn_app_free(struct stn_app *a);
/* The station was told to stop (SIGINT, SIGTERM, SIGHUP): every running
 * install stops and is journaled as failed (rule interrupted), and the
 * session ends with result interrupted when stn_app_free follows. */
void stn_app_interrupt(struct stn_app *a, int signal);

/* Sign out after this many seconds without a key instead of the
 * configuration's idle-signout; only ever shorter (`station demo` with
 * STATION_DEMO_IDLE_SIGNOUT, so a test need not wait a minute). */
void stn_app_set_idle_signout(struct stn_app *a, int64_t seconds);

void stn_app_key(struct stn_app *a, enum stn_app_key key, int ch);
/* Copy the current state for drawing. */
void stn_app_view(struct stn_app *a, struct stn_app_view *v);
/* Non-zero once the station is to end (quit confirmed with y on the
 * sign-in screen; signing out returns to sign-in instead). */
int stn_app_finished(struct stn_app *a);

#endif
