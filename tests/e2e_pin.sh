#!/usr/bin/env bash
# tests/e2e_pin.sh: `station pin` (spec/cli.md): the line it prints is one
# station.conf accepts and sign-in checks (the demo's technician is made
# with it: tests/e2e_tui.sh signs in with that PIN), each run salts anew,
# entries the sign-in screen could not take are refused with the reason
# and exit 2, and on a terminal (tmux) the PIN is not echoed.
. "$(dirname "$0")/lib.sh"

pin() { printf "$1" | "$STATION" pin >"$T/out" 2>"$T/err"; echo $? >"$T/rc"; }
rc_is() { [ "$(cat "$T/rc")" = "$1" ]; }
err_has() { grep -qF -- "$1" "$T/err" || { echo "stderr: $(cat "$T/err")"; return 1; }; }
line_re='^pin = pbkdf2-sha256\$200000\$[0-9a-f]{32}\$[0-9a-f]{64}$'

pin '4711\n4711\n'
check "two equal lines on stdin give the pin line (exit 0)" rc_is 0
check "the line is pbkdf2-sha256, 200000 rounds, salt and hash in hex" \
	grep -qE "$line_re" "$T/out"
cp "$T/out" "$T/first"
pin '4711\n4711\n'
check "a second run salts anew" bash -c "! cmp -s '$T/first' '$T/out'"

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
sed -i "/^name = Ana Lima/r $T/first" "$T/station.conf"
check "station.conf takes the printed line as is" \
	"$STATION" --config "$T/station.conf" journal

refused() { # refused WHAT INPUT REASON
	pin "$2"
	check "$1 is refused (exit 2)" rc_is 2
	check "$1: the reason says so" err_has "$3"
	check "$1: nothing is printed" test ! -s "$T/out"
}
refused "two different entries" '1234\n1243\n' "the two entries differ"
refused "an empty PIN" '\n\n' "no PIN given"
refused "a PIN of 3 characters" '123\n123\n' "too short: 3 characters, at least 4"
refused "a PIN with a tab" '12\t34\n12\t34\n' "control character"
refused "a PIN with an escape" '12\0334\n12\0334\n' "control character"
refused "a PIN with a space" '12 34\n12 34\n' "holds a space"
refused "a PIN of 65 characters" "$(printf '%065d' 7)\n$(printf '%065d' 7)\n" \
	"too long"
refused "a single line" '1234\n' "the input ended before the PIN's repetition"
refused "no input at all" '' "the input ended before the PIN"

"$STATION" pin extra >/dev/null 2>"$T/err"
check "an argument is a usage error (exit 2)" test $? -eq 2
check "help exits 0" bash -c "\"$STATION\" pin --help >/dev/null"

# On a terminal: prompts, no echo, the line on stdout.
if command -v tmux >/dev/null; then
	SOCK="$T/tmux.sock"
	tm() { tmux -S "$SOCK" "$@"; }
	trap 'tm kill-server 2>/dev/null; cleanup' EXIT
	tm new-session -d -s pin -x 80 -y 24 \
		"$STATION pin >$T/tty.out; echo PIN-EXITED \$?; sleep 30"
	wait_screen() {
		for _ in $(seq 1 100); do
			tm capture-pane -p -t pin | grep -qF -- "$1" && return 0
			sleep 0.1
		done
		tm capture-pane -p -t pin | sed 's/^/  | /'
		return 1
	}
	check "on a terminal it asks for the PIN" wait_screen "PIN:"
	tm send-keys -t pin 9 8 7 6 5 Enter
	check "and asks again" wait_screen "PIN again:"
	tm send-keys -t pin 9 8 7 6 5 Enter
	check "and ends with exit 0" wait_screen "PIN-EXITED 0"
	check "the PIN never shows on the terminal" \
		bash -c "! tmux -S '$SOCK' capture-pane -p -t pin | grep -q 98765"
	check "the line goes to stdout" grep -qE "$line_re" "$T/tty.out"
	tm kill-session -t pin
	tm new-session -d -s pin -x 80 -y 24 \
		"$STATION pin >$T/tty2.out; echo PIN-EXITED \$?; sleep 30"
	wait_screen "PIN:" >/dev/null
	tm send-keys -t pin 1 2 3 4 Enter
	wait_screen "PIN again:" >/dev/null
	tm send-keys -t pin 4 3 2 1 Enter
	check "on a terminal, different entries end with exit 2" \
		wait_screen "PIN-EXITED 2"
	check "and say so" wait_screen "the two entries differ"
	tm new-session -d -s pin2 -x 80 -y 24 \
		"trap : INT; $STATION pin; echo rc=\$? >$T/rc2; stty -a | grep -o -- '-\?echo ' | head -1 >$T/stty; sleep 30"
	for _ in $(seq 1 100); do
		tm capture-pane -p -t pin2 | grep -qF "PIN:" && break; sleep 0.1
	done
	tm send-keys -t pin2 C-c
	for _ in $(seq 1 100); do [ -s "$T/stty" ] && break; sleep 0.1; done
	check "Ctrl-C at the prompt ends it by the signal" grep -qx "rc=130" "$T/rc2"
	check "and the terminal has its echo back" \
		grep -qx 'echo ' "$T/stty"
	# Ctrl-Z and Ctrl-\ at the prompt neither stop nor kill it with the
	# echo off: they are characters, refused as such.
	tm new-session -d -s pin3 -x 80 -y 24 \
		"$STATION pin; echo rc=\$? >$T/rc3; stty -a | grep -o -- '-\?echo ' | head -1 >$T/stty3; sleep 30"
	for _ in $(seq 1 100); do
		tm capture-pane -p -t pin3 | grep -qF "PIN:" && break; sleep 0.1
	done
	tm send-keys -t pin3 1 2 3 4 C-z C-'\' Enter
	for _ in $(seq 1 100); do [ -s "$T/stty3" ] && break; sleep 0.1; done
	check "Ctrl-Z and Ctrl-\\ at the prompt are refused as characters (exit 2)" \
		grep -qx "rc=2" "$T/rc3"
	check "and the terminal has its echo back" grep -qx 'echo ' "$T/stty3"
else
	echo "tmux not installed: the terminal checks are left out"
fi
finish
