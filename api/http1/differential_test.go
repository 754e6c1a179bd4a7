package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Differential tests: the same bytes go to our readers (ReadRequest + Body,
// ReadResponse + Body) and to net/http's (http.ReadRequest,
// http.ReadResponse), each on its own bufio.Reader. Where both accept a
// message, they must agree on its framing: method and target (status for a
// response), Host, the set of header fields, the decoded body and the offset
// where the message ends (so the next pipelined message starts at the same
// byte for both). Where one rejects and the other accepts, the readers merely
// differ in strictness; that is allowed (ours is meant to be the stricter).
//
// Deliberate differences in what "the same" means (documented in README.md,
// "HTTP behaviour"):
//
//   - Content-Length, Transfer-Encoding and Trailer are framing fields:
//     net/http removes or merges them (duplicate equal Content-Lengths become
//     one, Transfer-Encoding is deleted), so they are compared as the framing
//     they produce (chunked or not, body, end offset), not as fields.
//   - Connection is compared as the close decision it yields (net/http
//     removes "close" from the fields). For a response ours may close where
//     net/http keeps the connection (after a close-delimited body, or a
//     suspect head), never the other way round: closing more is safe for a
//     proxy, reusing more is not.
//   - Host is compared as the request's host: net/http moves the field out
//     of the header into Request.Host, as we do into Request.Host.
//   - Field names compare case-insensitively (net/http canonicalises them).
//   - A response without Content-Length or chunked framing is
//     close-delimited: both read to the end of input, so the end offset of
//     such a response is not compared.
//
// Beyond these, no input that both readers accept may be framed differently:
// there is no exception list, a new difference fails.

// framingOf is one reader's view of a message: everything that decides where
// it ends and what a server or proxy acts on.
type framingOf struct {
	Start   string // "METHOD target" or "status"
	Host    string
	Header  map[string][]string
	Chunked bool
	Close   bool // the connection ends after this message
	Body    string
	End     int // offset after the message; -1 for a close-delimited body
}

// framingFields are compared as framing, not as fields.
var framingFields = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Trailer": true,
	"Host": true, "Connection": true}

func headerSet(h map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, vs := range h {
		k = textproto.CanonicalMIMEHeaderKey(k)
		if !framingFields[k] {
			out[k] = append(out[k], vs...)
		}
	}
	return out
}

func ourHeaderSet(h Header) map[string][]string {
	m := map[string][]string{}
	for _, f := range h { // canonical names, so values keep their wire order
		k := textproto.CanonicalMIMEHeaderKey(f.Name)
		m[k] = append(m[k], f.Value)
	}
	return headerSet(m)
}

// consumed returns how many bytes of data a reader over rd with buffer br
// has used.
func consumed(data []byte, rd *bytes.Reader, br *bufio.Reader) int {
	return len(data) - rd.Len() - br.Buffered()
}

const diffBodyLimit = 1 << 20

// ourRequest reads one request with api/http1; nil when it rejects.
func ourRequest(data []byte) *framingOf {
	rd := bytes.NewReader(data)
	br := bufio.NewReaderSize(rd, 4096)
	var req Request
	if err := ReadRequest(br, nil, &req); err != nil {
		return nil
	}
	var b Body
	if b.ResetRequest(br, &req, diffBodyLimit) != nil {
		return nil
	}
	body, err := io.ReadAll(&b)
	if err != nil {
		return nil
	}
	return &framingOf{Start: req.Method + " " + req.Target, Host: req.Host, Header: ourHeaderSet(req.Header),
		Chunked: req.Chunked, Close: req.Close, Body: string(body), End: consumed(data, rd, br)}
}

// stdRequest reads one request with net/http; nil when it rejects.
func stdRequest(data []byte) *framingOf {
	rd := bytes.NewReader(data)
	br := bufio.NewReaderSize(rd, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, diffBodyLimit+1))
	if err != nil || len(body) > diffBodyLimit {
		return nil
	}
	chunked := len(req.TransferEncoding) > 0 && req.TransferEncoding[0] == "chunked"
	return &framingOf{Start: req.Method + " " + req.RequestURI, Host: req.Host, Header: headerSet(req.Header),
		Chunked: chunked, Close: req.Close, Body: string(body), End: consumed(data, rd, br)}
}

// ourResponse reads one response to a request with method with api/http1.
func ourResponse(data []byte, method string) *framingOf {
	rd := bytes.NewReader(data)
	br := bufio.NewReaderSize(rd, 4096)
	var resp Response
	if err := ReadResponse(br, nil, &resp); err != nil {
		return nil
	}
	var b Body
	b.ResetResponse(br, &resp, method)
	body, err := io.ReadAll(io.LimitReader(&b, diffBodyLimit+1))
	if err != nil || len(body) > diffBodyLimit {
		return nil
	}
	end := consumed(data, rd, br)
	if resp.BodyAllowed(method) && !resp.Chunked && resp.ContentLength < 0 {
		end = -1
	}
	return &framingOf{Start: strconv.Itoa(resp.Status), Header: ourHeaderSet(resp.Header),
		Chunked: b.Chunked(), Close: resp.Close, Body: string(body), End: end}
}

// stdResponse reads one response with net/http.
func stdResponse(data []byte, method string) *framingOf {
	rd := bytes.NewReader(data)
	br := bufio.NewReaderSize(rd, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, diffBodyLimit+1))
	if err != nil || len(body) > diffBodyLimit {
		return nil
	}
	chunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked" &&
		bodyAllowedStd(resp.StatusCode, method) // framing of a body that cannot be there
	end := consumed(data, rd, br)
	if !chunked && resp.ContentLength < 0 && bodyAllowedStd(resp.StatusCode, method) {
		end = -1
	}
	return &framingOf{Start: strconv.Itoa(resp.StatusCode), Header: headerSet(resp.Header),
		Chunked: chunked, Close: resp.Close, Body: string(body), End: end}
}

func bodyAllowedStd(status int, method string) bool {
	r := Response{Status: status}
	return r.BodyAllowed(method)
}

// compareFraming fails when both readers accepted data and framed it
// differently.
func compareFraming(t *testing.T, isResponse bool, data []byte, ours, std *framingOf) {
	t.Helper()
	if ours == nil || std == nil {
		return
	}
	if isResponse && std.Close && !ours.Close {
		t.Fatalf("net/http closes after %q, api/http1 would reuse the connection", data)
	}
	if isResponse {
		o := *ours
		o.Close = std.Close
		ours = &o
	}
	if !reflect.DeepEqual(ours, std) {
		t.Fatalf("both accept %q but frame it differently:\n api/http1: %+v\n  net/http: %+v", data, *ours, *std)
	}
}

// FuzzRequestDifferential: api/http1's request reader against net/http's.
// Seeds: the llhttp request cases, the FuzzReadRequest corpus, the reader's
// table cases and generated smuggling combinations.
func FuzzRequestDifferential(f *testing.F) {
	for _, c := range loadLLHTTP(f) {
		if strings.HasPrefix(c.Type, "request") {
			f.Add(c.raw(f))
		}
	}
	for _, s := range corpusSeeds(f, "FuzzReadRequest") {
		f.Add(s)
	}
	for _, tc := range requestCases() {
		f.Add([]byte(tc.in))
	}
	for _, s := range sample(generatedRequests()) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareFraming(t, false, data, ourRequest(data), stdRequest(data))
	})
}

// FuzzResponseDifferential: api/http1's response reader against net/http's,
// for answers to GET and to HEAD (the first input byte picks the method).
func FuzzResponseDifferential(f *testing.F) {
	for _, c := range loadLLHTTP(f) {
		if strings.HasPrefix(c.Type, "response") {
			f.Add(append([]byte{0}, c.raw(f)...))
		}
	}
	for _, s := range sample(generatedResponses()) {
		f.Add(append([]byte{0}, s...))
		f.Add(append([]byte{1}, s...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		method := "GET"
		if data[0]&1 == 1 {
			method = "HEAD"
		}
		data = data[1:]
		compareFraming(t, true, data, ourResponse(data, method), stdResponse(data, method))
	})
}

// sample picks every 64th generated input as a fuzz seed; all of them run
// in TestDifferentialGenerated, much faster than as seeds.
func sample(in [][]byte) [][]byte { return every(in, 64) }

func every(in [][]byte, n int) [][]byte {
	var out [][]byte
	for i := 0; i < len(in); i += n {
		out = append(out, in[i])
	}
	return out
}

// corpusSeeds reads the inputs of another fuzz target's seed corpus
// (testdata/fuzz/NAME), files of the form "go test fuzz v1\n[]byte(...)".
func corpusSeeds(t testing.TB, name string) [][]byte {
	dir := filepath.Join("testdata", "fuzz", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("seed corpus: %v", err)
	}
	var out [][]byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("seed corpus: %v", err)
		}
		_, lit, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		lit = strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")")
		s, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("seed corpus %s: %v", e.Name(), err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// Pieces of the generated requests: every request line with every pair of
// framing field lines and every body, followed by a second request (so a
// disagreement about where the first ends shows as a different offset).
var (
	genRequestLines = []string{
		"GET / HTTP/1.1", "POST /p HTTP/1.1", "GET http://example.com/x HTTP/1.1",
		"POST /p HTTP/1.0", "GET http://a@b/ HTTP/1.1", "GET //x HTTP/1.1",
	}
	genFramingLines = []string{
		"", "Content-Length: 5", "Content-Length: 0", "Content-Length: +5", "Content-Length: -1",
		"Content-Length: 5, 5", "Content-Length: 05", "Content-Length:5 ", "Content-Length: 1_0",
		"Content-Length: 0x5", "Content-Length: 5\x00", "Content-Length : 5",
		"Transfer-Encoding: chunked", "Transfer-Encoding: Chunked", "Transfer-Encoding: chunked ",
		"Transfer-Encoding:\tchunked", "Transfer-Encoding: xchunked", "Transfer-Encoding: chunked, identity",
		"Transfer-Encoding: identity, chunked", "Transfer-Encoding: gzip, chunked", "Transfer-Encoding : chunked",
		"Transfer-Encoding: \"chunked\"", "Transfer-Encoding: chunked\x0b", "Transfer-Encoding: chu\x00nked",
		"Transfer-encoding: cow", "X: y\r\n Transfer-Encoding: chunked", "X: y\n Transfer-Encoding: chunked",
		"Transfer-Encoding\t: chunked", " Transfer-Encoding: chunked", "Host: other", "Host:",
		"Trailer: X", "Expect: 100-continue", "Connection: close", "Upgrade: h2c\r\nConnection: Upgrade",
	}
	genBodies = []string{
		"", "hello", "5\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n",
		"5;a=\"x\"\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "5\nhello\n0\n\n", "5\rhello\r\n0\r\n\r\n",
		"05\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\nX: y\r\n\r\n", "5\r\nhelloXX0\r\n\r\n",
		"ffffffffffffffff1\r\nx\r\n0\r\n\r\n", "5;\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n",
		"-5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0;x\r\n\r\n",
	}
	genNext = "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"
)

func generatedRequests() [][]byte {
	var out [][]byte
	for _, rl := range genRequestLines {
		for i, a := range genFramingLines {
			for _, b := range genFramingLines[i:] {
				for _, body := range genBodies {
					out = append(out, []byte(genRequest(rl, a, b, body)))
				}
			}
		}
	}
	return out
}

func genRequest(requestLine, a, b, body string) string {
	var s strings.Builder
	s.WriteString(requestLine + "\r\nHost: example.com\r\n")
	for _, l := range []string{a, b} {
		if l != "" {
			s.WriteString(l + "\r\n")
		}
	}
	return s.String() + "\r\n" + body + genNext
}

var genStatusLines = []string{
	"HTTP/1.1 200 OK", "HTTP/1.1 204 No Content", "HTTP/1.1 304 Not Modified", "HTTP/1.0 200 OK",
	"HTTP/1.1 100 Continue", "HTTP/1.1 200", "HTTP/1.1 200 ", "HTTP/1.1 999 X", "HTTP/1.1  200 OK",
}

func generatedResponses() [][]byte {
	var out [][]byte
	for _, sl := range genStatusLines {
		for i, a := range genFramingLines {
			for _, b := range genFramingLines[i:] {
				for _, body := range genBodies {
					out = append(out, []byte(genResponse(sl, a, b, body)))
				}
			}
		}
	}
	return out
}

func genResponse(statusLine, a, b, body string) string {
	var s strings.Builder
	s.WriteString(statusLine + "\r\n")
	for _, l := range []string{a, b} {
		if l != "" {
			s.WriteString(l + "\r\n")
		}
	}
	return s.String() + "\r\n" + body + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
}

// TestDifferentialGenerated compares the readers on every generated input
// and fails if too few are accepted by both, so that a generator that stops
// exercising the "both accept" path (where differences matter) is noticed.
// Under the race detector (which adds nothing to this single goroutine) it
// takes every 16th input; `make test` also runs it whole without -race.
func TestDifferentialGenerated(t *testing.T) {
	reqs, resps, min := generatedRequests(), generatedResponses(), 100
	if raceEnabled {
		reqs, resps, min = every(reqs, 16), every(resps, 16), 100/16
	}
	both, total := 0, 0
	for _, d := range reqs {
		total++
		o, s := ourRequest(d), stdRequest(d)
		compareFraming(t, false, d, o, s)
		if o != nil && s != nil {
			both++
		}
	}
	bothResp := 0
	for _, d := range resps {
		o, s := ourResponse(d, "GET"), stdResponse(d, "GET")
		compareFraming(t, true, d, o, s)
		if o != nil && s != nil {
			bothResp++
		}
	}
	if both < min || bothResp < min {
		t.Errorf("only %d requests and %d responses accepted by both readers", both, bothResp)
	}
	t.Logf("%d generated requests, %d accepted by both; %d responses accepted by both", total, both, bothResp)
}
