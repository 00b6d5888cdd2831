package e2e

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
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// registryNS is the registry namespace of the suite's operator.
const registryNS = "hub-operator-system"

// The suite shares one hub, three members and one operator: starting them
// costs ~15 s, and every test works in namespaces of its own. Tests that
// break a member restore it before they end; none runs in parallel.
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
		{Name: "m1", Labels: map[string]string{"env": "prod", "region": "eu"}, FakeNodes: true},
		{Name: "m2", Labels: map[string]string{"env": "staging", "region": "us"}, FakeNodes: true, Proxy: true},
		{Name: "m3", Labels: map[string]string{"env": "prod", "region": "us"}, FakeNodes: true, Proxy: true},
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting control planes:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	fmt.Printf("control planes up in %s (logs in %s)\n", time.Since(start).Round(time.Millisecond), env.Dir)
	if err := env.Hub.InstallCRDs(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, m := range env.Members {
		if err := env.Register(ctx, m, registryNS, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	operator, err = env.StartOperator(controlplane.OperatorOptions{
		Binary: bin, RegistryNamespace: registryNS,
		// Short probes and timeouts keep failure tests quick.
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

// cleanupContext is for t.Cleanup functions: t.Context() is already
// cancelled when they run.
func cleanupContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a hub namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:min(40, len(t.Name()))] + "-"}}
	ns.GenerateName = strings.ReplaceAll(ns.GenerateName, "_", "-")
	NewWithT(t).Expect(env.Hub.Client.Create(t.Context(), ns)).To(Succeed())
	return ns.Name
}

// newMyResource is a MyResource running one nginx container, selecting clusters by name.
func newMyResource(ns, name string, clusters ...string) *hubv1.MyResource {
	return &hubv1.MyResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: hubv1.MyResourceSpec{
			Placement: hubv1.Placement{ClusterNames: clusters},
			Deployment: hubv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}},
			},
			Service: &hubv1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		},
	}
}

func get(t *testing.T, mr *hubv1.MyResource) *hubv1.MyResource {
	t.Helper()
	out := &hubv1.MyResource{}
	NewWithT(t).Expect(env.Hub.Client.Get(t.Context(), client.ObjectKeyFromObject(mr), out)).To(Succeed())
	return out
}

// eventuallyReady waits until the MyResource is Ready for its current generation.
func eventuallyReady(t *testing.T, mr *hubv1.MyResource) *hubv1.MyResource {
	t.Helper()
	var got hubv1.MyResource
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(env.Hub.Client.Get(t.Context(), client.ObjectKeyFromObject(mr), &got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		c := meta.FindStatusCondition(got.Status.Conditions, hubv1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "Ready: %s %s; clusters: %+v", c.Reason, c.Message, got.Status.Clusters)
		g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
	}).WithTimeout(90 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	return &got
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

// memberDeployment reads the owned Deployment in a member; nil when absent.
func memberDeployment(t *testing.T, cluster string, mr client.Object) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	err := env.Member(cluster).Client.Get(t.Context(), client.ObjectKeyFromObject(mr), d)
	if client.IgnoreNotFound(err) != nil {
		t.Fatalf("reading Deployment in %s: %v", cluster, err)
	}
	if err != nil {
		return nil
	}
	return d
}

func memberService(t *testing.T, cluster string, mr client.Object) *corev1.Service {
	t.Helper()
	s := &corev1.Service{}
	err := env.Member(cluster).Client.Get(t.Context(), client.ObjectKeyFromObject(mr), s)
	if client.IgnoreNotFound(err) != nil {
		t.Fatalf("reading Service in %s: %v", cluster, err)
	}
	if err != nil {
		return nil
	}
	return s
}

// hubEvents lists the events recorded on an object of the hub.
func hubEvents(t *testing.T, namespace, name string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	NewWithT(t).Expect(env.Hub.Client.List(t.Context(), &list, client.InNamespace(namespace))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func deleteAndWait(t *testing.T, mr *hubv1.MyResource) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(client.IgnoreNotFound(env.Hub.Client.Delete(t.Context(), mr))).To(Succeed())
	g.Eventually(func() bool {
		err := env.Hub.Client.Get(t.Context(), client.ObjectKeyFromObject(mr), &hubv1.MyResource{})
		return client.IgnoreNotFound(err) == nil && err != nil
	}).WithTimeout(60*time.Second).Should(BeTrue(), "MyResource %s/%s is deleted", mr.Namespace, mr.Name)
}
