#!/usr/bin/env bash
# tests/demo_setup.sh ACTION DIR STATION SIM: builds, stops or removes the
# self-contained demo that `station demo` runs the text UI on.
#   setup     test PKI, media with five bundles (good with a custody chain,
#             expired, tampered, a rollback with its exception token, and
#             2.5.0 with its image encrypted for this station, formats §10),
#             four simulated serial devices (two genuine TX-200 that attest
#             with Acme's device certificates, a TX-100, and a counterfeit
#             TX-200 whose certificate comes from another manufacturer),
#             DIR/station.conf with a [class] that requires attestation
#   stop      stop the simulators (keep DIR)
#   teardown  stop and remove DIR
# STATION_DEMO_SIGNIN_ATTEMPTS and STATION_DEMO_SIGNIN_LOCKOUT, when set,
# become [station] signin-attempts and signin-lockout (a test's short lock).
set -euo pipefail
action=$1 D=$2 STATION=${3:-} SIM=${4:-}
here=$(cd "$(dirname "$0")" && pwd)

stop() {
	[ -f "$D/sims.pid" ] || return 0
	while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$D/sims.pid"
	rm -f "$D/sims.pid"
}
case $action in
stop) stop; exit 0 ;;
teardown) stop; rm -rf "$D"; exit 0 ;;
setup) ;;
*) echo "usage: $0 setup|stop|teardown DIR STATION SIM" >&2; exit 2 ;;
esac

exec 3>&2 2>"$D/setup.log"
S() { "$STATION" "$@" >>"$D/setup.log"; }
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
now=$(date -u +%s)

bash "$here/pki.sh" "$D/pki"
P="$D/pki"
mkdir -p "$D/media" "$D/images"

# An image the simulator understands: its first line sets the sequence.
image() { { printf '#station-sim-image sequence=%s version=%s\n' "$2" "$3"; head -c "$4" /dev/urandom; } >"$1"; }
chain() {
	S custody add --key "$P/custody3.key" --cert "$P/custody3.pem" --to courier-ana \
		--place "dispatch office 3" --seal BAG-0042 "$1"
	S custody add --key "$P/custody1.key" --cert "$P/custody1.pem" --to ana \
		--place "plant 7 gate" --seal BAG-0042 "$1"
}
bundle() { # bundle DIR NAME VERSION SEQUENCE IMAGE-SIZE
	image "$D/images/$2-$3.bin" "$4" "$3" "$5"
	S bundle create --name "$2" --version "$3" --sequence "$4" --model TX-200 \
		--hardware revB --image app="$D/images/$2-$3.bin"@0 "$1"
}
sign() { S sign --key "$P/release1.key" --cert "$P/release1.pem" --label rel1 "$1/manifest"; }

# 1. the release to install: 2.4.1, with its custody chain to ana
bundle "$D/media/tx200-2.4.1" tx200-app 2.4.1 42 393216
sign "$D/media/tx200-2.4.1"; chain "$D/media/tx200-2.4.1"

# 2. an expired release
bundle "$D/media/tx200-2.3.0-old" tx200-app 2.3.0 43 65536
sed -i "s/^created = .*/created = $(utc $((now - 86400 * 200)))/; s/^expires = .*/expires = $(utc $((now - 86400 * 20)))/" \
	"$D/media/tx200-2.3.0-old/manifest"
sign "$D/media/tx200-2.3.0-old"; chain "$D/media/tx200-2.3.0-old"

# 3. a copy of 2.4.1 whose image was changed on the way
cp -r "$D/media/tx200-2.4.1" "$D/media/tx200-2.4.1-copy"
printf 'X' | dd of="$D/media/tx200-2.4.1-copy/tx200-app-2.4.1.bin" bs=1 seek=4096 conv=notrunc 2>/dev/null

# 4. a sanctioned rollback to 2.2.0 (sequence 40) with its exception token
bundle "$D/media/tx200-2.2.0-rollback" tx200-app 2.2.0 40 131072
sign "$D/media/tx200-2.2.0-rollback"; chain "$D/media/tx200-2.2.0-rollback"
S token issue --key "$P/exception1.key" --cert "$P/exception1.pem" --waive downgrade \
	--device SN-0001 --device SN-0002 --ttl 12h --site plant-7 \
	--reason "CVE-2026-1234 field fix, ticket OPS-881" --name rollback "$D/media/tx200-2.2.0-rollback"

# 5. 2.5.0 delivered encrypted (formats §10) for this station's delivery
# key (tests/pki.sh: delivery.key, a P-256 leaf with the delivery role
# under the demo's intermediate) and another station's: a lost stick
# leaks no firmware.
image "$D/images/tx200-app-2.5.0.bin" 44 2.5.0 262144
S bundle create --name tx200-app --version 2.5.0 --sequence 44 --model TX-200 \
	--hardware revB --image app="$D/images/tx200-app-2.5.0.bin"@0 \
	--encrypt-for "$P/delivery.pem" --encrypt-for "$P/delivery2.pem" \
	"$D/media/tx200-2.5.0-encrypted"
sign "$D/media/tx200-2.5.0-encrypted"; chain "$D/media/tx200-2.5.0-encrypted"

# The counterfeit's device certificate: a unit claiming TX-200 SN-0003,
# signed by a manufacturer this station does not trust (tests/pki.sh's
# Foreign Devices Root), so its attestation cannot chain to the class's
# device anchors.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$P/fake3.key" -subj "/CN=TX-200 SN-0003/serialNumber=SN-0003" \
	-out "$D/fake3.csr" 2>/dev/null
printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n' >"$D/fake3.ext"
openssl x509 -req -in "$D/fake3.csr" -CA "$P/foreign-root.pem" -CAkey "$P/foreign-root.key" \
	-set_serial "0x$(openssl rand -hex 8)" -days 365 -extfile "$D/fake3.ext" \
	-out "$P/fake3.crt" 2>/dev/null
cat "$P/fake3.crt" "$P/foreign-root.pem" >"$P/fake3.pem"

# Four simulated units: two genuine TX-200 at sequence 41 with Acme's
# device keys (formats §9: they attest, check the station's install
# authorization against the fleet anchor and sign receipts), one TX-100
# without a key, and the counterfeit TX-200.
: >"$D/sims.pid"
sim() { # sim NAME SERIAL MODEL SEQUENCE [simulator options]
	local name=$1 serial=$2 model=$3 seq=$4; shift 4
	printf 'format = station-device-1\nmodel = %s\nhardware = revB\nserial = %s\nsequence = %s\nversion = 2.4.0\n' \
		"$model" "$serial" "$seq" >"$D/$name.id"
	mkdir -p "$D/$name.store"
	"$SIM" --identity "$D/$name.id" --store "$D/$name.store" --link "$D/$name" "$@" \
		>"$D/$name.out" 2>"$D/$name.log" </dev/null &
	echo $! >>"$D/sims.pid"
}
# Paced like real UARTs, so progress, rate and time left mean something.
key() { echo --device-key "$P/$1.key" --device-cert "$P/$1.pem" --fleet-anchor "$P/roots.pem"; }
# shellcheck disable=SC2046 # key's words are separate options
sim unit-a SN-0001 TX-200 41 --baud 460800 $(key dev1)
# shellcheck disable=SC2046
sim unit-b SN-0002 TX-200 41 --baud 921600 $(key dev2)
sim unit-c SN-0100 TX-100 7
# shellcheck disable=SC2046
sim unit-d SN-0003 TX-200 41 $(key fake3)
for f in unit-a unit-b unit-c unit-d; do
	for _ in $(seq 1 100); do [ -s "$D/$f.out" ] && break; sleep 0.05; done
done

# Technician ana, PIN 1234: `station pin` reads it twice from stdin when
# that is not a terminal and prints the station.conf line (formats §8).
pinline=$(printf '1234\n1234\n' | "$STATION" pin)
cat >"$D/station.conf" <<CONF
[station]
id = STN-0042
site = plant-7
key = $P/station.key
cert = $P/station.pem
delivery-key = $P/delivery.key
delivery-cert = $P/delivery.pem
data = $D/data
media = $D/media
${STATION_DEMO_SIGNIN_ATTEMPTS:+signin-attempts = $STATION_DEMO_SIGNIN_ATTEMPTS}
${STATION_DEMO_SIGNIN_LOCKOUT:+signin-lockout = $STATION_DEMO_SIGNIN_LOCKOUT}

[trust]
anchors = $P/roots.pem
crl = $P/crl
require-custody = yes

# TX-200 units must prove they are genuine with a device certificate from
# Acme (formats §8, §9), and every install on them must be proven.
[class tx200]
model = TX-200
device-anchors = $P/mfg-anchors.pem
attestation = required
proof = required

[technician ana]
name = Ana Lima
$pinline

[port unit-a]
path = $D/unit-a
[port unit-b]
path = $D/unit-b
[port unit-c]
path = $D/unit-c
[port unit-d]
path = $D/unit-d
CONF
exec 2>&3
