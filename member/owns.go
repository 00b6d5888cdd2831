package member

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Owns says whether cluster t holds a Deployment or Service of the owner
// (from the cache of owned objects: no request). The hub asks before it
// cleans up a cluster that left the placement, so that leaving costs nothing
// where nothing was ever applied. A read error counts as "owns": it is safer
// to try a delete than to forget objects.
func (a *Applier) Owns(ctx context.Context, ownerNamespace, ownerName string, t Target) bool {
	key := client.ObjectKey{Namespace: ownerNamespace, Name: ownerName}
	for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
		err := t.cache().Get(ctx, key, obj)
		if client.IgnoreNotFound(err) != nil {
			return true
		}
		if err == nil && a.owned(obj, ownerNamespace, ownerName) {
			return true
		}
	}
	return false
}
