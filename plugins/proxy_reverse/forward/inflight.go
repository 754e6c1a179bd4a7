package forward

import (
	"context"
	"sync"
)

// inflight links the exchanges in progress under one context, the one
// Forward sees first (the plugin's own, for every request), so that its
// end aborts them: one context.AfterFunc for the Forwarder's life rather
// than one per request (which costs two allocations and a lock of the
// context's table of children each time). Requests under another context
// are watched one by one, as before.
type inflight struct {
	mu      sync.Mutex
	watched <-chan struct{} // the Done channel of the context watched; nil: none yet
	ended   bool            // that context ended: every exchange linked was aborted
	closed  bool            // Close ran: nothing more is linked
	stop    func() bool     // the watch's context.AfterFunc
	head    *exchange       // linked through exchange.prev and next
}

// watch makes the end of ctx abort x until unwatch(x, stop) runs with what
// it returns: linked when x is in the list, else the AfterFunc's stop (nil
// for a context that never ends). Nothing escapes: a watched request
// allocates nothing.
func (in *inflight) watch(ctx context.Context, x *exchange) (linked bool, stop func() bool) {
	done := ctx.Done()
	if done == nil {
		return false, nil // never ends
	}
	if in.link(ctx, done, x) {
		return true, nil
	}
	return false, context.AfterFunc(ctx, x.abort)
}

// unwatch ends what watch began.
func unwatch(x *exchange, linked bool, stop func() bool) {
	switch {
	case linked:
		x.unlink()
	case stop != nil:
		stop()
	}
}

// link adds x to the list when ctx is the context watched (or becomes it).
func (in *inflight) link(ctx context.Context, done <-chan struct{}, x *exchange) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed || in.watched != nil && in.watched != done {
		return false
	}
	if in.watched == nil {
		in.watched = done
		in.stop = context.AfterFunc(ctx, in.abortAll)
	}
	x.in, x.prev, x.next = in, nil, in.head
	if in.head != nil {
		in.head.prev = x
	}
	in.head = x
	if in.ended {
		x.abort()
	}
	return true
}

// unlink takes x off its list: the context's end no longer touches it.
func (x *exchange) unlink() {
	in := x.in
	in.mu.Lock()
	if x.prev != nil {
		x.prev.next = x.next
	} else {
		in.head = x.next
	}
	if x.next != nil {
		x.next.prev = x.prev
	}
	x.in, x.prev, x.next = nil, nil, nil
	in.mu.Unlock()
}

// abortAll aborts every exchange linked, and those linked later.
func (in *inflight) abortAll() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ended = true
	for x := in.head; x != nil; x = x.next {
		x.abort()
	}
}

// close ends the watch: a Forwarder no longer used holds no context.
func (in *inflight) close() {
	in.mu.Lock()
	in.closed = true
	stop := in.stop
	in.mu.Unlock()
	if stop != nil {
		stop()
	}
}
