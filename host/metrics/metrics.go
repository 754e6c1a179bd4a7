// Package metrics answers the host's MetricsURL: one Prometheus scrape with
// the host's own figures (connections, requests, plugin stages, leases,
// restarts, dropped notifications, the Go runtime and the process) and
// those of every plugin that has some, collected from the plugins through
// the plugin contract at each scrape and merged with a plugin label.
// Parsing and encoding are prometheus/common/expfmt's; merging and the
// consistency checks are prometheus/client_golang's Gatherers.
package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/host/pluginhost"
)

// pluginTimeout bounds a plugin's answer to a scrape: a plugin that does not
// answer in time is left out of that scrape (and the failure is logged).
const pluginTimeout = 2 * time.Second

// PluginLabel is the label the host adds to every sample of a plugin.
const PluginLabel = "plugin"

// Plugins is what the exporter asks for the plugins' metrics.
type Plugins interface {
	Scrape(ctx context.Context, timeout time.Duration) []pluginhost.PluginMetrics
}

// Exporter gathers the host's registry and the plugins' metrics.
type Exporter struct {
	reg     *prometheus.Registry
	plugins Plugins
	log     hclog.Logger
}

// New returns an exporter of the host's collectors (plus the Go runtime's
// and the process's) and of plugins' metrics; plugins may be nil.
func New(plugins Plugins, log hclog.Logger, host ...prometheus.Collector) (*Exporter, error) {
	reg := prometheus.NewRegistry()
	cs := append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, host...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return &Exporter{reg: reg, plugins: plugins, log: log}, nil
}

// Gather returns every metric family of the host and the plugins, merged
// by name. The error (errors of single plugins) does not void the result:
// what could be gathered is returned.
func (e *Exporter) Gather() ([]*dto.MetricFamily, error) {
	gs := prometheus.Gatherers{e.reg}
	var errs []error
	if e.plugins != nil {
		for _, pm := range e.plugins.Scrape(context.Background(), pluginTimeout) {
			if pm.Err != nil {
				errs = append(errs, fmt.Errorf("plugin %s: %w", pm.Plugin, pm.Err))
				continue
			}
			gs = append(gs, pluginGatherer(pm))
		}
	}
	mfs, err := gs.Gather()
	if err != nil {
		errs = append(errs, err)
	}
	return mfs, errors.Join(errs...)
}

// Export implements the host's scrape: the format is negotiated from the
// Accept field as Prometheus' own handler does (text format by default).
func (e *Exporter) Export(accept string) (string, []byte, error) {
	mfs, gerr := e.Gather()
	format := expfmt.NegotiateAccept(http.Header{"Accept": {accept}}, expfmt.DefaultAcceptedFormats()...)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return string(format), buf.Bytes(), fmt.Errorf("metrics: encode %s: %w", mf.GetName(), err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		_ = c.Close()
	}
	return string(format), buf.Bytes(), gerr
}

// pluginGatherer parses one plugin's answer and labels its samples.
func pluginGatherer(pm pluginhost.PluginMetrics) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := Parse(pm.ContentType, pm.Data)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %w", pm.Plugin, err)
		}
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				m.Label = withLabel(m.Label, PluginLabel, pm.Plugin)
			}
		}
		return mfs, nil
	})
}

// Parse reads metric families in the exposition format named by
// contentType (any expfmt reads: text, protobuf, OpenMetrics).
func Parse(contentType string, data []byte) ([]*dto.MetricFamily, error) {
	format := expfmt.ResponseFormat(http.Header{"Content-Type": {contentType}})
	if format.FormatType() == expfmt.TypeUnknown {
		return nil, fmt.Errorf("unknown metrics format %q", contentType)
	}
	dec := expfmt.NewDecoder(bytes.NewReader(data), format)
	var out []*dto.MetricFamily
	for {
		mf := new(dto.MetricFamily)
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("parse metrics: %w", err)
		}
		out = append(out, mf)
	}
}

// withLabel sets name=value in ls (replacing a label of that name) and
// keeps the labels sorted by name.
func withLabel(ls []*dto.LabelPair, name, value string) []*dto.LabelPair {
	out := ls[:0]
	for _, l := range ls {
		if l.GetName() != name {
			out = append(out, l)
		}
	}
	out = append(out, &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}
