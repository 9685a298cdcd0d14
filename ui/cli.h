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

/* `station demo`: build a self-contained demo and run the UI on it. */
int ui_cmd_demo(int argc, char **argv);
int ui_cmd_media(int argc, char **argv);

#endif
