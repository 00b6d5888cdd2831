// Package suite is what the suites that drive the real operator binary
// (test/e2e, test/faults/outage, test/faults/abuse) share: a TestMain that
// starts a hub and members and registers them, and the reads and waits
// every test makes through the contract. Each suite keeps its own globals
// and one-line wrappers binding them.
package suite

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// RegistryNamespace is the registry namespace of every suite's operators.
const RegistryNamespace = "hub-operator-system"

// FastFailureArgs are the operator flags of the suites: short probes and
// timeouts keep failure tests quick. The probe timeout stays at its default,
// 5 s: shorter, a member of a loaded machine could be probed Unreachable
// while it answers.
func FastFailureArgs() []string {
	return []string{"--member-probe-interval=2s", "--member-probe-timeout=5s", "--cluster-timeout=5s", "--member-request-timeout=4s"}
}

// Options says what a suite's TestMain starts.
type Options struct {
	// Members are the member clusters, registered under their names.
	Members []controlplane.MemberOptions
	// SetUp runs once the CRDs are installed and the members registered.
	SetUp func(ctx context.Context, env *controlplane.Env) error
	// StartOperator starts one operator (race-built, FastFailureArgs) for
	// the whole suite; without it each test starts its own.
	StartOperator bool
	// Started hands the suite its environment before the tests run.
	Started func(env *controlplane.Env, binary string, operator *controlplane.Operator)
}

// running is the suite's environment, for the reports of failed waits.
var running *controlplane.Env

// Run builds the operator with the race detector, starts the control
// planes, installs the CRDs, registers the members, runs the tests and
// stops everything, keeping the logs when a test failed. It returns the
// exit code for os.Exit.
func Run(m *testing.M, opts Options) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipped under -short: the suite runs the operator against kube-apiserver and etcd (make test)")
		return 0
	}
	ctx := context.Background()
	bin, err := controlplane.BuildOperator(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	start := time.Now()
	env, err := controlplane.Start(ctx, controlplane.Options{Members: opts.Members})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting control planes:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	fmt.Printf("control planes up in %s (logs in %s)\n", time.Since(start).Round(time.Millisecond), env.Dir)
	if err := setUp(ctx, env, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var operator *controlplane.Operator
	if opts.StartOperator {
		operator, err = env.StartOperator(controlplane.OperatorOptions{
			Binary: bin, RegistryNamespace: RegistryNamespace, Args: FastFailureArgs(),
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if opts.Started != nil {
		opts.Started(env, bin, operator)
	}
	running = env
	code := m.Run()
	if code == 0 {
		_ = os.RemoveAll(env.Dir)
	} else {
		fmt.Printf("control-plane and operator logs kept in %s\n", env.Dir)
	}
	return code
}

func setUp(ctx context.Context, env *controlplane.Env, opts Options) error {
	if err := env.Hub.InstallCRDs(ctx); err != nil {
		return err
	}
	for _, m := range env.Members {
		if err := env.Register(ctx, m, RegistryNamespace, nil); err != nil {
			return err
		}
	}
	if opts.SetUp != nil {
		return opts.SetUp(ctx, env)
	}
	return nil
}

// CleanupContext is for t.Cleanup functions: t.Context() is already
// cancelled when they run.
func CleanupContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace for one test on hub, named after prefix,
// or after the test when prefix is empty.
func NewNamespace(t *testing.T, hub client.Client, prefix string) string {
	t.Helper()
	if prefix == "" {
		prefix = nonName.ReplaceAllString(strings.ToLower(t.Name()), "-")
		prefix = prefix[:min(40, len(prefix))]
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	gomega.NewWithT(t).Expect(hub.Create(t.Context(), ns)).To(gomega.Succeed())
	return ns.Name
}

// NewMyResource is a MyResource running replicas of one nginx container
// and a Service, selecting clusters by name.
func NewMyResource(ns, name string, replicas int32, clusters ...string) *hubv1.MyResource {
	return &hubv1.MyResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: hubv1.MyResourceSpec{
			Placement: hubv1.Placement{Selection: hubv1.Selection{ClusterNames: clusters}},
			Deployment: hubv1.DeploymentSpec{
				Replicas: ptr.To(replicas),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}},
			},
			Service: &hubv1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		},
	}
}

// Get reads the MyResource named like mr from hub.
func Get(ctx context.Context, g gomega.Gomega, hub client.Client, mr client.Object) *hubv1.MyResource {
	out := &hubv1.MyResource{}
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(mr), out)).To(gomega.Succeed())
	return out
}

// IsReady says whether mr is Ready for its current generation.
func IsReady(mr *hubv1.MyResource) bool {
	c := meta.FindStatusCondition(mr.Status.Conditions, hubv1.ConditionReady)
	return mr.Status.ObservedGeneration == mr.Generation && c != nil &&
		c.Status == metav1.ConditionTrue && c.ObservedGeneration == mr.Generation
}

// EventuallyReady waits until the MyResource named like mr is Ready for its
// current generation, and returns it.
func EventuallyReady(t *testing.T, hub client.Client, mr client.Object, timeout time.Duration) *hubv1.MyResource {
	t.Helper()
	var got *hubv1.MyResource
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		got = Get(t.Context(), g, hub, mr)
		g.Expect(IsReady(got)).To(gomega.BeTrue(), "%s/%s Ready: %+v; clusters: %+v", got.Namespace, got.Name,
			meta.FindStatusCondition(got.Status.Conditions, hubv1.ConditionReady), got.Status.Clusters)
	}).WithTimeout(timeout).WithPolling(250*time.Millisecond).Should(gomega.Succeed(), func() string {
		return MemberReport(context.WithoutCancel(t.Context()), running, mr.GetNamespace(), mr.GetName())
	})
	return got
}

// ClusterCondition finds a per-cluster condition in mr's status.
func ClusterCondition(mr *hubv1.MyResource, cluster, typ string) *metav1.Condition {
	for _, c := range mr.Status.Clusters {
		if c.Name == cluster {
			return meta.FindStatusCondition(c.Conditions, typ)
		}
	}
	return nil
}

// RefuseDeployments creates a ResourceQuota in namespace ns of member (which
// must exist) that allows no Deployment, and waits until the quota admission
// plugin enforces it: it refuses only once the quota controller (a member
// with FakeNodes runs one) has computed the usage.
func RefuseDeployments(t *testing.T, member *controlplane.Cluster, ns string) *corev1.ResourceQuota {
	t.Helper()
	g := gomega.NewWithT(t)
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-deployments"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/deployments.apps": resource.MustParse("0")}},
	}
	g.Expect(member.Client.Create(t.Context(), quota)).To(gomega.Succeed())
	g.Eventually(func(g gomega.Gomega) {
		var q corev1.ResourceQuota
		g.Expect(member.Client.Get(t.Context(), client.ObjectKeyFromObject(quota), &q)).To(gomega.Succeed())
		g.Expect(q.Status.Hard).NotTo(gomega.BeEmpty())
	}).WithTimeout(60 * time.Second).Should(gomega.Succeed())
	return quota
}
