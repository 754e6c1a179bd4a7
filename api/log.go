package api

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Logger returns the plugin's logger: hclog JSON lines on stderr, which the
// host re-emits in its own log under the plugin's name.
func Logger() hclog.Logger { return logger() }

var logger = sync.OnceValue(func() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       filepath.Base(os.Args[0]),
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})
})
