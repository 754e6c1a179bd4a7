package upstream

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// IdleCheck tells whether anything arrived on an idle pooled connection
// since its last answer ended: stray bytes (a body sent after a HEAD answer,
// a late second answer, a 408 before a close) or EOF. Such a connection is
// out of step with its requests and must never carry another one.
//
// It asks the kernel with one non-blocking MSG_PEEK recv on the TCP
// socket, made only when a pooled connection is handed out again, so a
// request on a new connection pays nothing. The closure is built once per
// connection: no allocation per request. On a TLS connection, records that
// crypto/tls already holds (read off the socket with the last answer) are
// stray too: a read that may not wait finds them. It is exported for
// scripts/floorproxy's featured loop, which makes the same check.
type IdleCheck struct {
	raw   syscall.RawConn
	fn    func(fd uintptr)
	dirty bool
	tls   *tls.Conn // nil on a plain connection
}

// Init prepares the check for c, whose socket is raw (c itself, or the
// TCP connection under a TLS one); a connection that is not a socket is
// never reported stray.
func (k *IdleCheck) Init(sock, c net.Conn) {
	k.tls, _ = c.(*tls.Conn)
	sc, ok := sock.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	k.raw = raw
	k.fn = func(fd uintptr) {
		var b [1]byte
		_, errno := rawsock.Recv(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing there. Bytes (n > 0), EOF (n == 0) or an error
		// such as ECONNRESET: the connection is not reusable.
		k.dirty = errno != syscall.EAGAIN
	}
}

// Stray reports whether the connection has bytes or EOF waiting (or cannot
// be checked). readBy is the connection's read deadline (Conn.readBy),
// which a TLS check puts back once done.
func (k *IdleCheck) Stray(readBy time.Time) bool {
	if k.raw == nil {
		return false
	}
	// Control, not Read: the call does not block, and a read deadline
	// left over from the last answer must not count.
	if err := k.raw.Control(k.fn); err != nil {
		return true
	}
	if !k.dirty && k.tls != nil {
		return k.tlsBuffered(readBy)
	}
	return k.dirty
}

// tlsBuffered reports whether crypto/tls holds application data (or an
// error) for the connection: a read with a deadline already past returns
// what is buffered and times out otherwise, without reaching the socket
// (and a timeout leaves the TLS session usable). Post-handshake messages,
// such as session tickets, are consumed on the way and are not stray.
// The read deadline is then put back to readBy, the one Conn.ExtendRead
// set last: ExtendRead skips a deadline it believes still armed, so a
// cleared one would leave the next answer unbounded by ResponseTimeout.
func (k *IdleCheck) tlsBuffered(readBy time.Time) bool {
	var b [1]byte
	k.tls.SetReadDeadline(time.Unix(1, 0))
	n, err := k.tls.Read(b[:])
	k.tls.SetReadDeadline(readBy)
	return n > 0 || !errors.Is(err, os.ErrDeadlineExceeded)
}
