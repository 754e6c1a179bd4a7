package pluginhost

import "sync"

// leases records which plugin instance holds which connection under a
// lease, so that Revoke reaches it. A revoke that comes before the lease is
// registered leaves a tombstone, and the lease is then not granted: a
// connection the server revokes (on reload or shutdown) never starts a new
// lease it would not hear about.
type leases struct {
	m sync.Map // conn id -> *instance, or revokedMark
}

var revokedMark = new(int)

// register records that in holds conn id under a lease; false means the
// connection was revoked first.
func (l *leases) register(id uint64, in *instance) bool {
	v, loaded := l.m.LoadOrStore(id, in)
	if loaded && v == any(revokedMark) {
		l.m.Delete(id)
		return false
	}
	return true
}

// end removes the lease of in on id, if it is still there.
func (l *leases) end(id uint64, in *instance) { l.m.CompareAndDelete(id, in) }

// revoke returns the instance holding id under a lease, or leaves a
// tombstone and returns nil.
func (l *leases) revoke(id uint64) *instance {
	v, loaded := l.m.LoadOrStore(id, revokedMark)
	if in, ok := v.(*instance); loaded && ok {
		return in
	}
	return nil
}

// forget drops what is known of a closed connection.
func (l *leases) forget(id uint64) { l.m.Delete(id) }

// holdsAny reports whether in still holds one of ids under a lease.
func (l *leases) holdsAny(in *instance, ids []uint64) bool {
	for _, id := range ids {
		if v, ok := l.m.Load(id); ok && v == any(in) {
			return true
		}
	}
	return false
}

// held returns the connections in holds under a lease.
func (l *leases) held(in *instance) []uint64 {
	var ids []uint64
	l.m.Range(func(k, v any) bool {
		if v == any(in) {
			ids = append(ids, k.(uint64))
		}
		return true
	})
	return ids
}
