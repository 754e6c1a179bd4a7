#!/usr/bin/env bash
# Compares Capuchin with nginx and HAProxy on this machine, side by side in
# one run, and prints ratios (the absolute figures beside them say little
# across runs or machines):
#
#   static   1 KiB file, 64 connections: nginx (open_file_cache on) and Capuchin
#   proxied  1 KiB at 64 and 256 connections, 64 KiB at 64, 1 KiB at one
#            connection (p99 latency): nginx, HAProxy and Capuchin's
#            proxy_reverse alone, with mandril loaded before it (configured as
#            its README does), with auth_header (a stage-20 check of every
#            request) and with logger (an access log in its default format;
#            nginx and HAProxy log nothing); and, at 1 KiB and 64 and 256 connections, the three
#            loops of scripts/floorproxy, a Go proxy with no features: the
#            floor of CPU per request for a Go process on this machine; and
#            its featured loop, the floor with the proxy's per-request work
#            added: what the features cost, and what Capuchin's structure
#            costs beyond them
#   think    proxied 1 KiB, 1024 keep-alive connections that each wait THINK
#            (300) ms between an answer and the next request: clients with
#            think time, whose connections sit idle between requests
#            (nginx, HAProxy, proxy_reverse alone)
#   pause    the same with 512 connections that each wait PAUSE (1000) ms:
#            longer than the 500 ms a leased connection is held idle, so that
#            each request finds its connection given back to the host
#   newconn  proxied 1 KiB with a new connection per request, 64 connections
#            (nginx, HAProxy, proxy_reverse alone)
#   HTTPS    proxied 1 KiB over keep-alive TLS, and a new TLS connection per
#            request (static 1 KiB, Connection: close: full handshakes per
#            second), 64 connections: nginx and Capuchin with the same
#            certificate (ECDSA P-256) on a second listener (port + 1000),
#            TLS 1.2 and 1.3, each server's default ciphers, session tickets
#   memory   resident MiB per 1,000 idle keep-alive client connections, held
#            after one proxied request each (host and plugins together),
#            measured once they have been idle for SETTLE (3) seconds
#
# For each proxied run it also counts the new connections the proxy opened to
# the backends. Runs are interleaved (A B C, A B C, ...) over several rounds,
# so noise shows as the min-max spread of each ratio. Servers run on core 0
# with one worker or thread each; wrk, the backends and the memory test's
# client on core 1. Everything listens on 127.0.0.1, is stopped when the
# script ends (also on Ctrl-C) and every step is bounded in time.
#
#   scripts/bench.sh [seconds per run, default 5] [rounds, default 3]
#   BENCH_QUICK=1 scripts/bench.sh     # 1 s runs, 1 round, 2,000 idle connections
#   BENCH_IDLE=N                       # idle connections of the memory test (10000; 0: no memory test)
#   BENCH_CASES=REGEX                  # only the cases whose name matches, e.g. 'proxy-1k' or '1c$'
#   BENCH_SERVERS=REGEX                # only the servers whose name matches, e.g. '^(nginx|capuchin)$'
#   BENCH_AB=FILE                      # A/B: only paired runs of Capuchin's proxy alone with its
#                                      # bin/plugins/proxy_reverse against Capuchin with FILE as
#                                      # proxy_reverse ("capuchin-ab"), at the CPU targets' cases
#                                      # and, when BENCH_CASES names them, static, newconn, think,
#                                      # pause and HTTPS
#   BENCH_AB_HOST=FILE                 # the same with FILE as the host of "capuchin-ab" (alone or
#                                      # with BENCH_AB)
#
# Needs the binaries (make build; make bench does both) and installs wrk,
# nginx-light and haproxy with apt-get when they are missing (root or sudo),
# without starting their system services.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	DUR=${1:-1} ROUNDS=${2:-1} IDLE=${BENCH_IDLE:-2000}
else
	DUR=${1:-5} ROUNDS=${2:-3} IDLE=${BENCH_IDLE:-10000}
fi
declare -A PORT=([nginx]=18090 [haproxy]=18092 [capuchin]=18091 [capuchin+mandril]=18093 [capuchin+auth_header]=18094
	[capuchin-ab]=18095 [floor-goroutine]=18096 [floor-raw]=18097 [floor-epoll]=18098 [capuchin+logger]=18099
	[floor-featured]=18088)
declare -A MEMPORT=([nginx]=18190 [haproxy]=18192 [capuchin]=18191)
SETTLE=3    # seconds the memory test's connections are left idle before measuring
THINK=300   # ms a -think case's connections wait between an answer and the next request
PAUSE=1000  # ms a -pause case's connections wait (beyond the SDK's idle hold of a lease)

# --- tools ---------------------------------------------------------------

# install PKG...: apt-get install without starting the packages' services.
install() {
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	command -v apt-get >/dev/null || { echo "bench: needs $*; install them (no apt-get here)"; exit 1; }
	echo "bench: installing $* with apt-get"
	local rc=/usr/sbin/policy-rc.d made=
	if [ ! -e "$rc" ]; then # Debian's way to keep services from starting on install
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$rc" >/dev/null && $sudo chmod 755 "$rc" && made=1
	fi
	local ok=0 apt="$sudo env DEBIAN_FRONTEND=noninteractive apt-get"
	$apt install -y -qq "$@" >/dev/null || { $apt update -qq && $apt install -y -qq "$@" >/dev/null; } || ok=$?
	[ -z "$made" ] || $sudo rm -f "$rc"
	[ "$ok" = 0 ] || { echo "bench: apt-get install $* failed"; exit 1; }
}

have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
missing=()
have wrk || missing+=(wrk)
have nginx || missing+=(nginx-light)
have haproxy || missing+=(haproxy)
have openssl || missing+=(openssl)
[ ${#missing[@]} = 0 ] || install "${missing[@]}"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
for b in bin/capuchin bin/demo-backend bin/idleconns bin/floorproxy bin/plugins/proxy_reverse bin/plugins/mandril bin/plugins/auth_header bin/plugins/logger; do
	[ -x "$b" ] || { echo "bench: $b missing: run make bench (or make build, then go build -o bin/NAME ./scripts/NAME for idleconns and floorproxy)"; exit 1; }
done
for p in "${PORTS_BE[@]}" "${PORT[@]}" "${MEMPORT[@]}"; do
	if (echo >/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then echo "bench: port $p is in use"; exit 1; fi
done

# Each idle connection takes a descriptor in the client and one in the
# server; HAProxy reserves two per connection (client and server side).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
max_idle=$(( ((NOFILE - 100) / 2 - 500) / 1000 * 1000 ))
if [ "$IDLE" -gt "$max_idle" ]; then
	echo "bench: open-file limit $NOFILE (HAProxy needs two per connection): memory test with $max_idle connections"
	IDLE=$max_idle
fi
MAXCONN=$(( (IDLE > 1000 ? IDLE : 1000) + 500 )) # nginx's and HAProxy's connection limit

LOAD0=$(cut -d' ' -f1 /proc/loadavg) # other work on the machine skews the run

# --- processes -------------------------------------------------------------

tool=bench
. scripts/benchlib.sh # processes, backends, site files, Capuchin's configuration
chmod 755 "$work" # nginx's worker (nobody when started as root) reads www

# accepts: connections the four backends have accepted so far.
accepts() {
	local sum=0 p n
	for p in "${PORTS_BE[@]}"; do
		n=$(curl -s --max-time 5 "http://127.0.0.1:$((p + 100))/" | awk '{print $2}')
		sum=$((sum + ${n:-0}))
	done
	echo "$sum"
}

# nginx_conf PORT: one worker, listeners "deferred" (as Capuchin's DeferAccept,
# on by default, and HAProxy's defer-accept below), open_file_cache, and an upstream keep-alive
# cache large enough for every backend connection the runs use (1,024, for
# 256 clients over two backends), never retired by request count, as Capuchin's pool and HAProxy's do: with nginx's usual "keepalive
# 64" and its 1,000 requests per upstream connection it opens hundreds to
# thousands of backend connections per run, and that would be its cost, not
# the proxying's.
nginx_conf() {
	local d=$work/nginx-$1
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<NGX
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections $((NOFILE - 100)); }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_timeout 300s;
	keepalive_requests 1000000;
	open_file_cache max=1000 inactive=20s;
	open_file_cache_valid 1s;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	upstream api { server 127.0.0.1:18081; server 127.0.0.1:18082; keepalive 1024; keepalive_requests 1000000; }
	upstream big { server 127.0.0.1:18083; server 127.0.0.1:18084; keepalive 1024; keepalive_requests 1000000; }
	server {
		listen 127.0.0.1:$1 deferred;
		listen 127.0.0.1:$(($1 + TLSOFF)) ssl deferred;
		ssl_certificate $work/tls/cert.pem;
		ssl_certificate_key $work/tls/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_session_tickets on;
		root $work/www;
		proxy_http_version 1.1;
		proxy_set_header Connection "";
		proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
		proxy_set_header X-Forwarded-Proto \$scheme;
		proxy_set_header X-Forwarded-Host \$host;
		location /api/ { proxy_pass http://api; }
		location /big/ { proxy_pass http://big; }
	}
}
NGX
	echo "$d"
}

# haproxy_conf PORT: one thread, defer-accept, http-reuse always, option forwardfor, and
# X-Forwarded-Proto and X-Forwarded-Host, as Capuchin and nginx send them.
haproxy_conf() {
	local f=$work/haproxy-$1.cfg
	cat >"$f" <<HAP
global
	nbthread 1
	maxconn $MAXCONN
defaults
	mode http
	maxconn $MAXCONN
	option forwardfor
	http-reuse always
	timeout connect 5s
	timeout client 300s
	timeout server 60s
	timeout http-request 15s
	timeout http-keep-alive 300s
frontend fe
	bind 127.0.0.1:$1 defer-accept
	http-request set-header X-Forwarded-Proto http
	http-request set-header X-Forwarded-Host %[req.hdr(host)]
	use_backend big if { path_beg /big/ }
	default_backend api
backend api
	balance roundrobin
	server b1 127.0.0.1:18081
	server b2 127.0.0.1:18082
backend big
	balance roundrobin
	server b3 127.0.0.1:18083
	server b4 127.0.0.1:18084
HAP
	echo "$f"
}

# start NAME PORT: starts server NAME (nginx, haproxy, capuchin[+PLUGIN]) on
# core 0, listening on PORT; its pid goes to PID[NAME].
start() {
	local name=$1 port=$2 c
	case $name in
	nginx)
		c=$(nginx_conf "$port")
		taskset -c 0 "$NGINX" -p "$c" -e "$c/error.log" -c "$c/nginx.conf" 2>"$work/$name-$port.log" & ;;
	haproxy)
		c=$(haproxy_conf "$port")
		"$HAPROXY" -c -q -f "$c" || { echo "bench: bad HAProxy configuration $c"; exit 1; }
		taskset -c 0 "$HAPROXY" -db -f "$c" 2>"$work/$name-$port.log" & ;;
	capuchin-ab) # proxy_reverse alone, from BENCH_AB and BENCH_AB_HOST
		mkdir -p "$work/ab-plugins"
		cp "${BENCH_AB:-bin/plugins/proxy_reverse}" "$work/ab-plugins/proxy_reverse"
		c=$(plugins_dir=$work/ab-plugins capuchin_conf "$port")
		GOMAXPROCS=1 taskset -c 0 "${BENCH_AB_HOST:-./bin/capuchin}" -c "$c" 2>"$work/$name-$port.log" & ;;
	floor-*) # scripts/floorproxy: no features, the floor of a Go proxy's CPU per request (featured: with them)
		GOMAXPROCS=1 taskset -c 0 ./bin/floorproxy -loop "${name#floor-}" -listen 127.0.0.1:"$port" 2>"$work/$name-$port.log" & ;;
	capuchin*)
		local plugins=${name#capuchin}
		c=$(capuchin_conf "$port" ${plugins//+/ })
		GOMAXPROCS=1 taskset -c 0 ./bin/capuchin -c "$c" 2>"$work/$name-$port.log" & ;;
	esac
	PID[$name@$port]=$!
	wait_port "$port"
}

# tree PID: the process and its children (nginx's worker, Capuchin's plugins).
tree() { echo "$1"; pgrep -P "$1" || true; }

# cpu_ticks PID: user+system clock ticks of the process and its children.
cpu_ticks() {
	local sum=0 p
	for p in $(tree "$1"); do
		[ -r "/proc/$p/stat" ] && sum=$((sum + $(awk '{print $14+$15}' "/proc/$p/stat")))
	done
	echo "$sum"
}

# rss_kb PID [children|self]: resident KiB of the process and its children.
rss_kb() {
	local sum=0 p ps
	ps=$(tree "$1")
	[ "${2:-}" != self ] || ps=$1
	for p in $ps; do
		[ -r "/proc/$p/status" ] && sum=$((sum + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
	done
	echo "$sum"
}

# --- measurements -----------------------------------------------------------

RESULTS=$work/results
: >"$RESULTS"

# to_us "1.23ms": wrk's latency in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "ms") n *= 1000; else if (u == "s") n *= 1e6; else if (u == "m") n *= 6e7
		printf "%.0f", n }'
}

# load SECONDS CONNS URL [wrk options]: wrk on core 1, one thread, CONNS
# connections for SECONDS, with auth_header's token; bounded in time.
load() {
	local secs=$1 conns=$2 url=$3
	shift 3
	timeout $((secs + 30)) taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" -H "Authorization: $TOKEN" "$@" "$url"
}

# wrk_rps and wrk_p99: the req/s and the p99 latency (µs; --latency) of
# the wrk output on stdin, 0 when it has none.
wrk_rps() { awk '/Requests\/sec/ {r = $2} END {print r == "" ? 0 : r}'; }
wrk_p99() { to_us "$(awk '$1 == "99%" {print $2}')"; }

# per_request TICKS REQUESTS: CPU microseconds per request.
HZ=$(getconf CLK_TCK)
per_request() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }'; }

# case_url CASE PORT PATH: the URL of PATH for CASE on a server's PORT (a
# tls- case: its HTTPS listener).
case_url() {
	if [[ $1 == tls-* ]]; then echo "https://127.0.0.1:$(($2 + TLSOFF))$3"; else echo "http://127.0.0.1:$2$3"; fi
}

# set_opts CASE: OPTS, wrk's options for CASE (see measure).
set_opts() {
	OPTS=(--latency)
	[[ $1 != *-newconn* ]] || OPTS+=(-H "Connection: close")
	[[ $1 != *-think* ]] || OPTS+=(-s "$work/think.lua")
	[[ $1 != *-pause* ]] || OPTS+=(-s "$work/pause.lua")
}

# measure ROUND CASE SERVER PATH CONNS: one wrk run after a 1 s warm-up;
# appends "run ROUND CASE SERVER req/s CPU-us/req p99-us new-backend-conns errors".
# A tls- case goes to the server's HTTPS listener; a -newconn case closes
# the connection after every request; a -think case waits THINK ms on each
# connection between an answer and the next request (a client with think
# time: its keep-alive connection is idle between requests), a -pause case
# PAUSE ms.
measure() {
	local round=$1 case=$2 name=$3 path=$4 conns=$5
	local port=${PORT[$name]} pid=${PID[$3@${PORT[$3]}]}
	local url
	url=$(case_url "$case" "$port" "$path")
	set_opts "$case"
	load 1 "$conns" "$url" "${OPTS[@]}" >/dev/null 2>&1 || true
	local a0 t0 out t1 a1
	a0=$(accepts)
	t0=$(cpu_ticks "$pid")
	out=$(load "$DUR" "$conns" "$url" "${OPTS[@]}") || { echo "bench: wrk failed against $name $url" >&2; return 0; }
	t1=$(cpu_ticks "$pid")
	a1=$(accepts)
	local rps reqs p99 errs
	rps=$(echo "$out" | wrk_rps)
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	p99=$(echo "$out" | wrk_p99)
	errs=$(echo "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) n += $i} END {print n + 0}')
	awk -v r="$round" -v c="$case" -v s="$name" -v rps="$rps" -v cpu="$(per_request $((t1 - t0)) "${reqs:-0}")" \
		-v p99="$p99" -v a=$((a1 - a0)) -v e="$errs" \
		'BEGIN { printf "run %s %s %s %.0f %s %s %d %d\n", r, c, s, rps, cpu, p99, a, e }' >>"$RESULTS"
	tail -n 1 "$RESULTS" | awk '{printf "  %-16s %-22s %9s req/s %7s us/req  p99 %7s us  %4s new backend conns%s\n", $3, $4, $5, $6, $7, $8, $9 ? "  " $9 " ERRORS" : ""}'
}

# paired ROUND CASE PATH CONNS A B: servers A and B loaded at once, each by its own wrk with CONNS
# connections, so that both run on core 0 through the same moments of the
# machine; appends "pair ROUND CASE A-CPU-us/req B-CPU-us/req A-req/s B-req/s A B A-p99-us B-p99-us".
# The two share the core, so their req/s say little; their CPU per request
# is measured under the same conditions, and its ratio is the one that holds
# up on a noisy machine (two copies of one server, paired so, agree within
# 1.5 % where the runs one after another differ by 10 % and more).
paired() {
	local round=$1 case=$2 path=$3 conns=$4 a=$5 b=$6 s wrks=()
	local -A t0 t1
	set_opts "$case"
	for s in "$a" "$b"; do
		load 1 "$conns" "$(case_url "$case" "${PORT[$s]}" "$path")" "${OPTS[@]}" >/dev/null 2>&1 &
		wrks+=($!)
	done
	wait "${wrks[@]}" 2>/dev/null || true
	for s in "$a" "$b"; do t0[$s]=$(cpu_ticks "${PID[$s@${PORT[$s]}]}"); done
	wrks=()
	for s in "$a" "$b"; do
		load "$DUR" "$conns" "$(case_url "$case" "${PORT[$s]}" "$path")" "${OPTS[@]}" >"$work/pair-$s.out" 2>&1 &
		wrks+=($!)
	done
	wait "${wrks[@]}" 2>/dev/null || true
	for s in "$a" "$b"; do t1[$s]=$(cpu_ticks "${PID[$s@${PORT[$s]}]}"); done
	local n out line="pair $round $case" rps="" p99=""
	for s in "$a" "$b"; do
		out=$work/pair-$s.out
		n=$(awk '/requests in/ {print $1}' "$out")
		[ "${n:-0}" -gt 0 ] || { echo "bench: paired wrk failed against $s" >&2; return 0; }
		line+=" $(per_request $((t1[$s] - t0[$s])) "$n")"
		rps+=" $(wrk_rps <"$out")" p99+=" $(wrk_p99 <"$out")"
	done
	line+="$rps $a $b$p99"
	echo "$line" >>"$RESULTS"
	echo "$line" | awk '{printf "  %-16s %-22s %s %7s us/req, %s %7s us/req: %.2f×; p99 %s %s us, %s %s us\n", "paired", $3, $8, $4, $9, $5, $5 / $4, $8, $10, $9, $11}'
}

# memory ROUND NAME: a fresh server, one proxied request, then IDLE idle
# keep-alive connections each after one proxied request; appends
# "mem ROUND NAME KiB-before KiB-after held failed still-open host-KiB-before host-KiB-after".
memory() {
	local round=$1 name=$2 port=${MEMPORT[$2]}
	start "$name" "$port"
	local pid=${PID[$name@$port]}
	curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$port/api/x" || true
	sleep 1
	local b0 h0 out=$work/idle.out
	b0=$(rss_kb "$pid") h0=$(rss_kb "$pid" self)
	: >"$out"
	taskset -c 1 ./bin/idleconns -addr 127.0.0.1:"$port" -path /api/x -n "$IDLE" -hold 180s >"$out" 2>>"$work/idleconns.log" &
	local ic=$!
	for _ in $(seq 1200); do grep -q '^ready' "$out" && break; kill -0 "$ic" 2>/dev/null || break; sleep 0.1; done
	sleep "$SETTLE" # idle, as between a client's requests: Capuchin parks connections idle for 500 ms
	local b1 h1
	b1=$(rss_kb "$pid") h1=$(rss_kb "$pid" self)
	kill "$ic" 2>/dev/null || true
	wait "$ic" 2>/dev/null || true
	local ready alive
	ready=$(awk '/^ready/ {print $2, $3}' "$out")
	alive=$(awk '/^alive/ {print $2}' "$out")
	echo "mem $round $name $b0 $b1 ${ready:-0 0} ${alive:-0} $h0 $h1" >>"$RESULTS"
	stop "$name@$port"
	tail -n 1 "$RESULTS" | awk '{printf "  %-16s %-22s %6.0f MiB with %s idle connections (%.1f before), %s failed, %s still open at the end\n", "memory", $3, $5 / 1024, $6, $4 / 1024, $7, $8}'
}

# --- the run -----------------------------------------------------------------

echo "function delay() return $THINK end" >"$work/think.lua"
echo "function delay() return $PAUSE end" >"$work/pause.lua"
site_files
start_backends
PROXIES=(nginx haproxy capuchin capuchin+mandril capuchin+auth_header capuchin+logger)
# FLOORS: proxies with no features (scripts/floorproxy), beside the others
# in the 1 KiB cases at 64 and 256 connections: what any Go proxy costs here,
# with a goroutine per connection (through net.Conn, and with the raw system
# calls of Capuchin's lease) and with one epoll loop; and floor-featured,
# the raw one with the proxy's per-request work (scripts/floorproxy
# -loop featured): the yardstick between the floor and Capuchin.
FLOORS=(floor-goroutine floor-raw floor-epoll floor-featured)
# PAIRS: the cases run paired too (see paired), "CASE-REGEX A B": the CPU
# targets' cases with nginx and Capuchin and with nginx and each floor, the
# stage-20 target's with the proxy alone and capuchin+auth_header (and
# an access log's, capuchin+logger, at 64 and 256 connections), the
# p99 target's (one connection) with nginx and Capuchin, and the 1 KiB case
# at 8 and 1,024 connections with nginx, Capuchin and floor-raw: how CPU
# per request grows with the connections each server keeps busy.
PAIRS=("^proxy-(1k-8c|1k-64c|1k-256c|1k-1024c|64k-64c|1k-1c)$ nginx capuchin" "^proxy-1k-64c$ capuchin capuchin+auth_header"
	"^proxy-1k-(64c|256c)$ capuchin capuchin+logger"
	"^proxy-1k-(64c|256c)$ nginx floor-goroutine" "^proxy-1k-(8c|64c|256c|1024c)$ nginx floor-raw" "^proxy-1k-(64c|256c)$ nginx floor-epoll"
	"^proxy-1k-(64c|256c)$ nginx floor-featured")
AB=
if [ -n "${BENCH_AB:-}${BENCH_AB_HOST:-}" ]; then
	for f in ${BENCH_AB:-} ${BENCH_AB_HOST:-}; do
		[ -x "$f" ] || { echo "bench: $f (BENCH_AB or BENCH_AB_HOST) is not an executable file"; exit 1; }
	done
	AB=capuchin-ab PROXIES=(capuchin capuchin-ab) FLOORS=()
	ab_cases='proxy-(1k-64c|1k-256c|64k-64c)' # the CPU targets'; the others only when BENCH_CASES is given
	[ -z "${BENCH_CASES:-}" ] || ab_cases='proxy-(1k-64c|1k-256c|64k-64c|newconn-64c|1k-1024c-think|1k-512c-pause)|static-1k-64c|tls-.*'
	PAIRS=("^($ab_cases)$ capuchin capuchin-ab")
fi
for s in "${PROXIES[@]}" "${FLOORS[@]}"; do start "$s" "${PORT[$s]}"; done
# expect CODE SERVER PATH [curl options]: the server answers PATH with CODE.
expect() {
	local want=$1 s=$2 path=$3 code
	shift 3
	code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@" "http://127.0.0.1:${PORT[$s]}$path") || true
	[ "$code" = "$want" ] || { echo "bench: $s answers $path with ${code:-nothing}, not $want; the logs:"; tail -n 20 "$work"/*.log; exit 1; }
}
# Every server answers before anything is measured; auth_header checks.
for s in "${PROXIES[@]}" "${FLOORS[@]}"; do
	for path in /api/x /big/x; do expect 200 "$s" "$path" -H "Authorization: $TOKEN"; done
done
if [ -z "$AB" ]; then
	expect 200 nginx /1k.txt
	expect 200 capuchin /1k.txt
	for s in nginx capuchin; do # the HTTPS listeners
		code=$(curl -sk --max-time 5 -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" "https://127.0.0.1:$((PORT[$s] + TLSOFF))/api/x") || true
		[ "$code" = 200 ] || { echo "bench: $s answers https /api/x with ${code:-nothing}, not 200; the logs:"; tail -n 20 "$work"/*.log; exit 1; }
	done
	expect 401 capuchin+auth_header /api/x
fi

# CASES: name, path, connections, servers.
CASES=(
	"static-1k-64c /1k.txt 64 nginx capuchin $AB"
	"proxy-1k-64c /api/x 64 ${PROXIES[*]} ${FLOORS[*]}"
	"proxy-64k-64c /big/x 64 ${PROXIES[*]}"
	"proxy-1k-256c /api/x 256 ${PROXIES[*]} ${FLOORS[*]}"
	"proxy-1k-8c /api/x 8 nginx capuchin floor-raw"
	"proxy-1k-1024c /api/x 1024 nginx capuchin floor-raw"
	"proxy-1k-1c /api/x 1 ${PROXIES[*]}"
	"proxy-1k-1024c-think /api/x 1024 nginx haproxy capuchin $AB"
	"proxy-1k-512c-pause /api/x 512 nginx haproxy capuchin $AB"
	"proxy-newconn-64c /api/x 64 nginx haproxy capuchin $AB"
	"tls-proxy-1k-64c /api/x 64 nginx capuchin $AB"
	"tls-newconn-64c /1k.txt 64 nginx capuchin $AB"
)
runs=0 sel=()
for c in "${CASES[@]}"; do
	set -- $c
	[[ $1 =~ ${BENCH_CASES:-.} ]] || continue
	cs="$1 $2 $3"
	shift 3
	for s in "$@"; do
		if [[ $s =~ ${BENCH_SERVERS:-.} ]]; then cs+=" $s" runs=$((runs + 1)); fi
	done
	sel+=("$cs")
done
# The PAIRS are run when both their servers are selected; with BENCH_AB or
# BENCH_AB_HOST they are all that runs.
pairs=()
for c in "${sel[@]}"; do
	set -- $c
	for p in "${PAIRS[@]}"; do
		read -r re a b <<<"$p"
		if [[ $1 =~ $re && " $* " == *" $a "* && " $* " == *" $b "* ]]; then
			pairs+=("$1 $2 $3 $a $b") runs=$((runs + 1))
		fi
	done
done
if [ -n "$AB" ]; then
	sel=() runs=${#pairs[@]} IDLE=0
fi
mem=()
for s in nginx haproxy capuchin; do
	if [ "$IDLE" -gt 0 ] && [[ $s =~ ${BENCH_SERVERS:-.} ]]; then mem+=("$s"); fi
done
echo "bench: $ROUNDS round(s) of $runs runs of ${DUR}s (+1 s warm-up) and a memory test with $IDLE idle connections per server;"
echo "       about $(( (ROUNDS * (runs * (DUR + 2) + ${#mem[@]} * (IDLE / 1000 + 8)) + 59) / 60 )) min. Servers on core 0, wrk and backends on core 1."
for round in $(seq "$ROUNDS"); do
	echo "round $round of $ROUNDS"
	for c in "${sel[@]}"; do
		set -- $c
		name=$1 path=$2 conns=$3
		shift 3
		for s in "$@"; do measure "$round" "$name" "$s" "$path" "$conns"; done
	done
	for c in "${pairs[@]}"; do paired "$round" $c; done
	for s in "${mem[@]}"; do memory "$round" "$s"; done
done
model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
machine="$(nproc) cores (${model:-unknown CPU}), Linux $(uname -r); $(./bin/capuchin -v 2>&1 | head -n 1), \
$("$NGINX" -v 2>&1 | sed 's/.*version: //'), HAProxy $("$HAPROXY" -v | awk 'NR == 1 {print $3}'), $( (wrk -v 2>&1 || true) | awk 'NR == 1 {print $1, $2}')"
report=bin/bench.md
cmd="scripts/bench.sh $DUR $ROUNDS"
for v in BENCH_CASES BENCH_SERVERS BENCH_AB BENCH_AB_HOST; do [ -z "${!v:-}" ] || cmd="$v='${!v}' $cmd"; done
[ "$IDLE" = 10000 ] || cmd="BENCH_IDLE=$IDLE $cmd"
{
	echo "- Machine: $machine."
	load=$(cut -d' ' -f1 /proc/loadavg)
	echo "- Load average (1 min): $LOAD0 before the run, $load at its end."
	if awk -v l="$LOAD0" 'BEGIN { exit !(l > 0.5) }'; then
		echo "- **Other work was running: req/s ratios are unreliable (a server with more threads gets a larger share of"
		echo "  a contended core); CPU per request, backend connections and memory hold up better. Re-run on an idle machine.**"
	fi
	echo "- Command: $cmd (make bench runs scripts/bench.sh with the defaults: 5 s per run, 3 rounds)."
	echo
	./scripts/bench-report.awk -v rounds="$ROUNDS" -v dur="$DUR" -v idle="$IDLE" "$RESULTS"
} >"$report"
echo
cat "$report"
echo
echo "bench: these tables are in $report (for README.md's Performance section)"
