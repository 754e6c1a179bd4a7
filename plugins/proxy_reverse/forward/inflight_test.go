package forward

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// silentBackend accepts connections and reads them without ever answering.
func silentBackend(t *testing.T) *upstream.Group {
	g, _ := testBackend(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	return g
}

// forwardAsync starts one GET /x on f under ctx and returns its result
// channel.
func forwardAsync(t *testing.T, f *Forwarder, g *upstream.Group, ctx context.Context) <-chan Result {
	t.Helper()
	_, r := sendRequest(t, "GET", "/x")
	out := make(chan Result, 1)
	go func() { out <- f.Forward(ctx, g.Slots(), inOrder(1), r) }()
	return out
}

func waitResult(t *testing.T, out <-chan Result, what string) Result {
	t.Helper()
	select {
	case res := <-out:
		return res
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the request was not aborted", what)
	}
	return Result{}
}

// The end of the context a request runs under aborts it while it waits
// for an answer: the context the Forwarder watches for all its requests
// (the first it sees), another one watched on its own, and a request that
// starts under a context already ended; a request that ended before the
// context does is not touched. An aborted request closes its client
// connection.
func TestContextEndAbortsRequests(t *testing.T) {
	g := silentBackend(t)
	var f Forwarder
	defer f.Close()
	main, cancelMain := context.WithCancel(context.Background())
	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()

	shared := forwardAsync(t, &f, g, main)
	watched := func() <-chan struct{} {
		f.live.mu.Lock()
		defer f.live.mu.Unlock()
		return f.live.watched
	}
	// The second request starts once the first is watched: its goroutine
	// could otherwise reach the Forwarder first.
	hosttest.Poll(5*time.Second, func() bool { return watched() != nil })
	alone := forwardAsync(t, &f, g, other)
	time.Sleep(100 * time.Millisecond) // both wait for the answer
	if watched() != main.Done() {
		t.Fatal("the Forwarder does not watch the first context it saw")
	}
	cancelMain()
	if res := waitResult(t, shared, "watched context"); res.Status != 502 || res.Err == nil || !res.Close {
		t.Fatalf("watched context: status %d, error %v, close %v", res.Status, res.Err, res.Close)
	}
	select {
	case res := <-alone:
		t.Fatalf("a request under another context ended with it: %d %v", res.Status, res.Err)
	case <-time.After(100 * time.Millisecond):
	}
	cancelOther()
	if res := waitResult(t, alone, "another context"); res.Status != 502 {
		t.Fatalf("another context: status %d, error %v", res.Status, res.Err)
	}
	late := forwardAsync(t, &f, g, main)
	if res := waitResult(t, late, "ended context"); res.Status != 502 {
		t.Fatalf("ended context: status %d, error %v", res.Status, res.Err)
	}
	f.live.mu.Lock()
	defer f.live.mu.Unlock()
	if f.live.head != nil {
		t.Fatal("an exchange stayed linked after its request ended")
	}
}

// A request without a body that waits for its answer holds no client
// writer, and its backend connection no buffers: both are taken once the
// answer is there (exchange.out, upstream.Conn.TakeBuffers), so that the
// requests waiting hold none and a request takes the ones the request
// before it gave back.
func TestWaitingRequestHoldsNoBuffers(t *testing.T) {
	g := silentBackend(t)
	var f Forwarder
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := forwardAsync(t, &f, g, ctx)
	var x *exchange
	var bc *upstream.Conn
	hosttest.Poll(5*time.Second, func() bool { // the request is sent on a connection
		f.live.mu.Lock()
		x = f.live.head
		f.live.mu.Unlock()
		if x != nil {
			x.mu.Lock()
			bc = x.bc
			x.mu.Unlock()
		}
		return bc != nil
	})
	time.Sleep(100 * time.Millisecond) // it waits for the answer
	x.mu.Lock()
	writer, br, bw := x.bw != nil, bc.BR != nil, bc.BW != nil
	x.mu.Unlock()
	if writer || br || bw {
		t.Errorf("a request waiting for its answer holds a client writer %v, backend read buffer %v, write buffer %v", writer, br, bw)
	}
	cancel()
	if res := waitResult(t, out, "cancelled"); res.Status != 502 {
		t.Fatalf("cancelled: status %d, error %v", res.Status, res.Err)
	}
}
