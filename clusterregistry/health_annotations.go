package clusterregistry

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	hubv1 "example.com/hub-operator/api/v1"
)

// healthKeys are the annotations healthAnnotations manages, and nothing else
// on the Secret is ever written by the operator.
var healthKeys = []string{
	hubv1.ClusterStateAnnotation,
	hubv1.ClusterReasonAnnotation,
	hubv1.ClusterMessageAnnotation,
	hubv1.ClusterLastTransitionAnnotation,
}

// healthAnnotations returns the health annotations a registry Secret that
// carries current should carry for info, and whether they differ from current
// (false: no write is needed).
//
// The last-transition time moves only when the state does, like a
// condition's. Connecting never replaces a recorded state other than Invalid:
// every operator start (or leader change) begins each cluster in Connecting,
// and recording that would rewrite every Secret twice per restart while
// hiding the last known health; a new Secret, or one whose kubeconfig was
// just fixed, does show Connecting.
func healthAnnotations(current map[string]string, info ClusterInfo, now time.Time) (map[string]string, bool) {
	recorded := current[hubv1.ClusterStateAnnotation]
	if info.State == StateConnecting && recorded != "" && recorded != string(StateInvalid) {
		return nil, false
	}
	want := map[string]string{
		hubv1.ClusterStateAnnotation:          string(info.State),
		hubv1.ClusterReasonAnnotation:         info.Reason,
		hubv1.ClusterMessageAnnotation:        info.Message,
		hubv1.ClusterLastTransitionAnnotation: current[hubv1.ClusterLastTransitionAnnotation],
	}
	if recorded != string(info.State) || want[hubv1.ClusterLastTransitionAnnotation] == "" {
		want[hubv1.ClusterLastTransitionAnnotation] = now.UTC().Format(time.RFC3339)
	}
	for _, k := range healthKeys {
		if v, ok := current[k]; !ok || v != want[k] {
			return want, true
		}
	}
	return want, false
}

// writeHealth records the cluster's current health on its registry Secret
// (as read from the hub cache) when it differs from what the Secret carries.
// It runs in the Secret reconciler, so a failed write is retried with the
// controller's backoff, and only the leader writes.
func (p *Provider) writeHealth(ctx context.Context, secret *corev1.Secret) error {
	info, ok := p.Lookup(secret.Name)
	if !ok {
		return nil
	}
	want, changed := healthAnnotations(secret.Annotations, info, time.Now())
	if !changed {
		return nil
	}
	patched := secret.DeepCopy()
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	maps.Copy(patched.Annotations, want)
	// The optimistic lock turns a write based on a stale cache into a
	// conflict instead of a second transition; the patch holds only
	// metadata (annotations and resourceVersion), never data.
	patch := client.MergeFromWithOptions(secret, client.MergeFromWithOptimisticLock{})
	err := p.client.Patch(ctx, patched, patch)
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		// The newer Secret is on its way to the cache, and its watch event
		// reconciles the Secret again.
		return nil
	default:
		return fmt.Errorf("recording health of cluster %s on its registry secret: %w", secret.Name, err)
	}
}

// healthChanges is a source that enqueues the registry Secret of every
// cluster whose registration or health changed, so that the Secret
// reconciler records it.
func (p *Provider) healthChanges() source.Source {
	return ChangeSource(p, func(_ context.Context, name string) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: p.opts.Namespace, Name: name}}}
	})
}
