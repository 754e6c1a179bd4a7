package pluginhost

import (
	"testing"

	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// records are n records of a lease, encoded.
func records(n int) stage.Records {
	var rs stage.Records
	for i := range n {
		rs.Append(&stage.Record{Method: "GET", Target: "/", Status: 200 + i%100})
	}
	return rs
}

// TestNoteQueueRecords: a lease's records are queued as items of at most
// maxBatch records, the notifier's batches take them whole, past maxQueuedRecords they are dropped and
// counted, and what an instance leaves queued when it ends counts as
// dropped.
func TestNoteQueueRecords(t *testing.T) {
	in := &instance{notes: make(chan queued, noteQueue)}
	in.notify(&queued{records: records(300)})
	in.notify(&queued{closed: contract.Conn{ID: 1}})
	if len(in.notes) != 4 || in.queued.Load() != 300 {
		t.Fatalf("%d items, %d records queued; want 4 and 300", len(in.notes), in.queued.Load())
	}
	var sizes []int
	for len(in.notes) > 0 {
		var b transport.NoteBatch
		in.fill(&b)
		sizes = append(sizes, b.Len())
	}
	if len(sizes) != 3 || sizes[0] != 128 || sizes[1] != 128 || sizes[2] != 45 || in.queued.Load() != 0 {
		t.Fatalf("batches %v, %d records still counted queued; want [128 128 45] and 0", sizes, in.queued.Load())
	}

	in.queued.Store(maxQueuedRecords - 10)
	in.notify(&queued{records: records(20)})
	if d := in.dropped.Load(); d != 20 || len(in.notes) != 0 || in.queued.Load() != maxQueuedRecords-10 {
		t.Fatalf("over the bound: dropped %d, %d items queued", d, len(in.notes))
	}
	in.queued.Store(0)
	in.notify(&queued{records: records(5)})
	in.notify(&queued{closed: contract.Conn{ID: 2}})
	if n := in.lost(); n != 20+5+1 || len(in.notes) != 0 {
		t.Fatalf("lost %d, %d items left; want 26 and 0", n, len(in.notes))
	}
}
