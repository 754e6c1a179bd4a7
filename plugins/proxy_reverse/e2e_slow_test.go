package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// Abusive clients, as an attacker sends them: slow headers, slow bodies
// and slow reads (Debian's slowhttptest), against static files and the
// proxy, on fresh connections and on leased ones. The abusive connections
// must be cut at the configured timeouts while ordinary clients keep being
// served.

const (
	slowTimeout = 2 // the host's Timeout and KeepAliveTimeout in these tests
	bigSize     = 4 << 20
)

// slowSite runs the host with Timeout 2 s, a big static file and a proxy
// entry ^/api/ whose backend answers /api/big with bigSize bytes.
func slowSite(t *testing.T) *hosttest.Site {
	t.Helper()
	big := strings.Repeat("x", bigSize)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 4096)
		for _, err := r.Body.Read(buf); err == nil; _, err = r.Body.Read(buf) {
		}
		if strings.HasSuffix(r.URL.Path, "/big") {
			w.Write([]byte(big))
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(be.Close)
	s := hosttest.NewSite(t, bin)
	s.Load("proxy_reverse")
	s.Server = []string{fmt.Sprintf("Timeout %d", slowTimeout), fmt.Sprintf("KeepAliveTimeout %d", slowTimeout)}
	s.WriteRoot("big.bin", big)
	s.WriteFile("proxy_reverse.conf", entryConf("Naive", be.Listener.Addr().String()))
	s.Start()
	return s
}

// serverConns counts established connections whose local port is port.
func serverConns(t *testing.T, port int) int {
	out, err := exec.Command("ss", "-Htn", "state", "established", fmt.Sprintf("( sport = :%d )", port)).Output()
	hosttest.Must(t, err)
	return strings.Count(string(out), "\n")
}

// probe fetches the paths every 100 ms until stop is closed and reports the
// first failure.
func probe(t *testing.T, s *hosttest.Site, stop <-chan struct{}, paths ...string) <-chan error {
	errc := make(chan error, 1)
	c := &http.Client{Timeout: 3 * time.Second}
	go func() {
		defer close(errc)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			p := paths[i%len(paths)]
			resp, err := c.Get(s.URL(p))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				errc <- fmt.Errorf("ordinary client, %s: %w", p, err)
				return
			}
		}
	}()
	return errc
}

func TestE2ESlowClients(t *testing.T) {
	if _, err := exec.LookPath("slowhttptest"); err != nil {
		t.Skip("needs slowhttptest (apt-get install slowhttptest); .ci/run installs it")
	}
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("needs ss (iproute2)")
	}
	hosttest.CheckLeaks(t)
	s := slowSite(t)
	for _, tc := range []struct {
		name string
		args []string
		path string
	}{
		{"slow headers, static", []string{"-H", "-i", "1"}, "/index.html"},
		{"slow headers, proxied", []string{"-H", "-i", "1"}, "/api/x"},
		{"slow body, static", []string{"-B", "-i", "1", "-s", "100000"}, "/index.html"},
		{"slow body, proxied", []string{"-B", "-i", "1", "-s", "100000"}, "/api/x"},
		{"slow read, static", []string{"-X", "-k", "2", "-n", "1", "-z", "5", "-w", "1", "-y", "16"}, "/big.bin"},
		{"slow read, proxied", []string{"-X", "-k", "2", "-n", "1", "-z", "5", "-w", "1", "-y", "16"}, "/api/big"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			errc := probe(t, s, stop, "/index.html", "/api/x")
			args := append([]string{"-c", "60", "-r", "60", "-l", "5", "-p", "3", "-g", "-o",
				filepath.Join(t.TempDir(), "report"), "-u", s.URL(tc.path)}, tc.args...)
			cmd := exec.Command("slowhttptest", args...)
			cmd.Dir = t.TempDir()
			hosttest.Must(t, cmd.Start())
			// Every attack connection is open by 1 s; by Timeout + 2.5 s the
			// server must have cut them all.
			time.Sleep(time.Duration(slowTimeout)*time.Second + 2500*time.Millisecond)
			left := serverConns(t, s.Port)
			err := cmd.Wait()
			close(stop)
			if perr := <-errc; perr != nil {
				t.Fatal(perr)
			}
			if err != nil {
				t.Fatalf("slowhttptest: %v", err)
			}
			if left > 5 {
				t.Fatalf("%d connections still open %.1f s after the attack began", left, slowTimeout+2.5)
			}
			checkReport(t, cmd.Dir)
		})
	}
}

// checkReport fails the test if slowhttptest's own probe ever found the
// service unavailable.
func checkReport(t *testing.T, dir string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "*", "report.csv"))
	for _, m := range matches {
		f, err := os.Open(m)
		hosttest.Must(t, err)
		rows, err := csv.NewReader(bufio.NewReader(f)).ReadAll()
		f.Close()
		hosttest.Must(t, err)
		for _, r := range rows[1:] {
			if n, _ := strconv.Atoi(r[len(r)-1]); n == 0 {
				t.Fatalf("slowhttptest found the service unavailable: %v", rows)
			}
		}
	}
}

// On a leased connection the plugin holds the socket: its timeouts must
// cut abusive clients as the host's do.
func TestE2ESlowClientsLeased(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("needs ss (iproute2)")
	}
	hosttest.CheckLeaks(t)
	s := slowSite(t)
	for _, tc := range []struct {
		name, send string
		read       bool // the client never reads the answer to send
	}{
		{"idle", "", false},
		{"partial head", "GET /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow:", false},
		{"slow body", "POST /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nab", false},
		{"slow read", strings.Repeat("GET /api/big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 4), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := hosttest.Dial(t, s.Addr())
			if tc.read {
				setRcvBuf(t, c)
			}
			c.Send("GET /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			if r := c.MustRead("GET"); r.Status != 200 {
				t.Fatalf("first request: %d", r.Status)
			}
			start := time.Now()
			c.Send(tc.send)
			if !closedWithin(t, c, 5*slowTimeout*time.Second, tc.read) {
				t.Fatalf("connection still open %v after the client began to stall", time.Since(start))
			}
		})
	}
}

// setRcvBuf makes the client's receive window small, as a slow reader's.
func setRcvBuf(t *testing.T, c *hosttest.Client) {
	tc, ok := c.C.(interface{ SetReadBuffer(int) error })
	if !ok {
		t.Fatal("not a TCP connection")
	}
	hosttest.Must(t, tc.SetReadBuffer(4096))
}

// closedWithin waits up to d for the server to close the connection. A
// slow reader is not reading, so the server's side is watched instead: it
// leaves ESTABLISHED when the server closes, even with unsent data queued.
func closedWithin(t *testing.T, c *hosttest.Client, d time.Duration, slowRead bool) bool {
	if slowRead {
		port := c.C.LocalAddr().(*net.TCPAddr).Port
		return hosttest.Poll(d, func() bool {
			out, err := exec.Command("ss", "-Htn", "state", "established",
				fmt.Sprintf("( dport = :%d )", port)).Output()
			hosttest.Must(t, err)
			return len(strings.TrimSpace(string(out))) == 0
		})
	}
	c.C.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		if _, err := c.C.Read(buf); err != nil {
			return !isTimeout(err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(interface{ Timeout() bool })
	return ok && ne.Timeout()
}
