// Command demo-backend is a tiny HTTP backend for the demo and benchmarks:
// it answers every request with a short text naming itself, so that load
// balancing shows in curl's output.
//
//	demo-backend -listen 127.0.0.1:8081 -name backend-1 [-size 0]
//
// With -size N it answers with N bytes instead (for benchmarks).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	name := flag.String("name", "backend", "name shown in responses")
	size := flag.Int("size", 0, "answer with this many bytes instead of the greeting")
	flag.Parse()
	fixed := bytes.Repeat([]byte("x"), *size)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", *name)
		if *size > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(fixed)))
			w.Write(fixed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from %s: %s %s (X-Forwarded-For: %s)\n",
			*name, r.Method, r.URL.RequestURI(), r.Header.Get("X-Forwarded-For"))
	})
	log.Printf("%s listening on %s", *name, *addr)
	log.Fatal(http.ListenAndServe(*addr, h))
}
