package metrics

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/capuchin/capuchin/host/pluginhost"
	"github.com/capuchin/capuchin/internal/transport"
)

// plugins answers Scrape with fixed plugin answers (what the plugin host
// returns after asking the plugin processes).
type plugins []pluginhost.PluginMetrics

func (p plugins) Scrape(context.Context, time.Duration) []pluginhost.PluginMetrics { return p }

// encode encodes the families of cs in format, as the SDK does.
func encode(t *testing.T, format expfmt.Format, cs ...prometheus.Collector) []byte {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// TestExportMerges: two plugins exporting the same family (one in the text
// format, one in protobuf) and the host's own family end up in one scrape,
// each plugin's samples labelled with its name (a plugin label the plugin
// set is replaced); a plugin whose answer does not parse, or that failed,
// is left out and reported, the rest is still exported.
func TestExportMerges(t *testing.T) {
	hostC := prometheus.NewCounter(prometheus.CounterOpts{Name: "capuchin_host_total", Help: "h"})
	hostC.Add(2)
	mk := func(v float64, labels prometheus.Labels) prometheus.Collector {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "capuchin_x_total", Help: "x", ConstLabels: labels})
		c.Add(v)
		return c
	}
	text := expfmt.NewFormat(expfmt.TypeTextPlain)
	proto := expfmt.NewFormat(expfmt.TypeProtoDelim)
	ps := plugins{
		{Plugin: "a", Metrics: transport.Metrics{ContentType: string(text), Data: encode(t, text, mk(3, nil))}},
		{Plugin: "b", Metrics: transport.Metrics{ContentType: string(proto), Data: encode(t, proto, mk(5, prometheus.Labels{"plugin": "liar"}))}},
		{Plugin: "c", Metrics: transport.Metrics{ContentType: string(text), Data: []byte("capuchin_x_total{ 3\n")}},
		{Plugin: "d", Err: errors.New("deadline exceeded")},
	}
	e, err := New(ps, hclog.NewNullLogger(), hostC)
	if err != nil {
		t.Fatal(err)
	}
	ct, body, err := e.Export("")
	if err == nil || !strings.Contains(err.Error(), "plugin c") || !strings.Contains(err.Error(), "plugin d") {
		t.Errorf("error %v, want one naming plugins c and d", err)
	}
	if !strings.HasPrefix(ct, string(text)) {
		t.Errorf("content type %q", ct)
	}
	fams, err := Parse(ct, body)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "capuchin_") {
			continue // the Go runtime's and the process's
		}
		for _, m := range f.Metric {
			key := f.GetName()
			for _, l := range m.Label {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if m.Counter != nil {
				got[key] = m.Counter.GetValue()
			}
		}
	}
	want := map[string]float64{"capuchin_host_total": 2, "capuchin_x_total,plugin=a": 3, "capuchin_x_total,plugin=b": 5}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (scrape:\n%s)", k, got[k], v, body)
		}
	}
	if _, ok := got["capuchin_x_total,plugin=liar"]; ok || len(got) != len(want) {
		t.Errorf("unexpected samples: %v", got)
	}
	if _, err := Parse("application/x-unknown", nil); err == nil {
		t.Error("an unknown format parsed")
	}
}
