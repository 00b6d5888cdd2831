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
	// series keeps the probe series in step with the registry.
	series ClusterSeries
}

// NewMetrics returns the registry's metrics, not yet registered anywhere.
func NewMetrics() *Metrics {
	m := &Metrics{
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
	}
	m.series = ClusterSeries{
		Create: func(cluster string) {
			m.probeDuration.WithLabelValues(cluster)
			m.probeFailures.WithLabelValues(cluster)
		},
		Delete: func(cluster string) {
			m.probeDuration.DeleteLabelValues(cluster)
			m.probeFailures.DeleteLabelValues(cluster)
		},
	}
	return m
}

// ObserveProbe records one health probe; it is an Options.ObserveProbe.
func (m *Metrics) ObserveProbe(cluster string, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.series.Track(cluster)
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
	m.series.Sync(infos)
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

// ClusterSeries keeps a set of per-cluster metric series in step with the
// registry: zero series for a cluster seen for the first time, so that rates
// and alerts work from its first sample, and none for a cluster that left.
// It is not safe for concurrent use: its owner serialises calls.
type ClusterSeries struct {
	// Create makes the zero series of a cluster.
	Create func(cluster string)
	// Delete removes every series of a cluster.
	Delete func(cluster string)
	known  map[string]struct{}
}

// Track creates a cluster's zero series unless it has them.
func (s *ClusterSeries) Track(cluster string) {
	if s.known == nil {
		s.known = map[string]struct{}{}
	}
	if _, ok := s.known[cluster]; ok {
		return
	}
	s.known[cluster] = struct{}{}
	s.Create(cluster)
}

// Sync tracks every registered cluster and deletes the series of the others.
func (s *ClusterSeries) Sync(infos []ClusterInfo) {
	registered := make(map[string]struct{}, len(infos))
	for _, ci := range infos {
		registered[ci.Name] = struct{}{}
		s.Track(ci.Name)
	}
	for name := range s.known {
		if _, ok := registered[name]; !ok {
			delete(s.known, name)
			s.Delete(name)
		}
	}
}
