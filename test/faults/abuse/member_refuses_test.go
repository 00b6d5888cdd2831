package abuse

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// backoffWindow is how long the requests to a refusing member are counted.
const backoffWindow = 60 * time.Second

// maxRequestsInWindow bounds the operator's requests about one refused
// MyResource to one member over backoffWindow. Exponential backoff from
// 5 ms makes about 14 attempts in 60 s even from a fresh start, each a
// namespace check, a Deployment read and the refused apply; a hot loop makes
// hundreds.
const maxRequestsInWindow = 60

// liftedReadyBound is how long a refused MyResource may take to turn Ready
// once the quota is gone. It waits for the next retry, one backoff step
// away: the steps double from 5 ms, so the step after the ~75 s of
// refusals is about 80 s (capped at 2 min), plus the apply and the Pod
// becoming Available. Measured: 20.6-22.7 s, with 14 busy loops loading
// the 2 cores to 14-16 besides the suite.
const liftedReadyBound = 150 * time.Second

func TestMemberQuotaRefusalIsApplyFailedRetriedWithBackoffAndConvergesWhenLifted(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := t.Context()
	ns := newNamespace(t, "quota")
	m2 := env.Member("m2")
	createMemberNamespace(t, m2, ns)
	quota := suite.RefuseDeployments(t, m2, ns)

	mr := newMyResource(ns, "web", "m1", "m2", "m3")
	g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	refusedBy(t, mr, "m2", "exceeded quota")
	t.Logf("m2 refused with the member's message: %s", suite.ClusterCondition(get(ctx, g, mr), "m2", hubv1.ClusterConditionApplied).Message)

	requests := countRequestsDuring(t, m2, ns)
	g.Expect(requests).To(BeNumerically(">", 0), "the operator keeps retrying the refused cluster")
	g.Expect(requests).To(BeNumerically("<=", maxRequestsInWindow), "the operator backs off instead of hot-looping")
	c := suite.ClusterCondition(get(ctx, g, mr), "m2", hubv1.ClusterConditionApplied)
	g.Expect(c.Reason).To(Equal(hubv1.ReasonApplyFailed), "still refused after the window")

	g.Expect(m2.Client.Delete(ctx, quota)).To(Succeed())
	lifted := time.Now()
	eventuallyReady(t, mr, liftedReadyBound)
	t.Logf("Ready %s after the quota was deleted, without any other action", time.Since(lifted).Round(100*time.Millisecond))
}

func TestTerminatingMemberNamespaceIsApplyFailedWhileOtherClustersAreReady(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := t.Context()
	ns := newNamespace(t, "terminating")
	m3 := env.Member("m3")
	createMemberNamespace(t, m3, ns)
	holder := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "holder", Finalizers: []string{"example.com/hold"}}}
	g.Expect(m3.Client.Create(ctx, holder)).To(Succeed())
	g.Expect(m3.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	release := func() {
		ctx := cleanupContext(t)
		var cm corev1.ConfigMap
		if err := m3.Client.Get(ctx, client.ObjectKeyFromObject(holder), &cm); err == nil {
			cm.Finalizers = nil
			_ = m3.Client.Update(ctx, &cm)
		}
	}
	t.Cleanup(release)
	g.Eventually(func(g Gomega) {
		var n corev1.Namespace
		g.Expect(m3.Client.Get(ctx, client.ObjectKey{Name: ns}, &n)).To(Succeed())
		g.Expect(n.Status.Phase).To(Equal(corev1.NamespaceTerminating))
	}).WithTimeout(30 * time.Second).Should(Succeed())

	mr := newMyResource(ns, "web", "m1", "m2", "m3")
	g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	refusedBy(t, mr, "m3", "being deleted")
	t.Logf("m3 refused: %s", suite.ClusterCondition(get(ctx, g, mr), "m3", hubv1.ClusterConditionApplied).Message)

	// Once the namespace is gone, the operator creates it again and converges.
	release()
	released := time.Now()
	eventuallyReady(t, mr, 150*time.Second)
	t.Logf("Ready %s after the namespace finished terminating", time.Since(released).Round(100*time.Millisecond))
}

// createMemberNamespace creates namespace ns in member ahead of the
// operator, and deletes it when the test ends.
func createMemberNamespace(t *testing.T, member *controlplane.Cluster, ns string) {
	t.Helper()
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	NewWithT(t).Expect(member.Client.Create(t.Context(), obj)).To(Succeed())
	t.Cleanup(func() { _ = member.Client.Delete(cleanupContext(t), obj) })
}

// refusedBy waits until cluster reports Applied=False ApplyFailed with a
// message containing want, and every other selected cluster is Available.
func refusedBy(t *testing.T, mr *hubv1.MyResource, cluster, want string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(t.Context(), g, mr)
		c := suite.ClusterCondition(got, cluster, hubv1.ClusterConditionApplied)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(hubv1.ReasonApplyFailed))
		g.Expect(c.Message).To(ContainSubstring(want))
		for _, other := range got.Spec.Placement.ClusterNames {
			if other == cluster {
				continue
			}
			a := suite.ClusterCondition(got, other, hubv1.ClusterConditionAvailable)
			g.Expect(a).NotTo(BeNil(), other)
			g.Expect(a.Status).To(Equal(metav1.ConditionTrue), other)
		}
		d := got.Status.Conditions
		g.Expect(d).NotTo(BeEmpty())
	}).WithTimeout(120*time.Second).WithPolling(time.Second).Should(Succeed(), func() string {
		return suite.MemberReport(cleanupContext(t), env, mr.Namespace, mr.Name)
	})
}

// countRequestsDuring counts the operator's requests to member about
// namespace ns during backoffWindow, logging them per 10 s so the decay of
// the backoff shows.
func countRequestsDuring(t *testing.T, member *controlplane.Cluster, ns string) int {
	t.Helper()
	g := NewWithT(t)
	mark := suite.AuditLen(g, member)
	var perSlice []int
	total := 0
	const slice = 10 * time.Second
	for range int(backoffWindow / slice) {
		// Waiting is the point here: requests are counted over wall time.
		time.Sleep(slice)
		n := len(suite.AuditedSince(g, member, mark, inNamespace(ns)))
		perSlice = append(perSlice, n-total)
		total = n
	}
	t.Logf("operator requests to %s about namespace %s in %s: %d (per 10 s: %v)", member.Name, ns, backoffWindow, total, perSlice)
	return total
}
