package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// Nothing is smuggled through the proxy: the classic desync payloads go
// through the real host and plugin to a strict backend that logs every byte
// it receives and counts the requests it reads. Each payload is followed by
// a pipelined request, and runs on a fresh connection and on a leased one (a
// kept-alive connection after a good proxied request, so the plugin holds
// the lease and reads the payload with the SDK).
//
// Properties, for every case: the backend reads exactly the requests the
// client meant to send (none for a rejected payload, nor the request
// pipelined behind it); no target the client hid in a body ("SMUGGLED")
// ever reaches it as a request; its strict reader (api/http1) accepts every
// byte it got, and net/http's reader frames the same bytes into the same
// messages; the client gets the status listed (400 wherever the framing
// is ambiguous) and, after a rejection, a closed connection.

// strictBackend reads requests with api/http1 and answers each with
// "ok TARGET BODYLEN", except an h2c upgrade, which it accepts (101) as an
// h2c-capable server would, and records as an error: the proxy must not
// forward one. It logs the raw bytes of every connection.
type strictBackend struct {
	*raw
	mu      sync.Mutex
	logs    []*bytes.Buffer
	targets []string // targets of the complete requests, in arrival order
	errs    []string // what the strict reader refused
}

func newStrictBackend(t *testing.T) *strictBackend {
	b := &strictBackend{}
	b.raw = newRaw(t, "", b.serve)
	return b
}

type logWriter struct {
	b   *strictBackend
	log *bytes.Buffer
}

func (w logWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.log.Write(p)
}

func (b *strictBackend) serve(c net.Conn, _ *bufio.Reader) {
	b.mu.Lock()
	log := &bytes.Buffer{}
	b.logs = append(b.logs, log)
	b.mu.Unlock()
	br := bufio.NewReader(io.TeeReader(c, logWriter{b, log}))
	var req http1.Request
	var body http1.Body
	for {
		if err := http1.ReadRequest(br, nil, &req); err != nil {
			b.refused(err)
			return
		}
		body.ResetRequest(br, &req, 0)
		n, err := io.Copy(io.Discard, &body)
		if err != nil {
			b.refused(err)
			return
		}
		b.mu.Lock()
		b.targets = append(b.targets, req.Target)
		b.mu.Unlock()
		if http1.HasToken(req.Header.Get("Upgrade"), "h2c") {
			// An h2c-capable server switches; the client would then
			// speak HTTP/2 to it past the proxy's rules.
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			b.refused(&http1.Error{Status: 101, Reason: "an h2c upgrade reached the backend"})
			io.Copy(io.Discard, br)
			return
		}
		msg := fmt.Sprintf("ok %s %d", req.Target, n)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
	}
}

// refused records a protocol error of the strict reader; a connection
// closed between or in the middle of requests is not one (the proxy cuts
// an upload it cannot finish).
func (b *strictBackend) refused(err error) {
	var pe *http1.Error
	if errors.As(err, &pe) {
		b.mu.Lock()
		b.errs = append(b.errs, err.Error())
		b.mu.Unlock()
	}
}

// count returns how many complete requests had a target starting with prefix.
func (b *strictBackend) count(prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, t := range b.targets {
		if strings.HasPrefix(t, prefix) {
			n++
		}
	}
	return n
}

// checkLogs frames every connection's bytes with api/http1 and with
// net/http: both must see the same complete messages.
func (b *strictBackend) checkLogs(t *testing.T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		t.Errorf("the strict backend refused what the proxy sent: %s", e)
	}
	for i, log := range b.logs {
		ours, std := frameOurs(log.Bytes()), frameStd(log.Bytes())
		if strings.Join(ours, "\n") != strings.Join(std, "\n") {
			t.Errorf("backend connection %d framed differently:\n api/http1: %q\n  net/http: %q\nbytes: %q",
				i, ours, std, log.Bytes())
		}
		for _, m := range ours {
			if strings.Contains(m, "SMUGGLED") {
				t.Errorf("a smuggled request reached the backend: %q", m)
			}
		}
	}
}

// frameOurs and frameStd list the complete requests in data as
// "METHOD TARGET body=N".
func frameOurs(data []byte) []string {
	br := bufio.NewReader(bytes.NewReader(data))
	var out []string
	var req http1.Request
	var body http1.Body
	for http1.ReadRequest(br, nil, &req) == nil {
		body.ResetRequest(br, &req, 0)
		n, err := io.Copy(io.Discard, &body)
		if err != nil {
			break
		}
		out = append(out, fmt.Sprintf("%s %s body=%d", req.Method, req.Target, n))
	}
	return out
}

func frameStd(data []byte) []string {
	br := bufio.NewReader(bytes.NewReader(data))
	var out []string
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		n, err := io.Copy(io.Discard, req.Body)
		if err != nil {
			return out
		}
		out = append(out, fmt.Sprintf("%s %s body=%d", req.Method, req.RequestURI, n))
	}
}

// smuggleCase is one payload. In it, "{P}" stands for the case's path prefix
// (/api/cN); ok means the payload is a valid request the backend must get
// (then the pipelined one follows), otherwise the client must get status
// and a closed connection, and the backend nothing. Status 0 (not ok): either
// outcome, as long as it is consistent (valid but odd input whose verdict
// is the reader's choice).
type smuggleCase struct {
	name    string
	payload string
	ok      bool
	status  int
}

const hostLine = "Host: 127.0.0.1\r\n"

// smuggled is a request hidden in a body or behind ambiguous framing.
const smuggled = "GET /api/SMUGGLED HTTP/1.1\r\n" + hostLine + "\r\n"

func post(fields, body string) string {
	return "POST {P}/x HTTP/1.1\r\n" + hostLine + fields + "\r\n" + body
}

func getWith(fields string) string { return "GET {P}/x HTTP/1.1\r\n" + hostLine + fields + "\r\n" }

func smuggleCases() []smuggleCase {
	te := "Transfer-Encoding: chunked\r\n"
	return []smuggleCase{
		// Controls: valid requests, hidden requests stay body.
		{name: "plain GET", payload: getWith(""), ok: true},
		{name: "request in a Content-Length body", payload: post(fmt.Sprintf("Content-Length: %d\r\n", len(smuggled)), smuggled), ok: true},
		{name: "request in a chunked body", payload: post(te, fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)), ok: true},
		{name: "equal duplicate Content-Length", payload: post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), ok: true},
		{name: "chunk extensions", payload: post(te, "5;a=b;c=\"d\"\r\nhello\r\n0;e\r\n\r\n"), ok: true},
		{name: "Upgrade h2c", payload: getWith("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"), ok: true},

		// CL.TE and TE.CL.
		{name: "CL.TE", payload: post("Content-Length: 6\r\n"+te, "0\r\n\r\nG"), status: 400},
		{name: "TE.CL", payload: post(te+"Content-Length: 4\r\n", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)), status: 400},
		{name: "CL.TE with smuggled request", payload: post(fmt.Sprintf("Content-Length: %d\r\n", 5+len(smuggled))+te, "0\r\n\r\n"+smuggled), status: 400},

		// TE.TE: obfuscated Transfer-Encoding.
		{name: "TE xchunked", payload: post("Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n", "hello"), status: 400},
		{name: "TE space before colon", payload: post("Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", "hello"), status: 400},
		{name: "TE chunked then identity", payload: post(te+"Transfer-Encoding: identity\r\n", "5\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "TE chunked, identity", payload: post("Transfer-Encoding: chunked, identity\r\n", "5\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "TE quoted", payload: post("Transfer-Encoding: \"chunked\"\r\n", "5\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "TE vertical tab", payload: post("Transfer-Encoding:\x0bchunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "TE folded", payload: post("X: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "hello"), status: 400},
		{name: "TE after bare LF", payload: post("X: y\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", "hello"), status: 400},
		{name: "TE unknown coding first", payload: post("Transfer-Encoding: gzip, chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), status: 501},
		{name: "TE in HTTP/1.0", payload: "POST {P}/x HTTP/1.0\r\n" + hostLine + te + "\r\n5\r\nhello\r\n0\r\n\r\n", status: 400},

		// Content-Length tricks.
		{name: "differing duplicate CL", payload: post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), status: 400},
		{name: "CL list differing", payload: post("Content-Length: 5, 6\r\n", "hello!"), status: 400},
		{name: "CL plus sign", payload: post("Content-Length: +5\r\n", "hello"), status: 400},
		{name: "CL minus sign", payload: post("Content-Length: -1\r\n", ""), status: 400},
		{name: "CL hex", payload: post("Content-Length: 0x5\r\n", "hello"), status: 400},
		{name: "CL space inside", payload: post("Content-Length: 1 0\r\n", "helloworld"), status: 400},
		{name: "CL overflow", payload: post("Content-Length: 99999999999999999999\r\n", "hello"), status: 400},

		// Chunk-size and chunk-extension tricks (found while the body streams).
		{name: "chunk size with space", payload: post(te, "5 \r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "chunk size 0x", payload: post(te, "0x5\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "chunk size overflow", payload: post(te, "10000000000000005\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "chunk size negative", payload: post(te, "-5\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "chunk data too long", payload: post(te, "3\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "chunk line bare LF", payload: post(te, "5\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "chunk ext bare CR", payload: post(te, "5;a=\rb\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "chunk ext empty name", payload: post(te, "5;\r\nhello\r\n0\r\n\r\n"), status: 400},
		{name: "chunk ext unterminated quote", payload: post(te, "5;a=\"b\r\nhello\r\n0\r\n\r\n"), status: 400},

		// Line ends, folding, control bytes.
		{name: "bare LF line ends", payload: "GET {P}/x HTTP/1.1\nHost: 127.0.0.1\n\n", status: 400},
		{name: "bare CR in a field", payload: getWith("X: a\rb\r\n"), status: 400},
		{name: "bare CR line end", payload: "GET {P}/x HTTP/1.1\r" + hostLine + "\r\n", status: 400},
		{name: "obs-fold", payload: getWith("X: a\r\n b\r\n"), status: 400},
		{name: "NUL in a field value", payload: getWith("X: a\x00b\r\n"), status: 400},
		{name: "NUL in a field name", payload: getWith("X\x00Y: a\r\n"), status: 400},
		{name: "control byte in a value", payload: getWith("X: a\x01b\r\n"), status: 400},
		{name: "DEL in a value", payload: getWith("X: a\x7fb\r\n"), status: 400},
		{name: "NUL in the target", payload: "GET {P}/a\x00b HTTP/1.1\r\n" + hostLine + "\r\n", status: 400},
		{name: "encoded NUL in the target", payload: "GET {P}/a%00b HTTP/1.1\r\n" + hostLine + "\r\n", status: 400},
		{name: "space before colon", payload: getWith("Host : other\r\n"), status: 400},
		{name: "two Hosts", payload: getWith("Host: other\r\n"), status: 400},

		// Heads over the limits (under the lease, the head does not fit the
		// plugin's buffer and goes back to the host).
		{name: "head over 32 KiB", payload: getWith("X: " + strings.Repeat("a", 40<<10) + "\r\n"), status: 431},
		{name: "101 fields", payload: getWith(strings.Repeat("X: a\r\n", 100)), status: 431},

		// Absolute-form targets with odd authorities.
		{name: "absolute userinfo", payload: "GET http://127.0.0.1@evil.example/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n", status: 400},
		{name: "absolute empty authority", payload: "GET http:///api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n", status: 400},
		{name: "absolute space in authority", payload: "GET http://a b/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n", status: 400},
		{name: "absolute fragment", payload: "GET http://127.0.0.1/api/cN/x#f HTTP/1.1\r\n" + hostLine + "\r\n", status: 400},
		{name: "absolute bad scheme", payload: "GET ftp://127.0.0.1/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n", status: 400},
		{name: "absolute backslash", payload: "GET http://127.0.0.1\\@evil/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n", status: 400},
		{name: "absolute other host", payload: "GET http://other.example/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n"},
		{name: "absolute unclosed bracket", payload: "GET http://[::1/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n"},
		{name: "absolute two ports", payload: "GET http://127.0.0.1:80:81/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n"},
		{name: "absolute percent in host", payload: "GET http://127.0.0.1%2f@x/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n"},
		{name: "absolute no path", payload: "GET http://127.0.0.1?/api/cN/x HTTP/1.1\r\n" + hostLine + "\r\n"},
	}
}

// TestE2ENoSmuggling runs every case on a fresh connection and on a leased one.
func TestE2ENoSmuggling(t *testing.T) {
	hosttest.CheckLeaks(t)
	b := newStrictBackend(t)
	s, _ := startProxy(t, entryConf("roundrobin", b.Addr()))
	cases := smuggleCases()
	want := map[string]int{}
	for i, tc := range cases {
		for _, leased := range []bool{false, true} {
			prefix := fmt.Sprintf("/api/c%d%s", i, map[bool]string{false: "f", true: "l"}[leased])
			t.Run(fmt.Sprintf("%s/leased=%v", tc.name, leased), func(t *testing.T) {
				want[prefix+"/"] = runSmuggleCase(t, s.Addr(), prefix, tc, leased)
			})
		}
	}
	// Every answer is in, so every request the proxy forwarded has been
	// read: count what reached the backend, per case.
	for prefix, n := range want {
		if got := b.count(prefix); got != n {
			t.Errorf("%s: the backend read %d requests, the client meant %d", prefix, got, n)
		}
	}
	if b.count("/api/SMUGGLED") != 0 {
		t.Errorf("a smuggled request reached the backend")
	}
	b.checkLogs(t)
}

// runSmuggleCase sends the case and checks the client's view; it returns
// how many requests the backend must have read for prefix.
func runSmuggleCase(t *testing.T, addr, prefix string, tc smuggleCase, leased bool) int {
	c := hosttest.Dial(t, addr)
	backend := 0
	if leased {
		if r := c.Get(prefix + "/first"); r.Status != 200 || !strings.HasPrefix(string(r.Body), "ok "+prefix+"/first") {
			t.Fatalf("first request: %d %q", r.Status, r.Body)
		}
		backend++
	}
	payload := strings.ReplaceAll(tc.payload, "{P}/", prefix+"/")
	payload = strings.ReplaceAll(payload, "/api/cN/", prefix+"/")
	after := "GET " + prefix + "/after HTTP/1.1\r\n" + hostLine + "\r\n"
	c.SendQuiet(payload + after)
	method, _, _ := strings.Cut(payload, " ")
	r, err := c.Read(method)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if !tc.ok && (tc.status != 0 || r.Status != 200) {
		if r.Status != tc.status && (tc.status != 0 || r.Status < 400 || r.Status > 499) {
			t.Errorf("status %d, want %d (%q)", r.Status, tc.status, r.Body)
		}
		if !c.Closed(5 * time.Second) {
			t.Errorf("the connection stayed open after a %d", r.Status)
		}
		return backend
	}
	proxied := strings.HasPrefix(string(r.Body), "ok "+prefix+"/x")
	if r.Status != 200 || !proxied && tc.ok {
		t.Fatalf("payload answered %d %q", r.Status, r.Body)
	}
	if proxied { // (an odd target may also name a static file)
		backend++
	}
	if r2, err := c.Read("GET"); err != nil || r2.Status != 200 || string(r2.Body) != "ok "+prefix+"/after 0" {
		t.Fatalf("pipelined request: %v %+v", err, r2)
	}
	return backend + 1
}
