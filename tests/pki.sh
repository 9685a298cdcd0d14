#!/usr/bin/env bash
# tests/pki.sh OUTDIR: builds the test PKI that the custody suites and the
# end-to-end scripts verify against (formats §2 and §6), with the openssl CLI
# only, so every fixture is one a release engineer could make by hand.
#
# OUTDIR receives (keys ECDSA P-256 unless noted; every leaf .pem is the leaf
# followed by inter.pem; roles are EKU OIDs under the station arc):
#   root.pem root.key, inter.pem inter.key (signed by root), roots.pem (anchors)
#   release1..3 (CN release-1..3; release2 RSA-2048, release3 P-384)
#   custody1..4 (CN courier-ana, courier-bo, dispatch-office-3, site-gate)
#   exception1..2 (CN exception-1..2), station (CN STN-0042, station role)
#   tworole (release + custody), norole (no EKU), wrongrole (custody role),
#   expired (release, validity ended last year), future (release, valid from
#   next year), revoked (release, on crl/inter.crl.pem), p521 (release, P-521),
#   nodigsig (release, keyUsage keyEncipherment only)
#   other-root.pem, other-release.key/.pem (leaf + other-root, an untrusted root)
#   crl/inter.crl.pem (crlNumber 2, revokes `revoked`, nextUpdate in 30 days)
#   crl-old/inter.crl.pem (crlNumber 1, revokes nothing)
#   ca/ (openssl ca state and config: CA_DIR=OUTDIR/ca/inter openssl ca
#   -config OUTDIR/ca/openssl.cnf ... makes more CRLs from the same issuer)
# Odd certificates (made after the CRLs, so the above stay as they were):
#   caleaf (release, CA:TRUE), kcsleaf (release, keyUsage keyCertSign),
#   anyeku (release + anyExtendedKeyUsage), ed25519 and dsa (release leaves
#   with keys formats §2 refuses), ekuinter.pem (CA under root whose EKU is
#   the custody role) with ekucustody (custody leaf) and ekurelease (release
#   leaf) under it, sub.pem (CA under inter) with deep (release leaf; deep.pem
#   in issuing order, deep-rev.pem with the intermediates swapped),
#   plinter.pem (CA pathlen:0 under root) > plsub.pem (CA) > pathlen
#   (release), notca.pem (CA:FALSE issuer under root) > undernotca,
#   nokcs.pem (CA without keyCertSign under root) > undernokcs, xinter.pem
#   (a cross-certificate: inter's name and key, issued by other-root) and
#   cross.pem (release1's leaf, xinter, inter: the cross-certificate first)
# Device identity (formats §9): see the section near the end (mfg-*, dev*,
# foreign-*).
# Delivery keys (formats §10, role .6, under inter, at the very end):
#   delivery (P-256, CN delivery-STN-0042, keyUsage keyAgreement),
#   delivery-rsa (RSA-2048, CN delivery-rsa-STN-0042, keyEncipherment),
#   delivery2 (P-256, CN delivery-STN-0099: another station's),
#   delivery-tworole (P-256, delivery + station roles: refused for both)
set -euo pipefail

out=${1:?usage: tests/pki.sh OUTDIR}
mkdir -p "$out"
cd "$out"
ca=ca
rm -rf "$ca" crl crl-old
mkdir -p "$ca" crl crl-old
cnf=$ca/openssl.cnf
arc=2.25.220105586949796384984797284338591255574

# Quiet unless something fails: openssl ca chats on stderr.
q() {
	"$@" >"$ca/log" 2>&1 || { cat "$ca/log" >&2; echo "pki.sh: failed: $*" >&2; exit 1; }
}

when() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

genkey() { # FILE ALG
	case $2 in
	p256) q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
	p384) q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1" ;;
	p521) q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out "$1" ;;
	rsa2048) q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" ;;
	esac
	chmod 600 "$1"
}

# One `openssl ca` database per issuing CA; serials are fixed so reruns give
# the same serial numbers.
mkdb() { # DIR FIRST-SERIAL
	mkdir -p "$1/new"
	: >"$1/index.txt"
	echo "unique_subject = no" >"$1/index.txt.attr"
	echo "$2" >"$1/serial"
	echo 01 >"$1/crlnumber"
}

leaf_ext() { # SECTION KEYUSAGE [EKU]
	printf '[%s]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, %s\n' "$1" "$2"
	printf 'subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n'
	[ -z "${3:-}" ] || printf 'extendedKeyUsage = %s\n' "$3"
	echo
}

{
	cat <<EOF
[ca]
default_ca = ca_default

[ca_default]
dir = \$ENV::CA_DIR
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir/new
default_md = sha256
default_crl_days = 30
policy = policy_cn
email_in_dn = no
copy_extensions = none
unique_subject = no

[policy_cn]
commonName = supplied

[req]
distinguished_name = req_dn

[req_dn]

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

EOF
	leaf_ext release digitalSignature "$arc.1"
	leaf_ext custody digitalSignature "$arc.2"
	leaf_ext exception digitalSignature "$arc.3"
	leaf_ext station digitalSignature "$arc.4"
	leaf_ext tworole digitalSignature "$arc.1, $arc.2"
	leaf_ext norole digitalSignature
	leaf_ext nodigsig keyEncipherment "$arc.1"
} >"$cnf"

# CAs reach far into the past and future so that tests may verify at any
# time within the leaves' validity.
ca_start=$(when '-10 years')
ca_end=$(when '+20 years')

# selfca NAME CN: a self-signed root with its own database.
selfca() {
	genkey "$1.key" p256
	q openssl req -new -key "$1.key" -subj "/CN=$2" -out "$ca/$1.csr"
	mkdb "$ca/$1" 1000
	CA_DIR=$ca/$1 q openssl ca -batch -config "$cnf" -selfsign -notext \
		-keyfile "$1.key" -in "$ca/$1.csr" -out "$1.pem" -extensions ca_ext \
		-startdate "$ca_start" -enddate "$ca_end"
}

selfca root "Station Test Root"
cp root.pem roots.pem
selfca other-root "Other Test Root"

genkey inter.key p256
q openssl req -new -key inter.key -subj "/CN=Station Test Intermediate" -out "$ca/inter.csr"
CA_DIR=$ca/root q openssl ca -batch -config "$cnf" -notext -cert root.pem \
	-keyfile root.key -in "$ca/inter.csr" -out inter.pem -extensions ca_ext \
	-startdate "$ca_start" -enddate "$ca_end"
mkdb "$ca/inter" 2000

leaf_start=$(when '-1 day')
leaf_end=$(when '+2 years')

# issue NAME CN SECTION [ALG [START END [CA]]]: a leaf, NAME.pem = leaf + CA.
issue() {
	local name=$1 cn=$2 ext=$3 alg=${4:-p256} start=${5:-$leaf_start}
	local end=${6:-$leaf_end} issuer=${7:-inter}
	genkey "$name.key" "$alg"
	q openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$ca/$name.csr"
	CA_DIR=$ca/$issuer q openssl ca -batch -config "$cnf" -notext \
		-cert "$issuer.pem" -keyfile "$issuer.key" -in "$ca/$name.csr" \
		-out "$ca/$name.crt" -extensions "$ext" -startdate "$start" -enddate "$end"
	cat "$ca/$name.crt" "$issuer.pem" >"$name.pem"
}

issue release1 release-1 release
issue release2 release-2 release rsa2048
issue release3 release-3 release p384
issue custody1 courier-ana custody
issue custody2 courier-bo custody
issue custody3 dispatch-office-3 custody
issue custody4 site-gate custody
issue exception1 exception-1 exception
issue exception2 exception-2 exception
issue station STN-0042 station
issue tworole two-role tworole
issue norole no-role norole
issue wrongrole wrong-role custody
issue expired expired-release release p256 "$(when '-2 years')" "$(when '-1 year')"
issue future future-release release p256 "$(when '+1 year')" "$(when '+2 years')"
issue revoked revoked-release release
issue p521 p521-release release p521
issue nodigsig nodigsig-release nodigsig
issue other-release other-release release p256 "$leaf_start" "$leaf_end" other-root

# The older CRL first (crlNumber 1, nothing revoked), then the current one.
CA_DIR=$ca/inter q openssl ca -batch -config "$cnf" -gencrl -cert inter.pem \
	-keyfile inter.key -out crl-old/inter.crl.pem
CA_DIR=$ca/inter q openssl ca -batch -config "$cnf" -revoke "$ca/revoked.crt" \
	-cert inter.pem -keyfile inter.key -crl_reason keyCompromise
CA_DIR=$ca/inter q openssl ca -batch -config "$cnf" -gencrl -cert inter.pem \
	-keyfile inter.key -out crl/inter.crl.pem

# ---- odd certificates (formats §2, RFC 5280 §4.2.1.3, 4.2.1.9, 4.2.1.12) ----
cat >>"$cnf" <<EOF

[caleaf]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = $arc.1

[ca_pathlen0]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign

[ca_custody_eku]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
extendedKeyUsage = $arc.2

[notca_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyCertSign

[nokcs_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, cRLSign

EOF
{
	leaf_ext kcsleaf "digitalSignature, keyCertSign" "$arc.1"
	leaf_ext anyeku digitalSignature "$arc.1, anyExtendedKeyUsage"
} >>"$cnf"

genkey_odd() { # FILE ed25519|dsa
	case $2 in
	ed25519) q openssl genpkey -algorithm ED25519 -out "$1" ;;
	dsa) q openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 -out "$ca/dsa.param"
		q openssl genpkey -paramfile "$ca/dsa.param" -out "$1" ;;
	esac
	chmod 600 "$1"
}

# subca NAME CN ISSUER EXT: a CA certificate NAME.pem with its own database.
subca() {
	genkey "$1.key" p256
	q openssl req -new -key "$1.key" -subj "/CN=$2" -out "$ca/$1.csr"
	CA_DIR=$ca/$3 q openssl ca -batch -config "$cnf" -notext -cert "$3.pem" \
		-keyfile "$3.key" -in "$ca/$1.csr" -out "$1.pem" -extensions "$4" \
		-startdate "$ca_start" -enddate "$ca_end"
	mkdb "$ca/$1" 3000
}

issue caleaf ca-leaf caleaf
issue kcsleaf kcs-leaf kcsleaf
issue anyeku any-eku anyeku
for alg in ed25519 dsa; do
	genkey_odd "$alg.key" "$alg"
	q openssl req -new -key "$alg.key" -subj "/CN=$alg-release" -out "$ca/$alg.csr"
	CA_DIR=$ca/inter q openssl ca -batch -config "$cnf" -notext -cert inter.pem \
		-keyfile inter.key -in "$ca/$alg.csr" -out "$ca/$alg.crt" -extensions release \
		-startdate "$leaf_start" -enddate "$leaf_end"
	cat "$ca/$alg.crt" inter.pem >"$alg.pem"
done

subca ekuinter "EKU Custody Intermediate" root ca_custody_eku
issue ekucustody eku-custody custody p256 "$leaf_start" "$leaf_end" ekuinter
issue ekurelease eku-release release p256 "$leaf_start" "$leaf_end" ekuinter

subca sub "Station Test Sub-CA" inter ca_ext
issue deep deep-release release p256 "$leaf_start" "$leaf_end" sub
cat "$ca/deep.crt" sub.pem inter.pem >deep.pem
cat "$ca/deep.crt" inter.pem sub.pem >deep-rev.pem

subca plinter "PathLen Zero CA" root ca_pathlen0
subca plsub "PathLen Sub-CA" plinter ca_ext
issue pathlen pathlen-release release p256 "$leaf_start" "$leaf_end" plsub
cat plinter.pem >>pathlen.pem

subca notca "Not A CA" root notca_ext
issue undernotca under-notca release p256 "$leaf_start" "$leaf_end" notca
subca nokcs "No KeyCertSign CA" root nokcs_ext
issue undernokcs under-nokcs release p256 "$leaf_start" "$leaf_end" nokcs

CA_DIR=$ca/other-root q openssl ca -batch -config "$cnf" -notext -cert other-root.pem \
	-keyfile other-root.key -in "$ca/inter.csr" -out xinter.pem -extensions ca_ext \
	-startdate "$ca_start" -enddate "$ca_end"
cat "$ca/release1.crt" xinter.pem inter.pem >cross.pem

# ---- device identity (formats §9): manufacturer CAs and 802.1AR DevIDs ----
# mfg-root.pem (CN Acme Devices Root CA) > mfg-ca.pem (Acme TX-200 Device
# CA); mfg-anchors.pem = mfg-root.pem (a class's device-anchors).
# devN (N=1..4): subject serialNumber=SN-000N, CN=TX-200 SN-000N, keyUsage
# digitalSignature, no EKU; devN.pem = leaf + mfg-ca.pem.
# dev-other: serialNumber SN-0099 (a unit claiming SN-0001 with it lies).
# dev-revoked: SN-0005, revoked by mfg-crl/mfg-ca.crl.pem (crlNumber 2).
# dev-station: SN-0006 but carrying the station role EKU (refused).
# dev-noserial: CN only, no serialNumber attribute.
# dev-twoserial: two serialNumber attributes (SN-0001 and SN-0002).
# dev-rsa: SN-0007, RSA-2048.
# foreign-root.pem (Foreign Devices Root) > foreign-dev (serialNumber
# SN-0001, a counterfeit's certificate from another manufacturer).
cat >>"$cnf" <<EOF

[policy_dev]
serialNumber = optional
commonName = supplied

[device]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[device_station]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $arc.4

EOF
selfca mfg-root "Acme Devices Root CA"
cp mfg-root.pem mfg-anchors.pem
subca mfg-ca "Acme TX-200 Device CA" mfg-root ca_ext
selfca foreign-root "Foreign Devices Root"

# devcert NAME SUBJECT ISSUER [EXT [ALG]]: NAME.pem = leaf + ISSUER.pem
devcert() {
	local name=$1 subj=$2 issuer=$3 ext=${4:-device} alg=${5:-p256}
	genkey "$name.key" "$alg"
	q openssl req -new -key "$name.key" -subj "$subj" -out "$ca/$name.csr"
	CA_DIR=$ca/$issuer q openssl ca -batch -config "$cnf" -notext \
		-policy policy_dev -preserveDN -cert "$issuer.pem" \
		-keyfile "$issuer.key" -in "$ca/$name.csr" -out "$ca/$name.crt" \
		-extensions "$ext" -startdate "$leaf_start" -enddate "$leaf_end"
	cat "$ca/$name.crt" "$issuer.pem" >"$name.pem"
}
for n in 1 2 3 4; do
	devcert "dev$n" "/CN=TX-200 SN-000$n/serialNumber=SN-000$n" mfg-ca
done
devcert dev-other "/CN=TX-200 SN-0099/serialNumber=SN-0099" mfg-ca
devcert dev-revoked "/CN=TX-200 SN-0005/serialNumber=SN-0005" mfg-ca
devcert dev-station "/CN=TX-200 SN-0006/serialNumber=SN-0006" mfg-ca \
	device_station
devcert dev-noserial "/CN=TX-200 no serial" mfg-ca
devcert dev-twoserial \
	"/CN=TX-200 SN-0001/serialNumber=SN-0001/serialNumber=SN-0002" mfg-ca
devcert dev-rsa "/CN=TX-200 SN-0007/serialNumber=SN-0007" mfg-ca device \
	rsa2048
devcert foreign-dev "/CN=TX-200 SN-0001/serialNumber=SN-0001" foreign-root
mkdir -p mfg-crl
CA_DIR=$ca/mfg-ca q openssl ca -batch -config "$cnf" -gencrl -cert mfg-ca.pem \
	-keyfile mfg-ca.key -out "$ca/mfg-ca.crl1.pem"
CA_DIR=$ca/mfg-ca q openssl ca -batch -config "$cnf" \
	-revoke "$ca/dev-revoked.crt" -cert mfg-ca.pem -keyfile mfg-ca.key \
	-crl_reason keyCompromise
CA_DIR=$ca/mfg-ca q openssl ca -batch -config "$cnf" -gencrl -cert mfg-ca.pem \
	-keyfile mfg-ca.key -out mfg-crl/mfg-ca.crl.pem

# ---- delivery keys (formats §10, role .6): what encrypted images are
# wrapped for.  keyUsage is what the key does: keyAgreement (ECDH) on P-256,
# keyEncipherment (RSA-OAEP) on RSA.  Under inter, after the CRLs, so the
# serials above stay as they were.
cat >>"$cnf" <<EOF2

[delivery_ec]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyAgreement
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
extendedKeyUsage = $arc.6

[delivery_rsa]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
extendedKeyUsage = $arc.6

[delivery_tworole]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
extendedKeyUsage = $arc.6, $arc.4

EOF2
issue delivery delivery-STN-0042 delivery_ec
issue delivery-rsa delivery-rsa-STN-0042 delivery_rsa rsa2048
issue delivery2 delivery-STN-0099 delivery_ec
issue delivery-tworole delivery-tworole delivery_tworole
