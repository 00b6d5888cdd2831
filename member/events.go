package member

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// Limits of an events.k8s.io/v1 Event, enforced by the API server on create.
const (
	// NoteLimit is the longest note (message) in bytes.
	NoteLimit = 1024
	// ReasonLimit is the longest reason in bytes.
	ReasonLimit = 128
)

// fallbackReason stands in for a member event without a reason, which the
// legacy core/v1 API accepts but events.k8s.io/v1 refuses.
const fallbackReason = "MemberWarning"

// Event is a member Warning event about an object a MyResource owns (its
// Deployment, one of the Deployment's ReplicaSets or Pods), reduced to what
// the hub mirrors. It holds the member's own words and nothing else.
type Event struct {
	// UID is the member Event's UID. With the cluster's name it identifies
	// one member event across its count updates.
	UID types.UID
	// Owner is the hub MyResource the involved object belongs to.
	Owner types.NamespacedName
	// Kind and Name are the involved object's: Deployment, ReplicaSet or Pod.
	Kind, Name string
	// Reason and Message are the member's.
	Reason, Message string
	// Count is how often the member saw it so far, at least 1.
	Count int32
	// FirstSeen and LastSeen are when the member saw it first and last
	// (the member's clock).
	FirstSeen, LastSeen time.Time
}

// mirroredKinds are the involved objects whose events are mirrored: what a
// MyResource owns in a member and what its workload's warnings are about.
var mirroredKinds = map[string]string{
	kindDeployment: "apps",
	"ReplicaSet":   "apps",
	"Pod":          "",
}

// IsMirrorCandidate reports whether ev can be mirrored at all: a Warning
// about a Deployment, ReplicaSet or Pod. It reads only ev, so it suits a
// watch predicate that keeps everything else off the work queue; whether the
// object is owned is OwnedEvent's question.
func IsMirrorCandidate(ev *corev1.Event) bool {
	if ev == nil || ev.Type != corev1.EventTypeWarning {
		return false
	}
	group, ok := mirroredKinds[ev.InvolvedObject.Kind]
	if !ok || ev.InvolvedObject.Name == "" || ev.InvolvedObject.Namespace == "" {
		return false
	}
	if ev.InvolvedObject.APIVersion == "" {
		return true
	}
	gv, err := schema.ParseGroupVersion(ev.InvolvedObject.APIVersion)
	return err == nil && gv.Group == group
}

// OwnedEvent maps a member event to the MyResource owning its involved
// object. owned must be the member's cache of owned objects (see
// clusterregistry.MemberCacheOptions): the Deployment is read as a full
// object, which that cache holds anyway, and ReplicaSets and Pods as metadata
// only, since their owner labels are all that is needed. An object missing
// from it is not ours, at no request to the member. ok is false for an event
// that is not to be mirrored: not a candidate, about an object that is not
// (or no longer) ours, or about an earlier object of the same name.
func OwnedEvent(ctx context.Context, owned client.Reader, ev *corev1.Event) (_ Event, ok bool, _ error) {
	if !IsMirrorCandidate(ev) {
		return Event{}, false, nil
	}
	ref := ev.InvolvedObject
	key := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	var obj client.Object = &appsv1.Deployment{}
	if ref.Kind != kindDeployment {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(schema.GroupVersionKind{Group: mirroredKinds[ref.Kind], Version: "v1", Kind: ref.Kind})
		obj = m
	}
	if err := owned.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return Event{}, false, nil
		}
		return Event{}, false, fmt.Errorf("reading %s %s of member event %s/%s: %w", ref.Kind, key, ev.Namespace, ev.Name, err)
	}
	// An event outlives its object: one about a deleted object of the same
	// name may be about something that was never ours.
	if ref.UID != "" && obj.GetUID() != "" && ref.UID != obj.GetUID() {
		return Event{}, false, nil
	}
	l := obj.GetLabels()
	if l[hubv1.ManagedByLabel] != hubv1.ManagedByValue || l[hubv1.OwnerNamespaceLabel] == "" || l[hubv1.OwnerNameLabel] == "" {
		return Event{}, false, nil
	}
	first, last := eventTimes(ev)
	return Event{
		UID:       ev.UID,
		Owner:     types.NamespacedName{Namespace: l[hubv1.OwnerNamespaceLabel], Name: l[hubv1.OwnerNameLabel]},
		Kind:      ref.Kind,
		Name:      ref.Name,
		Reason:    ev.Reason,
		Message:   ev.Message,
		Count:     EventCount(ev),
		FirstSeen: first,
		LastSeen:  last,
	}, true, nil
}

// EventCount is how often the member saw ev: the legacy count or the
// series count (events.k8s.io emitters), whichever is higher, at least 1.
func EventCount(ev *corev1.Event) int32 {
	n := ev.Count
	if ev.Series != nil && ev.Series.Count > n {
		n = ev.Series.Count
	}
	return max(n, 1)
}

// eventTimes reads when the member saw ev first and last, from whichever of
// the legacy (kubelet, controllers) and events.k8s.io (scheduler) fields its
// emitter filled.
func eventTimes(ev *corev1.Event) (first, last time.Time) {
	switch {
	case !ev.FirstTimestamp.IsZero():
		first = ev.FirstTimestamp.Time
	case !ev.EventTime.IsZero():
		first = ev.EventTime.Time
	default:
		first = ev.CreationTimestamp.Time
	}
	last = first
	if ev.LastTimestamp.After(last) {
		last = ev.LastTimestamp.Time
	}
	if ev.Series != nil && ev.Series.LastObservedTime.After(last) {
		last = ev.Series.LastObservedTime.Time
	}
	return first, last
}

// HubReason is the reason the mirrored event carries on the hub: the
// member's, within the events.k8s.io/v1 limits.
func (e Event) HubReason() string {
	if e.Reason == "" {
		return fallbackReason
	}
	return truncateUTF8(e.Reason, ReasonLimit, "")
}

// Note is the mirrored event's message on the hub:
// "[cluster NAME] Kind/name: member message", cut to NoteLimit bytes so the
// API server accepts it whatever the member wrote.
func (e Event) Note(cluster string) string {
	return truncateUTF8(fmt.Sprintf("[cluster %s] %s/%s: %s", cluster, e.Kind, e.Name, e.Message), NoteLimit, "...")
}

// truncateUTF8 cuts s to at most n bytes without splitting a character,
// ending it with ellipsis when it was cut.
func truncateUTF8(s string, n int, ellipsis string) string {
	if len(s) <= n {
		return s
	}
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
