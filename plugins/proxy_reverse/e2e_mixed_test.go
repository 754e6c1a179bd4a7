package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeasedMixedTraffic sends, on keep-alive connections that the plugin
// serves under a lease, a random mix of what clients send: GET, HEAD and
// POST with a body, one at a time or pipelined, heads cut across two
// writes, pauses that outlast the SDK's 500 ms hold, and connections that
// half-close after their last request. Every request is answered, in
// order, with its own answer (the backend echoes method and path), and a
// half-closed connection is closed within the hold. Requests without a
// body are served inside the SDK's read wait (idlewait.Waiter.Serve), the
// others outside it: the mix crosses between the two. A wait that missed
// its wake-up would end only at the hold, and the host would then serve
// the request: so an answer that takes longer than slowRound is counted,
// and more than a few fail the test.
func TestLeasedMixedTraffic(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, n)
	}))
	defer echo.Close()
	s, _ := startProxy(t, entryConf("Round-Robin", echo.Listener.Addr().String()))
	var wg sync.WaitGroup
	var slow atomic.Int64
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() { // ends after its requests, or at its connection's deadline
			defer wg.Done()
			errs <- mixedClient(s.Addr(), rand.New(rand.NewSource(int64(w))), w, 60, &slow)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := slow.Load(); n > 3 {
		t.Errorf("%d rounds took over %v (a wait that missed its wake-up lasts the 500 ms hold)", n, slowRound)
	}
}

// slowRound is longer than a round of mixedClient takes, and shorter than
// the SDK's hold.
const slowRound = 400 * time.Millisecond

// mixedRequest is one request of mixedClient and the answer body it wants.
type mixedRequest struct {
	raw, method, want string
}

func newMixedRequest(r *rand.Rand, id string) mixedRequest {
	switch r.Intn(5) {
	case 0:
		body := strings.Repeat("b", r.Intn(3000)+1)
		return mixedRequest{fmt.Sprintf("POST /api/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", id, len(body), body),
			"POST", fmt.Sprintf("POST /api/%s %d", id, len(body))}
	case 1:
		return mixedRequest{"HEAD /api/" + id + " HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD", ""}
	}
	return mixedRequest{"GET /api/" + id + " HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "GET /api/" + id + " 0"}
}

// mixedClient sends n requests from worker w on connections of up to 20
// rounds each, and counts in slow the rounds answered after slowRound (see
// TestLeasedMixedTraffic).
func mixedClient(addr string, r *rand.Rand, w, n int, slow *atomic.Int64) error {
	for sent := 0; sent < n; {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		rounds := r.Intn(20) + 1
		for k := 0; k < rounds && sent < n; k++ {
			var reqs []mixedRequest
			var raw string
			for range 1 + r.Intn(4)*r.Intn(2) { // pipelined now and then
				sent++
				q := newMixedRequest(r, fmt.Sprintf("w%d-%d", w, sent))
				reqs, raw = append(reqs, q), raw+q.raw
			}
			began := time.Now()
			if cut := r.Intn(len(raw)); r.Intn(5) == 0 { // a head cut across two writes
				c.Write([]byte(raw[:cut]))
				time.Sleep(time.Millisecond)
				raw = raw[cut:]
			}
			c.Write([]byte(raw))
			last := k == rounds-1 || sent == n
			if last && r.Intn(2) == 0 {
				c.(*net.TCPConn).CloseWrite()
				if err := readMixed(br, reqs); err != nil {
					c.Close()
					return err
				}
				err := eofWithin(c, br, 1500*time.Millisecond)
				c.Close()
				if err != nil {
					return fmt.Errorf("worker %d: %w", w, err)
				}
				break
			}
			if err := readMixed(br, reqs); err != nil {
				c.Close()
				return err
			}
			if time.Since(began) > slowRound {
				slow.Add(1)
			}
			if r.Intn(15) == 0 {
				time.Sleep(time.Duration(r.Intn(700)) * time.Millisecond) // past the hold, sometimes
			}
		}
		c.Close()
	}
	return nil
}

// readMixed reads the answers to reqs, in order, and checks them.
func readMixed(br *bufio.Reader, reqs []mixedRequest) error {
	for _, q := range reqs {
		resp, err := http.ReadResponse(br, &http.Request{Method: q.method})
		if err != nil {
			return fmt.Errorf("answer to %q: %v", q.raw[:min(len(q.raw), 40)], err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != q.want {
			return fmt.Errorf("answer to %q: %d %q %v, want 200 %q", q.raw[:min(len(q.raw), 40)], resp.StatusCode, b, err, q.want)
		}
	}
	return nil
}

// eofWithin checks that the server closes c within d.
func eofWithin(c net.Conn, br *bufio.Reader, d time.Duration) error {
	start := time.Now()
	c.SetReadDeadline(start.Add(3 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("after a half-close: %v, want EOF", err)
	}
	if took := time.Since(start); took > d {
		return fmt.Errorf("closed %v after a half-close, want within %v", took, d)
	}
	return nil
}
