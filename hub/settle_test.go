package hub

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

func TestSettleHoldsOnlyAFreshProgressStatus(t *testing.T) {
	reg := []clusterregistry.ClusterInfo{{Name: "a"}, {Name: "b"}}
	p, _ := place(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b"}}}, reg)
	T, F := metav1.ConditionTrue, metav1.ConditionFalse
	appliedAt := func(e hubv1.ClusterStatus, gen int64) hubv1.ClusterStatus {
		for i := range e.Conditions {
			e.Conditions[i].ObservedGeneration = gen
		}
		return e
	}
	myResource := func(gen int64, written ...hubv1.ClusterStatus) *hubv1.MyResource {
		mr := &hubv1.MyResource{}
		mr.Namespace, mr.Name, mr.UID, mr.Generation = "ns", "web", "uid-1", gen
		mr.Status.Clusters = written
		return mr
	}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

	t.Run("a generation just applied and progressing waits, then is written after the settle time", func(t *testing.T) {
		g := NewWithT(t)
		var s settler
		mr := myResource(1)
		st := aggregate(mr, []hubv1.ClusterStatus{appliedAt(entry("a", 1, T, F, "x"), 1), appliedAt(entry("b", 1, T, T, "x"), 1)}, p, verdict{})
		g.Expect(s.hold(mr, st, t0)).To(Equal(statusSettle))
		g.Expect(s.hold(mr, st, t0.Add(400*time.Millisecond))).To(Equal(600 * time.Millisecond))
		g.Expect(s.hold(mr, st, t0.Add(statusSettle))).To(BeZero())
		g.Expect(s.since).To(BeEmpty(), "nothing is remembered once the status may be written")
	})
	t.Run("a Ready status is written at once and forgets the wait", func(t *testing.T) {
		g := NewWithT(t)
		var s settler
		mr := myResource(1)
		progress := aggregate(mr, []hubv1.ClusterStatus{appliedAt(entry("a", 1, T, F, "x"), 1), appliedAt(entry("b", 1, T, F, "x"), 1)}, p, verdict{})
		g.Expect(s.hold(mr, progress, t0)).To(BeNumerically(">", 0))
		ready := aggregate(mr, []hubv1.ClusterStatus{appliedAt(entry("a", 1, T, T, "x"), 1), appliedAt(entry("b", 1, T, T, "x"), 1)}, p, verdict{})
		g.Expect(s.hold(mr, ready, t0.Add(100*time.Millisecond))).To(BeZero())
		g.Expect(s.since).To(BeEmpty())
	})
	t.Run("a failing cluster is reported at once", func(t *testing.T) {
		var s settler
		mr := myResource(1)
		st := aggregate(mr, []hubv1.ClusterStatus{appliedAt(entry("a", 1, T, F, "x"), 1), appliedAt(entry("b", 1, F, F, hubv1.ReasonConflict), 1)}, p, verdict{})
		NewWithT(t).Expect(s.hold(mr, st, t0)).To(BeZero())
	})
	t.Run("a status that already shows the generation applied is written at once", func(t *testing.T) {
		var s settler
		written := appliedAt(entry("a", 2, T, F, "x"), 2)
		mr := myResource(2, written)
		st := aggregate(mr, []hubv1.ClusterStatus{written}, p, verdict{})
		NewWithT(t).Expect(s.hold(mr, st, t0)).To(BeZero())
	})
	t.Run("a new generation starts a new wait, and so does a recreated MyResource", func(t *testing.T) {
		g := NewWithT(t)
		var s settler
		old := appliedAt(entry("a", 1, T, T, "x"), 1)
		mr := myResource(2, old)
		st := aggregate(mr, []hubv1.ClusterStatus{appliedAt(entry("a", 2, T, F, "x"), 2)}, p, verdict{})
		g.Expect(s.hold(mr, st, t0)).To(Equal(statusSettle))
		mr3 := myResource(3, old)
		st3 := aggregate(mr3, []hubv1.ClusterStatus{appliedAt(entry("a", 3, T, F, "x"), 3)}, p, verdict{})
		g.Expect(s.hold(mr3, st3, t0.Add(900*time.Millisecond))).To(Equal(statusSettle))
		mr3.UID = "uid-2"
		g.Expect(s.hold(mr3, st3, t0.Add(1800*time.Millisecond))).To(Equal(statusSettle))
	})
}
