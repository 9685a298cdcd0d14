#!/usr/bin/env bash
# tests/e2e_identity.sh: recipient identity over the serial console
# (formats §8, §9; issue 13) through the station command against
# sim-serial holding IEEE 802.1AR-style device keys from tests/pki.sh.
# Every refusal is checked for its rule and its words, for "nothing was
# written", and for its journal record; the records are checked with plain
# OpenSSL; four devices attest and install at once.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }
command -v jq >/dev/null || { echo "skip: jq not installed"; exit 77; }

make_pki "$T/pki"
P=$T/pki
class_lines=("[class tx200]" "model = TX-200" "device-anchors = $P/mfg-anchors.pem"
	"attestation = required" "proof = required")
write_config "$T/station.conf" "$T/data" "$P" "${class_lines[@]}"
export STATION_CONFIG="$T/station.conf"

sim_image "$T/app.bin" 42 2.4.1 40000
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --image app=$T/app.bin@0 "$T/b" >/dev/null
"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" "$T/b/manifest" >/dev/null

ident() { # FILE SERIAL
	printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = %s\nsequence = 41\nversion = 2.4.0\n' "$2" >"$1"
}
keyed() { # NAME SERIAL KEYNAME [sim options]
	local name=$1 serial=$2 key=$3; shift 3
	ident "$T/$name.id" "$serial"
	start_sim "$name" "$T/$name.id" --device-key "$P/$key.key" \
		--device-cert "$P/$key.pem" --fleet-anchor "$P/roots.pem" "$@"
}
push() { "$STATION" push --technician ana "$@" "$T/b" 2>&1; }
stored() { test -s "$T/$1.store/slot-0.bin"; }
jn() { "$STATION" journal; }

# --- a genuine unit: attests, is authorized, signs its receipt -----------
keyed good SN-0001 dev1
out=$(push --device "serial:$T/good"); rc=$?
check "a genuine unit installs" test "$rc" -eq 0 || echo "$out"
check "its proof is device-signed" grep -q "proof: device-signed" <<<"$out"
check "push says whose certificate proved it" \
	grep -q "identity: proven: SN-0001, certificate .*serialNumber=SN-0001.* by .*Acme TX-200 Device CA" <<<"$out"
check "the unit stored the image" cmp -s "$T/good.store/slot-0.bin" "$T/app.bin"
j=$(jn)
check "device-attested is journaled as proven" grep -q "device-attested .*serial=SN-0001.*class=tx200.*policy=required.*result=proven" <<<"$j"
check "install-authorized is journaled" grep -q "install-authorized .*serial=SN-0001" <<<"$j"
check "image-receipt is journaled as matching" grep -q "image-receipt .*serial=SN-0001.*result=matches" <<<"$j"
check "install-finished carries class and proof" grep -q "install-finished .*serial=SN-0001.*proof=device-signed" <<<"$j"

# The journaled records are plain OpenSSL signatures (formats §9).
"$STATION" journal --json >"$T/j.json"
evt() { jq -c "[.. | objects | select(.type? == \"$1\")] | last" "$T/j.json"; }
evt device-attested | jq -j .fields.record >"$T/att.rec"
evt device-attested | jq -r .fields.sig | base64 -d >"$T/att.sig"
evt device-attested | jq -r .fields.chain >"$T/att.chain"
openssl x509 -in "$T/att.chain" -pubkey -noout >"$T/att.pub"
check "openssl verifies the journaled attestation with the device key" \
	openssl dgst -sha256 -verify "$T/att.pub" -signature "$T/att.sig" "$T/att.rec"
check "openssl chains the device certificate to the manufacturer root" \
	bash -c "openssl verify -CAfile '$P/mfg-anchors.pem' -untrusted '$T/att.chain' '$T/att.chain' | grep -q ': OK'"
evt install-authorized | jq -j .fields.record >"$T/auth.rec"
evt install-authorized | jq -r .fields.sig | base64 -d >"$T/auth.sig"
openssl x509 -in "$P/station.pem" -pubkey -noout >"$T/stn.pub"
check "openssl verifies the authorization with the station key" \
	openssl dgst -sha256 -verify "$T/stn.pub" -signature "$T/auth.sig" "$T/auth.rec"
check "the authorization is bound to the device's challenge" \
	grep -qx "challenge = $(sed -n 's/^challenge = //p' "$T/att.rec")" "$T/auth.rec"
evt image-receipt | jq -j .fields.record >"$T/rcpt.rec"
evt image-receipt | jq -r .fields.sig | base64 -d >"$T/rcpt.sig"
check "openssl verifies the receipt with the device key" \
	openssl dgst -sha256 -verify "$T/att.pub" -signature "$T/rcpt.sig" "$T/rcpt.rec"
check "the receipt names the image's digest" \
	grep -qx "sha256 = $(sha256sum "$T/app.bin" | cut -d' ' -f1)" "$T/rcpt.rec"

# --- refusals: rule attestation, nothing written -------------------------
refused() { # WHAT NAME PATTERN (push output)
	local out rc
	out=$(push --device "serial:$T/$2"); rc=$?
	check "$1: exit 1" test "$rc" -eq 1 || echo "$out"
	check "$1: rule and words" grep -Eq "$3" <<<"$out" || echo "$out"
	check "$1: nothing written" bash -c "! test -s '$T/$2.store/slot-0.bin'"
}
keyed wrongkey SN-0001 dev1 --misbehave wrong-key
refused "signature by another key" wrongkey "rule attestation.*signature"
keyed foreign SN-0001 foreign-dev
refused "certificate of another manufacturer" foreign "rule attestation.*(not chain|anchor|Foreign)"
keyed other SN-0001 dev-other
refused "certificate for another serial" other "rule attestation.*SN-0099"
# formats §9: device-CA CRLs come from the [trust] crl directory too.
write_config "$T/station.conf" "$T/data" "$P" "${class_lines[@]}"
sed -i "s|^require-custody = no|require-custody = no\ncrl = $P/mfg-crl|" "$T/station.conf"
keyed revoked SN-0005 dev-revoked
refused "revoked device certificate" revoked "rule attestation.*revoked"
write_config "$T/station.conf" "$T/data" "$P" "${class_lines[@]}"
keyed stationrole SN-0006 dev-station
refused "device certificate holding a station role" stationrole "rule attestation.*role"
# A replaying unit answers every challenge with its first attestation: the
# first push goes through, the second is refused.
keyed replay SN-0002 dev2 --misbehave replay
push --device "serial:$T/replay" >/dev/null
rm -f "$T/replay.store/slot-0.bin"
refused "replayed attestation" replay "rule attestation.*nonce"
check "failed attestations are journaled with what the device sent" \
	bash -c "'$STATION' journal | grep -q 'device-attested .*result=failed.*record='"

# --- authorization and receipts ------------------------------------------
keyed refuse SN-0003 dev3 --misbehave refuse-auth
out=$(push --device "serial:$T/refuse"); rc=$?
check "a unit that refuses its authorization: exit 1" test "$rc" -eq 1
check "... rule authorization with the device's words" grep -q "rule authorization" <<<"$out" || echo "$out"
check "... nothing written after it" bash -c "! test -s '$T/refuse.store/slot-0.bin'"
# A liar signs a receipt for the authorized bytes while it stored others
# (sim-serial --wrong-sha: its store differs): never a success.
keyed liar SN-0004 dev4 --misbehave lying-receipt --wrong-sha
out=$(push --device "serial:$T/liar"); rc=$?
check "a receipt for bytes the unit did not store: exit 1" test "$rc" -eq 1
check "... refused on proof, never a success" grep -Eq "rule (install-)?proof" <<<"$out" || echo "$out"
check "... journaled as install-failed" bash -c "'$STATION' journal | grep -Eq 'install-failed .*serial=SN-0004.*rule=(install-)?proof'"
check "... and never as finished" bash -c "! '$STATION' journal | grep -q 'install-finished .*serial=SN-0004'"
check "... its lying receipt is journaled all the same" bash -c "'$STATION' journal | grep -q 'image-receipt .*serial=SN-0004.*result=matches'"

# --- a unit without a key, under each policy -----------------------------
ident "$T/nokey.id" SN-0010
start_sim nokey "$T/nokey.id"
out=$(push --device "serial:$T/nokey"); rc=$?
check "required: a unit that cannot attest is refused" test "$rc" -eq 1
check "... rule attestation, cannot attest" grep -q "rule attestation.*cannot attest" <<<"$out" || echo "$out"
"$STATION" token issue --key "$P/exception1.key" --cert "$P/exception1.pem" \
	--waive attestation --device SN-0010 --ttl 2h --reason "identity chip failed, RMA-77" "$T/b" >/dev/null
out=$(push --device "serial:$T/nokey"); rc=$?
check "a token waiving attestation admits it" test "$rc" -eq 0 || echo "$out"
check "... and the waiver is journaled" bash -c "'$STATION' journal | grep -q 'token-applied .*serial=SN-0010.*waives=attestation'"
rm -rf "$T/b/tokens"
write_config "$T/station.conf" "$T/data" "$P" "[class tx200]" "model = TX-200" \
	"device-anchors = $P/mfg-anchors.pem" "attestation = optional"
ident "$T/nokey2.id" SN-0011
start_sim nokey2 "$T/nokey2.id"
out=$(push --device "serial:$T/nokey2"); rc=$?
check "optional: a unit that cannot attest installs" test "$rc" -eq 0 || echo "$out"
check "... and says why unproven is allowed" grep -q "unproven: .*attestation = optional" <<<"$out"
keyed wrongkey2 SN-0001 dev1 --misbehave wrong-key
refused "optional: a failed attestation is still refused" wrongkey2 "rule attestation"

# --- proof = required refuses plain YMODEM before a byte -----------------
"$TOP/$BUILD/pty-pair" 921600 "$T/ttyA" "$T/ttyB" >"$T/pair.out" 2>"$T/pair.log" &
PIDS+=($!)
for i in $(seq 1 100); do [ -e "$T/ttyA" ] && break; sleep 0.05; done
write_config "$T/station.conf" "$T/data" "$P" "[class tx200]" "model = TX-200" \
	"device-anchors = $P/mfg-anchors.pem" "attestation = optional" "proof = required" \
	"[port rb]" "path = $T/ttyA" "mode = ymodem" "model = TX-200" "serial = SN-RB01"
out=$("$STATION" push --technician ana --device "ymodem:$T/ttyA" "$T/b" 2>&1); rc=$?
check "proof = required refuses plain YMODEM: exit 1" test "$rc" -eq 1
check "... rule proof, nothing sent" grep -q "rule proof.*nothing sent" <<<"$out" || echo "$out"
check "... the install never started" bash -c "! '$STATION' journal | grep -q 'install-started .*serial=SN-RB01'"
check "... and the refusal is journaled" bash -c "'$STATION' journal | grep -q 'device-refused .*serial=SN-RB01.*rule=proof'"

# --- four devices attest and install at once -----------------------------
write_config "$T/station.conf" "$T/data" "$P" "${class_lines[@]}"
"$STATION" bundle create --name tx200-app --version 2.5.0 --sequence 50 \
	--model TX-200 --image app=$T/app.bin@0 "$T/b2" >/dev/null
"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" "$T/b2/manifest" >/dev/null
args=()
for n in 1 2 3 4; do
	keyed "q$n" "SN-000$n" "dev$n" --baud 115200
	args+=(--device "serial:$T/q$n")
done
out=$("$STATION" push --technician ana "${args[@]}" "$T/b2" 2>&1); rc=$?
check "four units at once: exit 0" test "$rc" -eq 0 || echo "$out"
check "four units at once: each proof device-signed" test "$(grep -c 'proof: device-signed' <<<"$out")" -eq 4
for n in 1 2 3 4; do
	check "unit $n stored the image" cmp -s "$T/q$n.store/slot-0.bin" "$T/app.bin"
done
finish
