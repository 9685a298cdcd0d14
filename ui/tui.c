/* ui/tui.c: the ncurses (wide-character) front end.  It turns keys into
 * station/app.h events and draws the app's snapshots; it decides nothing.
 * Works on an 80x24 console, in colour or without (NO_COLOR, monochrome
 * terminals, where tone falls back to bold and dim), and redraws on
 * resize. */
#include <curses.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "station/app.h"
#include "station/base/error.h"
#include "ui/common.h"
#include "ui/tui.h"

enum { PAIR_GOOD = 1, PAIR_BAD, PAIR_WARN, PAIR_BAR };

static int use_colour;

static attr_t tone_attr(enum stn_app_tone t)
{
	switch (t) {
	case STN_TONE_GOOD:
		return use_colour ? COLOR_PAIR(PAIR_GOOD) | A_BOLD : A_BOLD;
	case STN_TONE_BAD:
		return use_colour ? COLOR_PAIR(PAIR_BAD) | A_BOLD
				  : A_BOLD | A_UNDERLINE;
	case STN_TONE_WARN:
		return use_colour ? COLOR_PAIR(PAIR_WARN) | A_BOLD : A_BOLD;
	case STN_TONE_DIM: return A_DIM;
	default: return A_NORMAL;
	}
}

/* How many bytes of s fit in `cols` terminal columns (multibyte aware;
 * s is already sanitised, so every character is printable). */
static size_t fit_bytes(const char *s, int cols)
{
	mbstate_t st;
	size_t at = 0, len = strlen(s);

	memset(&st, 0, sizeof(st));
	while (at < len) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s + at, len - at, &st);
		int cw;

		if (n == (size_t)-1 || n == (size_t)-2 || n == 0)
			n = 1, cw = 1; /* not this locale's: one column a byte */
		else if ((cw = wcwidth(wc)) < 0)
			cw = 1;
		if (cw > cols)
			break;
		cols -= cw;
		at += n;
	}
	return at;
}

/* Text at (y, x), cut to the width left on the line.  A cut is never
 * silent: the last column shows '>' (as `less -S` does), so a technician
 * knows there is more, and the detail view (d) has it whole. */
static void put(int y, int x, attr_t attr, const char *text)
{
	int w = COLS - x;
	const char *t;
	size_t n;

	if (y < 0 || y >= LINES || w <= 0)
		return;
	/* Every string on screen may quote a medium or a device: a newline
	 * or ESC in it must not move the cursor or repaint the screen. */
	t = UI_SAFE(text);
	n = fit_bytes(t, w);
	attron(attr);
	if (t[n] == '\0' || w < 2) {
		mvaddnstr(y, x, t, (int)n);
	} else {
		mvaddnstr(y, x, t, (int)fit_bytes(t, w - 1));
		mvaddch(y, COLS - 1, '>');
	}
	attroff(attr);
}

static void bar_line(int y, attr_t attr, const char *text)
{
	attron(attr);
	mvhline(y, 0, ' ', COLS);
	mvaddnstr(y, 1, UI_SAFE(text), COLS - 2);
	attroff(attr);
}

static void draw_lines(const struct stn_app_view *v, int top, int bottom)
{
	for (size_t i = 0; i < v->nlines && top + (int)i < bottom; i++)
		put(top + (int)i, 1, tone_attr(v->lines[i].tone),
		    v->lines[i].text);
}

static void draw_signin(const struct stn_app_view *v)
{
	char stars[70];
	int n = v->signin_pin_len < 64 ? v->signin_pin_len : 64;

	memset(stars, '*', (size_t)n);
	stars[n] = '\0';
	put(3, 2, A_BOLD, "Sign in");
	put(5, 2, A_NORMAL, "Technician:");
	put(5, 15, v->signin_field == 0 ? A_REVERSE : A_NORMAL,
	    v->signin_id[0] ? v->signin_id : " ");
	if (v->signin_field == 1) {
		put(7, 2, A_NORMAL, "PIN:");
		put(7, 15, A_REVERSE, n ? stars : " ");
	}
	if (v->signin_checking)
		put(9, 2, A_DIM, "checking...");
}

static void draw_bundles(const struct stn_app_view *v, int bottom)
{
	put(2, 1, A_BOLD, "Bundles on the media");
	if (!v->nbundles)
		put(4, 2, tone_attr(STN_TONE_WARN), "No bundle found. Insert "
						    "media, then r to rescan.");
	for (size_t i = 0; i < v->nbundles && 4 + (int)i * 2 < bottom; i++) {
		int y = 4 + (int)i * 2;
		attr_t a = i == v->cursor ? A_REVERSE : A_NORMAL;
		put(y, 2, a, i == v->cursor ? ">" : " ");
		put(y, 4, a, v->bundles[i].title);
		put(y + 1, 6, A_DIM, v->bundles[i].dir);
	}
}

/* Draw text from (y, x) wrapped at spaces to width w, at most max rows
 * and not past bottom (draw == 0: only count).  Returns the rows used.
 * The reason is the contract: wrapped whole rather than cut at the
 * screen edge. */
static int wrap(int y, int x, int w, int max, int bottom, attr_t attr,
		const char *text, int draw)
{
	const char *t = UI_SAFE(text);
	int rows = 0;

	if (w <= 0)
		return 0;
	while (*t && rows < max) {
		int n = (int)strlen(t);

		if (n > w) {
			n = w;
			/* Back to the last space, unless a word fills the
			 * line (then it is cut where the line ends). */
			while (n > 0 && t[n] != ' ')
				n--;
			if (n == 0)
				n = w;
		}
		if (draw && y + rows < bottom && y + rows < LINES) {
			attron(attr);
			mvaddnstr(y + rows, x, t, n);
			attroff(attr);
		}
		rows++;
		t += n;
		while (*t == ' ')
			t++;
	}
	return rows;
}

/* Rows one device takes in the list: its head line, its verdict, and
 * whether it proved who it is. */
#define DEV_X 6 /* where a device's verdict and identity lines start */

static int device_rows(const struct stn_app_device *d, int ident)
{
	int w = COLS - DEV_X - 1;

	return 1 +
	       wrap(0, 0, w, 3, 0, A_NORMAL,
		    d->verdict_known ? d->verdict : "checking...", 0) +
	       (ident ? wrap(0, 0, w, 2, 0, A_NORMAL, d->ident, 0) : 0);
}

/* Rows the device list takes: with every device's identity line
 * (all == 1), else with only the one under the cursor (the tag at the
 * right edge still says it for every device). */
static int devices_rows(const struct stn_app_view *v, int all)
{
	int n = 1;

	for (size_t i = 0; i < v->ndevices; i++)
		n += device_rows(&v->devices[i], all || i == v->cursor);
	return n;
}

static void draw_devices(const struct stn_app_view *v, int top, int bottom,
			 int with_cursor, int all_idents)
{
	int y = top + 1, w = COLS - DEV_X - 1;

	put(top, 1, A_BOLD, "Devices");
	for (size_t i = 0; i < v->ndevices && y < bottom; i++) {
		const struct stn_app_device *d = &v->devices[i];
		char head[STN_APP_TEXT + 40];
		attr_t a = with_cursor && i == v->cursor ? A_REVERSE : A_NORMAL;
		int tag = (int)strlen(d->ident_tag);
		attr_t va = !d->verdict_known ? A_DIM
			    : d->installable  ? tone_attr(STN_TONE_GOOD)
					      : tone_attr(STN_TONE_BAD);

		snprintf(head, sizeof(head), "%s [%c] %-10.10s %s",
			 with_cursor && i == v->cursor ? ">" : " ",
			 d->selected ? 'x' : ' ', d->label, d->identity);
		/* The head line leaves room for the identity tag at the
		 * right edge: GENUINE, NOT GENUINE, UNPROVEN... */
		attron(a);
		mvaddnstr(y, 1, UI_SAFE(head), COLS - 3 - tag);
		attroff(a);
		if (tag)
			put(y, COLS - 1 - tag, tone_attr(d->ident_tone),
			    d->ident_tag);
		y++;
		y += wrap(y, DEV_X, w, 3, bottom, va,
			  d->verdict_known ? d->verdict : "checking...", 1);
		if (all_idents || (with_cursor && i == v->cursor))
			y += wrap(y, DEV_X, w, 2, bottom,
				  tone_attr(d->ident_tone), d->ident, 1);
	}
}

static void draw_push(const struct stn_app_view *v, int bottom)
{
	int y = 2;

	put(y++, 1, A_BOLD, "Installing");
	for (size_t i = 0; i < v->ndevices && y + 2 < bottom; i++) {
		const struct stn_app_device *d = &v->devices[i];
		char a[32], b[32], r[32], line[STN_APP_TEXT + 64];
		int width = COLS - 44 > 10 ? COLS - 44 : 10, fill;

		if (d->outcome == STN_OUT_NONE)
			continue;
		ui_human_bytes((double)d->done, a, sizeof(a));
		ui_human_bytes((double)d->total, b, sizeof(b));
		ui_human_bytes(d->rate, r, sizeof(r));
		snprintf(line, sizeof(line), "%-10.10s %-8s %s of %s  %s/s  %s",
			 d->label, d->phase, a, b, r,
			 d->eta >= 0 ? "" : "");
		if (d->eta >= 0 && strcmp(d->phase, "done") != 0) {
			char eta[40];
			snprintf(eta, sizeof(eta), "%llds left",
				 (long long)d->eta);
			strncat(line, eta, sizeof(line) - strlen(line) - 1);
		}
		put(y++, 2, A_NORMAL, line);
		fill = d->total ? (int)((double)d->done / (double)d->total *
					width)
				: 0;
		mvaddch(y, 4, '[');
		attron(use_colour ? COLOR_PAIR(PAIR_BAR) : A_REVERSE);
		for (int k = 0; k < fill; k++)
			mvaddch(y, 5 + k, '#');
		attroff(use_colour ? COLOR_PAIR(PAIR_BAR) : A_REVERSE);
		mvhline(y, 5 + fill, '.', width - fill);
		mvaddch(y, 5 + width, ']');
		if (d->result[0])
			put(y, 8 + width,
			    tone_attr(d->outcome == STN_OUT_DONE ? STN_TONE_GOOD
								 : STN_TONE_BAD),
			    d->outcome == STN_OUT_DONE ? "OK" : "FAIL");
		y += 2;
	}
}

static void draw_result(const struct stn_app_view *v, int bottom)
{
	int y = 4;

	put(2, 1, tone_attr(v->lines[0].tone), v->lines[0].text);
	for (size_t i = 0; i < v->ndevices && y + 1 < bottom; i++) {
		const struct stn_app_device *d = &v->devices[i];
		const char *word;
		enum stn_app_tone t;

		switch (d->outcome) {
		case STN_OUT_DONE: word = "SUCCESS"; t = STN_TONE_GOOD; break;
		case STN_OUT_FAILED: word = "FAILED "; t = STN_TONE_BAD; break;
		case STN_OUT_SKIPPED: word = "SKIPPED"; t = STN_TONE_BAD; break;
		default: continue;
		}
		char head[80];
		snprintf(head, sizeof(head), "%s  %.20s", word, d->label);
		put(y++, 2, tone_attr(t) | A_REVERSE, head);
		y += wrap(y, 4, COLS - 5, 2, bottom, A_NORMAL, d->result, 1);
		/* An install by exception is named again here. */
		y += wrap(y, 4, COLS - 5, 3, bottom, tone_attr(STN_TONE_WARN),
			  d->exception, 1);
		y++;
	}
}

/* An overlay (a reason read whole, or the help): the core wrapped its
 * lines to 78 columns and starts them at the scroll offset; this draws
 * what fits and says when there is more. */
static void draw_overlay(const struct stn_app_view *v, int bottom)
{
	put(2, 1, A_BOLD, v->title);
	draw_lines(v, 4, bottom);
	if ((int)v->nlines > bottom - 4)
		put(2, COLS - 21, A_DIM, "(more: Down, PgDn)");
}

/* "Quit the station?": a box in the middle of the screen. */
static void draw_quit(void)
{
	int y = LINES / 2 - 2, x = (COLS - 40) / 2;

	for (int i = 0; i < 5; i++)
		mvhline(y + i, x, ' ', 40);
	attron(A_REVERSE);
	mvhline(y, x, ' ', 40);
	mvhline(y + 4, x, ' ', 40);
	attroff(A_REVERSE);
	put(y + 1, x + 2, tone_attr(STN_TONE_WARN), "Quit the station?");
	put(y + 3, x + 2, A_NORMAL, "y quits    n or Esc stays");
}

static void draw(const struct stn_app_view *v)
{
	int bottom = LINES - 2; /* message line, then help line */

	erase();
	if (COLS < 80 || LINES < 24) {
		put(0, 0, A_BOLD, "Make the terminal at least 80x24.");
		refresh();
		return;
	}
	bar_line(0, A_REVERSE, v->header);
	switch (v->screen) {
	case STN_SCR_DETAIL:
	case STN_SCR_HELP: draw_overlay(v, bottom); break;
	case STN_SCR_QUIT: draw_quit(); break;
	case STN_SCR_SIGNIN: draw_signin(v); break;
	case STN_SCR_HOME:
		put(2, 1, A_BOLD, "Home");
		draw_lines(v, 4, bottom);
		break;
	case STN_SCR_BUNDLES: draw_bundles(v, bottom); break;
	case STN_SCR_BUNDLE: {
		/* The bundle's lines above, the devices below: every
		 * device's identity line when all fit, else the one under
		 * the cursor's; the bundle keeps at least its title, its
		 * signers and the first checks. */
		int all = bottom - devices_rows(v, 1) >= 3 + 8;
		int split = bottom - devices_rows(v, all);
		if (split < 3 + 5)
			split = 3 + 5;
		put(2, 1, A_BOLD, "Bundle");
		draw_lines(v, 3, split);
		draw_devices(v, split, bottom, 1, all);
		break;
	}
	case STN_SCR_CONFIRM:
		put(2, 1, tone_attr(STN_TONE_WARN), "Confirm");
		draw_lines(v, 4, bottom);
		break;
	case STN_SCR_PUSH: draw_push(v, bottom); break;
	case STN_SCR_RESULT: draw_result(v, bottom); break;
	case STN_SCR_JOURNAL:
		put(2, 1, A_BOLD, "Journal");
		draw_lines(v, 3, bottom);
		if (v->nlines)
			put(3 + (int)v->cursor, 1, A_REVERSE,
			    v->lines[v->cursor].text);
		break;
	case STN_SCR_BYE: break;
	}
	put(LINES - 2, 1, tone_attr(v->message_tone), v->message);
	if (v->busy)
		put(LINES - 2, COLS - 10, A_BLINK, "working");
	bar_line(LINES - 1, A_REVERSE, v->help);
	refresh();
}

static int map_key(int k, enum stn_app_key *key, int *ch)
{
	*ch = 0;
	switch (k) {
	case ERR: *key = STN_KEY_TICK; return 1;
	case KEY_UP: *key = STN_KEY_UP; return 1;
	case KEY_DOWN: *key = STN_KEY_DOWN; return 1;
	case KEY_PPAGE: *key = STN_KEY_PGUP; return 1;
	case KEY_NPAGE: *key = STN_KEY_PGDN; return 1;
	case KEY_ENTER: case '\n': case '\r': *key = STN_KEY_ENTER; return 1;
	case 27: case KEY_LEFT: *key = STN_KEY_BACK; return 1;
	case ' ': *key = STN_KEY_TOGGLE; return 1;
	case KEY_BACKSPACE: case 127: case 8: *key = STN_KEY_ERASE; return 1;
	case KEY_RESIZE: *key = STN_KEY_TICK; return 1;
	default:
		if (k > 32 && k < 127) {
			*key = STN_KEY_CHAR;
			*ch = k;
			return 1;
		}
		return 0;
	}
}

int ui_tui_check_terminal(void)
{
	/* Without a terminal curses cannot read a key: getch() fails at once
	 * and the loop would spin, drawing escape codes for nobody. */
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		return 0;
	return ui_usage_error(NULL, "the text UI needs a terminal; use a "
				    "subcommand (station help)");
}

int ui_tui_run(const char *config_path)
{
	return ui_tui_run_idle(config_path, 0);
}

int ui_tui_run_idle(const char *config_path, int64_t idle_signout)
{
	struct stn_app *app = NULL;
	struct stn_app_view *v;
	struct stn_diag d;
	int rc;

	if ((rc = ui_tui_check_terminal()))
		return rc;
	/* Before any worker starts, so that every thread inherits the
	 * mask: the signals are taken here, in the loop, and only here. */
	ui_block_signals();
	stn_diag_init(&d);
	if (stn_app_new(config_path, &app, &d))
		return ui_report("ui", &d);
	if (idle_signout > 0)
		stn_app_set_idle_signout(app, idle_signout);
	v = malloc(sizeof(*v));
	if (!v) {
		stn_app_free(app);
		return ui_usage_error(NULL, "out of memory");
	}
	setlocale(LC_ALL, "");
	setenv("ESCDELAY", "25", 0);
	initscr();
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	timeout(150); /* redraw progress at least this often */
	use_colour = has_colors() && !getenv("NO_COLOR");
	if (use_colour) {
		start_color();
		use_default_colors();
		init_pair(PAIR_GOOD, COLOR_GREEN, -1);
		init_pair(PAIR_BAD, COLOR_RED, -1);
		init_pair(PAIR_WARN, COLOR_YELLOW, -1);
		init_pair(PAIR_BAR, COLOR_BLACK, COLOR_GREEN);
	}
	while (!stn_app_finished(app)) {
		enum stn_app_key key;
		int ch, sig = ui_poll_signal();

		if (sig) {
			/* Ctrl-C, a shutdown, or the terminal gone (SIGHUP):
			 * stop the installs, journal them, end the session. */
			stn_app_interrupt(app, sig);
			break;
		}
		stn_app_view(app, v);
		draw(v);
		if (map_key(getch(), &key, &ch))
			stn_app_key(app, key, ch);
	}
	/* Terminals without an alternate screen (TERM=vt100, the Linux
	 * console) keep what was drawn after endwin: clear it first, so the
	 * last frame (a technician's name, a reason) is not left behind. */
	clear();
	refresh();
	endwin();
	free(v);
	stn_app_free(app); /* waits for workers; journals the session end */
	return 0;
}
