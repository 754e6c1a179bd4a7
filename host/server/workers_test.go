package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// getClose makes one request with Connection: close on a new connection
// and reads the answer to its end.
func getClose(t *testing.T, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	io.WriteString(c, "GET /1k.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	var resp http1.Response
	if err := http1.ReadResponse(bufio.NewReader(c), nil, &resp); err != nil || resp.Status != 200 {
		t.Errorf("status %d, %v", resp.Status, err)
	}
}

// waitSpare waits until the server's spare goroutines number want.
func waitSpare(t *testing.T, s *Server, want int32) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); s.work.spare.Load() != want; {
		if time.Now().After(end) {
			t.Fatalf("%d spare goroutines, want %d", s.work.spare.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkersReusedAndBounded: connections one after another are served
// by one goroutine, which waits as a spare between them; a burst leaves
// at most maxSpare waiting; Shutdown ends them all.
func TestWorkersReusedAndBounded(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	s, addr := testServer(t, nil)
	for i := 0; i < 20; i++ {
		getClose(t, addr)
		waitSpare(t, s, 1)
	}
	var wg sync.WaitGroup
	for i := 0; i < 2*maxSpare; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); getClose(t, addr) }()
	}
	wg.Wait()
	for end := time.Now().Add(5 * time.Second); s.open.Load() > 0 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if n := s.work.spare.Load(); n < 1 || n > maxSpare {
		t.Fatalf("%d spare goroutines after a burst, want 1 to %d", n, maxSpare)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, s.Shutdown(ctx))
	if err := hosttest.Leaks(ignore); err != nil {
		t.Fatal(err)
	}
}
