package transport

import (
	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// The enums cross the wire by name, never by number: each pair below is
// matched by a switch, so reordering either side's declaration cannot
// change a meaning. A value one side does not know becomes the other
// side's "unknown" (contract.Invalid, pbUnknown), never a neighbour.

// pbUnknown is no value of any of the proto's enums: what a value this side
// does not know travels as, so that the other side does not know it either.
const pbUnknown = -1

func verdictToPB(v contract.Verdict) pb.Verdict {
	switch v {
	case contract.Continue:
		return pb.Verdict_VERDICT_CONTINUE
	case contract.Close:
		return pb.Verdict_VERDICT_CLOSE
	case contract.Respond:
		return pb.Verdict_VERDICT_RESPOND
	case contract.Decline:
		return pb.Verdict_VERDICT_DECLINE
	case contract.Handled:
		return pb.Verdict_VERDICT_HANDLED
	}
	return pbUnknown
}

func verdictFromPB(v pb.Verdict) contract.Verdict {
	switch v {
	case pb.Verdict_VERDICT_CONTINUE:
		return contract.Continue
	case pb.Verdict_VERDICT_CLOSE:
		return contract.Close
	case pb.Verdict_VERDICT_RESPOND:
		return contract.Respond
	case pb.Verdict_VERDICT_DECLINE:
		return contract.Decline
	case pb.Verdict_VERDICT_HANDLED:
		return contract.Handled
	}
	return contract.Invalid
}

func policyToPB(p contract.Policy) pb.Policy {
	switch p {
	case contract.FailClosed:
		return pb.Policy_POLICY_FAIL_CLOSED
	case contract.FailOpen:
		return pb.Policy_POLICY_FAIL_OPEN
	}
	return pbUnknown
}

// policyFromPB reads an unknown policy as the default, fail-closed.
func policyFromPB(p pb.Policy) contract.Policy {
	if p == pb.Policy_POLICY_FAIL_OPEN {
		return contract.FailOpen
	}
	return contract.FailClosed
}

func eventKindToPB(k EventKind) pb.Event_Kind {
	switch k {
	case EventConnect:
		return pb.Event_KIND_CONNECT
	case EventRequest:
		return pb.Event_KIND_REQUEST
	case EventHandle:
		return pb.Event_KIND_HANDLE
	case EventRevoke:
		return pb.Event_KIND_REVOKE
	}
	return pb.Event_KIND_UNSPECIFIED
}

func eventKindFromPB(k pb.Event_Kind) EventKind {
	switch k {
	case pb.Event_KIND_CONNECT:
		return EventConnect
	case pb.Event_KIND_REQUEST:
		return EventRequest
	case pb.Event_KIND_HANDLE:
		return EventHandle
	case pb.Event_KIND_REVOKE:
		return EventRevoke
	}
	return 0
}

func noteKindToPB(k NoteKind) pb.Note_Kind {
	switch k {
	case NoteDone:
		return pb.Note_KIND_DONE
	case NoteClosed:
		return pb.Note_KIND_CLOSED
	}
	return pb.Note_KIND_UNSPECIFIED
}

func noteKindFromPB(k pb.Note_Kind) NoteKind {
	switch k {
	case pb.Note_KIND_DONE:
		return NoteDone
	case pb.Note_KIND_CLOSED:
		return NoteClosed
	}
	return 0
}
