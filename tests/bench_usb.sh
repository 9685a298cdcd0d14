#!/usr/bin/env bash
# tests/bench_usb.sh: part of `make bench`.  `station push` against
# `dfu-util -D` of the same 1 MiB and 8 MiB images to the same DFU
# simulator in the same qemu guest (tests/usb/host.sh), as ratios, with and
# without a busy poll timeout after each block, and with and without the
# station's readback.  Targets: no slower than dfu-util without readback,
# under 1.6x with it.  Prints results; asserts nothing.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/usb/host.sh"

usb_need_tools || { echo "skip: $USB_SKIP"; exit 0; }
usb_kernel || { echo "skip: $USB_SKIP"; exit 0; }
for b in station sim-dfu; do
	[ -x "$TOP/$BUILD/$b" ] || { echo "missing $BUILD/$b"; exit 1; }
done

P=$T/payload
mkdir -p "$P"
make_pki "$P/pki"
write_config "$P/station.conf" /tmp/station-data pki
for size in 1 8; do
	sim_image "$T/app$size.bin" "$size" "1.0.$size" $((size * 1048576))
	"$STATION" bundle create --name bench --version "1.0.$size" --sequence "$size" \
		--model TX-200 --image app="$T/app$size.bin@0" "$P/b$size" >/dev/null &&
	"$STATION" sign --key "$P/pki/release1.key" --cert "$P/pki/release1.pem" \
		"$P/b$size/manifest" >/dev/null || { echo "cannot build bundles"; exit 1; }
done
cp "$TOP/tests/usb/bench-guest.sh" "$P/run.sh"
usb_initramfs "$T/initrd.gz" "$P" "$TOP/$BUILD/station" "$TOP/$BUILD/sim-dfu" \
	"$(command -v dfu-util)" "$(command -v usbip)" || { echo "cannot build the initramfs"; exit 1; }
echo "== USB DFU push vs dfu-util -D, in a qemu (TCG) guest over USB/IP"
echo "   (ratio: station / dfu-util, best of two runs each; below 1 is faster)"
usb_boot "$T/initrd.gz" "$T/console.log" "${STATION_USB_BENCH_TIMEOUT:-500}"
tr -d '\r' <"$T/console.log" | grep -E '^bench' && ! grep -q '^bench-error' "$T/console.log" || {
	echo "the guest reported an error or no results"; tr -d '\r' <"$T/console.log" | tail -n 30; exit 1; }
