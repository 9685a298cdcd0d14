# tests/appliance_lib.sh: the appliance image (dist/appliance/mkimage.sh)
# under qemu TCG, shared by tests/e2e_appliance.sh and
# tests/bench_appliance.sh.  Source after tests/lib.sh and tests/tui_lib.sh.
#
# The guest's UARTs (docs/appliance.md): ttyS0 is the technician's console,
# qemu's stdio in the tmux pane of tui_lib.sh (80x24); ttyS1 is the serial
# unit, the pty of a sim-serial on the host; ttyS2 is the kernel and init
# log, a file.  Sticks are FAT images hot-plugged as usb-storage through
# the qemu monitor (a unix socket).  No root is needed anywhere: mtools
# writes the FAT images, debugfs reads the ext4 data disk.
#
# appl_need_tools      77 (APPL_SKIP) without qemu; fails on other tools
# appl_build DIR       mkimage.sh (or $APPL_MKIMAGE) into DIR (77: it skipped)
# appl_site DIR        PKI, station.conf with ana's PIN, device keys: the
#                      site's provisioning files in DIR/provision
# appl_prepare DIR IMG copies of station.img (serial console APPEND and
#                      the provisioning files) and data.img into IMG
# appl_sim             (re)starts the keyed unit SN-0001 on $T/unit
# appl_boot IMG        starts qemu in the tmux pane; APPL_T0 = its start
#                      (APPL_DATA: the data disk's -drive, empty for none;
#                      APPL_EXTRA: more qemu arguments)
# hmp CMD              one monitor command; its answer on stdout
# stick_make IMG LABEL KIB [DIR...]   a FAT stick holding the DIRs
# stick_plug ID IMG [BPS]  hot-plug as usb-storage (read throttle BPS)
# stick_pull ID        device_del
# appl_diag            the screen, klog's tail, station.log's tail
# appl_quit            sign out, quit, wait for qemu to exit 0

# The EXIT trap of tui_lib.sh: this guest's qemu and the tmux server.
cleanup_tui() {
	[ -s "$T/qemu.pid" ] && kill -9 "$(cat "$T/qemu.pid")" 2>/dev/null
	tm kill-server 2>/dev/null
}

# shellcheck disable=SC2034 # APPL_SKIP and APPL_T0 are read by the scripts
APPL_QEMU=${APPL_QEMU:-qemu-system-x86_64}
APPL_PIN=1234
# PBKDF2 cost of the test's PIN line: TCG runs the guest some 10-30 times
# slower than the host, and three sign-ins at `station pin`'s 200000
# iterations would cost seconds each.  cu_pin_check accepts >= 1000
# (custody/pin.h CU_PIN_ITERATIONS_MIN); the cost is not what is tested.
APPL_PIN_ITER=2000
APPL_MON="$T/mon.sock"
APPL_KLOG="$T/klog.txt"

appl_need_tools() {
	command -v "$APPL_QEMU" >/dev/null || { APPL_SKIP="$APPL_QEMU not installed"; return 77; }
	local t missing=
	for t in mcopy mdir mkfs.vfat debugfs socat openssl jq tmux sha256sum; do
		command -v "$t" >/dev/null || missing="$missing $t"
	done
	[ -z "$missing" ] || { echo "missing tools:$missing: run make deps"; return 1; }
	for t in station sim-serial; do
		[ -x "$TOP/$BUILD/$t" ] || { echo "missing $BUILD/$t: make test-bins first"; return 1; }
	done
}

# appl_build DIR: the image as `make appliance` builds it.  Returns
# mkimage.sh's status (77: it skipped, APPL_SKIP says why).
appl_build() {
	local rc=0
	BUILD=$BUILD bash "${APPL_MKIMAGE:-$TOP/dist/appliance/mkimage.sh}" "$1" >"$T/mkimage.log" 2>&1 || rc=$?
	if [ "$rc" -eq 77 ]; then
		APPL_SKIP=$(tail -n 1 "$T/mkimage.log" | sed 's/^skip: //')
	elif [ "$rc" -ne 0 ]; then
		echo "mkimage.sh failed (exit $rc):"; tail -n 20 "$T/mkimage.log"
	fi
	return "$rc"
}

# appl_site DIR: DIR/pki (tests/pki.sh) and DIR/provision, the files a
# site drops into STNBOOT:/provision/ (docs/appliance.md): station.conf
# naming its files by relative path, the station's key and certificate,
# trust/ (release, custody and manufacturers' anchors) and crl/.
appl_site() {
	local d=$1 p=$1/provision salt hash
	make_pki "$d/pki" || return 1
	mkdir -p "$p/trust" "$p/crl"
	cp "$d/pki/station.key" "$d/pki/station.pem" "$p/" &&
	cp "$d/pki/roots.pem" "$d/pki/mfg-anchors.pem" "$p/trust/" &&
	cp "$d/pki/crl/"* "$p/crl/" || return 1
	salt=$(openssl rand -hex 16)
	hash=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt "pass:$APPL_PIN" \
		-kdfopt "hexsalt:$salt" -kdfopt "iter:$APPL_PIN_ITER" PBKDF2 | tr -d ':' | tr 'A-F' 'a-f')
	[ ${#hash} -eq 64 ] || { echo "openssl kdf gave no PBKDF2 hash"; return 1; }
	cat >"$p/station.conf" <<CONF
# The test site's station (tests/e2e_appliance.sh).
[station]
id = STN-0042
site = plant-7
key = station.key
cert = station.pem
data = ../data
media = /run/media
mount-media = yes
report-media = /run/reports

[trust]
anchors = trust/roots.pem
crl = crl
require-custody = yes

# TX-200 units prove they are genuine and sign their receipts.
[class tx200]
model = TX-200
device-anchors = trust/mfg-anchors.pem
attestation = required
proof = required

[technician ana]
name = Ana Lima
pin = pbkdf2-sha256\$$APPL_PIN_ITER\$$salt\$$hash

[port unit-1]
path = /dev/ttyS1
CONF
}

# appl_prepare SRC DIR SITE: DIR/station.img (a copy of SRC's, its APPEND
# switched to the serial console, SITE/provision in provision/) and a
# fresh copy of SRC's data.img.
appl_prepare() {
	local src=$1 dir=$2 site=$3
	mkdir -p "$dir"
	cp "$src/station.img" "$dir/station.img" &&
	cp --sparse=always "$src/data.img" "$dir/data.img" || return 1
	mcopy -n -i "$dir/station.img" ::/syslinux.cfg "$dir/syslinux.cfg" || return 1
	sed -i 's|^\([[:space:]]*APPEND\).*|\1 console=ttyS2 loglevel=4 panic=-1 station.tty=ttyS0 station.term=xterm-256color|' \
		"$dir/syslinux.cfg"
	grep -q 'station.tty=ttyS0' "$dir/syslinux.cfg" || { echo "syslinux.cfg has no APPEND line"; return 1; }
	mcopy -o -i "$dir/station.img" "$dir/syslinux.cfg" ::/syslinux.cfg &&
	mcopy -s -o -i "$dir/station.img" "$site/provision/"* ::/provision/
}

# The unit on ttyS1: a TX-200 with Acme's device key (formats §9).  A new
# simulator per boot: the pty's only other holder is the qemu that died.
appl_sim() {
	local pki=$1
	[ -n "${APPL_SIM_PID:-}" ] && { kill "$APPL_SIM_PID" 2>/dev/null; wait "$APPL_SIM_PID" 2>/dev/null; }
	[ -f "$T/unit.id" ] || printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\nversion = 2.4.0\n' >"$T/unit.id"
	mkdir -p "$T/unit.store"
	rm -f "$T/unit" "$T/unit.out"
	"$SIM" --identity "$T/unit.id" --store "$T/unit.store" --link "$T/unit" \
		--device-key "$pki/dev1.key" --device-cert "$pki/dev1.pem" --fleet-anchor "$pki/roots.pem" \
		>"$T/unit.out" 2>>"$T/unit.log" </dev/null &
	APPL_SIM_PID=$!
	PIDS+=("$APPL_SIM_PID")
	wait_for "$T/unit.out" || { echo "the unit's simulator did not start"; cat "$T/unit.log"; return 1; }
}

# appl_boot DIR [LIMIT]: qemu on DIR's disks in the tmux pane, bounded by
# timeout; the pane prints QEMU-EXITED and qemu's status when it ends.
# --foreground: qemu sets up the pane's terminal (stdio chardev), which a
# background process group may not (it would stop on SIGTTOU).
appl_boot() {
	local dir=$1 limit=${2:-150}
	rm -f "$APPL_MON" "$T/qemu.pid"
	: >"$APPL_KLOG"
	tm kill-server 2>/dev/null
	APPL_T0=$(date +%s.%N)
	tm new-session -d -s ui -x 80 -y 24 \
		"timeout --foreground -k 5 $limit $APPL_QEMU -accel tcg -cpu max -m 512 -smp 1 -nic none \
		-display none -no-reboot -pidfile $T/qemu.pid \
		-monitor unix:$APPL_MON,server=on,wait=off \
		-chardev stdio,id=con,signal=off -serial chardev:con \
		-chardev serial,id=unit,path=$T/unit -serial chardev:unit \
		-serial file:$APPL_KLOG \
		-drive file=$dir/station.img,format=raw,if=virtio \
		${APPL_DATA-"-drive file=$dir/data.img,format=raw,if=virtio"} \
		-device qemu-xhci,id=xhci ${APPL_EXTRA:-} 2>$T/qemu.err; echo QEMU-EXITED \$?; sleep 120"
}
appl_since() { echo "$(date +%s.%N) $1" | awk '{printf "%.1f", $1 - $2}'; }

# hmp CMD: the human monitor's answer, without its banner and prompts.
hmp() {
	printf '%s\n' "$1" | socat -t 2 - "UNIX-CONNECT:$APPL_MON" 2>&1 |
		tr -d '\r' | grep -v '^QEMU \|^(qemu)' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'
}

# stick_make IMG LABEL KIB [DIR...]: a FAT stick with each DIR at its top.
stick_make() {
	local img=$1 label=$2 kib=$3; shift 3
	rm -f "$img"
	mkfs.vfat -n "$label" -C "$img" "$kib" >/dev/null || return 1
	[ $# -eq 0 ] || mcopy -s -i "$img" "$@" ::/
}
stick_plug() { # stick_plug ID IMG [BPS]: writable for qemu, so a write would show
	local out
	out=$(hmp "drive_add 0 if=none,id=d$1,file=$2,format=raw${3:+,throttling.bps-read=$3}")
	out="$out$(hmp "device_add usb-storage,bus=xhci.0,drive=d$1,id=$1,removable=on")"
	[ -z "$(grep -v '^OK$' <<<"$out" | grep -v '^$')" ] || { echo "monitor: $out"; return 1; }
}
stick_pull() { local out; out=$(hmp "device_del $1"); [ -z "$out" ] || { echo "monitor: $out"; return 1; }; }

# klog_wait TEXT SECONDS: bounded wait for a line in the kernel/init log.
klog_wait() {
	for _ in $(seq 1 $(($2 * 10))); do
		grep -q -F -- "$1" "$APPL_KLOG" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "klog never showed: $1"; return 1
}
# qemu_exited SECONDS: the pane's QEMU-EXITED status (empty on timeout).
qemu_exited() {
	local line
	for _ in $(seq 1 $(($1 * 10))); do
		line=$(screen | grep -o 'QEMU-EXITED [0-9]*' | tail -n 1)
		[ -n "$line" ] && { echo "${line#QEMU-EXITED }"; return 0; }
		sleep 0.1
	done
	return 1
}

# station.log from the data disk (debugfs reads ext4 without root; a
# running guest's last writes may not be there yet).
appl_station_log() { debugfs -R "cat /log/station.log" "$1" 2>/dev/null; }
appl_diag() { # appl_diag DATA-IMG
	echo "--- screen:"; screen | sed 's/^/  | /'
	echo "--- klog (ttyS2), last 25 lines:"; tr -d '\r' <"$APPL_KLOG" 2>/dev/null | tail -n 25 | sed 's/^/  | /'
	echo "--- station.log on the data disk, last 20 lines:"
	appl_station_log "$1" | tail -n 20 | sed 's/^/  | /'
	echo "--- unit simulator, last 10 lines:"; tail -n 10 "$T/unit.log" 2>/dev/null | sed 's/^/  | /'
	[ -s "$T/qemu.err" ] && { echo "--- qemu stderr:"; sed 's/^/  | /' "$T/qemu.err"; }
	return 0
}

# appl_signin: ana signs in with her PIN; waits for the home screen.
appl_signin() {
	# shellcheck disable=SC2046 # one key per digit
	send a n a Enter && wait_screen "PIN for ana" && send $(echo "$APPL_PIN" | sed 's/./& /g') Enter &&
		wait_screen "Signed in as Ana Lima"
}
# appl_quit: sign out, quit (Esc, y), init powers off: qemu exits 0.
appl_quit() {
	local rc
	send q && wait_screen "Signed out" && send Escape && wait_screen "Quit the station?" && send y || return 1
	rc=$(qemu_exited 60) || { echo "qemu did not exit"; return 1; }
	[ "$rc" = 0 ] || { echo "qemu exited $rc"; return 1; }
	klog_wait "appliance: poweroff" 1
}
