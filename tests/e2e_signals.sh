#!/usr/bin/env bash
# tests/e2e_signals.sh: a signal during an install (issue 11 item 16).
# SIGINT or SIGTERM mid-transfer stops `station push` cleanly: the install
# is journaled as failed with rule interrupted, the session ends, and the
# process ends by the signal.  A station killed outright (SIGKILL) leaves
# an install without outcome: the next session journals install-abandoned
# once and tells the technician.
. "$(dirname "$0")/lib.sh"

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"
sim_image "$T/app.bin" 42 2.4.1 400000
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --hardware revB --image "app=$T/app.bin@0" "$T/good" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
	--label rel1 "$T/good/manifest" >/dev/null

# push_until_writing NAME: start a push to simulator NAME (paced at 19200
# baud: 400 kB take minutes) and wait until it is writing.
push_until_writing() {
	printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = %s\nsequence = 41\n' \
		"SN-$1" >"$T/$1.id"
	start_sim "$1" "$T/$1.id" --baud 19200 || return 1
	"$STATION" push --technician ana --device "serial:$T/$1" "$T/good" \
		>"$T/$1.pout" 2>"$T/$1.perr" &
	PUSH=$!
	for _ in $(seq 1 200); do
		sed -n '/^  write /,$p' "$T/$1.perr" 2>/dev/null |
			grep -Eq '^ +[0-9]+%  [0-9.]+ [KMG]?i?B of ' && return 0
		sleep 0.05
	done
	echo "the push never started writing"; cat "$T/$1.perr"; return 1
}

journal() { "$STATION" journal "$@" 2>&1; }

for sig in INT TERM; do
	check "SIG$sig: a push is writing" push_until_writing "u$sig"
	kill -s "$sig" "$PUSH"
	t0=$(date +%s)
	wait "$PUSH"; rc=$?
	want=$((128 + $(kill -l "$sig")))
	check "SIG$sig: station ends by the signal (exit $want), got $rc" test "$rc" -eq "$want"
	check "SIG$sig: it stops within a few seconds" test $(( $(date +%s) - t0 )) -le 10
	check "SIG$sig: the refusal says it was interrupted" \
		grep -q "rule interrupted: .*interrupted by signal .* after [1-9][0-9]* bytes" "$T/u$sig.perr"
	check "SIG$sig: the install is journaled as failed, rule interrupted" \
		bash -c "'$STATION' journal --type install-failed --serial SN-u$sig | grep -q 'rule=interrupted'"
	sess=$(journal --type install-failed --serial "SN-u$sig" | grep -o 'session=[0-9a-f]*' | head -1)
	check "SIG$sig: its session ended with result interrupted" \
		bash -c "'$STATION' journal --type session-end | grep -q '$sess .*result=interrupted'"
	check "SIG$sig: the device did not get a complete image" \
		test ! -e "$T/u$sig.store/slot-0.bin"
done

# --- SIGKILL: no chance to clean up ------------------------------------------
check "SIGKILL: a push is writing" push_until_writing uKILL
kill -s KILL "$PUSH"; wait "$PUSH" 2>/dev/null
check "SIGKILL: the install has no outcome yet" \
	bash -c "! '$STATION' journal --serial SN-uKILL | grep -Eq 'install-(failed|finished|abandoned)'"
"$STATION" verify "$T/good" >"$T/next.out" 2>"$T/next.err"; rc=$?
check "the next command still works (exit $rc)" test "$rc" -eq 0
check "the next session journals install-abandoned for it" \
	bash -c "'$STATION' journal --type install-abandoned | grep -q 'serial=SN-uKILL'"
check "and tells the technician on stderr" \
	grep -q "SN-uKILL" "$T/next.err"
check "interrupted installs are not reported as abandoned" \
	bash -c "! '$STATION' journal --type install-abandoned | grep -q 'serial=SN-uINT'"
"$STATION" verify "$T/good" >/dev/null 2>"$T/third.err"
check "an abandoned install is journaled once" \
	test "$(journal --type install-abandoned | grep -c 'serial=SN-uKILL')" -eq 1
check "and not reported again" bash -c "! grep -q SN-uKILL '$T/third.err'"
finish
