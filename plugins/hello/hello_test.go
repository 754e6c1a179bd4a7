package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

var bin *hosttest.Bin

func TestMain(m *testing.M) {
	os.Exit(hosttest.Main(m.Run, &bin, "./plugins/hello"))
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	hosttest.Must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	hosttest.Must(t, err)
	return resp, string(b)
}

func TestHelloAnswersItsPathOnly(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("hello")
	s.Start()
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()

	resp, body := get(t, c, s.URL("/hello"))
	if resp.StatusCode != 200 || body != "Hello from the hello plugin\n" {
		t.Fatalf("/hello: %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	resp, body = get(t, c, s.URL("/hello/there?x=1"))
	if resp.StatusCode != 200 || body != "Hello from the hello plugin\n" {
		t.Fatalf("/hello/there: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, c, s.URL("/other"))
	if resp.StatusCode != 404 {
		t.Fatalf("/other: %d, want the static handler's 404", resp.StatusCode)
	}
	resp, body = get(t, c, s.URL("/"))
	if resp.StatusCode != 200 || body != "<h1>index</h1>\n" {
		t.Fatalf("/: %d %q", resp.StatusCode, body)
	}
}

// TestHelloHeadFields: the plugin's answers carry Date and the host's
// Server field, as every response of the server does (README).
func TestHelloHeadFields(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("hello")
	s.Start()
	c := hosttest.Dial(t, s.Addr())
	static := c.Get("/index.html")
	server := static.Header.Get("Server")
	if static.Status != 200 || !strings.HasPrefix(server, "capuchin") {
		t.Fatalf("static: %d, Server %q", static.Status, server)
	}
	for _, method := range []string{"GET", "HEAD"} {
		r := c.RoundTrip(method + " /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		if r.Status != 200 || r.Reason != "OK" || r.Header.Get("Server") != server {
			t.Errorf("%s /hello: %d %q, Server %q, want %q", method, r.Status, r.Reason, r.Header.Get("Server"), server)
		}
		if _, err := time.Parse(http.TimeFormat, r.Header.Get("Date")); err != nil {
			t.Errorf("%s /hello: Date: %v", method, err)
		}
	}
}

// TestHelloKeepAliveAndHead uses one raw connection for HEAD, GET and a
// static request, so the plugin's answers must leave it usable.
func TestHelloKeepAliveAndHead(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("hello")
	s.Start()
	c := hosttest.Dial(t, s.Addr())

	c.Send("HEAD /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	r := c.MustRead("HEAD")
	if r.Status != 200 || len(r.Body) != 0 || r.ContentLength != int64(len("Hello from the hello plugin\n")) {
		t.Fatalf("HEAD: %d cl=%d body=%q", r.Status, r.ContentLength, r.Body)
	}
	// Pipelined: the plugin's request, then a static one.
	c.Send("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if r := c.MustRead("GET"); r.Status != 200 || string(r.Body) != "Hello from the hello plugin\n" {
		t.Fatalf("GET /hello: %d %q", r.Status, r.Body)
	}
	if r := c.MustRead("GET"); r.Status != 200 || string(r.Body) != "<h1>index</h1>\n" {
		t.Fatalf("GET /index.html after the plugin: %d %q", r.Status, r.Body)
	}
}

func TestHelloMessage(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("hello")
	s.WriteFile("hello.conf", "# greeting\n[HELLO]\n    Message Bonjour de Capuchin\n")
	s.Start()
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	if resp, body := get(t, c, s.URL("/hello")); resp.StatusCode != 200 || body != "Bonjour de Capuchin\n" {
		t.Fatalf("/hello: %d %q", resp.StatusCode, body)
	}
}

// TestHelloBadConfigStopsStartup checks that a configuration error reaches
// the host's start-up error with the file and line.
func TestHelloBadConfigStopsStartup(t *testing.T) {
	s := hosttest.NewSite(t, bin)
	s.Load("hello")
	s.WriteFile("hello.conf", "[HELLO]\n    Message hi\n    Greeting hi\n")
	log := s.Refused(filepath.Join(s.Dir, "hello.conf") + ":3")
	if !strings.Contains(strings.ToLower(log), "greeting") {
		t.Fatalf("log lacks the key; log:\n%s", log)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	if msg, err := loadConfig(filepath.Join(dir, "missing.conf")); err != nil || msg != defaultMessage {
		t.Fatalf("missing file: %q %v", msg, err)
	}
	cases := []struct{ text, msg, err string }{
		{"[HELLO]\n    message  Hi there \n", "Hi there", ""},
		{"[hello]\n", defaultMessage, ""},
		{"[HELLO]\n    Message\n", "", "x.conf:2"},
		{"[OTHER]\n    Message hi\n", "", "x.conf:1"},
		{"[HELLO]\n    Colour red\n", "", "x.conf:2"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, "x.conf")
		hosttest.Must(t, os.WriteFile(p, []byte(c.text), 0o644))
		msg, err := loadConfig(p)
		if c.err == "" && (err != nil || msg != c.msg) {
			t.Errorf("%q: got %q, %v; want %q", c.text, msg, err, c.msg)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: got error %v; want one at %s", c.text, err, c.err)
		}
	}
}
