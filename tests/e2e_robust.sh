#!/usr/bin/env bash
# tests/e2e_robust.sh: the station survives what a busy or crashed station
# leaves behind, through the real command line: several `station verify` at
# once share the trusted-time floor (formats §6) without failing; a floor
# file a crash left empty or garbled is rebuilt from the journal, said and
# journaled, not a lock-out; and a station key that is not a key, does not
# match its certificate, or a certificate whose CN is not the station id
# stops the station when it starts (formats §8), not at the first export.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }

P="$T/pki"
make_pki "$P"
write_config "$T/station.conf" "$T/data" "$P"
export STATION_CONFIG="$T/station.conf"

head -c 4096 /dev/urandom >"$T/app.bin"
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --image app="$T/app.bin" "$T/b" >/dev/null
"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" \
	--label rel1 "$T/b/manifest" >/dev/null

# --- item 11: concurrent sessions on one floor --------------------------
# Four verifies started together, 30 rounds: every one must be accepted.
# Before the floor writers used unique temp files, about one round in six
# lost a rename to another writer ("rename: No such file or directory").
bad=0
for round in $(seq 1 30); do
	pids=()
	for k in 1 2 3 4; do
		"$STATION" verify "$T/b" >"$T/v.$k.out" 2>"$T/v.$k.err" &
		pids+=($!)
	done
	for k in 1 2 3 4; do
		if ! wait "${pids[$((k - 1))]}"; then
			bad=$((bad + 1))
			[ "$bad" -eq 1 ] && { echo "round $round:"; cat "$T/v.$k.err"; }
		fi
	done
done
check "120 verifies, four at a time, all accepted (failed: $bad)" [ "$bad" -eq 0 ]
check "no temp file left beside the floor" \
	bash -c "! ls '$T/data' | grep -Eq '^time-floor\\.[A-Za-z0-9]{6}\$'"
check "the floor file holds one floor line" \
	grep -Eqx 'floor = [0-9T:-]+Z' "$T/data/time-floor"

# --- item 11: a damaged floor file is rebuilt from the journal ----------
newest() { # the time of the journal's newest event, as epoch seconds
	"$STATION" journal --json | tail -n 1 |
		sed -n 's/.*"time":"\([^"]*\)".*/\1/p' | xargs -I{} date -u -d {} +%s
}
for damage in empty garbage; do
	case $damage in
	empty) : >"$T/data/time-floor" ;;
	garbage) printf 'fl\x01\x02oor = yesterday\n' >"$T/data/time-floor" ;;
	esac
	last=$(newest)
	"$STATION" verify "$T/b" >"$T/rec.out" 2>"$T/rec.err"
	rc=$?
	check "$damage floor file: the verify still runs (exit $rc)" [ "$rc" -eq 0 ]
	check "$damage floor file: the station says what happened" \
		grep -q "trusted-time floor file .* was .*; rebuilt from the journal" "$T/rec.err"
	"$STATION" journal --json >"$T/j.json"
	check "$damage floor file: the recovery is journaled" \
		grep -q '"type":"time-floor-recovered"' "$T/j.json"
	fl=$(grep '"type":"time-floor-recovered"' "$T/j.json" | tail -n 1 |
		sed -n 's/.*"floor":"\([^"]*\)".*/\1/p')
	check "$damage floor file: rebuilt floor $fl is not below the newest event" \
		[ -n "$fl" ] && [ "$(date -u -d "$fl" +%s)" -ge "$last" ]
	check "$damage floor file: the file is whole again" \
		grep -Eqx 'floor = [0-9T:-]+Z' "$T/data/time-floor"
	"$STATION" verify "$T/b" >/dev/null 2>"$T/rec2.err"
	check "$damage floor file: the next start has nothing to recover" \
		[ ! -s "$T/rec2.err" ]
done

# --- item 13: the station key and certificate are checked at start -----
keycase() { # keycase WHAT KEY CERT ID WORDS...
	local what=$1 key=$2 cert=$3 id=$4; shift 4
	sed -e "s|^key = .*|key = $key|" -e "s|^cert = .*|cert = $cert|" \
		-e "s|^id = .*|id = $id|" "$T/station.conf" >"$T/k.conf"
	"$STATION" verify --config "$T/k.conf" "$T/b" >/dev/null 2>"$T/k.err"
	local rc=$?
	check "$what: verify stops with exit 2 (got $rc)" [ "$rc" -eq 2 ]
	check "$what: the message names the configuration file and line" \
		grep -q "k.conf:[0-9]" "$T/k.err"
	for w in "$@"; do
		check "$what: says \"$w\"" grep -qF -- "$w" "$T/k.err"
	done
}
keycase "key of another certificate" "$P/release1.key" "$P/station.pem" \
	STN-0042 "does not match the certificate" "$P/release1.key"
printf 'this is not a key\n' >"$T/notakey.key"
keycase "file that is not a key" "$T/notakey.key" "$P/station.pem" \
	STN-0042 "does not parse" "$T/notakey.key"
keycase "certificate CN not the station id" "$P/station.key" "$P/station.pem" \
	STN-0099 "CN STN-0042 is not the station id STN-0099"

finish
