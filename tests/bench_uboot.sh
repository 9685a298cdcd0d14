#!/usr/bin/env bash
# tests/bench_uboot.sh: part of `make bench` (tests/bench.sh runs every
# tests/bench_*.sh).  The station's YMODEM sender ($BUILD/ysend, the code
# `station push ymodem:` runs) against lrzsz `sb -k`, each pushing the same
# 64 KiB and 256 KiB images to a real U-Boot `loady` (Debian's qemu_arm64
# U-Boot 2023.01 under qemu-system-aarch64, tests/uboot.sh), best of
# BENCH_UBOOT_ROUNDS (default 2) rounds each.  loady asks for no data after
# block 0 until 4.3 s have passed (common/xyzModem.c); sb sits through that,
# the station sends block 1 after 0.5 s.  The line is the emulated UART, so
# the rate is what U-Boot under TCG keeps up with, not a baud rate.
# Target: station clearly faster than sb (ratio well under 1).  Prints
# results; asserts nothing, so it is not part of `make check`.
set -u
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/uboot.sh"
why=$(uboot_skip_reason)
command -v sb >/dev/null || why=${why:-sb is not installed (lrzsz)}
[ -z "$why" ] || { echo "skip: $why"; exit 0; }
. "$TOP/tests/lib.sh"
ROUNDS=${BENCH_UBOOT_ROUNDS:-2}
ADDR=0x40200000

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

uboot_boot || { echo "U-Boot did not come up"; exit 1; }

# one_push TOOL FILE: loady, push with TOOL, wait for U-Boot's summary;
# prints nanoseconds, or nothing when the transfer failed.
one_push() {
	local tool=$1 f=$2 size t0 t1 rc
	size=$(stat -c %s "$f")
	con_reset
	printf 'loady %s\r' "$ADDR" >&3
	t0=$(now)
	if [ "$tool" = station ]; then
		timeout 120 "$TOP/$BUILD/ysend" --baud 115200 "$PTY" "$f" 2>>"$T/ysend.log"
	else
		(cd "$(dirname "$f")" && timeout 120 sb --ymodem -k -q "$(basename "$f")" \
			<"$PTY" >"$PTY" 2>>"$T/sb.log")
	fi
	rc=$?
	t1=$(now)
	con_until $'\n=> ' 30
	[ "$rc" -eq 0 ] && grep -q "Total Size *= 0x[0-9a-f]* = $size Bytes" <<<"$CON" &&
		echo $((t1 - t0))
}

echo "== YMODEM-1K to U-Boot 2023.01 loady under qemu (TCG), best of $ROUNDS"
for kb in 64 256; do
	head -c $((kb * 1024)) /dev/urandom >"$T/img$kb.bin"
	best_st=0 best_sb=0
	for ((r = 0; r < ROUNDS; r++)); do
		t=$(one_push station "$T/img$kb.bin")
		[ -n "$t" ] || { echo "(station's transfer failed: $(tail -n 1 "$T/ysend.log"))"; continue; }
		{ [ "$best_st" -eq 0 ] || [ "$t" -lt "$best_st" ]; } && best_st=$t
		t=$(one_push sb "$T/img$kb.bin")
		[ -n "$t" ] || { echo "(sb's transfer failed)"; continue; }
		{ [ "$best_sb" -eq 0 ] || [ "$t" -lt "$best_sb" ]; } && best_sb=$t
	done
	if [ "$best_st" -gt 0 ] && [ "$best_sb" -gt 0 ]; then
		printf '%4d KiB: station %6s s   sb -k %6s s   ratio station/sb %s   (target: well under 1)\n' \
			"$kb" "$(secs $best_st)" "$(secs $best_sb)" "$(ratio $best_st $best_sb)"
	fi
done
