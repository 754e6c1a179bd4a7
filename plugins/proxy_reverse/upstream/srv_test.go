package upstream

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// slotList renders the group's slots as "addr*weight ...".
func slotList(g *Group) string {
	sl := g.Slots()
	var out []string
	for i, s := range sl.Servers {
		out = append(out, fmt.Sprintf("%s*%d", s.Addr, sl.Weights[i]))
	}
	return fmt.Sprint(out)
}

// srv:// items through the entry's Resolver, a DNS server of the test's on
// 127.0.0.1: the lowest priority's targets at their ports and weights, the
// others as backups after them; a
// change is followed at the next resolution; a failed lookup keeps the last
// good records; a host name of the same entry goes to the same resolver.
func TestSRVDiscovery(t *testing.T) {
	d := hosttest.NewDNS(t)
	lo := netip.MustParseAddr("127.0.0.1")
	d.SetIP("a.test", lo)
	d.SetIP("b.test", lo, netip.MustParseAddr("127.0.0.2"))
	d.SetIP("c.test", netip.MustParseAddr("127.0.0.3"))
	d.SetIP("plain.test", netip.MustParseAddr("127.0.0.9"))
	d.SetSRV("_http._tcp.api.test",
		hosttest.SRV{Target: "b.test", Port: 8002, Priority: 1, Weight: 3},
		hosttest.SRV{Target: "a.test", Port: 8001, Priority: 1, Weight: 0},
		hosttest.SRV{Target: "c.test", Port: 8003, Priority: 2, Weight: 1}, // a backup
		hosttest.SRV{Target: ".", Port: 8004, Priority: 1, Weight: 1})      // "no service": skipped
	e := entry(t, "srv://_http._tcp.api.test", "plain.test:80")
	e.Resolver = d.Addr
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	want := "[127.0.0.1:8001*1 127.0.0.1:8002*3 127.0.0.2:8002*3 127.0.0.9:80*1 127.0.0.3:8003*1]"
	if got := slotList(g); got != want || g.Slots().Len() != 4 || g.Slots().Backups != 1 {
		t.Fatalf("slots %s (%d for the balancer), want %s and 4", got, g.Slots().Len(), want)
	}
	if o := g.Slots().AppendBackups([]int{3, 2, 1, 0}); fmt.Sprint(o) != "[3 2 1 0 4]" {
		t.Fatalf("order with backups %v", o)
	}
	if s := g.Servers()[0]; s.Name != "srv://_http._tcp.api.test" {
		t.Errorf("server name %q", s.Name)
	}
	// The records change: a.test leaves, c.test joins the preferred group
	// with a weight above the largest.
	d.SetSRV("_http._tcp.api.test",
		hosttest.SRV{Target: "b.test", Port: 8002, Priority: 0, Weight: 1},
		hosttest.SRV{Target: "c.test", Port: 8003, Priority: 0, Weight: 1000})
	g.resolve(context.Background())
	want = "[127.0.0.1:8002*1 127.0.0.2:8002*1 127.0.0.3:8003*256 127.0.0.9:80*1]"
	if got := slotList(g); got != want || g.Slots().Backups != 0 {
		t.Fatalf("after the change: slots %s, want %s", got, want)
	}
	if g.Has(netip.MustParseAddrPort("127.0.0.1:8001")) {
		t.Fatal("a.test's server kept after it left the records")
	}
	// The name disappears (NXDOMAIN): the last good records stay.
	d.SetSRV("_http._tcp.api.test")
	g.resolve(context.Background())
	if got := slotList(g); got != want {
		t.Fatalf("after NXDOMAIN: slots %s, want %s", got, want)
	}
	if !slices.ContainsFunc(g.Servers(), func(s *Server) bool { return s.Addr.Port() == 8003 }) {
		t.Fatal("lost the servers")
	}
}
