package pluginhost

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// BenchmarkStage20RoundTrip measures one stage-20 call: event out, the
// plugin's hook, reply routed back; on the framed calls socket and on the
// gRPC Calls stream, one call at a time and 16 at once.
func BenchmarkStage20RoundTrip(b *testing.B) {
	for _, path := range []struct{ name, plugin string }{{"framed", "gate"}, {"grpc", "gategrpc"}} {
		b.Run(path.name, func(b *testing.B) { benchStage20(b, path.plugin, 1) })
		b.Run(path.name+"-par16", func(b *testing.B) { benchStage20(b, path.plugin, 16) })
	}
}

func benchStage20(b *testing.B, plugin string, par int) {
	dir := b.TempDir()
	sp := spec(b, dir, plugin, "")
	h := startHost(b, sp)
	var req http1.Request
	if err := http1.ParseRequest("GET /x HTTP/1.1\r\nHost: bench\r\n", nil, &req); err != nil {
		b.Fatal(err)
	}
	c := &stage.Conn{Conn: contract.Conn{ID: 1, Remote: addrPort("127.0.0.1:40000"), Local: addrPort("127.0.0.1:80")}}
	b.ReportAllocs()
	pid := readPid(sp)
	defer reportCPU(b, pid)()
	if par > 1 {
		b.SetParallelism(par)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if v, _ := h.Request(c, &req, "bench"); v != stage.Continue {
					b.Error("verdict", v)
					return
				}
			}
		})
		return
	}
	for b.Loop() {
		if v, _ := h.Request(c, &req, "bench"); v != stage.Continue {
			b.Fatal("verdict", v)
		}
	}
}

// BenchmarkStage30KeptConn measures one stage-30 hand-over on a connection
// the plugin already holds (no descriptor sent): the client writes a
// request, the host reads its head and calls Handle, the plugin answers
// on the socket, the client reads the response.
func BenchmarkStage30KeptConn(b *testing.B) {
	dir := b.TempDir()
	h := startHost(b, spec(b, dir, "hello", ""))
	cl, srv := hosttest.TCPPair(b)
	c := &stage.Conn{Conn: contract.Conn{ID: 1, Remote: srv.RemoteAddr().(*net.TCPAddr).AddrPort()}, TCP: srv}
	defer h.Closed(c)
	sbr, cbr := bufio.NewReader(srv), bufio.NewReader(cl)
	var req http1.Request
	var resp http1.Response
	var body http1.Body
	one := func() {
		io.WriteString(cl, "GET /hello/b HTTP/1.1\r\nHost: bench\r\n\r\n")
		if err := http1.ReadRequest(sbr, nil, &req); err != nil {
			b.Fatal(err)
		}
		res := h.Handle(c, &req, &stage.Handoff{VHost: "bench", KeepAlive: true})
		if res.Verdict != stage.Handled || res.Err != nil {
			b.Fatal(res)
		}
		if err := http1.ReadResponse(cbr, nil, &resp); err != nil {
			b.Fatal(err)
		}
		body.ResetResponse(cbr, &resp, "GET")
		io.Copy(io.Discard, &body)
	}
	one() // passes the descriptor
	b.ReportAllocs()
	for b.Loop() {
		one()
	}
}

// reportCPU starts counting the CPU time of this process and the plugin
// process pid; the returned func reports it per operation (cpu-ns/op, host
// and plugin together), from the scheduler's per-thread counts.
func reportCPU(b *testing.B, pid int) func() {
	start := cpuNanos(os.Getpid()) + cpuNanos(pid)
	return func() {
		used := cpuNanos(os.Getpid()) + cpuNanos(pid) - start
		b.ReportMetric(float64(used)/float64(b.N), "cpu-ns/op")
	}
}

// cpuNanos sums the on-CPU time of every thread of pid (0 if unknown).
func cpuNanos(pid int) int64 {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	var sum int64
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if fs := strings.Fields(string(b)); len(fs) > 0 {
			n, _ := strconv.ParseInt(fs[0], 10, 64)
			sum += n
		}
	}
	return sum
}
