// Command idleconns holds many idle keep-alive connections to a server, for
// the benchmark's memory test (scripts/bench.sh):
//
//	idleconns -addr 127.0.0.1:18091 -path /api/x -n 10000 [-c 64] [-hold 120s]
//
// It opens n connections (c at a time), sends one GET of path on each and
// reads the whole answer with the project's HTTP/1.1 reader, then prints
// "ready OK FAILED" and holds the connections, sending nothing. On SIGTERM
// or SIGINT, or after -hold, it checks each connection without blocking
// (still open, or closed by the server meanwhile), prints "alive OPEN
// CLOSED", closes them all and exits. Errors go to stderr (the first one
// of each kind, and a count).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// options are the command-line flags.
type options struct {
	addr, path, host string
	n, c             int
	hold, timeout    time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:18091", "server address")
	flag.StringVar(&o.path, "path", "/", "path of the one request sent on each connection")
	flag.StringVar(&o.host, "host", "127.0.0.1", "Host field of the requests")
	flag.IntVar(&o.n, "n", 10000, "connections to open")
	flag.IntVar(&o.c, "c", 64, "connections opened at a time")
	flag.DurationVar(&o.hold, "hold", 2*time.Minute, "longest time to hold the connections without a signal")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on dialling and reading one answer")
	flag.Parse()
	if o.n < 1 || o.c < 1 {
		fmt.Fprintln(os.Stderr, "idleconns: -n and -c must be at least 1")
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	conns, failed := openAll(&o)
	fmt.Printf("ready %d %d\n", len(conns), failed)
	select {
	case <-sig:
	case <-time.After(o.hold):
	}
	nOpen, nClosed := check(conns)
	fmt.Printf("alive %d %d\n", nOpen, nClosed)
	for _, c := range conns {
		c.Close()
	}
}

// openAll opens o.n connections with o.c workers and returns those whose
// request was answered, and how many failed.
func openAll(o *options) ([]net.Conn, int) {
	req := []byte("GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n")
	all := make([]net.Conn, o.n)
	next := make(chan int)
	var errs errorLog
	var wg sync.WaitGroup
	for w := 0; w < o.c; w++ {
		wg.Add(1)
		go func() { // ends when next is closed
			defer wg.Done()
			for i := range next {
				c, err := one(o, req)
				if err != nil {
					errs.add(err)
					continue
				}
				all[i] = c
			}
		}()
	}
	for i := range all {
		next <- i
	}
	close(next)
	wg.Wait()
	conns := all[:0]
	for _, c := range all {
		if c != nil {
			conns = append(conns, c)
		}
	}
	return conns, errs.report()
}

// one dials, sends req and reads the answer to the end.
func one(o *options, req []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", o.addr, o.timeout)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = c.SetDeadline(time.Now().Add(o.timeout))
	if err := roundTrip(c, req); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// roundTrip sends req on c and reads one complete 200 answer.
func roundTrip(c net.Conn, req []byte) error {
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	br := bufio.NewReaderSize(c, 2048)
	var resp http1.Response
	if err := http1.ReadResponse(br, nil, &resp); err != nil {
		return fmt.Errorf("read answer head: %w", err)
	}
	var body http1.Body
	body.ResetResponse(br, &resp, "GET")
	if _, err := io.Copy(io.Discard, &body); err != nil {
		return fmt.Errorf("read answer body: %w", err)
	}
	switch {
	case resp.Status != 200:
		return fmt.Errorf("status %d", resp.Status)
	case resp.Close:
		return errors.New("the server closes the connection after the answer")
	case br.Buffered() > 0:
		return errors.New("bytes after the answer")
	}
	return nil
}

// check reports how many connections are still open and how many the
// server closed, peeking at each without blocking.
func check(conns []net.Conn) (open, closed int) {
	for _, c := range conns {
		if alive(c) {
			open++
		} else {
			closed++
		}
	}
	return open, closed
}

// alive peeks at c: no byte waiting (EAGAIN) means open; EOF, an error or
// an unexpected byte counts as closed.
func alive(c net.Conn) bool {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(rerr, syscall.EAGAIN)
		return true // done: never wait for readiness
	})
	return err == nil && ok
}

// errorLog counts failures and prints the first one.
type errorLog struct {
	mu    sync.Mutex
	n     int
	first error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		l.first = err
	}
	l.n++
}

// report prints the count and the first error to stderr and returns the count.
func (l *errorLog) report() int {
	if l.n > 0 {
		fmt.Fprintf(os.Stderr, "idleconns: %d connections failed; first: %v\n", l.n, l.first)
	}
	return l.n
}
