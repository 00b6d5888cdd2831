package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// Bounds and windows of one scenario.
const (
	// settle follows convergence before the writes are counted, so that a
	// write that trails the last Ready (an event) is counted as convergence
	// work rather than as a write at rest.
	settle = 5 * time.Second
	// restWindow is the window after convergence in which only Lease renewals
	// may be written.
	restWindow      = 60 * time.Second
	convergeTimeout = 10 * time.Minute
	connectTimeout  = 3 * time.Minute
)

// phase is what one measured run (operator or baseline) did.
type phase struct {
	seconds float64
	counts  tally
	// load is the 1-minute load average when convergence ended: the
	// machine is shared, and this says how much.
	load float64
}

func (e *benchEnv) runScenario(ctx context.Context, bin string, s scenario) (result, error) {
	members := e.members[:s.Members]
	r := result{Scenario: s.Name, Members: s.Members, MyResources: s.MyResources}
	mk, err := startMarker(ctx, members)
	if err != nil {
		return r, err
	}
	defer func() {
		for _, err := range mk.stop() {
			logf("marker (retried): %v", err)
		}
	}()
	for round := 1; round <= rounds(s); round++ {
		op, err := e.operatorRound(ctx, bin, s, members, round, &r)
		if err != nil {
			return r, fmt.Errorf("operator round %d: %w", round, err)
		}
		base, err := e.baselineRound(ctx, s, members, round)
		if err != nil {
			return r, fmt.Errorf("baseline round %d: %w", round, err)
		}
		if round == 1 {
			r.setOperator(op)
			r.setBaseline(base)
		}
		r.addRound(op, base)
		logf("scenario %s round %d: operator %.1fs (load %.1f), baseline %.1fs (load %.1f)", s.Name, round, op.seconds, op.load, base.seconds, base.load)
	}
	r.setTimes()
	logf("scenario %s: operator %.1fs, baseline %.1fs (ratio %.2f); writes per MyResource per member %.3f %v, minimal %.3f %v; at rest %d writes %v, %d lease renewals; RSS %.1f MiB (base %.1f, connected %.1f), heap %.1f MiB",
		s.Name, r.OperatorSeconds, r.BaselineSeconds, r.Ratio, r.WritesPerMRPerMember, r.WritesBy, r.MinWritesPerMRPerMember, r.BaselineWritesBy,
		r.WritesAtRest, r.WritesAtRestBy, r.LeaseRenewalsAtRest,
		mib(float64(r.Final.RSSBytes)), mib(float64(r.Base.RSSBytes)), mib(float64(r.Connected.RSSBytes)), mib(float64(r.Final.HeapInuseBytes)))
	return r, e.deregister(ctx)
}

// rounds is how often the operator and the baseline each converge: the
// machine is shared, so each side gets the same number of tries and the
// fastest counts. Three for (a), two for the heavier scenarios to keep the
// full run near half an hour; BENCH_ROUNDS overrides it.
func rounds(s scenario) int {
	if s.Name == "a" {
		return envInt("BENCH_ROUNDS", 3)
	}
	return envInt("BENCH_ROUNDS", 2)
}

// operatorRound runs the real binary once. The first round measures
// everything: memory before any member, after the members connect, and
// after convergence and rest; the writes of convergence and of rest; the
// reconcile latency and the status size. Later rounds only time convergence.
func (e *benchEnv) operatorRound(ctx context.Context, bin string, s scenario, members []*controlplane.Cluster, round int, r *result) (phase, error) {
	first := round == 1
	op, om, err := e.startOperator(bin, s, round)
	if err != nil {
		return phase{}, err
	}
	defer func() {
		if err := op.Stop(); err != nil {
			logf("stopping the operator: %v", err)
		}
	}()
	if err := om.waitUp(ctx); err != nil {
		return phase{}, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	if first {
		if r.Base, err = om.memory(ctx); err != nil {
			return phase{}, err
		}
		if err := e.register(ctx, members); err != nil {
			return phase{}, fmt.Errorf("%w (log: %s)", err, op.LogPath)
		}
		if r.Connected, err = om.memory(ctx); err != nil {
			return phase{}, err
		}
	}
	if err := om.waitMembersReady(ctx, len(members)); err != nil {
		return phase{}, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	ns := fmt.Sprintf("op-%s-%d", s.Name, round)
	p, err := e.converge(ctx, ns, s, members)
	if err != nil {
		return phase{}, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	if first {
		if err := e.measureAtRest(ctx, om, ns, r); err != nil {
			return phase{}, err
		}
	}
	return p, e.cleanUp(ctx, ns, members)
}

func (e *benchEnv) startOperator(bin string, s scenario, round int) (*controlplane.Operator, *operatorMetrics, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	pprofAddr := "0"
	if profileDir != "" {
		if pprofAddr, err = freeAddr(); err != nil {
			return nil, nil, err
		}
	}
	op, err := e.StartOperator(controlplane.OperatorOptions{
		Binary:            bin,
		Name:              fmt.Sprintf("operator-%s-%d", s.Name, round),
		Kubeconfig:        e.operatorHubKubeconfig,
		RegistryNamespace: registryNamespace,
		Args: []string{
			"--leader-elect=true",
			"--metrics-bind-address=" + addr,
			"--member-qps=" + strconv.Itoa(memberQPS),
			"--member-burst=" + strconv.Itoa(memberBurst),
			"--max-concurrent-reconciles=" + strconv.Itoa(maxConcurrent),
			"--fan-out=" + strconv.Itoa(fanOut),
			"--pprof-bind-address=" + pprofAddr,
		},
	})
	if err != nil {
		return nil, nil, err
	}
	om := &operatorMetrics{url: "https://" + addr + "/metrics", token: e.metricsToken, hc: e.insecure, pid: op.Pid()}
	if profileDir != "" {
		om.pprof = "http://" + pprofAddr + "/debug/pprof"
	}
	return op, om, nil
}

// measureAtRest counts the writes at rest, then reads what the operator
// holds and took once converged and rested.
func (e *benchEnv) measureAtRest(ctx context.Context, om *operatorMetrics, ns string, r *result) error {
	if err := e.atRest(ctx, r); err != nil {
		return err
	}
	var err error
	if r.Final, err = om.memory(ctx); err != nil {
		return err
	}
	r.setMemoryModel()
	if r.ReconcileP50Seconds, r.ReconcileP99Seconds, r.Reconciles, err = om.reconcileLatency(ctx); err != nil {
		return err
	}
	r.StatusBytesPerMyResource, err = e.statusBytes(ctx, ns)
	return err
}

func (e *benchEnv) baselineRound(ctx context.Context, s scenario, members []*controlplane.Cluster, round int) (phase, error) {
	ns := fmt.Sprintf("base-%s-%d", s.Name, round)
	b, err := startBaseline(ctx, e.Hub, members, ns)
	if err != nil {
		return phase{}, err
	}
	p, err := e.converge(ctx, ns, s, members)
	b.stop()
	if err != nil {
		return phase{}, err
	}
	return p, e.cleanUp(ctx, ns, members)
}

// converge creates the scenario's MyResources in namespace and times them
// to Ready, counting every API request from the first create to settle
// after the last Ready.
func (e *benchEnv) converge(ctx context.Context, ns string, s scenario, members []*controlplane.Cluster) (phase, error) {
	if err := createNamespace(ctx, e.Hub, ns); err != nil {
		return phase{}, err
	}
	clusters := append([]*controlplane.Cluster{e.Hub}, members...)
	before, err := snapshot(ctx, clusters)
	if err != nil {
		return phase{}, err
	}
	start := time.Now()
	if err := createMyResources(ctx, e.Hub.Client, ns, s.MyResources, members); err != nil {
		return phase{}, err
	}
	if err := e.waitReady(ctx, ns, s.MyResources); err != nil {
		return phase{}, err
	}
	took := time.Since(start)
	if err := sleep(ctx, settle); err != nil {
		return phase{}, err
	}
	after, err := snapshot(ctx, clusters)
	if err != nil {
		return phase{}, err
	}
	return phase{seconds: took.Seconds(), counts: after.since(before).tally(classMeasured), load: loadAverage()}, nil
}

// atRest counts, for rest after convergence, the writes to every API server
// and the renewals of the operator's leader-election Lease.
func (e *benchEnv) atRest(ctx context.Context, r *result) error {
	clusters := append([]*controlplane.Cluster{e.Hub}, e.members...)
	before, err := snapshot(ctx, clusters)
	if err != nil {
		return err
	}
	renewals, err := e.countLeaseRenewals(ctx, restWindow)
	if err != nil {
		return err
	}
	after, err := snapshot(ctx, clusters)
	if err != nil {
		return err
	}
	diff := after.since(before)
	measured := diff.tally(classMeasured)
	r.WritesAtRest = int(measured.Writes)
	r.WritesAtRestBy = measured.WritesBy
	r.LeaseRenewalsAtRest = renewals
	r.LeaseWritesAllServersAtRest = int(diff.tally(classLease).Writes)
	r.RestSeconds = restWindow.Seconds()
	return nil
}

// countLeaseRenewals watches the operator's Lease for d and counts its updates.
func (e *benchEnv) countLeaseRenewals(ctx context.Context, d time.Duration) (int, error) {
	wc, err := client.NewWithWatch(e.Hub.Config, client.Options{Scheme: controlplane.Scheme()})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	w, err := wc.Watch(ctx, &coordinationv1.LeaseList{}, client.InNamespace(registryNamespace),
		client.MatchingFields{"metadata.name": "hub-operator.example.com"})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return n, fmt.Errorf("lease watch closed early")
			}
			if ev.Type == watch.Modified {
				n++
			}
		}
	}
}

// register writes the members' registry Secrets with the operator
// identity's kubeconfigs and waits until the operator reports them Ready.
func (e *benchEnv) register(ctx context.Context, members []*controlplane.Cluster) error {
	for _, m := range members {
		kc, err := m.UserKubeconfig(operatorUser)
		if err != nil {
			return err
		}
		if err := controlplane.RegisterKubeconfig(ctx, e.Hub, registryNamespace, m.Name, kc, nil); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		var list corev1.SecretList
		if err := e.Hub.Client.List(ctx, &list, client.InNamespace(registryNamespace)); err != nil {
			return err
		}
		ready := 0
		for _, s := range list.Items {
			if s.Annotations[hubv1.ClusterStateAnnotation] == "Ready" {
				ready++
			}
		}
		if ready == len(members) {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("%d/%d members Ready in the registry: %w", ready, len(members), err)
		}
	}
}

// deregister deletes every registry Secret, so that the next scenario's
// operator starts with no member.
func (e *benchEnv) deregister(ctx context.Context) error {
	return e.Hub.Client.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(registryNamespace),
		client.MatchingLabels{hubv1.MemberClusterLabel: "true"})
}

func createMyResources(ctx context.Context, c client.Client, ns string, n int, members []*controlplane.Cluster) error {
	names := make([]string, 0, len(members))
	for _, m := range members {
		names = append(names, m.Name)
	}
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error { return c.Create(ctx, myResource(ns, fmt.Sprintf("app-%04d", i), names)) })
	}
	return g.Wait()
}

// myResource is a typical small workload: one container, one port, a Service.
func myResource(ns, name string, clusters []string) *hubv1.MyResource {
	return &hubv1.MyResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: hubv1.MyResourceSpec{
			Placement: hubv1.Placement{Selection: hubv1.Selection{ClusterNames: clusters}},
			Deployment: hubv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "nginx:1.27",
					Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				}}}},
			},
			Service: &hubv1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		},
	}
}

// waitReady returns once n MyResources in ns are Ready at their generation.
func (e *benchEnv) waitReady(ctx context.Context, ns string, n int) error {
	wc, err := client.NewWithWatch(e.Hub.Config, client.Options{Scheme: controlplane.Scheme()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, convergeTimeout)
	defer cancel()
	ready := map[string]bool{}
	for {
		var list hubv1.MyResourceList
		if err := wc.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("%d/%d MyResources Ready: %w", countTrue(ready), n, err)
		}
		for i := range list.Items {
			ready[list.Items[i].Name] = isReady(&list.Items[i])
		}
		if countTrue(ready) >= n {
			return nil
		}
		w, err := wc.Watch(ctx, &hubv1.MyResourceList{}, client.InNamespace(ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			return fmt.Errorf("%d/%d MyResources Ready: %w", countTrue(ready), n, err)
		}
		for ev := range w.ResultChan() {
			if mr, ok := ev.Object.(*hubv1.MyResource); ok {
				ready[mr.Name] = ev.Type != watch.Deleted && isReady(mr)
			}
			if countTrue(ready) >= n {
				w.Stop()
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%d/%d MyResources Ready: %w", countTrue(ready), n, ctx.Err())
		}
	}
}

func isReady(mr *hubv1.MyResource) bool {
	c := meta.FindStatusCondition(mr.Status.Conditions, hubv1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == mr.Generation
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// statusBytes is the mean JSON size of the MyResources' status in ns.
func (e *benchEnv) statusBytes(ctx context.Context, ns string) (float64, error) {
	var list hubv1.MyResourceList
	if err := e.Hub.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	total := 0
	for _, mr := range list.Items {
		n, err := jsonSize(mr.Status)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return float64(total) / float64(max(len(list.Items), 1)), nil
}

// cleanUp removes what one round left in ns, so that the next operator
// start does not resync it: the MyResources on the hub (no operator runs to
// drop their finalizers, so the benchmark does) and the objects in the members.
func (e *benchEnv) cleanUp(ctx context.Context, ns string, members []*controlplane.Cluster) error {
	var errs []error
	var list hubv1.MyResourceList
	if err := e.Hub.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for i := range list.Items {
		mr := &list.Items[i]
		if len(mr.Finalizers) > 0 {
			patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
			errs = append(errs, client.IgnoreNotFound(e.Hub.Client.Patch(ctx, mr, patch)))
		}
		errs = append(errs, client.IgnoreNotFound(e.Hub.Client.Delete(ctx, mr)))
	}
	for _, m := range members {
		errs = append(errs, client.IgnoreNotFound(m.Client.DeleteAllOf(ctx, &appsv1.Deployment{}, client.InNamespace(ns))))
		// Services have no deletecollection.
		var svcs corev1.ServiceList
		if err := m.Client.List(ctx, &svcs, client.InNamespace(ns)); err != nil {
			errs = append(errs, err)
			continue
		}
		for i := range svcs.Items {
			errs = append(errs, client.IgnoreNotFound(m.Client.Delete(ctx, &svcs.Items[i])))
		}
	}
	return errors.Join(errs...)
}

// loadAverage is the 1-minute load average, or 0 when unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return v
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// sleep waits d. The benchmark's windows are durations by definition, not
// waits for a condition.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
