#!/usr/bin/env bash
# tests/bench.sh: `make bench` runs every tests/bench_*.sh in turn.  Each
# prints its measurements as ratios against the tool a user would otherwise
# use, taken in the same run; none asserts, so none is part of `make check`.
set -u
cd "$(dirname "$0")/.."
status=0
for b in tests/bench_*.sh; do
	printf '\n### %s\n' "$b"
	bash "$b" || { echo "($b failed)"; status=1; }
done
exit $status
