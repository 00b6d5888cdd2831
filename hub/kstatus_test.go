package hub

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/member"
)

// TestKstatus: what Flux, Helm 4 and kpt read from the status the reconciler
// writes, computed by kstatus itself (cli-utils), phase by phase. A
// MyResource that only a person can unblock must read Failed, so that a
// pipeline waiting on it fails at once with the reason.
func TestKstatus(t *testing.T) {
	invalidKubeconfig := clusterregistry.ClusterInfo{Name: "b", State: clusterregistry.StateInvalid,
		Reason: hubv1.ReasonInvalidKubeconfig, Message: "the kubeconfig uses exec, which the registry rejects"}
	unreachable := clusterregistry.ClusterInfo{Name: "b", State: clusterregistry.StateUnreachable,
		Reason: hubv1.ReasonClusterUnreachable, Message: "i/o timeout"}
	conflict := func() *fakeMembers {
		m := newFakeMembers()
		m.cluster("b").applyErr = &member.ConflictError{Cluster: "b", Kind: "Deployment", Namespace: "team-a", Name: "web", Managers: []string{"kubectl"}}
		return m
	}
	rollingOut := func() *fakeMembers {
		m := newFakeMembers()
		m.cluster("b").rollingOut = true
		return m
	}
	twoClusters := hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}
	tests := []struct {
		phase    string
		mr       *hubv1.MyResource
		registry []clusterregistry.ClusterInfo
		members  *fakeMembers
		want     kstatus.Status
		message  string
	}{
		{"rolling out", placedOn(twoClusters), []clusterregistry.ClusterInfo{ready("a", nil), ready("b", nil)}, rollingOut(), kstatus.InProgressStatus, "converging in b"},
		{"converged", placedOn(twoClusters), []clusterregistry.ClusterInfo{ready("a", nil), ready("b", nil)}, newFakeMembers(), kstatus.CurrentStatus, ""},
		{"a cluster in Conflict", placedOn(twoClusters), []clusterregistry.ClusterInfo{ready("a", nil), ready("b", nil)}, conflict(), kstatus.FailedStatus, "b: Deployment team-a/web exists"},
		{"a cluster with an invalid kubeconfig", placedOn(twoClusters), []clusterregistry.ClusterInfo{ready("a", nil), invalidKubeconfig}, newFakeMembers(), kstatus.FailedStatus, "b: the kubeconfig uses exec"},
		{"an invalid spec", placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: invalidSelector}}), nil, newFakeMembers(), kstatus.FailedStatus, "invalid placement.clusterSelector"},
		{"an unreachable cluster may come back", placedOn(twoClusters), []clusterregistry.ClusterInfo{ready("a", nil), unreachable}, newFakeMembers(), kstatus.InProgressStatus, ""},
		{"deleting", deleting(placedOn(twoClusters), "a", "b"), []clusterregistry.ClusterInfo{ready("a", nil), unreachable}, newFakeMembers("a", "b"), kstatus.TerminatingStatus, ""},
	}
	for _, tt := range tests {
		t.Run(tt.phase, func(t *testing.T) {
			g := NewWithT(t)
			h := newHarness(t, tt.mr, registryOf(tt.registry), tt.members)
			clock := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
			h.r.now = func() time.Time { return clock }
			_, _ = h.reconcile()
			clock = clock.Add(2 * statusSettle) // a progress status is written once it has settled
			_, _ = h.reconcile()

			got, err := kstatus.Compute(asUnstructured(g, h.get(g)))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Status).To(Equal(tt.want), got.Message)
			g.Expect(got.Message).To(ContainSubstring(tt.message))
		})
	}
}

var invalidSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Near"}}}

func asUnstructured(g Gomega, mr *hubv1.MyResource) *unstructured.Unstructured {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mr)
	g.Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{Object: obj}
	u.SetGroupVersionKind(hubv1.GroupVersion.WithKind("MyResource"))
	return u
}
