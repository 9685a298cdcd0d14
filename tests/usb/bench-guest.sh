# tests/usb/bench-guest.sh: runs inside the qemu guest as /payload/run.sh
# for tests/bench_usb.sh.  The same simulator, the same images, the same
# guest: dfu-util -D against `station push`, without readback (the
# simulator cannot upload) and with it, each with and without a busy poll
# timeout after every block.  Times are the best of two runs, read from
# /proc/uptime (10 ms resolution); the station's write time is the
# install's duration-ms from its journal (write, readback, reset), its
# whole time includes staging, signature checks and journaling.
export STATION_CONFIG=/payload/station.conf
export PATH=/usr/bin:/bin
P=/payload
PORT=3300
SIMPID=

wait_until() { n=$1; shift; while [ "$n" -gt 0 ]; do "$@" && return 0; usleep 100000; n=$((n - 1)); done; return 1; }
attached() { grep -qs 'imported as' "$1" && grep -qs '^1209$' /sys/bus/usb/devices/*/idVendor; }
gone() { ! grep -qs '^1209$' /sys/bus/usb/devices/*/idVendor; }
start_sim() { # LOG options...
	log=$1; shift
	PORT=$((PORT + 1))
	rm -rf /tmp/store && mkdir -p /tmp/store
	sim-dfu --store /tmp/store --port "$PORT" --attach "$@" 2>"$log" &
	SIMPID=$!
	wait_until 150 attached "$log" && usleep 300000
}
stop_sim() { kill "$SIMPID" 2>/dev/null; wait "$SIMPID" 2>/dev/null; wait_until 100 gone; }
up_cs() { cut -d' ' -f1 /proc/uptime | tr -d .; } # centiseconds
min() { [ "$1" -le "$2" ] && echo "$1" || echo "$2"; }
s() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

dfu_time() { # IMAGE SERIAL -> centiseconds
	t0=$(up_cs)
	dfu-util -d 1209:5744 -S "$2" -a 0 -D "$1" >/tmp/dfu.out 2>&1 || { echo "bench-error: dfu-util failed" >&2; tail -3 /tmp/dfu.out >&2; }
	echo $(($(up_cs) - t0))
}
push_time() { # BUNDLE SERIAL -> "whole write" in centiseconds
	t0=$(up_cs)
	station push --technician ana --reinstall --device "usb:$2" "$1" >/tmp/push.out 2>&1 || { echo "bench-error: push failed" >&2; tail -3 /tmp/push.out | sed 's/^/bench-error: /' >&2; }
	t1=$(up_cs)
	ms=$(station journal | tail -3 | sed -n 's/.*install-finished .*duration-ms=\([0-9]*\).*/\1/p')
	echo "$((t1 - t0)) $((${ms:-0} / 10))"
}

for busy in 0 1; do
	for size in 1 8; do
		b=$P/b$size
		img=$b/app$size.bin
		sn=SN-B$busy$size
		# dfu-util and the station with readback take turns on one
		# simulator; then the station without readback on the same
		# simulator that cannot upload.  Each serial is new to the
		# journal, so no push is refused as a downgrade.
		start_sim /tmp/sim.log --serial $sn --poll-ms $busy
		d1=$(dfu_time $img $sn)
		set -- $(push_time $b $sn); rw1=$1; rx1=$2
		d2=$(dfu_time $img $sn)
		set -- $(push_time $b $sn); rw2=$1; rx2=$2
		stop_sim
		start_sim /tmp/sim2.log --serial $sn-N --poll-ms $busy --no-upload
		set -- $(push_time $b $sn-N); nw1=$1; nx1=$2
		set -- $(push_time $b $sn-N); nw2=$1; nx2=$2
		stop_sim
		d=$(min $d1 $d2); rx=$(min $rx1 $rx2); nx=$(min $nx1 $nx2)
		rw=$(min $rw1 $rw2); nw=$(min $nw1 $nw2)
		echo "bench ${size} MiB, busy ${busy} ms/block: dfu-util -D $(s $d) s;" \
			"station write $(s $nx) s (ratio $(ratio $nx $d)), with readback $(s $rx) s (ratio $(ratio $rx $d));" \
			"whole push $(s $nw) s / $(s $rw) s with readback"
	done
done
exit 0
