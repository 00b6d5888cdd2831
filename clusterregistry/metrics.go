package clusterregistry

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the registry's Prometheus metrics. The prefix is the contract's.
const (
	// MetricMemberClusters counts registered clusters by state.
	MetricMemberClusters = "hub_operator_member_clusters"
	// MetricMemberClusterReady is 1 for a Ready cluster, 0 otherwise.
	MetricMemberClusterReady = "hub_operator_member_cluster_ready"
	// MetricProbeDuration is the latency of health probes.
	MetricProbeDuration = "hub_operator_member_probe_duration_seconds"
	// MetricProbeFailures counts failed health probes.
	MetricProbeFailures = "hub_operator_member_probe_failures_total"
)

// Label names of the registry's metrics.
const (
	labelCluster = "cluster"
	labelState   = "state"
)

// states are the values of the state label, every one always exported so
// that "none unreachable" is a 0, not a missing series.
var states = []State{StateReady, StateUnreachable, StateInvalid, StateConnecting}

// Metrics exports the registry as Prometheus metrics. Cluster counts and
// readiness are computed from the registry view on every scrape, so they are
// never stale. Probe series exist for exactly the registered clusters: they
// start at zero when a cluster joins and are deleted when it leaves.
//
// Create it with NewMetrics, hand ObserveProbe to Options.ObserveProbe, and
// Register it once the Provider exists.
type Metrics struct {
	clusters      *prometheus.Desc
	ready         *prometheus.Desc
	probeDuration *prometheus.HistogramVec
	probeFailures *prometheus.CounterVec

	// view lists the registered clusters; set by Register.
	view func() []ClusterInfo

	// mu serialises probe observations with the pruning in Collect, so that
	// an observation never resurrects the series of a cluster that left
	// without being pruned on the next scrape.
	mu sync.Mutex
	// known holds the clusters that have probe series.
	known map[string]struct{}
}

// NewMetrics returns the registry's metrics, not yet registered anywhere.
func NewMetrics() *Metrics {
	return &Metrics{
		clusters: prometheus.NewDesc(MetricMemberClusters,
			"Registered member clusters by state (ready, unreachable, invalid, connecting).",
			[]string{labelState}, nil),
		ready: prometheus.NewDesc(MetricMemberClusterReady,
			"Whether a registered member cluster is ready: connected, cache synced and its last health probe answered (1) or not (0).",
			[]string{labelCluster}, nil),
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricProbeDuration,
			Help: "Latency of the health probes (GET /readyz) of member clusters, failed ones included.",
			// A healthy probe takes milliseconds; a dead member takes the
			// probe timeout (5s by default).
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{labelCluster}),
		probeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricProbeFailures,
			Help: "Health probes of member clusters that failed.",
		}, []string{labelCluster}),
		known: map[string]struct{}{},
	}
}

// ObserveProbe records one health probe; it is an Options.ObserveProbe.
func (m *Metrics) ObserveProbe(cluster string, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.track(cluster)
	m.probeDuration.WithLabelValues(cluster).Observe(d.Seconds())
	if err != nil {
		m.probeFailures.WithLabelValues(cluster).Inc()
	}
}

// Register registers the metrics with reg, reading the registry view from
// list (usually Provider.List) on every scrape.
func (m *Metrics) Register(reg prometheus.Registerer, list func() []ClusterInfo) error {
	m.view = list
	if err := reg.Register(m); err != nil {
		return fmt.Errorf("registering cluster registry metrics: %w", err)
	}
	return nil
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.clusters
	ch <- m.ready
	m.probeDuration.Describe(ch)
	m.probeFailures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	// The view is read under mu: a probe observed after it cannot be of a
	// cluster missing from it, since a cluster is registered before it is probed.
	infos := m.view()
	m.syncSeries(infos)
	m.mu.Unlock()

	counts := map[State]int{}
	for _, ci := range infos {
		counts[ci.State]++
		ready := 0.0
		if ci.State == StateReady {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(m.ready, prometheus.GaugeValue, ready, ci.Name)
	}
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(m.clusters, prometheus.GaugeValue, float64(counts[s]), strings.ToLower(string(s)))
	}
	m.probeDuration.Collect(ch)
	m.probeFailures.Collect(ch)
}

// syncSeries makes the probe series match the registered clusters: zero
// series for newcomers, so that rates and alerts work from their first
// probe, and none for clusters that left. Call it with mu held.
func (m *Metrics) syncSeries(infos []ClusterInfo) {
	registered := make(map[string]struct{}, len(infos))
	for _, ci := range infos {
		registered[ci.Name] = struct{}{}
		m.track(ci.Name)
	}
	for name := range m.known {
		if _, ok := registered[name]; !ok {
			delete(m.known, name)
			m.probeDuration.DeleteLabelValues(name)
			m.probeFailures.DeleteLabelValues(name)
		}
	}
}

// track creates the zero series of a cluster seen for the first time. Call
// it with mu held.
func (m *Metrics) track(cluster string) {
	if _, ok := m.known[cluster]; ok {
		return
	}
	m.known[cluster] = struct{}{}
	m.probeDuration.WithLabelValues(cluster)
	m.probeFailures.WithLabelValues(cluster)
}
