package api

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/capuchin/capuchin/internal/transport"
)

// MetricsSource, implemented by a plugin, contributes metrics to the host's
// MetricsURL: Collectors is asked once, at the first scrape (after
// Configure), and the collectors it returns (prometheus/client_golang's:
// counters, gauges, histograms, or a Collector of its own that reads the
// plugin's state at each scrape) are gathered at every scrape. The host adds
// a plugin label with the plugin's name to every sample, so a metric must
// not carry one itself. Name metrics by Prometheus' conventions, with a
// capuchin_ prefix: capuchin_NAME_..._total, ..._seconds.
type MetricsSource interface {
	Collectors() []prometheus.Collector
}

// Reopener, implemented by a plugin, reopens the files it writes when the
// host gets SIGUSR1 (log rotation, as nginx -s reopen). An error is logged
// by the host.
type Reopener interface {
	Reopen() error
}

// metricsState is the plugin's registry, filled at the first scrape.
type metricsState struct {
	once sync.Once
	reg  *prometheus.Registry
	err  error
}

// metricsFormat is what the SDK answers Metrics with: the protobuf
// exposition format, which keeps every detail of a histogram.
var metricsFormat = expfmt.NewFormat(expfmt.TypeProtoDelim)

// Metrics gathers the plugin's collectors, if it has any.
func (rt *runtime) Metrics() (transport.Metrics, error) {
	src, ok := rt.p.(MetricsSource)
	if !ok {
		return transport.Metrics{}, nil
	}
	m := &rt.metrics
	m.once.Do(func() {
		m.reg = prometheus.NewPedanticRegistry()
		for _, c := range src.Collectors() {
			if err := m.reg.Register(c); err != nil {
				m.err = fmt.Errorf("register collector: %w", err)
				return
			}
		}
	})
	if m.err != nil {
		return transport.Metrics{}, m.err
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		return transport.Metrics{}, fmt.Errorf("gather: %w", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, metricsFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return transport.Metrics{}, fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	return transport.Metrics{ContentType: string(metricsFormat), Data: buf.Bytes()}, nil
}

// Reopen calls the plugin's Reopener, if it has one.
func (rt *runtime) Reopen() error {
	if r, ok := rt.p.(Reopener); ok {
		return r.Reopen()
	}
	return nil
}
