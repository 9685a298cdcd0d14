#!/usr/bin/env bash
# tests/e2e_smp.sh: `station push smp:...` against the SMP simulator (a
# Zephyr/MCUboot device): identity from OS info and image state, upload,
# test, reset, the running hash checked, confirm; and every fault mode
# ending in the right journaled outcome.  An upload whose line drops part
# way resumes from the device's offset when the line comes back.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }
SMPSIM="$TOP/$BUILD/sim-smp"
MKIMG="$TOP/$BUILD/mcuboot-image"
[ -x "$SMPSIM" ] && [ -x "$MKIMG" ] || { echo "FAIL: $SMPSIM or $MKIMG missing (make test-bins)"; exit 1; }

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"

head -c 50000 /dev/urandom >"$T/old.body"
"$MKIMG" --version 1.0.0 "$T/old.body" "$T/old.img"
head -c 60000 /dev/urandom >"$T/new.body"
"$MKIMG" --version 1.1.0+3 --protected "$T/new.body" "$T/new.img"
SIZE=$(stat -c %s "$T/new.img")

# bundle DIR IMAGE: a signed bundle for the simulated board
bundle() {
	"$STATION" bundle create --name tx200-app --version 1.1.0 --sequence 7 \
		--model tx200_nrf52840 --image app="$2@0" "$1" >/dev/null &&
	"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
		"$1/manifest" >/dev/null
}
bundle "$T/b" "$T/new.img"

# start NAME [sim options]: a device running old.img, linked at $T/NAME
start() {
	local name=$1; shift
	mkdir -p "$T/$name.store"
	"$SMPSIM" --store "$T/$name.store" --link "$T/$name" --primary "$T/old.img" "$@" \
		>"$T/$name.out" 2>"$T/$name.log" &
	PIDS+=($!)
	wait_for "$T/$name.out" || { echo "sim-smp $name did not start"; cat "$T/$name.log"; return 1; }
}
# push NAME [BUNDLE]: sets $rc, $out and $jn (the journal lines it added)
push() {
	local before
	before=$("$STATION" journal | wc -l)
	out=$(timeout 150 "$STATION" push --technician ana --device "smp:$T/$1" "${2:-$T/b}" 2>&1); rc=$?
	jn=$("$STATION" journal | tail -n +$((before + 1)))
}
journaled() { grep -Eq "$1" <<<"$jn" || { echo "  journal: $(tail -n 2 <<<"$jn")"; return 1; }; }
runs_new() { cmp -s "$T/$1.store/slot-0.bin" "$T/new.img"; }
received() { sed -n 's/.*upload complete: [0-9]* bytes in [0-9]* requests, \([0-9]*\) data bytes.*/\1/p' "$T/$1.log" | tail -n 1; }

# --- the whole flow on a clean line at 115200 baud ------------------------
start clean --baud 115200 --node SN-7001
push clean
check "push over SMP exits 0" test "$rc" -eq 0 || echo "$out"
check "the device runs the new image (slot 0 byte for byte)" runs_new clean
check "the device tested, swapped and confirmed it" \
	bash -c "grep -q 'slot 1 pending (test)' '$T/clean.log' && grep -q 'swapped in version 1.1.0.3' '$T/clean.log' && grep -q 'slot 0 confirmed' '$T/clean.log'"
check "identity: model is the board from OS info, serial the node name" \
	journaled "install-started .*transport=smp serial=SN-7001 model=tx200_nrf52840"
check "proof: the device matched the manifest's sha256" \
	journaled "install-finished .*serial=SN-7001.*proof=device-sha256"
check "every data byte was sent once on a clean line" test "$(received clean)" -eq "$SIZE"

# --- images past 64 KiB at the buffer sizes devices report ----------------
# Zephyr's serial transport reassembles length, message and CRC in one
# buffer of buf_size bytes, so every request must be <= buf_size - 4 bytes,
# also once the CBOR offset needs 5 bytes (65536 and up).  An image of
# 64 KiB + 1 ends on a 1-byte chunk past that point; 192 KiB runs long past
# it; 1 MiB is pushed at the smallest and the largest buffer only (at 256
# bytes it alone takes about 4,500 requests; the other sizes add nothing
# the 192 KiB run does not show).
# sized_image SIZE OUT: an MCUboot image of exactly SIZE bytes
sized_image() {
	head -c 1000 /dev/urandom >"$T/probe.body"
	"$MKIMG" --version 1.1.0+3 "$T/probe.body" "$T/probe.img"
	local over=$(( $(stat -c %s "$T/probe.img") - 1000 ))
	head -c $(( $1 - over )) /dev/urandom >"$T/sized.body"
	"$MKIMG" --version 1.1.0+3 "$T/sized.body" "$2"
}
n=0
for size in 65537 196608 1048576; do
	sized_image "$size" "$T/img-$size.img"
	bundle "$T/b-$size" "$T/img-$size.img"
	bufs="256 512 1024 2048 4096"
	[ "$size" -eq 1048576 ] && bufs="256 4096"
	for buf in $bufs; do
		n=$((n + 1))
		name="big$n"
		start "$name" --node "SN-8$(printf %03d $n)" --buf-size "$buf"
		push "$name" "$T/b-$size"
		check "$size-byte image at buf_size $buf: push exits 0" test "$rc" -eq 0
		[ "$rc" -eq 0 ] || tail -n 2 <<<"$out"
		check "$size-byte image at buf_size $buf: no request was dropped" \
			bash -c "! grep -q 'dropped a request' '$T/$name.log'"
		grep -m1 'dropped a request' "$T/$name.log"
		check "$size-byte image at buf_size $buf: the device runs it byte for byte" \
			cmp -s "$T/$name.store/slot-0.bin" "$T/img-$size.img"
		kill "${PIDS[-1]}" 2>/dev/null
	done
done

# --- a line drop part way: the upload resumes at the device's offset ------
start resume --baud 115200 --node SN-7002 --drop-at 40000 --drop-ms 1500
push resume
check "line dropped mid-upload: the push still succeeds" test "$rc" -eq 0 || echo "$out"
check "the line really dropped" grep -q "line dropped" "$T/resume.log"
check "the upload was not restarted from zero" test "$(grep -c 'upload: new' "$T/resume.log")" -eq 1
check "no more than two requests' worth of data was sent again ($(received resume) of $SIZE)" \
	test "$(received resume)" -lt $((SIZE + 4096))
check "after the resume the device runs the new image" runs_new resume
check "resumed install journaled as finished" journaled "install-finished .*serial=SN-7002"

# --- faults a retry cures ---------------------------------------------------
start corrupt --node SN-7003 --corrupt-request 5
push corrupt
check "a damaged request (no answer) is sent again and the push succeeds" test "$rc" -eq 0 || echo "$out"
check "the simulator dropped request 5" grep -q "upload request 5 arrives damaged" "$T/corrupt.log"
check "damaged request: the device runs the new image" runs_new corrupt

start nak --node SN-7004 --nak-every 6
push nak
check "requests not taken are sent again from the device's offset" test "$rc" -eq 0 || echo "$out"
check "the device refused some requests" grep -q "not taken" "$T/nak.log"
check "NAKed requests: the device runs the new image" runs_new nak

start slow --node SN-7005 --slow 800 --log-noise
push slow
check "a slow device that logs on its console still takes the image" test "$rc" -eq 0 || echo "$out"
check "slow device: the device runs the new image" runs_new slow

# --- MCUboot serial recovery: no OS info, no parameters, no match --------
write_config "$T/station.conf" "$T/data" "$T/pki" \
	"[port rec]" "path = $T/rec" "mode = smp" "model = tx200_nrf52840" "serial = SN-REC1" \
	"[port bad]" "path = $T/badboard" "mode = smp" "model = TX-999" "serial = SN-X"
start rec --recovery
push rec
check "serial recovery (no OS info, parameters, match or test), identity configured: exit 0" test "$rc" -eq 0 || echo "$out"
check "serial recovery: requests fit the 1 KiB buffer when the device does not say" \
	bash -c "! grep -q 'dropped a request' '$T/rec.log'"
check "serial recovery: no match from the device, so the proof is the listed image hash" \
	journaled "install-finished .*serial=SN-REC1.*proof=image-hash"
check "serial recovery: written straight to slot 0, no test or confirm asked" \
	bash -c "runs() { cmp -s '$T/rec.store/slot-0.bin' '$T/new.img'; }; runs && ! grep -q 'image state:' '$T/rec.log'"

# Serial recovery whose freshly booted application speaks no SMP: the
# station cannot watch it run, and has nothing to confirm.
write_config "$T/station.conf" "$T/data" "$T/pki" \
	"[port mute]" "path = $T/mute" "mode = smp" "model = tx200_nrf52840" "serial = SN-MUTE"
start mute --recovery --mute-after-reset
push mute
check "serial recovery, application without SMP after the reset: exit 0" test "$rc" -eq 0 || echo "$out"
check "that install is journaled with the listed image hash as proof" \
	journaled "install-finished .*serial=SN-MUTE.*proof=image-hash"

# A device that keeps the old slot-1 habit but offers no OS info, parameters
# or match: test and confirm still happen, proof is the image hash.
write_config "$T/station.conf" "$T/data" "$T/pki" \
	"[port app]" "path = $T/app" "mode = smp" "model = tx200_nrf52840" "serial = SN-APP1" \
	"[port bad]" "path = $T/badboard" "mode = smp" "model = TX-999" "serial = SN-X"
start app --no-info --no-match --buf-size 0
push app
check "no OS info, parameters or match, with test and confirm: exit 0" test "$rc" -eq 0 || echo "$out"
check "that device was tested, swapped and confirmed" \
	bash -c "grep -q 'slot 1 pending (test)' '$T/app.log' && grep -q 'slot 0 confirmed' '$T/app.log'"
check "and its proof is the listed image hash" journaled "install-finished .*serial=SN-APP1.*proof=image-hash"

start badboard --node SN-7006
push badboard
check "a board that contradicts [port] model is refused (exit 1)" test "$rc" -eq 1
check "board mismatch names both" grep -q "reports board 'tx200_nrf52840', but \[port bad\] says model = TX-999" <<<"$out"
check "board mismatch journaled as device-refused, rule identity" journaled "device-refused .*rule=identity"

start noserial
push noserial
check "a device without a serial number is refused (exit 1)" test "$rc" -eq 1
check "no serial: the reason says how to configure one" grep -q "reports no serial number" <<<"$out"

# --- faults that fail, with the reason journaled ---------------------------
start wrong --node SN-7007 --wrong-sha
push wrong
check "device says its bytes do not match: exit 1" test "$rc" -eq 1
check "no match: rule install-proof, journaled" journaled "install-failed .*rule=install-proof"
check "no match: the new image is not booted" bash -c "! grep -q 'reset' '$T/wrong.log'"

start wronghash --node SN-7008 --wrong-sha --no-match
push wronghash
check "device lists another hash after the upload: exit 1" test "$rc" -eq 1
check "wrong listed hash: the reason shows what the device lists" grep -q "lists no image 0 with hash" <<<"$out"
check "wrong listed hash: journaled with rule install-proof" journaled "install-failed .*rule=install-proof"

head -c 30000 /dev/urandom >"$T/raw.bin"
bundle "$T/rawbundle" "$T/raw.bin"
start raw --node SN-7009
push raw "$T/rawbundle"
check "an image that is not an MCUboot image is refused (exit 1)" test "$rc" -eq 1
check "not MCUboot: rule images, nothing uploaded" \
	bash -c "grep -q 'rule images: .*not a usable MCUboot image' <<<\"\$1\" && ! grep -q upload '$T/raw.log'" _ "$out"

check "the journal chain verifies" bash -c "'$STATION' journal --verify | grep -q 'journal chain verifies'"
finish
