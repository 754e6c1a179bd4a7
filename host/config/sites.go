package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/capuchin/capuchin/api/conf"
)

// Site is one virtual host file in sites/. Keys:
//
//	[HOST]
//	    ServerName NAMES   repeatable; host names this site answers for
//	                       (ports ignored); the first site file ("default"
//	                       if present) also answers unknown names
//	    DocumentRoot DIR   required unless Redirect is set; relative to the
//	                       configuration directory
//	    Redirect URL       answer every request with 301 to URL + path
//	    TLSCertificate, TLSKey, RedirectHTTPS   see tls.go
//	[ERROR_PAGES]
//	    CODE FILE          repeatable; an HTML file under DocumentRoot sent
//	                       with that error status instead of the built-in page
type Site struct {
	File       string
	Names      []string
	Root       string
	Redirect   string
	ErrorPages map[int]string   // status -> absolute file path
	Cert       *tls.Certificate // TLSCertificate and TLSKey; nil when none
	// RedirectHTTPS is the port plain-HTTP requests are redirected to over
	// https://; 0: no redirect.
	RedirectHTTPS int
}

// loadSite reads one site file; relative paths are relative to confDir.
func loadSite(path, confDir string) (*Site, error) {
	secs, err := sections(path, "HOST", "ERROR_PAGES")
	if err != nil {
		return nil, err
	}
	host := secs["HOST"]
	if host == nil {
		return nil, &conf.Error{File: path, Msg: "no [HOST] section"}
	}
	s := &Site{File: path, ErrorPages: map[int]string{}}
	var t siteTLS
	keys := s.hostKeys(confDir)
	for k, f := range t.keys() {
		keys[k] = f
	}
	if err := host.Visit(keys); err != nil {
		return nil, err
	}
	if s.Cert, err = t.load(confDir); err != nil {
		return nil, err
	}
	if s.Root == "" && s.Redirect == "" {
		return nil, host.Errorf("[HOST] needs DocumentRoot or Redirect")
	}
	if ep := secs["ERROR_PAGES"]; ep != nil {
		if err := s.errorPages(ep); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Site) hostKeys(dir string) map[string]func(conf.Entry) error {
	return map[string]func(conf.Entry) error{
		"servername": func(e conf.Entry) error {
			names, err := e.Fields()
			for _, n := range names {
				s.Names = append(s.Names, strings.ToLower(n))
			}
			return err
		},
		"documentroot": func(e conf.Entry) error {
			v, err := e.String()
			if err != nil {
				return err
			}
			root := resolve(dir, v)
			if st, err := os.Stat(root); err != nil || !st.IsDir() {
				return e.Errorf("%s is not a readable directory", root)
			}
			// Resolved once here (reload to follow a changed link), so that
			// serving a file never walks links in the root's own path.
			s.Root, err = filepath.EvalSymlinks(root)
			return err
		},
		"redirecthttps": func(e conf.Entry) (err error) {
			s.RedirectHTTPS, err = redirectHTTPS(e)
			return err
		},
		"redirect": func(e conf.Entry) error {
			u, err := url.Parse(e.Value)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return e.Errorf("want an http:// or https:// URL, got %q", e.Value)
			}
			s.Redirect = strings.TrimSuffix(e.Value, "/")
			return nil
		},
	}
}

func (s *Site) errorPages(sec *conf.Section) error {
	for _, e := range sec.Entries {
		code, err := strconv.Atoi(e.Key)
		if err != nil || code < 400 || code > 599 {
			return e.Errorf("want an error status (400-599) as the key")
		}
		if s.Root == "" {
			return e.Errorf("error pages need a DocumentRoot")
		}
		v, err := e.String()
		if err != nil {
			return err
		}
		p := filepath.Join(s.Root, filepath.Clean("/"+v))
		if _, err := os.Stat(p); err != nil {
			return e.Errorf("cannot read %s", p)
		}
		s.ErrorPages[code] = p
	}
	return nil
}

// loadMIME reads the [MIMES] table: "ext type" lines. A missing file gives
// the built-in table.
func loadMIME(path string) (map[string]string, error) {
	m := builtinMIME()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return m, nil
	}
	secs, err := sections(path, "MIMES")
	if err != nil {
		return nil, err
	}
	if sec := secs["MIMES"]; sec != nil {
		for _, e := range sec.Entries {
			if e.Value == "" || !strings.Contains(e.Value, "/") {
				return nil, e.Errorf("want a MIME type such as text/html, got %q", e.Value)
			}
			m[strings.ToLower(strings.TrimPrefix(e.Key, "."))] = e.Value
		}
	}
	return m, nil
}

func builtinMIME() map[string]string {
	return map[string]string{
		"html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
		"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
		"json": "application/json", "txt": "text/plain; charset=utf-8",
		"xml": "application/xml", "svg": "image/svg+xml", "png": "image/png",
		"jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
		"ico": "image/x-icon", "webp": "image/webp", "pdf": "application/pdf",
		"wasm": "application/wasm", "woff2": "font/woff2", "mp4": "video/mp4",
	}
}

func itoa(n int) string { return fmt.Sprint(n) }
