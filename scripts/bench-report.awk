#!/usr/bin/awk -f
# Turns scripts/bench.sh's results into Markdown tables: per case and server
# the median over rounds, each ratio as "median (min–max)" over the rounds
# (computed round by round, so a slow round slows both sides), and the
# targets of issue 9 with "met" or "NOT met". Input lines:
#
#   run ROUND CASE SERVER REQ/S CPU-US/REQ P99-US NEW-BACKEND-CONNS ERRORS
#   mem ROUND SERVER KIB-BEFORE KIB-AFTER HELD FAILED STILL-OPEN HOST-KIB-BEFORE HOST-KIB-AFTER
#   pair ROUND CASE A-CPU-US/REQ B-CPU-US/REQ A-REQ/S B-REQ/S A B A-P99-US B-P99-US   (A and B loaded at once)
#
# Variables: rounds, dur (seconds per run), idle (connections of the memory test).

$1 == "run" {
	k = $3 SUBSEP $4
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k; if ($4 ~ /^capuchin\+/) nplug++ }
	if (!($3 in cseen)) { cseen[$3] = 1; corder[++nc] = $3 }
	rps[k, $2] = $5; cpu[k, $2] = $6; p99[k, $2] = $7; conns[k, $2] = $8; errs[k, $2] = $9
	if ($9 > 0) errors += $9
}
$1 == "pair" {
	k = $3 SUBSEP $8 SUBSEP $9
	if (!(k in pseen)) { pseen[k] = 1; porder[++np] = k }
	pa[k, $2] = $4; pb[k, $2] = $5
	if ($4 > 0) pr[k, $2] = $5 / $4
	if ($10 > 0) pl[k, $2] = $11 / $10
}
$1 == "mem" {
	if (!($3 in mseen)) { mseen[$3] = 1; morder[++nm] = $3 }
	k = $3
	if ($6 > 0) {
		per[k, $2] = ($5 - $4) / 1024 / ($6 / 1000)
		hostper[k, $2] = ($10 - $9) / 1024 / ($6 / 1000)
	}
	total[k, $2] = $5 / 1024; held[k, $2] = $6; failed[k, $2] += $7; open[k, $2] = $8
}

# sort a[1..n] ascending (insertion sort: a handful of rounds).
function sort(a, n,   i, j, v) {
	for (i = 2; i <= n; i++) {
		v = a[i]
		for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
		a[j + 1] = v
	}
}
function median(a, n) {
	sort(a, n)
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# collect(arr, key): arr's values for key over the rounds into vals[1..n].
function collect(arr, key,   r, n) {
	n = 0
	for (r = 1; r <= rounds; r++) if ((key, r) in arr) vals[++n] = arr[key, r] + 0
	return n
}
# ratios(arr, key, ref): arr[key]/arr[ref] round by round into vals[1..n].
function ratios(arr, key, ref,   r, n) {
	n = 0
	for (r = 1; r <= rounds; r++)
		if ((key, r) in arr && (ref, r) in arr && arr[ref, r] > 0) vals[++n] = arr[key, r] / arr[ref, r]
	return n
}
# spread(n, f): "median (min–max)" of vals[1..n] with printf format f.
function spread(n, f,   m) {
	if (n == 0) return "–"
	m = median(vals, n)
	if (n == 1) return sprintf(f, m)
	return sprintf(f " (" f "–" f ")", m, vals[1], vals[n])
}
function med(arr, key,   n) { n = collect(arr, key); return n ? median(vals, n) : "" }
function ratio(arr, c, s, ref,   n) {
	if (s == ref || !((c SUBSEP ref) in seen)) return "–"
	return spread(ratios(arr, c SUBSEP s, c SUBSEP ref), "%.2f")
}
function medratio(arr, c, s, ref,   n) {
	n = ratios(arr, c SUBSEP s, c SUBSEP ref)
	return n ? median(vals, n) : -1
}
function label(c) {
	if (c == "static-1k-64c") return "static 1 KiB, 64 conns"
	if (c == "proxy-1k-64c") return "proxied 1 KiB, 64 conns"
	if (c == "proxy-64k-64c") return "proxied 64 KiB, 64 conns"
	if (c == "proxy-1k-256c") return "proxied 1 KiB, 256 conns"
	if (c == "proxy-1k-1c") return "proxied 1 KiB, 1 conn"
	if (c == "proxy-1k-8c") return "proxied 1 KiB, 8 conns"
	if (c == "proxy-1k-1024c") return "proxied 1 KiB, 1024 conns"
	if (c == "proxy-1k-1024c-think") return "proxied 1 KiB, 1024 conns, 300 ms between requests"
	if (c == "proxy-1k-512c-pause") return "proxied 1 KiB, 512 conns, 1 s between requests"
	if (c == "proxy-newconn-64c") return "proxied 1 KiB, new connection per request, 64 conns"
	if (c == "tls-proxy-1k-64c") return "HTTPS proxied 1 KiB, keep-alive, 64 conns"
	if (c == "tls-newconn-64c") return "HTTPS new connection per request (full handshake), static 1 KiB, 64 conns"
	return c
}
# times(r, lim): "1.05×"; three decimals where two would show the limit
# itself (a ratio of 1.004 against "≤ 1.0" reads 1.004×, not 1.00×).
function times(r, lim,   t) {
	t = sprintf("%.2f", r)
	if (t + 0 == lim && r != lim) t = sprintf("%.3f", r)
	return t "×"
}
# check(text, ok, value): one target line.
function check(text, ok, value) {
	printf "- %s: %s — %s\n", text, value, ok ? "met" : "**NOT met**"
}

END {
	if (nk) runs()
	if (nplug) plugins()
	if (np) pairs()
	if (nm) memory()
	targets()
}

function runs(   i, p, c, s, k) {
	printf "%d round(s) of %d s per run. Each ratio is the median over rounds, with min–max in brackets; CPU is\n", rounds, dur
	printf "user+system time of the server's processes (Capuchin: host and plugins) per request. Lower is better for\n"
	printf "CPU, p99 and connections; higher for req/s. New backend conns: connections the proxy opened to the\n"
	printf "backends during one run (after a 1 s warm-up), median over rounds.\n\n"
	print "| case | server | req/s | req/s × nginx | req/s × HAProxy | CPU µs/req | CPU × nginx | CPU × HAProxy | p99 ms | p99 × nginx | new backend conns |"
	print "| --- | --- | ---: | --- | --- | ---: | --- | --- | ---: | --- | ---: |"
	for (i = 1; i <= nk; i++) {
		split(order[i], p, SUBSEP); c = p[1]; s = p[2]; k = order[i]
		printf "| %s | %s | %.0f | %s | %s | %.1f | %s | %s | %.2f | %s | %s |\n", label(c), s,
			med(rps, k), ratio(rps, c, s, "nginx"), ratio(rps, c, s, "haproxy"),
			med(cpu, k), ratio(cpu, c, s, "nginx"), ratio(cpu, c, s, "haproxy"),
			med(p99, k) / 1000, ratio(p99, c, s, "nginx"), c ~ /^static/ ? "–" : med(conns, k)
	}
	print ""
}

function plugins(   i, p, c, s) {
	print "Plugins on the request path, against Capuchin's proxy alone in the same rounds:"
	print ""
	print "| case | plugins loaded | req/s × proxy alone | CPU × proxy alone | p99 × proxy alone |"
	print "| --- | --- | --- | --- | --- |"
	for (i = 1; i <= nk; i++) {
		split(order[i], p, SUBSEP); c = p[1]; s = p[2]
		if (s !~ /^capuchin\+/) continue
		printf "| %s | %s before proxy_reverse | %s | %s | %s |\n", label(c), substr(s, 10),
			ratio(rps, c, s, "capuchin"), ratio(cpu, c, s, "capuchin"), ratio(p99, c, s, "capuchin")
	}
	print ""
}

function pairs(   i, p) {
	print "CPU per request with two servers loaded at once, each by its own wrk, both on core 0: the ratio"
	print "measured through the same moments of the machine, which holds up where runs one after another are"
	print "spread by the machine's noise (capuchin: the proxy alone; capuchin+auth_header, capuchin+logger: with auth_header, logger before it;"
	print "capuchin-ab: the proxy alone with BENCH_AB's plugin; floor-goroutine, floor-raw and floor-epoll: scripts/floorproxy,"
	print "a Go proxy with no features, with a goroutine per connection through net.Conn, the same with the raw system calls"
	print "of Capuchin's lease, and one epoll loop; floor-featured: the raw one with the proxy's per-request work, none of the"
	print "SDK's structure). The p99 latency of each is measured through the same moments too."
	print ""
	print "| case | servers (A, B) | A CPU µs/req | B CPU µs/req | CPU B × A | p99 B × A |"
	print "| --- | --- | ---: | ---: | --- | --- |"
	for (i = 1; i <= np; i++) {
		split(porder[i], p, SUBSEP)
		printf "| %s | %s, %s | %.1f | %.1f | %s | %s |\n", label(p[1]), p[2], p[3], med(pa, porder[i]), med(pb, porder[i]),
			spread(collect(pr, porder[i]), "%.2f"), spread(collect(pl, porder[i]), "%.2f")
	}
	print ""
}

function memory(   i, s, hp) {
	printf "Memory: resident MiB per 1,000 idle keep-alive client connections, each held after one proxied request\n"
	printf "(the growth of the server's resident memory, host and plugins together, from one connection to %d,\n", idle
	printf "measured once they have been idle for 3 s):\n\n"
	print "| server | MiB per 1,000 connections | of which host process | resident MiB with all held | connections held / still open at the end |"
	print "| --- | --- | --- | ---: | --- |"
	for (i = 1; i <= nm; i++) {
		s = morder[i]
		hp = s ~ /^capuchin/ ? spread(collect(hostper, s), "%.2f") : "–"
		printf "| %s | %s | %s | %.0f | %s / %s |\n", s, spread(collect(per, s), "%.2f"), hp, med(total, s), med(held, s), med(open, s)
	}
	print ""
}

function targets(   r, q, cs, j, c, a, b, n, m) {
	print "Targets of issue 9 (medians over rounds):"
	print ""
	r = medratio(rps, "proxy-1k-64c", "capuchin+mandril", "capuchin")
	if (r >= 0) check("mandril before proxy_reverse: req/s ≥ 0.8× proxy alone (1 KiB, 64 conns)", r >= 0.8, times(r, 0.8))
	r = medratio(rps, "proxy-1k-64c", "capuchin+auth_header", "capuchin")
	q = medratio(cpu, "proxy-1k-64c", "capuchin+auth_header", "capuchin")
	if (r >= 0) check("stage-20 plugin on every request: req/s ≥ 0.7× and CPU ≤ 1.5× proxy alone (1 KiB, 64 conns)", r >= 0.7 && q <= 1.5, times(r, 0.7) ", " times(q, 1.5))
	c = "proxy-1k-64c" SUBSEP "capuchin" SUBSEP "capuchin+auth_header"
	if (collect(pr, c)) { q = med(pr, c); check("stage-20 plugin on every request: CPU ≤ 1.5× proxy alone, loaded at once (1 KiB, 64 conns)", q <= 1.5, times(q, 1.5)) }
	split("proxy-1k-64c proxy-1k-256c", cs, " ")
	for (j = 1; j <= 2; j++) {
		c = cs[j]
		a = med(conns, c SUBSEP "capuchin"); b = med(conns, c SUBSEP "nginx")
		# "no more than nginx, order of tens per run, not thousands"
		if (a != "" && b != "") check("new backend conns ≤ nginx's, or under 100 (" label(c) ")", a <= b || a < 100, sprintf("%d vs %d", a, b))
	}
	split("proxy-1k-64c proxy-1k-256c proxy-64k-64c", cs, " ")
	for (j = 1; j <= 3; j++) {
		c = cs[j]
		r = medratio(rps, c, "capuchin", "nginx"); q = medratio(cpu, c, "capuchin", "nginx")
		if (r >= 0) check("proxy alone: req/s ≥ 1.0× and CPU ≤ 1.0× nginx (" label(c) ")", r >= 1 && q <= 1, times(r, 1) ", " times(q, 1))
	}
	for (j = 1; j <= 3; j++) {
		c = cs[j] SUBSEP "nginx" SUBSEP "capuchin"
		if (!collect(pr, c)) continue
		q = med(pr, c)
		check("proxy alone: CPU ≤ 1.0× nginx, loaded at once (" label(cs[j]) ")", q <= 1, times(q, 1))
	}
	floors()
	scaling()
	r = medratio(rps, "tls-proxy-1k-64c", "capuchin", "nginx")
	if (r >= 0) check("HTTPS proxy, keep-alive: req/s ≥ 0.8× nginx (issue 12; " label("tls-proxy-1k-64c") ")", r >= 0.8, times(r, 0.8))
	r = medratio(p99, "proxy-1k-1c", "capuchin", "nginx")
	if (r >= 0) check("proxy alone: p99 ≤ nginx's (" label("proxy-1k-1c") ")", r <= 1, times(r, 1))
	c = "proxy-1k-1c" SUBSEP "nginx" SUBSEP "capuchin"
	if (collect(pl, c)) { q = med(pl, c); check("proxy alone: p99 ≤ nginx's, loaded at once (" label("proxy-1k-1c") ")", q <= 1, times(q, 1)) }
	n = collect(per, "capuchin")
	if (n) { m = median(vals, n); check("memory: ≤ 2 MiB per 1,000 idle connections, host and plugins", m <= 2, sprintf("%.2f MiB", m)) }
	if (errors > 0) printf "\n**%d failed requests (non-2xx answers or socket errors) in the runs: the numbers above are suspect.**\n", errors
}

# floors: the reference lines of scripts/floorproxy's pairs with nginx (not targets).
function floors(   line) {
	line = floorline("floor-goroutine:goroutine per connection,floor-raw:the same with raw calls,floor-epoll:epoll loop")
	if (line != "") printf "- For reference (not a target): a Go proxy with no features (scripts/floorproxy), CPU × nginx, loaded at once: %s\n", line
	line = floorline("floor-raw:floor-raw,floor-featured:floor-featured,capuchin:capuchin")
	if (line != "") printf "- For reference (not a target): the features' cost and the structure's, CPU × nginx, loaded at once (floor-featured: floor-raw with the proxy's per-request work and none of the SDK's structure): %s\n", line
}
# floorline(spec): "CASE: name 1.05×, ...; ..." over the 1 KiB cases at 64 and
# 256 connections, for the servers of spec ("server:name,..."), paired with nginx.
function floorline(spec,   cs, ss, j, i, kv, c, line) {
	split("proxy-1k-64c proxy-1k-256c", cs, " ")
	split(spec, ss, ",")
	for (j = 1; j <= 2; j++) {
		c = ""
		for (i = 1; i in ss; i++) {
			split(ss[i], kv, ":")
			c = join(c, floor(cs[j], kv[1], kv[2]), ", ")
		}
		if (c != "") line = join(line, label(cs[j]) ": " c, "; ")
	}
	return line
}
# floor(c, s, name): "name 1.05×", server s's paired ratio to nginx in case c; "" if not run.
function floor(c, s, name,   k) {
	k = c SUBSEP "nginx" SUBSEP s
	return collect(pr, k) ? sprintf("%s %.2f×", name, med(pr, k)) : ""
}
# scaling: CPU × nginx, loaded at once, by the connections kept busy, of
# Capuchin and floor-raw (not a target): where a ratio grows with them, the
# cost is in what each connection keeps (its state and the memory that a
# request touches), not in what each request does.
function scaling(   cs, j, s, ss, k, line, part) {
	split("8c 64c 256c 1024c", cs, " "); split("capuchin floor-raw", ss, " ")
	for (s = 1; s <= 2; s++) {
		part = ""
		for (j = 1; j <= 4; j++) {
			k = "proxy-1k-" cs[j] SUBSEP "nginx" SUBSEP ss[s]
			if (collect(pr, k)) part = join(part, sprintf("%s %.2f×", substr(cs[j], 1, length(cs[j]) - 1), med(pr, k)), ", ")
		}
		if (part != "") line = join(line, ss[s] " " part, "; ")
	}
	if (line != "") printf "- For reference (not a target): CPU × nginx, loaded at once, at 8, 64, 256 and 1,024 connections (1 KiB): %s\n", line
}
function join(a, b, sep) { return a == "" ? b : b == "" ? a : a sep b }
