// Package config reads the host's configuration directory:
//
//	capuchin.conf   [SERVER]   listeners, timeouts, limits (see Server)
//	plugins.load    [PLUGINS]  plugin directory and the plugins to start, in order
//	sites/*         [HOST], [ERROR_PAGES]  one virtual host per file
//	mimes.conf      [MIMES]    file extension to MIME type (optional)
//
// Load returns a complete, validated Config or the first error, naming the
// file and line.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/capuchin/capuchin/api/conf"
)

// Config is the whole host configuration.
type Config struct {
	Dir     string
	Server  Server
	Plugins Plugins
	Sites   []*Site // Sites[0] is the default virtual host
	MIME    map[string]string
}

// Load reads the configuration directory dir.
func Load(dir string) (*Config, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config directory %s: %w", dir, err)
	}
	if !utf8.ValidString(abs) { // paths under it go to plugins as protobuf strings, which must be UTF-8
		return nil, fmt.Errorf("config directory %q: the path is not UTF-8", abs)
	}
	c := &Config{Dir: abs}
	if c.Server, err = loadServer(filepath.Join(abs, "capuchin.conf")); err != nil {
		return nil, err
	}
	if c.Plugins, err = loadPlugins(abs, filepath.Join(abs, "plugins.load")); err != nil {
		return nil, err
	}
	if c.Sites, err = loadSites(filepath.Join(abs, "sites")); err != nil {
		return nil, err
	}
	if c.MIME, err = loadMIME(filepath.Join(abs, "mimes.conf")); err != nil {
		return nil, err
	}
	if err := c.checkTLS(); err != nil {
		return nil, err
	}
	return c, nil
}

// sections parses path and returns its sections, each of which must be one
// of the names allowed; at most one of each.
func sections(path string, allowed ...string) (map[string]*conf.Section, error) {
	f, err := conf.ParseFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]*conf.Section{}
	for _, s := range f.Sections {
		name := strings.ToUpper(s.Name)
		if !contains(allowed, name) {
			return nil, s.Errorf("unknown section [%s] (want %s)", s.Name, "["+strings.Join(allowed, "], [")+"]")
		}
		if out[name] != nil {
			return nil, s.Errorf("section [%s] appears twice", s.Name)
		}
		out[name] = s
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// resolve makes p absolute relative to base.
func resolve(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

// loadSites reads every file of dir, in name order, with "default" first.
func loadSites(dir string) ([]*Site, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, &conf.Error{File: dir, Msg: "cannot read the sites directory: " + err.Error()}
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !utf8.ValidString(e.Name()) { // it names the site to plugins (see Load)
			return nil, &conf.Error{File: filepath.Join(dir, e.Name()), Msg: "the file's name is not UTF-8"}
		}
		names = append(names, e.Name())
	}
	sort.SliceStable(names, func(i, j int) bool {
		return names[i] == "default" || names[j] != "default" && names[i] < names[j]
	})
	if len(names) == 0 {
		return nil, &conf.Error{File: dir, Msg: "no virtual host file"}
	}
	var sites []*Site
	for _, n := range names {
		s, err := loadSite(filepath.Join(dir, n), filepath.Dir(dir))
		if err != nil {
			return nil, err
		}
		sites = append(sites, s)
	}
	return sites, nil
}
