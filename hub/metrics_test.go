package hub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

func myResource(name string, ready ...metav1.ConditionStatus) *hubv1.MyResource {
	mr := &hubv1.MyResource{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	for _, s := range ready {
		mr.Status.Conditions = append(mr.Status.Conditions, metav1.Condition{Type: hubv1.ConditionReady, Status: s, Reason: "X"})
	}
	return mr
}

func TestMetricsCountAppliesAndMyResources(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(hubv1.AddToScheme(scheme)).To(Succeed())
	hub := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		myResource("a", metav1.ConditionTrue),
		myResource("b", metav1.ConditionTrue),
		myResource("c", metav1.ConditionFalse),
		myResource("d", metav1.ConditionUnknown),
		myResource("e"),
	).Build()
	registered := []clusterregistry.ClusterInfo{{Name: "m1"}, {Name: "m2"}}
	m := NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	g.Expect(m.Register(reg, hub, func() []clusterregistry.ClusterInfo { return registered })).To(Succeed())

	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hub_operator_myresources MyResources on the hub by the status of their Ready condition (true, false, unknown: not reported yet).
# TYPE hub_operator_myresources gauge
hub_operator_myresources{ready="false"} 1
hub_operator_myresources{ready="true"} 2
hub_operator_myresources{ready="unknown"} 2
# HELP hub_operator_member_apply_errors_total Apply requests to a member cluster that failed, by reason (ApplyFailed, Conflict, ClusterUnreachable, InvalidSpec).
# TYPE hub_operator_member_apply_errors_total counter
hub_operator_member_apply_errors_total{cluster="m1",reason="ApplyFailed"} 0
hub_operator_member_apply_errors_total{cluster="m1",reason="ClusterUnreachable"} 0
hub_operator_member_apply_errors_total{cluster="m1",reason="Conflict"} 0
hub_operator_member_apply_errors_total{cluster="m1",reason="InvalidSpec"} 0
hub_operator_member_apply_errors_total{cluster="m2",reason="ApplyFailed"} 0
hub_operator_member_apply_errors_total{cluster="m2",reason="ClusterUnreachable"} 0
hub_operator_member_apply_errors_total{cluster="m2",reason="Conflict"} 0
hub_operator_member_apply_errors_total{cluster="m2",reason="InvalidSpec"} 0
`), MetricMyResources, MetricApplyErrors)).To(Succeed(), "every ready value and every registered cluster's reasons start at zero")

	m.observeApply("m1", 30*time.Millisecond, "")
	m.observeApply("m1", 2*time.Second, hubv1.ReasonConflict)
	g.Expect(testutil.ToFloat64(m.applies.WithLabelValues("m1"))).To(Equal(2.0))
	g.Expect(testutil.ToFloat64(m.applyErrors.WithLabelValues("m1", hubv1.ReasonConflict))).To(Equal(1.0))
	g.Expect(testutil.CollectAndCount(m.applyDuration)).To(Equal(2))

	registered = registered[1:]
	g.Expect(testutil.CollectAndCount(reg, MetricApplies)).To(Equal(1), "a cluster that left has no apply series")
	g.Expect(testutil.CollectAndCount(reg, MetricApplyDuration)).To(Equal(1))
	g.Expect(testutil.CollectAndCount(reg, MetricApplyErrors)).To(Equal(len(applyErrorReasons)))

	var none *Metrics
	none.observeApply("m1", time.Second, "") // a Reconciler without metrics records nothing
}

func TestMetricsOfAClusterAppliedBeforeTheFirstScrapeStartAtZero(t *testing.T) {
	g := NewWithT(t)
	m := NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	g.Expect(m.Register(reg, failingReader{}, func() []clusterregistry.ClusterInfo { return []clusterregistry.ClusterInfo{{Name: "m1"}} })).To(Succeed())
	m.observeApply("m1", time.Millisecond, "")
	g.Expect(testutil.CollectAndCount(reg, MetricApplyErrors)).To(Equal(len(applyErrorReasons)))
}

// failingReader is a hub cache that cannot answer, e.g. not started yet.
type failingReader struct{ client.Reader }

func (failingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("cache not started")
}

func TestMetricsLeaveMyResourcesOutWhenTheCacheCannotAnswer(t *testing.T) {
	g := NewWithT(t)
	reg := prometheus.NewPedanticRegistry()
	g.Expect(NewMetrics().Register(reg, failingReader{}, func() []clusterregistry.ClusterInfo { return nil })).To(Succeed())
	_, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred(), "the scrape still succeeds")
	g.Expect(testutil.CollectAndCount(reg, MetricMyResources)).To(BeZero(), "no made-up zero")
}
