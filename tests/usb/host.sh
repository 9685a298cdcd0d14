# tests/usb/host.sh: the host half of the USB test harness (sourced by
# tests/e2e_usb.sh and tests/bench_usb.sh).  It gets a real USB stack on a
# machine without USB hardware: Debian's own kernel boots under qemu (TCG)
# with a busybox initramfs holding the station, the DFU simulator, dfu-util
# and usbip; the simulator is a USB/IP server on the guest's loopback and
# vhci-hcd imports it, so the kernel enumerates it like any device.  The
# guest prints "ok ..." / "FAIL ..." lines on its serial console.
#
# The kernel package is downloaded once with apt-get into a cache outside
# the source tree and reused; nothing of it is ever committed.

USB_MODULES="usb-common usbcore usbip-core vhci-hcd"

# usb_need_tools: 0, or 1 with the reason in USB_SKIP.
usb_need_tools() {
	local t
	for t in qemu-system-x86_64 usbip dfu-util cpio gzip dpkg-deb apt-get; do
		command -v "$t" >/dev/null 2>&1 || { USB_SKIP="$t is not installed (make deps)"; return 1; }
	done
	if [ ! -x /usr/bin/busybox ] || ! file -L /usr/bin/busybox 2>/dev/null | grep -q 'statically linked'; then
		# `file` may be missing; ldd says "not a dynamic executable".
		if ! { ldd /usr/bin/busybox 2>&1 | grep -q 'not a dynamic'; }; then
			USB_SKIP="a static busybox is needed (Debian package busybox-static)"
			return 1
		fi
	fi
	return 0
}

# usb_cache_dir: where the kernel is kept between runs.
usb_cache_dir() {
	if [ -n "${STATION_TEST_CACHE:-}" ]; then
		echo "$STATION_TEST_CACHE"
	elif [ "$(id -u)" = 0 ]; then
		echo /var/cache/station-test
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/station-test"
	fi
}

# usb_kernel: sets USB_KERNEL (a vmlinuz) and USB_MODDIR (the four modules),
# downloading the current Debian 12 kernel package when the cache has none.
# Returns 1 with USB_SKIP set when that is impossible (no network).
usb_kernel() {
	local cache pkg dir ver
	cache=$(usb_cache_dir)
	mkdir -p "$cache" || { USB_SKIP="cannot create the kernel cache $cache"; return 1; }
	(
		flock -w 300 9 || exit 1
		# The package linux-image-amd64 depends on the current kernel.
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
		if [ -z "$pkg" ]; then
			# An apt cache without lists: use what we already have.
			ls -d "$cache"/kernel-*/vmlinuz >/dev/null 2>&1 && exit 0
			apt-get update -qq >/dev/null 2>&1 || true
			pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
				sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
		fi
		[ -n "$pkg" ] || exit 1
		dir="$cache/kernel-${pkg#linux-image-}"
		[ -f "$dir/vmlinuz" ] && [ -f "$dir/modules/vhci-hcd.ko" ] && exit 0
		work=$(mktemp -d "$cache/dl.XXXXXX") || exit 1
		trap 'rm -rf "$work"' EXIT
		(cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>&1) || exit 1
		dpkg-deb -x "$work"/"$pkg"_*.deb "$work/x" || exit 1
		mkdir -p "$work/k/modules"
		cp "$work"/x/boot/vmlinuz-* "$work/k/vmlinuz" || exit 1
		for m in $USB_MODULES; do
			f=$(find "$work/x/lib/modules" -name "$m.ko*" | head -n 1)
			[ -n "$f" ] || exit 1
			case $f in
			*.xz) xz -dc "$f" >"$work/k/modules/$m.ko" ;;
			*.zst) zstd -qdc "$f" >"$work/k/modules/$m.ko" ;;
			*) cp "$f" "$work/k/modules/$m.ko" ;;
			esac || exit 1
		done
		rm -rf "$dir" && mv "$work/k" "$dir"
	) 9>"$cache/.lock" || {
		USB_SKIP="cannot download the Debian kernel package (linux-image-amd64's dependency) into $cache"
		return 1
	}
	dir=$(ls -d "$cache"/kernel-*/ 2>/dev/null | sort -V | tail -n 1)
	USB_KERNEL="${dir}vmlinuz"
	USB_MODDIR="${dir}modules"
	[ -f "$USB_KERNEL" ] || { USB_SKIP="no kernel in $cache"; return 1; }
	return 0
}

# usb_copy_bin ROOT FILE...: copy programs and every shared library they
# load into ROOT, at the same paths.
usb_copy_bin() {
	local root=$1 f lib
	shift
	mkdir -p "$root/usr/bin"
	for f in "$@"; do
		cp -L "$f" "$root/usr/bin/" || return 1
		for lib in $(ldd "$f" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
			[ -e "$root$lib" ] && continue
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib" || return 1
		done
	done
}

# usb_initramfs OUT PAYLOAD-DIR PROGRAM...: a gzip'd cpio with busybox, the
# programs and their libraries, the modules, tests/usb/init as /init and
# PAYLOAD-DIR as /payload (its run.sh is what the guest runs).
usb_initramfs() {
	local out=$1 payload=$2 root
	shift 2
	root=$(mktemp -d "${TMPDIR:-/tmp}/station-initramfs.XXXXXX")
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,lib/modules,payload}
	cp /usr/bin/busybox "$root/bin/busybox"
	usb_copy_bin "$root" "$@" || { rm -rf "$root"; return 1; }
	cp "$USB_MODDIR"/*.ko "$root/lib/modules/"
	cp "$TOP/tests/usb/init" "$root/init"
	chmod 0755 "$root/init"
	cp -a "$payload"/. "$root/payload/"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
	local rc=$?
	rm -rf "$root"
	return $rc
}

# usb_boot INITRD CONSOLE-LOG SECONDS: boot the guest; it powers off when
# its run.sh ends.  The whole run is bounded by SECONDS.
usb_boot() {
	timeout --kill-after=5 "$3" qemu-system-x86_64 -accel tcg -cpu max \
		-m 512 -smp 1 -nic none -display none -monitor none \
		-no-reboot -serial "file:$2" \
		-kernel "$USB_KERNEL" -initrd "$1" \
		-append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init" \
		</dev/null >/dev/null 2>&1
}
