package hub

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

func entry(name string, gen int64, applied, available metav1.ConditionStatus, reason string) hubv1.ClusterStatus {
	return hubv1.ClusterStatus{Name: name, ObservedGeneration: gen, Conditions: []metav1.Condition{
		{Type: hubv1.ClusterConditionApplied, Status: applied, Reason: reason, Message: reason + " in " + name},
		{Type: hubv1.ClusterConditionAvailable, Status: available, Reason: reason, Message: reason},
	}}
}

func TestAggregate(t *testing.T) {
	reg := []clusterregistry.ClusterInfo{{Name: "a"}, {Name: "b"}}
	p, _ := place(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}, reg)
	T, F := metav1.ConditionTrue, metav1.ConditionFalse
	tests := []struct {
		name          string
		entries       []hubv1.ClusterStatus
		readyReason   string
		wantReady     metav1.ConditionStatus
		wantReason    string
		wantDegraded  metav1.ConditionStatus
		wantDegReason string
		wantSummary   string
	}{
		{name: "every selected cluster applied and available for the current generation is Ready",
			entries:   []hubv1.ClusterStatus{entry("b", 3, T, T, "x"), entry("a", 3, T, T, "x")},
			wantReady: T, wantReason: hubv1.ReasonAllClustersReady, wantDegraded: F, wantDegReason: hubv1.ReasonAsExpected, wantSummary: "2/2"},
		{name: "a cluster on an older generation is not ready but not failing",
			entries:   []hubv1.ClusterStatus{entry("a", 3, T, T, "x"), entry("b", 2, T, T, "x")},
			wantReady: F, wantReason: hubv1.ReasonClustersNotReady, wantDegraded: F, wantDegReason: hubv1.ReasonAsExpected, wantSummary: "1/2"},
		{name: "an unreachable cluster degrades with its reason and name",
			entries:   []hubv1.ClusterStatus{entry("a", 3, T, T, "x"), entry("b", 3, F, metav1.ConditionUnknown, hubv1.ReasonClusterUnreachable)},
			wantReady: F, wantReason: hubv1.ReasonClustersNotReady, wantDegraded: T, wantDegReason: hubv1.ReasonClusterUnreachable, wantSummary: "1/2"},
		{name: "clusters failing for different reasons degrade with ClustersFailing",
			entries:   []hubv1.ClusterStatus{entry("a", 3, F, F, hubv1.ReasonConflict), entry("b", 3, F, F, hubv1.ReasonApplyFailed)},
			wantReady: F, wantReason: hubv1.ReasonClustersNotReady, wantDegraded: T, wantDegReason: hubv1.ReasonClustersFailing, wantSummary: "0/2"},
		{name: "suspended reports Suspended as the Ready reason",
			entries: []hubv1.ClusterStatus{entry("a", 3, T, T, "x"), entry("b", 3, T, T, "x")}, readyReason: hubv1.ReasonSuspended,
			wantReady: F, wantReason: hubv1.ReasonSuspended, wantDegraded: F, wantDegReason: hubv1.ReasonAsExpected, wantSummary: "2/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mr := &hubv1.MyResource{}
			mr.Generation = 3
			st := aggregate(mr, tt.entries, p, verdict{readyReason: tt.readyReason})
			ready := meta.FindStatusCondition(st.Conditions, hubv1.ConditionReady)
			g.Expect(ready.Status).To(Equal(tt.wantReady))
			g.Expect(ready.Reason).To(Equal(tt.wantReason))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(3)))
			deg := meta.FindStatusCondition(st.Conditions, hubv1.ConditionDegraded)
			g.Expect(deg.Status).To(Equal(tt.wantDegraded))
			g.Expect(deg.Reason).To(Equal(tt.wantDegReason))
			if tt.wantDegraded == T {
				g.Expect(deg.Message).To(ContainSubstring("b"), "names the failing cluster")
			}
			g.Expect(st.ReadySummary).To(Equal(tt.wantSummary))
			g.Expect(st.Clusters[0].Name).To(Equal("a"), "sorted by name")
		})
	}
}

func TestAggregateIsStable(t *testing.T) {
	g := NewWithT(t)
	reg := []clusterregistry.ClusterInfo{{Name: "a"}}
	p, _ := place(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a"}}}, reg)
	mr := &hubv1.MyResource{}
	mr.Generation = 1
	e := entry("a", 1, metav1.ConditionTrue, metav1.ConditionTrue, "x")
	first := aggregate(mr, []hubv1.ClusterStatus{clusterEntry(nil, e)}, p, verdict{})
	mr.Status = first
	second := aggregate(mr, []hubv1.ClusterStatus{clusterEntry(&mr.Status.Clusters[0], e)}, p, verdict{})
	g.Expect(second).To(Equal(first), "a converged MyResource aggregates to exactly its status: no write")
}
