#!/usr/bin/env bash
# tests/bench_core.sh: part of `make bench`.  Measurements as ratios against the tools a
# technician would otherwise use, taken in the same run on the same files:
#  - a YMODEM push over a pseudo-terminal versus lrzsz `sb` to the same
#    receiver (unthrottled pty: this measures protocol overhead, not a UART).
# Staging (stage + verify versus `cp -r` then `sha256sum`, and peak memory)
# is tests/bench_media.sh.
# Prints results; it asserts nothing, so it is not part of `make check`.
set -euo pipefail
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"

now() { date +%s.%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"

echo "== YMODEM over a pty, 256 KiB"
head -c 262144 /dev/urandom >"$T/y.bin"
"$STATION" bundle create --name y --version 1 --sequence 1 --model TX-200 \
	--image app="$T/y.bin" "$T/ybundle" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" "$T/ybundle/manifest" >/dev/null
mkdir -p "$T/ystore"
"$SIM" --mode ymodem --store "$T/ystore" --link "$T/ytty" >"$T/ysim.out" 2>/dev/null &
PIDS+=($!)
wait_for "$T/ysim.out"
write_config "$T/station.conf" "$T/data" "$T/pki" "[port y]" "path = $T/ytty" "mode = ymodem" "model = TX-200" "serial = SN-Y"
t0=$(now); "$STATION" push --technician ana --device "ymodem:$T/ytty" "$T/ybundle" >/dev/null 2>&1; t1=$(now)
t_station=$(secs "$t0" "$t1")
sleep 0.3
t0=$(now); (cd "$T" && sb --ymodem -k -q y.bin <"$T/ytty" >"$T/ytty"); t1=$(now)
t_sb=$(secs "$t0" "$t1")
echo "station push (verify + YMODEM):     ${t_station}s"
echo "lrzsz sb --ymodem -k:               ${t_sb}s"
echo "ratio station/sb:                   $(ratio "$t_station" "$t_sb")"
