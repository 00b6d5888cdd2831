package member

import (
	"context"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// Owns says whether cluster t holds a Deployment or Service of the owner
// (from the cache of owned objects: no request, but for an object whose
// owner labels were removed in the member, see owned). The hub asks before
// it cleans up a cluster that left the placement, so that leaving costs
// nothing where nothing was ever applied. A read error counts as "owns": it
// is safer to try a delete than to forget objects.
func (a *Applier) Owns(ctx context.Context, ownerNamespace, ownerName string, t Target) bool {
	key := client.ObjectKey{Namespace: ownerNamespace, Name: ownerName}
	for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
		err := t.cache().Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return true
		}
		ours, err := a.owned(ctx, t, obj, ownerNamespace, ownerName)
		if ours || (err != nil && !apierrors.IsNotFound(err)) {
			return true
		}
	}
	return false
}

// ownerLabelsSay is what an object's owner labels say about one owner.
type ownerLabelsSay int

const (
	// labelsOurs: managed-by hub-operator and both owner labels name the owner.
	labelsOurs ownerLabelsSay = iota
	// labelsOther: an owner label names another MyResource.
	labelsOther
	// labelsMissing: neither, since some are missing.
	labelsMissing
)

func labelsFor(obj client.Object, ownerNamespace, ownerName string) ownerLabelsSay {
	l := obj.GetLabels()
	ns, hasNS := l[hubv1.OwnerNamespaceLabel]
	name, hasName := l[hubv1.OwnerNameLabel]
	switch {
	case (hasNS && ns != ownerNamespace) || (hasName && name != ownerName):
		return labelsOther
	case l[hubv1.ManagedByLabel] == hubv1.ManagedByValue && hasNS && hasName:
		return labelsOurs
	default:
		return labelsMissing
	}
}

// owned reports whether obj belongs to the MyResource ownerNamespace/ownerName.
// Owner labels naming another MyResource settle it as not ours. Otherwise it
// is ours when it carries our labels, or when our field manager applied it
// before (member-side label edits are drift to revert, not a reason to give
// the object up: names are deterministic, so an object hub-operator applied
// under this name was applied for this owner).
//
// The member cache strips managed fields, so an object read there with an
// owner label removed (still labelled managed-by, so still in the cache) is
// read again live to see who applied it; obj is then the live object. That
// read costs a request only until the apply has restored the labels. A
// NotFound error means the object went away meanwhile; other errors are
// *ApplyError.
func (a *Applier) owned(ctx context.Context, t Target, obj client.Object, ownerNamespace, ownerName string) (bool, error) {
	switch labelsFor(obj, ownerNamespace, ownerName) {
	case labelsOther:
		return false, nil
	case labelsOurs:
		return true, nil
	}
	if len(obj.GetManagedFields()) == 0 && t.Cache != nil {
		key := client.ObjectKeyFromObject(obj)
		if err := t.live().Get(ctx, key, obj); err != nil {
			return false, &ApplyError{Cluster: t.Name, Op: opGet, Kind: kindOf(obj), Namespace: key.Namespace, Name: key.Name, Err: err}
		}
		switch labelsFor(obj, ownerNamespace, ownerName) {
		case labelsOther:
			return false, nil
		case labelsOurs:
			return true, nil
		}
	}
	return slices.ContainsFunc(obj.GetManagedFields(), func(e metav1.ManagedFieldsEntry) bool {
		return e.Manager == a.fieldManager() && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == ""
	}), nil
}
