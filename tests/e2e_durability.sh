#!/usr/bin/env bash
# tests/e2e_durability.sh: formats §7 and issue 7.2.  `station push` runs
# again and again against the simulated device and is killed with SIGKILL at
# random moments; so is `station report export`.  Afterwards the journal's
# chain still verifies, every install the command line reported ("installed
# ... (sequence S)", printed only after install-finished was committed) is in
# the journal, and every export the journal records left a complete report
# that verifies.  An acknowledged event is one whose append returned before
# the kill; tests/test_journal.c checks that at the API level, this through
# the real program.
. "$(dirname "$0")/lib.sh"

for tool in openssl; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
ROUNDS=${DURABILITY_ROUNDS:-30}
EXPORTS=${DURABILITY_EXPORTS:-8}

make_pki "$T/pki"
write_config "$T/station.conf" "$T/data" "$T/pki"
export STATION_CONFIG="$T/station.conf"

# One bundle per round, each a newer sequence, so each "installed" line
# names exactly one install.
for i in $(seq 0 "$ROUNDS"); do
	s=$((100 + i))
	sim_image "$T/app-$i.bin" "$s" "1.$i" 20000
	"$STATION" bundle create --name tx200-app --version "1.$i" --sequence "$s" \
		--model TX-200 --image "app=$T/app-$i.bin@0" "$T/b$i" >/dev/null
	"$STATION" sign --key "$T/pki/release1.key" --cert "$T/pki/release1.pem" \
		"$T/b$i/manifest" >/dev/null
done
printf 'format = station-device-1\nmodel = TX-200\nserial = SN-DUR\nsequence = 99\n' >"$T/dev.id"

sim_pid=
restart_sim() {
	[ -n "$sim_pid" ] && { kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; }
	rm -f "$T/dev.out"
	mkdir -p "$T/dev.store"
	"$SIM" --identity "$T/dev.id" --store "$T/dev.store" --link "$T/dev" \
		>"$T/dev.out" 2>>"$T/dev.log" &
	sim_pid=$!
	PIDS+=("$sim_pid")
	wait_for "$T/dev.out" || { echo "simulator did not start"; exit 1; }
}

ms() { date +%s%3N; }

# How long an undisturbed push takes sets the range of the kill delays.
restart_sim
t0=$(ms)
out=$("$STATION" push --technician ana --device "serial:$T/dev" "$T/b0" 2>&1); rc=$?
t1=$(ms)
check "an undisturbed push installs" test "$rc" -eq 0 || echo "$out"
span=$(( (t1 - t0) * 13 / 10 ))
[ "$span" -ge 20 ] || span=20
echo "one push takes $((t1 - t0)) ms; kills land in 0..$span ms"

acked=()
killed=0
for i in $(seq 1 "$ROUNDS"); do
	restart_sim
	"$STATION" push --technician ana --device "serial:$T/dev" "$T/b$i" \
		>"$T/push-$i.out" 2>"$T/push-$i.err" &
	pid=$!
	delay=$((RANDOM % span))
	sleep "$(printf '0.%03d' "$delay")"
	if kill -KILL "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
	wait "$pid" 2>/dev/null
	if grep -q "^installed tx200-app 1.$i (sequence $((100 + i)))" "$T/push-$i.out"; then
		acked+=("$((100 + i))")
	fi
done
echo "$killed of $ROUNDS pushes killed; ${#acked[@]} reported installed before the kill"

out=$("$STATION" journal --verify 2>&1); rc=$?
check "the journal chain verifies after $ROUNDS SIGKILLed pushes" \
	bash -c "[ $rc -eq 0 ] && grep -q 'journal chain verifies' <<<\"\$1\"" _ "$out" || echo "$out"
finished=$("$STATION" journal --type install-finished --serial SN-DUR)
missing=0
for s in "${acked[@]}"; do
	grep -q " sequence=$s " <<<"$finished" || { missing=$((missing + 1)); echo "lost: install of sequence $s"; }
done
check "every install the command line reported is in the journal (${#acked[@]})" test "$missing" -eq 0
check "some kills landed after the acknowledgement, some before" \
	bash -c "[ ${#acked[@]} -lt $ROUNDS ] || [ $killed -lt $ROUNDS ]"
unended=$(( $("$STATION" journal --type session-start | grep -c 'command=push') - \
	$("$STATION" journal --type session-end | wc -l) ))
echo "$unended push sessions were cut off before their session-end (the journal says so)"

# Exports killed at random moments: whatever the journal says was exported
# is on disk, complete and signed; nothing half-written carries a report's
# name and a signature.
mkdir -p "$T/out"
t0=$(ms)
"$STATION" report export --out "$T/out" >/dev/null 2>&1
t1=$(ms)
espan=$(( (t1 - t0) * 13 / 10 ))
[ "$espan" -ge 20 ] || espan=20
for i in $(seq 1 "$EXPORTS"); do
	sleep 1 # one report name per second
	"$STATION" report export --out "$T/out" >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' $((RANDOM % espan)))"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
done
exported=$("$STATION" journal --type report-exported | sed -n 's/.* report=\(report-[^ ]*\.json\) .*/\1/p')
bad=0
n=0
for r in $exported; do
	n=$((n + 1))
	"$STATION" report verify --trust "$T/pki/roots.pem" "$T/out/$r" >/dev/null 2>"$T/v.err" ||
		{ bad=$((bad + 1)); echo "journaled export $r does not verify: $(cat "$T/v.err")"; }
done
check "every journaled export ($n) left a report that verifies" test "$bad" -eq 0
unsigned=0
for r in "$T"/out/report-*.json; do
	[ -f "$r.sig" ] || continue
	"$STATION" report verify --trust "$T/pki/roots.pem" "$r" >/dev/null 2>&1 || unsigned=$((unsigned + 1))
done
check "no signed report on disk fails to verify" test "$unsigned" -eq 0
sleep 1
out=$("$STATION" report export --out "$T/out" 2>&1); rc=$?
check "an export after the kills succeeds" test "$rc" -eq 0 || echo "$out"
check "and the journal still verifies" bash -c "'$STATION' journal --verify >/dev/null"

finish
