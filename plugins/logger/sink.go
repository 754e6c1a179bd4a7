package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api"
)

// maxBacklog is how many times BufferSize may pile up before a record
// waits for the writer, at most backlogWait; past that the file cannot
// keep up, and records are dropped (and counted) instead.
const (
	maxBacklog  = 4
	backlogWait = 100 * time.Millisecond
)

// sink buffers access-log lines and writes them from its own goroutine:
// Add only appends to a byte slice under a short lock, never touching the
// file. The goroutine (run) owns the file and writes every interval, when
// the buffer reaches its limit, on Reopen and on Close.
type sink struct {
	path     string
	interval time.Duration
	limit    int
	format   formatter
	log      hclog.Logger

	mu      sync.Mutex
	buf     []byte
	dropped uint64
	swapped chan struct{} // closed when the writer takes the buffer
	stalled bool          // a wait for the writer ran out: drop until it takes the buffer

	kick   chan struct{} // the buffer reached limit
	reopen chan chan error
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	// owned by run
	f       *os.File
	spare   []byte
	failing bool
}

// openSink opens (creating) the access log and starts the writer.
func openSink(c config, log hclog.Logger) (*sink, error) {
	format, err := lookupFormat(c.Format)
	if err != nil {
		return nil, fmt.Errorf("logger: %w", err)
	}
	s := &sink{
		path: c.Path, interval: c.Interval, limit: c.Buffer, format: format, log: log,
		buf: make([]byte, 0, c.Buffer+512), spare: make([]byte, 0, c.Buffer+512),
		kick: make(chan struct{}, 1), reopen: make(chan chan error), swapped: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	f, err := openLog(c.Path)
	if err != nil {
		return nil, err
	}
	s.f = f
	go s.run() // ends on Close
	return s, nil
}

func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("access log folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	return f, nil
}

// Add buffers rec's line, never touching the file. Past maxBacklog times
// the buffer size it waits for the writer to take the buffer, at most
// backlogWait (the notifications wait in the host's queue meanwhile, no
// request does): a writer that has had no processor yet catches up, as
// it must with one processor and a burst of notifications. Past that the
// file cannot keep up, and records are dropped and counted until the
// writer takes the buffer.
func (s *sink) Add(rec *api.Record) {
	s.mu.Lock()
	if len(s.buf) >= maxBacklog*s.limit && !s.waitRoom() {
		s.dropped++
		s.mu.Unlock()
		return
	}
	s.buf = s.format(s.buf, rec)
	full := len(s.buf) >= s.limit
	s.mu.Unlock()
	if full {
		s.wake()
	}
}

// waitRoom waits (s.mu held, released meanwhile) for the writer to take
// the buffer, at most backlogWait and not again until it does; false if
// it has not.
func (s *sink) waitRoom() bool {
	if s.stalled {
		return false
	}
	s.wake()
	swapped := s.swapped
	s.mu.Unlock()
	select {
	case <-swapped:
	case <-time.After(backlogWait): // (a timer not fired is collected: Go 1.23)
	}
	s.mu.Lock()
	s.stalled = len(s.buf) >= maxBacklog*s.limit
	return !s.stalled
}

// wake has the writer flush.
func (s *sink) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Reopen has the writer flush and reopen the file at the same path, and
// returns when it has (the error of the reopening: the old file is then
// kept).
func (s *sink) Reopen() error {
	done := make(chan error, 1)
	select {
	case s.reopen <- done:
		return <-done
	case <-s.done:
		return errors.New("the access log is closed")
	}
}

// Close flushes, stops the writer and closes the file. It is safe to call
// more than once and from several goroutines.
func (s *sink) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

func (s *sink) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flush()
		case <-s.kick:
			s.flush()
		case done := <-s.reopen:
			s.flush()
			done <- s.reopenFile()
		case <-s.stop:
			s.flush()
			if err := s.f.Close(); err != nil {
				s.log.Error("closing the access log", "path", s.path, "error", err)
			}
			return
		}
	}
}

// flush writes the buffered lines. The buffers swap under the lock; the
// write happens outside it.
func (s *sink) flush() {
	s.mu.Lock()
	b, dropped := s.buf, s.dropped
	s.buf, s.dropped, s.stalled = s.spare[:0], 0, false
	close(s.swapped)
	s.swapped = make(chan struct{})
	s.mu.Unlock()
	if dropped > 0 {
		s.log.Warn("access log lines dropped: the file could not keep up", "count", dropped)
	}
	if len(b) > 0 {
		_, err := s.f.Write(b)
		s.report(err)
	}
	s.spare = b[:0]
}

// report logs a write failure once, and the recovery.
func (s *sink) report(err error) {
	switch {
	case err != nil && !s.failing:
		s.log.Error("writing the access log", "path", s.path, "error", err)
	case err == nil && s.failing:
		s.log.Info("writing the access log again", "path", s.path)
	}
	s.failing = err != nil
}

func (s *sink) reopenFile() error {
	f, err := openLog(s.path)
	if err != nil {
		s.log.Error("reopening the access log; keeping the old file", "error", err)
		return err
	}
	if err := s.f.Close(); err != nil {
		s.log.Warn("closing the old access log", "error", err)
	}
	s.f = f
	s.log.Info("access log reopened", "path", s.path)
	return nil
}
