# Process helpers of scripts/bench.sh and scripts/pgo.sh, sourced after
# they set $tool (their name in messages): the processes a script starts
# go into PID (NAME -> pid) and are stopped when it ends, also on Ctrl-C;
# $work is its scratch directory (logs in $work/*.log), removed then.

declare -A PID=()
work=$(mktemp -d)
cleanup() {
	local p
	for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
	for _ in $(seq 50); do
		local alive=0
		for p in "${PID[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.2
	done
	for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT: until something listens on 127.0.0.1:PORT (10 s at most).
wait_port() {
	for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
	echo "$tool: nothing listens on port $1; the logs:"
	tail -n 20 "$work"/*.log >&2 || true
	exit 1
}

# stop NAME: SIGTERM, then SIGKILL after 10 s.
stop() {
	local p=${PID[$1]}
	kill "$p" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "PID[$1]"
}
