#!/usr/bin/env bash
# tests/e2e_authz_replay.sh: an authorization replayed to another session or
# another device is refused by the device (formats §9, devices.md console
# `authorize`...`end`; issue 13), through real parts: `station push`
# installs on keyed sim-serial unit A (tests/pki.sh dev1 = SN-0001), the
# test takes the journaled install-authorized record, signature and chain
# (`station journal --json`), and then speaks the console itself over the
# units' pseudo-terminals, as a rogue program on the serial line would:
#   unit A, a new session (`attest` with a fresh nonce: a new challenge):
#     the captured authorization -> `error` naming the challenge;
#   unit B (dev2 = SN-0002), after its own `attest`:
#     the same authorization     -> `error` naming the device;
#   and `receive 0 SIZE` after either -> `error not authorized`.
# The control: the same record bound to A's new challenge and signed with
# the station key is accepted (`ok`, then `ready`), so the refusals above
# are for the binding alone, not for the way this test speaks.  Last, a
# class downgraded to `attestation = none` in station.conf: the station
# stops asking, and the keyed unit then refuses the image unauthorized.
. "$(dirname "$0")/lib.sh"
for tool in openssl jq base64 stty; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
make_pki "$T/pki"
P=$T/pki
write_config "$T/station.conf" "$T/data" "$P" "[class tx200]" "model = TX-200" \
	"device-anchors = $P/mfg-anchors.pem" "attestation = required" "proof = required"
export STATION_CONFIG="$T/station.conf"

sim_image "$T/app.bin" 42 2.4.1 8000
SIZE=$(stat -c %s "$T/app.bin")
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --image "app=$T/app.bin@0" "$T/b" >/dev/null
"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" "$T/b/manifest" >/dev/null
keyed() { # NAME SERIAL KEYNAME
	printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = %s\nsequence = 41\nversion = 2.4.0\n' "$2" >"$T/$1.id"
	start_sim "$1" "$T/$1.id" --device-key "$P/$3.key" --device-cert "$P/$3.pem" \
		--fleet-anchor "$P/roots.pem"
}
keyed unitA SN-0001 dev1
keyed unitB SN-0002 dev2

out=$("$STATION" push --technician ana --device "serial:$T/unitA" "$T/b" 2>&1)
check "station push installs on unit A, device-signed" \
	grep -q 'proof: device-signed' <<<"$out" || echo "$out"

# The journaled authorization, as anyone who can read the journal has it.
"$STATION" journal --json >"$T/j.json"
jq -c '[.. | objects | select(.type? == "install-authorized"
	and .fields.serial == "SN-0001")] | last | .fields' "$T/j.json" >"$T/az.json"
jq -j .record "$T/az.json" >"$T/az.txt"
jq -r .sig "$T/az.json" >"$T/az.sig64"
jq -r .chain "$T/az.json" >"$T/az-chain.pem"
check "the journal holds A's authorization: record, sig, chain" \
	test -s "$T/az.txt" -a -s "$T/az.sig64" -a -s "$T/az-chain.pem"
val() { sed -n "s/^$1 = //p" "$2"; }
old_chal=$(val challenge "$T/az.txt")
check "... for device SN-0001, unexpired (a replay, not a stale one)" \
	[ "$(val device "$T/az.txt")" = SN-0001 -a \
	  "$(date -u -d "$(val expires "$T/az.txt")" +%s)" -gt "$(($(date +%s) + 60))" ]

# ---- the console, spoken by hand (devices.md: lines end CR LF) ----------
open_unit() { # NAME: fd 3 on the unit's pty, raw
	exec 3<&- 3>&-
	stty -F "$T/$1" raw -echo 2>/dev/null
	exec 3<>"$T/$1"
}
send() { printf '%s\r\n' "$@" >&3; }
answer() { # the lines up to and with `ok...`, `ready` or `error ...`
	local line
	while IFS= read -r -t 10 -u 3 line; do
		line=${line%$'\r'}
		printf '%s\n' "$line"
		case $line in ok|ok\ *|ready|error\ *) return 0 ;; esac
	done
	echo "(no answer)"
}
attest() { # -> the unit's answer; its challenge in $T/chal
	send "attest $(openssl rand -hex 32)"
	answer | tee "$T/att.out" | sed -n 's/^challenge = //p' >"$T/chal"
}
authorize() { # RECORD-FILE SIG-B64 CHAIN-PEM -> the unit's answer
	{
		printf 'authorize\r\n'
		sed 's/$/\r/' "$1"
		printf 'sig %s\r\n' "$2"
		awk '/^-----BEGIN/ { b = ""; next }
		     /^-----END/ { printf "cert %s\r\n", b; next }
		     { b = b $0 }' "$3"
		printf 'end\r\n'
	} >&3
	answer
}

# Unit A, a new session: a new challenge, the captured authorization.
open_unit unitA
attest >/dev/null
new_chal=$(cat "$T/chal")
check "unit A attests anew with a fresh challenge" \
	[ "${#new_chal}" -eq 64 -a "$new_chal" != "$old_chal" ] || cat "$T/att.out"
out=$(authorize "$T/az.txt" "$(cat "$T/az.sig64")" "$T/az-chain.pem")
check "A refuses its own authorization from the last session: error" \
	grep -q '^error ' <<<"$out" || echo "$out"
check "... naming the challenge (the signature and station role passed)" \
	grep -qx "error the authorization's challenge is not this session's" <<<"$out" || echo "$out"
send "receive 0 $SIZE"
out=$(answer)
check "... and then refuses receive: error not authorized" \
	grep -q '^error not authorized' <<<"$out" || echo "$out"

# Unit B, its own session: the same authorization, for another device.
open_unit unitB
attest >/dev/null
check "unit B attests" test -s "$T/chal" || cat "$T/att.out"
out=$(authorize "$T/az.txt" "$(cat "$T/az.sig64")" "$T/az-chain.pem")
check "B refuses A's authorization: error naming the device" \
	grep -qx 'error the authorization is for device SN-0001, not this one' <<<"$out" || echo "$out"
send "receive 0 $SIZE"
out=$(answer)
check "... and then refuses receive: error not authorized" \
	grep -q '^error not authorized' <<<"$out" || echo "$out"
check "B stored nothing" bash -c "! test -s '$T/unitB.store/slot-0.bin'"

# Control: A's record bound to A's new challenge, signed with the station
# key, spoken the same way, is accepted and opens the slot.
open_unit unitA
attest >/dev/null
sed "s/^challenge = .*/challenge = $(cat "$T/chal")/" "$T/az.txt" >"$T/az2.txt"
sig2=$(openssl dgst -sha256 -sign "$P/station.key" "$T/az2.txt" | base64 -w0)
out=$(authorize "$T/az2.txt" "$sig2" "$T/az-chain.pem")
check "control: bound to this session's challenge, A says ok" \
	grep -qx ok <<<"$out" || echo "$out"
send "receive 0 $SIZE"
out=$(answer)
check "control: ... and receive is ready" grep -qx ready <<<"$out" || echo "$out"
exec 3<&- 3>&-

# A class downgraded by configuration (attestation = none) does not get an
# image past a keyed unit: the station no longer attests it, so it cannot
# authorize it, and the unit refuses the image; the journal says so.
write_config "$T/station.conf" "$T/data" "$P" "[class tx200]" "model = TX-200" \
	"attestation = none"
out=$("$STATION" push --technician ana --device "serial:$T/unitB" "$T/b" 2>&1); rc=$?
check "downgraded class: the keyed unit refuses the image (exit $rc)" \
	test "$rc" -ne 0
check "... the unit says not authorized" \
	grep -q "refused .receive 0 $SIZE.: not authorized" <<<"$out" || echo "$out"
check "... and the station says the class never asks for it" \
	grep -q "needs an install authorization, which class tx200 never asks for (attestation = none)" <<<"$out" || echo "$out"
check "... it stored nothing" bash -c "! test -s '$T/unitB.store/slot-0.bin'"
j=$("$STATION" journal)
check "... the journal shows the policy the unit was met with" \
	grep -q 'device-attested .*serial=SN-0002.*class=tx200 policy=none result=not-asked' <<<"$j"
check "... and the install as failed" grep -q 'install-failed .*serial=SN-0002' <<<"$j"
check "... never as finished" bash -c '! grep -q "install-finished .*serial=SN-0002"' <<<"$j"
finish
