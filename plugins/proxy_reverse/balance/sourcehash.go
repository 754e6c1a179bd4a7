package balance

import "net/netip"

// SourceHash sends each client address to the same slot (a hash of the
// address modulo the number of slots), so a client sticks to one server;
// when that server fails the next slots are tried in turn.
type SourceHash struct{}

// Name implements Policy.
func (SourceHash) Name() string { return "sourcehash" }

// Order implements Policy.
func (SourceHash) Order(dst []int, s Slots, client netip.Addr) []int {
	n := s.Len()
	if n == 0 {
		return dst[:0]
	}
	return rotate(dst, n, int(Hash(client)%uint64(n)))
}

// Hash is FNV-1a over the 16-byte form of the address.
func Hash(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
