package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
	dto "github.com/prometheus/client_model/go"
)

// TestIdleLeasedConnections: a keep-alive connection leased to a plugin
// that served one request and then idles past the SDK's hold (500 ms)
// holds no goroutine in the plugin or in the host (the plugin gives it
// back and the host parks it at once). Once it comes back (a second
// request, a new hand-over), the client is one that comes back: its lease
// holds it idle longer (api/lease.go, longHold), so its next request,
// after a pause past the hold, is served under the same lease (no new
// hand-over). Each still closes at KeepAliveTimeout counted from its last
// request, and no goroutine stays behind in either process.
func TestIdleLeasedConnections(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	hostPprof := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pluginPprof := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.Env = []string{"CAPUCHIN_PPROF=" + hostPprof, "CAPUCHIN_PPROF_HELLO=" + pluginPprof}
	s.Server = []string{"KeepAliveTimeout 8", "MetricsURL /metrics"}
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()
	hostBase, pluginBase := goroutines(t, hostPprof), goroutines(t, pluginPprof)

	// More connections than the SDK keeps idle workers (64, each for 10 s
	// after its last event), which the plugin's counts below allow for.
	const n, workers = 200, 64
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, s.Addr())
		if r := cs[i].Get("/hello/a"); r.Status != 200 {
			t.Fatalf("connection %d: %d", i, r.Status)
		}
	}
	// One request each: given back and parked within 900 ms.
	settled := func() bool {
		return goroutines(t, hostPprof) <= hostBase+20 && goroutines(t, pluginPprof) <= pluginBase+workers+20
	}
	if !hosttest.Poll(900*time.Millisecond, settled) {
		t.Fatalf("%d goroutines in the host (%d before), %d in the plugin (%d before) 900 ms after one request on %d connections",
			goroutines(t, hostPprof), hostBase, goroutines(t, pluginPprof), pluginBase, n)
	}
	getAll(t, cs, "/hello/b") // each a new hand-over, of a client that came back
	if g := granted(t, s.Addr()); g != 2*n {
		t.Fatalf("%v leases granted after two requests on %d connections, want %d", g, n, 2*n)
	}
	time.Sleep(900 * time.Millisecond) // past the hold
	getAll(t, cs, "/hello/c")
	if g := granted(t, s.Addr()); g != 2*n {
		t.Errorf("%v leases granted after a pause past the hold, want %d: the leases of clients that came back were not held", g, 2*n)
	}
	last := time.Now()
	for i, c := range cs {
		if !c.Closed(11 * time.Second) {
			t.Fatalf("connection %d not closed", i)
		}
	}
	if d := time.Since(last); d < 7500*time.Millisecond || d > 9500*time.Millisecond {
		t.Errorf("idle connections closed %v after their last request, want KeepAliveTimeout (8 s)", d.Round(time.Millisecond))
	}
	gone := func() bool {
		return goroutines(t, hostPprof) <= hostBase+5 && goroutines(t, pluginPprof) <= pluginBase+workers+5
	}
	if !hosttest.Poll(5*time.Second, gone) {
		t.Errorf("after every connection closed: %d goroutines in the host (%d before), %d in the plugin (%d before)",
			goroutines(t, hostPprof), hostBase, goroutines(t, pluginPprof), pluginBase)
	}
}

// TestLeaseReportsRecords: when a stage-40 plugin logs (the lease carries
// records), the lease of a client that comes back and pauses between
// requests is held to its idle timeout, as without records: the records
// come in the lease's reports, after the first request's, which the host
// logs when the plugin says it answered it. While the leases are held
// every request is logged once, in its connection's order, with its own
// time (not the lease's), and counted once.
func TestLeaseReportsRecords(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	access := filepath.Join(s.Dir, "access.log")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+access+"\n    FlushInterval 50\n    Format json\n")
	s.Server = []string{"KeepAliveTimeout 30", "MetricsURL /metrics"}
	s.LoadFrom(testPlugins(t), "logger", "hello")
	s.StartChecked()
	const n, rounds = 20, 4
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, s.Addr())
	}
	getEach := func(round int) {
		for i, c := range cs {
			if r := c.Get(fmt.Sprintf("/hello/%d-%d", i, round)); r.Status != 200 {
				t.Fatalf("connection %d, round %d: %d", i, round, r.Status)
			}
		}
	}
	getEach(0)
	getEach(1) // within the hold: a client that comes back, held from here on
	for round := 2; round < 2+rounds; round++ {
		time.Sleep(700 * time.Millisecond) // past the hold
		getEach(round)
	}
	want := n * (2 + rounds)
	var lines []string
	logged := func() bool {
		b, _ := os.ReadFile(access)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(b) > 0 && len(lines) >= want
	}
	if !hosttest.Poll(3*time.Second, logged) {
		t.Fatalf("%d requests logged while the leases are held, want %d", len(lines), want)
	}
	checkLogged(t, lines, n, 2+rounds)
	fams := scrapeFams(t, dial(t, s.Addr()))
	if c := sample(fams["capuchin_requests_total"], map[string]string{"handler": "hello", "class": "2xx"}); c != float64(want) {
		t.Errorf("%v requests counted, want %d", c, want)
	}
	if g := sample(fams["capuchin_leases_granted_total"], map[string]string{"plugin": "hello"}); g != n {
		t.Errorf("%v leases granted, want %d: one on each connection", g, n)
	}
}

// checkLogged checks JSON access-log lines of requests /hello/C-R, n
// connections C of rounds requests R each: each logged once, in its
// connection's order, in less time than the pauses between them.
func checkLogged(t *testing.T, lines []string, n, rounds int) {
	t.Helper()
	if len(lines) != n*rounds {
		t.Errorf("%d lines logged, want %d", len(lines), n*rounds)
	}
	next := make([]int, n)
	for _, l := range lines {
		var m struct {
			URI  string  `json:"request_uri"`
			Time float64 `json:"request_time"`
		}
		var c, r int
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if _, err := fmt.Sscanf(m.URI, "/hello/%d-%d", &c, &r); err != nil || c < 0 || c >= n {
			t.Fatalf("%q: not a request of the test", l)
		}
		if r != next[c] {
			t.Errorf("connection %d: request %d logged after request %d", c, r, next[c]-1)
		}
		next[c] = r + 1
		if m.Time > 0.3 {
			t.Errorf("%s: request_time %.3f s, more than the request took", m.URI, m.Time)
		}
	}
}

// TestLeaseReportsCounts: when the host counts requests (MetricsURL) and
// no stage-40 plugin wants records, a lease reports its requests' counts
// as it goes (Lease.ReportCounts) and is not ended for them: a client
// that comes back and pauses past the hold keeps its lease, and its
// requests are counted while the lease is held, both when its connection
// goes idle and, on a busy connection, every few seconds.
func TestLeaseReportsCounts(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.Server = []string{"KeepAliveTimeout 30", "MetricsURL /metrics"}
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()
	const n, rounds = 20, 3
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, s.Addr())
	}
	getAll(t, cs, "/hello/a")
	getAll(t, cs, "/hello/b") // within the hold: a client that comes back, held from here on
	for range rounds {
		time.Sleep(700 * time.Millisecond) // past the hold
		getAll(t, cs, "/hello/c")
	}
	// Past the hold (500 ms, a quarter more at most) the last requests
	// are reported: counted through the reports, the leased requests
	// (each hand-over's first one when the plugin said it answered it).
	ok := map[string]string{"handler": "hello", "class": "2xx"}
	var fams map[string]*dto.MetricFamily
	counted := func() bool {
		fams = scrapeFams(t, dial(t, s.Addr()))
		return sample(fams["capuchin_requests_total"], ok) == n*(2+rounds)
	}
	if !hosttest.Poll(3*time.Second, counted) {
		t.Errorf("%v requests counted while the leases are held, want %d",
			sample(fams["capuchin_requests_total"], ok), n*(2+rounds))
	}
	hello := map[string]string{"plugin": "hello"}
	if g := sample(fams["capuchin_leases_granted_total"], hello); g != n {
		t.Errorf("%v leases granted, want %d: the leases of clients that came back were given back", g, n)
	}
	if r := sample(fams["capuchin_leases_returned_total"], hello); r > 0 {
		t.Errorf("%v leases returned, want none", r)
	}

	// A busy connection (a request every 100 ms, never idle past the
	// hold) is counted as it goes too.
	busy := dial(t, s.Addr())
	for start := time.Now(); time.Since(start) < 6*time.Second; time.Sleep(100 * time.Millisecond) {
		if r := busy.Get("/hello/d"); r.Status != 200 {
			t.Fatalf("busy connection: %d", r.Status)
		}
	}
	fams = scrapeFams(t, dial(t, s.Addr()))
	if c := sample(fams["capuchin_requests_total"], ok) - n*(2+rounds); c < 30 {
		t.Errorf("%v requests of a busy leased connection counted after 6 s, want those of its first 5 s", c)
	}
	if r := sample(fams["capuchin_leases_returned_total"], hello); r > 0 {
		t.Errorf("%v leases returned, want none: the busy lease was ended", r)
	}
}

// getAll sends a GET of path on every connection, in turn, and wants 200.
func getAll(t *testing.T, cs []*client, path string) {
	t.Helper()
	for i, c := range cs {
		if r := c.Get(path); r.Status != 200 {
			t.Fatalf("connection %d, %s: %d", i, path, r.Status)
		}
	}
}

// granted scrapes the leases granted to the plugin hello, on a connection
// of its own.
func granted(t *testing.T, addr string) float64 {
	t.Helper()
	return sample(scrapeFams(t, dial(t, addr))["capuchin_leases_granted_total"], map[string]string{"plugin": "hello"})
}

// TestAccessLogUnderLoad: with 256 busy keep-alive connections, whose
// leases report their records in step (128 at a time each, as a load
// tool's clients keep pace), every request is logged and no stage-40
// notification is dropped: the reports' records are queued as batches,
// not one note each in a queue of 4,096.
func TestAccessLogUnderLoad(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	access := filepath.Join(s.Dir, "access.log")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+access+"\n    FlushInterval 50\n")
	s.Server = []string{"MetricsURL /metrics"}
	s.Env = []string{"GOMAXPROCS=1"} // the notifier shares one processor with the connections, as in make bench
	s.LoadFrom(testPlugins(t), "logger", "hello")
	s.StartChecked()
	const workers, each = 256, 200
	ls := loadRun(hosttest.Load{Addr: s.Addr(), Path: "/hello/x", Workers: workers, PerWorker: each, Duration: 60 * time.Second})
	if ls.Status[200] != workers*each || len(ls.Failures) > 0 {
		t.Fatalf("load: %v", ls)
	}
	logged := func() int { b, _ := os.ReadFile(access); return strings.Count(string(b), "GET /hello/x") }
	if !hosttest.Poll(5*time.Second, func() bool { return logged() == workers*each }) {
		t.Errorf("%d requests logged, want %d", logged(), workers*each)
	}
	if d := sample(scrapeFams(t, dial(t, s.Addr()))["capuchin_plugin_notes_dropped_total"], map[string]string{"plugin": "logger"}); d != 0 {
		t.Errorf("%v stage-40 notes dropped", d)
	}
}
