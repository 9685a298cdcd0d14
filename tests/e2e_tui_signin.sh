#!/usr/bin/env bash
# tests/e2e_tui_signin.sh: the sign-in guard through the real text UI at
# 80x24 (issue 15 item 4).  An unknown id and a wrong PIN give the same
# screen; a failure starts a countdown that grows; signin-attempts (3
# here) failures lock the id, and the lock holds after the program is
# started again, even for the right PIN.  The journal, the report export
# and its verification carry the refusals and the lock.
. "$(dirname "$0")/lib.sh"
WAIT_GREP=-E
. "$(dirname "$0")/tui_lib.sh"
# A screen as compared: the id typed and the clock are what may differ.
# The countdown may have moved on between two captures.
norm() {
	sed -E 's/\b(mallory|ana)\b/ID/g; s/[0-9]{2}:[0-9]{2}(:[0-9]{2})?/HH:MM/g
		s/(Next try in [0-9]+ seconds?|You may try again)\./WHEN/' "$1"
}
# Nothing cut: the UI marks a line it had to cut with '>' in the last
# column (capture-pane never shows more than 80 columns anyway).
fits() { ! grep -Eq '^.{79}>$' "$1"; }
J() { "$STATION" journal --config "$D/station.conf" "$@"; }

# The demo builds the station; the later runs are the plain text UI on its
# configuration, as the appliance starts it (the journal stays).
tm new-session -d -s ui -x 80 -y 24 \
	"env STATION_DEMO_SIGNIN_ATTEMPTS=3 STATION_DEMO_SIGNIN_LOCKOUT=1m STATION_DEMO_DIR=$D TERM=xterm-256color $STATION demo; echo UI-EXITED \$?; sleep 30"
restart() { # the terminal goes away (SIGHUP); the station starts again
	tm kill-server 2>/dev/null
	for _ in $(seq 1 100); do [ -f "$D/sims.pid" ] || break; sleep 0.1; done
	tm new-session -d -s ui -x 80 -y 24 \
		"env STATION_CONFIG=$D/station.conf TERM=xterm-256color $STATION; echo UI-EXITED \$?; sleep 30"
	wait_screen "Technician:" >/dev/null
}

check "the demo starts at the sign-in screen" wait_screen "Technician:"
send m a l l o r y Enter
check "an unknown id is asked for a PIN like a known one" wait_screen "PIN for mallory, then Enter"
screen >"$T/unknown-pin.txt"
send 9 9 9 9 Enter
check "an unknown id is refused" wait_screen "Sign-in refused: unknown id or wrong PIN"
screen >"$T/unknown.txt"

restart
send a n a Enter
check "a known id is asked for its PIN" wait_screen "PIN for ana, then Enter"
screen >"$T/known-pin.txt"
send 9 9 9 9 Enter
check "a wrong PIN is refused" wait_screen "Sign-in refused: unknown id or wrong PIN"
screen >"$T/wrong.txt"
check "the PIN prompts of an unknown and a known id are the same screen" \
	cmp -s <(norm "$T/unknown-pin.txt") <(norm "$T/known-pin.txt")
check "an unknown id and a wrong PIN give the same screen" \
	cmp -s <(norm "$T/unknown.txt") <(norm "$T/wrong.txt")
diff <(norm "$T/unknown.txt") <(norm "$T/wrong.txt") | sed 's/^/  | /'
check "the refusal shows when the next try is accepted" grep -qE "Next try in 1 second\.|You may try again\." "$T/wrong.txt"
check "the countdown ends in plain words" wait_screen "You may try again\."
send 9 9 9 9 Enter
check "the second failure waits longer, counted down" wait_screen "Next try in (2 seconds|1 second)\."
screen >"$T/delay.txt"
# Enter during the countdown is not an attempt.
send 9 Enter
sleep 0.3
check "Enter during the countdown checks nothing" bash -c "$(declare -f J); STATION='$STATION' D='$D'; test \$(J --type signin-refused | grep -c technician=ana) -eq 2"
check "the countdown ends" wait_screen "You may try again\."
send BSpace 9 9 9 9 Enter
check "the third failure locks the id, said on screen" \
	wait_screen "Id ana is locked for 1 more minute: too many failed tries\."
screen >"$T/locked.txt"
for f in unknown-pin unknown known-pin wrong delay locked; do
	check "the $f screen shows every line whole at 80 columns" fits "$T/$f.txt"
done

restart
send a n a Enter 1 2 3 4 Enter
check "after a restart the lock holds, even for the right PIN" \
	wait_screen "Id ana is locked for 1 more minute"
check "and the id is not signed in" bash -c "$(declare -f tm screen); SOCK='$SOCK'; ! screen | grep -q 'Signed in'"
tm kill-server 2>/dev/null

out=$(J --type signin-refused)
check "the journal has the unknown id's refusal" grep -qE "technician=mallory failures=1 rule=pin reason=\"unknown id or wrong PIN\"" <<<"$out"
check "the journal counts the known id's failures" grep -qE "technician=ana failures=3 rule=pin" <<<"$out"
check "the attempt while locked is journaled" grep -qE "technician=ana failures=0 rule=locked" <<<"$out"
check "the journal records the lock with its end" \
	bash -c "$(declare -f J); STATION='$STATION' D='$D'; J --type technician-locked | grep -qE 'technician=ana failures=3 until=[0-9T:-]+Z'"
check "the journal chain verifies" bash -c "$(declare -f J); STATION='$STATION' D='$D'; J --verify | grep -q 'chain verifies'"
mkdir -p "$T/out"
out=$("$STATION" report export --config "$D/station.conf" --since 2000-01-01T00:00:00Z --out "$T/out" 2>&1); rc=$?
check "report export accepts the new events" test $rc -eq 0
[ $rc -eq 0 ] || echo "$out" | sed 's/^/  | /'
R=$(ls "$T"/out/report-*.json 2>/dev/null | head -1)
check "the report carries the lock" grep -q '"technician-locked"' "$R"
out=$("$STATION" report verify --trust "$D/pki/roots.pem" "$R" 2>&1)
check "report verify accepts it" grep -q "^verdict   report verifies" <<<"$out"
grep -q "^verdict   report verifies" <<<"$out" || echo "$out" | sed 's/^/  | /'
check "the summary shows the refused sign-ins" grep -q "REFUSED: rule pin: unknown id or wrong PIN" "${R%.json}.txt"
finish
