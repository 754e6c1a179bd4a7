package api

import (
	"time"

	"github.com/capuchin/capuchin/internal/transport"
)

// workers run the events of the calls channels. A goroutine per event
// would start with a small stack and grow it (a copy) in almost every
// call, and its start costs a scheduler trip: so a finished event's
// goroutine waits a while for the next one instead. An event that finds
// no waiting goroutine starts one; a goroutine with nothing to do for
// workerIdle ends.
type workers struct {
	jobs chan job // unbuffered: a send succeeds only to a waiting worker
}

// job is one event and the channel it came on.
type job struct {
	ev *transport.Event
	s  transport.PluginCalls
}

// workerIdle is how long a worker waits for another event before it ends.
const workerIdle = 10 * time.Second

func newWorkers() *workers { return &workers{jobs: make(chan job)} }

// run has ev answered on s by a waiting worker or a new one.
func (w *workers) run(rt *runtime, j job) {
	select {
	case w.jobs <- j:
	default:
		go w.loop(rt, j) // ends after workerIdle without an event
	}
}

func (w *workers) loop(rt *runtime, j job) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		rep := rt.dispatch(j.ev, func(r *transport.Reply) { _ = j.s.Send(r) })
		_ = j.s.Send(rep) // a late Send fails harmlessly
		t.Reset(workerIdle)
		select {
		case j = <-w.jobs:
		case <-t.C:
			return
		}
	}
}
