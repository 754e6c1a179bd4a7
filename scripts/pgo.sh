#!/usr/bin/env bash
# Records the CPU profiles that the host and the Go plugins are built with
# (Go's profile-guided optimisation: the Makefile builds binary NAME with
# -pgo=pgo/NAME.pgo when there is one). They come from the load `make bench`
# measures, served on this machine:
#
#   proxy_reverse alone   1 KiB at 64 and 256 keep-alive connections, 64 KiB
#                         at 64, a new connection per request, and the static
#                         1 KiB file (the host)
#   with auth_header      1 KiB at 64 connections through mandril and
#                         auth_header (stage 20 on every request) and the
#                         proxy
#
# and each binary's profiles of both parts are merged into pgo/NAME.pgo
# (capuchin for the host). A profile of its own per binary: one merged
# profile for all would compile their dependencies once, but it made the
# proxy's hot path slower than its own profile does. A profile from a binary
# built with an older profile, or from slightly older code, still applies
# (Go matches functions by name and line offset); re-record after large
# changes to the request path.
#
#   scripts/pgo.sh [seconds per load, default 6]    (make pgo builds first)
#
# Server on core 0 with GOMAXPROCS=1, wrk and the backends on core 1, as
# scripts/bench.sh runs them; everything listens on 127.0.0.1 and is stopped
# when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-6}
for t in wrk openssl; do command -v $t >/dev/null || { echo "pgo: needs $t (apt-get install $t)"; exit 1; }; done
for b in bin/capuchin bin/demo-backend bin/plugins/proxy_reverse bin/plugins/mandril bin/plugins/auth_header; do
	[ -x "$b" ] || { echo "pgo: $b missing: run make build"; exit 1; }
done
PORT=18191 PPROF=18195 # the server's (HTTPS on PORT + TLSOFF) and its profiles' first port
tool=pgo
. scripts/benchlib.sh # processes, backends, site files, Capuchin's configuration

# profile NAME PLUGIN... -- LOAD...: runs the server with PLUGINs, records a
# CPU profile of the host and of each Go plugin but mandril over the LOADs
# (each "PATH CONNS [close]", DUR seconds) into $work/NAME-BINARY.pprof.
profile() {
	local name=$1 plugins=() loads=() env=(CAPUCHIN_PPROF=127.0.0.1:$PPROF) bins=(capuchin) i=1
	shift
	while [ "$1" != -- ]; do plugins+=("$1"); shift; done
	shift
	loads=("$@")
	for p in "${plugins[@]}" proxy_reverse; do
		[ "$p" != mandril ] || continue # asked about next to nothing: no profile worth a build of its own
		env+=("CAPUCHIN_PPROF_${p^^}=127.0.0.1:$((PPROF + i))") bins+=("$p") i=$((i + 1))
	done
	env "${env[@]}" GOMAXPROCS=1 taskset -c 0 ./bin/capuchin -c "$(capuchin_conf "$PORT" "${plugins[@]}")" 2>"$work/$name.log" &
	PID[$name]=$!
	wait_port "$PORT"
	for i in "${!bins[@]}"; do wait_port $((PPROF + i)); done
	taskset -c 1 wrk -t1 -c64 -d1s -H "Authorization: $TOKEN" "http://127.0.0.1:$PORT/api/x" >/dev/null
	local secs=$((DUR * ${#loads[@]})) fetch=()
	for i in "${!bins[@]}"; do
		curl -s --max-time $((secs + 30)) -o "$work/$name-${bins[$i]}.pprof" \
			"http://127.0.0.1:$((PPROF + i))/debug/pprof/profile?seconds=$secs" &
		fetch+=($!)
	done
	for l in "${loads[@]}"; do
		set -- $l
		local hdr=(-H "Authorization: $TOKEN")
		[ "${3:-}" != close ] || hdr+=(-H "Connection: close")
		echo "pgo: $name: $1 at $2 connections${3:+, $3}"
		timeout $((DUR + 30)) taskset -c 1 wrk -t1 -c"$2" -d"${DUR}s" "${hdr[@]}" "http://127.0.0.1:$PORT$1" >/dev/null
	done
	wait "${fetch[@]}"
	stop "$name"
}

site_files
start_backends

profile alone -- "/api/x 64" "/api/x 256" "/big/x 64" "/api/x 64 close" "/1k.txt 64"
profile stage20 mandril auth_header -- "/api/x 64"

mkdir -p pgo
for bin in $(cd "$work" && ls -- *.pprof | sed 's/^[^-]*-//; s/\.pprof$//' | sort -u); do
	out=pgo/$bin.pgo
	go tool pprof -proto "$work"/*-"$bin".pprof >"$out" 2>/dev/null || { echo "pgo: cannot merge the profiles of $bin"; exit 1; }
	echo "pgo: wrote $out"
done
