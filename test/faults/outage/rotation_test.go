package outage

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

func TestKubeconfigRotationReconnectsWithoutRestartOrFlap(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	m1 := env.Member("m1")
	credsNS := newMemberNamespace(t, m1)
	t.Cleanup(func() { reRegister(t, "m1") })

	tokenA := newIdentity(t, m1, credsNS, "hub-a")
	g.Expect(registerToken(ctx, m1, tokenA)).To(Succeed())
	op := startOperator(t, "rotation")
	pid := op.Pid()

	ns := newNamespace(t)
	mrs := []*hubv1.MyResource{newMyResource(ns, "web", "m1"), newMyResource(ns, "both", "m1", "m2")}
	for _, mr := range mrs {
		g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	}
	for _, mr := range mrs {
		eventuallyReady(t, mr, 120*time.Second)
	}

	watch := watchReady(t, mrs)
	tokenB := newIdentity(t, m1, credsNS, "hub-b")
	logFrom := logLen(t, op)
	g.Expect(registerToken(ctx, m1, tokenB)).To(Succeed())
	rotated := time.Now()
	g.Eventually(func(g Gomega) {
		g.Expect(logSince(g, op, logFrom)).To(ContainElement(And(ContainSubstring(`"msg":"Engaged cluster"`), ContainSubstring(`"cluster":"m1"`))),
			"the operator reconnected to m1 with the new kubeconfig")
	}).WithTimeout(60 * time.Second).Should(Succeed())
	t.Logf("reconnected to m1 with the new credentials %s after the registry Secret changed", since(rotated))

	// Revoke the old identity: deleting its ServiceAccount invalidates its tokens.
	g.Expect(m1.Client.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: credsNS, Name: "hub-a"}})).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsUnauthorized(tokenWorks(ctx, m1, tokenA)) }).
		WithTimeout(30*time.Second).Should(BeTrue(), "the old token is rejected")
	g.Expect(tokenWorks(ctx, m1, tokenB)).To(Succeed(), "the new token works")
	revoked := time.Now()
	// The watch goes on for two probe intervals and a probe timeout after the
	// revocation: a member still reached with the old credentials would turn
	// Unreachable within them. The operator keeps running throughout.
	g.Consistently(func(g Gomega) {
		g.Expect(op.Running()).To(BeTrue())
		g.Expect(op.Pid()).To(Equal(pid), "no restart")
	}).WithTimeout(2*probeInterval + probeTimeout).WithPolling(200 * time.Millisecond).Should(Succeed())
	longest := watch.stop()
	t.Logf("longest not-Ready stretch of a MyResource on m1 from the rotation to %s after the revocation: %s (issue's bound: one probe interval, %s; %d samples)",
		since(revoked), longest, probeInterval, watch.samples)
	// The issue allows one probe interval; the registry hands a rotated
	// cluster over without a gap, so no sample may see it not Ready (with
	// break-before-make it was 0.85-2.7 s on this machine).
	g.Expect(longest).To(BeZero(), "no MyResource on m1 is ever seen not Ready during the rotation")

	// The operator's requests to m1 succeed with the new credentials only.
	cur := get(ctx, g, mrs[0])
	cur.Spec.Deployment.Template.Spec.Containers[0].Image = "nginx:1.29"
	g.Expect(env.Hub.Client.Update(ctx, cur)).To(Succeed())
	changed := time.Now()
	eventuallyReady(t, mrs[0], 90*time.Second)
	g.Expect(memberDeployment(t, "m1", ns, "web").Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.29"))
	t.Logf("a spec change reached m1 and was Ready %s after it was written, after the revocation", since(changed))
}

// newMemberNamespace creates a namespace in a member for one test's
// credentials and deletes it when the test ends.
func newMemberNamespace(t *testing.T, m *controlplane.Cluster) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "hub-credentials-"}}
	NewWithT(t).Expect(m.Client.Create(t.Context(), ns)).To(Succeed())
	t.Cleanup(func() { _ = m.Client.Delete(cleanupContext(t), ns) })
	return ns.Name
}

// newIdentity creates a ServiceAccount bound to cluster-admin in a member and
// returns a token for it from the TokenRequest API.
func newIdentity(t *testing.T, m *controlplane.Cluster, ns, name string) string {
	t.Helper()
	g := NewWithT(t)
	ctx := t.Context()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	g.Expect(m.Client.Create(ctx, sa)).To(Succeed())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	}
	g.Expect(m.Client.Create(ctx, binding)).To(Succeed())
	t.Cleanup(func() { _ = m.Client.Delete(cleanupContext(t), binding) })
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	g.Expect(m.Client.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	g.Expect(tr.Status.Token).NotTo(BeEmpty())
	return tr.Status.Token
}

// registerToken points the member's registry Secret at a token kubeconfig.
func registerToken(ctx context.Context, m *controlplane.Cluster, token string) error {
	kc, err := m.TokenKubeconfig(token)
	if err != nil {
		return err
	}
	return controlplane.RegisterKubeconfig(ctx, env.Hub, registryNS, m.Name, kc, env.Labels(m.Name))
}

// tokenWorks lists namespaces in the member with a bearer token.
func tokenWorks(ctx context.Context, m *controlplane.Cluster, token string) error {
	cfg := &rest.Config{Host: m.Host(), BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: m.Config.CAData}}
	c, err := client.New(cfg, client.Options{Scheme: controlplane.Scheme()})
	if err != nil {
		return err
	}
	return c.List(ctx, &corev1.NamespaceList{}, client.Limit(1))
}

func logLen(t *testing.T, op *controlplane.Operator) int {
	t.Helper()
	logs, err := op.Logs()
	if err != nil {
		t.Fatal(err)
	}
	return len(logs)
}

// logSince returns the operator's log lines written after offset.
func logSince(g Gomega, op *controlplane.Operator, offset int) []string {
	logs, err := op.Logs()
	g.Expect(err).NotTo(HaveOccurred())
	return strings.Split(logs[min(offset, len(logs)):], "\n")
}

// readyWatch polls MyResources' Ready condition every 200 ms and keeps the
// longest stretch during which one of them was not Ready, counted from the
// last sample that saw it Ready (an upper bound, off by at most one period).
type readyWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	longest time.Duration
	samples int
}

func watchReady(t *testing.T, mrs []*hubv1.MyResource) *readyWatch {
	ctx, cancel := context.WithCancel(t.Context())
	w := &readyWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		notReadySince, lastReady := map[string]time.Time{}, map[string]time.Time{}
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, mr := range mrs {
				w.observe(ctx, mr, notReadySince, lastReady)
			}
			select {
			case <-ctx.Done():
				for _, since := range notReadySince {
					w.longest = max(w.longest, time.Since(since))
				}
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *readyWatch) observe(ctx context.Context, mr *hubv1.MyResource, notReadySince, lastReady map[string]time.Time) {
	got := &hubv1.MyResource{}
	if err := env.Hub.Client.Get(ctx, client.ObjectKeyFromObject(mr), got); err != nil {
		return
	}
	w.samples++
	now := time.Now()
	if !suite.IsReady(got) {
		if _, ok := notReadySince[mr.Name]; !ok {
			notReadySince[mr.Name] = now
			if last, ok := lastReady[mr.Name]; ok {
				notReadySince[mr.Name] = last
			}
		}
		return
	}
	lastReady[mr.Name] = now
	if since, ok := notReadySince[mr.Name]; ok {
		w.longest = max(w.longest, now.Sub(since))
		delete(notReadySince, mr.Name)
	}
}

// stop ends the polling and returns the longest not-Ready stretch.
func (w *readyWatch) stop() time.Duration {
	w.cancel()
	<-w.done
	return w.longest.Round(10 * time.Millisecond)
}
