#!/usr/bin/env bash
# tests/e2e_lrzsz.sh: the station's YMODEM against lrzsz, the reference
# implementation: (a) our sender ($BUILD/ysend) into lrzsz's receiver `rb`
# over a pty pair paced like a UART ($BUILD/pty-pair), (b) lrzsz's sender
# `sb -k` into the device simulator in plain YMODEM mode (like U-Boot's
# loady), (c) `sb` into the simulator on a 115200-baud line that damages and
# NAKs blocks.  Each file must arrive byte for byte.  Exit 0 pass, 77 skip
# (last line says why), anything else fail.
#
# Why paced: on an unpaced pty pair (socat) rb loses any block that arrives
# in the microseconds between its ACK and the input flush it does right
# after (purgeline), and waits 5 to 13 s for it; lrzsz's own sb fares worse
# there than our sender.  No real line delivers that fast.
set -u
BUILD=${BUILD:-build}

for tool in rb sb timeout cmp; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "skip: $tool is not installed (apt-get install lrzsz coreutils)"
		exit 77
	fi
done
for prog in ysend sim-serial pty-pair; do
	if [ ! -x "$BUILD/$prog" ]; then
		echo "FAIL: $BUILD/$prog is missing (run make test-bins)"
		exit 1
	fi
done
BUILD=$(cd "$BUILD" && pwd)

tmp=$(mktemp -d /tmp/e2e_lrzsz.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

# wait_for PATH TENTHS: until PATH exists
wait_for() {
	local i
	for ((i = 0; i < $2; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Just under a 1K block, a 128-byte tail past 64 KiB, and a 256-block file
# whose block numbers wrap past 255.
sizes="1023 65539 262144"
for sz in $sizes; do
	head -c "$sz" /dev/urandom >"$tmp/img-$sz.bin"
done

# (a) station sender -> lrzsz rb
for sz in $sizes; do
	d=$tmp/a-$sz
	mkdir -p "$d/rx"
	"$BUILD/pty-pair" 921600 "$d/A" "$d/B" >"$d/pair.out" 2>"$d/pair.log" &
	so=$!
	pids+=("$so")
	wait_for "$d/A" 50 && wait_for "$d/B" 50 || fail "pty-pair made no pty pair"
	(cd "$d/rx" && exec timeout 60 rb --ymodem <"$d/B" >"$d/B" 2>"$d/rb.log") &
	rbp=$!
	t0=$(now_ms)
	if ! timeout 60 "$BUILD/ysend" --baud 921600 "$d/A" "$tmp/img-$sz.bin" 2>"$d/ysend.log"; then
		cat "$d/ysend.log"
		fail "ysend could not send $sz bytes to rb"
	fi
	t1=$(now_ms)
	wait "$rbp"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		tr '\r' '\n' <"$d/rb.log" | tail -n 5
		fail "rb exited $rc receiving $sz bytes"
	fi
	cmp "$tmp/img-$sz.bin" "$d/rx/img-$sz.bin" || fail "rb stored other bytes than were sent ($sz)"
	echo "ok  ysend -> rb --ymodem   $sz bytes in $((t1 - t0)) ms"
	kill "$so" 2>/dev/null
	wait "$so" 2>/dev/null
done

# (b) lrzsz sb -> simulator in plain YMODEM mode.  The simulator keeps
# offering 'C' between transfers, as loady does, so later runs also prove
# that a stale 'C' or two on the line does no harm.
store=$tmp/store
mkdir -p "$store"
"$BUILD/sim-serial" --store "$store" --mode ymodem --link "$tmp/dev" \
	>"$tmp/sim.out" 2>"$tmp/sim.log" &
pids+=("$!")
wait_for "$tmp/dev" 50 || fail "simulator made no pty link: $(cat "$tmp/sim.log")"
grep -q '^pty /dev/' "$tmp/sim.out" || fail "simulator did not print its pty"
for sz in $sizes; do
	before=$(grep -c '^sim-serial: received' "$tmp/sim.log")
	t0=$(now_ms)
	if ! (cd "$tmp" && timeout 60 sb --ymodem -k "img-$sz.bin" <"$tmp/dev" >"$tmp/dev" 2>"$tmp/sb-$sz.log"); then
		tr '\r' '\n' <"$tmp/sb-$sz.log" | tail -n 5
		tail -n 5 "$tmp/sim.log"
		fail "sb could not send $sz bytes to the simulator"
	fi
	t1=$(now_ms)
	# The simulator renames the file into place when the batch ends.
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c '^sim-serial: received' "$tmp/sim.log")" -gt "$before" ] && break
		sleep 0.1
	done
	cmp "$tmp/img-$sz.bin" "$store/received.bin" || fail "simulator stored other bytes than sb sent ($sz)"
	echo "ok  sb --ymodem -k -> sim   $sz bytes in $((t1 - t0)) ms"
done

# (c) sb into the simulator on a paced line that damages block 3 and NAKs
# every 5th block: lrzsz's sender must recover, the file arrive intact.
store2=$tmp/store2
mkdir -p "$store2"
"$BUILD/sim-serial" --store "$store2" --mode ymodem --link "$tmp/dev2" \
	--baud 115200 --corrupt-block 3 --nak-every 5 \
	>"$tmp/sim2.out" 2>"$tmp/sim2.log" &
pids+=("$!")
wait_for "$tmp/dev2" 50 || fail "simulator made no pty link: $(cat "$tmp/sim2.log")"
t0=$(now_ms)
if ! (cd "$tmp" && timeout 60 sb --ymodem -k img-65539.bin <"$tmp/dev2" >"$tmp/dev2" 2>"$tmp/sb-faults.log"); then
	tail -n 5 "$tmp/sim2.log"
	fail "sb could not send through damaged and NAKed blocks"
fi
t1=$(now_ms)
for ((i = 0; i < 50; i++)); do
	grep -q '^sim-serial: received' "$tmp/sim2.log" && break
	sleep 0.1
done
cmp "$tmp/img-65539.bin" "$store2/received.bin" || fail "simulator stored other bytes than sb sent through faults"
[ "$(grep -c 'fault:' "$tmp/sim2.log")" -ge 13 ] || fail "the simulator injected fewer faults than asked"
echo "ok  sb -> sim at 115200 baud, block 3 damaged, every 5th NAKed: 65539 bytes in $((t1 - t0)) ms"

echo "e2e_lrzsz: all transfers arrived intact"
