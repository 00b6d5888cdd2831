package controlplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// Options says what to start.
type Options struct {
	// Members are the member clusters, started together with the hub.
	Members []MemberOptions
	// Dir is where certificates, data and logs go; a new temporary directory
	// when empty. StartForTest uses the test's TempDir.
	Dir string
	// BinDir holds the binaries; BinDir() when empty.
	BinDir string
	// SharedEtcd runs one etcd for all clusters, each API server under its own
	// --etcd-prefix, to fit many members on a small machine.
	SharedEtcd bool
	// LeanHub trims the hub's API server as MemberOptions.Lean does: for
	// Envs started only for their members, whose hub stays idle.
	LeanHub bool
}

// MemberOptions describes one member cluster.
type MemberOptions struct {
	// Name is the cluster name and the registry Secret's name.
	Name string
	// Labels are put on the registry Secret by Env.Register.
	Labels map[string]string
	// FakeNodes adds kube-controller-manager, kube-scheduler, kwok and fake
	// Nodes, so Deployments create Pods that become Ready.
	FakeNodes bool
	// Proxy puts a TCP proxy in front of the API server; Cluster.Kubeconfig
	// points at it, so tests can black-hole the member.
	Proxy bool
	// Lean trims the member's API server to what the operator uses of a
	// member (see leanArgs), so that a hundred fit on one small machine.
	Lean bool
}

// Env is a running hub and its members.
type Env struct {
	Hub     *Cluster
	Members []*Cluster
	Dir     string

	opts      Options
	mu        sync.Mutex // protects operators
	operators []*Operator
	stopOnce  sync.Once
	stopErr   error
}

// StartForTest starts an Env and stops it when the test ends, also when it
// fails. On failure the process logs are kept and their directory printed.
func StartForTest(t testing.TB, opts Options) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: needs kube-apiserver and etcd (make test)")
	}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "controlplane-")
		if err != nil {
			t.Fatal(err)
		}
		opts.Dir = dir
	}
	env, err := Start(t.Context(), opts)
	t.Cleanup(func() {
		if env != nil {
			if err := env.Stop(); err != nil {
				t.Errorf("stopping control planes: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("control-plane logs kept in %s", opts.Dir)
		} else {
			_ = os.RemoveAll(opts.Dir)
		}
	})
	if err != nil {
		t.Fatalf("starting control planes: %v", err)
	}
	return env
}

// Start starts the hub and every member concurrently and returns when all
// API servers are ready (and fake nodes registered). On error, whatever was
// started is stopped.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	if opts.Dir == "" {
		if opts.Dir, err = os.MkdirTemp("", "controlplane-"); err != nil {
			return nil, err
		}
	}
	if opts.BinDir == "" {
		if opts.BinDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	env = &Env{Dir: opts.Dir, opts: opts}
	env.Hub = env.newCluster("hub", false, opts.LeanHub)
	for _, m := range opts.Members {
		env.Members = append(env.Members, env.newCluster(m.Name, m.Proxy, m.Lean))
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, env.Stop())
			env = nil
		}
	}()
	all := env.clusters()
	if opts.SharedEtcd {
		e, err := startEtcd(ctx, env.Hub, opts.BinDir)
		if err != nil {
			return env, err
		}
		for _, c := range all {
			c.etcd, c.prefix = e, "/"+c.Name
		}
	}
	var g errgroup.Group
	for i, c := range all {
		g.Go(func() error {
			if c.etcd == nil {
				e, err := startEtcd(ctx, c, opts.BinDir)
				c.etcd = e
				if err != nil {
					return fmt.Errorf("cluster %s: etcd: %w", c.Name, err)
				}
			}
			if err := c.start(ctx); err != nil {
				return fmt.Errorf("cluster %s: %w", c.Name, err)
			}
			if i > 0 && opts.Members[i-1].FakeNodes {
				if err := c.startFakeNodes(ctx); err != nil {
					return fmt.Errorf("cluster %s: fake nodes: %w", c.Name, err)
				}
			}
			return nil
		})
	}
	return env, g.Wait()
}

func (e *Env) newCluster(name string, proxy, lean bool) *Cluster {
	c := &Cluster{Name: name, Dir: filepath.Join(e.Dir, name), bins: e.opts.BinDir, prefix: "/registry", lean: lean}
	must(os.MkdirAll(c.Dir, 0o700))
	if proxy {
		c.Proxy = &Proxy{}
	}
	return c
}

func (e *Env) clusters() []*Cluster {
	return append([]*Cluster{e.Hub}, e.Members...)
}

// Member returns the member named name, or nil.
func (e *Env) Member(name string) *Cluster {
	for _, m := range e.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Labels are the labels member name was started with.
func (e *Env) Labels(name string) map[string]string {
	for _, m := range e.opts.Members {
		if m.Name == name {
			return maps.Clone(m.Labels)
		}
	}
	return nil
}

// Register creates (or updates) member's registry Secret on the hub in
// namespace, exactly as the contract says: named after the member, labelled
// example.com/member-cluster=true plus labels (the member's start-up labels
// when labels is nil), the operator identity's kubeconfig under key "kubeconfig".
func (e *Env) Register(ctx context.Context, member *Cluster, namespace string, labels map[string]string) error {
	if labels == nil {
		labels = e.Labels(member.Name)
	}
	return RegisterKubeconfig(ctx, e.Hub, namespace, member.Name, member.OperatorKubeconfig, labels)
}

// RegisterKubeconfig writes a registry Secret named name holding kubeconfig,
// whatever it contains (tests of hostile Secrets use it directly).
func RegisterKubeconfig(ctx context.Context, hub *Cluster, namespace, name string, kubeconfig []byte, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := hub.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	l := maps.Clone(labels)
	if l == nil {
		l = map[string]string{}
	}
	l[hubv1.MemberClusterLabel] = "true"
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: l},
		Data:       map[string][]byte{hubv1.KubeconfigKey: kubeconfig},
	}
	err := hub.Client.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		var cur corev1.Secret
		if err := hub.Client.Get(ctx, client.ObjectKeyFromObject(s), &cur); err != nil {
			return err
		}
		cur.Labels, cur.Data = s.Labels, s.Data
		return hub.Client.Update(ctx, &cur)
	}
	return err
}

// Pids lists every process the Env runs.
func (e *Env) Pids() []int {
	var pids []int
	for _, c := range e.clusters() {
		if c != nil {
			pids = append(pids, c.Pids()...)
		}
	}
	return pids
}

// Stop stops every process, members first, and waits for them to exit.
// It is safe to call more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var (
			mu   sync.Mutex
			errs []error
			wg   sync.WaitGroup
		)
		e.mu.Lock()
		for _, o := range e.operators {
			if o.Running() {
				errs = append(errs, o.Stop())
			}
		}
		e.mu.Unlock()
		for _, c := range e.Members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.stop()
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}()
		}
		wg.Wait()
		// The hub goes last: with SharedEtcd it owns the etcd the members use.
		if e.Hub != nil {
			errs = append(errs, e.Hub.stop())
		}
		e.stopErr = joinErrs(errs)
	})
	return e.stopErr
}

func joinErrs(errs []error) error { return errors.Join(errs...) }
