#!/usr/bin/env bash
# tests/e2e_admin.sh: docs/admin.md works as written.  Its ```sh blocks
# are taken out in order and run as one bash script (set -e: the first
# command that fails fails the test) with the paths its first block names
# (ETC, DATA, MEDIA, PKI, PORT, MFG_CA, IMAGE, BACKUP) set to a temporary
# directory, `station` on PATH, a simulated TX-200 at PORT and ana's PIN
# on stdin for `station pin`.  It must end with a working station: the
# bundle the document's release step built verifies, is installed on the
# unit, and the journal shows it.
. "$(dirname "$0")/lib.sh"
for tool in openssl sqlite3; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done

doc="$TOP/docs/admin.md"
awk '/^```sh$/ { on = 1; n++; printf "\n# --- block %d (docs/admin.md line %d)\n", n, NR; next }
     /^```/ { on = 0; next }
     on { print }' "$doc" >"$T/admin-steps.sh"
blocks=$(grep -c '^# --- block' "$T/admin-steps.sh")
check "docs/admin.md has command blocks to run ($blocks)" test "$blocks" -ge 10

mkdir -p "$T/bin" "$T/home" "$T/mfg"
ln -s "$STATION" "$T/bin/station"
# The device maker's CA: the test PKI's Acme root (tests/pki.sh).
make_pki "$T/mfg"
sim_image "$T/tx200-app-2.4.1.bin" 42 2.4.1 65536
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0009\nsequence = 41\nversion = 2.4.0\n' >"$T/unit.id"
start_sim unit "$T/unit.id"

(
	cd "$T/home" || exit 1
	export HOME="$T/home" PATH="$T/bin:$PATH"
	export ETC="$T/etc" DATA="$T/data" MEDIA="$T/media" PKI="$T/pki"
	export PORT="$T/unit" MFG_CA="$T/mfg/mfg-root.pem"
	export IMAGE="$T/tx200-app-2.4.1.bin" BACKUP="$T/backup"
	unset STATION_CONFIG
	printf '2580\n2580\n' | bash -e -o pipefail -x "$T/admin-steps.sh" \
		>"$T/admin.out" 2>"$T/admin.err"
)
rc=$?
check "every documented command succeeds, in order" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { tail -25 "$T/admin.err"; tail -10 "$T/admin.out"; }

out=$(cat "$T/admin.out")
check "station devices lists the bench port's unit" grep -q "SN-0009" <<<"$out"
check "station verify accepts the bundle the document built" \
	grep -q "signers   release-1" <<<"$out"
check "the unit stored exactly the released image" \
	cmp -s "$T/unit.store/slot-0.bin" "$T/tx200-app-2.4.1.bin"
check "the unit now runs sequence 42" grep -qx "sequence = 42" "$T/unit.id"
check "station journal shows the install" \
	grep -q " install-finished .*serial=SN-0009.*sequence=42" <<<"$out"
check "the journal chain verifies" grep -q "journal chain verifies" <<<"$out"
check "the PIN line from station pin is in station.conf" \
	grep -qE '^pin = pbkdf2-sha256\$200000\$[0-9a-f]{32}\$[0-9a-f]{64}$' "$T/etc/station.conf"
check "the journal backup is a journal with the install" \
	bash -c "sqlite3 '$T'/backup/journal-*.db \"select count(*) from events where type='install-finished'\" | grep -qx 1"
check "a signed report sits beside the backup" \
	bash -c "ls '$T'/backup/reports/report-STN-0042-*.json >/dev/null"
finish
