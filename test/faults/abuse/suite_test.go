package abuse

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// registryNS is the registry namespace of the suite's operator.
const registryNS = "hub-operator-system"

// extraFakeNodes are added to each member on top of the framework's two, so
// that the burst's 500 Pods per member fit (110 Pods per node).
const extraFakeNodes = 4

// The suite shares one hub, three members and one operator. Tests work in
// namespaces of their own and put back whatever they change in a member.
var (
	env      *controlplane.Env
	operator *controlplane.Operator
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	bin, err := controlplane.BuildOperator(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	start := time.Now()
	env, err = controlplane.Start(ctx, controlplane.Options{Members: []controlplane.MemberOptions{
		{Name: "m1", Labels: map[string]string{"env": "prod"}, FakeNodes: true},
		{Name: "m2", Labels: map[string]string{"env": "prod"}, FakeNodes: true},
		{Name: "m3", Labels: map[string]string{"env": "staging"}, FakeNodes: true},
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting control planes:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	fmt.Printf("control planes up in %s (logs in %s)\n", time.Since(start).Round(time.Millisecond), env.Dir)
	if err := setUp(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	operator, err = env.StartOperator(controlplane.OperatorOptions{
		Binary: bin, RegistryNamespace: registryNS,
		Args: []string{"--member-probe-interval=2s", "--cluster-timeout=5s", "--member-request-timeout=4s"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Printf("operator log: %s\n", operator.LogPath)
	} else {
		_ = os.RemoveAll(env.Dir)
	}
	return code
}

func setUp(ctx context.Context) error {
	if err := env.Hub.InstallCRDs(ctx); err != nil {
		return err
	}
	for _, m := range env.Members {
		if err := env.Register(ctx, m, registryNS, nil); err != nil {
			return err
		}
		for i := range extraFakeNodes {
			if err := m.Client.Create(ctx, controlplane.FakeNode(fmt.Sprintf("%s-extra-node-%d", m.Name, i))); err != nil {
				return err
			}
		}
	}
	return nil
}

// cleanupContext is for t.Cleanup functions: t.Context() is already
// cancelled when they run.
func cleanupContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a hub namespace for one test.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	NewWithT(t).Expect(env.Hub.Client.Create(t.Context(), ns)).To(Succeed())
	return ns.Name
}

// newMyResource is a MyResource running one replica of one container, selecting clusters by name.
func newMyResource(ns, name string, clusters ...string) *hubv1.MyResource {
	return &hubv1.MyResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: hubv1.MyResourceSpec{
			Placement: hubv1.Placement{ClusterNames: clusters},
			Deployment: hubv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}},
			},
			Service: &hubv1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		},
	}
}

func get(ctx context.Context, g Gomega, mr *hubv1.MyResource) *hubv1.MyResource {
	out := &hubv1.MyResource{}
	g.Expect(env.Hub.Client.Get(ctx, client.ObjectKeyFromObject(mr), out)).To(Succeed())
	return out
}

// isReady says whether mr is Ready for its current generation.
func isReady(mr *hubv1.MyResource) bool {
	c := meta.FindStatusCondition(mr.Status.Conditions, hubv1.ConditionReady)
	return mr.Status.ObservedGeneration == mr.Generation && c != nil &&
		c.Status == metav1.ConditionTrue && c.ObservedGeneration == mr.Generation
}

// eventuallyReady waits until the MyResource is Ready for its current generation.
func eventuallyReady(t *testing.T, mr *hubv1.MyResource, timeout time.Duration) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(t.Context(), g, mr)
		g.Expect(isReady(got)).To(BeTrue(), "Ready of %s/%s; status: %+v", mr.Namespace, mr.Name, got.Status)
	}).WithTimeout(timeout).WithPolling(500 * time.Millisecond).Should(Succeed())
}

// clusterCondition finds a per-cluster condition in the status.
func clusterCondition(mr *hubv1.MyResource, cluster, typ string) *metav1.Condition {
	for _, c := range mr.Status.Clusters {
		if c.Name == cluster {
			return meta.FindStatusCondition(c.Conditions, typ)
		}
	}
	return nil
}

// memberDeployment reads an owned Deployment in a member.
func memberDeployment(ctx context.Context, g Gomega, cluster string, mr client.Object) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(env.Member(cluster).Client.Get(ctx, client.ObjectKeyFromObject(mr), d)).To(Succeed())
	return d
}

// auditedSince returns the operator's requests to c recorded after the
// first skip entries of its audit log, filtered by keep.
func auditedSince(g Gomega, c *controlplane.Cluster, skip int, keep func(controlplane.AuditEvent) bool) []controlplane.AuditEvent {
	events, err := c.AuditEvents()
	g.Expect(err).NotTo(HaveOccurred())
	var out []controlplane.AuditEvent
	for _, e := range events[min(skip, len(events)):] {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// auditLen is the number of audited operator requests to c so far, a mark
// for auditedSince.
func auditLen(g Gomega, c *controlplane.Cluster) int {
	events, err := c.AuditEvents()
	g.Expect(err).NotTo(HaveOccurred())
	return len(events)
}

// inNamespace keeps audit events about objects of namespace ns, the
// namespace object itself included.
func inNamespace(ns string) func(controlplane.AuditEvent) bool {
	return func(e controlplane.AuditEvent) bool {
		return e.ObjectRef != nil && (e.ObjectRef.Namespace == ns || (e.ObjectRef.Resource == "namespaces" && e.ObjectRef.Name == ns))
	}
}

// logSince returns what the operator printed after the first offset bytes.
func logSince(t *testing.T, offset int) string {
	t.Helper()
	logs, err := operator.Logs()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return logs[min(offset, len(logs)):]
}

func logLen(t *testing.T) int { return len(logSince(t, 0)) }

func lines(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
}
