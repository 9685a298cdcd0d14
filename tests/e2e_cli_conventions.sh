#!/usr/bin/env bash
# tests/e2e_cli_conventions.sh: the command line's conventions (spec/cli.md,
# issue 15 item 11): --version; `help CMD` and `CMD -h`/`--help` print that
# command's usage and exit 0 for every command and subcommand of the table;
# a mistyped command gets "did you mean"; --since/--until take an RFC 3339
# time, a date or a duration; push shows rate and time left as it goes.
. "$(dirname "$0")/lib.sh"

# --- version and help ------------------------------------------------------
out=$("$STATION" --version); rc=$?
check "--version exits 0" test "$rc" -eq 0
check "--version prints 'station X.Y.Z'" \
	grep -Eqx 'station [0-9]+\.[0-9]+\.[0-9]+.*' <<<"$out"

for form in "help" "--help" "-h"; do
	out=$("$STATION" $form); rc=$?
	check "station $form exits 0" test "$rc" -eq 0
	check "station $form prints the overview" \
		grep -q "^usage: station \[--config FILE\]" <<<"$out"
done

mapfile -t cmds < <("$STATION" help --list)
check "help --list names the commands" test "${#cmds[@]}" -ge 12
for want in verify devices push media journal "report export" \
	"report verify" "bundle create" sign "custody add" "token issue" demo pin; do
	check "help --list has '$want'" grep -qx "$want" < <(printf '%s\n' "${cmds[@]}")
done
for cmd in "${cmds[@]}"; do
	# shellcheck disable=SC2086
	h=$("$STATION" help $cmd); rc=$?
	check "help $cmd exits 0" test "$rc" -eq 0
	check "help $cmd prints its usage" grep -q "^usage: station $cmd" <<<"$h"
	for flag in -h --help; do
		# shellcheck disable=SC2086
		o=$("$STATION" $cmd $flag 2>&1); rc=$?
		check "$cmd $flag exits 0" test "$rc" -eq 0
		check "$cmd $flag prints the same usage" test "$o" = "$h"
	done
	# Help wins wherever it cannot be an option's value, before the
	# command looks at anything.
	# shellcheck disable=SC2086
	o=$("$STATION" $cmd -h --no-such-option 2>&1); rc=$?
	check "$cmd -h --no-such-option is help (exit 0)" test "$rc" -eq 0
	# shellcheck disable=SC2086
	o=$("$STATION" $cmd x --help 2>&1); rc=$?
	check "$cmd x --help is help (exit 0)" test "$rc" -eq 0
	check "help $cmd fits 80 columns" \
		test -z "$(awk 'length($0) > 80' <<<"$h")"
done
out=$("$STATION" help report); rc=$?
check "help report prints both subcommands" \
	test "$rc" -eq 0 -a "$(grep -c '^usage: station report' <<<"$out")" -eq 2
out=$("$STATION" help nosuch 2>&1); rc=$?
check "help nosuch is a usage error (exit 2)" test "$rc" -eq 2
check "... naming the word" grep -q "unknown command 'nosuch'" <<<"$out"

# --- did you mean ----------------------------------------------------------
out=$("$STATION" verfy x 2>&1); rc=$?
check "a mistyped command exits 2" test "$rc" -eq 2
check "... and suggests the command" \
	grep -qx "station: unknown command 'verfy'; did you mean 'verify'?" <<<"$out"
out=$("$STATION" jounral 2>&1)
check "a transposition is suggested too" grep -q "did you mean 'journal'?" <<<"$out"
out=$("$STATION" report exprot 2>&1); rc=$?
check "a mistyped subcommand exits 2 with a suggestion" \
	test "$rc" -eq 2 -a -n "$(grep "did you mean 'export'?" <<<"$out")"
out=$("$STATION" zzzzzz 2>&1); rc=$?
check "a word near nothing gets no suggestion" \
	test "$rc" -eq 2 -a -z "$(grep 'did you mean' <<<"$out")"

# --- a station with a journal, a bundle and a simulated unit ---------------
for tool in openssl; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"
sim_image "$T/app.bin" 42 2.4.1 300000
"$STATION" bundle create --name tx200-app --version 2.4.1 --sequence 42 \
	--model TX-200 --hardware revB --image app=$T/app.bin@0 "$T/good" >/dev/null
"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
	--label rel1 "$T/good/manifest" >/dev/null
"$STATION" verify "$T/good" >/dev/null 2>&1
check "verify wrote journal events" test -n "$("$STATION" journal)"

# --- --since / --until -----------------------------------------------------
# The events' own time gives the day D they fall on (so the test holds
# across midnight); the day before and after bound them from outside.
t=$("$STATION" journal --json | grep -o '"time":"[^"]*"' | tail -1 | cut -d'"' -f4)
D=${t%%T*}
before=$(date -u -d "$D - 1 day" +%F)
after=$(date -u -d "$D + 1 day" +%F)
n_all=$("$STATION" journal | wc -l)
count() { # the number of bundle-verified events, "error" when refused
	local o
	o=$("$STATION" journal "$@" 2>&1) || { echo error; return; }
	grep -c ' bundle-verified ' <<<"$o"
}
check "the journal has events (time $t)" test "$n_all" -gt 0 -a -n "$D"
check "--since RFC 3339 time includes the events" test "$(count --since "$t")" -ge 1
check "--since DATE (the day) includes the events" test "$(count --since "$D")" -ge 1
check "--until DATE (the same day) includes them: a date ends at 23:59:59" \
	test "$(count --until "$D")" -ge 1
check "--since D --until D is the whole day" \
	test "$(count --since "$D" --until "$D")" -ge 1
check "--until the day before excludes them" test "$(count --until "$before")" -eq 0
check "--since the day after excludes them" test "$(count --since "$after")" -eq 0
check "--since 1h includes events just written" test "$(count --since 1h)" -ge 1
check "--since 30m includes them" test "$(count --since 30m)" -ge 1
check "--until 1h excludes them" test "$(count --until 1h)" -eq 0
check "--since 7d includes them" test "$(count --since 7d)" -ge 1
for bad in yesterday 2026-13-01 24 -24h 1.5h; do
	out=$("$STATION" journal --since "$bad" 2>&1); rc=$?
	check "--since '$bad' is a usage error naming it" \
		test "$rc" -eq 2 -a -n "$(grep -F "bad --since time '$bad'" <<<"$out")"
done
out=$("$STATION" journal --since 1h --until 2h 2>&1); rc=$?
check "--since after --until is a usage error" test "$rc" -eq 2
mkdir -p "$T/rep/day" "$T/rep/dur" "$T/rep/before"
out=$("$STATION" report export --out "$T/rep/day" --since "$D" --until "$D" --json 2>&1); rc=$?
check "report export takes dates" test "$rc" -eq 0; [ "$rc" -eq 0 ] || echo "$out"
# (No events that day: the refusal names the range it read.)
out=$("$STATION" report export --out "$T/rep/before" --since "$before" --until "$before" 2>&1)
check "report export --until DATE ends at that day's last second" \
	grep -q "between ${before}T00:00:00Z and ${before}T23:59:59Z" <<<"$out"
out=$("$STATION" report export --out "$T/rep/dur" --since 1h --json 2>&1); rc=$?
check "report export takes a duration" test "$rc" -eq 0; [ "$rc" -eq 0 ] || echo "$out"

# --- progress with rate and time left --------------------------------------
printf 'format = station-device-1\nmodel = TX-200\nhardware = revB\nserial = SN-0001\nsequence = 41\nversion = 2.4.0\n' >"$T/dev1.id"
start_sim dev1 "$T/dev1.id"
"$STATION" push --technician ana --device "serial:$T/dev1" "$T/good" \
	>"$T/push.out" 2>"$T/push.err"; rc=$?
check "push to the simulator exits 0" test "$rc" -eq 0 || cat "$T/push.err"
prog='^ +[0-9]+%  [0-9.]+ (B|KiB|MiB) of [0-9.]+ (B|KiB|MiB)  ([0-9.]+ (B|KiB|MiB)|-)/s'
check "progress lines show bytes done, total and rate" grep -Eq "$prog" "$T/push.err"
check "... and time left while writing" \
	grep -Eq "$prog  ([0-9]+m)?[0-9]+s left$" "$T/push.err" || cat "$T/push.err"
check "... and reach 100%" grep -Eq '^ +100%  ' "$T/push.err"
nprog=$(grep -Ec "$prog" "$T/push.err")
check "not a terminal: a few plain lines, not one per block ($nprog)" \
	test "$nprog" -ge 2 -a "$nprog" -le 40
check "not a terminal: no carriage returns" test -z "$(grep -c $'\r' "$T/push.err" | grep -v '^0$')"

# On a terminal: one line redrawn in place (script(1) gives a pty).
if command -v script >/dev/null; then
	"$STATION" push --technician ana --reinstall --device "serial:$T/dev1" "$T/good" \
		2>/dev/null >/dev/null # warm: nothing checked
	script -qec "'$STATION' push --technician ana --reinstall --device 'serial:$T/dev1' '$T/good' >/dev/null" \
		/dev/null >"$T/tty.out" 2>&1
	check "on a terminal the progress line is redrawn with \\r" \
		grep -q $'\r  *[0-9]*%  .*/s' "$T/tty.out"
	check "... and shows time left" grep -q 's left' "$T/tty.out"
fi


# A -h that may be an option's value is left to the command: a script's
# `--reason -h` must not exit 0 having written nothing.
"$STATION" token issue --reason -h >/dev/null 2>&1; rc=$?
check "token issue --reason -h is not help (not exit 0)" test "$rc" -ne 0
"$STATION" journal --json -h >/dev/null 2>&1; rc=$?
check "journal --json -h is a usage error, not help" test "$rc" -eq 2

finish
