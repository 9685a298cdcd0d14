#!/usr/bin/env bash
# tests/bench_appliance.sh: part of `make bench`.  The appliance image's
# sizes (dist/appliance/mkimage.sh) and its boot-to-sign-in time under qemu
# TCG over three boots of one provisioned image (the first one imports the
# provisioning files), each measured from qemu's start to the sign-in
# screen on the serial console.  Targets (issue 16): image under 150 MiB,
# sign-in under 30 s.  Prints results; asserts nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tui_lib.sh"
. "$(dirname "$0")/appliance_lib.sh"

rc=0; appl_need_tools || rc=$?
[ "$rc" -eq 77 ] && { echo "skip: $APPL_SKIP"; exit 0; }
[ "$rc" -eq 0 ] || exit 1
t0=$(date +%s.%N)
rc=0; appl_build "$T/img" || rc=$?
[ "$rc" -eq 77 ] && { echo "skip: $APPL_SKIP"; exit 0; }
[ "$rc" -eq 0 ] || exit 1
echo "== appliance image (mkimage.sh: $(appl_since "$t0") s)"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
for f in station.img initrd.img vmlinuz data.img; do
	[ -f "$T/img/$f" ] || continue
	printf '  %-12s %10s apparent, %10s on disk\n' "$f" \
		"$(mib "$(stat -c %s "$T/img/$f")")" "$(mib "$(($(stat -c %b "$T/img/$f") * 512))")"
done
[ -f "$T/img/SIZES" ] && sed 's/^/  SIZES: /' "$T/img/SIZES"

appl_site "$T/site" || { echo "cannot set up the site's files"; exit 1; }
appl_prepare "$T/img" "$T/vm" "$T/site" || { echo "cannot prepare the image"; exit 1; }
appl_sim "$T/site/pki" || exit 1
echo "== boot to the sign-in screen, qemu TCG -smp 1 (target < 30 s)"
for i in 1 2 3; do
	appl_boot "$T/vm" 150
	if ! WAIT_TENTHS=1200 wait_screen "Technician:" >/dev/null; then
		echo "  boot $i: no sign-in screen within 120 s"; appl_diag "$T/vm/data.img"; exit 1
	fi
	secs=$(appl_since "$APPL_T0")
	init=$(tr -d '\r' <"$APPL_KLOG" | sed -n 's/.*appliance: station-start t=\([0-9.]*\).*/\1/p' | head -n 1)
	printf '  boot %d: %s s (guest uptime at station-start: %s s)\n' "$i" "$secs" "${init:-?}"
	send Escape
	wait_screen "Quit the station?" >/dev/null && send y
	rc=$(qemu_exited 60) || { echo "  boot $i: qemu did not power off"; exit 1; }
	[ "$rc" = 0 ] || { echo "  boot $i: qemu exited $rc"; exit 1; }
done
