#!/usr/bin/env bash
# tests/e2e_auditor_identity.sh: the walkthrough of docs/auditor.md section
# 4a ("Proving which unit took which image"), run command for command with
# OpenSSL, jq and base64 alone: the unit's attestation, its receipt and the
# station's authorization are proven, and the same commands refuse a
# receipt signed by another unit's key.
#
# The report is a fixture: the records are signed here by the openssl CLI
# with tests/pki.sh keys (dev1 for the unit, station for the authorization)
# and laid out as a report's events (the members the walkthrough reads:
# station, events[].type/session/fields).  Until the install flow
# (station/install.c) journals these events from a simulator, no station
# program can produce them; then this fixture should give way to a real
# `station push` + `station report export`.  The report's own signature
# and chain are covered by tests/e2e_report.sh.
. "$(dirname "$0")/lib.sh"
for tool in openssl jq base64 python3; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
make_pki "$T/pki"
P=$T/pki
W=$T/work
mkdir -p "$W"

NONCE=$(openssl rand -hex 32)
CHAL=$(openssl rand -hex 32)
BUNDLE=$(openssl rand -hex 32)
printf 'hello' >"$T/app.bin"
IMGSHA=$(sha256sum "$T/app.bin" | cut -c1-64)
ISSUED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EXPIRES=$(date -u -d '+10 minutes' +%Y-%m-%dT%H:%M:%SZ)

# sign KEY FILE: base64 of the DER signature over FILE's bytes (formats §2)
sign() { openssl dgst -sha256 -sign "$P/$1.key" "$2" | base64 -w0; }

printf 'format = station-attest-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\nversion = 2.4.0\nnonce = %s\nchallenge = %s\n' \
	"$NONCE" "$CHAL" >"$T/att.txt"
printf 'format = station-install-1\nstation = STN-0042\nsite = plant-7\ntechnician = ana\ndevice = SN-0001\nchallenge = %s\nbundle = %s\nsequence = 42\nissued = %s\nexpires = %s\n[image app]\nslot = 0\nsize = 5\nsha256 = %s\n' \
	"$CHAL" "$BUNDLE" "$ISSUED" "$EXPIRES" "$IMGSHA" >"$T/az.txt"
printf 'format = station-receipt-1\ndevice = SN-0001\nnonce = %s\nchallenge = %s\nslot = 0\nsize = 5\nsha256 = %s\n' \
	"$NONCE" "$CHAL" "$IMGSHA" >"$T/rcp.txt"
# Another unit in another session, so that selecting by serial matters.
N2=$(openssl rand -hex 32) C2=$(openssl rand -hex 32)
printf 'format = station-attest-1\nmodel = TX-200\nserial = SN-0002\nnonce = %s\nchallenge = %s\n' \
	"$N2" "$C2" >"$T/att2.txt"

# make_report OUT RECEIPT-KEY: the fixture report; the receipt signed by
# RECEIPT-KEY (dev1: the unit itself; dev2: another unit's key).
make_report() {
	ATT_SIG=$(sign dev1 "$T/att.txt") AZ_SIG=$(sign station "$T/az.txt") \
	RCP_SIG=$(sign "$2" "$T/rcp.txt") ATT2_SIG=$(sign dev2 "$T/att2.txt") \
	T=$T P=$P BUNDLE=$BUNDLE ISSUED=$ISSUED EXPIRES=$EXPIRES IMGSHA=$IMGSHA \
	python3 - "$1" <<'PY'
import json, os, sys
e = os.environ
rd = lambda f: open(f, encoding="ascii").read()
dev = "serial:/dev/ttyUSB0"
evs = [
 ("S-2", "device-attested", {"device": dev, "serial": "SN-0002",
   "result": "proven", "record": rd(e["T"] + "/att2.txt"),
   "sig": e["ATT2_SIG"], "chain": rd(e["P"] + "/dev2.pem")}),
 ("S-1", "session-start", {"station": "STN-0042", "site": "plant-7",
   "command": "push", "technician": "ana"}),
 ("S-1", "device-attested", {"device": dev, "serial": "SN-0001",
   "model": "TX-200", "class": "tx", "policy": "required",
   "result": "proven", "record": rd(e["T"] + "/att.txt"),
   "sig": e["ATT_SIG"], "chain": rd(e["P"] + "/dev1.pem")}),
 ("S-1", "install-authorized", {"device": dev, "serial": "SN-0001",
   "bundle": e["BUNDLE"], "issued": e["ISSUED"], "expires": e["EXPIRES"],
   "record": rd(e["T"] + "/az.txt"), "sig": e["AZ_SIG"],
   "chain": rd(e["P"] + "/station.pem")}),
 ("S-1", "image-receipt", {"device": dev, "serial": "SN-0001",
   "bundle": e["BUNDLE"], "image": "app", "slot": "0", "size": "5",
   "sha256": e["IMGSHA"], "result": "matches",
   "record": rd(e["T"] + "/rcp.txt"), "sig": e["RCP_SIG"]}),
 ("S-1", "session-end", {"result": "ok", "code": "0"}),
]
rep = {"format": "station-report-1", "station": "STN-0042",
       "site": "plant-7", "events": [
         {"seq": i + 1, "time": e["ISSUED"], "type": t, "session": s,
          "fields": f} for i, (s, t, f) in enumerate(evs)]}
json.dump(rep, open(sys.argv[1], "w"))
PY
}

# ---- docs/auditor.md section 4a, as written ----
walkthrough() { # REPORT SERIAL IMAGE: prints what an auditor reads
	R=$1 SN=$2 IMG=$3
	cp "$P/mfg-anchors.pem" "$P/roots.pem" .
	val() { sed -n "s/^$1 *= *//p" "$2"; }      # a record's value

	# The unit: its attestation, and the session it belongs to.
	jq -c --arg sn "$SN" '[.events[] | select(.type == "device-attested"
	  and .fields.serial == $sn and .fields.result == "proven")] | last' "$R" >att.json
	S=$(jq -r .session att.json)  DEV=$(jq -r .fields.device att.json)
	jq -j .fields.record att.json >att.txt
	jq -r .fields.sig att.json | base64 -d >att.sig
	jq -j .fields.chain att.json >att-chain.pem
	openssl x509 -in att-chain.pem -out dev.pem          # the first certificate
	openssl verify -CAfile mfg-anchors.pem -untrusted att-chain.pem dev.pem
	openssl x509 -in dev.pem -noout -subject
	openssl x509 -in dev.pem -noout -pubkey >dev-pub.pem
	openssl dgst -sha256 -verify dev-pub.pem -signature att.sig att.txt
	val serial att.txt; val nonce att.txt; val challenge att.txt

	# What it stored: its receipt for image Y, signed with the same key.
	jq -c --arg s "$S" --arg d "$DEV" --arg i "$IMG" '[.events[] | select(
	  .type == "image-receipt" and .session == $s and .fields.device == $d
	  and .fields.image == $i)] | last' "$R" >rcp.json
	jq -j .fields.record rcp.json >rcp.txt
	jq -r .fields.sig rcp.json | base64 -d >rcp.sig
	openssl dgst -sha256 -verify dev-pub.pem -signature rcp.sig rcp.txt
	[ "$(val device rcp.txt)" = "$(val serial att.txt)" ] &&
	[ "$(val nonce rcp.txt)" = "$(val nonce att.txt)" ] &&
	[ "$(val challenge rcp.txt)" = "$(val challenge att.txt)" ] && echo bound
	val sha256 rcp.txt             # the SHA-256 of what the unit stored

	# Under whose authority: the station's authorization of this install.
	jq -c --arg s "$S" --arg d "$DEV" '[.events[] | select(
	  .type == "install-authorized" and .session == $s
	  and .fields.device == $d)] | last' "$R" >az.json
	jq -j .fields.record az.json >az.txt
	jq -r .fields.sig az.json | base64 -d >az.sig
	jq -j .fields.chain az.json >az-chain.pem
	openssl x509 -in az-chain.pem -out stn.pem
	openssl verify -CAfile roots.pem -untrusted az-chain.pem stn.pem
	openssl x509 -in stn.pem -noout -subject -ext extendedKeyUsage
	openssl x509 -in stn.pem -noout -pubkey >stn-pub.pem
	openssl dgst -sha256 -verify stn-pub.pem -signature az.sig az.txt
	[ "$(val station az.txt)" = "$(jq -r .station "$R")" ] &&
	[ "$(val device az.txt)" = "$(val serial att.txt)" ] &&
	[ "$(val challenge az.txt)" = "$(val challenge att.txt)" ] && echo authorized
	sed -n "/^\[image $IMG\]/,/^\[/p" az.txt     # slot, size, sha256 authorized
}

make_report "$T/good.json" dev1
out=$(cd "$W" && walkthrough "$T/good.json" SN-0001 app 2>&1)
printf '%s\n' "$out" | sed 's/^/    /'
n_ok=$(printf '%s\n' "$out" | grep -c '^Verified OK$')
check "the attestation, the receipt and the authorization verify (3 x Verified OK)" \
	[ "$n_ok" -eq 3 ]
check "the device certificate chains to the manufacturer's anchor" \
	grep -qx 'dev.pem: OK' <<<"$out"
check "the device certificate names the unit by serialNumber" \
	grep -q 'serialNumber *= *SN-0001' <<<"$out"
check "the receipt is bound to the attestation's nonce and challenge" \
	grep -qx bound <<<"$out"
check "the station certificate chains to the fleet anchors" \
	grep -qx 'stn.pem: OK' <<<"$out"
check "the station certificate's CN is the report's station" \
	grep -q 'subject=CN *= *STN-0042' <<<"$out"
check "the authorization is bound to this station, unit and challenge" \
	grep -qx authorized <<<"$out"
stored=$(sed -n 's/^sha256 *= *//p' "$W/rcp.txt")
authorized=$(sed -n '/^\[image app\]/,/^\[/s/^sha256 *= *//p' "$W/az.txt")
check "the receipt's digest is the authorized image's, the file's" \
	[ "$stored:$authorized" = "$IMGSHA:$IMGSHA" ]
check "the walkthrough picked the unit's own session, not SN-0002's" \
	[ "$(jq -r .session "$W/att.json")" = S-1 ]

# The same commands refuse a receipt another unit's key signed.
make_report "$T/forged.json" dev2
rm -rf "$W" && mkdir -p "$W"
out=$(cd "$W" && walkthrough "$T/forged.json" SN-0001 app 2>&1)
check "a receipt signed by another unit's key: Verification failure" \
	grep -q '^Verification failure' <<<"$out"
n_ok=$(printf '%s\n' "$out" | grep -c '^Verified OK$')
check "... while the attestation and authorization still verify" \
	[ "$n_ok" -eq 2 ]
finish
