package hub

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/member"
)

// staged is a MyResource on a, b and c with a canary stage of a, then the
// rest one at a time.
func staged(onFailure hubv1.RolloutFailurePolicy) *hubv1.MyResource {
	mr := placedOn(hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"a", "b", "c"}}})
	mr.Spec.Deployment.Template.Spec.Containers = []corev1.Container{{Name: "web", Image: "nginx:1"}}
	mr.Spec.Rollout = &hubv1.RolloutSpec{
		Stages:                  []hubv1.RolloutStage{{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{"a"}}}},
		MaxConcurrency:          ptr.To(intstr.FromInt32(1)),
		ProgressDeadlineSeconds: ptr.To[int32](60),
		OnFailure:               onFailure,
	}
	return mr
}

// setImage changes the spec as a user's update would: a new generation.
func (h *harness) setImage(g Gomega, image string) {
	mr := h.get(g)
	mr.Spec.Deployment.Template.Spec.Containers[0].Image = image
	mr.Generation++
	g.Expect(h.hub.Update(h.ctx, mr)).To(Succeed())
}

func (h *harness) revisions(g Gomega) []appsv1.ControllerRevision {
	var list appsv1.ControllerRevisionList
	g.Expect(h.hub.List(h.ctx, &list, client.InNamespace("team-a"))).To(Succeed())
	return list.Items
}

func applies(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "apply ") {
			out = append(out, strings.TrimPrefix(c, "apply "))
		}
	}
	return out
}

func TestRolloutGoesStageByStageWithinOneReconcileWhenEachClusterIsAvailable(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, staged(hubv1.RolloutPause), registryOf(prodDev), newFakeMembers())
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	// Each round applies what the last one allowed: the canary, then b,
	// then c (maxConcurrency 1), each Available at once here.
	g.Expect(applies(h.members.calls)).To(Equal([]string{"a", "b", "c"}))
	mr := h.get(g)
	g.Expect(mr.Status.Rollout).To(Equal(&hubv1.RolloutStatus{Revision: 1, StableRevision: 1, Phase: hubv1.RolloutComplete,
		UpdatedClusters: 3, Message: mr.Status.Rollout.Message}))
	g.Expect(cond(mr, hubv1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	for _, e := range mr.Status.Clusters {
		g.Expect(e.Revision).To(Equal(int64(1)), "cluster %s", e.Name)
	}
	revs := h.revisions(g)
	g.Expect(revs).To(HaveLen(1))
	g.Expect(revs[0].Revision).To(Equal(int64(1)))
	g.Expect(metav1.IsControlledBy(&revs[0], mr)).To(BeTrue())
}

func TestRolloutHoldsTheNextClusterUntilTheCanaryIsAvailable(t *testing.T) {
	g := NewWithT(t)
	members := newFakeMembers()
	members.cluster("a").rollingOut = true
	h := newHarness(t, staged(hubv1.RolloutPause), registryOf(prodDev), members)
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(applies(h.members.calls)).To(Equal([]string{"a"}))
	mr := h.get(g)
	g.Expect(mr.Status.Rollout.Phase).To(Equal(hubv1.RolloutProgressing))
	g.Expect(mr.Status.Rollout.Stage).To(Equal("canary"))
	pending := clusterCondition(mr, "b", hubv1.ClusterConditionApplied)
	g.Expect(pending.Reason).To(Equal(hubv1.ReasonRolloutPending), "b waits with nothing to run: no revision is stable yet")
	g.Expect(cond(mr, hubv1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse), "waiting is no failure")
	g.Expect(cond(mr, hubv1.ConditionReconciling).Status).To(Equal(metav1.ConditionTrue))

	members.cluster("a").rollingOut = false
	_, err = h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.get(g).Status.Rollout.Phase).To(Equal(hubv1.RolloutComplete))
}

func TestRolloutHaltsOnAConflictInTheCanaryAndNoOtherClusterGetsTheRevision(t *testing.T) {
	g := NewWithT(t)
	members := newFakeMembers()
	h := newHarness(t, staged(hubv1.RolloutPause), registryOf(prodDev), members)
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	members.calls = nil

	members.cluster("a").applyErr = &member.ConflictError{Cluster: "a", Kind: "Deployment", Namespace: "team-a", Name: "web", Managers: []string{"kubectl"}}
	h.setImage(g, "nginx:2")
	_, _ = h.reconcile()
	g.Expect(applies(h.members.calls)).To(ContainElements("a", "b", "c"), "b and c are kept on revision 1")
	g.Expect(members.revisionOf("b")).To(Equal("1"))
	g.Expect(members.revisionOf("c")).To(Equal("1"))
	mr := h.get(g)
	g.Expect(mr.Status.Rollout.Phase).To(Equal(hubv1.RolloutHalted))
	g.Expect(mr.Status.Rollout.Revision).To(Equal(int64(2)))
	g.Expect(mr.Status.Rollout.StableRevision).To(Equal(int64(1)))
	degraded := cond(mr, hubv1.ConditionDegraded)
	g.Expect(degraded.Reason).To(Equal(hubv1.ReasonRolloutFailed))
	g.Expect(degraded.Message).To(ContainSubstring("a"))
	g.Expect(cond(mr, hubv1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(cond(mr, hubv1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(h.events()).To(ContainElement(ContainSubstring(hubv1.ReasonRolloutHalted)))
	g.Expect(clusterCondition(mr, "a", hubv1.ClusterConditionApplied).Reason).To(Equal(hubv1.ReasonConflict))

	// Halted stays: the failed revision is not tried again, even once the
	// conflict is gone, until the spec changes.
	members.cluster("a").applyErr = nil
	members.calls = nil
	_, _ = h.reconcile()
	got := h.get(g)
	g.Expect(got.Status.Rollout.Phase).To(Equal(hubv1.RolloutHalted))
	g.Expect(members.revisionOf("a")).To(Equal("1"), "the canary keeps the stable revision it ran")
	g.Expect(members.revisionOf("b")).To(Equal("1"))
	g.Expect(members.revisionOf("c")).To(Equal("1"))
}

func TestRolloutRollsBackACanaryPastItsDeadline(t *testing.T) {
	g := NewWithT(t)
	members := newFakeMembers()
	h := newHarness(t, staged(hubv1.RolloutRollback), registryOf(prodDev), members)
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())

	members.cluster("a").rollingOut = true
	h.setImage(g, "nginx:2")
	_, err = h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(members.revisionOf("a")).To(Equal("2"))
	g.Expect(h.get(g).Status.Rollout.Phase).To(Equal(hubv1.RolloutProgressing))

	h.r.now = func() time.Time { return time.Now().Add(61 * time.Second) }
	_, err = h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	mr := h.get(g)
	g.Expect(mr.Status.Rollout.Phase).To(Equal(hubv1.RolloutRolledBack))
	g.Expect(members.revisionOf("a")).To(Equal("1"), "the canary runs the stable revision again")
	g.Expect(cond(mr, hubv1.ConditionDegraded).Reason).To(Equal(hubv1.ReasonRolloutFailed))
	g.Expect(h.events()).To(ContainElement(ContainSubstring(hubv1.ReasonRolledBack)))
}

func TestRevisionsAreRenumberedOnUndoAndTrimmedToTheHistoryLimit(t *testing.T) {
	g := NewWithT(t)
	mr := staged(hubv1.RolloutPause)
	mr.Spec.RevisionHistoryLimit = ptr.To[int32](1)
	h := newHarness(t, mr, registryOf(prodDev), newFakeMembers())
	for _, image := range []string{"", "nginx:2", "nginx:1"} { // "" keeps nginx:1 for revision 1
		if image != "" {
			h.setImage(g, image)
		}
		_, err := h.reconcile()
		g.Expect(err).NotTo(HaveOccurred())
	}
	revs := h.revisions(g)
	numbers := map[string]int64{}
	for _, r := range revs {
		numbers[r.Annotations[hubv1.RevisionHistoryAnnotation]] = r.Revision
	}
	// nginx:1 was revision 1 and is revision 3 now; revision 2 is kept as
	// the one old revision the limit allows.
	g.Expect(numbers).To(Equal(map[string]int64{"1": 3, "": 2}))
	got := h.get(g)
	g.Expect(got.Status.Rollout.Revision).To(Equal(int64(3)))
	g.Expect(got.Status.Rollout.Phase).To(Equal(hubv1.RolloutComplete))

	h.setImage(g, "nginx:4")
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.revisions(g)).To(HaveLen(2), "revision 2 is trimmed: no cluster runs it")
}

func TestRolloutAtRestWritesNothing(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, staged(hubv1.RolloutPause), registryOf(prodDev), newFakeMembers())
	for range 4 {
		_, err := h.reconcile()
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(h.statusWrites).To(Equal(1))
	g.Expect(h.revisions(g)).To(HaveLen(1))
}

func clusterCondition(mr *hubv1.MyResource, cluster, typ string) metav1.Condition {
	for _, e := range mr.Status.Clusters {
		if e.Name == cluster {
			for _, c := range e.Conditions {
				if c.Type == typ {
					return c
				}
			}
		}
	}
	return metav1.Condition{}
}

// A new leader starts with every cluster Connecting: their last entries
// stand, and they hold their stage as they did, rather than counting as
// unreachable and letting the first decisions call the rollout complete.
func TestRolloutNewLeaderHoldsTheStageOfClustersStillConnecting(t *testing.T) {
	g := NewWithT(t)
	members := newFakeMembers()
	h := newHarness(t, staged(hubv1.RolloutPause), registryOf(prodDev), members)
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	members.cluster("a").rollingOut = true
	h.setImage(g, "nginx:2")
	_, err = h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())

	members.cluster("a").rollingOut = false
	h.r.Registry = registryOf([]clusterregistry.ClusterInfo{
		ready("a", map[string]string{"env": "prod"}),
		{Name: "b", State: clusterregistry.StateConnecting},
		{Name: "c", State: clusterregistry.StateConnecting},
	})
	h.r.settle = settler{}
	h.r.now = func() time.Time { return time.Now().Add(2 * time.Second) }
	_, err = h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	mr := h.get(g)
	g.Expect(mr.Status.Rollout.Phase).To(Equal(hubv1.RolloutProgressing))
	g.Expect(mr.Status.Rollout.StableRevision).To(Equal(int64(1)), "revision 2 has not reached b and c")
	g.Expect(members.revisionOf("b")).To(Equal("1"))
	g.Expect(members.revisionOf("c")).To(Equal("1"))

	h.r.Registry = registryOf(prodDev)
	_, err = h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.get(g).Status.Rollout.Phase).To(Equal(hubv1.RolloutComplete))
	g.Expect(members.revisionOf("c")).To(Equal("2"))
}

// An operator upgraded from a release without revisions finds member
// objects without example.com/revision: what they run becomes revision 1,
// and nothing is rolled out again stage by stage.
func TestRolloutAfterAnUpgradeTreatsWhatTheMembersRunAsRevisionOne(t *testing.T) {
	g := NewWithT(t)
	mr := staged(hubv1.RolloutPause)
	for _, name := range []string{"a", "b", "c"} {
		mr.Status.Clusters = append(mr.Status.Clusters, availableStatus(name, mr.Generation, ""))
	}
	members := newFakeMembers("a", "b", "c")
	h := newHarness(t, mr, registryOf(prodDev), members)
	_, err := h.reconcile()
	g.Expect(err).NotTo(HaveOccurred())
	got := h.get(g)
	g.Expect(got.Status.Rollout.Phase).To(Equal(hubv1.RolloutComplete))
	g.Expect(got.Status.Rollout.Revision).To(Equal(int64(1)))
	for _, name := range []string{"a", "b", "c"} {
		g.Expect(members.revisionOf(name)).To(Equal("1"), "cluster %s keeps what it runs, now annotated revision 1", name)
		g.Expect(clusterCondition(got, name, hubv1.ClusterConditionApplied).Reason).To(Equal(hubv1.ReasonApplied))
	}
	g.Expect(h.events()).NotTo(ContainElement(ContainSubstring(hubv1.ReasonRolloutStageStarted)), "no rollout at the upgrade")
}
