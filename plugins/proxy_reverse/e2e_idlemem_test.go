package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
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
	next := make(chan int)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() { // ends when next is closed
			defer wg.Done()
			for i := range next {
				conns[i], errs[i] = oneRequest(addr)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
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
