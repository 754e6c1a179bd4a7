package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestOpenHoldCheck opens connections to a real keep-alive server, finds
// them all open, then all closed once the server closes them.
func TestOpenHoldCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()
	o := options{addr: srv.Listener.Addr().String(), path: "/x", host: "127.0.0.1", n: 40, c: 8, timeout: 5 * time.Second}
	conns, failed := openAll(&o)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if len(conns) != 40 || failed != 0 {
		t.Fatalf("%d open, %d failed; want 40, 0", len(conns), failed)
	}
	if open, closed := check(conns); open != 40 || closed != 0 {
		t.Fatalf("held: %d open, %d closed", open, closed)
	}
	srv.CloseClientConnections()
	deadline := time.Now().Add(5 * time.Second)
	for {
		open, closed := check(conns)
		if open == 0 && closed == 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the server closed them: %d open, %d closed", open, closed)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFailuresCounted: a server that answers 404 or closes counts as failed.
func TestFailuresCounted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	o := options{addr: srv.Listener.Addr().String(), path: "/x", host: "127.0.0.1", n: 5, c: 2, timeout: 5 * time.Second}
	conns, failed := openAll(&o)
	if len(conns) != 0 || failed != 5 {
		t.Fatalf("%d open, %d failed; want 0, 5", len(conns), failed)
	}
	srv.Close()
	if conns, failed = openAll(&o); len(conns) != 0 || failed != 5 {
		t.Fatalf("server gone: %d open, %d failed; want 0, 5", len(conns), failed)
	}
}
