#!/usr/bin/env bash
# tests/e2e_usb.sh: the station against a real kernel USB stack.  Debian's
# kernel boots under qemu with the DFU simulator as a USB/IP device (see
# tests/usb/host.sh); inside, tests/usb/guest.sh runs `station devices`,
# `station push` with readback, dfu-util -D/-U against the same simulator,
# every fault mode with its journaled outcome, an unplug mid-transfer,
# run-time devices, every identity outcome (formats §9) through `station
# push` against keyed units, and hot-plug events.  The guest's "ok"/"FAIL" lines are
# counted here.  Skips (77) only when a tool or the kernel package cannot
# be had.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/usb/host.sh"

if [ -n "${STATION_USB_CHECKED:-}" ]; then
	echo "skip: already run by make check-usb"
	exit 77
fi
usb_need_tools || { echo "skip: $USB_SKIP"; exit 77; }
for b in station sim-dfu tests/test_usb_device; do
	[ -x "$TOP/$BUILD/$b" ] || { echo "missing $BUILD/$b: make test-bins first"; exit 1; }
done
usb_kernel || { echo "skip: $USB_SKIP"; exit 77; }

# --- payload: PKI, configuration, signed bundles (built on the host) -------
P=$T/payload
mkdir -p "$P"
make_pki "$P/pki"
# Paths in the configuration are relative to it, so they hold in the guest.
write_config "$P/station.conf" /tmp/station-data pki
# The same station with one block's busy time capped at 1 s ([usb]).
write_config "$P/station-busy1s.conf" /tmp/station-data pki \
	"[usb]" "busy-timeout = 1s"
# The identity checks' station: the keyed units' model must prove itself
# (formats §8 [class]); its own journal (data directory) keeps the
# records of those checks apart.
write_config "$P/station-id.conf" /tmp/station-id pki \
	"[class tx200]" "model = TX-200" "device-anchors = pki/mfg-anchors.pem" \
	"attestation = required" "proof = required"
bundle() { # bundle DIR NAME SEQUENCE HARDWARE|- LABEL=FILE[@SLOT]...
	local dir=$1 name=$2 seq=$3 hw=$4
	shift 4
	local args=()
	# Devices identified by their descriptors report no hardware
	# revision, so bundles for them name none.
	[ "$hw" != - ] && args+=(--hardware "$hw")
	for i in "$@"; do args+=(--image "$i"); done
	"$STATION" bundle create --name "$name" --version "2.4.$seq" --sequence "$seq" \
		--model TX-200 "${args[@]}" "$dir" >/dev/null &&
	"$STATION" sign --key "$P/pki/release1.key" --cert "$P/pki/release1.pem" \
		--label rel1 "$dir/manifest" >/dev/null
}
sim_image "$T/app.bin" 42 2.4.42 1048576
sim_image "$T/app43.bin" 43 2.4.43 300000
sim_image "$T/small.bin" 10 2.4.10 200000
bundle "$P/b1" tx200-app 42 - app="$T/app.bin@0" || { echo "cannot build bundles"; exit 1; }
bundle "$P/b43" tx200-app 43 revB app="$T/app43.bin@0"
bundle "$P/small" tx200-small 10 - small="$T/small.bin@0"
# For the keyed units (station-info revB, sequence 41): 64 KiB without
# the simulator's header, so an install leaves the unit at sequence 41 and
# the same bundle can be pushed to it again.
head -c 65536 /dev/urandom >"$T/id.bin"
bundle "$P/bid" tx200-id 42 revB id="$T/id.bin@0"
cp "$TOP/tests/usb/guest.sh" "$P/run.sh"

usb_initramfs "$T/initrd.gz" "$P" "$TOP/$BUILD/station" "$TOP/$BUILD/sim-dfu" \
	"$TOP/$BUILD/tests/test_usb_device" \
	"$(command -v dfu-util)" "$(command -v usbip)" || { echo "cannot build the initramfs"; exit 1; }

# --- boot, bounded ----------------------------------------------------------
start=$(date +%s)
usb_boot "$T/initrd.gz" "$T/console.log" "${STATION_USB_TIMEOUT:-220}"
rc=$?
tr -d '\r' <"$T/console.log" >"$T/console.txt"
grep -E '^(ok   |FAIL )' "$T/console.txt"
while read -r line; do
	case $line in
	"ok   "*) checks=$((checks + 1)) ;;
	"FAIL "*) checks=$((checks + 1)); fails=$((fails + 1)) ;;
	esac
done <"$T/console.txt"
if ! grep -q '^guest-done' "$T/console.txt"; then
	not_ok "the guest finished within its time limit (qemu exit $rc)"
	tail -n 40 "$T/console.txt"
elif [ "$fails" -gt 0 ]; then
	echo "--- guest console (last 60 lines) ---"
	grep -vE '^(ok   |FAIL )' "$T/console.txt" | tail -n 60
fi
[ "$checks" -gt 0 ] || not_ok "the guest ran its checks"
echo "guest run: $(( $(date +%s) - start )) s"
finish
