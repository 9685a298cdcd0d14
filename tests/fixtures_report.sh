#!/usr/bin/env bash
# tests/fixtures_report.sh OUTDIR: real station-report-1 exports made by the
# program itself from a throwaway station (test PKI, a journal with a
# refused push), copied into OUTDIR:
#   first.json    the first export of the journal (previous-export null)
#   second.json   the next, chained to the first, exported to a directory
#                 whose name needs every escape ('"', '\', control bytes,
#                 0x7f, UTF-8)
#   third.json    the next, whose report-exported event holds that name
# each with its .sig and .pem.  The fuzz smoke (tests/e2e_fuzz.sh) seeds
# fuzz_report with them; tests/corpus/report keeps two for `make fuzz`.
# Needs build/station (BUILD=...); exit 77 if it is not built.
set -u
OUT=${1:?usage: fixtures_report.sh OUTDIR}
. "$(dirname "$0")/lib.sh"
[ -x "$STATION" ] || { echo "skip: $STATION not built"; exit 77; }
mkdir -p "$OUT" "$T/out"
make_pki "$T/pki" >/dev/null
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"

# A refused push journals its session with the technician and the reason.
"$STATION" push --technician ana --device serial:/nonexistent/tty \
	/nonexistent/bundle >/dev/null 2>&1
"$STATION" report export --out "$T/out" >/dev/null || exit 1
first=$(ls "$T"/out/report-*.json | tail -1)
odd="$T/out/$(printf 'q"b\\s\tn\001e\177f\303\251')"
mkdir -p "$odd"
"$STATION" report export --out "$odd" >/dev/null || exit 1
second=$(ls "$odd"/report-*.json)
"$STATION" report export --out "$T/out" >/dev/null || exit 1
third=$(ls "$T"/out/report-*.json | tail -1)
[ "$first" != "$third" ] || { echo "fixtures: no third report"; exit 1; }
for f in first:"$first" second:"$second" third:"$third"; do
	name=${f%%:*} src=${f#*:}
	cp "$src" "$OUT/$name.json"
	cp "$src.sig" "$OUT/$name.json.sig"
	cp "$src.pem" "$OUT/$name.json.pem"
done
cp "$T/pki/roots.pem" "$OUT/roots.pem"
