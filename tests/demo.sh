#!/usr/bin/env bash
# tests/demo.sh: `make demo`.  A self-contained walk through the station's
# main job in a temporary directory: a test PKI, a release engineer's signed
# bundle, a simulated serial device, a refused tampered copy, the push, and
# the journal with its hash chain checked.  Everything is removed at the end.
# (The text-UI issue turns this into the full ncurses demo.)
set -euo pipefail
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
STATION="$TOP/$BUILD/station"
SIM="$TOP/$BUILD/sim-serial"
D=$(mktemp -d /tmp/station-demo.XXXXXX)
simpid=
cleanup() { [ -n "$simpid" ] && kill "$simpid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "1. A test PKI (root, intermediate, release/custody/exception/station roles)"
bash "$TOP/tests/pki.sh" "$D/pki" >/dev/null
ls "$D/pki" | grep -E '^(root|inter|release1|station)\.pem$' | sed 's/^/   /'

say "2. Release engineering builds and signs a bundle"
mkdir -p "$D/media"
{ printf '#station-sim-image sequence=42 version=2.4.1\n'; head -c 200000 /dev/urandom; } >"$D/tx200-app.bin"
run "$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --hardware revB --image app="$D/tx200-app.bin"@0 "$D/media/tx200-2.4.1"
run "$STATION" sign --key "$D/pki/release1.key" --cert "$D/pki/release1.pem" \
	--label rel1 "$D/media/tx200-2.4.1/manifest"
cp -r "$D/media/tx200-2.4.1" "$D/media/tx200-tampered"
printf 'X' | dd of="$D/media/tx200-tampered/tx200-app.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null

say "3. The station's configuration"
cat >"$D/station.conf" <<CONF
[station]
id = STN-0042
site = plant-7
key = pki/station.key
cert = pki/station.pem
data = data
media = media

[trust]
anchors = pki/roots.pem
require-custody = no

[technician ana]
name = Ana Lima
CONF
sed 's/^/   /' "$D/station.conf"
export STATION_CONFIG="$D/station.conf"

say "4. A simulated TX-200 on a pseudo-terminal (installed sequence 41)"
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\nversion = 2.4.0\n' >"$D/device.id"
mkdir -p "$D/store"
"$SIM" --identity "$D/device.id" --store "$D/store" --link "$D/ttySIM0" >"$D/sim.out" 2>"$D/sim.log" &
simpid=$!
for _ in $(seq 1 100); do [ -s "$D/sim.out" ] && break; sleep 0.05; done
sed 's/^/   /' "$D/sim.out"

say "5. Verify the bundle against this device"
run "$STATION" verify --device "$D/device.id" "$D/media/tx200-2.4.1"

say "6. A tampered copy is refused, and nothing reaches the device"
run "$STATION" verify "$D/media/tx200-tampered" || echo "   (exit $? = refused)"

say "7. Push: stage, verify, identify, write, proof, boot"
run "$STATION" push --technician ana --device "serial:$D/ttySIM0" "$D/media/tx200-2.4.1"
printf '   device now reports: %s\n' "$(grep sequence "$D/device.id")"

say "8. The same bundle again is a reinstall and needs confirmation"
run "$STATION" push --technician ana --device "serial:$D/ttySIM0" "$D/media/tx200-2.4.1" || echo "   (exit $? = refused)"

say "9. The journal, and its hash chain recomputed"
run "$STATION" journal | cut -c1-160
run "$STATION" journal --verify
say "Done; the demo directory is removed."
