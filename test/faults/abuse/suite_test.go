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
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// registryNS is the registry namespace of the suite's operator.
const registryNS = suite.RegistryNamespace

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
	os.Exit(suite.Run(m, suite.Options{
		Members: []controlplane.MemberOptions{
			{Name: "m1", Labels: map[string]string{"env": "prod"}, FakeNodes: true},
			{Name: "m2", Labels: map[string]string{"env": "prod"}, FakeNodes: true},
			{Name: "m3", Labels: map[string]string{"env": "staging"}, FakeNodes: true},
		},
		SetUp:         addFakeNodes,
		StartOperator: true,
		Started:       func(e *controlplane.Env, _ string, op *controlplane.Operator) { env, operator = e, op },
	}))
}

func addFakeNodes(ctx context.Context, env *controlplane.Env) error {
	for _, m := range env.Members {
		for i := range extraFakeNodes {
			if err := m.Client.Create(ctx, controlplane.FakeNode(fmt.Sprintf("%s-extra-node-%d", m.Name, i))); err != nil {
				return err
			}
		}
	}
	return nil
}

func cleanupContext(t *testing.T) context.Context { return suite.CleanupContext(t) }

func newNamespace(t *testing.T, prefix string) string {
	return suite.NewNamespace(t, env.Hub.Client, prefix)
}

// newMyResource runs one replica: the burst puts 500 of them on each member.
func newMyResource(ns, name string, clusters ...string) *hubv1.MyResource {
	return suite.NewMyResource(ns, name, 1, clusters...)
}

func get(ctx context.Context, g Gomega, mr *hubv1.MyResource) *hubv1.MyResource {
	return suite.Get(ctx, g, env.Hub.Client, mr)
}

func eventuallyReady(t *testing.T, mr *hubv1.MyResource, timeout time.Duration) {
	t.Helper()
	suite.EventuallyReady(t, env.Hub.Client, mr, timeout)
}

// memberDeployment reads an owned Deployment in a member.
func memberDeployment(ctx context.Context, g Gomega, cluster string, mr client.Object) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(env.Member(cluster).Client.Get(ctx, client.ObjectKeyFromObject(mr), d)).To(Succeed())
	return d
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
