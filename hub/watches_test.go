package hub

import (
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

// TestAffectedBy: a registry change of one cluster re-queues only the
// MyResources it can concern, so that a member going down does not
// reconcile every MyResource with a selector.
func TestAffectedBy(t *testing.T) {
	prod := &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	dev := &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}
	invalid := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Near"}}}
	mr := func(name string, p hubv1.Placement, statusFor ...string) *hubv1.MyResource {
		out := &hubv1.MyResource{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: hubv1.MyResourceSpec{Placement: p}}
		for _, c := range statusFor {
			out.Status.Clusters = append(out.Status.Clusters, hubv1.ClusterStatus{Name: c})
		}
		return out
	}
	deleting := mr("deleting", hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"other"}}})
	deleting.Finalizers = []string{hubv1.FinalizerName}
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	all := []*hubv1.MyResource{
		mr("by-name", hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}}),
		mr("by-selector", hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: prod}}),
		mr("other-selector", hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: dev}}),
		mr("other-selector-with-entry", hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: dev}}, "m1"),
		mr("other-name", hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"other"}}}, "other"),
		mr("invalid-selector", hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: invalid}}),
		deleting,
	}
	tests := []struct {
		name     string
		registry []clusterregistry.ClusterInfo
		want     []string
	}{
		{
			name:     "a registered cluster re-queues what selects it by name or current labels, holds an entry for it, or is being deleted",
			registry: []clusterregistry.ClusterInfo{{Name: "m1", Labels: map[string]string{"env": "prod"}}},
			want:     []string{"by-name", "by-selector", "deleting", "invalid-selector", "other-selector-with-entry"},
		},
		{
			name:     "a cluster that left the registry re-queues what names it or holds an entry for it",
			registry: []clusterregistry.ClusterInfo{},
			want:     []string{"by-name", "deleting", "other-selector-with-entry"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			scheme := runtime.NewScheme()
			g.Expect(hubv1.AddToScheme(scheme)).To(Succeed())
			b := fake.NewClientBuilder().WithScheme(scheme)
			for _, o := range all {
				b = b.WithObjects(o.DeepCopy())
			}
			r := &Reconciler{Hub: b.Build(), Registry: registryOf(tt.registry)}
			var got []string
			for _, req := range r.affectedBy(t.Context(), "m1") {
				got = append(got, req.Name)
			}
			g.Expect(got).To(ConsistOf(tt.want))
		})
	}
}

func TestRetryBackoffIsCappedAtTwoMinutes(t *testing.T) {
	g := NewWithT(t)
	limiter := retryLimiter()
	refused := mcreconcile.Request{Request: reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "a", Name: "refused"}}}
	var delays []time.Duration
	for range 40 { // a member refusing for hours
		delays = append(delays, limiter.When(refused))
	}
	g.Expect(delays[0]).To(BeNumerically("<", time.Second), "the first retry is quick")
	g.Expect(delays[len(delays)-1]).To(Equal(maxRetryDelay), "a quota lifted later is retried within %s", maxRetryDelay)
	g.Expect(slices.Max(delays)).To(Equal(maxRetryDelay))
	limiter.Forget(refused)
	g.Expect(limiter.When(refused)).To(BeNumerically("<", time.Second), "success resets the backoff")
}

// TestOwnerOf: a member object maps to its MyResource by its owner labels,
// and by its own name and namespace when a member user stripped them, so
// that stripping them is drift that re-queues the owner.
func TestOwnerOf(t *testing.T) {
	owned := map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: "team-a", hubv1.OwnerNameLabel: "web"}
	stripped := map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue}
	for name, labels := range map[string]map[string]string{"owner labels": owned, "owner labels stripped": stripped} {
		t.Run(name, func(t *testing.T) {
			dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", Labels: labels}}
			NewWithT(t).Expect(ownerOf(t.Context(), dep)).To(ConsistOf(
				mcreconcile.Request{Request: reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "web"}}}))
		})
	}
}
