package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReadRequest checks, for any input: no panic; the reader consumes
// exactly the head it reports (leading empty lines, Raw and the final
// CRLF); an accepted head has consistent framing; writing the accepted head
// back out and parsing it again gives the same request.
func FuzzReadRequest(f *testing.F) {
	for _, c := range loadLLHTTP(f) {
		if strings.HasPrefix(c.Type, "request") {
			f.Add(c.raw(f))
		}
	}
	for _, tc := range requestCases() {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := bytes.NewReader(data)
		br := bufio.NewReaderSize(rd, 64)
		var req Request
		err := ReadRequest(br, nil, &req)
		consumed := len(data) - rd.Len() - br.Buffered()
		if err != nil {
			checkRejected(t, err)
			return
		}
		head := strings.TrimLeft(string(data[:consumed]), "\r\n")
		if head != req.Raw+"\r\n" || !isCRLFs(data[:consumed-len(head)]) {
			t.Fatalf("consumed %q, Raw %q", data[:consumed], req.Raw)
		}
		checkAccepted(t, &req)
		checkReserialised(t, &req)
		var b Body
		if b.ResetRequest(br, &req, 1<<20) == nil {
			n, _ := io.Copy(io.Discard, &b)
			if int(n) > len(data)-consumed {
				t.Fatalf("body of %d bytes from %d", n, len(data)-consumed)
			}
		}
	})
}

// isCRLFs reports whether b is empty lines only: CRLFs and bare LFs.
func isCRLFs(b []byte) bool {
	for len(b) > 0 {
		switch {
		case b[0] == '\n':
			b = b[1:]
		case bytes.HasPrefix(b, []byte("\r\n")):
			b = b[2:]
		default:
			return false
		}
	}
	return true
}

func checkRejected(t *testing.T, err error) {
	var e *Error
	if errors.As(err, &e) {
		if StatusText(e.Status) == "" || e.Status < 400 || e.Status > 505 {
			t.Fatalf("odd status in %v", err)
		}
		return
	}
	if err != io.EOF && err != ErrIncomplete {
		t.Fatalf("unexpected error %v", err)
	}
}

func checkAccepted(t *testing.T, r *Request) {
	if r.Chunked && r.ContentLength >= 0 {
		t.Fatalf("chunked with length: %s", describe(r))
	}
	hosts := 0
	r.Header.Values("Host", func(string) { hosts++ })
	if r.Minor == 1 && hosts != 1 || r.Minor > 1 || hosts > 1 {
		t.Fatalf("host fields %d: %s", hosts, describe(r))
	}
	if !IsToken(r.Method) || r.Target == "" || r.ContentLength < -1 {
		t.Fatalf("bad request accepted: %s", describe(r))
	}
	if r.Minor == 0 && (r.Chunked || r.Upgrade || r.Expect100) {
		t.Fatalf("1.1 features in 1.0: %s", describe(r))
	}
}

// checkReserialised writes the head in canonical form and parses it again.
func checkReserialised(t *testing.T, r *Request) {
	var b []byte
	b = append(b, r.Method+" "+r.Target+" "+r.Proto()+"\r\n"...)
	for _, f := range r.Header {
		b = AppendField(b, f.Name, f.Value)
	}
	b = append(b, "\r\n"...)
	var again Request
	if err := ReadRequest(bufio.NewReader(bytes.NewReader(b)), nil, &again); err != nil {
		t.Fatalf("re-reading %q: %v", b, err)
	}
	if describe(&again) != describe(r) {
		t.Fatalf("re-read differs:\n%s\n%s", describe(&again), describe(r))
	}
}

// FuzzChunkedBody feeds any bytes as a chunked body. Properties: no panic;
// a body read to its end stopped exactly at the end of the framing (the
// same bytes cut one short give io.ErrUnexpectedEOF, the bytes after it are
// untouched); its data written again with ChunkedWriter reads back equal.
func FuzzChunkedBody(f *testing.F) {
	for _, c := range chunkedCases() {
		f.Add([]byte(c.body))
	}
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		body, end, err := decodeChunked(data)
		if err != nil {
			if err != io.ErrUnexpectedEOF && StatusOf(err) != 400 && StatusOf(err) != 413 {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if _, _, err := decodeChunked(data[:end-1]); err != io.ErrUnexpectedEOF {
			t.Fatalf("cut one byte short of %d: %v", end, err)
		}
		var wire bytes.Buffer
		cw := ChunkedWriter{W: &wire}
		cw.Write(body)
		cw.Close()
		again, end2, err := decodeChunked(wire.Bytes())
		if err != nil || !bytes.Equal(again, body) || end2 != wire.Len() {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// decodeChunked reads data as a chunked body and returns the data and the
// offset where the framing ended.
func decodeChunked(data []byte) ([]byte, int, error) {
	rd := bytes.NewReader(data)
	br := bufio.NewReaderSize(rd, 64)
	var b Body
	b.ResetRequest(br, &Request{Chunked: true, ContentLength: -1}, 1<<16)
	body, err := io.ReadAll(&b)
	return body, len(data) - rd.Len() - br.Buffered(), err
}
