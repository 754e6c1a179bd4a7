package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAcceptsCounted serves three requests on two client connections and
// checks the answers and the count the stats handler reports.
func TestAcceptsCounted(t *testing.T) {
	var accepts atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(ln.Addr().String(), "b1", 10, &accepts)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }() // ends with srv.Close
	defer func() { srv.Close(); <-done }()

	url := "http://" + ln.Addr().String() + "/x"
	// Two requests on one keep-alive connection, then one on a second.
	for _, requests := range []int{2, 1} {
		tr := &http.Transport{}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		for i := 0; i < requests; i++ {
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "xxxxxxxxxx" || resp.Header.Get("X-Backend") != "b1" {
				t.Fatalf("answer %d %q %q", resp.StatusCode, b, resp.Header.Get("X-Backend"))
			}
		}
		tr.CloseIdleConnections()
	}
	rec := httptest.NewRecorder()
	statsHandler(&accepts).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := strings.TrimSpace(rec.Body.String()); got != "accepts 2" {
		t.Fatalf("stats %q, want accepts 2", got)
	}
}
