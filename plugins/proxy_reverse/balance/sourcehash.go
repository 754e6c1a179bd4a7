package balance

import "net/netip"

const sourceHashName = "sourcehash"

func init() {
	register(Info{Name: sourceHashName, Aliases: []string{"source-hash"},
		New: func(args []string) (Policy, error) { return SourceHash{}, noArgs(args) }})
}

// SourceHash sends each client address to the same slot (a hash of the
// address modulo the number of slots), so a client sticks to one server;
// when that server fails the next slots are tried in turn. Adding a server
// moves most clients; Consistent-Hash moves about 1/N of them.
type SourceHash struct{}

// Name implements Policy.
func (SourceHash) Name() string { return sourceHashName }

// Picker implements Policy.
func (SourceHash) Picker(s Slots) Picker { return sourceHashPicker(s.Len()) }

type sourceHashPicker int

func (n sourceHashPicker) Order(dst []int, r Request) []int {
	if n == 0 {
		return dst[:0]
	}
	return rotate(dst, int(n), int(Hash(r.Client)%uint64(n)))
}

// Hash is FNV-1a over the 16-byte form of the address.
func Hash(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	return fnv1a(fnvOffset, b[:])
}

// FNV-1a, 64 bits.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv1a continues the FNV-1a hash h over b.
func fnv1a[T string | []byte](h uint64, b T) uint64 {
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= fnvPrime
	}
	return h
}
