package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// registryNS is the registry namespace of the suite's operator.
const registryNS = suite.RegistryNamespace

// The suite shares one hub, three members and one operator: starting them
// costs ~15 s, and every test works in namespaces of its own. Tests that
// break a member restore it before they end; none runs in parallel.
var (
	env      *controlplane.Env
	operator *controlplane.Operator
)

func TestMain(m *testing.M) {
	os.Exit(suite.Run(m, suite.Options{
		Members: []controlplane.MemberOptions{
			{Name: "m1", Labels: map[string]string{"env": "prod", "region": "eu"}, FakeNodes: true},
			{Name: "m2", Labels: map[string]string{"env": "staging", "region": "us"}, FakeNodes: true, Proxy: true},
			{Name: "m3", Labels: map[string]string{"env": "prod", "region": "us"}, FakeNodes: true, Proxy: true},
		},
		StartOperator: true,
		Started:       func(e *controlplane.Env, _ string, op *controlplane.Operator) { env, operator = e, op },
	}))
}

func cleanupContext(t *testing.T) context.Context { return suite.CleanupContext(t) }

func newNamespace(t *testing.T) string { return suite.NewNamespace(t, env.Hub.Client, "") }

// newMyResource runs two replicas, so that replica counts read back from a
// member are not a default.
func newMyResource(ns, name string, clusters ...string) *hubv1.MyResource {
	return suite.NewMyResource(ns, name, 2, clusters...)
}

func get(t *testing.T, mr *hubv1.MyResource) *hubv1.MyResource {
	t.Helper()
	return suite.Get(t.Context(), NewWithT(t), env.Hub.Client, mr)
}

func eventuallyReady(t *testing.T, mr *hubv1.MyResource) *hubv1.MyResource {
	t.Helper()
	return suite.EventuallyReady(t, env.Hub.Client, mr, 90*time.Second)
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
