/* ui/tui.h: the ncurses text UI, as main() and `station demo` start it.
 * It includes nothing of the command line: the text UI draws the core's
 * snapshots (station/app.h) and prints through ui/common.h only. */
#ifndef UI_TUI_H
#define UI_TUI_H

/* The text UI on this configuration; returns the exit code (2, with a
 * message, when stdin or stdout is not a terminal). */
int ui_tui_run(const char *config_path);
/* 0 when stdin and stdout are terminals, else prints why and returns 2. */
int ui_tui_check_terminal(void);

#endif
