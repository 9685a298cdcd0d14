#!/usr/bin/env bash
# tests/e2e_spine.sh: the whole station path from a fresh PKI: release
# engineering builds and signs a bundle with the station's own commands, the
# station verifies it and pushes it over a pseudo-terminal to the simulated
# device and to lrzsz `rb`, and every refusal case ends with the right
# reason, nothing written to the device, and the refusal journaled.
. "$(dirname "$0")/lib.sh"

for tool in openssl rb; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"

# --- release engineering: build and sign a bundle -------------------------
sim_image "$T/tx200-app.bin" 42 2.4.1 300000
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --hardware revB --hardware revC \
	--image app=$T/tx200-app.bin@0 "$T/good" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
	--label rel1 "$T/good/manifest" >/dev/null
check "bundle create and sign write manifest, image and signature" \
	test -f "$T/good/manifest" -a -f "$T/good/manifest.rel1.sig" -a -f "$T/good/tx200-app.bin"
check "openssl verifies the station's signature" \
	bash -c "openssl x509 -in '$T/good/manifest.rel1.pem' -pubkey -noout > '$T/pub.pem' &&
		openssl dgst -sha256 -verify '$T/pub.pem' -signature '$T/good/manifest.rel1.sig' '$T/good/manifest' >/dev/null"

out=$("$STATION" verify "$T/good" 2>&1); rc=$?
check "verify accepts the good bundle" test "$rc" -eq 0
check "verify names the signer" grep -q "signers   release-1" <<<"$out"

# --- push to the simulated console device ---------------------------------
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\nversion = 2.4.0\n' >"$T/dev1.id"
start_sim dev1 "$T/dev1.id"
out=$("$STATION" push --technician ana --device "serial:$T/dev1" "$T/good" 2>&1); rc=$?
check "push to the simulator exits 0" test "$rc" -eq 0 || echo "$out"
check "the simulator stored exactly the image bytes" cmp -s "$T/dev1.store/slot-0.bin" "$T/tx200-app.bin"
check "the device's sequence rose to 42" grep -qx "sequence = 42" "$T/dev1.id"
check "push reports the device's sha256 as proof" grep -q "proof: device-sha256" <<<"$out"
journal=$("$STATION" journal)
check "the journal holds install-started" grep -q " install-started .*serial=SN-0001.*sequence-before=41" <<<"$journal"
check "the journal holds install-finished with proof" grep -q " install-finished .*serial=SN-0001.*sequence=42.*proof=device-sha256" <<<"$journal"
check "the journal chain verifies" bash -c "'$STATION' journal --verify | grep -q 'journal chain verifies'"

# The same bundle again is now a reinstall: refused without confirmation,
# and the simulator's own log shows no transfer was started.
receives() { grep -c 'receive:' "$T/$1.log"; }
before=$(receives dev1)
out=$("$STATION" push --technician ana --device "serial:$T/dev1" "$T/good" 2>&1); rc=$?
check "equal sequence without --reinstall exits 1" test "$rc" -eq 1
check "equal sequence names the reinstall rule" grep -q "rule reinstall:.*equals the installed sequence" <<<"$out"
check "equal sequence: the device received nothing" test "$(receives dev1)" -eq "$before"
out=$("$STATION" push --technician ana --reinstall --device "serial:$T/dev1" "$T/good" 2>&1); rc=$?
check "equal sequence with --reinstall installs" test "$rc" -eq 0
check "the journal records the confirmed reinstall" bash -c "'$STATION' journal | grep -q 'install-started .*reinstall=yes'"
check "each image written is journaled with its proof" \
	bash -c "'$STATION' journal | grep -q 'image-written .*image=app.*slot=0.*proof=device-sha256.*device-sha256=[0-9a-f]\{64\}'"

# --- plain YMODEM to lrzsz rb over a pty pair ------------------------------
# A line paced like a UART (pty-pair): rb flushes its input after each ACK,
# and on an unpaced socat pair that loses blocks and stalls for seconds.
"$TOP/$BUILD/pty-pair" 921600 "$T/ttyA" "$T/ttyB" >"$T/pair.out" 2>"$T/pair.log" &
PIDS+=($!)
for i in $(seq 1 100); do [ -e "$T/ttyA" ] && [ -e "$T/ttyB" ] && break; sleep 0.05; done
mkdir -p "$T/rb"
(cd "$T/rb" && exec timeout 60 rb --ymodem -q <"$T/ttyB" >"$T/ttyB" 2>"$T/rb.log") &
rbpid=$!
write_config "$T/station.conf" "$T/data" "$T/pki" \
	"[port bench-rb]" "path = $T/ttyA" "mode = ymodem" "model = TX-200" "hardware = revB" "serial = SN-RB01"
out=$("$STATION" push --technician ana --device "ymodem:$T/ttyA" "$T/good" 2>&1); rc=$?
wait "$rbpid"
check "push in plain YMODEM mode to rb exits 0" test "$rc" -eq 0 || echo "$out"
check "rb received exactly the image bytes" cmp -s "$T/rb/tx200-app.bin" "$T/tx200-app.bin"
check "a plain YMODEM install is recorded as unproven" grep -q "proof: none" <<<"$out"
check "the journal says proof=none for it" bash -c "'$STATION' journal | grep -q 'install-finished .*serial=SN-RB01.*proof=none'"

# --- refusals: each exits 1, says why, writes nothing, is journaled -------
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0002\nsequence = 10\n' >"$T/dev2.id"
start_sim dev2 "$T/dev2.id"

bundle_copy() { rm -rf "$T/$1"; cp -r "$T/good" "$T/$1"; }

refusal() { # refusal NAME BUNDLE RULE REASON-REGEX
	local name=$1 dir=$2 rule=$3 reason=$4 before after
	before=$("$STATION" journal | wc -l)
	out=$("$STATION" push --technician ana --device "serial:$T/dev2" "$dir" 2>&1); rc=$?
	check "$name: exit 1" test "$rc" -eq 1
	check "$name: reason 'rule $rule: $reason'" grep -Eq "rule $rule: $reason" <<<"$out" || echo "  got: $out"
	check "$name: nothing written to the device" test -z "$(ls -A "$T/dev2.store")"
	check "$name: reason names the media path, not staging" \
		bash -c "grep -q '$dir' <<<\"\$1\" && ! grep -q '/staging/' <<<\"\$1\"" _ "$out"
	after=$("$STATION" journal | tail -n +$((before + 1)))
	check "$name: refusal journaled with rule $rule" grep -Eq " (bundle|device)-refused .*rule=$rule " <<<"$after"
}

bundle_copy tampered-image
printf 'X' | dd of="$T/tampered-image/tx200-app.bin" bs=1 seek=1000 conv=notrunc 2>/dev/null
refusal "tampered image" "$T/tampered-image" images ".*tampered-image/tx200-app.bin: sha256 is [0-9a-f]{64}, manifest says"

bundle_copy tampered-manifest
sed -i 's/^version = 2.4.1$/version = 2.4.9/' "$T/tampered-manifest/manifest"
refusal "tampered manifest" "$T/tampered-manifest" signature ".*tampered-manifest/manifest.rel1.(sig|pem): .*does not verify"

bundle_copy unsigned
rm "$T/unsigned"/manifest.rel1.*
refusal "unsigned manifest" "$T/unsigned" threshold ".*unsigned/manifest: unsigned"

mkdir -p "$T/wm-src"
"$STATION" bundle create --name tx100-app --version 1.0 --sequence 50 --model TX-100 \
	--image app=$T/tx200-app.bin "$T/wrong-model" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" "$T/wrong-model/manifest" >/dev/null
refusal "wrong model" "$T/wrong-model" target ".*wrong-model/manifest: device .* is model TX-200, the bundle is for TX-100"

"$STATION" bundle create --name tx200-app --version 2.3.0 --sequence 9 --model TX-200 \
	--image app=$T/tx200-app.bin "$T/downgrade" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" "$T/downgrade/manifest" >/dev/null
refusal "downgrade" "$T/downgrade" downgrade ".*downgrade/manifest: sequence 9 is older than installed 10 on SN-0002 \(reported by the device\)"

"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 60 --model TX-200 \
	--image app=$T/tx200-app.bin "$T/wrong-role" >/dev/null
"$STATION" sign --key "$T/pki/custody1.key" --cert "$T/pki/custody1.pem" "$T/wrong-role/manifest" >/dev/null
refusal "manifest signed by a custody key" "$T/wrong-role" role ".*wrong-role/manifest.(sig|pem): .*holds role custody, not release"

# An image may not take the manifest's or a signature's name.
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 70 --model TX-200 \
	--image app=$T/tx200-app.bin "$T/sidecar-name" >/dev/null
sed -i 's/^file = tx200-app.bin$/file = manifest.rel1.pem/' "$T/sidecar-name/manifest"
mv "$T/sidecar-name/tx200-app.bin" "$T/sidecar-name/manifest.rel1.pem"
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" "$T/sidecar-name/manifest" >/dev/null
refusal "image named like a signature file" "$T/sidecar-name" record ".*sidecar-name/manifest:[0-9]+: image file name must not be 'manifest'"

# With the default policy (require-custody = yes) custody, check 6, fails
# closed; a device that also fails check 4 is refused for check 4 first.
write_config "$T/custody.conf" "$T/data" "$T/pki"
sed -i '/require-custody = no/d' "$T/custody.conf"
out=$("$STATION" push --config "$T/custody.conf" --technician ana --device "serial:$T/dev2" "$T/good" 2>&1); rc=$?
check "default policy: custody required and refused (exit 1)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'rule custody: .*custody: no custody records' <<<\"\$1\"" _ "$out"
out=$("$STATION" push --config "$T/custody.conf" --technician ana --device "serial:$T/dev2" "$T/wrong-model" 2>&1); rc=$?
check "spec order: target (check 4) is named before custody (check 6)" grep -q "rule target:" <<<"$out"
check "nothing was written by either" test -z "$(ls -A "$T/dev2.store")"

# A device that is not there: exit 3, journaled as a device error.
out=$("$STATION" push --technician ana --device "serial:$T/no-such-tty" "$T/good" 2>&1); rc=$?
check "a missing device exits 3 (retry may cure)" test "$rc" -eq 3
check "a missing device is journaled as device-error" \
	bash -c "'$STATION' journal | tail -3 | grep -q 'device-error .*no-such-tty'"

# A mistyped SPEC is a usage error before any work, and is not journaled.
before=$("$STATION" journal | wc -l)
"$STATION" push --technician ana --device "bogus:/dev/x" "$T/good" >/dev/null 2>"$T/err"; rc=$?
check "a bad device SPEC exits 2 naming the SPEC" bash -c "[ $rc -eq 2 ] && grep -q 'bogus:/dev/x' '$T/err'"
check "a bad device SPEC is not journaled" test "$("$STATION" journal | wc -l)" -eq "$before"

# A port configured as plain YMODEM is not spoken to as a console.
write_config "$T/mode.conf" "$T/data" "$T/pki" "[port p]" "path = $T/dev2" "mode = ymodem" "model = TX-200" "serial = SN-FAKE"
"$STATION" push --config "$T/mode.conf" --technician ana --device "serial:$T/dev2" "$T/good" >/dev/null 2>"$T/err"; rc=$?
check "a SPEC that contradicts the port's mode exits 2" \
	bash -c "[ $rc -eq 2 ] && grep -q 'configured as mode = ymodem' '$T/err'"

check "the journal chain still verifies after the refusals" \
	bash -c "'$STATION' journal --verify | grep -q 'journal chain verifies'"

# --- usage and configuration errors exit 2 --------------------------------
"$STATION" push --technician nobody --device "serial:$T/dev2" "$T/good" >/dev/null 2>"$T/err"; rc=$?
check "unknown technician is refused (exit 1) naming the technician" \
	bash -c "[ $rc -eq 1 ] && grep -q \"technician 'nobody'\" '$T/err'"
printf '[station]\nid = X\nsite = s\ndata = d\ncolour = red\n[trust]\nanchors = %s/pki/roots.pem\n' "$T" >"$T/bad.conf"
"$STATION" verify --config "$T/bad.conf" "$T/good" >/dev/null 2>"$T/err"; rc=$?
check "a bad configuration exits 2 naming file and line" \
	bash -c "[ $rc -eq 2 ] && grep -q 'bad.conf:5: unknown key .colour.' '$T/err'"
"$STATION" push --device "serial:$T/dev2" "$T/good" >/dev/null 2>&1; rc=$?
check "push without --technician is a usage error (exit 2)" test "$rc" -eq 2

finish
