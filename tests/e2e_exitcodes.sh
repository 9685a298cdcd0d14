#!/usr/bin/env bash
# tests/e2e_exitcodes.sh: the exit-code classes of spec/cli.md where a
# command once gave the wrong one (issue 11 items 17 and 18): a report
# that is unsigned or missing is a refusal (1), not an I/O error; custody
# handed on by someone who does not hold the bundle is a refusal (1), not
# a usage error; `bundle create` into a missing parent is a usage error
# (2); `station` with no terminal refuses (2) rather than spin.  Each
# check also matches the reason, not only the code.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"
P="$T/pki"

# expect WHAT CODE PATTERN command...: exit code and a line of its stderr
expect() {
	local what=$1 want=$2 pat=$3 out rc; shift 3
	out=$("$@" 2>&1 </dev/null); rc=$?
	if [ "$rc" -eq "$want" ] && grep -Eq -- "$pat" <<<"$out"; then
		ok "$what"
	else
		not_ok "$what (exit $rc, want $want)"; printf '  | %s\n' "$out"
	fi
}

# --- no terminal -------------------------------------------------------------
out=$(timeout 10 "$STATION" </dev/null 2>&1 >/dev/null); rc=$?
check "station with stdin not a terminal exits 2 at once" test "$rc" -eq 2
check "and says the text UI needs a terminal" grep -q "needs a terminal" <<<"$out"
out=$(timeout 10 "$STATION" demo </dev/null 2>&1 >/dev/null); rc=$?
check "station demo without a terminal exits 2 before building" \
	bash -c "[ $rc -eq 2 ] && grep -q 'needs a terminal' <<<\"\$1\" && ! grep -q building <<<\"\$1\"" _ "$out"

# --- report verify -----------------------------------------------------------
sim_image "$T/app.bin" 42 2.4.1 4000
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --image "app=$T/app.bin@0" "$T/good" >/dev/null
"$STATION" verify "$T/good" >/dev/null 2>&1
mkdir -p "$T/out"
"$STATION" report export --out "$T/out" >/dev/null 2>&1
R=$(ls "$T"/out/report-*.json | head -1)
cp "$R" "$T/unsigned.json"
expect "report verify of an unsigned report is a refusal (1)" 1 \
	"refused: rule signature: .*unsigned\.json\.sig" \
	"$STATION" report verify --trust "$P/roots.pem" "$T/unsigned.json"
cp "$R" "$T/nopem.json"; cp "$R.sig" "$T/nopem.json.sig"
expect "report verify without the signer's chain is a refusal (1)" 1 \
	"refused: rule signature: .*nopem\.json\.pem" \
	"$STATION" report verify --trust "$P/roots.pem" "$T/nopem.json"
expect "report verify of a missing report is a refusal (1)" 1 \
	"refused: rule .*missing\.json" \
	"$STATION" report verify --trust "$P/roots.pem" "$T/missing.json"

# --- custody add by the wrong holder ------------------------------------------
"$STATION" custody add --key "$P/custody3.key" --cert "$P/custody3.pem" \
	--to courier-ana "$T/good" >/dev/null
expect "custody add by someone who does not hold the bundle is refused (1)" 1 \
	"refused: rule custody:" \
	"$STATION" custody add --key "$P/custody3.key" --cert "$P/custody3.pem" \
	--to ana "$T/good"

# --- bundle create into a missing parent --------------------------------------
expect "bundle create into a missing parent directory is a usage error (2)" 2 \
	"error: rule usage: .*no/such/dir" \
	"$STATION" bundle create --name x --version 1 --sequence 1 --model TX-200 \
	--image "app=$T/app.bin@0" "$T/no/such/dir/out"

finish
