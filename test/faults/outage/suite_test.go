package outage

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// registryNS is the registry namespace of every operator of the suite.
const registryNS = suite.RegistryNamespace

// The operator flags of the suite, suite.FastFailureArgs: short probes and
// timeouts keep failure tests quick. The bounds the tests assert are derived
// from them.
const (
	probeInterval  = 2 * time.Second
	clusterTimeout = 5 * time.Second
	requestTimeout = 4 * time.Second
	// probeTimeout is --member-probe-timeout in suite.FastFailureArgs.
	probeTimeout = 5 * time.Second
	// slack absorbs a loaded 2-core machine shared with other control planes:
	// a reconcile, a status patch and our polling on top of the bound itself.
	slack = 8 * time.Second
)

// The suite shares one hub and three members (m2 and m3 behind black-hole
// proxies); each test starts the operator(s) it needs and stops them when it
// ends, so that a kill or restart in one test never reaches another, and
// restores whatever member it broke.
var (
	env *controlplane.Env
	bin string
)

func TestMain(m *testing.M) {
	os.Exit(suite.Run(m, suite.Options{
		Members: []controlplane.MemberOptions{
			{Name: "m1", Labels: map[string]string{"env": "prod", "region": "eu"}, FakeNodes: true},
			{Name: "m2", Labels: map[string]string{"env": "staging", "region": "us"}, FakeNodes: true, Proxy: true},
			{Name: "m3", Labels: map[string]string{"env": "prod", "region": "us"}, FakeNodes: true, Proxy: true},
		},
		Started: func(e *controlplane.Env, b string, _ *controlplane.Operator) { env, bin = e, b },
	}))
}

// operatorArgs are the suite's operator flags, then extra ones (later wins).
func operatorArgs(extra ...string) []string {
	return append(suite.FastFailureArgs(), extra...)
}

// startOperator runs the real binary for this test, named after it (its log
// is <env.Dir>/<name>.log), and stops it when the test ends.
func startOperator(t *testing.T, name string, extraArgs ...string) *controlplane.Operator {
	t.Helper()
	op, err := env.StartOperator(controlplane.OperatorOptions{
		Binary: bin, Name: name, RegistryNamespace: registryNS, Args: operatorArgs(extraArgs...),
	})
	if err != nil {
		t.Fatalf("starting operator %s: %v", name, err)
	}
	t.Cleanup(func() {
		if op.Running() {
			if err := op.Stop(); err != nil {
				t.Errorf("stopping operator %s: %v", name, err)
			}
		}
	})
	return op
}

func cleanupContext(t *testing.T) context.Context { return suite.CleanupContext(t) }

func newNamespace(t *testing.T) string { return suite.NewNamespace(t, env.Hub.Client, "") }

// newMyResource runs one replica: the fake nodes are shared by the whole suite.
func newMyResource(ns, name string, clusters ...string) *hubv1.MyResource {
	return suite.NewMyResource(ns, name, 1, clusters...)
}

func get(ctx context.Context, g Gomega, mr client.Object) *hubv1.MyResource {
	return suite.Get(ctx, g, env.Hub.Client, mr)
}

func eventuallyReady(t *testing.T, mr client.Object, timeout time.Duration) *hubv1.MyResource {
	t.Helper()
	return suite.EventuallyReady(t, env.Hub.Client, mr, timeout)
}

// clusterServes says whether a cluster runs the MyResource's current
// generation, applied and available.
func clusterServes(mr *hubv1.MyResource, cluster string) bool {
	for _, c := range mr.Status.Clusters {
		if c.Name == cluster {
			return c.ObservedGeneration == mr.Generation &&
				meta.IsStatusConditionTrue(c.Conditions, hubv1.ClusterConditionApplied) &&
				meta.IsStatusConditionTrue(c.Conditions, hubv1.ClusterConditionAvailable)
		}
	}
	return false
}

// memberObjects lists, by the contract's labels, the owner names of the
// Deployments and of the Services the operator put into a member for the
// MyResources of hub namespace ns, sorted, duplicates kept.
func memberObjects(ctx context.Context, g Gomega, cluster, ns string) (deployments, services []string) {
	owned := client.MatchingLabels{hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: ns}
	var ds appsv1.DeploymentList
	g.Expect(env.Member(cluster).Client.List(ctx, &ds, owned)).To(Succeed())
	for _, d := range ds.Items {
		deployments = append(deployments, d.Labels[hubv1.OwnerNameLabel])
	}
	var ss corev1.ServiceList
	g.Expect(env.Member(cluster).Client.List(ctx, &ss, owned)).To(Succeed())
	for _, s := range ss.Items {
		services = append(services, s.Labels[hubv1.OwnerNameLabel])
	}
	slices.Sort(deployments)
	slices.Sort(services)
	return deployments, services
}

// expectExactlyOneEach asserts that every member holds exactly one Deployment
// and one Service per MyResource placed on it, and nothing else of ns.
func expectExactlyOneEach(t *testing.T, ns string, want map[string][]string) {
	t.Helper()
	for _, m := range env.Members {
		names := slices.Clone(want[m.Name])
		slices.Sort(names)
		if names == nil {
			names = []string{}
		}
		NewWithT(t).Eventually(func(g Gomega) {
			d, s := memberObjects(t.Context(), g, m.Name, ns)
			g.Expect(orEmpty(d)).To(Equal(names), "Deployments in %s by owner", m.Name)
			g.Expect(orEmpty(s)).To(Equal(names), "Services in %s by owner", m.Name)
		}).WithTimeout(30 * time.Second).Should(Succeed())
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// gone says whether the MyResource no longer exists (its finalizer is gone).
func gone(ctx context.Context, mr client.Object) bool {
	err := env.Hub.Client.Get(ctx, client.ObjectKeyFromObject(mr), &hubv1.MyResource{})
	return err != nil && client.IgnoreNotFound(err) == nil
}

// stopMember stops a member's API server in the background: it stops serving
// at once but its graceful shutdown takes up to 15 s, longer than the outage
// a test needs. The returned function waits until the process has exited,
// which StartAPIServer requires; when the test ends the member is started
// again if the test did not.
func stopMember(t *testing.T, m *controlplane.Cluster) (waitStopped func()) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- m.StopAPIServer() }()
	waitStopped = sync.OnceFunc(func() {
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("stopping %s: %v", m.Name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s's API server did not exit within 30s", m.Name)
		}
	})
	t.Cleanup(func() {
		waitStopped()
		restartMember(t, m)
	})
	return waitStopped
}

// restartMember starts a stopped member API server again (a no-op when it runs).
func restartMember(t *testing.T, m *controlplane.Cluster) {
	t.Helper()
	if err := m.StartAPIServer(cleanupContext(t)); err != nil && !strings.Contains(err.Error(), "already running") {
		t.Errorf("restarting %s: %v", m.Name, err)
	}
}

// deleteMemberNamespace removes what a test left in a member (orphaned
// objects), so that its Pods stop costing the shared fake nodes.
func deleteMemberNamespace(t *testing.T, cluster, ns string) {
	t.Helper()
	err := env.Member(cluster).Client.Delete(cleanupContext(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if client.IgnoreNotFound(err) != nil {
		t.Errorf("deleting namespace %s in %s: %v", ns, cluster, err)
	}
}

// memberDeployment reads an owned Deployment in a member.
func memberDeployment(t *testing.T, cluster, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	NewWithT(t).Expect(env.Member(cluster).Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
	return d
}

// since rounds a duration for logs.
func since(t0 time.Time) time.Duration { return time.Since(t0).Round(10 * time.Millisecond) }
