package hub

import (
	"context"
	"slices"
	"time"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	mcbuilder "sigs.k8s.io/multicluster-runtime/pkg/builder"
	mchandler "sigs.k8s.io/multicluster-runtime/pkg/handler"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

// Subscriber is implemented by a registry that calls back on every change of
// a cluster's registration, labels or health (clusterregistry.Provider).
type Subscriber interface {
	Subscribe(fn func(clusterName string))
}

// SetupWithManager wires the reconciler: MyResources on the hub; owned
// Deployments and Services in every member, mapped back to their hub owner
// by label, so drift and rollout progress reconcile at once; and registry
// changes, which re-queue the MyResources they may affect.
func (r *Reconciler) SetupWithManager(mgr mcmanager.Manager, registry Subscriber, maxConcurrent int) error {
	if r.Recorder == nil {
		r.Recorder = mgr.GetLocalManager().GetEventRecorder("hub-operator")
	}
	toOwner := func(multicluster.ClusterName, cluster.Cluster) handler.TypedEventHandler[client.Object, mcreconcile.Request] {
		return mchandler.TypedEnqueueRequestsFromMapFuncWithClusterPreservation(ownerOf)
	}
	return mcbuilder.ControllerManagedBy(mgr).
		Named("myresource").
		For(&hubv1.MyResource{},
			mcbuilder.WithEngageWithLocalCluster(true),
			mcbuilder.WithEngageWithProviderClusters(false),
			mcbuilder.WithPredicates(specOrLifecycleChanged())).
		Watches(&appsv1.Deployment{}, toOwner,
			mcbuilder.WithEngageWithLocalCluster(false),
			mcbuilder.WithEngageWithProviderClusters(true),
			mcbuilder.WithPredicates(managedByUs())).
		Watches(&corev1.Service{}, toOwner,
			mcbuilder.WithEngageWithLocalCluster(false),
			mcbuilder.WithEngageWithProviderClusters(true),
			mcbuilder.WithPredicates(managedByUs())).
		WatchesRawSource(clusterregistry.ChangeSource(registry, r.affectedBy)).
		WithOptions(controller.TypedOptions[mcreconcile.Request]{MaxConcurrentReconciles: maxConcurrent, RateLimiter: retryLimiter()}).
		Complete(r)
}

// maxRetryDelay caps the backoff of a MyResource whose member keeps
// refusing it (a quota, a namespace being deleted). client-go's default cap,
// 1000 s, would leave it failing for up to 16 minutes after the member
// accepts it again; no watch tells us when a quota is lifted.
const maxRetryDelay = 2 * time.Minute

// retryLimiter is client-go's default controller rate limiter with the
// per-item backoff capped at maxRetryDelay.
func retryLimiter() workqueue.TypedRateLimiter[mcreconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[mcreconcile.Request](5*time.Millisecond, maxRetryDelay),
		&workqueue.TypedBucketRateLimiter[mcreconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// ownerOf maps an owned member object to its hub MyResource (the local
// cluster, hence the empty cluster name). Member objects are named and
// namespaced like their MyResource, so an object whose owner labels a member
// user stripped still maps to it: that edit is drift to revert, and must
// re-queue the owner like any other.
func ownerOf(_ context.Context, obj client.Object) []mcreconcile.Request {
	l := obj.GetLabels()
	ns, name := l[hubv1.OwnerNamespaceLabel], l[hubv1.OwnerNameLabel]
	if ns == "" {
		ns = obj.GetNamespace()
	}
	if name == "" {
		name = obj.GetName()
	}
	return []mcreconcile.Request{{Request: reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}}
}

// affectedBy lists the MyResources a registry change of one cluster may
// affect: those that select it by name or by its current labels, hold a
// status entry for it (labels that stopped matching, a cluster that left the
// registry), or are being deleted. A cluster going down therefore re-queues
// only what is placed on it, not every MyResource with a selector.
func (r *Reconciler) affectedBy(ctx context.Context, clusterName string) []mcreconcile.Request {
	var list hubv1.MyResourceList
	if err := r.Hub.List(ctx, &list); err != nil {
		return nil
	}
	clusterLabels, registered := r.labelsOf(clusterName)
	var out []mcreconcile.Request
	for _, mr := range list.Items {
		if mayPlace(mr.Spec.Placement, clusterName, clusterLabels, registered) || previous(&mr, clusterName) != nil ||
			!mr.DeletionTimestamp.IsZero() {
			out = append(out, mcreconcile.Request{Request: reconcile.Request{NamespacedName: types.NamespacedName{Namespace: mr.Namespace, Name: mr.Name}}})
		}
	}
	return out
}

// labelsOf returns a registered cluster's labels.
func (r *Reconciler) labelsOf(clusterName string) (map[string]string, bool) {
	for _, m := range r.Registry.Snapshot() {
		if m.Info.Name == clusterName {
			return m.Info.Labels, true
		}
	}
	return nil, false
}

// mayPlace says whether a placement may select a cluster. One gone from
// the registry has no labels left, so only its name can select it. An
// invalid selector selects, so that the reconcile reports it.
func mayPlace(p hubv1.Placement, name string, clusterLabels map[string]string, registered bool) bool {
	sel := p.Selection
	if !registered {
		sel.ClusterSelector = nil
	}
	ok, err := sel.Matches(name, clusterLabels)
	return ok || err != nil
}

// specOrLifecycleChanged ignores the MyResource's own status writes (they
// would only re-run a converged reconcile) but lets through spec, metadata
// and deletion changes.
func specOrLifecycleChanged() predicate.Predicate {
	return predicate.Or(
		predicate.GenerationChangedPredicate{},
		predicate.AnnotationChangedPredicate{},
		predicate.LabelChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers()) ||
				!e.ObjectNew.GetDeletionTimestamp().Equal(e.ObjectOld.GetDeletionTimestamp())
		}},
	)
}

// managedByUs is a second line behind the member caches' label selector.
func managedByUs() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[hubv1.ManagedByLabel] == hubv1.ManagedByValue
	})
}
