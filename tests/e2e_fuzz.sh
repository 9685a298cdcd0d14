#!/usr/bin/env bash
# tests/e2e_fuzz.sh: a short, bounded run of every libFuzzer target over its
# seed corpus (the long run is `make fuzz`), plus the seeds a
# tests/fixtures_NAME.sh makes with the real program when there is one.  A crash, leak or sanitizer
# report fails the suite and leaves the reproducer in the log.
set -u
cd "$(dirname "$0")/.."
shopt -s nullglob
targets=(build-fuzz/fuzz_*)
[ ${#targets[@]} -gt 0 ] || { echo "skip: no fuzz targets built (clang missing?)"; exit 77; }
# Undefined behaviour is a failure here, not a line in a log.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fail=0
for f in "${targets[@]}"; do
	name=${f#build-fuzz/fuzz_}
	work=$(mktemp -d)
	cp tests/corpus/"$name"/* "$work"/ 2>/dev/null
	# Seeds a fixture script makes from the real program (the reports of
	# tests/fixtures_report.sh) join the committed ones.
	if [ -f tests/fixtures_"$name".sh ] &&
		bash tests/fixtures_"$name".sh "$work/fx" >/dev/null 2>&1; then
		for s in "$work"/fx/*.json; do cp "$s" "$work/seed-$(basename "$s")"; done
	fi
	rm -rf "$work/fx"
	if "$f" -runs=30000 -max_len=70000 -artifact_prefix="$work/" "$work" >"$work/log" 2>&1; then
		echo "ok   fuzz $name: $(grep -o 'Done [0-9]* runs' "$work/log")"
	else
		echo "FAIL fuzz $name"; tail -30 "$work/log"; fail=1
	fi
	rm -rf "$work"
done
exit $fail
