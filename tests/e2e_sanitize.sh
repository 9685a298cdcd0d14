#!/usr/bin/env bash
# tests/e2e_sanitize.sh: untrusted text never reaches the terminal raw
# (issue 11 item 14).  A bundle directory whose name holds ESC and a
# newline, and a device whose `error` line holds terminal escapes, are
# quoted in refusals with visible escapes (ui/common.h): the output holds
# no ESC byte and no line the attacker wrote.  Both also hold a byte that
# is not UTF-8 (0xff): the refusal is still journaled, with the byte as
# \xff (docs/journal.md, "Event types"), not turned into a journal error.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"
ESC=$'\033'

no_esc() { ! grep -q "$ESC" "$1"; }

# --- a bundle directory named with ESC and a newline --------------------------
sim_image "$T/app.bin" 42 2.4.1 4000
B="$T/evil${ESC}[2J${ESC}]0;owned"$'\a\xff\n'"station verify: accepted"
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --image "app=$T/app.bin@0" "$B" >/dev/null 2>&1
check "setup: the oddly named bundle exists" test -f "$B/manifest"
"$STATION" verify "$B" >"$T/v.out" 2>"$T/v.err"; rc=$?
check "the unsigned bundle is refused (exit 1), not a journal error" \
	test "$rc" -eq 1
check "the refusal is not about the journal" \
	bash -c "! grep -q 'cannot journal' '$T/v.err'"
"$STATION" journal --type bundle-refused --json >"$T/v.json" 2>&1
check "the refusal is journaled, its 0xff byte as \\xff" \
	grep -qF 'owned\u0007\\xff\u000astation verify: accepted' "$T/v.json"
check "the journal still verifies" "$STATION" journal --verify >/dev/null
check "the refusal names the directory with visible escapes" \
	grep -qF 'evil\x1b[2J\x1b]0;owned\x07\xff\nstation verify: accepted' "$T/v.err"
check "no ESC byte reaches stderr" no_esc "$T/v.err"
check "no ESC byte reaches stdout" no_esc "$T/v.out"
check "the name's newline does not start a line of its own" \
	bash -c "! grep -q '^station verify: accepted' '$T/v.err' '$T/v.out'"

# --- a device whose error line holds escapes -----------------------------------
cat >"$T/evildev.py" <<'PY'
import os, pty, sys, time
master, slave = pty.openpty()
import tty; tty.setraw(slave)
os.symlink(os.ttyname(slave), sys.argv[1])
open(sys.argv[1] + ".ready", "w").close()
buf = b""
end = time.time() + 30
while time.time() < end:
    try:
        data = os.read(master, 256)
    except OSError:
        break
    buf += data
    while b"\n" in buf or b"\r" in buf:
        i = min(x for x in (buf.find(b"\n"), buf.find(b"\r")) if x >= 0)
        line, buf = buf[:i], buf[i + 1:]
        if line.strip():
            os.write(master, b"error \x1b[2J\x1b[H\x1b]0;owned\x07\xc2\x9b31m fake\xff\r\n")
PY
python3 "$T/evildev.py" "$T/evil" &
PIDS+=($!)
wait_for "$T/evil.ready" || true
sleep 0.2
cp -r "$B" "$T/plain"
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
	--label rel1 "$T/plain/manifest" >/dev/null
"$STATION" push --technician ana --device "serial:$T/evil" "$T/plain" \
	>"$T/p.out" 2>"$T/p.err"; rc=$?
check "the device's refusal fails the push" test "$rc" -ne 0
check "as a device error, not a journal error" \
	bash -c "! grep -q 'cannot journal' '$T/p.err'"
check "its error line is shown with visible escapes" \
	grep -qF 'device refused `info`: \x1b[2J\x1b[H\x1b]0;owned\x07\u{009b}31m fake' "$T/p.err"
check "no ESC byte from the device reaches stderr" no_esc "$T/p.err"
check "no C1 CSI (U+009B) reaches stderr" \
	bash -c "! grep -q $'\xc2\x9b' '$T/p.err'"
check "the device's error is journaled as it came, for the auditor" \
	bash -c "'$STATION' journal --type device-error --json | grep -qF 'u001b[2J'"
check "its 0xff byte is journaled as \\xff" \
	bash -c "'$STATION' journal --type device-error --json | grep -qF 'fake\\\\xff'"
out=$("$STATION" journal --type device-error 2>&1)
check "and station journal prints it escaped" bash -c "! grep -q '$ESC' <<<\"\$1\"" _ "$out"
finish
