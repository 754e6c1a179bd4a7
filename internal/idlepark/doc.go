// Package idlepark waits for the next bytes of many idle sockets with one
// epoll set, so that an idle keep-alive connection holds no goroutine:
// its owner parks the socket here (a Slot) and lets its goroutine end, and
// the Set hands it on (Owner.Wake, which starts a goroutine) when the
// socket becomes readable (bytes, an EOF, an error), when its deadline
// passes, or when the Set stops. The socket is in the epoll set
// (one-shot) until it is taken out; an owner that wants it back first (a
// shutdown) takes it with Take, and Wake is then not called. The deadlines
// are kept in a heap, and the nearest one is the epoll set's read
// deadline in Go's poller: no timer per socket.
//
// The host parks its idle connections here (host/server). Where epoll is
// not available (not Linux), Park reports false and the owner waits on
// its goroutine as before.
package idlepark
