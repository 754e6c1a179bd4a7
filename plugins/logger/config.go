package main

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/capuchin/capuchin/api/conf"
)

// config is the [LOGGER] section of logger.conf.
type config struct {
	Path     string        // absolute path of the access log
	Interval time.Duration // FlushInterval
	Buffer   int           // BufferSize in bytes
	Format   string        // Format, lower-case: a key of formats
}

// defaultAccessLog is relative to the folder of logger.conf: with the
// default layout, logs/ next to conf/ and bin/.
const defaultAccessLog = "../logs/access.log"

// loadConfig reads the file at path; a missing file means the defaults.
func loadConfig(path string) (config, error) {
	dir := filepath.Dir(path)
	c := config{Path: filepath.Join(dir, defaultAccessLog), Interval: time.Second, Buffer: 64 << 10,
		Format: "monkey"}
	f, err := conf.ParseFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	for _, s := range f.Sections {
		if !s.Is("LOGGER") {
			return c, s.Errorf("unknown section [%s] (want [LOGGER])", s.Name)
		}
		if err := s.Visit(c.keys(dir)); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *config) keys(dir string) map[string]func(conf.Entry) error {
	return map[string]func(conf.Entry) error{
		"accesslog": func(e conf.Entry) error {
			v, err := e.String()
			if err != nil {
				return err
			}
			if !filepath.IsAbs(v) {
				v = filepath.Join(dir, v)
			}
			c.Path = filepath.Clean(v)
			return nil
		},
		"flushinterval": func(e conf.Entry) error {
			ms, err := e.Int(1, 3600_000)
			c.Interval = time.Duration(ms) * time.Millisecond
			return err
		},
		"format": func(e conf.Entry) error {
			v, err := e.String()
			if err != nil {
				return err
			}
			name := strings.ToLower(v)
			if _, err := lookupFormat(name); err != nil {
				return e.Errorf("%v", err)
			}
			c.Format = name
			return nil
		},
		"buffersize": func(e conf.Entry) error {
			kib, err := e.Int(1, 64<<10)
			c.Buffer = kib << 10
			return err
		},
	}
}
