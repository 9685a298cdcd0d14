#!/usr/bin/env bash
# tests/e2e_release_checks.sh: release engineering's checks without a
# station (issue 15 items 7 and 9; docs/release.md):
#  (a) `verify --trust FILE` judges a bundle against FILE's anchors alone:
#      it accepts a good bundle while the station configuration is broken
#      (so it never reads it) and writes nothing; it refuses a tampered
#      image, a bad signature, an expired bundle and too few release keys,
#      naming the rule; it checks an encrypted bundle's ciphertext and says
#      the plaintext was not checked; custody records are checked, the
#      technician end is not;
#  (b) `token issue` refuses a non-exception certificate and a lifetime
#      over the default max-token-ttl before writing; --force writes with a
#      warning;
#  (c) `custody add` refuses a certificate without the custody role, a key
#      that does not match its certificate, and a chain already broken.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }

make_pki "$T/pki"
P=$T/pki
[ -f "$P/delivery.pem" ] || { echo "skip: tests/pki.sh makes no delivery certificates"; exit 77; }

# A configuration that cannot be read: anything that opens it fails.
printf 'this is not a configuration\n' >"$T/broken.conf"
export STATION_CONFIG="$T/broken.conf"

# new_bundle DIR [bundle create options]: a bundle signed by release-1.
new_bundle() {
	local dir=$1; shift
	"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
		--model TX-200 --image "app=$T/app.bin@0" "$@" "$dir" >/dev/null &&
	"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" \
		--label rel1 "$dir/manifest" >/dev/null
}
# vt BUNDLE [options]: verify --trust from an empty directory, so that a
# file written anywhere near would show; sets out, err, rc.
vt() {
	local b=$1; shift
	rm -rf "$T/cwd" && mkdir "$T/cwd"
	out=$(cd "$T/cwd" && "$STATION" verify --trust "$P/roots.pem" "$@" "$b" 2>"$T/err"); rc=$?
	err=$(cat "$T/err")
}

head -c 200000 /dev/urandom >"$T/app.bin"
new_bundle "$T/good" || { echo "cannot build the bundle"; exit 1; }

# --- (a) verify --trust -------------------------------------------------
out=$("$STATION" verify "$T/good" 2>&1); rc=$?
check "without --trust, verify needs the configuration (exit 2 here)" test "$rc" -eq 2

vt "$T/good"
check "verify --trust accepts a good bundle with no usable configuration" test "$rc" -eq 0 ||
	echo "$out$err"
check "it names each check and its result" \
	grep -qE '^  signatures +passed .*1 required' <<<"$out"
check "validity and images are named too" \
	bash -c 'grep -qE "^  validity +passed" <<<"$1" && grep -qE "^  images +passed" <<<"$1"' _ "$out"
check "it says what it was judged against and that nothing was journaled" \
	bash -c 'grep -q "roots.pem alone$" <<<"$1" &&
		grep -q "no station configuration read; nothing journaled" <<<"$1"' _ "$out"
check "it says it judged at this clock" grep -q "(this clock), release threshold 1" <<<"$out"
check "it ends with the verdict" grep -q "^verdict   accepted for release" <<<"$out"
check "nothing was written where it ran" test -z "$(ls -A "$T/cwd")"
check "no data directory appeared beside the bundle" test ! -e "$T/good/data" -a ! -e "$T/data"
if [ -e /etc/station ]; then
	echo "note: /etc/station exists here; the broken STATION_CONFIG shows it is not read"
fi

vt "$T/good" --config "$T/broken.conf"
check "--config with --trust is a usage error (exit 2)" test "$rc" -eq 2
check "the usage error says --trust checks the bundle alone" grep -q "checks the bundle alone" <<<"$err"

vt "$T/good" --json
check "--json: accepted, with the threshold and the checks" \
	bash -c 'grep -q "\"verdict\":\"accepted\"" <<<"$1" && grep -q "\"threshold\":1" <<<"$1" &&
		grep -q "\"check\":\"signatures\",\"outcome\":\"passed\"" <<<"$1"' _ "$out"

vt "$T/good" --threshold 2
check "--threshold 2 with one release key is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule threshold and the manifest" \
	grep -q "refused: rule threshold: $T/good/manifest: 1 valid release signature(s) from distinct keys, 2 required" <<<"$err"
"$STATION" sign --key "$P/release2.key" --cert "$P/release2.pem" --label rel2 \
	"$T/good/manifest" >/dev/null
vt "$T/good" --threshold 2
check "a second release key meets --threshold 2" test "$rc" -eq 0
vt "$T/good" --threshold 0
check "--threshold 0 is a usage error (exit 2)" test "$rc" -eq 2

# Tampered image.
cp -r "$T/good" "$T/tampered"
printf 'X' | dd of="$T/tampered/app.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
vt "$T/tampered"
check "a tampered image is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule images, the file and the digest" \
	grep -q "refused: rule images: $T/tampered/app.bin: sha256 is" <<<"$err"

# Bad signature: the manifest changed after it was signed.
cp -r "$T/good" "$T/badsig"
rm -f "$T/badsig/manifest.rel2."*
sed -i 's/^version = 2.4.1$/version = 2.4.2/' "$T/badsig/manifest"
vt "$T/badsig"
check "a manifest changed after signing is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule signature and the .sig file" \
	grep -q "refused: rule signature: $T/badsig/manifest.rel1.sig: signature by release-1 does not verify" <<<"$err"

# An untrusted signer.
new_bundle "$T/other" && rm -f "$T/other/manifest.rel1."* &&
	"$STATION" sign --key "$P/other-release.key" --cert "$P/other-release.pem" \
		--label oth "$T/other/manifest" >/dev/null
vt "$T/other"
check "a signer outside the anchors is refused (rule chain)" \
	bash -c '[ "$1" -eq 1 ] && grep -q "refused: rule chain: .*manifest.oth.pem" <<<"$2"' _ "$rc" "$err"

# Expired: the dates moved into the past, signed again.
cp -r "$T/good" "$T/expired"
rm -f "$T/expired/manifest."*
sed -i -e 's/^created = .*/created = 2020-01-01T00:00:00Z/' \
	-e 's/^expires = .*/expires = 2020-06-01T00:00:00Z/' "$T/expired/manifest"
"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" --label rel1 \
	"$T/expired/manifest" >/dev/null
vt "$T/expired"
check "an expired bundle is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule expired, the manifest and the time" \
	grep -q "refused: rule expired: $T/expired/manifest: expired at 2020-06-01T00:00:00Z" <<<"$err"

# Encrypted for a station's delivery key: no key here.
new_bundle "$T/enc" --encrypt-for "$P/delivery.pem" || { echo "cannot build the encrypted bundle"; exit 1; }
vt "$T/enc"
check "an encrypted bundle is accepted on its ciphertext (exit 0)" test "$rc" -eq 0 ||
	echo "$out$err"
check "it does not stop at 'no delivery key'" bash -c '! grep -q "no delivery key:" <<<"$1"' _ "$out$err"
check "it says plainly the plaintext was not checked" \
	grep -q "the plaintext$" <<<"$out"
check "the images line says the ciphertext matched and the plaintext was NOT checked" \
	grep -qE '^  images +passed .*1 encrypted: ciphertext matches cipher-sha256, plaintext NOT checked' <<<"$out"
vt "$T/enc" --json
check "--json counts the image whose plaintext was not checked" grep -q '"plaintext_unchecked":1' <<<"$out"
cp -r "$T/enc" "$T/enc-bad"
printf 'X' | dd of="$T/enc-bad/app.bin.enc" bs=1 seek=10 conv=notrunc 2>/dev/null
vt "$T/enc-bad"
check "a tampered ciphertext is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule images, the file and cipher-sha256" \
	grep -q "refused: rule images: $T/enc-bad/app.bin.enc: encrypted image: ciphertext sha256 is .*cipher-sha256" <<<"$err"

# Custody: checked when present; the last holder need be no technician.
new_bundle "$T/cust"
"$STATION" custody add --key "$P/custody3.key" --cert "$P/custody3.pem" \
	--to courier-ana --trust "$P/roots.pem" "$T/cust" >"$T/c1.out" 2>&1; rc=$?
check "custody add with --trust writes the first record" test "$rc" -eq 0 || cat "$T/c1.out"
"$STATION" custody add --key "$P/custody1.key" --cert "$P/custody1.pem" \
	--to courier-bo --trust "$P/roots.pem" "$T/cust" >"$T/c2.out" 2>&1; rc=$?
check "custody add with --trust checks the first and writes the second" test "$rc" -eq 0 ||
	cat "$T/c2.out"
vt "$T/cust"
check "verify --trust checks the custody chain and accepts it" \
	bash -c '[ "$1" -eq 0 ] && grep -qE "^  custody +passed +2 hop\(s\), from dispatch-office-3 to courier-bo" <<<"$2"' _ "$rc" "$out"
vt "$T/good"
check "no custody/ directory: custody not checked, and said so" grep -q "no custody/ directory" <<<"$out"
cp -r "$T/cust" "$T/cust-bad"
sed -i 's/^to = courier-ana$/to = courier-zed/' "$T/cust-bad/custody/01.rec"
vt "$T/cust-bad"
check "a custody record changed after signing is refused (rule signature)" \
	bash -c '[ "$1" -eq 1 ] && grep -q "refused: rule signature: .*custody/01.rec.sig" <<<"$2"' _ "$rc" "$err"

# --- (b) token issue ----------------------------------------------------
tok() { # BUNDLE [options]: sets out, err, rc
	local b=$1; shift
	out=$("$STATION" token issue --waive downgrade --device SN-0001 \
		--reason "field fix OPS-881" --name t1 "$@" "$b" 2>"$T/err"); rc=$?
	err=$(cat "$T/err")
}
new_bundle "$T/tok"
tok "$T/tok" --key "$P/release1.key" --cert "$P/release1.pem" --ttl 12h
check "token issue with a release certificate is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule role, the certificate and the missing role" \
	grep -q "refused: rule role: $P/release1.pem: signer CN release-1 holds role release, not exception" <<<"$err"
check "and nothing was written" test ! -e "$T/tok/tokens/t1.tok"

tok "$T/tok" --key "$P/custody1.key" --cert "$P/custody1.pem" --ttl 12h
check "token issue with a custody certificate is refused (rule role)" \
	bash -c '[ "$1" -eq 1 ] && grep -q "rule role: .*not exception" <<<"$2"' _ "$rc" "$err"

tok "$T/tok" --key "$P/exception1.key" --cert "$P/exception1.pem" --ttl 100h
check "a --ttl over 72h is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule token, the bundle and max-token-ttl" \
	grep -q "refused: rule token: $T/tok: --ttl 100h is over max-token-ttl 72h" <<<"$err"
check "and nothing was written" test ! -e "$T/tok/tokens/t1.tok"

tok "$T/tok" --key "$P/exception1.key" --cert "$P/exception1.pem" --ttl 100h --force
check "--force writes the long token (exit 0)" \
	bash -c '[ "$1" -eq 0 ] && [ -f "$2/tokens/t1.tok" ] && [ -f "$2/tokens/t1.tok.sig" ]' _ "$rc" "$T/tok"
check "--force warns on stderr, naming the rule" \
	grep -q "warning: writing anyway (--force).*rule token: .*max-token-ttl 72h" <<<"$err"

tok "$T/tok" --key "$P/release1.key" --cert "$P/release1.pem" --ttl 12h --force --name t2
check "--force writes a token signed without the exception role, warning" \
	bash -c '[ "$1" -eq 0 ] && [ -f "$3/tokens/t2.tok" ] && grep -q "warning: .*rule role" <<<"$2"' _ "$rc" "$err" "$T/tok"

tok "$T/tok" --key "$P/exception1.key" --cert "$P/exception1.pem" --ttl 12h --name t3 \
	--trust "$P/roots.pem"
check "a good token is written (exception role, 12h, chain to the anchors)" \
	bash -c '[ "$1" -eq 0 ] && [ -f "$2/tokens/t3.tok" ] && [ -z "$3" ]' _ "$rc" "$T/tok" "$err"

tok "$T/tok" --key "$P/exception1.key" --cert "$P/exception1.pem" --ttl 12h --name t4 \
	--trust "$P/other-root.pem"
check "with --trust, a chain outside those anchors is refused (rule chain)" \
	bash -c '[ "$1" -eq 1 ] && grep -q "refused: rule chain: .*exception1.pem" <<<"$2"' _ "$rc" "$err"

# --- (c) custody add ----------------------------------------------------
cadd() { # KEY CERT BUNDLE [options]: sets out, err, rc
	local k=$1 c=$2 b=$3; shift 3
	out=$("$STATION" custody add --key "$k" --cert "$c" --to courier-bo "$@" "$b" 2>"$T/err"); rc=$?
	err=$(cat "$T/err")
}
new_bundle "$T/ca"
cadd "$P/release1.key" "$P/release1.pem" "$T/ca"
check "custody add with a release certificate is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule role, the certificate and the custody role" \
	grep -q "refused: rule role: $P/release1.pem: signer CN release-1 holds role release, not custody" <<<"$err"
check "and no record was written" test ! -e "$T/ca/custody/01.rec"

cadd "$P/tworole.key" "$P/tworole.pem" "$T/ca"
check "a certificate holding two roles is refused (rule one-key-one-duty)" \
	bash -c '[ "$1" -eq 1 ] && grep -q "rule one-key-one-duty: .*tworole.pem" <<<"$2"' _ "$rc" "$err"

cadd "$P/custody2.key" "$P/custody1.pem" "$T/ca"
check "a key that does not match its certificate is refused" test "$rc" -ne 0
check "the refusal says the key does not match, naming both files" \
	grep -q "$P/custody2.key: private key does not match the certificate CN courier-ana in $P/custody1.pem" <<<"$err"
check "and no record was written" test ! -e "$T/ca/custody/01.rec"

cadd "$P/custody2.key" "$P/custody1.pem" "$T/ca" --force
check "--force never covers a key that does not match" \
	bash -c '[ "$1" -ne 0 ] && [ ! -e "$2/custody/01.rec" ]' _ "$rc" "$T/ca"

# A chain already broken: record 1 edited after record 2 was made.
"$STATION" custody add --key "$P/custody3.key" --cert "$P/custody3.pem" \
	--to courier-ana "$T/ca" >/dev/null 2>&1
"$STATION" custody add --key "$P/custody1.key" --cert "$P/custody1.pem" \
	--to courier-bo "$T/ca" >/dev/null 2>&1
sed -i 's/^to = courier-ana$/to = courier-ana\nplace = elsewhere/' "$T/ca/custody/01.rec"
cadd "$P/custody2.key" "$P/custody2.pem" "$T/ca"
check "custody add on a broken chain is refused (exit 1)" test "$rc" -eq 1
check "the refusal names rule custody and the record whose previous fails" \
	grep -q "refused: rule custody: $T/ca/custody/02.rec: previous does not match the SHA-256 of the previous record" <<<"$err"
check "and no third record was written" test ! -e "$T/ca/custody/03.rec"

# Signatures are checked only against anchors: record 1 edited in place.
cp -r "$T/cust" "$T/cust2"
sed -i 's/^to = courier-bo$/to = courier-bob/' "$T/cust2/custody/02.rec"
cadd "$P/custody4.key" "$P/custody4.pem" "$T/cust2" --trust "$P/roots.pem"
check "with --trust, a record changed after signing is refused (rule signature)" \
	bash -c '[ "$1" -eq 1 ] && grep -q "refused: rule signature: .*custody/02.rec.sig" <<<"$2"' _ "$rc" "$err"

cadd "$P/custody2.key" "$P/custody2.pem" "$T/ca" --force
check "--force appends to a broken chain with a warning" \
	bash -c '[ "$1" -eq 0 ] && [ -f "$3/custody/03.rec" ] && grep -q "warning: writing anyway (--force).*rule custody" <<<"$2"' _ "$rc" "$err" "$T/ca"

finish
