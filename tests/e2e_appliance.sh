#!/usr/bin/env bash
# tests/e2e_appliance.sh: the appliance image (`make appliance`,
# dist/appliance/) booted under qemu TCG three times on one data disk, the
# technician's job done through its console (ttyS0 in a tmux pane), the
# unit a keyed sim-serial on ttyS1, sticks hot-plugged as usb-storage
# through the qemu monitor (tests/appliance_lib.sh).
#   boot 0: no data disk, a USB stick labelled STNDATA: init stops.
#   boot 1: provisioning imported; sign in; a courier stick arrives, its
#           bundle verifies and installs (device-signed); the report is
#           exported onto a second stick (file STATION-REPORTS); a third
#           stick pulled while its bundle is read ends verify with a media
#           error; quit powers off.  Host: the unit holds exactly the
#           image, the report verifies with OpenSSL alone and with
#           `station report verify`, the courier sticks are unchanged,
#           provision/ holds IMPORTED and no key.
#   boot 2: a broken re-provisioning is refused, the old set kept; power
#           cut (kill -9 qemu) while the unit receives a newer image.
#   boot 3: re-provisioned (an anchor withdrawn); the technician is told
#           of the cut-off install; it installs again; quit.  Host: the data disk's journal verifies and holds
#           install-abandoned then install-finished for the unit.
# Run once by `make check-appliance`; skipped in tests/run.sh under
# `make check` (STATION_APPLIANCE_CHECKED).  Skips (77) only when qemu or
# the kernel package cannot be had.
. "$(dirname "$0")/lib.sh"
if [ -n "${STATION_APPLIANCE_CHECKED:-}" ]; then
	echo "skip: already run by make check-appliance"
	exit 77
fi
. "$(dirname "$0")/tui_lib.sh"
. "$(dirname "$0")/appliance_lib.sh"

rc=0; appl_need_tools || rc=$?
[ "$rc" -eq 77 ] && { echo "skip: $APPL_SKIP"; exit 77; }
[ "$rc" -eq 0 ] || exit 1

T_START=$(date +%s.%N)
phase_t=$T_START
phase() { # phase NAME: the seconds since the last phase mark
	printf 'phase %-22s %5s s\n' "$1" "$(appl_since "$phase_t")"
	phase_t=$(date +%s.%N)
}
# must WHAT CMD...: a step the rest depends on; on failure, show the
# guest's state and stop (the waits after it would only time out).
must() {
	local what=$1; shift
	if "$@"; then ok "$what"; return 0; fi
	not_ok "$what"
	appl_diag "$V/data.img"
	finish
	exit 1
}

# --- the image, the site, the bundles, the sticks -------------------------
rc=0; appl_build "$T/img" || rc=$?
[ "$rc" -eq 77 ] && { echo "skip: $APPL_SKIP"; exit 77; }
[ "$rc" -eq 0 ] || exit 1
phase "mkimage"
V=$T/vm
appl_site "$T/site" || { echo "cannot set up the site's files"; exit 1; }
P=$T/site/pki
S() { "$STATION" "$@" >>"$T/setup.log" 2>&1; }
bundle() { # bundle NAME VERSION SEQUENCE SIZE: signed, carried dispatch > courier > ana
	local dir=$T/b/tx200-$2
	sim_image "$T/$1.bin" "$3" "$2" "$4"
	S bundle create --name tx200-app --version "$2" --sequence "$3" --model TX-200 \
		--hardware revB --image "app=$T/$1.bin@0" "$dir" &&
	S sign --key "$P/release1.key" --cert "$P/release1.pem" --label rel1 "$dir/manifest" &&
	S custody add --key "$P/custody3.key" --cert "$P/custody3.pem" --to courier-ana \
		--place "dispatch office 3" --seal BAG-0042 "$dir" &&
	S custody add --key "$P/custody1.key" --cert "$P/custody1.pem" --to ana \
		--place "plant 7 gate" --seal BAG-0042 "$dir"
}
mkdir -p "$T/b"
bundle A 2.4.1 42 262144 && bundle B 2.5.0 43 1048576 && bundle C 2.6.0 44 8388608 ||
	{ echo "cannot build the bundles"; cat "$T/setup.log"; exit 1; }
stick_make "$T/courier-a.img" COURIER 8192 "$T/b/tx200-2.4.1" &&
stick_make "$T/courier-b.img" COURIER 8192 "$T/b/tx200-2.5.0" &&
stick_make "$T/courier-c.img" COURIER 16384 "$T/b/tx200-2.6.0" &&
printf 'reports of plant 7\n' >"$T/STATION-REPORTS" &&
stick_make "$T/report.img" REPORTS 8192 "$T/STATION-REPORTS" ||
	{ echo "cannot make the sticks (mtools)"; exit 1; }
(cd "$T" && sha256sum courier-?.img >sticks.sha256)
# An anchor the site withdraws before boot 3 (re-provisioning), and a key
# its station.conf does not name (a retired one: dropped at boot 3).
cp "$T/site/provision/trust/roots.pem" "$T/site/provision/trust/withdrawn.pem"
cp "$T/site/provision/station.key" "$T/site/provision/retired.key"
appl_prepare "$T/img" "$V" "$T/site" || { echo "cannot prepare the image copy"; exit 1; }
check "the boot prompt is locked: no escape to it, no options added" \
	bash -c "mtype -i '$V/station.img' ::/syslinux.cfg | grep -q '^NOESCAPE 1' &&
		mtype -i '$V/station.img' ::/syslinux.cfg | grep -q '^ALLOWOPTIONS 0'"
check "the key's bytes are on the boot disk before the first boot (the wipe check can fail)" \
	bash -c "grep -qaF \"\$(sed -n 2p '$P/station.key')\" '$V/station.img'"
check "the site's files are on the boot disk" bash -c "mdir -b -i '$V/station.img' ::/provision | grep -q station.key"
phase "setup"

# --- boot 0: a stick that poses as the data disk ---------------------------
# No data disk, and a USB stick labelled STNDATA plugged in at power-on:
# init must stop, never make the stick /persist.
mke2fs -q -t ext4 -L STNDATA "$T/fake-data.img" 8M >/dev/null || { echo "mke2fs failed"; exit 1; }
must "the unit's simulator runs (qemu opens its pty)" appl_sim "$P"
APPL_DATA="" APPL_EXTRA="-drive if=none,id=fk,file=$T/fake-data.img,format=raw -device usb-storage,bus=xhci.0,drive=fk,removable=on" \
	appl_boot "$V" 90
check "a USB stick labelled STNDATA is refused at boot" \
	klog_wait "A USB stick or disk is labelled STNDATA" 60
check "... and no station starts on it" bash -c "! grep -q 'appliance: station-start' '$APPL_KLOG'"
kill -9 "$(cat "$T/qemu.pid")" 2>/dev/null
qemu_exited 10 >/dev/null
phase "boot0: fake data disk"

# --- boot 1 -----------------------------------------------------------------
must "the unit's simulator runs" appl_sim "$P"
appl_boot "$V" 150
WAIT_TENTHS=900 must "boot 1 reaches the sign-in screen" wait_screen "Technician:"
boot1=$(appl_since "$APPL_T0")
echo "boot-to-sign-in: $boot1 s (qemu start to the sign-in screen, TCG)"
check "init imported the provisioning files" grep -q "appliance: provisioned" "$APPL_KLOG"
check "init logged each step up to the station" \
	bash -c "grep -q 'appliance: modules' '$APPL_KLOG' && grep -q 'appliance: data-mounted' '$APPL_KLOG' &&
		grep -q 'appliance: station-start' '$APPL_KLOG'"
must "ana signs in with her PIN" appl_signin

must "the courier stick is hot-plugged" stick_plug ca "$T/courier-a.img"
WAIT_TENTHS=300 must "the stick is mounted read-only under the media root" \
	wait_screen "read-only at /run/media/"
send m
must "the media screen lists the stick's bundle" wait_screen "tx200-2.4.1"
send Enter
WAIT_TENTHS=300 must "the bundle verifies: the unit is ready" wait_screen "ready: sequence 42 is newer"
check "the custody chain is shown" wait_screen "carried dispatch-office-3 > courier-ana > ana"
check "the unit proved it is genuine" wait_screen "Genuine: certificate TX-200 SN-0001"
send p
must "installing asks for confirmation" wait_screen "on 1 device(s)?"
send y
WAIT_TENTHS=600 must "the install finishes, device-signed" wait_screen "INSTALLED on SN-0001 (device-signed)"
check "the unit stored exactly the image" cmp -s "$T/unit.store/slot-0.bin" "$T/A.bin"
send Enter
wait_screen "Bundles on the media" >/dev/null
send Escape
must "back home" wait_screen "x export report"
must "the courier stick is pulled" stick_pull ca
must "its removal is shown" wait_screen "Unmounted"
phase "boot1: install"

must "the report stick is hot-plugged" stick_plug rs "$T/report.img"
WAIT_TENTHS=300 must "the report stick is announced" wait_screen "ready: x exports the report"
send x
WAIT_TENTHS=300 must "the report is written to the report stick" wait_screen "Report written:"
check "... under the report stick's mount point" wait_screen "/run/reports/"
phase "boot1: export"

# A stick pulled while its bundle is staged (read at 1 MiB/s: 8 s).
must "a third stick is hot-plugged, its reads throttled" stick_plug cc "$T/courier-c.img" 1048576
WAIT_TENTHS=300 must "it is mounted read-only" wait_screen "read-only at /run/media/"
send m
must "its bundle is listed" wait_screen "tx200-2.6.0"
send Enter
sleep 3
must "the stick is pulled during verify" stick_pull cc
# The refusal's message and the stick's "Media removed" race for the
# message line; the cause stays on the bundle screen, under the checks.
WAIT_TENTHS=300 must "verify ends: the image check never ran, nothing to install" \
	wait_screen "refused: nothing to install"
check "the images check is shown not run" wait_screen "images     not run"
check "the screen says why: the stick could not be read, as on a laptop" \
	wait_screen "REFUSED: the stick could not be read: read error on media"
send Escape
sleep 0.3
send Escape
must "home again after the error" wait_screen "x export report"
send j
check "the journal browser shows the media error" wait_screen "media-error"
send Escape
must "home" wait_screen "x export report"
must "boot 1 ends: sign out, quit, power off (qemu exits 0)" appl_quit
check "boot 1: the station never failed or restarted (sanitizer, crash)" \
	bash -c "grep -q 'station-exit rc=0' '$APPL_KLOG' && ! grep -q 'station-exit rc=[1-9]' '$APPL_KLOG'"
phase "boot1: pull, poweroff"

check "provision/ holds IMPORTED" bash -c "mdir -b -i '$V/station.img' ::/provision | grep -q IMPORTED"
check "provision/ holds no key any more" bash -c "! mdir -b -i '$V/station.img' ::/provision | grep -qi '\.key'"
# A deleted FAT file keeps its clusters' bytes: the key was overwritten.
check "the key's bytes are not left in the boot disk's free clusters" \
	bash -c "! grep -qaF \"\$(sed -n 2p '$P/station.key')\" '$V/station.img'"
check "the data disk keeps the key 0600 in a 0700 etc" \
	bash -c "debugfs -R 'stat /etc/station.key' '$V/data.img' 2>/dev/null | grep -q 'Mode:  0600' &&
		debugfs -R 'stat /etc' '$V/data.img' 2>/dev/null | grep -q 'Mode:  0700'"
check "the data disk holds the first set, the later withdrawn anchor too" \
	bash -c "debugfs -R 'ls -l /etc/trust' '$V/data.img' 2>/dev/null | grep -q withdrawn.pem &&
		debugfs -R 'ls -l /etc' '$V/data.img' 2>/dev/null | grep -q retired.key"
mkdir -p "$T/rout"
mcopy -s -n -i "$T/report.img" ::/ "$T/rout/" 2>/dev/null
R=$(find "$T/rout" -name 'report-STN-0042-*.json' | head -n 1)
must "the report, its signature and certificate are on the report stick" \
	test -n "$R" -a -f "$R.sig" -a -f "$R.pem"
check "OpenSSL alone verifies the report's signature with the station's key" \
	bash -c "openssl x509 -in '$R.pem' -pubkey -noout >'$T/station-pub.pem' &&
		openssl dgst -sha256 -verify '$T/station-pub.pem' -signature '$R.sig' '$R' | grep -q 'Verified OK'"
check "OpenSSL verifies the station certificate to the root" \
	bash -c "openssl verify -CAfile '$P/roots.pem' -untrusted '$R.pem' '$R.pem' >/dev/null"
out=$("$STATION" --config /nonexistent/station.conf report verify --trust "$P/roots.pem" "$R" 2>&1); rc=$?
check "station report verify accepts it (exit $rc)" \
	bash -c "[ $rc -eq 0 ] && grep -q '^verdict   report verifies' <<<\"\$1\"" _ "$out" || echo "$out"
check "the report holds the install on SN-0001" \
	grep -q "result     SN-0001: installed sequence 42" <<<"$out"
check "the courier sticks are bit-for-bit unchanged" bash -c "cd '$T' && sha256sum --quiet -c sticks.sha256"

# install_b ID: courier B's stick plugged as ID, its bundle (sequence 43)
# verified and the install on the unit confirmed (boots 2 and 3).
install_b() {
	must "the stick with the newer bundle arrives ($1)" stick_plug "$1" "$T/courier-b.img"
	WAIT_TENTHS=300 must "it is mounted" wait_screen "read-only at /run/media/"
	send m
	must "its bundle is listed" wait_screen "tx200-2.5.0"
	send Enter
	WAIT_TENTHS=300 must "it verifies: the unit is ready for it" wait_screen "ready: sequence 43 is newer"
	send p
	must "confirm" wait_screen "on 1 device(s)?"
	send y
}

# --- boot 2: the power is cut while the unit receives --------------------
# First a broken re-provisioning: a certificate that is not the key's.
# It must not replace the working set.
sed 's|^cert = station.pem|cert = trust/roots.pem|' "$T/site/provision/station.conf" >"$T/broken.conf"
must "a broken station.conf is put up for import" \
	bash -c "mcopy -o -i '$V/station.img' '$T/broken.conf' ::/provision/station.conf &&
		mdel -i '$V/station.img' ::/provision/IMPORTED"
must "the unit's simulator runs again" appl_sim "$P"
before=$(wc -l <"$T/unit.log")
appl_boot "$V" 150
WAIT_TENTHS=900 must "boot 2 reaches the sign-in screen" wait_screen "Technician:"
boot2=$(appl_since "$APPL_T0")
check "the broken set is refused before it replaces the old one" \
	grep -q "does not start a station; kept the old files" "$APPL_KLOG"
check "... the station runs on the set it had" grep -q "appliance: provision-kept" "$APPL_KLOG"
must "ana signs in" appl_signin
install_b cb
receiving() {
	for _ in $(seq 1 600); do
		tail -n +"$((before + 1))" "$T/unit.log" | grep -q "receive: slot 0" && return 0
		sleep 0.1
	done
	return 1
}
must "the unit starts receiving" receiving
sleep 2
kill -9 "$(cat "$T/qemu.pid")"
rc=$(qemu_exited 10)
check "the power is cut: qemu killed (status $rc)" test "$rc" = 137
check "the unit did not get the new image" \
	bash -c "! tail -n +$((before + 1)) '$T/unit.log' | grep -q 'receive: slot 0, .*-> ' && cmp -s '$T/unit.store/slot-0.bin' '$T/A.bin'"
phase "boot2: power cut"

# --- boot 3: after the cut, re-provisioned --------------------------------
# The site re-provisions: the first set less one anchor (the keys were
# wiped from the FAT at the first import); IMPORTED is still absent.
must "the site withdraws an anchor, station.conf mended" \
	bash -c "mcopy -o -i '$V/station.img' '$T/site/provision/station.conf' ::/provision/station.conf &&
		mdel -i '$V/station.img' ::/provision/trust/withdrawn.pem"
must "the unit's simulator runs again" appl_sim "$P"
appl_boot "$V" 150
WAIT_TENTHS=900 must "boot 3 reaches the sign-in screen" wait_screen "Technician:"
boot3=$(appl_since "$APPL_T0")
check "init imported the new provisioning set" grep -q "appliance: provisioned" "$APPL_KLOG"
must "ana signs in" appl_signin
check "she is told an install was cut off" wait_screen "1 install(s) were cut off"
install_b cb2
WAIT_TENTHS=900 must "the second install finishes, device-signed" wait_screen "INSTALLED on SN-0001 (device-signed)"
check "the unit stored exactly the newer image" cmp -s "$T/unit.store/slot-0.bin" "$T/B.bin"
send Enter
wait_screen "Bundles on the media" >/dev/null
send Escape
must "home" wait_screen "x export report"
must "boot 3 ends: power off (qemu exits 0)" appl_quit
check "boot 3: the station never failed or restarted (sanitizer, crash)" \
	bash -c "grep -q 'station-exit rc=0' '$APPL_KLOG' && ! grep -q 'station-exit rc=[1-9]' '$APPL_KLOG'"
phase "boot3: reinstall"

# --- the data disk, read on the host -----------------------------------
mkdir -p "$T/dump"
debugfs -R "rdump /data $T/dump" "$V/data.img" >/dev/null 2>&1
must "the data directory is read off the data disk" test -d "$T/dump/data"
debugfs -R "rdump /etc $T/dump" "$V/data.img" >/dev/null 2>&1
check "re-provisioning withdrew the anchor left out of the new set" \
	test -f "$T/dump/etc/trust/roots.pem" -a ! -e "$T/dump/etc/trust/withdrawn.pem"
check "... and kept the station's key, which the new set could not carry" \
	cmp -s "$T/dump/etc/station.key" "$P/station.key"
check "... and dropped the key its station.conf no longer names" \
	test ! -e "$T/dump/etc/retired.key"
write_config "$T/host.conf" "$T/dump/data" "$P"
out=$("$STATION" --config "$T/host.conf" journal --verify 2>&1); rc=$?
check "the journal chain verifies after the power cut (exit $rc)" \
	bash -c "[ $rc -eq 0 ] && grep -q 'chain verifies' <<<\"\$1\"" _ "$out" || echo "$out"
"$STATION" --config "$T/host.conf" journal --json >"$T/journal.json" 2>&1
# The unit's install events in journal order (formats: entries' body).
jq -r '.[].body | select(.fields.serial? == "SN-0001")
	| select(.type == "install-abandoned" or .type == "install-finished")
	| .type + " " + (.fields.sequence // "")' "$T/journal.json" >"$T/installs.txt" 2>&1
check "the journal records the cut-off install as abandoned, once" \
	test "$(grep -c '^install-abandoned' "$T/installs.txt")" -eq 1
check "then a finished install of sequence 43 for SN-0001" \
	test "$(sed -n '/^install-abandoned/,$p' "$T/installs.txt" | grep -c '^install-finished 43$')" -eq 1
check "before the cut, the finished install of sequence 42" \
	test "$(sed -n '1p' "$T/installs.txt")" = "install-finished 42" || cat "$T/installs.txt"
check "the pulled stick's read error is journaled: media-error, rule io, the file" \
	test "$(jq -r '[.[].body | select(.type == "media-error" and .fields.rule == "io"
		and (.fields.where | test("tx200-2.6.0/.*[.]bin$")) and (.fields.reason | test("media pulled")))] | length' \
		"$T/journal.json")" = 1
check "the courier sticks are still unchanged" bash -c "cd '$T' && sha256sum --quiet -c sticks.sha256"
phase "host checks"

printf 'boot-to-sign-in: %s s, %s s, %s s (boots 1-3)\n' "$boot1" "$boot2" "$boot3"
[ -f "$T/img/SIZES" ] && sed 's/^/size: /' "$T/img/SIZES"
printf 'total: %s s\n' "$(appl_since "$T_START")"
finish
