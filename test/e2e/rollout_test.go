package e2e

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/suite"
)

func eventuallyRollout(t *testing.T, mr *hubv1.MyResource, rev int64, phase hubv1.RolloutPhase, timeout time.Duration) *hubv1.MyResource {
	t.Helper()
	var got *hubv1.MyResource
	began := time.Now()
	NewWithT(t).Eventually(func(g Gomega) {
		got = suite.Get(t.Context(), g, env.Hub.Client, mr)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(got.Status.Rollout).NotTo(BeNil())
		g.Expect(got.Status.Rollout.Revision).To(Equal(rev))
		g.Expect(got.Status.Rollout.Phase).To(Equal(phase), "clusters: %+v", got.Status.Clusters)
	}).WithTimeout(timeout).WithPolling(200 * time.Millisecond).Should(Succeed())
	t.Logf("%s: revision %d %s after %s", mr.Name, rev, phase, time.Since(began).Round(100*time.Millisecond))
	return got
}

// update changes the hub MyResource, retrying on a conflict with the operator.
func update(t *testing.T, mr *hubv1.MyResource, change func(*hubv1.MyResource)) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		cur := suite.Get(t.Context(), NewWithT(t), env.Hub.Client, mr)
		change(cur)
		return env.Hub.Client.Update(t.Context(), cur)
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func setImage(image string) func(*hubv1.MyResource) {
	return func(mr *hubv1.MyResource) { mr.Spec.Deployment.Template.Spec.Containers[0].Image = image }
}

// unschedulable asks for more CPU than any fake node has: the pods stay
// Pending and the member's Deployment never becomes Available.
func unschedulable(mr *hubv1.MyResource) {
	mr.Spec.Deployment.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}
}

func TestRolloutGoesStageByStage(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2", "m3")
	mr.Spec.Rollout = &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{
		{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{"m2"}}},
		{Name: "prod", Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}},
			MaxConcurrency: ptr.To(intstr.FromInt32(1))},
	}}
	rw := suite.WatchRevisions(t, env, ns, mr.Name, "m1", "m2", "m3")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	t.Cleanup(func() { _ = env.Hub.Client.Delete(cleanupContext(t), mr) })

	eventuallyRollout(t, mr, 1, hubv1.RolloutComplete, 90*time.Second)
	eventuallyReady(t, mr)
	rw.ExpectStageOrder(t, 1, []string{"m2"}, []string{"m1", "m3"})

	update(t, mr, setImage("nginx:1.28"))
	got := eventuallyRollout(t, mr, 2, hubv1.RolloutComplete, 90*time.Second)
	g.Expect(got.Status.Rollout.StableRevision).To(Equal(int64(2)))
	rw.ExpectStageOrder(t, 2, []string{"m2"}, []string{"m1", "m3"})
	for _, c := range got.Status.Clusters {
		g.Expect(c.Revision).To(Equal(int64(2)), "status.clusters[%s].revision", c.Name)
	}
	g.Expect(memberService(t, "m1", mr).Annotations).To(HaveKeyWithValue(hubv1.RevisionAnnotation, "2"))

	var revs appsv1.ControllerRevisionList
	g.Expect(env.Hub.Client.List(t.Context(), &revs, client.InNamespace(ns))).To(Succeed())
	numbers := []int64{}
	for _, r := range revs.Items {
		g.Expect(metav1.IsControlledBy(&r, got)).To(BeTrue(), "ControllerRevision %s is owned by the MyResource", r.Name)
		numbers = append(numbers, r.Revision)
	}
	g.Expect(numbers).To(ConsistOf(int64(1), int64(2)))
	g.Eventually(func() []string { return eventReasons(t, ns, mr.Name) }).WithTimeout(30 * time.Second).
		Should(ContainElements(hubv1.ReasonRolloutStageStarted, hubv1.ReasonRolloutComplete))

	bin := buildKubectlHub(t)
	out := kubectlHub(t, bin, "rollout", "status", "-n", ns, mr.Name)
	g.Expect(out).To(And(ContainSubstring("Complete"), ContainSubstring("canary"), ContainSubstring("prod")))
	out = kubectlHub(t, bin, "rollout", "history", "-n", ns, mr.Name)
	g.Expect(out).To(And(ContainSubstring("nginx:1.27"), ContainSubstring("nginx:1.28")))
}

func TestRolloutHaltsOrRollsBackAtTheCanary(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	var mrs []*hubv1.MyResource
	watches := map[string]*suite.RevisionWatch{}
	for _, policy := range []hubv1.RolloutFailurePolicy{hubv1.RolloutPause, hubv1.RolloutRollback} {
		mr := newMyResource(ns, "web-"+string(policy[0]|0x20), "m1", "m2", "m3")
		mr.Spec.Rollout = &hubv1.RolloutSpec{
			Stages:                  []hubv1.RolloutStage{{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{"m2"}}}},
			MaxConcurrency:          ptr.To(intstr.FromString("100%")),
			ProgressDeadlineSeconds: ptr.To[int32](10),
			OnFailure:               policy,
		}
		watches[mr.Name] = suite.WatchRevisions(t, env, ns, mr.Name, "m1", "m2", "m3")
		g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
		t.Cleanup(func() { _ = env.Hub.Client.Delete(cleanupContext(t), mr) })
		mrs = append(mrs, mr)
	}
	for _, mr := range mrs {
		eventuallyRollout(t, mr, 1, hubv1.RolloutComplete, 90*time.Second)
		update(t, mr, unschedulable)
	}
	halted := eventuallyRollout(t, mrs[0], 2, hubv1.RolloutHalted, 90*time.Second)
	rolledBack := eventuallyRollout(t, mrs[1], 2, hubv1.RolloutRolledBack, 90*time.Second)

	for _, got := range []*hubv1.MyResource{halted, rolledBack} {
		degraded := meta.FindStatusCondition(got.Status.Conditions, hubv1.ConditionDegraded)
		g.Expect(degraded).NotTo(BeNil())
		g.Expect(degraded.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(degraded.Reason).To(Equal(hubv1.ReasonRolloutFailed))
		g.Expect(degraded.Message).To(ContainSubstring("m2"), "Degraded names the failed cluster")
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, hubv1.ConditionStalled)).To(BeTrue())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, hubv1.ConditionReady)).To(BeFalse())
		t.Logf("%s: %s", got.Name, degraded.Message)
		eventuallyKstatus(t, got, status.FailedStatus, "m2", 30*time.Second)
		eventuallyArgoHealth(t, got, "Degraded", "m2", 30*time.Second)
	}
	// The canary of the rolled-back one runs revision 1 again, Available.
	g.Eventually(func(g Gomega) {
		dep := memberDeployment(t, "m2", mrs[1])
		g.Expect(dep).NotTo(BeNil())
		g.Expect(dep.Annotations).To(HaveKeyWithValue(hubv1.RevisionAnnotation, "1"))
		g.Expect(dep.Status.AvailableReplicas).To(Equal(int32(2)))
		g.Expect(dep.Spec.Template.Spec.Containers[0].Resources.Requests).To(BeEmpty())
	}).WithTimeout(60 * time.Second).Should(Succeed())
	g.Expect(memberDeployment(t, "m2", mrs[0]).Annotations).To(HaveKeyWithValue(hubv1.RevisionAnnotation, "2"), "Pause leaves the canary on the failed revision")
	for _, mr := range mrs {
		for _, c := range []string{"m1", "m3"} {
			g.Expect(watches[mr.Name].SightingOf(c, 2)).To(BeNil(), "%s: no later-stage cluster ever saw revision 2 (%s)", mr.Name, c)
			g.Expect(memberDeployment(t, c, mr).Status.AvailableReplicas).To(Equal(int32(2)), "%s still runs revision 1 in %s", mr.Name, c)
		}
	}
	g.Eventually(func() []string { return eventReasons(t, ns, mrs[0].Name) }).WithTimeout(30 * time.Second).Should(ContainElement(hubv1.ReasonRolloutHalted))
	g.Eventually(func() []string { return eventReasons(t, ns, mrs[1].Name) }).WithTimeout(30 * time.Second).Should(ContainElement(hubv1.ReasonRolledBack))
}

func TestRolloutWaitsForApprovalAndAJoiningClusterGetsTheStableRevision(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2")
	mr.Spec.Rollout = &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{
		{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{"m1"}}},
		{Name: "rest", Selection: hubv1.Selection{ClusterNames: []string{"m2", "m3"}}, MaxConcurrency: ptr.To(intstr.FromString("100%")), RequireApproval: true},
	}}
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	t.Cleanup(func() { _ = env.Hub.Client.Delete(cleanupContext(t), mr) })
	bin := buildKubectlHub(t)

	// The first revision waits for approval too: m2 has nothing yet.
	got := eventuallyRollout(t, mr, 1, hubv1.RolloutWaitingForApproval, 90*time.Second)
	g.Expect(got.Status.Rollout.Stage).To(Equal("rest"))
	eventuallyArgoHealth(t, mr, "Suspended", "waits for approval", 30*time.Second)
	g.Expect(clusterReason(got, "m2")).To(Equal(hubv1.ReasonRolloutPending))
	kubectlHub(t, bin, "rollout", "approve", "-n", ns, mr.Name)
	eventuallyRollout(t, mr, 1, hubv1.RolloutComplete, 60*time.Second)

	update(t, mr, setImage("nginx:1.28"))
	eventuallyRollout(t, mr, 2, hubv1.RolloutWaitingForApproval, 60*time.Second)
	g.Eventually(func() map[string]string { return memberDeployment(t, "m1", mr).Annotations }).
		WithTimeout(30 * time.Second).Should(HaveKeyWithValue(hubv1.RevisionAnnotation, "2"))

	// A cluster joining mid-rollout gets the stable revision.
	update(t, mr, func(mr *hubv1.MyResource) {
		mr.Spec.Placement.ClusterNames = append(mr.Spec.Placement.ClusterNames, "m3")
	})
	g.Eventually(func(g Gomega) {
		dep := memberDeployment(t, "m3", mr)
		g.Expect(dep).NotTo(BeNil())
		g.Expect(dep.Annotations).To(HaveKeyWithValue(hubv1.RevisionAnnotation, "1"))
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.27"))
	}).WithTimeout(30 * time.Second).Should(Succeed())

	// Stale approvals (the last revision's, another stage's) move nothing.
	for _, stale := range []string{"1/rest", "2/canary"} {
		update(t, mr, func(mr *hubv1.MyResource) { mr.Annotations = map[string]string{hubv1.RolloutApprovedAnnotation: stale} })
		g.Consistently(func(g Gomega) {
			for _, c := range []string{"m2", "m3"} {
				g.Expect(memberDeployment(t, c, mr).Annotations).To(HaveKeyWithValue(hubv1.RevisionAnnotation, "1"), "%s with approval %s", c, stale)
			}
			cur := suite.Get(t.Context(), g, env.Hub.Client, mr)
			g.Expect(cur.Status.Rollout.Phase).To(Equal(hubv1.RolloutWaitingForApproval), "%+v %+v", cur.Status.Rollout, cur.Status.Clusters)
		}).WithTimeout(3 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	}
	kubectlHub(t, bin, "rollout", "approve", "-n", ns, mr.Name)
	eventuallyRollout(t, mr, 2, hubv1.RolloutComplete, 60*time.Second)
	eventuallyReady(t, mr)
	g.Expect(suite.Get(t.Context(), g, env.Hub.Client, mr).Annotations).To(HaveKeyWithValue(hubv1.RolloutApprovedAnnotation, "2/rest"))
}

func TestRolloutGoesOnWithoutAnUnreachableCluster(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2", "m3")
	mr.Spec.Rollout = &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{
		{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{"m1"}}},
	}}
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	t.Cleanup(func() { _ = env.Hub.Client.Delete(cleanupContext(t), mr) })
	eventuallyRollout(t, mr, 1, hubv1.RolloutComplete, 90*time.Second)

	m3 := env.Member("m3")
	m3.Proxy.Cut()
	t.Cleanup(m3.Proxy.Restore)
	g.Eventually(func(g Gomega) {
		g.Expect(clusterReason(suite.Get(t.Context(), g, env.Hub.Client, mr), "m3")).To(Equal(hubv1.ReasonClusterUnreachable))
	}).WithTimeout(30 * time.Second).Should(Succeed())

	update(t, mr, setImage("nginx:1.28"))
	got := eventuallyRollout(t, mr, 2, hubv1.RolloutComplete, 90*time.Second)
	g.Expect(got.Status.Rollout.Message).To(ContainSubstring("m3"), "Complete says which cluster it could not reach")
	for _, c := range []string{"m1", "m2"} {
		g.Expect(memberDeployment(t, c, mr).Annotations).To(HaveKeyWithValue(hubv1.RevisionAnnotation, "2"), c)
	}

	m3.Proxy.Restore()
	g.Eventually(func(g Gomega) {
		dep := memberDeployment(t, "m3", mr)
		g.Expect(dep.Annotations).To(HaveKeyWithValue(hubv1.RevisionAnnotation, "2"))
	}).WithTimeout(60 * time.Second).Should(Succeed())
	eventuallyReady(t, mr)
}

func eventReasons(t *testing.T, ns, name string) []string {
	var out []string
	for _, e := range hubEvents(t, ns, name) {
		out = append(out, e.Reason)
	}
	return out
}

// clusterReason is the reason of a cluster's Applied condition, "" when none.
func clusterReason(mr *hubv1.MyResource, cluster string) string {
	if c := suite.ClusterCondition(mr, cluster, hubv1.ClusterConditionApplied); c != nil {
		return c.Reason
	}
	return ""
}
