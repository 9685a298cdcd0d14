#!/usr/bin/env bash
# tests/e2e_attacks.sh: the attack suite.  Every attack TUF, Uptane and SUIT
# name for offline updates that applies here, plus our custody and exception
# cases, is mounted through the real command line against a real openssl
# PKI.  Each must be refused with the right rule AND the right words, and
# the refusal must be in the journal with that rule.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }

P="$T/pki"
make_pki "$P"
NOW=$(date -u +%s)
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

conf() { # conf EXTRA-TRUST-LINES... : the station config for this run
	{
		printf '[station]\nid = STN-0042\nsite = plant-7\nkey = %s/station.key\ncert = %s/station.pem\ndata = %s/data\n\n' "$P" "$P" "$T"
		printf '[trust]\nanchors = %s/roots.pem\ncrl = %s/crl\n' "$P" "$P"
		for l in "$@"; do printf '%s\n' "$l"; done
		printf '\n[technician ana]\nname = Ana Lima\n[technician bo]\nname = Bo Berg\n'
	} >"$T/station.conf"
}
conf
export STATION_CONFIG="$T/station.conf"

printf 'image bytes for the attack suite\n' >"$T/app.bin"
head -c 4096 /dev/urandom >"$T/app.bin"

sign_manifest() { "$STATION" sign --key "$P/$2.key" --cert "$P/$2.pem" --label "${3:-rel1}" "$1/manifest" >/dev/null; }
hand() { "$STATION" custody add --key "$P/$2.key" --cert "$P/$2.pem" --to "$3" "$1" >/dev/null; }
chain() { hand "$1" custody3 courier-ana; hand "$1" custody1 ana; }

# mk NAME [SEQ] [MODEL] [SIGNER]: a signed bundle with a custody chain to ana.
mk() {
	local b="$T/$1" seq=${2:-42} model=${3:-TX-200} signer=${4:-release1}
	rm -rf "$b"
	"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence "$seq" \
		--model "$model" --hardware revB --image app="$T/app.bin" "$b" >/dev/null
	[ "$signer" = none ] || sign_manifest "$b" "$signer"
	chain "$b"
	echo "$b"
}
# edit a manifest line, re-sign it and rebuild the custody chain
remake() { # remake BUNDLE SED-EXPR
	sed -i "$2" "$1/manifest"
	rm -rf "$1/custody"; sign_manifest "$1" release1; chain "$1"
}

printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\n' >"$T/dev.id"
DEV="$T/dev.id"

# attack NAME RULE WORDS [station args...]: expect exit 1, "rule RULE: ...WORDS",
# and a journaled refusal with rule=RULE.
attack() {
	local name=$1 rule=$2 words=$3 out rc last; shift 3
	out=$("$STATION" "$@" 2>&1); rc=$?
	if [ "$rc" -ne 1 ]; then not_ok "$name: exit $rc, want 1"; echo "  $out" | tail -3; return; fi
	if ! grep -q "refused: rule $rule: .*$words" <<<"$out"; then
		not_ok "$name: reason"; echo "  want: rule $rule: ...$words"; echo "  got:  $(grep refused <<<"$out")"; return
	fi
	last=$("$STATION" journal | grep -E ' (bundle|device|session)-refused ' | tail -1)
	if ! grep -q "rule=$rule " <<<"$last"; then not_ok "$name: not journaled with rule=$rule"; echo "  $last"; return; fi
	ok "$name"
}
verify() { attack "$1" "$2" "$3" verify --technician "${TECH:-ana}" --device "${DEVFILE:-$DEV}" "$4"; }
accepts() { "$STATION" verify --technician ana --device "$DEV" "$1" >/dev/null 2>&1; }

# --- the good bundle passes, so every refusal below is the attack's doing -
good=$(mk good)
check "the reference bundle is accepted" accepts "$good"

# --- signatures (check 1) -------------------------------------------------
verify "unsigned manifest" threshold "unsigned: no manifest.sig" "$(mk unsigned 42 TX-200 none)"
verify "manifest signed by a custody key (wrong role)" role "holds role custody, not release" "$(mk wrongrole 42 TX-200 custody1)"
verify "manifest signed by a two-role certificate" one-key-one-duty "" "$(mk tworole 42 TX-200 tworole)"
verify "manifest signed by an expired certificate" chain "expired" "$(mk expired 42 TX-200 expired)"
verify "manifest signed by a not-yet-valid certificate" chain "is not valid before" "$(mk future 42 TX-200 future)"
verify "manifest signed by a revoked certificate" chain "is revoked" "$(mk revoked 42 TX-200 revoked)"
verify "manifest signed under an unknown root" chain "" "$(mk unknownroot 42 TX-200 other-release)"
b=$(mk flipped); sed -i 's/^version = 2.4.1$/version = 2.4.2/' "$b/manifest"
verify "manifest byte changed after signing" signature "does not verify" "$b"
conf "release-threshold = 2"
verify "threshold short: one signature, two required" threshold "1 valid release signature(s) from distinct keys, 2 required" "$good"
b=$(mk twice); sign_manifest "$b" release1 again
verify "threshold: the same key signing twice counts once" threshold "1 valid release signature(s) from distinct keys, 2 required: 2 signature files, but the same key signing twice counts once" "$b"
b=$(mk two); sign_manifest "$b" release2 rel2
check "threshold: two distinct release keys meet a threshold of 2" accepts "$b"
conf

# --- images (check 3) -------------------------------------------------------
b=$(mk imgflip); printf 'X' | dd of="$b/app.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
verify "image byte flipped" images "app.bin: sha256 is [0-9a-f]*, manifest says" "$b"
b=$(mk imgshort); truncate -s 4095 "$b/app.bin"
verify "image one byte short" images "size is 4095 bytes, manifest says 4096" "$b"
b=$(mk imglong); printf 'X' >>"$b/app.bin"
verify "image one byte long" images "size is 4097 bytes, manifest says 4096" "$b"
b=$(mk imgmissing); rm "$b/app.bin"
verify "image missing" images "missing: named by the manifest" "$b"
b=$(mk imglink); mv "$b/app.bin" "$T/elsewhere.bin"; ln -s "$T/elsewhere.bin" "$b/app.bin"
verify "image replaced by a symlink" images "is a symbolic link" "$b"
b=$(mk traversal); remake "$b" 's/^file = app.bin$/file = ..\/..\/etc\/passwd/'
verify "path traversal in an image file name" record "'file' must be" "$b"

# --- validity (check 2) ---------------------------------------------------
b=$(mk expiredmanifest); remake "$b" "s/^created = .*/created = $(utc $((NOW - 86400 * 10)))/; s/^expires = .*/expires = $(utc $((NOW - 86400)))/"
rm -rf "$b/custody"; chain "$b"
verify "manifest expired" expired "expired at" "$b"
b=$(mk notyet); remake "$b" "s/^created = .*/created = $(utc $((NOW + 86400)))/; s/^expires = .*/expires = $(utc $((NOW + 86400 * 2)))/"
verify "manifest not yet created" expired "not valid before its created time" "$b"

# --- target and sequence (checks 4, 5) -----------------------------------
verify "wrong model" target "is model TX-200, the bundle is for TX-100" "$(mk wrongmodel 42 TX-100)"
printf 'format = station-device-1\nmodel = TX-200\nhardware = revA\nserial = SN-0001\nsequence = 41\n' >"$T/reva.id"
DEVFILE="$T/reva.id" verify "wrong hardware revision" target "is hardware revA, the bundle accepts only revB" "$good"
verify "downgrade" downgrade "sequence 40 is older than installed 41" "$(mk downgrade 40)"
verify "equal sequence without confirmation" reinstall "equals the installed sequence" "$(mk equal 41)"

# --- custody (check 6) --------------------------------------------------
b=$(mk gap); hand "$b" custody2 x 2>/dev/null; mv "$b/custody/02.rec" "$b/custody/03.rec"; mv "$b/custody/02.rec.sig" "$b/custody/03.rec.sig"; mv "$b/custody/02.rec.pem" "$b/custody/03.rec.pem"
verify "custody gap" custody "gap: no record with index 2" "$b"
b=$(mk reorder); for e in "" .sig .pem; do mv "$b/custody/01.rec$e" "$b/x$e"; mv "$b/custody/02.rec$e" "$b/custody/01.rec$e"; mv "$b/x$e" "$b/custody/02.rec$e"; done
verify "custody records reordered" custody "says index 2 but is file 01.rec" "$b"
b=$(mk wrongsigner); "$STATION" sign --key "$P/custody2.key" --cert "$P/custody2.pem" "$b/custody/02.rec" >/dev/null
verify "custody record signed by someone else" custody "signer CN courier-bo does not match from courier-ana" "$b"
b=$(mk brokenprev); printf 'seal = BAG-99\n' >>"$b/custody/01.rec"; "$STATION" sign --key "$P/custody3.key" --cert "$P/custody3.pem" "$b/custody/01.rec" >/dev/null
verify "custody: broken previous hash" custody "previous does not match the SHA-256 of the previous record" "$b"
b=$(mk otherbundle); other=$(mk otherbundle2 43); rm -rf "$b/custody"; cp -r "$other/custody" "$b/custody"
verify "custody record for another bundle" custody "is for another bundle" "$b"
b=$(mk backwards); sed -i "s/^time = .*/time = $(utc $((NOW - 30)))/" "$b/custody/02.rec"; sed -i "s/^time = .*/time = $(utc $((NOW - 10)))/" "$b/custody/01.rec"
"$STATION" sign --key "$P/custody3.key" --cert "$P/custody3.pem" "$b/custody/01.rec" >/dev/null
prev=$(sha256sum "$b/custody/01.rec" | cut -d' ' -f1); sed -i "s/^previous = .*/previous = $prev/" "$b/custody/02.rec"
"$STATION" sign --key "$P/custody1.key" --cert "$P/custody1.pem" "$b/custody/02.rec" >/dev/null
verify "custody time going backwards" custody "time goes backwards" "$b"
conf "max-custody-hops = 1"
verify "custody: too many hops" custody "2 records, more than max-custody-hops 1" "$good"
conf "max-custody-age = 1s"; sleep 2
verify "custody chain too old" custody "chain too old" "$good"
conf
TECH=bo verify "last holder is not the technician signed in" custody "last holder is ana, not the technician signed in (bo)" "$good"
b=$(mk nochain); rm -rf "$b/custody"
verify "no custody chain where policy requires one" custody "no custody records" "$b"

# --- exception tokens -------------------------------------------------------
token() { # token BUNDLE SIGNER DEVICE TTL [extra args]
	local b=$1 signer=$2 dev=$3 ttl=$4; shift 4
	"$STATION" token issue --key "$P/$signer.key" --cert "$P/$signer.pem" --waive downgrade \
		--device "$dev" --ttl "$ttl" --reason "sanctioned rollback OPS-881" "$@" "$b" >/dev/null
}
b=$(mk tokok 40); token "$b" exception1 SN-0001 1h --site plant-7 --station STN-0042
check "a downgrade waived by a valid token is accepted" accepts "$b"
b=$(mk tokexpired 40); token "$b" exception1 SN-0001 1s; sleep 2
verify "token expired" token "expired at" "$b"
conf "max-token-ttl = 1h"
b=$(mk tokttl 40); token "$b" exception1 SN-0001 2h
verify "token lifetime over policy" token "over policy max-token-ttl" "$b"
conf
b=$(mk tokother 40); o=$(mk tokother2 39); token "$o" exception1 SN-0001 1h; mv "$o/tokens" "$b/tokens"
verify "token for another bundle" token "is for another bundle" "$b"
b=$(mk tokdev 40); token "$b" exception1 SN-0002 1h
verify "token for another device" token "does not name device SN-0001" "$b"
b=$(mk toksite 40); token "$b" exception1 SN-0001 1h --site plant-9
verify "token for another site" token "is for site plant-9, this station is at plant-7" "$b"
b=$(mk tokstation 40); token "$b" exception1 SN-0001 1h --station STN-0001
verify "token for another station" token "is for station STN-0001, this is STN-0042" "$b"
b=$(mk tokrelease 40); token "$b" release2 SN-0001 1h --force 2>/dev/null
verify "token signed by a release signer" token "holds role release, not exception" "$b"
b=$(mk tokcustody 40); token "$b" custody1 SN-0001 1h --force 2>/dev/null
verify "token signed by a custody certificate" token "holds role custody, not exception" "$b"

# replay: a real push uses the token once; the same token on the same device
# is refused the second time, even for another bundle.
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\n' >"$T/sim.id"
start_sim dev "$T/sim.id"
b=$(mk replay 40); token "$b" exception1 SN-0001 1h
out=$("$STATION" push --technician ana --device "serial:$T/dev" "$b" 2>&1)
check "the token's first use installs the rollback" grep -q "installed tx200-app" <<<"$out"
check "the token's use is journaled before the install" bash -c "'$STATION' journal | grep -q 'token-applied .*use=[0-9a-f]*/SN-0001'"
sed -i 's/^sequence = .*/sequence = 41/' "$T/sim.id"
attack "token replayed on the same device" token "already used on this device" push --technician ana --device "serial:$T/dev" "$b"
b2=$(mk replay2 39); cp -r "$b/tokens" "$b2/tokens"
verify "token reused for another bundle" token "" "$b2"

# --- revocation and time ----------------------------------------------------
b=$(mk oldcrl 42 TX-200 revoked); mkdir -p "$b/crl"; cp "$P/crl-old/inter.crl.pem" "$b/crl/old.pem"
verify "an older CRL on the media does not un-revoke a signer" chain "is revoked" "$b"
check "the older CRL was journaled as ignored" bash -c "'$STATION' journal | grep -q 'crl-offered .*ignored: not newer'"
# a CRL that expired a second after it was made, under the refuse policy
mkdir -p "$T/stalecrl"
( cd "$P" && CA_DIR="$P/ca/inter" openssl ca -config "$P/ca/openssl.cnf" -gencrl -cert inter.pem -keyfile inter.key \
	-crlsec 1 -out "$T/stalecrl/inter.crl.pem" ) >/dev/null 2>&1 || echo "note: could not make a stale CRL"
sleep 2
cat >"$T/stale.conf" <<EOF2
[station]
id = STN-0042
site = plant-7
data = $T/data
[trust]
anchors = $P/roots.pem
crl = $T/stalecrl
stale-crl = refuse
[technician ana]
name = Ana
EOF2
attack "stale CRL under the refuse policy" chain "past its nextUpdate" verify --config "$T/stale.conf" --technician ana --device "$DEV" "$good"
floor=$(utc $((NOW + 86400)))
printf 'floor = %s\n' "$floor" >"$T/data/time-floor"
attack "clock rolled back below the trusted-time floor" clock "more than 5 minutes behind the trusted-time floor $floor" verify --technician ana --device "$DEV" "$good"
rm -f "$T/data/time-floor"
# (the journal's newest event is also a floor: remove it for the cases below
# by keeping the clock where it is; nothing here moved it forward)

# --- malformed and oversize records -----------------------------------------
b=$(mk dupkey); remake "$b" 's/^name = tx200-app$/name = tx200-app\nname = other/'
verify "manifest with a duplicate key" record "key 'name' given twice" "$b"
b=$(mk unknownkey); remake "$b" 's/^name = tx200-app$/name = tx200-app\ncolour = red/'
verify "manifest with an unknown key" record "unknown key 'colour'" "$b"
b=$(mk control); remake "$b" 's/^version = 2.4.1$/version = 2.4.1\x1b[2J/'
verify "manifest with a control character" record "control" "$b"
b=$(mk crlf); remake "$b" 's/$/\r/'
verify "manifest with CR line ends" record "carriage return" "$b"
b=$(mk oversize); { cat "$b/manifest"; for i in $(seq 1 1900); do printf '# %s\n' "$(head -c 30 /dev/zero | tr '\0' x)$i"; done; } >"$T/big"; mv "$T/big" "$b/manifest"; sign_manifest "$b" release1
verify "manifest of 65 KiB" size-cap "over the 65536 byte cap" "$b"
b=$(mk badcustody); printf 'colour = red\n' >>"$b/custody/02.rec"; "$STATION" sign --key "$P/custody1.key" --cert "$P/custody1.pem" "$b/custody/02.rec" >/dev/null
verify "custody record with an unknown key" record "unknown key 'colour'" "$b"

check "the journal chain verifies after every attack" bash -c "'$STATION' journal --verify | grep -q 'chain verifies'"
finish
