package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

const nextReq = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"

// readBody reads a request head from br and its body to its end with
// Reads of p bytes (p 0: what is buffered with ReadBuffered first), and
// returns the body with the error and the Body.
func readBody(t *testing.T, br *bufio.Reader, limit int64, p int) (string, *Body, error) {
	t.Helper()
	var req Request
	if err := ReadRequest(br, nil, &req); err != nil {
		t.Fatalf("head: %v", err)
	}
	var b Body
	if err := b.ResetRequest(br, &req, limit); err != nil {
		return "", &b, err
	}
	var out bytes.Buffer
	buf := make([]byte, max(p, 4096))
	for {
		if p == 0 { // as the proxy copies: what is buffered without a copy, then Read
			if got := b.ReadBuffered(); len(got) > 0 {
				out.Write(got)
				continue
			}
		}
		n, err := b.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.String(), &b, nil
		}
		if err != nil {
			return out.String(), &b, err
		}
	}
}

type bodyCase struct {
	name     string
	body     string // bytes after the chunked head
	limit    int64
	want     string
	status   int   // 0: success
	errIs    error // for non-protocol errors
	trailers int
}

func chunkedCases() []bodyCase {
	return []bodyCase{
		{name: "one chunk", body: "5\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{name: "hex sizes", body: "a\r\n0123456789\r\nA\r\n0123456789\r\n1f\r\n" + strings.Repeat("x", 31) + "\r\n0\r\n\r\n",
			want: "01234567890123456789" + strings.Repeat("x", 31)},
		{name: "empty body", body: "0\r\n\r\n", want: ""},
		{name: "zeros in last chunk", body: "5\r\nhello\r\n000\r\n\r\n", want: "hello"},
		{name: "leading zeros", body: "005\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{name: "20 digits, 19 of them leading zeros", body: "00000000000000000005\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{name: "16 digits after a zero", body: "01000000000000000\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "extensions", body: "5;a=b;c\r\nhello\r\n0;last\r\n\r\n", want: "hello"},
		{name: "extensions with BWS", body: "5 ;\ta = b ; c\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{name: "quoted extension", body: "5;a=\"I \\\"love\\\"; x\"\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{name: "trailers", body: "5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: two\r\n\r\n", want: "hello", trailers: 2},
		// Bad framing: 400.
		{name: "no extension after semicolon", body: "5;\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "extension without name", body: "5;=b\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "extension value missing", body: "5;a=\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "no semicolon before extension", body: "5 ext\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "space after size", body: "5 \r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "tab after size", body: "5\t\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "unbalanced quote", body: "5;a=\"b;c\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "garbage after quoted value", body: "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "control byte in extension", body: "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "missing CRLF after data", body: "5\r\nhelloX\r\n0\r\n\r\n", status: 400},
		{name: "bare LF after data", body: "5\r\nhello\n0\r\n\r\n", status: 400},
		{name: "bare CR after data", body: "5\r\nhello\r0\r\n\r\n", status: 400},
		{name: "bare LF after size", body: "5\nhello\r\n0\r\n\r\n", status: 400},
		{name: "CR CR LF after size", body: "5\r\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "bare LF after last chunk", body: "5\r\nhello\r\n0\n\r\n", status: 400},
		{name: "bare LF ends trailer", body: "5\r\nhello\r\n0\r\n\n", status: 400},
		{name: "empty size", body: "\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "negative size", body: "-5\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "plus sign", body: "+5\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "0x prefix", body: "0x5\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "not hex", body: "g\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "huge hex", body: "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "overflow to negative", body: "8000000000000000\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "missing last chunk", body: "3\r\nfoo\r\n\r\n", status: 400},
		{name: "obs-fold in trailer", body: "0\r\nX: 1\r\n 2\r\n\r\n", status: 400},
		{name: "trailer without colon", body: "0\r\nX\r\n\r\n", status: 400},
		{name: "trailer bad name", body: "0\r\nX Y: 1\r\n\r\n", status: 400},
		{name: "trailer control byte", body: "0\r\nX: \x01\r\n\r\n", status: 400},
		{name: "trailer section too large", body: "0\r\n" + strings.Repeat("X-Long: "+strings.Repeat("v", 1000)+"\r\n", 9) + "\r\n", status: 400},
		// Limits.
		{name: "at the limit", body: "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limit: 10, want: "helloworld"},
		{name: "over the limit", body: "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", limit: 10, status: 413, want: "hello"},
		{name: "huge chunk over the limit", body: "fffffffffffffff\r\n", limit: 1 << 20, status: 413},
		// Peer closes early.
		{name: "eof in size", body: "5", status: -1, errIs: io.ErrUnexpectedEOF},
		{name: "eof in data", body: "5\r\nhel", status: -1, errIs: io.ErrUnexpectedEOF, want: "hel"},
		{name: "eof before data CRLF", body: "5\r\nhello", status: -1, errIs: io.ErrUnexpectedEOF, want: "hello"},
		{name: "eof after data CRLF", body: "5\r\nhello\r\n", status: -1, errIs: io.ErrUnexpectedEOF, want: "hello"},
		{name: "eof in trailer", body: "5\r\nhello\r\n0\r\nX: 1\r\n", status: -1, errIs: io.ErrUnexpectedEOF, want: "hello"},
		{name: "eof at once", body: "", status: -1, errIs: io.ErrUnexpectedEOF},
	}
}

const chunkedHead = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

func TestChunkedBody(t *testing.T) {
	for _, tc := range chunkedCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := chunkedHead + tc.body
			if tc.errIs == nil {
				in += nextReq // pipelined: must stay in the buffer
			}
			variants := []struct {
				name string
				br   *bufio.Reader
				p    int
			}{
				{"whole", bufio.NewReader(strings.NewReader(in)), 4096},
				{"bytewise", bufio.NewReaderSize(oneByteReader{strings.NewReader(in)}, 64), 1},
				{"odd", bufio.NewReaderSize(oneByteReader{strings.NewReader(in)}, 64), 3},
			}
			for _, v := range variants {
				got, b, err := readBody(t, v.br, tc.limit, v.p)
				checkBodyCase(t, v.name, tc, got, b, err)
				if err == nil {
					checkNextRequest(t, v.name, v.br)
				}
			}
		})
	}
}

func checkBodyCase(t *testing.T, vname string, tc bodyCase, got string, b *Body, err error) {
	t.Helper()
	if s := statusOf(err); s != tc.status {
		t.Fatalf("%s: err %v (status %d), want %d", vname, err, s, tc.status)
	}
	if tc.errIs != nil && !errors.Is(err, tc.errIs) {
		t.Fatalf("%s: err %v, want %v", vname, err, tc.errIs)
	}
	if tc.status == 413 && err != ErrBodyTooLarge {
		t.Fatalf("%s: err %v, want ErrBodyTooLarge", vname, err)
	}
	if !strings.HasPrefix(got, tc.want) || err == nil && got != tc.want {
		t.Fatalf("%s: body %q, want %q", vname, got, tc.want)
	}
	if err == nil && (len(b.Trailer()) != tc.trailers || !b.Done() || !b.Chunked() || b.Total() != int64(len(got))) {
		t.Fatalf("%s: trailers %d done %v chunked %v total %d", vname, len(b.Trailer()), b.Done(), b.Chunked(), b.Total())
	}
	if err != nil {
		if _, again := b.Read(make([]byte, 8)); again != err {
			t.Fatalf("%s: error not sticky: %v then %v", vname, err, again)
		}
	}
}

func checkNextRequest(t *testing.T, vname string, br *bufio.Reader) {
	t.Helper()
	var req Request
	if err := ReadRequest(br, nil, &req); err != nil || req.Path != "/next" {
		t.Fatalf("%s: next request: %v %q", vname, err, req.Path)
	}
	if err := ReadRequest(br, nil, &req); err != io.EOF {
		t.Fatalf("%s: after next: %v", vname, err)
	}
}

func TestTrailerValues(t *testing.T) {
	br := bufio.NewReader(strings.NewReader(chunkedHead + "1\r\nx\r\n0\r\nExpires: never\r\nX-Sum:\t abc \r\n\r\n"))
	got, b, err := readBody(t, br, 0, 64)
	tr := b.Trailer()
	if err != nil || got != "x" || len(tr) != 2 || tr.Get("x-sum") != "abc" || tr[0].Name != "Expires" {
		t.Fatalf("%v %q %v", err, got, tr)
	}
}

func TestContentLengthBody(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		limit int64
		want  string
		err   error
	}{
		{"exact", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + nextReq, 0, "hello", nil},
		{"zero", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n" + nextReq, 0, "", nil},
		{"none", "GET / HTTP/1.1\r\nHost: a\r\n\r\n" + nextReq, 0, "", nil},
		{"1.0 with length", "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc" + nextReq, 0, "abc", nil},
		{"at the limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + nextReq, 5, "hello", nil},
		{"over the limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nhello!", 5, "", ErrBodyTooLarge},
		{"peer closes early", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello", 0, "hello", io.ErrUnexpectedEOF},
		{"peer closes at once", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", 0, "", io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []int{1, 4096, 0} {
				br := bufio.NewReaderSize(oneByteReader{strings.NewReader(tc.in)}, 16)
				got, b, err := readBody(t, br, tc.limit, p)
				if err != tc.err || got != tc.want {
					t.Fatalf("p=%d: %q %v, want %q %v", p, got, err, tc.want, tc.err)
				}
				if err == nil {
					if !b.Done() || b.Total() != int64(len(got)) || b.Chunked() {
						t.Fatalf("done %v total %d", b.Done(), b.Total())
					}
					checkNextRequest(t, "", br)
				}
			}
		})
	}
}

// TestBodyReadDeliversDataBeforeEOF: the last bytes come with a nil error,
// io.EOF with the next call (so io.Reader users never lose data).
func TestBodyReadDeliversDataBeforeEOF(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"))
	var req Request
	if err := ReadRequest(br, nil, &req); err != nil {
		t.Fatal(err)
	}
	var b Body
	b.ResetRequest(br, &req, 0)
	buf := make([]byte, 10)
	if n, err := b.Read(buf); n != 3 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
	if n, err := b.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("%d %v", n, err)
	}
}

// TestBodyTimeout: a peer that stops sending in the middle of a body over a
// real connection with a deadline gives a 408 error.
func TestBodyTimeout(t *testing.T) {
	checkGoroutines(t)
	client, server := tcpPair(t)
	io.WriteString(client, chunkedHead+"5\r\nhel")
	br := bufio.NewReader(server)
	var req Request
	if err := ReadRequest(br, nil, &req); err != nil {
		t.Fatal(err)
	}
	var b Body
	b.ResetRequest(br, &req, 0)
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	got, err := io.ReadAll(&b)
	if string(got) != "hel" || StatusOf(err) != 408 {
		t.Fatalf("%q %v, want 408", got, err)
	}
}

// TestChunkedWriterRoundTrip writes with ChunkedWriter and reads back.
func TestChunkedWriterRoundTrip(t *testing.T) {
	var wire bytes.Buffer
	wire.WriteString(chunkedHead)
	cw := &ChunkedWriter{W: &wire}
	var want strings.Builder
	for i := 0; i < 40; i++ {
		part := strings.Repeat(string(rune('a'+i%26)), i*37)
		want.WriteString(part)
		if n, err := cw.Write([]byte(part)); n != len(part) || err != nil {
			t.Fatal(n, err)
		}
	}
	cw.Close()
	wire.WriteString(nextReq)
	br := bufio.NewReader(&wire)
	got, _, err := readBody(t, br, 0, 100)
	if err != nil || got != want.String() {
		t.Fatalf("%v, %d bytes, want %d", err, len(got), want.Len())
	}
	checkNextRequest(t, "", br)
}

// CloseTrailer ends a chunked body with trailer fields that a Body reads
// back.
func TestChunkedWriterTrailer(t *testing.T) {
	var out bytes.Buffer
	cw := ChunkedWriter{W: &out}
	cw.Write([]byte("hello"))
	if err := cw.CloseTrailer(Header{{Name: "X-Sum", Value: "s1"}, {Name: "X-More", Value: "m"}}); err != nil {
		t.Fatal(err)
	}
	if want := "5\r\nhello\r\n0\r\nX-Sum: s1\r\nX-More: m\r\n\r\n"; out.String() != want {
		t.Fatalf("wrote %q, want %q", out.String(), want)
	}
	var b Body
	req := Request{Chunked: true, ContentLength: -1}
	if err := b.ResetRequest(bufio.NewReader(&out), &req, 0); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(&b)
	if err != nil || string(body) != "hello" || b.Trailer().Get("X-Sum") != "s1" {
		t.Fatalf("read back %q %v trailer %v", body, err, b.Trailer())
	}
}
