#!/usr/bin/env bash
# tests/e2e_devices.sh: `station devices` on the demo's simulated units
# (tests/demo_setup.sh): every configured port is listed with its identity
# and device class; with --attest each says whether it proved who it is
# (the genuine TX-200 units by Acme's certificates, the counterfeit refused
# with rule attestation), --json carries the attestation object, a port
# that does not answer is listed with its problem, and the exit codes are
# spec/cli.md's.
. "$(dirname "$0")/lib.sh"

D="$T/demo"
mkdir -p "$D"
bash "$TOP/tests/demo_setup.sh" setup "$D" "$STATION" "$SIM" ||
	{ cat "$D/setup.log"; exit 1; }
trap 'bash "$TOP/tests/demo_setup.sh" stop "$D"; cleanup' EXIT
export STATION_CONFIG="$D/station.conf"

"$STATION" devices >"$T/list.out" 2>&1
check "devices without --attest exits 0" test $? -eq 0
check "every configured port is listed with its identity and class" \
	grep -q "^serial:$D/unit-a  port unit-a  serial SN-0001  model TX-200 .* class tx200$" "$T/list.out"
check "a model no class names is in the default class" \
	grep -q "^serial:$D/unit-c  port unit-c  serial SN-0100 .* class default$" "$T/list.out"
check "without --attest nothing is asked to prove itself" \
	bash -c "! grep -q '    identity' '$T/list.out'"

"$STATION" devices --attest >"$T/attest.out" 2>"$T/attest.err"
rc=$?
check "a counterfeit among the units: --attest exits 1 (rule attestation)" test "$rc" -eq 1
check "a genuine unit is proven by its certificate" \
	grep -A1 "unit-a  port unit-a" "$T/attest.out" | grep -q "proven: .*SN-0001 (.*Acme TX-200 Device CA"
check "the counterfeit is listed as not proven, with why" \
	bash -c "grep -A1 'unit-d  port unit-d' '$T/attest.out' | grep -q 'not proven: .*device anchors'"
check "a class without attestation is still asked under --attest" \
	bash -c "grep -A1 'unit-c  port unit-c' '$T/attest.out' | grep -q 'identity'"
check "each attestation is journaled (the two genuine units, the counterfeit)" \
	bash -c "test \$('$STATION' journal --type device-attested | grep -c .) -ge 3"

"$STATION" devices --attest --json >"$T/attest.json" 2>/dev/null
check "--json carries the attestation of a proven unit" \
	grep -q '"serial":"SN-0001".*"class":"tx200","attestation":{"state":"proven","policy":"required","cert-subject":"[^"]*SN-0001[^"]*","cert-issuer":"[^"]*Acme TX-200 Device CA[^"]*","cert-serial":"[^"]' "$T/attest.json"
check "--json carries the counterfeit's failure and reason" \
	grep -q '"serial":"SN-0003".*"attestation":{"state":"failed","policy":"required","cert-subject":"","cert-issuer":"","cert-serial":"","reason":"[^"]*device anchors' "$T/attest.json"
check "--json is one valid JSON array" python3 -c "import json,sys; d=json.load(open('$T/attest.json')); sys.exit(len(d) != 4)"

# A port whose device is gone: listed with its problem, the rest still.
kill "$(sed -n 3p "$D/sims.pid")" 2>/dev/null # unit-c
for _ in $(seq 1 50); do [ -e "$D/unit-c" ] || break; sleep 0.1; done
"$STATION" devices >"$T/gone.out" 2>&1
check "a port that does not answer is no error" test $? -eq 0
check "it is listed with its problem" grep -q "^serial:$D/unit-c  port unit-c  unidentified: rule " "$T/gone.out"
check "and the others are still listed" grep -q "unit-b  port unit-b  serial SN-0002" "$T/gone.out"

"$STATION" devices --attest --bogus >/dev/null 2>&1
check "a bad option is a usage error (2)" test $? -eq 2
STATION_CONFIG="$T/none.conf" "$STATION" devices >/dev/null 2>&1
check "a missing configuration is a configuration error (2)" test $? -eq 2
finish
