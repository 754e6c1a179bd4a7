package api

import (
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/internal/transport"
)

// workers run the events of the calls channels. A goroutine per event
// would start with a small stack and grow it (a copy) in almost every
// call, and its start costs a scheduler trip: so a finished event's
// goroutine waits a while for the next one instead. An event that finds
// no waiting goroutine starts one; a goroutine with nothing to do for
// workerIdle ends, and so does one that would be more than maxIdleWorkers
// waiting.
type workers struct {
	jobs chan job     // unbuffered: a send succeeds only to a waiting worker
	idle atomic.Int32 // workers waiting for a job
}

// maxIdleWorkers bounds the workers kept waiting: after a burst (every
// lease of thousands of connections given back at once) the others end at
// once, and their stacks go back to the heap.
const maxIdleWorkers = 64

// job is one event and the channel it came on: a host's event (ev, s)
// or a lease holder's stage-20 call (peer, pf).
type job struct {
	ev   *transport.Event
	s    transport.PluginCalls
	peer *transport.PeerCall
	pf   *transport.PeerFrames
}

// request reports whether j is a stage-20 call.
func (j job) request() bool { return j.peer != nil || j.ev.Kind == transport.EventRequest }

// answer runs j and sends its reply.
func (rt *runtime) answer(j job) {
	if j.peer != nil {
		rt.answerPeer(j.peer, j.pf)
		return
	}
	rep := rt.dispatch(j.ev, j.s)
	if err := j.s.Send(rep); err != nil { // a late Send fails harmlessly
		// A reply that could not be sent (on the framed socket: encoded, or
		// queued) would leave the host waiting for it (under a lease, with
		// the connection): say so in a smaller one, with the lease's
		// counts, and have the connection closed.
		_ = j.s.Send(&transport.Reply{ID: rep.ID, Verdict: rep.Verdict, BytesOut: rep.BytesOut, Close: true,
			Leased: rep.Leased, Classes: rep.Classes, PeerClasses: rep.PeerClasses,
			Err: "the reply could not be sent: " + err.Error()})
	}
}

// workerIdle is how long a worker waits for another event before it ends.
const workerIdle = 10 * time.Second

func newWorkers() *workers { return &workers{jobs: make(chan job)} }

// run has j answered by a waiting worker or a new one, or at once, on
// the calling goroutine, when it is a stage-20 call to a hook that runs
// inline (InlineRequestHook).
func (w *workers) run(rt *runtime, j job) {
	if j.request() && rt.inline.Load() {
		rt.answer(j)
		return
	}
	select {
	case w.jobs <- j:
	default:
		go w.loop(rt, j) // ends after workerIdle without an event
	}
}

func (w *workers) loop(rt *runtime, j job) {
	var t *time.Timer
	for {
		rt.answer(j)
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			if t != nil {
				t.Stop()
			}
			return
		}
		if t == nil {
			t = time.NewTimer(workerIdle)
		}
		var ok bool
		if j, ok = w.next(t, time.Now()); !ok {
			return
		}
	}
}

// next waits for the next job of a worker idle since since; false after
// workerIdle without one. The timer is not reset for every job (a
// timer's reset costs more than the rest of a short event's dispatch):
// when it fires early, the worker waits for the rest of workerIdle.
func (w *workers) next(t *time.Timer, since time.Time) (job, bool) {
	defer w.idle.Add(-1)
	for {
		select {
		case j := <-w.jobs:
			return j, true
		case <-t.C:
			idle := time.Since(since)
			if idle >= workerIdle {
				return job{}, false
			}
			t.Reset(workerIdle - idle)
		}
	}
}
