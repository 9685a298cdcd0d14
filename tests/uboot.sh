# tests/uboot.sh: boot Debian's qemu_arm64 U-Boot under qemu-system-aarch64
# with its console on a pty, and talk to its prompt (sourced after lib.sh
# by tests/e2e_uboot.sh and tests/bench_uboot.sh).  uboot_skip_reason says
# why it cannot run; uboot_boot sets PTY and holds the console on fd 3.
UBOOT_BIOS=/usr/lib/u-boot/qemu_arm64/u-boot.bin

# Prints why U-Boot cannot be booted here (empty when it can).
uboot_skip_reason() {
	local tool
	for tool in qemu-system-aarch64 timeout stty; do
		command -v "$tool" >/dev/null 2>&1 ||
			{ echo "$tool is not installed (make deps: qemu-system-arm)"; return; }
	done
	[ -r "$UBOOT_BIOS" ] || echo "$UBOOT_BIOS is missing (make deps: u-boot-qemu)"
}

CON= # console text since the last con_reset (CRs removed)
con_reset() { CON=; }
# con_until TEXT SECONDS: read the console until TEXT has appeared
con_until() {
	local end=$((SECONDS + $2)) chunk
	while :; do
		[[ $CON == *"$1"* ]] && return 0
		[ "$SECONDS" -ge "$end" ] && return 1
		chunk=
		IFS= read -r -t 0.3 -d '' -N 65536 -u 3 chunk
		CON+=${chunk//$'\r'/}
	done
}
# cmd LINE: type a command, wait for the next prompt; its output is in $CON
cmd() {
	con_reset
	printf '%s\r' "$1" >&3
	con_until $'\n=> ' 30
}

# uboot_boot: start qemu (killed on exit through lib.sh's PIDS), find its
# pty, stop autoboot and wait for the prompt.  0, or 1 with a message.
uboot_boot() {
	local i
	timeout 900 qemu-system-aarch64 -M virt -cpu cortex-a57 -m 256 \
		-display none -monitor none -nic none -serial pty \
		-bios "$UBOOT_BIOS" >"$T/qemu.out" 2>"$T/qemu.err" &
	PIDS+=($!)
	PTY=
	for ((i = 0; i < 100; i++)); do
		PTY=$(sed -n 's|.*redirected to \(/dev/pts/[0-9]*\).*|\1|p' "$T/qemu.out")
		[ -n "$PTY" ] && break
		sleep 0.1
	done
	[ -n "$PTY" ] || { echo "qemu named no pty: $(cat "$T/qemu.err")"; return 1; }
	# qemu drops console output while nobody holds the pty: open it at
	# once and keep it open.  Raw, no echo: an echo would go to U-Boot.
	exec 3<>"$PTY"
	stty -F "$PTY" raw -echo
	# Any key stops autoboot; a prompt already there answers another.
	for ((i = 0; i < 120; i++)); do
		printf '\r' >&3
		con_until '=> ' 1 && break
	done
	[[ $CON == *'=> '* ]] || { echo "no U-Boot prompt: ${CON: -300}"; return 1; }
	sleep 0.5
	IFS= read -r -t 0.5 -d '' -N 65536 -u 3 _ # prompts of the spare keys
	con_reset
}
