#!/usr/bin/env bash
# dist/appliance/kernel.sh [MODULE-LIST]: the appliance's kernel, from
# Debian's archive.  Prints (last line of stdout) a directory holding
#   vmlinuz, config, lib/modules/$KVER/ (modules.dep made by busybox depmod)
# with only the modules MODULE-LIST (default dist/appliance/modules) names
# and what they depend on.
#
# The package is the one linux-image-amd64 depends on, chosen as
# tests/usb/host.sh chooses it; the result is cached as
# appliance-kernel-$KVER under the same cache root and lock, so a second
# build downloads nothing.  Exit 77 (reason on stderr, last line
# "skip: ...") when the package cannot be had; 1 on any other failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list=${1:-$here/modules}

skip() { echo "skip: $*" >&2; exit 77; }
fail() { echo "kernel.sh: $*" >&2; exit 1; }

for t in apt-get apt-cache dpkg-deb tar flock busybox; do
	command -v "$t" >/dev/null 2>&1 || fail "$t is not installed: run make deps"
done
[ -r "$list" ] || fail "cannot read the module list $list"

# The cache root tests/usb/host.sh uses (usb_cache_dir).
if [ -n "${STATION_TEST_CACHE:-}" ]; then
	cache=$STATION_TEST_CACHE
elif [ "$(id -u)" = 0 ]; then
	cache=/var/cache/station-test
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/station-test
fi
mkdir -p "$cache" || skip "cannot create the kernel cache $cache"

kpkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1
}

# Module names as the list spells them, '-' and '_' alike.
names=$(sed 's/#.*//; s/[[:space:]]//g; /^$/d; s/-/_/g' "$list" | LC_ALL=C sort -u)
[ -n "$names" ] || fail "no module names in $list"
# The list's hash: a changed list makes a new tree, not a stale one.
tag=$(printf '%s\n' "$names" | sha256sum | cut -c1-12)

exec 9>"$cache/.lock"
flock -w 300 9 || fail "cannot lock $cache/.lock"

pkg=$(kpkg)
if [ -z "$pkg" ]; then
	# An apt cache without lists: use what we already have.
	have=$(ls -d "$cache"/appliance-kernel-*/ 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$have" ] && [ "$(cat "$have/modules.tag" 2>/dev/null)" = "$tag" ]; then
		echo "${have%/}"
		exit 0
	fi
	apt-get update -qq >/dev/null 2>&1 || true
	pkg=$(kpkg)
fi
[ -n "$pkg" ] || skip "cannot find the Debian kernel package (linux-image-amd64's dependency)"
kver=${pkg#linux-image-}
dir=$cache/appliance-kernel-$kver
if [ -f "$dir/vmlinuz" ] && [ -f "$dir/lib/modules/$kver/modules.dep" ] &&
	[ "$(cat "$dir/modules.tag" 2>/dev/null)" = "$tag" ]; then
	echo "$dir"
	exit 0
fi

work=$(mktemp -d "$cache/dl.XXXXXX") || fail "cannot make a work directory in $cache"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>&1) ||
	skip "cannot download the Debian kernel package $pkg into $cache"
deb=$(ls "$work"/"$pkg"_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || skip "apt-get download left no $pkg package in $cache"
version=$(dpkg-deb -f "$deb" Version)

# Pass 1: the kernel, its config and the package's module index (the
# package ships no modules.dep: its postinst makes one).
mkdir -p "$work/x"
mdir=lib/modules/$kver
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" --wildcards \
	"./boot/vmlinuz-$kver" "./boot/config-$kver" \
	"./$mdir/modules.builtin" "./$mdir/modules.order" ||
	fail "cannot unpack $deb"

# key PATH: a module's name as modprobe sees it.
key() { local b=${1##*/}; b=${b%%.ko*}; echo "${b//-/_}"; }
declare -A where=() have=()
while read -r p; do where[$(key "$p")]=$p; done <"$work/x/$mdir/modules.order"

# Then the list's modules, then what they depend on (modinfo's depends=),
# a pass per level until nothing new is named.
want=$names
while [ -n "$want" ]; do
	paths=()
	for m in $want; do
		[ -n "${have[$m]:-}" ] && continue
		have[$m]=1
		if [ -z "${where[$m]:-}" ]; then
			# A built-in module needs no file.
			grep -q "/${m//_/[-_]}\.ko\$" "$work/x/$mdir/modules.builtin" ||
				fail "module $m (from $list) is not in $pkg"
			continue
		fi
		paths+=("./$mdir/${where[$m]}")
	done
	[ ${#paths[@]} -gt 0 ] || break
	pats=()
	for p in "${paths[@]}"; do pats+=("$p*"); done # .ko, .ko.xz or .ko.zst
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" --wildcards "${pats[@]}" ||
		fail "cannot unpack modules from $deb"
	want=""
	for p in "${paths[@]}"; do
		f=$(ls "$work/x/${p#./}"* | head -n 1)
		case $f in
		*.xz) xz -d "$f" && f=${f%.xz} ;;
		*.zst) zstd -qd --rm "$f" && f=${f%.zst} ;;
		esac || fail "cannot decompress $f"
		d=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n 1 | tr , ' ')
		for m in $d; do want="$want ${m//-/_}"; done
	done
done

mkdir -p "$work/k/$mdir"
cp "$work"/x/boot/vmlinuz-"$kver" "$work/k/vmlinuz"
cp "$work"/x/boot/config-"$kver" "$work/k/config"
cp -a "$work/x/$mdir/kernel" "$work/k/$mdir/"
cp "$work/x/$mdir/modules.builtin" "$work/x/$mdir/modules.order" "$work/k/$mdir/"
busybox depmod -b "$work/k" "$kver" || fail "busybox depmod failed"
printf '%s %s\n' "$pkg" "$version" >"$work/k/package"
printf '%s\n' "$tag" >"$work/k/modules.tag"
rm -rf "$dir" && mv "$work/k" "$dir"
echo "$dir"
