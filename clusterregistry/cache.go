package clusterregistry

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// MemberCacheOptions is the cache configuration of every member cluster: the
// operator caches only what it owns, so that a member with thousands of
// Deployments costs the hub nothing for the ones that are not ours.
//
//   - Every kind defaults to the label app.kubernetes.io/managed-by=hub-operator
//     (Deployments, Services, and the Namespaces, ReplicaSets and Pods the
//     member package may read, as long as it labels them). The owned
//     Deployment's pod template carries the label, so its ReplicaSets and
//     Pods are cached; the event mirror reads those as metadata only.
//   - Events are the exception: the kubelet and controllers that emit them copy
//     no labels, so they are narrowed to type=Warning instead, the only ones
//     the operator mirrors. A field selector is a conjunction of terms, so it
//     cannot keep just the events about Deployments, ReplicaSets and Pods,
//     and the namespaces holding owned objects follow the hub's MyResources,
//     which a cache's fixed options cannot. So every Warning event of the
//     member is cached; the event mirror's predicate keeps those about other
//     kinds off its queue, and those about objects that are not owned are
//     dropped after one in-memory lookup.
//   - Deployments and Services are the other exception: every one of the
//     member is cached, those not labelled managed-by=hub-operator reduced to
//     a name (see nameOnlyUnlessManaged), so that a miss in the cache means
//     the object does not exist and a new MyResource is applied without a
//     live read first (that read was one member round trip in front of every
//     create: half the distribution latency). A foreign object costs the hub
//     a few hundred bytes, and its events stop at the watches' managedByUs
//     predicate.
//   - managedFields are dropped from every cached object: they are often the
//     largest part of an object and the operator never reads them.
//
// The Provider uses it unless Options.ClusterOptions replaces Cache.
func MemberCacheOptions() cache.Options {
	return cache.Options{
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{hubv1.ManagedByLabel: hubv1.ManagedByValue}),
		DefaultTransform:     cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Event{}: {
				Label: labels.Everything(),
				Field: fields.OneTermEqualSelector("type", corev1.EventTypeWarning),
			},
			&appsv1.Deployment{}: {Label: labels.Everything(), Transform: nameOnlyUnlessManaged},
			&corev1.Service{}:    {Label: labels.Everything(), Transform: nameOnlyUnlessManaged},
		},
	}
}

// nameOnlyUnlessManaged keeps an object labelled managed-by=hub-operator
// whole (but its managed fields) and reduces any other to what says it
// exists: kind, namespace, name, uid and resourceVersion. Its labels go
// too: nothing of a foreign object is read from the cache but its
// existence; the member package reads it live before judging it.
func nameOnlyUnlessManaged(in any) (any, error) {
	in, _ = stripManagedFields(in)
	obj, err := meta.Accessor(in)
	if err != nil {
		return in, nil //nolint:nilerr // not an object: nothing to strip
	}
	if obj.GetLabels()[hubv1.ManagedByLabel] == hubv1.ManagedByValue {
		return in, nil
	}
	m := metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion()}
	switch in.(type) {
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: m}, nil
	case *corev1.Service:
		return &corev1.Service{ObjectMeta: m}, nil
	}
	return in, nil
}

var stripManagedFields = cache.TransformStripManagedFields()

// HubCacheByObject restricts the hub manager's Secret cache to registry
// Secrets: those in namespace carrying example.com/member-cluster=true. Wire it
// into the hub manager's cache.Options.ByObject; with it the operator needs
// read access to Secrets in the registry namespace only, and never holds other
// Secrets in memory.
func HubCacheByObject(namespace string) map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Secret{}: {
			Namespaces: map[string]cache.Config{namespace: {}},
			Label:      labels.SelectorFromSet(labels.Set{hubv1.MemberClusterLabel: memberClusterLabelValue}),
			Transform:  cache.TransformStripManagedFields(),
		},
	}
}
