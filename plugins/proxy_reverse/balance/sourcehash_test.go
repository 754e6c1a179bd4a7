package balance

import (
	"net/netip"
	"testing"
)

func TestSourceHash(t *testing.T) {
	v4 := netip.MustParseAddr("10.1.2.3")
	for _, tc := range []struct {
		name   string
		client netip.Addr
		n      int
	}{
		{"v4", v4, 4},
		{"v4-mapped v6 hashes as v4", netip.AddrFrom16(v4.As16()), 4},
		{"v6", netip.MustParseAddr("2001:db8::1"), 3},
		{"one", v4, 1},
	} {
		o := orders(t, SourceHash{}, servers(tc.n), Request{Client: tc.client}, 2)
		start := int(Hash(tc.client.Unmap()) % uint64(tc.n))
		if want := str(rotate(nil, tc.n, start)); str(o[0]) != want || str(o[1]) != want {
			t.Errorf("%s: %v, want %s twice", tc.name, o, want)
		}
	}
	if Hash(v4) != Hash(netip.AddrFrom16(v4.As16())) {
		t.Fatal("v4-mapped address hashes differently")
	}
}

// 200 clients spread over 4 slots.
func TestSourceHashSpread(t *testing.T) {
	pk := SourceHash{}.Picker(servers(4))
	spread := map[int]int{}
	for i := 0; i < 200; i++ {
		spread[pk.Order(nil, Request{Client: netip.AddrFrom4([4]byte{192, 168, byte(i / 50), byte(i)})})[0]]++
	}
	for i := 0; i < 4; i++ {
		if spread[i] < 25 {
			t.Fatalf("200 clients over 4 slots: %v", spread)
		}
	}
}
