package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/internal/recordwire"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// Framed calls carry the events and replies of the Calls stream on a
// SOCK_STREAM socketpair instead, for a plugin that declares FramedCalls. A
// frame is a 4-byte big-endian length n and n bytes of a serialized
// EventBatch (host to plugin) or ReplyBatch (plugin to host). A writer puts
// every message queued while it writes into its next frame, so calls made
// at the same moment share one write; a reader answers whatever a frame
// holds, in any order.

// Frame limits: one event or reply (gRPC's default message limit), one frame.
const (
	maxMessage = 4 << 20
	maxFrame   = 64 << 20
)

// ErrFrame is the error of a frame that breaks the framing rules.
var ErrFrame = errors.New("framed calls: bad frame")

// CallConn is the host end of a plugin's per-request channel: the Calls
// stream or the framed socket. Send is not for concurrent use unless the
// implementation says so; Recv runs in one goroutine.
type CallConn interface {
	Send(e *Event) error
	Recv(r *Reply) error
	CloseSend() error
}

// PluginCalls is the plugin end: Recv in one goroutine, Send from any.
type PluginCalls interface {
	Recv(e *Event) error
	Send(r *Reply) error
}

// FramePair creates the framed-calls socketpair: the host keeps the
// HostFrames, peer goes to the plugin (exec.Cmd.ExtraFiles, named by
// EnvCalls) and is closed by the host once the plugin started.
func FramePair() (*HostFrames, *os.File, error) {
	hf, peer, err := SocketPair("calls-host", "calls-plugin")
	if err != nil {
		return nil, nil, err
	}
	c, err := frameConn(hf)
	if err != nil {
		peer.Close()
		return nil, nil, err
	}
	return &HostFrames{batchReader: batchReader{framer: newFramer(c)}}, peer, nil
}

// SocketPair creates a framed-calls socketpair (AF_UNIX, SOCK_STREAM,
// close-on-exec), as two files named a and b.
func SocketPair(a, b string) (*os.File, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("framed calls: socketpair: %w", err)
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return os.NewFile(uintptr(fds[0]), a), os.NewFile(uintptr(fds[1]), b), nil
}

// OpenPluginFrames opens the plugin end from the descriptor the host
// passed (f is closed: the result holds its own copy).
func OpenPluginFrames(f *os.File) (*PluginFrames, error) {
	c, err := frameConn(f)
	if err != nil {
		return nil, err
	}
	return &PluginFrames{framer: newFramer(c)}, nil
}

// frameConn wraps a socket descriptor as a *net.UnixConn and closes f.
func frameConn(f *os.File) (*net.UnixConn, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("framed calls: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("framed calls: descriptor is a %T, not a unix socket", c)
	}
	return uc, nil
}

// framer is one end of the socket: a batching writer and a frame reader.
type framer struct {
	c  *net.UnixConn
	w  *frameWriter
	br *bufio.Reader
	fb []byte // the current frame's body
}

// newFramer returns c's framer, reading and writing with raw system calls
// (rawIO).
func newFramer(c *net.UnixConn) framer {
	r := newRawIO(c)
	return framer{c: c, w: newFrameWriter(r), br: bufio.NewReaderSize(r, 64<<10)}
}

// next reads one frame's body, valid until the following call.
func (f *framer) next() ([]byte, error) {
	hdr, err := f.br.Peek(4) // (not io.ReadFull into an array, which escapes)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr)
	f.br.Discard(4)
	if n > maxFrame {
		return nil, fmt.Errorf("%w: %d bytes exceed %d", ErrFrame, n, maxFrame)
	}
	if cap(f.fb) < int(n) {
		f.fb = make([]byte, n)
	}
	f.fb = f.fb[:n]
	if _, err := io.ReadFull(f.br, f.fb); err != nil {
		return nil, fmt.Errorf("%w: cut short: %v", ErrFrame, err)
	}
	return f.fb, nil
}

// nextBatch reads the next frame into batch, an EventBatch, emptied
// first.
func (f *framer) nextBatch(batch proto.Message) error {
	body, err := f.next()
	if err != nil {
		return err
	}
	proto.Reset(batch)
	if err := proto.Unmarshal(body, batch); err != nil {
		return fmt.Errorf("%w: %v", ErrFrame, err)
	}
	return nil
}

// CloseSend ends this side's writing; the peer reads EOF after what was sent.
func (f *framer) CloseSend() error {
	f.w.close()
	return f.c.CloseWrite()
}

// Close closes the socket and waits for the writer's goroutine to end; a
// Recv in progress returns an error.
func (f *framer) Close() error {
	f.w.close()
	err := f.c.Close()
	<-f.w.done
	return err
}

// HostFrames is the host end. Send is safe for concurrent use (calls made
// together share a frame); Recv is for the one reading goroutine.
type HostFrames struct {
	batchReader
	m       pb.Reply
	scratch []byte // a reply's fields but its records
}

// Send queues e for the next frame, writing it now unless a write is in
// progress (that one takes it along). An error means e was not sent.
func (h *HostFrames) Send(e *Event) error { return h.w.send(eventToPB(e), nil) }

// Recv returns the next reply, reading a frame when the last is used up.
// A ReplyBatch is read field by field here, so that the records of each
// reply are taken as they came, checked but not decoded (recordwire).
func (h *HostFrames) Recv(r *Reply) error {
	m, _, err := h.item()
	if err != nil {
		return err
	}
	return h.reply(m, r)
}

// reply decodes the Reply b into r.
func (h *HostFrames) reply(b []byte, r *Reply) error {
	rest, rs, err := recordwire.SplitReply(b, &h.scratch)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFrame, err)
	}
	h.m.Reset()
	if err := proto.Unmarshal(rest, &h.m); err != nil {
		return fmt.Errorf("%w: %v", ErrFrame, err)
	}
	replyFromPB(&h.m, r)
	r.Records = rs
	return nil
}

// PluginFrames is the plugin end: Recv for one goroutine, Send from any.
type PluginFrames struct {
	framer
	batch pb.EventBatch
	i     int
}

// Recv returns the next event, reading a frame when the last is used up.
func (p *PluginFrames) Recv(e *Event) error {
	for p.i >= len(p.batch.Events) {
		if err := p.nextBatch(&p.batch); err != nil {
			return err
		}
		p.i = 0
	}
	eventFromPB(p.batch.Events[p.i], e)
	p.batch.Events[p.i] = nil
	p.i++
	return nil
}

// Send queues r for the next frame (see HostFrames.Send).
func (p *PluginFrames) Send(r *Reply) error { return p.w.send(replyToPB(r), r.Records.Wire()) }

var (
	_ CallConn    = (*HostFrames)(nil)
	_ CallConn    = (*CallStream)(nil)
	_ PluginCalls = (*PluginFrames)(nil)
	_ PluginCalls = (*ServerCalls)(nil)
)
