#!/usr/bin/env bash
# tests/e2e_media.sh: removable media end to end.  `station media` lists the
# bundles on a plain media directory and on loop-mounted ext4 (and vfat,
# when the kernel has it) images built here with mkfs: several bundles side
# by side, AppleDouble and Spotlight litter skipped, a symlink and a FIFO
# noted and never followed, an oversize manifest refused.  A bundle pushed
# from the stick is altered on the stick after staging: the device still
# gets the bytes that were verified.  A stick that fails mid-copy (its
# device shrunk under the mounted file system, so reads past the cut fail
# with EIO as on a pulled or damaged stick) aborts cleanly with the media
# path, leaves nothing staged, is journaled, and the station goes on
# working.  Loop mounts need root: without, the plain part runs and the
# script exits 77 saying why.
. "$(dirname "$0")/lib.sh"

for tool in openssl socat; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done

MOUNTS=()
LOOPS=()
media_cleanup() {
	local i
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null; done
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
}
trap 'media_cleanup; cleanup' EXIT
trap 'exit 1' INT TERM HUP # so the EXIT trap unmounts and detaches

st() { timeout 60 "$STATION" "$@"; }
# checko WHAT OUTPUT COMMAND...: check, showing OUTPUT when it fails
checko() {
	local what=$1 o=$2
	shift 2
	if "$@"; then ok "$what"; else not_ok "$what"; printf '%s\n' "$o" | sed 's/^/      /'; fi
}

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
sed -i "s|^data = .*|&\nmedia = $T/media|" "$T/station.conf"
export STATION_CONFIG="$T/station.conf"

# mkb DIR NAME VERSION SEQUENCE MODEL IMAGE: a bundle signed by release-1
mkb() {
	mkdir -p "$(dirname "$1")"
	"$STATION" bundle create --name "$2" --version "$3" --sequence "$4" \
		--model "$5" --image "app=$6@0" "$1" >/dev/null &&
		"$STATION" sign --key "$T/pki/release1.key" \
			--cert "$T/pki/release1.pem" "$1/manifest" >/dev/null
}

# litter DIR: what other systems leave on a stick, and what is not ours
litter() {
	local d=$1
	mkdir -p "$d/.Trashes/501/old" "$d/.Spotlight-V100/Store-V2" "$d/.fseventsd"
	cp -r "$d/tx200-2.4.1/." "$d/.Trashes/501/old/"
	printf 'AppleDouble' >"$d/._tx200-2.4.1"
	printf 'AppleDouble' >"$d/tx200-2.4.1/._manifest"
	printf 'not ours' >"$d/README.txt"
	mkdir -p "$d/huge"
	head -c 70000 /dev/zero | tr '\0' '#' >"$d/huge/manifest"
}

sim_image "$T/tx200-app.bin" 42 2.4.1 300000
sim_image "$T/tx300-app.bin" 7 1.0 1000

# --- a plain directory as the media root ------------------------------------
mkdir -p "$T/media"
mkb "$T/media/plain/tx200-2.4.1" tx200-app 2.4.1 42 TX-200 "$T/tx200-app.bin"
mkb "$T/media/plain/updates/tx300-1.0" tx300-app 1.0 7 TX-300 "$T/tx300-app.bin"
litter "$T/media/plain"
ln -s /etc "$T/media/plain/etc-link"
mkfifo "$T/media/plain/fifo"

out=$(st media 2>&1); rc=$?
checko "station media exits 0" "$out" test "$rc" -eq 0
check "lists both bundles side by side with version and sequence" \
	bash -c "grep -Eq '^tx200-app +2.4.1 +42 .*/plain/tx200-2.4.1$' <<<\"\$1\" &&
		grep -Eq '^tx300-app +1.0 +7 .*/plain/updates/tx300-1.0$' <<<\"\$1\"" _ "$out"
check "skips AppleDouble, .Trashes and Spotlight litter" \
	bash -c "! grep -Eq 'Trashes|Spotlight|\._' <<<\"\$1\"" _ "$out"
check "notes the symlink without following it" grep -q "ignored  $T/media/plain/etc-link: symbolic link, not followed" <<<"$out"
check "notes the FIFO without opening it" grep -q "ignored  $T/media/plain/fifo: FIFO, not opened" <<<"$out"
check "refuses the oversize manifest by its size cap" grep -q "refused  $T/media/plain/huge/manifest: rule size-cap: 70000 bytes" <<<"$out"
json=$(st media --json 2>&1)
if command -v python3 >/dev/null; then
	checko "--json is JSON with both bundles" "$json" \
		python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert len(d["bundles"]) == 2' "$json"
else
	checko "--json lists both bundles" "$json" \
		bash -c "[ \$(grep -o '\"sequence\":' <<<\"\$1\" | wc -l) -eq 2 ]" _ "$json"
fi
sed "s|^media = .*|media = $T/no-such-media|" "$T/station.conf" >"$T/bad.conf"
out=$(st media --config "$T/bad.conf" 2>&1); rc=$?
check "a missing media root is a configuration error (exit 2)" \
	bash -c "[ $rc -eq 2 ] && grep -q 'media root' <<<\"\$1\"" _ "$out"

# --watch sees a bundle directory appear (inotify) and stops on SIGTERM
"$STATION" media --watch >"$T/watch.out" 2>&1 &
wpid=$!
PIDS+=("$wpid")
for i in $(seq 1 100); do grep -q '^media root' "$T/watch.out" && break; sleep 0.05; done
mkdir "$T/media/new-stick"
for i in $(seq 1 100); do grep -q 'media-changed' "$T/watch.out" && break; sleep 0.05; done
kill -TERM "$wpid"
wait "$wpid"; rc=$?
check "--watch reports a new entry in the media root" grep -q "event    media-changed $T/media/new-stick" "$T/watch.out"
check "--watch ends cleanly on SIGTERM" test "$rc" -eq 0
rmdir "$T/media/new-stick"

# --- loop-mounted file systems ------------------------------------------------
skip_reason=""
if [ "$(id -u)" != 0 ]; then
	skip_reason="loop mounts need root"
elif ! losetup -f >/dev/null 2>&1; then
	skip_reason="no free loop device (losetup -f failed)"
elif ! command -v mkfs.ext4 >/dev/null || ! grep -qw ext4 /proc/filesystems; then
	skip_reason="no mkfs.ext4 or no ext4 in this kernel"
fi

if [ -z "$skip_reason" ]; then
	# --watch --mount runs the core's media watch: a stick plugged in (a
	# loop device mounted under the media root, as an automounter would)
	# is listed, and it coming and going is journaled as media-seen.
	ws=$T/content-watch
	mkb "$ws/tx300-1.0" tx300-app 1.0 7 TX-300 "$T/tx300-app.bin"
	wimg=$T/watch.img
	truncate -s 16M "$wimg"
	mkfs.ext4 -q -F -d "$ws" "$wimg"
	wloop=$(losetup -f --show "$wimg")
	LOOPS+=("$wloop")
	mkdir -p "$T/media/stick"
	timeout 60 "$STATION" media --watch --mount >"$T/wm.out" 2>&1 &
	wpid=$!
	PIDS+=("$wpid")
	for i in $(seq 1 100); do grep -q '^media root' "$T/wm.out" && break; sleep 0.05; done
	mount -o ro,nosuid,nodev,noexec "$wloop" "$T/media/stick" && MOUNTS+=("$T/media/stick")
	for i in $(seq 1 100); do grep -Eq '^tx300-app .*/stick/tx300-1.0$' "$T/wm.out" && break; sleep 0.05; done
	umount "$T/media/stick"
	for i in $(seq 1 100); do grep -q "media-removed $T/media/stick" "$T/wm.out" && break; sleep 0.05; done
	kill -TERM "$wpid"
	wait "$wpid"; rc=$?
	out=$(cat "$T/wm.out")
	checko "--watch --mount: the plugged stick is reported" "$out" grep -q "^event    media-added $T/media/stick (ext4)" "$T/wm.out"
	checko "--watch --mount: the listing shows the stick and its bundle" "$out" \
		bash -c "grep -q '^medium   $T/media/stick  ext4 $wloop  read-only' '$T/wm.out' &&
			grep -Eq '^tx300-app +1.0 +7 .*/stick/tx300-1.0$' '$T/wm.out'"
	checko "--watch --mount: ends cleanly on SIGTERM" "$out" test "$rc" -eq 0
	j=$("$STATION" journal --type media-seen 2>&1)
	checko "--watch --mount: the stick inserted is journaled (media-seen)" "$j" \
		grep -q "event=inserted path=$T/media/stick source=$wloop fstype=ext4" <<<"$j"
	checko "--watch --mount: the stick removed is journaled (media-seen)" "$j" \
		grep -q "event=removed path=$T/media/stick source=$wloop fstype=ext4" <<<"$j"
	rmdir "$T/media/stick"
fi

if [ -z "$skip_reason" ]; then
	# ext4: everything a hostile stick can hold, built without mounting
	c=$T/content-ext4
	mkb "$c/tx200-2.4.1" tx200-app 2.4.1 42 TX-200 "$T/tx200-app.bin"
	mkb "$c/updates/tx300-1.0" tx300-app 1.0 7 TX-300 "$T/tx300-app.bin"
	head -c $((40 << 20)) /dev/urandom >"$T/big.bin"
	mkb "$c/big" big 1 1 TX-200 "$T/big.bin"
	litter "$c"
	ln -s /etc "$c/etc-link"
	mkfifo "$c/fifo"
	mkb "$c/linked" linked 1 1 TX-200 "$T/tx300-app.bin"
	rm "$c/linked/tx300-app.bin"
	ln -s /etc/passwd "$c/linked/tx300-app.bin"
	img=$T/ext4.img
	truncate -s 128M "$img"
	# big.bin goes in last (debugfs allocates after what is there), so
	# its bundle's manifest and signature lie before it on the device.
	mv "$c/big/big.bin" "$T/big-data.bin"
	mkfs.ext4 -q -F -b 4096 -d "$c" "$img"
	debugfs -w -R "write $T/big-data.bin big/big.bin" "$img" >/dev/null 2>&1
	# Where big.bin's first 8 MiB end on the device: cutting the device
	# there later makes reads past it fail, as on a pulled stick.
	blocks_of() { debugfs -R "blocks /$1" "$img" 2>/dev/null | tr ' ' '\n' | grep .; }
	cut=$(($(blocks_of big/big.bin | head -n 2048 | sort -n | tail -n 1) + 1))
	last_small=$(for f in big big/manifest big/manifest.sig big/manifest.pem; do blocks_of "$f"; done | sort -n | tail -n 1)
	loop=$(losetup -f --show "$img")
	LOOPS+=("$loop")
	mkdir -p "$T/alias" "$T/media/usb0"
	# A writable view of the same file system, for the courier's friend
	# who rewrites a file after staging; the station's view is read-only.
	mount "$loop" "$T/alias" && MOUNTS+=("$T/alias")
	mount --bind "$T/alias" "$T/media/usb0" && MOUNTS+=("$T/media/usb0")
	mount -o remount,bind,ro,nosuid,nodev,noexec "$T/media/usb0"

	out=$(st media 2>&1); rc=$?
	checko "ext4: station media exits 0" "$out" test "$rc" -eq 0
	check "ext4: the medium is listed read-only" grep -q "^medium   $T/media/usb0  ext4 $loop  read-only" <<<"$out"
	check "ext4: all bundles on the stick, side by side" \
		bash -c "grep -Eq '^tx200-app +2.4.1 +42 .*/usb0/tx200-2.4.1$' <<<\"\$1\" &&
			grep -Eq '^tx300-app +1.0 +7 .*/usb0/updates/tx300-1.0$' <<<\"\$1\" &&
			grep -Eq '^big +1 +1 .*/usb0/big$' <<<\"\$1\"" _ "$out"
	check "ext4: litter skipped" bash -c "! grep -Eq 'Trashes|Spotlight|\._|fseventsd' <<<\"\$1\"" _ "$out"
	check "ext4: symlink noted, not followed" grep -q "ignored  $T/media/usb0/etc-link: symbolic link, not followed" <<<"$out"
	check "ext4: FIFO noted, not opened" grep -q "ignored  $T/media/usb0/fifo: FIFO, not opened" <<<"$out"
	check "ext4: oversize manifest refused" grep -q "refused  $T/media/usb0/huge/manifest: rule size-cap" <<<"$out"
	check "ext4: a symlinked image is flagged before staging" grep -q "problem: $T/media/usb0/linked/tx300-app.bin: is a symbolic link" <<<"$out"
	out=$(st verify "$T/media/usb0/linked" 2>&1); rc=$?
	check "ext4: verify refuses the symlinked image (check 3)" \
		bash -c "[ $rc -eq 1 ] && grep -q 'rule images: .*linked/tx300-app.bin: is a symbolic link' <<<\"\$1\"" _ "$out"

	# A push from the stick; the image on the stick is rewritten while
	# the device is being identified, after staging.
	printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\nversion = 2.4.0\n' >"$T/dev1.id"
	start_sim dev1 "$T/dev1.id" --slow 700
	cp "$T/media/usb0/tx200-2.4.1/tx200-app.bin" "$T/original.bin"
	size=$(stat -c %s "$T/original.bin")
	st push --technician ana --device "serial:$T/dev1" "$T/media/usb0/tx200-2.4.1" >"$T/push.out" 2>&1 &
	ppid=$!
	for i in $(seq 1 200); do
		"$STATION" journal 2>/dev/null | grep -q "bundle-verified .*name=tx200-app" && break
		sleep 0.05
	done
	head -c "$size" /dev/urandom >"$T/alias/tx200-2.4.1/tx200-app.bin"
	sync
	wait "$ppid"; rc=$?
	check "TOCTOU: the stick's copy really changed during the push" \
		bash -c "! cmp -s '$T/original.bin' '$T/media/usb0/tx200-2.4.1/tx200-app.bin'"
	checko "TOCTOU: the push still succeeds (exit 0)" "$(cat "$T/push.out")" test "$rc" -eq 0
	check "TOCTOU: the device got the bytes that were verified" cmp -s "$T/dev1.store/slot-0.bin" "$T/original.bin"
	out=$(st verify "$T/media/usb0/tx200-2.4.1" 2>&1); rc=$?
	checko "TOCTOU: staging it again sees the change (check 3 refuses)" "$out" \
		bash -c "[ $rc -eq 1 ] && grep -q 'rule images: .*usb0/tx200-2.4.1/tx200-app.bin: sha256 is' <<<\"\$1\"" _ "$out"

	# The stick fails mid-copy: cut the device under the mounted file
	# system.  Drop caches so big.bin is read from the device.
	check "the cut falls inside big.bin, after its manifest and signature" \
		test "$last_small" -lt "$cut" -a "$cut" -lt "$(blocks_of big/big.bin | sort -n | tail -n 1)"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	truncate -s $((cut * 4096)) "$img"
	losetup -c "$loop"
	before=$("$STATION" journal | wc -l)
	out=$(st verify "$T/media/usb0/big" 2>&1); rc=$?
	checko "pulled mid-copy: exit 3 (I/O, a retry may cure)" "$out" test "$rc" -eq 3
	checko "pulled mid-copy: the message names the file on the stick and where it failed" "$out" \
		grep -Eq "$T/media/usb0/big/big.bin: read error on media after [1-9][0-9]* bytes: Input/output error \(media pulled or damaged\?\)" <<<"$out"
	check "pulled mid-copy: nothing is left in staging" test -z "$(ls -A "$T/data/staging")"
	after=$("$STATION" journal | tail -n +$((before + 1)))
	checko "pulled mid-copy: the failure is journaled with rule io and the path" "$after" \
		grep -q "rule=io .*where=$T/media/usb0/big/big.bin" <<<"$after"
	out=$(st verify "$T/media/plain/tx200-2.4.1" 2>&1); rc=$?
	checko "pulled mid-copy: the station goes on working (next verify exit 0)" "$out" test "$rc" -eq 0

	# vfat, as most couriers' sticks are
	if ! command -v mkfs.vfat >/dev/null; then
		echo "note: vfat part skipped: mkfs.vfat not installed (dosfstools)"
	elif ! grep -qw vfat /proc/filesystems; then
		echo "note: vfat part skipped: this kernel has no vfat file system"
	else
		vimg=$T/vfat.img
		truncate -s 32M "$vimg"
		mkfs.vfat -n STICK "$vimg" >/dev/null
		vloop=$(losetup -f --show "$vimg")
		LOOPS+=("$vloop")
		mkdir -p "$T/vfat-rw" "$T/media/usb1"
		mount "$vloop" "$T/vfat-rw" && MOUNTS+=("$T/vfat-rw")
		cp -r "$T/media/plain/tx200-2.4.1" "$T/media/plain/updates" "$T/vfat-rw/"
		litter "$T/vfat-rw"
		umount "$T/vfat-rw"
		mount -o ro,nosuid,nodev,noexec "$vloop" "$T/media/usb1" && MOUNTS+=("$T/media/usb1")
		out=$(st media 2>&1)
		check "vfat: bundles listed" grep -Eq "^tx200-app +2.4.1 +42 .*/usb1/tx200-2.4.1$" <<<"$out"
		check "vfat: litter skipped" bash -c "! grep -Eq 'usb1/(\.|_)' <<<\"\$1\"" _ "$out"
		check "vfat: oversize manifest refused" grep -q "refused  $T/media/usb1/huge/manifest: rule size-cap" <<<"$out"
		out=$(st verify "$T/media/usb1/tx200-2.4.1" 2>&1); rc=$?
		checko "vfat: verify from the stick exits 0" "$out" test "$rc" -eq 0
	fi
fi

finish
status=$?
if [ "$status" -eq 0 ] && [ -n "$skip_reason" ]; then
	echo "skip: loop-mounted media not tested: $skip_reason"
	exit 77
fi
exit "$status"
