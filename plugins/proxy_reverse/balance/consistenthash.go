package balance

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/capuchin/capuchin/api/http1"
)

const consistentHashName = "consistent-hash"

func init() {
	register(Info{Name: consistentHashName, Aliases: []string{"ring-hash", "ketama"},
		Args: "[client | path | header NAME | cookie NAME]", Weighted: true,
		New: func(args []string) (Policy, error) {
			k, err := parseHashKey(args)
			return &ConsistentHash{Key: k}, err
		}})
}

// ConsistentHash sends every request with the same key (the client
// address, the path, a header or a cookie; see HashKey) to the same server,
// and keeps doing so when other servers are added or removed.
//
// It is a hash ring with virtual nodes (Karger et al.; nginx's "hash ...
// consistent" and Envoy's ring_hash): every slot puts 160 points per unit
// of weight on a ring of 64-bit hashes of its address; a key goes to the
// slot of the first point at or after the key's hash. The ring was chosen
// over the alternatives for its three properties that the others lack
// together:
//   - minimal movement: adding a server takes only the keys that now land
//     on its points, removing one moves only its own keys (about 1/N each
//     way); Maglev's table is rebuilt with some extra movement, and jump
//     hash only removes the last of numbered buckets cleanly, where a
//     ServerList loses any server;
//   - spread fail-over: the order goes on along the ring, so a down
//     server's keys fall to the owners of the points after each of its
//     160 points, that is over all the other servers, where a hash modulo
//     n (Source-Hash) hands them all to one neighbour; and its fail-over
//     choice is the very server the key moves to when the down server is
//     removed from the list;
//   - weights: weight=N is N times the points.
//
// The ring is built once per server list (Picker, the slow path); a request
// costs one hash of its key and a binary search over 160·n points.
type ConsistentHash struct {
	Key HashKey
}

// HashKey says what part of the request is hashed.
type HashKey struct {
	Kind KeyKind
	Name string // the header or cookie name
}

// KeyKind is the source of a hash key.
type KeyKind uint8

// Key sources. A request that lacks the header or cookie is hashed on its
// client address.
const (
	KeyClient KeyKind = iota
	KeyPath
	KeyHeader
	KeyCookie
)

func parseHashKey(args []string) (HashKey, error) {
	if len(args) == 0 {
		return HashKey{}, nil
	}
	kind := map[string]KeyKind{"client": KeyClient, "path": KeyPath, "header": KeyHeader,
		"cookie": KeyCookie}
	k, ok := kind[strings.ToLower(args[0])]
	switch {
	case !ok:
	case k <= KeyPath && len(args) == 1:
		return HashKey{Kind: k}, nil
	case k >= KeyHeader && len(args) == 2 && http1.IsToken(args[1]):
		return HashKey{Kind: k, Name: args[1]}, nil
	}
	return HashKey{}, fmt.Errorf("want client, path, header NAME or cookie NAME, got %q",
		strings.Join(args, " "))
}

// Name implements Policy.
func (p *ConsistentHash) Name() string {
	return consistentHashName + " " + [...]string{"client", "path", "header", "cookie"}[p.Key.Kind] +
		strings.TrimRight(" "+p.Key.Name, " ")
}

// Picker implements Policy: it builds the ring.
func (p *ConsistentHash) Picker(s Slots) Picker {
	return &ring{key: p.Key, n: s.Len(), points: buildRing(s)}
}

// Ring sizes: points per unit of weight, and the most points a ring holds
// (beyond it every slot's share is scaled down).
const (
	pointsPerWeight = 160
	maxRingPoints   = 1 << 18
	ringFallbacks   = 8 // slots taken along the ring; the rest follow in turn
)

type point struct {
	hash uint64
	slot int32
}

type ring struct {
	key    HashKey
	n      int
	points []point // sorted by hash
}

func buildRing(s Slots) []point {
	total := 0
	for i := 0; i < s.Len(); i++ {
		total += pointsPerWeight * max(1, s.Weight(i))
	}
	seen := map[netip.AddrPort]int{} // occurrences of an address listed twice
	points := make([]point, 0, min(total, maxRingPoints+s.Len()))
	for i := 0; i < s.Len(); i++ {
		ap := s.Addr(i)
		occ := seen[ap]
		seen[ap]++
		count := pointsPerWeight * max(1, s.Weight(i))
		if total > maxRingPoints {
			count = max(1, count*maxRingPoints/total)
		}
		for v := 0; v < count; v++ {
			points = append(points, point{pointHash(ap, occ, v), int32(i)})
		}
	}
	slices.SortFunc(points, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.slot, b.slot))
	})
	return points
}

// pointHash places virtual node v of the occ-th slot holding ap.
func pointHash(ap netip.AddrPort, occ, v int) uint64 {
	a := ap.Addr().Unmap().As16()
	var tail [10]byte
	binary.BigEndian.PutUint16(tail[0:], ap.Port())
	binary.BigEndian.PutUint32(tail[2:], uint32(occ))
	binary.BigEndian.PutUint32(tail[6:], uint32(v))
	return mix64(fnv1a(fnv1a(fnvOffset, a[:]), tail[:]))
}

// mix64 is SplitMix64's finaliser: FNV's low bits are poorly mixed for
// inputs that differ in their last bytes only.
func mix64(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// Order implements Picker: the owners of the points from the key's hash
// on, each once, then the remaining slots in turn.
func (r *ring) Order(dst []int, req Request) []int {
	dst = dst[:0]
	if r.n == 0 {
		return dst
	}
	i, _ := slices.BinarySearchFunc(r.points, r.key.hash(req), func(p point, h uint64) int {
		return cmp.Compare(p.hash, h)
	})
	want := min(r.n, ringFallbacks)
	for step := 0; step < len(r.points) && len(dst) < want; step++ {
		if s := int(r.points[(i+step)%len(r.points)].slot); !contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return appendRest(dst, r.n, dst[0]+1)
}

// hash returns the hash of the request's key.
func (k HashKey) hash(r Request) uint64 {
	if h := r.Head; h != nil {
		switch k.Kind {
		case KeyPath:
			return mix64(fnv1a(fnvOffset, h.Path))
		case KeyHeader:
			if v := h.Header.Get(k.Name); v != "" {
				return mix64(fnv1a(fnvOffset, v))
			}
		case KeyCookie:
			if v, ok := cookie(h.Header, k.Name); ok {
				return mix64(fnv1a(fnvOffset, v))
			}
		}
	}
	return mix64(Hash(r.Client))
}

// cookie returns the value of the first cookie named name in the Cookie
// fields of h (RFC 6265 §4.2: "a=1; b=2"), without allocating.
func cookie(h http1.Header, name string) (string, bool) {
	for _, f := range h {
		if !http1.EqualFold(f.Name, "Cookie") {
			continue
		}
		for v := f.Value; v != ""; {
			var pair string
			pair, v, _ = strings.Cut(v, ";")
			n, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && n == name {
				return strings.Trim(val, `"`), true
			}
		}
	}
	return "", false
}
