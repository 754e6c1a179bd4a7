package http1

import (
	"bufio"
	"strings"
	"testing"
)

// browserGET is a typical browser request head of about 500 bytes.
const browserGET = "GET /static/app/main.css?v=20240611 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0\r\n" +
	"Accept: text/css,*/*;q=0.1\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.example.com/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a; theme=dark; lang=en\r\n" +
	"Sec-Fetch-Dest: style\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"If-Modified-Since: Tue, 11 Jun 2024 08:00:00 GMT\r\n" +
	"If-None-Match: \"5f3a-61a8c0e2\"\r\n" +
	"Priority: u=2\r\n" +
	"\r\n"

// BenchmarkReadRequest reads one browser GET head per iteration with a
// reused Request and reader, as a keep-alive connection does.
func BenchmarkReadRequest(b *testing.B) {
	src := strings.NewReader(browserGET)
	br := bufio.NewReaderSize(src, 4096)
	var req Request
	b.SetBytes(int64(len(browserGET)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(browserGET)
		br.Reset(src)
		if err := ReadRequest(br, nil, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadRequestAllocs pins the allocation count: one string for the head.
func TestReadRequestAllocs(t *testing.T) {
	src := strings.NewReader(browserGET)
	br := bufio.NewReaderSize(src, 4096)
	var req Request
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(browserGET)
		br.Reset(src)
		if err := ReadRequest(br, nil, &req); err != nil {
			t.Fatal(err)
		}
	})
	if len(browserGET) < 450 || len(browserGET) > 650 || allocs != 1 || len(req.Header) != 14 {
		t.Fatalf("%d bytes, %v allocs/op, %d fields", len(browserGET), allocs, len(req.Header))
	}
}
