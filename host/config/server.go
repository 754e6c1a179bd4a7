package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/capuchin/capuchin/api/conf"
)

// Server holds the [SERVER] section of capuchin.conf. Keys and defaults:
//
//	Listen ADDR [tls]      repeatable; "2001" (every address), "127.0.0.1:2001",
//	                       "[::1]:2001", "host:port"; default 2001; "tls": HTTPS
//	                       (see tls.go for the TLS keys)
//	Workers N              Go scheduler threads (GOMAXPROCS); 0 = one per core; default 0
//	Timeout S              seconds a client may take to send a request, and
//	                       to accept response bytes; default 15
//	DeferAccept on|off     the kernel holds a new connection until its first bytes
//	                       come, a second at most (Linux's TCP_DEFER_ACCEPT, as
//	                       nginx's "deferred" and HAProxy's "defer-accept"; no
//	                       effect elsewhere); default on
//	KeepAlive on|off       persistent connections; default on
//	KeepAliveTimeout S     idle seconds before a kept-alive connection closes; default 5
//	MaxKeepAliveRequest N  requests per connection; default 1000
//	MaxRequestSize KiB     largest request body; 0 = no limit; default 1024
//	MaxHeaderSize KiB      largest request head; default 32
//	Indexfile NAMES        index files, in order; default "index.html index.htm"
//	HideVersion on|off     "Server: capuchin" instead of "capuchin/VERSION"; default off
//	SymLink on|off         follow symbolic links in document roots; default off
//	DefaultMimeType TYPE   type of files with an unknown extension; default text/plain
//	PidFile PATH           write the process id here while running; default none
//	ShutdownTimeout S      seconds to finish requests in flight on SIGTERM; default 10
//	FileCacheValid S       seconds a small static file (up to 16 KiB) is served
//	                       from memory before it is opened again; 0 = off; default 1
//	MaxConnections N       simultaneous client connections; past it a new one gets
//	                       503 and is closed; 0 = derived from the descriptor limit
//	                       (half of it less a reserve); default 0
//	MetricsURL PATH        the path (starting with /) at which the host answers
//	                       Prometheus' scrape, on every virtual host and
//	                       connection, before any plugin; default none (off)
type Server struct {
	Listen              []Listener
	Workers             int
	Timeout             time.Duration
	DeferAccept         bool
	KeepAlive           bool
	KeepAliveTimeout    time.Duration
	MaxKeepAliveRequest int
	MaxRequestSize      int64
	MaxHeaderSize       int
	IndexFiles          []string
	HideVersion         bool
	SymLink             bool
	DefaultMimeType     string
	PidFile             string
	ShutdownTimeout     time.Duration
	FileCacheValid      time.Duration
	MaxConnections      int
	TLSClientCA         *x509.CertPool // TLSClientCA; nil: no client certificate asked for
	MetricsURL          string
}

// Listener is one Listen address with the place it was configured.
type Listener struct {
	Addr  string // host:port for net.Listen
	Where string // file:line
	TLS   bool   // HTTPS
}

func defaultServer() Server {
	return Server{
		Timeout:             15 * time.Second,
		DeferAccept:         true,
		KeepAlive:           true,
		KeepAliveTimeout:    5 * time.Second,
		MaxKeepAliveRequest: 1000,
		MaxRequestSize:      1024 << 10,
		MaxHeaderSize:       32 << 10,
		IndexFiles:          []string{"index.html", "index.htm"},
		DefaultMimeType:     "text/plain",
		ShutdownTimeout:     10 * time.Second,
		FileCacheValid:      time.Second,
	}
}

func loadServer(path string) (Server, error) {
	s := defaultServer()
	secs, err := sections(path, "SERVER")
	if err != nil {
		return s, err
	}
	sec := secs["SERVER"]
	if sec == nil {
		return s, &conf.Error{File: path, Msg: "no [SERVER] section"}
	}
	if err := sec.Visit(s.keys(filepath.Dir(path))); err != nil {
		return s, err
	}
	if len(s.Listen) == 0 {
		s.Listen = []Listener{{Addr: ":2001", Where: path}}
	}
	return s, nil
}

func (s *Server) keys(dir string) map[string]func(conf.Entry) error {
	return map[string]func(conf.Entry) error{
		"listen":              s.addListen,
		"workers":             intKey(&s.Workers, 0, 1024),
		"timeout":             secondsKey(&s.Timeout),
		"deferaccept":         boolKey(&s.DeferAccept),
		"keepalive":           boolKey(&s.KeepAlive),
		"keepalivetimeout":    secondsKey(&s.KeepAliveTimeout),
		"maxkeepaliverequest": intKey(&s.MaxKeepAliveRequest, 1, 1<<30),
		"maxrequestsize":      kibKey64(&s.MaxRequestSize, 0),
		"maxheadersize":       kibKey(&s.MaxHeaderSize, 1, 1024),
		"indexfile":           fieldsKey(&s.IndexFiles),
		"hideversion":         boolKey(&s.HideVersion),
		"symlink":             boolKey(&s.SymLink),
		"defaultmimetype":     stringKey(&s.DefaultMimeType),
		"pidfile": func(e conf.Entry) error {
			v, err := e.String()
			s.PidFile = resolve(dir, v)
			return err
		},
		"shutdowntimeout": secondsKey(&s.ShutdownTimeout),
		"tlsclientca": func(e conf.Entry) (err error) {
			s.TLSClientCA, err = loadClientCA(e, dir)
			return err
		},
		"maxconnections": intKey(&s.MaxConnections, 0, 1<<24),
		"metricsurl":     pathKey(&s.MetricsURL),
		"filecachevalid": func(e conf.Entry) error {
			n, err := e.Int(0, 3600)
			s.FileCacheValid = time.Duration(n) * time.Second
			return err
		},
	}
}

func (s *Server) addListen(e conf.Entry) error {
	f := strings.Fields(e.Value)
	secure := len(f) == 2 && strings.EqualFold(f[1], "tls")
	if len(f) > 2 || len(f) == 2 && !secure {
		return e.Errorf("want ADDR or ADDR tls, got %q", e.Value)
	}
	v := ""
	if len(f) > 0 {
		v = f[0]
	}
	addr, err := listenAddr(v)
	if err != nil {
		return e.Errorf("%v", err)
	}
	where := fmt.Sprintf("%s:%d", e.File, e.Line)
	for _, l := range s.Listen {
		if l.Addr == addr {
			return e.Errorf("duplicate listener %s (first at %s)", addr, l.Where)
		}
	}
	s.Listen = append(s.Listen, Listener{Addr: addr, Where: where, TLS: secure})
	return nil
}

// listenAddr turns "2001", "host:2001" or "[::1]:2001" into a host:port.
func listenAddr(v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("missing address")
	}
	if p, err := strconv.Atoi(v); err == nil {
		if p < 1 || p > 65535 {
			return "", fmt.Errorf("port %d out of range", p)
		}
		return ":" + v, nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("want PORT, HOST:PORT or [IPv6]:PORT, got %q", v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 { // HOST:0: any free port
		return "", fmt.Errorf("bad port %q", port)
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return "", fmt.Errorf("bad IPv6 address %q", host)
	}
	return net.JoinHostPort(host, port), nil
}

func intKey(dst *int, min, max int) func(conf.Entry) error {
	return func(e conf.Entry) (err error) {
		*dst, err = e.Int(min, max)
		return err
	}
}

func kibKey(dst *int, min, max int) func(conf.Entry) error {
	return func(e conf.Entry) error {
		n, err := e.Int(min, max)
		*dst = n << 10
		return err
	}
}

func kibKey64(dst *int64, min int) func(conf.Entry) error {
	return func(e conf.Entry) error {
		n, err := e.Int(min, 1<<30)
		*dst = int64(n) << 10
		return err
	}
}

func secondsKey(dst *time.Duration) func(conf.Entry) error {
	return func(e conf.Entry) error {
		n, err := e.Int(1, 86400)
		*dst = time.Duration(n) * time.Second
		return err
	}
}

// pathKey reads a URL path (conf.Entry.Path).
func pathKey(dst *string) func(conf.Entry) error {
	return func(e conf.Entry) (err error) {
		*dst, err = e.Path()
		return err
	}
}

func boolKey(dst *bool) func(conf.Entry) error {
	return func(e conf.Entry) (err error) {
		*dst, err = e.Bool()
		return err
	}
}

func stringKey(dst *string) func(conf.Entry) error {
	return func(e conf.Entry) (err error) {
		*dst, err = e.String()
		return err
	}
}

func fieldsKey(dst *[]string) func(conf.Entry) error {
	return func(e conf.Entry) (err error) {
		*dst, err = e.Fields()
		return err
	}
}
