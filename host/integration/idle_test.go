package integration

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestIdleConnectionsParked: keep-alive connections idle for longer than
// the host's hold (500 ms) hold no goroutine of the host (they are parked in
// one epoll wait), still serve their next request at once, and still close
// at KeepAliveTimeout; SIGTERM with parked connections stops the host at
// once, closing them.
func TestIdleConnectionsParked(t *testing.T) {
	s := newSite(t)
	pprof := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.Env = []string{"CAPUCHIN_PPROF=" + pprof}
	s.Server = []string{"KeepAliveTimeout 4"}
	p := s.Start()
	base := goroutines(t, pprof)
	fds := openFDs(t, p.Pid())

	const n = 200
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, s.Addr())
		if r := cs[i].Get("/index.html"); r.Status != 200 {
			t.Fatalf("connection %d: %d", i, r.Status)
		}
	}
	last := time.Now()
	time.Sleep(2 * time.Second) // past the hold
	if g := goroutines(t, pprof); g > base+20 {
		t.Errorf("%d goroutines with %d idle connections (%d with none): idle connections are not parked", g, n, base)
	}
	for i, c := range cs[:n/2] { // woken by their next request
		if r := c.Get("/index.html"); r.Status != 200 {
			t.Fatalf("parked connection %d: %d", i, r.Status)
		}
	}
	for i, c := range cs[n/2:] { // closed at KeepAliveTimeout
		if !c.Closed(5 * time.Second) {
			t.Fatalf("parked connection %d not closed", n/2+i)
		}
	}
	if d := time.Since(last); d < 3500*time.Millisecond || d > 5500*time.Millisecond {
		t.Errorf("parked connections closed %v after their last request, want KeepAliveTimeout (4 s)", d.Round(time.Millisecond))
	}
	// The host keeps a descriptor for each open connection, none for the
	// closed ones (beside them: the parking's epoll and wake-up
	// descriptors, made with the first parked connection, and perhaps a
	// second connection of pprof's client).
	if !hosttest.Poll(2*time.Second, func() bool { return openFDs(t, p.Pid()) <= fds+n/2+3 }) {
		t.Errorf("the host holds %d descriptors with %d connections open, %d with none", openFDs(t, p.Pid()), n/2, fds)
	}
	time.Sleep(1500 * time.Millisecond) // the first half parked again
	start := time.Now()
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("SIGTERM with parked connections took %v", d)
	}
	for i, c := range cs[:n/2] {
		if !c.Closed(time.Second) {
			t.Fatalf("connection %d open after the host stopped", i)
		}
	}
}

var goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)

// goroutines reads a process's goroutine count from its pprof address,
// less the host's spare goroutines (see spareWorkers).
func goroutines(t *testing.T, addr string) int {
	t.Helper()
	r, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	must(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	must(t, err)
	m := goroutineTotal.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no goroutine total in %.200q", b)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n - spareWorkers(b)
}

// spareWorkers counts, in a goroutine profile (debug=1), the server's
// spare goroutines: bounded in number, they wait for the next connection
// to serve, not on any connection.
func spareWorkers(profile []byte) int {
	spare, count := 0, 0
	for _, line := range strings.Split(string(profile), "\n") {
		if m := goroutineGroup.FindStringSubmatch(line); m != nil {
			count, _ = strconv.Atoi(m[1])
		} else if strings.Contains(line, "server.(*workers).next") {
			spare += count
		}
	}
	return spare
}

var goroutineGroup = regexp.MustCompile(`^(\d+) @ `)

// TestParkedConnectionTakenBack: a connection the host parked (idle past
// its hold, or given back idle by a plugin) and took back for its next
// request keeps the terms of any connection: a large static file arrives
// whole (sendfile on the socket the host made again), and a head that
// stalls gets 408 at Timeout.
func TestParkedConnectionTakenBack(t *testing.T) {
	pluginTest(t)
	s, _ := notesSite(t)
	s.Server = []string{"Timeout 1", "KeepAliveTimeout 10"}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: past the file cache, sent with sendfile
	s.WriteRoot("big.txt", big)
	s.StartChecked()
	for _, first := range []string{"/index.html", "/hello/a"} { // parked idle; given back by hello
		t.Run(first, func(t *testing.T) {
			c := dial(t, s.Addr())
			c.Get(first)
			c.Get(first)
			time.Sleep(1200 * time.Millisecond) // past the holds: parked
			if r := c.Get("/big.txt"); r.Status != 200 || string(r.Body) != big {
				t.Fatalf("large file after parking: %d, %d bytes", r.Status, len(r.Body))
			}
			time.Sleep(1200 * time.Millisecond)
			start := time.Now()
			c.Send("GET /index.html HTTP/1.1\r\nHost: x\r\n")
			if r := c.MustRead("GET"); r.Status != 408 {
				t.Fatalf("stalled head after parking: %d, want 408", r.Status)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("408 after %v, want about Timeout (1 s)", d.Round(time.Millisecond))
			}
			if !c.Closed(3 * time.Second) {
				t.Error("connection open after 408")
			}
		})
	}
}
