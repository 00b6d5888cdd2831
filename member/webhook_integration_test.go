package member

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// What the test's mutating webhook adds to every Deployment it admits.
const (
	injectedContainer = "injected-proxy"
	injectedLabel     = "injected.example.com/sidecar"
	injectionNSLabel  = "sidecar-injection"
)

// TestApplyWithMutatingWebhook applies through a member whose mutating
// admission webhook adds a container and a label to every Deployment: the
// additions are the member's, so they must neither be fought (an apply on
// every reconcile, each answered by the webhook again) nor hide drift.
func TestApplyWithMutatingWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	g := NewWithT(t)
	env := controlplane.StartForTest(t, controlplane.Options{Members: []controlplane.MemberOptions{{Name: "m1"}}})
	m1 := env.Member("m1")
	hook := startSidecarWebhook(t)
	const ns = "injected"
	g.Expect(m1.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{injectionNSLabel: "enabled"},
	}})).To(Succeed())
	registerWebhook(t, g, m1, hook, ns)

	target := operatorTarget(t, m1, nil)
	requests := &requestCounter{}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(m1.OperatorKubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	cfg.Wrap(requests.wrap)
	counted, err := client.New(cfg, client.Options{Scheme: controlplane.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	target.Reader, target.Writer = counted, counted
	writes := &writeLog{}
	applier := &Applier{OnWrite: writes.record}
	mr := newMyResource()
	mr.Namespace, mr.UID = ns, "uid-injected"

	// Converged: the member's Deployment carries both what we applied and
	// what the webhook added, the cache has caught up with it, and an apply
	// sends nothing.
	began := time.Now()
	g.Eventually(func(g Gomega) {
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		dep := &appsv1.Deployment{}
		g.Expect(target.Cache.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: mr.Name}, dep)).To(Succeed())
		g.Expect(containerNames(dep)).To(Equal([]string{"app", "sidecar", injectedContainer}))
		g.Expect(dep.Labels).To(HaveKeyWithValue(injectedLabel, "true"))
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.27"))
		before := requests.writes()
		_, err = applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(requests.writes()).To(Equal(before), "a converged apply sends no write")
	}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
	t.Logf("converged in %s with %d writes: %v", time.Since(began).Round(time.Millisecond), requests.writes(), requests.log())

	// At rest: reconciles keep coming (as resyncs and other objects' events
	// would bring them), and none of them writes.
	atRest(t, g, m1, applier, mr, target, requests, hook, writes)

	// Drift is still reverted, and the webhook's additions stay.
	dep := getDeployment(t, g, m1, ns)
	dep.Spec.Template.Spec.Containers[0].Image = "evil:1"
	g.Expect(m1.Client.Update(t.Context(), dep)).To(Succeed())
	g.Eventually(func(g Gomega) {
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		live := getDeployment(t, g, m1, ns)
		g.Expect(live.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.27"))
		g.Expect(containerNames(live)).To(Equal([]string{"app", "sidecar", injectedContainer}))
	}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
	g.Expect(writes.take()).To(ContainElement("Apply Deployment "+ns+"/web"), "the edited image is reverted by an apply")
}

// atRest applies mr through applier for 30 s, as reconciles at rest would,
// and checks that nothing is written to the member.
func atRest(t *testing.T, g Gomega, m *controlplane.Cluster, applier *Applier, mr *hubv1.MyResource, target Target,
	requests *requestCounter, hook *sidecarWebhook, writes *writeLog) {
	t.Helper()
	ns := mr.Namespace
	writes.take()
	restWrites, restAdmissions := requests.writes(), hook.admitted.Load()
	rv := getDeployment(t, g, m, ns).ResourceVersion
	const window = 30 * time.Second
	reconciles := 0
	g.Consistently(func(g Gomega) {
		_, err := applier.Apply(t.Context(), mr, target)
		g.Expect(err).NotTo(HaveOccurred())
		reconciles++
		g.Expect(requests.writes()-restWrites).To(BeZero(), "writes at rest: %v", requests.log())
	}).WithContext(t.Context()).WithTimeout(window).WithPolling(250 * time.Millisecond).Should(Succeed())
	t.Logf("at rest for %s: %d applies through the Applier, %d writes sent, %d admissions by the webhook",
		window, reconciles, requests.writes()-restWrites, hook.admitted.Load()-restAdmissions)
	g.Expect(writes.take()).To(BeEmpty(), "OnWrite is told of real writes only")
	g.Expect(hook.admitted.Load()).To(Equal(restAdmissions), "no request reached the webhook")
	g.Expect(getDeployment(t, g, m, ns).ResourceVersion).To(Equal(rv))
}

func getDeployment(t *testing.T, g Gomega, m *controlplane.Cluster, ns string) *appsv1.Deployment {
	t.Helper()
	dep := &appsv1.Deployment{}
	g.Expect(m.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, dep)).To(Succeed())
	return dep
}

func containerNames(dep *appsv1.Deployment) []string {
	var out []string
	for _, c := range dep.Spec.Template.Spec.Containers {
		out = append(out, c.Name)
	}
	return out
}

// requestCounter counts the requests of a rest.Config that are not reads.
type requestCounter struct {
	mu   sync.Mutex
	sent []string
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.mu.Lock()
			c.sent = append(c.sent, r.Method+" "+r.URL.Path)
			c.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

func (c *requestCounter) writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent)
}

func (c *requestCounter) log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// sidecarWebhook is a mutating admission webhook served over HTTPS from the
// test process.
type sidecarWebhook struct {
	url      string
	caPEM    []byte
	admitted atomic.Int64
}

// startSidecarWebhook serves the webhook with a serving certificate for
// 127.0.0.1 signed by a CA made for this test alone.
func startSidecarWebhook(t *testing.T) *sidecarWebhook {
	t.Helper()
	g := NewWithT(t)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook-test-ca"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	g.Expect(err).NotTo(HaveOccurred())
	ca, err := x509.ParseCertificate(caDER)
	g.Expect(err).NotTo(HaveOccurred())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}, ca, &key.PublicKey, caKey)
	g.Expect(err).NotTo(HaveOccurred())

	hook := &sidecarWebhook{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(hook.serve))
	srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	hook.url = srv.URL + "/mutate"
	return hook
}

// serve adds the container and the label when missing, as injectors do, so
// that admitting its own output again changes nothing.
func (h *sidecarWebhook) serve(w http.ResponseWriter, r *http.Request) {
	review := &admissionv1.AdmissionReview{}
	if err := json.NewDecoder(r.Body).Decode(review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	h.admitted.Add(1)
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	dep := &appsv1.Deployment{}
	if err := json.Unmarshal(review.Request.Object.Raw, dep); err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Message: "decode Deployment: " + err.Error()}
	} else if patch := sidecarPatch(dep); len(patch) > 0 {
		b, _ := json.Marshal(patch)
		resp.Patch, resp.PatchType = b, ptr.To(admissionv1.PatchTypeJSONPatch)
	}
	review.Response, review.Request = resp, nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

func sidecarPatch(dep *appsv1.Deployment) []map[string]any {
	var patch []map[string]any
	if !slices.Contains(containerNames(dep), injectedContainer) {
		patch = append(patch, map[string]any{"op": "add", "path": "/spec/template/spec/containers/-",
			"value": map[string]any{"name": injectedContainer, "image": "proxy:1"}})
	}
	switch {
	case dep.Labels == nil:
		patch = append(patch, map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]string{injectedLabel: "true"}})
	case dep.Labels[injectedLabel] != "true":
		patch = append(patch, map[string]any{"op": "add",
			"path": "/metadata/labels/" + strings.ReplaceAll(injectedLabel, "/", "~1"), "value": "true"})
	}
	return patch
}

// registerWebhook points m's API server at hook for Deployments in
// namespaces labelled for injection (so the member's own controllers are
// never held up by it) and waits until the API server calls it.
func registerWebhook(t *testing.T, g Gomega, m *controlplane.Cluster, hook *sidecarWebhook, ns string) {
	t.Helper()
	g.Expect(m.Client.Create(t.Context(), &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "sidecar.injected.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(hook.url), CABundle: hook.caPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"},
				},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{injectionNSLabel: "enabled"}},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		}},
	})).To(Succeed())
	probe := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "probe"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "probe"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "probe:1"}}},
			},
		},
	}
	// The API server picks the configuration up from a watch; a dry-run
	// create says when it does, without leaving anything behind.
	g.Eventually(func(g Gomega) {
		obj := probe.DeepCopy()
		g.Expect(m.Client.Create(t.Context(), obj, client.DryRunAll)).To(Succeed())
		g.Expect(containerNames(obj)).To(ContainElement(injectedContainer))
	}).WithContext(t.Context()).WithTimeout(waitTimeout).Should(Succeed())
}
