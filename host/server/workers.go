package server

import (
	"sync"
	"sync/atomic"
)

// workers runs the goroutines that serve connections: a new connection
// (serve) and a parked one the idler woke (resume). A goroutine whose
// connection ended, or went on elsewhere (a lease, the idler), waits for
// the next one, up to maxSpare of them at a time, instead of ending. A
// new goroutine's stack starts small and is grown by copying, frame by
// frame, once a request reaches the pipeline (to 8 KiB): on a new
// connection per request that copy was about 2 % of the host's CPU, and a
// spare goroutine's stack has grown already. init makes it ready; stop
// ends the spare ones.
type workers struct {
	jobs  chan job      // unbuffered: a send succeeds only if a spare goroutine waits
	quit  chan struct{} // closed by stop
	stops sync.Once     // closes quit
	spare atomic.Int32  // goroutines waiting on jobs
	wg    sync.WaitGroup
}

// maxSpare bounds the goroutines kept waiting (each holds its grown
// stack, 8 KiB): enough for the connections a burst opens between two
// passes of the scheduler, few enough to matter nowhere in memory.
const maxSpare = 64

// job is a connection to serve: a new one, or one the idler woke.
type job struct {
	c       *conn
	resume  bool
	expired bool // resume: its idle deadline passed
}

func (w *workers) init() {
	w.jobs, w.quit = make(chan job), make(chan struct{})
}

// run serves j on a spare goroutine, or on a new one if none waits.
func (w *workers) run(j job) {
	select {
	case w.jobs <- j:
	default:
		w.wg.Add(1)
		go w.work(j)
	}
}

// work runs j, then each job handed to it while it waits as a spare.
func (w *workers) work(j job) {
	defer w.wg.Done()
	for ok := true; ok; j, ok = w.next() {
		if j.resume {
			j.c.resume(j.expired)
		} else {
			j.c.serve()
		}
	}
}

// next waits for a job as a spare goroutine; false when there are enough
// spares already or stop was called.
func (w *workers) next() (job, bool) {
	if w.spare.Add(1) > maxSpare {
		w.spare.Add(-1)
		return job{}, false
	}
	defer w.spare.Add(-1)
	select {
	case j := <-w.jobs:
		return j, true
	case <-w.quit:
		return job{}, false
	}
}

// stop ends the spare goroutines, and those that finish their connection
// from now on; wait, if true, waits for every one of them to end.
func (w *workers) stop(wait bool) {
	w.stops.Do(func() { close(w.quit) })
	if wait {
		w.wg.Wait()
	}
}
