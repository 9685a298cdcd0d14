#!/usr/bin/env bash
# tests/e2e_install.sh: `make install DESTDIR=... PREFIX=/usr` installs like
# a Debian tool (issue 15 item 12), without root: the program, station(1)
# and station.conf(5) that render without warnings and name every command
# of the program's own overview, every exit code and every key of
# station/config.c's tables (read from the source, so a new key or command
# without documentation fails here), the example configuration (which
# loads), the systemd unit (systemd-analyze verify), the udev rules, the
# bash completion and the docs.
. "$(dirname "$0")/lib.sh"
command -v man >/dev/null || { echo "skip: man (man-db) not installed"; exit 77; }

R="$T/root"
out=$(make -C "$TOP" --no-print-directory install DESTDIR="$R" PREFIX=/usr \
	BUILD="$BUILD" 2>&1); rc=$?
check "make install DESTDIR PREFIX=/usr succeeds without root" test "$rc" -eq 0
[ "$rc" -eq 0 ] || printf '  | %s\n' "$out"

for f in usr/bin/station usr/share/man/man1/station.1.gz \
	 usr/share/man/man5/station.conf.5.gz \
	 usr/share/doc/station/README.md usr/share/doc/station/docs/admin.md \
	 usr/share/doc/station/examples/station.conf \
	 usr/lib/udev/rules.d/60-station.rules \
	 usr/lib/systemd/system/station.service \
	 usr/share/bash-completion/completions/station; do
	check "installed $f" test -s "$R/$f"
done
n=$(ls "$TOP"/docs/*.md | wc -l)
check "every docs page under share/doc ($n)" \
	test "$(ls "$R"/usr/share/doc/station/docs/*.md | wc -l)" -eq "$n"
check "nothing installed outside DESTDIR's /usr" \
	test "$(ls "$R")" = usr

# --- man pages -----------------------------------------------------------
M1="$R/usr/share/man/man1/station.1.gz"
M5="$R/usr/share/man/man5/station.conf.5.gz"
for m in "$M1" "$M5"; do
	b=$(basename "$m")
	w=$(MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
	check "$b renders without groff warnings" test -z "$w"
	[ -z "$w" ] || printf '  | %s\n' "$w"
	# Justified text pads spaces: squeeze them for the matches below.
	MANWIDTH=80 man -l "$m" 2>&1 | tee "$T/$b.raw" | tr -s ' ' >"$T/$b.txt"
	check "$b: man -l output names no warning" \
		bash -c "! grep -qi warning '$T/$b.txt'"
	check "$b renders" test "$(wc -l <"$T/$b.raw")" -gt 50
	w=$(awk 'length > 80' "$T/$b.raw")
	check "$b fits 80 columns" test -z "$w"
done
P1="$T/station.1.gz.txt"
P5="$T/station.conf.5.gz.txt"

# Commands: the program's overview (`station --help`), whatever its layout:
# an indented line starting with a lowercase word is a command, a second
# lowercase word a subcommand; plus the dispatch table of ui/main.c.
"$STATION" --help >"$T/overview" 2>&1
cmds=$(sed -nE 's/^  ([a-z][a-z-]+)( ([a-z][a-z-]+))?([ ].*)?$/\1 \3/p' "$T/overview" |
	sed 's/ *$//' | sort -u)
cmds+=$'\n'$(grep -oE '\{"[a-z-]+", *ui_cmd_' "$TOP/ui/main.c" | cut -d'"' -f2)
cmds=$(printf '%s\n' "$cmds" | sed '/^$/d' | sort -u)
check "the overview lists commands ($(echo $cmds | wc -w) words)" \
	test "$(printf '%s\n' "$cmds" | wc -l)" -ge 11
missing=""
while read -r c; do
	[ -n "$c" ] || continue
	grep -Eq "^ $c( |$)" "$P1" || missing+=" '$c'"
done <<<"$cmds"
for c in pin help --version; do
	grep -Eq -- "(^| )$c( |$)" "$P1" || missing+=" '$c'"
done
check "station(1) describes every command${missing:+ (missing:$missing)}" \
	test -z "$missing"
st=$(sed -n '/^EXIT STATUS/,/^[A-Z]/p' "$P1")
missing=""
for c in 0 1 2 3 128+N; do
	grep -Eq "^ ${c/+/\\+}( |$)" <<<"$st" || missing+=" $c"
done
check "station(1) gives every exit code${missing:+ (missing:$missing)}" \
	test -z "$missing"
check "station(1) explains 130/143 after a signal" grep -q "130 for SIGINT" "$P1"

# Keys: each section of conf_rules with its key table, from the source.
src="$TOP/station/config.c"
man5=$(gzip -dc "$M5" | sed 's/\\-/-/g')
missing=""; nkeys=0
while read -r sect table; do
	keys=$(awk -v t="$table" '
		$0 ~ "cu_key_rule " t "\\[\\]" {on = 1}
		on { while (match($0, /\{"[a-z-]+"/)) {
			print substr($0, RSTART + 2, RLENGTH - 3)
			$0 = substr($0, RSTART + RLENGTH) } }
		on && /\};/ {exit}' "$src")
	body=$(awk -v s="$sect" '
		/^\.SH/ { on = index($0, "\"[" s) > 0; next } on' <<<"$man5")
	[ -n "$body" ] || missing+=" [$sect]"
	for k in $keys; do
		nkeys=$((nkeys + 1))
		grep -Eq "^\.B $k\$" <<<"$body" || missing+=" [$sect]$k"
	done
done < <(grep -oE '\{"[a-z]+", CU_[A-Z_]+, [0-9]+, [0-9]+, [a-z_]+\}' "$src" |
	sed -E 's/\{"([a-z]+)".* ([a-z_]+)\}/\1 \2/')
check "station/config.c's tables yield keys ($nkeys)" test "$nkeys" -ge 40
check "station.conf(5) documents every key in its section${missing:+ (missing:$missing)}" \
	test -z "$missing"
for w in duration "relative to the directory" "# after a value"; do
	check "station.conf(5) explains: $w" grep -q "$w" "$P5"
done

# --- the example configuration loads ---------------------------------------
if command -v openssl >/dev/null; then
	make_pki "$T/pki"
	E="$T/etc"; mkdir -p "$E/trust" "$T/data" "$T/media"; chmod 700 "$T/data"
	cp "$T/pki/station.key" "$T/pki/station.pem" "$E/"
	cp "$T/pki/roots.pem" "$E/trust/roots.pem"
	sed -e "s|^data = .*|data = $T/data|" -e "s|^media = .*|media = $T/media|" \
		"$R/usr/share/doc/station/examples/station.conf" >"$E/station.conf"
	out=$("$STATION" --config "$E/station.conf" journal 2>&1); rc=$?
	check "the example configuration loads (station journal: exit $rc)" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || printf '  | %s\n' "$out"
	missing=""
	while read -r sect table; do
		for k in $(awk -v t="$table" '
			$0 ~ "cu_key_rule " t "\\[\\]" {on = 1}
			on { while (match($0, /\{"[a-z-]+"/)) {
				print substr($0, RSTART + 2, RLENGTH - 3)
				$0 = substr($0, RSTART + RLENGTH) } }
			on && /\};/ {exit}' "$src"); do
			grep -Eq "^#?$k = " "$E/station.conf" || missing+=" $k"
		done
	done < <(grep -oE '\{"[a-z]+", CU_[A-Z_]+, [0-9]+, [0-9]+, [a-z_]+\}' "$src" |
		sed -E 's/\{"([a-z]+)".* ([a-z_]+)\}/\1 \2/')
	check "the example shows every key${missing:+ (missing:$missing)}" test -z "$missing"
else
	echo "note: openssl missing, the example configuration is not loaded"
fi

# --- systemd unit ------------------------------------------------------------
U="$R/usr/lib/systemd/system/station.service"
for l in 'ExecStart=/usr/bin/station --config /etc/station/station.conf' \
	 'TTYPath=/dev/tty1' 'StandardInput=tty' 'Conflicts=getty@tty1.service' \
	 'Restart=always' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
	 'PrivateTmp=yes' 'CapabilityBoundingSet=CAP_SYS_ADMIN'; do
	check "unit: $l" grep -qxF "$l" "$U"
done
check "unit: no PrivateDevices (the station needs USB, ttys, disks)" \
	bash -c "! grep -q '^PrivateDevices' '$U'"
if command -v systemd-analyze >/dev/null; then
	# Verified with ExecStart at the installed binary and the installed
	# pages for Documentation=.
	sed "s|/usr/bin/station|$R/usr/bin/station|" "$U" >"$T/station.service"
	out=$(MANPATH="$R/usr/share/man" systemd-analyze verify "$T/station.service" 2>&1); rc=$?
	check "systemd-analyze verify station.service" test "$rc" -eq 0 -a -z "$out"
	[ -z "$out" ] || printf '  | %s\n' "$out"
else
	echo "note: systemd-analyze not installed, the unit is not verified"
fi

# --- udev rules --------------------------------------------------------------
for f in "$R/usr/lib/udev/rules.d/60-station.rules" \
	 "$R/usr/share/doc/station/examples/71-station-media.rules"; do
	b=$(basename "$f")
	if command -v udevadm >/dev/null && udevadm verify --help >/dev/null 2>&1; then
		check "udevadm verify $b" udevadm verify "$f"
	else
		# udev(7): comma-separated KEY[{attr}] OP "value" items.
		item='[A-Z_]+(\{[A-Za-z0-9_]+\})?(==|!=|=|\+=|-=|:=)"[^"]*"'
		bad=$(grep -vE '^[[:space:]]*(#|$)' "$f" |
			grep -vE "^$item(, *$item)*\$")
		check "udev rules syntax of $b (line by line)" test -z "$bad"
		[ -z "$bad" ] || printf '  | %s\n' "$bad"
	fi
done
F="$R/usr/lib/udev/rules.d/60-station.rules"
check "udev: DFU interface (class fe, subclass 01) to group station" \
	grep -Eq 'ID_USB_INTERFACES\}=="\*:fe01\?\?:\*".*GROUP="station"' "$F"
check "udev: ttyUSB to group station" grep -Eq 'ttyUSB.*GROUP="station"' "$F"
check "udev: ttyACM to group station" grep -Eq 'ttyACM.*GROUP="station"' "$F"

# --- bash completion ---------------------------------------------------------
C="$R/usr/share/bash-completion/completions/station"
check "bash -n completion" bash -n "$C"
complete_words() { # complete_words WORD...: COMPREPLY for the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_station; printf "%s\n" "${COMPREPLY[@]}"' _ "$C" "$@"
}
check "completion: station rep -> report" \
	test "$(complete_words station rep)" = report
missing=""
for c in $(cut -d' ' -f1 <<<"$cmds" | sort -u); do
	complete_words station "${c:0:2}" | grep -qx "$c" || missing+=" $c"
done
check "completion offers every command${missing:+ (missing:$missing)}" test -z "$missing"
check "completion: station report e -> export" \
	test "$(complete_words station report e)" = export
o=$(complete_words station push --t)
check "completion: station push --t -> --technician" test "$o" = --technician

finish
