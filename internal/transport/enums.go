package transport

import (
	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// The enums cross the wire by name, never by number: each table below
// pairs a value of this side with the proto value of the same name, so
// reordering either side's declaration cannot change a meaning. A value
// one side does not know becomes the other side's "unknown"
// (contract.Invalid, pbUnknown), never a neighbour.

// pbUnknown is no value of any of the proto's enums: what a value this side
// does not know travels as, so that the other side does not know it either.
const pbUnknown = -1

// enumPair is one value of an enum on this side (G) and on the wire (P).
type enumPair[G, P comparable] struct {
	g G
	p P
}

// toWire returns the wire value paired with g, or unknown.
func toWire[G, P comparable](pairs []enumPair[G, P], g G, unknown P) P {
	for _, e := range pairs {
		if e.g == g {
			return e.p
		}
	}
	return unknown
}

// fromWire returns the value paired with the wire value p, or unknown.
func fromWire[G, P comparable](pairs []enumPair[G, P], p P, unknown G) G {
	for _, e := range pairs {
		if e.p == p {
			return e.g
		}
	}
	return unknown
}

var verdicts = []enumPair[contract.Verdict, pb.Verdict]{
	{contract.Continue, pb.Verdict_VERDICT_CONTINUE},
	{contract.Close, pb.Verdict_VERDICT_CLOSE},
	{contract.Respond, pb.Verdict_VERDICT_RESPOND},
	{contract.Decline, pb.Verdict_VERDICT_DECLINE},
	{contract.Handled, pb.Verdict_VERDICT_HANDLED},
}

func verdictToPB(v contract.Verdict) pb.Verdict { return toWire(verdicts, v, pbUnknown) }

func verdictFromPB(v pb.Verdict) contract.Verdict { return fromWire(verdicts, v, contract.Invalid) }

var policies = []enumPair[contract.Policy, pb.Policy]{
	{contract.FailClosed, pb.Policy_POLICY_FAIL_CLOSED},
	{contract.FailOpen, pb.Policy_POLICY_FAIL_OPEN},
}

func policyToPB(p contract.Policy) pb.Policy { return toWire(policies, p, pbUnknown) }

// policyFromPB reads an unknown policy as the default, fail-closed.
func policyFromPB(p pb.Policy) contract.Policy { return fromWire(policies, p, contract.FailClosed) }

var eventKinds = []enumPair[EventKind, pb.Event_Kind]{
	{EventConnect, pb.Event_KIND_CONNECT},
	{EventRequest, pb.Event_KIND_REQUEST},
	{EventHandle, pb.Event_KIND_HANDLE},
	{EventRevoke, pb.Event_KIND_REVOKE},
}

func eventKindToPB(k EventKind) pb.Event_Kind {
	return toWire(eventKinds, k, pb.Event_KIND_UNSPECIFIED)
}

func eventKindFromPB(k pb.Event_Kind) EventKind { return fromWire(eventKinds, k, 0) }

var noteKinds = []enumPair[NoteKind, pb.Note_Kind]{
	{NoteDone, pb.Note_KIND_DONE},
	{NoteClosed, pb.Note_KIND_CLOSED},
}

func noteKindToPB(k NoteKind) pb.Note_Kind { return toWire(noteKinds, k, pb.Note_KIND_UNSPECIFIED) }

func noteKindFromPB(k pb.Note_Kind) NoteKind { return fromWire(noteKinds, k, 0) }
