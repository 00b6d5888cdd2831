package controlplane

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kwokStages makes kwok initialise fake Nodes, keep their leases, and move
// Pods to Ready (and through completion and deletion) at once.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

// nodeLeaseSeconds is the duration of the Lease kwok holds and renews for
// every fake Node (a quarter of it apart, as a kubelet does), the Nodes'
// heartbeat. kwok v0.8.0 started with --config keeps no Node Leases unless
// this flag is given, and its heartbeat stage (node-heartbeat-with-lease)
// rewrites a Node's status only 600-1210 s apart: every fake Node then
// missed kube-controller-manager's grace period about ten minutes after it
// was created, went Unknown, and the node lifecycle controller marked every
// Pod on it NotReady, which kwok never undoes (its pod-ready stage selects
// Pending Pods only). A suite older than ten minutes saw its members'
// Deployments drop to 0 available.
const nodeLeaseSeconds = 40

// FakeNodeCount is how many fake Nodes a FakeNodes member gets.
const FakeNodeCount = 2

// startFakeNodes runs kube-controller-manager, kube-scheduler and kwok
// against the member and registers fake Nodes, so that Deployments roll out
// and become Available without kubelets.
func (c *Cluster) startFakeNodes(ctx context.Context) error {
	direct, err := c.kubeconfig(c.Host(), c.Config) // components bypass the proxy
	if err != nil {
		return err
	}
	kc := filepath.Join(c.Dir, "components.kubeconfig")
	stages := filepath.Join(c.Dir, "kwok-stages.yaml")
	if err := os.WriteFile(kc, direct, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(stages, kwokStages, 0o600); err != nil {
		return err
	}
	components := []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{
			"--kubeconfig=" + kc, "--leader-elect=false", "--secure-port=0",
			"--service-account-private-key-file=" + c.saKey,
			"--use-service-account-credentials=false",
			"--root-ca-file=" + filepath.Join(c.Dir, "ca.crt"),
			// A loaded test machine can delay kwok's Lease renewals past
			// the default 40 s grace; an Unknown node would then mark every
			// Pod on it NotReady for good. Fake nodes never really fail, so
			// wait long.
			"--node-monitor-grace-period=10m", "--node-startup-grace-period=10m",
			logVerbosity,
		}},
		{"kube-scheduler", []string{"--kubeconfig=" + kc, "--leader-elect=false", "--secure-port=0", logVerbosity}},
		{"kwok", []string{
			"--kubeconfig=" + kc, "--manage-all-nodes=true", "--config=" + stages,
			"--node-lease-duration-seconds=" + strconv.Itoa(nodeLeaseSeconds),
		}},
	}
	for _, comp := range components {
		bin, err := binary(c.bins, comp.name)
		if err != nil {
			return err
		}
		p, err := startProcess(c.Dir, comp.name, bin, comp.args)
		if err != nil {
			return err
		}
		c.helpers = append(c.helpers, p)
	}
	for i := range FakeNodeCount {
		if err := c.Client.Create(ctx, fakeNode(fmt.Sprintf("%s-node-%d", c.Name, i))); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return c.helpers[2].waitFor(ctx, "fake nodes Ready", func(ctx context.Context) error {
		var nodes corev1.NodeList
		if err := c.Client.List(ctx, &nodes); err != nil {
			return err
		}
		for _, n := range nodes.Items {
			if !nodeReady(&n) {
				return fmt.Errorf("node %s not Ready", n.Name)
			}
		}
		for _, p := range c.helpers {
			if p.exited() {
				return fmt.Errorf("%s exited (see %s)", p.name, p.log.Name())
			}
		}
		return nil
	})
}

// FakeNode is a Node kwok makes Ready and runs Pods on (110 of them), for a
// test that needs more room in a FakeNodes member than FakeNodeCount nodes.
func FakeNode(name string) *corev1.Node { return fakeNode(name) }

func fakeNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name},
		},
		Spec: corev1.NodeSpec{Taints: nil},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
		},
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
