# What scripts/bench.sh and scripts/pgo.sh share, sourced after they set
# $tool (their name in messages): the processes a script starts go into PID
# (NAME -> pid) and are stopped when it ends, also on Ctrl-C; $work is its
# scratch directory (logs in $work/*.log), removed then. The four demo
# backends, the static site and Capuchin's configuration are the bench's,
# so that pgo.sh profiles the load the bench measures.

TOKEN="Bearer bench-token" # auth_header's token; wrk sends it to every server
PORTS_BE=(18081 18082 18083 18084) # 1 KiB: 18081-2, 64 KiB: 18083-4; stats: +100
TLSOFF=1000 # a server's HTTPS listener is on its port + TLSOFF

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

# start_backends: the four demo backends on core 1 (PORTS_BE), with their
# accept counters on port + 100.
start_backends() {
	local i p size
	for i in 0 1 2 3; do
		p=${PORTS_BE[$i]} size=1024
		[ "$i" -lt 2 ] || size=65536
		taskset -c 1 ./bin/demo-backend -listen 127.0.0.1:"$p" -stats 127.0.0.1:$((p + 100)) \
			-name "b$i" -size "$size" 2>"$work/backend-$p.log" &
		PID[backend$i]=$!
	done
	for p in "${PORTS_BE[@]}"; do wait_port "$p"; wait_port $((p + 100)); done
}

# site_files: $work/www/1k.txt, and one throwaway certificate for every
# HTTPS listener in $work/tls.
site_files() {
	mkdir -p "$work/www" "$work/tls"
	head -c 1024 /dev/zero | tr '\0' 'x' >"$work/www/1k.txt"
	chmod -R a+rX "$work/www"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null ||
		{ echo "$tool: openssl could not make the test certificate"; exit 1; }
	chmod -R a+rX "$work/tls"
}

# capuchin_conf PORT PLUGIN...: Workers 1, static files, proxy_reverse last;
# the plugins from $plugins_dir (default bin/plugins).
capuchin_conf() {
	local d=$work/capuchin-$1 port=$1
	shift
	mkdir -p "$d/sites"
	printf '[SERVER]\n    Listen 127.0.0.1:%s\n    Listen 127.0.0.1:%s tls\n    Workers 1\n    MaxKeepAliveRequest 1000000\n    KeepAliveTimeout 300\n' \
		"$port" $((port + TLSOFF)) >"$d/capuchin.conf"
	printf '[HOST]\n    DocumentRoot %s\n    TLSCertificate %s\n    TLSKey %s\n' "$work/www" "$work/tls/cert.pem" "$work/tls/key.pem" >"$d/sites/default"
	{
		printf '[PLUGINS]\n    Directory %s\n' "${plugins_dir:-$PWD/bin/plugins}"
		for p in "$@" proxy_reverse; do printf '    Load %s\n' "$p"; done
	} >"$d/plugins.load"
	printf '[PROXY_ENTRY]\n    ServerList 127.0.0.1:18081 127.0.0.1:18082\n    LoadBalancer Round-Robin\n    Match ^/api/\n' >"$d/proxy_reverse.conf"
	printf '[PROXY_ENTRY]\n    ServerList 127.0.0.1:18083 127.0.0.1:18084\n    LoadBalancer Round-Robin\n    Match ^/big/\n' >>"$d/proxy_reverse.conf"
	# mandril as its README configures it.
	printf '[MANDRIL]\n    DenyIP 203.0.113.0/24 2001:db8:bad::/48\n    DenyIP 198.51.100.7\n    DenyURL ^/private(/|$)\n    DenyURL \\.(bak|old|swp)$\n' >"$d/mandril.conf"
	printf '[AUTH_HEADER]\n    Token %s\n' "$TOKEN" >"$d/auth_header.conf"
	printf '[LOGGER]\n    AccessLog %s\n' "$d/access.log" >"$d/logger.conf" # its defaults otherwise
	echo "$d"
}
