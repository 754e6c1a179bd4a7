package main

import (
	"errors"
	"io/fs"

	"github.com/capuchin/capuchin/api/conf"
)

// defaultMessage is the greeting without configuration.
const defaultMessage = "Hello from the hello plugin"

// loadConfig reads the [HELLO] section of the file at path and returns the
// greeting. A missing file means the default; an unknown section or key is
// an error naming the file and line.
func loadConfig(path string) (string, error) {
	msg := defaultMessage
	f, err := conf.ParseFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return msg, nil
	}
	if err != nil {
		return "", err
	}
	for _, s := range f.Sections {
		if !s.Is("HELLO") {
			return "", s.Errorf("unknown section [%s] (want [HELLO])", s.Name)
		}
		err := s.Visit(map[string]func(conf.Entry) error{
			"message": func(e conf.Entry) error {
				v, err := e.String()
				msg = v
				return err
			},
		})
		if err != nil {
			return "", err
		}
	}
	return msg, nil
}
