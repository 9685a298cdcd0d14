#!/usr/bin/env bash
# tests/e2e_layers.sh: the dependency rules of docs/architecture.md, read
# from the #include lines.  The base layer (station/base/) includes nothing
# else of ours; custody/, transport/ and media/ reach into station/ only for
# the base layer; transport/ includes neither custody/ nor media/, custody/
# no media/ or transport/; nothing outside ui/ includes ui/.  Each
# third-party library has the one home STYLE.md gives it (libcrypto: the
# base layer, delivery key unwrap and the simulators; see below).  A violation is
# named by file and line.
. "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 1

# incl DIR...: every quoted include of ours as FILE:LINE:PATH
incl() {
	grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' \
		$(find "$@" -maxdepth 1 -name '*.[ch]' | sort) |
		sed -E 's/^([^:]*:[0-9]+):[^"]*"([^"]*)".*/\1:\2/'
}
# sys PATTERN: files that include a system header matching PATTERN
sys() {
	grep -lE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<($1)" \
		$(find station custody transport media ui -name '*.[ch]' | sort)
}
# rule WHAT BAD-LINES: passes when BAD-LINES is empty, else lists them
rule() {
	if [ -z "$2" ]; then ok "$1"; else not_ok "$1"; printf '     %s\n' $2; fi
}

rule "station/base/ includes only station/base/" \
	"$(incl station/base | grep -v ':station/base/[^/]*$')"
rule "custody/, transport/ and media/ include no station/ header but the base" \
	"$(incl custody transport transport/sim media | grep ':station/' |
	   grep -v ':station/base/')"
rule "transport/ includes neither custody/ nor media/" \
	"$(incl transport transport/sim | grep -E ':(custody|media)/')"
rule "custody/ includes neither media/ nor transport/" \
	"$(incl custody | grep -E ':(media|transport)/')"
rule "nothing outside ui/ includes ui/" \
	"$(incl station station/base custody transport transport/sim media tests |
	   grep ':ui/')"
rule "only ui/ includes curses" \
	"$(sys 'n?curses' | grep -v '^ui/')"
rule "only transport/usb*.c includes libusb" \
	"$(sys 'libusb' | grep -v '^transport/usb[^/]*\.c$')"
rule "only the journal includes sqlite3" \
	"$(sys 'sqlite3' | grep -v '^station/journal\.c$')"
rule "only custody/ includes mbedTLS" \
	"$(sys 'mbedtls/' | grep -v '^custody/')"
# libcrypto: the base layer's SHA-256 and AES-256-CTR, encrypted delivery's
# key unwrap (formats §10: mbedTLS 2.28 here has no AES key wrap), and the
# simulators' device side of formats §9 (independent of the station's
# mbedTLS on purpose).
rule "only base sha256.c, aes_ctr.c, custody/delivery.c and transport/sim_identity.c include OpenSSL" \
	"$(sys 'openssl/' |
	   grep -vx -e 'station/base/sha256\.c' -e 'station/base/aes_ctr\.c' \
		-e 'custody/delivery\.c' -e 'transport/sim_identity\.c')"
finish
