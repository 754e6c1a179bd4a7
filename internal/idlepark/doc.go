// Package idlepark waits for the next bytes of many idle sockets with one
// epoll wait, so that an idle keep-alive connection holds no goroutine:
// its owner parks the socket here (a Slot) and lets its goroutine end, and
// the Set starts a new goroutine (Slot.Wake) when the socket becomes
// readable (bytes, an EOF, an error), when its deadline passes, or when
// the Set stops. The socket is in the epoll set (one-shot) until it is
// taken out; an owner that wants it back first (a shutdown, a revoke)
// takes it with Take, and Wake then does not run. The deadlines are kept
// in a heap and end the epoll wait: no timer per socket.
//
// The host parks its idle connections here (host/server), and the SDK
// the leased connections whose client pauses (api/lease.go). Where epoll
// is not available (not Linux), Park reports false and the owner waits
// on its goroutine as before.
package idlepark
