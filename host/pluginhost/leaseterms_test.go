package pluginhost

import (
	"testing"

	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// TestLeaseTermsReports: which leases report their requests as they go
// (Lease.ReportCounts), and which are bounded at contract.LeaseRecordBatch
// instead, by what the host wants (counts: MetricsURL; records: a
// stage-40 plugin), what the holder declares (lease_reports, and
// lease_records for records in its reports: a plugin built before
// records went in reports sends them only with its final reply) and
// whether the connection takes reports (Handoff.Held).
func TestLeaseTermsReports(t *testing.T) {
	const offered = 1000
	cases := []struct {
		name                          string
		counts, logs, reports, record bool
		held                          bool
		wantReports                   bool
		wantMax                       int
	}{
		{name: "nothing wanted", reports: true, record: true, held: true, wantMax: offered},
		{name: "counts, reported", counts: true, reports: true, held: true, wantReports: true, wantMax: offered},
		{name: "counts, not reported", counts: true, held: true, wantMax: contract.LeaseRecordBatch},
		{name: "records, reported", logs: true, reports: true, record: true, held: true, wantReports: true, wantMax: offered},
		{name: "records, holder reports counts only", logs: true, reports: true, held: true, wantMax: contract.LeaseRecordBatch},
		{name: "records, no one takes reports", logs: true, reports: true, record: true, wantMax: contract.LeaseRecordBatch},
		{name: "counts and records, holder reports counts only", counts: true, logs: true, reports: true, held: true, wantMax: contract.LeaseRecordBatch},
		{name: "counts and records, reported", counts: true, logs: true, reports: true, record: true, held: true, wantReports: true, wantMax: offered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			holder := &plugin{man: transport.Manifest{LeaseReports: tc.reports, LeaseRecords: tc.record}}
			s := &snapshot{leasable: true, handle: []*plugin{holder}}
			if tc.logs {
				s.done = []*plugin{{}}
			}
			ho := &stage.Handoff{Lease: stage.Lease{MaxRequests: offered, ReportCounts: tc.counts}}
			if tc.held {
				ho.Held = nopHolder{}
			}
			l := (&Host{}).lease(s, 0, ho)
			if l.ReportCounts != tc.wantReports || l.MaxRequests != tc.wantMax || l.Records != tc.logs {
				t.Errorf("reports %v, max %d, records %v; want %v, %d, %v", l.ReportCounts, l.MaxRequests, l.Records,
					tc.wantReports, tc.wantMax, tc.logs)
			}
		})
	}
}

// nopHolder is a connection that takes reports (stage.Holder).
type nopHolder struct{}

func (nopHolder) Park(*stage.Result)   {}
func (nopHolder) Report(*stage.Result) {}
