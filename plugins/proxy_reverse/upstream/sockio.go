package upstream

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// sockIO reads and writes a plain TCP connection for its BR and BW with
// rawsock.IO: recv(2) and send(2) inside the poller's waits (see package
// rawsock for why), its errors worded as net.Conn's. Reads of one
// connection do not race, nor do its writes (one exchange owns it).
type sockIO struct {
	c  net.Conn
	io rawsock.IO
}

func (s *sockIO) init(c net.Conn, raw syscall.RawConn) {
	s.c = c
	s.io.Init(raw)
}

func (s *sockIO) Read(b []byte) (int, error) {
	n, err := s.io.Read(b)
	if err == nil || err == io.EOF {
		return n, err
	}
	return n, s.opError("read", err)
}

func (s *sockIO) Write(b []byte) (int, error) {
	n, err := s.io.Write(b)
	if err == nil {
		return n, nil
	}
	return n, s.opError("write", err)
}

// opError words err as net.Conn's op would: an errno as a system call's
// error; the poller's own errors (a deadline that passed, a closed
// connection), which the RawConn words as a raw-read or raw-write, as
// themselves.
func (s *sockIO) opError(op string, err error) error {
	var raw *net.OpError
	if e, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, e)
	} else if errors.As(err, &raw) {
		err = raw.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.c.LocalAddr(), Addr: s.c.RemoteAddr(), Err: err}
}
