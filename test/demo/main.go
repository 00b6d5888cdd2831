// Command demo runs hub-operator's main job on local control planes: a hub
// and two members with fake nodes (real kube-apiserver, etcd,
// kube-controller-manager, kube-scheduler and kwok processes), the real
// hub-operator binary, and the sample MyResource, printing the per-cluster
// status as it converges. `make demo` runs it; DEMO_ONCE=1 exits once Ready.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

const registryNS = "hub-operator-system"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	once := os.Getenv("DEMO_ONCE") != ""

	dir := filepath.Join(controlplane.RepoRoot(), "bin", "demo")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	step("Building hub-operator")
	bin, err := controlplane.BuildOperator(false)
	if err != nil {
		return err
	}
	step("Starting a hub and two members (prod, staging) with fake nodes")
	began := time.Now()
	env, err := controlplane.Start(ctx, controlplane.Options{Dir: dir, Members: []controlplane.MemberOptions{
		{Name: "prod-eu", Labels: map[string]string{"env": "prod", "region": "eu"}, FakeNodes: true},
		{Name: "staging-us", Labels: map[string]string{"env": "staging", "region": "us"}, FakeNodes: true},
	}})
	if err != nil {
		return err
	}
	defer func() {
		step("Tearing everything down")
		_ = env.Stop()
	}()
	fmt.Printf("   control planes ready in %s\n", time.Since(began).Round(100*time.Millisecond))

	step("Installing the CRD and registering the members as Secrets in " + registryNS)
	if err := env.Hub.InstallCRDs(ctx); err != nil {
		return err
	}
	for _, m := range env.Members {
		if err := env.Register(ctx, m, registryNS, nil); err != nil {
			return err
		}
	}
	step("Starting hub-operator (log: " + filepath.Join(dir, "hub-operator.log") + ")")
	op, err := env.StartOperator(controlplane.OperatorOptions{Binary: bin, RegistryNamespace: registryNS,
		Args: []string{"--member-probe-interval=2s"}})
	if err != nil {
		return err
	}

	step("Applying test/samples/myresource.yaml")
	mr, err := applySample(ctx, env.Hub.Client)
	if err != nil {
		return err
	}
	applied := time.Now()
	if err := watchUntilReady(ctx, env.Hub.Client, mr); err != nil {
		return err
	}
	fmt.Printf("\nReady %s after apply.\n", time.Since(applied).Round(100*time.Millisecond))
	if once {
		return nil
	}
	fmt.Printf(`
Try it (the hub and both members keep running until Ctrl-C):
  export KUBECONFIG=%s
  kubectl get myr -A
  kubectl describe myr -n demo hello
  kubectl get secrets -n %s -L env,region
  kubectl --kubeconfig %s get deploy,svc,pods -n demo
  kubectl --kubeconfig %s get deploy,svc,pods -n demo
Operator log: %s
`, env.Hub.KubeconfigPath, registryNS, env.Members[0].KubeconfigPath, env.Members[1].KubeconfigPath, op.LogPath)
	<-ctx.Done()
	return nil
}

func step(s string) { fmt.Printf("==> %s\n", s) }

func applySample(ctx context.Context, c client.Client) (*hubv1.MyResource, error) {
	data, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "samples", "myresource.yaml"))
	if err != nil {
		return nil, err
	}
	mr := &hubv1.MyResource{}
	if err := yaml.UnmarshalStrict(data, mr); err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: mr.Namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	return mr, c.Create(ctx, mr)
}

// watchUntilReady prints the per-cluster table whenever it changes.
func watchUntilReady(ctx context.Context, c client.Client, mr *hubv1.MyResource) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	last := ""
	for {
		got := &hubv1.MyResource{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(mr), got); err != nil {
			return err
		}
		if table := render(got); table != last {
			fmt.Printf("\n%s  %s/%s\n%s", time.Now().Format("15:04:05"), got.Namespace, got.Name, table)
			last = table
		}
		if r := meta.FindStatusCondition(got.Status.Conditions, hubv1.ConditionReady); r != nil &&
			r.Status == metav1.ConditionTrue && r.ObservedGeneration == got.Generation && got.Status.SelectedClusters > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("MyResource did not become Ready within 3 minutes")
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func render(mr *hubv1.MyResource) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tAPPLIED\tAVAILABLE\tREADY/DESIRED\tMESSAGE")
	for _, c := range mr.Status.Clusters {
		a := meta.FindStatusCondition(c.Conditions, hubv1.ClusterConditionApplied)
		v := meta.FindStatusCondition(c.Conditions, hubv1.ClusterConditionAvailable)
		msg := ""
		if v != nil {
			msg = v.Message
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", c.Name, condStatus(a), condStatus(v), c.ReadyReplicas, c.Replicas, msg)
	}
	ready := meta.FindStatusCondition(mr.Status.Conditions, hubv1.ConditionReady)
	fmt.Fprintf(tw, "READY %s\t%s\n", mr.Status.ReadySummary, condStatus(ready))
	_ = tw.Flush()
	return b.String()
}

func condStatus(c *metav1.Condition) string {
	if c == nil {
		return "-"
	}
	return string(c.Status) + " (" + c.Reason + ")"
}
