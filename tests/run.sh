#!/usr/bin/env bash
# Runs every cmocka suite (build/tests/test_*) and every end-to-end script
# (tests/e2e_*.sh), each bounded in time, and prints one closing tally.
# A script exits 0 when it passed, 77 when it skipped (with a reason printed),
# anything else when it failed.  Each passing suite says how long it took,
# so the check's time budget (about 25 minutes on 2 cores) can be kept.
set -u
BUILD=${BUILD:-build}
export BUILD
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
passed=0 failed=0 skipped=0
failures=()

run_one() {
	local name=$1 limit=$2; shift 2
	local log rc start secs
	log=$(mktemp)
	start=$(date +%s)
	timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) passed=$((passed + 1)); printf 'PASS  %s (%d s)\n' "$name" "$secs" ;;
	77) skipped=$((skipped + 1)); printf 'SKIP  %s: %s\n' "$name" "$(tail -n 1 "$log")" ;;
	*) failed=$((failed + 1)); failures+=("$name")
	   printf 'FAIL  %s (exit %d)\n' "$name" "$rc"; sed 's/^/      /' "$log" | tail -n 60 ;;
	esac
	# cmocka's own counts are worth keeping in the log.
	grep -E '^\[  (PASSED|FAILED)  \]' "$log" | sed 's/^/      /'
	rm -f "$log"
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" 300 "$t"
done
for s in tests/e2e_*.sh; do
	[ -f "$s" ] || continue
	run_one "$(basename "$s")" 600 bash "$s"
done

if [ ${#failures[@]} -gt 0 ]; then
	printf 'failed: %s\n' "${failures[*]}"
fi
printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
