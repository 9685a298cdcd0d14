#!/usr/bin/env bash
# tests/e2e_serial_faults.sh: every fault mode of the serial simulator,
# driven through `station push` and ending in the right journaled outcome:
# retried and succeeded (the device stored exactly the image), or failed
# with a reason that names the device and the problem.  The line is paced
# like a UART (sim-serial --baud); each push is bounded in time.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"

# An untagged image: the simulated device keeps reporting sequence 41, so
# the same bundle (sequence 42) can be pushed again and again.
head -c 20000 /dev/urandom >"$T/app.bin"
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --image app="$T/app.bin@0" "$T/b" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
	"$T/b/manifest" >/dev/null
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\n' >"$T/dev.id"

n=0
B=$T/b
# push NAME SPEC-KIND [sim options...]: a fresh simulator, one push; sets
# $rc, $out (the push's output), $ms (its duration) and $jn (journal lines
# it added).
push() {
	local name=$1 kind=$2 before t0 t1; shift 2
	n=$((n + 1))
	start_sim "$name" "$T/dev.id" "$@" || return 1
	before=$("$STATION" journal | wc -l)
	t0=$(date +%s%N)
	out=$(timeout 120 "$STATION" push --technician ana --device "$kind:$T/$name" "$B" 2>&1); rc=$?
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	jn=$("$STATION" journal | tail -n +$((before + 1)))
}
stored() { cmp -s "$T/$1.store/$2" "$T/app.bin"; }
journaled() { grep -Eq "$1" <<<"$jn" || { echo "  journal: $jn" | tail -n 3; return 1; }; }

# --- succeeds: clean, and every fault a retry cures ----------------------
push clean serial --baud 115200
check "clean line at 115200 baud: push exits 0" test "$rc" -eq 0 || echo "$out"
check "clean line: the device stored the image byte for byte" stored clean slot-0.bin
check "clean line: install-finished journaled with device-sha256 proof" \
	journaled "install-finished .*proof=device-sha256"
# 20000 bytes need at least 1.74 s at 115200 baud (10 bits a byte).
check "the simulated UART really paces the line (${ms} ms >= 1740)" test "$ms" -ge 1740

push corrupt serial --baud 115200 --corrupt-block 3
check "corrupt block 3: retried and succeeded (exit 0)" test "$rc" -eq 0 || echo "$out"
check "corrupt block 3: the simulator saw the damage" grep -q "block 3 arrives damaged" "$T/corrupt.log"
check "corrupt block 3: stored byte for byte" stored corrupt slot-0.bin
check "corrupt block 3: install-finished journaled" journaled "install-finished .*serial=SN-0001"

push nak serial --baud 115200 --nak-every 4
check "NAK every 4th block: retried and succeeded" test "$rc" -eq 0 || echo "$out"
check "NAK every 4th block: 5 blocks were NAKed once each" \
	test "$(grep -c 'NAKed' "$T/nak.log")" -eq 5
check "NAK every 4th block: stored byte for byte" stored nak slot-0.bin
check "NAK every 4th block: install-finished journaled" journaled "install-finished "

push slowack serial --baud 115200 --ack-delay 200
check "a device slow to ACK (200 ms a block): succeeded" test "$rc" -eq 0 || echo "$out"
check "slow ACKs: stored byte for byte" stored slowack slot-0.bin

push slowline serial --slow 1500
check "a device slow to answer its console (1.5 s a line): succeeded" test "$rc" -eq 0 || echo "$out"

# --- fails, with the reason journaled --------------------------------------
push tooslow serial --slow 6000
check "a device slower than the 5 s line timeout: exit 3" test "$rc" -eq 3
check "too slow: the reason names the device and the silence" \
	grep -q "tooslow: no answer to \`info\` within 5000 ms" <<<"$out"
check "too slow: journaled as a device error" journaled "device-error .*no answer to .info."

push wrongsha serial --wrong-sha
check "device reports a wrong sha256: exit 1" test "$rc" -eq 1
check "wrong sha256: refused with rule install-proof" grep -q "rule install-proof:" <<<"$out"
check "wrong sha256: install-failed journaled with the rule" journaled "install-failed .*rule=install-proof"

push drop serial --baud 115200 --drop-at 9000 --drop-ms 800
check "line dropped mid-transfer: exit 3 (a retry may cure)" test "$rc" -eq 3
check "line dropped: the reason says the device went away" \
	grep -Eq "rule device: .*drop.*(unplugged|hung up)" <<<"$out" || echo "  got: $out"
check "line dropped: install-failed journaled" journaled "install-failed .*rule=device"
check "line dropped: no image was stored from the broken transfer" test ! -e "$T/drop.store/slot-0.bin"
for i in $(seq 1 40); do [ -e "$T/drop" ] && break; sleep 0.1; done
out=$(timeout 60 "$STATION" push --technician ana --device "serial:$T/drop" "$B" 2>&1); rc=$?
check "after the line comes back, the same push succeeds" test "$rc" -eq 0 || echo "$out"
check "after the drop: stored byte for byte" stored drop slot-0.bin

# --- line speeds and flow control -----------------------------------------
write_config "$T/station.conf" "$T/data" "$T/pki" \
	"[port slow]" "path = $T/b9600" "baud = 9600" \
	"[port fast]" "path = $T/b921k" "baud = 921600" "flow = rtscts"
head -c 2000 /dev/urandom >"$T/app.bin"
B=$T/b2
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --image app="$T/app.bin@0" "$B" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
	"$B/manifest" >/dev/null
push b9600 serial --baud 9600
check "9600 baud: succeeded" test "$rc" -eq 0 || echo "$out"
check "9600 baud: stored byte for byte" stored b9600 slot-0.bin
check "9600 baud took the line's time (${ms} ms >= 2100)" test "$ms" -ge 2100
push b921k serial --baud 921600
check "921600 baud with RTS/CTS configured: succeeded" test "$rc" -eq 0 || echo "$out"
check "921600 baud: stored byte for byte" stored b921k slot-0.bin

# --- plain YMODEM (a bootloader's loady) under faults ----------------------
write_config "$T/station.conf" "$T/data" "$T/pki" \
	"[port y1]" "path = $T/y1" "mode = ymodem" "model = TX-200" "serial = SN-Y1" \
	"[port y2]" "path = $T/y2" "mode = ymodem" "model = TX-200" "serial = SN-Y2"
head -c 20000 /dev/urandom >"$T/app.bin"
B=$T/b3
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --image app="$T/app.bin@0" "$B" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
	"$B/manifest" >/dev/null
push y1 ymodem --mode ymodem --baud 115200 --corrupt-block 2 --nak-every 7
check "plain YMODEM, damaged and NAKed blocks: succeeded" test "$rc" -eq 0 || echo "$out"
for i in $(seq 1 20); do stored y1 received.bin && break; sleep 0.1; done
check "plain YMODEM: stored byte for byte" stored y1 received.bin
check "plain YMODEM: install-finished with proof=none" journaled "install-finished .*serial=SN-Y1.*proof=none"
push y2 ymodem --mode ymodem --baud 115200 --drop-at 5000
check "plain YMODEM, line dropped: exit 3" test "$rc" -eq 3
check "plain YMODEM, line dropped: install-failed journaled" journaled "install-failed .*serial=SN-Y2.*rule=device"

check "the journal chain verifies after all of it" \
	bash -c "'$STATION' journal --verify | grep -q 'journal chain verifies'"
finish
