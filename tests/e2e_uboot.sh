#!/usr/bin/env bash
# tests/e2e_uboot.sh: a real U-Boot as the plain YMODEM peer.  Debian's
# U-Boot 2023.01 for qemu (u-boot-qemu, qemu_arm64/u-boot.bin) boots under
# qemu-system-aarch64 -M virt with its console on a pty; the script stops
# autoboot, types `loady ADDR`, and `station push ymodem:PTY` sends a signed
# bundle.  U-Boot's own `crc32 ADDR ${filesize}` (this build has no sha256)
# must equal the host's CRC-32 of the image, and `md.b` must read back its
# first and last bytes.  A second push starts only after loady has given up
# on CRC-16 (ten 'C's, then NAK: common/xyzModem.c) and must go through in
# checksum mode.  Exit 0 pass, 77 skip (the packages cannot be had), else
# fail.
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/uboot.sh"
why=$(uboot_skip_reason)
for tool in gzip od openssl; do
	command -v "$tool" >/dev/null 2>&1 || why=${why:-$tool is not installed}
done
if [ -n "$why" ]; then
	echo "skip: $why"
	exit 77
fi
. "$TOP/tests/lib.sh"
[ -x "$STATION" ] || { echo "FAIL: $STATION is missing (run make test-bins)"; exit 1; }

ADDR=0x40200000 # 2 MiB into the 256 MiB of RAM; checked against bdinfo

uboot_boot || { echo "FAIL: U-Boot did not come up"; exit 1; }
check "U-Boot answers a command at its prompt" cmd version
# The timing facts in transport/ymodem.c are from 2023.01 (Debian 12).
echo "     ($(grep -m 1 '^U-Boot' <<<"$CON"))"

cmd bdinfo
ram_start=$(sed -n 's/^-> start *= *\(0x[0-9a-f]*\).*/\1/p' <<<"$CON" | head -n 1)
low_rsv=$(sed -n 's/^ *reserved\[[0-9]*\][^[]*\[\(0x[0-9a-f]*\)-.*/\1/p' <<<"$CON" | sort | head -n 1)
ram_ok() { # ADDR .. ADDR+SIZE lies in RAM below what U-Boot reserved
	[ -n "$ram_start" ] && [ -n "$low_rsv" ] &&
		((ADDR >= ram_start && ADDR + $1 <= low_rsv))
}

# --- the station's side ----------------------------------------------------------
make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki" \
	"[port uboot]" "path = $PTY" "mode = ymodem" "baud = 115200" \
	"model = QEMU-ARM64" "serial = SN-UBOOT-1"
export STATION_CONFIG="$T/station.conf"

# push_and_check NAME SIZE SEQUENCE PRE-WAIT MAX-S: loady, wait PRE-WAIT
# seconds without reading the console (what U-Boot sends stays queued for
# the station), push (in at most MAX-S seconds, when given), then U-Boot's
# CRC-32 and readback.
push_and_check() {
	local name=$1 size=$2 seq=$3 prewait=$4 max_s=${5:-}
	local img=$T/$name.bin want got last hexend t0 t1
	head -c "$size" /dev/urandom >"$img"
	"$STATION" bundle create --name "$name" --version 1.0.$seq --sequence "$seq" \
		--model QEMU-ARM64 --image app="$img@0" "$T/$name" >/dev/null ||
		{ not_ok "bundle $name is created"; return; }
	"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
		"$T/$name/manifest" >/dev/null || { not_ok "bundle $name is signed"; return; }
	check "$name: $size bytes at $ADDR fit in RAM below U-Boot's reserved area" ram_ok "$size"
	con_reset
	printf 'loady %s\r' "$ADDR" >&3
	sleep "$prewait"
	t0=$SECONDS
	if timeout 120 "$STATION" push --technician ana --device "ymodem:$PTY" \
		"$T/$name" >"$T/$name.push.out" 2>&1; then
		ok "$name: station push to loady succeeds"
	else
		not_ok "$name: station push to loady succeeds: $(tail -n 3 "$T/$name.push.out")"
	fi
	t1=$SECONDS
	echo "     ($name: push took $((t1 - t0)) s)"
	[ -z "$max_s" ] || check "$name: the push took at most $max_s s" \
		test $((t1 - t0)) -le "$max_s"
	con_until $'\n=> ' 30
	check "$name: U-Boot counted $size bytes" \
		grep -q "Total Size *= 0x[0-9a-f]* = $size Bytes" <<<"$CON"
	want=$(gzip -c "$img" | tail -c 8 | od -An -tx4 -N4 | tr -d ' ')
	cmd "crc32 $ADDR \${filesize}"
	got=$(sed -n 's/.*==> \([0-9a-f]\{8\}\).*/\1/p' <<<"$CON")
	check "$name: U-Boot's crc32 of what it stored ($got) is the image's ($want)" \
		test "$got" = "$want"
	cmd "md.b $ADDR 10"
	got=$(sed -n "s/^${ADDR#0x}: \(\([0-9a-f][0-9a-f] \)\{16\}\).*/\1/p" <<<"$CON" | tr -d ' ')
	check "$name: md.b reads back the first 16 bytes" \
		test "$got" = "$(od -An -tx1 -N16 "$img" | tr -d ' \n')"
	last=$(printf '%x' $((ADDR + size - 16)))
	cmd "md.b $last 10"
	got=$(sed -n "s/^0*${last}: \(\([0-9a-f][0-9a-f] \)\{16\}\).*/\1/p" <<<"$CON" | tr -d ' ')
	check "$name: md.b reads back the last 16 bytes" \
		test "$got" = "$(tail -c 16 "$img" | od -An -tx1 | tr -d ' \n')"
	hexend=$(printf '%x' "$size")
	cmd "echo \${filesize}"
	check "$name: \${filesize} is $size (0x$hexend)" grep -qx "$hexend" <<<"$CON"
}

# 64 KiB and a 3-byte tail: padding must not reach U-Boot's file size.
push_and_check crc 65539 7 0
# After 52 s the line holds ten 'C's and two NAKs: loady is in checksum
# mode.  It does not print its mode (xyzModem's summary is debug output);
# a CRC-16 block 0 is refused there with NAK every 4.75 s until loady asks
# with 'C' again, ~20 s later (seen with the CRC-only sender), so a push
# that ends within 15 s (about 2 s here) took the checksum path.
push_and_check cksum 20000 8 52 15

finish
