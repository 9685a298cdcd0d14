/* ui/cli.h: the command-line front end's subcommands and the few helpers
 * they share (option parsing and printing refusals).  Only ui/ prints. */
#ifndef UI_CLI_H
#define UI_CLI_H

#include <stdio.h>

#include "ui/common.h"

struct stn_diag;

/* Each returns the process exit code (spec/cli.md). */
int ui_cmd_verify(int argc, char **argv);
int ui_cmd_push(int argc, char **argv);
int ui_cmd_devices(int argc, char **argv);
int ui_cmd_journal(int argc, char **argv);
int ui_cmd_report(int argc, char **argv);
int ui_cmd_bundle(int argc, char **argv);
int ui_cmd_sign(int argc, char **argv);
int ui_cmd_custody(int argc, char **argv);
int ui_cmd_token(int argc, char **argv);
/* `station pin`: a technician's PIN record for station.conf. */
int ui_cmd_pin(int argc, char **argv);
extern const char *const ui_pin_usage;

/* `station demo`: build a self-contained demo and run the UI on it. */
int ui_cmd_demo(int argc, char **argv);
int ui_cmd_media(int argc, char **argv);

/* Each command's usage, as `station help CMD` and `CMD -h` print it (main
 * holds the table of commands; a new command adds a row there). */
extern const char *const ui_verify_usage;
extern const char *const ui_push_usage;
extern const char *const ui_devices_usage;
extern const char *const ui_media_usage;
extern const char *const ui_journal_usage;
extern const char *const ui_report_export_usage;
extern const char *const ui_report_verify_usage;
extern const char *const ui_bundle_usage;
extern const char *const ui_sign_usage;
extern const char *const ui_custody_usage;
extern const char *const ui_token_usage;
extern const char *const ui_demo_usage;

#endif
