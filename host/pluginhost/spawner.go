package pluginhost

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// spawner runs plugin start-ups on one goroutine locked to one OS thread
// for the Host's whole life. Linux sends a child's parent-death signal when
// the thread that forked it exits, so forking from a thread that never
// exits before the plugins are stopped makes the signal mean "the host
// died". It also names each plugin process's peer socket, in a private
// folder of its own that it removes at the end.
type spawner struct {
	jobs chan func()
	done chan struct{}

	mu      sync.Mutex
	peerDir string // created at the first peerSocket
	peerN   int
}

// maxSocketPath is the longest Unix socket path (sun_path holds 108 bytes
// with the terminating NUL on Linux).
const maxSocketPath = 107

// peerSocket returns a new path for a plugin process's peer socket, ""
// when none can be made.
func (s *spawner) peerSocket(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peerDir == "" {
		d, err := os.MkdirTemp("", "capuchin-peers-") // mode 0700: only this user connects
		if err != nil {
			return ""
		}
		s.peerDir = d
	}
	s.peerN++
	p := filepath.Join(s.peerDir, fmt.Sprintf("%d.%s", s.peerN, name))
	if len(p) > maxSocketPath {
		p = filepath.Join(s.peerDir, fmt.Sprint(s.peerN))
	}
	return p
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

// close ends the spawner once no run is pending, and removes the peer
// sockets' folder.
func (s *spawner) close() {
	close(s.jobs)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peerDir != "" {
		os.RemoveAll(s.peerDir)
	}
}
