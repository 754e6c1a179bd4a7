package main

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// gen generates n pseudo-random bytes: 64 KiB blocks of a fixed random
// pattern, each stamped with its index (so a lost, repeated or reordered
// block changes the hash).
type gen struct {
	n, off int64
	block  []byte
	pos    int
	index  uint64
}

func newGen(n int64) *gen {
	b := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return &gen{n: n, block: b}
}

func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	if g.pos == 0 {
		binary.LittleEndian.PutUint64(g.block, g.index)
	}
	n := copy(p, g.block[g.pos:])
	n = int(min(int64(n), g.n-g.off))
	g.off += int64(n)
	if g.pos += n; g.pos == len(g.block) {
		g.pos, g.index = 0, g.index+1
	}
	return n, nil
}

// bigBackend serves GET (size bytes generated on the fly, its CRC-32 sent
// to sent) and POST (answers "LENGTH CRC" of the body it read).
func bigBackend(t *testing.T, size int64, sent chan<- uint32) *httptest.Server {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := crc32.NewIEEE()
		if r.Method == "POST" {
			n, err := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %08x %v", n, h.Sum32(), err)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		_, err := io.Copy(io.MultiWriter(w, h), newGen(size))
		if err != nil {
			sent <- 0
			return
		}
		sent <- h.Sum32()
	}))
	t.Cleanup(b.Close)
	return b
}

// memory samples a process's VmRSS until stop; done receives the largest
// sample and VmHWM in KiB.
func memory(pid int, stop <-chan struct{}, done chan<- [2]int64) {
	read := func(key string) int64 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == key+":" {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
		return -1
	}
	var maxRSS int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		maxRSS = max(maxRSS, read("VmRSS"))
		select {
		case <-stop:
			done <- [2]int64{maxRSS, read("VmHWM")}
			return
		case <-tick.C:
		}
	}
}

// A 1 GiB answer and a 1 GiB upload stream through the plugin process
// (one kept-alive connection: the download is handed over, the upload is
// served under the lease) with its memory bounded. Too slow under -race:
// run it as
//
//	go test -count=1 -run TestE2EGiB ./plugins/proxy_reverse/
func TestE2EGiBStreamsWithBoundedMemory(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("1 GiB each way: run without -race and -short")
	}
	hosttest.CheckLeaks(t)
	const size = 1 << 30
	const limitKiB = 100 << 10
	sent := make(chan uint32, 1)
	b := bigBackend(t, size, sent)
	s, p := startProxy(t, entryConf("First-Alive", b.Listener.Addr().String()), "MaxRequestSize 0")
	c := client(t, true, "")
	get(t, c, s.URL("/index.html")) // so that the plugin's first request below is on an open connection
	plugin := p.PluginPid(t, "", 0)
	stop, mem := make(chan struct{}), make(chan [2]int64, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); memory(plugin, stop, mem) }()
	defer wg.Wait()
	defer close(stop)
	start := time.Now()

	resp, err := c.Get(s.URL("/api/gib"))
	hosttest.Must(t, err)
	h := crc32.NewIEEE()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if want := <-sent; err != nil || n != size || h.Sum32() != want {
		t.Fatalf("download: %d bytes crc %08x err %v, want %d crc %08x", n, h.Sum32(), err, size, want)
	}
	down := time.Since(start)

	h.Reset()
	req, err := http.NewRequest("POST", s.URL("/api/gib"), io.TeeReader(newGen(size), h))
	hosttest.Must(t, err)
	req.ContentLength = size
	st, body := func() (int, string) {
		resp, err := c.Do(req)
		hosttest.Must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}()
	if want := fmt.Sprintf("%d %08x <nil>", size, h.Sum32()); st != 200 || body != want {
		t.Fatalf("upload: %d %q, want %q", st, body, want)
	}
	stop <- struct{}{}
	m := <-mem
	t.Logf("download %v, upload %v; plugin max VmRSS %d KiB, VmHWM %d KiB", down, time.Since(start)-down, m[0], m[1])
	if m[0] <= 0 || m[1] <= 0 || m[1] > limitKiB {
		t.Fatalf("plugin memory: max VmRSS %d KiB, VmHWM %d KiB, limit %d KiB", m[0], m[1], limitKiB)
	}
}
