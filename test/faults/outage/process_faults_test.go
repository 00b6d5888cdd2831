package outage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// memberTotal counts the Deployments and Services of hub namespace ns in every member.
func memberTotal(ctx context.Context, g Gomega, ns string) int {
	total := 0
	for _, m := range env.Members {
		d, s := memberObjects(ctx, g, m.Name, ns)
		total += len(d) + len(s)
	}
	return total
}

func TestOperatorKilledMidFanOutAndMidDeletionConvergesWithoutLeftovers(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	op := startOperator(t, "killed")
	ns := newNamespace(t)

	// 30 MyResources, each on two of the three members: 20 per member.
	const n = 30
	members := []string{"m1", "m2", "m3"}
	want := map[string][]string{}
	var mrs []*hubv1.MyResource
	for i := range n {
		pair := []string{members[i%3], members[(i+1)%3]}
		mr := newMyResource(ns, fmt.Sprintf("web-%02d", i), pair...)
		mrs = append(mrs, mr)
		for _, c := range pair {
			want[c] = append(want[c], mr.Name)
		}
	}
	created := time.Now()
	for _, mr := range mrs {
		g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	}
	const objects = 2 * 2 * n // a Deployment and a Service on two members each
	var atKill int
	g.Eventually(func(g Gomega) {
		atKill = memberTotal(ctx, g, ns)
		g.Expect(atKill).To(BeNumerically(">=", 4))
	}).WithTimeout(60 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	g.Expect(op.Kill()).To(Succeed())
	killed := time.Now()
	t.Logf("SIGKILL %s after creating %d MyResources, with %d of %d member objects written", killed.Sub(created).Round(10*time.Millisecond), n, atKill, objects)
	g.Expect(atKill).To(BeNumerically("<", objects), "the operator was killed mid fan-out")

	g.Expect(op.Restart()).To(Succeed())
	for _, mr := range mrs {
		eventuallyReady(t, mr, 180*time.Second)
	}
	t.Logf("all %d MyResources Ready %s after the restart", n, since(killed))
	expectExactlyOneEach(t, ns, want)

	deleting := time.Now()
	for _, mr := range mrs {
		g.Expect(env.Hub.Client.Delete(ctx, mr)).To(Succeed())
	}
	var left int
	g.Eventually(func(g Gomega) {
		left = memberTotal(ctx, g, ns)
		g.Expect(left).To(BeNumerically("<=", objects-4))
	}).WithTimeout(60 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	g.Expect(op.Kill()).To(Succeed())
	killed = time.Now()
	var hubLeft hubv1.MyResourceList
	g.Expect(env.Hub.Client.List(ctx, &hubLeft, client.InNamespace(ns))).To(Succeed())
	t.Logf("SIGKILL %s after deleting, with %d of %d member objects and %d of %d MyResources left",
		killed.Sub(deleting).Round(10*time.Millisecond), left, objects, len(hubLeft.Items), n)
	g.Expect(left).To(BeNumerically(">", 0), "the operator was killed mid deletion")

	g.Expect(op.Restart()).To(Succeed())
	g.Eventually(func(g Gomega) {
		var list hubv1.MyResourceList
		g.Expect(env.Hub.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(BeEmpty(), "every finalizer is released")
	}).WithTimeout(120 * time.Second).Should(Succeed())
	t.Logf("all %d MyResources gone %s after the restart", n, since(killed))
	expectExactlyOneEach(t, ns, nil)
}

// leaseName is the leader-election Lease of cmd/hub-operator (LeaderElectionID).
const leaseName = "hub-operator.example.com"

// controller-runtime's leader election defaults, which cmd/hub-operator keeps.
const (
	leaseDuration = 15 * time.Second
	retryPeriod   = 2 * time.Second
)

func TestLeaderKilledStandbyTakesOverAndConverges(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	leaseNS := newNamespace(t)
	le := []string{"--leader-elect", "--leader-election-namespace=" + leaseNS}
	a := startOperator(t, "leader-a", le...)
	b := startOperator(t, "leader-b", le...)

	var holder string
	g.Eventually(func(g Gomega) {
		holder = leaseHolder(ctx, g, leaseNS)
		g.Expect(holder).NotTo(BeEmpty())
	}).WithTimeout(60 * time.Second).Should(Succeed())
	var leader, standby *controlplane.Operator
	g.Eventually(func(g Gomega) {
		leader, standby = whoLeads(g, a, b)
	}).WithTimeout(30 * time.Second).Should(Succeed())
	t.Logf("leader %s (lease holder %s)", leader.LogPath, holder)

	ns := newNamespace(t)
	first := newMyResource(ns, "first", "m1", "m2")
	g.Expect(env.Hub.Client.Create(ctx, first)).To(Succeed())
	eventuallyReady(t, first, 120*time.Second)

	marks := auditMarks(g)
	g.Expect(leader.Kill()).To(Succeed())
	killed := time.Now()
	second := newMyResource(ns, "second", "m1", "m3")
	g.Expect(env.Hub.Client.Create(ctx, second)).To(Succeed())

	// The standby tries every retry period (client-go adds up to 1.2x of it
	// as jitter) and wins once the lease has not been renewed for a lease
	// duration.
	takeoverBound := leaseDuration + 2*retryPeriod + slack
	var newHolder string
	g.Eventually(func(g Gomega) {
		newHolder = leaseHolder(ctx, g, leaseNS)
		g.Expect(newHolder).NotTo(BeEmpty())
		g.Expect(newHolder).NotTo(Equal(holder))
	}).WithTimeout(takeoverBound).WithPolling(100 * time.Millisecond).Should(Succeed())
	takeover := since(killed)
	t.Logf("lease taken over by %s %s after SIGKILL of the leader (bound %s = lease duration %s + 2x retry period %s + slack %s)",
		newHolder, takeover, takeoverBound, leaseDuration, retryPeriod, slack)
	// The Lease is written before client-go logs the acquisition.
	g.Eventually(func(g Gomega) bool { return acquired(g, standby) }).
		WithTimeout(10*time.Second).Should(BeTrue(), "the standby process is the new leader")

	eventuallyReady(t, second, 90*time.Second)
	t.Logf("MyResource created after the kill Ready %s after the kill (%s after the takeover)", since(killed), since(killed)-takeover)
	g.Expect(suite.IsReady(get(ctx, g, first))).To(BeTrue(), "the new leader keeps the first MyResource Ready")
	g.Expect(standby.Running()).To(BeTrue())
	expectConvergedUntouched(t, first, marks, "m1", "m2")
}

// expectConvergedUntouched asserts that a new leader starting over mr,
// converged by the previous one, wrote nothing of it: no apply to its
// Deployment or Service in clusters and no status patch on the hub. That
// the new leader got to it is seen from its own requests about them in
// every cluster (a new process reads each object of ours once, live), and
// the reconcile that made them has written its status, if it ever would,
// within a cluster timeout.
func expectConvergedUntouched(t *testing.T, mr *hubv1.MyResource, marks map[string]int, clusters ...string) {
	t.Helper()
	g := NewWithT(t)
	var judged []string
	for _, c := range clusters {
		judged = append(judged, c+" deployments", c+" services")
	}
	g.Eventually(func(g Gomega) []string {
		requests, _ := requestsAbout(g, mr, marks, clusters)
		return requests
	}).WithTimeout(60*time.Second).Should(ContainElements(judged), "the new leader judged every object of %s", mr.Name)
	g.Consistently(func(g Gomega) []string {
		_, writes := requestsAbout(g, mr, marks, clusters)
		return writes
	}).WithTimeout(clusterTimeout+slack).WithPolling(time.Second).Should(BeEmpty(),
		"a new leader over a converged MyResource writes none of its objects and not its status")
}

// auditMarks are the lengths of every API server's audit log now, to read
// only what comes after.
func auditMarks(g Gomega) map[string]int {
	marks := map[string]int{}
	for _, c := range append([]*controlplane.Cluster{env.Hub}, env.Members...) {
		marks[c.Name] = suite.AuditLen(g, c)
	}
	return marks
}

// requestsAbout lists, since marks, the operator's requests about mr's
// objects in clusters ("m1 deployments") and, of those and of its own on
// the hub, the writes ("hub patch myresources/status"). Lists and watches
// (the caches) name no object and are left out.
func requestsAbout(g Gomega, mr *hubv1.MyResource, marks map[string]int, clusters []string) (requests, writes []string) {
	for _, c := range append([]*controlplane.Cluster{env.Hub}, env.Members...) {
		if c != env.Hub && !slices.Contains(clusters, c.Name) {
			continue
		}
		about := func(e controlplane.AuditEvent) bool {
			ref := e.ObjectRef
			return ref != nil && ref.Namespace == mr.Namespace && ref.Name == mr.Name && e.Verb != "list" && e.Verb != "watch"
		}
		for _, e := range suite.AuditedSince(g, c, marks[c.Name], about) {
			if c != env.Hub {
				requests = append(requests, c.Name+" "+e.Resource())
			}
			if e.IsWrite() {
				writes = append(writes, c.Name+" "+e.Verb+" "+e.Resource())
			}
		}
	}
	return requests, writes
}

func leaseHolder(ctx context.Context, g Gomega, ns string) string {
	var lease coordinationv1.Lease
	err := env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &lease)
	g.Expect(client.IgnoreNotFound(err)).To(Succeed())
	if err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// acquired says whether an operator's log says it became the leader
// (client-go's leader election logs it; both replicas share a host name, so
// the Lease's holder identity alone does not tell the processes apart).
func acquired(g Gomega, op *controlplane.Operator) bool {
	logs, err := op.Logs()
	g.Expect(err).NotTo(HaveOccurred())
	return strings.Contains(strings.ToLower(logs), "successfully acquired lease")
}

// whoLeads returns the operator that acquired the lease, then the other; it
// fails unless exactly one did.
func whoLeads(g Gomega, a, b *controlplane.Operator) (leader, standby *controlplane.Operator) {
	la, lb := acquired(g, a), acquired(g, b)
	g.Expect(la != lb).To(BeTrue(), "exactly one replica leads (a: %t, b: %t)", la, lb)
	if la {
		return a, b
	}
	return b, a
}
