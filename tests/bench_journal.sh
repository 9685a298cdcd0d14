#!/usr/bin/env bash
# tests/bench_journal.sh: part of `make bench`.  The journal and reports at
# scale (issue 7.5), measured in the same run against the tools an auditor
# would otherwise use:
#  - durable appends per second (one commit and WAL fsync each, as the
#    station appends), on an empty journal and on one of a million events;
#  - the journal library's range, walk, filter and verify steps on 100,000
#    events (test_journal --scale; test_journal checks their answers);
#  - `station journal` filters and a day's export from a million events;
#  - export and verify of a report of 100,000 events, beside sha256sum
#    (reading the file at all), openssl dgst -verify (the signature alone)
#    and python3 recomputing the chain (docs/auditor.md);
#  - peak resident memory of export and verify (must not grow with the
#    report: both stream).
# Prints results; it asserts nothing, so it is not part of `make check`.
# BENCH_EVENTS (default 1000000) and BENCH_REPORT_EVENTS (100000) scale it.
set -euo pipefail
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
N=${BENCH_EVENTS:-1000000}
RN=${BENCH_REPORT_EVENTS:-100000}
STEP=3 # seconds between filled events: a million span 35 days
TJ="$TOP/$BUILD/tests/test_journal"

# `make bench` builds the programs, not the suites; the filler lives in one.
[ -x "$TJ" ] || make -C "$TOP" --no-print-directory BUILD="$BUILD" "$BUILD/tests/test_journal" >/dev/null

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
timed() { # timed VAR command...: seconds into VAR, peak RSS KiB into VAR_rss
	local var=$1 t0 t1; shift
	t0=$(now)
	/usr/bin/time -f '%M' -o "$T/rss" "$@"
	t1=$(now)
	printf -v "$var" '%s' "$(secs "$t0" "$t1")"
	printf -v "${var}_rss" '%s' "$(tail -n 1 "$T/rss")"
}

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"
mkdir -p -m 0700 "$T/data" "$T/out"
nowsec=$(date +%s)
start=$((nowsec - N * STEP - 86400))
end=$((start + (N - 1) * STEP))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

echo "== durable appends (synchronous=FULL, WAL, one commit each)"
"$TJ" --append "$T/empty.db" 2000 | sed 's/^/empty journal:           /'

echo "== the library on $RN events (what test_journal checks, timed)"
"$TJ" --scale "$T/scale.db" "$RN" | sed 's/^/  /'

echo "== a journal of $N events"
timed t_fill "$TJ" --fill "$T/data/journal.db" "$N" "$start" "$STEP"
echo "fill $N events (one transaction, bench only): ${t_fill}s"
echo "database size: $(du -h "$T/data/journal.db" | cut -f1)"
"$TJ" --append "$T/data/journal.db" 2000 | sed "s/^/at $N events:  /"

# The first session that checks the clock on a journal with no floor file
# learns the floor from the journal (station/clock.c); later ones start
# from the floor.  An export to a missing directory opens a session and
# stops right after.
timed t_first bash -c "'$STATION' report export --out '$T/none' 2>/dev/null || true"
echo "first clock-checking session on it (no floor file yet): ${t_first}s"
timed t_second bash -c "'$STATION' report export --out '$T/none' 2>/dev/null || true"
echo "the next one:                                           ${t_second}s"
# station/clock.c walks every event while it has no floor file, and writes
# none while the newest event is as new as the session (see the note in
# docs/journal.md); give it one so the numbers below are the report's.
[ -f "$T/data/time-floor" ] || printf 'floor = %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$T/data/time-floor"
timed t_third bash -c "'$STATION' report export --out '$T/none' 2>/dev/null || true"
echo "with a floor file:                                      ${t_third}s"
timed t_serial bash -c "'$STATION' journal --serial SN-42 >'$T/serial.txt'"
echo "station journal --serial SN-42: ${t_serial}s ($(wc -l <"$T/serial.txt") events)"
timed t_tech bash -c "'$STATION' journal --technician tech-7 --since $(iso $((end - 86400))) >'$T/tech.txt'"
echo "station journal --technician tech-7 --since (a day): ${t_tech}s ($(wc -l <"$T/tech.txt") events)"
timed t_day "$STATION" report export --out "$T/out" --since "$(iso $((end - 86399)))" --until "$(iso "$end")" >"$T/day.txt"
echo "report export of a day ($(sed -n 's/^events .*(\([0-9]*\) events.*/\1/p' "$T/day.txt") events): ${t_day}s, peak RSS ${t_day_rss} KiB"

echo "== a report of $RN events"
sleep 1
timed t_exp "$STATION" report export --out "$T/out" --since "$(iso $((end - (RN - 1) * STEP)))" --until "$(iso "$end")" >"$T/big.txt"
R=$(sed -n 's/^report    \(.*\.json\) .*/\1/p' "$T/big.txt")
echo "export: ${t_exp}s ($(rate "$RN" "$t_exp") events/s), $(du -h "$R" | cut -f1), peak RSS ${t_exp_rss} KiB"
timed t_ver "$STATION" report verify --trust "$T/pki/roots.pem" "$R" >"$T/verify.txt"
echo "station report verify: ${t_ver}s ($(rate "$RN" "$t_ver") events/s), peak RSS ${t_ver_rss} KiB, $(grep -c '^  session ' "$T/verify.txt") sessions listed"
timed t_sum sha256sum "$R" >/dev/null
echo "sha256sum of the file:              ${t_sum}s  (verify/sha256sum $(ratio "$t_ver" "$t_sum"))"
openssl x509 -in "$R.pem" -pubkey -noout >"$T/pub.pem"
timed t_ossl openssl dgst -sha256 -verify "$T/pub.pem" -signature "$R.sig" "$R" >/dev/null
echo "openssl dgst -verify (no chain):    ${t_ossl}s  (verify/openssl $(ratio "$t_ver" "$t_ossl"))"
if command -v python3 >/dev/null; then
	cat >"$T/recompute.py" <<'EOF'
import hashlib, json, sys
r = json.load(open(sys.argv[1], encoding="utf-8"))
prev = r["first"]["prev"]
for e in r["events"]:
    assert e["prev"] == prev
    h = hashlib.sha256((prev + "\n" + e["body"]).encode("utf-8")).hexdigest()
    assert h == e["hash"]
    prev = h
assert prev == r["last"]["hash"]
EOF
	timed t_py python3 "$T/recompute.py" "$R"
	echo "python3 chain recompute (auditor.md): ${t_py}s, peak RSS ${t_py_rss} KiB  (verify/python $(ratio "$t_ver" "$t_py"))"
fi

echo "== the whole chain"
timed t_jv bash -c "'$STATION' journal --verify >'$T/jv.txt'"
echo "station journal --verify: ${t_jv}s ($(cut -d' ' -f4 "$T/jv.txt") events)"
