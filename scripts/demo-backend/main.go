// Command demo-backend is a tiny HTTP backend for the demo and benchmarks:
// it answers every request with a short text naming itself, so that load
// balancing shows in curl's output.
//
//	demo-backend -listen 127.0.0.1:8081 -name backend-1 [-size 0] [-stats ADDR]
//
// With -size N it answers with N bytes instead (for benchmarks). With
// -stats ADDR it serves, on that second address, the number of connections
// accepted on -listen so far as "accepts N\n" (the benchmark counts the new
// backend connections a proxy opens).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	name := flag.String("name", "backend", "name shown in responses")
	size := flag.Int("size", 0, "answer with this many bytes instead of the greeting")
	stats := flag.String("stats", "", "address serving the count of accepted connections")
	flag.Parse()
	var accepts atomic.Int64
	srv := newServer(*addr, *name, *size, &accepts)
	if *stats != "" {
		go func() { // ends with the process
			log.Fatal(http.ListenAndServe(*stats, statsHandler(&accepts)))
		}()
	}
	log.Printf("%s listening on %s", *name, *addr)
	log.Fatal(srv.ListenAndServe())
}

// newServer is the backend on addr; it counts accepted connections in accepts.
func newServer(addr, name string, size int, accepts *atomic.Int64) *http.Server {
	return &http.Server{Addr: addr, Handler: handler(name, size),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepts.Add(1)
			}
		}}
}

// handler answers with the greeting, or with size bytes when size > 0.
func handler(name string, size int) http.Handler {
	fixed := bytes.Repeat([]byte("x"), size)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		if size > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(fixed)))
			w.Write(fixed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from %s: %s %s (X-Forwarded-For: %s)\n",
			name, r.Method, r.URL.RequestURI(), r.Header.Get("X-Forwarded-For"))
	})
}

// statsHandler answers every request with the accept count.
func statsHandler(accepts *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "accepts %d\n", accepts.Load())
	})
}
