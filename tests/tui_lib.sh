# tests/tui_lib.sh: driving the real text UI in a detached 80x24 tmux
# session, shared by tests/e2e_tui*.sh and tests/capture_screens.sh.
# Source after tests/lib.sh.  Gives tm, screen, wait_screen TEXT (a fixed
# string; WAIT_GREP=-E makes it a regular expression), send KEYS...,
# message and help_line (the last two lines at 80x24), tui_start
# [ENV=VALUE...] (`station demo` in $D) and cleanup_tui (set as the EXIT
# trap; a script may redefine it).  Skips (77) when tmux is missing.
command -v tmux >/dev/null || { echo "skip: tmux not installed"; exit 77; }

D=${D:-$T/demo}
SOCK="$T/tmux.sock"
WAIT_GREP=${WAIT_GREP:--F}
# How long wait_screen waits, in tenths of a second (a qemu guest's screens
# come slower than a local program's).
WAIT_TENTHS=${WAIT_TENTHS:-150}
tm() { tmux -S "$SOCK" "$@"; }
screen() { tm capture-pane -p -t ui; }
# wait_screen TEXT: bounded wait (WAIT_TENTHS, 15 s) until the screen shows TEXT
wait_screen() {
	for _ in $(seq 1 "$WAIT_TENTHS"); do screen | grep -q "$WAIT_GREP" -- "$1" && return 0; sleep 0.1; done
	echo "screen never showed: $1"; screen | sed 's/^/  | /'; return 1
}
send() { tm send-keys -t ui "$@"; }
message() { screen | sed -n 23p; }
help_line() { screen | sed -n 24p; }
tui_start() { # tui_start [ENV=VALUE...]
	tm new-session -d -s ui -x 80 -y 24 \
		"env TERM=xterm-256color STATION_DEMO_DIR=$D $* $STATION demo; echo UI-EXITED \$?; sleep 30"
}
cleanup_tui() { tm kill-server 2>/dev/null; bash "$TOP/tests/demo_setup.sh" teardown "$D" 2>/dev/null; }
trap 'cleanup_tui; cleanup' EXIT
