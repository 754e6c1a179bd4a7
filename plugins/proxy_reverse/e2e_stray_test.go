package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// strayBackend answers every request with "answer to PATH" and, for the
// path named by trigger, misbehaves the way late does: it writes bytes
// that belong to no request (or closes) after, or together with, the
// answer. Its connections are kept alive otherwise.
func strayBackend(t *testing.T, trigger string, late func(c net.Conn, req *http.Request)) *raw {
	return newRaw(t, "", func(c net.Conn, br *bufio.Reader) { strayServe(c, br, trigger, late) })
}

// emptyOK is a complete 38-byte answer with no body.
const emptyOK = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

func TestE2EStrayBytesOnPooledConnection(t *testing.T) {
	hosttest.CheckLeaks(t)
	pause := func() { time.Sleep(100 * time.Millisecond) }
	answerOK := func(c net.Conn, req *http.Request) {
		body := "answer to " + req.URL.Path
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	cases := []struct {
		name   string
		method string
		late   func(c net.Conn, req *http.Request)
	}{
		{"late body after HEAD", "HEAD", func(c net.Conn, _ *http.Request) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\n")
			pause()
			io.WriteString(c, emptyOK)
		}},
		{"late second answer", "GET", func(c net.Conn, req *http.Request) {
			answerOK(c, req)
			pause()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
		}},
		{"late 408 then close", "GET", func(c net.Conn, req *http.Request) {
			answerOK(c, req)
			pause()
			io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			c.Close()
		}},
		{"EOF while idle", "GET", func(c net.Conn, req *http.Request) {
			answerOK(c, req)
			pause()
			c.Close()
		}},
		{"body after HEAD in the same write", "HEAD", func(c net.Conn, _ *http.Request) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\n"+emptyOK)
		}},
		{"body after 204 in the same write", "GET", func(c net.Conn, _ *http.Request) {
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"+emptyOK)
		}},
		{"body after 304 in the same write", "GET", func(c net.Conn, _ *http.Request) {
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\n\r\n"+emptyOK)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := strayBackend(t, "/api/late", tc.late)
			s, _ := startProxy(t, entryConf("Naive", be.Addr()))
			a := hosttest.Dial(t, s.Addr())
			a.Send(tc.method + " /api/late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			a.MustRead(tc.method)
			time.Sleep(300 * time.Millisecond)
			// B's POST is not idempotent: it must not meet a dead pooled
			// connection either.
			for _, user := range []string{"POST /api/userB", "GET /api/userC", "GET /api/userD"} {
				method, path, _ := strings.Cut(user, " ")
				c := hosttest.Dial(t, s.Addr())
				c.Send(user + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
				if r := c.MustRead(method); r.Status != 200 || string(r.Body) != "answer to "+path {
					t.Fatalf("%s got %d %q, not its own answer", user, r.Status, r.Body)
				}
			}
			if n := strayClosed(t, s); n != 1 {
				t.Fatalf("stray connections closed: %d, want 1", n)
			}
		})
	}
}

// strayClosed sums stray_closed over every server on the status page.
func strayClosed(t *testing.T, s *hosttest.Site) uint64 {
	t.Helper()
	var pg struct {
		Entries []struct {
			Servers []struct {
				Stray uint64 `json:"stray_closed"`
			} `json:"servers"`
		} `json:"entries"`
	}
	body := statusJSON(t, s)
	if err := json.Unmarshal([]byte(body), &pg); err != nil {
		t.Fatalf("status page: %v: %s", err, strings.TrimSpace(body))
	}
	var n uint64
	for _, e := range pg.Entries {
		for _, sv := range e.Servers {
			n += sv.Stray
		}
	}
	return n
}
