#!/usr/bin/env bash
# tests/bench_encrypt.sh: part of `make bench`.  Encrypted delivery
# (formats §10, issue 14): `station verify` (staging copy + every check) of
# a bundle whose one image of BENCH_ENCRYPT_MB MiB (default 1024) is
# encrypted, against
#  - the same image in the clear, verified the same way (target: ratio
#    <= 1.3);
#  - what one would do by hand for the same digests: `sha256sum` of the
#    ciphertext and `openssl enc -d -aes-256-ctr | sha256sum` of the
#    plaintext (target: the station is faster, ratio < 1);
# and the station's peak resident memory on the encrypted bundle (target
# < 32 MiB, flat in the image size).  Warm page cache: every file is read
# once before timing.  Each figure is the median of BENCH_RUNS runs (default
# 3), the tools alternated.  Every file (images, bundles, the station's
# staging area) lies under one directory, so on one filesystem.  Prints
# results; asserts nothing, so it is not part of `make check`.
set -euo pipefail
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/lib.sh"
SIZE_MB=${BENCH_ENCRYPT_MB:-1024}
RUNS=${BENCH_RUNS:-3}

command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { sed -n "s/^$2 = //p" "$1"; }

make_pki "$T/pki"
P=$T/pki
write_config "$T/station.conf" "$T/data" "$P"
sed -i "/^data = /a delivery-key = $P/delivery.key\ndelivery-cert = $P/delivery.pem" "$T/station.conf"
export STATION_CONFIG="$T/station.conf"

head -c $((SIZE_MB * 1048576)) /dev/urandom >"$T/fw.bin"
for kind in clear enc; do
	extra=()
	[ "$kind" = enc ] && extra=(--encrypt-for "$P/delivery.pem")
	"$STATION" bundle create --name big --version 1 --sequence 1 --model TX-200 \
		"${extra[@]}" --image "app=$T/fw.bin@0" "$T/$kind" >/dev/null
	"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" "$T/$kind/manifest" >/dev/null
done
rm -f "$T/fw.bin"

# The content key, unwrapped with openssl for the reference (untimed).
kf=$(ls "$T"/enc/keys/app.*.key)
field "$kf" ephemeral | base64 -d | openssl pkey -pubin -inform DER -out "$T/eph.pem"
openssl pkeyutl -derive -inkey "$P/delivery.key" -peerkey "$T/eph.pem" -out "$T/z"
kek=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:"$(xxd -p "$T/z" | tr -d '\n')" \
	-kdfopt info:station-key-1 HKDF | tr -d ':')
field "$kf" wrapped | base64 -d |
	openssl enc -d -id-aes256-wrap -K "$kek" -iv A6A6A6A6A6A6A6A6 -out "$T/ck"
ck=$(xxd -p "$T/ck" | tr -d '\n')
iv=$(sed -n 's/^iv = //p' "$T/enc/manifest")

peak=0
run_station() { # BUNDLE: prints seconds; the peak RSS (KiB) goes to $T/rss
	local t0 t1 pid hwm
	t0=$(now)
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%M' -o "$T/rss" "$STATION" verify "$1" >"$T/verify.out" 2>&1 ||
			{ cat "$T/verify.out" >&2; return 1; }
	else # poll VmHWM while it runs
		"$STATION" verify "$1" >"$T/verify.out" 2>&1 & pid=$!
		hwm=0
		while kill -0 "$pid" 2>/dev/null; do
			v=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
			sleep 0.02
		done
		wait "$pid" || { cat "$T/verify.out" >&2; return 1; }
		echo "$hwm" >"$T/rss"
	fi
	t1=$(now)
	secs "$t0" "$t1"
}
run_openssl() {
	local t0 t1 a b
	t0=$(now)
	a=$(sha256sum "$T/enc/fw.bin.enc")
	b=$(openssl enc -d -aes-256-ctr -K "$ck" -iv "$iv" -in "$T/enc/fw.bin.enc" | sha256sum)
	t1=$(now)
	[ -n "$a" ] && [ -n "$b" ] || return 1
	[ "${b%% *}" = "$(sed -n 's/^sha256 = //p' "$T/enc/manifest")" ] ||
		{ echo "openssl decrypted to another digest" >&2; return 1; }
	secs "$t0" "$t1"
}

cat "$T/clear/fw.bin" "$T/enc/fw.bin.enc" >/dev/null # warm the page cache
if ! run_station "$T/enc" >/dev/null; then
	echo "station verify refuses the encrypted bundle (station side not in this build?)"
	exit 1
fi
clear=() enc=() ossl=() rss=()
for i in $(seq 1 "$RUNS"); do
	sync
	clear+=("$(run_station "$T/clear")")
	sync
	enc+=("$(run_station "$T/enc")")
	rss+=("$(cat "$T/rss")")
	sync
	ossl+=("$(run_openssl)")
done
c=$(median "${clear[@]}")
e=$(median "${enc[@]}")
o=$(median "${ossl[@]}")
for r in "${rss[@]}"; do [ "$r" -gt "$peak" ] && peak=$r; done
printf 'encrypted delivery, one image of %d MiB, warm cache, median of %d runs\n' "$SIZE_MB" "$RUNS"
printf '  station verify, clear      %8.3f s\n' "$c"
printf '  station verify, encrypted  %8.3f s   ratio %s (target <= 1.3)\n' "$e" "$(ratio "$e" "$c")"
printf '  sha256sum + openssl enc -d | sha256sum  %8.3f s   station/openssl %s (target < 1)\n' \
	"$o" "$(ratio "$e" "$o")"
printf '  station peak RSS, encrypted  %d KiB (target < 32768)\n' "$peak"
