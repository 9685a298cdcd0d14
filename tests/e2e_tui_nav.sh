#!/usr/bin/env bash
# tests/e2e_tui_nav.sh: moving around the text UI safely (issue 15 items 2
# and 5), through `station demo` in a detached 80x24 tmux session: Esc at
# the PIN goes back to the id; signing out returns to the sign-in screen
# (journaled) and the next technician signs in anew; quitting asks first;
# a message does not follow to the next screen; a refused bundle offers no
# `p install` and its message says where the checks are; the bundle list
# starts on the newest bundle, not on the rollback; an idle technician is
# signed out (never during an install); the demo keeps exported reports;
# TERM=vt100 (no alternate screen) is left clean when the program ends.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tui_lib.sh"
not_on_screen() {
	! screen | grep -qF -- "$1" || { echo "screen shows: $1"; screen | sed 's/^/  | /'; return 1; }
}
journal() { STATION_CONFIG="$D/station.conf" "$STATION" journal "$@"; }
kept=""
cleanup_tui() {
	tm kill-server 2>/dev/null
	bash "$TOP/tests/demo_setup.sh" teardown "$D" 2>/dev/null
	[ -n "$kept" ] && bash "$TOP/tests/demo_setup.sh" teardown "$kept" 2>/dev/null
}

start() { # start [ENV=VALUE...]
	tm new-session -d -s ui -x 80 -y 24 \
		"env TERM=xterm-256color $* $STATION demo; echo UI-EXITED \$?; sleep 30"
}
restart() { tm kill-server 2>/dev/null; bash "$TOP/tests/demo_setup.sh" teardown "$D"; start "$@"; }
sign_in() {
	wait_screen "Technician:" >/dev/null
	send a n a Enter
	wait_screen "PIN for ana" >/dev/null
	send 1 2 3 4 Enter
	wait_screen "Signed in as Ana Lima"
}

# --- Esc back one step, sign out, quit asks ------------------------------
start STATION_DEMO_DIR="$D"
check "the demo starts at the sign-in screen" wait_screen "Technician:"
send a n a Enter
check "the PIN is asked for" wait_screen "PIN for ana"
send 9 9 Escape
check "Esc at the PIN goes back to the technician id" wait_screen "type your technician id"
check "and the PIN field is gone" bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep -q 'Technician:' && ! screen | grep -q 'PIN:'"
check "the program is still running" not_on_screen "UI-EXITED"
send Enter
check "Enter asks for the PIN again" wait_screen "PIN for ana"
send 1 2 3 4 Enter
check "signing in works after going back" wait_screen "Signed in as Ana Lima"
check "home says q signs out" bash -c "$(declare -f tm screen help_line); SOCK='$SOCK'; help_line | grep -q 'q sign out'"

send m
check "the bundle list is shown" wait_screen "Bundles on the media"
check "the cursor starts on the newest bundle (2.5.0), not the rollback" \
	bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep '^ *>' | grep -q 'tx200-app 2.5.0'"
send Up Enter # the copy of 2.4.1 whose image was changed on the way
check "the tampered bundle is refused and the message points up" \
	wait_screen "Bundle refused: see the checks above"
check "a refused bundle offers no p install" \
	bash -c "$(declare -f tm screen help_line); SOCK='$SOCK'; h=\$(help_line); echo \"\$h\" | grep -q refused && ! echo \"\$h\" | grep -q 'p install'"
send p
check "p on it still says why not" wait_screen "This bundle was refused"
send Escape
check "Esc goes back to the bundle list" wait_screen "Bundles on the media"
check "the refusal does not follow to the bundle list" \
	bash -c "$(declare -f tm screen message); SOCK='$SOCK'; screen | grep -q 'Bundles on the media' && ! message | grep -q 'refused'"
send Escape
check "Esc goes back home" wait_screen "x export report"
send x
check "a report is exported" wait_screen "Report written:"
send q
check "q signs out to the sign-in screen" wait_screen "Signed out. Sign in"
check "the sign-in screen is back with an empty id" \
	bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep -qE '^ *Technician: *\$'"
check "signing out does not end the program" bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep -q 'Technician:' && ! screen | grep -q 'UI-EXITED'"
check "the report is still on the media" bash -c "ls '$D'/media/report-STN-0042-*.json >/dev/null"
check "the session end is journaled as signed-out" \
	bash -c "$(declare -f journal); D='$D' STATION='$STATION'; journal --type session-end | grep -q 'result=signed-out'"
sign_in >/dev/null
check "the next technician signs in anew" \
	bash -c "$(declare -f journal); D='$D' STATION='$STATION'; [ \$(journal --type session-start | grep -c 'command=ui') -eq 2 ]"
send Escape
check "Esc on home does not sign out (home is as far back as it goes)" \
	wait_screen "This is home; q signs out"
check "... and the session goes on" \
	bash -c "$(declare -f journal); D='$D' STATION='$STATION'; [ \$(journal --type session-end | grep -c 'result=signed-out') -eq 1 ]"
send q
check "q then signs out" wait_screen "Signed out. Sign in"
send Escape
check "Esc at the technician id asks before quitting" wait_screen "Quit the station?"
check "the quit question says its keys" bash -c "$(declare -f tm screen help_line); SOCK='$SOCK'; help_line | grep -q 'y quit the station  n/Esc stay'"
send n
check "n stays" wait_screen "Technician:"
check "and the program is still running" bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep -q 'Technician:' && ! screen | grep -q 'UI-EXITED'"
send Escape
wait_screen "Quit the station?" >/dev/null
send Escape
check "Esc at the question stays too" wait_screen "Technician:"
check "and the question is gone" bash -c "$(declare -f tm screen); SOCK='$SOCK'; screen | grep -q 'Technician:' && ! screen | grep -q 'Quit the station?'"
send Escape
wait_screen "Quit the station?" >/dev/null
send y
check "y quits cleanly" wait_screen "UI-EXITED 0"
check "the demo says where the reports are" wait_screen "exported report(s) kept in $D/media"

# --- the demo never deletes what was exported -----------------------------
# Without STATION_DEMO_DIR the demo removes its directory at the end,
# unless a report was exported to its media.
tm kill-server
bash "$TOP/tests/demo_setup.sh" teardown "$D"
start
sign_in >/dev/null
send x
wait_screen "Report written:" >/dev/null
send q
wait_screen "Signed out" >/dev/null
send Escape
wait_screen "Quit the station?" >/dev/null
send y
check "the demo ends" wait_screen "UI-EXITED 0"
kept=$(screen | tr -d '\n' | grep -o 'kept in /tmp/station-demo\.[A-Za-z0-9]*/media' | head -1 | sed 's/^kept in //; s,/media$,,')
check "the demo names the directory it kept" test -n "$kept"
check "the exported report is still there" bash -c "ls '$kept'/media/report-STN-0042-*.json.sig >/dev/null"
check "its simulators are stopped" bash -c "[ -d '$kept' ] && [ ! -f '$kept/sims.pid' ]"

# --- idle sign-out ---------------------------------------------------------
# The configured minimum is a minute; the demo takes a shorter one for
# tests (STATION_DEMO_IDLE_SIGNOUT).
restart STATION_DEMO_DIR="$D" STATION_DEMO_IDLE_SIGNOUT=4
sign_in >/dev/null
check "an idle technician is signed out and told why" wait_screen "Signed out after 4 s without a key"
check "the idle sign-out is journaled" \
	bash -c "$(declare -f journal); D='$D' STATION='$STATION'; journal --type session-end | grep -q 'result=idle'"
# An install longer than the idle time: the technician is not signed out
# while it runs, only the idle time after it ended.
sign_in >/dev/null
send m
wait_screen "Bundles on the media" >/dev/null
send Up Up Enter # 2.4.1
wait_screen "Space select" >/dev/null
send p
wait_screen "Confirm" >/dev/null
send y
check "the install runs" wait_screen "Installing"
check "its result is shown" wait_screen "2 installed"
check "then the idle sign-out follows" wait_screen "Signed out after 4 s without a key"
check "both installs finished before the session ended" \
	bash -c "$(declare -f journal); D='$D' STATION='$STATION'; journal | grep -E 'install-(started|finished|failed)|session-end' | tail -5 | awk '{print \$3}' | tr '\n' ' ' | grep -q 'install-finished install-finished session-end'"
check "that session ended idle too" \
	bash -c "$(declare -f journal); D='$D' STATION='$STATION'; [ \$(journal --type session-end | grep -c 'result=idle') -eq 2 ]"

# --- TERM=vt100: no alternate screen, nothing left behind -----------------
restart STATION_DEMO_DIR="$D" TERM=vt100
check "vt100: the sign-in screen draws" wait_screen "Technician:"
send Escape
wait_screen "Quit the station?" >/dev/null
send y
check "vt100: the program ends" wait_screen "UI-EXITED 0"
check "vt100: the last frame is cleared" not_on_screen "Technician:"
check "vt100: no help line is left" not_on_screen "Backspace erase"
finish
