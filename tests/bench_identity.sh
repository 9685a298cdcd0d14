#!/usr/bin/env bash
# tests/bench_identity.sh: what recipient identity costs (issue 13):
#  1. station CPU per device for attestation, authorization and receipts
#     (P-256): N pushes to units that attest (class attestation = required)
#     against N pushes to the same simulator without a key (attestation =
#     none), same image; the difference of the station's user+system CPU
#     per push.  Target: under 50 ms per device.
#  2. four units attesting and installing at once against one, on lines
#     paced like a 115200-baud UART.  Target: at most 1.3x.
. "$(dirname "$0")/lib.sh"
N=${BENCH_IDENTITY_N:-10}
make_pki "$T/pki"
P=$T/pki
sim_image "$T/app.bin" 42 2.4.1 4096
cfg() { # ATTESTATION
	write_config "$T/station.conf" "$T/data" "$P" "[class tx200]" \
		"model = TX-200" "device-anchors = $P/mfg-anchors.pem" \
		"attestation = $1"
}
export STATION_CONFIG="$T/station.conf"
cfg none
"$STATION" bundle create --name app --version 2.4.1 --sequence 42 \
	--model TX-200 --image app=$T/app.bin@0 "$T/b" >/dev/null
"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" "$T/b/manifest" >/dev/null
ident() { printf 'format = station-device-1\nmodel = TX-200\nserial = %s\nsequence = 1\n' "$2" >"$1"; }
ident "$T/u.id" SN-0001
start_sim plain "$T/u.id"
cp "$T/u.id" "$T/k.id"
start_sim keyed "$T/k.id" --device-key "$P/dev1.key" --device-cert "$P/dev1.pem" --fleet-anchor "$P/roots.pem"

# cpu_ms SPEC: station user+system CPU (ms) over N reinstalls to SPEC.
cpu_ms() {
	local t0 t1 me=$BASHPID
	t0=$(awk '{print $14+$15+$16+$17}' /proc/$me/stat)
	for i in $(seq 1 "$N"); do
		"$STATION" push --technician ana --reinstall --device "$1" "$T/b" >/dev/null 2>&1 ||
			{ echo "push to $1 failed"; "$STATION" push --technician ana --reinstall --device "$1" "$T/b"; exit 1; }
	done
	t1=$(awk '{print $14+$15+$16+$17}' /proc/$me/stat)
	echo $(( (t1 - t0) * 1000 / $(getconf CLK_TCK) ))
}
cfg none
"$STATION" push --technician ana --device "serial:$T/plain" "$T/b" >/dev/null 2>&1
base=$(cpu_ms "serial:$T/plain")
cfg required
"$STATION" push --technician ana --device "serial:$T/keyed" "$T/b" >/dev/null 2>&1
with=$(cpu_ms "serial:$T/keyed")
per=$(( (with - base) / N ))
printf 'identity cost: %d pushes without attestation %d ms CPU, with %d ms CPU\n' "$N" "$base" "$with"
printf 'identity cost per device (attest + authorize + receipt, P-256): %d ms station CPU (target < 50 ms)\n' "$per"

# Four at once against one, paced lines.
sim_image "$T/big.bin" 43 2.4.2 60000
"$STATION" bundle create --name app --version 2.4.2 --sequence 43 \
	--model TX-200 --image app=$T/big.bin@0 "$T/b2" >/dev/null
"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" "$T/b2/manifest" >/dev/null
args=()
for n in 1 2 3 4; do
	ident "$T/p$n.id" "SN-000$n"
	start_sim "p$n" "$T/p$n.id" --baud 115200 --device-key "$P/dev$n.key" \
		--device-cert "$P/dev$n.pem" --fleet-anchor "$P/roots.pem"
	args+=(--device "serial:$T/p$n")
done
ms() { date +%s%3N; }
t0=$(ms); "$STATION" push --technician ana --device "serial:$T/p1" "$T/b2" >/dev/null 2>&1 || echo "one: failed"; t1=$(ms)
"$STATION" push --technician ana --reinstall "${args[@]}" "$T/b2" >/dev/null 2>&1 || echo "four: failed"; t2=$(ms)
one=$((t1 - t0)); four=$((t2 - t1))
printf 'one unit %d ms, four at once %d ms: %s x (target <= 1.3)\n' "$one" "$four" \
	"$(awk -v a="$four" -v b="$one" 'BEGIN{printf "%.2f", a/b}')"
