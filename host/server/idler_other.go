//go:build !linux

package server

import "time"

// idler parks idle connections where epoll is available (Linux); here
// every idle connection waits on its own goroutine.
type idler struct{}

func (d *idler) start() bool                         { return false }
func (d *idler) park(*conn, int, time.Duration) bool { return false }
func (d *idler) unpark(*conn, bool) bool             { return false }
func (d *idler) stop()                               {}
