#!/usr/bin/env bash
# tests/e2e_tui.sh: the technician's whole job through the real text UI in
# a detached 80x24 tmux session: `station demo`, sign in with a PIN, verify
# a bundle, see which units proved they are genuine and the counterfeit
# refused in words, install on two simulated devices at once, see a refused
# bundle with its reason, see a bundle encrypted for this station, export
# the signed report, leave.  The screen is
# read with capture-pane and checked for what a person would look for.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tui_lib.sh"
start() { tui_start "$@"; }

start
check "the demo starts at the sign-in screen" wait_screen "Technician:"
send a n a Enter
check "a configured PIN is asked for" wait_screen "PIN for ana"
send 9 9 9 9 Enter
check "a wrong PIN is refused" wait_screen "Sign-in refused: unknown id or wrong PIN"
# The delay after a failure (tests/e2e_tui_signin.sh): Enter waits for it.
wait_screen "You may try again." >/dev/null
send 1 2 3 4 Enter
check "signing in shows the home screen" wait_screen "Signed in as Ana Lima"
check "home shows the clock against the trusted-time floor" wait_screen "trusted-time floor"
check "home shows the bundles on the media" wait_screen "5 bundle(s)"
check "home shows the devices present" bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep -c 'present' | grep -qx 4"
check "every screen has a help line" bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | tail -1 | grep -q 'q sign out'"

send m
check "the media screen lists the bundles" wait_screen "tx200-2.2.0-rollback"
# The list starts on the newest bundle (2.5.0); 2.4.1 is two up.
send Up Up Enter
check "verifying the bundle shows its custody timeline" wait_screen "carried dispatch-office-3 > courier-ana > ana"
check "each device gets its verdict, cause first" wait_screen "refused: wrong model: unit is TX-100"
check "the two TX-200 units are ready" bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep -c 'ready: sequence 42 is newer' | grep -qx 2"
check "the genuine units show they proved it" bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep -v 'NOT GENUINE' | grep -c 'GENUINE *\$' | grep -qx 2"
check "the unit under the cursor names its certificate and manufacturer" \
	wait_screen "Genuine: certificate TX-200 SN-0001 from Acme TX-200 Device CA"
check "the counterfeit is tagged" wait_screen "NOT GENUINE"
# The reason, wrapped at word boundaries over the list's lines.
check "the counterfeit's refusal leads with the cause" \
	wait_screen "This unit could not prove it is genuine: its certificate is not from"
check "and says what to do" wait_screen "Do not install; report the unit."
screen >"$T/bundle.txt"
# (A line longer than the screen is cut visibly, '>' in its last column,
# and read whole with d: tests/e2e_tui_reasons.sh.)
check "the counterfeit's reason is wrapped whole, not cut" \
	bash -c "! grep -E '^.{79}>\$' '$T/bundle.txt' | grep -q 'prove it is genuine'"
send p
check "installing asks for confirmation first" wait_screen "on 2 device(s)?"
send y
check "the result names each unit's success" wait_screen "2 installed, 0 failed, 0 not installed"
check "unit-a is shown installed with proof" wait_screen "INSTALLED on SN-0001 (device-signed)"
check "unit-b is shown installed with proof" wait_screen "INSTALLED on SN-0002 (device-signed)"
check "both simulators stored exactly the image" bash -c "cmp -s '$D/unit-a.store/slot-0.bin' '$D/images/tx200-app-2.4.1.bin' && cmp -s '$D/unit-b.store/slot-0.bin' '$D/images/tx200-app-2.4.1.bin'"
check "the TX-100 got nothing" test ! -e "$D/unit-c.store/slot-0.bin"
check "the counterfeit got nothing" test ! -e "$D/unit-d.store/slot-0.bin"
screen >"$T/result.txt"

send Enter
check "back to the bundle list" wait_screen "Bundles on the media"
send Up Up Up Up Down Down Down Enter
check "the tampered copy is refused with its reason, cause first" wait_screen "refused: image was altered or damaged"
wait_screen "Bundle refused" >/dev/null # verified: keys are taken again
send p
check "a refused bundle cannot be installed" wait_screen "This bundle was refused"
send Escape
sleep 0.3
# 2.5.0 travels encrypted for this station's delivery key (formats §10).
send Down Enter
check "the encrypted bundle shows it is encrypted for this station" \
	wait_screen "Images encrypted for this station (delivery key"
check "and it verifies like any other" wait_screen "ready: sequence 44 is newer"
screen >"$T/encrypted.txt"
check "the encrypted bundle's delivery line is whole, not cut" \
	bash -c "! grep -E '^.{79}>\$' '$T/encrypted.txt' | grep -q 'encrypted for this station'"
send Escape
sleep 0.3
send Escape
check "back home" wait_screen "x export report"
send x
check "the signed report is exported to the media" wait_screen "Report written:"
check "the report's signature file is on the media" bash -c "ls '$D'/media/report-STN-0042-*.json.sig >/dev/null"
send j
check "the journal browser shows the installs" wait_screen "install-finished"
send Escape
tm resize-window -t ui -x 100 -y 30 2>/dev/null
check "a resized terminal is redrawn" wait_screen "x export report"
tm resize-window -t ui -x 60 -y 20 2>/dev/null
check "a too small terminal says so" wait_screen "at least 80x24"
tm resize-window -t ui -x 80 -y 24 2>/dev/null
check "and recovers at 80x24" wait_screen "x export report"
send q
check "signing out returns to the sign-in screen" wait_screen "Signed out. Sign in"
send Escape
wait_screen "Quit the station?" >/dev/null
send y
check "quitting ends the program cleanly" wait_screen "UI-EXITED 0"
check "the journal chain verifies after the UI session" bash -c "STATION_CONFIG='$D/station.conf' '$STATION' journal --verify | grep -q 'chain verifies'"

# Without colour (NO_COLOR, monochrome terminals) every word is still there.
tm kill-server
rm -rf "$D"
start NO_COLOR=1
check "without colour the sign-in screen draws" wait_screen "Technician:"
send a n a Enter 1 2 3 4 Enter
check "without colour home draws" wait_screen "Signed in as Ana Lima"
send q
wait_screen "Signed out" >/dev/null
send Escape
wait_screen "Quit the station?" >/dev/null
send y
check "and exits cleanly" wait_screen "UI-EXITED 0"

# The terminal goes away (SIGHUP) with a technician signed in: the session
# is ended and journaled, and the demo stops its simulators.
tm kill-server
rm -rf "$D"
start
wait_screen "Technician:" >/dev/null
send a n a Enter 1 2 3 4 Enter
check "signed in again" wait_screen "Signed in as Ana Lima"
sims=$(cat "$D/sims.pid")
tm kill-server # SIGHUP to everything in the pane
for _ in $(seq 1 100); do [ -f "$D/sims.pid" ] || break; sleep 0.1; done
check "SIGHUP: the demo stops its simulators" test ! -f "$D/sims.pid"
# running: alive and not a zombie (whatever reaps orphans here may be slow)
running() { [ -e "/proc/$1/stat" ] && ! awk '{exit $3 != "Z"}' "/proc/$1/stat"; }
sims_gone() { for p in $sims; do running "$p" && return 1; done; return 0; }
for _ in $(seq 1 50); do sims_gone && break; sleep 0.1; done
check "SIGHUP: no simulator is left running" sims_gone
check "SIGHUP: the UI session is ended in the journal (interrupted)" \
	bash -c "STATION_CONFIG='$D/station.conf' '$STATION' journal --type session-end | grep -q 'result=interrupted'"
finish
