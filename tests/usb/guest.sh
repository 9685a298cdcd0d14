# tests/usb/guest.sh: runs inside the qemu guest (busybox sh) as
# /payload/run.sh.  Each simulated DFU device is a USB/IP server on the
# guest's loopback that imports itself (usbip attach) into the kernel's
# vhci-hcd; the station and dfu-util then reach it through usbfs like any
# USB device.  Prints "ok ..." / "FAIL ..." lines for the host to count.
# Every wait is bounded.

export STATION_CONFIG=/payload/station.conf
export PATH=/usr/bin:/bin
P=/payload
PORT=3240
SIMPID=

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; return 1; }
check() { # check "what" command...
	what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
has() { grep -q -- "$2" "$1"; }
hasE() { grep -Eq -- "$2" "$1"; }

# Bounded wait for a condition (tenths of a second).
wait_until() { # TENTHS command...
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		usleep 100000
		n=$((n - 1))
	done
	return 1
}

sim_present() { grep -qs "^$1\$" /sys/bus/usb/devices/*/product 2>/dev/null; }
sims_gone() { ! grep -qs '^1209$' /sys/bus/usb/devices/*/idVendor; }
serial_present() { grep -qs "^$1\$" /sys/bus/usb/devices/*/serial; }

# start_sim NAME [sim-dfu options]: store in /tmp/NAME, log /tmp/NAME.log.
# The product string is NAME unless given, so waits are unambiguous.
start_sim() {
	name=$1
	shift
	PORT=$((PORT + 1))
	mkdir -p "/tmp/$name"
	sim-dfu --store "/tmp/$name" --port "$PORT" --attach "$@" \
		2>"/tmp/$name.log" &
	SIMPID=$!
	wait_until 150 sim_attached "$name" || {
		bad "simulator $name was not enumerated by the kernel"
		tail -5 "/tmp/$name.log"
		return 1
	}
}
sim_attached() { grep -qs 'imported as' "/tmp/$1.log" && usb_settled; }
# The kernel has a configured device for every import (no enumeration
# in progress).
usb_settled() {
	for d in /sys/bus/usb/devices/[0-9]*-[0-9]*; do
		case $d in *:*) continue ;; esac
		[ -e "$d/idVendor" ] || continue
		[ "$(cat "$d/idVendor")" = 1209 ] || continue
		[ -n "$(cat "$d/bConfigurationValue" 2>/dev/null)" ] || return 1
		return 0
	done
	return 1
}

# Every imported device (vendor 1209) is configured.
all_configured() {
	for d in /sys/bus/usb/devices/[0-9]*-[0-9]*; do
		case $d in *:*) continue ;; esac
		[ "$(cat "$d/idVendor" 2>/dev/null)" = 1209 ] || continue
		[ -n "$(cat "$d/bConfigurationValue" 2>/dev/null)" ] || return 1
	done
	return 0
}

stop_sim() {
	[ -n "$SIMPID" ] && kill "$SIMPID" 2>/dev/null && wait "$SIMPID" 2>/dev/null
	SIMPID=
	wait_until 100 sims_gone || bad "a simulated device did not leave the bus"
}

push() { # push LOG [push args...]: sets RC
	log=$1
	shift
	station push --technician ana "$@" >"$log" 2>&1
	RC=$?
}

journal_tail() { station journal | tail -n "$1"; }

echo "guest: $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu"

# --- enumeration and identity from descriptors -----------------------------
start_sim d1 --serial SN-D001 --product TX-200 --poll-ms 3 --strict-polls
station devices >/tmp/devices.out 2>&1
check "station devices lists the DFU device with ids, mode and port" \
	hasE /tmp/devices.out "^usb:SN-D001  1209:5744 dfu  port [0-9]+-[0-9]+"
check "station devices shows its identity from the descriptors" \
	has /tmp/devices.out "serial SN-D001  model TX-200  hardware -  sequence -  version 2.40  (identity from descriptors)"
station devices --json >/tmp/devices.json 2>&1
check "station devices --json names serial and mode" \
	has /tmp/devices.json '"spec":"usb:SN-D001","transport":"usb-dfu","ids":"1209:5744","mode":"dfu"'

# --- push with readback ------------------------------------------------------
push /tmp/p1.out --device usb:SN-D001 $P/b1
check "push over USB DFU exits 0" [ "$RC" -eq 0 ] || cat /tmp/p1.out
check "push reports readback as its proof" has /tmp/p1.out "proof: readback"
check "the device stored exactly the image" cmp -s /tmp/d1/slot-0.bin $P/b1/app.bin
check "the station waited out every bwPollTimeout (no early GETSTATUS)" \
	has /tmp/d1.log "(early polls 0)"
size=$(wc -c <$P/b1/app.bin)
check "blocks were 4096 bytes (wTransferSize 4096)" \
	has /tmp/d1.log "$size bytes in $(((size + 4095) / 4096)) blocks"
journal_tail 4 >/tmp/j1.out
check "image-written is journaled with proof readback and the read-back sha256" \
	hasE /tmp/j1.out "image-written .*serial=SN-D001.*proof=readback device-sha256=$(sha256sum $P/b1/app.bin | cut -c1-64)"
check "install-finished is journaled with proof readback" \
	hasE /tmp/j1.out "install-finished .*serial=SN-D001.*proof=readback"
check "install-started names the usb-dfu transport" \
	hasE /tmp/j1.out "install-started .*device=usb:SN-D001.*transport=usb-dfu"

# --- the reference tool against the same simulator -------------------------
dfu-util -l >/tmp/dfu-l.out 2>&1
check "dfu-util -l finds the simulator" \
	has /tmp/dfu-l.out 'Found DFU: \[1209:5744\] ver=0240'
dfu-util -d 1209:5744 -S SN-D001 -a 0 -D $P/b1/app.bin >/tmp/dfu-d.out 2>&1
check "dfu-util -D of the same image succeeds" [ $? -eq 0 ]
check "after dfu-util -D the device holds exactly the image" \
	cmp -s /tmp/d1/slot-0.bin $P/b1/app.bin
rm -f /tmp/up.bin
dfu-util -d 1209:5744 -S SN-D001 -a 0 -U /tmp/up.bin >/tmp/dfu-u.out 2>&1
check "dfu-util -U reads back exactly the image" cmp -s /tmp/up.bin $P/b1/app.bin
push /tmp/p1b.out --device usb:1209:5744 --reinstall $P/b1
check "push by usb:VID:PID (a confirmed reinstall) exits 0" [ "$RC" -eq 0 ] || cat /tmp/p1b.out
stop_sim

# --- identity from a station-info alternate setting ------------------------
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-I001\nsequence = 42\nversion = 2.4.1\n' >/tmp/info.rec
start_sim i1 --serial SN-I001 --info /tmp/info.rec
station devices >/tmp/devices-i.out 2>&1
check "station devices shows the station-info identity with its sequence" \
	has /tmp/devices-i.out "serial SN-I001  model TX-200  hardware revB  sequence 42  version 2.4.1  (identity from station-info)"
push /tmp/pi0.out --device usb:SN-I001 $P/b1
check "a bundle not newer than station-info's sequence is refused (downgrade rule)" \
	sh -c "[ $RC -eq 1 ] && grep -q 'rule reinstall\|rule downgrade' /tmp/pi0.out"
check "nothing was written to the refused device" [ ! -e /tmp/i1/slot-0.bin ]
push /tmp/pi.out --device usb:SN-I001 $P/b43
check "push to a station-info device exits 0 with readback" \
	sh -c "[ $RC -eq 0 ] && grep -q 'proof: readback' /tmp/pi.out" || cat /tmp/pi.out
check "the station-info device now reports sequence 43" has /tmp/info.rec "sequence = 43"
journal_tail 3 >/tmp/ji.out
check "the journal took the installed sequence from the device" \
	hasE /tmp/ji.out "install-finished .*serial=SN-I001.*sequence-before=42"
stop_sim

# --- a device without a serial number is refused ---------------------------
start_sim n1 --no-serial
push /tmp/pn.out --device usb:1209:5744 $P/b1
check "a device without a serial number is refused (exit 1, rule identity)" \
	sh -c "[ $RC -eq 1 ] && grep -q 'rule identity: .*has no serial number' /tmp/pn.out" || cat /tmp/pn.out
check "nothing was written to it" [ ! -e /tmp/n1/slot-0.bin ]
check "the refusal is journaled as device-refused" \
	sh -c "station journal | tail -3 | grep -q 'device-refused .*rule=identity'"
stop_sim

# --- fault modes -----------------------------------------------------------
start_sim s1 --serial SN-F001 --stall-at 5
push /tmp/ps.out --device usb:SN-F001 $P/small
check "a stalled block ends the push (exit 3) naming block and status" \
	sh -c "[ $RC -eq 3 ] && grep -q 'block 5 (offset 20480): the device refused it: status errWRITE' /tmp/ps.out" || cat /tmp/ps.out
check "the stalled install is journaled as install-failed" \
	sh -c "station journal | tail -3 | grep -q 'install-failed .*serial=SN-F001.*errWRITE'"
check "a stalled download stores nothing" [ ! -e /tmp/s1/slot-0.bin ]
stop_sim

start_sim v1 --serial SN-F002 --vanish-at 10 --replug-ms 1500
push /tmp/pv.out --device usb:SN-F002 $P/small
check "unplug mid-transfer ends the push with exit 3, device gone" \
	sh -c "[ $RC -eq 3 ] && grep -q 'block 10 (offset 40960).*the device is gone' /tmp/pv.out" || cat /tmp/pv.out
check "the unplug is journaled as install-failed with code -45 (NODEVICE)" \
	sh -c "station journal | tail -3 | grep -q 'install-failed .*serial=SN-F002.*code=-45'"
check "the unplugged device stored nothing" [ ! -e /tmp/v1/slot-0.bin ]
wait_until 150 serial_present SN-F002 && wait_until 50 usb_settled
push /tmp/pv2.out --device usb:SN-F002 $P/small
check "after the device is plugged back in the station installs on it" \
	sh -c "[ $RC -eq 0 ] && grep -q 'proof: readback' /tmp/pv2.out" || cat /tmp/pv2.out
check "the journal chain still verifies" sh -c "station journal --verify | grep -q 'journal chain verifies'"
stop_sim

start_sim l1 --serial SN-F003 --long-busy-at 3 --long-busy-ms 2500
t0=$(date +%s)
push /tmp/pl.out --device usb:SN-F003 $P/small
t1=$(date +%s)
check "a block busy for 2.5 s (bwPollTimeout) is waited out and the push succeeds" \
	sh -c "[ $RC -eq 0 ] && [ $((t1 - t0)) -ge 2 ]" || cat /tmp/pl.out
check "and no GETSTATUS came before the device's poll timeout" has /tmp/l1.log "(early polls 0)"
STATION_CONFIG=$P/station-busy1s.conf station push --technician ana --reinstall --device usb:SN-F003 $P/small >/tmp/pl2.out 2>&1
RC=$?
check "with [usb] busy-timeout = 1s the same busy block times out (exit 3)" \
	sh -c "[ $RC -eq 3 ] && grep -q 'block 3 (offset 12288): busy for more than 1000 ms' /tmp/pl2.out" || cat /tmp/pl2.out
stop_sim

start_sim e1 --serial SN-F004 --verify-error
push /tmp/pe.out --device usb:SN-F004 $P/small
check "errVERIFY at manifestation is refused as install-proof (exit 1)" \
	sh -c "[ $RC -eq 1 ] && grep -q 'rule install-proof: .*manifestation: the device refused it: status errVERIFY' /tmp/pe.out" || cat /tmp/pe.out
check "errVERIFY is journaled as install-failed" \
	sh -c "station journal | tail -3 | grep -q 'install-failed .*serial=SN-F004.*rule=install-proof'"
stop_sim

start_sim c1 --serial SN-F005 --corrupt-upload
push /tmp/pc.out --device usb:SN-F005 $P/small
check "wrong data on upload fails the readback (exit 1, install-proof)" \
	sh -c "[ $RC -eq 1 ] && grep -q 'rule install-proof: .*read back from slot 0, sha256 [0-9a-f]*, manifest says' /tmp/pc.out" || cat /tmp/pc.out
check "the failed readback is journaled" \
	sh -c "station journal | tail -3 | grep -q 'install-failed .*serial=SN-F005.*read back'"
stop_sim

start_sim u1 --serial SN-F006 --no-upload
push /tmp/pu.out --device usb:SN-F006 $P/small
check "a device that cannot upload installs with proof none, and says so" \
	sh -c "[ $RC -eq 0 ] && grep -q 'proof: none' /tmp/pu.out && grep -q 'cannot read back' /tmp/pu.out" || cat /tmp/pu.out
check "the journal records proof=none for it" \
	sh -c "station journal | tail -3 | grep -q 'install-finished .*serial=SN-F006.*proof=none'"
check "the device still stored exactly the image" cmp -s /tmp/u1/slot-0.bin $P/small/small.bin
stop_sim

start_sim t1 --serial SN-F007 --not-tolerant
push /tmp/pt.out --device usb:SN-F007 $P/small
check "a device that is not manifestation tolerant installs (proof none) and is reset" \
	sh -c "[ $RC -eq 0 ] && grep -q 'proof: none' /tmp/pt.out && grep -q 'bus reset' /tmp/t1.log" || { cat /tmp/pt.out; tail -5 /tmp/t1.log; }
check "it stored exactly the image" cmp -s /tmp/t1/slot-0.bin $P/small/small.bin
stop_sim

# --- run-time devices: DFU_DETACH, reset, found again by serial ----------
start_sim r1 --serial SN-R001 --runtime-pid 5743
station devices >/tmp/devices-r.out 2>&1
check "station devices shows a run-time DFU interface" \
	has /tmp/devices-r.out "usb:SN-R001  1209:5743 run-time"
push /tmp/pr.out --device usb:SN-R001 $P/small
check "push to a run-time device detaches it, finds it again by serial and installs" \
	sh -c "[ $RC -eq 0 ] && grep -q 'proof: readback' /tmp/pr.out" || { cat /tmp/pr.out; tail -8 /tmp/r1.log; }
check "the device went to DFU mode on the bus reset after DFU_DETACH" \
	has /tmp/r1.log "bus reset: now in DFU mode (1209:5744)"
check "and runs its firmware after the final reset" has /tmp/r1.log "running the firmware"
check "the run-time device stored exactly the image" cmp -s /tmp/r1/slot-0.bin $P/small/small.bin
stop_sim

start_sim w1 --serial SN-R002 --runtime-pid 5743 --will-detach
push /tmp/pw.out --device usb:SN-R002 $P/small
check "a run-time device with bitWillDetach leaves and comes back by itself" \
	sh -c "[ $RC -eq 0 ] && grep -q 'DFU_DETACH (wTimeout 1000 ms): leaving the bus' /tmp/w1.log" || { cat /tmp/pw.out; tail -8 /tmp/w1.log; }
stop_sim

# --- identity over DFU (formats §9; docs/usb.md "Identity over DFU") -----
# A device key is given to the simulator with --device-key/--device-cert/
# --fleet-anchor (and --misbehave NAME, repeatable) after start_sim's
# name, like every other sim-dfu option.  test_usb_device drives
# station/device.h directly: attest, authorize, write, receipt.
devkey() { # devkey N: the options for the test PKI's device dev N
	echo "--device-key $P/pki/dev$1.key --device-cert $P/pki/dev$1.pem --fleet-anchor $P/pki/roots.pem"
}
idrec() { # idrec SERIAL FILE
	printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = %s\nsequence = 41\nversion = 2.4.1\n' "$1" >"$2"
}
drive() { # drive LOG SPEC EXPECT
	STATION_TEST_USB_DEVICE=$2 STATION_TEST_USB_KEY=$P/pki/station.key \
	STATION_TEST_USB_CHAIN=$P/pki/station.pem STATION_TEST_USB_IMAGE=$P/small/small.bin \
	STATION_TEST_USB_EXPECT=$3 test_usb_device >"$1" 2>&1
}
idrec SN-0001 /tmp/k1.rec
start_sim k1 --serial SN-0001 --info /tmp/k1.rec $(devkey 1)
station devices >/tmp/devices-k.out 2>&1
check "a device with a key is listed with its station-info identity (UPLOAD with no command pending)" \
	has /tmp/devices-k.out "serial SN-0001  model TX-200  hardware revB  sequence 41  version 2.4.1  (identity from station-info)" || cat /tmp/devices-k.out
dfu-util -d 1209:5744 -S SN-0001 -a 0 -D $P/small/small.bin >/tmp/dfu-k.out 2>&1
check "without an authorization the device refuses a download (dfu-util -D fails)" [ $? -ne 0 ]
check "the refusal is errWRITE at block 0 and nothing is stored" \
	sh -c "grep -q 'refused: block 0 to slot 0 without an authorization' /tmp/k1.log && [ ! -e /tmp/k1/slot-0.bin ]"
drive /tmp/drive-k1.out usb:SN-0001 ok
check "the station attests the device, authorizes the install and gets a signed receipt" \
	sh -c "grep -q 'PASSED.*1 test' /tmp/drive-k1.out && grep -q '^receipt: slot 0' /tmp/drive-k1.out" || { cat /tmp/drive-k1.out; tail -8 /tmp/k1.log; }
check "the device that took the authorization stored exactly the image" cmp -s /tmp/k1/slot-0.bin $P/small/small.bin
check "its receipt was made at manifestation" has /tmp/k1.log "receipt for slot 0 ready"
station devices >/tmp/devices-k2.out 2>&1
check "station devices still lists the device after the install" \
	has /tmp/devices-k2.out "serial SN-0001  model TX-200" || cat /tmp/devices-k2.out
stop_sim

idrec SN-0002 /tmp/k2.rec
start_sim k2 --serial SN-0002 --info /tmp/k2.rec $(devkey 2) --misbehave refuse-auth
drive /tmp/drive-k2.out usb:SN-0002 refused
check "a device that refuses its authorization: authorization refused, then its first block" \
	sh -c "grep -q 'PASSED.*1 test' /tmp/drive-k2.out && grep -q 'refused the authorization: the device answered: error authorization refused' /tmp/drive-k2.out" || { cat /tmp/drive-k2.out; tail -8 /tmp/k2.log; }
check "the device that refused stored nothing" [ ! -e /tmp/k2/slot-0.bin ]
stop_sim

# A run-time device with a key shows station-info in both modes: it attests
# in run-time mode, is detached by the first write, and must be the same
# unit (station-info serial) in DFU mode; its challenge lives on.
idrec SN-0003 /tmp/k3.rec
start_sim k3 --serial SN-0003 --runtime-pid 5743 --info /tmp/k3.rec $(devkey 3)
drive /tmp/drive-k3.out usb:SN-0003 ok
check "a run-time device attests, is detached, and its receipt carries the same challenge" \
	sh -c "grep -q 'PASSED.*1 test' /tmp/drive-k3.out && grep -q 'bus reset: now in DFU mode' /tmp/k3.log" || { cat /tmp/drive-k3.out; tail -12 /tmp/k3.log; }
stop_sim

# --- every identity refusal through `station push` (issue 13) -----------
# The station of station-id.conf requires the TX-200 to attest with a
# certificate from the test PKI's manufacturer (mfg-anchors.pem) and to
# prove each install (formats §8 [class]).  Each unit is asked by `station
# push` itself: exit code, rule and words, nothing stored, journal record.
IDC=$P/station-id.conf
ipush() { # ipush LOG SERIAL [push args...]: push bundle bid; sets RC
	log=$1
	sn=$2
	shift 2
	STATION_CONFIG=$IDC station push --technician ana --device "usb:$sn" \
		"$@" $P/bid >"$log" 2>&1
	RC=$?
}
ijournal() { STATION_CONFIG=$IDC station journal; }
keyed() { # keyed NAME SERIAL KEYNAME [sim-dfu options]: a unit with a key
	kn=$1
	sn=$2
	kk=$3
	shift 3
	idrec "$sn" "/tmp/$kn.rec"
	start_sim "$kn" --serial "$sn" --info "/tmp/$kn.rec" \
		--device-key "$P/pki/$kk.key" --device-cert "$P/pki/$kk.pem" \
		--fleet-anchor "$P/pki/roots.pem" "$@"
}
refused() { # refused WHAT NAME SERIAL PATTERN: exit 1, words, nothing stored
	ipush "/tmp/$2.out" "$3"
	check "$1: exit 1" [ "$RC" -eq 1 ] || cat "/tmp/$2.out"
	check "$1: rule and words" hasE "/tmp/$2.out" "$4" || cat "/tmp/$2.out"
	check "$1: nothing stored" [ ! -e "/tmp/$2/slot-0.bin" ]
}
jhas() { # jhas WHAT LINES PATTERN: the last LINES journal records match
	ijournal | tail -n "$2" >/tmp/jtail.out
	check "$1" hasE /tmp/jtail.out "$3" || cat /tmp/jtail.out
}

keyed g1 SN-0001 dev1
ipush /tmp/g1.out SN-0001
check "genuine unit: station push installs (exit 0)" [ "$RC" -eq 0 ] || cat /tmp/g1.out
check "genuine unit: proof device-signed" has /tmp/g1.out "proof: device-signed"
check "genuine unit: push names its certificate and the Acme TX-200 Device CA" \
	hasE /tmp/g1.out "identity: proven: SN-0001, certificate .*serialNumber=SN-0001.* by .*Acme TX-200 Device CA" || cat /tmp/g1.out
check "genuine unit: it stored exactly the image" cmp -s /tmp/g1/slot-0.bin $P/bid/id.bin
ijournal >/tmp/jg1.out
check "genuine unit: device-attested is journaled as proven" \
	hasE /tmp/jg1.out "device-attested .*serial=SN-0001.*class=tx200.*policy=required.*result=proven"
check "genuine unit: install-authorized is journaled" \
	hasE /tmp/jg1.out "install-authorized .*serial=SN-0001"
check "genuine unit: image-receipt is journaled as matching" \
	hasE /tmp/jg1.out "image-receipt .*serial=SN-0001.*result=matches"
check "genuine unit: install-finished carries proof device-signed" \
	hasE /tmp/jg1.out "install-finished .*serial=SN-0001.*proof=device-signed"

# With the genuine unit a counterfeit: Foreign Devices' certificate on a
# unit that claims SN-0003.
GPID=$SIMPID
keyed c1 SN-0003 foreign-dev
# start_sim's wait is met by the first unit: wait for the second too.
wait_until 150 serial_present SN-0003 && wait_until 50 all_configured
STATION_CONFIG=$IDC station devices --attest >/tmp/dev-attest.out 2>&1
RC=$?
check "station devices --attest with a counterfeit attached exits 1" [ "$RC" -eq 1 ] || cat /tmp/dev-attest.out
check "station devices --attest lists the genuine unit as proven by Acme's CA" \
	sh -c "grep -A1 '^usb:SN-0001 ' /tmp/dev-attest.out | grep -q 'identity proven: SN-0001, certificate .*serialNumber=SN-0001 by .*Acme TX-200 Device CA'" || cat /tmp/dev-attest.out
check "station devices --attest lists the counterfeit as not proven" \
	sh -c "grep -A1 '^usb:SN-0003 ' /tmp/dev-attest.out | grep -q 'identity not proven: '" || cat /tmp/dev-attest.out
kill "$SIMPID" 2>/dev/null && wait "$SIMPID" 2>/dev/null
SIMPID=$GPID
stop_sim

keyed w2 SN-0001 dev1 --misbehave wrong-key
refused "a signature by another key" w2 SN-0001 "rule attestation: .*signature"
jhas "a signature by another key: journaled as a failed attestation" 3 \
	"device-attested .*serial=SN-0001.*result=failed"
stop_sim
keyed f2 SN-0001 foreign-dev
refused "a certificate of another manufacturer" f2 SN-0001 "rule attestation: .*(not chain|anchor|Foreign)"
jhas "a certificate of another manufacturer: journaled as refused" 3 \
	"device-refused .*serial=SN-0001.*rule=attestation"
stop_sim
keyed o2 SN-0001 dev-other
refused "a certificate for another serial (SN-0099 on SN-0001)" o2 SN-0001 "rule attestation: .*SN-0099"
jhas "a certificate for another serial: journaled as a failed attestation" 3 \
	"device-attested .*serial=SN-0001.*result=failed"
stop_sim

# A replaying unit answers every challenge with its first attestation.
keyed r2 SN-0002 dev2 --misbehave replay
ipush /tmp/r2a.out SN-0002
check "replaying unit: its first push installs" [ "$RC" -eq 0 ] || cat /tmp/r2a.out
rm -f /tmp/r2/slot-0.bin
refused "a replayed attestation" r2 SN-0002 "rule attestation: .*nonce"
jhas "a replayed attestation: journaled as a failed attestation" 3 \
	"device-attested .*serial=SN-0002.*result=failed"
stop_sim

keyed a2 SN-0003 dev3 --misbehave refuse-auth
refused "a unit that refuses its authorization" a2 SN-0003 \
	"rule authorization: .*authorization refused"
jhas "a refused authorization: it was journaled as issued" 4 \
	"install-authorized .*serial=SN-0003"
jhas "a refused authorization: the refusal is journaled with its rule" 2 \
	"serial=SN-0003.*rule=authorization"
stop_sim

# A liar stores other bytes (--store-other) and signs a receipt for the
# authorized ones: its readback gives it away.
keyed l2 SN-0004 dev4 --misbehave lying-receipt --store-other
ipush /tmp/l2.out SN-0004
check "a receipt for bytes the unit did not store: exit 1" [ "$RC" -eq 1 ] || cat /tmp/l2.out
check "... rule install-proof, the readback differs" \
	hasE /tmp/l2.out "rule install-proof: .*read back from slot 0, sha256 [0-9a-f]+, manifest says" || cat /tmp/l2.out
check "... the unit did store other bytes" sh -c "! cmp -s /tmp/l2/slot-0.bin $P/bid/id.bin"
jhas "... journaled as install-failed" 2 "install-failed .*serial=SN-0004.*rule=install-proof"
jhas "... its lying receipt is journaled (image-receipt for the authorized bytes)" 3 \
	"image-receipt .*serial=SN-0004.*sha256=$(sha256sum $P/bid/id.bin | cut -c1-64) result=matches"
check "... and never as finished" sh -c "! STATION_CONFIG=$IDC station journal | grep -q 'install-finished .*serial=SN-0004'"
stop_sim
# An honest unit that stored other bytes and cannot be read back: only
# its receipt tells.
keyed h2 SN-0004 dev4 --store-other --no-upload
ipush /tmp/h2.out SN-0004
check "a receipt for other bytes, no readback: exit 1" [ "$RC" -eq 1 ] || cat /tmp/h2.out
check "... rule proof: the unit signed for other bytes" \
	hasE /tmp/h2.out "rule proof: usb:SN-0004: the device signed for 65536 bytes with SHA-256 [0-9a-f]{64}; the image is 65536 bytes with $(sha256sum $P/bid/id.bin | cut -c1-64)" || cat /tmp/h2.out
jhas "... image-receipt is journaled as differing" 3 \
	"image-receipt .*serial=SN-0004.*result=differs"
check "... and never as finished" sh -c "! STATION_CONFIG=$IDC station journal | grep -q 'install-finished .*serial=SN-0004'"
stop_sim

# A unit without a key under attestation = required, then a token.
idrec SN-0010 /tmp/n2.rec
start_sim n2 --serial SN-0010 --info /tmp/n2.rec
refused "required: a unit without a key" n2 SN-0010 "rule attestation: .*cannot attest"
jhas "required: a unit without a key: journaled as refused" 2 \
	"device-refused .*serial=SN-0010.*rule=attestation"
STATION_CONFIG=$IDC station token issue --key $P/pki/exception1.key \
	--cert $P/pki/exception1.pem --waive attestation --device SN-0010 \
	--ttl 2h --reason "identity chip failed, RMA-77" $P/bid >/tmp/tok.out 2>&1
check "a token waiving attestation for SN-0010 is issued" [ $? -eq 0 ] || cat /tmp/tok.out
ipush /tmp/n2b.out SN-0010
check "the token admits the unit without a key (exit 0)" [ "$RC" -eq 0 ] || cat /tmp/n2b.out
check "... it stored exactly the image" cmp -s /tmp/n2/slot-0.bin $P/bid/id.bin
jhas "... the waiver is journaled" 8 "token-applied .*serial=SN-0010.*waives=attestation"
rm -rf $P/bid/tokens
stop_sim

# --- hot-plug reaches the station core as events ------------------------
station devices --watch 60 >/tmp/watch.out 2>&1 &
WATCH=$!
wait_until 100 has /tmp/watch.out "no USB DFU device connected"
start_sim h1 --serial SN-H001
wait_until 50 has /tmp/watch.out "arrived usb:SN-H001"
stop_sim
wait_until 50 has /tmp/watch.out "left    usb:SN-H001"
kill "$WATCH" 2>/dev/null
wait "$WATCH" 2>/dev/null
check "an arriving device is reported with its identity" \
	has /tmp/watch.out "arrived usb:SN-H001  1209:5744 dfu  port .*serial SN-H001  model TX-200" || cat /tmp/watch.out
check "a departing device is reported" has /tmp/watch.out "left    usb:SN-H001"

station devices >/tmp/devices-none.out 2>&1
check "with nothing attached station devices says so" \
	has /tmp/devices-none.out "no USB DFU device connected"
exit 0
