package clusterregistry_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/test/controlplane"
)

const (
	registryNamespace = "hub-registry"
	// leakToken is the token of the hostile kubeconfigs; it must never show
	// up in a log, an event or ClusterInfo.
	leakToken = "leak-canary-token-9b1e4d7f"
	wait      = 30 * time.Second
	// imageIndex is a field index on Deployments, by their first image.
	imageIndex = "spec.image"
	poll       = 100 * time.Millisecond
)

// TestProviderAgainstRealClusters drives the provider through a hub and two
// members (m2 behind a black-hole proxy) with real API servers. The steps
// share one environment because starting control planes is the expensive part;
// each step leaves the registry in the state the next one expects.
func TestProviderAgainstRealClusters(t *testing.T) {
	logs := captureLogs()
	env := controlplane.StartForTest(t, controlplane.Options{Members: []controlplane.MemberOptions{
		{Name: "m1", Labels: map[string]string{"env": "prod"}},
		{Name: "m2", Labels: map[string]string{"env": "dev"}, Proxy: true},
	}})
	ctx := t.Context()
	m1, m2 := env.Member("m1"), env.Member("m2")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator logs:\n%s", logs.String())
		}
	})

	probes := &probeLog{}
	provider := clusterregistry.New(clusterregistry.Options{
		Namespace:         registryNamespace,
		ForbiddenHosts:    []string{env.Hub.Host()},
		ProbeInterval:     time.Second,
		ProbeTimeout:      time.Second,
		CacheSyncTimeout:  5 * time.Second,
		ConnectBackoff:    100 * time.Millisecond,
		MaxConnectBackoff: 2 * time.Second,
		ObserveProbe:      probes.observe,
	})
	mgr := newProviderManager(t, env, provider)
	// Indexes registered before start must reach every cluster engaged later.
	if err := mgr.GetFieldIndexer().IndexField(ctx, &appsv1.Deployment{}, imageIndex, func(o client.Object) []string {
		// A Deployment not managed by hub-operator is cached by name only.
		if c := o.(*appsv1.Deployment).Spec.Template.Spec.Containers; len(c) > 0 {
			return []string{c[0].Image}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	engaged := &engagements{}
	if err := mgr.Add(engaged); err != nil {
		t.Fatal(err)
	}
	notified := &notifications{}
	provider.Subscribe(notified.add)

	// m1 exists before the provider starts: Start registers it before Synced.
	if err := env.Register(ctx, m1, registryNamespace, nil); err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)

	t.Run("Secrets present at start are registered when Synced closes", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(provider.Synced()).WithContext(ctx).WithTimeout(wait).Should(BeClosed())
		info, ok := provider.Lookup("m1")
		g.Expect(ok).To(BeTrue())
		g.Expect(info.State).To(BeElementOf(clusterregistry.StateConnecting, clusterregistry.StateReady))
	})

	t.Run("a member that never answers does not hold up the others", func(t *testing.T) {
		g := NewWithT(t)
		ghost := blackHole(t)
		g.Expect(controlplane.RegisterKubeconfig(ctx, env.Hub, registryNamespace, "ghost",
			tokenKubeconfig("https://"+ghost, ""), nil)).To(Succeed())
		g.Expect(env.Register(ctx, m2, registryNamespace, nil)).To(Succeed())

		g.Eventually(func(g Gomega) {
			g.Expect(states(provider)).To(Equal(map[string]clusterregistry.State{
				"ghost": clusterregistry.StateUnreachable,
				"m1":    clusterregistry.StateReady,
				"m2":    clusterregistry.StateReady,
			}))
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())

		info, _ := provider.Lookup("ghost")
		g.Expect(info.Reason).To(Equal(hubv1.ReasonClusterUnreachable))
		g.Expect(info.Message).To(Equal("cluster did not answer within 1s"))
		_, err := provider.Get(ctx, "ghost")
		g.Expect(errors.Is(err, multicluster.ErrClusterNotFound)).To(BeTrue())
		g.Expect(deleteSecret(ctx, env.Hub, "ghost")).To(Succeed())
	})

	t.Run("ready members are engaged, labelled and listed in name order", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(provider.List).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(HaveLen(2))
		list := provider.List()
		g.Expect(list[0].Name).To(Equal("m1"))
		g.Expect(list[0].Labels).To(Equal(map[string]string{"env": "prod", hubv1.MemberClusterLabel: "true"}))
		g.Expect(list[0].Reason).To(Equal(hubv1.ReasonAsExpected))
		g.Expect(list[1].Name).To(Equal("m2"))

		for _, name := range []string{"m1", "m2"} {
			cl, err := provider.Get(ctx, multicluster.ClusterName(name))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(engaged.live(name)).To(BeIdenticalTo(cl))
			g.Expect(cl.GetClient().List(ctx, &appsv1.DeploymentList{})).To(Succeed())
		}
	})

	t.Run("health is recorded on the registry Secrets once, and not rewritten at rest", func(t *testing.T) {
		g := NewWithT(t)
		var rv map[string]string
		g.Eventually(func(g Gomega) {
			rv = map[string]string{}
			for _, name := range []string{"m1", "m2"} {
				s := registrySecret(ctx, g, env.Hub, name)
				g.Expect(s.Annotations).To(HaveKeyWithValue(hubv1.ClusterStateAnnotation, "Ready"))
				g.Expect(s.Annotations).To(HaveKeyWithValue(hubv1.ClusterReasonAnnotation, hubv1.ReasonAsExpected))
				g.Expect(s.Annotations).To(HaveKeyWithValue(hubv1.ClusterMessageAnnotation, "cluster is connected"))
				_, err := time.Parse(time.RFC3339, s.Annotations[hubv1.ClusterLastTransitionAnnotation])
				g.Expect(err).NotTo(HaveOccurred())
				rv[name] = s.ResourceVersion
			}
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())
		// Three probe intervals of successful probes change nothing.
		g.Consistently(func(g Gomega) {
			for name, v := range rv {
				g.Expect(registrySecret(ctx, g, env.Hub, name).ResourceVersion).To(Equal(v), name)
			}
		}).WithContext(ctx).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	})

	t.Run("member caches hold the objects the operator owns without managedFields, and foreign Deployments by name only", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(m1.Client.Create(ctx, deployment("owned", map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue}))).To(Succeed())
		g.Expect(m1.Client.Create(ctx, deployment("foreign", nil))).To(Succeed())
		cl, err := provider.Get(ctx, "m1")
		g.Expect(err).NotTo(HaveOccurred())

		g.Eventually(func(g Gomega) {
			var list appsv1.DeploymentList
			g.Expect(cl.GetCache().List(ctx, &list, client.InNamespace(metav1.NamespaceDefault))).To(Succeed())
			byName := map[string]appsv1.Deployment{}
			for _, d := range list.Items {
				byName[d.Name] = d
			}
			g.Expect(byName).To(HaveLen(2))
			g.Expect(byName["owned"].ManagedFields).To(BeEmpty())
			g.Expect(byName["owned"].Spec.Template.Spec.Containers).To(HaveLen(1))
			foreign := byName["foreign"]
			g.Expect(foreign.UID).NotTo(BeEmpty())
			g.Expect(foreign.Labels).To(BeEmpty())
			g.Expect(foreign.Spec).To(Equal(appsv1.DeploymentSpec{}), "a foreign Deployment is held by name only")

			g.Expect(cl.GetCache().List(ctx, &list, client.MatchingFields{imageIndex: "example.com/app:1"})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())
	})

	t.Run("relabelling a Secret updates the cluster's labels and notifies subscribers", func(t *testing.T) {
		g := NewWithT(t)
		notified.reset()
		g.Expect(env.Register(ctx, m1, registryNamespace, map[string]string{"env": "staging", "tier": "gold"})).To(Succeed())

		g.Eventually(func(g Gomega) {
			info, ok := provider.Lookup("m1")
			g.Expect(ok).To(BeTrue())
			g.Expect(info.Labels).To(HaveKeyWithValue("env", "staging"))
			g.Expect(info.Labels).To(HaveKeyWithValue("tier", "gold"))
			g.Expect(info.State).To(Equal(clusterregistry.StateReady))
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())
		g.Eventually(notified.names).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(ContainElement("m1"))
		g.Expect(notified.names()).NotTo(ContainElement("m2"))
	})

	t.Run("an invalid kubeconfig is reported with a Warning event and leaks nothing", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(controlplane.RegisterKubeconfig(ctx, env.Hub, registryNamespace, "exec",
			execKubeconfig(), map[string]string{"env": "prod"})).To(Succeed())
		g.Expect(controlplane.RegisterKubeconfig(ctx, env.Hub, registryNamespace, "hub-itself",
			tokenKubeconfig(env.Hub.Host(), leakToken), nil)).To(Succeed())

		want := map[string]string{
			"exec":       "kubeconfig uses an exec credential plugin, which is not allowed",
			"hub-itself": "kubeconfig server is a forbidden host (the hub's own API server)",
		}
		for name, msg := range want {
			g.Eventually(func(g Gomega) {
				info, ok := provider.Lookup(name)
				g.Expect(ok).To(BeTrue())
				g.Expect(info.State).To(Equal(clusterregistry.StateInvalid))
				g.Expect(info.Reason).To(Equal(hubv1.ReasonInvalidKubeconfig))
				g.Expect(info.Message).To(Equal(msg))
				g.Expect(info.Labels).NotTo(BeNil())
			}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())

			g.Eventually(func(g Gomega) {
				var events eventsv1.EventList
				g.Expect(env.Hub.Client.List(ctx, &events, client.InNamespace(registryNamespace))).To(Succeed())
				var found []eventsv1.Event
				for _, e := range events.Items {
					if e.Regarding.Kind == "Secret" && e.Regarding.Name == name {
						found = append(found, e)
					}
				}
				g.Expect(found).To(HaveLen(1))
				g.Expect(found[0].Type).To(Equal(corev1.EventTypeWarning))
				g.Expect(found[0].Reason).To(Equal(hubv1.ReasonInvalidKubeconfig))
				g.Expect(found[0].Note).To(Equal(msg))
			}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())

			g.Eventually(func(g Gomega) {
				a := registrySecret(ctx, g, env.Hub, name).Annotations
				g.Expect(a).To(HaveKeyWithValue(hubv1.ClusterStateAnnotation, "Invalid"))
				g.Expect(a).To(HaveKeyWithValue(hubv1.ClusterReasonAnnotation, hubv1.ReasonInvalidKubeconfig))
				g.Expect(a).To(HaveKeyWithValue(hubv1.ClusterMessageAnnotation, msg))
				for _, v := range a {
					g.Expect(v).NotTo(ContainSubstring(leakToken))
				}
			}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())
		}
		_, err := provider.Get(ctx, "exec")
		g.Expect(errors.Is(err, multicluster.ErrClusterNotFound)).To(BeTrue())
	})

	t.Run("a black-holed member turns Unreachable within two probe intervals while the other stays Ready", func(t *testing.T) {
		g := NewWithT(t)
		m2.Proxy.Cut()
		cutAt := time.Now()
		restored := false
		defer func() {
			if !restored {
				m2.Proxy.Restore()
			}
		}()

		g.Eventually(func() clusterregistry.State {
			info, _ := provider.Lookup("m2")
			return info.State
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Equal(clusterregistry.StateUnreachable))
		// Two probe intervals (1s each) plus the probe timeout (1s), and slack
		// for a busy machine.
		g.Expect(time.Since(cutAt)).To(BeNumerically("<", 5*time.Second))
		info, _ := provider.Lookup("m2")
		g.Expect(info.Reason).To(Equal(hubv1.ReasonClusterUnreachable))
		g.Expect(info.Message).To(Equal("cluster did not answer within 1s"))
		_, err := provider.Get(ctx, "m2")
		g.Expect(err).NotTo(HaveOccurred(), "an unreachable cluster stays engaged")

		// m1 keeps being probed on time, and answering, while m2 hangs.
		g.Consistently(func() clusterregistry.State {
			info, _ := provider.Lookup("m1")
			return info.State
		}).WithContext(ctx).WithTimeout(3 * time.Second).WithPolling(poll).Should(Equal(clusterregistry.StateReady))
		g.Expect(probes.successesSince("m1", cutAt)).To(BeNumerically(">=", 3))
		g.Eventually(func(g Gomega) {
			a := registrySecret(ctx, g, env.Hub, "m2").Annotations
			g.Expect(a).To(HaveKeyWithValue(hubv1.ClusterStateAnnotation, "Unreachable"))
			g.Expect(a).To(HaveKeyWithValue(hubv1.ClusterMessageAnnotation, "cluster did not answer within 1s"))
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())

		notified.reset()
		m2.Proxy.Restore()
		restored = true
		g.Eventually(func() clusterregistry.State {
			info, _ := provider.Lookup("m2")
			return info.State
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Equal(clusterregistry.StateReady))
		g.Eventually(notified.names).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(ContainElement("m2"))
		g.Eventually(func(g Gomega) {
			a := registrySecret(ctx, g, env.Hub, "m2").Annotations
			g.Expect(a).To(HaveKeyWithValue(hubv1.ClusterStateAnnotation, "Ready"))
			at, err := time.Parse(time.RFC3339, a[hubv1.ClusterLastTransitionAnnotation])
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(at).To(BeTemporally(">=", cutAt.Truncate(time.Second)), "the transition time moved")
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())
	})

	t.Run("a stopped API server is reported as refusing, and recovers when restarted", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(m1.StopAPIServer()).To(Succeed())
		g.Eventually(func(g Gomega) {
			info, _ := provider.Lookup("m1")
			g.Expect(info.State).To(Equal(clusterregistry.StateUnreachable))
			g.Expect(info.Message).To(Equal("cluster refused the connection"))
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Succeed())

		g.Expect(m1.StartAPIServer(ctx)).To(Succeed())
		g.Eventually(func() clusterregistry.State {
			info, _ := provider.Lookup("m1")
			return info.State
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Equal(clusterregistry.StateReady))
	})

	t.Run("a changed kubeconfig replaces the cluster, which serves and stays Ready meanwhile", func(t *testing.T) {
		g := NewWithT(t)
		old, err := provider.Get(ctx, "m2")
		g.Expect(err).NotTo(HaveOccurred())
		oldCtx := engaged.ctx("m2")

		g.Expect(controlplane.RegisterKubeconfig(ctx, env.Hub, registryNamespace, "m2", m2.Kubeconfig, env.Labels("m2"))).To(Succeed())
		seen := map[clusterregistry.State]bool{}
		g.Eventually(func(g Gomega) {
			info, _ := provider.Lookup("m2")
			seen[info.State] = true
			cl, err := provider.Get(ctx, "m2")
			g.Expect(err).NotTo(HaveOccurred(), "a connected cluster is handed out throughout")
			g.Expect(cl).NotTo(BeIdenticalTo(old))
			g.Expect(engaged.live("m2")).To(BeIdenticalTo(cl))
		}).WithContext(ctx).WithTimeout(wait).WithPolling(poll / 10).Should(Succeed())
		g.Expect(oldCtx.Err()).To(HaveOccurred(), "the old cluster is disengaged")
		g.Expect(seen).To(Equal(map[clusterregistry.State]bool{clusterregistry.StateReady: true}), "never Connecting on the way")
	})

	t.Run("deleting a Secret or removing its label removes the cluster", func(t *testing.T) {
		g := NewWithT(t)
		m1Ctx, m2Ctx := engaged.ctx("m1"), engaged.ctx("m2")

		g.Expect(deleteSecret(ctx, env.Hub, "m1")).To(Succeed())
		var s corev1.Secret
		g.Expect(env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: registryNamespace, Name: "m2"}, &s)).To(Succeed())
		delete(s.Labels, hubv1.MemberClusterLabel)
		g.Expect(env.Hub.Client.Update(ctx, &s)).To(Succeed())

		for name, engagedCtx := range map[string]context.Context{"m1": m1Ctx, "m2": m2Ctx} {
			g.Eventually(func() bool {
				_, ok := provider.Lookup(name)
				return ok
			}).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(BeFalse())
			g.Eventually(engagedCtx.Done()).WithContext(ctx).WithTimeout(wait).Should(BeClosed())
			_, err := provider.Get(ctx, multicluster.ClusterName(name))
			g.Expect(errors.Is(err, multicluster.ErrClusterNotFound)).To(BeTrue())
		}
		// Nothing was deleted in the member.
		g.Expect(m1.Client.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: "owned"}, &appsv1.Deployment{})).To(Succeed())
	})

	t.Run("no kubeconfig content reached the logs", func(t *testing.T) {
		g := NewWithT(t)
		out := logs.String()
		g.Expect(out).NotTo(BeEmpty())
		g.Expect(out).NotTo(ContainSubstring(leakToken))
		g.Expect(out).NotTo(ContainSubstring("BEGIN"))
		for _, m := range []*controlplane.Cluster{m1, m2} {
			for _, kc := range [][]byte{m.Kubeconfig, m.OperatorKubeconfig} {
				g.Expect(out).NotTo(ContainSubstring(base64.StdEncoding.EncodeToString(kc)[:32]))
			}
		}
	})
}

// registrySecret reads a registry Secret from the hub's API server.
func registrySecret(ctx context.Context, g Gomega, hub *controlplane.Cluster, name string) *corev1.Secret {
	var s corev1.Secret
	g.Expect(hub.Client.Get(ctx, client.ObjectKey{Namespace: registryNamespace, Name: name}, &s)).To(Succeed())
	return &s
}

// newProviderManager is a hub manager on env's hub whose provider is
// provider, with the provider's Secret controller set up.
func newProviderManager(t *testing.T, env *controlplane.Env, provider *clusterregistry.Provider) mcmanager.Manager {
	t.Helper()
	mgr, err := mcmanager.New(env.Hub.Config, provider, manager.Options{
		Scheme:     controlplane.Scheme(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{ByObject: clusterregistry.HubCacheByObject(registryNamespace)},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := provider.SetupWithManager(t.Context(), mgr); err != nil {
		t.Fatal(err)
	}
	return mgr
}

// startManager runs mgr until the test ends.
func startManager(t *testing.T, mgr mcmanager.Manager) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	})
}

// states maps every registered cluster to its State.
func states(p *clusterregistry.Provider) map[string]clusterregistry.State {
	out := map[string]clusterregistry.State{}
	for _, info := range p.List() {
		out[info.Name] = info.State
	}
	return out
}

func deployment(name string, labels map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/app:1"}}},
			},
		},
	}
}

// tokenKubeconfig is a kubeconfig for server with a bearer token and no CA.
func tokenKubeconfig(server, token string) []byte {
	if token == "" {
		token = leakToken
	}
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: c
contexts:
- name: c
  context: {cluster: k, user: u}
clusters:
- name: k
  cluster: {server: %q}
users:
- name: u
  user: {token: %q}
`, server, token))
}

// execKubeconfig runs a credential plugin, with a token among its arguments
// to catch any echo of the input.
func execKubeconfig() []byte {
	return []byte(`apiVersion: v1
kind: Config
current-context: c
contexts:
- name: c
  context: {cluster: k, user: u}
clusters:
- name: k
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /bin/sh
      args: ["-c", "echo ` + leakToken + `"]
`)
}

// blackHole listens on a local port, accepts connections and never answers
// them, like a member behind a dead network path.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// engagements is a multicluster-aware runnable recording what the provider
// engages, standing in for the hub's controllers.
type engagements struct {
	mu   sync.Mutex
	last map[string]engagement
}

type engagement struct {
	ctx context.Context
	cl  cluster.Cluster
}

var _ mcmanager.Runnable = &engagements{}

func (e *engagements) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (e *engagements) Engage(ctx context.Context, name multicluster.ClusterName, cl cluster.Cluster) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		e.last = map[string]engagement{}
	}
	e.last[string(name)] = engagement{ctx: ctx, cl: cl}
	return nil
}

// live returns the cluster engaged last under name if its engagement is live.
func (e *engagements) live(name string) cluster.Cluster {
	e.mu.Lock()
	defer e.mu.Unlock()
	if en, ok := e.last[name]; ok && en.ctx.Err() == nil {
		return en.cl
	}
	return nil
}

func (e *engagements) ctx(name string) context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last[name].ctx
}

type notifications struct {
	mu  sync.Mutex
	got []string
}

func (n *notifications) add(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, name)
}

func (n *notifications) reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = nil
}

func (n *notifications) names() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got...)
}

type probeResult struct {
	cluster string
	at      time.Time
	d       time.Duration
	err     error
}

type probeLog struct {
	mu      sync.Mutex
	results []probeResult
}

func (l *probeLog) observe(cluster string, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, probeResult{cluster: cluster, at: time.Now(), d: d, err: err})
}

// successesSince counts the cluster's successful probes started after t.
func (l *probeLog) successesSince(cluster string, t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.results {
		if r.cluster == cluster && r.err == nil && r.at.Add(-r.d).After(t) {
			n++
		}
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) write(prefix, args string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(prefix + " " + args + "\n")
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	logsOnce sync.Once
	logBuf   *syncBuffer
)

// captureLogs sends controller-runtime's and client-go's logs, up to the
// project's highest verbosity (5), to a buffer the test searches for leaked
// secrets. Above that client-go dumps request and response bodies, Secrets
// included, by design. The loggers are process-wide, hence once.
func captureLogs() *syncBuffer {
	logsOnce.Do(func() {
		logBuf = &syncBuffer{}
		l := funcr.New(logBuf.write, funcr.Options{Verbosity: 5})
		ctrl.SetLogger(l)
		klog.SetLogger(l)
	})
	return logBuf
}

func deleteSecret(ctx context.Context, hub *controlplane.Cluster, name string) error {
	return hub.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: registryNamespace, Name: name}})
}
