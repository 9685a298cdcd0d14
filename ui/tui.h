/* ui/tui.h: the ncurses text UI, as main() and `station demo` start it.
 * It includes nothing of the command line: the text UI draws the core's
 * snapshots (station/app.h) and prints through ui/common.h only. */
#ifndef UI_TUI_H
#define UI_TUI_H

#include <stdint.h>

/* The text UI on this configuration; returns the exit code (2, with a
 * message, when stdin or stdout is not a terminal). */
int ui_tui_run(const char *config_path);
/* The same, signing a technician out after idle_signout seconds without a
 * key when that is shorter than the configuration's (0: as configured). */
int ui_tui_run_idle(const char *config_path, int64_t idle_signout);
/* 0 when stdin and stdout are terminals, else prints why and returns 2. */
int ui_tui_check_terminal(void);

#endif
