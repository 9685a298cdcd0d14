#!/usr/bin/env bash
# tests/capture_screens.sh OUTDIR: the text UI's screens as docs/operator.md
# shows them, captured from `station demo` in an 80x24 tmux session (the
# same way tests/e2e_tui*.sh drive it).  Not a test: a tool to keep the
# operator's guide's captures fresh after a change to the screens
# (`bash tests/capture_screens.sh /tmp/caps`, then paste).  Each screen is
# OUTDIR/NN-name.txt.  CAPTURE_DEMO_DIR (a directory that does not exist
# yet) puts the demo where its paths read well.
set -u
OUT=${1:?usage: capture_screens.sh OUTDIR}
. "$(dirname "$0")/lib.sh"
mkdir -p "$OUT"
D=${CAPTURE_DEMO_DIR:-$T/demo} # e.g. /tmp/demo: short paths on screen
. "$(dirname "$0")/tui_lib.sh"
shot() { sleep 0.4; screen >"$OUT/$1.txt"; echo "captured $1"; }

tui_start
wait_screen "Technician:"
send a n a Enter
wait_screen "PIN for"
send 1 2; shot 01-signin
send 3 4 Enter
wait_screen "Signed in as"; shot 02-home
send '?'; wait_screen "Help: the keys"; shot 03-help
send Escape
send m; wait_screen "Bundles on the media"; shot 04-bundles
send Up Up Enter
wait_screen "ready: sequence 42 is newer"; sleep 1; shot 05-bundle
send Down Down Down Enter
wait_screen "could not prove it is genuine"; shot 06-detail
send Escape; sleep 0.3
send Up Up Up
send p; wait_screen "on 2 device(s)?"; shot 07-confirm
send y; sleep 0.8; shot 08-installing
wait_screen "2 installed, 0 failed"; shot 09-result
send Enter; wait_screen "Bundles on the media"
send Up Up Up Up Down Down Down Enter
wait_screen "Bundle refused"; shot 10-refused
send Escape; sleep 0.3
send Down Enter
wait_screen "Images encrypted for this station"; sleep 1; shot 11-encrypted
send Escape; sleep 0.3
send Up Up Up Up Up Enter
sleep 0.3
send Up Up Up Up Up Up Up Up
wait_screen "ready BY EXCEPTION"; shot 12-rollback
send Space Down Space
send p; wait_screen "DOWNGRADE"; shot 13-confirm-exception
send D; wait_screen "installed, 0 failed"; shot 14-result-exception
send Enter Escape; sleep 0.3
send Escape; wait_screen "x export report"
send x; wait_screen "Report written:"; shot 15-exported
send j; wait_screen "install-finished"; shot 16-journal
send Up Enter; wait_screen "Journal event, whole"; shot 17-event
send Escape Escape; sleep 0.3
send q; wait_screen "Technician:"; shot 18-signed-out
send Escape; wait_screen "Quit the station?"; shot 19-quit
send y
