#!/usr/bin/env bash
# dist/appliance/mkimage.sh OUTDIR: the appliance image (docs/appliance.md),
# from Debian 12 packages and this tree's $BUILD/station only.
#   OUTDIR/station.img  64 MiB FAT32 "STNBOOT" on the whole disk: syslinux,
#                       syslinux.cfg, vmlinuz, initrd.img, provision/README.txt
#   OUTDIR/data.img     256 MiB sparse ext4 "STNDATA", empty
#   OUTDIR/vmlinuz, OUTDIR/initrd.img (the same files, for -kernel boots)
#   OUTDIR/MANIFEST     each file of the root: Debian package and version
#   OUTDIR/SIZES        bytes of each output
# Env: BUILD (the build tree holding station; default build).
# Exit 77 with a last line "skip: REASON" only when the Debian kernel
# package cannot be had (no archive here); 1 on any other failure, a
# missing tool included (`make deps` installs them all).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:?usage: mkimage.sh OUTDIR}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
station=$BUILD/station

skip() { echo "skip: $*"; exit 77; }
fail() { echo "mkimage.sh: $*" >&2; exit 1; }

for t in mkfs.vfat mcopy mmd mdir syslinux mke2fs cpio gzip strip ldd dpkg dpkg-query sha256sum; do
	command -v "$t" >/dev/null 2>&1 || fail "$t is not installed: run make deps"
done
{ ldd /usr/bin/busybox 2>&1 || true; } | grep -q "not a dynamic" ||
	fail "a static busybox is needed (Debian package busybox-static): run make deps"
[ -x "$station" ] || fail "no $station: run make first"

# The kernel: its own skip (77) passes through.
set +e
kdir=$(bash "$here/kernel.sh" "$here/modules" | tail -n 1)
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 77 ] && skip "cannot have the Debian kernel package (dist/appliance/kernel.sh)"
if [ "$rc" -ne 0 ] || [ ! -f "$kdir/vmlinuz" ]; then
	fail "dist/appliance/kernel.sh failed"
fi
kver=$(ls "$kdir/lib/modules")
read -r kpkg kversion <"$kdir/package"

# Every file the image holds gets one date: the last commit's.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH=$epoch

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/station-appliance.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
# Debian 12's merged /usr: /bin, /sbin, /lib, /lib64 point into /usr.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{dev,proc,sys,run,tmp,persist,etc,var}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 1777 "$root/tmp"
mkdir -m 0700 "$root/root"
ln -s ../run "$root/var/run"
ln -s ../tmp "$root/var/tmp"
src=$work/sources # "ROOT-PATH HOST-PATH" of each copied file, for MANIFEST

# put HOST-FILE ROOT-PATH: copy one file (dereferenced), noting its origin.
put() {
	mkdir -p "$root$(dirname "$2")"
	cp -L "$1" "$root$2"
	printf '%s %s\n' "$2" "$1" >>"$src"
}

# busybox with every applet linked at build time (/sbin/modprobe is the
# kernel's usermode helper for request_module: it must exist).
put /usr/bin/busybox /usr/bin/busybox
busybox --list-full | while read -r a; do
	p=/usr/${a#usr/}
	[ -e "$root$p" ] || [ -L "$root$p" ] || ln -s /usr/bin/busybox "$root$p"
done
[ -L "$root/usr/sbin/modprobe" ] || fail "busybox has no modprobe applet"

# The station, stripped, and the libraries it loads at their paths.
mkdir -p "$root/usr/bin"
strip --strip-unneeded -o "$root/usr/bin/station" "$station"
printf '/usr/bin/station station\n' >>"$src"
for lib in $(ldd "$station" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
	[ -e "$root$lib" ] || put "$lib" "$lib"
done

# Terminal descriptions a console or a serial terminal may announce.
for t in linux vt100 vt220 xterm xterm-256color screen tmux; do
	f=""
	for d in /lib/terminfo /usr/share/terminfo /etc/terminfo; do
		[ -f "$d/${t:0:1}/$t" ] && { f=$d/${t:0:1}/$t; break; }
	done
	[ -n "$f" ] || fail "no terminfo entry $t (Debian packages ncurses-base, ncurses-term)"
	put "$f" "$f"
done
# The text UI calls setlocale(LC_ALL, ""): C.UTF-8 for ncursesw's wide
# characters (glibc 2.36 loads it from /usr/lib/locale/C.utf8).
if [ -d /usr/lib/locale/C.utf8 ]; then
	while read -r f; do put "$f" "$f"; done < <(find /usr/lib/locale/C.utf8 -type f | LC_ALL=C sort)
else
	fail "no C.UTF-8 locale (/usr/lib/locale/C.utf8, Debian package libc-bin)"
fi

# The kernel's modules (only the list's closure) and the list init loads.
mkdir -p "$root/usr/lib/modules"
cp -a "$kdir/lib/modules/$kver" "$root/usr/lib/modules/"
mkdir -p "$root/etc/appliance"
sed 's/#.*//; s/[[:space:]]//g; /^$/d' "$here/modules" >"$root/etc/appliance/modules"
printf '%s %s %s\n' "$kpkg" "$kversion" "$kver" >"$root/etc/appliance/kernel"

printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'station appliance %s\n' \
	"$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)" >"$root/etc/appliance/version"
install -m 0755 "$here/init" "$root/init"

# A reproducible cpio: sorted names, root-owned, one date, gzip -n.
find "$root" -exec touch -h -d "@$epoch" {} +
(cd "$root" && find . | LC_ALL=C sort |
	cpio -o -H newc --quiet --reproducible --owner=0:0) | gzip -9n >"$work/initrd.img"
cp "$kdir/vmlinuz" "$work/vmlinuz"
touch -d "@$epoch" "$work/initrd.img" "$work/vmlinuz"

# MANIFEST: every file of the root -> Debian package and version.
pkgof() { # host path -> "package version" or ""
	local p=$1 r
	r=$(dpkg -S "$p" 2>/dev/null | head -n 1) ||
		r=$(dpkg -S "$(readlink -f "$p")" 2>/dev/null | head -n 1) ||
		r=$(dpkg -S "/usr$p" 2>/dev/null | head -n 1) ||
		r=$(dpkg -S "${p#/usr}" 2>/dev/null | head -n 1) || return 1
	r=${r%%: *}; r=${r%%, *}
	printf '%s %s\n' "${r%%:*}" "$(dpkg-query -W -f='${Version}' "$r")"
}
{
	printf '# station appliance: file -> Debian package version\n'
	printf '/vmlinuz %s %s\n' "$kpkg" "$kversion"
	stn_ver="$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
	while read -r rp hp; do
		if [ "$hp" = station ]; then
			printf '%s station %s\n' "$rp" "$stn_ver"
		else
			pv=$(pkgof "$hp") || fail "no Debian package owns $hp"
			printf '%s %s\n' "$rp" "$pv"
		fi
	done <"$src"
	(cd "$root" && find usr/lib/modules -type f | LC_ALL=C sort) |
		while read -r f; do printf '/%s %s %s\n' "$f" "$kpkg" "$kversion"; done
	printf '/init station %s\n' "$stn_ver"
	printf '/etc/appliance/modules station %s\n' "$stn_ver"
} | LC_ALL=C sort -u >"$work/MANIFEST"

# station.img: FAT32 on the whole disk (no partition table), BIOS boot
# through syslinux (its mtools installer needs no root and no loop device).
export MTOOLS_SKIP_CHECK=1
img=$work/station.img
mkfs.vfat -C -F 32 -n STNBOOT --invariant "$img" 65536 >/dev/null
syslinux --install "$img"
cp "$here/syslinux.cfg" "$work/syslinux.cfg"
cp "$here/provision-README.txt" "$work/README.txt"
touch -d "@$epoch" "$work/syslinux.cfg" "$work/README.txt"
mcopy -m -i "$img" "$work/syslinux.cfg" "$work/vmlinuz" "$work/initrd.img" ::/
mmd -i "$img" ::provision
mcopy -m -i "$img" "$work/README.txt" ::provision/README.txt

# data.img: the data disk, blank: init makes its directories.
truncate -s 256M "$work/data.img"
mke2fs -q -t ext4 -L STNDATA -E root_owner=0:0 "$work/data.img" 256M

for f in station.img data.img vmlinuz initrd.img MANIFEST; do
	mv -f "$work/$f" "$out/$f"
done
{
	printf 'station.img %s\n' "$(stat -c %s "$out/station.img")"
	printf 'data.img %s (allocated %s)\n' "$(stat -c %s "$out/data.img")" \
		"$(( $(stat -c %b "$out/data.img") * $(stat -c %B "$out/data.img") ))"
	printf 'vmlinuz %s\n' "$(stat -c %s "$out/vmlinuz")"
	printf 'initrd.img %s\n' "$(stat -c %s "$out/initrd.img")"
	printf 'root %s (unpacked)\n' "$(du -sb --apparent-size "$root" | cut -f1)"
	printf 'modules %s (%s files)\n' "$(du -sb --apparent-size "$root/usr/lib/modules" | cut -f1)" \
		"$(find "$root/usr/lib/modules" -name '*.ko' | wc -l)"
	printf 'station %s\n' "$(stat -c %s "$root/usr/bin/station")"
} >"$out/SIZES"
echo "appliance: $out (kernel $kpkg $kversion)"
