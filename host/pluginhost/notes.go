package pluginhost

import (
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// A plugin's stage-40/50 notifications wait in a bounded queue, which one
// goroutine (notifier) sends in batches on the Notify stream. Queuing
// never blocks: what does not fit is dropped and counted
// (capuchin_plugin_notes_dropped_total).
//
// Records are queued encoded, as the plugin that served their requests
// sent them (recordwire): the records of requests served under a lease
// come in batches (a lease's report or final reply,
// contract.LeaseRecordBatch records at most from the SDK), and such a
// batch is one item of the queue (or several, of maxBatch records at
// most); the record of a request the host answered is an item of one.
// Records are bounded by maxQueuedRecords in all. Note by note, the
// reports of 256 connections whose clients keep in step (wrk does) came
// at once and were more than the queue holds: an access log lost 10-17 %
// of its lines at 256 connections.

// noteQueue is the length of a plugin's stage-40/50 queue, in items.
const noteQueue = 4096

// maxQueuedRecords bounds the records queued (about 100-200 bytes each,
// encoded): 256 connections' reports of 128 records at once, twice over.
const maxQueuedRecords = 65536

// maxBatch bounds one batch of notifications (a queued batch of records,
// itself at most maxBatch, may take it past by less than one batch), and
// maxBatchBytes its size in bytes (records of long request lines, past it
// by one item at most; the plugin takes messages of transport.MaxNotes).
const (
	maxBatch      = 128
	maxBatchBytes = 1 << 20
)

// queued is one item of the queue: stage-40 records, or a stage-50 note.
type queued struct {
	records stage.Records // when there are some, the item is these; the notifier only reads them
	closed  contract.Conn // else the connection that closed
}

// count is how many notes q stands for.
func (q *queued) count() int { return max(q.records.Len(), 1) }

// notify queues q for the plugin's running instance; without one it is
// dropped.
func (p *plugin) notify(q *queued) {
	if in := p.inst.Load(); in != nil {
		in.notify(q)
		return
	}
	p.dropped.Add(uint64(q.count()))
}

// notify queues q without blocking, records as items of at most maxBatch;
// what does not fit is dropped.
func (in *instance) notify(q *queued) {
	if q.records.Len() == 0 {
		in.put(q)
		return
	}
	for rs := q.records; rs.Len() > 0; {
		head, tail := rs.Split(maxBatch)
		in.put(&queued{records: head})
		rs = tail
	}
}

// put queues one item, unless the queue is full or it would take the
// records queued past maxQueuedRecords.
func (in *instance) put(q *queued) {
	n := int64(q.records.Len())
	if n == 0 || in.queued.Add(n) <= maxQueuedRecords {
		select {
		case in.notes <- *q:
			return
		default:
		}
	}
	in.queued.Add(-n)
	in.dropped.Add(uint64(q.count()))
}

// notifier sends queued notifications in batches until stopped, then
// flushes what is queued and closes the stream.
func (in *instance) notifier(ns *transport.NoteStream) {
	defer in.wg.Done()
	defer close(in.nDone)
	var batch transport.NoteBatch
	for {
		select {
		case q := <-in.notes:
			in.add(&batch, &q)
			in.fill(&batch)
			if n := batch.Len(); ns.Send(&batch) != nil {
				in.dropped.Add(uint64(n))
				in.die()
				return
			}
		case <-in.stopN:
			for in.fill(&batch); batch.Len() > 0; in.fill(&batch) {
				if n := batch.Len(); ns.Send(&batch) != nil {
					in.dropped.Add(uint64(n))
					break
				}
			}
			_ = ns.Close()
			return
		case <-in.dead:
			return
		}
	}
}

// fill adds queued items to batch while it has room and items wait.
func (in *instance) fill(batch *transport.NoteBatch) {
	for batch.Len() < maxBatch && batch.Size() < maxBatchBytes {
		select {
		case q := <-in.notes:
			in.add(batch, &q)
		default:
			return
		}
	}
}

// add adds q's notes to batch; a note that cannot be encoded is dropped.
func (in *instance) add(batch *transport.NoteBatch, q *queued) {
	if q.records.Len() == 0 {
		if batch.AddClosed(&q.closed) != nil {
			in.dropped.Add(1)
		}
		return
	}
	batch.AddRecords(&q.records)
	in.queued.Add(-int64(q.records.Len()))
}

// lost is what the instance dropped, and what it left queued, once its
// notifier has ended (kill, stop): the plugin counts it as dropped.
func (in *instance) lost() uint64 {
	n := in.dropped.Load()
	for {
		select {
		case q := <-in.notes:
			n += uint64(q.count())
		default:
			return n
		}
	}
}
