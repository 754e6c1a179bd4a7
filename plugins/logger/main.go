// Command logger is Capuchin's access-log plugin, after Monkey's logger. It
// hooks stage 40 and writes one line per finished request, static and
// plugin-handled alike, in Monkey's format, nginx's combined format (with
// or without the request time and the backend exchange) or JSON lines (see
// format.go):
//
//	IP - [dd/Mon/YYYY:HH:MM:SS +zzzz] METHOD URI HTTP/1.x STATUS LENGTH
//
// LENGTH is the number of response bytes sent, head included. Lines are
// buffered in memory and written by one goroutine every FlushInterval, as
// soon as BufferSize is reached, on SIGTERM and when the host stops the
// plugin; the notification path never touches the file. SIGUSR1 to the
// host (which calls Reopen) or to the plugin reopens the file (after
// logrotate has moved it).
//
// Configuration (logger.conf, optional):
//
//	[LOGGER]
//	    AccessLog PATH      default ../logs/access.log; relative paths are
//	                        relative to the folder holding logger.conf
//	    FlushInterval MS    default 1000
//	    BufferSize KIB      default 64
//	    Format NAME         monkey (default), combined, combined_upstream, json
package main

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/capuchin/capuchin/api"
)

// logger is the plugin. The sink is set by Configure; stage-40 calls come
// after it.
type logger struct {
	sink atomic.Pointer[sink]
}

func (l *logger) Info() api.Info { return api.Info{Name: "logger", Version: "1.0"} }

// Configure reads logger.conf and opens the access log, so that a bad path
// stops the host's start-up instead of losing lines later.
func (l *logger) Configure(path string) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	s, err := openSink(cfg, api.Logger())
	if err != nil {
		return err
	}
	if old := l.sink.Swap(s); old != nil {
		old.Close()
	}
	api.Logger().Info("writing the access log", "path", cfg.Path, "format", cfg.Format, "flush_interval", cfg.Interval.String(), "buffer_bytes", cfg.Buffer)
	return nil
}

// Done formats the record into the buffer (stage 40).
func (l *logger) Done(rec *api.Record) {
	if s := l.sink.Load(); s != nil {
		s.Add(rec)
	}
}

// Reopen reopens the access log (SIGUSR1 to the host, for log rotation).
func (l *logger) Reopen() error {
	if s := l.sink.Load(); s != nil {
		return s.Reopen()
	}
	return nil
}

// close writes what is buffered and closes the file.
func (l *logger) close() {
	if s := l.sink.Load(); s != nil {
		s.Close()
	}
}

// signals serves SIGUSR1 (reopen) and SIGTERM (flush and exit) until the
// process exits.
func (l *logger) signals(ch <-chan os.Signal) {
	for sig := range ch {
		s := l.sink.Load()
		if sig == syscall.SIGUSR1 {
			if s != nil {
				_ = s.Reopen() // the writer logs a failure
			}
			continue
		}
		l.close()
		os.Exit(0)
	}
}

func main() {
	l := &logger{}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGUSR1)
	go l.signals(ch) // lives as long as the process
	api.Serve(l)     // returns when the host stops the plugin
	signal.Stop(ch)
	l.close()
}
