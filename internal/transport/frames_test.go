package transport

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/capuchin/capuchin/internal/contract"
)

// framePair connects a host end and a plugin end over a real socketpair.
func framePair(t *testing.T) (*HostFrames, *PluginFrames) {
	t.Helper()
	h, peer, err := FramePair()
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPluginFrames(peer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); p.Close() })
	return h, p
}

// TestFramedRoundTrip runs the wire test's checks on the framed socket.
func TestFramedRoundTrip(t *testing.T) {
	h, p := framePair(t)
	done := make(chan struct{})
	go func() { defer close(done); _ = echo{}.Calls(p) }()
	checkCalls(t, h)
	_ = h.CloseSend()
	<-done // the plugin end reads EOF after the host's last frame
}

// TestFramedConcurrent: calls sent at once from many goroutines (so that
// they share frames) each get their own reply, and a Recv after the
// plugin end closes fails instead of hanging.
func TestFramedConcurrent(t *testing.T) {
	h, p := framePair(t)
	go func() {
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			ev := new(Event)
			if err := p.Recv(ev); err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = p.Send(&Reply{ID: ev.ID, Reply: contract.Reply{Status: int(ev.ID % 1000)}})
			}()
		}
	}()
	const senders, each = 32, 50
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := h.Send(&Event{ID: uint64(s*each + i + 1), Kind: EventRequest, Head: []byte("GET / HTTP/1.1")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := make(map[uint64]bool)
	for len(seen) < senders*each {
		var r Reply
		if err := h.Recv(&r); err != nil {
			t.Fatalf("after %d replies: %v", len(seen), err)
		}
		if seen[r.ID] || r.Status != int(r.ID%1000) {
			t.Fatalf("reply %d: duplicate or wrong status %d", r.ID, r.Status)
		}
		seen[r.ID] = true
	}
	wg.Wait()
	p.Close()
	if err := h.Recv(new(Reply)); err == nil {
		t.Fatal("Recv after the plugin end closed returned a reply")
	}
}

// TestFrameLimits: a frame longer than the limit breaks the channel, and a
// message over the message limit is refused at Send.
func TestFrameLimits(t *testing.T) {
	h, p := framePair(t)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], maxFrame+1)
	if _, err := p.c.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	if err := h.Recv(new(Reply)); !errors.Is(err, ErrFrame) {
		t.Fatalf("oversized frame: %v, want ErrFrame", err)
	}
	if err := h.Send(&Event{ID: 1, Head: make([]byte, maxMessage+1)}); err == nil {
		t.Fatal("an event over the message limit was sent")
	}
}

// TestFrameBacklog: when the plugin end stops reading, sends do not block
// (the caller's deadline must hold): once a frame's worth is queued they
// fail with errBacklog.
func TestFrameBacklog(t *testing.T) {
	h, _ := framePair(t) // the plugin end never reads
	head := make([]byte, maxMessage-64)
	for i := range 2 * maxFrame / maxMessage {
		err := h.Send(&Event{ID: uint64(i + 1), Head: head})
		if errors.Is(err, errBacklog) {
			return
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	t.Fatal("sends to a plugin that does not read never failed")
}
