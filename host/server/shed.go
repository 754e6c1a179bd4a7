package server

import (
	"io"
	"net"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/stage"
)

// Connection cap (MaxConnections). Past the cap a new connection is shed:
// it gets a 503 with Retry-After and Connection: close, its request is read
// and dropped for at most shedLinger (so that closing does not reset the
// connection before the client has read the answer), and it is closed. At
// most maxShedding connections (fewer under a low descriptor limit) are
// being shed at once; past that they are closed at once. Shed connections never reach the stages.
const (
	shedLinger  = time.Second
	maxShedding = 64
	// fdReserve is kept free under the descriptor limit for listeners,
	// plugin pipes, files being served and the parked duplicates of leased
	// sockets.
	fdReserve = 256
)

// connLimits returns the connection cap, the configured MaxConnections or
// (0) one derived from the descriptor limit, and how many connections may
// be shed at once, each holding a descriptor while it lingers. The derived
// cap is half of what is left after the reserve, because a proxied
// connection also holds a backend connection in the plugin, whose limit is
// the same (a TLS connection handed to a plugin holds three or four in the
// host, for the relay: a server whose traffic is mostly TLS sets
// MaxConnections). Shedding gets a quarter of the host's own slack.
func connLimits(configured int) (conns, shed int) {
	fds := fdLimit()
	conns = configured
	if conns <= 0 {
		conns = max(1, (fds-min(fdReserve, fds/4))/2)
	}
	return conns, max(1, min(maxShedding, (fds-conns)/4))
}

// fdLimit returns the process's descriptor limit (Go raises the soft limit
// to the hard one at start-up).
func fdLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<24 {
		return 1 << 24
	}
	return int(rl.Cur)
}

// full reports whether a new connection would pass the cap.
func (s *Server) full(sn *snapshot) bool {
	return s.open.Load() >= int64(sn.maxConns)
}

// shed answers nc with 503 and closes it, without blocking the accept loop.
func (s *Server) shed(nc net.Conn, sn *snapshot) {
	s.shedCount.Add(1)
	if s.shedding.Add(1) > int64(sn.maxShed) {
		s.shedding.Add(-1)
		nc.Close()
		return
	}
	h := http1.ResponseHead{Status: 503, Date: s.clock.Date(), Server: sn.server, Minor: 1, Close: true}
	page := h.AppendError(nil, http1.AppendField(nil, "Retry-After", "1"),
		"the server has too many connections; try again later")
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.shedding.Add(-1)
		defer nc.Close()
		lingerClose(nc, tcpSocket(nc), page, deadline(shedLinger))
	}()
}

// lingerClose sends page, the last bytes of a connection about to close,
// by writeBy, then lingers (see linger) for shedLinger, yet not past
// writeBy. The caller closes nc.
func lingerClose(nc net.Conn, tcp stage.Socket, page []byte, writeBy time.Time) {
	nc.SetWriteDeadline(writeBy)
	if _, err := nc.Write(page); err != nil {
		return
	}
	readBy := deadline(shedLinger)
	if writeBy.Before(readBy) {
		readBy = writeBy
	}
	linger(nc, tcp, readBy)
}

// linger shuts the socket tcp (nil: none) for writing once the last
// answer is out, and reads and drops what the client still sends until
// readBy (lingerBytes at most): closing a socket with unread bytes resets
// the connection, and a reset can destroy an answer the client has not
// read yet (RFC 9112 §9.6; nginx's lingering_close). The caller closes nc.
func linger(nc net.Conn, tcp stage.Socket, readBy time.Time) {
	if tcp != nil {
		tcp.CloseWrite()
	}
	nc.SetReadDeadline(readBy)
	io.Copy(io.Discard, io.LimitReader(nc, lingerBytes))
}

// lingerTime and lingerBytes bound how long and how much a connection
// closed after an error answer reads and drops before it closes (nginx
// lingers up to 30 s, 5 s between reads); a client sees the answer and
// stops sending well within them.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
)
