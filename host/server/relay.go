package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/internal/idlewait"
	"github.com/capuchin/capuchin/internal/rawsock"
	"golang.org/x/sys/unix"
)

// relay carries plain HTTP between the TLS session of a client connection,
// which the host keeps, and the stage-30 plugins it is handed to: they get
// one end of a local socketpair (the peer end), the host keeps the other,
// and while a plugin holds the request (Begin to End) two goroutines copy
// client → plugin (decrypted) and plugin → client (encrypted). Outside a
// hand-over nothing is relayed and the host reads the TLS session itself.
//
// End leaves no byte behind: the plugin's output still in the pair is sent
// on; client bytes the plugin had not read (still queued at its end, read
// back by the host through its own copy of the peer end, and any the pump
// could not deliver) are kept, in order, for the host to parse next
// (Pending), after the leftover the plugin reports.
type relay struct {
	tc      *tls.Conn
	src     *tlsSource      // the socket under tc
	sock    syscall.RawConn // the client's socket
	bufs    *idlewait.Pool  // the in-pump's socket reads
	timeout time.Duration   // longest stall writing to the client

	mu   sync.Mutex // guards host and peer against Shutdown and Close
	host *pairEnd   // the host's end of the pair
	peer *os.File   // the plugin's end (a copy; not in the poller)

	wg        sync.WaitGroup // the two pumps of one hand-over
	wdl       time.Time      // when the client write deadline was last set
	in, out   []byte         // pump buffers, made once
	big       []byte         // the in-pump's reads during an upload, made for the first
	rest      []byte         // client bytes the in-pump has still to deliver, or could not
	pending   []byte         // client bytes for the host to parse next
	sent      atomic.Uint64  // bytes relayed to the client
	stopping  atomic.Bool    // End has begun: the in-pump reads the client no more
	clientEOF bool           // the client closed its side: nothing more to relay in
	pluginEOF bool           // the plugin shut its side for writing

	// The pumps' raw-read callbacks, made once: a hand-over allocates none.
	pumpInFn, toClientFn func(fd uintptr) bool
}

func newRelay(tc *tls.Conn, src *tlsSource, sock syscall.RawConn, bufs *idlewait.Pool, timeout time.Duration) *relay {
	r := &relay{tc: tc, src: src, sock: sock, bufs: bufs, timeout: timeout}
	r.pumpInFn, r.toClientFn = r.pumpIn, r.fromPlugin
	return r
}

// relayChunk is the size of a pump's buffer: one TLS record's payload.
const relayChunk = 16 << 10

// open creates the socketpair.
func (r *relay) open() error {
	fds, err := socketpair()
	if err != nil {
		return fmt.Errorf("relay: socketpair: %w", err)
	}
	host, err := newPairEnd(fds[0])
	if err != nil {
		unix.Close(fds[1])
		return err
	}
	// The plugin's end is made non-blocking, as every socket the host
	// passes is (a plugin trusts it to be), after os.NewFile: a blocking
	// descriptor stays out of the host's poller, which would otherwise
	// be woken by every byte the host writes to the pair.
	peer := os.NewFile(uintptr(fds[1]), "relay-plugin")
	if err := unix.SetNonblock(fds[1], true); err != nil {
		host.close()
		peer.Close()
		return fmt.Errorf("relay: plugin end: %w", err)
	}
	r.mu.Lock()
	r.host, r.peer = host, peer
	r.mu.Unlock()
	r.in, r.out = make([]byte, relayChunk), make([]byte, relayChunk)
	return nil
}

// Begin returns the socket to hand to a plugin and starts relaying.
func (r *relay) Begin() (syscall.Conn, error) {
	if r.sock == nil {
		return nil, errors.New("relay: the client connection is not a socket")
	}
	if r.host == nil {
		if err := r.open(); err != nil {
			return nil, err
		}
	}
	// The plugin keeps its own time on its socket; the host's deadlines
	// of the request must not cut the relay.
	r.tc.SetReadDeadline(time.Time{})
	r.host.setDeadline(time.Time{})
	r.wdl = time.Time{} // the host may have set its own write deadline since
	r.stopping.Store(false)
	// Bytes an earlier plugin left unread in this hand-over (it declined)
	// go to this one first.
	r.rest = append(r.rest[:0], r.pending...)
	r.pending = r.pending[:0]
	r.wg.Add(2)
	go r.toPlugin()
	go r.toClient()
	return r.peer, nil
}

// toPlugin copies client bytes to the plugin until End (or the client
// closes: the plugin then reads EOF). It waits on the client's socket
// itself, inside one raw read, and reads it for the session (the source
// feeds the session what it read): a read shorter than the buffer
// emptied the socket's queue, so the pump waits at once instead of
// reading again only to find nothing (as forward does).
func (r *relay) toPlugin() {
	defer r.wg.Done()
	if len(r.rest) > 0 {
		w, err := r.host.write(r.rest)
		r.rest = r.rest[:copy(r.rest, r.rest[w:])]
		if err != nil {
			return
		}
	}
	if r.clientEOF {
		return
	}
	r.src.feeding = true
	defer func() { r.src.feeding = false }()
	// What the session holds already (read before the hand-over) goes first.
	if !r.decrypt() {
		return
	}
	err := r.sock.Read(r.pumpInFn)
	if err != nil && !r.clientEOF && !errors.Is(err, os.ErrDeadlineExceeded) {
		r.clientEOF = true
		r.host.closeWrite()
	}
}

// pumpIn reads the client's socket and hands what the session decrypts
// to the plugin; false means wait for more. It reads into a small buffer
// from the pool, taken only while bytes flow (a waiting pump holds none),
// and once a read fills it (an upload) into the relay's own large one,
// made then.
func (r *relay) pumpIn(fd uintptr) bool {
	small := r.bufs.Get()
	defer r.bufs.Put(small)
	b := *small
	for !r.stopping.Load() {
		n, e := rawsock.Recv(fd, b, 0)
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			return false
		}
		var err error
		if e != 0 {
			err = e
		}
		if !r.feed(b, n, err) {
			return true
		}
		if n < len(b) {
			return false
		}
		if len(b) < relayChunk {
			if r.big == nil {
				r.big = make([]byte, relayChunk)
			}
			b = r.big
		}
	}
	return true
}

// feed gives the session what a read of the client's socket returned and
// passes on what it decrypts; false means stop (End, or the stream ended).
func (r *relay) feed(b []byte, n int, err error) bool {
	switch {
	case n == 0 && err == nil:
		r.src.err = io.EOF
	case err != nil:
		r.src.err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
	default:
		r.src.fed = b[:n]
	}
	if !r.decrypt() {
		// Stopped (End) with bytes the session has not taken: they are
		// the session's, read by the host next.
		r.src.fed = append([]byte(nil), r.src.fed...)
		return false
	}
	return r.src.err == nil
}

// decrypt writes to the plugin what the session can decrypt from the
// bytes fed to it; false means stop (End, or the client's stream ended).
func (r *relay) decrypt() bool {
	for {
		n, err := r.tc.Read(r.in)
		if n > 0 {
			if w, werr := r.host.write(r.in[:n]); werr != nil {
				r.rest = append(r.rest, r.in[w:n]...)
				return false
			}
		}
		if err == errFedAll {
			return true
		}
		if err != nil {
			r.clientEOF = true
			r.host.closeWrite()
			return false
		}
	}
}

// toClient copies the plugin's bytes to the client until End. A plugin
// that shuts its side for writing (a tunnel's end) closes the TLS session
// for writing (close_notify).
func (r *relay) toClient() {
	defer r.wg.Done()
	r.pluginEOF = false
	r.host.rdRaw.Read(r.toClientFn)
	if r.pluginEOF {
		r.tc.CloseWrite()
	}
}

// fromPlugin is toClient's raw read: false while it waits for more.
func (r *relay) fromPlugin(uintptr) bool {
	more, eof := r.forward(r.host.fd, -1)
	r.pluginEOF = eof
	return !more
}

// forward sends what is queued at the host's end to the client, at most
// limit bytes (-1: no limit). more is true when it stopped because the
// queue was empty and the pump should wait; eof when the plugin shut its
// side. A read shorter than the buffer emptied the queue (a stream
// socket's read takes all that is queued, up to the buffer), so the pump
// waits at once instead of reading again for EAGAIN: anything written
// since then has signalled the poller, which wakes the wait (the pump's
// one RawRead keeps that signal; only a new RawRead would reset it).
func (r *relay) forward(fd, limit int) (more, eof bool) {
	for limit != 0 {
		n, err := rawsock.Recv(uintptr(fd), r.out, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return true, false
		case n == 0 && err == 0:
			return false, true
		case err != 0:
			return false, false
		}
		if r.writeClient(r.out[:n]) != nil {
			return false, false
		}
		if n < len(r.out) {
			return true, false
		}
		if limit > 0 {
			limit = max(0, limit-n)
		}
	}
	return false, false
}

// deadlineSlack is how stale the client write deadline may grow before a
// write sets it again: a stalled write is cut after between 7/8 of the
// timeout and the timeout, and a steady stream of responses sets the
// deadline a few times per timeout rather than once per write.
const deadlineSlack = 8

func (r *relay) writeClient(b []byte) error {
	if now := time.Now(); now.Sub(r.wdl) > r.timeout/deadlineSlack {
		r.wdl = now
		r.tc.SetWriteDeadline(now.Add(r.timeout))
	}
	n, err := r.tc.Write(b)
	r.sent.Add(uint64(n))
	return err
}

// maxFlush bounds what End sends on after the plugin answered: all of it
// for a plugin that has finished writing, as it must have; a plugin still
// writing (late, or crashed mid-way) cannot hold End forever.
const maxFlush = 4 << 20

// End stops relaying once the plugin has answered (or failed): the pumps
// stop, the plugin's output still queued goes to the client, and the
// client bytes the plugin did not read become Pending.
func (r *relay) End() {
	past := time.Unix(1, 0)
	r.stopping.Store(true)
	r.tc.SetReadDeadline(past)
	r.host.setDeadline(past)
	r.wg.Wait()
	r.forward(r.host.fd, maxFlush)
	r.pending = r.unread(r.pending)
	r.pending = append(r.pending, r.rest...)
	r.rest = r.rest[:0]
}

// unread appends the client bytes queued at the plugin's end that the
// plugin did not read (it no longer reads once it has answered).
func (r *relay) unread(dst []byte) []byte {
	raw, err := r.peer.SyscallConn()
	if err != nil {
		return dst
	}
	raw.Control(func(fd uintptr) {
		for {
			n, _, err := unix.Recvfrom(int(fd), r.in, unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			if n <= 0 || err != nil {
				return
			}
			dst = append(dst, r.in[:n]...)
		}
	})
	return dst
}

// Pending returns and forgets the client bytes the last hand-over left
// unread; they come before anything still in the TLS session.
func (r *relay) Pending() []byte {
	p := r.pending
	r.pending = r.pending[:0]
	return p
}

// Sent is the count of bytes relayed to the client so far (plain bytes,
// before encryption), as TCP_INFO's count is for a plain connection.
func (r *relay) Sent() uint64 { return r.sent.Load() }

// Shutdown shuts the pair down both ways, so that a plugin's copy of its
// end can neither read nor write, whatever it does with it.
func (r *relay) Shutdown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peer != nil {
		if raw, err := r.peer.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) })
		}
	}
}

// Close releases the pair (the connection has ended).
func (r *relay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.host != nil {
		r.host.close()
		r.peer.Close()
	}
}

// tlsSource is the socket under a client's TLS session. The host's own
// reads go to the socket; while a hand-over's in-pump runs (feeding), the
// session reads what the pump read from the socket (fed, then err), and
// errFedAll when it has had all of it.
type tlsSource struct {
	net.Conn
	feeding bool
	fed     []byte
	err     error
}

// fedAll tells the session that the pump has no more bytes for now; it
// is a temporary net.Error, so the session keeps a partial record and
// stays usable.
type fedAll struct{}

func (fedAll) Error() string   { return "relay: no more bytes fed" }
func (fedAll) Timeout() bool   { return true }
func (fedAll) Temporary() bool { return true }

var errFedAll error = fedAll{}

// Read returns the bytes fed and not yet read first (also after a
// hand-over: bytes the pump read but the session had not taken when End
// came), then reads the socket, or while feeding says how the pump's
// bytes ended.
func (s *tlsSource) Read(b []byte) (int, error) {
	if len(s.fed) > 0 {
		n := copy(b, s.fed)
		s.fed = s.fed[n:]
		return n, nil
	}
	if !s.feeding {
		return s.Conn.Read(b)
	}
	if s.err != nil {
		return 0, s.err
	}
	return 0, errFedAll
}
