#!/usr/bin/env bash
# tests/bench_media.sh: part of `make bench`.  Staging plus verifying a
# bundle with BENCH_MB MiB of images (default 1024, in four images) against
# what a technician would otherwise do for the same guarantee, `cp -r` then
# `sha256sum` of the copy, timed in the same run on the same files:
#  - warm: the bundle is in the page cache (a second read of the stick);
#  - cold: caches dropped before each timed run of either tool (what reading
#    a real USB stick looks like; needs root, skipped otherwise).
# Each figure is the median of BENCH_RUNS runs (default 5), tools alternated.
# Also the station's peak resident memory, which must stay flat whatever the
# bundle size.  Targets (issue 6): ratio <= 0.6, peak RSS < 32 MiB.
# Prints results; it asserts nothing, so it is not part of `make check`.
set -euo pipefail
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
SIZE_MB=${BENCH_MB:-1024}
RUNS=${BENCH_RUNS:-5}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

can_drop=0
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ]; then can_drop=1; fi
settle() { # flush writeback from the previous run; drop caches when cold
	sync
	if [ "$1" = cold ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"
mkdir -p "$T/img"
images=()
part=$((SIZE_MB / 4))
for i in 1 2 3 4; do
	head -c $((part * 1048576)) /dev/urandom >"$T/img/part$i.bin"
	images+=(--image "p$i=$T/img/part$i.bin@$i")
done
"$STATION" bundle create --name big --version 1 --sequence 1 --model TX-200 \
	"${images[@]}" "$T/bundle" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" "$T/bundle/manifest" >/dev/null
rm -rf "$T/img"

run_station() {
	settle "$1"
	local t0 t1
	t0=$(now)
	/usr/bin/time -f '%M' -o "$T/rss" "$STATION" verify "$T/bundle" >"$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out" >&2; return 1; }
	t1=$(now)
	secs "$t0" "$t1"
}
run_reference() {
	rm -rf "$T/copy"
	settle "$1"
	local t0 t1
	t0=$(now)
	cp -r "$T/bundle" "$T/copy"
	sha256sum "$T/copy"/* >/dev/null
	t1=$(now)
	rm -rf "$T/copy"
	secs "$t0" "$t1"
}

measure() { # warm|cold
	local st=() ref=() rss=0 r
	if [ "$1" = warm ]; then # load the page cache once
		cat "$T/bundle"/* >/dev/null
	fi
	for r in $(seq 1 "$RUNS"); do
		st+=("$(run_station "$1")")
		[ "$(cat "$T/rss")" -gt "$rss" ] && rss=$(cat "$T/rss")
		ref+=("$(run_reference "$1")")
	done
	local s f
	s=$(median "${st[@]}")
	f=$(median "${ref[@]}")
	printf '%-5s station verify %6.2fs  cp -r + sha256sum %6.2fs  ratio %s  peak RSS %d KiB\n' \
		"$1" "$s" "$f" "$(ratio "$s" "$f")" "$rss"
	printf '      runs: station %s; reference %s\n' "${st[*]}" "${ref[*]}"
}

echo "== stage + verify, ${SIZE_MB} MiB of images in 4 files, median of $RUNS"
echo "   (targets: ratio <= 0.60, peak RSS < 32768 KiB)"
measure warm
if [ "$can_drop" = 1 ]; then
	measure cold
else
	echo "cold  skipped: dropping the page cache needs root"
fi
