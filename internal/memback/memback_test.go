package memback

import (
	"testing"
	"time"
)

// Memory is given back once the open connections fall by MinDrop and to
// half their peak, not on smaller falls, and again after a further fall.
func TestTrackerGivesBackAfterLargeFalls(t *testing.T) {
	var tr Tracker
	for range 3000 {
		tr.Opened()
	}
	for range 999 {
		tr.Closed()
	}
	if tr.Runs() != 0 {
		t.Fatalf("gave back after a fall of 999 (to 2001 of 3000)")
	}
	for range 501 {
		tr.Closed()
	}
	if tr.Runs() != 1 {
		t.Fatalf("runs %d after falling to 1500 of 3000, want 1", tr.Runs())
	}
	for deadline := time.Now().Add(10 * time.Second); tr.busy.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("FreeOSMemory still running after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	for range 1000 {
		tr.Closed()
	}
	if tr.Runs() != 2 {
		t.Fatalf("runs %d after falling to 500 of 1500, want 2", tr.Runs())
	}
	for range 500 {
		tr.Closed()
	}
	if tr.Runs() != 2 {
		t.Fatalf("runs %d after a fall of 500, want 2", tr.Runs())
	}
}
