package clusterregistry

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeView is a registry view a test changes between scrapes.
type fakeView struct {
	mu    sync.Mutex
	infos []ClusterInfo
}

func (v *fakeView) set(infos ...ClusterInfo) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.infos = infos
}

func (v *fakeView) list() []ClusterInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.infos
}

func TestMetricsFollowTheRegistry(t *testing.T) {
	g := NewWithT(t)
	view := &fakeView{}
	view.set(
		ClusterInfo{Name: "a", State: StateReady},
		ClusterInfo{Name: "b", State: StateUnreachable},
		ClusterInfo{Name: "c", State: StateInvalid},
	)
	m := NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	g.Expect(m.Register(reg, view.list)).To(Succeed())

	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hub_operator_member_clusters Registered member clusters by state (ready, unreachable, invalid, connecting).
# TYPE hub_operator_member_clusters gauge
hub_operator_member_clusters{state="connecting"} 0
hub_operator_member_clusters{state="invalid"} 1
hub_operator_member_clusters{state="ready"} 1
hub_operator_member_clusters{state="unreachable"} 1
# HELP hub_operator_member_cluster_ready Whether a registered member cluster is ready: connected, cache synced and its last health probe answered (1) or not (0).
# TYPE hub_operator_member_cluster_ready gauge
hub_operator_member_cluster_ready{cluster="a"} 1
hub_operator_member_cluster_ready{cluster="b"} 0
hub_operator_member_cluster_ready{cluster="c"} 0
# HELP hub_operator_member_probe_failures_total Health probes of member clusters that failed.
# TYPE hub_operator_member_probe_failures_total counter
hub_operator_member_probe_failures_total{cluster="a"} 0
hub_operator_member_probe_failures_total{cluster="b"} 0
hub_operator_member_probe_failures_total{cluster="c"} 0
`), MetricMemberClusters, MetricMemberClusterReady, MetricProbeFailures)).To(Succeed(),
		"every state is exported, and every registered cluster has zeroed probe series before its first probe")

	m.ObserveProbe("a", 20*time.Millisecond, nil)
	m.ObserveProbe("b", 5*time.Second, errors.New("refused"))
	g.Expect(testutil.ToFloat64(m.probeFailures.WithLabelValues("b"))).To(Equal(1.0))
	g.Expect(testutil.CollectAndCount(m.probeDuration)).To(Equal(3))

	view.set(ClusterInfo{Name: "a", State: StateUnreachable})
	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hub_operator_member_clusters Registered member clusters by state (ready, unreachable, invalid, connecting).
# TYPE hub_operator_member_clusters gauge
hub_operator_member_clusters{state="connecting"} 0
hub_operator_member_clusters{state="invalid"} 0
hub_operator_member_clusters{state="ready"} 0
hub_operator_member_clusters{state="unreachable"} 1
# HELP hub_operator_member_cluster_ready Whether a registered member cluster is ready: connected, cache synced and its last health probe answered (1) or not (0).
# TYPE hub_operator_member_cluster_ready gauge
hub_operator_member_cluster_ready{cluster="a"} 0
# HELP hub_operator_member_probe_failures_total Health probes of member clusters that failed.
# TYPE hub_operator_member_probe_failures_total counter
hub_operator_member_probe_failures_total{cluster="a"} 0
`), MetricMemberClusters, MetricMemberClusterReady, MetricProbeFailures)).To(Succeed(),
		"clusters that left the registry have no series any more")
	g.Expect(testutil.CollectAndCount(m.probeDuration)).To(Equal(1))

	// A probe that finishes after its cluster left resurrects its series
	// only until the next scrape.
	m.ObserveProbe("b", time.Second, nil)
	g.Expect(testutil.CollectAndCount(reg, MetricProbeDuration)).To(Equal(1))
}

func TestMetricsNeverLabelMoreThanTheClusterName(t *testing.T) {
	g := NewWithT(t)
	view := &fakeView{}
	view.set(ClusterInfo{Name: "a", State: StateInvalid, Labels: map[string]string{"env": "prod"},
		Reason: "InvalidKubeconfig", Message: "token " + testToken})
	reg := prometheus.NewPedanticRegistry()
	g.Expect(NewMetrics().Register(reg, view.list)).To(Succeed())
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				g.Expect(l.GetName()).To(BeElementOf(labelCluster, labelState), f.GetName())
				g.Expect(l.GetValue()).NotTo(ContainSubstring(testToken))
			}
		}
	}
}

func TestMetricsOfAClusterProbedBeforeTheFirstScrapeStartAtZero(t *testing.T) {
	g := NewWithT(t)
	view := &fakeView{}
	view.set(ClusterInfo{Name: "a", State: StateReady})
	m := NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	g.Expect(m.Register(reg, view.list)).To(Succeed())
	m.ObserveProbe("a", time.Millisecond, nil)
	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hub_operator_member_probe_failures_total Health probes of member clusters that failed.
# TYPE hub_operator_member_probe_failures_total counter
hub_operator_member_probe_failures_total{cluster="a"} 0
`), MetricProbeFailures)).To(Succeed())
}
