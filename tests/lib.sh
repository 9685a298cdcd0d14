# tests/lib.sh: shared helpers for the end-to-end scripts (sourced).
# Each script gets a private temp directory, background processes it starts
# are killed on exit, and every wait is bounded.

set -u
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATION="$TOP/$BUILD/station"
SIM="$TOP/$BUILD/sim-serial"
T=$(mktemp -d /tmp/station-e2e.XXXXXX)
PIDS=()
checks=0
fails=0

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

ok() { checks=$((checks + 1)); printf 'ok   %s\n' "$1"; }
not_ok() { checks=$((checks + 1)); fails=$((fails + 1)); printf 'FAIL %s\n' "$1"; }
check() { # check "what" command...
	local what=$1; shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
finish() {
	printf '%d passed, %d failed\n' "$((checks - fails))" "$fails"
	[ "$fails" -eq 0 ]
}

# Wait (bounded) until a file has content.
wait_for() {
	local f=$1 i
	for i in $(seq 1 100); do [ -s "$f" ] && return 0; sleep 0.05; done
	return 1
}

# start_sim NAME IDENTITY-FILE [options]: a simulated console device whose
# pty is linked at $T/NAME; its store is $T/NAME.store.
start_sim() {
	local name=$1 ident=$2; shift 2
	mkdir -p "$T/$name.store"
	"$SIM" --identity "$ident" --store "$T/$name.store" --link "$T/$name" "$@" \
		>"$T/$name.out" 2>"$T/$name.log" &
	PIDS+=($!)
	wait_for "$T/$name.out" || { echo "simulator $name did not start"; cat "$T/$name.log"; return 1; }
}

# make_pki DIR: the openssl test PKI (tests/pki.sh).
make_pki() { bash "$TOP/tests/pki.sh" "$1" >/dev/null; }

# write_config FILE DATA-DIR PKI-DIR [extra lines]
write_config() {
	local f=$1 data=$2 pki=$3; shift 3
	{
		printf '[station]\nid = STN-0042\nsite = plant-7\nkey = %s/station.key\ncert = %s/station.pem\ndata = %s\n\n' "$pki" "$pki" "$data"
		printf '[trust]\nanchors = %s/roots.pem\nrequire-custody = no\n\n' "$pki"
		printf '[technician ana]\nname = Ana Lima\n\n'
		for line in "$@"; do printf '%s\n' "$line"; done
	} >"$f"
}

# sim_image FILE SEQUENCE VERSION SIZE: an image the simulator understands.
sim_image() {
	{ printf '#station-sim-image sequence=%s version=%s\n' "$2" "$3"
	  head -c "$4" /dev/urandom; } >"$1"
}
