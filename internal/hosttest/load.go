package hosttest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// Load is a bounded keep-alive load on 127.0.0.1: Workers clients send up
// to PerWorker requests each (redialling after a close), pausing Pace
// between requests, until done, Duration has passed or Stop is closed.
// Every request has a Timeout (default 10 s) for its answer, so a hang is a
// failure, not a stuck test.
type Load struct {
	Addr      string
	Workers   int
	PerWorker int
	Duration  time.Duration // 0: no time limit
	Pace      time.Duration
	Timeout   time.Duration
	Stop      <-chan struct{}
	// Path is the target of the GET sent when Next is nil.
	Path string
	// Next, if set, returns worker w's i-th request: its bytes and method.
	Next func(w, i int) (req []byte, method string)
	// Check, if set, judges each answer of status below 400 (e.g. its body
	// against what was asked); an error is a failure.
	Check func(req []byte, r *http1.Response, body []byte) error
	// Tally names a field of the answers below 400 to count them by (e.g.
	// X-Backend).
	Tally string
	// Progress, if set, is called after every outcome.
	Progress func()
}

// Outcome is one request's end: Status 0 is a closed connection.
type Outcome struct {
	At     time.Time // when it ended
	Took   time.Duration
	Status int
}

// LoadStats counts the outcomes of a load.
type LoadStats struct {
	mu       sync.Mutex
	Sent     int            // requests written
	Status   map[int]int    // answers by status
	Tally    map[string]int // answers below 400 by the Tally field
	Bodies   map[string]int // answers below 400 by their first 16 body bytes
	Closed   int            // requests answered by a closed connection
	Refused  int            // connects refused (nothing listening)
	Bad      []Outcome      // every outcome other than a status below 400
	Slowest  time.Duration  // the longest request, whatever its outcome
	Failures []string       // anything else: hangs, malformed answers, failed checks
}

func (ls *LoadStats) String() string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return fmt.Sprintf("sent %d, status %v, closed %d, refused %d, slowest %v, failures %d %q", ls.Sent,
		ls.Status, ls.Closed, ls.Refused, ls.Slowest.Round(time.Millisecond), len(ls.Failures),
		ls.Failures[:min(len(ls.Failures), 5)])
}

// Run runs the load to its end and returns the outcomes.
func (l Load) Run() *LoadStats {
	ls := &LoadStats{Status: map[int]int{}, Tally: map[string]int{}, Bodies: map[string]int{}}
	if l.Timeout == 0 {
		l.Timeout = 10 * time.Second
	}
	var end time.Time
	if l.Duration > 0 {
		end = time.Now().Add(l.Duration)
	}
	var wg sync.WaitGroup
	for w := range l.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.worker(ls, w, end)
		}()
	}
	wg.Wait()
	return ls
}

func (l Load) stopped(end time.Time) bool {
	if !end.IsZero() && time.Now().After(end) {
		return true
	}
	select {
	case <-l.Stop:
		return true
	default:
		return false
	}
}

func (l Load) request(w, i int) ([]byte, string) {
	if l.Next != nil {
		return l.Next(w, i)
	}
	return []byte("GET " + l.Path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), "GET"
}

func (l Load) worker(ls *LoadStats, w int, end time.Time) {
	var nc net.Conn
	var br *bufio.Reader
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	for i := 0; i < l.PerWorker && !l.stopped(end); i++ {
		if nc == nil {
			var err error
			if nc, err = net.DialTimeout("tcp", l.Addr, 5*time.Second); err != nil {
				ls.dialError(err)
				time.Sleep(max(l.Pace, 5*time.Millisecond))
				continue
			}
			br = bufio.NewReader(nc)
		}
		req, method := l.request(w, i)
		start := time.Now()
		nc.SetDeadline(start.Add(l.Timeout))
		r, body, err := roundTrip(nc, br, req, method)
		if err == nil && r.Status < 400 && l.Check != nil {
			if cerr := l.Check(req, r, body); cerr != nil {
				err = checkError{cerr}
			}
		}
		ls.record(r, body, err, start, l.Tally)
		if l.Progress != nil {
			l.Progress()
		}
		if err != nil || r.Close {
			nc.Close()
			nc = nil
		}
		if l.Pace > 0 {
			time.Sleep(l.Pace)
		}
	}
}

func (ls *LoadStats) dialError(err error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if errors.Is(err, syscall.ECONNREFUSED) {
		ls.Refused++
		return
	}
	ls.Failures = append(ls.Failures, "dial: "+err.Error())
}

// checkError marks an answer that Check refused.
type checkError struct{ error }

func (ls *LoadStats) record(r *http1.Response, body []byte, err error, start time.Time, tally string) {
	now := time.Now()
	o := Outcome{At: now, Took: now.Sub(start)}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.Sent++
	ls.Slowest = max(ls.Slowest, o.Took)
	var ce checkError
	switch {
	case err != nil && !errors.As(err, &ce) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, http1.ErrIncomplete) || IsReset(err)):
		ls.Closed++
		ls.Bad = append(ls.Bad, o)
	case err != nil:
		ls.Failures = append(ls.Failures, fmt.Sprintf("after %v: %v", o.Took.Round(time.Millisecond), err))
	default:
		ls.Status[r.Status]++
		if o.Status = r.Status; r.Status >= 400 {
			ls.Bad = append(ls.Bad, o)
			return
		}
		ls.Bodies[string(body[:min(len(body), 16)])]++
		if tally != "" {
			ls.Tally[r.Header.Get(tally)]++
		}
	}
}

// roundTrip writes req and reads its answer (after any 1xx) and body.
func roundTrip(nc net.Conn, br *bufio.Reader, req []byte, method string) (*http1.Response, []byte, error) {
	if _, err := nc.Write(req); err != nil {
		return nil, nil, err
	}
	r := &http1.Response{}
	for {
		if err := http1.ReadResponse(br, nil, r); err != nil {
			return nil, nil, err
		}
		if r.Status >= 200 || r.Status == 101 {
			break
		}
	}
	var b http1.Body
	b.ResetResponse(br, r, method)
	body, err := io.ReadAll(&b)
	return r, body, err
}
