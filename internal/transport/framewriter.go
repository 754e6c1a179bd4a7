package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Errors of a send that queued nothing.
var (
	errWriterClosed = errors.New("framed calls: closed")
	errBacklog      = errors.New("framed calls: the peer is not reading (a frame's worth is queued)")
)

// frameWriter batches messages into frames. A sender only appends its
// message to the pending frame and, if no flush is under way, wakes the
// writer's goroutine. That goroutine first yields the processor once, so
// that every goroutine already runnable (other requests about to call the
// same plugin, other handlers about to answer) adds its message too, and
// then writes everything pending in one write. On a busy server one write
// and one read on each side carry many calls; on an idle one the yield
// costs next to nothing. A sender never blocks on the socket, so a plugin
// that stopped reading cannot hold a caller past its deadline.
type frameWriter struct {
	w io.Writer

	mu      sync.Mutex
	pending []byte // 4 bytes for the length, then EventBatch/ReplyBatch fields
	spare   []byte
	busy    bool // the writer's goroutine has been woken and not finished
	err     error
	closed  bool
	kick    chan struct{} // wakes the writer's goroutine; closed by close
	done    chan struct{} // closed when that goroutine ended
}

func newFrameWriter(w io.Writer) *frameWriter {
	fw := &frameWriter{w: w, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go fw.run()
	return fw
}

// send queues m for the next frame, followed by tail, fields of m
// already encoded (a reply's Records). A nil error means m was queued for
// a writer that has not failed (yet); a write failure later shows as the
// end of the peer's replies.
func (fw *frameWriter) send(m proto.Message, tail []byte) error {
	size := proto.Size(m) + len(tail)
	if size > maxMessage {
		return fmt.Errorf("framed calls: a message of %d bytes exceeds %d", size, maxMessage)
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := fw.room(size); err != nil {
		return err
	}
	if err := fw.queue(m, size, tail); err != nil {
		return err
	}
	fw.wake()
	return nil
}

// room reports whether a message of size bytes may be queued (fw.mu held).
func (fw *frameWriter) room(size int) error {
	if fw.err != nil {
		return fw.err
	}
	if len(fw.pending)+size+16 > maxFrame {
		return errBacklog // never wait: the caller's deadline must hold
	}
	return nil
}

// wake has the writer's goroutine write what is pending (fw.mu held).
func (fw *frameWriter) wake() {
	if !fw.busy {
		fw.busy = true
		fw.kick <- struct{}{} // room: only a non-busy writer is woken
	}
}

// queue appends m and tail as field 1 of the pending batch.
func (fw *frameWriter) queue(m proto.Message, size int, tail []byte) error {
	n0 := len(fw.pending)
	if n0 == 0 {
		fw.pending = append(fw.pending, 0, 0, 0, 0)
	}
	b := protowire.AppendTag(fw.pending, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
	if err != nil {
		fw.pending = fw.pending[:n0]
		return fmt.Errorf("framed calls: encode: %w", err)
	}
	fw.pending = append(b, tail...)
	return nil
}

// take swaps the pending frame out, with its length filled in.
func (fw *frameWriter) take() []byte {
	out := fw.pending
	fw.pending, fw.spare = fw.spare[:0], nil
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// run is the writer's goroutine: woken by a sender, it yields once, then
// writes pending frames until none is left, until close.
func (fw *frameWriter) run() {
	defer close(fw.done)
	for range fw.kick {
		runtime.Gosched() // let the runnable goroutines add to this frame
		fw.mu.Lock()
		for fw.err == nil && len(fw.pending) > 0 {
			out := fw.take()
			fw.mu.Unlock()
			_, err := fw.w.Write(out) // may block until the peer reads
			fw.mu.Lock()
			if err != nil && fw.err == nil {
				fw.err = fmt.Errorf("framed calls: write: %w", err)
			}
			if cap(out) <= 1<<20 {
				fw.spare = out[:0]
			}
		}
		fw.busy = false
		fw.mu.Unlock()
	}
}

// close stops the writer's goroutine once it is done with what it holds
// (the owner closes the socket to cut a blocked write short); later sends
// fail.
func (fw *frameWriter) close() {
	fw.mu.Lock()
	if !fw.closed {
		fw.closed = true
		if fw.err == nil {
			fw.err = errWriterClosed
		}
		close(fw.kick)
	}
	fw.mu.Unlock()
}
