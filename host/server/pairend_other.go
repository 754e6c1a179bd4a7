//go:build !linux

package server

import (
	"errors"
	"syscall"
	"time"
)

// pairEnd needs epoll (Linux, pairend_linux.go). Elsewhere no stage-30
// plugin starts (descriptors cannot be passed: fdpass.Supported), so no
// TLS connection is handed over and no relay is made: these fail or do
// nothing.
type pairEnd struct {
	fd    int
	rdRaw syscall.RawConn
}

var errNoRelay = errors.New("relay: a TLS hand-over needs Linux")

func socketpair() ([]int, error)             { return nil, errNoRelay }
func newPairEnd(int) (*pairEnd, error)       { return nil, errNoRelay }
func (e *pairEnd) write([]byte) (int, error) { return 0, errNoRelay }
func (e *pairEnd) setDeadline(time.Time)     {}
func (e *pairEnd) closeWrite()               {}
func (e *pairEnd) close()                    {}
