package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestSoak (make soak; CAPUCHIN_SOAK=1, CAPUCHIN_SOAK_DURATION, default
// 3m) runs mixed traffic through the real host and plugin — small and
// large GETs (Content-Length and chunked answers), HEAD, uploads with
// Content-Length and chunked, WebSocket sessions — while the two backends
// are killed and restarted in turn every 15 s and the plugin is killed
// once with SIGKILL. At the end every request was answered (with a status)
// or cut by a closed connection, none hung or came back wrong; failures
// stay under 2 % of the requests; and host and plugin, measured idle after
// a warm-up and again idle at the end, have not grown beyond the bounds
// below (threads stand in for goroutines: the binaries expose no pprof).
func TestSoak(t *testing.T) {
	if os.Getenv("CAPUCHIN_SOAK") == "" {
		t.Skip("the soak runs with make soak (CAPUCHIN_SOAK=1)")
	}
	d := 3 * time.Minute
	if v := os.Getenv("CAPUCHIN_SOAK_DURATION"); v != "" {
		var err error
		d, err = time.ParseDuration(v)
		hosttest.Must(t, err)
	}
	backs := []*soakBackend{newSoakBackend(t, "b0"), newSoakBackend(t, "b1")}
	s, p := startProxy(t, entryConf("Round-Robin", backs[0].addr+" "+backs[1].addr, "IdleTimeout 2",
		"AttemptsCount 2", "OfflineTimeOut 1", "ResponseTimeout 5"), "KeepAliveTimeout 2")
	plugin := p.PluginPid(t, "", 0)

	warm := runSoakTraffic(s.Addr(), 15*time.Second, nil)
	settle()
	baseHost, basePlugin := sampleProc(t, p.Pid()), sampleProc(t, plugin)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); disrupt(t, backs, p, plugin, d, stop) }()
	res := runSoakTraffic(s.Addr(), d, stop)
	close(stop)
	wg.Wait()
	settle()
	endHost, endPlugin := sampleProc(t, p.Pid()), sampleProc(t, p.PluginPid(t, "", plugin))

	summary := fmt.Sprintf("soak %v: warm-up %s\nsoak: %s\nhost   %s -> %s\nplugin %s -> %s (restarted)",
		d, warm, res, baseHost, endHost, basePlugin, endPlugin)
	fmt.Println(summary) // make soak's report (go test -v shows it)
	warm.check(t)
	res.check(t)
	checkGrowth(t, "host", baseHost, endHost)
	checkGrowth(t, "plugin", basePlugin, endPlugin)
	if _, ok := p.Wait(100 * time.Millisecond); ok {
		t.Fatalf("the host died:\n%s", p.Log())
	}
}

// settle waits for idle client (KeepAliveTimeout 2) and backend
// (IdleTimeout 2) connections to close.
func settle() { time.Sleep(5 * time.Second) }

// disrupt kills and restarts the backends in turn every 15 s and kills the
// plugin once, half-way.
func disrupt(t *testing.T, backs []*soakBackend, p *hosttest.Proc, plugin int, d time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	half := time.NewTimer(d / 2)
	defer half.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-half.C:
			syscall.Kill(plugin, syscall.SIGKILL)
		case <-tick.C:
			b := backs[i%len(backs)]
			b.kill()
			time.Sleep(300 * time.Millisecond)
			if err := b.start(); err != nil {
				t.Errorf("restart %s: %v", b.name, err)
			}
		}
	}
}

// procSample is what /proc says of a process.
type procSample struct {
	fds, threads int
	rssKiB       int64
}

func (s procSample) String() string {
	return fmt.Sprintf("fds %d, threads %d, rss %d KiB", s.fds, s.threads, s.rssKiB)
}

func sampleProc(t *testing.T, pid int) procSample {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	hosttest.Must(t, err)
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	hosttest.Must(t, err)
	s := procSample{fds: len(ents)}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rssKiB = n
		case "Threads":
			s.threads = int(n)
		}
	}
	return s
}

// checkGrowth: idle at the end, a process holds at most 16 descriptors
// and 16 threads more than idle after the warm-up, and at most half as
// much memory again plus 32 MiB.
func checkGrowth(t *testing.T, who string, base, end procSample) {
	t.Helper()
	if end.fds > base.fds+16 {
		t.Errorf("%s descriptors grew from %d to %d", who, base.fds, end.fds)
	}
	if end.threads > base.threads+16 {
		t.Errorf("%s threads grew from %d to %d", who, base.threads, end.threads)
	}
	if end.rssKiB > base.rssKiB*3/2+32<<10 {
		t.Errorf("%s resident memory grew from %d to %d KiB", who, base.rssKiB, end.rssKiB)
	}
}

// soakResult counts the outcomes of the HTTP load and the WebSocket
// sessions.
type soakResult struct {
	http *hosttest.LoadStats
	ws   wsStats
}

func (r *soakResult) String() string {
	classes := map[string]int{}
	for st, n := range r.http.Status {
		classes[fmt.Sprintf("%dxx", st/100)] += n
	}
	return fmt.Sprintf("%d requests: %v %v, closed %d, refused %d, hung or wrong %d %q; slowest %v; websocket %s",
		r.http.Sent, classes, r.http.Status, r.http.Closed, r.http.Refused, len(r.http.Failures),
		r.http.Failures[:min(len(r.http.Failures), 5)], r.http.Slowest.Round(time.Millisecond), &r.ws)
}

func (r *soakResult) check(t *testing.T) {
	t.Helper()
	if len(r.http.Failures) > 0 || len(r.ws.failures) > 0 {
		t.Errorf("requests that hung or came back wrong: %s", r)
	}
	bad := len(r.http.Bad)
	if r.http.Sent == 0 || bad*50 > r.http.Sent {
		t.Errorf("%d of %d requests failed, want under 2%%", bad, r.http.Sent)
	}
	for st := range r.http.Status {
		if st != 200 && st != 502 && st != 503 && st != 504 {
			t.Errorf("status %d: %s", st, r)
		}
	}
	if r.ws.ok.Load() == 0 || r.ws.bad.Load()*50 > r.ws.ok.Load() {
		t.Errorf("websocket sessions: %s, want under 2%% failed", &r.ws)
	}
}

// runSoakTraffic runs 12 HTTP clients and 2 WebSocket clients for d.
func runSoakTraffic(addr string, d time.Duration, stop <-chan struct{}) *soakResult {
	r := &soakResult{}
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); r.ws.run(addr, end) }()
	}
	r.http = hosttest.Load{Addr: addr, Workers: 12, PerWorker: 1 << 30, Duration: d, Pace: time.Millisecond,
		Stop: stop, Next: soakRequest, Check: soakCheck}.Run()
	wg.Wait()
	return r
}

// The uploads: sizes and their checksums, computed once.
var (
	uploadSizes = []int{1 << 10, 64 << 10, 200 << 10}
	uploads     [][]byte
	largeBody   = bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
)

func init() {
	for i, n := range uploadSizes {
		uploads = append(uploads, bytes.Repeat([]byte{byte('a' + i)}, n))
	}
}

// soakRequest returns worker w's i-th request of the mix.
func soakRequest(w, i int) ([]byte, string) {
	const host = "Host: 127.0.0.1\r\n"
	switch (w + i) % 8 {
	case 0, 1, 2:
		return []byte("GET /api/small HTTP/1.1\r\n" + host + "\r\n"), "GET"
	case 3:
		return []byte("GET /api/large HTTP/1.1\r\n" + host + "\r\n"), "GET"
	case 4:
		return []byte("GET /api/large?chunked=1 HTTP/1.1\r\n" + host + "\r\n"), "GET"
	case 5:
		return []byte("HEAD /api/small HTTP/1.1\r\n" + host + "\r\n"), "HEAD"
	case 6:
		b := uploads[i%len(uploads)]
		return append([]byte(fmt.Sprintf("POST /api/upload HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n", host, len(b))), b...), "POST"
	default:
		b := uploads[i%len(uploads)]
		req := []byte("POST /api/upload HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n")
		for len(b) > 0 {
			n := min(len(b), 16<<10)
			req = append(append(fmt.Appendf(req, "%x\r\n", n), b[:n]...), "\r\n"...)
			b = b[n:]
		}
		return append(req, "0\r\n\r\n"...), "POST"
	}
}

// soakCheck checks an answer against its request.
func soakCheck(req []byte, r *http1.Response, body []byte) error {
	line, _, _ := bytes.Cut(req, []byte("\r\n"))
	var want []byte
	switch {
	case bytes.HasPrefix(line, []byte("HEAD")):
		want = nil
	case bytes.Contains(line, []byte("/api/small")):
		want = smallBody(r.Header.Get("X-Backend"))
	case bytes.Contains(line, []byte("/api/large")):
		want = largeBody
	default:
		_, sent, _ := bytes.Cut(req, []byte("\r\n\r\n"))
		want = []byte(uploadAnswer(sent, bytes.Contains(req, []byte("chunked"))))
	}
	if r.Status != 200 || !bytes.Equal(body, want) {
		return fmt.Errorf("%s: %d with %d body bytes, want 200 with %d", line, r.Status, len(body), len(want))
	}
	return nil
}

func smallBody(name string) []byte { return []byte("small answer from " + name + "\n") }

// uploadAnswer is what the backend answers to an upload of b (chunked: b
// is the chunked encoding of one of the uploads, told apart by length).
func uploadAnswer(b []byte, chunked bool) string {
	if chunked {
		n := chunkedLen(b)
		for _, u := range uploads {
			if len(u) == n {
				b = u
			}
		}
	}
	return fmt.Sprintf("len=%d crc=%08x", len(b), crc32.ChecksumIEEE(b))
}

// chunkedLen sums the chunk sizes of a chunked body.
func chunkedLen(b []byte) int {
	total := 0
	for {
		line, rest, ok := bytes.Cut(b, []byte("\r\n"))
		n, err := strconv.ParseInt(string(line), 16, 64)
		if !ok || err != nil || n == 0 || int(n)+2 > len(rest) {
			return total
		}
		total += int(n)
		b = rest[n+2:]
	}
}

// wsStats counts WebSocket sessions: upgrade, five echoed lines, close.
type wsStats struct {
	ok, bad  atomic.Int64 // sessions completed / refused with a status or cut
	mu       sync.Mutex
	failures []string // hangs and wrong echoes
}

func (s *wsStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d sessions, %d refused or cut, %d hung or wrong %q", s.ok.Load(), s.bad.Load(),
		len(s.failures), s.failures[:min(len(s.failures), 3)])
}

func (s *wsStats) run(addr string, end time.Time) {
	for time.Now().Before(end) {
		err := wsSession(addr)
		var ne net.Error
		switch {
		case err == nil:
			s.ok.Add(1)
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, errWrongEcho):
			s.mu.Lock()
			s.failures = append(s.failures, err.Error())
			s.mu.Unlock()
		default: // a status, a refused connect or a cut tunnel
			s.bad.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	}
}

var errWrongEcho = errors.New("wrong echo")

func wsSession(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	var resp http1.Response
	if err := http1.ReadResponse(br, nil, &resp); err != nil {
		return err
	}
	if resp.Status != 101 {
		return fmt.Errorf("upgrade answered %d", resp.Status)
	}
	for i := range 5 {
		msg := fmt.Sprintf("message %d\n", i)
		if _, err := io.WriteString(c, msg); err != nil {
			return err
		}
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line != "echo:"+msg {
			return fmt.Errorf("%w: %q for %q", errWrongEcho, line, msg)
		}
	}
	return nil
}

// soakBackend is a backend on a fixed address that can be killed (its
// listener and every connection, tunnels included, closed at once) and
// started again.
type soakBackend struct {
	name, addr string
	mu         sync.Mutex
	srv        *http.Server
	hijacked   map[net.Conn]bool
	wg         sync.WaitGroup // hijacked connections' goroutines
}

func newSoakBackend(t *testing.T, name string) *soakBackend {
	b := &soakBackend{name: name, addr: fmt.Sprintf("127.0.0.1:%d", hosttest.FreePort(t)), hijacked: map[net.Conn]bool{}}
	hosttest.Must(t, b.start())
	t.Cleanup(b.kill)
	return b
}

func (b *soakBackend) start() error {
	var ln net.Listener
	var err error
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", b.addr); err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(ln) // ends when kill closes srv
	return nil
}

func (b *soakBackend) kill() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	for c := range b.hijacked {
		c.Close()
	}
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	b.wg.Wait()
}

func (b *soakBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend", b.name)
	switch {
	case r.URL.Path == "/api/ws" && r.Header.Get("Upgrade") == "websocket":
		b.tunnel(w)
	case r.URL.Path == "/api/small":
		body := smallBody(b.name)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	case r.URL.Path == "/api/large" && r.URL.Query().Get("chunked") != "":
		for p := largeBody; len(p) > 0; p = p[min(len(p), 100<<10):] {
			w.Write(p[:min(len(p), 100<<10)])
			w.(http.Flusher).Flush()
		}
	case r.URL.Path == "/api/large":
		w.Header().Set("Content-Length", strconv.Itoa(len(largeBody)))
		w.Write(largeBody)
	case r.URL.Path == "/api/upload":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		io.WriteString(w, uploadAnswer(body, false))
	default:
		http.NotFound(w, r)
	}
}

// tunnel answers 101 and echoes lines as "echo:LINE".
func (b *soakBackend) tunnel(w http.ResponseWriter) {
	c, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	b.mu.Lock()
	if b.srv == nil {
		b.mu.Unlock()
		c.Close()
		return
	}
	b.hijacked[c] = true
	b.wg.Add(1)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.hijacked, c)
		b.mu.Unlock()
		c.Close()
		b.wg.Done()
	}()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	brw.Flush()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		brw.WriteString("echo:" + line)
		if brw.Flush() != nil {
			return
		}
	}
}
