#!/usr/bin/env bash
# tests/e2e_x509.sh: certificates and revocation through the real command
# line (formats §2, §6; issue 11 items 4 to 9): CRLs on the media issued by
# the signer's intermediate under an unlabelled signature, CRL files with
# trailing whitespace, a stale stored CRL for the station's own issuer that
# the media cures, and signers the X.509 rules refuse, each by rule and words.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }

P="$T/pki"
make_pki "$P"

conf() { # conf CRL-DIR STALE-POLICY
	{
		printf '[station]\nid = STN-0042\nsite = plant-7\nkey = %s/station.key\ncert = %s/station.pem\ndata = %s/data\n\n' "$P" "$P" "$T"
		printf '[trust]\nanchors = %s/roots.pem\ncrl = %s\nstale-crl = %s\nrequire-custody = no\n\n' "$P" "$1" "$2"
		printf '[technician ana]\nname = Ana Lima\n'
	} >"$T/station.conf"
	rm -rf "$T/data"
}
export STATION_CONFIG="$T/station.conf"

head -c 4096 /dev/urandom >"$T/app.bin"
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\n' >"$T/dev.id"

# mk NAME SIGNER [LABEL]: a bundle signed by SIGNER, unlabelled without LABEL.
mk() {
	local b="$T/$1"
	rm -rf "$b"
	"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
		--model TX-200 --hardware revB --image app="$T/app.bin" "$b" >/dev/null
	"$STATION" sign --key "$P/$2.key" --cert "$P/$2.pem" ${3:+--label "$3"} "$b/manifest" >/dev/null
	echo "$b"
}
run() { "$STATION" verify --technician ana --device "$T/dev.id" "$1" 2>&1; }
accepts() { # accepts WHAT BUNDLE
	local out rc
	out=$(run "$2"); rc=$?
	if [ "$rc" -eq 0 ]; then ok "$1"; else not_ok "$1: exit $rc"; echo "  $out" | tail -3; fi
}
refuses() { # refuses WHAT BUNDLE RULE WORDS
	local out rc
	out=$(run "$2"); rc=$?
	if [ "$rc" -eq 1 ] && grep -q "rule $3: .*$4" <<<"$out"; then ok "$1"; else
		not_ok "$1: exit $rc"; echo "  want: rule $3: ...$4"; echo "  got:  $(tail -2 <<<"$out")"; fi
}

# Media CRLs are crl/NAME.pem, NAME a section label (formats §3).
mkdir -p "$T/crl-old" "$T/crl-ws"
cp "$P/crl-old/inter.crl.pem" "$T/crl-old/"

# --- item 4: the intermediate's CRL on the media, unlabelled signature ----
conf "$T/crl-old" warn
b=$(mk unlabelled release1)
check "an unlabelled signature is manifest.sig + manifest.pem" test -f "$b/manifest.pem"
mkdir -p "$b/crl" && cp "$P/crl/inter.crl.pem" "$b/crl/inter.pem"
accepts "a genuine CRL beside an unlabelled signature is accepted" "$b"
check "...and it replaced the stored CRL" \
	sh -c "'$STATION' journal | grep crl-offered | grep -q 'replaced the stored CRL'"
b=$(mk unlabelled-revoked revoked)
mkdir -p "$b/crl" && cp "$P/crl/inter.crl.pem" "$b/crl/inter.pem"
conf "$T/crl-old" warn
refuses "...and the revocation it carries applies" "$b" chain "is revoked"

# --- item 5: CRL files with whitespace after the last END line ------------
{ cat "$P/crl-old/inter.crl.pem"; printf '\n  \n\n'; } >"$T/crl-ws/inter.crl.pem"
conf "$T/crl-ws" warn
b=$(mk ws release1 rel1)
mkdir -p "$b/crl" && { cat "$P/crl/inter.crl.pem"; printf '\r\n\n\t\n'; } >"$b/crl/inter.pem"
accepts "CRLs with trailing blank lines parse, in [trust] crl and on the media" "$b"

# --- item 6: a stale stored CRL of the station's issuer, cured by media ---
# openssl ca numbers CRLs in order: the stale one first, then the cure.
ca() { CA_DIR="$P/ca/inter" openssl ca -batch -config "$P/ca/openssl.cnf" \
	-cert "$P/inter.pem" -keyfile "$P/inter.key" "$@" >/dev/null 2>&1; }
mkdir -p "$T/crl-stale"
ca -gencrl -crl_lastupdate 20200101000000Z -crl_nextupdate 20200201000000Z \
	-out "$T/crl-stale/inter.crl.pem"
ca -gencrl -out "$T/fresh.crl.pem"
check "the stale CRL is stale" sh -c "openssl crl -in '$T/crl-stale/inter.crl.pem' -noout -nextupdate | grep -q 2020"
conf "$T/crl-stale" refuse
b=$(mk nocure release1 rel1)
refuses "without a cure, a bundle under the stale CRL is refused" "$b" chain "past its nextUpdate"
b=$(mk cured release1 rel1)
mkdir -p "$b/crl" && cp "$T/fresh.crl.pem" "$b/crl/inter.pem"
accepts "a fresh CRL on the media cures a stale stored CRL of the station's issuer" "$b"
b=$(mk after release1 rel1)
accepts "...and the station remembers the cure" "$b"

# --- items 7, 9, 10: signers by the X.509 rules ----------------------------
conf "$T/crl-old" warn
refuses "a CA leaf may not sign a manifest" "$(mk caleaf caleaf rel1)" role "is a CA (basicConstraints CA:TRUE)"
refuses "a leaf with anyExtendedKeyUsage may not sign" "$(mk anyeku anyeku rel1)" role "anyExtendedKeyUsage"
refuses "a role outside its intermediate's EKU is refused" "$(mk ekurel ekurelease rel1)" role "does not allow role release"
refuses "a pathLenConstraint fault is named" "$(mk pathlen pathlen rel1)" chain "pathLenConstraint 0"
b=$(mk deeprev deep rel1); cp "$P/deep-rev.pem" "$b/manifest.rel1.pem"
accepts "intermediates out of issuing order verify" "$b"
b=$(mk cross release1 rel1); cp "$P/cross.pem" "$b/manifest.rel1.pem"
accepts "a cross-certificate listed first does not hide the valid path" "$b"

finish
