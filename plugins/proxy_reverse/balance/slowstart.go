package balance

import (
	"math/rand/v2"
	"time"
)

// Shares is implemented by slots whose servers may take less than their
// full share for a while: slow start after a recovery.
type Shares interface {
	// Share returns the part of its share the server in slot i takes
	// at now, in (0, 1].
	Share(i int, now time.Time) float64
}

// SlowStart wraps a picker of slots s: after pk orders the slots, a slot
// whose share is below 1 is moved to the back with probability 1 - share
// (keeping the order of the others), so a recovering server's traffic
// ramps up linearly with its share whatever the policy. It stays in the
// order, so failing over still reaches it. rand nil means math/rand/v2's
// lock-free generator. Order stays lock- and allocation-free, and reads
// the clock once.
func SlowStart(pk Picker, s Shares, rand func() uint64) Picker {
	if rand == nil {
		rand = randUint64
	}
	return slowStartPicker{pk, s, rand}
}

func randUint64() uint64 { return rand.Uint64() }

type slowStartPicker struct {
	pk   Picker
	s    Shares
	rand func() uint64
}

func (p slowStartPicker) Order(dst []int, r Request) []int {
	dst = p.pk.Order(dst, r)
	end, now := len(dst), time.Now()
	for i := 0; i < end; {
		share := p.s.Share(dst[i], now)
		if share >= 1 || float64(p.rand()>>11)/(1<<53) < share {
			i++
			continue
		}
		v := dst[i] // demoted: rotate it to the back
		copy(dst[i:], dst[i+1:])
		dst[len(dst)-1] = v
		end--
	}
	return dst
}
