package member

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"reflect"
	"syscall"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

func TestReason(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	dialRefused := &url.Error{Op: "Get", URL: "https://10.0.0.1:6443/api", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name   string
		err    error
		reason string
	}{
		{name: "no error has no reason", err: nil, reason: ""},
		{name: "a wrapped ConflictError is Conflict", err: fmt.Errorf("apply: %w", &ConflictError{Cluster: "m1", Kind: "Deployment"}), reason: hubv1.ReasonConflict},
		{name: "an API timeout is ClusterUnreachable", err: apierrors.NewTimeoutError("request timed out", 1), reason: hubv1.ReasonClusterUnreachable},
		{name: "a server timeout is ClusterUnreachable", err: apierrors.NewServerTimeout(deployments, "patch", 1), reason: hubv1.ReasonClusterUnreachable},
		{name: "an unavailable API server is ClusterUnreachable", err: apierrors.NewServiceUnavailable("etcd down"), reason: hubv1.ReasonClusterUnreachable},
		{name: "a context deadline is ClusterUnreachable", err: fmt.Errorf("get: %w", context.DeadlineExceeded), reason: hubv1.ReasonClusterUnreachable},
		{name: "a refused connection is ClusterUnreachable", err: dialRefused, reason: hubv1.ReasonClusterUnreachable},
		{name: "a bare refused connection is ClusterUnreachable", err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED), reason: hubv1.ReasonClusterUnreachable},
		{name: "a connection dropped mid-request is ClusterUnreachable", err: &url.Error{Op: "Patch", URL: "https://m1", Err: io.EOF}, reason: hubv1.ReasonClusterUnreachable},
		{
			name:   "an ApplyError of an unreachable member is ClusterUnreachable",
			err:    &ApplyError{Cluster: "m1", Op: "apply", Kind: "Deployment", Name: "web", Err: dialRefused},
			reason: hubv1.ReasonClusterUnreachable,
		},
		{
			name:   "an ApplyError the member refused is ApplyFailed",
			err:    &ApplyError{Cluster: "m1", Op: "apply", Kind: "Deployment", Name: "web", Err: apierrors.NewForbidden(deployments, "web", errors.New("no"))},
			reason: hubv1.ReasonApplyFailed,
		},
		{name: "invalid input is InvalidSpec", err: &InvalidSpecError{Field: "spec.overrides[0].clusterSelector", Err: errors.New("bad")}, reason: hubv1.ReasonInvalidSpec},
		{name: "an unknown error is ApplyFailed", err: errors.New("boom"), reason: hubv1.ReasonApplyFailed},
		{name: "cancellation is not unreachability", err: context.Canceled, reason: hubv1.ReasonApplyFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Reason(tt.err)).To(Equal(tt.reason))
			g.Expect(IsUnreachable(tt.err)).To(Equal(tt.reason == hubv1.ReasonClusterUnreachable))
		})
	}
}

func TestApplyErrorMessage(t *testing.T) {
	g := NewWithT(t)
	inner := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", nil)
	err := fmt.Errorf("reconcile: %w", &ApplyError{Cluster: "m1", Op: "apply", Kind: "Deployment", Namespace: "team-a", Name: "web", Err: inner})

	var ae *ApplyError
	g.Expect(errors.As(err, &ae)).To(BeTrue())
	g.Expect(ae.Message()).To(Equal(inner.ErrStatus.Message))
	g.Expect(err.Error()).To(ContainSubstring("cluster m1: apply Deployment team-a/web: "))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "apierrors must see through ApplyError")
}

func TestConflictErrorMessage(t *testing.T) {
	g := NewWithT(t)
	err := &ConflictError{Cluster: "m1", Kind: "Deployment", Namespace: "team-a", Name: "web", Managers: []string{"helm", "kubectl-client-side-apply"}}
	g.Expect(err.Error()).To(Equal("cluster m1: Deployment team-a/web exists and is not managed by hub-operator " +
		"(field managers: helm, kubectl-client-side-apply); delete or rename it to let hub-operator create its own"))
}

// liveStub is a live reader that answers every Get with obj.
type liveStub struct {
	obj   client.Object
	reads int
}

func (s *liveStub) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	s.reads++
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(s.obj.DeepCopyObject()).Elem())
	return nil
}

func (s *liveStub) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("liveStub lists nothing")
}

func TestOwned(t *testing.T) {
	ours := map[string]string{
		hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: "team-a", hubv1.OwnerNameLabel: "web",
	}
	nameRemoved := map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: "team-a"}
	applied := []metav1.ManagedFieldsEntry{{Manager: "hub-operator", Operation: metav1.ManagedFieldsOperationApply}}
	tests := []struct {
		name    string
		labels  map[string]string
		managed []metav1.ManagedFieldsEntry
		// cached: obj comes from a cache that strips managed fields, and a
		// live read returns it with live.
		cached bool
		live   []metav1.ManagedFieldsEntry
		owned  bool
		reads  int
	}{
		{name: "our labels naming this owner are ours", labels: ours, owned: true},
		{name: "no labels and no hub-operator apply is not ours", labels: nil,
			managed: []metav1.ManagedFieldsEntry{{Manager: "kubectl-create", Operation: metav1.ManagedFieldsOperationUpdate}}},
		{name: "a managed-by label alone is not ours", labels: map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue}},
		{name: "owner labels naming another MyResource are not ours, even if we applied it",
			labels:  map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: "team-a", hubv1.OwnerNameLabel: "api"},
			managed: applied},
		{name: "an object hub-operator applied whose labels were stripped in the member is ours", labels: nil, managed: applied, owned: true},
		{name: "an Update by a manager named hub-operator is not evidence",
			managed: []metav1.ManagedFieldsEntry{{Manager: "hub-operator", Operation: metav1.ManagedFieldsOperationUpdate}}},
		{name: "a cached object with our labels costs no read", labels: ours, cached: true, owned: true},
		{name: "a cached object naming another owner costs no read, and is not ours",
			labels: map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNameLabel: "api"}, cached: true, live: applied},
		{name: "a cached object with an owner label removed is confirmed ours by a live read",
			labels: nameRemoved, cached: true, live: applied, owned: true, reads: 1},
		{name: "a cached object with an owner label removed that we never applied is not ours",
			labels: nameRemoved, cached: true,
			live: []metav1.ManagedFieldsEntry{{Manager: "kubectl-create", Operation: metav1.ManagedFieldsOperationUpdate}}, reads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", Labels: tt.labels, ManagedFields: tt.managed}}
			var target Target
			stub := &liveStub{}
			if tt.cached {
				live := dep.DeepCopy()
				live.ManagedFields = tt.live
				stub.obj = live
				target = Target{Name: "m1", Cache: stub, Reader: stub}
			}
			owned, err := (&Applier{}).owned(t.Context(), target, dep, "team-a", "web")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(owned).To(Equal(tt.owned))
			g.Expect(stub.reads).To(Equal(tt.reads), "live reads")
		})
	}
}

func TestFieldManagers(t *testing.T) {
	g := NewWithT(t)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl-edit"}, {Manager: "helm"}, {Manager: "kube-controller-manager", Subresource: "status"}, {Manager: "helm"},
	}}}
	g.Expect(fieldManagers(dep)).To(Equal([]string{"helm", "kubectl-edit"}), "status writers are not who created the object")

	dep.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Subresource: "status"}}
	g.Expect(fieldManagers(dep)).To(Equal([]string{"kube-controller-manager"}))
}

func TestApplyErrorSaysWhatToDo(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	tests := []struct {
		name string
		err  error
		hint string // "" when the member's words are all there is
	}{
		{
			name: "RBAC names the verb to grant",
			err: apierrors.NewForbidden(deployments, "web",
				errors.New(`User "member-admin" cannot patch resource "deployments" in API group "apps" in the namespace "team-a"`)),
			hint: "; grant the user of the cluster's kubeconfig patch on deployments in namespace team-a (RBAC)",
		},
		{
			name: "a quota names the namespace",
			err:  apierrors.NewForbidden(deployments, "web", errors.New("exceeded quota: compute, requested: pods=1")),
			hint: "; raise the ResourceQuota in namespace team-a of the cluster, or free what it counts",
		},
		{
			name: "an admission webhook is named as the refuser",
			err:  apierrors.NewForbidden(deployments, "web", errors.New(`admission webhook "policy.example.org" denied the request: no latest tags`)),
			hint: "; an admission webhook in the cluster refused it: change the MyResource to satisfy it, or ask the cluster's owners",
		},
		{
			name: "rejected credentials point at the registry Secret",
			err:  apierrors.NewUnauthorized("Unauthorized"),
			hint: "; the cluster rejects the credentials of its kubeconfig: renew them in the cluster's registry Secret",
		},
		{
			name: "an invalid object points at the MyResource field",
			err:  apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", nil),
			hint: "; the cluster's API server finds the Deployment invalid: fix the matching field under spec.deployment of the MyResource",
		},
		{name: "a server error has no advice but a retry", err: apierrors.NewInternalError(errors.New("etcd hiccup"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := &ApplyError{Cluster: "m1", Op: opApply, Kind: kindDeployment, Namespace: "team-a", Name: "web", Err: tt.err}
			g.Expect(err.Error()).To(Equal("cluster m1: apply Deployment team-a/web: " + tt.err.Error() + tt.hint))
		})
	}
}
