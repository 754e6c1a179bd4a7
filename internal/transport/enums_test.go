package transport

import (
	"strings"
	"testing"

	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// wireName is the proto's name for a contract name: "fail-open" with
// prefix "POLICY_" is "POLICY_FAIL_OPEN".
func wireName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// TestVerdictsByName: every verdict of the contract crosses the wire as
// the proto value of the same name and comes back as itself, and every
// proto verdict is one of the contract's. Reordering or adding a verdict on
// one side only fails here.
func TestVerdictsByName(t *testing.T) {
	n := 0
	for v := contract.Continue; v.Valid(); v++ {
		n++
		p := verdictToPB(v)
		if got, want := pb.Verdict_name[int32(p)], wireName("VERDICT_", v.String()); got != want {
			t.Errorf("verdict %v goes on the wire as %q, want %q", v, got, want)
		}
		if back := verdictFromPB(p); back != v {
			t.Errorf("verdict %v comes back as %v", v, back)
		}
	}
	if n != len(pb.Verdict_name) {
		t.Errorf("contract has %d verdicts, the proto %d", n, len(pb.Verdict_name))
	}
	for num, name := range pb.Verdict_name {
		v := verdictFromPB(pb.Verdict(num))
		if !v.Valid() || wireName("VERDICT_", v.String()) != name {
			t.Errorf("proto verdict %s reads as %v", name, v)
		}
	}
	if v := verdictFromPB(pb.Verdict(len(pb.Verdict_name) + 7)); v != contract.Invalid {
		t.Errorf("unknown proto verdict reads as %v, want Invalid", v)
	}
	if p := verdictToPB(contract.Invalid); pb.Verdict_name[int32(p)] != "" {
		t.Errorf("Invalid goes on the wire as %s", p)
	}
}

// TestPoliciesByName: the same for failure policies; an unknown one reads
// as the default, fail-closed.
func TestPoliciesByName(t *testing.T) {
	n := 0
	for v := contract.FailClosed; v.Valid(); v++ {
		n++
		p := policyToPB(v)
		if got, want := pb.Policy_name[int32(p)], wireName("POLICY_", v.String()); got != want {
			t.Errorf("policy %v goes on the wire as %q, want %q", v, got, want)
		}
		if back := policyFromPB(p); back != v {
			t.Errorf("policy %v comes back as %v", v, back)
		}
	}
	if n != len(pb.Policy_name) {
		t.Errorf("contract has %d policies, the proto %d", n, len(pb.Policy_name))
	}
	if v := policyFromPB(pb.Policy(9)); v != contract.FailClosed {
		t.Errorf("unknown proto policy reads as %v", v)
	}
}

// TestKindsByName: event and note kinds, each named after its stage.
func TestKindsByName(t *testing.T) {
	events := map[EventKind]string{
		EventConnect: "KIND_CONNECT", EventRequest: "KIND_REQUEST", EventHandle: "KIND_HANDLE", EventRevoke: "KIND_REVOKE",
	}
	for k, want := range events {
		p := eventKindToPB(k)
		if got := pb.Event_Kind_name[int32(p)]; got != want || eventKindFromPB(p) != k {
			t.Errorf("event kind %d: wire %q (want %q), back %d", k, got, want, eventKindFromPB(p))
		}
	}
	if len(events)+1 != len(pb.Event_Kind_name) { // +1: KIND_UNSPECIFIED
		t.Errorf("%d event kinds, the proto has %d", len(events), len(pb.Event_Kind_name)-1)
	}
	notes := map[NoteKind]string{NoteDone: "KIND_DONE", NoteClosed: "KIND_CLOSED"}
	for k, want := range notes {
		p := noteKindToPB(k)
		if got := pb.Note_Kind_name[int32(p)]; got != want || noteKindFromPB(p) != k {
			t.Errorf("note kind %d: wire %q (want %q), back %d", k, got, want, noteKindFromPB(p))
		}
	}
	if len(notes)+1 != len(pb.Note_Kind_name) {
		t.Errorf("%d note kinds, the proto has %d", len(notes), len(pb.Note_Kind_name)-1)
	}
}

// TestStages: the stage constants are Monkey's numbers, each with its own
// index below NumStages, and survive a manifest's round trip.
func TestStages(t *testing.T) {
	want := []int{10, 20, 30, 40, 50}
	var seen [contract.NumStages]bool
	var m Manifest
	i := 0
	for s := contract.StageConnect; s.Valid(); s = s.Next() {
		if i >= len(want) || int(s) != want[i] {
			t.Fatalf("stage %d is %d, want %v", i, int(s), want)
		}
		if x := s.Index(); x < 0 || x >= contract.NumStages || seen[x] {
			t.Errorf("stage %v has index %d", s, x)
		} else {
			seen[x] = true
		}
		m.Stages = append(m.Stages, StageSpec{Stage: s})
		i++
	}
	if i != contract.NumStages {
		t.Errorf("%d stages, NumStages is %d", i, contract.NumStages)
	}
	for _, bad := range []contract.Stage{0, 5, 15, 60} {
		if bad.Valid() {
			t.Errorf("stage %d is valid", int(bad))
		}
	}
	back, err := manifestFromPB(manifestToPB(m))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range back.Stages {
		if s.Stage != m.Stages[i].Stage {
			t.Errorf("stage %v comes back as %v", m.Stages[i].Stage, s.Stage)
		}
	}
}
