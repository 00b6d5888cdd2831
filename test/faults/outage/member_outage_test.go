package outage

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/suite"
)

// A stopped member refuses connections, so the registry's next probe fails
// at once: the cluster must be reported within one probe interval, one probe
// timeout (the worst case of that probe) and one reconcile (bounded by the
// cluster timeout), plus slack for the loaded machine.
const unreachableBound = probeInterval + probeTimeout + clusterTimeout + slack

func TestStoppedMemberMidRolloutIsReportedUnreachableAndConvergesWhenBack(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	startOperator(t, "stopped-member")
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2", "m3")
	created := time.Now()
	g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	eventuallyReady(t, mr, 120*time.Second)
	t.Logf("Ready on m1, m2, m3 %s after create", since(created))

	// A spec change starts a rollout everywhere; m2 goes down in the middle of it.
	cur := get(ctx, g, mr)
	cur.Spec.Deployment.Template.Spec.Containers[0].Image = "nginx:1.29"
	g.Expect(env.Hub.Client.Update(ctx, cur)).To(Succeed())
	m2 := env.Member("m2")
	// The outage starts at the signal, not when the process has exited.
	stopping := time.Now()
	waitStopped := stopMember(t, m2)

	g.Eventually(func(g Gomega) {
		c := suite.ClusterCondition(get(ctx, g, mr), "m2", hubv1.ClusterConditionApplied)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(hubv1.ReasonClusterUnreachable))
	}).WithTimeout(unreachableBound).WithPolling(100 * time.Millisecond).Should(Succeed())
	t.Logf("m2 reported ClusterUnreachable %s after its API server was told to stop (bound %s = probe interval %s + probe timeout %s + cluster timeout %s + slack %s)",
		since(stopping), unreachableBound, probeInterval, probeTimeout, clusterTimeout, slack)

	g.Eventually(func(g Gomega) {
		got := get(ctx, g, mr)
		for _, c := range []string{"m1", "m3"} {
			g.Expect(clusterServes(got, c)).To(BeTrue(), "%s runs generation %d: %+v", c, got.Generation, got.Status.Clusters)
		}
		g.Expect(got.Status.ReadyClusters).To(Equal(int32(2)))
		g.Expect(suite.IsReady(got)).To(BeFalse(), "not Ready while m2 is down")
		// Still what the user reads once the registry, not only a failed
		// apply, knows m2 is down.
		var secret corev1.Secret
		g.Expect(env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: registryNS, Name: "m2"}, &secret)).To(Succeed())
		g.Expect(secret.Annotations).To(HaveKeyWithValue(hubv1.ClusterStateAnnotation, "Unreachable"))
		c := suite.ClusterCondition(got, "m2", hubv1.ClusterConditionApplied)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(hubv1.ReasonClusterUnreachable))
		d := meta.FindStatusCondition(got.Status.Conditions, hubv1.ConditionDegraded)
		g.Expect(d).NotTo(BeNil())
		g.Expect(d.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(d.Reason).To(Equal(hubv1.ReasonClusterUnreachable))
		g.Expect(d.Message).To(ContainSubstring("m2"))
	}).WithTimeout(90 * time.Second).Should(Succeed())
	t.Logf("m1 and m3 run the new generation %s after m2 was told to stop", since(stopping))
	waitStopped()
	t.Logf("m2's API server process exited %s after the signal", since(stopping))

	starting := time.Now()
	g.Expect(m2.StartAPIServer(ctx)).To(Succeed())
	started := time.Now()
	got := eventuallyReady(t, mr, 90*time.Second)
	t.Logf("Ready on all three %s after m2's API server answered again (restart took %s), no manual action", since(started), started.Sub(starting).Round(10*time.Millisecond))
	g.Expect(got.Status.ReadyClusters).To(Equal(int32(3)))
	expectExactlyOneEach(t, ns, map[string][]string{"m1": {"web"}, "m2": {"web"}, "m3": {"web"}})
	for _, c := range []string{"m1", "m2", "m3"} {
		d := memberDeployment(t, c, ns, "web")
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.29"), c)
	}
}

// firstSeen polls cond every 100 ms and sends, once, how long after t0 it
// first held; it gives up when ctx ends.
func firstSeen(ctx context.Context, t0 time.Time, cond func() bool) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if cond() {
				out <- time.Since(t0)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// latencies measures create->Ready of MyResources created at once.
type latencies []time.Duration

func (l latencies) max() time.Duration { return slices.Max(l) }

func (l latencies) median() time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)/2]
}

func (l latencies) String() string {
	return fmt.Sprintf("median %s, max %s, n=%d", l.median().Round(10*time.Millisecond), l.max().Round(10*time.Millisecond), len(l))
}

// createAndTime creates the MyResources at once and returns, per MyResource,
// the time from its create to the first poll that saw it Ready.
func createAndTime(t *testing.T, mrs []*hubv1.MyResource) latencies {
	t.Helper()
	out := make(latencies, len(mrs))
	var wg sync.WaitGroup
	for i, mr := range mrs {
		wg.Go(func() {
			g := NewGomega(func(msg string, _ ...int) { t.Errorf("%s: %s", mr.Name, msg) })
			began := time.Now()
			g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
			g.Eventually(func(g Gomega) {
				g.Expect(suite.IsReady(get(t.Context(), g, mr))).To(BeTrue())
			}).WithTimeout(120 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
			out[i] = time.Since(began)
		})
	}
	wg.Wait()
	return out
}

func named(ns, prefix string, n int, clusters ...string) []*hubv1.MyResource {
	out := make([]*hubv1.MyResource, n)
	for i := range out {
		out[i] = newMyResource(ns, fmt.Sprintf("%s-%d", prefix, i), clusters...)
	}
	return out
}

// A slow probe interval, so that only the hub's out-of-band probe (Suspect)
// can report the black hole in time: waiting for the next tick would take
// up to this long.
const slowProbeInterval = 60 * time.Second

// Requests to a black hole hang until their timeout; the first failed apply
// makes the hub suspect the member, whose probe then times out: the registry
// must report the cluster within the cluster timeout and one probe timeout,
// plus slack, well before the next periodic probe.
const blackHoleBound = clusterTimeout + probeTimeout + slack

func TestBlackHoledMemberHoldsNoReconcileWorker(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	startOperator(t, "black-hole", "--member-probe-interval="+slowProbeInterval.String())
	ns := newNamespace(t)
	const n = 5

	// An m1+m3 MyResource that is Ready before the cut, updated during it.
	updated := newMyResource(ns, "both-updated", "m1", "m3")
	g.Expect(env.Hub.Client.Create(ctx, updated)).To(Succeed())
	eventuallyReady(t, updated, 120*time.Second)
	before := createAndTime(t, named(ns, "before", n, "m1"))
	t.Logf("create->Ready of %d MyResources on m1 before the cut: %s", n, before)

	m3 := env.Member("m3")
	m3.Proxy.Cut()
	t.Cleanup(m3.Proxy.Restore)
	cut := time.Now()
	// With the one updated, one fewer m1+m3 MyResource than reconcile workers
	// (8 by default). With more, all workers can be busy with m3 until the
	// registry marks it (measured: m1-only create->Ready ~12 s for 10).
	both := named(ns, "both", 6, "m1", "m3")
	for _, mr := range both {
		g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	}
	// What `kubectl hub clusters` shows: the registry's view of m3, not one
	// MyResource's failed apply.
	unreachable := firstSeen(ctx, cut, func() bool {
		var s corev1.Secret
		err := env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: registryNS, Name: "m3"}, &s)
		return err == nil && s.Annotations[hubv1.ClusterStateAnnotation] == "Unreachable"
	})
	cur := get(ctx, g, updated)
	cur.Spec.Deployment.Template.Spec.Containers[0].Image = "nginx:1.29"
	g.Expect(env.Hub.Client.Update(ctx, cur)).To(Succeed())
	during := createAndTime(t, named(ns, "during", n, "m1"))
	t.Logf("create->Ready of %d MyResources on m1 while m3 is black-holed and %d m1+m3 MyResources are created or updated: %s",
		n, len(both)+1, during)

	var took time.Duration
	g.Eventually(unreachable).WithTimeout(slowProbeInterval+probeTimeout+slack).Should(Receive(&took), "the registry reports m3 Unreachable")
	t.Logf("registry Secret of m3 says Unreachable %s after the cut (bound %s = cluster timeout %s + probe timeout %s + slack %s; probe interval %s)",
		took.Round(10*time.Millisecond), blackHoleBound, clusterTimeout, probeTimeout, slack, slowProbeInterval)
	g.Expect(took).To(BeNumerically("<=", blackHoleBound), "the hub's suspicion, not the next periodic probe, reports the black hole")

	// Workers held by m3 would show up here: the m1-only MyResources would
	// queue behind reconciles waiting for m3, each of which frees its worker
	// within a cluster timeout.
	bound := 2*before.max() + clusterTimeout
	g.Expect(during.max()).To(BeNumerically("<=", bound),
		"during the cut, create->Ready on m1 stays within 2x before + a cluster timeout (%s)", bound)
	g.Eventually(func(g Gomega) {
		c := suite.ClusterCondition(get(ctx, g, both[0]), "m3", hubv1.ClusterConditionApplied)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(hubv1.ReasonClusterUnreachable))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		for _, mr := range append(both, updated) {
			got := get(ctx, g, mr)
			g.Expect(clusterServes(got, "m1")).To(BeTrue(), "%s serves on m1 while m3 is black-holed", mr.Name)
		}
	}).WithTimeout(60 * time.Second).Should(Succeed())

	m3.Proxy.Restore()
	restored := time.Now()
	for _, mr := range append(both, updated) {
		eventuallyReady(t, mr, slowProbeInterval+probeTimeout+90*time.Second)
	}
	t.Logf("every m1+m3 MyResource Ready %s after the black hole ended", since(restored))
	want := []string{updated.Name}
	for _, mr := range both {
		want = append(want, mr.Name)
	}
	m1 := slices.Clone(want)
	for i := range n {
		m1 = append(m1, fmt.Sprintf("before-%d", i), fmt.Sprintf("during-%d", i))
	}
	expectExactlyOneEach(t, ns, map[string][]string{"m1": m1, "m3": want})
	g.Expect(memberDeployment(t, "m3", ns, updated.Name).Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.29"))
}
