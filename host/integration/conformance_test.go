package integration

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// llhttpCase is one line of shared/conformance/llhttp/cases.jsonl.
type llhttpCase struct {
	Title   string `json:"title"`
	Line    int    `json:"line"`
	File    string `json:"file"`
	Type    string `json:"type"`
	Raw     string `json:"raw_b64"`
	Verdict string `json:"verdict"`
	Msgs    []struct {
		Complete bool `json:"complete"`
	} `json:"messages"`
}

// complete counts the messages llhttp read whole.
func (c *llhttpCase) complete() int {
	n := 0
	for _, m := range c.Msgs {
		if m.Complete {
			n++
		}
	}
	return n
}

// conformanceDeviations lists the strict request cases that Capuchin
// answers differently from llhttp on purpose, by title, with the reason.
// A case that starts to conform, or a new difference, fails the test.
var conformanceDeviations = map[string]string{
	"No HTTP version":                               "HTTP/0.9 request lines are not supported: 400",
	"Fragment in URI":                               "a fragment is not part of a request-target (RFC 9112 §3.2): 400",
	"`host:port` and basic auth":                    "userinfo in an absolute-form target must be treated as an error (RFC 9110 §4.2.4): 400",
	"M-SEARCH request":                              "the asterisk-form is only for OPTIONS (RFC 9112 §3.2.4): 400",
	"PRI request HTTP2":                             "the HTTP/2 preface is not an HTTP/1.1 request; asterisk-form only for OPTIONS: 400",
	"Content-Length reset when no body is received": "the second request is read as part of the first's 123-byte body; llhttp's test feeds it separately",

	// llhttp rejects at the first bad byte; Capuchin reads a line (or a head)
	// whole before judging it, so these unterminated inputs wait for more
	// bytes: 400 once the line ends, 408 after Timeout.
	"Error on `Content-Length` overflow":    "judged when the head is complete",
	"Error on duplicate `Content-Length`":   "judged when the head is complete",
	"Missing CRLF-CRLF before body":         "judged when the line ends",
	"Headers separated by dummy characters": "judged when the line ends",
	"Invalid HTTP version":                  "judged when the line ends",
	"Invalid space after start line":        "judged when the head is complete",
	"No LF after CR":                        "judged when the line ends",

	// Methods and protocols: any token is a method to the reader (the core
	// hands every one to the content handlers), and only HTTP/1.x is spoken.
	"HTTP protocol and ANNOUNCE method": "ANNOUNCE is a token: handed to the content handlers (static: 405 with Allow)",
	"Invalid method":                    "MKCOLA is a token: handed to the content handlers (static: 405 with Allow)",
	"SOURCE request with ICE":           "ICE/1.0 is not HTTP: 400",
	"OPTIONS request with RTSP":         "RTSP/1.0 is not HTTP: 400",
	"ANNOUNCE request with RTSP":        "RTSP/1.0 is not HTTP: 400",

	"POST with `chunked` as last transfer-encoding":                    "the target has a fragment (400); deflate is not implemented either (501)",
	"POST with `chunked` as last transfer-encoding (multiple headers)": "the target has a fragment (400); deflate is not implemented either (501)",
}

// findConformance locates shared/conformance/llhttp/cases.jsonl beside the
// repository (../shared from the module root), or returns "".
func findConformance(t *testing.T) string {
	root, err := moduleRoot()
	if err != nil {
		return ""
	}
	for _, p := range []string{
		filepath.Join(root, "..", "shared", "conformance", "llhttp", "cases.jsonl"),
		filepath.Join(root, "shared", "conformance", "llhttp", "cases.jsonl"),
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func loadCases(t *testing.T) []llhttpCase {
	path := findConformance(t)
	if path == "" {
		t.Skip("shared/conformance not found beside the repository")
	}
	b, err := os.ReadFile(path)
	must(t, err)
	var out []llhttpCase
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var c llhttpCase
		must(t, json.Unmarshal(line, &c))
		if c.Type == "request" {
			out = append(out, c)
		}
	}
	return out
}

// TestConformanceLLHTTP sends every strict llhttp request case to the
// running server and compares the outcome class: accepted (answered with a
// status that is not a protocol error), rejected (a protocol error status,
// or closed without answer), or incomplete (no answer while the server
// waits for more bytes).
func TestConformanceLLHTTP(t *testing.T) {
	cases := loadCases(t)
	s := newSite(t)
	s.Server = []string{"Timeout 5"}
	s.Start()
	seen := map[string]bool{}
	for _, c := range cases {
		seen[c.Title] = true
	}
	for title := range conformanceDeviations {
		if !seen[title] {
			t.Errorf("deviation %q names no case", title)
		}
	}
	// The cases that wait for more bytes take a read timeout each: run them
	// sixteen at a time.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, c := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if msg := checkCase(s.Addr(), c); msg != "" {
				t.Errorf("%s:%d %s", path.Base(c.File), c.Line, msg)
			}
		}()
	}
	wg.Wait()
}

// checkCase sends one case and compares the outcome with llhttp's; it
// returns "" when they agree (or differ as listed).
func checkCase(addr string, c llhttpCase) string {
	raw, err := base64.StdEncoding.DecodeString(c.Raw)
	if err != nil {
		return err.Error()
	}
	want := expectedClass(c.Verdict)
	got, statuses, err := sendCase(addr, withHost(raw))
	if err != nil {
		return err.Error()
	}
	if want == "incomplete" && got == "accept" && len(statuses) == c.complete() {
		got = "incomplete" // answered the complete messages, waits for the rest
	}
	reason, deviates := conformanceDeviations[c.Title]
	switch {
	case got != want && !deviates:
		return fmt.Sprintf("%q: llhttp %s, capuchin %s %v\n%q", c.Title, want, got, statuses, raw)
	case got == want && deviates:
		return fmt.Sprintf("%q now conforms (%s %v); remove it from the deviations (%s)", c.Title, got, statuses, reason)
	}
	return ""
}

func expectedClass(verdict string) string {
	switch verdict {
	case "accept", "accept-then-close", "accept-upgrade":
		return "accept"
	}
	return verdict // reject, incomplete
}

// withHost adds a Host field to an HTTP/1.1 request that has none, since
// RFC 9112 requires one (the corpus README: judge such cases with Host).
func withHost(raw []byte) []byte {
	lower := bytes.ToLower(raw)
	if bytes.Contains(lower, []byte("\nhost:")) {
		return raw
	}
	line := []byte(" HTTP/1.1\r\n")
	return bytes.ReplaceAll(raw, line, append(line, "Host: conformance.test\r\n"...))
}

// sendCase sends raw on a new connection and classifies what comes back.
func sendCase(addr string, raw []byte) (string, []int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close()
	if _, err = conn.Write(raw); err != nil {
		return "", nil, err
	}
	br := bufio.NewReader(conn)
	var statuses []int
	for {
		conn.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
		var resp http1.Response
		err := http1.ReadResponse(br, nil, &resp)
		if err != nil {
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			switch {
			case len(statuses) == 0 && timeout:
				return "incomplete", statuses, nil
			case len(statuses) == 0:
				return "reject", statuses, nil // closed without an answer
			}
			break
		}
		statuses = append(statuses, resp.Status)
		var body http1.Body
		body.ResetResponse(br, &resp, "GET")
		if _, err := body.Read(make([]byte, 1<<16)); err != nil && err.Error() != "EOF" {
			break
		}
		if protocolError(resp.Status, raw) {
			return "reject", statuses, nil
		}
		if resp.Close {
			break
		}
	}
	return "accept", statuses, nil
}

// protocolError reports whether status says the request could not be read
// (as opposed to a semantic answer such as 404, 405, 411 or 501 for a
// method).
func protocolError(status int, raw []byte) bool {
	switch status {
	case 400, 408, 413, 414, 417, 431, 505:
		return true
	case 501:
		return strings.Contains(strings.ToLower(string(raw)), "transfer-encoding")
	}
	return false
}
