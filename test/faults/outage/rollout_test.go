package outage

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// A rollout's state lives in the hub (ControllerRevisions, status and the
// times in its conditions) and in the members (revision annotations), never
// in a process: a leader that dies mid-rollout hands it over, and the
// rollout goes on where it was, stage order and all.
func TestRolloutResumesAcrossALeaderFailoverAndASIGKILL(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	leaseNS := newNamespace(t)
	le := []string{"--leader-elect", "--leader-election-namespace=" + leaseNS}
	a := startOperator(t, "rollout-a", le...)
	b := startOperator(t, "rollout-b", le...)

	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2", "m3")
	// minReadySeconds stretches each cluster's step, so that a kill lands
	// between two steps and the bake time must survive it.
	mr.Spec.Rollout = &hubv1.RolloutSpec{
		Stages:          []hubv1.RolloutStage{{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{"m1"}}}},
		MaxConcurrency:  ptr.To(intstr.FromInt32(1)),
		MinReadySeconds: 4,
	}
	rw := suite.WatchRevisions(t, env, ns, mr.Name, "m1", "m2", "m3")
	g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	t.Cleanup(func() { _ = env.Hub.Client.Delete(cleanupContext(t), mr) })
	eventuallyRolledOut(t, mr, 1, 120*time.Second)

	var leader, standby *controlplane.Operator
	g.Eventually(func(g Gomega) { leader, standby = whoLeads(g, a, b) }).WithTimeout(60 * time.Second).Should(Succeed())

	// Failover: the leader dies right after the canary got revision 2.
	setImage(t, mr, "nginx:1.28")
	g.Eventually(func() *suite.Sighting { return rw.SightingOf("m1", 2) }).WithTimeout(60 * time.Second).WithPolling(20 * time.Millisecond).ShouldNot(BeNil())
	g.Expect(leader.Kill()).To(Succeed())
	t.Logf("leader SIGKILLed with revision 2 at the canary")
	eventuallyRolledOut(t, mr, 2, 120*time.Second)
	rw.ExpectStageOrder(t, 2, []string{"m1"}, []string{"m2", "m3"})
	g.Expect(acquired(g, standby)).To(BeTrue(), "the standby finished the rollout")

	// SIGKILL and restart of the only replica, mid-stage this time.
	setImage(t, mr, "nginx:1.29")
	g.Eventually(func() *suite.Sighting { return rw.SightingOf("m2", 3) }).WithTimeout(60 * time.Second).WithPolling(20 * time.Millisecond).ShouldNot(BeNil())
	g.Expect(standby.Kill()).To(Succeed())
	g.Expect(standby.Restart()).To(Succeed())
	t.Logf("the only replica SIGKILLed and restarted with revision 3 in the second stage")
	eventuallyRolledOut(t, mr, 3, 120*time.Second)
	rw.ExpectStageOrder(t, 3, []string{"m1"}, []string{"m2", "m3"})
}

// eventuallyRolledOut waits for revision rev to be Complete and Ready.
func eventuallyRolledOut(t *testing.T, mr *hubv1.MyResource, rev int64, timeout time.Duration) {
	t.Helper()
	began := time.Now()
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(t.Context(), g, mr)
		g.Expect(got.Status.Rollout).NotTo(BeNil())
		g.Expect(got.Status.Rollout.Revision).To(Equal(rev))
		g.Expect(got.Status.Rollout.Phase).To(Equal(hubv1.RolloutComplete), "%+v", got.Status.Rollout)
		g.Expect(suite.IsReady(got)).To(BeTrue())
	}).WithTimeout(timeout).WithPolling(200 * time.Millisecond).Should(Succeed())
	t.Logf("revision %d complete after %s", rev, time.Since(began).Round(100*time.Millisecond))
}

func setImage(t *testing.T, mr *hubv1.MyResource, image string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) error {
		cur := get(t.Context(), g, mr)
		cur.Spec.Deployment.Template.Spec.Containers[0].Image = image
		return env.Hub.Client.Update(t.Context(), cur, &client.UpdateOptions{})
	}).WithTimeout(10 * time.Second).Should(Succeed())
}
