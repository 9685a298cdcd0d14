#!/usr/bin/env bash
# tests/bench_serial.sh: part of `make bench`.  Serial transfers on a line
# the simulators pace like a real UART (10 bits a byte at BENCH_BAUD,
# default 115200), each image BENCH_SERIAL_KB KiB (default 256):
#  - YMODEM-1K: the station's sender ($BUILD/ysend, the code `station push`
#    runs) against lrzsz `sb -k`, to the same receiver in the same run: the
#    ratio of their times, and each one's line efficiency (payload bytes /
#    what the line could carry in that time);
#  - a whole `station push` in plain YMODEM and console modes (verify,
#    identify, transfer, verdict), for the cost around the transfer;
#  - SMP: a `station push smp:` to the MCUboot-like simulator, its upload's
#    line efficiency (base64 and framing cap it near 73%) and the whole push.
# Targets: YMODEM at least 95% efficient on a clean line and no slower than
# sb.  Prints results; asserts nothing, so it is not part of `make check`.
set -u
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
KB=${BENCH_SERIAL_KB:-256}
BAUD=${BENCH_BAUD:-115200}
BYTES=$((KB * 1024))

for tool in sb openssl; do
	command -v "$tool" >/dev/null || { echo "skip: $tool is not installed"; exit 0; }
done

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
# eff BYTES NANOSECONDS: payload over what the line carries in that time
eff() { awk -v b="$1" -v ns="$2" -v baud="$BAUD" 'BEGIN { printf "%.1f%%", 100 * b / (ns / 1e9 * baud / 10) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

echo "== serial at a simulated $BAUD baud, ${KB} KiB images (ideal: $(awk -v b=$BYTES -v baud=$BAUD 'BEGIN { printf "%.2f", b * 10 / baud }') s)"
head -c "$BYTES" /dev/urandom >"$T/img.bin"

# --- YMODEM-1K: station sender versus sb, same receiver -------------------
mkdir -p "$T/ystore"
"$SIM" --mode ymodem --baud "$BAUD" --store "$T/ystore" --link "$T/ytty" \
	>"$T/ysim.out" 2>"$T/ysim.log" &
PIDS+=($!)
wait_for "$T/ysim.out" || { echo "simulator did not start"; exit 1; }
best_st=0 best_sb=0
for round in 1 2; do
	t0=$(now); timeout 300 "$TOP/$BUILD/ysend" --baud "$BAUD" "$T/ytty" "$T/img.bin" || echo "(ysend failed)"; t1=$(now)
	t=$((t1 - t0)); { [ "$best_st" -eq 0 ] || [ "$t" -lt "$best_st" ]; } && best_st=$t
	cmp -s "$T/img.bin" "$T/ystore/received.bin" || sleep 0.3
	cmp -s "$T/img.bin" "$T/ystore/received.bin" || echo "(station's transfer stored other bytes!)"
	rm -f "$T/ystore/received.bin"
	sleep 0.3
	t0=$(now); (cd "$T" && timeout 300 sb --ymodem -k -q img.bin <"$T/ytty" >"$T/ytty") || echo "(sb failed)"; t1=$(now)
	t=$((t1 - t0)); { [ "$best_sb" -eq 0 ] || [ "$t" -lt "$best_sb" ]; } && best_sb=$t
	sleep 0.3
	cmp -s "$T/img.bin" "$T/ystore/received.bin" || echo "(sb's transfer stored other bytes!)"
	rm -f "$T/ystore/received.bin"
	sleep 0.3
done
echo "YMODEM-1K, station sender:   $(secs $best_st) s   line efficiency $(eff $BYTES $best_st)   (target >= 95%)"
echo "YMODEM-1K, lrzsz sb -k:      $(secs $best_sb) s   line efficiency $(eff $BYTES $best_sb)"
echo "ratio station/sb:            $(ratio $best_st $best_sb)   (target <= 1.00; best of 2 rounds each)"

# --- whole pushes ----------------------------------------------------------
make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki" \
	"[port y]" "path = $T/ytty" "mode = ymodem" "model = TX-200" "serial = SN-Y" \
	"[port c]" "path = $T/ctty" "baud = $BAUD"
export STATION_CONFIG="$T/station.conf"
"$STATION" bundle create --name bench --version 1 --sequence 42 --model TX-200 \
	--image app="$T/img.bin@0" "$T/yb" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" "$T/yb/manifest" >/dev/null
t0=$(now); "$STATION" push --technician ana --device "ymodem:$T/ytty" "$T/yb" >/dev/null 2>&1 || echo "(push failed)"; t1=$(now)
echo "station push, plain YMODEM: $(secs $((t1 - t0))) s in all   line efficiency $(eff $BYTES $((t1 - t0)))"
echo "ratio station push/sb:       $(ratio $((t1 - t0)) $best_sb)   (the push also stages and verifies the bundle)"
printf 'format = station-device-1\nmodel = TX-200\nserial = SN-C\nsequence = 1\n' >"$T/c.id"
mkdir -p "$T/cstore"
"$SIM" --identity "$T/c.id" --baud "$BAUD" --store "$T/cstore" --link "$T/ctty" \
	>"$T/csim.out" 2>"$T/csim.log" &
PIDS+=($!)
wait_for "$T/csim.out"
t0=$(now); "$STATION" push --technician ana --device "serial:$T/ctty" "$T/yb" >/dev/null 2>&1 || echo "(push failed)"; t1=$(now)
echo "station push, console:      $(secs $((t1 - t0))) s in all   line efficiency $(eff $BYTES $((t1 - t0)))"

# --- SMP ---------------------------------------------------------------------
SMPSIM="$TOP/$BUILD/sim-smp"
"$TOP/$BUILD/mcuboot-image" --version 1.0.0 "$T/img.bin" "$T/old.img"
head -c $((BYTES - 64)) /dev/urandom >"$T/body"
"$TOP/$BUILD/mcuboot-image" --version 1.0.1 "$T/body" "$T/new.img"
SBYTES=$(stat -c %s "$T/new.img")
"$STATION" bundle create --name bench --version 1.0.1 --sequence 43 --model tx200_nrf52840 \
	--image app="$T/new.img@0" "$T/sb" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" "$T/sb/manifest" >/dev/null
mkdir -p "$T/sstore"
"$SMPSIM" --store "$T/sstore" --link "$T/stty" --primary "$T/old.img" --node SN-S \
	--baud "$BAUD" >"$T/ssim.out" 2>"$T/ssim.log" &
PIDS+=($!)
wait_for "$T/ssim.out"
t0=$(now); "$STATION" push --technician ana --device "smp:$T/stty" "$T/sb" >/dev/null 2>&1 || echo "(SMP push failed)"; t1=$(now)
up_ms=$(sed -n 's/.*upload complete: .*(\([0-9]*\) ms from the first request).*/\1/p' "$T/ssim.log" | tail -n 1)
echo "SMP upload (2 KiB buffer):  $(secs $((up_ms * 1000000))) s   line efficiency $(eff $SBYTES $((up_ms * 1000000)))   (base64 + framing cap: 73.2%)"
echo "station push, SMP:          $(secs $((t1 - t0))) s in all (upload, test, reset, check, confirm)"
