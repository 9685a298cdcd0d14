#!/usr/bin/env bash
# tests/e2e_report.sh: formats §7 through the real program.  A station
# installs one bundle and refuses a tampered one; `station report export`
# writes the signed report and its summary; an auditor with no station
# configuration verifies it with `station report verify --trust`, with
# `openssl dgst -sha256 -verify` alone, and recomputes the chain with jq
# and python3 exactly as docs/auditor.md says; consecutive exports chain;
# tampered copies are refused with their reason; `station journal` filters.
. "$(dirname "$0")/lib.sh"

for tool in openssl; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"

sim_image "$T/app.bin" 42 2.4.1 40000
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --hardware revB --image "app=$T/app.bin@0" "$T/good" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
	--label rel1 "$T/good/manifest" >/dev/null
cp -r "$T/good" "$T/bad"
printf 'X' | dd of="$T/bad/app.bin" bs=1 seek=500 conv=notrunc 2>/dev/null
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\n' >"$T/dev1.id"
start_sim dev1 "$T/dev1.id"
"$STATION" push --technician ana --device "serial:$T/dev1" "$T/good" >/dev/null 2>&1
check "setup: the push installs" grep -qx "sequence = 42" "$T/dev1.id"
"$STATION" push --technician ana --device "serial:$T/dev1" "$T/bad" >/dev/null 2>&1

# --- export ----------------------------------------------------------------
mkdir -p "$T/out"
out=$("$STATION" report export --out "$T/out" 2>&1); rc=$?
check "report export exits 0" test "$rc" -eq 0 || echo "$out"
R=$(ls "$T"/out/report-STN-0042-*.json | head -1)
check "the report is named report-STATIONID-YYYYMMDDTHHMMSSZ.json" \
	bash -c "basename '$R' | grep -Eq '^report-STN-0042-[0-9]{8}T[0-9]{6}Z\.json$'"
check "the export prints the report and its summary" \
	bash -c "grep -q '^report    $R' <<<\"\$1\" && grep -q '^summary   ${R%.json}.txt' <<<\"\$1\"" _ "$out"
check "the .sig and .pem lie beside it" test -f "$R.sig" -a -f "$R.pem"
check "the journal records the export with the report's SHA-256" \
	bash -c "'$STATION' journal --type report-exported | grep -q \"report=$(basename "$R") sha256=$(sha256sum "$R" | cut -d' ' -f1) \""

# --- the auditor: no configuration, only the anchors -----------------------
out=$(env -u STATION_CONFIG "$STATION" --config /nonexistent/station.conf \
	report verify --trust "$T/pki/roots.pem" "$R" 2>&1); rc=$?
check "report verify with --trust alone exits 0" test "$rc" -eq 0 || echo "$out"
check "verify names the signer and its role" grep -q "^signed by STN-0042 (station role)" <<<"$out"
check "verify lists the push session: who, what, device, authority, result" \
	bash -c "grep -q 'who        ana, push' <<<\"\$1\" &&
		grep -q 'what       tx200-app 2.4.1 (sequence 42)' <<<\"\$1\" &&
		grep -q 'device     SN-0001 TX-200 revB' <<<\"\$1\" &&
		grep -q 'authority  release signed by release-1' <<<\"\$1\" &&
		grep -q 'result     SN-0001: installed sequence 42 (proof device-sha256' <<<\"\$1\"" _ "$out"
check "verify lists the refused push with its rule and reason" \
	grep -q "result     REFUSED: rule images: .*bad/app.bin: sha256 is" <<<"$out"
check "verify ends with its verdict" grep -q "^verdict   report verifies" <<<"$out"
out=$("$STATION" report verify --json --trust "$T/pki/roots.pem" "$R"); rc=$?
check "verify --json says verified" bash -c "[ $rc -eq 0 ] && grep -q '^{\"verdict\":\"verified\"' <<<\"\$1\"" _ "$out"
if command -v jq >/dev/null; then
	check "verify --json is JSON with the sessions" \
		bash -c "jq -e '.sessions | length >= 2' <<<\"\$1\" >/dev/null" _ "$out"
fi
out=$("$STATION" report verify "$R" 2>&1); rc=$?
check "on a station, verify takes the configuration's anchors" test "$rc" -eq 0
out=$(env -u STATION_CONFIG "$STATION" report verify --config "$T/none.conf" "$R" 2>&1); rc=$?
check "without --trust or a configuration, verify is a usage error (exit 2)" \
	bash -c "[ $rc -eq 2 ] && grep -q 'give --trust ROOTS.pem' <<<\"\$1\"" _ "$out"

# OpenSSL alone (docs/auditor.md step 1).
check "openssl dgst -sha256 -verify accepts the report with the station's key" \
	bash -c "openssl x509 -in '$R.pem' -pubkey -noout >'$T/station-pub.pem' &&
		openssl dgst -sha256 -verify '$T/station-pub.pem' -signature '$R.sig' '$R' | grep -q 'Verified OK'"
check "openssl verifies the station certificate to the root (untrusted: the chain file)" \
	bash -c "openssl verify -CAfile '$T/pki/roots.pem' -untrusted '$R.pem' '$R.pem' >/dev/null"
check "the certificate carries the station role OID" \
	bash -c "openssl x509 -in '$R.pem' -noout -text | grep -q '2.25.220105586949796384984797284338591255574.4'"

# The chain from the report alone with the very scripts docs/auditor.md
# gives (extracted from it, so the document cannot drift from the format).
awk '/^# recompute-report.sh/{p=1} p&&/^```/{exit} p' "$TOP/docs/auditor.md" >"$T/recompute-report.sh"
awk '/^```python/{p=1;next} p&&/^```/{exit} p' "$TOP/docs/auditor.md" >"$T/recompute-report.py"
check "docs/auditor.md holds both recomputation scripts" test -s "$T/recompute-report.sh" -a -s "$T/recompute-report.py"
if command -v jq >/dev/null; then
	check "auditor.md's jq + sha256sum script recomputes the chain from the report alone" \
		bash -c "bash '$T/recompute-report.sh' '$R' | grep -q '^ok: '"
	check "auditor.md's openssl verify -attime accepts the chain at the export time" \
		bash -c "openssl verify -CAfile '$T/pki/roots.pem' -untrusted '$R.pem' \
			-attime \$(date -u -d \$(jq -r .exported '$R') +%s) '$R.pem' | grep -q ': OK'"
else
	echo "note: jq not installed; skipping the jq recomputation"
fi
if command -v python3 >/dev/null; then
	check "auditor.md's python3 script recomputes the chain from the report alone" \
		bash -c "python3 '$T/recompute-report.py' '$R' | grep -q '^ok: '"
fi

# The readable summary: one page per session.
S=${R%.json}.txt
check "the summary says it is for reading and names the record" grep -q "^This summary is for reading" "$S"
check "the summary has one page per session" \
	test "$(tr -cd '\f' <"$S" | wc -c)" -eq "$(grep -c '^SESSION ' "$S")"
check "the summary's push page says who, what, authority and result" \
	bash -c "grep -q '^Who         ana' '$S' && grep -q '^What        tx200-app 2.4.1' '$S' &&
		grep -q '^Authority   release signed by release-1' '$S' && grep -q '^Result      SN-0001: installed sequence 42' '$S'"
# It leads with counts, then what was refused (the bad push), then what
# was installed, before the cover and the pages; no line passes 80 columns.
line_of() { grep -n -m1 -- "$1" "$S" | cut -d: -f1; }
check "the summary counts outcomes at the top" \
	test "$(sed -n 3p "$S")" = "1 installed, 1 refused, 0 failed, 0 exceptions used"
fr=$(sed -n '/^FAILED OR REFUSED (1)$/,/^$/p' "$S")
check "the summary lists the refusal, cause first, before what was installed" \
	bash -c "grep -Eq '^  [0-9T:-]+Z  bundle REFUSED: tx200-app 2.4.1$' <<<\"\$1\" &&
		sed -n 3p <<<\"\$1\" | grep -q '^      [a-z]' && grep -q '^      rule ' <<<\"\$1\" &&
		[ $(line_of '^FAILED OR REFUSED') -lt $(line_of '^INSTALLED, per unit (1)') ] &&
		[ $(line_of '^  SN-0001: tx200-app 2.4.1 (sequence 42)') -lt $(line_of '^This summary is for reading') ]" \
	_ "$fr" || sed -n 1,30p "$S"
check "no line of the summary passes 80 columns" \
	bash -c "! LC_ALL=C.UTF-8 awk 'length(\$0) > 80 { print; bad = 1 } END { exit !bad }' '$S'"

# --- consecutive exports chain ---------------------------------------------
sleep 1
"$STATION" push --technician ana --device "serial:$T/dev1" "$T/bad" >/dev/null 2>&1
"$STATION" report export --out "$T/out" >/dev/null 2>&1
R2=$(ls "$T"/out/report-STN-0042-*.json | tail -1)
check "a second export writes a second report" test "$R2" != "$R"
out=$("$STATION" report verify --trust "$T/pki/roots.pem" --previous "$R" "$R2" 2>&1); rc=$?
check "the second report continues the first" \
	bash -c "[ $rc -eq 0 ] && grep -q '^continues $R' <<<\"\$1\" && grep -q '^previous  $(basename "$R"), ended at event' <<<\"\$1\"" _ "$out" || echo "$out"
# (sed rather than jq: jq is not among the build's dependencies)
first_prev() { sed -n '1s/.*"first":{"seq":[0-9]*,"prev":"\([0-9a-f]*\)".*/\1/p' "$1"; }
last_hash() { sed -n '1s/.*"last":{"seq":[0-9]*,"hash":"\([0-9a-f]*\)".*/\1/p' "$1"; }
check "its first prev is the first report's last hash" \
	bash -c "[ -n \"\$1\" ] && [ \"\$1\" = \"\$2\" ]" _ "$(first_prev "$R2")" "$(last_hash "$R")"
# Two exports in one second (issue 11.18): the second waits for the next
# second, so both names keep the spec's form (docs/decisions.md).  Start
# just after a second turns so that both fall in the same one.
mkdir -p "$T/twice"
while [ "$(date +%N | cut -c1)" != 0 ]; do sleep 0.05; done
"$STATION" report export --out "$T/twice" >"$T/twice1.txt" 2>&1; rc1=$?
"$STATION" report export --out "$T/twice" >"$T/twice2.txt" 2>&1; rc2=$?
check "two exports in one second both exit 0" \
	bash -c "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]" || cat "$T/twice1.txt" "$T/twice2.txt"
mapfile -t TW < <(ls "$T"/twice/report-STN-0042-*.json)
check "they are two reports, named report-STN-0042-YYYYMMDDTHHMMSSZ.json" \
	bash -c "[ \$# -eq 2 ] && [ \"\$1\" != \"\$2\" ] && for f; do basename \"\$f\" | grep -Eq '^report-STN-0042-[0-9]{8}T[0-9]{6}Z\.json$' || exit 1; done" _ "${TW[@]}"
out=$("$STATION" report verify --trust "$T/pki/roots.pem" "${TW[0]}" 2>&1); rc=$?
check "the first of them verifies" test "$rc" -eq 0 || echo "$out"
out=$("$STATION" report verify --trust "$T/pki/roots.pem" --previous "${TW[0]}" "${TW[1]}" 2>&1); rc=$?
check "the second verifies and continues the first" \
	bash -c "[ $rc -eq 0 ] && grep -q '^continues ${TW[0]}' <<<\"\$1\"" _ "$out" || echo "$out"
sleep 1
"$STATION" report export --out "$T/out" >/dev/null 2>&1
R3=$(ls "$T"/out/report-STN-0042-*.json | tail -1)
out=$("$STATION" report verify --trust "$T/pki/roots.pem" --previous "$R" "$R3" 2>&1); rc=$?
check "a report that is not the previous export is refused (exit 1)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'rule journal-chain: $R: is not the previous export' <<<\"\$1\"" _ "$out" || echo "$out"
sleep 1
since=$(date -u -d '+1 second' +%Y-%m-%dT%H:%M:%SZ)
"$STATION" push --technician ana --device "serial:$T/dev1" "$T/bad" >/dev/null 2>&1
sleep 2
out=$("$STATION" report export --out "$T/out" --since "$since" 2>&1); rc=$?
R4=$(ls "$T"/out/report-STN-0042-*.json | tail -1)
check "an export that skips events warns of the gap" \
	bash -c "[ $rc -eq 0 ] && grep -q 'warning: events [0-9]*\.\.[0-9]* after the previous export are in no report' <<<\"\$1\"" _ "$out" || echo "$out"
out=$("$STATION" report verify --trust "$T/pki/roots.pem" "$R4" 2>&1)
check "verify shows the gap" grep -q "^GAP       events" <<<"$out"
out=$("$STATION" report verify --trust "$T/pki/roots.pem" --previous "$R3" "$R4" 2>&1); rc=$?
check "continuity across a gap is refused, naming the missing events" \
	bash -c "[ $rc -eq 1 ] && grep -q 'are in neither report' <<<\"\$1\"" _ "$out" || echo "$out"

# --- tampering -------------------------------------------------------------
tamper_copy() { cp "$R" "$T/t.json"; cp "$R.sig" "$T/t.json.sig"; cp "$R.pem" "$T/t.json.pem"; }
refused() { # refused WHAT RULE-AND-TEXT-REGEX
	local out rc
	out=$("$STATION" report verify --trust "$T/pki/roots.pem" "$T/t.json" 2>&1); rc=$?
	check "$1: exit 1" test "$rc" -eq 1
	check "$1: says '$2'" grep -Eq "$2" <<<"$out" || echo "  got: $out"
}
resign() { openssl dgst -sha256 -sign "$T/pki/$1.key" -out "$T/t.json.sig" "$T/t.json"; cp "$T/pki/$1.pem" "$T/t.json.pem"; }

tamper_copy
sed -i '4s/"serial":"SN-0001"/"serial":"SN-0002"/' "$T/t.json"
check "(the edit took)" grep -q '"serial":"SN-0002"' "$T/t.json"
refused "an edited report" "rule signature: .*t.json.sig: signature by STN-0042 does not verify"
check "openssl refuses the edited report too" \
	bash -c "! openssl dgst -sha256 -verify '$T/station-pub.pem' -signature '$T/t.json.sig' '$T/t.json' >/dev/null 2>&1"
resign release1
refused "an edited report re-signed by a release key" "rule role: .*signer CN release-1 holds role release, not station"
tamper_copy
sed -i '4d' "$T/t.json"
resign station
refused "an event removed and re-signed with the station key" "rule journal-chain: .*: event 4 follows event 2"
if command -v jq >/dev/null; then
	check "auditor.md's jq script also finds the removed event" \
		bash -c "! bash '$T/recompute-report.sh' '$T/t.json' >'$T/rr.out' && grep -q 'event 4: prev does not name the event before' '$T/rr.out'"
fi
tamper_copy
sed -i '4{h;d};5G' "$T/t.json"
resign station
refused "two events swapped" "rule journal-chain: .*: event 4 follows event 2"
tamper_copy
sed -i '2s/"command":"push"/"command":"verify"/' "$T/t.json"
check "(the edit took)" grep -q '"command":"verify"' "$T/t.json"
resign station
refused "a shown field edited" "rule journal-chain: .*: its body does not match the fields shown for it"
if command -v python3 >/dev/null; then
	check "auditor.md's python3 script also finds the edited field" \
		bash -c "! python3 '$T/recompute-report.py' '$T/t.json' 2>'$T/rr.err' && grep -q 'AssertionError: event 1' '$T/rr.err'"
fi

# --- usage and configuration -----------------------------------------------
write_config "$T/nokey.conf" "$T/data" "$T/pki"
sed -i '/^key = /d; /^cert = /d' "$T/nokey.conf"
out=$("$STATION" report export --config "$T/nokey.conf" --out "$T/out" 2>&1); rc=$?
check "export without [station] key and cert is a configuration error (exit 2)" \
	bash -c "[ $rc -eq 2 ] && grep -q 'nokey.conf: \[station\] key and cert are not set' <<<\"\$1\"" _ "$out" || echo "$out"
out=$("$STATION" report export --out "$T/no-such-dir" 2>&1); rc=$?
check "export to a missing directory exits 2 naming it" \
	bash -c "[ $rc -eq 2 ] && grep -q 'no-such-dir' <<<\"\$1\"" _ "$out"
out=$("$STATION" report export 2>&1); rc=$?
check "export without --out exits 2" test "$rc" -eq 2
out=$("$STATION" report frobnicate 2>&1); rc=$?
check "an unknown report subcommand exits 2" test "$rc" -eq 2

# --- station journal filters ----------------------------------------------
j=$("$STATION" journal --serial SN-0001)
check "journal --serial shows only that device's events" \
	bash -c "[ -n \"\$1\" ] && ! grep -v 'serial=SN-0001' <<<\"\$1\"" _ "$j"
j=$("$STATION" journal --technician ana)
check "journal --technician shows the sessions of that technician" \
	bash -c "grep -q 'session-start .*technician=ana' <<<\"\$1\" && grep -q 'install-finished' <<<\"\$1\" &&
		! grep -q 'command=\"report export\"' <<<\"\$1\"" _ "$j"
j=$("$STATION" journal --bundle tx200-app --type install-finished)
check "journal --bundle NAME --type selects the installs of that bundle" \
	bash -c "[ \$(wc -l <<<\"\$1\") -eq 1 ] && grep -q ' install-finished .*name=tx200-app' <<<\"\$1\"" _ "$j"
first_time=$("$STATION" journal | head -1 | cut -d' ' -f2)
j=$("$STATION" journal --until "$first_time")
check "journal --until stops at the time given" bash -c "! grep -vq ' $first_time ' <<<\"\$1\"" _ "$j"
out=$("$STATION" journal --since bogus 2>&1); rc=$?
check "a bad time is a usage error" test "$rc" -eq 2
check "the journal still verifies" bash -c "'$STATION' journal --verify | grep -q 'journal chain verifies'"

# --- on whose authority: custody chain and exception token -----------------
# A downgrade (device at 41, bundle 40) allowed by a token, with custody
# required: the report names the custody holders and times and the token's
# id, signer and reason, from the report alone.
write_config "$T/auth.conf" "$T/auth-data" "$T/pki"
sed -i 's/require-custody = no/require-custody = yes/' "$T/auth.conf"
sim_image "$T/old.bin" 40 2.3.9 20000
"$STATION" bundle create --name tx200-app --version 2.3.9 --sequence 40 \
	--model TX-200 --image "app=$T/old.bin@0" "$T/auth" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" "$T/auth/manifest" >/dev/null
"$STATION" custody add --key "$T/pki/custody3.key" --cert "$T/pki/custody3.pem" \
	--to courier-ana --seal BAG-7 "$T/auth" >/dev/null
"$STATION" custody add --key "$T/pki/custody1.key" --cert "$T/pki/custody1.pem" --to ana "$T/auth" >/dev/null
"$STATION" token issue --key "$T/pki/exception1.key" --cert "$T/pki/exception1.pem" \
	--waive downgrade --device SN-0003 --ttl 1h --reason "CVE-2026-1234 field fix, ticket OPS-881" "$T/auth" >/dev/null
printf 'format = station-device-1\nmodel = TX-200\nserial = SN-0003\nsequence = 41\n' >"$T/dev3.id"
start_sim dev3 "$T/dev3.id"
out=$("$STATION" push --config "$T/auth.conf" --technician ana --device "serial:$T/dev3" "$T/auth" 2>&1); rc=$?
check "a push with custody and a downgrade token installs" test "$rc" -eq 0 || echo "$out"
mkdir -p "$T/auth-out"
"$STATION" report export --config "$T/auth.conf" --out "$T/auth-out" >/dev/null 2>&1
out=$(env -u STATION_CONFIG "$STATION" report verify --trust "$T/pki/roots.pem" "$T"/auth-out/report-*.json 2>&1); rc=$?
check "its report verifies" test "$rc" -eq 0 || echo "$out"
check "the report names the custody holders, seal and times" \
	grep -Eq "authority  .*custody-verified: hops=2, holders=dispatch-office-3 > courier-ana @[0-9T:-]+Z seal BAG-7; courier-ana > ana @" <<<"$out"
check "the report names the token, its signer, what it waived and why" \
	grep -Eq "token-applied: token=[0-9a-f]{32}, use=[0-9a-f]{32}/SN-0003, .*signer=exception-1, waives=downgrade, reason=CVE-2026-1234 field fix, ticket OPS-881" <<<"$out"
check "and the result, with the sequence before and after in its events" \
	bash -c "grep -q 'result     SN-0003: installed sequence 40 (proof device-sha256' <<<\"\$1\" &&
		grep '\"type\":\"install-started\"' \"\$2\" | grep -q '\"sequence-before\":\"41\",\"sequence-source\":\"device\",\"sequence\":\"40\"'" \
	_ "$out" "$(ls "$T"/auth-out/report-*.json)"
S=$(ls "$T"/auth-out/report-*.txt)
check "the summary lists the exception before the install, and the install names it" \
	bash -c "sed -n '/^EXCEPTIONS USED (1)\$/,/^INSTALLED/p' '$S' | grep -q '^      waives    downgrade\$' &&
		sed -n '/^EXCEPTIONS USED (1)\$/,/^INSTALLED/p' '$S' | grep -q '^      issuer    exception-1' &&
		sed -n '/^INSTALLED, per unit (1)\$/,/^\$/p' '$S' | grep -q '^      DOWNGRADE from sequence 41\$' &&
		sed -n '/^INSTALLED, per unit (1)\$/,/^\$/p' '$S' | grep -q '^      under exception token [0-9a-f]\{32\}\$'" ||
	sed -n 1,40p "$S"

finish
