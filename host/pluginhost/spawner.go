package pluginhost

import "runtime"

// spawner runs plugin start-ups on one goroutine locked to one OS thread
// for the Host's whole life. Linux sends a child's parent-death signal when
// the thread that forked it exits, so forking from a thread that never
// exits before the plugins are stopped makes the signal mean "the host
// died".
type spawner struct {
	jobs chan func()
	done chan struct{}
}

func newSpawner() *spawner {
	s := &spawner{jobs: make(chan func()), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(s.done)
	for f := range s.jobs {
		f()
	}
}

// run runs f on the spawner's thread and waits for it.
func (s *spawner) run(f func()) {
	ch := make(chan struct{})
	s.jobs <- func() { f(); close(ch) }
	<-ch
}

// close ends the spawner once no run is pending.
func (s *spawner) close() {
	close(s.jobs)
	<-s.done
}
