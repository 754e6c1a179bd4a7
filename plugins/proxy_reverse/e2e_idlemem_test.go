package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/internal/idlewait"
)

// idleConns is how many idle connections TestIdleLeasedStacks holds: more
// than memback.MinDrop, so that the SDK gives memory back after them.
const idleConns = 1500

// TestIdleLeasedStacks holds idle keep-alive connections, each after one
// proxied request (so each waits in the plugin under a lease), and checks
// that once they are idle the plugin's goroutine stacks come to at most
// 5 KiB per connection, where they would stay at 8 KiB: the proxy's
// handler grows a goroutine's stack to 8 KiB, and the collection the SDK
// runs after a burst of connections goes idle (memback.Idle) halves it only
// if the lease's wait uses under a quarter of it (see api's handle). Not
// under -race, whose larger stack guard keeps every grown stack.
func TestIdleLeasedStacks(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race a collection does not shrink these stacks")
	}
	back := newNamed(t, "b0", "")
	pprof := "127.0.0.1:" + strconv.Itoa(hosttest.FreePort(t))
	t.Setenv("CAPUCHIN_PPROF_PROXY_REVERSE", pprof) // the plugin inherits the host's environment
	s, _ := startProxy(t, entryConf("Round-Robin", back.hostPort()), "KeepAliveTimeout 120")
	base := pluginStacks(t, pprof)
	conns := holdIdle(t, s.Addr(), idleConns)
	var per int64
	ok := hosttest.Poll(20*time.Second, func() bool {
		per = (pluginStacks(t, pprof) - base) / int64(len(conns))
		return per <= 5<<10
	})
	if !ok {
		t.Fatalf("the plugin's stacks: %d bytes per idle leased connection after 20 s, want at most 5 KiB", per)
	}
}

// pluginStacks reads the plugin's stack memory in use from its pprof
// heap page (runtime.MemStats.StackInuse).
func pluginStacks(t *testing.T, addr string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	hosttest.Must(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# Stack = "); ok {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			hosttest.Must(t, err)
			return n
		}
	}
	t.Fatalf("no \"# Stack\" line in the plugin's heap profile (%v)", sc.Err())
	return 0
}

// holdIdle opens n connections to addr, 64 at a time, sends one proxied GET
// on each and reads its answer; they stay open until the test ends.
func holdIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	each64(n, func(i int) { conns[i], errs[i] = oneRequest(addr) })
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	return conns
}

// oneRequest dials addr, sends a proxied GET and reads the whole answer.
func oneRequest(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	_, err = io.WriteString(c, "GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n")
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, nil)
	}
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != 200 || resp.Close || br.Buffered() > 0) {
			err = fmt.Errorf("status %d, close %v, %d bytes more", resp.StatusCode, resp.Close, br.Buffered())
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// TestLeasedConnNoKeepAliveProbes: a client connection keeps the host's
// "no TCP keep-alive probes" while the plugin holds it under a lease,
// once it is given back and parked, and after the host takes it out of
// the park for the next request: each copy of the socket the plugin or
// the host makes with net.FileConn would turn probes on for it.
func TestLeasedConnNoKeepAliveProbes(t *testing.T) {
	back := newNamed(t, "b0", "")
	s, _ := startProxy(t, entryConf("Round-Robin", back.hostPort()), "KeepAliveTimeout 120")
	c, err := net.Dial("tcp", s.Addr())
	hosttest.Must(t, err)
	defer c.Close()
	br := bufio.NewReader(c)
	ask := func(when string) {
		t.Helper()
		io.WriteString(c, "GET /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		hosttest.Must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "b0" {
			t.Fatalf("%s: %d %q", when, resp.StatusCode, body)
		}
		if hosttest.KeepAliveProbes(t, c) {
			t.Fatalf("%s: the server's socket has a keep-alive timer", when)
		}
	}
	ask("leased")
	time.Sleep(time.Second) // the plugin gives it back after 500 ms idle; the host parks it
	if hosttest.KeepAliveProbes(t, c) {
		t.Fatal("parked: the server's socket has a keep-alive timer")
	}
	ask("taken out of the park and leased again")
}

// TestBeyondMaxHeldServedAgain: with more idle leased connections after
// one request each than the SDK and the host hold on goroutines
// (idlewait.MaxHeld), those beyond are given back after idlewait.FullHold
// and parked; every connection's next request, sent once they are (but
// within the usual hold), is answered; then, each having come back, all
// keep the usual hold (Lease.served).
func TestBeyondMaxHeldServedAgain(t *testing.T) {
	back := newNamed(t, "b0", "")
	s, p := startProxy(t, entryConf("Round-Robin", back.hostPort()), "KeepAliveTimeout 120")
	conns := holdIdle(t, s.Addr(), idlewait.MaxHeld+200)
	time.Sleep(idlewait.FullHold + 150*time.Millisecond)
	// The plugin holds the first MaxHeld (and about 80 descriptors of its
	// own), not all: the rest went back after FullHold. (Were the
	// connections slower to open than the usual hold, it would hold fewer.)
	pid := p.PluginPid(t, "proxy_reverse", 0)
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil && len(fds) > idlewait.MaxHeld+200 {
		t.Errorf("the plugin has %d descriptors open, want at most %d", len(fds), idlewait.MaxHeld+200)
	}
	start := time.Now()
	askAll(t, conns)
	// Each has served two requests now: a client that comes back keeps
	// the usual hold, bound or not. (Unless the round was too slow to tell
	// its first connections' hold from the usual one.)
	time.Sleep(idlewait.FullHold + 60*time.Millisecond)
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil && time.Since(start) < 400*time.Millisecond &&
		len(fds) < len(conns) {
		t.Errorf("the plugin has %d descriptors open after a second request on each of %d connections: "+
			"some were given back after FullHold", len(fds), len(conns))
	}
	if n := back.hits.Load(); n != int64(2*len(conns)) {
		t.Fatalf("the backend saw %d requests, want %d", n, 2*len(conns))
	}
}

// askAll sends one more request on each of conns, 64 at a time.
func askAll(t *testing.T, conns []net.Conn) {
	t.Helper()
	errs := make([]error, len(conns))
	each64(len(conns), func(i int) { errs[i] = askAgain(conns[i]) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("connection %d, second request: %v", i, err)
		}
	}
}

// askAgain sends one more proxied GET on c and checks its answer.
func askAgain(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && (resp.StatusCode != 200 || string(body) != "b0") {
		err = fmt.Errorf("answer %d %q", resp.StatusCode, body)
	}
	return err
}

// each64 runs f(0) … f(n-1), 64 at a time, and returns when all have.
func each64(n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() { // ends when next is closed
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
