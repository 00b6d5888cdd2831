package hub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

// Names of the reconciler's Prometheus metrics. The prefix is the contract's.
// No series carries a MyResource's name: per-cluster series would multiply
// by the number of MyResources.
const (
	// MetricApplies counts apply requests to member clusters.
	MetricApplies = "hub_operator_member_apply_total"
	// MetricApplyDuration is the latency of apply requests.
	MetricApplyDuration = "hub_operator_member_apply_duration_seconds"
	// MetricApplyErrors counts failed apply requests by contract reason.
	MetricApplyErrors = "hub_operator_member_apply_errors_total"
	// MetricMyResources counts MyResources by the status of their Ready condition.
	MetricMyResources = "hub_operator_myresources"
	// MetricRollouts counts MyResources by the phase of their rollout.
	MetricRollouts = "hub_operator_rollouts"
	// MetricRolloutClusterUpdates counts clusters a rollout updated
	// (succeeded), that failed a revision (failed), and that were given the
	// stable revision again (rolled_back).
	MetricRolloutClusterUpdates = "hub_operator_rollout_cluster_updates_total"
)

// Values of the result label of MetricRolloutClusterUpdates.
const (
	resultSucceeded  = "succeeded"
	resultFailed     = "failed"
	resultRolledBack = "rolled_back"
)

// rolloutPhases are the values of the phase label of MetricRollouts, each
// exported, zero or not, so that an alert on one has a series to read.
var rolloutPhases = []hubv1.RolloutPhase{hubv1.RolloutProgressing, hubv1.RolloutPaused, hubv1.RolloutWaitingForApproval,
	hubv1.RolloutHalted, hubv1.RolloutRolledBack, hubv1.RolloutComplete}

// applyErrorReasons are the reasons member.Reason gives an apply error; their
// series start at zero so that alerts and rates see the first error.
var applyErrorReasons = []string{hubv1.ReasonApplyFailed, hubv1.ReasonConflict, hubv1.ReasonClusterUnreachable, hubv1.ReasonInvalidSpec}

// Label names and values of the reconciler's metrics.
const (
	labelCluster = "cluster"
	labelReason  = "reason"
	labelReady   = "ready"
	labelPhase   = "phase"
	labelResult  = "result"

	readyTrue    = "true"
	readyFalse   = "false"
	readyUnknown = "unknown"
)

// readyValues are the values of the ready label of MetricMyResources.
var readyValues = []string{readyTrue, readyFalse, readyUnknown}

// listTimeout bounds the cache read of a scrape; before the MyResource
// informer synced, the read waits for it.
const listTimeout = 5 * time.Second

// Metrics exports the reconciler's work as Prometheus metrics: apply requests
// per member cluster, and MyResources by Ready status (counted from the hub
// cache on every scrape). Per-cluster series exist for exactly the registered
// clusters: they start at zero when a cluster joins and are deleted when it
// leaves. A nil *Metrics records nothing.
type Metrics struct {
	applies       *prometheus.CounterVec
	applyDuration *prometheus.HistogramVec
	applyErrors   *prometheus.CounterVec
	myresources   *prometheus.Desc
	rollouts      *prometheus.Desc
	updates       *prometheus.CounterVec

	// hub and clusters are set by Register.
	hub      client.Reader
	clusters func() []clusterregistry.ClusterInfo

	// mu serialises observations with the pruning in Collect, so that an
	// apply finishing after its cluster left is pruned on the next scrape.
	mu sync.Mutex
	// series keeps the apply series in step with the registry.
	series clusterregistry.ClusterSeries
}

// NewMetrics returns the reconciler's metrics, not yet registered anywhere.
func NewMetrics() *Metrics {
	m := &Metrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricApplies,
			Help: "Apply requests of a MyResource's objects to a member cluster (each reconcile of a selected, ready cluster makes one; one that finds the member in sync writes nothing).",
		}, []string{labelCluster}),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricApplyDuration,
			Help: "Latency of apply requests to a member cluster, failed ones included.",
			// From a cache hit that writes nothing (milliseconds) to the
			// per-cluster timeout (15s by default).
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}, []string{labelCluster}),
		applyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricApplyErrors,
			Help: "Apply requests to a member cluster that failed, by reason (ApplyFailed, Conflict, ClusterUnreachable, InvalidSpec).",
		}, []string{labelCluster, labelReason}),
		myresources: prometheus.NewDesc(MetricMyResources,
			"MyResources on the hub by the status of their Ready condition (true, false, unknown: not reported yet).",
			[]string{labelReady}, nil),
		rollouts: prometheus.NewDesc(MetricRollouts,
			"MyResources on the hub by the phase of their rollout (status.rollout.phase).",
			[]string{labelPhase}, nil),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRolloutClusterUpdates,
			Help: "Clusters a rollout updated to a new revision (succeeded), that failed one (failed), or that were given the stable revision again (rolled_back).",
		}, []string{labelResult}),
	}
	for _, r := range []string{resultSucceeded, resultFailed, resultRolledBack} {
		m.updates.WithLabelValues(r)
	}
	m.series = clusterregistry.ClusterSeries{Create: m.createSeries, Delete: m.deleteSeries}
	return m
}

// Register registers the metrics with reg. hub is read for MyResources and
// clusters (usually the registry's List) for the registered clusters on every
// scrape.
func (m *Metrics) Register(reg prometheus.Registerer, hub client.Reader, clusters func() []clusterregistry.ClusterInfo) error {
	m.hub, m.clusters = hub, clusters
	if err := reg.Register(m); err != nil {
		return fmt.Errorf("registering MyResource reconciler metrics: %w", err)
	}
	return nil
}

// observeApply records one apply request to cluster that took d and ended
// with reason ("" on success).
func (m *Metrics) observeApply(cluster string, d time.Duration, reason string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.series.Track(cluster)
	m.applies.WithLabelValues(cluster).Inc()
	m.applyDuration.WithLabelValues(cluster).Observe(d.Seconds())
	if reason != "" {
		m.applyErrors.WithLabelValues(cluster, reason).Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.applies.Describe(ch)
	m.applyDuration.Describe(ch)
	m.applyErrors.Describe(ch)
	m.updates.Describe(ch)
	ch <- m.myresources
	ch <- m.rollouts
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	m.series.Sync(m.clusters())
	m.mu.Unlock()
	m.applies.Collect(ch)
	m.applyDuration.Collect(ch)
	m.applyErrors.Collect(ch)
	m.updates.Collect(ch)
	m.collectMyResources(ch)
}

// countUpdates adds n clusters with result to the rollout update counter.
func (m *Metrics) countUpdates(result string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.updates.WithLabelValues(result).Add(float64(n))
}

func (m *Metrics) createSeries(cluster string) {
	m.applies.WithLabelValues(cluster)
	m.applyDuration.WithLabelValues(cluster)
	for _, reason := range applyErrorReasons {
		m.applyErrors.WithLabelValues(cluster, reason)
	}
}

func (m *Metrics) deleteSeries(cluster string) {
	m.applies.DeleteLabelValues(cluster)
	m.applyDuration.DeleteLabelValues(cluster)
	m.applyErrors.DeletePartialMatch(prometheus.Labels{labelCluster: cluster})
}

// collectMyResources counts MyResources by Ready status. When the cache
// cannot answer (not started yet, or still syncing past listTimeout) the
// series is left out: an invalid metric would fail the whole scrape, and a
// zero would claim there are none.
func (m *Metrics) collectMyResources(ch chan<- prometheus.Metric) {
	// A scrape has no context of its own; the timeout bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	var list hubv1.MyResourceList
	// Counting only reads, so the cache's objects need no copy.
	if err := m.hub.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	counts, phases := map[string]int{}, map[hubv1.RolloutPhase]int{}
	for i := range list.Items {
		counts[readyValue(&list.Items[i])]++
		if ro := list.Items[i].Status.Rollout; ro != nil {
			phases[ro.Phase]++
		}
	}
	for _, v := range readyValues {
		ch <- prometheus.MustNewConstMetric(m.myresources, prometheus.GaugeValue, float64(counts[v]), v)
	}
	for _, p := range rolloutPhases {
		ch <- prometheus.MustNewConstMetric(m.rollouts, prometheus.GaugeValue, float64(phases[p]), string(p))
	}
}

// readyValue is the ready label of a MyResource: its Ready condition's
// status, "unknown" when there is none yet.
func readyValue(mr *hubv1.MyResource) string {
	c := meta.FindStatusCondition(mr.Status.Conditions, hubv1.ConditionReady)
	switch {
	case c == nil:
		return readyUnknown
	case c.Status == metav1.ConditionTrue:
		return readyTrue
	case c.Status == metav1.ConditionFalse:
		return readyFalse
	default:
		return readyUnknown
	}
}
