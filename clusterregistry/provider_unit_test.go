package clusterregistry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	hubv1 "example.com/hub-operator/api/v1"
)

func TestDescribe(t *testing.T) {
	p := New(Options{ProbeTimeout: 2 * time.Second, CacheSyncTimeout: 7 * time.Second})
	gr := schema.GroupResource{Resource: "readyz"}
	refused := &url.Error{Op: "Get", URL: "https://10.0.0.1/readyz", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "a cache that did not sync names the timeout and the likely cause", err: errCacheSync,
			want: "cluster cache did not sync within 7s: check that the operator may list and watch Deployments and Services in the cluster"},
		{name: "a cluster that stopped by itself is a lost connection", err: errors.Join(errClusterStopped, errors.New("x")),
			want: "connection to the cluster was lost"},
		{name: "401 means the credentials were rejected", err: fmt.Errorf("probing: %w", apierrors.NewUnauthorized("token "+testToken)),
			want: "cluster rejected the kubeconfig's credentials (401 Unauthorized)"},
		{name: "403 means access was denied", err: apierrors.NewForbidden(gr, "", errors.New(testToken)),
			want: "cluster denied access to its health endpoint (403 Forbidden)"},
		{name: "an untrusted serving certificate is reported as such", err: fmt.Errorf("get: %w", x509.UnknownAuthorityError{}),
			want: "cluster's serving certificate does not verify against the kubeconfig's certificate authority or server name"},
		{name: "an unknown host is reported as such", err: &url.Error{Op: "Get", URL: "https://nope/", Err: &net.DNSError{Err: "no such host", Name: "nope"}},
			want: "cluster's host name does not resolve"},
		{name: "a refused connection is reported as such", err: refused,
			want: "cluster refused the connection"},
		{name: "a deadline names the probe timeout", err: fmt.Errorf("probing: %w", context.DeadlineExceeded),
			want: "cluster did not answer within 2s"},
		{name: "a failing readyz names the status code", err: apierrors.NewInternalError(errors.New("etcd " + testToken)),
			want: "cluster's API server is not ready (HTTP 500)"},
		{name: "anything else is generic and never echoes the error", err: errors.New("boom " + testToken),
			want: "cluster is unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(p.describe(tt.err)).To(Equal(tt.want))
		})
	}
}

func TestSubscriberCoalescesWhileBusy(t *testing.T) {
	g := NewWithT(t)
	stop := make(chan struct{})
	defer close(stop)

	var (
		mu    sync.Mutex
		calls = map[string]int{}
	)
	entered := make(chan struct{})
	release := make(chan struct{})
	first := true
	s := newSubscriber(func(name string) {
		mu.Lock()
		calls[name]++
		wasFirst := first
		first = false
		mu.Unlock()
		if wasFirst {
			close(entered)
			<-release
		}
	})
	go s.run(stop)

	s.notify("a")
	g.Eventually(entered).Should(BeClosed())
	// While the callback is busy, notifying never blocks and piles up nothing.
	for range 100 {
		s.notify("b")
	}
	s.notify("a")
	close(release)

	g.Eventually(func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return map[string]int{"a": calls["a"], "b": calls["b"]}
	}).Should(Equal(map[string]int{"a": 2, "b": 1}))
}

func TestRegistryPredicate(t *testing.T) {
	p := New(Options{Namespace: "registry"})
	pred := p.registryPredicate()
	secret := func(ns string, registered bool) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "m1", Labels: map[string]string{"env": "prod"}}}
		if registered {
			s.Labels[hubv1.MemberClusterLabel] = memberClusterLabelValue
		}
		return s
	}
	tests := []struct {
		name     string
		old, obj *corev1.Secret
		want     bool
	}{
		{name: "a labelled Secret in the registry namespace passes", obj: secret("registry", true), want: true},
		{name: "an unlabelled Secret is ignored", obj: secret("registry", false), want: false},
		{name: "a labelled Secret in another namespace is ignored", obj: secret("other", true), want: false},
		{name: "an update removing the label passes, so the cluster is removed", old: secret("registry", true), obj: secret("registry", false), want: true},
		{name: "an update adding the label passes", old: secret("registry", false), obj: secret("registry", true), want: true},
		{name: "an update of an unrelated Secret is ignored", old: secret("registry", false), obj: secret("registry", false), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			if tt.old != nil {
				g.Expect(pred.Update(event.UpdateEvent{ObjectOld: tt.old, ObjectNew: tt.obj})).To(Equal(tt.want))
				return
			}
			g.Expect(pred.Create(event.CreateEvent{Object: tt.obj})).To(Equal(tt.want))
			g.Expect(pred.Delete(event.DeleteEvent{Object: tt.obj})).To(Equal(tt.want))
		})
	}
}

func TestCacheRestrictions(t *testing.T) {
	g := NewWithT(t)

	hub := HubCacheByObject("registry")
	g.Expect(hub).To(HaveLen(1))
	for obj, by := range hub {
		g.Expect(obj).To(BeAssignableToTypeOf(&corev1.Secret{}))
		g.Expect(by.Namespaces).To(HaveKey("registry"))
		g.Expect(by.Namespaces).To(HaveLen(1))
		g.Expect(by.Label.Matches(labels.Set{hubv1.MemberClusterLabel: "true"})).To(BeTrue())
		g.Expect(by.Label.Matches(labels.Set{hubv1.MemberClusterLabel: "false"})).To(BeFalse())
		g.Expect(by.Transform).NotTo(BeNil())
	}

	member := MemberCacheOptions()
	g.Expect(member.DefaultLabelSelector.Matches(labels.Set{hubv1.ManagedByLabel: hubv1.ManagedByValue})).To(BeTrue())
	g.Expect(member.DefaultLabelSelector.Matches(labels.Set{hubv1.ManagedByLabel: "someone-else"})).To(BeFalse())
	g.Expect(member.DefaultTransform).NotTo(BeNil())
	g.Expect(member.ByObject).To(HaveLen(3))
	for obj, by := range member.ByObject {
		switch obj.(type) {
		case *corev1.Event:
			g.Expect(by.Label.Empty()).To(BeTrue(), "events carry no owner labels")
			g.Expect(by.Field.String()).To(Equal("type=Warning"))
		case *appsv1.Deployment, *corev1.Service:
			g.Expect(by.Label.Empty()).To(BeTrue(), "every Deployment and Service, so that a miss means missing")
			g.Expect(by.Transform).NotTo(BeNil())
		default:
			t.Errorf("unexpected ByObject entry %T", obj)
		}
	}
}

// TestNameOnlyUnlessManaged: a foreign object is cached as its name, one of
// ours whole but for its managed fields.
func TestNameOnlyUnlessManaged(t *testing.T) {
	g := NewWithT(t)
	mf := []metav1.ManagedFieldsEntry{{Manager: "someone"}}
	foreign := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1", ResourceVersion: "7",
			Labels: map[string]string{"team": "payments"}, Annotations: map[string]string{"big": "x"}, ManagedFields: mf},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)},
	}
	out, err := nameOnlyUnlessManaged(foreign)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1", ResourceVersion: "7"}}))

	ours := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue}, ManagedFields: mf},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.0.0.1"},
	}
	out, err = nameOnlyUnlessManaged(ours.DeepCopy())
	g.Expect(err).NotTo(HaveOccurred())
	want := ours.DeepCopy()
	want.ManagedFields = nil
	g.Expect(out).To(Equal(want))

	svc, err := nameOnlyUnlessManaged(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.2"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(svc.(*corev1.Service).Spec.ClusterIP).To(BeEmpty())
}

func TestNewFillsDefaults(t *testing.T) {
	g := NewWithT(t)
	p := New(Options{})
	g.Expect(p.opts.Namespace).To(Equal(DefaultNamespace))
	g.Expect(p.opts.QPS).To(BeNumerically("==", DefaultQPS))
	g.Expect(p.opts.Burst).To(Equal(DefaultBurst))
	g.Expect(p.opts.Timeout).To(Equal(DefaultTimeout))
	g.Expect(p.opts.CacheSyncTimeout).To(Equal(DefaultCacheSyncTimeout))
	g.Expect(p.opts.ProbeInterval).To(Equal(DefaultProbeInterval))
	g.Expect(p.opts.ProbeTimeout).To(Equal(DefaultProbeTimeout))
	g.Expect(p.opts.SyncObjects).To(HaveLen(2))
	g.Expect(p.validation.MaxBytes).To(Equal(DefaultMaxKubeconfigBytes))
	g.Expect(p.List()).To(BeEmpty())
	_, ok := p.Lookup("m1")
	g.Expect(ok).To(BeFalse())
}
