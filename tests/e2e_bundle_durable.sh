#!/usr/bin/env bash
# tests/e2e_bundle_durable.sh: `station bundle create` makes the bundle
# durable: after its files are written and fsynced, the bundle directory
# is fsynced (its entries) and so is the directory that holds it (the
# bundle's own entry), so a power cut after it reports success cannot leave
# a bundle without its files.  strace -y shows which directory each fsync
# names.
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || { echo "skip: strace not installed"; exit 77; }
strace -o /dev/null true 2>/dev/null ||
	{ echo "skip: strace cannot trace here (ptrace denied)"; exit 77; }

mkdir -p "$T/out"
sim_image "$T/app.bin" 7 "1.0" 4000
strace -f -y -e trace=fsync -o "$T/trace" \
	"$STATION" bundle create --name d --version 1.0 --sequence 7 \
	--model TX-200 --image "app=$T/app.bin@0" "$T/out/b/" >/dev/null
out=$(cd "$T/out" && pwd -P)

check "the manifest is fsynced" \
	grep -q "fsync([0-9]*<$out/b/manifest>) = 0" "$T/trace"
check "the bundle directory is fsynced" \
	grep -q "fsync([0-9]*<$out/b>) = 0" "$T/trace"
check "the directory holding the bundle is fsynced" \
	grep -q "fsync([0-9]*<$out>) = 0" "$T/trace"
# The directory syncs come after the last file's.
last_file=$(grep -n "<$out/b/" "$T/trace" | tail -1 | cut -d: -f1)
dir_sync=$(grep -n "fsync([0-9]*<$out/b>)" "$T/trace" | tail -1 | cut -d: -f1)
check "the bundle directory is fsynced after its files" \
	test "${dir_sync:-0}" -gt "${last_file:-0}"
finish
