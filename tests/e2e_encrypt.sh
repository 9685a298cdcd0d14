#!/usr/bin/env bash
# tests/e2e_encrypt.sh: encrypted delivery (formats §10) against the openssl
# CLI, both ways, with real parts:
#  (a) a bundle `station bundle create --encrypt-for` makes for a P-256 and
#      an RSA delivery certificate decrypts with openssl alone, for each;
#  (b) a bundle made with openssl alone (manifest written by hand, key files
#      by openssl, signed by openssl dgst) is verified and installed by the
#      station onto the simulated serial device, which stores the plaintext;
#  (c) refusals name the rule and the cause: no key for this station,
#      tampered ciphertext, tampered or substituted key file, wrong IV, a
#      release certificate given to --encrypt-for.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }
command -v xxd >/dev/null || { echo "skip: xxd not installed"; exit 77; }

make_pki "$T/pki"
P=$T/pki
[ -f "$P/delivery.pem" ] || { echo "skip: tests/pki.sh makes no delivery certificates"; exit 77; }

hexof() { xxd -p "$1" | tr -d '\n'; }
# The recipient id (formats §10): SHA-256 of the leaf certificate's DER.
rid() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
field() { sed -n "s/^$2 = //p" "$1"; } # FILE KEY: a record's value
image_field() { # MANIFEST LABEL KEY: a key of one [image LABEL] section
	awk -v sec="[image $2]" -v key="$3" '
		/^\[/ { on = ($0 == sec) } on && $1 == key && $2 == "=" { print $3 }' "$1"
}

# unwrap KEYFILE RECIPIENT-KEY: prints the content key (hex) with openssl
# alone: ECDH + HKDF + AES key wrap (RFC 3394), or RSA-OAEP-SHA256.
unwrap() {
	local kf=$1 key=$2 w=$T/unwrap.$$ z kek
	rm -rf "$w" && mkdir -p "$w"
	field "$kf" wrapped | base64 -d >"$w/wrapped" || return 1
	case $(field "$kf" method) in
	ecdh-p256)
		field "$kf" ephemeral | base64 -d >"$w/eph.der" || return 1
		openssl pkey -pubin -inform DER -in "$w/eph.der" -out "$w/eph.pem" || return 1
		openssl pkeyutl -derive -inkey "$key" -peerkey "$w/eph.pem" -out "$w/z" || return 1
		kek=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 \
			-kdfopt hexkey:"$(hexof "$w/z")" -kdfopt info:station-key-1 HKDF | tr -d ':') || return 1
		openssl enc -d -id-aes256-wrap -K "$kek" -iv A6A6A6A6A6A6A6A6 \
			-in "$w/wrapped" -out "$w/ck" || return 1 ;;
	rsa-oaep-sha256)
		openssl pkeyutl -decrypt -inkey "$key" -in "$w/wrapped" -out "$w/ck" \
			-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
			-pkeyopt rsa_mgf1_md:sha256 || return 1 ;;
	*) return 1 ;;
	esac
	[ "$(stat -c %s "$w/ck")" -eq 32 ] && hexof "$w/ck"
}

# wrap CERT KEYHEX LABEL OUT: a station-key-1 file made with openssl alone,
# ecdh-p256 for an EC certificate, rsa-oaep-sha256 for an RSA one.
wrap() {
	local cert=$1 ck=$2 label=$3 out=$4 w=$T/wrap.$$ z kek
	rm -rf "$w" && mkdir -p "$w"
	openssl x509 -in "$cert" -pubkey -noout >"$w/pub.pem"
	printf '%s' "$ck" | xxd -r -p >"$w/ck"
	{
		printf 'format = station-key-1\nimage = %s\nrecipient = %s\n' "$label" "$(rid "$cert")"
		if openssl pkey -pubin -in "$w/pub.pem" -text -noout | grep -q 'ASN1 OID: prime256v1'; then
			openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$w/eph.key" 2>/dev/null
			openssl pkey -in "$w/eph.key" -pubout -outform DER -out "$w/eph.der"
			openssl pkeyutl -derive -inkey "$w/eph.key" -peerkey "$w/pub.pem" -out "$w/z"
			kek=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 \
				-kdfopt hexkey:"$(hexof "$w/z")" -kdfopt info:station-key-1 HKDF | tr -d ':')
			openssl enc -id-aes256-wrap -K "$kek" -iv A6A6A6A6A6A6A6A6 -in "$w/ck" -out "$w/wrapped"
			printf 'method = ecdh-p256\nephemeral = %s\n' "$(base64 -w0 "$w/eph.der")"
		else
			openssl pkeyutl -encrypt -pubin -inkey "$w/pub.pem" -in "$w/ck" -out "$w/wrapped" \
				-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
				-pkeyopt rsa_mgf1_md:sha256
			printf 'method = rsa-oaep-sha256\n'
		fi
		printf 'wrapped = %s\n' "$(base64 -w0 "$w/wrapped")"
	} >"$out"
}

# openssl_bundle DIR PLAINTEXT SEQUENCE CERT... : an encrypted bundle made
# with openssl alone, one key file per CERT, signed with release1.  IV_SHOWN
# (env) replaces the IV the manifest gives (the image is still encrypted
# under the real one).
openssl_bundle() {
	local dir=$1 plain=$2 seq=$3; shift 3
	local ck iv enc n=0
	mkdir -p "$dir/keys"
	ck=$(openssl rand -hex 32)
	iv=$(openssl rand -hex 16)
	enc=$(basename "$plain").enc
	openssl enc -aes-256-ctr -K "$ck" -iv "$iv" -in "$plain" -out "$dir/$enc"
	cat >"$dir/manifest" <<-EOF
	format = station-bundle-1
	name = tx200-app
	version = 2.5.$seq
	sequence = $seq
	created = $(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
	expires = $(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)

	[target]
	model = TX-200

	[image app]
	file = $enc
	size = $(stat -c %s "$plain")
	sha256 = $(sha256sum "$plain" | cut -c1-64)
	slot = 0
	cipher = aes-256-ctr
	iv = ${IV_SHOWN:-$iv}
	cipher-sha256 = $(sha256sum "$dir/$enc" | cut -c1-64)
	EOF
	for cert in "$@"; do
		n=$((n + 1))
		wrap "$cert" "$ck" app "$dir/keys/app.r$n.key"
	done
	openssl dgst -sha256 -sign "$P/release1.key" -out "$dir/manifest.rel1.sig" "$dir/manifest"
	cp "$P/release1.pem" "$dir/manifest.rel1.pem"
}

# A configuration whose [station] holds delivery-key/-cert (formats §8).
station_conf() { # FILE DELIVERY-NAME [extra lines]
	local f=$1 who=$2; shift 2
	write_config "$f" "$T/data" "$P" "$@"
	sed -i "/^data = /a delivery-key = $P/$who.key\ndelivery-cert = $P/$who.pem" "$f"
}

sim_image "$T/tx200-app.bin" 42 2.4.1 300000
plain_sha=$(sha256sum "$T/tx200-app.bin" | cut -c1-64)

# --- (a) the station encrypts, openssl alone decrypts ----------------------
out=$("$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --encrypt-for "$P/delivery.pem" --encrypt-for "$P/delivery-rsa.pem" \
	--image "app=$T/tx200-app.bin@0" "$T/enc" 2>&1); rc=$?
check "bundle create --encrypt-for (P-256 and RSA) exits 0" test "$rc" -eq 0 || echo "$out"
M=$T/enc/manifest
check "the manifest names the ciphertext FILE.enc" test "$(image_field "$M" app file)" = tx200-app.bin.enc
check "the manifest gives cipher = aes-256-ctr" test "$(image_field "$M" app cipher)" = aes-256-ctr
check "size and sha256 are the plaintext's" \
	test "$(image_field "$M" app size)" = "$(stat -c %s "$T/tx200-app.bin")" -a "$(image_field "$M" app sha256)" = "$plain_sha"
check "cipher-sha256 is the file's on the media" \
	test "$(image_field "$M" app cipher-sha256)" = "$(sha256sum "$T/enc/tx200-app.bin.enc" | cut -c1-64)"
check "the plaintext is nowhere in the bundle" \
	bash -c "! test -e '$T/enc/tx200-app.bin' && ! grep -rqF '#station-sim-image' '$T/enc'"
iv=$(image_field "$M" app iv)
check "the IV is 32 hex digits" grep -qx '[0-9a-f]\{32\}' <<<"$iv"
for who in delivery delivery-rsa; do
	r=$(rid "$P/$who.pem")
	kf=$T/enc/keys/app.${r:0:8}.key
	check "$who: one key file keys/app.${r:0:8}.key naming its recipient" \
		test -f "$kf" -a "$(field "$kf" recipient)" = "$r" -a "$(field "$kf" image)" = app
	ck=$(unwrap "$kf" "$P/$who.key")
	check "$who: openssl unwraps a 32-byte content key" grep -qx '[0-9a-f]\{64\}' <<<"$ck"
	openssl enc -d -aes-256-ctr -K "${ck:-00}" -iv "$iv" -in "$T/enc/tx200-app.bin.enc" \
		-out "$T/dec-$who.bin" 2>/dev/null
	check "$who: openssl enc -d -aes-256-ctr gives the image back" \
		cmp -s "$T/dec-$who.bin" "$T/tx200-app.bin"
done
check "ecdh-p256 for the P-256 certificate, rsa-oaep-sha256 for the RSA one" \
	bash -c "grep -qx 'method = ecdh-p256' '$T'/enc/keys/app.$(rid "$P/delivery.pem" | cut -c1-8).key &&
		grep -qx 'method = rsa-oaep-sha256' '$T'/enc/keys/app.$(rid "$P/delivery-rsa.pem" | cut -c1-8).key"
check "exactly two key files" test "$(ls "$T/enc/keys" | wc -l)" -eq 2
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --encrypt-for "$P/delivery.pem" \
	--image "app=$T/tx200-app.bin@0" "$T/enc-again" >/dev/null 2>&1
check "a second bundle of the same image gets a fresh key and IV" \
	bash -c "[ '$iv' != \"\$(awk '/^iv = /{print \$3}' '$T/enc-again/manifest')\" ] &&
		! cmp -s '$T/enc/tx200-app.bin.enc' '$T/enc-again/tx200-app.bin.enc'"

# --- (c) release side refusals -----------------------------------------------
for bad in release1:release station:station; do
	name=${bad%%:*} role=${bad##*:}
	out=$("$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
		--model TX-200 --encrypt-for "$P/$name.pem" \
		--image "app=$T/tx200-app.bin@0" "$T/bad-$name" 2>&1); rc=$?
	check "a $role certificate given to --encrypt-for is a usage error (exit 2)" test "$rc" -eq 2
	check "... naming the file and the $role role it holds" \
		bash -c "grep -q '$name.pem' <<<\"\$1\" && grep -qi '$role' <<<\"\$1\"" _ "$out"
	check "... and writes no bundle" test ! -e "$T/bad-$name"
done
out=$("$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --encrypt-for "$P/delivery.pem" --encrypt-for "$P/delivery.pem" \
	--image "app=$T/tx200-app.bin@0" "$T/bad-twice" 2>&1); rc=$?
check "the same delivery certificate twice is a usage error" \
	bash -c "[ $rc -eq 2 ] && grep -q 'same delivery certificate' <<<\"\$1\" && ! test -e '$T/bad-twice'" _ "$out"

# --- the station installs what it made (needs the station side) -----------
"$STATION" sign --key "$P/release1.key" --cert "$P/release1.pem" --label rel1 "$M" >/dev/null
station_conf "$T/station.conf" delivery
export STATION_CONFIG="$T/station.conf"
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\nversion = 2.4.0\n' >"$T/dev1.id"
start_sim dev1 "$T/dev1.id"
out=$("$STATION" push --technician ana --device "serial:$T/dev1" "$T/enc" 2>&1); rc=$?
check "the station installs the bundle it encrypted (exit 0)" test "$rc" -eq 0 || echo "$out"
check "... the device stored the plaintext" cmp -s "$T/dev1.store/slot-0.bin" "$T/tx200-app.bin"

# --- (b) openssl alone encrypts, the station verifies and installs --------
mkdir -p "$T/b"
sim_image "$T/b/tx200-app.bin" 43 2.5.43 200000
openssl_bundle "$T/ob" "$T/b/tx200-app.bin" 43 "$P/delivery.pem" "$P/delivery-rsa.pem"
out=$("$STATION" verify "$T/ob" 2>&1); rc=$?
check "station verify accepts the openssl-made encrypted bundle" test "$rc" -eq 0 || echo "$out"
out=$("$STATION" push --technician ana --device "serial:$T/dev1" "$T/ob" 2>&1); rc=$?
check "station push installs it onto sim-serial (ecdh-p256 key)" test "$rc" -eq 0 || echo "$out"
check "... the device stored exactly the plaintext" cmp -s "$T/dev1.store/slot-0.bin" "$T/b/tx200-app.bin"
check "... and the device's sequence rose to 43" grep -qx "sequence = 43" "$T/dev1.id"
# The same with the RSA delivery key, on a second device.
station_conf "$T/station-rsa.conf" delivery-rsa
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0002\nsequence = 41\nversion = 2.4.0\n' >"$T/dev2.id"
start_sim dev2 "$T/dev2.id"
out=$(STATION_CONFIG="$T/station-rsa.conf" "$STATION" push --technician ana --device "serial:$T/dev2" "$T/ob" 2>&1); rc=$?
check "station push installs it with the RSA delivery key (rsa-oaep-sha256)" test "$rc" -eq 0 || echo "$out"
check "... the device stored exactly the plaintext" cmp -s "$T/dev2.store/slot-0.bin" "$T/b/tx200-app.bin"

# --- (c) station side refusals -------------------------------------------------
refused() { # WHAT BUNDLE PATTERN...: verify exits 1 and says each PATTERN
	local what=$1 dir=$2 p; shift 2 # (!PATTERN: does not say it)
	out=$("$STATION" verify "$dir" 2>&1); rc=$?
	local good=1
	[ "$rc" -eq 1 ] || good=0
	for p in "$@"; do
		case $p in
		!*) ! grep -q -- "${p#!}" <<<"$out" || good=0 ;;
		*) grep -q -- "$p" <<<"$out" || good=0 ;;
		esac
	done
	if [ "$good" -eq 1 ]; then ok "$what"; else not_ok "$what"; echo "  rc=$rc: $out"; fi
}
r2=$(rid "$P/delivery2.pem")
openssl_bundle "$T/other" "$T/b/tx200-app.bin" 43 "$P/delivery2.pem"
refused "encrypted only for another station: rule images, naming the recipient found" \
	"$T/other" "rule images:" "${r2:0:8}"
STATION_CONFIG_SAVED=$STATION_CONFIG
write_config "$T/nokey.conf" "$T/data" "$P"
STATION_CONFIG="$T/nokey.conf" refused "no delivery key configured: rule images, naming the recipients" \
	"$T/ob" "rule images:" "$(rid "$P/delivery.pem" | cut -c1-8)"
export STATION_CONFIG=$STATION_CONFIG_SAVED

cp -r "$T/ob" "$T/tamper-c"
printf '\x55' | dd of="$T/tamper-c/tx200-app.bin.enc" bs=1 seek=1000 conv=notrunc 2>/dev/null
refused "a tampered ciphertext: rule images, cipher-sha256" "$T/tamper-c" "rule images:" "cipher-sha256"

cp -r "$T/ob" "$T/tamper-w"
kf=$T/tamper-w/keys/app.r1.key
w=$(field "$kf" wrapped | base64 -d | xxd -p | tr -d '\n')
w=${w:0:10}$(printf '%02x' $(( (0x${w:10:2} ^ 1) )))${w:12}
sed -i "s|^wrapped = .*|wrapped = $(printf '%s' "$w" | xxd -r -p | base64 -w0)|" "$kf"
refused "a tampered wrapped key: rule images, naming the key file" \
	"$T/tamper-w" "rule images:" "app.r1.key"

# A key file that opens but holds another content key (key files are
# unsigned): the plaintext digest fails check 3.
cp -r "$T/ob" "$T/subst"
wrap "$P/delivery.pem" "$(openssl rand -hex 32)" app "$T/subst/keys/app.r1.key"
refused "a substituted content key: rule images, the plaintext's sha256" \
	"$T/subst" "rule images:" "sha256" "!cipher-sha256"

IV_SHOWN=$(openssl rand -hex 16) openssl_bundle "$T/badiv" "$T/b/tx200-app.bin" 43 "$P/delivery.pem"
refused "a wrong IV in the signed manifest: rule images, the plaintext's sha256" \
	"$T/badiv" "rule images:" "sha256" "!cipher-sha256"
check "no refused bundle reached a device" \
	bash -c "cmp -s '$T/dev1.store/slot-0.bin' '$T/b/tx200-app.bin'"

finish
