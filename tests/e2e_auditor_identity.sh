#!/usr/bin/env bash
# tests/e2e_auditor_identity.sh: the walkthrough of docs/auditor.md section
# 4a ("Proving which unit took which image"), run against a real report:
# `station push` installs on keyed sim-serial units (tests/pki.sh dev1 =
# SN-0001, dev2 = SN-0002), `station report export` writes the report,
# `station report verify` passes it and shows the identity, and then the
# commands of section 4a, taken from docs/auditor.md itself (so the doc and
# this script cannot drift), prove with OpenSSL, jq, base64 and sed alone
# the unit's attestation, its receipt and the station's authorization.  A
# copy of the report whose receipt is re-signed with another unit's key is
# refused by the same commands.  The report's own signature and chain are
# covered by tests/e2e_report.sh.
. "$(dirname "$0")/lib.sh"
for tool in openssl jq base64; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
make_pki "$T/pki"
P=$T/pki
write_config "$T/station.conf" "$T/data" "$P" "[class tx200]" "model = TX-200" \
	"device-anchors = $P/mfg-anchors.pem" "attestation = required" "proof = required"
export STATION_CONFIG="$T/station.conf"

# Two images, so that the walkthrough must pick the image it is asked for.
sim_image "$T/app.bin" 42 2.4.1 20000
head -c 3000 /dev/urandom >"$T/cfg.bin"
bundle() { # DIR SEQUENCE
	"$STATION" bundle create --name tx200-app --version "2.4.$2" --sequence "$2" \
		--model TX-200 --image "app=$T/app.bin@0" --image "cfg=$T/cfg.bin@1" "$1" >/dev/null &&
	"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" "$1/manifest" >/dev/null
}
bundle "$T/b" 42
bundle "$T/b2" 43
keyed() { # NAME SERIAL KEYNAME
	printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = %s\nsequence = 41\nversion = 2.4.0\n' "$2" >"$T/$1.id"
	start_sim "$1" "$T/$1.id" --device-key "$P/$3.key" --device-cert "$P/$3.pem" \
		--fleet-anchor "$P/roots.pem"
}
keyed u1 SN-0001 dev1
keyed u2 SN-0002 dev2

# One session installs on both units (the walkthrough must select by
# device), a later one on SN-0002 alone (it must select by session).
out=$("$STATION" push --technician ana --device "serial:$T/u1" --device "serial:$T/u2" "$T/b" 2>&1)
check "push installs on both keyed units, device-signed" \
	test "$?" -eq 0 -a "$(grep -c 'proof: device-signed' <<<"$out")" -eq 2 || echo "$out"
out=$("$STATION" push --technician ana --device "serial:$T/u2" "$T/b2" 2>&1)
check "a second push installs on SN-0002" test "$?" -eq 0 || echo "$out"

mkdir -p "$T/out"
"$STATION" report export --out "$T/out" >/dev/null 2>&1
R=$(ls "$T"/out/report-STN-0042-*.json 2>/dev/null | head -n 1)
check "report export writes the report" test -s "$R"
out=$("$STATION" report verify --trust "$P/roots.pem" "$R" 2>&1)
check "report verify passes the report" test "$?" -eq 0 || echo "$out"
check "... and shows SN-0001 proven by its device certificate" \
	grep -q 'SN-0001 proven by certificate CN=TX-200 SN-0001, serialNumber=SN-0001 (serial [0-9A-F]*) of CA CN=Acme TX-200 Device CA' <<<"$out"
check "... SN-0001 authorized by the station, with its receipt matching" \
	grep -q 'SN-0001 authorized by the station until .*SN-0001 receipt for image app: proof device-signed, matches' <<<"$out"
check "... every identity record checked (3 attestations, 3 authorizations, 6 receipts)" \
	grep -q '^identity  12 signed device and station records checked' <<<"$out" || echo "$out" | grep '^identity'

# ---- docs/auditor.md section 4a, as written ----
awk '/^## 4a\./{s=1} s&&/^```sh$/{p=1;next} p&&/^```$/{exit} p' "$TOP/docs/auditor.md" >"$T/4a.sh"
check "docs/auditor.md 4a begins by naming R, SN and IMG" \
	grep -qx 'R=report-STN-0042-....json  SN=SN-0001  IMG=app' <(head -n 1 "$T/4a.sh")
# What an auditor runs, with the report and unit of this test (the first
# line of the doc's block names them) and the two anchor files at hand.
walkthrough() { # DIR REPORT SERIAL IMAGE
	rm -rf "$1" && mkdir -p "$1" && cp "$P/mfg-anchors.pem" "$P/roots.pem" "$1/" &&
	(cd "$1" && R=$2 SN=$3 IMG=$4 bash -c "$(tail -n +2 "$T/4a.sh")" 2>&1)
}
W=$T/work
out=$(walkthrough "$W" "$R" SN-0001 app)
printf '%s\n' "$out" | sed 's/^/    /'
check "the attestation, the receipt and the authorization verify (3 x Verified OK)" \
	[ "$(grep -c '^Verified OK$' <<<"$out")" -eq 3 ]
check "the device certificate chains to the manufacturer's anchor" \
	grep -qx 'dev.pem: OK' <<<"$out"
check "the device certificate names the unit by serialNumber" \
	grep -qx 'subject=CN = TX-200 SN-0001, serialNumber = SN-0001' <<<"$out"
check "the receipt is bound to the attestation's nonce and challenge" \
	grep -qx bound <<<"$out"
check "the station certificate chains to the fleet anchors" \
	grep -qx 'stn.pem: OK' <<<"$out"
check "the station certificate's CN is the report's station" \
	grep -qx 'subject=CN = STN-0042' <<<"$out"
check "... and it holds the station role" \
	grep -qx ' *2.25.220105586949796384984797284338591255574.4' <<<"$out"
check "the authorization is bound to this station, unit and challenge" \
	grep -qx authorized <<<"$out"
appsha=$(sha256sum "$T/app.bin" | cut -c1-64)
cfgsha=$(sha256sum "$T/cfg.bin" | cut -c1-64)
check "the unit stored the file's bytes (receipt's sha256 is app.bin's)" \
	grep -qx "$appsha" <<<"$out"
check "the authorized [image app] is printed, and only it" \
	[ "$(sed -n '/^\[image /,$p' <<<"$out")" = "$(printf '[image app]\nslot = 0\nsize = %s\nsha256 = %s' "$(stat -c %s "$T/app.bin")" "$appsha")" ]
check "the walkthrough picked SN-0001's own attestation" \
	grep -qx 'serial = SN-0001' "$W/att.txt"
check "... its receipt, not SN-0002's of the same session" \
	grep -qx 'device = SN-0001' "$W/rcp.txt"
# The doc shows what each openssl line prints: the same as here.
for line in 'dev.pem: OK' 'subject=CN = TX-200 SN-0001, serialNumber = SN-0001' \
	'Verified OK' 'stn.pem: OK' 'subject=CN = STN-0042' 'X509v3 Extended Key Usage:' \
	'    2.25.220105586949796384984797284338591255574.4'; do
	check "docs/auditor.md 4a shows '$line' as the output" \
		grep -q "^# $line\( \|$\)" "$T/4a.sh"
done

# SN-0002's image cfg, from the later session: the same commands.
out=$(walkthrough "$T/work2" "$R" SN-0002 cfg)
check "SN-0002, image cfg: 3 x Verified OK, bound, authorized" \
	[ "$(grep -c '^Verified OK$' <<<"$out")" -eq 3 ] && grep -qx bound <<<"$out" &&
	grep -qx authorized <<<"$out"
check "... its receipt is for cfg.bin's bytes" grep -qx "$cfgsha" <<<"$out"
s1=$(jq -r .session "$W/att.json") s2=$(jq -r .session "$T/work2/att.json")
b2=$(jq -r '[.events[] | select(.type == "install-authorized" and .fields.serial == "SN-0002")] | last | .session' "$R")
check "... from the later session, the last SN-0002 was attested in" \
	[ "$s2" = "$b2" -a "$s2" != "$s1" ]

# ---- the same commands refuse a receipt another unit's key signed ----
# A copy of the real report whose SN-0001 receipt for app is re-signed by
# dev2 (a genuine key of another unit); the record itself is untouched.
jq -j '[.events[] | select(.type == "image-receipt" and .fields.serial == "SN-0001"
	and .fields.image == "app")] | last | .fields.record' "$R" >"$T/rcp1.txt"
forged=$(openssl dgst -sha256 -sign "$P/dev2.key" "$T/rcp1.txt" | base64 -w0)
jq --arg sig "$forged" '(.events[] | select(.type == "image-receipt" and
	.fields.serial == "SN-0001" and .fields.image == "app") | .fields.sig) |= $sig' \
	"$R" >"$T/forged.json"
check "the forged copy differs from the report only in that signature" \
	[ "$(diff <(jq -S . "$R") <(jq -S . "$T/forged.json") | grep -c '^[<>]')" -eq 2 ]
out=$(walkthrough "$T/work3" "$T/forged.json" SN-0001 app)
check "a receipt signed by another unit's key: Verification failure" \
	grep -q '^Verification failure' <<<"$out" || echo "$out"
check "... while the attestation and authorization still verify" \
	[ "$(grep -c '^Verified OK$' <<<"$out")" -eq 2 ]
finish
