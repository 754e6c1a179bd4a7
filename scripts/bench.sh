#!/usr/bin/env bash
# Compares Capuchin with nginx on this machine, side by side in one run:
# static 1 KiB file and proxied 1 KiB responses, keep-alive, 64 connections.
# Each server gets one core (taskset -c 0, one worker); wrk and the backends
# share the other core. Reports ratios to nginx, never a lone absolute number
# to compare across runs. Everything listens on 127.0.0.1 and stops by itself.
#
#   scripts/bench.sh [seconds per run, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-8}
CONNS=64
command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install wrk)"; exit 1; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "bench: needs nginx (apt-get install nginx-light)"; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/www" "$work/conf/sites" "$work/nginx"
head -c 1024 /dev/zero | tr '\0' 'x' > "$work/www/1k.txt"

# cpu_ticks PID...: user+system clock ticks of the processes and their children.
cpu_ticks() {
	local sum=0 p
	for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
		[ -r "/proc/$p/stat" ] && sum=$((sum + $(awk '{print $14+$15}' "/proc/$p/stat")))
	done
	echo "$sum"
}

# measure NAME URL PID: runs wrk, prints "NAME req/s cpu_us_per_req".
measure() {
	local name=$1 url=$2 pid=$3
	taskset -c 1 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 # warm up
	local t0; t0=$(cpu_ticks "$pid")
	local out; out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" "$url")
	local t1; t1=$(cpu_ticks "$pid")
	local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	local p99; p99=$(echo "$out" | awk '/Latency/ {print $2}')
	local hz; hz=$(getconf CLK_TCK)
	local us; us=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
	echo "$name $rps $us $p99"
}

wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not open"; exit 1; }

# Backends for the proxy runs.
taskset -c 1 ./bin/demo-backend -listen 127.0.0.1:18081 -name b1 -size 1024 2>/dev/null & pids+=($!)
taskset -c 1 ./bin/demo-backend -listen 127.0.0.1:18082 -name b2 -size 1024 2>/dev/null & pids+=($!)

# nginx: one worker, upstream keepalive, X-Forwarded-For like the others.
cat > "$work/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	upstream be { server 127.0.0.1:18081; server 127.0.0.1:18082; keepalive 64; }
	server {
		listen 127.0.0.1:18090;
		root $work/www;
		location /api/ {
			proxy_pass http://be;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
		}
	}
}
NGX
taskset -c 0 "$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>/dev/null & ngx=$!; pids+=($ngx)

# Capuchin: Workers 1, proxy_reverse on /api/ when the plugin is built.
cat > "$work/conf/capuchin.conf" <<CONF
[SERVER]
    Listen 127.0.0.1:18091
    Workers 1
    MaxKeepAliveRequest 1000000
CONF
printf '[HOST]\n    DocumentRoot %s\n' "$work/www" > "$work/conf/sites/default"
proxy=no
if [ -x bin/plugins/proxy_reverse ]; then
	proxy=yes
	printf '[PLUGINS]\n    Directory %s\n    Load proxy_reverse\n' "$PWD/bin/plugins" > "$work/conf/plugins.load"
	printf '[PROXY_ENTRY]\n    ServerList 127.0.0.1:18081 127.0.0.1:18082\n    LoadBalancer RoundRobin\n    Match ^/api/\n' > "$work/conf/proxy_reverse.conf"
fi
GOMAXPROCS=1 taskset -c 0 ./bin/capuchin -c "$work/conf" 2>"$work/capuchin.log" & cap=$!; pids+=($cap)
wait_port 18090; wait_port 18091; wait_port 18081; wait_port 18082

echo "duration ${DUR}s per run, $CONNS connections, servers on core 0, wrk and backends on core 1"
printf '%-22s %12s %14s %10s\n' run req/s "CPU us/req" latency
report() { printf '%-22s %12s %14s %10s\n' "$@"; }
ns=$(measure nginx-static http://127.0.0.1:18090/1k.txt "$ngx"); report $ns
cs=$(measure capuchin-static http://127.0.0.1:18091/1k.txt "$cap"); report $cs
if [ "$proxy" = yes ]; then
	np=$(measure nginx-proxy http://127.0.0.1:18090/api/x "$ngx"); report $np
	cp=$(measure capuchin-proxy http://127.0.0.1:18091/api/x "$cap"); report $cp
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "static: req/s x nginx $(ratio "$(echo "$cs" | cut -d' ' -f2)" "$(echo "$ns" | cut -d' ' -f2)"), CPU/req x nginx $(ratio "$(echo "$cs" | cut -d' ' -f3)" "$(echo "$ns" | cut -d' ' -f3)")"
if [ "$proxy" = yes ]; then
	echo "proxy:  req/s x nginx $(ratio "$(echo "$cp" | cut -d' ' -f2)" "$(echo "$np" | cut -d' ' -f2)"), CPU/req x nginx $(ratio "$(echo "$cp" | cut -d' ' -f3)" "$(echo "$np" | cut -d' ' -f3)")"
fi
