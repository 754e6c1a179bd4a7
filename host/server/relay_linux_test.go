package server

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestRelayPeerNonBlocking: the plugin's end of a TLS connection's relay
// pair is non-blocking, as the contract says every socket the host passes
// is (the SDK reads and writes it raw, trusting that).
func TestRelayPeerNonBlocking(t *testing.T) {
	r := newRelay(nil, nil, nil, nil, 0)
	must(t, r.open())
	defer r.host.close()
	defer r.peer.Close()
	raw, err := r.peer.SyscallConn()
	must(t, err)
	var fl int
	must(t, raw.Control(func(fd uintptr) { fl, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }))
	must(t, err)
	if fl&unix.O_NONBLOCK == 0 {
		t.Fatal("the plugin's end of the relay pair is blocking")
	}
}
